/* sched.h — slots and worker threads: runs generation requests on a model.
 *
 * The only module that crosses the thread boundary. Above the inference
 * core (model, forward, tokenizer, sampler), below the API layer; no
 * sockets. One sched_model per served model:
 *
 *   - one worker thread that loads the model (so the server can answer
 *     /health with 503 while it loads), then owns the fwd_ctx, the thread
 *     pool and the logits buffer;
 *   - `processor_count` slots, each with its own fwd_kv of context_length
 *     positions, token history and text buffers, all sized at load;
 *   - a fixed pool of processor_count + queue_length jobs. A caller takes a
 *     job (sched_job_get: NULL when every job is in use -> answer 429),
 *     fills its inputs and submits it. Submitted jobs wait FIFO for a slot;
 *     a free slot goes to the queue head, preferring the slot whose cache
 *     shares the longest prefix with its prompt (see slot_pick).
 *
 * Continuous batching: each step of the worker is ONE forward pass
 * (fwd_eval_batch) over every active slot together: the next token of every
 * generating slot, plus prompt chunks of at most batch_length tokens in
 * all (the earliest-submitted prompt's next chunk, then later prompts whose
 * whole next chunk still fits), so a long prompt delays the other users'
 * streams by one chunk per step, never by the whole prompt, and several
 * short prompts start together. A prompt's chunks are the same whatever
 * else runs (batch_length tokens, the rest last).
 * The weights are read once per step however many users decode. A
 * sequence's arithmetic does not depend on the others in the batch, so a
 * request gives the same output alone or batched (forward.h).
 * The cancellation flag is checked every step (client gone, deadline
 * passed, server stopping): a cancelled job frees its slot at the next
 * step. Nothing is allocated per token.
 *
 * Results reach the caller through a sink (callbacks on the worker thread):
 *     start(j)            the job got a slot (stream: send the headers now)
 *     text(j, c, s, n)    more text of choice c: complete UTF-8, with stop
 *                         strings held back until they can no longer match
 *                         and never emitted; at most SCHED_TEXT_CHUNK bytes
 *     ping(j)             a long prompt is being processed (every ping_ms)
 *     choice_end(j, c)    choice c finished: j->choice[c] is final
 *     done(j)             the job is over (j->err says how); j->text holds the
 *                         text of every choice when keep_text. After done()
 *                         returns the job is back in the pool: the caller
 *                         must not touch it any more.
 * A multi-prompt job (completions with a prompt array) runs its prompts one
 * after the other in the same slot, choice i for prompt i.
 *
 * Lifetime: sched_model_init (caller thread) -> sched_model_start (worker
 * loads) -> ... -> sched_model_stop (cancels every job, each still gets its
 * done(), joins the worker) -> sched_model_free.
 */
#ifndef MOTE_SCHED_H
#define MOTE_SCHED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "forward.h"
#include "gguf.h"
#include "model.h"
#include "thread.h"
#include "tokenizer.h"

#define SCHED_STOP_MAX 4          /* stop strings per job (OpenAI: up to 4) */
#define SCHED_STOP_LEN 256        /* bytes per stop string */
#define SCHED_CHOICES_MAX 256     /* prompts per job */
#define SCHED_TEXT_CHUNK 4096     /* most bytes one text() call carries */
#define SCHED_BIAS_MAX 512        /* logit_bias entries per job */

/* How a job ended (j->err). */
typedef enum sched_err {
    SCHED_OK = 0,
    SCHED_ERR_CANCELLED = -1,   /* sched_job_cancel (client gone) */
    SCHED_ERR_TIMEOUT = -2,     /* deadline_ms passed */
    SCHED_ERR_STOPPED = -3,     /* sched_model_stop */
    SCHED_ERR_ENGINE = -4,      /* the forward pass failed (j->errmsg) */
    SCHED_ERR_TEXT_FULL = -5    /* keep_text: the text buffer filled up */
} sched_err;

typedef enum sched_finish {
    SCHED_FINISH_NONE = 0,      /* not finished (cancelled / error) */
    SCHED_FINISH_STOP,          /* end-of-generation token or a stop string */
    SCHED_FINISH_LENGTH         /* max_tokens, or the context is full */
} sched_finish;

typedef enum sched_state {
    SCHED_LOADING = 0,
    SCHED_READY,
    SCHED_FAILED,               /* load failed: sched_model.err says why */
    SCHED_STOPPED
} sched_state;

typedef struct sched_job sched_job;

typedef struct sched_sink {
    void (*start)(void *arg, sched_job *j);
    void (*text)(void *arg, sched_job *j, int choice, const char *text, size_t len);
    void (*ping)(void *arg, sched_job *j);
    void (*choice_end)(void *arg, sched_job *j, int choice);
    void (*done)(void *arg, sched_job *j);   /* required */
} sched_sink;

/* Sampling settings of one job (the API merges request and model defaults). */
typedef struct sched_sampling {
    float temperature;          /* <= 0: greedy */
    int top_k;                  /* 0 = off */
    float top_p;                /* 1 = off */
    float min_p;                /* 0 = off */
    float repeat_penalty;       /* 1 = off */
    int repeat_last_n;          /* -1 = whole context */
    float presence_penalty;     /* 0 = off */
    float frequency_penalty;    /* 0 = off */
    bool mirostat;              /* mirostat v2 with tau, eta */
    float mirostat_tau, mirostat_eta;
    uint64_t seed;
    int32_t bias_token[SCHED_BIAS_MAX];   /* logit_bias, ids < n_vocab */
    float bias[SCHED_BIAS_MAX];
    int n_bias;
} sched_sampling;

/* Result of one choice. Offsets into j->text when keep_text. */
typedef struct sched_choice {
    sched_finish finish;
    int n_prompt;               /* prompt tokens */
    int n_cached;               /* of which reused from the slot's KV cache */
    int n_gen;                  /* generated tokens */
    size_t text_off, text_len;  /* keep_text: this choice's text (echo included) */
} sched_choice;

struct sched_job {
    /* ---- inputs: set between sched_job_get and sched_submit ---- */
    int32_t *tokens;            /* (tok_cap) every prompt's ids back to back; pool-owned */
    int tok_cap;
    int prompt_len[SCHED_CHOICES_MAX];   /* ids of prompt i, each >= 1 */
    int n_prompts;              /* >= 1 */
    int max_tokens;             /* per choice; -1 (default) = until end-of-generation or a
                                   full context; 0 = generate nothing (echo only) */
    sched_sampling samp;
    char stop[SCHED_STOP_MAX][SCHED_STOP_LEN];
    int stop_len[SCHED_STOP_MAX];        /* each >= 1 */
    int n_stop;
    bool echo;                  /* emit each prompt's text before its completion */
    bool keep_text;             /* gather all text for done() (non-streaming) */
    bool special;               /* render control tokens in the output text */
    int64_t deadline_ms;        /* sched_now_ms() clock; 0 = none */
    const sched_sink *sink;
    void *sink_arg;
    void *user;                 /* free for the caller */

    /* ---- outputs: valid in the sink callbacks ---- */
    sched_err err;
    char errmsg[160];
    sched_choice choice[SCHED_CHOICES_MAX];   /* [0, n_prompts) */
    int n_prompt_tokens;        /* sums over the choices */
    int n_gen_tokens;
    const char *text;           /* keep_text: the slot's text buffer */
    size_t text_len;
    int64_t t_submit, t_start, t_first, t_end;   /* ms, sched_now_ms() clock */

    /* ---- private ---- */
    int index;                  /* in the pool: 0 .. n_jobs-1 */
    uint64_t serial;            /* submission number (1, 2, ...), set by sched_submit */
    int queued_logged;          /* it had to wait: its slot assignment is logged too */
    atomic_int cancel;          /* a sched_err, 0 = run on */
    sched_job *next;            /* free list / queue */
    int in_use;
};

/* Status of the slots and the queue, for monitoring (sched_model_status). */
typedef enum sched_slot_state {
    SCHED_SLOT_IDLE = 0,
    SCHED_SLOT_PROMPT,          /* evaluating a prompt (or waiting for its turn to) */
    SCHED_SLOT_GEN              /* generating */
} sched_slot_state;

typedef struct sched_slot_info {
    int id;                     /* slot index */
    sched_slot_state state;
    uint64_t serial;            /* its job's submission number; 0 when idle */
    int n_ctx;                  /* positions of its KV cache */
    int n_past;                 /* positions filled (kept after a job for prefix reuse) */
    int choice, n_choices;      /* the job's current prompt, of n_choices */
    int n_prompt;               /* tokens of that prompt */
    int n_prompt_done;          /* of which in the cache (reused ones included) */
    int n_cached;               /* reused from what the slot held */
    int n_gen;                  /* tokens generated for it so far */
    int max_tokens;             /* -1: until end-of-generation or the context end */
    int64_t t_submit, t_start;  /* ms, sched_now_ms() clock */
} sched_slot_info;

/* Work done since start. */
typedef struct sched_counters {
    uint64_t steps;             /* forward passes */
    uint64_t prompt_tokens;     /* prompt tokens evaluated (reused ones not counted) */
    uint64_t gen_tokens;        /* decode tokens evaluated */
    uint64_t batched_steps;     /* passes that carried more than one sequence */
    int max_seqs;               /* most sequences in one pass */
} sched_counters;

typedef struct sched_queue_info {
    int position;               /* 1: the next to get a slot */
    uint64_t serial;
    int n_prompt;               /* tokens of its first prompt */
    int64_t t_submit;           /* ms, sched_now_ms() clock */
} sched_queue_info;

typedef struct sched_slot sched_slot;   /* private */

typedef struct sched_model {
    /* settings (copied at init) */
    config_model cfg;
    bool demo;                  /* serve the built-in smoke-test model */
    int queue_length;
    int ping_ms;
    size_t text_cap;            /* keep_text buffer per slot (0: from the model) */

    /* loaded by the worker; read-only for every thread once READY */
    atomic_int state;           /* sched_state */
    gguf_file g;
    uint8_t *demo_buf;          /* the demo model's GGUF bytes (owned) */
    model m;
    tok_vocab vocab;
    char err[256];              /* why loading failed */

    /* worker-owned */
    thread_pool tp;
    fwd_ctx fc;                 /* n_batch = batch_length + processor_count */
    float *logits;              /* (processor_count, n_vocab): a step's logits rows */
    sched_slot *slots;          /* (processor_count) */
    sched_job **waiting;        /* (n_jobs) snapshot of the queue for pings */
    struct fwd_seq *bseq;       /* (processor_count) the step's batch */
    sched_slot **bslot;         /* (processor_count) slot of each batch entry */
    int n_slots;
    sched_counters ctr_w;    /* worker's running counters */
    /* published by the worker for sched_model_status (mu) */
    sched_slot_info *info;   /* (processor_count) */
    sched_counters ctr;      /* published copy of ctr_w */
    uint64_t serial_next;

    /* jobs and queue (mu) */
    sched_job *jobs;            /* (n_jobs) */
    int n_jobs;
    sched_job *free_jobs;
    sched_job *q_head, *q_tail;
    int n_queued, n_active;
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t ready_cv;
    pthread_t thread;
    int thread_started;
    int mu_ok;

    /* called on the worker once loading ended (READY or FAILED), if set */
    void (*on_loaded)(void *arg, struct sched_model *sm);
    void *on_loaded_arg;
} sched_model;

/* Monotonic clock in ms. */
int64_t sched_now_ms(void);

/* Prepare a model from its settings (cm copied; demo: ignore cm->path and
 * build the smoke-test model in memory). queue_length: jobs that may wait
 * beyond the slots; ping_ms: interval of ping() during prompt processing
 * (<= 0: never). Allocates the job pool (each job's token store holds
 * 2 * context_length ids). 0, or -1 with sm->err. sched_model_free is safe
 * after a failure. */
int sched_model_init(sched_model *sm, const config_model *cm, bool demo, int queue_length,
                     int ping_ms);

/* Start the worker, which loads the model, sizes the slots and serves.
 * 0, or -1 (thread creation failed; sm->err). */
int sched_model_start(sched_model *sm);

/* Block until loading ended; returns the state (READY or FAILED). */
sched_state sched_model_wait(sched_model *sm);

static inline sched_state sched_model_state(const sched_model *sm)
{
    return (sched_state)atomic_load_explicit(&((sched_model *)sm)->state, memory_order_acquire);
}

/* Cancel every job (each gets done() with SCHED_ERR_STOPPED), join the
 * worker. Idempotent. */
void sched_model_stop(sched_model *sm);
void sched_model_free(sched_model *sm);

/* A free job with its inputs reset to defaults (greedy, no stop, no limit),
 * or NULL when the pool is exhausted (the queue is full) or the model is
 * not READY. Any thread. */
sched_job *sched_job_get(sched_model *sm);

/* Give an unsubmitted job back. */
void sched_job_put(sched_model *sm, sched_job *j);

/* Queue j (FIFO). Its inputs must be valid: n_prompts >= 1, every prompt
 * length in 1..context_length with ids < n_vocab, the prompts fit tok_cap,
 * a sink with done. Returns 0, or -1 if the inputs are invalid (j->errmsg; the job is
 * given back, done() is not called). */
int sched_submit(sched_model *sm, sched_job *j);

/* Ask a job to end (any thread, also from a signal-free callback under
 * another lock: it only stores an atomic). why: SCHED_ERR_CANCELLED or
 * SCHED_ERR_TIMEOUT. The job still gets done(). */
void sched_job_cancel(sched_job *j, sched_err why);

/* Counts for monitoring (approximate). */
void sched_model_counts(sched_model *sm, int *active, int *queued, int *free_jobs);

/* ---- Status (any thread; a snapshot taken under the lock) ---------------------- */

/* Copy up to cap slot entries into slots and up to qcap queue entries (in
 * order) into queue (either may be NULL with cap 0). Returns the number of
 * slots (0 while loading); *n_queued and *ctr (each may be NULL) get the
 * queue length and the work counters. */
int sched_model_status(sched_model *sm, sched_slot_info *slots, int cap, sched_queue_info *queue, int qcap,
                       int *n_queued, sched_counters *ctr);

/* The first prompt of the submitted job with this serial, running or
 * queued: up to cap ids copied into ids. Returns the prompt's length, or -1
 * when no such job is in the scheduler any more. */
int sched_model_prompt(sched_model *sm, uint64_t serial, int32_t *ids, int cap);

/* The built-in smoke-test model: a deterministic random-weight llama with a
 * byte-level SentencePiece vocabulary (<unk>, <s>, </s>, the 256 byte
 * tokens <0x00>..<0xFF> and "▁"), dim 64, 2 layers. *buf (malloc'd, free
 * it) holds GGUF bytes for gguf_open_mem. 0, or -1 with err. */
int sched_demo_gguf(uint8_t **buf, size_t *len, char *err, size_t errcap);

#define SCHED_DEMO_ID "mote-demo"

#endif
