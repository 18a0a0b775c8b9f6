/* api_misc.c — the API's core (setup, dispatch, calls, shared helpers) and
 * the small endpoints: /health, /tokenize, /detokenize (llama.cpp shapes),
 * /slots (read-only status of the slots and queues).
 *
 * Sections: setup; dispatch; errors and calls; sampling; health;
 * tokenize / detokenize; slots.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "router.h"
#include "version.h"

/* ---- Setup --------------------------------------------------------------------- */

int api_init(api *a, const config *cfg, sched_model *models, int n_models, const api_transport *tr,
             size_t max_response)
{
    memset(a, 0, sizeof *a);
    a->cfg = cfg;
    a->tr = tr;
    if (n_models < 1 || n_models > CONFIG_MODELS_MAX) {
        snprintf(a->err, sizeof a->err, "api: %d models (1..%d)", n_models, CONFIG_MODELS_MAX);
        return -1;
    }
    a->n_models = n_models;
    size_t arena = cfg->request_arena_bytes > 0 ? (size_t)cfg->request_arena_bytes : (size_t)1 << 20;
    a->arena_buf = malloc(arena);
    a->resp_cap = max_response > ((size_t)64 << 10) ? max_response : (size_t)64 << 10;
    a->resp = malloc(a->resp_cap);
    /* a chat prompt is the messages' text plus a few bytes of markup each */
    a->prompt_cap = (size_t)cfg->max_body_bytes + (size_t)OAI_MESSAGES_MAX * 48 + 256;
    a->prompt = malloc(a->prompt_cap);
    if (!a->arena_buf || !a->resp || !a->prompt) goto nomem;
    oai_arena_init(&a->arena, a->arena_buf, arena);
    for (int i = 0; i < n_models; i++) {
        api_model *am = &a->models[i];
        am->sm = &models[i];
        am->calls = calloc((size_t)models[i].n_jobs, sizeof *am->calls);
        am->out_cap = a->resp_cap;
        am->out = malloc(am->out_cap);
        am->texts = calloc(SCHED_CHOICES_MAX, sizeof *am->texts);
        am->finish = calloc(SCHED_CHOICES_MAX, sizeof *am->finish);
        if (!am->calls || !am->out || !am->texts || !am->finish) goto nomem;
        struct stat st;
        am->created = (long long)time(NULL);
        if (!models[i].demo && stat(models[i].cfg.path, &st) == 0) am->created = (long long)st.st_mtime;
    }
    a->rng = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 17 ^ (uint64_t)(uintptr_t)a;
    snprintf(a->fingerprint, sizeof a->fingerprint, "fp_mote_%s", MOTE_VERSION);
    return 0;
nomem:
    snprintf(a->err, sizeof a->err, "api: out of memory for the request buffers");
    api_free(a);
    return -1;
}

void api_free(api *a)
{
    for (int i = 0; i < CONFIG_MODELS_MAX; i++) {
        free(a->models[i].calls);
        free(a->models[i].out);
        free(a->models[i].texts);
        free(a->models[i].finish);
        free(a->models[i].tmpl_mem);
    }
    free(a->arena_buf);
    free(a->resp);
    free(a->prompt);
    memset(a, 0, sizeof *a);
}

int api_ready(const api *a)
{
    for (int i = 0; i < a->n_models; i++)
        if (sched_model_state(a->models[i].sm) != SCHED_READY) return 0;
    return 1;
}

/* ---- Errors and calls ------------------------------------------------------------ */

static void add_header(api_response *r, const char *name, const char *value)
{
    if (r->n_headers >= API_HEADERS_MAX) return;
    r->hname[r->n_headers] = name;
    r->hvalue[r->n_headers] = value;
    r->n_headers++;
}

void api_error_reply(api *a, api_response *r, const oai_error *e)
{
    int n = oai_error_write(e, a->resp, a->resp_cap);
    r->status = e->status;
    r->content_type = "application/json";
    r->body = a->resp;
    r->len = n > 0 ? (size_t)n : 0;
    r->call = NULL;
    if (e->status == 429) add_header(r, "Retry-After", "1");
    if (e->status == 503) add_header(r, "Retry-After", "2");
    if (e->status == 401) add_header(r, "WWW-Authenticate", "Bearer");
    /* the SDKs retry 429 and 5xx; a client error never gets better */
    if (e->status >= 400 && e->status < 500 && e->status != 429 && e->status != 408)
        add_header(r, "x-should-retry", "false");
}

/* "name" without a trailing ".gguf" equals the base name of path. */
static int base_name_is(const char *path, const char *name)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".gguf")) n -= 5;
    return n > 0 && strlen(name) == n && !memcmp(b, name, n);
}

api_model *api_model_find(api *a, const char *name)
{
    if (!name) return NULL;
    for (int i = 0; i < a->n_models; i++)
        if (!strcmp(a->models[i].sm->cfg.id, name)) return &a->models[i];
    for (int i = 0; i < a->n_models; i++)
        if (!a->models[i].sm->demo && base_name_is(a->models[i].sm->cfg.path, name)) return &a->models[i];
    return NULL;
}

api_call *api_call_new(api *a, api_model *am, api_kind kind, api_response *r)
{
    oai_error e;
    sched_job *j = sched_job_get(am->sm);
    if (!j) {
        if (sched_model_state(am->sm) == SCHED_LOADING) oai_error_loading(&e);
        else if (sched_model_state(am->sm) == SCHED_READY) oai_error_overloaded(&e);
        else oai_error_set(&e, 503, "unavailable_error", NULL, NULL, "The model is not available (%s).",
                           sched_model_state(am->sm) == SCHED_FAILED ? "it failed to load" : "the server is stopping");
        api_error_reply(a, r, &e);
        return NULL;
    }
    api_call *c = &am->calls[j->index];
    memset(c, 0, sizeof *c);
    c->a = a;
    c->am = am;
    c->job = j;
    c->kind = kind;
    oai_id_make(c->id, sizeof c->id, kind == API_CHAT ? "chatcmpl-" : "cmpl-", &a->rng);
    c->resp.id = c->id;
    c->resp.created = (long long)time(NULL);
    c->resp.model = am->sm->cfg.id;
    c->resp.fingerprint = a->fingerprint;
    j->sink_arg = c;
    j->user = c;
    r->call = c;
    return c;
}

void api_cancel(api_call *c)
{
    sched_job_cancel(c->job, SCHED_ERR_CANCELLED);
}

void api_start(api *a, api_call *c, uint64_t h)
{
    const api_transport *tr = a->tr;
    sched_job *j = c->job;
    c->h = h;
    c->resp.include_usage = c->include_usage;
    if (c->stream) {
        int rc = tr->sse_start(tr->ctx, h, NULL);
        if (rc == 0 && c->kind == API_CHAT) {
            /* the role chunk goes out at once, even while the job waits for a slot */
            int n = oai_chat_chunk_role(a->resp, a->resp_cap, &c->resp);
            rc = n > 0 ? tr->sse_raw(tr->ctx, h, a->resp, (size_t)n) : -1;
        }
        if (rc < 0) {
            tr->abort(tr->ctx, h);
            sched_job_put(c->am->sm, j);
            return;
        }
    }
    if (sched_submit(c->am->sm, j) == 0) return;
    /* the job is back in the pool; errmsg is still readable until the next get on this loop thread */
    oai_error e;
    oai_error_server(&e, j->errmsg);
    if (c->stream) {
        int n = oai_error_sse(&e, a->resp, a->resp_cap);
        if (n > 0) tr->sse_raw(tr->ctx, h, a->resp, (size_t)n);
        tr->sse_end(tr->ctx, h);
    } else {
        int n = oai_error_write(&e, a->resp, a->resp_cap);
        tr->send(tr->ctx, h, e.status, "application/json", NULL, a->resp, n > 0 ? (size_t)n : 0);
    }
}

void api_call_note(api_call *c, sched_job *j)
{
    char note[API_NOTE_MAX];
    snprintf(note, sizeof note, "model=%.40s tokens=%d+%d", c->resp.model, j->n_prompt_tokens, j->n_gen_tokens);
    c->a->tr->note(c->a->tr->ctx, c->h, note);
}

void api_call_fail(api_call *c, sched_job *j)
{
    const api_transport *tr = c->a->tr;
    api_model *am = c->am;
    if (j->err == SCHED_ERR_CANCELLED || c->gone) {
        tr->abort(tr->ctx, c->h);
        return;
    }
    api_call_note(c, j);
    oai_error e;
    if (j->err == SCHED_ERR_STOPPED)
        oai_error_set(&e, 503, "unavailable_error", NULL, NULL, "The server is shutting down.");
    else if (j->err == SCHED_ERR_TIMEOUT)
        oai_error_set(&e, 504, "timeout_error", NULL, NULL, "The request timed out.");
    else if (j->err == SCHED_ERR_TEXT_FULL)
        oai_error_set(&e, 500, "server_error", "response_too_large", NULL,
                      "The response exceeds the server's buffer; use stream=true or lower max_tokens.");
    else
        oai_error_server(&e, j->errmsg);
    if (c->stream) {
        int n = oai_error_sse(&e, am->out, am->out_cap);
        if (n > 0) tr->sse_raw(tr->ctx, c->h, am->out, (size_t)n);
        tr->sse_end(tr->ctx, c->h);
    } else {
        int n = oai_error_write(&e, am->out, am->out_cap);
        tr->send(tr->ctx, c->h, e.status, "application/json", NULL, am->out, n > 0 ? (size_t)n : 0);
    }
}

/* ---- Sampling ---------------------------------------------------------------------- */

void api_call_push(api_call *c, sched_job *j, const char *ev, int n)
{
    const api_transport *tr = c->a->tr;
    if (c->gone) return;
    if (n < 0 || tr->sse_raw(tr->ctx, c->h, ev, (size_t)n) < 0) {
        c->gone = true;
        sched_job_cancel(j, SCHED_ERR_CANCELLED);
    }
}

oai_finish api_finish_reason(sched_finish f)
{
    return f == SCHED_FINISH_LENGTH ? OAI_FINISH_LENGTH : OAI_FINISH_STOP;
}

int api_job_sampling(api *a, api_model *am, sched_job *j, const oai_sampling *s, oai_error *e)
{
    (void)a;
    const config_samplers *d = &am->sm->cfg.samplers;
    sched_sampling *p = &j->samp;
    /* model defaults ("greedy when none") */
    p->temperature = (d->set & CONFIG_SAMP_TEMP) ? d->temp : d->set ? 1.0f : 0.0f;
    p->top_k = (d->set & CONFIG_SAMP_TOP_K) ? d->top_k : 0;
    p->top_p = (d->set & CONFIG_SAMP_TOP_P) ? d->top_p : 1.0f;
    p->min_p = (d->set & CONFIG_SAMP_MIN_P) ? d->min_p : 0.0f;
    p->repeat_penalty = (d->set & CONFIG_SAMP_REPETITION) ? d->penalty_repeat : 1.0f;
    p->repeat_last_n = (d->set & CONFIG_SAMP_REPETITION) ? d->penalty_n : 64;
    p->mirostat = (d->set & CONFIG_SAMP_MIROSTAT) != 0;
    p->mirostat_tau = d->mirostat_tau;
    p->mirostat_eta = d->mirostat_eta;
    /* the request's own fields */
    if (s->set & OAI_SET_TEMPERATURE) p->temperature = s->temperature;
    if (s->set & OAI_SET_TOP_P) p->top_p = s->top_p;
    if (s->set & OAI_SET_TOP_K) p->top_k = s->top_k;
    if (s->set & OAI_SET_MIN_P) p->min_p = s->min_p;
    if (s->set & OAI_SET_REPEAT_PENALTY) p->repeat_penalty = s->repeat_penalty;
    if (s->set & OAI_SET_REPEAT_LAST_N) p->repeat_last_n = s->repeat_last_n;
    if (s->set & OAI_SET_PRESENCE) p->presence_penalty = s->presence_penalty;
    if (s->set & OAI_SET_FREQUENCY) p->frequency_penalty = s->frequency_penalty;
    p->seed = (s->set & OAI_SET_SEED) ? (uint64_t)s->seed : a->rng++ * 0x9e3779b97f4a7c15ull;
    if (s->n_logit_bias > SCHED_BIAS_MAX) {
        oai_error_set(e, 400, "invalid_request_error", "unsupported_value", "logit_bias",
                      "Too many logit_bias entries (%d); mote accepts at most %d.", s->n_logit_bias, SCHED_BIAS_MAX);
        return -1;
    }
    int n_vocab = am->sm->m.hp.n_vocab;
    for (int i = 0; i < s->n_logit_bias; i++) {
        if (s->logit_bias[i].token >= n_vocab) {
            oai_error_bad_token(e, "logit_bias", s->logit_bias[i].token, n_vocab);
            return -1;
        }
        p->bias_token[i] = s->logit_bias[i].token;
        p->bias[i] = s->logit_bias[i].bias;
    }
    p->n_bias = s->n_logit_bias;
    j->n_stop = 0;
    for (int i = 0; i < s->n_stop && i < SCHED_STOP_MAX; i++) {
        if (s->stop[i].len > SCHED_STOP_LEN) {
            oai_error_set(e, 400, "invalid_request_error", "unsupported_value", "stop",
                          "A stop sequence of %zu bytes is longer than mote's limit of %d bytes.", s->stop[i].len,
                          SCHED_STOP_LEN);
            return -1;
        }
        memcpy(j->stop[j->n_stop], s->stop[i].ptr, s->stop[i].len);
        j->stop_len[j->n_stop++] = (int)s->stop[i].len;
    }
    return 0;
}

/* ---- Dispatch ------------------------------------------------------------------------ */

static int path_is(const api_request *q, const char *p)
{
    size_t n = strlen(p);
    if (q->path_len == n && !memcmp(q->path, p, n)) return 1;
    return q->path_len == n + 3 && !memcmp(q->path, "/v1", 3) && !memcmp(q->path + 3, p, n);
}

static int method_is(const api_request *q, const char *m)
{
    return q->method_len == strlen(m) && !memcmp(q->method, m, q->method_len);
}

static int reply_error(api *a, api_response *r, const oai_error *e)
{
    api_error_reply(a, r, e);
    return API_REPLY;
}

static int api_slots_handle(api *a, api_response *r);

int api_handle(api *a, const api_request *q, api_response *r)
{
    memset(r, 0, sizeof *r);
    oai_error e;
    char method[16], path[256];
    snprintf(method, sizeof method, "%.*s", (int)(q->method_len < 15 ? q->method_len : 15), q->method);
    snprintf(path, sizeof path, "%.*s", (int)(q->path_len < 255 ? q->path_len : 255), q->path);

    /* llama.cpp's extras, which the route table does not hold: POST
     * /tokenize, /detokenize; GET /slots (also under /v1) */
    int tokenize = path_is(q, "/tokenize"), detokenize = path_is(q, "/detokenize");
    int slots = path_is(q, "/slots");
    router_match m;
    router_route route;
    if (tokenize || detokenize || slots) {
        memset(&m, 0, sizeof m);
        m.allow = slots ? "GET, HEAD, OPTIONS" : "POST, OPTIONS";
        int good = slots ? method_is(q, "GET") || method_is(q, "HEAD") : method_is(q, "POST");
        route = good ? ROUTE_COUNT : method_is(q, "OPTIONS") ? ROUTE_OPTIONS : ROUTE_NONE;
        if (route == ROUTE_NONE) m.status = 405;
    } else {
        route = router_match_path(q->method, q->method_len, q->path, q->path_len, &m);
    }
    if (route == ROUTE_NONE) {
        if (m.status == 405) {
            oai_error_method(&e, method, path);
            api_error_reply(a, r, &e);
            add_header(r, "Allow", m.allow);
            return API_REPLY;
        }
        oai_error_route(&e, method, path);
        return reply_error(a, r, &e);
    }
    if (route == ROUTE_OPTIONS) {
        r->status = 204;
        add_header(r, "Allow", m.allow);
        return API_REPLY;
    }
    if (route != ROUTE_HEALTH && a->cfg->n_api_keys > 0) {
        router_auth_result ar = router_auth(a->cfg, q->auth, q->auth_len);
        if (ar != ROUTER_AUTH_OK) {
            oai_error_invalid_api_key(&e, ar == ROUTER_AUTH_WRONG);
            return reply_error(a, r, &e);
        }
    }
    switch (route) {
    case ROUTE_HEALTH: return api_health_handle(a, r);
    case ROUTE_MODELS:
    case ROUTE_MODEL:
    case ROUTE_ENGINES: return api_models_handle(a, route, m.arg, r);
    case ROUTE_CHAT: return api_chat_handle(a, q, r);
    case ROUTE_COMPLETIONS: return api_cmpl_handle(a, q, NULL, false, r);
    case ROUTE_ENGINE_COMPLETIONS: return api_cmpl_handle(a, q, m.arg, method_is(q, "GET"), r);
    case ROUTE_EMBEDDINGS: return api_embd_handle(a, q, r);
    case ROUTE_COUNT:
        return slots ? api_slots_handle(a, r) : tokenize ? api_tokenize_handle(a, q, r) : api_detokenize_handle(a, q, r);
    default: break;
    }
    oai_error_route(&e, method, path);
    return reply_error(a, r, &e);
}

/* ---- Health ------------------------------------------------------------------------------ */

int api_health_handle(api *a, api_response *r)
{
    oai_error e;
    for (int i = 0; i < a->n_models; i++) {
        sched_state st = sched_model_state(a->models[i].sm);
        if (st == SCHED_LOADING) {
            oai_error_loading(&e);
            return reply_error(a, r, &e);
        }
        if (st != SCHED_READY) {
            oai_error_set(&e, 503, "unavailable_error", NULL, NULL, "Model %s is not available.",
                          a->models[i].sm->cfg.id);
            return reply_error(a, r, &e);
        }
    }
    static const char ok[] = "{\"status\":\"ok\"}";
    r->status = 200;
    r->content_type = "application/json";
    r->body = ok;
    r->len = sizeof ok - 1;
    return API_REPLY;
}

/* ---- Tokenize / detokenize ------------------------------------------------------------------ */

/* Parse a small JSON body into arena tokens. Returns the token count, or -1 (e set). */
static int parse_body(api *a, const api_request *q, json_tok **toks, oai_error *e)
{
    json_parser p = { 0 };
    int n = json_parse(&p, q->body, q->body_len, NULL, 0);
    if (n < 0) {
        oai_error_set(e, 400, "invalid_request_error", NULL, NULL,
                      "We could not parse the JSON body of your request (%s at byte %zu).", json_strerror(n),
                      p.err_pos);
        return -1;
    }
    *toks = oai_arena_alloc(&a->arena, (size_t)p.ntok * sizeof **toks);
    if (!*toks) {
        oai_error_set(e, 413, "invalid_request_error", "request_too_large", NULL, "The request is too large.");
        return -1;
    }
    n = json_parse(&p, q->body, q->body_len, *toks, p.ntok);
    if (n < 0 || (*toks)[0].type != JSON_OBJECT) {
        oai_error_set(e, 400, "invalid_request_error", NULL, NULL, "The request body must be a JSON object.");
        return -1;
    }
    return n;
}

/* The model named by the body's optional "model" (else the first). */
static api_model *body_model(api *a, const api_request *q, const json_tok *t, char *name, size_t cap,
                             oai_error *e)
{
    int i = json_obj_get(q->body, t, 0, "model");
    if (i < 0 || json_is_null(t, i)) return &a->models[0];
    if (t[i].type != JSON_STRING || json_string_unescape(q->body, t, i, name, cap) < 0) {
        oai_error_set(e, 400, "invalid_request_error", "invalid_type", "model", "'model' must be a model id string.");
        return NULL;
    }
    api_model *am = api_model_find(a, name);
    if (!am) oai_error_model_not_found(e, name);
    return am;
}

static int bool_field(const api_request *q, const json_tok *t, const char *key, int dflt, int *out, oai_error *e)
{
    int i = json_obj_get(q->body, t, 0, key);
    *out = dflt;
    if (i < 0 || json_is_null(t, i)) return 0;
    if (json_get_bool(q->body, t, i, out) < 0) {
        oai_error_set(e, 400, "invalid_request_error", "invalid_type", key,
                      "Invalid type for '%s': expected a boolean.", key);
        return -1;
    }
    return 0;
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!k || i + k > n) return 0;
        unsigned cp = k == 1 ? c : k == 2 ? c & 0x1F : k == 3 ? c & 0x0F : c & 0x07;
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (p[i + j] & 0x3F);
        }
        static const unsigned min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < min[k] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        i += k;
    }
    return 1;
}

static int ready_or_error(api_model *am, oai_error *e)
{
    if (sched_model_state(am->sm) == SCHED_READY) return 0;
    oai_error_loading(e);
    return -1;
}

int api_tokenize_handle(api *a, const api_request *q, api_response *r)
{
    oai_error e;
    json_tok *t;
    char name[CONFIG_NAME_MAX + 1];
    int add_special, parse_special, with_pieces;
    oai_arena_reset(&a->arena);
    if (parse_body(a, q, &t, &e) < 0) return reply_error(a, r, &e);
    api_model *am = body_model(a, q, t, name, sizeof name, &e);
    if (!am || ready_or_error(am, &e) < 0) return reply_error(a, r, &e);
    if (bool_field(q, t, "add_special", 0, &add_special, &e) < 0 ||
        bool_field(q, t, "parse_special", 1, &parse_special, &e) < 0 ||
        bool_field(q, t, "with_pieces", 0, &with_pieces, &e) < 0)
        return reply_error(a, r, &e);
    int ic = json_obj_get(q->body, t, 0, "content");
    if (ic < 0 || t[ic].type != JSON_STRING) {
        oai_error_set(&e, 400, "invalid_request_error", ic < 0 ? "missing_required_parameter" : "invalid_type",
                      "content", "'content' must be a string.");
        return reply_error(a, r, &e);
    }
    size_t raw = (size_t)(t[ic].end - t[ic].start);
    char *text = oai_arena_alloc(&a->arena, raw + 1);
    int32_t cap = (int32_t)(raw + 8);
    int32_t *ids = oai_arena_alloc(&a->arena, (size_t)cap * sizeof *ids);
    if (!text || !ids) {
        oai_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL, "The request is too large.");
        return reply_error(a, r, &e);
    }
    int len = json_string_unescape(q->body, t, ic, text, raw + 1);
    const tok_vocab *v = &am->sm->vocab;
    int32_t n = tok_encode(v, text, (size_t)len, add_special, parse_special, ids, cap);
    if (n < 0) {
        oai_error_server(&e, "tokenizer failed");
        return reply_error(a, r, &e);
    }
    json_writer w;
    json_writer_init(&w, a->resp, a->resp_cap);
    json_write_obj_begin(&w);
    json_write_key(&w, "tokens");
    json_write_arr_begin(&w);
    for (int32_t i = 0; i < n; i++) {
        if (!with_pieces) {
            json_write_int(&w, ids[i]);
            continue;
        }
        char piece[TOK_PIECE_MAX];
        int32_t k = tok_token_to_piece(v, ids[i], piece, sizeof piece, 0, 1);
        if (k < 0) k = 0;
        json_write_obj_begin(&w);
        json_write_key(&w, "id");
        json_write_int(&w, ids[i]);
        json_write_key(&w, "piece");
        if (json_utf8_complete_len(piece, (size_t)k) == (size_t)k && utf8_valid(piece, (size_t)k)) {
            json_write_strn(&w, piece, (size_t)k);
        } else {
            /* llama.cpp: pieces that are not valid UTF-8 are byte arrays */
            json_write_arr_begin(&w);
            for (int32_t b = 0; b < k; b++) json_write_int(&w, (unsigned char)piece[b]);
            json_write_arr_end(&w);
        }
        json_write_obj_end(&w);
    }
    json_write_arr_end(&w);
    json_write_obj_end(&w);
    if (json_writer_finish(&w) < 0) {
        oai_error_set(&e, 413, "invalid_request_error", "response_too_large", "content",
                      "The token list does not fit in the response buffer (%zu bytes).", a->resp_cap);
        return reply_error(a, r, &e);
    }
    r->status = 200;
    r->content_type = "application/json";
    r->body = a->resp;
    r->len = w.len;
    snprintf(r->note, sizeof r->note, "tokens=%d", (int)n);
    return API_REPLY;
}

int api_detokenize_handle(api *a, const api_request *q, api_response *r)
{
    oai_error e;
    json_tok *t;
    char name[CONFIG_NAME_MAX + 1];
    oai_arena_reset(&a->arena);
    if (parse_body(a, q, &t, &e) < 0) return reply_error(a, r, &e);
    api_model *am = body_model(a, q, t, name, sizeof name, &e);
    if (!am || ready_or_error(am, &e) < 0) return reply_error(a, r, &e);
    int it = json_obj_get(q->body, t, 0, "tokens");
    if (it < 0 || t[it].type != JSON_ARRAY) {
        oai_error_set(&e, 400, "invalid_request_error", it < 0 ? "missing_required_parameter" : "invalid_type",
                      "tokens", "'tokens' must be an array of token ids.");
        return reply_error(a, r, &e);
    }
    const tok_vocab *v = &am->sm->vocab;
    int n = t[it].size;
    int32_t *ids = oai_arena_alloc(&a->arena, (size_t)(n ? n : 1) * sizeof *ids);
    if (!ids) {
        oai_error_set(&e, 413, "invalid_request_error", "request_too_large", NULL, "The request is too large.");
        return reply_error(a, r, &e);
    }
    JSON_ARR_FOREACH(t, it, i, k) {
        long long id;
        if (json_get_int64(q->body, t, i, &id) < 0 || id < 0 || id >= v->n_vocab) {
            char param[32];
            snprintf(param, sizeof param, "tokens[%d]", k);
            if (t[i].type == JSON_NUMBER && json_get_int64(q->body, t, i, &id) == 0)
                oai_error_bad_token(&e, param, (long)id, v->n_vocab);
            else
                oai_error_set(&e, 400, "invalid_request_error", "invalid_type", param,
                              "Invalid type for '%s': expected a token id (integer).", param);
            return reply_error(a, r, &e);
        }
        ids[k] = (int32_t)id;
    }
    /* text in the arena, then escaped into the response */
    size_t room = a->arena.cap - a->arena.lo - a->arena.hi;
    if (room > (size_t)INT32_MAX) room = INT32_MAX;
    char *text = oai_arena_alloc(&a->arena, room > 8 ? room - 8 : 0);
    int32_t len = text ? tok_detokenize(v, ids, n, text, (int32_t)(room - 8), 0, 0) : -1;
    json_writer w;
    json_writer_init(&w, a->resp, a->resp_cap);
    json_write_obj_begin(&w);
    json_write_key(&w, "content");
    json_write_strn(&w, text, len > 0 ? (size_t)len : 0);
    json_write_obj_end(&w);
    if (len < 0 || json_writer_finish(&w) < 0) {
        oai_error_set(&e, 413, "invalid_request_error", "response_too_large", "tokens",
                      "The text does not fit in the response buffer (%zu bytes).", a->resp_cap);
        return reply_error(a, r, &e);
    }
    r->status = 200;
    r->content_type = "application/json";
    r->body = a->resp;
    r->len = w.len;
    return API_REPLY;
}

/* ---- Slots ------------------------------------------------------------------------------------ */

#define SLOTS_PROMPT_SHOWN 4096   /* bytes of each prompt text shown (--slots-show-prompts) */

/* The first prompt of request `serial` as text (at most SLOTS_PROMPT_SHOWN
 * bytes, cut at a UTF-8 boundary), or nothing when it is gone. */
static void slots_prompt(api *a, api_model *am, json_writer *w, uint64_t serial)
{
    const sched_model *sm = am->sm;
    int cap = sm->cfg.context_length;
    int32_t *ids = oai_arena_alloc(&a->arena, (size_t)cap * sizeof *ids);
    char *text = oai_arena_alloc(&a->arena, SLOTS_PROMPT_SHOWN + 8);
    int n = ids && text ? sched_model_prompt(am->sm, serial, ids, cap) : -1;
    if (n < 0) return;
    if (n > cap) n = cap;
    /* pieces until the shown bytes are full */
    int32_t len = tok_detokenize(&sm->vocab, ids, n, text, SLOTS_PROMPT_SHOWN, 1, 0);
    int cut = 0;
    if (len < 0) {
        /* too long: the longest prefix of tokens that fits */
        int lo = 0, hi = n;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (tok_detokenize(&sm->vocab, ids, mid, text, SLOTS_PROMPT_SHOWN, 1, 0) >= 0) lo = mid;
            else hi = mid - 1;
        }
        len = tok_detokenize(&sm->vocab, ids, lo, text, SLOTS_PROMPT_SHOWN, 1, 0);
        if (len < 0) len = 0;
        cut = 1;
    }
    /* the space SentencePiece put before the first word (as echo drops it) */
    const char *t = text;
    if (sm->vocab.type == TOK_TYPE_SPM && sm->vocab.add_space_prefix && len > 0 && t[0] == ' ') t++, len--;
    size_t ok = json_utf8_complete_len(t, (size_t)len);
    json_write_key(w, "prompt");
    json_write_strn(w, t, utf8_valid(t, ok) ? ok : 0);
    if (cut) {
        json_write_key(w, "prompt_truncated");
        json_write_bool(w, 1);
    }
}

static const char *slot_state_name(sched_slot_state st)
{
    return st == SCHED_SLOT_PROMPT ? "processing_prompt" : st == SCHED_SLOT_GEN ? "generating" : "idle";
}

/* GET /slots: every model's slots, queue and counters; no prompt text
 * unless the server runs with --slots-show-prompts. */
static int api_slots_handle(api *a, api_response *r)
{
    oai_error e;
    oai_arena_reset(&a->arena);
    const int64_t now = sched_now_ms();
    const bool show = a->cfg->slots_show_prompts;
    json_writer w;
    json_writer_init(&w, a->resp, a->resp_cap);
    json_write_obj_begin(&w);
    json_write_key(&w, "object");
    json_write_str(&w, "list");
    json_write_key(&w, "data");
    json_write_arr_begin(&w);
    for (int mi = 0; mi < a->n_models; mi++) {
        api_model *am = &a->models[mi];
        sched_model *sm = am->sm;
        int cap = sm->cfg.processor_count, qcap = sm->n_jobs;   /* submitted, not yet admitted: up to every job */
        sched_slot_info *si = oai_arena_alloc(&a->arena, (size_t)cap * sizeof *si);
        sched_queue_info *qi = oai_arena_alloc(&a->arena, (size_t)(qcap ? qcap : 1) * sizeof *qi);
        if (!si || !qi) {
            oai_error_server(&e, "out of request memory for the status");
            return reply_error(a, r, &e);
        }
        int n_queued = 0;
        sched_counters ctr;
        memset(&ctr, 0, sizeof ctr);
        int n = sched_model_status(sm, si, cap, qi, qcap, &n_queued, &ctr);
        sched_state st = sched_model_state(sm);
        json_write_obj_begin(&w);
        json_write_key(&w, "model");
        json_write_str(&w, sm->cfg.id);
        json_write_key(&w, "state");
        json_write_str(&w, st == SCHED_READY ? "ready" : st == SCHED_LOADING ? "loading"
                           : st == SCHED_FAILED ? "failed" : "stopped");
        json_write_key(&w, "n_slots");
        json_write_int(&w, cap);
        json_write_key(&w, "queue_limit");
        json_write_int(&w, sm->queue_length);
        json_write_key(&w, "slots");
        json_write_arr_begin(&w);
        for (int i = 0; i < n && i < cap; i++) {
            const sched_slot_info *s = &si[i];
            json_write_obj_begin(&w);
            json_write_key(&w, "id");
            json_write_int(&w, s->id);
            json_write_key(&w, "state");
            json_write_str(&w, slot_state_name(s->state));
            json_write_key(&w, "n_ctx");
            json_write_int(&w, s->n_ctx);
            json_write_key(&w, "n_past");
            json_write_int(&w, s->n_past);
            if (s->state != SCHED_SLOT_IDLE) {
                json_write_key(&w, "request");
                json_write_uint(&w, (unsigned long long)s->serial);
                json_write_key(&w, "choice");
                json_write_int(&w, s->choice);
                json_write_key(&w, "n_choices");
                json_write_int(&w, s->n_choices);
                json_write_key(&w, "prompt_tokens");
                json_write_int(&w, s->n_prompt);
                json_write_key(&w, "prompt_tokens_done");
                json_write_int(&w, s->n_prompt_done);
                json_write_key(&w, "cached_tokens");
                json_write_int(&w, s->n_cached);
                json_write_key(&w, "generated_tokens");
                json_write_int(&w, s->n_gen);
                json_write_key(&w, "max_tokens");
                json_write_int(&w, s->max_tokens);
                json_write_key(&w, "queued_ms");
                json_write_int(&w, (long long)(s->t_start - s->t_submit));
                json_write_key(&w, "running_ms");
                json_write_int(&w, (long long)(now - s->t_start));
                if (show) slots_prompt(a, am, &w, s->serial);
            }
            json_write_obj_end(&w);
        }
        json_write_arr_end(&w);
        json_write_key(&w, "queue");
        json_write_arr_begin(&w);
        for (int i = 0; i < n_queued && i < qcap; i++) {
            json_write_obj_begin(&w);
            json_write_key(&w, "position");
            json_write_int(&w, qi[i].position);
            json_write_key(&w, "request");
            json_write_uint(&w, (unsigned long long)qi[i].serial);
            json_write_key(&w, "prompt_tokens");
            json_write_int(&w, qi[i].n_prompt);
            json_write_key(&w, "waiting_ms");
            json_write_int(&w, (long long)(now - qi[i].t_submit));
            if (show) slots_prompt(a, am, &w, qi[i].serial);
            json_write_obj_end(&w);
        }
        json_write_arr_end(&w);
        json_write_key(&w, "counters");
        json_write_obj_begin(&w);
        json_write_key(&w, "steps");
        json_write_uint(&w, (unsigned long long)ctr.steps);
        json_write_key(&w, "batched_steps");
        json_write_uint(&w, (unsigned long long)ctr.batched_steps);
        json_write_key(&w, "max_sequences_per_step");
        json_write_int(&w, ctr.max_seqs);
        json_write_key(&w, "prompt_tokens");
        json_write_uint(&w, (unsigned long long)ctr.prompt_tokens);
        json_write_key(&w, "generated_tokens");
        json_write_uint(&w, (unsigned long long)ctr.gen_tokens);
        json_write_obj_end(&w);
        json_write_obj_end(&w);
    }
    json_write_arr_end(&w);
    json_write_obj_end(&w);
    if (json_writer_finish(&w) < 0) {
        oai_error_server(&e, "the status does not fit in the response buffer");
        return reply_error(a, r, &e);
    }
    r->status = 200;
    r->content_type = "application/json";
    r->body = a->resp;
    r->len = w.len;
    return API_REPLY;
}
