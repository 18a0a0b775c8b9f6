/* kernels/x86_avx512_q5.c — AVX-512 (VNNI) matrix kernels: Q5_0, Q4_1, Q5_1.
 * Declared in quant.h, entries of kern_table_avx512.mul_mat; compiled with
 * the avx512 flags, called only after kern_select checked the CPU.
 * Placeholder: the avx2 table's kernels until the tiled ones land. */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <immintrin.h>

void kx512_q5_0_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                const void *a, size_t astride)
{
    kern_mul_mat(&kern_table_avx2, KERN_Q5_0, n, nr, nc, s, ldc, w, wstride, a, astride);
}

void kx512_q4_1_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                const void *a, size_t astride)
{
    kern_mul_mat(&kern_table_avx2, KERN_Q4_1, n, nr, nc, s, ldc, w, wstride, a, astride);
}

void kx512_q5_1_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                const void *a, size_t astride)
{
    kern_mul_mat(&kern_table_avx2, KERN_Q5_1, n, nr, nc, s, ldc, w, wstride, a, astride);
}

