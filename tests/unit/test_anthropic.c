/*
 * Unit tests for src/upstream/anthropic: every anthropic/ fixture in many splits, the
 * request built for each fixture's example, message/tool conversion, API versions, and
 * stream cases the fixtures lack.
 */
#include <criterion/criterion.h>

#include "upstream/anthropic.h"
#include "wire_harness.h"

static const char *const providers[] = {"anthropic", NULL};

Test(anthropic, every_fixture_in_every_split)
{
    size_t n = run_all_fixtures(&sl_wire_anthropic, providers);
    cr_assert_eq(n, 5);
}

Test(anthropic, builds_each_fixture_request)
{
    json_t *idx = load_index();
    struct fixture fx;
    int n = 0;
    for (size_t i = 0; fixture_load(idx, i, &fx); i++) {
        if (strcmp(fx.provider, "anthropic") != 0) {
            fixture_free(&fx);
            continue;
        }
        const json_t *body = json_object_get(json_object_get(fx.meta, "request"), "body");
        struct sl_config_provider pv = test_provider("p", fixture_key(&fx, "x-api-key", ""));
        pv.base_url = (char *)"https://api.anthropic.com";
        struct sl_chat_req *r = req_new();
        json_array_extend(r->messages, json_object_get(body, "messages"));
        if (json_object_get(body, "tools"))
            r->tools = json_incref(json_object_get(body, "tools"));
        struct sl_call_params p = {
            .req = r,
            .provider = &pv,
            .upstream_model = sl_json_str(body, "model"),
            .system = sl_json_str(body, "system"),
            .max_tokens = sl_json_int(body, "max_tokens", -1),
        };
        struct sl_httpreq req = {0};
        json_decref(build_body(&sl_wire_anthropic, &p, &req));
        check_request(&fx, &req, "https://api.anthropic.com", NULL);
        sl_httpreq_cleanup(&req);
        sl_chat_req_free(r);
        fixture_free(&fx);
        n++;
    }
    json_decref(idx);
    cr_assert_eq(n, 5);
}

Test(anthropic, converts_messages_tools_and_choice)
{
    struct sl_config_provider pv = test_provider("p", H_KEY);
    pv.base_url = (char *)"http://127.0.0.1:9/v1"; /* a base that already has /v1 */
    struct sl_chat_req *r = req_new();
    json_error_t e;
    json_t *msgs = json_loads(
        "[{\"role\":\"system\",\"content\":\"Rule two.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
        "\\\"Paris\\\"}\"}},{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"t\","
        "\"arguments\":\"not json\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"18C\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"ok\"},"
        "{\"role\":\"user\",\"content\":\"thanks\"}]",
        0, &e);
    cr_assert(msgs, "%s", e.text);
    json_array_extend(r->messages, msgs);
    json_decref(msgs);
    r->tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                          "\"description\":\"d\",\"parameters\":{\"type\":\"object\"}}}]",
                          0, NULL);
    r->tool_choice = json_string("required");
    r->stop = json_string("END");
    struct sl_call_params p = {.req = r,
                               .provider = &pv,
                               .upstream_model = "claude",
                               .system = "Rule one.",
                               .max_tokens = -1,
                               .temperature = 1.5,
                               .has_temperature = true};
    struct sl_httpreq req = {0};
    json_t *body = build_body(&sl_wire_anthropic, &p, &req);
    cr_assert_str_eq(req.url, "http://127.0.0.1:9/v1/messages");
    cr_assert_str_eq(sl_httpreq_find(&req, "x-api-key"), H_KEY);
    cr_assert_str_eq(sl_httpreq_find(&req, "anthropic-version"), "2023-06-01");
    cr_assert_null(sl_httpreq_find(&req, "Authorization"));
    cr_assert_eq(json_integer_value(json_object_get(body, "max_tokens")),
                 SL_ANTHROPIC_DEFAULT_MAX_TOKENS);
    cr_assert_str_eq(sl_json_str(body, "system"), "Rule one.\n\nRule two.");
    cr_assert(json_real_value(json_object_get(body, "temperature")) == 1.0, "clamped to 1");
    json_t *want = json_loads(
        "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"weather?\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
        "\"data\":\"AAAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"c1\",\"name\":"
        "\"get_weather\",\"input\":{\"city\":\"Paris\"}},{\"type\":\"tool_use\",\"id\":\"c2\","
        "\"name\":\"t\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"c1\","
        "\"content\":\"18C\"},{\"type\":\"tool_result\",\"tool_use_id\":\"c2\",\"content\":"
        "\"ok\"}]},"
        "{\"role\":\"user\",\"content\":\"thanks\"}]",
        0, &e);
    cr_assert(want, "%s", e.text);
    char *got = json_dumps(json_object_get(body, "messages"), JSON_SORT_KEYS);
    cr_assert(json_equal(json_object_get(body, "messages"), want), "%s", got);
    free(got);
    json_decref(want);
    cr_assert_str_eq(sl_json_str(json_array_get(json_object_get(body, "tools"), 0), "name"),
                     "get_weather");
    cr_assert_not_null(
        json_object_get(json_array_get(json_object_get(body, "tools"), 0), "input_schema"));
    cr_assert_str_eq(sl_json_str(json_object_get(body, "tool_choice"), "type"), "any");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(body, "stop_sequences"), 0)),
                     "END");
    json_decref(body);
    sl_httpreq_cleanup(&req);
    sl_chat_req_free(r);
}

Test(anthropic, new_api_version_uses_bearer_and_drops_sampling)
{
    struct sl_config_provider pv = test_provider("p", H_KEY);
    pv.base_url = (char *)"https://api.anthropic.com";
    pv.api_version = (char *)"2026-10-21";
    struct sl_chat_req *r = req_new();
    json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "user", "content", "hi"));
    r->has_top_p = true;
    r->top_p = 0.9;
    struct sl_call_params p = {.req = r,
                               .provider = &pv,
                               .upstream_model = "c",
                               .max_tokens = 10,
                               .temperature = 0.3,
                               .has_temperature = true};
    struct sl_httpreq req = {0};
    json_t *body = build_body(&sl_wire_anthropic, &p, &req);
    cr_assert_str_eq(sl_httpreq_find(&req, "Authorization"), "Bearer " H_KEY);
    cr_assert_null(sl_httpreq_find(&req, "x-api-key"));
    cr_assert_str_eq(sl_httpreq_find(&req, "anthropic-version"), "2026-10-21");
    cr_assert_null(json_object_get(body, "temperature"));
    cr_assert_null(json_object_get(body, "top_p"));
    json_decref(body);
    sl_httpreq_cleanup(&req);
    sl_chat_req_free(r);
}

#define EV(name, json) "event: " name "\ndata: " json "\n\n"

Test(anthropic, rate_limit_error_in_stream_and_http)
{
    struct rec r;
    run_text(&sl_wire_anthropic, "HTTP/1.1 200 OK\r\n", NULL,
             EV("message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":"
                                 "{\"input_tokens\":5,\"output_tokens\":1}}}")
                 EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                             "\"message\":\"slow\"}}"),
             &r);
    cr_assert(!r.done);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_RATE_LIMITED);
    cr_assert(r.retryable);
    cr_assert_str_eq(r.native_code, "rate_limit_error");
    cr_assert(r.have_usage, "usage consumed before the error is reported");
    cr_assert_eq(r.usage.input_tokens, 5);
    cr_assert(r.usage.estimated, "message_start's output count is provisional");
    cr_assert_eq(r.usage.output_tokens, 0, "no delta went out");
    rec_free(&r);

    run_text(&sl_wire_anthropic, "HTTP/1.1 429 Too Many Requests\r\n",
             "retry-after: 7\r\nx-should-retry: true\r\n",
             "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"x\"}}",
             &r);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_RATE_LIMITED);
    cr_assert_eq(r.retry_after_ms, 7000);
    rec_free(&r);

    /* x-should-retry: false overrides the status table (a 500 that will not heal) */
    run_text(&sl_wire_anthropic, "HTTP/1.1 500 Internal Server Error\r\n",
             "x-should-retry: false\r\n",
             "{\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"x\"}}", &r);
    cr_assert(!r.retryable);
    rec_free(&r);
}

Test(anthropic, stream_details)
{
    struct rec r;
    run_text(&sl_wire_anthropic, "HTTP/1.1 200 OK\r\n", NULL,
             EV("message_start", "{\"type\":\"message_start\",\"message\":{\"usage\":"
                                 "{\"input_tokens\":5,\"output_tokens\":1}}}")
                 EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,"
                                           "\"content_block\":{\"type\":\"thinking\"}}")
                     EV("content_block_delta",
                        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                        "\"thinking_delta\",\"thinking\":\"hmm\"}}")
                         EV("future_event", "{\"type\":\"future_event\"}")
                             EV("content_block_delta",
                                "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{"
                                "\"type\":\"text_delta\",\"text\":\"Hi\"}}")
                                 EV("message_delta",
                                    "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                    "\"max_tokens\"},\"usage\":{\"output_tokens\":9}}")
                                     EV("message_stop", "{\"type\":\"message_stop\"}"),
             &r);
    cr_assert(r.done, "%s", r.message);
    cr_assert_str_eq(sl_buf_cstr(&r.text), "Hi", "thinking is not part of the answer");
    cr_assert_eq(r.finish, SL_FINISH_LENGTH);
    cr_assert_eq(r.usage.input_tokens, 5, "input kept from message_start");
    cr_assert_eq(r.usage.output_tokens, 9);
    rec_free(&r);

    /* message_delta but no message_stop: truncated */
    run_text(&sl_wire_anthropic, "HTTP/1.1 200 OK\r\n", NULL,
             EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                 "\"end_turn\"},\"usage\":{\"output_tokens\":9}}"),
             &r);
    cr_assert(!r.done);
    cr_assert(strstr(r.message, "truncated"), "%s", r.message);
    rec_free(&r);
}
