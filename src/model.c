/* model.c — hyper-parameters and weight views for the llama family.
 *
 * Reading order: metadata helpers, tensor lookup with shape/type checks,
 * per-architecture tensor lists, then model_init which ties them together
 * and finally refuses files that carry tensors we would silently ignore.
 */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernels/kernels.h"

static const char *const arch_names[MODEL_ARCH_COUNT] = {
    [MODEL_ARCH_LLAMA] = "llama",
    [MODEL_ARCH_QWEN2] = "qwen2",
    [MODEL_ARCH_QWEN3] = "qwen3",
    [MODEL_ARCH_PHI3] = "phi3",
};

const char *model_arch_name(int arch)
{
    return (arch >= 0 && arch < MODEL_ARCH_COUNT) ? arch_names[arch] : "?";
}

__attribute__((format(printf, 3, 4)))
static int fail(model *m, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->err, sizeof m->err, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- metadata ---- */

/* "<arch>.<suffix>" into buf. */
static const char *akey(const model *m, char *buf, size_t cap, const char *suffix)
{
    snprintf(buf, cap, "%s.%s", arch_names[m->arch], suffix);
    return buf;
}

/* A positive integer hyper-parameter. An array (per-layer values) is
 * accepted when all its elements are equal. Returns 0, 1 when absent and
 * not required (out untouched), or a negative model_err. */
static int get_int(model *m, const char *suffix, int required, int64_t max, int *out)
{
    char key[128];
    akey(m, key, sizeof key, suffix);
    const gguf_kv *kv = gguf_find(m->g, key);
    if (!kv) {
        if (required) return fail(m, MODEL_ERR_FORMAT, "missing metadata key %s", key);
        return 1;
    }
    int64_t v;
    if (kv->type == GGUF_VT_ARRAY) {
        int et = kv->v.arr.type;
        if (kv->v.arr.n == 0 || et == GGUF_VT_STRING || et == GGUF_VT_F32 || et == GGUF_VT_F64
            || et == GGUF_VT_BOOL)
            return fail(m, MODEL_ERR_FORMAT, "metadata %s: expected an integer", key);
        v = gguf_arr_int(kv, 0);
        for (uint64_t i = 1; i < kv->v.arr.n; i++)
            if (gguf_arr_int(kv, i) != v)
                return fail(m, MODEL_ERR_UNSUPPORTED,
                            "metadata %s: per-layer values differ (not supported)", key);
    } else {
        uint64_t u;
        if (gguf_get_u64(m->g, key, &u) < 0 || u > (uint64_t)INT64_MAX)
            return fail(m, MODEL_ERR_FORMAT, "metadata %s: expected a non-negative integer", key);
        v = (int64_t)u;
    }
    if (v < 1 || v > max)
        return fail(m, MODEL_ERR_FORMAT, "metadata %s = %lld out of range 1..%lld", key,
                    (long long)v, (long long)max);
    *out = (int)v;
    return 0;
}

/* A float hyper-parameter; 1 when absent (out untouched). */
static int get_float(model *m, const char *suffix, float *out)
{
    char key[128];
    akey(m, key, sizeof key, suffix);
    if (!gguf_find(m->g, key)) return 1;
    float v;
    if (gguf_get_f32(m->g, key, &v) < 0 || !isfinite(v))
        return fail(m, MODEL_ERR_FORMAT, "metadata %s: expected a finite number", key);
    *out = v;
    return 0;
}

/* ---- tensors ---- */

enum { T_OPTIONAL = 1, T_VECTOR = 2, T_F32 = 4, T_ROWS = 8 /* rows are only dequantized */ };

/* Bookkeeping of which file tensors the model uses (to refuse extras). */
typedef struct used_set {
    uint8_t *used;           /* one flag per file tensor */
} used_set;

/* Find tensor `name` (printf-style) with shape (n_in) or (n_in, n_out) and a
 * supported type; fill w. Returns 0, or 1 if optional and absent, or < 0. */
__attribute__((format(printf, 7, 8)))
static int get_weight(model *m, used_set *u, model_weight *w, int flags, int64_t n_in,
                      int64_t n_out, const char *fmt, ...)
{
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);

    memset(w, 0, sizeof *w);
    const gguf_tensor *t = gguf_find_tensor(m->g, name);
    if (!t) {
        if (flags & T_OPTIONAL) return 1;
        return fail(m, MODEL_ERR_FORMAT, "missing tensor %s", name);
    }
    u->used[t - m->g->tensors] = 1;

    int64_t want1 = (flags & T_VECTOR) ? 1 : n_out;
    if (t->ne[0] != n_in || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1) {
        if (flags & T_VECTOR)
            return fail(m, MODEL_ERR_FORMAT,
                        "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld]", name,
                        (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                        (long long)t->ne[3], (long long)n_in);
        return fail(m, MODEL_ERR_FORMAT,
                    "tensor %s has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                    (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                    (long long)t->ne[3], (long long)n_in, (long long)n_out);
    }
    const kern_traits *tr = kern_type_traits(t->type);
    if (!tr)
        return fail(m, MODEL_ERR_UNSUPPORTED, "tensor %s: unknown type id %d", name, t->type);
    if ((flags & T_F32) && t->type != KERN_F32)
        return fail(m, MODEL_ERR_UNSUPPORTED, "tensor %s: type %s not supported (expected F32)",
                    name, tr->name);
    if (!(flags & (T_F32 | T_ROWS))) {
        /* Matmul weights: the reference table is the specification of what
         * mote can compute. */
        const kern_table *ref = &kern_table_ref;
        int vdt = tr->vec_dot_type;
        if (!ref->vec_dot[t->type] || vdt < 0 || vdt >= KERN_TYPE_COUNT || !ref->from_float[vdt])
            return fail(m, MODEL_ERR_UNSUPPORTED,
                        "tensor %s: type %s is not supported by this build", name, tr->name);
    }
    if (t->type == KERN_F32 && ((uintptr_t)t->data & 3u))
        return fail(m, MODEL_ERR_FORMAT, "tensor %s: F32 data is not 4-byte aligned", name);
    size_t rb = kern_row_size(t->type, t->ne[0]);
    if (rb == 0 || (uint64_t)rb * (uint64_t)t->ne[1] != t->nbytes)
        return fail(m, MODEL_ERR_FORMAT, "tensor %s: size does not match its shape and type",
                    name);
    w->data = t->data;
    w->type = t->type;
    w->n_in = t->ne[0];
    w->n_out = t->ne[1];
    w->row_bytes = rb;
    return 0;
}

#define TRY(expr)                 \
    do {                          \
        int rc_ = (expr);         \
        if (rc_ < 0) return rc_;  \
    } while (0)

/* The tensors of block il. */
static int load_layer(model *m, used_set *u, int il)
{
    const model_hparams *hp = &m->hp;
    model_layer *L = &m->layers[il];
    int64_t E = hp->n_embd;
    int64_t nq = (int64_t)hp->n_head * hp->head_dim_k;
    int64_t nk = (int64_t)hp->n_head_kv * hp->head_dim_k;
    int64_t nv = (int64_t)hp->n_head_kv * hp->head_dim_v;
    int64_t no = (int64_t)hp->n_head * hp->head_dim_v;

    TRY(get_weight(m, u, &L->attn_norm, T_VECTOR | T_F32, E, 1, "blk.%d.attn_norm.weight", il));
    if (m->arch == MODEL_ARCH_PHI3) {
        int rc = get_weight(m, u, &L->wqkv, T_OPTIONAL, E, nq + nk + nv, "blk.%d.attn_qkv.weight", il);
        TRY(rc);
        if (rc == 1) { /* phi3 files may also carry separate q/k/v */
            TRY(get_weight(m, u, &L->wq, 0, E, nq, "blk.%d.attn_q.weight", il));
            TRY(get_weight(m, u, &L->wk, 0, E, nk, "blk.%d.attn_k.weight", il));
            TRY(get_weight(m, u, &L->wv, 0, E, nv, "blk.%d.attn_v.weight", il));
        }
    } else {
        TRY(get_weight(m, u, &L->wq, 0, E, nq, "blk.%d.attn_q.weight", il));
        TRY(get_weight(m, u, &L->wk, 0, E, nk, "blk.%d.attn_k.weight", il));
        TRY(get_weight(m, u, &L->wv, 0, E, nv, "blk.%d.attn_v.weight", il));
    }
    int bias = (m->arch == MODEL_ARCH_QWEN2) ? 0 : T_OPTIONAL;
    TRY(get_weight(m, u, &L->bq, bias | T_VECTOR | T_F32, nq, 1, "blk.%d.attn_q.bias", il));
    TRY(get_weight(m, u, &L->bk, bias | T_VECTOR | T_F32, nk, 1, "blk.%d.attn_k.bias", il));
    TRY(get_weight(m, u, &L->bv, bias | T_VECTOR | T_F32, nv, 1, "blk.%d.attn_v.bias", il));
    TRY(get_weight(m, u, &L->bo, T_OPTIONAL | T_VECTOR | T_F32, E, 1, "blk.%d.attn_output.bias", il));
    if (m->arch == MODEL_ARCH_QWEN3) {
        TRY(get_weight(m, u, &L->q_norm, T_VECTOR | T_F32, hp->head_dim_k, 1,
                       "blk.%d.attn_q_norm.weight", il));
        TRY(get_weight(m, u, &L->k_norm, T_VECTOR | T_F32, hp->head_dim_k, 1,
                       "blk.%d.attn_k_norm.weight", il));
    }
    TRY(get_weight(m, u, &L->wo, 0, no, E, "blk.%d.attn_output.weight", il));
    TRY(get_weight(m, u, &L->ffn_norm, T_VECTOR | T_F32, E, 1, "blk.%d.ffn_norm.weight", il));
    if (m->arch == MODEL_ARCH_PHI3) {
        TRY(get_weight(m, u, &L->w_up, 0, E, 2 * (int64_t)hp->n_ff, "blk.%d.ffn_up.weight", il));
    } else {
        TRY(get_weight(m, u, &L->w_gate, 0, E, hp->n_ff, "blk.%d.ffn_gate.weight", il));
        TRY(get_weight(m, u, &L->w_up, 0, E, hp->n_ff, "blk.%d.ffn_up.weight", il));
    }
    TRY(get_weight(m, u, &L->w_down, 0, hp->n_ff, E, "blk.%d.ffn_down.weight", il));
    return 0;
}

/* ---- hyper-parameters ---- */

static int load_hparams(model *m)
{
    model_hparams *hp = &m->hp;
    const int64_t LIM = 1 << 20;   /* any single dimension; generous */
    char key[128];

    TRY(get_int(m, "block_count", 1, 4096, &hp->n_layer));
    TRY(get_int(m, "embedding_length", 1, LIM, &hp->n_embd));
    TRY(get_int(m, "feed_forward_length", 1, LIM, &hp->n_ff));
    TRY(get_int(m, "attention.head_count", 1, 4096, &hp->n_head));
    hp->n_head_kv = hp->n_head;
    TRY(get_int(m, "attention.head_count_kv", 0, 4096, &hp->n_head_kv));
    if (hp->n_head % hp->n_head_kv != 0)
        return fail(m, MODEL_ERR_FORMAT, "head_count %d is not a multiple of head_count_kv %d",
                    hp->n_head, hp->n_head_kv);
    hp->head_dim_k = hp->n_embd / hp->n_head;
    if (hp->n_embd % hp->n_head != 0)
        hp->head_dim_k = 0;
    TRY(get_int(m, "attention.key_length", 0, 65536, &hp->head_dim_k));
    if (hp->head_dim_k == 0)
        return fail(m, MODEL_ERR_FORMAT, "embedding_length %d is not a multiple of head_count %d",
                    hp->n_embd, hp->n_head);
    hp->head_dim_v = hp->head_dim_k;
    TRY(get_int(m, "attention.value_length", 0, 65536, &hp->head_dim_v));
    hp->n_rot = hp->head_dim_k;
    TRY(get_int(m, "rope.dimension_count", 0, 65536, &hp->n_rot));
    if (hp->n_rot > hp->head_dim_k || hp->n_rot % 2 != 0)
        return fail(m, MODEL_ERR_FORMAT, "rope.dimension_count %d invalid for head size %d",
                    hp->n_rot, hp->head_dim_k);
    hp->n_ctx_train = 2048;
    TRY(get_int(m, "context_length", 0, 1 << 30, &hp->n_ctx_train));

    hp->rms_eps = 1e-5f;
    int rc = get_float(m, "attention.layer_norm_rms_epsilon", &hp->rms_eps);
    TRY(rc);
    if (rc == 1)
        return fail(m, MODEL_ERR_FORMAT, "missing metadata key %s",
                    akey(m, key, sizeof key, "attention.layer_norm_rms_epsilon"));
    if (!(hp->rms_eps >= 0.0f))
        return fail(m, MODEL_ERR_FORMAT, "negative layer_norm_rms_epsilon");

    hp->rope_base = 10000.0f;
    TRY(get_float(m, "rope.freq_base", &hp->rope_base));
    if (!(hp->rope_base > 0.0f))
        return fail(m, MODEL_ERR_FORMAT, "rope.freq_base must be positive");

    /* Rope scaling: none or linear only. */
    hp->rope_freq_scale = 1.0f;
    gguf_str st;
    akey(m, key, sizeof key, "rope.scaling.type");
    if (gguf_get_str(m->g, key, &st) == 0 && !gguf_str_eq(st, "none")) {
        if (!gguf_str_eq(st, "linear"))
            return fail(m, MODEL_ERR_UNSUPPORTED, "rope scaling type '%.*s' is not supported",
                        (int)(st.len > 32 ? 32 : st.len), st.ptr);
        float factor = 1.0f;
        TRY(get_float(m, "rope.scaling.factor", &factor));
        if (factor > 0.0f) hp->rope_freq_scale = 1.0f / factor;
    } else {
        float lin = 0.0f;
        TRY(get_float(m, "rope.scale_linear", &lin));
        if (lin > 0.0f) hp->rope_freq_scale = 1.0f / lin;
    }

    hp->rope_type = (m->arch == MODEL_ARCH_LLAMA) ? MODEL_ROPE_NORM : MODEL_ROPE_NEOX;
    float inv = 1.0f / sqrtf((float)hp->head_dim_k);
    if (m->arch == MODEL_ARCH_PHI3) {
        hp->q_scale = inv;
        hp->kq_scale = 1.0f;
    } else {
        hp->q_scale = 1.0f;
        hp->kq_scale = inv;
    }
    /* keep every width the forward pass multiplies out well inside int */
    const int64_t W = 1 << 24;
    if ((int64_t)hp->n_head * hp->head_dim_k > W || (int64_t)hp->n_head * hp->head_dim_v > W ||
        2 * (int64_t)hp->n_ff > W || (int64_t)hp->n_embd > W)
        return fail(m, MODEL_ERR_FORMAT, "attention or feed-forward width too large");
    if (m->arch == MODEL_ARCH_PHI3 && hp->head_dim_k != hp->head_dim_v)
        return fail(m, MODEL_ERR_FORMAT, "phi3 needs equal key and value head sizes");
    return 0;
}

/* ---- model ---- */

int model_init(model *m, const gguf_file *g)
{
    int owns = m->owns_file;
    gguf_file keep = m->file;
    memset(m, 0, sizeof *m);
    m->owns_file = owns;
    m->file = keep;
    m->g = g;
    used_set u = { NULL };
    int rc;

    gguf_str a;
    if (gguf_get_str(g, "general.architecture", &a) < 0) {
        rc = fail(m, MODEL_ERR_FORMAT, "missing metadata key general.architecture");
        goto out;
    }
    m->arch = -1;
    for (int i = 0; i < MODEL_ARCH_COUNT; i++)
        if (gguf_str_eq(a, arch_names[i])) m->arch = i;
    if (m->arch < 0) {
        rc = fail(m, MODEL_ERR_UNSUPPORTED,
                  "architecture '%.*s' is not supported (supported: llama, qwen2, qwen3, phi3)",
                  (int)(a.len > 64 ? 64 : a.len), a.ptr);
        goto out;
    }
    if ((rc = load_hparams(m)) < 0) goto out;

    u.used = calloc(g->n_tensors ? g->n_tensors : 1, 1);
    m->layers = calloc((size_t)m->hp.n_layer, sizeof *m->layers);
    if (!u.used || !m->layers) {
        rc = fail(m, MODEL_ERR_NOMEM, "out of memory");
        goto out;
    }

    /* Embeddings: any type whose rows we can dequantize. */
    const gguf_tensor *te = gguf_find_tensor(g, "token_embd.weight");
    if (!te) {
        rc = fail(m, MODEL_ERR_FORMAT, "missing tensor token_embd.weight");
        goto out;
    }
    if (te->ne[1] < 1 || te->ne[1] > INT32_MAX) {
        rc = fail(m, MODEL_ERR_FORMAT, "token_embd.weight: bad vocabulary size");
        goto out;
    }
    m->hp.n_vocab = (int)te->ne[1];
    if ((rc = get_weight(m, &u, &m->tok_embd, T_ROWS, m->hp.n_embd, m->hp.n_vocab,
                         "token_embd.weight")) < 0)
        goto out;
    if (!kern_table_ref.to_float[m->tok_embd.type]) {
        rc = fail(m, MODEL_ERR_UNSUPPORTED, "token_embd.weight: type %s cannot be dequantized",
                  kern_type_traits(m->tok_embd.type)->name);
        goto out;
    }
    const gguf_kv *toks = gguf_find(g, "tokenizer.ggml.tokens");
    if (toks && toks->type == GGUF_VT_ARRAY && toks->v.arr.n != (uint64_t)m->hp.n_vocab) {
        rc = fail(m, MODEL_ERR_FORMAT, "tokenizer has %llu tokens but token_embd has %d rows",
                  (unsigned long long)toks->v.arr.n, m->hp.n_vocab);
        goto out;
    }

    if ((rc = get_weight(m, &u, &m->output_norm, T_VECTOR | T_F32, m->hp.n_embd, 1,
                         "output_norm.weight")) < 0)
        goto out;
    rc = get_weight(m, &u, &m->output, T_OPTIONAL, m->hp.n_embd, m->hp.n_vocab, "output.weight");
    if (rc < 0) goto out;
    if (rc == 1) {
        /* tied: the head reuses token_embd, which must then be matmul-able */
        const kern_traits *tr = kern_type_traits(m->tok_embd.type);
        if (!kern_table_ref.vec_dot[m->tok_embd.type] ||
            !kern_table_ref.from_float[tr->vec_dot_type]) {
            rc = fail(m, MODEL_ERR_UNSUPPORTED,
                      "token_embd.weight (tied output): type %s is not supported", tr->name);
            goto out;
        }
        m->output = m->tok_embd;
        m->tied_output = 1;
    }

    /* Llama-3 style frequency factors. */
    model_weight rf;
    rc = get_weight(m, &u, &rf, T_OPTIONAL | T_VECTOR | T_F32, m->hp.n_rot / 2, 1,
                    "rope_freqs.weight");
    if (rc < 0) goto out;
    m->rope_freqs = (rc == 0) ? (const float *)rf.data : NULL;

    for (int il = 0; il < m->hp.n_layer; il++)
        if ((rc = load_layer(m, &u, il)) < 0) goto out;

    /* Every tensor must be accounted for: an unknown one means a feature we
     * would silently ignore (MoE, extra norms, LongRoPE factors, ...). */
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (u.used[i]) continue;
        gguf_str n = g->tensors[i].name;
        rc = fail(m, MODEL_ERR_UNSUPPORTED, "tensor '%.*s' is not supported for %s models",
                  (int)(n.len > 96 ? 96 : n.len), n.ptr, arch_names[m->arch]);
        goto out;
    }
    rc = 0;

out:
    free(u.used);
    if (rc < 0) {
        free(m->layers);
        m->layers = NULL;
    }
    return rc;
}

int model_open(model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    int rc = gguf_open(&m->file, path);
    if (rc < 0) {
        if (strstr(m->file.err, path)) snprintf(m->err, sizeof m->err, "%s", m->file.err);
        else snprintf(m->err, sizeof m->err, "%.100s: %.150s", path, m->file.err);
        return rc == GGUF_ERR_IO ? MODEL_ERR_IO : rc == GGUF_ERR_NOMEM ? MODEL_ERR_NOMEM
                                                                         : MODEL_ERR_FORMAT;
    }
    m->owns_file = 1;
    rc = model_init(m, &m->file);
    if (rc < 0) {
        char msg[sizeof m->err];
        memcpy(msg, m->err, sizeof msg);
        gguf_close(&m->file);
        m->owns_file = 0;
        snprintf(m->err, sizeof m->err, "%.100s: %.150s", path, msg);
    }
    return rc;
}

/* Matrix i of m, i < 8 * n_layer + 1, in the order a forward pass reads
 * them: each layer's eight (absent ones have data == NULL), then the
 * output (tied included: its packed copy serves the logits, token_embd's
 * view the lookups). For model_pack / model_free. */
static model_weight *model_matrix(model *m, int64_t i)
{
    const int64_t n = m->layers ? 8 * (int64_t)m->hp.n_layer : 0;
    if (i == n) return &m->output;
    model_layer *L = &m->layers[i / 8];
    model_weight *w[] = {&L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return w[i % 8];
}

static int64_t model_matrix_count(const model *m) { return m->layers ? 1 + 8 * (int64_t)m->hp.n_layer : 1; }

static void unpack_all(model *m)
{
    for (int64_t i = 0; i < model_matrix_count(m); i++) {
        model_weight *w = model_matrix(m, i);
        w->packed = NULL;
        w->packed_by = NULL;
    }
    free(m->pack_arena);
    m->pack_arena = NULL;
}

/* A matrix's place in the arena: 64-byte aligned. */
static size_t pack_round(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Bytes of x that model_pack would copy, 0 if it does not pack x. */
static size_t pack_bytes(const model_weight *x, const kern_table *kt)
{
    if (!x->data || x->type < 0 || x->type >= KERN_TYPE_COUNT || !kt->pack[x->type] ||
        !kt->mul_mat_packed[x->type] || x->n_out % KERN_PACK_ROWS || x->n_in > INT32_MAX || x->n_out > INT32_MAX)
        return 0;
    size_t rs = kern_row_size(x->type, x->n_in);
    return rs == 0 || rs != x->row_bytes ? 0 : rs * (size_t)x->n_out;
}

/* MemAvailable from /proc/meminfo in bytes, or -1 when unknown. */
static int64_t mem_available(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[128];
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb < 0 ? -1 : (int64_t)kb * 1024;
}

int64_t model_pack(model *m, const kern_table *kt)
{
    if (m->pack_arena) return 0;
    uint64_t want = 0;
    for (int64_t i = 0; i < model_matrix_count(m); i++) want += pack_round(pack_bytes(model_matrix(m, i), kt));
    if (!want) return 0;
    /* the copies are anonymous memory: with too little of it the kernel
     * would kill the process while they fill (overcommit lets the
     * allocation itself succeed), so ask first, keeping 256 MiB spare */
    const int64_t avail = mem_available();
    if (avail >= 0 && (int64_t)want + ((int64_t)256 << 20) > avail) {
        snprintf(m->err, sizeof m->err, "not enough memory to pack the weights (%llu MiB wanted, %lld MiB available)",
                 (unsigned long long)(want >> 20), (long long)(avail >> 20));
        return MODEL_ERR_NOMEM;
    }
    /* one block, 2 MiB-aligned, on 2 MiB pages where the kernel offers them
     * (THP "madvise" or "always"): one TLB entry per 2 MiB streamed instead
     * of 512 (TinyLlama Q4_0 decode +5% at 1 thread); a no-op elsewhere */
    const size_t huge = (size_t)2 << 20;
    void *arena = NULL;
    if (want > SIZE_MAX - huge || posix_memalign(&arena, huge, (size_t)want) != 0) {
        snprintf(m->err, sizeof m->err, "out of memory packing weights (%llu bytes)", (unsigned long long)want);
        return MODEL_ERR_NOMEM;
    }
    madvise(arena, (size_t)want, MADV_HUGEPAGE);
    m->pack_arena = arena;
    int64_t total = 0;
    size_t off = 0;
    for (int64_t i = 0; i < model_matrix_count(m); i++) {
        model_weight *x = model_matrix(m, i);
        const size_t bytes = pack_bytes(x, kt);
        if (!bytes) continue;
        void *p = (uint8_t *)arena + off;
        off += pack_round(bytes);
        kt->pack[x->type]((int)x->n_in, (int)x->n_out, x->data, x->row_bytes, p);
        x->packed = p;
        x->packed_by = kt->pack[x->type];
        total += (int64_t)bytes;
        /* decode reads the copy now: let the mapped pages go (they stay in
         * the page cache and fault back in if read; only for a file
         * mapping: on anonymous memory DONTNEED would zero the bytes) */
        if (m->g->mapped) {
            const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
            uintptr_t lo = ((uintptr_t)x->data + pg - 1) & ~(pg - 1), hi = ((uintptr_t)x->data + bytes) & ~(pg - 1);
            if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
        }
    }
    return total;
}

void model_free(model *m)
{
    unpack_all(m);
    free(m->layers);
    m->layers = NULL;
    if (m->owns_file) gguf_close(&m->file);
    m->owns_file = 0;
}

uint64_t model_weight_bytes(const model *m)
{
    uint64_t s = 0;
    for (uint64_t i = 0; i < m->g->n_tensors; i++) s += m->g->tensors[i].nbytes;
    return s;
}
