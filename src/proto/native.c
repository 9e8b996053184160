#include "proto/native.h"

#include <string.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "proto/common.h"

/* --- parsing ------------------------------------------------------------------------ */

static int
parse_chat(const struct sl_proto_limits *lim, json_t *root, struct sl_command *cmd,
           struct sl_proto_error *err)
{
    struct sl_chat_fields f = {
        .id = json_object_get(root, "id"),
        .model = json_object_get(root, "model"),
        .agent = json_object_get(root, "agent"),
        .system = json_object_get(root, "system"),
        .messages = json_object_get(root, "messages"),
        .message = json_object_get(root, "message"),
        .max_tokens = json_object_get(root, "max_tokens"),
        .temperature = json_object_get(root, "temperature"),
        .top_p = json_object_get(root, "top_p"),
        .stop = json_object_get(root, "stop"),
        .tools = json_object_get(root, "tools"),
        .tool_choice = json_object_get(root, "tool_choice"),
        .metadata = json_object_get(root, "metadata"),
    };
    cmd->type = SL_CMD_CHAT;
    return sl_proto_build_chat(lim, &f, &cmd->chat, err);
}

static int
parse_id_cmd(const struct sl_proto_limits *lim, json_t *root, struct sl_command *cmd,
             struct sl_proto_error *err)
{
    json_t *id = json_object_get(root, "id");
    if (id == NULL)
        return sl_proto_fail(err, SL_ERR_BAD_REQUEST, "missing \"id\"");
    if (sl_proto_check_id(lim, id, "id", err) != 0)
        return -1;
    cmd->id = sl_strdup(json_string_value(id));
    err->id = sl_strdup(cmd->id);
    return 0;
}

/* A native message as an object; over Socket.IO the type is the event's name. */
static int
parse_root(const struct sl_proto_limits *lim, json_t *root, const char *event,
           struct sl_command *cmd, struct sl_proto_error *err)
{
    int rc = -1;
    json_t *type = event ? json_string(event) : json_incref(json_object_get(root, "type"));
    if (type == NULL) {
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "missing \"type\"");
        goto out;
    }
    if (!json_is_string(type)) {
        sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"type\" must be a string");
        goto out;
    }
    const char *t = json_string_value(type);
    if (strcmp(t, "chat") == 0) {
        rc = parse_chat(lim, root, cmd, err);
    } else if (strcmp(t, "cancel") == 0) {
        cmd->type = SL_CMD_CANCEL;
        rc = parse_id_cmd(lim, root, cmd, err);
    } else if (strcmp(t, "ping") == 0) {
        cmd->type = SL_CMD_PING;
        rc = 0;
    } else if (strcmp(t, "auth") == 0) {
        err->auth_cmd = true;
        json_t *token = json_object_get(root, "token");
        if (!json_is_string(token) || json_string_length(token) == 0) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"token\" must be a non-empty string");
            goto out;
        }
        cmd->type = SL_CMD_AUTH;
        cmd->token = sl_strndup(json_string_value(token), json_string_length(token));
        rc = 0;
    } else if (strcmp(t, "resume") == 0) {
        cmd->type = SL_CMD_RESUME;
        if (parse_id_cmd(lim, root, cmd, err) != 0)
            goto out;
        json_t *after = json_object_get(root, "after");
        if (after != NULL && (!json_is_integer(after) || json_integer_value(after) < 0)) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"after\" must be a non-negative integer");
            goto out;
        }
        cmd->after = after ? (uint64_t)json_integer_value(after) : 0;
        json_t *epoch = json_object_get(root, "epoch");
        if (epoch != NULL && !json_is_string(epoch)) {
            sl_proto_fail(err, SL_ERR_BAD_REQUEST, "\"epoch\" must be a string");
            goto out;
        }
        if (epoch)
            cmd->epoch = sl_strdup(json_string_value(epoch));
        rc = 0;
    } else {
        sl_proto_fail(err, SL_ERR_BAD_REQUEST,
                      "unknown message type \"%.40s\" (expected auth, chat, cancel, resume or "
                      "ping)",
                      t);
    }
out:
    json_decref(type);
    if (rc != 0)
        sl_command_clear(cmd);
    return rc;
}

static int
native_parse(const struct sl_proto_limits *lim, const char *event, const char *msg, size_t len,
             struct sl_command *cmd, struct sl_proto_error *err)
{
    (void)event;
    json_t *root = sl_proto_parse_object(msg, len, err);
    if (root == NULL)
        return -1;
    int rc = parse_root(lim, root, NULL, cmd, err);
    json_decref(root);
    return rc;
}

/* --- rendering ----------------------------------------------------------------------- */

/* {"type":"<type>","id":<id>,"seq":<seq>  (left open for more fields) */
static void
head(struct sl_buf *b, const char *type, const struct sl_stream_view *st, uint32_t seq)
{
    SL_JSONW_LIT(b, "{\"type\":\"");
    sl_buf_append_str(b, type);
    SL_JSONW_LIT(b, "\",\"id\":");
    sl_jsonw_str(b, st->id, st->id_len);
    SL_JSONW_LIT(b, ",\"seq\":");
    sl_jsonw_uint(b, seq);
}

static void
usage(struct sl_buf *b, const struct sl_usage *u)
{
    SL_JSONW_LIT(b, "{\"input_tokens\":");
    sl_jsonw_uint(b, u->input_tokens);
    SL_JSONW_LIT(b, ",\"output_tokens\":");
    sl_jsonw_uint(b, u->output_tokens);
    if (u->estimated)
        SL_JSONW_LIT(b, ",\"estimated\":true");
    sl_buf_append_byte(b, '}');
}

static void
opt_str(struct sl_buf *b, const char *key, const char *v)
{
    if (v == NULL)
        return;
    sl_buf_append_byte(b, ',');
    sl_jsonw_cstr(b, key);
    sl_buf_append_byte(b, ':');
    sl_jsonw_cstr(b, v);
}

static void
error_tail(struct sl_buf *b, enum sl_errcode code, const char *message, bool retryable,
           int64_t retry_after_ms)
{
    SL_JSONW_LIT(b, ",\"code\":\"");
    sl_buf_append_str(b, sl_errcode_name(code));
    SL_JSONW_LIT(b, "\",\"message\":");
    sl_jsonw_cstr(b, message ? message : "");
    if (retryable)
        SL_JSONW_LIT(b, ",\"retryable\":true");
    else
        SL_JSONW_LIT(b, ",\"retryable\":false");
    if (retry_after_ms >= 0) {
        SL_JSONW_LIT(b, ",\"retry_after_ms\":");
        sl_jsonw_int(b, retry_after_ms);
    }
}

static void
native_event(struct sl_proto_sink *sink, const struct sl_stream_view *st, const struct sl_event *ev)
{
    struct sl_buf *b = sink->buf;
    switch (ev->type) {
    case SL_EV_START:
        head(b, "start", st, ev->seq);
        opt_str(b, "epoch", ev->u.start.epoch);
        opt_str(b, "model", ev->u.start.model);
        opt_str(b, "provider", ev->u.start.provider);
        break;
    case SL_EV_PROGRESS:
        head(b, "progress", st, ev->seq);
        opt_str(b, "step", ev->u.progress.step);
        opt_str(b, "detail", ev->u.progress.detail);
        break;
    case SL_EV_DELTA:
        head(b, "delta", st, ev->seq);
        if (ev->u.delta.tool) {
            const struct sl_tool_delta *t = ev->u.delta.tool;
            SL_JSONW_LIT(b, ",\"tool_call\":{\"index\":");
            sl_jsonw_int(b, t->index);
            if (t->id) {
                SL_JSONW_LIT(b, ",\"id\":");
                sl_jsonw_str(b, t->id, t->id_len);
            }
            if (t->name) {
                SL_JSONW_LIT(b, ",\"name\":");
                sl_jsonw_str(b, t->name, t->name_len);
            }
            SL_JSONW_LIT(b, ",\"arguments\":");
            sl_jsonw_str(b, t->arguments ? t->arguments : "", t->arguments_len);
            sl_buf_append_byte(b, '}');
        } else {
            SL_JSONW_LIT(b, ",\"text\":");
            sl_jsonw_str(b, ev->u.delta.text, ev->u.delta.len);
        }
        break;
    case SL_EV_DONE:
        head(b, "done", st, ev->seq);
        SL_JSONW_LIT(b, ",\"finish_reason\":\"");
        sl_buf_append_str(b, sl_finish_name(ev->u.done.finish));
        sl_buf_append_byte(b, '"');
        opt_str(b, "provider_finish_reason", ev->u.done.native_finish);
        SL_JSONW_LIT(b, ",\"usage\":");
        usage(b, &ev->u.done.usage);
        SL_JSONW_LIT(b, ",\"cost_usd\":");
        sl_jsonw_double(b, ev->u.done.cost_usd);
        SL_JSONW_LIT(b, ",\"ttft_ms\":");
        sl_jsonw_uint(b, ev->u.done.ttft_ms);
        SL_JSONW_LIT(b, ",\"latency_ms\":");
        sl_jsonw_uint(b, ev->u.done.latency_ms);
        opt_str(b, "model", ev->u.done.model);
        opt_str(b, "provider", ev->u.done.provider);
        break;
    case SL_EV_ERROR:
        head(b, "error", st, ev->seq);
        error_tail(b, ev->u.error.code, ev->u.error.message, ev->u.error.retryable,
                   ev->u.error.retry_after_ms);
        SL_JSONW_LIT(b, ",\"usage\":");
        usage(b, &ev->u.error.usage);
        break;
    case SL_EV_CANCELLED:
        head(b, "cancelled", st, ev->seq);
        opt_str(b, "reason", ev->u.cancelled.reason);
        SL_JSONW_LIT(b, ",\"usage\":");
        usage(b, &ev->u.cancelled.usage);
        break;
    }
    sl_buf_append_byte(b, '}');
    /* Over Socket.IO (the /sluice namespace) the message is the event of its type. */
    static const char *const names[] = {
        [SL_EV_START] = "start", [SL_EV_PROGRESS] = "progress", [SL_EV_DELTA] = "delta",
        [SL_EV_DONE] = "done",   [SL_EV_ERROR] = "error",       [SL_EV_CANCELLED] = "cancelled"};
    sink->event = names[ev->type];
    sink->send(sink);
}

static void
native_ready(struct sl_proto_sink *sink, const struct sl_ready_info *r)
{
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"type\":\"ready\",\"session\":");
    sl_jsonw_cstr(b, r->session);
    SL_JSONW_LIT(b, ",\"user\":");
    sl_jsonw_cstr(b, r->user);
    SL_JSONW_LIT(b, ",\"heartbeat_ms\":");
    sl_jsonw_uint(b, r->heartbeat_ms);
    SL_JSONW_LIT(b, ",\"limits\":{\"max_streams\":");
    sl_jsonw_uint(b, r->max_streams);
    SL_JSONW_LIT(b, ",\"max_message_bytes\":");
    sl_jsonw_uint(b, r->max_message_bytes);
    SL_JSONW_LIT(b, ",\"messages_per_minute\":");
    sl_jsonw_uint(b, r->messages_per_minute);
    SL_JSONW_LIT(b, "},\"resume_window_ms\":");
    sl_jsonw_uint(b, r->resume_window_ms);
    SL_JSONW_LIT(b, ",\"default_model\":");
    sl_jsonw_cstr(b, r->default_model);
    SL_JSONW_LIT(b, ",\"models\":[");
    for (size_t i = 0; i < r->nmodels; i++) {
        if (i)
            sl_buf_append_byte(b, ',');
        SL_JSONW_LIT(b, "{\"id\":");
        sl_jsonw_cstr(b, r->models[i].name);
        SL_JSONW_LIT(b, ",\"provider\":");
        sl_jsonw_cstr(b, r->models[i].provider);
        sl_buf_append_byte(b, '}');
    }
    SL_JSONW_LIT(b, "],\"agents\":[");
    for (size_t i = 0; i < r->nagents; i++) {
        if (i)
            sl_buf_append_byte(b, ',');
        SL_JSONW_LIT(b, "{\"id\":");
        sl_jsonw_cstr(b, r->agents[i].name);
        SL_JSONW_LIT(b, ",\"model\":");
        sl_jsonw_cstr(b, r->agents[i].model);
        sl_buf_append_byte(b, '}');
    }
    SL_JSONW_LIT(b, "],\"server\":\"sluice/" SL_VERSION "\"}");
    sink->event = "ready";
    sink->send(sink);
}

static void
native_error(struct sl_proto_sink *sink, const char *id, enum sl_errcode code, const char *message,
             int64_t retry_after_ms)
{
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"type\":\"error\"");
    if (id) {
        SL_JSONW_LIT(b, ",\"id\":");
        sl_jsonw_cstr(b, id);
    }
    error_tail(b, code, message, sl_errcode_retryable(code) && code != SL_ERR_INTERNAL,
               retry_after_ms);
    sl_buf_append_byte(b, '}');
    sink->event = "error";
    sink->send(sink);
}

static void
native_pong(struct sl_proto_sink *sink, const struct sl_pong_info *info)
{
    struct sl_buf *b = sink->buf;
    SL_JSONW_LIT(b, "{\"type\":\"pong\",\"streams\":");
    sl_jsonw_uint(b, info->streams);
    sl_buf_append_byte(b, '}');
    sink->event = "pong";
    sink->send(sink);
}

/*
 * The native protocol as Socket.IO events (the /sluice namespace): the event's name is the
 * message type and its first argument the message object (its "type" may be left out).
 */
static int
native_sio_parse(const struct sl_proto_limits *lim, const char *event, const char *msg, size_t len,
                 struct sl_command *cmd, struct sl_proto_error *err)
{
    json_t *args = sl_proto_parse_args(msg, len, err);
    if (args == NULL)
        return -1;
    json_t *root = json_array_get(args, 0);
    int rc;
    if (root == NULL || json_is_object(root)) {
        json_t *obj = root ? json_incref(root) : json_object();
        rc = parse_root(lim, obj, event, cmd, err);
        json_decref(obj);
    } else {
        rc = sl_proto_fail(err, SL_ERR_BAD_REQUEST, "the event's argument must be an object");
    }
    json_decref(args);
    return rc;
}

const struct sl_proto sl_proto_native_sio = {
    .name = "sluice",
    .flags = 0,
    .parse = native_sio_parse,
    .ready = native_ready,
    .event = native_event,
    .error = native_error,
    .pong = native_pong,
};

const struct sl_proto sl_proto_native = {
    .name = "native",
    .flags = 0,
    .parse = native_parse,
    .ready = native_ready,
    .event = native_event,
    .error = native_error,
    .pong = native_pong,
};
