/* kernels/arm_neon.c — the "neon" kernel table (work in progress: entries
 * not set here come from the reference table, see kern_select). */
#include "kernels/kernels.h"
#include "kernels/quant.h"

const kern_table kern_table_neon = {
    .name = "neon",
};
