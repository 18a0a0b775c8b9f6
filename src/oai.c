/* oai.c — OpenAI request validation and response serialization.
 *
 * Sections: arena; errors; the parse context and typed field readers;
 * chat / completions / embeddings parsers; the URL-query form; response
 * writers. Error wording copies the shape of OpenAI's own messages
 * ("Invalid type for 'max_tokens': expected an integer, but got a string
 * instead.") because clients and people grep for them.
 */
#include "oai.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "json.h"

/* ---- Arena ----------------------------------------------------------------- */

#define ALIGN8(n) (((n) + 7u) & ~(size_t)7u)

void oai_arena_init(oai_arena *a, void *buf, size_t cap)
{
    /* The bottom starts 8-aligned; the usable size is trimmed so the top is too. */
    uintptr_t p = (uintptr_t)buf, q = (p + 7u) & ~(uintptr_t)7u;
    size_t skip = (size_t)(q - p);
    a->buf = (char *)buf + (skip <= cap ? skip : cap);
    a->cap = skip <= cap ? (cap - skip) & ~(size_t)7u : 0;
    a->lo = a->hi = 0;
}

void oai_arena_reset(oai_arena *a)
{
    a->lo = a->hi = 0;
}

void *oai_arena_alloc(oai_arena *a, size_t n)
{
    size_t need = ALIGN8(n);
    if (n > a->cap || need > a->cap - a->lo - a->hi) return NULL;
    void *p = a->buf + a->lo;
    a->lo += need;
    return p;
}

/* Temporary allocation from the top (tokens, the query's JSON text). */
static void *arena_top_alloc(oai_arena *a, size_t n)
{
    size_t need = ALIGN8(n);
    if (n > a->cap || need > a->cap - a->lo - a->hi) return NULL;
    a->hi += need;
    return a->buf + a->cap - a->hi;
}

/* Shrink the most recent bottom allocation p to n bytes. */
static void arena_trim(oai_arena *a, void *p, size_t n)
{
    size_t off = (size_t)((char *)p - a->buf);
    a->lo = off + ALIGN8(n);
}

/* ---- Errors ---------------------------------------------------------------- */

static const char T_INVALID[] = "invalid_request_error";

void oai_error_set(oai_error *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    e->type = type;
    e->code = code;
    snprintf(e->param, sizeof e->param, "%s", param ? param : "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void oai_error_model_not_found(oai_error *e, const char *model)
{
    oai_error_set(e, 404, T_INVALID, "model_not_found", NULL,
                  "The model `%.200s` does not exist or you do not have access to it.", model);
}

void oai_error_context_exceeded(oai_error *e, const char *param, long n_ctx, long n_prompt)
{
    oai_error_set(e, 400, T_INVALID, "context_length_exceeded", param,
                  "This model's maximum context length is %ld tokens. However, your "
                  "request resulted in %ld tokens. Please reduce the length of the %s.",
                  n_ctx, n_prompt, param && *param ? param : "prompt");
}

void oai_error_bad_token(oai_error *e, const char *param, long token, long n_vocab)
{
    oai_error_set(e, 400, T_INVALID, "invalid_value", param,
                  "Invalid token id %ld in '%s': the model's vocabulary has %ld tokens.",
                  token, param, n_vocab);
}

void oai_error_invalid_api_key(oai_error *e, bool key_given)
{
    if (key_given)
        oai_error_set(e, 401, T_INVALID, "invalid_api_key", NULL, "Incorrect API key provided.");
    else
        oai_error_set(e, 401, T_INVALID, "invalid_api_key", NULL,
                      "You didn't provide an API key. You need to provide your API key in an "
                      "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).");
}

void oai_error_route(oai_error *e, const char *method, const char *path)
{
    oai_error_set(e, 404, T_INVALID, NULL, NULL, "Invalid URL (%.16s %.200s)", method, path);
}

void oai_error_method(oai_error *e, const char *method, const char *path)
{
    oai_error_set(e, 405, T_INVALID, "method_not_allowed", NULL,
                  "Method %.16s is not allowed for %.200s.", method, path);
}

void oai_error_overloaded(oai_error *e)
{
    oai_error_set(e, 429, "rate_limit_error", "rate_limit_exceeded", NULL,
                  "The server is busy: every slot and the queue are full. Retry later.");
}

void oai_error_loading(oai_error *e)
{
    oai_error_set(e, 503, "unavailable_error", "model_loading", NULL, "Loading model");
}

void oai_error_server(oai_error *e, const char *what)
{
    oai_error_set(e, 500, "server_error", NULL, NULL,
                  "The server had an error while processing your request: %.300s", what);
}

static void write_error_obj(json_writer *w, const oai_error *e)
{
    json_write_obj_begin(w);
    json_write_key(w, "error");
    json_write_obj_begin(w);
    json_write_key(w, "message");
    json_write_str(w, e->message);
    json_write_key(w, "type");
    json_write_str(w, e->type ? e->type : "server_error");
    json_write_key(w, "param");
    json_write_str(w, e->param[0] ? e->param : NULL);
    json_write_key(w, "code");
    json_write_str(w, e->code);
    json_write_obj_end(w);
    json_write_obj_end(w);
}

/* ---- Parse context ----------------------------------------------------------- */

typedef struct pctx {
    oai_arena *a;
    const char *js;
    json_tok *t;
    oai_error *err;
} pctx;

/* Field readers return 0 (value read), 1 (absent or null: keep the default)
 * or -1 (error set). */
enum { GOT = 0, NONE = 1, BAD = -1 };

static const char *got_name(const pctx *p, int i)
{
    switch (p->t[i].type) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    case JSON_NUMBER:
        for (int k = p->t[i].start; k < p->t[i].end; k++)
            if (p->js[k] == '.' || p->js[k] == 'e' || p->js[k] == 'E') return "a decimal";
        return "an integer";
    default: return "an unknown value";
    }
}

static int fail_type(pctx *p, const char *param, int i, const char *expected)
{
    oai_error_set(p->err, 400, T_INVALID, "invalid_type", param,
                  "Invalid type for '%s': expected %s, but got %s instead.",
                  param, expected, got_name(p, i));
    return BAD;
}

static int fail_missing(pctx *p, const char *param)
{
    oai_error_set(p->err, 400, T_INVALID, "missing_required_parameter", param,
                  "Missing required parameter: '%s'.", param);
    return BAD;
}

static int fail_nomem(pctx *p)
{
    oai_error_set(p->err, 413, T_INVALID, "request_too_large", NULL,
                  "The request is too large for this server's request memory.");
    return BAD;
}

/* Raw text of token i, clipped, for messages ("got 3.5 instead"). */
static const char *tok_text(const pctx *p, int i, char *buf, size_t cap)
{
    int n = p->t[i].end - p->t[i].start;
    snprintf(buf, cap, "%.*s", n > 40 ? 40 : n, p->js + p->t[i].start);
    return buf;
}

static int fail_range(pctx *p, const char *param, int i, bool integer, bool above, double bound)
{
    char got[48];
    oai_error_set(p->err, 400, T_INVALID,
                  integer ? (above ? "integer_above_max_value" : "integer_below_min_value")
                          : (above ? "decimal_above_max_value" : "decimal_below_min_value"),
                  param, "Invalid '%s': %s %s %s value. Expected a value %s %.17g, but got %s instead.",
                  param, integer ? "integer" : "decimal", above ? "above" : "below",
                  above ? "maximum" : "minimum", above ? "<=" : ">=", bound,
                  tok_text(p, i, got, sizeof got));
    return BAD;
}

/* A decoded copy of string token i in the arena. */
static int copy_str(pctx *p, int i, oai_str *out)
{
    size_t raw = (size_t)(p->t[i].end - p->t[i].start);
    char *s = oai_arena_alloc(p->a, raw + 1);
    if (!s) return fail_nomem(p);
    int n = json_string_unescape(p->js, p->t, i, s, raw + 1);
    if (n < 0) return fail_nomem(p); /* cannot happen: decoded <= raw */
    arena_trim(p->a, s, (size_t)n + 1);
    out->ptr = s;
    out->len = (size_t)n;
    return GOT;
}

static int get_str(pctx *p, int i, const char *param, oai_str *out)
{
    if (i < 0 || p->t[i].type == JSON_NULL) return NONE;
    if (p->t[i].type != JSON_STRING) return fail_type(p, param, i, "a string");
    return copy_str(p, i, out);
}

static int get_bool(pctx *p, int i, const char *param, bool *out)
{
    if (i < 0 || p->t[i].type == JSON_NULL) return NONE;
    if (p->t[i].type != JSON_TRUE && p->t[i].type != JSON_FALSE)
        return fail_type(p, param, i, "a boolean");
    *out = p->t[i].type == JSON_TRUE;
    return GOT;
}

static int get_int(pctx *p, int i, const char *param, long long lo, long long hi, long long *out)
{
    long long v;
    if (i < 0 || p->t[i].type == JSON_NULL) return NONE;
    if (p->t[i].type != JSON_NUMBER) return fail_type(p, param, i, "an integer");
    int rc = json_get_int64(p->js, p->t, i, &v);
    if (rc == JSON_ERR_NOTINT) return fail_type(p, param, i, "an integer");
    if (rc == JSON_ERR_RANGE) return fail_range(p, param, i, true, p->js[p->t[i].start] != '-',
                                                p->js[p->t[i].start] != '-' ? (double)hi : (double)lo);
    if (rc < 0) return fail_type(p, param, i, "an integer");
    if (v < lo) return fail_range(p, param, i, true, false, (double)lo);
    if (v > hi) return fail_range(p, param, i, true, true, (double)hi);
    *out = v;
    return GOT;
}

static int get_num(pctx *p, int i, const char *param, double lo, double hi, float *out)
{
    double v;
    if (i < 0 || p->t[i].type == JSON_NULL) return NONE;
    if (p->t[i].type != JSON_NUMBER) return fail_type(p, param, i, "a number");
    int rc = json_get_double(p->js, p->t, i, &v);
    if (rc < 0 && rc != JSON_ERR_RANGE) return fail_type(p, param, i, "a number");
    if (rc == JSON_ERR_RANGE) v = p->js[p->t[i].start] == '-' ? -HUGE_VAL : HUGE_VAL;
    if (v < lo) return fail_range(p, param, i, false, false, lo);
    if (v > hi) return fail_range(p, param, i, false, true, hi);
    *out = (float)v;
    return GOT;
}

static int get_int_field(pctx *p, int obj, const char *key, long long lo, long long hi, int *out)
{
    long long v;
    int rc = get_int(p, json_obj_get(p->js, p->t, obj, key), key, lo, hi, &v);
    if (rc == GOT) *out = (int)v;
    return rc;
}

/* Parse body into the top of the arena; root must be an object. Returns the
 * root index 0 or BAD. */
static int ctx_begin(pctx *p, oai_arena *a, const char *body, size_t len, oai_error *err)
{
    json_parser jp = {0};
    p->a = a;
    p->js = body;
    p->err = err;
    p->t = NULL;
    int n = json_parse(&jp, body, len, NULL, 0);
    if (n == JSON_ERR_NOMEM) return fail_nomem(p); /* longer than JSON_MAX_LEN */
    if (n < 0) {
        oai_error_set(err, 400, T_INVALID, NULL, NULL,
                      "We could not parse the JSON body of your request: %s at byte %zu. "
                      "(HINT: This likely means you aren't using your HTTP library correctly. "
                      "The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
                      json_strerror(n), jp.err_pos);
        return BAD;
    }
    if ((size_t)n > SIZE_MAX / sizeof(json_tok)) return fail_nomem(p);
    p->t = arena_top_alloc(a, (size_t)n * sizeof(json_tok));
    if (!p->t) return fail_nomem(p);
    if (json_parse(&jp, body, len, p->t, n) != n) return fail_nomem(p); /* cannot happen */
    if (p->t[0].type != JSON_OBJECT) {
        oai_error_set(err, 400, T_INVALID, "invalid_type", NULL,
                      "Invalid type for request body: expected an object, but got %s instead.",
                      got_name(p, 0));
        return BAD;
    }
    return 0;
}

static int parse_model(pctx *p, unsigned flags, oai_str *out)
{
    int i = json_obj_get(p->js, p->t, 0, "model");
    int rc = get_str(p, i, "model", out);
    if (rc == BAD) return BAD;
    if (rc == NONE || out->len == 0) {
        out->ptr = NULL;
        out->len = 0;
        if (flags & OAI_PARSE_MODEL_OPTIONAL) return GOT;
        oai_error_set(p->err, 400, T_INVALID, "missing_required_parameter", "model",
                      "You must provide a model parameter.");
        return BAD;
    }
    return GOT;
}

/* ---- Shared fields ------------------------------------------------------------ */

static int parse_stop(pctx *p, oai_sampling *s)
{
    int i = json_obj_get(p->js, p->t, 0, "stop");
    oai_str one = {0};
    if (i < 0 || p->t[i].type == JSON_NULL) return GOT;
    if (p->t[i].type == JSON_STRING) {
        if (copy_str(p, i, &one) == BAD) return BAD;
        if (one.len) s->stop[s->n_stop++] = one;
        return GOT;
    }
    if (p->t[i].type != JSON_ARRAY)
        return fail_type(p, "stop", i, "one of a string or array of strings");
    if (p->t[i].size > OAI_STOP_MAX) {
        oai_error_set(p->err, 400, T_INVALID, "array_above_max_length", "stop",
                      "Invalid 'stop': array too long. Expected an array with maximum length %d, "
                      "but got an array with length %d instead.", OAI_STOP_MAX, p->t[i].size);
        return BAD;
    }
    JSON_ARR_FOREACH(p->t, i, e, k) {
        char param[32];
        snprintf(param, sizeof param, "stop[%d]", k);
        if (p->t[e].type != JSON_STRING) return fail_type(p, param, e, "a string");
        if (copy_str(p, e, &one) == BAD) return BAD;
        if (one.len) s->stop[s->n_stop++] = one;
    }
    return GOT;
}

static int parse_logit_bias(pctx *p, oai_sampling *s)
{
    int o = json_obj_get(p->js, p->t, 0, "logit_bias");
    if (o < 0 || p->t[o].type == JSON_NULL) return GOT;
    if (p->t[o].type != JSON_OBJECT) return fail_type(p, "logit_bias", o, "an object");
    if (p->t[o].size == 0) return GOT;
    s->logit_bias = oai_arena_alloc(p->a, (size_t)p->t[o].size * sizeof(oai_bias));
    if (!s->logit_bias) return fail_nomem(p);
    JSON_OBJ_FOREACH(p->t, o, k, n) {
        /* Keys are token ids written as non-negative decimal integers. */
        char key[16];
        int kl = json_string_unescape(p->js, p->t, k, key, sizeof key);
        long long id = -1;
        if (kl > 0 && kl <= 10) {
            id = 0;
            for (int c = 0; c < kl; c++) {
                if (key[c] < '0' || key[c] > '9') { id = -1; break; }
                id = id * 10 + (key[c] - '0');
            }
        }
        if (id < 0 || id > INT32_MAX) {
            char raw[48];
            oai_error_set(p->err, 400, T_INVALID, "invalid_value", "logit_bias",
                          "Invalid key in 'logit_bias': %s. You should only be submitting "
                          "non-negative integers.", tok_text(p, k, raw, sizeof raw));
            return BAD;
        }
        float b = 0;
        if (get_num(p, k + 1, "logit_bias", -100, 100, &b) == BAD) return BAD;
        if (p->t[k + 1].type == JSON_NULL) return fail_type(p, "logit_bias", k + 1, "a number");
        s->logit_bias[n].token = (int32_t)id;
        s->logit_bias[n].bias = b;
        s->n_logit_bias = n + 1;
    }
    return GOT;
}

static int parse_sampling(pctx *p, oai_sampling *s)
{
    memset(s, 0, sizeof *s);
    s->temperature = 1.0f;
    s->top_p = 1.0f;
    s->repeat_penalty = 1.0f;
    s->repeat_last_n = 64;
    s->min_p = 0.0f;

    static const struct {
        const char *key;
        unsigned bit;
        double lo, hi;
        size_t off;
    } nums[] = {
        {"temperature", OAI_SET_TEMPERATURE, 0, 2, offsetof(oai_sampling, temperature)},
        {"top_p", OAI_SET_TOP_P, 0, 1, offsetof(oai_sampling, top_p)},
        {"presence_penalty", OAI_SET_PRESENCE, -2, 2, offsetof(oai_sampling, presence_penalty)},
        {"frequency_penalty", OAI_SET_FREQUENCY, -2, 2, offsetof(oai_sampling, frequency_penalty)},
        {"min_p", OAI_SET_MIN_P, 0, 1, offsetof(oai_sampling, min_p)},
        {"repeat_penalty", OAI_SET_REPEAT_PENALTY, 0, 10, offsetof(oai_sampling, repeat_penalty)},
    };
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        int i = json_obj_get(p->js, p->t, 0, nums[k].key);
        int rc = get_num(p, i, nums[k].key, nums[k].lo, nums[k].hi,
                         (float *)((char *)s + nums[k].off));
        if (rc == BAD) return BAD;
        if (rc == GOT) s->set |= nums[k].bit;
    }
    int rc = get_int(p, json_obj_get(p->js, p->t, 0, "seed"), "seed", LLONG_MIN, LLONG_MAX, &s->seed);
    if (rc == BAD) return BAD;
    if (rc == GOT) s->set |= OAI_SET_SEED;
    rc = get_int_field(p, 0, "top_k", 0, INT_MAX, &s->top_k);
    if (rc == BAD) return BAD;
    if (rc == GOT) s->set |= OAI_SET_TOP_K;
    rc = get_int_field(p, 0, "repeat_last_n", -1, INT_MAX, &s->repeat_last_n);
    if (rc == BAD) return BAD;
    if (rc == GOT) s->set |= OAI_SET_REPEAT_LAST_N;
    if (parse_stop(p, s) == BAD) return BAD;
    return parse_logit_bias(p, s);
}

/* n: OpenAI allows 1..128; mote generates one choice per prompt. */
static int parse_n(pctx *p)
{
    int n = 1;
    if (get_int_field(p, 0, "n", 1, 128, &n) == BAD) return BAD;
    if (n != 1) {
        oai_error_set(p->err, 400, T_INVALID, "unsupported_value", "n",
                      "Unsupported value: 'n' must be 1 on this server (got %d).", n);
        return BAD;
    }
    return GOT;
}

static int parse_stream(pctx *p, bool *stream, bool *include_usage)
{
    *stream = false;
    *include_usage = false;
    if (get_bool(p, json_obj_get(p->js, p->t, 0, "stream"), "stream", stream) == BAD) return BAD;
    int o = json_obj_get(p->js, p->t, 0, "stream_options");
    if (o < 0 || p->t[o].type == JSON_NULL) return GOT;
    if (p->t[o].type != JSON_OBJECT) return fail_type(p, "stream_options", o, "an object");
    if (!*stream) {
        oai_error_set(p->err, 400, T_INVALID, "invalid_value", "stream_options",
                      "The 'stream_options' parameter is only allowed when 'stream' is enabled.");
        return BAD;
    }
    int i = json_obj_get(p->js, p->t, o, "include_usage");
    if (get_bool(p, i, "stream_options.include_usage", include_usage) == BAD) return BAD;
    return GOT;
}

static int parse_user(pctx *p, oai_str *user)
{
    return get_str(p, json_obj_get(p->js, p->t, 0, "user"), "user", user) == BAD ? BAD : GOT;
}

/* ---- Chat completions ---------------------------------------------------------- */

static const char *const role_names[] = {"system", "developer", "user", "assistant", "tool", "function"};

const char *oai_role_name(oai_role r)
{
    return (unsigned)r < sizeof role_names / sizeof role_names[0] ? role_names[r] : "unknown";
}

/* content: string, or array of parts whose text is concatenated. */
static int parse_content(pctx *p, int i, const char *mparam, bool optional, oai_str *out)
{
    char param[64];
    snprintf(param, sizeof param, "%s.content", mparam);
    out->ptr = NULL;
    out->len = 0;
    if (i < 0) return optional ? GOT : fail_missing(p, param);
    if (p->t[i].type == JSON_NULL) {
        if (optional) return GOT;
        return fail_type(p, param, i, "one of a string or array of objects");
    }
    if (p->t[i].type == JSON_STRING) return copy_str(p, i, out);
    if (p->t[i].type != JSON_ARRAY) return fail_type(p, param, i, "one of a string or array of objects");
    if (p->t[i].size == 0) {
        oai_error_set(p->err, 400, T_INVALID, "empty_array", param,
                      "Invalid '%s': empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.", param);
        return BAD;
    }
    /* Room for every part's raw text: decoded text is never longer. */
    size_t room = 1;
    JSON_ARR_FOREACH(p->t, i, e, k) room += (size_t)(p->t[e].end - p->t[e].start);
    char *buf = oai_arena_alloc(p->a, room);
    if (!buf) return fail_nomem(p);
    size_t used = 0;
    JSON_ARR_FOREACH(p->t, i, e, k) {
        char pp[96];
        snprintf(pp, sizeof pp, "%s[%d]", param, k);
        if (p->t[e].type != JSON_OBJECT) return fail_type(p, pp, e, "an object");
        int ty = json_obj_get(p->js, p->t, e, "type");
        char tp[112];
        snprintf(tp, sizeof tp, "%s.type", pp);
        if (ty < 0) return fail_missing(p, tp);
        if (p->t[ty].type != JSON_STRING) return fail_type(p, tp, ty, "a string");
        const char *field = NULL;
        if (json_tok_eq(p->js, p->t, ty, "text")) field = "text";
        else if (json_tok_eq(p->js, p->t, ty, "refusal")) field = "refusal";
        else if (json_tok_eq(p->js, p->t, ty, "image_url") || json_tok_eq(p->js, p->t, ty, "input_audio") ||
                 json_tok_eq(p->js, p->t, ty, "file")) {
            char v[48];
            oai_error_set(p->err, 400, T_INVALID, "unsupported_value", tp,
                          "Unsupported value: content parts of type '%s' are not supported by "
                          "this server (text only).", tok_text(p, ty, v, sizeof v));
            return BAD;
        } else {
            char v[48];
            oai_error_set(p->err, 400, T_INVALID, "invalid_value", tp,
                          "Invalid value: '%s'. Supported values are: 'text', 'image_url', "
                          "'input_audio', 'refusal', and 'file'.", tok_text(p, ty, v, sizeof v));
            return BAD;
        }
        int tx = json_obj_get(p->js, p->t, e, field);
        char xp[112];
        snprintf(xp, sizeof xp, "%s.%s", pp, field);
        if (tx < 0) return fail_missing(p, xp);
        if (p->t[tx].type != JSON_STRING) return fail_type(p, xp, tx, "a string");
        int n = json_string_unescape(p->js, p->t, tx, buf + used, room - used);
        if (n < 0) return fail_nomem(p); /* cannot happen */
        used += (size_t)n;
    }
    buf[used] = 0;
    arena_trim(p->a, buf, used + 1);
    out->ptr = buf;
    out->len = used;
    return GOT;
}

static int parse_message(pctx *p, int m, int k, oai_message *msg)
{
    char mp[32], param[64];
    snprintf(mp, sizeof mp, "messages[%d]", k);
    memset(msg, 0, sizeof *msg);
    if (p->t[m].type != JSON_OBJECT) return fail_type(p, mp, m, "an object");

    int r = json_obj_get(p->js, p->t, m, "role");
    snprintf(param, sizeof param, "%s.role", mp);
    if (r < 0 || p->t[r].type == JSON_NULL) return fail_missing(p, param);
    if (p->t[r].type != JSON_STRING) return fail_type(p, param, r, "a string");
    int role = -1;
    for (int j = 0; j < (int)(sizeof role_names / sizeof role_names[0]); j++)
        if (json_tok_eq(p->js, p->t, r, role_names[j])) role = j;
    if (role < 0) {
        char v[48];
        oai_error_set(p->err, 400, T_INVALID, "invalid_value", param,
                      "Invalid value: '%s'. Supported values are: 'system', 'assistant', 'user', "
                      "'function', 'tool', and 'developer'.", tok_text(p, r, v, sizeof v));
        return BAD;
    }
    msg->role = (oai_role)role;

    int c = json_obj_get(p->js, p->t, m, "content");
    if (parse_content(p, c, mp, role == OAI_ROLE_ASSISTANT, &msg->content) == BAD) return BAD;

    snprintf(param, sizeof param, "%s.name", mp);
    int nm = json_obj_get(p->js, p->t, m, "name");
    if (get_str(p, nm, param, &msg->name) == BAD) return BAD;
    if (role == OAI_ROLE_FUNCTION && !msg->name.ptr) return fail_missing(p, param);

    snprintf(param, sizeof param, "%s.tool_call_id", mp);
    int tc = json_obj_get(p->js, p->t, m, "tool_call_id");
    if (get_str(p, tc, param, &msg->tool_call_id) == BAD) return BAD;
    if (role == OAI_ROLE_TOOL && !msg->tool_call_id.ptr) return fail_missing(p, param);

    if (role == OAI_ROLE_ASSISTANT) {
        /* Kept verbatim for chat templates that render earlier tool calls. */
        int calls = json_obj_get(p->js, p->t, m, "tool_calls");
        snprintf(param, sizeof param, "%s.tool_calls", mp);
        if (calls >= 0 && p->t[calls].type != JSON_NULL) {
            if (p->t[calls].type != JSON_ARRAY) return fail_type(p, param, calls, "an array");
            size_t n = (size_t)(p->t[calls].end - p->t[calls].start);
            char *s = oai_arena_alloc(p->a, n + 1);
            if (!s) return fail_nomem(p);
            memcpy(s, p->js + p->t[calls].start, n);
            s[n] = 0;
            msg->tool_calls.ptr = s;
            msg->tool_calls.len = n;
        }
    }
    return GOT;
}

/* tools / functions: accepted only when empty or disabled by tool_choice "none". */
static int parse_tools(pctx *p)
{
    static const char *const keys[] = {"tools", "functions"};
    int choice = json_obj_get(p->js, p->t, 0, "tool_choice");
    bool none = json_tok_eq(p->js, p->t, choice, "none");
    for (int k = 0; k < 2; k++) {
        int i = json_obj_get(p->js, p->t, 0, keys[k]);
        if (i < 0 || p->t[i].type == JSON_NULL) continue;
        if (p->t[i].type != JSON_ARRAY) return fail_type(p, keys[k], i, "an array");
        if (p->t[i].size > 0 && !none) {
            oai_error_set(p->err, 400, T_INVALID, "unsupported_parameter", keys[k],
                          "Unsupported parameter: '%s' (function calling) is not supported by "
                          "this server yet.", keys[k]);
            return BAD;
        }
    }
    return GOT;
}

static int parse_response_format(pctx *p)
{
    int o = json_obj_get(p->js, p->t, 0, "response_format");
    if (o < 0 || p->t[o].type == JSON_NULL) return GOT;
    if (p->t[o].type != JSON_OBJECT) return fail_type(p, "response_format", o, "an object");
    int ty = json_obj_get(p->js, p->t, o, "type");
    if (ty < 0) return fail_missing(p, "response_format.type");
    if (p->t[ty].type != JSON_STRING) return fail_type(p, "response_format.type", ty, "a string");
    if (json_tok_eq(p->js, p->t, ty, "text")) return GOT;
    char v[48];
    if (json_tok_eq(p->js, p->t, ty, "json_object") || json_tok_eq(p->js, p->t, ty, "json_schema")) {
        oai_error_set(p->err, 400, T_INVALID, "unsupported_value", "response_format.type",
                      "Unsupported value: 'response_format.type' does not support '%s' on this "
                      "server (constrained output is not implemented); supported: 'text'.",
                      tok_text(p, ty, v, sizeof v));
        return BAD;
    }
    oai_error_set(p->err, 400, T_INVALID, "invalid_value", "response_format.type",
                  "Invalid value: '%s'. Supported values are: 'text', 'json_object', and 'json_schema'.",
                  tok_text(p, ty, v, sizeof v));
    return BAD;
}

static int chat_fields(pctx *p, unsigned flags, oai_chat_req *out)
{
    if (parse_model(p, flags, &out->model) == BAD) return BAD;

    int ms = json_obj_get(p->js, p->t, 0, "messages");
    if (ms < 0 || p->t[ms].type == JSON_NULL) return fail_missing(p, "messages");
    if (p->t[ms].type != JSON_ARRAY) return fail_type(p, "messages", ms, "an array");
    if (p->t[ms].size == 0) {
        oai_error_set(p->err, 400, T_INVALID, "empty_array", "messages",
                      "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.");
        return BAD;
    }
    if (p->t[ms].size > OAI_MESSAGES_MAX) {
        oai_error_set(p->err, 400, T_INVALID, "array_above_max_length", "messages",
                      "Invalid 'messages': array too long. Expected an array with maximum length %d, "
                      "but got an array with length %d instead.", OAI_MESSAGES_MAX, p->t[ms].size);
        return BAD;
    }
    out->messages = oai_arena_alloc(p->a, (size_t)p->t[ms].size * sizeof(oai_message));
    if (!out->messages) return fail_nomem(p);
    JSON_ARR_FOREACH(p->t, ms, m, k) {
        if (parse_message(p, m, k, &out->messages[k]) == BAD) return BAD;
        out->n_messages = k + 1;
    }

    int mt = 0, mct = 0;
    if (get_int_field(p, 0, "max_tokens", 1, INT_MAX, &mt) == BAD) return BAD;
    if (get_int_field(p, 0, "max_completion_tokens", 1, INT_MAX, &mct) == BAD) return BAD;
    out->max_tokens = mct ? mct : mt;

    if (parse_sampling(p, &out->s) == BAD) return BAD;
    if (parse_n(p) == BAD) return BAD;
    if (parse_stream(p, &out->stream, &out->include_usage) == BAD) return BAD;

    int lp = json_obj_get(p->js, p->t, 0, "logprobs");
    if (get_bool(p, lp, "logprobs", &out->logprobs) == BAD) return BAD;
    int tl = json_obj_get(p->js, p->t, 0, "top_logprobs");
    int rc = get_int_field(p, 0, "top_logprobs", 0, OAI_TOP_LOGPROBS_MAX, &out->top_logprobs);
    if (rc == BAD) return BAD;
    if (rc == GOT && !out->logprobs) {
        oai_error_set(p->err, 400, T_INVALID, "invalid_value", "top_logprobs",
                      "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
                      "'top_logprobs' is used.");
        (void)tl;
        return BAD;
    }
    if (parse_response_format(p) == BAD) return BAD;
    if (parse_tools(p) == BAD) return BAD;
    return parse_user(p, &out->user);
}

/* Run one endpoint's field parser between the common begin and end: tokens
 * are released either way, results are kept only on success. */
#define PARSE_BODY(fields_call)                                          \
    do {                                                                 \
        pctx p;                                                          \
        size_t lo0 = a->lo, hi0 = a->hi;                                 \
        memset(out, 0, sizeof *out);                                     \
        int rc_ = ctx_begin(&p, a, body, len, err);                      \
        if (rc_ != BAD) rc_ = (fields_call);                             \
        a->hi = hi0;                                                     \
        if (rc_ == BAD) {                                                \
            a->lo = lo0;                                                 \
            return -1;                                                   \
        }                                                                \
        return 0;                                                        \
    } while (0)

int oai_chat_parse(oai_arena *a, const char *body, size_t len, unsigned flags,
                   oai_chat_req *out, oai_error *err)
{
    PARSE_BODY(chat_fields(&p, flags, out));
}

/* ---- Completions and embeddings ------------------------------------------------- */

/* Token array at i (all integers in [0, INT32_MAX]) into the arena. */
static int parse_tokens(pctx *p, int i, const char *param, oai_prompt *out)
{
    if (p->t[i].size == 0) {
        oai_error_set(p->err, 400, T_INVALID, "empty_array", param,
                      "Invalid '%s': empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.", param);
        return BAD;
    }
    int32_t *ids = oai_arena_alloc(p->a, (size_t)p->t[i].size * sizeof(int32_t));
    if (!ids) return fail_nomem(p);
    JSON_ARR_FOREACH(p->t, i, e, k) {
        char ep[48];
        long long v;
        snprintf(ep, sizeof ep, "%s[%d]", param, k);
        if (p->t[e].type == JSON_NULL) return fail_type(p, ep, e, "an integer");
        if (get_int(p, e, ep, 0, INT32_MAX, &v) == BAD) return BAD;
        ids[k] = (int32_t)v;
    }
    out->tokens = ids;
    out->n_tokens = p->t[i].size;
    return GOT;
}

/* prompt / input: string | string[] | int[] | int[][]. */
static int parse_prompts(pctx *p, const char *key, bool allow_empty_text,
                         oai_prompt **outp, int *n_out)
{
    static const char expected[] =
        "one of a string, array of strings, array of integers, or array of arrays of integers";
    int i = json_obj_get(p->js, p->t, 0, key);
    if (i < 0 || p->t[i].type == JSON_NULL) return fail_missing(p, key);
    int n = p->t[i].type == JSON_STRING ? 1 : p->t[i].type == JSON_ARRAY ? p->t[i].size : -1;
    if (n < 0) return fail_type(p, key, i, expected);
    if (n == 0) {
        oai_error_set(p->err, 400, T_INVALID, "empty_array", key,
                      "Invalid '%s': empty array. Expected an array with minimum length 1, "
                      "but got an empty array instead.", key);
        return BAD;
    }
    json_type first = p->t[i].type == JSON_ARRAY ? p->t[i + 1].type : JSON_STRING;
    bool one_token_list = p->t[i].type == JSON_ARRAY && first == JSON_NUMBER;
    if (one_token_list) n = 1;
    if (n > OAI_PROMPTS_MAX) {
        oai_error_set(p->err, 400, T_INVALID, "array_above_max_length", key,
                      "Invalid '%s': array too long. Expected an array with maximum length %d, "
                      "but got an array with length %d instead.", key, OAI_PROMPTS_MAX, n);
        return BAD;
    }
    oai_prompt *ps = oai_arena_alloc(p->a, (size_t)n * sizeof(oai_prompt));
    if (!ps) return fail_nomem(p);
    memset(ps, 0, (size_t)n * sizeof(oai_prompt));
    *outp = ps;
    *n_out = n;

    if (p->t[i].type == JSON_STRING) {
        if (copy_str(p, i, &ps[0].text) == BAD) return BAD;
    } else if (one_token_list) {
        if (parse_tokens(p, i, key, &ps[0]) == BAD) return BAD;
    } else if (first == JSON_STRING || first == JSON_ARRAY) {
        JSON_ARR_FOREACH(p->t, i, e, k) {
            char ep[48];
            snprintf(ep, sizeof ep, "%s[%d]", key, k);
            if (p->t[e].type != first)
                return fail_type(p, ep, e, first == JSON_STRING ? "a string" : "an array of integers");
            if (first == JSON_STRING) {
                if (copy_str(p, e, &ps[k].text) == BAD) return BAD;
            } else if (parse_tokens(p, e, ep, &ps[k]) == BAD) {
                return BAD;
            }
        }
    } else {
        return fail_type(p, key, i, expected);
    }
    if (!allow_empty_text) {
        for (int k = 0; k < n; k++) {
            if (ps[k].tokens || ps[k].text.len) continue;
            char ep[48];
            snprintf(ep, sizeof ep, p->t[i].type == JSON_ARRAY ? "%s[%d]" : "%s", key, k);
            oai_error_set(p->err, 400, T_INVALID, "invalid_value", ep,
                          "Invalid '%s': empty string. Expected a string with minimum length 1.", ep);
            return BAD;
        }
    }
    return GOT;
}

static int cmpl_fields(pctx *p, unsigned flags, oai_cmpl_req *out)
{
    if (parse_model(p, flags, &out->model) == BAD) return BAD;
    if (parse_prompts(p, "prompt", true, &out->prompts, &out->n_prompts) == BAD) return BAD;
    out->max_tokens = 16;
    if (get_int_field(p, 0, "max_tokens", 0, INT_MAX, &out->max_tokens) == BAD) return BAD;
    if (parse_sampling(p, &out->s) == BAD) return BAD;
    if (parse_n(p) == BAD) return BAD;
    if (parse_stream(p, &out->stream, &out->include_usage) == BAD) return BAD;

    int best_of = 1;
    if (get_int_field(p, 0, "best_of", 1, 20, &best_of) == BAD) return BAD;
    if (best_of != 1) {
        oai_error_set(p->err, 400, T_INVALID, "unsupported_value", "best_of",
                      "Unsupported value: 'best_of' must be 1 on this server (got %d).", best_of);
        return BAD;
    }
    if (get_bool(p, json_obj_get(p->js, p->t, 0, "echo"), "echo", &out->echo) == BAD) return BAD;
    out->logprobs = -1;
    if (get_int_field(p, 0, "logprobs", 0, 5, &out->logprobs) == BAD) return BAD;

    oai_str suffix = {0};
    if (get_str(p, json_obj_get(p->js, p->t, 0, "suffix"), "suffix", &suffix) == BAD) return BAD;
    if (suffix.len) {
        oai_error_set(p->err, 400, T_INVALID, "unsupported_value", "suffix",
                      "Unsupported value: 'suffix' (insertion) is not supported by this server.");
        return BAD;
    }
    return parse_user(p, &out->user);
}

int oai_cmpl_parse(oai_arena *a, const char *body, size_t len, unsigned flags,
                   oai_cmpl_req *out, oai_error *err)
{
    PARSE_BODY(cmpl_fields(&p, flags, out));
}

static int embd_fields(pctx *p, unsigned flags, oai_embd_req *out)
{
    if (parse_model(p, flags, &out->model) == BAD) return BAD;
    if (parse_prompts(p, "input", false, &out->inputs, &out->n_inputs) == BAD) return BAD;
    int ef = json_obj_get(p->js, p->t, 0, "encoding_format");
    if (ef >= 0 && p->t[ef].type != JSON_NULL) {
        if (p->t[ef].type != JSON_STRING) return fail_type(p, "encoding_format", ef, "a string");
        if (json_tok_eq(p->js, p->t, ef, "base64")) {
            out->base64 = true;
        } else if (!json_tok_eq(p->js, p->t, ef, "float")) {
            char v[48];
            oai_error_set(p->err, 400, T_INVALID, "invalid_value", "encoding_format",
                          "Invalid value: '%s'. Supported values are: 'float' and 'base64'.",
                          tok_text(p, ef, v, sizeof v));
            return BAD;
        }
    }
    if (get_int_field(p, 0, "dimensions", 1, INT_MAX, &out->dimensions) == BAD) return BAD;
    return parse_user(p, &out->user);
}

int oai_embd_parse(oai_arena *a, const char *body, size_t len, unsigned flags,
                   oai_embd_req *out, oai_error *err)
{
    PARSE_BODY(embd_fields(&p, flags, out));
}

/* ---- URL query form (legacy engines GET) ------------------------------------------ */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode s[0..n) (percent-escapes, '+' = space) into out (>= n bytes); returns
 * the length or -1 on a bad escape. */
static long url_decode(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '+') {
            out[o++] = ' ';
        } else if (s[k] == '%') {
            if (k + 2 >= n) return -1;
            int h = hexval((unsigned char)s[k + 1]), l = hexval((unsigned char)s[k + 2]);
            if (h < 0 || l < 0) return -1;
            out[o++] = (char)(h * 16 + l);
            k += 2;
        } else {
            out[o++] = s[k];
        }
    }
    return (long)o;
}

static bool query_is_string_key(const char *k, size_t n)
{
    static const char *const keys[] = {"prompt", "stop", "suffix", "user", "model"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strlen(keys[i]) == n && !memcmp(keys[i], k, n)) return true;
    return false;
}

/* Is v[0..n) a single JSON scalar literal (number, true, false, null)? */
static bool is_json_literal(const char *v, size_t n)
{
    json_parser jp = {0};
    json_tok t[1];
    if (n == 0 || v[0] == '"' || v[0] == '[' || v[0] == '{') return false;
    return json_parse(&jp, v, n, t, 1) == 1 && t[0].start == 0 && (size_t)t[0].end == n;
}

int oai_cmpl_parse_query(oai_arena *a, const char *query, size_t len,
                         oai_cmpl_req *out, oai_error *err)
{
    size_t hi0 = a->hi;
    /* Worst case per input byte: 6 output bytes (\u00XX), plus punctuation. */
    size_t cap = len > (SIZE_MAX - 64) / 8 ? 0 : 8 * len + 64;
    char *scratch = cap ? arena_top_alloc(a, len + 1) : NULL;
    char *json = cap ? arena_top_alloc(a, cap) : NULL;
    if (!scratch || !json) {
        a->hi = hi0;
        memset(out, 0, sizeof *out);
        oai_error_set(err, 413, T_INVALID, "request_too_large", NULL,
                      "The request is too large for this server's request memory.");
        return -1;
    }
    json_writer w;
    json_writer_init(&w, json, cap);
    json_write_obj_begin(&w);
    int n_stop = 0;
    /* Pass 0 writes every key but stop; pass 1 writes the stops as an array. */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && n_stop == 0) break;
        if (pass == 1) {
            json_write_key(&w, "stop");
            if (n_stop > 1) json_write_arr_begin(&w);
        }
        size_t k = 0;
        while (k < len) {
            size_t e = k;
            while (e < len && query[e] != '&') e++;
            size_t eq = k;
            while (eq < e && query[eq] != '=') eq++;
            const char *ks = query + k, *vs = eq < e ? query + eq + 1 : query + e;
            size_t kn = eq - k, vn = eq < e ? e - eq - 1 : 0;
            k = e + 1;
            if (kn == 0) continue;
            long kl = url_decode(ks, kn, scratch);
            if (kl < 0) goto bad_escape;
            bool is_stop = kl == 4 && !memcmp(scratch, "stop", 4);
            if (pass == 0 && is_stop) {
                n_stop++;
                continue;
            }
            if (pass != (is_stop ? 1 : 0)) continue;
            bool str = query_is_string_key(scratch, (size_t)kl);
            if (!is_stop) json_write_keyn(&w, scratch, (size_t)kl);
            long vl = url_decode(vs, vn, scratch);
            if (vl < 0) goto bad_escape;
            if (str)
                json_write_strn(&w, scratch, (size_t)vl);
            else if (vl == 0)
                json_write_null(&w);
            else if (is_json_literal(scratch, (size_t)vl))
                json_write_raw(&w, scratch, (size_t)vl);
            else
                json_write_strn(&w, scratch, (size_t)vl);
        }
        if (pass == 1 && n_stop > 1) json_write_arr_end(&w);
    }
    json_write_obj_end(&w);
    if (json_writer_finish(&w) < 0) {
        a->hi = hi0;
        memset(out, 0, sizeof *out);
        oai_error_server(err, "query conversion overflow");
        return -1;
    }
    int rc = oai_cmpl_parse(a, json, w.len, OAI_PARSE_MODEL_OPTIONAL, out, err);
    a->hi = hi0;
    return rc;

bad_escape:
    a->hi = hi0;
    memset(out, 0, sizeof *out);
    oai_error_set(err, 400, T_INVALID, "invalid_value", NULL,
                  "Invalid URL query: a '%%' escape is not followed by two hex digits.");
    return -1;
}

/* ---- Response writers -------------------------------------------------------------- */

static const char *const finish_names[] = {NULL, "stop", "length", "tool_calls", "content_filter"};

const char *oai_finish_name(oai_finish f)
{
    return (unsigned)f < sizeof finish_names / sizeof finish_names[0] ? finish_names[f] : NULL;
}

void oai_id_make(char *out, size_t cap, const char *prefix, uint64_t *rng)
{
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = strlen(prefix);
    if (cap == 0) return;
    if (n >= cap) n = cap - 1;
    memcpy(out, prefix, n);
    uint64_t x = *rng ? *rng : 0x9E3779B97F4A7C15ull;
    for (int k = 0; k < 24 && n + 1 < cap; k++) {
        x ^= x << 13; /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        out[n++] = alnum[(x >> 32) % 62];
    }
    out[n] = 0;
    *rng = x;
}

/* Finish a writer: length, or -1 on overflow/misuse. */
static int wr_done(const json_writer *w)
{
    return json_writer_finish(w) < 0 || w->len > INT_MAX ? -1 : (int)w->len;
}

/* SSE framing: "data: " + document + "\n\n", the writer runs in between. */
static const char SSE_PRE[] = "data: ";
#define SSE_PRE_LEN (sizeof SSE_PRE - 1)

static bool sse_begin(json_writer *w, char *out, size_t cap)
{
    if (cap < SSE_PRE_LEN + 2) return false;
    memcpy(out, SSE_PRE, SSE_PRE_LEN);
    json_writer_init(w, out + SSE_PRE_LEN, cap - SSE_PRE_LEN - 2);
    return true;
}

static int sse_end(const json_writer *w, char *out)
{
    if (wr_done(w) < 0) return -1;
    size_t n = SSE_PRE_LEN + w->len;
    out[n] = '\n';
    out[n + 1] = '\n';
    return n + 2 > INT_MAX ? -1 : (int)(n + 2);
}

int oai_error_write(const oai_error *e, char *out, size_t cap)
{
    json_writer w;
    json_writer_init(&w, out, cap);
    write_error_obj(&w, e);
    return wr_done(&w);
}

int oai_error_sse(const oai_error *e, char *out, size_t cap)
{
    json_writer w;
    if (!sse_begin(&w, out, cap)) return -1;
    write_error_obj(&w, e);
    return sse_end(&w, out);
}

int oai_sse_done(char *out, size_t cap)
{
    static const char done[] = "data: [DONE]\n\n";
    if (cap < sizeof done - 1) return -1;
    memcpy(out, done, sizeof done - 1);
    return (int)(sizeof done - 1);
}

static void write_usage(json_writer *w, const oai_usage *u, bool details)
{
    json_write_obj_begin(w);
    json_write_key(w, "prompt_tokens");
    json_write_int(w, u->prompt_tokens);
    json_write_key(w, "completion_tokens");
    json_write_int(w, u->completion_tokens);
    json_write_key(w, "total_tokens");
    json_write_int(w, (long long)u->prompt_tokens + u->completion_tokens);
    if (details) {
        json_write_key(w, "prompt_tokens_details");
        json_write_obj_begin(w);
        json_write_key(w, "cached_tokens");
        json_write_int(w, u->cached_tokens);
        json_write_obj_end(w);
        json_write_key(w, "completion_tokens_details");
        json_write_obj_begin(w);
        json_write_key(w, "reasoning_tokens");
        json_write_int(w, 0);
        json_write_obj_end(w);
    }
    json_write_obj_end(w);
}

/* id, object, created, model, system_fingerprint */
static void write_head(json_writer *w, const oai_resp *r, const char *object)
{
    json_write_key(w, "id");
    json_write_str(w, r->id);
    json_write_key(w, "object");
    json_write_str(w, object);
    json_write_key(w, "created");
    json_write_int(w, r->created);
    json_write_key(w, "model");
    json_write_str(w, r->model);
    json_write_key(w, "system_fingerprint");
    json_write_str(w, r->fingerprint);
}

static void write_bytes(json_writer *w, const char *s, size_t n)
{
    json_write_arr_begin(w);
    for (size_t k = 0; k < n; k++) json_write_int(w, (unsigned char)s[k]);
    json_write_arr_end(w);
}

/* Log-probabilities are finite; a -inf (impossible token) prints as the
 * most negative float OpenAI clients can parse instead of null. */
static void write_logprob_value(json_writer *w, float lp)
{
    json_write_float(w, isfinite(lp) ? lp : -9999.0f);
}

/* Chat: {"content":[{"token","logprob","bytes","top_logprobs":[...]}],"refusal":null} */
static void write_chat_logprobs(json_writer *w, const oai_resp *r, const oai_text *t)
{
    if (!r->logprobs || !t) {
        json_write_null(w);
        return;
    }
    json_write_obj_begin(w);
    json_write_key(w, "content");
    json_write_arr_begin(w);
    for (int k = 0; k < t->n_lp; k++) {
        const oai_logprob *l = &t->lp[k];
        json_write_obj_begin(w);
        json_write_key(w, "token");
        json_write_strn(w, l->token, l->len);
        json_write_key(w, "logprob");
        write_logprob_value(w, l->logprob);
        json_write_key(w, "bytes");
        write_bytes(w, l->token, l->len);
        json_write_key(w, "top_logprobs");
        json_write_arr_begin(w);
        for (int j = 0; j < l->n_top; j++) {
            json_write_obj_begin(w);
            json_write_key(w, "token");
            json_write_strn(w, l->top[j].token, l->top[j].len);
            json_write_key(w, "logprob");
            write_logprob_value(w, l->top[j].logprob);
            json_write_key(w, "bytes");
            write_bytes(w, l->top[j].token, l->top[j].len);
            json_write_obj_end(w);
        }
        json_write_arr_end(w);
        json_write_obj_end(w);
    }
    json_write_arr_end(w);
    json_write_key(w, "refusal");
    json_write_null(w);
    json_write_obj_end(w);
}

int oai_chat_write(char *out, size_t cap, const oai_resp *r, const oai_text *t,
                   oai_finish finish, const oai_usage *u)
{
    json_writer w;
    json_writer_init(&w, out, cap);
    json_write_obj_begin(&w);
    write_head(&w, r, "chat.completion");
    json_write_key(&w, "choices");
    json_write_arr_begin(&w);
    json_write_obj_begin(&w);
    json_write_key(&w, "index");
    json_write_int(&w, 0);
    json_write_key(&w, "message");
    json_write_obj_begin(&w);
    json_write_key(&w, "role");
    json_write_str(&w, "assistant");
    json_write_key(&w, "content");
    json_write_strn(&w, t->text ? t->text : "", t->len);
    json_write_key(&w, "refusal");
    json_write_null(&w);
    json_write_obj_end(&w);
    json_write_key(&w, "logprobs");
    write_chat_logprobs(&w, r, t);
    json_write_key(&w, "finish_reason");
    json_write_str(&w, oai_finish_name(finish));
    json_write_obj_end(&w);
    json_write_arr_end(&w);
    json_write_key(&w, "usage");
    write_usage(&w, u, true);
    json_write_obj_end(&w);
    return wr_done(&w);
}

/* One chat chunk with a single choice; kind: 0 role, 1 content, 2 finish. */
static int chat_chunk(char *out, size_t cap, const oai_resp *r, int kind, const oai_text *t,
                      oai_finish finish)
{
    json_writer w;
    if (!sse_begin(&w, out, cap)) return -1;
    json_write_obj_begin(&w);
    write_head(&w, r, "chat.completion.chunk");
    json_write_key(&w, "choices");
    json_write_arr_begin(&w);
    json_write_obj_begin(&w);
    json_write_key(&w, "index");
    json_write_int(&w, 0);
    json_write_key(&w, "delta");
    json_write_obj_begin(&w);
    if (kind == 0) {
        json_write_key(&w, "role");
        json_write_str(&w, "assistant");
        json_write_key(&w, "content");
        json_write_str(&w, "");
    } else if (kind == 1) {
        json_write_key(&w, "content");
        json_write_strn(&w, t->text ? t->text : "", t->len);
    }
    json_write_obj_end(&w);
    json_write_key(&w, "logprobs");
    if (kind == 1)
        write_chat_logprobs(&w, r, t);
    else
        json_write_null(&w);
    json_write_key(&w, "finish_reason");
    json_write_str(&w, kind == 2 ? oai_finish_name(finish) : NULL);
    json_write_obj_end(&w);
    json_write_arr_end(&w);
    if (r->include_usage) {
        json_write_key(&w, "usage");
        json_write_null(&w);
    }
    json_write_obj_end(&w);
    return sse_end(&w, out);
}

int oai_chat_chunk_role(char *out, size_t cap, const oai_resp *r)
{
    return chat_chunk(out, cap, r, 0, NULL, OAI_FINISH_NONE);
}

int oai_chat_chunk_content(char *out, size_t cap, const oai_resp *r, const oai_text *t)
{
    return chat_chunk(out, cap, r, 1, t, OAI_FINISH_NONE);
}

int oai_chat_chunk_finish(char *out, size_t cap, const oai_resp *r, oai_finish finish)
{
    return chat_chunk(out, cap, r, 2, NULL, finish);
}

static int usage_chunk(char *out, size_t cap, const oai_resp *r, const char *object,
                       const oai_usage *u, bool details)
{
    json_writer w;
    if (!sse_begin(&w, out, cap)) return -1;
    json_write_obj_begin(&w);
    write_head(&w, r, object);
    json_write_key(&w, "choices");
    json_write_arr_begin(&w);
    json_write_arr_end(&w);
    json_write_key(&w, "usage");
    write_usage(&w, u, details);
    json_write_obj_end(&w);
    return sse_end(&w, out);
}

int oai_chat_chunk_usage(char *out, size_t cap, const oai_resp *r, const oai_usage *u)
{
    return usage_chunk(out, cap, r, "chat.completion.chunk", u, true);
}

/* Completions: {"tokens":[..],"token_logprobs":[..],"top_logprobs":[{tok:lp}],"text_offset":[..]} */
static void write_cmpl_logprobs(json_writer *w, const oai_resp *r, const oai_text *t)
{
    if (!r->logprobs || !t) {
        json_write_null(w);
        return;
    }
    json_write_obj_begin(w);
    json_write_key(w, "tokens");
    json_write_arr_begin(w);
    for (int k = 0; k < t->n_lp; k++) json_write_strn(w, t->lp[k].token, t->lp[k].len);
    json_write_arr_end(w);
    json_write_key(w, "token_logprobs");
    json_write_arr_begin(w);
    for (int k = 0; k < t->n_lp; k++) write_logprob_value(w, t->lp[k].logprob);
    json_write_arr_end(w);
    json_write_key(w, "top_logprobs");
    json_write_arr_begin(w);
    for (int k = 0; k < t->n_lp; k++) {
        json_write_obj_begin(w);
        for (int j = 0; j < t->lp[k].n_top; j++) {
            json_write_keyn(w, t->lp[k].top[j].token, t->lp[k].top[j].len);
            write_logprob_value(w, t->lp[k].top[j].logprob);
        }
        json_write_obj_end(w);
    }
    json_write_arr_end(w);
    json_write_key(w, "text_offset");
    json_write_arr_begin(w);
    for (int k = 0; k < t->n_lp; k++) json_write_int(w, t->lp[k].text_offset);
    json_write_arr_end(w);
    json_write_obj_end(w);
}

static void write_cmpl_choice(json_writer *w, const oai_resp *r, int index, const oai_text *t,
                              oai_finish finish)
{
    json_write_obj_begin(w);
    json_write_key(w, "text");
    json_write_strn(w, t && t->text ? t->text : "", t ? t->len : 0);
    json_write_key(w, "index");
    json_write_int(w, index);
    json_write_key(w, "logprobs");
    write_cmpl_logprobs(w, r, t);
    json_write_key(w, "finish_reason");
    json_write_str(w, oai_finish_name(finish));
    json_write_obj_end(w);
}

int oai_cmpl_write(char *out, size_t cap, const oai_resp *r, const oai_text *texts,
                   const oai_finish *finish, int n, const oai_usage *u)
{
    json_writer w;
    json_writer_init(&w, out, cap);
    json_write_obj_begin(&w);
    write_head(&w, r, "text_completion");
    json_write_key(&w, "choices");
    json_write_arr_begin(&w);
    for (int k = 0; k < n; k++) write_cmpl_choice(&w, r, k, &texts[k], finish[k]);
    json_write_arr_end(&w);
    json_write_key(&w, "usage");
    write_usage(&w, u, false);
    json_write_obj_end(&w);
    return wr_done(&w);
}

int oai_cmpl_chunk(char *out, size_t cap, const oai_resp *r, int index, const oai_text *t,
                   oai_finish finish)
{
    json_writer w;
    if (!sse_begin(&w, out, cap)) return -1;
    json_write_obj_begin(&w);
    write_head(&w, r, "text_completion");
    json_write_key(&w, "choices");
    json_write_arr_begin(&w);
    write_cmpl_choice(&w, r, index, t, finish);
    json_write_arr_end(&w);
    if (r->include_usage) {
        json_write_key(&w, "usage");
        json_write_null(&w);
    }
    json_write_obj_end(&w);
    return sse_end(&w, out);
}

int oai_cmpl_chunk_usage(char *out, size_t cap, const oai_resp *r, const oai_usage *u)
{
    return usage_chunk(out, cap, r, "text_completion", u, false);
}

/* Standard base64 of n bytes into out (4 * ceil(n / 3) bytes). */
static void base64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, k = 0;
    for (; k + 3 <= n; k += 3) {
        uint32_t v = (uint32_t)in[k] << 16 | (uint32_t)in[k + 1] << 8 | in[k + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (n - k == 1) {
        uint32_t v = (uint32_t)in[k] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - k == 2) {
        uint32_t v = (uint32_t)in[k] << 16 | (uint32_t)in[k + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = '=';
    }
}

/* The base64 text of one vector goes straight into the writer's buffer:
 * an empty raw value makes the writer place the separator and account for
 * the key, then the quoted text is appended in groups of 3 floats (12 bytes
 * -> 16 characters). Returns false on overflow. */
static bool write_b64_floats(json_writer *w, const float *v, int dim)
{
    json_write_raw(w, "", 0);
    if (json_writer_error(w) < 0) return false;
    size_t need = 2 + 4 * (((size_t)dim * 4 + 2) / 3);
    if (need > w->cap - w->len) return false;
    char *o = w->buf + w->len;
    *o++ = '"';
    for (int k = 0; k < dim; k += 3) {
        unsigned char b[12];
        int m = dim - k < 3 ? dim - k : 3;
        for (int j = 0; j < m; j++) {
            uint32_t u;
            memcpy(&u, &v[k + j], 4);
            b[4 * j] = (unsigned char)u; /* little-endian regardless of host */
            b[4 * j + 1] = (unsigned char)(u >> 8);
            b[4 * j + 2] = (unsigned char)(u >> 16);
            b[4 * j + 3] = (unsigned char)(u >> 24);
        }
        base64_encode(b, (size_t)m * 4, o);
        o += 4 * (((size_t)m * 4 + 2) / 3);
    }
    *o++ = '"';
    w->len = (size_t)(o - w->buf);
    return true;
}

int oai_embd_write(char *out, size_t cap, const char *model, const float *const *vecs,
                   int n, int dim, bool base64, int prompt_tokens)
{
    json_writer w;
    json_writer_init(&w, out, cap);
    json_write_obj_begin(&w);
    json_write_key(&w, "object");
    json_write_str(&w, "list");
    json_write_key(&w, "data");
    json_write_arr_begin(&w);
    for (int k = 0; k < n; k++) {
        json_write_obj_begin(&w);
        json_write_key(&w, "object");
        json_write_str(&w, "embedding");
        json_write_key(&w, "index");
        json_write_int(&w, k);
        json_write_key(&w, "embedding");
        if (base64) {
            if (!write_b64_floats(&w, vecs[k], dim)) return -1;
        } else {
            json_write_arr_begin(&w);
            for (int j = 0; j < dim; j++) json_write_float(&w, vecs[k][j]);
            json_write_arr_end(&w);
        }
        json_write_obj_end(&w);
    }
    json_write_arr_end(&w);
    json_write_key(&w, "model");
    json_write_str(&w, model);
    json_write_key(&w, "usage");
    json_write_obj_begin(&w);
    json_write_key(&w, "prompt_tokens");
    json_write_int(&w, prompt_tokens);
    json_write_key(&w, "total_tokens");
    json_write_int(&w, prompt_tokens);
    json_write_obj_end(&w);
    json_write_obj_end(&w);
    return wr_done(&w);
}

static void write_model_obj(json_writer *w, const oai_model_info *m)
{
    json_write_obj_begin(w);
    json_write_key(w, "id");
    json_write_str(w, m->id);
    json_write_key(w, "object");
    json_write_str(w, "model");
    json_write_key(w, "created");
    json_write_int(w, m->created);
    json_write_key(w, "owned_by");
    json_write_str(w, m->owned_by ? m->owned_by : "mote");
    json_write_key(w, "context_length");
    json_write_int(w, m->context_length);
    if (m->context_length_train > 0) {
        json_write_key(w, "context_length_train");
        json_write_int(w, m->context_length_train);
    }
    if (m->description) {
        json_write_key(w, "description");
        json_write_str(w, m->description);
    }
    json_write_obj_end(w);
}

int oai_model_write(char *out, size_t cap, const oai_model_info *m)
{
    json_writer w;
    json_writer_init(&w, out, cap);
    write_model_obj(&w, m);
    return wr_done(&w);
}

int oai_models_write(char *out, size_t cap, const oai_model_info *m, int n)
{
    json_writer w;
    json_writer_init(&w, out, cap);
    json_write_obj_begin(&w);
    json_write_key(&w, "object");
    json_write_str(&w, "list");
    json_write_key(&w, "data");
    json_write_arr_begin(&w);
    for (int k = 0; k < n; k++) write_model_obj(&w, &m[k]);
    json_write_arr_end(&w);
    json_write_obj_end(&w);
    return wr_done(&w);
}

int oai_engines_write(char *out, size_t cap, const oai_model_info *m, int n)
{
    json_writer w;
    json_writer_init(&w, out, cap);
    json_write_obj_begin(&w);
    json_write_key(&w, "object");
    json_write_str(&w, "list");
    json_write_key(&w, "data");
    json_write_arr_begin(&w);
    for (int k = 0; k < n; k++) {
        json_write_obj_begin(&w);
        json_write_key(&w, "id");
        json_write_str(&w, m[k].id);
        json_write_key(&w, "object");
        json_write_str(&w, "engine");
        json_write_key(&w, "owner");
        json_write_str(&w, m[k].owned_by ? m[k].owned_by : "mote");
        json_write_key(&w, "ready");
        json_write_bool(&w, 1);
        json_write_obj_end(&w);
    }
    json_write_arr_end(&w);
    json_write_obj_end(&w);
    return wr_done(&w);
}
