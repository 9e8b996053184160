#include "upstream/upstream.h"

#include <stdlib.h>

#include "base/alloc.h"
#include "obs/log.h"
#include "upstream/anthropic.h"
#include "upstream/curl.h"
#include "upstream/demo.h"
#include "upstream/fastpath.h"
#include "upstream/gate.h"
#include "upstream/gemini.h"
#include "upstream/h1.h"
#include "upstream/ndjson.h"
#include "upstream/ollama.h"
#include "upstream/openai.h"
#include "upstream/router.h"
#include "upstream/sse.h"
#include "upstream/wire.h"

static const struct sl_provider_ops *const registry[] = {
    [SL_PROVIDER_DEMO] = &sl_provider_demo,           [SL_PROVIDER_OPENAI] = &sl_provider_openai,
    [SL_PROVIDER_ANTHROPIC] = &sl_provider_anthropic, [SL_PROVIDER_GEMINI] = &sl_provider_gemini,
    [SL_PROVIDER_OLLAMA] = &sl_provider_ollama,
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
    sl_curl_free(up->curl); /* frees the pools too */
    free(up->pools);
    sl_h1_free(up->h1); /* and its pools */
    free(up->h1pools);
    free(up);
}

const struct sl_provider_ops *
sl_upstream_ops(enum sl_provider_kind kind)
{
    if ((size_t)kind >= SL_ARRAY_LEN(registry))
        return NULL;
    return registry[kind];
}

struct sl_curl *
sl_upstream_curl(struct sl_upstream *up)
{
    if (up->curl == NULL) {
        /*
         * curl caps connections per host for the whole multi handle, not per provider:
         * the largest configured cap applies (providers rarely share a host).
         */
        long cap = 0;
        for (size_t i = 0; i < up->cfg->nproviders; i++) {
            const struct sl_config_provider *p = &up->cfg->providers[i];
            if (p->kind != SL_PROVIDER_DEMO && (long)p->max_connections > cap)
                cap = (long)p->max_connections;
        }
        up->curl = sl_curl_new(up->loop, cap);
    }
    return up->curl;
}

/*
 * Which client a provider's pool runs on, once per worker: the environment (a proxy) can
 * send an http:// provider to curl, and an operator should not have to guess.
 */
static void
log_pool(const struct sl_config_provider *pv, const char *client)
{
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_DEBUG, "upstream.pool")) {
        sl_log_str(&r, "provider", pv->name);
        sl_log_str(&r, "client", client);
        sl_log_end(&r);
    }
}

/* The provider's index in the configuration, or -1 (unit tests may use one of their own). */
static long
provider_index(const struct sl_upstream *up, const struct sl_config_provider *pv)
{
    const struct sl_config *cfg = up->cfg;
    if (pv < cfg->providers || pv >= cfg->providers + cfg->nproviders || pv->base_url == NULL)
        return -1;
    return (long)(pv - cfg->providers);
}

struct sl_h1_pool *
sl_upstream_h1pool(struct sl_upstream *up, const struct sl_config_provider *pv)
{
    long i = provider_index(up, pv);
    if (i < 0 || pv->http_client != SL_HTTP_CLIENT_BUILTIN)
        return NULL;
    if (up->h1pools == NULL)
        up->h1pools = sl_calloc(up->cfg->nproviders, sizeof(*up->h1pools));
    if (up->h1pools[i] == NULL) {
        if (!sl_h1_eligible(pv->base_url))
            return NULL; /* asked again each time: cheap, and the environment is fixed */
        if (up->h1 == NULL)
            up->h1 = sl_h1_new(up->loop);
        struct sl_h1_pool_cfg pc = {
            .base_url = pv->base_url,
            .max_connections = pv->max_connections,
            .max_queued = pv->max_queued,
            .min_idle = pv->min_idle,
            .connect_timeout_ms = pv->connect_timeout_ms,
        };
        up->h1pools[i] = sl_h1_pool_new(up->h1, &pc);
        log_pool(pv, "builtin");
    }
    return up->h1pools[i];
}

struct sl_curl_pool *
sl_upstream_pool(struct sl_upstream *up, const struct sl_config_provider *pv)
{
    const struct sl_config *cfg = up->cfg;
    long i = provider_index(up, pv);
    if (i < 0)
        return NULL; /* not one of the configuration's (unit tests): ungated */
    if (up->pools == NULL)
        up->pools = sl_calloc(cfg->nproviders, sizeof(*up->pools));
    if (up->pools[i] == NULL) {
        struct sl_curl_pool_cfg pc = {
            .base_url = pv->base_url,
            .max_connections = pv->max_connections,
            .max_queued = pv->max_queued,
            .min_idle = pv->min_idle,
            .connect_timeout_ms = pv->connect_timeout_ms,
            .tls_verify = pv->tls_verify,
            .ca_file = pv->ca_file,
        };
        up->pools[i] = sl_curl_pool_new(sl_upstream_curl(up), &pc);
        log_pool(pv, "curl");
    }
    return up->pools[i];
}

void
sl_upstream_warm(struct sl_upstream *up)
{
    for (size_t i = 0; i < up->cfg->nproviders; i++) {
        const struct sl_config_provider *pv = &up->cfg->providers[i];
        if (pv->kind != SL_PROVIDER_DEMO && pv->min_idle > 0 && sl_upstream_h1pool(up, pv) == NULL)
            sl_upstream_pool(up, pv);
    }
}

/* The gate of provider's pool on this worker (whichever client serves it), or NULL. */
static const struct sl_gate *
gate_of(const struct sl_upstream *up, size_t provider)
{
    if (up->h1pools && up->h1pools[provider])
        return sl_h1_pool_gate(up->h1pools[provider]);
    if (up->pools && up->pools[provider])
        return sl_curl_pool_gate(up->pools[provider]);
    return NULL;
}

unsigned
sl_upstream_queued(const struct sl_upstream *up, size_t provider)
{
    const struct sl_gate *g = gate_of(up, provider);
    return g ? g->nwaiting : 0;
}

uint64_t
sl_upstream_setup_ns(const struct sl_upstream *up)
{
    return up ? sl_curl_timer_ns(up->curl) + sl_h1_setup_ns(up->h1) : 0;
}

unsigned
sl_upstream_connections(const struct sl_upstream *up, size_t provider)
{
    const struct sl_gate *g = gate_of(up, provider);
    return g ? g->open : 0;
}

const char *
sl_upstream_strerror(int code)
{
    switch (code) {
    case SL_SSE_ERR_LINE_TOO_LONG:
    case SL_SSE_ERR_EVENT_TOO_BIG:
    case SL_SSE_ERR_STOPPED:
        return sl_sse_strerror(code);
    case SL_NDJSON_ERR_LINE_TOO_LONG:
    case SL_NDJSON_ERR_STOPPED:
        return sl_ndjson_strerror(code);
    case SL_FP_EJANSSON:
        return "chunk left to jansson";
    case SL_ROUTER_ENOMODEL:
        return "no such model";
    case SL_WIRE_ENOKEY:
        return "no API key for the provider";
    case SL_WIRE_EREQUEST:
        return "the request cannot be made for this provider";
    default:
        return "unknown error";
    }
}
