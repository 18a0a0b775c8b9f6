/* fuzz_oai_request.c — libFuzzer entry: a request body through every OpenAI
 * parser (chat, completions, embeddings, the engines URL-query form).
 *
 * Every field of a successful parse is read (each string byte, each token
 * id, each bias) so the sanitizers see any bad span; every error is
 * serialized. The arena is small enough that 413 paths are reached too.
 *
 *     make build/fuzz/fuzz_oai_request
 *     build/fuzz/fuzz_oai_request -max_total_time=60 fuzz/corpus/oai
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oai.h"

static char arena_buf[1 << 16];
static char out[1 << 12];
static volatile unsigned sink;

static void touch(const void *p, size_t n)
{
    const unsigned char *b = p;
    unsigned s = 0;
    for (size_t k = 0; k < n; k++) s += b[k];
    sink += s;
}

static void touch_str(oai_str s)
{
    if (!s.ptr) return;
    touch(s.ptr, s.len + 1); /* NUL included */
}

static void touch_sampling(const oai_sampling *s)
{
    sink += s->set + (unsigned)s->temperature + (unsigned)s->top_k + (unsigned)s->seed;
    for (int k = 0; k < s->n_stop; k++) touch_str(s->stop[k]);
    if (s->n_logit_bias > 0) touch(s->logit_bias, (size_t)s->n_logit_bias * sizeof *s->logit_bias);
}

static void touch_prompts(const oai_prompt *p, int n)
{
    for (int k = 0; k < n; k++) {
        touch_str(p[k].text);
        if (p[k].tokens) touch(p[k].tokens, (size_t)p[k].n_tokens * sizeof(int32_t));
    }
}

static void check_error(const oai_error *e)
{
    if (e->status < 400 || e->status > 599 || !e->type) abort();
    oai_error_write(e, out, sizeof out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *body = (const char *)data;
    oai_arena a;
    oai_error e;
    oai_arena_init(&a, arena_buf, sizeof arena_buf);

    oai_chat_req c;
    if (oai_chat_parse(&a, body, size, 0, &c, &e) == 0) {
        touch_str(c.model);
        for (int k = 0; k < c.n_messages; k++) {
            const oai_message *m = &c.messages[k];
            sink += (unsigned)m->role + (unsigned)strlen(oai_role_name(m->role));
            touch_str(m->content);
            touch_str(m->name);
            touch_str(m->tool_call_id);
            touch_str(m->tool_calls);
        }
        touch_sampling(&c.s);
        touch_str(c.user);
        sink += (unsigned)c.max_tokens + c.stream + c.include_usage + c.logprobs + (unsigned)c.top_logprobs;
        /* Echo the first message back through the writers. */
        oai_resp r = {"chatcmpl-f", 1, c.model.ptr, NULL, c.include_usage, false};
        oai_text t = {c.messages[0].content.ptr, c.messages[0].content.len, NULL, 0};
        oai_usage u = {1, 2, 0};
        oai_chat_write(out, sizeof out, &r, &t, OAI_FINISH_STOP, &u);
        oai_chat_chunk_content(out, sizeof out, &r, &t);
    } else {
        check_error(&e);
    }
    if (a.hi != 0) abort();

    oai_arena_reset(&a);
    oai_cmpl_req x;
    if (oai_cmpl_parse(&a, body, size, OAI_PARSE_MODEL_OPTIONAL, &x, &e) == 0) {
        touch_str(x.model);
        touch_prompts(x.prompts, x.n_prompts);
        touch_sampling(&x.s);
        touch_str(x.user);
        sink += (unsigned)x.max_tokens + x.echo + (unsigned)x.logprobs + x.stream;
    } else {
        check_error(&e);
    }

    oai_arena_reset(&a);
    oai_embd_req m;
    if (oai_embd_parse(&a, body, size, 0, &m, &e) == 0) {
        touch_str(m.model);
        touch_prompts(m.inputs, m.n_inputs);
        touch_str(m.user);
        sink += m.base64 + (unsigned)m.dimensions;
    } else {
        check_error(&e);
    }

    oai_arena_reset(&a);
    if (oai_cmpl_parse_query(&a, body, size, &x, &e) == 0) {
        touch_prompts(x.prompts, x.n_prompts);
        touch_sampling(&x.s);
    } else {
        check_error(&e);
    }
    if (a.hi != 0) abort();
    return 0;
}
