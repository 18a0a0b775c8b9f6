/* api_models.c — GET /v1/models, /v1/models/{id} and the legacy
 * /v1/engines/list: the served models with their running context length.
 * The demo model says what it is in owned_by and description. */
#include "api.h"
#include "router.h"

#include <stdio.h>
#include <string.h>

#define DEMO_OWNER "mote (smoke-test model, random weights)"
#define DEMO_DESC "Built-in smoke-test model: a tiny llama with random weights and a byte-level " \
                  "vocabulary, generated in memory at start. Its output is deterministic noise."

static void model_info(const api_model *am, oai_model_info *mi)
{
    const sched_model *sm = am->sm;
    memset(mi, 0, sizeof *mi);
    mi->id = sm->cfg.id;
    mi->created = am->created;
    mi->owned_by = sm->demo ? DEMO_OWNER : "mote";
    mi->context_length = sm->cfg.context_length;
    mi->context_length_train = sched_model_state(sm) == SCHED_READY ? sm->m.hp.n_ctx_train : 0;
    mi->description = sm->demo ? DEMO_DESC : NULL;
}

int api_models_handle(api *a, int route, const char *id, api_response *r)
{
    oai_model_info mi[CONFIG_MODELS_MAX];
    oai_error e;
    int n;
    if (route == ROUTE_MODEL) {
        api_model *am = api_model_find(a, id);
        if (!am) {
            oai_error_model_not_found(&e, id);
            api_error_reply(a, r, &e);
            return API_REPLY;
        }
        model_info(am, &mi[0]);
        n = oai_model_write(a->resp, a->resp_cap, &mi[0]);
    } else {
        for (int i = 0; i < a->n_models; i++) model_info(&a->models[i], &mi[i]);
        n = route == ROUTE_ENGINES ? oai_engines_write(a->resp, a->resp_cap, mi, a->n_models)
                                   : oai_models_write(a->resp, a->resp_cap, mi, a->n_models);
    }
    if (n < 0) {
        oai_error_server(&e, "the model list does not fit the response buffer");
        api_error_reply(a, r, &e);
        return API_REPLY;
    }
    r->status = 200;
    r->content_type = "application/json";
    r->body = a->resp;
    r->len = (size_t)n;
    return API_REPLY;
}
