/*
 * The per-worker upstream context: what provider adapters share on one loop (the
 * loop itself, the configuration, and the libcurl multi handle of the HTTP adapters).
 * Owned by the worker; used only on its thread.
 */
#ifndef SL_UPSTREAM_UPSTREAM_H
#define SL_UPSTREAM_UPSTREAM_H

#include "config/config.h"
#include "upstream/provider.h"

struct sl_loop;
struct sl_curl;
struct sl_curl_pool;
struct sl_h1;
struct sl_h1_pool;

struct sl_upstream {
    struct sl_loop *loop;
    const struct sl_config *cfg;
    unsigned active_calls;       /* calls started and not yet finished, all adapters */
    struct sl_curl *curl;        /* the worker's libcurl multi glue, made on first use */
    struct sl_curl_pool **pools; /* [cfg->nproviders], each made on first use */
    struct sl_h1 *h1;            /* the worker's HTTP/1.1 client (h1.h), made on first use */
    struct sl_h1_pool **h1pools; /* [cfg->nproviders]: http:// providers it serves */
    /*
     * Tests only: when set, every call of this context goes to these ops whatever the
     * provider's kind, so that the stream and session can be driven by a fake provider.
     */
    const struct sl_provider_ops *ops_override;
};

struct sl_upstream *sl_upstream_new(struct sl_loop *loop, const struct sl_config *cfg);

/*
 * Frees the context. Every call must have finished or been cancelled. The curl glue
 * closes its libuv handles by running the loop once more, so call this after the loop
 * has stopped serving (the worker does, after its thread returned).
 */
void sl_upstream_free(struct sl_upstream *up);

/*
 * The text of any internal code of the upstream layer (base/codes.h): the SSE and NDJSON
 * parsers', the fast path's, the router's and the request builder's ("unknown error" for
 * anything else).
 */
const char *sl_upstream_strerror(int code);

/* The adapter for a provider kind, or NULL if this build has none. */
const struct sl_provider_ops *sl_upstream_ops(enum sl_provider_kind kind);

/*
 * The worker's libcurl multi glue (see curl.h), created on first use. Connections per host
 * are capped at the largest providers.<name>.max_connections of the configuration.
 */
struct sl_curl *sl_upstream_curl(struct sl_upstream *up);

/*
 * The provider's connection pool on this worker (curl.h: its gate, queue and idle
 * connections), made on first use; NULL for a provider that is not the configuration's.
 */
struct sl_curl_pool *sl_upstream_pool(struct sl_upstream *up,
                                      const struct sl_config_provider *provider);

/*
 * The provider's pool in the worker's own HTTP/1.1 client (h1.h) if that client serves it
 * (an http:// base URL, http_client: builtin, no proxy), made on first use; else NULL: curl
 * serves it (sl_upstream_pool).
 */
struct sl_h1_pool *sl_upstream_h1pool(struct sl_upstream *up,
                                      const struct sl_config_provider *provider);

/* Opens the pools of providers with min_idle, so that they warm up before any stream. */
void sl_upstream_warm(struct sl_upstream *up);

/* Streams of provider (its index) waiting for a connection on this worker now. */
unsigned sl_upstream_queued(const struct sl_upstream *up, size_t provider);

/*
 * Time the worker's HTTP clients spent setting up transfers outside the calls' starts so
 * far, ns (sl_curl_timer_ns, sl_h1_setup_ns).
 */
uint64_t sl_upstream_setup_ns(const struct sl_upstream *up);

/* Connections open to provider (its index) from this worker now. */
unsigned sl_upstream_connections(const struct sl_upstream *up, size_t provider);

#endif
