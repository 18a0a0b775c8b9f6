/* tls.h — HTTPS for the loop: BearSSL's server engine as a byte filter.
 *
 * Networking layer; no sockets calls and no model knowledge here. The loop
 * moves TLS records between the socket and the engine, and the engine turns
 * them into plaintext in the connection's read buffer (and the write buffer
 * into records), so everything above the loop sees plain HTTP bytes: one
 * code path for HTTP and HTTPS.
 *
 * Two objects, both owned by the caller (init / free):
 *   tls_ctx   one per server: certificate chain, private key, session cache.
 *             Read-only after tls_ctx_init except the cache, which only the
 *             loop thread touches (single-threaded use).
 *   tls_conn  one per connection slot, allocated at startup with the pool
 *             (TLS_CONN_BYTES each, see below), reused by tls_conn_start
 *             for every accepted socket.
 *
 * Protocol: TLS 1.2 only. Suites: ECDHE with AES-128-GCM, AES-256-GCM or
 * ChaCha20-Poly1305 (ECDSA or RSA signatures following the key); server
 * preference: AES-GCM first when the CPU has AES-NI, ChaCha20 first
 * otherwise (faster without AES hardware, e.g. on ARM boards). ALPN offers
 * "http/1.1" (a client offering only h2 gets no ALPN and carries on).
 * Renegotiation is refused. Session resumption by session id, with an LRU
 * cache of `cache_entries` entries (TLS_CACHE_ENTRY_BYTES each; 0 = off).
 * Each new connection injects 32 bytes from getrandom() into the engine's
 * DRBG (the aarch64 build has no other entropy source it can rely on).
 *
 * Keys and certificates (PEM, loaded once at start): the certificate file
 * holds the chain, leaf first (objects "CERTIFICATE", up to TLS_CHAIN_MAX;
 * others are ignored). The key file holds one RSA or EC private key as
 * "RSA PRIVATE KEY" (PKCS#1), "EC PRIVATE KEY" (SEC1; an "EC PARAMETERS"
 * block before it is ignored) or "PRIVATE KEY" (PKCS#8, unencrypted). The
 * key must match the leaf's public key: a signature made with it is
 * verified with the certificate's key at load. EC keys: P-256, P-384, P-521.
 * RSA keys: 1024..4096 bits.
 *
 * Per-connection pump (loop thread), see loop.c:
 *   input:  p = tls_conn_rec_room(t, &room); n = recv(fd, p, room);
 *           tls_conn_rec_commit(t, n); tls_conn_pump(t, &rbuf, NULL);
 *   output: tls_conn_pump(t, NULL, &wbuf); d = tls_conn_rec_data(t, &len);
 *           n = send(fd, d, len); tls_conn_rec_consume(t, n);
 * tls_conn_rec_room returns NULL when the engine takes no input now (it has
 * records to send first, decrypted bytes not yet taken, or it is closed).
 *
 * Memory per TLS connection: TLS_CONN_BYTES = the engine context (~4 KiB)
 * + a full 16 KiB input record buffer + a full 16 KiB output record buffer
 * (about 37 KiB), in addition to the plain connection's buffers. It is
 * allocated for every slot of the pool at startup, so the connection limit
 * bounds it (64 connections: ~2.3 MiB). Measured figures: doc/tls.md.
 *
 * A build without BearSSL (MOTE_TLS=0) keeps this interface: tls_ctx_init
 * fails with "this build has no TLS support", the rest is never reached.
 */
#ifndef MOTE_TLS_H
#define MOTE_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#if MOTE_TLS
#include <bearssl.h>
#endif

#define TLS_CHAIN_MAX 8                   /* certificates in the chain file */
#define TLS_FILE_MAX (1u << 20)           /* bytes of a PEM file */
#define TLS_CACHE_ENTRY_BYTES 100         /* per session-cache entry (BearSSL LRU) */
#define TLS_DEFAULT_CACHE_ENTRIES 256
#define TLS_ERR_MAX 256

typedef enum tls_status {
    TLS_FAILED = -1,   /* protocol error: tls_conn_error() says why; close */
    TLS_CLOSED = 0,    /* closed cleanly (close_notify received or sent) */
    TLS_HANDSHAKE = 1, /* handshake in progress */
    TLS_READY = 2      /* handshake done: application data flows */
} tls_status;

#if MOTE_TLS
typedef struct tls_ctx {
    br_x509_certificate chain[TLS_CHAIN_MAX];  /* DER, data owned (malloc) */
    size_t chain_len;
    int key_type;                   /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
    int issuer_key_type;            /* key type that signed the leaf */
    br_skey_decoder_context key;    /* holds the decoded private key */
    br_ssl_session_cache_lru cache;
    unsigned char *cache_store;     /* cache_entries * TLS_CACHE_ENTRY_BYTES, owned */
    size_t cache_entries;
    uint16_t suites[6];             /* in server preference order */
    size_t n_suites;
    char desc[160];                 /* "EC P-256 key, 2 certificates" for the log */
} tls_ctx;

typedef struct tls_conn {
    br_ssl_server_context sc;
    unsigned char *iobuf;           /* TLS_IBUF_BYTES + TLS_OBUF_BYTES, owned */
    tls_ctx *ctx;
    int ready;                      /* handshake completed once */
    unsigned char first[8];         /* first bytes received (plain HTTP detection) */
    size_t n_first;
    char errbuf[96];                /* tls_conn_error text */
} tls_conn;

#define TLS_IBUF_BYTES BR_SSL_BUFSIZE_INPUT
#define TLS_OBUF_BYTES BR_SSL_BUFSIZE_OUTPUT
#else
typedef struct tls_ctx {
    int unused;
} tls_ctx;
typedef struct tls_conn {
    int unused;
} tls_conn;
#define TLS_IBUF_BYTES 0
#define TLS_OBUF_BYTES 0
#endif

/* Bytes of memory one TLS connection adds (struct + record buffers). */
#define TLS_CONN_BYTES (sizeof(tls_conn) + TLS_IBUF_BYTES + TLS_OBUF_BYTES)

/* 1 if this build has TLS (BearSSL), else 0. */
int tls_available(void);

/* ---- Server context ------------------------------------------------------ */

/* Load the PEM files and prepare the session cache (cache_entries, 0 = no
 * resumption). 0, or -1 with one line in err naming the file and the cause
 * (unreadable, no certificate, no key, encrypted/unsupported key, key does
 * not match the certificate, ...). tls_ctx_free is safe after a failure. */
int tls_ctx_init(tls_ctx *t, const char *cert_path, const char *key_path, size_t cache_entries,
                 char *err, size_t errcap);

/* The same from PEM text in memory (names used in messages). */
int tls_ctx_init_mem(tls_ctx *t, const void *cert_pem, size_t cert_len, const char *cert_name,
                     const void *key_pem, size_t key_len, const char *key_name,
                     size_t cache_entries, char *err, size_t errcap);

void tls_ctx_free(tls_ctx *t);

/* One line describing the loaded key and chain, e.g. "EC P-256 key, 2
 * certificates, session cache 256 entries". Valid while t lives. */
const char *tls_ctx_describe(const tls_ctx *t);

/* ---- One connection (loop thread) -------------------------------------------- */

/* Allocate the record buffers and configure the engine for ctx (which must
 * outlive c). 0, or -1 (out of memory; tls_conn_free is still safe). */
int tls_conn_init(tls_conn *c, tls_ctx *ctx);
void tls_conn_free(tls_conn *c);

/* Start a new connection on this slot: fresh engine state, fresh entropy.
 * 0, or -1 (getrandom failed or the engine refused to start). */
int tls_conn_start(tls_conn *c);

/* Ciphertext from the peer: room for it (NULL, *room 0: take none now). */
unsigned char *tls_conn_rec_room(tls_conn *c, size_t *room);
void tls_conn_rec_commit(tls_conn *c, size_t n);

/* Ciphertext for the peer: bytes to send (NULL, *len 0: none). */
const unsigned char *tls_conn_rec_data(tls_conn *c, size_t *len);
void tls_conn_rec_consume(tls_conn *c, size_t n);

/* Move plaintext: decrypted bytes into in (as many as fit; in may be NULL),
 * then bytes of out into the engine (consumed from out's head; out may be
 * NULL). When out has been emptied, the data is closed into a record. After
 * the call, tls_conn_rec_data may have records to send. Returns the status. */
tls_status tls_conn_pump(tls_conn *c, buf *in, buf *out);

/* Current status (see tls_status). */
tls_status tls_conn_status(tls_conn *c);

/* Queue a close_notify alert (if the connection is open); the loop then
 * sends what tls_conn_rec_data holds, best effort, before closing. */
void tls_conn_close(tls_conn *c);

/* Why the connection failed, as text ("" when it did not), e.g.
 * "no common cipher suite (client offers only TLS 1.3 or weak suites?)". */
const char *tls_conn_error(tls_conn *c);

/* 1 if the first bytes the peer sent look like a plain HTTP request
 * ("GET /..."): the loop then answers 400 in plain text. */
int tls_conn_plain_http(const tls_conn *c);

/* Negotiated parameters for the log into out, e.g. "TLS1.2
 * ECDHE-ECDSA-AES128-GCM-SHA256 alpn=http/1.1" ("" before TLS_READY). */
const char *tls_conn_describe(tls_conn *c, char *out, size_t cap);

#endif
