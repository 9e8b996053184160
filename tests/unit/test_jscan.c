/*
 * Unit tests for src/upstream/jscan: the API on hand-written documents, the cases it must
 * refuse (left to jansson), and the differential property of tests/fuzz/jscan_diff.h over
 * every JSON payload of the fixtures and many mutations of them.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "../fuzz/jscan_diff.h"
#include "upstream/jscan.h"
#include "wire_harness.h"

Test(jscan, reads_an_openai_chunk)
{
    const char *in = " {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\\"b\\u00e9\\ud83c\\udf89\"},"
                     "\"finish_reason\":null}],\"usage\":{\"prompt_tokens\":12,\"n\":-1.5e3},"
                     "\"ok\":true,\"no\":false,\"e\":[],\"o\":{}} \n";
    struct sl_buf scratch = SL_BUF_INIT;
    struct sl_jscan s;
    struct sl_slice key, text = {0};
    int64_t pin = 0;
    sl_jscan_init(&s, in, strlen(in), &scratch);
    cr_assert(sl_jscan_object(&s));
    int keys = 0;
    while (sl_jscan_key(&s, &key)) {
        keys++;
        if (SL_JSCAN_IS(key, "choices")) {
            cr_assert(sl_jscan_array(&s));
            cr_assert(sl_jscan_next(&s));
            cr_assert(sl_jscan_object(&s));
            while (sl_jscan_key(&s, &key)) {
                if (SL_JSCAN_IS(key, "delta")) {
                    cr_assert(sl_jscan_object(&s));
                    cr_assert(sl_jscan_key(&s, &key));
                    cr_assert(SL_JSCAN_IS(key, "content"));
                    cr_assert(sl_jscan_string(&s, &text));
                    cr_assert(!sl_jscan_key(&s, &key));
                } else if (SL_JSCAN_IS(key, "finish_reason")) {
                    cr_assert(sl_jscan_null(&s));
                } else {
                    cr_assert(sl_jscan_skip(&s));
                }
            }
            cr_assert(!sl_jscan_next(&s));
        } else if (SL_JSCAN_IS(key, "usage")) {
            cr_assert(sl_jscan_object(&s));
            cr_assert(sl_jscan_key(&s, &key));
            cr_assert(sl_jscan_int(&s, &pin));
            cr_assert(sl_jscan_key(&s, &key));
            cr_assert(sl_jscan_skip(&s));
            cr_assert(!sl_jscan_key(&s, &key));
        } else {
            cr_assert(sl_jscan_skip(&s));
        }
    }
    cr_assert(sl_jscan_done(&s));
    cr_assert_eq(keys, 7);
    cr_assert_eq(pin, 12);
    cr_assert_eq(text.len, strlen("a\"b\xc3\xa9\xf0\x9f\x8e\x89"));
    cr_assert(memcmp(text.ptr, "a\"b\xc3\xa9\xf0\x9f\x8e\x89", text.len) == 0);
    sl_buf_free(&scratch);
}

Test(jscan, plain_strings_are_not_copied)
{
    const char *in = "{\"k\":\"plain text\"}";
    struct sl_buf scratch = SL_BUF_INIT;
    struct sl_jscan s;
    struct sl_slice key, v;
    sl_jscan_init(&s, in, strlen(in), &scratch);
    cr_assert(sl_jscan_object(&s) && sl_jscan_key(&s, &key) && sl_jscan_string(&s, &v));
    cr_assert(v.ptr == in + 6, "a slice of the input");
    cr_assert(!sl_jscan_key(&s, &key) && sl_jscan_done(&s));
    sl_buf_free(&scratch);
}

/* Each must be refused: invalid JSON, or valid but left to jansson. */
static const char *const refused[] = {
    "", "   ", "{", "}", "[", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{,\"a\":1}", "[1,]", "[,1]",
    "{\"a\":1}{", "{\"a\":1} x", "\"top\"", "12", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}",
    "{\"a\":-}", "{\"a\":1e}", "{\"a\":1e+}", "{\"a\":1e100}", "{\"a\":1234567890123456789}",
    "{\"a\":tru}", "{\"a\":nul}", "{\"a\":True}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
    "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}", "{\"a\":\"\\ud800\\u0041\"}",
    "{\"a\":\"tab\there\"}", "{\"a\":\"\xff\"}", "{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}",
    "{\"\\u0061\":1}", "{\"a\" 1}", "{'a':1}", "{\"a\":1 \"b\":2}", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
};

Test(jscan, refuses_what_it_should)
{
    struct sl_buf scratch = SL_BUF_INIT;
    for (size_t i = 0; i < SL_ARRAY_LEN(refused); i++) {
        bool jansson_ok;
        enum jd_result r = jd_compare(refused[i], strlen(refused[i]), &scratch, &jansson_ok);
        cr_assert_eq(r, JD_REFUSED, "accepted: %s", refused[i]);
    }
    /* a NUL byte outside a string */
    bool j;
    cr_assert_eq(jd_compare("{\"a\":1}\0", 8, &scratch, &j), JD_REFUSED);
    sl_buf_free(&scratch);
}

static const char *const accepted[] = {
    "{}", "[]", " [ ] ", "{\"a\":[1,-2,3.5,-0,0.25e-3,1E+2,true,false,null,\"\",{}]}",
    "{\"\":\"\"}", "{\"a\":\"\\u0000x\"}", "{\"a\":\"\\/\\b\\f\\n\\r\\t\\\\\"}",
    "{\"\xc3\xa9\":\"\xe2\x98\x95\xf0\x9f\x8e\x89\"}", "[[[[[[[[[[1]]]]]]]]]]",
    "{\"a\":123456789012345678}", "{\"a\":-123456789012345678,\"b\":1e99}",
};

Test(jscan, accepts_and_agrees_with_jansson)
{
    struct sl_buf scratch = SL_BUF_INIT;
    for (size_t i = 0; i < SL_ARRAY_LEN(accepted); i++) {
        bool jansson_ok;
        enum jd_result r = jd_compare(accepted[i], strlen(accepted[i]), &scratch, &jansson_ok);
        cr_assert_eq(r, JD_SAME, "%s: %d (jansson %d)", accepted[i], r, jansson_ok);
    }
    sl_buf_free(&scratch);
}

/* Every JSON payload of every fixture (the events files hold them). */
static void
each_payload(void (*fn)(const char *p, size_t n, void *ud), void *ud)
{
    json_t *idx = load_index();
    size_t i;
    json_t *entry;
    json_array_foreach(json_object_get(idx, "fixtures"), i, entry)
    {
        const char *ev = json_string_value(json_object_get(entry, "events"));
        if (ev == NULL)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), ev);
        json_t *file = json_load_file(path, 0, NULL);
        cr_assert(file, "%s", path);
        json_t *events = json_object_get(file, "events");
        if (events == NULL)
            events = json_object_get(file, "lines");
        size_t k;
        json_t *e;
        json_array_foreach(events, k, e)
        {
            /* SSE events: {event, data}; NDJSON lines: the parsed object itself */
            const char *data = json_string_value(json_object_get(e, "data"));
            if (data) {
                fn(data, strlen(data), ud);
            } else {
                char *text = json_dumps(e, JSON_COMPACT);
                fn(text, strlen(text), ud);
                free(text);
            }
        }
        json_decref(file);
    }
    json_decref(idx);
}

struct diff_stats {
    struct sl_buf scratch;
    unsigned payloads, same, refused, jansson_ok;
    uint32_t rng;
    unsigned mutants, mutants_same;
};

static void
check_payload(const char *p, size_t n, void *ud)
{
    struct diff_stats *st = ud;
    bool jansson_ok;
    char *copy = sl_malloc(n ? n : 1);
    memcpy(copy, p, n);
    enum jd_result r = jd_compare(copy, n, &st->scratch, &jansson_ok);
    cr_assert_neq(r, JD_DIFFERENT, "differs: %.*s", (int)n, p);
    st->payloads++;
    st->same += r == JD_SAME;
    st->jansson_ok += jansson_ok;
    /* mutants: flip, insert or delete bytes at random places */
    for (int m = 0; m < 200 && n > 0; m++) {
        size_t len = n + 4;
        char *mut = sl_malloc(len);
        memcpy(mut, p, n);
        len = n;
        int edits = 1 + (int)(h_rand(&st->rng) % 3);
        for (int e = 0; e < edits; e++) {
            static const char alphabet[] = "{}[]\":,\\u0-9eE.+- \tntf\xc3\xa9\xff";
            size_t at = h_rand(&st->rng) % len;
            char c = alphabet[h_rand(&st->rng) % (sizeof(alphabet) - 1)];
            switch (h_rand(&st->rng) % 3) {
            case 0:
                mut[at] = c;
                break;
            case 1:
                if (len < n + 4) {
                    memmove(mut + at + 1, mut + at, len - at);
                    mut[at] = c;
                    len++;
                }
                break;
            default:
                if (len > 1) {
                    memmove(mut + at, mut + at + 1, len - at - 1);
                    len--;
                }
            }
        }
        char *exact = sl_malloc(len);
        memcpy(exact, mut, len);
        r = jd_compare(exact, len, &st->scratch, &jansson_ok);
        cr_assert_neq(r, JD_DIFFERENT, "mutant differs: %.*s", (int)len, exact);
        st->mutants++;
        st->mutants_same += r == JD_SAME;
        free(exact);
        free(mut);
    }
    free(copy);
}

Test(jscan, differential_over_fixture_payloads_and_mutants)
{
    struct diff_stats st;
    memset(&st, 0, sizeof(st));
    st.rng = 0x9e3779b9;
    each_payload(check_payload, &st);
    sl_buf_free(&st.scratch);
    cr_assert(st.payloads > 100, "%u payloads", st.payloads);
    /* every payload jansson reads, the scanner reads too (none is unusual) */
    cr_assert_eq(st.same, st.jansson_ok, "%u same, %u valid", st.same, st.jansson_ok);
    cr_assert(st.mutants_same > st.mutants / 20, "%u of %u mutants accepted", st.mutants_same,
              st.mutants);
}
