/*
 * The client dialects the load generator speaks besides sluice's native WebSocket protocol:
 * Socket.IO v5 over Engine.IO v4's WebSocket transport (the native protocol as events in
 * the `/sluice` namespace, and the seed frontends' `chat`, `llm`, `stream` and `ai`
 * dialects), and `ws-chat`, JSON typed by "type" on a plain WebSocket. The events and their
 * fields are those of ../shared/DIALECTS.md and docs/protocol.md.
 *
 * A dialect is a table: the request it sends (an event and its fields), and the events it
 * reads: tokens (the text member, scanned without a JSON parse: they are the traffic), a
 * stream's start, end, failure and cancellation, errors not tied to a stream. The WebSocket
 * itself is wsconn.c's; this file adds the Engine.IO and Socket.IO framing: the open packet
 * `0{...}` answered with a CONNECT to the namespace (`40/nsp,{"token":...}`), the server's
 * pings `2` answered `3`, the CONNECT reply `40` (the connection is ready), CONNECT_ERROR
 * `44` (it failed, named by its message: INVALID_NAMESPACE, AUTHENTICATION_FAILED), and
 * events `42/nsp,["name",{...},"offset"]`.
 *
 * Stream ids: where the dialect lets the client name a stream (requestId, sessionId,
 * streamId, or id) the request carries the stream's number, as the native mode does; where
 * the server names them (`stream`'s sessionId, `ws-chat`'s stream_id) a stream is bound to
 * the name in its first event, in the order the requests were sent (sluice answers a
 * connection's requests in order).
 *
 * An event the dialect does not know, or an error not tied to a stream (a request the
 * namespace did not understand: the wrong dialect for the namespace), fails the connection
 * with a code, so that a misconfigured run ends at once with exit status 1 instead of
 * waiting for its timeout.
 */
#ifndef LG_DIALECT_H
#define LG_DIALECT_H

#include <stdbool.h>
#include <stddef.h>

#include "worker.h"

/* NULL if there is no such dialect. "native" is not one: it is the absence of a dialect. */
const struct lg_dialect *lg_dialect_find(const char *name);

/* The dialects' names, for the usage text: "sluice, chat, llm, stream, ai, ws-chat". */
const char *lg_dialect_names(void);

const char *lg_dialect_name(const struct lg_dialect *d);
bool lg_dialect_sio(const struct lg_dialect *d);        /* over Socket.IO */
const char *lg_dialect_nsp(const struct lg_dialect *d); /* its default namespace, or NULL */

/* What a request carries besides the stream's number. */
struct lg_request_opts {
    const char *model;    /* NULL: the server's default */
    const char *message;  /* the user's message */
    const char *provider; /* llm: a provider name; NULL: none */
    long long max_tokens; /* 0: none */
    const char *nsp;      /* Socket.IO namespace, "/..." */
};

/*
 * Builds cfg's chat_head / chat_tail / chat_id and sio_nsp for dialect d. Returns 0, or -1
 * with a message in err when an option cannot be expressed in the dialect (a model for
 * ws-chat, which always answers with the server's default model; --max-tokens where the
 * dialect has no such field; --provider outside llm; a namespace not starting with '/').
 */
int lg_dialect_build(const struct lg_dialect *d, const struct lg_request_opts *o,
                     struct lg_config *cfg, char *err, size_t errlen);

/* One text message from the server. */
void lg_dialect_text(struct lg_conn *c, const char *msg, size_t len);

#endif
