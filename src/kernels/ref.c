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
 * vec_dot: llama.cpp's decode arithmetic, float operation by float
 * operation (see the vec_dot section); every table is bit-identical to it.
 *
 * Weight quantization (from_float of the weight types; kern_quantize_row
 * for `mote quantize`) follows llama.cpp's quantizers without an importance
 * matrix: the same searches in the same float operation order, so the output
 * is byte-identical to llama-quantize's (tests/test_kernels.c requantizes
 * the shared F32 models and compares with llama.cpp's quantized files).
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/attn_impl.h"

#include <float.h>
#include <math.h>
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
        const float p = x[j] * id;
        int v = p == p ? clamp_i8(round_ne(p)) : 0;   /* NaN (x NaN, or inf * 0) -> 0 */
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








/* ================================================ activation format Q8_K */

/* ggml's x86 build uses its scalar routine here (see the top of the file).
 * A zero block gets d = 0 and zero quants and sums. */
static void q8_k_from_float(const float *x, void *vy, int64_t n)
{
    blk_q8_k *y = vy;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float amax, max = block_absmax(x, QK_K, &amax);
        if (!(amax > 0)) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = clamp_i8(round_ne(iscale * x[j]));
            y[i].qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += y[i].qs[16 * g + j];
            y[i].bsums[g] = (int16_t)s;
        }
        y[i].d = 1 / iscale;
    }
}

static void q8_k_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q8_k *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K)
        for (int j = 0; j < QK_K; j++) y[j] = x[i].d * x[i].qs[j];
}


/* ========================================================= K-quants
 *
 * Element e of a 256-element super-block, as stored (ggml's layouts):
 *   Q2_K/Q3_K: e = 128h + 32s + l (h < 2, s < 4, l < 32): 2 low bits at
 *     qs[32h + l] >> 2s; group of 16 (scale index) g = e / 16.
 *     Q3_K's third bit: bit (e / 32) of hmask[e % 32], clear means -4.
 *   Q4_K/Q5_K: e = 64g + 32u + l: nibble u of qs[32g + l]; sub-block of 32
 *     j = e / 32 with a 6-bit scale and min (k4 packing below);
 *     Q5_K's fifth bit: bit (e / 32) of qh[l].
 *   Q6_K: e = 128h + 32k + l: low 4 bits = nibble (k >> 1) of
 *     ql[64h + 32(k & 1) + l], high 2 bits = (qh[32h + l] >> 2k) & 3;
 *     int8 scale of group e / 16.
 *   IQ4_XS: e = 32j + 16u + l: nibble u of qs[16j + l] indexes
 *     kern_iq4nl_values; 6-bit scale of sub-block j (minus 32).
 */

/* 6-bit scale and min j of Q4_K/Q5_K from their 12-byte packing. */
static inline void k4_scale_min(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xf) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* 6-bit scale j (0..15, not yet minus 32) of Q3_K. */
static inline int k3_scale(int j, const uint8_t *q)
{
    int lo = j < 8 ? q[j] & 0xf : q[j - 8] >> 4;
    return lo | ((q[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
}

static inline int q2k_quant(const blk_q2_k *b, int e)
{
    return (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
}

static inline int q3k_quant(const blk_q3_k *b, int e)
{
    int lo = (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
    return lo - ((b->hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
}

static inline int q4k_quant(const blk_q4_k *b, int e)
{
    return (b->qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) & 1))) & 0xf;
}

static inline int q5k_quant(const blk_q5_k *b, int e)
{
    int lo = (b->qs[32 * (e / 64) + e % 32] >> (4 * ((e / 32) & 1))) & 0xf;
    return lo | ((b->qh[e % 32] >> (e / 32)) & 1) << 4;
}

static inline int q6k_quant(const blk_q6_k *b, int e)
{
    int h = e / 128, k = (e % 128) / 32, l = e % 32;
    int lo = (b->ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 0xf;
    return (lo | ((b->qh[32 * h + l] >> (2 * k)) & 3) << 4) - 32;
}

static inline int iq4xs_scale(const blk_iq4_xs *b, int j)
{
    uint16_t h;
    memcpy(&h, &b->scales_h, 2);
    return (((b->scales_l[j / 2] >> (4 * (j % 2))) & 0xf) | ((h >> (2 * j)) & 3) << 4) - 32;
}

static inline int iq4_value(const uint8_t *qs16, int e)  /* e < 32 */
{
    return kern_iq4nl_values[(qs16[e % 16] >> (4 * (e / 16))) & 0xf];
}

/* ---- to_float: value = scale * quant (- min), in ggml's operation order */

static void q2_k_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q2_k *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16f(x[i].d), dmin = f16f(x[i].dmin);
        for (int e = 0; e < QK_K; e++) {
            int sc = x[i].scales[e / 16];
            float dl = d * (sc & 0xf), ml = dmin * (sc >> 4);
            y[e] = dl * q2k_quant(&x[i], e) - ml;
        }
    }
}

static void q3_k_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q3_k *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16f(x[i].d);
        for (int e = 0; e < QK_K; e++) {
            float dl = d * (k3_scale(e / 16, x[i].scales) - 32);
            y[e] = dl * q3k_quant(&x[i], e);
        }
    }
}

static void q4_k_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q4_k *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16f(x[i].d), dmin = f16f(x[i].dmin);
        for (int j = 0; j < QK_K / 32; j++) {
            int sc, m;
            k4_scale_min(j, x[i].scales, &sc, &m);
            float dl = d * sc, ml = dmin * m;
            for (int l = 0; l < 32; l++) y[32 * j + l] = dl * q4k_quant(&x[i], 32 * j + l) - ml;
        }
    }
}

static void q5_k_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q5_k *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16f(x[i].d), dmin = f16f(x[i].dmin);
        for (int j = 0; j < QK_K / 32; j++) {
            int sc, m;
            k4_scale_min(j, x[i].scales, &sc, &m);
            float dl = d * sc, ml = dmin * m;
            for (int l = 0; l < 32; l++) y[32 * j + l] = dl * q5k_quant(&x[i], 32 * j + l) - ml;
        }
    }
}

static void q6_k_to_float(const void *vx, float *y, int64_t n)
{
    const blk_q6_k *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16f(x[i].d);
        for (int e = 0; e < QK_K; e++) y[e] = d * x[i].scales[e / 16] * q6k_quant(&x[i], e);
    }
}

static void iq4_nl_to_float(const void *vx, float *y, int64_t n)
{
    const blk_iq4_nl *x = vx;
    for (int64_t i = 0; i < n / QK_32; i++, y += QK_32) {
        float d = f16f(x[i].d);
        for (int e = 0; e < 32; e++) y[e] = d * iq4_value(x[i].qs, e);
    }
}

static void iq4_xs_to_float(const void *vx, float *y, int64_t n)
{
    const blk_iq4_xs *x = vx;
    for (int64_t i = 0; i < n / QK_K; i++, y += QK_K) {
        float d = f16f(x[i].d);
        for (int j = 0; j < QK_K / 32; j++) {
            float dl = d * iq4xs_scale(&x[i], j);
            for (int e = 0; e < 32; e++) y[32 * j + e] = dl * iq4_value(x[i].qs + 16 * j, e);
        }
    }
}









/* ---- quantizers (from_float of the weight types), llama.cpp's method
 * without an importance matrix: the same searches in the same float
 * operation order, so `mote quantize` matches llama-quantize. */

/* round-half-even of v, saturated to +-4194303 (NaN gives some value in
 * range): the quantizers clamp the result anyway. */
static inline int nearest_sat(float v)
{
    if (v > 4194303.f) return 4194303;
    if (v < -4194303.f) return -4194303;
    return round_ne(v);
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

#define GROUP_MAX_EPS 1e-15f

/* Affine fit x ~ scale * L - the_min, L in [0, nmax], minimizing the
 * weighted error over a small grid of scale candidates (ggml's
 * make_qkx2_quants). Returns scale; writes L and *the_min (>= 0). */
static float fit_affine(int n, int nmax, const float *x, const float *w, uint8_t *L,
                        float *the_min, uint8_t *Laux, float rmin, float rdelta, int nstep, int use_mad)
{
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_sat(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_sat(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Symmetric fit x ~ scale * (L - nmax), L - nmax in [-nmax, nmax-1],
 * weights x^2, best of 19 scale candidates (ggml's make_qx_quants with
 * rmse_type 1). Returns scale (may be negative). */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L)
{
    float amax, max = block_absmax(x, n, &amax);
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_sat(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest_sat(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clampi(nearest_sat(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Symmetric fit refined by coordinate descent (ggml's make_q3_quants with
 * do_rmse): L in [0, 2 nmax). Returns scale. */
static float fit_symmetric_rmse(int n, int nmax, const float *x, int8_t *L)
{
    float amax, max = block_absmax(x, n, &amax);
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = -nmax / max, sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clampi(nearest_sat(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i], slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int new_l = clampi(nearest_sat(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * new_l;
                    sl2 += w * new_l * new_l;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Pack 2-bit quants L[256] (values 0..3) into the Q2_K/Q3_K qs layout. */
static void pack_2bit(const uint8_t *L, uint8_t *qs)
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)(p[0] | p[32] << 2 | p[64] << 4 | p[96] << 6);
        }
}

static void q2_k_from_float(const float *x, void *vy, int64_t n)
{
    blk_q2_k *y = vy;
    uint8_t L[QK_K], Laux[16];
    float w[16], mins[16], scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int g = 0; g < 16; g++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * g + l]);
            scales[g] = fit_affine(16, 3, x + 16 * g, w, L + 16 * g, &mins[g], Laux, -0.5f, 0.1f, 15, 1);
            if (scales[g] > max_scale) max_scale = scales[g];
            if (mins[g] > max_min) max_min = mins[g];
        }
        if (max_scale > 0) {
            float iscale = 15.f / max_scale;
            for (int g = 0; g < 16; g++) y[i].scales[g] = (uint8_t)clampi(nearest_sat(iscale * scales[g]), 0, 15);
            y[i].d = kern_f32_to_f16(max_scale / 15.f);
        } else {
            memset(y[i].scales, 0, 16);
            y[i].d = 0;
        }
        if (max_min > 0) {
            float iscale = 15.f / max_min;
            for (int g = 0; g < 16; g++)
                y[i].scales[g] |= (uint8_t)(clampi(nearest_sat(iscale * mins[g]), 0, 15) << 4);
            y[i].dmin = kern_f32_to_f16(max_min / 15.f);
        } else {
            y[i].dmin = 0;
        }
        for (int g = 0; g < 16; g++) {
            float d = f16f(y[i].d) * (y[i].scales[g] & 0xf);
            if (!d) continue;
            float dm = f16f(y[i].dmin) * (y[i].scales[g] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * g + l] = (uint8_t)clampi(nearest_sat((x[16 * g + l] + dm) / d), 0, 3);
        }
        pack_2bit(L, y[i].qs);
    }
}

static void q3_k_from_float(const float *x, void *vy, int64_t n)
{
    blk_q3_k *y = vy;
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, amax = 0;
        for (int g = 0; g < 16; g++) {
            scales[g] = fit_symmetric_rmse(16, 4, x + 16 * g, L + 16 * g);
            if (fabsf(scales[g]) > amax) { amax = fabsf(scales[g]); max_scale = scales[g]; }
        }
        memset(y[i].scales, 0, 12);
        if (max_scale != 0) {
            float iscale = -32.f / max_scale;
            for (int g = 0; g < 16; g++) {
                int l = clampi(nearest_sat(iscale * scales[g]), -32, 31) + 32;
                if (g < 8) y[i].scales[g] = (uint8_t)(l & 0xf);
                else y[i].scales[g - 8] |= (uint8_t)((l & 0xf) << 4);
                y[i].scales[8 + g % 4] |= (uint8_t)((l >> 4) << (2 * (g / 4)));
            }
            y[i].d = kern_f32_to_f16(1 / iscale);
        } else {
            y[i].d = 0;
        }
        for (int g = 0; g < 16; g++) {
            float d = f16f(y[i].d) * (k3_scale(g, y[i].scales) - 32);
            if (!d) continue;
            for (int l = 0; l < 16; l++)
                L[16 * g + l] = (int8_t)(clampi(nearest_sat(x[16 * g + l] / d), -4, 3) + 4);
        }
        uint8_t Lu[QK_K];
        memset(y[i].hmask, 0, sizeof y[i].hmask);
        for (int e = 0; e < QK_K; e++) {
            int l = L[e];
            if (l > 3) {
                y[i].hmask[e % 32] |= (uint8_t)(1 << (e / 32));
                l -= 4;
            }
            Lu[e] = (uint8_t)(l & 3);
        }
        pack_2bit(Lu, y[i].qs);
    }
}

/* Q4_K and Q5_K share everything but the bit width and the search grid. */
static void k4_pack_scales(uint8_t *s, const uint8_t *ls, const uint8_t *lm)
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            s[j] = ls[j];
            s[j + 4] = lm[j];
        } else {
            s[j + 4] = (uint8_t)((ls[j] & 0xf) | (lm[j] & 0xf) << 4);
            s[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            s[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

static void k45_quantize(const float *x, int nmax, float rmin, float rdelta, int nstep,
                         kern_f16 *d_out, kern_f16 *dmin_out, uint8_t *scales12, uint8_t *L)
{
    uint8_t Laux[32], ls[8], lm[8];
    float w[32], mins[8], scales[8], max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = fit_affine(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, rdelta, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; j++) {
        /* ggml stores nearest_int into a uint8_t (negative wraps) then
         * takes MIN(63, .): reproduced */
        uint8_t a = (uint8_t)nearest_sat(inv_scale * scales[j]), b = (uint8_t)nearest_sat(inv_min * mins[j]);
        ls[j] = a < 63 ? a : 63;
        lm[j] = b < 63 ? b : 63;
    }
    memset(scales12, 0, K_SCALE_SIZE);
    k4_pack_scales(scales12, ls, lm);
    *d_out = kern_f32_to_f16(max_scale / 63.f);
    *dmin_out = kern_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        k4_scale_min(j, scales12, &sc, &m);
        float d = f16f(*d_out) * sc;
        if (!d) continue;
        float dm = f16f(*dmin_out) * m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clampi(nearest_sat((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

static void q4_k_from_float(const float *x, void *vy, int64_t n)
{
    blk_q4_k *y = vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        k45_quantize(x, 15, -1.f, 0.1f, 20, &y[i].d, &y[i].dmin, y[i].scales, L);
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++)
                y[i].qs[32 * g + l] = (uint8_t)(L[64 * g + l] | L[64 * g + 32 + l] << 4);
    }
}

static void q5_k_from_float(const float *x, void *vy, int64_t n)
{
    blk_q5_k *y = vy;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        k45_quantize(x, 31, -0.5f, 0.1f, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
        memset(y[i].qh, 0, sizeof y[i].qh);
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++) {
                int l1 = L[64 * g + l], l2 = L[64 * g + 32 + l];
                if (l1 > 15) { l1 -= 16; y[i].qh[l] |= (uint8_t)(1 << (2 * g)); }
                if (l2 > 15) { l2 -= 16; y[i].qh[l] |= (uint8_t)(2 << (2 * g)); }
                y[i].qs[32 * g + l] = (uint8_t)(l1 | l2 << 4);
            }
    }
}

static void q6_k_from_float(const float *x, void *vy, int64_t n)
{
    blk_q6_k *y = vy;
    int8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, max_abs = 0;
        for (int g = 0; g < 16; g++) {
            scales[g] = fit_symmetric(16, 32, x + 16 * g, L + 16 * g);
            if (fabsf(scales[g]) > max_abs) { max_abs = fabsf(scales[g]); max_scale = scales[g]; }
        }
        memset(&y[i], 0, sizeof y[i]);
        if (max_abs < GROUP_MAX_EPS) continue;
        float iscale = -128.f / max_scale;
        y[i].d = kern_f32_to_f16(1 / iscale);
        for (int g = 0; g < 16; g++) y[i].scales[g] = (int8_t)clampi(nearest_sat(iscale * scales[g]), -128, 127);
        for (int g = 0; g < 16; g++) {
            float d = f16f(y[i].d) * y[i].scales[g];
            if (!d) continue;
            for (int l = 0; l < 16; l++)
                L[16 * g + l] = (int8_t)(clampi(nearest_sat(x[16 * g + l] / d), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                const int8_t *p = L + 128 * h + l;
                y[i].ql[64 * h + l] = (uint8_t)((p[0] & 0xf) | (p[64] & 0xf) << 4);
                y[i].ql[64 * h + 32 + l] = (uint8_t)((p[32] & 0xf) | (p[96] & 0xf) << 4);
                y[i].qh[32 * h + l] = (uint8_t)((p[0] >> 4) | (p[32] >> 4) << 2 | (p[64] >> 4) << 4 | (p[96] >> 4) << 6);
            }
    }
}

/* ---- IQ4_NL / IQ4_XS: non-linear 16-value grid (ggml's
 * quantize_row_iq4_nl_impl with weights x^2 and 7 scale tries) */

/* Index of the table value nearest to v (the lower one on exact ties is
 * not preferred: ties go up, as in ggml's best_index_int8). */
static int iq4_best_index(float v)
{
    const int8_t *val = kern_iq4nl_values;
    if (v <= val[0]) return 0;
    if (v >= val[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (v < val[mid]) hi = mid; else lo = mid;
    }
    return v - val[hi - 1] < val[hi] - v ? hi - 1 : hi;
}

/* Best scale for one 32-block (L written with the indices of the search).
 * Returns 0 for an all-zero block. */
static float iq4_block_scale(const float *xb, uint8_t *L)
{
    const int8_t *val = kern_iq4nl_values;
    float w[32], amax, max = block_absmax(xb, 32, &amax);
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, 32);
        return 0;
    }
    for (int j = 0; j < 32; j++) w[j] = xb[j] * xb[j];
    float d = -max / val[0], id = 1 / d, sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        int l = iq4_best_index(id * xb[j]);
        L[j] = (uint8_t)l;
        float q = val[l];
        sumqx += w[j] * q * xb[j];
        sumq2 += w[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
    float best = d * sumqx;
    for (int itry = -7; itry <= 7; itry++) {
        id = (itry + val[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            float q = val[iq4_best_index(id * xb[j])];
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static void iq4_pack(const uint8_t *L, uint8_t *qs)  /* one 32-block */
{
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(L[j] | L[16 + j] << 4);
}

static void iq4_nl_from_float(const float *x, void *vy, int64_t n)
{
    blk_iq4_nl *y = vy;
    uint8_t L[32];
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32) {
        float d = iq4_block_scale(x, L);
        y[i].d = kern_f32_to_f16(d);
        float id = d ? 1 / d : 0;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_best_index(id * x[j]);
        iq4_pack(L, y[i].qs);
    }
}

static void iq4_xs_from_float(const float *x, void *vy, int64_t n)
{
    blk_iq4_xs *y = vy;
    uint8_t L[32];
    float scales[8];
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float max_scale = 0, amax_scale = 0;
        for (int j = 0; j < 8; j++) {
            scales[j] = iq4_block_scale(x + 32 * j, L);
            if (fabsf(scales[j]) > amax_scale) { amax_scale = fabsf(scales[j]); max_scale = scales[j]; }
        }
        float d = -max_scale / 32, id = d ? 1 / d : 0.f;
        uint16_t sh = 0;
        y[i].d = kern_f32_to_f16(d);
        memset(y[i].scales_l, 0, sizeof y[i].scales_l);
        for (int j = 0; j < 8; j++) {
            int l = clampi(nearest_sat(id * scales[j]), -32, 31);
            float dl = d * l, idl = dl ? 1 / dl : 0.f;
            for (int e = 0; e < 32; e++) L[e] = (uint8_t)iq4_best_index(idl * x[32 * j + e]);
            iq4_pack(L, y[i].qs + 16 * j);
            l += 32;
            y[i].scales_l[j / 2] |= (uint8_t)((l & 0xf) << (4 * (j % 2)));
            sh |= (uint16_t)((l >> 4) << (2 * j));
        }
        memcpy(&y[i].scales_h, &sh, 2);
    }
}

/* ============================================================== vec_dot
 *
 * The arithmetic llama.cpp's CPU backend performs at decode, as built for
 * x86 with AVX2/AVX-512 (the goldens' machine). With one token llamafile's
 * sgemm declines (n < 2), so each weight row meets the activation row in
 * ggml's vec_dot, or, for the weights it repacks (Q4_0, IQ4_NL, Q4_K with
 * AVX2, Q2_K with AVX-512; tensors whose row count is a multiple of 8), in
 * its gemv. Reproducing the float operation order makes mote's logits
 * bit-identical to llama.cpp's at decode, and every kernel table here gives
 * bit-identical results to this reference (tests/test_kernels.c checks), so
 * a model answers the same on every CPU.
 *
 * "Lane" types (Q8_0, Q4_1, Q5_0, Q5_1, Q3_K, Q5_K, Q6_K,
 * IQ4_XS; also Q8_1, Q8_K): 8 float lanes. Per block (super-block), lane k
 * gets the exact integer sum of scale * q_w * q_a over the elements e with
 * (e % 32) / 4 == k (4 consecutive bytes of each 32-byte chunk: what
 * maddubs+madd, dpbusd and sdot produce), then acc[k] = fma(d, lane, acc[k])
 * with d = d_w * d_a in f32; the result is hsum8(acc).
 * "Chain" types (Q4_0, IQ4_NL, Q2_K, Q4_K: ggml repacks them and uses its
 * gemv):
 * s = fma((float)isum, d, s) block after block, isum the block's whole
 * integer dot.
 * The terms with a min (Q4_1, Q5_1, Q2_K, Q4_K, Q5_K) are per function.
 * F32 / F16: ggml's AVX-512 vec_dot (4 x 16 lanes); BF16: its AVX512-BF16
 * one (2 x 16 lanes of vdpbf16ps). Scalar `a += b * c` in ggml is compiled
 * with FMA contraction, so those are fmaf here.
 */

/* ggml's hsum_float_8: (lo + hi), then (0 + 2) + (1 + 3). */
static inline float hsum8(const float a[8])
{
    float t0 = a[4] + a[0], t1 = a[5] + a[1], t2 = a[6] + a[2], t3 = a[7] + a[3];
    return (t0 + t2) + (t1 + t3);
}

/* lanes[k] += sum over e < n of sc[e / 16] * w[e] * a[e], (e % 32) / 4 == k. */
static inline void lanes_add(int lanes[8], const int8_t *w, const int8_t *a, int n, const int *sc16)
{
    for (int c = 0; c < n; c += 32)
        for (int k = 0; k < 8; k++) {
            int e = c + 4 * k;
            int p = w[e] * a[e] + w[e + 1] * a[e + 1] + w[e + 2] * a[e + 2] + w[e + 3] * a[e + 3];
            lanes[k] += (sc16 ? sc16[e / 16] : 1) * p;
        }
}

static inline void lanes_fma(float acc[8], float d, const int lanes[8])
{
    for (int k = 0; k < 8; k++) acc[k] = fmaf(d, (float)lanes[k], acc[k]);
}

static inline int isum32(const int8_t *w, const int8_t *a)
{
    int s = 0;
    for (int e = 0; e < 32; e++) s += w[e] * a[e];
    return s;
}

/* Quants of one 32-block as int8 values (the integer the scale multiplies). */
static void q4_0_quants(const blk_q4_0 *b, int8_t *q)
{
    for (int j = 0; j < 16; j++) { q[j] = (int8_t)((b->qs[j] & 0xf) - 8); q[j + 16] = (int8_t)((b->qs[j] >> 4) - 8); }
}
static void q4_1_quants(const blk_q4_1 *b, int8_t *q)
{
    for (int j = 0; j < 16; j++) { q[j] = (int8_t)(b->qs[j] & 0xf); q[j + 16] = (int8_t)(b->qs[j] >> 4); }
}
static void q5_quants(const uint8_t *qs, const uint8_t *qh4, int off, int8_t *q)
{
    uint32_t qh = load_u32(qh4);
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(((qs[j] & 0xf) | ((qh >> j) & 1) << 4) - off);
        q[j + 16] = (int8_t)(((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - off);
    }
}
static void iq4_quants(const uint8_t *qs, int8_t *q)
{
    for (int e = 0; e < 32; e++) q[e] = (int8_t)iq4_value(qs, e);
}

static void q4_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_0 *w = vw;
    const blk_q8_0 *a = va;
    float sum = 0;
    int8_t q[32];
    for (int i = 0; i < n / QK_32; i++) {
        q4_0_quants(&w[i], q);
        sum = fmaf((float)isum32(q, a[i].qs), f16f(w[i].d) * f16f(a[i].d), sum);
    }
    *s = sum;
}

static void iq4_nl_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_iq4_nl *w = vw;
    const blk_q8_0 *a = va;
    float sum = 0;
    int8_t q[32];
    for (int i = 0; i < n / QK_32; i++) {
        iq4_quants(w[i].qs, q);
        sum = fmaf((float)isum32(q, a[i].qs), f16f(w[i].d) * f16f(a[i].d), sum);
    }
    *s = sum;
}

static void q8_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_0 *w = vw, *a = va;
    float acc[8] = {0};
    for (int i = 0; i < n / QK_32; i++) {
        int lanes[8] = {0};
        lanes_add(lanes, w[i].qs, a[i].qs, 32, NULL);
        lanes_fma(acc, f16f(w[i].d) * f16f(a[i].d), lanes);
    }
    *s = hsum8(acc);
}

/* Not used by models (ggml has no Q8_1 weights); same arithmetic as Q8_0. */
static void q8_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_1 *w = vw, *a = va;
    float acc[8] = {0};
    for (int i = 0; i < n / QK_32; i++) {
        int lanes[8] = {0};
        lanes_add(lanes, w[i].qs, a[i].qs, 32, NULL);
        lanes_fma(acc, f16f(w[i].d) * f16f(a[i].d), lanes);
    }
    *s = hsum8(acc);
}

static void q5_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_0 *w = vw;
    const blk_q8_0 *a = va;
    float acc[8] = {0};
    int8_t q[32];
    for (int i = 0; i < n / QK_32; i++) {
        int lanes[8] = {0};
        q5_quants(w[i].qs, w[i].qh, 16, q);
        lanes_add(lanes, q, a[i].qs, 32, NULL);
        lanes_fma(acc, f16f(w[i].d) * f16f(a[i].d), lanes);
    }
    *s = hsum8(acc);
}

/* _1 types: the min contributes m_w * s_a per block, summed in a separate
 * float (fused multiply-add), added after the lanes' sum. */
static void q4_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_1 *w = vw;
    const blk_q8_1 *a = va;
    float acc[8] = {0}, summs = 0;
    int8_t q[32];
    for (int i = 0; i < n / QK_32; i++) {
        int lanes[8] = {0};
        summs = fmaf(f16f(w[i].m), f16f(a[i].s), summs);
        q4_1_quants(&w[i], q);
        lanes_add(lanes, q, a[i].qs, 32, NULL);
        lanes_fma(acc, f16f(w[i].d) * f16f(a[i].d), lanes);
    }
    *s = hsum8(acc) + summs;
}

static void q5_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_1 *w = vw;
    const blk_q8_1 *a = va;
    float acc[8] = {0}, summs = 0;
    int8_t q[32];
    for (int i = 0; i < n / QK_32; i++) {
        int lanes[8] = {0};
        summs = fmaf(f16f(w[i].m), f16f(a[i].s), summs);
        q5_quants(w[i].qs, w[i].qh, 0, q);
        lanes_add(lanes, q, a[i].qs, 32, NULL);
        lanes_fma(acc, f16f(w[i].d) * f16f(a[i].d), lanes);
    }
    *s = hsum8(acc) + summs;
}

static void q8_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_k *w = vw, *a = va;
    float acc[8] = {0};
    for (int i = 0; i < n / QK_K; i++) {
        int lanes[8] = {0};
        lanes_add(lanes, w[i].qs, a[i].qs, QK_K, NULL);
        lanes_fma(acc, w[i].d * a[i].d, lanes);
    }
    *s = hsum8(acc);
}

/* Q2_K: a chain type like Q4_K. llama.cpp's AVX-512 build repacks Q2_K
 * weights (rows in groups of 8) and its gemv keeps two chains per row: the
 * super-block's whole integer dot (sum of the 16 group scales times their
 * 16-element dots) and its integer min term (sum of the 16 group mins times
 * the activation's bsums), each fused into its own float, and returns their
 * difference. */
static void q2_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q2_k *w = vw;
    const blk_q8_k *a = va;
    float sum = 0, msum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int isum = 0, imin = 0;
        for (int g = 0; g < 16; g++) {
            int gs = 0;
            for (int e = 16 * g; e < 16 * g + 16; e++) gs += q2k_quant(&w[i], e) * a[i].qs[e];
            isum += (w[i].scales[g] & 0xf) * gs;
            imin += (w[i].scales[g] >> 4) * a[i].bsums[g];
        }
        sum = fmaf((float)isum, f16f(w[i].d) * a[i].d, sum);
        msum = fmaf((float)imin, f16f(w[i].dmin) * a[i].d, msum);
    }
    *s = sum - msum;
}

static void q3_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q3_k *w = vw;
    const blk_q8_k *a = va;
    float acc[8] = {0};
    int8_t q[QK_K];
    int sc[16];
    for (int i = 0; i < n / QK_K; i++) {
        int lanes[8] = {0};
        for (int e = 0; e < QK_K; e++) q[e] = (int8_t)q3k_quant(&w[i], e);
        for (int g = 0; g < 16; g++) sc[g] = k3_scale(g, w[i].scales) - 32;
        lanes_add(lanes, q, a[i].qs, QK_K, sc);
        lanes_fma(acc, a[i].d * f16f(w[i].d), lanes);
    }
    *s = hsum8(acc);
}

/* Q4_K: llama.cpp repacks Q4_K weights (rows in groups of 8) and its gemv
 * keeps two chains per row: the super-block's whole integer dot
 * (sum of scale * dot of each sub-block) and its integer min term
 * (sum of min * sub-block sum), each fused into its own float, and
 * returns their difference. */
static void q4_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_k *w = vw;
    const blk_q8_k *a = va;
    float sum = 0, msum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int isum = 0, imin = 0;
        for (int j = 0; j < 8; j++) {
            int sc, m, gs = 0;
            k4_scale_min(j, w[i].scales, &sc, &m);
            for (int e = 32 * j; e < 32 * j + 32; e++) gs += q4k_quant(&w[i], e) * a[i].qs[e];
            isum += sc * gs;
            imin += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        sum = fmaf((float)isum, f16f(w[i].d) * a[i].d, sum);
        msum = fmaf((float)imin, f16f(w[i].dmin) * a[i].d, msum);
    }
    *s = sum - msum;
}

/* Q5_K: the mins' integer total in one float, summs = fma(dmin, M, summs). */
static void q5_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_k *w = vw;
    const blk_q8_k *a = va;
    float acc[8] = {0}, summs = 0;
    int8_t q[QK_K];
    int sc[16];
    for (int i = 0; i < n / QK_K; i++) {
        int lanes[8] = {0}, scv[8], mv[8], msum = 0;
        for (int j = 0; j < 8; j++) {
            k4_scale_min(j, w[i].scales, &scv[j], &mv[j]);
            msum += mv[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        summs = fmaf(-a[i].d * f16f(w[i].dmin), (float)msum, summs);
        for (int e = 0; e < QK_K; e++) q[e] = (int8_t)q5k_quant(&w[i], e);
        for (int g = 0; g < 16; g++) sc[g] = scv[g / 2];
        lanes_add(lanes, q, a[i].qs, QK_K, sc);
        lanes_fma(acc, a[i].d * f16f(w[i].d), lanes);
    }
    *s = hsum8(acc) + summs;
}

static void q6_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q6_k *w = vw;
    const blk_q8_k *a = va;
    float acc[8] = {0};
    int8_t q[QK_K];
    int sc[16];
    for (int i = 0; i < n / QK_K; i++) {
        int lanes[8] = {0};
        for (int e = 0; e < QK_K; e++) q[e] = (int8_t)q6k_quant(&w[i], e);
        for (int g = 0; g < 16; g++) sc[g] = w[i].scales[g];
        lanes_add(lanes, q, a[i].qs, QK_K, sc);
        lanes_fma(acc, a[i].d * f16f(w[i].d), lanes);
    }
    *s = hsum8(acc);
}

static void iq4_xs_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_iq4_xs *w = vw;
    const blk_q8_k *a = va;
    float acc[8] = {0};
    int8_t q[QK_K];
    int sc[16];
    for (int i = 0; i < n / QK_K; i++) {
        int lanes[8] = {0};
        for (int j = 0; j < 8; j++) {
            iq4_quants(w[i].qs + 16 * j, q + 32 * j);
            sc[2 * j] = sc[2 * j + 1] = iq4xs_scale(&w[i], j);
        }
        lanes_add(lanes, q, a[i].qs, QK_K, sc);
        lanes_fma(acc, f16f(w[i].d) * a[i].d, lanes);
    }
    *s = hsum8(acc);
}

/* ggml's _mm512_reduce_add_ps (as GCC expands it) of 16 lanes. */
static inline float reduce16(const float v[16])
{
    float t[8], u[4];
    for (int i = 0; i < 8; i++) t[i] = v[i + 8] + v[i];
    for (int i = 0; i < 4; i++) u[i] = t[i + 4] + t[i];
    return (u[0] + u[2]) + (u[1] + u[3]);
}

/* 4 accumulators of 16 lanes over steps of 64 elements, folded 0+2, 1+3,
 * then 0+1, then reduce16. */
static inline float fold4x16(float acc[4][16])
{
    for (int l = 0; l < 16; l++) {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for (int l = 0; l < 16; l++) acc[0][l] += acc[1][l];
    return reduce16(acc[0]);
}

/* ggml_vec_dot_f32: float total, tail fused into it. */
static void f32_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const float *x = vw, *y = va;
    float acc[4][16] = {{0}}, sum = 0;
    int np = n & ~63;
    for (int i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++) acc[j][l] = fmaf(x[i + 16 * j + l], y[i + 16 * j + l], acc[j][l]);
    if (np) sum = fold4x16(acc);
    for (int i = np; i < n; i++) sum = fmaf(x[i], y[i], sum);
    *s = sum;
}

/* ggml_vec_dot_f16: the same lanes (a product of halves is exact in
 * float), the total and the tail in double. */
static void f16_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const kern_f16 *x = vw, *y = va;
    float acc[4][16] = {{0}};
    double sum = 0;
    int np = n & ~63;
    for (int i = 0; i < np; i += 64)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < 16; l++)
                acc[j][l] += f16f(x[i + 16 * j + l]) * f16f(y[i + 16 * j + l]);
    if (np) sum = fold4x16(acc);
    for (int i = np; i < n; i++) sum += (double)(f16f(x[i]) * f16f(y[i]));
    *s = (float)sum;
}

/* One lane of vdpbf16ps: acc += x1*y1, then acc += x0*y0; subnormal
 * inputs read as zero, subnormal results flushed to zero, round to nearest
 * even (products of bf16 values are exact in float). */
static inline float bf16_daz(kern_bf16 h) { return (h & 0x7f80) ? kern_bf16_to_f32(h) : 0.0f; }
static inline float ftz(float v) { return fabsf(v) < 0x1p-126f ? copysignf(0.0f, v) : v; }

static void bf16_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const kern_bf16 *x = vw, *y = va;
    float c[2][16] = {{0}};
    double sum = 0;
    int i = 0;
    for (; i + 64 <= n; i += 64)
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 16; l++) {
                int e = i + 32 * h + 2 * l;
                c[h][l] = ftz(c[h][l] + bf16_daz(x[e + 1]) * bf16_daz(y[e + 1]));
                c[h][l] = ftz(c[h][l] + bf16_daz(x[e]) * bf16_daz(y[e]));
            }
    sum += (double)reduce16(c[0]);
    sum += (double)reduce16(c[1]);
    for (; i < n; i++) sum += (double)(kern_bf16_to_f32(x[i]) * kern_bf16_to_f32(y[i]));
    *s = (float)sum;
}

/* ======================================================= F16 vector ops */

static void f16_mad(int n, kern_f16 *y, const kern_f16 *x, float s)
{
    const int np = n & ~63;
    for (int i = 0; i < np; i++) y[i] = kern_f32_to_f16(fmaf(f16f(x[i]), s, f16f(y[i])));
    for (int i = np; i < n; i++) {
        float p = f16f(x[i]) * s;   /* rounded: the tail is not fused */
        y[i] = kern_f32_to_f16(f16f(y[i]) + p);
    }
}

static void f32_mad(int n, float *y, const float *x, float s)
{
    for (int i = 0; i < n; i++) y[i] = fmaf(x[i], s, y[i]);
}

static void f16_scale(int n, kern_f16 *y, float s)
{
    for (int i = 0; i < n; i++) y[i] = kern_f32_to_f16(f16f(y[i]) * s);
}

static void attn_f16(int n, int nh, int dk, int dv, const kern_f16 *q16, const void *k, size_t ks, const void *v,
                     size_t vs, float scale, kern_f16 *vkq16, float *S, float *M)
{
    attn_f16_heads(n, nh, dk, dv, q16, k, ks, v, vs, scale, vkq16, S, M, f16_vec_dot, f16_mad, f16_scale);
}

/* ================================================================ SwiGLU */

static void swiglu(int n, float *y, const float *x, const float *g) { kern_swiglu_body(n, y, x, g); }

/* ================================================================ table */

const kern_table kern_table_ref = {
    .name = "ref",
    .from_float = {
        [KERN_F32] = f32_from_float, [KERN_F16] = f16_from_float, [KERN_BF16] = bf16_from_float,
        [KERN_Q4_0] = q4_0_from_float, [KERN_Q4_1] = q4_1_from_float,
        [KERN_Q5_0] = q5_0_from_float, [KERN_Q5_1] = q5_1_from_float,
        [KERN_Q8_0] = q8_0_from_float, [KERN_Q8_1] = q8_1_from_float,
        [KERN_Q8_K] = q8_k_from_float,
        [KERN_Q2_K] = q2_k_from_float, [KERN_Q3_K] = q3_k_from_float,
        [KERN_Q4_K] = q4_k_from_float, [KERN_Q5_K] = q5_k_from_float,
        [KERN_Q6_K] = q6_k_from_float,
        [KERN_IQ4_NL] = iq4_nl_from_float, [KERN_IQ4_XS] = iq4_xs_from_float,
    },
    .to_float = {
        [KERN_F32] = f32_to_float, [KERN_F16] = f16_to_float, [KERN_BF16] = bf16_to_float,
        [KERN_Q4_0] = q4_0_to_float, [KERN_Q4_1] = q4_1_to_float,
        [KERN_Q5_0] = q5_0_to_float, [KERN_Q5_1] = q5_1_to_float,
        [KERN_Q8_0] = q8_0_to_float, [KERN_Q8_1] = q8_1_to_float,
        [KERN_Q8_K] = q8_k_to_float,
        [KERN_Q2_K] = q2_k_to_float, [KERN_Q3_K] = q3_k_to_float,
        [KERN_Q4_K] = q4_k_to_float, [KERN_Q5_K] = q5_k_to_float,
        [KERN_Q6_K] = q6_k_to_float,
        [KERN_IQ4_NL] = iq4_nl_to_float, [KERN_IQ4_XS] = iq4_xs_to_float,
    },
    .vec_dot = {
        [KERN_F32] = f32_vec_dot, [KERN_F16] = f16_vec_dot, [KERN_BF16] = bf16_vec_dot,
        [KERN_Q4_0] = q4_0_vec_dot, [KERN_Q4_1] = q4_1_vec_dot,
        [KERN_Q5_0] = q5_0_vec_dot, [KERN_Q5_1] = q5_1_vec_dot,
        [KERN_Q8_0] = q8_0_vec_dot, [KERN_Q8_1] = q8_1_vec_dot,
        [KERN_Q8_K] = q8_k_vec_dot,
        [KERN_Q2_K] = q2_k_vec_dot, [KERN_Q3_K] = q3_k_vec_dot,
        [KERN_Q4_K] = q4_k_vec_dot, [KERN_Q5_K] = q5_k_vec_dot,
        [KERN_Q6_K] = q6_k_vec_dot,
        [KERN_IQ4_NL] = iq4_nl_vec_dot, [KERN_IQ4_XS] = iq4_xs_vec_dot,
    },
    .f16_mad = f16_mad,
    .f16_scale = f16_scale,
    .f32_mad = f32_mad,
    .attn_f16 = attn_f16,
    .swiglu = swiglu,
};

/* ================================================= weight quantization */

/* ggml's scalar Q8_0/Q8_1 reference (what llama-quantize runs): d = amax /
 * 127, id = 1/d, q = roundf(x * id). */
static float q8_weight_block(const float *x, int8_t *q, int *sum)
{
    float amax = 0;
    for (int j = 0; j < QK_32; j++) amax = fmaxf(amax, fabsf(x[j]));
    float d = amax / 127, id = d ? 1.0f / d : 0.0f;
    int s = 0;
    for (int j = 0; j < QK_32; j++) {
        float v = roundf(x[j] * id);
        int qv = v != v ? 0 : v < -128 ? -128 : v > 127 ? 127 : (int)v;
        q[j] = (int8_t)qv;
        s += qv;
    }
    *sum = s;
    return d;
}

int kern_quantize_row(int t, const float *x, void *vy, int64_t n)
{
    if (kern_row_size(t, n) == 0 && n != 0) return -1;
    if (t == KERN_Q8_0) {
        blk_q8_0 *y = vy;
        for (int64_t i = 0; i < n / QK_32; i++) {
            int sum;
            y[i].d = kern_f32_to_f16(q8_weight_block(x + i * QK_32, y[i].qs, &sum));
        }
        return 0;
    }
    if (t == KERN_Q8_1) {
        blk_q8_1 *y = vy;
        for (int64_t i = 0; i < n / QK_32; i++) {
            int sum;
            float d = q8_weight_block(x + i * QK_32, y[i].qs, &sum);
            y[i].d = kern_f32_to_f16(d);
            y[i].s = kern_f32_to_f16((float)sum * d);
        }
        return 0;
    }
    if (t == KERN_Q8_K || !kern_table_ref.from_float[t]) return -1;
    kern_table_ref.from_float[t](x, vy, n);
    return 0;
}

/* ============================================================ selection */

/* SIMD tables (x86_*.c, arm_*.c) hold only the entries they implement;
 * kern_select returns merged copies: ref, overlaid by each lower ISA level,
 * overlaid by the table itself. Built once, on first use. */
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
static int merged_state;  /* 0: not built, 1: being built, 2: ready */

static void overlay(kern_table *dst, const kern_table *src)
{
    for (int t = 0; t < KERN_TYPE_COUNT; t++) {
        if (src->from_float[t]) dst->from_float[t] = src->from_float[t];
        if (src->to_float[t]) dst->to_float[t] = src->to_float[t];
        if (src->vec_dot[t]) dst->vec_dot[t] = src->vec_dot[t];
        /* every table is bit-identical to ref, so any table's mul_mat fits
         * any table's vec_dot: keep the highest one that has it */
        if (src->mul_mat[t]) dst->mul_mat[t] = src->mul_mat[t];
        /* a layout and its kernel come from the same table, as a pair */
        if (src->pack[t]) {
            dst->pack[t] = src->pack[t];
            dst->mul_mat_packed[t] = src->mul_mat_packed[t];
        }
    }
    if (src->f16_mad) dst->f16_mad = src->f16_mad;
    if (src->f16_scale) dst->f16_scale = src->f16_scale;
    if (src->f32_mad) dst->f32_mad = src->f32_mad;
    if (src->attn_f16) dst->attn_f16 = src->attn_f16;
    if (src->swiglu) dst->swiglu = src->swiglu;
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
    /* build the merged tables once, whichever thread comes first (no
     * pthread_once: the foundation layer stays free of thread libraries) */
    if (__atomic_load_n(&merged_state, __ATOMIC_ACQUIRE) != 2) {
        int expected = 0;
        if (__atomic_compare_exchange_n(&merged_state, &expected, 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            merge_tables();
            __atomic_store_n(&merged_state, 2, __ATOMIC_RELEASE);
        } else {
            while (__atomic_load_n(&merged_state, __ATOMIC_ACQUIRE) != 2) {}
        }
    }
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

void kern_mul_mat(const kern_table *kt, int t, int n, int nr, int nc, float *s, size_t ldc,
                  const void *w, size_t wstride, const void *a, size_t astride)
{
    if (kt->mul_mat[t]) {
        kt->mul_mat[t](n, nr, nc, s, ldc, w, wstride, a, astride);
        return;
    }
    for (int c = 0; c < nc; c++)
        for (int r = 0; r < nr; r++)
            kt->vec_dot[t](n, s + (size_t)c * ldc + r, (const uint8_t *)w + (size_t)r * wstride,
                           (const uint8_t *)a + (size_t)c * astride);
}
