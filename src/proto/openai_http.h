/*
 * The OpenAI-compatible HTTP API's protocol layer (docs/http-api.md): parsing a
 * `POST /v1/chat/completions` body into the canonical request, rendering canonical
 * events as OpenAI's `chat.completion.chunk` SSE stream or as one aggregated
 * `chat.completion`, the `GET /v1/models` list, and OpenAI-shaped error bodies with
 * their HTTP status.
 *
 * Like every adapter under proto/ this is pure: it never sees a connection, a loop or a
 * stream. The caller (the HTTP wiring in core/) owns the response: it sends the status
 * and head, then the bytes appended here. Names are sl_oai_*.
 *
 * A call's life, as the wiring drives it:
 *
 *   sl_oai_parse_chat()          body -> struct sl_oai_chat, or struct sl_oai_error
 *   stream: true                 sl_oai_stream_init(), then for each event
 *                                sl_oai_sse_event() (and sl_oai_sse_heartbeat() while
 *                                waiting), sl_oai_stream_cleanup()
 *   stream: false                sl_oai_agg_new(), sl_oai_agg_event() for each event until
 *                                it says COMPLETE or FAILED, then sl_oai_agg_render() or
 *                                sl_oai_render_error(), sl_oai_agg_free()
 *   errors before the head       sl_oai_error_from_event() / sl_oai_error_set(), then
 *                                sl_oai_error_status(), sl_oai_retry_after_s() for the
 *                                head and sl_oai_render_error() for the body
 *
 * Rendering runs once per token: it writes with base/jsonw.h straight into the caller's
 * buffer and never allocates besides growing that buffer.
 */
#ifndef SL_PROTO_OPENAI_HTTP_H
#define SL_PROTO_OPENAI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/codes.h"
#include "canon/event.h"
#include "canon/request.h"
#include "proto/proto.h"

/* --- errors ------------------------------------------------------------------------------ */

/*
 * An error as the API reports it: `{"error":{"message","type","param","code"}}` with an
 * HTTP status. `type`, `code` and the status follow from the sluice code through one
 * table (sl_oai_error_status/_type/_code; docs/http-api.md prints it).
 */
struct sl_oai_error {
    enum sl_errcode code;
    char param[64];         /* the request field at fault, "" for none (rendered null) */
    char message[256];      /* never empty once set */
    int64_t retry_after_ms; /* -1: none known */
    bool retryable;         /* whether a client should try again (x-should-retry) */
};

/*
 * Sets e (param "" and retry_after_ms -1 unless given; retryable as the code is by
 * sl_errcode_retryable()) and returns -1.
 */
int sl_oai_error_set(struct sl_oai_error *e, enum sl_errcode code, const char *param,
                     int64_t retry_after_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/*
 * The error an SL_EV_ERROR or SL_EV_CANCELLED event stands for (other events: INTERNAL).
 * An error event's own retryable flag wins over its code's: a provider's 404 is an
 * UPSTREAM_ERROR that retrying will not cure.
 */
void sl_oai_error_from_event(struct sl_oai_error *e, const struct sl_event *ev);

/* HTTP status for a code: 400, 401, 404, 409, 429, 500, 502, 503 or 504. */
int sl_oai_error_status(enum sl_errcode code);

/* OpenAI's error `type` for a code ("invalid_request_error", "requests", ...). */
const char *sl_oai_error_type(enum sl_errcode code);

/* OpenAI's error `code` for a code ("invalid_api_key", "model_not_found", ...). */
const char *sl_oai_error_code(enum sl_errcode code);

/*
 * The Retry-After header's value in whole seconds (rounded up), or -1 for no header.
 * A 429 or 503 without a known delay says 1, so that clients back off instead of
 * hammering.
 */
long long sl_oai_retry_after_s(const struct sl_oai_error *e);

/*
 * Writes the head lines every error answer carries into out (each ending in "\r\n",
 * NUL-terminated; n >= SL_OAI_ERROR_HEADERS_MAX always suffices): `Retry-After` (above),
 * `retry-after-ms` with the exact delay when known (the OpenAI SDKs read it first), and
 * `x-should-retry: false` when !e->retryable, since the SDKs otherwise retry every 429 and
 * 5xx, a spent budget or a provider's refusal included. Returns out.
 */
#define SL_OAI_ERROR_HEADERS_MAX 96
const char *sl_oai_error_headers(const struct sl_oai_error *e, char *out, size_t n);

/* Appends the error body `{"error":{...}}` (no newline). */
void sl_oai_render_error(struct sl_buf *out, const struct sl_oai_error *e);

/* --- request ----------------------------------------------------------------------------- */

/* A parsed chat completion request. Owns everything it points to. */
struct sl_oai_chat {
    struct sl_chat_req *req; /* id NULL (the stream id is the server's); model may be NULL */
    bool stream;
    bool include_usage; /* stream_options.include_usage */
    char *user;         /* the `user` field, or NULL */
};

void sl_oai_chat_clear(struct sl_oai_chat *c);

/*
 * Parses a `POST /v1/chat/completions` body. The fields sluice uses (docs/http-api.md)
 * are validated by the rules every protocol shares (proto/common.h); unknown fields are
 * ignored; `n` other than 1 is refused. The sluice extension `agent` names an agent
 * preset. Returns 0 with *out filled, or -1 with *err set (out is left cleared).
 * lim->max_id_len is not used (the request carries no stream id).
 */
int sl_oai_parse_chat(const struct sl_proto_limits *lim, const char *body, size_t len,
                      struct sl_oai_chat *out, struct sl_oai_error *err);

/*
 * For a `model` that names an agent preset rather than a model (the OpenAI API has no
 * other place to put one): moves req->model to req->agent. The wiring calls it when its
 * router knows the name only as an agent.
 */
void sl_oai_model_as_agent(struct sl_chat_req *req);

/* --- streaming responses ----------------------------------------------------------------- */

/*
 * What the chunks of one response repeat. Built once per response; rendering an event
 * then copies this prefix instead of escaping the same strings per token.
 */
struct sl_oai_stream {
    struct sl_buf chunk_head; /* {"id":"chatcmpl-<id>",...,"choices":[ */
    struct sl_buf id_line;    /* "id: <stream id>:" (control bytes replaced by '_') */
    bool include_usage;
};

/*
 * stream_id: the sluice stream id (the response's `id` is "chatcmpl-" + it, and every SSE
 * event's `id:` is "<stream_id>:<seq>"); model: the name echoed in `model`; created: unix
 * seconds of the request.
 */
void sl_oai_stream_init(struct sl_oai_stream *s, const char *stream_id, size_t stream_id_len,
                        const char *model, uint64_t created, bool include_usage);
void sl_oai_stream_cleanup(struct sl_oai_stream *s);

/*
 * Appends the SSE bytes for one canonical event (zero, one or several complete SSE
 * events, each ending in a blank line) and returns 1 if the event ends the response
 * (done, error, cancelled: the caller then ends the body), else 0.
 *
 * The output is a function of the event alone, so replaying a journal from any sequence
 * number yields exactly the bytes a live client got after it:
 *   start      the first chunk, `delta: {"role":"assistant","content":""}`
 *   progress   nothing
 *   delta      a content chunk, or a tool-call chunk (index; id, type and name on a call's
 *              first fragment; arguments text)
 *   done       the finish chunk (`finish_reason`), the usage chunk (`choices: []`) when
 *              include_usage, then `data: [DONE]`
 *   error,     `data: {"error":{...}}` as OpenAI does mid-stream, and no [DONE]
 *   cancelled
 * Each SSE event carries `id: <stream>:<seq>`; of the events of a `done`, only the last
 * one does, so a client cut off inside them resumes before them (a repeated finish chunk
 * rather than a lost [DONE]).
 */
int sl_oai_sse_event(const struct sl_oai_stream *s, struct sl_buf *out, const struct sl_event *ev);

/* An in-stream error not carried by an event (the wiring's own), then the end. */
void sl_oai_sse_error(struct sl_buf *out, const struct sl_oai_error *e);

/* A heartbeat: the SSE comment ": keep-alive" and its blank line. */
void sl_oai_sse_heartbeat(struct sl_buf *out);

/*
 * Parses a Last-Event-ID value "<stream>:<seq>" (split at the last ':'). Returns 0 with
 * the stream id as a slice of s and the sequence number, -1 if malformed.
 */
int sl_oai_parse_event_id(const char *s, size_t n, const char **stream, size_t *stream_len,
                          uint64_t *seq);

/* --- non-streaming responses ------------------------------------------------------------- */

enum sl_oai_agg_state {
    SL_OAI_AGG_MORE,     /* keep feeding events */
    SL_OAI_AGG_COMPLETE, /* done: render with sl_oai_agg_render() */
    SL_OAI_AGG_FAILED,   /* error, cancel, or over the cap: sl_oai_agg_error() */
};

struct sl_oai_agg;

/*
 * An aggregator for one `stream: false` response. max_bytes caps what it holds (content
 * plus tool-call ids, names and arguments, plus 64 bytes per tool call); past it the
 * response fails with TOO_LARGE naming the cap. Freed with sl_oai_agg_free().
 */
struct sl_oai_agg *sl_oai_agg_new(size_t max_bytes);
void sl_oai_agg_free(struct sl_oai_agg *a);

/* Feeds one event. Once COMPLETE or FAILED, further events are ignored. */
enum sl_oai_agg_state sl_oai_agg_event(struct sl_oai_agg *a, const struct sl_event *ev);

/* Why the response failed (valid in state FAILED). */
const struct sl_oai_error *sl_oai_agg_error(const struct sl_oai_agg *a);

/*
 * Appends the `chat.completion` object (valid in state COMPLETE): id "chatcmpl-<stream_id>",
 * the message with its content (null when there is none and tool calls were made) and
 * tool_calls assembled from their fragments, finish_reason and usage.
 */
void sl_oai_agg_render(const struct sl_oai_agg *a, struct sl_buf *out, const char *stream_id,
                       size_t stream_id_len, const char *model, uint64_t created);

/* --- GET /v1/models -------------------------------------------------------------------- */

/*
 * Appends `{"object":"list","data":[{"id","object":"model","created","owned_by"},...]}`:
 * the models (owned_by: their provider), then the agents (owned_by: the provider of the
 * agent's model when it is among `models`, else "sluice"). The caller passes what this
 * caller may use.
 */
void sl_oai_render_models(struct sl_buf *out, const struct sl_ready_model *models, size_t nmodels,
                          const struct sl_ready_agent *agents, size_t nagents, uint64_t created);

#endif
