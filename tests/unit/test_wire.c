/*
 * Unit tests for src/upstream/wire: what every HTTP adapter shares (status and header
 * parsing, the status table, Retry-After forms, redaction, request helpers, the order of
 * terminal callbacks, transport errors).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <time.h>

#include "base/util.h"
#include "upstream/anthropic.h"
#include "upstream/fastpath.h"
#include "upstream/gemini.h"
#include "upstream/ollama.h"
#include "upstream/openai.h"
#include "upstream/router.h"
#include "upstream/upstream.h"
#include "wire_harness.h"

Test(wire, status_table)
{
    const struct {
        int status;
        enum sl_errcode code;
        bool retryable;
    } cases[] = {
        {400, SL_ERR_UPSTREAM_ERROR, false}, {401, SL_ERR_UPSTREAM_AUTH, false},
        {402, SL_ERR_UPSTREAM_ERROR, false}, {403, SL_ERR_UPSTREAM_AUTH, false},
        {404, SL_ERR_UPSTREAM_ERROR, false}, {408, SL_ERR_UPSTREAM_ERROR, true},
        {409, SL_ERR_UPSTREAM_ERROR, true},  {413, SL_ERR_UPSTREAM_ERROR, false},
        {422, SL_ERR_UPSTREAM_ERROR, false}, {429, SL_ERR_UPSTREAM_RATE_LIMITED, true},
        {500, SL_ERR_UPSTREAM_ERROR, true},  {502, SL_ERR_UPSTREAM_ERROR, true},
        {503, SL_ERR_UPSTREAM_ERROR, true},  {504, SL_ERR_UPSTREAM_TIMEOUT, true},
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
    json_array_append_new(r->messages, json_pack("{s:s,s:[{s:s,s:s}]}", "role", "developer",
                                                 "content", "type", "text", "text", "C"));
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

/*
 * The jscan fast paths against the jansson paths, as tests/fuzz/fuzz_wire.c does: every
 * adapter reads every fixture body and every hand-made seed of tests/fuzz/seeds/wire,
 * whatever its format, and both paths must report the same.
 */
static void
fast_equals_slow(const char *name, const char *body, size_t len)
{
    static const struct sl_wire *const wires[] = {&sl_wire_openai, &sl_wire_anthropic,
                                                  &sl_wire_gemini, &sl_wire_ollama};
    struct fixture fx;
    memset(&fx, 0, sizeof(fx));
    snprintf(fx.id, sizeof(fx.id), "%s", name);
    fx.meta = json_pack("{s:{s:i,s:{}}}", "response", "status", 200, "headers");
    fx.body = (char *)body;
    fx.body_len = len;
    for (size_t i = 0; i < SL_ARRAY_LEN(wires); i++) {
        struct rec fast, slow;
        run_fixture_ex(wires[i], &fx, SPLIT_WHOLE, 0, false, &fast);
        run_fixture_ex(wires[i], &fx, SPLIT_WHOLE, 0, true, &slow);
        struct sl_buf a = SL_BUF_INIT, b = SL_BUF_INIT;
        rec_summary(&fast, &a);
        rec_summary(&slow, &b);
        cr_assert_str_eq(sl_buf_cstr(&a), sl_buf_cstr(&b), "%s read as %s", name, wires[i]->kind);
        cr_assert_eq(fast.terminals, 1);
        sl_buf_free(&a);
        sl_buf_free(&b);
        rec_free(&fast);
        rec_free(&slow);
    }
    json_decref(fx.meta);
}

Test(wire, fast_paths_agree_with_jansson_on_every_input)
{
    int n = 0;
    json_t *idx = load_index();
    struct fixture fx;
    for (size_t i = 0; fixture_load(idx, i, &fx); i++) {
        fast_equals_slow(fx.id, fx.body, fx.body_len);
        fixture_free(&fx);
        n++;
    }
    json_decref(idx);
    DIR *d = opendir("tests/fuzz/seeds/wire");
    cr_assert(d != NULL, "run from the repository root");
    for (;;) {
        struct dirent *e = readdir(d);
        if (e == NULL)
            break;
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof(path), "tests/fuzz/seeds/wire/%s", e->d_name);
        size_t len;
        char *body = read_file(path, &len);
        fast_equals_slow(e->d_name, body, len);
        free(body);
        n++;
    }
    closedir(d);
    cr_assert(n >= 33, "%d inputs", n);
}

/*
 * Numbers from providers that no C type holds (1e300 where an int is due), negative or
 * absurd token counts: each seed of tests/fuzz/seeds/wire named here, read by its adapter,
 * gives a clear outcome. A count out of range drops that usage report (the stream then
 * estimates, rather than wrapping to 2^64 - 5 tokens and an absurd cost_usd); a tool call
 * index out of range fails the stream; an error code out of range is no status.
 */
Test(wire, numbers_out_of_range_from_providers)
{
    static const struct {
        const char *seed;
        const struct sl_wire *wire;
        const char *text;  /* done with this text, or NULL: an error */
        const char *error; /* a part of its message */
        bool retryable;
    } cases[] = {
        {"openai_tool_index_1e300.sse", &sl_wire_openai, NULL, "tool call index", false},
        {"openai_usage_negative.sse", &sl_wire_openai, "hi", NULL, false},
        {"openai_usage_huge.sse", &sl_wire_openai, "hi", NULL, false},
        {"openai_error_code_wrap.sse", &sl_wire_openai, NULL, "bad", false},
        {"anthropic_tool_index_1e300.sse", &sl_wire_anthropic, NULL, "tool call index", false},
        {"anthropic_tool_index_negative.sse", &sl_wire_anthropic, NULL, "tool call index", false},
        {"anthropic_usage_negative.sse", &sl_wire_anthropic, "hi", NULL, false},
        {"gemini_usage_out_of_range.sse", &sl_wire_gemini, "hi!", NULL, false},
        {"gemini_error_code_1e300.sse", &sl_wire_gemini, NULL, "boom", true},
        {"ollama_counts_out_of_range.ndjson", &sl_wire_ollama, "hi", NULL, false},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char path[256];
        size_t len;
        snprintf(path, sizeof(path), "tests/fuzz/seeds/wire/%s", cases[i].seed);
        char *body = read_file(path, &len);
        for (int slow = 0; slow < 2; slow++) {
            struct fixture fx;
            memset(&fx, 0, sizeof(fx));
            snprintf(fx.id, sizeof(fx.id), "%s", cases[i].seed);
            fx.meta = json_pack("{s:{s:i,s:{}}}", "response", "status", 200, "headers");
            fx.body = body;
            fx.body_len = len;
            struct rec r;
            run_fixture_ex(cases[i].wire, &fx, SPLIT_WHOLE, 0, slow, &r);
            cr_assert_eq(r.terminals, 1, "%s", cases[i].seed);
            if (cases[i].text != NULL) {
                cr_assert(r.done, "%s: %s", cases[i].seed, r.message);
                cr_assert_str_eq(sl_buf_cstr(&r.text), cases[i].text, "%s", cases[i].seed);
                cr_assert(!r.have_usage, "%s: usage %llu/%llu", cases[i].seed,
                          (unsigned long long)r.usage.input_tokens,
                          (unsigned long long)r.usage.output_tokens);
            } else {
                cr_assert(!r.done, "%s: done", cases[i].seed);
                cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR, "%s", cases[i].seed);
                cr_assert(strstr(r.message, cases[i].error), "%s: %s", cases[i].seed, r.message);
                cr_assert_eq(r.retryable, cases[i].retryable, "%s: %s", cases[i].seed, r.message);
            }
            rec_free(&r);
            json_decref(fx.meta);
        }
        free(body);
    }
}

Test(wire, json_numbers_that_fit_no_integer_give_the_default)
{
    json_t *o = json_loads("{\"big\":1e300,\"neg\":-1e300,\"edge\":9223372036854775807.0,"
                           "\"real\":12.7,\"int\":-3,\"str\":\"4\"}",
                           0, NULL);
    cr_assert_not_null(o);
    cr_assert_eq(sl_json_int(o, "big", 7), 7);
    cr_assert_eq(sl_json_int(o, "neg", 7), 7);
    cr_assert_eq(sl_json_int(o, "edge", 7), 7, "2^63 as a double is one past INT64_MAX");
    cr_assert_eq(sl_json_int(o, "real", 7), 12);
    cr_assert_eq(sl_json_int(o, "int", 7), -3);
    cr_assert_eq(sl_json_int(o, "str", 7), 7);
    cr_assert_eq(sl_json_int(o, "absent", 7), 7);
    json_decref(o);
}

Test(wire, retry_after_values_that_fit_no_integer)
{
    static const struct {
        const char *line;
        int64_t want;
    } cases[] = {
        {"Retry-After: 1e300\r\n", -1},
        {"Retry-After: nan\r\n", -1},
        {"Retry-After: inf\r\n", -1},
        {"Retry-After: -3\r\n", -1},
        {"Retry-After: 0x10\r\n", -1},
        {"Retry-After: 99999999999999999999999\r\n", 86400000},
        {"Retry-After: 1.5\r\n", 1500},
        {"Retry-After: Fri, 31 Dec 9999 23:59:59 GMT\r\n", 86400000},
        {"retry-after-ms: 1e300\r\n", -1},
        {"retry-after-ms: inf\r\n", -1},
        {"retry-after-ms: nan\r\n", -1},
        {"retry-after-ms: 1"
         "0000000000000000000000000000000000000000\r\n",
         86400000},
        {"retry-after-ms: 12.4\r\n", 12},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        struct rec rec;
        struct sl_config_provider pv = test_provider("p", H_KEY);
        struct sl_resp r;
        resp_init(&r, &rec, &pv);
        sl_resp_header(&r, "HTTP/1.1 429 Slow\r\n", 19);
        sl_resp_header(&r, cases[i].line, strlen(cases[i].line));
        cr_assert_eq(r.retry_after_ms, cases[i].want, "%s-> %lld", cases[i].line,
                     (long long)r.retry_after_ms);
        sl_resp_cleanup(&r);
    }
    struct rec rec;
    struct sl_config_provider pv = test_provider("p", H_KEY);
    struct sl_resp r;
    resp_init(&r, &rec, &pv);
    sl_resp_header(&r, "HTTP/1.1 99999999999999999999 Huge\r\n", 36);
    cr_assert_geq(r.status, 1000, "a status of more than three digits is no success");
    sl_resp_cleanup(&r);
    cr_assert_eq(sl_wire_duration_ms("nan"), -1);
    cr_assert_eq(sl_wire_duration_ms("infs"), -1);
    cr_assert_eq(sl_wire_duration_ms("1e300ms"), -1);
}

/*
 * The decoder's half of a cancel: httpcall's cancel sets sl_resp.cancelled from inside a
 * sink callback (test_httpcall.c runs the real ops->cancel through every callback of every
 * adapter); here the flag alone, set from a delta in the middle of one read and from the
 * usage report, must stop every later callback, the terminal one included.
 */
struct flag_rec {
    struct rec rec;
    struct sl_resp *resp;
};

static void
flag_on_delta(void *ud, const char *text, size_t len)
{
    struct flag_rec *c = ud;
    rec_on_delta(&c->rec, text, len);
    c->resp->cancelled = true;
}

static void
flag_on_usage(void *ud, const struct sl_usage *u)
{
    struct flag_rec *c = ud;
    rec_on_usage(&c->rec, u);
    c->resp->cancelled = true;
}

Test(wire, the_cancelled_flag_stops_every_later_callback)
{
    static const char body[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"one\"}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"two\"}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
    for (int at_usage = 0; at_usage < 2; at_usage++) {
        struct sl_upstream_sink sink = rec_sink;
        if (at_usage)
            sink.on_usage = flag_on_usage;
        else
            sink.on_delta = flag_on_delta;
        struct flag_rec c;
        memset(&c, 0, sizeof(c));
        struct sl_config_provider pv = test_provider("p", H_KEY);
        struct sl_resp resp;
        c.resp = &resp;
        sl_resp_init(&resp, &sl_wire_openai, &sink, &c, &pv);
        sl_resp_header(&resp, "HTTP/1.1 200 OK\r\n", 17);
        int rc = sl_resp_body(&resp, body, strlen(body));
        cr_assert_eq(rc != 0, !at_usage, "a cancel in the body stops the read");
        sl_resp_end(&resp, NULL);
        sl_resp_deliver(&resp);
        cr_assert_eq(c.rec.ndeltas, at_usage ? 2 : 1);
        cr_assert_eq(c.rec.nusage, (unsigned)at_usage);
        cr_assert_eq(c.rec.terminals, 0, "no terminal callback after a cancel");
        sl_resp_cleanup(&resp);
        rec_free(&c.rec);
    }
}

Test(wire, a_response_head_is_capped)
{
    struct rec rec;
    struct sl_config_provider pv = test_provider("p", H_KEY);
    struct sl_resp r;
    char line[1024];
    memset(line, 'x', sizeof(line));
    memcpy(line, "X-Pad: ", 7);
    memcpy(line + sizeof(line) - 2, "\r\n", 2);

    /* 63 KiB in a 100 Continue head, then as much again in the answer's: fine */
    resp_init(&r, &rec, &pv);
    cr_assert_eq(sl_resp_header(&r, "HTTP/1.1 100 Continue\r\n", 23), 0);
    for (int i = 0; i < 63; i++)
        cr_assert_eq(sl_resp_header(&r, line, sizeof(line)), 0);
    cr_assert_eq(sl_resp_header(&r, "HTTP/1.1 200 OK\r\n", 17), 0);
    for (int i = 0; i < 63; i++)
        cr_assert_eq(sl_resp_header(&r, line, sizeof(line)), 0);
    sl_resp_cleanup(&r);

    /* past 64 KiB in one head: decided, not retryable, and every later line is refused */
    resp_init(&r, &rec, &pv);
    cr_assert_eq(sl_resp_header(&r, "HTTP/1.1 200 OK\r\n", 17), 0);
    int i = 0;
    while (sl_resp_header(&r, line, sizeof(line)) == 0)
        i++;
    cr_assert_eq(i, 63);
    cr_assert_eq(sl_resp_header(&r, "X: y\r\n", 6), 1);
    cr_assert_eq(sl_resp_body(&r, "data: x\n\n", 9), 1);
    sl_resp_end(&r, NULL);
    sl_resp_deliver(&r);
    cr_assert_eq(rec.terminals, 1);
    cr_assert_eq(rec.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(!rec.retryable);
    cr_assert_str_eq(rec.message, "p: provider response header too large (over 64 KiB)");
    sl_resp_cleanup(&r);
    rec_free(&rec);
}

/* The upstream layer's internal codes: each in its range, each with its own text. */
Test(wire, upstream_codes_have_a_range_and_a_text)
{
    static const int codes[] = {
        SL_SSE_ERR_LINE_TOO_LONG,    SL_SSE_ERR_EVENT_TOO_BIG, SL_SSE_ERR_STOPPED,
        SL_NDJSON_ERR_LINE_TOO_LONG, SL_NDJSON_ERR_STOPPED,    SL_FP_EJANSSON,
        SL_ROUTER_ENOMODEL,          SL_WIRE_ENOKEY,           SL_WIRE_EREQUEST};
    for (size_t i = 0; i < SL_ARRAY_LEN(codes); i++) {
        cr_assert_str_eq(sl_err_layer(codes[i]), "upstream", "%d", codes[i]);
        const char *text = sl_upstream_strerror(codes[i]);
        cr_assert_str_neq(text, "unknown error", "%d", codes[i]);
        for (size_t j = 0; j < i; j++) {
            cr_assert_neq(codes[i], codes[j]);
            cr_assert_str_neq(text, sl_upstream_strerror(codes[j]), "%d", codes[i]);
        }
    }
    cr_assert_str_eq(sl_upstream_strerror(-1), "unknown error");

    struct sl_config_provider pv = test_provider("p", NULL);
    struct sl_chat_req req = {.messages = NULL, .max_tokens = -1};
    struct sl_call_params p = {.req = &req, .provider = &pv, .upstream_model = "m"};
    struct sl_httpreq r = {0};
    struct sl_upstream_error err = {0};
    cr_assert_eq(sl_wire_build(&sl_wire_openai, &p, &r, &err), SL_WIRE_ENOKEY);
    cr_assert_eq(err.code, SL_ERR_UPSTREAM_AUTH);
}
