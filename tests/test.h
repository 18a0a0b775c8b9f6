/* tests/test.h — mote's own tiny test harness (no framework dependency).
 *
 * Each tests/test_<module>.c is one binary. It prints TAP-like lines:
 *     ok 3 - gguf rejects truncated header
 *     not ok 4 - kernel q4_0 avx2 vs ref (max err 0.1 > 1e-5)
 *     ok 5 - golden stories260K # SKIP ../shared is absent
 * and exits non-zero when any check failed. tests/run.sh aggregates every
 * binary and script into the final line "N passed, N failed, N skipped".
 *
 * Use:
 *     T_CHECK(cond, "name %d", i);         one check, one line
 *     T_SKIP("reason", "name");            a skipped check with its reason
 *     if (t_shared(path, sizeof path, "models/x.gguf")) ...   locate ../shared
 *     return t_done();                     at the end of main()
 *
 * Header-only: every function is static so each test binary gets its own copy.
 */
#ifndef MOTE_TEST_H
#define MOTE_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int t_n, t_failed, t_skipped;

/* Record one check. Returns cond so callers can bail out on failure. */
__attribute__((format(printf, 2, 3), unused))
static int t_check(int cond, const char *fmt, ...)
{
    va_list ap;
    t_n++;
    if (!cond) t_failed++;
    printf("%sok %d - ", cond ? "" : "not ", t_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return cond;
}

/* Record one skipped check; the reason is mandatory and printed. */
__attribute__((format(printf, 2, 3), unused))
static void t_skip(const char *reason, const char *fmt, ...)
{
    va_list ap;
    t_n++;
    t_skipped++;
    printf("ok %d - ", t_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" # SKIP %s\n", reason);
    fflush(stdout);
}

#define T_CHECK(cond, ...) t_check(!!(cond), __VA_ARGS__)
#define T_SKIP(reason, ...) t_skip((reason), __VA_ARGS__)

/* Diagnostic line (TAP comment), e.g. figures behind a failure. */
#define T_NOTE(...) do { printf("# "); printf(__VA_ARGS__); printf("\n"); } while (0)

/* Directory of the shared test data: $MOTE_SHARED, else ../shared (tests run
 * from the repository root). Writes "<dir>/<rel>" into out and returns 1 if
 * that path exists, 0 otherwise (then the caller must T_SKIP loudly). */
__attribute__((unused))
static int t_shared(char *out, size_t cap, const char *rel)
{
    const char *dir = getenv("MOTE_SHARED");
    struct stat st;
    if (!dir || !*dir) dir = "../shared";
    snprintf(out, cap, "%s/%s", dir, rel);
    return stat(out, &st) == 0;
}

/* Reason string for skips caused by missing shared data. */
#define T_NO_SHARED "../shared is absent (set MOTE_SHARED to the test-data directory)"

/* Exit status for main(): 0 if every check passed. */
__attribute__((unused))
static int t_done(void)
{
    printf("# %d checks, %d failed, %d skipped\n", t_n, t_failed, t_skipped);
    fflush(stdout); /* a crash at teardown must not lose the summary */
    return t_failed ? 1 : 0;
}

#endif
