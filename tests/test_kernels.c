/* test_kernels.c — kernel tables against the reference, format properties,
 * f16/bf16 conversion corner cases, and dequantization of real llama.cpp
 * quantized tensors against their F32 originals.
 *
 * Tolerances (stated once, used everywhere below):
 *   from_float (every table): bit-identical blocks to the reference.
 *   to_float (every table): identical floats to the reference.
 *   vec_dot (every table): bit-identical to the reference, which follows
 *     llama.cpp's decode arithmetic operation by operation (ref.c); and the
 *     reference itself within VEC_DOT_RTOL * sum_i |w_i * a_i| of the exact
 *     dot of the dequantized rows w, a (plus, for Q4_1/Q5_1, the f16
 *     rounding of the activation sums s, see min_term_slack).
 */
#include "test.h"

#include "gguf.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdint.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define VEC_DOT_RTOL 1e-5

/* ------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rnd_u32(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rnd_unit(void) { return (float)(rnd_u32() >> 8) * 0x1p-24f; }  /* [0,1) */
static float rnd_normal(void)
{
    float u = rnd_unit() + 0x1p-25f, v = rnd_unit();
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

static float f32_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t bits_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* Fill x[0..n) with activation-like data: per 32-block a random scale over
 * 6 decades, occasional outliers, a few special blocks (zeros, one-hot,
 * exact ties after scaling by 127/amax, huge and tiny values). */
static void fill_acts_ex(float *x, int64_t n, int extreme)
{
    for (int64_t b = 0; b < n; b += 32) {
        int len = n - b < 32 ? (int)(n - b) : 32;
        float *p = x + b;
        float scale = powf(10.0f, -3.0f + (extreme ? 6.0f : 5.0f) * rnd_unit());
        int kind = rnd_u32() % 16;
        if (!extreme && (kind == 4 || kind == 5)) kind = 3;
        for (int j = 0; j < len; j++) p[j] = rnd_normal() * scale;
        if (kind == 0) {
            for (int j = 0; j < len; j++) p[j] = 0;
        } else if (kind == 1) {
            for (int j = 0; j < len; j++) p[j] = 0;
            p[rnd_u32() % len] = scale;
        } else if (kind == 2) {  /* amax 127: x*id = x exactly, half-integers tie */
            for (int j = 0; j < len; j++) p[j] = (float)((int)(rnd_u32() % 254) - 127) + 0.5f;
            p[0] = 127.0f;
            if (len > 1) p[1] = -126.5f;
        } else if (kind == 3) {
            p[rnd_u32() % len] *= 50;  /* outlier */
        } else if (kind == 4) {
            for (int j = 0; j < len; j++) p[j] *= 1e-30f;
        } else if (kind == 5) {
            for (int j = 0; j < len; j++) p[j] *= 1e25f;
        } else if (kind == 6) {  /* +amax and -amax both present */
            p[0] = scale;
            if (len > 3) p[3] = -scale;
        }
    }
}

static void fill_acts(float *x, int64_t n) { fill_acts_ex(x, n, 1); }

/* Weights-like data for the formats' own quantizers. */
static void fill_weights(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = rnd_normal() * 0.02f;
    for (int k = 0; k < 4 && n > 0; k++) x[rnd_u32() % n] *= 8;
}

static const int all_types[] = {
    KERN_F32, KERN_F16, KERN_BF16, KERN_Q4_0, KERN_Q4_1, KERN_Q5_0, KERN_Q5_1,
    KERN_Q8_0, KERN_Q8_1, KERN_Q2_K, KERN_Q3_K, KERN_Q4_K, KERN_Q5_K, KERN_Q6_K,
    KERN_Q8_K, KERN_IQ4_NL, KERN_IQ4_XS,
};
#define N_TYPES (int)(sizeof all_types / sizeof all_types[0])

/* ------------------------------------------------------------- traits */

static void test_traits(void)
{
    static const struct { int t, bs; size_t ts; int vdt; const char *name; } want[] = {
        {KERN_F32, 1, 4, KERN_F32, "F32"}, {KERN_F16, 1, 2, KERN_F16, "F16"},
        {KERN_BF16, 1, 2, KERN_BF16, "BF16"},
        {KERN_Q4_0, 32, 18, KERN_Q8_0, "Q4_0"}, {KERN_Q4_1, 32, 20, KERN_Q8_1, "Q4_1"},
        {KERN_Q5_0, 32, 22, KERN_Q8_0, "Q5_0"}, {KERN_Q5_1, 32, 24, KERN_Q8_1, "Q5_1"},
        {KERN_Q8_0, 32, 34, KERN_Q8_0, "Q8_0"}, {KERN_Q8_1, 32, 36, KERN_Q8_1, "Q8_1"},
        {KERN_Q2_K, 256, 84, KERN_Q8_K, "Q2_K"}, {KERN_Q3_K, 256, 110, KERN_Q8_K, "Q3_K"},
        {KERN_Q4_K, 256, 144, KERN_Q8_K, "Q4_K"}, {KERN_Q5_K, 256, 176, KERN_Q8_K, "Q5_K"},
        {KERN_Q6_K, 256, 210, KERN_Q8_K, "Q6_K"}, {KERN_Q8_K, 256, 292, KERN_Q8_K, "Q8_K"},
        {KERN_IQ4_NL, 32, 18, KERN_Q8_0, "IQ4_NL"}, {KERN_IQ4_XS, 256, 136, KERN_Q8_K, "IQ4_XS"},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const kern_traits *tr = kern_type_traits(want[i].t);
        if (!tr || tr->block_size != want[i].bs || tr->type_size != want[i].ts ||
            tr->vec_dot_type != want[i].vdt || strcmp(tr->name, want[i].name) != 0) {
            T_NOTE("traits of type %d wrong", want[i].t);
            ok = 0;
        }
    }
    T_CHECK(ok, "traits: block size, bytes, vec_dot_type and name of all %d types",
            (int)(sizeof want / sizeof want[0]));
    T_CHECK(!kern_type_traits(-1) && !kern_type_traits(4) && !kern_type_traits(5) &&
            !kern_type_traits(KERN_TYPE_COUNT) && !kern_type_traits(1000),
            "traits: unknown and removed type ids give NULL");
    T_CHECK(kern_row_size(KERN_Q4_0, 4096) == 128 * 18 && kern_row_size(KERN_Q6_K, 512) == 420 &&
            kern_row_size(KERN_F16, 7) == 14, "row size of whole blocks");
    T_CHECK(kern_row_size(KERN_Q4_0, 33) == 0 && kern_row_size(KERN_Q4_K, 128) == 0 &&
            kern_row_size(3000, 32) == 0 && kern_row_size(KERN_F32, -1) == 0 &&
            kern_row_size(KERN_F32, INT64_MAX) == 0,
            "row size 0 for partial blocks, unknown types, negative n, overflow");
}

/* ------------------------------------------------- f16 / bf16 corners */

#if defined(__x86_64__)
__attribute__((target("f16c"))) static uint16_t hw_f32_to_f16(float f)
{
    return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), 0), 0);
}
__attribute__((target("f16c"))) static float hw_f16_to_f32(uint16_t h)
{
    return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}
static int have_hw_f16(void) { __builtin_cpu_init(); return __builtin_cpu_supports("f16c"); }
#elif defined(__aarch64__)
static uint16_t hw_f32_to_f16(float f) { __fp16 h = (__fp16)f; uint16_t u; memcpy(&u, &h, 2); return u; }
static float hw_f16_to_f32(uint16_t u) { __fp16 h; memcpy(&h, &u, 2); return (float)h; }
static int have_hw_f16(void) { return 1; }
#else
static uint16_t hw_f32_to_f16(float f) { (void)f; return 0; }
static float hw_f16_to_f32(uint16_t u) { (void)u; return 0; }
static int have_hw_f16(void) { return 0; }
#endif

static void test_f16(void)
{
    /* Every half converts to float and back unchanged (NaNs: stay NaN). */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = kern_f16_to_f32((kern_f16)h);
        kern_f16 back = kern_f32_to_f16(f);
        int isnan_h = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
        if (isnan_h ? !(isnan(f) && (back & 0x7c00) == 0x7c00 && (back & 0x3ff))
                    : back != h)
            bad++;
    }
    T_CHECK(bad == 0, "f16 -> f32 -> f16 round trip of all 65536 halves (%d bad)", bad);

    T_CHECK(kern_f32_to_f16(0.0f) == 0 && kern_f32_to_f16(-0.0f) == 0x8000, "f16 signed zeros");
    T_CHECK(kern_f32_to_f16(INFINITY) == 0x7c00 && kern_f32_to_f16(-INFINITY) == 0xfc00,
            "f16 infinities");
    T_CHECK(kern_f32_to_f16(65504.0f) == 0x7bff && kern_f32_to_f16(65519.99f) == 0x7bff &&
            kern_f32_to_f16(65520.0f) == 0x7c00 && kern_f32_to_f16(1e10f) == 0x7c00,
            "f16 overflow: 65504 max, >= 65520 rounds to inf");
    T_CHECK(kern_f32_to_f16(0x1p-24f) == 1 && kern_f32_to_f16(0x1p-25f) == 0 &&
            kern_f32_to_f16(0x1.000002p-25f) == 1 && kern_f32_to_f16(0x3p-25f) == 2 &&
            kern_f32_to_f16(-0x1p-26f) == 0x8000 && kern_f32_to_f16(0x1p-14f) == 0x0400 &&
            kern_f32_to_f16(0x1.ff8p-15f) == 0x03ff && kern_f32_to_f16(0x1.ffcp-15f) == 0x0400,
            "f16 subnormals: ties to even, underflow to signed zero, round up to normal");
    T_CHECK(kern_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00 && kern_f32_to_f16(1.0f + 0x3p-11f) == 0x3c02 &&
            kern_f32_to_f16(f32_of(bits_of(1.0f + 0x1p-11f) + 1)) == 0x3c01, "f16 normal ties to even");
    T_CHECK(isnan(kern_f16_to_f32(kern_f32_to_f16(NAN))) &&
            (kern_f32_to_f16(f32_of(0x7f800001)) & 0x7e00) == 0x7e00,
            "f16 NaN stays NaN (signalling becomes quiet)");

    if (!have_hw_f16()) {
        T_SKIP("CPU without hardware f16 conversion", "f16 conversion vs hardware");
        return;
    }
    /* Each half boundary: the midpoint between consecutive halves and its
     * float neighbours, against the hardware conversion. */
    bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float lo = kern_f16_to_f32((kern_f16)h), hi = kern_f16_to_f32((kern_f16)(h + 1));
        float mid = lo + (hi - lo) * 0.5f;
        uint32_t mb = bits_of(mid);
        float probe[5] = {lo, mid, f32_of(mb - 1), f32_of(mb + 1), hi};
        for (int k = 0; k < 5; k++)
            for (int s = 0; s < 2; s++) {
                float f = s ? -probe[k] : probe[k];
                if (kern_f32_to_f16(f) != hw_f32_to_f16(f)) bad++;
            }
        if (bits_of(kern_f16_to_f32((kern_f16)h)) != bits_of(hw_f16_to_f32((uint16_t)h))) bad++;
    }
    for (int i = 0; i < 1000000; i++) {
        float f = f32_of(rnd_u32() ^ (rnd_u32() << 16));
        if (isnan(f)) continue;
        if (kern_f32_to_f16(f) != hw_f32_to_f16(f)) bad++;
    }
    T_CHECK(bad == 0, "f16 conversion identical to hardware at every tie and 1e6 random floats (%d bad)",
            bad);
}

/* kern_expf is glibc's expf written out (kernels.h): the same bits as
 * libm's on every float of magnitude 80-110 (the special cases' edges) and
 * on every 1021st bit pattern (all 2^32 were checked once by hand). */
static long expf_bad(uint32_t b, uint32_t *first_bad, long bad)
{
    const float x = f32_of(b), a = expf(x), k = kern_expf(x);
    if (bits_of(a) == bits_of(k) || (isnan(a) && isnan(k))) return bad;
    if (!bad) *first_bad = b;
    return bad + 1;
}

static void test_expf(void)
{
#ifdef __GLIBC__
    long bad = 0, n = 0;
    uint32_t first_bad = 0;
    for (uint64_t u = 0; u <= 0xffffffffull; u += 1021, n++) bad = expf_bad((uint32_t)u, &first_bad, bad);
    for (uint32_t b = bits_of(80.0f); b <= bits_of(110.0f); b++, n += 2) {
        bad = expf_bad(b, &first_bad, bad);
        bad = expf_bad(b | 0x80000000u, &first_bad, bad);
    }
    T_CHECK(bad == 0, "kern_expf == libm expf on %ld floats (%ld differ, first %08x)", n, bad, first_bad);
#else
    T_SKIP("not glibc: kern_expf reproduces glibc's expf, this libm's may differ", "kern_expf vs libm expf");
#endif
}

static void test_bf16(void)
{
    T_CHECK(kern_f32_to_bf16(1.0f) == 0x3f80 && kern_bf16_to_f32(0x3f80) == 1.0f, "bf16 one");
    T_CHECK(kern_f32_to_bf16(f32_of(0x3f808000)) == 0x3f80 &&
            kern_f32_to_bf16(f32_of(0x3f818000)) == 0x3f82 &&
            kern_f32_to_bf16(f32_of(0x3f808001)) == 0x3f81 &&
            kern_f32_to_bf16(f32_of(0x3f807fff)) == 0x3f80, "bf16 rounding: ties to even");
    T_CHECK(kern_f32_to_bf16(f32_of(0x00018000)) == 0x0002 &&
            kern_f32_to_bf16(f32_of(0x80008000)) == 0x8000 &&
            kern_f32_to_bf16(f32_of(0x00010001)) == 0x0001,
            "bf16 subnormals rounded, not flushed");
    T_CHECK(kern_f32_to_bf16(INFINITY) == 0x7f80 && kern_f32_to_bf16(-INFINITY) == 0xff80 &&
            kern_f32_to_bf16(f32_of(0x7f7fffff)) == 0x7f80, "bf16 infinities and overflow to inf");
    T_CHECK(kern_f32_to_bf16(f32_of(0x7f800001)) == 0x7fc0 &&
            kern_f32_to_bf16(f32_of(0xffc12345)) == 0xffc1 && isnan(kern_bf16_to_f32(0x7fc0)),
            "bf16 NaN quieted, payload top bits kept");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7f80) == 0x7f80 && (h & 0x7f)) continue;
        if (kern_f32_to_bf16(kern_bf16_to_f32((kern_bf16)h)) != h) bad++;
    }
    T_CHECK(bad == 0, "bf16 round trip of all non-NaN patterns (%d bad)", bad);
}

/* ------------------------------------------------- tables vs reference */

typedef struct {
    const char *name;
    const kern_table *tab;
} table_ref;

/* dot of the dequantized rows, and the sum of |terms| for the tolerance */
static void dequant_dot(int tw, int ta, int n, const void *w, const void *a,
                        float *scratch_w, float *scratch_a, double *dot, double *mag)
{
    kern_table_ref.to_float[tw](w, scratch_w, n);
    kern_table_ref.to_float[ta](a, scratch_a, n);
    double d = 0, m = 0;
    for (int i = 0; i < n; i++) {
        d += (double)scratch_w[i] * scratch_a[i];
        m += fabs((double)scratch_w[i] * scratch_a[i]);
    }
    *dot = d;
    *mag = m;
}

/* For the types with a min (Q4_1, Q5_1) the dot uses m_w * s_a, where
 * s_a = f16(d_a * sum(q_a)) is computed from the unrounded d_a and rounded
 * itself: the reference differs from the dot of the dequantized rows by up
 * to |m_w| * |s_a| * 2^-10 per block (two f16 roundings). */
static double min_term_slack(int t, int n, const void *w, const void *a)
{
    const blk_q8_1 *ab = a;
    double slack = 0;
    for (int i = 0; i < n / 32; i++) {
        kern_f16 m;
        if (t == KERN_Q4_1) m = ((const blk_q4_1 *)w)[i].m;
        else if (t == KERN_Q5_1) m = ((const blk_q5_1 *)w)[i].m;
        else return 0;
        /* s = d * sum(q) with the unrounded d, stored as a half: the
         * rounding of s and of d (relative for a normal half, 2^-24 absolute
         * for a subnormal one: tiny activations) */
        double s = fabs((double)kern_f16_to_f32(ab[i].s)), ulp_s = s * 0x1.1p-10;
        double d = fabs((double)kern_f16_to_f32(ab[i].d)), ulp_d = d * 0x1.1p-10;
        if (ulp_s < 0x1p-24) ulp_s = 0x1p-24;
        if (ulp_d < 0x1p-24) ulp_d = 0x1p-24;
        int sq = 0;
        for (int k = 0; k < 32; k++) sq += ab[i].qs[k];
        slack += fabs((double)kern_f16_to_f32(m)) * (ulp_s + abs(sq) * ulp_d);
    }
    return slack;
}

/* Offset that misaligns a row as much as its format allows: rows of block
 * formats inside GGUF tensors are only 2-byte aligned; F32 rows and Q8_K
 * rows (float scale, activations only) are 4-byte aligned. */
static int mis(int t) { return t == KERN_Q8_K || t == KERN_F32 ? 4 : 2; }

#define MAXN (4096 + 8 * 256)
#define GUARD 64

/* f16_mad / f16_scale (attention's V accumulator): bit-identical to ref on
 * random halves (normals, subnormals, zeros, infinities), lengths around
 * the 64-element SIMD body. */
static void test_f16_ops(const char *tname, const kern_table *tab)
{
    static const int ns[] = {1, 7, 8, 63, 64, 65, 72, 128, 130};
    kern_f16 x[160], y0[160], yr[160], yt[160];
    int bad = 0;
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        for (int rep = 0; rep < 20; rep++) {
            int n = ns[k];
            for (int i = 0; i < n; i++) {
                x[i] = (kern_f16)(rnd_u32() & 0xfbff);          /* no NaN patterns */
                y0[i] = (kern_f16)(rnd_u32() % 7 == 0 ? rnd_u32() & 0x83ff : rnd_u32() & 0xfbff);
            }
            float s = (float)((int)(rnd_u32() % 2001) - 1000) / 333.0f;
            memcpy(yr, y0, sizeof y0);
            memcpy(yt, y0, sizeof y0);
            kern_table_ref.f16_mad(n, yr, x, s);
            tab->f16_mad(n, yt, x, s);
            bad += memcmp(yr, yt, (size_t)n * 2) != 0;
            kern_table_ref.f16_scale(n, yr, s);
            tab->f16_scale(n, yt, s);
            bad += memcmp(yr, yt, (size_t)n * 2) != 0;
        }
    float fx[160], fr[160], ft[160];
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        for (int rep = 0; rep < 20; rep++) {
            int n = ns[k];
            for (int i = 0; i < n; i++) {
                fx[i] = (float)((int)(rnd_u32() % 20001) - 10000) / 777.0f;
                fr[i] = ft[i] = (float)((int)(rnd_u32() % 20001) - 10000) / 333.0f;
            }
            float s = (float)((int)(rnd_u32() % 2001) - 1000) / 333.0f;
            kern_table_ref.f32_mad(n, fr, fx, s);
            tab->f32_mad(n, ft, fx, s);
            bad += memcmp(fr, ft, (size_t)n * 4) != 0;
        }
    /* attn_f16: random K/V rows with a row stride, scores growing and
     * shrinking (rescales and plain steps), dk/dv 64 and 128 (the avx512
     * register paths) and odd, 1 to 10 heads on the rows (the avx512 groups
     * of 8 and their remainders of 4, 2 and 1), scores small and large */
    static kern_f16 kv16[2][140 * 136];
    static const int dims[][2] = {{64, 64}, {64, 72}, {40, 24}, {128, 128}, {96, 128}};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++)
        for (int rep = 0; rep < 10; rep++) {
            int dk = dims[k][0], dv = dims[k][1], n = 1 + (int)(rnd_u32() % 140), nh = 1 + rep;
            for (int i = 0; i < 140 * 136; i++) {
                kv16[0][i] = kern_f32_to_f16((float)((int)(rnd_u32() % 2001) - 1000) / 500.0f);
                kv16[1][i] = kern_f32_to_f16((float)((int)(rnd_u32() % 2001) - 1000) / 700.0f);
            }
            static kern_f16 q16[10 * 136], vr[10 * 136], vt[10 * 136];
            memset(vr, 0, sizeof vr);
            memset(vt, 0, sizeof vt);
            /* from rep 5 on, scores up to ~+-1000: exponents past -88 (kern_expf's special cases) */
            const float qs = rep < 5 ? 300.0f : 10.0f;
            for (int i = 0; i < nh * dk; i++) q16[i] = kern_f32_to_f16((float)((int)(rnd_u32() % 2001) - 1000) / qs);
            float Sr[10], Mr[10], St[10], Mt[10];
            for (int h = 0; h < nh; h++) {
                Sr[h] = St[h] = 0;
                Mr[h] = Mt[h] = -INFINITY;
            }
            kern_table_ref.attn_f16(n, nh, dk, dv, q16, kv16[0], 136 * 2, kv16[1], 136 * 2, 0.125f, vr, Sr, Mr);
            tab->attn_f16(n, nh, dk, dv, q16, kv16[0], 136 * 2, kv16[1], 136 * 2, 0.125f, vt, St, Mt);
            bad += memcmp(vr, vt, (size_t)nh * dv * 2) != 0 || memcmp(Sr, St, (size_t)nh * 4) != 0 ||
                   memcmp(Mr, Mt, (size_t)nh * 4) != 0;
            /* each head as if alone: the group changes nothing */
            for (int h = 0; h < nh; h++) {
                kern_f16 v1[136] = {0};
                float S1 = 0, M1 = -INFINITY;
                tab->attn_f16(n, 1, dk, dv, q16 + h * dk, kv16[0], 136 * 2, kv16[1], 136 * 2, 0.125f, v1, &S1, &M1);
                bad += memcmp(v1, vr + h * dv, (size_t)dv * 2) != 0 || memcmp(&S1, &Sr[h], 4) != 0;
            }
        }
    T_CHECK(bad == 0, "%s f16_mad / f16_scale / f32_mad / attn_f16 bit-identical to ref (%d bad)", tname, bad);
    /* swiglu: values across exp's range (the vector lanes and the scalar
     * fallbacks beyond |x| ~ 87), NaN, infinities, -0, odd lengths */
    static const float specials[] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, 88.7f, -88.7f, 100.0f, -200.0f, 1e30f};
    int sw_bad = 0;
    for (int rep = 0; rep < 40; rep++) {
        const int n = 1 + (int)(rnd_u32() % 130);
        float x[130], gt[130], yr[130], yt[130];
        for (int i = 0; i < n; i++) {
            x[i] = (float)((int)(rnd_u32() % 20001) - 10000) / (rep % 2 ? 50.0f : 1000.0f);
            gt[i] = (float)((int)(rnd_u32() % 2001) - 1000) / 300.0f;
            if (rnd_u32() % 9 == 0) x[i] = specials[rnd_u32() % (sizeof specials / sizeof specials[0])];
        }
        kern_table_ref.swiglu(n, yr, x, gt);
        tab->swiglu(n, yt, x, gt);
        sw_bad += memcmp(yr, yt, (size_t)n * sizeof(float)) != 0;
    }
    T_CHECK(sw_bad == 0, "%s swiglu bit-identical to ref (%d/40 bad)", tname, sw_bad);
}

static void test_table(const char *tname, const kern_table *tab)
{
    static float x[MAXN], wsrc[MAXN], y_ref[MAXN], y_tab[MAXN], sw[MAXN], sa[MAXN];
    static _Alignas(32) uint8_t q_ref[MAXN * 4 + GUARD], q_tab[MAXN * 4 + GUARD + 4];
    static _Alignas(32) uint8_t wq_buf[MAXN * 4 + 4];
    static _Alignas(32) uint8_t aq_buf[MAXN * 4 + 4];
    const kern_table *ref = &kern_table_ref;

    for (int k = 0; k < N_TYPES; k++) {
        int t = all_types[k];
        const kern_traits *tr = kern_type_traits(t);
        if (!ref->from_float[t] && !ref->to_float[t] && !ref->vec_dot[t]) continue;
        static const int ns32[] = {32, 64, 96, 160, 4096 + 32};
        static const int nsK[] = {256, 512, 768, 4096 + 256};
        static const int ns1[] = {1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 255, 4097};
        const int *ns = tr->block_size == 1 ? ns1 : tr->block_size == 32 ? ns32 : nsK;
        int nn = tr->block_size == 1 ? 15 : tr->block_size == 32 ? 5 : 4;
        int ff_bad = 0, tf_bad = 0, vd_bad = 0, n_vd = 0;
        double worst = 0;
        for (int in = 0; in < nn; in++) {
            int n = ns[in];
            size_t rs = kern_row_size(t, n);
            /* from_float: the activation converter for vec_dot types, the
             * weight quantizer for the others; bit-identical, no overrun.
             * Output at a 2-byte offset: rows inside tensors are 2-aligned. */
            if (ref->from_float[t] && tab->from_float[t]) {
                for (int rep = 0; rep < 7; rep++) {
                    if (t == tr->vec_dot_type) fill_acts(x, n); else fill_weights(x, n);
                    if (rep >= 4 && t != tr->vec_dot_type) continue;
                    /* activations with edge values: the block maximum tied
                     * by both signs, a zero block, -0, NaN, huge values */
                    if (rep == 4) for (int j = 0; j < n; j += 7) x[j] = (j / 7) % 2 ? 9.5f : -9.5f;
                    if (rep == 5) for (int j = 0; j < n && j < 256; j++) x[j] = j % 3 ? 0.0f : -0.0f;
                    if (rep == 6) for (int j = 3; j < n; j += 37) x[j] = j % 2 ? NAN : 1e30f;
                    memset(q_ref, 0xa5, rs + GUARD);
                    memset(q_tab, 0xa5, rs + GUARD + 4);
                    ref->from_float[t](x, q_ref, n);
                    tab->from_float[t](x, q_tab + mis(t), n);
                    if (memcmp(q_ref, q_tab + mis(t), rs + GUARD) != 0) {
                        if (ff_bad++ == 0) T_NOTE("%s %s from_float differs at n=%d (input kind %d)", tname, tr->name, n, rep);
                    }
                }
            }
            /* to_float: identical floats. */
            if (ref->to_float[t] && tab->to_float[t] && ref->from_float[t]) {
                fill_weights(x, n);
                ref->from_float[t](x, q_ref, n);
                memcpy(q_tab + mis(t), q_ref, rs);
                ref->to_float[t](q_ref, y_ref, n);
                y_tab[n] = 12345.0f;
                tab->to_float[t](q_tab + mis(t), y_tab, n);
                if (memcmp(y_ref, y_tab, (size_t)n * 4) != 0 || y_tab[n] != 12345.0f) {
                    if (tf_bad++ == 0) T_NOTE("%s %s to_float differs at n=%d", tname, tr->name, n);
                }
            }
            /* vec_dot on quantized weights and reference-converted activations. */
            int vt = tr->vec_dot_type;
            if (ref->vec_dot[t] && tab->vec_dot[t] && ref->from_float[t] && ref->from_float[vt]) {
                for (int rep = 0; rep < 3; rep++) {
                    fill_weights(wsrc, n);
                    fill_acts_ex(x, n, 0);
                    uint8_t *wq = wq_buf + mis(t), *aq = aq_buf + (rep & 1) * mis(vt);  /* unaligned rows */
                    ref->from_float[t](wsrc, wq, n);
                    ref->from_float[vt](x, aq, n);
                    float s_ref = NAN, s_tab = NAN;
                    ref->vec_dot[t](n, &s_ref, wq, aq);
                    tab->vec_dot[t](n, &s_tab, wq, aq);
                    double dot, mag;
                    dequant_dot(t, vt, n, wq, aq, sw, sa, &dot, &mag);
                    double err = fabs((double)s_tab - s_ref), tol = VEC_DOT_RTOL * mag + 1e-30;
                    double fmt_tol = tol + min_term_slack(t, n, wq, aq);
                    n_vd++;
                    if (mag > 0 && err / mag > worst) worst = err / mag;
                    if (memcmp(&s_tab, &s_ref, sizeof s_ref) != 0 || !(fabs((double)s_ref - dot) <= fmt_tol)) {
                        if (vd_bad++ == 0)
                            T_NOTE("%s %s vec_dot n=%d: tab %.9g ref %.9g dequant-dot %.9g (sum|t| %.3g)",
                                   tname, tr->name, n, s_tab, s_ref, dot, mag);
                    }
                }
            }
        }
        if (ref->from_float[t] && tab->from_float[t])
            T_CHECK(ff_bad == 0, "%s %s from_float bit-identical to ref (%d bad)", tname, tr->name, ff_bad);
        if (ref->to_float[t] && tab->to_float[t])
            T_CHECK(tf_bad == 0, "%s %s to_float identical to ref (%d bad)", tname, tr->name, tf_bad);
        if (n_vd)
            T_CHECK(vd_bad == 0, "%s %s vec_dot bit-identical to ref, ref within %.0e of the exact dot (%d/%d bad, worst %.2e)",
                    tname, tr->name, VEC_DOT_RTOL, vd_bad, n_vd, worst);
    }
}

/* mul_mat (through kern_mul_mat, with or without a table kernel):
 * every output bit-identical to the reference vec_dot of its pair. */
static void test_mul_mat(const char *tname, const kern_table *tab)
{
    /* small odd tiles, then the SIMD tiles' shapes: 16-row groups plus
     * leftovers, decode (nc 1..4) and prefill panels (nc up to 130) */
    static const int shapes[][3] = {{64, 1, 1}, {64, 4, 1}, {96, 7, 3}, {256, 8, 5}, {512, 13, 8}, {4096, 5, 2},
                                    {256, 16, 1}, {512, 32, 2}, {2048, 37, 3}, {768, 16, 4}, {256, 48, 9},
                                    {512, 19, 33}, {1024, 16, 130}, {2816, 33, 17},
                                    {12288, 16, 3}, {16384, 17, 6},  /* long rows: the kernels' own fallbacks */
                                    {20480, 32, 2}};                 /* packed: rows in K-pieces */
    static float x[20480];
    int bad = 0, checked = 0, tested = 0, pk_bad = 0, pk_checked = 0;
    for (int k = 0; k < N_TYPES; k++) {
        int t = all_types[k];
        const kern_traits *tr = kern_type_traits(t);
        int vt = tr->vec_dot_type;
        if (!tab->vec_dot[t] || !kern_table_ref.from_float[t] || !kern_table_ref.from_float[vt]) continue;
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            int n = shapes[sh][0], nr = shapes[sh][1], nc = shapes[sh][2];
            if (n % tr->block_size) continue;
            size_t wrs = kern_row_size(t, n) + mis(t), ars = kern_row_size(vt, n) + 3 * mis(vt);  /* odd strides */
            uint8_t *w = malloc(wrs * nr), *a = malloc(ars * nc);
            float *sm = malloc(sizeof(float) * (size_t)(nr + 3) * nc), *ref = malloc(sizeof(float) * (size_t)nr * nc);
            if (!w || !a || !sm || !ref) { free(w); free(a); free(sm); free(ref); return; }
            for (int r = 0; r < nr; r++) { fill_weights(x, n); kern_table_ref.from_float[t](x, w + r * wrs, n); }
            for (int c = 0; c < nc; c++) { fill_acts_ex(x, n, 0); kern_table_ref.from_float[vt](x, a + c * ars, n); }
            /* ref[c * nr + r]: the reference vec_dot of each pair, once */
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++)
                    kern_table_ref.vec_dot[t](n, &ref[(size_t)c * nr + r], w + r * wrs, a + c * ars);
            kern_mul_mat(tab, t, n, nr, nc, sm, (size_t)nr + 3, w, wrs, a, ars);
            for (int c = 0; c < nc; c++)
                for (int r = 0; r < nr; r++) {
                    const float *rf = &ref[(size_t)c * nr + r];
                    checked++;
                    if (memcmp(rf, &sm[(size_t)c * (nr + 3) + r], 4) != 0 && bad++ == 0)
                        T_NOTE("%s %s mul_mat n=%d nr=%d nc=%d (%d,%d): %.9g vs ref %.9g", tname, tr->name,
                               n, nr, nc, r, c, sm[(size_t)c * (nr + 3) + r], *rf);
                }
            /* the packed layout: whole 16-row groups, called from group 0 and
             * (when there are two) from group 1 */
            const int nr16 = nr / KERN_PACK_ROWS * KERN_PACK_ROWS;
            const size_t rs = kern_row_size(t, n);
            uint8_t *pk = tab->pack[t] && nr16 ? malloc(rs * (size_t)nr16) : NULL;
            if (pk) {
                tab->pack[t](n, nr16, w, wrs, pk);
                for (int g0 = 0; g0 < nr16 / KERN_PACK_ROWS && g0 < 2; g0++) {
                    const int r0 = g0 * KERN_PACK_ROWS;
                    memset(sm, 0xff, sizeof(float) * (size_t)(nr + 3) * nc);
                    tab->mul_mat_packed[t](n, nr16 - r0, nc, sm, (size_t)nr + 3, pk + (size_t)r0 * rs, rs, a, ars);
                    for (int c = 0; c < nc; c++)
                        for (int r = r0; r < nr16; r++) {
                            const float *rf = &ref[(size_t)c * nr + r];
                            pk_checked++;
                            if (memcmp(rf, &sm[(size_t)c * (nr + 3) + r - r0], 4) != 0 && pk_bad++ == 0)
                                T_NOTE("%s %s mul_mat_packed n=%d nr=%d nc=%d from row %d (%d,%d): %.9g vs ref %.9g",
                                       tname, tr->name, n, nr16 - r0, nc, r0, r, c, sm[(size_t)c * (nr + 3) + r - r0],
                                       *rf);
                        }
                }
                free(pk);
            }
            free(w); free(a); free(sm); free(ref);
        }
        tested++;
    }
    T_CHECK(bad == 0 && checked > 0, "%s mul_mat bit-identical to ref vec_dot (%d types, %d outputs, %d bad)",
            tname, tested, checked, bad);
    if (pk_checked)
        T_CHECK(pk_bad == 0, "%s mul_mat_packed bit-identical to ref vec_dot (%d outputs, %d bad)", tname, pk_checked,
                pk_bad);
}

static void test_tables(void)
{
    T_CHECK(kern_select("ref") == &kern_table_ref, "kern_select(\"ref\") is the reference");
    T_CHECK(kern_select("no-such-isa") == NULL, "kern_select of an unknown name is NULL");
    const kern_table *best = kern_select(NULL);
    T_CHECK(best != NULL, "kern_select(NULL) picks %s (compiled: %s)", best ? best->name : "-",
            kern_compiled_names());
    int full = 1;
    for (int t = 0; t < KERN_TYPE_COUNT && best; t++)
        if ((kern_table_ref.from_float[t] && !best->from_float[t]) ||
            (kern_table_ref.to_float[t] && !best->to_float[t]) ||
            (kern_table_ref.vec_dot[t] && !best->vec_dot[t]))
            full = 0;
    T_CHECK(full, "the selected table has every entry the reference has");

    test_table("ref", &kern_table_ref);
    test_mul_mat("ref", &kern_table_ref);
    static const char *const isas[] = {"avx2", "avx512", "neon", "dotprod"};
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!strstr(kern_compiled_names(), isas[i])) continue;
        const kern_table *tab = kern_select(isas[i]);
        if (!tab) {
            T_SKIP("this CPU lacks the ISA", "%s table vs ref", isas[i]);
            continue;
        }
        test_table(isas[i], tab);
        test_f16_ops(isas[i], tab);
        test_mul_mat(isas[i], tab);
    }
}

/* ------------------------------------------------ format properties */

/* Activation conversion: arithmetic of ggml's x86 build (see ref.c). */
static void test_q8_semantics(void)
{
    float x[32];
    blk_q8_0 b;
    blk_q8_1 b1;
    for (int j = 0; j < 32; j++) x[j] = 0;
    x[0] = 127.0f; x[1] = 0.5f; x[2] = 1.5f; x[3] = 2.5f; x[4] = -2.5f; x[5] = -0.5f; x[6] = 3.5f;
    kern_table_ref.from_float[KERN_Q8_0](x, &b, 32);
    T_CHECK(b.qs[0] == 127 && b.qs[1] == 0 && b.qs[2] == 2 && b.qs[3] == 2 && b.qs[4] == -2 &&
            b.qs[5] == 0 && b.qs[6] == 4 && b.d == kern_f32_to_f16(1.0f),
            "q8_0 activations: ties round to even (ggml x86), d = amax/127");
    kern_table_ref.from_float[KERN_Q8_1](x, &b1, 32);
    T_CHECK(memcmp(b1.qs, b.qs, 32) == 0 && b1.s == kern_f32_to_f16(127 + 0 + 2 + 2 - 2 + 0 + 4),
            "q8_1 activations: same quants, s = d * sum(q)");
    for (int j = 0; j < 32; j++) x[j] = 0;
    kern_table_ref.from_float[KERN_Q8_0](x, &b, 32);
    int zero = b.d == 0;
    for (int j = 0; j < 32; j++) zero &= b.qs[j] == 0;
    T_CHECK(zero, "q8_0 of a zero block is all zero");
    /* 127/amax (one division) vs 1/(amax/127): differ for some amax; check
     * we use the former on a value where they disagree. */
    int found = 0, agree = 1;
    for (int k = 1; k < 200000 && !found; k++) {
        float amax = 1.0f + (float)k * 0x1p-20f;
        float id_a = 127.f / amax, id_b = 1.0f / (amax / 127.f);
        if (id_a == id_b) continue;
        for (int v = 1; v < 127 && !found; v++) {
            float xv = ((float)v + 0.5f) / id_a;  /* near a tie */
            float qa = xv * id_a, qb = xv * id_b;
            if (rintf(qa) == rintf(qb)) continue;
            for (int j = 0; j < 32; j++) x[j] = 0;
            x[0] = amax; x[1] = xv;
            kern_table_ref.from_float[KERN_Q8_0](x, &b, 32);
            agree = b.qs[1] == (int8_t)rintf(qa);
            found = 1;
        }
    }
    T_CHECK(found && agree, "q8_0 activations scale by 127/amax, not 1/d");
}

/* quantize -> dequantize error within the format's bound, per block:
 *   _0 types (symmetric, d = max/-2^(b-1)): |err| <= |d| (the far end may
 *     clip one step) and <= |d|/2 elsewhere, plus the f16 rounding of d;
 *   _1 types (d = (max-min)/(2^b-1), m = min): |err| <= d/2 + f16 rounding
 *     of d and m;
 *   Q8_0/Q8_1: |err| <= |d|/2 + f16 rounding of d.
 * f16 rounding of a scale s: relative 2^-11, times the largest quant. */
static void test_roundtrip(void)
{
    static float x[4096], y[4096];
    static _Alignas(32) uint8_t q[4096 * 4];
    static const struct { int t; int lo, hi; int asym; } fmt[] = {
        {KERN_Q4_0, -8, 7, 0}, {KERN_Q5_0, -16, 15, 0}, {KERN_Q8_0, -127, 127, 0},
        {KERN_Q8_1, -127, 127, 0}, {KERN_Q4_1, 0, 15, 1}, {KERN_Q5_1, 0, 31, 1},
    };
    for (size_t f = 0; f < sizeof fmt / sizeof fmt[0]; f++) {
        int t = fmt[f].t, n = 4096, bad = 0;
        double worst = 0, sq = 0, sx = 0;
        fill_weights(x, n);
        for (int i = 0; i < 64; i++) x[i] = 0;            /* a zero block */
        for (int i = 64; i < 96; i++) x[i] = 3.0f;        /* a constant block */
        for (int i = 96; i < 128; i++) x[i] = (float)(i - 112) * 0.25f;
        kern_table_ref.from_float[t](x, q, n);
        kern_table_ref.to_float[t](q, y, n);
        for (int b = 0; b < n / 32; b++) {
            float mn = x[b * 32], mx = x[b * 32], amax = 0;
            for (int j = 0; j < 32; j++) {
                float v = x[b * 32 + j];
                if (v < mn) mn = v;
                if (v > mx) mx = v;
                if (fabsf(v) > amax) amax = fabsf(v);
            }
            double step = fmt[f].asym ? (mx - mn) / fmt[f].hi : amax / (double)(-fmt[f].lo);
            double f16r = 0x1p-11 * (fmt[f].asym ? (fmt[f].hi * step + fabs(mn)) : amax) + 1e-7 * amax;
            double far = (!fmt[f].asym && fmt[f].lo != -127) ? step : step / 2;
            for (int j = 0; j < 32; j++) {
                double e = fabs((double)y[b * 32 + j] - x[b * 32 + j]);
                sq += e * e;
                sx += (double)x[b * 32 + j] * x[b * 32 + j];
                if (e > far + f16r + 1e-12) {
                    if (bad++ == 0) T_NOTE("%s block %d elem %d: x %g y %g bound %g",
                                           kern_type_traits(t)->name, b, j, x[b * 32 + j],
                                           y[b * 32 + j], far + f16r);
                }
                if (step > 0 && e / step > worst) worst = e / step;
            }
        }
        T_CHECK(bad == 0, "%s quantize/dequantize error within bound (worst %.3f steps, rms rel %.2e)",
                kern_type_traits(t)->name, worst, sqrt(sq / sx));
    }
}

/* K-quants and IQ4: relative RMS error of quantize -> dequantize on
 * Gaussian weights (with outliers) below a per-type bound, about 1.3x
 * what llama.cpp's quantizers (which ours reproduce) reach here. */
static void test_roundtrip_k(void)
{
    static float x[8192], y[8192];
    static _Alignas(32) uint8_t q[8192 * 2];
    static const struct { int t; double max_rel; } fmt[] = {
        {KERN_Q2_K, 0.38}, {KERN_Q3_K, 0.20}, {KERN_Q4_K, 0.095}, {KERN_Q5_K, 0.048},
        {KERN_Q6_K, 0.025}, {KERN_IQ4_NL, 0.10}, {KERN_IQ4_XS, 0.10}, {KERN_Q8_K, 0.013},
    };
    for (size_t f = 0; f < sizeof fmt / sizeof fmt[0]; f++) {
        int t = fmt[f].t, n = 8192;
        fill_weights(x, n);
        for (int i = 0; i < 256; i++) x[i] = 0;  /* a zero super-block */
        kern_table_ref.from_float[t](x, q, n);
        kern_table_ref.to_float[t](q, y, n);
        double e2 = 0, x2 = 0, zmax = 0;
        for (int i = 0; i < n; i++) {
            e2 += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
            x2 += (double)x[i] * x[i];
            if (i < 256) zmax = fmax(zmax, fabs(y[i]));
        }
        double rel = sqrt(e2 / x2);
        T_CHECK(rel <= fmt[f].max_rel && zmax == 0,
                "%s quantize/dequantize: rms error %.4f of rms (bound %.3f), zero block stays zero",
                kern_type_traits(t)->name, rel, fmt[f].max_rel);
    }
}

/* --------------------------------------- real llama.cpp-quantized data */

/* Dequantize each tensor of a quantized file and compare, per 32-element
 * block, with the same tensor of the F32 original: error within the
 * format's bound (the one of test_roundtrip, with the original's block
 * statistics), i.e. our to_float reads llama.cpp's blocks as it does. */
static void check_model_against_f32(const char *qrel, const char *frel)
{
    char qp[512], fp[512];
    if (!t_shared(qp, sizeof qp, qrel) || !t_shared(fp, sizeof fp, frel)) {
        T_SKIP(T_NO_SHARED, "dequantize %s vs %s", qrel, frel);
        return;
    }
    gguf_file gq, gf;
    if (gguf_open(&gq, qp) < 0) { T_CHECK(0, "open %s: %s", qrel, gq.err); return; }
    if (gguf_open(&gf, fp) < 0) { T_CHECK(0, "open %s: %s", frel, gf.err); gguf_close(&gq); return; }
    int n_checked = 0, n_bad = 0, n_missing = 0;
    long rq_blocks = 0, rq_same = 0;
    double worst_rel = 0;
    char types_seen[256] = "";
    for (uint64_t i = 0; i < gq.n_tensors; i++) {
        const gguf_tensor *tq = &gq.tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)tq->name.len, tq->name.ptr);
        const gguf_tensor *tf = gguf_find_tensor(&gf, name);
        if (!tf || tf->type != KERN_F32) continue;
        kern_to_float_fn tof = kern_table_ref.to_float[tq->type];
        if (!tof) { n_missing++; continue; }
        int64_t nel = 1;
        for (int d = 0; d < tq->n_dims; d++) nel *= tq->ne[d];
        float *y = malloc((size_t)nel * 4);
        if (!y) break;
        int64_t ne0 = tq->ne[0], nrows = nel / ne0;
        size_t rs = kern_row_size(tq->type, ne0);
        for (int64_t r = 0; r < nrows; r++)
            tof((const uint8_t *)tq->data + r * rs, y + r * ne0, ne0);
        const float *x = tf->data;
        const kern_traits *tr = kern_type_traits(tq->type);
        int bs = tr->block_size < 32 ? 32 : tr->block_size;
        if (ne0 % bs) bs = (int)ne0;
        /* loose universal bound per block: 0.5 step of a b-bit grid over
         * the block range, b by type; (K-quants: relative to amax) */
        double bits;
        switch (tq->type) {
        case KERN_F16: case KERN_BF16: bits = tq->type == KERN_F16 ? 11 : 8; break;
        case KERN_Q8_0: bits = 7; break;
        case KERN_Q5_0: case KERN_Q5_1: case KERN_Q5_K: bits = 4; break;
        case KERN_Q6_K: bits = 5; break;
        case KERN_Q4_0: case KERN_Q4_1: case KERN_Q4_K: case KERN_IQ4_NL: case KERN_IQ4_XS: bits = 3; break;
        case KERN_Q3_K: bits = 2; break;
        case KERN_Q2_K: bits = 1; break;
        default: bits = 7;
        }
        int bad = 0;
        for (int64_t b = 0; b < nel / bs; b++) {
            double amax = 0;
            for (int j = 0; j < bs; j++) amax = fmax(amax, fabs(x[b * bs + j]));
            double bound = (tq->type == KERN_F16 || tq->type == KERN_BF16)
                               ? 0 : amax * pow(2, -bits) * 1.06 + 1e-12;
            for (int j = 0; j < bs; j++) {
                double e = fabs((double)y[b * bs + j] - x[b * bs + j]);
                double bnd = bound ? bound : fabs(x[b * bs + j]) * pow(2, -bits) + 1e-7;
                if (e > bnd) bad++;
                if (amax > 0 && e / amax > worst_rel) worst_rel = e / amax;
            }
        }
        if (bad) { n_bad++; T_NOTE("%s: tensor %s (%s): %d elements beyond bound", qrel, name, tr->name, bad); }
        /* requantize the F32 original: llama-quantize's exact bytes? */
        uint8_t *row = malloc(rs);
        for (int64_t r = 0; row && r < nrows; r++) {
            if (kern_quantize_row(tq->type, x + r * ne0, row, ne0) < 0) break;
            for (size_t b = 0; b < rs / tr->type_size; b++, rq_blocks++)
                rq_same += memcmp(row + b * tr->type_size,
                                  (const uint8_t *)tq->data + r * rs + b * tr->type_size, tr->type_size) == 0;
        }
        free(row);
        if (!strstr(types_seen, tr->name) && strlen(types_seen) + strlen(tr->name) + 2 < sizeof types_seen) {
            strcat(types_seen, " ");
            strcat(types_seen, tr->name);
        }
        n_checked++;
        free(y);
    }
    if (n_missing)
        T_NOTE("%s: %d tensors of types without to_float yet", qrel, n_missing);
    T_CHECK(n_checked > 0 && n_bad == 0, "dequantized %s matches F32 original (%d tensors:%s; worst err %.3g of block amax)",
            qrel, n_checked, types_seen, worst_rel);
    T_CHECK(rq_blocks > 0 && rq_same == rq_blocks,
            "kern_quantize_row of the F32 original reproduces %s byte for byte (%ld/%ld blocks)",
            qrel, rq_same, rq_blocks);
    gguf_close(&gq);
    gguf_close(&gf);
}

static void test_real_models(void)
{
    static const char *const llama[] = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "F16", "BF16"};
    char q[128];
    for (size_t i = 0; i < sizeof llama / sizeof llama[0]; i++) {
        snprintf(q, sizeof q, "models/llama/stories260K-%s.gguf", llama[i]);
        check_model_against_f32(q, "models/llama/stories260K.gguf");
    }
    static const char *const syn[] = {"Q8_0-pure", "Q6_K-pure", "Q5_K_M", "Q4_K_M", "Q4_K-pure",
                                      "Q3_K_M", "Q2_K", "IQ4_NL-pure", "IQ4_XS-pure"};
    for (size_t i = 0; i < sizeof syn / sizeof syn[0]; i++) {
        snprintf(q, sizeof q, "models/synthetic/tiny-llama-256d2l-%s.gguf", syn[i]);
        check_model_against_f32(q, "models/synthetic/tiny-llama-256d2l-F32.gguf");
    }
}

int main(void)
{
    test_traits();
    test_f16();
    test_bf16();
    test_expf();
    test_q8_semantics();
    test_roundtrip();
    test_roundtrip_k();
    test_tables();
    test_real_models();
    return t_done();
}
