/* kernels/x86_avx2.c — the "avx2" table: AVX2 + FMA + F16C (Haswell, Zen 1
 * and later). Compiled with -mavx2 -mfma -mf16c; called only after
 * kern_select checked the CPU.
 *
 * Same contract as the reference (ref.c): from_float bit-identical (the
 * activation arithmetic of ggml's x86 build), vec_dot = exact integer dot
 * per block, scaled and accumulated in f32 lanes.
 *
 * Integer dots: _mm256_maddubs_epi16 multiplies unsigned by signed bytes and
 * adds pairs into int16. For signed x signed we use the sign trick:
 * |w| (unsigned) times a * sign(w). Pairs stay below 2 * 128 * 127 = 32512,
 * no saturation, because activation quants are in [-127, 127].
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <immintrin.h>
#include <string.h>

/* ---------------------------------------------------------------- helpers */

static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum8_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

static inline float h2f(kern_f16 h) { return _cvtsh_ss(h); }

/* 16 bytes of nibbles -> 32 bytes: lanes 0..15 the low nibbles (elements
 * 0..15 of the block), lanes 16..31 the high nibbles (elements 16..31). */
static inline __m256i nibbles32(const uint8_t *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(v), _mm_srli_epi16(v, 4), 1);
    return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

/* 32 bits -> 32 bytes, byte j = 0xff if bit j is set, else 0. */
static inline __m256i bits32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), shuf);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit);
}

/* Sum of u8 x s8 products, as 8 int32 lanes (each the sum of 4 products). */
static inline __m256i dot_us(__m256i u, __m256i s)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* Sum of s8 x s8 products (sign trick), 8 int32 lanes. */
static inline __m256i dot_ss(__m256i x, __m256i y)
{
    return dot_us(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

/* ------------------------------------------------------- F32 / F16 / BF16 */

static void f32_vec_dot(int n, float *s, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), acc0);
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

static inline __m256 load_f16x8(const kern_f16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

static void f16_vec_dot(int n, float *s, const void *w, const void *a)
{
    const kern_f16 *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), acc0);
        acc1 = _mm256_fmadd_ps(load_f16x8(x + i + 8), load_f16x8(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_f16x8(x + i + 16), load_f16x8(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_f16x8(x + i + 24), load_f16x8(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load_f16x8(x + i), load_f16x8(y + i), acc0);
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += h2f(x[i]) * h2f(y[i]);
    *s = sum;
}

static void f16_from_float(const float *x, void *vy, int64_t n)
{
    kern_f16 *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = kern_f32_to_f16(x[i]);
}

static void f16_to_float(const void *vx, float *y, int64_t n)
{
    const kern_f16 *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_f16x8(x + i));
    for (; i < n; i++) y[i] = kern_f16_to_f32(x[i]);
}

static inline __m256 load_bf16x8(const kern_bf16 *p)
{
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

static void bf16_vec_dot(int n, float *s, const void *w, const void *a)
{
    const kern_bf16 *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), acc0);
        acc1 = _mm256_fmadd_ps(load_bf16x8(x + i + 8), load_bf16x8(y + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_bf16x8(x + i + 16), load_bf16x8(y + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_bf16x8(x + i + 24), load_bf16x8(y + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load_bf16x8(x + i), load_bf16x8(y + i), acc0);
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) sum += kern_bf16_to_f32(x[i]) * kern_bf16_to_f32(y[i]);
    *s = sum;
}

/* Round to nearest even on the bit pattern; NaN -> quiet (| 0x40). */
static void bf16_from_float(const float *x, void *vy, int64_t n)
{
    kern_bf16 *y = vy;
    int64_t i = 0;
    const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    for (; i + 16 <= n; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256i u = _mm256_loadu_si256((const __m256i *)(x + i + 8 * h));
            __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
            __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
            __m256i rnd = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
            __m256i qn = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
            r[h] = _mm256_blendv_epi8(rnd, qn, nan);
        }
        /* packus works per 128-bit lane: fix the order of the 64-bit quarters */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xd8);
        _mm256_storeu_si256((__m256i *)(y + i), p);
    }
    for (; i < n; i++) y[i] = kern_f32_to_bf16(x[i]);
}

static void bf16_to_float(const void *vx, float *y, int64_t n)
{
    const kern_bf16 *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_bf16x8(x + i));
    for (; i < n; i++) y[i] = kern_bf16_to_f32(x[i]);
}

/* ------------------------------------------------------ Q8_0 / Q8_1 / Q8_K */

/* One 32-element block, ggml's x86 arithmetic (ref.c): amax, d = amax/127,
 * id = 127/amax, round-half-even(x*id). Stores the quants; returns d and
 * the int32 lanes of the quants (for the Q8_1 sum). */
static inline float q8_block(const float *x, int8_t *qs, __m256i *isum)
{
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1));
    m = _mm256_max_ps(m, _mm256_max_ps(_mm256_andnot_ps(sign, v2), _mm256_andnot_ps(sign, v3)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
    __m256 mul = _mm256_set1_ps(id);
    const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), rn));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), rn));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), rn));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), rn));
    if (isum) *isum = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    /* int32 -> int16 -> int8 (saturating), then undo the per-lane interleave */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, p);
    return d;
}

static void q8_0_from_float(const float *x, void *vy, int64_t n)
{
    blk_q8_0 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32)
        y[i].d = kern_f32_to_f16(q8_block(x, y[i].qs, NULL));
}

static void q8_1_from_float(const float *x, void *vy, int64_t n)
{
    blk_q8_1 *y = vy;
    for (int64_t i = 0; i < n / QK_32; i++, x += QK_32) {
        __m256i isum;
        float d = q8_block(x, y[i].qs, &isum);
        y[i].d = kern_f32_to_f16(d);
        y[i].s = kern_f32_to_f16(d * (float)hsum8_i32(isum));
    }
}

/* ------------------------------------------------------------- vec_dot */

static void q4_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_0 *w = vw;
    const blk_q8_0 *a = va;
    const int nb = n / QK_32;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256i q0 = _mm256_sub_epi8(nibbles32(w[i].qs), off);
        __m256i q1 = _mm256_sub_epi8(nibbles32(w[i + 1].qs), off);
        __m256 p0 = _mm256_cvtepi32_ps(dot_ss(q0, _mm256_loadu_si256((const __m256i *)a[i].qs)));
        __m256 p1 = _mm256_cvtepi32_ps(dot_ss(q1, _mm256_loadu_si256((const __m256i *)a[i + 1].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i + 1].d) * h2f(a[i + 1].d)), p1, acc1);
    }
    for (; i < nb; i++) {
        __m256i q0 = _mm256_sub_epi8(nibbles32(w[i].qs), off);
        __m256 p0 = _mm256_cvtepi32_ps(dot_ss(q0, _mm256_loadu_si256((const __m256i *)a[i].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), p0, acc0);
    }
    *s = hsum8(_mm256_add_ps(acc0, acc1));
}

static void q4_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_1 *w = vw;
    const blk_q8_1 *a = va;
    const int nb = n / QK_32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float summs = 0;
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256 p0 = _mm256_cvtepi32_ps(dot_us(nibbles32(w[i].qs), _mm256_loadu_si256((const __m256i *)a[i].qs)));
        __m256 p1 = _mm256_cvtepi32_ps(dot_us(nibbles32(w[i + 1].qs), _mm256_loadu_si256((const __m256i *)a[i + 1].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i + 1].d) * h2f(a[i + 1].d)), p1, acc1);
        summs += h2f(w[i].m) * h2f(a[i].s) + h2f(w[i + 1].m) * h2f(a[i + 1].s);
    }
    for (; i < nb; i++) {
        __m256 p0 = _mm256_cvtepi32_ps(dot_us(nibbles32(w[i].qs), _mm256_loadu_si256((const __m256i *)a[i].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), p0, acc0);
        summs += h2f(w[i].m) * h2f(a[i].s);
    }
    *s = hsum8(_mm256_add_ps(acc0, acc1)) + summs;
}

/* Q5_0 quants as signed bytes: (nib | hbit << 4) - 16 = nib, or nib | 0xf0
 * (= nib - 16 as int8) where the high bit is clear. */
static inline __m256i q5_0_quants(const blk_q5_0 *b)
{
    __m256i hi = _mm256_andnot_si256(bits32(b->qh), _mm256_set1_epi8((char)0xf0));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

static void q5_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_0 *w = vw;
    const blk_q8_0 *a = va;
    const int nb = n / QK_32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256 p0 = _mm256_cvtepi32_ps(dot_ss(q5_0_quants(&w[i]), _mm256_loadu_si256((const __m256i *)a[i].qs)));
        __m256 p1 = _mm256_cvtepi32_ps(dot_ss(q5_0_quants(&w[i + 1]), _mm256_loadu_si256((const __m256i *)a[i + 1].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i + 1].d) * h2f(a[i + 1].d)), p1, acc1);
    }
    for (; i < nb; i++) {
        __m256 p0 = _mm256_cvtepi32_ps(dot_ss(q5_0_quants(&w[i]), _mm256_loadu_si256((const __m256i *)a[i].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), p0, acc0);
    }
    *s = hsum8(_mm256_add_ps(acc0, acc1));
}

static inline __m256i q5_1_quants(const blk_q5_1 *b)
{
    __m256i hi = _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

static void q5_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_1 *w = vw;
    const blk_q8_1 *a = va;
    const int nb = n / QK_32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float summs = 0;
    int i = 0;
    for (; i + 2 <= nb; i += 2) {
        __m256 p0 = _mm256_cvtepi32_ps(dot_us(q5_1_quants(&w[i]), _mm256_loadu_si256((const __m256i *)a[i].qs)));
        __m256 p1 = _mm256_cvtepi32_ps(dot_us(q5_1_quants(&w[i + 1]), _mm256_loadu_si256((const __m256i *)a[i + 1].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i + 1].d) * h2f(a[i + 1].d)), p1, acc1);
        summs += h2f(w[i].m) * h2f(a[i].s) + h2f(w[i + 1].m) * h2f(a[i + 1].s);
    }
    for (; i < nb; i++) {
        __m256 p0 = _mm256_cvtepi32_ps(dot_us(q5_1_quants(&w[i]), _mm256_loadu_si256((const __m256i *)a[i].qs)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), p0, acc0);
        summs += h2f(w[i].m) * h2f(a[i].s);
    }
    *s = hsum8(_mm256_add_ps(acc0, acc1)) + summs;
}

/* Q8_0 x Q8_0; also Q8_1 x Q8_1 (same layout after the 4-byte header). */
static inline void q8_dot_blocks(int nb, const uint8_t *w, const uint8_t *a, size_t stride,
                                 size_t qoff, float *s)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 2 <= nb; i += 2, w += 2 * stride, a += 2 * stride) {
        kern_f16 dw0, da0, dw1, da1;
        memcpy(&dw0, w, 2); memcpy(&da0, a, 2);
        memcpy(&dw1, w + stride, 2); memcpy(&da1, a + stride, 2);
        __m256 p0 = _mm256_cvtepi32_ps(dot_ss(_mm256_loadu_si256((const __m256i *)(w + qoff)),
                                              _mm256_loadu_si256((const __m256i *)(a + qoff))));
        __m256 p1 = _mm256_cvtepi32_ps(dot_ss(_mm256_loadu_si256((const __m256i *)(w + stride + qoff)),
                                              _mm256_loadu_si256((const __m256i *)(a + stride + qoff))));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(dw0) * h2f(da0)), p0, acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(dw1) * h2f(da1)), p1, acc1);
    }
    for (; i < nb; i++, w += stride, a += stride) {
        kern_f16 dw0, da0;
        memcpy(&dw0, w, 2); memcpy(&da0, a, 2);
        __m256 p0 = _mm256_cvtepi32_ps(dot_ss(_mm256_loadu_si256((const __m256i *)(w + qoff)),
                                              _mm256_loadu_si256((const __m256i *)(a + qoff))));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(dw0) * h2f(da0)), p0, acc0);
    }
    *s = hsum8(_mm256_add_ps(acc0, acc1));
}

static void q8_0_vec_dot(int n, float *s, const void *w, const void *a)
{
    q8_dot_blocks(n / QK_32, w, a, sizeof(blk_q8_0), offsetof(blk_q8_0, qs), s);
}

static void q8_1_vec_dot(int n, float *s, const void *w, const void *a)
{
    q8_dot_blocks(n / QK_32, w, a, sizeof(blk_q8_1), offsetof(blk_q8_1, qs), s);
}

/* ---------------------------------------------------------------- table */

const kern_table kern_table_avx2 = {
    .name = "avx2",
    .from_float = {
        [KERN_F16] = f16_from_float, [KERN_BF16] = bf16_from_float,
        [KERN_Q8_0] = q8_0_from_float, [KERN_Q8_1] = q8_1_from_float,
    },
    .to_float = {
        [KERN_F16] = f16_to_float, [KERN_BF16] = bf16_to_float,
    },
    .vec_dot = {
        [KERN_F32] = f32_vec_dot, [KERN_F16] = f16_vec_dot, [KERN_BF16] = bf16_vec_dot,
        [KERN_Q4_0] = q4_0_vec_dot, [KERN_Q4_1] = q4_1_vec_dot,
        [KERN_Q5_0] = q5_0_vec_dot, [KERN_Q5_1] = q5_1_vec_dot,
        [KERN_Q8_0] = q8_0_vec_dot, [KERN_Q8_1] = q8_1_vec_dot,
    },
};
