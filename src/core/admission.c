#include "core/admission.h"

#include <stdio.h>

#include "config/config.h"
#include "limits/limits.h"
#include "obs/metrics.h"
#include "upstream/router.h"

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

/*
 * The identity's limits (limits.h): streams, tokens per minute, budgets. The input is
 * estimated (about 4 characters a token) and priced at the model asked for, so that a
 * prompt the budget cannot pay for is refused before the provider is called.
 */
static int
admit_limits(struct sl_admission *a, const struct sl_stream_owner *owner,
             const struct sl_chat_req *req, struct sl_limits_ticket **ticket,
             struct sl_refusal *why)
{
    const struct sl_config *cfg = a->env.cfg;
    uint64_t tokens = (sl_chat_req_text_chars(req) + 3) / 4;
    const struct sl_config_agent *agent = req->agent ? sl_config_find_agent(cfg, req->agent) : NULL;
    const char *model = req->model ? req->model : agent ? agent->model : cfg->default_model;
    struct sl_route route;
    double usd =
        sl_router_resolve(cfg, model, &route) == 0 ? sl_router_cost(route.model, tokens, 0) : 0;
    struct sl_limits_refusal r;
    if (sl_limits_stream_begin(a->limits, owner->user, owner->tier, tokens, usd, ticket, &r) == 0)
        return 0;
    sl_counter_add(&a->env.metrics->rate_limited[r.limit], 1);
    why->code = r.code;
    why->retry_after_ms = r.retry_after_ms;
    snprintf(why->message, sizeof(why->message), "%s", r.message);
    return -1;
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
    struct sl_limits_ticket *ticket = NULL;
    if (a->limits != NULL && admit_limits(a, owner, req, &ticket, why) != 0) {
        sl_chat_req_free(req);
        return NULL;
    }
    const char *reason;
    struct sl_stream *st = sl_stream_new(&a->env, req, id, owner, &why->code, &reason);
    if (st == NULL) {
        sl_limits_stream_end(ticket, 0, 0);
        why->retry_after_ms = -1;
        snprintf(why->message, sizeof(why->message), "%s \"%.160s\"", reason, name);
        return NULL; /* sl_stream_new freed req */
    }
    sl_stream_set_ticket(st, ticket);
    if (a->env.cluster != NULL && a->limits != NULL) {
        /* Cluster mode: the identity's streams are also counted across nodes. */
        struct sl_limits_tier t;
        sl_limits_of(a->limits, owner->tier, &t);
        struct sl_cluster_limits cl = {.max_streams = t.max_streams,
                                       .tokens_per_minute = t.tokens_per_minute,
                                       .chats_per_minute = t.messages_per_minute,
                                       .usd_per_day = t.usd_per_day,
                                       .usd_per_month = t.usd_per_month};
        sl_stream_set_cluster_limits(st, &cl);
    }
    return st;
}
