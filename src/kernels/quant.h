/* kernels/quant.h — on-disk block layouts of the quantized types.
 *
 * Each struct is the exact byte layout GGUF files store (ggml's formats), so
 * a row of n elements of type t is n / block_size consecutive blocks with no
 * padding; every struct has a static_assert on its size. All multi-byte
 * fields are little-endian (we only support little-endian hosts). Blocks in
 * a mmapped file are only 2-byte aligned, so kernels read them with
 * unaligned vector loads; Q8_K rows (activations, never in files) must be
 * 4-byte aligned (float scale).
 *
 * Scales kern_f16 / kern_bf16 are bit patterns (see kernels.h).
 *
 * Value of element j of a block (the specification; ref.c implements it):
 *   Q4_0   d * (nib(j) - 8)             nib(j): low nibbles of qs are j < 16,
 *                                       high nibbles j >= 16
 *   Q4_1   d * nib(j) + m
 *   Q5_0   d * ((nib(j) | hbit(j) << 4) - 16)   hbit(j) = bit j of qh
 *   Q5_1   d * (nib(j) | hbit(j) << 4) + m
 *   Q8_0   d * qs[j]
 *   Q8_1   d * qs[j]                    (s = d * sum(qs), for the Q4_1/Q5_1 dot)
 *   Q8_K   d * qs[j]                    (float d; bsums[i] = sum of qs[16i..16i+15])
 *   K-quants and IQ4: see the comments at each struct.
 */
#ifndef MOTE_KERNELS_QUANT_H
#define MOTE_KERNELS_QUANT_H

#include "kernels/kernels.h"

#define QK_32 32   /* elements per block of the 32-element formats */
#define QK_K 256   /* elements per super-block of the K-quants */
#define K_SCALE_SIZE 12

/* ---- 32-element formats ---- */
typedef struct {
    kern_f16 d;             /* scale */
    uint8_t qs[QK_32 / 2];  /* nibbles: element j in low half of qs[j], j+16 in high half */
} blk_q4_0;
static_assert(sizeof(blk_q4_0) == 18, "blk_q4_0 size");

typedef struct {
    kern_f16 d;             /* scale */
    kern_f16 m;             /* min (added) */
    uint8_t qs[QK_32 / 2];
} blk_q4_1;
static_assert(sizeof(blk_q4_1) == 20, "blk_q4_1 size");

typedef struct {
    kern_f16 d;
    uint8_t qh[4];          /* 5th bit of element j = bit j of this LE uint32 */
    uint8_t qs[QK_32 / 2];
} blk_q5_0;
static_assert(sizeof(blk_q5_0) == 22, "blk_q5_0 size");

typedef struct {
    kern_f16 d;
    kern_f16 m;
    uint8_t qh[4];
    uint8_t qs[QK_32 / 2];
} blk_q5_1;
static_assert(sizeof(blk_q5_1) == 24, "blk_q5_1 size");

typedef struct {
    kern_f16 d;
    int8_t qs[QK_32];
} blk_q8_0;
static_assert(sizeof(blk_q8_0) == 34, "blk_q8_0 size");

typedef struct {
    kern_f16 d;
    kern_f16 s;             /* d * sum(qs), rounded to f16 */
    int8_t qs[QK_32];
} blk_q8_1;
static_assert(sizeof(blk_q8_1) == 36, "blk_q8_1 size");

/* IQ4_NL: 4-bit indices into the non-linear table kern_iq4nl_values. */
typedef struct {
    kern_f16 d;
    uint8_t qs[QK_32 / 2];  /* same nibble order as Q4_0 */
} blk_iq4_nl;
static_assert(sizeof(blk_iq4_nl) == 18, "blk_iq4_nl size");

/* ---- 256-element super-block formats (K-quants) ---- */

/* Q8_K: activation format of the K-quants (float scale). */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];  /* sum of each group of 16 quants */
} blk_q8_k;
static_assert(sizeof(blk_q8_k) == 292, "blk_q8_k size");

/* Q2_K: 16 groups of 16; value = d*(sc&15)*q - dmin*(sc>>4), q 2 bits. */
typedef struct {
    uint8_t scales[QK_K / 16]; /* low nibble scale, high nibble min, 4 bits each */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    kern_f16 d;
    kern_f16 dmin;
} blk_q2_k;
static_assert(sizeof(blk_q2_k) == 84, "blk_q2_k size");

/* Q3_K: 16 groups of 16; value = d*(sc-32)*(q - (hbit ? 0 : 4)), 6-bit scales. */
typedef struct {
    uint8_t hmask[QK_K / 8];   /* high bit of each quant */
    uint8_t qs[QK_K / 4];      /* low 2 bits */
    uint8_t scales[12];        /* 16 6-bit scales, packed */
    kern_f16 d;
} blk_q3_k;
static_assert(sizeof(blk_q3_k) == 110, "blk_q3_k size");

/* Q4_K: 8 groups of 32; value = d*sc*q - dmin*m, 6-bit sc and m. */
typedef struct {
    kern_f16 d;
    kern_f16 dmin;
    uint8_t scales[K_SCALE_SIZE]; /* 8 scales + 8 mins, 6 bits each, packed */
    uint8_t qs[QK_K / 2];
} blk_q4_k;
static_assert(sizeof(blk_q4_k) == 144, "blk_q4_k size");

/* Q5_K: as Q4_K with a 5th bit per quant in qh. */
typedef struct {
    kern_f16 d;
    kern_f16 dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} blk_q5_k;
static_assert(sizeof(blk_q5_k) == 176, "blk_q5_k size");

/* Q6_K: 16 groups of 16; value = d*sc*(q - 32), q 6 bits, sc int8. */
typedef struct {
    uint8_t ql[QK_K / 2];      /* low 4 bits */
    uint8_t qh[QK_K / 4];      /* high 2 bits */
    int8_t scales[QK_K / 16];
    kern_f16 d;
} blk_q6_k;
static_assert(sizeof(blk_q6_k) == 210, "blk_q6_k size");

/* IQ4_XS: 8 groups of 32, 6-bit scales (ls - 32), IQ4_NL table values. */
typedef struct {
    kern_f16 d;
    uint16_t scales_h;         /* high 2 bits of the 8 scales */
    uint8_t scales_l[QK_K / 64]; /* low 4 bits of the 8 scales */
    uint8_t qs[QK_K / 2];
} blk_iq4_xs;
static_assert(sizeof(blk_iq4_xs) == 136, "blk_iq4_xs size");

/* The 16 values an IQ4_NL / IQ4_XS index selects (times the scale). */
extern const int8_t kern_iq4nl_values[16];

/* ISA tables, defined by the per-ISA files; they hold only the entries they
 * implement (the rest NULL). Use kern_select(), which merges them over the
 * reference table, never these directly. */
extern const kern_table kern_table_avx2;    /* x86_avx2.c: AVX2 + FMA + F16C */
extern const kern_table kern_table_avx512;  /* x86_avx512.c: F/BW/VL/DQ/VNNI/BF16 */
/* AVX-512 matrix kernels in their own files (x86_avx512_*.c, compiled with
 * the avx512 table's flags), entries of kern_table_avx512.mul_mat. Same
 * contract as kern_mul_mat_fn: every output bit-identical to the reference
 * vec_dot of its pair. */
void kx512_q4_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride);
void kx512_iq4_nl_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                          const void *a, size_t astride);
void kx512_q8_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride);
void kx512_q4_k_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride);
void kx512_q6_k_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride);
void kx512_q5_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride);
void kx512_q4_1_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride);
void kx512_q5_1_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                        const void *a, size_t astride);
/* Packed layouts of the avx512 table (kern_table.pack / mul_mat_packed;
 * each file documents its layout). */
void kx512_q4_0_pack(int n, int nr, const void *w, size_t wstride, void *out);
void kx512_iq4_nl_pack(int n, int nr, const void *w, size_t wstride, void *out);
void kx512_q4_0_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                               const void *a, size_t astride);
void kx512_iq4_nl_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                                 const void *a, size_t astride);
void kx512_q4_k_pack(int n, int nr, const void *w, size_t wstride, void *out);
void kx512_q4_k_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                               const void *a, size_t astride);
void kx512_q6_k_pack(int n, int nr, const void *w, size_t wstride, void *out);
void kx512_q6_k_mul_mat_packed(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                               const void *a, size_t astride);
void kx512_q8_0_pack(int n, int nr, const void *w, size_t wstride, void *out);
extern const kern_table kern_table_neon;    /* arm_neon.c: baseline aarch64 ASIMD */
extern const kern_table kern_table_dotprod; /* arm_dotprod.c: + SDOT, + FP16 */

#endif
