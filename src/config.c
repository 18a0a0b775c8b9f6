/* config.c — command line and JSON description -> struct config.
 *
 * Sections: defaults; value parsers (one error wording for the CLI and the
 * JSON file); the JSON description; the key file; the command line;
 * config_finish (resolution and whole-config checks).
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"

/* ---- Defaults ----------------------------------------------------------------- */

void config_model_init(config_model *m)
{
    memset(m, 0, sizeof *m);
    m->processor_count = CONFIG_DEFAULT_PROCESSORS;
    m->context_length = CONFIG_DEFAULT_CONTEXT;
    m->kv_type = CONFIG_KV_F16;
    m->desc_index = -1;
    m->samplers.top_k = 40;
    m->samplers.top_p = 1.0f;
    m->samplers.min_p = 0.0f;
    m->samplers.temp = 1.0f;
    m->samplers.mirostat_tau = 5.0f;
    m->samplers.mirostat_eta = 0.1f;
    m->samplers.penalty_n = 64;
    m->samplers.penalty_repeat = 1.0f;
}

void config_init(config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "%s", CONFIG_DEFAULT_HOST);
    c->port = CONFIG_DEFAULT_PORT;
    c->max_connections = 64;
    c->tls_session_cache = CONFIG_DEFAULT_TLS_CACHE;
    c->max_header_bytes = 16 * 1024;
    c->max_headers = 64;
    c->max_body_bytes = 4L * 1024 * 1024;
    c->queue_length = 16;
    c->header_timeout_ms = 10 * 1000;
    c->idle_timeout_ms = 60 * 1000;
    c->sse_ping_ms = 15 * 1000;
    c->shutdown_timeout_ms = 10 * 1000;
    c->log_format = CONFIG_LOG_TEXT;
}

int config_cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    if (cap) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- Value parsers -------------------------------------------------------------- */

/* Human description of an integer range, for messages. */
static const char *int_desc(long lo, long hi, char *buf, size_t cap)
{
    if (lo == 0 && hi >= INT_MAX) return "a non-negative integer";
    if (lo == 1 && hi >= INT_MAX) return "a positive integer";
    if (hi >= INT_MAX) snprintf(buf, cap, "an integer >= %ld", lo);
    else snprintf(buf, cap, "an integer from %ld to %ld", lo, hi);
    return buf;
}

static const char *num_desc(double lo, double hi, char *buf, size_t cap)
{
    if (lo == 0 && isinf(hi)) return "a non-negative number";
    snprintf(buf, cap, "a number from %g to %g", lo, hi);
    return buf;
}

/* Strict decimal integer: optional '-', digits, nothing else. */
static int str_to_long(const char *s, long *out)
{
    char *end;
    if (!*s || (*s != '-' && (*s < '0' || *s > '9'))) return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int cli_int(const char *opt, const char *s, long lo, long hi, int *out, char *err, size_t cap)
{
    long v;
    char d[64];
    if (str_to_long(s, &v) < 0 || v < lo || v > hi)
        return fail(err, cap, "%s: expected %s, got '%.64s'", opt, int_desc(lo, hi, d, sizeof d), s);
    *out = (int)v;
    return 0;
}

static int cli_num(const char *opt, const char *s, double lo, double hi, float *out, char *err, size_t cap)
{
    char *end;
    char d[64];
    errno = 0;
    double v = *s ? strtod(s, &end) : NAN;
    if (!*s || errno || *end || isnan(v) || v < lo || v > hi)
        return fail(err, cap, "%s: expected %s, got '%.64s'", opt, num_desc(lo, hi, d, sizeof d), s);
    *out = (float)v;
    return 0;
}

/* A byte count with an optional binary suffix: 4096, 64k, 8M, 1G. */
static int cli_size(const char *opt, const char *s, long lo, long hi, long *out, char *err, size_t cap)
{
    char *end;
    errno = 0;
    long long v = (*s >= '0' && *s <= '9') ? strtoll(s, &end, 10) : -1;
    long long mul = 1;
    if (v >= 0 && !errno) {
        if (*end == 'k' || *end == 'K') mul = 1024, end++;
        else if (*end == 'm' || *end == 'M') mul = 1024 * 1024, end++;
        else if (*end == 'g' || *end == 'G') mul = 1024LL * 1024 * 1024, end++;
    }
    if (v < 0 || errno || *end || v > LLONG_MAX / mul || v * mul < lo || v * mul > hi)
        return fail(err, cap, "%s: expected a size from %ld to %ld bytes (suffix k, M or G allowed), got '%.64s'",
                    opt, lo, hi, s);
    *out = (long)(v * mul);
    return 0;
}

static int copy_str(const char *what, const char *s, char *dst, size_t dcap, char *err, size_t cap)
{
    size_t n = strlen(s);
    if (n >= dcap) return fail(err, cap, "%s: too long (at most %zu bytes)", what, dcap - 1);
    memcpy(dst, s, n + 1);
    return 0;
}

/* Listening address: an IPv4 or IPv6 literal, no DNS. */
static int set_host(config *c, const char *opt, const char *s, char *err, size_t cap)
{
    char buf[CONFIG_HOST_MAX];
    unsigned char addr[16];
    size_t n = strlen(s);
    if (!strcmp(s, "localhost")) s = "127.0.0.1", n = 9;
    if (n >= 2 && s[0] == '[' && s[n - 1] == ']') s++, n -= 2; /* "[::1]" */
    if (n >= sizeof buf)
        return fail(err, cap, "%s: '%.64s' is not an IPv4 or IPv6 address", opt, s);
    memcpy(buf, s, n);
    buf[n] = 0;
    if (inet_pton(AF_INET, buf, addr) != 1 && inet_pton(AF_INET6, buf, addr) != 1)
        return fail(err, cap, "%s: '%.64s' is not an IPv4 or IPv6 address (no DNS lookup is done)", opt, buf);
    memcpy(c->host, buf, n + 1);
    return 0;
}

static int add_key(config *c, const char *what, const char *k, size_t n, char *err, size_t cap)
{
    if (n == 0) return fail(err, cap, "%s: empty API key", what);
    if (c->n_api_keys >= CONFIG_API_KEYS_MAX)
        return fail(err, cap, "%s: too many API keys (at most %d)", what, CONFIG_API_KEYS_MAX);
    if (n >= CONFIG_KEY_MAX) return fail(err, cap, "%s: API key too long (at most %d bytes)", what, CONFIG_KEY_MAX - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] <= ' ' || k[i] == 0x7f)
            return fail(err, cap, "%s: API key contains a space or control character", what);
    memcpy(c->api_keys[c->n_api_keys], k, n);
    c->api_keys[c->n_api_keys][n] = 0;
    c->n_api_keys++;
    return 0;
}

/* ---- JSON description -------------------------------------------------------------- */

typedef struct jctx {
    const char *js;
    json_tok *t;
    char *err;
    size_t cap;
} jctx;

/* path of key k under prefix, e.g. "[1].samplers" + "top_k". */
static void key_path(char *out, size_t cap, const char *prefix, const jctx *j, int k)
{
    int n = j->t[k].end - j->t[k].start;
    snprintf(out, cap, "%s.%.*s", prefix, n > 48 ? 48 : n, j->js + j->t[k].start);
}

static const char *tok_text(const jctx *j, int i, char *buf, size_t cap)
{
    int n = j->t[i].end - j->t[i].start;
    if (j->t[i].type == JSON_OBJECT) return "an object";
    if (j->t[i].type == JSON_ARRAY) return "an array";
    if (j->t[i].type == JSON_STRING) snprintf(buf, cap, "\"%.*s\"", n > 32 ? 32 : n, j->js + j->t[i].start);
    else snprintf(buf, cap, "%.*s", n > 32 ? 32 : n, j->js + j->t[i].start);
    return buf;
}

static int j_int(jctx *j, int i, const char *path, long lo, long hi, int *out)
{
    long long v;
    char d[64], g[48];
    if (json_get_int64(j->js, j->t, i, &v) < 0 || v < lo || v > hi)
        return fail(j->err, j->cap, "config: %s: expected %s, got %s", path, int_desc(lo, hi, d, sizeof d),
                    tok_text(j, i, g, sizeof g));
    *out = (int)v;
    return 0;
}

static int j_num(jctx *j, int i, const char *path, double lo, double hi, float *out)
{
    double v;
    char d[64], g[48];
    if (json_get_double(j->js, j->t, i, &v) < 0 || v < lo || v > hi)
        return fail(j->err, j->cap, "config: %s: expected %s, got %s", path, num_desc(lo, hi, d, sizeof d),
                    tok_text(j, i, g, sizeof g));
    *out = (float)v;
    return 0;
}

static int j_str(jctx *j, int i, const char *path, char *dst, size_t dcap)
{
    char g[48];
    if (j->t[i].type != JSON_STRING)
        return fail(j->err, j->cap, "config: %s: expected a string, got %s", path, tok_text(j, i, g, sizeof g));
    int n = json_string_unescape(j->js, j->t, i, dst, dcap);
    if (n < 0) return fail(j->err, j->cap, "config: %s: too long (at most %zu bytes)", path, dcap - 1);
    if ((size_t)n != strlen(dst)) return fail(j->err, j->cap, "config: %s: contains a NUL character", path);
    return 0;
}

static int j_expect_obj(jctx *j, int i, const char *path)
{
    char g[48];
    if (j->t[i].type != JSON_OBJECT)
        return fail(j->err, j->cap, "config: %s: expected an object, got %s", path, tok_text(j, i, g, sizeof g));
    return 0;
}

static int j_unknown(jctx *j, const char *path, const char *known)
{
    return fail(j->err, j->cap, "config: %s: unknown key (known: %s)", path, known);
}

static int j_samplers(jctx *j, int o, const char *prefix, config_samplers *s)
{
    char path[160], sub[200];
    if (j_expect_obj(j, o, prefix) < 0) return -1;
    JSON_OBJ_FOREACH(j->t, o, k, n) {
        int v = k + 1;
        key_path(path, sizeof path, prefix, j, k);
        if (json_tok_eq(j->js, j->t, k, "top_k")) {
            if (j_int(j, v, path, 0, INT_MAX, &s->top_k) < 0) return -1;
            s->set |= CONFIG_SAMP_TOP_K;
        } else if (json_tok_eq(j->js, j->t, k, "top_p")) {
            if (j_num(j, v, path, 0, 1, &s->top_p) < 0) return -1;
            s->set |= CONFIG_SAMP_TOP_P;
        } else if (json_tok_eq(j->js, j->t, k, "min_p")) {
            if (j_num(j, v, path, 0, 1, &s->min_p) < 0) return -1;
            s->set |= CONFIG_SAMP_MIN_P;
        } else if (json_tok_eq(j->js, j->t, k, "temp")) {
            if (j_num(j, v, path, 0, 100, &s->temp) < 0) return -1;
            s->set |= CONFIG_SAMP_TEMP;
        } else if (json_tok_eq(j->js, j->t, k, "mirostat_v2")) {
            if (j_expect_obj(j, v, path) < 0) return -1;
            JSON_OBJ_FOREACH(j->t, v, mk, mn) {
                key_path(sub, sizeof sub, path, j, mk);
                if (json_tok_eq(j->js, j->t, mk, "tau")) {
                    if (j_num(j, mk + 1, sub, 0, INFINITY, &s->mirostat_tau) < 0) return -1;
                } else if (json_tok_eq(j->js, j->t, mk, "eta")) {
                    if (j_num(j, mk + 1, sub, 0, INFINITY, &s->mirostat_eta) < 0) return -1;
                } else {
                    return j_unknown(j, sub, "tau, eta");
                }
                s->set |= CONFIG_SAMP_MIROSTAT;
                (void)mn;
            }
        } else if (json_tok_eq(j->js, j->t, k, "repetition")) {
            if (j_expect_obj(j, v, path) < 0) return -1;
            JSON_OBJ_FOREACH(j->t, v, rk, rn) {
                key_path(sub, sizeof sub, path, j, rk);
                if (json_tok_eq(j->js, j->t, rk, "penalty_n")) {
                    if (j_int(j, rk + 1, sub, -1, INT_MAX, &s->penalty_n) < 0) return -1;
                } else if (json_tok_eq(j->js, j->t, rk, "penalty_repeat")) {
                    if (j_num(j, rk + 1, sub, 0, INFINITY, &s->penalty_repeat) < 0) return -1;
                } else {
                    return j_unknown(j, sub, "penalty_n, penalty_repeat");
                }
                s->set |= CONFIG_SAMP_REPETITION;
                (void)rn;
            }
        } else {
            return j_unknown(j, path, "top_k, top_p, min_p, temp, mirostat_v2, repetition");
        }
        (void)n;
    }
    return 0;
}

static int j_model(jctx *j, int o, int index, config_model *m)
{
    char prefix[16], path[96], kv[8];
    snprintf(prefix, sizeof prefix, "[%d]", index);
    if (j_expect_obj(j, o, prefix) < 0) return -1;
    bool have_path = false;
    JSON_OBJ_FOREACH(j->t, o, k, n) {
        int v = k + 1;
        key_path(path, sizeof path, prefix, j, k);
        if (json_tok_eq(j->js, j->t, k, "model_path")) {
            if (j_str(j, v, path, m->path, sizeof m->path) < 0) return -1;
            have_path = m->path[0] != 0;
        } else if (json_tok_eq(j->js, j->t, k, "alias")) {
            if (j_str(j, v, path, m->alias, sizeof m->alias) < 0) return -1;
        } else if (json_tok_eq(j->js, j->t, k, "processor_count")) {
            if (j_int(j, v, path, 1, 1024, &m->processor_count) < 0) return -1;
        } else if (json_tok_eq(j->js, j->t, k, "thread_count")) {
            if (j_int(j, v, path, 1, 1024, &m->thread_count) < 0) return -1;
        } else if (json_tok_eq(j->js, j->t, k, "batch_thread_count")) {
            if (j_int(j, v, path, 1, 1024, &m->batch_thread_count) < 0) return -1;
        } else if (json_tok_eq(j->js, j->t, k, "context_length")) {
            if (j_int(j, v, path, 16, 1 << 24, &m->context_length) < 0) return -1;
        } else if (json_tok_eq(j->js, j->t, k, "batch_length")) {
            if (j_int(j, v, path, 1, 1 << 24, &m->batch_length) < 0) return -1;
        } else if (json_tok_eq(j->js, j->t, k, "gpu_layers")) {
            if (j_int(j, v, path, -1, INT_MAX, &m->gpu_layers) < 0) return -1;
            m->gpu_layers_set = true;
        } else if (json_tok_eq(j->js, j->t, k, "kv_type")) {
            if (json_tok_eq(j->js, j->t, v, "f16")) m->kv_type = CONFIG_KV_F16;
            else if (json_tok_eq(j->js, j->t, v, "f32")) m->kv_type = CONFIG_KV_F32;
            else return fail(j->err, j->cap, "config: %s: expected \"f16\" or \"f32\", got %s", path,
                             tok_text(j, v, kv, sizeof kv));
        } else if (json_tok_eq(j->js, j->t, k, "samplers")) {
            if (j_samplers(j, v, path, &m->samplers) < 0) return -1;
        } else {
            return j_unknown(j, path, "model_path, alias, processor_count, thread_count, batch_thread_count, "
                                      "context_length, batch_length, gpu_layers, kv_type, samplers");
        }
        (void)n;
    }
    if (!have_path) return fail(j->err, j->cap, "config: %s.model_path: missing (the GGUF file to serve)", prefix);
    return 0;
}

#define JSON_TOKENS_MAX 65536

int config_load_json(config *c, const char *text, size_t len, const config_model *defaults,
                     char *err, size_t errcap)
{
    json_parser p = {0};
    jctx j = {text, NULL, err, errcap};
    int n = json_parse(&p, text, len, NULL, 0);
    if (n < 0) {
        /* Line and column help people editing the file by hand. */
        size_t line = 1, col = 1;
        for (size_t i = 0; i < p.err_pos && i < len; i++) {
            if (text[i] == '\n') line++, col = 1;
            else col++;
        }
        return fail(err, errcap, "config: %s at line %zu, column %zu", json_strerror(n), line, col);
    }
    if (n > JSON_TOKENS_MAX) return fail(err, errcap, "config: too many JSON values (%d, at most %d)", n, JSON_TOKENS_MAX);
    j.t = malloc((size_t)n * sizeof(json_tok));
    if (!j.t) return fail(err, errcap, "config: out of memory");
    int rc = -1;
    json_parse(&p, text, len, j.t, n);
    if (j.t[0].type != JSON_ARRAY) {
        fail(err, errcap, "config: expected a JSON array of model objects ([{\"model_path\": \"model.gguf\"}]), got %s",
             json_type_name(j.t[0].type));
        goto out;
    }
    if (j.t[0].size == 0) {
        fail(err, errcap, "config: the array of models is empty");
        goto out;
    }
    JSON_ARR_FOREACH(j.t, 0, e, k) {
        if (c->n_models >= CONFIG_MODELS_MAX) {
            fail(err, errcap, "config: [%d]: too many models (at most %d)", k, CONFIG_MODELS_MAX);
            goto out;
        }
        config_model *m = &c->models[c->n_models];
        *m = *defaults;
        m->path[0] = 0;
        m->alias[0] = 0;
        m->id[0] = 0;
        if (j_model(&j, e, k, m) < 0) goto out;
        m->desc_index = k;
        c->n_models++;
    }
    rc = 0;
out:
    free(j.t);
    return rc;
}

/* Read a whole file of at most CONFIG_FILE_MAX bytes; *out is malloc'd. */
static int read_file(const char *what, const char *path, char **out, size_t *len, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, cap, "%s: cannot open '%s': %s", what, path, strerror(errno));
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return fail(err, cap, "%s: out of memory", what);
    }
    size_t n = fread(buf, 1, CONFIG_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > CONFIG_FILE_MAX) {
        free(buf);
        return bad ? fail(err, cap, "%s: cannot read '%s'", what, path)
                   : fail(err, cap, "%s: '%s' is larger than %u bytes", what, path, CONFIG_FILE_MAX);
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int config_load_file(config *c, const char *path, const config_model *defaults, char *err, size_t errcap)
{
    char *text;
    size_t len;
    if (read_file("config", path, &text, &len, err, errcap) < 0) return -1;
    int rc = config_load_json(c, text, len, defaults, err, errcap);
    free(text);
    return rc;
}

/* ---- Key file -------------------------------------------------------------------------- */

int config_load_keys(config *c, const char *path, char *err, size_t errcap)
{
    char *text;
    size_t len;
    char what[64 + CONFIG_PATH_MAX];
    if (read_file("--api-key-file", path, &text, &len, err, errcap) < 0) return -1;
    int rc = 0, line = 0;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t e = i;
        while (e < len && text[e] != '\n') e++;
        line++;
        size_t a = i, b = e;
        while (a < b && (text[a] == ' ' || text[a] == '\t' || text[a] == '\r')) a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\t' || text[b - 1] == '\r')) b--;
        if (b > a && text[a] != '#') {
            snprintf(what, sizeof what, "--api-key-file %.200s:%d", path, line);
            rc = add_key(c, what, text + a, b - a, err, errcap);
        }
        i = e + 1;
    }
    if (rc == 0 && c->n_api_keys == 0) rc = fail(err, errcap, "--api-key-file: '%s' holds no key", path);
    free(text);
    return rc;
}

/* ---- Command line ------------------------------------------------------------------------ */

enum opt_id {
    O_HELP, O_VERSION, O_MODEL, O_HOST, O_PORT, O_API_KEY, O_API_KEY_FILE, O_SSL_CERT, O_SSL_KEY,
    O_DESC, O_CTX, O_THREADS, O_THREADS_BATCH, O_PARALLEL, O_BATCH, O_ALIAS, O_TEMP, O_TOP_K,
    O_TOP_P, O_MIN_P, O_REPEAT_PENALTY, O_REPEAT_LAST_N, O_MIROSTAT_TAU, O_MIROSTAT_ETA,
    O_GPU_LAYERS, O_CORS, O_LOG_FORMAT, O_DEMO, O_KV_TYPE, O_MAX_CONN, O_MAX_HEADER_BYTES,
    O_MAX_HEADERS, O_MAX_BODY, O_ARENA, O_QUEUE, O_HEADER_TIMEOUT, O_IDLE_TIMEOUT, O_SSE_PING,
    O_SHUTDOWN_TIMEOUT, O_SSL_CACHE, O_SLOTS_PROMPTS, O_KERNELS, O_NO_PACK
};

static const struct opt {
    const char *names[4];
    enum opt_id id;
    bool value;
    const char *help; /* "" = alias line not shown */
} opts[] = {
    {{"--help"}, O_HELP, false, "this text"},
    {{"-v", "--version"}, O_VERSION, false, "version and build features"},
    {{"-m", "--model"}, O_MODEL, true, "GGUF model to serve (repeatable: several models)"},
    {{"-h", "--hostname", "--host"}, O_HOST, true, "IPv4/IPv6 address to listen on (default 127.0.0.1)"},
    {{"-p", "--port"}, O_PORT, true, "TCP port (default 8080; 0 = any free port)"},
    {{"--api-key"}, O_API_KEY, true, "accept this key (Bearer, or Basic password); repeatable"},
    {{"--api-key-file"}, O_API_KEY_FILE, true, "accept the keys of FILE, one per line"},
    {{"--ssl-public", "--ssl-pub", "--ssl-cert-file"}, O_SSL_CERT, true, "TLS certificate chain (PEM)"},
    {{"--ssl-key", "--ssl-key-file"}, O_SSL_KEY, true, "TLS private key (PEM)"},
    {{"--ssl-session-cache"}, O_SSL_CACHE, true, "TLS sessions kept for resumption (default 256, 0 = off)"},
    {{"-jsdesc", "--jsdesc", "--config"}, O_DESC, true, "JSON array of model objects (mbase format)"},
    {{"-c", "--ctx-size"}, O_CTX, true, "context length per slot (default 2048)"},
    {{"-t", "--threads"}, O_THREADS, true, "generation threads (default: online cores)"},
    {{"-tb", "--threads-batch"}, O_THREADS_BATCH, true, "prompt threads (default: --threads)"},
    {{"-np", "--parallel"}, O_PARALLEL, true, "concurrent requests per model (default 4)"},
    {{"-b", "--batch-size"}, O_BATCH, true, "prompt micro-batch (default 512)"},
    {{"--alias", "-a"}, O_ALIAS, true, "model id of the single -m model"},
    {{"--temp"}, O_TEMP, true, "default temperature"},
    {{"--top-k"}, O_TOP_K, true, "default top-k (0 = off)"},
    {{"--top-p"}, O_TOP_P, true, "default top-p"},
    {{"--min-p"}, O_MIN_P, true, "default min-p"},
    {{"--repeat-penalty"}, O_REPEAT_PENALTY, true, "default repetition penalty (1 = off)"},
    {{"--repeat-last-n"}, O_REPEAT_LAST_N, true, "tokens the penalty looks back (-1 = context)"},
    {{"--mirostat-tau", "--mirostat-ent"}, O_MIROSTAT_TAU, true, "mirostat v2 target entropy"},
    {{"--mirostat-eta", "--mirostat-lr"}, O_MIROSTAT_ETA, true, "mirostat v2 learning rate"},
    {{"-ngl", "--gpu-layers", "--n-gpu-layers"}, O_GPU_LAYERS, true, "accepted and ignored (no GPU backend)"},
    {{"--cors-origin"}, O_CORS, true, "allow browser requests from this origin ('*' = any)"},
    {{"--log-format"}, O_LOG_FORMAT, true, "text (default) or json"},
    {{"--demo"}, O_DEMO, false, "serve a built-in random-weight smoke-test model"},
    {{"--slots-show-prompts"}, O_SLOTS_PROMPTS, false, "GET /slots also shows each request's prompt text"},
    {{"--kv-type"}, O_KV_TYPE, true, "KV cache type: f16 (default) or f32"},
    {{"--kernels"}, O_KERNELS, true, "force a kernel table: ref, avx2, avx512, neon, dotprod (default: best)"},
    {{"--no-pack"}, O_NO_PACK, false, "no packed copy of the weights (less memory, slower decode on avx512)"},
    {{"--max-connections"}, O_MAX_CONN, true, "open connections (default 64)"},
    {{"--max-header-bytes"}, O_MAX_HEADER_BYTES, true, "request line + headers, else 431 (default 16k)"},
    {{"--max-headers"}, O_MAX_HEADERS, true, "header count, else 431 (default 64)"},
    {{"--max-body-bytes"}, O_MAX_BODY, true, "request body, else 413 (default 4M)"},
    {{"--request-memory"}, O_ARENA, true, "parse memory per request, else 413 (default 16 x body)"},
    {{"--queue"}, O_QUEUE, true, "waiting requests per model, else 429 (default 16)"},
    {{"--header-timeout"}, O_HEADER_TIMEOUT, true, "seconds to receive the headers (default 10)"},
    {{"--idle-timeout", "--timeout"}, O_IDLE_TIMEOUT, true, "seconds a keep-alive connection may idle (default 60)"},
    {{"--sse-ping"}, O_SSE_PING, true, "seconds between ': ping' during prompt processing (default 15)"},
    {{"--shutdown-timeout"}, O_SHUTDOWN_TIMEOUT, true, "seconds SIGTERM waits for responses (default 10)"},
};

const char *config_usage(void)
{
    static char text[6144];
    if (text[0]) return text;
    size_t o = 0;
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
        char names[96];
        size_t n = 0;
        for (int a = 0; a < 4 && opts[k].names[a]; a++)
            n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", a ? ", " : "", opts[k].names[a]);
        if (opts[k].value) snprintf(names + n, sizeof names - n, " X");
        int w = snprintf(text + o, sizeof text - o, "  %-40s %s\n", names, opts[k].help);
        if (w < 0 || (size_t)w >= sizeof text - o) break;
        o += (size_t)w;
    }
    return text;
}

static const struct opt *opt_find(const char *name, size_t n)
{
    for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++)
        for (int a = 0; a < 4 && opts[k].names[a]; a++)
            if (strlen(opts[k].names[a]) == n && !memcmp(opts[k].names[a], name, n)) return &opts[k];
    return NULL;
}

/* Model settings given on the command line: applied to every model. */
typedef struct cli_state {
    config_model tmpl;
    const char *paths[CONFIG_MODELS_MAX];
    int n_paths;
    const char *alias;
    const char *key_files[8];
    int n_key_files;
} cli_state;

static int apply_opt(config *c, cli_state *st, const struct opt *o, const char *name, const char *v,
                     char *err, size_t cap)
{
    config_model *m = &st->tmpl;
    config_samplers *s = &m->samplers;
    long big;
    int secs;
    switch (o->id) {
    case O_HELP: c->want_help = true; return 0;
    case O_VERSION: c->want_version = true; return 0;
    case O_DEMO: c->demo = true; return 0;
    case O_SLOTS_PROMPTS: c->slots_show_prompts = true; return 0;
    case O_MODEL:
        if (st->n_paths >= CONFIG_MODELS_MAX) return fail(err, cap, "%s: too many models (at most %d)", name, CONFIG_MODELS_MAX);
        if (!*v) return fail(err, cap, "%s: empty file name", name);
        if (strlen(v) >= CONFIG_PATH_MAX) return fail(err, cap, "%s: path too long (at most %d bytes)", name, CONFIG_PATH_MAX - 1);
        st->paths[st->n_paths++] = v;
        return 0;
    case O_HOST: return set_host(c, name, v, err, cap);
    case O_PORT: return cli_int(name, v, 0, 65535, &c->port, err, cap);
    case O_API_KEY: return add_key(c, name, v, strlen(v), err, cap);
    case O_API_KEY_FILE:
        if (st->n_key_files >= 8) return fail(err, cap, "%s: given too often (at most 8 files)", name);
        st->key_files[st->n_key_files++] = v;
        return 0;
    case O_SSL_CERT: return copy_str(name, v, c->tls_cert_file, sizeof c->tls_cert_file, err, cap);
    case O_SSL_KEY: return copy_str(name, v, c->tls_key_file, sizeof c->tls_key_file, err, cap);
    case O_DESC:
        if (c->desc_file[0]) return fail(err, cap, "%s: only one description file may be given", name);
        if (!*v) return fail(err, cap, "%s: empty file name", name);
        return copy_str(name, v, c->desc_file, sizeof c->desc_file, err, cap);
    case O_CTX: return cli_int(name, v, 16, 1 << 24, &m->context_length, err, cap);
    case O_THREADS: return cli_int(name, v, 1, 1024, &m->thread_count, err, cap);
    case O_THREADS_BATCH: return cli_int(name, v, 1, 1024, &m->batch_thread_count, err, cap);
    case O_PARALLEL: return cli_int(name, v, 1, 1024, &m->processor_count, err, cap);
    case O_BATCH: return cli_int(name, v, 1, 1 << 24, &m->batch_length, err, cap);
    case O_ALIAS:
        if (!*v) return fail(err, cap, "%s: empty name", name);
        if (strlen(v) >= CONFIG_NAME_MAX) return fail(err, cap, "%s: too long (at most %d bytes)", name, CONFIG_NAME_MAX - 1);
        st->alias = v;
        return 0;
    case O_TEMP: s->set |= CONFIG_SAMP_TEMP; return cli_num(name, v, 0, 100, &s->temp, err, cap);
    case O_TOP_K: s->set |= CONFIG_SAMP_TOP_K; return cli_int(name, v, 0, INT_MAX, &s->top_k, err, cap);
    case O_TOP_P: s->set |= CONFIG_SAMP_TOP_P; return cli_num(name, v, 0, 1, &s->top_p, err, cap);
    case O_MIN_P: s->set |= CONFIG_SAMP_MIN_P; return cli_num(name, v, 0, 1, &s->min_p, err, cap);
    case O_REPEAT_PENALTY:
        s->set |= CONFIG_SAMP_REPETITION;
        return cli_num(name, v, 0, INFINITY, &s->penalty_repeat, err, cap);
    case O_REPEAT_LAST_N:
        s->set |= CONFIG_SAMP_REPETITION;
        return cli_int(name, v, -1, INT_MAX, &s->penalty_n, err, cap);
    case O_MIROSTAT_TAU:
        s->set |= CONFIG_SAMP_MIROSTAT;
        return cli_num(name, v, 0, INFINITY, &s->mirostat_tau, err, cap);
    case O_MIROSTAT_ETA:
        s->set |= CONFIG_SAMP_MIROSTAT;
        return cli_num(name, v, 0, INFINITY, &s->mirostat_eta, err, cap);
    case O_GPU_LAYERS:
        m->gpu_layers_set = true;
        return cli_int(name, v, -1, INT_MAX, &m->gpu_layers, err, cap);
    case O_CORS:
        if (!*v) return fail(err, cap, "%s: empty origin", name);
        return copy_str(name, v, c->cors_origin, sizeof c->cors_origin, err, cap);
    case O_LOG_FORMAT:
        if (!strcmp(v, "text")) c->log_format = CONFIG_LOG_TEXT;
        else if (!strcmp(v, "json")) c->log_format = CONFIG_LOG_JSON;
        else return fail(err, cap, "%s: expected 'text' or 'json', got '%.64s'", name, v);
        return 0;
    case O_NO_PACK: m->no_pack = true; return 0;
    case O_KERNELS: {
        static const char *const names[] = {"ref", "avx2", "avx512", "neon", "dotprod"};
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            if (!strcmp(v, names[k])) return copy_str(name, v, m->kernels, sizeof m->kernels, err, cap);
        return fail(err, cap, "%s: expected ref, avx2, avx512, neon or dotprod, got '%.64s'", name, v);
    }
    case O_KV_TYPE:
        if (!strcmp(v, "f16")) m->kv_type = CONFIG_KV_F16;
        else if (!strcmp(v, "f32")) m->kv_type = CONFIG_KV_F32;
        else return fail(err, cap, "%s: expected 'f16' or 'f32', got '%.64s'", name, v);
        return 0;
    case O_MAX_CONN: return cli_int(name, v, 1, 65536, &c->max_connections, err, cap);
    case O_SSL_CACHE: return cli_int(name, v, 0, 1 << 20, &c->tls_session_cache, err, cap);
    case O_MAX_HEADER_BYTES:
        if (cli_size(name, v, 256, 1L << 20, &big, err, cap) < 0) return -1;
        c->max_header_bytes = (int)big;
        return 0;
    case O_MAX_HEADERS: return cli_int(name, v, 1, 1024, &c->max_headers, err, cap);
    case O_MAX_BODY: return cli_size(name, v, 1, 1L << 30, &c->max_body_bytes, err, cap);
    case O_ARENA:
        return cli_size(name, v, 4096, LONG_MAX > (1LL << 34) ? (long)(1LL << 34) : LONG_MAX,
                        &c->request_arena_bytes, err, cap);
    case O_QUEUE: return cli_int(name, v, 0, 65536, &c->queue_length, err, cap);
    case O_HEADER_TIMEOUT:
    case O_IDLE_TIMEOUT:
    case O_SSE_PING:
    case O_SHUTDOWN_TIMEOUT:
        if (cli_int(name, v, o->id == O_SHUTDOWN_TIMEOUT ? 0 : 1, 86400, &secs, err, cap) < 0) return -1;
        *(o->id == O_HEADER_TIMEOUT ? &c->header_timeout_ms
          : o->id == O_IDLE_TIMEOUT ? &c->idle_timeout_ms
          : o->id == O_SSE_PING     ? &c->sse_ping_ms
                                    : &c->shutdown_timeout_ms) = secs * 1000;
        return 0;
    }
    return fail(err, cap, "%s: not handled", name);
}

int config_parse_args(config *c, int argc, char **argv, char *err, size_t errcap)
{
    static cli_state st; /* large (one config_model); keep it off the stack */
    memset(&st, 0, sizeof st);
    config_model_init(&st.tmpl);
    int i = 1;
    if (i < argc && !strcmp(argv[i], "serve")) i++;
    for (; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        size_t n = strlen(a);
        /* --name=value for long options. */
        const char *eq = (a[0] == '-' && a[1] == '-') ? strchr(a, '=') : NULL;
        if (eq) n = (size_t)(eq - a);
        const struct opt *o = a[0] == '-' ? opt_find(a, n) : NULL;
        if (!o) {
            if (a[0] == '-') return fail(err, errcap, "unknown option '%.*s' (try 'mote --help')", (int)(n > 64 ? 64 : n), a);
            return fail(err, errcap, "unexpected argument '%.64s' (models are given with -m)", a);
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(n > 63 ? 63 : n), a);
        if (o->value) {
            if (eq) val = eq + 1;
            else if (i + 1 < argc) val = argv[++i];
            else return fail(err, errcap, "%s: missing value", name);
        } else if (eq) {
            return fail(err, errcap, "%s: takes no value", name);
        }
        if (apply_opt(c, &st, o, name, val, err, errcap) < 0) return -1;
        if (c->want_help || c->want_version) return 0;
    }

    /* Models from -m take the command-line settings. */
    if (st.alias && st.n_paths != 1)
        return fail(err, errcap, "--alias: needs exactly one -m model (got %d)", st.n_paths);
    for (int k = 0; k < st.n_paths; k++) {
        if (c->n_models >= CONFIG_MODELS_MAX) return fail(err, errcap, "-m: too many models (at most %d)", CONFIG_MODELS_MAX);
        config_model *m = &c->models[c->n_models++];
        *m = st.tmpl;
        snprintf(m->path, sizeof m->path, "%s", st.paths[k]);
        if (st.alias) snprintf(m->alias, sizeof m->alias, "%s", st.alias);
    }
    if (c->desc_file[0] && config_load_file(c, c->desc_file, &st.tmpl, err, errcap) < 0) return -1;
    for (int k = 0; k < st.n_key_files; k++)
        if (config_load_keys(c, st.key_files[k], err, errcap) < 0) return -1;
    return config_finish(c, err, errcap);
}

/* ---- Finish ---------------------------------------------------------------------------------- */

/* "-m FILE" or "config: [k]" for messages about one model. */
static const char *model_where(const config_model *m, char *buf, size_t cap)
{
    if (m->desc_index >= 0) snprintf(buf, cap, "config: [%d]", m->desc_index);
    else snprintf(buf, cap, "-m %.200s", m->path);
    return buf;
}

int config_model_find(const config *c, const char *id)
{
    for (int k = 0; k < c->n_models; k++)
        if (!strcmp(c->models[k].id, id)) return k;
    return -1;
}

int config_finish(config *c, char *err, size_t errcap)
{
    char where[240], other[240];
    if (c->n_models == 0 && !c->demo)
        return fail(err, errcap, "no model to serve: give -m MODEL.gguf, -jsdesc FILE or --demo");
    if (!c->tls_cert_file[0] != !c->tls_key_file[0])
        return fail(err, errcap, c->tls_cert_file[0] ? "--ssl-public: needs --ssl-key too"
                                                     : "--ssl-key: needs --ssl-public too");
    if (c->request_arena_bytes == 0)
        c->request_arena_bytes = c->max_body_bytes > LONG_MAX / 16 ? LONG_MAX : 16 * c->max_body_bytes + 65536;
    int cores = config_cores();
    for (int k = 0; k < c->n_models; k++) {
        config_model *m = &c->models[k];
        model_where(m, where, sizeof where);
        if (m->thread_count <= 0) m->thread_count = cores;
        if (m->batch_thread_count <= 0) m->batch_thread_count = m->thread_count;
        if (m->batch_length <= 0)
            m->batch_length = m->context_length < CONFIG_DEFAULT_BATCH ? m->context_length : CONFIG_DEFAULT_BATCH;
        if (m->batch_length > m->context_length)
            return fail(err, errcap, "%s: batch_length (%d) exceeds context_length (%d)", where, m->batch_length,
                        m->context_length);
        if (m->alias[0]) {
            memcpy(m->id, m->alias, sizeof m->id); /* same size, NUL-terminated */
        } else {
            const char *base = strrchr(m->path, '/');
            base = base ? base + 1 : m->path;
            size_t n = strlen(base);
            if (n > 5 && !strcmp(base + n - 5, ".gguf")) n -= 5;
            if (n == 0) return fail(err, errcap, "%s: cannot derive a model id from the path; give an alias", where);
            if (n >= sizeof m->id)
                return fail(err, errcap, "%s: file name too long for a model id (at most %zu bytes); give an alias",
                            where, sizeof m->id - 1);
            memcpy(m->id, base, n);
            m->id[n] = 0;
        }
        for (int q = 0; q < k; q++) {
            if (strcmp(c->models[q].id, m->id)) continue;
            return fail(err, errcap, "%s: model id '%s' is already used by %s; give one an alias", where, m->id,
                        model_where(&c->models[q], other, sizeof other));
        }
    }
    return 0;
}
