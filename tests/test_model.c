/* tests/test_model.c — model loading and the forward pass on small random
 * models built in memory (no ../shared needed).
 *
 *  - every architecture (llama, llama + rope_freqs, tied output, qwen2,
 *    qwen3, phi3) against a naive double-precision reference forward pass
 *    written here from the published math;
 *  - every issue-3 weight type against the same reference on dequantized
 *    weights (activation quantization makes this approximate);
 *  - batching (one call, chunks, token by token, tiled attention path),
 *    thread counts (bit-identical) and KV types agree;
 *  - hostile or unsupported files are refused with a message naming the
 *    problem; bad calls (token ids, full context) fail cleanly.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "gguf_write.h"
#include "model.h"
#include "test.h"
#include "thread.h"

/* ---- a small random model ---- */

typedef struct spec {
    const char *arch;
    int type;                /* weight type of the 2-D tensors */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_rot;
    int tied, rope_freqs, biases, qk_norm, fused;
    float rope_base;
    const char *drop;        /* tensor to leave out */
    const char *extra;       /* extra tensor name to add */
    const char *skip_key;    /* metadata suffix to leave out */
    int norm_type;           /* type of norm weights (F32 normally) */
} spec;

static uint64_t rng_state;
static float frand(void)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* Weights in F32 kept for the reference (dequantized after quantization). */
typedef struct ref_w {
    char name[64];
    int64_t n_in, n_out;
    double *w;
} ref_w;

typedef struct built {
    uint8_t *buf;
    size_t len;
    ref_w w[256];
    int n_w;
} built;

static const double *refw(const built *b, const char *name)
{
    for (int i = 0; i < b->n_w; i++)
        if (!strcmp(b->w[i].name, name)) return b->w[i].w;
    return NULL;
}

static void add_tensor(gguf_writer *gw, built *b, const spec *s, const char *name, int type,
                       int64_t n_in, int64_t n_out, float scale, float offset)
{
    if (s->drop && !strcmp(s->drop, name)) return;
    int64_t n = n_in * n_out;
    float *f = malloc((size_t)n * sizeof *f);
    for (int64_t i = 0; i < n; i++) f[i] = offset + scale * frand();
    size_t rb = kern_row_size(type, n_in);
    uint8_t *q = malloc(rb * (size_t)n_out);
    ref_w *r = &b->w[b->n_w++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->n_in = n_in;
    r->n_out = n_out;
    r->w = malloc((size_t)n * sizeof(double));
    float *row = malloc((size_t)n_in * sizeof *row);
    for (int64_t o = 0; o < n_out; o++) {
        kern_table_ref.from_float[type](f + o * n_in, q + o * rb, n_in);
        kern_table_ref.to_float[type](q + o * rb, row, n_in);
        for (int64_t i = 0; i < n_in; i++) r->w[o * n_in + i] = row[i];
    }
    int64_t ne[2] = { n_in, n_out };
    gguf_writer_add_tensor(gw, name, type, n_out == 1 ? 1 : 2, ne, q, rb * (size_t)n_out);
    free(f);
    free(q);
    free(row);
}

static void build(built *b, const spec *s)
{
    memset(b, 0, sizeof *b);
    rng_state = 42;
    gguf_writer gw;
    gguf_writer_init(&gw);
    char k[128];
    gguf_writer_add_str(&gw, "general.architecture", s->arch);
#define KEY(suf) (snprintf(k, sizeof k, "%s.%s", s->arch, suf), k)
#define SKIP(suf) (s->skip_key && !strcmp(s->skip_key, suf))
    if (!SKIP("block_count")) gguf_writer_add_u32(&gw, KEY("block_count"), s->n_layer);
    if (!SKIP("embedding_length")) gguf_writer_add_u32(&gw, KEY("embedding_length"), s->n_embd);
    gguf_writer_add_u32(&gw, KEY("feed_forward_length"), s->n_ff);
    gguf_writer_add_u32(&gw, KEY("attention.head_count"), s->n_head);
    gguf_writer_add_u32(&gw, KEY("attention.head_count_kv"), s->n_head_kv);
    gguf_writer_add_u32(&gw, KEY("rope.dimension_count"), s->n_rot);
    gguf_writer_add_u32(&gw, KEY("context_length"), 256);
    if (!SKIP("attention.layer_norm_rms_epsilon"))
        gguf_writer_add_f32(&gw, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    gguf_writer_add_f32(&gw, KEY("rope.freq_base"), s->rope_base);
    const int E = s->n_embd, hd = s->n_embd / s->n_head;
    const int nq = s->n_head * hd, nkv = s->n_head_kv * hd;
    const int T = s->type, NT = s->norm_type;
    add_tensor(&gw, b, s, "token_embd.weight", T, E, s->n_vocab, 0.5f, 0);
    add_tensor(&gw, b, s, "output_norm.weight", NT, E, 1, 0.2f, 1.0f);
    if (!s->tied) add_tensor(&gw, b, s, "output.weight", T, E, s->n_vocab, 0.3f, 0);
    if (s->rope_freqs) add_tensor(&gw, b, s, "rope_freqs.weight", KERN_F32, s->n_rot / 2, 1, 1.5f, 2.5f);
    char n[64];
    for (int l = 0; l < s->n_layer; l++) {
#define NM(x) (snprintf(n, sizeof n, "blk.%d.%s", l, x), n)
        add_tensor(&gw, b, s, NM("attn_norm.weight"), NT, E, 1, 0.2f, 1.0f);
        if (s->fused) {
            add_tensor(&gw, b, s, NM("attn_qkv.weight"), T, E, nq + 2 * nkv, 0.3f, 0);
        } else {
            add_tensor(&gw, b, s, NM("attn_q.weight"), T, E, nq, 0.3f, 0);
            add_tensor(&gw, b, s, NM("attn_k.weight"), T, E, nkv, 0.3f, 0);
            add_tensor(&gw, b, s, NM("attn_v.weight"), T, E, nkv, 0.3f, 0);
        }
        if (s->biases) {
            add_tensor(&gw, b, s, NM("attn_q.bias"), KERN_F32, nq, 1, 0.2f, 0);
            add_tensor(&gw, b, s, NM("attn_k.bias"), KERN_F32, nkv, 1, 0.2f, 0);
            add_tensor(&gw, b, s, NM("attn_v.bias"), KERN_F32, nkv, 1, 0.2f, 0);
        }
        if (s->qk_norm) {
            add_tensor(&gw, b, s, NM("attn_q_norm.weight"), KERN_F32, hd, 1, 0.2f, 1.0f);
            add_tensor(&gw, b, s, NM("attn_k_norm.weight"), KERN_F32, hd, 1, 0.2f, 1.0f);
        }
        add_tensor(&gw, b, s, NM("attn_output.weight"), T, nq, E, 0.3f, 0);
        add_tensor(&gw, b, s, NM("ffn_norm.weight"), NT, E, 1, 0.2f, 1.0f);
        if (s->fused) {
            add_tensor(&gw, b, s, NM("ffn_up.weight"), T, E, 2 * s->n_ff, 0.3f, 0);
        } else {
            add_tensor(&gw, b, s, NM("ffn_gate.weight"), T, E, s->n_ff, 0.3f, 0);
            add_tensor(&gw, b, s, NM("ffn_up.weight"), T, E, s->n_ff, 0.3f, 0);
        }
        add_tensor(&gw, b, s, NM("ffn_down.weight"), T, s->n_ff, E, 0.3f, 0);
    }
    if (s->extra) add_tensor(&gw, b, s, s->extra, KERN_F32, E, 1, 0.1f, 0);
    if (gguf_writer_finish(&gw, &b->buf, &b->len) < 0) fprintf(stderr, "writer: %s\n", gw.err);
    gguf_writer_free(&gw);
}

static void built_free(built *b)
{
    for (int i = 0; i < b->n_w; i++) free(b->w[i].w);
    free(b->buf);
}

static spec base_spec(const char *arch)
{
    spec s = { .arch = arch, .type = KERN_F32, .n_vocab = 40, .n_embd = 64, .n_layer = 2,
               .n_head = 4, .n_head_kv = 2, .n_ff = 96, .n_rot = 16, .rope_base = 10000.0f,
               .norm_type = KERN_F32 };
    if (!strcmp(arch, "qwen2")) s.biases = 1;
    if (!strcmp(arch, "qwen3")) s.qk_norm = 1;
    if (!strcmp(arch, "phi3")) {
        s.fused = 1;
        s.n_head_kv = 4;
    }
    return s;
}

/* ---- naive reference forward (double precision, token by token) ---- */

static void ref_rmsnorm(double *y, const double *x, int n, const double *w)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double sc = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; i++) y[i] = x[i] * sc * w[i];
}

static void ref_matvec(double *y, const double *W, const double *x, int n_in, int n_out)
{
    for (int o = 0; o < n_out; o++) {
        double s = 0;
        for (int i = 0; i < n_in; i++) s += W[(size_t)o * n_in + i] * x[i];
        y[o] = s;
    }
}

static void ref_rope(double *x, int pos, int n_rot, double base, int neox, const double *ff)
{
    for (int i = 0; i < n_rot / 2; i++) {
        double th = pos * pow(base, -2.0 * i / n_rot) / (ff ? ff[i] : 1.0);
        double c = cos(th), s = sin(th);
        double *a = neox ? &x[i] : &x[2 * i], *b = neox ? &x[i + n_rot / 2] : &x[2 * i + 1];
        double x0 = *a, x1 = *b;
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
    }
}

/* logits (n_tok, n_vocab) for tokens at positions 0.. */
static void ref_forward(const built *b, const spec *s, const int32_t *tok, int n_tok, double *logits)
{
    const int E = s->n_embd, hd = E / s->n_head, nq = s->n_head * hd, nkv = s->n_head_kv * hd;
    const int F = s->n_ff, L = s->n_layer;
    const int neox = strcmp(s->arch, "llama") != 0;
    double *K = calloc((size_t)L * n_tok * nkv, sizeof(double));
    double *Vc = calloc((size_t)L * n_tok * nkv, sizeof(double));
    double x[256], xn[256], q[256], k[256], v[256], att[256], tmp[256], g[512], u[512], qkv[768];
    const double *ff = s->rope_freqs ? refw(b, "rope_freqs.weight") : NULL;
    char n[64];
    for (int t = 0; t < n_tok; t++) {
        memcpy(x, refw(b, "token_embd.weight") + (size_t)tok[t] * E, E * sizeof(double));
        for (int l = 0; l < L; l++) {
#define RW(nm) (snprintf(n, sizeof n, "blk.%d.%s", l, nm), refw(b, n))
            ref_rmsnorm(xn, x, E, RW("attn_norm.weight"));
            if (s->fused) {
                ref_matvec(qkv, RW("attn_qkv.weight"), xn, E, nq + 2 * nkv);
                memcpy(q, qkv, nq * sizeof(double));
                memcpy(k, qkv + nq, nkv * sizeof(double));
                memcpy(v, qkv + nq + nkv, nkv * sizeof(double));
            } else {
                ref_matvec(q, RW("attn_q.weight"), xn, E, nq);
                ref_matvec(k, RW("attn_k.weight"), xn, E, nkv);
                ref_matvec(v, RW("attn_v.weight"), xn, E, nkv);
            }
            if (s->biases) {
                const double *bq = RW("attn_q.bias");
                for (int i = 0; i < nq; i++) q[i] += bq[i];
                const double *bk = RW("attn_k.bias");
                for (int i = 0; i < nkv; i++) k[i] += bk[i];
                const double *bv = RW("attn_v.bias");
                for (int i = 0; i < nkv; i++) v[i] += bv[i];
            }
            for (int h = 0; h < s->n_head; h++) {
                if (s->qk_norm) ref_rmsnorm(q + h * hd, q + h * hd, hd, RW("attn_q_norm.weight"));
                ref_rope(q + h * hd, t, s->n_rot, s->rope_base, neox, ff);
            }
            for (int h = 0; h < s->n_head_kv; h++) {
                if (s->qk_norm) ref_rmsnorm(k + h * hd, k + h * hd, hd, RW("attn_k_norm.weight"));
                ref_rope(k + h * hd, t, s->n_rot, s->rope_base, neox, ff);
            }
            memcpy(K + ((size_t)l * n_tok + t) * nkv, k, nkv * sizeof(double));
            memcpy(Vc + ((size_t)l * n_tok + t) * nkv, v, nkv * sizeof(double));
            for (int h = 0; h < s->n_head; h++) {
                int hk = h / (s->n_head / s->n_head_kv);
                double sc[256], mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const double *kj = K + ((size_t)l * n_tok + j) * nkv + hk * hd;
                    double d = 0;
                    for (int i = 0; i < hd; i++) d += q[h * hd + i] * kj[i];
                    sc[j] = d / sqrt((double)hd);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j <= t; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int i = 0; i < hd; i++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++) a += sc[j] * Vc[((size_t)l * n_tok + j) * nkv + hk * hd + i];
                    att[h * hd + i] = a / sum;
                }
            }
            ref_matvec(tmp, RW("attn_output.weight"), att, nq, E);
            for (int i = 0; i < E; i++) x[i] += tmp[i];
            ref_rmsnorm(xn, x, E, RW("ffn_norm.weight"));
            if (s->fused) {
                double gu[1024];
                ref_matvec(gu, RW("ffn_up.weight"), xn, E, 2 * F);
                memcpy(g, gu, F * sizeof(double));
                memcpy(u, gu + F, F * sizeof(double));
            } else {
                ref_matvec(g, RW("ffn_gate.weight"), xn, E, F);
                ref_matvec(u, RW("ffn_up.weight"), xn, E, F);
            }
            for (int i = 0; i < F; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
            ref_matvec(tmp, RW("ffn_down.weight"), g, F, E);
            for (int i = 0; i < E; i++) x[i] += tmp[i];
        }
        ref_rmsnorm(xn, x, E, refw(b, "output_norm.weight"));
        ref_matvec(logits + (size_t)t * s->n_vocab,
                   refw(b, s->tied ? "token_embd.weight" : "output.weight"), xn, E, s->n_vocab);
    }
    free(K);
    free(Vc);
}

/* ---- helpers ---- */

typedef struct loaded {
    gguf_file g;
    model m;
    int ok;
} loaded;

static int load(loaded *L, const built *b)
{
    memset(L, 0, sizeof *L);
    if (gguf_open_mem(&L->g, b->buf, b->len) < 0) {
        snprintf(L->m.err, sizeof L->m.err, "gguf: %.200s", L->g.err);
        return -1;
    }
    int rc = model_init(&L->m, &L->g);
    if (rc < 0) gguf_close(&L->g);
    L->ok = rc == 0;
    return rc;
}

static void unload(loaded *L)
{
    if (!L->ok) return;
    model_free(&L->m);
    gguf_close(&L->g);
}

/* Evaluate tokens in chunks of `chunk`, all logits, into out. */
static int run(const model *m, thread_pool *tp, int kv_type, int n_batch, const int32_t *tok, int n,
               int chunk, float *out)
{
    fwd_ctx c;
    fwd_kv kv;
    if (fwd_init(&c, m, kern_select(NULL), tp, n_batch) < 0) return -1;
    if (fwd_kv_init(&kv, m, 128, kv_type) < 0) {
        fwd_free(&c);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i += chunk) {
        int k = n - i < chunk ? n - i : chunk;
        rc = fwd_eval(&c, &kv, tok + i, k, out + (size_t)i * m->hp.n_vocab, 1);
    }
    fwd_kv_free(&kv);
    fwd_free(&c);
    return rc;
}

static double max_diff_ref(const float *a, const double *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
    return d;
}

static double max_diff(const float *a, const float *b, size_t n)
{
    double d = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    return d;
}

#define NTOK 12
static const int32_t toks[NTOK] = { 1, 5, 9, 33, 2, 17, 17, 39, 0, 21, 8, 12 };

/* ---- tests ---- */

static void test_arch(const char *label, spec s, double tol, thread_pool *tp)
{
    built b;
    build(&b, &s);
    loaded L;
    if (!T_CHECK(load(&L, &b) == 0, "%s loads (%s)", label, L.m.err)) {
        built_free(&b);
        return;
    }
    size_t nl = (size_t)NTOK * s.n_vocab;
    float *out = malloc(nl * sizeof(float));
    double *ref = malloc(nl * sizeof(double));
    ref_forward(&b, &s, toks, NTOK, ref);
    int rc = run(&L.m, tp, KERN_F32, 0, toks, NTOK, NTOK, out);
    double d = max_diff_ref(out, ref, nl);
    T_CHECK(rc == 0 && d < tol, "%s: batch logits vs double reference, max diff %.2e < %.0e", label, d, tol);
    rc = run(&L.m, tp, KERN_F32, 0, toks, NTOK, 1, out);
    d = max_diff_ref(out, ref, nl);
    T_CHECK(rc == 0 && d < tol, "%s: token-by-token logits vs reference, max diff %.2e", label, d);
    rc = run(&L.m, tp, KERN_F16, 0, toks, NTOK, 5, out);
    d = max_diff_ref(out, ref, nl);
    T_CHECK(rc == 0 && d < tol * 20, "%s: F16 KV cache, chunks of 5: max diff %.2e", label, d);
    free(out);
    free(ref);
    unload(&L);
    built_free(&b);
}

static void test_types(thread_pool *tp)
{
    static const struct { int type; double tol; } ty[] = {
        { KERN_F16, 0.02 }, { KERN_BF16, 0.1 }, { KERN_Q8_0, 0.15 }, { KERN_Q4_0, 0.3 },
        { KERN_Q4_1, 0.3 }, { KERN_Q5_0, 0.2 }, { KERN_Q5_1, 0.2 },
    };
    for (size_t i = 0; i < sizeof ty / sizeof ty[0]; i++) {
        spec s = base_spec("llama");
        s.type = ty[i].type;
        built b;
        build(&b, &s);
        loaded L;
        const char *tn = kern_type_traits(s.type)->name;
        if (!T_CHECK(load(&L, &b) == 0, "llama %s loads (%s)", tn, L.m.err)) {
            built_free(&b);
            continue;
        }
        size_t nl = (size_t)NTOK * s.n_vocab;
        float *out = malloc(nl * sizeof(float));
        double *ref = malloc(nl * sizeof(double));
        ref_forward(&b, &s, toks, NTOK, ref);
        int rc = run(&L.m, tp, KERN_F32, 0, toks, NTOK, NTOK, out);
        double d = max_diff_ref(out, ref, nl);
        /* the reference uses the dequantized weights but exact activations:
         * the difference is mote's activation rounding (F16/BF16/Q8) */
        T_CHECK(rc == 0 && d < ty[i].tol, "llama %s vs reference on dequantized weights: %.2e < %g",
                tn, d, ty[i].tol);
        free(out);
        free(ref);
        unload(&L);
        built_free(&b);
    }
}

static void test_batching_threads(void)
{
    /* head size 16 and 70 tokens: the tiled attention path */
    spec s = base_spec("qwen2");
    s.n_vocab = 48;
    built b;
    build(&b, &s);
    loaded L;
    if (!T_CHECK(load(&L, &b) == 0, "qwen2 for batching loads")) {
        built_free(&b);
        return;
    }
    enum { N = 70 };
    int32_t t[N];
    for (int i = 0; i < N; i++) t[i] = (i * 7 + 3) % s.n_vocab;
    size_t nl = (size_t)N * s.n_vocab;
    float *a = malloc(nl * sizeof(float)), *c = malloc(nl * sizeof(float)), *d = malloc(nl * sizeof(float));
    double *ref = malloc(nl * sizeof(double));
    ref_forward(&b, &s, t, N, ref);
    thread_pool one, two;
    thread_pool_init(&one, 1);
    thread_pool_init(&two, 2);
    int rc = run(&L.m, &one, KERN_F16, 0, t, N, N, a);
    int rc2 = run(&L.m, &two, KERN_F16, 0, t, N, N, c);
    T_CHECK(rc == 0 && rc2 == 0 && memcmp(a, c, nl * sizeof(float)) == 0,
            "70-token batch: 1 and %d threads give bit-identical logits", two.n_threads);
    double e = max_diff_ref(a, ref, nl);
    T_CHECK(e < 0.05, "70-token batch (tiled attention) vs reference: %.2e", e);
    rc = run(&L.m, &two, KERN_F16, 0, t, N, 1, d);
    e = max_diff(a, d, nl);
    T_CHECK(rc == 0 && e < 0.05, "tiled batch vs token by token: %.2e", e);
    rc = run(&L.m, &two, KERN_F16, 16, t, N, N, d);   /* micro-batches of 16 inside one call */
    e = max_diff(a, d, nl);
    T_CHECK(rc == 0 && e < 0.05, "n_batch 16 micro-batches vs one batch: %.2e", e);
    thread_pool_free(&one);
    thread_pool_free(&two);
    free(a);
    free(c);
    free(d);
    free(ref);
    unload(&L);
    built_free(&b);
}

static void test_calls(void)
{
    spec s = base_spec("llama");
    built b;
    build(&b, &s);
    loaded L;
    if (!T_CHECK(load(&L, &b) == 0, "llama for call checks loads")) {
        built_free(&b);
        return;
    }
    fwd_ctx c;
    fwd_kv kv;
    fwd_init(&c, &L.m, NULL, NULL, 0);
    fwd_kv_init(&kv, &L.m, 8, KERN_F16);
    float lg[64];
    int32_t bad = 40;
    T_CHECK(fwd_eval(&c, &kv, &bad, 1, lg, 0) == FWD_ERR_ARG && strstr(c.err, "out of range"),
            "token id n_vocab refused (%s)", c.err);
    bad = -1;
    T_CHECK(fwd_eval(&c, &kv, &bad, 1, lg, 0) == FWD_ERR_ARG, "negative token id refused");
    T_CHECK(fwd_eval(&c, &kv, toks, 0, lg, 0) == FWD_ERR_ARG, "empty batch refused");
    T_CHECK(fwd_eval(&c, &kv, toks, 8, lg, 0) == 0 && kv.n_past == 8, "8 tokens fill an 8-position cache");
    T_CHECK(fwd_eval(&c, &kv, toks, 1, lg, 0) == FWD_ERR_CTX_FULL && kv.n_past == 8,
            "one more: context full, cache unchanged (%s)", c.err);
    fwd_kv_truncate(&kv, 3);
    T_CHECK(kv.n_past == 3 && fwd_eval(&c, &kv, toks + 3, 2, lg, 0) == 0 && kv.n_past == 5,
            "truncate then continue");
    fwd_kv kv2;
    T_CHECK(fwd_kv_init(&kv2, &L.m, 8, KERN_Q8_0) == FWD_ERR_ARG, "KV type Q8_0 refused");
    fwd_kv_free(&kv);
    fwd_free(&c);
    unload(&L);
    built_free(&b);
}

static void expect_refused(const char *label, spec s, const char *needle, int code)
{
    built b;
    build(&b, &s);
    loaded L;
    int rc = load(&L, &b);
    T_CHECK(rc == code && strstr(L.m.err, needle), "%s refused (%d): %s", label, rc, L.m.err);
    unload(&L);
    built_free(&b);
}

static void test_refusals(void)
{
    spec s = base_spec("llama");
    s.arch = "gpt2";
    expect_refused("architecture gpt2", s, "'gpt2' is not supported", MODEL_ERR_UNSUPPORTED);
    s = base_spec("llama");
    s.drop = "blk.1.ffn_up.weight";
    expect_refused("missing tensor", s, "missing tensor blk.1.ffn_up.weight", MODEL_ERR_FORMAT);
    s = base_spec("llama");
    s.extra = "blk.0.ffn_gate_inp.weight";
    expect_refused("unknown extra tensor (MoE router)", s, "ffn_gate_inp", MODEL_ERR_UNSUPPORTED);
    s = base_spec("llama");
    s.skip_key = "block_count";
    expect_refused("missing block_count", s, "llama.block_count", MODEL_ERR_FORMAT);
    s = base_spec("llama");
    s.skip_key = "attention.layer_norm_rms_epsilon";
    expect_refused("missing rms epsilon", s, "layer_norm_rms_epsilon", MODEL_ERR_FORMAT);
    s = base_spec("llama");
    s.n_head_kv = 3;
    expect_refused("head_count_kv not dividing", s, "head_count_kv", MODEL_ERR_FORMAT);
    s = base_spec("llama");
    s.norm_type = KERN_F16;
    expect_refused("F16 norm weights", s, "expected F32", MODEL_ERR_UNSUPPORTED);
    s = base_spec("qwen2");
    s.biases = 0;
    expect_refused("qwen2 without biases", s, "attn_q.bias", MODEL_ERR_FORMAT);
    s = base_spec("llama");
    s.n_rot = 15;
    expect_refused("odd rope dimension", s, "rope.dimension_count", MODEL_ERR_FORMAT);

    /* misshapen: build llama with ff 96 but declare 128 */
    spec t = base_spec("llama");
    built b;
    build(&b, &t);
    /* rewrite the key by building a second file whose tensors disagree */
    gguf_file g;
    gguf_open_mem(&g, b.buf, b.len);
    gguf_writer w;
    gguf_writer_init(&w);
    for (uint64_t i = 0; i < g.n_kv; i++) {
        if (gguf_str_eq(g.kv[i].key, "llama.feed_forward_length")) gguf_writer_add_u32(&w, "llama.feed_forward_length", 128);
        else gguf_writer_add_kv(&w, &g.kv[i]);
    }
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        char nm[96];
        snprintf(nm, sizeof nm, "%.*s", (int)g.tensors[i].name.len, g.tensors[i].name.ptr);
        gguf_writer_add_tensor(&w, nm, g.tensors[i].type, g.tensors[i].n_dims, g.tensors[i].ne,
                               g.tensors[i].data, g.tensors[i].nbytes);
    }
    uint8_t *buf;
    size_t len;
    gguf_writer_finish(&w, &buf, &len);
    gguf_writer_free(&w);
    gguf_close(&g);
    gguf_file g2;
    model m;
    gguf_open_mem(&g2, buf, len);
    int rc = model_init(&m, &g2);
    T_CHECK(rc == MODEL_ERR_FORMAT && strstr(m.err, "has shape") && strstr(m.err, "expected"),
            "tensor shape disagreeing with metadata refused: %s", m.err);
    if (rc == 0) model_free(&m);
    gguf_close(&g2);
    free(buf);
    built_free(&b);

    model mo;
    T_CHECK(model_open(&mo, "/nonexistent/x.gguf") == MODEL_ERR_IO && strstr(mo.err, "/nonexistent/x.gguf"),
            "missing file: MODEL_ERR_IO naming it (%s)", mo.err);
}

int main(void)
{
    thread_pool tp;
    thread_pool_init(&tp, 2);
    test_arch("llama", base_spec("llama"), 2e-3, &tp);
    spec s = base_spec("llama");
    s.rope_freqs = 1;
    s.rope_base = 500000.0f;
    test_arch("llama + rope_freqs", s, 2e-3, &tp);
    s = base_spec("llama");
    s.tied = 1;
    test_arch("llama, tied output", s, 2e-3, &tp);
    s = base_spec("llama");
    s.n_rot = 8;   /* partial rotary */
    test_arch("llama, n_rot < head size", s, 2e-3, &tp);
    test_arch("qwen2", base_spec("qwen2"), 2e-3, &tp);
    test_arch("qwen3", base_spec("qwen3"), 2e-3, &tp);
    test_arch("phi3", base_spec("phi3"), 2e-3, &tp);
    test_types(&tp);
    test_batching_threads();
    test_calls();
    test_refusals();
    thread_pool_free(&tp);
    return t_done();
}
