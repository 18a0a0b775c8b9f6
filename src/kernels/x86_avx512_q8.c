/* kernels/x86_avx512_q8.c — AVX-512 (VNNI) matrix kernel: Q8_0 weights
 * times Q8_0 activations. Declared in quant.h, entry of
 * kern_table_avx512.mul_mat; compiled with the avx512 flags, called only
 * after kern_select checked the CPU.
 *
 * What must be kept (ref.c q8_0_vec_dot, a "lane" type): per output, 8 float
 * lanes; for each 32-block b in order, lane k gets the exact integer
 * L_k = sum of w[e] * a[e] over e = 4k..4k+3, then
 *     acc[k] = fmaf(f16(w.d) * f16(a.d), (float)L_k, acc[k])
 * and the output is hsum8(acc) = ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)).
 * The integers are exact in any order; only those float steps, per
 * (row, column, lane), must be the same. Both paths below do exactly them,
 * vectorised across rows (and columns) instead of across k.
 *
 * Signed x signed bytes through vpdpbusd (unsigned x signed): one side is
 * biased, u = x ^ 0x80 = x + 128 in 0..255, and the dpbusd accumulator
 * starts at -128 * (sum of the other side's 4 bytes) instead of zero, so
 * the lane is exact for every byte value. (It also starts at KX_MAGIC,
 * which turns the int32 into a float with one add-pipe subtraction.)
 *
 * Three shapes, by the number of columns nc (tokens of the step):
 *  - nc = 1 (decode): memory-bound. One row after the other, front to back
 *    (the only order that streams at full DRAM speed, see q8_gemv_cols),
 *    a ymm of ref's 8 lanes per row: xor, dpbusd, sub, mul, fma per block.
 *  - nc = 2..8 (several users decoding): the same row order; the
 *    activations go once into a biased table, so the correction is per
 *    weight block and shared by the columns (q8_rows).
 *  - nc > 8 (prefill): compute-bound. A K-chunk of 16 rows is repacked
 *    "rows in lanes" (zmm k of block b: lane r = biased bytes 4k..4k+3 of
 *    row r), so per (block, lane k, column) one dpbusd with the activation's
 *    4 bytes broadcast, one sub and one fma serve 16 rows, and hsum8 is 7
 *    vector adds at the end (q8_panel_*).
 * Stack use: up to ~56 KiB (tables and panel); no allocation.
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/x86_avx512_impl.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#define Q8_ROWS 16 /* rows of a panel: one zmm lane per row */

static inline const blk_q8_0 *row_at(const void *base, size_t stride, int r)
{
    return (const blk_q8_0 *)((const uint8_t *)base + (size_t)r * stride);
}

/* int32 -> float without vcvtdq2ps (on Zen 4 it takes both FMA pipes for a
 * zmm, as long as a dpbusd and an fma together): every lane sum L has
 * |L| <= 4 * 255 * 128 < 2^22, so the int32 bit pattern KX_MAGIC + L is
 * the float 1.5 * 2^23 + L exactly, and subtracting 1.5 * 2^23 (an add-pipe
 * op) gives (float)L exactly, +0 for 0, as the conversion would. */
static inline __m512 q8_tofloat(__m512i biased)
{
    return _mm512_sub_ps(_mm512_castsi512_ps(biased), _mm512_set1_ps(KX_MAGIC_F));
}

/* KX_MAGIC - 128 * (sum of each 4 bytes of a block's quants): the start
 * value of the 8 dpbusd lanes that makes the biased weights exact (see top)
 * and the result ready for q8_tofloat. */
static inline __m256i q8_corr(__m256i aq)
{
    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8((char)0x80), aq);
    return _mm256_sub_epi32(_mm256_set1_epi32(KX_MAGIC), s);
}

/* The 16 rows' weight scales of block b as floats (lane r = row r): one
 * gather of the 4 bytes at each block start (d is the first 2). off[r] =
 * byte offset of row r from w, fits int32 (checked by the caller). */
static inline __m512 q8_dw16(const void *w, __m512i off, int b)
{
    __m512i g = _mm512_i32gather_epi32(off, (const uint8_t *)w + (size_t)b * sizeof(blk_q8_0), 1);
    return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
}

/* ------------------------------------------------------------------ gemv */

/* Decode reads every weight byte once from DRAM, so the order of the reads
 * decides the speed: one row after the other, each front to back, streams
 * at ~24 GB/s on Zen 4 where 16 (or even 2) rows read side by side in the
 * same pages stream at 10-18 GB/s. So each row is one sequential pass: per
 * block one xor, and per column one dpbusd, sub, mul and fma on a ymm of
 * the 8 lanes (the fma chain bounds a single column at 34 bytes per 4
 * cycles, ~30 GB/s, above what DRAM gives). */

#define Q8_GNC 3 /* most columns per pass */

/* NC (1..Q8_GNC) columns starting at column 0 of a / s, row after row.
 * The activation side (correction, scale) is recomputed per row: cheaper
 * than a table, which would have to be cut into K-chunks for long rows,
 * and chunked rows (reads with gaps) stream 3x slower. */
static inline __attribute__((always_inline)) void q8_gemv_cols(int nb, int nr, int NC, float *s, size_t ldc,
                                                              const void *w, size_t wstride, const void *a,
                                                              size_t astride)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    const __m256 magic = _mm256_set1_ps(KX_MAGIC_F);
    const blk_q8_0 *ac[Q8_GNC];
    for (int c = 0; c < NC; c++) ac[c] = row_at(a, astride, c);
    for (int r = 0; r < nr; r++) {
        const blk_q8_0 *x = row_at(w, wstride, r);
        __m256 acc[Q8_GNC];
        for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const __m256i u = _mm256_xor_si256(loadu256(x[b].qs), bias);
            const __m256 dw = _mm256_cvtph_ps(_mm_set1_epi16((short)x[b].d));
            _Pragma("GCC unroll 4")
            for (int c = 0; c < NC; c++) {
                const __m256i aq = loadu256(ac[c][b].qs);
                const __m256i l = _mm256_dpbusd_epi32(q8_corr(aq), u, aq);
                const __m256 d = _mm256_mul_ps(dw, _mm256_set1_ps(_cvtsh_ss(ac[c][b].d)));
                acc[c] = _mm256_fmadd_ps(d, _mm256_sub_ps(_mm256_castsi256_ps(l), magic), acc[c]);
            }
        }
        for (int c = 0; c < NC; c++) s[(size_t)c * ldc + r] = hsum8(acc[c]);
    }
}

/* Several columns, still row after row: the activations are prepared once
 * per pass into a table, biased the other way round (a' = a ^ 0x80, the
 * unsigned side), so the correction -128 * sum(w) belongs to the weight
 * block and is computed once per (row, block) for all the columns, and the
 * weight bytes are used as they are. Per (row, block): load, one dpbusd
 * for the correction, the f16 -> f32 of d_w; per column: dpbusd, mul
 * (d_w * d_a, ref's d), sub, fma. (Computing the 8 columns' d in one mul
 * and reading them back from memory as broadcasts was slower.) */
#define Q8_TNC 8      /* most columns per pass */
#define Q8_TBLK 768   /* table capacity in (column, block) pairs: 24 KiB */

typedef struct {
    __m256i ap[Q8_TBLK];                  /* (block, column): a ^ 0x80 */
    float da[Q8_TBLK / 2][Q8_TNC];        /* (block, column): f16(a.d) */
} q8_tab;

static inline __attribute__((always_inline)) void q8_rows_cols(int nb, int nr, int NC, float *s, size_t ldc,
                                                              const void *w, size_t wstride, const q8_tab *tb)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    const __m256i magic_i = _mm256_set1_epi32(KX_MAGIC);
    const __m256 magic = _mm256_set1_ps(KX_MAGIC_F);
    for (int r = 0; r < nr; r++) {
        const blk_q8_0 *x = row_at(w, wstride, r);
        __m256 acc[Q8_TNC];
        _Pragma("GCC unroll 8")
        for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            const __m256i q = loadu256(x[b].qs);
            const __m256i cw = _mm256_sub_epi32(magic_i, _mm256_dpbusd_epi32(_mm256_setzero_si256(), bias, q));
            const __m256 dw = _mm256_cvtph_ps(_mm_set1_epi16((short)x[b].d));
            _Pragma("GCC unroll 8")
            for (int c = 0; c < NC; c++) {
                const __m256i l = _mm256_dpbusd_epi32(cw, tb->ap[b * NC + c], q);
                acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_broadcast_ss(&tb->da[b][c])),
                                         _mm256_sub_ps(_mm256_castsi256_ps(l), magic), acc[c]);
            }
        }
        _Pragma("GCC unroll 8")
        for (int c = 0; c < NC; c++) s[(size_t)c * ldc + r] = hsum8(acc[c]);
    }
}

/* nc columns in passes of up to Q8_TNC that fit the table; 0 if not even
 * 2 columns fit (very long rows): the caller takes q8_gemv_cols. */
static int q8_rows(int nb, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride, const void *a,
                   size_t astride)
{
    int per = nb ? Q8_TBLK / nb : Q8_TNC;
    if (per > Q8_TNC) per = Q8_TNC;
    if (per < 2) return 0;
    q8_tab tb;
    for (int c0 = 0; c0 < nc; c0 += per) {
        const int NC = nc - c0 < per ? nc - c0 : per;
        for (int c = 0; c < NC; c++) {
            const blk_q8_0 *ac = row_at(a, astride, c0 + c);
            for (int b = 0; b < nb; b++) {
                tb.ap[b * NC + c] = _mm256_xor_si256(loadu256(ac[b].qs), _mm256_set1_epi8((char)0x80));
                tb.da[b][c] = _cvtsh_ss(ac[b].d);
            }
        }
        float *sc = s + (size_t)c0 * ldc;
        switch (NC) {
        case 1: q8_rows_cols(nb, nr, 1, sc, ldc, w, wstride, &tb); break;
        case 2: q8_rows_cols(nb, nr, 2, sc, ldc, w, wstride, &tb); break;
        case 3: q8_rows_cols(nb, nr, 3, sc, ldc, w, wstride, &tb); break;
        case 4: q8_rows_cols(nb, nr, 4, sc, ldc, w, wstride, &tb); break;
        case 5: q8_rows_cols(nb, nr, 5, sc, ldc, w, wstride, &tb); break;
        case 6: q8_rows_cols(nb, nr, 6, sc, ldc, w, wstride, &tb); break;
        case 7: q8_rows_cols(nb, nr, 7, sc, ldc, w, wstride, &tb); break;
        default: q8_rows_cols(nb, nr, 8, sc, ldc, w, wstride, &tb); break;
        }
    }
    return 1;
}

/* One column, two rows side by side: ref's per-lane fma chain of one row
 * allows one block per 4 cycles (fma latency), 34 bytes: below what DRAM
 * gives on a 2.6 GHz core; two rows are two independent chains, and the
 * activation block (correction, scale) is shared by them. */
static void q8_gemv_pairs(int nb, int nr, float *s, const void *w, size_t wstride, const void *a)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    const __m256 magic = _mm256_set1_ps(KX_MAGIC_F);
    const blk_q8_0 *ac = a;
    int r = 0;
    for (; r + 2 <= nr; r += 2) {
        const blk_q8_0 *x0 = row_at(w, wstride, r), *x1 = row_at(w, wstride, r + 1);
        const char *pf = (const char *)x0 + 2 * wstride;
        const size_t pstep = 2 * wstride / (size_t)nb;
        size_t pdone = 0, plim = 0;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (int b = 0; b < nb; b++) {
            for (plim += pstep; pdone < plim; pdone += 64) _mm_prefetch(pf + pdone, _MM_HINT_T0);
            const __m256i aq = loadu256(ac[b].qs);
            const __m256i corr = q8_corr(aq);
            const __m256 da = _mm256_set1_ps(_cvtsh_ss(ac[b].d));
            const __m256i u0 = _mm256_xor_si256(loadu256(x0[b].qs), bias);
            const __m256i u1 = _mm256_xor_si256(loadu256(x1[b].qs), bias);
            const __m256i l0 = _mm256_dpbusd_epi32(corr, u0, aq), l1 = _mm256_dpbusd_epi32(corr, u1, aq);
            const __m256 d0 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)x0[b].d)), da);
            const __m256 d1 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)x1[b].d)), da);
            acc0 = _mm256_fmadd_ps(d0, _mm256_sub_ps(_mm256_castsi256_ps(l0), magic), acc0);
            acc1 = _mm256_fmadd_ps(d1, _mm256_sub_ps(_mm256_castsi256_ps(l1), magic), acc1);
        }
        s[r] = hsum8(acc0);
        s[r + 1] = hsum8(acc1);
    }
    if (r < nr) q8_gemv_cols(nb, 1, 1, s + r, 0, row_at(w, wstride, r), wstride, a, 0);
}

static void q8_gemv(int nb, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride, const void *a,
                    size_t astride)
{
    if (nc == 1) {
        q8_gemv_pairs(nb, nr, s, w, wstride, a);
        return;
    }
    for (int c = 0; c < nc;) {
        const int left = nc - c;
        float *sc = s + (size_t)c * ldc;
        const void *acol = (const uint8_t *)a + (size_t)c * astride;
        if (left >= 3) {
            q8_gemv_cols(nb, nr, 3, sc, ldc, w, wstride, acol, astride);
            c += 3;
        } else if (left == 2) {
            q8_gemv_cols(nb, nr, 2, sc, ldc, w, wstride, acol, astride);
            c += 2;
        } else {
            q8_gemv_cols(nb, nr, 1, sc, ldc, w, wstride, acol, astride);
            c += 1;
        }
    }
}

/* ----------------------------------------------------------------- panel */

#define Q8_KC 32   /* blocks per K-chunk (repacked: 18 KiB) */
#define Q8_NCS 64  /* columns per super-tile (accumulators: 32 KiB) */
#define Q8_CT 2    /* columns per register tile: 16 accumulators (3 spill: 1-2% slower) */

typedef struct {
    __m512i q[Q8_KC][8]; /* block b, lane group k: lane r = biased bytes 4k..4k+3 of row r */
    __m512 dw[Q8_KC];    /* block b: lane r = f16(d) of row r */
} q8_panel;

/* Repack blocks b0..b0+kb of the 16 rows: an 8x8 dword transpose in each
 * 256-bit half (rows p and p+8 share a zmm), bias applied. */
static void q8_panel_fill(q8_panel *pk, const blk_q8_0 *const rp[16], const void *w0, __m512i off, int b0, int kb)
{
    const __m512i bias = _mm512_set1_epi8((char)0x80);
    const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
    const __m512i hi = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
    for (int i = 0; i < kb; i++) {
        const int b = b0 + i;
        __m512i z[8], t[8], u[8];
        _Pragma("GCC unroll 16")
        for (int p = 0; p < 8; p++)
            z[p] = _mm512_xor_si512(
                _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(rp[p][b].qs)), loadu256(rp[p + 8][b].qs), 1), bias);
        /* z[p] dword j (per half): row p (p+8), group j */
        _Pragma("GCC unroll 16")
        for (int p = 0; p < 8; p += 2) {
            t[p] = _mm512_unpacklo_epi32(z[p], z[p + 1]);     /* per chunk: r0g0 r1g0 r0g1 r1g1 */
            t[p + 1] = _mm512_unpackhi_epi32(z[p], z[p + 1]); /* r0g2 r1g2 r0g3 r1g3 */
        }
        _Pragma("GCC unroll 16")
        for (int h = 0; h < 8; h += 4) {
            u[h] = _mm512_unpacklo_epi64(t[h], t[h + 2]);     /* per chunk: g0 of rows h..h+3 */
            u[h + 1] = _mm512_unpackhi_epi64(t[h], t[h + 2]); /* g1 */
            u[h + 2] = _mm512_unpacklo_epi64(t[h + 1], t[h + 3]); /* g2 */
            u[h + 3] = _mm512_unpackhi_epi64(t[h + 1], t[h + 3]); /* g3 */
        }
        /* u[m] (m < 4): chunk 0 = group m rows 0..3, chunk 1 = group m+4
         * rows 0..3, chunks 2/3 the same for rows 8..11; u[m+4]: rows
         * 4..7 / 12..15. Interleave the chunks into natural row order. */
        _Pragma("GCC unroll 16")
        for (int m = 0; m < 4; m++) {
            pk->q[i][m] = _mm512_permutex2var_epi64(u[m], lo, u[m + 4]);
            pk->q[i][m + 4] = _mm512_permutex2var_epi64(u[m], hi, u[m + 4]);
        }
        pk->dw[i] = q8_dw16(w0, off, b);
    }
}

/* hsum8 of the 8 lane accumulators (acc[k], lane r = row r), ref order. */
static inline __m512 q8_hsum8_rows(const __m512 acc[8])
{
    __m512 t0 = _mm512_add_ps(acc[0], acc[4]), t1 = _mm512_add_ps(acc[1], acc[5]);
    __m512 t2 = _mm512_add_ps(acc[2], acc[6]), t3 = _mm512_add_ps(acc[3], acc[7]);
    return _mm512_add_ps(_mm512_add_ps(t0, t2), _mm512_add_ps(t1, t3));
}

/* CT columns (ac[j]: activation blocks of column j, at the chunk) through
 * the chunk's kb blocks; accumulators from / to accs (first: start at 0;
 * last: reduce and store the outputs instead). */
static inline __attribute__((always_inline)) void q8_panel_tile(const q8_panel *pk, int kb, int CT,
                                                               const blk_q8_0 *const ac[], const char *pf,
                                                               size_t pf_stride, __m512 *accs, int first, int last,
                                                               float *s, size_t ldc, unsigned short mask)
{
    __m512 acc[Q8_CT][8];
    _Pragma("GCC unroll 16")
    for (int j = 0; j < CT; j++)
        _Pragma("GCC unroll 16")
        for (int k = 0; k < 8; k++) acc[j][k] = first ? _mm512_setzero_ps() : accs[j * 8 + k];
    /* the chunk's corrections first: kept in memory, each is then one
     * broadcast load (no shuffles) as the start of its dpbusd */
    int32_t corr[Q8_CT][Q8_KC][8];
    for (int b = 0; b < kb; b++)
        _Pragma("GCC unroll 16")
        for (int j = 0; j < CT; j++) _mm256_storeu_si256((__m256i *)corr[j][b], q8_corr(loadu256(ac[j][b].qs)));
    for (int b = 0; b < kb; b++) {
        /* the next tile's activations into L1 meanwhile (its first touch
         * would otherwise stall the correction loop above) */
        if (pf)
            _Pragma("GCC unroll 16")
            for (int j = 0; j < Q8_CT; j++) _mm_prefetch(pf + j * pf_stride + (size_t)b * sizeof(blk_q8_0), _MM_HINT_T0);
        __m512 d[Q8_CT];
        _Pragma("GCC unroll 16")
        for (int j = 0; j < CT; j++) d[j] = _mm512_mul_ps(pk->dw[b], _mm512_set1_ps(_cvtsh_ss(ac[j][b].d)));
        _Pragma("GCC unroll 16")
        for (int k = 0; k < 8; k++) {
            const __m512i u = pk->q[b][k];
            _Pragma("GCC unroll 16")
            for (int j = 0; j < CT; j++) {
                __m512i l = dpbusd_b(_mm512_set1_epi32(corr[j][b][k]), u, ac[j][b].qs + 4 * k);
                acc[j][k] = _mm512_fmadd_ps(d[j], q8_tofloat(l), acc[j][k]);
            }
        }
    }
    _Pragma("GCC unroll 16")
    for (int j = 0; j < CT; j++) {
        if (last)
            _mm512_mask_storeu_ps(s + (size_t)j * ldc, mask, q8_hsum8_rows(acc[j]));
        else
            _Pragma("GCC unroll 16")
            for (int k = 0; k < 8; k++) accs[j * 8 + k] = acc[j][k];
    }
}

static void q8_panel_run(int nb, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                         const void *a, size_t astride)
{
    q8_panel pk;
    __m512 accs[Q8_NCS * 8]; /* (column of the super-tile, lane k): 16 rows */
    for (int r0 = 0; r0 < nr; r0 += Q8_ROWS) {
        const int nv = nr - r0 < Q8_ROWS ? nr - r0 : Q8_ROWS;
        const blk_q8_0 *rp[16];
        int32_t offs[16];
        _Pragma("GCC unroll 16")
        for (int r = 0; r < 16; r++) {
            int rr = r < nv ? r : nv - 1;
            rp[r] = row_at(w, wstride, r0 + rr);
            offs[r] = (int32_t)((size_t)rr * wstride);
        }
        const __m512i off = _mm512_loadu_si512(offs);
        const unsigned short mask = (unsigned short)((1u << nv) - 1);
        for (int c0 = 0; c0 < nc; c0 += Q8_NCS) {
            const int ncs = nc - c0 < Q8_NCS ? nc - c0 : Q8_NCS;
            for (int b0 = 0; b0 < nb; b0 += Q8_KC) {
                const int kb = nb - b0 < Q8_KC ? nb - b0 : Q8_KC;
                const int first = b0 == 0, last = b0 + kb == nb;
                q8_panel_fill(&pk, rp, rp[0], off, b0, kb);
                int c = 0;
                for (; c + Q8_CT <= ncs; c += Q8_CT) {
                    const blk_q8_0 *ac[Q8_CT];
                    for (int j = 0; j < Q8_CT; j++) ac[j] = row_at(a, astride, c0 + c + j) + b0;
                    const char *pf = c + 2 * Q8_CT <= ncs ? (const char *)(row_at(a, astride, c0 + c + Q8_CT) + b0) : NULL;
                    q8_panel_tile(&pk, kb, Q8_CT, ac, pf, astride, accs + c * 8, first, last,
                                  s + (size_t)(c0 + c) * ldc + r0, ldc, mask);
                }
                for (; c < ncs; c++) {
                    const blk_q8_0 *ac[1] = {row_at(a, astride, c0 + c) + b0};
                    q8_panel_tile(&pk, kb, 1, ac, NULL, 0, accs + c * 8, first, last,
                                  s + (size_t)(c0 + c) * ldc + r0, ldc, mask);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- entry */

void kx512_q8_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride)
{
    if (nr <= 0 || nc <= 0) return;
    const int nb = n / QK_32;
    /* the panel's scale gather takes row offsets as int32 */
    if (nc > Q8_TNC && nb > 0 && wstride <= (size_t)INT32_MAX / Q8_ROWS)
        q8_panel_run(nb, nr, nc, s, ldc, w, wstride, a, astride);
    else if (nc == 1 || !q8_rows(nb, nr, nc, s, ldc, w, wstride, a, astride))
        q8_gemv(nb, nr, nc, s, ldc, w, wstride, a, astride);
}

/* Packed layout (kern_table.pack): the file's own rows, copied. What the
 * copy buys is the memory it lives in (model_pack: 2 MiB pages where the
 * kernel offers them, instead of the file's 4 KiB page-cache pages). */
void kx512_q8_0_pack(int n, int nr, const void *w, size_t wstride, void *out)
{
    const size_t rs = (size_t)(n / 32) * sizeof(blk_q8_0);
    for (int r = 0; r < nr; r++) memcpy((uint8_t *)out + (size_t)r * rs, (const uint8_t *)w + (size_t)r * wstride, rs);
}
