/* json.c — strict JSON parser, accessors and streaming writer.
 * Written for mote, MIT. See json.h for the contracts. */
#include "json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Common ------------------------------------------------------------ */

const char *json_strerror(int err)
{
    switch (err) {
    case JSON_OK: return "ok";
    case JSON_ERR_INVALID: return "invalid JSON";
    case JSON_ERR_PARTIAL: return "truncated JSON (input ended early)";
    case JSON_ERR_NOMEM: return "too many tokens or output too large";
    case JSON_ERR_DEPTH: return "nesting too deep";
    case JSON_ERR_MISSING: return "missing";
    case JSON_ERR_TYPE: return "wrong type";
    case JSON_ERR_RANGE: return "number out of range";
    case JSON_ERR_NOTINT: return "number is not an integer";
    default: return "unknown error";
    }
}

const char *json_type_name(json_type type)
{
    switch (type) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_NUMBER: return "number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    default: return "undefined";
    }
}

/* ---- UTF-8 --------------------------------------------------------------- */

enum { U8_OK = 1, U8_SHORT = 0, U8_BAD = -1 };

/* Check one UTF-8 sequence at s[0..n), n >= 1, following the well-formed
 * byte sequences of Unicode table 3-7 (this excludes overlongs, encoded
 * surrogates and code points above U+10FFFF).
 *   U8_OK:    *used = sequence length
 *   U8_SHORT: input ends inside a sequence that is valid so far; *used = n
 *   U8_BAD:   *used = index of the first offending byte (0 = bad lead byte);
 *             the maximal invalid subpart is max(*used, 1) bytes. */
static int u8_check(const unsigned char *s, size_t n, size_t *used)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xbf;
    size_t len, k;

    if (c < 0x80) { *used = 1; return U8_OK; }
    if (c >= 0xc2 && c <= 0xdf) len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;          /* overlong */
        else if (c == 0xed) hi = 0x9f;     /* UTF-16 surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;          /* overlong */
        else if (c == 0xf4) hi = 0x8f;     /* above U+10FFFF */
    } else {
        *used = 0;
        return U8_BAD;
    }
    for (k = 1; k < len; k++) {
        if (k >= n) { *used = n; return U8_SHORT; }
        if (s[k] < lo || s[k] > hi) { *used = k; return U8_BAD; }
        lo = 0x80, hi = 0xbf;              /* only the 2nd byte is special */
    }
    *used = len;
    return U8_OK;
}

size_t json_utf8_complete_len(const char *s, size_t n)
{
    /* A truncated sequence is at most 3 bytes: look at the last lead byte. */
    size_t back = n < 3 ? n : 3, i, used;
    for (i = 1; i <= back; i++) {
        unsigned char c = (unsigned char)s[n - i];
        if (c < 0x80) return n;
        if (c >= 0xc0) {
            if (u8_check((const unsigned char *)s + n - i, i, &used) == U8_SHORT)
                return n - i;
            return n;
        }
    }
    return n;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t u8_encode(unsigned cp, unsigned char *o)
{
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- Parser -------------------------------------------------------------- */

/* Scanners return the offset just past what they consumed, or a negative
 * json_err with *err set to the error offset. */

static long scan_hex4(const unsigned char *s, size_t len, size_t i, unsigned *cp, size_t *err)
{
    unsigned v = 0;
    for (size_t k = 0; k < 4; k++) {
        int h;
        if (i + k >= len) { *err = len; return JSON_ERR_PARTIAL; }
        if ((h = hexval(s[i + k])) < 0) { *err = i + k; return JSON_ERR_INVALID; }
        v = v << 4 | (unsigned)h;
    }
    *cp = v;
    return (long)(i + 4);
}

/* s[i] is the opening quote; returns the offset of the closing quote. */
static long scan_string(const unsigned char *s, size_t len, size_t i, size_t *err)
{
    i++;
    while (i < len) {
        unsigned c = s[i];
        if (c == '"') return (long)i;
        if (c == '\\') {
            if (i + 1 >= len) { *err = len; return JSON_ERR_PARTIAL; }
            switch (s[i + 1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                i += 2;
                break;
            case 'u': {
                unsigned cp, lo;
                long r = scan_hex4(s, len, i + 2, &cp, err);
                if (r < 0) return r;
                if (cp >= 0xdc00 && cp <= 0xdfff) { *err = i; return JSON_ERR_INVALID; }
                if (cp < 0xd800 || cp > 0xdbff) { i += 6; break; }
                /* High surrogate: a \u low surrogate must follow. */
                if (i + 6 >= len) { *err = len; return JSON_ERR_PARTIAL; }
                if (s[i + 6] != '\\') { *err = i + 6; return JSON_ERR_INVALID; }
                if (i + 7 >= len) { *err = len; return JSON_ERR_PARTIAL; }
                if (s[i + 7] != 'u') { *err = i + 6; return JSON_ERR_INVALID; }
                r = scan_hex4(s, len, i + 8, &lo, err);
                if (r < 0) return r;
                if (lo < 0xdc00 || lo > 0xdfff) { *err = i + 6; return JSON_ERR_INVALID; }
                i += 12;
                break;
            }
            default:
                *err = i + 1;
                return JSON_ERR_INVALID;
            }
        } else if (c < 0x20) {
            *err = i;
            return JSON_ERR_INVALID;
        } else if (c < 0x80) {
            i++;
        } else {
            size_t used;
            int r = u8_check(s + i, len - i, &used);
            if (r == U8_OK) i += used;
            else if (r == U8_SHORT) { *err = len; return JSON_ERR_PARTIAL; }
            else { *err = i + used; return JSON_ERR_INVALID; }
        }
    }
    *err = len;
    return JSON_ERR_PARTIAL;
}

#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? ; what follows is checked
 * by the caller's state machine (so "01" fails at the '1'). */
static long scan_number(const unsigned char *s, size_t len, size_t i, size_t *err)
{
    if (s[i] == '-') i++;
    if (i >= len) goto partial;
    if (s[i] == '0') i++;
    else if (s[i] >= '1' && s[i] <= '9') { while (i < len && IS_DIGIT(s[i])) i++; }
    else goto invalid;
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len) goto partial;
        if (!IS_DIGIT(s[i])) goto invalid;
        while (i < len && IS_DIGIT(s[i])) i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        if (i >= len) goto partial;
        if (!IS_DIGIT(s[i])) goto invalid;
        while (i < len && IS_DIGIT(s[i])) i++;
    }
    return (long)i;
partial:
    *err = len;
    return JSON_ERR_PARTIAL;
invalid:
    *err = i;
    return JSON_ERR_INVALID;
}

static long scan_literal(const unsigned char *s, size_t len, size_t i, const char *lit, size_t *err)
{
    for (; *lit; lit++, i++) {
        if (i >= len) { *err = len; return JSON_ERR_PARTIAL; }
        if (s[i] != (unsigned char)*lit) { *err = i; return JSON_ERR_INVALID; }
    }
    return (long)i;
}

/* What the state machine expects next. */
enum {
    ST_VALUE,           /* any value (top level, after ':', after ',' in an array) */
    ST_VALUE_OR_CLOSE,  /* just after '[' */
    ST_KEY,             /* after ',' in an object */
    ST_KEY_OR_CLOSE,    /* just after '{' */
    ST_COLON,           /* after a key */
    ST_AFTER,           /* after a value inside a container: ',' or the closer */
    ST_DONE             /* top-level value complete: only whitespace may follow */
};

typedef struct {
    json_tok *toks;
    int cap;
    int n;               /* tokens produced (stored or not) */
    int overflow;        /* a token did not fit */
    size_t overflow_pos;
} tokbuf;

static int tok_new(tokbuf *tb, json_type type, size_t start, size_t end, int parent)
{
    int idx = tb->n++;
    if (!tb->toks) return idx;
    if (idx >= tb->cap) {
        if (!tb->overflow) { tb->overflow = 1; tb->overflow_pos = start; }
        return idx;
    }
    json_tok *t = &tb->toks[idx];
    t->type = type;
    t->start = (int)start;
    t->end = (int)end;
    t->size = 0;
    t->parent = parent;
    return idx;
}

int json_parse(json_parser *p, const char *js, size_t len, json_tok *toks, int cap)
{
    /* Container stack: token index << 1 | is_object. */
    int stk[JSON_DEPTH_MAX];
    const unsigned char *s = (const unsigned char *)js;
    int max_depth = p->max_depth <= 0 ? JSON_DEPTH_DEFAULT : p->max_depth;
    int depth = 0, state = ST_VALUE;
    size_t i = 0, err = 0;
    long r;
    tokbuf tb = { toks, cap < 0 ? 0 : cap, 0, 0, 0 };

    if (max_depth > JSON_DEPTH_MAX) max_depth = JSON_DEPTH_MAX;
    p->ntok = 0;
    p->err_pos = 0;
    if (len > JSON_MAX_LEN) { p->err_pos = JSON_MAX_LEN; return JSON_ERR_NOMEM; }
    if (!s && len) { return JSON_ERR_INVALID; }

    for (;;) {
        while (i < len && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) i++;
        if (i >= len) {
            if (state == ST_DONE) break;
            p->err_pos = len;
            return JSON_ERR_PARTIAL;
        }
        unsigned char c = s[i];
        int top = depth ? stk[depth - 1] >> 1 : -1;
        int in_obj = depth ? stk[depth - 1] & 1 : 0;

        switch (state) {
        case ST_DONE:
            p->err_pos = i;
            return JSON_ERR_INVALID;
        case ST_COLON:
            if (c != ':') goto invalid;
            i++;
            state = ST_VALUE;
            continue;
        case ST_AFTER:
            if (c == ',') {
                i++;
                state = in_obj ? ST_KEY : ST_VALUE;
                continue;
            }
            if (c == (in_obj ? '}' : ']')) goto close;
            goto invalid;
        case ST_KEY_OR_CLOSE:
            if (c == '}') goto close;
            /* fall through */
        case ST_KEY:
            if (c != '"') goto invalid;
            if ((r = scan_string(s, len, i, &err)) < 0) goto fail;
            tok_new(&tb, JSON_STRING, i + 1, (size_t)r, top);
            if (toks && top < tb.cap) toks[top].size++;
            i = (size_t)r + 1;
            state = ST_COLON;
            continue;
        case ST_VALUE_OR_CLOSE:
            if (c == ']') goto close;
            /* fall through */
        case ST_VALUE:
            break;
        }

        /* A value. Arrays count elements here; objects counted the key. */
        if (top >= 0 && !in_obj && toks && top < tb.cap) toks[top].size++;
        if (c == '{' || c == '[') {
            if (depth >= max_depth) { p->err_pos = i; return JSON_ERR_DEPTH; }
            int idx = tok_new(&tb, c == '{' ? JSON_OBJECT : JSON_ARRAY, i, i, top);
            stk[depth++] = idx << 1 | (c == '{');
            state = c == '{' ? ST_KEY_OR_CLOSE : ST_VALUE_OR_CLOSE;
            i++;
            continue;
        }
        json_type type;
        size_t start = i, end;
        if (c == '"') {
            if ((r = scan_string(s, len, i, &err)) < 0) goto fail;
            type = JSON_STRING;
            start = i + 1;
            end = (size_t)r;
            i = end + 1;
        } else {
            if (c == '-' || IS_DIGIT(c)) { r = scan_number(s, len, i, &err); type = JSON_NUMBER; }
            else if (c == 't') { r = scan_literal(s, len, i, "true", &err); type = JSON_TRUE; }
            else if (c == 'f') { r = scan_literal(s, len, i, "false", &err); type = JSON_FALSE; }
            else if (c == 'n') { r = scan_literal(s, len, i, "null", &err); type = JSON_NULL; }
            else goto invalid;
            if (r < 0) goto fail;
            end = i = (size_t)r;
        }
        tok_new(&tb, type, start, end, top);
        state = depth ? ST_AFTER : ST_DONE;
        continue;

    close:
        if (toks && top < tb.cap) toks[top].end = (int)(i + 1);
        depth--;
        i++;
        state = depth ? ST_AFTER : ST_DONE;
    }

    p->ntok = tb.n;
    if (tb.overflow) {
        p->err_pos = tb.overflow_pos;
        return JSON_ERR_NOMEM;
    }
    return tb.n;

invalid:
    p->err_pos = i;
    return JSON_ERR_INVALID;
fail:
    p->err_pos = err;
    return (int)r;
}

/* ---- Accessors ----------------------------------------------------------- */

int json_skip(const json_tok *toks, int i)
{
    int pending = 1;
    while (pending > 0) {
        const json_tok *t = &toks[i++];
        pending--;
        if (t->type == JSON_OBJECT) pending += 2 * t->size;
        else if (t->type == JSON_ARRAY) pending += t->size;
    }
    return i;
}

json_type json_tok_type(const json_tok *toks, int i)
{
    return i < 0 ? JSON_UNDEFINED : toks[i].type;
}

/* Decode the next unit of string content at js[*i] (below end) into o:
 * returns 1..4 bytes, or 0 on a malformed escape (only possible for tokens
 * that json_parse did not produce). */
static size_t str_next(const char *js, int *i, int end, unsigned char o[4])
{
    const unsigned char *s = (const unsigned char *)js;
    int k = *i;
    if (s[k] != '\\') { o[0] = s[k]; *i = k + 1; return 1; }
    if (k + 1 >= end) return 0;
    switch (s[k + 1]) {
    case '"': o[0] = '"'; break;
    case '\\': o[0] = '\\'; break;
    case '/': o[0] = '/'; break;
    case 'b': o[0] = '\b'; break;
    case 'f': o[0] = '\f'; break;
    case 'n': o[0] = '\n'; break;
    case 'r': o[0] = '\r'; break;
    case 't': o[0] = '\t'; break;
    case 'u': {
        unsigned cp = 0, lo = 0;
        size_t e;
        if (k + 6 > end || scan_hex4(s, (size_t)end, (size_t)k + 2, &cp, &e) < 0) return 0;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (k + 12 > end || s[k + 6] != '\\' || s[k + 7] != 'u' ||
                scan_hex4(s, (size_t)end, (size_t)k + 8, &lo, &e) < 0 ||
                lo < 0xdc00 || lo > 0xdfff)
                return 0;
            *i = k + 12;
            return u8_encode(0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00), o);
        }
        if (cp >= 0xdc00 && cp <= 0xdfff) return 0;
        *i = k + 6;
        return u8_encode(cp, o);
    }
    default:
        return 0;
    }
    *i = k + 2;
    return 1;
}

int json_tok_eqn(const char *js, const json_tok *toks, int i, const char *s, size_t n)
{
    if (i < 0) return 0;
    const json_tok *t = &toks[i];
    size_t raw = (size_t)(t->end - t->start);
    if (t->type != JSON_STRING || !memchr(js + t->start, '\\', raw))
        return raw == n && memcmp(js + t->start, s, n) == 0;
    size_t o = 0;
    int k = t->start;
    while (k < t->end) {
        unsigned char u[4];
        size_t m = str_next(js, &k, t->end, u);
        if (m == 0 || o + m > n || memcmp(s + o, u, m) != 0) return 0;
        o += m;
    }
    return o == n;
}

int json_tok_eq(const char *js, const json_tok *toks, int i, const char *s)
{
    return json_tok_eqn(js, toks, i, s, strlen(s));
}

int json_obj_getn(const char *js, const json_tok *toks, int obj, const char *key, size_t keylen)
{
    int found = -1;
    if (obj < 0 || toks[obj].type != JSON_OBJECT) return -1;
    JSON_OBJ_FOREACH(toks, obj, k, n) {
        if (json_tok_eqn(js, toks, k, key, keylen)) found = k + 1;
    }
    return found;
}

int json_obj_get(const char *js, const json_tok *toks, int obj, const char *key)
{
    return json_obj_getn(js, toks, obj, key, strlen(key));
}

int json_arr_get(const json_tok *toks, int arr, int k)
{
    if (arr < 0 || toks[arr].type != JSON_ARRAY || k < 0 || k >= toks[arr].size) return -1;
    int i = arr + 1;
    while (k-- > 0) i = json_skip(toks, i);
    return i;
}

int json_get_bool(const char *js, const json_tok *toks, int i, int *out)
{
    (void)js;
    if (i < 0) return JSON_ERR_MISSING;
    if (toks[i].type == JSON_TRUE) { *out = 1; return 0; }
    if (toks[i].type == JSON_FALSE) { *out = 0; return 0; }
    return JSON_ERR_TYPE;
}

int json_is_null(const json_tok *toks, int i)
{
    return i >= 0 && toks[i].type == JSON_NULL;
}

/* A number token split into its decimal parts: value = sign * digits *
 * 10^exp10, digits without leading zeros (none = zero), at most
 * JSON_NUM_DIGITS kept; sticky is set when nonzero digits were dropped
 * beyond that. */
#define JSON_NUM_DIGITS 800        /* > 767, the most a double's exact decimal needs */
#define JSON_EXP_CLAMP 1000000000LL /* explicit exponents are saturated here */

typedef struct {
    int neg;
    int ndig;
    int sticky;
    long long exp10;
    char digits[JSON_NUM_DIGITS];
} decnum;

static int num_decompose(const char *js, const json_tok *t, decnum *d)
{
    const char *s = js + t->start, *e = js + t->end;
    long long fracdigits = 0, exp = 0, dropped = 0;
    int in_frac = 0;
    d->neg = 0;
    d->ndig = 0;
    d->sticky = 0;
    if (s < e && *s == '-') { d->neg = 1; s++; }
    for (; s < e; s++) {
        char c = *s;
        if (c == '.') { in_frac = 1; continue; }
        if (c == 'e' || c == 'E') break;
        if (c < '0' || c > '9') return -1;
        fracdigits += in_frac;
        if (d->ndig == 0 && c == '0') continue;           /* leading zero */
        if (d->ndig < JSON_NUM_DIGITS) d->digits[d->ndig++] = c;
        else { d->sticky |= c != '0'; dropped++; }        /* place value still counts */
    }
    if (s < e) {   /* exponent */
        int eneg = 0;
        s++;
        if (s < e && (*s == '+' || *s == '-')) { eneg = *s == '-'; s++; }
        for (; s < e; s++) {
            if (*s < '0' || *s > '9') return -1;
            if (exp < JSON_EXP_CLAMP) exp = exp * 10 + (*s - '0');
        }
        if (eneg) exp = -exp;
    }
    /* |counts| < 2^31 and |exp| < 10^10: no overflow in long long. */
    d->exp10 = exp - fracdigits + dropped;
    if (d->exp10 > JSON_EXP_CLAMP) d->exp10 = JSON_EXP_CLAMP;
    if (d->exp10 < -JSON_EXP_CLAMP) d->exp10 = -JSON_EXP_CLAMP;
    /* Trailing zeros of the kept digits only move the exponent. */
    if (!d->sticky)
        while (d->ndig > 0 && d->digits[d->ndig - 1] == '0') { d->ndig--; d->exp10++; }
    return 0;
}

int json_get_double(const char *js, const json_tok *toks, int i, double *out)
{
    if (i < 0) return JSON_ERR_MISSING;
    if (toks[i].type != JSON_NUMBER) return JSON_ERR_TYPE;
    decnum d;
    if (num_decompose(js, &toks[i], &d) < 0) return JSON_ERR_TYPE;
    if (d.ndig == 0) { *out = d.neg ? -0.0 : 0.0; return 0; }
    /* Rebuild as "-DIGITS[1]e<exp>": no decimal point, so strtod's locale
     * does not matter; the sticky '1' keeps rounding of cut digits exact. */
    char buf[JSON_NUM_DIGITS + 32];
    size_t o = 0;
    if (d.neg) buf[o++] = '-';
    memcpy(buf + o, d.digits, (size_t)d.ndig);
    o += (size_t)d.ndig;
    long long exp = d.exp10;
    if (d.sticky) { buf[o++] = '1'; exp--; }
    snprintf(buf + o, sizeof buf - o, "e%lld", exp);
    errno = 0;
    double v = strtod(buf, NULL);
    if (isinf(v)) return JSON_ERR_RANGE;
    *out = v;
    return 0;
}

int json_get_int64(const char *js, const json_tok *toks, int i, long long *out)
{
    if (i < 0) return JSON_ERR_MISSING;
    if (toks[i].type != JSON_NUMBER) return JSON_ERR_TYPE;
    decnum d;
    if (num_decompose(js, &toks[i], &d) < 0) return JSON_ERR_TYPE;
    if (d.ndig == 0) { *out = 0; return 0; }
    if (d.sticky || d.exp10 < 0) return JSON_ERR_NOTINT;  /* last kept digit is nonzero */
    if (d.ndig + d.exp10 > 19) return JSON_ERR_RANGE;
    unsigned long long v = 0;
    for (int k = 0; k < d.ndig; k++) v = v * 10 + (unsigned)(d.digits[k] - '0');
    for (long long k = 0; k < d.exp10; k++) {
        if (v > ULLONG_MAX / 10) return JSON_ERR_RANGE;
        v *= 10;
    }
    /* v < 10^19 < 2^64 here. */
    if (d.neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return JSON_ERR_RANGE;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return JSON_ERR_RANGE;
        *out = (long long)v;
    }
    return 0;
}

int json_string_unescape(const char *js, const json_tok *toks, int i, char *out, size_t cap)
{
    if (i < 0 || toks[i].type != JSON_STRING) return -1;
    const json_tok *t = &toks[i];
    size_t o = 0;
    int k = t->start;
    while (k < t->end) {
        unsigned char u[4];
        size_t m = str_next(js, &k, t->end, u);
        if (m == 0 || o + m >= cap) return -1;   /* keep room for the NUL */
        memcpy(out + o, u, m);
        o += m;
    }
    if (o >= cap) return -1;
    out[o] = '\0';
    return (int)o;
}

/* ---- Writer -------------------------------------------------------------- */

void json_writer_init(json_writer *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = buf ? cap : 0;
}

int json_writer_error(const json_writer *w)
{
    return w->err;
}

int json_writer_finish(const json_writer *w)
{
    if (w->err) return w->err;
    return w->depth == 0 && w->done ? 0 : JSON_ERR_INVALID;
}

static void w_fail(json_writer *w, int err)
{
    if (!w->err) w->err = err;
}

/* All or nothing: a chunk that does not fit is not written at all. */
static void w_put(json_writer *w, const void *s, size_t n)
{
    if (w->err || n == 0) return;
    if (n > w->cap - w->len) { w->err = JSON_ERR_NOMEM; return; }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void w_putc(json_writer *w, char c)
{
    w_put(w, &c, 1);
}

/* Before any value: the comma in arrays, the key check in objects, the
 * single-value rule at the top level. Returns 0 if the value may follow. */
static int w_value(json_writer *w)
{
    if (w->err) return -1;
    if (w->depth == 0) {
        if (w->done) { w->err = JSON_ERR_INVALID; return -1; }
        return 0;
    }
    unsigned char *st = &w->st[w->depth - 1];
    if (*st & JSON_WST_OBJ) {
        if (!(*st & JSON_WST_KEYED)) { w->err = JSON_ERR_INVALID; return -1; }
        *st &= (unsigned char)~JSON_WST_KEYED;
        return 0;
    }
    if (*st & JSON_WST_MORE) w_putc(w, ',');
    *st |= JSON_WST_MORE;
    return w->err ? -1 : 0;
}

/* After a scalar or a closed container. */
static void w_after(json_writer *w)
{
    if (w->depth == 0) w->done = 1;
}

static void w_escaped(json_writer *w, const char *str, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0, run = 0;
    w_putc(w, '"');
    while (i < n && !w->err) {
        unsigned c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) { i++; continue; }
        if (c >= 0x80) {
            size_t used;
            int r = u8_check(s + i, n - i, &used);
            if (r == U8_OK) { i += used; continue; }
            w_put(w, s + run, i - run);
            w_put(w, "\xef\xbf\xbd", 3);            /* U+FFFD */
            i += used ? used : 1;
            run = i;
            continue;
        }
        w_put(w, s + run, i - run);
        char e[6] = { '\\', 0, '0', '0', 0, 0 };
        size_t m = 2;
        switch (c) {
        case '"': e[1] = '"'; break;
        case '\\': e[1] = '\\'; break;
        case '\n': e[1] = 'n'; break;
        case '\r': e[1] = 'r'; break;
        case '\t': e[1] = 't'; break;
        case '\b': e[1] = 'b'; break;
        case '\f': e[1] = 'f'; break;
        default:
            e[1] = 'u';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            m = 6;
        }
        w_put(w, e, m);
        i++;
        run = i;
    }
    w_put(w, s + run, i - run);
    w_putc(w, '"');
}

static void w_begin(json_writer *w, int obj)
{
    if (w_value(w) < 0) return;
    if (w->depth >= JSON_WRITER_DEPTH) { w_fail(w, JSON_ERR_DEPTH); return; }
    w_putc(w, obj ? '{' : '[');
    if (w->err) return;
    w->st[w->depth++] = obj ? JSON_WST_OBJ : 0;
}

static void w_end(json_writer *w, int obj)
{
    if (w->err) return;
    if (w->depth == 0) { w->err = JSON_ERR_INVALID; return; }
    unsigned char st = w->st[w->depth - 1];
    if (!(st & JSON_WST_OBJ) != !obj || (st & JSON_WST_KEYED)) { w->err = JSON_ERR_INVALID; return; }
    w_putc(w, obj ? '}' : ']');
    if (w->err) return;
    w->depth--;
    w_after(w);
}

void json_write_obj_begin(json_writer *w) { w_begin(w, 1); }
void json_write_obj_end(json_writer *w) { w_end(w, 1); }
void json_write_arr_begin(json_writer *w) { w_begin(w, 0); }
void json_write_arr_end(json_writer *w) { w_end(w, 0); }

void json_write_keyn(json_writer *w, const char *key, size_t n)
{
    if (w->err) return;
    if (w->depth == 0) { w->err = JSON_ERR_INVALID; return; }
    unsigned char *st = &w->st[w->depth - 1];
    if (!(*st & JSON_WST_OBJ) || (*st & JSON_WST_KEYED)) { w->err = JSON_ERR_INVALID; return; }
    if (*st & JSON_WST_MORE) w_putc(w, ',');
    w_escaped(w, key, n);
    w_putc(w, ':');
    *st |= JSON_WST_MORE | JSON_WST_KEYED;
}

void json_write_key(json_writer *w, const char *key)
{
    json_write_keyn(w, key, strlen(key));
}

void json_write_strn(json_writer *w, const char *s, size_t n)
{
    if (w_value(w) < 0) return;
    w_escaped(w, s, n);
    w_after(w);
}

void json_write_str(json_writer *w, const char *s)
{
    if (!s) json_write_null(w);
    else json_write_strn(w, s, strlen(s));
}

void json_write_raw(json_writer *w, const char *json, size_t n)
{
    if (w_value(w) < 0) return;
    w_put(w, json, n);
    w_after(w);
}

void json_write_tok(json_writer *w, const char *js, const json_tok *toks, int i)
{
    if (i < 0) { w_fail(w, JSON_ERR_INVALID); return; }
    const json_tok *t = &toks[i];
    if (t->type == JSON_STRING)
        json_write_raw(w, js + t->start - 1, (size_t)(t->end - t->start) + 2);
    else
        json_write_raw(w, js + t->start, (size_t)(t->end - t->start));
}

void json_write_int(json_writer *w, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", v);
    json_write_raw(w, b, (size_t)n);
}

void json_write_uint(json_writer *w, unsigned long long v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", v);
    json_write_raw(w, b, (size_t)n);
}

/* printf may use the locale's decimal separator: make it '.'. %g never
 * prints grouping characters, so any byte outside the JSON number
 * alphabet is the separator. */
static void num_fix_locale(char *b)
{
    for (; *b; b++)
        if (!IS_DIGIT(*b) && *b != '-' && *b != '+' && *b != 'e' && *b != 'E') *b = '.';
}

void json_write_double(json_writer *w, double v)
{
    char b[40];
    if (!isfinite(v)) { json_write_null(w); return; }
    /* The shortest of %.15g/%.16g/%.17g that reads back exactly; %.17g
     * always does. (Fewer digits need no extra try: %.15g drops trailing
     * zeros.) */
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, v);
        if (prec == 17 || strtod(b, NULL) == v) break;
    }
    num_fix_locale(b);
    json_write_raw(w, b, strlen(b));
}

void json_write_float(json_writer *w, float v)
{
    char b[40];
    if (!isfinite(v)) { json_write_null(w); return; }
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(b, sizeof b, "%.*g", prec, (double)v);
        if (prec == 9 || strtof(b, NULL) == v) break;
    }
    num_fix_locale(b);
    json_write_raw(w, b, strlen(b));
}

void json_write_bool(json_writer *w, int v)
{
    if (v) json_write_raw(w, "true", 4);
    else json_write_raw(w, "false", 5);
}

void json_write_null(json_writer *w)
{
    json_write_raw(w, "null", 4);
}
