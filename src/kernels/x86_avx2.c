/* kernels/x86_avx2.c — the "avx2" table: AVX2 + FMA + F16C (Haswell, Zen 1
 * and later). Compiled with -mavx2 -mfma -mf16c; called only after
 * kern_select checked the CPU.
 *
 * Same contract as the reference (ref.c): from_float bit-identical (the
 * activation arithmetic of ggml's x86 build), vec_dot = exact integer dot
 * per block, scaled and accumulated in f32 lanes. Q4_0 and Q4_K have
 * packed layouts (the avx512 table's bytes, read as 8-row halves; see
 * "packed rows" below): rows in lanes, no horizontal sums.
 *
 * Integer dots: _mm256_maddubs_epi16 multiplies unsigned by signed bytes and
 * adds pairs into int16. For signed x signed we use the sign trick:
 * |w| (unsigned) times a * sign(w). Pairs stay below 2 * 128 * 127 = 32512,
 * no saturation, because activation quants are in [-127, 127].
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/attn_impl.h"

#include <immintrin.h>
#include <math.h>
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

static inline __m256 load_f16x8(const kern_f16 *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

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
    /* ref.c's amax (fmaxf) skips NaN: NaN lanes count as 0 here */
#define ABS_ORD(v) _mm256_and_ps(_mm256_andnot_ps(sign, v), _mm256_cmp_ps(v, v, _CMP_ORD_Q))
    __m256 m = _mm256_max_ps(ABS_ORD(v0), ABS_ORD(v1));
    m = _mm256_max_ps(m, _mm256_max_ps(ABS_ORD(v2), ABS_ORD(v3)));
#undef ABS_ORD
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float amax = _mm_cvtss_f32(m4);
    float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
    __m256 mul = _mm256_set1_ps(id);
#define RN (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
    /* a NaN product (x NaN, or inf * 0) quantizes to 0, as in ref.c */
#define Q(v) _mm256_and_si256(_mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v, mul), RN)), \
                              _mm256_castps_si256(_mm256_cmp_ps(_mm256_mul_ps(v, mul), _mm256_mul_ps(v, mul), _CMP_ORD_Q)))
    __m256i i0 = Q(v0), i1 = Q(v1), i2 = Q(v2), i3 = Q(v3);
#undef Q
#undef RN
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

/* ------------------------------------------------------------- vec_dot
 * Bit-identical to ref.c (llama.cpp's decode arithmetic): integer lanes
 * k = bytes 4k..4k+3 of each 32-byte chunk (maddubs + madd), one fused
 * multiply-add per block into 8 float lanes, hsum8 at the end. */

static inline __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* acc = fma(d, lanes, acc) */
static inline __m256 lanes_fma(__m256 acc, float d, __m256i lanes)
{
    return _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(lanes), acc);
}

static void q8_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_0 *w = vw, *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_32; i++)
        acc = lanes_fma(acc, h2f(w[i].d) * h2f(a[i].d), dot_ss(loadu256(w[i].qs), loadu256(a[i].qs)));
    *s = hsum8(acc);
}

static void q8_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_1 *w = vw, *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_32; i++)
        acc = lanes_fma(acc, h2f(w[i].d) * h2f(a[i].d), dot_ss(loadu256(w[i].qs), loadu256(a[i].qs)));
    *s = hsum8(acc);
}

/* Q5_0 quants as signed bytes: (nib | hbit << 4) - 16 = nib, or nib | 0xf0
 * (= nib - 16 as int8) where the high bit is clear. */
static inline __m256i q5_0_quants(const blk_q5_0 *b)
{
    __m256i hi = _mm256_andnot_si256(bits32(b->qh), _mm256_set1_epi8((char)0xf0));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

static inline __m256i q5_1_quants(const blk_q5_1 *b)
{
    __m256i hi = _mm256_and_si256(bits32(b->qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(nibbles32(b->qs), hi);
}

static void q5_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_0 *w = vw;
    const blk_q8_0 *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_32; i++)
        acc = lanes_fma(acc, h2f(w[i].d) * h2f(a[i].d), dot_ss(q5_0_quants(&w[i]), loadu256(a[i].qs)));
    *s = hsum8(acc);
}

static void q4_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_1 *w = vw;
    const blk_q8_1 *a = va;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int i = 0; i < n / QK_32; i++) {
        summs = fmaf(h2f(w[i].m), h2f(a[i].s), summs);
        acc = lanes_fma(acc, h2f(w[i].d) * h2f(a[i].d), dot_us(nibbles32(w[i].qs), loadu256(a[i].qs)));
    }
    *s = hsum8(acc) + summs;
}

static void q5_1_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_1 *w = vw;
    const blk_q8_1 *a = va;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int i = 0; i < n / QK_32; i++) {
        summs = fmaf(h2f(w[i].m), h2f(a[i].s), summs);
        acc = lanes_fma(acc, h2f(w[i].d) * h2f(a[i].d), dot_us(q5_1_quants(&w[i]), loadu256(a[i].qs)));
    }
    *s = hsum8(acc) + summs;
}

/* Whole-block integer dots of 4 blocks (lanes of p0..p3 summed), as floats. */
static inline __m128 isum4(__m256i p0, __m256i p1, __m256i p2, __m256i p3)
{
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(p0, p1), _mm256_hadd_epi32(p2, p3));
    return _mm_cvtepi32_ps(_mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1)));
}

/* "Chain" types: sum = fma((float)isum, d, sum) per block, in order. The
 * integer work of 4 blocks is done together; only the chain is serial. */
static inline __m256i q4_0_lanes(const blk_q4_0 *w, const blk_q8_0 *a)
{
    return dot_ss(_mm256_sub_epi8(nibbles32(w->qs), _mm256_set1_epi8(8)), loadu256(a->qs));
}

static void q4_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_0 *w = vw;
    const blk_q8_0 *a = va;
    const int nb = n / QK_32;
    float sum = 0, f[4];
    int i = 0;
    for (; i + 4 <= nb; i += 4) {
        _mm_storeu_ps(f, isum4(q4_0_lanes(&w[i], &a[i]), q4_0_lanes(&w[i + 1], &a[i + 1]),
                               q4_0_lanes(&w[i + 2], &a[i + 2]), q4_0_lanes(&w[i + 3], &a[i + 3])));
        for (int k = 0; k < 4; k++) sum = fmaf(f[k], h2f(w[i + k].d) * h2f(a[i + k].d), sum);
    }
    for (; i < nb; i++) {
        __m256i z = _mm256_setzero_si256();
        _mm_storeu_ps(f, isum4(q4_0_lanes(&w[i], &a[i]), z, z, z));
        sum = fmaf(f[0], h2f(w[i].d) * h2f(a[i].d), sum);
    }
    *s = sum;
}

/* IQ4 nibbles -> table values (int8) by pshufb on the 16-entry table. */
static inline __m256i iq4_quants(const uint8_t *qs)
{
    const __m256i tab = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)kern_iq4nl_values));
    return _mm256_shuffle_epi8(tab, nibbles32(qs));
}

static inline __m256i iq4_nl_lanes(const blk_iq4_nl *w, const blk_q8_0 *a)
{
    return dot_ss(iq4_quants(w->qs), loadu256(a->qs));
}

static void iq4_nl_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_iq4_nl *w = vw;
    const blk_q8_0 *a = va;
    const int nb = n / QK_32;
    float sum = 0, f[4];
    int i = 0;
    for (; i + 4 <= nb; i += 4) {
        _mm_storeu_ps(f, isum4(iq4_nl_lanes(&w[i], &a[i]), iq4_nl_lanes(&w[i + 1], &a[i + 1]),
                               iq4_nl_lanes(&w[i + 2], &a[i + 2]), iq4_nl_lanes(&w[i + 3], &a[i + 3])));
        for (int k = 0; k < 4; k++) sum = fmaf(f[k], h2f(w[i + k].d) * h2f(a[i + k].d), sum);
    }
    for (; i < nb; i++) {
        __m256i z = _mm256_setzero_si256();
        _mm_storeu_ps(f, isum4(iq4_nl_lanes(&w[i], &a[i]), z, z, z));
        sum = fmaf(f[0], h2f(w[i].d) * h2f(a[i].d), sum);
    }
    *s = sum;
}

/* ---- K-quants: a 32-element chunk of unsigned quants u (bytes) against
 * activations a, minus off * a, times an int16 scale per 16 (low 128-bit
 * half = first 16 elements): 8 int32 lanes. */
static inline __m256i chunk_lanes(__m256i u, __m256i a, __m256i sc16)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), sc16);
}

static inline __m256i chunk_lanes_off(__m256i u, __m256i off, __m256i a, __m256i sc16)
{
    __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, a), _mm256_maddubs_epi16(off, a));
    return _mm256_madd_epi16(p, sc16);
}

/* int16 scale vector: s0 in the low 128-bit half, s1 in the high one. */
static inline __m256i scale_pair(int s0, int s1)
{
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_set1_epi16((short)s0)), _mm_set1_epi16((short)s1), 1);
}

/* Q2_K: two float chains (see ref.c): the integer dot and the integer min
 * term of each super-block. */
static void q2_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q2_k *w = vw;
    const blk_q8_k *a = va;
    const __m256i m3 = _mm256_set1_epi8(3);
    float sum = 0, msum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        const uint8_t *sc = w[i].scales;
        __m128i sc8 = _mm_loadu_si128((const __m128i *)sc);
        __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0xf)));
        int imin = hsum8_i32(_mm256_madd_epi16(mins, loadu256(a[i].bsums)));
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i bits = loadu256(w[i].qs + 32 * h);
            for (int c = 0; c < 4; c++) {
                __m256i u = _mm256_and_si256(_mm256_srli_epi16(bits, 2 * c), m3);
                int g = 8 * h + 2 * c;
                sumi = _mm256_add_epi32(sumi, chunk_lanes(u, loadu256(a[i].qs + 128 * h + 32 * c),
                                                          scale_pair(sc[g] & 0xf, sc[g + 1] & 0xf)));
            }
        }
        sum = fmaf((float)hsum8_i32(sumi), h2f(w[i].d) * a[i].d, sum);
        msum = fmaf((float)imin, h2f(w[i].dmin) * a[i].d, msum);
    }
    *s = sum - msum;
}

/* 16 6-bit Q3_K scales, minus 32. */
static inline void q3_k_scales(const uint8_t *q, int *sc)
{
    for (int j = 0; j < 16; j++) {
        int lo = j < 8 ? q[j] & 0xf : q[j - 8] >> 4;
        sc[j] = (lo | ((q[8 + j % 4] >> (2 * (j / 4))) & 3) << 4) - 32;
    }
}

static void q3_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q3_k *w = vw;
    const blk_q8_k *a = va;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        int sc[16];
        q3_k_scales(w[i].scales, sc);
        __m256i hm = loadu256(w[i].hmask), sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i bits = loadu256(w[i].qs + 32 * h);
            for (int c = 0; c < 4; c++) {
                /* q + 4 = low 2 bits | high bit << 2 (bit 4h + c of hmask[l]) */
                int b = 4 * h + c;
                __m256i hb = _mm256_and_si256(_mm256_srli_epi16(hm, b), _mm256_set1_epi8(1));
                __m256i u = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 2 * c), m3),
                                            _mm256_slli_epi16(hb, 2));
                int g = 8 * h + 2 * c;
                sumi = _mm256_add_epi32(sumi, chunk_lanes_off(u, four, loadu256(a[i].qs + 128 * h + 32 * c),
                                                              scale_pair(sc[g], sc[g + 1])));
            }
        }
        acc = lanes_fma(acc, a[i].d * h2f(w[i].d), sumi);
    }
    *s = hsum8(acc);
}

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

/* m[2j] * S[2j] + m[2j+1] * S[2j+1], S = sums of sub-blocks (2 bsums each). */
static inline __m128i k4_min_lanes(const int *m, const int16_t *bsums)
{
    __m128i b0 = _mm_loadu_si128((const __m128i *)bsums), b1 = _mm_loadu_si128((const __m128i *)(bsums + 8));
    __m128i S = _mm_hadd_epi16(b0, b1);
    __m128i mv = _mm_setr_epi16((short)m[0], (short)m[1], (short)m[2], (short)m[3],
                                (short)m[4], (short)m[5], (short)m[6], (short)m[7]);
    return _mm_madd_epi16(mv, S);
}

/* Q4_K: two float chains (see ref.c): the integer dot and the integer min
 * term of each super-block. */
static void q4_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_k *w = vw;
    const blk_q8_k *a = va;
    const __m256i m4 = _mm256_set1_epi8(0xf);
    float sum = 0, msum = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int sc[8], m[8];
        k4_scales(w[i].scales, sc, m);
        __m256i sumi = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            __m256i bits = loadu256(w[i].qs + 32 * g);
            __m256i lo = chunk_lanes(_mm256_and_si256(bits, m4), loadu256(a[i].qs + 64 * g),
                                     _mm256_set1_epi16((short)sc[2 * g]));
            __m256i hi = chunk_lanes(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), loadu256(a[i].qs + 64 * g + 32),
                                     _mm256_set1_epi16((short)sc[2 * g + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(lo, hi));
        }
        __m128i ml = k4_min_lanes(m, a[i].bsums);
        ml = _mm_add_epi32(ml, _mm_unpackhi_epi64(ml, ml));
        int imin = _mm_cvtsi128_si32(_mm_add_epi32(ml, _mm_shuffle_epi32(ml, 1)));
        sum = fmaf((float)hsum8_i32(sumi), h2f(w[i].d) * a[i].d, sum);
        msum = fmaf((float)imin, h2f(w[i].dmin) * a[i].d, msum);
    }
    *s = sum - msum;
}

static void q5_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q5_k *w = vw;
    const blk_q8_k *a = va;
    const __m256i m4 = _mm256_set1_epi8(0xf), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int i = 0; i < n / QK_K; i++) {
        int sc[8], m[8], msum = 0;
        k4_scales(w[i].scales, sc, m);
        for (int j = 0; j < 8; j++) msum += m[j] * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        summs = fmaf(-a[i].d * h2f(w[i].dmin), (float)msum, summs);
        __m256i hb = loadu256(w[i].qh), sumi = _mm256_setzero_si256();
        for (int g = 0; g < 4; g++) {
            __m256i bits = loadu256(w[i].qs + 32 * g);
            __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * g), one), 4);
            __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * g + 1), one), 4);
            __m256i u0 = _mm256_or_si256(_mm256_and_si256(bits, m4), h0);
            __m256i u1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits, 4), m4), h1);
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(
                chunk_lanes(u0, loadu256(a[i].qs + 64 * g), _mm256_set1_epi16((short)sc[2 * g])),
                chunk_lanes(u1, loadu256(a[i].qs + 64 * g + 32), _mm256_set1_epi16((short)sc[2 * g + 1]))));
        }
        acc = lanes_fma(acc, a[i].d * h2f(w[i].d), sumi);
    }
    *s = hsum8(acc) + summs;
}

/* Q6_K: per 32-element chunk, the 6-bit quants u (lo nibble | 2 high bits
 * << 4) against a, minus 32 * a, times the chunk's two scales (low and high
 * 16 elements): chunk_lanes_off's lanes (maddubs(u, a) - maddubs(32, a) in
 * int16, |.| <= 16128 + 8192, then madd by the scales), with maddubs(32, a)
 * (oa) made once per super-block and column for all rows. The scale pairs
 * come from the 16 scales widened once (Q6K_SC_PAT). */
static const uint8_t Q6K_SC_PAT[4][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13,
     14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15}};

static inline void q6k_oa(const blk_q8_k *a, __m256i oa[8])
{
    const __m256i off = _mm256_set1_epi8(32);
    for (int c = 0; c < 8; c++) oa[c] = _mm256_maddubs_epi16(off, loadu256(a->qs + 32 * c));
}

/* The 8 int32 lanes of one super-block of one row (ref's lane sums). */
static inline __m256i q6k_lanes(const blk_q6_k *w, const blk_q8_k *a, const __m256i oa[8])
{
    const __m256i m4 = _mm256_set1_epi8(0xf), m3 = _mm256_set1_epi8(3);
    const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
    const __m256i scl = _mm256_permute2x128_si256(sc16, sc16, 0x00), sch = _mm256_permute2x128_si256(sc16, sc16, 0x11);
    __m256i sumi = _mm256_setzero_si256();
    _Pragma("GCC unroll 2")
    for (int h = 0; h < 2; h++) {
        const __m256i l0 = loadu256(w->ql + 64 * h), l1 = loadu256(w->ql + 64 * h + 32);
        const __m256i qh = loadu256(w->qh + 32 * h);
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) {
            const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(k & 1 ? l1 : l0, 4 * (k >> 1)), m4);
            const __m256i hi = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m3), 4);
            const __m256i sc = _mm256_shuffle_epi8(h ? sch : scl, loadu256(Q6K_SC_PAT[k]));
            const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(_mm256_or_si256(lo, hi), loadu256(a->qs + 128 * h + 32 * k)),
                                               oa[4 * h + k]);
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, sc));
        }
    }
    return sumi;
}

static void q6_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q6_k *w = vw;
    const blk_q8_k *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        __m256i oa[8];
        q6k_oa(&a[i], oa);
        acc = lanes_fma(acc, a[i].d * h2f(w[i].d), q6k_lanes(&w[i], &a[i], oa));
    }
    *s = hsum8(acc);
}

/* kern_table.mul_mat[Q6_K]: several columns (prefill): 4 rows at a time
 * per column, oa made once for them; one column (decode): row by row (four
 * interleaved row streams read DRAM at a fifth of one stream's speed). */
static void q6_k_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *vw, size_t wstride,
                         const void *va, size_t astride)
{
    const int nb = n / QK_K;
    for (int c = 0; c < nc; c++) {
        const blk_q8_k *a = (const blk_q8_k *)((const uint8_t *)va + (size_t)c * astride);
        int r = 0;
        for (; nc > 1 && r + 4 <= nr; r += 4) {
            const blk_q6_k *w[4];
            __m256 acc[4];
            for (int k = 0; k < 4; k++) {
                w[k] = (const blk_q6_k *)((const uint8_t *)vw + (size_t)(r + k) * wstride);
                acc[k] = _mm256_setzero_ps();
            }
            for (int i = 0; i < nb; i++) {
                __m256i oa[8];
                q6k_oa(&a[i], oa);
                for (int k = 0; k < 4; k++)
                    acc[k] = lanes_fma(acc[k], a[i].d * h2f(w[k][i].d), q6k_lanes(&w[k][i], &a[i], oa));
            }
            for (int k = 0; k < 4; k++) s[(size_t)c * ldc + r + k] = hsum8(acc[k]);
        }
        for (; r < nr; r++)
            q6_k_vec_dot(n, s + (size_t)c * ldc + r, (const uint8_t *)vw + (size_t)r * wstride, a);
    }
}

static inline int iq4xs_scale(const blk_iq4_xs *b, int j)
{
    uint16_t h;
    memcpy(&h, &b->scales_h, 2);
    return (((b->scales_l[j / 2] >> (4 * (j % 2))) & 0xf) | ((h >> (2 * j)) & 3) << 4) - 32;
}

static void iq4_xs_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_iq4_xs *w = vw;
    const blk_q8_k *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        __m256i sumi = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            __m256i p = dot_ss(iq4_quants(w[i].qs + 16 * j), loadu256(a[i].qs + 32 * j));
            sumi = _mm256_add_epi32(sumi, _mm256_mullo_epi32(p, _mm256_set1_epi32(iq4xs_scale(&w[i], j))));
        }
        acc = lanes_fma(acc, h2f(w[i].d) * a[i].d, sumi);
    }
    *s = hsum8(acc);
}

static void q8_k_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_k *w = vw, *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 8; c++)
            sumi = _mm256_add_epi32(sumi, dot_ss(loadu256(w[i].qs + 32 * c), loadu256(a[i].qs + 32 * c)));
        acc = lanes_fma(acc, w[i].d * a[i].d, sumi);
    }
    *s = hsum8(acc);
}

/* ---- F32 / F16 / BF16: ggml's AVX-512 lanes (16 wide) as pairs of ymm. */

/* 4 accumulators x 16 lanes: acc[2j] lanes 0..7, acc[2j+1] lanes 8..15;
 * fold 0+2, 1+3, then 0+1, then reduce16 = hsum8(hi + lo). */
static inline float fold4x16(__m256 acc[8])
{
    __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
    __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
    return hsum8(_mm256_add_ps(hi, lo));
}

static void f32_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const float *x = vw, *y = va;
    __m256 acc[8];
    for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
    int np = n & ~63;
    for (int i = 0; i < np; i += 64)
        for (int k = 0; k < 8; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    float sum = np ? fold4x16(acc) : 0.0f;
    for (int i = np; i < n; i++) sum = fmaf(x[i], y[i], sum);
    *s = sum;
}

static void f16_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const kern_f16 *x = vw, *y = va;
    __m256 acc[8];
    for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
    int np = n & ~63;
    for (int i = 0; i < np; i += 64)
        for (int k = 0; k < 8; k++)
            acc[k] = _mm256_fmadd_ps(load_f16x8(x + i + 8 * k), load_f16x8(y + i + 8 * k), acc[k]);
    double sum = np ? (double)fold4x16(acc) : 0.0;
    for (int i = np; i < n; i++) sum += (double)(h2f(x[i]) * h2f(y[i]));
    *s = (float)sum;
}

/* vdpbf16ps emulated: per 32-bit lane (a pair of bf16), acc += odd product,
 * then acc += even product; subnormal inputs read as 0, subnormal results
 * flushed to (signed) 0. */
static inline __m256 bf16_daz(__m256i v)  /* v: floats whose low 16 bits are 0 */
{
    __m256i exp = _mm256_and_si256(v, _mm256_set1_epi32(0x7f800000));
    return _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_cmpeq_epi32(exp, _mm256_setzero_si256()), v));
}

static inline __m256 ftz(__m256 v)
{
    __m256 tiny = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), v), _mm256_set1_ps(0x1p-126f), _CMP_LT_OQ);
    return _mm256_blendv_ps(v, _mm256_and_ps(v, _mm256_set1_ps(-0.0f)), tiny);
}

static inline __m256 dpbf16(__m256 acc, const kern_bf16 *x, const kern_bf16 *y)  /* 8 pairs */
{
    __m256i vx = loadu256(x), vy = loadu256(y), hi = _mm256_set1_epi32((int)0xffff0000);
    __m256 xo = bf16_daz(_mm256_and_si256(vx, hi)), yo = bf16_daz(_mm256_and_si256(vy, hi));
    __m256 xe = bf16_daz(_mm256_slli_epi32(vx, 16)), ye = bf16_daz(_mm256_slli_epi32(vy, 16));
    acc = ftz(_mm256_add_ps(acc, _mm256_mul_ps(xo, yo)));
    return ftz(_mm256_add_ps(acc, _mm256_mul_ps(xe, ye)));
}

static void bf16_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const kern_bf16 *x = vw, *y = va;
    __m256 c[4];  /* c[2h] lanes 0..7, c[2h+1] lanes 8..15 of accumulator h */
    for (int k = 0; k < 4; k++) c[k] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 4; k++) c[k] = dpbf16(c[k], x + i + 16 * k, y + i + 16 * k);
    double sum = (double)hsum8(_mm256_add_ps(c[1], c[0]));
    sum += (double)hsum8(_mm256_add_ps(c[3], c[2]));
    for (; i < n; i++) sum += (double)(kern_bf16_to_f32(x[i]) * kern_bf16_to_f32(y[i]));
    *s = (float)sum;
}

/* ------------------------------------------------------------- mul_mat
 * Tiles of 4 weight rows: the rows' unpacked quants and scales are reused
 * for every activation column, and the 4 rows' independent float chains
 * run side by side in vector lanes (a vector FMA is 4 exact scalar FMAs),
 * so each output keeps vec_dot's exact operation order. Leftover rows use
 * vec_dot. */


/* One block of 4 rows (quants u0..u3 unsigned nibbles) against one
 * activation block: returns the 4 whole-block integer dots as floats. */
static inline __m128 q4_0_isum4(__m256i u0, __m256i u1, __m256i u2, __m256i u3, __m256i av)
{
    const __m256i ones = _mm256_set1_epi16(1);
    /* (nib - 8) . a = nib . a - 8 * sum(a), lane by lane */
    __m256i off = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), av), ones);
    __m256i l0 = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u0, av), ones), off);
    __m256i l1 = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u1, av), ones), off);
    __m256i l2 = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u2, av), ones), off);
    __m256i l3 = _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(u3, av), ones), off);
    return isum4(l0, l1, l2, l3);
}

static inline __m128 h2f4(const kern_f16 *d0, const kern_f16 *d1, const kern_f16 *d2, const kern_f16 *d3)
{
    __m128i h = _mm_cvtsi32_si128(*d0);
    h = _mm_insert_epi16(h, *d1, 1);
    h = _mm_insert_epi16(h, *d2, 2);
    h = _mm_insert_epi16(h, *d3, 3);
    return _mm_cvtph_ps(h);
}

static void q4_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc,
                         const void *vw, size_t wstride, const void *va, size_t astride)
{
    const int nb = n / QK_32;
    int r = 0;
    for (; r + 4 <= nr; r += 4) {
        const blk_q4_0 *w0 = (const blk_q4_0 *)((const uint8_t *)vw + (size_t)r * wstride);
        const blk_q4_0 *w1 = (const blk_q4_0 *)((const uint8_t *)w0 + wstride);
        const blk_q4_0 *w2 = (const blk_q4_0 *)((const uint8_t *)w1 + wstride);
        const blk_q4_0 *w3 = (const blk_q4_0 *)((const uint8_t *)w2 + wstride);
        int c = 0;
        for (; c + 2 <= nc; c += 2) {  /* two columns share the unpacked rows */
            const blk_q8_0 *a0 = (const blk_q8_0 *)((const uint8_t *)va + (size_t)c * astride);
            const blk_q8_0 *a1 = (const blk_q8_0 *)((const uint8_t *)a0 + astride);
            __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps();
            for (int b = 0; b < nb; b++) {
                __m256i u0 = nibbles32(w0[b].qs), u1 = nibbles32(w1[b].qs);
                __m256i u2 = nibbles32(w2[b].qs), u3 = nibbles32(w3[b].qs);
                __m128 dw = h2f4(&w0[b].d, &w1[b].d, &w2[b].d, &w3[b].d);
                __m128 i0 = q4_0_isum4(u0, u1, u2, u3, loadu256(a0[b].qs));
                __m128 i1 = q4_0_isum4(u0, u1, u2, u3, loadu256(a1[b].qs));
                acc0 = _mm_fmadd_ps(i0, _mm_mul_ps(dw, _mm_set1_ps(h2f(a0[b].d))), acc0);
                acc1 = _mm_fmadd_ps(i1, _mm_mul_ps(dw, _mm_set1_ps(h2f(a1[b].d))), acc1);
            }
            _mm_storeu_ps(s + (size_t)c * ldc + r, acc0);
            _mm_storeu_ps(s + (size_t)(c + 1) * ldc + r, acc1);
        }
        for (; c < nc; c++) {
            const blk_q8_0 *a0 = (const blk_q8_0 *)((const uint8_t *)va + (size_t)c * astride);
            __m128 acc0 = _mm_setzero_ps();
            for (int b = 0; b < nb; b++) {
                __m128 dw = h2f4(&w0[b].d, &w1[b].d, &w2[b].d, &w3[b].d);
                __m128 i0 = q4_0_isum4(nibbles32(w0[b].qs), nibbles32(w1[b].qs), nibbles32(w2[b].qs),
                                       nibbles32(w3[b].qs), loadu256(a0[b].qs));
                acc0 = _mm_fmadd_ps(i0, _mm_mul_ps(dw, _mm_set1_ps(h2f(a0[b].d))), acc0);
            }
            _mm_storeu_ps(s + (size_t)c * ldc + r, acc0);
        }
    }
    for (; r < nr; r++)
        for (int c = 0; c < nc; c++)
            q4_0_vec_dot(n, s + (size_t)c * ldc + r, (const uint8_t *)vw + (size_t)r * wstride,
                         (const uint8_t *)va + (size_t)c * astride);
}

/* NR rows x NC columns of Q8_0 (NR * NC accumulators, the rows' quants and
 * their absolute values: at most 14 of the 16 registers with NR 2, NC 3),
 * ref's lanes per pair: the sign trick, then lanes_fma with dw * da. */
static inline __attribute__((always_inline)) void q8_0_tile(int nb, int NR, int NC, const uint8_t *w0, size_t wstride,
                                                            const uint8_t *a0, size_t astride, float *s, size_t ldc)
{
    __m256 acc[2][3];
    for (int k = 0; k < NR; k++)
        for (int c = 0; c < NC; c++) acc[k][c] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m256i q[2], ax[2];
        float dw[2];
        for (int k = 0; k < NR; k++) {
            const blk_q8_0 *wb = (const blk_q8_0 *)(w0 + (size_t)k * wstride) + b;
            q[k] = loadu256(wb->qs);
            ax[k] = _mm256_sign_epi8(q[k], q[k]);
            dw[k] = h2f(wb->d);
        }
        for (int c = 0; c < NC; c++) {
            const blk_q8_0 *ab = (const blk_q8_0 *)(a0 + (size_t)c * astride) + b;
            const __m256i av = loadu256(ab->qs);
            const float da = h2f(ab->d);
            for (int k = 0; k < NR; k++)
                acc[k][c] = lanes_fma(acc[k][c], dw[k] * da, dot_us(ax[k], _mm256_sign_epi8(av, q[k])));
        }
    }
    for (int k = 0; k < NR; k++)
        for (int c = 0; c < NC; c++) s[(size_t)c * ldc + k] = hsum8(acc[k][c]);
}

static void q8_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc,
                         const void *vw, size_t wstride, const void *va, size_t astride)
{
    const int nb = n / QK_32;
    const uint8_t *w = vw, *a = va;
    int r = 0;
    if (nc > 1)  /* one column: row-by-row vec_dot streams faster */
        for (; r + 2 <= nr; r += 2) {
            const uint8_t *w0 = w + (size_t)r * wstride;
            int c = 0;
            for (; c + 3 <= nc; c += 3) q8_0_tile(nb, 2, 3, w0, wstride, a + (size_t)c * astride, astride, s + (size_t)c * ldc + r, ldc);
            if (nc - c == 2) q8_0_tile(nb, 2, 2, w0, wstride, a + (size_t)c * astride, astride, s + (size_t)c * ldc + r, ldc);
            if (nc - c == 1) q8_0_tile(nb, 2, 1, w0, wstride, a + (size_t)c * astride, astride, s + (size_t)c * ldc + r, ldc);
        }
    for (; r < nr; r++)
        for (int c = 0; c < nc; c++)
            q8_0_vec_dot(n, s + (size_t)c * ldc + r, w + (size_t)r * wstride, a + (size_t)c * astride);
}

/* ------------------------------------------------------- F16 vector ops */

static void f16_mad(int n, kern_f16 *y, const kern_f16 *x, float s)
{
    const int np = n & ~63;
    const __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i < np; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_fmadd_ps(load_f16x8(x + i), vs, load_f16x8(y + i)),
                                         _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        float p = h2f(x[i]) * s;   /* the tail is not fused */
        y[i] = kern_f32_to_f16(h2f(y[i]) + p);
    }
}

static void f32_mad(int n, float *y, const float *x, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = fmaf(x[i], s, y[i]);
}

static void f16_scale(int n, kern_f16 *y, float s)
{
    const __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i),
                         _mm256_cvtps_ph(_mm256_mul_ps(load_f16x8(y + i), vs), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = kern_f32_to_f16(h2f(y[i]) * s);
}

static void attn_f16(int n, int nh, int dk, int dv, const kern_f16 *q16, const void *k, size_t ks, const void *v,
                     size_t vs, float scale, kern_f16 *vkq16, float *S, float *M)
{
    attn_f16_heads(n, nh, dk, dv, q16, k, ks, v, vs, scale, vkq16, S, M, f16_vec_dot, f16_mad, f16_scale);
}

/* ref's SwiGLU compiled with FMA (fmaf is one instruction here) */
static void swiglu(int n, float *y, const float *x, const float *g) { kern_swiglu_body(n, y, x, g); }

/* ---- Q4_K, packed rows ----
 *
 * The avx512 table's Q4_K layout (x86_avx512_kq.c): per group of 16 rows
 * and super-block, 2304 bytes = 36 vectors of 64 bytes, vector k holding
 * dword k of each row's block in lane r = row r (vectors 0-3: d | dmin
 * << 16 and the 12 scale bytes; 4-35: the 128 quant bytes). Read here as
 * two halves of 8 rows: bytes 32h .. 32h + 31 of each vector are rows 8h ..
 * 8h + 7. Each quant vector half meets the broadcast activation dword of
 * its 4 quants through maddubs (low nibbles: sub-block 2g, high: 2g + 1);
 * the 8 dwords of a sub-block add up in int16 (at most 8 * 2 * 15 * 128 =
 * 30720) before one madd, S_j times sc_j (vpmulld), then ref's two chains
 * per row lane. Same integers and the same float operations as ref. */
enum { Q4K_PK = 16 * sizeof(blk_q4_k) };

/* The avx512 tables' rows-in-lanes packing, by byte moves: per group of
 * 16 rows and block of bsize bytes, each row's first `head` bytes in row
 * order, then 64-byte vectors k = 0, 1, ... holding dword k of each row's
 * remaining bytes in lane r = row r (each vector written whole, in order). */
static void pack_rows16(int nb, int nr, const void *w, size_t wstride, size_t bsize, size_t head, void *out)
{
    const size_t nvec = (bsize - head) / 4;
    uint8_t *o = out;
    for (int g = 0; g < nr / 16; g++)
        for (int i = 0; i < nb; i++) {
            const uint8_t *b[16];
            for (int r = 0; r < 16; r++) {
                b[r] = (const uint8_t *)w + (size_t)(16 * g + r) * wstride + (size_t)i * bsize;
                memcpy(o + head * r, b[r], head);
            }
            o += 16 * head;
            for (size_t k = 0; k < nvec; k++, o += 64)
                for (int r = 0; r < 16; r++) memcpy(o + 4 * r, b[r] + head + 4 * k, 4);
        }
}

static void q4_k_pack(int n, int nr, const void *w, size_t wstride, void *out)
{
    pack_rows16(n / QK_K, nr, w, wstride, sizeof(blk_q4_k), 0, out);
}

static inline __m256i bcast32(const void *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* pshufb patterns: byte b of each dword as a dword (sc), as two words (m, m) */
static const uint8_t Q4K_SC_PAT[4][32] = {
    {0x00, 0x80, 0x80, 0x80, 0x04, 0x80, 0x80, 0x80, 0x08, 0x80, 0x80, 0x80, 0x0c, 0x80, 0x80, 0x80,
     0x00, 0x80, 0x80, 0x80, 0x04, 0x80, 0x80, 0x80, 0x08, 0x80, 0x80, 0x80, 0x0c, 0x80, 0x80, 0x80},
    {0x01, 0x80, 0x80, 0x80, 0x05, 0x80, 0x80, 0x80, 0x09, 0x80, 0x80, 0x80, 0x0d, 0x80, 0x80, 0x80,
     0x01, 0x80, 0x80, 0x80, 0x05, 0x80, 0x80, 0x80, 0x09, 0x80, 0x80, 0x80, 0x0d, 0x80, 0x80, 0x80},
    {0x02, 0x80, 0x80, 0x80, 0x06, 0x80, 0x80, 0x80, 0x0a, 0x80, 0x80, 0x80, 0x0e, 0x80, 0x80, 0x80,
     0x02, 0x80, 0x80, 0x80, 0x06, 0x80, 0x80, 0x80, 0x0a, 0x80, 0x80, 0x80, 0x0e, 0x80, 0x80, 0x80},
    {0x03, 0x80, 0x80, 0x80, 0x07, 0x80, 0x80, 0x80, 0x0b, 0x80, 0x80, 0x80, 0x0f, 0x80, 0x80, 0x80,
     0x03, 0x80, 0x80, 0x80, 0x07, 0x80, 0x80, 0x80, 0x0b, 0x80, 0x80, 0x80, 0x0f, 0x80, 0x80, 0x80}};
static const uint8_t Q4K_MM_PAT[4][32] = {
    {0x00, 0x80, 0x00, 0x80, 0x04, 0x80, 0x04, 0x80, 0x08, 0x80, 0x08, 0x80, 0x0c, 0x80, 0x0c, 0x80,
     0x00, 0x80, 0x00, 0x80, 0x04, 0x80, 0x04, 0x80, 0x08, 0x80, 0x08, 0x80, 0x0c, 0x80, 0x0c, 0x80},
    {0x01, 0x80, 0x01, 0x80, 0x05, 0x80, 0x05, 0x80, 0x09, 0x80, 0x09, 0x80, 0x0d, 0x80, 0x0d, 0x80,
     0x01, 0x80, 0x01, 0x80, 0x05, 0x80, 0x05, 0x80, 0x09, 0x80, 0x09, 0x80, 0x0d, 0x80, 0x0d, 0x80},
    {0x02, 0x80, 0x02, 0x80, 0x06, 0x80, 0x06, 0x80, 0x0a, 0x80, 0x0a, 0x80, 0x0e, 0x80, 0x0e, 0x80,
     0x02, 0x80, 0x02, 0x80, 0x06, 0x80, 0x06, 0x80, 0x0a, 0x80, 0x0a, 0x80, 0x0e, 0x80, 0x0e, 0x80},
    {0x03, 0x80, 0x03, 0x80, 0x07, 0x80, 0x07, 0x80, 0x0b, 0x80, 0x0b, 0x80, 0x0f, 0x80, 0x0f, 0x80,
     0x03, 0x80, 0x03, 0x80, 0x07, 0x80, 0x07, 0x80, 0x0b, 0x80, 0x0b, 0x80, 0x0f, 0x80, 0x0f, 0x80}};

/* 8 rows' header dwords (z[0]: d | dmin << 16; z[1..3]: scale bytes) ->
 * d, dmin as floats, sc_j as dwords, (m_j, m_j) as word pairs (ref.c's
 * k4_scale_min on rows in lanes). */
static inline void q4k_hdr8(const uint8_t *h, __m256 *dw, __m256 *dmw, __m256i sc[8], __m256i mm[8])
{
    const __m256i z0 = loadu256(h), z1 = loadu256(h + 64), z2 = loadu256(h + 128), z3 = loadu256(h + 192);
    const __m256i lo16 = _mm256_set1_epi32(0xffff);
    const __m256i dl = _mm256_and_si256(z0, lo16), dh = _mm256_srli_epi32(z0, 16);
    *dw = _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(dl), _mm256_extracti128_si256(dl, 1)));
    *dmw = _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(dh), _mm256_extracti128_si256(dh, 1)));
    const __m256i m3f = _mm256_set1_epi8(0x3f), m0f = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    __m256i t[4];
    t[0] = _mm256_and_si256(z1, m3f);
    t[1] = _mm256_or_si256(_mm256_and_si256(z3, m0f), _mm256_and_si256(_mm256_srli_epi32(z1, 2), m30));
    t[2] = _mm256_and_si256(z2, m3f);
    t[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(z3, 4), m0f), _mm256_and_si256(_mm256_srli_epi32(z2, 2), m30));
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++) {
        sc[j] = _mm256_shuffle_epi8(t[j / 4], loadu256(Q4K_SC_PAT[j % 4]));
        mm[j] = _mm256_shuffle_epi8(t[2 + j / 4], loadu256(Q4K_MM_PAT[j % 4]));
    }
}

/* H halves (rows 8h ..) of one group against NC columns (H * NC <= 2:
 * the accumulators stay in the 16 registers); s[c * ldc + 8h + lane]. */
static inline __attribute__((always_inline)) void q4k_packed_tile(int nb, int H, int NC, const uint8_t *src,
                                                                  const blk_q8_k *const ac[], float *s, size_t ldc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 sum[2][2], msum[2][2];
    for (int h = 0; h < H; h++)
        for (int c = 0; c < NC; c++) sum[h][c] = msum[h][c] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, src += Q4K_PK) {
        __m256 dw[2], dmw[2];
        __m256i sc[2][8], mm[2][8], isum[2][2];
        for (int h = 0; h < H; h++) {
            q4k_hdr8(src + 32 * h, &dw[h], &dmw[h], sc[h], mm[h]);
            for (int c = 0; c < NC; c++) isum[h][c] = _mm256_setzero_si256();
        }
        _Pragma("GCC unroll 4")
        for (int g = 0; g < 4; g++) {
            __m256i el[2][2], eh[2][2];
            for (int h = 0; h < H; h++)
                for (int c = 0; c < NC; c++) el[h][c] = eh[h][c] = _mm256_setzero_si256();
            _Pragma("GCC unroll 8")
            for (int k = 0; k < 8; k++)
                for (int h = 0; h < H; h++) {
                    const __m256i t = loadu256(src + 256 + 64 * (8 * g + k) + 32 * h);
                    const __m256i lo = _mm256_and_si256(t, m4), hi = _mm256_and_si256(_mm256_srli_epi16(t, 4), m4);
                    for (int c = 0; c < NC; c++) {
                        const int8_t *q = ac[c][i].qs + 64 * g + 4 * k;
                        const __m256i pl = _mm256_maddubs_epi16(lo, bcast32(q)), ph = _mm256_maddubs_epi16(hi, bcast32(q + 32));
                        el[h][c] = _mm256_add_epi16(el[h][c], pl);
                        eh[h][c] = _mm256_add_epi16(eh[h][c], ph);
                    }
                }
            for (int h = 0; h < H; h++)
                for (int c = 0; c < NC; c++) {
                    const __m256i v = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_madd_epi16(el[h][c], ones), sc[h][2 * g]),
                                                       _mm256_mullo_epi32(_mm256_madd_epi16(eh[h][c], ones), sc[h][2 * g + 1]));
                    isum[h][c] = _mm256_add_epi32(isum[h][c], v);
                }
        }
        for (int c = 0; c < NC; c++) {
            const __m256 da = _mm256_set1_ps(ac[c][i].d);
            for (int h = 0; h < H; h++) {
                __m256i imin = _mm256_madd_epi16(mm[h][0], bcast32(ac[c][i].bsums));
                _Pragma("GCC unroll 7")
                for (int j = 1; j < 8; j++) imin = _mm256_add_epi32(imin, _mm256_madd_epi16(mm[h][j], bcast32(ac[c][i].bsums + 2 * j)));
                sum[h][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[h][c]), _mm256_mul_ps(dw[h], da), sum[h][c]);
                msum[h][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(imin), _mm256_mul_ps(dmw[h], da), msum[h][c]);
            }
        }
    }
    for (int h = 0; h < H; h++)
        for (int c = 0; c < NC; c++) _mm256_storeu_ps(s + (size_t)c * ldc + 8 * h, _mm256_sub_ps(sum[h][c], msum[h][c]));
}

/* kern_table.mul_mat_packed[Q4_K]: one column: both halves of a group per
 * pass (the group's lines read once); several: halves one at a time, two
 * columns per pass. */
static void q4_k_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                                const void *a, size_t astride)
{
    const int nb = n / QK_K;
    const uint8_t *ab = a;
    for (int r0 = 0; r0 + 16 <= nr; r0 += 16) {
        const uint8_t *src = (const uint8_t *)w + (size_t)r0 * wstride;
        if (nc == 1) {
            const blk_q8_k *ac[1] = {(const blk_q8_k *)ab};
            q4k_packed_tile(nb, 2, 1, src, ac, s + r0, ldc);
            continue;
        }
        for (int h = 0; h < 2; h++) {
            int c = 0;
            for (; c + 2 <= nc; c += 2) {
                const blk_q8_k *ac[2] = {(const blk_q8_k *)(ab + (size_t)c * astride),
                                         (const blk_q8_k *)(ab + (size_t)(c + 1) * astride)};
                q4k_packed_tile(nb, 1, 2, src + 32 * h, ac, s + (size_t)c * ldc + r0 + 8 * h, ldc);
            }
            if (c < nc) {
                const blk_q8_k *ac[1] = {(const blk_q8_k *)(ab + (size_t)c * astride)};
                q4k_packed_tile(nb, 1, 1, src + 32 * h, ac, s + (size_t)c * ldc + r0 + 8 * h, ldc);
            }
        }
    }
}

/* ---- Q4_0, packed rows ----
 *
 * The avx512 table's Q4_0 layout (x86_avx512_q4.c): per group of 16 rows
 * and block, 288 bytes: the 16 rows' d (32 bytes, row order), then 4
 * vectors of 64 bytes, vector j holding qs dword j of each row in lane r =
 * row r. Read as two halves of 8 rows (d at 16h, vector half at 32h). Per
 * half: low nibbles (quants 4j..) and high (16 + 4j..) meet the broadcast
 * activation dwords through maddubs, 8 of them summed in int16 (at most
 * 8 * 2 * 15 * 128 = 30720), one madd, minus 8 * sum(a) (the nibbles'
 * offset), then ref's chain per row lane. */
enum { Q40_PK = 16 * sizeof(blk_q4_0) };

static void q4_0_pack(int n, int nr, const void *w, size_t wstride, void *out)
{
    pack_rows16(n / QK_32, nr, w, wstride, sizeof(blk_q4_0), sizeof(kern_f16), out);
}

/* 8 * (sum of the block's 32 activation quants) in every lane */
static inline __m256i q4_0_off8(const int8_t *qs)
{
    const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), loadu256(qs)), _mm256_set1_epi16(1));
    __m256i t = _mm256_add_epi32(p, _mm256_permute2x128_si256(p, p, 1));
    t = _mm256_add_epi32(t, _mm256_shuffle_epi32(t, 0x4e));
    return _mm256_add_epi32(t, _mm256_shuffle_epi32(t, 0xb1));
}

/* Halves h0 .. h0 + H - 1 of one group against NC columns (H * NC <= 2),
 * as q4k_packed_tile; s[c * ldc + 8h + lane], h counted from h0. */
static inline __attribute__((always_inline)) void q40_packed_tile(int nb, int h0, int H, int NC, const uint8_t *src,
                                                                  const blk_q8_0 *const ac[], float *s, size_t ldc)
{
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    __m256 sum[2][2];
    for (int h = 0; h < H; h++)
        for (int c = 0; c < NC; c++) sum[h][c] = _mm256_setzero_ps();
    for (int i = 0; i < nb; i++, src += Q40_PK) {
        __m256i e[2][2];
        for (int h = 0; h < H; h++)
            for (int c = 0; c < NC; c++) e[h][c] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++)
            for (int h = 0; h < H; h++) {
                const __m256i t = loadu256(src + 32 + 64 * j + 32 * (h0 + h));
                const __m256i lo = _mm256_and_si256(t, m4), hi = _mm256_and_si256(_mm256_srli_epi16(t, 4), m4);
                for (int c = 0; c < NC; c++) {
                    const int8_t *q = ac[c][i].qs + 4 * j;
                    e[h][c] = _mm256_add_epi16(e[h][c], _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast32(q)),
                                                                         _mm256_maddubs_epi16(hi, bcast32(q + 16))));
                }
            }
        for (int c = 0; c < NC; c++) {
            const __m256i off = q4_0_off8(ac[c][i].qs);
            const __m256 da = _mm256_set1_ps(h2f(ac[c][i].d));
            for (int h = 0; h < H; h++) {
                const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 16 * (h0 + h))));
                const __m256i isum = _mm256_sub_epi32(_mm256_madd_epi16(e[h][c], ones), off);
                sum[h][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_mul_ps(dw, da), sum[h][c]);
            }
        }
    }
    for (int h = 0; h < H; h++)
        for (int c = 0; c < NC; c++) _mm256_storeu_ps(s + (size_t)c * ldc + 8 * h, sum[h][c]);
}

static void q4_0_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                                const void *a, size_t astride)
{
    const int nb = n / QK_32;
    const uint8_t *ab = a;
    for (int r0 = 0; r0 + 16 <= nr; r0 += 16) {
        const uint8_t *src = (const uint8_t *)w + (size_t)r0 * wstride;
        if (nc == 1) {
            const blk_q8_0 *ac[1] = {(const blk_q8_0 *)ab};
            q40_packed_tile(nb, 0, 2, 1, src, ac, s + r0, ldc);
            continue;
        }
        for (int h = 0; h < 2; h++) {
            int c = 0;
            for (; c + 2 <= nc; c += 2) {
                const blk_q8_0 *ac[2] = {(const blk_q8_0 *)(ab + (size_t)c * astride),
                                         (const blk_q8_0 *)(ab + (size_t)(c + 1) * astride)};
                q40_packed_tile(nb, h, 1, 2, src, ac, s + (size_t)c * ldc + r0 + 8 * h, ldc);
            }
            if (c < nc) {
                const blk_q8_0 *ac[1] = {(const blk_q8_0 *)(ab + (size_t)c * astride)};
                q40_packed_tile(nb, h, 1, 1, src, ac, s + (size_t)c * ldc + r0 + 8 * h, ldc);
            }
        }
    }
}

/* ---------------------------------------------------------------- table */

const kern_table kern_table_avx2 = {
    .name = "avx2",
    .swiglu = swiglu,
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
        [KERN_Q2_K] = q2_k_vec_dot, [KERN_Q3_K] = q3_k_vec_dot,
        [KERN_Q4_K] = q4_k_vec_dot, [KERN_Q5_K] = q5_k_vec_dot,
        [KERN_Q6_K] = q6_k_vec_dot, [KERN_Q8_K] = q8_k_vec_dot,
        [KERN_IQ4_NL] = iq4_nl_vec_dot, [KERN_IQ4_XS] = iq4_xs_vec_dot,
    },
    .mul_mat = {
        [KERN_Q4_0] = q4_0_mul_mat, [KERN_Q8_0] = q8_0_mul_mat, [KERN_Q6_K] = q6_k_mul_mat,
    },
    .pack = {[KERN_Q4_0] = q4_0_pack, [KERN_Q4_K] = q4_k_pack},
    .mul_mat_packed = {[KERN_Q4_0] = q4_0_mul_mat_packed, [KERN_Q4_K] = q4_k_mul_mat_packed},
    .f16_mad = f16_mad,
    .f16_scale = f16_scale,
    .f32_mad = f32_mad,
    .attn_f16 = attn_f16,
};
