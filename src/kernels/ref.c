/* kernels/ref.c — type traits, scalar conversions, the reference kernels
 * (the specification every SIMD table is tested against) and the start-up
 * choice of the best table (kern_select).
 *
 * Which arithmetic is matched, and why
 * ------------------------------------
 * mote must reproduce llama.cpp's greedy outputs token for token; the goldens
 * come from llama.cpp on an x86 AVX-512 machine. Weights are fixed bits, but
 * ggml rounds the *activations* before every matmul (vec_dot_type), and a
 * one-ulp difference in an activation scale can flip a near-tie argmax
 * several layers later. So the activation conversions below reproduce, bit
 * for bit, what ggml's x86 (AVX2/AVX-512) build computes, which is NOT its
 * portable scalar reference in two places:
 *
 *   Q8_0 / Q8_1 (activations of Q4_0, Q5_0, Q8_0, IQ4_NL / Q4_1, Q5_1):
 *     amax = max |x| over the block; d = amax / 127 (f32 division);
 *     id = amax != 0 ? 127 / amax : 0 (a second division, not 1/d);
 *     q = round-half-to-even(x * id) (vroundps nearest, not roundf's
 *     half-away-from-zero); d stored as f16 (round to nearest even).
 *     Q8_1 adds s = f16(d * (float)sum(q)) (the int sum, then one multiply).
 *   Q8_K (activations of the K-quants and IQ4_XS): ggml's x86 build uses its
 *     scalar reference: max = the signed element of largest |x| (first one on
 *     ties); iscale = -127 / max; q = min(127, round-half-even(iscale * x));
 *     d = 1 / iscale (so d < 0 when max > 0); bsums = sums of 16 quants.
 *   F16 activations: IEEE round to nearest even (F16C vcvtps2ph imm 0),
 *     NaN stays NaN (quieted, top payload bits kept).
 *   BF16 activations: round to nearest even on the bit pattern, subnormals
 *     kept (not flushed), NaN quieted by setting bit 6 (ggml's scalar routine,
 *     which its CPU backend uses for F32->BF16 rows).
 * No FMA contraction may happen in these functions: we build with -std=c11,
 * where GCC's default is -ffp-contract=off.
 *
 * Weight dequantization (to_float) follows the format definitions in
 * quant.h exactly (one multiply, or multiply then add the min).
 *
 * vec_dot: per block an exact integer dot product of the quants, then
 * sumf += (float)isum * (d_w * d_a) in f32, block after block (+ m_w * s_a
 * for the _1 types, which carry a min). SIMD tables keep per-lane partial
 * sums, so they differ from this order by rounding only (tests state the
 * tolerance). F32/F16/BF16 dots accumulate products in double here.
 *
 * Weight quantization (from_float of the weight types, used by `mote
 * quantize`) follows llama.cpp's reference quantizers: same scale choice and
 * rounding, so quality is comparable.
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#if defined(MOTE_KERN_ARM)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

/* ================================================================ traits */

static const kern_traits traits[KERN_TYPE_COUNT] = {
    [KERN_F32]    = {"F32", 1, 4, KERN_F32},
    [KERN_F16]    = {"F16", 1, 2, KERN_F16},
    [KERN_Q4_0]   = {"Q4_0", QK_32, sizeof(blk_q4_0), KERN_Q8_0},
    [KERN_Q4_1]   = {"Q4_1", QK_32, sizeof(blk_q4_1), KERN_Q8_1},
    [KERN_Q5_0]   = {"Q5_0", QK_32, sizeof(blk_q5_0), KERN_Q8_0},
    [KERN_Q5_1]   = {"Q5_1", QK_32, sizeof(blk_q5_1), KERN_Q8_1},
    [KERN_Q8_0]   = {"Q8_0", QK_32, sizeof(blk_q8_0), KERN_Q8_0},
    [KERN_Q8_1]   = {"Q8_1", QK_32, sizeof(blk_q8_1), KERN_Q8_1},
    [KERN_Q2_K]   = {"Q2_K", QK_K, sizeof(blk_q2_k), KERN_Q8_K},
    [KERN_Q3_K]   = {"Q3_K", QK_K, sizeof(blk_q3_k), KERN_Q8_K},
    [KERN_Q4_K]   = {"Q4_K", QK_K, sizeof(blk_q4_k), KERN_Q8_K},
    [KERN_Q5_K]   = {"Q5_K", QK_K, sizeof(blk_q5_k), KERN_Q8_K},
    [KERN_Q6_K]   = {"Q6_K", QK_K, sizeof(blk_q6_k), KERN_Q8_K},
    [KERN_Q8_K]   = {"Q8_K", QK_K, sizeof(blk_q8_k), KERN_Q8_K},
    [KERN_IQ4_NL] = {"IQ4_NL", QK_32, sizeof(blk_iq4_nl), KERN_Q8_0},
    [KERN_IQ4_XS] = {"IQ4_XS", QK_K, sizeof(blk_iq4_xs), KERN_Q8_K},
    [KERN_BF16]   = {"BF16", 1, 2, KERN_BF16},
};

const kern_traits *kern_type_traits(int t)
{
    if (t < 0 || t >= KERN_TYPE_COUNT || !traits[t].name) return NULL;
    return &traits[t];
}

size_t kern_row_size(int t, int64_t n)
{
    const kern_traits *tr = kern_type_traits(t);
    if (!tr || n < 0 || n % tr->block_size) return 0;
    uint64_t nb = (uint64_t)(n / tr->block_size);
    if (nb > SIZE_MAX / tr->type_size) return 0;
    return (size_t)nb * tr->type_size;
}

const int8_t kern_iq4nl_values[16] = {
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
};

/* ======================================================= f16 / bf16 */

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float kern_f16_to_f32(kern_f16 h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | mant << 13);
    if (exp == 0) {
        float v = (float)mant * 0x1p-24f;  /* subnormal (or zero): exact */
        return sign ? -v : v;
    }
    return bits_f32(sign | (exp + 112) << 23 | mant << 13);
}

kern_f16 kern_f32_to_f16(float f)
{
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)  /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
    if (ax >= 0x477ff000u) return sign | 0x7c00;  /* >= 65520 rounds to inf */
    if (ax >= 0x38800000u) {  /* normal half: rebias, round 13 bits off */
        uint32_t r = ax - 0x38000000u;
        r += 0xfff + ((r >> 13) & 1);
        return (uint16_t)(sign | (r >> 13));
    }
    uint32_t e = ax >> 23;
    if (e < 102) return sign;  /* below 2^-25: rounds to zero */
    uint32_t m = (ax & 0x7fffff) | 0x800000, shift = 126 - e;
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (uint16_t)(sign | q);  /* q == 0x400 is the smallest normal */
}

float kern_bf16_to_f32(kern_bf16 h) { return bits_f32((uint32_t)h << 16); }

kern_bf16 kern_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 64);
    return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

/* Round half to even for |v| < 2^22 (the sum lands in [2^23, 2^24), where
 * the float's ulp is 1, so the addition itself rounds to nearest even). */
static inline int round_ne(float v)
{
    float t = v + 12582912.f;  /* 1.5 * 2^23 */
    int32_t i;
    memcpy(&i, &t, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clamp_i8(int v) { return v < -128 ? -128 : v > 127 ? 127 : v; }

/* (int)v (truncation, as ggml's (int8_t) casts) clamped to [0, hi]; NaN -> 0.
 * Defined for every input, where a bare cast of NaN or inf is not. */
static inline int trunc_clamp(float v, int hi)
{
    if (!(v >= 0.0f)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

static inline float f16f(kern_f16 h) { return kern_f16_to_f32(h); }

/* ======================================================= F32 / F16 / BF16 */

static void f32_from_float(const float *x, void *y, int64_t n) { memcpy(y, x, (size_t)n * 4); }
static void f32_to_float(const void *x, float *y, int64_t n) { memcpy(y, x, (size_t)n * 4); }

static void f32_vec_dot(int n, float *s, const void *w, const void *a)
{
    const float *x = w, *y = a;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)x[i] * y[i];
    *s = (float)sum;
}

static void f16_from_float(const float *x, void *vy, int64_t n)
{
    kern_f16 *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = kern_f32_to_f16(x[i]);
}

static void f16_to_float(const void *vx, float *y, int64_t n)
{
    const kern_f16 *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = kern_f16_to_f32(x[i]);
}

static void f16_vec_dot(int n, float *s, const void *w, const void *a)
{
    const kern_f16 *x = w, *y = a;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)kern_f16_to_f32(x[i]) * kern_f16_to_f32(y[i]);
    *s = (float)sum;
}

static void bf16_from_float(const float *x, void *vy, int64_t n)
{
    kern_bf16 *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = kern_f32_to_bf16(x[i]);
}

static void bf16_to_float(const void *vx, float *y, int64_t n)
{
    const kern_bf16 *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = kern_bf16_to_f32(x[i]);
}

static void bf16_vec_dot(int n, float *s, const void *w, const void *a)
{
    const kern_bf16 *x = w, *y = a;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)kern_bf16_to_f32(x[i]) * kern_bf16_to_f32(y[i]);
    *s = (float)sum;
}

/* ============================================ 32-element weight formats */

/* Signed value of largest magnitude (the first one on ties), and its |.|. */
static inline float block_absmax(const float *x, int n, float *amax_out)
{
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++) {
        float v = fabsf(x[j]);
        if (v > amax) { amax = v; max = x[j]; }
    }
    *amax_out = amax;
    return max;
}

/* Q4_0 (llama.cpp's reference quantizer): d = max / -8 so the largest
 * magnitude maps to -8 exactly; q = min(15, trunc(x/d + 8.5)). */
static void q4_0_from_float(const float *x, void *vy, int64_t n)
{
    blk_q4_0 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32) {
        float amax, max = block_absmax(x, QK_32, &amax);
        float d = max / -8, id = d ? 1.0f / d : 0.0f;
        y[i].d = kern_f32_to_f16(d);
        for (int j = 0; j < QK_32 / 2; j++) {
            int q0 = trunc_clamp(x[j] * id + 8.5f, 15), q1 = trunc_clamp(x[j + 16] * id + 8.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

static void q4_0_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q4_0 *x = vx;
    for (int64_t i = 0; i < n / QK_32; i++, y += QK_32) {
        float d = f16f(x[i].d);
        for (int j = 0; j < 16; j++) {
            y[j] = ((x[i].qs[j] & 0xf) - 8) * d;
            y[j + 16] = ((x[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static void q4_1_from_float(const float *x, void *vy, int64_t n)
{
    blk_q4_1 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK_32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / 15, id = d ? 1.0f / d : 0.0f;
        y[i].d = kern_f32_to_f16(d);
        y[i].m = kern_f32_to_f16(min);
        for (int j = 0; j < 16; j++) {
            int q0 = trunc_clamp((x[j] - min) * id + 0.5f, 15);
            int q1 = trunc_clamp((x[j + 16] - min) * id + 0.5f, 15);
            y[i].qs[j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

static void q4_1_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q4_1 *x = vx;
    for (int64_t i = 0; i < n / QK_32; i++, y += QK_32) {
        float d = f16f(x[i].d), m = f16f(x[i].m);
        for (int j = 0; j < 16; j++) {
            y[j] = (x[i].qs[j] & 0xf) * d + m;
            y[j + 16] = (x[i].qs[j] >> 4) * d + m;
        }
    }
}

static inline uint32_t load_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

/* Q5_0: d = max / -16, q = min(31, trunc(x/d + 16.5)); bit 4 into qh. */
static void q5_0_from_float(const float *x, void *vy, int64_t n)
{
    blk_q5_0 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32) {
        float amax, max = block_absmax(x, QK_32, &amax);
        float d = max / -16, id = d ? 1.0f / d : 0.0f;
        uint32_t qh = 0;
        y[i].d = kern_f32_to_f16(d);
        for (int j = 0; j < 16; j++) {
            int q0 = trunc_clamp(x[j] * id + 16.5f, 31), q1 = trunc_clamp(x[j + 16] * id + 16.5f, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0xf) | (q1 & 0xf) << 4);
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void q5_0_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q5_0 *x = vx;
    for (int64_t i = 0; i < n / QK_32; i++, y += QK_32) {
        float d = f16f(x[i].d);
        uint32_t qh = load_u32(x[i].qh);
        for (int j = 0; j < 16; j++) {
            int q0 = (x[i].qs[j] & 0xf) | ((qh >> j) & 1) << 4;
            int q1 = (x[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
            y[j] = (q0 - 16) * d;
            y[j + 16] = (q1 - 16) * d;
        }
    }
}

static void q5_1_from_float(const float *x, void *vy, int64_t n)
{
    blk_q5_1 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK_32; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        float d = (max - min) / 31, id = d ? 1.0f / d : 0.0f;
        uint32_t qh = 0;
        y[i].d = kern_f32_to_f16(d);
        y[i].m = kern_f32_to_f16(min);
        for (int j = 0; j < 16; j++) {
            int q0 = trunc_clamp((x[j] - min) * id + 0.5f, 31);
            int q1 = trunc_clamp((x[j + 16] - min) * id + 0.5f, 31);
            y[i].qs[j] = (uint8_t)((q0 & 0xf) | (q1 & 0xf) << 4);
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        memcpy(y[i].qh, &qh, 4);
    }
}

static void q5_1_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q5_1 *x = vx;
    for (int64_t i = 0; i < n / QK_32; i++, y += QK_32) {
        float d = f16f(x[i].d), m = f16f(x[i].m);
        uint32_t qh = load_u32(x[i].qh);
        for (int j = 0; j < 16; j++) {
            int q0 = (x[i].qs[j] & 0xf) | ((qh >> j) & 1) << 4;
            int q1 = (x[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
            y[j] = q0 * d + m;
            y[j + 16] = q1 * d + m;
        }
    }
}

/* ======================================= activation formats Q8_0 / Q8_1 */

/* The x86 ggml arithmetic (see the top of the file). Returns d (f32). */
static inline float q8_block(const float *x, int8_t *q, int *sum)
{
    float amax = 0;
    for (int j = 0; j < QK_32; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
    int s = 0;
    for (int j = 0; j < QK_32; j++) {
        int v = clamp_i8(round_ne(x[j] * id));
        q[j] = (int8_t)v;
        s += v;
    }
    *sum = s;
    return d;
}

static void q8_0_from_float(const float *x, void *vy, int64_t n)
{
    blk_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32) {
        int sum;
        y[i].d = kern_f32_to_f16(q8_block(x, y[i].qs, &sum));
    }
}

static void q8_0_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q8_0 *x = vx;
    for (int64_t i = 0; i < n / QK_32; i++, y += QK_32) {
        float d = f16f(x[i].d);
        for (int j = 0; j < QK_32; j++) y[j] = x[i].qs[j] * d;
    }
}

static void q8_1_from_float(const float *x, void *vy, int64_t n)
{
    blk_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32) {
        int sum;
        float d = q8_block(x, y[i].qs, &sum);
        y[i].d = kern_f32_to_f16(d);
        y[i].s = kern_f32_to_f16(d * (float)sum);
    }
}

static void q8_1_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q8_1 *x = vx;
    for (int64_t i = 0; i < n / QK_32; i++, y += QK_32) {
        float d = f16f(x[i].d);
        for (int j = 0; j < QK_32; j++) y[j] = x[i].qs[j] * d;
    }
}

/* ================================================ vec_dot, 32-element */

static void q4_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_0 *w = vw;
    const blk_q8_0 *a = va;
    float sumf = 0;
    for (int i = 0; i < n / QK_32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            isum += ((w[i].qs[j] & 0xf) - 8) * a[i].qs[j];
            isum += ((w[i].qs[j] >> 4) - 8) * a[i].qs[j + 16];
        }
        sumf += (float)isum * (f16f(w[i].d) * f16f(a[i].d));
    }
    *s = sumf;
}

static void q4_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_1 *w = vw;
    const blk_q8_1 *a = va;
    float sumf = 0;
    for (int i = 0; i < n / QK_32; i++) {
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            isum += (w[i].qs[j] & 0xf) * a[i].qs[j];
            isum += (w[i].qs[j] >> 4) * a[i].qs[j + 16];
        }
        sumf += (float)isum * (f16f(w[i].d) * f16f(a[i].d)) + f16f(w[i].m) * f16f(a[i].s);
    }
    *s = sumf;
}

static void q5_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_0 *w = vw;
    const blk_q8_0 *a = va;
    float sumf = 0;
    for (int i = 0; i < n / QK_32; i++) {
        uint32_t qh = load_u32(w[i].qh);
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = ((w[i].qs[j] & 0xf) | ((qh >> j) & 1) << 4) - 16;
            int q1 = ((w[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16;
            isum += q0 * a[i].qs[j] + q1 * a[i].qs[j + 16];
        }
        sumf += (float)isum * (f16f(w[i].d) * f16f(a[i].d));
    }
    *s = sumf;
}

static void q5_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_1 *w = vw;
    const blk_q8_1 *a = va;
    float sumf = 0;
    for (int i = 0; i < n / QK_32; i++) {
        uint32_t qh = load_u32(w[i].qh);
        int isum = 0;
        for (int j = 0; j < 16; j++) {
            int q0 = (w[i].qs[j] & 0xf) | ((qh >> j) & 1) << 4;
            int q1 = (w[i].qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
            isum += q0 * a[i].qs[j] + q1 * a[i].qs[j + 16];
        }
        sumf += (float)isum * (f16f(w[i].d) * f16f(a[i].d)) + f16f(w[i].m) * f16f(a[i].s);
    }
    *s = sumf;
}

static void q8_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_0 *w = vw, *a = va;
    float sumf = 0;
    for (int i = 0; i < n / QK_32; i++) {
        int isum = 0;
        for (int j = 0; j < QK_32; j++) isum += w[i].qs[j] * a[i].qs[j];
        sumf += (float)isum * (f16f(w[i].d) * f16f(a[i].d));
    }
    *s = sumf;
}

/* Not used by any model (ggml has no Q8_1 weights path); kept so every
 * known 32-element type has a complete row of kernels. */
static void q8_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_1 *w = vw, *a = va;
    float sumf = 0;
    for (int i = 0; i < n / QK_32; i++) {
        int isum = 0;
        for (int j = 0; j < QK_32; j++) isum += w[i].qs[j] * a[i].qs[j];
        sumf += (float)isum * (f16f(w[i].d) * f16f(a[i].d));
    }
    *s = sumf;
}

/* ================================================================ table */

const kern_table kern_table_ref = {
    .name = "ref",
    .from_float = {
        [KERN_F32] = f32_from_float, [KERN_F16] = f16_from_float, [KERN_BF16] = bf16_from_float,
        [KERN_Q4_0] = q4_0_from_float, [KERN_Q4_1] = q4_1_from_float,
        [KERN_Q5_0] = q5_0_from_float, [KERN_Q5_1] = q5_1_from_float,
        [KERN_Q8_0] = q8_0_from_float, [KERN_Q8_1] = q8_1_from_float,
    },
    .to_float = {
        [KERN_F32] = f32_to_float, [KERN_F16] = f16_to_float, [KERN_BF16] = bf16_to_float,
        [KERN_Q4_0] = q4_0_to_float, [KERN_Q4_1] = q4_1_to_float,
        [KERN_Q5_0] = q5_0_to_float, [KERN_Q5_1] = q5_1_to_float,
        [KERN_Q8_0] = q8_0_to_float, [KERN_Q8_1] = q8_1_to_float,
    },
    .vec_dot = {
        [KERN_F32] = f32_vec_dot, [KERN_F16] = f16_vec_dot, [KERN_BF16] = bf16_vec_dot,
        [KERN_Q4_0] = q4_0_vec_dot, [KERN_Q4_1] = q4_1_vec_dot,
        [KERN_Q5_0] = q5_0_vec_dot, [KERN_Q5_1] = q5_1_vec_dot,
        [KERN_Q8_0] = q8_0_vec_dot, [KERN_Q8_1] = q8_1_vec_dot,
    },
};

/* ============================================================ selection */

/* SIMD tables (x86_*.c, arm_*.c) hold only the entries they implement;
 * kern_select returns merged copies: ref, overlaid by each lower ISA level,
 * overlaid by the table itself. Built once (pthread_once). */
#if defined(MOTE_KERN_X86)
#define N_SIMD 2
static const kern_table *simd_src(int i) { return i == 0 ? &kern_table_avx2 : &kern_table_avx512; }
static const char *const compiled_names = "ref avx2 avx512";
#elif defined(MOTE_KERN_ARM)
#define N_SIMD 2
static const kern_table *simd_src(int i) { return i == 0 ? &kern_table_neon : &kern_table_dotprod; }
static const char *const compiled_names = "ref neon dotprod";
#else
#define N_SIMD 0
static const char *const compiled_names = "ref";
#endif

#if N_SIMD > 0
static kern_table merged[N_SIMD];
static pthread_once_t merged_once = PTHREAD_ONCE_INIT;

static void overlay(kern_table *dst, const kern_table *src)
{
    for (int t = 0; t < KERN_TYPE_COUNT; t++) {
        if (src->from_float[t]) dst->from_float[t] = src->from_float[t];
        if (src->to_float[t]) dst->to_float[t] = src->to_float[t];
        if (src->vec_dot[t]) dst->vec_dot[t] = src->vec_dot[t];
    }
}

static void merge_tables(void)
{
    kern_table acc = kern_table_ref;
    for (int i = 0; i < N_SIMD; i++) {
        overlay(&acc, simd_src(i));
        merged[i] = acc;
        merged[i].name = simd_src(i)->name;
    }
}

/* Can this CPU run table i (and every lower level)? */
static int cpu_runs(int i)
{
#if defined(MOTE_KERN_X86)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    if (i == 0) return avx2;
    return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16");
#else
    if (i == 0) return 1;  /* NEON (ASIMD) is baseline on aarch64 */
    unsigned long hw = getauxval(AT_HWCAP);
    return (hw & HWCAP_ASIMDDP) && (hw & HWCAP_FPHP) && (hw & HWCAP_ASIMDHP);
#endif
}
#endif

const kern_table *kern_select(const char *force)
{
    if (force && *force && strcmp(force, "ref") == 0) return &kern_table_ref;
#if N_SIMD > 0
    pthread_once(&merged_once, merge_tables);
    if (force && *force) {
        for (int i = 0; i < N_SIMD; i++)
            if (strcmp(force, merged[i].name) == 0) return cpu_runs(i) ? &merged[i] : NULL;
        return NULL;
    }
    for (int i = N_SIMD - 1; i >= 0; i--)
        if (cpu_runs(i)) return &merged[i];
    return &kern_table_ref;
#else
    if (force && *force) return NULL;
    return &kern_table_ref;
#endif
}

const char *kern_compiled_names(void) { return compiled_names; }
