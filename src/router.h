/* router.h — which endpoint a request is for, and whether it may use it.
 *
 * API layer, pure functions (no sockets, no loop, no model): the server's
 * request handler asks router_match for the route (or the 404/405 answer
 * with its Allow list) and router_auth for the API key check, then calls
 * the endpoint's handler.
 *
 * Routes (each also answers without the "/v1" prefix, as llama.cpp does,
 * for clients whose base URL lacks it):
 *     GET|HEAD  /health                        ROUTE_HEALTH (no auth)
 *     GET|HEAD  /v1/models                     ROUTE_MODELS
 *     GET|HEAD  /v1/models/{id}                ROUTE_MODEL (id may hold '/')
 *     POST      /v1/chat/completions           ROUTE_CHAT
 *     POST      /v1/completions                ROUTE_COMPLETIONS
 *     POST      /v1/embeddings                 ROUTE_EMBEDDINGS
 *     GET|HEAD  /v1/engines, /v1/engines/list  ROUTE_ENGINES (legacy)
 *     GET|POST  /v1/engines/{model}/completions ROUTE_ENGINE_COMPLETIONS
 *                                              (legacy; GET takes the query)
 * OPTIONS on any known path: ROUTE_OPTIONS (answer 204 + Allow, no auth;
 * CORS preflights are answered earlier by the loop when CORS is on).
 */
#ifndef MOTE_ROUTER_H
#define MOTE_ROUTER_H

#include <stddef.h>

#include "config.h"

typedef enum router_route {
    ROUTE_NONE = 0,          /* no route: see status (404 or 405) */
    ROUTE_HEALTH,
    ROUTE_MODELS,
    ROUTE_MODEL,
    ROUTE_CHAT,
    ROUTE_COMPLETIONS,
    ROUTE_EMBEDDINGS,
    ROUTE_ENGINES,
    ROUTE_ENGINE_COMPLETIONS,
    ROUTE_OPTIONS,
    ROUTE_COUNT
} router_route;

#define ROUTER_ARG_MAX 256

typedef struct router_match {
    router_route route;
    int status;              /* 0 when routed, else 404 or 405 */
    const char *allow;       /* static "GET, HEAD, OPTIONS"...: for 405 and OPTIONS */
    char arg[ROUTER_ARG_MAX]; /* {id} / {model}, percent-decoded, NUL-terminated */
    size_t arg_len;
    int is_head;             /* HEAD: answer as GET without the body */
} router_match;

/* Match method[0..mlen) and path[0..plen) (the path without the query).
 * Returns m->route (ROUTE_NONE with status 404 for an unknown path or a bad
 * {id}, 405 for a known path with another method; allow is set then). */
router_route router_match_path(const char *method, size_t mlen, const char *path, size_t plen,
                               router_match *m);

/* Whether a route needs the API key (every route but health and OPTIONS). */
int router_needs_auth(router_route r);

typedef enum router_auth_result {
    ROUTER_AUTH_OK = 0,      /* a configured key matched, or no key is configured */
    ROUTER_AUTH_MISSING,     /* no usable Authorization header: 401 */
    ROUTER_AUTH_WRONG        /* a key was given and matched none: 401 */
} router_auth_result;

/* Check an Authorization header value (value[0..len); NULL when absent)
 * against c->api_keys: "Bearer KEY", or "Basic base64(":" KEY)" (empty user,
 * the key as password). Schemes are case-insensitive. The comparison takes
 * the same time whichever byte differs and whichever key matches. */
router_auth_result router_auth(const config *c, const char *value, size_t len);

/* Constant-time equality of a[0..alen) and b[0..blen): the time depends on
 * blen only (b is the secret side's capacity-bounded copy). 1 if equal. */
int router_secret_eq(const char *a, size_t alen, const char *b, size_t blen);

#endif
