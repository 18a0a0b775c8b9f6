/* oai.h — OpenAI API semantics: request bodies in, response objects out.
 *
 * No sockets and no model code: this module turns a JSON request body into
 * a validated request struct (or an OpenAI-shaped error with its HTTP
 * status), and writes the response objects and SSE events byte-exact to the
 * OpenAI wire format (../shared/OPENAI_API.md is the digest followed).
 *
 * MEMORY. Every parse takes a caller arena (fixed size, chosen from config).
 * The JSON tokens live at the top end of the arena while parsing and are
 * released before returning; decoded strings (NUL-terminated copies, escapes
 * resolved), message and prompt arrays are carved from the bottom end. A
 * request whose body does not fit gives 413 (code "request_too_large"). The
 * request struct stays valid until the arena is reset or reused; it never
 * points into the body, so the body may be freed right after parsing.
 * A rule of thumb for the arena size: 16 bytes per byte of body limit
 * (a body made only of one-digit token ids needs 10x for tokens + ids).
 *
 * VALIDATION follows the OpenAI API: unknown fields are ignored, null means
 * "not given", a wrong JSON type is 400 "invalid_type", a number out of range
 * is 400 "integer_below_min_value" / "decimal_above_max_value" / ..., a
 * value mote does not implement (n > 1, response_format json_object, image
 * parts, tools, suffix, best_of > 1) is 400 "unsupported_value" or
 * "unsupported_parameter", always naming the field in `param` with the
 * OpenAI path syntax ("messages[2].content[0].type").
 * Checks that need the model (token ids < vocab size, prompt length vs
 * context, unknown model id) belong to the caller; helpers below build those
 * errors.
 *
 * SERIALIZERS write whole objects into (out, cap) and return the length, or
 * -1 when cap is too small (nothing useful is left in out then). Field order
 * and names are OpenAI's. Text is escaped by the JSON writer; invalid UTF-8
 * becomes U+FFFD, so stream only complete UTF-8 sequences in content deltas
 * (json_utf8_complete_len). OAI_STR_BOUND(n) bounds the escaped size of n
 * bytes of text, for sizing output buffers.
 */
#ifndef MOTE_OAI_H
#define MOTE_OAI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Arena ----------------------------------------------------------------- */

typedef struct oai_arena {
    char *buf;
    size_t cap;
    size_t lo;   /* bytes used from the bottom (results) */
    size_t hi;   /* bytes used from the top (temporary: JSON tokens) */
} oai_arena;

/* buf must stay valid while the arena and anything parsed into it are used. */
void oai_arena_init(oai_arena *a, void *buf, size_t cap);
/* Forget every allocation (all request structs parsed into it die). */
void oai_arena_reset(oai_arena *a);
/* n bytes aligned to 8 from the bottom, or NULL when full. */
void *oai_arena_alloc(oai_arena *a, size_t n);

/* ---- Errors ---------------------------------------------------------------- */

typedef struct oai_error {
    int status;          /* HTTP status: 400, 401, 404, 413, 429, 500, 503... */
    const char *type;    /* static: "invalid_request_error", "server_error"... */
    const char *code;    /* static or NULL (JSON null) */
    char param[96];      /* "" means JSON null */
    char message[384];
} oai_error;

/* Fill e (status, type, code, param may be NULL) with a printf message. */
void oai_error_set(oai_error *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Common errors with OpenAI's wording. */
void oai_error_model_not_found(oai_error *e, const char *model);        /* 404 */
void oai_error_context_exceeded(oai_error *e, const char *param,
                                long n_ctx, long n_prompt);             /* 400 */
void oai_error_bad_token(oai_error *e, const char *param, long token,
                         long n_vocab);                                 /* 400 */
void oai_error_invalid_api_key(oai_error *e, bool key_given);           /* 401 */
void oai_error_route(oai_error *e, const char *method, const char *path); /* 404 */
void oai_error_method(oai_error *e, const char *method, const char *path); /* 405 */
void oai_error_overloaded(oai_error *e);                                 /* 429 */
void oai_error_loading(oai_error *e);                                    /* 503 */
void oai_error_server(oai_error *e, const char *what);                   /* 500 */

/* {"error":{"message":..,"type":..,"param":..,"code":..}}. Length or -1. */
int oai_error_write(const oai_error *e, char *out, size_t cap);
/* The same as an SSE event "data: {...}\n\n" (a failure mid-stream). */
int oai_error_sse(const oai_error *e, char *out, size_t cap);

/* ---- Request structs ------------------------------------------------------- */

/* A decoded string in the arena, NUL-terminated (it may also contain NUL
 * bytes from \u0000, so use len). ptr == NULL: absent or null. */
typedef struct oai_str {
    const char *ptr;
    size_t len;
} oai_str;

typedef enum oai_role {
    OAI_ROLE_SYSTEM,
    OAI_ROLE_DEVELOPER,
    OAI_ROLE_USER,
    OAI_ROLE_ASSISTANT,
    OAI_ROLE_TOOL,
    OAI_ROLE_FUNCTION   /* deprecated by OpenAI; carries name + content */
} oai_role;

/* "system", "developer", ... */
const char *oai_role_name(oai_role r);

typedef struct oai_message {
    oai_role role;
    oai_str content;       /* string content, or its text parts concatenated
                              with no separator; ptr NULL when null/absent
                              (assistant only) */
    oai_str name;          /* optional */
    oai_str tool_call_id;  /* tool messages (required there) */
    oai_str tool_calls;    /* assistant: the raw JSON array as sent, or NULL */
} oai_message;

typedef struct oai_bias {
    int32_t token;         /* >= 0; the caller checks it against the vocab */
    float bias;            /* -100..100, added to the logit */
} oai_bias;

#define OAI_STOP_MAX 4
#define OAI_PROMPTS_MAX 2048      /* prompts or embedding inputs per request */
#define OAI_MESSAGES_MAX 4096
#define OAI_TOP_LOGPROBS_MAX 20

/* Which optional sampling fields the request gave (not null). */
enum {
    OAI_SET_TEMPERATURE = 1u << 0,
    OAI_SET_TOP_P = 1u << 1,
    OAI_SET_PRESENCE = 1u << 2,
    OAI_SET_FREQUENCY = 1u << 3,
    OAI_SET_SEED = 1u << 4,
    OAI_SET_TOP_K = 1u << 5,          /* extension (llama.cpp name) */
    OAI_SET_MIN_P = 1u << 6,          /* extension */
    OAI_SET_REPEAT_PENALTY = 1u << 7, /* extension */
    OAI_SET_REPEAT_LAST_N = 1u << 8   /* extension */
};

/* Sampling parameters shared by chat and completions. A field whose bit is
 * not in `set` holds its OpenAI default, and the caller applies the model's
 * configured default instead. */
typedef struct oai_sampling {
    unsigned set;              /* OAI_SET_* */
    float temperature;         /* 0..2, default 1 */
    float top_p;               /* 0..1, default 1 */
    float presence_penalty;    /* -2..2, default 0 */
    float frequency_penalty;   /* -2..2, default 0 */
    long long seed;
    int top_k;                 /* >= 0, 0 = off */
    float min_p;               /* 0..1 */
    float repeat_penalty;      /* >= 0, 1 = off */
    int repeat_last_n;         /* >= -1, -1 = whole context */
    oai_str stop[OAI_STOP_MAX];  /* empty strings are dropped */
    int n_stop;
    oai_bias *logit_bias;      /* arena array, in request order */
    int n_logit_bias;
} oai_sampling;

typedef struct oai_chat_req {
    oai_str model;
    oai_message *messages;     /* arena array of n_messages >= 1 */
    int n_messages;
    int max_tokens;            /* max_completion_tokens, else max_tokens;
                                  0 = not given (until EOS or context end) */
    oai_sampling s;
    bool stream;
    bool include_usage;        /* stream_options.include_usage */
    bool logprobs;
    int top_logprobs;          /* 0..20, only with logprobs */
    oai_str user;
} oai_chat_req;

/* One prompt / embedding input: text, or token ids when tokens != NULL. */
typedef struct oai_prompt {
    oai_str text;
    const int32_t *tokens;     /* arena array; ids >= 0, vocab unchecked */
    int n_tokens;
} oai_prompt;

typedef struct oai_cmpl_req {
    oai_str model;             /* NULL when OAI_PARSE_MODEL_OPTIONAL and absent */
    oai_prompt *prompts;       /* arena array of n_prompts >= 1 */
    int n_prompts;
    int max_tokens;            /* default 16; 0 allowed (echo + logprobs) */
    oai_sampling s;
    bool stream;
    bool include_usage;
    bool echo;
    int logprobs;              /* -1 = none, else 0..5 alternatives */
    oai_str user;
} oai_cmpl_req;

typedef struct oai_embd_req {
    oai_str model;
    oai_prompt *inputs;        /* arena array of n_inputs >= 1; no empty input */
    int n_inputs;
    bool base64;               /* encoding_format "base64" (else "float") */
    int dimensions;            /* 0 = not given */
    oai_str user;
} oai_embd_req;

/* ---- Parsing --------------------------------------------------------------- */

/* Flags for the parse functions. */
enum {
    OAI_PARSE_MODEL_OPTIONAL = 1u << 0  /* model comes from the path (engines API) */
};

/* Parse and validate one request body. 0 on success (*out filled, strings in
 * the arena), -1 on failure (*err filled: 400 bad JSON or bad field, 413 the
 * arena is too small). The arena keeps its earlier allocations. */
int oai_chat_parse(oai_arena *a, const char *body, size_t len, unsigned flags,
                   oai_chat_req *out, oai_error *err);
int oai_cmpl_parse(oai_arena *a, const char *body, size_t len, unsigned flags,
                   oai_cmpl_req *out, oai_error *err);
int oai_embd_parse(oai_arena *a, const char *body, size_t len, unsigned flags,
                   oai_embd_req *out, oai_error *err);

/* The legacy GET form of /v1/engines/{model}/completions: an URL query
 * ("prompt=Hello%2C+you&max_tokens=32&echo=true", without '?') read as the
 * equivalent JSON body. Percent-escapes and '+' are decoded; prompt, stop,
 * suffix, user and model are strings (stop may repeat: an array); other
 * values are JSON literals (32, 0.9, true). Same result and errors as
 * oai_cmpl_parse with OAI_PARSE_MODEL_OPTIONAL. */
int oai_cmpl_parse_query(oai_arena *a, const char *query, size_t len,
                         oai_cmpl_req *out, oai_error *err);

/* ---- Response objects ------------------------------------------------------ */

/* Upper bound of the JSON-escaped size of n bytes of text, quotes included. */
#define OAI_STR_BOUND(n) (6 * (size_t)(n) + 2)

/* Identity shared by every object and chunk of one response. */
typedef struct oai_resp {
    const char *id;            /* "chatcmpl-..." / "cmpl-..." (oai_id_make) */
    long long created;         /* Unix seconds, same on every chunk */
    const char *model;         /* as the client named it */
    const char *fingerprint;   /* system_fingerprint; NULL writes null */
    bool include_usage;        /* stream: chunks carry "usage":null, then a usage chunk */
    bool logprobs;             /* choices carry logprobs objects instead of null */
} oai_resp;

typedef enum oai_finish {
    OAI_FINISH_NONE,           /* null: not finished */
    OAI_FINISH_STOP,           /* EOS or a stop sequence */
    OAI_FINISH_LENGTH,         /* max_tokens or the context end */
    OAI_FINISH_TOOL_CALLS,
    OAI_FINISH_CONTENT_FILTER
} oai_finish;

/* "stop", "length", ...; NULL for OAI_FINISH_NONE. */
const char *oai_finish_name(oai_finish f);

typedef struct oai_usage {
    int prompt_tokens;
    int completion_tokens;
    int cached_tokens;         /* prompt tokens served from the prefix cache */
} oai_usage;

typedef struct oai_top_logprob {
    const char *token;         /* token bytes (may be partial UTF-8) */
    size_t len;
    float logprob;
} oai_top_logprob;

/* One generated token with its log-probability and the alternatives. */
typedef struct oai_logprob {
    const char *token;
    size_t len;
    float logprob;
    const oai_top_logprob *top;
    int n_top;
    int text_offset;           /* completions: byte offset in the choice text */
} oai_logprob;

/* A generated text with its logprobs (lp may be NULL when r->logprobs is false). */
typedef struct oai_text {
    const char *text;
    size_t len;
    const oai_logprob *lp;
    int n_lp;
} oai_text;

/* Writes "<prefix><24 random [A-Za-z0-9]>" (e.g. "chatcmpl-", "cmpl-") NUL-
 * terminated; advances *rng (any seed; xorshift). cap >= strlen(prefix)+25. */
void oai_id_make(char *out, size_t cap, const char *prefix, uint64_t *rng);

/* chat.completion (non-streaming), one choice, index 0. */
int oai_chat_write(char *out, size_t cap, const oai_resp *r, const oai_text *t,
                   oai_finish finish, const oai_usage *u);

/* chat.completion.chunk SSE events, each "data: {...}\n\n":
 *   oai_chat_chunk_role     delta {"role":"assistant","content":""}
 *   oai_chat_chunk_content  delta {"content":text} (+ logprobs when r->logprobs)
 *   oai_chat_chunk_finish   delta {} and finish_reason
 *   oai_chat_chunk_usage    choices [] and usage (only when r->include_usage)
 * then oai_sse_done. */
int oai_chat_chunk_role(char *out, size_t cap, const oai_resp *r);
int oai_chat_chunk_content(char *out, size_t cap, const oai_resp *r, const oai_text *t);
int oai_chat_chunk_finish(char *out, size_t cap, const oai_resp *r, oai_finish finish);
int oai_chat_chunk_usage(char *out, size_t cap, const oai_resp *r, const oai_usage *u);

/* text_completion with choices[0..n) (choice i = texts[i], finish[i]). */
int oai_cmpl_write(char *out, size_t cap, const oai_resp *r, const oai_text *texts,
                   const oai_finish *finish, int n, const oai_usage *u);
/* text_completion stream events: partial text of choice `index` with
 * finish_reason null, or (finish != NONE) the last event of that choice with
 * its text (often empty); oai_cmpl_chunk_usage as for chat. */
int oai_cmpl_chunk(char *out, size_t cap, const oai_resp *r, int index,
                   const oai_text *t, oai_finish finish);
int oai_cmpl_chunk_usage(char *out, size_t cap, const oai_resp *r, const oai_usage *u);

/* "data: [DONE]\n\n" */
int oai_sse_done(char *out, size_t cap);

/* Every SSE writer above frames its event as "data: " + JSON + "\n\n". For a
 * transport that adds the framing itself (loop_sse_data), the bare payload of
 * an event of n bytes written at buf is (OAI_SSE_PAYLOAD(buf), OAI_SSE_PAYLOAD_LEN(n)). */
#define OAI_SSE_PAYLOAD(buf) ((buf) + 6)
#define OAI_SSE_PAYLOAD_LEN(n) ((size_t)(n) - 8)

/* {"object":"list","data":[{"object":"embedding","index":i,"embedding":...}],
 * "model":..,"usage":{"prompt_tokens":..,"total_tokens":..}}; vecs[i] has dim
 * floats; base64 = little-endian float32 bytes. */
int oai_embd_write(char *out, size_t cap, const char *model, const float *const *vecs,
                   int n, int dim, bool base64, int prompt_tokens);

typedef struct oai_model_info {
    const char *id;
    long long created;         /* Unix seconds (file mtime) */
    const char *owned_by;      /* e.g. "mote" */
    int context_length;        /* running context per slot */
    int context_length_train;  /* from the GGUF, 0 = unknown */
    const char *description;   /* NULL = none (the demo model says what it is) */
} oai_model_info;

/* {"id","object":"model","created","owned_by","context_length",
 *  ["context_length_train"], ["description"]} */
int oai_model_write(char *out, size_t cap, const oai_model_info *m);
/* {"object":"list","data":[model...]} */
int oai_models_write(char *out, size_t cap, const oai_model_info *m, int n);
/* Legacy /v1/engines/list: {"object":"list","data":[{"id","object":"engine",
 * "owner","ready":true}]} */
int oai_engines_write(char *out, size_t cap, const oai_model_info *m, int n);

#endif
