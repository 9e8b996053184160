#include "upstream/router.h"

#include <string.h>

#include "upstream/upstream.h"

int
sl_router_resolve(const struct sl_config *cfg, const char *model, struct sl_route *out)
{
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct sl_config_model *m = &cfg->models[i];
        if (strcmp(m->name, model) != 0)
            continue;
        for (size_t j = 0; j < cfg->nproviders; j++) {
            const struct sl_config_provider *p = &cfg->providers[j];
            if (strcmp(p->name, m->provider) != 0)
                continue;
            out->model = m;
            out->provider = p;
            out->ops = sl_upstream_ops(p->kind);
            out->model_index = i;
            out->provider_index = j;
            return 0;
        }
        return SL_ROUTER_ENOMODEL; /* its provider is gone: the loader guarantees it is not */
    }
    return SL_ROUTER_ENOMODEL;
}

double
sl_router_cost(const struct sl_config_model *m, uint64_t input_tokens, uint64_t output_tokens)
{
    return (double)input_tokens * m->price_input_per_1m / 1e6 +
           (double)output_tokens * m->price_output_per_1m / 1e6;
}
