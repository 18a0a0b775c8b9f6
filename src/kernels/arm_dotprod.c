/* kernels/arm_dotprod.c — the "dotprod" table: ARMv8.2-A with the dot
 * product extension (SDOT) and FP16 (Cortex-A55/A75/A76 and later, Apple,
 * Neoverse). Compiled with -march=armv8.2-a+dotprod+fp16 and called only
 * after kern_select saw HWCAP_ASIMDDP (and FP16) at run time. The body is
 * arm_impl.h with SDOT as the 4-byte integer dot. */
#include <arm_neon.h>

#define DOT4(acc, w, a) vdotq_s32((acc), (w), (a))

#include "kernels/arm_impl.h"

const kern_table kern_table_dotprod = {
    .name = "dotprod",
    ARM_TABLE_ENTRIES
};
