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
#include <pthread.h>
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

    /* llama.cpp's own renders of the same conversations (bos "<s>", eos
     * "</s>", its real clock): with CHAT_TMPL_LLAMA_CPP most are reproduced;
     * the rest need llama.cpp's open prefill of a final assistant message,
     * its real date, its template-specific workarounds or its more lenient
     * engine (see ../shared/golden/README.md section 4). */
    size_t llen;
    t_shared(path, sizeof path, "templates/llama_cpp_vs_jinja2.json");
    char *ll_js = slurp(path, &llen);
    int lmatch = 0, ltotal = 0;
    if (ll_js) {
        int cap = 1 << 18;
        json_tok *lt = malloc((size_t)cap * sizeof *lt);
        json_parser p3 = {0};
        int n3 = json_parse(&p3, ll_js, llen, lt, cap);
        int lres = n3 > 0 ? json_obj_get(ll_js, lt, 0, "results") : -1;
        static char want[1 << 16];
        for (int ti = 0; lres >= 0 && ti < nt; ti++) {
            size_t slen;
            snprintf(path, sizeof path, "%s/%s.jinja", dir, names[ti]);
            char *src = slurp(path, &slen);
            int tr = json_obj_get(ll_js, lt, lres, names[ti]);
            for (int ci = 0; src && ci < ncase; ci++) {
                int txt = json_obj_get(ll_js, lt, json_obj_get(ll_js, lt, tr, cases[ci].name), "llama_cpp_text");
                if (json_tok_type(lt, txt) != JSON_STRING) continue;
                int wl = json_string_unescape(ll_js, lt, txt, want, sizeof want);
                if (wl < 0) continue;
                chat_tmpl_input in;
                memset(&in, 0, sizeof in);
                in.messages_json = cases[ci].msgs;
                in.messages_len = cases[ci].msgs_len;
                in.tools_json = cases[ci].tools;
                in.tools_len = cases[ci].tools_len;
                in.bos_token = "<s>";
                in.eos_token = "</s>";
                in.add_generation_prompt = cases[ci].add_gen;
                in.flags = CHAT_TMPL_LLAMA_CPP;
                in.now = now;   /* deterministic: llama.cpp's real dates do not match */
                char err[256];
                long n = chat_tmpl_render_src(src, slen, &in, g_mem, MEM_CAP, g_out, OUT_CAP, err, sizeof err);
                ltotal++;
                lmatch += n == wl && memcmp(g_out, want, (size_t)wl) == 0;
            }
            free(src);
        }
        free(lt);
        free(ll_js);
    }
    T_NOTE("llama.cpp mode: %d/%d of llama.cpp's own renders reproduced byte for byte", lmatch, ltotal);
    T_CHECK(ltotal == 0 || lmatch >= 320, "CHAT_TMPL_LLAMA_CPP reproduces llama.cpp's renders (%d/%d)", lmatch, ltotal);
    T_CHECK(want_ok == 394, "corpus has the 394 expected renders (found %d)", want_ok);
    for (int i = 0; i < nt; i++) free(names[i]);
    free(cases_js);
    free(res_js);
}

/* ---- 2. interpreter unit tests ------------------------------------------------
 * Templates with the output Python Jinja2 gives for them (NULL: Jinja2 raises).
 * The table was generated by rendering each template with Jinja2 in the HF
 * environment (trim_blocks, lstrip_blocks, loopcontrols, HF tojson), with
 * UNIT_VARS as extra variables, messages = UNIT_MSGS, bos "<s>", eos "</s>",
 * add_generation_prompt true and the fixed clock. */
/* generated by rendering each template with Python Jinja2 3.1.6 (HF environment) */
static const char UNIT_VARS[] = "{\"s\": \"  Hello World  \", \"n\": 5, \"f\": 2.5, \"l\": [3, 1, 2], \"d\": {\"b\": 1, \"a\": 2}, \"u8\": \"h\\u00e9llo w\\u00f6rld\", \"users\": [{\"name\": \"b\", \"n\": 2, \"role\": \"admin\"}, {\"name\": \"A\", \"n\": 1, \"role\": \"user\"}, {\"name\": \"c\", \"n\": 3}], \"text\": \"line1\\nline2\\n\\nline4\", \"empty\": [], \"nested\": {\"a\": {\"b\": [10, 20]}}, \"x\": 1, \"words\": [\"b\", \"a\", \"C\", \"a\"], \"big\": 9007199254740993, \"neg\": -3, \"t\": true, \"nul\": null}";
static const char UNIT_MSGS[] = "[{\"role\": \"user\", \"content\": \"hi\"}]";
static const struct unit { const char *tmpl; const char *want; } UNITS[] = {
    {"{{ 1 + 2 * 3 }}|{{ (1 + 2) * 3 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % -3 }}|{{ -7 % 3 }}|{{ 7 / 2 }}|{{ 4 / 2 }}|{{ 2 ** 10 }}|{{ 2 ** 3 ** 2 }}",
     "7|9|3|-4|-2|2|3.5|2.0|1024|64"},
    {"{{ 1.5 + 1 }}|{{ 0.1 + 0.2 }}|{{ 1e20 }}|{{ 1e-5 }}|{{ 123456789.0 * 1000000000 }}|{{ -0.0 }}|{{ 10 / 3 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ 2.5e-7 }}|{{ 7.0 // 2 }}|{{ -7.5 % 2 }}",
     "2.5|0.30000000000000004|1e+20|1e-05|1.23456789e+17|-0.0|3.3333333333333335|1e+16|1000000000000000.0|0.0001|2.5e-07|3.0|0.5"},
    {"{{ 'a' ~ 1 ~ none ~ true ~ 2.0 ~ u ~ [1] }}|{{ 'ab' * 3 }}|{{ 3 * 'xy' }}|{{ \"it's\" }}|{{ 'tab\\there' }}|{{ '\\u00e9\\x41\\101\\q' }}|{{ 'a' 'b' \"c\" }}",
     "a1NoneTrue2.0[1]|ababab|xyxyxy|it's|tab\there|\303\251AA\\q|abc"},
    {"{{ 'abc'[1] }}|{{ 'abc'[-1] }}|{{ u8[1:3] }}|{{ 'hello'[::-1] }}|{{ 'hello'[::2] }}|{{ u8[::-1] }}|{{ 'hello'[10:] }}|{{ 'hello'[-3:] }}|{{ u8[1] }}|{{ u8|length }}",
     "b|c|\303\251l|olleh|hlo|dlr\303\266w oll\303\251h||llo|\303\251|11"},
    {"{{ [1,2,3,4][1:] }}|{{ [1,2,3][::-1] }}|{{ [1,2,3][5] }}|{{ l[-1] }}|{{ l[1:2] }}|{{ (1,2,3)[1:] }}|{{ l[:-1] }}|{{ l[::-2] }}",
     "[2, 3, 4]|[3, 2, 1]||2|[1]|(2, 3)|[3, 1]|[2, 3]"},
    {"{{ 1 < 2 < 3 }}|{{ 3 > 2 > 2 }}|{{ 1 == 1.0 }}|{{ true == 1 }}|{{ 'a' in 'abc' }}|{{ 2 not in [1,2] }}|{{ 'k' in {'k': 1} }}|{{ [1,2] == [1,2] }}|{{ (1,2) == [1,2] }}|{{ none == none }}|{{ 'a' != 'b' }}|{{ 'abc' < 'abd' }}|{{ [1,2] < [1,3] }}",
     "True|False|True|True|True|False|True|True|False|True|True|True|True"},
    {"{{ x is defined }}|{{ y is undefined }}|{{ y is defined }}|{{ nul is none }}|{{ nul is not none }}|{{ y == y }}|{{ y == none }}|{{ 'a' in y }}",
     "True|True|False|True|False|True|False|False"},
    {"{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ not 0 }}|{{ '' or none }}|{{ 'a' if false else 'b' }}|[{{ 'a' if false }}]|{{ [] or [1] }}|{{ 0 and 1 }}|{{ not x is defined }}",
     "x|y|True|None|b|[]|[1]|0|False"},
    {"{{ [1, 'a', none, true, 1.5] }}|{{ {'a': 1, 'b': [1, 2]} }}|{{ (1,) }}|{{ () }}|{{ ('a', 'b') }}|{{ [\"x'y\", 'a\"b', 'c\\nd', \"both'\\\"\"] }}|{{ {'a': {'b': none}} }}",
     "[1, 'a', None, True, 1.5]|{'a': 1, 'b': [1, 2]}|(1,)|()|('a', 'b')|[\"x'y\", 'a\"b', 'c\\nd', 'both\\'\"']|{'a': {'b': None}}"},
    {"{{ d|tojson }}|{{ d|tojson(indent=2) }}|{{ {'a': [1, {'b': none}], 'c': '\\u00e9\"\\n\\t\\\\'}|tojson }}|{{ [] | tojson(indent=4) }}|{{ {} | tojson(indent=4) }}",
     "{\"b\": 1, \"a\": 2}|{\n  \"b\": 1,\n  \"a\": 2\n}|{\"a\": [1, {\"b\": null}], \"c\": \"\303\251\\\"\\n\\t\\\\\"}|[]|{}"},
    {"{{ 'h\\u00e9\\U0001F600'|tojson(ensure_ascii=true) }}|{{ {'b':1,'a':2}|tojson(sort_keys=true) }}|{{ 1.0|tojson }}|{{ {1: 2, none: 3, true: 4, 1.5: 5}|tojson }}|{{ [1,[2,[3]]]|tojson(indent='  ') }}|{{ (1,2)|tojson }}|{{ d|tojson(separators=(',', ':')) }}",
     "\"h\\u00e9\\ud83d\\ude00\"|{\"a\": 2, \"b\": 1}|1.0|{\"1\": 4, \"null\": 3, \"1.5\": 5}|[\n  1,\n  [\n    2,\n    [\n      3\n    ]\n  ]\n]|[1, 2]|{\"b\":1,\"a\":2}"},
    {"{{ users|tojson(indent=4) }}",
     "[\n    {\n        \"name\": \"b\",\n        \"n\": 2,\n        \"role\": \"admin\"\n    },\n    {\n        \"name\": \"A\",\n        \"n\": 1,\n        \"role\": \"user\"\n    },\n    {\n        \"name\": \"c\",\n        \"n\": 3\n    }\n]"},
    {"{{ big }}|{{ big|tojson }}|{{ neg|abs }}|{{ -2.5|abs }}|{{ f|int }}|{{ '42'|int }}|{{ ' 4.7 '|int }}|{{ 'x'|int }}|{{ 'x'|int(7) }}|{{ '0x1A'|int(base=16) }}|{{ '1_000'|int }}|{{ '3.5'|float }}|{{ 'nan'|float }}|{{ 'x'|float }}|{{ 3|float }}",
     "9007199254740993|9007199254740993|3|2.5|2|42|4|0|7|26|1000|3.5|nan|0.0|3.0"},
    {"{{ s|trim }}|{{ s|upper }}|{{ s|lower }}|{{ 'hello WORLD'|capitalize }}|{{ 'hello wOrld-foo (bar) [baz]'|title }}|{{ s|length }}|{{ l|count }}|{{ l|first }}|{{ l|last }}|{{ 'xyz'|first }}|{{ empty|first }}|{{ d|first }}",
     "Hello World|  HELLO WORLD  |  hello world  |Hello world|Hello World-Foo (Bar) [Baz]|15|3|3|2|x||b"},
    {"{{ l|join }}|{{ l|join(', ') }}|{{ users|join('/', attribute='name') }}|{{ 'a-b-c'|replace('-', '+') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'abc'|replace('', '.') }}|{{ y|default('dflt') }}|{{ ''|default('e', true) }}|{{ ''|d('e') }}|{{ nul|default('z') }}",
     "312|3, 1, 2|b/A/c|a+b+c|bba|.a.b.c.|dflt|e||None"},
    {"{{ 3|string ~ 'x' }}|{{ l|list }}|{{ 'abc'|list }}|{{ d|list }}|{{ d|items|list }}|{{ d|dictsort }}|{{ d|dictsort(reverse=true) }}|{{ d|dictsort(by='value') }}|{{ {'B': 1, 'a': 2, 'c': 0}|dictsort }}|{{ {'B': 1, 'a': 2}|dictsort(true) }}",
     "3x|[3, 1, 2]|['a', 'b', 'c']|['b', 'a']|[('b', 1), ('a', 2)]|[('a', 2), ('b', 1)]|[('b', 1), ('a', 2)]|[('b', 1), ('a', 2)]|[('a', 2), ('B', 1), ('c', 0)]|[('B', 1), ('a', 2)]"},
    {"{{ users|selectattr('role', 'equalto', 'admin')|map(attribute='name')|list }}|{{ users|rejectattr('role')|map(attribute='name')|list }}|{{ users|selectattr('role')|list|length }}|{{ users|map(attribute='role', default='none')|list }}|{{ words|map('upper')|list }}|{{ [1,2,3,4]|select('odd')|list }}|{{ [1,none,2]|reject('none')|list }}|{{ [1,2,3]|select('gt', 1)|list }}|{{ [1,2,3]|select('==', 2)|list }}",
     "['b']|['c']|2|['admin', 'user', 'none']|['B', 'A', 'C', 'A']|[1, 3]|[1, 2]|[2, 3]|[2]"},
    {"{{ words|unique|list }}|{{ words|unique(case_sensitive=true)|list }}|{{ words|sort }}|{{ words|sort(case_sensitive=true) }}|{{ words|sort(reverse=true) }}|{{ users|sort(attribute='n')|map(attribute='name')|join }}|{{ l|min }}|{{ l|max }}|{{ words|max }}|{{ l|sum }}|{{ users|sum(attribute='n') }}|{{ users|min(attribute='n') }}",
     "['b', 'a', 'C']|['b', 'a', 'C']|['a', 'a', 'b', 'C']|['C', 'a', 'a', 'b']|['C', 'b', 'a', 'a']|Abc|1|3|C|6|6|{'name': 'A', 'n': 1, 'role': 'user'}"},
    {"{{ 2.5|round }}|{{ 3.5|round }}|{{ 3.14159|round(2) }}|{{ 5|round }}|{{ 2.675|round(2) }}|{{ 3.7|round(method='floor') }}|{{ 3.2|round(0, 'ceil') }}|{{ -0.5|round }}",
     "2.0|4.0|3.14|5|2.67|3.0|4.0|-0.0"},
    {"[{{ text|indent }}]|[{{ text|indent(2, true) }}]|[{{ text|indent(2, first=true, blank=true) }}]|[{{ 'a\\n'|indent }}]|[{{ ''|indent(first=true) }}]|[{{ text|indent('> ') }}]",
     "[line1\n    line2\n\n    line4]|[  line1\n  line2\n\n  line4]|[  line1\n  line2\n  \n  line4]|[a\n]|[    ]|[line1\n> line2\n\n> line4]"},
    {"{{ 'abc'|reverse }}|{{ l|reverse|list }}|{{ '<a & \"b\">'|escape }}|{{ 'x'|safe + '<y>' }}|{{ '<y>' + 'x'|safe }}|{{ ('<' ~ 'x'|safe) }}|{{ ('a'|safe + \"'\")|length }}|{{ 'one two  three'|wordcount }}|{{ d|attr('keys') is defined }}|{{ d|attr('a') }}",
     "cba|[2, 1, 3]|&lt;a &amp; &#34;b&#34;&gt;|x&lt;y&gt;|&lt;y&gt;x|<x|6|3|True|"},
    {"{{ 'a' is string }}|{{ 1 is number }}|{{ true is number }}|{{ 1 is integer }}|{{ true is integer }}|{{ 1.0 is float }}|{{ d is mapping }}|{{ l is mapping }}|{{ 'a' is iterable }}|{{ 1 is iterable }}|{{ y is iterable }}|{{ l is sequence }}|{{ 'a' is sequence }}|{{ d is sequence }}|{{ nul is sequence }}",
     "True|True|True|True|False|True|True|False|True|False|True|True|True|True|False"},
    {"{{ true is boolean }}|{{ 1 is boolean }}|{{ true is true }}|{{ 1 is true }}|{{ false is false }}|{{ 4 is even }}|{{ 3 is odd }}|{{ 9 is divisibleby(3) }}|{{ 2 is eq 2 }}|{{ 2 is ne(2) }}|{{ 1 is lt 2 }}|{{ 2 is gt 1 }}|{{ 2 is ge 2 }}|{{ 1 is le 0 }}|{{ 1 is in [1] }}|{{ 'abc' is lower }}|{{ 'ABC' is upper }}|{{ nul is sameas none }}|{{ range is callable }}|{{ d.get is callable }}|{{ 'upper' is filter }}|{{ 'odd' is test }}|{{ d.items() is iterable }}",
     "True|False|True|False|True|True|True|True|True|False|True|True|True|False|True|True|True|True|True|True|True|True|True"},
    {"[{{ '  xx  '.strip() }}][{{ 'xxhixx'.strip('x') }}][{{ '  a '.lstrip() }}][{{ ' a  '.rstrip() }}][{{ 'abcba'.rstrip('ab') }}]",
     "[xx][hi][a ][ a][abc]"},
    {"{{ 'a b  c '.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  a b  c '.split(none, 1) }}|{{ '  a b  c '.rsplit(none, 1) }}|{{ text.splitlines() }}|{{ 'x\\r\\ny\\rz\\n'.splitlines() }}|{{ ''.split() }}|{{ ''.split(',') }}",
     "['a', 'b', 'c']|['a', 'b', '', 'c']|['a', 'b,c']|['a,b', 'c']|['a', 'b  c ']|['  a b', 'c']|['line1', 'line2', '', 'line4']|['x', 'y', 'z']|[]|['']"},
    {"{{ 'abc'.startswith('a') }}|{{ 'abc'.startswith(('x', 'ab')) }}|{{ 'abc'.endswith('bc') }}|{{ 'aXbXc'.replace('X', '-') }}|{{ 'aXbXc'.replace('X', '-', 1) }}|{{ 'hi'.upper() }}|{{ 'HI'.lower() }}|{{ \"hello world's x1y\".title() }}|{{ 'hELLO'.capitalize() }}",
     "True|True|True|a-b-c|a-bXc|HI|hi|Hello World'S X1Y|Hello"},
    {"{{ u8.find('l') }}|{{ u8.rfind('l') }}|{{ 'abc'.find('z') }}|{{ 'banana'.count('an') }}|{{ 'abc'.index('c') }}|{{ ', '.join(['a', 'b']) }}|{{ '-'.join('xyz') }}|{{ '{} {}'.format(1, 'a') }}|{{ '{0}{name}{0!r}'.format('q', name=2) }}|{{ '{{}}{}'.format(3) }}",
     "2|9|-1|2|2|a, b|x-y-z|1 a|q2'q'|{}3"},
    {"{{ '123'.isdigit() }}|{{ '12a'.isdigit() }}|{{ 'ab'.isalpha() }}|{{ 'a1'.isalnum() }}|{{ ' \\n'.isspace() }}|{{ 'AB1'.isupper() }}|{{ 'ab'.islower() }}|{{ ''.isdigit() }}",
     "True|False|True|True|True|True|True|False"},
    {"{{ d.get('a') }}|{{ d.get('z') }}|{{ d.get('z', 9) }}|{{ d.items() }}|{{ d.keys() }}|{{ d.values() }}|{{ d.items()|list }}|{{ d.keys()|length }}|{{ l.index(1) }}|{{ l.count(3) }}|{{ d['a'] }}|{{ d.a }}|{{ d['items'] is defined }}|{{ nested.a.b[1] }}|{{ nested['a']['b'][0] }}|{{ users[0].name }}",
     "2|None|9|dict_items([('b', 1), ('a', 2)])|dict_keys(['b', 'a'])|dict_values([1, 2])|[('b', 1), ('a', 2)]|2|1|1|2|2|True|20|10|b"},
    {"{% if x == 1 %}one{% elif x == 2 %}two{% else %}other{% endif %}|{% if n > 10 %}big{% elif n > 3 %}mid{% else %}small{% endif %}|{% if y %}y{% else %}no-y{% endif %}",
     "one|mid|no-y"},
    {"{% for i in l %}{{ loop.index }}:{{ loop.index0 }}:{{ loop.revindex }}:{{ loop.revindex0 }}:{{ loop.first }}:{{ loop.last }}:{{ loop.length }}:{{ i }} {% endfor %}",
     "1:0:3:2:True:False:3:3 2:1:2:1:False:False:3:1 3:2:1:0:False:True:3:2 "},
    {"{% for i in empty %}x{% else %}empty{% endfor %}|{% for i in l if i > 1 %}{{ i }}/{{ loop.length }} {% endfor %}|{% for i in l if i > 5 %}x{% else %}none{% endfor %}",
     "empty|3/2 2/2 |none"},
    {"{% for i in range(10) %}{% if i == 2 %}{% continue %}{% endif %}{% if i == 5 %}{% break %}{% endif %}{{ i }}{% endfor %}|{% for i in range(3) %}{% for j in range(3) %}{% if j > i %}{% break %}{% endif %}{{ i }}{{ j }} {% endfor %}{% endfor %}",
     "0134|00 10 11 20 21 22 "},
    {"{% for a in [1,2] %}{% for b in 'xy' %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}",
     "11x 21y 1|12x 22y 2|"},
    {"{% for i in l %}{{ loop.previtem }}-{{ i }}-{{ loop.nextitem }} {{ loop.cycle('odd', 'even') }};{% endfor %}",
     "-3-1 odd;3-1-2 even;1-2- odd;"},
    {"{% set c = 0 %}{% for i in range(3) %}{{ c }}{% set c = c + 1 %}{{ c }}{% endfor %}{{ c }}",
     "0101010"},
    {"{% set ns = namespace(c=0, s='') %}{% for i in range(3) %}{% set ns.c = ns.c + i %}{% set ns.s = ns.s ~ i %}{% endfor %}{{ ns.c }}{{ ns.s }}{{ ns['c'] }}",
     "30123"},
    {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|dictsort %}{{ k }}={{ v }};{% endfor %}|{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %}|{% for k in d %}{{ k }}{% endfor %}|{% for ch in u8 %}[{{ ch }}]{% endfor %}",
     "b=1;a=2;|a=2;b=1;|37|ba|[h][\303\251][l][l][o][ ][w][\303\266][r][l][d]"},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }}|{% set t = 1, 'x' %}{{ t }}|{% set (p, q) = [3, 4] %}{{ p * q }}",
     "12|(1, 'x')|12"},
    {"{% set block %}inner {{ x }}{% endset %}[{{ block }}]|{% set up | upper %}shout {{ n }}{% endset %}{{ up }}|{% set tr | trim | upper %}  pad  {% endset %}[{{ tr }}]",
     "[inner 1]|SHOUT 5|[PAD]"},
    {"{% macro greet(name, greeting='Hello', punct='!') %}{{ greeting }}, {{ name }}{{ punct }}{% endmacro %}{{ greet('A') }}|{{ greet('B', 'Hi') }}|{{ greet('C', punct='?') }}|{{ greet(name='D', greeting='Yo') }}|{{ greet() }}",
     "Hello, A!|Hi, B!|Hello, C?|Yo, D!|Hello, !"},
    {"{% macro fact(k) %}{% if k <= 1 %}1{% else %}{{ k * fact(k - 1)|int }}{% endif %}{% endmacro %}{{ fact(6) }}",
     "720"},
    {"{% macro m() %}{% set inner = 5 %}{{ x }}{% endmacro %}{{ m() }}|{{ inner is defined }}|{% set x = 7 %}{{ m() }}",
     "|False|7"},
    {"{% filter upper %}hello {{ x }}{% endfilter %}|{% filter trim %}  spaced  {% endfilter %}|{% generation %}gen{{ x }}{% endgeneration %}",
     "HELLO 1|spaced|gen1"},
    {"{{ range(3)|list }}|{{ range(1, 10, 3)|list }}|{{ range(5, 0, -2)|list }}|{{ range(0)|list }}|{{ dict(a=1, b='x') }}|{{ namespace(a=1).a }}|{{ strftime_now('%Y-%m-%d %H:%M %b %d') }}",
     "[0, 1, 2]|[1, 4, 7]|[5, 3, 1]|[]|{'a': 1, 'b': 'x'}|1|2025-01-15 12:00 Jan 15"},
    {"a\n  {% if true %}\n  b\n  {% endif %}\nc",
     "a\n  b\nc"},
    {"a\n  {%- if true %}\n  b\n  {%- endif %}\nc   {{ x }}\n  {{- x -}}  \n d",
     "a  bc   11d"},
    {"{# comment #}\nx {# inline #} y\n  {# indented comment #}\nz {%+ if true %}+{% endif %}\n{% if true +%}\nkeep\n{% endif %}",
     "x  y\nz +\nkeep\n"},
    {"{%- for m in messages -%}\n  <{{ m.role }}>\n  {{- m.content }}\n{% endfor -%}\n{%- if add_generation_prompt %}\n<assistant>\n{% endif %}",
     "<user>hi\n<assistant>\n"},
    {"  {{ x }}  {% if true %}T{% endif %}  \n    {% if true %}    lead{% endif %}\nend",
     "  1  T  \n    leadend"},
    {"{{ y }}|{{ y|length }}|{% for i in y %}x{% endfor %}|{{ y|list }}|{{ y|trim }}|{{ y|upper }}|{{ d.missing }}|{{ none.x }}|{{ y is mapping }}|{{ y ~ 'z' }}|{{ y|join }}|{{ y|default('d') }}|{{ y|items|list }}",
     "|0||[]|||||False|z||d|[]"},
    {"{{ y.a }}",
     NULL /* UndefinedError: 'y' is undefined */},
    {"{{ y + 1 }}",
     NULL /* UndefinedError: 'y' is undefined */},
    {"{{ d.missing.x }}",
     NULL /* UndefinedError: 'dict object' has no attribute 'missing' */},
    {"{{ y[0] }}",
     NULL /* UndefinedError: 'y' is undefined */},
    {"{{ y() }}",
     NULL /* UndefinedError: 'y' is undefined */},
    {"{{ 'a' + 1 }}",
     NULL /* TypeError: can only concatenate str (not "int") to str */},
    {"{{ 1 / 0 }}",
     NULL /* ZeroDivisionError: division by zero */},
    {"{{ 1 // 0 }}",
     NULL /* ZeroDivisionError: integer division or modulo by zero */},
    {"{{ 'a' < 1 }}",
     NULL /* TypeError: '<' not supported between instances of 'str' and 'int' */},
    {"{{ raise_exception('boom') }}",
     NULL /* Exception: boom */},
    {"{{ l.append(4) }}",
     NULL /* SecurityError: access to attribute 'append' of 'list' object is unsafe. */},
    {"{% set _ = d.update({'z': 1}) %}",
     NULL /* SecurityError: access to attribute 'update' of 'dict' object is unsafe. */},
    {"{{ 1|nope }}",
     NULL /* TemplateAssertionError: No filter named 'nope'. */},
    {"{% if false %}{{ 1|nope }}{% endif %}ok",
     "ok"},
    {"{{ 1 if true else 2|nope }}",
     "1"},
    {"{% for i in l %}{{ i|nope }}{% endfor %}",
     NULL /* TemplateAssertionError: No filter named 'nope'. */},
    {"{% if true %}{{ 1|nope }}{% endif %}",
     NULL /* TemplateRuntimeError: No filter named 'nope' found. */},
    {"{{ 1 is nope }}",
     NULL /* TemplateAssertionError: No test named 'nope'. */},
    {"{% for %}",
     NULL /* TemplateSyntaxError: Expected an expression, got 'end of statement block' */},
    {"{{ x",
     NULL /* TemplateSyntaxError: unexpected end of template, expected 'end of print statement */},
    {"{{ 'abc }}",
     NULL /* TemplateSyntaxError: unexpected char "'" at 3 */},
    {"{% endif %}",
     NULL /* TemplateSyntaxError: Encountered unknown tag 'endif'. */},
    {"{% break %}",
     NULL /* SyntaxError: 'break' outside loop (<template>, line 11) */},
    {"{% if x %}open",
     NULL /* TemplateSyntaxError: Unexpected end of template. Jinja was looking for the follow */},
    {"{{ y|tojson }}",
     NULL /* TypeError: Object of type Undefined is not JSON serializable */},
    {"{{ l|map('string')|tojson }}",
     NULL /* TypeError: Object of type generator is not JSON serializable */},
    {"{{ (l|select('odd'))|length }}",
     NULL /* TypeError: object of type 'generator' has no len() */},
    {"{{ [1][0:1:0] }}",
     NULL /* ValueError: slice step cannot be zero */},
    {"{{ range(200000)|length }}",
     NULL /* OverflowError: Range too big. The sandbox blocks ranges larger than MAX_RAN */},
    {"{{ 2 ** 62 }}",
     "4611686018427387904"},
    {"{{ d.items()|tojson }}",
     NULL /* TypeError: Object of type dict_items is not JSON serializable */},
    {"{% set x = 5 %}{{ x }}{% macro f() %}{{ x }}{% endmacro %}{% set x = 6 %}{{ f() }}",
     "56"},
    {"{% for m in messages %}{% if loop.first and m.role == 'user' %}{{ bos_token + m.content + eos_token }}{% endif %}{% endfor %}",
     "<s>hi</s>"},
    {"{{ messages[0]['content'] }}|{{ messages|length }}|{{ tools }}|{{ documents is none }}|{{ add_generation_prompt }}",
     "hi|1|None|True|True"},
    {"{{ 'Hello'|upper|lower|capitalize }}|{{ (users|first).name }}|{{ users|map(attribute='n')|sum }}|{{ - 3|abs }}|{{ not true == false }}",
     "Hello|b|6|3|True"},
    {"{%- set sys = messages[0].content if messages[0].role == 'system' else 'default sys' -%}\n{{ sys }}",
     "default sys"},
    {"{{ \"%s\" }}|{{ '50%' }}|{{ 'a\\\\b' }}|{{ 'q\\'q' }}|{{ \"q\\\"q\" }}",
     "%s|50%|a\\b|q'q|q\"q"},
    {"{{ 1 < 2 and 2 < 3 or false }}|{{ '1' + 2 ~ 3 }}|{{ 2 * 3 ~ 4 }}|{{ 'x' ~ (1 + 2) }}|{{ -2 ** 2 }}|{{ (-2) ** 2 }}|{{ 2 ** -1 }}",
     "True|123|64|x3|4|4|0.5"},
    {"{{ [1,2,3]|selectattr('real') is defined }}|{{ users|selectattr('n', 'gt', 1)|map(attribute='name')|join(',') }}|{{ users|rejectattr('n', 'in', [1, 3])|map(attribute='name')|first }}",
     "True|b,c|b"},
    {"{% set lst = [3, 1, 2] %}{{ lst|sort|first }}|{{ (lst + [0])|sort|last }}|{{ lst * 2 }}|{{ lst[1:] + lst[:1] }}|{{ lst|length > 2 }}",
     "1|3|[3, 1, 2, 3, 1, 2]|[1, 2, 3]|True"},
    {"{{ -l|length }}",
     NULL /* TypeError: bad operand type for unary -: 'list' */},
    {"{{ 1 + 2 ~ 3 }}",
     NULL /* TypeError: unsupported operand type(s) for +: 'int' and 'str' */},
    {"{% set ns = namespace(items=[], s='') %}{% for m in messages + messages %}{% set ns.items = ns.items + [m.content ~ loop.index] %}{% set ns.s = ns.s ~ m.role ~ loop.index %}{% endfor %}{{ ns.items }}{{ ns.s }}",
     "['hi1', 'hi2']user1user2"},
    {"{% set ns = namespace(s='') %}{% macro add(v) %}{% set ns.s = ns.s ~ v ~ ',' %}{{ v }}{% endmacro %}{% for i in range(4) %}{{ add(i ~ 'z') }}{% set tmp = 'x' ~ i %}{% endfor %}|{{ ns.s }}",
     "0z1z2z3z|0z,1z,2z,3z,"},
    {"{% set ns = namespace(d=none, l=loop) %}{% for a in [[1, 2], [3, 4]] %}{% for b in a %}{% if b == 3 %}{% set ns.d = {'k': a, 'v': b ~ '!'} %}{% endif %}{% endfor %}{% endfor %}{{ ns.d }}",
     "{'k': [3, 4], 'v': '3!'}"},
    {"{% set outer = 'o' %}{% for i in range(2) %}{% set outer = outer ~ i %}{% macro m() %}{{ outer }}{% endmacro %}{{ m() }}{% endfor %}{{ outer }}",
     "o0o1o"},
    {"{% set x %}{% for i in range(3) %}{{ i }}{% set ns2 = namespace(a=i ~ 'q') %}{{ ns2.a }}{% endfor %}{% endset %}{{ x }}|{{ x|length }}",
     "00q11q22q|9"},
    {"{%- for message in messages %}\n{%- if message.role == 'user' %}\n{{- '<|user|>\\n' + message.content | trim + '<|end|>\\n' }}\n{%- endif %}\n{%- endfor %}\n{%- if add_generation_prompt %}\n{{- '<|assistant|>\\n' }}\n{%- endif %}",
     "<|user|>\nhi<|end|>\n<|assistant|>\n"},
    {"{{ x }}{% macro m() %}{{ x }}{% endmacro %}{{ m() }}{% set x = 7 %}{{ m() }}{{ x }}|{% macro m2() %}{{ n }}{% endmacro %}{{ m2() }}{% if false %}{% set n = 7 %}{% endif %}{{ m2() }}",
     "1177|55"},
    {"{% for i in [1] %}[{{ x }}]{% endfor %}{% set x = 3 %}{{ x }}|{% for i in [1,2] %}{{ n }}{% set n = 2 %}{{ n }}{% endfor %}{{ n }}",
     "[]3|52525"},
    {"{% set messages = messages + [{'role': 'x', 'content': 'y'}] %}{{ messages|length }}|{% for m in messages %}{{ bos_token }}{% endfor %}{% set bos_token = 'B' %}{{ bos_token }}",
     "2|B"},
    {"{% macro m() %}[{{ f }}]{% endmacro %}{{ m() }}{% set f = 1 %}{{ m() }}{% set l, t = 1, 2 %}{% for i in [0] %}{{ l }}{% endfor %}",
     "[][1]1"},
    {"{{ '%s and %s' % ('a', 1) }}|{{ '%d%%' % 50 }}|{{ '%5.2f|%-4s|%04d|%+d' % (3.14159, 'ab', 7, 3) }}|{{ '%(a)s-%(b)r' % {'a': 1, 'b': 'x'} }}|{{ '%x %X %o %e %g %G' % (255, 255, 8, 12345.678, 0.0001, 1e20) }}|{{ '%s'|format('q') }}|{{ '%s=%s'|format('k', [1]) }}|{{ '%c%c' % (72, 105) }}|{{ '%.2s' % 'hello' }}|{{ '%r' % \"it's\" }}|{{ '%s' % none }}|{{ '%d' % 3.9 }}|{{ '%x' % -255 }}|{{ '%(n)s'|format(n=2) }}",
     "a and 1|50%| 3.14|ab  |0007|+3|1-'x'|ff FF 10 1.234568e+04 0.0001 1E+20|q|k=[1]|Hi|he|\"it's\"|None|3|-ff|2"},
    {"{% with a = 1, b = x %}{{ a }}{{ b }}{% set c = 3 %}{{ c }}{% endwith %}[{{ a }}{{ c }}]|{% with x = x + 1, y = x %}{{ x }}{{ y }}{% endwith %}{{ x }}",
     "113[]|211"},
    {"{{ '%s %s' % ('a',) }}",
     NULL /* TypeError: not enough arguments for format string */},
    {"{{ '%d' % 'x' }}",
     NULL /* TypeError: %d format: a real number is required, not str */},
    {"{{ '%s' % (1, 2) }}",
     NULL /* TypeError: not all arguments converted during string formatting */},
    {"{% set g = [1,2,3]|select %}{{ g|list }}{{ g|list }}|{% set h = [1,2,3,4]|map('string') %}{{ h|first }}{{ h|list }}|{% set k = [1,2,3,4]|select %}{{ 2 in k }}{{ k|list }}|{% set m = [1,2,3,4]|select %}{% for i in m %}{% if i == 2 %}{% break %}{% endif %}{% endfor %}{{ m|list }}|{{ 'y' if []|select else 'n' }}|{% set e = d|items %}{% for a, b in e %}{{ a }}{% endfor %}{% for a, b in e %}{{ a }}{% endfor %}",
     "[1, 2, 3][]|1['2', '3', '4']|True[3, 4]|[3, 4]|y|ba"},
    {"{{ 0x1F }}|{{ 0o17 }}|{{ 0b101 }}|{{ 0 }}|{{ 00 }}|{{ 1_000 }}|{{ 0.5 }}|{{ 007.5 }}|{{ 10 ** -400 }}|{{ 2 ** 0.5 }}|{{ namespace(a=1, b='x') }}|{{ 2 ** 62 }}",
     "31|15|5|0|0|1000|0.5|7.5|0.0|1.4142135623730951|<Namespace {'a': 1, 'b': 'x'}>|4611686018427387904"},
    {"{% for k, in [[1]] %}{{ k }}{% endfor %}",
     NULL /* TemplateSyntaxError: expected token 'in', got '[' */},
    {"{% set a, = [1] %}{{ a }}",
     NULL /* TemplateSyntaxError: unexpected '=' */},
    {"{{ range(050)|length }}",
     NULL /* TemplateSyntaxError: expected token ',', got 'integer' */},
    {"{{ 1.5 ** 10000 }}",
     NULL /* OverflowError: (34, 'Numerical result out of range') */},
    {"{% for k in [[1]], %}{{ k }}{% endfor %}",
     "[[1]]"},
    {"{% set v = [1,2,3] %}{{ v[[1]:4] }}",
     NULL /* TypeError: slice indices must be integers or None or have an __index__  */},
    {"{% set v = 'hello' %}{{ v[none:2] }}{{ v[1:none:none] }}",
     "heello"},
    {"{{ '{0}{}'.format(1, 2) }}",
     NULL /* ValueError: cannot switch from manual field specification to automatic f */},
    {"{{ '{a b}'.format(1) }}|{{ '{a b}'.format(**{}) }}",
     NULL /* KeyError: 'a b' */},
    {"{{ '{00}{1}{0}'.format('x', 'y') }}|{{ 'abc' % [1] }}|{{ '%s' % [1] }}|{{ 'abc' % {'a': 1} }}|{{ '%(a)s' % {'a': 1} }}|{{ u|selectattr('x', 'nosuchtest')|list }}|{{ []|map('nosuchfilter')|list }}",
     "xyx|abc|[1]|abc|1|[]|[]"},
    {"{{ 'abc' % 'x' }}",
     NULL /* TypeError: not all arguments converted during string formatting */},
    {"{{ 1 is sameas }}",
     NULL /* TypeError: test_sameas() missing 1 required positional argument: 'other */},
    {"{{ [1]|map('nosuchfilter')|list }}",
     NULL /* TemplateRuntimeError: No filter named 'nosuchfilter'. */},
    {"a{#",
     "a"},
    {"{{ x[1:2, 3] }}",
     NULL /* SyntaxError: invalid syntax (<template>, line 12) */},
    {"{% macro m() %}{% endmacro m %}",
     NULL /* TemplateSyntaxError: expected token 'end of statement block', got 'm' */},
    {"{{ 'ab'[1, 2] }}|{{ d[('a', 1)] }}",
     "|"},
    {"{{ 'abc'[] }}|{{ '' % nope }}|{{ '%s!' % nope }}|{{ '{!s}{!r}'.format('a', 'b') }}",
     "||!|a'b'"},
    {"{{ '{!x}'.format(1) }}",
     NULL /* ValueError: Unknown conversion specifier x */},
    {"{{ '{!rr}'.format(1) }}",
     NULL /* ValueError: expected ':' after conversion specifier */},
    {"{{ '%d' % nope }}",
     NULL /* UndefinedError: 'nope' is undefined */},
};

static long render(const char *tmpl, const char *msgs, const char *tools, const char *vars, unsigned flags,
                   char *err, size_t errcap)
{
    chat_tmpl_input in;
    memset(&in, 0, sizeof in);
    in.messages_json = msgs;
    in.messages_len = strlen(msgs);
    in.tools_json = tools;
    in.tools_len = tools ? strlen(tools) : 0;
    in.vars_json = vars;
    in.vars_len = vars ? strlen(vars) : 0;
    in.bos_token = "<s>";
    in.eos_token = "</s>";
    in.add_generation_prompt = 1;
    in.flags = flags;
    in.now = fixed_now();
    return chat_tmpl_render_src(tmpl, strlen(tmpl), &in, g_mem, MEM_CAP, g_out, OUT_CAP, err, errcap);
}

static void test_units(void)
{
    int pass = 0, n = (int)(sizeof UNITS / sizeof UNITS[0]);
    for (int i = 0; i < n; i++) {
        char err[256];
        long r = render(UNITS[i].tmpl, UNIT_MSGS, NULL, UNIT_VARS, 0, err, sizeof err);
        int ok;
        if (!UNITS[i].want) {
            ok = r < 0;
            T_CHECK(ok, "unit %d errors like Jinja2 (%s)", i, r < 0 ? err : "rendered");
        } else {
            ok = r >= 0 && (size_t)r == strlen(UNITS[i].want) && memcmp(g_out, UNITS[i].want, (size_t)r) == 0;
            T_CHECK(ok, "unit %d: %.60s", i, UNITS[i].tmpl);
            if (!ok) {
                if (r < 0) T_NOTE("error: %s", err);
                else first_diff(g_out, (size_t)r, UNITS[i].want, strlen(UNITS[i].want));
            }
        }
        pass += ok;
    }
    T_NOTE("units: %d/%d agree with Jinja2", pass, n);
}

/* ---- 3. error codes, limits, hostile templates ------------------------------ */

static long render_lim(const char *tmpl, size_t memcap, size_t outcap, uint32_t steps, char *err, size_t errcap)
{
    chat_tmpl_input in;
    memset(&in, 0, sizeof in);
    in.messages_json = UNIT_MSGS;
    in.messages_len = strlen(UNIT_MSGS);
    in.max_steps = steps;
    return chat_tmpl_render_src(tmpl, strlen(tmpl), &in, g_mem, memcap, g_out, outcap, err, errcap);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_errors(void)
{
    char err[512];
    long r;
    r = render("{% for %}", UNIT_MSGS, NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_SYNTAX && strstr(err, "line 1"), "syntax error code and line (%ld: %s)", r, err);
    r = render("a\nb\n{{ x + }}", UNIT_MSGS, NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_SYNTAX && strstr(err, "line 3"), "syntax error on line 3 (%s)", err);
    r = render("{{ 1|nope }}", UNIT_MSGS, NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_SYNTAX && strstr(err, "nope"), "unknown filter at compile time (%s)", err);
    r = render("x\n{{ raise_exception('Only user and assistant roles!') }}", UNIT_MSGS, NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_RAISED && strcmp(err, "Only user and assistant roles!") == 0,
            "raise_exception: code and message (%s)", err);
    r = render("\n\n{{ foo.bar }}", UNIT_MSGS, NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_RENDER && strstr(err, "line 3") && strstr(err, "foo"), "undefined access (%s)", err);
    r = render("{{ messages[0].content.nope() }}", UNIT_MSGS, NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_RENDER && strstr(err, "nope"), "calling a missing method (%s)", err);
    r = render("{% include 'x' %}", UNIT_MSGS, NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_UNSUPPORTED, "include is unsupported (%s)", err);
    r = render("{{ l.append(1) }}", UNIT_MSGS, NULL, UNIT_VARS, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_RENDER && strstr(err, "unsafe"), "sandbox refuses list.append (%s)", err);
    r = render("{{ messages }}", "{\"role\":1}", NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_INPUT, "messages must be an array (%s)", err);
    r = render("{{ messages }}", "[{\"role\":", NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_INPUT, "messages must be JSON (%s)", err);
    r = render("{{ tools }}", "[]", "{bad", NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_INPUT, "tools must be JSON (%s)", err);
    r = render("{{ x }}", "[]", NULL, "[1]", 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_INPUT, "vars must be an object (%s)", err);
    for (int code = -8; code <= 0; code++)
        T_CHECK(chat_tmpl_strerror(code) && chat_tmpl_strerror(code)[0], "strerror(%d)", code);
}

static void test_limits(void)
{
    char err[512];
    long r;
    double t0 = now_s();
    r = render_lim("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
                   MEM_CAP, OUT_CAP, 0, err, sizeof err);
    double dt = now_s() - t0;
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "10^10 iterations stop at the step limit (%s)", err);
    T_NOTE("step limit (%u steps) reached after %.3f s", CHAT_TMPL_STEPS_DEFAULT, dt);
    T_CHECK(dt < 5.0, "step limit reached quickly (%.2f s)", dt);
    r = render_lim("{% for i in range(1000) %}x{% endfor %}", MEM_CAP, OUT_CAP, 100, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "max_steps is honoured (%s)", err);
    r = render_lim("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "unbounded macro recursion refused (%s)", err);

    /* deep nesting refused at compile time */
    static char deep[16384];
    size_t o = 0;
    o += (size_t)snprintf(deep + o, sizeof deep - o, "{{ ");
    for (int i = 0; i < 500; i++) deep[o++] = '(';
    deep[o++] = '1';
    for (int i = 0; i < 500; i++) deep[o++] = ')';
    o += (size_t)snprintf(deep + o, sizeof deep - o, " }}");
    deep[o] = 0;
    r = render_lim(deep, MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "500 nested parentheses refused (%s)", err);
    o = 0;
    for (int i = 0; i < 300; i++) o += (size_t)snprintf(deep + o, sizeof deep - o, "{%% if true %%}");
    for (int i = 0; i < 300; i++) o += (size_t)snprintf(deep + o, sizeof deep - o, "{%% endif %%}");
    r = render_lim(deep, MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "300 nested if blocks refused (%s)", err);
    o = 0;
    o += (size_t)snprintf(deep + o, sizeof deep - o, "{{ ");
    for (int i = 0; i < 3000; i++) o += (size_t)snprintf(deep + o, sizeof deep - o, "not ");
    o += (size_t)snprintf(deep + o, sizeof deep - o, "1 }}");
    r = render_lim(deep, MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "3000 nested 'not' refused (%s)", err);
    o = 0;
    for (int i = 0; i < 60; i++) o += (size_t)snprintf(deep + o, sizeof deep - o, "{%% if true %%}(");
    for (int i = 0; i < 60; i++) o += (size_t)snprintf(deep + o, sizeof deep - o, "){%% endif %%}");
    r = render_lim(deep, MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == 120, "60 nested if blocks are fine (%ld %s)", r, err);

    /* left-deep chains are nesting too: 1 + 1 + ... and a.b.c... */
    static char chain[1 << 20];
    o = (size_t)snprintf(chain, sizeof chain, "{{ 1");
    for (int i = 0; i < 100000; i++) o += (size_t)snprintf(chain + o, sizeof chain - o, "+1");
    snprintf(chain + o, sizeof chain - o, " }}");
    r = render_lim(chain, MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "1+1+... with 100000 terms refused (%s)", err);
    o = (size_t)snprintf(chain, sizeof chain, "{{ messages");
    for (int i = 0; i < 100000; i++) o += (size_t)snprintf(chain + o, sizeof chain - o, ".a");
    snprintf(chain + o, sizeof chain - o, " }}");
    r = render_lim(chain, MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "a.a.a... 100000 deep refused (%s)", err);
    o = (size_t)snprintf(chain, sizeof chain, "{%% set x | trim ");
    for (int i = 0; i < 100000; i++) o += (size_t)snprintf(chain + o, sizeof chain - o, "|trim");
    snprintf(chain + o, sizeof chain - o, " %%}x{%% endset %%}");
    r = render_lim(chain, MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "a 100000-filter set block refused (%s)", err);
    r = render_lim("{{ 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19 + 20 }}",
                   MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == 3 && memcmp(g_out, "210", 3) == 0, "a 20-term sum is fine");

    /* nesting built at run time: a list inside a list inside ... */
    r = render_lim("{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}",
                   MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "printing a 5000-deep list refused (%s)", err);
    r = render_lim("{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|tojson }}",
                   MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "tojson of a 5000-deep list refused (%s)", err);
    r = render_lim("{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l == ns.l }}",
                   MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_LIMIT, "comparing 5000-deep lists refused (%s)", err);

    /* output and memory */
    r = render_lim("{% for i in range(100000) %}{{ 'xxxxxxxxxx' * 10 }}{% endfor %}", MEM_CAP, 1 << 16, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_OUTPUT, "output larger than the buffer refused (%s)", err);
    r = render_lim("{{ 'x' * 100 }}", MEM_CAP, 100, 0, err, sizeof err);
    T_CHECK(r == 100 && g_out[0] == 'x', "output exactly filling the buffer (%ld)", r);
    r = render_lim("{{ 'x' * 101 }}", MEM_CAP, 100, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_OUTPUT, "one byte more is refused (%s)", err);
    r = render_lim("{% set ns = namespace(s='') %}{% for i in range(20000) %}{% set ns.s = ns.s ~ 'xxxxxxxxxxxxxxxxxxxx' %}{% endfor %}{{ ns.s|length }}",
                   1 << 20, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_NOMEM, "quadratic string building runs out of a 1 MiB arena (%s)", err);
    r = render_lim("{{ 'x' * 100000000 }}", 1 << 20, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_NOMEM || r == CHAT_TMPL_ERR_LIMIT, "100 MB string refused (%s)", err);
    r = render_lim("{{ range(100001)|length }}", MEM_CAP, OUT_CAP, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_RENDER, "range() capped at 100000 (%s)", err);

    /* loops over messages reuse memory: 2000 messages in a small arena */
    static char big[1 << 20];
    size_t b = 0;
    big[b++] = '[';
    for (int i = 0; i < 2000; i++)
        b += (size_t)snprintf(big + b, sizeof big - b, "%s{\"role\":\"%s\",\"content\":\"message number %d with some text\"}",
                              i ? "," : "", i % 2 ? "assistant" : "user", i);
    big[b++] = ']';
    big[b] = 0;
    chat_tmpl_input in;
    memset(&in, 0, sizeof in);
    in.messages_json = big;
    in.messages_len = b;
    in.add_generation_prompt = 1;
    const char *tmpl = "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] | trim + '<|im_end|>' + '\\n' }}{% endfor %}";
    long want = chat_tmpl_render_src(tmpl, strlen(tmpl), &in, g_mem, MEM_CAP, g_out, OUT_CAP, err, sizeof err);
    size_t lo = 0, hi = MEM_CAP;
    while (lo + 1 < hi) {   /* smallest memory that works */
        size_t mid = (lo + hi) / 2;
        r = chat_tmpl_render_src(tmpl, strlen(tmpl), &in, g_mem, mid, g_out, OUT_CAP, err, sizeof err);
        if (r == want) hi = mid;
        else lo = mid;
    }
    T_NOTE("2000 messages (%zu bytes of JSON, %ld bytes out) render with %zu bytes of memory (%.1fx the input)",
           b, want, hi, (double)hi / (double)b);
    T_CHECK(want > (long)b / 2 && hi < 6 * b, "2000 messages render in less than 6x the input (%zu)", hi);
    /* per-iteration memory is reused: each iteration builds a range of up
     * to 2000 items (32 KB) and a namespace; 2000 iterations would need
     * 64 MB without reuse */
    tmpl = "{% for m in messages %}{% set prev = namespace(role=none) %}"
           "{% for j in range(loop.index0 - 1, -1, -1) %}{% set prev.role = messages[j].role ~ '!' %}{% break %}{% endfor %}"
           "{{ m.role[0] }}{{ prev.role }}{% endfor %}";
    r = chat_tmpl_render_src(tmpl, strlen(tmpl), &in, g_mem, 5 * b + (256 << 10), g_out, OUT_CAP, err, sizeof err);
    T_CHECK(r > 0 && memcmp(g_out, "uNoneauser!", 11) == 0, "loop memory is reused (%ld: %s)", r, r < 0 ? err : "");
}

static void test_compile_memory(void)
{
    char err[256];
    const chat_tmpl *t;
    char path[1024];
    size_t slen;
    if (!t_shared(path, sizeof path, "templates/Qwen-Qwen3-0.6B.jinja")) {
        T_SKIP(T_NO_SHARED, "compile memory");
        return;
    }
    char *src = slurp(path, &slen);
    int rc = chat_tmpl_compile(src, slen, g_mem, MEM_CAP, &t, err, sizeof err);
    T_CHECK(rc == 0, "compile Qwen3 template (%s)", err);
    size_t need = chat_tmpl_size(t);
    T_NOTE("Qwen3 template: %zu bytes source, %zu bytes compiled (%.1fx)", slen, need, (double)need / (double)slen);
    T_CHECK(need <= CHAT_TMPL_COMPILE_BOUND(slen), "compiled size within CHAT_TMPL_COMPILE_BOUND");
    /* every smaller memory size fails cleanly (fault injection) */
    int clean = 1;
    for (size_t cap = 0; cap < need; cap += (cap < 256 ? 1 : 97)) {
        rc = chat_tmpl_compile(src, slen, g_mem, cap, &t, err, sizeof err);
        if (rc != CHAT_TMPL_ERR_NOMEM) { clean = 0; T_NOTE("cap %zu: rc %d", cap, rc); break; }
    }
    T_CHECK(clean, "every compile memory below %zu bytes gives NOMEM", need);
    /* render memory: every smaller scratch size fails cleanly too */
    rc = chat_tmpl_compile(src, slen, g_mem, MEM_CAP, &t, err, sizeof err);
    need = chat_tmpl_size(t);
    chat_tmpl_input in;
    memset(&in, 0, sizeof in);
    in.messages_json = UNIT_MSGS;
    in.messages_len = strlen(UNIT_MSGS);
    in.add_generation_prompt = 1;
    long want = chat_tmpl_render(t, &in, g_mem + need, MEM_CAP - need, g_out, OUT_CAP, err, sizeof err);
    T_CHECK(want > 0, "render Qwen3 (%s)", err);
    size_t lo = 0, hi = MEM_CAP - need;
    while (lo + 1 < hi) {   /* smallest scratch that works */
        size_t mid = (lo + hi) / 2;
        long r = chat_tmpl_render(t, &in, g_mem + need, mid, g_out, OUT_CAP, err, sizeof err);
        if (r == want) hi = mid;
        else lo = mid;
    }
    T_NOTE("Qwen3 render of a one-message chat needs %zu bytes of scratch", hi);
    clean = 1;
    for (size_t cap = 0; cap < hi; cap += (cap < 512 ? 1 : 61)) {
        long r = chat_tmpl_render(t, &in, g_mem + need, cap, g_out, OUT_CAP, err, sizeof err);
        if (r != CHAT_TMPL_ERR_NOMEM) { clean = 0; T_NOTE("scratch %zu: %ld %s", cap, r, err); break; }
    }
    T_CHECK(clean, "every scratch size below that gives NOMEM");
    free(src);
}

/* CHAT_TMPL_COMPILE_BOUND holds for dense adversarial sources too. */
static void test_compile_bound(void)
{
    static const char *const unit[] = {"{{a}}", "1,", ".a", "{%if a%}{%endif%}", "{{a(b,c,d)}}", "x|a", "{#c#}", "a~", "(a,b),"};
    static const char *const head[] = {"", "{{[", "{{b", "", "", "{{y", "", "{{", "{{["};
    static const char *const tail[] = {"", "1]}}", "}}", "", "", "}}", "", "a}}", "1]}}"};
    static char src[1 << 14];   /* the bound of this must fit in MEM_CAP */
    char err[256];
    const chat_tmpl *t;
    for (size_t u = 0; u < sizeof unit / sizeof unit[0]; u++) {
        size_t o = (size_t)snprintf(src, sizeof src, "%s", head[u]);
        while (o + strlen(unit[u]) + 8 < sizeof src) o += (size_t)snprintf(src + o, sizeof src - o, "%s", unit[u]);
        o += (size_t)snprintf(src + o, sizeof src - o, "%s", tail[u]);
        int rc = chat_tmpl_compile(src, o, g_mem, MEM_CAP, &t, err, sizeof err);
        size_t need = rc == 0 ? chat_tmpl_size(t) : 0;
        /* the tokens also need room while parsing: retry at the bound */
        int rc2 = chat_tmpl_compile(src, o, g_mem, CHAT_TMPL_COMPILE_BOUND(o), &t, err, sizeof err);
        T_CHECK(rc == rc2 && (rc != 0 || need <= CHAT_TMPL_COMPILE_BOUND(o)),
                "compile bound for %zu bytes of \"%s\" (%.1f bytes/byte, rc %d %d: %s)", o, unit[u],
                (double)need / (double)o, rc, rc2, err);
    }
}

/* Every prefix of a real template compiles or fails cleanly, and renders. */
static void test_prefixes(void)
{
    char path[1024], err[256];
    size_t slen;
    if (!t_shared(path, sizeof path, "templates/HuggingFaceTB-SmolLM3-3B.jinja")) {
        T_SKIP(T_NO_SHARED, "template prefixes");
        return;
    }
    char *src = slurp(path, &slen);
    int ok = 0, bad = 0;
    for (size_t n = 0; n <= slen; n++) {
        chat_tmpl_input in;
        memset(&in, 0, sizeof in);
        in.messages_json = UNIT_MSGS;
        in.messages_len = strlen(UNIT_MSGS);
        long r = chat_tmpl_render_src(src, n, &in, g_mem, MEM_CAP, g_out, OUT_CAP, err, sizeof err);
        if (r >= 0) ok++;
        else bad++;
        if (r < CHAT_TMPL_ERR_UNSUPPORTED) { T_NOTE("prefix %zu: bad code %ld", n, r); break; }
    }
    T_CHECK(ok + bad == (int)slen + 1, "all %zu prefixes of SmolLM3's template handled (%d render, %d errors)", slen + 1, ok, bad);
    free(src);
}

/* ---- 4. llama.cpp flags, ChatML fallback, threads ----------------------------- */

static void test_flags(void)
{
    char err[256];
    long r;
    r = render("{{ bos_token }}x{{ eos_token }}", "[]", NULL, NULL, CHAT_TMPL_STRIP_BOS, err, sizeof err);
    T_CHECK(r == 5 && memcmp(g_out, "x</s>", 5) == 0, "STRIP_BOS removes the leading BOS only (%.*s)", (int)r, g_out);
    r = render("{{ bos_token }}x{{ eos_token }}", "[]", NULL, NULL, CHAT_TMPL_STRIP_EOS, err, sizeof err);
    T_CHECK(r == 4 && memcmp(g_out, "<s>x", 4) == 0, "STRIP_EOS removes the trailing EOS only");
    r = render("x{{ bos_token }}", "[]", NULL, NULL, CHAT_TMPL_STRIP_BOS, err, sizeof err);
    T_CHECK(r == 4 && memcmp(g_out, "x<s>", 4) == 0, "STRIP_BOS keeps a BOS that is not leading");
    r = render("{{ enable_thinking }}", "[]", NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == 0, "enable_thinking undefined by default");
    r = render("{{ enable_thinking }}", "[]", NULL, NULL, CHAT_TMPL_ENABLE_THINKING, err, sizeof err);
    T_CHECK(r == 4 && memcmp(g_out, "True", 4) == 0, "ENABLE_THINKING defines it true");
    r = render("{{ enable_thinking }}", "[]", NULL, "{\"enable_thinking\": false}", CHAT_TMPL_ENABLE_THINKING, err, sizeof err);
    T_CHECK(r == 5 && memcmp(g_out, "False", 5) == 0, "vars override ENABLE_THINKING");
    static const char msgs[] =
        "[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\": 1, \\\"b\\\": [true]}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"g\",\"arguments\":\"not json\"}}]}]";
    const char *t = "{% for c in messages[0].tool_calls %}{{ c.function.arguments is mapping }} {{ c.function.arguments|tojson }};{% endfor %}";
    r = render(t, msgs, NULL, NULL, 0, err, sizeof err);
    const char *w0 = "False \"{\\\"a\\\": 1, \\\"b\\\": [true]}\";False \"not json\";";
    T_CHECK(r == (long)strlen(w0) && memcmp(g_out, w0, (size_t)r) == 0, "string arguments stay strings by default");
    r = render(t, msgs, NULL, NULL, CHAT_TMPL_ARGS_OBJECT, err, sizeof err);
    const char *w1 = "True {\"a\": 1, \"b\": [true]};False \"not json\";";
    T_CHECK(r == (long)strlen(w1) && memcmp(g_out, w1, (size_t)r) == 0, "ARGS_OBJECT parses JSON-object arguments (%.*s)",
            (int)(r > 0 ? r : 0), g_out);
    t = "{% set ns = namespace(ids=[]) %}{% for c in messages[0].tool_calls %}{% set _ = ns.ids.append(c.id) %}{% endfor %}"
        "{{ ns.ids }}{{ ns.ids.pop(0) }}{{ ns.ids }}{% set d = {} %}{% set _ = d.update({'k': 1}) %}{{ d }}";
    r = render(t, msgs, NULL, NULL, 0, err, sizeof err);
    T_CHECK(r == CHAT_TMPL_ERR_RENDER, "list.append refused without MUTABLE (%s)", err);
    r = render(t, msgs, NULL, NULL, CHAT_TMPL_MUTABLE, err, sizeof err);
    const char *w2 = "['c1', 'c2']c1['c2']{'k': 1}";
    T_CHECK(r == (long)strlen(w2) && memcmp(g_out, w2, (size_t)r) == 0, "MUTABLE allows append/pop/update (%s)", r < 0 ? err : "");
    /* mutation across loop iterations survives the per-iteration memory reuse */
    t = "{% set ns = namespace(l=[]) %}{% for i in range(50) %}{% set _ = ns.l.append('item' ~ i) %}{% endfor %}{{ ns.l|join(',')|length }}{{ ns.l[49] }}";
    r = render(t, "[]", NULL, NULL, CHAT_TMPL_MUTABLE, err, sizeof err);
    T_CHECK(r > 0 && strncmp(g_out, "339item49", 9) == 0, "appended strings survive loop iterations (%.*s)", (int)(r > 0 ? r : 0), g_out);
}

static void test_chatml(void)
{
    char err[256];
    static const char msgs[] =
        "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"image_url\",\"image_url\":{}},{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\",\"content\":null}]";
    long r = render(chat_tmpl_chatml, msgs, NULL, NULL, 0, err, sizeof err);
    const char *want = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nab<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"
                       "<|im_start|>assistant\n";
    T_CHECK(r == (long)strlen(want) && memcmp(g_out, want, (size_t)r) == 0, "ChatML fallback (%s)", r < 0 ? err : "");
    if (r >= 0 && (r != (long)strlen(want) || memcmp(g_out, want, (size_t)r))) first_diff(g_out, (size_t)r, want, strlen(want));
}

typedef struct thr {
    const chat_tmpl *t;
    const char *msgs;
    char *mem, *out;
    long n;
    int same;
} thr;

static void *thr_run(void *arg)
{
    thr *x = arg;
    char err[256];
    chat_tmpl_input in;
    memset(&in, 0, sizeof in);
    in.messages_json = x->msgs;
    in.messages_len = strlen(x->msgs);
    in.add_generation_prompt = 1;
    x->same = 1;
    for (int i = 0; i < 200; i++) {
        long n = chat_tmpl_render(x->t, &in, x->mem, 1 << 20, x->out + (i & 1) * 65536, 65536, err, sizeof err);
        if (i == 0) x->n = n;
        else if (n != x->n || memcmp(x->out, x->out + 65536, (size_t)(n > 0 ? n : 0)) != 0) x->same = 0;
    }
    return NULL;
}

/* The worst recursion cases fit the documented 256 KiB of stack. */
typedef struct stk {
    const char *tmpl;
    long r;
    char *mem, *out;
} stk;

static void *stk_run(void *arg)
{
    stk *x = arg;
    char err[256];
    chat_tmpl_input in;
    memset(&in, 0, sizeof in);
    in.messages_json = UNIT_MSGS;
    in.messages_len = strlen(UNIT_MSGS);
    x->r = chat_tmpl_render_src(x->tmpl, strlen(x->tmpl), &in, x->mem, MEM_CAP, x->out, OUT_CAP, err, sizeof err);
    return NULL;
}

static void test_stack(void)
{
    static char deep[3][8192];
    size_t o = (size_t)snprintf(deep[0], sizeof deep[0], "{{ ");
    for (int i = 0; i < 99; i++) deep[0][o++] = '(';
    deep[0][o++] = '1';
    for (int i = 0; i < 99; i++) deep[0][o++] = ')';
    snprintf(deep[0] + o, sizeof deep[0] - o, " }}");
    o = (size_t)snprintf(deep[1], sizeof deep[1], "{{ 1");
    for (int i = 0; i < 190; i++) o += (size_t)snprintf(deep[1] + o, sizeof deep[1] - o, " + 1");
    snprintf(deep[1] + o, sizeof deep[1] - o, " }}");
    o = 0;
    for (int i = 0; i < 95; i++) o += (size_t)snprintf(deep[2] + o, sizeof deep[2] - o, "{%% for x in [1] %%}{%% if x %%}");
    for (int i = 0; i < 95; i++) o += (size_t)snprintf(deep[2] + o, sizeof deep[2] - o, "{%% endif %%}{%% endfor %%}");
    const char *cases[] = {
        "{% macro f(n) %}{% if n %}{% for i in [1] %}{{ f(n + 1)|trim ~ 'x' }}{% endfor %}{% endif %}{% endmacro %}{{ f(1) }}",
        "{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l|tojson }}",
        "{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ ns.l }}",
        "{% set ns = namespace(l=[]) %}{% for i in range(5000) %}{% set ns.l = [ns.l] %}{% endfor %}{{ '%s' % ns.l }}",
        deep[0], deep[1], deep[2]};
    pthread_attr_t at;
    pthread_attr_init(&at);
    /* AddressSanitizer's redzones multiply frame sizes: the 256 KiB
     * contract is for normal builds, sanitizer builds get 8x. */
#if defined(__SANITIZE_ADDRESS__)
    pthread_attr_setstacksize(&at, 2048 << 10);
#else
    pthread_attr_setstacksize(&at, 256 << 10);
#endif
    stk x;
    x.mem = malloc(MEM_CAP);
    x.out = malloc(OUT_CAP);
    int done = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pthread_t th;
        x.tmpl = cases[i];
        x.r = 1;
        if (pthread_create(&th, &at, stk_run, &x) != 0) break;
        pthread_join(th, NULL);
        done += x.r <= 0 || x.r > 0;
    }
    T_CHECK(done == (int)(sizeof cases / sizeof cases[0]), "deepest recursion cases run in a 256 KiB thread stack");
    pthread_attr_destroy(&at);
    free(x.mem);
    free(x.out);
}

static void test_threads(void)
{
    char err[256];
    const chat_tmpl *t;
    static char cmem[1 << 16];
    int rc = chat_tmpl_compile(chat_tmpl_chatml, strlen(chat_tmpl_chatml), cmem, sizeof cmem, &t, err, sizeof err);
    T_CHECK(rc == 0, "compile ChatML once (%s)", err);
    thr x[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        x[i].t = t;
        x[i].msgs = UNIT_MSGS;
        x[i].mem = malloc(1 << 20);
        x[i].out = malloc(2 * 65536);
        pthread_create(&th[i], NULL, thr_run, &x[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    T_CHECK(x[0].n > 0 && x[0].n == x[1].n && x[0].same && x[1].same &&
            memcmp(x[0].out, x[1].out, (size_t)x[0].n) == 0, "one compiled template rendered by two threads at once");
    for (int i = 0; i < 2; i++) { free(x[i].mem); free(x[i].out); }
}

int main(void)
{
    g_mem = malloc(MEM_CAP);
    g_out = malloc(OUT_CAP);
    test_corpus();
    test_units();
    test_errors();
    test_limits();
    test_compile_memory();
    test_compile_bound();
    test_prefixes();
    test_flags();
    test_chatml();
    test_threads();
    test_stack();
    free(g_mem);
    free(g_out);
    return t_done();
}
