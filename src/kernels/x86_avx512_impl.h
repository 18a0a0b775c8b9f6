/* kernels/x86_avx512_impl.h — small helpers shared by the avx512 files
 * (x86_avx512.c and its x86_avx512_*.c matrix kernels), which all compile
 * with the avx512 flags. Private to src/kernels/. */
#ifndef MOTE_KERNELS_X86_AVX512_IMPL_H
#define MOTE_KERNELS_X86_AVX512_IMPL_H

#include <immintrin.h>
#include <stdint.h>

#define AI static inline __attribute__((always_inline))

AI __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* ref.c's hsum8 (ggml's hsum_float_8): (lo + hi), then (0 + 2) + (1 + 3). */
AI float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* acc + vpdpbusd(w, the 4 bytes at p broadcast to every dword lane). GCC
 * does not fold _mm512_set1_epi32(load) into the instruction's {1to16}
 * memory operand; each broadcast then needs a register, which with several
 * columns spills (measured 30% slower at 8), so the folded form is written
 * out. p needs no alignment. */
typedef int32_t kx_i32_unaligned __attribute__((aligned(1), may_alias));
AI __m512i dpbusd_b(__m512i acc, __m512i w, const void *p)
{
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const kx_i32_unaligned *)p));
    return acc;
}

/* int32 -> float without vcvtdq2ps (on Zen 4 it takes both FMA pipes): a
 * lane that starts at KX_MAGIC and gains an integer L with |L| < 2^22 has
 * the bit pattern of the float 1.5 * 2^23 + L exactly; subtracting
 * KX_MAGIC_F (an add-pipe op) gives (float)L exactly, +0 for 0. */
#define KX_MAGIC 0x4B400000   /* bits of 1.5 * 2^23 */
#define KX_MAGIC_F 12582912.0f

#endif
