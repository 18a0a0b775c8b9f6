/* chat_tmpl.h — chat templates: a small Jinja2 interpreter for the
 * `tokenizer.chat_template` of GGUF models (Hugging Face convention).
 *
 * The server renders the conversation with the model's template before
 * tokenizing. The output is meant to be byte-identical to Hugging Face
 * transformers' apply_chat_template, i.e. Python Jinja2 3.1 in an
 * ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks on, the
 * loopcontrols extension ({% break %}, {% continue %}), a no-op
 * {% generation %} tag, globals raise_exception() and strftime_now(), and
 * HF's tojson (json.dumps, ensure_ascii=False, ", " / ": " separators).
 * Optional flags reproduce llama.cpp's pre/post-processing on top of that.
 *
 * SUPPORTED JINJA2 SUBSET
 *   statements  if/elif/else, for (tuple unpacking, `for x in y if c`, else,
 *               loop.index/index0/revindex/revindex0/first/last/length/
 *               previtem/nextitem/cycle), set (name, a, b = ..., ns.attr,
 *               block set with filters), macro (positional, keyword and
 *               default arguments), with, filter blocks, break/continue,
 *               generation. Scoping as Jinja2: loop iterations and macro
 *               calls get their own scope; a top-level name assigned before
 *               any top-level use is undefined until assigned. Not: include/
 *               extends/block/import/call/raw/recursive loops
 *               (CHAT_TMPL_ERR_UNSUPPORTED, never a crash).
 *   expressions literals, names, .attr, [item], slices, calls, filters,
 *               `is` tests, + - * / // % ** ~, comparisons (chained), in,
 *               not in, and/or/not, `a if b else c`, lists, tuples, dicts.
 *   values      none, bool, int (64-bit; overflow is an error), float,
 *               str (UTF-8; lengths/indexes/slices count code points),
 *               list, tuple, dict (insertion-ordered), undefined, namespace,
 *               markup (the `safe` filter: `markup + str` escapes the str,
 *               as markupsafe does), generators (map/select/... results:
 *               no length, not JSON-serializable, always true).
 *   filters     abs attr capitalize count d default dictsort e escape first
 *               float format indent int items join last length list lower
 *               map max min reject rejectattr replace reverse round safe
 *               select selectattr sort string sum title tojson trim unique
 *               upper wordcount.
 *   tests       boolean callable defined divisibleby eq equalto escaped even
 *               false filter float ge greaterthan gt in integer iterable le
 *               lessthan lower lt mapping ne none number odd sameas sequence
 *               string test true undefined upper == != < <= > >=.
 *   operators   also printf-style 'fmt' % args (and the format filter).
 *   methods     str: strip lstrip rstrip split rsplit splitlines startswith
 *               endswith replace upper lower title capitalize find rfind
 *               count index join format isdigit isalpha isalnum isspace
 *               isupper islower; dict: get items keys values;
 *               list: index count (append/pop/extend/insert/remove only
 *               with CHAT_TMPL_MUTABLE, as llama.cpp allows; Jinja2's
 *               sandbox refuses them).
 *   globals     range (at most 100000 items, as the sandbox), namespace,
 *               dict, raise_exception(msg), strftime_now(fmt).
 * Known differences from Python Jinja2 (none matters for the corpus):
 * integers are 64-bit (overflow is a render error, Python has bigints);
 * upper/lower/title/capitalize map ASCII letters only; str.format has no
 * format specs; range() returns a list; reprs of iterators, methods and
 * macros do not carry memory addresses; the for-loop `recursive` modifier,
 * `caller`, `varargs`/`kwargs` and `loop.changed` are missing.
 * Undefined names behave like Jinja2's default Undefined: they print as "",
 * are false, iterate as empty, have length 0; attribute/item access on them,
 * calling them and arithmetic on them are render errors, as in Jinja2.
 * Unknown filters/tests are syntax errors unless they sit inside an if or a
 * conditional expression, where they fail only when evaluated (Jinja2 3.x).
 *
 * HOSTILE INPUT. Templates come from GGUF files and are untrusted: nothing
 * here crashes, hangs or grows without bound. Every allocation comes from a
 * caller-provided arena (out of space -> CHAT_TMPL_ERR_NOMEM); the output is
 * bounded by the caller's buffer (CHAT_TMPL_ERR_OUTPUT); evaluation steps
 * (loop iterations, expression nodes, output pieces) and recursion depth
 * (nested expressions, statements, macro calls) are capped
 * (CHAT_TMPL_ERR_LIMIT). Recursion uses the C stack: allow about 256 KiB.
 *
 * THREADS. A compiled template is read-only: any number of threads may
 * render it at the same time, each with its own scratch arena and output.
 */
#ifndef MOTE_CHAT_TMPL_H
#define MOTE_CHAT_TMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Negative results. Every error also writes a one-line message into the
 * caller's err buffer (when given), e.g. "line 12: 'foo' is undefined". */
typedef enum chat_tmpl_err {
    CHAT_TMPL_ERR_SYNTAX = -1,      /* the template does not parse */
    CHAT_TMPL_ERR_RENDER = -2,      /* a run-time error Jinja2 would raise too
                                       (undefined access, type error, ...) */
    CHAT_TMPL_ERR_RAISED = -3,      /* the template called raise_exception();
                                       err holds its message */
    CHAT_TMPL_ERR_NOMEM = -4,       /* the arena is too small */
    CHAT_TMPL_ERR_OUTPUT = -5,      /* the rendered text exceeds the output cap */
    CHAT_TMPL_ERR_LIMIT = -6,       /* step or depth limit reached */
    CHAT_TMPL_ERR_INPUT = -7,       /* messages/tools/vars JSON invalid */
    CHAT_TMPL_ERR_UNSUPPORTED = -8  /* Jinja2 feature this interpreter lacks */
} chat_tmpl_err;

/* Short English name of an error code ("syntax error", ...). */
const char *chat_tmpl_strerror(int err);

/* Limits (defaults used when the input fields are 0). */
#define CHAT_TMPL_STEPS_DEFAULT 10000000u /* evaluation steps per render (~1 s) */
#define CHAT_TMPL_DEPTH_DEFAULT 400       /* nested evaluation depth */
#define CHAT_TMPL_DEPTH_MAX 2000          /* upper clamp of max_depth */
#define CHAT_TMPL_PARSE_DEPTH 200         /* nesting of statements/expressions */
#define CHAT_TMPL_RANGE_MAX 100000        /* range() length, as Jinja2's sandbox */

/* Memory sizing. Compiling real templates needs about 10 bytes per byte of
 * source (the AST, string literals, a copy of the source) plus 16 bytes per
 * token while parsing; CHAT_TMPL_COMPILE_BOUND is an upper bound for any
 * source (dense adversarial text such as [1,1,1,...] needs ~70 bytes/byte).
 * Rendering needs about 16 KiB plus 4-5x the JSON inputs (values and, while
 * converting, JSON tokens) plus what the template builds; memory of each
 * loop iteration and printed expression is reused unless the template keeps
 * a reference (namespace, mutated list). Measured: a 2000-message chat
 * (130 KB of JSON) renders with 560 KB. */
#define CHAT_TMPL_COMPILE_BOUND(src_len) ((size_t)(src_len) * 128u + 16384u)

/* ---- Compile ----------------------------------------------------------- */

/* A compiled template. It lives entirely inside the memory given to
 * chat_tmpl_compile (nothing points to the source text) and stays valid
 * while that memory does. */
typedef struct chat_tmpl chat_tmpl;

/* Parse src[0..len) (a Jinja2 template; need not be NUL-terminated) into
 * mem[0..cap). On success *out points into mem and 0 is returned; otherwise
 * CHAT_TMPL_ERR_SYNTAX / _NOMEM / _UNSUPPORTED / _LIMIT with a message
 * ("line N: ...") in err. err may be NULL. */
int chat_tmpl_compile(const char *src, size_t len, void *mem, size_t cap,
                      const chat_tmpl **out, char *err, size_t errcap);

/* Bytes of mem the compiled template occupies (the rest may be reused). */
size_t chat_tmpl_size(const chat_tmpl *t);

/* ---- Render ------------------------------------------------------------ */

/* Behaviour flags (chat_tmpl_input.flags). */
enum {
    /* Remove a leading bos_token from the output (llama.cpp does when the
     * tokenizer adds BOS itself). */
    CHAT_TMPL_STRIP_BOS = 1u << 0,
    /* Remove a trailing eos_token (llama.cpp does when the tokenizer adds
     * EOS itself). */
    CHAT_TMPL_STRIP_EOS = 1u << 1,
    /* Define enable_thinking = true unless vars_json sets it (llama.cpp's
     * default: reasoning on). */
    CHAT_TMPL_ENABLE_THINKING = 1u << 2,
    /* Tool-call arguments given as a JSON string (OpenAI wire format) are
     * parsed into an object before rendering, as llama.cpp does; a string
     * that is not a JSON object stays a string. */
    CHAT_TMPL_ARGS_OBJECT = 1u << 3,
    /* Allow list.append/pop/extend/insert/remove and dict.update/pop on
     * values (llama.cpp's engine does; Jinja2's immutable sandbox raises). */
    CHAT_TMPL_MUTABLE = 1u << 4,
    /* Content given as a list of parts becomes one string: the text of its
     * text parts joined with "\n" (llama.cpp does this for templates that
     * cannot iterate parts); other parts are dropped. */
    CHAT_TMPL_FLATTEN_PARTS = 1u << 5,
    /* When the render fails (CHAT_TMPL_ERR_RENDER / _RAISED), render again
     * with CHAT_TMPL_ARGS_OBJECT and CHAT_TMPL_FLATTEN_PARTS added: templates
     * that need object arguments or string content then work, the others
     * see the messages as sent (llama.cpp probes each template for these
     * needs; this is the cheap equivalent). The first error is reported if
     * the second attempt fails too. */
    CHAT_TMPL_ADAPT = 1u << 6,
    /* Debugging: never reuse the memory of finished loop iterations and
     * printed expressions (the output must not change; tests compare). */
    CHAT_TMPL_NO_REUSE = 1u << 7,
    /* What llama.cpp does, as far as implemented here. */
    CHAT_TMPL_LLAMA_CPP = CHAT_TMPL_STRIP_BOS | CHAT_TMPL_ENABLE_THINKING |
                          CHAT_TMPL_MUTABLE | CHAT_TMPL_ADAPT
};

/* What the template sees. JSON texts need not be NUL-terminated and are
 * only read during the call (values are copied into the scratch arena).
 * Template variables: messages, tools (none when tools_json is NULL),
 * documents (none), add_generation_prompt, bos_token / eos_token (undefined
 * when NULL), every key of vars_json (after the others, so it may override
 * them), enable_thinking (see the flag). */
typedef struct chat_tmpl_input {
    const char *messages_json;   /* JSON array of message objects, exactly as
                                    an OpenAI request carries them (role,
                                    content string/parts/null, tool_calls,
                                    tool_call_id, name, ...); required */
    size_t messages_len;
    const char *tools_json;      /* JSON array of tools, or NULL */
    size_t tools_len;
    const char *vars_json;       /* JSON object of extra variables (e.g. the
                                    request's chat_template_kwargs), or NULL */
    size_t vars_len;
    const char *bos_token;       /* NUL-terminated, or NULL */
    const char *eos_token;       /* NUL-terminated, or NULL */
    bool add_generation_prompt;
    unsigned flags;              /* CHAT_TMPL_* above */
    time_t now;                  /* clock for strftime_now (local time);
                                    0 = the real current time */
    uint32_t max_steps;          /* 0 = CHAT_TMPL_STEPS_DEFAULT */
    int max_depth;               /* 0 = CHAT_TMPL_DEPTH_DEFAULT */
} chat_tmpl_input;

/* Render t with the input into out[0..cap). scratch[0..scratch_cap) is
 * working memory for this call only (8-byte alignment not required).
 * Returns the output length (bytes, >= 0; out is NUL-terminated when the
 * length is < cap) or a negative chat_tmpl_err with a message in err. On
 * error out holds nothing useful. */
long chat_tmpl_render(const chat_tmpl *t, const chat_tmpl_input *in,
                      void *scratch, size_t scratch_cap,
                      char *out, size_t cap, char *err, size_t errcap);

/* Compile and render in one call: the template is compiled into the front
 * of mem and the rest of mem is the scratch arena. */
long chat_tmpl_render_src(const char *src, size_t src_len, const chat_tmpl_input *in,
                          void *mem, size_t mem_cap,
                          char *out, size_t cap, char *err, size_t errcap);

/* Fallback for models without a chat template: ChatML, as llama.cpp uses
 * ("<|im_start|>role\ncontent<|im_end|>\n" per message, then
 * "<|im_start|>assistant\n" when add_generation_prompt). A template source
 * for chat_tmpl_compile, NUL-terminated. */
extern const char chat_tmpl_chatml[];

#endif
