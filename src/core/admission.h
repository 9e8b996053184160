/*
 * Admission: whether a chat request may start, and starting it.
 *
 * Every front end (the native WebSocket protocol today; Socket.IO, the seed dialects and
 * the HTTP API next) turns a client's request into a canonical sl_chat_req and asks here.
 * Admission refuses while the worker drains, applies the limits that do not belong to a
 * connection, resolves the model and creates the stream in the worker's table. What is
 * per connection (streams on this connection, message budget before authentication)
 * stays with the caller.
 */
#ifndef SL_CORE_ADMISSION_H
#define SL_CORE_ADMISSION_H

#include <stdbool.h>
#include <stdint.h>

#include "base/codes.h"
#include "canon/request.h"
#include "stream/stream.h"

struct sl_limits;

struct sl_admission {
    struct sl_stream_env env; /* what new streams get */
    struct sl_limits *limits; /* per-identity limits and budgets (process-wide); NULL: none */
    bool draining;
};

/* Why a request was refused. */
struct sl_refusal {
    enum sl_errcode code;
    char message[200];
    int64_t retry_after_ms; /* -1: none */
};

void sl_admission_init(struct sl_admission *a, const struct sl_stream_env *env);

/*
 * Creates the stream for req (ownership passes here: to the stream, or freed) under id,
 * for owner. Returns the stream, not yet started (attach a reader, then
 * sl_stream_start()), or NULL with *why filled.
 */
struct sl_stream *sl_admission_chat(struct sl_admission *a, const struct sl_stream_owner *owner,
                                    struct sl_chat_req *req, const char *id,
                                    struct sl_refusal *why);

#endif
