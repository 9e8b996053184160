/*
 * A stream: one chat request's life, from routing to its last event.
 *
 * The stream is the one module that sees both sides. It resolves the model, runs the
 * provider call (with retries and fallbacks before the first token, never after),
 * stamps each canonical event with its id and sequence number, keeps the timings and
 * usage, and hands events to its subscriber (the client session). It owns its request
 * and its provider call; it frees itself after its terminal event (done, error or
 * cancelled), after telling the subscriber through on_finished.
 *
 * Re-entrancy: sl_stream_start(), sl_stream_cancel() and sl_stream_detach() may emit
 * events and finish the stream before they return: the caller must not use the stream
 * pointer after calling them unless it learns otherwise through its callbacks.
 */
#ifndef SL_STREAM_STREAM_H
#define SL_STREAM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/codes.h"
#include "canon/event.h"
#include "canon/request.h"
#include "proto/proto.h"

struct sl_config;
struct sl_upstream;
struct sl_metrics;
struct sl_stream;

/* What a stream needs from its worker. Borrowed; outlives every stream. */
struct sl_stream_env {
    const struct sl_config *cfg;
    struct sl_upstream *up;
    struct sl_metrics *metrics;
    const char *session; /* session id, for logs; must outlive the stream */
    const char *user;    /* who asked, for logs (NULL if unknown); must outlive the stream */
    uint64_t conn;       /* connection id, for logs (0 if none) */
    unsigned worker;     /* worker id, for logs */
};

struct sl_stream_sub {
    /* An event for the client. */
    void (*on_event)(void *ud, struct sl_stream *s, const struct sl_event *ev);
    /* The stream is over and is freed when this returns. */
    void (*on_finished)(void *ud, struct sl_stream *s);
};

/*
 * Creates a stream for req (ownership passes to the stream) under the given id (copied).
 * Resolves the agent and model; on failure returns NULL with *code and *why set
 * (UNKNOWN_MODEL) and req freed. keep_text: accumulate the output text for renderers
 * that need it.
 */
struct sl_stream *sl_stream_new(const struct sl_stream_env *env, struct sl_chat_req *req,
                                const char *id, const struct sl_stream_sub *sub, void *ud,
                                bool keep_text, enum sl_errcode *code, const char **why);

/* Emits start and calls the provider. May finish the stream before returning. */
void sl_stream_start(struct sl_stream *s);

/* The client asked to stop: the provider call ends at once and `cancelled` is emitted. */
void sl_stream_cancel(struct sl_stream *s, const char *reason);

/*
 * The subscriber is gone (disconnect). The stream ends without events to anyone; the
 * provider call is aborted. on_finished is not called.
 */
void sl_stream_detach(struct sl_stream *s);

const char *sl_stream_id(const struct sl_stream *s);
bool sl_stream_generating(const struct sl_stream *s);

/* For renderers: id, model, provider, and the text so far when keep_text was set. */
void sl_stream_view(const struct sl_stream *s, struct sl_stream_view *v);

#endif
