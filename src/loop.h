/* loop.h — the HTTP server: one poll() event loop on one thread, a fixed
 * pool of connections, and the handler interface the API layer plugs into.
 *
 * The loop owns every socket and does every read and write. Handlers run on
 * the loop thread and must not block; slow work (generation) is deferred to
 * other threads, which hand bytes back through a mutex-protected per-
 * connection buffer and wake poll() through an eventfd. No model knowledge.
 *
 * Use:
 *     loop_config cfg;  loop_config_default(&cfg);  cfg.max_conns = 32;
 *     loop_handler h = { .on_request = my_handler, .ctx = my_state };
 *     loop lp;
 *     if (loop_init(&lp, &cfg, &h) < 0 || loop_listen(&lp, "127.0.0.1", 8080) < 0)
 *         fprintf(stderr, "%s\n", lp.err);
 *     loop_run(&lp);      // returns after loop_stop(&lp) (e.g. from SIGTERM)
 *     // join the worker threads (they must not touch handles any more)
 *     loop_free(&lp);
 *
 * ---- Handler interface ----------------------------------------------------
 * on_request(ctx, req, body, body_len, r) is called on the loop thread once
 * per complete request (head parsed, body fully received and de-chunked).
 * req and body are valid ONLY during the call: copy what you keep. The
 * handler must do exactly one of:
 *
 *  (1) answer now: optional loop_reply_header() calls, then one
 *      loop_reply_send(r, status, content_type, body, len). The loop adds
 *      Date, Server, Content-Length, Connection, the CORS header, and drops
 *      the body for HEAD. Written with one write (one send()).
 *
 *  (2) defer: h = loop_reply_defer(r, on_cancel, arg) and return. Headers
 *      added with loop_reply_header() before deferring are kept for the
 *      eventual response. Later, from ANY thread, using the handle:
 *        a) loop_send(h, status, content_type, extra, body, len): one whole
 *           response; the handle ends.
 *        b) loop_sse_start(h, extra): "200 OK", Content-Type:
 *           text/event-stream, Cache-Control: no-cache; the body is sent with
 *           chunked transfer-encoding (HTTP/1.1, the connection stays usable)
 *           or delimited by close (HTTP/1.0). Then any number of
 *           loop_sse_data(h, data, len)   -> "data: <line>\n" per line + "\n"
 *           loop_sse_comment(h, "ping")   -> ": ping\n\n" (keep-alive comment;
 *                                            the producer decides when)
 *           loop_sse_raw(h, ev, n)        -> ev as-is (already framed events)
 *           each written as one chunk with one write; then loop_sse_end(h)
 *           ends the stream and the handle.
 *        c) loop_abort(h): close the connection without (more) response.
 *      Every deferred handle must be ended by exactly one of loop_send,
 *      loop_sse_end or loop_abort (also after an error return, which is
 *      harmless: it returns LOOP_GONE), else the connection waits until the
 *      client leaves or the loop stops.
 *
 *  Returning without (1) or (2) answers 500 (and logs it).
 *
 * Pipelining: requests on one connection are answered in order; the next
 * pipelined request is not parsed until the previous response (deferred or
 * not) has been fully written.
 *
 * Cancellation: if the client disconnects (EOF, RST, write error), the write
 * cap is exceeded, or the loop stops while a handle is live, the handle dies:
 *  - on_cancel(arg), if given, is called once, on the loop thread, with the
 *    loop's lock held: it must be quick and must NOT call loop_* functions
 *    (set an atomic flag, signal a condvar). It is never called after the
 *    producer's final call (loop_send / loop_sse_end / loop_abort) returned,
 *    so arg may be freed right after that final call.
 *  - loop_cancelled(h) returns 1 (cheap enough to check once per token).
 *  - every later call on h returns LOOP_GONE and drops its bytes. Handles
 *    are {slot, generation} values, so a stale handle can never reach a
 *    newer connection in the same slot (no use-after-free, no refcount).
 * A client that half-closes (shutdown(SHUT_WR)) while a deferred reply is
 * pending is treated as gone: its generation is cancelled.
 *
 * Backpressure: each connection's output buffer has a fixed capacity
 * (write_cap). A push that does not fit in the free space returns
 * LOOP_OVERFLOW: the client reads too slowly, the connection is closed and
 * the handle ends (on_cancel is NOT called: the return code told you).
 * A whole response larger than write_cap returns LOOP_TOO_BIG and changes
 * nothing (send a smaller error instead).
 *
 * CORS: with cfg.cors_origin set, every response to a request that carries
 * Origin gets "Access-Control-Allow-Origin: <cors_origin>" (plus "Vary:
 * Origin" unless it is "*"), and a preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered by the loop itself, before any
 * handler (so before auth): 204 with Allow-Origin, Allow-Methods (GET, POST,
 * OPTIONS), Allow-Headers (echoing Access-Control-Request-Headers), Max-Age
 * 86400. A handler may take over preflights with on_preflight (called
 * instead, same contract as on_request). Without cors_origin and
 * on_preflight, OPTIONS goes to on_request like any method.
 *
 * Answers the loop gives by itself (each logged with the size at fault):
 *   400 malformed request (then close), 413 body over max_body_bytes
 *   (checked on Content-Length before reading, and while de-chunking),
 *   414/431 head over max_head_bytes or more than max_headers lines,
 *   408 header_timeout_ms passed before the head was complete (slowloris),
 *   or the body made no progress for idle_timeout_ms,
 *   417/501/505 per http.h, 503 + Retry-After when the pool is full: the
 *   new connection is accepted, gets a fixed 503 with one send(), and is
 *   closed at once. "100 Continue" is sent when a request with Expect:
 *   100-continue and an acceptable length waits for its body.
 *   Errors close the connection after the answer (lingering close: stop
 *   writing, drain input for up to 2 s so the client sees the answer).
 * Timeouts: an idle keep-alive connection (or one whose client makes no
 * read/write progress) is closed after idle_timeout_ms; a deferred reply
 * waiting for its producer is never timed out by the loop.
 *
 * Logging: one access line per response (log_access: peer, method, path,
 * status, bytes, ms, and the note set with loop_reply_note/loop_note), also
 * for cancelled streams (note "cancelled: <why>", status 499 if nothing was
 * sent); every refusal above is a log_warn line naming the size at fault.
 *
 * Memory: loop_init allocates, per connection, a read buffer of
 * max_head_bytes + max_body_bytes + 4 KiB (the whole body is kept, de-chunked,
 * for the handler) and a write buffer of write_cap. Pages are touched only
 * as used, and given back when a connection that used over 64 KiB closes.
 * With HTTPS (cfg.tls), each connection also gets a TLS engine and its two
 * record buffers, TLS_CONN_BYTES (about 37 KiB, see tls.h), so max_conns
 * bounds the TLS memory too.
 *
 * HTTPS: with cfg.tls set, every listener speaks TLS (tls.h). The loop moves
 * records between the socket and the connection's engine, and the engine
 * moves plaintext into rbuf and out of wbuf: request parsing, handlers and
 * deferred replies are the same code for HTTP and HTTPS. The handshake must
 * finish within header_timeout_ms of accept (then the request head has its
 * own header_timeout_ms). A failed handshake closes the connection with a
 * log_warn naming the cause; plain HTTP sent to the port gets a plain-text
 * 400 saying so; a full pool closes new connections without the 503 (a TLS
 * client could not read it). Connections end with a close_notify.
 *
 * Graceful stop: loop_stop() (async-signal-safe) makes loop_run stop
 * accepting, close idle connections, let responses in flight (including
 * deferred ones) finish for up to stop_timeout_ms, then cancel the rest,
 * close everything and return.
 *
 * SIGPIPE: loop_init ignores it (sigaction SIG_IGN) and every send() uses
 * MSG_NOSIGNAL as well.
 */
#ifndef MOTE_LOOP_H
#define MOTE_LOOP_H

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"

/* Every limit of the server, with its default. */
typedef struct loop_config {
    size_t max_conns;        /* connection pool size (64) -> 503 when full */
    size_t max_head_bytes;   /* request line + headers (8192) -> 414/431 */
    size_t max_headers;      /* header lines per request (64) -> 431 */
    size_t max_body_bytes;   /* request body after de-chunking (1 MiB) -> 413 */
    size_t write_cap;        /* output buffer per connection (1 MiB) */
    int idle_timeout_ms;     /* keep-alive idle / no I/O progress (30000) */
    int header_timeout_ms;   /* first byte to complete head (10000) -> 408 */
    int stop_timeout_ms;     /* graceful stop: wait for responses (10000) */
    const char *cors_origin; /* NULL: no CORS (default) */
    struct tls_ctx *tls;     /* NULL: plain HTTP (default); else HTTPS with this
                                context (tls.h), which must outlive the loop */
} loop_config;

void loop_config_default(loop_config *c);

/* Return codes of the deferred-reply functions. */
typedef enum loop_err {
    LOOP_OK = 0,
    LOOP_GONE = -1,      /* client gone / loop stopping / handle ended: dropped */
    LOOP_OVERFLOW = -2,  /* write_cap exceeded: connection closed, handle ended */
    LOOP_TOO_BIG = -3,   /* whole response > write_cap: nothing done */
    LOOP_STATE = -4      /* call out of order (e.g. data before sse_start) */
} loop_err;

typedef struct loop loop;
typedef struct loop_reply loop_reply;   /* opaque; valid during on_request */

/* A deferred reply. A plain value: copy it freely to other threads. */
typedef struct loop_handle {
    loop *l;
    uint32_t slot;
    uint32_t gen;
} loop_handle;

typedef void (*loop_request_fn)(void *ctx, const http_request *req,
                                const char *body, size_t body_len,
                                loop_reply *r);
typedef void (*loop_cancel_fn)(void *arg);

typedef struct loop_handler {
    loop_request_fn on_request;    /* required */
    loop_request_fn on_preflight;  /* optional, see CORS above */
    void *ctx;
} loop_handler;

/* ---- Setup (main thread) ------------------------------------------------ */

/* Allocate the pool (all buffers sized from cfg now), the eventfd, ignore
 * SIGPIPE. cfg and h are copied; cfg->cors_origin must outlive the loop.
 * Returns 0, or -1 with a message in l->err. */
int loop_init(loop *l, const loop_config *cfg, const loop_handler *h);

/* Listen on a numeric IPv4 or IPv6 address ("127.0.0.1", "0.0.0.0", "::1",
 * "::" — IPv6 sockets are dual-stack where the system allows). port 0 picks
 * a free port (see loop_port). Up to LOOP_MAX_LISTEN calls. 0 or -1 (l->err). */
#define LOOP_MAX_LISTEN 4
int loop_listen(loop *l, const char *host, int port);

/* Bound port of the i-th listener (in call order), or -1. */
int loop_port(const loop *l, int i);

/* Serve until loop_stop. Returns 0, or -1 (l->err) if poll fails hard. */
int loop_run(loop *l);

/* Ask loop_run to stop gracefully. Async-signal-safe; any thread. */
void loop_stop(loop *l);

/* Close sockets and free the pool. Only after loop_run returned and no
 * other thread will use a handle of this loop. */
void loop_free(loop *l);

/* ---- Inside on_request (loop thread) ------------------------------------ */

/* Add "name: value" to the response (immediate or deferred). 0, or -1 if
 * the per-request header space (LOOP_EXTRA_MAX bytes) is full or the text
 * holds CR/LF. */
#define LOOP_EXTRA_MAX 1024
int loop_reply_header(loop_reply *r, const char *name, const char *value);

/* Answer now. body may be NULL if len is 0; content_type may be NULL.
 * Returns LOOP_OK, or LOOP_TOO_BIG (nothing sent; you may send a smaller
 * answer), or LOOP_STATE if already answered or deferred. */
int loop_reply_send(loop_reply *r, int status, const char *content_type,
                    const char *body, size_t len);

/* Close the connection after this response (e.g. after an auth failure). */
void loop_reply_close(loop_reply *r);

/* Free text appended to this request's access-log line (e.g. "tokens=12"),
 * truncated to LOOP_NOTE_MAX - 1 bytes. Also usable on a handle. */
#define LOOP_NOTE_MAX 96
void loop_reply_note(loop_reply *r, const char *text);

/* Peer address as text ("127.0.0.1:5555", "[::1]:5555"). Valid during the call. */
const char *loop_reply_peer(const loop_reply *r);

/* Defer the answer (see above). on_cancel may be NULL. */
loop_handle loop_reply_defer(loop_reply *r, loop_cancel_fn on_cancel, void *arg);

/* ---- Deferred replies (any thread) --------------------------------------- */

/* One whole response; ends the handle on LOOP_OK/LOOP_GONE. extra: NULL or
 * NUL-terminated header lines "Name: value\r\n"... */
int loop_send(loop_handle h, int status, const char *content_type,
              const char *extra, const char *body, size_t len);

/* Start an SSE stream (status 200). extra as for loop_send. */
int loop_sse_start(loop_handle h, const char *extra);

/* One event: each line of data[0..len) (split at '\n'; a trailing '\r' is
 * dropped) is sent as "data: <line>\n", then "\n". len 0 sends "data: \n\n". */
int loop_sse_data(loop_handle h, const char *data, size_t len);

/* One comment line ": <text>\n\n" (text without CR/LF), e.g. "ping". */
int loop_sse_comment(loop_handle h, const char *text);

/* Already framed SSE bytes (one or more whole events such as
 * "data: {...}\n\n" or "data: [DONE]\n\n"), sent as-is as one chunk. */
int loop_sse_raw(loop_handle h, const char *event, size_t len);

/* End the stream; ends the handle. */
int loop_sse_end(loop_handle h);

/* Close the connection now (drops any output not yet written); ends the handle. */
int loop_abort(loop_handle h);

/* 1 if the handle is dead (client gone, overflow, stop, or ended), else 0. */
int loop_cancelled(loop_handle h);

/* Access-log note, as loop_reply_note. LOOP_OK or LOOP_GONE. */
int loop_note(loop_handle h, const char *text);

/* ---- The loop's state (fields private to loop.c) -------------------------- */
struct conn;
struct loop {
    loop_config cfg;
    loop_handler h;
    struct conn *conns;            /* (max_conns) */
    struct tls_conn *tls_conns;    /* (max_conns) with cfg.tls, else NULL */
    size_t n_conns_init;           /* conns[0..n) initialised (for loop_free) */
    struct pollfd *pfds;           /* (1 + LOOP_MAX_LISTEN + max_conns) */
    int *pfd_conn;                 /* per pfd: conn index, -1 wake, -2-i listener i */
    int *free_slots;               /* stack of free conn indices */
    size_t n_free;
    int listen_fd[LOOP_MAX_LISTEN];
    int listen_port[LOOP_MAX_LISTEN];
    int n_listen;
    int wake_fd;                   /* eventfd: workers and loop_stop wake poll */
    atomic_int stop;               /* set by loop_stop (lock-free: signal-safe) */
    int stopping;                  /* loop_run saw stop: draining */
    int64_t stop_deadline;         /* ms, monotonic */
    pthread_mutex_t mu;            /* guards the deferred state of every conn */
    int mu_ok;
    int64_t accept_pause_until;    /* ms; after EMFILE etc. */
    char err[160];
};

#endif
