/* router.c — path and method to route; API key check. */
#include "router.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* ---- Routes --------------------------------------------------------------------- */

static const char ALLOW_GET[] = "GET, HEAD, OPTIONS";
static const char ALLOW_POST[] = "POST, OPTIONS";
static const char ALLOW_GET_POST[] = "GET, POST, OPTIONS";

static int slice_is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && !memcmp(s, lit, n);
}

static int has_prefix(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && !memcmp(s, lit, l);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into m->arg; 0, or -1 (bad escape, NUL, empty, too long). */
static int set_arg(router_match *m, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t k = 0; k < n; k++) {
        int c = (unsigned char)s[k];
        if (c == '%') {
            if (k + 2 >= n) return -1;
            int h = hexval((unsigned char)s[k + 1]), l = hexval((unsigned char)s[k + 2]);
            if (h < 0 || l < 0) return -1;
            c = h * 16 + l;
            k += 2;
        }
        if (c == 0 || o + 1 >= sizeof m->arg) return -1;
        m->arg[o++] = (char)c;
    }
    if (o == 0) return -1;
    m->arg[o] = 0;
    m->arg_len = o;
    return 0;
}

static router_route route_with_method(router_match *m, const char *method, size_t mlen,
                                      router_route route, const char *allow)
{
    m->allow = allow;
    int get = slice_is(method, mlen, "GET"), head = slice_is(method, mlen, "HEAD");
    int post = slice_is(method, mlen, "POST");
    if (slice_is(method, mlen, "OPTIONS")) {
        m->route = ROUTE_OPTIONS;
        return m->route;
    }
    int ok = (allow == ALLOW_GET && (get || head)) || (allow == ALLOW_POST && post) ||
             (allow == ALLOW_GET_POST && (get || post));
    if (!ok) {
        m->status = 405;
        m->arg[0] = 0;
        m->arg_len = 0;
        return ROUTE_NONE;
    }
    m->is_head = head;
    m->route = route;
    return route;
}

router_route router_match_path(const char *method, size_t mlen, const char *path, size_t plen,
                               router_match *m)
{
    memset(m, 0, sizeof *m);
    m->route = ROUTE_NONE;
    /* "/v1/x" and "/x" are the same endpoint. */
    if (has_prefix(path, plen, "/v1/")) path += 3, plen -= 3;

    if (slice_is(path, plen, "/health"))
        return route_with_method(m, method, mlen, ROUTE_HEALTH, ALLOW_GET);
    if (slice_is(path, plen, "/models"))
        return route_with_method(m, method, mlen, ROUTE_MODELS, ALLOW_GET);
    if (has_prefix(path, plen, "/models/")) {
        if (set_arg(m, path + 8, plen - 8) == 0) return route_with_method(m, method, mlen, ROUTE_MODEL, ALLOW_GET);
    } else if (slice_is(path, plen, "/chat/completions")) {
        return route_with_method(m, method, mlen, ROUTE_CHAT, ALLOW_POST);
    } else if (slice_is(path, plen, "/completions")) {
        return route_with_method(m, method, mlen, ROUTE_COMPLETIONS, ALLOW_POST);
    } else if (slice_is(path, plen, "/embeddings")) {
        return route_with_method(m, method, mlen, ROUTE_EMBEDDINGS, ALLOW_POST);
    } else if (slice_is(path, plen, "/engines") || slice_is(path, plen, "/engines/list")) {
        return route_with_method(m, method, mlen, ROUTE_ENGINES, ALLOW_GET);
    } else if (has_prefix(path, plen, "/engines/")) {
        /* /engines/{model}/completions, {model} one path segment */
        const char *s = path + 9;
        size_t n = plen - 9;
        const char *slash = memchr(s, '/', n);
        if (slash && slice_is(slash, n - (size_t)(slash - s), "/completions") &&
            set_arg(m, s, (size_t)(slash - s)) == 0)
            return route_with_method(m, method, mlen, ROUTE_ENGINE_COMPLETIONS, ALLOW_GET_POST);
    }
    m->status = 404;
    m->allow = NULL;
    m->arg[0] = 0;
    m->arg_len = 0;
    return ROUTE_NONE;
}

int router_needs_auth(router_route r)
{
    return r != ROUTE_HEALTH && r != ROUTE_OPTIONS && r != ROUTE_NONE;
}

/* ---- Authentication --------------------------------------------------------------- */

int router_secret_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    /* The loop length depends on the lengths only; no early exit on a byte. */
    size_t n = alen > blen ? alen : blen;
    unsigned d = alen != blen;
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        d |= (unsigned)(x ^ y);
    }
    return d == 0;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 (padding optional) into out; length or -1. */
static long b64_decode(const char *s, size_t n, char *out, size_t cap)
{
    while (n > 0 && s[n - 1] == '=') n--;
    if (n % 4 == 1) return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t k = 0; k < n; k++) {
        int v = b64val((unsigned char)s[k]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap) return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)o;
}

static int is_space(int c)
{
    return c == ' ' || c == '\t';
}

/* Does the credential match any configured key? Every key is compared. */
static int key_matches(const config *c, const char *k, size_t n)
{
    int any = 0;
    for (int i = 0; i < c->n_api_keys; i++)
        any |= router_secret_eq(k, n, c->api_keys[i], strlen(c->api_keys[i]));
    return any;
}

router_auth_result router_auth(const config *c, const char *value, size_t len)
{
    if (c->n_api_keys == 0) return ROUTER_AUTH_OK;
    if (!value) return ROUTER_AUTH_MISSING;
    size_t k = 0;
    while (k < len && is_space((unsigned char)value[k])) k++;
    size_t s0 = k;
    while (k < len && !is_space((unsigned char)value[k])) k++;
    const char *scheme = value + s0;
    size_t slen = k - s0;
    while (k < len && is_space((unsigned char)value[k])) k++;
    const char *cred = value + k;
    size_t clen = len - k;
    while (clen > 0 && is_space((unsigned char)cred[clen - 1])) clen--;

    if (slen == 6 && !strncasecmp(scheme, "bearer", 6)) {
        if (clen == 0) return ROUTER_AUTH_MISSING;
        return key_matches(c, cred, clen) ? ROUTER_AUTH_OK : ROUTER_AUTH_WRONG;
    }
    if (slen == 5 && !strncasecmp(scheme, "basic", 5)) {
        char dec[CONFIG_KEY_MAX + 2];
        long n = b64_decode(cred, clen, dec, sizeof dec);
        if (n <= 0) return ROUTER_AUTH_WRONG;
        /* user:password with an empty user: the key is the password */
        if (dec[0] != ':' || n < 2) return ROUTER_AUTH_WRONG;
        return key_matches(c, dec + 1, (size_t)n - 1) ? ROUTER_AUTH_OK : ROUTER_AUTH_WRONG;
    }
    return clen == 0 && slen == 0 ? ROUTER_AUTH_MISSING : ROUTER_AUTH_WRONG;
}
