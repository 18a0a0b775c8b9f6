/* quantize.h — `mote quantize`: rewrite a GGUF model with its weights in
 * another type, choosing per tensor the way llama.cpp's llama-quantize does.
 *
 * Inference core, above gguf, gguf_write, kernels and thread. Not on any hot
 * path: it allocates per file and per tensor.
 *
 * File types are llama.cpp's (`enum quant_ftype`, the value written to
 * general.file_type). Each has a default tensor type; a *mix* (Q4_K_M, ...)
 * moves some tensors to other types. The rules, from llama-quantize's
 * documented behaviour (without an importance matrix), in this order:
 *   - only tensors of >= 2 dims whose name ends in "weight" are converted,
 *     never norms ("_norm.weight"), MoE routers ("ffn_gate_inp"), position
 *     or token-type embeddings, conv1d and a few other small tensors; the
 *     others are copied as they are (1-D norms stay F32);
 *   - unless --pure (or the file type is F32/F16/BF16), the mix rules:
 *       output.weight (and token_embd.weight when the output is tied to it):
 *         Q6_K, or kept at Q8_0 for Q8_0, or Q8_0 when its rows are not a
 *         whole number of the default type's blocks (or the arch is falcon);
 *       attn_v (and fused attn_qkv / attn_kv_b), counted i of n in file order:
 *         Q2_K: Q4_K if n_head/n_head_kv >= 4 else Q3_K;  Q3_K_M: Q5_K for
 *         the first 2, then Q4_K;  Q3_K_L: Q5_K;  IQ4_NL/IQ4_XS: Q5_K if
 *         n_head/n_head_kv >= 4;  Q4_K_M/Q5_K_M: Q6_K where use_more_bits(i, n);
 *         Q4_K_S: Q5_K for the first 4;  70B llama: Q3_K/Q4_K -> Q5_K;
 *         8 experts: Q8_0;
 *       attn_k with 8 experts: Q8_0;
 *       ffn_down of layer i of n:  Q2_K: Q3_K;  Q3_K_M: Q5_K if i < n/16,
 *         else Q4_K (falcon: Q4_K only where use_more_bits, else Q3_K);
 *         Q3_K_L: Q5_K (falcon Q4_K);  Q4_K_M: Q6_K where use_more_bits
 *         (falcon: Q6_K if i < n/16, Q5_K where use_more_bits);  IQ4_NL/XS:
 *         Q5_K if i < n/8;  Q5_K_M: Q6_K where use_more_bits;  Q4_K_S: Q5_K
 *         if i < n/8 (not falcon);
 *       attn_output:  Q2_K: Q3_K;  Q3_K_M: Q4_K;  Q3_K_L: Q5_K (falcon:
 *         Q3_K_L only, Q4_K);  8 experts: Q5_K for the 3- and 4-bit mixes;
 *     where use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2;
 *   - fallback when the row length is not a multiple of the chosen type's
 *     block: Q2_K/Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0,
 *     IQ4_XS -> IQ4_NL; and F16 when even that (or a 32-block type) does not fit.
 * Tensors are written in llama-quantize's order (tensors outside blk.N
 * first, then by layer number; by name within each group), which is also the
 * order the counters above follow. Metadata is copied in file order, minus
 * general.file_type, general.quantization_version and split.*, which are then
 * appended (2 and the file type). Every weight row is quantized with
 * kern_quantize_row, so from an F32 file the output is llama-quantize's, byte
 * for byte (tests/test_quantize.c checks against its files).
 *
 * Input may be F32, F16, BF16 or (re-quantized, with a warning) any type the
 * kernels can dequantize; a tensor already in its target type is copied.
 * Rows must hold finite values. Output goes to OUT.part, which is checked
 * with gguf_open and then renamed to OUT: a failed run leaves no OUT.
 */
#ifndef MOTE_QUANTIZE_H
#define MOTE_QUANTIZE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gguf.h"
#include "gguf_write.h"

enum quant_err {
    QUANT_OK = 0,
    QUANT_ERR_IO = -1,          /* cannot read the input or write the output */
    QUANT_ERR_FORMAT = -2,      /* malformed input file or bad values (NaN/Inf) */
    QUANT_ERR_UNSUPPORTED = -3, /* a type or layout we cannot convert */
    QUANT_ERR_NOMEM = -4,
    QUANT_ERR_ARG = -5          /* bad parameters (unknown file type, IN == OUT) */
};

/* llama.cpp's llama_ftype values (general.file_type) that mote writes. */
enum quant_ftype {
    QUANT_FT_F32 = 0,
    QUANT_FT_F16 = 1,
    QUANT_FT_Q4_0 = 2,
    QUANT_FT_Q4_1 = 3,
    QUANT_FT_Q8_0 = 7,
    QUANT_FT_Q5_0 = 8,
    QUANT_FT_Q5_1 = 9,
    QUANT_FT_Q2_K = 10,
    QUANT_FT_Q3_K_S = 11,
    QUANT_FT_Q3_K_M = 12,
    QUANT_FT_Q3_K_L = 13,
    QUANT_FT_Q4_K_S = 14,
    QUANT_FT_Q4_K_M = 15,
    QUANT_FT_Q5_K_S = 16,
    QUANT_FT_Q5_K_M = 17,
    QUANT_FT_Q6_K = 18,
    QUANT_FT_IQ4_NL = 25,
    QUANT_FT_IQ4_XS = 30,
    QUANT_FT_BF16 = 32
};

#define QUANT_QNT_VERSION 2   /* general.quantization_version (ggml's) */

/* File type by name, case-insensitive: "Q4_K_M", ..., and llama-quantize's
 * aliases Q3_K / Q4_K / Q5_K for the _M mixes. -1 when unknown. */
int quant_ftype_parse(const char *name);
/* Canonical name ("Q4_K_M"), or NULL for a value not in the enum. */
const char *quant_ftype_name(int ftype);
/* Default tensor type (enum kern_type) of a file type, -1 if unknown. */
int quant_ftype_default_type(int ftype);
/* Space-separated list of the names quant_ftype_parse accepts. */
const char *quant_ftype_names(void);

typedef struct quant_params {
    int ftype;            /* enum quant_ftype */
    int pure;             /* 1: no mix rules (fallbacks still apply) */
    int n_threads;        /* <= 0: one per CPU */
    FILE *log;            /* one line per tensor and a summary; NULL: silent */
} quant_params;

/* The decision for one tensor. */
typedef struct quant_choice {
    int type;             /* output type (enum kern_type) */
    int wanted;           /* type before the fallback (== type when it fit) */
    int convert;          /* 1: the tensor is converted (else copied as is) */
} quant_choice;

/* The output plan for an open file: order[0..n_tensors-1] = input tensor
 * indexes in output order, choice[i] = decision for input tensor i (both
 * arrays have g->n_tensors entries, caller-owned). 0 or a negative quant_err
 * with a message in err. Reads only metadata: cheap. */
int quant_plan(const gguf_file *g, const quant_params *p, uint64_t *order, quant_choice *choice,
               char *err, size_t errcap);

/* Quantize file `in` into file `out`. 0 or a negative quant_err; err says why. */
int quant_file(const char *in, const char *out, const quant_params *p, char *err, size_t errcap);

/* ---- streaming GGUF output (also used by `mote gen-model`) ----
 * Writes a GGUF v3 file whose metadata is the key/values of `meta` (a
 * gguf_writer holding keys only, no tensors) and whose tensors are t[0..n-1],
 * in that order, data aligned to `alignment` (a power of two; it must match
 * general.alignment if meta has it) and each padded to it, as
 * gguf_writer does. Tensor data is produced one tensor at a time by fill(),
 * which writes exactly nbytes into dst and returns 0, or a negative quant_err
 * after writing a message into err. The file is written to "<path>.part",
 * reopened with gguf_open to check it, then renamed to path. */
typedef struct quant_out_tensor {
    const char *name;                 /* NUL-terminated, unique */
    int type;                         /* enum kern_type */
    int n_dims;
    int64_t ne[GGUF_MAX_DIMS];
} quant_out_tensor;

typedef int (*quant_fill_fn)(void *ctx, size_t i, void *dst, size_t nbytes, char *err, size_t errcap);

int quant_write_gguf(const char *path, gguf_writer *meta, uint64_t alignment, const quant_out_tensor *t,
                     size_t n, quant_fill_fn fill, void *ctx, char *err, size_t errcap);

#endif
