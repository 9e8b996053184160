/*
 * Unit tests for src/upstream/wire: what every HTTP adapter shares (status and header
 * parsing, the status table, Retry-After forms, redaction, request helpers, the order of
 * terminal callbacks, transport errors).
 */
#include <criterion/criterion.h>
#include <time.h>

#include "base/util.h"
#include "upstream/openai.h"
#include "wire_harness.h"

Test(wire, status_table)
{
    const struct {
        int status;
        enum sl_errcode code;
        bool retryable;
    } cases[] = {
        {400, SL_ERR_UPSTREAM_ERROR, false},        {401, SL_ERR_UPSTREAM_AUTH, false},
        {402, SL_ERR_UPSTREAM_ERROR, false},        {403, SL_ERR_UPSTREAM_AUTH, false},
        {404, SL_ERR_UPSTREAM_ERROR, false},        {408, SL_ERR_UPSTREAM_ERROR, true},
        {409, SL_ERR_UPSTREAM_ERROR, true},         {413, SL_ERR_UPSTREAM_ERROR, false},
        {422, SL_ERR_UPSTREAM_ERROR, false},        {429, SL_ERR_UPSTREAM_RATE_LIMITED, true},
        {500, SL_ERR_UPSTREAM_ERROR, true},         {502, SL_ERR_UPSTREAM_ERROR, true},
        {503, SL_ERR_UPSTREAM_ERROR, true},         {504, SL_ERR_UPSTREAM_TIMEOUT, true},
        {529, SL_ERR_UPSTREAM_ERROR, true},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        enum sl_errcode code;
        bool retryable;
        sl_wire_status_error(cases[i].status, &code, &retryable);
        cr_assert_eq(code, cases[i].code, "%d", cases[i].status);
        cr_assert_eq(retryable, cases[i].retryable, "%d", cases[i].status);
    }
}

Test(wire, durations)
{
    cr_assert_eq(sl_wire_duration_ms("2.5s"), 2500);
    cr_assert_eq(sl_wire_duration_ms("1s"), 1000);
    cr_assert_eq(sl_wire_duration_ms("0.001s"), 1);
    cr_assert_eq(sl_wire_duration_ms("250ms"), 250);
    cr_assert_eq(sl_wire_duration_ms("3"), 3000);
    cr_assert_eq(sl_wire_duration_ms("x"), -1);
    cr_assert_eq(sl_wire_duration_ms("2h"), -1);
    cr_assert_eq(sl_wire_duration_ms(NULL), -1);
}

/* In place: the decoder's parser keeps a pointer to it. */
static void
resp_init(struct sl_resp *r, struct rec *rec, struct sl_config_provider *pv)
{
    memset(rec, 0, sizeof(*rec));
    sl_resp_init(r, &sl_wire_openai, &rec_sink, rec, pv);
}

Test(wire, headers)
{
    struct rec rec;
    struct sl_config_provider pv = test_provider("p", H_KEY);
    struct sl_resp r;
    resp_init(&r, &rec, &pv);
    sl_resp_header(&r, "HTTP/1.1 100 Continue\r\n", 23);
    sl_resp_header(&r, "Retry-After: 9\r\n", 16);
    sl_resp_header(&r, "\r\n", 2);
    sl_resp_header(&r, "HTTP/2 429 \r\n", 13);
    cr_assert_eq(r.status, 429);
    cr_assert_eq(r.retry_after_ms, -1, "a new head forgets the previous one");
    sl_resp_header(&r, "x-request-id:   req_123  \r\n", 27);
    sl_resp_header(&r, "X-Should-Retry: false\r\n", 23);
    sl_resp_header(&r, "no colon here\r\n", 15);
    cr_assert_str_eq(r.request_id, "req_123");
    cr_assert_eq(r.should_retry, 0);

    /* an HTTP-date, 30 s ahead */
    char date[64], line[96];
    time_t t = time(NULL) + 30;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(line, sizeof(line), "Retry-After: %s\r\n", date);
    sl_resp_header(&r, line, strlen(line));
    cr_assert(r.retry_after_ms > 28000 && r.retry_after_ms <= 30000, "%lld",
              (long long)r.retry_after_ms);
    sl_resp_header(&r, "retry-after-ms: 12.4\r\n", 22);
    cr_assert_eq(r.retry_after_ms, 12);
    sl_resp_cleanup(&r);
}

Test(wire, transport_error_and_terminated_stream)
{
    struct rec rec;
    struct sl_config_provider pv = test_provider("openai-main", H_KEY);
    struct sl_resp r;
    resp_init(&r, &rec, &pv);
    sl_resp_header(&r, "HTTP/1.1 200 OK\r\n", 17);
    const char *body = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n";
    cr_assert_eq(sl_resp_body(&r, body, strlen(body)), 0);
    struct sl_upstream_error t = {.code = SL_ERR_UPSTREAM_TIMEOUT,
                                  .message = "no data for 50 ms (idle_timeout)",
                                  .retryable = true,
                                  .retry_after_ms = -1};
    sl_resp_end(&r, &t);
    sl_resp_deliver(&r);
    cr_assert_eq(rec.code, SL_ERR_UPSTREAM_TIMEOUT);
    cr_assert_str_eq(rec.message, "openai-main: no data for 50 ms (idle_timeout)");
    sl_resp_cleanup(&r);
    rec_free(&rec);

    /* [DONE] seen, then the connection fails: still a success */
    resp_init(&r, &rec, &pv);
    sl_resp_header(&r, "HTTP/1.1 200 OK\r\n", 17);
    body = "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    sl_resp_body(&r, body, strlen(body));
    t.code = SL_ERR_UPSTREAM_ERROR;
    t.message = "Connection reset";
    sl_resp_end(&r, &t);
    sl_resp_deliver(&r);
    cr_assert(rec.done);
    sl_resp_cleanup(&r);
    rec_free(&rec);
}

Test(wire, usage_comes_before_the_terminal_callback)
{
    struct rec rec;
    run_text(&sl_wire_openai, "HTTP/1.1 200 OK\r\n", NULL,
             "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n"
             "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":3}}\n\n"
             "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
             &rec);
    cr_assert_eq(rec.nusage, 1, "one usage report, the last one");
    cr_assert_eq(rec.usage.output_tokens, 3);
    cr_assert(rec.done);
    rec_free(&rec);
}

Test(wire, empty_200_body)
{
    struct rec rec;
    run_text(&sl_wire_openai, "HTTP/1.1 200 OK\r\n", NULL, "", &rec);
    cr_assert(!rec.done);
    cr_assert(strstr(rec.message, "no body"), "%s", rec.message);
    rec_free(&rec);
}

Test(wire, request_helpers)
{
    struct sl_httpreq req = {0};
    sl_httpreq_header(&req, "Expect", "");
    sl_httpreq_header(&req, "X-A", "b");
    cr_assert_str_eq(req.headers[0], "Expect:");
    cr_assert_str_eq(sl_httpreq_find(&req, "expect"), "");
    cr_assert_str_eq(sl_httpreq_find(&req, "x-a"), "b");
    cr_assert_null(sl_httpreq_find(&req, "X"));
    for (int i = 0; i < 40; i++)
        sl_httpreq_header(&req, "X-Many", "v");
    cr_assert_eq(req.nheaders, SL_HTTPREQ_MAX_HEADERS);
    sl_httpreq_cleanup(&req);

    char *u = sl_wire_url("https://api.anthropic.com", "v1", "/messages");
    cr_assert_str_eq(u, "https://api.anthropic.com/v1/messages");
    free(u);
    u = sl_wire_url("http://h/proxy/v1", "v1", "/messages");
    cr_assert_str_eq(u, "http://h/proxy/v1/messages");
    free(u);
    u = sl_wire_url("http://h/xv1", "v1", "/messages");
    cr_assert_str_eq(u, "http://h/xv1/v1/messages");
    free(u);

    struct sl_slice mime, data;
    cr_assert(sl_wire_data_url("data:image/png;base64,QUJD", &mime, &data));
    cr_assert(sl_slice_eq(mime, "image/png") && sl_slice_eq(data, "QUJD"));
    cr_assert(!sl_wire_data_url("https://x/y.png", &mime, &data));

    json_t *one = json_string("x");
    json_t *stop = sl_wire_stop_array(one);
    cr_assert_eq(json_array_size(stop), 1);
    json_decref(stop);
    json_decref(one);
    cr_assert_null(sl_wire_stop_array(NULL));
}

Test(wire, system_text_joins_prompt_and_system_messages)
{
    struct sl_chat_req *r = req_new();
    json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "system", "content", "B"));
    json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "user", "content", "u"));
    json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "developer", "content", ""));
    json_array_append_new(r->messages,
                          json_pack("{s:s,s:[{s:s,s:s}]}", "role", "developer", "content", "type",
                                    "text", "text", "C"));
    struct sl_call_params p = {.req = r, .system = "A"};
    char *s = sl_wire_system_text(&p);
    cr_assert_str_eq(s, "A\n\nB\n\nC");
    free(s);
    p.system = NULL;
    json_array_clear(r->messages);
    cr_assert_null(sl_wire_system_text(&p));
    sl_chat_req_free(r);
}

Test(wire, short_keys_and_masked_keys)
{
    struct rec rec;
    struct sl_config_provider pv = test_provider("p", "abc"); /* too short to hunt for */
    struct sl_resp r;
    resp_init(&r, &rec, &pv);
    sl_resp_header(&r, "HTTP/1.1 400 Bad Request\r\n", 26);
    const char *body = "{\"error\":{\"message\":\"abc is wrong: key sk-****1234, see docs\"}}";
    sl_resp_body(&r, body, strlen(body));
    sl_resp_end(&r, NULL);
    sl_resp_deliver(&r);
    cr_assert_str_eq(rec.message, "p: HTTP 400: abc is wrong: key [redacted] see docs");
    sl_resp_cleanup(&r);
    rec_free(&rec);
}
