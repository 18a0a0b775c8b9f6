/* kernels/x86_avx512_q5.c — AVX-512 (VNNI) matrix kernels: Q5_0 weights
 * times Q8_0 activations, Q4_1 and Q5_1 weights times Q8_1 activations.
 * Declared in quant.h, entries of kern_table_avx512.mul_mat; compiled with
 * the avx512 flags, called only after kern_select checked the CPU. Same
 * contract as kern_mul_mat_fn: any nr, nc, 2-byte aligned rows and strides,
 * every output bit-identical to ref.c's vec_dot of its pair. No
 * allocation; up to ~64 KiB of stack (prefill panel and accumulators,
 * decode activation table).
 *
 * What must be kept (ref.c, "lane" types): per output, 8 float lanes; for
 * each 32-block b in order, lane k gets the exact integer
 *     L_k = sum of q_w[e] * q_a[e] over e = 4k..4k+3
 * (q_w[e] for e < 16 from the low nibble of qs[e], for e >= 16 from the
 * high nibble of qs[e - 16]; the 5th bit of element e is bit e of qh), then
 *     acc[k] = fmaf(f16(w.d) * f16(a.d), (float)L_k, acc[k])
 * and the output is hsum8(acc) = ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)).
 * Q4_1 / Q5_1 add a second chain summs = fmaf(f16(w.m), f16(a.s), summs)
 * per block, and the output is hsum8(acc) + summs. Integers are exact in
 * any order; only those float steps, per (row, column, lane), are fixed.
 *
 * Weights as unsigned bytes u through vpdpbusd (unsigned x signed): Q4_1
 * u = nibble, Q5_1 u = nibble | bit << 4 (both are the quants themselves);
 * Q5_0 u = nibble | bit << 4 = q + 16, so its lane starts at
 * -16 * (sum of the activation's 4 bytes). Every lane also starts at
 * KX_MAGIC: the int32 KX_MAGIC + L is the float 1.5 * 2^23 + L exactly
 * (|L| <= 4 * 31 * 128 < 2^22), and one subtraction (an add-pipe op, where
 * vcvtdq2ps takes both FMA pipes on Zen 4) gives (float)L exactly.
 *
 * Two shapes, by the number of columns nc (tokens of the step):
 *  - nc <= 8 (decode, a few users): memory-bound (gemt_*). A ymm of ref's
 *    8 lanes per row and column: per (row, block) a broadcast load, a
 *    shift and an and unpack the nibbles, the qh bits go straight into a
 *    mask register for one masked add (bit e = byte e of the 32 quants),
 *    then per column dpbusd, sub, fma. The activation side (lane starts,
 *    scales) is a table made once per call. Four rows go side by side (one
 *    row alone is bound by its fma chain, 4 cycles per block), and the
 *    next call's rows are prefetched into L2 meanwhile, which keeps the
 *    DRAM reads sequential (without it: ~7 GB/s instead of ~18). Rows too
 *    long for the table take gemv (the activation side per row).
 *  - nc > 8 (prefill): compute-bound. A K-chunk of 16 rows is repacked
 *    "rows in lanes" (zmm k of block b: lane r = u bytes 4k..4k+3 of row
 *    r), so per (block, lane k, column) one vpdpbusd with the activation's
 *    4 bytes broadcast, one sub and one fma serve 16 rows, and hsum8 is 7
 *    vector adds at the end (panel_*).
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/x86_avx512_impl.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* Block layouts (byte offsets), per weight type t; activation blocks are
 * Q8_0 (d, qs) for Q5_0 and Q8_1 (d, s, qs) for the _1 types. */
AI int w_size(int t) { return t == KERN_Q5_0 ? 22 : t == KERN_Q4_1 ? 20 : 24; }
AI int w_qs(int t) { return t == KERN_Q5_0 ? 6 : t == KERN_Q4_1 ? 4 : 8; }
AI int w_qh(int t) { return t == KERN_Q5_0 ? 2 : 4; } /* not for Q4_1 */
AI int has_qh(int t) { return t != KERN_Q4_1; }
AI int has_m(int t) { return t != KERN_Q5_0; } /* min at byte 2; activation s at byte 2 */
AI int a_size(int t) { return t == KERN_Q5_0 ? 34 : 36; }
AI int a_qs(int t) { return t == KERN_Q5_0 ? 2 : 4; }

AI float h2f(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* The lane start values of one activation block (32 quants at q): KX_MAGIC,
 * and for Q5_0 minus 16 * the sum of each 4 bytes. */
AI __m256i lane_start(int t, __m256i aq)
{
    const __m256i magic = _mm256_set1_epi32(KX_MAGIC);
    if (t != KERN_Q5_0) return magic;
    return _mm256_sub_epi32(magic, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(16), aq));
}

/* ------------------------------------------------------------------ gemv */

#define GNC 3 /* most columns per pass */

/* The 32 u bytes of the weight block at x, in element order (byte e of
 * the ymm = element e: low nibbles, then high nibbles, + 16 where bit e of
 * qh is set). */
AI __m256i w_unpack(int t, const uint8_t *x)
{
    /* both halves = the 16 qs bytes (a broadcast load: no ALU op), the
     * upper shifted right by 4 */
    const __m256i v = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(x + w_qs(t))));
    const __m256i sh = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4, 4, 4, 4, 4);
    __m256i u = _mm256_and_si256(_mm256_srlv_epi16(v, sh), _mm256_set1_epi8(0x0f));
    if (has_qh(t)) {
        uint32_t h;
        memcpy(&h, x + w_qh(t), 4);
        u = _mm256_mask_add_epi8(u, _cvtu32_mask32(h), u, _mm256_set1_epi8(16));
    }
    return u;
}

/* NC (1..GNC) columns starting at column 0 of a / s, row after row, each
 * front to back, the activation side recomputed per row: the fallback for
 * rows too long for gemt's table. */
AI void gemv_cols(int t, int nb, int nr, int NC, float *s, size_t ldc, const uint8_t *w, size_t wstride,
                  const uint8_t *a, size_t astride)
{
    const __m256 magic = _mm256_set1_ps(KX_MAGIC_F);
    const size_t ws = (size_t)w_size(t), as = (size_t)a_size(t);
    for (int r = 0; r < nr; r++) {
        const uint8_t *x = w + (size_t)r * wstride;
        __m256 acc[GNC];
        __m128 sm[GNC];
        for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps(), sm[c] = _mm_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const uint8_t *xb = x + (size_t)b * ws;
            const __m256i u = w_unpack(t, xb);
            const float dw = h2f(xb);
            _Pragma("GCC unroll 4")
            for (int c = 0; c < NC; c++) {
                const uint8_t *ab = a + (size_t)c * astride + (size_t)b * as;
                const __m256i aq = loadu256(ab + a_qs(t));
                const __m256i l = _mm256_dpbusd_epi32(lane_start(t, aq), u, aq);
                const __m256 d = _mm256_set1_ps(dw * h2f(ab));
                acc[c] = _mm256_fmadd_ps(d, _mm256_sub_ps(_mm256_castsi256_ps(l), magic), acc[c]);
                if (has_m(t)) sm[c] = _mm_fmadd_ss(_mm_set_ss(h2f(xb + 2)), _mm_set_ss(h2f(ab + 2)), sm[c]);
            }
        }
        for (int c = 0; c < NC; c++) {
            float v = hsum8(acc[c]);
            if (has_m(t)) v = v + _mm_cvtss_f32(sm[c]);
            s[(size_t)c * ldc + r] = v;
        }
    }
}

AI void gemv(int t, int nb, int nr, int nc, float *s, size_t ldc, const uint8_t *w, size_t wstride,
             const uint8_t *a, size_t astride)
{
    for (int c = 0; c < nc;) {
        const int left = nc - c;
        float *sc = s + (size_t)c * ldc;
        const uint8_t *acol = a + (size_t)c * astride;
        if (left >= 3) {
            gemv_cols(t, nb, nr, 3, sc, ldc, w, wstride, acol, astride);
            c += 3;
        } else if (left == 2) {
            gemv_cols(t, nb, nr, 2, sc, ldc, w, wstride, acol, astride);
            c += 2;
        } else {
            gemv_cols(t, nb, nr, 1, sc, ldc, w, wstride, acol, astride);
            c += 1;
        }
    }
}

/* The same with an activation table and several rows side by side. A
 * single row is one fma chain per block (4 cycles on Zen 4): 22 bytes per
 * 4 cycles is below DRAM speed, so TR rows go together (independent
 * chains); their reads are kept sequential in DRAM by prefetching the next
 * call's rows into L2 meanwhile (prefetch_*), which is what lets several
 * rows side by side stream at full speed. Per pass of up to TNC columns
 * the table holds each (column, block)'s lane starts, f16(a.d) and
 * f16(a.s) as floats; per row and 16 blocks the products d_w * d_a
 * (ref's d) and f16(w.m) are made in one go (dchunk). Per (row, block):
 * unpack (4 ops), per column dpbusd, sub, fma. */
#define TNC 4     /* most columns per pass */
#define TROWS 4   /* rows side by side */
#define TBLK 512  /* table capacity in (column, block) pairs */

typedef struct {
    int32_t st[TBLK][8];  /* [c * nb + b]: lane starts (Q5_0) */
    float da[TBLK + 16];  /* [c * nb + b]: f16(a.d); 16 spare (read past the end, unused) */
    float sa[TBLK];       /* [c * nb + b]: f16(a.s) (_1 types) */
} atab;

typedef struct {
    uintptr_t next; /* first byte after this call's rows (an address only: may lie past the mapping) */
    size_t rate;    /* bytes to prefetch per unit of progress, times 256 */
    size_t done;
} wprefetch;

/* total bytes from next, spread over den units of progress (one division
 * per call, not per step: a 64-bit divq is ~40 cycles). */
AI wprefetch prefetch_init(uintptr_t next, size_t total, size_t den)
{
    wprefetch pf = {next, den ? (total << 8) / den : 0, 0};
    return pf;
}

/* Prefetch up to progress num (prefetches never fault, so running past
 * the weights' end is harmless). */
AI void prefetch_upto(wprefetch *pf, size_t num)
{
    size_t tgt = (num * pf->rate) >> 8;
    for (; pf->done < tgt; pf->done += 64) _mm_prefetch((const char *)(pf->next + pf->done), _MM_HINT_T2);
}

/* cnt (<= 16) halves at p, p + step, ... into h (the rest: 0). Stored
 * one chunk ahead of their use: a vector load right after 16 scalar
 * stores cannot be forwarded and stalls. */
AI void halves_put(uint16_t h[16], const uint8_t *p, size_t step, int cnt)
{
    if (cnt == 16) {
        _Pragma("GCC unroll 16")
        for (int i = 0; i < 16; i++) memcpy(&h[i], p + (size_t)i * step, 2);
        return;
    }
    memset(h, 0, 32);
    for (int i = 0; i < cnt; i++) memcpy(&h[i], p + (size_t)i * step, 2);
}

AI void gemt_rows(int t, int nb, int R, int NC, float *s, size_t ldc, const uint8_t *w, size_t wstride,
                  const uint8_t *a, size_t astride, const atab *tb, wprefetch *pf, size_t prog)
{
    const __m256 magic = _mm256_set1_ps(KX_MAGIC_F);
    const size_t ws = (size_t)w_size(t), as = (size_t)a_size(t);
    __m256 acc[TROWS][TNC];
    __m128 sm[TROWS][TNC];
    uint16_t hd[2][TROWS][16], hm[2][TROWS][16]; /* f16(w.d), f16(w.m) of a chunk, double-buffered */
    _Pragma("GCC unroll 16")
    for (int i = 0; i < R; i++)
        _Pragma("GCC unroll 16")
        for (int c = 0; c < NC; c++) acc[i][c] = _mm256_setzero_ps(), sm[i][c] = _mm_setzero_ps();
    _Pragma("GCC unroll 16")
    for (int i = 0; i < R; i++) {
        const int cnt = nb < 16 ? nb : 16;
        halves_put(hd[0][i], w + (size_t)i * wstride, ws, cnt);
        if (has_m(t)) halves_put(hm[0][i], w + (size_t)i * wstride + 2, ws, cnt);
    }
    for (int b0 = 0; b0 < nb; b0 += 16) {
        const int cnt = nb - b0 < 16 ? nb - b0 : 16, slot = (b0 / 16) & 1;
        float dd[TROWS][TNC][16], mw[TROWS][16];
        _Pragma("GCC unroll 16")
        for (int i = 0; i < R; i++) {
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)hd[slot][i]));
            _Pragma("GCC unroll 16")
            for (int c = 0; c < NC; c++)
                _mm512_storeu_ps(dd[i][c], _mm512_mul_ps(dw, _mm512_loadu_ps(&tb->da[c * nb + b0])));
            if (has_m(t)) _mm512_storeu_ps(mw[i], _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)hm[slot][i])));
        }
        if (b0 + 16 < nb) {
            const int nx = nb - b0 - 16 < 16 ? nb - b0 - 16 : 16;
            _Pragma("GCC unroll 16")
            for (int i = 0; i < R; i++) {
                const uint8_t *x = w + (size_t)i * wstride + (size_t)(b0 + 16) * ws;
                halves_put(hd[slot ^ 1][i], x, ws, nx);
                if (has_m(t)) halves_put(hm[slot ^ 1][i], x + 2, ws, nx);
            }
        }
        prefetch_upto(pf, prog + (size_t)(b0 + cnt) * (size_t)R);
        for (int j = 0; j < cnt; j++) {
            const int b = b0 + j;
            _Pragma("GCC unroll 16")
            for (int i = 0; i < R; i++) {
                const __m256i u = w_unpack(t, w + (size_t)i * wstride + (size_t)b * ws);
                _Pragma("GCC unroll 16")
                for (int c = 0; c < NC; c++) {
                    const uint8_t *aq = a + (size_t)c * astride + (size_t)b * as + a_qs(t);
                    const __m256i st = t == KERN_Q5_0 ? loadu256(tb->st[c * nb + b]) : _mm256_set1_epi32(KX_MAGIC);
                    const __m256i l = _mm256_dpbusd_epi32(st, u, loadu256(aq));
                    acc[i][c] = _mm256_fmadd_ps(_mm256_set1_ps(dd[i][c][j]),
                                                _mm256_sub_ps(_mm256_castsi256_ps(l), magic), acc[i][c]);
                    if (has_m(t)) sm[i][c] = _mm_fmadd_ss(_mm_set_ss(mw[i][j]), _mm_set_ss(tb->sa[c * nb + b]), sm[i][c]);
                }
            }
        }
    }
    _Pragma("GCC unroll 16")
    for (int i = 0; i < R; i++)
        _Pragma("GCC unroll 16")
        for (int c = 0; c < NC; c++) {
            float v = hsum8(acc[i][c]);
            if (has_m(t)) v = v + _mm_cvtss_f32(sm[i][c]);
            s[(size_t)c * ldc + i] = v;
        }
}

/* NC columns (1..TNC) of the table, all rows: TROWS at a time, then the
 * rest one by one. */
AI void gemt_cols(int t, int nb, int nr, int NC, float *s, size_t ldc, const uint8_t *w, size_t wstride,
                  const uint8_t *a, size_t astride, const atab *tb, wprefetch *pf)
{
    int r = 0;
    for (; r + TROWS <= nr; r += TROWS)
        gemt_rows(t, nb, TROWS, NC, s + r, ldc, w + (size_t)r * wstride, wstride, a, astride, tb, pf,
                  (size_t)r * nb);
    for (; r < nr; r++)
        gemt_rows(t, nb, 1, NC, s + r, ldc, w + (size_t)r * wstride, wstride, a, astride, tb, pf, (size_t)r * nb);
}

/* nc columns (nc <= 8) in passes of up to TNC that fit the table; 0 if
 * not even one column fits (very long rows): the caller takes gemv. */
AI int gemt(int t, int nb, int nr, int nc, float *s, size_t ldc, const uint8_t *w, size_t wstride,
            const uint8_t *a, size_t astride)
{
    int per = nb ? TBLK / nb : TNC;
    if (per > TNC) per = TNC;
    if (per < 1) return 0;
    const size_t as = (size_t)a_size(t);
    atab tb;
    for (int c0 = 0; c0 < nc; c0 += per) {
        const int NC = nc - c0 < per ? nc - c0 : per;
        const uint8_t *ap = a + (size_t)c0 * astride;
        for (int c = 0; c < NC; c++)
            for (int b = 0; b < nb; b++) {
                const uint8_t *ab = ap + (size_t)c * astride + (size_t)b * as;
                if (t == KERN_Q5_0) _mm256_storeu_si256((__m256i *)tb.st[c * nb + b], lane_start(t, loadu256(ab + a_qs(t))));
                tb.da[c * nb + b] = h2f(ab);
                if (has_m(t)) tb.sa[c * nb + b] = h2f(ab + 2);
            }
        /* the next call's rows (when rows are consecutive), in the last pass */
        wprefetch pf = prefetch_init((uintptr_t)w + (size_t)nr * wstride, c0 + NC >= nc ? (size_t)nr * wstride : 0,
                                     (size_t)nr * (size_t)nb);
        float *sc = s + (size_t)c0 * ldc;
        switch (NC) {
        case 1: gemt_cols(t, nb, nr, 1, sc, ldc, w, wstride, ap, astride, &tb, &pf); break;
        case 2: gemt_cols(t, nb, nr, 2, sc, ldc, w, wstride, ap, astride, &tb, &pf); break;
        case 3: gemt_cols(t, nb, nr, 3, sc, ldc, w, wstride, ap, astride, &tb, &pf); break;
        default: gemt_cols(t, nb, nr, 4, sc, ldc, w, wstride, ap, astride, &tb, &pf); break;
        }
    }
    return 1;
}

/* ----------------------------------------------------------------- panel */

#define P_ROWS 16 /* rows of a panel: one zmm lane per row */
#define P_KC 32   /* blocks per K-chunk (repacked: up to 22 KiB) */
#define P_NCS 64  /* columns per super-tile (accumulators: up to 36 KiB) */
#define P_CT 2    /* columns per register tile */
#define P_ACC 9   /* zmm per column kept between chunks: 8 lanes + summs */

typedef struct {
    __m512i q[P_KC][8]; /* block b, lane group k: lane r = u bytes 4k..4k+3 of row r */
    __m512 dw[P_KC];    /* block b: lane r = f16(d) of row r */
    __m512 mw[P_KC];    /* block b: lane r = f16(m) of row r (_1 types) */
} panel;

/* 4 x 16 bytes -> the 4 128-bit lanes. */
AI __m512i load4x128(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3)
{
    __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)),
                                         _mm_loadu_si128((const __m128i *)p1), 1);
    __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p2)),
                                         _mm_loadu_si128((const __m128i *)p3), 1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* 16 bytes at offset off of the 16 rows, rows in lanes: dword lane r of
 * T[j] = bytes off+4j..off+4j+3 of row r. V[q] holds rows q, 4+q, 8+q,
 * 12+q in its 128-bit lanes; a 4x4 dword transpose inside each 128-bit
 * lane puts row 4m+q in dword lane 4m+q. */
AI void rows_t16(const uint8_t *const rp[16], size_t off, __m512i T[4])
{
    __m512i v0 = load4x128(rp[0] + off, rp[4] + off, rp[8] + off, rp[12] + off);
    __m512i v1 = load4x128(rp[1] + off, rp[5] + off, rp[9] + off, rp[13] + off);
    __m512i v2 = load4x128(rp[2] + off, rp[6] + off, rp[10] + off, rp[14] + off);
    __m512i v3 = load4x128(rp[3] + off, rp[7] + off, rp[11] + off, rp[15] + off);
    __m512i t0 = _mm512_unpacklo_epi32(v0, v1), t1 = _mm512_unpackhi_epi32(v0, v1);
    __m512i t2 = _mm512_unpacklo_epi32(v2, v3), t3 = _mm512_unpackhi_epi32(v2, v3);
    T[0] = _mm512_unpacklo_epi64(t0, t2);
    T[1] = _mm512_unpackhi_epi64(t0, t2);
    T[2] = _mm512_unpacklo_epi64(t1, t3);
    T[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* +16 where the 5th bit is set, lane group k: byte j of dword lane r gets
 * bit 4k + j of row r's qh (dword lane r of qh), i.e. bit 4(k&1) + j of
 * qh byte k/2: that byte copied to the dword's 4 bytes, then tested
 * against 1 << (4(k&1) + j). */
AI __m512i add_hbits(__m512i u, __m512i qh, int k)
{
    const __m512i idx = _mm512_add_epi8(_mm512_set4_epi32(0x0c0c0c0c, 0x08080808, 0x04040404, 0),
                                        _mm512_set1_epi8((char)(k / 2)));
    const __m512i bit = _mm512_set1_epi32(k & 1 ? (int)0x80402010u : 0x08040201);
    const __mmask64 m = _mm512_test_epi8_mask(_mm512_shuffle_epi8(qh, idx), bit);
    return _mm512_mask_add_epi8(u, m, u, _mm512_set1_epi8(16));
}

/* Repack blocks b0..b0+kb of the 16 rows (rp[r], whose byte offsets from
 * w0 are the lanes of off; the scales and qh come by gathers). */
AI void panel_fill(int t, panel *pk, const uint8_t *const rp[16], const uint8_t *w0, __m512i off, int b0, int kb)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int i = 0; i < kb; i++) {
        const size_t boff = (size_t)(b0 + i) * (size_t)w_size(t);
        __m512i T[4], qh = _mm512_setzero_si512();
        rows_t16(rp, boff + (size_t)w_qs(t), T);
        if (has_qh(t)) qh = _mm512_i32gather_epi32(off, w0 + boff + w_qh(t), 1);
        const __m512i g = _mm512_i32gather_epi32(off, w0 + boff, 1); /* d, and m for the _1 types */
        pk->dw[i] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
        if (has_m(t)) pk->mw[i] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(g, 16)));
        _Pragma("GCC unroll 4")
        for (int j = 0; j < 4; j++) {
            __m512i lo = _mm512_and_si512(T[j], m4);
            __m512i hi = _mm512_and_si512(_mm512_srli_epi16(T[j], 4), m4);
            if (has_qh(t)) {
                lo = add_hbits(lo, qh, j);
                hi = add_hbits(hi, qh, 4 + j);
            }
            pk->q[i][j] = lo;
            pk->q[i][4 + j] = hi;
        }
    }
}

/* hsum8 of the 8 lane accumulators (acc[k], lane r = row r), ref order. */
AI __m512 hsum8_rows(const __m512 acc[8])
{
    __m512 t0 = _mm512_add_ps(acc[0], acc[4]), t1 = _mm512_add_ps(acc[1], acc[5]);
    __m512 t2 = _mm512_add_ps(acc[2], acc[6]), t3 = _mm512_add_ps(acc[3], acc[7]);
    return _mm512_add_ps(_mm512_add_ps(t0, t2), _mm512_add_ps(t1, t3));
}

/* CT columns (ac[j]: activation blocks of column j, at the chunk) through
 * the chunk's kb blocks; accumulators from / to accs (first: start at 0;
 * last: reduce and store the outputs instead). pf: the next tile's
 * activations, prefetched into L1 meanwhile. */
AI void panel_tile(int t, const panel *pk, int kb, int CT, const uint8_t *const ac[], const uint8_t *pf,
                   size_t pf_stride, __m512 *accs, int first, int last, float *s, size_t ldc, __mmask16 mask)
{
    const size_t as = (size_t)a_size(t);
    const __m512 magic = _mm512_set1_ps(KX_MAGIC_F);
    __m512 acc[P_CT][8], sm[P_CT];
    _Pragma("GCC unroll 16")
    for (int j = 0; j < CT; j++) {
        _Pragma("GCC unroll 16")
        for (int k = 0; k < 8; k++) acc[j][k] = first ? _mm512_setzero_ps() : accs[j * P_ACC + k];
        sm[j] = first ? _mm512_setzero_ps() : accs[j * P_ACC + 8];
    }
    /* Q5_0: the chunk's lane starts first, kept in memory, each then one
     * broadcast load as the start of its dpbusd */
    int32_t st[P_CT][P_KC][8];
    if (t == KERN_Q5_0)
        for (int b = 0; b < kb; b++)
            _Pragma("GCC unroll 16")
            for (int j = 0; j < CT; j++)
                _mm256_storeu_si256((__m256i *)st[j][b], lane_start(t, loadu256(ac[j] + (size_t)b * as + a_qs(t))));
    for (int b = 0; b < kb; b++) {
        if (pf)
            _Pragma("GCC unroll 16")
            for (int j = 0; j < P_CT; j++) _mm_prefetch((const char *)pf + j * pf_stride + (size_t)b * as, _MM_HINT_T0);
        __m512 d[P_CT];
        _Pragma("GCC unroll 16")
        for (int j = 0; j < CT; j++) {
            const uint8_t *ab = ac[j] + (size_t)b * as;
            d[j] = _mm512_mul_ps(pk->dw[b], _mm512_set1_ps(h2f(ab)));
            if (has_m(t)) sm[j] = _mm512_fmadd_ps(pk->mw[b], _mm512_set1_ps(h2f(ab + 2)), sm[j]);
        }
        _Pragma("GCC unroll 16")
        for (int k = 0; k < 8; k++) {
            const __m512i u = pk->q[b][k];
            _Pragma("GCC unroll 16")
            for (int j = 0; j < CT; j++) {
                const __m512i s0 = t == KERN_Q5_0 ? _mm512_set1_epi32(st[j][b][k]) : _mm512_set1_epi32(KX_MAGIC);
                const __m512i l = dpbusd_b(s0, u, ac[j] + (size_t)b * as + a_qs(t) + 4 * k);
                acc[j][k] = _mm512_fmadd_ps(d[j], _mm512_sub_ps(_mm512_castsi512_ps(l), magic), acc[j][k]);
            }
        }
    }
    _Pragma("GCC unroll 16")
    for (int j = 0; j < CT; j++) {
        if (last) {
            __m512 v = hsum8_rows(acc[j]);
            if (has_m(t)) v = _mm512_add_ps(v, sm[j]);
            _mm512_mask_storeu_ps(s + (size_t)j * ldc, mask, v);
        } else {
            _Pragma("GCC unroll 16")
            for (int k = 0; k < 8; k++) accs[j * P_ACC + k] = acc[j][k];
            accs[j * P_ACC + 8] = sm[j];
        }
    }
}

AI void panel_run(int t, int nb, int nr, int nc, float *s, size_t ldc, const uint8_t *w, size_t wstride,
                  const uint8_t *a, size_t astride)
{
    const size_t as = (size_t)a_size(t);
    panel pk;
    __m512 accs[P_NCS * P_ACC]; /* (column of the super-tile, lane k / summs): 16 rows */
    for (int r0 = 0; r0 < nr; r0 += P_ROWS) {
        const int nv = nr - r0 < P_ROWS ? nr - r0 : P_ROWS;
        const uint8_t *rp[16];
        int32_t offs[16];
        _Pragma("GCC unroll 16")
        for (int r = 0; r < 16; r++) {
            const int rr = r < nv ? r : nv - 1; /* rows beyond nr repeat the last (lanes not stored) */
            rp[r] = w + (size_t)(r0 + rr) * wstride;
            offs[r] = (int32_t)((size_t)rr * wstride);
        }
        const __m512i off = _mm512_loadu_si512(offs);
        const __mmask16 mask = (__mmask16)((1u << nv) - 1);
        for (int c0 = 0; c0 < nc; c0 += P_NCS) {
            const int ncs = nc - c0 < P_NCS ? nc - c0 : P_NCS;
            for (int b0 = 0; b0 < nb; b0 += P_KC) {
                const int kb = nb - b0 < P_KC ? nb - b0 : P_KC;
                const int first = b0 == 0, last = b0 + kb == nb;
                panel_fill(t, &pk, rp, rp[0], off, b0, kb);
                int c = 0;
                for (; c + P_CT <= ncs; c += P_CT) {
                    const uint8_t *ac[P_CT];
                    for (int j = 0; j < P_CT; j++) ac[j] = a + (size_t)(c0 + c + j) * astride + (size_t)b0 * as;
                    const uint8_t *pf = c + 2 * P_CT <= ncs ? a + (size_t)(c0 + c + P_CT) * astride + (size_t)b0 * as : NULL;
                    panel_tile(t, &pk, kb, P_CT, ac, pf, astride, accs + c * P_ACC, first, last,
                               s + (size_t)(c0 + c) * ldc + r0, ldc, mask);
                }
                for (; c < ncs; c++) {
                    const uint8_t *ac[1] = {a + (size_t)(c0 + c) * astride + (size_t)b0 * as};
                    panel_tile(t, &pk, kb, 1, ac, NULL, 0, accs + c * P_ACC, first, last,
                               s + (size_t)(c0 + c) * ldc + r0, ldc, mask);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- entry */

AI void mm_q5(int t, int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride, const void *a,
              size_t astride)
{
    if (nr <= 0 || nc <= 0) return;
    const int nb = n / QK_32;
    /* the panel's gathers take row offsets as int32 */
    if (nc > 8 && nb > 0 && wstride <= (size_t)INT32_MAX / P_ROWS)
        panel_run(t, nb, nr, nc, s, ldc, w, wstride, a, astride);
    else if (!gemt(t, nb, nr, nc, s, ldc, w, wstride, a, astride))
        gemv(t, nb, nr, nc, s, ldc, w, wstride, a, astride);
}

void kx512_q5_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride)
{
    mm_q5(KERN_Q5_0, n, nr, nc, s, ldc, w, wstride, a, astride);
}

void kx512_q4_1_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride)
{
    mm_q5(KERN_Q4_1, n, nr, nc, s, ldc, w, wstride, a, astride);
}

void kx512_q5_1_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride)
{
    mm_q5(KERN_Q5_1, n, nr, nc, s, ldc, w, wstride, a, astride);
}
