/*
 * Routing: which provider serves a model name, under which upstream name, with which
 * fallbacks and prices. Pure lookups over the read-only configuration; the stream walks
 * the fallback chain and decides about retries.
 */
#ifndef SL_UPSTREAM_ROUTER_H
#define SL_UPSTREAM_ROUTER_H

#include <stddef.h>

#include "config/config.h"
#include "upstream/provider.h"

struct sl_route {
    const struct sl_config_model *model;
    const struct sl_config_provider *provider;
    const struct sl_provider_ops *ops; /* NULL if this build has no adapter for the kind */
    size_t model_index;                /* into cfg->models, for per-model metrics */
    size_t provider_index;             /* into cfg->providers */
};

/* The router's code, in the upstream layer's range (base/codes.h; sl_upstream_strerror). */
enum sl_router_error {
    SL_ROUTER_ENOMODEL = -1231, /* "no such model" */
};

/* Resolves a model name. Returns 0, or SL_ROUTER_ENOMODEL if no such model is configured. */
int sl_router_resolve(const struct sl_config *cfg, const char *model, struct sl_route *out);

/* USD for the given usage at the model's prices. */
double sl_router_cost(const struct sl_config_model *m, uint64_t input_tokens,
                      uint64_t output_tokens);

#endif
