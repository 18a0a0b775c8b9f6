/* api_chat.c — POST /v1/chat/completions: request to job, job to response.
 *
 * The handler (loop thread) parses the body, renders the messages into one
 * prompt, tokenizes it into the job and checks it against the context.
 * The sink (the model's worker thread) streams chat.completion.chunk events
 * or writes one chat.completion at the end.
 */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- Prompt ------------------------------------------------------------------------
 * TODO(chat_tmpl.h): render with the model's tokenizer.chat_template once
 * that module lands; every model gets ChatML until then. This is the one
 * function to switch over. */

static int put(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    if (len > cap - *n) return -1;
    memcpy(out + *n, s, len);
    *n += len;
    return 0;
}

/* The prompt text of req for model am, into out. Length, or -1 with e. */
static long chat_render(api *a, api_model *am, const oai_chat_req *req, char *out, size_t cap, oai_error *e)
{
    (void)a;
    (void)am;
    size_t n = 0;
    for (int i = 0; i < req->n_messages; i++) {
        const oai_message *m = &req->messages[i];
        const char *role = m->role == OAI_ROLE_DEVELOPER ? "system" : oai_role_name(m->role);
        if (put(out, cap, &n, "<|im_start|>", 12) < 0 || put(out, cap, &n, role, strlen(role)) < 0 ||
            put(out, cap, &n, "\n", 1) < 0 || (m->content.ptr && put(out, cap, &n, m->content.ptr, m->content.len) < 0) ||
            put(out, cap, &n, "<|im_end|>\n", 11) < 0)
            goto full;
    }
    if (put(out, cap, &n, "<|im_start|>assistant\n", 22) < 0) goto full;
    return (long)n;
full:
    oai_error_set(e, 413, "invalid_request_error", "request_too_large", "messages",
                  "The rendered conversation does not fit in the server's prompt buffer.");
    return -1;
}

/* ---- Handler ------------------------------------------------------------------------- */

int api_chat_handle(api *a, const api_request *q, api_response *r)
{
    oai_chat_req req;
    oai_error e;
    oai_arena_reset(&a->arena);
    if (oai_chat_parse(&a->arena, q->body, q->body_len, 0, &req, &e) < 0) goto fail;
    api_model *am = api_model_find(a, req.model.ptr);
    if (!am) {
        oai_error_model_not_found(&e, req.model.ptr);
        goto fail;
    }
    if (req.logprobs) {
        /* TODO(sampler.h): token probabilities come with the sampler */
        oai_error_set(&e, 400, "invalid_request_error", "unsupported_value", "logprobs",
                      "logprobs are not supported by mote yet.");
        goto fail;
    }
    if (sched_model_state(am->sm) != SCHED_READY) {
        oai_error_loading(&e);
        goto fail;
    }
    long plen = chat_render(a, am, &req, a->prompt, a->prompt_cap, &e);
    if (plen < 0) goto fail;
    api_call *c = api_call_new(a, am, API_CHAT, r);
    if (!c) return API_REPLY;
    sched_job *j = c->job;
    const int n_ctx = am->sm->cfg.context_length;
    int32_t n = tok_encode(&am->sm->vocab, a->prompt, (size_t)plen, 1, 1, j->tokens, j->tok_cap);
    if (n == TOK_ENCODE_ERROR) {
        oai_error_server(&e, "the tokenizer ran out of memory");
        goto fail_job;
    }
    if (n < 0 || n >= n_ctx) {
        oai_error_context_exceeded(&e, "messages", n_ctx, n < 0 ? -(long)n : (long)n);
        goto fail_job;
    }
    j->n_prompts = 1;
    j->prompt_len[0] = n;
    j->max_tokens = req.max_tokens > 0 ? req.max_tokens : -1;
    if (api_job_sampling(a, am, j, &req.s, &e) < 0) goto fail_job;
    j->keep_text = !req.stream;
    j->sink = &api_chat_sink;
    c->stream = req.stream;
    c->include_usage = req.stream && req.include_usage;
    return API_DEFER;
fail_job:
    sched_job_put(am->sm, j);
fail:
    api_error_reply(a, r, &e);
    return API_REPLY;
}

/* ---- Sink (worker thread) ----------------------------------------------------------------- */

static oai_finish finish_of(sched_finish f)
{
    return f == SCHED_FINISH_LENGTH ? OAI_FINISH_LENGTH : OAI_FINISH_STOP;
}

/* Push framed events; a gone client cancels the job. */
static void push(api_call *c, sched_job *j, const char *ev, int n)
{
    const api_transport *tr = c->a->tr;
    if (c->gone) return;
    if (n < 0 || tr->sse_raw(tr->ctx, c->h, ev, (size_t)n) < 0) {
        c->gone = true;
        sched_job_cancel(j, SCHED_ERR_CANCELLED);
    }
}

static void chat_text(void *arg, sched_job *j, int choice, const char *text, size_t len)
{
    api_call *c = arg;
    (void)choice;
    if (!c->stream || c->gone) return;
    oai_text t = { text, len, NULL, 0 };
    push(c, j, c->am->out, oai_chat_chunk_content(c->am->out, c->am->out_cap, &c->resp, &t));
}

static void chat_ping(void *arg, sched_job *j)
{
    api_call *c = arg;
    const api_transport *tr = c->a->tr;
    if (!c->stream || c->gone) return;
    if (tr->sse_comment(tr->ctx, c->h, "ping") < 0) {
        c->gone = true;
        sched_job_cancel(j, SCHED_ERR_CANCELLED);
    }
}

static void chat_done(void *arg, sched_job *j)
{
    api_call *c = arg;
    api_model *am = c->am;
    const api_transport *tr = c->a->tr;
    if (j->err != SCHED_OK || c->gone) {
        api_call_fail(c, j);
        return;
    }
    api_call_note(c, j);
    oai_finish f = finish_of(j->choice[0].finish);
    oai_usage u = { j->n_prompt_tokens, j->n_gen_tokens, j->choice[0].n_cached };
    if (c->stream) {
        /* finish chunk, usage chunk when asked, [DONE]: one write */
        int n = oai_chat_chunk_finish(am->out, am->out_cap, &c->resp, f);
        int k = n < 0 ? -1 : c->include_usage ? oai_chat_chunk_usage(am->out + n, am->out_cap - (size_t)n, &c->resp, &u) : 0;
        int d = k < 0 ? -1 : oai_sse_done(am->out + n + k, am->out_cap - (size_t)(n + k));
        if (d >= 0) tr->sse_raw(tr->ctx, c->h, am->out, (size_t)(n + k + d));
        tr->sse_end(tr->ctx, c->h);
        return;
    }
    oai_text t = { j->text + j->choice[0].text_off, j->choice[0].text_len, NULL, 0 };
    int n = oai_chat_write(am->out, am->out_cap, &c->resp, &t, f, &u);
    if (n < 0) {
        j->err = SCHED_ERR_TEXT_FULL;
        api_call_fail(c, j);
        return;
    }
    tr->send(tr->ctx, c->h, 200, "application/json", NULL, am->out, (size_t)n);
}

const sched_sink api_chat_sink = {
    .text = chat_text,
    .ping = chat_ping,
    .done = chat_done,
};
