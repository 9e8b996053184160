/*
 * Unit tests for src/upstream/sse: every SSE fixture of ../shared/upstream-fixtures in many
 * splits, then the WHATWG edge cases one by one, each fed in every split of its input.
 *
 * What the parser reported is written to a text log, one entry per callback:
 *   E|<event type>|<data>|<id>    C|<comment text>    I|<field name>|<value>
 * with '\\', '|' and control bytes escaped (\n, \r, \0, \xHH), so that a whole run compares
 * as one string and a failure shows the difference readably.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "upstream/sse.h"

#include "parser_fixtures.h"

#define BIG_CAP ((size_t)1 << 20)

/* ---- recording ------------------------------------------------------------------------ */

struct rec {
    struct sl_buf all;      /* every callback, in order */
    struct sl_buf events;   /* E entries only */
    struct sl_buf comments; /* C entries only */
    struct sl_buf ignored;  /* I|name, each name once, first-seen order */
    int stop_after;         /* return stop_rc from the stop_after-th callback (0: never) */
    int stop_rc;
    int calls;
    const char *input; /* when set: the input fed whole, to check zero-copy dispatch */
    size_t input_len;
    int borrowed_events; /* events whose data pointed into input */
};

static void
esc(struct sl_buf *b, struct sl_slice s)
{
    for (size_t i = 0; i < s.len; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\\' || c == '|') {
            sl_buf_append_byte(b, '\\');
            sl_buf_append_byte(b, (char)c);
        } else if (c == '\n') {
            sl_buf_append_str(b, "\\n");
        } else if (c == '\r') {
            sl_buf_append_str(b, "\\r");
        } else if (c == 0) {
            sl_buf_append_str(b, "\\0");
        } else if (c < 0x20 || c == 0x7f) {
            sl_buf_printf(b, "\\x%02x", c);
        } else {
            sl_buf_append_byte(b, (char)c);
        }
    }
}

static int
next_rc(struct rec *r)
{
    r->calls++;
    return r->stop_after != 0 && r->calls == r->stop_after ? r->stop_rc : 0;
}

static int
on_event(void *ud, struct sl_slice event, struct sl_slice data, struct sl_slice id)
{
    struct rec *r = ud;
    cr_assert_not_null(event.ptr);
    cr_assert_not_null(data.ptr);
    cr_assert_not_null(id.ptr);
    struct sl_buf *dst[2] = {&r->all, &r->events};
    for (int i = 0; i < 2; i++) {
        sl_buf_append_str(dst[i], "E|");
        esc(dst[i], event);
        sl_buf_append_byte(dst[i], '|');
        esc(dst[i], data);
        sl_buf_append_byte(dst[i], '|');
        esc(dst[i], id);
        sl_buf_append_byte(dst[i], '\n');
    }
    if (r->input != NULL && data.len > 0 && data.ptr >= r->input &&
        data.ptr + data.len <= r->input + r->input_len)
        r->borrowed_events++;
    return next_rc(r);
}

static int
on_comment(void *ud, struct sl_slice text)
{
    struct rec *r = ud;
    struct sl_buf *dst[2] = {&r->all, &r->comments};
    for (int i = 0; i < 2; i++) {
        sl_buf_append_str(dst[i], "C|");
        esc(dst[i], text);
        sl_buf_append_byte(dst[i], '\n');
    }
    return next_rc(r);
}

/* Whether the log b holds the line entry (a whole line, entry ends in '\n'). */
static bool
has_line(const struct sl_buf *b, const char *entry, size_t n)
{
    const char *s = sl_buf_ptr(b);
    size_t len = sl_buf_len(b);
    for (size_t at = 0; at + n <= len;) {
        if (memcmp(s + at, entry, n) == 0)
            return true;
        const char *nl = memchr(s + at, '\n', len - at);
        if (nl == NULL)
            break;
        at = (size_t)(nl - s) + 1;
    }
    return false;
}

static int
on_ignored(void *ud, struct sl_slice name, struct sl_slice value)
{
    struct rec *r = ud;
    sl_buf_append_str(&r->all, "I|");
    esc(&r->all, name);
    sl_buf_append_byte(&r->all, '|');
    esc(&r->all, value);
    sl_buf_append_byte(&r->all, '\n');

    struct sl_buf e = SL_BUF_INIT;
    sl_buf_append_str(&e, "I|");
    esc(&e, name);
    sl_buf_append_byte(&e, '\n');
    if (!has_line(&r->ignored, sl_buf_ptr(&e), sl_buf_len(&e)))
        sl_buf_append(&r->ignored, sl_buf_ptr(&e), sl_buf_len(&e));
    sl_buf_free(&e);
    return next_rc(r);
}

static const struct sl_sse_callbacks all_callbacks = {
    .on_event = on_event,
    .on_comment = on_comment,
    .on_ignored_field = on_ignored,
};

static void
rec_free(struct rec *r)
{
    sl_buf_free(&r->all);
    sl_buf_free(&r->events);
    sl_buf_free(&r->comments);
    sl_buf_free(&r->ignored);
}

/* ---- feeding -------------------------------------------------------------------------- */

/*
 * Feeds a private copy of the chunk and scribbles over it afterwards (copy: the chunk was
 * not fed whole from r->input), so that a parser still pointing into an earlier feed's bytes
 * reads garbage or, after the free, trips AddressSanitizer.
 */
static int
feed_copy(struct sl_sse *p, bool copy, const char *chunk, size_t n)
{
    if (!copy || n == 0)
        return sl_sse_feed(p, n ? chunk : NULL, n);
    char *tmp = malloc(n);
    memcpy(tmp, chunk, n);
    int rc = sl_sse_feed(p, tmp, n);
    memset(tmp, 0xA5, n);
    free(tmp);
    return rc;
}

struct run {
    int rc;     /* first non-zero feed result, or 0 */
    int finish; /* sl_sse_finish() */
};

/*
 * Feeds in[0..len) cut at the increasing offsets cuts[0..ncuts) (an offset may repeat: an
 * empty feed). After a stop, feeds the rest anyway to check that the parser stays silent.
 */
static struct run
feed_cuts(struct rec *r, const char *in, size_t len, const size_t *cuts, size_t ncuts, size_t max)
{
    struct sl_sse p;
    struct run res = {0, 0};
    size_t from = 0;
    sl_sse_init(&p, &all_callbacks, r, max);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        cr_assert(to >= from && to <= len);
        int rc = feed_copy(&p, r->input == NULL, in + from, to - from);
        if (res.rc == 0 && rc != 0) {
            res.rc = rc;
        } else if (res.rc != 0) {
            cr_assert_eq(rc, res.rc, "a stopped parser returns the same value");
        }
        from = to;
    }
    size_t logged = sl_buf_len(&r->all);
    res.finish = sl_sse_finish(&p);
    cr_assert_eq(sl_buf_len(&r->all), logged, "finish calls no callback");
    cr_assert_eq(sl_sse_feed(&p, "data: x\n\n", 9), res.rc ? res.rc : SL_SSE_ERR_STOPPED);
    cr_assert_eq(sl_buf_len(&r->all), logged, "no callback after finish");
    sl_sse_cleanup(&p);
    return res;
}

static struct run
feed_whole(struct rec *r, const char *in, size_t len, size_t max)
{
    return feed_cuts(r, in, len, NULL, 0, max);
}

ParameterizedTestParameters(sse, fixture)
{
    return fixture_params(".sse");
}

static void
expect_str(struct sl_buf *want, const char *s, size_t n)
{
    esc(want, sl_slice_make(s, n));
}

/* The expected logs of an .events.json file. */
static void
expected_logs(json_t *ev, struct rec *want)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(ev, "events"), i, e)
    {
        json_t *type = json_object_get(e, "event");
        json_t *data = json_object_get(e, "data");
        json_t *id = json_object_get(e, "id");
        cr_assert(json_is_string(data));
        sl_buf_append_str(&want->events, "E|");
        if (json_is_string(type))
            expect_str(&want->events, json_string_value(type), json_string_length(type));
        sl_buf_append_byte(&want->events, '|');
        expect_str(&want->events, json_string_value(data), json_string_length(data));
        sl_buf_append_byte(&want->events, '|');
        if (json_is_string(id))
            expect_str(&want->events, json_string_value(id), json_string_length(id));
        sl_buf_append_byte(&want->events, '\n');
    }
    json_array_foreach(json_object_get(ev, "comments"), i, e)
    {
        sl_buf_append_str(&want->comments, "C|");
        expect_str(&want->comments, json_string_value(e), json_string_length(e));
        sl_buf_append_byte(&want->comments, '\n');
    }
    json_array_foreach(json_object_get(ev, "ignored_fields"), i, e)
    {
        sl_buf_append_str(&want->ignored, "I|");
        expect_str(&want->ignored, json_string_value(e), json_string_length(e));
        sl_buf_append_byte(&want->ignored, '\n');
    }
}

static void
compare(const struct fixture *fx, const char *mode, struct rec *want, int want_finish,
        struct rec *got, struct run res)
{
    cr_assert_eq(res.rc, 0, "%s (%s): feed returned %d (%s)", fx->id, mode, res.rc,
                 sl_sse_strerror(res.rc));
    cr_assert_str_eq(sl_buf_cstr(&got->events), sl_buf_cstr(&want->events), "%s (%s): events",
                     fx->id, mode);
    cr_assert_str_eq(sl_buf_cstr(&got->comments), sl_buf_cstr(&want->comments), "%s (%s): comments",
                     fx->id, mode);
    cr_assert_str_eq(sl_buf_cstr(&got->ignored), sl_buf_cstr(&want->ignored),
                     "%s (%s): ignored fields", fx->id, mode);
    cr_assert_eq(res.finish, want_finish, "%s (%s): finish %d, want %d", fx->id, mode, res.finish,
                 want_finish);
}

ParameterizedTest(struct fixture *fx, sse, fixture)
{
    size_t len;
    char *body = read_fixture(fx->body, &len);
    json_t *ev = load_json(fx->events);
    json_t *meta = load_json(fx->meta);
    struct rec want = {0};
    struct rec got = {0};
    size_t *cuts = malloc((len + 1) * 2 * sizeof(*cuts));
    struct run res;

    cr_assert_str_eq(json_string_value(json_object_get(ev, "format")), "sse");
    expected_logs(ev, &want);
    int want_finish = json_is_true(json_object_get(ev, "incomplete_event_at_eof")) ? 1 : 0;
    cr_assert(json_array_size(json_object_get(ev, "events")) > 0, "%s: no events", fx->id);

    got = (struct rec){.input = body, .input_len = len};
    res = feed_whole(&got, body, len, BIG_CAP);
    compare(fx, "whole", &want, want_finish, &got, res);
    /* Events that arrive whole are dispatched from the caller's buffer, without a copy
     * (multi-line data has to be joined, so it is the one exception). */
    if (strstr(fx->id, "multiline") == NULL)
        cr_assert_eq(got.borrowed_events, (int)json_array_size(json_object_get(ev, "events")),
                     "%s: %d of the events were copied", fx->id,
                     (int)json_array_size(json_object_get(ev, "events")) - got.borrowed_events);
    rec_free(&got);

    for (size_t i = 1; i < len; i++)
        cuts[i - 1] = i;
    got = (struct rec){0};
    res = feed_cuts(&got, body, len, cuts, len ? len - 1 : 0, BIG_CAP);
    compare(fx, "byte by byte", &want, want_finish, &got, res);
    rec_free(&got);

    json_t *bounds = json_object_get(json_object_get(meta, "delivery"), "chunk_boundaries");
    if (bounds != NULL) {
        size_t i, n = 0;
        json_t *b;
        json_array_foreach(bounds, i, b)
        {
            cuts[n++] = (size_t)json_integer_value(b);
        }
        got = (struct rec){0};
        res = feed_cuts(&got, body, len, cuts, n, BIG_CAP);
        compare(fx, "chunk_boundaries", &want, want_finish, &got, res);
        rec_free(&got);
    }

    for (int run = 0; run < 200; run++) {
        uint64_t seed = fnv1a(fx->id) ^ (uint64_t)(run + 1) * 0x9E3779B97F4A7C15ull;
        char mode[64];
        snprintf(mode, sizeof(mode), "random split, run %d", run);
        size_t n = random_cuts(&seed, len, cuts);
        got = (struct rec){0};
        res = feed_cuts(&got, body, len, cuts, n, BIG_CAP);
        compare(fx, mode, &want, want_finish, &got, res);
        rec_free(&got);
    }

    free(cuts);
    rec_free(&want);
    json_decref(ev);
    json_decref(meta);
    free(body);
}

/* Guards the parameterized test above against passing vacuously when no fixture is found. */
Test(sse, fixtures_present)
{
    json_t *index = load_json("index.json");
    size_t want = 0, i;
    json_t *e;
    json_array_foreach(json_object_get(index, "fixtures"), i, e)
    {
        const char *body = json_string_value(json_object_get(e, "body"));
        if (json_object_get(e, "events") != NULL && strstr(body, ".sse") != NULL)
            want++;
    }
    json_decref(index);
    cr_assert_geq(want, 10, "expected at least 10 SSE fixtures, found %zu", want);
    cr_assert_eq(list_fixtures(NULL, 0, ".sse"), want);
}

/* ---- synthetic cases ------------------------------------------------------------------ */

/*
 * Feeds in whole, byte by byte, and cut at every one and every pair of offsets, and checks
 * that each run logs exactly want (the interleaved log), returns want_rc from the feeds and
 * want_finish from sl_sse_finish().
 */
static void
check_splits_cap(const char *in, size_t len, size_t max, const char *want, int want_rc,
                 int want_finish)
{
    size_t cuts[2];
    struct rec got = {0};
    struct run res = feed_whole(&got, in, len, max);
    cr_assert_str_eq(sl_buf_cstr(&got.all), want, "whole: got\n%s\nwant\n%s", sl_buf_cstr(&got.all),
                     want);
    cr_assert_eq(res.rc, want_rc, "whole: rc %d on %.*s", res.rc, (int)len, in);
    cr_assert_eq(res.finish, want_finish, "whole: finish %d", res.finish);
    rec_free(&got);

    size_t *bytes = malloc((len + 1) * sizeof(*bytes));
    for (size_t i = 1; i < len; i++)
        bytes[i - 1] = i;
    got = (struct rec){0};
    res = feed_cuts(&got, in, len, bytes, len ? len - 1 : 0, max);
    cr_assert_str_eq(sl_buf_cstr(&got.all), want, "byte by byte");
    cr_assert_eq(res.rc, want_rc, "byte by byte: rc %d", res.rc);
    cr_assert_eq(res.finish, want_finish, "byte by byte: finish %d", res.finish);
    rec_free(&got);
    free(bytes);

    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            cuts[0] = i;
            cuts[1] = j;
            got = (struct rec){0};
            res = feed_cuts(&got, in, len, cuts, 2, max);
            cr_assert_str_eq(sl_buf_cstr(&got.all), want, "cut at %zu and %zu", i, j);
            cr_assert_eq(res.rc, want_rc, "cut at %zu and %zu: rc %d", i, j, res.rc);
            cr_assert_eq(res.finish, want_finish, "cut at %zu and %zu: finish", i, j);
            rec_free(&got);
        }
    }
}

static void
check_splits(const char *in, size_t len, const char *want, int want_finish)
{
    check_splits_cap(in, len, BIG_CAP, want, 0, want_finish);
}

#define CHECK(lit, want, fin) check_splits((lit), sizeof(lit) - 1, (want), (fin))

Test(sse, lf_crlf_and_cr_line_endings)
{
    CHECK("data: a\n\n", "E||a|\n", 0);
    CHECK("data: a\r\n\r\n", "E||a|\n", 0);
    CHECK("data: a\r\ndata: b\r\n\r\n", "E||a\\nb|\n", 0); /* CRLF is one line end */
    CHECK("data: a\r\r", "E||a|\n", 0);
    CHECK("data: a\rdata: b\r\rdata: c\r\r", "E||a\\nb|\nE||c|\n", 0);
    /* mixed in one event, and CR LF CR as "line end + blank line" */
    CHECK("data: a\rdata: b\ndata: c\r\n\n", "E||a\\nb\\nc|\n", 0);
    CHECK("data: a\r\n\rdata: b\n\n", "E||a|\nE||b|\n", 0);
    /* LF CR is two line ends: the CR is a blank line */
    CHECK("data: a\n\rdata: b\n\n", "E||a|\nE||b|\n", 0);
}

Test(sse, crlf_split_across_feeds_is_one_line_end)
{
    static const char *const chunks[] = {"data: a\r", "\ndata: b\r", "\n\r", "\n"};
    struct rec got = {0};
    struct sl_sse p;
    sl_sse_init(&p, &all_callbacks, &got, BIG_CAP);
    for (size_t i = 0; i < SL_ARRAY_LEN(chunks); i++)
        cr_assert_eq(sl_sse_feed(&p, chunks[i], strlen(chunks[i])), 0);
    /* Had the LF after each CR counted as a second line end, "a" would be an event alone. */
    cr_assert_str_eq(sl_buf_cstr(&got.all), "E||a\\nb|\n");
    cr_assert_eq(sl_sse_finish(&p), 0);
    sl_sse_cleanup(&p);
    rec_free(&got);

    /* An empty feed between the CR and the LF changes nothing. */
    got = (struct rec){0};
    sl_sse_init(&p, &all_callbacks, &got, BIG_CAP);
    cr_assert_eq(sl_sse_feed(&p, "data: a\r", 8), 0);
    cr_assert_eq(sl_sse_feed(&p, NULL, 0), 0);
    cr_assert_eq(sl_sse_feed(&p, "\ndata: b\r\n\r\n", 12), 0);
    cr_assert_str_eq(sl_buf_cstr(&got.all), "E||a\\nb|\n");
    sl_sse_cleanup(&p);
    rec_free(&got);
}

Test(sse, lone_cr_at_the_very_end_then_eof)
{
    struct rec got = {0};
    struct sl_sse p;
    sl_sse_init(&p, &all_callbacks, &got, BIG_CAP);
    cr_assert_eq(sl_sse_feed(&p, "data: x\r\r", 9), 0);
    /* A CR ends its line at once: the event must not wait for a possible LF. */
    cr_assert_str_eq(sl_buf_cstr(&got.all), "E||x|\n");
    cr_assert_eq(sl_sse_finish(&p), 0, "the stream ended cleanly");
    sl_sse_cleanup(&p);
    rec_free(&got);

    CHECK("data: x\r", "", 1);
    CHECK("data: x\n\r", "E||x|\n", 0);
}

Test(sse, bom_stripped_once)
{
    CHECK("\xEF\xBB\xBF"
          "data: a\n\n",
          "E||a|\n", 0);
    /* a second BOM belongs to the field name, so that line is an unknown field */
    CHECK("\xEF\xBB\xBF\xEF\xBB\xBF"
          "data: a\n\n",
          "I|\xEF\xBB\xBF"
          "data|a\n",
          0);
    /* a BOM later in the stream is data */
    CHECK("\xEF\xBB\xBF"
          "data: \xEF\xBB\xBF"
          "a\n\n",
          "E||\xEF\xBB\xBF"
          "a|\n",
          0);
    CHECK("data: a\n\n\xEF\xBB\xBF"
          "data: b\n\n",
          "E||a|\nI|\xEF\xBB\xBF"
          "data|b\n",
          0);
    /* a BOM prefix that does not complete is data too */
    CHECK("\xEF\xBB"
          "data: a\n\n",
          "I|\xEF\xBB"
          "data|a\n",
          0);
    CHECK("\xEF"
          "data: a\n\n",
          "I|\xEF"
          "data|a\n",
          0);
    CHECK("\xEF\n", "I|\xEF|\n", 1);
    CHECK("\xEF\xBB\xBF", "", 0);
    CHECK("\xEF\xBB", "", 1);
    CHECK("\xEF\xBB\xBF\r\n:c\n", "C|c\n", 0);
}

Test(sse, field_parsing)
{
    CHECK("data\n\n", "E|||\n", 0); /* no colon: a field with an empty value */
    CHECK("data\ndata\n\n", "E||\\n|\n", 0);
    CHECK("data:x\n\n", "E||x|\n", 0);            /* no space */
    CHECK("data:  x\n\n", "E|| x|\n", 0);         /* two spaces: one kept */
    CHECK("data:\tx\n\n", "E||\\x09x|\n", 0);     /* only a space is removed */
    CHECK("data: a:b: c\n\n", "E||a:b: c|\n", 0); /* the first colon splits */
    CHECK("data: x \n\n", "E||x |\n", 0);         /* trailing spaces are kept */
    CHECK("data : x\n\n", "I|data |x\n", 0);      /* names are exact */
    CHECK("Data: x\n\n", "I|Data|x\n", 0);
    CHECK("foo\n\n", "I|foo|\n", 0);
    CHECK("foo\n", "I|foo|\n", 1);
    CHECK("error: {\"code\": 1}\ndata: [DONE]\n\n", "I|error|{\"code\": 1}\nE||[DONE]|\n", 0);
}

Test(sse, multiple_data_lines_joined)
{
    CHECK("data: a\ndata:\ndata: b\n\n", "E||a\\n\\nb|\n", 0);
    CHECK("data: {\ndata:   \"k\": 1\ndata: }\n\n", "E||{\\n  \"k\": 1\\n}|\n", 0);
    /* comments and other fields between data lines do not break the event */
    CHECK("data: a\n: c\nfoo: x\ndata: b\n\n", "C|c\nI|foo|x\nE||a\\nb|\n", 0);
}

Test(sse, event_type)
{
    CHECK("event: add\ndata: 1\n\n", "E|add|1|\n", 0);
    CHECK("data: 1\nevent: add\n\n", "E|add|1|\n", 0); /* order within an event is free */
    CHECK("event: a\nevent: b\ndata: 1\n\n", "E|b|1|\n", 0);
    /* the type is reset after each dispatch */
    CHECK("event: add\ndata: 1\n\ndata: 2\n\n", "E|add|1|\nE||2|\n", 0);
}

Test(sse, event_without_data_not_dispatched)
{
    CHECK("event: foo\n\n", "", 0);
    CHECK("event: foo\n\n\n", "", 0);
    /* ...and its type does not leak into the next event */
    CHECK("event: foo\n\ndata: x\n\n", "E||x|\n", 0);
    CHECK("event: foo\nid: 3\nretry: 10\n\n", "", 0);
    CHECK("\n\n\n", "", 0);
}

Test(sse, retry_digits_only)
{
    static const struct {
        const char *in;
        int64_t want;
    } cases[] = {
        {"retry: 1500\n", 1500},
        {"retry:1500\n", 1500},
        {"retry: 15x\n", -1},
        {"retry: -5\n", -1},
        {"retry: 1.5\n", -1},
        {"retry:\n", -1},
        {"retry\n", -1},
        {"retry: 2000 \n", -1},
        {"retry:  2000\n", -1},
        {"retry: 0\n", 0},
        {"retry: 7\nretry: x\n", 7},
        {"retry: 7\nretry: 8\n", 8},
        {"retry: 99999999999999999999999\n", INT64_MAX},
        {"retry: 9223372036854775807\n", INT64_MAX},
        {"retry: 9223372036854775806\n", INT64_MAX - 1},
        {"retry: 9223372036854775808\n", INT64_MAX},
    };
    for (size_t i = 0; i < SL_ARRAY_LEN(cases); i++) {
        struct rec got = {0};
        struct sl_sse p;
        sl_sse_init(&p, &all_callbacks, &got, BIG_CAP);
        cr_assert_eq(sl_sse_retry_ms(&p), -1);
        cr_assert_eq(sl_sse_feed(&p, cases[i].in, strlen(cases[i].in)), 0);
        cr_assert_eq(sl_sse_retry_ms(&p), cases[i].want, "%s", cases[i].in);
        cr_assert_str_eq(sl_buf_cstr(&got.all), "", "retry is not an ignored field");
        sl_sse_cleanup(&p);
        rec_free(&got);
    }
}

Test(sse, id_recorded_persists_and_nul_ignored)
{
    CHECK("id: 7\ndata: a\n\n", "E||a|7\n", 0);
    /* the last event id persists across events */
    CHECK("id: 7\ndata: a\n\ndata: b\n\n", "E||a|7\nE||b|7\n", 0);
    /* an id containing NUL is ignored, the previous one stays */
    CHECK("id: 7\ndata: a\n\nid: 8\0x\ndata: b\n\n", "E||a|7\nE||b|7\n", 0);
    /* an empty id resets it */
    CHECK("id: 7\ndata: a\n\nid\ndata: b\n\n", "E||a|7\nE||b|\n", 0);
    /* the id of an event that is not dispatched still counts */
    CHECK("id: 9\n\ndata: b\n\n", "E||b|9\n", 0);
}

Test(sse, utf8_character_split_across_feeds)
{
    /* 2-, 3- and 4-byte characters; every split lands inside each of them somewhere */
    CHECK("data: h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\n\n",
          "E||h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80|\n", 0);
    /* bytes are passed through, even when they are not valid UTF-8 */
    CHECK("data: \xFF\xC3\n\n", "E||\xFF\xC3|\n", 0);
}

Test(sse, comments)
{
    CHECK(": ping\n", "C|ping\n", 0);
    CHECK(":\n:x\n:  two\n", "C|\nC|x\nC| two\n", 0);
    CHECK(": a\r\n: b\r: c\n", "C|a\nC|b\nC|c\n", 0);
    /* a comment is never data, whatever it says */
    CHECK(":data: x\n\n", "C|data: x\n", 0);
    /* an unterminated comment at EOF is an incomplete line */
    CHECK(": partial", "", 1);
}

Test(sse, done_is_just_data)
{
    CHECK("data: [DONE]\n\ndata: after\n\n", "E||[DONE]|\nE||after|\n", 0);
    CHECK("data: x data: [DONE]\n\n", "E||x data: [DONE]|\n", 0);
}

Test(sse, finish_reports_incomplete_event)
{
    CHECK("", "", 0);
    CHECK("data: a\n\n", "E||a|\n", 0);
    CHECK("data: a\n", "", 1); /* data without the blank line */
    CHECK("data: a", "", 1);   /* an unterminated line */
    CHECK("data: a\n\ndata", "E||a|\n", 1);
    CHECK("event: end\n", "", 1); /* fields without data: still a cut event */
    CHECK(": ka\n", "C|ka\n", 0); /* a complete comment is not an event */
    CHECK("data: a\n\n: ka\n", "E||a|\nC|ka\n", 0);
}

Test(sse, optional_callbacks_may_be_null)
{
    static const struct sl_sse_callbacks only_events = {.on_event = on_event};
    static const char in[] = ": c\nfoo: bar\ndata: x\n\n";
    struct rec got = {0};
    struct sl_sse p;
    sl_sse_init(&p, &only_events, &got, BIG_CAP);
    cr_assert_eq(sl_sse_feed(&p, in, sizeof(in) - 1), 0);
    cr_assert_str_eq(sl_buf_cstr(&got.all), "E||x|\n");
    cr_assert_eq(sl_sse_finish(&p), 0);
    sl_sse_cleanup(&p);
    rec_free(&got);
}

Test(sse, over_cap_is_an_error)
{
    /* a line of exactly the cap passes; one byte more fails, in every split */
    check_splits_cap("data: 12\n\n", 10, 8, "E||12|\n", 0, 0);
    check_splits_cap("data: 123\n\n", 11, 8, "", SL_SSE_ERR_LINE_TOO_LONG, SL_SSE_ERR_STOPPED);
    /* events before the long line are delivered */
    check_splits_cap("data: 1\n\ndata: 123\n\n", 20, 8, "E||1|\n", SL_SSE_ERR_LINE_TOO_LONG,
                     SL_SSE_ERR_STOPPED);
    /* an unterminated line over the cap fails without waiting for its end */
    check_splits_cap("data: 123456789", 15, 8, "", SL_SSE_ERR_LINE_TOO_LONG, SL_SSE_ERR_STOPPED);
    /* comments count too: a peer cannot grow the buffer with them */
    check_splits_cap(": 12345678", 10, 8, "", SL_SSE_ERR_LINE_TOO_LONG, SL_SSE_ERR_STOPPED);
    /* the joined data of one event: 4 + 1 + 4 fits in 9, 4 + 1 + 4 + 1 does not */
    check_splits_cap("data:1234\ndata:1234\n\n", 21, 9, "E||1234\\n1234|\n", 0, 0);
    check_splits_cap("data:1234\ndata:1234\ndata:\n\n", 27, 9, "", SL_SSE_ERR_EVENT_TOO_BIG,
                     SL_SSE_ERR_STOPPED);
    /* many small lines cannot add up past the cap either */
    check_splits_cap("data\ndata\ndata\ndata\ndata\n\n", 26, 4, "E||\\n\\n\\n\\n|\n", 0, 0);
    check_splits_cap("data\ndata\ndata\ndata\ndata\ndata\n\n", 31, 4, "", SL_SSE_ERR_EVENT_TOO_BIG,
                     SL_SSE_ERR_STOPPED);
    cr_assert_str_eq(sl_sse_strerror(SL_SSE_ERR_LINE_TOO_LONG), "SSE line longer than the limit");
}

Test(sse, cap_is_per_event_not_per_stream)
{
    struct sl_buf in = SL_BUF_INIT;
    for (int i = 0; i < 1000; i++)
        sl_buf_append_str(&in, "data: 0123456789\n\n");
    struct rec got = {0};
    struct run res = feed_whole(&got, sl_buf_ptr(&in), sl_buf_len(&in), 16);
    cr_assert_eq(res.rc, 0);
    cr_assert_eq(res.finish, 0);
    cr_assert_eq(sl_buf_len(&got.events), 1000 * strlen("E||0123456789|\n"));
    rec_free(&got);
    sl_buf_free(&in);
}

Test(sse, callback_nonzero_stops_at_once)
{
    static const char in[] = "data: a\n\n: c\nfoo: 1\ndata: b\n\ndata: c\n\n";
    /* stop at the 1st, 2nd, 3rd, 4th callback: nothing after it is reported, in any split */
    static const char *const want[] = {
        "E||a|\n",
        "E||a|\nC|c\n",
        "E||a|\nC|c\nI|foo|1\n",
        "E||a|\nC|c\nI|foo|1\nE||b|\n",
    };
    for (int stop = 1; stop <= 4; stop++) {
        size_t len = sizeof(in) - 1;
        for (size_t cut = 0; cut <= len; cut++) {
            struct rec got = {.stop_after = stop, .stop_rc = 40 + stop};
            size_t cuts[1] = {cut};
            struct run res = feed_cuts(&got, in, len, cuts, 1, BIG_CAP);
            cr_assert_eq(res.rc, 40 + stop, "feed returns the callback's value");
            cr_assert_eq(res.finish, SL_SSE_ERR_STOPPED);
            cr_assert_str_eq(sl_buf_cstr(&got.all), want[stop - 1], "stop %d cut %zu", stop, cut);
            cr_assert_eq(got.calls, stop);
            rec_free(&got);
        }
    }
    /* a negative value is passed through as well */
    struct rec got = {.stop_after = 1, .stop_rc = -7};
    struct run res = feed_whole(&got, in, sizeof(in) - 1, BIG_CAP);
    cr_assert_eq(res.rc, -7);
    rec_free(&got);
}

Test(sse, whole_events_are_not_copied)
{
    static const char in[] = "event: delta\ndata: {\"t\":\"a\"}\n\n";
    struct rec got = {.input = in, .input_len = sizeof(in) - 1};
    struct run res = feed_whole(&got, in, sizeof(in) - 1, BIG_CAP);
    cr_assert_eq(res.rc, 0);
    cr_assert_eq(got.borrowed_events, 1, "data was dispatched from the caller's buffer");

    /* an event that spans two feeds is owned by the parser, and correct */
    rec_free(&got);
    got = (struct rec){.input = in, .input_len = sizeof(in) - 1};
    size_t cuts[1] = {20};
    res = feed_cuts(&got, in, sizeof(in) - 1, cuts, 1, BIG_CAP);
    cr_assert_str_eq(sl_buf_cstr(&got.all), "E|delta|{\"t\":\"a\"}|\n");
    cr_assert_eq(got.borrowed_events, 0);
    rec_free(&got);
}

Test(sse, buffers_are_reused_across_events)
{
    struct rec got = {0};
    struct sl_sse p;
    sl_sse_init(&p, &all_callbacks, &got, BIG_CAP);
    static const char ev[] = "event: e\ndata: 0123456789abcdef\ndata: x\n\n";
    size_t line_cap = 0, data_cap = 0;
    char *line_mem = NULL, *data_mem = NULL;
    for (int i = 0; i < 500; i++) {
        /* cut inside the data line, so the line and data buffers are both used */
        cr_assert_eq(sl_sse_feed(&p, ev, 20), 0);
        cr_assert_eq(sl_sse_feed(&p, ev + 20, sizeof(ev) - 1 - 20), 0);
        if (i == 0) {
            line_mem = p.line.data;
            line_cap = p.line.cap;
            data_mem = p.data.own.data;
            data_cap = p.data.own.cap;
            cr_assert_not_null(line_mem);
            cr_assert_not_null(data_mem);
        }
    }
    cr_assert(p.line.data == line_mem && p.line.cap == line_cap, "line buffer reallocated");
    cr_assert(p.data.own.data == data_mem && p.data.own.cap == data_cap, "data buffer reallocated");
    cr_assert_eq(sl_buf_len(&got.events), 500 * strlen("E|e|0123456789abcdef\\nx|\n"));
    cr_assert_eq(sl_sse_finish(&p), 0);
    sl_sse_cleanup(&p);
    rec_free(&got);
}
