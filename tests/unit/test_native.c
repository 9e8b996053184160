/* Unit tests for src/proto/native.c and common.c: parsing client messages, rendering events. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "proto/native.h"

static const struct sl_proto_limits lim = {
    .max_id_len = 16, .max_messages = 8, .max_tokens_cap = 1000};

static int
parse(const char *msg, struct sl_command *cmd, struct sl_proto_error *err)
{
    memset(cmd, 0, sizeof(*cmd));
    memset(err, 0, sizeof(*err));
    return sl_proto_native.parse(&lim, NULL, msg, strlen(msg), cmd, err);
}

static void
expect_error(const char *msg, enum sl_errcode code, const char *needle)
{
    struct sl_command cmd;
    struct sl_proto_error err;
    cr_assert_eq(parse(msg, &cmd, &err), -1, "%s", msg);
    cr_assert_eq(err.code, code, "%s: got %s", msg, sl_errcode_name(err.code));
    cr_assert(strstr(err.message, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", msg,
              err.message, needle);
    sl_proto_error_clear(&err);
}

Test(native, chat_with_messages)
{
    struct sl_command cmd;
    struct sl_proto_error err;
    cr_assert_eq(parse("{\"type\":\"chat\",\"id\":\"c1\",\"model\":\"m\",\"max_tokens\":7,"
                       "\"temperature\":0.5,\"system\":\"sys\",\"messages\":[{\"role\":\"user\","
                       "\"content\":\"hi\"}]}",
                       &cmd, &err),
                 0);
    cr_assert_eq(cmd.type, SL_CMD_CHAT);
    cr_assert_str_eq(cmd.chat->id, "c1");
    cr_assert_str_eq(cmd.chat->model, "m");
    cr_assert_str_eq(cmd.chat->system, "sys");
    cr_assert_eq(cmd.chat->max_tokens, 7);
    cr_assert(cmd.chat->has_temperature);
    size_t n;
    cr_assert_str_eq(sl_chat_req_last_user_text(cmd.chat, &n), "hi");
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);
}

Test(native, chat_with_plain_message)
{
    struct sl_command cmd;
    struct sl_proto_error err;
    cr_assert_eq(parse("{\"type\":\"chat\",\"message\":\"hello\"}", &cmd, &err), 0);
    cr_assert_null(cmd.chat->id);
    cr_assert_eq(json_array_size(cmd.chat->messages), 1);
    cr_assert_eq(cmd.chat->max_tokens, -1);
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);
}

Test(native, other_commands)
{
    struct sl_command cmd;
    struct sl_proto_error err;
    cr_assert_eq(parse("{\"type\":\"cancel\",\"id\":\"x\"}", &cmd, &err), 0);
    cr_assert_eq(cmd.type, SL_CMD_CANCEL);
    cr_assert_str_eq(cmd.id, "x");
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);
    cr_assert_eq(
        parse("{\"type\":\"resume\",\"id\":\"x\",\"after\":17,\"epoch\":\"e\"}", &cmd, &err), 0);
    cr_assert_eq(cmd.after, 17);
    cr_assert_str_eq(cmd.epoch, "e");
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);
    cr_assert_eq(parse("{\"type\":\"auth\",\"token\":\"t\"}", &cmd, &err), 0);
    cr_assert_str_eq(cmd.token, "t");
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);
    cr_assert_eq(parse("{\"type\":\"ping\"}", &cmd, &err), 0);
    cr_assert_eq(cmd.type, SL_CMD_PING);
}

Test(native, bad_input)
{
    expect_error("nope", SL_ERR_BAD_REQUEST, "not valid JSON");
    expect_error("\"str\"", SL_ERR_BAD_REQUEST, "object");
    expect_error("{\"type\":1}", SL_ERR_BAD_REQUEST, "\"type\" must be a string");
    expect_error("{}", SL_ERR_BAD_REQUEST, "missing \"type\"");
    expect_error("{\"type\":\"x\"}", SL_ERR_BAD_REQUEST, "unknown message type");
    expect_error("{\"type\":\"chat\",\"a\":1,\"a\":2}", SL_ERR_BAD_REQUEST, "JSON");
    expect_error("{\"type\":\"chat\"}", SL_ERR_BAD_REQUEST, "missing \"messages\"");
    expect_error("{\"type\":\"chat\",\"message\":\"\"}", SL_ERR_EMPTY_MESSAGE, "empty");
    expect_error("{\"type\":\"chat\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}",
                 SL_ERR_EMPTY_MESSAGE, "no user message");
    expect_error("{\"type\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":7}]}",
                 SL_ERR_BAD_REQUEST, "content");
    expect_error("{\"type\":\"chat\",\"messages\":[1]}", SL_ERR_BAD_REQUEST, "messages[0]");
    expect_error("{\"type\":\"chat\",\"message\":\"x\",\"messages\":[]}", SL_ERR_BAD_REQUEST,
                 "not both");
    expect_error("{\"type\":\"chat\",\"message\":\"x\",\"id\":\"0123456789abcdefg\"}",
                 SL_ERR_BAD_REQUEST, "1 to 16");
    expect_error("{\"type\":\"chat\",\"message\":\"x\",\"id\":\"a\\u0001\"}", SL_ERR_BAD_REQUEST,
                 "control");
    expect_error("{\"type\":\"chat\",\"message\":\"x\",\"max_tokens\":0}", SL_ERR_BAD_REQUEST,
                 "max_tokens");
    expect_error("{\"type\":\"chat\",\"message\":\"x\",\"max_tokens\":1001}", SL_ERR_BAD_REQUEST,
                 "max_tokens");
    expect_error("{\"type\":\"chat\",\"message\":\"x\",\"top_p\":2}", SL_ERR_BAD_REQUEST, "top_p");
    expect_error("{\"type\":\"chat\",\"message\":\"x\",\"stop\":[1]}", SL_ERR_BAD_REQUEST, "stop");
    expect_error("{\"type\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"}]}",
                 SL_ERR_TOO_LARGE, "too many messages");
    /* The shared rules for tool turns and definitions apply to every protocol. */
    expect_error("{\"type\":\"chat\",\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                 "{\"role\":\"tool\",\"content\":\"r\"}]}",
                 SL_ERR_BAD_REQUEST, "tool_call_id");
    expect_error("{\"type\":\"chat\",\"message\":\"x\",\"tools\":[{\"name\":\"f\"}]}",
                 SL_ERR_BAD_REQUEST, "tools[0]");
    expect_error("{\"type\":\"cancel\"}", SL_ERR_BAD_REQUEST, "missing \"id\"");
    expect_error("{\"type\":\"resume\",\"id\":\"x\",\"after\":-1}", SL_ERR_BAD_REQUEST, "after");
    expect_error("{\"type\":\"auth\"}", SL_ERR_BAD_REQUEST, "token");
}

Test(native, error_names_the_stream)
{
    struct sl_command cmd;
    struct sl_proto_error err;
    cr_assert_eq(parse("{\"type\":\"chat\",\"id\":\"s9\",\"message\":\"  \"}", &cmd, &err), -1);
    cr_assert_str_eq(err.id, "s9");
    sl_proto_error_clear(&err);
}

/* --- rendering --- */

static char out[4096];

static void
capture(struct sl_proto_sink *sink)
{
    size_t n = sl_buf_len(sink->buf);
    cr_assert(n < sizeof(out));
    memcpy(out, sl_buf_ptr(sink->buf), n);
    out[n] = '\0';
    sl_buf_clear(sink->buf);
}

static json_t *
render(const struct sl_event *ev)
{
    struct sl_buf b = SL_BUF_INIT;
    struct sl_proto_sink sink = {.buf = &b, .send = capture};
    struct sl_stream_view v = {.id = "c\"1", .id_len = 3};
    sl_proto_native.event(&sink, &v, ev);
    sl_buf_free(&b);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    cr_assert_not_null(j, "rendered invalid JSON: %s", out);
    return j;
}

Test(native, render_delta_escapes)
{
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = 3};
    ev.u.delta.text = "a\"b\n\xe2\x82\xac";
    ev.u.delta.len = strlen(ev.u.delta.text);
    json_t *j = render(&ev);
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "delta");
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "c\"1");
    cr_assert_eq(json_integer_value(json_object_get(j, "seq")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(j, "text")), "a\"b\n\xe2\x82\xac");
    json_decref(j);
}

Test(native, render_tool_delta)
{
    struct sl_tool_delta t = {.index = 1,
                              .id = "call_1",
                              .id_len = 6,
                              .name = "get",
                              .name_len = 3,
                              .arguments = "{\"a\"",
                              .arguments_len = 4};
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = 4};
    ev.u.delta.tool = &t;
    json_t *j = render(&ev);
    json_t *tc = json_object_get(j, "tool_call");
    cr_assert_eq(json_integer_value(json_object_get(tc, "index")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(tc, "name")), "get");
    cr_assert_str_eq(json_string_value(json_object_get(tc, "arguments")), "{\"a\"");
    json_decref(j);
}

Test(native, render_done_and_error)
{
    struct sl_event ev = {.type = SL_EV_DONE, .seq = 9};
    ev.u.done.finish = SL_FINISH_LENGTH;
    ev.u.done.native_finish = "max_tokens";
    ev.u.done.usage = (struct sl_usage){.input_tokens = 5, .output_tokens = 7, .estimated = true};
    ev.u.done.cost_usd = 0.00012;
    ev.u.done.ttft_ms = 10;
    ev.u.done.latency_ms = 20;
    json_t *j = render(&ev);
    cr_assert_str_eq(json_string_value(json_object_get(j, "finish_reason")), "length");
    cr_assert_str_eq(json_string_value(json_object_get(j, "provider_finish_reason")), "max_tokens");
    json_t *u = json_object_get(j, "usage");
    cr_assert_eq(json_integer_value(json_object_get(u, "output_tokens")), 7);
    cr_assert(json_is_true(json_object_get(u, "estimated")));
    cr_assert_float_eq(json_real_value(json_object_get(j, "cost_usd")), 0.00012, 1e-12);
    json_decref(j);

    struct sl_event er = {.type = SL_EV_ERROR, .seq = 2};
    er.u.error.code = SL_ERR_UPSTREAM_RATE_LIMITED;
    er.u.error.message = "slow down";
    er.u.error.retryable = true;
    er.u.error.retry_after_ms = 1500;
    j = render(&er);
    cr_assert_str_eq(json_string_value(json_object_get(j, "code")), "UPSTREAM_RATE_LIMITED");
    cr_assert(json_is_true(json_object_get(j, "retryable")));
    cr_assert_eq(json_integer_value(json_object_get(j, "retry_after_ms")), 1500);
    json_decref(j);
}
