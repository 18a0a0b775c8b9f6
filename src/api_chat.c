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

#include "chat_tmpl.h"
#include "json.h"
#include "log.h"

/* ---- Prompt ------------------------------------------------------------------------
 * The conversation is rendered with the model's tokenizer.chat_template
 * (chat_tmpl.h, llama.cpp's conventions), or ChatML when the model has none
 * or its template does not compile. */

/* Compile the model's template once (loop thread, after loading). */
static void tmpl_prepare(api_model *am)
{
    const sched_model *sm = am->sm;
    gguf_str src = { "", 0 };
    int have = gguf_get_str(&sm->g, "tokenizer.chat_template", &src) == 0 && src.len > 0;
    const char *text = have ? src.ptr : chat_tmpl_chatml;
    size_t len = have ? src.len : strlen(chat_tmpl_chatml);
    char err[160];
    for (int pass = 0; pass < 2; pass++) {
        size_t cap = CHAT_TMPL_COMPILE_BOUND(len);
        am->tmpl_mem = malloc(cap);
        if (am->tmpl_mem && chat_tmpl_compile(text, len, am->tmpl_mem, cap, &am->tmpl, err, sizeof err) == 0) {
            am->tmpl_state = have && pass == 0 ? 1 : 2;
            break;
        }
        log_warn("model %s: chat template unusable (%s); using ChatML", sm->cfg.id,
                 am->tmpl_mem ? err : "out of memory");
        free(am->tmpl_mem);
        am->tmpl_mem = NULL;
        am->tmpl = NULL;
        text = chat_tmpl_chatml;
        len = strlen(chat_tmpl_chatml);
    }
    if (!am->tmpl) am->tmpl_state = -1;
    size_t n;
    const char *t;
    am->bos[0] = am->eos[0] = 0;
    if (sm->vocab.bos != TOK_NULL && (t = tok_text(&sm->vocab, sm->vocab.bos, &n)) && n < sizeof am->bos) {
        memcpy(am->bos, t, n);
        am->bos[n] = 0;
    }
    if (sm->vocab.eos != TOK_NULL && (t = tok_text(&sm->vocab, sm->vocab.eos, &n)) && n < sizeof am->eos) {
        memcpy(am->eos, t, n);
        am->eos[n] = 0;
    }
}

/* The messages as the JSON array the template sees (developer -> system). */
static long messages_json(const oai_chat_req *req, char *out, size_t cap)
{
    json_writer w;
    json_writer_init(&w, out, cap);
    json_write_arr_begin(&w);
    for (int i = 0; i < req->n_messages; i++) {
        const oai_message *m = &req->messages[i];
        json_write_obj_begin(&w);
        json_write_key(&w, "role");
        json_write_str(&w, m->role == OAI_ROLE_DEVELOPER ? "system" : oai_role_name(m->role));
        json_write_key(&w, "content");
        if (m->content.ptr) json_write_strn(&w, m->content.ptr, m->content.len);
        else json_write_null(&w);
        if (m->name.ptr) {
            json_write_key(&w, "name");
            json_write_strn(&w, m->name.ptr, m->name.len);
        }
        if (m->tool_call_id.ptr) {
            json_write_key(&w, "tool_call_id");
            json_write_strn(&w, m->tool_call_id.ptr, m->tool_call_id.len);
        }
        if (m->tool_calls.ptr) {
            json_write_key(&w, "tool_calls");
            json_write_raw(&w, m->tool_calls.ptr, m->tool_calls.len);
        }
        json_write_obj_end(&w);
    }
    json_write_arr_end(&w);
    return json_writer_finish(&w) < 0 ? -1 : (long)w.len;
}

/* The prompt text of req for model am, into out. Length, or -1 with e. */
static long chat_render(api *a, api_model *am, const oai_chat_req *req, char *out, size_t cap, oai_error *e)
{
    if (!am->tmpl_state) tmpl_prepare(am);
    if (!am->tmpl) {
        oai_error_server(e, "the model has no usable chat template");
        return -1;
    }
    /* the rest of the request arena: half for the messages, half scratch */
    size_t room = a->arena.cap - a->arena.lo - a->arena.hi;
    char *mj = oai_arena_alloc(&a->arena, room / 2);
    size_t scratch_cap = room - room / 2 > 64 ? room - room / 2 - 64 : 0;
    void *scratch = oai_arena_alloc(&a->arena, scratch_cap);
    long mlen = mj && scratch ? messages_json(req, mj, room / 2) : -1;
    if (mlen < 0) {
        oai_error_set(e, 413, "invalid_request_error", "request_too_large", "messages",
                      "The conversation does not fit in the server's request memory.");
        return -1;
    }
    chat_tmpl_input in = {
        .messages_json = mj, .messages_len = (size_t)mlen,
        .bos_token = am->bos[0] ? am->bos : NULL, .eos_token = am->eos[0] ? am->eos : NULL,
        .add_generation_prompt = true,
        .flags = CHAT_TMPL_ENABLE_THINKING | CHAT_TMPL_ARGS_OBJECT | CHAT_TMPL_MUTABLE |
                 (am->sm->vocab.add_bos ? CHAT_TMPL_STRIP_BOS : 0),
    };
    char err[256];
    long n = chat_tmpl_render(am->tmpl, &in, scratch, scratch_cap, out, cap, err, sizeof err);
    if (n >= 0) return n;
    if (n == CHAT_TMPL_ERR_NOMEM || n == CHAT_TMPL_ERR_OUTPUT)
        oai_error_set(e, 413, "invalid_request_error", "request_too_large", "messages",
                      "The rendered conversation does not fit in the server's memory (%s).", err);
    else
        oai_error_set(e, 400, "invalid_request_error", "invalid_value", "messages",
                      "The model's chat template refused the messages: %s", err);
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

static void chat_text(void *arg, sched_job *j, int choice, const char *text, size_t len)
{
    api_call *c = arg;
    (void)choice;
    if (!c->stream || c->gone) return;
    oai_text t = { text, len, NULL, 0 };
    api_call_push(c, j, c->am->out, oai_chat_chunk_content(c->am->out, c->am->out_cap, &c->resp, &t));
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
    oai_finish f = api_finish_reason(j->choice[0].finish);
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
