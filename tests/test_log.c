/* test_log.c — one line per call, text and JSON formats, escaping, truncation. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

static int pfd[2];
static char got[LOG_LINE_MAX * 2];

static const char *drain(void)
{
    ssize_t n = read(pfd[0], got, sizeof got - 1);
    got[n > 0 ? n : 0] = '\0';
    return got;
}

static int one_line(const char *s)
{
    const char *nl = strchr(s, '\n');
    return nl && nl[1] == '\0';
}

int main(void)
{
    if (pipe(pfd) < 0)
        return 1;
    fcntl(pfd[0], F_SETFL, O_NONBLOCK);
    log_set_fd(pfd[1]);

    log_info("hello %d", 42);
    const char *s = drain();
    T_CHECK(one_line(s) && strstr(s, " info  hello 42\n") && s[4] == '-' && s[10] == 'T',
            "text line: timestamp, level, message");
    log_debug("hidden");
    T_CHECK(drain()[0] == '\0', "debug filtered at the default level");
    log_set_level(LOG_LVL_DEBUG);
    log_debug("shown");
    T_CHECK(strstr(drain(), "debug shown"), "debug shown after log_set_level");

    log_warn("evil\nline\x01");
    s = drain();
    T_CHECK(one_line(s) && strstr(s, "evil\\x0aline\\x01"), "control bytes escaped in text");

    log_access_rec a = { .peer = "127.0.0.1:1", .method = "GETX", .method_len = 3,
                         .path = "/v1/models?x", .path_len = 10, .status = 200, .bytes = 12,
                         .ms = 1.25, .note = "tokens=3" };
    log_access(&a);
    s = drain();
    T_CHECK(strstr(s, "access 127.0.0.1:1 \"GET /v1/models\" 200 12B 1.2ms tokens=3\n") ||
                strstr(s, "access 127.0.0.1:1 \"GET /v1/models\" 200 12B 1.3ms tokens=3\n"),
            "text access line");

    log_set_format(LOG_FMT_JSON);
    log_error("quote \" back \\ nl \n");
    s = drain();
    T_CHECK(one_line(s) && s[0] == '{' && strstr(s, "\"level\":\"error\"") &&
                strstr(s, "\"msg\":\"quote \\\" back \\\\ nl \\u000a\"}\n"),
            "JSON line with escapes");
    log_access(&a);
    s = drain();
    T_CHECK(strstr(s, "\"event\":\"access\"") && strstr(s, "\"method\":\"GET\"") &&
                strstr(s, "\"path\":\"/v1/models\"") && strstr(s, "\"status\":200") &&
                strstr(s, "\"note\":\"tokens=3\"}\n"), "JSON access line");

    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    log_info("%s", big);
    s = drain();
    T_CHECK(one_line(s) && strlen(s) <= LOG_LINE_MAX && strstr(s, "...\"}\n"),
            "long JSON line truncated, still closed (%zu bytes)", strlen(s));
    log_set_format(LOG_FMT_TEXT);
    log_info("%s", big);
    s = drain();
    T_CHECK(one_line(s) && strlen(s) <= LOG_LINE_MAX && strstr(s, "...\n"), "long text line truncated");

    log_format f;
    log_level l;
    T_CHECK(log_parse_format("json", &f) == 0 && f == LOG_FMT_JSON &&
                log_parse_format("xml", &f) == -1, "parse format");
    T_CHECK(log_parse_level("warn", &l) == 0 && l == LOG_LVL_WARN && log_parse_level("x", &l) == -1,
            "parse level");
    log_set_level(LOG_LVL_OFF);
    log_error("nothing");
    T_CHECK(drain()[0] == '\0', "off silences everything");
    log_set_fd(2);
    return t_done();
}
