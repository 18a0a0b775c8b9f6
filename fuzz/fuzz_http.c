/* fuzz_http.c — libFuzzer entry for the HTTP request parser and the chunked
 * decoder. Every slice the parser returns is read (so ASan sees bad spans),
 * and invariants are checked with abort():
 *   - a head parsed whole parses to the same length when cut right after it,
 *     and its last proper prefix says "need more";
 *   - the chunked decoder gives the same bytes and result whether the input
 *     is fed whole, split in two at a point chosen by the input, or in-place.
 * Input layout: byte 0 picks the limits and split point, the rest is data.
 *
 *     make build/fuzz/fuzz_http
 *     build/fuzz/fuzz_http -max_total_time=60 /tmp/corpus_http fuzz/corpus/http
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static volatile unsigned sink;

static void touch(const char *p, size_t n)
{
    unsigned s = 0;
    for (size_t i = 0; i < n; i++)
        s += (unsigned char)p[i];
    sink += s;
}

static int decode_all(const char *in, size_t len, size_t split, uint64_t max_body, char *out,
                      size_t *out_len, int *used, http_err *err)
{
    http_chunked ch;
    size_t on, total = 0, pos = 0;
    int r = -2;
    http_chunked_init(&ch, max_body);
    if (split > len)
        split = len;
    r = http_chunked_decode(&ch, in, split, out, &on);
    total += on;
    if (r >= 0) {
        pos = (size_t)r;
    } else if (r == -2) {
        pos = split;
        r = http_chunked_decode(&ch, in + split, len - split, out + total, &on);
        total += on;
        if (r >= 0)
            pos += (size_t)r;
    }
    *out_len = total;
    *used = r >= 0 ? (int)pos : r;
    *err = ch.err;
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    http_header hs[16];
    http_request req = { .headers = hs, .max_headers = (size_t)(ctl & 15) + 1 };
    size_t max_head = 64 + (size_t)(ctl >> 4) * 256;

    /* Copy so ASan catches reads past the end of the input. */
    char *buf = malloc(len ? len : 1);
    memcpy(buf, in, len);

    int r = http_request_parse(&req, buf, len, max_head);
    if (r >= 0) {
        if ((size_t)r > len || (size_t)r > max_head)
            abort();
        touch(req.method, req.method_len);
        touch(req.target, req.target_len);
        touch(req.path, req.path_len);
        if (req.query)
            touch(req.query, req.query_len);
        for (size_t i = 0; i < req.n_headers; i++) {
            touch(req.headers[i].name, req.headers[i].name_len);
            touch(req.headers[i].value, req.headers[i].value_len);
        }
        if (http_header_find(&req, "content-type"))
            sink++;
        /* The head alone gives the same answer; one byte less needs more. */
        http_request r2 = { .headers = hs, .max_headers = req.max_headers };
        if (http_request_parse(&r2, buf, (size_t)r, max_head) != r)
            abort();
        if (r > 0 && http_request_parse(&r2, buf, (size_t)r - 1, max_head) != -2)
            abort();
        if (req.body_kind == HTTP_BODY_CHUNKED) {
            char *out = malloc(len - (size_t)r + 1);
            size_t on;
            int used;
            http_err e;
            decode_all(buf + r, len - (size_t)r, len, 1u << 20, out, &on, &used, &e);
            touch(out, on);
            free(out);
        }
    } else if (r == -1) {
        if (req.err == HTTP_OK || http_err_status(req.err) < 400)
            abort();
    } else if (r != -2) {
        abort();
    }

    /* The whole input as a chunked body: whole vs split vs in place. */
    {
        size_t split = len ? (size_t)ctl * 7919u % (len + 1) : 0;
        uint64_t max_body = ctl & 1 ? 64 : 1u << 20;
        char *o1 = malloc(len + 1), *o2 = malloc(len + 1), *o3 = malloc(len + 1);
        size_t n1, n2, n3;
        int u1, u2, u3;
        http_err e1, e2, e3;
        int r1 = decode_all(buf, len, len, max_body, o1, &n1, &u1, &e1);
        int r2 = decode_all(buf, len, split, max_body, o2, &n2, &u2, &e2);
        memcpy(o3, buf, len);
        int r3 = decode_all(o3, len, len, max_body, o3, &n3, &u3, &e3);
        if (r1 == -2 && r2 == -2 && n1 != n2)
            abort();
        if ((r1 >= 0) != (r2 >= 0) || (r1 == -1) != (r2 == -1) || u1 != u2 || e1 != e2)
            abort();
        if (r1 >= 0 && (n1 != n2 || memcmp(o1, o2, n1)))
            abort();
        if (r1 != r3 || u1 != u3 || n1 != n3 || memcmp(o1, o3, n1))
            abort();
        touch(o1, n1);
        free(o1);
        free(o2);
        free(o3);
    }
    free(buf);
    return 0;
}
