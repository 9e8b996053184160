#include "core/admission.h"

#include <stdio.h>

#include "config/config.h"

void
sl_admission_init(struct sl_admission *a, const struct sl_stream_env *env)
{
    a->env = *env;
    a->draining = false;
}

static struct sl_stream *
refuse(struct sl_refusal *why, struct sl_chat_req *req, enum sl_errcode code,
       int64_t retry_after_ms, const char *message)
{
    why->code = code;
    why->retry_after_ms = retry_after_ms;
    snprintf(why->message, sizeof(why->message), "%s", message);
    sl_chat_req_free(req);
    return NULL;
}

struct sl_stream *
sl_admission_chat(struct sl_admission *a, const struct sl_stream_owner *owner,
                  struct sl_chat_req *req, const char *id, struct sl_refusal *why)
{
    const struct sl_config *cfg = a->env.cfg;
    if (a->draining)
        return refuse(why, req, SL_ERR_SHUTTING_DOWN, (int64_t)cfg->shutdown.retry_after_ms,
                      "the server is shutting down; reconnect");

    char name[300];
    snprintf(name, sizeof(name), "%s",
             req->agent && !req->model ? req->agent
             : req->model              ? req->model
                                       : cfg->default_model);
    const char *reason;
    struct sl_stream *st = sl_stream_new(&a->env, req, id, owner, &why->code, &reason);
    if (st == NULL) {
        why->retry_after_ms = -1;
        snprintf(why->message, sizeof(why->message), "%s \"%.160s\"", reason, name);
        return NULL; /* sl_stream_new freed req */
    }
    return st;
}
