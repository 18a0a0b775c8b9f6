/* api.h — the OpenAI endpoints: requests in, scheduler jobs, responses out.
 *
 * API layer: above the scheduler, below networking, and it never touches a
 * socket. main.c turns each HTTP request into an api_request and calls
 * api_handle on the loop thread. The answer is either immediate (an
 * api_response to send now) or deferred: a generation job that answers
 * later, from the model's worker thread, through the api_transport main.c
 * provides (wrapping the loop's deferred-reply handles).
 *
 *     api a;
 *     api_init(&a, &cfg, models, n_models, &transport, max_response);
 *     ... on_request:
 *     api_response r;
 *     if (api_handle(&a, &req, &r) == API_DEFER) {
 *         h = defer the reply, with on_cancel calling api_cancel(r.call);
 *         api_start(&a, r.call, h);          // may answer at once on error
 *     } else send r.status / r.headers / r.body now
 *
 * Endpoints (router.h has the table; /tokenize and /detokenize are matched
 * here): chat completions and completions (streaming or not), models,
 * legacy engines, embeddings (400: no embedding model yet), health,
 * llama.cpp's /tokenize and /detokenize. Errors are OpenAI-shaped with
 * their HTTP status (oai.h).
 *
 * Threads: api_handle, api_start and api_cancel run on the loop thread;
 * the scheduler's sink callbacks (api_chat.c, api_completions.c) run on the
 * worker of each model and use only that model's buffers. No allocation
 * after api_init.
 */
#ifndef MOTE_API_H
#define MOTE_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "oai.h"
#include "sched.h"

/* How the API answers later. h is the caller's handle (opaque here). Each
 * function returns 0, or < 0 when the client is gone (then the API stops
 * the job and makes no further call but the final one). Exactly one of
 * send, sse_end, abort ends a handle. extra: NULL or "Name: value\r\n"... */
typedef struct api_transport {
    void *ctx;
    int (*send)(void *ctx, uint64_t h, int status, const char *content_type, const char *extra,
                const char *body, size_t len);
    int (*sse_start)(void *ctx, uint64_t h, const char *extra);
    int (*sse_raw)(void *ctx, uint64_t h, const char *events, size_t len);  /* framed events */
    int (*sse_comment)(void *ctx, uint64_t h, const char *text);
    int (*sse_end)(void *ctx, uint64_t h);
    int (*abort)(void *ctx, uint64_t h);
    int (*note)(void *ctx, uint64_t h, const char *text);   /* access-log note */
} api_transport;

/* One HTTP request, as slices valid during api_handle. */
typedef struct api_request {
    const char *method; size_t method_len;
    const char *path; size_t path_len;      /* without the query */
    const char *query; size_t query_len;    /* after '?', NULL if none */
    const char *auth; size_t auth_len;      /* Authorization value, NULL if absent */
    const char *body; size_t body_len;
} api_request;

#define API_HEADERS_MAX 4
#define API_NOTE_MAX 96

typedef struct api_call api_call;   /* a deferred request (private) */

/* An immediate answer. body points into the api's buffers: valid until the
 * next api_handle. */
typedef struct api_response {
    int status;
    const char *content_type;        /* NULL: no body */
    const char *body;
    size_t len;
    const char *hname[API_HEADERS_MAX], *hvalue[API_HEADERS_MAX];   /* extra headers */
    int n_headers;
    bool close;                      /* close the connection after it */
    char note[API_NOTE_MAX];         /* access-log note, "" for none */
    api_call *call;                  /* API_DEFER: pass to api_start / api_cancel */
} api_response;

enum { API_REPLY = 0, API_DEFER = 1 };

/* Per served model (private to the api_*.c files). */
typedef struct api_model {
    sched_model *sm;
    api_call *calls;                 /* (sm->n_jobs), indexed by job index */
    char *out;                       /* (out_cap) worker: whole responses and SSE events */
    size_t out_cap;
    oai_text *texts;                 /* (SCHED_CHOICES_MAX) worker: completion choices */
    oai_finish *finish;              /* (SCHED_CHOICES_MAX) */
    long long created;               /* model object "created" (file mtime or start) */
    /* chat template, compiled on the first chat request (loop thread) */
    int tmpl_state;                  /* 0 not yet, 1 the model's, 2 ChatML fallback */
    const struct chat_tmpl *tmpl;
    void *tmpl_mem;
    char bos[64], eos[64];           /* bos_token / eos_token texts */
} api_model;

typedef struct api {
    const config *cfg;
    const api_transport *tr;
    api_model models[CONFIG_MODELS_MAX];
    int n_models;
    /* loop thread */
    char *arena_buf;                 /* (request_arena_bytes) request parsing */
    oai_arena arena;
    char *resp;                      /* (resp_cap) immediate response bodies */
    size_t resp_cap;
    char *prompt;                    /* (prompt_cap) a rendered chat prompt */
    size_t prompt_cap;
    uint64_t rng;                    /* response ids */
    char fingerprint[48];            /* system_fingerprint */
    char err[160];
} api;

/* models[0..n) stay owned by the caller and must outlive the api. cfg too.
 * max_response: the largest response the transport can carry in one send
 * (bounds the per-model buffers). 0, or -1 (a->err). */
int api_init(api *a, const config *cfg, sched_model *models, int n_models, const api_transport *tr,
             size_t max_response);
void api_free(api *a);

/* Handle one request: API_REPLY (r filled) or API_DEFER (r->call set, and
 * r->n_headers/note may carry headers for the eventual response). */
int api_handle(api *a, const api_request *req, api_response *r);

/* Start a deferred call with the caller's handle h. Answers errors itself
 * through the transport. */
void api_start(api *a, api_call *c, uint64_t h);

/* The client is gone (loop thread, any lock held: only sets a flag). */
void api_cancel(api_call *c);

/* 1 when every model is loaded. */
int api_ready(const api *a);

/* ---- Internals shared by the api_*.c files ---------------------------------- */

typedef enum api_kind { API_CHAT, API_CMPL } api_kind;

struct api_call {
    api *a;
    api_model *am;
    sched_job *job;
    uint64_t h;
    api_kind kind;
    bool stream;
    bool include_usage;
    bool gone;                       /* the transport said the client left */
    char id[48];
    oai_resp resp;                   /* id, created, model, fingerprint */
};

/* Fill r with an error answer (JSON body in a->resp). */
void api_error_reply(api *a, api_response *r, const oai_error *e);
/* Model by request name (id or alias), or NULL. */
api_model *api_model_find(api *a, const char *name);
/* Take a job for model am and prepare its call; on failure r holds the
 * error (429 queue full, 503 loading). */
api_call *api_call_new(api *a, api_model *am, api_kind kind, api_response *r);
/* Copy the sampling request fields into the job (model defaults where the
 * request is silent). 0, or -1 with e. */
int api_job_sampling(api *a, api_model *am, sched_job *j, const oai_sampling *s, oai_error *e);
/* Worker thread: push n bytes of framed SSE events for call c. n < 0 (the
 * event did not fit) or a transport failure marks the client gone and
 * cancels job j; later pushes are dropped. */
void api_call_push(api_call *c, sched_job *j, const char *ev, int n);
/* The OpenAI finish_reason of a scheduler finish. */
oai_finish api_finish_reason(sched_finish f);

/* Endpoint handlers (loop thread). */
int api_chat_handle(api *a, const api_request *req, api_response *r);
int api_cmpl_handle(api *a, const api_request *req, const char *engine, bool from_query,
                    api_response *r);
int api_models_handle(api *a, int route, const char *id, api_response *r);
int api_embd_handle(api *a, const api_request *req, api_response *r);
int api_health_handle(api *a, api_response *r);
int api_tokenize_handle(api *a, const api_request *req, api_response *r);
int api_detokenize_handle(api *a, const api_request *req, api_response *r);

/* Sinks (worker threads). */
extern const sched_sink api_chat_sink;
extern const sched_sink api_cmpl_sink;

/* Shared sink helpers: end a call whose job failed; the access-log note. */
void api_call_fail(api_call *c, sched_job *j);
void api_call_note(api_call *c, sched_job *j);

#endif
