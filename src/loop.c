/* loop.c — the poll() event loop; see loop.h for the contract.
 *
 * Sections: setup; output helpers; answers the loop gives itself; the
 * per-connection state machine (advance); I/O and timeouts; accept; run;
 * the handler-facing and producer-facing functions.
 *
 * Locking: l->mu guards every connection field a producer thread may touch
 * (state, gen, wbuf, the response fields, kill). The loop thread holds it
 * for all its work after poll() returns, and releases it only around
 * poll() itself and around handler calls (so handlers may call loop_*).
 * on_cancel callbacks run with it held. A handle is live while its slot's
 * gen matches and the slot is CONN_DEFERRED or CONN_STREAM; gen changes
 * whenever a handle ends and whenever a connection closes.
 */
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "tls.h"

_Static_assert(LOOP_EXTRA_MAX == CONN_EXTRA_MAX, "extra header space");
_Static_assert(LOOP_NOTE_MAX == CONN_NOTE_MAX, "note space");
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "loop_stop must be async-signal-safe");

#define LINGER_MS 2000       /* lingering close after an error answer */
#define ACCEPT_PAUSE_MS 100  /* after EMFILE and friends */
#define ADVANCE_ROUNDS 16    /* pipelined requests served per wake, for fairness */

struct loop_reply {
    loop *l;
    conn *c;
    int answered;
    int deferred;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static conn_limits limits_of(const loop_config *cfg)
{
    conn_limits lim = { cfg->max_head_bytes, cfg->max_headers, cfg->max_body_bytes,
                        cfg->write_cap };
    return lim;
}

static void wake(loop *l)
{
    uint64_t one = 1;
    ssize_t w = write(l->wake_fd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is already non-zero, poll will wake */
}

__attribute__((format(printf, 2, 3)))
static int fail(loop *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->err, sizeof l->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- Setup ---------------------------------------------------------------- */

void loop_config_default(loop_config *c)
{
    memset(c, 0, sizeof *c);
    c->max_conns = 64;
    c->max_head_bytes = 16384;
    c->max_headers = 64;
    c->max_body_bytes = 4u << 20;
    c->write_cap = 1u << 20;
    c->idle_timeout_ms = 60000;
    c->header_timeout_ms = 10000;
    c->stop_timeout_ms = 10000;
    c->cors_origin = NULL;
}

int loop_init(loop *l, const loop_config *cfg, const loop_handler *h)
{
    memset(l, 0, sizeof *l);
    l->wake_fd = -1;
    for (int i = 0; i < LOOP_MAX_LISTEN; i++)
        l->listen_fd[i] = -1;
    l->cfg = *cfg;
    if (h)
        l->h = *h;
    if (!l->h.on_request)
        return fail(l, "loop: no request handler");
    if (cfg->max_conns < 1 || cfg->max_conns > 65536)
        return fail(l, "loop: max_conns %zu out of range 1..65536", cfg->max_conns);
    if (cfg->max_head_bytes < 64 || cfg->max_head_bytes > (1u << 20))
        return fail(l, "loop: max_head_bytes %zu out of range 64..1048576", cfg->max_head_bytes);
    if (cfg->max_headers < 1 || cfg->max_headers > 4096)
        return fail(l, "loop: max_headers %zu out of range 1..4096", cfg->max_headers);
    if (cfg->max_body_bytes > (1u << 30))
        return fail(l, "loop: max_body_bytes %zu over 1 GiB", cfg->max_body_bytes);
    if (cfg->write_cap < 4096)
        return fail(l, "loop: write_cap %zu under 4096", cfg->write_cap);
    if (cfg->idle_timeout_ms <= 0 || cfg->header_timeout_ms <= 0 || cfg->stop_timeout_ms < 0)
        return fail(l, "loop: timeouts must be positive");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGPIPE, &sa, NULL);

    if (pthread_mutex_init(&l->mu, NULL) != 0)
        return fail(l, "loop: mutex init failed");
    l->mu_ok = 1;
    l->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->wake_fd < 0)
        return fail(l, "loop: eventfd: %s", strerror(errno));

    size_t n = cfg->max_conns;
    conn_limits lim = limits_of(cfg);
    l->conns = calloc(n, sizeof *l->conns);
    l->pfds = calloc(LOOP_MAX_LISTEN + 1 + n, sizeof *l->pfds);
    l->pfd_conn = calloc(LOOP_MAX_LISTEN + 1 + n, sizeof *l->pfd_conn);
    l->free_slots = calloc(n, sizeof *l->free_slots);
    if (!l->conns || !l->pfds || !l->pfd_conn || !l->free_slots)
        return fail(l, "loop: out of memory for %zu connections", n);
    for (size_t i = 0; i < n; i++) {
        if (conn_init(&l->conns[i], &lim) < 0) {
            l->n_conns_init = i + 1;
            return fail(l, "loop: out of memory for connection buffers (%zu + %zu bytes each)",
                        lim.max_head + lim.max_body + CONN_RBUF_SLACK, lim.write_cap);
        }
        l->n_conns_init = i + 1;
    }
    if (cfg->tls) {
        /* HTTPS: one TLS engine + record buffers per slot, allocated now with
         * the pool, so max_conns bounds the TLS memory as well. */
        l->tls_conns = calloc(n, sizeof *l->tls_conns);
        if (!l->tls_conns)
            return fail(l, "loop: out of memory for %zu TLS connections", n);
        for (size_t i = 0; i < n; i++) {
            if (tls_conn_init(&l->tls_conns[i], cfg->tls) < 0)
                return fail(l, "loop: out of memory for TLS buffers (%zu bytes per connection)",
                            (size_t)TLS_CONN_BYTES);
            l->conns[i].tls = &l->tls_conns[i];
        }
    }
    for (size_t i = 0; i < n; i++)
        l->free_slots[i] = (int)(n - 1 - i); /* pop order 0, 1, 2... */
    l->n_free = n;
    return 0;
}

int loop_listen(loop *l, const char *host, int port)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    socklen_t sl;
    char h[64];
    int fam, fd, one = 1, zero = 0;

    if (l->n_listen >= LOOP_MAX_LISTEN)
        return fail(l, "listen: at most %d addresses", LOOP_MAX_LISTEN);
    if (port < 0 || port > 65535)
        return fail(l, "listen: port %d out of range", port);
    /* "[::1]" is accepted as "::1" */
    size_t hl = strlen(host);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof h) {
        memcpy(h, host + 1, hl - 2);
        h[hl - 2] = '\0';
    } else {
        snprintf(h, sizeof h, "%s", host);
    }
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, h, &a4.sin_addr) == 1) {
        fam = AF_INET;
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a4;
        sl = sizeof a4;
    } else if (inet_pton(AF_INET6, h, &a6.sin6_addr) == 1) {
        fam = AF_INET6;
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        sa = (struct sockaddr *)&a6;
        sl = sizeof a6;
    } else {
        return fail(l, "listen: '%s' is not a numeric IPv4 or IPv6 address", host);
    }
    fd = socket(fam, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return fail(l, "listen: socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fam == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero); /* dual-stack "::" */
    if (bind(fd, sa, sl) < 0 || listen(fd, 511) < 0) {
        int e = errno;
        close(fd);
        return fail(l, "listen: %s port %d: %s", host, port, strerror(e));
    }
    struct sockaddr_storage ss;
    socklen_t ssl = sizeof ss;
    int bound = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &ssl) == 0)
        bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    l->listen_fd[l->n_listen] = fd;
    l->listen_port[l->n_listen] = bound;
    l->n_listen++;
    log_info("listening on %s%s%s:%d", fam == AF_INET6 ? "[" : "", h, fam == AF_INET6 ? "]" : "",
             bound);
    return 0;
}

int loop_port(const loop *l, int i)
{
    return i >= 0 && i < l->n_listen ? l->listen_port[i] : -1;
}

void loop_stop(loop *l)
{
    atomic_store(&l->stop, 1);
    wake(l);
}

void loop_free(loop *l)
{
    for (int i = 0; i < LOOP_MAX_LISTEN; i++)
        if (l->listen_fd[i] >= 0) {
            close(l->listen_fd[i]);
            l->listen_fd[i] = -1;
        }
    if (l->conns) {
        for (size_t i = 0; i < l->n_conns_init; i++) {
            if (l->conns[i].fd >= 0)
                close(l->conns[i].fd);
            conn_free(&l->conns[i]);
        }
    }
    if (l->tls_conns) {
        for (size_t i = 0; i < l->cfg.max_conns; i++)
            tls_conn_free(&l->tls_conns[i]); /* safe on slots never initialised */
        free(l->tls_conns);
        l->tls_conns = NULL;
    }
    free(l->conns);
    free(l->pfds);
    free(l->pfd_conn);
    free(l->free_slots);
    l->conns = NULL;
    l->pfds = NULL;
    l->pfd_conn = NULL;
    l->free_slots = NULL;
    if (l->wake_fd >= 0)
        close(l->wake_fd);
    l->wake_fd = -1;
    if (l->mu_ok)
        pthread_mutex_destroy(&l->mu);
    l->mu_ok = 0;
}

/* ---- Output helpers (mu held) ------------------------------------------------ */

/* Bytes waiting to go out: plaintext in wbuf and, with TLS, the records the
 * engine holds (handshake messages, encrypted output). */
static size_t out_pending(const conn *c)
{
    size_t rec = 0;
    if (c->tls)
        tls_conn_rec_data(c->tls, &rec);
    return buf_len(&c->wbuf) + rec;
}

/* 0 while a TLS engine takes no records (it has some to send first, which
 * POLLOUT handles): polling for input then would spin on unread bytes. */
static int takes_input(const conn *c)
{
    size_t room;
    return !c->tls || tls_conn_rec_room(c->tls, &room) != NULL;
}

/* TLS: plaintext from wbuf into the engine, records from the engine to the
 * socket, until both are empty or the socket would block. */
static int flush_tls(conn *c, int64_t now)
{
    for (;;) {
        size_t len;
        tls_status st = tls_conn_pump(c->tls, NULL, &c->wbuf);
        const unsigned char *d = tls_conn_rec_data(c->tls, &len);
        if (!d) /* output left with no record to carry it: the engine is closed */
            return buf_len(&c->wbuf) || st == TLS_FAILED ? -1 : 0;
        ssize_t n = send(c->fd, d, len, MSG_NOSIGNAL);
        if (n > 0) {
            tls_conn_rec_consume(c->tls, (size_t)n);
            c->t_active = now;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->wblocked = 1;
            return 0;
        }
        return -1;
    }
}

/* Send what wbuf holds. 0 (done or would block: c->wblocked), -1 peer gone. */
static int flush(conn *c, int64_t now)
{
    c->wblocked = 0;
    if (c->tls)
        return flush_tls(c, now);
    while (buf_len(&c->wbuf)) {
        ssize_t n = send(c->fd, buf_data(&c->wbuf), buf_len(&c->wbuf), MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(&c->wbuf, (size_t)n);
            c->t_active = now;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c->wblocked = 1;
            return 0;
        }
        return -1;
    }
    return 0;
}

static size_t slot_of(const loop *l, const conn *c) { return (size_t)(c - l->conns); }

/* TLS: queue close_notify and send what the engine holds, without waiting
 * (best effort: the connection is closing anyway). */
static void tls_goodbye(conn *c)
{
    const unsigned char *d;
    size_t len;
    if (tls_conn_status(c->tls) == TLS_READY) /* else only a pending fatal alert goes */
        tls_conn_close(c->tls);
    for (int k = 0; k < 4 && (d = tls_conn_rec_data(c->tls, &len)) != NULL; k++) {
        ssize_t n = send(c->fd, d, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0)
            break;
        tls_conn_rec_consume(c->tls, (size_t)n);
    }
}

static void access_log(conn *c, int status, int64_t now, const char *note)
{
    (void)now;
    log_access_rec a = {
        .peer = c->peer,
        .method = c->log_method[0] ? c->log_method : "-",
        .method_len = c->log_method[0] ? strlen(c->log_method) : 1,
        .path = c->log_path[0] ? c->log_path : "-",
        .path_len = c->log_path[0] ? strlen(c->log_path) : 1,
        .status = status,
        .bytes = c->resp_bytes,
        .ms = (double)(now_us() - c->t_req_us) / 1000.0,
        .note = note ? note : c->note,
    };
    log_access(&a);
}

/* Close and free the slot. A live handle is cancelled (on_cancel, mu held). */
static void conn_drop(loop *l, conn *c, const char *why, int64_t now)
{
    if (c->state == CONN_DEFERRED || c->state == CONN_STREAM) {
        char note[CONN_NOTE_MAX + 48];
        if (c->on_cancel)
            c->on_cancel(c->cancel_arg);
        snprintf(note, sizeof note, "%s%scancelled: %s", c->note, c->note[0] ? " " : "",
                 why ? why : "closed");
        access_log(c, c->status ? c->status : 499, now, note);
    } else if (why) {
        log_debug("%s: closing: %s", c->peer, why);
    }
    if (c->tls)
        tls_goodbye(c);
    close(c->fd);
    conn_close_reset(c);
    l->free_slots[l->n_free++] = (int)slot_of(l, c);
}

/* TLS failed (bad handshake, bad record): log why and close. Plain HTTP on
 * the HTTPS port gets a plain-text 400 first, as refuse_busy sends its 503. */
static void tls_failed(loop *l, conn *c, int64_t now)
{
    static const char body[] = "This port speaks HTTPS: use an https:// URL.\n";
    char resp[256], sink[4096];
    if (tls_conn_plain_http(c->tls)) {
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 400 Bad Request\r\nServer: mote\r\nContent-Type: text/plain\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         sizeof body - 1, body);
        ssize_t w = send(c->fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        shutdown(c->fd, SHUT_WR);
        for (int k = 0; k < 16 && recv(c->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; k++) {
        }
    }
    log_warn("%s: TLS %s failed: %s", c->peer,
             tls_conn_describe(c->tls, resp, sizeof resp)[0] ? "connection" : "handshake",
             tls_conn_error(c->tls));
    conn_drop(l, c, NULL, now);
}

/* Queue a whole response for the current request. */
static int queue_response(conn *c, int status, const char *ctype, const char *extra2,
                          const char *body, size_t len)
{
    http_response r = {
        .status = status, .content_type = ctype, .extra = c->extra, .extra2 = extra2,
        .body = body, .body_len = len, .minor_version = c->minor_version,
        .keep_alive = c->keep_alive && !c->closing, .head_only = c->head_only,
    };
    long n = http_response_write(&c->wbuf, &r);
    if (n < 0)
        return LOOP_TOO_BIG;
    c->resp_bytes += (size_t)n;
    c->status = status;
    if (!r.keep_alive)
        c->closing = 1;
    c->state = CONN_WRITE;
    return LOOP_OK;
}

/* ---- Answers the loop gives by itself (mu held) ---------------------------------- */

/* JSON error in the OpenAI shape, then close (lingering). msg is plain text. */
static void reply_error(conn *c, int status, const char *msg)
{
    char body[400], clean[200];
    size_t i;
    for (i = 0; msg[i] && i < sizeof clean - 1; i++)
        clean[i] = (msg[i] == '"' || msg[i] == '\\' || (unsigned char)msg[i] < 0x20) ? ' ' : msg[i];
    clean[i] = '\0';
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":null}}\n",
                     clean, status >= 500 ? "server_error" : "invalid_request_error");
    if (n < 0 || (size_t)n >= sizeof body)
        n = (int)sizeof body - 1;
    log_warn("%s: %d %s", c->peer, status, msg);
    if (c->req.path && !c->log_path[0]) { /* head parsed (413, 408 on body) */
        snprintf(c->log_method, sizeof c->log_method, "%.*s", (int)c->req.method_len, c->req.method);
        snprintf(c->log_path, sizeof c->log_path, "%.*s", (int)c->req.path_len, c->req.path);
    }
    c->keep_alive = 0;
    c->closing = 1;
    c->linger = 1;
    if (c->req.method_len == 4 && !memcmp(c->req.method, "HEAD", 4) && c->head_len)
        c->head_only = 1;
    if (queue_response(c, status, "application/json", NULL, body, (size_t)n) < 0)
        c->kill = 1;
}

/* CORS preflight answered by the loop (cfg.cors_origin set). */
static void reply_preflight(conn *c)
{
    const http_header *acrh = http_header_find(&c->req, "access-control-request-headers");
    char extra[4096];
    if (acrh && acrh->value_len > 0 && acrh->value_len < 3800)
        snprintf(extra, sizeof extra,
                 "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                 "Access-Control-Allow-Headers: %.*s\r\nAccess-Control-Max-Age: 86400\r\n",
                 (int)acrh->value_len, acrh->value);
    else
        snprintf(extra, sizeof extra,
                 "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                 "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
                 "Access-Control-Max-Age: 86400\r\n");
    if (queue_response(c, 204, NULL, extra, NULL, 0) < 0)
        c->kill = 1;
}

static int add_extra(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add_extra(conn *c, const char *fmt, ...)
{
    va_list ap;
    size_t room = sizeof c->extra - c->extra_len;
    va_start(ap, fmt);
    int n = vsnprintf(c->extra + c->extra_len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        c->extra[c->extra_len] = '\0';
        return -1;
    }
    c->extra_len += (size_t)n;
    return 0;
}

/* ---- Dispatch: one complete request to the handler (mu held on entry/exit) ---- */

static void dispatch(loop *l, conn *c)
{
    http_request *req = &c->req;
    size_t n;

    n = req->method_len < sizeof c->log_method - 1 ? req->method_len : sizeof c->log_method - 1;
    memcpy(c->log_method, req->method, n);
    c->log_method[n] = '\0';
    n = req->path_len < sizeof c->log_path - 1 ? req->path_len : sizeof c->log_path - 1;
    memcpy(c->log_path, req->path, n);
    c->log_path[n] = '\0';
    c->minor_version = req->minor_version;
    c->keep_alive = req->keep_alive && !c->draining && !c->eof;
    c->head_only = req->is_head;

    const http_header *origin = http_header_find(req, "origin");
    if (l->cfg.cors_origin && origin) {
        add_extra(c, "Access-Control-Allow-Origin: %s\r\n", l->cfg.cors_origin);
        if (strcmp(l->cfg.cors_origin, "*"))
            add_extra(c, "Vary: Origin\r\n");
    }
    loop_request_fn fn = l->h.on_request;
    if (origin && req->method_len == 7 && !memcmp(req->method, "OPTIONS", 7) &&
        http_header_find(req, "access-control-request-method")) {
        if (l->h.on_preflight) {
            fn = l->h.on_preflight;
        } else if (l->cfg.cors_origin) {
            reply_preflight(c);
            return;
        }
    }

    struct loop_reply r = { l, c, 0, 0 };
    size_t blen;
    const char *body = conn_body(c, &blen);
    pthread_mutex_unlock(&l->mu);
    fn(l->h.ctx, req, body, blen, &r);
    pthread_mutex_lock(&l->mu);
    if (!r.answered && !r.deferred) {
        static const char msg[] =
            "{\"error\":{\"message\":\"handler gave no answer\",\"type\":\"server_error\","
            "\"param\":null,\"code\":null}}\n";
        log_error("%s: handler returned without answering %s %s", c->peer, c->log_method,
                  c->log_path);
        if (queue_response(c, 500, "application/json", NULL, msg, sizeof msg - 1) < 0)
            c->kill = 1;
    }
}

/* ---- The connection state machine (mu held) -----------------------------------
 * advance() moves one connection as far as its bytes allow: flush output;
 * when a response is fully written, log it and either close or start on
 * the next (pipelined) request; parse requests, answer errors, dispatch.
 * It stops when it must wait: for input, for the socket to drain, or for a
 * producer (CONN_DEFERRED / CONN_STREAM). */

static void start_linger(conn *c, int64_t now)
{
    if (c->tls)
        tls_goodbye(c);
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGER;
    c->t_linger = now;
}

static void advance(loop *l, conn *c, int64_t now)
{
    conn_limits lim = limits_of(&l->cfg);

    c->resume = 0;
    for (int round = 0; round < ADVANCE_ROUNDS; round++) {
        if (c->state == CONN_FREE)
            return;
        if (c->kill) {
            conn_drop(l, c, "closed by the producer", now);
            return;
        }
        if (out_pending(c)) {
            if (flush(c, now) < 0) {
                if (c->tls && tls_conn_status(c->tls) == TLS_FAILED)
                    tls_failed(l, c, now); /* e.g. the alert for a refused handshake went out */
                else
                    conn_drop(l, c, "write failed (client gone)", now);
                return;
            }
            if (out_pending(c))
                return; /* POLLOUT will call again */
        }
        switch (c->state) {
        case CONN_WRITE:
            access_log(c, c->status, now, NULL);
            if (c->closing || c->draining || c->eof) {
                if (c->linger && !c->eof)
                    start_linger(c, now);
                else
                    conn_drop(l, c, NULL, now);
                return;
            }
            conn_next_request(c, now);
            c->t_req_us = now_us();
            continue;
        case CONN_READ:
        case CONN_BODY:
            if (c->tls) /* plaintext the engine kept while rbuf was full */
                tls_conn_pump(c->tls, &c->rbuf, NULL);
            switch (conn_parse(c, &lim, now)) {
            case CONN_EV_NEED_MORE:
                if (c->eof) /* nothing more will come */
                    conn_drop(l, c, buf_len(&c->rbuf) ? "EOF inside a request" : NULL, now);
                return;
            case CONN_EV_CONTINUE:
                if (buf_append(&c->wbuf, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0) {
                    conn_drop(l, c, "no room for 100 Continue", now);
                    return;
                }
                continue;
            case CONN_EV_ERROR:
                reply_error(c, c->err_status, c->err_msg);
                continue;
            case CONN_EV_REQUEST:
                dispatch(l, c);
                continue;
            }
            return;
        default:
            return; /* CONN_DEFERRED, CONN_STREAM, CONN_LINGER */
        }
    }
    c->resume = 1; /* more pipelined work: come back without waiting */
}

/* ---- Input and timeouts (mu held) ---------------------------------------------- */

/* TLS: records from the socket into the engine, plaintext from the engine
 * into rbuf. The engine asks for a record header, then its body, so reads
 * are small; it takes no records while it has some to send (flush sends
 * them, then POLLIN brings us back). 1 ok, 0 EOF or close_notify, -1 error
 * (tls_conn_status says whether TLS failed). */
static int read_tls(conn *c, int64_t now)
{
    size_t before = buf_len(&c->rbuf);
    int was_ready = tls_conn_status(c->tls) == TLS_READY, eof = 0;
    for (int k = 0; k < 16; k++) {
        size_t room;
        tls_conn_pump(c->tls, &c->rbuf, NULL);
        unsigned char *p = tls_conn_rec_room(c->tls, &room);
        if (!p)
            break;
        ssize_t n = recv(c->fd, p, room, 0);
        if (n > 0) {
            tls_conn_rec_commit(c->tls, (size_t)n);
            c->t_active = now;
            continue;
        }
        if (n == 0) {
            eof = 1;
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        return -1;
    }
    tls_status st = tls_conn_pump(c->tls, &c->rbuf, NULL);
    if (!was_ready && st == TLS_READY) {
        char d[128];
        log_debug("%s: %s", c->peer, tls_conn_describe(c->tls, d, sizeof d));
    }
    if (c->state == CONN_READ && before == 0 && buf_len(&c->rbuf)) {
        c->t_req = now;
        c->t_req_us = now_us();
    }
    if (st == TLS_FAILED)
        return -1;
    return st == TLS_CLOSED || eof ? 0 : 1;
}

/* Read what is available into rbuf. 1 ok, 0 EOF, -1 error. */
static int read_some(conn *c, int64_t now)
{
    if (c->tls)
        return read_tls(c, now);
    for (int k = 0; k < 4; k++) {
        size_t room;
        char *p = buf_room(&c->rbuf, &room);
        if (room == 0)
            return 1;
        ssize_t n = recv(c->fd, p, room, 0);
        if (n > 0) {
            if (c->state == CONN_READ && buf_len(&c->rbuf) == 0) {
                c->t_req = now;
                c->t_req_us = now_us();
            }
            buf_commit(&c->rbuf, (size_t)n);
            c->t_active = now;
            if ((size_t)n < room)
                return 1;
            continue;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 1;
        return -1;
    }
    return 1;
}

static void on_io(loop *l, conn *c, short rev, int64_t now)
{
    if (rev & POLLNVAL) {
        conn_drop(l, c, "invalid fd", now);
        return;
    }
    if (rev & POLLOUT)
        c->wblocked = 0;
    switch (c->state) {
    case CONN_READ:
    case CONN_BODY:
        if (rev & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)) {
            int r = read_some(c, now);
            if (r < 0 && c->tls && tls_conn_status(c->tls) == TLS_FAILED) {
                tls_failed(l, c, now);
                return;
            }
            if (r < 0) {
                conn_drop(l, c, "read failed", now);
                return;
            }
            if (r == 0 && c->tls && tls_conn_status(c->tls) == TLS_HANDSHAKE) {
                log_warn("%s: TLS handshake failed: the client closed the connection", c->peer);
                conn_drop(l, c, NULL, now);
                return;
            }
            if (r == 0)
                c->eof = 1; /* answer what is buffered, then close */
        }
        break;
    case CONN_DEFERRED:
    case CONN_STREAM:
        if (rev & (POLLRDHUP | POLLHUP | POLLERR)) {
            conn_drop(l, c, "client disconnected", now);
            return;
        }
        break;
    case CONN_LINGER:
        if (rev & (POLLIN | POLLHUP | POLLERR | POLLRDHUP)) {
            char sink[4096];
            for (int k = 0; k < 16; k++) {
                ssize_t n = recv(c->fd, sink, sizeof sink, 0);
                if (n > 0)
                    continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                    return;
                if (n < 0 && errno == EINTR)
                    continue;
                conn_drop(l, c, NULL, now); /* EOF or error: done lingering */
                return;
            }
        }
        return;
    default:
        break;
    }
    advance(l, c, now);
}

/* When this connection needs attention without I/O (ms), or INT64_MAX. */
static int64_t conn_deadline(const loop *l, const conn *c)
{
    switch (c->state) {
    case CONN_READ:
        if (c->tls && tls_conn_status(c->tls) == TLS_HANDSHAKE)
            return c->t_req + l->cfg.header_timeout_ms; /* t_req: accept time */
        if (buf_len(&c->rbuf) == 0)
            return c->t_active + l->cfg.idle_timeout_ms;
        return c->t_req + l->cfg.header_timeout_ms;
    case CONN_BODY:
        return c->t_active + l->cfg.idle_timeout_ms;
    case CONN_WRITE:
    case CONN_STREAM:
    case CONN_DEFERRED:
        if (out_pending(c))
            return c->t_active + l->cfg.idle_timeout_ms;
        return INT64_MAX;
    case CONN_LINGER:
        return c->t_linger + LINGER_MS;
    default:
        return INT64_MAX;
    }
}

static void on_timeout(loop *l, conn *c, int64_t now)
{
    char msg[160];
    switch (c->state) {
    case CONN_READ:
        if (c->tls && tls_conn_status(c->tls) == TLS_HANDSHAKE) {
            log_warn("%s: TLS handshake not complete after %d ms: closing", c->peer,
                     l->cfg.header_timeout_ms);
            conn_drop(l, c, NULL, now);
            return;
        }
        if (buf_len(&c->rbuf) == 0) {
            conn_drop(l, c, "idle timeout", now);
            return;
        }
        snprintf(msg, sizeof msg, "request head not complete after %d ms (%zu bytes received)",
                 l->cfg.header_timeout_ms, buf_len(&c->rbuf));
        reply_error(c, 408, msg);
        break;
    case CONN_BODY:
        snprintf(msg, sizeof msg, "request body stalled for %d ms (%zu bytes received)",
                 l->cfg.idle_timeout_ms, buf_len(&c->rbuf) - c->head_len);
        reply_error(c, 408, msg);
        break;
    case CONN_LINGER:
        conn_drop(l, c, NULL, now);
        return;
    default:
        log_warn("%s: client reads too slowly (%zu bytes pending for %d ms): closing", c->peer,
                 buf_len(&c->wbuf), l->cfg.idle_timeout_ms);
        conn_drop(l, c, "write stalled", now);
        return;
    }
    advance(l, c, now);
}

/* ---- Accept ------------------------------------------------------------------------ */

static void peer_text(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char a[INET6_ADDRSTRLEN];
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &s4->sin_addr, a, sizeof a);
        snprintf(out, cap, "%s:%d", a, ntohs(s4->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof a);
        snprintf(out, cap, "[%s]:%d", a, ntohs(s6->sin6_port));
    } else {
        snprintf(out, cap, "?");
    }
}

/* Pool full: one fixed 503 with one send, then close. */
static void refuse_busy(loop *l, int fd, const char *peer)
{
    static const char body[] =
        "{\"error\":{\"message\":\"server busy: connection limit reached\","
        "\"type\":\"server_error\",\"param\":null,\"code\":null}}\n";
    char resp[512];
    char sink[1024];
    if (l->cfg.tls) { /* a TLS client could not read a plain 503 */
        close(fd);
        log_warn("%s: connection pool full (%zu connections): closed", peer, l->cfg.max_conns);
        return;
    }
    int n = snprintf(resp, sizeof resp,
                     "HTTP/1.1 503 Service Unavailable\r\nServer: mote\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Retry-After: 1\r\nConnection: close\r\n\r\n%s",
                     sizeof body - 1, body);
    ssize_t w = send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
    shutdown(fd, SHUT_WR);
    /* Unread input makes close() send RST, which can destroy the 503 in
     * flight: take what has already arrived. */
    while (recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
    close(fd);
    log_warn("%s: connection pool full (%zu connections): 503", peer, l->cfg.max_conns);
}

static void accept_some(loop *l, int lfd, int64_t now)
{
    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        char peer[CONN_PEER_MAX];
        int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("accept: %s: pausing accepts for %d ms", strerror(errno),
                         ACCEPT_PAUSE_MS);
                l->accept_pause_until = now + ACCEPT_PAUSE_MS;
            }
            return;
        }
        peer_text(&ss, peer, sizeof peer);
        if (l->n_free == 0) {
            refuse_busy(l, fd, peer);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = &l->conns[l->free_slots[--l->n_free]];
        conn_open(c, fd, peer, now);
        c->t_req_us = now_us();
        if (c->tls && tls_conn_start(c->tls) < 0) {
            log_error("%s: TLS: cannot start a connection (getrandom failed?)", peer);
            conn_drop(l, c, NULL, now);
            continue;
        }
        log_debug("%s: connected (slot %zu)", peer, slot_of(l, c));
    }
}

/* ---- Run -------------------------------------------------------------------------------- */

static size_t active_conns(const loop *l) { return l->cfg.max_conns - l->n_free; }

static void begin_stop(loop *l, int64_t now)
{
    l->stopping = 1;
    l->stop_deadline = now + l->cfg.stop_timeout_ms;
    for (int i = 0; i < l->n_listen; i++)
        if (l->listen_fd[i] >= 0) {
            close(l->listen_fd[i]);
            l->listen_fd[i] = -1;
        }
    for (size_t i = 0; i < l->cfg.max_conns; i++) {
        conn *c = &l->conns[i];
        if (c->state == CONN_FREE)
            continue;
        c->draining = 1;
        /* Nobody is waiting on a connection that is reading a request. */
        if (c->state == CONN_READ || c->state == CONN_BODY || c->state == CONN_LINGER)
            conn_drop(l, c, "stopping", now);
    }
    log_info("stopping: %zu responses in flight, waiting up to %d ms", active_conns(l),
             l->cfg.stop_timeout_ms);
}

int loop_run(loop *l)
{
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        int64_t now = now_ms();
        int64_t next = INT64_MAX;
        nfds_t n = 0;

        /* Work that needs no I/O event: producers changed state, closed
         * connections, pipelined requests, completed writes. */
        for (size_t i = 0; i < l->cfg.max_conns; i++) {
            conn *c = &l->conns[i];
            if (c->state == CONN_FREE)
                continue;
            if (c->kill)
                conn_drop(l, c, "closed by the producer", now);
            else if (c->resume || (c->state == CONN_WRITE && !out_pending(c)) ||
                     (out_pending(c) && !c->wblocked))
                advance(l, c, now);
        }

        if (atomic_load(&l->stop) && !l->stopping)
            begin_stop(l, now);
        if (l->stopping) {
            if (active_conns(l) == 0)
                break;
            if (now >= l->stop_deadline) {
                for (size_t i = 0; i < l->cfg.max_conns; i++)
                    if (l->conns[i].state != CONN_FREE)
                        conn_drop(l, &l->conns[i], "stop timeout", now);
                log_warn("stopped with responses unfinished after %d ms", l->cfg.stop_timeout_ms);
                break;
            }
            next = l->stop_deadline;
        }

        l->pfds[n].fd = l->wake_fd;
        l->pfds[n].events = POLLIN;
        l->pfd_conn[n++] = -1;
        if (!l->stopping && now >= l->accept_pause_until) {
            for (int i = 0; i < l->n_listen; i++) {
                l->pfds[n].fd = l->listen_fd[i];
                l->pfds[n].events = POLLIN;
                l->pfd_conn[n++] = -2 - i;
            }
        } else if (!l->stopping && l->accept_pause_until < next) {
            next = l->accept_pause_until;
        }
        for (size_t i = 0; i < l->cfg.max_conns; i++) {
            conn *c = &l->conns[i];
            short ev = 0;
            if (c->state == CONN_FREE)
                continue;
            switch (c->state) {
            case CONN_READ:
            case CONN_BODY:
                if (!c->eof && buf_space(&c->rbuf) && takes_input(c))
                    ev |= POLLIN;
                break;
            case CONN_DEFERRED:
            case CONN_STREAM:
                ev |= POLLRDHUP;
                break;
            case CONN_LINGER:
                ev |= POLLIN;
                break;
            default:
                break;
            }
            if (out_pending(c))
                ev |= POLLOUT;
            l->pfds[n].fd = c->fd;
            l->pfds[n].events = ev;
            l->pfds[n].revents = 0;
            l->pfd_conn[n++] = (int)i;
            int64_t d = conn_deadline(l, c);
            if (d < next)
                next = d;
            if (c->resume)
                next = now;
        }

        int timeout = -1;
        if (next != INT64_MAX) {
            int64_t t = next - now;
            timeout = t < 0 ? 0 : t > 60000 ? 60000 : (int)t;
        }
        pthread_mutex_unlock(&l->mu);
        int pr = poll(l->pfds, n, timeout);
        int perr = errno;
        pthread_mutex_lock(&l->mu);
        if (pr < 0) {
            if (perr == EINTR)
                continue;
            fail(l, "poll: %s", strerror(perr));
            rc = -1;
            break;
        }
        now = now_ms();

        for (nfds_t k = 0; k < n; k++) {
            short rev = l->pfds[k].revents;
            int who = l->pfd_conn[k];
            if (who == -1) {
                if (rev & POLLIN) {
                    uint64_t v;
                    ssize_t r = read(l->wake_fd, &v, sizeof v);
                    (void)r;
                }
            } else if (who >= 0) {
                conn *c = &l->conns[who];
                if (c->state != CONN_FREE && c->fd == l->pfds[k].fd) {
                    if (rev)
                        on_io(l, c, rev, now);
                    if (c->state != CONN_FREE && conn_deadline(l, c) <= now)
                        on_timeout(l, c, now);
                }
            }
        }
        /* Accept last, so slots freed above are reused only now. */
        for (nfds_t k = 0; k < n; k++)
            if (l->pfd_conn[k] <= -2 && (l->pfds[k].revents & POLLIN))
                accept_some(l, l->pfds[k].fd, now);
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- Inside on_request (loop thread, mu not held) ---------------------------------- */

static int safe_text(const char *s)
{
    for (; *s; s++)
        if (*s == '\r' || *s == '\n')
            return 0;
    return 1;
}

int loop_reply_header(loop_reply *r, const char *name, const char *value)
{
    int rc = -1;
    if (!*name || !safe_text(name) || !safe_text(value) || strchr(name, ':'))
        return -1;
    pthread_mutex_lock(&r->l->mu);
    if (!r->answered && !r->deferred)
        rc = add_extra(r->c, "%s: %s\r\n", name, value);
    pthread_mutex_unlock(&r->l->mu);
    return rc;
}

int loop_reply_send(loop_reply *r, int status, const char *content_type, const char *body,
                    size_t len)
{
    int rc;
    if (r->answered || r->deferred || status < 200 || status > 599)
        return LOOP_STATE;
    pthread_mutex_lock(&r->l->mu);
    rc = queue_response(r->c, status, content_type, NULL, body, len);
    pthread_mutex_unlock(&r->l->mu);
    if (rc == LOOP_OK)
        r->answered = 1;
    return rc;
}

void loop_reply_close(loop_reply *r)
{
    pthread_mutex_lock(&r->l->mu);
    if (!r->answered && !r->deferred)
        r->c->keep_alive = 0;
    pthread_mutex_unlock(&r->l->mu);
}

void loop_reply_note(loop_reply *r, const char *text)
{
    pthread_mutex_lock(&r->l->mu);
    snprintf(r->c->note, sizeof r->c->note, "%s", text);
    pthread_mutex_unlock(&r->l->mu);
}

const char *loop_reply_peer(const loop_reply *r)
{
    return r->c->peer;
}

loop_handle loop_reply_defer(loop_reply *r, loop_cancel_fn on_cancel, void *arg)
{
    loop_handle h = { r->l, (uint32_t)slot_of(r->l, r->c), 0 };
    if (r->answered || r->deferred)
        return h; /* gen 0 never matches a live slot */
    pthread_mutex_lock(&r->l->mu);
    r->c->state = CONN_DEFERRED;
    r->c->on_cancel = on_cancel;
    r->c->cancel_arg = arg;
    h.gen = r->c->gen;
    pthread_mutex_unlock(&r->l->mu);
    r->deferred = 1;
    return h;
}

/* ---- Deferred replies (any thread) ------------------------------------------------------ */

/* The live connection behind h, with mu held; NULL (mu released) if dead. */
static conn *handle_lock(loop_handle h)
{
    loop *l = h.l;
    if (!l || !l->conns || h.slot >= l->cfg.max_conns || h.gen == 0)
        return NULL;
    pthread_mutex_lock(&l->mu);
    conn *c = &l->conns[h.slot];
    if (c->gen != h.gen || c->kill ||
        (c->state != CONN_DEFERRED && c->state != CONN_STREAM)) {
        pthread_mutex_unlock(&l->mu);
        return NULL;
    }
    return c;
}

/* The handle ends: later calls see LOOP_GONE; on_cancel will not be called. */
static void handle_end(conn *c)
{
    c->gen++;
    if (c->gen == 0)
        c->gen = 1;
    c->on_cancel = NULL;
    c->cancel_arg = NULL;
}

static void handle_unlock(loop_handle h, int wake_loop)
{
    pthread_mutex_unlock(&h.l->mu);
    if (wake_loop)
        wake(h.l);
}

int loop_send(loop_handle h, int status, const char *content_type, const char *extra,
              const char *body, size_t len)
{
    if (status < 200 || status > 599)
        return LOOP_STATE;
    conn *c = handle_lock(h);
    if (!c)
        return LOOP_GONE;
    if (c->state != CONN_DEFERRED) {
        handle_unlock(h, 0);
        return LOOP_STATE;
    }
    int rc = queue_response(c, status, content_type, extra, body, len);
    if (rc == LOOP_OK)
        handle_end(c);
    handle_unlock(h, rc == LOOP_OK);
    return rc;
}

int loop_sse_start(loop_handle h, const char *extra)
{
    conn *c = handle_lock(h);
    if (!c)
        return LOOP_GONE;
    if (c->state != CONN_DEFERRED) {
        handle_unlock(h, 0);
        return LOOP_STATE;
    }
    c->sse_chunked = c->minor_version >= 1;
    if (!c->sse_chunked)
        c->keep_alive = 0; /* HTTP/1.0: the body ends with the connection */
    http_response r = {
        .status = 200, .content_type = "text/event-stream", .extra = c->extra,
        .extra2 = extra, .minor_version = c->minor_version,
        .keep_alive = c->keep_alive && !c->closing, .head_only = c->head_only,
        .chunked = c->sse_chunked, .until_close = !c->sse_chunked,
    };
    int rc = LOOP_OK;
    /* Cache-Control and X-Accel-Buffering keep proxies from holding events. */
    static const char sse_hdrs[] = "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n";
    char both[LOOP_EXTRA_MAX + 64];
    snprintf(both, sizeof both, "%s%s", c->extra, sse_hdrs);
    r.extra = both;
    long n = http_response_write(&c->wbuf, &r);
    if (n < 0) {
        rc = LOOP_TOO_BIG;
    } else {
        c->resp_bytes += (size_t)n;
        c->status = 200;
        if (!r.keep_alive)
            c->closing = 1;
        c->state = CONN_STREAM;
    }
    handle_unlock(h, rc == LOOP_OK);
    return rc;
}

/* The producer outran the client: close, end the handle. */
static int overflow(loop_handle h, conn *c, size_t need)
{
    log_warn("%s: client reads too slowly: %zu bytes pending + %zu > write cap %zu: closing",
             c->peer, buf_len(&c->wbuf), need, c->wbuf.cap);
    c->kill = 1;
    handle_end(c);
    handle_unlock(h, 1);
    return LOOP_OVERFLOW;
}

/* Append one SSE payload of `size` bytes made by put(), chunk-framed. */
static int sse_push(loop_handle h, conn *c, size_t size,
                    void (*put)(buf *, const void *, size_t), const void *arg, size_t alen)
{
    size_t total = size + (c->sse_chunked ? http_chunk_head_len(size) + 2 : 0);
    if (c->head_only) { /* HEAD: the head said it all */
        handle_unlock(h, 0);
        return LOOP_OK;
    }
    if (total + 1 > buf_space(&c->wbuf))
        return overflow(h, c, total);
    if (c->sse_chunked)
        buf_printf(&c->wbuf, "%zx\r\n", size);
    put(&c->wbuf, arg, alen);
    if (c->sse_chunked)
        buf_append(&c->wbuf, "\r\n", 2);
    c->resp_bytes += total;
    handle_unlock(h, 1);
    return LOOP_OK;
}

/* "data: <line>\n" per line, then "\n". */
static size_t sse_data_size(const char *d, size_t len)
{
    size_t size = 1, i = 0;
    if (len == 0)
        return 8; /* "data: \n\n" */
    while (i < len) {
        size_t j = i;
        while (j < len && d[j] != '\n')
            j++;
        size_t ll = j - i;
        if (ll && d[j - 1] == '\r')
            ll--;
        size += 6 + ll + 1;
        i = j + 1;
    }
    return size;
}

static void sse_data_put(buf *b, const void *arg, size_t len)
{
    const char *d = arg;
    size_t i = 0;
    if (len == 0) {
        buf_append(b, "data: \n\n", 8);
        return;
    }
    while (i < len) {
        size_t j = i;
        while (j < len && d[j] != '\n')
            j++;
        size_t ll = j - i;
        if (ll && d[j - 1] == '\r')
            ll--;
        buf_append(b, "data: ", 6);
        buf_append(b, d + i, ll);
        buf_append(b, "\n", 1);
        i = j + 1;
    }
    buf_append(b, "\n", 1);
}

static void sse_comment_put(buf *b, const void *arg, size_t len)
{
    buf_append(b, ": ", 2);
    buf_append(b, arg, len);
    buf_append(b, "\n\n", 2);
}

int loop_sse_data(loop_handle h, const char *data, size_t len)
{
    conn *c = handle_lock(h);
    if (!c)
        return LOOP_GONE;
    if (c->state != CONN_STREAM) {
        handle_unlock(h, 0);
        return LOOP_STATE;
    }
    return sse_push(h, c, sse_data_size(data, len), sse_data_put, data, len);
}

int loop_sse_comment(loop_handle h, const char *text)
{
    if (!safe_text(text))
        return LOOP_STATE;
    conn *c = handle_lock(h);
    if (!c)
        return LOOP_GONE;
    if (c->state != CONN_STREAM) {
        handle_unlock(h, 0);
        return LOOP_STATE;
    }
    size_t tl = strlen(text);
    return sse_push(h, c, tl + 4, sse_comment_put, text, tl);
}

static void sse_raw_put(buf *b, const void *arg, size_t len)
{
    buf_append(b, arg, len);
}

int loop_sse_raw(loop_handle h, const char *event, size_t len)
{
    if (len == 0)
        return LOOP_OK; /* a zero-length chunk would end the body */
    conn *c = handle_lock(h);
    if (!c)
        return LOOP_GONE;
    if (c->state != CONN_STREAM) {
        handle_unlock(h, 0);
        return LOOP_STATE;
    }
    return sse_push(h, c, len, sse_raw_put, event, len);
}

int loop_sse_end(loop_handle h)
{
    conn *c = handle_lock(h);
    if (!c)
        return LOOP_GONE;
    if (c->state != CONN_STREAM) {
        handle_unlock(h, 0);
        return LOOP_STATE;
    }
    if (c->sse_chunked && !c->head_only) {
        if (buf_append(&c->wbuf, "0\r\n\r\n", 5) < 0)
            return overflow(h, c, 5);
        c->resp_bytes += 5;
    }
    c->state = CONN_WRITE;
    handle_end(c);
    handle_unlock(h, 1);
    return LOOP_OK;
}

int loop_abort(loop_handle h)
{
    conn *c = handle_lock(h);
    if (!c)
        return LOOP_GONE;
    c->kill = 1;
    if (!c->status)
        c->status = 499;
    handle_end(c);
    handle_unlock(h, 1);
    return LOOP_OK;
}

int loop_cancelled(loop_handle h)
{
    conn *c = handle_lock(h);
    if (!c)
        return 1;
    handle_unlock(h, 0);
    return 0;
}

int loop_note(loop_handle h, const char *text)
{
    conn *c = handle_lock(h);
    if (!c)
        return LOOP_GONE;
    snprintf(c->note, sizeof c->note, "%s", text);
    handle_unlock(h, 0);
    return LOOP_OK;
}
