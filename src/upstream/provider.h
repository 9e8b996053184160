/*
 * The provider adapter interface.
 *
 * A provider adapter runs one attempt of one chat request against one provider (a
 * "call") and reports what happens through a sink of canonical callbacks. The stream
 * (stream/stream.c) owns the request and decides about retries and fallbacks; the
 * adapter knows only its wire format.
 *
 * Contract, in order of a call's life:
 *   - start() never calls the sink. A failure known at once (no API key, bad URL) is
 *     returned, with *err filled, and no call exists.
 *   - Afterwards the sink receives any number of on_delta / on_tool_delta / on_usage,
 *     then exactly one terminal callback: on_done or on_error. The terminal callback is
 *     the adapter's last use of the sink; the adapter releases the call by itself after
 *     it (deferred if needed), and the caller must forget the handle.
 *   - cancel() may be called once, at any time before the terminal callback, including
 *     from inside any non-terminal sink callback (a delta, also one an HTTP adapter reads
 *     only when the body has ended, and on_usage just before the terminal callback); it
 *     stops the transfer at once (the provider sees its request end) and frees the call
 *     (deferred until the adapter's own code returns); no callback follows, and the call
 *     leaves the worker's active_calls exactly once (tests/unit/test_httpcall.c and
 *     test_demo.c cancel from every callback of every adapter).
 *   - pause()/resume() (optional) stop and restart reading from the provider, for
 *     backpressure; tokens are never dropped.
 */
#ifndef SL_UPSTREAM_PROVIDER_H
#define SL_UPSTREAM_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/codes.h"
#include "canon/event.h"
#include "canon/request.h"
#include "config/config.h"

struct sl_upstream;

struct sl_upstream_error {
    enum sl_errcode code;
    const char *message; /* safe for clients: never contains a key */
    bool retryable;
    int64_t retry_after_ms;  /* -1 if the provider said nothing */
    int http_status;         /* 0 if not an HTTP status error */
    const char *native_code; /* the provider's own error type/code, or NULL */
};

struct sl_upstream_sink {
    void (*on_delta)(void *ud, const char *text, size_t len);
    void (*on_tool_delta)(void *ud, const struct sl_tool_delta *tool);
    /* Usage as known so far (cumulative: the last report wins). */
    void (*on_usage)(void *ud, const struct sl_usage *usage);
    void (*on_done)(void *ud, enum sl_finish finish, const char *native_finish);
    void (*on_error)(void *ud, const struct sl_upstream_error *err);
};

/* Everything an adapter needs to build its request. Borrowed for the duration of start(). */
struct sl_call_params {
    const struct sl_chat_req *req;
    const struct sl_config_provider *provider;
    const char *upstream_model;
    const char *system; /* agent system prompt and request system prompt, joined; or NULL */
    int64_t max_tokens; /* -1: let the provider decide */
    double temperature;
    bool has_temperature;
    const char *request_id; /* for the provider's logs (e.g. an X-Request-Id) */
};

struct sl_provider_ops {
    const char *kind;
    void *(*start)(struct sl_upstream *up, const struct sl_call_params *p,
                   const struct sl_upstream_sink *sink, void *ud, struct sl_upstream_error *err);
    void (*cancel)(void *call);
    void (*pause)(void *call);  /* optional */
    void (*resume)(void *call); /* optional */
    /*
     * Optional: whether the call, just started, waits for a connection to the provider
     * (its pool is at max_connections): the stream tells the client (`progress: queued`).
     */
    bool (*queued)(void *call);
};

#endif
