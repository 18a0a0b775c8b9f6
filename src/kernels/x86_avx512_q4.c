/* kernels/x86_avx512_q4.c — AVX-512 (VNNI) matrix kernels: q4_0 iq4_nl.
 * Declared in quant.h, entries of kern_table_avx512.mul_mat; compiled with
 * the avx512 flags, called only after kern_select checked the CPU. Same
 * contract as kern_mul_mat_fn: any nr, nc, 2-byte aligned rows and strides,
 * every output bit-identical to ref.c's vec_dot of its pair. No allocation;
 * up to ~34 KiB of stack (prefill buffers).
 *
 * Both are "chain" types (ref.c): per output, one serial float chain
 *     sum = fmaf((float)isum_b, d_w[b] * d_a[b], sum)      b = 0, 1, ...
 * with isum_b the block's exact integer dot. So we put 16 WEIGHT ROWS IN
 * THE 16 LANES of a zmm: one vector fma per block advances 16 chains, each
 * lane doing exactly the scalar operations of ref.c in the same order.
 *
 * Rows in lanes. For block b of 16 rows we build 8 vectors W[k] (k < 8):
 * dword lane r of W[k] = 4 unsigned quants of row r, elements 4k..4k+3
 * (k < 4: low nibbles of qs[4k..4k+3]; k >= 4: high nibbles of
 * qs[4(k-4)..], i.e. elements 16+4(k-4)..). Then for one activation
 * column, vpdpbusd(W[k], broadcast(dword k of a.qs)) adds to every lane
 * its row's 4-element dot; 8 of them give the 16 rows' whole block dots,
 * no horizontal reduction. The quants are unsigned (Q4_0: nib; IQ4_NL:
 * table value + 128), so isum = u . a - K * sum(a) with K = 8 or 128; the
 * -K * sum(a) of each activation block is computed once per call (act_prep)
 * and starts the integer accumulation. All integer steps are exact
 * (|isum| < 2^20), so their order is free; only the float steps above
 * follow ref.c.
 *
 * Building W (rows_t16, w_block): 16 bytes of rows 4m+q (m < 4) go to the
 * 128-bit lanes of V[q]; a 4x4 dword transpose inside each 128-bit lane
 * gives T[j], dword lane r = bytes 4j..4j+3 of row r; the nibble split of
 * T[j] gives W[j] and W[4+j].
 *
 * Three loop orders:
 *  - decode, nc = 1 (mm_fused): each block is unpacked in registers and
 *    used at once; the weights stream once. 8 blocks at a time are
 *    transposed straight from the row bytes, scales included (group8), and
 *    the next call's rows are prefetched into L2 meanwhile, in small steps
 *    (bursts of a few dozen prefetches measured 10-15% slower streaming).
 *  - several users decoding together, 2 <= nc <= NC_FUSED (mm_multi): the
 *    same, but the two dwords of each block holding d bytes are merged
 *    into one "seam" dword so that a column's block costs exactly 8
 *    vpdpbusd (group8m), the hi nibbles are shifted once for all columns,
 *    and the activation prep is shared by the call's row groups. Near the
 *    vpdpbusd + vmulps + vfmadd port bound (~10 cycles per 16-row block
 *    and column on Zen 4) plus the unpack.
 *  - prefill (mm_panel): a chunk of CB blocks of 16 rows is unpacked once
 *    into a stack buffer, then every column of a PANEL runs over it, 4
 *    columns at a time, at about one vpdpbusd per cycle; the chains wait
 *    in a stack array between chunks (load, CB blocks, store: the same
 *    per-chain order). Up to GROUPS row groups of one call share the
 *    activation prep.
 * Rows beyond nr repeat row nr-1 (nothing is read outside the rows; those
 * lanes are not stored). */
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/x86_avx512_impl.h"

#include <immintrin.h>
#include <stdint.h>
#include <string.h>


enum {
    CB = 16,     /* blocks per chunk (one activation prep covers 16 blocks) */
    PANEL = 64,  /* columns whose chains are kept on the stack (prefill) */
    NC_FUSED = 8, /* up to this many columns: decode loop order */
    NC_MULTI = 2, /* from this many columns: mm_multi */
    GROUPS = 4    /* row groups of 16 sharing one activation prep (prefill) */
};

typedef struct {
    const uint8_t *rp[16]; /* row r, or row nr-1 for r >= nr */
    size_t ws;             /* wstride */
    const uint8_t *pk;     /* packed layout: the group's bytes (then rp[0] = pk), else NULL */
} wrows;

/* Per column and chunk: -K * sum(a.qs) and f32(a.d) of each block. */
typedef struct {
    int32_t off[CB];
    float da[CB];
} act_chunk;

AI __m512i loadu512_2x256(const uint8_t *p0, const uint8_t *p1)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)p0)),
                              _mm256_loadu_si256((const __m256i *)p1), 1);
}

/* Adjacent dword pairs of the 32-dword concatenation [x, y] summed:
 * lane L = c[2L] + c[2L+1]. Halves the partials of each block. */
AI __m512i pair_add(__m512i x, __m512i y)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    return _mm512_add_epi32(_mm512_permutex2var_epi32(x, ie, y), _mm512_permutex2var_epi32(x, io, y));
}

/* The 16 halves at p, p + step, ..., p + 15 * step. Scalar loads and
 * stores: a vpgatherdd costs ~20 cycles on Zen 4, these run beside the
 * vector work on the integer ports. */
AI __m256i halves16(const uint8_t *p, size_t step)
{
    uint16_t h[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) memcpy(&h[i], p + (size_t)i * step, 2);
    return _mm256_loadu_si256((const __m256i *)h);
}

/* 16 activation blocks from a: off[i] = -K * sum(qs of block i),
 * da[i] = f32(d of block i). kv = K in every byte. */
AI void act_prep16(const uint8_t *a, __m512i kv, act_chunk *out)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i p[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        const uint8_t *b0 = a + (size_t)(2 * i) * sizeof(blk_q8_0) + 2;
        p[i] = _mm512_dpbusd_epi32(z, kv, loadu512_2x256(b0, b0 + sizeof(blk_q8_0))); /* 8 partials per block */
    }
    __m512i q0 = pair_add(p[0], p[1]), q1 = pair_add(p[2], p[3]);
    __m512i q2 = pair_add(p[4], p[5]), q3 = pair_add(p[6], p[7]); /* 4 partials */
    __m512i s = pair_add(pair_add(q0, q1), pair_add(q2, q3));     /* 2, then 1 */
    _mm512_storeu_si512(out->off, _mm512_sub_epi32(z, s));
    _mm512_storeu_ps(out->da, _mm512_cvtph_ps(halves16(a, sizeof(blk_q8_0))));
}

/* cnt (1..16) blocks: a short chunk is copied, zero-padded, to 16. */
AI void act_prep(const uint8_t *a, int cnt, __m512i kv, act_chunk *out)
{
    if (cnt == CB) {
        act_prep16(a, kv, out);
        return;
    }
    uint8_t pad[CB * sizeof(blk_q8_0)];
    memset(pad, 0, sizeof pad);
    memcpy(pad, a, (size_t)cnt * sizeof(blk_q8_0));
    act_prep16(pad, kv, out);
}

/* 4 x 16 bytes -> the 4 128-bit lanes (two ymm inserts and one zmm
 * insert measured faster on Zen 4 than three 128-bit zmm inserts). */
AI __m512i load4x128(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3)
{
    __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p0)),
                                         _mm_loadu_si128((const __m128i *)p1), 1);
    __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)p2)),
                                         _mm_loadu_si128((const __m128i *)p3), 1);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* 16 bytes at offset off of the 16 rows, transposed to rows in lanes:
 * dword lane r of T[j] = bytes off+4j..off+4j+3 of row r. V[q] holds rows
 * q, 4+q, 8+q, 12+q in its 128-bit lanes; a 4x4 dword transpose inside each
 * 128-bit lane puts row 4m+q in dword lane 4m+q. */
AI void rows_t16(const wrows *R, size_t off, __m512i T[4])
{
    __m512i v0 = load4x128(R->rp[0] + off, R->rp[4] + off, R->rp[8] + off, R->rp[12] + off);
    __m512i v1 = load4x128(R->rp[1] + off, R->rp[5] + off, R->rp[9] + off, R->rp[13] + off);
    __m512i v2 = load4x128(R->rp[2] + off, R->rp[6] + off, R->rp[10] + off, R->rp[14] + off);
    __m512i v3 = load4x128(R->rp[3] + off, R->rp[7] + off, R->rp[11] + off, R->rp[15] + off);
    __m512i t0 = _mm512_unpacklo_epi32(v0, v1), t1 = _mm512_unpackhi_epi32(v0, v1);
    __m512i t2 = _mm512_unpacklo_epi32(v2, v3), t3 = _mm512_unpackhi_epi32(v2, v3);
    T[0] = _mm512_unpacklo_epi64(t0, t2);
    T[1] = _mm512_unpackhi_epi64(t0, t2);
    T[2] = _mm512_unpacklo_epi64(t1, t3);
    T[3] = _mm512_unpackhi_epi64(t1, t3);
}

/* Packed layout (kern_table.pack): per row group of 16 and block b, at byte
 * b * PK_BLOCK of the group, the 16 rows' d (f16, row order, 32 bytes),
 * then T[0..3] (64 bytes each): dword lane r of T[j] = qs bytes 4j..4j+3 of
 * row r, i.e. rows_t16's output, stored. A group is 16 rows' bytes, so the
 * packed matrix has the file's size. Decode then streams one sequential
 * run with no byte shuffling. */
enum { PK_BLOCK = 16 * sizeof(blk_q4_0) };

/* Block at byte offset boff of the 16 rows -> W[0..7] (rows in lanes, see
 * the top) and the rows' d as floats. iq4: map nibbles through tbl. */
AI void w_block(const wrows *R, size_t boff, int iq4, __m512i tbl, __m512i W[8], __m512 *dw)
{
    __m512i T[4];
    if (R->pk) {
        const uint8_t *q = R->pk + boff / sizeof(blk_q4_0) * PK_BLOCK;
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) T[j] = _mm512_loadu_si512(q + 32 + 64 * j);
    } else {
        rows_t16(R, boff + 2, T);
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f);
#pragma GCC unroll 8
    for (int j = 0; j < 4; j++) {
        __m512i lo = _mm512_and_si512(T[j], m4);
        __m512i hi = _mm512_and_si512(_mm512_srli_epi16(T[j], 4), m4);
        if (iq4) {
            lo = _mm512_shuffle_epi8(tbl, lo);
            hi = _mm512_shuffle_epi8(tbl, hi);
        }
        W[j] = lo;
        W[4 + j] = hi;
    }
    if (R->pk) {
        *dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(R->pk + boff / sizeof(blk_q4_0) * PK_BLOCK)));
        return;
    }
    uint16_t h[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) memcpy(&h[r], R->rp[r] + boff, 2);
    *dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)h));
}

/* One column, one block: the 16 rows' exact block dots (see the top). */
AI __m512i col_isum(const __m512i W[8], const uint8_t *qs, int32_t off)
{
    __m512i lo = _mm512_set1_epi32(off), hi = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int k = 0; k < 4; k++) {
        lo = dpbusd_b(lo, W[k], qs + 4 * k);
        hi = dpbusd_b(hi, W[4 + k], qs + 16 + 4 * k);
    }
    return _mm512_add_epi32(lo, hi);
}

/* ref.c's chain step for 16 rows: sum = fma((float)isum, d_w * d_a, sum). */
AI __m512 chain_step(__m512 sum, __m512i isum, __m512 dw, float da)
{
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, _mm512_set1_ps(da)), sum);
}

/* Software prefetch of the next 16 rows (the next call's, when rows are
 * consecutive; harmless past the end): spread over this call's blocks so
 * the next call starts on warm lines. Into L2 (T2 measured best). */
typedef struct {
    uintptr_t next;  /* first byte after this call's rows (an address only: may lie past the mapping) */
    size_t total;    /* bytes to prefetch from there, over the call's nb blocks */
    size_t done;
} wprefetch;

AI wprefetch prefetch_init(const wrows *R, int rows)
{
    wprefetch pf = {(uintptr_t)R->rp[0] + (size_t)rows * R->ws, (size_t)rows * R->ws, 0};
    return pf;
}

/* Prefetch up to block b_end's share of the next rows (prefetches never
 * fault, so running past the weights' end is harmless). */
AI void prefetch_upto(wprefetch *pf, int b_end, int nb)
{
    size_t tgt = (size_t)b_end * pf->total / (size_t)nb;
    for (; pf->done < tgt; pf->done += 64) _mm_prefetch((const char *)(pf->next + pf->done), _MM_HINT_T2);
}

/* Decode, 8 blocks of the 16 rows straight from the row bytes, d
 * included (no separate d loads): 8 blocks are 144 bytes = 9 pieces of 16 = 36
 * dwords per row (rows_t16). Dword m belongs to the block pair k = m / 9;
 * with t = m % 9: t < 5 -> block 2k, whose d sits in the low half of t = 0
 * and the next block's d in the high half of t = 4; t >= 5 -> block 2k+1.
 * The d bytes get quant 0 (masked), so each dword meets the activation
 * dword at the same offset from its q8_0 block's start as the weight dword
 * has from its q4 block's start: 4t (t < 5) or 2 + 4(t - 5), plus 16 for
 * the high nibbles. Q4_0 keeps the high nibbles in place (16 * nib, no
 * shift per dword) and divides that chain's exact total by 16. */
AI void group8(const wrows *R, size_t B, int nc, const uint8_t *a, size_t astride, const act_chunk *ac,
               int i0, __m512 *acc, int iq4, __m512i tbl, wprefetch *pf, int pnum, int pden)
{
    const size_t wo = B * sizeof(blk_q4_0);
    __m512i lo[NC_FUSED], hi[NC_FUSED], T[4];
    __m512 dw_even = _mm512_setzero_ps(), dw_odd = _mm512_setzero_ps();
#pragma GCC unroll 36
    for (int m = 0; m < 36; m++) {
        if (m % 4 == 0) {
            prefetch_upto(pf, 9 * pnum + 8 * (m / 4 + 1), 9 * pden);
            rows_t16(R, wo + 4 * (size_t)m, T);
        }
        const int t = m % 9, bl = 2 * (m / 9) + (t >= 5);
        const __m512i x = T[m % 4];
        if (t == 0 || t == 5)
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                lo[c] = _mm512_set1_epi32(ac[c].off[i0 + bl]);
                hi[c] = _mm512_setzero_si512();
            }
        __m512i wl, wh;
        if (iq4) {
            const __mmask64 keep = t == 0 ? 0xCCCCCCCCCCCCCCCCull : t == 4 ? 0x3333333333333333ull : ~0ull;
            const __m512i m4 = _mm512_set1_epi8(0x0f);
            wl = _mm512_maskz_shuffle_epi8(keep, tbl, _mm512_and_si512(x, m4));
            wh = _mm512_maskz_shuffle_epi8(keep, tbl, _mm512_and_si512(_mm512_srli_epi16(x, 4), m4));
        } else {
            const int mk = t == 0 ? 0x0F0F0000 : t == 4 ? 0x00000F0F : 0x0F0F0F0F;
            wl = _mm512_and_si512(x, _mm512_set1_epi32(mk));
            wh = _mm512_and_si512(x, _mm512_set1_epi32((int)((unsigned)mk << 4)));
        }
        const size_t ao = (B + (size_t)bl) * sizeof(blk_q8_0) + (t < 5 ? 4 * t : 2 + 4 * (t - 5));
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *q = a + (size_t)c * astride + ao;
            lo[c] = dpbusd_b(lo[c], wl, q);
            hi[c] = dpbusd_b(hi[c], wh, q + 16);
        }
        if (t == 0) dw_even = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(x));
        if (t == 4) dw_odd = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(x, 16)));
        if (t == 4 || t == 8)
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                __m512i isum = _mm512_add_epi32(lo[c], iq4 ? hi[c] : _mm512_srai_epi32(hi[c], 4));
                acc[c] = chain_step(acc[c], isum, t == 4 ? dw_even : dw_odd, ac[c].da[i0 + bl]);
            }
    }
}

/* The activation side of the seam dwords of group8m: per column and block,
 * qs bytes 14, 15, 0, 1 (lo) and 30, 31, 16, 17 (hi) as one dword each. */
typedef struct {
    int32_t lo[CB], hi[CB];
} act_seam;

AI void seam_prep(const uint8_t *a, int cnt, act_seam *out)
{
    for (int i = 0; i < cnt; i++) {
        const uint8_t *q = a + (size_t)i * sizeof(blk_q8_0) + 2;
        uint16_t p0, p1, p2, p3;
        memcpy(&p0, q + 14, 2), memcpy(&p1, q, 2), memcpy(&p2, q + 30, 2), memcpy(&p3, q + 16, 2);
        out->lo[i] = (int32_t)((uint32_t)p0 | (uint32_t)p1 << 16);
        out->hi[i] = (int32_t)((uint32_t)p2 | (uint32_t)p3 << 16);
    }
}

/* Several columns, 8 blocks of the 16 rows straight from the row bytes,
 * as in group8 (same 36 transposed dwords, d taken from dwords t = 0 and
 * t = 4), but no dot product is spent on d bytes: the two dwords of block
 * 2k that hold d bytes (t = 0: d, q0, q1; t = 4: q14, q15, next d) are
 * merged into one "seam" dword q14 q15 q0 q1, which meets the column's
 * seam dword from seam_prep. So a column's block costs exactly 8 vpdpbusd
 * (lo and hi nibbles, the hi ones shifted down once for all columns) and
 * the chain step. nc < 4: lo and hi nibbles in two integer chains (enough
 * independent vpdpbusd in flight); else one. */
AI void group8m(const wrows *R, size_t B, int nc, const uint8_t *a, size_t astride, const act_chunk *ac,
                const act_seam *sm, int i0, __m512 *acc, int iq4, __m512i tbl, wprefetch *pf, int pnum,
                int pden)
{
    const size_t wo = B * sizeof(blk_q4_0);
    const int two = nc < 4;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i lo[NC_FUSED], hi[NC_FUSED], T[4], x0 = _mm512_setzero_si512();
    __m512 dw_even = _mm512_setzero_ps(), dw_odd = _mm512_setzero_ps();
#pragma GCC unroll 36
    for (int m = 0; m < 36; m++) {
        if (m % 4 == 0) { /* prefetch in 9 small steps: bursts would be partly dropped */
            prefetch_upto(pf, 9 * pnum + 8 * (m / 4 + 1), 9 * pden);
            rows_t16(R, wo + 4 * (size_t)m, T);
        }
        const int t = m % 9, bl = 2 * (m / 9) + (t >= 5);
        __m512i x = T[m % 4];
        if (t == 0) { /* d of block 2k, and q0 q1 kept for the seam */
            x0 = x;
            dw_even = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(x));
            continue;
        }
        if (t == 1 || t == 5)
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                lo[c] = _mm512_set1_epi32(ac[c].off[i0 + bl]);
                hi[c] = _mm512_setzero_si512();
            }
        if (t == 4) { /* q14 q15 of block 2k, d of block 2k+1 */
            dw_odd = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(x, 16)));
            x = _mm512_mask_blend_epi16(0xAAAAAAAAu, x, x0);
        }
        __m512i wl = _mm512_and_si512(x, m4), wh = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
        if (iq4) {
            wl = _mm512_shuffle_epi8(tbl, wl);
            wh = _mm512_shuffle_epi8(tbl, wh);
        }
        const size_t ao = (B + (size_t)bl) * sizeof(blk_q8_0) + (t < 5 ? 4 * t : 2 + 4 * (t - 5));
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            const uint8_t *ql = a + (size_t)c * astride + ao, *qh = ql + 16;
            if (t == 4) ql = (const uint8_t *)&sm[c].lo[i0 + bl], qh = (const uint8_t *)&sm[c].hi[i0 + bl];
            lo[c] = dpbusd_b(lo[c], wl, ql);
            if (two)
                hi[c] = dpbusd_b(hi[c], wh, qh);
            else
                lo[c] = dpbusd_b(lo[c], wh, qh);
        }
        if (t == 4 || t == 8)
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++)
                acc[c] = chain_step(acc[c], two ? _mm512_add_epi32(lo[c], hi[c]) : lo[c], t == 4 ? dw_even : dw_odd,
                                    ac[c].da[i0 + bl]);
    }
}

/* Decode order: nc (<= NC_FUSED) columns, chains in registers. */
AI void mm_fused(int nb, int nr, int nc, float *s, size_t ldc, const wrows *R, const uint8_t *a,
                 size_t astride, int iq4)
{
    const __m512i kv = _mm512_set1_epi8(iq4 ? (char)128 : 8);
    const __m512i tbl = _mm512_broadcast_i32x4(_mm_add_epi8(
        _mm_loadu_si128((const __m128i *)kern_iq4nl_values), _mm_set1_epi8((char)128)));
    wprefetch pf = prefetch_init(R, 16);
    __m512 acc[NC_FUSED];
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++) acc[c] = _mm512_setzero_ps();
    for (int b0 = 0; b0 < nb; b0 += CB) {
        const int cnt = nb - b0 < CB ? nb - b0 : CB;
        act_chunk ac[NC_FUSED];
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++)
            act_prep(a + (size_t)c * astride + (size_t)b0 * sizeof(blk_q8_0), cnt, kv, &ac[c]);
        int i = 0;
        for (; i + 8 <= cnt; i += 8) {
            group8(R, (size_t)(b0 + i), nc, a, astride, ac, i, acc, iq4, tbl, &pf, b0 + i, nb);
        }
        for (; i < cnt; i++) {
            const size_t b = (size_t)(b0 + i);
            __m512i W[8];
            __m512 dw;
            prefetch_upto(&pf, b0 + i + 1, nb);
            w_block(R, b * sizeof(blk_q4_0), iq4, tbl, W, &dw);
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const uint8_t *qs = a + (size_t)c * astride + b * sizeof(blk_q8_0) + 2;
                acc[c] = chain_step(acc[c], col_isum(W, qs, ac[c].off[i]), dw, ac[c].da[i]);
            }
        }
    }
    const __mmask16 m = (__mmask16)((1u << nr) - 1);
#pragma GCC unroll 8
    for (int c = 0; c < nc; c++) _mm512_mask_storeu_ps(s + (size_t)c * ldc, m, acc[c]);
}

/* Several decode columns (NC_MULTI..NC_FUSED): every block of 16 rows is
 * unpacked once in registers (w_block: 8 clean quant dwords per block, no
 * d bytes among them) and used at once by all the columns; the hi nibbles
 * are shifted down once per block, so a column's block costs exactly 8
 * vpdpbusd + the chain step. The activation prep of a chunk is shared by
 * the call's row groups: the chunk loop is outside the group loop and the
 * groups' chains wait in sums[] between chunks (load, the chunk's blocks
 * in order, store: the same per-chain order). The next call's rows are
 * prefetched into L2 over the call, as in mm_fused. */
AI void mm_multi(int nb, int ng, int rn, int nc, float *s, size_t ldc, const wrows *R, const uint8_t *a,
                 size_t astride, int iq4)
{
    const __m512i kv = _mm512_set1_epi8(iq4 ? (char)128 : 8);
    const __m512i tbl = _mm512_broadcast_i32x4(_mm_add_epi8(
        _mm_loadu_si128((const __m128i *)kern_iq4nl_values), _mm_set1_epi8((char)128)));
    __m512 sums[GROUPS][NC_FUSED];
    wprefetch pf = prefetch_init(&R[0], 16 * ng);
    for (int g = 0; g < ng; g++)
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) sums[g][c] = _mm512_setzero_ps();
    for (int b0 = 0; b0 < nb; b0 += CB) {
        const int cnt = nb - b0 < CB ? nb - b0 : CB;
        act_chunk ac[NC_FUSED];
        act_seam sm[NC_FUSED];
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            act_prep(a + (size_t)c * astride + (size_t)b0 * sizeof(blk_q8_0), cnt, kv, &ac[c]);
            seam_prep(a + (size_t)c * astride + (size_t)b0 * sizeof(blk_q8_0), cnt, &sm[c]);
        }
        for (int g = 0; g < ng; g++) {
            __m512 acc[NC_FUSED];
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) acc[c] = sums[g][c];
            int i = 0;
            for (; i + 8 <= cnt; i += 8) {
                group8m(&R[g], (size_t)(b0 + i), nc, a, astride, ac, sm, i, acc, iq4, tbl, &pf, b0 * ng + g * cnt + i,
                        nb * ng);
            }
            for (; i < cnt; i++) {
                const size_t b = (size_t)(b0 + i);
                __m512i W[8];
                __m512 dw;
                prefetch_upto(&pf, b0 * ng + g * cnt + i + 1, nb * ng);
                w_block(&R[g], b * sizeof(blk_q4_0), iq4, tbl, W, &dw);
                const uint8_t *qs = a + b * sizeof(blk_q8_0) + 2;
#pragma GCC unroll 8
                for (int c = 0; c < nc; c++)
                    acc[c] = chain_step(acc[c], col_isum(W, qs + (size_t)c * astride, ac[c].off[i]), dw, ac[c].da[i]);
            }
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) sums[g][c] = acc[c];
        }
    }
    for (int g = 0; g < ng; g++) {
        const __mmask16 m = (__mmask16)(g == ng - 1 ? (1u << rn) - 1 : 0xffffu);
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) _mm512_mask_storeu_ps(s + (size_t)c * ldc + 16 * g, m, sums[g][c]);
    }
}

/* Prefill order: chunks of CB blocks of up to GROUPS row groups of 16,
 * each unpacked once into a stack buffer; every column of a PANEL-wide
 * panel runs over it, 4 columns at a time. The activation prep of a chunk
 * is shared by the row groups (it costs about a fifth of the work when
 * done for 16 rows only). R[g]: the groups; rn: rows of the last one. */
AI void mm_panel(int nb, int ng, int rn, int nc, float *s, size_t ldc, const wrows *R, const uint8_t *a,
                 size_t astride, int iq4)
{
    const __m512i kv = _mm512_set1_epi8(iq4 ? (char)128 : 8);
    const __m512i tbl = _mm512_broadcast_i32x4(_mm_add_epi8(
        _mm_loadu_si128((const __m128i *)kern_iq4nl_values), _mm_set1_epi8((char)128)));
    __m512 sums[GROUPS][PANEL]; /* chains of the panel's columns, per row group */
    act_chunk ac[PANEL];        /* activation prep of the current chunk */
    __m512i wbuf[CB][8];        /* unpacked chunk of one row group */
    __m512 dbuf[CB];
    wprefetch pf = prefetch_init(&R[0], 16 * ng);
    for (int p0 = 0; p0 < nc; p0 += PANEL) {
        const int np = nc - p0 < PANEL ? nc - p0 : PANEL;
        const uint8_t *ap = a + (size_t)p0 * astride;
        for (int g = 0; g < ng; g++)
            for (int c = 0; c < np; c++) sums[g][c] = _mm512_setzero_ps();
        for (int b0 = 0; b0 < nb; b0 += CB) {
            const int cnt = nb - b0 < CB ? nb - b0 : CB;
            if (p0 == 0) prefetch_upto(&pf, b0 + cnt, nb);
            for (int c = 0; c < np; c++)
                act_prep(ap + (size_t)c * astride + (size_t)b0 * sizeof(blk_q8_0), cnt, kv, &ac[c]);
            for (int g = 0; g < ng; g++) {
                __m512 *sg = sums[g];
                for (int i = 0; i < cnt; i++)
                    w_block(&R[g], (size_t)(b0 + i) * sizeof(blk_q4_0), iq4, tbl, wbuf[i], &dbuf[i]);
                int c = 0;
                for (; c + 4 <= np; c += 4) {
                    const uint8_t *a0 = ap + (size_t)c * astride + (size_t)b0 * sizeof(blk_q8_0) + 2;
                    const act_chunk *x = &ac[c];
                    __m512 s0 = sg[c], s1 = sg[c + 1], s2 = sg[c + 2], s3 = sg[c + 3];
                    for (int i = 0; i < cnt; i++) {
                        const uint8_t *q = a0 + (size_t)i * sizeof(blk_q8_0);
                        s0 = chain_step(s0, col_isum(wbuf[i], q, x[0].off[i]), dbuf[i], x[0].da[i]);
                        s1 = chain_step(s1, col_isum(wbuf[i], q + astride, x[1].off[i]), dbuf[i], x[1].da[i]);
                        s2 = chain_step(s2, col_isum(wbuf[i], q + 2 * astride, x[2].off[i]), dbuf[i], x[2].da[i]);
                        s3 = chain_step(s3, col_isum(wbuf[i], q + 3 * astride, x[3].off[i]), dbuf[i], x[3].da[i]);
                    }
                    sg[c] = s0, sg[c + 1] = s1, sg[c + 2] = s2, sg[c + 3] = s3;
                }
                for (; c < np; c++) {
                    const uint8_t *a0 = ap + (size_t)c * astride + (size_t)b0 * sizeof(blk_q8_0) + 2;
                    __m512 s0 = sg[c];
                    for (int i = 0; i < cnt; i++)
                        s0 = chain_step(s0, col_isum(wbuf[i], a0 + (size_t)i * sizeof(blk_q8_0), ac[c].off[i]),
                                        dbuf[i], ac[c].da[i]);
                    sg[c] = s0;
                }
            }
        }
        for (int g = 0; g < ng; g++) {
            const __mmask16 m = (__mmask16)(g == ng - 1 ? (1u << rn) - 1 : 0xffffu);
            for (int c = 0; c < np; c++) _mm512_mask_storeu_ps(s + (size_t)(p0 + c) * ldc + 16 * g, m, sums[g][c]);
        }
    }
}

AI void mm_q4(int t, int n, int nr, int nc, float *s, size_t ldc, const void *vw, size_t wstride,
              const void *va, size_t astride)
{
    const int iq4 = t == KERN_IQ4_NL;
    const uint8_t *w = vw, *a = va;
    const int nb = n / QK_32;
    if (nr <= 0 || nc <= 0) return;
    for (int r0 = 0; r0 < nr; r0 += 16 * GROUPS) {
        wrows R[GROUPS];
        const int ng = (nr - r0 + 15) / 16 < GROUPS ? (nr - r0 + 15) / 16 : GROUPS;
        int rn = 16;
        for (int g = 0; g < ng; g++) {
            const int rg = r0 + 16 * g;
            rn = nr - rg < 16 ? nr - rg : 16;
            for (int r = 0; r < 16; r++) R[g].rp[r] = w + (size_t)(rg + (r < rn ? r : rn - 1)) * wstride;
            R[g].ws = wstride;
            R[g].pk = NULL;
        }
        if (nc > NC_FUSED) {
            mm_panel(nb, ng, rn, nc, s + r0, ldc, R, a, astride, iq4);
            continue;
        }
        if (nc >= NC_MULTI) {
            switch (nc) { /* one copy per column count: the loops over columns unroll */
            case 2: mm_multi(nb, ng, rn, 2, s + r0, ldc, R, a, astride, iq4); break;
            case 3: mm_multi(nb, ng, rn, 3, s + r0, ldc, R, a, astride, iq4); break;
            case 4: mm_multi(nb, ng, rn, 4, s + r0, ldc, R, a, astride, iq4); break;
            case 5: mm_multi(nb, ng, rn, 5, s + r0, ldc, R, a, astride, iq4); break;
            case 6: mm_multi(nb, ng, rn, 6, s + r0, ldc, R, a, astride, iq4); break;
            case 7: mm_multi(nb, ng, rn, 7, s + r0, ldc, R, a, astride, iq4); break;
            default: mm_multi(nb, ng, rn, 8, s + r0, ldc, R, a, astride, iq4); break;
            }
            continue;
        }
        for (int g = 0; g < ng; g++) {
            const int rr = g == ng - 1 ? rn : 16;
            float *sr = s + r0 + 16 * g;
            switch (nc) { /* one copy per column count: the loops over columns unroll */
            case 1: mm_fused(nb, rr, 1, sr, ldc, &R[g], a, astride, iq4); break;
            case 2: mm_fused(nb, rr, 2, sr, ldc, &R[g], a, astride, iq4); break;
            case 3: mm_fused(nb, rr, 3, sr, ldc, &R[g], a, astride, iq4); break;
            case 4: mm_fused(nb, rr, 4, sr, ldc, &R[g], a, astride, iq4); break;
            case 5: mm_fused(nb, rr, 5, sr, ldc, &R[g], a, astride, iq4); break;
            case 6: mm_fused(nb, rr, 6, sr, ldc, &R[g], a, astride, iq4); break;
            case 7: mm_fused(nb, rr, 7, sr, ldc, &R[g], a, astride, iq4); break;
            default: mm_fused(nb, rr, 8, sr, ldc, &R[g], a, astride, iq4); break;
            }
        }
    }
}

void kx512_q4_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride)
{
    mm_q4(KERN_Q4_0, n, nr, nc, s, ldc, w, wstride, a, astride);
}

void kx512_iq4_nl_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                          const void *a, size_t astride)
{
    mm_q4(KERN_IQ4_NL, n, nr, nc, s, ldc, w, wstride, a, astride);
}

/* ---- packed weights ---------------------------------------------------- */

static void pack_q4(int n, int nr, const void *vw, size_t wstride, void *out)
{
    const int nb = n / QK_32;
    uint8_t *o = out;
    for (int g = 0; g < nr / 16; g++) {
        wrows R;
        for (int r = 0; r < 16; r++) R.rp[r] = (const uint8_t *)vw + (size_t)(16 * g + r) * wstride;
        R.ws = wstride;
        R.pk = NULL;
        for (int b = 0; b < nb; b++, o += PK_BLOCK) {
            __m512i T[4];
            rows_t16(&R, (size_t)b * sizeof(blk_q4_0) + 2, T);
            for (int r = 0; r < 16; r++) memcpy(o + 2 * r, R.rp[r] + (size_t)b * sizeof(blk_q4_0), 2);
            for (int j = 0; j < 4; j++) _mm512_storeu_si512(o + 32 + 64 * j, T[j]);
        }
    }
}

void kx512_q4_0_pack(int n, int nr, const void *w, size_t wstride, void *out) { pack_q4(n, nr, w, wstride, out); }
void kx512_iq4_nl_pack(int n, int nr, const void *w, size_t wstride, void *out) { pack_q4(n, nr, w, wstride, out); }

/* Decode on packed rows: ng groups one after the other (one sequential
 * run), nc (<= NC_FUSED) columns, chains in registers. The activation prep
 * of up to PK_KB blocks is made once per call for all the groups; longer
 * rows go in K-pieces of PK_KB blocks, the chains waiting in s between
 * pieces (stored and reloaded exactly: the same per-chain order). */
enum { PK_KB = 512 };

AI void pk_fused(int nb, int ng, int nc, float *s, size_t ldc, const uint8_t *w, const uint8_t *a, size_t astride,
                 int iq4)
{
    const __m512i kv = _mm512_set1_epi8(iq4 ? (char)128 : 8);
    const __m512i tbl = _mm512_broadcast_i32x4(_mm_add_epi8(
        _mm_loadu_si128((const __m128i *)kern_iq4nl_values), _mm_set1_epi8((char)128)));
    const __m512i m4 = _mm512_set1_epi8(0x0f), m4h = _mm512_set1_epi8((char)0xf0);
    act_chunk ac[NC_FUSED][PK_KB / CB];
    for (int k0 = 0; k0 < nb; k0 += PK_KB) {
        const int kb = nb - k0 < PK_KB ? nb - k0 : PK_KB;
        for (int c = 0; c < nc; c++)
            for (int i = 0; i < kb; i += CB)
                act_prep(a + (size_t)c * astride + (size_t)(k0 + i) * sizeof(blk_q8_0), kb - i < CB ? kb - i : CB,
                         kv, &ac[c][i / CB]);
        for (int g = 0; g < ng; g++) {
            const uint8_t *q = w + ((size_t)g * nb + k0) * PK_BLOCK;
            float *sg = s + 16 * g;
            __m512 acc[NC_FUSED];
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++)
                acc[c] = k0 ? _mm512_loadu_ps(sg + (size_t)c * ldc) : _mm512_setzero_ps();
            for (int i = 0; i < kb; i++, q += PK_BLOCK) {
                __m512i W[8];
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    const __m512i t = _mm512_loadu_si512(q + 32 + 64 * j);
                    if (iq4) {
                        W[j] = _mm512_shuffle_epi8(tbl, _mm512_and_si512(t, m4));
                        W[4 + j] = _mm512_shuffle_epi8(tbl, _mm512_and_si512(_mm512_srli_epi16(t, 4), m4));
                    } else if (nc == 1) { /* high nibbles kept in place: 16 * nib, the sum divided by 16 (exact) */
                        W[j] = _mm512_and_si512(t, m4);
                        W[4 + j] = _mm512_and_si512(t, m4h);
                    } else { /* several columns: shifted down once for all of them */
                        W[j] = _mm512_and_si512(t, m4);
                        W[4 + j] = _mm512_and_si512(_mm512_srli_epi16(t, 4), m4);
                    }
                }
                const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)q));
                const size_t ao = (size_t)(k0 + i) * sizeof(blk_q8_0) + 2;
#pragma GCC unroll 8
                for (int c = 0; c < nc; c++) {
                    const uint8_t *qa = a + (size_t)c * astride + ao;
                    __m512i lo = _mm512_set1_epi32(ac[c][i / CB].off[i % CB]), hi = _mm512_setzero_si512();
                    /* two integer chains while few columns give little else
                     * to overlap; one from 4 columns on (fewer registers) */
                    const int two = iq4 || nc < 4;
#pragma GCC unroll 4
                    for (int j = 0; j < 4; j++) {
                        lo = dpbusd_b(lo, W[j], qa + 4 * j);
                        if (two)
                            hi = dpbusd_b(hi, W[4 + j], qa + 16 + 4 * j);
                        else
                            lo = dpbusd_b(lo, W[4 + j], qa + 16 + 4 * j);
                    }
                    const __m512i isum =
                        two ? _mm512_add_epi32(lo, iq4 || nc > 1 ? hi : _mm512_srai_epi32(hi, 4)) : lo;
                    acc[c] = chain_step(acc[c], isum, dw, ac[c][i / CB].da[i % CB]);
                }
            }
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) _mm512_storeu_ps(sg + (size_t)c * ldc, acc[c]);
        }
    }
}

AI void mm_q4_packed(int t, int n, int nr, int nc, float *s, size_t ldc, const void *vw, size_t wstride,
                     const void *va, size_t astride)
{
    const int iq4 = t == KERN_IQ4_NL;
    const uint8_t *w = vw, *a = va;
    const int nb = n / QK_32, ng = nr / 16;
    if (ng <= 0 || nc <= 0) return;
    if (nc > NC_FUSED) {
        for (int g0 = 0; g0 < ng; g0 += GROUPS) {
            const int gn = ng - g0 < GROUPS ? ng - g0 : GROUPS;
            wrows R[GROUPS];
            for (int g = 0; g < gn; g++) {
                R[g].pk = w + (size_t)(g0 + g) * 16 * wstride;
                for (int r = 0; r < 16; r++) R[g].rp[r] = R[g].pk;
                R[g].ws = wstride;
            }
            mm_panel(nb, gn, 16, nc, s + 16 * g0, ldc, R, a, astride, iq4);
        }
        return;
    }
    switch (nc) { /* one copy per column count: the loops over columns unroll */
    case 1: pk_fused(nb, ng, 1, s, ldc, w, a, astride, iq4); break;
    case 2: pk_fused(nb, ng, 2, s, ldc, w, a, astride, iq4); break;
    case 3: pk_fused(nb, ng, 3, s, ldc, w, a, astride, iq4); break;
    case 4: pk_fused(nb, ng, 4, s, ldc, w, a, astride, iq4); break;
    case 5: pk_fused(nb, ng, 5, s, ldc, w, a, astride, iq4); break;
    case 6: pk_fused(nb, ng, 6, s, ldc, w, a, astride, iq4); break;
    case 7: pk_fused(nb, ng, 7, s, ldc, w, a, astride, iq4); break;
    default: pk_fused(nb, ng, 8, s, ldc, w, a, astride, iq4); break;
    }
}

void kx512_q4_0_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                               const void *a, size_t astride)
{
    mm_q4_packed(KERN_Q4_0, n, nr, nc, s, ldc, w, wstride, a, astride);
}

void kx512_iq4_nl_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                                 const void *a, size_t astride)
{
    mm_q4_packed(KERN_IQ4_NL, n, nr, nc, s, ldc, w, wstride, a, astride);
}
