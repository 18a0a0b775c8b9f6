/* kernels/x86_avx2.c — the "avx2" kernel table (work in progress: entries
 * not set here come from the reference table, see kern_select). */
#include "kernels/kernels.h"
#include "kernels/quant.h"

const kern_table kern_table_avx2 = {
    .name = "avx2",
};
