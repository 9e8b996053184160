/*
 * Canonical stream events: what every provider adapter produces and every protocol
 * adapter renders.
 *
 * The stream (stream.c) stamps each event with the stream's id and the next sequence
 * number and hands it to its subscriber's protocol adapter, which turns it into the
 * client's wire format (native JSON, the seeds' dialects, Socket.IO, SSE). Events are
 * passed by pointer and only live for the call; strings are borrowed.
 */
#ifndef SL_CANON_EVENT_H
#define SL_CANON_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/codes.h"

enum sl_event_type {
    SL_EV_START,
    SL_EV_PROGRESS,
    SL_EV_DELTA,
    SL_EV_DONE,
    SL_EV_ERROR,
    SL_EV_CANCELLED,
};

struct sl_usage {
    uint64_t input_tokens;
    uint64_t output_tokens;
    bool estimated; /* computed by sluice because the provider sent none */
};

/* A fragment of a tool call, passed through as the provider sent it. */
struct sl_tool_delta {
    int index;
    const char *id; /* NULL except on a call's first fragment */
    size_t id_len;
    const char *name; /* NULL except on a call's first fragment */
    size_t name_len;
    const char *arguments; /* a piece of the JSON arguments text */
    size_t arguments_len;
};

struct sl_event {
    enum sl_event_type type;
    uint32_t seq;
    union {
        struct {
            const char *epoch;
            const char *model;    /* as the client named it (or the fallback in use) */
            const char *provider; /* provider name from the config */
        } start;
        struct {
            const char *step;   /* routing, connecting, generating, retrying, fallback */
            const char *detail; /* optional: the model fallen back to, the retry delay ... */
        } progress;
        struct {
            const char *text; /* UTF-8, complete characters */
            size_t len;
            const struct sl_tool_delta *tool; /* or NULL */
        } delta;
        struct {
            enum sl_finish finish;
            const char *native_finish; /* the provider's own value, or NULL */
            struct sl_usage usage;
            double cost_usd;
            uint64_t ttft_ms;
            uint64_t latency_ms;
            const char *model;
            const char *provider;
        } done;
        struct {
            enum sl_errcode code;
            const char *message;
            bool retryable;
            int64_t retry_after_ms; /* -1 if none */
            struct sl_usage usage;  /* consumed before the failure */
        } error;
        struct {
            struct sl_usage usage; /* consumed before the cancel */
            const char *reason;    /* "client", "disconnect", "shutdown" */
        } cancelled;
    } u;
};

#endif
