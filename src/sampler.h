/* sampler.h — choose the next token from a row of logits.
 *
 * Inference core, no dependencies besides libc/libm. The chain runs in
 * llama.cpp's default order:
 *     penalties (repeat / presence / frequency over the last N accepted)
 *     -> top-k -> softmax -> top-p -> min-p -> temperature -> draw
 * temp <= 0 means greedy: the argmax after penalties (lowest id on ties).
 * Randomness comes from our own seeded xoshiro256** generator, so a given
 * seed reproduces the same tokens on every platform and thread count.
 *
 * Designed for more stages (typical-p, mirostat v2, logit bias, grammar):
 * each is one pass over the candidate array in sampler_sample.
 *
 * Memory: sampler_init allocates the candidate array (n_vocab entries) and
 * the penalty history once; sampler_sample allocates nothing.
 *
 * Usage:
 *     sampler_params sp; sampler_params_default(&sp); sp.temp = 0.8f; sp.seed = 42;
 *     sampler s; if (sampler_init(&s, n_vocab, &sp) < 0) ...;
 *     int32_t id = sampler_sample(&s, logits);  sampler_accept(&s, id);
 *     sampler_free(&s);
 */
#ifndef MOTE_SAMPLER_H
#define MOTE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct sampler_params {
    float temp;               /* <= 0: greedy; default 0.8 */
    int top_k;                /* <= 0: off; default 40 */
    float top_p;              /* >= 1: off; default 0.95 */
    float min_p;              /* <= 0: off; default 0.05 */
    float repeat_penalty;     /* 1: off (llama.cpp: divide positive logits, multiply negative) */
    float presence_penalty;   /* 0: off (OpenAI: subtracted once if the token occurred) */
    float frequency_penalty;  /* 0: off (OpenAI: subtracted per occurrence) */
    int penalty_last_n;       /* tokens of history the penalties see; default 64 */
    uint64_t seed;            /* RNG seed */
} sampler_params;

/* llama.cpp's defaults (temp 0.8, top_k 40, top_p 0.95, min_p 0.05, no
 * penalties, last 64), seed 0. */
void sampler_params_default(sampler_params *p);

typedef struct sampler_cand {
    int32_t id;
    float logit;
    float p;
} sampler_cand;

typedef struct sampler {
    sampler_params p;
    int n_vocab;
    sampler_cand *cand;       /* (n_vocab) scratch, owned */
    int32_t *hist;            /* ring of the last penalty_last_n accepted ids, owned */
    int hist_alloc;           /* entries allocated at init */
    int hist_cap, hist_len, hist_pos;   /* window in use (<= hist_alloc), fill, next slot */
    uint64_t rng[4];          /* xoshiro256** state */
} sampler;

/* 0, or -1 when out of memory or n_vocab < 1 (s needs no free then). */
int sampler_init(sampler *s, int n_vocab, const sampler_params *p);
void sampler_free(sampler *s);

/* Forget the history and reseed (a new request on the same slot). */
void sampler_reset(sampler *s, uint64_t seed);

/* New parameters for a new request on the same sampler: penalty_last_n is
 * clamped to the history allocated at init (< 0 means all of it); the
 * history is cleared and the generator reseeded with p->seed. */
void sampler_set_params(sampler *s, const sampler_params *p);

/* The next token for this row of n_vocab logits (not modified). */
int32_t sampler_sample(sampler *s, const float *logits);

/* Record a token that became part of the sequence (for the penalties). */
void sampler_accept(sampler *s, int32_t id);

/* The generator: 64 random bits, and a uniform float in [0, 1). */
uint64_t sampler_rand_u64(sampler *s);
float sampler_rand_float(sampler *s);

#endif
