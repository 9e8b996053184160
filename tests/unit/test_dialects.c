/*
 * Unit tests for the seed dialects (src/proto/chat.c, stream_dialect.c, ws_chat.c, ai.c, llm.c
 * and dialect_kit.c): every event each seed's client sends (payloads as the seeds print them)
 * parses into the right command, bad payloads get clear errors, other dialects' events are
 * NOT_MINE; every canonical event renders into the events and fields the seeds' clients read,
 * each with the stream's id, of the right JSON type, in the right order.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "proto/dialect_kit.h"
#include "proto/dialects.h"
#include "proto/native.h"

static const struct sl_proto_limits lim = {
    .max_id_len = 32, .max_messages = 16, .max_tokens_cap = 100000};

/* --- helpers ---------------------------------------------------------------------- */

static int
parse(const struct sl_proto *p, const char *event, const char *args, struct sl_command *cmd,
      struct sl_proto_error *err)
{
    memset(cmd, 0, sizeof(*cmd));
    memset(err, 0, sizeof(*err));
    return p->parse(&lim, event, args, strlen(args), cmd, err);
}

/* Parses what must succeed; the caller clears cmd. */
static void
parse_ok(const struct sl_proto *p, const char *event, const char *args, struct sl_command *cmd,
         enum sl_cmd_type type)
{
    struct sl_proto_error err;
    int rc = parse(p, event, args, cmd, &err);
    cr_assert_eq(rc, 0, "%s %s %s: %d %s", p->name, event ? event : "-", args, rc, err.message);
    cr_assert_eq(cmd->type, type, "%s %s: command %d", p->name, event ? event : "-", cmd->type);
    sl_proto_error_clear(&err);
}

/* A parse that must fail with code and a message containing needle; returns err.id (owned). */
static char *
parse_fails(const struct sl_proto *p, const char *event, const char *args, enum sl_errcode code,
            const char *needle)
{
    struct sl_command cmd;
    struct sl_proto_error err;
    int rc = parse(p, event, args, &cmd, &err);
    cr_assert_eq(rc, -1, "%s %s %s: rc %d", p->name, event ? event : "-", args, rc);
    cr_assert_eq(err.code, code, "%s %s: code %s (%s)", p->name, args, sl_errcode_name(err.code),
                 err.message);
    cr_assert(strstr(err.message, needle) != NULL, "%s %s: \"%s\" lacks \"%s\"", p->name, args,
              err.message, needle);
    cr_assert_null(cmd.chat);
    char *id = err.id;
    err.id = NULL;
    sl_proto_error_clear(&err);
    return id;
}

static void
not_mine(const struct sl_proto *p, const char *event, const char *args)
{
    struct sl_command cmd;
    struct sl_proto_error err;
    cr_assert_eq(parse(p, event, args, &cmd, &err), SL_PROTO_NOT_MINE, "%s claims %s", p->name,
                 event ? event : "(plain message)");
    cr_assert_eq(err.code, SL_ERR_NONE);
    cr_assert_null(err.id);
}

/* What a render sent: an array of {"event": name or null, "data": the one argument}. */
static json_t *sent;
static struct sl_buf out;

static void
cap_send(struct sl_proto_sink *sink)
{
    struct sl_buf args = SL_BUF_INIT;
    sl_buf_append_byte(&args, '[');
    sl_buf_append(&args, sl_buf_ptr(sink->buf), sl_buf_len(sink->buf));
    sl_buf_append_byte(&args, ']');
    json_error_t e;
    json_t *a = json_loadb(sl_buf_ptr(&args), sl_buf_len(&args), 0, &e);
    cr_assert_not_null(a, "invalid JSON %.*s: %s", (int)sl_buf_len(sink->buf),
                       sl_buf_ptr(sink->buf), e.text);
    cr_assert_eq(json_array_size(a), 1, "one argument expected: %s", sl_buf_cstr(&args));
    cr_assert(json_is_object(json_array_get(a, 0)), "an object expected: %s", sl_buf_cstr(&args));
    json_t *entry = json_object();
    json_object_set_new(entry, "event", sink->event ? json_string(sink->event) : json_null());
    json_object_set(entry, "data", json_array_get(a, 0));
    json_array_append_new(sent, entry);
    json_decref(a);
    sl_buf_free(&args);
    sl_buf_clear(sink->buf);
    sink->event = NULL;
}

#define NOW_MS 1796212800123ull /* 2026-12-02T12:00:00.123Z */

static struct sl_proto_sink
sink(void)
{
    json_decref(sent);
    sent = json_array();
    sl_buf_clear(&out);
    return (struct sl_proto_sink){.buf = &out, .send = cap_send, .now_ms = NOW_MS};
}

static void
teardown(void)
{
    json_decref(sent);
    sent = NULL;
    sl_buf_free(&out);
}

TestSuite(dialects, .fini = teardown);

static struct sl_stream_view
view(void)
{
    static const char text[] = "Hello wor";
    return (struct sl_stream_view){
        .id = "s-7",
        .id_len = 3,
        .model = "gpt-4o",
        .provider = "openai",
        .agent = NULL,
        .text = text,
        .text_len = sizeof(text) - 1,
        .tokens = 3,
        .input_tokens = 12,
        .cost_usd = 0.00042,
        .started_ms = NOW_MS - 950,
        .now_ms = NOW_MS,
        .conversation = "conv-1",
    };
}

static struct sl_event
ev_start(void)
{
    struct sl_event e = {.type = SL_EV_START, .seq = 1};
    e.u.start.epoch = "ep";
    e.u.start.model = "gpt-4o";
    e.u.start.provider = "openai";
    return e;
}

static struct sl_event
ev_progress(const char *step, const char *detail)
{
    struct sl_event e = {.type = SL_EV_PROGRESS, .seq = 2};
    e.u.progress.step = step;
    e.u.progress.detail = detail;
    return e;
}

static struct sl_event
ev_delta(const char *text)
{
    struct sl_event e = {.type = SL_EV_DELTA, .seq = 3};
    e.u.delta.text = text;
    e.u.delta.len = strlen(text);
    return e;
}

static const struct sl_tool_delta tool = {.index = 0,
                                          .id = "call_1",
                                          .id_len = 6,
                                          .name = "get_weather",
                                          .name_len = 11,
                                          .arguments = "{\"ci",
                                          .arguments_len = 4};

static struct sl_event
ev_tool(void)
{
    struct sl_event e = {.type = SL_EV_DELTA, .seq = 3};
    e.u.delta.text = "";
    e.u.delta.tool = &tool;
    return e;
}

static struct sl_event
ev_done(void)
{
    struct sl_event e = {.type = SL_EV_DONE, .seq = 9};
    e.u.done.finish = SL_FINISH_STOP;
    e.u.done.native_finish = "stop";
    e.u.done.usage = (struct sl_usage){.input_tokens = 12, .output_tokens = 4};
    e.u.done.cost_usd = 0.0005;
    e.u.done.ttft_ms = 120;
    e.u.done.latency_ms = 950;
    e.u.done.model = "gpt-4o";
    e.u.done.provider = "openai";
    return e;
}

static struct sl_event
ev_error(void)
{
    struct sl_event e = {.type = SL_EV_ERROR, .seq = 5};
    e.u.error.code = SL_ERR_UPSTREAM_RATE_LIMITED;
    e.u.error.message = "provider said 429";
    e.u.error.retryable = true;
    e.u.error.retry_after_ms = 2000;
    e.u.error.usage = (struct sl_usage){.input_tokens = 12, .output_tokens = 1};
    return e;
}

static struct sl_event
ev_cancelled(void)
{
    struct sl_event e = {.type = SL_EV_CANCELLED, .seq = 6};
    e.u.cancelled.reason = "client";
    e.u.cancelled.usage = (struct sl_usage){.input_tokens = 12, .output_tokens = 2};
    return e;
}

/* Renders one event through p; returns the array of what was sent (borrowed). */
static json_t *
render(const struct sl_proto *p, const struct sl_stream_view *v, const struct sl_event *e)
{
    struct sl_proto_sink s = sink();
    p->event(&s, v, e);
    return sent;
}

static const char *
event_at(json_t *msgs, size_t i)
{
    return json_string_value(json_object_get(json_array_get(msgs, i), "event"));
}

static json_t *
data_at(json_t *msgs, size_t i)
{
    return json_object_get(json_array_get(msgs, i), "data");
}

/* The one message sent, which must be `event`. */
static json_t *
only(json_t *msgs, const char *event)
{
    cr_assert_eq(json_array_size(msgs), 1, "one message expected, got %zu", json_array_size(msgs));
    if (event)
        cr_assert_str_eq(event_at(msgs, 0), event);
    else
        cr_assert(json_is_null(json_object_get(json_array_get(msgs, 0), "event")));
    return data_at(msgs, 0);
}

static void
has_str(json_t *o, const char *key, const char *want)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_string(v), "\"%s\" is not a string in %s", key, json_dumps(o, JSON_COMPACT));
    if (want)
        cr_assert_str_eq(json_string_value(v), want, "\"%s\"", key);
}

static void
has_num(json_t *o, const char *key, double want)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_number(v), "\"%s\" is not a number", key);
    cr_assert_float_eq(json_number_value(v), want, 1e-12, "\"%s\": %g", key, json_number_value(v));
}

static void
has_int(json_t *o, const char *key, long long want)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_integer(v), "\"%s\" is not an integer", key);
    cr_assert_eq(json_integer_value(v), want, "\"%s\": %lld", key,
                 (long long)json_integer_value(v));
}

static void
has_bool(json_t *o, const char *key, bool want)
{
    json_t *v = json_object_get(o, key);
    cr_assert(json_is_boolean(v), "\"%s\" is not a boolean", key);
    cr_assert_eq(json_is_true(v), want, "\"%s\"", key);
}

static void
has_null(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    cr_assert(v != NULL && json_is_null(v), "\"%s\" is not null", key);
}

static void
has_time(json_t *o, const char *key, const char *want)
{
    has_str(o, key, want ? want : NULL);
    const char *s = json_string_value(json_object_get(o, key));
    cr_assert_eq(strlen(s), 24, "timestamp %s", s);
    cr_assert(s[4] == '-' && s[10] == 'T' && s[19] == '.' && s[23] == 'Z', "timestamp %s", s);
}

#define TS "2026-12-02T12:00:00.123Z"

/* --- the kit ---------------------------------------------------------------------- */

Test(dialects, iso8601)
{
    char s[SL_DK_ISO_LEN + 1];
    sl_dk_iso8601(s, 0);
    cr_assert_str_eq(s, "1970-01-01T00:00:00.000Z");
    sl_dk_iso8601(s, NOW_MS);
    cr_assert_str_eq(s, TS);
    /* The cached second, other milliseconds. */
    sl_dk_iso8601(s, 1796212800999ull);
    cr_assert_str_eq(s, "2026-12-02T12:00:00.999Z");
    sl_dk_iso8601(s, 1796212800007ull);
    cr_assert_str_eq(s, "2026-12-02T12:00:00.007Z");
    /* The next second is formatted again, and a leap day. */
    sl_dk_iso8601(s, 1796212801000ull);
    cr_assert_str_eq(s, "2026-12-02T12:00:01.000Z");
    sl_dk_iso8601(s, 951868799500ull);
    cr_assert_str_eq(s, "2000-02-29T23:59:59.500Z");
    /* Beyond year 9999: the last representable instant, never a wider string. */
    sl_dk_iso8601(s, UINT64_MAX);
    cr_assert_str_eq(s, "9999-12-31T23:59:59.999Z");
}

Test(dialects, comma_rules)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_byte(&b, '{');
    SL_DK_UINT(&b, "a", 1);
    SL_DK_OBJ(&b, "o");
    SL_DK_LIT(&b, "x", "[]");
    sl_buf_append_byte(&b, '}');
    SL_DK_CSTR(&b, "n", NULL);
    SL_DK_BOOL(&b, "t", true);
    sl_buf_append_byte(&b, '}');
    cr_assert_str_eq(sl_buf_cstr(&b), "{\"a\":1,\"o\":{\"x\":[]},\"n\":null,\"t\":true}");
    sl_buf_free(&b);
}

static const char *
usd(double v)
{
    static struct sl_buf b;
    sl_buf_clear(&b);
    sl_dk_usd(&b, v);
    return sl_buf_cstr(&b);
}

Test(dialects, usd_amounts)
{
    cr_assert_str_eq(usd(0), "0");
    cr_assert_str_eq(usd(0.00042), "0.00042");
    cr_assert_str_eq(usd(1.5), "1.5");
    cr_assert_str_eq(usd(12.000000001), "12.000000001");
    /* A computed cost whose shortest exact form is long reads as its decimals. */
    cr_assert_str_eq(usd(12 * 2.5 / 1e6 + 3 * 10 / 1e6), "0.00006");
    cr_assert_str_eq(usd(0.1 + 0.2), "0.3");
    cr_assert_str_eq(usd(4e-10), "0");
    cr_assert_str_eq(usd(6e-10), "0.000000001");
    cr_assert_str_eq(usd(999999999.5), "999999999.5");
    /* Never a real cost: written as a double, still JSON. */
    cr_assert_str_eq(usd(-1), "-1");
    cr_assert_str_eq(usd(1e12), "1e+12");
    cr_assert_str_eq(usd(0.0 / 0.0), "null");
}

Test(dialects, by_dialect)
{
    cr_assert_eq(sl_proto_by_dialect("chat"), &sl_proto_chat);
    cr_assert_eq(sl_proto_by_dialect("stream"), &sl_proto_stream);
    cr_assert_eq(sl_proto_by_dialect("ws-chat"), &sl_proto_ws_chat);
    cr_assert_eq(sl_proto_by_dialect("ai"), &sl_proto_ai);
    cr_assert_eq(sl_proto_by_dialect("llm"), &sl_proto_llm);
    cr_assert_eq(sl_proto_by_dialect("native"), &sl_proto_native_sio);
    cr_assert_null(sl_proto_by_dialect("Chat"));
    cr_assert_null(sl_proto_by_dialect(""));
}

/* --- dispatch: no two Socket.IO dialects claim an event -------------------------------- */

static const struct {
    const struct sl_proto *p;
    const char *events[4];
} sio_events[] = {
    {&sl_proto_chat, {"chat", "abort"}},
    {&sl_proto_stream, {"stream_request"}},
    {&sl_proto_ai, {"ai:stream", "ai:cancel", "ai:heartbeat", "ai:reconnect"}},
    {&sl_proto_llm, {"llm:chat:stream", "llm:stream:cancel"}},
};

Test(dialects, events_never_collide)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(sio_events); i++) {
        for (size_t j = 0; j < SL_ARRAY_LEN(sio_events); j++) {
            for (size_t k = 0; k < 4 && sio_events[j].events[k]; k++) {
                const char *name = sio_events[j].events[k];
                if (i == j) {
                    /* A dialect claims its own events, even with a payload it refuses. */
                    struct sl_command cmd;
                    struct sl_proto_error err;
                    int rc = parse(sio_events[i].p, name, "42", &cmd, &err);
                    cr_assert_neq(rc, SL_PROTO_NOT_MINE, "%s does not claim %s",
                                  sio_events[i].p->name, name);
                    sl_command_clear(&cmd);
                    sl_proto_error_clear(&err);
                } else {
                    not_mine(sio_events[i].p, name, "{}");
                }
            }
        }
        /* The native protocol's events and names near the dialects' are no one's. */
        not_mine(sio_events[i].p, "cancel", "{}");
        not_mine(sio_events[i].p, "ai:stream:start", "{}");
        not_mine(sio_events[i].p, "CHAT", "{}");
        /* A plain WebSocket message is not a Socket.IO dialect's. */
        not_mine(sio_events[i].p, NULL, "{\"type\":\"chat\"}");
    }
    /* ws-chat is not a Socket.IO dialect. */
    not_mine(&sl_proto_ws_chat, "message", "{\"message\":\"hi\"}");
}

/* --- chat (seed 000) ------------------------------------------------------------------ */

Test(dialects, chat_parse)
{
    struct sl_command cmd;
    /* The seed's own request [000 L168-171]. */
    parse_ok(&sl_proto_chat, "chat",
             "{\"model\":\"claude-3\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}]}",
             &cmd, SL_CMD_CHAT);
    cr_assert_null(cmd.chat->id);
    cr_assert_str_eq(cmd.chat->model, "claude-3");
    cr_assert_eq(json_array_size(cmd.chat->messages), 1);
    sl_command_clear(&cmd);
    /* requestId and the native fields. */
    parse_ok(&sl_proto_chat, "chat",
             "{\"requestId\":\"r1\",\"agent\":\"analyst\",\"temperature\":0.2,\"max_tokens\":50,"
             "\"system\":\"brief\",\"message\":\"hi\"}",
             &cmd, SL_CMD_CHAT);
    cr_assert_str_eq(cmd.chat->id, "r1");
    cr_assert_str_eq(cmd.chat->agent, "analyst");
    cr_assert_eq(cmd.chat->max_tokens, 50);
    cr_assert(cmd.chat->has_temperature);
    cr_assert_str_eq(cmd.chat->system, "brief");
    sl_command_clear(&cmd);
    /* abort [000 L180]. */
    parse_ok(&sl_proto_chat, "abort", "{\"requestId\":\"r1\"}", &cmd, SL_CMD_CANCEL);
    cr_assert_str_eq(cmd.id, "r1");
    sl_command_clear(&cmd);
}

Test(dialects, chat_bad_payloads)
{
    free(parse_fails(&sl_proto_chat, "abort", "{}", SL_ERR_BAD_REQUEST, "missing \"requestId\""));
    free(parse_fails(&sl_proto_chat, "abort", "{\"requestId\":7}", SL_ERR_BAD_REQUEST,
                     "\"requestId\" must be a string"));
    free(parse_fails(&sl_proto_chat, "chat", "\"hello\"", SL_ERR_BAD_REQUEST,
                     "argument of \"chat\" must be an object"));
    free(parse_fails(&sl_proto_chat, "chat", "{\"model\":", SL_ERR_BAD_REQUEST, "not valid JSON"));
    free(parse_fails(&sl_proto_chat, "chat", "{}", SL_ERR_BAD_REQUEST, "missing \"messages\""));
    free(parse_fails(&sl_proto_chat, "chat",
                     "{\"messages\":[{\"role\":\"user\",\"content\":\" \"}]}", SL_ERR_EMPTY_MESSAGE,
                     "empty"));
    /* A refused request names the request it could read. */
    char *id = parse_fails(&sl_proto_chat, "chat", "{\"requestId\":\"r9\",\"messages\":5}",
                           SL_ERR_BAD_REQUEST, "\"messages\" must be an array");
    cr_assert_str_eq(id, "r9");
    free(id);
    id = parse_fails(&sl_proto_chat, "chat",
                     "{\"requestId\":\"r9\",\"max_tokens\":0,\"message\":\"x\"}",
                     SL_ERR_BAD_REQUEST, "\"max_tokens\"");
    cr_assert_str_eq(id, "r9");
    free(id);
}

Test(dialects, chat_render)
{
    struct sl_stream_view v = view();
    struct sl_event e = ev_start();
    json_t *d = only(render(&sl_proto_chat, &v, &e), "chat:start");
    has_str(d, "requestId", "s-7");
    has_str(d, "model", "gpt-4o");

    e = ev_progress("connecting", NULL);
    cr_assert_eq(json_array_size(render(&sl_proto_chat, &v, &e)), 0);

    e = ev_delta("Hel\"lo");
    d = only(render(&sl_proto_chat, &v, &e), "chat:chunk");
    has_str(d, "requestId", "s-7");
    has_str(d, "content", "Hel\"lo");
    cr_assert_null(json_object_get(d, "finishReason"));

    e = ev_tool();
    d = only(render(&sl_proto_chat, &v, &e), "chat:chunk");
    has_str(d, "content", "");
    json_t *tc = json_object_get(d, "toolCall");
    has_int(tc, "index", 0);
    has_str(tc, "id", "call_1");
    has_str(tc, "name", "get_weather");
    has_str(tc, "arguments", "{\"ci");

    /* done: the last chunk with finishReason, then complete [000 L186-194]. */
    e = ev_done();
    json_t *m = render(&sl_proto_chat, &v, &e);
    cr_assert_eq(json_array_size(m), 2);
    cr_assert_str_eq(event_at(m, 0), "chat:chunk");
    has_str(data_at(m, 0), "requestId", "s-7");
    has_str(data_at(m, 0), "content", "");
    has_str(data_at(m, 0), "finishReason", "stop");
    cr_assert_str_eq(event_at(m, 1), "chat:complete");
    d = data_at(m, 1);
    has_str(d, "requestId", "s-7");
    has_int(json_object_get(d, "usage"), "promptTokens", 12);
    has_int(json_object_get(d, "usage"), "completionTokens", 4);
    has_num(d, "cost_usd", 0.0005);

    e = ev_error();
    d = only(render(&sl_proto_chat, &v, &e), "chat:error");
    has_str(d, "requestId", "s-7");
    has_str(d, "error", "provider said 429");
    has_str(d, "code", "UPSTREAM_RATE_LIMITED");
    has_bool(d, "retryable", true);
    has_int(d, "retry_after_ms", 2000);

    e = ev_cancelled();
    d = only(render(&sl_proto_chat, &v, &e), "chat:error");
    has_str(d, "requestId", "s-7");
    has_str(d, "error", "aborted");
    has_str(d, "code", "CANCELLED");
    has_bool(d, "retryable", false);
}

Test(dialects, chat_errors)
{
    struct sl_proto_sink s = sink();
    sl_proto_chat.error(&s, NULL, SL_ERR_BAD_REQUEST, "\"messages\" must be an array", -1);
    json_t *d = only(sent, "error");
    has_str(d, "message", "\"messages\" must be an array");
    has_str(d, "code", "BAD_REQUEST");
    has_bool(d, "retryable", false);

    s = sink();
    sl_proto_chat.error(&s, "r1", SL_ERR_RATE_LIMITED, "slow down", 1500);
    d = only(sent, "chat:error");
    has_str(d, "requestId", "r1");
    has_str(d, "error", "slow down");
    has_bool(d, "retryable", true);
    has_int(d, "retry_after_ms", 1500);
    cr_assert_null(sl_proto_chat.ready);
    cr_assert_null(sl_proto_chat.cancel_reply);
}

/* --- stream (seed 001) ---------------------------------------------------------------- */

Test(dialects, stream_parse)
{
    struct sl_command cmd;
    /* The seed's usage example [001 L300-304]. */
    parse_ok(&sl_proto_stream, "stream_request",
             "{\"message\":\"Explain quantum computing\",\"temperature\":0.7,"
             "\"agentRole\":\"analyst\"}",
             &cmd, SL_CMD_CHAT);
    cr_assert_str_eq(cmd.chat->agent, "analyst");
    cr_assert(cmd.chat->has_temperature);
    cr_assert_float_eq(cmd.chat->temperature, 0.7, 1e-9);
    cr_assert_null(cmd.chat->id);
    size_t n;
    cr_assert_str_eq(sl_chat_req_last_user_text(cmd.chat, &n), "Explain quantum computing");
    sl_command_clear(&cmd);
    /* Every field of StreamRequestDto [001 L93-101]. */
    parse_ok(&sl_proto_stream, "stream_request",
             "{\"message\":\"and now?\",\"systemPrompt\":\"Be brief.\",\"enableTools\":true,"
             "\"history\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\","
             "\"content\":\"hello\"}]}",
             &cmd, SL_CMD_CHAT);
    cr_assert_str_eq(cmd.chat->system, "Be brief.");
    cr_assert_eq(json_array_size(cmd.chat->messages), 3);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(cmd.chat->messages, 0), "content")), "hi");
    sl_command_clear(&cmd);
    /* enableTools of any type is accepted and ignored. */
    parse_ok(&sl_proto_stream, "stream_request", "{\"message\":\"x\",\"enableTools\":\"yes\"}",
             &cmd, SL_CMD_CHAT);
    sl_command_clear(&cmd);
}

Test(dialects, stream_bad_payloads)
{
    free(parse_fails(&sl_proto_stream, "stream_request", "{}", SL_ERR_BAD_REQUEST,
                     "missing \"message\""));
    free(parse_fails(&sl_proto_stream, "stream_request", "{\"message\":\"x\",\"temperature\":3}",
                     SL_ERR_BAD_REQUEST, "\"temperature\" must be between 0 and 2"));
    free(parse_fails(&sl_proto_stream, "stream_request", "{\"message\":\"x\",\"agentRole\":1}",
                     SL_ERR_BAD_REQUEST, "\"agentRole\" must be a string"));
    free(parse_fails(&sl_proto_stream, "stream_request", "{\"message\":\"x\",\"systemPrompt\":[]}",
                     SL_ERR_BAD_REQUEST, "\"systemPrompt\" must be a string"));
    free(parse_fails(&sl_proto_stream, "stream_request", "{\"message\":\"x\",\"history\":{}}",
                     SL_ERR_BAD_REQUEST, "\"history\" must be an array"));
    free(parse_fails(&sl_proto_stream, "stream_request", "{\"message\":\"   \"}",
                     SL_ERR_EMPTY_MESSAGE, "empty"));
}

Test(dialects, stream_render)
{
    struct sl_stream_view v = view();
    v.agent = "analyst";
    struct sl_event e = ev_start();
    json_t *d = only(render(&sl_proto_stream, &v, &e), "stream_start");
    has_str(d, "sessionId", "s-7");
    has_str(d, "model", "gpt-4o");
    has_str(d, "agentRole", "analyst");
    has_time(d, "timestamp", TS);

    e = ev_delta("wor");
    d = only(render(&sl_proto_stream, &v, &e), "stream_chunk");
    has_str(d, "sessionId", "s-7");
    has_str(d, "chunk", "wor");
    has_str(d, "model", "gpt-4o");
    has_int(d, "tokensUsed", 15); /* 12 input + 3 output so far */
    has_num(d, "estimatedCost", 0.00042);
    has_time(d, "timestamp", TS);

    /* Unpriced: estimatedCost is 0, never absent (the client calls toFixed on it). */
    v.cost_usd = 0;
    d = only(render(&sl_proto_stream, &v, &e), "stream_chunk");
    has_num(d, "estimatedCost", 0);

    e = ev_done();
    d = only(render(&sl_proto_stream, &v, &e), "stream_complete");
    has_str(d, "sessionId", "s-7");
    has_str(d, "fullText", "Hello wor");
    has_int(d, "totalTokens", 16);
    has_num(d, "totalCost", 0.0005);
    has_int(d, "latencyMs", 950);
    has_time(d, "timestamp", TS);

    e = ev_error();
    d = only(render(&sl_proto_stream, &v, &e), "stream_error");
    has_str(d, "sessionId", "s-7");
    has_str(d, "error", "provider said 429");
    has_str(d, "code", "UPSTREAM_RATE_LIMITED");
    has_time(d, "timestamp", TS);

    e = ev_cancelled();
    d = only(render(&sl_proto_stream, &v, &e), "stream_error");
    has_str(d, "code", "CANCELLED");
}

Test(dialects, stream_error_has_a_fresh_session_id)
{
    struct sl_proto_sink s = sink();
    sl_proto_stream.error(&s, NULL, SL_ERR_BAD_REQUEST, "missing \"message\"", -1);
    json_t *d = only(sent, "stream_error");
    has_str(d, "sessionId", NULL);
    char first[64];
    snprintf(first, sizeof(first), "%s", json_string_value(json_object_get(d, "sessionId")));
    cr_assert_eq(strlen(first), 16);
    has_str(d, "error", "missing \"message\"");
    has_str(d, "code", "BAD_REQUEST");
    has_time(d, "timestamp", TS);
    s = sink();
    sl_proto_stream.error(&s, NULL, SL_ERR_BAD_REQUEST, "again", -1);
    cr_assert_str_neq(json_string_value(json_object_get(only(sent, "stream_error"), "sessionId")),
                      first);
    s = sink();
    sl_proto_stream.error(&s, "s-3", SL_ERR_UNKNOWN_MODEL, "unknown agent \"x\"", -1);
    has_str(only(sent, "stream_error"), "sessionId", "s-3");
}

/* --- ws-chat (seed 002) --------------------------------------------------------------- */

Test(dialects, ws_chat_parse)
{
    struct sl_command cmd;
    struct sl_proto_error err;
    /* [002 L54-58] */
    cr_assert_eq(
        parse(&sl_proto_ws_chat, NULL, "{\"type\":\"auth\",\"token\":\"jwt\"}", &cmd, &err), 0);
    cr_assert_eq(cmd.type, SL_CMD_AUTH);
    cr_assert_str_eq(cmd.token, "jwt");
    cr_assert(err.auth_cmd);
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);
    /* [002 L62-69]: session_id and customer_id. */
    parse_ok(&sl_proto_ws_chat, NULL,
             "{\"type\":\"message\",\"message\":\"What is the engine power?\","
             "\"session_id\":\"optional-session-id\",\"customer_id\":\"optional-customer-id\"}",
             &cmd, SL_CMD_CHAT);
    cr_assert_str_eq(cmd.conversation, "optional-session-id");
    cr_assert(!cmd.conversation_null);
    cr_assert_eq(json_array_size(cmd.chat->messages), 1);
    sl_command_clear(&cmd);
    /* The JavaScript client sends session_id: null [002 L225-229]. */
    parse_ok(&sl_proto_ws_chat, NULL,
             "{\"type\":\"message\",\"message\":\"What is the engine power?\",\"session_id\":null}",
             &cmd, SL_CMD_CHAT);
    cr_assert_null(cmd.conversation);
    cr_assert(cmd.conversation_null);
    sl_command_clear(&cmd);
    /* ... or none at all. */
    parse_ok(&sl_proto_ws_chat, NULL, "{\"type\":\"message\",\"message\":\"hi\"}", &cmd,
             SL_CMD_CHAT);
    cr_assert(cmd.conversation_null);
    sl_command_clear(&cmd);
    parse_ok(&sl_proto_ws_chat, NULL, "{\"type\":\"ping\"}", &cmd, SL_CMD_PING);
    sl_command_clear(&cmd);
    /* sluice's cancel (the seed has none) names the stream_id of the events. */
    parse_ok(&sl_proto_ws_chat, NULL, "{\"type\":\"cancel\",\"stream_id\":\"s7\"}", &cmd,
             SL_CMD_CANCEL);
    cr_assert_str_eq(cmd.id, "s7");
    sl_command_clear(&cmd);
}

Test(dialects, ws_chat_bad_payloads)
{
    /* EMPTY_MESSAGE for an empty or missing message [002 L147]. */
    free(parse_fails(&sl_proto_ws_chat, NULL, "{\"type\":\"message\",\"message\":\"\"}",
                     SL_ERR_EMPTY_MESSAGE, "empty"));
    free(parse_fails(&sl_proto_ws_chat, NULL, "{\"type\":\"message\"}", SL_ERR_EMPTY_MESSAGE,
                     "missing \"message\""));
    free(parse_fails(&sl_proto_ws_chat, NULL, "{\"type\":\"message\",\"message\":5}",
                     SL_ERR_BAD_REQUEST, "\"message\" must be a string"));
    free(parse_fails(&sl_proto_ws_chat, NULL,
                     "{\"type\":\"message\",\"message\":\"x\",\"session_id\":12}",
                     SL_ERR_BAD_REQUEST, "\"session_id\" must be a string"));
    free(parse_fails(&sl_proto_ws_chat, NULL, "{\"type\":\"hello\"}", SL_ERR_BAD_REQUEST,
                     "unknown message type \"hello\""));
    free(parse_fails(&sl_proto_ws_chat, NULL, "{\"type\":\"cancel\"}", SL_ERR_BAD_REQUEST,
                     "stream_id"));
    free(parse_fails(&sl_proto_ws_chat, NULL, "{\"message\":\"x\"}", SL_ERR_BAD_REQUEST,
                     "missing \"type\""));
    free(parse_fails(&sl_proto_ws_chat, NULL, "[1]", SL_ERR_BAD_REQUEST, "JSON object"));
    free(parse_fails(&sl_proto_ws_chat, NULL, "not json", SL_ERR_BAD_REQUEST, "not valid JSON"));
    struct sl_command cmd;
    struct sl_proto_error err;
    cr_assert_eq(parse(&sl_proto_ws_chat, NULL, "{\"type\":\"auth\",\"token\":\"\"}", &cmd, &err),
                 -1);
    cr_assert(err.auth_cmd);
    sl_proto_error_clear(&err);
}

Test(dialects, ws_chat_render)
{
    struct sl_stream_view v = view();
    struct sl_event e = ev_start();
    json_t *d = only(render(&sl_proto_ws_chat, &v, &e), NULL);
    has_str(d, "type", "progress");
    has_str(d, "step", "starting");
    has_str(d, "message", NULL);
    has_str(d, "session_id", "conv-1");
    has_str(d, "stream_id", "s-7");

    static const struct {
        const char *step, *detail, *seed_step;
    } steps[] = {
        {"routing", NULL, "agent_routing"},         {"connecting", NULL, "agent_routing"},
        {"retrying", "attempt 2", "agent_routing"}, {"fallback", "claude", "agent_routing"},
        {"generating", NULL, "generating"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(steps); i++) {
        e = ev_progress(steps[i].step, steps[i].detail);
        d = only(render(&sl_proto_ws_chat, &v, &e), NULL);
        has_str(d, "type", "progress");
        has_str(d, "step", steps[i].seed_step);
        has_str(d, "message", NULL);
        has_str(d, "stream_id", "s-7");
    }

    e = ev_delta("wor");
    d = only(render(&sl_proto_ws_chat, &v, &e), NULL);
    has_str(d, "type", "token");
    has_str(d, "token", "wor");
    has_str(d, "partial_response", "Hello wor");
    has_str(d, "stream_id", "s-7");

    e = ev_done();
    d = only(render(&sl_proto_ws_chat, &v, &e), NULL);
    has_str(d, "type", "complete");
    has_str(d, "response", "Hello wor");
    has_str(d, "session_id", "conv-1");
    has_str(d, "stream_id", "s-7");
    json_t *md = json_object_get(d, "metadata");
    cr_assert(json_is_object(md));
    has_str(md, "agent", "gpt-4o"); /* no agent: the model that answered */
    has_null(md, "confidence");
    json_t *src = json_object_get(json_object_get(md, "context"), "sources");
    cr_assert(json_is_array(src) && json_array_size(src) == 0);
    v.agent = "specs";
    d = only(render(&sl_proto_ws_chat, &v, &e), NULL);
    has_str(json_object_get(d, "metadata"), "agent", "specs");

    e = ev_error();
    d = only(render(&sl_proto_ws_chat, &v, &e), NULL);
    has_str(d, "type", "error");
    has_str(d, "error", "provider said 429");
    has_str(d, "code", "PROCESSING_ERROR");
    has_str(d, "detail", "UPSTREAM_RATE_LIMITED");
    has_bool(d, "retryable", true);
    has_str(d, "stream_id", "s-7");

    e = ev_cancelled();
    d = only(render(&sl_proto_ws_chat, &v, &e), NULL);
    has_str(d, "code", "PROCESSING_ERROR");
    has_str(d, "detail", "CANCELLED");

    /* A tool fragment cannot come (no tools in a ws-chat request): nothing is sent. */
    e = ev_tool();
    cr_assert_eq(json_array_size(render(&sl_proto_ws_chat, &v, &e)), 0);
}

Test(dialects, ws_chat_session_messages)
{
    struct sl_ready_info r = {.session = "k",
                              .user = "alice",
                              .sub = "user-uuid",
                              .email = "alice@example.com",
                              .name = NULL};
    struct sl_proto_sink s = sink();
    sl_proto_ws_chat.ready(&s, &r);
    json_t *d = only(sent, NULL);
    has_str(d, "type", "auth_success");
    has_str(d, "message", "Authentication successful");
    json_t *u = json_object_get(d, "user");
    has_str(u, "id", "user-uuid");
    has_str(u, "email", "alice@example.com");
    has_null(u, "name");

    s = sink();
    sl_proto_ws_chat.error(&s, NULL, SL_ERR_AUTH_FAILED, "signature mismatch", -1);
    d = only(sent, NULL);
    has_str(d, "type", "auth_error");
    has_str(d, "message", "Invalid token");

    static const struct {
        enum sl_errcode code;
        const char *seed_code;
    } map[] = {
        {SL_ERR_AUTH_REQUIRED, "AUTH_REQUIRED"},    {SL_ERR_EMPTY_MESSAGE, "EMPTY_MESSAGE"},
        {SL_ERR_UNKNOWN_MODEL, "PROCESSING_ERROR"}, {SL_ERR_BAD_REQUEST, "PROCESSING_ERROR"},
        {SL_ERR_RATE_LIMITED, "PROCESSING_ERROR"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(map); i++) {
        s = sink();
        sl_proto_ws_chat.error(&s, NULL, map[i].code, "why", -1);
        d = only(sent, NULL);
        has_str(d, "type", "error");
        has_str(d, "error", "why");
        has_str(d, "code", map[i].seed_code);
        has_str(d, "detail", sl_errcode_name(map[i].code));
    }
    cr_assert(sl_proto_ws_chat.flags & SL_PROTO_FULL_TEXT);
    cr_assert(sl_proto_ws_chat.flags & SL_PROTO_ONE_AT_A_TIME);
}

/* --- ai (seed 003) -------------------------------------------------------------------- */

Test(dialects, ai_parse)
{
    struct sl_command cmd;
    /* The seed's full request [003 L59-70]. */
    parse_ok(&sl_proto_ai, "ai:stream",
             "{\"prompt\":\"Explain this code\",\"model\":\"codellama\",\"temperature\":0.7,"
             "\"maxTokens\":2048,\"useOrchestrator\":true,\"agentContext\":{\"activeFile\":"
             "\"App.js\",\"projectType\":\"React\"},\"streamId\":\"custom_id\"}",
             &cmd, SL_CMD_CHAT);
    cr_assert_str_eq(cmd.chat->id, "custom_id");
    cr_assert_str_eq(cmd.chat->model, "codellama");
    cr_assert_eq(cmd.chat->max_tokens, 2048);
    size_t n;
    cr_assert_str_eq(sl_chat_req_last_user_text(cmd.chat, &n), "Explain this code");
    sl_command_clear(&cmd);
    parse_ok(&sl_proto_ai, "ai:stream",
             "{\"prompt\":\"Write a hello world function\","
             "\"useOrchestrator\":false}",
             &cmd, SL_CMD_CHAT);
    cr_assert_null(cmd.chat->id);
    sl_command_clear(&cmd);
    parse_ok(&sl_proto_ai, "ai:cancel", "{\"streamId\":\"stream_123\"}", &cmd, SL_CMD_CANCEL);
    cr_assert_str_eq(cmd.id, "stream_123");
    sl_command_clear(&cmd);
    parse_ok(&sl_proto_ai, "ai:heartbeat", "{}", &cmd, SL_CMD_PING);
    sl_command_clear(&cmd);
    parse_ok(&sl_proto_ai, "ai:heartbeat", "", &cmd, SL_CMD_PING); /* emit with no argument */
    sl_command_clear(&cmd);
    parse_ok(&sl_proto_ai, "ai:reconnect", "{\"previousClientId\":\"old_client_id\"}", &cmd,
             SL_CMD_RECONNECT);
    cr_assert_str_eq(cmd.previous, "old_client_id");
    sl_command_clear(&cmd);
}

Test(dialects, ai_bad_payloads)
{
    free(parse_fails(&sl_proto_ai, "ai:stream", "{}", SL_ERR_BAD_REQUEST, "missing \"prompt\""));
    free(parse_fails(&sl_proto_ai, "ai:stream", "{\"prompt\":1}", SL_ERR_BAD_REQUEST,
                     "\"prompt\" must be a string"));
    char *id = parse_fails(&sl_proto_ai, "ai:stream",
                           "{\"prompt\":\"x\",\"maxTokens\":0,\"streamId\":\"a1\"}",
                           SL_ERR_BAD_REQUEST, "\"maxTokens\" must be an integer from 1 to 100000");
    cr_assert_str_eq(id, "a1");
    free(id);
    free(parse_fails(&sl_proto_ai, "ai:stream", "{\"prompt\":\"x\",\"streamId\":\"\"}",
                     SL_ERR_BAD_REQUEST, "\"streamId\" must have 1 to 32 characters"));
    free(parse_fails(&sl_proto_ai, "ai:cancel", "{}", SL_ERR_BAD_REQUEST, "missing \"streamId\""));
    free(parse_fails(&sl_proto_ai, "ai:reconnect", "{\"previousClientId\":null}",
                     SL_ERR_BAD_REQUEST, "missing \"previousClientId\""));
    free(parse_fails(&sl_proto_ai, "ai:heartbeat", "[]", SL_ERR_BAD_REQUEST,
                     "argument of \"ai:heartbeat\" must be an object"));
}

Test(dialects, ai_render)
{
    struct sl_stream_view v = view();
    struct sl_event e = ev_start();
    json_t *d = only(render(&sl_proto_ai, &v, &e), "ai:stream:start");
    has_str(d, "streamId", "s-7");

    e = ev_delta("wor");
    d = only(render(&sl_proto_ai, &v, &e), "ai:token");
    has_str(d, "streamId", "s-7");
    has_str(d, "data", "wor");
    has_str(d, "agent", "gpt-4o");
    has_int(d, "tokenCount", 3);
    json_t *md = json_object_get(d, "metadata");
    has_str(md, "model", "gpt-4o");
    has_str(md, "provider", "openai");

    e = ev_tool();
    d = only(render(&sl_proto_ai, &v, &e), "ai:token");
    has_str(d, "data", "");
    has_str(json_object_get(d, "toolCall"), "name", "get_weather");

    /* complete, then done [003 L92-106]. */
    e = ev_done();
    json_t *m = render(&sl_proto_ai, &v, &e);
    cr_assert_eq(json_array_size(m), 2);
    cr_assert_str_eq(event_at(m, 0), "ai:stream:complete");
    d = data_at(m, 0);
    has_str(d, "streamId", "s-7");
    has_str(d, "agent", "gpt-4o");
    has_null(d, "intent");
    has_null(d, "confidence");
    cr_assert_str_eq(event_at(m, 1), "ai:done");
    d = data_at(m, 1);
    has_str(d, "streamId", "s-7");
    has_int(d, "totalTokens", 4);
    has_int(d, "duration", 950);

    e = ev_cancelled();
    d = only(render(&sl_proto_ai, &v, &e), "ai:stream:cancelled");
    has_str(d, "streamId", "s-7");

    e = ev_error();
    d = only(render(&sl_proto_ai, &v, &e), "ai:stream:error");
    has_str(d, "streamId", "s-7");
    has_str(d, "error", "provider said 429");
    has_str(d, "code", "UPSTREAM_RATE_LIMITED");
    has_bool(d, "retryable", true);

    e = ev_progress("generating", NULL);
    cr_assert_eq(json_array_size(render(&sl_proto_ai, &v, &e)), 0);
}

Test(dialects, ai_session_messages)
{
    struct sl_ready_info r = {.session = "k3v9x0m2q8r1t7zp",
                              .user = "anon:127.0.0.1",
                              .max_streams = 10,
                              .backpressure_bytes = 1048576,
                              .resume_window_ms = 30000};
    struct sl_proto_sink s = sink();
    sl_proto_ai.ready(&s, &r);
    json_t *d = only(sent, "ai:connected");
    has_str(d, "clientId", "k3v9x0m2q8r1t7zp");
    has_int(d, "maxConcurrentStreams", 10);
    has_int(d, "backpressureThreshold", 1048576);

    s = sink();
    sl_proto_ai.pong(&s, &(struct sl_pong_info){.streams = 2, .queued = 512});
    d = only(sent, "ai:heartbeat:ack");
    has_int(d, "activeStreams", 2);
    has_int(d, "queueSize", 512);

    s = sink();
    sl_proto_ai.backpressure(&s, 4096, true);
    d = only(sent, "ai:backpressure");
    has_str(d, "message", NULL);
    has_int(d, "queueSize", 4096);
    s = sink();
    sl_proto_ai.backpressure(&s, 10, false);
    cr_assert_eq(json_array_size(sent), 0);

    s = sink();
    sl_proto_ai.reconnected(&s, "old", "new");
    d = only(sent, "ai:reconnect:success");
    has_str(d, "previousClientId", "old");
    has_str(d, "newClientId", "new");

    /* Not tied to a stream: ai:error with details [003 L158-161]. */
    s = sink();
    sl_proto_ai.error(&s, NULL, SL_ERR_NOT_FOUND, "nothing to reconnect to", -1);
    d = only(sent, "ai:error");
    has_str(d, "error", "nothing to reconnect to");
    has_str(d, "code", "NOT_FOUND");
    cr_assert_not_null(json_object_get(d, "details"));
    /* Naming a stream: ai:stream:error [003 L163-166]. */
    s = sink();
    sl_proto_ai.error(&s, "stream_123", SL_ERR_NOT_FOUND, "no such stream", -1);
    d = only(sent, "ai:stream:error");
    has_str(d, "streamId", "stream_123");
    has_str(d, "error", "no such stream");
}

/* --- llm (seed 004) ------------------------------------------------------------------- */

Test(dialects, llm_parse)
{
    struct sl_command cmd;
    /* [004 L103-109] */
    parse_ok(&sl_proto_llm, "llm:chat:stream",
             "{\"sessionId\":\"unique-session-id\",\"provider\":\"openai\",\"messages\":[{\"role\":"
             "\"user\",\"content\":\"What is Bitcoin?\"}]}",
             &cmd, SL_CMD_CHAT);
    cr_assert_str_eq(cmd.chat->id, "unique-session-id");
    cr_assert_str_eq(cmd.provider, "openai");
    cr_assert_null(cmd.chat->model);
    cr_assert_null(cmd.conversation);
    cr_assert(!cmd.conversation_null);
    sl_command_clear(&cmd);
    parse_ok(&sl_proto_llm, "llm:chat:stream",
             "{\"sessionId\":\"s2\",\"provider\":\"claude\",\"model\":\"claude-sonnet\","
             "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
             &cmd, SL_CMD_CHAT);
    cr_assert_str_eq(cmd.chat->model, "claude-sonnet");
    sl_command_clear(&cmd);
    /* [004 L116-118] */
    parse_ok(&sl_proto_llm, "llm:stream:cancel", "{\"sessionId\":\"unique-session-id\"}", &cmd,
             SL_CMD_CANCEL);
    cr_assert_str_eq(cmd.id, "unique-session-id");
    sl_command_clear(&cmd);
}

Test(dialects, llm_bad_payloads)
{
    /* The session id is required [004 L428]: an error without one. */
    char *id = parse_fails(&sl_proto_llm, "llm:chat:stream",
                           "{\"provider\":\"openai\",\"messages\":[{\"role\":\"user\",\"content\":"
                           "\"x\"}]}",
                           SL_ERR_BAD_REQUEST, "missing \"sessionId\"");
    cr_assert_null(id);
    id = parse_fails(&sl_proto_llm, "llm:chat:stream",
                     "{\"sessionId\":\"s1\",\"provider\":\"\",\"messages\":[]}", SL_ERR_BAD_REQUEST,
                     "\"provider\" must have 1 to 256 characters");
    cr_assert_str_eq(id, "s1");
    free(id);
    id = parse_fails(&sl_proto_llm, "llm:chat:stream", "{\"sessionId\":\"s1\",\"provider\":\"x\"}",
                     SL_ERR_BAD_REQUEST, "missing \"messages\"");
    cr_assert_str_eq(id, "s1");
    free(id);
    id =
        parse_fails(&sl_proto_llm, "llm:chat:stream",
                    "{\"sessionId\":\"s1\",\"messages\":[{\"role\":\"wizard\",\"content\":\"x\"}]}",
                    SL_ERR_BAD_REQUEST, "messages[0].role");
    free(id);
    free(parse_fails(&sl_proto_llm, "llm:stream:cancel", "{\"sessionId\":5}", SL_ERR_BAD_REQUEST,
                     "\"sessionId\" must be a string"));
}

Test(dialects, llm_render)
{
    struct sl_stream_view v = view();
    struct sl_proto_sink s = sink();
    sl_proto_llm.accepted(&s, &v);
    json_t *d = only(sent, "llm:chat:stream:acknowledged");
    has_str(d, "sessionId", "s-7");
    has_str(d, "status", "accepted");
    has_time(d, "timestamp", TS);

    struct sl_event e = ev_start();
    d = only(render(&sl_proto_llm, &v, &e), "llm:stream:start");
    has_str(d, "sessionId", "s-7");
    has_str(d, "provider", "openai");
    has_time(d, "timestamp", TS);

    e = ev_delta("wor");
    d = only(render(&sl_proto_llm, &v, &e), "llm:stream:token");
    has_str(d, "sessionId", "s-7");
    has_str(d, "token", "wor");
    has_time(d, "timestamp", TS);

    e = ev_done();
    d = only(render(&sl_proto_llm, &v, &e), "llm:stream:done");
    has_str(d, "sessionId", "s-7");
    has_str(d, "provider", "openai");
    has_str(d, "fullResponse", "Hello wor");
    has_int(d, "tokenCount", 4);
    has_time(d, "timestamp", TS);

    e = ev_cancelled();
    d = only(render(&sl_proto_llm, &v, &e), "llm:stream:cancelled");
    has_str(d, "sessionId", "s-7");
    has_time(d, "timestamp", TS);

    e = ev_error();
    d = only(render(&sl_proto_llm, &v, &e), "llm:stream:error");
    has_str(d, "sessionId", "s-7");
    has_str(d, "error", "provider said 429");
    has_str(d, "code", "UPSTREAM_RATE_LIMITED");
    has_time(d, "timestamp", TS);

    e = ev_progress("connecting", NULL);
    cr_assert_eq(json_array_size(render(&sl_proto_llm, &v, &e)), 0);
}

Test(dialects, llm_session_messages)
{
    struct sl_proto_sink s = sink();
    sl_proto_llm.cancel_reply(&s, "unique-session-id", true);
    json_t *d = only(sent, "llm:stream:cancel:acknowledged");
    has_str(d, "sessionId", "unique-session-id");
    has_str(d, "status", "cancelled");
    has_time(d, "timestamp", TS);
    s = sink();
    sl_proto_llm.cancel_reply(&s, "gone", false);
    has_str(only(sent, "llm:stream:cancel:acknowledged"), "status", "not_found");

    /* An unknown provider or a missing sessionId [004 L226-234]. */
    s = sink();
    sl_proto_llm.error(&s, "s9", SL_ERR_UNKNOWN_MODEL, "unknown provider \"invalid-provider\"", -1);
    d = only(sent, "llm:stream:error");
    has_str(d, "sessionId", "s9");
    has_str(d, "error", "unknown provider \"invalid-provider\"");
    has_str(d, "code", "UNKNOWN_MODEL");
    has_time(d, "timestamp", TS);
    s = sink();
    sl_proto_llm.error(&s, NULL, SL_ERR_BAD_REQUEST, "missing \"sessionId\"", -1);
    d = only(sent, "llm:stream:error");
    has_null(d, "sessionId");
}

/* --- every dialect: the stream id on every event, valid JSON from hostile strings ------- */

static const struct {
    const struct sl_proto *p;
    const char *id_key;
} all[] = {
    {&sl_proto_chat, "requestId"},    {&sl_proto_stream, "sessionId"},
    {&sl_proto_ws_chat, "stream_id"}, {&sl_proto_ai, "streamId"},
    {&sl_proto_llm, "sessionId"},
};

Test(dialects, stream_id_on_every_event)
{
    struct sl_stream_view v = view();
    struct sl_event evs[] = {ev_start(),    ev_progress("routing", NULL),
                             ev_delta("x"), ev_tool(),
                             ev_done(),     ev_error(),
                             ev_cancelled()};
    for (size_t i = 0; i < SL_ARRAY_LEN(all); i++) {
        for (size_t k = 0; k < SL_ARRAY_LEN(evs); k++) {
            json_t *m = render(all[i].p, &v, &evs[k]);
            for (size_t j = 0; j < json_array_size(m); j++)
                has_str(data_at(m, j), all[i].id_key, "s-7");
        }
    }
}

Test(dialects, hostile_strings_stay_json)
{
    /* Quotes, control characters and invalid UTF-8 in every string the renderers copy. */
    static const char bad[] = "a\"b\\c\n\x01\xff\xc3(";
    struct sl_stream_view v = view();
    v.id = bad;
    v.id_len = sizeof(bad) - 1;
    v.model = bad;
    v.provider = bad;
    v.agent = bad;
    v.conversation = bad;
    v.text = bad;
    v.text_len = sizeof(bad) - 1;
    struct sl_event evs[] = {ev_start(), ev_progress(bad, bad), ev_delta(bad), ev_done(),
                             ev_error(), ev_cancelled()};
    evs[3].u.done.model = bad;
    evs[4].u.error.message = bad;
    evs[5].u.cancelled.reason = bad;
    for (size_t i = 0; i < SL_ARRAY_LEN(all); i++) {
        for (size_t k = 0; k < SL_ARRAY_LEN(evs); k++)
            render(all[i].p, &v, &evs[k]); /* cap_send asserts valid JSON */
        struct sl_proto_sink s = sink();
        all[i].p->error(&s, bad, SL_ERR_BAD_REQUEST, bad, -1);
        s = sink();
        all[i].p->error(&s, NULL, SL_ERR_INTERNAL, bad, 5);
        cr_assert_geq(json_array_size(sent), 1);
    }
    struct sl_proto_sink s = sink();
    struct sl_ready_info r = {.session = bad, .user = bad, .sub = bad, .email = bad, .name = bad};
    sl_proto_ai.ready(&s, &r);
    sl_proto_ws_chat.ready(&s, &r);
    sl_proto_ai.reconnected(&s, bad, bad);
    sl_proto_llm.cancel_reply(&s, bad, true);
    cr_assert_eq(json_array_size(sent), 4);
}
