/* kernels/arm_impl.h — the body of the aarch64 tables, included by
 * arm_neon.c (baseline ASIMD) and arm_dotprod.c (+ SDOT), which first
 * define DOT4(acc, w, a): acc + (int32x4: lane k = sum of the products of
 * bytes 4k..4k+3 of the int8x16 w and a).
 *
 * Every function is bit-identical to the reference (ref.c): the same
 * integer lanes (4 consecutive bytes, exactly what SDOT and what x86's
 * maddubs+madd produce), the same fused multiply-adds (vfmaq_f32 and fmaf
 * are fused here as on x86), the same reduction order. Lanes 0..3 of the
 * reference's 8 float lanes live in one float32x4, lanes 4..7 in another.
 */
#ifndef MOTE_KERNELS_ARM_IMPL_H
#define MOTE_KERNELS_ARM_IMPL_H

#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/attn_impl.h"

#include <arm_neon.h>
#include <math.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static inline float h2f(kern_f16 h)
{
    __fp16 f;
    memcpy(&f, &h, 2);
    return (float)f;
}

/* The reference's 8 float lanes as two quads. */
typedef struct { float32x4_t lo, hi; } f8;
typedef struct { int32x4_t lo, hi; } i8x;

static inline f8 f8_zero(void) { f8 r = {vdupq_n_f32(0), vdupq_n_f32(0)}; return r; }
static inline i8x i8x_zero(void) { i8x r = {vdupq_n_s32(0), vdupq_n_s32(0)}; return r; }

/* acc = fma(d, (float)lanes, acc), lane by lane */
static inline f8 f8_fma(f8 acc, float d, i8x l)
{
    acc.lo = vfmaq_n_f32(acc.lo, vcvtq_f32_s32(l.lo), d);
    acc.hi = vfmaq_n_f32(acc.hi, vcvtq_f32_s32(l.hi), d);
    return acc;
}

/* ggml's hsum_float_8: t = hi + lo, then (t0 + t2) + (t1 + t3). */
static inline float f8_hsum(f8 a)
{
    float32x4_t t = vaddq_f32(a.hi, a.lo);
    return (vgetq_lane_f32(t, 0) + vgetq_lane_f32(t, 2)) + (vgetq_lane_f32(t, 1) + vgetq_lane_f32(t, 3));
}

static inline int i8x_total(i8x l) { return vaddvq_s32(vaddq_s32(l.lo, l.hi)); }

/* lanes += s0 * dot(first 16 bytes), s1 * dot(last 16 bytes) of a 32-chunk */
static inline i8x chunk(i8x l, int8x16_t w0, int8x16_t w1, const int8_t *a, int s0, int s1)
{
    int32x4_t z = vdupq_n_s32(0);
    l.lo = vmlaq_n_s32(l.lo, DOT4(z, w0, vld1q_s8(a)), s0);
    l.hi = vmlaq_n_s32(l.hi, DOT4(z, w1, vld1q_s8(a + 16)), s1);
    return l;
}

static inline i8x chunk1(i8x l, int8x16_t w0, int8x16_t w1, const int8_t *a)
{
    l.lo = DOT4(l.lo, w0, vld1q_s8(a));
    l.hi = DOT4(l.hi, w1, vld1q_s8(a + 16));
    return l;
}

/* 16 bytes of nibbles: low nibbles (elements 0..15), high (16..31). */
static inline void nibbles(const uint8_t *p, int8x16_t *lo, int8x16_t *hi)
{
    uint8x16_t v = vld1q_u8(p);
    *lo = vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(0xf)));
    *hi = vreinterpretq_s8_u8(vshrq_n_u8(v, 4));
}

/* 32 bits -> two uint8x16: 0x10 where bit j set, else 0. */
static inline void bits5(const uint8_t *qh4, uint8x16_t *lo, uint8x16_t *hi)
{
    static const uint8_t bitsel[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    static const uint8_t idx_lo[16] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
    static const uint8_t idx_hi[16] = {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    uint32_t v;
    memcpy(&v, qh4, 4);
    uint8x16_t b = vreinterpretq_u8_u32(vdupq_n_u32(v)), sel = vld1q_u8(bitsel);
    uint8x16_t l = vtstq_u8(vqtbl1q_u8(b, vld1q_u8(idx_lo)), sel);
    uint8x16_t h = vtstq_u8(vqtbl1q_u8(b, vld1q_u8(idx_hi)), sel);
    *lo = vandq_u8(l, vdupq_n_u8(0x10));
    *hi = vandq_u8(h, vdupq_n_u8(0x10));
}

/* ------------------------------------------------------- F16 / BF16 rows */

static void f16_from_float(const float *x, void *vy, int64_t n)
{
    kern_f16 *y = vy;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float16x4_t h = vcvt_f16_f32(vld1q_f32(x + i));
        vst1_u16(y + i, vreinterpret_u16_f16(h));
    }
    for (; i < n; i++) y[i] = kern_f32_to_f16(x[i]);
}

static void f16_to_float(const void *vx, float *y, int64_t n)
{
    const kern_f16 *x = vx;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i))));
    for (; i < n; i++) y[i] = kern_f16_to_f32(x[i]);
}

static void bf16_from_float(const float *x, void *vy, int64_t n)
{
    kern_bf16 *y = vy;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint32x4_t u = vreinterpretq_u32_f32(vld1q_f32(x + i));
        uint32x4_t nan = vcgtq_u32(vandq_u32(u, vdupq_n_u32(0x7fffffff)), vdupq_n_u32(0x7f800000));
        uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
        uint32x4_t rnd = vshrq_n_u32(vaddq_u32(u, vaddq_u32(lsb, vdupq_n_u32(0x7fff))), 16);
        uint32x4_t qn = vorrq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(64));
        vst1_u16(y + i, vmovn_u32(vbslq_u32(nan, qn, rnd)));
    }
    for (; i < n; i++) y[i] = kern_f32_to_bf16(x[i]);
}

static void bf16_to_float(const void *vx, float *y, int64_t n)
{
    const kern_bf16 *x = vx;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(x + i), 16)));
    for (; i < n; i++) y[i] = kern_bf16_to_f32(x[i]);
}

/* ------------------------------------------------------ Q8_0 / Q8_1 rows */

/* ggml's x86 arithmetic (ref.c): amax, d = amax/127, id = 127/amax,
 * round-half-even(x * id). Returns d; *sum = sum of the quants. */
static inline float q8_block(const float *x, int8_t *qs, int *sum)
{
    float32x4_t v[8], m = vdupq_n_f32(0);
    for (int k = 0; k < 8; k++) {
        v[k] = vld1q_f32(x + 4 * k);
        m = vmaxnmq_f32(m, vabsq_f32(v[k]));   /* NaN skipped, as ref's fmaxf */
    }
    float amax = vmaxnmvq_f32(m);
    float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
    int32x4_t s = vdupq_n_s32(0);
    for (int k = 0; k < 8; k += 2) { /* vcvtn of NaN is 0, as in ref */
        int32x4_t i0 = vcvtnq_s32_f32(vmulq_n_f32(v[k], id)), i1 = vcvtnq_s32_f32(vmulq_n_f32(v[k + 1], id));
        s = vaddq_s32(s, vaddq_s32(i0, i1));
        int16x8_t p = vcombine_s16(vqmovn_s32(i0), vqmovn_s32(i1));
        vst1_s8(qs + 4 * k, vqmovn_s16(p));
    }
    *sum = vaddvq_s32(s);
    return d;
}

static void q8_0_from_float(const float *x, void *vy, int64_t n)
{
    blk_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++) {
        int sum;
        y[i].d = kern_f32_to_f16(q8_block(x + 32 * i, y[i].qs, &sum));
    }
}

static void q8_1_from_float(const float *x, void *vy, int64_t n)
{
    blk_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++) {
        int sum;
        float d = q8_block(x + 32 * i, y[i].qs, &sum);
        y[i].d = kern_f32_to_f16(d);
        y[i].s = kern_f32_to_f16(d * (float)sum);
    }
}

/* ---------------------------------------------------- 32-element vec_dot */

static void q8_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_0 *w = vw, *a = va;
    f8 acc = f8_zero();
    for (int i = 0; i < n / QK_32; i++)
        acc = f8_fma(acc, h2f(w[i].d) * h2f(a[i].d),
                     chunk1(i8x_zero(), vld1q_s8(w[i].qs), vld1q_s8(w[i].qs + 16), a[i].qs));
    *s = f8_hsum(acc);
}

static void q8_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_1 *w = vw, *a = va;
    f8 acc = f8_zero();
    for (int i = 0; i < n / QK_32; i++)
        acc = f8_fma(acc, h2f(w[i].d) * h2f(a[i].d),
                     chunk1(i8x_zero(), vld1q_s8(w[i].qs), vld1q_s8(w[i].qs + 16), a[i].qs));
    *s = f8_hsum(acc);
}

static void q5_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_0 *w = vw;
    const blk_q8_0 *a = va;
    f8 acc = f8_zero();
    for (int i = 0; i < n / QK_32; i++) {
        int8x16_t lo, hi;
        uint8x16_t hl, hh;
        nibbles(w[i].qs, &lo, &hi);
        bits5(w[i].qh, &hl, &hh);
        lo = vsubq_s8(vorrq_s8(lo, vreinterpretq_s8_u8(hl)), vdupq_n_s8(16));
        hi = vsubq_s8(vorrq_s8(hi, vreinterpretq_s8_u8(hh)), vdupq_n_s8(16));
        acc = f8_fma(acc, h2f(w[i].d) * h2f(a[i].d), chunk1(i8x_zero(), lo, hi, a[i].qs));
    }
    *s = f8_hsum(acc);
}

static void q4_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_1 *w = vw;
    const blk_q8_1 *a = va;
    f8 acc = f8_zero();
    float summs = 0;
    for (int i = 0; i < n / QK_32; i++) {
        int8x16_t lo, hi;
        summs = fmaf(h2f(w[i].m), h2f(a[i].s), summs);
        nibbles(w[i].qs, &lo, &hi);
        acc = f8_fma(acc, h2f(w[i].d) * h2f(a[i].d), chunk1(i8x_zero(), lo, hi, a[i].qs));
    }
    *s = f8_hsum(acc) + summs;
}

static void q5_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_1 *w = vw;
    const blk_q8_1 *a = va;
    f8 acc = f8_zero();
    float summs = 0;
    for (int i = 0; i < n / QK_32; i++) {
        int8x16_t lo, hi;
        uint8x16_t hl, hh;
        summs = fmaf(h2f(w[i].m), h2f(a[i].s), summs);
        nibbles(w[i].qs, &lo, &hi);
        bits5(w[i].qh, &hl, &hh);
        lo = vorrq_s8(lo, vreinterpretq_s8_u8(hl));
        hi = vorrq_s8(hi, vreinterpretq_s8_u8(hh));
        acc = f8_fma(acc, h2f(w[i].d) * h2f(a[i].d), chunk1(i8x_zero(), lo, hi, a[i].qs));
    }
    *s = f8_hsum(acc) + summs;
}

/* Chain types (ref.c): sum = fma((float)isum, d, sum), block by block. */
static void q4_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_0 *w = vw;
    const blk_q8_0 *a = va;
    float sum = 0;
    for (int i = 0; i < n / QK_32; i++) {
        int8x16_t lo, hi;
        nibbles(w[i].qs, &lo, &hi);
        lo = vsubq_s8(lo, vdupq_n_s8(8));
        hi = vsubq_s8(hi, vdupq_n_s8(8));
        int isum = i8x_total(chunk1(i8x_zero(), lo, hi, a[i].qs));
        sum = fmaf((float)isum, h2f(w[i].d) * h2f(a[i].d), sum);
    }
    *s = sum;
}

static inline void iq4_quants(const uint8_t *qs, int8x16_t *lo, int8x16_t *hi)
{
    int8x16_t tab = vld1q_s8(kern_iq4nl_values), l, h;
    nibbles(qs, &l, &h);
    *lo = vqtbl1q_s8(tab, vreinterpretq_u8_s8(l));
    *hi = vqtbl1q_s8(tab, vreinterpretq_u8_s8(h));
}

static void iq4_nl_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_iq4_nl *w = vw;
    const blk_q8_0 *a = va;
    float sum = 0;
    for (int i = 0; i < n / QK_32; i++) {
        int8x16_t lo, hi;
        iq4_quants(w[i].qs, &lo, &hi);
        int isum = i8x_total(chunk1(i8x_zero(), lo, hi, a[i].qs));
        sum = fmaf((float)isum, h2f(w[i].d) * h2f(a[i].d), sum);
    }
    *s = sum;
}

/* ------------------------------------------------------ K-quant vec_dot */

static inline void k4_scales(const uint8_t *q, int *sc, int *m)
{
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            sc[j] = q[j] & 63;
            m[j] = q[j + 4] & 63;
        } else {
            sc[j] = (q[j + 4] & 0xf) | (q[j - 4] >> 6) << 4;
            m[j] = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
        }
    }
}

/* Q2_K: two float chains (see ref.c): the integer dot and the integer min
 * term of each super-block. */
static void q2_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q2_k *w = vw;
    const blk_q8_k *a = va;
    const uint8x16_t m3 = vdupq_n_u8(3);
    float sum = 0, msum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *sc = w[i].scales;
        /* mins (high nibbles) times bsums, 16 products summed */
        uint8x16_t m8 = vshrq_n_u8(vld1q_u8(sc), 4);
        int16x8_t m_lo = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m8)));
        int16x8_t m_hi = vreinterpretq_s16_u16(vmovl_high_u8(m8));
        int32x4_t mp = vmull_s16(vget_low_s16(m_lo), vld1_s16(a[i].bsums));
        mp = vmlal_high_s16(mp, m_lo, vld1q_s16(a[i].bsums));
        mp = vmlal_s16(mp, vget_low_s16(m_hi), vld1_s16(a[i].bsums + 8));
        mp = vmlal_high_s16(mp, m_hi, vld1q_s16(a[i].bsums + 8));
        int imin = vaddvq_s32(mp);
        i8x l = i8x_zero();
        for (int h = 0; h < 2; h++) {
            uint8x16_t b0 = vld1q_u8(w[i].qs + 32 * h), b1 = vld1q_u8(w[i].qs + 32 * h + 16);
            for (int c = 0; c < 4; c++) {
                int8x16_t q0 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b0, vdupq_n_s8((int8_t)(-2 * c))), m3));
                int8x16_t q1 = vreinterpretq_s8_u8(vandq_u8(vshlq_u8(b1, vdupq_n_s8((int8_t)(-2 * c))), m3));
                int g = 8 * h + 2 * c;
                l = chunk(l, q0, q1, a[i].qs + 128 * h + 32 * c, sc[g] & 0xf, sc[g + 1] & 0xf);
            }
        }
        sum = fmaf((float)i8x_total(l), h2f(w[i].d) * a[i].d, sum);
        msum = fmaf((float)imin, h2f(w[i].dmin) * a[i].d, msum);
    }
    *s = sum - msum;
}

static void q3_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q3_k *w = vw;
    const blk_q8_k *a = va;
    const uint8x16_t m3 = vdupq_n_u8(3), one = vdupq_n_u8(1);
    f8 acc = f8_zero();
    for (int i = 0; i < n / QK_K; i++) {
        int sc[16];
        for (int j = 0; j < 16; j++) {
            int lo = j < 8 ? w[i].scales[j] & 0xf : w[i].scales[j - 8] >> 4;
            sc[j] = (lo | ((w[i].scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
        }
        uint8x16_t hm0 = vld1q_u8(w[i].hmask), hm1 = vld1q_u8(w[i].hmask + 16);
        i8x l = i8x_zero();
        for (int h = 0; h < 2; h++) {
            uint8x16_t b0 = vld1q_u8(w[i].qs + 32 * h), b1 = vld1q_u8(w[i].qs + 32 * h + 16);
            for (int c = 0; c < 4; c++) {
                int8x16_t sh = vdupq_n_s8((int8_t)(-2 * c)), shb = vdupq_n_s8((int8_t)(-(4 * h + c)));
                /* q = low 2 bits | high bit << 2, minus 4 */
                uint8x16_t u0 = vorrq_u8(vandq_u8(vshlq_u8(b0, sh), m3), vshlq_n_u8(vandq_u8(vshlq_u8(hm0, shb), one), 2));
                uint8x16_t u1 = vorrq_u8(vandq_u8(vshlq_u8(b1, sh), m3), vshlq_n_u8(vandq_u8(vshlq_u8(hm1, shb), one), 2));
                int8x16_t q0 = vsubq_s8(vreinterpretq_s8_u8(u0), vdupq_n_s8(4));
                int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(u1), vdupq_n_s8(4));
                int g = 8 * h + 2 * c;
                l = chunk(l, q0, q1, a[i].qs + 128 * h + 32 * c, sc[g], sc[g + 1]);
            }
        }
        acc = f8_fma(acc, a[i].d * h2f(w[i].d), l);
    }
    *s = f8_hsum(acc);
}

static void q4_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_k *w = vw;
    const blk_q8_k *a = va;
    float sum = 0, msum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int sc[8], m[8], imin = 0;
        k4_scales(w[i].scales, sc, m);
        for (int j = 0; j < 8; j++) imin += m[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        i8x l = i8x_zero();
        for (int g = 0; g < 4; g++) {
            uint8x16_t b0 = vld1q_u8(w[i].qs + 32 * g), b1 = vld1q_u8(w[i].qs + 32 * g + 16);
            int8x16_t lo0 = vreinterpretq_s8_u8(vandq_u8(b0, vdupq_n_u8(0xf)));
            int8x16_t lo1 = vreinterpretq_s8_u8(vandq_u8(b1, vdupq_n_u8(0xf)));
            int8x16_t hi0 = vreinterpretq_s8_u8(vshrq_n_u8(b0, 4)), hi1 = vreinterpretq_s8_u8(vshrq_n_u8(b1, 4));
            l = chunk(l, lo0, lo1, a[i].qs + 64 * g, sc[2 * g], sc[2 * g]);
            l = chunk(l, hi0, hi1, a[i].qs + 64 * g + 32, sc[2 * g + 1], sc[2 * g + 1]);
        }
        sum = fmaf((float)i8x_total(l), h2f(w[i].d) * a[i].d, sum);
        msum = fmaf((float)imin, h2f(w[i].dmin) * a[i].d, msum);
    }
    *s = sum - msum;
}

static void q5_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_k *w = vw;
    const blk_q8_k *a = va;
    const uint8x16_t one = vdupq_n_u8(1);
    f8 acc = f8_zero();
    float summs = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int sc[8], m[8], msum = 0;
        k4_scales(w[i].scales, sc, m);
        for (int j = 0; j < 8; j++) msum += m[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        summs = fmaf(-a[i].d * h2f(w[i].dmin), (float)msum, summs);
        uint8x16_t qh0 = vld1q_u8(w[i].qh), qh1 = vld1q_u8(w[i].qh + 16);
        i8x l = i8x_zero();
        for (int g = 0; g < 4; g++) {
            uint8x16_t b0 = vld1q_u8(w[i].qs + 32 * g), b1 = vld1q_u8(w[i].qs + 32 * g + 16);
            int8x16_t s0 = vdupq_n_s8((int8_t)(-2 * g)), s1 = vdupq_n_s8((int8_t)(-2 * g - 1));
            uint8x16_t h00 = vshlq_n_u8(vandq_u8(vshlq_u8(qh0, s0), one), 4);
            uint8x16_t h01 = vshlq_n_u8(vandq_u8(vshlq_u8(qh1, s0), one), 4);
            uint8x16_t h10 = vshlq_n_u8(vandq_u8(vshlq_u8(qh0, s1), one), 4);
            uint8x16_t h11 = vshlq_n_u8(vandq_u8(vshlq_u8(qh1, s1), one), 4);
            int8x16_t lo0 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b0, vdupq_n_u8(0xf)), h00));
            int8x16_t lo1 = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(b1, vdupq_n_u8(0xf)), h01));
            int8x16_t hi0 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(b0, 4), h10));
            int8x16_t hi1 = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(b1, 4), h11));
            l = chunk(l, lo0, lo1, a[i].qs + 64 * g, sc[2 * g], sc[2 * g]);
            l = chunk(l, hi0, hi1, a[i].qs + 64 * g + 32, sc[2 * g + 1], sc[2 * g + 1]);
        }
        acc = f8_fma(acc, a[i].d * h2f(w[i].d), l);
    }
    *s = f8_hsum(acc) + summs;
}

static void q6_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q6_k *w = vw;
    const blk_q8_k *a = va;
    const uint8x16_t m4 = vdupq_n_u8(0xf), m3 = vdupq_n_u8(3);
    f8 acc = f8_zero();
    for (int i = 0; i < n / QK_K; i++) {
        const int8_t *sc = w[i].scales;
        i8x l = i8x_zero();
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = w[i].ql + 64 * h, *qh = w[i].qh + 32 * h;
            uint8x16_t H0 = vld1q_u8(qh), H1 = vld1q_u8(qh + 16);
            for (int k = 0; k < 4; k++) {
                const uint8_t *src = ql + 32 * (k & 1);
                uint8x16_t L0 = vld1q_u8(src), L1 = vld1q_u8(src + 16);
                if (k >> 1) { L0 = vshrq_n_u8(L0, 4); L1 = vshrq_n_u8(L1, 4); }
                int8x16_t sh = vdupq_n_s8((int8_t)(-2 * k));
                uint8x16_t u0 = vorrq_u8(vandq_u8(L0, m4), vshlq_n_u8(vandq_u8(vshlq_u8(H0, sh), m3), 4));
                uint8x16_t u1 = vorrq_u8(vandq_u8(L1, m4), vshlq_n_u8(vandq_u8(vshlq_u8(H1, sh), m3), 4));
                int8x16_t q0 = vsubq_s8(vreinterpretq_s8_u8(u0), vdupq_n_s8(32));
                int8x16_t q1 = vsubq_s8(vreinterpretq_s8_u8(u1), vdupq_n_s8(32));
                int g = 8 * h + 2 * k;
                l = chunk(l, q0, q1, a[i].qs + 128 * h + 32 * k, sc[g], sc[g + 1]);
            }
        }
        acc = f8_fma(acc, a[i].d * h2f(w[i].d), l);
    }
    *s = f8_hsum(acc);
}

static void iq4_xs_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_iq4_xs *w = vw;
    const blk_q8_k *a = va;
    f8 acc = f8_zero();
    for (int i = 0; i < n / QK_K; i++) {
        uint16_t sh;
        memcpy(&sh, &w[i].scales_h, 2);
        i8x l = i8x_zero();
        for (int j = 0; j < 8; j++) {
            int ls = (((w[i].scales_l[j / 2] >> (4 * (j % 2))) & 0xf) | ((sh >> (2 * j)) & 3) << 4) - 32;
            int8x16_t lo, hi;
            iq4_quants(w[i].qs + 16 * j, &lo, &hi);
            l = chunk(l, lo, hi, a[i].qs + 32 * j, ls, ls);
        }
        acc = f8_fma(acc, h2f(w[i].d) * a[i].d, l);
    }
    *s = f8_hsum(acc);
}

static void q8_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_k *w = vw, *a = va;
    f8 acc = f8_zero();
    for (int i = 0; i < n / QK_K; i++) {
        i8x l = i8x_zero();
        for (int c = 0; c < 8; c++)
            l = chunk1(l, vld1q_s8(w[i].qs + 32 * c), vld1q_s8(w[i].qs + 32 * c + 16), a[i].qs + 32 * c);
        acc = f8_fma(acc, w[i].d * a[i].d, l);
    }
    *s = f8_hsum(acc);
}

/* ----------------------------------------------------- F32 / F16 / BF16 */

/* ggml's AVX-512 lanes: 4 accumulators x 16 lanes = acc[4j .. 4j+3];
 * fold 0+2, 1+3, then 0+1, then reduce16 (= hsum8 of hi 8 + lo 8). */
static inline float fold4x16(float32x4_t acc[16])
{
    float32x4_t v[4];
    for (int q = 0; q < 4; q++)
        v[q] = vaddq_f32(vaddq_f32(acc[q], acc[8 + q]), vaddq_f32(acc[4 + q], acc[12 + q]));
    f8 t = {v[0], v[1]}, u = {v[2], v[3]};
    f8 r = {vaddq_f32(u.lo, t.lo), vaddq_f32(u.hi, t.hi)};
    return f8_hsum(r);
}

static void f32_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const float *x = vw, *y = va;
    float32x4_t acc[16];
    for (int k = 0; k < 16; k++) acc[k] = vdupq_n_f32(0);
    int np = n & ~63;
    for (int i = 0; i < np; i += 64)
        for (int k = 0; k < 16; k++) acc[k] = vfmaq_f32(acc[k], vld1q_f32(x + i + 4 * k), vld1q_f32(y + i + 4 * k));
    float sum = np ? fold4x16(acc) : 0.0f;
    for (int i = np; i < n; i++) sum = fmaf(x[i], y[i], sum);
    *s = sum;
}

static inline float32x4_t ld_f16x4(const kern_f16 *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

static void f16_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const kern_f16 *x = vw, *y = va;
    float32x4_t acc[16];
    for (int k = 0; k < 16; k++) acc[k] = vdupq_n_f32(0);
    int np = n & ~63;
    for (int i = 0; i < np; i += 64)
        for (int k = 0; k < 16; k++) acc[k] = vfmaq_f32(acc[k], ld_f16x4(x + i + 4 * k), ld_f16x4(y + i + 4 * k));
    double sum = np ? (double)fold4x16(acc) : 0.0;
    for (int i = np; i < n; i++) sum += (double)(h2f(x[i]) * h2f(y[i]));
    *s = (float)sum;
}

/* vdpbf16ps emulated (see ref.c): per pair lane, acc += odd product, then
 * acc += even product; subnormal inputs read as 0, results flushed. */
static inline float32x4_t bf16_daz(uint32x4_t v)
{
    uint32x4_t z = vceqq_u32(vandq_u32(v, vdupq_n_u32(0x7f800000)), vdupq_n_u32(0));
    return vreinterpretq_f32_u32(vbicq_u32(v, z));
}

static inline float32x4_t ftz4(float32x4_t v)
{
    uint32x4_t tiny = vcltq_f32(vabsq_f32(v), vdupq_n_f32(0x1p-126f));
    uint32x4_t sign = vandq_u32(vreinterpretq_u32_f32(v), vdupq_n_u32(0x80000000));
    return vreinterpretq_f32_u32(vbslq_u32(tiny, sign, vreinterpretq_u32_f32(v)));
}

static inline float32x4_t dpbf16x4(float32x4_t acc, const kern_bf16 *x, const kern_bf16 *y)  /* 4 pairs */
{
    uint32x4_t vx = vreinterpretq_u32_u16(vld1q_u16(x)), vy = vreinterpretq_u32_u16(vld1q_u16(y));
    uint32x4_t hi = vdupq_n_u32(0xffff0000);
    float32x4_t xo = bf16_daz(vandq_u32(vx, hi)), yo = bf16_daz(vandq_u32(vy, hi));
    float32x4_t xe = bf16_daz(vshlq_n_u32(vx, 16)), ye = bf16_daz(vshlq_n_u32(vy, 16));
    acc = ftz4(vaddq_f32(acc, vmulq_f32(xo, yo)));
    return ftz4(vaddq_f32(acc, vmulq_f32(xe, ye)));
}

static void bf16_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const kern_bf16 *x = vw, *y = va;
    float32x4_t c[8];  /* accumulator h: c[4h .. 4h+3], 16 lanes */
    for (int k = 0; k < 8; k++) c[k] = vdupq_n_f32(0);
    int i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++) c[k] = dpbf16x4(c[k], x + i + 8 * k, y + i + 8 * k);
    double sum = 0;
    for (int h = 0; h < 2; h++) {
        f8 r = {vaddq_f32(c[4 * h + 2], c[4 * h]), vaddq_f32(c[4 * h + 3], c[4 * h + 1])};
        sum += (double)f8_hsum(r);
    }
    for (; i < n; i++) sum += (double)(kern_bf16_to_f32(x[i]) * kern_bf16_to_f32(y[i]));
    *s = (float)sum;
}

/* ------------------------------------------------------- F16 vector ops
 * FCVT rounds to nearest even (FPCR default) like the reference; vfmaq_f32
 * is fused like fmaf. */
static void f16_mad(int n, kern_f16 *y, const kern_f16 *x, float s)
{
    const int np = n & ~63;
    int i = 0;
    for (; i < np; i += 4) {
        float32x4_t xv = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(x + i)));
        float32x4_t yv = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(y + i)));
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vfmaq_n_f32(yv, xv, s))));
    }
    for (; i < n; i++) {
        float p = h2f(x[i]) * s;   /* the tail is not fused */
        y[i] = kern_f32_to_f16(h2f(y[i]) + p);
    }
}

static void f16_scale(int n, kern_f16 *y, float s)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t yv = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(y + i)));
        vst1_u16(y + i, vreinterpret_u16_f16(vcvt_f16_f32(vmulq_n_f32(yv, s))));
    }
    for (; i < n; i++) y[i] = kern_f32_to_f16(h2f(y[i]) * s);
}

static void f32_mad(int n, float *y, const float *x, float s)
{
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_n_f32(vld1q_f32(y + i), vld1q_f32(x + i), s));
    for (; i < n; i++) y[i] = fmaf(x[i], s, y[i]);
}

static void attn_f16(int n, int nh, int dk, int dv, const kern_f16 *q16, const void *k, size_t ks, const void *v,
                     size_t vs, float scale, kern_f16 *vkq16, float *S, float *M)
{
    attn_f16_heads(n, nh, dk, dv, q16, k, ks, v, vs, scale, vkq16, S, M, f16_vec_dot, f16_mad, f16_scale);
}

/* ------------------------------------------------------------------ table */

#define ARM_TABLE_ENTRIES                                                            \
    .from_float = {                                                                  \
        [KERN_F16] = f16_from_float, [KERN_BF16] = bf16_from_float,                  \
        [KERN_Q8_0] = q8_0_from_float, [KERN_Q8_1] = q8_1_from_float,                \
    },                                                                               \
    .to_float = {[KERN_F16] = f16_to_float, [KERN_BF16] = bf16_to_float},            \
    .vec_dot = {                                                                     \
        [KERN_F32] = f32_vec_dot, [KERN_F16] = f16_vec_dot, [KERN_BF16] = bf16_vec_dot, \
        [KERN_Q4_0] = q4_0_vec_dot, [KERN_Q4_1] = q4_1_vec_dot,                      \
        [KERN_Q5_0] = q5_0_vec_dot, [KERN_Q5_1] = q5_1_vec_dot,                      \
        [KERN_Q8_0] = q8_0_vec_dot, [KERN_Q8_1] = q8_1_vec_dot,                      \
        [KERN_Q2_K] = q2_k_vec_dot, [KERN_Q3_K] = q3_k_vec_dot,                      \
        [KERN_Q4_K] = q4_k_vec_dot, [KERN_Q5_K] = q5_k_vec_dot,                      \
        [KERN_Q6_K] = q6_k_vec_dot, [KERN_Q8_K] = q8_k_vec_dot,                      \
        [KERN_IQ4_NL] = iq4_nl_vec_dot, [KERN_IQ4_XS] = iq4_xs_vec_dot,              \
    },                                                                               \
    .f16_mad = f16_mad, .f16_scale = f16_scale, .f32_mad = f32_mad, .attn_f16 = attn_f16,

#endif
