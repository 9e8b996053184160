/*
 * One provider call over HTTP: the network half of the HTTP adapters.
 *
 * sl_httpcall_start() builds the adapter's request (wire.h), makes a libcurl easy handle
 * of it (connect timeout, TLS verification and CA file, HTTP/2 where the server offers it,
 * keep-alive, no redirects) and hands it to the worker's multi handle (curl.h) with the
 * provider's first-byte and idle timeouts. Response headers and body go to a struct
 * sl_resp, which calls the sink; when the transfer ends (or a timeout fires) the decoder
 * decides done or error and delivers it, and the call frees itself.
 *
 * These functions implement struct sl_provider_ops for every HTTP adapter, which wraps
 * start() with its wire: see the contract in provider.h. Cancellation removes the
 * transfer within the loop turn (curl closes the connection, or resets the HTTP/2
 * stream), also while the request is still waiting for its first byte.
 */
#ifndef SL_UPSTREAM_HTTPCALL_H
#define SL_UPSTREAM_HTTPCALL_H

#include "upstream/provider.h"
#include "upstream/wire.h"

void *sl_httpcall_start(const struct sl_wire *w, struct sl_upstream *up,
                        const struct sl_call_params *p, const struct sl_upstream_sink *sink,
                        void *ud, struct sl_upstream_error *err);
void sl_httpcall_cancel(void *call);
void sl_httpcall_pause(void *call);
void sl_httpcall_resume(void *call);
bool sl_httpcall_queued(void *call);

/*
 * Defines `static void *start_<name>(...)` and the `const struct sl_provider_ops` named
 * `ops_name` for the wire `wire`, so that an adapter file ends with one line.
 */
#define SL_HTTPCALL_PROVIDER(ops_name, kind_name, wire)                                            \
    static void *ops_name##_start(struct sl_upstream *up, const struct sl_call_params *p,          \
                                  const struct sl_upstream_sink *sink, void *ud,                   \
                                  struct sl_upstream_error *err)                                   \
    {                                                                                              \
        return sl_httpcall_start(&(wire), up, p, sink, ud, err);                                   \
    }                                                                                              \
    const struct sl_provider_ops ops_name = {                                                      \
        .kind = (kind_name),                                                                       \
        .start = ops_name##_start,                                                                 \
        .cancel = sl_httpcall_cancel,                                                              \
        .pause = sl_httpcall_pause,                                                                \
        .resume = sl_httpcall_resume,                                                              \
        .queued = sl_httpcall_queued,                                                              \
    }

#endif
