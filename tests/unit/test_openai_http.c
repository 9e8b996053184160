/*
 * Unit tests for src/proto/openai_http.c: the OpenAI-compatible HTTP API's request
 * parsing, error mapping, SSE chunk rendering, non-streaming aggregation and model list.
 * Rendered bytes are parsed back (SSE framing by hand, JSON with jansson) and checked
 * field by field against OpenAI's shapes.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <string.h>

#include "proto/openai_http.h"

static const struct sl_proto_limits lim = {
    .max_id_len = 128, .max_messages = 8, .max_tokens_cap = 1000};

static int
parse(const char *body, struct sl_oai_chat *c, struct sl_oai_error *e)
{
    memset(e, 0, sizeof(*e));
    return sl_oai_parse_chat(&lim, body, strlen(body), c, e);
}

static void
expect_error(const char *body, enum sl_errcode code, const char *param, const char *needle)
{
    struct sl_oai_chat c;
    struct sl_oai_error e;
    cr_assert_eq(parse(body, &c, &e), -1, "%s", body);
    cr_assert_eq(e.code, code, "%s: got %s (%s)", body, sl_errcode_name(e.code), e.message);
    cr_assert_str_eq(e.param, param, "%s: param \"%s\"", body, e.param);
    cr_assert(strstr(e.message, needle) != NULL, "%s: message \"%s\" lacks \"%s\"", body, e.message,
              needle);
    cr_assert_null(c.req);
    cr_assert_null(c.user);
}

#define USER_HI "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

/* --- parsing --- */

Test(oai_parse, full_request)
{
    struct sl_oai_chat c;
    struct sl_oai_error e;
    const char *body =
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true},"
        "\"n\":1,\"temperature\":0.2,\"top_p\":0.9,\"max_tokens\":50,\"stop\":[\"x\"],"
        "\"user\":\"u-1\",\"metadata\":{\"k\":\"v\"},\"seed\":7,\"logprobs\":false,"
        "\"response_format\":{\"type\":\"text\"},"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get\",\"parameters\":{}}}],"
        "\"tool_choice\":\"auto\","
        "\"messages\":["
        "{\"role\":\"developer\",\"content\":\"be brief\"},"
        "{\"role\":\"system\",\"content\":\"sys\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\","
        "\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"18C\"}]}";
    cr_assert_eq(parse(body, &c, &e), 0, "%s", e.message);
    cr_assert(c.stream);
    cr_assert(c.include_usage);
    cr_assert_str_eq(c.user, "u-1");
    cr_assert_str_eq(c.req->model, "gpt-4o");
    cr_assert_null(c.req->id);
    cr_assert_null(c.req->agent);
    cr_assert_eq(c.req->max_tokens, 50);
    cr_assert(c.req->has_temperature && c.req->temperature == 0.2);
    cr_assert(c.req->has_top_p && c.req->top_p == 0.9);
    cr_assert(json_is_array(c.req->stop));
    cr_assert_eq(json_array_size(c.req->tools), 1);
    cr_assert_str_eq(json_string_value(c.req->tool_choice), "auto");
    cr_assert_str_eq(json_string_value(json_object_get(c.req->metadata, "k")), "v");
    /* Messages pass through whole: the tool call and its result reach the provider. */
    cr_assert_eq(json_array_size(c.req->messages), 5);
    json_t *asst = json_array_get(c.req->messages, 3);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_array_get(json_object_get(asst, "tool_calls"), 0), "id")),
                     "call_1");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(c.req->messages, 4), "tool_call_id")),
        "call_1");
    sl_oai_chat_clear(&c);
}

Test(oai_parse, defaults)
{
    struct sl_oai_chat c;
    struct sl_oai_error e;
    cr_assert_eq(parse("{" USER_HI "}", &c, &e), 0);
    cr_assert(!c.stream);
    cr_assert(!c.include_usage);
    cr_assert_null(c.user);
    cr_assert_null(c.req->model); /* the configured default */
    cr_assert_eq(c.req->max_tokens, -1);
    cr_assert(!c.req->has_temperature);
    sl_oai_chat_clear(&c);
    /* null means absent for every optional field */
    cr_assert_eq(parse("{\"model\":null,\"stream\":null,\"stream_options\":null,\"n\":null,"
                       "\"user\":null,\"max_tokens\":null,\"max_completion_tokens\":null," USER_HI
                       "}",
                       &c, &e),
                 0, "%s", e.message);
    cr_assert(!c.stream);
    cr_assert_eq(c.req->max_tokens, -1);
    sl_oai_chat_clear(&c);
}

Test(oai_parse, max_completion_tokens_wins)
{
    struct sl_oai_chat c;
    struct sl_oai_error e;
    cr_assert_eq(parse("{\"max_tokens\":10,\"max_completion_tokens\":20," USER_HI "}", &c, &e), 0);
    cr_assert_eq(c.req->max_tokens, 20);
    sl_oai_chat_clear(&c);
    cr_assert_eq(parse("{\"max_completion_tokens\":30," USER_HI "}", &c, &e), 0);
    cr_assert_eq(c.req->max_tokens, 30);
    sl_oai_chat_clear(&c);
    expect_error("{\"max_completion_tokens\":0," USER_HI "}", SL_ERR_BAD_REQUEST,
                 "max_completion_tokens", "\"max_completion_tokens\" must be an integer from 1");
    expect_error("{\"max_tokens\":1001," USER_HI "}", SL_ERR_BAD_REQUEST, "max_tokens",
                 "\"max_tokens\" must be an integer from 1 to 1000");
}

Test(oai_parse, stream_options_without_stream_is_ignored)
{
    struct sl_oai_chat c;
    struct sl_oai_error e;
    cr_assert_eq(parse("{\"stream_options\":{\"include_usage\":true}," USER_HI "}", &c, &e), 0);
    cr_assert(!c.stream);
    sl_oai_chat_clear(&c);
}

Test(oai_parse, agent_extension_and_model_as_agent)
{
    struct sl_oai_chat c;
    struct sl_oai_error e;
    cr_assert_eq(parse("{\"agent\":\"analyst\"," USER_HI "}", &c, &e), 0);
    cr_assert_str_eq(c.req->agent, "analyst");
    sl_oai_chat_clear(&c);
    cr_assert_eq(parse("{\"model\":\"analyst\"," USER_HI "}", &c, &e), 0);
    sl_oai_model_as_agent(c.req);
    cr_assert_null(c.req->model);
    cr_assert_str_eq(c.req->agent, "analyst");
    sl_oai_chat_clear(&c);
}

Test(oai_parse, unknown_and_native_only_fields_are_ignored)
{
    struct sl_oai_chat c;
    struct sl_oai_error e;
    /* "message", "system" and "id" are native-protocol fields, not OpenAI's. */
    cr_assert_eq(parse("{\"id\":\"x\",\"system\":\"s\",\"message\":\"m\",\"frobnicate\":[1,{}],"
                       "\"presence_penalty\":1," USER_HI "}",
                       &c, &e),
                 0, "%s", e.message);
    cr_assert_null(c.req->id);
    cr_assert_null(c.req->system);
    cr_assert_eq(json_array_size(c.req->messages), 1);
    sl_oai_chat_clear(&c);
}

Test(oai_parse, bad_requests)
{
    expect_error("", SL_ERR_BAD_REQUEST, "", "not valid JSON");
    expect_error("[1]", SL_ERR_BAD_REQUEST, "", "JSON object");
    expect_error("{\"a\":1,\"a\":2," USER_HI "}", SL_ERR_BAD_REQUEST, "", "duplicate");
    expect_error("{}", SL_ERR_BAD_REQUEST, "messages", "missing \"messages\"");
    expect_error("{\"messages\":{}}", SL_ERR_BAD_REQUEST, "messages", "must be an array");
    expect_error("{\"messages\":[]}", SL_ERR_EMPTY_MESSAGE, "messages", "no user message");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\" \"}]}", SL_ERR_EMPTY_MESSAGE,
                 "messages", "empty");
    expect_error("{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", SL_ERR_BAD_REQUEST,
                 "messages[0].role", "must be one of");
    expect_error("{\"n\":2," USER_HI "}", SL_ERR_BAD_REQUEST, "n", "only n=1");
    expect_error("{\"n\":\"1\"," USER_HI "}", SL_ERR_BAD_REQUEST, "n", "integer");
    expect_error("{\"stream\":\"yes\"," USER_HI "}", SL_ERR_BAD_REQUEST, "stream", "boolean");
    expect_error("{\"stream_options\":1," USER_HI "}", SL_ERR_BAD_REQUEST, "stream_options",
                 "object");
    expect_error("{\"stream\":true,\"stream_options\":{\"include_usage\":1}," USER_HI "}",
                 SL_ERR_BAD_REQUEST, "stream_options.include_usage", "boolean");
    expect_error("{\"user\":5," USER_HI "}", SL_ERR_BAD_REQUEST, "user", "string");
    expect_error("{\"model\":5," USER_HI "}", SL_ERR_BAD_REQUEST, "model", "string");
    expect_error("{\"temperature\":3," USER_HI "}", SL_ERR_BAD_REQUEST, "temperature", "between");
    expect_error("{\"top_p\":\"x\"," USER_HI "}", SL_ERR_BAD_REQUEST, "top_p", "number");
    expect_error("{\"stop\":[1]," USER_HI "}", SL_ERR_BAD_REQUEST, "stop", "array of up to 4");
    expect_error("{\"tool_choice\":1," USER_HI "}", SL_ERR_BAD_REQUEST, "tool_choice",
                 "string or object");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"},"
                 "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"}]}",
                 SL_ERR_TOO_LARGE, "messages", "too many messages");
}

/* The shared rules for tools and tool turns (proto/common.c), through this parser. */
Test(oai_parse, tool_shapes)
{
    expect_error("{\"tools\":{}," USER_HI "}", SL_ERR_BAD_REQUEST, "tools", "array");
    expect_error("{\"tools\":[{\"type\":\"function\"}]," USER_HI "}", SL_ERR_BAD_REQUEST,
                 "tools[0]", "tools[0] must be");
    expect_error("{\"tools\":[{\"type\":\"retrieval\",\"function\":{\"name\":\"x\"}}]," USER_HI "}",
                 SL_ERR_BAD_REQUEST, "tools[0]", "tools[0] must be");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                 "{\"role\":\"tool\",\"content\":\"r\"}]}",
                 SL_ERR_BAD_REQUEST, "messages[1].tool_call_id", "tool_call_id must be");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"q\",\"tool_calls\":[]}]}",
                 SL_ERR_BAD_REQUEST, "messages[0].tool_calls", "only allowed on an assistant");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
                 "\"tool_calls\":{}}]}",
                 SL_ERR_BAD_REQUEST, "messages[1].tool_calls", "must be an array");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
                 "\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
                 "\"arguments\":\"{}\"}}]}]}",
                 SL_ERR_BAD_REQUEST, "messages[1].tool_calls[0]", "\"id\"");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
                 "\"tool_calls\":[{\"id\":\"c\",\"type\":\"x\",\"function\":{\"name\":\"f\","
                 "\"arguments\":\"{}\"}}]}]}",
                 SL_ERR_BAD_REQUEST, "messages[1].tool_calls[0].type", "\"function\"");
    expect_error("{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\","
                 "\"tool_calls\":[{\"id\":\"c\",\"function\":{\"name\":\"f\"}}]}]}",
                 SL_ERR_BAD_REQUEST, "messages[1].tool_calls[0].function", "arguments");
}

/* --- errors --- */

Test(oai_error, table)
{
    static const struct {
        enum sl_errcode code;
        int status;
        const char *type, *ocode;
    } want[] = {
        {SL_ERR_AUTH_REQUIRED, 401, "invalid_request_error", "missing_api_key"},
        {SL_ERR_AUTH_FAILED, 401, "invalid_request_error", "invalid_api_key"},
        {SL_ERR_BAD_REQUEST, 400, "invalid_request_error", "bad_request"},
        {SL_ERR_EMPTY_MESSAGE, 400, "invalid_request_error", "empty_message"},
        {SL_ERR_UNKNOWN_MODEL, 404, "invalid_request_error", "model_not_found"},
        {SL_ERR_TOO_LARGE, 400, "invalid_request_error", "too_large"},
        {SL_ERR_RATE_LIMITED, 429, "requests", "rate_limit_exceeded"},
        {SL_ERR_TOO_MANY_STREAMS, 429, "requests", "too_many_streams"},
        {SL_ERR_DUPLICATE_ID, 409, "invalid_request_error", "duplicate_id"},
        {SL_ERR_NOT_FOUND, 404, "invalid_request_error", "not_found"},
        {SL_ERR_UPSTREAM_ERROR, 502, "server_error", "upstream_error"},
        {SL_ERR_UPSTREAM_TIMEOUT, 504, "server_error", "upstream_timeout"},
        {SL_ERR_UPSTREAM_RATE_LIMITED, 429, "requests", "upstream_rate_limited"},
        {SL_ERR_UPSTREAM_AUTH, 502, "server_error", "upstream_auth"},
        {SL_ERR_BUDGET_EXCEEDED, 429, "insufficient_quota", "insufficient_quota"},
        {SL_ERR_OVERLOADED, 503, "server_error", "overloaded"},
        {SL_ERR_SHUTTING_DOWN, 503, "server_error", "shutting_down"},
        {SL_ERR_INTERNAL, 500, "server_error", "internal_error"},
        {(enum sl_errcode)999, 500, "server_error", "internal_error"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        cr_assert_eq(sl_oai_error_status(want[i].code), want[i].status, "%zu", i);
        cr_assert_str_eq(sl_oai_error_type(want[i].code), want[i].type, "%zu", i);
        cr_assert_str_eq(sl_oai_error_code(want[i].code), want[i].ocode, "%zu", i);
    }
}

Test(oai_error, body_and_retry_after)
{
    struct sl_oai_error e;
    sl_oai_error_set(&e, SL_ERR_RATE_LIMITED, NULL, 1500, "slow \"down\"");
    struct sl_buf b = SL_BUF_INIT;
    sl_oai_render_error(&b, &e);
    json_error_t je;
    json_t *j = json_loadb(sl_buf_ptr(&b), sl_buf_len(&b), 0, &je);
    cr_assert_not_null(j, "%s", sl_buf_cstr(&b));
    json_t *o = json_object_get(j, "error");
    cr_assert_eq(json_object_size(j), 1);
    cr_assert_str_eq(json_string_value(json_object_get(o, "message")), "slow \"down\"");
    cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "requests");
    cr_assert(json_is_null(json_object_get(o, "param")));
    cr_assert_str_eq(json_string_value(json_object_get(o, "code")), "rate_limit_exceeded");
    json_decref(j);
    sl_buf_free(&b);

    cr_assert_eq(sl_oai_retry_after_s(&e), 2); /* 1.5 s rounds up */
    e.retry_after_ms = 0;
    cr_assert_eq(sl_oai_retry_after_s(&e), 0);
    e.retry_after_ms = -1;
    cr_assert_eq(sl_oai_retry_after_s(&e), 1); /* a 429 always says when */
    sl_oai_error_set(&e, SL_ERR_OVERLOADED, NULL, -1, "busy");
    cr_assert_eq(sl_oai_retry_after_s(&e), 1);
    sl_oai_error_set(&e, SL_ERR_BAD_REQUEST, "n", -1, "x");
    cr_assert_eq(sl_oai_retry_after_s(&e), -1);
    sl_oai_render_error(&b, &e);
    cr_assert(strstr(sl_buf_cstr(&b), "\"param\":\"n\"") != NULL, "%s", sl_buf_cstr(&b));
    sl_buf_free(&b);
    /* An empty message still says something. */
    sl_oai_error_set(&e, SL_ERR_INTERNAL, NULL, -1, "%s", "");
    cr_assert_str_eq(e.message, "INTERNAL");
}

Test(oai_error, from_events)
{
    struct sl_oai_error e;
    struct sl_event ev = {.type = SL_EV_ERROR, .seq = 3};
    ev.u.error.code = SL_ERR_UPSTREAM_TIMEOUT;
    ev.u.error.message = "openai: no first byte within 30s";
    ev.u.error.retry_after_ms = 2000;
    sl_oai_error_from_event(&e, &ev);
    cr_assert_eq(e.code, SL_ERR_UPSTREAM_TIMEOUT);
    cr_assert_eq(e.retry_after_ms, 2000);
    cr_assert_str_eq(e.message, "openai: no first byte within 30s");
    struct sl_event c = {.type = SL_EV_CANCELLED, .seq = 4};
    c.u.cancelled.reason = "shutdown";
    sl_oai_error_from_event(&e, &c);
    cr_assert_eq(e.code, SL_ERR_SHUTTING_DOWN);
    cr_assert(strstr(e.message, "shutdown") != NULL);
    c.u.cancelled.reason = "disconnect";
    sl_oai_error_from_event(&e, &c);
    cr_assert_eq(e.code, SL_ERR_INTERNAL);
}

/* The head lines of an error: the delay in both forms, and the event's own retryable flag. */
Test(oai_error, headers)
{
    struct sl_oai_error e;
    char h[SL_OAI_ERROR_HEADERS_MAX];
    sl_oai_error_set(&e, SL_ERR_UPSTREAM_RATE_LIMITED, NULL, 1500, "slow down");
    cr_assert_str_eq(sl_oai_error_headers(&e, h, sizeof(h)),
                     "Retry-After: 2\r\nretry-after-ms: 1500\r\n");
    sl_oai_error_set(&e, SL_ERR_BUDGET_EXCEEDED, NULL, -1, "spent");
    cr_assert_str_eq(sl_oai_error_headers(&e, h, sizeof(h)),
                     "Retry-After: 1\r\nx-should-retry: false\r\n");
    sl_oai_error_set(&e, SL_ERR_BAD_REQUEST, "n", -1, "x");
    cr_assert_str_eq(sl_oai_error_headers(&e, h, sizeof(h)), "x-should-retry: false\r\n");
    sl_oai_error_set(&e, SL_ERR_UPSTREAM_ERROR, NULL, -1, "x");
    cr_assert_str_eq(sl_oai_error_headers(&e, h, sizeof(h)), "");

    /* A provider's 404 is an UPSTREAM_ERROR its event says not to retry. */
    struct sl_event ev = {.type = SL_EV_ERROR, .seq = 2};
    ev.u.error.code = SL_ERR_UPSTREAM_ERROR;
    ev.u.error.message = "ollama: HTTP 404";
    ev.u.error.retryable = false;
    ev.u.error.retry_after_ms = -1;
    sl_oai_error_from_event(&e, &ev);
    cr_assert_not(e.retryable);
    cr_assert_str_eq(sl_oai_error_headers(&e, h, sizeof(h)), "x-should-retry: false\r\n");
    ev.u.error.retryable = true;
    sl_oai_error_from_event(&e, &ev);
    cr_assert(e.retryable);

    /* The longest lines fit. */
    sl_oai_error_set(&e, SL_ERR_BUDGET_EXCEEDED, NULL, INT64_MAX, "x");
    sl_oai_error_headers(&e, h, sizeof(h));
    cr_assert(strstr(h, "x-should-retry: false\r\n") != NULL, "%s", h);
}

/* --- SSE rendering --- */

/* One SSE event as a client's parser sees it. */
struct sse_ev {
    char id[64];
    bool has_id;
    char data[2048];
    bool comment;
};

/* Splits rendered bytes into SSE events (LF-only framing, as rendered); returns the count. */
static size_t
split_sse(const char *s, size_t n, struct sse_ev *evs, size_t max)
{
    size_t k = 0, i = 0;
    cr_assert(n >= 2 && s[n - 1] == '\n' && s[n - 2] == '\n', "ends with a blank line");
    while (i < n) {
        cr_assert_lt(k, max);
        struct sse_ev *e = &evs[k];
        memset(e, 0, sizeof(*e));
        while (i < n && s[i] != '\n') {
            const char *nl = memchr(s + i, '\n', n - i);
            cr_assert_not_null(nl);
            size_t len = (size_t)(nl - (s + i));
            if (len >= 4 && memcmp(s + i, "id: ", 4) == 0) {
                cr_assert_lt(len - 4, sizeof(e->id));
                memcpy(e->id, s + i + 4, len - 4);
                e->has_id = true;
            } else if (len >= 6 && memcmp(s + i, "data: ", 6) == 0) {
                cr_assert_lt(len - 6, sizeof(e->data));
                cr_assert_eq(e->data[0], '\0', "one data line per event");
                memcpy(e->data, s + i + 6, len - 6);
            } else if (len >= 1 && s[i] == ':') {
                e->comment = true;
            } else {
                cr_assert_fail("unexpected SSE line: %.*s", (int)len, s + i);
            }
            i += len + 1;
        }
        i++; /* the blank line */
        k++;
    }
    return k;
}

static json_t *
jparse(const char *s)
{
    json_error_t je;
    json_t *j = json_loads(s, 0, &je);
    cr_assert_not_null(j, "invalid JSON (%s): %s", je.text, s);
    return j;
}

/* Checks the constant part of a chunk and returns its first choice (or NULL if none). */
static json_t *
check_chunk(json_t *j, bool usage_key)
{
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "chatcmpl-s\"1");
    cr_assert_str_eq(json_string_value(json_object_get(j, "object")), "chat.completion.chunk");
    cr_assert_eq(json_integer_value(json_object_get(j, "created")), 1700000000);
    cr_assert_str_eq(json_string_value(json_object_get(j, "model")), "gpt-4o");
    cr_assert(json_is_null(json_object_get(j, "system_fingerprint")));
    cr_assert_eq(json_object_get(j, "usage") != NULL, usage_key);
    json_t *choices = json_object_get(j, "choices");
    cr_assert(json_is_array(choices));
    return json_array_get(choices, 0);
}

static const char SID[] = "s\"1";

static size_t
render(bool include_usage, const struct sl_event *ev, struct sse_ev *out, size_t max, int *end)
{
    struct sl_oai_stream st;
    sl_oai_stream_init(&st, SID, strlen(SID), "gpt-4o", 1700000000, include_usage);
    struct sl_buf b = SL_BUF_INIT;
    *end = sl_oai_sse_event(&st, &b, ev);
    size_t n = sl_buf_len(&b) ? split_sse(sl_buf_ptr(&b), sl_buf_len(&b), out, max) : 0;
    sl_buf_free(&b);
    sl_oai_stream_cleanup(&st);
    return n;
}

Test(oai_sse, start_is_the_role_chunk)
{
    struct sse_ev evs[4];
    int end;
    struct sl_event ev = {.type = SL_EV_START, .seq = 1};
    ev.u.start.model = "gpt-4o";
    cr_assert_eq(render(false, &ev, evs, 4, &end), 1);
    cr_assert_eq(end, 0);
    cr_assert(evs[0].has_id);
    cr_assert_str_eq(evs[0].id, "s\"1:1");
    json_t *j = jparse(evs[0].data);
    json_t *c = check_chunk(j, false);
    cr_assert_eq(json_integer_value(json_object_get(c, "index")), 0);
    json_t *d = json_object_get(c, "delta");
    cr_assert_str_eq(json_string_value(json_object_get(d, "role")), "assistant");
    cr_assert_str_eq(json_string_value(json_object_get(d, "content")), "");
    cr_assert(json_is_null(json_object_get(c, "finish_reason")));
    json_decref(j);
}

Test(oai_sse, progress_renders_nothing)
{
    struct sse_ev evs[1];
    int end;
    struct sl_event ev = {.type = SL_EV_PROGRESS, .seq = 2};
    ev.u.progress.step = "connecting";
    cr_assert_eq(render(true, &ev, evs, 1, &end), 0);
    cr_assert_eq(end, 0);
}

Test(oai_sse, content_delta)
{
    struct sse_ev evs[2];
    int end;
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = 7};
    ev.u.delta.text = "a\"b\n\xe2\x82\xac";
    ev.u.delta.len = strlen(ev.u.delta.text);
    cr_assert_eq(render(true, &ev, evs, 2, &end), 1);
    cr_assert_eq(end, 0);
    cr_assert_str_eq(evs[0].id, "s\"1:7");
    json_t *j = jparse(evs[0].data);
    json_t *c = check_chunk(j, true);
    cr_assert(json_is_null(json_object_get(j, "usage")));
    json_t *d = json_object_get(c, "delta");
    cr_assert_eq(json_object_size(d), 1);
    cr_assert_str_eq(json_string_value(json_object_get(d, "content")), "a\"b\n\xe2\x82\xac");
    json_decref(j);
    /* an empty text delta is no chunk */
    ev.u.delta.len = 0;
    cr_assert_eq(render(true, &ev, evs, 2, &end), 0);
}

Test(oai_sse, tool_call_deltas)
{
    struct sse_ev evs[2];
    int end;
    struct sl_tool_delta first = {.index = 1,
                                  .id = "call_9",
                                  .id_len = 6,
                                  .name = "get_weather",
                                  .name_len = 11,
                                  .arguments = "",
                                  .arguments_len = 0};
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = 5};
    ev.u.delta.tool = &first;
    cr_assert_eq(render(false, &ev, evs, 2, &end), 1);
    json_t *j = jparse(evs[0].data);
    json_t *tc = json_array_get(
        json_object_get(json_object_get(check_chunk(j, false), "delta"), "tool_calls"), 0);
    cr_assert_eq(json_integer_value(json_object_get(tc, "index")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(tc, "id")), "call_9");
    cr_assert_str_eq(json_string_value(json_object_get(tc, "type")), "function");
    json_t *fn = json_object_get(tc, "function");
    cr_assert_str_eq(json_string_value(json_object_get(fn, "name")), "get_weather");
    cr_assert_str_eq(json_string_value(json_object_get(fn, "arguments")), "");
    json_decref(j);

    /* a later fragment: index and arguments only */
    struct sl_tool_delta more = {.index = 1, .arguments = "{\"city\":", .arguments_len = 8};
    ev.u.delta.tool = &more;
    cr_assert_eq(render(false, &ev, evs, 2, &end), 1);
    j = jparse(evs[0].data);
    tc = json_array_get(
        json_object_get(json_object_get(check_chunk(j, false), "delta"), "tool_calls"), 0);
    cr_assert_eq(json_object_size(tc), 2);
    fn = json_object_get(tc, "function");
    cr_assert_eq(json_object_size(fn), 1);
    cr_assert_str_eq(json_string_value(json_object_get(fn, "arguments")), "{\"city\":");
    json_decref(j);
}

static struct sl_event
done_event(enum sl_finish f)
{
    struct sl_event ev = {.type = SL_EV_DONE, .seq = 42};
    ev.u.done.finish = f;
    ev.u.done.usage = (struct sl_usage){.input_tokens = 9, .output_tokens = 31};
    return ev;
}

Test(oai_sse, done_with_usage)
{
    struct sse_ev evs[4];
    int end;
    struct sl_event ev = done_event(SL_FINISH_LENGTH);
    cr_assert_eq(render(true, &ev, evs, 4, &end), 3);
    cr_assert_eq(end, 1);
    /* finish chunk: empty delta, finish_reason, usage null */
    cr_assert(!evs[0].has_id);
    json_t *j = jparse(evs[0].data);
    json_t *c = check_chunk(j, true);
    cr_assert_eq(json_object_size(json_object_get(c, "delta")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "length");
    cr_assert(json_is_null(json_object_get(j, "usage")));
    json_decref(j);
    /* usage chunk: no choices */
    cr_assert(!evs[1].has_id);
    j = jparse(evs[1].data);
    cr_assert_null(check_chunk(j, true));
    cr_assert_eq(json_array_size(json_object_get(j, "choices")), 0);
    json_t *u = json_object_get(j, "usage");
    cr_assert_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 9);
    cr_assert_eq(json_integer_value(json_object_get(u, "completion_tokens")), 31);
    cr_assert_eq(json_integer_value(json_object_get(u, "total_tokens")), 40);
    json_decref(j);
    /* then [DONE], carrying the event's id */
    cr_assert_str_eq(evs[2].data, "[DONE]");
    cr_assert(evs[2].has_id);
    cr_assert_str_eq(evs[2].id, "s\"1:42");
}

Test(oai_sse, done_without_usage_and_finish_names)
{
    static const struct {
        enum sl_finish f;
        const char *name;
    } cases[] = {{SL_FINISH_STOP, "stop"},
                 {SL_FINISH_LENGTH, "length"},
                 {SL_FINISH_TOOL_CALLS, "tool_calls"},
                 {SL_FINISH_CONTENT_FILTER, "content_filter"},
                 {SL_FINISH_ERROR, "error"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sse_ev evs[4];
        int end;
        struct sl_event ev = done_event(cases[i].f);
        cr_assert_eq(render(false, &ev, evs, 4, &end), 2);
        json_t *j = jparse(evs[0].data);
        json_t *c = check_chunk(j, false);
        cr_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), cases[i].name);
        json_decref(j);
        cr_assert_str_eq(evs[1].data, "[DONE]");
    }
}

Test(oai_sse, error_mid_stream)
{
    struct sse_ev evs[2];
    int end;
    struct sl_event ev = {.type = SL_EV_ERROR, .seq = 12};
    ev.u.error.code = SL_ERR_UPSTREAM_ERROR;
    ev.u.error.message = "openai: server_error";
    ev.u.error.retry_after_ms = -1;
    cr_assert_eq(render(true, &ev, evs, 2, &end), 1);
    cr_assert_eq(end, 1);
    cr_assert_str_eq(evs[0].id, "s\"1:12");
    json_t *j = jparse(evs[0].data);
    json_t *o = json_object_get(j, "error");
    cr_assert_str_eq(json_string_value(json_object_get(o, "message")), "openai: server_error");
    cr_assert_str_eq(json_string_value(json_object_get(o, "type")), "server_error");
    cr_assert_str_eq(json_string_value(json_object_get(o, "code")), "upstream_error");
    json_decref(j);

    struct sl_event c = {.type = SL_EV_CANCELLED, .seq = 13};
    c.u.cancelled.reason = "shutdown";
    cr_assert_eq(render(true, &c, evs, 2, &end), 1);
    cr_assert_eq(end, 1);
    j = jparse(evs[0].data);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "shutting_down");
    json_decref(j);
}

Test(oai_sse, heartbeat_and_own_error)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_oai_sse_heartbeat(&b);
    struct sse_ev evs[2];
    cr_assert_eq(split_sse(sl_buf_ptr(&b), sl_buf_len(&b), evs, 2), 1);
    cr_assert(evs[0].comment);
    cr_assert_eq(evs[0].data[0], '\0');
    sl_buf_clear(&b);
    struct sl_oai_error e;
    sl_oai_error_set(&e, SL_ERR_OVERLOADED, NULL, -1, "busy");
    sl_oai_sse_error(&b, &e);
    cr_assert_eq(split_sse(sl_buf_ptr(&b), sl_buf_len(&b), evs, 2), 1);
    json_t *j = jparse(evs[0].data);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "overloaded");
    json_decref(j);
    sl_buf_free(&b);
}

/* A stream id with a newline must not break the SSE framing. */
Test(oai_sse, id_line_is_sanitised)
{
    struct sl_oai_stream st;
    sl_oai_stream_init(&st, "a\nb\rc", 5, "m", 1, false);
    struct sl_buf b = SL_BUF_INIT;
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = 3};
    ev.u.delta.text = "x";
    ev.u.delta.len = 1;
    sl_oai_sse_event(&st, &b, &ev);
    struct sse_ev evs[2];
    cr_assert_eq(split_sse(sl_buf_ptr(&b), sl_buf_len(&b), evs, 2), 1);
    cr_assert_str_eq(evs[0].id, "a_b_c:3");
    json_t *j = jparse(evs[0].data);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "chatcmpl-a\nb\rc");
    json_decref(j);
    sl_buf_free(&b);
    sl_oai_stream_cleanup(&st);
}

/* Replaying from any point gives the bytes a live client got after it. */
Test(oai_sse, replay_is_a_suffix)
{
    struct sl_oai_stream st;
    sl_oai_stream_init(&st, "r", 1, "m", 5, true);
    struct sl_event evs[6] = {{.type = SL_EV_START, .seq = 1}, {.type = SL_EV_PROGRESS, .seq = 2},
                              {.type = SL_EV_DELTA, .seq = 3}, {.type = SL_EV_DELTA, .seq = 4},
                              {.type = SL_EV_DELTA, .seq = 5}, done_event(SL_FINISH_STOP)};
    evs[2].u.delta.text = "He";
    evs[2].u.delta.len = 2;
    evs[3].u.delta.text = "llo";
    evs[3].u.delta.len = 3;
    evs[4].u.delta.text = "!";
    evs[4].u.delta.len = 1;
    struct sl_buf live = SL_BUF_INIT, replay = SL_BUF_INIT;
    for (size_t i = 0; i < 6; i++)
        sl_oai_sse_event(&st, &live, &evs[i]);
    /* the client saw up to "id: r:3": resume after seq 3 */
    const char *cut = strstr(sl_buf_cstr(&live), "id: r:4\n");
    cr_assert_not_null(cut);
    for (size_t i = 3; i < 6; i++)
        sl_oai_sse_event(&st, &replay, &evs[i]);
    cr_assert_str_eq(sl_buf_cstr(&replay), cut);
    sl_buf_free(&live);
    sl_buf_free(&replay);
    sl_oai_stream_cleanup(&st);
}

Test(oai_sse, parse_event_id)
{
    const char *s;
    size_t n;
    uint64_t seq;
    cr_assert_eq(sl_oai_parse_event_id("abc:17", 6, &s, &n, &seq), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(memcmp(s, "abc", 3), 0);
    cr_assert_eq(seq, 17);
    cr_assert_eq(sl_oai_parse_event_id("a:b:0", 5, &s, &n, &seq), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(seq, 0);
    cr_assert_eq(sl_oai_parse_event_id("abc", 3, &s, &n, &seq), -1);
    cr_assert_eq(sl_oai_parse_event_id(":5", 2, &s, &n, &seq), -1);
    cr_assert_eq(sl_oai_parse_event_id("a:", 2, &s, &n, &seq), -1);
    cr_assert_eq(sl_oai_parse_event_id("a:1x", 4, &s, &n, &seq), -1);
    cr_assert_eq(sl_oai_parse_event_id("a:-1", 4, &s, &n, &seq), -1);
    cr_assert_eq(sl_oai_parse_event_id("a:99999999999999999999", 22, &s, &n, &seq), -1);
    cr_assert_eq(sl_oai_parse_event_id("", 0, &s, &n, &seq), -1);
}

/* --- aggregation --- */

static json_t *
agg_render(struct sl_oai_agg *a)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_oai_agg_render(a, &b, "s9", 2, "gpt-4o", 1700000001);
    json_t *j = jparse(sl_buf_cstr(&b));
    sl_buf_free(&b);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), "chatcmpl-s9");
    cr_assert_str_eq(json_string_value(json_object_get(j, "object")), "chat.completion");
    cr_assert_eq(json_integer_value(json_object_get(j, "created")), 1700000001);
    cr_assert_str_eq(json_string_value(json_object_get(j, "model")), "gpt-4o");
    cr_assert(json_is_null(json_object_get(j, "system_fingerprint")));
    return j;
}

static enum sl_oai_agg_state
feed_text(struct sl_oai_agg *a, uint32_t seq, const char *t)
{
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = seq};
    ev.u.delta.text = t;
    ev.u.delta.len = strlen(t);
    return sl_oai_agg_event(a, &ev);
}

static enum sl_oai_agg_state
feed_tool(struct sl_oai_agg *a, int index, const char *id, const char *name, const char *args)
{
    struct sl_tool_delta t = {.index = index,
                              .id = id,
                              .id_len = id ? strlen(id) : 0,
                              .name = name,
                              .name_len = name ? strlen(name) : 0,
                              .arguments = args,
                              .arguments_len = args ? strlen(args) : 0};
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = 1};
    ev.u.delta.tool = &t;
    return sl_oai_agg_event(a, &ev);
}

Test(oai_agg, text)
{
    struct sl_oai_agg *a = sl_oai_agg_new(1024);
    struct sl_event st = {.type = SL_EV_START, .seq = 1};
    cr_assert_eq(sl_oai_agg_event(a, &st), SL_OAI_AGG_MORE);
    cr_assert_eq(feed_text(a, 2, "Hel"), SL_OAI_AGG_MORE);
    cr_assert_eq(feed_text(a, 3, "lo \xe2\x82\xac"), SL_OAI_AGG_MORE);
    struct sl_event d = done_event(SL_FINISH_STOP);
    cr_assert_eq(sl_oai_agg_event(a, &d), SL_OAI_AGG_COMPLETE);
    /* later events change nothing */
    cr_assert_eq(feed_text(a, 50, "late"), SL_OAI_AGG_COMPLETE);
    json_t *j = agg_render(a);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    json_t *m = json_object_get(c, "message");
    cr_assert_str_eq(json_string_value(json_object_get(m, "role")), "assistant");
    cr_assert_str_eq(json_string_value(json_object_get(m, "content")), "Hello \xe2\x82\xac");
    cr_assert_null(json_object_get(m, "tool_calls"));
    cr_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "stop");
    json_t *u = json_object_get(j, "usage");
    cr_assert_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 9);
    cr_assert_eq(json_integer_value(json_object_get(u, "completion_tokens")), 31);
    cr_assert_eq(json_integer_value(json_object_get(u, "total_tokens")), 40);
    json_decref(j);
    sl_oai_agg_free(a);
}

Test(oai_agg, tool_calls_assembled)
{
    struct sl_oai_agg *a = sl_oai_agg_new(4096);
    /* two calls, interleaved fragments, the second announced first */
    feed_tool(a, 1, "call_b", "lookup", "");
    feed_tool(a, 0, "call_a", "get_weather", "{\"ci");
    feed_tool(a, 1, NULL, NULL, "{\"q\":1}");
    feed_tool(a, 0, NULL, NULL, "ty\":\"Paris\"}");
    feed_tool(a, 0, "call_other", "renamed", NULL); /* a repeated id or name is ignored */
    struct sl_event d = done_event(SL_FINISH_TOOL_CALLS);
    cr_assert_eq(sl_oai_agg_event(a, &d), SL_OAI_AGG_COMPLETE);
    json_t *j = agg_render(a);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    json_t *m = json_object_get(c, "message");
    cr_assert(json_is_null(json_object_get(m, "content")));
    json_t *calls = json_object_get(m, "tool_calls");
    cr_assert_eq(json_array_size(calls), 2);
    json_t *c0 = json_array_get(calls, 0), *c1 = json_array_get(calls, 1);
    cr_assert_str_eq(json_string_value(json_object_get(c0, "id")), "call_a");
    cr_assert_str_eq(json_string_value(json_object_get(c0, "type")), "function");
    json_t *f0 = json_object_get(c0, "function");
    cr_assert_str_eq(json_string_value(json_object_get(f0, "name")), "get_weather");
    cr_assert_str_eq(json_string_value(json_object_get(f0, "arguments")), "{\"city\":\"Paris\"}");
    cr_assert_str_eq(json_string_value(json_object_get(c1, "id")), "call_b");
    cr_assert_str_eq(
        json_string_value(json_object_get(json_object_get(c1, "function"), "arguments")),
        "{\"q\":1}");
    cr_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "tool_calls");
    json_decref(j);
    sl_oai_agg_free(a);
}

Test(oai_agg, text_and_tool_call)
{
    struct sl_oai_agg *a = sl_oai_agg_new(4096);
    feed_text(a, 1, "Let me check.");
    feed_tool(a, 0, "c", "f", "{}");
    struct sl_event d = done_event(SL_FINISH_TOOL_CALLS);
    sl_oai_agg_event(a, &d);
    json_t *j = agg_render(a);
    json_t *m = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    cr_assert_str_eq(json_string_value(json_object_get(m, "content")), "Let me check.");
    cr_assert_eq(json_array_size(json_object_get(m, "tool_calls")), 1);
    json_decref(j);
    sl_oai_agg_free(a);
}

Test(oai_agg, empty_answer_is_an_empty_string)
{
    struct sl_oai_agg *a = sl_oai_agg_new(16);
    struct sl_event d = done_event(SL_FINISH_CONTENT_FILTER);
    cr_assert_eq(sl_oai_agg_event(a, &d), SL_OAI_AGG_COMPLETE);
    json_t *j = agg_render(a);
    json_t *c = json_array_get(json_object_get(j, "choices"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(c, "message"), "content")),
                     "");
    cr_assert_str_eq(json_string_value(json_object_get(c, "finish_reason")), "content_filter");
    json_decref(j);
    sl_oai_agg_free(a);
}

Test(oai_agg, cap_on_text)
{
    struct sl_oai_agg *a = sl_oai_agg_new(10);
    cr_assert_eq(feed_text(a, 1, "12345"), SL_OAI_AGG_MORE);
    cr_assert_eq(feed_text(a, 2, "12345"), SL_OAI_AGG_MORE); /* exactly at the cap */
    cr_assert_eq(feed_text(a, 3, "x"), SL_OAI_AGG_FAILED);
    const struct sl_oai_error *e = sl_oai_agg_error(a);
    cr_assert_eq(e->code, SL_ERR_TOO_LARGE);
    cr_assert(strstr(e->message, "10 bytes") != NULL, "%s", e->message);
    cr_assert(strstr(e->message, "stream") != NULL);
    struct sl_event d = done_event(SL_FINISH_STOP);
    cr_assert_eq(sl_oai_agg_event(a, &d), SL_OAI_AGG_FAILED); /* stays failed */
    sl_oai_agg_free(a);
}

Test(oai_agg, cap_on_tool_calls)
{
    /* each call counts 64 bytes plus its text */
    struct sl_oai_agg *a = sl_oai_agg_new(64 + 3);
    cr_assert_eq(feed_tool(a, 0, "c", "f", "{"), SL_OAI_AGG_MORE);
    cr_assert_eq(feed_tool(a, 0, NULL, NULL, "}"), SL_OAI_AGG_FAILED);
    cr_assert_eq(sl_oai_agg_error(a)->code, SL_ERR_TOO_LARGE);
    sl_oai_agg_free(a);
    /* many calls of nothing: bounded by the count as well */
    a = sl_oai_agg_new(1 << 20);
    enum sl_oai_agg_state s = SL_OAI_AGG_MORE;
    int i;
    for (i = 0; i < 1000 && s == SL_OAI_AGG_MORE; i++)
        s = feed_tool(a, i, "c", "f", "");
    cr_assert_eq(s, SL_OAI_AGG_FAILED);
    cr_assert_eq(i, 129);
    sl_oai_agg_free(a);
}

Test(oai_agg, error_and_cancel)
{
    struct sl_oai_agg *a = sl_oai_agg_new(100);
    feed_text(a, 1, "part");
    struct sl_event ev = {.type = SL_EV_ERROR, .seq = 2};
    ev.u.error.code = SL_ERR_UPSTREAM_RATE_LIMITED;
    ev.u.error.message = "openai: slow down";
    ev.u.error.retry_after_ms = 3000;
    cr_assert_eq(sl_oai_agg_event(a, &ev), SL_OAI_AGG_FAILED);
    const struct sl_oai_error *e = sl_oai_agg_error(a);
    cr_assert_eq(e->code, SL_ERR_UPSTREAM_RATE_LIMITED);
    cr_assert_eq(sl_oai_error_status(e->code), 429);
    cr_assert_eq(sl_oai_retry_after_s(e), 3);
    sl_oai_agg_free(a);

    a = sl_oai_agg_new(100);
    struct sl_event c = {.type = SL_EV_CANCELLED, .seq = 1};
    c.u.cancelled.reason = "client";
    cr_assert_eq(sl_oai_agg_event(a, &c), SL_OAI_AGG_FAILED);
    sl_oai_agg_free(a);
    sl_oai_agg_free(NULL);
}

/* --- models --- */

Test(oai_models, list)
{
    struct sl_ready_model models[] = {{"gpt-4o", "openai"}, {"demo", "demo"}};
    struct sl_ready_agent agents[] = {{"analyst", "gpt-4o"}, {"ghost", "nope"}};
    struct sl_buf b = SL_BUF_INIT;
    sl_oai_render_models(&b, models, 2, agents, 2, 1700000002);
    json_t *j = jparse(sl_buf_cstr(&b));
    cr_assert_str_eq(json_string_value(json_object_get(j, "object")), "list");
    json_t *data = json_object_get(j, "data");
    cr_assert_eq(json_array_size(data), 4);
    static const char *const ids[] = {"gpt-4o", "demo", "analyst", "ghost"};
    static const char *const owners[] = {"openai", "demo", "openai", "sluice"};
    for (size_t i = 0; i < 4; i++) {
        json_t *m = json_array_get(data, i);
        cr_assert_str_eq(json_string_value(json_object_get(m, "id")), ids[i]);
        cr_assert_str_eq(json_string_value(json_object_get(m, "object")), "model");
        cr_assert_eq(json_integer_value(json_object_get(m, "created")), 1700000002);
        cr_assert_str_eq(json_string_value(json_object_get(m, "owned_by")), owners[i]);
    }
    json_decref(j);
    sl_buf_clear(&b);
    sl_oai_render_models(&b, NULL, 0, NULL, 0, 0);
    cr_assert_str_eq(sl_buf_cstr(&b), "{\"object\":\"list\",\"data\":[]}");
    sl_buf_free(&b);
}
