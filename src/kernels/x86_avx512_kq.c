/* kernels/x86_avx512_kq.c — AVX-512 (VNNI) matrix kernels: q4_k q6_k.
 * Declared in quant.h, entries of kern_table_avx512.mul_mat; compiled with
 * the avx512 flags, called only after kern_select checked the CPU.
 * Placeholder: the avx2 table's kernels until the tiled ones land. */
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <immintrin.h>

void kx512_q4_k_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                const void *a, size_t astride)
{
    kern_mul_mat(&kern_table_avx2, KERN_Q4_K, n, nr, nc, s, ldc, w, wstride, a, astride);
}

void kx512_q6_k_mul_mat(int n, int nr, int nc, float *s, size_t ldc, const void *w, size_t wstride,
                const void *a, size_t astride)
{
    kern_mul_mat(&kern_table_avx2, KERN_Q6_K, n, nr, nc, s, ldc, w, wstride, a, astride);
}

