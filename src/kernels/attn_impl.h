/* kernels/attn_impl.h — the one body of kern_table.attn_f16, included by
 * ref.c and each ISA file with that file's own F16 dot / mad / scale
 * (static functions whose addresses are constants here, so the compiler
 * inlines them into the loop).
 *
 * One query row of F16 flash attention at decode, llama.cpp's per-position
 * online softmax (kernels.h states the contract); attn_f16_heads runs it
 * for each of the heads sharing K and V. */
#ifndef MOTE_KERNELS_ATTN_IMPL_H
#define MOTE_KERNELS_ATTN_IMPL_H

#include "kernels/kernels.h"

#include <math.h>
#include <stdint.h>

static inline void attn_f16_body(int n, int dk, int dv, const kern_f16 *q16, const void *k, size_t ks,
                                 const void *v, size_t vs, float scale, kern_f16 *vkq16, float *S_io,
                                 float *M_io, kern_vec_dot_fn dot, kern_f16_mad_fn mad,
                                 kern_f16_scale_fn rescale)
{
    float S = *S_io, M = *M_io;
    for (int j = 0; j < n; j++) {
        float s;
        dot(dk, &s, (const uint8_t *)k + (size_t)j * ks, q16);
        s = s * scale;
        s += 0.0f;   /* the causal mask's value for a visible position */
        const float Mold = M;
        float ms = 1.0f, vsc = 1.0f;
        if (s > M) {
            M = s;
            ms = kern_expf(Mold - M);
            rescale(dv, vkq16, ms);
        } else {
            vsc = kern_expf(s - M);
        }
        mad(dv, vkq16, (const kern_f16 *)((const uint8_t *)v + (size_t)j * vs), vsc);
        S = fmaf(S, ms, vsc);   /* contracted in ggml's build (measured) */
    }
    *S_io = S;
    *M_io = M;
}

/* kern_table.attn_f16 as one body per head, for tables with nothing
 * better. */
static inline void attn_f16_heads(int n, int nh, int dk, int dv, const kern_f16 *q16, const void *k, size_t ks,
                                  const void *v, size_t vs, float scale, kern_f16 *vkq16, float *S, float *M,
                                  kern_vec_dot_fn dot, kern_f16_mad_fn mad, kern_f16_scale_fn rescale)
{
    for (int h = 0; h < nh; h++)
        attn_f16_body(n, dk, dv, q16 + (size_t)h * dk, k, ks, v, vs, scale, vkq16 + (size_t)h * dv, S + h, M + h,
                      dot, mad, rescale);
}

#endif
