/* conn.c — request assembly for one connection; see conn.h. */
#include "conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int conn_init(conn *c, const conn_limits *lim)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->gen = 1;
    if (buf_init(&c->rbuf, lim->max_head + lim->max_body + CONN_RBUF_SLACK) < 0 ||
        buf_init(&c->wbuf, lim->write_cap) < 0)
        return -1;
    c->headers = calloc(lim->max_headers ? lim->max_headers : 1, sizeof *c->headers);
    if (!c->headers)
        return -1;
    c->req.headers = c->headers;
    c->req.max_headers = lim->max_headers;
    return 0;
}

void conn_free(conn *c)
{
    buf_free(&c->rbuf);
    buf_free(&c->wbuf);
    free(c->headers);
    c->headers = NULL;
}

/* Request and response fields to their idle values (not the buffers). */
static void conn_request_clear(conn *c)
{
    http_header *hs = c->headers;
    size_t mh = c->req.max_headers;
    memset(&c->req, 0, sizeof c->req);
    c->req.headers = hs;
    c->req.max_headers = mh;
    c->head_len = c->body_len = 0;
    c->continue_sent = 0;
    c->minor_version = 1;
    c->keep_alive = 0;
    c->head_only = 0;
    c->status = 0;
    c->sse_chunked = 0;
    c->resp_bytes = 0;
    c->extra[0] = '\0';
    c->extra_len = 0;
    c->note[0] = '\0';
    c->on_cancel = NULL;
    c->cancel_arg = NULL;
    c->log_method[0] = c->log_path[0] = '\0';
    c->err_status = 0;
    c->err_msg[0] = '\0';
}

void conn_open(conn *c, int fd, const char *peer, int64_t now)
{
    c->fd = fd;
    c->state = CONN_READ;
    buf_reset(&c->rbuf);
    buf_reset(&c->wbuf);
    conn_request_clear(c);
    c->closing = c->linger = c->kill = c->draining = 0;
    c->eof = c->wblocked = c->resume = 0;
    c->t_active = c->t_req = now;
    c->t_linger = 0;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
}

void conn_close_reset(conn *c)
{
    c->fd = -1;
    c->state = CONN_FREE;
    c->gen++;
    if (c->gen == 0)
        c->gen = 1;
    buf_release(&c->rbuf);
    buf_release(&c->wbuf);
    conn_request_clear(c);
    c->closing = c->linger = c->kill = c->draining = 0;
    c->eof = c->wblocked = c->resume = 0;
}

__attribute__((format(printf, 3, 4)))
static conn_ev conn_fail(conn *c, int status, const char *fmt, ...)
{
    va_list ap;
    c->err_status = status;
    va_start(ap, fmt);
    vsnprintf(c->err_msg, sizeof c->err_msg, fmt, ap);
    va_end(ap);
    return CONN_EV_ERROR;
}

/* Chunked body: decode the raw bytes after the decoded part, in place. */
static conn_ev conn_parse_chunked(conn *c, const conn_limits *lim)
{
    char *d = buf_data(&c->rbuf);
    size_t len = buf_len(&c->rbuf);
    size_t at = c->head_len + c->body_len, out_n = 0;
    int r = http_chunked_decode(&c->ch, d + at, len - at, d + at, &out_n);

    if (r == -1) {
        if (c->ch.err == HTTP_ERR_BODY_TOO_LARGE)
            return conn_fail(c, 413, "chunked request body over the limit of %zu bytes (%zu so far)",
                             lim->max_body, (size_t)c->ch.total);
        return conn_fail(c, 400, "malformed chunked request body after %zu bytes",
                         (size_t)c->ch.total);
    }
    c->body_len += out_n;
    if (r == -2) {
        buf_truncate(&c->rbuf, c->head_len + c->body_len);
        if (buf_space(&c->rbuf) == 0)
            return conn_fail(c, 413, "chunked request body does not fit the %zu-byte limit "
                             "with its framing (%zu decoded)", lim->max_body, c->body_len);
        return CONN_EV_NEED_MORE;
    }
    /* Complete: pipelined bytes after the body move down next to it. */
    size_t rest = len - at - (size_t)r;
    memmove(d + c->head_len + c->body_len, d + at + (size_t)r, rest);
    buf_truncate(&c->rbuf, c->head_len + c->body_len + rest);
    return CONN_EV_REQUEST;
}

conn_ev conn_parse(conn *c, const conn_limits *lim, int64_t now)
{
    (void)now;
    if (c->state == CONN_READ) {
        size_t len = buf_len(&c->rbuf);
        if (len == 0)
            return CONN_EV_NEED_MORE;
        int r = http_request_parse(&c->req, buf_data(&c->rbuf), len, lim->max_head);
        if (r == -2)
            return CONN_EV_NEED_MORE;
        if (r == -1) {
            http_err e = c->req.err;
            if (e == HTTP_ERR_HEAD_TOO_LARGE || e == HTTP_ERR_URI_TOO_LONG)
                return conn_fail(c, http_err_status(e), "%s (limit %zu bytes)",
                                 http_err_str(e), lim->max_head);
            if (e == HTTP_ERR_TOO_MANY_HEADERS)
                return conn_fail(c, 431, "%s (limit %zu)", http_err_str(e), lim->max_headers);
            return conn_fail(c, http_err_status(e), "%s", http_err_str(e));
        }
        c->head_len = (size_t)r;
        c->body_len = 0;
        c->minor_version = c->req.minor_version;
        if (c->req.body_kind == HTTP_BODY_NONE)
            return CONN_EV_REQUEST;
        if (c->req.body_kind == HTTP_BODY_LENGTH && c->req.content_length > lim->max_body)
            return conn_fail(c, 413, "request body of %zu bytes over the limit of %zu bytes",
                             (size_t)c->req.content_length, lim->max_body);
        if (c->req.body_kind == HTTP_BODY_CHUNKED)
            http_chunked_init(&c->ch, lim->max_body);
        c->state = CONN_BODY;
        if (c->req.expect_continue && !c->continue_sent && len == c->head_len) {
            c->continue_sent = 1;
            return CONN_EV_CONTINUE;
        }
    }
    if (c->state != CONN_BODY)
        return CONN_EV_NEED_MORE;
    if (c->req.body_kind == HTTP_BODY_LENGTH) {
        size_t have = buf_len(&c->rbuf) - c->head_len;
        if (have < c->req.content_length)
            return CONN_EV_NEED_MORE;
        c->body_len = (size_t)c->req.content_length;
        return CONN_EV_REQUEST;
    }
    return conn_parse_chunked(c, lim);
}

const char *conn_body(const conn *c, size_t *len)
{
    *len = c->body_len;
    return buf_data(&c->rbuf) + c->head_len;
}

void conn_next_request(conn *c, int64_t now)
{
    buf_consume(&c->rbuf, c->head_len + c->body_len);
    buf_compact(&c->rbuf);
    conn_request_clear(c);
    c->state = CONN_READ;
    c->t_req = now;
}
