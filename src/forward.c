/* forward.c — the llama-family forward pass, arithmetic matched to ggml.
 *
 * Reading order:
 *   1. ggml-compatible scalar pieces: F16 table, exp approximation, SwiGLU,
 *      RMSNorm, the F16/F32 dot products of flash attention, rope cache.
 *   2. KV cache.
 *   3. Context set-up (every buffer is sized here, once).
 *   4. Matmul: activations converted once per vec_dot_type, rows over threads.
 *   5. Attention: the two flash-attention paths of ggml's CPU backend.
 *   6. The forward pass itself, one micro-batch at a time.
 *
 * Why so much care about rounding: llama.cpp's outputs (our goldens) come
 * from ggml on an AVX-512 CPU with flash attention and an F16 KV cache. Its
 * logits differ from "exact" math by ~1e-3 in places; reproducing the same
 * rounding points (where values pass through F16, which exp is used, which
 * sums run in double) brings us to ~1e-5, so greedy decoding agrees except
 * at genuine near-ties. Where ggml's reduction order is an AVX-512 lane
 * pattern we reproduce that pattern in scalar code (see reduce16).
 */
#include "forward.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Some of ggml's scalar expressions `a*b + c` are compiled as an FMA
 * (contraction), others not; which ones was measured against the goldens.
 * CONTRACT marks the contracted ones. */
#define CONTRACT(a, b, c) fmaf((a), (b), (c))

/* The emulation loops below lean on fmaf; on baseline x86-64 that is a libm
 * call per element. FAST compiles an AVX2+FMA clone picked at load time (the
 * results are identical: fmaf is exact either way and ISO C mode never
 * contracts on its own). TODO(perf): SIMD versions in the kernel tables. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FAST __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FAST
#endif

/* ======================================================================
 * 1. ggml-compatible scalar pieces
 * ====================================================================== */

static float h2f_table[1 << 16];
static pthread_once_t h2f_once = PTHREAD_ONCE_INIT;

static void h2f_init(void)
{
    for (uint32_t i = 0; i < (1u << 16); i++) h2f_table[i] = kern_f16_to_f32((kern_f16)i);
}

static inline float h2f(kern_f16 h) { return h2f_table[h]; }

/* _mm512_reduce_add_ps as GCC implements it: halves, then quarters, then
 * (0+2) + (1+3). */
static inline float reduce16(const float v[16])
{
    float t[8], u[4];
    for (int i = 0; i < 8; i++) t[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++) u[i] = t[i + 4] + t[i];
    return (u[0] + u[2]) + (u[1] + u[3]);
}

/* ggml_vec_dot_f16 (AVX-512): blocks of 64 into four 16-lane FMA
 * accumulators, reduced (0+2, 1+3, then 0+1, then reduce16) into a double;
 * the tail is summed in double. Products of two halves are exact in float. */
FAST static float dot_f16(int n, const kern_f16 *x, const kern_f16 *y)
{
    double sum = 0.0;
    int np = n & ~63;
    if (np) {
        float acc[4][16];
        memset(acc, 0, sizeof acc);
        for (int i = 0; i < np; i += 64)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 16; l++) {
                    int e = i + j * 16 + l;
                    acc[j][l] += h2f(x[e]) * h2f(y[e]);
                }
        for (int l = 0; l < 16; l++) {
            acc[0][l] += acc[2][l];
            acc[1][l] += acc[3][l];
        }
        for (int l = 0; l < 16; l++) acc[0][l] += acc[1][l];
        sum = (double)reduce16(acc[0]);
    }
    for (int i = np; i < n; i++) sum += (double)(h2f(x[i]) * h2f(y[i]));
    return (float)sum;
}

/* ggml_vec_dot_f32 (AVX-512): the same lane pattern with FMAs, a float
 * total, and a float (contracted) tail. */
FAST static float dot_f32(int n, const float *x, const float *y)
{
    float sum = 0.0f;
    int np = n & ~63;
    if (np) {
        float acc[4][16];
        memset(acc, 0, sizeof acc);
        for (int i = 0; i < np; i += 64)
            for (int j = 0; j < 4; j++)
                for (int l = 0; l < 16; l++) {
                    int e = i + j * 16 + l;
                    acc[j][l] = fmaf(x[e], y[e], acc[j][l]);
                }
        for (int l = 0; l < 16; l++) {
            acc[0][l] += acc[2][l];
            acc[1][l] += acc[3][l];
        }
        for (int l = 0; l < 16; l++) acc[0][l] += acc[1][l];
        sum = reduce16(acc[0]);
    }
    for (int i = np; i < n; i++) sum += x[i] * y[i];   /* not contracted (measured) */
    return sum;
}

/* gemm order of llamafile's tinyBLAS (ggml's prompt-batch matmul for float
 * weights): one 16-lane accumulator per output, FMA over the row in chunks
 * of 16, then reduce16. */
FAST static float gemm_f32(int n, const float *w, const float *x)
{
    float acc[16] = { 0 };
    for (int i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] = fmaf(w[i + l], x[i + l], acc[l]);
    return reduce16(acc);
}

FAST static float gemm_f16(int n, const kern_f16 *w, const kern_f16 *x)
{
    float acc[16] = { 0 };
    for (int i = 0; i < n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] += h2f(w[i + l]) * h2f(x[i + l]);   /* exact products */
    return reduce16(acc);
}

/* BF16: AVX512-BF16 vdpbf16ps, lane j adds the odd product then the even
 * one (both exact), each sum rounded, denormals flushed (DAZ/FTZ). */
static inline float bf2f(kern_bf16 h)
{
    uint32_t u = (uint32_t)h << 16;
    if ((u & 0x7f800000u) == 0) u &= 0x80000000u;   /* DAZ */
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float ftz(float f)
{
    return fabsf(f) < 0x1p-126f ? copysignf(0.0f, f) : f;
}

static inline float dpbf16_lane(float acc, const kern_bf16 *a, const kern_bf16 *b)
{
    acc = ftz(acc + bf2f(a[1]) * bf2f(b[1]));
    return ftz(acc + bf2f(a[0]) * bf2f(b[0]));
}

/* ggml_vec_dot_bf16 (AVX512-BF16): two accumulators over 64-element steps,
 * each reduced into a double; the tail in double. */
FAST static float dot_bf16(int n, const kern_bf16 *x, const kern_bf16 *y)
{
    float c1[16] = { 0 }, c2[16] = { 0 };
    int i = 0;
    for (; i + 64 <= n; i += 64)
        for (int j = 0; j < 16; j++) {
            c1[j] = dpbf16_lane(c1[j], x + i + 2 * j, y + i + 2 * j);
            c2[j] = dpbf16_lane(c2[j], x + i + 32 + 2 * j, y + i + 32 + 2 * j);
        }
    double sum = (double)reduce16(c1);
    sum += (double)reduce16(c2);
    for (; i < n; i++) {
        uint32_t ux = (uint32_t)x[i] << 16, uy = (uint32_t)y[i] << 16;
        float fx, fy;
        memcpy(&fx, &ux, 4);
        memcpy(&fy, &uy, 4);
        sum += (double)(fx * fy);
    }
    return (float)sum;
}

/* tinyBLAS BF16 (KN = 32): one vdpbf16ps accumulator per output. */
FAST static float gemm_bf16(int n, const kern_bf16 *w, const kern_bf16 *x)
{
    float acc[16] = { 0 };
    for (int i = 0; i < n; i += 32)
        for (int j = 0; j < 16; j++) acc[j] = dpbf16_lane(acc[j], w + i + 2 * j, x + i + 2 * j);
    return reduce16(acc);
}

/* ggml_rms_norm followed by ggml_mul with the weight: the sum of squares in
 * double, mean rounded to float, 1/sqrtf, then two float multiplies. */
static void rmsnorm(float *y, const float *x, int n, const float *w, float eps)
{
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float mean = (float)(sum / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) y[i] = (x[i] * scale) * w[i];
}

/* Rope cos/sin for one position, as ggml_rope_cache_init: theta starts at
 * the position and is multiplied by theta_scale = base^(-2/n_rot) per pair
 * (a powf chain, not a pow per dimension); frequency factors divide theta. */
static void rope_cache(float *cs, int pos, int n_rot, float theta_scale, float freq_scale,
                       const float *freq_factors)
{
    float theta = (float)pos;
    for (int i0 = 0; i0 < n_rot; i0 += 2) {
        float ff = 1.0f;
        if (freq_factors) memcpy(&ff, freq_factors + i0 / 2, sizeof ff);
        const float t = freq_scale * (theta / ff);
        cs[i0 + 0] = cosf(t);
        cs[i0 + 1] = sinf(t);
        theta *= theta_scale;
    }
}

/* Rotate one head in place. NORM: pairs (2i, 2i+1); NEOX: (i, i + n_rot/2). */
static void rope_apply(float *x, const float *cs, int n_rot, int neox)
{
    const int half = n_rot / 2;
    for (int i0 = 0; i0 < n_rot; i0 += 2) {
        const float c = cs[i0], s = cs[i0 + 1];
        float *a = neox ? x + i0 / 2 : x + i0;
        float *b = neox ? a + half : a + 1;
        const float x0 = *a, x1 = *b;
        *a = x0 * c - x1 * s;
        *b = x0 * s + x1 * c;
    }
}

/* ======================================================================
 * 2. KV cache
 * ====================================================================== */

int fwd_kv_init(fwd_kv *kv, const model *m, int n_ctx, int type)
{
    memset(kv, 0, sizeof *kv);
    if (n_ctx < 1 || (type != KERN_F16 && type != KERN_F32)) return FWD_ERR_ARG;
    const model_hparams *hp = &m->hp;
    size_t es = type == KERN_F16 ? 2 : 4;
    size_t dk = (size_t)hp->n_head_kv * (size_t)hp->head_dim_k;
    size_t dv = (size_t)hp->n_head_kv * (size_t)hp->head_dim_v;
    size_t per = (size_t)hp->n_layer * (size_t)n_ctx;
    if (per / (size_t)n_ctx != (size_t)hp->n_layer || (dk && per > SIZE_MAX / es / dk) ||
        (dv && per > SIZE_MAX / es / dv))
        return FWD_ERR_ARG;
    kv->k = calloc(per * dk, es);
    kv->v = calloc(per * dv, es);
    if (!kv->k || !kv->v) {
        fwd_kv_free(kv);
        return FWD_ERR_NOMEM;
    }
    kv->type = type;
    kv->n_ctx = n_ctx;
    kv->n_layer = hp->n_layer;
    kv->dim_k = (int)dk;
    kv->dim_v = (int)dv;
    kv->n_head_kv = hp->n_head_kv;
    return 0;
}

void fwd_kv_free(fwd_kv *kv)
{
    free(kv->k);
    free(kv->v);
    memset(kv, 0, sizeof *kv);
}

void fwd_kv_truncate(fwd_kv *kv, int n)
{
    if (n < 0) n = 0;
    if (n < kv->n_past) kv->n_past = n;
}

size_t fwd_kv_bytes(const fwd_kv *kv)
{
    size_t es = kv->type == KERN_F16 ? 2 : 4;
    return (size_t)kv->n_layer * (size_t)kv->n_ctx * (size_t)(kv->dim_k + kv->dim_v) * es;
}

/* ======================================================================
 * 3. Context
 * ====================================================================== */

#define FA_TILE 64      /* ggml's GGML_FA_TILE_Q and GGML_FA_TILE_KV */
#define FA_SIMD_W 16    /* AVX-512 floats per vector: the tiled path needs hd_v % 16 == 0 */
#define ATTN_GROUP_MAX 8   /* query heads per kern_table.attn_f16 call (they share K and V) */

/* One sequence of the batch being evaluated: rows row0 .. row0+T-1 of the
 * activation buffers, positions p0 .. p0+T-1 of its cache. */
typedef struct fwd_seg {
    fwd_kv *kv;
    int row0, T, p0;
    int n_out;               /* rows (its last ones) whose logits are wanted: 0, 1 or T */
    int tiled;               /* attention takes the tiled path (T >= FA_TILE) */
    int n_tiles;             /* query tiles per head (tiled path) */
    int64_t item0;           /* its first attention work item */
} fwd_seg;

static int vdt_of(int type)
{
    return kern_type_traits(type)->vec_dot_type;
}

/* Check kernels for one matmul weight; track the largest converted row. */
static int need_matmul(fwd_ctx *c, const model_weight *w, size_t *max_row)
{
    if (!w->data) return 0;
    int vdt = vdt_of(w->type);
    if (!c->kt->vec_dot[w->type] || !c->kt->from_float[vdt]) {
        snprintf(c->err, sizeof c->err, "kernel table '%s' lacks %s kernels", c->kt->name,
                 kern_type_traits(w->type)->name);
        return FWD_ERR_KERNEL;
    }
    if (vdt != KERN_F32) {
        size_t rs = kern_row_size(vdt, w->n_in);
        if (rs == 0) {
            snprintf(c->err, sizeof c->err, "row of %lld cannot be converted to %s",
                     (long long)w->n_in, kern_type_traits(vdt)->name);
            return FWD_ERR_KERNEL;
        }
        if (rs > *max_row) *max_row = rs;
    }
    return 0;
}

int fwd_init(fwd_ctx *c, const model *m, const kern_table *kt, thread_pool *tp, int n_batch)
{
    memset(c, 0, sizeof *c);
    pthread_once(&h2f_once, h2f_init);
    if (!kt) kt = kern_select(NULL);
    if (!kt) {
        snprintf(c->err, sizeof c->err, "no kernel table");
        return FWD_ERR_KERNEL;
    }
    c->m = m;
    c->kt = kt;
    c->tp = tp;
    c->n_batch = n_batch > 0 ? n_batch : FWD_BATCH_DEFAULT;
    c->n_threads = tp ? tp->n_threads : 1;
    const model_hparams *hp = &m->hp;

    /* kernels */
    if (!kt->to_float[m->tok_embd.type]) {
        snprintf(c->err, sizeof c->err, "kernel table '%s' cannot dequantize %s", kt->name,
                 kern_type_traits(m->tok_embd.type)->name);
        return FWD_ERR_KERNEL;
    }
    size_t max_row = 0;
    int rc = need_matmul(c, &m->output, &max_row);
    for (int l = 0; rc == 0 && l < hp->n_layer; l++) {
        const model_layer *L = &m->layers[l];
        const model_weight *ws[] = { &L->wq, &L->wk, &L->wv, &L->wqkv, &L->wo,
                                     &L->w_gate, &L->w_up, &L->w_down };
        for (size_t i = 0; rc == 0 && i < sizeof ws / sizeof ws[0]; i++)
            rc = need_matmul(c, ws[i], &max_row);
    }
    if (rc < 0) return rc;

    /* buffers */
    size_t B = (size_t)c->n_batch;
    size_t E = (size_t)hp->n_embd;
    size_t nq = (size_t)hp->n_head * hp->head_dim_k;
    size_t nk = (size_t)hp->n_head_kv * hp->head_dim_k;
    size_t nv = (size_t)hp->n_head_kv * hp->head_dim_v;
    size_t no = (size_t)hp->n_head * hp->head_dim_v;
    size_t F = (size_t)hp->n_ff;
    size_t DK = (size_t)hp->head_dim_k, DV = (size_t)hp->head_dim_v;

    c->x = malloc(B * E * sizeof(float));
    c->xn = malloc(B * E * sizeof(float));
    c->qkv = malloc(B * (nq + nk + nv) * sizeof(float));
    c->att = malloc(B * no * sizeof(float));
    c->tmp = malloc(B * E * sizeof(float));
    c->ffgu = malloc(B * 2 * F * sizeof(float));
    c->ffh = malloc(B * F * sizeof(float));
    c->rope = malloc(B * (size_t)(hp->n_rot ? hp->n_rot : 1) * sizeof(float));
    c->act_bytes = B * (max_row ? max_row : 1);
    for (int i = 0; i < 3; i++) c->act[i] = malloc(c->act_bytes);
    /* attention scratch: the single-query path needs q16, vkq16, vkq32 for
     * up to ATTN_GROUP_MAX heads;
     * the tiled path Q, KQ, VKQ, V32, K32 tiles and M/S rows. */
    size_t one = ATTN_GROUP_MAX * (DK + 2 * DV) + 16;
    size_t tiled = FA_TILE * DK + FA_TILE * FA_TILE + 2 * FA_TILE * DV + DK * FA_TILE +
                   2 * FA_TILE + 16;
    c->ws_floats = one > tiled ? one : tiled;
    c->ws = malloc((size_t)c->n_threads * c->ws_floats * sizeof(float));
    c->pos = malloc(B * sizeof *c->pos);
    c->row_seq = malloc(B * sizeof *c->row_seq);
    c->many = malloc(B);
    c->segs = malloc(B * sizeof *c->segs);
    if (!c->x || !c->xn || !c->qkv || !c->att || !c->tmp || !c->ffgu || !c->ffh || !c->rope ||
        !c->act[0] || !c->act[1] || !c->act[2] || !c->ws || !c->pos || !c->row_seq || !c->many ||
        !c->segs) {
        fwd_free(c);
        snprintf(c->err, sizeof c->err, "out of memory for the forward scratch");
        return FWD_ERR_NOMEM;
    }
    return 0;
}

void fwd_free(fwd_ctx *c)
{
    free(c->x);
    free(c->xn);
    free(c->qkv);
    free(c->att);
    free(c->tmp);
    free(c->ffgu);
    free(c->ffh);
    free(c->rope);
    for (int i = 0; i < 3; i++) free(c->act[i]);
    free(c->ws);
    free(c->pos);
    free(c->row_seq);
    free(c->many);
    free(c->segs);
    char err[sizeof c->err];
    memcpy(err, c->err, sizeof err);
    memset(c, 0, sizeof *c);
    memcpy(c->err, err, sizeof err);
}

/* Parallel for over [0, n) when the job is big enough (work: rough count of
 * multiply-adds) to pay for waking the other threads. */
#define PAR_MIN_WORK (1 << 16)

/* Matmul rows move between threads (thread_pool_for_balanced) in grains of
 * 1/MM_GRAINS of a thread's share: the two threads of a decode step do not
 * stream at the same speed (with a fixed split one waited for the other
 * 7-10% of the pool's time over a TinyLlama step; 3-5% balanced). */
#define MM_GRAINS 16

/* grain 0: thread_pool_for's fixed split; else thread_pool_for_balanced. */
static void run_for(fwd_ctx *c, int64_t n, int64_t work, int64_t grain, thread_fn fn, void *ctx)
{
    if (c->tp && c->tp->n_threads > 1 && work >= PAR_MIN_WORK) {
        if (grain > 0) thread_pool_for_balanced(c->tp, n, grain, fn, ctx);
        else thread_pool_for(c->tp, n, fn, ctx);
    } else if (n > 0) {
        fn(ctx, 0, n, 0);
    }
}

/* ======================================================================
 * 4. Matmul: out[t * ld + r] = dot(W row r, x row t) for up to three
 *    weights sharing one input (q/k/v, gate/up), rows split over threads.
 * ====================================================================== */

typedef struct mm_part {
    const model_weight *w;
    const uint8_t *act;      /* converted input rows */
    size_t act_stride;       /* bytes between converted rows */
    float *out;
    int64_t row0;            /* first global row of this part */
} mm_part;

typedef struct mm_job {
    const kern_table *kt;
    int T;
    int64_t ld;              /* output row stride (floats) */
    const unsigned char *many;   /* (T) 1 when the row's sequence has >= 2 rows here */
    int n_parts;
    int64_t unit;            /* rows per work item: KERN_PACK_ROWS when every part's rows are whole groups, else 1 */
    mm_part p[3];
} mm_job;

/* Float weights (F32, F16, BF16; activations already F16/BF16 for the
 * latter two) with the summation order ggml uses on AVX-512: its vec_dot
 * for one token or ineligible shapes, llamafile's tinyBLAS for batches when
 * the row length is a multiple of the vector width and the row count a
 * multiple of 4. "Batch" means the token's own sequence has several rows in
 * this matmul (mm_job.many), so the order does not depend on which other
 * sequences share the pass. Scalar emulation: exact, not fast.
 * TODO(perf): ask the kernel tables for these orders in SIMD. */
static float float_dot(int type, int gemm, int n, const void *w, const void *x)
{
    switch (type) {
    case KERN_F32: return gemm ? gemm_f32(n, w, x) : dot_f32(n, w, x);
    case KERN_F16: return gemm ? gemm_f16(n, w, x) : dot_f16(n, w, x);
    default:       return gemm ? gemm_bf16(n, w, x) : dot_bf16(n, w, x);
    }
}

/* Weight rows per kern_mul_mat call: one token, the kernels' 16-row group
 * (they prefetch the next call's rows meanwhile); several tokens, 64 rows,
 * so the per-column preparation each call makes (activation sums, repacked
 * tiles) serves more rows (+15% prefill for Q4_0 over 16). */
#define MM_ROW_BLOCK 16
#define MM_ROW_BLOCK_BATCH 64
/* Packed weights (model_pack) at decode: the rows stream as one sequential
 * run, so a call takes many groups and its activation prep serves them all. */
#define MM_ROW_BLOCK_PACKED 256

static void mm_worker(void *ctx, int64_t r0, int64_t r1, int ith)
{
    (void)ith;
    const mm_job *j = ctx;
    r0 *= j->unit;
    r1 *= j->unit;
    for (int k = 0; k < j->n_parts; k++) {
        const mm_part *p = &j->p[k];
        int64_t lo = r0 > p->row0 ? r0 : p->row0;
        int64_t hi = p->row0 + p->w->n_out;
        if (r1 < hi) hi = r1;
        if (lo >= hi) continue;
        const int n = (int)p->w->n_in;
        const int ft = p->w->type;
        if (ft == KERN_F32 || ft == KERN_F16 || ft == KERN_BF16) {
            /* float weights: ggml's exact summation order (see float_dot) */
            const int shape_ok = p->w->n_out % 4 == 0 && n % (ft == KERN_BF16 ? 32 : 16) == 0;
            for (int64_t r = lo; r < hi; r++) {
                const uint8_t *wr = (const uint8_t *)p->w->data + (size_t)(r - p->row0) * p->w->row_bytes;
                for (int t = 0; t < j->T; t++)
                    p->out[(int64_t)t * j->ld + (r - p->row0)] =
                        float_dot(ft, shape_ok && j->many[t], n, wr, p->act + (size_t)t * p->act_stride);
            }
            continue;
        }
        /* quantized: a block of weight rows against every token, the rows
         * staying in cache while the tokens pass (weights read once per
         * call however many tokens, users, share it); from the packed copy
         * (lo and hi are then whole groups: unit) when it is in this
         * table's layout */
        const int packed = p->w->packed && j->unit == KERN_PACK_ROWS && p->w->packed_by == j->kt->pack[ft];
        const uint8_t *base = packed ? p->w->packed : p->w->data;
        const int64_t rb = j->T >= 2 ? MM_ROW_BLOCK_BATCH : packed ? MM_ROW_BLOCK_PACKED : MM_ROW_BLOCK;
        for (int64_t r = lo; r < hi; r += rb) {
            const int nr = hi - r < rb ? (int)(hi - r) : (int)rb;
            const uint8_t *wr = base + (size_t)(r - p->row0) * p->w->row_bytes;
            float *out = p->out + (r - p->row0);
            if (packed)
                j->kt->mul_mat_packed[ft](n, nr, j->T, out, (size_t)j->ld, wr, p->w->row_bytes, p->act, p->act_stride);
            else
                kern_mul_mat(j->kt, ft, n, nr, j->T, out, (size_t)j->ld, wr, p->w->row_bytes, p->act, p->act_stride);
        }
    }
}

/* For fwd_ctx.prof. */
static double prof_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* x: T rows of n_in floats, x_ld floats apart. w[i] -> out[i] (ld floats
 * per token). Every w[i] must have the same n_in. c->many[0..T) says which
 * rows belong to a sequence with several rows in this matmul. */
static void matmul(fwd_ctx *c, int T, const float *x, int64_t x_ld, int n_w,
                   const model_weight *const *w, float *const *out, int64_t ld)
{
    const double t0 = c->prof ? prof_now() : 0;
    mm_job j;
    memset(&j, 0, sizeof j);
    j.kt = c->kt;
    j.T = T;
    j.ld = ld;
    j.many = c->many;
    int conv_type[3];
    int n_conv = 0;
    int64_t rows = 0;
    j.unit = KERN_PACK_ROWS;
    for (int i = 0; i < n_w; i++)
        if (w[i]->n_out % KERN_PACK_ROWS) j.unit = 1;
    for (int i = 0; i < n_w; i++) {
        const model_weight *wi = w[i];
        mm_part *p = &j.p[j.n_parts++];
        p->w = wi;
        p->out = out[i];
        p->row0 = rows;
        rows += wi->n_out;
        int vdt = vdt_of(wi->type);
        if (vdt == KERN_F32) {
            p->act = (const uint8_t *)x;
            p->act_stride = (size_t)x_ld * sizeof(float);
            continue;
        }
        size_t rs = kern_row_size(vdt, wi->n_in);
        int k = 0;
        while (k < n_conv && conv_type[k] != vdt) k++;
        if (k == n_conv) {
            conv_type[n_conv++] = vdt;
            kern_from_float_fn conv = c->kt->from_float[vdt];
            for (int t = 0; t < T; t++)
                conv(x + (int64_t)t * x_ld, (uint8_t *)c->act[k] + (size_t)t * rs, wi->n_in);
        }
        p->act = c->act[k];
        p->act_stride = rs;
    }
    /* grains of whole 64-row blocks for batches (mm_worker's calls keep their size) */
    const int64_t items = rows / j.unit, nt = c->tp ? c->tp->n_threads : 1, blk = MM_ROW_BLOCK_BATCH / j.unit;
    int64_t grain = items / (nt * MM_GRAINS) + 1;
    if (T >= 2) grain = (grain + blk - 1) / blk * blk;
    run_for(c, items, rows * w[0]->n_in * T, grain, mm_worker, &j);
    if (c->prof) c->prof->matmul += prof_now() - t0;
}

static void matmul1(fwd_ctx *c, int T, const float *x, int64_t x_ld, const model_weight *w,
                    float *out, int64_t ld)
{
    matmul(c, T, x, x_ld, 1, &w, &out, ld);
}

/* ======================================================================
 * 5. Attention (ggml_compute_forward_flash_attn_ext, CPU)
 *
 * One query row at a time (decode, short prompts): q is converted to the K
 * type (F16) for the dot products, the softmax runs online with glibc's expf
 * (kern_expf: what libm gives ggml, the same on every libc),
 * and V*softmax accumulates in an F16 vector (VKQ16) when V is F16, the
 * whole thing divided by the sum at the end.
 *
 * Prompt batches of >= 64 tokens whose head size is a multiple of 16 take
 * the tiled path: 64 queries x 64 keys at a time, q kept in F32, K and V
 * widened to F32, scores and V products as sequential FMA chains (ggml's
 * simd_gemm), tile softmax with the exp approximation and F32 accumulators.
 * ====================================================================== */

/* Work items: for each sequence in turn, n_head / group * T query-row
 * groups (per-query path: the group's heads share a K/V head) or n_head *
 * n_tiles tiles (tiled path); see fwd_seg.item0. */
typedef struct attn_job {
    const fwd_ctx *c;
    int layer;
    int n_segs;
    int group;               /* heads per query-row item (they share a K/V head) */
} attn_job;

/* Row (layer, KV head, pos) of a cache of rows of hd elements (base: kv->k
 * or kv->v, hd: their head size). */
static inline void *kv_row(const fwd_kv *kv, void *base, int hd, int layer, int head, int pos)
{
    size_t es = kv->type == KERN_F16 ? 2 : 4;
    return (uint8_t *)base + ((((size_t)layer * kv->n_head_kv + head) * kv->n_ctx + pos) * hd) * es;
}

/* Query rows of token t of sequence g for heads h .. h + nh - 1 (all on
 * one K/V head) over positions 0..p0+t. */
FAST static void attn_one(const attn_job *a, const fwd_seg *g, int h, int nh, int t, float *ws)
{
    const model_hparams *hp = &a->c->m->hp;
    const fwd_kv *kv = g->kv;
    const int DK = hp->head_dim_k, DV = hp->head_dim_v;
    const int hk = h / (hp->n_head / hp->n_head_kv);
    const int ld = (hp->n_head + hp->n_head_kv) * DK + hp->n_head_kv * DV;
    const float *q = a->c->qkv + (size_t)(g->row0 + t) * ld + (size_t)h * DK;
    const int pos = g->p0 + t;
    const float scale = hp->kq_scale;
    const kern_table *kt = a->c->kt;
    float *out = a->c->att + (size_t)(g->row0 + t) * hp->n_head * DV + (size_t)h * DV;

    float *vkq32 = ws;                              /* nh * DV floats */
    float S[ATTN_GROUP_MAX], M[ATTN_GROUP_MAX];
    for (int i = 0; i < nh; i++) {
        S[i] = 0.0f;
        M[i] = -INFINITY;
    }
    if (kv->type == KERN_F16) {
        /* the whole per-position loop of every head in one kernel call (same operations) */
        kern_f16 *q16 = (kern_f16 *)(ws + (size_t)nh * DV);     /* nh * DK halves */
        kern_f16 *vkq16 = q16 + (size_t)nh * DK;                 /* nh * DV halves */
        kt->from_float[KERN_F16](q, q16, (int64_t)nh * DK);
        memset(vkq16, 0, (size_t)nh * DV * sizeof(kern_f16));
        const size_t es = sizeof(kern_f16);
        kt->attn_f16(pos + 1, nh, DK, DV, q16, kv_row(kv, kv->k, DK, a->layer, hk, 0), (size_t)DK * es,
                     kv_row(kv, kv->v, DV, a->layer, hk, 0), (size_t)DV * es, scale, vkq16, S, M);
        kt->to_float[KERN_F16](vkq16, vkq32, (int64_t)nh * DV);
    } else {
        /* F32 cache: the same online softmax with an F32 accumulator */
        memset(vkq32, 0, (size_t)nh * DV * sizeof(float));
        for (int i = 0; i < nh; i++) {
            const float *qi = q + (size_t)i * DK;
            float *acc = vkq32 + (size_t)i * DV;
            for (int j = 0; j <= pos; j++) {
                const float *kr = kv_row(kv, kv->k, DK, a->layer, hk, j);
                const float *v = kv_row(kv, kv->v, DV, a->layer, hk, j);
                float s = dot_f32(DK, kr, qi);
                s = s * scale;
                s += 0.0f;   /* the causal mask's value for a visible position */
                const float Mold = M[i];
                float ms = 1.0f, vs = 1.0f;
                if (s > M[i]) {
                    M[i] = s;
                    ms = kern_expf(Mold - M[i]);
                    for (int d = 0; d < DV; d++) acc[d] *= ms;
                } else {
                    vs = kern_expf(s - M[i]);
                }
                for (int d = 0; d < DV; d++) acc[d] = fmaf(v[d], vs, acc[d]);
                S[i] = CONTRACT(S[i], ms, vs);   /* contracted in ggml's build (measured) */
            }
        }
    }
    for (int i = 0; i < nh; i++) {
        const float S_inv = S[i] == 0.0f ? 0.0f : 1.0f / S[i];
        for (int d = 0; d < DV; d++) out[(size_t)i * DV + d] = vkq32[(size_t)i * DV + d] * S_inv;
    }
}

/* ggml_vec_soft_max_f32 on 64 values (AVX-512): y = exp~(x - max) in lanes
 * of 16, each lane group summed with reduce16 into a double. */
static inline double softmax_tile(float *row, float max)
{
    double sum = 0.0;
    for (int i = 0; i < FA_TILE; i += 16) {
        for (int l = 0; l < 16; l++) row[i + l] = kern_expf_approx(row[i + l] - max);
        sum += (double)reduce16(row + i);
    }
    return sum;
}

/* Tiled path: queries t0 .. t0+rows-1 of sequence g, head h. */
FAST static void attn_tile(const attn_job *a, const fwd_seg *g, int h, int t0, int rows, float *ws)
{
    const model_hparams *hp = &a->c->m->hp;
    const fwd_kv *kv = g->kv;
    const int DK = hp->head_dim_k, DV = hp->head_dim_v;
    const int hk = h / (hp->n_head / hp->n_head_kv);
    const int ld = (hp->n_head + hp->n_head_kv) * DK + hp->n_head_kv * DV;
    const float scale = hp->kq_scale;
    const int f16 = kv->type == KERN_F16;

    float *Q = ws;                            /* (64, DK) */
    float *KQ = Q + FA_TILE * DK;             /* (64, 64) */
    float *VKQ = KQ + FA_TILE * FA_TILE;      /* (64, DV) */
    float *V32 = VKQ + FA_TILE * DV;          /* (64, DV) */
    float *K32 = V32 + FA_TILE * DV;          /* (DK, 64): keys contiguous */
    float *Mr = K32 + DK * FA_TILE;           /* (64) running max */
    float *Sr = Mr + FA_TILE;                 /* (64) running sum */

    for (int tq = 0; tq < rows; tq++) {
        memcpy(Q + tq * DK, a->c->qkv + (size_t)(g->row0 + t0 + tq) * ld + (size_t)h * DK,
               (size_t)DK * sizeof(float));
        Mr[tq] = -INFINITY;
        Sr[tq] = 0.0f;
    }
    memset(VKQ, 0, (size_t)rows * DV * sizeof(float));

    const int p_first = g->p0 + t0;
    const int n_kv = p_first + rows;          /* keys 0 .. last query's position */
    for (int ic = 0; ic < n_kv; ic += FA_TILE) {
        const int kv_tile = n_kv - ic < FA_TILE ? n_kv - ic : FA_TILE;
        for (int tk = 0; tk < kv_tile; tk++) {
            const void *kr = kv_row(kv, kv->k, DK, a->layer, hk, ic + tk);
            for (int dk = 0; dk < DK; dk++)
                K32[dk * FA_TILE + tk] = f16 ? h2f(((const kern_f16 *)kr)[dk]) : ((const float *)kr)[dk];
        }
        /* scores, scaled, padded with -inf, causal mask added */
        for (int tq = 0; tq < rows; tq++) {
            float *kq = KQ + tq * FA_TILE;
            const int pq = p_first + tq;
            /* one FMA chain over dk per score; the loop runs across the
             * keys (vector lanes), each lane's chain in dk order */
            for (int tk = 0; tk < FA_TILE; tk++) kq[tk] = 0.0f;
            for (int dk = 0; dk < DK; dk++) {
                a->c->kt->f32_mad(FA_TILE, kq, K32 + dk * FA_TILE, Q[tq * DK + dk]);
            }
            for (int tk = 0; tk < FA_TILE; tk++)
                kq[tk] = tk >= kv_tile ? -INFINITY : kq[tk] * scale + (ic + tk <= pq ? 0.0f : -INFINITY);
        }
        /* online softmax per row */
        for (int tq = 0; tq < rows; tq++) {
            float *kq = KQ + tq * FA_TILE;
            float tmax = -INFINITY;
            for (int tk = 0; tk < FA_TILE; tk++) tmax = kq[tk] > tmax ? kq[tk] : tmax;
            if (tmax == -INFINITY) {
                memset(kq, 0, FA_TILE * sizeof(float));
                continue;
            }
            const float Mold = Mr[tq];
            const float Mnew = fmaxf(Mold, tmax);
            if (Mnew > Mold) {
                const float ms = kern_expf(Mold - Mnew);
                for (int d = 0; d < DV; d++) VKQ[tq * DV + d] *= ms;
                Sr[tq] *= ms;
            }
            Mr[tq] = Mnew;
            Sr[tq] = (float)((double)Sr[tq] + softmax_tile(kq, Mnew));
        }
        /* VKQ += softmax(KQ) V, one FMA chain over the keys per element */
        for (int tk = 0; tk < kv_tile; tk++) {
            const void *vr = kv_row(kv, kv->v, DV, a->layer, hk, ic + tk);
            for (int d = 0; d < DV; d++)
                V32[tk * DV + d] = f16 ? h2f(((const kern_f16 *)vr)[d]) : ((const float *)vr)[d];
        }
        for (int tq = 0; tq < rows; tq++) {
            const float *kq = KQ + tq * FA_TILE;
            float *vkq = VKQ + tq * DV;
            /* one FMA chain over the keys per element, in key order; the
             * inner loop runs across the elements (vector lanes). Padded
             * keys have weight exactly 0: fma(v, 0, acc) == acc */
            for (int tk = 0; tk < kv_tile; tk++) a->c->kt->f32_mad(DV, vkq, V32 + tk * DV, kq[tk]);
        }
    }
    for (int tq = 0; tq < rows; tq++) {
        const float S_inv = Sr[tq] == 0.0f ? 0.0f : 1.0f / Sr[tq];
        float *out = a->c->att + (size_t)(g->row0 + t0 + tq) * hp->n_head * DV + (size_t)h * DV;
        for (int d = 0; d < DV; d++) out[d] = VKQ[tq * DV + d] * S_inv;
    }
}

static void attn_worker(void *ctx, int64_t i0, int64_t i1, int ith)
{
    const attn_job *a = ctx;
    float *ws = a->c->ws + (size_t)ith * a->c->ws_floats;
    const fwd_seg *segs = a->c->segs;
    int s = 0;
    for (int64_t i = i0; i < i1; i++) {
        while (s + 1 < a->n_segs && segs[s + 1].item0 <= i) s++;
        const fwd_seg *g = &segs[s];
        const int64_t k = i - g->item0;
        if (g->tiled) {
            int h = (int)(k / g->n_tiles);
            int t0 = (int)(k % g->n_tiles) * FA_TILE;
            int rows = g->T - t0 < FA_TILE ? g->T - t0 : FA_TILE;
            attn_tile(a, g, h, t0, rows, ws);
        } else {
            int h = (int)(k / g->T) * a->group;
            int t = (int)(k % g->T);
            attn_one(a, g, h, a->group, t, ws);
        }
    }
}

/* ======================================================================
 * 6. The forward pass
 * ====================================================================== */

static void add_bias(float *y, int T, int64_t ld, const model_weight *b)
{
    if (!b->data) return;
    const float *bv = b->data;
    for (int t = 0; t < T; t++)
        for (int64_t i = 0; i < b->n_in; i++) y[(int64_t)t * ld + i] += bv[i];
}

/* One pass over validated sequences (their tokens sum to <= n_batch):
 * rows are the sequences' tokens back to back. Logits of the wanted rows
 * (each sequence's last n_logits) into out, sequence after sequence. Every
 * cache's n_past advances by its sequence's token count. */
static void forward_pass(fwd_ctx *c, const fwd_seq *seqs, int n_seqs, float *out)
{
    const model *m = c->m;
    const model_hparams *hp = &m->hp;
    const int E = hp->n_embd, DK = hp->head_dim_k, DV = hp->head_dim_v, F = hp->n_ff;
    const int nq = hp->n_head * DK, nk = hp->n_head_kv * DK, nv = hp->n_head_kv * DV;
    const int no = hp->n_head * DV;
    const int ld = nq + nk + nv;
    const int neox = hp->rope_type == MODEL_ROPE_NEOX;

    /* rows and sequences: positions, attention work items */
    int T = 0, n_out = 0, T_rows = 0;
    int64_t items = 0, attn_work = 0;
    for (int s = 0; s < n_seqs; s++) {
        fwd_seg *g = &c->segs[s];
        g->kv = seqs[s].kv;
        g->row0 = T;
        g->T = seqs[s].n;
        g->p0 = seqs[s].kv->n_past;
        g->n_out = seqs[s].n_logits;
        g->tiled = g->T >= FA_TILE && DV % FA_SIMD_W == 0;
        g->n_tiles = (g->T + FA_TILE - 1) / FA_TILE;
        attn_work += (int64_t)hp->n_head * g->T * (g->p0 + g->T) * (DK + DV);
        if (!g->tiled) T_rows += g->T;
        for (int t = 0; t < g->T; t++) {
            c->pos[T + t] = g->p0 + t;
            c->row_seq[T + t] = s;
        }
        T += g->T;
        n_out += g->n_out;
    }
    /* Query-row items take a group of the heads sharing a K/V head (each K
     * and V row read once for all of them): the largest group, up to
     * ATTN_GROUP_MAX, that still leaves two items per thread. */
    const int n_rep = hp->n_head / hp->n_head_kv;
    int group = 1;
    for (int d = n_rep < ATTN_GROUP_MAX ? n_rep : ATTN_GROUP_MAX; d > 1; d--)
        if (n_rep % d == 0 && (int64_t)(hp->n_head / d) * T_rows >= 2 * c->n_threads) {
            group = d;
            break;
        }
    for (int s = 0; s < n_seqs; s++) {
        fwd_seg *g = &c->segs[s];
        g->item0 = items;
        items += g->tiled ? (int64_t)hp->n_head * g->n_tiles : (int64_t)(hp->n_head / group) * g->T;
    }

    /* token embeddings */
    kern_to_float_fn embd = c->kt->to_float[m->tok_embd.type];
    for (int s = 0; s < n_seqs; s++)
        for (int t = 0; t < seqs[s].n; t++)
            embd((const uint8_t *)m->tok_embd.data + (size_t)seqs[s].tokens[t] * m->tok_embd.row_bytes,
                 c->x + (size_t)(c->segs[s].row0 + t) * E, E);

    /* rope cos/sin per row, shared by every layer */
    const float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->n_rot);
    for (int t = 0; t < T; t++)
        rope_cache(c->rope + (size_t)t * hp->n_rot, c->pos[t], hp->n_rot, theta_scale,
                   hp->rope_freq_scale, m->rope_freqs);

    for (int l = 0; l < hp->n_layer; l++) {
        const model_layer *L = &m->layers[l];
        for (int t = 0; t < T; t++) c->many[t] = c->segs[c->row_seq[t]].T >= 2;

        /* --- attention block --- */
        for (int t = 0; t < T; t++)
            rmsnorm(c->xn + (size_t)t * E, c->x + (size_t)t * E, E, L->attn_norm.data, hp->rms_eps);
        if (L->wqkv.data) {
            matmul1(c, T, c->xn, E, &L->wqkv, c->qkv, ld);
        } else {
            const model_weight *w[3] = { &L->wq, &L->wk, &L->wv };
            float *o[3] = { c->qkv, c->qkv + nq, c->qkv + nq + nk };
            matmul(c, T, c->xn, E, 3, w, o, ld);
        }
        add_bias(c->qkv, T, ld, &L->bq);
        add_bias(c->qkv + nq, T, ld, &L->bk);
        add_bias(c->qkv + nq + nk, T, ld, &L->bv);

        for (int t = 0; t < T; t++) {
            float *q = c->qkv + (size_t)t * ld;
            float *k = q + nq;
            const float *cs = c->rope + (size_t)t * hp->n_rot;
            for (int h = 0; h < hp->n_head; h++) {
                if (L->q_norm.data) rmsnorm(q + h * DK, q + h * DK, DK, L->q_norm.data, hp->rms_eps);
                rope_apply(q + h * DK, cs, hp->n_rot, neox);
            }
            for (int h = 0; h < hp->n_head_kv; h++) {
                if (L->k_norm.data) rmsnorm(k + h * DK, k + h * DK, DK, L->k_norm.data, hp->rms_eps);
                rope_apply(k + h * DK, cs, hp->n_rot, neox);
            }
            if (hp->q_scale != 1.0f)
                for (int i = 0; i < nq; i++) q[i] *= hp->q_scale;
            /* K and V into the row's own cache (rounded to F16 there) */
            fwd_kv *kv = c->segs[c->row_seq[t]].kv;
            const float *v = k + nk;
            const int pos = c->pos[t];
            for (int h = 0; h < hp->n_head_kv; h++) {
                void *kd = kv_row(kv, kv->k, DK, l, h, pos), *vd = kv_row(kv, kv->v, DV, l, h, pos);
                if (kv->type == KERN_F16) {
                    c->kt->from_float[KERN_F16](k + (size_t)h * DK, kd, DK);
                    c->kt->from_float[KERN_F16](v + (size_t)h * DV, vd, DV);
                } else {
                    memcpy(kd, k + (size_t)h * DK, (size_t)DK * sizeof(float));
                    memcpy(vd, v + (size_t)h * DV, (size_t)DV * sizeof(float));
                }
            }
        }

        /* every sequence attends over its own cache */
        attn_job aj = { .c = c, .layer = l, .n_segs = n_seqs, .group = group };
        const double t0 = c->prof ? prof_now() : 0;
        run_for(c, items, attn_work, 0, attn_worker, &aj);
        if (c->prof) c->prof->attn += prof_now() - t0;

        matmul1(c, T, c->att, no, &L->wo, c->tmp, E);
        add_bias(c->tmp, T, E, &L->bo);
        for (size_t i = 0; i < (size_t)T * E; i++) c->x[i] += c->tmp[i];

        /* --- feed-forward block --- */
        /* In the last layer only the rows whose logits are wanted go on (as
         * llama.cpp's inp_out_ids does): less work, and each sequence's rows
         * in the matmul are as many as in ggml's, hence the same summation
         * order. They move to the front, sequence after sequence. */
        int R = T;
        if (l == hp->n_layer - 1) {
            R = 0;
            for (int s = 0; s < n_seqs; s++) {
                const fwd_seg *g = &c->segs[s];
                for (int t = g->T - g->n_out; t < g->T; t++) {
                    const int row = g->row0 + t;
                    if (row != R)
                        memmove(c->x + (size_t)R * E, c->x + (size_t)row * E, (size_t)E * sizeof(float));
                    c->many[R++] = g->n_out >= 2;
                }
            }
            if (R <= 0) break;
        }
        for (int t = 0; t < R; t++)
            rmsnorm(c->xn + (size_t)t * E, c->x + (size_t)t * E, E, L->ffn_norm.data, hp->rms_eps);
        if (L->w_gate.data) {
            const model_weight *w[2] = { &L->w_gate, &L->w_up };
            float *o[2] = { c->ffgu, c->ffgu + F };
            matmul(c, R, c->xn, E, 2, w, o, 2 * F);
        } else {
            matmul1(c, R, c->xn, E, &L->w_up, c->ffgu, 2 * F);   /* fused: gate rows first */
        }
        for (int t = 0; t < R; t++) {
            const float *gu = c->ffgu + (size_t)t * 2 * F;
            c->kt->swiglu(F, c->ffh + (size_t)t * F, gu, gu + F);
        }
        matmul1(c, R, c->ffh, F, &L->w_down, c->tmp, E);
        for (size_t i = 0; i < (size_t)R * E; i++) c->x[i] += c->tmp[i];
    }

    if (n_out > 0) {
        /* the wanted rows are rows 0 .. n_out-1 now, c->many set for them */
        for (int t = 0; t < n_out; t++)
            rmsnorm(c->xn + (size_t)t * E, c->x + (size_t)t * E, E, m->output_norm.data, hp->rms_eps);
        matmul1(c, n_out, c->xn, E, &m->output, out, hp->n_vocab);
    }
    for (int s = 0; s < n_seqs; s++) seqs[s].kv->n_past += seqs[s].n;
}

/* The cache belongs to a model of this shape. */
static int kv_fits(fwd_ctx *c, const fwd_kv *kv)
{
    const model_hparams *hp = &c->m->hp;
    if (kv && kv->n_layer == hp->n_layer && kv->dim_k == hp->n_head_kv * hp->head_dim_k &&
        kv->dim_v == hp->n_head_kv * hp->head_dim_v)
        return 1;
    snprintf(c->err, sizeof c->err, "KV cache does not belong to this model");
    return 0;
}

static int tokens_ok(fwd_ctx *c, const int32_t *tokens, int n)
{
    const int n_vocab = c->m->hp.n_vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab) {
            snprintf(c->err, sizeof c->err, "token id %d out of range 0..%d", tokens[i], n_vocab - 1);
            return 0;
        }
    return 1;
}

int fwd_eval(fwd_ctx *c, fwd_kv *kv, const int32_t *tokens, int n, float *logits, int all_logits)
{
    const model_hparams *hp = &c->m->hp;
    if (n < 1 || !tokens) {
        snprintf(c->err, sizeof c->err, "empty batch");
        return FWD_ERR_ARG;
    }
    if (!kv_fits(c, kv)) return FWD_ERR_ARG;
    if (n > kv->n_ctx - kv->n_past) {
        snprintf(c->err, sizeof c->err, "context full: %d + %d tokens > %d", kv->n_past, n,
                 kv->n_ctx);
        return FWD_ERR_CTX_FULL;
    }
    if (!tokens_ok(c, tokens, n)) return FWD_ERR_ARG;
    for (int done = 0; done < n;) {
        int T = n - done < c->n_batch ? n - done : c->n_batch;
        int last = done + T == n;
        fwd_seq sq = { kv, tokens + done, T, 0 };
        float *out = NULL;
        if (logits && all_logits) {
            out = logits + (size_t)done * hp->n_vocab;
            sq.n_logits = T;
        } else if (logits && last) {
            out = logits;
            sq.n_logits = 1;
        }
        forward_pass(c, &sq, 1, out);
        done += T;
    }
    return 0;
}

int fwd_eval_batch(fwd_ctx *c, const fwd_seq *seqs, int n_seqs, float *logits)
{
    if (n_seqs < 1 || !seqs) {
        snprintf(c->err, sizeof c->err, "empty batch");
        return FWD_ERR_ARG;
    }
    long total = 0, n_out = 0;
    for (int s = 0; s < n_seqs; s++) {
        const fwd_seq *q = &seqs[s];
        if (q->n < 1 || !q->tokens || (q->n_logits != 0 && q->n_logits != 1 && q->n_logits != q->n)) {
            snprintf(c->err, sizeof c->err, "sequence %d: %d tokens, %d logits", s, q->n, q->n_logits);
            return FWD_ERR_ARG;
        }
        if (!kv_fits(c, q->kv)) return FWD_ERR_ARG;
        if (q->n > q->kv->n_ctx - q->kv->n_past) {
            snprintf(c->err, sizeof c->err, "sequence %d: context full: %d + %d tokens > %d", s,
                     q->kv->n_past, q->n, q->kv->n_ctx);
            return FWD_ERR_CTX_FULL;
        }
        if (!tokens_ok(c, q->tokens, q->n)) return FWD_ERR_ARG;
        for (int r = 0; r < s; r++)
            if (seqs[r].kv == q->kv) {
                snprintf(c->err, sizeof c->err, "sequences %d and %d share a KV cache", r, s);
                return FWD_ERR_ARG;
            }
        total += q->n;
        n_out += q->n_logits;
        if (total > c->n_batch) {
            snprintf(c->err, sizeof c->err, "batch of %ld+ tokens > n_batch %d", total, c->n_batch);
            return FWD_ERR_ARG;
        }
    }
    if (n_out > 0 && !logits) {
        snprintf(c->err, sizeof c->err, "logits wanted but no buffer");
        return FWD_ERR_ARG;
    }
    forward_pass(c, seqs, n_seqs, logits);
    return 0;
}
