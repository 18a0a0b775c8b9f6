/* http.h — incremental HTTP/1.1 request parser, chunked body decoder and
 * whole-response builder. Bytes only: no sockets, no allocation.
 *
 * Request parsing (RFC 9112), picohttpparser style:
 *
 *     http_header hs[64];
 *     http_request req = { .headers = hs, .max_headers = 64 };
 *     int n = http_request_parse(&req, data, len, 8192);
 *     n >= 0   complete head of n bytes (request line + headers + empty line);
 *              every slice in req points into data[0..n) (no copies), valid
 *              as long as data is; the body (if any) starts at data + n.
 *     n == -2  need more bytes: call again with the same start and more data
 *              (stateless: the whole head is re-parsed; every proper prefix of
 *              a valid head answers -2).
 *     n == -1  malformed or over a limit: req->err says which, and
 *              http_err_status(req->err) the status to answer (400, 414,
 *              431, 417, 501, 505). The connection must then be closed.
 *
 * Choices (strict where RFC 9112 allows a choice; we are an origin server
 * facing hostile clients, so ambiguity is refused rather than guessed):
 *  - Lines end with CRLF. A bare LF or a bare CR anywhere in the head is 400
 *    (RFC 9112 2.2 lets a recipient accept bare LF; we do not).
 *  - obs-fold (a header line starting with SP/HTAB) is 400.
 *  - Whitespace between a field name and ':' is 400; field names are tokens;
 *    values are trimmed of SP/HTAB on both sides and may hold VCHAR, SP,
 *    HTAB and obs-text (0x80-0xFF); any other control byte (NUL...) is 400.
 *  - Method: any token (405/501 are decided above this layer).
 *  - Request-target: origin-form "/path?query", asterisk-form "*" and
 *    absolute-form "http://host/path?query" (path then starts at the first
 *    '/' after the authority, or is the static string "/"); authority-form
 *    (CONNECT) is not served: 400. Bytes must be VCHAR; '#' is 400.
 *  - Version: "HTTP/1.x" with one digit x (1.0, 1.1; 1.2+ treated as 1.1's
 *    rules); "HTTP/2.0" or any other major digit: 505; anything else: 400.
 *  - HTTP/1.1 requires exactly one Host header (400 if missing or repeated).
 *  - A request line longer than max_head without its CRLF: 414; a head
 *    longer than max_head or more headers than max_headers: 431.
 *
 * Body framing, decided when the head is complete:
 *  - Transfer-Encoding (all occurrences, comma lists joined): must end in
 *    "chunked" and hold it exactly once, else 400; other codings before it
 *    (gzip, chunked): 501. Transfer-Encoding in an HTTP/1.0 request: 400.
 *  - Content-Length: 1*DIGIT only (no sign, no spaces, no comma lists),
 *    at most 18 digits; repeated headers must agree, else 400.
 *  - Both Transfer-Encoding and Content-Length: 400 (smuggling vector).
 *  - Neither: no body (length 0).
 * Connection: the token list is searched for "close" and "keep-alive";
 * HTTP/1.1 defaults to keep-alive, HTTP/1.0 to close; "close" always wins.
 * Expect: "100-continue" (case-insensitive) sets expect_continue on
 * HTTP/1.1 (ignored on 1.0); any other expectation is 417.
 */
#ifndef MOTE_HTTP_H
#define MOTE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Why a parse failed; http_err_status() maps each to the status to send. */
typedef enum http_err {
    HTTP_OK = 0,
    HTTP_ERR_BAD_REQUEST,      /* 400: any syntax error in the head */
    HTTP_ERR_URI_TOO_LONG,     /* 414: request line longer than max_head */
    HTTP_ERR_HEAD_TOO_LARGE,   /* 431: head longer than max_head bytes */
    HTTP_ERR_TOO_MANY_HEADERS, /* 431: more header lines than max_headers */
    HTTP_ERR_BAD_FRAMING,      /* 400: Content-Length / Transfer-Encoding */
    HTTP_ERR_NO_HOST,          /* 400: HTTP/1.1 without exactly one Host */
    HTTP_ERR_EXPECTATION,      /* 417: Expect other than 100-continue */
    HTTP_ERR_CODING,           /* 501: a transfer coding other than chunked */
    HTTP_ERR_VERSION,          /* 505: HTTP major version other than 1 */
    HTTP_ERR_BAD_CHUNK,        /* 400: malformed chunked body */
    HTTP_ERR_BODY_TOO_LARGE    /* 413: chunked body over the decoder's limit */
} http_err;

int http_err_status(http_err e);       /* 400, 413, 414, 417, 431, 501, 505 */
const char *http_err_str(http_err e);  /* short English text for logs/bodies */

/* One header line: name and value are slices (not NUL-terminated). */
typedef struct http_header {
    const char *name;
    size_t name_len;
    const char *value;  /* trimmed of surrounding SP/HTAB */
    size_t value_len;
} http_header;

typedef enum http_body_kind {
    HTTP_BODY_NONE = 0,   /* no body */
    HTTP_BODY_LENGTH,     /* content_length bytes follow the head */
    HTTP_BODY_CHUNKED     /* decode with http_chunked_decode */
} http_body_kind;

typedef struct http_request {
    /* in: storage for header slices (caller array) and its capacity */
    http_header *headers;
    size_t max_headers;

    /* out: slices into the parsed data, not NUL-terminated */
    const char *method;  size_t method_len;
    const char *target;  size_t target_len;  /* request-target as sent */
    const char *path;    size_t path_len;    /* target up to '?' (see above) */
    const char *query;   size_t query_len;   /* after '?', NULL/0 if no '?' */
    int minor_version;                       /* 0 or 1 (1.2+ reported as 1) */
    size_t n_headers;

    /* out: semantics, valid when parse returned >= 0 */
    http_body_kind body_kind;
    uint64_t content_length;   /* HTTP_BODY_LENGTH only */
    int keep_alive;            /* 1: the connection may serve another request */
    int expect_continue;       /* 1: client waits for "100 Continue" */
    int is_head;               /* method is HEAD: response carries no body */

    http_err err;              /* why -1 was returned, else HTTP_OK */
} http_request;

/* Parse the head at data[0..len). max_head bounds the head in bytes
 * (request line included; callers should keep it under 1 MiB). Returns
 * bytes used (>= 0), -2 need more, -1 error (req->err). */
int http_request_parse(http_request *req, const char *data, size_t len,
                       size_t max_head);

/* First header whose name equals `name` case-insensitively, or NULL. */
const http_header *http_header_find(const http_request *req, const char *name);

/* 1 if the comma-separated list value[0..len) holds `token`
 * (case-insensitive, surrounding SP/HTAB ignored), else 0. */
int http_list_has(const char *value, size_t len, const char *token);

/* 1 if slice s[0..n) equals the NUL-terminated lit, case-insensitively. */
int http_slice_ieq(const char *s, size_t n, const char *lit);

/* ---- Chunked request bodies (RFC 9112 7.1) ------------------------------
 * Incremental decoder: feed the body bytes as they arrive, in order.
 *
 *     http_chunked ch;  http_chunked_init(&ch, max_body);
 *     size_t out_n;
 *     int r = http_chunked_decode(&ch, in, len, out, &out_n);
 *
 * Payload bytes are written to out[0..out_n); out must have room for len
 * bytes and may equal in (in-place decoding: out <= in is safe, since the
 * payload never outruns the input).
 *   r >= 0  the body is complete: r input bytes were used (last-chunk and
 *           trailers included); bytes after in + r belong to the next request.
 *   r == -2 all len bytes were used, more are needed.
 *   r == -1 error: ch->err is HTTP_ERR_BAD_CHUNK (bad size: not hex, more
 *           than 16 digits, missing CRLF, bad extension or trailer line) or
 *           HTTP_ERR_BODY_TOO_LARGE (payload over max_body). Sticky.
 * Chunk extensions are skipped (at most HTTP_CHUNK_LINE_MAX bytes per size
 * line); trailer fields are checked for shape and discarded (at most
 * HTTP_CHUNK_TRAILER_MAX bytes in all). */
#define HTTP_CHUNK_LINE_MAX 1024
#define HTTP_CHUNK_TRAILER_MAX 8192

typedef struct http_chunked {
    int state;
    uint64_t chunk_left;   /* payload bytes left in the current chunk */
    uint64_t total;        /* payload bytes decoded so far */
    uint64_t max_body;     /* limit on total */
    size_t line_bytes;     /* bytes in the current size line */
    size_t trailer_bytes;  /* bytes of trailer section so far */
    int digits;            /* hex digits in the current size */
    http_err err;
} http_chunked;

void http_chunked_init(http_chunked *c, uint64_t max_body);
int http_chunked_decode(http_chunked *c, const char *in, size_t len,
                        char *out, size_t *out_len);

/* ---- Responses -----------------------------------------------------------
 * A whole response head (and body) written into a buf in one go, so the
 * loop sends it with one write. Always written: status line (HTTP/1.1),
 * Date, Server, Content-Type (if set), Content-Length (unless chunked or
 * until_close, or status 1xx/204/304),
 * Transfer-Encoding: chunked (if chunked), Connection: close (when not
 * keep_alive) or Connection: keep-alive (keep_alive on a 1.0 request), then
 * the caller's extra header lines verbatim, the empty line, and the body
 * unless head_only. */
typedef struct http_response {
    int status;                /* 100..599 */
    const char *content_type;  /* NULL: no Content-Type header */
    const char *extra;         /* NUL-terminated "Name: value\r\n"..., or NULL */
    const char *extra2;        /* more of the same, written after extra, or NULL */
    const char *body;          /* may be NULL when body_len == 0 */
    size_t body_len;
    int minor_version;         /* of the request (0 or 1) */
    int keep_alive;            /* connection stays open after this response */
    int head_only;             /* HEAD: Content-Length says body_len, no body */
    int chunked;               /* body follows as chunks (SSE); body ignored */
    int until_close;           /* body follows, delimited by closing the
                                  connection (SSE on HTTP/1.0): no length
                                  header; body ignored; keep_alive must be 0 */
} http_response;

/* Standard reason phrase ("OK", "Not Found", ...; "Unknown" otherwise). */
const char *http_reason(int status);

/* Append the response to b. Returns bytes written, or -1 if it does not fit
 * in b's free space (b is then unchanged) or status is out of range. */
long http_response_write(buf *b, const http_response *r);

/* Append one chunk "<hex len>\r\n<data>\r\n" (len > 0), or the last chunk
 * "0\r\n\r\n" when len == 0. Returns bytes written or -1 (no room, b
 * unchanged). */
long http_chunk_write(buf *b, const char *data, size_t len);

/* Bytes of the "<hex len>\r\n" line for a chunk of len bytes. */
size_t http_chunk_head_len(size_t len);

#endif
