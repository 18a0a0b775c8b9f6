/* http.c — HTTP/1.1 request head parser, chunked decoder, response builder.
 * The contract and every strictness choice are in http.h. */
#include "http.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- Errors ----------------------------------------------------------------- */

int http_err_status(http_err e)
{
    switch (e) {
    case HTTP_OK: return 200;
    case HTTP_ERR_URI_TOO_LONG: return 414;
    case HTTP_ERR_HEAD_TOO_LARGE:
    case HTTP_ERR_TOO_MANY_HEADERS: return 431;
    case HTTP_ERR_EXPECTATION: return 417;
    case HTTP_ERR_CODING: return 501;
    case HTTP_ERR_VERSION: return 505;
    case HTTP_ERR_BODY_TOO_LARGE: return 413;
    case HTTP_ERR_BAD_REQUEST:
    case HTTP_ERR_BAD_FRAMING:
    case HTTP_ERR_NO_HOST:
    case HTTP_ERR_BAD_CHUNK:
        break;
    }
    return 400;
}

const char *http_err_str(http_err e)
{
    switch (e) {
    case HTTP_OK: return "ok";
    case HTTP_ERR_BAD_REQUEST: return "malformed request head";
    case HTTP_ERR_URI_TOO_LONG: return "request line too long";
    case HTTP_ERR_HEAD_TOO_LARGE: return "request head too large";
    case HTTP_ERR_TOO_MANY_HEADERS: return "too many header fields";
    case HTTP_ERR_BAD_FRAMING: return "invalid Content-Length or Transfer-Encoding";
    case HTTP_ERR_NO_HOST: return "HTTP/1.1 request needs exactly one Host header";
    case HTTP_ERR_EXPECTATION: return "unsupported Expect value";
    case HTTP_ERR_CODING: return "unsupported transfer coding";
    case HTTP_ERR_VERSION: return "HTTP version not supported";
    case HTTP_ERR_BAD_CHUNK: return "malformed chunked body";
    case HTTP_ERR_BODY_TOO_LARGE: return "request body too large";
    }
    return "unknown error";
}

/* ---- Character classes (RFC 9110 5.6.2) ------------------------------------ */

static int is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-value bytes: VCHAR, SP, HTAB, obs-text */
static int is_vbyte(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

static unsigned char lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

int http_slice_ieq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

int http_list_has(const char *v, size_t len, const char *token)
{
    size_t i = 0;
    while (i < len) {
        size_t a = i, b;
        while (i < len && v[i] != ',')
            i++;
        b = i;
        while (a < b && is_ows((unsigned char)v[a]))
            a++;
        while (b > a && is_ows((unsigned char)v[b - 1]))
            b--;
        if (http_slice_ieq(v + a, b - a, token))
            return 1;
        i++; /* skip ',' */
    }
    return 0;
}

const http_header *http_header_find(const http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (http_slice_ieq(req->headers[i].name, req->headers[i].name_len, name))
            return &req->headers[i];
    return NULL;
}

/* ---- Request head ----------------------------------------------------------
 * One pass over data[0..lim), lim = min(len, max_head). Running out of bytes
 * at lim means "need more" unless lim is the limit itself, which is then an
 * error (414 while still in the request line, 431 after). */

#define NEED_MORE (-2)
#define FAIL(e) do { req->err = (e); return -1; } while (0)

typedef struct cursor {
    const unsigned char *p;
    size_t i, lim;
    int at_limit;   /* lim came from max_head, not from len */
} cursor;

/* Out of bytes: -2, or -1 with the limit error. */
static int out_of_bytes(http_request *req, const cursor *c, int in_request_line)
{
    if (!c->at_limit)
        return NEED_MORE;
    FAIL(in_request_line ? HTTP_ERR_URI_TOO_LONG : HTTP_ERR_HEAD_TOO_LARGE);
}

/* Split the request-target into path and query (see http.h). 0 or -1. */
static int split_target(http_request *req)
{
    const char *t = req->target;
    size_t n = req->target_len, i = 0, ps;

    if (n == 1 && t[0] == '*') {
        req->path = t;
        req->path_len = 1;
        return 0;
    }
    if (t[0] == '/') {
        ps = 0;
    } else {
        /* absolute-form: scheme "://" authority [ path ] */
        size_t s;
        if (n > 7 && http_slice_ieq(t, 7, "http://"))
            s = 7;
        else if (n > 8 && http_slice_ieq(t, 8, "https://"))
            s = 8;
        else
            return -1;
        i = s;
        while (i < n && t[i] != '/' && t[i] != '?')
            i++;
        if (i == s)
            return -1; /* empty authority */
        ps = i;
    }
    i = ps;
    while (i < n && t[i] != '?')
        i++;
    if (i == ps) {
        req->path = "/";
        req->path_len = 1;
    } else {
        req->path = t + ps;
        req->path_len = i - ps;
    }
    if (i < n) {
        req->query = t + i + 1;
        req->query_len = n - i - 1;
    }
    return 0;
}

/* Body framing, Connection and Expect, from the complete header list. */
static int head_semantics(http_request *req)
{
    int hosts = 0, te_seen = 0, te_chunked = 0, te_other = 0, te_last_chunked = 0;
    int cl_seen = 0, conn_close = 0, conn_ka = 0;
    uint64_t cl = 0;

    for (size_t h = 0; h < req->n_headers; h++) {
        const http_header *hd = &req->headers[h];
        const char *v = hd->value;
        size_t vn = hd->value_len;

        if (http_slice_ieq(hd->name, hd->name_len, "host")) {
            hosts++;
        } else if (http_slice_ieq(hd->name, hd->name_len, "transfer-encoding")) {
            size_t i = 0, elems = 0;
            te_seen = 1;
            while (i <= vn) {
                size_t a = i, b;
                while (i < vn && v[i] != ',')
                    i++;
                b = i;
                while (a < b && is_ows((unsigned char)v[a]))
                    a++;
                while (b > a && is_ows((unsigned char)v[b - 1]))
                    b--;
                if (b > a) {
                    elems++;
                    if (http_slice_ieq(v + a, b - a, "chunked")) {
                        te_chunked++;
                        te_last_chunked = 1;
                    } else {
                        te_other++;
                        te_last_chunked = 0;
                    }
                }
                i++;
            }
            if (elems == 0)
                FAIL(HTTP_ERR_BAD_FRAMING);
        } else if (http_slice_ieq(hd->name, hd->name_len, "content-length")) {
            uint64_t x = 0;
            if (vn == 0 || vn > 18)
                FAIL(HTTP_ERR_BAD_FRAMING);
            for (size_t i = 0; i < vn; i++) {
                if (v[i] < '0' || v[i] > '9')
                    FAIL(HTTP_ERR_BAD_FRAMING);
                x = x * 10 + (uint64_t)(v[i] - '0');
            }
            if (cl_seen && x != cl)
                FAIL(HTTP_ERR_BAD_FRAMING);
            cl = x;
            cl_seen = 1;
        } else if (http_slice_ieq(hd->name, hd->name_len, "connection")) {
            if (http_list_has(v, vn, "close"))
                conn_close = 1;
            if (http_list_has(v, vn, "keep-alive"))
                conn_ka = 1;
        } else if (http_slice_ieq(hd->name, hd->name_len, "expect")) {
            if (!http_slice_ieq(v, vn, "100-continue"))
                FAIL(HTTP_ERR_EXPECTATION);
            if (req->minor_version >= 1)
                req->expect_continue = 1;
        }
    }

    if (req->minor_version >= 1 && hosts != 1)
        FAIL(HTTP_ERR_NO_HOST);
    if (hosts > 1)
        FAIL(HTTP_ERR_NO_HOST);
    if (te_seen) {
        if (cl_seen || req->minor_version == 0)
            FAIL(HTTP_ERR_BAD_FRAMING);
        if (!te_last_chunked || te_chunked != 1)
            FAIL(HTTP_ERR_BAD_FRAMING);
        if (te_other)
            FAIL(HTTP_ERR_CODING);
        req->body_kind = HTTP_BODY_CHUNKED;
    } else if (cl_seen) {
        req->body_kind = HTTP_BODY_LENGTH;
        req->content_length = cl;
    }
    req->keep_alive = !conn_close && (req->minor_version >= 1 || conn_ka);
    return 0;
}

int http_request_parse(http_request *req, const char *data, size_t len,
                       size_t max_head)
{
    cursor c;
    size_t start;
    http_header *headers = req->headers;
    size_t max_headers = req->max_headers;

    memset(req, 0, sizeof *req);
    req->headers = headers;
    req->max_headers = max_headers;
    if (max_head > (size_t)INT_MAX)
        max_head = (size_t)INT_MAX;

    c.p = (const unsigned char *)data;
    c.i = 0;
    c.lim = len < max_head ? len : max_head;
    c.at_limit = len >= max_head;

#define PEEK_OR_NEED(rl) do { if (c.i >= c.lim) return out_of_bytes(req, &c, (rl)); } while (0)

    /* RFC 9112 2.2: ignore empty lines before the request line. */
    for (;;) {
        PEEK_OR_NEED(1);
        if (c.p[c.i] != '\r')
            break;
        c.i++;
        PEEK_OR_NEED(1);
        if (c.p[c.i] != '\n')
            FAIL(HTTP_ERR_BAD_REQUEST);
        c.i++;
    }

    /* method SP */
    start = c.i;
    for (;;) {
        PEEK_OR_NEED(1);
        if (c.p[c.i] == ' ')
            break;
        if (!is_tchar(c.p[c.i]))
            FAIL(HTTP_ERR_BAD_REQUEST);
        c.i++;
    }
    if (c.i == start)
        FAIL(HTTP_ERR_BAD_REQUEST);
    req->method = data + start;
    req->method_len = c.i - start;
    c.i++;

    /* request-target SP */
    start = c.i;
    for (;;) {
        unsigned char ch;
        PEEK_OR_NEED(1);
        ch = c.p[c.i];
        if (ch == ' ')
            break;
        if (ch <= 0x20 || ch >= 0x7f || ch == '#')
            FAIL(HTTP_ERR_BAD_REQUEST);
        c.i++;
    }
    if (c.i == start)
        FAIL(HTTP_ERR_BAD_REQUEST);
    req->target = data + start;
    req->target_len = c.i - start;
    c.i++;

    /* HTTP-version CRLF: "HTTP/" DIGIT "." DIGIT */
    {
        static const char proto[] = "HTTP/";
        for (int k = 0; k < 5; k++) {
            PEEK_OR_NEED(1);
            if (c.p[c.i] != (unsigned char)proto[k])
                FAIL(HTTP_ERR_BAD_REQUEST);
            c.i++;
        }
        PEEK_OR_NEED(1);
        unsigned char major = c.p[c.i++];
        PEEK_OR_NEED(1);
        unsigned char dot = c.p[c.i++];
        PEEK_OR_NEED(1);
        unsigned char minor = c.p[c.i++];
        if (major < '0' || major > '9' || dot != '.' || minor < '0' || minor > '9')
            FAIL(HTTP_ERR_BAD_REQUEST);
        PEEK_OR_NEED(1);
        if (c.p[c.i] != '\r')
            FAIL(HTTP_ERR_BAD_REQUEST);
        c.i++;
        PEEK_OR_NEED(1);
        if (c.p[c.i] != '\n')
            FAIL(HTTP_ERR_BAD_REQUEST);
        c.i++;
        if (major != '1')
            FAIL(HTTP_ERR_VERSION);
        req->minor_version = minor == '0' ? 0 : 1;
    }

    /* header fields, then the empty line */
    for (;;) {
        size_t ns, ne, vs, ve;
        PEEK_OR_NEED(0);
        if (c.p[c.i] == '\r') {
            c.i++;
            PEEK_OR_NEED(0);
            if (c.p[c.i] != '\n')
                FAIL(HTTP_ERR_BAD_REQUEST);
            c.i++;
            break;
        }
        if (is_ows(c.p[c.i]))
            FAIL(HTTP_ERR_BAD_REQUEST); /* obs-fold */
        ns = c.i;
        for (;;) {
            PEEK_OR_NEED(0);
            if (c.p[c.i] == ':')
                break;
            if (!is_tchar(c.p[c.i]))
                FAIL(HTTP_ERR_BAD_REQUEST);
            c.i++;
        }
        ne = c.i;
        if (ne == ns)
            FAIL(HTTP_ERR_BAD_REQUEST);
        c.i++;
        for (;;) {
            PEEK_OR_NEED(0);
            if (!is_ows(c.p[c.i]))
                break;
            c.i++;
        }
        vs = c.i;
        for (;;) {
            PEEK_OR_NEED(0);
            if (c.p[c.i] == '\r')
                break;
            if (!is_vbyte(c.p[c.i]))
                FAIL(HTTP_ERR_BAD_REQUEST);
            c.i++;
        }
        ve = c.i;
        c.i++;
        PEEK_OR_NEED(0);
        if (c.p[c.i] != '\n')
            FAIL(HTTP_ERR_BAD_REQUEST);
        c.i++;
        while (ve > vs && is_ows(c.p[ve - 1]))
            ve--;
        if (req->n_headers >= req->max_headers)
            FAIL(HTTP_ERR_TOO_MANY_HEADERS);
        http_header *h = &req->headers[req->n_headers++];
        h->name = data + ns;
        h->name_len = ne - ns;
        h->value = data + vs;
        h->value_len = ve - vs;
    }
#undef PEEK_OR_NEED

    if (split_target(req) < 0)
        FAIL(HTTP_ERR_BAD_REQUEST);
    if (head_semantics(req) < 0)
        return -1;
    req->is_head = req->method_len == 4 && !memcmp(req->method, "HEAD", 4);
    return (int)c.i;
}

/* ---- Chunked decoder ----------------------------------------------------------- */

enum {
    CH_SIZE0,     /* first hex digit of a chunk size */
    CH_SIZE,      /* more hex digits */
    CH_SIZE_WS,   /* BWS after the size: only ';' may follow */
    CH_EXT,       /* chunk extension, skipped up to CR */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TR_START,  /* start of a trailer line, or the final CRLF */
    CH_TR_NAME,
    CH_TR_VALUE,
    CH_TR_LF,
    CH_END_LF,
    CH_DONE,
    CH_ERR
};

void http_chunked_init(http_chunked *c, uint64_t max_body)
{
    memset(c, 0, sizeof *c);
    c->state = CH_SIZE0;
    c->max_body = max_body;
}

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int chunk_fail(http_chunked *c, http_err e)
{
    c->state = CH_ERR;
    c->err = e;
    return -1;
}

/* Size line complete: check the limit, then data or trailers. */
static int chunk_size_done(http_chunked *c)
{
    if (c->chunk_left > c->max_body - c->total)
        return chunk_fail(c, HTTP_ERR_BODY_TOO_LARGE);
    c->state = c->chunk_left ? CH_DATA : CH_TR_START;
    return 0;
}

int http_chunked_decode(http_chunked *c, const char *in, size_t len,
                        char *out, size_t *out_len)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;

    *out_len = 0;
    if (c->state == CH_ERR)
        return -1;
    if (c->state == CH_DONE)
        return 0;
    if (len > (size_t)INT_MAX)
        return chunk_fail(c, HTTP_ERR_BAD_CHUNK);

    while (i < len) {
        unsigned char ch = p[i];
        int hv;

        if (c->state == CH_DATA) {
            size_t n = len - i;
            if ((uint64_t)n > c->chunk_left)
                n = (size_t)c->chunk_left;
            memmove(out + o, in + i, n);
            o += n;
            i += n;
            c->chunk_left -= n;
            c->total += n;
            if (c->chunk_left == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        if (c->state >= CH_TR_START && c->state <= CH_END_LF &&
            ++c->trailer_bytes > HTTP_CHUNK_TRAILER_MAX)
            return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
        if (c->state <= CH_SIZE_LF && ++c->line_bytes > HTTP_CHUNK_LINE_MAX)
            return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
        i++;

        switch (c->state) {
        case CH_SIZE0:
        case CH_SIZE:
            hv = hexval(ch);
            if (hv >= 0) {
                if (++c->digits > 16)
                    return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
                c->chunk_left = (c->chunk_left << 4) | (uint64_t)hv;
                c->state = CH_SIZE;
            } else if (c->state == CH_SIZE0) {
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            } else if (ch == '\r') {
                c->state = CH_SIZE_LF;
            } else if (ch == ';') {
                c->state = CH_EXT;
            } else if (is_ows(ch)) {
                c->state = CH_SIZE_WS;
            } else {
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            }
            break;
        case CH_SIZE_WS:
            if (ch == ';')
                c->state = CH_EXT;
            else if (!is_ows(ch))
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            break;
        case CH_EXT:
            if (ch == '\r')
                c->state = CH_SIZE_LF;
            else if (!is_vbyte(ch))
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            break;
        case CH_SIZE_LF:
            if (ch != '\n')
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            c->line_bytes = 0;
            c->digits = 0;
            if (chunk_size_done(c) < 0)
                return -1;
            break;
        case CH_DATA_CR:
            if (ch != '\r')
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            c->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (ch != '\n')
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            c->state = CH_SIZE0;
            break;
        case CH_TR_START:
            if (ch == '\r')
                c->state = CH_END_LF;
            else if (is_tchar(ch))
                c->state = CH_TR_NAME;
            else
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            break;
        case CH_TR_NAME:
            if (ch == ':')
                c->state = CH_TR_VALUE;
            else if (!is_tchar(ch))
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            break;
        case CH_TR_VALUE:
            if (ch == '\r')
                c->state = CH_TR_LF;
            else if (!is_vbyte(ch))
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            break;
        case CH_TR_LF:
            if (ch != '\n')
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            c->state = CH_TR_START;
            break;
        case CH_END_LF:
            if (ch != '\n')
                return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
            c->state = CH_DONE;
            *out_len = o;
            return (int)i;
        default:
            return chunk_fail(c, HTTP_ERR_BAD_CHUNK);
        }
    }
    *out_len = o;
    return NEED_MORE;
}

/* ---- Responses ------------------------------------------------------------------ */

const char *http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    }
    return "Unknown";
}

/* IMF-fixdate, independent of the locale. out must hold 30 bytes. */
static void http_date(char out[32])
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

long http_response_write(buf *b, const http_response *r)
{
    size_t before = buf_len(b);
    char date[32];
    int no_body = r->status < 200 || r->status == 204 || r->status == 304;

    if (r->status < 100 || r->status > 599)
        return -1;
    http_date(date);
    if (buf_printf(b, "HTTP/1.1 %d %s\r\nDate: %s\r\nServer: mote\r\n",
                   r->status, http_reason(r->status), date) < 0)
        goto full;
    if (r->content_type &&
        buf_printf(b, "Content-Type: %s\r\n", r->content_type) < 0)
        goto full;
    if (r->chunked) {
        if (buf_printf(b, "Transfer-Encoding: chunked\r\n") < 0)
            goto full;
    } else if (!no_body && !r->until_close) {
        if (buf_printf(b, "Content-Length: %zu\r\n", r->body_len) < 0)
            goto full;
    }
    if (r->status >= 200) {
        if (!r->keep_alive) {
            if (buf_printf(b, "Connection: close\r\n") < 0)
                goto full;
        } else if (r->minor_version == 0) {
            if (buf_printf(b, "Connection: keep-alive\r\n") < 0)
                goto full;
        }
    }
    if (r->extra && buf_append(b, r->extra, strlen(r->extra)) < 0)
        goto full;
    if (r->extra2 && buf_append(b, r->extra2, strlen(r->extra2)) < 0)
        goto full;
    if (buf_append(b, "\r\n", 2) < 0)
        goto full;
    if (!r->chunked && !r->until_close && !no_body && !r->head_only && r->body_len &&
        buf_append(b, r->body, r->body_len) < 0)
        goto full;
    return (long)(buf_len(b) - before);
full:
    buf_truncate(b, before);
    return -1;
}

size_t http_chunk_head_len(size_t len)
{
    size_t n = 1;
    while (len >= 16) {
        len >>= 4;
        n++;
    }
    return n + 2;
}

long http_chunk_write(buf *b, const char *data, size_t len)
{
    size_t before = buf_len(b);
    if (len == 0)
        return buf_append(b, "0\r\n\r\n", 5) < 0 ? -1 : 5;
    if (buf_space(b) < http_chunk_head_len(len) + len + 2 + 1)
        return -1;
    if (buf_printf(b, "%zx\r\n", len) < 0 || buf_append(b, data, len) < 0 ||
        buf_append(b, "\r\n", 2) < 0) {
        buf_truncate(b, before);
        return -1;
    }
    return (long)(buf_len(b) - before);
}
