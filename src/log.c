/* log.c — one line, one write(); see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int g_level = LOG_LVL_INFO;
static volatile int g_format = LOG_FMT_TEXT;
static volatile int g_fd = 2;

void log_set_level(log_level lvl) { g_level = (int)lvl; }
void log_set_format(log_format f) { g_format = (int)f; }
void log_set_fd(int fd) { g_fd = fd; }
int log_enabled(log_level lvl) { return (int)lvl >= g_level && lvl != LOG_LVL_OFF; }

int log_parse_format(const char *s, log_format *out)
{
    if (!strcmp(s, "text")) { *out = LOG_FMT_TEXT; return 0; }
    if (!strcmp(s, "json")) { *out = LOG_FMT_JSON; return 0; }
    return -1;
}

int log_parse_level(const char *s, log_level *out)
{
    static const char *names[] = { "debug", "info", "warn", "error", "off" };
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (log_level)i;
            return 0;
        }
    return -1;
}

static const char *level_name(log_level l)
{
    switch (l) {
    case LOG_LVL_DEBUG: return "debug";
    case LOG_LVL_INFO: return "info";
    case LOG_LVL_WARN: return "warn";
    case LOG_LVL_ERROR: return "error";
    default: return "off";
    }
}

/* A line under construction: appends never overflow, they truncate. */
typedef struct line {
    char b[LOG_LINE_MAX];
    size_t n;
    int trunc;
} line;

static void put(line *l, const char *s, size_t n)
{
    size_t room = sizeof l->b - 8 - l->n; /* keep room for "...\"}\n" */
    if (l->trunc)
        return;
    if (n > room) { /* all or nothing: never half an escape */
        l->trunc = 1;
        return;
    }
    memcpy(l->b + l->n, s, n);
    l->n += n;
}

static void puts_(line *l, const char *s) { put(l, s, strlen(s)); }

__attribute__((format(printf, 2, 3)))
static void putf(line *l, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Text: control bytes as \xNN. JSON: a string body per RFC 8259. */
static void put_esc(line *l, const char *s, size_t n, int json)
{
    for (size_t i = 0; i < n && !l->trunc; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (json && (c == '"' || c == '\\')) {
            e[0] = '\\';
            e[1] = (char)c;
            put(l, e, 2);
        } else if (c < 0x20 || c == 0x7f) {
            if (json)
                snprintf(e, sizeof e, "\\u%04x", c);
            else
                snprintf(e, sizeof e, "\\x%02x", c);
            put(l, e, strlen(e));
        } else {
            put(l, (const char *)&c, 1);
        }
    }
}

static void put_ts(line *l)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    putf(l, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

static void line_begin(line *l, log_level lvl)
{
    l->n = 0;
    l->trunc = 0;
    if (g_format == LOG_FMT_JSON) {
        puts_(l, "{\"ts\":\"");
        put_ts(l);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_name(lvl));
        puts_(l, "\"");
    } else {
        put_ts(l);
        putf(l, " %-5s ", level_name(lvl));
    }
}

static void line_end(line *l)
{
    if (l->trunc) {
        /* cut inside the last string field: close it and the object */
        const char *tail = g_format == LOG_FMT_JSON ? "...\"}" : "...";
        memcpy(l->b + l->n, tail, strlen(tail));
        l->n += strlen(tail);
    } else if (g_format == LOG_FMT_JSON) {
        l->b[l->n++] = '}';
    }
    l->b[l->n++] = '\n';
    ssize_t w = write(g_fd, l->b, l->n);
    (void)w;
}

void log_msg(log_level lvl, const char *fmt, ...)
{
    line l;
    char msg[LOG_LINE_MAX];
    va_list ap;

    if (!log_enabled(lvl))
        return;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof msg)
        n = sizeof msg - 1;
    line_begin(&l, lvl);
    if (g_format == LOG_FMT_JSON) {
        puts_(&l, ",\"msg\":\"");
        put_esc(&l, msg, (size_t)n, 1);
        if (!l.trunc)
            puts_(&l, "\"");
    } else {
        put_esc(&l, msg, (size_t)n, 0);
    }
    line_end(&l);
}

void log_access(const log_access_rec *a)
{
    line l;
    const char *note = a->note ? a->note : "";
    const char *peer = a->peer ? a->peer : "-";

    if (!log_enabled(LOG_LVL_INFO))
        return;
    line_begin(&l, LOG_LVL_INFO);
    if (g_format == LOG_FMT_JSON) {
        puts_(&l, ",\"event\":\"access\",\"peer\":\"");
        put_esc(&l, peer, strlen(peer), 1);
        puts_(&l, "\",\"method\":\"");
        put_esc(&l, a->method, a->method_len, 1);
        puts_(&l, "\",\"path\":\"");
        put_esc(&l, a->path, a->path_len, 1);
        putf(&l, "\",\"status\":%d,\"bytes\":%zu,\"ms\":%.1f,\"note\":\"", a->status, a->bytes,
             a->ms);
        put_esc(&l, note, strlen(note), 1);
        if (!l.trunc)
            puts_(&l, "\"");
    } else {
        puts_(&l, "access ");
        put_esc(&l, peer, strlen(peer), 0);
        puts_(&l, " \"");
        put_esc(&l, a->method, a->method_len, 0);
        puts_(&l, " ");
        put_esc(&l, a->path, a->path_len, 0);
        putf(&l, "\" %d %zuB %.1fms", a->status, a->bytes, a->ms);
        if (*note) {
            puts_(&l, " ");
            put_esc(&l, note, strlen(note), 0);
        }
    }
    line_end(&l);
}
