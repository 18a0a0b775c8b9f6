/* test_tls.c — tls.c: PEM certificate/key loading in every key form, the
 * key-matches-certificate check, refusals of garbage and unsupported files,
 * and in-process handshakes between our server filter and BearSSL's client
 * engine (records moved in memory, no sockets): suites, ALPN, data both
 * ways with back-pressure, session resumption, and rejected clients
 * (weak suites only, old versions only, plain HTTP, random bytes,
 * truncated ClientHello).
 *
 * Keys are generated here with BearSSL from a fixed seed, and certificates
 * are built by a small DER writer below (self-signed, or signed by a test
 * CA): no files and no external tools needed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "test.h"
#include "tls.h"

#if !MOTE_TLS
int main(void)
{
    tls_ctx t;
    char err[TLS_ERR_MAX];
    T_CHECK(!tls_available(), "build without TLS says so");
    T_CHECK(tls_ctx_init(&t, "c.pem", "k.pem", 0, err, sizeof err) < 0 && strstr(err, "no TLS support"),
            "TLS=0: loading refuses with a clear message: %s", err);
    T_SKIP("built with TLS=0", "handshake tests");
    return t_done();
}
#else

/* ---- Test keys ------------------------------------------------------------------- */

typedef struct tkey {
    int type; /* BR_KEYTYPE_RSA / BR_KEYTYPE_EC */
    br_rsa_private_key rsk;
    br_rsa_public_key rpk;
    unsigned char rpriv[BR_RSA_KBUF_PRIV_SIZE(2048)];
    unsigned char rpub[BR_RSA_KBUF_PUB_SIZE(2048)];
    br_ec_private_key esk;
    br_ec_public_key epk;
    unsigned char epriv[BR_EC_KBUF_PRIV_MAX_SIZE];
    unsigned char epub[BR_EC_KBUF_PUB_MAX_SIZE];
} tkey;

static br_hmac_drbg_context g_rng;

static int key_rsa(tkey *k, unsigned bits)
{
    memset(k, 0, sizeof *k);
    k->type = BR_KEYTYPE_RSA;
    return br_rsa_keygen_get_default()(&g_rng.vtable, &k->rsk, k->rpriv, &k->rpk, k->rpub, bits, 65537) == 1;
}

static int key_ec(tkey *k, int curve)
{
    memset(k, 0, sizeof *k);
    k->type = BR_KEYTYPE_EC;
    const br_ec_impl *ec = br_ec_get_default();
    return br_ec_keygen(&g_rng.vtable, ec, &k->esk, k->epriv, curve) > 0 &&
           br_ec_compute_pub(ec, &k->epk, k->epub, &k->esk) > 0;
}

/* ---- A tiny DER writer for certificates ------------------------------------------- */

typedef struct der {
    unsigned char b[6000];
    size_t n;
} der;

static void der_raw(der *d, const void *p, size_t n)
{
    if (d->n + n <= sizeof d->b) {
        memcpy(d->b + d->n, p, n);
        d->n += n;
    }
}

static void der_tlv(der *d, int tag, const void *v, size_t n)
{
    unsigned char h[4];
    size_t hl = 0;
    h[hl++] = (unsigned char)tag;
    if (n < 128) {
        h[hl++] = (unsigned char)n;
    } else if (n < 256) {
        h[hl++] = 0x81;
        h[hl++] = (unsigned char)n;
    } else {
        h[hl++] = 0x82;
        h[hl++] = (unsigned char)(n >> 8);
        h[hl++] = (unsigned char)n;
    }
    der_raw(d, h, hl);
    der_raw(d, v, n);
}

/* Wrap inner as one TLV appended to d. */
static void der_wrap(der *d, int tag, const der *inner) { der_tlv(d, tag, inner->b, inner->n); }

static void der_uint(der *d, const unsigned char *v, size_t n)
{
    unsigned char tmp[600];
    while (n > 1 && v[0] == 0) {
        v++;
        n--;
    }
    size_t k = 0;
    if (v[0] & 0x80)
        tmp[k++] = 0;
    memcpy(tmp + k, v, n);
    der_tlv(d, 0x02, tmp, n + k);
}

static void der_name(der *d, const char *cn)
{
    static const unsigned char oid_cn[] = { 0x55, 0x04, 0x03 };
    der atv = { .n = 0 }, set = { .n = 0 }, seq = { .n = 0 };
    der_tlv(&atv, 0x06, oid_cn, sizeof oid_cn);
    der_tlv(&atv, 0x0c, cn, strlen(cn));
    der_wrap(&set, 0x30, &atv);
    der_wrap(&seq, 0x31, &set);
    der_wrap(d, 0x30, &seq);
}

static void der_sigalg(der *d, int type)
{
    static const unsigned char rsa_sha256[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b };
    static const unsigned char ecdsa_sha256[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
    der a = { .n = 0 };
    if (type == BR_KEYTYPE_RSA) {
        der_tlv(&a, 0x06, rsa_sha256, sizeof rsa_sha256);
        der_tlv(&a, 0x05, "", 0);
    } else {
        der_tlv(&a, 0x06, ecdsa_sha256, sizeof ecdsa_sha256);
    }
    der_wrap(d, 0x30, &a);
}

static void der_spki(der *d, const tkey *k)
{
    static const unsigned char oid_rsa[] = { 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01 };
    static const unsigned char oid_ec[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
    static const unsigned char oid_p256[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
    static const unsigned char oid_p384[] = { 0x2b, 0x81, 0x04, 0x00, 0x22 };
    der alg = { .n = 0 }, bits = { .n = 0 }, spki = { .n = 0 };
    bits.b[bits.n++] = 0; /* unused bits */
    if (k->type == BR_KEYTYPE_RSA) {
        der rk = { .n = 0 };
        der_tlv(&alg, 0x06, oid_rsa, sizeof oid_rsa);
        der_tlv(&alg, 0x05, "", 0);
        der_uint(&rk, k->rpk.n, k->rpk.nlen);
        der_uint(&rk, k->rpk.e, k->rpk.elen);
        der_wrap(&bits, 0x30, &rk);
    } else {
        der_tlv(&alg, 0x06, oid_ec, sizeof oid_ec);
        if (k->epk.curve == BR_EC_secp384r1)
            der_tlv(&alg, 0x06, oid_p384, sizeof oid_p384);
        else
            der_tlv(&alg, 0x06, oid_p256, sizeof oid_p256);
        der_raw(&bits, k->epk.q, k->epk.qlen);
    }
    der_wrap(&spki, 0x30, &alg);
    der_wrap(&spki, 0x03, &bits);
    der_wrap(d, 0x30, &spki);
}

/* A certificate for `subject`'s key, signed by `issuer` (may be the same). */
static void cert_make(der *out, const tkey *subject, const char *cn, const tkey *issuer,
                      const char *issuer_cn, int serial)
{
    static const unsigned char v3[] = { 0xa0, 0x03, 0x02, 0x01, 0x02 };
    der tbs = { .n = 0 }, tbs_seq = { .n = 0 }, validity = { .n = 0 }, cert = { .n = 0 };
    der sig = { .n = 0 };
    unsigned char ser = (unsigned char)serial, hash[32], s[600];
    size_t sl;
    br_sha256_context h;

    der_raw(&tbs, v3, sizeof v3);
    der_uint(&tbs, &ser, 1);
    der_sigalg(&tbs, issuer->type);
    der_name(&tbs, issuer_cn);
    der_tlv(&validity, 0x17, "250101000000Z", 13);
    der_tlv(&validity, 0x18, "20491231235959Z", 15);
    der_wrap(&tbs, 0x30, &validity);
    der_name(&tbs, cn);
    der_spki(&tbs, subject);
    der_wrap(&tbs_seq, 0x30, &tbs);

    br_sha256_init(&h);
    br_sha256_update(&h, tbs_seq.b, tbs_seq.n);
    br_sha256_out(&h, hash);
    if (issuer->type == BR_KEYTYPE_RSA) {
        sl = (issuer->rsk.n_bitlen + 7) / 8;
        br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, hash, 32, &issuer->rsk, s);
    } else {
        sl = br_ecdsa_sign_asn1_get_default()(br_ec_get_default(), &br_sha256_vtable, hash,
                                              &issuer->esk, s);
    }
    sig.b[sig.n++] = 0;
    der_raw(&sig, s, sl);

    der_raw(&cert, tbs_seq.b, tbs_seq.n);
    der_sigalg(&cert, issuer->type);
    der_wrap(&cert, 0x03, &sig);
    out->n = 0;
    der_wrap(out, 0x30, &cert);
}

/* ---- PEM text ------------------------------------------------------------------------- */

typedef struct text {
    char s[40000];
    size_t n;
} text;

static void text_add(text *t, const char *s)
{
    size_t l = strlen(s);
    if (t->n + l < sizeof t->s) {
        memcpy(t->s + t->n, s, l);
        t->n += l;
        t->s[t->n] = '\0';
    }
}

static void pem_add(text *t, const char *banner, const void *d, size_t n)
{
    char tmp[12000];
    size_t l = br_pem_encode(NULL, d, n, banner, BR_PEM_LINE64);
    if (l < sizeof tmp) {
        br_pem_encode(tmp, d, n, banner, BR_PEM_LINE64);
        text_add(t, tmp);
    }
}

enum { FORM_RAW, FORM_PKCS8 };

static void key_pem(text *t, const tkey *k, int form)
{
    unsigned char d[4096], dd[600];
    size_t n;
    if (k->type == BR_KEYTYPE_RSA) {
        size_t dl = br_rsa_compute_privexp_get_default()(dd, &k->rsk, 65537);
        if (form == FORM_RAW) {
            n = br_encode_rsa_raw_der(d, &k->rsk, &k->rpk, dd, dl);
            pem_add(t, "RSA PRIVATE KEY", d, n);
        } else {
            n = br_encode_rsa_pkcs8_der(d, &k->rsk, &k->rpk, dd, dl);
            pem_add(t, "PRIVATE KEY", d, n);
        }
    } else {
        if (form == FORM_RAW) {
            n = br_encode_ec_raw_der(d, &k->esk, &k->epk);
            pem_add(t, "EC PRIVATE KEY", d, n);
        } else {
            n = br_encode_ec_pkcs8_der(d, &k->esk, &k->epk);
            pem_add(t, "PRIVATE KEY", d, n);
        }
    }
}

static void cert_pem(text *t, const der *c) { pem_add(t, "CERTIFICATE", c->b, c->n); }

/* ---- Loading ------------------------------------------------------------------------ */

static char g_err[TLS_ERR_MAX];

static int load(tls_ctx *t, const text *cert, const text *key, size_t cache)
{
    g_err[0] = '\0';
    return tls_ctx_init_mem(t, cert->s, cert->n, "cert.pem", key->s, key->n, "key.pem", cache, g_err,
                            sizeof g_err);
}

/* Expect a refusal whose message contains `want` (and is one line). */
static void refuse(const text *cert, const text *key, const char *want, const char *name)
{
    tls_ctx t;
    int rc = load(&t, cert, key, 0);
    T_CHECK(rc < 0 && strstr(g_err, want) && !strchr(g_err, '\n'), "refused: %s: %s", name, g_err);
    tls_ctx_free(&t);
}

/* ---- In-process handshake ------------------------------------------------------------- */

typedef struct pair {
    tls_conn s;
    buf s_in, s_out;                /* server plaintext */
    br_ssl_client_context cc;
    br_x509_minimal_context xm;
    br_x509_knownkey_context xk;
    unsigned char cbuf[BR_SSL_BUFSIZE_BIDI];
    size_t s_sent;                  /* record bytes the server sent */
    size_t chunk;                   /* max bytes moved per step (1: byte at a time) */
} pair;

static const char *g_alpn[] = { "h2", "http/1.1" };

static void client_setup(pair *p, const tkey *k)
{
    br_ssl_client_init_full(&p->cc, &p->xm, NULL, 0);
    if (k->type == BR_KEYTYPE_RSA)
        br_x509_knownkey_init_rsa(&p->xk, &k->rpk, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
    else
        br_x509_knownkey_init_ec(&p->xk, &k->epk, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
    br_ssl_engine_set_x509(&p->cc.eng, &p->xk.vtable);
    br_ssl_engine_set_buffer(&p->cc.eng, p->cbuf, sizeof p->cbuf, 1);
    br_ssl_engine_set_protocol_names(&p->cc.eng, g_alpn, 2);
}

static int pair_open(pair *p, tls_ctx *ctx, size_t in_cap)
{
    memset(p, 0, sizeof *p);
    p->chunk = SIZE_MAX;
    return tls_conn_init(&p->s, ctx) == 0 && buf_init(&p->s_in, in_cap) == 0 &&
           buf_init(&p->s_out, 1 << 18) == 0;
}

static void pair_close(pair *p)
{
    tls_conn_free(&p->s);
    buf_free(&p->s_in);
    buf_free(&p->s_out);
}

/* Move records both ways until nothing moves. Returns bytes moved. */
static size_t shuttle(pair *p)
{
    size_t total = 0;
    for (int guard = 0; guard < 1000000; guard++) {
        size_t moved = 0, n, room;
        const unsigned char *d;
        unsigned char *r;
        tls_conn_pump(&p->s, &p->s_in, &p->s_out);
        /* server -> client */
        d = tls_conn_rec_data(&p->s, &n);
        r = br_ssl_engine_recvrec_buf(&p->cc.eng, &room);
        if (d && r) {
            size_t k = n < room ? n : room;
            if (k > p->chunk)
                k = p->chunk;
            memcpy(r, d, k);
            tls_conn_rec_consume(&p->s, k);
            br_ssl_engine_recvrec_ack(&p->cc.eng, k);
            p->s_sent += k;
            moved += k;
        }
        /* client -> server */
        d = br_ssl_engine_sendrec_buf(&p->cc.eng, &n);
        r = tls_conn_rec_room(&p->s, &room);
        if (d && r) {
            size_t k = n < room ? n : room;
            if (k > p->chunk)
                k = p->chunk;
            memcpy(r, d, k);
            br_ssl_engine_sendrec_ack(&p->cc.eng, k);
            tls_conn_rec_commit(&p->s, k);
            moved += k;
        }
        if (!moved)
            break;
        total += moved;
    }
    tls_conn_pump(&p->s, &p->s_in, &p->s_out);
    return total;
}

/* Client writes n bytes of app data (flushed). Returns bytes accepted. */
static size_t client_write(pair *p, const void *data, size_t n)
{
    size_t done = 0;
    while (done < n) {
        size_t room;
        unsigned char *a = br_ssl_engine_sendapp_buf(&p->cc.eng, &room);
        if (!a) {
            if (!shuttle(p))
                break;
            continue;
        }
        size_t k = n - done < room ? n - done : room;
        memcpy(a, (const char *)data + done, k);
        br_ssl_engine_sendapp_ack(&p->cc.eng, k);
        done += k;
    }
    br_ssl_engine_flush(&p->cc.eng, 0);
    return done;
}

/* Client reads what app data is available into out (cap). */
static size_t client_read(pair *p, char *out, size_t cap)
{
    size_t got = 0, n;
    unsigned char *a;
    while (got < cap && (a = br_ssl_engine_recvapp_buf(&p->cc.eng, &n)) != NULL) {
        size_t k = cap - got < n ? cap - got : n;
        memcpy(out + got, a, k);
        br_ssl_engine_recvapp_ack(&p->cc.eng, k);
        got += k;
    }
    return got;
}

static int client_ready(const pair *p)
{
    return (br_ssl_engine_current_state(&p->cc.eng) & (BR_SSL_SENDAPP | BR_SSL_RECVAPP)) != 0;
}

/* Push raw bytes into the server as a socket would (as much as it takes). */
static size_t feed(tls_conn *s, const void *data, size_t n)
{
    size_t fed = 0, room;
    unsigned char *r;
    while (fed < n && (r = tls_conn_rec_room(s, &room)) != NULL) {
        size_t k = n - fed < room ? n - fed : room;
        memcpy(r, (const char *)data + fed, k);
        tls_conn_rec_commit(s, k);
        fed += k;
    }
    return fed;
}

/* Full handshake between a fresh client and the server; 1 if both are ready. */
static int handshake(pair *p, const tkey *k, int resume)
{
    if (!resume)
        client_setup(p, k);
    if (tls_conn_start(&p->s) < 0 || !br_ssl_client_reset(&p->cc, "localhost", resume))
        return 0;
    p->s_sent = 0;
    shuttle(p);
    return client_ready(p) && tls_conn_status(&p->s) == TLS_READY;
}

/* ---- Test groups ---------------------------------------------------------------------- */

static tkey g_rsa, g_rsa2, g_ec, g_ec2, g_ec384, g_ca;
static der g_rsa_cert, g_ec_cert, g_ec384_cert, g_ca_cert, g_leaf_by_ca;

static void test_forms(void)
{
    struct {
        const tkey *k;
        const der *cert;
        int form;
        const char *name, *desc;
    } cases[] = {
        { &g_rsa, &g_rsa_cert, FORM_RAW, "RSA PKCS#1", "RSA 2048-bit key" },
        { &g_rsa, &g_rsa_cert, FORM_PKCS8, "RSA PKCS#8", "RSA 2048-bit key" },
        { &g_ec, &g_ec_cert, FORM_RAW, "EC P-256 SEC1", "EC P-256 key" },
        { &g_ec, &g_ec_cert, FORM_PKCS8, "EC P-256 PKCS#8", "EC P-256 key" },
        { &g_ec384, &g_ec384_cert, FORM_RAW, "EC P-384 SEC1", "EC P-384 key" },
        { &g_ec384, &g_ec384_cert, FORM_PKCS8, "EC P-384 PKCS#8", "EC P-384 key" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        static text c, k;
        tls_ctx t;
        c.n = k.n = 0;
        cert_pem(&c, cases[i].cert);
        key_pem(&k, cases[i].k, cases[i].form);
        int rc = load(&t, &c, &k, 16);
        T_CHECK(rc == 0 && strstr(tls_ctx_describe(&t), cases[i].desc) &&
                    strstr(tls_ctx_describe(&t), "1 certificate,"),
                "loads %s: %s", cases[i].name, rc == 0 ? tls_ctx_describe(&t) : g_err);
        tls_ctx_free(&t);
    }

    /* "EC PARAMETERS" before the key (openssl ecparam -genkey), CRLF line
     * ends, no final newline, text around the objects. */
    {
        static text c, k, k2;
        tls_ctx t;
        static const unsigned char params[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
        c.n = k.n = k2.n = 0;
        text_add(&c, "subject=CN = leaf\nissuer=CN = leaf\n");
        cert_pem(&c, &g_ec_cert);
        pem_add(&k, "EC PARAMETERS", params, sizeof params);
        key_pem(&k, &g_ec, FORM_RAW);
        int rc = load(&t, &c, &k, 0);
        T_CHECK(rc == 0, "EC PARAMETERS block before the key, text before the certificate: %s",
                rc ? g_err : "ok");
        tls_ctx_free(&t);
        for (size_t i = 0; i < k.n; i++) { /* CRLF */
            if (k.s[i] == '\n')
                text_add(&k2, "\r\n");
            else {
                char ch[2] = { k.s[i], 0 };
                text_add(&k2, ch);
            }
        }
        while (k2.n && (k2.s[k2.n - 1] == '\n' || k2.s[k2.n - 1] == '\r'))
            k2.s[--k2.n] = '\0';
        rc = load(&t, &c, &k2, 0);
        T_CHECK(rc == 0, "CRLF line ends and no final newline: %s", rc ? g_err : "ok");
        tls_ctx_free(&t);
    }

    /* A chain: leaf signed by a CA, then the CA certificate. */
    {
        static text c, k;
        tls_ctx t;
        c.n = k.n = 0;
        cert_pem(&c, &g_leaf_by_ca);
        cert_pem(&c, &g_ca_cert);
        key_pem(&k, &g_ec, FORM_PKCS8);
        int rc = load(&t, &c, &k, 0);
        T_CHECK(rc == 0 && strstr(tls_ctx_describe(&t), "2 certificates"), "leaf + CA chain: %s",
                rc == 0 ? tls_ctx_describe(&t) : g_err);
        T_CHECK(rc == 0 && t.chain_len == 2 && t.chain[0].data_len == g_leaf_by_ca.n &&
                    !memcmp(t.chain[0].data, g_leaf_by_ca.b, g_leaf_by_ca.n),
                "chain kept in order, leaf first, DER intact");
        tls_ctx_free(&t);
    }
}

static void test_refusals(void)
{
    static text c_rsa, c_ec, c_ec384, k_rsa, k_rsa2, k_ec, k_ec2, k_ec384, empty, junk, t1, t2;
    c_rsa.n = c_ec.n = c_ec384.n = k_rsa.n = k_rsa2.n = k_ec.n = k_ec2.n = k_ec384.n = 0;
    cert_pem(&c_rsa, &g_rsa_cert);
    cert_pem(&c_ec, &g_ec_cert);
    cert_pem(&c_ec384, &g_ec384_cert);
    key_pem(&k_rsa, &g_rsa, FORM_RAW);
    key_pem(&k_rsa2, &g_rsa2, FORM_PKCS8);
    key_pem(&k_ec, &g_ec, FORM_RAW);
    key_pem(&k_ec2, &g_ec2, FORM_PKCS8);
    key_pem(&k_ec384, &g_ec384, FORM_RAW);

    refuse(&c_rsa, &k_rsa2, "does not match the certificate", "RSA key of another certificate");
    refuse(&c_ec, &k_ec2, "does not match the certificate", "EC key of another certificate");
    refuse(&c_ec, &k_ec384, "key on P-384, certificate on P-256", "EC key on another curve");
    refuse(&c_ec, &k_rsa, "an RSA key, but the certificate holds an EC key", "RSA key, EC certificate");
    refuse(&c_rsa, &k_ec, "an EC key, but the certificate holds an RSA key", "EC key, RSA certificate");

    /* Same modulus, another public exponent: only the test signature sees it. */
    {
        static tkey odd;
        static der odd_cert;
        static text c_odd;
        static unsigned char e3 = 3;
        odd = g_rsa;
        odd.rpk.n = g_rsa.rpub; /* the copy's pointers must stay on the copy's own buffers */
        odd.rpk.e = &e3;
        odd.rpk.elen = 1;
        cert_make(&odd_cert, &odd, "localhost", &g_rsa, "localhost", 9);
        c_odd.n = 0;
        cert_pem(&c_odd, &odd_cert);
        refuse(&c_odd, &k_rsa, "test signature does not verify", "RSA certificate with another exponent");
    }

    empty.n = 0;
    empty.s[0] = '\0';
    refuse(&empty, &k_ec, "certificate cert.pem: empty file", "empty certificate file");
    refuse(&c_ec, &empty, "key key.pem: empty file", "empty key file");
    junk.n = 0;
    for (int i = 0; i < 3000; i++)
        junk.s[junk.n++] = (char)(br_sha256_ID * 7919 * i >> 3);
    refuse(&junk, &k_ec, "certificate cert.pem", "random bytes as certificate");
    refuse(&c_ec, &junk, "key key.pem", "random bytes as key");
    t1.n = 0;
    text_add(&t1, "hello, this is not a certificate\n");
    refuse(&t1, &k_ec, "no PEM certificate", "text as certificate");
    refuse(&c_ec, &t1, "no PEM private key", "text as key");
    refuse(&k_ec, &k_ec, "no CERTIFICATE object (found 'EC PRIVATE KEY'", "key file given as certificate");
    refuse(&c_ec, &c_ec, "no private key (found 'CERTIFICATE'", "certificate given as key");

    /* DER instead of PEM */
    t1.n = 0;
    memcpy(t1.s, g_ec_cert.b, g_ec_cert.n);
    t1.n = g_ec_cert.n;
    refuse(&t1, &k_ec, "looks like DER", "DER certificate");

    /* encrypted keys */
    t1.n = 0;
    pem_add(&t1, "ENCRYPTED PRIVATE KEY", "\x30\x03\x02\x01\x00", 5);
    refuse(&c_ec, &t1, "encrypted keys are not supported", "PKCS#8 encrypted key");
    t1.n = 0;
    text_add(&t1, "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                  "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n"
                  "-----END RSA PRIVATE KEY-----\n");
    refuse(&c_rsa, &t1, "encrypted keys are not supported", "legacy encrypted PEM key");

    /* malformed PEM: bad base64, missing END line */
    t1.n = 0;
    text_add(&t1, "-----BEGIN CERTIFICATE-----\nMIIB*&^%not base64\n-----END CERTIFICATE-----\n");
    refuse(&t1, &k_ec, "malformed PEM", "bad base64");
    t1.n = 0;
    memcpy(t1.s, c_ec.s, c_ec.n / 2);
    t1.n = c_ec.n / 2;
    t1.s[t1.n] = '\0';
    refuse(&t1, &k_ec, "has no END line", "truncated certificate PEM");

    /* a PEM "CERTIFICATE" whose content is not X.509; a key that is not a key */
    t1.n = 0;
    pem_add(&t1, "CERTIFICATE", "\x30\x03\x02\x01\x05", 5);
    refuse(&t1, &k_ec, "not a valid X.509 certificate", "garbage inside CERTIFICATE");
    t1.n = 0;
    pem_add(&t1, "EC PRIVATE KEY", "\x04\x03" "abc", 5);
    refuse(&c_ec, &t1, "not a valid RSA or EC private key", "garbage inside EC PRIVATE KEY");

    /* two keys; too many certificates */
    t2.n = 0;
    key_pem(&t2, &g_ec, FORM_RAW);
    key_pem(&t2, &g_ec, FORM_PKCS8);
    refuse(&c_ec, &t2, "more than one private key", "two keys");
    t2.n = 0;
    for (int i = 0; i < TLS_CHAIN_MAX + 1; i++)
        cert_pem(&t2, &g_ec_cert);
    refuse(&t2, &k_ec, "more than 8 certificates", "9 certificates");

    /* files */
    {
        tls_ctx t;
        char dir[] = "/tmp/mote_tls_XXXXXX", cp[64], kp[64];
        int rc = tls_ctx_init(&t, "/nonexistent/cert.pem", "/nonexistent/key.pem", 0, g_err, sizeof g_err);
        T_CHECK(rc < 0 && strstr(g_err, "certificate /nonexistent/cert.pem: cannot open"),
                "missing certificate file: %s", g_err);
        tls_ctx_free(&t);
        if (mkdtemp(dir)) {
            snprintf(cp, sizeof cp, "%s/c.pem", dir);
            snprintf(kp, sizeof kp, "%s/k.pem", dir);
            FILE *f = fopen(cp, "w");
            if (f) {
                fwrite(c_ec.s, 1, c_ec.n, f);
                fclose(f);
            }
            rc = tls_ctx_init(&t, cp, dir, 0, g_err, sizeof g_err);
            T_CHECK(rc < 0 && strstr(g_err, "not a regular file"), "directory as key: %s", g_err);
            tls_ctx_free(&t);
            rc = tls_ctx_init(&t, cp, kp, 0, g_err, sizeof g_err);
            T_CHECK(rc < 0 && strstr(g_err, "key /tmp/") && strstr(g_err, "cannot open"),
                    "missing key file: %s", g_err);
            tls_ctx_free(&t);
            f = fopen(kp, "w");
            if (f) {
                fwrite(k_ec.s, 1, k_ec.n, f);
                fclose(f);
            }
            rc = tls_ctx_init(&t, cp, kp, 8, g_err, sizeof g_err);
            T_CHECK(rc == 0, "loads from files: %s", rc ? g_err : tls_ctx_describe(&t));
            tls_ctx_free(&t);
            unlink(cp);
            unlink(kp);
            rmdir(dir);
        }
    }
}

static void test_handshakes(void)
{
    static text c_rsa, c_ec, k_rsa, k_ec;
    static pair p;
    tls_ctx t_rsa, t_ec;
    char desc[128], got[256];
    c_rsa.n = c_ec.n = k_rsa.n = k_ec.n = 0;
    cert_pem(&c_rsa, &g_rsa_cert);
    cert_pem(&c_ec, &g_ec_cert);
    key_pem(&k_rsa, &g_rsa, FORM_PKCS8);
    key_pem(&k_ec, &g_ec, FORM_RAW);
    if (!T_CHECK(load(&t_rsa, &c_rsa, &k_rsa, 64) == 0 && load(&t_ec, &c_ec, &k_ec, 64) == 0,
                 "server contexts load"))
        return;

    struct {
        tls_ctx *t;
        const tkey *k;
        const char *name, *suite;
    } kinds[] = {
        { &t_ec, &g_ec, "EC", "ECDHE-ECDSA-" },
        { &t_rsa, &g_rsa, "RSA", "ECDHE-RSA-" },
    };
    for (size_t i = 0; i < 2; i++) {
        if (!pair_open(&p, kinds[i].t, 4096))
            continue;
        int ok = handshake(&p, kinds[i].k, 0);
        tls_conn_describe(&p.s, desc, sizeof desc);
        const char *alpn = br_ssl_engine_get_selected_protocol(&p.cc.eng);
        T_CHECK(ok && strstr(desc, "TLS1.2 ") && strstr(desc, kinds[i].suite) &&
                    (strstr(desc, "GCM") || strstr(desc, "CHACHA20")),
                "%s handshake with BearSSL's client: %s", kinds[i].name, desc);
        T_CHECK(ok && alpn && !strcmp(alpn, "http/1.1") && strstr(desc, "alpn=http/1.1"),
                "%s: ALPN http/1.1 chosen from h2,http/1.1", kinds[i].name);

        /* request -> plaintext in the server's buf; response back */
        static const char req[] = "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n";
        client_write(&p, req, sizeof req - 1);
        shuttle(&p);
        T_CHECK(buf_len(&p.s_in) == sizeof req - 1 && !memcmp(buf_data(&p.s_in), req, sizeof req - 1),
                "%s: the request arrives as plaintext in rbuf", kinds[i].name);
        buf_reset(&p.s_in);
        buf_append(&p.s_out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
        shuttle(&p);
        size_t n = client_read(&p, got, sizeof got);
        T_CHECK(buf_len(&p.s_out) == 0 && n == 40 && !memcmp(got + 38, "ok", 2),
                "%s: the response reaches the client (%zu bytes)", kinds[i].name, n);

        /* client closes: the server sees a clean close */
        br_ssl_engine_close(&p.cc.eng);
        shuttle(&p);
        T_CHECK(tls_conn_status(&p.s) == TLS_CLOSED, "%s: close_notify -> TLS_CLOSED", kinds[i].name);
        pair_close(&p);
    }

    /* Large transfers both ways through small plaintext buffers. */
    if (pair_open(&p, &t_ec, 1000) && handshake(&p, &g_ec, 0)) {
        enum { UP = 40000, DOWN = 300000 };
        static unsigned char up[UP], seen[UP];
        size_t sent = 0, recv_n = 0, ok = 1;
        for (size_t i = 0; i < UP; i++)
            up[i] = (unsigned char)(i * 31 + 7);
        while (sent < UP || recv_n < UP) {
            if (sent < UP) {
                size_t room;
                unsigned char *a = br_ssl_engine_sendapp_buf(&p.cc.eng, &room);
                if (a) {
                    size_t k = UP - sent < room ? UP - sent : room;
                    if (k > 3000)
                        k = 3000;
                    memcpy(a, up + sent, k);
                    br_ssl_engine_sendapp_ack(&p.cc.eng, k);
                    br_ssl_engine_flush(&p.cc.eng, 0);
                    sent += k;
                }
            }
            size_t moved = shuttle(&p);
            size_t have = buf_len(&p.s_in);
            if (have) { /* the server reads 1000 bytes at a time: back-pressure */
                memcpy(seen + recv_n, buf_data(&p.s_in), have);
                recv_n += have;
                buf_consume(&p.s_in, have);
            } else if (!moved && sent >= UP) {
                break;
            }
        }
        T_CHECK(recv_n == UP && !memcmp(up, seen, UP), "40 KB upload through a 1000-byte rbuf (%zu bytes)",
                recv_n);

        size_t pushed = 0, got_n = 0;
        static char sink[65536];
        while (got_n < DOWN) {
            while (pushed < DOWN && buf_space(&p.s_out) > 4096) {
                char blk[4096];
                for (size_t i = 0; i < sizeof blk; i++)
                    blk[i] = (char)((pushed + i) % 251);
                buf_append(&p.s_out, blk, sizeof blk);
                pushed += sizeof blk;
            }
            size_t moved = shuttle(&p);
            size_t n = client_read(&p, sink, sizeof sink);
            for (size_t i = 0; i < n; i++)
                if (sink[i] != (char)((got_n + i) % 251))
                    ok = 0;
            got_n += n;
            if (!moved && !n)
                break;
        }
        T_CHECK(ok && got_n >= DOWN, "300 KB download, in order (%zu bytes)", got_n);
    } else {
        T_CHECK(0, "large transfers: handshake");
    }
    pair_close(&p);

    /* Byte-at-a-time transport. */
    if (pair_open(&p, &t_rsa, 4096)) {
        p.chunk = 1;
        T_CHECK(handshake(&p, &g_rsa, 0), "handshake with records moved one byte at a time");
        pair_close(&p);
    }

    /* Session resumption: the second handshake skips the certificate. */
    if (pair_open(&p, &t_ec, 4096)) {
        br_ssl_session_parameters sp1, sp2;
        int ok1 = handshake(&p, &g_ec, 0);
        size_t full = p.s_sent;
        br_ssl_engine_get_session_parameters(&p.cc.eng, &sp1);
        int ok2 = handshake(&p, &g_ec, 1);
        size_t abbreviated = p.s_sent;
        br_ssl_engine_get_session_parameters(&p.cc.eng, &sp2);
        T_CHECK(ok1 && ok2 && sp1.session_id_len == 32 && sp2.session_id_len == 32 &&
                    !memcmp(sp1.session_id, sp2.session_id, 32) && abbreviated < full / 2,
                "session resumed from the cache (server sent %zu bytes, full handshake %zu)",
                abbreviated, full);
        pair_close(&p);
    }
    {
        tls_ctx t0;
        if (load(&t0, &c_ec, &k_ec, 0) == 0 && pair_open(&p, &t0, 4096)) {
            br_ssl_session_parameters sp1, sp2;
            int ok1 = handshake(&p, &g_ec, 0);
            br_ssl_engine_get_session_parameters(&p.cc.eng, &sp1);
            int ok2 = handshake(&p, &g_ec, 1);
            br_ssl_engine_get_session_parameters(&p.cc.eng, &sp2);
            T_CHECK(ok1 && ok2 && memcmp(sp1.session_id, sp2.session_id, 32),
                    "no cache (0 entries): a full handshake again");
            pair_close(&p);
        }
        tls_ctx_free(&t0);
    }

    /* Rejected clients. */
    if (pair_open(&p, &t_ec, 4096)) {
        static const uint16_t cbc[] = { BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
                                        BR_TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA };
        client_setup(&p, &g_ec);
        br_ssl_engine_set_suites(&p.cc.eng, cbc, 2);
        tls_conn_start(&p.s);
        br_ssl_client_reset(&p.cc, "localhost", 0);
        shuttle(&p);
        T_CHECK(tls_conn_status(&p.s) == TLS_FAILED && !client_ready(&p) &&
                    strstr(tls_conn_error(&p.s), "cipher suite"),
                "client offering only CBC suites is refused: %s", tls_conn_error(&p.s));

        client_setup(&p, &g_ec);
        br_ssl_engine_set_versions(&p.cc.eng, BR_TLS10, BR_TLS11);
        tls_conn_start(&p.s);
        p.s_sent = 0;
        br_ssl_client_reset(&p.cc, "localhost", 0);
        shuttle(&p);
        /* BearSSL's server answers with a TLS 1.2 alert record, which this
         * client drops as "unsupported version" before reading it; the
         * server then waits for the client to go (EOF ends it in the loop). */
        T_CHECK(tls_conn_status(&p.s) != TLS_READY && !client_ready(&p) &&
                    br_ssl_engine_last_error(&p.cc.eng) == BR_ERR_UNSUPPORTED_VERSION,
                "client offering only TLS 1.0/1.1 is refused (server %s, sent %zu bytes)",
                tls_conn_status(&p.s) == TLS_FAILED ? tls_conn_error(&p.s) : "waiting", p.s_sent);

        /* plain HTTP, random bytes, truncated ClientHello (raw bytes in) */
        static const char get[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        size_t room;
        tls_conn_start(&p.s);
        feed(&p.s, get, sizeof get - 1);
        tls_conn_pump(&p.s, &p.s_in, NULL);
        T_CHECK(tls_conn_status(&p.s) == TLS_FAILED && tls_conn_plain_http(&p.s) &&
                    strstr(tls_conn_error(&p.s), "plain HTTP") && buf_len(&p.s_in) == 0,
                "plain HTTP is refused and recognised: %s", tls_conn_error(&p.s));

        tls_conn_start(&p.s);
        unsigned char junk[512];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (unsigned char)(i * 97 + 13);
        feed(&p.s, junk, sizeof junk);
        T_CHECK(tls_conn_status(&p.s) == TLS_FAILED && !tls_conn_plain_http(&p.s),
                "random bytes are refused: %s", tls_conn_error(&p.s));

        /* A truncated ClientHello waits for more (the loop's timeout ends it). */
        client_setup(&p, &g_ec);
        tls_conn_start(&p.s);
        br_ssl_client_reset(&p.cc, "localhost", 0);
        size_t hl;
        const unsigned char *hello = br_ssl_engine_sendrec_buf(&p.cc.eng, &hl);
        if (hello && hl > 40)
            feed(&p.s, hello, 40);
        size_t out_n;
        tls_conn_pump(&p.s, &p.s_in, &p.s_out);
        T_CHECK(tls_conn_status(&p.s) == TLS_HANDSHAKE && !tls_conn_rec_data(&p.s, &out_n) &&
                    tls_conn_rec_room(&p.s, &room) != NULL,
                "truncated ClientHello: still in handshake, nothing sent, wants more");

        /* After any failure, the slot starts a new connection cleanly. */
        T_CHECK(handshake(&p, &g_ec, 0), "the slot serves a new client after the failures");
        pair_close(&p);
    }
    tls_ctx_free(&t_rsa);
    tls_ctx_free(&t_ec);
}

int main(void)
{
    T_CHECK(tls_available(), "build with TLS");
    br_hmac_drbg_init(&g_rng, &br_sha256_vtable, "mote test_tls seed", 18);
    int keys = key_rsa(&g_rsa, 2048) && key_rsa(&g_rsa2, 2048) && key_ec(&g_ec, BR_EC_secp256r1) &&
               key_ec(&g_ec2, BR_EC_secp256r1) && key_ec(&g_ec384, BR_EC_secp384r1) &&
               key_ec(&g_ca, BR_EC_secp256r1);
    if (!T_CHECK(keys, "test keys generated"))
        return t_done();
    cert_make(&g_rsa_cert, &g_rsa, "localhost", &g_rsa, "localhost", 1);
    cert_make(&g_ec_cert, &g_ec, "localhost", &g_ec, "localhost", 2);
    cert_make(&g_ec384_cert, &g_ec384, "localhost", &g_ec384, "localhost", 3);
    cert_make(&g_ca_cert, &g_ca, "mote test CA", &g_ca, "mote test CA", 4);
    cert_make(&g_leaf_by_ca, &g_ec, "localhost", &g_ca, "mote test CA", 5);
    T_NOTE("per-connection TLS memory: %zu bytes (struct %zu + records %d + %d)", (size_t)TLS_CONN_BYTES,
           sizeof(tls_conn), TLS_IBUF_BYTES, TLS_OBUF_BYTES);

    test_forms();
    test_refusals();
    test_handshakes();
    return t_done();
}
#endif
