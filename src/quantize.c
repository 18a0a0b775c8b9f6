/* quantize.c — `mote quantize` (see quantize.h for the rules it follows).
 *
 * Sections: file types -> tensor categories and the mix rules -> the plan
 * (order + type per tensor) -> streaming GGUF output -> row conversion
 * (threaded) -> quant_file.
 *
 * The mix rules are llama-quantize's behaviour as its documentation and
 * source describe it, restated for the file types mote writes; the comments
 * say where a rule exists only for fidelity (falcon, MoE, 70B).
 */
#include "quantize.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "thread.h"

static int qerr(char *err, size_t cap, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int qerr(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---- file types ------------------------------------------------------------ */

static const struct ftype_info {
    const char *name;
    int ftype;
    int type;          /* default tensor type */
} ftypes[] = {
    {"F32", QUANT_FT_F32, KERN_F32},         {"F16", QUANT_FT_F16, KERN_F16},
    {"BF16", QUANT_FT_BF16, KERN_BF16},      {"Q4_0", QUANT_FT_Q4_0, KERN_Q4_0},
    {"Q4_1", QUANT_FT_Q4_1, KERN_Q4_1},      {"Q5_0", QUANT_FT_Q5_0, KERN_Q5_0},
    {"Q5_1", QUANT_FT_Q5_1, KERN_Q5_1},      {"Q8_0", QUANT_FT_Q8_0, KERN_Q8_0},
    {"Q2_K", QUANT_FT_Q2_K, KERN_Q2_K},      {"Q3_K_S", QUANT_FT_Q3_K_S, KERN_Q3_K},
    {"Q3_K_M", QUANT_FT_Q3_K_M, KERN_Q3_K},  {"Q3_K_L", QUANT_FT_Q3_K_L, KERN_Q3_K},
    {"Q4_K_S", QUANT_FT_Q4_K_S, KERN_Q4_K},  {"Q4_K_M", QUANT_FT_Q4_K_M, KERN_Q4_K},
    {"Q5_K_S", QUANT_FT_Q5_K_S, KERN_Q5_K},  {"Q5_K_M", QUANT_FT_Q5_K_M, KERN_Q5_K},
    {"Q6_K", QUANT_FT_Q6_K, KERN_Q6_K},      {"IQ4_NL", QUANT_FT_IQ4_NL, KERN_IQ4_NL},
    {"IQ4_XS", QUANT_FT_IQ4_XS, KERN_IQ4_XS},
};
#define N_FTYPES (sizeof ftypes / sizeof ftypes[0])

/* llama-quantize's short names for the _M mixes */
static const struct { const char *name; int ftype; } ftype_aliases[] = {
    {"Q3_K", QUANT_FT_Q3_K_M}, {"Q4_K", QUANT_FT_Q4_K_M}, {"Q5_K", QUANT_FT_Q5_K_M},
};

static const struct ftype_info *ftype_find(int ftype)
{
    for (size_t i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ftype == ftype) return &ftypes[i];
    return NULL;
}

int quant_ftype_parse(const char *name)
{
    if (!name) return -1;
    for (size_t i = 0; i < N_FTYPES; i++)
        if (!strcasecmp(name, ftypes[i].name)) return ftypes[i].ftype;
    for (size_t i = 0; i < sizeof ftype_aliases / sizeof ftype_aliases[0]; i++)
        if (!strcasecmp(name, ftype_aliases[i].name)) return ftype_aliases[i].ftype;
    return -1;
}

const char *quant_ftype_name(int ftype)
{
    const struct ftype_info *f = ftype_find(ftype);
    return f ? f->name : NULL;
}

int quant_ftype_default_type(int ftype)
{
    const struct ftype_info *f = ftype_find(ftype);
    return f ? f->type : -1;
}

const char *quant_ftype_names(void)
{
    return "Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K "
           "IQ4_NL IQ4_XS F16 BF16 F32 (aliases: Q3_K Q4_K Q5_K = the _M mixes)";
}

/* ---- tensor categories and the mix rules ----------------------------------- */

enum category {
    CAT_OTHER, CAT_OUTPUT, CAT_TOKEN_EMBD, CAT_ATTN_QKV, CAT_ATTN_KV_B, CAT_ATTN_V, CAT_ATTN_K,
    CAT_ATTN_Q, CAT_ATTN_OUTPUT, CAT_FFN_UP, CAT_FFN_GATE, CAT_FFN_DOWN
};

/* First match wins, as in llama-quantize (so "attn_qkv" is not "attn_q"). */
static int tensor_category(const char *name)
{
    if (!strcmp(name, "output.weight")) return CAT_OUTPUT;
    if (!strcmp(name, "token_embd.weight") || !strcmp(name, "per_layer_token_embd.weight")) return CAT_TOKEN_EMBD;
    static const struct { const char *sub; int cat; } subs[] = {
        {"attn_qkv.weight", CAT_ATTN_QKV}, {"attn_kv_b.weight", CAT_ATTN_KV_B},
        {"attn_v.weight", CAT_ATTN_V},     {"attn_k.weight", CAT_ATTN_K},
        {"attn_q.weight", CAT_ATTN_Q},     {"attn_output.weight", CAT_ATTN_OUTPUT},
        {"ffn_up", CAT_FFN_UP},            {"ffn_gate", CAT_FFN_GATE},
        {"ffn_down", CAT_FFN_DOWN},
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (strstr(name, subs[i].sub)) return subs[i].cat;
    return CAT_OTHER;
}

/* attn_v and the fused tensors that contain it are the most sensitive. */
static int cat_is_attn_v(int c) { return c == CAT_ATTN_V || c == CAT_ATTN_QKV || c == CAT_ATTN_KV_B; }

/* Tensors llama-quantize converts: >= 2 dims, name ending in "weight", and
 * none of the small or precision-critical kinds below. */
static int tensor_convertible(const char *name, int n_dims)
{
    if (n_dims < 2) return 0;
    size_t len = strlen(name);
    if (len < 6 || strcmp(name + len - 6, "weight")) return 0;
    static const char *const never[] = {
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
        "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "attn_rel_b.weight",
        "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight", "time_mix_w2.weight",
        "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight", "time_mix_a0.weight",
        "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight", "time_mix_g2.weight",
        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight", "time_mix_lerp_fused.weight",
        "indexer.k_proj.weight", "indexer.q_proj.weight",
    };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (strstr(name, never[i])) return 0;
    if (!strcmp(name, "position_embd.weight") || !strcmp(name, "token_types.weight")) return 0;
    return 1;
}

/* What the rules need to know about the model and where they are. */
typedef struct plan_state {
    int ftype;
    int falcon;              /* arch "falcon": its own ffn_down/attn_output rules */
    int is_70b;              /* llama with 80 layers and GQA: attn_v gets more bits */
    int n_layer;             /* block_count: n of the ffn_down rules */
    int n_gqa;               /* n_head / n_head_kv of layer 0 (0 if unknown) */
    int n_expert;
    int tied;                /* no output.weight: token_embd is the output */
    int n_wv, i_wv;          /* attn_v-like tensors: total, seen so far */
    int i_ffn_down;          /* ffn_down tensors seen so far */
} plan_state;

static int use_more_bits(int i, int n)
{
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* The layer of an ffn_down tensor: its position among ffn_down tensors, or
 * (MoE files, whose experts need not be consecutive) its blk.N. */
static int ffn_layer(plan_state *s, const char *name, int *i_layer, char *err, size_t cap)
{
    *i_layer = s->i_ffn_down;
    if (s->n_expert <= 1) return 0;
    if (sscanf(name, "blk.%d.", i_layer) != 1 || *i_layer < 0 || *i_layer >= s->n_layer)
        return qerr(err, cap, QUANT_ERR_FORMAT, "tensor '%s': cannot tell its layer (block_count %d)", name,
                    s->n_layer);
    return 0;
}

/* The mix rule for one convertible tensor; t = default type on entry. */
static int mix_type(plan_state *s, const gguf_tensor *gt, const char *name, int cat, int t, int *out,
                    char *err, size_t cap)
{
    const int ft = s->ftype;
    if (cat == CAT_OUTPUT || (s->tied && cat == CAT_TOKEN_EMBD)) {
        const kern_traits *tr = kern_type_traits(t);
        if (s->falcon || gt->ne[0] % tr->block_size != 0) t = KERN_Q8_0;
        else if (t != KERN_Q8_0) t = KERN_Q6_K;
    } else if (cat == CAT_TOKEN_EMBD) {
        /* only the IQ1/IQ2/IQ3_XXS/ternary mixes move token_embd: none here */
    } else if (cat_is_attn_v(cat)) {
        if (ft == QUANT_FT_Q2_K) t = s->n_gqa >= 4 ? KERN_Q4_K : KERN_Q3_K;
        else if (ft == QUANT_FT_Q3_K_M) t = s->i_wv < 2 ? KERN_Q5_K : KERN_Q4_K;
        else if (ft == QUANT_FT_Q3_K_L) t = KERN_Q5_K;
        else if ((ft == QUANT_FT_IQ4_NL || ft == QUANT_FT_IQ4_XS) && s->n_gqa >= 4) t = KERN_Q5_K;
        else if ((ft == QUANT_FT_Q4_K_M || ft == QUANT_FT_Q5_K_M) && use_more_bits(s->i_wv, s->n_wv)) t = KERN_Q6_K;
        else if (ft == QUANT_FT_Q4_K_S && s->i_wv < 4) t = KERN_Q5_K;
        if (s->is_70b && (t == KERN_Q3_K || t == KERN_Q4_K)) t = KERN_Q5_K;
        if (s->n_expert == 8) t = KERN_Q8_0;
        s->i_wv++;
    } else if (cat == CAT_ATTN_K) {
        if (s->n_expert == 8) t = KERN_Q8_0;
    } else if (cat == CAT_FFN_DOWN) {
        int i, n = s->n_layer;
        int rc = ffn_layer(s, name, &i, err, cap);
        if (rc < 0) return rc;
        if (ft == QUANT_FT_Q2_K) t = KERN_Q3_K;
        else if (ft == QUANT_FT_Q3_K_M)
            t = i < n / 16 ? KERN_Q5_K : !s->falcon || use_more_bits(i, n) ? KERN_Q4_K : KERN_Q3_K;
        else if (ft == QUANT_FT_Q3_K_L) t = s->falcon ? KERN_Q4_K : KERN_Q5_K;
        else if (ft == QUANT_FT_Q4_K_M) {
            if (s->falcon) t = i < n / 16 ? KERN_Q6_K : use_more_bits(i, n) ? KERN_Q5_K : KERN_Q4_K;
            else if (use_more_bits(i, n)) t = KERN_Q6_K;
        } else if (i < n / 8 && (ft == QUANT_FT_IQ4_NL || ft == QUANT_FT_IQ4_XS)) t = KERN_Q5_K;
        else if (ft == QUANT_FT_Q5_K_M && use_more_bits(i, n)) t = KERN_Q6_K;
        else if (ft == QUANT_FT_Q4_K_S && !s->falcon && i < n / 8) t = KERN_Q5_K;
        s->i_ffn_down++;
    } else if (cat == CAT_ATTN_OUTPUT) {
        if (s->falcon) {
            if (ft == QUANT_FT_Q3_K_L) t = KERN_Q4_K;
        } else if (s->n_expert == 8) {
            if (ft == QUANT_FT_Q2_K || ft == QUANT_FT_Q3_K_S || ft == QUANT_FT_Q3_K_M || ft == QUANT_FT_IQ4_NL ||
                ft == QUANT_FT_Q4_K_S || ft == QUANT_FT_Q4_K_M || ft == QUANT_FT_IQ4_XS)
                t = KERN_Q5_K;
        } else {
            if (ft == QUANT_FT_Q2_K) t = KERN_Q3_K;
            else if (ft == QUANT_FT_Q3_K_M) t = KERN_Q4_K;
            else if (ft == QUANT_FT_Q3_K_L) t = KERN_Q5_K;
        }
    }
    /* ffn_gate / ffn_up / attn_q: rules only for IQ3 mixes, none here */
    *out = t;
    return 0;
}

/* A type whose block fits rows of ne0 elements, from t. */
static int fallback_type(int t, int64_t ne0)
{
    const kern_traits *tr = kern_type_traits(t);
    if (ne0 % tr->block_size == 0) return t;
    int f = t;
    switch (t) {
    case KERN_Q2_K: case KERN_Q3_K: f = KERN_Q4_0; break;
    case KERN_Q4_K: f = KERN_Q5_0; break;
    case KERN_Q5_K: f = KERN_Q5_1; break;
    case KERN_Q6_K: f = KERN_Q8_0; break;
    case KERN_IQ4_XS: f = KERN_IQ4_NL; break;
    default: break;
    }
    return ne0 % kern_type_traits(f)->block_size == 0 ? f : KERN_F16;
}

static int type_is_quantized(int t) { return t != KERN_F32 && t != KERN_F16 && t != KERN_BF16; }

/* Integer hyper-parameter `<arch>.<key>`: a scalar, or element 0 of an
 * array (per-layer values); def when absent. */
static int hparam(const gguf_file *g, const char *arch, const char *key, int def)
{
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    uint32_t v;
    if (gguf_get_u32(g, k, &v) == 0) return v > INT32_MAX ? def : (int)v;
    const gguf_kv *kv = gguf_find(g, k);
    if (kv && kv->type == GGUF_VT_ARRAY && kv->v.arr.n > 0) {
        int64_t e = gguf_arr_int(kv, 0);
        if (e >= 0 && e <= INT32_MAX) return (int)e;
    }
    return def;
}

/* NUL-terminated copy of tensor i's name, or NULL if it holds a NUL byte. */
static char *tensor_name_dup(const gguf_tensor *t)
{
    if (memchr(t->name.ptr, 0, t->name.len)) return NULL;
    char *s = malloc(t->name.len + 1);
    if (!s) return NULL;
    memcpy(s, t->name.ptr, t->name.len);
    s[t->name.len] = 0;
    return s;
}

/* llama-quantize's tensor order: tensors outside blk.N first, then by layer
 * number; by name (bytes) within each group. */
typedef struct order_key {
    int layer;
    const char *name;
    uint64_t index;
} order_key;

static int order_cmp(const void *a, const void *b)
{
    const order_key *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

int quant_plan(const gguf_file *g, const quant_params *p, uint64_t *order, quant_choice *choice,
               char *err, size_t errcap)
{
    const struct ftype_info *fi = ftype_find(p->ftype);
    if (!fi) return qerr(err, errcap, QUANT_ERR_ARG, "unknown file type %d", p->ftype);
    gguf_str as;
    if (gguf_get_str(g, "general.architecture", &as) < 0)
        return qerr(err, errcap, QUANT_ERR_FORMAT, "no general.architecture string: not a model file");
    if (as.len == 0 || as.len >= 64 || memchr(as.ptr, 0, as.len))
        return qerr(err, errcap, QUANT_ERR_FORMAT, "general.architecture is not a usable name");
    char arch[64];
    memcpy(arch, as.ptr, as.len);
    arch[as.len] = 0;

    plan_state s;
    memset(&s, 0, sizeof s);
    s.ftype = p->ftype;
    s.falcon = !strcmp(arch, "falcon");
    s.n_layer = hparam(g, arch, "block_count", -1);
    if (s.n_layer < 0)
        return qerr(err, errcap, QUANT_ERR_FORMAT, "no %s.block_count: not a model file", arch);
    int n_head = hparam(g, arch, "attention.head_count", 0);
    int n_head_kv = hparam(g, arch, "attention.head_count_kv", n_head);
    s.n_gqa = n_head_kv > 0 ? n_head / n_head_kv : 0;
    s.n_expert = hparam(g, arch, "expert_count", 0);
    /* llama.cpp calls an 80-layer llama with GQA "70B" */
    s.is_70b = !strcmp(arch, "llama") && s.n_layer == 80 && n_head != n_head_kv;
    s.tied = 1;

    uint64_t n = g->n_tensors;
    order_key *keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) return qerr(err, errcap, QUANT_ERR_NOMEM, "out of memory for %llu tensors", (unsigned long long)n);
    int rc = 0;
    for (uint64_t i = 0; i < n; i++) {
        char *name = tensor_name_dup(&g->tensors[i]);
        if (!name) {
            rc = qerr(err, errcap, QUANT_ERR_FORMAT, "tensor %llu: name contains a NUL byte (or out of memory)",
                      (unsigned long long)i);
            n = i;
            goto out;
        }
        keys[i].name = name;
        keys[i].index = i;
        keys[i].layer = -1;
        sscanf(name, "blk.%d.", &keys[i].layer);
        int cat = tensor_category(name);
        if (cat_is_attn_v(cat)) s.n_wv++;
        if (cat == CAT_OUTPUT) s.tied = 0;
    }
    qsort(keys, n, sizeof *keys, order_cmp);

    int def = fi->type;
    for (uint64_t k = 0; k < n; k++) {
        const gguf_tensor *gt = &g->tensors[keys[k].index];
        const char *name = keys[k].name;
        quant_choice *c = &choice[keys[k].index];
        order[k] = keys[k].index;
        c->type = c->wanted = gt->type;
        c->convert = 0;
        if (!tensor_convertible(name, gt->n_dims)) continue;
        int t = def;
        if (type_is_quantized(def)) {
            if (!p->pure) {
                rc = mix_type(&s, gt, name, tensor_category(name), def, &t, err, errcap);
                if (rc < 0) goto out;
            }
            c->wanted = t;
            t = fallback_type(t, gt->ne[0]);
        } else {
            c->wanted = t;
        }
        c->type = t;
        c->convert = t != gt->type;
        if (c->convert && !kern_table_ref.to_float[gt->type]) {
            const kern_traits *tr = kern_type_traits(gt->type);
            rc = qerr(err, errcap, QUANT_ERR_UNSUPPORTED, "tensor '%s': cannot convert from type %s", name,
                      tr ? tr->name : "?");
            goto out;
        }
    }
out:
    for (uint64_t i = 0; i < n; i++) free((char *)keys[i].name);
    free(keys);
    return rc;
}

/* ---- streaming GGUF output -------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }

static int write_all(FILE *f, const void *p, size_t n)
{
    return fwrite(p, 1, n, f) == n ? 0 : -1;
}

static int write_zeros(FILE *f, size_t n)
{
    static const uint8_t z[256];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        if (write_all(f, z, k) < 0) return -1;
        n -= k;
    }
    return 0;
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

int quant_write_gguf(const char *path, gguf_writer *meta, uint64_t alignment, const quant_out_tensor *t,
                     size_t n, quant_fill_fn fill, void *ctx, char *err, size_t errcap)
{
    if (!alignment || (alignment & (alignment - 1)) || alignment > (1u << 30))
        return qerr(err, errcap, QUANT_ERR_ARG, "alignment %llu is not a power of two", (unsigned long long)alignment);
    /* validate the tensor list and size it */
    size_t info_len = 0, max_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const kern_traits *tr = kern_type_traits(t[i].type);
        if (!t[i].name || !t[i].name[0])
            return qerr(err, errcap, QUANT_ERR_ARG, "tensor %zu has no name", i);
        if (!tr) return qerr(err, errcap, QUANT_ERR_ARG, "tensor '%s': unknown type %d", t[i].name, t[i].type);
        if (t[i].n_dims < 1 || t[i].n_dims > GGUF_MAX_DIMS)
            return qerr(err, errcap, QUANT_ERR_ARG, "tensor '%s': %d dims", t[i].name, t[i].n_dims);
        size_t bytes = kern_row_size(t[i].type, t[i].ne[0]);
        if (t[i].ne[0] < 1 || bytes == 0)
            return qerr(err, errcap, QUANT_ERR_ARG, "tensor '%s': row of %lld is not a whole number of %s blocks",
                        t[i].name, (long long)t[i].ne[0], tr->name);
        for (int d = 1; d < t[i].n_dims; d++)
            if (t[i].ne[d] < 1 || __builtin_mul_overflow(bytes, (size_t)t[i].ne[d], &bytes))
                return qerr(err, errcap, QUANT_ERR_ARG, "tensor '%s': bad dim %d", t[i].name, d);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(t[i].name, t[j].name))
                return qerr(err, errcap, QUANT_ERR_ARG, "tensor name '%s' appears twice", t[i].name);
        if (bytes > max_bytes) max_bytes = bytes;
        info_len += 8 + strlen(t[i].name) + 4 + 8 * (size_t)t[i].n_dims + 4 + 8;
    }

    uint8_t *head = NULL, *info = NULL, *data = NULL;
    size_t head_len = 0;
    FILE *f = NULL;
    char *part = NULL;
    int rc = 0;
    if (gguf_writer_finish(meta, &head, &head_len) < 0) {
        rc = qerr(err, errcap, QUANT_ERR_ARG, "%s", meta->err);
        goto fail;
    }
    if (head_len < 24) {
        rc = qerr(err, errcap, QUANT_ERR_ARG, "metadata writer produced %zu bytes", head_len);
        goto fail;
    }
    /* the key-only header says 0 tensors (bytes 8..15): patch the count */
    put_u64(head + 8, n);
    info = malloc(info_len ? info_len : 1);
    data = malloc(max_bytes ? max_bytes : 1);
    part = malloc(strlen(path) + 6);
    if (!info || !data || !part) {
        rc = qerr(err, errcap, QUANT_ERR_NOMEM, "out of memory (%zu bytes of tensor data)", max_bytes);
        goto fail;
    }
    uint64_t off = 0;
    size_t ip = 0;
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(t[i].name);
        put_u64(info + ip, nl);
        memcpy(info + ip + 8, t[i].name, nl);
        ip += 8 + nl;
        put_u32(info + ip, (uint32_t)t[i].n_dims);
        ip += 4;
        uint64_t bytes = kern_row_size(t[i].type, t[i].ne[0]);
        for (int d = 0; d < t[i].n_dims; d++) {
            put_u64(info + ip, (uint64_t)t[i].ne[d]);
            ip += 8;
            if (d) bytes *= (uint64_t)t[i].ne[d];
        }
        put_u32(info + ip, (uint32_t)t[i].type);
        put_u64(info + ip + 4, off);
        ip += 12;
        off += align_up(bytes, alignment);
    }

    sprintf(part, "%s.part", path);
    f = fopen(part, "wb");
    if (!f) {
        rc = qerr(err, errcap, QUANT_ERR_IO, "%s: %s", part, strerror(errno));
        goto fail;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    uint64_t pos = head_len + info_len;
    if (write_all(f, head, head_len) < 0 || write_all(f, info, info_len) < 0 ||
        (n && write_zeros(f, (size_t)(align_up(pos, alignment) - pos)) < 0))
        goto io_fail;
    for (size_t i = 0; i < n; i++) {
        size_t bytes = kern_row_size(t[i].type, t[i].ne[0]);
        for (int d = 1; d < t[i].n_dims; d++) bytes *= (size_t)t[i].ne[d];
        rc = fill(ctx, i, data, bytes, err, errcap);
        if (rc < 0) goto fail;
        if (write_all(f, data, bytes) < 0 || write_zeros(f, (size_t)(align_up(bytes, alignment) - bytes)) < 0)
            goto io_fail;
    }
    if (fflush(f) != 0 || ferror(f)) goto io_fail;
    if (fclose(f) != 0) {
        f = NULL;
        goto io_fail;
    }
    f = NULL;
    /* reread what we wrote before it takes the final name */
    gguf_file chk;
    if (gguf_open(&chk, part) < 0) {
        rc = qerr(err, errcap, QUANT_ERR_FORMAT, "written file does not read back: %s", chk.err);
        goto fail;
    }
    int same = chk.n_tensors == n;
    gguf_close(&chk);
    if (!same) {
        rc = qerr(err, errcap, QUANT_ERR_FORMAT, "written file does not read back with %zu tensors", n);
        goto fail;
    }
    if (rename(part, path) < 0) {
        rc = qerr(err, errcap, QUANT_ERR_IO, "rename %s -> %s: %s", part, path, strerror(errno));
        goto fail;
    }
    free(part);
    free(head);
    free(info);
    free(data);
    return 0;

io_fail:
    rc = qerr(err, errcap, QUANT_ERR_IO, "%s: write failed: %s", part, strerror(errno ? errno : EIO));
fail:
    if (f) fclose(f);
    if (part) unlink(part);
    free(part);
    free(head);
    free(info);
    free(data);
    return rc;
}

/* ---- row conversion ---------------------------------------------------------- */

typedef struct conv_job {
    const gguf_file *g;
    const uint64_t *order;
    const quant_choice *choice;
    const kern_table *kt;
    thread_pool *tp;
    float *scratch;          /* (n_threads, max_ne0) */
    int64_t max_ne0;
    FILE *log;
    int warned_requant;
    /* the tensor being converted */
    const gguf_tensor *src;
    int dst_type;
    uint8_t *dst;
    size_t src_row, dst_row;
    int64_t bad_row;         /* first row with a non-finite value, or -1 (atomic min) */
    int failed;              /* kern_quantize_row refused (atomic) */
} conv_job;

static int row_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void note_bad_row(conv_job *j, int64_t r)
{
    int64_t cur = __atomic_load_n(&j->bad_row, __ATOMIC_RELAXED);
    while ((cur < 0 || r < cur) &&
           !__atomic_compare_exchange_n(&j->bad_row, &cur, r, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void conv_rows(void *ctx, int64_t r0, int64_t r1, int ith)
{
    conv_job *j = ctx;
    int64_t ne0 = j->src->ne[0];
    float *x = j->scratch + (size_t)ith * (size_t)j->max_ne0;
    const uint8_t *src = j->src->data;
    for (int64_t r = r0; r < r1; r++) {
        j->kt->to_float[j->src->type](src + (size_t)r * j->src_row, x, ne0);
        if (!row_finite(x, ne0)) {
            note_bad_row(j, r);
            return;
        }
        if (kern_quantize_row(j->dst_type, x, j->dst + (size_t)r * j->dst_row, ne0) < 0) {
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
            return;
        }
    }
}

/* Rows of a float tensor that is copied: check them too (llama.cpp refuses
 * NaN/Inf weights when it loads). */
static void check_rows(void *ctx, int64_t r0, int64_t r1, int ith)
{
    conv_job *j = ctx;
    int64_t ne0 = j->src->ne[0];
    float *x = j->scratch + (size_t)ith * (size_t)j->max_ne0;
    const uint8_t *src = j->src->data;
    for (int64_t r = r0; r < r1; r++) {
        j->kt->to_float[j->src->type](src + (size_t)r * j->src_row, x, ne0);
        if (!row_finite(x, ne0)) {
            note_bad_row(j, r);
            return;
        }
    }
}

static int conv_fill(void *ctx, size_t i, void *dst, size_t nbytes, char *err, size_t errcap)
{
    conv_job *j = ctx;
    const gguf_tensor *t = &j->g->tensors[j->order[i]];
    const quant_choice *c = &j->choice[j->order[i]];
    int64_t nrows = gguf_tensor_nelements(t) / t->ne[0];
    const kern_traits *st = kern_type_traits(t->type), *dt = kern_type_traits(c->type);
    j->src = t;
    j->dst_type = c->type;
    j->dst = dst;
    j->src_row = kern_row_size(t->type, t->ne[0]);
    j->dst_row = kern_row_size(c->type, t->ne[0]);
    j->bad_row = -1;
    j->failed = 0;
    if (!c->convert) {
        if (nbytes != t->nbytes)
            return qerr(err, errcap, QUANT_ERR_FORMAT, "tensor '%.*s': size mismatch", (int)t->name.len, t->name.ptr);
        memcpy(dst, t->data, nbytes);
        if (!type_is_quantized(t->type)) thread_pool_for(j->tp, nrows, check_rows, j);
    } else {
        if (type_is_quantized(t->type) && !j->warned_requant && j->log) {
            fprintf(j->log, "warning: re-quantizing from %s: the result is worse than quantizing the F32/F16 "
                    "original\n", st->name);
            j->warned_requant = 1;
        }
        thread_pool_for(j->tp, nrows, conv_rows, j);
    }
    if (j->bad_row >= 0)
        return qerr(err, errcap, QUANT_ERR_FORMAT, "tensor '%.*s': row %lld holds NaN or Inf values",
                    (int)t->name.len, t->name.ptr, (long long)j->bad_row);
    if (j->failed)
        return qerr(err, errcap, QUANT_ERR_UNSUPPORTED, "tensor '%.*s': no quantizer for type %s",
                    (int)t->name.len, t->name.ptr, dt->name);
    if (j->log) {
        fprintf(j->log, "[%4zu/%4llu] %-40.*s %-6s [", i + 1, (unsigned long long)j->g->n_tensors,
                (int)t->name.len, t->name.ptr, st->name);
        for (int d = 0; d < t->n_dims; d++) fprintf(j->log, "%s%lld", d ? " x " : "", (long long)t->ne[d]);
        fprintf(j->log, "] %s %-6s %9.3f MiB -> %9.3f MiB", c->convert ? "->" : "==", dt->name,
                t->nbytes / 1048576.0, nbytes / 1048576.0);
        if (c->wanted != c->type)
            fprintf(j->log, "  (%s does not fit rows of %lld)", kern_type_traits(c->wanted)->name,
                    (long long)t->ne[0]);
        fputc('\n', j->log);
    }
    return 0;
}

/* ---- quant_file ----------------------------------------------------------------- */

int quant_file(const char *in, const char *out, const quant_params *p, char *err, size_t errcap)
{
    if (!ftype_find(p->ftype)) return qerr(err, errcap, QUANT_ERR_ARG, "unknown file type %d", p->ftype);
    gguf_file g;
    if (gguf_open(&g, in) < 0) {
        if (strstr(g.err, in)) return qerr(err, errcap, QUANT_ERR_IO, "%s", g.err);
        return qerr(err, errcap, QUANT_ERR_IO, "%s: %s", in, g.err);
    }
    struct stat si, so;
    if (stat(in, &si) == 0 && stat(out, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino) {
        gguf_close(&g);
        return qerr(err, errcap, QUANT_ERR_ARG, "the output %s is the input file", out);
    }

    uint64_t n = g.n_tensors;
    uint64_t *order = calloc(n ? n : 1, sizeof *order);
    quant_choice *choice = calloc(n ? n : 1, sizeof *choice);
    quant_out_tensor *ot = calloc(n ? n : 1, sizeof *ot);
    char **names = calloc(n ? n : 1, sizeof *names);
    conv_job job;
    memset(&job, 0, sizeof job);
    thread_pool tp;
    thread_pool_init(&tp, p->n_threads);
    gguf_writer meta;
    gguf_writer_init(&meta);
    int rc;
    if (!order || !choice || !ot || !names) {
        rc = qerr(err, errcap, QUANT_ERR_NOMEM, "out of memory for %llu tensors", (unsigned long long)n);
        goto out;
    }
    rc = quant_plan(&g, p, order, choice, err, errcap);
    if (rc < 0) goto out;

    /* metadata: everything but the keys quantization rewrites, which go last */
    for (uint64_t i = 0; i < g.n_kv; i++) {
        const gguf_kv *kv = &g.kv[i];
        if (gguf_str_eq(kv->key, "general.file_type") || gguf_str_eq(kv->key, "general.quantization_version") ||
            gguf_str_eq(kv->key, "split.no") || gguf_str_eq(kv->key, "split.count") ||
            gguf_str_eq(kv->key, "split.tensors.count"))
            continue;
        gguf_writer_add_kv(&meta, kv);
    }
    gguf_writer_add_u32(&meta, "general.quantization_version", QUANT_QNT_VERSION);
    gguf_writer_add_u32(&meta, "general.file_type", (uint32_t)p->ftype);
    if (meta.status) {
        rc = qerr(err, errcap, QUANT_ERR_FORMAT, "%s", meta.err);
        goto out;
    }

    int64_t max_ne0 = 1;
    uint64_t in_bytes = 0, out_bytes = 0, n_el = 0;
    int n_conv = 0, n_fallback = 0;
    for (uint64_t k = 0; k < n; k++) {
        const gguf_tensor *t = &g.tensors[order[k]];
        const quant_choice *c = &choice[order[k]];
        names[k] = tensor_name_dup(t);
        if (!names[k]) {
            rc = qerr(err, errcap, QUANT_ERR_NOMEM, "out of memory");
            goto out;
        }
        ot[k].name = names[k];
        ot[k].type = c->type;
        ot[k].n_dims = t->n_dims;
        for (int d = 0; d < GGUF_MAX_DIMS; d++) ot[k].ne[d] = t->ne[d];
        if (t->ne[0] > max_ne0) max_ne0 = t->ne[0];
        uint64_t ob = kern_row_size(c->type, t->ne[0]) * (uint64_t)(gguf_tensor_nelements(t) / t->ne[0]);
        in_bytes += t->nbytes;
        n_el += (uint64_t)gguf_tensor_nelements(t);
        out_bytes += ob;
        n_conv += c->convert;
        n_fallback += c->wanted != c->type;
    }
    job.scratch = malloc((size_t)tp.n_threads * (size_t)max_ne0 * sizeof(float));
    if (!job.scratch) {
        rc = qerr(err, errcap, QUANT_ERR_NOMEM, "out of memory for row scratch");
        goto out;
    }
    job.g = &g;
    job.order = order;
    job.choice = choice;
    job.kt = kern_select(NULL);
    job.tp = &tp;
    job.max_ne0 = max_ne0;
    job.log = p->log;
    if (p->log)
        fprintf(p->log, "quantize: %s -> %s as %s%s, %llu tensors (%d converted), %d threads\n", in, out,
                quant_ftype_name(p->ftype), p->pure ? " (pure)" : "", (unsigned long long)n, n_conv, tp.n_threads);
    rc = quant_write_gguf(out, &meta, g.alignment, ot, (size_t)n, conv_fill, &job, err, errcap);
    if (rc == 0 && p->log)
        fprintf(p->log, "quantize: %.2f MiB -> %.2f MiB (%.2f bits per weight), %d fallback%s\n",
                in_bytes / 1048576.0, out_bytes / 1048576.0, n_el ? 8.0 * (double)out_bytes / (double)n_el : 0,
                n_fallback, n_fallback == 1 ? "" : "s");
out:
    if (names)
        for (uint64_t k = 0; k < n; k++) free(names[k]);
    free(names);
    free(job.scratch);
    free(ot);
    free(choice);
    free(order);
    gguf_writer_free(&meta);
    thread_pool_free(&tp);
    gguf_close(&g);
    return rc;
}
