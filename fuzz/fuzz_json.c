/* fuzz_json.c — libFuzzer entry for third_party_vendored_json.
 *
 * Parse the input; on success read every token's span (so sanitizers see a
 * bad span), exercise the accessors, unescape every string, then
 * re-serialize the token tree with the writer (strings decoded and
 * re-escaped, numbers re-printed through json_get_double) and require the
 * result to parse to the same shape. Also: count-only mode must agree, a
 * one-token-short array must give NOMEM, every prefix must not crash.
 * Build: make build/fuzz/fuzz_json */
#include "json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXTOK 4096

static volatile unsigned sink;

static void touch(const char *p, size_t n)
{
    unsigned h = 0;
    for (size_t i = 0; i < n; i++) h = h * 31 + (unsigned char)p[i];
    sink ^= h;
}

/* Re-emit token i and its subtree; returns the index after it. */
static int emit(json_writer *w, const char *js, const json_tok *t, int i, char *scratch, size_t cap)
{
    double d;
    long long ll;
    int b;
    switch (t[i].type) {
    case JSON_OBJECT: {
        json_write_obj_begin(w);
        int j = i + 1;
        for (int k = 0; k < t[i].size; k++) {
            int n = json_string_unescape(js, t, j, scratch, cap);
            if (n < 0) abort();
            json_write_keyn(w, scratch, (size_t)n);
            j = emit(w, js, t, j + 1, scratch, cap);
        }
        json_write_obj_end(w);
        return j;
    }
    case JSON_ARRAY: {
        json_write_arr_begin(w);
        int j = i + 1;
        for (int k = 0; k < t[i].size; k++) j = emit(w, js, t, j, scratch, cap);
        json_write_arr_end(w);
        return j;
    }
    case JSON_STRING: {
        int n = json_string_unescape(js, t, i, scratch, cap);
        if (n < 0) abort();
        json_write_strn(w, scratch, (size_t)n);
        return i + 1;
    }
    case JSON_NUMBER:
        if (json_get_int64(js, t, i, &ll) == 0) json_write_int(w, ll);
        else if (json_get_double(js, t, i, &d) == 0) json_write_double(w, d);
        else json_write_null(w);    /* out of range for a double */
        return i + 1;
    case JSON_TRUE:
    case JSON_FALSE:
        if (json_get_bool(js, t, i, &b) != 0) abort();
        json_write_bool(w, b);
        return i + 1;
    case JSON_NULL:
        json_write_null(w);
        return i + 1;
    default:
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_tok t[MAXTOK], t2[MAXTOK];
    const char *js = (const char *)data;
    json_parser p = { 0 };
    int n = json_parse(&p, js, size, t, MAXTOK);
    json_parser pc = { 0 };
    int nc = json_parse(&pc, js, size, NULL, 0);

    /* Count-only agrees with the real parse. */
    if (n == JSON_ERR_NOMEM) {
        if (nc != p.ntok || nc <= MAXTOK) abort();
        return 0;
    }
    if (nc != n || pc.err_pos != p.err_pos) abort();
    if (n < 0) {
        if (p.err_pos > size) abort();
        if (n == JSON_ERR_PARTIAL && p.err_pos != size) abort();
        return 0;
    }

    /* Every span inside the input, strings framed by quotes. */
    for (int i = 0; i < n; i++) {
        if (t[i].start < 0 || t[i].end < t[i].start || (size_t)t[i].end > size) abort();
        touch(js + t[i].start, (size_t)(t[i].end - t[i].start));
        if (t[i].type == JSON_STRING && (js[t[i].start - 1] != '"' || js[t[i].end] != '"')) abort();
    }
    if (json_skip(t, 0) != n) abort();
    if (n > 1 && json_parse(&pc, js, size, t2, n - 1) != JSON_ERR_NOMEM) abort();

    /* Unescape every string; exercise lookups with every key. */
    size_t cap = size + 1;
    char *scratch = malloc(cap);
    for (int i = 0; i < n; i++) {
        if (t[i].type == JSON_STRING) {
            int u = json_string_unescape(js, t, i, scratch, cap);
            if (u < 0) abort();
            touch(scratch, (size_t)u);
            if (!json_tok_eqn(js, t, i, scratch, (size_t)u)) abort();
        }
        if (t[i].type == JSON_OBJECT && t[i].size > 0) {
            int u = json_string_unescape(js, t, i + 1, scratch, cap);
            if (u < 0 || json_obj_getn(js, t, i, scratch, (size_t)u) < 0) abort();
        }
        if (t[i].type == JSON_ARRAY && t[i].size > 0 &&
            json_arr_get(t, i, t[i].size - 1) < 0) abort();
    }

    /* Re-serialize and re-parse: same token count and types. */
    size_t ocap = size * 6 + 64;
    char *out = malloc(ocap);
    json_writer w;
    json_writer_init(&w, out, ocap);
    if (emit(&w, js, t, 0, scratch, cap) != n) abort();
    if (json_writer_error(&w) == 0) {
        if (json_writer_finish(&w) != 0) abort();
        json_parser p2 = { .max_depth = p.max_depth };
        int n2 = json_parse(&p2, out, w.len, t2, MAXTOK);
        if (n2 != n) abort();
        for (int i = 0; i < n; i++)
            if (t2[i].type != t[i].type && !(t[i].type == JSON_NUMBER && t2[i].type == JSON_NULL)) abort();
    } else if (json_writer_error(&w) != JSON_ERR_DEPTH) {
        abort();   /* 6x + 64 always suffices; only deep nesting may fail */
    }
    free(out);
    free(scratch);
    return 0;
}
