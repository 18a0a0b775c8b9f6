/* kernels/x86_avx512.c — the "avx512" kernel table (work in progress: entries
 * not set here come from the reference table, see kern_select). */
#include "kernels/kernels.h"
#include "kernels/quant.h"

const kern_table kern_table_avx512 = {
    .name = "avx512",
};
