/* api_embeddings.c — POST /v1/embeddings.
 *
 * The engine has no embedding model type yet (no pooling, no BERT-family
 * forward pass), so a valid request for a served model gets a clear 400
 * naming the model; an unknown model is 404 and a malformed body 400, as
 * for the other endpoints. TODO(engine): pooled embeddings. */
#include "api.h"

int api_embd_handle(api *a, const api_request *q, api_response *r)
{
    oai_embd_req req;
    oai_error e;
    oai_arena_reset(&a->arena);
    if (oai_embd_parse(&a->arena, q->body, q->body_len, 0, &req, &e) == 0) {
        if (!api_model_find(a, req.model.ptr))
            oai_error_model_not_found(&e, req.model.ptr);
        else
            oai_error_set(&e, 400, "invalid_request_error", "model_not_supported", "model",
                          "The model `%.200s` does not support embeddings (mote serves no embedding model yet).",
                          req.model.ptr);
    }
    api_error_reply(a, r, &e);
    return API_REPLY;
}
