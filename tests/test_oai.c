/* test_oai.c — OpenAI request validation and response serialization.
 *
 * Tables of request bodies: invalid ones must give the exact HTTP status,
 * `param` and `code`; valid ones must fill the request struct. Response
 * writers are parsed back with the JSON library and checked field by field,
 * plus byte-exact checks that pin OpenAI's field order. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "json.h"
#include "oai.h"
#include "test.h"

static char arena_buf[1 << 20];
static oai_arena A;

enum { CHAT, CMPL, EMBD, QUERY };

static int parse_any(int ep, const char *body, void *out, oai_error *e)
{
    oai_arena_init(&A, arena_buf, sizeof arena_buf);
    size_t n = strlen(body);
    switch (ep) {
    case CHAT: return oai_chat_parse(&A, body, n, 0, out, e);
    case CMPL: return oai_cmpl_parse(&A, body, n, 0, out, e);
    case EMBD: return oai_embd_parse(&A, body, n, 0, out, e);
    default: return oai_cmpl_parse_query(&A, body, n, out, e);
    }
}

/* ---- Invalid requests ---------------------------------------------------------- */

static const struct bad {
    int ep;
    const char *body;
    int status;
    const char *param; /* NULL: JSON null */
    const char *code;  /* NULL: JSON null */
} bad[] = {
    /* body level */
    {CHAT, "", 400, NULL, NULL},
    {CHAT, "{\"model\":", 400, NULL, NULL},
    {CHAT, "{\"model\":\"m\",}", 400, NULL, NULL},
    {CHAT, "[1,2]", 400, NULL, "invalid_type"},
    {CHAT, "\"hi\"", 400, NULL, "invalid_type"},
    /* model */
    {CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400, "model", "missing_required_parameter"},
    {CHAT, "{\"model\":\"\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400, "model", "missing_required_parameter"},
    {CHAT, "{\"model\":3,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 400, "model", "invalid_type"},
    /* messages */
    {CHAT, "{\"model\":\"m\"}", 400, "messages", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":null}", 400, "messages", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":{}}", 400, "messages", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[]}", 400, "messages", "empty_array"},
    {CHAT, "{\"model\":\"m\",\"messages\":[\"hi\"]}", 400, "messages[0]", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"content\":\"hi\"}]}", 400, "messages[0].role", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"boss\",\"content\":\"hi\"}]}", 400, "messages[0].role", "invalid_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":1,\"content\":\"hi\"}]}", 400, "messages[0].role", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":null}]}", 400, "messages[0].content", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400, "messages[0].content", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[]}]}", 400, "messages[0].content", "empty_array"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[\"x\"]}]}", 400, "messages[0].content[0]", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"x\"}]}]}", 400, "messages[0].content[0].type", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}", 400, "messages[0].content[0].text", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]}", 400, "messages[0].content[0].text", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", 400, "messages[0].content[1].type", "unsupported_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"video\"}]}]}", 400, "messages[0].content[0].type", "invalid_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\",\"name\":4}]}", 400, "messages[0].name", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"42\"}]}", 400, "messages[0].tool_call_id", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"content\":\"42\"}]}", 400, "messages[0].name", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"tool_calls\":{}}]}", 400, "messages[1].tool_calls", "invalid_type"},
    /* numbers */
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":0}", 400, "max_tokens", "integer_below_min_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":\"5\"}", 400, "max_tokens", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":1.5}", 400, "max_tokens", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":99999999999}", 400, "max_tokens", "integer_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":1e999}", 400, "max_tokens", "integer_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_completion_tokens\":-3}", 400, "max_completion_tokens", "integer_below_min_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":2.5}", 400, "temperature", "decimal_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":-0.1}", 400, "temperature", "decimal_below_min_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":\"hot\"}", 400, "temperature", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":1e400}", 400, "temperature", "decimal_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"top_p\":1.01}", 400, "top_p", "decimal_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"presence_penalty\":-2.5}", 400, "presence_penalty", "decimal_below_min_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"frequency_penalty\":3}", 400, "frequency_penalty", "decimal_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"seed\":1.5}", 400, "seed", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"top_k\":-1}", 400, "top_k", "integer_below_min_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"min_p\":2}", 400, "min_p", "decimal_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"repeat_last_n\":-2}", 400, "repeat_last_n", "integer_below_min_value"},
    /* n */
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":2}", 400, "n", "unsupported_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":0}", 400, "n", "integer_below_min_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"n\":129}", 400, "n", "integer_above_max_value"},
    /* stop */
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop", "array_above_max_length"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":[\"a\",3]}", 400, "stop[1]", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stop\":7}", 400, "stop", "invalid_type"},
    /* stream */
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream\":\"yes\"}", 400, "stream", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream_options\":{\"include_usage\":true}}", 400, "stream_options", "invalid_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream\":true,\"stream_options\":[]}", 400, "stream_options", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"stream\":true,\"stream_options\":{\"include_usage\":1}}", 400, "stream_options.include_usage", "invalid_type"},
    /* logprobs, logit_bias, response_format, tools, user */
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logprobs\":1}", 400, "logprobs", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"top_logprobs\":3}", 400, "top_logprobs", "invalid_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logprobs\":true,\"top_logprobs\":21}", 400, "top_logprobs", "integer_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logit_bias\":{\"abc\":1}}", 400, "logit_bias", "invalid_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logit_bias\":{\"-1\":1}}", 400, "logit_bias", "invalid_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logit_bias\":{\"12\":101}}", 400, "logit_bias", "decimal_above_max_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logit_bias\":{\"12\":null}}", 400, "logit_bias", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"logit_bias\":[1]}", 400, "logit_bias", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"response_format\":{\"type\":\"json_object\"}}", 400, "response_format.type", "unsupported_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"response_format\":{\"type\":\"yaml\"}}", 400, "response_format.type", "invalid_value"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"response_format\":{}}", 400, "response_format.type", "missing_required_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"response_format\":\"text\"}", 400, "response_format", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}", 400, "tools", "unsupported_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":{}}", 400, "tools", "invalid_type"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"functions\":[{\"name\":\"f\"}]}", 400, "functions", "unsupported_parameter"},
    {CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"user\":1}", 400, "user", "invalid_type"},
    /* completions */
    {CMPL, "{\"model\":\"m\"}", 400, "prompt", "missing_required_parameter"},
    {CMPL, "{\"model\":\"m\",\"prompt\":5}", 400, "prompt", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[]}", 400, "prompt", "empty_array"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[true]}", 400, "prompt", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[\"a\",1]}", 400, "prompt[1]", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[1,\"a\"]}", 400, "prompt[1]", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[1,-2]}", 400, "prompt[1]", "integer_below_min_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[1,2.5]}", 400, "prompt[1]", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[1,4294967296]}", 400, "prompt[1]", "integer_above_max_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[[1],[]]}", 400, "prompt[1]", "empty_array"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[[1],[2,\"x\"]]}", 400, "prompt[1][1]", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":[[1],\"x\"]}", 400, "prompt[1]", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"max_tokens\":-1}", 400, "max_tokens", "integer_below_min_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"n\":3}", 400, "n", "unsupported_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"best_of\":2}", 400, "best_of", "unsupported_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"best_of\":0}", 400, "best_of", "integer_below_min_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"best_of\":21}", 400, "best_of", "integer_above_max_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"echo\":\"true\"}", 400, "echo", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"logprobs\":6}", 400, "logprobs", "integer_above_max_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"logprobs\":true}", 400, "logprobs", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"suffix\":\"end\"}", 400, "suffix", "unsupported_value"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"suffix\":1}", 400, "suffix", "invalid_type"},
    {CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"stream_options\":{\"include_usage\":true}}", 400, "stream_options", "invalid_value"},
    {CMPL, "{\"prompt\":\"a\"}", 400, "model", "missing_required_parameter"},
    /* embeddings */
    {EMBD, "{\"model\":\"m\"}", 400, "input", "missing_required_parameter"},
    {EMBD, "{\"model\":\"m\",\"input\":\"\"}", 400, "input", "invalid_value"},
    {EMBD, "{\"model\":\"m\",\"input\":[\"a\",\"\"]}", 400, "input[1]", "invalid_value"},
    {EMBD, "{\"model\":\"m\",\"input\":{}}", 400, "input", "invalid_type"},
    {EMBD, "{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"hex\"}", 400, "encoding_format", "invalid_value"},
    {EMBD, "{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":1}", 400, "encoding_format", "invalid_type"},
    {EMBD, "{\"model\":\"m\",\"input\":\"a\",\"dimensions\":0}", 400, "dimensions", "integer_below_min_value"},
    /* legacy query form */
    {QUERY, "max_tokens=32", 400, "prompt", "missing_required_parameter"},
    {QUERY, "prompt=hi&max_tokens=lots", 400, "max_tokens", "invalid_type"},
    {QUERY, "prompt=hi&echo=yes", 400, "echo", "invalid_type"},
    {QUERY, "prompt=hi%2", 400, NULL, "invalid_value"},
    {QUERY, "prompt=hi%zz", 400, NULL, "invalid_value"},
    {QUERY, "prompt=hi&n=4", 400, "n", "unsupported_value"},
    {QUERY, "prompt=hi&stop=a&stop=b&stop=c&stop=d&stop=e", 400, "stop", "array_above_max_length"},
};

static int streq_null(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return !strcmp(a, b);
}

static void test_bad(void)
{
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        const struct bad *b = &bad[k];
        union { oai_chat_req c; oai_cmpl_req x; oai_embd_req e; } out;
        oai_error e;
        memset(&e, 0, sizeof e);
        int rc = parse_any(b->ep, b->body, &out, &e);
        const char *param = e.param[0] ? e.param : NULL;
        int ok = rc == -1 && e.status == b->status && streq_null(param, b->param) &&
                 streq_null(e.code, b->code) && e.type && e.message[0];
        T_CHECK(ok, "bad #%zu %.60s -> %d %s %s", k, b->body, b->status,
                b->param ? b->param : "null", b->code ? b->code : "null");
        if (!ok)
            T_NOTE("got rc %d status %d param %s code %s: %s", rc, e.status, e.param,
                   e.code ? e.code : "null", e.message);
        /* A failed parse leaves no allocation behind. */
        T_CHECK(A.lo == 0 && A.hi == 0, "bad #%zu releases the arena (lo %zu hi %zu)", k, A.lo, A.hi);
    }
}

/* Messages use OpenAI's wording. */
static void test_messages(void)
{
    oai_chat_req c;
    oai_error e;
    parse_any(CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_tokens\":\"5\"}", &c, &e);
    T_CHECK(!strcmp(e.message, "Invalid type for 'max_tokens': expected an integer, but got a string instead."),
            "invalid_type message: %s", e.message);
    parse_any(CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"temperature\":3}", &c, &e);
    T_CHECK(!strcmp(e.message, "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead."),
            "range message: %s", e.message);
    parse_any(CHAT, "{\"model\":\"m\"}", &c, &e);
    T_CHECK(!strcmp(e.message, "Missing required parameter: 'messages'."), "missing message: %s", e.message);
    parse_any(CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"boss\",\"content\":\"a\"}]}", &c, &e);
    T_CHECK(strstr(e.message, "Invalid value: 'boss'.") == e.message, "invalid_value message: %s", e.message);
    parse_any(CHAT, "{\"model\":\"m\",", &c, &e);
    T_CHECK(strstr(e.message, "We could not parse the JSON body of your request") == e.message &&
                !strcmp(e.type, "invalid_request_error"), "bad JSON message: %s", e.message);
}

/* ---- Valid requests ------------------------------------------------------------- */

static int str_is(oai_str s, const char *want)
{
    return s.ptr && s.len == strlen(want) && !memcmp(s.ptr, want, s.len) && s.ptr[s.len] == 0;
}

static void test_chat_ok(void)
{
    oai_chat_req c;
    oai_error e;
    int rc = parse_any(CHAT,
        "{\"model\":\"tiny\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be \\\"brief\\\".\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"A\"},{\"type\":\"text\",\"text\":\"\\u00e9B\"}]},"
        "{\"role\":\"user\",\"content\":\"hi\",\"name\":\"bob\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"content\":\"42\",\"tool_call_id\":\"call_1\"},"
        "{\"role\":\"assistant\"},"
        "{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}],"
        "\"max_tokens\":10,\"max_completion_tokens\":20,\"temperature\":0.5,\"top_p\":0.9,"
        "\"n\":1,\"stop\":[\"\\n\",\"\",\"END\"],\"seed\":-7,\"presence_penalty\":0.5,"
        "\"frequency_penalty\":-1,\"logit_bias\":{\"15\":-100,\"7\":2.5},\"stream\":true,"
        "\"stream_options\":{\"include_usage\":true},\"user\":\"u1\",\"response_format\":{\"type\":\"text\"},"
        "\"logprobs\":true,\"top_logprobs\":3,\"top_k\":40,\"min_p\":0.05,\"repeat_penalty\":1.1,"
        "\"repeat_last_n\":-1,\"tools\":[],\"tool_choice\":\"auto\",\"metadata\":{\"x\":[1,{}]},"
        "\"unknown_field\":{\"deep\":[[[]]]},\"store\":false}",
        &c, &e);
    T_CHECK(rc == 0, "full chat request parses (%s)", rc ? e.message : "ok");
    if (rc) return;
    T_CHECK(str_is(c.model, "tiny"), "model");
    T_CHECK(c.n_messages == 7, "7 messages");
    T_CHECK(c.messages[0].role == OAI_ROLE_SYSTEM && str_is(c.messages[0].content, "Be \"brief\"."),
            "system content unescaped");
    T_CHECK(c.messages[1].role == OAI_ROLE_DEVELOPER && str_is(c.messages[1].content, "A\xc3\xa9" "B"),
            "developer text parts concatenated");
    T_CHECK(c.messages[2].role == OAI_ROLE_USER && str_is(c.messages[2].name, "bob"), "user name");
    T_CHECK(c.messages[3].role == OAI_ROLE_ASSISTANT && !c.messages[3].content.ptr &&
                c.messages[3].tool_calls.ptr && c.messages[3].tool_calls.ptr[0] == '[' &&
                strstr(c.messages[3].tool_calls.ptr, "call_1"), "assistant null content + raw tool_calls");
    T_CHECK(c.messages[4].role == OAI_ROLE_TOOL && str_is(c.messages[4].tool_call_id, "call_1") &&
                str_is(c.messages[4].content, "42"), "tool message");
    T_CHECK(c.messages[5].role == OAI_ROLE_ASSISTANT && !c.messages[5].content.ptr, "assistant without content");
    T_CHECK(c.messages[6].role == OAI_ROLE_FUNCTION && str_is(c.messages[6].name, "f"), "function message");
    T_CHECK(c.max_tokens == 20, "max_completion_tokens wins over max_tokens (%d)", c.max_tokens);
    T_CHECK(c.s.temperature == 0.5f && c.s.top_p == 0.9f && c.s.presence_penalty == 0.5f &&
                c.s.frequency_penalty == -1.0f, "sampling numbers");
    T_CHECK(c.s.seed == -7 && (c.s.set & OAI_SET_SEED), "seed");
    T_CHECK(c.s.n_stop == 2 && str_is(c.s.stop[0], "\n") && str_is(c.s.stop[1], "END"),
            "stop array, empty dropped");
    T_CHECK(c.s.n_logit_bias == 2 && c.s.logit_bias[0].token == 15 && c.s.logit_bias[0].bias == -100 &&
                c.s.logit_bias[1].token == 7 && c.s.logit_bias[1].bias == 2.5f, "logit_bias");
    T_CHECK(c.stream && c.include_usage, "stream + include_usage");
    T_CHECK(str_is(c.user, "u1"), "user");
    T_CHECK(c.logprobs && c.top_logprobs == 3, "logprobs + top_logprobs");
    T_CHECK(c.s.top_k == 40 && c.s.min_p == 0.05f && c.s.repeat_penalty == 1.1f && c.s.repeat_last_n == -1,
            "llama.cpp extension samplers");
    unsigned all = OAI_SET_TEMPERATURE | OAI_SET_TOP_P | OAI_SET_PRESENCE | OAI_SET_FREQUENCY | OAI_SET_SEED |
                   OAI_SET_TOP_K | OAI_SET_MIN_P | OAI_SET_REPEAT_PENALTY | OAI_SET_REPEAT_LAST_N;
    T_CHECK(c.s.set == all, "set bits (%#x)", c.s.set);
    T_CHECK(A.hi == 0 && A.lo > 0, "tokens released, results kept");

    /* Minimal request: defaults, nulls mean not given, string stop. */
    rc = parse_any(CHAT,
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"temperature\":null,"
        "\"max_tokens\":null,\"stop\":\"###\",\"stream\":false,\"stream_options\":null,\"n\":null,"
        "\"tools\":[{\"type\":\"function\"}],\"tool_choice\":\"none\",\"seed\":null}", &c, &e);
    T_CHECK(rc == 0, "minimal chat parses (%s)", rc ? e.message : "ok");
    T_CHECK(c.max_tokens == 0 && c.s.set == 0 && c.s.temperature == 1.0f && c.s.top_p == 1.0f &&
                !c.stream && !c.include_usage && !c.logprobs && !c.user.ptr, "defaults");
    T_CHECK(c.s.n_stop == 1 && str_is(c.s.stop[0], "###"), "stop string");

    /* Duplicate keys: the last one wins, as in Python and JavaScript. */
    rc = parse_any(CHAT, "{\"model\":\"a\",\"model\":\"b\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &c, &e);
    T_CHECK(rc == 0 && str_is(c.model, "b"), "duplicate key: last wins");
    /* Integral decimals are integers (JSON has one number type). */
    rc = parse_any(CHAT, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":5.0}", &c, &e);
    T_CHECK(rc == 0 && c.max_tokens == 5, "max_tokens 5.0 accepted");
    /* \u0000 inside content keeps its length. */
    rc = parse_any(CHAT, "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", &c, &e);
    T_CHECK(rc == 0 && c.messages[0].content.len == 3 && c.messages[0].content.ptr[1] == 0, "NUL byte in content");
    /* Model from the path (engines API). */
    oai_arena_init(&A, arena_buf, sizeof arena_buf);
    const char *nomodel = "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    rc = oai_chat_parse(&A, nomodel, strlen(nomodel), OAI_PARSE_MODEL_OPTIONAL, &c, &e);
    T_CHECK(rc == 0 && !c.model.ptr, "OAI_PARSE_MODEL_OPTIONAL");
}

static void test_cmpl_ok(void)
{
    oai_cmpl_req x;
    oai_error e;
    int rc = parse_any(CMPL, "{\"model\":\"m\",\"prompt\":\"Once\"}", &x, &e);
    T_CHECK(rc == 0 && x.n_prompts == 1 && str_is(x.prompts[0].text, "Once") && !x.prompts[0].tokens &&
                x.max_tokens == 16 && !x.echo && x.logprobs == -1 && !x.stream,
            "completion defaults (max_tokens 16)");
    rc = parse_any(CMPL, "{\"model\":\"m\",\"prompt\":[\"a\",\"\",\"c\"],\"max_tokens\":0,\"echo\":true,"
                         "\"logprobs\":2,\"best_of\":1,\"suffix\":null,\"stream\":true,"
                         "\"stream_options\":{\"include_usage\":false},\"stop\":null}", &x, &e);
    T_CHECK(rc == 0 && x.n_prompts == 3 && str_is(x.prompts[1].text, "") && str_is(x.prompts[2].text, "c") &&
                x.max_tokens == 0 && x.echo && x.logprobs == 2 && x.stream && !x.include_usage,
            "string array prompt, max_tokens 0, echo, logprobs (%s)", rc ? e.message : "ok");
    rc = parse_any(CMPL, "{\"model\":\"m\",\"prompt\":[1,2,3]}", &x, &e);
    T_CHECK(rc == 0 && x.n_prompts == 1 && x.prompts[0].n_tokens == 3 && x.prompts[0].tokens[2] == 3 &&
                !x.prompts[0].text.ptr, "token array prompt");
    rc = parse_any(CMPL, "{\"model\":\"m\",\"prompt\":[[5],[6,7]]}", &x, &e);
    T_CHECK(rc == 0 && x.n_prompts == 2 && x.prompts[0].n_tokens == 1 && x.prompts[1].n_tokens == 2 &&
                x.prompts[1].tokens[1] == 7, "array of token arrays");
    rc = parse_any(CMPL, "{\"model\":\"m\",\"prompt\":\"a\",\"max_tokens\":null}", &x, &e);
    T_CHECK(rc == 0 && x.max_tokens == 16, "max_tokens null = default 16");
}

static void test_embd_ok(void)
{
    oai_embd_req m;
    oai_error e;
    int rc = parse_any(EMBD, "{\"model\":\"m\",\"input\":\"hello\"}", &m, &e);
    T_CHECK(rc == 0 && m.n_inputs == 1 && str_is(m.inputs[0].text, "hello") && !m.base64 && !m.dimensions,
            "embedding string input");
    rc = parse_any(EMBD, "{\"model\":\"m\",\"input\":[\"a\",\"b\"],\"encoding_format\":\"base64\",\"dimensions\":8,\"user\":\"x\"}", &m, &e);
    T_CHECK(rc == 0 && m.n_inputs == 2 && m.base64 && m.dimensions == 8 && str_is(m.user, "x"),
            "embedding array + base64 + dimensions");
    rc = parse_any(EMBD, "{\"model\":\"m\",\"input\":[[1,2],[3]],\"encoding_format\":\"float\"}", &m, &e);
    T_CHECK(rc == 0 && m.n_inputs == 2 && m.inputs[1].tokens[0] == 3 && !m.base64, "embedding token arrays");
}

static void test_query(void)
{
    oai_cmpl_req x;
    oai_error e;
    int rc = parse_any(QUERY, "prompt=Hello,%20my+name%20is&max_tokens=32&n=1&temperature=0.9&echo=true&stop=%0A", &x, &e);
    T_CHECK(rc == 0 && str_is(x.prompts[0].text, "Hello, my name is") && x.max_tokens == 32 &&
                x.s.temperature == 0.9f && x.echo && x.s.n_stop == 1 && str_is(x.s.stop[0], "\n") && !x.model.ptr,
            "query form (%s)", rc ? e.message : "ok");
    rc = parse_any(QUERY, "prompt=42&stop=a&stop=b&user=7&&junk&max_tokens=", &x, &e);
    T_CHECK(rc == 0 && str_is(x.prompts[0].text, "42") && x.s.n_stop == 2 && str_is(x.s.stop[1], "b") &&
                str_is(x.user, "7") && x.max_tokens == 16,
            "query: string keys stay strings, repeated stop, empty value = null (%s)", rc ? e.message : "ok");
    rc = parse_any(QUERY, "prompt=%22quoted%22%5C", &x, &e);
    T_CHECK(rc == 0 && str_is(x.prompts[0].text, "\"quoted\"\\"), "query: quotes and backslash escaped");
}

/* Every arena size either parses or says 413; never crashes, and once a size
 * suffices every larger one does (fault injection on the arena). */
static void test_arena_sizes(void)
{
    static const char body[] =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}],"
        "\"stop\":[\"a\",\"b\"],\"logit_bias\":{\"1\":1}}";
    static char small[4096];
    int first_ok = -1, bad_after_ok = 0, other_err = 0;
    for (size_t cap = 0; cap <= sizeof small; cap += 8) {
        oai_arena a;
        oai_chat_req c;
        oai_error e;
        oai_arena_init(&a, small, cap);
        int rc = oai_chat_parse(&a, body, strlen(body), 0, &c, &e);
        if (rc == 0 && first_ok < 0) first_ok = (int)cap;
        if (rc != 0 && first_ok >= 0) bad_after_ok++;
        if (rc != 0 && e.status != 413) other_err++;
    }
    T_CHECK(first_ok > 0 && !bad_after_ok && !other_err, "arena sizes: 413 below %d bytes, ok above", first_ok);
}

/* ---- Writers ---------------------------------------------------------------------- */

static char out[1 << 16];
static json_tok tk[4096];

/* Parse out[0..n) (after an optional "data: " prefix); returns token count. */
static int reparse(const char *s, int n)
{
    json_parser p = {0};
    return json_parse(&p, s, (size_t)n, tk, 4096);
}

static int path(const char *js, const char *dotted)
{
    /* "choices.0.message.content" */
    int i = 0;
    char part[64];
    while (*dotted && i >= 0) {
        size_t l = strcspn(dotted, ".");
        snprintf(part, sizeof part, "%.*s", (int)l, dotted);
        if (tk[i].type == JSON_ARRAY)
            i = json_arr_get(tk, i, atoi(part));
        else
            i = json_obj_get(js, tk, i, part);
        dotted += l + (dotted[l] == '.');
    }
    return i;
}

static int is_str(const char *js, const char *p, const char *want)
{
    return json_tok_eq(js, tk, path(js, p), want) && json_tok_type(tk, path(js, p)) == JSON_STRING;
}

static long long get_i(const char *js, const char *p)
{
    long long v = -999;
    json_get_int64(js, tk, path(js, p), &v);
    return v;
}

static void test_write_chat(void)
{
    oai_resp r = {"chatcmpl-X", 1700000000, "m", "fp", false, false};
    oai_text t = {"Hel\"lo\n", 7, NULL, 0};
    oai_usage u = {9, 12, 4};
    int n = oai_chat_write(out, sizeof out, &r, &t, OAI_FINISH_STOP, &u);
    static const char want[] =
        "{\"id\":\"chatcmpl-X\",\"object\":\"chat.completion\",\"created\":1700000000,\"model\":\"m\","
        "\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"Hel\\\"lo\\n\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12,\"total_tokens\":21,"
        "\"prompt_tokens_details\":{\"cached_tokens\":4},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}";
    T_CHECK(n == (int)strlen(want) && !memcmp(out, want, (size_t)n), "chat.completion byte-exact");
    if (n > 0 && (n != (int)strlen(want) || memcmp(out, want, (size_t)n))) T_NOTE("%.*s", n, out);
    T_CHECK(oai_chat_write(out, (size_t)n - 1, &r, &t, OAI_FINISH_STOP, &u) == -1, "chat.completion: too small -> -1");

    /* With logprobs, parsed back. */
    oai_top_logprob top[2] = {{"Hi", 2, -0.1f}, {"Yo", 2, -2.5f}};
    oai_logprob lp[1] = {{"Hi", 2, -0.1f, top, 2, 0}};
    oai_text t2 = {"Hi", 2, lp, 1};
    r.logprobs = true;
    r.fingerprint = NULL;
    n = oai_chat_write(out, sizeof out, &r, &t2, OAI_FINISH_LENGTH, &u);
    T_CHECK(n > 0 && reparse(out, n) > 0, "chat with logprobs is JSON");
    T_CHECK(is_str(out, "choices.0.logprobs.content.0.token", "Hi") &&
                get_i(out, "choices.0.logprobs.content.0.bytes.1") == 'i' &&
                is_str(out, "choices.0.logprobs.content.0.top_logprobs.1.token", "Yo") &&
                json_is_null(tk, path(out, "choices.0.logprobs.refusal")),
            "chat logprobs fields");
    T_CHECK(is_str(out, "choices.0.finish_reason", "length") && json_is_null(tk, path(out, "system_fingerprint")),
            "finish length, null fingerprint");
}

static void test_write_chunks(void)
{
    oai_resp r = {"chatcmpl-X", 1700000000, "m", "fp", false, false};
    oai_text t = {"Hel", 3, NULL, 0};
    oai_usage u = {9, 12, 0};
    char all[4096];
    size_t pos = 0;
    int n;
    n = oai_chat_chunk_role(all + pos, sizeof all - pos, &r); pos += n > 0 ? n : 0;
    n = oai_chat_chunk_content(all + pos, sizeof all - pos, &r, &t); pos += n > 0 ? n : 0;
    n = oai_chat_chunk_finish(all + pos, sizeof all - pos, &r, OAI_FINISH_STOP); pos += n > 0 ? n : 0;
    n = oai_sse_done(all + pos, sizeof all - pos); pos += n > 0 ? n : 0;
    static const char want[] =
        "data: {\"id\":\"chatcmpl-X\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"chatcmpl-X\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"chatcmpl-X\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"m\",\"system_fingerprint\":\"fp\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    T_CHECK(pos == strlen(want) && !memcmp(all, want, pos), "chat stream sequence byte-exact (digest 1.4)");
    if (pos != strlen(want) || memcmp(all, want, pos)) T_NOTE("%.*s", (int)pos, all);

    /* include_usage: every chunk carries usage:null, then the usage chunk. */
    r.include_usage = true;
    n = oai_chat_chunk_content(out, sizeof out, &r, &t);
    T_CHECK(n > 8 && !memcmp(out + n - 15, "\"usage\":null}\n\n", 15), "include_usage: chunk ends with usage:null");
    n = oai_chat_chunk_usage(out, sizeof out, &r, &u);
    T_CHECK(n > 8 && !memcmp(out, "data: ", 6) && !memcmp(out + n - 2, "\n\n", 2) && reparse(out + 6, n - 8) > 0,
            "usage chunk is one SSE event");
    T_CHECK(OAI_SSE_PAYLOAD(out) == out + 6 && OAI_SSE_PAYLOAD_LEN(n) == (size_t)n - 8 &&
                out[6] == '{' && out[n - 3] == '}', "SSE payload macros");
    T_CHECK(tk[path(out + 6, "choices")].size == 0 && get_i(out + 6, "usage.total_tokens") == 21 &&
                is_str(out + 6, "object", "chat.completion.chunk"), "usage chunk: empty choices, totals");
    for (size_t cap = 0; cap < 40; cap++)
        if (oai_chat_chunk_role(out, cap, &r) != -1) { T_CHECK(0, "tiny cap %zu accepted", cap); break; }
    T_CHECK(1, "chunk with tiny caps -> -1");
}

static void test_write_cmpl(void)
{
    oai_resp r = {"cmpl-X", 1700000000, "m", NULL, false, false};
    oai_text t[2] = {{"one", 3, NULL, 0}, {"two", 3, NULL, 0}};
    oai_finish f[2] = {OAI_FINISH_LENGTH, OAI_FINISH_STOP};
    oai_usage u = {3, 5, 0};
    int n = oai_cmpl_write(out, sizeof out, &r, t, f, 2, &u);
    static const char want[] =
        "{\"id\":\"cmpl-X\",\"object\":\"text_completion\",\"created\":1700000000,\"model\":\"m\","
        "\"system_fingerprint\":null,\"choices\":[{\"text\":\"one\",\"index\":0,\"logprobs\":null,"
        "\"finish_reason\":\"length\"},{\"text\":\"two\",\"index\":1,\"logprobs\":null,\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}";
    T_CHECK(n == (int)strlen(want) && !memcmp(out, want, (size_t)n), "text_completion byte-exact");
    if (n > 0 && (n != (int)strlen(want) || memcmp(out, want, (size_t)n))) T_NOTE("%.*s", n, out);

    n = oai_cmpl_chunk(out, sizeof out, &r, 0, &t[0], OAI_FINISH_NONE);
    T_CHECK(n > 8 && reparse(out + 6, n - 8) > 0 && is_str(out + 6, "choices.0.text", "one") &&
                json_is_null(tk, path(out + 6, "choices.0.finish_reason")) &&
                is_str(out + 6, "object", "text_completion"), "completion chunk");
    n = oai_cmpl_chunk(out, sizeof out, &r, 0, NULL, OAI_FINISH_LENGTH);
    T_CHECK(n > 8 && reparse(out + 6, n - 8) > 0 && is_str(out + 6, "choices.0.text", "") &&
                is_str(out + 6, "choices.0.finish_reason", "length"), "completion final chunk");
    n = oai_cmpl_chunk_usage(out, sizeof out, &r, &u);
    T_CHECK(n > 8 && reparse(out + 6, n - 8) > 0 && get_i(out + 6, "usage.total_tokens") == 8 &&
                path(out + 6, "usage.prompt_tokens_details") < 0, "completion usage chunk");

    oai_top_logprob top[2] = {{" a", 2, -0.5f}, {" b", 2, -1.5f}};
    oai_logprob lp[2] = {{" a", 2, -0.5f, top, 2, 0}, {"!", 1, -0.25f, top, 1, 2}};
    oai_text tl = {" a!", 3, lp, 2};
    r.logprobs = true;
    n = oai_cmpl_write(out, sizeof out, &r, &tl, f, 1, &u);
    T_CHECK(n > 0 && reparse(out, n) > 0, "completion with logprobs is JSON");
    double d = 0;
    json_get_double(out, tk, path(out, "choices.0.logprobs.token_logprobs.1"), &d);
    T_CHECK(is_str(out, "choices.0.logprobs.tokens.1", "!") && d == -0.25 &&
                get_i(out, "choices.0.logprobs.text_offset.1") == 2 &&
                json_obj_get(out, tk, path(out, "choices.0.logprobs.top_logprobs.0"), " b") > 0,
            "completion logprobs fields");
}

static void test_write_misc(void)
{
    oai_error e;
    oai_error_set(&e, 400, "invalid_request_error", "invalid_value", "stop", "Bad \"%s\"", "x");
    int n = oai_error_write(&e, out, sizeof out);
    static const char want[] =
        "{\"error\":{\"message\":\"Bad \\\"x\\\"\",\"type\":\"invalid_request_error\",\"param\":\"stop\",\"code\":\"invalid_value\"}}";
    T_CHECK(n == (int)strlen(want) && !memcmp(out, want, (size_t)n), "error object byte-exact");
    oai_error_route(&e, "GET", "/v2/x");
    n = oai_error_write(&e, out, sizeof out);
    T_CHECK(n > 0 && reparse(out, n) > 0 && json_is_null(tk, path(out, "error.param")) &&
                json_is_null(tk, path(out, "error.code")) && e.status == 404, "route error: null param/code");
    n = oai_error_sse(&e, out, sizeof out);
    T_CHECK(n > 8 && !memcmp(out, "data: {\"error\":", 15) && !memcmp(out + n - 2, "\n\n", 2), "error SSE event");
    oai_error_context_exceeded(&e, "messages", 2048, 3000);
    T_CHECK(e.status == 400 && !strcmp(e.code, "context_length_exceeded") && !strcmp(e.param, "messages") &&
                strstr(e.message, "2048") && strstr(e.message, "3000"), "context_length_exceeded");
    oai_error_model_not_found(&e, "gpt-9");
    T_CHECK(e.status == 404 && !strcmp(e.code, "model_not_found") && strstr(e.message, "gpt-9"), "model_not_found");
    oai_error_invalid_api_key(&e, true);
    T_CHECK(e.status == 401 && !strcmp(e.code, "invalid_api_key"), "invalid_api_key");
    oai_error_overloaded(&e);
    T_CHECK(e.status == 429, "overloaded 429");
    oai_error_loading(&e);
    T_CHECK(e.status == 503, "loading 503");

    /* Embeddings: floats and base64 (1.0f = 00 00 80 3f -> "AACAPw=="). */
    float v0[3] = {1.0f, -0.5f, 0.25f}, v1[3] = {0, 0, 1.0f};
    const float *vs[2] = {v0, v1};
    n = oai_embd_write(out, sizeof out, "e5", vs, 2, 3, false, 7);
    static const char wantf[] =
        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,\"embedding\":[1,-0.5,0.25]},"
        "{\"object\":\"embedding\",\"index\":1,\"embedding\":[0,0,1]}],\"model\":\"e5\","
        "\"usage\":{\"prompt_tokens\":7,\"total_tokens\":7}}";
    T_CHECK(n == (int)strlen(wantf) && !memcmp(out, wantf, (size_t)n), "embeddings float byte-exact");
    if (n > 0 && (n != (int)strlen(wantf) || memcmp(out, wantf, (size_t)n))) T_NOTE("%.*s", n, out);
    float one[1] = {1.0f};
    const float *vo[1] = {one};
    n = oai_embd_write(out, sizeof out, "e5", vo, 1, 1, true, 1);
    T_CHECK(n > 0 && reparse(out, n) > 0 && is_str(out, "data.0.embedding", "AACAPw=="), "embeddings base64 1.0");
    n = oai_embd_write(out, sizeof out, "e5", vs, 2, 3, true, 7);
    T_CHECK(n > 0 && reparse(out, n) > 0 && is_str(out, "data.0.embedding", "AACAPwAAAL8AAIA+") &&
                get_i(out, "data.1.index") == 1, "embeddings base64 3 floats");
    int full = n;
    int fails = 0;
    for (int cap = 0; cap < full; cap++)
        if (oai_embd_write(out, (size_t)cap, "e5", vs, 2, 3, true, 7) != -1) fails++;
    T_CHECK(!fails, "embeddings base64: every short cap -> -1");

    oai_model_info m[2] = {{"tiny", 1700000000, "mote", 2048, 4096, NULL},
                           {"demo", 1, NULL, 256, 0, "smoke-test model"}};
    n = oai_model_write(out, sizeof out, &m[0]);
    static const char wantm[] =
        "{\"id\":\"tiny\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"mote\","
        "\"context_length\":2048,\"context_length_train\":4096}";
    T_CHECK(n == (int)strlen(wantm) && !memcmp(out, wantm, (size_t)n), "model object byte-exact");
    n = oai_models_write(out, sizeof out, m, 2);
    T_CHECK(n > 0 && reparse(out, n) > 0 && is_str(out, "object", "list") && is_str(out, "data.1.id", "demo") &&
                is_str(out, "data.1.description", "smoke-test model") && get_i(out, "data.1.context_length") == 256,
            "models list");
    n = oai_engines_write(out, sizeof out, m, 2);
    T_CHECK(n > 0 && reparse(out, n) > 0 && is_str(out, "data.0.object", "engine") &&
                json_tok_type(tk, path(out, "data.0.ready")) == JSON_TRUE, "engines list");

    char id[64];
    uint64_t rng = 42;
    oai_id_make(id, sizeof id, "chatcmpl-", &rng);
    char id2[64];
    oai_id_make(id2, sizeof id2, "chatcmpl-", &rng);
    T_CHECK(strlen(id) == 9 + 24 && !strncmp(id, "chatcmpl-", 9) && strcmp(id, id2), "ids: prefix + 24, distinct");
    oai_id_make(id, 5, "chatcmpl-", &rng);
    T_CHECK(strlen(id) == 4, "id truncated to cap");
}

int main(void)
{
    test_bad();
    test_messages();
    test_chat_ok();
    test_cmpl_ok();
    test_embd_ok();
    test_query();
    test_arena_sizes();
    test_write_chat();
    test_write_chunks();
    test_write_cmpl();
    test_write_misc();
    return t_done();
}
