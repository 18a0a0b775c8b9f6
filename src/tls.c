/* tls.c — BearSSL server engine as a filter on the buf contract; see tls.h.
 *
 * Sections: files and PEM; the certificate chain; the private key and the
 * match check; the server context; one connection (engine setup, record
 * and plaintext pumps, status, error text).
 *
 * BearSSL makes no allocation: every context lives in our structs, and the
 * engine works in the record buffers we hand it. The engine is driven by
 * hand (never br_sslio): the loop owns the socket and moves records; here we
 * only move bytes between the engine and bufs.
 */
#include "tls.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if MOTE_TLS

#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

int tls_available(void) { return 1; }

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- Files and PEM ------------------------------------------------------------- */

/* Read a whole file (at most TLS_FILE_MAX bytes) into a malloc'd buffer. */
static int file_read(const char *path, const char *what, unsigned char **out, size_t *len,
                     char *err, size_t cap)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, cap, "%s %s: cannot open: %s", what, path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, cap, "%s %s: not a regular file", what, path);
    }
    if (st.st_size > (off_t)TLS_FILE_MAX) {
        close(fd);
        return fail(err, cap, "%s %s: %lld bytes, over the %u-byte limit for a PEM file", what, path,
                    (long long)st.st_size, TLS_FILE_MAX);
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *d = malloc(n + 1);
    if (!d) {
        close(fd);
        return fail(err, cap, "%s %s: out of memory", what, path);
    }
    while (got < n) {
        ssize_t r = read(fd, d + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            free(d);
            return fail(err, cap, "%s %s: read error: %s", what, path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    *out = d;
    *len = n;
    return 0;
}

#define PEM_OBJS_MAX 16
#define TLS_RSA_MAX_BITS 4096   /* BearSSL's limit for RSA */

typedef struct pem_obj {
    char name[128];       /* "CERTIFICATE", "EC PRIVATE KEY", ... */
    unsigned char *der;   /* decoded bytes, malloc'd */
    size_t len, cap;
    int overflow;
} pem_obj;

static void pem_sink(void *ctx, const void *src, size_t len)
{
    pem_obj *o = ctx;
    if (len > o->cap - o->len) {
        o->overflow = 1;
        return;
    }
    memcpy(o->der + o->len, src, len);
    o->len += len;
}

static void pem_objs_free(pem_obj *objs, int n)
{
    for (int i = 0; i < n; i++) {
        if (objs[i].der) {
            explicit_bzero(objs[i].der, objs[i].cap);
            free(objs[i].der);
        }
        objs[i].der = NULL;
    }
}

/* Decode every PEM object of text[0..len) (LF line ends) into objs
 * (capacity PEM_OBJS_MAX). The count goes to *n; -1 with err on a malformed
 * object or too many. */
static int pem_decode_lf(const unsigned char *text, size_t len, const char *what, const char *name,
                         pem_obj *objs, int *n, char *err, size_t cap)
{
    br_pem_decoder_context pc;
    int cur = -1;
    size_t off = 0;
    /* A final newline closes an END line the file did not terminate. */
    static const unsigned char nl = '\n';
    int pushed_nl = 0;

    *n = 0;
    br_pem_decoder_init(&pc);
    while (off < len || !pushed_nl) {
        const unsigned char *p = off < len ? text + off : &nl;
        size_t left = off < len ? len - off : 1;
        size_t used = br_pem_decoder_push(&pc, p, left);
        if (off < len)
            off += used;
        else if (used)
            pushed_nl = 1;
        int ev = br_pem_decoder_event(&pc);
        switch (ev) {
        case BR_PEM_BEGIN_OBJ:
            if (*n >= PEM_OBJS_MAX)
                return fail(err, cap, "%s %s: more than %d PEM objects", what, name, PEM_OBJS_MAX);
            cur = (*n)++;
            memset(&objs[cur], 0, sizeof objs[cur]);
            snprintf(objs[cur].name, sizeof objs[cur].name, "%s", br_pem_decoder_name(&pc));
            objs[cur].cap = len; /* decoded bytes are fewer than the text */
            objs[cur].der = malloc(len ? len : 1);
            if (!objs[cur].der)
                return fail(err, cap, "%s %s: out of memory", what, name);
            br_pem_decoder_setdest(&pc, pem_sink, &objs[cur]);
            break;
        case BR_PEM_END_OBJ:
            if (cur >= 0 && objs[cur].overflow)
                return fail(err, cap, "%s %s: PEM object %d too large", what, name, cur + 1);
            cur = -1;
            break;
        case BR_PEM_ERROR:
            return fail(err, cap, "%s %s: malformed PEM (bad base64 or header lines%s)", what, name,
                        memmem(text, len, "Proc-Type:", 10) ? "; encrypted keys are not supported" : "");
        default:
            if (used == 0) /* no progress and no event: cannot happen, but never spin */
                return fail(err, cap, "%s %s: PEM decoder stuck", what, name);
            break;
        }
    }
    if (cur >= 0)
        return fail(err, cap, "%s %s: PEM object '%s' has no END line", what, name, objs[cur].name);
    return 0;
}

/* The same for any line ends: BearSSL's decoder wants LF, and files edited
 * on Windows have CRLF, so CRs are dropped from a copy first. */
static int pem_decode_all(const unsigned char *text, size_t len, const char *what, const char *name,
                          pem_obj *objs, int *n, char *err, size_t cap)
{
    *n = 0;
    if (!memchr(text, '\r', len))
        return pem_decode_lf(text, len, what, name, objs, n, err, cap);
    unsigned char *lf = malloc(len ? len : 1);
    size_t k = 0;
    if (!lf)
        return fail(err, cap, "%s %s: out of memory", what, name);
    for (size_t i = 0; i < len; i++)
        if (text[i] != '\r')
            lf[k++] = text[i];
    int rc = pem_decode_lf(lf, k, what, name, objs, n, err, cap);
    explicit_bzero(lf, len);
    free(lf);
    return rc;
}

/* Message when a file holds no PEM object we want. */
static int no_pem(const unsigned char *text, size_t len, const char *what, const char *name,
                  const char *expected, char *err, size_t cap)
{
    if (len == 0)
        return fail(err, cap, "%s %s: empty file", what, name);
    if (len >= 2 && text[0] == 0x30 && (text[1] & 0x80))
        return fail(err, cap, "%s %s: looks like DER; give PEM (openssl x509/pkey -outform PEM)", what,
                    name);
    return fail(err, cap, "%s %s: no %s found", what, name, expected);
}

/* ---- The certificate chain ------------------------------------------------------ */

typedef struct leaf_info {
    int key_type;                 /* BR_KEYTYPE_RSA / BR_KEYTYPE_EC */
    int curve;                    /* EC */
    unsigned char pub[160];       /* EC point, or RSA modulus (see below) */
    size_t pub_len;
    unsigned char e[8];           /* RSA public exponent */
    size_t e_len;
    unsigned char n[TLS_RSA_MAX_BITS / 8 + 1];
    size_t n_len;
} leaf_info;

static const char *curve_name(int curve)
{
    switch (curve) {
    case BR_EC_secp256r1: return "P-256";
    case BR_EC_secp384r1: return "P-384";
    case BR_EC_secp521r1: return "P-521";
    case BR_EC_curve25519: return "X25519";
    default: return "an unknown curve";
    }
}

/* Strip leading zero bytes of a big-endian integer. */
static const unsigned char *bn_trim(const unsigned char *p, size_t *len)
{
    while (*len > 0 && p[0] == 0) {
        p++;
        (*len)--;
    }
    return p;
}

static int chain_load(tls_ctx *t, const unsigned char *text, size_t len, const char *name,
                      leaf_info *leaf, char *err, size_t cap)
{
    pem_obj objs[PEM_OBJS_MAX];
    int n = 0, rc = -1;
    br_x509_decoder_context *dc = malloc(sizeof *dc);
    if (!dc)
        return fail(err, cap, "certificate %s: out of memory", name);
    if (pem_decode_all(text, len, "certificate", name, objs, &n, err, cap) < 0)
        goto done;
    for (int i = 0; i < n; i++) {
        if (strcmp(objs[i].name, "CERTIFICATE") && strcmp(objs[i].name, "X509 CERTIFICATE") &&
            strcmp(objs[i].name, "TRUSTED CERTIFICATE"))
            continue;
        if (t->chain_len >= TLS_CHAIN_MAX) {
            fail(err, cap, "certificate %s: more than %d certificates in the chain", name, TLS_CHAIN_MAX);
            goto done;
        }
        size_t k = t->chain_len;
        br_x509_decoder_init(dc, NULL, NULL);
        br_x509_decoder_push(dc, objs[i].der, objs[i].len);
        br_x509_pkey *pk = br_x509_decoder_get_pkey(dc);
        if (!pk) {
            fail(err, cap, "certificate %s: certificate %zu is not a valid X.509 certificate "
                 "(BearSSL X.509 error %d)", name, k + 1, br_x509_decoder_last_error(dc));
            goto done;
        }
        if (k == 0) {
            leaf->key_type = pk->key_type;
            t->issuer_key_type = br_x509_decoder_get_signer_key_type(dc);
            if (pk->key_type == BR_KEYTYPE_EC) {
                leaf->curve = pk->key.ec.curve;
                if (pk->key.ec.qlen > sizeof leaf->pub) {
                    fail(err, cap, "certificate %s: EC public key too large", name);
                    goto done;
                }
                memcpy(leaf->pub, pk->key.ec.q, pk->key.ec.qlen);
                leaf->pub_len = pk->key.ec.qlen;
            } else if (pk->key_type == BR_KEYTYPE_RSA) {
                size_t nl = pk->key.rsa.nlen, el = pk->key.rsa.elen;
                const unsigned char *np = bn_trim(pk->key.rsa.n, &nl);
                const unsigned char *ep = bn_trim(pk->key.rsa.e, &el);
                if (nl > sizeof leaf->n || el > sizeof leaf->e) {
                    fail(err, cap, "certificate %s: RSA key over %d bits or with an exponent over "
                         "%zu bits is not supported", name, TLS_RSA_MAX_BITS, 8 * sizeof leaf->e);
                    goto done;
                }
                memcpy(leaf->n, np, nl);
                leaf->n_len = nl;
                memcpy(leaf->e, ep, el);
                leaf->e_len = el;
            } else {
                fail(err, cap, "certificate %s: unsupported public key type (RSA or ECDSA only)", name);
                goto done;
            }
        }
        /* Keep an exact-size copy of the DER. */
        t->chain[k].data = malloc(objs[i].len);
        if (!t->chain[k].data) {
            fail(err, cap, "certificate %s: out of memory", name);
            goto done;
        }
        memcpy(t->chain[k].data, objs[i].der, objs[i].len);
        t->chain[k].data_len = objs[i].len;
        t->chain_len++;
    }
    if (t->chain_len == 0) {
        if (n > 0)
            fail(err, cap, "certificate %s: no CERTIFICATE object (found '%s'; is this the key file?)",
                 name, objs[0].name);
        else
            no_pem(text, len, "certificate", name, "PEM certificate (-----BEGIN CERTIFICATE-----)",
                   err, cap);
        goto done;
    }
    rc = 0;
done:
    pem_objs_free(objs, n);
    free(dc);
    return rc;
}

/* ---- The private key ------------------------------------------------------------------ */

static int key_load(tls_ctx *t, const unsigned char *text, size_t len, const char *name,
                    const leaf_info *leaf, char *err, size_t cap)
{
    pem_obj objs[PEM_OBJS_MAX];
    int n = 0, rc = -1, found = -1;
    if (pem_decode_all(text, len, "key", name, objs, &n, err, cap) < 0)
        goto done;
    for (int i = 0; i < n; i++) {
        const char *on = objs[i].name;
        if (!strcmp(on, "ENCRYPTED PRIVATE KEY")) {
            fail(err, cap, "key %s: encrypted keys are not supported (decrypt it with openssl pkey)",
                 name);
            goto done;
        }
        if (strcmp(on, "RSA PRIVATE KEY") && strcmp(on, "EC PRIVATE KEY") && strcmp(on, "PRIVATE KEY"))
            continue; /* EC PARAMETERS, certificates, ... */
        if (found >= 0) {
            fail(err, cap, "key %s: more than one private key", name);
            goto done;
        }
        found = i;
    }
    if (found < 0) {
        if (n > 0)
            fail(err, cap, "key %s: no private key (found '%s'; expected RSA PRIVATE KEY, EC PRIVATE "
                 "KEY or PRIVATE KEY)", name, objs[0].name);
        else
            no_pem(text, len, "key", name, "PEM private key (-----BEGIN ... PRIVATE KEY-----)", err,
                   cap);
        goto done;
    }
    br_skey_decoder_init(&t->key);
    br_skey_decoder_push(&t->key, objs[found].der, objs[found].len);
    int kt = br_skey_decoder_key_type(&t->key);
    if (kt == 0) {
        int e = br_skey_decoder_last_error(&t->key);
        if (e == BR_ERR_X509_UNSUPPORTED)
            fail(err, cap, "key %s: unsupported key algorithm or version in '%s' (RSA or EC only)", name,
                 objs[found].name);
        else
            fail(err, cap, "key %s: '%s' is not a valid RSA or EC private key (BearSSL error %d)",
                 name, objs[found].name, e);
        goto done;
    }
    t->key_type = kt;
    if (kt == BR_KEYTYPE_RSA) {
        const br_rsa_private_key *sk = br_skey_decoder_get_rsa(&t->key);
        if (sk->n_bitlen < 1024 || sk->n_bitlen > TLS_RSA_MAX_BITS) {
            fail(err, cap, "key %s: RSA key of %u bits (1024..%d supported)", name,
                 (unsigned)sk->n_bitlen, TLS_RSA_MAX_BITS);
            goto done;
        }
        if (leaf->key_type != BR_KEYTYPE_RSA) {
            fail(err, cap, "key %s: an RSA key, but the certificate holds an EC key", name);
            goto done;
        }
        /* The modulus p*q must be the certificate's; then a signature made
         * with the key must verify with the certificate's (n, e), which
         * also checks the public exponent (BearSSL can recompute e only
         * for keys whose primes are 3 mod 4, which OpenSSL's are not). */
        unsigned char nb[TLS_RSA_MAX_BITS / 8 + 1], sig[TLS_RSA_MAX_BITS / 8], hash[32], back[32];
        size_t nl = br_rsa_compute_modulus_get_default()(NULL, sk);
        if (nl == 0 || nl > sizeof nb || br_rsa_compute_modulus_get_default()(nb, sk) != nl) {
            fail(err, cap, "key %s: inconsistent RSA key", name);
            goto done;
        }
        const unsigned char *np = bn_trim(nb, &nl);
        if (nl != leaf->n_len || memcmp(np, leaf->n, nl)) {
            fail(err, cap, "key %s does not match the certificate's public key", name);
            goto done;
        }
        br_rsa_public_key pk = { (unsigned char *)leaf->n, leaf->n_len, (unsigned char *)leaf->e, leaf->e_len };
        memset(hash, 0x5a, sizeof hash);
        if (!br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, hash, sizeof hash, sk, sig) ||
            !br_rsa_pkcs1_vrfy_get_default()(sig, (sk->n_bitlen + 7) / 8, BR_HASH_OID_SHA256, sizeof back,
                                             &pk, back) ||
            memcmp(hash, back, sizeof hash)) {
            fail(err, cap, "key %s does not match the certificate's public key (a test signature "
                 "does not verify)", name);
            goto done;
        }
        snprintf(t->desc, sizeof t->desc, "RSA %u-bit key", (unsigned)sk->n_bitlen);
    } else {
        const br_ec_private_key *sk = br_skey_decoder_get_ec(&t->key);
        const br_ec_impl *ec = br_ec_get_default();
        if (sk->curve != BR_EC_secp256r1 && sk->curve != BR_EC_secp384r1 &&
            sk->curve != BR_EC_secp521r1) {
            fail(err, cap, "key %s: EC key on %s (P-256, P-384 or P-521 supported)", name,
                 curve_name(sk->curve));
            goto done;
        }
        if (leaf->key_type != BR_KEYTYPE_EC) {
            fail(err, cap, "key %s: an EC key, but the certificate holds an RSA key", name);
            goto done;
        }
        if (leaf->curve != sk->curve) {
            fail(err, cap, "key %s does not match the certificate's public key (key on %s, "
                 "certificate on %s)", name, curve_name(sk->curve), curve_name(leaf->curve));
            goto done;
        }
        /* The public point d*G must be the certificate's. */
        unsigned char q[BR_EC_KBUF_PUB_MAX_SIZE];
        br_ec_public_key pk;
        size_t ql = br_ec_compute_pub(ec, &pk, q, sk);
        if (ql == 0 || ql != leaf->pub_len || memcmp(q, leaf->pub, ql)) {
            fail(err, cap, "key %s does not match the certificate's public key", name);
            goto done;
        }
        snprintf(t->desc, sizeof t->desc, "EC %s key", curve_name(sk->curve));
    }
    rc = 0;
done:
    pem_objs_free(objs, n);
    return rc;
}

/* ---- Server context ------------------------------------------------------------------ */

static void suites_choose(tls_ctx *t)
{
    /* AES-GCM is fastest with AES hardware; without it (ARM boards with
     * BearSSL's constant-time software AES) ChaCha20-Poly1305 is. */
    int aes_hw = br_aes_x86ni_ctr_get_vtable() != NULL || br_aes_pwr8_ctr_get_vtable() != NULL;
    int ec = t->key_type == BR_KEYTYPE_EC;
    uint16_t a128 = ec ? BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 : BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256;
    uint16_t a256 = ec ? BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 : BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384;
    uint16_t cha = ec ? BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
                      : BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256;
    t->n_suites = 0;
    if (aes_hw) {
        t->suites[t->n_suites++] = a128;
        t->suites[t->n_suites++] = a256;
        t->suites[t->n_suites++] = cha;
    } else {
        t->suites[t->n_suites++] = cha;
        t->suites[t->n_suites++] = a128;
        t->suites[t->n_suites++] = a256;
    }
}

int tls_ctx_init_mem(tls_ctx *t, const void *cert_pem, size_t cert_len, const char *cert_name,
                     const void *key_pem, size_t key_len, const char *key_name,
                     size_t cache_entries, char *err, size_t errcap)
{
    leaf_info leaf;
    memset(t, 0, sizeof *t);
    memset(&leaf, 0, sizeof leaf);
    if (chain_load(t, cert_pem, cert_len, cert_name, &leaf, err, errcap) < 0)
        return -1;
    if (key_load(t, key_pem, key_len, key_name, &leaf, err, errcap) < 0)
        return -1;
    if (cache_entries > (1u << 24))
        return fail(err, errcap, "TLS session cache: %zu entries is too many (at most %u)",
                    cache_entries, 1u << 24);
    if (cache_entries) {
        t->cache_store = malloc(cache_entries * TLS_CACHE_ENTRY_BYTES);
        if (!t->cache_store)
            return fail(err, errcap, "TLS session cache: out of memory for %zu entries", cache_entries);
        br_ssl_session_cache_lru_init(&t->cache, t->cache_store, cache_entries * TLS_CACHE_ENTRY_BYTES);
        t->cache_entries = cache_entries;
    }
    suites_choose(t);
    size_t dl = strlen(t->desc);
    snprintf(t->desc + dl, sizeof t->desc - dl, ", %zu certificate%s, %s first, session cache %zu entries",
             t->chain_len, t->chain_len == 1 ? "" : "s",
             (t->suites[0] == BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 ||
              t->suites[0] == BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256) ? "ChaCha20" : "AES-GCM",
             t->cache_entries);
    return 0;
}

int tls_ctx_init(tls_ctx *t, const char *cert_path, const char *key_path, size_t cache_entries,
                 char *err, size_t errcap)
{
    unsigned char *cert = NULL, *key = NULL;
    size_t cl = 0, kl = 0;
    int rc = -1;
    memset(t, 0, sizeof *t);
    if (file_read(cert_path, "certificate", &cert, &cl, err, errcap) < 0 ||
        file_read(key_path, "key", &key, &kl, err, errcap) < 0)
        goto done;
    rc = tls_ctx_init_mem(t, cert, cl, cert_path, key, kl, key_path, cache_entries, err, errcap);
done:
    free(cert);
    if (key) {
        explicit_bzero(key, kl);
        free(key);
    }
    return rc;
}

void tls_ctx_free(tls_ctx *t)
{
    for (size_t i = 0; i < t->chain_len; i++)
        free(t->chain[i].data);
    free(t->cache_store);
    explicit_bzero(&t->key, sizeof t->key);
    memset(t, 0, sizeof *t);
}

const char *tls_ctx_describe(const tls_ctx *t) { return t->desc; }

/* ---- One connection ------------------------------------------------------------------- */

int tls_conn_init(tls_conn *c, tls_ctx *ctx)
{
    static const char *alpn[] = { "http/1.1" };
    br_ssl_engine_context *e = &c->sc.eng;

    memset(c, 0, sizeof *c);
    c->ctx = ctx;
    c->iobuf = malloc(TLS_IBUF_BYTES + TLS_OBUF_BYTES);
    if (!c->iobuf)
        return -1;
    br_ssl_server_zero(&c->sc);
    br_ssl_engine_set_versions(e, BR_TLS12, BR_TLS12);
    br_ssl_engine_set_suites(e, ctx->suites, ctx->n_suites);
    br_ssl_engine_set_default_ec(e);                /* ECDHE: X25519, P-256, P-384, P-521 */
    br_ssl_engine_set_hash(e, br_sha224_ID, &br_sha224_vtable);
    br_ssl_engine_set_hash(e, br_sha256_ID, &br_sha256_vtable);
    br_ssl_engine_set_hash(e, br_sha384_ID, &br_sha384_vtable);
    br_ssl_engine_set_hash(e, br_sha512_ID, &br_sha512_vtable);
    br_ssl_engine_set_prf_sha256(e, &br_tls12_sha256_prf);
    br_ssl_engine_set_prf_sha384(e, &br_tls12_sha384_prf);
    br_ssl_engine_set_default_aes_gcm(e);
    br_ssl_engine_set_default_chapol(e);
    if (ctx->key_type == BR_KEYTYPE_RSA)
        br_ssl_server_set_single_rsa(&c->sc, ctx->chain, ctx->chain_len,
                                     br_skey_decoder_get_rsa(&ctx->key), BR_KEYTYPE_SIGN,
                                     br_rsa_private_get_default(), br_rsa_pkcs1_sign_get_default());
    else
        br_ssl_server_set_single_ec(&c->sc, ctx->chain, ctx->chain_len,
                                    br_skey_decoder_get_ec(&ctx->key), BR_KEYTYPE_SIGN,
                                    ctx->issuer_key_type ? (unsigned)ctx->issuer_key_type : BR_KEYTYPE_EC,
                                    br_ec_get_default(), br_ecdsa_sign_asn1_get_default());
    br_ssl_engine_set_buffers_bidi(e, c->iobuf, TLS_IBUF_BYTES, c->iobuf + TLS_IBUF_BYTES,
                                   TLS_OBUF_BYTES);
    br_ssl_engine_set_protocol_names(e, alpn, 1);
    br_ssl_engine_add_flags(e, BR_OPT_ENFORCE_SERVER_PREFERENCES | BR_OPT_NO_RENEGOTIATION);
    if (ctx->cache_entries)
        br_ssl_server_set_cache(&c->sc, &ctx->cache.vtable);
    return 0;
}

void tls_conn_free(tls_conn *c)
{
    if (c->iobuf) {
        explicit_bzero(c->iobuf, TLS_IBUF_BYTES + TLS_OBUF_BYTES);
        free(c->iobuf);
    }
    explicit_bzero(&c->sc, sizeof c->sc);
    c->iobuf = NULL;
}

int tls_conn_start(tls_conn *c)
{
    unsigned char seed[32];
    size_t got = 0;
    while (got < sizeof seed) {
        ssize_t r = getrandom(seed + got, sizeof seed - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    br_ssl_engine_inject_entropy(&c->sc.eng, seed, sizeof seed);
    explicit_bzero(seed, sizeof seed);
    c->ready = 0;
    c->n_first = 0;
    c->errbuf[0] = '\0';
    return br_ssl_server_reset(&c->sc) ? 0 : -1;
}

unsigned char *tls_conn_rec_room(tls_conn *c, size_t *room)
{
    return br_ssl_engine_recvrec_buf(&c->sc.eng, room);
}

void tls_conn_rec_commit(tls_conn *c, size_t n)
{
    if (n == 0)
        return;
    if (c->n_first < sizeof c->first) {
        size_t room, k = sizeof c->first - c->n_first;
        const unsigned char *p = br_ssl_engine_recvrec_buf(&c->sc.eng, &room);
        if (k > n)
            k = n;
        if (p) {
            memcpy(c->first + c->n_first, p, k);
            c->n_first += k;
        }
    }
    br_ssl_engine_recvrec_ack(&c->sc.eng, n);
}

const unsigned char *tls_conn_rec_data(tls_conn *c, size_t *len)
{
    return br_ssl_engine_sendrec_buf(&c->sc.eng, len);
}

void tls_conn_rec_consume(tls_conn *c, size_t n)
{
    if (n)
        br_ssl_engine_sendrec_ack(&c->sc.eng, n);
}

tls_status tls_conn_status(tls_conn *c)
{
    const br_ssl_engine_context *e = &c->sc.eng;
    unsigned st = br_ssl_engine_current_state(e);
    /* The error is set as soon as the engine fails, while the fatal alert
     * it queued may still wait to be sent (the state is not CLOSED yet). */
    if (br_ssl_engine_last_error(e) != BR_ERR_OK)
        return TLS_FAILED;
    if (st & BR_SSL_CLOSED)
        return TLS_CLOSED;
    /* The engine takes or gives application data only once the handshake is
     * done; latch it, since SENDREC hides SENDAPP while a record goes out. */
    if (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))
        c->ready = 1;
    return c->ready ? TLS_READY : TLS_HANDSHAKE;
}

tls_status tls_conn_pump(tls_conn *c, buf *in, buf *out)
{
    br_ssl_engine_context *e = &c->sc.eng;
    size_t alen, room;
    unsigned char *a;

    while (in && (a = br_ssl_engine_recvapp_buf(e, &alen)) != NULL) {
        char *p = buf_room(in, &room);
        if (room == 0)
            break; /* the rest waits in the engine until `in` has room */
        size_t k = alen < room ? alen : room;
        memcpy(p, a, k);
        buf_commit(in, k);
        br_ssl_engine_recvapp_ack(e, k);
    }
    if (out) {
        while (buf_len(out) && (a = br_ssl_engine_sendapp_buf(e, &alen)) != NULL) {
            size_t k = buf_len(out) < alen ? buf_len(out) : alen;
            memcpy(a, buf_data(out), k);
            br_ssl_engine_sendapp_ack(e, k);
            buf_consume(out, k);
        }
        if (!buf_len(out))
            br_ssl_engine_flush(e, 0); /* close the record: the response goes now */
    }
    return tls_conn_status(c);
}

void tls_conn_close(tls_conn *c)
{
    br_ssl_engine_close(&c->sc.eng);
}

static const char *alert_name(int a)
{
    switch (a) {
    case 0: return "close_notify";
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 22: return "record_overflow";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 86: return "inappropriate_fallback";
    case 90: return "user_canceled";
    case 109: return "missing_extension";
    case 112: return "unrecognized_name";
    case 120: return "no_application_protocol";
    default: return "alert";
    }
}

const char *tls_conn_error(tls_conn *c)
{
    int e = br_ssl_engine_last_error(&c->sc.eng);
    const char *m = NULL;
    if (e == BR_ERR_OK)
        return "";
    if (tls_conn_plain_http(c))
        return "plain HTTP request on the HTTPS port";
    switch (e) {
    case BR_ERR_UNSUPPORTED_VERSION: m = "unsupported protocol version (not TLS 1.2, or not TLS at all)"; break;
    case BR_ERR_BAD_VERSION: m = "bad protocol version in a record"; break;
    case BR_ERR_BAD_LENGTH:
    case BR_ERR_TOO_LARGE:
    case BR_ERR_UNKNOWN_TYPE: m = "not a TLS record (random bytes or plain text?)"; break;
    case BR_ERR_BAD_MAC: m = "record authentication failed (corrupted data)"; break;
    case BR_ERR_UNEXPECTED: m = "unexpected message"; break;
    case BR_ERR_BAD_HANDSHAKE: m = "malformed handshake message"; break;
    case BR_ERR_BAD_CIPHER_SUITE: m = "no common cipher suite (client offers only TLS 1.3 or weak suites?)"; break;
    case BR_ERR_BAD_COMPRESSION: m = "client requires compression"; break;
    case BR_ERR_BAD_SECRENEG: m = "bad secure renegotiation"; break;
    case BR_ERR_EXTRA_EXTENSION: m = "unexpected extension"; break;
    case BR_ERR_BAD_SNI: m = "bad server name"; break;
    case BR_ERR_LIMIT_EXCEEDED: m = "limit exceeded (oversized handshake message?)"; break;
    case BR_ERR_BAD_FINISHED: m = "bad Finished message"; break;
    case BR_ERR_INVALID_ALGORITHM: m = "no common signature algorithm or curve"; break;
    case BR_ERR_NO_RANDOM: m = "no random source"; break;
    default: break;
    }
    if (m)
        return m;
    if (e == BR_ERR_SEND_FATAL_ALERT + 40 && !c->ready)
        return "no common cipher suite, curve or signature algorithm "
               "(a TLS 1.3-only client, or weak suites only?)";
    if (e >= BR_ERR_SEND_FATAL_ALERT)
        snprintf(c->errbuf, sizeof c->errbuf, "sent fatal alert %d (%s)", e - BR_ERR_SEND_FATAL_ALERT,
                 alert_name(e - BR_ERR_SEND_FATAL_ALERT));
    else if (e >= BR_ERR_RECV_FATAL_ALERT)
        snprintf(c->errbuf, sizeof c->errbuf, "client sent fatal alert %d (%s)%s",
                 e - BR_ERR_RECV_FATAL_ALERT, alert_name(e - BR_ERR_RECV_FATAL_ALERT),
                 (e - BR_ERR_RECV_FATAL_ALERT == 46 || e - BR_ERR_RECV_FATAL_ALERT == 48)
                     ? ": the client does not trust the certificate" : "");
    else
        snprintf(c->errbuf, sizeof c->errbuf, "BearSSL error %d", e);
    return c->errbuf;
}

int tls_conn_plain_http(const tls_conn *c)
{
    size_t k = 0;
    while (k < c->n_first && c->first[k] >= 'A' && c->first[k] <= 'Z')
        k++;
    /* A TLS record starts with a content type byte 20..23: letters never
     * start one. The engine fails after the 5-byte record header, so
     * "DELET" or "OPTIO" is all we may see of a longer method. */
    return k >= 3 && (k == c->n_first || c->first[k] == ' ');
}

static const char *suite_name(unsigned s)
{
    switch (s) {
    case BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: return "ECDHE-ECDSA-AES128-GCM-SHA256";
    case BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: return "ECDHE-ECDSA-AES256-GCM-SHA384";
    case BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: return "ECDHE-ECDSA-CHACHA20-POLY1305";
    case BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: return "ECDHE-RSA-AES128-GCM-SHA256";
    case BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: return "ECDHE-RSA-AES256-GCM-SHA384";
    case BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: return "ECDHE-RSA-CHACHA20-POLY1305";
    default: return "?";
    }
}

const char *tls_conn_describe(tls_conn *c, char *out, size_t cap)
{
    if (tls_conn_status(c) != TLS_READY) {
        if (cap)
            out[0] = '\0';
        return out;
    }
    const br_ssl_engine_context *e = &c->sc.eng;
    const char *alpn = br_ssl_engine_get_selected_protocol((br_ssl_engine_context *)e);
    unsigned v = br_ssl_engine_get_version(e);
    snprintf(out, cap, "TLS%u.%u %s%s%s", (v >> 8) - 2, (v & 0xff) - 1,
             suite_name(e->session.cipher_suite), alpn ? " alpn=" : "", alpn ? alpn : "");
    return out;
}

#else /* !MOTE_TLS: the interface without BearSSL */

int tls_available(void) { return 0; }

int tls_ctx_init(tls_ctx *t, const char *cert_path, const char *key_path, size_t cache_entries,
                 char *err, size_t errcap)
{
    (void)cert_path;
    (void)key_path;
    return tls_ctx_init_mem(t, NULL, 0, NULL, NULL, 0, NULL, cache_entries, err, errcap);
}

int tls_ctx_init_mem(tls_ctx *t, const void *cert_pem, size_t cert_len, const char *cert_name,
                     const void *key_pem, size_t key_len, const char *key_name,
                     size_t cache_entries, char *err, size_t errcap)
{
    (void)cert_pem; (void)cert_len; (void)cert_name; (void)key_pem; (void)key_len;
    (void)key_name; (void)cache_entries;
    memset(t, 0, sizeof *t);
    snprintf(err, errcap, "--ssl-public/--ssl-key: this build has no TLS support "
             "(built with TLS=0 or without BearSSL; rebuild with libbearssl-dev installed)");
    return -1;
}

void tls_ctx_free(tls_ctx *t) { (void)t; }
const char *tls_ctx_describe(const tls_ctx *t) { (void)t; return "no TLS"; }
int tls_conn_init(tls_conn *c, tls_ctx *ctx) { (void)c; (void)ctx; return -1; }
void tls_conn_free(tls_conn *c) { (void)c; }
int tls_conn_start(tls_conn *c) { (void)c; return -1; }
unsigned char *tls_conn_rec_room(tls_conn *c, size_t *room) { (void)c; *room = 0; return NULL; }
void tls_conn_rec_commit(tls_conn *c, size_t n) { (void)c; (void)n; }
const unsigned char *tls_conn_rec_data(tls_conn *c, size_t *len) { (void)c; *len = 0; return NULL; }
void tls_conn_rec_consume(tls_conn *c, size_t n) { (void)c; (void)n; }
tls_status tls_conn_pump(tls_conn *c, buf *in, buf *out) { (void)c; (void)in; (void)out; return TLS_FAILED; }
tls_status tls_conn_status(tls_conn *c) { (void)c; return TLS_FAILED; }
void tls_conn_close(tls_conn *c) { (void)c; }
const char *tls_conn_error(tls_conn *c) { (void)c; return "no TLS support in this build"; }
int tls_conn_plain_http(const tls_conn *c) { (void)c; return 0; }
const char *tls_conn_describe(tls_conn *c, char *out, size_t cap) { (void)c; if (cap) out[0] = '\0'; return out; }

#endif
