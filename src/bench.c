/* bench.c — `mote bench`, `mote bench --membw`, `mote gen-model` (see bench.h).
 *
 * Sections: timing helpers -> model throughput -> read bandwidth ->
 * gen-model (shapes, vocabulary, random rows, writing).
 */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward.h"
#include "gguf_write.h"
#include "quantize.h"
#include "thread.h"

static int berr(char *err, size_t cap, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int berr(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- timing helpers ------------------------------------------------------------ */

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of n values (sorts v). */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* ---- model throughput ------------------------------------------------------------- */

uint64_t bench_decode_bytes(const model *m)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < m->g->n_tensors; i++) {
        const gguf_tensor *t = &m->g->tensors[i];
        if (m->tok_embd.data && t->data == m->tok_embd.data && !m->tied_output)
            s += m->tok_embd.row_bytes;           /* a decode step looks up one row */
        else
            s += t->nbytes;
    }
    return s;
}

/* The first index of the largest value (0 when none compares larger than
 * x[0]). Eight running maxima, then a search for the first index holding
 * theirs: one pass of `x[i] > x[best]` was a load-compare-select chain of
 * ~7 cycles per element, 60 us of every TinyLlama decode step. */
static int32_t argmax(const float *x, int n)
{
    float m[8];
    for (int l = 0; l < 8; l++) m[l] = x[0];
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) m[l] = x[i + l] > m[l] ? x[i + l] : m[l];
    for (; i < n; i++) m[0] = x[i] > m[0] ? x[i] : m[0];
    float best = m[0];
    for (int l = 1; l < 8; l++) best = m[l] > best ? m[l] : best;
    for (i = 0; i < n; i++)
        if (x[i] == best) return i;
    return 0;
}

int bench_model(const model *m, const kern_table *kt, int n_threads, int pp, int tg, int reps,
                size_t membw_bytes, bench_result *r, char *err, size_t errcap)
{
    memset(r, 0, sizeof *r);
    if (pp < 0 || tg < 0 || pp + tg < 1 || reps < 1 || pp > (1 << 20) || tg > (1 << 20) || reps > 1000)
        return berr(err, errcap, BENCH_ERR_ARG, "bad sizes: pp %d, tg %d, reps %d", pp, tg, reps);
    const int n_vocab = m->hp.n_vocab;
    const int n_ctx = pp + tg + 1;
    thread_pool tp;
    fwd_ctx c;
    fwd_kv kv;
    fwd_prof prof = {0, 0};
    memset(&c, 0, sizeof c);
    memset(&kv, 0, sizeof kv);
    thread_pool_init(&tp, n_threads);
    int32_t *prompt = malloc((size_t)(pp + 1) * sizeof *prompt);
    float *logits = malloc((size_t)n_vocab * sizeof *logits);
    double *tpp = calloc((size_t)reps, sizeof *tpp), *ttg = calloc((size_t)reps, sizeof *ttg);
    double *probe = calloc((size_t)reps, sizeof *probe), *ratio = calloc((size_t)reps, sizeof *ratio);
    int rc = 0;
    if (!prompt || !logits || !tpp || !ttg || !probe || !ratio) {
        rc = berr(err, errcap, BENCH_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* BOS (id 1 in SPM vocabularies; any id does) then a fixed spread of ids */
    for (int i = 0; i <= pp; i++) prompt[i] = i == 0 ? (n_vocab > 1 ? 1 : 0) : (int32_t)((i * 7919L + 13) % n_vocab);
    int rc2 = fwd_init(&c, m, kt, &tp, pp > 0 ? pp : 1);
    if (rc2 < 0) {
        rc = berr(err, errcap, BENCH_ERR_RUN, "%s", c.err);
        goto out;
    }
    rc2 = fwd_kv_init(&kv, m, n_ctx, KERN_F16);
    if (rc2 < 0) {
        rc = berr(err, errcap, rc2 == FWD_ERR_NOMEM ? BENCH_ERR_NOMEM : BENCH_ERR_RUN,
                  "cannot allocate a KV cache of %d positions", n_ctx);
        goto out;
    }
    /* warm-up: a short prompt and one decode step read every weight once */
    int nw = pp < 16 ? (pp > 0 ? pp : 1) : 16;
    if (fwd_eval(&c, &kv, prompt, nw, logits, 0) < 0 || fwd_eval(&c, &kv, prompt, 1, logits, 0) < 0) {
        rc = berr(err, errcap, BENCH_ERR_RUN, "%s", c.err);
        goto out;
    }
    for (int rep = 0; rep < reps; rep++) {
        fwd_kv_truncate(&kv, 0);
        double t0 = now_sec();
        if (fwd_eval(&c, &kv, prompt, pp > 0 ? pp : 1, logits, 0) < 0) {
            rc = berr(err, errcap, BENCH_ERR_RUN, "%s", c.err);
            goto out;
        }
        const double t_pp = now_sec() - t0;
        if (membw_bytes && tg > 0) {
            probe[rep] = bench_membw(n_threads, membw_bytes, 5, NULL);
            if (probe[rep] < 0) {
                rc = berr(err, errcap, BENCH_ERR_NOMEM, "cannot allocate the %zu MiB bandwidth probe",
                          membw_bytes >> 20);
                goto out;
            }
        }
        double t1 = now_sec();
        c.prof = &prof;
        for (int i = 0; i < tg; i++) {
            int32_t next = argmax(logits, n_vocab);
            if (fwd_eval(&c, &kv, &next, 1, logits, 0) < 0) {
                rc = berr(err, errcap, BENCH_ERR_RUN, "%s", c.err);
                goto out;
            }
        }
        double t2 = now_sec();
        c.prof = NULL;
        tpp[rep] = t_pp;
        ttg[rep] = t2 - t1;
    }
    r->threads = tp.n_threads;
    r->pp = pp;
    r->tg = tg;
    r->reps = reps;
    r->decode_bytes = bench_decode_bytes(m);
    if (pp > 0) {
        double best = tpp[0];
        for (int i = 1; i < reps; i++) best = tpp[i] < best ? tpp[i] : best;
        r->pp_tps = pp / median(tpp, reps);
        r->pp_tps_best = pp / best;
    }
    if (tg > 0) {
        double best = ttg[0];
        for (int i = 1; i < reps; i++) best = ttg[i] < best ? ttg[i] : best;
        r->tg_tps = tg / median(ttg, reps);
        r->tg_tps_best = tg / best;
        r->decode_gbps = (double)r->decode_bytes * r->tg_tps / 1e9;
        double all = 0;
        for (int i = 0; i < reps; i++) all += ttg[i];
        const double per = 1e3 / ((double)tg * reps);
        r->tg_ms_matmul = prof.matmul * per;
        r->tg_ms_attn = prof.attn * per;
        r->tg_ms_other = (all - prof.matmul - prof.attn) * per;
        if (membw_bytes) {
            for (int i = 0; i < reps; i++) ratio[i] = (double)r->decode_bytes * tg / ttg[i] / 1e9 / probe[i];
            r->membw_gbps = median(probe, reps);
            r->decode_of_membw = median(ratio, reps);
        }
    }
out:
    fwd_kv_free(&kv);
    if (c.m) fwd_free(&c);
    thread_pool_free(&tp);
    free(prompt);
    free(logits);
    free(tpp);
    free(ttg);
    free(probe);
    free(ratio);
    return rc;
}

/* ---- read bandwidth ------------------------------------------------------------------ */

typedef struct membw_job {
    const uint64_t *buf;     /* n64 words */
    uint64_t sums[THREAD_MAX][8];   /* one cache line per thread */
} membw_job;

/* Sum words [8 * i0, 8 * i1): eight independent accumulators so the loop is
 * bound by memory, not by an add chain. */
static void membw_sum(void *ctx, int64_t i0, int64_t i1, int ith)
{
    membw_job *j = ctx;
    const uint64_t *p = j->buf + 8 * i0;
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
    for (int64_t i = i0; i < i1; i++, p += 8) {
        a0 += p[0];
        a1 += p[1];
        a2 += p[2];
        a3 += p[3];
        a4 += p[4];
        a5 += p[5];
        a6 += p[6];
        a7 += p[7];
    }
    j->sums[ith][0] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}

double bench_membw(int n_threads, size_t bytes, int reps, int *threads_used)
{
    if (bytes < (1u << 20) || reps < 1) return BENCH_ERR_ARG;
    size_t n64 = bytes / 64 * 8;
    membw_job *j = calloc(1, sizeof *j);
    uint64_t *buf = malloc(n64 * sizeof *buf);
    if (!j || !buf) {
        free(j);
        free(buf);
        return BENCH_ERR_NOMEM;
    }
    thread_pool tp;
    thread_pool_init(&tp, n_threads);
    if (threads_used) *threads_used = tp.n_threads;
    for (size_t i = 0; i < n64; i++) buf[i] = i;   /* fault every page in */
    j->buf = buf;
    double best = 0;
    uint64_t check = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = now_sec();
        thread_pool_for(&tp, (int64_t)(n64 / 8), membw_sum, j);
        double dt = now_sec() - t0;
        for (int t = 0; t < tp.n_threads; t++) check += j->sums[t][0];
        double gbps = (double)(n64 * sizeof *buf) / dt / 1e9;
        if (gbps > best) best = gbps;
    }
    /* the sum is n64 * (n64 - 1) / 2 per pass: a wrong one means a broken split */
    uint64_t want = (uint64_t)n64 * (uint64_t)(n64 - 1) / 2 * (uint64_t)reps;
    thread_pool_free(&tp);
    free(buf);
    free(j);
    return check == want ? best : BENCH_ERR_RUN;
}

/* ---- gen-model --------------------------------------------------------------------------- */

static const bench_shape shapes[] = {
    /* TinyLlama-1.1B: 32 heads of 64, 4 KV heads, untied output */
    {"tinyllama", 2048, 22, 32, 4, 5632, 32000, 2048, 0, 10000.0f},
    /* SmolLM-135M: 9 heads of 64, 3 KV heads, output tied to token_embd */
    {"smollm", 576, 30, 9, 3, 1536, 49152, 2048, 1, 10000.0f},
    /* small, for tests: every row a multiple of 256 */
    {"tiny", 256, 2, 4, 2, 768, 512, 2048, 0, 10000.0f},
};

const bench_shape *bench_shape_find(const char *name)
{
    for (size_t i = 0; name && i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(name, shapes[i].name)) return &shapes[i];
    return NULL;
}

const char *bench_shape_names(void) { return "tinyllama smollm tiny"; }

/* The synthetic SentencePiece vocabulary: <unk> <s> </s>, <0x00>..<0xFF>,
 * then pieces named by bijective base-26 numbers ("a".."z", "aa", ...),
 * each with and without the word-start mark U+2581, shorter ones scored
 * higher. All distinct. */
static int gen_vocab(gguf_writer *w, int n_vocab, char *err, size_t cap)
{
    char **tok = calloc((size_t)n_vocab, sizeof *tok);
    float *score = malloc((size_t)n_vocab * sizeof *score);
    int32_t *type = malloc((size_t)n_vocab * sizeof *type);
    int rc = 0;
    if (!tok || !score || !type) {
        rc = berr(err, cap, BENCH_ERR_NOMEM, "out of memory for a %d-token vocabulary", n_vocab);
        goto out;
    }
    for (int i = 0; i < n_vocab; i++) {
        char s[32];
        if (i < 3) {
            snprintf(s, sizeof s, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
            type[i] = i == 0 ? 2 : 3;              /* unknown, control */
        } else if (i < 3 + 256) {
            snprintf(s, sizeof s, "<0x%02X>", i - 3);
            type[i] = 6;                          /* byte */
        } else {
            int k = (i - 259) / 2 + 1, n = 0;
            char letters[16];
            while (k > 0) {
                letters[n++] = (char)('a' + (k - 1) % 26);
                k = (k - 1) / 26;
            }
            size_t o = 0;
            if ((i - 259) % 2 == 0) {
                memcpy(s, "\xe2\x96\x81", 3);    /* U+2581 */
                o = 3;
            }
            while (n > 0) s[o++] = letters[--n];
            s[o] = 0;
            type[i] = 1;                          /* normal */
        }
        score[i] = i < 259 ? 0.0f : -(float)(i - 259);
        tok[i] = strdup(s);
        if (!tok[i]) {
            rc = berr(err, cap, BENCH_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, (uint64_t)n_vocab);
    gguf_writer_add_arr_f32(w, "tokenizer.ggml.scores", score, (uint64_t)n_vocab);
    gguf_writer_add_arr_i32(w, "tokenizer.ggml.token_type", type, (uint64_t)n_vocab);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", 1);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", 0);
out:
    if (tok)
        for (int i = 0; i < n_vocab; i++) free(tok[i]);
    free(tok);
    free(score);
    free(type);
    return rc;
}

/* One tensor of the generated model: its random rows are uniform in
 * [-scale, scale) (norms: all 1). */
typedef struct gen_tensor {
    char name[64];
    int n_dims;
    int64_t ne[2];
    int type;
    float scale;             /* 0: a norm, all ones */
} gen_tensor;

typedef struct gen_job {
    const gen_tensor *ts;
    uint64_t seed;
    thread_pool *tp;
    float *scratch;          /* (n_threads, max_ne0) */
    int64_t max_ne0;
    /* the tensor being filled */
    size_t cur;
    uint8_t *dst;
    size_t row_bytes;
    int failed;
} gen_job;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Row r of tensor cur depends only on (seed, cur, r): any thread split gives
 * the same file. */
static void gen_rows(void *ctx, int64_t r0, int64_t r1, int ith)
{
    gen_job *j = ctx;
    const gen_tensor *t = &j->ts[j->cur];
    float *x = j->scratch + (size_t)ith * (size_t)j->max_ne0;
    for (int64_t r = r0; r < r1; r++) {
        uint64_t s = j->seed ^ ((uint64_t)(j->cur + 1) << 40) ^ (uint64_t)r * 0x2545f4914f6cdd1dull;
        for (int64_t i = 0; i < t->ne[0]; i++) {
            if (t->scale == 0) {
                x[i] = 1.0f;
                continue;
            }
            uint64_t v = splitmix64(&s);
            /* two values per draw: 24 random bits each -> [-1, 1) */
            x[i] = ((float)(v >> 40) * (1.0f / 8388608.0f) - 1.0f) * t->scale;
            if (++i < t->ne[0]) x[i] = ((float)((v >> 8) & 0xffffff) * (1.0f / 8388608.0f) - 1.0f) * t->scale;
        }
        if (kern_quantize_row(t->type, x, j->dst + (size_t)r * j->row_bytes, t->ne[0]) < 0)
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
    }
}

/* Append a tensor of n0 x n1 (n1 = 0: a 1-D norm, F32 ones). */
static void gen_add(gen_tensor *ts, size_t *k, int type, const char *name, int64_t n0, int64_t n1, float scale)
{
    gen_tensor *t = &ts[(*k)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = n1 > 0 ? 2 : 1;
    t->ne[0] = n0;
    t->ne[1] = n1 > 0 ? n1 : 1;
    t->scale = scale;
    t->type = scale == 0 ? KERN_F32 : type;
}

static int gen_fill(void *ctx, size_t i, void *dst, size_t nbytes, char *err, size_t errcap)
{
    gen_job *j = ctx;
    const gen_tensor *t = &j->ts[i];
    j->cur = i;
    j->dst = dst;
    j->row_bytes = kern_row_size(t->type, t->ne[0]);
    j->failed = 0;
    (void)nbytes;
    thread_pool_for(j->tp, t->n_dims > 1 ? t->ne[1] : 1, gen_rows, j);
    if (j->failed)
        return berr(err, errcap, BENCH_ERR_ARG, "tensor %s: no quantizer for type %s", t->name,
                    kern_type_traits(t->type)->name);
    return 0;
}

int bench_gen_model(const char *path, const bench_shape *s, int type, uint64_t seed, int n_threads,
                    char *err, size_t errcap)
{
    const kern_traits *tr = kern_type_traits(type);
    if (!tr || type == KERN_Q8_K || type == KERN_Q8_1 || !kern_table_ref.from_float[type])
        return berr(err, errcap, BENCH_ERR_ARG, "gen-model: cannot write weights of type %d", type);
    if (s->n_embd < 1 || s->n_layer < 1 || s->n_head < 1 || s->n_head_kv < 1 || s->n_head % s->n_head_kv ||
        s->n_embd % s->n_head || s->n_ff < 1 || s->n_vocab < 259 + 2 || s->n_ctx < 1 || s->n_layer > 4096)
        return berr(err, errcap, BENCH_ERR_ARG, "gen-model: inconsistent shape '%s'", s->name ? s->name : "?");
    const int hd = s->n_embd / s->n_head, kvd = hd * s->n_head_kv;
    size_t n = (size_t)(s->tied ? 2 : 3) + 9 * (size_t)s->n_layer;
    gen_tensor *ts = calloc(n, sizeof *ts);
    quant_out_tensor *ot = calloc(n, sizeof *ot);
    if (!ts || !ot) {
        free(ts);
        free(ot);
        return berr(err, errcap, BENCH_ERR_NOMEM, "out of memory");
    }
    size_t k = 0;
    /* weights uniform in +-sqrt(3 / n_in) (unit variance out for unit variance in),
     * halved to keep the random residual stream tame; token_embd +-0.5 */
    const float s_e = 0.5f * sqrtf(3.0f / (float)s->n_embd), s_f = 0.5f * sqrtf(3.0f / (float)s->n_ff),
                s_q = 0.5f * sqrtf(3.0f / (float)(hd * s->n_head));
    gen_add(ts, &k, type, "token_embd.weight", s->n_embd, s->n_vocab, 0.5f);
    gen_add(ts, &k, type, "output_norm.weight", s->n_embd, 0, 0.0f);
    if (!s->tied) gen_add(ts, &k, type, "output.weight", s->n_embd, s->n_vocab, s_e);
    for (int l = 0; l < s->n_layer; l++) {
        char nm[64];
#define LAYER(x) (snprintf(nm, sizeof nm, "blk.%d." x, l), nm)
        gen_add(ts, &k, type, LAYER("attn_norm.weight"), s->n_embd, 0, 0.0f);
        gen_add(ts, &k, type, LAYER("attn_q.weight"), s->n_embd, hd * s->n_head, s_e);
        gen_add(ts, &k, type, LAYER("attn_k.weight"), s->n_embd, kvd, s_e);
        gen_add(ts, &k, type, LAYER("attn_v.weight"), s->n_embd, kvd, s_e);
        gen_add(ts, &k, type, LAYER("attn_output.weight"), hd * s->n_head, s->n_embd, s_q);
        gen_add(ts, &k, type, LAYER("ffn_norm.weight"), s->n_embd, 0, 0.0f);
        gen_add(ts, &k, type, LAYER("ffn_gate.weight"), s->n_embd, s->n_ff, s_e);
        gen_add(ts, &k, type, LAYER("ffn_up.weight"), s->n_embd, s->n_ff, s_e);
        gen_add(ts, &k, type, LAYER("ffn_down.weight"), s->n_ff, s->n_embd, s_f);
#undef LAYER
    }
    int64_t max_ne0 = 1;
    for (size_t i = 0; i < n; i++) {
        ot[i].name = ts[i].name;
        ot[i].type = ts[i].type;
        ot[i].n_dims = ts[i].n_dims;
        ot[i].ne[0] = ts[i].ne[0];
        ot[i].ne[1] = ts[i].ne[1];
        ot[i].ne[2] = ot[i].ne[3] = 1;
        if (ts[i].ne[0] > max_ne0) max_ne0 = ts[i].ne[0];
    }

    gguf_writer w;
    gguf_writer_init(&w);
    char name[96];
    snprintf(name, sizeof name, "mote-random-%s-%s", s->name ? s->name : "custom", tr->name);
    gguf_writer_add_str(&w, "general.architecture", "llama");
    gguf_writer_add_str(&w, "general.name", name);
    if (type == KERN_F32 || type == KERN_F16 || type == KERN_BF16)
        gguf_writer_add_u32(&w, "general.file_type", type == KERN_F32 ? 0 : type == KERN_F16 ? 1 : 32);
    gguf_writer_add_u32(&w, "general.quantization_version", QUANT_QNT_VERSION);
    gguf_writer_add_u32(&w, "llama.context_length", (uint32_t)s->n_ctx);
    gguf_writer_add_u32(&w, "llama.embedding_length", (uint32_t)s->n_embd);
    gguf_writer_add_u32(&w, "llama.block_count", (uint32_t)s->n_layer);
    gguf_writer_add_u32(&w, "llama.feed_forward_length", (uint32_t)s->n_ff);
    gguf_writer_add_u32(&w, "llama.attention.head_count", (uint32_t)s->n_head);
    gguf_writer_add_u32(&w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv);
    gguf_writer_add_u32(&w, "llama.rope.dimension_count", (uint32_t)hd);
    gguf_writer_add_f32(&w, "llama.rope.freq_base", s->rope_base);
    gguf_writer_add_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_add_u32(&w, "llama.vocab_size", (uint32_t)s->n_vocab);
    int rc = gen_vocab(&w, s->n_vocab, err, errcap);
    gen_job job;
    memset(&job, 0, sizeof job);
    thread_pool tp;
    thread_pool_init(&tp, n_threads);
    if (rc == 0 && w.status) rc = berr(err, errcap, BENCH_ERR_ARG, "%s", w.err);
    if (rc == 0) {
        job.scratch = malloc((size_t)tp.n_threads * (size_t)max_ne0 * sizeof(float));
        if (!job.scratch) rc = berr(err, errcap, BENCH_ERR_NOMEM, "out of memory");
    }
    if (rc == 0) {
        job.ts = ts;
        job.seed = seed;
        job.tp = &tp;
        job.max_ne0 = max_ne0;
        int qrc = quant_write_gguf(path, &w, GGUF_DEFAULT_ALIGNMENT, ot, n, gen_fill, &job, err, errcap);
        if (qrc < 0) rc = qrc == QUANT_ERR_IO ? BENCH_ERR_IO : qrc == QUANT_ERR_NOMEM ? BENCH_ERR_NOMEM : BENCH_ERR_ARG;
    }
    thread_pool_free(&tp);
    free(job.scratch);
    gguf_writer_free(&w);
    free(ts);
    free(ot);
    return rc;
}
