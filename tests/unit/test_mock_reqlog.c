/* Unit tests for the mock upstream's bounded request log behind /_mock/log and /_mock/wait. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../bench/mock/reqlog.c"
#include "../../bench/mock/request.c"

static struct mock_req
req(const char *body)
{
    struct mock_req r;
    memset(&r, 0, sizeof(r));
    r.method = SL_SLICE("POST");
    r.path = SL_SLICE("/v1/chat/completions");
    r.query = SL_SLICE("a=1");
    r.headers[0] = (struct mock_header){SL_SLICE("authorization"), SL_SLICE("Bearer k")};
    r.headers[1] = (struct mock_header){SL_SLICE("x-dup"), SL_SLICE("one")};
    r.headers[2] = (struct mock_header){SL_SLICE("x-dup"), SL_SLICE("t\"wo")};
    r.nheaders = 3;
    r.body = sl_slice_make(body, strlen(body));
    return r;
}

static json_t *
render_log(struct mock_log *log, uint64_t since)
{
    struct sl_buf b = SL_BUF_INIT;
    mock_log_render(log, since, &b);
    json_error_t jerr;
    json_t *j = json_loads(sl_buf_cstr(&b), 0, &jerr);
    cr_assert_not_null(j, "%s: %s", jerr.text, sl_buf_cstr(&b));
    sl_buf_free(&b);
    return j;
}

Test(mock_reqlog, entries_render_as_json)
{
    struct mock_log log;
    mock_log_init(&log, 4);
    struct mock_req r = req("{\"model\":\"synth\",\"n\":[1,2]}");
    struct mock_entry *owner = NULL;
    struct mock_entry *e = mock_log_add(&log, &r, true, "synth", 5, &owner);
    cr_assert_eq(owner, e);
    e->status = 200;
    e->tokens_sent = 7;
    struct mock_req r2 = req("not json");
    mock_log_add(&log, &r2, false, NULL, 0, NULL);

    json_t *a = render_log(&log, 0);
    cr_assert_eq(json_array_size(a), 2);
    json_t *j = json_array_get(a, 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "id")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "path")), "/v1/chat/completions");
    cr_assert_str_eq(json_string_value(json_object_get(j, "query")), "a=1");
    json_t *h = json_object_get(j, "headers");
    cr_assert_str_eq(json_string_value(json_object_get(h, "authorization")), "Bearer k");
    cr_assert_str_eq(json_string_value(json_object_get(h, "x-dup")), "one, t\"wo");
    cr_assert_eq(
        json_integer_value(json_array_get(json_object_get(json_object_get(j, "body"), "n"), 1)), 2);
    cr_assert_str_eq(json_string_value(json_object_get(j, "scenario")), "synth");
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "streaming");
    cr_assert_eq(json_integer_value(json_object_get(j, "tokens_sent")), 7);
    cr_assert(json_is_null(json_object_get(j, "ended_ms")));
    cr_assert_gt(json_integer_value(json_object_get(j, "started_ms")), 1700000000000LL);
    j = json_array_get(a, 1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "body")), "not json");
    cr_assert(json_is_null(json_object_get(j, "scenario")));
    json_decref(a);

    a = render_log(&log, 1);
    cr_assert_eq(json_array_size(a), 1, "since= skips older entries");
    json_decref(a);
    mock_log_cleanup(&log);
    cr_assert_null(owner, "freeing an entry clears its owner");
}

Test(mock_reqlog, ring_evicts_the_oldest_and_clears_its_owner)
{
    struct mock_log log;
    mock_log_init(&log, 2);
    struct mock_req r = req("{}");
    struct mock_entry *o1 = NULL, *o2 = NULL, *o3 = NULL;
    mock_log_add(&log, &r, true, NULL, 0, &o1);
    mock_log_add(&log, &r, true, NULL, 0, &o2);
    mock_log_add(&log, &r, true, NULL, 0, &o3);
    cr_assert_null(o1);
    cr_assert_not_null(o2);
    cr_assert_eq(o3->id, 3);
    cr_assert_eq(log.count, 2);
    json_t *a = render_log(&log, 0);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(a, 0), "id")), 2);
    json_decref(a);
    mock_log_clear(&log);
    cr_assert_null(o2);
    cr_assert_null(o3);
    mock_log_add(&log, &r, true, NULL, 0, &o1);
    cr_assert_eq(o1->id, 4, "ids keep counting after a reset");
    mock_log_cleanup(&log);
}

Test(mock_reqlog, large_bodies_are_counted_not_stored)
{
    struct mock_log log;
    mock_log_init(&log, 2);
    size_t n = MOCK_LOG_MAX_BODY + 1;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    struct mock_req r = req(big);
    struct mock_entry *e = mock_log_add(&log, &r, false, NULL, 0, NULL);
    cr_assert_null(e->body);
    cr_assert_eq(e->body_len, n);
    cr_assert_not(mock_entry_matches(e, "aaa", -3));
    json_t *a = render_log(&log, 0);
    cr_assert(json_is_null(json_object_get(json_array_get(a, 0), "body")));
    json_decref(a);
    free(big);
    mock_log_cleanup(&log);
}

Test(mock_reqlog, matching_by_body_and_state)
{
    struct mock_log log;
    mock_log_init(&log, 8);
    struct mock_req r1 = req("{\"m\":\"cancel-me\"}");
    struct mock_req r2 = req("{\"m\":\"other\"}");
    struct mock_entry *a = mock_log_add(&log, &r1, true, NULL, 0, NULL);
    struct mock_entry *b = mock_log_add(&log, &r2, true, NULL, 0, NULL);
    cr_assert_eq(mock_log_find(&log, "cancel-me", mock_state_parse("streaming")), a);
    cr_assert_null(mock_log_find(&log, "cancel-me", mock_state_parse("aborted")));
    cr_assert_null(mock_log_find(&log, "cancel-me", mock_state_parse("ended")));
    a->state = MOCK_ABORTED;
    cr_assert_eq(mock_log_find(&log, "cancel-me", mock_state_parse("aborted")), a);
    cr_assert_eq(mock_log_find(&log, "cancel-me", mock_state_parse("ended")), a);
    cr_assert_eq(mock_log_find(&log, NULL, mock_state_parse("any")), b, "newest first");
    cr_assert_eq(mock_log_find(&log, "", -3), b);
    cr_assert_null(mock_log_find(&log, "absent", -3));
    cr_assert_eq(mock_state_parse("bogus"), -1);
    cr_assert_eq(mock_state_parse("complete"), MOCK_COMPLETE);
    mock_log_cleanup(&log);
}

Test(mock_reqlog, counts_requests_by_exact_scenario)
{
    struct mock_log log;
    mock_log_init(&log, 8);
    struct mock_req r = req("{}");
    const char *a = "synth:status=503,fail_first=1";
    mock_log_add(&log, &r, true, a, strlen(a), NULL);
    mock_log_add(&log, &r, true, "synth", 5, NULL);
    mock_log_add(&log, &r, true, NULL, 0, NULL);
    cr_assert_eq(mock_log_count_scenario(&log, a, strlen(a)), 1);
    /* a prefix is another scenario */
    cr_assert_eq(mock_log_count_scenario(&log, a, 5), 1);
    mock_log_add(&log, &r, true, a, strlen(a), NULL);
    cr_assert_eq(mock_log_count_scenario(&log, a, strlen(a)), 2);
    mock_log_clear(&log);
    cr_assert_eq(mock_log_count_scenario(&log, a, strlen(a)), 0);
    mock_log_cleanup(&log);
}
