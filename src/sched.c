/* sched.c — per-model worker thread, slots, FIFO queue, text emission.
 *
 * Sections: clock; the built-in demo model; job pool and queue; status;
 * loading; text emission (stop strings); job and choice lifecycle; one
 * batched step; the worker loop.
 *
 * Threads: the worker owns the model's compute state and every slot; the
 * mutex guards the job pool, the queue, the stop flag and the published
 * slot status. Sink callbacks run on the worker without the lock. A job
 * belongs to the caller between sched_job_get and sched_submit, to the
 * worker from then until its done() returned, then to the pool.
 */
#include "sched.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf_write.h"
#include "kernels/kernels.h"
#include "log.h"
#include "sampler.h"

/* ---- Clock --------------------------------------------------------------- */

int64_t sched_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The built-in demo model -----------------------------------------------
 * Random weights from a fixed seed, so every run answers the same. One
 * trick makes it "speak" printable ASCII: residual dimension 0 is a
 * constant 1 in every token embedding, and no layer writes to it (row 0 of
 * attn_output and ffn_down is zero), so after the final RMSNorm it is a
 * positive constant; output rows of printable bytes and "▁" get a positive
 * weight on it, the others a negative one. Greedy output is then ASCII. */

#define DEMO_EMBD 64
#define DEMO_LAYERS 2
#define DEMO_HEADS 4
#define DEMO_HEADS_KV 2
#define DEMO_FF 128
#define DEMO_VOCAB (3 + 256 + 1)
#define DEMO_CTX 4096

static uint64_t demo_rng_next(uint64_t *s)
{
    /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-a, a]. */
static float demo_uniform(uint64_t *s, float a)
{
    double u = (double)(demo_rng_next(s) >> 11) / (double)(1ull << 53);
    return (float)((2.0 * u - 1.0) * a);
}

static void demo_fill(float *w, size_t n, uint64_t *s, float a)
{
    for (size_t i = 0; i < n; i++) w[i] = demo_uniform(s, a);
}

static int demo_printable(int id)
{
    if (id == DEMO_VOCAB - 1) return 1;            /* "▁" */
    if (id < 3) return 0;
    int b = id - 3;
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == ' ' || b == '.' || b == ',' ||
           b == '!' || b == '?' || b == '\'';
}

static int demo_matrix(gguf_writer *w, const char *name, int64_t n_in, int64_t n_out, float *buf,
                       uint64_t *s, int zero_row0)
{
    demo_fill(buf, (size_t)(n_in * n_out), s, 1.0f / sqrtf((float)n_in));
    if (zero_row0) memset(buf, 0, (size_t)n_in * sizeof *buf);
    int64_t ne[2] = { n_in, n_out };
    return gguf_writer_add_tensor(w, name, KERN_F32, 2, ne, buf, (size_t)(n_in * n_out) * sizeof *buf);
}

int sched_demo_gguf(uint8_t **out, size_t *len, char *err, size_t errcap)
{
    gguf_writer w;
    gguf_writer_init(&w);
    uint64_t s = 0x6d6f7465ull;   /* "mote" */
    float *buf = malloc((size_t)DEMO_VOCAB * DEMO_EMBD * sizeof *buf);
    char names[DEMO_VOCAB][8];
    const char *tokens[DEMO_VOCAB];
    float scores[DEMO_VOCAB];
    int32_t types[DEMO_VOCAB];
    int rc = -1;
    if (!buf) {
        snprintf(err, errcap, "demo model: out of memory");
        return -1;
    }
    for (int i = 0; i < DEMO_VOCAB; i++) {
        if (i == 0) snprintf(names[i], sizeof names[i], "<unk>");
        else if (i == 1) snprintf(names[i], sizeof names[i], "<s>");
        else if (i == 2) snprintf(names[i], sizeof names[i], "</s>");
        else if (i < DEMO_VOCAB - 1) snprintf(names[i], sizeof names[i], "<0x%02X>", i - 3);
        else snprintf(names[i], sizeof names[i], "\xe2\x96\x81");
        tokens[i] = names[i];
        scores[i] = i == DEMO_VOCAB - 1 ? -1.0f : 0.0f;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < DEMO_VOCAB - 1 ? 6 : 1;
    }
    gguf_writer_add_str(&w, "general.architecture", "llama");
    gguf_writer_add_str(&w, "general.name", SCHED_DEMO_ID);
    gguf_writer_add_str(&w, "general.description", "mote smoke-test model: random weights");
    gguf_writer_add_u32(&w, "llama.context_length", DEMO_CTX);
    gguf_writer_add_u32(&w, "llama.embedding_length", DEMO_EMBD);
    gguf_writer_add_u32(&w, "llama.block_count", DEMO_LAYERS);
    gguf_writer_add_u32(&w, "llama.feed_forward_length", DEMO_FF);
    gguf_writer_add_u32(&w, "llama.attention.head_count", DEMO_HEADS);
    gguf_writer_add_u32(&w, "llama.attention.head_count_kv", DEMO_HEADS_KV);
    gguf_writer_add_u32(&w, "llama.rope.dimension_count", DEMO_EMBD / DEMO_HEADS);
    gguf_writer_add_f32(&w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_add_f32(&w, "llama.rope.freq_base", 10000.0f);
    gguf_writer_add_str(&w, "tokenizer.ggml.model", "llama");
    gguf_writer_add_arr_str(&w, "tokenizer.ggml.tokens", tokens, DEMO_VOCAB);
    gguf_writer_add_arr_f32(&w, "tokenizer.ggml.scores", scores, DEMO_VOCAB);
    gguf_writer_add_arr_i32(&w, "tokenizer.ggml.token_type", types, DEMO_VOCAB);
    gguf_writer_add_u32(&w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_add_u32(&w, "tokenizer.ggml.eos_token_id", 2);
    gguf_writer_add_u32(&w, "tokenizer.ggml.unknown_token_id", 0);
    gguf_writer_add_bool(&w, "tokenizer.ggml.add_bos_token", 1);
    gguf_writer_add_bool(&w, "tokenizer.ggml.add_eos_token", 0);

    /* token_embd: dimension 0 is the constant 1 (see above) */
    demo_fill(buf, (size_t)DEMO_VOCAB * DEMO_EMBD, &s, 1.0f);
    for (int i = 0; i < DEMO_VOCAB; i++) buf[(size_t)i * DEMO_EMBD] = 1.0f;
    int64_t ne_e[2] = { DEMO_EMBD, DEMO_VOCAB };
    gguf_writer_add_tensor(&w, "token_embd.weight", KERN_F32, 2, ne_e, buf, (size_t)DEMO_VOCAB * DEMO_EMBD * sizeof *buf);
    float ones[DEMO_FF];
    for (int i = 0; i < DEMO_FF; i++) ones[i] = 1.0f;
    int64_t ne_v[1] = { DEMO_EMBD };
    gguf_writer_add_tensor(&w, "output_norm.weight", KERN_F32, 1, ne_v, ones, DEMO_EMBD * sizeof(float));
    demo_fill(buf, (size_t)DEMO_VOCAB * DEMO_EMBD, &s, 1.0f);
    for (int i = 0; i < DEMO_VOCAB; i++) buf[(size_t)i * DEMO_EMBD] = demo_printable(i) ? 4.0f : -4.0f;
    gguf_writer_add_tensor(&w, "output.weight", KERN_F32, 2, ne_e, buf, (size_t)DEMO_VOCAB * DEMO_EMBD * sizeof *buf);
    const int kv_dim = DEMO_EMBD / DEMO_HEADS * DEMO_HEADS_KV;
    for (int l = 0; l < DEMO_LAYERS; l++) {
        char name[64];
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        gguf_writer_add_tensor(&w, name, KERN_F32, 1, ne_v, ones, DEMO_EMBD * sizeof(float));
        snprintf(name, sizeof name, "blk.%d.ffn_norm.weight", l);
        gguf_writer_add_tensor(&w, name, KERN_F32, 1, ne_v, ones, DEMO_EMBD * sizeof(float));
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        demo_matrix(&w, name, DEMO_EMBD, DEMO_EMBD, buf, &s, 0);
        snprintf(name, sizeof name, "blk.%d.attn_k.weight", l);
        demo_matrix(&w, name, DEMO_EMBD, kv_dim, buf, &s, 0);
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        demo_matrix(&w, name, DEMO_EMBD, kv_dim, buf, &s, 0);
        snprintf(name, sizeof name, "blk.%d.attn_output.weight", l);
        demo_matrix(&w, name, DEMO_EMBD, DEMO_EMBD, buf, &s, 1);
        snprintf(name, sizeof name, "blk.%d.ffn_gate.weight", l);
        demo_matrix(&w, name, DEMO_EMBD, DEMO_FF, buf, &s, 0);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        demo_matrix(&w, name, DEMO_EMBD, DEMO_FF, buf, &s, 0);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        demo_matrix(&w, name, DEMO_FF, DEMO_EMBD, buf, &s, 1);
    }
    if (gguf_writer_finish(&w, out, len) < 0) snprintf(err, errcap, "demo model: %s", w.err);
    else rc = 0;
    gguf_writer_free(&w);
    free(buf);
    return rc;
}

/* ---- Slots (worker-owned) -------------------------------------------------- */

/* Held-back text plus one token's piece; also the echo chunk buffer. */
#define PEND_CAP (SCHED_TEXT_CHUNK + 3 * TOK_PIECE_MAX + 16)

struct sched_slot {
    fwd_kv kv;
    int32_t *hist;            /* (n_ctx) ids whose K/V are in kv, in order */
    int n_hist;               /* == kv.n_past */
    char *text;               /* (text_cap) keep_text: all text of the job */
    size_t text_len;
    sched_job *job;           /* NULL: free */
    int choice;               /* current prompt */
    int tok_off;              /* its first id in job->tokens */
    int fed;                  /* its ids already in kv */
    int n_gen;
    int32_t last;             /* sampled id not yet in kv */
    int fresh;                /* assigned, start() not called yet */
    int begun;                /* the current choice started (cache reuse, echo) */
    int decoding;             /* prompt done: the next step evaluates `last` */
    int step_n;               /* tokens this slot put in the current step's batch */
    int step_row;             /* its logits row in the step, or -1 */
    sampler smp;              /* hist sized for the whole context */
    int smp_cap;              /* its history capacity */
    tok_stream ts;
    char pend[PEND_CAP];      /* generated text held back for stop strings */
    size_t n_pend;
    int64_t t_ping;
    int64_t t_used;           /* when the last job started here (LRU) */
};

/* ---- Job pool and queue ------------------------------------------------------ */

static void job_reset(sched_model *sm, sched_job *j)
{
    (void)sm;
    j->n_prompts = 0;
    j->max_tokens = -1;
    memset(&j->samp, 0, sizeof j->samp);
    j->samp.top_p = 1.0f;
    j->samp.repeat_penalty = 1.0f;
    j->samp.repeat_last_n = 64;
    j->n_stop = 0;
    j->echo = j->keep_text = j->special = false;
    j->deadline_ms = 0;
    j->sink = NULL;
    j->sink_arg = NULL;
    j->user = NULL;
    j->err = SCHED_OK;
    j->errmsg[0] = 0;
    j->n_prompt_tokens = j->n_gen_tokens = 0;
    j->text = NULL;
    j->text_len = 0;
    j->t_submit = j->t_start = j->t_first = j->t_end = 0;
    atomic_store(&j->cancel, 0);
    j->next = NULL;
    j->queued_logged = 0;   /* serial: already 0 (cleared under the lock when put back) */
}

int sched_model_init(sched_model *sm, const config_model *cm, bool demo, int queue_length, int ping_ms)
{
    memset(sm, 0, sizeof *sm);
    sm->cfg = *cm;
    sm->demo = demo;
    sm->queue_length = queue_length < 0 ? 0 : queue_length;
    sm->ping_ms = ping_ms;
    atomic_store(&sm->state, SCHED_LOADING);
    if (cm->processor_count < 1 || cm->context_length < 2 || cm->batch_length < 1) {
        snprintf(sm->err, sizeof sm->err, "bad slot settings (processor_count %d, context_length %d, batch_length %d)",
                 cm->processor_count, cm->context_length, cm->batch_length);
        return -1;
    }
    if (pthread_mutex_init(&sm->mu, NULL) != 0) goto nomem;
    if (pthread_cond_init(&sm->cv, NULL) != 0) {
        pthread_mutex_destroy(&sm->mu);
        goto nomem;
    }
    if (pthread_cond_init(&sm->ready_cv, NULL) != 0) {
        pthread_cond_destroy(&sm->cv);
        pthread_mutex_destroy(&sm->mu);
        goto nomem;
    }
    sm->mu_ok = 1;
    sm->n_jobs = cm->processor_count + sm->queue_length;
    sm->jobs = calloc((size_t)sm->n_jobs, sizeof *sm->jobs);
    if (!sm->jobs) goto nomem;
    for (int i = sm->n_jobs - 1; i >= 0; i--) {
        sched_job *j = &sm->jobs[i];
        j->index = i;
        j->tok_cap = 2 * cm->context_length;
        j->tokens = malloc((size_t)j->tok_cap * sizeof *j->tokens);
        if (!j->tokens) goto nomem;
        j->next = sm->free_jobs;
        sm->free_jobs = j;
    }
    return 0;
nomem:
    snprintf(sm->err, sizeof sm->err, "out of memory for %d jobs", cm->processor_count + queue_length);
    return -1;
}

sched_job *sched_job_get(sched_model *sm)
{
    if (sched_model_state(sm) != SCHED_READY) return NULL;
    pthread_mutex_lock(&sm->mu);
    sched_job *j = sm->stop ? NULL : sm->free_jobs;
    if (j) {
        sm->free_jobs = j->next;
        j->in_use = 1;
    }
    pthread_mutex_unlock(&sm->mu);
    if (j) job_reset(sm, j);
    return j;
}

void sched_job_put(sched_model *sm, sched_job *j)
{
    pthread_mutex_lock(&sm->mu);
    j->in_use = 0;
    j->serial = 0;
    j->next = sm->free_jobs;
    sm->free_jobs = j;
    pthread_mutex_unlock(&sm->mu);
}

int sched_submit(sched_model *sm, sched_job *j)
{
    int n_vocab = sm->m.hp.n_vocab;
    long total = 0;
    if (!j->sink || !j->sink->done) {
        snprintf(j->errmsg, sizeof j->errmsg, "no sink");
        goto bad;
    }
    if (j->n_prompts < 1 || j->n_prompts > SCHED_CHOICES_MAX) {
        snprintf(j->errmsg, sizeof j->errmsg, "%d prompts (1..%d)", j->n_prompts, SCHED_CHOICES_MAX);
        goto bad;
    }
    for (int i = 0; i < j->n_prompts; i++) {
        if (j->prompt_len[i] < 1 || j->prompt_len[i] > sm->cfg.context_length) {
            snprintf(j->errmsg, sizeof j->errmsg, "prompt %d has %d tokens (1..%d)", i, j->prompt_len[i],
                     sm->cfg.context_length);
            goto bad;
        }
        total += j->prompt_len[i];
    }
    if (total > j->tok_cap) {
        snprintf(j->errmsg, sizeof j->errmsg, "%ld prompt tokens in all (at most %d)", total, j->tok_cap);
        goto bad;
    }
    for (long i = 0; i < total; i++)
        if (j->tokens[i] < 0 || j->tokens[i] >= n_vocab) {
            snprintf(j->errmsg, sizeof j->errmsg, "token id %d out of range (vocab %d)", (int)j->tokens[i], n_vocab);
            goto bad;
        }
    for (int i = 0; i < j->n_stop; i++)
        if (j->stop_len[i] < 1 || j->stop_len[i] > SCHED_STOP_LEN) {
            snprintf(j->errmsg, sizeof j->errmsg, "stop string %d has %d bytes (1..%d)", i, j->stop_len[i], SCHED_STOP_LEN);
            goto bad;
        }
    if (j->n_stop < 0 || j->n_stop > SCHED_STOP_MAX || j->samp.n_bias < 0 || j->samp.n_bias > SCHED_BIAS_MAX) {
        snprintf(j->errmsg, sizeof j->errmsg, "bad stop or bias count");
        goto bad;
    }
    for (int i = 0; i < j->samp.n_bias; i++)
        if (j->samp.bias_token[i] < 0 || j->samp.bias_token[i] >= n_vocab) {
            snprintf(j->errmsg, sizeof j->errmsg, "logit_bias token %d out of range", (int)j->samp.bias_token[i]);
            goto bad;
        }
    j->t_submit = sched_now_ms();
    j->next = NULL;
    pthread_mutex_lock(&sm->mu);
    if (sm->stop) {
        pthread_mutex_unlock(&sm->mu);
        snprintf(j->errmsg, sizeof j->errmsg, "the server is stopping");
        goto bad;
    }
    if (sm->q_tail) sm->q_tail->next = j;
    else sm->q_head = j;
    sm->q_tail = j;
    sm->n_queued++;
    j->serial = ++sm->serial_next;
    /* jobs ahead of it that will not find a free slot: its place in line */
    int pos = sm->n_active + sm->n_queued - sm->n_slots;
    j->queued_logged = pos > 0;
    pthread_cond_signal(&sm->cv);
    pthread_mutex_unlock(&sm->mu);
    if (pos > 0)
        log_info("model %s: request #%llu waits for a slot: position %d in the queue (all %d slots busy)",
                 sm->cfg.id, (unsigned long long)j->serial, pos, sm->n_slots);
    return 0;
bad:
    sched_job_put(sm, j);
    return -1;
}

void sched_job_cancel(sched_job *j, sched_err why)
{
    int zero = 0;
    atomic_compare_exchange_strong(&j->cancel, &zero, (int)why);
}

void sched_model_counts(sched_model *sm, int *active, int *queued, int *free_jobs)
{
    pthread_mutex_lock(&sm->mu);
    int nf = 0;
    for (sched_job *j = sm->free_jobs; j; j = j->next) nf++;
    if (active) *active = sm->n_jobs - nf - sm->n_queued;
    if (queued) *queued = sm->n_queued;
    if (free_jobs) *free_jobs = nf;
    pthread_mutex_unlock(&sm->mu);
}

/* ---- Status ------------------------------------------------------------------------ */

int sched_model_status(sched_model *sm, sched_slot_info *slots, int cap, sched_queue_info *queue, int qcap,
                       int *n_queued, sched_counters *ctr)
{
    int n = 0, k = 0;
    pthread_mutex_lock(&sm->mu);
    if (sm->info && sched_model_state(sm) == SCHED_READY) {
        n = sm->n_slots;
        for (int i = 0; i < n && i < cap; i++) slots[i] = sm->info[i];
    }
    for (sched_job *j = sm->q_head; j; j = j->next, k++)
        if (k < qcap) {
            queue[k].position = k + 1;
            queue[k].serial = j->serial;
            queue[k].n_prompt = j->prompt_len[0];
            queue[k].t_submit = j->t_submit;
        }
    if (n_queued) *n_queued = k;
    if (ctr) *ctr = sm->ctr;
    pthread_mutex_unlock(&sm->mu);
    return n;
}

int sched_model_prompt(sched_model *sm, uint64_t serial, int32_t *ids, int cap)
{
    int n = -1;
    if (serial == 0) return -1;
    pthread_mutex_lock(&sm->mu);
    /* a submitted job goes back to the pool (and may be reused) only under
     * the lock, so its tokens cannot change while it is found here */
    for (int i = 0; i < sm->n_jobs; i++) {
        const sched_job *j = &sm->jobs[i];
        if (!j->in_use || j->serial != serial) continue;
        n = j->prompt_len[0];
        memcpy(ids, j->tokens, (size_t)(n < cap ? n : cap) * sizeof *ids);
        break;
    }
    pthread_mutex_unlock(&sm->mu);
    return n;
}

/* ---- Loading (worker) ------------------------------------------------------ */

static int load(sched_model *sm)
{
    const config_model *cm = &sm->cfg;
    char err[256];
    int rc;
    if (sm->demo) {
        size_t len;
        if (sched_demo_gguf(&sm->demo_buf, &len, err, sizeof err) < 0) {
            snprintf(sm->err, sizeof sm->err, "%s", err);
            return -1;
        }
        rc = gguf_open_mem(&sm->g, sm->demo_buf, len);
    } else {
        rc = gguf_open(&sm->g, cm->path);
    }
    if (rc < 0) {
        snprintf(sm->err, sizeof sm->err, "%s", sm->g.err);
        return -1;
    }
    if (model_init(&sm->m, &sm->g) < 0) {
        snprintf(sm->err, sizeof sm->err, "%s", sm->m.err);
        return -1;
    }
    if (tok_vocab_load(&sm->vocab, &sm->g, err, sizeof err) < 0) {
        snprintf(sm->err, sizeof sm->err, "%s", err);
        return -1;
    }
    if (sm->vocab.n_vocab > sm->m.hp.n_vocab) {
        snprintf(sm->err, sizeof sm->err, "the tokenizer has %d tokens but the model only %d",
                 (int)sm->vocab.n_vocab, sm->m.hp.n_vocab);
        return -1;
    }
    thread_pool_init(&sm->tp, cm->thread_count);   /* on failure: a valid one-thread pool */
    /* a step holds one prompt chunk (never longer than the context) plus
     * one decode token per slot */
    int chunk = cm->batch_length < cm->context_length ? cm->batch_length : cm->context_length;
    const kern_table *kt = kern_select(cm->kernels[0] ? cm->kernels : NULL);
    if (!kt) {
        snprintf(sm->err, sizeof sm->err, "kernel table '%s' is not usable here (compiled: %s; the CPU must support it)",
                 cm->kernels, kern_compiled_names());
        return -1;
    }
    /* the table's packed layouts: decode streams them faster; without the
     * memory for them the mapped weights serve, just slower */
    if (!cm->no_pack && model_pack(&sm->m, kt) < 0)
        log_warn("model %s: %s; serving from the mapped file (slower decode)", cm->id, sm->m.err);
    if ((rc = fwd_init(&sm->fc, &sm->m, kt, &sm->tp, chunk + cm->processor_count)) < 0) {
        snprintf(sm->err, sizeof sm->err, "%s", sm->fc.err);
        return -1;
    }
    size_t n_slots = (size_t)cm->processor_count;
    sm->logits = malloc(n_slots * (size_t)sm->m.hp.n_vocab * sizeof *sm->logits);
    sm->slots = calloc(n_slots, sizeof *sm->slots);
    sm->waiting = calloc((size_t)sm->n_jobs, sizeof *sm->waiting);
    sm->bseq = calloc(n_slots, sizeof *sm->bseq);
    sm->bslot = calloc(n_slots, sizeof *sm->bslot);
    sched_slot_info *info = calloc(n_slots, sizeof *info);
    if (!sm->logits || !sm->slots || !sm->waiting || !sm->bseq || !sm->bslot || !info) {
        free(info);
        goto nomem;
    }
    for (int i = 0; i < cm->processor_count; i++) {
        info[i].id = i;
        info[i].n_ctx = cm->context_length;
    }
    pthread_mutex_lock(&sm->mu);
    sm->info = info;
    pthread_mutex_unlock(&sm->mu);
    sm->n_slots = cm->processor_count;
    int n_ctx = cm->context_length;
    if (!sm->text_cap) {
        size_t per = (size_t)sm->vocab.max_token_len + 3;
        sm->text_cap = (size_t)n_ctx * per + 4096;
        if (sm->text_cap > ((size_t)4 << 20)) sm->text_cap = (size_t)4 << 20;
    }
    int kv_type = cm->kv_type == CONFIG_KV_F32 ? KERN_F32 : KERN_F16;
    for (int i = 0; i < sm->n_slots; i++) {
        sched_slot *s = &sm->slots[i];
        if (fwd_kv_init(&s->kv, &sm->m, n_ctx, kv_type) < 0) goto nomem;
        s->hist = malloc((size_t)n_ctx * sizeof *s->hist);
        s->text = malloc(sm->text_cap);
        if (!s->hist || !s->text) goto nomem;
        sampler_params sp;
        sampler_params_default(&sp);
        sp.penalty_last_n = n_ctx;
        if (sampler_init(&s->smp, sm->m.hp.n_vocab, &sp) < 0) goto nomem;
        s->smp_cap = s->smp.hist_cap;
    }
    return 0;
nomem:
    snprintf(sm->err, sizeof sm->err, "out of memory for %d slots of %d positions", cm->processor_count,
             cm->context_length);
    return -1;
}

/* ---- Text emission ----------------------------------------------------------- */

/* The longest prefix of at most max bytes that does not split a UTF-8
 * sequence (max bytes when p[max] does not continue one). */
static size_t utf8_cut(const char *p, size_t max)
{
    size_t k = max;
    while (k > max - 3 && ((unsigned char)p[k] & 0xC0) == 0x80) k--;
    return k;
}

/* Hand text to the sink (in chunks) and keep it for done() when asked.
 * 0, or -1 when the keep_text buffer is full. */
static int emit(sched_model *sm, sched_slot *s, const char *p, size_t n)
{
    sched_job *j = s->job;
    if (n == 0) return 0;
    if (j->keep_text) {
        if (n > sm->text_cap - s->text_len) return -1;
        memcpy(s->text + s->text_len, p, n);
        s->text_len += n;
        j->choice[s->choice].text_len += n;
    }
    if (j->sink->text) {
        while (n > 0) {
            size_t k = n <= SCHED_TEXT_CHUNK ? n : utf8_cut(p, SCHED_TEXT_CHUNK);
            j->sink->text(j->sink_arg, j, s->choice, p, k);
            p += k;
            n -= k;
        }
    }
    return 0;
}

/* Where the earliest complete stop string starts in p[0..n), or -1; *hold:
 * the longest tail of p that could still grow into a stop string. */
static long stop_find(const sched_job *j, const char *p, size_t n, size_t *hold)
{
    long best = -1;
    size_t h = 0;
    for (int i = 0; i < j->n_stop; i++) {
        const char *st = j->stop[i];
        size_t sl = (size_t)j->stop_len[i];
        const char *f = sl <= n ? memmem(p, n, st, sl) : NULL;
        if (f && (best < 0 || f - p < best)) best = f - p;
        for (size_t k = sl - 1 < n ? sl - 1 : n; k > h; k--)
            if (!memcmp(p + n - k, st, k)) {
                h = k;
                break;
            }
    }
    *hold = h;
    return best;
}

/* Release what can no longer be part of a stop string. Returns 1 if a stop
 * string matched (text up to it emitted, the rest dropped), 0 if not, -1 if
 * the keep_text buffer is full. final: generation ended, hold nothing. */
static int pend_release(sched_model *sm, sched_slot *s, int final)
{
    size_t hold;
    long at = stop_find(s->job, s->pend, s->n_pend, &hold);
    size_t n = at >= 0 ? (size_t)at : final ? s->n_pend : s->n_pend - hold;
    if (emit(sm, s, s->pend, n) < 0) return -1;
    if (at >= 0 || final) {
        s->n_pend = 0;
    } else {
        memmove(s->pend, s->pend + n, s->n_pend - n);
        s->n_pend -= n;
    }
    return at >= 0;
}

/* ---- Job and choice lifecycle (worker) ------------------------------------------ */

static void job_end(sched_model *sm, sched_slot *s, sched_err err)
{
    sched_job *j = s->job;
    j->err = err;
    if (err && !j->errmsg[0]) {
        const char *what = err == SCHED_ERR_CANCELLED ? "cancelled"
                         : err == SCHED_ERR_TIMEOUT ? "timed out"
                         : err == SCHED_ERR_STOPPED ? "the server is stopping"
                         : err == SCHED_ERR_TEXT_FULL ? "the response text is too large"
                         : "engine failure";
        snprintf(j->errmsg, sizeof j->errmsg, "%s", what);
    }
    j->text = s->text;
    j->text_len = s->text_len;
    j->t_end = sched_now_ms();
    s->job = NULL;
    j->sink->done(j->sink_arg, j);
    pthread_mutex_lock(&sm->mu);
    j->in_use = 0;
    j->serial = 0;
    j->next = sm->free_jobs;
    sm->free_jobs = j;
    sm->n_active--;
    sched_slot_info *in = &sm->info[s - sm->slots];
    in->state = SCHED_SLOT_IDLE;
    in->serial = 0;
    in->n_past = s->kv.n_past;
    pthread_mutex_unlock(&sm->mu);
}

/* A job that never got a slot (cancelled while queued, or server stopping). */
static void job_drop(sched_model *sm, sched_job *j, sched_err err)
{
    j->err = err;
    snprintf(j->errmsg, sizeof j->errmsg, "%s", err == SCHED_ERR_STOPPED ? "the server is stopping"
                                               : err == SCHED_ERR_TIMEOUT ? "timed out in the queue"
                                               : "cancelled in the queue");
    j->t_end = sched_now_ms();
    j->sink->done(j->sink_arg, j);
    sched_job_put(sm, j);
}

static void choice_reset(sched_slot *s)
{
    s->fed = 0;
    s->n_gen = 0;
    s->begun = 0;
    s->decoding = 0;
    s->n_pend = 0;
    s->last = -1;
    tok_stream_init(&s->ts);
}

/* Start the current choice: reuse the cached prefix, echo the prompt.
 * 0, or -1 when the job ended. */
static int choice_begin(sched_model *sm, sched_slot *s)
{
    sched_job *j = s->job;
    const int32_t *prompt = j->tokens + s->tok_off;
    int plen = j->prompt_len[s->choice];
    sched_choice *c = &j->choice[s->choice];
    int same = 0;
    while (same < s->n_hist && same < plen && s->hist[same] == prompt[same]) same++;
    if (same > plen - 1) same = plen - 1;            /* evaluate one token for the logits */
    fwd_kv_truncate(&s->kv, same);
    s->n_hist = same;
    s->fed = same;
    s->begun = 1;
    c->n_prompt = plen;
    c->n_cached = same;
    c->text_off = s->text_len;
    c->text_len = 0;
    if (j->echo) {
        /* the prompt as text: pieces through a UTF-8 stream, emitted in chunks */
        tok_stream ts;
        tok_stream_init(&ts);
        size_t n = 0;
        int skip_space = sm->vocab.type == TOK_TYPE_SPM && sm->vocab.add_space_prefix;
        for (int i = 0; i < plen; i++) {
            int32_t k = tok_stream_push(&ts, &sm->vocab, prompt[i], j->special, s->pend + n, (int32_t)(PEND_CAP - n));
            if (k < 0) k = 0;
            if (skip_space && k > 0) {
                if (s->pend[n] == ' ') memmove(s->pend + n, s->pend + n + 1, (size_t)--k);
                skip_space = 0;
            }
            n += (size_t)k;
            if (i == plen - 1) {
                int32_t f = tok_stream_flush(&ts, s->pend + n, (int32_t)(PEND_CAP - n));
                if (f > 0) n += (size_t)f;
            }
            /* full chunks as they fill, the rest at the end */
            while (n >= SCHED_TEXT_CHUNK || (i == plen - 1 && n > 0)) {
                size_t c = n > SCHED_TEXT_CHUNK ? utf8_cut(s->pend, SCHED_TEXT_CHUNK) : n;
                if (emit(sm, s, s->pend, c) < 0) {
                    job_end(sm, s, SCHED_ERR_TEXT_FULL);
                    return -1;
                }
                memmove(s->pend, s->pend + c, n - c);
                n -= c;
            }
        }
    }
    return 0;
}

/* The current choice is over. Flushes held text (unless a stop string
 * matched), moves to the next prompt or ends the job. */
static void choice_finish(sched_model *sm, sched_slot *s, sched_finish fin, int stopped)
{
    sched_job *j = s->job;
    if (!stopped) {
        int32_t f = tok_stream_flush(&s->ts, s->pend + s->n_pend, (int32_t)(PEND_CAP - s->n_pend));
        if (f > 0) s->n_pend += (size_t)f;
        int rc = pend_release(sm, s, 1);
        if (rc < 0) {
            job_end(sm, s, SCHED_ERR_TEXT_FULL);
            return;
        }
        if (rc == 1) fin = SCHED_FINISH_STOP;
    }
    j->choice[s->choice].finish = fin;
    if (j->sink->choice_end) j->sink->choice_end(j->sink_arg, j, s->choice);
    s->tok_off += j->prompt_len[s->choice];
    if (++s->choice < j->n_prompts) choice_reset(s);
    else job_end(sm, s, SCHED_OK);
}

/* Set the slot's sampler up for a job. TODO(sampler.h): mirostat v2 and a
 * way to change penalty_last_n within the history allocated at init (the
 * ring capacity is set directly until the sampler offers one). */
static void sampler_setup(sched_slot *s, const sched_sampling *sp)
{
    sampler_params p;
    sampler_params_default(&p);
    p.temp = sp->temperature;
    p.top_k = sp->top_k;
    p.top_p = sp->top_p;
    p.min_p = sp->min_p;
    p.repeat_penalty = sp->repeat_penalty;
    p.presence_penalty = sp->presence_penalty;
    p.frequency_penalty = sp->frequency_penalty;
    int n = sp->repeat_last_n < 0 || sp->repeat_last_n > s->smp_cap ? s->smp_cap : sp->repeat_last_n;
    p.penalty_last_n = n;
    p.seed = sp->seed;
    s->smp.p = p;
    sampler_reset(&s->smp, sp->seed);
    s->smp.hist_cap = n;
}

/* The next token from a logits row (logit_bias first, then the sampler chain). */
static int32_t sample(sched_slot *s, float *lg)
{
    const sched_sampling *sp = &s->job->samp;
    for (int i = 0; i < sp->n_bias; i++) lg[sp->bias_token[i]] += sp->bias[i];
    int32_t t = sampler_sample(&s->smp, lg);
    sampler_accept(&s->smp, t);
    return t;
}

/* ---- One batched step ------------------------------------------------------------ */

/* End the slot's job if it was cancelled or its deadline passed. 1 if so. */
static int slot_check(sched_model *sm, sched_slot *s, int64_t now)
{
    sched_job *j = s->job;
    int why = atomic_load(&j->cancel);
    if (!why && j->deadline_ms && now >= j->deadline_ms) why = SCHED_ERR_TIMEOUT;
    if (!why) return 0;
    job_end(sm, s, (sched_err)why);
    return 1;
}

/* Start the slot's current choice if needed (prefix reuse, echo); choices
 * with max_tokens 0 (echo only) finish at once. 1 if the slot still holds
 * a job with tokens to evaluate. */
static int slot_ready(sched_model *sm, sched_slot *s)
{
    while (s->job && !s->begun) {
        if (choice_begin(sm, s) < 0) return 0;
        if (s->job->max_tokens == 0) choice_finish(sm, s, SCHED_FINISH_LENGTH, 0);
    }
    return s->job != NULL;
}

/* The step gave slot s logits (its prompt's last token or its decode
 * token): sample, emit, check the stop conditions. */
static void slot_token(sched_model *sm, sched_slot *s, float *lg)
{
    sched_job *j = s->job;
    int32_t t = sample(s, lg);
    s->n_gen++;
    j->choice[s->choice].n_gen++;
    j->n_gen_tokens++;
    if (!j->t_first) j->t_first = sched_now_ms();
    if (tok_is_eog(&sm->vocab, t)) {
        choice_finish(sm, s, SCHED_FINISH_STOP, 0);
        return;
    }
    int32_t k = tok_stream_push(&s->ts, &sm->vocab, t, j->special, s->pend + s->n_pend,
                                (int32_t)(PEND_CAP - s->n_pend));
    if (k > 0) s->n_pend += (size_t)k;
    int stopped = pend_release(sm, s, 0);
    if (stopped < 0) {
        job_end(sm, s, SCHED_ERR_TEXT_FULL);
        return;
    }
    if (stopped) {
        choice_finish(sm, s, SCHED_FINISH_STOP, 1);
        return;
    }
    /* the context is full: the explicit end, finish_reason "length" */
    if ((j->max_tokens > 0 && s->n_gen >= j->max_tokens) || s->kv.n_past >= s->kv.n_ctx) {
        choice_finish(sm, s, SCHED_FINISH_LENGTH, 0);
        return;
    }
    s->last = t;
}

/* The next prompt chunk of slot s: the rest of its prompt, at most
 * batch_length tokens. It depends on nothing but s (same chunks alone or
 * batched, so the same arithmetic). */
static int prompt_chunk(const sched_model *sm, const sched_slot *s)
{
    int k = s->job->prompt_len[s->choice] - s->fed;
    return k < sm->cfg.batch_length ? k : sm->cfg.batch_length;
}

/* One forward pass over every active slot: the pending token of each
 * generating slot, plus prompt chunks within a budget of batch_length
 * tokens: the earliest-submitted prompt slot's next chunk always, then the
 * next ones (by submission) whose whole chunk still fits (several short
 * prompts start together; a long one takes the step alone). Prompt slots
 * left out wait for the next step (pinged). Returns 0 if there was nothing
 * to run. */
static int step(sched_model *sm)
{
    const int64_t now = sched_now_ms();
    const int V = sm->m.hp.n_vocab;
    int n = 0, rows = 0, n_prompting = 0;
    for (int i = 0; i < sm->n_slots; i++) {
        sched_slot *s = &sm->slots[i];
        s->step_n = 0;
        s->step_row = -1;
        if (!s->job || slot_check(sm, s, now) || !slot_ready(sm, s)) continue;
        if (s->decoding) {
            s->step_n = 1;
            s->step_row = rows++;
            sm->bseq[n] = (fwd_seq){ &s->kv, &s->last, 1, 1 };
            sm->bslot[n++] = s;
        } else {
            n_prompting++;
        }
    }
    /* prompt chunks in submission order while the budget lasts */
    int budget = sm->cfg.batch_length;
    for (uint64_t after = 0; n_prompting > 0; n_prompting--) {
        sched_slot *p = NULL;
        for (int i = 0; i < sm->n_slots; i++) {
            sched_slot *s = &sm->slots[i];
            if (s->job && !s->decoding && s->job->serial > after && (!p || s->job->serial < p->job->serial)) p = s;
        }
        if (!p) break;
        after = p->job->serial;
        int k = prompt_chunk(sm, p);
        if (k > budget && budget < sm->cfg.batch_length) break;   /* keep the order: no overtaking */
        budget -= k;
        int last = p->fed + k == p->job->prompt_len[p->choice];
        p->step_n = k;
        p->step_row = last ? rows++ : -1;
        sm->bseq[n] = (fwd_seq){ &p->kv, p->job->tokens + p->tok_off + p->fed, k, last };
        sm->bslot[n++] = p;
    }
    if (n == 0) return 0;

    int rc = fwd_eval_batch(&sm->fc, sm->bseq, n, sm->logits);
    sched_counters *c = &sm->ctr_w;
    c->steps++;
    c->batched_steps += n > 1;
    if (n > c->max_seqs) c->max_seqs = n;
    for (int i = 0; i < n; i++) {
        if (sm->bslot[i]->decoding) c->gen_tokens++;
        else c->prompt_tokens += (uint64_t)sm->bseq[i].n;
    }
    for (int i = 0; i < n; i++) {
        sched_slot *s = sm->bslot[i];
        if (rc < 0) {
            snprintf(s->job->errmsg, sizeof s->job->errmsg, "forward pass: %.140s", sm->fc.err);
            job_end(sm, s, SCHED_ERR_ENGINE);
            continue;
        }
        memcpy(s->hist + s->n_hist, sm->bseq[i].tokens, (size_t)s->step_n * sizeof *s->hist);
        s->n_hist += s->step_n;
        if (!s->decoding) s->fed += s->step_n;
    }
    if (rc < 0) return 1;

    /* tokens out, in slot order (callbacks may cancel, nothing else) */
    for (int i = 0; i < n; i++) {
        sched_slot *s = sm->bslot[i];
        if (s->step_row < 0) continue;
        s->decoding = 1;
        slot_token(sm, s, sm->logits + (size_t)s->step_row * V);
    }
    /* keep the streams of slots still in their prompt alive */
    if (sm->ping_ms > 0) {
        int64_t t = sched_now_ms();
        for (int i = 0; i < sm->n_slots; i++) {
            sched_slot *s = &sm->slots[i];
            if (s->job && !s->decoding && t - s->t_ping >= sm->ping_ms && s->job->sink->ping) {
                s->t_ping = t;
                s->job->sink->ping(s->job->sink_arg, s->job);
            }
        }
    }
    return 1;
}

/* ---- The worker ---------------------------------------------------------------- */

/* Copy slot i's state into its published status (caller holds mu). */
static void info_fill(sched_model *sm, int i)
{
    const sched_slot *s = &sm->slots[i];
    sched_slot_info *in = &sm->info[i];
    const sched_job *j = s->job;
    in->n_past = s->kv.n_past;
    if (!j || s->choice >= j->n_prompts) {
        in->state = SCHED_SLOT_IDLE;
        in->serial = 0;
        return;
    }
    in->state = s->decoding ? SCHED_SLOT_GEN : SCHED_SLOT_PROMPT;
    in->serial = j->serial;
    in->choice = s->choice;
    in->n_choices = j->n_prompts;
    in->n_prompt = j->prompt_len[s->choice];
    in->n_prompt_done = s->fed;
    in->n_cached = s->begun ? j->choice[s->choice].n_cached : 0;
    in->n_gen = s->n_gen;
    in->max_tokens = j->max_tokens;
    in->t_submit = j->t_submit;
    in->t_start = j->t_start;
}

static void info_publish(sched_model *sm)
{
    pthread_mutex_lock(&sm->mu);
    for (int i = 0; i < sm->n_slots; i++) info_fill(sm, i);
    sm->ctr = sm->ctr_w;
    pthread_mutex_unlock(&sm->mu);
}

/* A free slot for j: the one whose cache shares the longest prefix with j's
 * first prompt when that covers at least half of the prompt (a follow-up
 * turn of a conversation, a shared system prompt), else the least recently
 * used one (so a short common prefix such as BOS does not evict a useful
 * cache; never-used slots come first). */
static sched_slot *slot_pick(sched_model *sm, const sched_job *j)
{
    sched_slot *best = NULL, *lru = NULL;
    int best_n = -1;
    for (int i = 0; i < sm->n_slots; i++) {
        sched_slot *s = &sm->slots[i];
        if (s->job) continue;
        int n = 0;
        while (n < s->n_hist && n < j->prompt_len[0] && s->hist[n] == j->tokens[n]) n++;
        if (n > best_n) {
            best = s;
            best_n = n;
        }
        if (!lru || s->t_used < lru->t_used) lru = s;
    }
    return 2 * best_n >= j->prompt_len[0] ? best : lru;
}

/* Give slot s to job j (caller holds mu). */
static void slot_assign(sched_model *sm, sched_slot *s, sched_job *j)
{
    s->job = j;
    s->choice = 0;
    s->tok_off = 0;
    s->text_len = 0;
    s->t_ping = s->t_used = sched_now_ms();
    s->fresh = 1;
    sampler_setup(s, &j->samp);
    choice_reset(s);
    for (int i = 0; i < j->n_prompts; i++) {
        j->n_prompt_tokens += j->prompt_len[i];
        memset(&j->choice[i], 0, sizeof j->choice[i]);
    }
    j->t_start = sched_now_ms();
    info_fill(sm, (int)(s - sm->slots));
}

static void *worker(void *arg)
{
    sched_model *sm = arg;
    int ok = load(sm) == 0;
    pthread_mutex_lock(&sm->mu);
    atomic_store_explicit(&sm->state, ok ? SCHED_READY : SCHED_FAILED, memory_order_release);
    pthread_cond_broadcast(&sm->ready_cv);
    pthread_mutex_unlock(&sm->mu);
    if (sm->on_loaded) sm->on_loaded(sm->on_loaded_arg, sm);

    int64_t t_qping = sched_now_ms();
    for (;;) {
        /* admit queued jobs into free slots; drop those cancelled meanwhile */
        sched_job *dropped = NULL;
        pthread_mutex_lock(&sm->mu);
        while (!sm->stop && sm->n_active == 0 && !sm->q_head) pthread_cond_wait(&sm->cv, &sm->mu);
        if (sm->stop) {
            pthread_mutex_unlock(&sm->mu);
            break;
        }
        /* jobs cancelled while waiting leave the queue at once (their pool
         * entries are needed), wherever they are in it */
        for (sched_job **pp = &sm->q_head, *prev = NULL; *pp;) {
            sched_job *j = *pp;
            if (!atomic_load(&j->cancel)) {
                prev = j;
                pp = &j->next;
                continue;
            }
            *pp = j->next;
            if (sm->q_tail == j) sm->q_tail = prev;
            sm->n_queued--;
            j->next = dropped;
            dropped = j;
        }
        while (sm->q_head && (sm->n_active < sm->n_slots || atomic_load(&sm->q_head->cancel))) {
            sched_job *j = sm->q_head;
            sm->q_head = j->next;
            if (!sm->q_head) sm->q_tail = NULL;
            sm->n_queued--;
            int64_t now = sched_now_ms();
            if (j->deadline_ms && now >= j->deadline_ms) sched_job_cancel(j, SCHED_ERR_TIMEOUT);
            if (atomic_load(&j->cancel)) {
                j->next = dropped;
                dropped = j;
                continue;
            }
            sm->n_active++;
            slot_assign(sm, slot_pick(sm, j), j);
        }
        pthread_mutex_unlock(&sm->mu);
        while (dropped) {
            sched_job *j = dropped;
            dropped = j->next;
            job_drop(sm, j, (sched_err)atomic_load(&j->cancel));
        }
        for (int i = 0; i < sm->n_slots; i++) {
            sched_slot *s = &sm->slots[i];
            if (s->job && s->fresh) {
                s->fresh = 0;
                if (s->job->queued_logged)
                    log_info("model %s: request #%llu got slot %d after %lld ms in the queue", sm->cfg.id,
                             (unsigned long long)s->job->serial, i, (long long)(s->job->t_start - s->job->t_submit));
                if (s->job->sink->start) s->job->sink->start(s->job->sink_arg, s->job);
            }
        }

        /* keep waiting streams alive */
        int64_t now = sched_now_ms();
        if (sm->ping_ms > 0 && now - t_qping >= sm->ping_ms) {
            t_qping = now;
            int n_w = 0;
            pthread_mutex_lock(&sm->mu);
            for (sched_job *j = sm->q_head; j && n_w < sm->n_jobs; j = j->next) sm->waiting[n_w++] = j;
            pthread_mutex_unlock(&sm->mu);
            /* only this thread takes jobs off the queue: they stay valid */
            for (int i = 0; i < n_w; i++)
                if (sm->waiting[i]->sink->ping) sm->waiting[i]->sink->ping(sm->waiting[i]->sink_arg, sm->waiting[i]);
        }

        /* one forward pass over every active slot */
        if (step(sm)) info_publish(sm);
    }

    /* stopping: end every job */
    for (int i = 0; i < sm->n_slots; i++)
        if (sm->slots[i].job) job_end(sm, &sm->slots[i], SCHED_ERR_STOPPED);
    pthread_mutex_lock(&sm->mu);
    sched_job *q = sm->q_head;
    sm->q_head = sm->q_tail = NULL;
    sm->n_queued = 0;
    pthread_mutex_unlock(&sm->mu);
    while (q) {
        sched_job *j = q;
        q = j->next;
        job_drop(sm, j, SCHED_ERR_STOPPED);
    }
    atomic_store(&sm->state, SCHED_STOPPED);
    return NULL;
}

int sched_model_start(sched_model *sm)
{
    if (pthread_create(&sm->thread, NULL, worker, sm) != 0) {
        snprintf(sm->err, sizeof sm->err, "cannot start the worker thread: %s", strerror(errno));
        return -1;
    }
    sm->thread_started = 1;
    return 0;
}

sched_state sched_model_wait(sched_model *sm)
{
    pthread_mutex_lock(&sm->mu);
    while (sched_model_state(sm) == SCHED_LOADING) pthread_cond_wait(&sm->ready_cv, &sm->mu);
    pthread_mutex_unlock(&sm->mu);
    return sched_model_state(sm);
}

void sched_model_stop(sched_model *sm)
{
    if (!sm->mu_ok) return;
    pthread_mutex_lock(&sm->mu);
    sm->stop = 1;
    pthread_cond_broadcast(&sm->cv);
    pthread_mutex_unlock(&sm->mu);
    if (sm->thread_started) {
        pthread_join(sm->thread, NULL);
        sm->thread_started = 0;
    }
}

void sched_model_free(sched_model *sm)
{
    sched_model_stop(sm);
    if (sm->slots) {
        for (int i = 0; i < sm->n_slots; i++) {
            fwd_kv_free(&sm->slots[i].kv);
            sampler_free(&sm->slots[i].smp);
            free(sm->slots[i].hist);
            free(sm->slots[i].text);
        }
        free(sm->slots);
    }
    free(sm->logits);
    free(sm->waiting);
    free(sm->bseq);
    free(sm->bslot);
    free(sm->info);
    /* each of these is harmless on a zeroed or failed object */
    fwd_free(&sm->fc);
    thread_pool_free(&sm->tp);
    tok_vocab_free(&sm->vocab);
    model_free(&sm->m);
    gguf_close(&sm->g);
    free(sm->demo_buf);
    if (sm->jobs) {
        for (int i = 0; i < sm->n_jobs; i++) free(sm->jobs[i].tokens);
        free(sm->jobs);
    }
    if (sm->mu_ok) {
        pthread_cond_destroy(&sm->ready_cv);
        pthread_cond_destroy(&sm->cv);
        pthread_mutex_destroy(&sm->mu);
    }
    memset(sm, 0, sizeof *sm);
}
