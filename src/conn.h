/* conn.h — one HTTP connection: its socket, buffers, request assembly
 * state machine and timestamps. No sockets calls here (loop.c does the
 * I/O); conn turns the bytes in rbuf into complete requests.
 *
 * Request assembly: after new bytes land in rbuf, conn_parse() says
 *   CONN_EV_NEED_MORE  wait for more bytes;
 *   CONN_EV_CONTINUE   the client sent "Expect: 100-continue" and no body
 *                      yet: write "HTTP/1.1 100 Continue\r\n\r\n", then call
 *                      conn_parse again (returned at most once per request);
 *   CONN_EV_REQUEST    c->req describes the head and conn_body() the whole
 *                      body (de-chunked in place), both inside rbuf;
 *   CONN_EV_ERROR      answer c->err_status (400/413/414/417/431/501/505)
 *                      and close; c->err_msg names the cause and size.
 * After the response, conn_next_request() drops the request's bytes and
 * keeps any pipelined bytes that followed.
 *
 * rbuf layout during a request (offsets from buf_data, which conn keeps at
 * the start of the storage, so slices stay valid while more bytes arrive):
 *     [0, head_len)                     request head
 *     [head_len, head_len + body_len)   body decoded so far
 *     [head_len + body_len, buf_len)    raw bytes not yet framed/decoded
 * Capacity: max_head + max_body + CONN_RBUF_SLACK (room for chunk framing
 * still in flight). A chunked body whose framing cannot fit is 413.
 *
 * Threading: the loop owns conns; fields marked (mu) are also touched by
 * producer threads under the loop's mutex (see loop.c).
 */
#ifndef MOTE_CONN_H
#define MOTE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "http.h"

#define CONN_RBUF_SLACK 4096
#define CONN_EXTRA_MAX 1024   /* response header lines set by the handler */
#define CONN_NOTE_MAX 96      /* access-log note */
#define CONN_PEER_MAX 64

typedef struct conn_limits {
    size_t max_head;      /* bytes of request line + headers */
    size_t max_headers;   /* header lines */
    size_t max_body;      /* body bytes after de-chunking */
    size_t write_cap;     /* wbuf capacity */
} conn_limits;

typedef enum conn_state {
    CONN_FREE = 0,   /* slot unused */
    CONN_READ,       /* waiting for / reading a request head (idle if rbuf empty) */
    CONN_BODY,       /* head parsed, reading the body */
    CONN_DEFERRED,   /* handler deferred; waiting for the producer (mu) */
    CONN_STREAM,     /* SSE started; producer pushing events (mu) */
    CONN_WRITE,      /* response complete in wbuf; flushing (mu) */
    CONN_LINGER      /* error answered, write side shut; draining input */
} conn_state;

typedef enum conn_ev {
    CONN_EV_NEED_MORE = 0,
    CONN_EV_CONTINUE,
    CONN_EV_REQUEST,
    CONN_EV_ERROR
} conn_ev;

typedef struct conn {
    int fd;
    struct tls_conn *tls;       /* NULL: plain HTTP; else this slot's TLS filter
                                   (tls.h), owned and set by the loop */
    conn_state state;           /* (mu) */
    uint32_t gen;               /* handle generation (mu) */
    buf rbuf;
    buf wbuf;                   /* (mu) */

    /* current request */
    http_request req;
    http_header *headers;       /* (max_headers) */
    size_t head_len;
    size_t body_len;
    http_chunked ch;
    int continue_sent;

    /* current response (mu) */
    int minor_version;
    int keep_alive;             /* response may keep the connection */
    int head_only;
    int status;                 /* 0 until a status is chosen */
    int sse_chunked;            /* stream framed with chunked encoding */
    size_t resp_bytes;          /* bytes of this response put in wbuf */
    char extra[CONN_EXTRA_MAX]; /* header lines for the response, NUL-terminated */
    size_t extra_len;
    char note[CONN_NOTE_MAX];
    void (*on_cancel)(void *);
    void *cancel_arg;

    /* flags */
    int closing;                /* close once wbuf is flushed (mu) */
    int linger;                 /* ... after a lingering close */
    int kill;                   /* producer asked to close now (mu) */
    int draining;               /* loop stopping: close after this response */
    int eof;                    /* client closed its side: answer, then close */
    int wblocked;               /* last send would block: wait for POLLOUT */
    int resume;                 /* pipelined work left: serve without waiting */

    /* timestamps, ms on the monotonic clock */
    int64_t t_active;           /* last read/write progress */
    int64_t t_req;              /* first byte of the current request */
    int64_t t_linger;           /* start of the lingering close */
    int64_t t_req_us;           /* t_req in µs (access-log duration only) */

    /* for the access log (the request slices die with the request) */
    char log_method[16];
    char log_path[128];
    char peer[CONN_PEER_MAX];

    /* error answer (CONN_EV_ERROR) */
    int err_status;
    char err_msg[160];
} conn;

/* Allocate buffers and the header array from lim. 0, or -1 (no memory;
 * conn_free is still safe). */
int conn_init(conn *c, const conn_limits *lim);
void conn_free(conn *c);

/* Start serving a freshly accepted socket. */
void conn_open(conn *c, int fd, const char *peer, int64_t now);

/* Back to CONN_FREE (does not close the fd; the loop does). */
void conn_close_reset(conn *c);

/* Assemble the next request from rbuf (see above). */
conn_ev conn_parse(conn *c, const conn_limits *lim, int64_t now);

/* The body of a CONN_EV_REQUEST request, inside rbuf. */
const char *conn_body(const conn *c, size_t *len);

/* Drop the answered request from rbuf, keep pipelined bytes, reset the
 * request and response fields, state CONN_READ. */
void conn_next_request(conn *c, int64_t now);

#endif
