/* test_loop.c — the event loop on real loopback sockets, in-process: a
 * trivial echo handler, deferred replies and SSE streams from other
 * threads, limits, timeouts, pipelining, the pool, graceful stop. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "test.h"

/* ---- the server under test ---- */

static atomic_int g_workers;        /* producer threads running */
static atomic_int g_cancel_calls;   /* on_cancel invocations */
static atomic_int g_gone_seen;      /* producers that saw LOOP_GONE */
static atomic_int g_overflow_seen;  /* producers that saw LOOP_OVERFLOW */
static atomic_int g_stream_done;    /* streams ended with LOOP_OK */

typedef struct job {
    loop_handle h;
    int kind;          /* 1 deferred send, 2 sse n events, 3 sse until cancelled, 4 flood */
    int n;
    int ms;
    atomic_int cancelled;
} job;

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void on_cancel(void *arg)
{
    job *j = arg;
    atomic_store(&j->cancelled, 1);
    atomic_fetch_add(&g_cancel_calls, 1);
}

static void *worker(void *arg)
{
    job *j = arg;
    char ev[1100];
    int rc = LOOP_OK;

    if (j->ms)
        sleep_ms(j->ms);
    if (j->kind == 1) {
        rc = loop_send(j->h, 200, "text/plain", "X-Deferred: yes\r\n", "deferred", 8);
    } else {
        rc = loop_sse_start(j->h, NULL);
        for (int i = 0; rc == LOOP_OK; i++) {
            if (j->kind == 2 && i == j->n)
                break;
            if (j->kind == 3 && atomic_load(&j->cancelled))
                break;
            if (j->kind == 4) {
                memset(ev, 'x', 1024);
                rc = loop_sse_data(j->h, ev, 1024);
                continue;
            }
            if (i == 1) {
                rc = loop_sse_comment(j->h, "ping");
                if (rc != LOOP_OK)
                    break;
            }
            snprintf(ev, sizeof ev, "{\"i\":%d}", i);
            rc = loop_sse_data(j->h, ev, strlen(ev));
            if (j->kind == 3)
                sleep_ms(5);
        }
        if (rc == LOOP_OK && j->kind == 2)
            rc = loop_sse_raw(j->h, "data: [DONE]\n\n", 14);
        if (rc == LOOP_OK) {
            rc = loop_sse_end(j->h);
            if (rc == LOOP_OK)
                atomic_fetch_add(&g_stream_done, 1);
        } else {
            loop_sse_end(j->h); /* final call after an error: harmless */
        }
    }
    if (rc == LOOP_GONE || (j->kind == 3 && atomic_load(&j->cancelled)))
        atomic_fetch_add(&g_gone_seen, 1);
    if (rc == LOOP_OVERFLOW)
        atomic_fetch_add(&g_overflow_seen, 1);
    free(j);
    atomic_fetch_sub(&g_workers, 1);
    return NULL;
}

static void spawn(loop_reply *r, int kind, int n, int ms)
{
    job *j = calloc(1, sizeof *j);
    pthread_t t;
    j->kind = kind;
    j->n = n;
    j->ms = ms;
    j->h = loop_reply_defer(r, on_cancel, j);
    atomic_fetch_add(&g_workers, 1);
    pthread_create(&t, NULL, worker, j);
    pthread_detach(t);
}

static int path_is(const http_request *req, const char *p)
{
    return req->path_len == strlen(p) && !memcmp(req->path, p, req->path_len);
}

static void handler(void *ctx, const http_request *req, const char *body, size_t blen,
                    loop_reply *r)
{
    static char out[70000];
    (void)ctx;
    if (path_is(req, "/defer")) {
        spawn(r, 1, 0, 50);
    } else if (path_is(req, "/sse")) {
        spawn(r, 2, 5, 0);
    } else if (path_is(req, "/sse-forever")) {
        spawn(r, 3, 0, 0);
    } else if (path_is(req, "/flood")) {
        spawn(r, 4, 0, 0);
    } else if (path_is(req, "/none")) {
        /* no answer: the loop sends 500 */
    } else if (path_is(req, "/big")) {
        static char big[70000];
        int rc = loop_reply_send(r, 200, "text/plain", big, sizeof big);
        if (rc == LOOP_TOO_BIG)
            loop_reply_send(r, 500, "text/plain", "too big", 7);
    } else if (path_is(req, "/post-only")) {
        loop_reply_header(r, "Allow", "POST");
        loop_reply_send(r, 405, "application/json", "{}", 2);
    } else {
        int n = snprintf(out, sizeof out, "%.*s %.*s\n", (int)req->method_len, req->method,
                         (int)req->target_len, req->target);
        if (blen > sizeof out - (size_t)n)
            blen = sizeof out - (size_t)n;
        memcpy(out + n, body, blen);
        loop_reply_note(r, "echo");
        loop_reply_send(r, 200, "text/plain", out, (size_t)n + blen);
    }
}

typedef struct server {
    loop l;
    pthread_t t;
    int port;
    int rc;
} server;

static void *server_main(void *arg)
{
    server *s = arg;
    s->rc = loop_run(&s->l);
    return NULL;
}

static int server_start(server *s, const loop_config *cfg, const char *host)
{
    loop_handler h = { .on_request = handler };
    if (loop_init(&s->l, cfg, &h) < 0 || loop_listen(&s->l, host, 0) < 0) {
        T_NOTE("server: %s", s->l.err);
        loop_free(&s->l);
        return -1;
    }
    s->port = loop_port(&s->l, 0);
    pthread_create(&s->t, NULL, server_main, s);
    return 0;
}

static void server_stop(server *s)
{
    loop_stop(&s->l);
    pthread_join(s->t, NULL);
    for (int i = 0; i < 500 && atomic_load(&g_workers) > 0; i++)
        sleep_ms(10);
    loop_free(&s->l);
}

/* ---- a small blocking HTTP client ---- */

typedef struct cli {
    int fd;
    char buf[1 << 17];
    size_t len;
} cli;

typedef struct resp {
    int status;
    char head[8192];
    char *body;          /* malloc'd, NUL-terminated */
    size_t body_len;
    int chunked;
} resp;

static int cli_open(cli *c, int port, int v6)
{
    struct timeval tv = { 5, 0 };
    c->len = 0;
    c->fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (v6) {
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port) };
        inet_pton(AF_INET6, "::1", &a.sin6_addr);
        return connect(c->fd, (struct sockaddr *)&a, sizeof a);
    }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    return connect(c->fd, (struct sockaddr *)&a, sizeof a);
}

static void cli_close(cli *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int cli_send(cli *c, const char *s, size_t n)
{
    while (n) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cli_sends(cli *c, const char *s) { return cli_send(c, s, strlen(s)); }

/* Read more bytes: >0 read, 0 EOF, -1 error/timeout. */
static int cli_fill(cli *c)
{
    if (c->len == sizeof c->buf)
        return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n > 0 ? (int)n : n == 0 ? 0 : -1;
}

static void cli_take(cli *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

static const char *hdr(const resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = strstr(r->head, "\r\n");
    while (p && p[2] != '\r' && p[2]) {
        p += 2;
        if (!strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            snprintf(out, cap, "%.*s", (int)(e - v), v);
            return out;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

/* One response. Returns 0, or -1 (EOF/timeout/garbage). head_only: HEAD. */
static int cli_response(cli *c, resp *r, int head_only)
{
    char *e;
    char v[64];
    memset(r, 0, sizeof *r);
    while (!(e = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (cli_fill(c) <= 0)
            return -1;
    size_t hl = (size_t)(e - c->buf) + 4;
    if (hl >= sizeof r->head)
        return -1;
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    cli_take(c, hl);
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    r->body = calloc(1, 1);
    if (head_only || r->status < 200 || r->status == 204)
        return 0;
    if (hdr(r, "Transfer-Encoding", v, sizeof v)) {
        http_chunked ch;
        http_chunked_init(&ch, 1u << 30);
        r->chunked = 1;
        for (;;) {
            size_t on;
            r->body = realloc(r->body, r->body_len + c->len + 1);
            int k = http_chunked_decode(&ch, c->buf, c->len, r->body + r->body_len, &on);
            r->body_len += on;
            r->body[r->body_len] = '\0';
            if (k >= 0) {
                cli_take(c, (size_t)k);
                return 0;
            }
            if (k == -1)
                return -1;
            c->len = 0;
            if (cli_fill(c) <= 0)
                return -1;
        }
    }
    if (hdr(r, "Content-Length", v, sizeof v)) {
        size_t n = strtoul(v, NULL, 10);
        while (c->len < n)
            if (cli_fill(c) <= 0)
                return -1;
        r->body = realloc(r->body, n + 1);
        memcpy(r->body, c->buf, n);
        r->body[n] = '\0';
        r->body_len = n;
        cli_take(c, n);
        return 0;
    }
    /* close-delimited */
    while (cli_fill(c) > 0) {
    }
    r->body = realloc(r->body, c->len + 1);
    memcpy(r->body, c->buf, c->len);
    r->body[c->len] = '\0';
    r->body_len = c->len;
    c->len = 0;
    return 0;
}

static void resp_free(resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* 1 if the server closed the connection (EOF) within the receive timeout. */
static int cli_eof(cli *c)
{
    char tmp[256];
    for (;;) {
        ssize_t n = recv(c->fd, tmp, sizeof tmp, 0);
        if (n == 0)
            return 1;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

/* Request -> one response, on a fresh connection. */
static int one_shot(int port, const char *req, size_t n, resp *r)
{
    cli *c = malloc(sizeof *c);
    int rc = -1;
    if (cli_open(c, port, 0) == 0 && cli_send(c, req, n) == 0)
        rc = cli_response(c, r, 0);
    cli_close(c);
    free(c);
    return rc;
}

/* ---- tests ---- */

static void test_basic(int port)
{
    cli *c = malloc(sizeof *c);
    resp r;
    char v[128];

    T_CHECK(cli_open(c, port, 0) == 0, "connect");
    cli_sends(c, "GET /echo?a=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 200 &&
                !strcmp(r.body, "GET /echo?a=1\n"), "GET echoed");
    T_CHECK(hdr(&r, "Date", v, sizeof v) && hdr(&r, "Server", v, sizeof v) &&
                !hdr(&r, "Connection", v, sizeof v), "Date, Server, no Connection: close");
    resp_free(&r);
    cli_sends(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 200 &&
                !strcmp(r.body, "POST /echo\nhello"), "keep-alive: second request, with body");
    resp_free(&r);

    /* HEAD: Content-Length of the GET body, no body bytes, connection reusable. */
    cli_sends(c, "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 1) == 0 && r.status == 200 &&
                hdr(&r, "Content-Length", v, sizeof v) && !strcmp(v, "11"),
            "HEAD: headers with Content-Length 11");
    resp_free(&r);
    cli_sends(c, "GET /after-head HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && !strcmp(r.body, "GET /after-head\n"),
            "HEAD sent no body bytes (next response parses)");
    resp_free(&r);

    /* Pipelining: three requests in one write, answered in order. */
    cli_sends(c, "GET /p1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /p2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /p3 HTTP/1.1\r\nHost: t\r\n\r\n");
    int ok = 1;
    const char *want[3] = { "GET /p1\n", "POST /p2\nabc", "GET /p3\n" };
    for (int i = 0; i < 3; i++) {
        ok &= cli_response(c, &r, 0) == 0 && !strcmp(r.body, want[i]);
        resp_free(&r);
    }
    T_CHECK(ok, "pipelined requests answered in order");

    /* Pipelined behind a deferred reply: order kept. */
    cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\nGET /after-defer HTTP/1.1\r\nHost: t\r\n\r\n");
    ok = cli_response(c, &r, 0) == 0 && !strcmp(r.body, "deferred");
    resp_free(&r);
    ok &= cli_response(c, &r, 0) == 0 && !strcmp(r.body, "GET /after-defer\n");
    resp_free(&r);
    T_CHECK(ok, "pipelined request after a deferred one waits its turn");

    /* 100-continue */
    cli_sends(c, "PUT /up HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 100, "100 Continue before the body");
    resp_free(&r);
    cli_sends(c, "data");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 200 && !strcmp(r.body, "PUT /up\ndata"),
            "then the final response");
    resp_free(&r);

    /* Chunked request body, sent in pieces. */
    cli_sends(c, "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    sleep_ms(20);
    cli_sends(c, "lo\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 200 &&
                !strcmp(r.body, "POST /c\nhello world"), "chunked body de-chunked");
    resp_free(&r);

    /* Handler-made 405 with Allow. */
    cli_sends(c, "GET /post-only HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 405 && hdr(&r, "Allow", v, sizeof v) &&
                !strcmp(v, "POST"), "405 with Allow from the handler");
    resp_free(&r);

    /* Handler gives no answer: 500, connection still usable. */
    cli_sends(c, "GET /none HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 500, "no answer from handler -> 500");
    resp_free(&r);
    cli_sends(c, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 500 && !strcmp(r.body, "too big"),
            "response over write_cap -> LOOP_TOO_BIG, handler answers smaller");
    resp_free(&r);

    /* Deferred reply from another thread. */
    cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 200 && !strcmp(r.body, "deferred") &&
                hdr(&r, "X-Deferred", v, sizeof v), "deferred reply completed from a thread");
    resp_free(&r);

    /* SSE from another thread. */
    cli_sends(c, "POST /sse HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 200 && r.chunked &&
                hdr(&r, "Content-Type", v, sizeof v) && !strcmp(v, "text/event-stream") &&
                hdr(&r, "Cache-Control", v, sizeof v) && !strcmp(v, "no-cache"),
            "SSE head: 200, text/event-stream, chunked");
    T_CHECK(r.body && !strcmp(r.body, "data: {\"i\":0}\n\n: ping\n\ndata: {\"i\":1}\n\n"
                                      "data: {\"i\":2}\n\ndata: {\"i\":3}\n\ndata: {\"i\":4}\n\n"
                                      "data: [DONE]\n\n"),
            "SSE events in order with a ping comment");
    resp_free(&r);
    cli_sends(c, "HEAD /sse HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 1) == 0 && r.status == 200, "HEAD on a stream: head only");
    resp_free(&r);
    cli_sends(c, "GET /after-sse HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && !strcmp(r.body, "GET /after-sse\n"),
            "connection reusable after an SSE stream");
    resp_free(&r);
    cli_close(c);

    /* HTTP/1.0: answered then closed. */
    T_CHECK(cli_open(c, port, 0) == 0, "connect (1.0)");
    cli_sends(c, "GET /old HTTP/1.0\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 200 && hdr(&r, "Connection", v, sizeof v) &&
                !strcmp(v, "close") && cli_eof(c), "HTTP/1.0 answered with close, then closed");
    resp_free(&r);
    cli_close(c);

    /* HTTP/1.0 SSE: close-delimited. */
    T_CHECK(cli_open(c, port, 0) == 0, "connect (1.0 sse)");
    cli_sends(c, "GET /sse HTTP/1.0\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && !r.chunked && strstr(r.body, "data: {\"i\":4}\n\n"),
            "HTTP/1.0 SSE delimited by close");
    resp_free(&r);
    cli_close(c);

    /* Half-close after the request: still answered. */
    T_CHECK(cli_open(c, port, 0) == 0, "connect (half-close)");
    cli_sends(c, "GET /half HTTP/1.1\r\nHost: t\r\n\r\n");
    shutdown(c->fd, SHUT_WR);
    T_CHECK(cli_response(c, &r, 0) == 0 && !strcmp(r.body, "GET /half\n") && cli_eof(c),
            "request then half-close: answered, then closed");
    resp_free(&r);
    cli_close(c);
    free(c);
}

static void test_errors(int port)
{
    resp r;
    char v[64];
    static char big[60000];

    const char *bad = "GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n";
    T_CHECK(one_shot(port, bad, strlen(bad), &r) == 0 && r.status == 400 &&
                hdr(&r, "Connection", v, sizeof v) && !strcmp(v, "close") &&
                strstr(r.body, "\"error\""), "malformed header -> 400 JSON error, close");
    resp_free(&r);
    bad = "GET / HTTP/1.1\nHost: t\n\n";
    T_CHECK(one_shot(port, bad, strlen(bad), &r) == 0 && r.status == 400, "bare LF -> 400");
    resp_free(&r);
    bad = "GET / HTTP/2.0\r\nHost: t\r\n\r\n";
    T_CHECK(one_shot(port, bad, strlen(bad), &r) == 0 && r.status == 505, "HTTP/2.0 -> 505");
    resp_free(&r);

    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(big + n, 'a', 20000);
    memcpy(big + n + 20000, "\r\n\r\n", 4);
    T_CHECK(one_shot(port, big, (size_t)n + 20004, &r) == 0 && r.status == 431,
            "huge header -> 431");
    resp_free(&r);
    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: t\r\n");
    for (int i = 0; i < 70; i++)
        n += snprintf(big + n, sizeof big - (size_t)n, "X-%d: v\r\n", i);
    n += snprintf(big + n, sizeof big - (size_t)n, "\r\n");
    T_CHECK(one_shot(port, big, (size_t)n, &r) == 0 && r.status == 431,
            "too many headers -> 431");
    resp_free(&r);

    bad = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n";
    T_CHECK(one_shot(port, bad, strlen(bad), &r) == 0 && r.status == 413 &&
                strstr(r.body, "100000"), "Content-Length over max_body -> 413 naming the size");
    resp_free(&r);
    /* 413 while the client is already sending the body: it still sees the answer. */
    n = snprintf(big, sizeof big, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 30000\r\n\r\n");
    memset(big + n, 'b', 30000);
    T_CHECK(one_shot(port, big, (size_t)n + 30000, &r) == 0 && r.status == 413,
            "413 seen by a client that sent its body anyway (lingering close)");
    resp_free(&r);

    n = snprintf(big, sizeof big, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 30; i++)
        n += snprintf(big + n, sizeof big - (size_t)n, "400\r\n%01024d\r\n", 0);
    n += snprintf(big + n, sizeof big - (size_t)n, "0\r\n\r\n");
    T_CHECK(one_shot(port, big, (size_t)n, &r) == 0 && r.status == 413,
            "chunked body over max_body -> 413");
    resp_free(&r);
    bad = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    T_CHECK(one_shot(port, bad, strlen(bad), &r) == 0 && r.status == 400,
            "bad chunk size -> 400");
    resp_free(&r);
    bad = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
    T_CHECK(one_shot(port, bad, strlen(bad), &r) == 0 && r.status == 400,
            "conflicting Content-Length -> 400");
    resp_free(&r);
    bad = "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 999999\r\n\r\n";
    T_CHECK(one_shot(port, bad, strlen(bad), &r) == 0 && r.status == 413,
            "Expect: 100-continue with too large a body -> 413, not 100");
    resp_free(&r);
    bad = "HEAD /x HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n";
    T_CHECK(one_shot(port, bad, strlen(bad), &r) == 0 && r.status == 400, "error to HEAD");
    resp_free(&r);
}

static void test_cors(void)
{
    server s;
    loop_config cfg;
    resp r;
    char v[256];
    loop_config_default(&cfg);
    cfg.cors_origin = "*";
    if (server_start(&s, &cfg, "127.0.0.1") < 0) {
        T_CHECK(0, "cors server starts");
        return;
    }
    const char *pre = "OPTIONS /v1/chat/completions HTTP/1.1\r\nHost: t\r\nOrigin: http://a.b\r\n"
                      "Access-Control-Request-Method: POST\r\n"
                      "Access-Control-Request-Headers: authorization, content-type, x-stainless-os\r\n\r\n";
    T_CHECK(one_shot(s.port, pre, strlen(pre), &r) == 0 && r.status == 204 &&
                hdr(&r, "Access-Control-Allow-Origin", v, sizeof v) && !strcmp(v, "*") &&
                hdr(&r, "Access-Control-Allow-Headers", v, sizeof v) &&
                !strcmp(v, "authorization, content-type, x-stainless-os") &&
                hdr(&r, "Access-Control-Allow-Methods", v, sizeof v),
            "CORS preflight answered by the loop");
    resp_free(&r);
    pre = "GET /x HTTP/1.1\r\nHost: t\r\nOrigin: http://a.b\r\n\r\n";
    T_CHECK(one_shot(s.port, pre, strlen(pre), &r) == 0 && r.status == 200 &&
                hdr(&r, "Access-Control-Allow-Origin", v, sizeof v) && !strcmp(v, "*"),
            "CORS header on a normal response");
    resp_free(&r);
    pre = "GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    T_CHECK(one_shot(s.port, pre, strlen(pre), &r) == 0 &&
                !hdr(&r, "Access-Control-Allow-Origin", v, sizeof v),
            "no CORS header without Origin");
    resp_free(&r);
    server_stop(&s);
}

static void test_timeouts(void)
{
    server s;
    loop_config cfg;
    cli *c = malloc(sizeof *c);
    resp r;
    loop_config_default(&cfg);
    cfg.idle_timeout_ms = 300;
    cfg.header_timeout_ms = 300;
    if (server_start(&s, &cfg, "127.0.0.1") < 0) {
        T_CHECK(0, "timeout server starts");
        free(c);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    T_CHECK(cli_open(c, s.port, 0) == 0 && cli_eof(c), "idle connection closed");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
    T_CHECK(ms >= 250 && ms < 2000, "after the idle timeout (%.0f ms)", ms);
    cli_close(c);

    /* Slowloris: a head trickling in byte by byte gets 408. */
    T_CHECK(cli_open(c, s.port, 0) == 0, "connect (slowloris)");
    const char *head = "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    for (int i = 0; head[i] && i < 40; i++) {
        if (cli_send(c, head + i, 1) < 0)
            break;
        sleep_ms(20);
    }
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 408 && cli_eof(c),
            "slow head -> 408 and close");
    resp_free(&r);
    cli_close(c);

    /* Keep-alive idle after a response. */
    T_CHECK(cli_open(c, s.port, 0) == 0, "connect (keep-alive idle)");
    cli_sends(c, "GET /k HTTP/1.1\r\nHost: t\r\n\r\n");
    T_CHECK(cli_response(c, &r, 0) == 0 && r.status == 200 && cli_eof(c),
            "keep-alive connection closed after idling");
    resp_free(&r);
    cli_close(c);
    free(c);
    server_stop(&s);
}

static void test_pool_full(void)
{
    server s;
    loop_config cfg;
    cli *c = calloc(4, sizeof *c);
    resp r;
    loop_config_default(&cfg);
    cfg.max_conns = 3;
    if (server_start(&s, &cfg, "127.0.0.1") < 0) {
        T_CHECK(0, "pool server starts");
        free(c);
        return;
    }
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        ok &= cli_open(&c[i], s.port, 0) == 0;
        cli_sends(&c[i], "GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
        ok &= cli_response(&c[i], &r, 0) == 0 && r.status == 200;
        resp_free(&r);
    }
    T_CHECK(ok, "three connections fill the pool");
    T_CHECK(cli_open(&c[3], s.port, 0) == 0 && cli_response(&c[3], &r, 0) == 0 &&
                r.status == 503 && strstr(r.head, "Retry-After: 1") && cli_eof(&c[3]),
            "fourth connection: 503 with Retry-After, then closed");
    resp_free(&r);
    cli_close(&c[3]);
    cli_close(&c[0]);
    sleep_ms(50);
    ok = cli_open(&c[3], s.port, 0) == 0 && cli_sends(&c[3], "GET /y HTTP/1.1\r\nHost: t\r\n\r\n") == 0 &&
         cli_response(&c[3], &r, 0) == 0 && r.status == 200;
    resp_free(&r);
    T_CHECK(ok, "a freed slot is reused");
    for (int i = 1; i < 4; i++)
        cli_close(&c[i]);
    free(c);
    server_stop(&s);
}

static void test_disconnect(int port)
{
    cli *c = malloc(sizeof *c);
    resp r;
    int calls0 = atomic_load(&g_cancel_calls), gone0 = atomic_load(&g_gone_seen);

    T_CHECK(cli_open(c, port, 0) == 0, "connect (disconnect)");
    cli_sends(c, "GET /sse-forever HTTP/1.1\r\nHost: t\r\n\r\n");
    char *e = NULL;
    while (!(e = memmem(c->buf, c->len, "data: {\"i\":3}", 13)))
        if (cli_fill(c) <= 0)
            break;
    T_CHECK(e != NULL, "stream running");
    cli_close(c);
    for (int i = 0; i < 200 && atomic_load(&g_gone_seen) == gone0; i++)
        sleep_ms(10);
    T_CHECK(atomic_load(&g_cancel_calls) == calls0 + 1, "on_cancel called once on disconnect");
    T_CHECK(atomic_load(&g_gone_seen) == gone0 + 1, "producer stopped (saw cancel/LOOP_GONE)");

    /* The slot is reused; stale pushes never reach the new connection. */
    T_CHECK(cli_open(c, port, 0) == 0 && cli_sends(c, "GET /z HTTP/1.1\r\nHost: t\r\n\r\n") == 0 &&
                cli_response(c, &r, 0) == 0 && !strcmp(r.body, "GET /z\n"),
            "server fine after the disconnect");
    resp_free(&r);
    cli_close(c);
    free(c);
}

static void test_overflow(void)
{
    server s;
    loop_config cfg;
    cli *c = malloc(sizeof *c);
    loop_config_default(&cfg);
    cfg.write_cap = 8192;
    int ov0 = atomic_load(&g_overflow_seen);
    if (server_start(&s, &cfg, "127.0.0.1") < 0) {
        T_CHECK(0, "overflow server starts");
        free(c);
        return;
    }
    int small = 4096;
    T_CHECK(cli_open(c, s.port, 0) == 0, "connect (slow reader)");
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    cli_sends(c, "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 1000 && atomic_load(&g_overflow_seen) == ov0; i++)
        sleep_ms(10);
    T_CHECK(atomic_load(&g_overflow_seen) == ov0 + 1,
            "producer told LOOP_OVERFLOW when the client does not read");
    T_CHECK(cli_eof(c), "slow reader's connection closed");
    cli_close(c);
    free(c);
    server_stop(&s);
}

typedef struct client_arg {
    int port;
    int ok;
    int id;
} client_arg;

static void *client_thread(void *arg)
{
    client_arg *a = arg;
    cli *c = malloc(sizeof *c);
    resp r;
    char req[128], want[128];
    a->ok = cli_open(c, a->port, 0) == 0;
    for (int i = 0; i < 20 && a->ok; i++) {
        snprintf(req, sizeof req, "POST /c%d HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n%04d",
                 a->id, i);
        snprintf(want, sizeof want, "POST /c%d\n%04d", a->id, i);
        a->ok = cli_sends(c, req) == 0 && cli_response(c, &r, 0) == 0 && r.status == 200 &&
                !strcmp(r.body, want);
        resp_free(&r);
    }
    cli_close(c);
    free(c);
    return NULL;
}

static void test_concurrent(int port)
{
    pthread_t t[20];
    client_arg a[20];
    cli *s = malloc(sizeof *s);
    /* A long stream runs meanwhile. */
    cli_open(s, port, 0);
    cli_sends(s, "GET /sse-forever HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 20; i++) {
        a[i] = (client_arg){ port, 0, i };
        pthread_create(&t[i], NULL, client_thread, &a[i]);
    }
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        pthread_join(t[i], NULL);
        ok += a[i].ok;
    }
    T_CHECK(ok == 20, "20 concurrent keep-alive clients x 20 requests all correct (%d/20)", ok);
    T_CHECK(cli_fill(s) > 0, "the long stream kept streaming meanwhile");
    cli_close(s);
    free(s);
}

static void test_stop(void)
{
    server s;
    loop_config cfg;
    cli *c = malloc(sizeof *c);
    resp r;
    loop_config_default(&cfg);
    if (server_start(&s, &cfg, "127.0.0.1") < 0) {
        T_CHECK(0, "stop server starts");
        free(c);
        return;
    }
    int done0 = atomic_load(&g_stream_done);
    cli_open(c, s.port, 0);
    cli_sends(c, "GET /defer HTTP/1.1\r\nHost: t\r\n\r\n");
    sleep_ms(10);
    loop_stop(&s.l);
    T_CHECK(cli_response(c, &r, 0) == 0 && !strcmp(r.body, "deferred") && cli_eof(c),
            "in-flight deferred response finishes after loop_stop, then close");
    resp_free(&r);
    pthread_join(s.t, NULL);
    T_CHECK(s.rc == 0, "loop_run returned 0");
    (void)done0;
    cli_close(c);
    for (int i = 0; i < 100 && atomic_load(&g_workers) > 0; i++)
        sleep_ms(10);
    loop_free(&s.l);

    /* A stream that never ends is cut at stop_timeout_ms, with on_cancel. */
    cfg.stop_timeout_ms = 200;
    if (server_start(&s, &cfg, "127.0.0.1") < 0) {
        free(c);
        return;
    }
    int calls0 = atomic_load(&g_cancel_calls);
    cli_open(c, s.port, 0);
    cli_sends(c, "GET /sse-forever HTTP/1.1\r\nHost: t\r\n\r\n");
    sleep_ms(50);
    loop_stop(&s.l);
    pthread_join(s.t, NULL);
    T_CHECK(atomic_load(&g_cancel_calls) == calls0 + 1, "unfinished stream cancelled at the stop timeout");
    T_CHECK(cli_eof(c), "and its connection closed");
    cli_close(c);
    for (int i = 0; i < 100 && atomic_load(&g_workers) > 0; i++)
        sleep_ms(10);
    loop_free(&s.l);
    free(c);
}

static void test_ipv6(void)
{
    server s;
    loop_config cfg;
    cli *c = malloc(sizeof *c);
    resp r;
    loop_config_default(&cfg);
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = { .sin6_family = AF_INET6 };
    inet_pton(AF_INET6, "::1", &a.sin6_addr);
    int have6 = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    if (!have6) {
        T_SKIP("no IPv6 loopback on this machine", "IPv6 listen on ::1");
        free(c);
        return;
    }
    if (server_start(&s, &cfg, "::1") < 0) {
        T_CHECK(0, "IPv6 server starts");
        free(c);
        return;
    }
    T_CHECK(cli_open(c, s.port, 1) == 0 && cli_sends(c, "GET /six HTTP/1.1\r\nHost: t\r\n\r\n") == 0 &&
                cli_response(c, &r, 0) == 0 && !strcmp(r.body, "GET /six\n"),
            "IPv6 listen on ::1");
    resp_free(&r);
    cli_close(c);
    free(c);
    server_stop(&s);
}

static void test_setup_errors(void)
{
    loop l;
    loop_config cfg;
    loop_handler h = { .on_request = handler };
    loop_config_default(&cfg);
    T_CHECK(loop_init(&l, &cfg, &h) == 0, "loop_init with defaults");
    T_CHECK(loop_listen(&l, "localhost", 0) == -1 && strstr(l.err, "numeric"),
            "names refused (no getaddrinfo): %s", l.err);
    T_CHECK(loop_listen(&l, "127.0.0.1", 70000) == -1, "bad port refused");
    T_CHECK(loop_listen(&l, "[::1]", 0) == 0 || errno != 0, "bracketed IPv6 accepted");
    loop_free(&l);
    cfg.max_conns = 0;
    T_CHECK(loop_init(&l, &cfg, &h) == -1 && strstr(l.err, "max_conns"), "bad config: %s", l.err);
    loop_free(&l);
    loop_handle dead = { 0 };
    T_CHECK(loop_send(dead, 200, NULL, NULL, "x", 1) == LOOP_GONE && loop_cancelled(dead),
            "null handle is dead");
}

int main(void)
{
    server s;
    loop_config cfg;

    log_set_level(getenv("MOTE_TEST_VERBOSE") ? LOG_LVL_DEBUG : LOG_LVL_OFF);
    loop_config_default(&cfg);
    cfg.max_conns = 32;
    cfg.max_head_bytes = 8192;
    cfg.max_body_bytes = 20000;
    cfg.write_cap = 65536;
    if (server_start(&s, &cfg, "127.0.0.1") < 0) {
        T_CHECK(0, "server starts");
        return t_done();
    }
    T_CHECK(s.port > 0, "listening on an ephemeral port (%d)", s.port);
    test_basic(s.port);
    test_errors(s.port);
    test_disconnect(s.port);
    test_concurrent(s.port);
    server_stop(&s);
    T_CHECK(s.rc == 0, "loop_run returns 0 after loop_stop");

    test_cors();
    test_timeouts();
    test_pool_full();
    test_overflow();
    test_stop();
    test_ipv6();
    test_setup_errors();
    return t_done();
}
