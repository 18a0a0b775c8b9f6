/* test_json.c — third_party_vendored_json: parser conformance tables (y_/n_
 * cases in the spirit of JSONTestSuite, written for mote), token spans,
 * count-only mode, NOMEM, error positions, every proper prefix, accessors,
 * unescaping, writer escaping/round trips/overflow. */
#include "test.h"
#include "json.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>

/* ---- helpers --------------------------------------------------------------- */

/* Parse a private heap copy of exactly len bytes, so ASan sees over-reads. */
static int parse_copy(json_parser *p, const char *s, size_t len, json_tok *toks, int cap)
{
    char *c = malloc(len ? len : 1);
    if (len) memcpy(c, s, len);
    int r = json_parse(p, c, len, toks, cap);
    free(c);
    return r;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Printable rendering of test input for TAP lines (one static buffer). */
static const char *vis(const char *s, size_t len)
{
    static char out[256];
    size_t o = 0;
    for (size_t i = 0; i < len && o + 5 < sizeof out; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) out[o++] = (char)c;
        else o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", c);
    }
    out[o] = 0;
    return out;
}

/* Check the structural invariants of a successful parse. Returns 1 if ok. */
static int tokens_consistent(const char *js, size_t len, const json_tok *t, int n)
{
    for (int i = 0; i < n; i++) {
        const json_tok *k = &t[i];
        if (k->type < JSON_OBJECT || k->type > JSON_NULL) return 0;
        if (k->start < 0 || k->end < k->start || (size_t)k->end > len) return 0;
        if (i == 0 ? k->parent != -1 : (k->parent < 0 || k->parent >= i)) return 0;
        if (i > 0) {
            const json_tok *pa = &t[k->parent];
            if (pa->type != JSON_OBJECT && pa->type != JSON_ARRAY) return 0;
            if (k->start <= pa->start || k->end >= pa->end) return 0;
        }
        switch (k->type) {
        case JSON_OBJECT:
            if (js[k->start] != '{' || js[k->end - 1] != '}') return 0;
            break;
        case JSON_ARRAY:
            if (js[k->start] != '[' || js[k->end - 1] != ']') return 0;
            break;
        case JSON_STRING:
            if (k->start < 1 || js[k->start - 1] != '"' || js[k->end] != '"') return 0;
            break;
        default:
            if (k->size != 0) return 0;
        }
        if (k->type != JSON_OBJECT && k->type != JSON_ARRAY && k->size != 0) return 0;
        /* Children: count those whose parent is i; objects alternate key/value. */
        if (k->type == JSON_OBJECT || k->type == JSON_ARRAY) {
            int direct = 0, j = i + 1;
            int want = k->type == JSON_OBJECT ? 2 * k->size : k->size;
            for (int c = 0; c < want; c++) {
                if (j >= n || t[j].parent != i) return 0;
                if (k->type == JSON_OBJECT && c % 2 == 0 && t[j].type != JSON_STRING) return 0;
                direct++;
                j = json_skip(t, j);
            }
            if (direct != want || j > n) return 0;
            if (j < n && t[j].parent == i) return 0;
        }
    }
    return json_skip(t, 0) == n;
}

/* ---- conformance tables ------------------------------------------------------ */

typedef struct {
    const char *s;
    int len;      /* -1: strlen */
    int ntok;     /* expected token count, 0: don't check */
} ycase;

static const ycase Y[] = {
    /* numbers */
    { "0", -1, 1 }, { "-0", -1, 1 }, { "1", -1, 1 }, { "-1", -1, 1 }, { "123", -1, 1 },
    { "1.5", -1, 1 }, { "-1.5", -1, 1 }, { "0.5", -1, 1 }, { "1e5", -1, 1 }, { "1E5", -1, 1 },
    { "1e+5", -1, 1 }, { "1e-5", -1, 1 }, { "1.5e-10", -1, 1 }, { "0e0", -1, 1 },
    { "-0.0e-0", -1, 1 }, { "0E+00", -1, 1 }, { "10.01e010", -1, 1 },
    { "123456789012345678901234567890123456789012345678901234567890", -1, 1 },
    { "1e999999999999999999", -1, 1 }, { "-1e-999999999999999999", -1, 1 },
    { "[0.000000000000000000000000000000000000000000001]", -1, 2 },
    { "[1,-2,3.5,-4e4]", -1, 5 },
    /* literals */
    { "true", -1, 1 }, { "false", -1, 1 }, { "null", -1, 1 },
    { "[true,false,null]", -1, 4 },
    /* strings and escapes */
    { "\"\"", -1, 1 }, { "\"abc\"", -1, 1 },
    { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", -1, 1 },
    { "\"\\u0000\"", -1, 1 }, { "\"\\u00e9\"", -1, 1 }, { "\"\\u00E9\"", -1, 1 },
    { "\"\\ud83d\\ude00\"", -1, 1 }, { "\"\\uD83D\\uDE00\"", -1, 1 },
    { "\"\\uDBFF\\uDFFF\"", -1, 1 }, { "\"\\uD800\\uDC00\"", -1, 1 },
    { "\"\\uFFFF\"", -1, 1 }, { "\"\\uFFFE\"", -1, 1 }, { "\"\\uD7FF\\uE000\"", -1, 1 },
    { "\"/ ' ` \x7f ~\"", -1, 1 },
    { "\"\xc3\xa9\"", -1, 1 },                 /* U+00E9 */
    { "\"\xc2\x80\"", -1, 1 },                 /* U+0080, smallest 2-byte */
    { "\"\xdf\xbf\"", -1, 1 },                 /* U+07FF */
    { "\"\xe0\xa0\x80\"", -1, 1 },             /* U+0800, smallest 3-byte */
    { "\"\xe2\x82\xac\"", -1, 1 },             /* U+20AC */
    { "\"\xed\x9f\xbf\"", -1, 1 },             /* U+D7FF, last before surrogates */
    { "\"\xee\x80\x80\"", -1, 1 },             /* U+E000, first after */
    { "\"\xef\xbf\xbf\"", -1, 1 },             /* U+FFFF */
    { "\"\xf0\x90\x80\x80\"", -1, 1 },         /* U+10000, smallest 4-byte */
    { "\"\xf0\x9f\x98\x80\"", -1, 1 },         /* U+1F600 */
    { "\"\xf4\x8f\xbf\xbf\"", -1, 1 },         /* U+10FFFF, the last code point */
    { "\"\xef\xbb\xbf\"", -1, 1 },             /* a BOM inside a string is fine */
    { "\"a\\u0041\xc3\xa9\\n\"", -1, 1 },
    /* structures */
    { "{}", -1, 1 }, { "[]", -1, 1 }, { "[[]]", -1, 2 }, { "[{}]", -1, 2 },
    { "{\"a\":{}}", -1, 3 }, { "{\"\":0}", -1, 3 }, { "{\"a\":1,\"a\":2}", -1, 5 },
    { "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}", -1, 9 },
    { "[[[[[[[[[[1]]]]]]]]]]", -1, 11 },
    { "[\"a\",[\"b\",{\"c\":[]}],{}]", -1, 8 },
    /* whitespace */
    { " \t\r\n[ 1 , 2 ] \t\r\n", -1, 3 }, { "\n{\n\"a\"\n:\n1\n}\n", -1, 3 },
    { " 1 ", -1, 1 }, { "\"x\"\n", -1, 1 },
};

typedef struct {
    const char *s;
    int len;      /* -1: strlen */
    int rc;       /* expected error */
    int pos;      /* expected err_pos, -1: don't check */
    const char *what;
} ncase;

#define I JSON_ERR_INVALID
#define P JSON_ERR_PARTIAL

static const ncase N[] = {
    { "", -1, P, 0, "empty input" },
    { " \t\r\n", -1, P, 4, "whitespace only" },
    /* numbers */
    { "01", -1, I, 1, "leading zero" }, { "-01", -1, I, 2, "negative leading zero" },
    { "00", -1, I, 1, "double zero" }, { "[01]", -1, I, 2, "leading zero in array" },
    { "+1", -1, I, 0, "plus sign" }, { ".5", -1, I, 0, "no integer part" },
    { "[.5]", -1, I, 1, "no integer part in array" },
    { "1.", -1, P, 2, "no fraction digits at end" }, { "[1.]", -1, I, 3, "no fraction digits" },
    { "1.e5", -1, I, 2, "dot then exponent" }, { "1e", -1, P, 2, "empty exponent at end" },
    { "1e+", -1, P, 3, "signed empty exponent at end" }, { "[1e]", -1, I, 3, "empty exponent" },
    { "1ea", -1, I, 2, "letter exponent" }, { "1e5.5", -1, I, 3, "fractional exponent" },
    { "1.5.5", -1, I, 3, "two dots" }, { "-", -1, P, 1, "lone minus" },
    { "-a", -1, I, 1, "minus letter" }, { "- 1", -1, I, 1, "minus space" },
    { "[-]", -1, I, 2, "minus in array" }, { "--1", -1, I, 1, "double minus" },
    { "0x10", -1, I, 1, "hex" }, { "1_000", -1, I, 1, "underscore" },
    { "Infinity", -1, I, 0, "Infinity" }, { "-Infinity", -1, I, 1, "-Infinity" },
    { "NaN", -1, I, 0, "NaN" }, { "[1,2 3]", -1, I, 5, "two numbers" },
    { "1 2", -1, I, 2, "two top-level values" }, { "1e1e1", -1, I, 3, "two exponents" },
    { "2.e3", -1, I, 2, "2.e3" }, { "\xd9\xa1", -1, I, 0, "arabic digit" },
    /* literals */
    { "tru", -1, P, 3, "truncated true" }, { "nul", -1, P, 3, "truncated null" },
    { "f", -1, P, 1, "truncated false" }, { "True", -1, I, 0, "capital True" },
    { "truex", -1, I, 4, "true then garbage" }, { "nulL", -1, I, 3, "nulL" },
    { "[truth]", -1, I, 4, "truth" }, { "undefined", -1, I, 0, "undefined" },
    { "[nil]", -1, I, 2, "nil" },
    /* strings */
    { "\"abc", -1, P, 4, "unterminated string" }, { "\"", -1, P, 1, "lone quote" },
    { "'a'", -1, I, 0, "single quotes" }, { "[\"a\",'b']", -1, I, 5, "single quotes in array" },
    { "\"\\x41\"", -1, I, 2, "\\x escape" }, { "\"\\U0041\"", -1, I, 2, "\\U escape" },
    { "\"\\'\"", -1, I, 2, "\\' escape" }, { "\"\\a\"", -1, I, 2, "\\a escape" },
    { "\"\\0\"", -1, I, 2, "\\0 escape" }, { "\"\\", -1, P, 2, "backslash at end" },
    { "\"\\\"", -1, P, 3, "escaped quote at end" },
    { "\"\\u12\"", -1, I, 5, "short \\u" }, { "\"\\u123", -1, P, 6, "\\u at end" },
    { "\"\\u12G4\"", -1, I, 5, "bad hex digit" }, { "\"\\u-123\"", -1, I, 3, "\\u-" },
    { "\"\\uD800\"", -1, I, 7, "lone high surrogate" },
    { "\"\\uDBFF\"", -1, I, 7, "lone high surrogate DBFF" },
    { "\"\\uDC00\"", -1, I, 1, "lone low surrogate" },
    { "\"\\uDFFF\\uD800\"", -1, I, 1, "reversed surrogates" },
    { "\"\\uD800\\u0041\"", -1, I, 7, "high surrogate + non-surrogate" },
    { "\"\\uD800\\uD800\"", -1, I, 7, "two high surrogates" },
    { "\"\\uD800\\n\"", -1, I, 7, "high surrogate + \\n" },
    { "\"\\uD800x\"", -1, I, 7, "high surrogate + x" },
    { "\"\\uD800\\", -1, P, 8, "high surrogate, backslash at end" },
    { "\"\\uD800\\uDC", -1, P, 11, "high surrogate, short low at end" },
    { "\"a\tb\"", -1, I, 2, "raw tab" }, { "\"a\nb\"", -1, I, 2, "raw newline" },
    { "\"\x1f\"", -1, I, 1, "raw 0x1f" }, { "\"a\0b\"", 5, I, 2, "raw NUL" },
    { "\"\r\"", -1, I, 1, "raw CR" },
    /* raw UTF-8 */
    { "\"\xc0\x80\"", -1, I, 1, "overlong NUL (C0 80)" },
    { "\"\xc1\xbf\"", -1, I, 1, "overlong 2-byte (C1)" },
    { "\"\xe0\x80\x80\"", -1, I, 2, "overlong 3-byte (E0 80)" },
    { "\"\xe0\x9f\xbf\"", -1, I, 2, "overlong 3-byte (E0 9F)" },
    { "\"\xf0\x80\x80\x80\"", -1, I, 2, "overlong 4-byte (F0 80)" },
    { "\"\xf0\x8f\xbf\xbf\"", -1, I, 2, "overlong 4-byte (F0 8F)" },
    { "\"\xed\xa0\x80\"", -1, I, 2, "UTF-8 encoded surrogate D800" },
    { "\"\xed\xbf\xbf\"", -1, I, 2, "UTF-8 encoded surrogate DFFF" },
    { "\"\xed\xa0\xbd\xed\xb8\x80\"", -1, I, 2, "CESU-8 pair" },
    { "\"\xf4\x90\x80\x80\"", -1, I, 2, "U+110000" },
    { "\"\xf5\x80\x80\x80\"", -1, I, 1, "F5 lead" },
    { "\"\xf8\x88\x80\x80\x80\"", -1, I, 1, "5-byte form" },
    { "\"\xff\"", -1, I, 1, "FF" }, { "\"\xfe\"", -1, I, 1, "FE" },
    { "\"\x80\"", -1, I, 1, "lone continuation 80" },
    { "\"\xbf\"", -1, I, 1, "lone continuation BF" },
    { "\"a\xc3\"", -1, I, 3, "truncated 2-byte before quote" },
    { "\"\xe2\x82\"", -1, I, 3, "truncated 3-byte before quote" },
    { "\"\xf0\x9f\x98\"", -1, I, 4, "truncated 4-byte before quote" },
    { "\"\xe2\x82x\"", -1, I, 3, "truncated 3-byte before ASCII" },
    { "\"\xc3\xc3\xa9\"", -1, I, 2, "lead byte then lead byte" },
    { "\"\xc3", -1, P, 2, "2-byte at end of input" },
    { "\"\xf0\x9f\x98", -1, P, 4, "4-byte at end of input" },
    { "\xc3\xa9", -1, I, 0, "raw UTF-8 outside a string" },
    /* structure */
    { "[", -1, P, 1, "open array" }, { "[1", -1, P, 2, "array without close" },
    { "[1,", -1, P, 3, "array after comma" }, { "{", -1, P, 1, "open object" },
    { "{\"a\"", -1, P, 4, "object after key" }, { "{\"a\":", -1, P, 5, "object after colon" },
    { "{\"a\":1", -1, P, 6, "object after value" }, { "[[[]]", -1, P, 5, "one close missing" },
    { "[1,]", -1, I, 3, "trailing comma in array" }, { "[,1]", -1, I, 1, "leading comma" },
    { "[1,,2]", -1, I, 3, "double comma" }, { "[,]", -1, I, 1, "lone comma" },
    { "{\"a\":1,}", -1, I, 7, "trailing comma in object" }, { "{,}", -1, I, 1, "comma in object" },
    { "{\"a\" 1}", -1, I, 5, "missing colon" }, { "{\"a\"::1}", -1, I, 5, "double colon" },
    { "{\"a\"=1}", -1, I, 4, "equals sign" },
    { "{a:1}", -1, I, 1, "unquoted key" }, { "{1:1}", -1, I, 1, "number key" },
    { "{null:1}", -1, I, 1, "null key" }, { "{\"a\":}", -1, I, 5, "missing value" },
    { "[1}", -1, I, 2, "mismatched close" }, { "{\"a\":1]", -1, I, 6, "mismatched close 2" },
    { "]", -1, I, 0, "lone close" }, { "}", -1, I, 0, "lone brace" },
    { "[]]", -1, I, 2, "extra close" }, { "{}}", -1, I, 2, "extra brace" },
    { "[1 2]", -1, I, 3, "missing comma" }, { "{\"a\":1 \"b\":2}", -1, I, 7, "missing comma in object" },
    { "[\"a\":1]", -1, I, 4, "colon in array" }, { "{\"a\"}", -1, I, 4, "key without value" },
    { "{\"a\",1}", -1, I, 4, "comma after key" }, { "[\"a\"", -1, P, 4, "array, string, end" },
    { ":", -1, I, 0, "lone colon" }, { ",", -1, I, 0, "lone comma at top" },
    /* comments, BOM, odd whitespace, trailing garbage */
    { "[1]//c", -1, I, 3, "line comment after" }, { "/*c*/[1]", -1, I, 0, "block comment before" },
    { "[1/*c*/]", -1, I, 2, "block comment inside" }, { "#\n[]", -1, I, 0, "hash comment" },
    { "\xef\xbb\xbf[]", -1, I, 0, "UTF-8 BOM" }, { "\xef\xbb\xbf", -1, I, 0, "BOM only" },
    { "[1,\f2]", -1, I, 3, "form feed" }, { "\v[]", -1, I, 0, "vertical tab" },
    { "\xc2\xa0[]", -1, I, 0, "NBSP" }, { "[]\0", 3, I, 2, "trailing NUL" },
    { "[]x", -1, I, 2, "trailing letter" }, { "{} {}", -1, I, 3, "two objects" },
    { "1,", -1, I, 1, "trailing comma at top" }, { "\"a\" \"b\"", -1, I, 4, "two strings" },
    { "[]\n]", -1, I, 3, "trailing close after newline" },
};

#undef I
#undef P

static void test_y(void)
{
    int bad_count = 0, bad_prefix = 0, bad_nomem = 0, bad_struct = 0;
    for (size_t c = 0; c < sizeof Y / sizeof *Y; c++) {
        const ycase *y = &Y[c];
        size_t len = y->len < 0 ? strlen(y->s) : (size_t)y->len;
        json_parser p = { 0 };
        json_tok t[64];
        int n0 = parse_copy(&p, y->s, len, NULL, 0);
        int n = parse_copy(&p, y->s, len, t, 64);
        if (!T_CHECK(n > 0 && n == n0 && p.ntok == n && p.err_pos == 0 && (!y->ntok || n == y->ntok),
                     "y %zu '%s': %d tokens (count-only %d, expected %d)", c, vis(y->s, len), n, n0, y->ntok)) {
            T_NOTE("err %s at %zu", json_strerror(n), p.err_pos);
            continue;
        }
        if (!tokens_consistent(y->s, len, t, n)) {
            bad_struct++;
            T_NOTE("inconsistent tokens for '%s'", vis(y->s, len));
        }
        /* Exact array works, one less is NOMEM with the needed count. */
        json_tok *exact = malloc(sizeof *exact * (size_t)n);
        if (parse_copy(&p, y->s, len, exact, n) != n) bad_count++;
        free(exact);
        json_tok small[64];
        int r = parse_copy(&p, y->s, len, small, n - 1);
        if (r != JSON_ERR_NOMEM || p.ntok != n) {
            bad_nomem++;
            T_NOTE("'%s' with %d tokens: %d, ntok %d", vis(y->s, len), n - 1, r, p.ntok);
        }
        /* Every proper prefix: valid itself or PARTIAL, never a crash. */
        for (size_t k = 0; k < len; k++) {
            r = parse_copy(&p, y->s, k, t, 64);
            if (!(r > 0 || (r == JSON_ERR_PARTIAL && p.err_pos == k))) {
                bad_prefix++;
                T_NOTE("prefix %zu of '%s': %s at %zu", k, vis(y->s, len), json_strerror(r), p.err_pos);
            }
        }
    }
    T_CHECK(bad_struct == 0, "y cases: spans, sizes, parents consistent (%d bad)", bad_struct);
    T_CHECK(bad_count == 0, "y cases: exactly sized token array suffices (%d bad)", bad_count);
    T_CHECK(bad_nomem == 0, "y cases: one token too few gives NOMEM with ntok (%d bad)", bad_nomem);
    T_CHECK(bad_prefix == 0, "y cases: every proper prefix is valid or PARTIAL at its end (%d bad)", bad_prefix);
}

static void test_n(void)
{
    int bad_mode = 0, bad_prefix = 0;
    for (size_t c = 0; c < sizeof N / sizeof *N; c++) {
        const ncase *x = &N[c];
        size_t len = x->len < 0 ? strlen(x->s) : (size_t)x->len;
        json_parser p = { 0 };
        json_tok t[64];
        int r = parse_copy(&p, x->s, len, t, 64);
        T_CHECK(r == x->rc && (x->pos < 0 || p.err_pos == (size_t)x->pos),
                "n %zu %s: %s at %zu (expected %s at %d)", c, x->what, json_strerror(r),
                p.err_pos, json_strerror(x->rc), x->pos);
        /* Same verdict in count-only mode and with a 1-token array (an
         * invalid document is INVALID, not NOMEM). */
        size_t pos = p.err_pos;
        int r0 = parse_copy(&p, x->s, len, NULL, 0);
        int r1 = parse_copy(&p, x->s, len, t, 1);
        if (r0 != r || r1 != r || p.err_pos != pos) {
            bad_mode++;
            T_NOTE("%s: count-only %d, cap 1 %d", x->what, r0, r1);
        }
        /* Prefixes of an invalid document never crash and never succeed
         * past the error. */
        for (size_t k = 0; k < len; k++) {
            int rk = parse_copy(&p, x->s, k, t, 64);
            if (rk == 0 || rk < JSON_ERR_DEPTH) bad_prefix++;
        }
    }
    T_CHECK(bad_mode == 0, "n cases: same error in count-only mode and with a tiny array (%d bad)", bad_mode);
    T_CHECK(bad_prefix == 0, "n cases: prefixes give a token count or a parse error (%d bad)", bad_prefix);
}

/* ---- spans, NOMEM, depth -------------------------------------------------------- */

static void test_spans(void)
{
    const char *js = "{\"a\":[1,2,{\"b\":null}],\"c\":\"x\\ty\",\"d\":-1.5e3}";
    json_parser p = { 0 };
    json_tok t[16];
    int n = json_parse(&p, js, strlen(js), t, 16);
    static const struct { json_type type; const char *text; int size, parent; } want[] = {
        { JSON_OBJECT, "{\"a\":[1,2,{\"b\":null}],\"c\":\"x\\ty\",\"d\":-1.5e3}", 3, -1 },
        { JSON_STRING, "a", 0, 0 }, { JSON_ARRAY, "[1,2,{\"b\":null}]", 3, 0 },
        { JSON_NUMBER, "1", 0, 2 }, { JSON_NUMBER, "2", 0, 2 },
        { JSON_OBJECT, "{\"b\":null}", 1, 2 }, { JSON_STRING, "b", 0, 5 },
        { JSON_NULL, "null", 0, 5 }, { JSON_STRING, "c", 0, 0 },
        { JSON_STRING, "x\\ty", 0, 0 }, { JSON_STRING, "d", 0, 0 },
        { JSON_NUMBER, "-1.5e3", 0, 0 },
    };
    int ok = n == 12;
    for (int i = 0; ok && i < n; i++) {
        size_t l = strlen(want[i].text);
        ok = t[i].type == want[i].type && (size_t)(t[i].end - t[i].start) == l &&
             memcmp(js + t[i].start, want[i].text, l) == 0 && t[i].size == want[i].size &&
             t[i].parent == want[i].parent;
        if (!ok) T_NOTE("token %d: %s [%d,%d) size %d parent %d", i, json_type_name(t[i].type),
                        t[i].start, t[i].end, t[i].size, t[i].parent);
    }
    T_CHECK(ok, "token types, spans, sizes and parents of a sample document");

    /* NOMEM: position of the first token that did not fit, count needed. */
    int r = json_parse(&p, js, strlen(js), t, 5);
    T_CHECK(r == JSON_ERR_NOMEM && p.ntok == 12 && p.err_pos == 10,
            "NOMEM with 5 tokens: ntok %d, err_pos %zu (first unstored token at 10)", p.ntok, p.err_pos);
    T_CHECK(json_parse(&p, js, strlen(js), t, 0) == JSON_ERR_NOMEM && p.err_pos == 0,
            "NOMEM with 0 tokens at position 0");
    T_CHECK(json_parse(&p, js, strlen(js), NULL, 0) == 12 && p.ntok == 12, "count-only mode returns 12");

    /* Large document: count-only then exact allocation. */
    size_t cap = 400000, len = 0;
    char *big = malloc(cap);
    big[len++] = '[';
    for (int i = 0; i < 10000; i++) len += (size_t)sprintf(big + len, "%s{\"k%d\":[%d,\"v\"]}", i ? "," : "", i, i);
    big[len++] = ']';
    int cnt = json_parse(&p, big, len, NULL, 0);
    json_tok *bt = malloc(sizeof *bt * (size_t)(cnt > 0 ? cnt : 1));
    int n2 = json_parse(&p, big, len, bt, cnt);
    T_CHECK(cnt == 1 + 10000 * 5 && n2 == cnt && tokens_consistent(big, len, bt, n2),
            "10000-element document: count-only %d, parse %d, consistent", cnt, n2);
    free(bt);
    free(big);
}

static void test_depth(void)
{
    char buf[3000];
    json_parser p = { 0 };
    json_tok t[2100];
    size_t n;
    for (n = 0; n < 64; n++) buf[n] = '[';
    for (size_t k = 0; k < 64; k++) buf[n++] = ']';
    int r = json_parse(&p, buf, n, t, 2100);
    T_CHECK(r == 64, "64 nested arrays accepted by default");
    for (n = 0; n < 65; n++) buf[n] = '[';
    for (size_t k = 0; k < 65; k++) buf[n++] = ']';
    r = json_parse(&p, buf, n, t, 2100);
    T_CHECK(r == JSON_ERR_DEPTH && p.err_pos == 64, "65 nested arrays: DEPTH at the 65th '[' (pos %zu)", p.err_pos);
    T_CHECK(json_parse(&p, buf, n, NULL, 0) == JSON_ERR_DEPTH, "depth limit in count-only mode too");
    const char *objs = "{\"a\":{\"a\":{\"a\":1}}}";
    p.max_depth = 3;
    T_CHECK(json_parse(&p, objs, strlen(objs), t, 16) == 7, "3 nested objects with max_depth 3");
    p.max_depth = 2;
    r = json_parse(&p, objs, strlen(objs), t, 16);
    T_CHECK(r == JSON_ERR_DEPTH && p.err_pos == 10, "3 nested objects with max_depth 2: DEPTH at %zu", p.err_pos);
    p.max_depth = 1;
    T_CHECK(json_parse(&p, "[1,[2]]", 7, t, 16) == JSON_ERR_DEPTH && p.err_pos == 3, "max_depth 1");
    T_CHECK(json_parse(&p, "[1,2]", 5, t, 16) == 3 && json_parse(&p, "7", 1, t, 16) == 1,
            "max_depth 1 still allows a flat array and scalars");
    /* Clamp to JSON_DEPTH_MAX; a megabyte of '[' is a clean error. */
    p.max_depth = 1 << 30;
    for (n = 0; n < 1100; n++) buf[n] = '[';
    r = json_parse(&p, buf, n, NULL, 0);
    T_CHECK(r == JSON_ERR_DEPTH && p.err_pos == JSON_DEPTH_MAX,
            "max_depth clamped to JSON_DEPTH_MAX (%zu)", p.err_pos);
    size_t mb = 1 << 20;
    char *deep = malloc(mb);
    memset(deep, '[', mb);
    json_parser q = { 0 };
    T_CHECK(json_parse(&q, deep, mb, t, 2100) == JSON_ERR_DEPTH && q.err_pos == 64,
            "1 MiB of '[' gives DEPTH at 64");
    memset(deep, '"', 1);
    memset(deep + 1, 'a', mb - 1);
    T_CHECK(json_parse(&q, deep, mb, t, 2100) == JSON_ERR_PARTIAL && q.err_pos == mb,
            "1 MiB unterminated string gives PARTIAL at the end");
    free(deep);
}

/* ---- accessors ---------------------------------------------------------------- */

static void test_accessors(void)
{
    const char *js =
        "{\"model\":\"m\",\"mo\\u0064el\":\"m2\",\"n\":3,\"t\":0.5,\"b\":true,\"f\":false,"
        "\"z\":null,\"arr\":[10,[20,21],{\"x\":1},30],\"o\":{\"inner\":{\"k\":\"v\"}},"
        "\"big\":1e400,\"\\u00e9\":\"accent\",\"nul\\u0000\":1,\"s\":\"2\"}";
    json_parser p = { 0 };
    json_tok t[64];
    int n = json_parse(&p, js, strlen(js), t, 64);
    T_CHECK(n > 0, "accessor document parses (%d)", n);
    if (n <= 0) return;

    int v = json_obj_get(js, t, 0, "model");
    T_CHECK(v >= 0 && json_tok_eq(js, t, v, "m2"), "duplicate key (escaped spelling): last wins");
    T_CHECK(json_obj_get(js, t, 0, "missing") == -1, "missing key gives -1");
    T_CHECK(json_obj_get(js, t, -1, "model") == -1, "obj -1 gives -1 (chaining)");
    T_CHECK(json_obj_get(js, t, json_obj_get(js, t, 0, "arr"), "x") == -1, "obj_get on an array gives -1");
    int k = json_obj_get(js, t, json_obj_get(js, t, json_obj_get(js, t, 0, "o"), "inner"), "k");
    T_CHECK(k >= 0 && json_tok_eq(js, t, k, "v"), "chained lookups o.inner.k");
    T_CHECK(json_tok_eq(js, t, json_obj_get(js, t, 0, "\xc3\xa9"), "accent"), "key with \\u escape matches UTF-8");
    T_CHECK(json_obj_getn(js, t, 0, "nul\0", 4) >= 0 && json_obj_get(js, t, 0, "nul") == -1,
            "key with \\u0000 matches only with explicit length");
    T_CHECK(json_obj_get(js, t, 0, "mode") == -1 && json_obj_get(js, t, 0, "modell") == -1,
            "prefix and extension of a key do not match");

    long long ll = 0;
    double d = 0;
    int b = -1;
    T_CHECK(json_get_int64(js, t, json_obj_get(js, t, 0, "n"), &ll) == 0 && ll == 3, "int n = 3");
    T_CHECK(json_get_int64(js, t, json_obj_get(js, t, 0, "t"), &ll) == JSON_ERR_NOTINT, "0.5 is NOTINT");
    T_CHECK(json_get_int64(js, t, json_obj_get(js, t, 0, "s"), &ll) == JSON_ERR_TYPE, "string \"2\" is TYPE for int");
    T_CHECK(json_get_int64(js, t, json_obj_get(js, t, 0, "nope"), &ll) == JSON_ERR_MISSING, "absent is MISSING");
    T_CHECK(json_get_double(js, t, json_obj_get(js, t, 0, "t"), &d) == 0 && d == 0.5, "double t = 0.5");
    T_CHECK(json_get_double(js, t, json_obj_get(js, t, 0, "big"), &d) == JSON_ERR_RANGE, "1e400 is RANGE");
    T_CHECK(json_get_double(js, t, json_obj_get(js, t, 0, "z"), &d) == JSON_ERR_TYPE, "null is TYPE for double");
    T_CHECK(json_get_bool(js, t, json_obj_get(js, t, 0, "b"), &b) == 0 && b == 1, "bool b = true");
    T_CHECK(json_get_bool(js, t, json_obj_get(js, t, 0, "f"), &b) == 0 && b == 0, "bool f = false");
    T_CHECK(json_get_bool(js, t, json_obj_get(js, t, 0, "n"), &b) == JSON_ERR_TYPE, "number is TYPE for bool");
    T_CHECK(json_get_bool(js, t, -1, &b) == JSON_ERR_MISSING, "bool MISSING");
    T_CHECK(json_is_null(t, json_obj_get(js, t, 0, "z")) && !json_is_null(t, -1) &&
            !json_is_null(t, json_obj_get(js, t, 0, "b")), "json_is_null");
    T_CHECK(json_tok_type(t, -1) == JSON_UNDEFINED && json_tok_type(t, 0) == JSON_OBJECT, "json_tok_type");
    T_CHECK(json_tok_eq(js, t, json_obj_get(js, t, 0, "b"), "true") &&
            json_tok_eq(js, t, json_obj_get(js, t, 0, "n"), "3") && !json_tok_eq(js, t, -1, ""),
            "tok_eq on non-strings compares raw text");

    int arr = json_obj_get(js, t, 0, "arr");
    int seen[8], m = 0;
    JSON_ARR_FOREACH(t, arr, e, i) {
        if (m < 8) seen[m++] = e;
        (void)i;
    }
    T_CHECK(m == 4 && json_tok_eq(js, t, seen[0], "10") && t[seen[1]].type == JSON_ARRAY &&
            t[seen[2]].type == JSON_OBJECT && json_tok_eq(js, t, seen[3], "30"),
            "JSON_ARR_FOREACH visits 4 elements, skipping subtrees");
    T_CHECK(json_arr_get(t, arr, 3) == seen[3] && json_arr_get(t, arr, 0) == arr + 1 &&
            json_arr_get(t, arr, 4) == -1 && json_arr_get(t, arr, -1) == -1 &&
            json_arr_get(t, -1, 0) == -1 && json_arr_get(t, 0, 0) == -1, "json_arr_get");
    T_CHECK(json_skip(t, arr) == arr + 1 + 1 + 3 + 3 + 1 && json_skip(t, 0) == n, "json_skip");
    int keys = 0;
    JSON_OBJ_FOREACH(t, 0, key, i) {
        keys += t[key].type == JSON_STRING;
        (void)i;
    }
    T_CHECK(keys == t[0].size && keys == 13, "JSON_OBJ_FOREACH visits %d keys", keys);
}

static void test_numbers(void)
{
    static const struct { const char *s; int rc; long long v; } ints[] = {
        { "0", 0, 0 }, { "-0", 0, 0 }, { "42", 0, 42 }, { "-42", 0, -42 }, { "3.0", 0, 3 },
        { "30e-1", 0, 3 }, { "3E0", 0, 3 }, { "0.3e1", 0, 3 }, { "1e18", 0, 1000000000000000000LL },
        { "9223372036854775807", 0, LLONG_MAX }, { "-9223372036854775808", 0, LLONG_MIN },
        { "9223372036854775808", JSON_ERR_RANGE, 0 }, { "-9223372036854775809", JSON_ERR_RANGE, 0 },
        { "1e19", JSON_ERR_RANGE, 0 }, { "1e999999999999", JSON_ERR_RANGE, 0 },
        { "18446744073709551616", JSON_ERR_RANGE, 0 }, { "0.5", JSON_ERR_NOTINT, 0 },
        { "1e-1", JSON_ERR_NOTINT, 0 }, { "1.000000000000000000000000001", JSON_ERR_NOTINT, 0 },
        { "0e99999999", 0, 0 }, { "0.0000", 0, 0 }, { "100000e-5", 0, 1 }, { "1e-999999999999", JSON_ERR_NOTINT, 0 },
        { "922337203685477580.7e1", 0, LLONG_MAX }, { "12345678901234567890e-10", JSON_ERR_NOTINT, 0 },
    };
    int bad = 0;
    for (size_t c = 0; c < sizeof ints / sizeof *ints; c++) {
        json_parser p = { 0 };
        json_tok t[2];
        long long v = 12345;
        int n = json_parse(&p, ints[c].s, strlen(ints[c].s), t, 2);
        int rc = n == 1 ? json_get_int64(ints[c].s, t, 0, &v) : n;
        if (rc != ints[c].rc || (rc == 0 && v != ints[c].v) || (rc != 0 && v != 12345)) {
            bad++;
            T_NOTE("int64 '%s': rc %d v %lld", ints[c].s, rc, v);
        }
    }
    T_CHECK(bad == 0, "json_get_int64 table (%d bad)", bad);

    /* Doubles agree with glibc strtod (correctly rounded) on tricky and
     * random inputs, including ones longer than the kept digits. */
    static const char *dbl[] = {
        "0", "-0", "0.1", "1e-5", "2.2250738585072014e-308", "2.2250738585072011e-308",
        "4.9406564584124654e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
        "1e-400", "1.7976931348623157e308", "1.7976931348623158e308", "9007199254740993",
        "123456789012345678901234567890e-10", "0.000000000000000000000000000001e30",
        "179769313486231580793728971405301e276",
    };
    bad = 0;
    for (size_t c = 0; c < sizeof dbl / sizeof *dbl; c++) {
        json_parser p = { 0 };
        json_tok t[2];
        double v;
        if (json_parse(&p, dbl[c], strlen(dbl[c]), t, 2) != 1 ||
            json_get_double(dbl[c], t, 0, &v) != 0 || memcmp(&v, &(double){ strtod(dbl[c], NULL) }, sizeof v) != 0) {
            bad++;
            T_NOTE("double '%s'", dbl[c]);
        }
    }
    T_CHECK(bad == 0, "json_get_double matches strtod on edge cases (%d bad)", bad);

    /* Halfway case decided by a digit beyond the kept 800: 2^53 + 1 followed
     * by 900 zeros and a 1 must round up. */
    char *s = malloc(2000);
    size_t l = (size_t)sprintf(s, "9007199254740993.");
    memset(s + l, '0', 900);
    l += 900;
    s[l++] = '1';
    s[l] = 0;
    json_parser p = { 0 };
    json_tok t[2];
    double v = 0;
    T_CHECK(json_parse(&p, s, l, t, 2) == 1 && json_get_double(s, t, 0, &v) == 0 &&
            v == 9007199254740994.0 && v == strtod(s, NULL), "sticky digit past 800 rounds up (%.17g)", v);
    s[l - 1] = '0';
    T_CHECK(json_get_double(s, t, 0, &v) == 0 && v == 9007199254740992.0, "exact halfway rounds to even");
    long long ll;
    T_CHECK(json_get_int64(s, t, 0, &ll) == JSON_ERR_RANGE || json_get_int64(s, t, 0, &ll) == 0,
            "int64 of a 917-digit number is clean");
    free(s);

    bad = 0;
    for (int it = 0; it < 2000; it++) {
        char b[128];
        int len = 0, nd = 1 + (int)(rng() % 40);
        if (rng() & 1) b[len++] = '-';
        b[len++] = (char)('1' + rng() % 9);
        for (int i = 1; i < nd; i++) {
            if (i == nd / 2 && (rng() & 1)) b[len++] = '.';
            b[len++] = (char)('0' + rng() % 10);
        }
        if (b[len - 1] == '.') b[len++] = '0';
        if (rng() & 1) len += sprintf(b + len, "e%d", (int)(rng() % 700) - 350);
        b[len] = 0;
        double want = strtod(b, NULL), got;
        int rc = json_parse(&p, b, (size_t)len, t, 2) == 1 ? json_get_double(b, t, 0, &got) : -100;
        if (isinf(want) ? rc != JSON_ERR_RANGE : (rc != 0 || memcmp(&got, &want, sizeof got) != 0)) {
            bad++;
            if (bad < 5) T_NOTE("random double '%s': rc %d", b, rc);
        }
    }
    T_CHECK(bad == 0, "json_get_double matches strtod on 2000 random numbers (%d bad)", bad);
}

static void test_unescape(void)
{
    static const struct { const char *js; const char *want; int wantlen; } u[] = {
        { "\"abc\"", "abc", 3 },
        { "\"\"", "", 0 },
        { "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8 },
        { "\"\\u0041\\u00e9\\u20AC\"", "A\xc3\xa9\xe2\x82\xac", 6 },
        { "\"\\ud83d\\ude00!\"", "\xf0\x9f\x98\x80!", 5 },
        { "\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4 },
        { "\"a\\u0000b\"", "a\0b", 3 },
        { "\"\xc3\xa9\\n\"", "\xc3\xa9\n", 3 },
        { "\"\\u07FF\\u0800\\uFFFF\"", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 8 },
    };
    int bad = 0;
    for (size_t c = 0; c < sizeof u / sizeof *u; c++) {
        json_parser p = { 0 };
        json_tok t[2];
        char out[64];
        memset(out, 'X', sizeof out);
        int ok = json_parse(&p, u[c].js, strlen(u[c].js), t, 2) == 1;
        int r = ok ? json_string_unescape(u[c].js, t, 0, out, sizeof out) : -9;
        size_t raw = (size_t)(t[0].end - t[0].start);
        int exact = ok ? json_string_unescape(u[c].js, t, 0, out, (size_t)u[c].wantlen + 1) : -9;
        int small = ok ? json_string_unescape(u[c].js, t, 0, out, (size_t)u[c].wantlen) : -9;
        int rawcap = ok ? json_string_unescape(u[c].js, t, 0, out, raw + 1) : -9;
        if (r != u[c].wantlen || memcmp(out, u[c].want, (size_t)r) != 0 || out[r] != 0 ||
            exact != r || small != -1 || rawcap != r) {
            bad++;
            T_NOTE("unescape '%s': %d (exact %d small %d)", u[c].js, r, exact, small);
        }
    }
    T_CHECK(bad == 0, "json_string_unescape table: value, NUL, exact cap, cap-1 fails (%d bad)", bad);
    json_parser p = { 0 };
    json_tok t[4];
    char out[8];
    json_parse(&p, "[1]", 3, t, 4);
    T_CHECK(json_string_unescape("[1]", t, 1, out, sizeof out) == -1 &&
            json_string_unescape("[1]", t, -1, out, sizeof out) == -1, "unescape of non-string / -1 is -1");
    json_parse(&p, "\"x\"", 3, t, 4);
    T_CHECK(json_string_unescape("\"x\"", t, 0, out, 0) == -1, "unescape with cap 0 is -1");

    T_CHECK(json_tok_eq("\"a\\nb\"", (json_tok[]){ { JSON_STRING, 1, 5, 0, -1 } }, 0, "a\nb") &&
            !json_tok_eq("\"a\\nb\"", (json_tok[]){ { JSON_STRING, 1, 5, 0, -1 } }, 0, "a\nbc") &&
            !json_tok_eq("\"a\\nb\"", (json_tok[]){ { JSON_STRING, 1, 5, 0, -1 } }, 0, "a\n"),
            "tok_eq decodes escapes and checks lengths");

    /* json_utf8_complete_len */
    static const struct { const char *s; size_t n, want; } cl[] = {
        { "abc", 3, 3 }, { "", 0, 0 }, { "a\xc3", 2, 1 }, { "a\xc3\xa9", 3, 3 },
        { "\xe2\x82", 2, 0 }, { "\xe2", 1, 0 }, { "\xe2\x82\xac", 3, 3 },
        { "x\xf0\x9f\x98", 4, 1 }, { "\xf0\x9f\x98\x80", 4, 4 }, { "a\xff", 2, 2 },
        { "a\x80", 2, 2 }, { "\xc0", 1, 1 }, { "\xed\xa0", 2, 2 }, { "\xe0\x80", 2, 2 },
    };
    bad = 0;
    for (size_t c = 0; c < sizeof cl / sizeof *cl; c++)
        if (json_utf8_complete_len(cl[c].s, cl[c].n) != cl[c].want) {
            bad++;
            T_NOTE("complete_len case %zu: %zu", c, json_utf8_complete_len(cl[c].s, cl[c].n));
        }
    T_CHECK(bad == 0, "json_utf8_complete_len holds back only valid-so-far tails (%d bad)", bad);
}

/* ---- writer --------------------------------------------------------------------- */

static void test_writer_escaping(void)
{
    static const struct { const char *in; int len; const char *out; } e[] = {
        { "abc", -1, "\"abc\"" },
        { "", -1, "\"\"" },
        { "a\"b\\c/", -1, "\"a\\\"b\\\\c/\"" },
        { "\n\r\t\b\f", -1, "\"\\n\\r\\t\\b\\f\"" },
        { "\x01\x1f\x7f", -1, "\"\\u0001\\u001f\x7f\"" },
        { "a\0b", 3, "\"a\\u0000b\"" },
        { "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", -1, "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"" },
        { "a\xffz", -1, "\"a\xef\xbf\xbdz\"" },
        { "\xc0\x80", -1, "\"\xef\xbf\xbd\xef\xbf\xbd\"" },
        { "\xe2\x82z", -1, "\"\xef\xbf\xbdz\"" },                  /* one U+FFFD per maximal subpart */
        { "\xed\xa0\x80", -1, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
        { "\xf0\x9f\x98", -1, "\"\xef\xbf\xbd\"" },                /* truncated at the end */
        { "\xf4\x90\x80\x80", -1, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },
    };
    int bad = 0;
    for (size_t c = 0; c < sizeof e / sizeof *e; c++) {
        char buf[128];
        json_writer w;
        json_writer_init(&w, buf, sizeof buf);
        json_write_strn(&w, e[c].in, e[c].len < 0 ? strlen(e[c].in) : (size_t)e[c].len);
        if (json_writer_finish(&w) != 0 || w.len != strlen(e[c].out) || memcmp(buf, e[c].out, w.len) != 0) {
            bad++;
            T_NOTE("escape case %zu: '%.*s'", c, (int)w.len, buf);
        }
    }
    T_CHECK(bad == 0, "writer string escaping and U+FFFD replacement (%d bad)", bad);

    /* Random bytes: output always parses; valid UTF-8 round-trips exactly. */
    int bad_parse = 0, bad_rt = 0, valid_seen = 0;
    for (int it = 0; it < 3000; it++) {
        unsigned char in[64];
        size_t n = rng() % sizeof in;
        int mode = (int)(rng() % 3);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng();
            if (mode == 0) in[i] = (unsigned char)r;                              /* anything */
            else if (mode == 1) in[i] = (unsigned char)(r % 0x80);                /* ASCII */
            else in[i] = (unsigned char)("\x80\xbf\xc2\xdf\xe0\xed\xf0\xf4\xa0\x9f\x8f\x90" "a\"\\\n"[r % 16]);
        }
        char buf[64 * 6 + 8], dec[64 * 6 + 8];
        json_writer w;
        json_writer_init(&w, buf, sizeof buf);
        json_write_strn(&w, (const char *)in, n);
        json_parser p = { 0 };
        json_tok t[2];
        if (json_writer_finish(&w) != 0 || json_parse(&p, buf, w.len, t, 2) != 1 || t[0].type != JSON_STRING) {
            bad_parse++;
            continue;
        }
        int dl = json_string_unescape(buf, t, 0, dec, sizeof dec);
        /* Is the input valid UTF-8? Ask the parser (the oracle tested
         * above) about the bytes with the escape-needing ones made harmless. */
        char q[70];
        size_t ql = 0;
        json_parser vp = { 0 };
        q[ql++] = '"';
        for (size_t j = 0; j < n; j++)
            q[ql++] = (in[j] < 0x20 || in[j] == '"' || in[j] == '\\') ? 'x' : (char)in[j];
        q[ql++] = '"';
        int valid = json_parse(&vp, q, ql, NULL, 0) == 1;
        if (valid) {
            valid_seen++;
            if (dl != (int)n || memcmp(dec, in, n) != 0) bad_rt++;
        }
    }
    T_CHECK(bad_parse == 0, "writer output of 3000 random byte strings always parses (%d bad)", bad_parse);
    T_CHECK(bad_rt == 0 && valid_seen > 500, "valid UTF-8 strings round-trip exactly (%d of %d bad)", bad_rt, valid_seen);
}

static void test_writer_doc(void)
{
    char buf[1024];
    json_writer w;
    json_writer_init(&w, buf, sizeof buf);
    json_write_obj_begin(&w);
    json_write_key(&w, "id");
    json_write_str(&w, "cmpl-1");
    json_write_key(&w, "n");
    json_write_int(&w, -3);
    json_write_key(&w, "u");
    json_write_uint(&w, 18446744073709551615ull);
    json_write_key(&w, "a");
    json_write_arr_begin(&w);
    json_write_double(&w, 0.1);
    json_write_float(&w, 0.1f);
    json_write_bool(&w, 1);
    json_write_bool(&w, 0);
    json_write_null(&w);
    json_write_str(&w, NULL);
    json_write_double(&w, NAN);
    json_write_double(&w, INFINITY);
    json_write_float(&w, -INFINITY);
    json_write_arr_begin(&w);
    json_write_arr_end(&w);
    json_write_obj_begin(&w);
    json_write_obj_end(&w);
    json_write_arr_end(&w);
    json_write_key(&w, "k\"q");
    json_write_raw(&w, "{\"r\":[1]}", 9);
    json_write_obj_end(&w);
    const char *want = "{\"id\":\"cmpl-1\",\"n\":-3,\"u\":18446744073709551615,\"a\":[0.1,0.1,true,false,"
                       "null,null,null,null,null,[],{}],\"k\\\"q\":{\"r\":[1]}}";
    T_CHECK(json_writer_finish(&w) == 0 && w.len == strlen(want) && memcmp(buf, want, w.len) == 0,
            "writer document: %.*s", (int)w.len, buf);

    /* Copy subtrees of a parsed document. */
    const char *js = "{\"a\":\"x\\u0041\",\"b\":[1,{\"c\":null}]}";
    json_parser p = { 0 };
    json_tok t[16];
    json_parse(&p, js, strlen(js), t, 16);
    json_writer_init(&w, buf, sizeof buf);
    json_write_arr_begin(&w);
    json_write_tok(&w, js, t, json_obj_get(js, t, 0, "a"));
    json_write_tok(&w, js, t, json_obj_get(js, t, 0, "b"));
    json_write_arr_end(&w);
    const char *copied = "[\"x\\u0041\",[1,{\"c\":null}]]";
    T_CHECK(json_writer_finish(&w) == 0 && w.len == strlen(copied) && memcmp(buf, copied, w.len) == 0,
            "json_write_tok copies subtrees verbatim: %.*s", (int)w.len, buf);
    json_write_tok(&w, js, t, -1);
    T_CHECK(json_writer_error(&w) == JSON_ERR_INVALID, "json_write_tok(-1) is a misuse");

    /* Misuse is sticky INVALID. */
    struct { const char *what; int step; } mis[] = {
        { "value in object without key", 0 }, { "key in array", 1 }, { "key at top level", 2 },
        { "mismatched end", 3 }, { "end at depth 0", 4 }, { "second top-level value", 5 },
        { "key after key", 6 }, { "end after dangling key", 7 },
    };
    int bad = 0;
    for (size_t c = 0; c < sizeof mis / sizeof *mis; c++) {
        json_writer_init(&w, buf, sizeof buf);
        switch (mis[c].step) {
        case 0: json_write_obj_begin(&w); json_write_int(&w, 1); break;
        case 1: json_write_arr_begin(&w); json_write_key(&w, "k"); break;
        case 2: json_write_key(&w, "k"); break;
        case 3: json_write_arr_begin(&w); json_write_obj_end(&w); break;
        case 4: json_write_arr_end(&w); break;
        case 5: json_write_int(&w, 1); json_write_int(&w, 2); break;
        case 6: json_write_obj_begin(&w); json_write_key(&w, "a"); json_write_key(&w, "b"); break;
        case 7: json_write_obj_begin(&w); json_write_key(&w, "a"); json_write_obj_end(&w); break;
        }
        size_t len = w.len;
        json_write_null(&w);
        if (json_writer_error(&w) != JSON_ERR_INVALID || w.len != len) {
            bad++;
            T_NOTE("misuse '%s' not caught", mis[c].what);
        }
    }
    T_CHECK(bad == 0, "writer misuse is a sticky JSON_ERR_INVALID (%d bad)", bad);
    json_writer_init(&w, buf, sizeof buf);
    json_write_arr_begin(&w);
    T_CHECK(json_writer_error(&w) == 0 && json_writer_finish(&w) == JSON_ERR_INVALID,
            "finish with an open container is INVALID");
    json_writer_init(&w, buf, sizeof buf);
    T_CHECK(json_writer_finish(&w) == JSON_ERR_INVALID, "finish with nothing written is INVALID");
    json_writer_init(&w, buf, sizeof buf);
    for (int i = 0; i < JSON_WRITER_DEPTH; i++) json_write_arr_begin(&w);
    T_CHECK(json_writer_error(&w) == 0, "JSON_WRITER_DEPTH nested arrays fit");
    json_write_arr_begin(&w);
    T_CHECK(json_writer_error(&w) == JSON_ERR_DEPTH, "one more is JSON_ERR_DEPTH");
}

static void test_writer_numbers(void)
{
    /* Doubles: random bit patterns print shortest-ish and read back exactly. */
    int bad = 0, longest = 0;
    for (int it = 0; it < 20000; it++) {
        uint64_t bits = rng();
        double v;
        if (it < 8) {
            static const double fixed[] = { 0.0, -0.0, 1.0, 0.1, 1e300, 5e-324, DBL_MAX, -DBL_MIN };
            v = fixed[it];
        } else {
            memcpy(&v, &bits, sizeof v);
            if (!isfinite(v)) continue;
        }
        char buf[64];
        json_writer w;
        json_writer_init(&w, buf, sizeof buf);
        json_write_double(&w, v);
        json_parser p = { 0 };
        json_tok t[2];
        double back;
        if ((int)w.len > longest) longest = (int)w.len;
        if (json_writer_finish(&w) != 0 || json_parse(&p, buf, w.len, t, 2) != 1 ||
            json_get_double(buf, t, 0, &back) != 0 || memcmp(&back, &v, sizeof v) != 0) {
            bad++;
            if (bad < 4) T_NOTE("double %a wrote '%.*s'", v, (int)w.len, buf);
        }
    }
    T_CHECK(bad == 0, "20000 random doubles round-trip bit-exactly (%d bad, longest %d chars)", bad, longest);

    bad = 0;
    for (int it = 0; it < 20000; it++) {
        uint32_t bits = (uint32_t)rng();
        float v;
        memcpy(&v, &bits, sizeof v);
        if (!isfinite(v)) continue;
        char buf[64];
        json_writer w;
        json_writer_init(&w, buf, sizeof buf - 1);
        json_write_float(&w, v);
        buf[w.len] = 0;
        json_parser p = { 0 };
        float back = strtof(buf, NULL);
        if (json_writer_finish(&w) != 0 || json_parse(&p, buf, w.len, NULL, 0) != 1 ||
            memcmp(&back, &v, sizeof v) != 0 || w.len > 15) {
            bad++;
            if (bad < 4) T_NOTE("float %a wrote '%s'", (double)v, buf);
        }
    }
    T_CHECK(bad == 0, "20000 random floats round-trip with at most 9 digits (%d bad)", bad);

    char buf[64];
    json_writer w;
    static const double shortv[] = { 0.1, 0.3, 1.5, 100, 1e21, 123.456, -2.5e-8 };
    static const char *shorts[] = { "0.1", "0.3", "1.5", "100", "1e+21", "123.456", "-2.5e-08" };
    bad = 0;
    for (size_t c = 0; c < sizeof shortv / sizeof *shortv; c++) {
        json_writer_init(&w, buf, sizeof buf);
        json_write_double(&w, shortv[c]);
        if (w.len != strlen(shorts[c]) || memcmp(buf, shorts[c], w.len) != 0) {
            bad++;
            T_NOTE("double %.17g wrote '%.*s'", shortv[c], (int)w.len, buf);
        }
    }
    T_CHECK(bad == 0, "short doubles print short (0.1 not 0.10000000000000001)");
    json_writer_init(&w, buf, sizeof buf);
    json_write_arr_begin(&w);
    json_write_int(&w, LLONG_MIN);
    json_write_int(&w, LLONG_MAX);
    json_write_arr_end(&w);
    json_parser p = { 0 };
    json_tok t[4];
    long long a = 0, b = 0;
    T_CHECK(json_parse(&p, buf, w.len, t, 4) == 3 && json_get_int64(buf, t, 1, &a) == 0 &&
            json_get_int64(buf, t, 2, &b) == 0 && a == LLONG_MIN && b == LLONG_MAX,
            "int64 extremes round-trip: %.*s", (int)w.len, buf);
}

/* Build the same document into every capacity: never a byte past cap, the
 * written bytes are a prefix of the full output, overflow flagged iff short. */
static void write_sample(json_writer *w)
{
    json_write_obj_begin(w);
    json_write_key(w, "choices");
    json_write_arr_begin(w);
    for (int i = 0; i < 3; i++) {
        json_write_obj_begin(w);
        json_write_key(w, "text");
        json_write_str(w, "h\xc3\xa9llo \"w\"\n\xff");
        json_write_key(w, "logprob");
        json_write_double(w, -0.125 * i);
        json_write_key(w, "i");
        json_write_int(w, i);
        json_write_obj_end(w);
    }
    json_write_arr_end(w);
    json_write_key(w, "done");
    json_write_bool(w, 1);
    json_write_obj_end(w);
}

static void test_writer_overflow(void)
{
    char full[512];
    json_writer w;
    json_writer_init(&w, full, sizeof full);
    write_sample(&w);
    size_t flen = w.len;
    json_parser p = { 0 };
    T_CHECK(json_writer_finish(&w) == 0 && json_parse(&p, full, flen, NULL, 0) > 0,
            "sample document (%zu bytes) parses", flen);
    int bad = 0;
    for (size_t cap = 0; cap <= flen + 2; cap++) {
        unsigned char *mem = malloc(cap + 32);
        memset(mem, 0xA5, cap + 32);
        json_writer_init(&w, (char *)mem, cap);
        write_sample(&w);
        int canary = 1;
        for (size_t i = cap; i < cap + 32; i++) canary &= mem[i] == 0xA5;
        int err = json_writer_error(&w);
        int want_err = cap < flen ? JSON_ERR_NOMEM : 0;
        if (!canary || err != want_err || w.len > cap || memcmp(mem, full, w.len) != 0 ||
            (cap >= flen && w.len != flen)) {
            bad++;
            T_NOTE("cap %zu: err %d len %zu canary %d", cap, err, w.len, canary);
        }
        free(mem);
    }
    T_CHECK(bad == 0, "writer at every capacity 0..%zu: canary intact, sticky NOMEM iff short (%d bad)", flen + 2, bad);
    json_writer_init(&w, NULL, 100);
    json_write_str(&w, "x");
    T_CHECK(json_writer_error(&w) == JSON_ERR_NOMEM && w.len == 0, "NULL buffer is capacity 0");
}

static void test_misc(void)
{
    T_CHECK(strcmp(json_strerror(JSON_ERR_PARTIAL), json_strerror(JSON_ERR_INVALID)) != 0 &&
            strcmp(json_strerror(12345), "unknown error") == 0, "json_strerror");
    T_CHECK(strcmp(json_type_name(JSON_OBJECT), "object") == 0 &&
            strcmp(json_type_name((json_type)99), "undefined") == 0, "json_type_name");
    json_parser p = { 0 };
    T_CHECK(json_parse(&p, NULL, 0, NULL, 0) == JSON_ERR_PARTIAL, "NULL empty input is PARTIAL");
    T_CHECK(json_parse(&p, "1", JSON_MAX_LEN + 1, NULL, 0) == JSON_ERR_NOMEM, "len > JSON_MAX_LEN is NOMEM");
    json_tok t[4];
    T_CHECK(json_parse(&p, "[1,2]", 5, t, -5) == JSON_ERR_NOMEM && p.ntok == 3, "negative cap is 0");
}

int main(void)
{
    test_y();
    test_n();
    test_spans();
    test_depth();
    test_accessors();
    test_numbers();
    test_unescape();
    test_writer_escaping();
    test_writer_doc();
    test_writer_numbers();
    test_writer_overflow();
    test_misc();
    return t_done();
}
