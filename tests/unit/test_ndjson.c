/*
 * Unit tests for src/upstream/ndjson: the NDJSON fixtures of ../shared/upstream-fixtures in
 * many splits (each delivered line parsed with jansson and compared with json_equal), then
 * the edge cases, each fed in every split of its input.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "upstream/ndjson.h"

#include "parser_fixtures.h"

#define BIG_CAP ((size_t)1 << 20)

/* ---- recording ------------------------------------------------------------------------ */

struct rec {
    struct sl_buf log; /* every line, '\r' and '\n' escaped, one per log line */
    json_t *parsed;    /* every line parsed as JSON (null when it does not parse) */
    int stop_after;    /* return stop_rc from the stop_after-th line (0: never) */
    int stop_rc;
    int calls;
    const char *input; /* when set: the input fed whole, to check zero-copy delivery */
    size_t input_len;
    int borrowed; /* lines that pointed into input */
};

static int
on_line(void *ud, struct sl_slice line)
{
    struct rec *r = ud;
    cr_assert_not_null(line.ptr);
    for (size_t i = 0; i < line.len; i++) {
        if (line.ptr[i] == '\r')
            sl_buf_append_str(&r->log, "\\r");
        else if (line.ptr[i] == '\n')
            sl_buf_append_str(&r->log, "\\n");
        else if (line.ptr[i] == '\\')
            sl_buf_append_str(&r->log, "\\\\");
        else
            sl_buf_append_byte(&r->log, line.ptr[i]);
    }
    sl_buf_append_byte(&r->log, '\n');
    if (r->parsed != NULL) {
        json_t *j = json_loadb(line.ptr, line.len, 0, NULL);
        json_array_append_new(r->parsed, j ? j : json_null());
    }
    if (r->input != NULL && line.ptr >= r->input && line.ptr + line.len <= r->input + r->input_len)
        r->borrowed++;
    r->calls++;
    return r->stop_after != 0 && r->calls == r->stop_after ? r->stop_rc : 0;
}

static void
rec_free(struct rec *r)
{
    sl_buf_free(&r->log);
    json_decref(r->parsed);
}

/* ---- feeding -------------------------------------------------------------------------- */

/*
 * Feeds a private copy of the chunk and scribbles over it afterwards (copy: the chunk was
 * not fed whole from r->input), so that a parser still pointing into an earlier feed's bytes
 * reads garbage or, after the free, trips AddressSanitizer.
 */
static int
feed_copy(struct sl_ndjson *p, bool copy, const char *chunk, size_t n)
{
    if (!copy || n == 0)
        return sl_ndjson_feed(p, n ? chunk : NULL, n);
    char *tmp = malloc(n);
    memcpy(tmp, chunk, n);
    int rc = sl_ndjson_feed(p, tmp, n);
    memset(tmp, 0xA5, n);
    free(tmp);
    return rc;
}

struct run {
    int rc;     /* first non-zero feed result, or 0 */
    int finish; /* sl_ndjson_finish() */
    struct sl_buf tail;
};

/* Feeds in[0..len) cut at the increasing offsets cuts[0..ncuts) (repeats: empty feeds). */
static struct run
feed_cuts(struct rec *r, const char *in, size_t len, const size_t *cuts, size_t ncuts, size_t max)
{
    struct sl_ndjson p;
    struct run res = {0, 0, SL_BUF_INIT};
    size_t from = 0;
    sl_ndjson_init(&p, on_line, r, max);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        cr_assert(to >= from && to <= len);
        int rc = feed_copy(&p, r->input == NULL, in + from, to - from);
        if (res.rc == 0 && rc != 0)
            res.rc = rc;
        else if (res.rc != 0)
            cr_assert_eq(rc, res.rc, "a stopped parser returns the same value");
        from = to;
    }
    int calls = r->calls;
    struct sl_slice tail = {NULL, 0};
    res.finish = sl_ndjson_finish(&p, &tail);
    if (res.finish >= 0) {
        cr_assert_not_null(tail.ptr);
        sl_buf_append(&res.tail, tail.ptr, tail.len);
    }
    cr_assert_eq(sl_ndjson_feed(&p, "{}\n", 3), res.rc ? res.rc : SL_NDJSON_ERR_STOPPED);
    cr_assert_eq(sl_ndjson_finish(&p, NULL), SL_NDJSON_ERR_STOPPED);
    cr_assert_eq(r->calls, calls, "no callback after a stop or finish");
    sl_ndjson_cleanup(&p);
    return res;
}

ParameterizedTestParameters(ndjson, fixture)
{
    return fixture_params(".ndjson");
}

static void
compare(const struct fixture *fx, const char *mode, json_t *ev, struct rec *got, struct run *res)
{
    json_t *tail = json_object_get(ev, "unterminated_tail");
    const char *want_tail = json_string_value(tail);
    size_t want_tail_len = json_string_length(tail);
    int want_finish = 0;
    for (size_t i = 0; i < want_tail_len; i++) {
        if (strchr(" \t\r\n", want_tail[i]) == NULL)
            want_finish = 1;
    }
    cr_assert_eq(res->rc, 0, "%s (%s): feed returned %d", fx->id, mode, res->rc);
    cr_assert(json_equal(got->parsed, json_object_get(ev, "lines")), "%s (%s): lines differ:\n%s",
              fx->id, mode, sl_buf_cstr(&got->log));
    cr_assert_eq(res->finish, want_finish, "%s (%s): finish %d", fx->id, mode, res->finish);
    cr_assert(sl_buf_len(&res->tail) == want_tail_len &&
                  memcmp(sl_buf_ptr(&res->tail), want_tail, want_tail_len) == 0,
              "%s (%s): tail", fx->id, mode);
    sl_buf_free(&res->tail);
}

ParameterizedTest(struct fixture *fx, ndjson, fixture)
{
    size_t len;
    char *body = read_fixture(fx->body, &len);
    json_t *ev = load_json(fx->events);
    json_t *meta = load_json(fx->meta);
    size_t *cuts = malloc((len + 1) * 2 * sizeof(*cuts));
    struct rec got;
    struct run res;

    cr_assert_str_eq(json_string_value(json_object_get(ev, "format")), "ndjson");
    cr_assert(json_array_size(json_object_get(ev, "lines")) > 0, "%s: no lines", fx->id);

    got = (struct rec){.parsed = json_array(), .input = body, .input_len = len};
    res = feed_cuts(&got, body, len, NULL, 0, BIG_CAP);
    compare(fx, "whole", ev, &got, &res);
    cr_assert_eq(got.borrowed, got.calls, "%s: whole lines are delivered without a copy", fx->id);
    rec_free(&got);

    for (size_t i = 1; i < len; i++)
        cuts[i - 1] = i;
    got = (struct rec){.parsed = json_array()};
    res = feed_cuts(&got, body, len, cuts, len ? len - 1 : 0, BIG_CAP);
    compare(fx, "byte by byte", ev, &got, &res);
    rec_free(&got);

    json_t *bounds = json_object_get(json_object_get(meta, "delivery"), "chunk_boundaries");
    if (bounds != NULL) {
        size_t i, n = 0;
        json_t *b;
        json_array_foreach(bounds, i, b)
        {
            cuts[n++] = (size_t)json_integer_value(b);
        }
        got = (struct rec){.parsed = json_array()};
        res = feed_cuts(&got, body, len, cuts, n, BIG_CAP);
        compare(fx, "chunk_boundaries", ev, &got, &res);
        rec_free(&got);
    }

    for (int run = 0; run < 200; run++) {
        uint64_t seed = fnv1a(fx->id) ^ (uint64_t)(run + 1) * 0x9E3779B97F4A7C15ull;
        char mode[64];
        snprintf(mode, sizeof(mode), "random split, run %d", run);
        size_t n = random_cuts(&seed, len, cuts);
        got = (struct rec){.parsed = json_array()};
        res = feed_cuts(&got, body, len, cuts, n, BIG_CAP);
        compare(fx, mode, ev, &got, &res);
        rec_free(&got);
    }

    free(cuts);
    json_decref(ev);
    json_decref(meta);
    free(body);
}

/* Guards the parameterized test above against passing vacuously when no fixture is found. */
Test(ndjson, fixtures_present)
{
    json_t *index = load_json("index.json");
    size_t want = 0, i;
    json_t *e;
    json_array_foreach(json_object_get(index, "fixtures"), i, e)
    {
        if (json_object_get(e, "events") != NULL &&
            ends_with(json_string_value(json_object_get(e, "body")), ".ndjson"))
            want++;
    }
    json_decref(index);
    cr_assert_geq(want, 2, "expected at least 2 NDJSON fixtures, found %zu", want);
    cr_assert_eq(list_fixtures(NULL, 0, ".ndjson"), want);
}

/* ---- synthetic cases ------------------------------------------------------------------ */

/*
 * Feeds in whole, byte by byte and cut at every one and every pair of offsets; each run must
 * log want (one line per delivered line), return want_rc from the feeds, want_finish from
 * finish and, unless the parser stopped, leave want_tail.
 */
static void
check_cap(const char *in, size_t len, size_t max, const char *want, int want_rc, int want_finish,
          const char *want_tail)
{
    size_t *cuts = malloc((len + 2) * sizeof(*cuts));
    for (int mode = 0; mode < 2; mode++) {
        size_t n = 0;
        if (mode == 1) {
            for (size_t i = 1; i < len; i++)
                cuts[n++] = i;
        }
        struct rec got = {0};
        struct run res = feed_cuts(&got, in, len, cuts, n, max);
        cr_assert_str_eq(sl_buf_cstr(&got.log), want, "%s: got\n%s",
                         mode ? "byte by byte" : "whole", sl_buf_cstr(&got.log));
        cr_assert_eq(res.rc, want_rc, "rc %d", res.rc);
        cr_assert_eq(res.finish, want_finish, "finish %d", res.finish);
        if (want_tail != NULL)
            cr_assert_str_eq(sl_buf_cstr(&res.tail), want_tail);
        sl_buf_free(&res.tail);
        rec_free(&got);
    }
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            cuts[0] = i;
            cuts[1] = j;
            struct rec got = {0};
            struct run res = feed_cuts(&got, in, len, cuts, 2, max);
            cr_assert_str_eq(sl_buf_cstr(&got.log), want, "cut at %zu and %zu: got\n%s", i, j,
                             sl_buf_cstr(&got.log));
            cr_assert_eq(res.rc, want_rc, "cut at %zu and %zu: rc %d", i, j, res.rc);
            cr_assert_eq(res.finish, want_finish, "cut at %zu and %zu: finish", i, j);
            if (want_tail != NULL)
                cr_assert_str_eq(sl_buf_cstr(&res.tail), want_tail);
            sl_buf_free(&res.tail);
            rec_free(&got);
        }
    }
    free(cuts);
}

#define CHECK(lit, want, fin, tail)                                                                \
    check_cap((lit), sizeof(lit) - 1, BIG_CAP, (want), 0, (fin), (tail))

Test(ndjson, lines_split_on_lf)
{
    CHECK("{\"a\":1}\n{\"b\":2}\n", "{\"a\":1}\n{\"b\":2}\n", 0, "");
    CHECK("{}\n", "{}\n", 0, "");
    /* the splitter never looks inside a line: not even at an escaped newline */
    CHECK("{\"s\":\"x\\ny\"}\n", "{\"s\":\"x\\\\ny\"}\n", 0, "");
}

Test(ndjson, crlf_tolerated)
{
    CHECK("{\"a\":1}\r\n{\"b\":2}\r\n", "{\"a\":1}\n{\"b\":2}\n", 0, "");
    /* only the CR just before the LF goes; a lone CR inside a line stays */
    CHECK("{\"a\":\r1}\n", "{\"a\":\\r1}\n", 0, "");
    CHECK("{}\r\r\n", "{}\\r\n", 0, "");
}

Test(ndjson, blank_lines_skipped)
{
    CHECK("\n\n{}\n\n", "{}\n", 0, "");
    CHECK("\r\n  \t\n{}\r\n \r\n", "{}\n", 0, "");
    CHECK("", "", 0, "");
}

Test(ndjson, unterminated_tail_reported)
{
    CHECK("{\"a\":1}\n{\"b\":", "{\"a\":1}\n", 1, "{\"b\":");
    CHECK("{\"a\":1}", "", 1, "{\"a\":1}");
    CHECK("{\"a\":1}\r", "", 1, "{\"a\":1}\r");
    /* whitespace after the last LF is not a truncation */
    CHECK("{\"a\":1}\n  ", "{\"a\":1}\n", 0, "  ");
    CHECK("{\"a\":1}\n\r", "{\"a\":1}\n", 0, "\r");
}

Test(ndjson, utf8_and_nul_bytes_pass_through)
{
    CHECK("{\"t\":\"h\xC3\xA9 \xF0\x9F\x98\x80\"}\n", "{\"t\":\"h\xC3\xA9 \xF0\x9F\x98\x80\"}\n", 0,
          "");
    struct rec got = {0};
    static const char in[] = "a\0b\n";
    struct run res = feed_cuts(&got, in, 4, NULL, 0, BIG_CAP);
    cr_assert_eq(res.rc, 0);
    cr_assert_eq(sl_buf_len(&got.log), 4);
    cr_assert(memcmp(sl_buf_ptr(&got.log), "a\0b\n", 4) == 0);
    sl_buf_free(&res.tail);
    rec_free(&got);
}

Test(ndjson, over_cap_is_an_error)
{
    /* the cap counts the bytes before the LF, a CR included */
    check_cap("1234\n", 5, 4, "1234\n", 0, 0, "");
    check_cap("12345\n", 6, 4, "", SL_NDJSON_ERR_LINE_TOO_LONG, SL_NDJSON_ERR_STOPPED, NULL);
    check_cap("1234\r\n", 6, 4, "", SL_NDJSON_ERR_LINE_TOO_LONG, SL_NDJSON_ERR_STOPPED, NULL);
    check_cap("1\n23456789", 10, 4, "1\n", SL_NDJSON_ERR_LINE_TOO_LONG, SL_NDJSON_ERR_STOPPED,
              NULL);
    /* blank lines count too: a peer cannot grow the buffer with whitespace */
    check_cap("     \n", 6, 4, "", SL_NDJSON_ERR_LINE_TOO_LONG, SL_NDJSON_ERR_STOPPED, NULL);
    cr_assert_str_eq(sl_ndjson_strerror(SL_NDJSON_ERR_LINE_TOO_LONG),
                     "NDJSON line longer than the limit");
}

Test(ndjson, callback_nonzero_stops_at_once)
{
    static const char in[] = "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n";
    size_t len = sizeof(in) - 1;
    for (int stop = 1; stop <= 3; stop++) {
        for (size_t cut = 0; cut <= len; cut++) {
            struct rec got = {.stop_after = stop, .stop_rc = 10 + stop};
            size_t cuts[1] = {cut};
            struct run res = feed_cuts(&got, in, len, cuts, 1, BIG_CAP);
            cr_assert_eq(res.rc, 10 + stop);
            cr_assert_eq(res.finish, SL_NDJSON_ERR_STOPPED);
            cr_assert_eq(got.calls, stop, "stop %d cut %zu: %d calls", stop, cut, got.calls);
            sl_buf_free(&res.tail);
            rec_free(&got);
        }
    }
}

Test(ndjson, whole_lines_are_not_copied)
{
    static const char in[] = "{\"a\":1}\n{\"b\":2}\r\n";
    struct rec got = {.input = in, .input_len = sizeof(in) - 1};
    struct run res = feed_cuts(&got, in, sizeof(in) - 1, NULL, 0, BIG_CAP);
    cr_assert_eq(res.rc, 0);
    cr_assert_eq(got.calls, 2);
    cr_assert_eq(got.borrowed, 2);
    sl_buf_free(&res.tail);
    rec_free(&got);
}
