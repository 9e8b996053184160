/*
 * The OpenAI-compatible HTTP API (docs/http-api.md): POST /v1/chat/completions (SSE or one
 * JSON object), GET /v1/models, and GET /v1/chat/completions/<stream>/events to resume an
 * SSE stream after a cut connection.
 *
 * A request is its own front end over the same admission, streams, journals and limits as
 * the WebSocket protocols: it reads its one stream's journal as that stream's reader
 * (stream.h), renders OpenAI's chunks (proto/openai_http.h) into a held HTTP response while
 * the connection has room, and leaves the rest in the journal (the provider pauses).
 *
 * The head waits for the provider's first token or error, so that a provider's refusal is
 * an HTTP status with an OpenAI-shaped error. A client that disconnects cancels the
 * provider's request at once, unless the request asked to be resumable (header
 * `x-sluice-resumable: true` or `1`, streaming only): then the stream waits for
 * resume.window, and a GET .../events with Last-Event-ID (or ?last_event_id=) from the same
 * user, on any worker, replays the chunks after that id and follows the live tail.
 *
 * A chat completion is a message of its identity (limits.messages_per_minute, the bucket
 * its WebSocket connections share); every error answer carries the retry headers of
 * sl_oai_error_headers().
 */
#ifndef SL_CORE_HTTP_API_H
#define SL_CORE_HTTP_API_H

#include <stdbool.h>

#include "base/util.h"

struct sl_worker;
struct sl_conn;
struct sl_http_req;
struct sl_http_api;

struct sl_http_api *sl_http_api_new(struct sl_worker *w);

/* Every response is gone (the worker's connections are closed); frees what is left. */
void sl_http_api_free(struct sl_http_api *a);

/* Stopping: detached requests let their streams go. */
void sl_http_api_shutdown(struct sl_http_api *a);

/* Whether path is one of the API's (they take POST bodies). */
bool sl_http_api_owns(struct sl_slice path);

/* Serves a request for one of the API's paths; returns the status logged. */
int sl_http_api_handle(struct sl_http_api *a, struct sl_conn *c, struct sl_http_req *req);

#endif
