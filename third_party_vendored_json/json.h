/* json.h — strict RFC 8259 JSON parser (tokens into a caller array) and a
 * small streaming writer. Standalone and vendorable: C11 + libc, no
 * allocation, no global state, prefix json_. Written for mote, MIT.
 *
 * PARSER
 * ------
 * json_parse() validates the whole buffer and fills a caller array with
 * tokens that point into the input (no copies):
 *
 *     json_parser p = {0};            // zero = defaults (depth limit 64)
 *     json_tok t[256];
 *     int n = json_parse(&p, body, len, t, 256);
 *     if (n < 0) log("bad json at byte %zu: %s", p.err_pos, json_strerror(n));
 *
 * Tokens are in document order (pre-order); t[0] is the top-level value.
 * Spans are byte offsets [start, end) into the input:
 *   - objects/arrays: from '{' / '[' to just after '}' / ']';
 *   - strings: the raw content BETWEEN the quotes (escapes not decoded;
 *     use json_tok_eq / json_string_unescape);
 *   - numbers, true, false, null: the literal text.
 * size: arrays = number of elements, objects = number of key/value pairs,
 * everything else (keys included) = 0. An object's children are laid out
 * key, value, key, value, ... each value followed by its own subtree.
 * parent: index of the enclosing object/array (keys and values alike),
 * -1 for t[0].
 *
 * Strictness (RFC 8259 and nothing more): exactly one value, surrounded by
 * optional whitespace (space, tab, CR, LF only); number grammar exactly
 * (no leading zeros, '+', ".5", "1.", "1e"); strings reject raw control
 * characters < 0x20, unknown escapes, lone or mis-ordered UTF-16 surrogates
 * in \uXXXX, and invalid raw UTF-8 (overlongs, encoded surrogates,
 * > U+10FFFF, stray continuation bytes). No comments, no trailing commas,
 * no BOM, no NaN/Infinity. Numbers of any length are accepted as text.
 *
 * Return: token count (>= 1) on success, or a negative json_err:
 *   JSON_ERR_INVALID  not JSON; p->err_pos = offset of the offending byte
 *   JSON_ERR_PARTIAL  the input ended inside a value (every proper prefix
 *                     of a valid document that is not itself valid gives
 *                     this, as does empty/whitespace-only input);
 *                     p->err_pos = len
 *   JSON_ERR_DEPTH    nesting deeper than p->max_depth; p->err_pos = the
 *                     '{' or '[' that went too deep
 *   JSON_ERR_NOMEM    the document is valid but needs more than cap
 *                     tokens; p->ntok = the count needed, p->err_pos = the
 *                     first token that did not fit. (A document that is
 *                     invalid gives the INVALID/PARTIAL/DEPTH error instead,
 *                     even when it also overflowed.) Also returned when
 *                     len > JSON_MAX_LEN.
 * Count-only mode: toks == NULL (cap ignored) validates and returns the
 * number of tokens needed, so the caller can size the array exactly.
 * On success p->ntok = the return value and p->err_pos = 0.
 * Tokens beyond the returned count (or all of them after an error other
 * than NOMEM) are unspecified.
 *
 * Stack use: about 4 KiB (the container stack); no recursion.
 *
 * ACCESSORS
 * ---------
 * All accessors take (js, toks, i) where toks/js are the arrays given to a
 * successful json_parse and i a token index. i < 0 is allowed everywhere and
 * means "absent", so lookups chain without checks in between:
 *
 *     long long n;
 *     int rc = json_get_int64(js, t, json_obj_get(js, t, 0, "max_tokens"), &n);
 *     if (rc == JSON_ERR_MISSING) n = 16; else if (rc < 0) return 400;
 *
 * Keys are compared after decoding escapes ("mo\u0064el" equals "model").
 * Duplicate keys: json_obj_get returns the LAST occurrence (as Python's
 * json and JavaScript's JSON.parse do, so mote agrees with the reference
 * implementations of the OpenAI API).
 *
 * Iteration (i: element/key index, k: running counter; both declared by
 * the macro):
 *     JSON_ARR_FOREACH(t, arr, i, k) { ... t[i] is element k ... }
 *     JSON_OBJ_FOREACH(t, obj, i, k) { ... t[i] is key k, t[i + 1] its value ... }
 *
 * WRITER
 * ------
 * Builds one document into a caller buffer; commas and colons are inserted
 * automatically. Errors are sticky: after an overflow (JSON_ERR_NOMEM) or a
 * misuse (JSON_ERR_INVALID: value without key in an object, key outside an
 * object, unbalanced end; JSON_ERR_DEPTH) every further call is ignored and
 * json_writer_error() reports the first error. The writer never writes at
 * or past buf[cap] and does not NUL-terminate; the text is (w.buf, w.len).
 *
 *     char out[4096]; json_writer w;
 *     json_writer_init(&w, out, sizeof out);
 *     json_write_obj_begin(&w);
 *     json_write_key(&w, "id");     json_write_str(&w, "cmpl-1");
 *     json_write_key(&w, "n");      json_write_int(&w, 3);
 *     json_write_obj_end(&w);
 *     if (json_writer_error(&w) < 0) ... // too small or misuse
 *
 * Strings are escaped (", \, control characters); valid UTF-8 passes
 * through unchanged, each maximal invalid UTF-8 subsequence becomes U+FFFD,
 * so the output is always valid JSON. Doubles print in the shortest form
 * that reads back to the same value; NaN and infinities print as null.
 */
#ifndef JSON_H
#define JSON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Common ------------------------------------------------------------ */

typedef enum json_err {
    JSON_OK = 0,
    JSON_ERR_INVALID = -1,  /* not JSON / wrong use of the writer */
    JSON_ERR_PARTIAL = -2,  /* input ended before the document did */
    JSON_ERR_NOMEM = -3,    /* token array or output buffer too small */
    JSON_ERR_DEPTH = -4,    /* nesting deeper than the limit */
    JSON_ERR_MISSING = -5,  /* accessor: token index < 0 (key absent) */
    JSON_ERR_TYPE = -6,     /* accessor: token has another type */
    JSON_ERR_RANGE = -7,    /* accessor: number does not fit the C type */
    JSON_ERR_NOTINT = -8    /* accessor: number has a fractional part */
} json_err;

/* Short English text for a json_err ("ok", "invalid JSON", ...). */
const char *json_strerror(int err);

/* ---- Parser ------------------------------------------------------------ */

typedef enum json_type {
    JSON_UNDEFINED = 0,
    JSON_OBJECT = 1,
    JSON_ARRAY = 2,
    JSON_STRING = 3,
    JSON_NUMBER = 4,
    JSON_TRUE = 5,
    JSON_FALSE = 6,
    JSON_NULL = 7
} json_type;

/* "object", "array", "string", "number", "true", "false", "null", "undefined". */
const char *json_type_name(json_type type);

typedef struct json_tok {
    json_type type;
    int start;   /* byte offset of the first byte (see spans above) */
    int end;     /* byte offset just past the last byte */
    int size;    /* elements (array), pairs (object), 0 otherwise */
    int parent;  /* index of the enclosing container, -1 for the root */
} json_tok;

#define JSON_DEPTH_DEFAULT 64
#define JSON_DEPTH_MAX 1024                 /* max_depth is clamped to this */
#define JSON_MAX_LEN ((size_t)0x3fffffff)   /* longest input: 1 GiB - 1 */

typedef struct json_parser {
    int max_depth;    /* in: container nesting limit; <= 0 means JSON_DEPTH_DEFAULT */
    int ntok;         /* out: tokens used (success) or needed (JSON_ERR_NOMEM) */
    size_t err_pos;   /* out: byte offset of the error, 0 on success */
} json_parser;

/* Parse js[0..len). toks may be NULL (count-only). See the contract above. */
int json_parse(json_parser *p, const char *js, size_t len, json_tok *toks, int cap);

/* ---- Accessors (on the result of a successful json_parse) --------------- */

/* Index of the first token after the subtree rooted at i (i itself, its
 * children, their children...). Reads only tokens inside that subtree. */
int json_skip(const json_tok *toks, int i);

/* Value of key in object obj: the token index of the value, or -1 when obj
 * < 0, obj is not an object, or the key is absent. Last duplicate wins. */
int json_obj_get(const char *js, const json_tok *toks, int obj, const char *key);
/* Same with an explicit key length (key may contain NUL bytes). */
int json_obj_getn(const char *js, const json_tok *toks, int obj,
                  const char *key, size_t keylen);

/* Element k (0-based) of array arr, or -1 (arr < 0, not an array, k out of
 * range). O(size of the array's subtree); prefer JSON_ARR_FOREACH for loops. */
int json_arr_get(const json_tok *toks, int arr, int k);

#define JSON_ARR_FOREACH(toks, arr, i, k)                                   \
    for (int k = 0, i = (arr) + 1; k < (toks)[arr].size; k++, i = json_skip((toks), i))
#define JSON_OBJ_FOREACH(toks, obj, i, k)                                   \
    for (int k = 0, i = (obj) + 1; k < (toks)[obj].size; k++, i = json_skip((toks), i + 1))

/* 1 if token i equals s: strings compare their DECODED value with the
 * UTF-8 bytes of s; other tokens compare their raw text. 0 otherwise
 * (also for i < 0). */
int json_tok_eq(const char *js, const json_tok *toks, int i, const char *s);
int json_tok_eqn(const char *js, const json_tok *toks, int i, const char *s, size_t n);

/* Type of token i, JSON_UNDEFINED for i < 0. */
json_type json_tok_type(const json_tok *toks, int i);

/* Number token -> double. 0, or JSON_ERR_MISSING (i < 0), JSON_ERR_TYPE
 * (not a number), JSON_ERR_RANGE (magnitude too large for a double; tiny
 * values round to 0 or a subnormal and succeed). Correctly rounded for any
 * length of input. *out is written only on success. */
int json_get_double(const char *js, const json_tok *toks, int i, double *out);

/* Number token -> exact integer. Accepts any spelling of an integral value
 * ("3", "3.0", "30e-1", "3E0", "-0"). 0, or JSON_ERR_MISSING, JSON_ERR_TYPE,
 * JSON_ERR_NOTINT (has a fractional part), JSON_ERR_RANGE (outside
 * [INT64_MIN, INT64_MAX]). *out is written only on success. */
int json_get_int64(const char *js, const json_tok *toks, int i, long long *out);

/* true/false token -> 1/0 in *out. 0, or JSON_ERR_MISSING, JSON_ERR_TYPE. */
int json_get_bool(const char *js, const json_tok *toks, int i, int *out);

/* 1 if token i is null, 0 otherwise (also for i < 0). */
int json_is_null(const json_tok *toks, int i);

/* Decode string token i (escapes and surrogate pairs) to UTF-8 into out and
 * NUL-terminate it. Returns the decoded length (excluding the NUL; the text
 * may itself contain NUL bytes from \u0000), or -1 if i < 0, the token is not
 * a string, or cap is too small. The decoded text is never longer than the
 * raw span, so cap = toks[i].end - toks[i].start + 1 always suffices. */
int json_string_unescape(const char *js, const json_tok *toks, int i, char *out, size_t cap);

/* ---- UTF-8 helper -------------------------------------------------------- */

/* Length of the longest prefix of s[0..n) that does not end inside an
 * incomplete (but so far valid) UTF-8 sequence: n minus the 1..3 bytes of a
 * truncated trailing sequence, else n. For streaming text that arrives in
 * pieces: write the prefix now, keep the tail for the next piece. */
size_t json_utf8_complete_len(const char *s, size_t n);

/* ---- Writer -------------------------------------------------------------- */

#define JSON_WRITER_DEPTH 32

typedef struct json_writer {
    char *buf;
    size_t cap;
    size_t len;       /* bytes written so far, always <= cap */
    int err;          /* sticky: 0 or the first negative json_err */
    int depth;        /* open containers */
    int done;         /* the top-level value is complete */
    unsigned char st[JSON_WRITER_DEPTH];  /* per open container: JSON_WST_* bits */
} json_writer;

/* Writer state bits (internal; exposed only because the struct is public). */
#define JSON_WST_OBJ   1u  /* container is an object */
#define JSON_WST_MORE  2u  /* an element has been written: next needs a comma */
#define JSON_WST_KEYED 4u  /* object: a key was written, its value is due */

void json_writer_init(json_writer *w, char *buf, size_t cap);

/* 0 while all is well, else the sticky JSON_ERR_NOMEM / _INVALID / _DEPTH.
 * json_writer_finish() also checks that exactly one complete top-level value
 * was written (JSON_ERR_INVALID otherwise). A second top-level value is a
 * misuse; to build several documents, init a writer per document. */
int json_writer_error(const json_writer *w);
int json_writer_finish(const json_writer *w);

void json_write_obj_begin(json_writer *w);
void json_write_obj_end(json_writer *w);
void json_write_arr_begin(json_writer *w);
void json_write_arr_end(json_writer *w);
void json_write_key(json_writer *w, const char *key);
void json_write_keyn(json_writer *w, const char *key, size_t n);
void json_write_str(json_writer *w, const char *s);        /* NULL writes null */
void json_write_strn(json_writer *w, const char *s, size_t n);
void json_write_int(json_writer *w, long long v);
void json_write_uint(json_writer *w, unsigned long long v);
void json_write_double(json_writer *w, double v);  /* shortest round-trip, %.17g at most */
void json_write_float(json_writer *w, float v);    /* shortest that reads back as the same float */
void json_write_bool(json_writer *w, int v);
void json_write_null(json_writer *w);
/* A value already encoded as JSON (e.g. a subtree of a parsed input:
 * js + t[i].start, t[i].end - t[i].start for non-strings). Not validated. */
void json_write_raw(json_writer *w, const char *json, size_t n);
/* Token i of a parsed document (js, toks) with its whole subtree, verbatim
 * (strings keep their escapes). i < 0 is a misuse (JSON_ERR_INVALID). */
void json_write_tok(json_writer *w, const char *js, const json_tok *toks, int i);

#ifdef __cplusplus
}
#endif

#endif
