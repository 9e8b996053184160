/*
 * Unit tests for src/upstream/gemini: every gemini/ fixture in many splits, the request
 * built for each fixture's example, conversion, and what the fixtures lack (blocked
 * prompts, function calls, usage after the finish, raw error objects).
 */
#include <criterion/criterion.h>

#include "upstream/gemini.h"
#include "wire_harness.h"

static const char *const providers[] = {"gemini", NULL};

Test(gemini, every_fixture_in_every_split)
{
    size_t n = run_all_fixtures(&sl_wire_gemini, providers);
    cr_assert_eq(n, 4);
}

Test(gemini, builds_each_fixture_request)
{
    json_t *idx = load_index();
    struct fixture fx;
    int n = 0;
    for (size_t i = 0; fixture_load(idx, i, &fx); i++) {
        if (strcmp(fx.provider, "gemini") != 0) {
            fixture_free(&fx);
            continue;
        }
        const json_t *rq = json_object_get(fx.meta, "request");
        const json_t *body = json_object_get(rq, "body");
        struct sl_config_provider pv = test_provider("p", fixture_key(&fx, "x-goog-api-key", ""));
        pv.base_url = (char *)"https://generativelanguage.googleapis.com";
        /* Canonical messages from contents: model -> assistant, parts joined. */
        struct sl_chat_req *r = req_new();
        size_t k;
        const json_t *c;
        json_array_foreach(json_object_get(body, "contents"), k, c)
        {
            struct sl_buf text = SL_BUF_INIT;
            sl_wire_content_text(json_object_get(c, "parts"), &text);
            const char *role = strcmp(sl_json_str(c, "role"), "model") == 0 ? "assistant" : "user";
            json_array_append_new(r->messages, json_pack("{s:s,s:s%}", "role", role, "content",
                                                         sl_buf_ptr(&text), sl_buf_len(&text)));
            sl_buf_free(&text);
        }
        const json_t *gc = json_object_get(body, "generationConfig");
        const json_t *si = json_array_get(
            json_object_get(json_object_get(body, "systemInstruction"), "parts"), 0);
        /* the model from the path: /v1beta/models/<model>:streamGenerateContent */
        char model[64];
        const char *path = sl_json_str(rq, "path");
        const char *m = strstr(path, "/models/") + 8;
        snprintf(model, sizeof(model), "%.*s", (int)(strchr(m, ':') - m), m);
        struct sl_call_params p = {
            .req = r,
            .provider = &pv,
            .upstream_model = model,
            .system = sl_json_str(si, "text"),
            .max_tokens = sl_json_int(gc, "maxOutputTokens", -1),
            .temperature = json_number_value(json_object_get(gc, "temperature")),
            .has_temperature = json_object_get(gc, "temperature") != NULL,
        };
        struct sl_httpreq req = {0};
        json_decref(build_body(&sl_wire_gemini, &p, &req));
        check_request(&fx, &req, "https://generativelanguage.googleapis.com", NULL);
        sl_httpreq_cleanup(&req);
        sl_chat_req_free(r);
        fixture_free(&fx);
        n++;
    }
    json_decref(idx);
    cr_assert_eq(n, 4);
}

Test(gemini, url_forms_and_model_escaping)
{
    struct sl_config_provider pv = test_provider("p", H_KEY);
    struct sl_chat_req *r = req_new();
    json_array_append_new(r->messages, json_pack("{s:s,s:s}", "role", "user", "content", "hi"));
    struct sl_call_params p = {.req = r, .provider = &pv, .max_tokens = -1};
    const char *cases[][3] = {
        {"http://h:1", "fixture:gemini/x@random:7",
         "http://h:1/v1beta/models/fixture%3Agemini%2Fx%40random%3A7:streamGenerateContent?alt=sse"},
        {"http://h:1/v1", "models/gemini-2.5-flash",
         "http://h:1/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"},
        {"http://h:1/x/v1beta", "g", "http://h:1/x/v1beta/models/g:streamGenerateContent?alt=sse"},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        pv.base_url = (char *)cases[i][0];
        p.upstream_model = cases[i][1];
        struct sl_httpreq req = {0};
        json_t *body = build_body(&sl_wire_gemini, &p, &req);
        cr_assert_str_eq(req.url, cases[i][2]);
        cr_assert_str_eq(sl_httpreq_find(&req, "x-goog-api-key"), H_KEY);
        cr_assert(strstr(req.url, H_KEY) == NULL, "the key never goes in the URL");
        cr_assert_null(json_object_get(body, "generationConfig"));
        json_decref(body);
        sl_httpreq_cleanup(&req);
    }
    sl_chat_req_free(r);
}

Test(gemini, converts_tools_and_results)
{
    struct sl_config_provider pv = test_provider("p", H_KEY);
    pv.base_url = (char *)"http://h";
    struct sl_chat_req *r = req_new();
    json_error_t e;
    json_t *msgs = json_loads(
        "[{\"role\":\"developer\",\"content\":\"Be exact.\"},"
        "{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
        "\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"{\\\"temp\\\":18}\"}]",
        0, &e);
    cr_assert(msgs, "%s", e.text);
    json_array_extend(r->messages, msgs);
    json_decref(msgs);
    r->tools = json_loads("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                          "\"parameters\":{\"type\":\"object\"}}}]",
                          0, NULL);
    r->tool_choice = json_loads("{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}",
                                0, NULL);
    r->stop = json_pack("[s]", "END");
    struct sl_call_params p = {
        .req = r, .provider = &pv, .upstream_model = "g", .max_tokens = 5};
    struct sl_httpreq req = {0};
    json_t *body = build_body(&sl_wire_gemini, &p, &req);
    json_t *want = json_loads(
        "[{\"role\":\"user\",\"parts\":[{\"text\":\"weather?\"}]},"
        "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\",\"args\":"
        "{\"city\":\"Paris\"}}}]},"
        "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"get_weather\","
        "\"response\":{\"temp\":18}}}]}]",
        0, &e);
    cr_assert(want, "%s", e.text);
    char *got = json_dumps(json_object_get(body, "contents"), JSON_SORT_KEYS);
    cr_assert(json_equal(json_object_get(body, "contents"), want), "%s", got);
    free(got);
    json_decref(want);
    cr_assert_str_eq(
        sl_json_str(json_array_get(json_object_get(json_object_get(body, "systemInstruction"),
                                                   "parts"),
                                   0),
                    "text"),
        "Be exact.");
    const json_t *decl = json_array_get(
        json_object_get(json_array_get(json_object_get(body, "tools"), 0), "functionDeclarations"),
        0);
    cr_assert_str_eq(sl_json_str(decl, "name"), "get_weather");
    const json_t *fcc = json_object_get(json_object_get(body, "toolConfig"), "functionCallingConfig");
    cr_assert_str_eq(sl_json_str(fcc, "mode"), "ANY");
    const json_t *gc = json_object_get(body, "generationConfig");
    cr_assert_eq(json_integer_value(json_object_get(gc, "maxOutputTokens")), 5);
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(gc, "stopSequences"), 0)),
                     "END");
    json_decref(body);
    sl_httpreq_cleanup(&req);
    sl_chat_req_free(r);
}

#define DATA(json) "data: " json "\r\n\r\n"

Test(gemini, blocked_prompt_is_a_content_filter_finish)
{
    struct rec r;
    run_text(&sl_wire_gemini, "HTTP/1.1 200 OK\r\n", NULL,
             DATA("{\"promptFeedback\": {\"blockReason\": \"SAFETY\"},\"usageMetadata\": "
                  "{\"promptTokenCount\": 7,\"totalTokenCount\": 7}}"),
             &r);
    cr_assert(r.done, "%s", r.message);
    cr_assert_eq(r.finish, SL_FINISH_CONTENT_FILTER);
    cr_assert_str_eq(r.native_finish, "SAFETY");
    cr_assert_eq(r.usage.input_tokens, 7);
    cr_assert_eq(r.usage.output_tokens, 0);
    cr_assert_eq(sl_buf_len(&r.text), 0);
    rec_free(&r);
}

Test(gemini, function_calls_thoughts_and_late_usage)
{
    struct rec r;
    run_text(&sl_wire_gemini, "HTTP/1.1 200 OK\r\n", NULL,
             DATA("{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"plan\",\"thought\": "
                  "true},{\"text\": \"Checking.\"}],\"role\": \"model\"}}]}")
                 DATA("{\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": "
                      "\"get_weather\",\"args\": {\"city\": \"Paris\"}}},{\"functionCall\": "
                      "{\"id\": \"x9\",\"name\": \"now\"}}],\"role\": \"model\"},"
                      "\"finishReason\": \"STOP\"}]}")
                     DATA("{\"usageMetadata\": {\"promptTokenCount\": 3,\"candidatesTokenCount\": "
                          "4}}"),
             &r);
    cr_assert(r.done, "%s", r.message);
    cr_assert_str_eq(sl_buf_cstr(&r.text), "Checking.");
    cr_assert_eq(r.finish, SL_FINISH_TOOL_CALLS);
    cr_assert_str_eq(r.native_finish, "STOP");
    cr_assert(r.tools[0].used && r.tools[0].index == 0);
    cr_assert_str_eq(sl_buf_cstr(&r.tools[0].name), "get_weather");
    cr_assert_str_eq(sl_buf_cstr(&r.tools[0].args), "{\"city\":\"Paris\"}");
    cr_assert(r.tools[1].used && r.tools[1].index == 1);
    cr_assert_str_eq(sl_buf_cstr(&r.tools[1].id), "x9");
    cr_assert_str_eq(sl_buf_cstr(&r.tools[1].args), "{}");
    cr_assert_eq(r.usage.output_tokens, 4, "usage after the finish event still counts");
    rec_free(&r);
}

Test(gemini, finish_reasons)
{
    const char *cases[][2] = {{"MAX_TOKENS", "length"},
                              {"SAFETY", "content_filter"},
                              {"RECITATION", "content_filter"},
                              {"MALFORMED_FUNCTION_CALL", "error"},
                              {"OTHER", "stop"}};
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        char body[256];
        snprintf(body, sizeof(body),
                 DATA("{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"}]},"
                      "\"finishReason\": \"%s\"}]}"),
                 cases[i][0]);
        struct rec r;
        run_text(&sl_wire_gemini, "HTTP/1.1 200 OK\r\n", NULL, body, &r);
        cr_assert(r.done);
        cr_assert_str_eq(sl_finish_name(r.finish), cases[i][1], "%s", cases[i][0]);
        cr_assert_str_eq(r.native_finish, cases[i][0]);
        rec_free(&r);
    }
}

Test(gemini, raw_pretty_error_object_in_the_stream)
{
    struct rec r;
    run_text(&sl_wire_gemini, "HTTP/1.1 200 OK\r\n", NULL,
             DATA("{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"}]}}]}")
                 "{\n  \"error\": {\n    \"code\": 503,\n    \"message\": \"The model is "
                 "overloaded.\",\n    \"status\": \"UNAVAILABLE\"\n  }\n}\n",
             &r);
    cr_assert(!r.done);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(strstr(r.message, "The model is overloaded."), "%s", r.message);
    rec_free(&r);
}

Test(gemini, http_error_details)
{
    struct rec r;
    run_text(&sl_wire_gemini, "HTTP/1.1 503 Service Unavailable\r\n", NULL,
             "{\"error\":{\"code\":503,\"message\":\"busy\",\"status\":\"UNAVAILABLE\"}}", &r);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_ERROR);
    cr_assert(r.retryable);
    cr_assert_str_eq(r.native_code, "UNAVAILABLE");
    rec_free(&r);
    run_text(&sl_wire_gemini, "HTTP/1.1 504 Gateway Timeout\r\n", NULL,
             "{\"error\":{\"code\":504,\"message\":\"late\",\"status\":\"DEADLINE_EXCEEDED\"}}", &r);
    cr_assert_eq(r.code, SL_ERR_UPSTREAM_TIMEOUT);
    cr_assert(r.retryable);
    rec_free(&r);
}
