/* api_completions.c — POST /v1/completions and the legacy
 * /v1/engines/{model}/completions (POST JSON, or GET with the query).
 *
 * Prompts: a string, an array of strings, a token array or an array of
 * token arrays; choice i answers prompt i (run one after the other in one
 * slot). echo prepends each prompt's text to its choice.
 */
#include "api.h"

#include <stdio.h>
#include <string.h>

/* ---- Handler (loop thread) --------------------------------------------------------- */

int api_cmpl_handle(api *a, const api_request *q, const char *engine, bool from_query, api_response *r)
{
    oai_cmpl_req req;
    oai_error e;
    int rc;
    oai_arena_reset(&a->arena);
    if (from_query)
        rc = oai_cmpl_parse_query(&a->arena, q->query ? q->query : "", q->query_len, &req, &e);
    else
        rc = oai_cmpl_parse(&a->arena, q->body, q->body_len, engine ? OAI_PARSE_MODEL_OPTIONAL : 0, &req, &e);
    if (rc < 0) goto fail;
    const char *name = engine ? engine : req.model.ptr;
    api_model *am = api_model_find(a, name);
    if (!am) {
        oai_error_model_not_found(&e, name);
        goto fail;
    }
    if (req.logprobs >= 0) {
        /* TODO(sampler.h): token probabilities come with the sampler */
        oai_error_set(&e, 400, "invalid_request_error", "unsupported_value", "logprobs",
                      "logprobs are not supported by mote yet.");
        goto fail;
    }
    if (req.n_prompts > SCHED_CHOICES_MAX) {
        oai_error_set(&e, 400, "invalid_request_error", "unsupported_value", "prompt",
                      "mote answers at most %d prompts per request (got %d).", SCHED_CHOICES_MAX, req.n_prompts);
        goto fail;
    }
    api_call *c = api_call_new(a, am, API_CMPL, r);
    if (!c) return API_REPLY;
    sched_job *j = c->job;
    const tok_vocab *v = &am->sm->vocab;
    const int n_ctx = am->sm->cfg.context_length;
    const int limit = req.max_tokens == 0 ? n_ctx : n_ctx - 1;   /* room for one token */
    int off = 0;
    for (int i = 0; i < req.n_prompts; i++) {
        const oai_prompt *p = &req.prompts[i];
        char param[32];
        if (req.n_prompts > 1) snprintf(param, sizeof param, "prompt[%d]", i);
        else snprintf(param, sizeof param, "prompt");
        int32_t n;
        if (p->tokens) {
            for (int k = 0; k < p->n_tokens; k++)
                if (p->tokens[k] >= v->n_vocab) {
                    oai_error_bad_token(&e, param, p->tokens[k], v->n_vocab);
                    goto fail_job;
                }
            n = p->n_tokens;
            if (n <= j->tok_cap - off) memcpy(j->tokens + off, p->tokens, (size_t)n * sizeof *j->tokens);
            else n = -n;
        } else {
            n = tok_encode(v, p->text.ptr ? p->text.ptr : "", p->text.len, 1, 1, j->tokens + off, j->tok_cap - off);
            if (n == TOK_ENCODE_ERROR) {
                oai_error_server(&e, "the tokenizer ran out of memory");
                goto fail_job;
            }
        }
        if (n == 0) {
            oai_error_set(&e, 400, "invalid_request_error", "invalid_value", param,
                          "The prompt is empty (it gives no tokens).");
            goto fail_job;
        }
        if (n > limit) {
            oai_error_context_exceeded(&e, param, n_ctx, n);
            goto fail_job;
        }
        if (n < 0) {
            /* it fits the context but not what is left of the job's token store */
            if (-n > limit) oai_error_context_exceeded(&e, param, n_ctx, -(long)n);
            else
                oai_error_set(&e, 400, "invalid_request_error", "unsupported_value", "prompt",
                              "The prompts hold more than %d tokens in all; send fewer per request.", j->tok_cap);
            goto fail_job;
        }
        j->prompt_len[i] = n;
        off += n;
    }
    j->n_prompts = req.n_prompts;
    j->max_tokens = req.max_tokens;
    j->echo = req.echo;
    if (api_job_sampling(a, am, j, &req.s, &e) < 0) goto fail_job;
    j->keep_text = !req.stream;
    j->sink = &api_cmpl_sink;
    c->stream = req.stream;
    c->include_usage = req.stream && req.include_usage;
    return API_DEFER;
fail_job:
    sched_job_put(am->sm, j);
fail:
    api_error_reply(a, r, &e);
    return API_REPLY;
}

/* ---- Sink (worker thread) ------------------------------------------------------------ */

static void cmpl_text(void *arg, sched_job *j, int choice, const char *text, size_t len)
{
    api_call *c = arg;
    if (!c->stream || c->gone) return;
    oai_text t = { text, len, NULL, 0 };
    api_call_push(c, j, c->am->out, oai_cmpl_chunk(c->am->out, c->am->out_cap, &c->resp, choice, &t, OAI_FINISH_NONE));
}

static void cmpl_choice_end(void *arg, sched_job *j, int choice)
{
    api_call *c = arg;
    if (!c->stream || c->gone) return;
    oai_text t = { "", 0, NULL, 0 };
    api_call_push(c, j, c->am->out, oai_cmpl_chunk(c->am->out, c->am->out_cap, &c->resp, choice, &t,
                                          api_finish_reason(j->choice[choice].finish)));
}

static void cmpl_ping(void *arg, sched_job *j)
{
    api_call *c = arg;
    const api_transport *tr = c->a->tr;
    if (!c->stream || c->gone) return;
    if (tr->sse_comment(tr->ctx, c->h, "ping") < 0) {
        c->gone = true;
        sched_job_cancel(j, SCHED_ERR_CANCELLED);
    }
}

static void cmpl_done(void *arg, sched_job *j)
{
    api_call *c = arg;
    api_model *am = c->am;
    const api_transport *tr = c->a->tr;
    if (j->err != SCHED_OK || c->gone) {
        api_call_fail(c, j);
        return;
    }
    api_call_note(c, j);
    int cached = 0;
    for (int i = 0; i < j->n_prompts; i++) cached += j->choice[i].n_cached;
    oai_usage u = { j->n_prompt_tokens, j->n_gen_tokens, cached };
    if (c->stream) {
        int k = c->include_usage ? oai_cmpl_chunk_usage(am->out, am->out_cap, &c->resp, &u) : 0;
        int d = k < 0 ? -1 : oai_sse_done(am->out + k, am->out_cap - (size_t)k);
        if (d >= 0) tr->sse_raw(tr->ctx, c->h, am->out, (size_t)(k + d));
        tr->sse_end(tr->ctx, c->h);
        return;
    }
    for (int i = 0; i < j->n_prompts; i++) {
        am->texts[i] = (oai_text){ j->text + j->choice[i].text_off, j->choice[i].text_len, NULL, 0 };
        am->finish[i] = api_finish_reason(j->choice[i].finish);
    }
    int n = oai_cmpl_write(am->out, am->out_cap, &c->resp, am->texts, am->finish, j->n_prompts, &u);
    if (n < 0) {
        j->err = SCHED_ERR_TEXT_FULL;
        api_call_fail(c, j);
        return;
    }
    tr->send(tr->ctx, c->h, 200, "application/json", NULL, am->out, (size_t)n);
}

const sched_sink api_cmpl_sink = {
    .text = cmpl_text,
    .ping = cmpl_ping,
    .choice_end = cmpl_choice_end,
    .done = cmpl_done,
};
