/* test_router.c — route table (404/405/Allow, {id} decoding) and API key checks. */
#include <string.h>

#include "config.h"
#include "router.h"
#include "test.h"

static const struct {
    const char *method, *path;
    router_route route;
    int status;
    const char *allow; /* NULL: not checked */
    const char *arg;   /* NULL: none */
} cases[] = {
    {"GET", "/health", ROUTE_HEALTH, 0, "GET, HEAD, OPTIONS", NULL},
    {"HEAD", "/health", ROUTE_HEALTH, 0, NULL, NULL},
    {"GET", "/v1/health", ROUTE_HEALTH, 0, NULL, NULL},
    {"POST", "/health", ROUTE_NONE, 405, "GET, HEAD, OPTIONS", NULL},
    {"GET", "/v1/models", ROUTE_MODELS, 0, NULL, NULL},
    {"GET", "/models", ROUTE_MODELS, 0, NULL, NULL},
    {"DELETE", "/v1/models", ROUTE_NONE, 405, "GET, HEAD, OPTIONS", NULL},
    {"GET", "/v1/models/tiny-q8", ROUTE_MODEL, 0, NULL, "tiny-q8"},
    {"GET", "/v1/models/org/name%20x", ROUTE_MODEL, 0, NULL, "org/name x"},
    {"GET", "/v1/models/", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/v1/models/a%2", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/v1/models/a%00b", ROUTE_NONE, 404, NULL, NULL},
    {"POST", "/v1/chat/completions", ROUTE_CHAT, 0, NULL, NULL},
    {"POST", "/chat/completions", ROUTE_CHAT, 0, NULL, NULL},
    {"GET", "/v1/chat/completions", ROUTE_NONE, 405, "POST, OPTIONS", NULL},
    {"HEAD", "/v1/chat/completions", ROUTE_NONE, 405, "POST, OPTIONS", NULL},
    {"post", "/v1/chat/completions", ROUTE_NONE, 405, NULL, NULL},
    {"POST", "/v1/completions", ROUTE_COMPLETIONS, 0, NULL, NULL},
    {"POST", "/v1/embeddings", ROUTE_EMBEDDINGS, 0, NULL, NULL},
    {"GET", "/v1/engines", ROUTE_ENGINES, 0, NULL, NULL},
    {"GET", "/v1/engines/list", ROUTE_ENGINES, 0, NULL, NULL},
    {"GET", "/v1/engines/117M/completions", ROUTE_ENGINE_COMPLETIONS, 0, NULL, "117M"},
    {"POST", "/v1/engines/davinci/completions", ROUTE_ENGINE_COMPLETIONS, 0, NULL, "davinci"},
    {"PUT", "/v1/engines/davinci/completions", ROUTE_NONE, 405, "GET, POST, OPTIONS", NULL},
    {"GET", "/v1/engines//completions", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/v1/engines/a/b/completions", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/v1/engines/a/search", ROUTE_NONE, 404, NULL, NULL},
    {"OPTIONS", "/v1/chat/completions", ROUTE_OPTIONS, 0, "POST, OPTIONS", NULL},
    {"OPTIONS", "/v1/models/x", ROUTE_OPTIONS, 0, "GET, HEAD, OPTIONS", "x"},
    {"OPTIONS", "/nowhere", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/v1", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/v1/", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/v2/models", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "/v1/v1/models", ROUTE_NONE, 404, NULL, NULL},
    {"POST", "/v1/chat/completions/", ROUTE_NONE, 404, NULL, NULL},
    {"GET", "*", ROUTE_NONE, 404, NULL, NULL},
};

static void test_routes(void)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        router_match m;
        router_route r = router_match_path(cases[k].method, strlen(cases[k].method), cases[k].path,
                                           strlen(cases[k].path), &m);
        int ok = r == cases[k].route && m.route == cases[k].route && m.status == cases[k].status &&
                 (!cases[k].allow || (m.allow && !strcmp(m.allow, cases[k].allow))) &&
                 (cases[k].arg ? !strcmp(m.arg, cases[k].arg) && m.arg_len == strlen(cases[k].arg) : m.arg_len == 0 ||
                                 cases[k].route == ROUTE_OPTIONS);
        T_CHECK(ok, "%s %s -> route %d status %d", cases[k].method, cases[k].path, cases[k].route, cases[k].status);
        if (!ok) T_NOTE("got route %d status %d allow %s arg '%s'", r, m.status, m.allow ? m.allow : "-", m.arg);
    }
    router_match m;
    router_match_path("HEAD", 4, "/v1/models", 10, &m);
    T_CHECK(m.is_head == 1, "HEAD flagged");
    /* An id that does not fit the buffer is a 404, never truncated. */
    char longp[400] = "/v1/models/";
    memset(longp + 11, 'x', 300);
    router_match_path("GET", 3, longp, strlen(longp), &m);
    T_CHECK(m.route == ROUTE_NONE && m.status == 404, "over-long id -> 404");
    /* Path slices need not be NUL-terminated. */
    router_match_path("GETX", 3, "/v1/modelsXYZ", 10, &m);
    T_CHECK(m.route == ROUTE_MODELS, "slices with lengths");
    T_CHECK(!router_needs_auth(ROUTE_HEALTH) && !router_needs_auth(ROUTE_OPTIONS) &&
                router_needs_auth(ROUTE_CHAT) && router_needs_auth(ROUTE_MODELS), "auth needed except health/OPTIONS");
}

static config C;

static int auth(const char *v)
{
    return router_auth(&C, v, v ? strlen(v) : 0);
}

static void test_auth(void)
{
    config_init(&C);
    T_CHECK(auth(NULL) == ROUTER_AUTH_OK && auth("Bearer whatever") == ROUTER_AUTH_OK && auth("junk") == ROUTER_AUTH_OK,
            "no key configured: anything goes");
    strcpy(C.api_keys[0], "sk-alpha");
    strcpy(C.api_keys[1], "sk-beta");
    C.n_api_keys = 2;
    T_CHECK(auth("Bearer sk-alpha") == ROUTER_AUTH_OK, "bearer first key");
    T_CHECK(auth("Bearer sk-beta") == ROUTER_AUTH_OK, "bearer second key");
    T_CHECK(auth("bearer   sk-beta  ") == ROUTER_AUTH_OK, "scheme case-insensitive, spaces trimmed");
    T_CHECK(auth("Bearer sk-alph") == ROUTER_AUTH_WRONG, "prefix of a key is wrong");
    T_CHECK(auth("Bearer sk-alphaX") == ROUTER_AUTH_WRONG, "key plus a byte is wrong");
    T_CHECK(auth("Bearer SK-ALPHA") == ROUTER_AUTH_WRONG, "keys are case-sensitive");
    T_CHECK(auth(NULL) == ROUTER_AUTH_MISSING, "no header: missing");
    T_CHECK(auth("") == ROUTER_AUTH_MISSING, "empty header: missing");
    T_CHECK(auth("Bearer") == ROUTER_AUTH_MISSING && auth("Bearer   ") == ROUTER_AUTH_MISSING, "bearer without key: missing");
    /* Basic base64(":sk-alpha") = "OnNrLWFscGhh" */
    T_CHECK(auth("Basic OnNrLWFscGhh") == ROUTER_AUTH_OK, "basic, empty user, key as password");
    T_CHECK(auth("basic OnNrLWFscGhh") == ROUTER_AUTH_OK, "basic scheme case-insensitive");
    /* base64("u:sk-alpha") = "dTpzay1hbHBoYQ==" */
    T_CHECK(auth("Basic dTpzay1hbHBoYQ==") == ROUTER_AUTH_WRONG, "basic with a user name is refused");
    /* base64(":sk-beta") = "OnNrLWJldGE=" ; also without padding */
    T_CHECK(auth("Basic OnNrLWJldGE=") == ROUTER_AUTH_OK && auth("Basic OnNrLWJldGE") == ROUTER_AUTH_OK,
            "basic padding optional");
    T_CHECK(auth("Basic !!!!") == ROUTER_AUTH_WRONG && auth("Basic ") == ROUTER_AUTH_WRONG &&
                auth("Basic Og==") == ROUTER_AUTH_WRONG, "basic garbage / empty password wrong");
    T_CHECK(auth("Token sk-alpha") == ROUTER_AUTH_WRONG && auth("sk-alpha") == ROUTER_AUTH_WRONG,
            "other schemes wrong");
    char huge[2048];
    memset(huge, 'A', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    memcpy(huge, "Basic ", 6);
    T_CHECK(auth(huge) == ROUTER_AUTH_WRONG, "oversized basic credential wrong");
    T_CHECK(router_secret_eq("abc", 3, "abc", 3) && !router_secret_eq("abc", 3, "abd", 3) &&
                !router_secret_eq("ab", 2, "abc", 3) && !router_secret_eq("abc\0", 4, "abc", 3) &&
                router_secret_eq("", 0, "", 0), "router_secret_eq");
}

int main(void)
{
    test_routes();
    test_auth();
    return t_done();
}
