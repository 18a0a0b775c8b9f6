/* test_http.c — request head parser, chunked decoder, response builder.
 * Parsers are fed whole, byte by byte and split at every point. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "test.h"

#define MAXH 16

static int parse(http_request *req, http_header *hs, const char *s, size_t n, size_t max_head)
{
    req->headers = hs;
    req->max_headers = MAXH;
    return http_request_parse(req, s, n, max_head);
}

static int sl_eq(const char *p, size_t n, const char *lit)
{
    return p && strlen(lit) == n && !memcmp(p, lit, n);
}

/* ---- valid requests: whole, every prefix -2, extra bytes after ignored ---- */

static const char *valid[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /v1/models?x=1&y=2 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: t\r\n\r\n",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    "Content-Length: 12\r\n\r\n",
    "POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
    "GET /old HTTP/1.0\r\n\r\n",
    "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "HEAD / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces:   v  v \t\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
};

static void test_valid_prefixes(void)
{
    http_header hs[MAXH];
    http_request req;
    for (size_t k = 0; k < sizeof valid / sizeof *valid; k++) {
        const char *s = valid[k];
        size_t n = strlen(s);
        int ok = 1;
        int r = parse(&req, hs, s, n, 8192);
        T_CHECK(r == (int)n, "valid[%zu] whole parses to %zu bytes (got %d, err %s)",
                k, n, r, http_err_str(req.err));
        for (size_t i = 0; i < n; i++) {
            r = parse(&req, hs, s, i, 8192);
            if (r != -2) {
                ok = 0;
                T_NOTE("prefix %zu of valid[%zu] -> %d", i, k, r);
                break;
            }
        }
        T_CHECK(ok, "valid[%zu]: every proper prefix says need more", k);

        /* Byte by byte into a growing buffer, as the loop does. */
        char *b = malloc(n + 8);
        int got = -2;
        size_t i;
        for (i = 0; i < n && got == -2; i++) {
            b[i] = s[i];
            got = parse(&req, hs, b, i + 1, 8192);
        }
        T_CHECK(got == (int)n && i == n, "valid[%zu] byte by byte completes at the last byte", k);
        /* Pipelined bytes after the head are not consumed. */
        memcpy(b, s, n);
        memcpy(b + n, "GET ", 4);
        r = parse(&req, hs, b, n + 4, 8192);
        T_CHECK(r == (int)n, "valid[%zu] with trailing bytes uses only the head", k);
        free(b);
    }
}

static void test_fields(void)
{
    http_header hs[MAXH];
    http_request req;
    const char *s = valid[1];
    int r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0, "GET with query parses");
    T_CHECK(sl_eq(req.method, req.method_len, "GET"), "method slice");
    T_CHECK(sl_eq(req.target, req.target_len, "/v1/models?x=1&y=2"), "target slice");
    T_CHECK(sl_eq(req.path, req.path_len, "/v1/models"), "path slice");
    T_CHECK(sl_eq(req.query, req.query_len, "x=1&y=2"), "query slice");
    T_CHECK(req.minor_version == 1 && req.keep_alive == 1, "HTTP/1.1 keep-alive by default");
    T_CHECK(req.n_headers == 2, "two headers");
    const http_header *h = http_header_find(&req, "user-AGENT");
    T_CHECK(h && sl_eq(h->value, h->value_len, "t"), "header found case-insensitively");
    T_CHECK(http_header_find(&req, "missing") == NULL, "missing header is NULL");
    T_CHECK(req.body_kind == HTTP_BODY_NONE, "no body without framing headers");

    s = valid[2];
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.body_kind == HTTP_BODY_LENGTH && req.content_length == 12,
            "Content-Length framing");
    s = valid[3];
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.body_kind == HTTP_BODY_CHUNKED, "chunked framing");
    s = valid[4];
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.minor_version == 0 && req.keep_alive == 0, "HTTP/1.0 closes by default");
    s = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.keep_alive == 1, "HTTP/1.0 with Connection: keep-alive");
    s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.keep_alive == 0, "HTTP/1.1 with Connection list holding close");
    s = "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.keep_alive == 0, "close wins over keep-alive");
    s = "GET / HTTP/1.9\r\nHost: a\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.minor_version == 1, "HTTP/1.9 handled as 1.1");
    s = "PUT /a HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.expect_continue == 1, "Expect: 100-continue");
    s = "PUT /a HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.expect_continue == 0, "Expect ignored on HTTP/1.0");
    s = valid[6];
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && sl_eq(req.path, req.path_len, "*") && !req.query, "asterisk-form");
    s = valid[7];
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && sl_eq(req.path, req.path_len, "/p") && sl_eq(req.query, req.query_len, "q"),
            "absolute-form split into path and query");
    s = "GET http://example.com?z HTTP/1.1\r\nHost: example.com\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && sl_eq(req.path, req.path_len, "/") && sl_eq(req.query, req.query_len, "z"),
            "absolute-form without path gets '/'");
    s = "GET /? HTTP/1.1\r\nHost: a\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.query && req.query_len == 0, "empty query is a non-NULL empty slice");
    s = valid[8];
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.is_head && req.n_headers == 3 && req.headers[1].value_len == 0 &&
                sl_eq(req.headers[2].value, req.headers[2].value_len, "v  v"),
            "HEAD, empty value, value trimmed on both sides");
    s = "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 7\r\ncontent-length: 7\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.content_length == 7, "repeated equal Content-Length accepted");
    s = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.body_kind == HTTP_BODY_CHUNKED, "Transfer-Encoding: chunked");
    s = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 000\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), 8192);
    T_CHECK(r > 0 && req.body_kind == HTTP_BODY_LENGTH && req.content_length == 0,
            "Content-Length with leading zeros");
}

/* ---- invalid requests ---- */

typedef struct bad_case {
    const char *name;
    const char *req;
    size_t len;   /* sizeof the literal - 1: some hold NUL bytes */
    http_err err;
} bad_case;
#define BAD(name, lit, err) { name, lit, sizeof(lit) - 1, err }

static const bad_case bad[] = {
    BAD("empty method", " / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("method with '('", "GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("method with NUL", "GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("tab separator", "GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("target with control byte", "GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("target with 8-bit byte", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("target with fragment", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("authority-form", "CONNECT a.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("absolute-form empty authority", "GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("lowercase protocol", "GET / http/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("version without minor", "GET / HTTP/1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("version two digits", "GET / HTTP/1.10\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", HTTP_ERR_VERSION),
    BAD("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", HTTP_ERR_VERSION),
    BAD("no version (HTTP/0.9 style)", "GET /\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("space after version", "GET / HTTP/1.1 \r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("bare LF after request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("bare LF after header", "GET / HTTP/1.1\r\nHost: a\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("bare LF end of head", "GET / HTTP/1.1\r\nHost: a\r\n\n", HTTP_ERR_BAD_REQUEST),
    BAD("bare CR in value", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("bare LF leading line", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("obs-fold with tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("header without colon", "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("tab before colon", "GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("empty header name", "GET / HTTP/1.1\r\nHost: a\r\n: v\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("header name with '@'", "GET / HTTP/1.1\r\nHost: a\r\nX@Y: v\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("DEL in value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7f\r\n\r\n", HTTP_ERR_BAD_REQUEST),
    BAD("missing Host on 1.1", "GET / HTTP/1.1\r\nX: y\r\n\r\n", HTTP_ERR_NO_HOST),
    BAD("two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", HTTP_ERR_NO_HOST),
    BAD("conflicting Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("Content-Length sign", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("Content-Length negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("Content-Length hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("Content-Length inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("Content-Length empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("Content-Length 19 digits", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("TE and CL together", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("TE not chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("TE chunked not last", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("TE gzip then chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_ERR_CODING),
    BAD("TE empty", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("TE on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("TE chunked with junk", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", HTTP_ERR_BAD_FRAMING),
    BAD("Expect other", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", HTTP_ERR_EXPECTATION),
};

static void test_invalid(void)
{
    http_header hs[MAXH];
    http_request req;
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        int r = parse(&req, hs, bad[k].req, bad[k].len, 8192);
        T_CHECK(r == -1 && req.err == bad[k].err, "rejects %s (got %d, %s -> %d)", bad[k].name,
                r, http_err_str(req.err), http_err_status(req.err));
    }
}

static void test_limits(void)
{
    http_header hs[MAXH];
    http_request req;
    static char big[20000];
    int r;

    /* Huge header: 431 once the head passes max_head, before its end arrives. */
    size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big + n, 'x', 9000);
    n += 9000;
    r = parse(&req, hs, big, n, 8192);
    T_CHECK(r == -1 && req.err == HTTP_ERR_HEAD_TOO_LARGE &&
                http_err_status(req.err) == 431, "huge header -> 431 before the end");
    r = parse(&req, hs, big, 8191, 8192);
    T_CHECK(r == -2, "head below the limit still needs more");
    memcpy(big + n, "\r\n\r\n", 4);
    r = parse(&req, hs, big, n + 4, 20000);
    T_CHECK(r == (int)(n + 4), "same head accepted with a larger limit");

    /* Head exactly at the limit is accepted. */
    const char *s = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    r = parse(&req, hs, s, strlen(s), strlen(s));
    T_CHECK(r == (int)strlen(s), "head of exactly max_head bytes accepted");
    r = parse(&req, hs, s, strlen(s), strlen(s) - 1);
    T_CHECK(r == -1 && req.err == HTTP_ERR_HEAD_TOO_LARGE, "one byte over max_head -> 431");

    /* Long request line: 414. */
    n = (size_t)snprintf(big, sizeof big, "GET /");
    memset(big + n, 'a', 9000);
    n += 9000;
    r = parse(&req, hs, big, n, 8192);
    T_CHECK(r == -1 && req.err == HTTP_ERR_URI_TOO_LONG && http_err_status(req.err) == 414,
            "request line over max_head -> 414");

    /* Too many headers: capacity MAXH. */
    n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < MAXH; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
    r = parse(&req, hs, big, n, 8192);
    T_CHECK(r == -1 && req.err == HTTP_ERR_TOO_MANY_HEADERS && http_err_status(req.err) == 431,
            "more than max_headers lines -> 431");
    /* Exactly MAXH headers fit. */
    n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < MAXH - 1; i++)
        n += (size_t)snprintf(big + n, sizeof big - n, "X-%d: v\r\n", i);
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n");
    r = parse(&req, hs, big, n, 8192);
    T_CHECK(r == (int)n && req.n_headers == MAXH, "exactly max_headers lines accepted");
}

static void test_pipelined(void)
{
    http_header hs[MAXH];
    http_request req;
    const char *s = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                    "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                    "GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t n = strlen(s), off = 0;
    const char *paths[3] = { "/a", "/b", "/c" };
    int ok = 1;
    for (int k = 0; k < 3; k++) {
        int r = parse(&req, hs, s + off, n - off, 8192);
        if (r <= 0 || !sl_eq(req.path, req.path_len, paths[k])) {
            ok = 0;
            break;
        }
        off += (size_t)r;
        if (req.body_kind == HTTP_BODY_LENGTH)
            off += req.content_length;
    }
    T_CHECK(ok && off == n, "three pipelined requests parsed in order");
}

/* ---- chunked decoder ---- */

typedef struct chunk_case {
    const char *name;
    const char *in;
    const char *payload;   /* NULL: expect error */
    http_err err;
} chunk_case;

static const chunk_case chunks[] = {
    { "one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 0 },
    { "two chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", 0 },
    { "upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 0 },
    { "leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 0 },
    { "extension", "5;name=val\r\nhello\r\n0;x\r\n\r\n", "hello", 0 },
    { "extension with BWS", "5 ;a=\"q s\"\r\nhello\r\n0\r\n\r\n", "hello", 0 },
    { "trailers", "5\r\nhello\r\n0\r\nX-T: 1\r\nY: \r\n\r\n", "hello", 0 },
    { "empty body", "0\r\n\r\n", "", 0 },
    { "17 hex digits", "00000000000000001\r\nx\r\n0\r\n\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "size overflow", "FFFFFFFFFFFFFFFFF\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "huge size over limit", "FFFFFFFFFFFFFFFF\r\n", NULL, HTTP_ERR_BODY_TOO_LARGE },
    { "no digits", "\r\nhello\r\n0\r\n\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "non hex", "g\r\nhello\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "negative", "-5\r\nhello\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "0x prefix", "0x5\r\nhello\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "space inside size", "1 0\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "bare LF after size", "5\nhello\r\n0\r\n\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "data longer than size", "3\r\nhello\r\n0\r\n\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "missing CRLF after data", "5\r\nhello0\r\n\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "trailer without colon", "0\r\nBad\r\n\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "trailer obs-fold", "0\r\nX: a\r\n b\r\n\r\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "bare LF at end", "0\r\n\n", NULL, HTTP_ERR_BAD_CHUNK },
    { "body over limit", "5\r\nhello\r\n5\r\nhello\r\n5\r\nhello\r\n0\r\n\r\n", NULL, HTTP_ERR_BODY_TOO_LARGE },
};

#define CHUNK_LIMIT 12

/* Feed `in` in pieces of `step` bytes (0: split once at `split`), decoding in
 * place into a copy. Returns 1 if the outcome matches the case. */
static int run_chunk_case(const chunk_case *cc, size_t split, size_t step)
{
    size_t n = strlen(cc->in);
    char *b = malloc(n + 1 + 5);
    http_chunked ch;
    size_t pos = 0, dec = 0;
    int r = -2, first = 1;

    memcpy(b, cc->in, n);
    memcpy(b + n, "GET /", 5); /* pipelined bytes after the body */
    http_chunked_init(&ch, CHUNK_LIMIT);
    while (r == -2 && pos < n + 5) {
        size_t piece = step ? step : (first ? split : n + 5 - pos);
        first = 0;
        size_t out_n;
        if (piece > n + 5 - pos)
            piece = n + 5 - pos;
        r = http_chunked_decode(&ch, b + pos, piece, b + dec, &out_n);
        dec += out_n;
        if (r >= 0)
            pos += (size_t)r;
        else if (r == -2)
            pos += piece;
    }
    int ok;
    if (cc->payload)
        ok = r >= 0 && pos == n && dec == strlen(cc->payload) && !memcmp(b, cc->payload, dec) &&
             ch.total == dec;
    else
        ok = r == -1 && ch.err == cc->err;
    free(b);
    return ok;
}

static void test_chunked(void)
{
    for (size_t k = 0; k < sizeof chunks / sizeof *chunks; k++) {
        const chunk_case *cc = &chunks[k];
        size_t n = strlen(cc->in);
        T_CHECK(run_chunk_case(cc, n + 5, 0), "chunked %s: whole", cc->name);
        T_CHECK(run_chunk_case(cc, 0, 1), "chunked %s: byte by byte", cc->name);
        int ok = 1;
        for (size_t s = 0; s <= n + 5 && ok; s++)
            ok = run_chunk_case(cc, s, 0);
        T_CHECK(ok, "chunked %s: split at every point", cc->name);
    }

    /* Sticky error and sticky done. */
    http_chunked ch;
    char out[32];
    size_t on;
    http_chunked_init(&ch, 100);
    T_CHECK(http_chunked_decode(&ch, "z", 1, out, &on) == -1, "bad size errors");
    T_CHECK(http_chunked_decode(&ch, "0\r\n\r\n", 5, out, &on) == -1, "error is sticky");
    http_chunked_init(&ch, 100);
    T_CHECK(http_chunked_decode(&ch, "0\r\n\r\n", 5, out, &on) == 5, "done after last chunk");
    T_CHECK(http_chunked_decode(&ch, "5\r\n", 3, out, &on) == 0 && on == 0,
            "after done, nothing more is used");

    /* Size line with an over-long extension. */
    static char lng[3000];
    memset(lng, 'a', sizeof lng);
    memcpy(lng, "1;", 2);
    http_chunked_init(&ch, 100);
    T_CHECK(http_chunked_decode(&ch, lng, sizeof lng, lng, &on) == -1 &&
                ch.err == HTTP_ERR_BAD_CHUNK, "extension over HTTP_CHUNK_LINE_MAX rejected");
    /* Exactly the limit: body equal to max_body accepted. */
    http_chunked_init(&ch, 5);
    char in5[] = "5\r\nhello\r\n0\r\n\r\n";
    T_CHECK(http_chunked_decode(&ch, in5, strlen(in5), in5, &on) == (int)strlen(in5) && on == 5,
            "body of exactly max_body accepted");
}

/* ---- responses ---- */

static void test_response(void)
{
    buf b;
    buf_init(&b, 4096);
    http_response r = { .status = 200, .content_type = "application/json", .body = "{}",
                        .body_len = 2, .minor_version = 1, .keep_alive = 1,
                        .extra = "X-A: 1\r\n" };
    long n = http_response_write(&b, &r);
    char *s = strndup(buf_data(&b), buf_len(&b));
    T_CHECK(n > 0 && (size_t)n == buf_len(&b), "response written (%ld bytes)", n);
    T_CHECK(!strncmp(s, "HTTP/1.1 200 OK\r\nDate: ", 23), "status line then Date");
    T_CHECK(strstr(s, "\r\nContent-Type: application/json\r\n") != NULL, "Content-Type");
    T_CHECK(strstr(s, "\r\nContent-Length: 2\r\n") != NULL, "Content-Length");
    T_CHECK(strstr(s, "Connection") == NULL, "no Connection header for 1.1 keep-alive");
    T_CHECK(strstr(s, "\r\nX-A: 1\r\n\r\n{}") != NULL, "extra headers, blank line, body");

    /* Each header in the head can be parsed back with the request-header rules. */
    free(s);
    buf_reset(&b);
    r.head_only = 1;
    r.keep_alive = 0;
    r.minor_version = 0;
    n = http_response_write(&b, &r);
    s = strndup(buf_data(&b), buf_len(&b));
    T_CHECK(strstr(s, "Content-Length: 2\r\n") && strstr(s, "Connection: close\r\n") &&
                !strcmp(s + strlen(s) - 4, "\r\n\r\n"), "HEAD: length kept, no body; close");
    free(s);
    buf_reset(&b);
    r = (http_response){ .status = 204, .minor_version = 0, .keep_alive = 1 };
    n = http_response_write(&b, &r);
    s = strndup(buf_data(&b), buf_len(&b));
    T_CHECK(strstr(s, "HTTP/1.1 204 No Content\r\n") && !strstr(s, "Content-Length") &&
                strstr(s, "Connection: keep-alive\r\n"), "204 without Content-Length; 1.0 keep-alive");
    free(s);
    buf_reset(&b);
    r = (http_response){ .status = 200, .content_type = "text/event-stream", .chunked = 1,
                         .minor_version = 1, .keep_alive = 1 };
    n = http_response_write(&b, &r);
    s = strndup(buf_data(&b), buf_len(&b));
    T_CHECK(strstr(s, "Transfer-Encoding: chunked\r\n") && !strstr(s, "Content-Length"),
            "chunked response head");
    free(s);
    buf_reset(&b);
    T_CHECK(http_chunk_write(&b, "data: x\n\n", 9) == 14 && buf_len(&b) == 14 &&
                !memcmp(buf_data(&b), "9\r\ndata: x\n\n\r\n", 14), "chunk framing");
    T_CHECK(http_chunk_write(&b, NULL, 0) == 5 && !memcmp(buf_data(&b) + 14, "0\r\n\r\n", 5),
            "last chunk");
    T_CHECK(http_chunk_head_len(0xf) == 3 && http_chunk_head_len(0x10) == 4 &&
                http_chunk_head_len(0x12345) == 7, "chunk head length");
    buf_free(&b);

    /* Does not fit: -1 and the buffer unchanged. */
    buf_init(&b, 100);
    buf_append(&b, "keep", 4);
    r = (http_response){ .status = 200, .body = "x", .body_len = 1, .minor_version = 1,
                         .keep_alive = 1 };
    static char bigbody[200];
    r.body = bigbody;
    r.body_len = sizeof bigbody;
    T_CHECK(http_response_write(&b, &r) == -1 && buf_len(&b) == 4 &&
                !memcmp(buf_data(&b), "keep", 4), "too big: -1, buffer unchanged");
    r.status = 99;
    r.body_len = 0;
    T_CHECK(http_response_write(&b, &r) == -1, "status out of range refused");
    buf_free(&b);
    T_CHECK(!strcmp(http_reason(431), "Request Header Fields Too Large") &&
                !strcmp(http_reason(799), "Unknown"), "reason phrases");
}

static void test_helpers(void)
{
    T_CHECK(http_list_has("a, Close ,b", 11, "close"), "list has token with spaces");
    T_CHECK(!http_list_has("closed", 6, "close"), "list needs the whole token");
    T_CHECK(http_list_has(",,close", 7, "close"), "list with empty elements");
    T_CHECK(!http_list_has("", 0, "close"), "empty list");
    T_CHECK(http_slice_ieq("HoSt", 4, "host") && !http_slice_ieq("hos", 3, "host"), "slice_ieq");
}

/* ---- buf ---- */

static void test_buf(void)
{
    buf b;
    size_t room;
    T_CHECK(buf_init(&b, 16) == 0, "buf init");
    char *p = buf_room(&b, &room);
    T_CHECK(room == 16, "empty buf has cap room");
    memcpy(p, "0123456789", 10);
    buf_commit(&b, 10);
    buf_consume(&b, 8);
    T_CHECK(buf_len(&b) == 2 && !memcmp(buf_data(&b), "89", 2), "consume from head");
    p = buf_room(&b, &room);
    T_CHECK(room == 14 && b.head == 0, "room compacts when the tail is short");
    T_CHECK(buf_append(&b, "abcdefghijklmn", 14) == 0 && buf_space(&b) == 0, "append fills");
    T_CHECK(buf_append(&b, "x", 1) == -1 && buf_len(&b) == 16, "append over cap refused");
    buf_consume(&b, 16);
    T_CHECK(b.head == 0 && b.tail == 0, "empty buf resets positions");
    T_CHECK(buf_printf(&b, "%d-%s", 42, "ok") == 5 && !memcmp(buf_data(&b), "42-ok", 5), "printf");
    T_CHECK(buf_printf(&b, "%s", "this is far too long") == -1 && buf_len(&b) == 5,
            "printf over cap refused, unchanged");
    buf_truncate(&b, 2);
    T_CHECK(buf_len(&b) == 2, "truncate");
    buf_free(&b);
}

int main(void)
{
    test_valid_prefixes();
    test_fields();
    test_invalid();
    test_limits();
    test_pipelined();
    test_chunked();
    test_response();
    test_helpers();
    test_buf();
    return t_done();
}
