/* tests/test_quantize.c — `mote quantize` (quantize.c) and the model
 * generator of `mote gen-model` / measuring helpers of `mote bench` (bench.c).
 *
 *  - every file type: small generated F32 models are quantized; the output
 *    loads and runs, says its file type, and every converted tensor equals
 *    kern_quantize_row of the source rows (also when re-quantizing);
 *  - the mix rules, checked on a 16-layer metadata-only model against the
 *    types llama-quantize's documentation gives, layer by layer (attn_v /
 *    ffn_down bumps, output.weight, tied token_embd, fallbacks, --pure);
 *  - against llama-quantize itself (../shared): our output from the same F32
 *    file is byte-identical to its files (synthetic/tiny-llama-256d2l-* and
 *    llama/stories260K-*);
 *  - refusals: unknown type, IN == OUT, NaN weights (no output left), files
 *    that are not models; thread counts give identical files;
 *  - gen-model is deterministic and loads; bench_model and bench_membw give
 *    sane figures on a tiny model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "forward.h"
#include "gguf.h"
#include "gguf_write.h"
#include "kernels/kernels.h"
#include "model.h"
#include "quantize.h"
#include "test.h"
#include "thread.h"

static char tmpdir[64];

static const char *tpath(const char *name)
{
    static char buf[8][256];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(n > 0 ? (size_t)n : 1);
    *len = *data && n >= 0 ? fread(*data, 1, (size_t)n, f) : 0;
    fclose(f);
    return *data && (long)*len == n ? 0 : -1;
}

static int same_files(const char *a, const char *b)
{
    uint8_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    int same = read_file(a, &x, &nx) == 0 && read_file(b, &y, &ny) == 0 && nx == ny && !memcmp(x, y, nx);
    free(x);
    free(y);
    return same;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int quantize(const char *in, const char *out, int ftype, int pure, int threads, char *err, size_t cap)
{
    quant_params p = { .ftype = ftype, .pure = pure, .n_threads = threads, .log = NULL };
    return quant_file(in, out, &p, err, cap);
}

/* ---- output checks ---------------------------------------------------------- */

/* Every tensor of q: the type the plan gives for src, and converted data ==
 * kern_quantize_row(to_float(src row)). Returns the number of mismatches. */
static int check_against_source(const char *src_path, const char *q_path, int ftype, int pure, int *n_conv)
{
    gguf_file gs, gq;
    int bad = 0;
    *n_conv = 0;
    if (gguf_open(&gs, src_path) < 0) return 1000;
    if (gguf_open(&gq, q_path) < 0) {
        gguf_close(&gs);
        return 1000;
    }
    uint64_t *order = calloc(gs.n_tensors, sizeof *order);
    quant_choice *ch = calloc(gs.n_tensors, sizeof *ch);
    quant_params p = { .ftype = ftype, .pure = pure };
    char err[256];
    if (quant_plan(&gs, &p, order, ch, err, sizeof err) < 0 || gq.n_tensors != gs.n_tensors) bad += 1000;
    for (uint64_t k = 0; !bad && k < gs.n_tensors; k++) {
        const gguf_tensor *s = &gs.tensors[order[k]], *q = &gq.tensors[k];
        if (s->name.len != q->name.len || memcmp(s->name.ptr, q->name.ptr, s->name.len) || q->type != ch[order[k]].type) {
            bad++;
            continue;
        }
        if (!ch[order[k]].convert) {
            bad += s->nbytes != q->nbytes || memcmp(s->data, q->data, s->nbytes);
            continue;
        }
        (*n_conv)++;
        int64_t ne0 = s->ne[0], nrows = gguf_tensor_nelements(s) / ne0;
        size_t srow = kern_row_size(s->type, ne0), qrow = kern_row_size(q->type, ne0);
        float *x = malloc((size_t)ne0 * sizeof *x);
        uint8_t *y = malloc(qrow);
        for (int64_t r = 0; r < nrows; r++) {
            kern_table_ref.to_float[s->type]((const uint8_t *)s->data + r * srow, x, ne0);
            if (kern_quantize_row(q->type, x, y, ne0) < 0 || memcmp(y, (const uint8_t *)q->data + r * qrow, qrow)) {
                bad++;
                break;
            }
        }
        free(x);
        free(y);
    }
    free(order);
    free(ch);
    gguf_close(&gs);
    gguf_close(&gq);
    return bad;
}

/* Load and run 5 tokens; 1 if all logits are finite. */
static int runs(const char *path, char *why, size_t cap)
{
    model m;
    if (model_open(&m, path) < 0) {
        snprintf(why, cap, "%s", m.err);
        return 0;
    }
    fwd_ctx c;
    fwd_kv kv;
    int ok = 0;
    float *logits = malloc((size_t)m.hp.n_vocab * sizeof *logits);
    if (fwd_init(&c, &m, NULL, NULL, 8) == 0) {
        if (fwd_kv_init(&kv, &m, 16, KERN_F16) == 0) {
            int32_t toks[5] = {1, 270, 271, 272, 7};
            if (fwd_eval(&c, &kv, toks, 4, logits, 0) == 0 && fwd_eval(&c, &kv, toks + 4, 1, logits, 0) == 0) {
                ok = 1;
                for (int i = 0; i < m.hp.n_vocab; i++) ok &= isfinite(logits[i]) != 0;
                if (!ok) snprintf(why, cap, "non-finite logits");
            } else {
                snprintf(why, cap, "%s", c.err);
            }
            fwd_kv_free(&kv);
        }
        fwd_free(&c);
    } else {
        snprintf(why, cap, "%s", c.err);
    }
    free(logits);
    model_free(&m);
    return ok;
}

static void test_every_type(void)
{
    static const bench_shape tiny = {"tiny", 256, 2, 4, 2, 768, 512, 256, 0, 10000.0f};
    /* rows of 64 and 172: every K-quant falls back, 172 even to F16; tied output */
    static const bench_shape odd = {"odd", 64, 2, 4, 2, 172, 300, 256, 1, 10000.0f};
    char err[512];
    char src[2][256];   /* tpath's buffers rotate: keep copies */
    snprintf(src[0], sizeof src[0], "%s", tpath("tiny-F32.gguf"));
    snprintf(src[1], sizeof src[1], "%s", tpath("odd-F32.gguf"));
    int rc = bench_gen_model(src[0], &tiny, KERN_F32, 7, 0, err, sizeof err);
    T_CHECK(rc == 0, "gen-model writes a tiny F32 model (%s)", rc ? err : "ok");
    rc = bench_gen_model(src[1], &odd, KERN_F32, 8, 0, err, sizeof err);
    T_CHECK(rc == 0, "gen-model writes an odd-shaped tied F32 model (%s)", rc ? err : "ok");
    static const char *const names[] = {
        "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_K_S",
        "Q4_K_M", "Q5_K_S", "Q5_K_M", "Q6_K", "IQ4_NL", "IQ4_XS", "F16", "BF16", "F32",
    };
    for (int s = 0; s < 2; s++) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            for (int pure = 0; pure < 2; pure++) {
                int ft = quant_ftype_parse(names[i]);
                char out[64], why[256] = "";
                snprintf(out, sizeof out, "q-%s-%s%s.gguf", s ? "odd" : "tiny", names[i], pure ? "-pure" : "");
                rc = quantize(src[s], tpath(out), ft, pure, 2, err, sizeof err);
                if (!T_CHECK(rc == 0, "quantize %s: %s", out, rc ? err : "ok")) continue;
                gguf_file g;
                uint32_t gft = 99, qv = 0;
                if (gguf_open(&g, tpath(out)) == 0) {
                    gguf_get_u32(&g, "general.file_type", &gft);
                    gguf_get_u32(&g, "general.quantization_version", &qv);
                    gguf_close(&g);
                }
                int n_conv = 0, bad = check_against_source(src[s], tpath(out), ft, pure, &n_conv);
                int ok = runs(tpath(out), why, sizeof why);
                T_CHECK(gft == (uint32_t)ft && qv == 2 && bad == 0 && ok && (ft == QUANT_FT_F32 || n_conv > 0),
                        "%s: file_type %u, %d converted tensors == kern_quantize_row, runs (%s)", out, gft, n_conv,
                        bad ? "MISMATCH" : why[0] ? why : "finite logits");
                unlink(tpath(out));
            }
        }
    }
    /* re-quantizing: Q8_0 -> Q4_K_M goes through the dequantized rows */
    rc = quantize(src[0], tpath("rq-Q8_0.gguf"), QUANT_FT_Q8_0, 0, 1, err, sizeof err);
    if (rc == 0) rc = quantize(tpath("rq-Q8_0.gguf"), tpath("rq-Q4_K_M.gguf"), QUANT_FT_Q4_K_M, 0, 1, err, sizeof err);
    int n_conv = 0, bad = rc == 0 ? check_against_source(tpath("rq-Q8_0.gguf"), tpath("rq-Q4_K_M.gguf"),
                                                        QUANT_FT_Q4_K_M, 0, &n_conv) : -1;
    T_CHECK(rc == 0 && bad == 0 && n_conv > 0, "re-quantize Q8_0 -> Q4_K_M: %d tensors from dequantized rows (%s)",
            n_conv, rc ? err : bad ? "MISMATCH" : "ok");
    /* the same type again: a copy */
    rc = quantize(tpath("rq-Q8_0.gguf"), tpath("rq-Q8_0b.gguf"), QUANT_FT_Q8_0, 0, 1, err, sizeof err);
    T_CHECK(rc == 0 && same_files(tpath("rq-Q8_0.gguf"), tpath("rq-Q8_0b.gguf")),
            "Q8_0 file quantized to Q8_0 is copied unchanged");
    /* thread count does not change a byte */
    int r1 = quantize(src[0], tpath("t1.gguf"), QUANT_FT_Q4_K_M, 0, 1, err, sizeof err);
    int r2 = quantize(src[0], tpath("t2.gguf"), QUANT_FT_Q4_K_M, 0, 2, err, sizeof err);
    T_CHECK(r1 == 0 && r2 == 0 && same_files(tpath("t1.gguf"), tpath("t2.gguf")), "1 and 2 threads: identical files");
    unlink(tpath("rq-Q8_0.gguf"));
    unlink(tpath("rq-Q8_0b.gguf"));
    unlink(tpath("rq-Q4_K_M.gguf"));
    unlink(tpath("t1.gguf"));
    unlink(tpath("t2.gguf"));
}

/* ---- the mix rules on a metadata-only model ---------------------------------- */

static const char *const layer_tensors[] = {
    "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down",
};

/* A llama model of n_layer layers whose every row has ne0 elements (1 row per
 * matrix: only metadata matters to the plan). */
static int build_meta_model(gguf_file *g, uint8_t **buf, int n_layer, int n_head, int n_head_kv, int ne0,
                            int tied, const char *arch)
{
    gguf_writer w;
    gguf_writer_init(&w);
    char key[96];
    gguf_writer_add_str(&w, "general.architecture", arch);
    snprintf(key, sizeof key, "%s.block_count", arch);
    gguf_writer_add_u32(&w, key, (uint32_t)n_layer);
    snprintf(key, sizeof key, "%s.attention.head_count", arch);
    gguf_writer_add_u32(&w, key, (uint32_t)n_head);
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    gguf_writer_add_u32(&w, key, (uint32_t)n_head_kv);
    float *row = calloc((size_t)ne0 * 2, sizeof *row);
    int64_t ne[2] = { ne0, 2 };
    /* in a scrambled order: the plan must sort like llama-quantize */
    for (int l = n_layer - 1; l >= 0; l--)
        for (int k = 8; k >= 0; k--) {
            char name[64];
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, layer_tensors[k]);
            int norm = strstr(name, "norm") != NULL;
            gguf_writer_add_tensor(&w, name, KERN_F32, norm ? 1 : 2, ne, row, (size_t)ne0 * (norm ? 1 : 2) * 4);
        }
    if (!tied) gguf_writer_add_tensor(&w, "output.weight", KERN_F32, 2, ne, row, (size_t)ne0 * 8);
    gguf_writer_add_tensor(&w, "output_norm.weight", KERN_F32, 1, ne, row, (size_t)ne0 * 4);
    gguf_writer_add_tensor(&w, "token_embd.weight", KERN_F32, 2, ne, row, (size_t)ne0 * 8);
    free(row);
    size_t len;
    int rc = gguf_writer_finish(&w, buf, &len);
    gguf_writer_free(&w);
    if (rc < 0) return rc;
    return gguf_open_mem(g, *buf, len);
}

/* Type chosen for tensor `name` under (ftype, pure); -1 if absent. */
static int planned(const gguf_file *g, int ftype, int pure, const char *name)
{
    uint64_t order[512];
    quant_choice ch[512];
    quant_params p = { .ftype = ftype, .pure = pure };
    char err[256];
    if (g->n_tensors > 512 || quant_plan(g, &p, order, ch, err, sizeof err) < 0) return -1;
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (gguf_str_eq(g->tensors[i].name, name)) return ch[i].type;
    return -1;
}

/* Expected types per layer, one letter per layer: a=Q4_K b=Q5_K c=Q6_K d=Q3_K */
static int letter_type(char c)
{
    return c == 'a' ? KERN_Q4_K : c == 'b' ? KERN_Q5_K : c == 'c' ? KERN_Q6_K : c == 'd' ? KERN_Q3_K : -1;
}

static void check_layers(const gguf_file *g, int ftype, const char *tensor, const char *want)
{
    int ok = 1;
    char got[64] = "";
    for (int l = 0; want[l]; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.%s.weight", l, tensor);
        int t = planned(g, ftype, 0, name);
        got[l] = t == KERN_Q4_K ? 'a' : t == KERN_Q5_K ? 'b' : t == KERN_Q6_K ? 'c' : t == KERN_Q3_K ? 'd' : '?';
        ok &= t == letter_type(want[l]);
    }
    T_CHECK(ok, "%s %s per layer: want %s got %s (a=Q4_K b=Q5_K c=Q6_K d=Q3_K)", quant_ftype_name(ftype), tensor,
            want, got);
}

static void test_mix_rules(void)
{
    gguf_file g;
    uint8_t *buf = NULL;
    /* 16 layers, GQA 2: use_more_bits(i, 16) holds for i = 0 1 4 7 10 13 14 15 */
    if (!T_CHECK(build_meta_model(&g, &buf, 16, 4, 2, 256, 0, "llama") == 0, "16-layer metadata model")) {
        free(buf);
        return;
    }
    check_layers(&g, QUANT_FT_Q4_K_M, "attn_v", "ccaacaacaacaaccc");
    check_layers(&g, QUANT_FT_Q4_K_M, "ffn_down", "ccaacaacaacaaccc");
    check_layers(&g, QUANT_FT_Q4_K_M, "attn_q", "aaaaaaaaaaaaaaaa");
    check_layers(&g, QUANT_FT_Q4_K_M, "attn_output", "aaaaaaaaaaaaaaaa");
    check_layers(&g, QUANT_FT_Q5_K_M, "attn_v", "ccbbcbbcbbcbbccc");
    check_layers(&g, QUANT_FT_Q5_K_M, "ffn_down", "ccbbcbbcbbcbbccc");
    check_layers(&g, QUANT_FT_Q5_K_M, "ffn_up", "bbbbbbbbbbbbbbbb");
    check_layers(&g, QUANT_FT_Q3_K_M, "attn_v", "bbaaaaaaaaaaaaaa");
    check_layers(&g, QUANT_FT_Q3_K_M, "ffn_down", "baaaaaaaaaaaaaaa");
    check_layers(&g, QUANT_FT_Q3_K_M, "attn_output", "aaaaaaaaaaaaaaaa");
    check_layers(&g, QUANT_FT_Q3_K_M, "ffn_gate", "dddddddddddddddd");
    check_layers(&g, QUANT_FT_Q3_K_L, "attn_v", "bbbbbbbbbbbbbbbb");
    check_layers(&g, QUANT_FT_Q3_K_L, "ffn_down", "bbbbbbbbbbbbbbbb");
    check_layers(&g, QUANT_FT_Q3_K_L, "attn_output", "bbbbbbbbbbbbbbbb");
    check_layers(&g, QUANT_FT_Q3_K_S, "attn_v", "dddddddddddddddd");
    check_layers(&g, QUANT_FT_Q4_K_S, "attn_v", "bbbbaaaaaaaaaaaa");
    check_layers(&g, QUANT_FT_Q4_K_S, "ffn_down", "bbaaaaaaaaaaaaaa");
    check_layers(&g, QUANT_FT_Q2_K, "attn_v", "dddddddddddddddd");    /* GQA 2 < 4 */
    check_layers(&g, QUANT_FT_Q2_K, "ffn_down", "dddddddddddddddd");
    check_layers(&g, QUANT_FT_Q2_K, "attn_output", "dddddddddddddddd");
    T_CHECK(planned(&g, QUANT_FT_Q2_K, 0, "blk.3.attn_k.weight") == KERN_Q2_K &&
            planned(&g, QUANT_FT_Q2_K, 0, "token_embd.weight") == KERN_Q2_K,
            "Q2_K: attn_k and (untied) token_embd keep Q2_K");
    T_CHECK(planned(&g, QUANT_FT_IQ4_XS, 0, "blk.1.ffn_down.weight") == KERN_Q5_K &&
            planned(&g, QUANT_FT_IQ4_XS, 0, "blk.2.ffn_down.weight") == KERN_IQ4_XS &&
            planned(&g, QUANT_FT_IQ4_XS, 0, "blk.0.attn_v.weight") == KERN_IQ4_XS,
            "IQ4_XS: ffn_down Q5_K for the first n/8 layers; attn_v kept with GQA < 4");
    /* output.weight and norms */
    static const int out_ft[] = { QUANT_FT_Q4_0, QUANT_FT_Q5_1, QUANT_FT_Q2_K, QUANT_FT_Q4_K_M, QUANT_FT_IQ4_NL };
    int ok = 1;
    for (size_t i = 0; i < sizeof out_ft / sizeof out_ft[0]; i++) {
        ok &= planned(&g, out_ft[i], 0, "output.weight") == KERN_Q6_K;
        ok &= planned(&g, out_ft[i], 1, "output.weight") == quant_ftype_default_type(out_ft[i]);
        ok &= planned(&g, out_ft[i], 0, "output_norm.weight") == KERN_F32;
        ok &= planned(&g, out_ft[i], 0, "blk.5.ffn_norm.weight") == KERN_F32;
    }
    T_CHECK(ok, "output.weight: Q6_K in every mix, the default type with --pure; norms F32");
    T_CHECK(planned(&g, QUANT_FT_Q8_0, 0, "output.weight") == KERN_Q8_0 &&
            planned(&g, QUANT_FT_Q4_0, 0, "token_embd.weight") == KERN_Q4_0,
            "Q8_0 keeps output.weight Q8_0; untied token_embd gets the default type");
    T_CHECK(planned(&g, QUANT_FT_Q4_K_M, 1, "blk.0.attn_v.weight") == KERN_Q4_K &&
            planned(&g, QUANT_FT_Q4_K_M, 1, "blk.0.ffn_down.weight") == KERN_Q4_K,
            "--pure: no attn_v/ffn_down bumps");
    T_CHECK(planned(&g, QUANT_FT_F16, 0, "blk.0.attn_v.weight") == KERN_F16 &&
            planned(&g, QUANT_FT_F16, 0, "output.weight") == KERN_F16 &&
            planned(&g, QUANT_FT_BF16, 0, "token_embd.weight") == KERN_BF16 &&
            planned(&g, QUANT_FT_F16, 0, "blk.0.attn_norm.weight") == KERN_F32,
            "F16/BF16: every 2-D weight, no mix rules, norms F32");
    gguf_close(&g);
    free(buf);

    /* GQA 8 (TinyLlama's): Q2_K attn_v Q4_K, IQ4_NL attn_v Q5_K; tied output */
    if (build_meta_model(&g, &buf, 22, 32, 4, 256, 1, "llama") == 0) {
        T_CHECK(planned(&g, QUANT_FT_Q2_K, 0, "blk.7.attn_v.weight") == KERN_Q4_K &&
                planned(&g, QUANT_FT_IQ4_NL, 0, "blk.7.attn_v.weight") == KERN_Q5_K,
                "GQA 8: Q2_K attn_v -> Q4_K, IQ4_NL attn_v -> Q5_K");
        T_CHECK(planned(&g, QUANT_FT_Q4_0, 0, "token_embd.weight") == KERN_Q6_K &&
                planned(&g, QUANT_FT_Q4_0, 1, "token_embd.weight") == KERN_Q4_0,
                "tied output: token_embd follows the output rule (Q6_K), --pure keeps the default");
        /* 22 layers: use_more_bits for 0 1 4 7 10 13 16 19 20 21 */
        check_layers(&g, QUANT_FT_Q4_K_M, "ffn_down", "ccaacaacaacaacaacaaccc");
        gguf_close(&g);
    }
    free(buf);
    buf = NULL;

    /* rows of 64: K-quant fallbacks; tied output Q6_K -> Q8_0 */
    if (build_meta_model(&g, &buf, 2, 4, 2, 64, 1, "llama") == 0) {
        T_CHECK(planned(&g, QUANT_FT_Q4_K_M, 1, "blk.0.attn_q.weight") == KERN_Q5_0 &&
                planned(&g, QUANT_FT_Q5_K_M, 1, "blk.0.attn_q.weight") == KERN_Q5_1 &&
                planned(&g, QUANT_FT_Q6_K, 1, "blk.0.attn_q.weight") == KERN_Q8_0 &&
                planned(&g, QUANT_FT_Q2_K, 1, "blk.0.attn_q.weight") == KERN_Q4_0 &&
                planned(&g, QUANT_FT_Q3_K_S, 1, "blk.0.attn_q.weight") == KERN_Q4_0 &&
                planned(&g, QUANT_FT_IQ4_XS, 1, "blk.0.attn_q.weight") == KERN_IQ4_NL,
                "rows of 64: Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, Q2_K/Q3_K->Q4_0, IQ4_XS->IQ4_NL");
        T_CHECK(planned(&g, QUANT_FT_Q4_0, 0, "token_embd.weight") == KERN_Q8_0,
                "rows of 64: the tied output wants Q6_K and falls back to Q8_0");
        gguf_close(&g);
    }
    free(buf);
    buf = NULL;
    /* rows of 48: not even 32-blocks fit -> F16 */
    if (build_meta_model(&g, &buf, 2, 4, 2, 48, 0, "llama") == 0) {
        T_CHECK(planned(&g, QUANT_FT_Q4_0, 0, "blk.0.attn_q.weight") == KERN_F16 &&
                planned(&g, QUANT_FT_Q4_K_M, 0, "blk.1.ffn_down.weight") == KERN_F16 &&
                planned(&g, QUANT_FT_Q4_0, 0, "blk.0.attn_norm.weight") == KERN_F32,
                "rows of 48: quantized types fall back to F16");
        gguf_close(&g);
    }
    free(buf);
    buf = NULL;
    /* falcon's own rules */
    if (build_meta_model(&g, &buf, 16, 4, 2, 256, 0, "falcon") == 0) {
        check_layers(&g, QUANT_FT_Q3_K_M, "ffn_down", "baddaddaddaddaaa");
        T_CHECK(planned(&g, QUANT_FT_Q4_K_M, 0, "output.weight") == KERN_Q8_0 &&
                planned(&g, QUANT_FT_Q3_K_M, 0, "blk.0.attn_output.weight") == KERN_Q3_K,
                "falcon: output Q8_0, no attn_output bump for Q3_K_M");
        gguf_close(&g);
    }
    free(buf);
}

/* ---- names, errors ---------------------------------------------------------- */

static void test_names_and_errors(void)
{
    T_CHECK(quant_ftype_parse("Q4_K_M") == 15 && quant_ftype_parse("q4_k_m") == 15 && quant_ftype_parse("Q4_K") == 15 &&
            quant_ftype_parse("Q5_K") == 17 && quant_ftype_parse("Q3_K") == 12 && quant_ftype_parse("F32") == 0 &&
            quant_ftype_parse("BF16") == 32 && quant_ftype_parse("IQ4_XS") == 30 && quant_ftype_parse("Q7_0") == -1 &&
            quant_ftype_parse("") == -1 && quant_ftype_parse(NULL) == -1,
            "file type names (llama.cpp's numbers, aliases, case-insensitive)");
    T_CHECK(!strcmp(quant_ftype_name(QUANT_FT_Q8_0), "Q8_0") && quant_ftype_name(4) == NULL &&
            quant_ftype_default_type(QUANT_FT_Q3_K_L) == KERN_Q3_K && quant_ftype_default_type(99) == -1,
            "file type names and default tensor types");

    char err[512];
    int rc = quantize(tpath("missing.gguf"), tpath("x.gguf"), QUANT_FT_Q4_0, 0, 1, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_IO && strstr(err, "missing.gguf"), "missing input: %s", err);
    rc = quantize(tpath("tiny-F32.gguf"), tpath("tiny-F32.gguf"), QUANT_FT_Q4_0, 0, 1, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_ARG && strstr(err, "input"), "IN == OUT refused: %s", err);
    rc = quantize(tpath("tiny-F32.gguf"), tpath("x.gguf"), 5, 0, 1, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_ARG && !file_exists(tpath("x.gguf")), "unknown file type refused: %s", err);
    rc = quantize(tpath("tiny-F32.gguf"), tpath("nodir/x.gguf"), QUANT_FT_Q4_0, 0, 1, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_IO, "unwritable output: %s", err);

    /* NaN weights: refused, naming tensor and row; no output and no .part left */
    gguf_writer w;
    gguf_writer_init(&w);
    gguf_writer_add_str(&w, "general.architecture", "llama");
    gguf_writer_add_u32(&w, "llama.block_count", 1);
    float rows[2 * 64];
    for (int i = 0; i < 128; i++) rows[i] = (float)i / 100;
    rows[64 + 5] = NAN;
    int64_t ne[2] = { 64, 2 };
    gguf_writer_add_tensor(&w, "blk.0.attn_q.weight", KERN_F32, 2, ne, rows, sizeof rows);
    gguf_writer_write_file(&w, tpath("nan.gguf"));
    gguf_writer_free(&w);
    rc = quantize(tpath("nan.gguf"), tpath("nan-q.gguf"), QUANT_FT_Q8_0, 0, 2, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_FORMAT && strstr(err, "attn_q") && strstr(err, "row 1") && !file_exists(tpath("nan-q.gguf")) &&
            !file_exists(tpath("nan-q.gguf.part")),
            "NaN weight refused, nothing left behind: %s", err);
    rc = quantize(tpath("nan.gguf"), tpath("nan-q.gguf"), QUANT_FT_F32, 0, 1, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_FORMAT, "NaN weight refused even when copied: %s", err);
    unlink(tpath("nan.gguf"));

    /* not a model: no architecture */
    gguf_writer_init(&w);
    gguf_writer_add_u32(&w, "x", 1);
    gguf_writer_write_file(&w, tpath("noarch.gguf"));
    gguf_writer_free(&w);
    rc = quantize(tpath("noarch.gguf"), tpath("x.gguf"), QUANT_FT_Q8_0, 0, 1, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_FORMAT && strstr(err, "architecture"), "file without architecture: %s", err);
    unlink(tpath("noarch.gguf"));
    /* not a GGUF file */
    FILE *f = fopen(tpath("junk.gguf"), "wb");
    if (f) {
        fputs("not a gguf file at all", f);
        fclose(f);
    }
    rc = quantize(tpath("junk.gguf"), tpath("x.gguf"), QUANT_FT_Q8_0, 0, 1, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_IO && !file_exists(tpath("x.gguf")), "junk input: %s", err);
    unlink(tpath("junk.gguf"));

    /* the streaming writer validates its tensor list */
    gguf_writer_init(&w);
    quant_out_tensor t2[2] = { {"a", KERN_Q4_0, 2, {48, 2, 1, 1}}, {"b", KERN_F32, 1, {4, 1, 1, 1}} };
    rc = quant_write_gguf(tpath("w.gguf"), &w, 32, t2, 2, NULL, NULL, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_ARG && strstr(err, "Q4_0"), "writer refuses rows that are not whole blocks: %s", err);
    t2[0].ne[0] = 64;
    t2[1].name = "a";
    rc = quant_write_gguf(tpath("w.gguf"), &w, 32, t2, 2, NULL, NULL, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_ARG && strstr(err, "twice"), "writer refuses duplicate names: %s", err);
    rc = quant_write_gguf(tpath("w.gguf"), &w, 24, t2, 1, NULL, NULL, err, sizeof err);
    T_CHECK(rc == QUANT_ERR_ARG, "writer refuses alignment 24: %s", err);
    gguf_writer_free(&w);
}

/* ---- against llama-quantize's own files ------------------------------------ */

static void test_llama_quantize_files(void)
{
    static const struct { const char *src, *ref, *type; int pure; } cases[] = {
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-Q4_K_M.gguf", "Q4_K_M", 0},
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-Q5_K_M.gguf", "Q5_K_M", 0},
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-Q3_K_M.gguf", "Q3_K_M", 0},
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-Q2_K.gguf", "Q2_K", 0},
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-Q4_K-pure.gguf", "Q4_K", 1},
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-Q6_K-pure.gguf", "Q6_K", 1},
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-IQ4_NL-pure.gguf", "IQ4_NL", 1},
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-IQ4_XS-pure.gguf", "IQ4_XS", 1},
        {"models/synthetic/tiny-llama-256d2l-F32.gguf", "models/synthetic/tiny-llama-256d2l-Q8_0-pure.gguf", "Q8_0", 1},
        {"models/llama/stories260K.gguf", "models/llama/stories260K-F16.gguf", "F16", 0},
        {"models/llama/stories260K.gguf", "models/llama/stories260K-BF16.gguf", "BF16", 0},
        {"models/llama/stories260K.gguf", "models/llama/stories260K-Q8_0.gguf", "Q8_0", 0},
        {"models/llama/stories260K.gguf", "models/llama/stories260K-Q5_1.gguf", "Q5_1", 0},
        {"models/llama/stories260K.gguf", "models/llama/stories260K-Q5_0.gguf", "Q5_0", 0},
        {"models/llama/stories260K.gguf", "models/llama/stories260K-Q4_1.gguf", "Q4_1", 0},
        {"models/llama/stories260K.gguf", "models/llama/stories260K-Q4_0.gguf", "Q4_0", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[512], ref[512], err[512];
        if (!t_shared(src, sizeof src, cases[i].src) || !t_shared(ref, sizeof ref, cases[i].ref)) {
            T_SKIP(T_NO_SHARED, "byte-identical to llama-quantize: %s", cases[i].ref);
            continue;
        }
        int rc = quantize(src, tpath("ref.gguf"), quant_ftype_parse(cases[i].type), cases[i].pure, 2, err, sizeof err);
        if (!T_CHECK(rc == 0, "quantize %s %s%s (%s)", cases[i].src, cases[i].type, cases[i].pure ? " --pure" : "",
                     rc ? err : "ok"))
            continue;
        /* per-tensor types, then the whole file */
        gguf_file a, b;
        int types_same = 0, n = 0;
        if (gguf_open(&a, tpath("ref.gguf")) == 0) {
            if (gguf_open(&b, ref) == 0) {
                types_same = a.n_tensors == b.n_tensors;
                for (uint64_t k = 0; types_same && k < a.n_tensors; k++) {
                    char nm[128];
                    snprintf(nm, sizeof nm, "%.*s", (int)a.tensors[k].name.len, a.tensors[k].name.ptr);
                    const gguf_tensor *tb = gguf_find_tensor(&b, nm);
                    types_same = tb && tb->type == a.tensors[k].type;
                    n++;
                }
                gguf_close(&b);
            }
            gguf_close(&a);
        }
        T_CHECK(types_same && same_files(tpath("ref.gguf"), ref),
                "%s: same type for each of %d tensors, file byte-identical to llama-quantize's", cases[i].ref, n);
        unlink(tpath("ref.gguf"));
    }
}

/* ---- gen-model and bench helpers --------------------------------------------- */

static void test_gen_and_bench(void)
{
    char err[512];
    const bench_shape *tiny = bench_shape_find("tiny");
    T_CHECK(tiny && bench_shape_find("tinyllama") && bench_shape_find("smollm") && !bench_shape_find("gpt5"),
            "built-in shapes");
    T_CHECK(bench_shape_find("tinyllama")->n_embd == 2048 && bench_shape_find("tinyllama")->n_layer == 22 &&
            bench_shape_find("tinyllama")->n_head_kv == 4 && bench_shape_find("tinyllama")->n_ff == 5632 &&
            bench_shape_find("smollm")->n_vocab == 49152 && bench_shape_find("smollm")->n_head == 9 &&
            bench_shape_find("smollm")->tied,
            "tinyllama / smollm shapes as published");
    int r1 = bench_gen_model(tpath("g1.gguf"), tiny, KERN_F16, 42, 1, err, sizeof err);
    int r2 = bench_gen_model(tpath("g2.gguf"), tiny, KERN_F16, 42, 2, err, sizeof err);
    T_CHECK(r1 == 0 && r2 == 0 && same_files(tpath("g1.gguf"), tpath("g2.gguf")),
            "gen-model: same seed, 1 or 2 threads: identical files");
    int r3 = bench_gen_model(tpath("g3.gguf"), tiny, KERN_F16, 43, 2, err, sizeof err);
    T_CHECK(r3 == 0 && !same_files(tpath("g1.gguf"), tpath("g3.gguf")), "gen-model: another seed, other weights");
    char why[256] = "";
    T_CHECK(runs(tpath("g1.gguf"), why, sizeof why), "gen-model F16 model loads and runs (%s)", why);
    int r4 = bench_gen_model(tpath("g4.gguf"), tiny, KERN_Q4_K, 42, 2, err, sizeof err);
    T_CHECK(r4 == 0 && runs(tpath("g4.gguf"), why, sizeof why), "gen-model writes Q4_K weights directly (%s)",
            r4 ? err : why);
    const bench_shape smol = *bench_shape_find("smollm");
    int r5 = bench_gen_model(tpath("g5.gguf"), &smol, KERN_Q4_K, 42, 2, err, sizeof err);
    T_CHECK(r5 < 0 && !file_exists(tpath("g5.gguf")), "gen-model refuses Q4_K rows of 576: %s", err);
    bench_shape bad = *tiny;
    bad.n_head = 3;
    T_CHECK(bench_gen_model(tpath("g6.gguf"), &bad, KERN_F32, 1, 1, err, sizeof err) == BENCH_ERR_ARG,
            "gen-model refuses an inconsistent shape: %s", err);

    model m;
    if (model_open(&m, tpath("g1.gguf")) == 0) {
        uint64_t want = 0;
        for (uint64_t i = 0; i < m.g->n_tensors; i++) want += m.g->tensors[i].nbytes;
        want = want - m.tok_embd.row_bytes * (uint64_t)m.hp.n_vocab + m.tok_embd.row_bytes;
        T_CHECK(bench_decode_bytes(&m) == want, "decode bytes: all weights but one token_embd row (%llu)",
                (unsigned long long)want);
        bench_result r;
        int rc = bench_model(&m, NULL, 2, 8, 4, 2, 0, &r, err, sizeof err);
        T_CHECK(rc == 0 && r.pp == 8 && r.tg == 4 && r.pp_tps > 0 && r.tg_tps > 0 && r.pp_tps_best >= r.pp_tps &&
                r.tg_tps_best >= r.tg_tps && fabs(r.decode_gbps - r.tg_tps * (double)want / 1e9) < 1e-9 * r.decode_gbps + 1e-12,
                "bench_model: pp %.1f t/s, tg %.1f t/s, %.3f GB/s (%s)", r.pp_tps, r.tg_tps, r.decode_gbps,
                rc ? err : "ok");
        T_CHECK(r.tg_ms_matmul > 0 && r.tg_ms_attn > 0 && r.tg_ms_other >= 0 && r.membw_gbps == 0 &&
                    r.decode_of_membw == 0,
                "bench_model: decode step split matmul %.3f / attention %.3f / other %.3f ms, no probes unasked",
                r.tg_ms_matmul, r.tg_ms_attn, r.tg_ms_other);
        rc = bench_model(&m, NULL, 1, 0, 3, 1, 0, &r, err, sizeof err);
        T_CHECK(rc == 0 && r.pp_tps == 0 && r.tg_tps > 0, "bench_model: tg only");
        rc = bench_model(&m, NULL, 1, 4, 3, 3, 16u << 20, &r, err, sizeof err);
        T_CHECK(rc == 0 && r.membw_gbps > 0.1 && r.decode_of_membw > 0 && r.decode_of_membw < 100,
                "bench_model with paired probes: median %.1f GB/s, decode %.4f of it (%s)", r.membw_gbps,
                r.decode_of_membw, rc ? err : "ok");
        rc = bench_model(&m, NULL, 1, 0, 0, 1, 0, &r, err, sizeof err);
        T_CHECK(rc == BENCH_ERR_ARG, "bench_model refuses pp = tg = 0: %s", err);
        model_free(&m);
    } else {
        T_CHECK(0, "open the generated model: %s", m.err);
    }
    int used = 0;
    double gbps = bench_membw(2, 16u << 20, 2, &used);
    T_CHECK(gbps > 0.1 && used >= 1, "membw probe on 16 MiB: %.1f GB/s with %d threads", gbps, used);
    T_CHECK(bench_membw(1, 1000, 1, NULL) == BENCH_ERR_ARG, "membw refuses a buffer under 1 MiB");
    for (int i = 1; i <= 6; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "g%d.gguf", i);
        unlink(tpath(nm));
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mote-test-quantize-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        T_CHECK(0, "mkdtemp");
        return t_done();
    }
    test_every_type();         /* also writes tiny-F32.gguf, used below */
    test_names_and_errors();
    test_mix_rules();
    test_llama_quantize_files();
    test_gen_and_bench();
    unlink(tpath("tiny-F32.gguf"));
    unlink(tpath("odd-F32.gguf"));
    rmdir(tmpdir);
    return t_done();
}
