/*
 * The `ai` dialect (seed 003): Socket.IO events `ai:stream`, `ai:cancel`, `ai:heartbeat` and
 * `ai:reconnect` in; `ai:connected`, `ai:stream:start`, `ai:token`, `ai:stream:complete`,
 * `ai:done`, `ai:stream:cancelled`, `ai:stream:error`, `ai:error`, `ai:heartbeat:ack`,
 * `ai:backpressure` and `ai:reconnect:success` out, the stream's id in `streamId`. The
 * contract is ../shared/DIALECTS.md; what the session provides, proto/dialects.h.
 */
#include "proto/dialect_kit.h"
#include "proto/dialects.h"

/* --- parsing ------------------------------------------------------------------------ */

static const struct sl_dk_field stream_fields[] = {
    {"prompt", SL_DK_MESSAGE, SL_DK_REQUIRED, 0},
    {"model", SL_DK_MODEL, 0, 0},
    {"temperature", SL_DK_TEMPERATURE, 0, 0},
    {"maxTokens", SL_DK_MAX_TOKENS, 0, 0},
    {"streamId", SL_DK_ID, 0, 0},
    /* The seed's orchestrator and editor context: sluice answers with the model directly. */
    {"useOrchestrator", SL_DK_IGNORE, 0, 0},
    {"agentContext", SL_DK_IGNORE, 0, 0},
};

static const struct sl_dk_field cancel_fields[] = {
    {"streamId", SL_DK_ID, SL_DK_REQUIRED, 0},
};

static const struct sl_dk_field reconnect_fields[] = {
    {"previousClientId", SL_DK_PREVIOUS, SL_DK_REQUIRED, 0},
};

static const struct sl_dk_event events[] = {
    {"ai:stream", SL_CMD_CHAT, stream_fields, SL_ARRAY_LEN(stream_fields)},
    {"ai:cancel", SL_CMD_CANCEL, cancel_fields, SL_ARRAY_LEN(cancel_fields)},
    {"ai:heartbeat", SL_CMD_PING, NULL, 0},
    {"ai:reconnect", SL_CMD_RECONNECT, reconnect_fields, SL_ARRAY_LEN(reconnect_fields)},
};

static int
ai_parse(const struct sl_proto_limits *lim, const char *event, const char *msg, size_t len,
         struct sl_command *cmd, struct sl_proto_error *err)
{
    return sl_dk_parse_sio(events, SL_ARRAY_LEN(events), lim, event, msg, len, cmd, err);
}

/* --- rendering ---------------------------------------------------------------------- */

static void
head(struct sl_buf *b, const struct sl_stream_view *st)
{
    SL_JSONW_LIT(b, "{\"streamId\":");
    sl_jsonw_str(b, st->id, st->id_len);
}

static void
tail(struct sl_proto_sink *sink, uint64_t now_ms, const char *event)
{
    SL_DK_TIME(sink->buf, "timestamp", now_ms);
    sl_buf_append_byte(sink->buf, '}');
    sl_dk_emit(sink, event);
}

/* The seed's `agent` is its orchestrator's pick: here the agent preset, else the model. */
static const char *
agent_of(const struct sl_stream_view *st)
{
    return st->agent ? st->agent : st->model;
}

static void
ai_event(struct sl_proto_sink *sink, const struct sl_stream_view *st, const struct sl_event *ev)
{
    struct sl_buf *b = sink->buf;
    uint64_t now = sl_dk_view_now(st);
    switch (ev->type) {
    case SL_EV_START:
        head(b, st);
        SL_DK_CSTR(b, "model", ev->u.start.model ? ev->u.start.model : st->model);
        SL_DK_CSTR(b, "provider", ev->u.start.provider ? ev->u.start.provider : st->provider);
        SL_DK_CSTR(b, "agent", agent_of(st));
        tail(sink, now, "ai:stream:start");
        break;
    case SL_EV_PROGRESS:
        break; /* the seed has no progress event */
    case SL_EV_DELTA:
        head(b, st);
        if (ev->u.delta.tool) {
            SL_DK_LIT(b, "data", "\"\"");
            SL_DK_KEY(b, "toolCall");
            sl_dk_tool(b, ev->u.delta.tool);
        } else {
            SL_DK_STR(b, "data", ev->u.delta.text, ev->u.delta.len);
        }
        SL_DK_CSTR(b, "agent", agent_of(st));
        SL_DK_UINT(b, "tokenCount", st->tokens);
        SL_DK_OBJ(b, "metadata");
        SL_DK_CSTR(b, "model", st->model);
        SL_DK_CSTR(b, "provider", st->provider);
        sl_buf_append_byte(b, '}');
        tail(sink, now, "ai:token");
        break;
    case SL_EV_DONE: {
        const struct sl_usage *u = &ev->u.done.usage;
        head(b, st);
        SL_DK_CSTR(b, "agent", agent_of(st));
        SL_DK_LIT(b, "intent", "null");
        SL_DK_LIT(b, "confidence", "null");
        SL_DK_CSTR(b, "finishReason", sl_finish_name(ev->u.done.finish));
        tail(sink, now, "ai:stream:complete");
        head(b, st);
        SL_DK_UINT(b, "totalTokens", u->output_tokens);
        SL_DK_UINT(b, "duration", ev->u.done.latency_ms);
        SL_DK_OBJ(b, "usage");
        SL_DK_UINT(b, "inputTokens", u->input_tokens);
        SL_DK_UINT(b, "outputTokens", u->output_tokens);
        if (u->estimated)
            SL_DK_LIT(b, "estimated", "true");
        sl_buf_append_byte(b, '}');
        SL_DK_USD(b, "cost_usd", ev->u.done.cost_usd);
        SL_DK_CSTR(b, "model", ev->u.done.model ? ev->u.done.model : st->model);
        tail(sink, now, "ai:done");
        break;
    }
    case SL_EV_ERROR:
        head(b, st);
        sl_dk_error_fields(b, ev->u.error.message, sl_errcode_name(ev->u.error.code),
                           ev->u.error.retryable, ev->u.error.retry_after_ms);
        tail(sink, now, "ai:stream:error");
        break;
    case SL_EV_CANCELLED:
        head(b, st);
        SL_DK_CSTR(b, "reason", ev->u.cancelled.reason);
        SL_DK_UINT(b, "tokenCount", st->tokens);
        tail(sink, now, "ai:stream:cancelled");
        break;
    }
}

static void
ai_ready(struct sl_proto_sink *sink, const struct sl_ready_info *r)
{
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"clientId\":");
    sl_jsonw_cstr(b, r->session);
    SL_DK_UINT(b, "maxConcurrentStreams", r->max_streams);
    SL_DK_UINT(b, "backpressureThreshold", r->backpressure_bytes);
    SL_DK_UINT(b, "reconnectWindowMs", r->resume_window_ms);
    SL_DK_CSTR(b, "user", r->user);
    tail(sink, sl_dk_sink_now(sink), "ai:connected");
}

/*
 * A refused message: `ai:stream:error` when it named a stream (the client tracks streams by
 * id), else `ai:error` with the seed's `details`.
 */
static void
ai_error(struct sl_proto_sink *sink, const char *id, enum sl_errcode code, const char *message,
         int64_t retry_after_ms)
{
    struct sl_buf *b = sink->buf;
    const char *name = sl_errcode_name(code);
    bool retryable = sl_dk_retryable(code);
    sl_buf_append_byte(b, '{');
    if (id)
        SL_DK_CSTR(b, "streamId", id);
    sl_dk_error_fields(b, message, name, retryable, retry_after_ms);
    if (!id) {
        SL_DK_OBJ(b, "details");
        SL_DK_CSTR(b, "code", name);
        SL_DK_CSTR(b, "message", message ? message : "");
        sl_buf_append_byte(b, '}');
    }
    tail(sink, sl_dk_sink_now(sink), id ? "ai:stream:error" : "ai:error");
}

static void
ai_pong(struct sl_proto_sink *sink, const struct sl_pong_info *info)
{
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"activeStreams\":");
    sl_jsonw_uint(b, info->streams);
    SL_DK_UINT(b, "queueSize", info->queued);
    tail(sink, sl_dk_sink_now(sink), "ai:heartbeat:ack");
}

/* Only the pause is announced: the seed's client warns about it and has nothing for the end. */
static void
ai_backpressure(struct sl_proto_sink *sink, size_t queued, bool paused)
{
    if (!paused)
        return;
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"message\":\"client is behind: its streams wait (nothing is dropped)\"");
    SL_DK_UINT(b, "queueSize", queued);
    tail(sink, sl_dk_sink_now(sink), "ai:backpressure");
}

static void
ai_reconnected(struct sl_proto_sink *sink, const char *previous, const char *current)
{
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"previousClientId\":");
    sl_jsonw_cstr(b, previous);
    SL_DK_CSTR(b, "newClientId", current);
    tail(sink, sl_dk_sink_now(sink), "ai:reconnect:success");
}

const struct sl_proto sl_proto_ai = {
    .name = "ai",
    .flags = SL_PROTO_VIEW_INFO,
    .parse = ai_parse,
    .ready = ai_ready,
    .event = ai_event,
    .error = ai_error,
    .pong = ai_pong,
    .backpressure = ai_backpressure,
    .reconnected = ai_reconnected,
};
