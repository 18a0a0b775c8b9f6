/* bench.h — measuring tools: model throughput (`mote bench`), memory read
 * bandwidth (`mote bench --membw`) and random-weight models with real shapes
 * to measure on (`mote gen-model`).
 *
 * Inference core, above model, forward, kernels, thread and quantize (for
 * its streaming GGUF writer). Not used by the server. Allocates freely
 * (per call, outside the timed regions).
 *
 * Throughput follows llama-bench's definitions:
 *   pp  one batch of `pp` prompt tokens (BOS, then fixed ids) evaluated into
 *       an empty context: pp_tps = pp / seconds;
 *   tg  `tg` single-token decode steps right after that prompt (KV depth
 *       pp .. pp + tg - 1; from an empty context when pp = 0), each feeding
 *       back the argmax of the previous logits: tg_tps = tg / seconds.
 * Each figure is the median over `reps` repetitions (after one untimed
 * warm-up that also faults the mapped weights in).
 * decode_gbps = bytes of weights read per decoded token x tg_tps / 1e9, where
 * a decode step reads every weight once except token_embd, of which it reads
 * one row (all of it when the output is tied to it).
 */
#ifndef MOTE_BENCH_H
#define MOTE_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"
#include "model.h"

enum bench_err {
    BENCH_OK = 0,
    BENCH_ERR_ARG = -1,      /* bad sizes, unknown shape or type */
    BENCH_ERR_NOMEM = -2,
    BENCH_ERR_RUN = -3,      /* the forward pass refused (message from forward) */
    BENCH_ERR_IO = -4        /* gen-model could not write its file */
};

typedef struct bench_result {
    int threads;             /* threads actually used */
    int pp, tg, reps;
    double pp_tps, tg_tps;             /* medians (0 when pp / tg is 0) */
    double pp_tps_best, tg_tps_best;   /* best repetitions */
    uint64_t decode_bytes;             /* weight bytes read per decoded token */
    double decode_gbps;                /* decode_bytes * tg_tps / 1e9 */
    /* a decode step's time split, ms per token over all repetitions:
     * matmuls, attention, the rest (norms, rope, embeddings, sampling) */
    double tg_ms_matmul, tg_ms_attn, tg_ms_other;
    /* paired probes (membw_bytes > 0): bench_membw right before each
     * repetition's decode steps; the median probe and the median of the
     * repetitions' decode GB/s / their own probe (a ratio the machine's
     * bandwidth drifting over minutes does not skew) */
    double membw_gbps, decode_of_membw;
} bench_result;

/* Weight bytes one decode step reads (see above). */
uint64_t bench_decode_bytes(const model *m);

/* Measure m with kernel table kt (NULL: best) on n_threads threads (<= 0: one
 * per CPU). pp >= 0, tg >= 0, pp + tg >= 1, reps >= 1; membw_bytes: 0, or
 * the buffer of a paired bench_membw probe (best of 5) before each
 * repetition's decode steps. 0 or a negative bench_err with a message in
 * err. */
int bench_model(const model *m, const kern_table *kt, int n_threads, int pp, int tg, int reps,
                size_t membw_bytes, bench_result *r, char *err, size_t errcap);

/* STREAM-like read bandwidth: sum a buffer of `bytes` (much larger than the
 * caches; >= 1 MiB) split over n_threads threads, best of reps passes.
 * GB/s (1e9 bytes per second), or a negative bench_err. *threads_used (may
 * be NULL) gets the thread count after clamping to the CPUs. */
double bench_membw(int n_threads, size_t bytes, int reps, int *threads_used);

/* ---- gen-model: random weights, real shapes ---- */

typedef struct bench_shape {
    const char *name;        /* "tinyllama", "smollm", ... */
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    int tied;                /* 1: no output.weight (output uses token_embd) */
    float rope_base;
} bench_shape;

/* Built-in shapes by name ("tinyllama": TinyLlama-1.1B; "smollm":
 * SmolLM-135M; "tiny": 256 dims, 2 layers, for tests); NULL if unknown. */
const bench_shape *bench_shape_find(const char *name);
/* Space-separated names of the built-in shapes. */
const char *bench_shape_names(void);

/* Write a llama-architecture GGUF model of shape s to path: random weights
 * (deterministic in seed; the same for any thread count), norms 1, a
 * synthetic SentencePiece vocabulary (<unk> <s> </s>, 256 byte tokens, then
 * letter pieces) of s->n_vocab tokens. 2-D weights are stored as `type`
 * (F32, F16, BF16, or any quantized type via kern_quantize_row; rows must fit
 * its blocks); 1-D norms as F32. general.file_type says F32 (0) / F16 (1) /
 * BF16 (32) for those types and is omitted otherwise. 0 or a negative
 * bench_err (err says why). */
int bench_gen_model(const char *path, const bench_shape *s, int type, uint64_t seed, int n_threads,
                    char *err, size_t errcap);

#endif
