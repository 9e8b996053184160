/*
 * Unit tests for src/upstream/openai: every openai/ and openai_compat/ fixture through the
 * response decoder in many splits, the request built for each fixture's example, and the
 * cases the fixtures do not cover (vLLM errors, truncation at every byte, quota, keys).
 */
#include <criterion/criterion.h>

#include "upstream/openai.h"
#include "wire_harness.h"

static const char *const providers[] = {"openai", "openai_compat", NULL};

Test(openai, every_fixture_in_every_split)
{
    size_t n = run_all_fixtures(&sl_wire_openai, providers);
    cr_assert_eq(n, 15, "openai + openai_compat fixtures: %zu", n);
}

/* Canonical request from the example body: messages as they are (system included). */
static struct sl_chat_req *
req_from_example(const json_t *body, int64_t *max_tokens, double *temp, bool *has_temp)
{
    struct sl_chat_req *r = req_new();
    json_array_extend(r->messages, json_object_get(body, "messages"));
    if (json_object_get(body, "tools"))
        r->tools = json_incref(json_object_get(body, "tools"));
    if (json_object_get(body, "tool_choice"))
        r->tool_choice = json_incref(json_object_get(body, "tool_choice"));
    *max_tokens = sl_json_int(body, "max_completion_tokens", sl_json_int(body, "max_tokens", -1));
    json_t *t = json_object_get(body, "temperature");
    *has_temp = t != NULL;
    *temp = json_number_value(t);
    return r;
}

Test(openai, builds_each_fixture_request)
{
    json_t *idx = load_index();
    struct fixture fx;
    int n = 0;
    for (size_t i = 0; fixture_load(idx, i, &fx); i++) {
        bool official = strcmp(fx.provider, "openai") == 0;
        if (!official && strcmp(fx.provider, "openai_compat") != 0) {
            fixture_free(&fx);
            continue;
        }
        const json_t *body = json_object_get(json_object_get(fx.meta, "request"), "body");
        const char *origin = official ? "https://api.openai.com" : "http://127.0.0.1:8080";
        char base[128];
        snprintf(base, sizeof(base), "%s/v1", origin);
        struct sl_config_provider pv =
            test_provider("p", fixture_key(&fx, "Authorization", "Bearer "));
        pv.base_url = base;
        struct sl_call_params p = {
            .provider = &pv,
            .upstream_model = json_string_value(json_object_get(body, "model")),
        };
        struct sl_chat_req *r =
            req_from_example(body, &p.max_tokens, &p.temperature, &p.has_temperature);
        p.req = r;
        struct sl_httpreq req = {0};
        struct sl_upstream_error err = {0};
        cr_assert_eq(sl_wire_build(&sl_wire_openai, &p, &req, &err), 0, "%s", fx.id);
        /* stream_options.include_usage is always sent: compare it apart; parallel_tool_calls
         * is not part of the canonical request. */
        const json_t *so = json_object_get(body, "stream_options");
        if (so)
            cr_assert(json_is_true(json_object_get(so, "include_usage")));
        cr_assert(strstr(req.body, "\"stream_options\":{\"include_usage\":true}") != NULL);
        const char *const ignore[] = {"stream_options", "parallel_tool_calls", NULL};
        check_request(&fx, &req, origin, ignore);
        sl_httpreq_cleanup(&req);
        sl_chat_req_free(r);
        fixture_free(&fx);
        n++;
    }
    json_decref(idx);
    cr_assert_eq(n, 15);
}

#define CHUNK(content)                                                                             \
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" content "\"}}]}\n\n"
#define FINISH "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"

Test(openai, truncation_at_every_byte_is_an_error_until_done_is_complete)
{
    json_t *idx = load_index();
    struct fixture fx;
    cr_assert(fixture_load(idx, 0, &fx));
    cr_assert_str_eq(fx.id, "openai/chat_stream_basic");
    const char *done = strstr(fx.body, "\ndata: [DONE]");
    cr_assert(done != NULL);
    size_t done_end = (size_t)(done - fx.body) + strlen("\ndata: [DONE]");
    size_t full = fx.body_len;
    for (size_t cut = 0; cut <= full; cut++) {
        fx.body_len = cut;
        struct rec r;
        run_fixture(&sl_wire_openai, &fx, SPLIT_WHOLE, 0, &r);
        cr_assert_eq(r.terminals, 1);
        if (cut >= done_end) {
            cr_assert(r.done, "cut %zu: %s", cut, r.message);
        } else {
            cr_assert(!r.done, "cut %zu: done", cut);
            cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR);
            cr_assert(r.retryable, "cut %zu: %s", cut, r.message);
            cr_assert(strstr(r.message, "truncated") || strstr(r.message, "no body"), "cut %zu: %s",
                      cut, r.message);
        }
        rec_free(&r);
    }
    fx.body_len = full;
    fixture_free(&fx);
    json_decref(idx);
}

Test(openai, done_without_finish_reason_is_an_error)
{
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 200 OK\r\n", NULL, CHUNK("hi") "data: [DONE]\n\n", &r);
    cr_assert(!r.done);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(strstr(r.message, "without a finish reason"), "%s", r.message);
    cr_assert_str_eq(sl_buf_cstr(&r.text), "hi");
    rec_free(&r);
}

Test(openai, usage_on_the_finish_chunk_and_null_choices)
{
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 200 OK\r\n", NULL,
             CHUNK("a") "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}],"
                        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n"
                        "data: {\"choices\":null,\"usage\":null}\n\ndata: [DONE]\n\n",
             &r);
    cr_assert(r.done, "%s", r.message);
    cr_assert_eq(r.finish, SL_FINISH_LENGTH);
    cr_assert_str_eq(r.native_finish, "length");
    cr_assert(r.have_usage);
    cr_assert_eq(r.usage.input_tokens, 3);
    cr_assert_eq(r.usage.output_tokens, 1);
    rec_free(&r);
}

Test(openai, vllm_error_object_in_the_stream)
{
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 200 OK\r\n", NULL,
             CHUNK("x") "data: {\"object\":\"error\",\"message\":\"out of memory\","
                        "\"type\":\"InternalServerError\",\"code\":500}\n\n",
             &r);
    cr_assert(!r.done);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(r.retryable);
    cr_assert(strstr(r.message, "out of memory"), "%s", r.message);
    rec_free(&r);

    run_text(&sl_wire_openai, "HTTP/1.1 200 OK\r\n", NULL,
             "event: error\ndata: {\"message\":\"bad\",\"code\":400}\n\n", &r);
    cr_assert(!r.done);
    cr_assert(!r.retryable, "a 400-like error is not retried");
    rec_free(&r);
}

Test(openai, malformed_chunk_is_an_error)
{
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 200 OK\r\n", NULL, CHUNK("a") "data: {not json}\n\n" FINISH,
             &r);
    cr_assert(!r.done);
    cr_assert(strstr(r.message, "not valid JSON"), "%s", r.message);
    cr_assert_str_eq(sl_buf_cstr(&r.text), "a");
    rec_free(&r);
}

Test(openai, insufficient_quota_is_not_retryable)
{
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 429 Too Many Requests\r\n", "retry-after: 20\r\n",
             "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":"
             "\"insufficient_quota\",\"param\":null,\"code\":\"insufficient_quota\"}}",
             &r);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_RATE_LIMITED);
    cr_assert(!r.retryable);
    cr_assert_eq(r.http_status, 429);
    cr_assert_str_eq(r.native_code, "insufficient_quota");
    rec_free(&r);
}

Test(openai, retry_after_ms_wins_over_retry_after)
{
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 429 Too Many Requests\r\n",
             "retry-after: 2\r\nretry-after-ms: 1500\r\n",
             "{\"error\":{\"message\":\"slow down\",\"code\":\"rate_limit_exceeded\"}}", &r);
    cr_assert_eq(r.retry_after_ms, 1500);
    rec_free(&r);
    run_text(&sl_wire_openai, "HTTP/1.1 503 Service Unavailable\r\n", "Retry-After: 3\r\n", "", &r);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(r.retryable);
    cr_assert_eq(r.retry_after_ms, 3000);
    rec_free(&r);
}

Test(openai, non_json_error_body_is_quoted)
{
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 502 Bad Gateway\r\n", NULL,
             "<html>\n<body>bad gateway</body></html>", &r);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(r.retryable);
    cr_assert(strstr(r.message, "HTTP 502") && strstr(r.message, "bad gateway"), "%s", r.message);
    rec_free(&r);
}

Test(openai, huge_error_body_is_capped)
{
    size_t n = 1 << 20;
    char *body = sl_malloc(n + 1);
    memset(body, 'x', n);
    body[n] = '\0';
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 500 Internal Server Error\r\n", NULL, body, &r);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(strlen(r.message) < 512);
    free(body);
    rec_free(&r);
}

Test(openai, the_key_never_appears_in_an_error)
{
    struct rec r;
    run_text(&sl_wire_openai, "HTTP/1.1 401 Unauthorized\r\n", NULL,
             "{\"error\":{\"message\":\"Incorrect API key provided: " H_KEY
             ". Also sk-tes*****************cdef.\",\"code\":\"invalid_api_key\"}}",
             &r);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_AUTH);
    cr_assert(strstr(r.message, H_KEY) == NULL, "%s", r.message);
    cr_assert(strstr(r.message, "****") == NULL, "%s", r.message);
    cr_assert(strstr(r.message, "[redacted]") != NULL, "%s", r.message);
    rec_free(&r);
    /* in the stream too */
    run_text(&sl_wire_openai, "HTTP/1.1 200 OK\r\n", NULL,
             "data: {\"error\":{\"message\":\"key " H_KEY
             " revoked\",\"type\":\"server_error\"}}\n\n",
             &r);
    cr_assert(strstr(r.message, H_KEY) == NULL, "%s", r.message);
    rec_free(&r);
}

Test(openai, missing_key_fails_before_any_request)
{
    struct sl_config_provider pv = test_provider("p", NULL);
    pv.base_url = (char *)"https://api.openai.com/v1";
    struct sl_chat_req *r = req_new();
    struct sl_call_params p = {.req = r, .provider = &pv, .upstream_model = "m", .max_tokens = -1};
    struct sl_httpreq req = {0};
    struct sl_upstream_error err = {0};
    cr_assert_eq(sl_wire_build(&sl_wire_openai, &p, &req, &err), SL_WIRE_ENOKEY);
    cr_assert_eq(err.code, SL_ERR_UPSTREAM_AUTH);
    cr_assert(!err.retryable);
    cr_assert(req.url == NULL);

    /* api_key_env: null says the server takes no key: no Authorization at all. */
    pv.api_key_env = NULL;
    cr_assert_eq(sl_wire_build(&sl_wire_openai, &p, &req, &err), 0);
    cr_assert_null(sl_httpreq_find(&req, "Authorization"));
    sl_httpreq_cleanup(&req);
    sl_chat_req_free(r);
}

Test(openai, request_details)
{
    struct sl_config_provider pv = test_provider("p", H_KEY);
    pv.base_url = (char *)"http://127.0.0.1:1234/v1";
    struct sl_config_header extra = {(char *)"X-Team", (char *)"search"};
    pv.headers = &extra;
    pv.nheaders = 1;
    struct sl_chat_req *r = req_new();
    json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "user", "content", "hi"));
    r->stop = json_string("END");
    r->has_top_p = true;
    r->top_p = 0.5;
    struct sl_call_params p = {.req = r,
                               .provider = &pv,
                               .upstream_model = "m",
                               .system = "Be brief.",
                               .max_tokens = 7,
                               .request_id = "sluice-abc"};
    struct sl_httpreq req = {0};
    struct sl_upstream_error err = {0};
    cr_assert_eq(sl_wire_build(&sl_wire_openai, &p, &req, &err), 0);
    cr_assert_str_eq(req.url, "http://127.0.0.1:1234/v1/chat/completions");
    cr_assert_str_eq(sl_httpreq_find(&req, "X-Team"), "search");
    cr_assert_str_eq(sl_httpreq_find(&req, "X-Request-Id"), "sluice-abc");
    cr_assert_str_eq(sl_httpreq_find(&req, "Authorization"), "Bearer " H_KEY);
    json_t *body = json_loads(req.body, 0, NULL);
    cr_assert_eq(json_integer_value(json_object_get(body, "max_tokens")), 7);
    cr_assert_null(json_object_get(body, "max_completion_tokens"));
    cr_assert_str_eq(sl_json_str(json_array_get(json_object_get(body, "messages"), 0), "content"),
                     "Be brief.");
    cr_assert_str_eq(json_string_value(json_object_get(body, "stop")), "END");
    cr_assert(json_real_value(json_object_get(body, "top_p")) == 0.5);
    cr_assert_null(json_object_get(body, "temperature"));
    json_decref(body);
    sl_httpreq_cleanup(&req);
    sl_chat_req_free(r);
}
