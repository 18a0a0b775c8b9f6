/* kernels/arm_neon.c — the "neon" table: baseline aarch64 ASIMD (every
 * ARMv8-A core: Cortex-A53/A72 boards and up). The body is arm_impl.h; here
 * only the 4-byte integer dot, from widening multiplies: products of bytes
 * 0..7 and 8..15 as int16, pairwise added twice into int32 lanes of 4
 * consecutive bytes (the lanes SDOT gives on newer cores). */
#include <arm_neon.h>

static inline int32x4_t dot4_neon(int32x4_t acc, int8x16_t w, int8x16_t a)
{
    int16x8_t p0 = vmull_s8(vget_low_s8(w), vget_low_s8(a));
    int16x8_t p1 = vmull_high_s8(w, a);
    return vaddq_s32(acc, vpaddq_s32(vpaddlq_s16(p0), vpaddlq_s16(p1)));
}
#define DOT4(acc, w, a) dot4_neon((acc), (w), (a))

#include "kernels/arm_impl.h"

const kern_table kern_table_neon = {
    .name = "neon",
    ARM_TABLE_ENTRIES
};
