/*
 * The `chat` dialect (seed 000): Socket.IO events `chat` and `abort` in; `chat:start`,
 * `chat:chunk`, `chat:complete`, `chat:error` and `error` out, the stream's id in `requestId`.
 * The contract is ../shared/DIALECTS.md; what the session provides, proto/dialects.h.
 */
#include "proto/dialect_kit.h"
#include "proto/dialects.h"

/* --- parsing ------------------------------------------------------------------------ */

/* The seed's request, plus the native protocol's request fields. */
static const struct sl_dk_field chat_fields[] = {
    {"requestId", SL_DK_ID, 0, 0},          {"model", SL_DK_MODEL, 0, 0},
    {"messages", SL_DK_MESSAGES, 0, 0},     {"message", SL_DK_MESSAGE, 0, 0},
    {"agent", SL_DK_AGENT, 0, 0},           {"system", SL_DK_SYSTEM, 0, 0},
    {"max_tokens", SL_DK_MAX_TOKENS, 0, 0}, {"temperature", SL_DK_TEMPERATURE, 0, 0},
    {"top_p", SL_DK_TOP_P, 0, 0},           {"stop", SL_DK_STOP, 0, 0},
    {"tools", SL_DK_TOOLS, 0, 0},           {"tool_choice", SL_DK_TOOL_CHOICE, 0, 0},
    {"metadata", SL_DK_METADATA, 0, 0},
};

static const struct sl_dk_field abort_fields[] = {
    {"requestId", SL_DK_ID, SL_DK_REQUIRED, 0},
};

static const struct sl_dk_event events[] = {
    {"chat", SL_CMD_CHAT, chat_fields, SL_ARRAY_LEN(chat_fields)},
    {"abort", SL_CMD_CANCEL, abort_fields, SL_ARRAY_LEN(abort_fields)},
};

static int
chat_parse(const struct sl_proto_limits *lim, const char *event, const char *msg, size_t len,
           struct sl_command *cmd, struct sl_proto_error *err)
{
    return sl_dk_parse_sio(events, SL_ARRAY_LEN(events), lim, event, msg, len, cmd, err);
}

/* --- rendering ---------------------------------------------------------------------- */

static void
head(struct sl_buf *b, const struct sl_stream_view *st)
{
    SL_JSONW_LIT(b, "{\"requestId\":");
    sl_jsonw_str(b, st->id, st->id_len);
}

static void
usage(struct sl_buf *b, const struct sl_usage *u)
{
    SL_DK_OBJ(b, "usage");
    SL_DK_UINT(b, "promptTokens", u->input_tokens);
    SL_DK_UINT(b, "completionTokens", u->output_tokens);
    if (u->estimated)
        SL_DK_LIT(b, "estimated", "true");
    sl_buf_append_byte(b, '}');
}

static void
chat_event(struct sl_proto_sink *sink, const struct sl_stream_view *st, const struct sl_event *ev)
{
    struct sl_buf *b = sink->buf;
    switch (ev->type) {
    case SL_EV_START:
        head(b, st);
        SL_DK_CSTR(b, "model", ev->u.start.model ? ev->u.start.model : st->model);
        SL_DK_CSTR(b, "provider", ev->u.start.provider ? ev->u.start.provider : st->provider);
        sl_buf_append_byte(b, '}');
        sl_dk_emit(sink, "chat:start");
        break;
    case SL_EV_PROGRESS:
        break; /* the seed has no progress event */
    case SL_EV_DELTA:
        head(b, st);
        if (ev->u.delta.tool) {
            SL_DK_LIT(b, "content", "\"\"");
            SL_DK_KEY(b, "toolCall");
            sl_dk_tool(b, ev->u.delta.tool);
        } else {
            SL_DK_STR(b, "content", ev->u.delta.text, ev->u.delta.len);
        }
        sl_buf_append_byte(b, '}');
        sl_dk_emit(sink, "chat:chunk");
        break;
    case SL_EV_DONE:
        /* The seed's server sends the provider's finishReason on a last, empty chunk. */
        head(b, st);
        SL_DK_LIT(b, "content", "\"\"");
        SL_DK_CSTR(b, "finishReason", sl_finish_name(ev->u.done.finish));
        sl_buf_append_byte(b, '}');
        sl_dk_emit(sink, "chat:chunk");
        head(b, st);
        usage(b, &ev->u.done.usage);
        SL_DK_USD(b, "cost_usd", ev->u.done.cost_usd);
        SL_DK_CSTR(b, "finishReason", sl_finish_name(ev->u.done.finish));
        SL_DK_UINT(b, "latencyMs", ev->u.done.latency_ms);
        SL_DK_CSTR(b, "model", ev->u.done.model ? ev->u.done.model : st->model);
        SL_DK_CSTR(b, "provider", ev->u.done.provider ? ev->u.done.provider : st->provider);
        sl_buf_append_byte(b, '}');
        sl_dk_emit(sink, "chat:complete");
        break;
    case SL_EV_ERROR:
        head(b, st);
        sl_dk_error_fields(b, ev->u.error.message, sl_errcode_name(ev->u.error.code),
                           ev->u.error.retryable, ev->u.error.retry_after_ms);
        usage(b, &ev->u.error.usage);
        sl_buf_append_byte(b, '}');
        sl_dk_emit(sink, "chat:error");
        break;
    case SL_EV_CANCELLED:
        /* The seed has no cancelled event: an abort ends the stream with chat:error. */
        head(b, st);
        sl_dk_error_fields(b, "aborted", SL_DK_CANCELLED, false, -1);
        SL_DK_CSTR(b, "reason", ev->u.cancelled.reason);
        usage(b, &ev->u.cancelled.usage);
        sl_buf_append_byte(b, '}');
        sl_dk_emit(sink, "chat:error");
        break;
    }
}

/*
 * A refused message: `chat:error` when it named a request (the client's handler for that
 * request hears of it), else the seed's `error` {message} for a payload it could not read.
 */
static void
chat_error(struct sl_proto_sink *sink, const char *id, enum sl_errcode code, const char *message,
           int64_t retry_after_ms)
{
    struct sl_buf *b = sink->buf;
    sl_buf_append_byte(b, '{');
    if (id)
        SL_DK_CSTR(b, "requestId", id);
    else
        SL_DK_CSTR(b, "message", message ? message : "");
    sl_dk_error_fields(b, message, sl_errcode_name(code), sl_dk_retryable(code), retry_after_ms);
    sl_buf_append_byte(b, '}');
    sl_dk_emit(sink, id ? "chat:error" : "error");
}

const struct sl_proto sl_proto_chat = {
    .name = "chat",
    .flags = SL_PROTO_VIEW_INFO,
    .parse = chat_parse,
    .event = chat_event,
    .error = chat_error,
};
