/* kernels/x86_avx512.c — the "avx512" table: AVX-512 F/BW/VL/DQ + VNNI +
 * BF16 (Zen 4, Sapphire Rapids, Cooper Lake). Compiled with those flags;
 * called only after kern_select checked the CPU. Entries not set here come
 * from the avx2 table (kern_select overlays ref <- avx2 <- avx512).
 *
 * Same contract as every table: bit-identical to the reference (ref.c).
 * What AVX-512 adds: the F32/F16 dots in ggml's own 16-lane shape (one zmm
 * per accumulator), BF16 with the real vdpbf16ps, wider F16 conversion, and
 * VNNI's vpdpbusd for the integer lanes (the same lanes as maddubs+madd:
 * 4 consecutive bytes per int32).
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/x86_avx512_impl.h"
#include "kernels/attn_impl.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float h2f(kern_f16 h) { return _cvtsh_ss(h); }


/* _mm512_reduce_add_ps as GCC expands it: hi 8 + lo 8, then hsum8. */
static inline float reduce16(__m512 v)
{
    return hsum8(_mm256_add_ps(_mm512_extractf32x8_ps(v, 1), _mm512_castps512_ps256(v)));
}

/* ---------------------------------------------------------- F32 / F16 */

/* ggml_vec_dot_f32 / _f16 on AVX-512: 4 accumulators over steps of 64,
 * folded 0+2, 1+3, then 0+1, then reduce16; tails as in ref.c. */
static void f32_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const float *x = vw, *y = va;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int np = n & ~63;
    for (int i = 0; i < np; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    float sum = np ? reduce16(_mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3))) : 0.0f;
    for (int i = np; i < n; i++) sum = fmaf(x[i], y[i], sum);
    *s = sum;
}

static inline __m512 load_f16x16(const kern_f16 *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }

static inline __attribute__((always_inline)) void f16_dot(int n, float *s, const void *vw, const void *va)
{
    const kern_f16 *x = vw, *y = va;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int np = n & ~63;
    for (int i = 0; i < np; i += 64) {
        a0 = _mm512_fmadd_ps(load_f16x16(x + i), load_f16x16(y + i), a0);
        a1 = _mm512_fmadd_ps(load_f16x16(x + i + 16), load_f16x16(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(load_f16x16(x + i + 32), load_f16x16(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(load_f16x16(x + i + 48), load_f16x16(y + i + 48), a3);
    }
    double sum = np ? (double)reduce16(_mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3))) : 0.0;
    for (int i = np; i < n; i++) sum += (double)(h2f(x[i]) * h2f(y[i]));
    *s = (float)sum;
}

static void f16_vec_dot(int n, float *s, const void *vw, const void *va) { f16_dot(n, s, vw, va); }

static void f16_from_float(const float *x, void *vy, int64_t n)
{
    kern_f16 *y = vy;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = kern_f32_to_f16(x[i]);
}

static void f16_to_float(const void *vx, float *y, int64_t n)
{
    const kern_f16 *x = vx;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, load_f16x16(x + i));
    for (; i < n; i++) y[i] = kern_f16_to_f32(x[i]);
}

/* ggml_vec_dot_bf16 with AVX512-BF16: two vdpbf16ps accumulators over
 * steps of 64 (elements 0..31 and 32..63), each reduced, summed in double,
 * tail in double. The instruction is the reference's emulation (odd
 * product, then even, DAZ/FTZ, round to nearest even): checked by tests. */
static void bf16_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const kern_bf16 *x = vw, *y = va;
    __m512 c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        c1 = _mm512_dpbf16_ps(c1, (__m512bh)_mm512_loadu_si512(x + i), (__m512bh)_mm512_loadu_si512(y + i));
        c2 = _mm512_dpbf16_ps(c2, (__m512bh)_mm512_loadu_si512(x + i + 32), (__m512bh)_mm512_loadu_si512(y + i + 32));
    }
    double sum = (double)reduce16(c1);
    sum += (double)reduce16(c2);
    for (; i < n; i++) sum += (double)(kern_bf16_to_f32(x[i]) * kern_bf16_to_f32(y[i]));
    *s = (float)sum;
}

/* ------------------------------------------------------ Q8_K activations */

/* ref.c's q8_k_from_float, 16 lanes at a time, bit for bit: amax over |x|
 * skipping NaN (vmaxps returns its second operand when one is NaN, so the
 * running max goes second), max = x at the first index reaching amax, the
 * round-to-nearest by the same 1.5 * 2^23 addition and bit masking (so
 * NaN and huge products give what ref gives), then the clamp and the
 * 16-quant sums. */
static void q8_k_from_float(const float *x, void *vy, int64_t n)
{
    blk_q8_k *y = vy;
    const __m512 magic = _mm512_set1_ps(12582912.f);
    const __m512i lowm = _mm512_set1_epi32(0x007fffff), half = _mm512_set1_epi32(0x00400000);
    const __m512 absm = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        __m512 am = _mm512_setzero_ps();
        for (int g = 0; g < 16; g++) am = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + 16 * g), absm), am);
        const float amax = _mm512_reduce_max_ps(am);
        if (!(amax > 0)) {
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const __m512 va = _mm512_set1_ps(amax);
        float max = 0;
        for (int g = 0; g < 16; g++) {
            const __mmask16 k = _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_loadu_ps(x + 16 * g), absm), va, _CMP_EQ_OQ);
            if (k) {
                max = x[16 * g + __builtin_ctz(k)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const __m512 vs = _mm512_set1_ps(iscale);
        for (int g = 0; g < 16; g++) {
            const __m512 t = _mm512_add_ps(_mm512_mul_ps(vs, _mm512_loadu_ps(x + 16 * g)), magic);
            __m512i q = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(t), lowm), half);
            q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-128));
            _mm_storeu_si128((__m128i *)(y[i].qs + 16 * g), _mm512_cvtepi32_epi8(q));
            y[i].bsums[g] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y[i].d = 1 / iscale;
    }
}

/* -------------------------------------------------- Q8_0 / Q4_0 (VNNI) */


static inline int hsum8_i32(__m256i v)
{
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
    return _mm_cvtsi128_si32(s);
}

/* s8 x s8 lanes: |x| (unsigned) times y * sign(x), by vpdpbusd. */
static inline __m256i dot_ss(__m256i x, __m256i y)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(x), _mm256_sign_epi8(y, x));
}

static void q8_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q8_0 *w = vw, *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_32; i++) {
        __m256i l = dot_ss(loadu256(w[i].qs), loadu256(a[i].qs));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(l), acc);
    }
    *s = hsum8(acc);
}

/* 16 nibble bytes of 2 blocks -> zmm: [lo0 | hi0 | lo1 | hi1] as bytes
 * (each 128-bit quarter: 16 elements, the order of the two q8 blocks). */
static inline __m512i nibbles64(const uint8_t *p0, const uint8_t *p1)
{
    __m256i v = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)),
                                        _mm_loadu_si128((const __m128i *)p1), 1);
    __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    /* quarters now: lo0 lo1 hi0 hi1 -> reorder to lo0 hi0 lo1 hi1 */
    both = _mm512_shuffle_i64x2(both, both, _MM_SHUFFLE(3, 1, 2, 0));
    return _mm512_and_si512(both, _mm512_set1_epi8(0x0f));
}

/* Q4_0: chain (ref.c). Two blocks per zmm: vpdpbusd gives nib . a, and
 * 8 * sum(a) comes from a second one; the block totals feed the chain. */
static void q4_0_vec_dot(int n, float *s, const void *vw, const void *va)
{
    const blk_q4_0 *w = vw;
    const blk_q8_0 *a = va;
    const int nb = n / QK_32;
    const __m512i eight = _mm512_set1_epi8(8);
    float sum = 0;
    int i = 0;
    for (; i + 4 <= nb; i += 4) {
        int tot[4];
        for (int h = 0; h < 2; h++) {
            const int b = i + 2 * h;
            __m512i u = nibbles64(w[b].qs, w[b + 1].qs);
            __m512i av = _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(a[b].qs)), loadu256(a[b + 1].qs), 1);
            __m512i l = _mm512_sub_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), u, av),
                                         _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, av));
            tot[2 * h] = hsum8_i32(_mm512_castsi512_si256(l));
            tot[2 * h + 1] = hsum8_i32(_mm512_extracti64x4_epi64(l, 1));
        }
        for (int k = 0; k < 4; k++) sum = fmaf((float)tot[k], h2f(w[i + k].d) * h2f(a[i + k].d), sum);
    }
    for (; i < nb; i++) {
        __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)w[i].qs)),
                                            _mm_srli_epi16(_mm_loadu_si128((const __m128i *)w[i].qs), 4), 1);
        q = _mm256_sub_epi8(_mm256_and_si256(q, _mm256_set1_epi8(0x0f)), _mm256_set1_epi8(8));
        int tot = hsum8_i32(dot_ss(q, loadu256(a[i].qs)));
        sum = fmaf((float)tot, h2f(w[i].d) * h2f(a[i].d), sum);
    }
    *s = sum;
}

/* ------------------------------------------------ F16 attention (decode) */

static void f16_mad(int n, kern_f16 *y, const kern_f16 *x, float s)
{
    const int np = n & ~63;
    const __m512 vs = _mm512_set1_ps(s);
    int i = 0;
    for (; i < np; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i),
                            _mm512_cvtps_ph(_mm512_fmadd_ps(load_f16x16(x + i), vs, load_f16x16(y + i)),
                                            _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        float p = h2f(x[i]) * s;   /* the tail is not fused */
        y[i] = kern_f32_to_f16(h2f(y[i]) + p);
    }
}

static void f16_scale(int n, kern_f16 *y, float s)
{
    const __m512 vs = _mm512_set1_ps(s);
    int i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(y + i),
                            _mm512_cvtps_ph(_mm512_mul_ps(load_f16x16(y + i), vs), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = kern_f32_to_f16(h2f(y[i]) * s);
}

/* x rounded to half and widened back: what a store to an F16 vector and
 * its reload give, without the round trip through memory. */
static inline __m512 round_f16(__m512 x)
{
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
}

/* reduce16 of 16 vectors at once: lane e of the result is reduce16(t[e])
 * when t[s] holds the vector of lane e = RD_SLOT[s] (the network below
 * leaves its sums in that order; RD_SLOT is its own inverse). The same
 * pairs are added at each step as in reduce16: lanes i and i + 8, then
 * i and i + 4, then (0 + 2) and (1 + 3), then those two. */
static const int RD_SLOT[16] = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};

static inline __m512 reduce16x16(const __m512 t[16])
{
    __m512 w[8], z[4], y[2];
    for (int j = 0; j < 8; j++)   /* lanes 0-7: t[j]'s i + (i + 8); 8-15: t[j + 8]'s */
        w[j] = _mm512_add_ps(_mm512_shuffle_f32x4(t[j], t[j + 8], 0x44), _mm512_shuffle_f32x4(t[j], t[j + 8], 0xEE));
    for (int j = 0; j < 4; j++)   /* per 128-bit lane: one vector's i + (i + 4) */
        z[j] = _mm512_add_ps(_mm512_shuffle_f32x4(w[j], w[j + 4], 0x88), _mm512_shuffle_f32x4(w[j], w[j + 4], 0xDD));
    for (int j = 0; j < 2; j++)   /* (0 + 2), (1 + 3) */
        y[j] = _mm512_add_ps(_mm512_shuffle_ps(z[j], z[j + 2], 0x44), _mm512_shuffle_ps(z[j], z[j + 2], 0xEE));
    return _mm512_add_ps(_mm512_shuffle_ps(y[0], y[1], 0x88), _mm512_shuffle_ps(y[0], y[1], 0xDD));
}

/* positions per pass, heads per pass, cache rows prefetched ahead (the
 * cache is read from memory: the weights streamed through since this layer
 * last read it; 8 rows ahead took 3.0 -> 2.1 ms off a TinyLlama step at KV
 * depth 128-255 with the earlier row-interleaved layout) */
enum { ATT_CH = 64, ATT_HB = 8, ATT_PF = 8 };

/* Scores of positions j0 .. j0 + cn - 1 for nh (<= ATT_HB) heads: sc[h][t]
 * = f16_dot(dk, K_{j0+t}, q_h) * scale + 0.0f, with dk = 64 * DK64: each
 * K row widened once for all heads, 16 positions' folded lane vectors
 * reduced together. qf: the heads' q widened (nh * dk floats). */
static inline __attribute__((always_inline)) void attn_scores(int DK64, int cn, int nh, const float *qf,
                                                              const uint8_t *k, size_t ks, float scale,
                                                              float sc[][ATT_CH])
{
    const int dk = 64 * DK64;
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int t0 = 0; t0 < cn; t0 += 16) {
        __m512 tv[ATT_HB][16];
        for (int u = 0; u < 16; u++) {
            const int slot = RD_SLOT[u];
            if (t0 + u >= cn) {
                for (int h = 0; h < nh; h++) tv[h][slot] = _mm512_setzero_ps();
                continue;
            }
            const kern_f16 *kr = (const kern_f16 *)(k + (size_t)(t0 + u) * ks);
            for (int i = 0; i < 2 * dk; i += 64) _mm_prefetch((const char *)kr + ATT_PF * ks + i, _MM_HINT_T0);
            __m512 kv[8];
            _Pragma("GCC unroll 8")
            for (int i = 0; i < 4 * DK64; i++) kv[i] = load_f16x16(kr + 16 * i);
            for (int h = 0; h < nh; h++) {
                const float *q = qf + (size_t)h * dk;
                __m512 a[4];
                _Pragma("GCC unroll 4")
                for (int i = 0; i < 4; i++) a[i] = _mm512_mul_ps(kv[i], _mm512_loadu_ps(q + 16 * i));
                _Pragma("GCC unroll 4")
                for (int i = 4; i < 4 * DK64; i++) a[i % 4] = _mm512_fmadd_ps(kv[i], _mm512_loadu_ps(q + 16 * i), a[i % 4]);
                tv[h][slot] = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
            }
        }
        for (int h = 0; h < nh; h++) {
            /* (float)(double)x is x: f16_dot's double total adds nothing to one float */
            const __m512 d = _mm512_mul_ps(reduce16x16(tv[h]), vscale);
            _mm512_storeu_ps(sc[h] + t0, _mm512_add_ps(d, _mm512_setzero_ps()));
        }
    }
}

/* kern_expf of 8 lanes: its double operations lane-wise (KERN_EXP2_TAB
 * looked up by two 16-entry permutes and bit 4); lanes with the special
 * top bits take kern_expf itself. */
static inline __m256 expf8(__m256 x)
{
    const __m512i t0 = _mm512_loadu_si512(KERN_EXP2_TAB), t1 = _mm512_loadu_si512(KERN_EXP2_TAB + 8);
    const __m512i t2 = _mm512_loadu_si512(KERN_EXP2_TAB + 16), t3 = _mm512_loadu_si512(KERN_EXP2_TAB + 24);
    const __m512d invln2n = _mm512_set1_pd(KERN_EXPF_INVLN2N), shift = _mm512_set1_pd(KERN_EXPF_SHIFT);
    const __m512d xd = _mm512_cvtps_pd(x);
    __m512d kd = _mm512_fmadd_pd(invln2n, xd, shift);
    const __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, shift);
    const __m512d r = _mm512_fmsub_pd(invln2n, xd, kd);
    const __m512i lo = _mm512_permutex2var_epi64(t0, ki, t1), hi = _mm512_permutex2var_epi64(t2, ki, t3);
    const __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
    const __m512i tb = _mm512_add_epi64(_mm512_mask_blend_epi64(upper, lo, hi), _mm512_slli_epi64(ki, 47));
    const __m512d z = _mm512_fmadd_pd(_mm512_set1_pd(KERN_EXPF_C0), r, _mm512_set1_pd(KERN_EXPF_C1));
    const __m512d p = _mm512_fmadd_pd(z, _mm512_mul_pd(r, r),
                                      _mm512_fmadd_pd(_mm512_set1_pd(KERN_EXPF_C2), r, _mm512_set1_pd(1.0)));
    __m256 y = _mm512_cvtpd_ps(_mm512_mul_pd(p, _mm512_castsi512_pd(tb)));
    const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(x), 20), _mm256_set1_epi32(0x7ff));
    const __mmask8 sp = _mm256_cmpge_epi32_mask(top, _mm256_set1_epi32(KERN_EXPF_TOP_SPECIAL));
    if (sp) {
        float xs[8], ys[8];
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(ys, y);
        for (int l = 0; l < 8; l++)
            if (sp >> l & 1) ys[l] = kern_expf(xs[l]);
        y = _mm256_loadu_ps(ys);
    }
    return y;
}

/* The softmax bookkeeping of cn positions for nh heads, the body's order
 * per head: each position's factors ms[t][h] (1 unless the max rose:
 * resc[t][h]) and vsc[t][h] (1 when it rose), the exponentials 8 heads at
 * a time (expf8), then the S chains as the 8 lanes
 * of one vector (lane h: S_h = fmaf(S_h, ms, vsc) in position order). */
static void attn_softmax(int cn, int nh, const float sc[][ATT_CH], float *S, float *M, float ms[][ATT_HB],
                         float vsc[][ATT_HB], unsigned char resc[][ATT_HB])
{
    float e[ATT_CH][ATT_HB];
    for (int h = 0; h < nh; h++) {
        float Mh = M[h];
        for (int t = 0; t < cn; t++) {
            const float s = sc[h][t];
            resc[t][h] = s > Mh;
            if (resc[t][h]) {
                e[t][h] = Mh - s;   /* expf(M_old - M_new) */
                Mh = s;
            } else {
                e[t][h] = s - Mh;
            }
        }
        M[h] = Mh;
    }
    const __mmask8 lanes = (__mmask8)((1u << nh) - 1);
    for (int t = 0; t < cn; t++) _mm256_mask_storeu_ps(e[t], lanes, expf8(_mm256_maskz_loadu_ps(lanes, e[t])));
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 Sv = _mm256_maskz_loadu_ps(lanes, S);
    for (int t = 0; t < cn; t++) {
        const __m256 ev = _mm256_maskz_loadu_ps(lanes, e[t]);
        const __m128i r = _mm_loadl_epi64((const __m128i *)resc[t]);
        const __mmask8 rm = (__mmask8)_mm_test_epi8_mask(r, r) & lanes;
        const __m256 m = _mm256_mask_blend_ps(rm, one, ev), c = _mm256_mask_blend_ps(rm, ev, one);
        Sv = _mm256_fmadd_ps(Sv, m, c);
        _mm256_storeu_ps(ms[t], m);
        _mm256_storeu_ps(vsc[t], c);
    }
    _mm256_mask_storeu_ps(S, lanes, Sv);
}

/* The V accumulation for heads h0 .. h0 + NH - 1 (NV * NH accumulators in
 * registers): acc rounded to half after every step exactly as f16_mad /
 * f16_scale round it in memory. */
static inline __attribute__((always_inline)) void attn_v_pass(int NV, int NH, int h0, int cn, const uint8_t *v,
                                                              size_t vs, kern_f16 *vkq16, int dv,
                                                              const float ms[][ATT_HB], const float vsc[][ATT_HB],
                                                              const unsigned char resc[][ATT_HB])
{
    __m512 acc[4][8];
    vkq16 += (size_t)h0 * dv;
    _Pragma("GCC unroll 4")
    for (int h = 0; h < NH; h++)
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NV; i++) acc[h][i] = load_f16x16(vkq16 + (size_t)h * dv + 16 * i);
    for (int t = 0; t < cn; t++) {
        const kern_f16 *vj = (const kern_f16 *)(v + (size_t)t * vs);
        for (int i = 0; i < 2 * dv; i += 64) _mm_prefetch((const char *)vj + ATT_PF * vs + i, _MM_HINT_T0);
        __m512 vv[8];
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NV; i++) vv[i] = load_f16x16(vj + 16 * i);
        _Pragma("GCC unroll 4")
        for (int h = 0; h < NH; h++) {
            if (resc[t][h0 + h]) {
                const __m512 m = _mm512_set1_ps(ms[t][h0 + h]);
                _Pragma("GCC unroll 8")
                for (int i = 0; i < NV; i++) acc[h][i] = round_f16(_mm512_mul_ps(acc[h][i], m));
            }
            const __m512 c = _mm512_set1_ps(vsc[t][h0 + h]);
            _Pragma("GCC unroll 8")
            for (int i = 0; i < NV; i++) acc[h][i] = round_f16(_mm512_fmadd_ps(vv[i], c, acc[h][i]));
        }
    }
    _Pragma("GCC unroll 4")
    for (int h = 0; h < NH; h++)
        _Pragma("GCC unroll 8")
        for (int i = 0; i < NV; i++)
            _mm256_storeu_si256((__m256i *)(vkq16 + (size_t)h * dv + 16 * i),
                                _mm512_cvtps_ph(acc[h][i], _MM_FROUND_TO_NEAREST_INT));
}

/* attn_f16_heads for up to ATT_HB heads with dk 64 * DK64 and dv 16 * NV
 * (64 or 128), ATT_CH positions at a time in three passes: the scores
 * (attn_scores), the softmax bookkeeping (attn_softmax), then the V
 * accumulation (attn_v_pass: 4 heads of dv 64 or 2 of dv 128 per V row
 * read). Same operations in the same order per value as the body. */
static inline __attribute__((always_inline)) void attn_f16_group(int DK64, int NV, int n, int nh,
                                                                 const kern_f16 *q16, const void *k, size_t ks,
                                                                 const void *v, size_t vs, float scale,
                                                                 kern_f16 *vkq16, float *S, float *M)
{
    const int dk = 64 * DK64, dv = 16 * NV;
    float qf[ATT_HB * 128];
    float sc[ATT_HB][ATT_CH], ms[ATT_CH][ATT_HB], vsc[ATT_CH][ATT_HB];
    unsigned char resc[ATT_CH][ATT_HB];
    for (int i = 0; i < nh * dk; i += 16)
        _mm512_storeu_ps(qf + i, load_f16x16(q16 + i));
    for (int j0 = 0; j0 < n; j0 += ATT_CH) {
        const int cn = n - j0 < ATT_CH ? n - j0 : ATT_CH;
        attn_scores(DK64, cn, nh, qf, (const uint8_t *)k + (size_t)j0 * ks, ks, scale, sc);
        attn_softmax(cn, nh, (const float(*)[ATT_CH])sc, S, M, ms, vsc, resc);
        const uint8_t *vb = (const uint8_t *)v + (size_t)j0 * vs;
        int h = 0;
        for (; h + 8 / NV * 2 <= nh; h += 8 / NV * 2)   /* 4 heads of dv 64, 2 of dv 128 */
            attn_v_pass(NV, 8 / NV * 2, h, cn, vb, vs, vkq16, dv, (const float(*)[ATT_HB])ms,
                        (const float(*)[ATT_HB])vsc, (const unsigned char(*)[ATT_HB])resc);
        for (; h < nh; h++)
            attn_v_pass(NV, 1, h, cn, vb, vs, vkq16, dv, (const float(*)[ATT_HB])ms, (const float(*)[ATT_HB])vsc,
                        (const unsigned char(*)[ATT_HB])resc);
    }
}

static void attn_f16(int n, int nh, int dk, int dv, const kern_f16 *q16, const void *k, size_t ks, const void *v,
                     size_t vs, float scale, kern_f16 *vkq16, float *S, float *M)
{
    for (int h = 0; h < nh; h += ATT_HB) {
        const int hn = nh - h < ATT_HB ? nh - h : ATT_HB;
        const kern_f16 *qh = q16 + (size_t)h * dk;
        kern_f16 *oh = vkq16 + (size_t)h * dv;
        if (dk == 64 && dv == 64)
            attn_f16_group(1, 4, n, hn, qh, k, ks, v, vs, scale, oh, S + h, M + h);
        else if (dk == 128 && dv == 128)
            attn_f16_group(2, 8, n, hn, qh, k, ks, v, vs, scale, oh, S + h, M + h);
        else if (dk == 64 && dv == 128)
            attn_f16_group(1, 8, n, hn, qh, k, ks, v, vs, scale, oh, S + h, M + h);
        else if (dk == 128 && dv == 64)
            attn_f16_group(2, 4, n, hn, qh, k, ks, v, vs, scale, oh, S + h, M + h);
        else
            attn_f16_heads(n, hn, dk, dv, qh, k, ks, v, vs, scale, oh, S + h, M + h, f16_vec_dot, f16_mad, f16_scale);
    }
}

/* ---------------------------------------------------------------- SwiGLU */

/* ref.c's swiglu, 16 lanes at a time: kern_expf_approx's operations as
 * vector ones (the same roundings lane by lane); lanes whose n falls
 * outside the 2^n-from-bits range (|x| > ~87) or that are NaN take the
 * scalar function, the tail is ref's own. */
static void swiglu(int n, float *y, const float *x, const float *g)
{
    const __m512 r = _mm512_set1_ps(0x1.8p23f), one = _mm512_set1_ps(1.0f);
    int i = 0;
    for (; i + 15 < n; i += 16) {
        const __m512 xv = _mm512_loadu_ps(x + i);
        const __m512 a = _mm512_sub_ps(_mm512_setzero_ps(), xv);            /* 0 - x */
        const __m512 z = _mm512_fmadd_ps(a, _mm512_set1_ps(0x1.715476p+0f), r);
        const __m512 nn = _mm512_sub_ps(z, r);
        const __m512 mn = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(nn), _mm512_set1_epi32(INT32_MIN))); /* -n */
        const __m512 b = _mm512_fmadd_ps(mn, _mm512_set1_ps(0x1.7f7d1cp-20f),
                                         _mm512_fmadd_ps(mn, _mm512_set1_ps(0x1.62e4p-1f), a));
        const __m512 u = _mm512_mul_ps(b, b);
        const __m512 j = _mm512_fmadd_ps(
            _mm512_fmadd_ps(_mm512_fmadd_ps(_mm512_set1_ps(0x1.0e4020p-7f), b, _mm512_set1_ps(0x1.573e2ep-5f)), u,
                            _mm512_fmadd_ps(_mm512_set1_ps(0x1.555e66p-3f), b, _mm512_set1_ps(0x1.fffdb6p-2f))),
            u, _mm512_fmadd_ps(_mm512_set1_ps(0x1.ffffecp-1f), b, one));
        const __m512i ni = _mm512_cvttps_epi32(nn);   /* n is integral: exact */
        const __mmask16 ok = _mm512_cmp_ps_mask(nn, _mm512_set1_ps(-125.0f), _CMP_GE_OQ) &
                             _mm512_cmp_ps_mask(nn, _mm512_set1_ps(127.0f), _CMP_LE_OQ);
        const __m512 p2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(ni, _mm512_set1_epi32(127)), 23));
        __m512 e = _mm512_mul_ps(j, p2);
        if (ok != 0xffff) {
            float ev[16];
            _mm512_storeu_ps(ev, e);
            for (int l = 0; l < 16; l++)
                if (!((ok >> l) & 1)) ev[l] = kern_expf_approx(0.0f - x[i + l]);
            e = _mm512_loadu_ps(ev);
        }
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_div_ps(xv, _mm512_add_ps(one, e)), _mm512_loadu_ps(g + i)));
    }
    kern_swiglu_body(n - i, y + i, x + i, g + i);   /* under 16 left: the body's libm tail */
}

/* ---------------------------------------------------------------- table */

const kern_table kern_table_avx512 = {
    .name = "avx512",
    .from_float = {[KERN_F16] = f16_from_float, [KERN_Q8_K] = q8_k_from_float},
    .to_float = {[KERN_F16] = f16_to_float},
    .vec_dot = {
        [KERN_F32] = f32_vec_dot, [KERN_F16] = f16_vec_dot, [KERN_BF16] = bf16_vec_dot,
        [KERN_Q8_0] = q8_0_vec_dot, [KERN_Q4_0] = q4_0_vec_dot,
    },
    .f16_mad = f16_mad,
    .f16_scale = f16_scale,
    .attn_f16 = attn_f16,
    .swiglu = swiglu,
    .mul_mat = {
        [KERN_Q4_0] = kx512_q4_0_mul_mat, [KERN_IQ4_NL] = kx512_iq4_nl_mul_mat,
        [KERN_Q8_0] = kx512_q8_0_mul_mat,
        [KERN_Q4_K] = kx512_q4_k_mul_mat, [KERN_Q6_K] = kx512_q6_k_mul_mat,
        [KERN_Q5_0] = kx512_q5_0_mul_mat, [KERN_Q4_1] = kx512_q4_1_mul_mat,
        [KERN_Q5_1] = kx512_q5_1_mul_mat,
    },
    .pack = {[KERN_Q4_0] = kx512_q4_0_pack, [KERN_IQ4_NL] = kx512_iq4_nl_pack, [KERN_Q4_K] = kx512_q4_k_pack,
              [KERN_Q6_K] = kx512_q6_k_pack, [KERN_Q8_0] = kx512_q8_0_pack},
    .mul_mat_packed = {[KERN_Q4_0] = kx512_q4_0_mul_mat_packed, [KERN_IQ4_NL] = kx512_iq4_nl_mul_mat_packed,
                       [KERN_Q4_K] = kx512_q4_k_mul_mat_packed, [KERN_Q6_K] = kx512_q6_k_mul_mat_packed,
                       [KERN_Q8_0] = kx512_q8_0_mul_mat},
};
