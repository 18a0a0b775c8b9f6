/* kernels/kernels.h — tensor element types, quant block formats and the
 * table of compute kernels chosen once at start-up from CPU features.
 *
 * Foundation layer: no project dependencies.
 *
 * Type numbers are GGUF's tensor type ids (the on-disk values), so a GGUF
 * tensor's type indexes kern_traits() directly.
 *
 * Kernel contract (the same for every ISA table):
 *   - from_float[t](x, y, n): quantize n floats (n % block_size == 0) into
 *     row y of type t. For the activation types (Q8_0, Q8_1, Q8_K, F16,
 *     BF16) this is ggml's x86 activation rounding, bit for bit; for weight
 *     types it is llama-quantize's method (see kern_quantize_row).
 *   - to_float[t](x, y, n): dequantize n values of a row of type t.
 *   - vec_dot[t](n, &s, w, a): s = dot(row w of type t, row a of type
 *     kern_traits(t)->vec_dot_type), both n elements long. This is how
 *     every matmul is computed: activations are first converted with
 *     from_float[vec_dot_type] (as ggml does: Q8_0 for Q4_0/Q5_0/Q8_0/IQ4_NL,
 *     Q8_1 for Q4_1/Q5_1, Q8_K for K-quants and IQ4_XS, F16 for F16,
 *     BF16 for BF16, F32 for F32). The float operation order is that of
 *     llama.cpp's CPU backend at decode on x86 (ref.c documents it), so
 *     logits can match llama.cpp's bit for bit.
 * Rows: block formats need 2-byte alignment (as in GGUF files), F32 and
 * Q8_K rows 4-byte alignment. All functions are thread-safe and allocate
 * nothing.
 * The reference table (kern_table_ref) is the specification; every table
 * gives bit-identical results to it for every entry (tests/test_kernels.c
 * checks, on x86 for ref/avx2/avx512 and under qemu for neon/dotprod).
 */
#ifndef MOTE_KERNELS_H
#define MOTE_KERNELS_H

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- element types (GGUF tensor type ids) ---- */
enum kern_type {
    KERN_F32 = 0,
    KERN_F16 = 1,
    KERN_Q4_0 = 2,
    KERN_Q4_1 = 3,
    KERN_Q5_0 = 6,
    KERN_Q5_1 = 7,
    KERN_Q8_0 = 8,
    KERN_Q8_1 = 9,
    KERN_Q2_K = 10,
    KERN_Q3_K = 11,
    KERN_Q4_K = 12,
    KERN_Q5_K = 13,
    KERN_Q6_K = 14,
    KERN_Q8_K = 15,
    KERN_IQ4_NL = 20,
    KERN_IQ4_XS = 23,
    KERN_BF16 = 30,
    KERN_TYPE_COUNT = 40 /* table size; ids >= this are unknown */
};

typedef struct kern_traits {
    const char *name;      /* "Q4_0", as llama.cpp prints it */
    int block_size;        /* elements per block (1 for F32/F16/BF16) */
    size_t type_size;      /* bytes per block */
    int vec_dot_type;      /* type activations are converted to for vec_dot */
} kern_traits;

/* Traits of type t, or NULL when t is not a type mote knows. A known type
 * may still lack kernels in a table (check the function pointers). */
const kern_traits *kern_type_traits(int t);

/* Bytes of a row of n elements of type t; 0 if n is not a multiple of the
 * block size or t is unknown. */
size_t kern_row_size(int t, int64_t n);

/* ---- scalar helpers shared by every table ---- */
typedef uint16_t kern_f16;   /* IEEE half, bit pattern */
typedef uint16_t kern_bf16;  /* bfloat16, bit pattern */
float kern_f16_to_f32(kern_f16 h);
kern_f16 kern_f32_to_f16(float f);     /* round to nearest even */
float kern_bf16_to_f32(kern_bf16 h);
kern_bf16 kern_f32_to_bf16(float f);   /* round to nearest even, NaN kept */

/* ggml's AVX-512 exp approximation (ggml_v_expf), one lane: exp(x) = 2^n *
 * p(b), n = round(x / ln2) by the 1.5 * 2^23 addition, b = x - n * ln2 in
 * two parts, p a degree-5 polynomial; NaN -> NaN, |n| > 192 -> 0 or inf.
 * j * 2^n is exact while the result stays normal (n >= -125), so it is
 * multiplied by 2^n built from its bits (equal to ldexpf over all 2^32
 * inputs); other n take ldexpf. The specification of every table's
 * vector version (kern_table.swiglu) and of forward.c's tile softmax. */
static inline float kern_expf_approx(float x)
{
    if (isnan(x)) return x;
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = fmaf(fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u, fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                         u, fmaf(0x1.ffffecp-1f, b, 1.0f));
    if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
    const int ni = (int)n;
    if (ni >= -125 && ni <= 127) {
        const uint32_t bits = (uint32_t)(ni + 127) << 23;
        float p2;
        memcpy(&p2, &bits, sizeof p2);
        return j * p2;
    }
    return ldexpf(j, ni);
}

/* glibc's expf, the libm call behind ggml's attention softmax at decode, as
 * its FMA build computes it on x86-64, written out so that every table can
 * run it lane by lane and still match libm bit for bit (test_kernels checks
 * it against libm on every float of magnitude 80-110 and every 1021st bit
 * pattern; all 2^32 floats were checked once):
 *   k = round(x * 32 / ln 2) (adding 1.5 * 2^52), r = x * 32 / ln 2 - k,
 *   exp(x) = 2^(k/32) * (1 + C2 r + C1 r^2 + C0 r^3), all in double, with
 *   2^(k/32) = the bits KERN_EXP2_TAB[k mod 32] + (k << 47) (the table
 *   holds the bits of 2^(i/32) minus i << 47).
 * |x| >= 88 (the top 12 bits >= KERN_EXPF_TOP_SPECIAL) and NaN take
 * glibc's special cases (kern_expf_special). The specification of
 * kern_table.attn_f16's exponentials. */
static const uint64_t KERN_EXP2_TAB[32] = {
    0x3ff0000000000000ull, 0x3fefd9b0d3158574ull, 0x3fefb5586cf9890full, 0x3fef9301d0125b51ull,
    0x3fef72b83c7d517bull, 0x3fef54873168b9aaull, 0x3fef387a6e756238ull, 0x3fef1e9df51fdee1ull,
    0x3fef06fe0a31b715ull, 0x3feef1a7373aa9cbull, 0x3feedea64c123422ull, 0x3feece086061892dull,
    0x3feebfdad5362a27ull, 0x3feeb42b569d4f82ull, 0x3feeab07dd485429ull, 0x3feea47eb03a5585ull,
    0x3feea09e667f3bcdull, 0x3fee9f75e8ec5f74ull, 0x3feea11473eb0187ull, 0x3feea589994cce13ull,
    0x3feeace5422aa0dbull, 0x3feeb737b0cdc5e5ull, 0x3feec49182a3f090ull, 0x3feed503b23e255dull,
    0x3feee89f995ad3adull, 0x3feeff76f2fb5e47ull, 0x3fef199bdd85529cull, 0x3fef3720dcef9069ull,
    0x3fef5818dcfba487ull, 0x3fef7c97337b9b5full, 0x3fefa4afa2a490daull, 0x3fefd0765b6e4540ull,
};
#define KERN_EXPF_INVLN2N 0x1.71547652b82fep+5   /* 32 / ln 2 */
#define KERN_EXPF_SHIFT 0x1.8p+52
#define KERN_EXPF_C0 0x1.c6af84b912394p-20
#define KERN_EXPF_C1 0x1.ebfce50fac4f3p-13
#define KERN_EXPF_C2 0x1.62e42ff0c52d6p-6
#define KERN_EXPF_TOP_SPECIAL 0x42b

/* 1 with *y = expf(x) when x is one of the special cases, else 0 (x then
 * takes the main path even with its top bits >= KERN_EXPF_TOP_SPECIAL). */
static inline int kern_expf_special(float x, float *y)
{
    uint32_t ux;
    memcpy(&ux, &x, sizeof ux);
    if (ux == 0xff800000u) *y = 0.0f;                          /* -inf */
    else if (((ux >> 20) & 0x7ff) >= 0x7f8) *y = x + x;        /* inf, NaN */
    else if (x > 0x1.62e42ep6f) *y = INFINITY;                 /* overflow */
    else if (x < -0x1.9fe368p6f) *y = 0.0f;                    /* underflow */
    else if (x < -0x1.9d1d9ep6f) *y = 0x1p-149f;               /* glibc's "may underflow" value */
    else return 0;
    return 1;
}

static inline float kern_expf(float x)
{
    uint32_t ux;
    memcpy(&ux, &x, sizeof ux);
    float y;
    if (((ux >> 20) & 0x7ff) >= KERN_EXPF_TOP_SPECIAL && kern_expf_special(x, &y)) return y;
    const double xd = (double)x;
    double kd = fma(KERN_EXPF_INVLN2N, xd, KERN_EXPF_SHIFT);
    uint64_t ki;
    memcpy(&ki, &kd, sizeof ki);
    kd -= KERN_EXPF_SHIFT;
    const double r = fma(KERN_EXPF_INVLN2N, xd, -kd);
    const uint64_t t = KERN_EXP2_TAB[ki & 31] + (ki << 47);
    double sc;
    memcpy(&sc, &t, sizeof sc);
    const double z = fma(KERN_EXPF_C0, r, KERN_EXPF_C1), r2 = r * r;
    const double p = fma(z, r2, fma(KERN_EXPF_C2, r, 1.0));
    return (float)(p * sc);
}

/* kern_table.swiglu's reference body (below), inline so that each table
 * compiles it with its own flags (fmaf is one instruction with FMA, a libm
 * call on baseline x86-64). */
static inline void kern_swiglu_body(int n, float *y, const float *x, const float *g)
{
    int i = 0;
    for (; i + 15 < n; i += 16)
        for (int l = 0; l < 16; l++) {
            const float xi = x[i + l];
            y[i + l] = (xi / (1.0f + kern_expf_approx(0.0f - xi))) * g[i + l];
        }
    for (; i < n; i++) y[i] = (x[i] / (1.0f + expf(-x[i]))) * g[i];
}

/* ---- kernel tables ---- */
typedef void (*kern_from_float_fn)(const float *x, void *y, int64_t n);
typedef void (*kern_to_float_fn)(const void *x, float *y, int64_t n);
typedef void (*kern_vec_dot_fn)(int n, float *s, const void *w, const void *a);
/* Matrix product: s[c * ldc + r] = vec_dot(n, row r of w, row c of a) for
 * r < nr, c < nc; w rows are wstride bytes apart, a rows astride bytes
 * apart (rows of type t and vec_dot_type). Every output is bit-identical to
 * vec_dot[t] on that pair; the kernel shares weight unpacking, scales and
 * loads across rows and columns (decode: nc = 1; prefill: nc > 1). */
typedef void (*kern_mul_mat_fn)(int n, int nr, int nc, float *s, size_t ldc,
                                const void *w, size_t wstride, const void *a, size_t astride);

/* Packed weights (optional, per table and type). A table may keep a matrix
 * in a layout of its own, made once at load, that its decode kernel streams
 * without reshuffling bytes (the file's layout keeps each row's blocks
 * together; the kernels want 16 rows side by side).
 *   pack[t](n, nr, w, wstride, out): nr rows (a multiple of
 *       KERN_PACK_ROWS) of n elements of type t, wstride bytes apart ->
 *       out, nr * kern_row_size(t, n) bytes: row group g (rows 16g..16g+15)
 *       fills bytes [g, g + 1) * 16 * kern_row_size(t, n). No allocation.
 *   mul_mat_packed[t]: kern_mul_mat_fn's contract (same results, bit for
 *       bit) with w = the packed bytes of row group g0 (out + g0 * 16 *
 *       kern_row_size), nr a multiple of KERN_PACK_ROWS, wstride =
 *       kern_row_size(t, n).
 * The layout belongs to the table that packed it: use mul_mat_packed[t]
 * of the table whose pack[t] made the bytes (kern_select pairs them). */
#define KERN_PACK_ROWS 16
typedef void (*kern_pack_fn)(int n, int nr, const void *w, size_t wstride, void *out);

/* The F16 vector updates of attention's V accumulator (ggml_vec_mad_f16,
 * ggml_vec_scale_f16 on x86), h(v) = v rounded to half, f(h) = h widened:
 *   f16_mad:   y[i] = h(fmaf(f(x[i]), s, f(y[i])))  for i < (n & ~63),
 *              y[i] = h(f(y[i]) + f(x[i]) * s)     (not fused) for the rest;
 *   f16_scale: y[i] = h(f(y[i]) * s). */
typedef void (*kern_f16_mad_fn)(int n, kern_f16 *y, const kern_f16 *x, float s);
typedef void (*kern_f16_scale_fn)(int n, kern_f16 *y, float s);
/* f32_mad: y[i] = fmaf(x[i], s, y[i]) (one FMA chain step per element;
 * attention's tiled score and V products). */
typedef void (*kern_f32_mad_fn)(int n, float *y, const float *x, float s);
/* attn_f16: nh query rows of F16 flash attention at decode over the same n
 * key positions (the query heads that share one K/V head; llama.cpp's
 * per-position online softmax), each row on its own: for head h and each
 * position j
 *   s = vec_dot[F16](dk, K_j, q_h) * scale + 0.0f;
 *   if s > M_h: ms = kern_expf(M_h_old - s), M_h = s, f16_scale(dv, vkq_h, ms), vs = 1
 *   else:       ms = 1, vs = kern_expf(s - M_h);
 *   f16_mad(dv, vkq_h, V_j, vs); S_h = fmaf(S_h, ms, vs).
 * q_h = q16 + h * dk, vkq_h = vkq16 + h * dv (halves); K_j = k + j * ks
 * bytes, V_j = v + j * vs bytes (F16 rows). S[h] and M[h] are read and
 * written (start: 0 and -INFINITY); vkq16 is the caller's accumulator
 * (start: zeros). Sharing the rows lets a kernel read and widen each K and
 * V row once for all nh heads. */
typedef void (*kern_attn_f16_fn)(int n, int nh, int dk, int dv, const kern_f16 *q16, const void *k, size_t ks,
                                 const void *v, size_t vs, float scale, kern_f16 *vkq16, float *S,
                                 float *M);

/* swiglu: y[i] = (x[i] / (1 + e(0 - x[i]))) * g[i], e = kern_expf_approx
 * for i < (n & ~15) (ggml_vec_swiglu_f32's 16-wide lanes on AVX-512),
 * libm expf for the rest. */
typedef void (*kern_swiglu_fn)(int n, float *y, const float *x, const float *g);

typedef struct kern_table {
    const char *name;                                  /* "ref", "avx2", ... */
    kern_from_float_fn from_float[KERN_TYPE_COUNT];
    kern_to_float_fn to_float[KERN_TYPE_COUNT];
    kern_vec_dot_fn vec_dot[KERN_TYPE_COUNT];
    kern_mul_mat_fn mul_mat[KERN_TYPE_COUNT];          /* may be NULL: use kern_mul_mat() */
    kern_pack_fn pack[KERN_TYPE_COUNT];                /* may be NULL: no packed layout */
    kern_mul_mat_fn mul_mat_packed[KERN_TYPE_COUNT];   /* set with pack[t] */
    kern_f16_mad_fn f16_mad;
    kern_f16_scale_fn f16_scale;
    kern_f32_mad_fn f32_mad;
    kern_attn_f16_fn attn_f16;
    kern_swiglu_fn swiglu;
} kern_table;

extern const kern_table kern_table_ref;

/* The best table this CPU runs, or the one named by force ("ref", "avx2",
 * "avx512", "neon", "dotprod"); NULL if force names a table that is not
 * compiled in or that this CPU cannot run. Missing entries of a SIMD table
 * are filled from the reference table, so every from_float / to_float /
 * vec_dot entry the reference has is usable (mul_mat entries may be NULL). */
const kern_table *kern_select(const char *force);

/* s = W (nr rows of type t) times A (nc rows of its vec_dot_type), as
 * kern_mul_mat_fn says: kt->mul_mat[t] when the table has one, else
 * vec_dot[t] pair by pair. Same results either way. */
void kern_mul_mat(const kern_table *kt, int t, int n, int nr, int nc, float *s, size_t ldc,
                  const void *w, size_t wstride, const void *a, size_t astride);

/* Space-separated names of the tables compiled into this binary. */
const char *kern_compiled_names(void);

/* ---- weight quantization (`mote quantize`) ----
 * Quantize n floats (n a whole number of blocks) into one row of weights of
 * type t the way llama.cpp's llama-quantize does without an importance
 * matrix: byte-identical output for every type here (checked against
 * llama-quantize's files in tests/test_kernels.c). The same as
 * kern_table_ref.from_float[t] except for Q8_0 / Q8_1, whose weight path
 * uses ggml's scalar rounding (scale 1/d, round half away from zero) where
 * activations use its x86 SIMD rounding (127/amax, half to even).
 * Returns 0, or -1 if t has no quantizer or n is not a whole number of
 * blocks. Thread-safe, no allocation. */
int kern_quantize_row(int t, const float *x, void *y, int64_t n);

#endif
