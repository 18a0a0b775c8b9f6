/* forward.h — the transformer forward pass over a batch of tokens.
 *
 * Inference core, above model, kernels and thread. Two objects:
 *
 *   fwd_kv   the KV cache of one sequence: K and V for every layer and
 *            position, F16 (default, as llama.cpp) or F32, sized once from
 *            the context length. The scheduler owns one per slot.
 *   fwd_ctx  everything else a forward pass needs: activation scratch for up
 *            to n_batch tokens (of one or several sequences), quantized-activation buffers, per-thread
 *            attention scratch. Sized once at fwd_init; fwd_eval allocates
 *            nothing. One per worker thread (not shareable concurrently).
 *
 * Arithmetic follows llama.cpp's CPU backend (flash attention on, F16 KV
 * cache) closely enough to reproduce its greedy tokens: activations are
 * converted with from_float[vec_dot_type] before every matmul, q is rounded
 * to F16 for the K dot products, single-token attention accumulates V in F16,
 * prompt batches of >= 64 tokens use the tiled F32 path, and SiLU / softmax
 * use the same exp approximation. See forward.c for each rounding point.
 *
 * Usage:
 *     fwd_kv kv;  fwd_ctx c;
 *     fwd_kv_init(&kv, &m, 2048, KERN_F16);
 *     fwd_init(&c, &m, kern_select(NULL), &pool, 512);
 *     fwd_eval(&c, &kv, prompt, n_prompt, logits, 0);     prompt -> logits of last
 *     fwd_eval(&c, &kv, &next, 1, logits, 0);             one decode step
 *
 * Several sequences (users) at once: fwd_eval_batch, one decode token or a
 * prompt chunk per sequence, each with its own fwd_kv, in one pass.
 */
#ifndef MOTE_FORWARD_H
#define MOTE_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "model.h"
#include "thread.h"

enum fwd_err {
    FWD_OK = 0,
    FWD_ERR_NOMEM = -1,
    FWD_ERR_ARG = -2,        /* bad token id, bad size, unsupported KV type */
    FWD_ERR_CTX_FULL = -3,   /* the batch does not fit in the KV cache */
    FWD_ERR_KERNEL = -4      /* the kernel table lacks a function this model needs */
};

#define FWD_BATCH_DEFAULT 512   /* tokens per internal micro-batch (llama.cpp's n_ubatch) */

typedef struct fwd_kv {
    int type;                /* KERN_F16 or KERN_F32 */
    int n_ctx;               /* capacity in positions */
    int n_past;              /* positions filled: the next token goes to n_past */
    int n_layer;
    int dim_k, dim_v;        /* n_head_kv * head_dim_k, n_head_kv * head_dim_v */
    int n_head_kv;
    /* (n_layer, n_head_kv, n_ctx, head_dim) elements of type, owned: each
     * head's rows one sequential run, as attention reads them */
    void *k;
    void *v;
} fwd_kv;

/* Allocate a cache for n_ctx positions (zeroed). 0 or a negative fwd_err. */
int fwd_kv_init(fwd_kv *kv, const model *m, int n_ctx, int type);
void fwd_kv_free(fwd_kv *kv);
/* Forget positions >= n (n <= n_past); n = 0 empties the cache. */
void fwd_kv_truncate(fwd_kv *kv, int n);
/* Bytes held by the cache. */
size_t fwd_kv_bytes(const fwd_kv *kv);

/* Where forward passes spend their time (fwd_ctx.prof): seconds, summed. */
typedef struct fwd_prof {
    double matmul;           /* matmuls (activation conversion included) */
    double attn;             /* attention over the caches */
} fwd_prof;

typedef struct fwd_ctx fwd_ctx;
struct fwd_ctx {
    const model *m;
    const kern_table *kt;
    thread_pool *tp;         /* not owned */
    int n_batch;             /* max tokens per micro-batch */
    int n_threads;           /* tp->n_threads at init (scratch is per thread) */
    /* activations, row-major (n_batch, width) */
    float *x;                /* (n_batch, n_embd) residual stream */
    float *xn;               /* (n_batch, n_embd) normalized */
    float *qkv;              /* (n_batch, nq + nk + nv): q | k | v per token */
    float *att;              /* (n_batch, n_head * hd_v) attention output */
    float *tmp;              /* (n_batch, n_embd) matmul output before residual add */
    float *ffgu;             /* (n_batch, 2 * n_ff): gate | up per token */
    float *ffh;              /* (n_batch, n_ff) swiglu output */
    float *rope;             /* (n_batch, n_rot) cos/sin pairs per token */
    void *act[3];            /* converted activations, one per distinct vec_dot_type */
    size_t act_bytes;        /* capacity of each act buffer */
    float *ws;               /* per-thread attention scratch, ws_floats each */
    size_t ws_floats;
    /* the batch being evaluated: one entry per row (token), one per sequence */
    int *pos;                /* (n_batch) position of each row in its sequence */
    int *row_seq;            /* (n_batch) index of the row's sequence */
    unsigned char *many;     /* (n_batch) 1 when the row's sequence has >= 2 rows in the
                                current matmul (selects ggml's batched float order) */
    struct fwd_seg *segs;    /* (n_batch) per-sequence bookkeeping */
    fwd_prof *prof;          /* NULL, or the caller's: passes add their time to it */
    char err[160];
};

/* Prepare a context for model m (which must outlive it), kernel table kt
 * (NULL: kern_select(NULL)) and thread pool tp (NULL: single-threaded).
 * n_batch <= 0 means FWD_BATCH_DEFAULT. 0 or a negative fwd_err (c->err). */
int fwd_init(fwd_ctx *c, const model *m, const kern_table *kt, thread_pool *tp, int n_batch);
void fwd_free(fwd_ctx *c);

/* Run n tokens at positions kv->n_past .. kv->n_past + n - 1, appending their
 * K/V to kv (n_past advances by n). Larger n are split into micro-batches of
 * c->n_batch. logits (may be NULL): n_vocab floats for the last token, or,
 * with all_logits, n * n_vocab floats (token-major). 0 or a negative
 * fwd_err; on error kv is unchanged. */
int fwd_eval(fwd_ctx *c, fwd_kv *kv, const int32_t *tokens, int n, float *logits, int all_logits);

/* One sequence's part of a multi-sequence batch. */
typedef struct fwd_seq {
    fwd_kv *kv;              /* its cache: the tokens go to kv->n_past.. (n_past advances) */
    const int32_t *tokens;   /* n ids */
    int n;                   /* >= 1: a decode token, or a prompt chunk */
    int n_logits;            /* 0 (none), 1 (the last token) or n (every token) */
} fwd_seq;

/* Evaluate several sequences in one pass: every matmul runs once over all
 * their tokens (the weights are read once per call, which is what makes
 * batched decoding of several users cheap), attention runs per sequence
 * over its own cache. The sequences' token counts must sum to at most
 * c->n_batch (no micro-batching here) and no two may share a cache.
 *
 * logits (may be NULL when every n_logits is 0): the wanted rows, n_vocab
 * floats each, sequence after sequence (sum of n_logits rows).
 *
 * Determinism: a sequence's results do not depend on the other sequences
 * of the batch. Every output element is computed by the same kernel call
 * on the same inputs as when the sequence runs alone with fwd_eval in
 * micro-batches of the same sizes: quantized matmuls are vec_dot per
 * (row, token) pair (kern_mul_mat is bit-identical to it); the float-weight
 * order (vec_dot for one row, tinyBLAS for several) and the attention path
 * (per query, or tiled for >= 64 queries) are chosen per sequence, from its
 * own token count. So fwd_eval_batch({s}) == fwd_eval(s) bit for bit, and a
 * sequence gives the same logits alone or batched with any others.
 *
 * 0 or a negative fwd_err (c->err); on error no cache changed. */
int fwd_eval_batch(fwd_ctx *c, const fwd_seq *seqs, int n_seqs, float *logits);

#endif
