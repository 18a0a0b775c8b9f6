/* model.h — transformer hyper-parameters and weight views from a GGUF file.
 *
 * Inference core, above gguf and kernels. model_init reads `<arch>.*`
 * metadata and finds every tensor the architecture needs, checking names,
 * shapes and types; anything it does not support (architecture, tensor type,
 * rope scaling, unknown extra tensors) is refused with one clear message in
 * m->err. Weights are views into the GGUF mapping: nothing is copied, so the
 * gguf_file must outlive the model (model_open owns its own file).
 *
 * Architectures (llama.cpp names):
 *   llama  Llama 1/2/3, TinyLlama, SmolLM, Mistral: RMSNorm, NORM rope (with
 *          optional rope_freqs factors, Llama-3 style), GQA, SwiGLU, output
 *          tied to token_embd when output.weight is absent
 *   qwen2  as llama + q/k/v biases, NEOX rope
 *   qwen3  as llama + per-head RMSNorm of q and k before rope, NEOX rope
 *   phi3   fused attn_qkv and fused ffn_up (gate rows first), NEOX rope,
 *          q scaled by 1/sqrt(head_dim) before attention
 *
 * Usage:
 *     model m;
 *     if (model_open(&m, "x.gguf") < 0) { fprintf(stderr, "%s\n", m.err); ... }
 *     ... m.hp.n_layer, m.layers[i].wq ...
 *     model_free(&m);
 */
#ifndef MOTE_MODEL_H
#define MOTE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "kernels/kernels.h"

enum model_err {
    MODEL_OK = 0,
    MODEL_ERR_IO = -1,          /* the file could not be opened or mapped */
    MODEL_ERR_FORMAT = -2,      /* malformed GGUF, missing or misshapen tensor/key */
    MODEL_ERR_UNSUPPORTED = -3, /* valid file, but an arch/type/feature we lack */
    MODEL_ERR_NOMEM = -4
};

enum model_arch {
    MODEL_ARCH_LLAMA = 0,
    MODEL_ARCH_QWEN2,
    MODEL_ARCH_QWEN3,
    MODEL_ARCH_PHI3,
    MODEL_ARCH_COUNT
};

/* Rope variants (ggml's mode numbers). NORM rotates adjacent pairs
 * (x[2i], x[2i+1]); NEOX rotates (x[i], x[i + n_rot/2]). */
enum model_rope {
    MODEL_ROPE_NORM = 0,
    MODEL_ROPE_NEOX = 2
};

/* A weight: a view into the mapping. Matrices are (n_out rows of n_in
 * elements); vectors have n_out == 1. data == NULL when the tensor is absent
 * (optional tensors only). */
typedef struct model_weight {
    const void *data;
    int type;                /* enum kern_type */
    int64_t n_in;            /* ne[0]: elements per row */
    int64_t n_out;           /* ne[1]: rows */
    size_t row_bytes;        /* bytes per row */
    /* The same matrix in a kernel table's packed layout (model_pack), or
     * NULL; packed_by is the pack function that made it: only the table
     * whose pack[type] it is may read it (through mul_mat_packed[type]). */
    const void *packed;
    kern_pack_fn packed_by;
} model_weight;

typedef struct model_layer {
    model_weight attn_norm;            /* (n_embd) F32 */
    model_weight wq, wk, wv;           /* rows: n_head*hd_k, n_head_kv*hd_k, n_head_kv*hd_v */
    model_weight wqkv;                 /* phi3: q rows, then k rows, then v rows */
    model_weight bq, bk, bv, bo;       /* optional F32 biases */
    model_weight q_norm, k_norm;       /* qwen3: (hd_k) F32 */
    model_weight wo;                   /* (n_head*hd_v -> n_embd) */
    model_weight ffn_norm;             /* (n_embd) F32 */
    model_weight w_gate, w_up, w_down; /* phi3: w_up has 2*n_ff rows (gate first), no w_gate */
} model_layer;

typedef struct model_hparams {
    int n_vocab;             /* rows of token_embd */
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int n_ff;
    int head_dim_k;          /* attention.key_length, default n_embd / n_head */
    int head_dim_v;          /* attention.value_length, default head_dim_k */
    int n_rot;               /* rope.dimension_count, default head_dim_k */
    int n_ctx_train;         /* context_length */
    float rms_eps;           /* attention.layer_norm_rms_epsilon */
    float rope_base;         /* rope.freq_base, default 10000 */
    float rope_freq_scale;   /* 1 / rope.scaling.factor for linear scaling, else 1 */
    int rope_type;           /* enum model_rope */
    float q_scale;           /* multiplies q before attention (phi3: 1/sqrt(hd)) */
    float kq_scale;          /* multiplies q.k (llama: 1/sqrt(hd); phi3: 1) */
} model_hparams;

typedef struct model {
    gguf_file file;          /* owned by model_open; unused by model_init */
    int owns_file;
    const gguf_file *g;      /* the file the views point into */
    int arch;                /* enum model_arch */
    model_hparams hp;
    model_weight tok_embd;   /* (n_vocab rows of n_embd) */
    model_weight output_norm;
    model_weight output;     /* == tok_embd when tied */
    int tied_output;         /* 1 if output.weight is absent */
    const float *rope_freqs; /* (n_rot/2) frequency divisors or NULL (may be unaligned: read via memcpy) */
    model_layer *layers;     /* n_layer entries, owned */
    void *pack_arena;        /* model_pack's copies, owned */
    char err[256];           /* why the last call failed */
} model;

/* Open, map and check a model file. 0 or a negative model_err (m->err says
 * why; nothing to free after a failure). */
int model_open(model *m, const char *path);

/* The same on an already opened file, which must outlive m. */
int model_init(model *m, const gguf_file *g);

void model_free(model *m);

/* Pack every matrix that kt has a packed layout for (kt->pack[type];
 * rows a multiple of KERN_PACK_ROWS, contiguous rows) into one block of
 * memory owned by m, freed by model_free, the matrices in the order a
 * forward pass reads them (so decode streams it from end to end); the
 * mapped views stay for everything else (token lookups, other tables).
 * Decode then streams the packed copy: on the avx512 table twice the
 * unpacking speed, on avx2 (Q4_0, Q4_K) 2.5-3.5 times (doc/performance.md),
 * for as much anonymous memory as those matrices take in the file. Call once, before m is shared
 * between threads. Returns the bytes packed (0: nothing to pack), or
 * MODEL_ERR_NOMEM with nothing packed (m->err says why: an allocation
 * failed, or the copies would not fit in /proc/meminfo's MemAvailable with
 * 256 MiB to spare); the model then works from the mapping. */
int64_t model_pack(model *m, const kern_table *kt);   /* a second call packs nothing: 0 */

/* "llama", "qwen2", ... */
const char *model_arch_name(int arch);

/* Total bytes of all weights (as stored). */
uint64_t model_weight_bytes(const model *m);

#endif
