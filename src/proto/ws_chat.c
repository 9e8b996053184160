/*
 * The `ws-chat` dialect (seed 002): JSON messages typed by "type" on a plain WebSocket
 * (/ws/chat). In: `auth`, `message` (one new user message of a conversation that sluice
 * remembers, src/memory), and sluice's own `cancel` and `ping`. Out: `auth_success`, `auth_error`,
 * `progress`, `token` (with the text so far), `complete`, `error` with the seed's three codes. The
 * contract is
 * ../shared/DIALECTS.md; what the session provides, proto/dialects.h.
 */
#include <string.h>

#include "proto/common.h"
#include "proto/dialect_kit.h"
#include "proto/dialects.h"

/* --- parsing ------------------------------------------------------------------------ */

static const struct sl_dk_field auth_fields[] = {
    {"token", SL_DK_TOKEN, SL_DK_REQUIRED, 0},
};

static const struct sl_dk_field message_fields[] = {
    {"message", SL_DK_MESSAGE, SL_DK_REQUIRED, SL_ERR_EMPTY_MESSAGE},
    {"session_id", SL_DK_CONVERSATION, 0, 0},
    {"customer_id", SL_DK_IGNORE, 0, 0}, /* the seed's CRM id: sluice has no use for it */
};

/*
 * Not in the seed, which can only stop an answer by disconnecting (and a disconnect is a
 * pause here: the stream goes on for a resume). The id is the stream_id of its events.
 */
static const struct sl_dk_field cancel_fields[] = {
    {"stream_id", SL_DK_ID, SL_DK_REQUIRED, 0},
};

static const struct sl_dk_event events[] = {
    {"auth", SL_CMD_AUTH, auth_fields, SL_ARRAY_LEN(auth_fields)},
    {"message", SL_CMD_CHAT, message_fields, SL_ARRAY_LEN(message_fields)},
    {"ping", SL_CMD_PING, NULL, 0}, /* not in the seed: for tools that check liveness */
    {"cancel", SL_CMD_CANCEL, cancel_fields, SL_ARRAY_LEN(cancel_fields)},
};

static int
ws_chat_parse(const struct sl_proto_limits *lim, const char *event, const char *msg, size_t len,
              struct sl_command *cmd, struct sl_proto_error *err)
{
    if (event != NULL)
        return SL_PROTO_NOT_MINE; /* a plain WebSocket dialect has no Socket.IO events */
    json_t *root = sl_proto_parse_object(msg, len, err);
    if (root == NULL)
        return -1;
    int rc = -1;
    json_t *type = json_object_get(root, "type");
    const struct sl_dk_event *ev = NULL;
    if (type == NULL)
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "missing \"type\"");
    else if (!json_is_string(type))
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"type\" must be a string");
    else if ((ev = sl_dk_find(events, SL_ARRAY_LEN(events), json_string_value(type))) == NULL)
        sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                      "unknown message type \"%.40s\" (expected auth, message, cancel or ping)",
                      json_string_value(type));
    else
        rc = sl_dk_command(lim, ev, root, cmd, err);
    json_decref(root);
    return rc;
}

/* --- rendering ---------------------------------------------------------------------- */

/* The seed's codes; every other sluice code is PROCESSING_ERROR with the code in `detail`. */
static const struct sl_dk_codemap codes[] = {
    {SL_ERR_AUTH_REQUIRED, "AUTH_REQUIRED"},
    {SL_ERR_EMPTY_MESSAGE, "EMPTY_MESSAGE"},
};

#define PROCESSING_ERROR "PROCESSING_ERROR"

/* The ids of the stream on every message: the conversation (the seed's) and the stream. */
static void
ids(struct sl_buf *b, const struct sl_stream_view *st)
{
    SL_DK_CSTR(b, "session_id", st->conversation);
    SL_DK_STR(b, "stream_id", st->id, st->id_len);
}

static void
open_type(struct sl_buf *b, const char *type)
{
    SL_JSONW_LIT(b, "{\"type\":\"");
    sl_buf_append_str(b, type);
    sl_buf_append_byte(b, '"');
}

static void
close_send(struct sl_proto_sink *sink)
{
    sl_buf_append_byte(sink->buf, '}');
    sl_dk_emit(sink, NULL);
}

/* The seed's steps are starting, agent_routing, rag_retrieval and generating. */
static void
progress(struct sl_buf *b, const struct sl_stream_view *st, const char *step, const char *detail)
{
    const char *name = st->agent ? st->agent : st->model;
    open_type(b, "progress");
    if (step == NULL) {
        SL_DK_LIT(b, "step", "\"starting\"");
        SL_DK_LIT(b, "message", "\"Processing started\"");
    } else if (strcmp(step, "generating") == 0) {
        SL_DK_LIT(b, "step", "\"generating\"");
        SL_DK_LIT(b, "message", "\"Generating response\"");
    } else {
        /* routing, connecting, queued, retrying, fallback: choosing and reaching the model. */
        SL_DK_LIT(b, "step", "\"agent_routing\"");
        SL_DK_KEY(b, "message");
        sl_buf_append_byte(b, '"');
        if (strcmp(step, "retrying") == 0) {
            SL_JSONW_LIT(b, "Retrying");
        } else if (strcmp(step, "fallback") == 0) {
            SL_JSONW_LIT(b, "Falling back to ");
            sl_jsonw_escape(b, detail ? detail : "another model", detail ? strlen(detail) : 13);
        } else {
            SL_JSONW_LIT(b, "Routing to ");
            sl_jsonw_escape(b, name ? name : "the model", name ? strlen(name) : 9);
        }
        sl_buf_append_byte(b, '"');
        SL_DK_CSTR(b, "sluice_step", step);
    }
    if (detail)
        SL_DK_CSTR(b, "detail", detail);
    ids(b, st);
}

static void
error_body(struct sl_buf *b, enum sl_errcode code, const char *code_name, const char *message,
           bool retryable, int64_t retry_after_ms)
{
    open_type(b, "error");
    sl_dk_error_fields(b, message,
                       code_name
                           ? PROCESSING_ERROR
                           : sl_dk_map_code(codes, SL_ARRAY_LEN(codes), code, PROCESSING_ERROR),
                       retryable, retry_after_ms);
    SL_DK_CSTR(b, "detail", code_name ? code_name : sl_errcode_name(code));
}

static void
ws_chat_event(struct sl_proto_sink *sink, const struct sl_stream_view *st,
              const struct sl_event *ev)
{
    struct sl_buf *b = sink->buf;
    switch (ev->type) {
    case SL_EV_START:
        progress(b, st, NULL, NULL);
        SL_DK_CSTR(b, "model", ev->u.start.model ? ev->u.start.model : st->model);
        close_send(sink);
        break;
    case SL_EV_PROGRESS:
        progress(b, st, ev->u.progress.step ? ev->u.progress.step : "routing",
                 ev->u.progress.detail);
        close_send(sink);
        break;
    case SL_EV_DELTA:
        /* A ws-chat request cannot carry tools, so no tool call comes back. */
        if (ev->u.delta.tool)
            break;
        open_type(b, "token");
        SL_DK_STR(b, "token", ev->u.delta.text, ev->u.delta.len);
        SL_DK_STR(b, "partial_response", st->text ? st->text : "", st->text_len);
        ids(b, st);
        close_send(sink);
        break;
    case SL_EV_DONE: {
        const char *agent =
            st->agent ? st->agent : (ev->u.done.model ? ev->u.done.model : st->model);
        open_type(b, "complete");
        SL_DK_STR(b, "response", st->text ? st->text : "", st->text_len);
        SL_DK_CSTR(b, "session_id", st->conversation);
        SL_DK_OBJ(b, "metadata");
        SL_DK_CSTR(b, "agent", agent);
        SL_DK_LIT(b, "confidence", "null");
        SL_DK_LIT(b, "context", "{\"sources\":[]}");
        SL_DK_CSTR(b, "model", ev->u.done.model ? ev->u.done.model : st->model);
        SL_DK_CSTR(b, "finish_reason", sl_finish_name(ev->u.done.finish));
        SL_DK_OBJ(b, "usage");
        SL_DK_UINT(b, "input_tokens", ev->u.done.usage.input_tokens);
        SL_DK_UINT(b, "output_tokens", ev->u.done.usage.output_tokens);
        sl_buf_append_byte(b, '}');
        SL_DK_USD(b, "cost_usd", ev->u.done.cost_usd);
        SL_DK_UINT(b, "latency_ms", ev->u.done.latency_ms);
        sl_buf_append_byte(b, '}');
        SL_DK_STR(b, "stream_id", st->id, st->id_len);
        close_send(sink);
        break;
    }
    case SL_EV_ERROR:
        error_body(b, ev->u.error.code, NULL, ev->u.error.message, ev->u.error.retryable,
                   ev->u.error.retry_after_ms);
        ids(b, st);
        close_send(sink);
        break;
    case SL_EV_CANCELLED:
        /* The seed has no cancel: sluice's `cancel` message, or a shutdown. */
        error_body(b, SL_ERR_NONE, SL_DK_CANCELLED, "cancelled", false, -1);
        SL_DK_CSTR(b, "reason", ev->u.cancelled.reason);
        ids(b, st);
        close_send(sink);
        break;
    }
}

static void
ws_chat_ready(struct sl_proto_sink *sink, const struct sl_ready_info *r)
{
    struct sl_buf *b = sink->buf;
    open_type(b, "auth_success");
    SL_DK_LIT(b, "message", "\"Authentication successful\"");
    SL_DK_OBJ(b, "user");
    SL_DK_CSTR(b, "id", r->sub);
    SL_DK_CSTR(b, "email", r->email);
    SL_DK_CSTR(b, "name", r->name);
    sl_buf_append_byte(b, '}');
    close_send(sink);
}

static void
ws_chat_error(struct sl_proto_sink *sink, const char *id, enum sl_errcode code, const char *message,
              int64_t retry_after_ms)
{
    struct sl_buf *b = sink->buf;
    if (code == SL_ERR_AUTH_FAILED) {
        /* The seed's text; sluice's reason goes beside it. */
        open_type(b, "auth_error");
        SL_DK_LIT(b, "message", "\"Invalid token\"");
        sl_dk_error_fields(b, message, "AUTH_FAILED", false, -1);
    } else {
        error_body(b, code, NULL, message, sl_dk_retryable(code), retry_after_ms);
        if (id)
            SL_DK_CSTR(b, "stream_id", id);
    }
    close_send(sink);
}

static void
ws_chat_pong(struct sl_proto_sink *sink, const struct sl_pong_info *info)
{
    struct sl_buf *b = sink->buf;
    open_type(b, "pong");
    SL_DK_UINT(b, "streams", info->streams);
    close_send(sink);
}

const struct sl_proto sl_proto_ws_chat = {
    .name = "ws-chat",
    .flags =
        SL_PROTO_FULL_TEXT | SL_PROTO_ONE_AT_A_TIME | SL_PROTO_VIEW_INFO | SL_PROTO_GREET_ON_AUTH,
    .parse = ws_chat_parse,
    .ready = ws_chat_ready,
    .event = ws_chat_event,
    .error = ws_chat_error,
    .pong = ws_chat_pong,
};
