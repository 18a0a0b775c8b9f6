/* log.h — one-line logging to stderr (or another fd), safe from any thread.
 *
 * Each call writes exactly one line with one write(): a line never mixes
 * with another thread's. Text format:
 *     2026-11-22T12:00:00.123Z info  listening on 127.0.0.1:8080
 *     2026-11-22T12:00:01.456Z info  access 127.0.0.1:40312 "POST /v1/chat/completions" 200 512B 35.2ms tokens=12
 * JSON format (--log-format json), one object per line:
 *     {"ts":"2026-...Z","level":"info","msg":"listening on 127.0.0.1:8080"}
 *     {"ts":"...","level":"info","event":"access","peer":"127.0.0.1:40312",
 *      "method":"POST","path":"/v1/chat/completions","status":200,"bytes":512,
 *      "ms":35.2,"note":"tokens=12"}
 * Control bytes in messages (and any byte in JSON strings that needs it)
 * are escaped, so a hostile path cannot forge log lines. Lines longer than
 * LOG_LINE_MAX are truncated (marked with "...").
 *
 * Settings are process-wide, meant to be set once at startup by main.
 */
#ifndef MOTE_LOG_H
#define MOTE_LOG_H

#include <stddef.h>

#define LOG_LINE_MAX 2048

typedef enum log_level {
    LOG_LVL_DEBUG = 0,
    LOG_LVL_INFO,
    LOG_LVL_WARN,
    LOG_LVL_ERROR,
    LOG_LVL_OFF
} log_level;

typedef enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON } log_format;

void log_set_level(log_level lvl);          /* default LOG_LVL_INFO */
void log_set_format(log_format f);          /* default LOG_FMT_TEXT */
void log_set_fd(int fd);                    /* default 2 (stderr) */
int log_enabled(log_level lvl);

/* "text"/"json" -> 0 and *out; else -1. */
int log_parse_format(const char *s, log_format *out);
/* "debug"/"info"/"warn"/"error"/"off" -> 0 and *out; else -1. */
int log_parse_level(const char *s, log_level *out);

__attribute__((format(printf, 2, 3)))
void log_msg(log_level lvl, const char *fmt, ...);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* One access line per request. Slices need not be NUL-terminated; note may
 * be NULL or "". ms is wall time from the first byte of the request to the
 * end of its response. Logged at LOG_LVL_INFO. */
typedef struct log_access_rec {
    const char *peer;
    const char *method; size_t method_len;
    const char *path;   size_t path_len;
    int status;
    size_t bytes;       /* response bytes written (head + body) */
    double ms;
    const char *note;
} log_access_rec;

void log_access(const log_access_rec *a);

#endif
