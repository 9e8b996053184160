/*
 * The `stream` dialect (seed 001): the Socket.IO event `stream_request` in; `stream_start`,
 * `stream_chunk`, `stream_complete` and `stream_error` out, the stream's id in `sessionId`,
 * with running token counts and cost on every chunk. The contract is ../shared/DIALECTS.md;
 * what the session provides, proto/dialects.h.
 */
#include "base/util.h"
#include "proto/dialect_kit.h"
#include "proto/dialects.h"

/* --- parsing ------------------------------------------------------------------------ */

static const struct sl_dk_field request_fields[] = {
    {"message", SL_DK_MESSAGE, SL_DK_REQUIRED, 0},
    {"systemPrompt", SL_DK_SYSTEM, 0, 0},
    {"temperature", SL_DK_TEMPERATURE, 0, 0},
    {"agentRole", SL_DK_AGENT, 0, 0},
    {"enableTools", SL_DK_IGNORE, 0, 0}, /* MCP tools of the seed's server: not sluice's */
    {"history", SL_DK_HISTORY, 0, 0},
    {"model", SL_DK_MODEL, 0, 0},
};

static const struct sl_dk_event events[] = {
    {"stream_request", SL_CMD_CHAT, request_fields, SL_ARRAY_LEN(request_fields)},
};

static int
stream_parse(const struct sl_proto_limits *lim, const char *event, const char *msg, size_t len,
             struct sl_command *cmd, struct sl_proto_error *err)
{
    return sl_dk_parse_sio(events, SL_ARRAY_LEN(events), lim, event, msg, len, cmd, err);
}

/* --- rendering ---------------------------------------------------------------------- */

static void
head(struct sl_buf *b, const struct sl_stream_view *st)
{
    SL_JSONW_LIT(b, "{\"sessionId\":");
    sl_jsonw_str(b, st->id, st->id_len);
}

static void
tail(struct sl_proto_sink *sink, const struct sl_stream_view *st, const char *event)
{
    SL_DK_TIME(sink->buf, "timestamp", sl_dk_view_now(st));
    sl_buf_append_byte(sink->buf, '}');
    sl_dk_emit(sink, event);
}

static void
stream_event(struct sl_proto_sink *sink, const struct sl_stream_view *st, const struct sl_event *ev)
{
    struct sl_buf *b = sink->buf;
    switch (ev->type) {
    case SL_EV_START:
        head(b, st);
        SL_DK_CSTR(b, "model", ev->u.start.model ? ev->u.start.model : st->model);
        SL_DK_CSTR(b, "agentRole", st->agent);
        SL_DK_CSTR(b, "provider", ev->u.start.provider ? ev->u.start.provider : st->provider);
        tail(sink, st, "stream_start");
        break;
    case SL_EV_PROGRESS:
        break; /* the seed has no progress event */
    case SL_EV_DELTA:
        head(b, st);
        if (ev->u.delta.tool) {
            SL_DK_LIT(b, "chunk", "\"\"");
            SL_DK_KEY(b, "toolCall");
            sl_dk_tool(b, ev->u.delta.tool);
        } else {
            SL_DK_STR(b, "chunk", ev->u.delta.text, ev->u.delta.len);
        }
        SL_DK_CSTR(b, "model", st->model);
        SL_DK_UINT(b, "tokensUsed", st->input_tokens + st->tokens);
        SL_DK_USD(b, "estimatedCost", st->cost_usd);
        tail(sink, st, "stream_chunk");
        break;
    case SL_EV_DONE: {
        const struct sl_usage *u = &ev->u.done.usage;
        head(b, st);
        SL_DK_STR(b, "fullText", st->text ? st->text : "", st->text_len);
        SL_DK_UINT(b, "totalTokens", u->input_tokens + u->output_tokens);
        SL_DK_USD(b, "totalCost", ev->u.done.cost_usd);
        SL_DK_UINT(b, "latencyMs", ev->u.done.latency_ms);
        SL_DK_CSTR(b, "model", ev->u.done.model ? ev->u.done.model : st->model);
        SL_DK_CSTR(b, "finishReason", sl_finish_name(ev->u.done.finish));
        SL_DK_UINT(b, "inputTokens", u->input_tokens);
        SL_DK_UINT(b, "outputTokens", u->output_tokens);
        tail(sink, st, "stream_complete");
        break;
    }
    case SL_EV_ERROR:
        head(b, st);
        sl_dk_error_fields(b, ev->u.error.message, sl_errcode_name(ev->u.error.code),
                           ev->u.error.retryable, ev->u.error.retry_after_ms);
        tail(sink, st, "stream_error");
        break;
    case SL_EV_CANCELLED:
        /* No cancel in the seed: a stream ends so only at a disconnect or a shutdown. */
        head(b, st);
        sl_dk_error_fields(b, "cancelled", SL_DK_CANCELLED, false, -1);
        SL_DK_CSTR(b, "reason", ev->u.cancelled.reason);
        tail(sink, st, "stream_error");
        break;
    }
}

/* The seed's client reads `sessionId` on every error: a refused request gets a fresh one. */
static void
stream_error(struct sl_proto_sink *sink, const char *id, enum sl_errcode code, const char *message,
             int64_t retry_after_ms)
{
    struct sl_buf *b = sink->buf;
    char fresh[17];
    if (id == NULL) {
        sl_random_id(fresh, 16);
        id = fresh;
    }
    SL_JSONW_LIT(b, "{\"sessionId\":");
    sl_jsonw_cstr(b, id);
    sl_dk_error_fields(b, message, sl_errcode_name(code), sl_dk_retryable(code), retry_after_ms);
    SL_DK_TIME(b, "timestamp", sl_dk_sink_now(sink));
    sl_buf_append_byte(b, '}');
    sl_dk_emit(sink, "stream_error");
}

const struct sl_proto sl_proto_stream = {
    .name = "stream",
    .flags = SL_PROTO_FULL_TEXT | SL_PROTO_VIEW_INFO,
    .parse = stream_parse,
    .event = stream_event,
    .error = stream_error,
};
