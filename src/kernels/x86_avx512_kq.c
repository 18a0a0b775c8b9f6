/* kernels/x86_avx512_kq.c — AVX-512 (VNNI) matrix kernels: q4_k q6_k.
 * Declared in quant.h, entries of kern_table_avx512.mul_mat; compiled with
 * the avx512 flags, called only after kern_select checked the CPU.
 *
 * Contract (kernels.h): every output bit-identical to ref.c's vec_dot of
 * its (weight row, activation row) pair. Integer sums are exact in any
 * order (all bounds below stay far inside int16 / int32), so only the float
 * steps of ref.c are kept, per output, in order:
 *
 *   Q6_K (a "lane" type): 8 float lanes per output; super-block i adds
 *       acc[k] = fmaf(d_a * f16(d_w), (float)L_k, acc[k]), L_k the exact
 *       sum of sc * (q - 32) * a over the elements e with (e % 32) / 4 == k;
 *       output hsum8(acc).
 *   Q4_K (a "chain" type): two chains per output,
 *       sum  = fmaf((float)isum, f16(d_w) * d_a, sum)
 *       msum = fmaf((float)imin, f16(dmin_w) * d_a, msum)
 *       with isum = sum_j sc_j * dot(sub-block j), imin = sum_j m_j *
 *       (bsums[2j] + bsums[2j+1]); output sum - msum.
 *
 * Rows beyond nr repeat row 0 of the group (valid memory); their outputs
 * are not stored. Weight rows are 2-byte aligned: unaligned loads only.
 */
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/x86_avx512_impl.h"

#include <immintrin.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>


AI __m512i bcast256(const void *p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)); }
AI __m512i loadu512(const void *p) { return _mm512_loadu_si512(p); }

/* Both kernels step through a group of 16 rows one super-block of every
 * row at a time: 16 interleaved short runs, which the hardware prefetcher
 * does not follow (decode streamed at 6-8 GB/s). So while a group is
 * processed, the same super-block of the next group's rows (rp + 16 *
 * wstride: the caller's next call, typically) is prefetched, into L2
 * (prefetcht1; prefetcht0 streamed no better than nothing), one group
 * ahead. Prefetches never fault: running past the tensor is harmless. */
AI void prefetch_rows(const uint8_t *const *rp, int nrows, size_t off, int len)
{
    for (int r = 0; r < nrows; r++)
        for (int k = 0; k < len; k += 64) _mm_prefetch((const char *)rp[r] + off + k, _MM_HINT_T1);
}

/* ================================================================ Q6_K
 *
 * Two rows per zmm for the float lanes (lanes 0..7 row r, 8..15 row r+1).
 *
 * Unpacked super-block of one row: q[c] (c < 4) = 64 unsigned bytes q
 * (0..63) of elements 64c..64c+63, in order, so the activation bytes are
 * one plain 64-byte load. With ql (128 B), qh (64 B):
 *   q[2h]   = low nibbles of ql[64h..64h+63]  | qh[32h..] bits 0-1 (lower
 *             256 bits) or bits 2-3 (upper) as bits 4-5
 *   q[2h+1] = high nibbles of the same ql     | qh bits 4-5 / 6-7
 * Dots: dword t of chunk c covers elements 64c + 4t .. +3, ref.c's lane
 * t % 8, scale group 4c + t / 4. vpdpbusd(cn, q, a) gives (q - 32) . a per
 * dword (cn = -32 * the 4 activation bytes' sum, per column), at most
 * 16384 in magnitude: it fits a word. So chunks 2m and 2m+1 are packed
 * into word pairs (dword t = [c0 dword t | c1 dword t]) and one vpdpwssd
 * by the matching scale pairs applies the scales and adds both into
 * dword t. Adding the two 256-bit halves gives the 8 lanes.
 * Bounds: per dword 4 products of at most 16384 * 128: < 2^24.
 */

/* Word indexes into the 16 scales: dword t = (sc[8m + t/4], sc[8m + 4 + t/4]). */
static const int16_t Q6_SCP[2][32] __attribute__((aligned(64))) = {
#define P4(b) b, b + 4, b, b + 4, b, b + 4, b, b + 4
    {P4(0), P4(1), P4(2), P4(3)},
    {P4(8), P4(9), P4(10), P4(11)},
#undef P4
};

typedef struct {
    __m512i q[4];    /* q (0..63), elements 64c.. (ws: q - 32) */
    __m512i scp[2];  /* word pairs: scales of chunks 2m, 2m+1 at each dword */
    __m512i negc[4]; /* ws only: -128 * the sums of q - 32 per dword */
} q6_row;

AI void q6_unpack(const uint8_t *ql_, const uint8_t *qh_, const int8_t *scales, q6_row *u)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    const __m512i sl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i sr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    _Pragma("GCC unroll 16")
    for (int h = 0; h < 2; h++) {
        __m512i ql = loadu512(ql_ + 64 * h), qh = bcast256(qh_ + 32 * h);
        __m512i h01 = _mm512_and_si512(_mm512_sllv_epi16(qh, sl), m30);
        __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(qh, sr), m30);
        /* (A & B) | C: 0xEA */
        u->q[2 * h] = _mm512_ternarylogic_epi32(ql, m4, h01, 0xEA);
        u->q[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), m4, h23, 0xEA);
    }
    __m512i sx = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)scales)));
    u->scp[0] = _mm512_permutexvar_epi16(_mm512_load_si512(Q6_SCP[0]), sx);
    u->scp[1] = _mm512_permutexvar_epi16(_mm512_load_si512(Q6_SCP[1]), sx);
}

/* The (q - 32) . a dwords come two ways:
 *  - one column (decode): vpdpbusd(cn, q, a) with cn = -32 * the sums of
 *    the activation's dwords, made once per column (cheapest per row);
 *  - several columns ("ws"): the weight bytes as q - 32 (signed) and the
 *    activation biased to a + 128 (unsigned): vpdpbusd(negc, a + 128,
 *    q - 32) with negc = -128 * the sums of q - 32, made once per row.
 *    The unsigned operand must be a register, so each activation vector
 *    is loaded once for both rows of a pair. */
typedef struct {
    __m512i a[4], cn[4]; /* ws: a + 128, cn unused */
} q6_act;

AI void q6_act_load(const blk_q8_k *ab, q6_act *x, int ws)
{
    _Pragma("GCC unroll 16")
    for (int c = 0; c < 4; c++) {
        x->a[c] = loadu512(ab->qs + 64 * c);
        if (ws)
            x->a[c] = _mm512_xor_si512(x->a[c], _mm512_set1_epi8((char)0x80));
        else
            x->cn[c] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                        _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(32), x->a[c]));
    }
}

AI void q6_row_ws(q6_row *u)
{
    _Pragma("GCC unroll 16")
    for (int c = 0; c < 4; c++) {
        u->q[c] = _mm512_sub_epi8(u->q[c], _mm512_set1_epi8(32));
        u->negc[c] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                      _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)0x80), u->q[c]));
    }
}

AI __m512i q6_dot4(const q6_row *u, const q6_act *x, int c, int ws)
{
    return ws ? _mm512_dpbusd_epi32(u->negc[c], x->a[c], u->q[c]) : _mm512_dpbusd_epi32(x->cn[c], u->q[c], x->a[c]);
}

/* Two rows' dwords for one column's super-block (see above); the
 * activation is loaded once for both. */
AI void q6_dots2(const q6_row *u0, const q6_row *u1, const q6_act *x, int ws, __m512i *r0, __m512i *r1)
{
    const __m512i lo = _mm512_set1_epi32(0xffff);
    __m512i acc0 = _mm512_setzero_si512(), acc1 = _mm512_setzero_si512();
    _Pragma("GCC unroll 16")
    for (int m = 0; m < 2; m++) {
        /* (d0 & 0xffff) | d1 << 16: 0xEA */
        __m512i pk = _mm512_ternarylogic_epi32(q6_dot4(u0, x, 2 * m, ws), lo,
                                               _mm512_slli_epi32(q6_dot4(u0, x, 2 * m + 1, ws), 16), 0xEA);
        acc0 = _mm512_dpwssd_epi32(acc0, pk, u0->scp[m]);
        pk = _mm512_ternarylogic_epi32(q6_dot4(u1, x, 2 * m, ws), lo,
                                       _mm512_slli_epi32(q6_dot4(u1, x, 2 * m + 1, ws), 16), 0xEA);
        acc1 = _mm512_dpwssd_epi32(acc1, pk, u1->scp[m]);
    }
    *r0 = acc0;
    *r1 = acc1;
}

/* Two rows' 16 dwords -> [8 lanes of x | 8 lanes of y] */
AI __m512i lanes2(__m512i x, __m512i y)
{
    return _mm512_add_epi32(_mm512_shuffle_i64x2(x, y, 0x44), _mm512_shuffle_i64x2(x, y, 0xEE));
}

/* hsum8 of both halves, ref order: t_i = a_i + a_{4+i}, (t0 + t2) + (t1 + t3).
 * Lane 0 = row x, lane 8 = row y. */
AI __m512 hsum8x2(__m512 v)
{
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
    return _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
}

enum { Q6_CB = 16 }; /* columns per pass (their lanes and activations: 24 KiB of stack) */

/* Packed layout (kern_table.pack), per row group of 16 and super-block i,
 * 3360 bytes (16 rows' worth) at i * 3360 of the group: the 16 rows' d
 * (f16), then per row r: ql (128 bytes), qh (64), scales (16), in the
 * order the kernel reads them. The group is one sequential run (the
 * file's layout is 16 interleaved ones; even a few interleaved runs in
 * one page stream at half speed here) and its d one load, not a gather;
 * the arithmetic is the file layout's. */
enum { Q6_PK = 16 * sizeof(blk_q6_k), Q6_PK_ROW = 128 + 64 + 16 };
AI const uint8_t *q6_pk_row(const uint8_t *P, int r) { return P + 32 + (size_t)r * Q6_PK_ROW; }

/* NC (<= Q6_CB) columns against 16 rows (rp; rows >= nr repeat row 0;
 * gofs: byte offset of row r from row 0, for the d gather). packed: rp[0]
 * is the group's packed bytes (the other rp, gofs and next unused). */
AI void q6k_tile(int nb, int NC, int ws, const uint8_t *const rp[16], __m512i gofs, size_t next,
                 const blk_q8_k *const ac[], float *s, size_t ldc, int nr, int packed)
{
    __m512 acc[8][Q6_CB];  /* row pair p, column c: lanes of rows 2p | 2p+1 */
    _Pragma("GCC unroll 16")
    for (int p = 0; p < 8; p++)
        for (int c = 0; c < NC; c++) acc[p][c] = _mm512_setzero_ps();
    const uint8_t *np[16];
    _Pragma("GCC unroll 16")
    for (int r = 0; r < 16; r++) np[r] = rp[r] + next;
    for (int i = 0; i < nb; i++) {
        const size_t bo = (size_t)i * sizeof(blk_q6_k);
        const uint8_t *P = rp[0] + (size_t)i * Q6_PK;
        if (!packed) prefetch_rows(np, 16, bo, 256);
        q6_act x[Q6_CB];
        __m512 da[Q6_CB];
        for (int c = 0; c < NC; c++) {
            q6_act_load(&ac[c][i], &x[c], ws);
            da[c] = _mm512_set1_ps(ac[c][i].d);
        }
        /* f16 d of the 16 rows: the dword ending at d (scales[14..15], d).
         * (Building it from scalar loads was cheaper in cache but streamed
         * slower: the gather also pulls every row's line in early.) */
        const __m512 dw16 = packed ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)P))
                                   : _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(
                                         _mm512_i32gather_epi32(gofs, rp[0] + bo + offsetof(blk_q6_k, d) - 2, 1), 16)));
        _Pragma("GCC unroll 16")
        for (int p = 0; p < 8; p++) {
            q6_row u0, u1;
            if (packed) {
                const uint8_t *x0 = q6_pk_row(P, 2 * p), *x1 = q6_pk_row(P, 2 * p + 1);
                q6_unpack(x0, x0 + 128, (const int8_t *)x0 + 192, &u0);
                q6_unpack(x1, x1 + 128, (const int8_t *)x1 + 192, &u1);
            } else {
                const blk_q6_k *b0 = (const blk_q6_k *)(rp[2 * p] + bo), *b1 = (const blk_q6_k *)(rp[2 * p + 1] + bo);
                q6_unpack(b0->ql, b0->qh, b0->scales, &u0);
                q6_unpack(b1->ql, b1->qh, b1->scales, &u1);
            }
            if (ws) {
                q6_row_ws(&u0);
                q6_row_ws(&u1);
            }
            const __m512 dw = _mm512_permutexvar_ps(_mm512_inserti64x4(_mm512_set1_epi32(2 * p), _mm256_set1_epi32(2 * p + 1), 1), dw16);
            for (int c = 0; c < NC; c++) {
                __m512i y0, y1;
                q6_dots2(&u0, &u1, &x[c], ws, &y0, &y1);
                const __m512i l = lanes2(y0, y1);
                /* ref: d = d_a * f16(d_w); acc = fma(d, lane, acc) */
                acc[p][c] = _mm512_fmadd_ps(_mm512_mul_ps(da[c], dw), _mm512_cvtepi32_ps(l), acc[p][c]);
            }
        }
    }
    for (int c = 0; c < NC; c++) {
        float out[16];
        _Pragma("GCC unroll 16")
        for (int p = 0; p < 8; p++) {
            __m512 h = hsum8x2(acc[p][c]);
            out[2 * p] = _mm512_cvtss_f32(h);
            out[2 * p + 1] = _mm256_cvtss_f32(_mm512_extractf32x8_ps(h, 1));
        }
        memcpy(s + (size_t)c * ldc, out, sizeof(float) * (size_t)nr);
    }
}

/* All nc columns against one group of 16 rows (q6k_tile's rp .. packed),
 * Q6_CB at a time: one column through the single-column dots, several
 * through the biased ("ws") ones. */
AI void q6k_cols(int nb, int nc, const uint8_t *const rp[16], __m512i gofs, size_t next, const uint8_t *ab,
                 size_t astride, float *s, size_t ldc, int nr, int packed)
{
    for (int c0 = 0; c0 < nc; c0 += Q6_CB) {
        const int cn = nc - c0 < Q6_CB ? nc - c0 : Q6_CB;
        const blk_q8_k *ac[Q6_CB];
        for (int c = 0; c < cn; c++) ac[c] = (const blk_q8_k *)(ab + (size_t)(c0 + c) * astride);
        float *sc = s + (size_t)c0 * ldc;
        if (cn == 1)
            q6k_tile(nb, 1, 0, rp, gofs, next, ac, sc, ldc, nr, packed);
        else
            q6k_tile(nb, cn, 1, rp, gofs, next, ac, sc, ldc, nr, packed);
    }
}

void kx512_q6_k_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride)
{
    const int nb = n / QK_K;
    const uint8_t *wb = w, *ab = a;
    if (nr <= 0 || nc <= 0) return;
    if (wstride > (size_t)INT32_MAX / 16) { /* gather offsets are int32 */
        kern_mul_mat(&kern_table_avx2, KERN_Q6_K, n, nr, nc, s, ldc, w, wstride, a, astride);
        return;
    }
    for (int r0 = 0; r0 < nr; r0 += 16) {
        const int rn = nr - r0 < 16 ? nr - r0 : 16;
        const uint8_t *rp[16];
        int32_t go[16];
        _Pragma("GCC unroll 16")
        for (int r = 0; r < 16; r++) {
            const int rr = r < rn ? r : 0;
            rp[r] = wb + (size_t)(r0 + rr) * wstride;
            go[r] = (int32_t)((size_t)rr * wstride);
        }
        q6k_cols(nb, nc, rp, _mm512_loadu_si512(go), 16 * wstride, ab, astride, s + r0, ldc, rn, 0);
    }
}

/* ================================================================ Q4_K
 *
 * 16 rows in the 16 lanes of the chains: one vector fma per super-block
 * advances sum (and one msum) of 16 outputs.
 *
 * Few columns (decode): per row, the 128 qs bytes are two 64-byte loads;
 * their low nibbles are sub-blocks (0 | 2) and (4 | 6) (lower | upper 256
 * bits), the high nibbles (1 | 3) and (5 | 7); each column's activation
 * bytes are rearranged to match once per super-block. vpmaddubsw (nibble
 * x a, pairs within +-3840) then vpdpwssd by the sub-blocks' scales
 * (words) puts sc_j * dot into 16 dwords per row; one 16-row
 * transpose-reduce (adds only) gives lane r = isum of row r.
 * Scales and mins: the first 16 bytes of each row's super-block (d, dmin,
 * the 12 packed bytes) go to 128-bit lanes, 4 rows per zmm (rows 4j + k in
 * lane j of Z[k]); one unpack gives per lane [sc0..3 sc4..7 m0..3 m4..7].
 * imin: vpmaddwd of the mins (words) with the column's bsum pairs
 * (|b| <= 4096), then a 4-way reduce to lane r.
 */

typedef struct {
    const uint8_t *rp[16]; /* row r of the group (rows >= nr: row 0) */
    const uint8_t *np[16]; /* the same rows of the next group (prefetch only) */
} q4k_rows;

/* Lane j of z: 16 bytes d | dmin | scales[12] of row 4j + k; returns lane
 * j = [sc0..3 | sc4..7 | m0..3 | m4..7] (ref.c's k4_scale_min). */
AI __m512i q4k_scales(__m512i z)
{
    /* dwords: 1 = w0 (bytes 0-3 of scales), 2 = w1, 3 = w2 */
    __m512i p = _mm512_shuffle_epi32(z, (_MM_PERM_ENUM)_MM_SHUFFLE(3, 2, 3, 1)); /* w0 w2 w1 w2 */
    __m512i q = _mm512_shuffle_epi32(z, (_MM_PERM_ENUM)_MM_SHUFFLE(2, 0, 1, 0)); /* .. w0 .. w1 */
    p = _mm512_srlv_epi32(p, _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 0, 4)));
    p = _mm512_and_si512(p, _mm512_broadcast_i32x4(_mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)));
    q = _mm512_srli_epi32(q, 2);
    /* p | (q & mask): 0xF8 */
    return _mm512_ternarylogic_epi32(p, q, _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0x30303030, 0, 0x30303030)), 0xF8);
}

/* 128-bit lane j of v in all four lanes (j a constant once unrolled; the
 * switch keeps the immediate literal for clang and -O0). */
AI __m512i lane_bcast(__m512i v, int j)
{
    switch (j) {
    case 0: return _mm512_shuffle_i32x4(v, v, 0x00);
    case 1: return _mm512_shuffle_i32x4(v, v, 0x55);
    case 2: return _mm512_shuffle_i32x4(v, v, 0xAA);
    default: return _mm512_shuffle_i32x4(v, v, 0xFF);
    }
}

/* 16 rows' dwords -> lane r = sum of row r's 16 dwords. Pairs first (the
 * caller may keep only the pair results live). */
AI __m512i red_pair(__m512i a, __m512i b)
{
    return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
AI __m512i red_quad(__m512i u0, __m512i u1)
{
    return _mm512_add_epi32(_mm512_unpacklo_epi64(u0, u1), _mm512_unpackhi_epi64(u0, u1));
}
AI __m512i red_final(const __m512i v[4])
{
    __m512i x0 = _mm512_add_epi32(_mm512_shuffle_i32x4(v[0], v[1], 0x88), _mm512_shuffle_i32x4(v[0], v[1], 0xDD));
    __m512i x1 = _mm512_add_epi32(_mm512_shuffle_i32x4(v[2], v[3], 0x88), _mm512_shuffle_i32x4(v[2], v[3], 0xDD));
    return _mm512_add_epi32(_mm512_shuffle_i32x4(x0, x1, 0x88), _mm512_shuffle_i32x4(x0, x1, 0xDD));
}

/* Column of a super-block: its bsum pairs (words) in every 128-bit lane. */
AI __m512i q4k_bpairs(const blk_q8_k *ab)
{
    __m256i p = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)ab->bsums), _mm256_set1_epi16(1));
    return _mm512_broadcast_i32x4(_mm256_cvtepi32_epi16(p));
}

/* Word patterns for vpshufb on a row's scale lane [sc0..7 m0..7]:
 * Q4K_PAT[p] (p < 4) = sub-block scales matching the nibble vectors
 * (sc0|sc2, sc1|sc3, sc4|sc6, sc5|sc7: lower | upper 256 bits);
 * Q4K_PAT[4] = the 8 mins as words. */
static const int16_t Q4K_PAT[5][32] __attribute__((aligned(64))) = {
#define W8(x) (int16_t)(0x8000 | (x)), (int16_t)(0x8000 | (x)), (int16_t)(0x8000 | (x)), (int16_t)(0x8000 | (x)), \
              (int16_t)(0x8000 | (x)), (int16_t)(0x8000 | (x)), (int16_t)(0x8000 | (x)), (int16_t)(0x8000 | (x))
    {W8(0), W8(0), W8(2), W8(2)}, {W8(1), W8(1), W8(3), W8(3)},
    {W8(4), W8(4), W8(6), W8(6)}, {W8(5), W8(5), W8(7), W8(7)},
#undef W8
#define M8 (int16_t)0x8008, (int16_t)0x8009, (int16_t)0x800a, (int16_t)0x800b, \
           (int16_t)0x800c, (int16_t)0x800d, (int16_t)0x800e, (int16_t)0x800f
    {M8, M8, M8, M8},
#undef M8
};
AI __m512i q4k_pat(int p) { return _mm512_load_si512(Q4K_PAT[p]); }

/* Per column and super-block: the activation bytes in the nibble vectors'
 * order (sub-blocks 0|2, 1|3, 4|6, 5|7), its bsum pairs and d. */
typedef struct {
    __m512i q[4];
    __m512i bp;
    __m512 d;
} q4k_act;

AI void q4k_act_load(const blk_q8_k *ab, q4k_act *x)
{
    __m512i a0 = loadu512(ab->qs), a1 = loadu512(ab->qs + 64), a2 = loadu512(ab->qs + 128),
            a3 = loadu512(ab->qs + 192);
    x->q[0] = _mm512_shuffle_i64x2(a0, a1, 0x44);
    x->q[1] = _mm512_shuffle_i64x2(a0, a1, 0xEE);
    x->q[2] = _mm512_shuffle_i64x2(a2, a3, 0x44);
    x->q[3] = _mm512_shuffle_i64x2(a2, a3, 0xEE);
    x->bp = q4k_bpairs(ab);
    x->d = _mm512_set1_ps(ab->d);
}

/* NC columns (fixed, small) against the 16 rows, all nb super-blocks. */
AI void q4k_tile(int nb, int NC, const q4k_rows *R, const blk_q8_k *const ac[], float *s, size_t ldc,
                 __mmask16 mask)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 sum[2], msum[2];
    _Pragma("GCC unroll 2")
    for (int c = 0; c < NC; c++) sum[c] = msum[c] = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++) {
        const size_t bo = (size_t)i * sizeof(blk_q4_k);
        prefetch_rows(R->np, 16, bo, 192);
        __m512i sc[4], mw[4];
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) {
            __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(R->rp[k] + bo)));
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(R->rp[4 + k] + bo)), 1);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(R->rp[8 + k] + bo)), 2);
            v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(R->rp[12 + k] + bo)), 3);
            if (k == 0) sc[0] = v;
            else if (k == 1) {
                mw[0] = _mm512_unpacklo_epi32(sc[0], v);
                sc[0] = q4k_scales(sc[0]);
                sc[1] = q4k_scales(v);
            } else if (k == 2) sc[2] = v;
            else {
                mw[1] = _mm512_unpacklo_epi32(sc[2], v);
                sc[2] = q4k_scales(sc[2]);
                sc[3] = q4k_scales(v);
            }
        }
        /* dword r = d | dmin << 16 of row r */
        __m512i dd = _mm512_unpacklo_epi64(mw[0], mw[1]);
        const __m512 dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
        const __m512 dmw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) mw[k] = _mm512_shuffle_epi8(sc[k], q4k_pat(4));
        q4k_act x[2];
        _Pragma("GCC unroll 2")
        for (int c = 0; c < NC; c++) q4k_act_load(&ac[c][i], &x[c]);
        __m512i u[2][2], v[2][4];
        _Pragma("GCC unroll 16")
        for (int r = 0; r < 16; r++) {
            const __m512i t = lane_bcast(sc[r % 4], r / 4);
            const uint8_t *qs = R->rp[r] + bo + 16;
            const __m512i x0 = loadu512(qs), x1 = loadu512(qs + 64);
            const __m512i wq[4] = {_mm512_and_si512(x0, m4), _mm512_and_si512(_mm512_srli_epi16(x0, 4), m4),
                                   _mm512_and_si512(x1, m4), _mm512_and_si512(_mm512_srli_epi16(x1, 4), m4)};
            __m512i acc[2];
            _Pragma("GCC unroll 4")
            for (int p = 0; p < 4; p++) {
                const __m512i scp = _mm512_shuffle_epi8(t, q4k_pat(p));
                _Pragma("GCC unroll 2")
                for (int c = 0; c < NC; c++) {
                    const __m512i m = _mm512_maddubs_epi16(wq[p], x[c].q[p]);
                    acc[c] = p ? _mm512_dpwssd_epi32(acc[c], m, scp) : _mm512_madd_epi16(m, scp);
                }
            }
            _Pragma("GCC unroll 2")
            for (int c = 0; c < NC; c++) {
                if (r % 2 == 0) u[c][0] = acc[c];
                else if (r % 4 == 1) u[c][1] = red_pair(u[c][0], acc[c]);
                else v[c][r / 4] = red_quad(u[c][1], red_pair(u[c][0], acc[c]));
            }
        }
        _Pragma("GCC unroll 2")
        for (int c = 0; c < NC; c++) {
            const __m512i isum = red_final(v[c]);
            __m512i y[4];
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) y[k] = _mm512_madd_epi16(mw[k], x[c].bp);
            /* lane j of y[k]: 4 partials of row 4j + k -> dword 4j + k */
            const __m512i imin = red_quad(red_pair(y[0], y[1]), red_pair(y[2], y[3]));
            sum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, x[c].d), sum[c]);
            msum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin), _mm512_mul_ps(dmw, x[c].d), msum[c]);
        }
    }
    _Pragma("GCC unroll 2")
    for (int c = 0; c < NC; c++) _mm512_mask_storeu_ps(s + (size_t)c * ldc, mask, _mm512_sub_ps(sum[c], msum[c]));
}

/* ---- Q4_K, many columns (prefill): rows in lanes, no reduction ----
 *
 * A chunk of Q4K_KC super-blocks of the 16 rows is repacked once so that
 * dword lane r of W[i][j][k] = the 4 nibbles of row r, elements
 * 32j + 4k .. +3 (super-block i, sub-block j < 8, k < 8). For a column,
 * vpdpbusd(W[i][j][k], broadcast activation dword) over k gives the 16
 * rows' exact sub-block dots S_j (|S_j| <= 61440), vpmulld by the rows'
 * scales sc_j and a sum over j gives isum in lane r; imin likewise from
 * vpdpwssd of (m_j, m_j) word pairs with the bsum pair dword (bsums[2j],
 * bsums[2j+1]). The chain steps are then the same vector fmas as above.
 * The columns' chains wait in a stack array between chunks (load, chunk,
 * store keeps each chain's order).
 */
enum {
    Q4K_KC = 4,     /* super-blocks per repacked chunk (16 KiB of W) */
    Q4K_PANEL = 64, /* columns whose chains live on the stack */
    Q4K_CT = 8      /* columns per register tile (more spill) */
};

typedef struct {
    __m512i w[Q4K_KC][8][8]; /* super-block, sub-block, dword: lane r = row r */
    __m512i sc[Q4K_KC][8];   /* lane r = sc_j of row r (dword) */
    __m512i mm[Q4K_KC][8];   /* lane r = m_j | m_j << 16 */
    __m512 dw[Q4K_KC], dmw[Q4K_KC];
} q4k_pack;

/* pshufb patterns on a rows-in-lanes dword of 4 bytes: byte b -> dword
 * (b < 4), byte b -> both words (4 <= b < 8, as b - 4). */
static const int8_t Q4K_BPAT[8][16] __attribute__((aligned(16))) = {
#define PD(b) b, -1, -1, -1, 4 + b, -1, -1, -1, 8 + b, -1, -1, -1, 12 + b, -1, -1, -1
#define PW(b) b, -1, b, -1, 4 + b, -1, 4 + b, -1, 8 + b, -1, 8 + b, -1, 12 + b, -1, 12 + b, -1
    {PD(0)}, {PD(1)}, {PD(2)}, {PD(3)}, {PW(0)}, {PW(1)}, {PW(2)}, {PW(3)},
#undef PD
#undef PW
};
AI __m512i q4k_bpat(int p) { return _mm512_broadcast_i32x4(_mm_load_si128((const __m128i *)Q4K_BPAT[p])); }

AI __m512i load4x128(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3)
{
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p0));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p1), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p2), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)p3), 3);
}

/* 4x4 dword transpose inside each 128-bit lane: lane m of v[q] = 4 dwords
 * of row 4m + q -> dword lane 4m + q of t[d] = dword d of that row. */
AI void transpose4(const __m512i v[4], __m512i t[4])
{
    __m512i t0 = _mm512_unpacklo_epi32(v[0], v[1]), t1 = _mm512_unpackhi_epi32(v[0], v[1]);
    __m512i t2 = _mm512_unpacklo_epi32(v[2], v[3]), t3 = _mm512_unpackhi_epi32(v[2], v[3]);
    t[0] = _mm512_unpacklo_epi64(t0, t2);
    t[1] = _mm512_unpackhi_epi64(t0, t2);
    t[2] = _mm512_unpacklo_epi64(t1, t3);
    t[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* The 16 rows' headers in lanes (z[0]: lane r = d | dmin << 16 of row r;
 * z[1..3]: lane r = scales[0..3], [4..7], [8..11] of row r) -> lane r = row
 * r: d and dmin as floats, sc_j as dwords, (m_j, m_j) as word pairs. The
 * 6-bit scale / min unpack
 * of ref.c's k4_scale_min done on rows in lanes (j < 4: sc = q[j] & 63,
 * m = q[j+4] & 63; j >= 4: sc = (q[j+4] & 15) | (q[j-4] >> 6) << 4,
 * m = (q[j+4] >> 4) | (q[j] >> 6) << 4, bytewise on the three dwords). */
AI void q4k_hdr_lanes(const __m512i z[4], __m512 *dw, __m512 *dmw, __m512i sc[8], __m512i mm[8])
{
    const __m512i m3f = _mm512_set1_epi8(0x3f), m0f = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    *dw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(z[0]));
    *dmw = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(z[0], 16)));
    __m512i t[4];
    t[0] = _mm512_and_si512(z[1], m3f);
    t[1] = _mm512_or_si512(_mm512_and_si512(z[3], m0f), _mm512_and_si512(_mm512_srli_epi32(z[1], 2), m30));
    t[2] = _mm512_and_si512(z[2], m3f);
    t[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(z[3], 4), m0f),
                           _mm512_and_si512(_mm512_srli_epi32(z[2], 2), m30));
    _Pragma("GCC unroll 8")
    for (int j = 0; j < 8; j++) {
        sc[j] = _mm512_shuffle_epi8(t[j / 4], q4k_bpat(j % 4));
        mm[j] = _mm512_shuffle_epi8(t[2 + j / 4], q4k_bpat(4 + j % 4));
    }
}

/* 16-byte piece p of the 16 rows' qs, transposed (t[d]: lane r = dword
 * 4p + d of row r) = sub-blocks 2g, 2g+1 (g = p / 2), dwords k = 4 (p % 2)
 * + d -> the nibble-split W of a q4k_pack. */
AI void q4k_piece(const __m512i t[4], int p, __m512i w[8][8])
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    _Pragma("GCC unroll 4")
    for (int d = 0; d < 4; d++) {
        w[2 * (p / 2)][4 * (p % 2) + d] = _mm512_and_si512(t[d], m4);
        w[2 * (p / 2) + 1][4 * (p % 2) + d] = _mm512_and_si512(_mm512_srli_epi16(t[d], 4), m4);
    }
}

static void q4k_pack_fill(q4k_pack *pk, const q4k_rows *R, int i0, int kb)
{
    for (int i = 0; i < kb; i++) {
        const size_t bo = (size_t)(i0 + i) * sizeof(blk_q4_k);
        prefetch_rows(R->np, 16, bo, 192);
        __m512i v[4], t[4];
        _Pragma("GCC unroll 4")
        for (int q = 0; q < 4; q++)
            v[q] = load4x128(R->rp[q] + bo, R->rp[4 + q] + bo, R->rp[8 + q] + bo, R->rp[12 + q] + bo);
        transpose4(v, t); /* rows in lanes: d|dmin, scale words 0-3, 4-7, 8-11 */
        q4k_hdr_lanes(t, &pk->dw[i], &pk->dmw[i], pk->sc[i], pk->mm[i]);
        _Pragma("GCC unroll 8")
        for (int p = 0; p < 8; p++) {
            const size_t o = bo + 16 + 16 * (size_t)p;
            _Pragma("GCC unroll 4")
            for (int q = 0; q < 4; q++)
                v[q] = load4x128(R->rp[q] + o, R->rp[4 + q] + o, R->rp[8 + q] + o, R->rp[12 + q] + o);
            transpose4(v, t);
            q4k_piece(t, p, pk->w[i]);
        }
    }
}

/* Packed layout (kern_table.pack), per row group of 16 and super-block i,
 * 2304 bytes (16 rows' worth) at i * 2304 of the group: 4 zmm of headers
 * already in lanes (zmm 0: lane r = d | dmin << 16 of row r; zmms 1-3:
 * lane r = scales[0..3], [4..7], [8..11] of row r), then 32 zmm of quants
 * (zmm 4p + d: lane r = qs dword 4p + d of row r, the transposed pieces).
 * Read in that order: one sequential run. */
enum { Q4K_PK = 16 * sizeof(blk_q4_k) };

static void q4k_pack_fill_packed(q4k_pack *pk, const uint8_t *src, int kb)
{
    for (int i = 0; i < kb; i++, src += Q4K_PK) {
        __m512i v[4], t[4];
        _Pragma("GCC unroll 4")
        for (int q = 0; q < 4; q++) v[q] = loadu512(src + 64 * q);
        q4k_hdr_lanes(v, &pk->dw[i], &pk->dmw[i], pk->sc[i], pk->mm[i]);
        _Pragma("GCC unroll 8")
        for (int p = 0; p < 8; p++) {
            _Pragma("GCC unroll 4")
            for (int d = 0; d < 4; d++) t[d] = loadu512(src + 256 + 64 * (4 * p + d));
            q4k_piece(t, p, pk->w[i]);
        }
    }
}

AI __m512i bcast32(const void *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* CT columns (ab[c]: super-block i0 of column c) through the chunk's kb
 * super-blocks; chains from / to sums (2 per column: sum, msum). */
AI void q4k_panel_tile(const q4k_pack *pk, int kb, int CT, const blk_q8_k *const ab[], __m512 *sums)
{
    __m512 sum[Q4K_CT], msum[Q4K_CT];
    _Pragma("GCC unroll 8")
    for (int c = 0; c < CT; c++) {
        sum[c] = sums[2 * c];
        msum[c] = sums[2 * c + 1];
    }
    for (int i = 0; i < kb; i++) {
        __m512i isum[Q4K_CT];
        _Pragma("GCC unroll 8")
        for (int j = 0; j < 8; j++) {
            __m512i sj[Q4K_CT];
            _Pragma("GCC unroll 8")
            for (int k = 0; k < 8; k++) {
                const __m512i w = pk->w[i][j][k];
                _Pragma("GCC unroll 8")
                for (int c = 0; c < CT; c++) {
                    const __m512i av = bcast32(ab[c][i].qs + 32 * j + 4 * k);
                    sj[c] = k ? _mm512_dpbusd_epi32(sj[c], w, av) : _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, av);
                }
            }
            _Pragma("GCC unroll 8")
            for (int c = 0; c < CT; c++) {
                const __m512i t = _mm512_mullo_epi32(sj[c], pk->sc[i][j]);
                isum[c] = j ? _mm512_add_epi32(isum[c], t) : t;
            }
        }
        _Pragma("GCC unroll 8")
        for (int c = 0; c < CT; c++) {
            __m512i imin = _mm512_setzero_si512();
            _Pragma("GCC unroll 8")
            for (int j = 0; j < 8; j++) imin = _mm512_dpwssd_epi32(imin, pk->mm[i][j], bcast32(ab[c][i].bsums + 2 * j));
            const __m512 da = _mm512_set1_ps(ab[c][i].d);
            sum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[c]), _mm512_mul_ps(pk->dw[i], da), sum[c]);
            msum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin), _mm512_mul_ps(pk->dmw[i], da), msum[c]);
        }
    }
    _Pragma("GCC unroll 8")
    for (int c = 0; c < CT; c++) {
        sums[2 * c] = sum[c];
        sums[2 * c + 1] = msum[c];
    }
}

/* R: the 16 rows in the file's layout, or packed: the group's packed bytes
 * (then R is not read). */
static void q4k_panel(int nb, int nc, float *s, size_t ldc, const q4k_rows *R, const uint8_t *packed,
                      const uint8_t *a, size_t astride, __mmask16 mask)
{
    q4k_pack pk;
    __m512 sums[2 * Q4K_PANEL];
    for (int c0 = 0; c0 < nc; c0 += Q4K_PANEL) {
        const int np = nc - c0 < Q4K_PANEL ? nc - c0 : Q4K_PANEL;
        for (int c = 0; c < 2 * np; c++) sums[c] = _mm512_setzero_ps();
        for (int i0 = 0; i0 < nb; i0 += Q4K_KC) {
            const int kb = nb - i0 < Q4K_KC ? nb - i0 : Q4K_KC;
            if (packed)
                q4k_pack_fill_packed(&pk, packed + (size_t)i0 * Q4K_PK, kb);
            else
                q4k_pack_fill(&pk, R, i0, kb);
            int c = 0;
            for (; c + Q4K_CT <= np; c += Q4K_CT) {
                const blk_q8_k *ab[Q4K_CT];
                for (int k = 0; k < Q4K_CT; k++) ab[k] = (const blk_q8_k *)(a + (size_t)(c0 + c + k) * astride) + i0;
                q4k_panel_tile(&pk, kb, Q4K_CT, ab, sums + 2 * c);
            }
            for (; c < np;) {
                const blk_q8_k *ab[4];
                const int ct = np - c >= 4 ? 4 : np - c >= 2 ? 2 : 1;
                for (int k = 0; k < ct; k++) ab[k] = (const blk_q8_k *)(a + (size_t)(c0 + c + k) * astride) + i0;
                if (ct == 4) q4k_panel_tile(&pk, kb, 4, ab, sums + 2 * c);
                else if (ct == 2) q4k_panel_tile(&pk, kb, 2, ab, sums + 2 * c);
                else q4k_panel_tile(&pk, kb, 1, ab, sums + 2 * c);
                c += ct;
            }
        }
        for (int c = 0; c < np; c++)
            _mm512_mask_storeu_ps(s + (size_t)(c0 + c) * ldc, mask, _mm512_sub_ps(sums[2 * c], sums[2 * c + 1]));
    }
}

#ifndef Q4K_PANEL_MIN_NC
#define Q4K_PANEL_MIN_NC 3
#endif

void kx512_q4_k_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride)
{
    const int nb = n / QK_K;
    const uint8_t *wb = w, *ab = a;
    for (int r0 = 0; r0 < nr; r0 += 16) {
        const int rn = nr - r0 < 16 ? nr - r0 : 16;
        q4k_rows R;
        _Pragma("GCC unroll 16")
        for (int r = 0; r < 16; r++) R.rp[r] = wb + (size_t)(r0 + (r < rn ? r : 0)) * wstride;
        for (int r = 0; r < 16; r++) R.np[r] = R.rp[r] + 16 * wstride;
        const __mmask16 mask = (__mmask16)((1u << rn) - 1);
        if (nc >= Q4K_PANEL_MIN_NC) {
            q4k_panel(nb, nc, s + r0, ldc, &R, NULL, ab, astride, mask);
            continue;
        }
        int c = 0;
        for (; c + 2 <= nc; c += 2) {
            const blk_q8_k *ac[2] = {(const blk_q8_k *)(ab + (size_t)c * astride),
                                     (const blk_q8_k *)(ab + (size_t)(c + 1) * astride)};
            q4k_tile(nb, 2, &R, ac, s + (size_t)c * ldc + r0, ldc, mask);
        }
        if (c < nc) {
            const blk_q8_k *ac[1] = {(const blk_q8_k *)(ab + (size_t)c * astride)};
            q4k_tile(nb, 1, &R, ac, s + (size_t)c * ldc + r0, ldc, mask);
        }
    }
}

/* ---- Q4_K, packed rows ----
 *
 * Decode (1 or 2 columns) straight from the packed bytes: per super-block
 * the headers give sc_j / (m_j, m_j) / d / dmin in lanes (q4k_hdr_lanes), each
 * quant zmm is split once (low nibbles: sub-block 2g; high nibbles kept in
 * place, 16 * nib: sub-block 2g+1) and meets the broadcast activation
 * dwords through vpdpbusd; S_j times sc_j (vpmulld) into an even and an
 * odd sum, the odd one 16 times too big (exact: |16 S_j sc_j| * 4 < 2^28),
 * isum = even + odd / 16. Then ref's two chains, as in q4k_tile.
 * The weights get no software prefetch: in a TinyLlama Q4_K_M decode
 * step (one packed block streamed end to end) the hardware prefetcher
 * alone streams Q4_K as fast as the Q6_K matrices of the same step, while
 * prefetcht0 half a super-block ahead cost 12%, two ahead 4%, three 18%,
 * four 26% (one super-block: 1%; prefetchnta two ahead: 3%). */
AI void q4k_packed_tile(int nb, int NC, const uint8_t *src, const blk_q8_k *const ac[], float *s, size_t ldc)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f), m4h = _mm512_set1_epi8((char)0xf0);
    __m512 sum[2], msum[2];
    _Pragma("GCC unroll 2")
    for (int c = 0; c < NC; c++) sum[c] = msum[c] = _mm512_setzero_ps();
    for (int i = 0; i < nb; i++, src += Q4K_PK) {
        __m512i v[4], sc[8], mm[8];
        __m512 dw, dmw;
        /* Rows longer than 8 super-blocks stream more than L1 holds between
         * two reads of the same activation block, which then comes from L2
         * while the weights' misses are in flight: fetched one super-block
         * ahead (DRAM stream, n 3072-8192: 23-27 -> 26-28 GB/s; at 2048 it
         * cost 1-2 GB/s, hence only then). Past the last block it touches
         * nothing that faults. */
        if (nb > 8)
            _Pragma("GCC unroll 2")
            for (int c = 0; c < NC; c++)
                _Pragma("GCC unroll 5")
                for (int k = 0; k < 5; k++)
                    _mm_prefetch((const char *)((uintptr_t)(ac[c] + i + 1) + 64 * (uintptr_t)k), _MM_HINT_T0);
        _Pragma("GCC unroll 4")
        for (int q = 0; q < 4; q++) v[q] = loadu512(src + 64 * q);
        q4k_hdr_lanes(v, &dw, &dmw, sc, mm);
        __m512i ie[2], io[2];
        _Pragma("GCC unroll 4")
        for (int g = 0; g < 4; g++) {
            __m512i se[2], so[2];
            _Pragma("GCC unroll 8")
            for (int k = 0; k < 8; k++) {
                const __m512i t = loadu512(src + 256 + 64 * (4 * (2 * g + k / 4) + k % 4));
                const __m512i lo = _mm512_and_si512(t, m4), hi = _mm512_and_si512(t, m4h);
                _Pragma("GCC unroll 2")
                for (int c = 0; c < NC; c++) {
                    const int8_t *q = ac[c][i].qs + 64 * g + 4 * k;
                    se[c] = dpbusd_b(k ? se[c] : _mm512_setzero_si512(), lo, q);
                    so[c] = dpbusd_b(k ? so[c] : _mm512_setzero_si512(), hi, q + 32);
                }
            }
            _Pragma("GCC unroll 2")
            for (int c = 0; c < NC; c++) {
                const __m512i e = _mm512_mullo_epi32(se[c], sc[2 * g]), o = _mm512_mullo_epi32(so[c], sc[2 * g + 1]);
                ie[c] = g ? _mm512_add_epi32(ie[c], e) : e;
                io[c] = g ? _mm512_add_epi32(io[c], o) : o;
            }
        }
        _Pragma("GCC unroll 2")
        for (int c = 0; c < NC; c++) {
            const __m512i isum = _mm512_add_epi32(ie[c], _mm512_srai_epi32(io[c], 4));
            __m512i imin = _mm512_setzero_si512();
            _Pragma("GCC unroll 8")
            for (int j = 0; j < 8; j++) imin = _mm512_dpwssd_epi32(imin, mm[j], bcast32(ac[c][i].bsums + 2 * j));
            const __m512 da = _mm512_set1_ps(ac[c][i].d);
            sum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, da), sum[c]);
            msum[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin), _mm512_mul_ps(dmw, da), msum[c]);
        }
    }
    _Pragma("GCC unroll 2")
    for (int c = 0; c < NC; c++) _mm512_storeu_ps(s + (size_t)c * ldc, _mm512_sub_ps(sum[c], msum[c]));
}

void kx512_q4_k_pack(int n, int nr, const void *w, size_t wstride, void *out)
{
    const int nb = n / QK_K;
    uint8_t *o = out;
    for (int g = 0; g < nr / 16; g++) {
        const uint8_t *rp[16];
        for (int r = 0; r < 16; r++) rp[r] = (const uint8_t *)w + (size_t)(16 * g + r) * wstride;
        for (int i = 0; i < nb; i++, o += Q4K_PK) {
            const size_t bo = (size_t)i * sizeof(blk_q4_k);
            __m512i v[4], t[4];
            for (int q = 0; q < 4; q++) v[q] = load4x128(rp[q] + bo, rp[4 + q] + bo, rp[8 + q] + bo, rp[12 + q] + bo);
            transpose4(v, t);
            for (int q = 0; q < 4; q++) _mm512_storeu_si512(o + 64 * q, t[q]);
            for (int p = 0; p < 8; p++) {
                const size_t off = bo + 16 + 16 * (size_t)p;
                for (int q = 0; q < 4; q++) v[q] = load4x128(rp[q] + off, rp[4 + q] + off, rp[8 + q] + off, rp[12 + q] + off);
                transpose4(v, t);
                for (int d = 0; d < 4; d++) _mm512_storeu_si512(o + 256 + 64 * (4 * p + d), t[d]);
            }
        }
    }
}

void kx512_q4_k_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                               const void *a, size_t astride)
{
    const int nb = n / QK_K;
    const uint8_t *ab = a;
    for (int r0 = 0; r0 + 16 <= nr; r0 += 16) {
        const uint8_t *src = (const uint8_t *)w + (size_t)r0 * wstride;
        if (nc >= Q4K_PANEL_MIN_NC) {
            q4k_panel(nb, nc, s + r0, ldc, NULL, src, ab, astride, 0xffff);
            continue;
        }
        int c = 0;
        for (; c + 2 <= nc; c += 2) {
            const blk_q8_k *ac[2] = {(const blk_q8_k *)(ab + (size_t)c * astride),
                                     (const blk_q8_k *)(ab + (size_t)(c + 1) * astride)};
            q4k_packed_tile(nb, 2, src, ac, s + (size_t)c * ldc + r0, ldc);
        }
        if (c < nc) {
            const blk_q8_k *ac[1] = {(const blk_q8_k *)(ab + (size_t)c * astride)};
            q4k_packed_tile(nb, 1, src, ac, s + (size_t)c * ldc + r0, ldc);
        }
    }
}

/* ---- Q6_K, packed rows (layout above q6k_tile) ---- */

void kx512_q6_k_pack(int n, int nr, const void *w, size_t wstride, void *out)
{
    const int nb = n / QK_K;
    uint8_t *o = out;
    for (int g = 0; g < nr / 16; g++)
        for (int i = 0; i < nb; i++, o += Q6_PK)
            for (int r = 0; r < 16; r++) {
                const blk_q6_k *b = (const blk_q6_k *)((const uint8_t *)w + (size_t)(16 * g + r) * wstride) + i;
                uint8_t *x = o + 32 + (size_t)r * Q6_PK_ROW;
                memcpy(o + 2 * r, &b->d, 2);
                memcpy(x, b->ql, 128);
                memcpy(x + 128, b->qh, 64);
                memcpy(x + 192, b->scales, 16);
            }
}

void kx512_q6_k_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                               const void *a, size_t astride)
{
    const int nb = n / QK_K;
    const uint8_t *ab = a;
    for (int r0 = 0; r0 + 16 <= nr; r0 += 16) {
        const uint8_t *rp[16];
        for (int r = 0; r < 16; r++) rp[r] = (const uint8_t *)w + (size_t)r0 * wstride;
        q6k_cols(nb, nc, rp, _mm512_setzero_si512(), 0, ab, astride, s + r0, ldc, 16, 1);
    }
}
