/*
 * Unit tests for src/upstream/ollama: every ollama/ fixture in many splits, the request
 * built for each fixture's example, conversion, and the NDJSON cases the fixtures lack.
 */
#include <criterion/criterion.h>

#include "upstream/ollama.h"
#include "wire_harness.h"

static const char *const providers[] = {"ollama", NULL};

Test(ollama, every_fixture_in_every_split)
{
    size_t n = run_all_fixtures(&sl_wire_ollama, providers);
    cr_assert_eq(n, 3);
}

Test(ollama, builds_each_fixture_request)
{
    json_t *idx = load_index();
    struct fixture fx;
    int n = 0;
    for (size_t i = 0; fixture_load(idx, i, &fx); i++) {
        if (strcmp(fx.provider, "ollama") != 0) {
            fixture_free(&fx);
            continue;
        }
        const json_t *body = json_object_get(json_object_get(fx.meta, "request"), "body");
        const json_t *opt = json_object_get(body, "options");
        struct sl_config_provider pv = test_provider("p", NULL);
        pv.api_key_env = NULL;
        pv.base_url = (char *)"http://127.0.0.1:11434";
        struct sl_chat_req *r = req_new();
        json_array_extend(r->messages, json_object_get(body, "messages"));
        struct sl_call_params p = {
            .req = r,
            .provider = &pv,
            .upstream_model = sl_json_str(body, "model"),
            .max_tokens = sl_json_int(opt, "num_predict", -1),
            .temperature = json_number_value(json_object_get(opt, "temperature")),
            .has_temperature = json_object_get(opt, "temperature") != NULL,
        };
        struct sl_httpreq req = {0};
        json_decref(build_body(&sl_wire_ollama, &p, &req));
        cr_assert_null(sl_httpreq_find(&req, "Authorization"));
        check_request(&fx, &req, "http://127.0.0.1:11434", NULL);
        sl_httpreq_cleanup(&req);
        sl_chat_req_free(r);
        fixture_free(&fx);
        n++;
    }
    json_decref(idx);
    cr_assert_eq(n, 3);
}

Test(ollama, key_optional_but_sent_when_configured)
{
    struct sl_config_provider pv = test_provider("p", NULL);
    pv.base_url = (char *)"https://ollama.com";
    struct sl_chat_req *r = req_new();
    json_error_t e;
    json_t *msgs = json_loads(
        "[{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Rule.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what is \"},{\"type\":"
        "\"text\",\"text\":\"this?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/png;base64,QUJD\"}}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"function\":"
        "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"2\"}]",
        0, &e);
    cr_assert(msgs, "%s", e.text);
    json_array_extend(r->messages, msgs);
    json_decref(msgs);
    r->stop = json_string("END");
    struct sl_call_params p = {.req = r, .provider = &pv, .upstream_model = "llama", .max_tokens = -1};
    struct sl_httpreq req = {0};
    json_t *body = build_body(&sl_wire_ollama, &p, &req);
    cr_assert_null(sl_httpreq_find(&req, "Authorization"), "no key: no header, no failure");
    json_t *want = json_loads(
        "[{\"role\":\"system\",\"content\":\"Rule.\"},"
        "{\"role\":\"user\",\"content\":\"what is this?\",\"images\":[\"QUJD\"]},"
        "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\","
        "\"arguments\":{\"a\":1}}}]},"
        "{\"role\":\"tool\",\"content\":\"2\"}]",
        0, &e);
    char *got = json_dumps(json_object_get(body, "messages"), JSON_SORT_KEYS);
    cr_assert(json_equal(json_object_get(body, "messages"), want), "%s", got);
    free(got);
    json_decref(want);
    cr_assert_str_eq(
        json_string_value(json_array_get(json_object_get(json_object_get(body, "options"), "stop"),
                                         0)),
        "END");
    json_decref(body);
    sl_httpreq_cleanup(&req);

    pv.api_key = (char *)H_KEY;
    body = build_body(&sl_wire_ollama, &p, &req);
    cr_assert_str_eq(sl_httpreq_find(&req, "Authorization"), "Bearer " H_KEY);
    json_decref(body);
    sl_httpreq_cleanup(&req);
    sl_chat_req_free(r);
}

Test(ollama, tool_calls_omitted_counts_and_no_final_newline)
{
    struct rec r;
    run_text(&sl_wire_ollama, "HTTP/1.1 200 OK\r\n", NULL,
             "{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":"
             "{\"name\":\"f\",\"arguments\":{\"a\":1}}}]},\"done\":false}\n"
             "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done_reason\":\"stop\","
             "\"done\":true,\"eval_count\":4}",
             &r);
    cr_assert(r.done, "%s", r.message);
    cr_assert_eq(r.finish, SL_FINISH_TOOL_CALLS);
    cr_assert_str_eq(sl_buf_cstr(&r.tools[0].name), "f");
    cr_assert_str_eq(sl_buf_cstr(&r.tools[0].args), "{\"a\":1}");
    cr_assert(r.have_usage);
    cr_assert_eq(r.usage.input_tokens, 0, "an omitted prompt_eval_count is zero");
    cr_assert_eq(r.usage.output_tokens, 4);
    rec_free(&r);

    /* no counts at all: no usage (the stream estimates) */
    run_text(&sl_wire_ollama, "HTTP/1.1 200 OK\r\n", NULL,
             "{\"message\":{\"content\":\"hi\"},\"done\":false}\n"
             "{\"message\":{\"content\":\"\"},\"done_reason\":\"length\",\"done\":true}\n",
             &r);
    cr_assert(r.done);
    cr_assert_eq(r.finish, SL_FINISH_LENGTH);
    cr_assert(!r.have_usage);
    rec_free(&r);

    /* lines without done:true then EOF: truncated */
    run_text(&sl_wire_ollama, "HTTP/1.1 200 OK\r\n", NULL,
             "{\"message\":{\"content\":\"hi\"},\"done\":false}\n{\"message\":{\"con", &r);
    cr_assert(!r.done);
    cr_assert(strstr(r.message, "truncated"), "%s", r.message);
    cr_assert(r.retryable);
    rec_free(&r);
}
