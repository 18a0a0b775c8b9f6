/* test_api.c — the API layer without sockets: api_handle / api_start over
 * the demo model, with a fake transport that records what would be sent.
 * Routing (404/405/OPTIONS), auth, models, health while loading, chat and
 * completions (whole and streamed), the error answers, 429 when the queue
 * is full, client gone mid-stream, cancel while queued, stopping with a
 * stream in flight, tokenize/detokenize; GET /slots (prompts only with
 * --slots-show-prompts); a follow-up chat turn served from the prefix cache
 * (usage.prompt_tokens_details.cached_tokens) answering exactly as a fresh
 * server does. Runs under ASan in `make asan`. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "json.h"
#include "test.h"

/* ---- Fake transport ---------------------------------------------------------------- */

#define FAKE_MAX 8
#define FAKE_BUF (1 << 20)

typedef struct fake {
    int status;             /* send() status, or 200 after sse_start */
    int sse;                /* sse_start seen */
    int ended;              /* send / sse_end / abort seen */
    int aborted;
    int events;             /* sse_raw calls */
    int pings;
    int fail_after;         /* sse_raw fails after this many calls (0: never) */
    char body[FAKE_BUF];    /* send() body, or every SSE event back to back */
    size_t len;
    char note[128];
} fake;

static fake fakes[FAKE_MAX];
static pthread_mutex_t fmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fcv = PTHREAD_COND_INITIALIZER;

static int f_send(void *ctx, uint64_t h, int status, const char *ct, const char *extra, const char *body, size_t len)
{
    (void)ctx, (void)ct, (void)extra;
    fake *f = &fakes[h];
    pthread_mutex_lock(&fmu);
    f->status = status;
    if (len < FAKE_BUF) memcpy(f->body, body, len), f->len = len;
    f->ended = 1;
    pthread_cond_broadcast(&fcv);
    pthread_mutex_unlock(&fmu);
    return 0;
}
static int f_sse_start(void *ctx, uint64_t h, const char *extra)
{
    (void)ctx, (void)extra;
    fakes[h].sse = 1;
    fakes[h].status = 200;
    return 0;
}
static int f_sse_raw(void *ctx, uint64_t h, const char *ev, size_t len)
{
    (void)ctx;
    fake *f = &fakes[h];
    if (f->fail_after && f->events >= f->fail_after) return -1;
    pthread_mutex_lock(&fmu);
    if (f->len + len < FAKE_BUF) memcpy(f->body + f->len, ev, len), f->len += len;
    f->events++;
    pthread_mutex_unlock(&fmu);
    return 0;
}
static int f_sse_comment(void *ctx, uint64_t h, const char *text)
{
    (void)ctx, (void)text;
    fakes[h].pings++;
    return 0;
}
static int f_end(void *ctx, uint64_t h, int aborted)
{
    (void)ctx;
    pthread_mutex_lock(&fmu);
    fakes[h].ended = 1;
    fakes[h].aborted = aborted;
    pthread_cond_broadcast(&fcv);
    pthread_mutex_unlock(&fmu);
    return 0;
}
static int f_sse_end(void *ctx, uint64_t h) { return f_end(ctx, h, 0); }
static int f_abort(void *ctx, uint64_t h) { return f_end(ctx, h, 1); }
static int f_note(void *ctx, uint64_t h, const char *text)
{
    (void)ctx;
    snprintf(fakes[h].note, sizeof fakes[h].note, "%s", text);
    return 0;
}

static const api_transport tr = { NULL, f_send, f_sse_start, f_sse_raw, f_sse_comment, f_sse_end, f_abort, f_note };

static int fake_wait(int h)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&fmu);
    while (!fakes[h].ended)
        if (pthread_cond_timedwait(&fcv, &fmu, &ts) != 0) break;
    int e = fakes[h].ended;
    pthread_mutex_unlock(&fmu);
    return e;
}

/* ---- Requests -------------------------------------------------------------------------- */

static api A;
static api_response R;

static int call(const char *method, const char *path, const char *body, const char *auth)
{
    const char *q = strchr(path, '?');
    api_request req = {
        .method = method, .method_len = strlen(method),
        .path = path, .path_len = q ? (size_t)(q - path) : strlen(path),
        .query = q ? q + 1 : NULL, .query_len = q ? strlen(q + 1) : 0,
        .auth = auth, .auth_len = auth ? strlen(auth) : 0,
        .body = body, .body_len = body ? strlen(body) : 0,
    };
    return api_handle(&A, &req, &R);
}

/* Immediate answer: the status (body in R). Deferred: start on fake h, wait, status. */
static int request(int h, const char *method, const char *path, const char *body)
{
    memset(&fakes[h], 0, sizeof fakes[h]);
    if (call(method, path, body, NULL) == API_REPLY) return R.status;
    api_start(&A, R.call, (uint64_t)h);
    return fake_wait(h) ? fakes[h].status : -1;
}

/* A JSON value by path: "choices.0.message.content" (numbers index arrays). */
static json_tok toks[4096];
static const char *js;
static int jget(const char *body, size_t len, const char *path)
{
    json_parser p = { 0 };
    js = body;
    if (json_parse(&p, body, len, toks, 4096) < 0) return -1;
    int i = 0;
    char key[64];
    while (*path && i >= 0) {
        size_t n = strcspn(path, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, path);
        if (toks[i].type == JSON_ARRAY) i = json_arr_get(toks, i, atoi(key));
        else i = json_obj_get(body, toks, i, key);
        path += n + (path[n] == '.');
    }
    return i;
}
static int jis(const char *body, size_t len, const char *path, const char *want)
{
    int i = jget(body, len, path);
    return i >= 0 && json_tok_eq(js, toks, i, want);
}
static long long jint(const char *body, size_t len, const char *path)
{
    long long v = -999;
    /* jget sets js: call it first (argument evaluation order is unspecified;
     * gcc on aarch64 read the previous body's js before jget ran) */
    int i = jget(body, len, path);
    json_get_int64(js, toks, i, &v);
    return v;
}
#define RIS(path, want) jis(R.body, R.len, path, want)
#define FIS(h, path, want) jis(fakes[h].body, fakes[h].len, path, want)

/* ---- Tests ---------------------------------------------------------------------------------- */

static const char *header(const char *name)
{
    for (int i = 0; i < R.n_headers; i++)
        if (!strcmp(R.hname[i], name)) return R.hvalue[i];
    return NULL;
}

static void test_routes(void)
{
    T_CHECK(request(0, "GET", "/health", NULL) == 200 && RIS("status", "ok"), "GET /health: 200 ok");
    T_CHECK(request(0, "GET", "/v1/models", NULL) == 200 && RIS("data.0.id", "mote-demo") &&
                RIS("data.0.object", "model"), "GET /v1/models");
    T_CHECK(request(0, "GET", "/v1/models/mote-demo", NULL) == 200 && jint(R.body, R.len, "context_length") == 2048,
            "GET /v1/models/mote-demo with context_length");
    T_CHECK(request(0, "GET", "/v1/models/nope", NULL) == 404 && RIS("error.code", "model_not_found"),
            "unknown model id: 404 model_not_found");
    T_CHECK(request(0, "GET", "/v1/engines/list", NULL) == 200 && RIS("data.0.object", "engine"), "GET /v1/engines/list");
    T_CHECK(request(0, "GET", "/v1/nowhere", NULL) == 404 && RIS("error.type", "invalid_request_error"), "unknown path: 404");
    T_CHECK(request(0, "DELETE", "/v1/chat/completions", NULL) == 405 && header("Allow") &&
                strstr(header("Allow"), "POST"), "DELETE on chat: 405 with Allow");
    T_CHECK(request(0, "OPTIONS", "/v1/models", NULL) == 204 && header("Allow"), "OPTIONS: 204 with Allow");
    T_CHECK(request(0, "GET", "/tokenize", NULL) == 405, "GET /tokenize: 405");
    T_CHECK(request(0, "POST", "/v1/embeddings", "{\"model\":\"mote-demo\",\"input\":\"x\"}") == 400 &&
                RIS("error.code", "model_not_supported"), "embeddings: 400 model_not_supported");
    T_CHECK(request(0, "POST", "/v1/embeddings", "{\"model\":\"nope\",\"input\":\"x\"}") == 404, "embeddings, unknown model: 404");
}

static void test_auth(config *cfg)
{
    snprintf(cfg->api_keys[0], sizeof cfg->api_keys[0], "k1");
    cfg->n_api_keys = 1;
    T_CHECK(call("GET", "/v1/models", NULL, NULL) == API_REPLY && R.status == 401 && RIS("error.code", "invalid_api_key") &&
                header("WWW-Authenticate"), "a key configured, none given: 401 with WWW-Authenticate");
    T_CHECK(call("GET", "/v1/models", NULL, "Bearer k2") == API_REPLY && R.status == 401, "wrong key: 401");
    T_CHECK(call("GET", "/v1/models", NULL, "Bearer k1") == API_REPLY && R.status == 200, "right key: 200");
    T_CHECK(call("GET", "/health", NULL, NULL) == API_REPLY && R.status == 200, "/health needs no key");
    T_CHECK(call("OPTIONS", "/v1/chat/completions", NULL, NULL) == API_REPLY && R.status == 204, "OPTIONS needs no key");
    cfg->n_api_keys = 0;
}

static void test_chat(void)
{
    const char *body = "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":5}";
    T_CHECK(request(1, "POST", "/v1/chat/completions", body) == 200, "chat: 200");
    fake *f = &fakes[1];
    T_CHECK(FIS(1, "object", "chat.completion") && FIS(1, "choices.0.message.role", "assistant") &&
                FIS(1, "choices.0.finish_reason", "length") && jint(f->body, f->len, "usage.completion_tokens") == 5,
            "chat: chat.completion, 5 tokens, finish length");
    T_CHECK(strstr(f->note, "tokens=") != NULL, "chat: access-log note '%s'", f->note);

    const char *sbody = "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":3,"
                        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    T_CHECK(request(2, "POST", "/v1/chat/completions", sbody) == 200 && fakes[2].sse && !fakes[2].aborted,
            "chat stream: SSE started and ended");
    /* role + 3 content + finish, then usage + [DONE] in the last write */
    const char *b = fakes[2].body;
    const char *role = strstr(b, "\"role\":\"assistant\""), *fin = strstr(b, "\"finish_reason\":\"length\"");
    const char *use = strstr(b, "\"choices\":[],\"usage\""), *done = strstr(b, "data: [DONE]\n\n");
    T_CHECK(role && fin && use && done && role < fin && fin < use && use < done && done + 14 == b + fakes[2].len,
            "chat stream: role, deltas, finish, usage, [DONE] in order");
    T_CHECK(fakes[2].events == 1 + 3 + 1, "chat stream: %d writes (role, 3 deltas, tail)", fakes[2].events);

    T_CHECK(request(3, "POST", "/v1/chat/completions", "{\"model\":\"mote-demo\",\"messages\":[") == 400 &&
                R.body && strstr(R.body, "error"), "chat: malformed JSON 400");
    T_CHECK(request(3, "POST", "/v1/chat/completions", "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}") == 404,
            "chat: unknown model 404");
    T_CHECK(request(3, "POST", "/v1/chat/completions",
                    "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logprobs\":true}") == 400 &&
                RIS("error.param", "logprobs"), "chat: logprobs 400 naming it (not supported yet)");
    T_CHECK(request(3, "POST", "/v1/chat/completions",
                    "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logit_bias\":{\"70000\":5}}") == 400 &&
                RIS("error.param", "logit_bias"), "chat: logit_bias beyond the vocabulary 400");
    char big[600];
    snprintf(big, sizeof big, "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":\"%0300d\"}", 0);
    T_CHECK(request(3, "POST", "/v1/chat/completions", big) == 400 && RIS("error.param", "stop"), "chat: stop over 256 bytes 400");
}

static void test_cmpl(void)
{
    T_CHECK(request(1, "POST", "/v1/completions", "{\"model\":\"mote-demo\",\"prompt\":\"Once\"}") == 200 &&
                FIS(1, "object", "text_completion") && jint(fakes[1].body, fakes[1].len, "usage.completion_tokens") == 16,
            "completion: max_tokens defaults to 16");
    T_CHECK(request(1, "POST", "/v1/completions", "{\"model\":\"mote-demo\",\"prompt\":[[1,72],[1,73]],\"max_tokens\":2,\"echo\":true}") == 200 &&
                FIS(1, "choices.1.index", "1") && jint(fakes[1].body, fakes[1].len, "usage.prompt_tokens") == 4,
            "completion: two token-array prompts with echo");
    int i = jget(fakes[1].body, fakes[1].len, "choices.0.text");
    char t[64] = "";
    json_string_unescape(js, toks, i, t, sizeof t);
    T_CHECK(t[0] == 'E', "completion: echo starts with the prompt text ('%s')", t);
    T_CHECK(request(1, "GET", "/v1/engines/mote-demo/completions?prompt=Hello+you&max_tokens=3", NULL) == 200 &&
                jint(fakes[1].body, fakes[1].len, "usage.completion_tokens") == 3, "GET engines completions with a query");
    T_CHECK(request(1, "POST", "/v1/completions", "{\"model\":\"mote-demo\",\"prompt\":\"Once\",\"max_tokens\":3,\"stream\":true}") == 200 &&
                fakes[1].events == 3 + 1 + 1, "completion stream: 3 deltas, finish, [DONE] (%d writes)", fakes[1].events);
    static char huge[20000];
    int n = snprintf(huge, sizeof huge, "{\"model\":\"mote-demo\",\"prompt\":[");
    for (int k = 0; k < 2100; k++) n += snprintf(huge + n, sizeof huge - (size_t)n, "%s72", k ? "," : "");
    snprintf(huge + n, sizeof huge - (size_t)n, "]}");
    T_CHECK(request(1, "POST", "/v1/completions", huge) == 400 && RIS("error.code", "context_length_exceeded"),
            "completion: 2100 tokens in a 2048 context: 400 context_length_exceeded");
    T_CHECK(request(1, "POST", "/v1/completions", "{\"model\":\"mote-demo\",\"prompt\":[1,5000]}") == 400,
            "completion: token id beyond the vocabulary 400");
}

static void test_tokenize(void)
{
    T_CHECK(request(0, "POST", "/tokenize", "{\"content\":\"Hi\",\"add_special\":true}") == 200 &&
                jint(R.body, R.len, "tokens.0") == 1, "tokenize with add_special starts with BOS");
    T_CHECK(request(0, "POST", "/tokenize", "{\"content\":\"Hi\",\"with_pieces\":true}") == 200 &&
                RIS("tokens.1.piece", "H"), "tokenize with_pieces");
    T_CHECK(request(0, "POST", "/detokenize", "{\"tokens\":[1,75,108]}") == 200 && RIS("content", "Hi"), "detokenize");
    T_CHECK(request(0, "POST", "/detokenize", "{\"tokens\":[1,9999]}") == 400, "detokenize: bad id 400");
    T_CHECK(request(0, "POST", "/tokenize", "{\"content\":5}") == 400 && RIS("error.param", "content"), "tokenize: content not a string 400");
}

/* Until every job is back in the pool (the worker returns a job right after
 * its last transport call). */
static void settle(sched_model *sm)
{
    int f = 0;
    for (int i = 0; i < 5000; i++) {
        sched_model_counts(sm, NULL, NULL, &f);
        if (f == sm->n_jobs) return;
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
}

static void test_gone_and_busy(sched_model *sm)
{
    /* the client leaves after 3 events: the job stops, the handle is aborted */
    memset(&fakes[4], 0, sizeof fakes[4]);
    fakes[4].fail_after = 3;
    T_CHECK(call("POST", "/v1/chat/completions",
                 "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":1500,\"stream\":true}",
                 NULL) == API_DEFER, "long stream deferred");
    api_start(&A, R.call, 4);
    T_CHECK(fake_wait(4) && fakes[4].aborted, "client gone mid-stream: the call ends with an abort");
    settle(sm);

    /* one slot, no queue: a second request while the first runs gets 429 */
    memset(&fakes[5], 0, sizeof fakes[5]);
    call("POST", "/v1/completions", "{\"model\":\"mote-demo\",\"prompt\":\"Long\",\"max_tokens\":1800,\"stream\":true}", NULL);
    api_call *first = R.call;
    api_start(&A, first, 5);
    T_CHECK(call("POST", "/v1/completions", "{\"model\":\"mote-demo\",\"prompt\":\"x\"}", NULL) == API_REPLY &&
                R.status == 429 && header("Retry-After"), "pool exhausted: 429 with Retry-After");
    api_cancel(first);
    T_CHECK(fake_wait(5) && fakes[5].aborted, "api_cancel ends the running call (abort)");
    settle(sm);
}

/* A real model's tokenizer.chat_template (phi3's) shapes the prompt: the
 * chat's prompt tokens are those of the text the template renders. */
static void test_template(config *cfg)
{
    char path[1024];
    if (!t_shared(path, sizeof path, "models/synthetic/tiny-phi3-32d2l-Q8_0.gguf")) {
        T_SKIP(T_NO_SHARED, "chat with phi3's template");
        return;
    }
    static sched_model sm;
    config_model cm;
    config_model_init(&cm);
    snprintf(cm.path, sizeof cm.path, "%s", path);
    snprintf(cm.id, sizeof cm.id, "phi3");
    cm.thread_count = cm.batch_thread_count = 1;
    cm.batch_length = 256;
    cm.processor_count = 1;
    if (sched_model_init(&sm, &cm, false, 1, 0) < 0 || api_init(&A, cfg, &sm, 1, &tr, 1 << 20) < 0 ||
        sched_model_start(&sm) < 0 || sched_model_wait(&sm) != SCHED_READY) {
        T_CHECK(0, "phi3 model loads (%s)", sm.err);
        return;
    }
    /* phi3's template: BOS (stripped: the tokenizer adds it), user turns, no system */
    T_CHECK(request(0, "POST", "/tokenize",
                    "{\"content\":\"<|user|>\\nHi<|end|>\\n<|assistant|>\\n\",\"add_special\":true}") == 200,
            "tokenize the expected rendering");
    int i = jget(R.body, R.len, "tokens");
    long long want = i >= 0 ? toks[i].size : -1;
    T_CHECK(request(1, "POST", "/v1/chat/completions",
                    "{\"model\":\"phi3\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief\"},"
                    "{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":2}") == 200,
            "chat with phi3");
    long long got = jint(fakes[1].body, fakes[1].len, "usage.prompt_tokens");
    T_CHECK(got == want && want >= 4, "the prompt is phi3's template rendering (%lld tokens, want %lld)", got, want);
    api_free(&A);
    sched_model_free(&sm);
}

/* A demo model with `slots` slots of n_ctx positions behind the api A
 * (fresh caches). */
static int demo_up_ctx(sched_model *sm, config *cfg, int slots, int queue, int n_ctx)
{
    config_model cm;
    config_model_init(&cm);
    snprintf(cm.id, sizeof cm.id, "%s", SCHED_DEMO_ID);
    cm.thread_count = cm.batch_thread_count = 1;
    cm.context_length = n_ctx;
    cm.batch_length = n_ctx < 256 ? n_ctx : 256;
    cm.processor_count = slots;
    return sched_model_init(sm, &cm, true, queue, 0) == 0 && api_init(&A, cfg, sm, 1, &tr, 1 << 20) == 0 &&
           sched_model_start(sm) == 0 && sched_model_wait(sm) == SCHED_READY;
}

static int demo_up(sched_model *sm, config *cfg, int slots, int queue)
{
    return demo_up_ctx(sm, cfg, slots, queue, 2048);
}

static void demo_down(sched_model *sm)
{
    api_free(&A);
    sched_model_free(sm);
}

static void test_slots(config *cfg)
{
    static sched_model sm;
    T_CHECK(demo_up(&sm, cfg, 2, 2), "2-slot model for /slots");
    T_CHECK(request(0, "GET", "/slots", NULL) == 200 && RIS("object", "list") && RIS("data.0.model", "mote-demo") &&
                RIS("data.0.slots.1.state", "idle") && jint(R.body, R.len, "data.0.n_slots") == 2 &&
                jint(R.body, R.len, "data.0.queue_limit") == 2,
            "GET /slots: two idle slots, the queue limit");
    T_CHECK(request(0, "POST", "/v1/slots", "{}") == 405 && header("Allow") && strstr(header("Allow"), "GET"),
            "POST /v1/slots: 405 (read-only)");
    /* three long streams on two slots: two generate, one waits */
    const char *body = "{\"model\":\"mote-demo\",\"prompt\":\"Secret prompt text\",\"max_tokens\":1900,\"stream\":true}";
    api_call *c[3];
    for (int i = 0; i < 3; i++) {
        memset(&fakes[i + 1], 0, sizeof fakes[i + 1]);
        call("POST", "/v1/completions", body, NULL);
        c[i] = R.call;
        api_start(&A, c[i], (uint64_t)(i + 1));
    }
    int ok = 0;
    for (int k = 0; k < 3000 && !ok; k++) {
        request(0, "GET", "/v1/slots", NULL);
        ok = RIS("data.0.slots.0.state", "generating") && RIS("data.0.slots.1.state", "generating") &&
             jint(R.body, R.len, "data.0.queue.0.position") == 1;
        if (!ok) {
            struct timespec ts = { 0, 1000000 };
            nanosleep(&ts, NULL);
        }
    }
    T_CHECK(ok && jint(R.body, R.len, "data.0.slots.0.prompt_tokens") > 0 &&
                jint(R.body, R.len, "data.0.counters.steps") > 0,
            "GET /v1/slots under load: both slots generating, a request waits at position 1");
    T_CHECK(!strstr(R.body, "Secret") && jget(R.body, R.len, "data.0.slots.0.prompt") < 0,
            "no prompt text without --slots-show-prompts");
    cfg->slots_show_prompts = true;
    request(0, "GET", "/slots", NULL);
    T_CHECK(RIS("data.0.slots.0.prompt", "Secret prompt text") && RIS("data.0.queue.0.prompt", "Secret prompt text"),
            "--slots-show-prompts: the prompts of running and queued requests");
    cfg->slots_show_prompts = false;
    for (int i = 0; i < 3; i++) api_cancel(c[i]);
    for (int i = 0; i < 3; i++) fake_wait(i + 1);
    settle(&sm);
    request(0, "GET", "/slots", NULL);
    T_CHECK(RIS("data.0.slots.0.state", "idle") && RIS("data.0.slots.1.state", "idle") &&
                jget(R.body, R.len, "data.0.queue.0") < 0,
            "cancelled: every slot idle again, the queue empty");
    demo_down(&sm);
}

/* A follow-up chat turn reuses the first turn's cache and answers exactly
 * as a fresh server does. */
static void test_prefix(config *cfg)
{
    static sched_model sm;
    static char a1[4096], ans[2][4096], turn2[8192];
    long long cached[2] = { -1, -1 };
    for (int pass = 0; pass < 2; pass++) {
        T_CHECK(demo_up(&sm, cfg, 2, 2), "fresh 2-slot model (%s)", pass ? "cold" : "warm");
        if (pass == 0) {
            T_CHECK(request(1, "POST", "/v1/chat/completions",
                            "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about caches\"}],"
                            "\"max_tokens\":10}") == 200 &&
                        jint(fakes[1].body, fakes[1].len, "usage.prompt_tokens_details.cached_tokens") == 0,
                    "first turn: nothing cached");
            int i = jget(fakes[1].body, fakes[1].len, "choices.0.message.content");
            int n = i >= 0 ? json_string_unescape(js, toks, i, a1, sizeof a1) : -1;
            /* the assistant's answer as a JSON string */
            json_writer w;
            char esc[8192];
            json_writer_init(&w, esc, sizeof esc);
            json_write_strn(&w, a1, n > 0 ? (size_t)n : 0);
            snprintf(turn2, sizeof turn2,
                     "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Tell me about caches\"},"
                     "{\"role\":\"assistant\",\"content\":%.*s},{\"role\":\"user\",\"content\":\"And more?\"}],"
                     "\"max_tokens\":24,\"temperature\":0.8,\"seed\":11}",
                     (int)w.len, esc);
        }
        T_CHECK(request(2, "POST", "/v1/chat/completions", turn2) == 200, "second turn (%s): 200", pass ? "cold" : "warm");
        cached[pass] = jint(fakes[2].body, fakes[2].len, "usage.prompt_tokens_details.cached_tokens");
        int i = jget(fakes[2].body, fakes[2].len, "choices.0.message.content");
        if (i >= 0) json_string_unescape(js, toks, i, ans[pass], sizeof ans[pass]);
        demo_down(&sm);
    }
    T_CHECK(cached[0] > 10 && cached[1] == 0, "cached_tokens: %lld on the warm server, %lld on a fresh one", cached[0],
            cached[1]);
    T_CHECK(ans[0][0] && !strcmp(ans[0], ans[1]), "the same answer from the cache as from scratch ('%.30s...')", ans[0]);
}

/* Context overflow is explicit: 400 context_length_exceeded up front when
 * the prompt leaves no room, finish_reason "length" when generation reaches
 * the end of the context. */
static void test_context(config *cfg)
{
    static sched_model sm;
    T_CHECK(demo_up_ctx(&sm, cfg, 1, 1, 64), "model with a 64-position context");
    static char body[2048];
    char text[200];
    memset(text, 'x', 80);
    text[80] = 0;
    snprintf(body, sizeof body, "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", text);
    T_CHECK(request(1, "POST", "/v1/chat/completions", body) == 400 && RIS("error.code", "context_length_exceeded") &&
                RIS("error.param", "messages"), "chat: a prompt beyond the context: 400 context_length_exceeded");
    snprintf(body, sizeof body, "{\"model\":\"mote-demo\",\"prompt\":\"%s\"}", text);
    T_CHECK(request(1, "POST", "/v1/completions", body) == 400 && RIS("error.code", "context_length_exceeded"),
            "completion: the same, 400 context_length_exceeded");
    int st = request(1, "POST", "/v1/chat/completions",
                     "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":500}");
    long long np = jint(fakes[1].body, fakes[1].len, "usage.prompt_tokens");
    long long ng = jint(fakes[1].body, fakes[1].len, "usage.completion_tokens");
    T_CHECK(st == 200 && FIS(1, "choices.0.finish_reason", "length") && np + ng == 64 + 1,
            "chat: generation stops at the end of the context with finish_reason length (%lld + %lld tokens)", np, ng);
    T_CHECK(request(2, "POST", "/v1/completions",
                    "{\"model\":\"mote-demo\",\"prompt\":\"Hello\",\"max_tokens\":500,\"stream\":true}") == 200 &&
                strstr(fakes[2].body, "\"finish_reason\":\"length\""),
            "completion stream: finish_reason length at the end of the context");
    demo_down(&sm);
}

int main(void)
{
    static config cfg;
    char err[256];
    config_init(&cfg);
    cfg.demo = true;
    if (config_finish(&cfg, err, sizeof err) < 0) T_NOTE("config: %s", err);
    config_model cm;
    config_model_init(&cm);
    snprintf(cm.id, sizeof cm.id, "%s", SCHED_DEMO_ID);
    cm.thread_count = cm.batch_thread_count = 1;
    cm.batch_length = 256;
    cm.processor_count = 2;
    static sched_model sm;

    /* loading: /health and generation say 503 */
    T_CHECK(sched_model_init(&sm, &cm, true, 2, 0) == 0 && api_init(&A, &cfg, &sm, 1, &tr, 1 << 20) == 0, "api init");
    T_CHECK(call("GET", "/health", NULL, NULL) == API_REPLY && R.status == 503 && header("Retry-After"),
            "while loading: /health 503 with Retry-After");
    T_CHECK(call("POST", "/v1/completions", "{\"model\":\"mote-demo\",\"prompt\":\"x\"}", NULL) == API_REPLY && R.status == 503,
            "while loading: completions 503");
    T_CHECK(sched_model_start(&sm) == 0 && sched_model_wait(&sm) == SCHED_READY, "model ready");
    test_routes();
    test_auth(&cfg);
    test_chat();
    test_cmpl();
    test_tokenize();
    api_free(&A);
    sched_model_free(&sm);

    /* one slot, no queue */
    cm.processor_count = 1;
    T_CHECK(sched_model_init(&sm, &cm, true, 0, 0) == 0 && api_init(&A, &cfg, &sm, 1, &tr, 1 << 20) == 0 &&
                sched_model_start(&sm) == 0 && sched_model_wait(&sm) == SCHED_READY, "1-slot model ready");
    test_gone_and_busy(&sm);

    /* stopping with a stream in flight: an error event, then the end */
    memset(&fakes[6], 0, sizeof fakes[6]);
    T_CHECK(call("POST", "/v1/chat/completions",
                 "{\"model\":\"mote-demo\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],\"max_tokens\":1800,\"stream\":true}",
                 NULL) == API_DEFER, "a long stream deferred");
    api_start(&A, R.call, 6);
    while (fakes[6].events < 3) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    sched_model_stop(&sm);
    T_CHECK(fake_wait(6) && !fakes[6].aborted && strstr(fakes[6].body, "\"error\"") && strstr(fakes[6].body, "shutting down"),
            "stop: the stream gets an error event, then ends");
    api_free(&A);
    sched_model_free(&sm);
    test_template(&cfg);
    test_slots(&cfg);
    test_prefix(&cfg);
    test_context(&cfg);
    return t_done();
}
