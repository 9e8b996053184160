/*
 * The `llm` dialect (seed 004): Socket.IO events `llm:chat:stream` and `llm:stream:cancel` in;
 * `llm:chat:stream:acknowledged`, `llm:stream:start`, `llm:stream:token`, `llm:stream:done`,
 * `llm:stream:cancel:acknowledged`, `llm:stream:cancelled` and `llm:stream:error` out, the
 * stream's id (the client's) in `sessionId`. The contract is ../shared/DIALECTS.md; what the
 * session provides, and the order it keeps, proto/dialects.h.
 */
#include "proto/dialect_kit.h"
#include "proto/dialects.h"

/* --- parsing ------------------------------------------------------------------------ */

static const struct sl_dk_field stream_fields[] = {
    {"sessionId", SL_DK_ID, SL_DK_REQUIRED, 0},
    {"provider", SL_DK_PROVIDER, 0, 0},
    {"messages", SL_DK_MESSAGES, SL_DK_REQUIRED, 0},
    {"model", SL_DK_MODEL, 0, 0},
};

static const struct sl_dk_field cancel_fields[] = {
    {"sessionId", SL_DK_ID, SL_DK_REQUIRED, 0},
};

static const struct sl_dk_event events[] = {
    {"llm:chat:stream", SL_CMD_CHAT, stream_fields, SL_ARRAY_LEN(stream_fields)},
    {"llm:stream:cancel", SL_CMD_CANCEL, cancel_fields, SL_ARRAY_LEN(cancel_fields)},
};

static int
llm_parse(const struct sl_proto_limits *lim, const char *event, const char *msg, size_t len,
          struct sl_command *cmd, struct sl_proto_error *err)
{
    return sl_dk_parse_sio(events, SL_ARRAY_LEN(events), lim, event, msg, len, cmd, err);
}

/* --- rendering ---------------------------------------------------------------------- */

static void
head(struct sl_buf *b, const char *id, size_t id_len)
{
    SL_JSONW_LIT(b, "{\"sessionId\":");
    sl_jsonw_str(b, id, id_len);
}

static void
tail(struct sl_proto_sink *sink, uint64_t now_ms, const char *event)
{
    SL_DK_TIME(sink->buf, "timestamp", now_ms);
    sl_buf_append_byte(sink->buf, '}');
    sl_dk_emit(sink, event);
}

static void
llm_event(struct sl_proto_sink *sink, const struct sl_stream_view *st, const struct sl_event *ev)
{
    struct sl_buf *b = sink->buf;
    uint64_t now = sl_dk_view_now(st);
    switch (ev->type) {
    case SL_EV_START:
        head(b, st->id, st->id_len);
        SL_DK_CSTR(b, "provider", ev->u.start.provider ? ev->u.start.provider : st->provider);
        SL_DK_CSTR(b, "model", ev->u.start.model ? ev->u.start.model : st->model);
        tail(sink, now, "llm:stream:start");
        break;
    case SL_EV_PROGRESS:
        break; /* the seed has no progress event */
    case SL_EV_DELTA:
        head(b, st->id, st->id_len);
        if (ev->u.delta.tool) {
            SL_DK_LIT(b, "token", "\"\"");
            SL_DK_KEY(b, "toolCall");
            sl_dk_tool(b, ev->u.delta.tool);
        } else {
            SL_DK_STR(b, "token", ev->u.delta.text, ev->u.delta.len);
        }
        tail(sink, now, "llm:stream:token");
        break;
    case SL_EV_DONE: {
        const struct sl_usage *u = &ev->u.done.usage;
        head(b, st->id, st->id_len);
        SL_DK_CSTR(b, "provider", ev->u.done.provider ? ev->u.done.provider : st->provider);
        SL_DK_STR(b, "fullResponse", st->text ? st->text : "", st->text_len);
        SL_DK_UINT(b, "tokenCount", u->output_tokens);
        SL_DK_CSTR(b, "model", ev->u.done.model ? ev->u.done.model : st->model);
        SL_DK_CSTR(b, "finishReason", sl_finish_name(ev->u.done.finish));
        SL_DK_OBJ(b, "usage");
        SL_DK_UINT(b, "inputTokens", u->input_tokens);
        SL_DK_UINT(b, "outputTokens", u->output_tokens);
        if (u->estimated)
            SL_DK_LIT(b, "estimated", "true");
        sl_buf_append_byte(b, '}');
        SL_DK_USD(b, "cost_usd", ev->u.done.cost_usd);
        SL_DK_UINT(b, "latencyMs", ev->u.done.latency_ms);
        tail(sink, now, "llm:stream:done");
        break;
    }
    case SL_EV_ERROR:
        head(b, st->id, st->id_len);
        sl_dk_error_fields(b, ev->u.error.message, sl_errcode_name(ev->u.error.code),
                           ev->u.error.retryable, ev->u.error.retry_after_ms);
        SL_DK_CSTR(b, "provider", st->provider);
        tail(sink, now, "llm:stream:error");
        break;
    case SL_EV_CANCELLED:
        head(b, st->id, st->id_len);
        SL_DK_CSTR(b, "reason", ev->u.cancelled.reason);
        tail(sink, now, "llm:stream:cancelled");
        break;
    }
}

/* A refused message; the seed's client matches errors by sessionId (null when none was read). */
static void
llm_error(struct sl_proto_sink *sink, const char *id, enum sl_errcode code, const char *message,
          int64_t retry_after_ms)
{
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"sessionId\":");
    sl_dk_cstr_or_null(b, id);
    sl_dk_error_fields(b, message, sl_errcode_name(code), sl_dk_retryable(code), retry_after_ms);
    tail(sink, sl_dk_sink_now(sink), "llm:stream:error");
}

static void
llm_accepted(struct sl_proto_sink *sink, const struct sl_stream_view *st)
{
    struct sl_buf *b = sink->buf;
    head(b, st->id, st->id_len);
    SL_DK_LIT(b, "status", "\"accepted\"");
    SL_DK_CSTR(b, "provider", st->provider);
    SL_DK_CSTR(b, "model", st->model);
    tail(sink, sl_dk_view_now(st), "llm:chat:stream:acknowledged");
}

static void
llm_cancel_reply(struct sl_proto_sink *sink, const char *id, bool found)
{
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"sessionId\":");
    sl_jsonw_cstr(b, id);
    if (found)
        SL_DK_LIT(b, "status", "\"cancelled\"");
    else
        SL_DK_LIT(b, "status", "\"not_found\"");
    tail(sink, sl_dk_sink_now(sink), "llm:stream:cancel:acknowledged");
}

const struct sl_proto sl_proto_llm = {
    .name = "llm",
    .flags = SL_PROTO_FULL_TEXT | SL_PROTO_VIEW_INFO,
    .parse = llm_parse,
    .event = llm_event,
    .error = llm_error,
    .accepted = llm_accepted,
    .cancel_reply = llm_cancel_reply,
};
