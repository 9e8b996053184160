/*
 * Unit tests for the mock upstream's synthetic streams: each format is rendered whole
 * and parsed back the way a client would, and compared with the shape of the
 * provider's fixture (field order of OpenAI chunks, framing, terminators, usage).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../bench/mock/request.c"
#include "../../bench/mock/scenario.c"
#include "../../bench/mock/synth.c"

/* Renders a complete stream the way the server does: head, tokens, then tail or fault. */
static void
render(const char *scenario, enum mock_provider fmt, bool include_usage, struct sl_buf *out)
{
    struct mock_scenario sc;
    char err[256];
    cr_assert_eq(mock_scenario_parse(scenario, strlen(scenario), &sc, err, sizeof(err)), 0, "%s",
                 err);
    struct mock_gen g;
    mock_gen_init(&g, &sc.synth, fmt, "model-x", 7, include_usage, 42);
    mock_gen_head(&g, out);
    uint32_t limit = sc.synth.tokens;
    if (sc.synth.fault != MOCK_FAULT_NONE && sc.synth.fault_after < limit)
        limit = sc.synth.fault_after;
    for (uint32_t i = 1; i <= limit; i++)
        mock_gen_token(&g, out, i, i == sc.synth.tokens && sc.synth.fault == MOCK_FAULT_NONE,
                       1000000 + i);
    if (sc.synth.fault == MOCK_FAULT_NONE)
        mock_gen_tail(&g, out, limit);
    else if (sc.synth.fault == MOCK_FAULT_ERROR)
        mock_gen_stream_error(fmt, out);
    mock_gen_cleanup(&g);
}

/* Splits SSE text into events on sep; returns the count, events[i] point into text. */
static size_t
split(char *text, const char *sep, char **events, size_t max)
{
    size_t n = 0;
    char *p = text;
    while (*p && n < max) {
        char *e = strstr(p, sep);
        cr_assert_not_null(e, "event not terminated by the separator: %.60s", p);
        *e = '\0';
        events[n++] = p;
        p = e + strlen(sep);
    }
    return n;
}

static json_t *
parse_json(const char *s)
{
    json_error_t jerr;
    json_t *j = json_loads(s, 0, &jerr);
    cr_assert_not_null(j, "bad JSON (%s): %.200s", jerr.text, s);
    return j;
}

static void
expect_keys(json_t *obj, const char *const *keys, size_t n)
{
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        cr_assert_lt(i, n, "extra key %s", k);
        cr_assert_str_eq(k, keys[i], "key %zu", i);
        i++;
    }
    cr_assert_eq(i, n);
}

Test(mock_synth, openai_matches_the_real_stream)
{
    struct sl_buf b = SL_BUF_INIT;
    render("synth:tokens=3", MOCK_PROV_OPENAI, true, &b);
    char *text = (char *)sl_buf_cstr(&b);
    char *ev[16];
    size_t n = split(text, "\n\n", ev, 16);
    cr_assert_eq(n, 7, "role, 3 tokens, finish, usage, [DONE]");
    cr_assert_str_eq(ev[6], "data: [DONE]");

    /* The field order of api.openai.com chunks (openai/chat_stream_basic). */
    static const char *const keys[] = {"id",      "object",       "created",
                                       "model",   "service_tier", "system_fingerprint",
                                       "choices", "usage",        "obfuscation"};
    struct sl_buf text_out = SL_BUF_INIT;
    for (size_t i = 0; i < 6; i++) {
        cr_assert(strncmp(ev[i], "data: ", 6) == 0);
        json_t *j = parse_json(ev[i] + 6);
        expect_keys(j, keys, SL_ARRAY_LEN(keys));
        cr_assert_str_eq(json_string_value(json_object_get(j, "object")), "chat.completion.chunk");
        cr_assert_str_eq(json_string_value(json_object_get(j, "model")), "model-x");
        cr_assert_gt(json_integer_value(json_object_get(j, "created")), 1700000000);
        json_t *choices = json_object_get(j, "choices");
        json_t *delta = json_object_get(json_array_get(choices, 0), "delta");
        if (i == 0)
            cr_assert_str_eq(json_string_value(json_object_get(delta, "role")), "assistant");
        if (i >= 1 && i <= 3)
            sl_buf_append_str(&text_out, json_string_value(json_object_get(delta, "content")));
        if (i == 4)
            cr_assert_str_eq(
                json_string_value(json_object_get(json_array_get(choices, 0), "finish_reason")),
                "stop");
        if (i < 5) {
            cr_assert(json_is_null(json_object_get(j, "usage")));
        } else {
            cr_assert_eq(json_array_size(choices), 0);
            json_t *u = json_object_get(j, "usage");
            cr_assert_eq(json_integer_value(json_object_get(u, "prompt_tokens")), 10);
            cr_assert_eq(json_integer_value(json_object_get(u, "completion_tokens")), 3);
            cr_assert_eq(json_integer_value(json_object_get(u, "total_tokens")), 13);
        }
        json_decref(j);
    }
    cr_assert_str_eq(sl_buf_cstr(&text_out), "tok1 tok2 tok3 ");
    sl_buf_free(&text_out);
    sl_buf_free(&b);
}

Test(mock_synth, openai_without_include_usage_sends_no_usage)
{
    struct sl_buf b = SL_BUF_INIT;
    render("synth:tokens=2", MOCK_PROV_OPENAI, false, &b);
    cr_assert_null(strstr(sl_buf_cstr(&b), "usage"));
    cr_assert_not_null(strstr(sl_buf_cstr(&b), "\"finish_reason\":\"stop\""));
    sl_buf_free(&b);

    render("synth:tokens=2,usage=0", MOCK_PROV_OPENAI, true, &b);
    cr_assert_null(strstr(sl_buf_cstr(&b), "usage"));
    sl_buf_free(&b);
}

Test(mock_synth, anthropic_event_names_and_usage)
{
    struct sl_buf b = SL_BUF_INIT;
    render("synth:tokens=2,prompt_tokens=5", MOCK_PROV_ANTHROPIC, false, &b);
    char *ev[16];
    size_t n = split((char *)sl_buf_cstr(&b), "\n\n", ev, 16);
    static const char *const types[] = {
        "message_start",       "content_block_start", "ping",          "content_block_delta",
        "content_block_delta", "content_block_stop",  "message_delta", "message_stop"};
    cr_assert_eq(n, SL_ARRAY_LEN(types));
    for (size_t i = 0; i < n; i++) {
        char *nl = strchr(ev[i], '\n');
        cr_assert_not_null(nl);
        *nl = '\0';
        cr_assert(strncmp(ev[i], "event: ", 7) == 0);
        cr_assert_str_eq(ev[i] + 7, types[i]);
        cr_assert(strncmp(nl + 1, "data: ", 6) == 0);
        json_t *j = parse_json(nl + 7);
        cr_assert_str_eq(json_string_value(json_object_get(j, "type")), types[i]);
        if (i == 0)
            cr_assert_eq(
                json_integer_value(json_object_get(
                    json_object_get(json_object_get(j, "message"), "usage"), "input_tokens")),
                5);
        if (i == 4)
            cr_assert_str_eq(
                json_string_value(json_object_get(json_object_get(j, "delta"), "text")), "tok2 ");
        if (i == 6) {
            cr_assert_str_eq(
                json_string_value(json_object_get(json_object_get(j, "delta"), "stop_reason")),
                "end_turn");
            cr_assert_eq(
                json_integer_value(json_object_get(json_object_get(j, "usage"), "output_tokens")),
                2);
        }
        json_decref(j);
    }
    sl_buf_free(&b);
}

Test(mock_synth, gemini_crlf_events_and_finish_on_the_last)
{
    struct sl_buf b = SL_BUF_INIT;
    render("synth:tokens=3", MOCK_PROV_GEMINI, false, &b);
    char *ev[16];
    size_t n = split((char *)sl_buf_cstr(&b), "\r\n\r\n", ev, 16);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        cr_assert(strncmp(ev[i], "data: ", 6) == 0);
        json_t *j = parse_json(ev[i] + 6);
        json_t *cand = json_array_get(json_object_get(j, "candidates"), 0);
        json_t *fr = json_object_get(cand, "finishReason");
        if (i == 2)
            cr_assert_str_eq(json_string_value(fr), "STOP");
        else
            cr_assert_null(fr);
        json_t *u = json_object_get(j, "usageMetadata");
        cr_assert_eq(json_integer_value(json_object_get(u, "candidatesTokenCount")),
                     (long long)i + 1);
        cr_assert_eq(json_integer_value(json_object_get(u, "totalTokenCount")), (long long)i + 11);
        json_decref(j);
    }
    sl_buf_free(&b);

    /* No tokens: one event with empty text carries the finish. */
    render("synth:tokens=0", MOCK_PROV_GEMINI, false, &b);
    n = split((char *)sl_buf_cstr(&b), "\r\n\r\n", ev, 16);
    cr_assert_eq(n, 1);
    cr_assert_not_null(strstr(ev[0], "\"finishReason\": \"STOP\""));
    sl_buf_free(&b);
}

Test(mock_synth, ollama_lines_end_with_done)
{
    struct sl_buf b = SL_BUF_INIT;
    render("synth:tokens=2,ts=1", MOCK_PROV_OLLAMA, false, &b);
    char *ev[16];
    size_t n = split((char *)sl_buf_cstr(&b), "\n", ev, 16);
    cr_assert_eq(n, 3);
    for (size_t i = 0; i < n; i++) {
        json_t *j = parse_json(ev[i]);
        const char *content =
            json_string_value(json_object_get(json_object_get(j, "message"), "content"));
        cr_assert_eq(json_is_true(json_object_get(j, "done")), i == 2);
        if (i < 2) {
            char want[32];
            snprintf(want, sizeof(want), "@%zu ", 1000001 + i);
            cr_assert_str_eq(content, want, "ts tokens carry the send time");
        } else {
            cr_assert_str_eq(content, "");
            cr_assert_eq(json_integer_value(json_object_get(j, "eval_count")), 2);
            cr_assert_str_eq(json_string_value(json_object_get(j, "done_reason")), "stop");
        }
        cr_assert_not_null(strstr(json_string_value(json_object_get(j, "created_at")), "Z"));
        json_decref(j);
    }
    sl_buf_free(&b);
}

Test(mock_synth, ts2_tokens_are_numbered_and_stamped)
{
    /* ts=2: the text can be checked token by token (tok<i>) and each token's delivery
     * latency measured (@<us>); the load generator's resume benchmark needs both. */
    struct sl_buf b = SL_BUF_INIT;
    render("synth:tokens=3,ts=2", MOCK_PROV_OPENAI, false, &b);
    char *ev[16];
    size_t n = split((char *)sl_buf_cstr(&b), "\n\n", ev, 16);
    cr_assert_eq(n, 6, "role, 3 tokens, finish, [DONE]");
    for (size_t i = 1; i <= 3; i++) {
        json_t *j = parse_json(ev[i] + 6);
        json_t *delta = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "delta");
        char want[32];
        snprintf(want, sizeof(want), "tok%zu@%zu ", i, 1000000 + i);
        cr_assert_str_eq(json_string_value(json_object_get(delta, "content")), want);
        json_decref(j);
    }
    sl_buf_free(&b);
}

Test(mock_synth, faults_drop_the_terminator)
{
    struct sl_buf b = SL_BUF_INIT;
    render("synth:tokens=5,truncate_after=2", MOCK_PROV_OPENAI, true, &b);
    cr_assert_null(strstr(sl_buf_cstr(&b), "[DONE]"));
    cr_assert_null(strstr(sl_buf_cstr(&b), "tok3"));
    cr_assert_not_null(strstr(sl_buf_cstr(&b), "tok2 "));
    sl_buf_free(&b);

    render("synth:tokens=3,truncate_after=3", MOCK_PROV_GEMINI, true, &b);
    cr_assert_null(strstr(sl_buf_cstr(&b), "finishReason"), "no finish on a truncated stream");
    sl_buf_free(&b);

    render("synth:tokens=5,error_after=1", MOCK_PROV_ANTHROPIC, true, &b);
    const char *t = sl_buf_cstr(&b);
    cr_assert_not_null(strstr(t, "event: error\ndata: {\"type\":\"error\""));
    cr_assert_null(strstr(t, "message_stop"));
    sl_buf_free(&b);
}

Test(mock_synth, stream_errors_are_the_providers)
{
    struct sl_buf b = SL_BUF_INIT;
    mock_gen_stream_error(MOCK_PROV_OPENAI, &b);
    json_t *j = parse_json(sl_buf_cstr(&b) + 6);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                     "server_error");
    json_decref(j);
    sl_buf_free(&b);

    mock_gen_stream_error(MOCK_PROV_GEMINI, &b);
    cr_assert(strstr(sl_buf_cstr(&b), "\r\n\r\n"));
    j = parse_json(sl_buf_cstr(&b) + 6);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(j, "error"), "code")), 503);
    json_decref(j);
    sl_buf_free(&b);

    mock_gen_stream_error(MOCK_PROV_OLLAMA, &b);
    j = parse_json(sl_buf_cstr(&b));
    cr_assert(json_is_string(json_object_get(j, "error")));
    json_decref(j);
    sl_buf_free(&b);
}

Test(mock_synth, http_errors_in_each_shape)
{
    struct sl_buf b = SL_BUF_INIT;
    mock_gen_http_error(MOCK_PROV_OPENAI, 429, 2, NULL, "req_1", &b);
    json_t *j = parse_json(sl_buf_cstr(&b));
    json_t *e = json_object_get(j, "error");
    cr_assert_str_eq(json_string_value(json_object_get(e, "code")), "rate_limit_exceeded");
    cr_assert(json_is_null(json_object_get(e, "param")));
    cr_assert_not_null(strstr(sl_buf_cstr(&b), "\n    \"error\": {\n"), "4-space pretty print");
    json_decref(j);
    sl_buf_free(&b);

    mock_gen_http_error(MOCK_PROV_ANTHROPIC, 529, -1, NULL, "req_1", &b);
    j = parse_json(sl_buf_cstr(&b));
    cr_assert_str_eq(json_string_value(json_object_get(j, "type")), "error");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "type")),
                     "overloaded_error");
    cr_assert_str_eq(json_string_value(json_object_get(j, "request_id")), "req_1");
    json_decref(j);
    sl_buf_free(&b);

    mock_gen_http_error(MOCK_PROV_GEMINI, 429, 3, NULL, NULL, &b);
    j = parse_json(sl_buf_cstr(&b));
    e = json_object_get(j, "error");
    cr_assert_str_eq(json_string_value(json_object_get(e, "status")), "RESOURCE_EXHAUSTED");
    json_t *d = json_array_get(json_object_get(e, "details"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(d, "@type")),
                     "type.googleapis.com/google.rpc.RetryInfo");
    cr_assert_str_eq(json_string_value(json_object_get(d, "retryDelay")), "3s");
    json_decref(j);
    sl_buf_free(&b);

    mock_gen_http_error(MOCK_PROV_OLLAMA, 404, -1, "llama\"9", NULL, &b);
    j = parse_json(sl_buf_cstr(&b));
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "model 'llama\"9' not found");
    json_decref(j);
    sl_buf_free(&b);

    mock_gen_http_error(MOCK_PROV_OPENAI, 404, -1, "gpt-x", NULL, &b);
    j = parse_json(sl_buf_cstr(&b));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "model_not_found");
    json_decref(j);
    sl_buf_free(&b);
}

Test(mock_synth, content_types)
{
    cr_assert_str_eq(mock_gen_content_type(MOCK_PROV_OPENAI), "text/event-stream; charset=utf-8");
    cr_assert_str_eq(mock_gen_content_type(MOCK_PROV_GEMINI), "text/event-stream");
    cr_assert_str_eq(mock_gen_content_type(MOCK_PROV_OLLAMA), "application/x-ndjson");
    cr_assert_str_eq(mock_gen_request_id_header(MOCK_PROV_ANTHROPIC), "request-id");
    cr_assert_null(mock_gen_request_id_header(MOCK_PROV_GEMINI));
}
