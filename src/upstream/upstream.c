#include "upstream/upstream.h"

#include <stdlib.h>

#include "base/alloc.h"
#include "upstream/demo.h"

static const struct sl_provider_ops *const registry[] = {
    [SL_PROVIDER_DEMO] = &sl_provider_demo,
    [SL_PROVIDER_OPENAI] = NULL,
    [SL_PROVIDER_ANTHROPIC] = NULL,
    [SL_PROVIDER_GEMINI] = NULL,
    [SL_PROVIDER_OLLAMA] = NULL,
};

struct sl_upstream *
sl_upstream_new(struct sl_loop *loop, const struct sl_config *cfg)
{
    struct sl_upstream *up = sl_calloc(1, sizeof(*up));
    up->loop = loop;
    up->cfg = cfg;
    return up;
}

void
sl_upstream_free(struct sl_upstream *up)
{
    if (up == NULL)
        return;
    sl_assert(up->active_calls == 0);
    free(up);
}

const struct sl_provider_ops *
sl_upstream_ops(enum sl_provider_kind kind)
{
    if ((size_t)kind >= SL_ARRAY_LEN(registry))
        return NULL;
    return registry[kind];
}
