/*
 * Unit tests for src/stream/stream.c: a stream driven by a fake provider (fake_provider.h)
 * and read by a fake reader: journaling, the reader protocol, backpressure (pause and
 * resume of the provider), cancel from inside a callback, release, takeover, shutdown,
 * and the stream table.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "fake_provider.h"
#include "net/loop.h"
#include "obs/metrics.h"
#include "stream/directory.h"
#include "stream/stream.h"
#include "stream_env.h"

static void
setup(void)
{
    fake_reset();
    cfg = sl_config_new_defaults();
    cfg->limits.send_high_water = 1024;
    cfg->resume.max_events = 100000;
    cfg->resume.max_bytes = 64 * 1024;
    tenv_open(&fake_ops, false);
}

static void
teardown(void)
{
    tenv_close();
}

TestSuite(stream, .init = setup, .fini = teardown);

/* A reader that records what it is told and consumes at once when `eager`. */
struct reader {
    struct sl_stream *s;
    bool eager;
    bool cancel_on_delta; /* calls sl_stream_cancel from inside its second delta */
    struct sl_jcursor cur;
    char types[256];
    size_t ntypes;
    char text[4096];
    uint32_t last_seq;
    unsigned taken, finished;
};

static char
letter(enum sl_event_type t)
{
    return "SPDXEC"[t];
}

static void
on_event(void *rd, struct sl_stream *s, const struct sl_event *ev, uint32_t tokens)
{
    (void)tokens;
    struct reader *r = rd;
    cr_assert_eq(r->s, s);
    cr_assert_eq(ev->seq, r->last_seq + 1, "seq %u after %u", ev->seq, r->last_seq);
    r->last_seq = ev->seq;
    if (r->ntypes + 1 < sizeof(r->types))
        r->types[r->ntypes++] = letter(ev->type);
    size_t have = strlen(r->text);
    if (ev->type == SL_EV_DELTA && ev->u.delta.text && have + ev->u.delta.len < sizeof(r->text))
        strncat(r->text, ev->u.delta.text, ev->u.delta.len);
    if (r->eager) {
        sl_journal_end(sl_stream_journal(s), &r->cur);
        sl_journal_ack(sl_stream_journal(s), &r->cur);
    }
    if (r->cancel_on_delta && ev->type == SL_EV_DELTA && strcmp(r->text, "ab") == 0)
        sl_stream_cancel(s, "client");
}

static void
on_taken(void *rd, struct sl_stream *s)
{
    (void)s;
    ((struct reader *)rd)->taken++;
}

static void
on_finished(void *rd, struct sl_stream *s)
{
    (void)s;
    ((struct reader *)rd)->finished++;
}

static const struct sl_stream_reader reader_ops = {
    .on_event = on_event, .on_taken = on_taken, .on_finished = on_finished};

static struct sl_stream *
new_stream(const char *user, const char *id, const char *text)
{
    struct sl_chat_req *req = sl_calloc(1, sizeof(*req));
    req->max_tokens = -1;
    req->messages = json_pack("[{s:s, s:s}]", "role", "user", "content", text);
    struct sl_stream_owner owner = {.user = user, .session = "sess", .conn = 1};
    enum sl_errcode code;
    const char *why;
    struct sl_stream *s = sl_stream_new(&env, req, id, &owner, &code, &why);
    cr_assert_not_null(s, "%s", why);
    return s;
}

static struct sl_stream *
started(struct reader *r, const char *user, const char *id)
{
    struct sl_stream *s = new_stream(user, id, "hello");
    r->s = s;
    sl_stream_attach(s, &reader_ops, r, true);
    cr_assert(sl_stream_start(s));
    cr_assert_not_null(fake.last);
    return s;
}

Test(stream, events_are_journaled_and_the_stream_ends_when_consumed)
{
    struct reader r = {.eager = true};
    started(&r, "u", "c1");
    fake_delta(fake.last, "Hel");
    fake_delta(fake.last, "lo");
    fake_done(fake.last, 3, 2);
    /* start, progress connecting, progress generating, 2 deltas, done */
    cr_assert_str_eq(r.types, "SPPDDX");
    cr_assert_str_eq(r.text, "Hello");
    cr_assert_eq(r.finished, 1);
    cr_assert_eq(table.count, 0); /* consumed to the end: freed */
    cr_assert_eq(sl_directory_find(dir, "u", "c1", NULL), -1);
}

Test(stream, an_unconsumed_end_keeps_the_stream_until_the_reader_reads_it)
{
    struct reader r = {.eager = false};
    struct sl_stream *s = started(&r, "u", "c2");
    fake_delta(fake.last, "x");
    fake_done(fake.last, 1, 1);
    cr_assert_eq(r.finished, 0);
    cr_assert_eq(table.count, 1);
    cr_assert(sl_stream_ended(s));
    cr_assert_eq(sl_directory_find(dir, "u", "c2", NULL), 0);
    /* The reader reads the journal from the start and consumes it: now it is freed. */
    struct sl_jcursor cur;
    cr_assert(sl_journal_seek(sl_stream_journal(s), 0, &cur));
    struct sl_jrecord rec;
    unsigned n = 0;
    while (sl_journal_next(sl_stream_journal(s), &cur, &rec))
        n++;
    cr_assert_eq(n, 5);
    cr_assert_not(sl_stream_consumed(s, &cur));
    cr_assert_eq(r.finished, 1);
}

Test(stream, a_live_reader_behind_pauses_the_provider_and_catching_up_resumes_it)
{
    struct reader r = {.eager = false};
    struct sl_stream *s = started(&r, "u", "bp");
    struct fake_call *c = fake.last;
    char tok[64];
    memset(tok, 'x', sizeof(tok) - 1);
    tok[sizeof(tok) - 1] = '\0';
    unsigned sent = 0;
    while (!c->paused && sent < 1000) {
        fake_delta(c, tok);
        sent++;
    }
    cr_assert(c->paused, "no pause after %u deltas", sent);
    cr_assert_geq(sl_stream_journal(s)->backlog, cfg->limits.send_high_water);
    cr_assert_eq(sl_counter_get(&metrics.backpressure_pauses_total), 1);
    /* Catching up: the reader consumes everything; the provider goes on. */
    struct sl_jcursor cur;
    sl_journal_seek(sl_stream_journal(s), 0, &cur);
    struct sl_jrecord rec;
    while (sl_journal_next(sl_stream_journal(s), &cur, &rec))
        ;
    cr_assert(sl_stream_consumed(s, &cur));
    cr_assert_not(c->paused);
    cr_assert_eq(c->resumes, 1);
    sl_stream_release(s);
    cr_assert_eq(fake.cancelled, 1);
}

Test(stream, a_reader_that_is_not_live_lets_the_journal_fill_before_pausing)
{
    struct reader r = {.eager = false};
    struct sl_stream *s = started(&r, "u", "gone");
    sl_stream_set_live(s, false);
    struct fake_call *c = fake.last;
    char tok[64];
    memset(tok, 'y', sizeof(tok) - 1);
    tok[sizeof(tok) - 1] = '\0';
    unsigned sent = 0;
    while (!c->paused && sent < 10000) {
        fake_delta(c, tok);
        sent++;
    }
    cr_assert(c->paused);
    /* Far beyond high water: the journal's byte cap (64 KiB) decided. */
    cr_assert(sl_journal_full(sl_stream_journal(s)));
    cr_assert_gt(sl_stream_journal(s)->backlog, 8 * cfg->limits.send_high_water);
    sl_stream_release(s);
}

Test(stream, cancel_from_inside_a_delta_stops_the_call_and_ends_with_cancelled)
{
    struct reader r = {.eager = true, .cancel_on_delta = true};
    started(&r, "u", "cx");
    fake_delta(fake.last, "a");
    fake_delta(fake.last, "b"); /* the reader cancels from inside this one */
    cr_assert_null(fake.last);
    cr_assert_eq(fake.cancelled, 1);
    cr_assert_str_eq(r.types, "SPPDDC");
    cr_assert_eq(r.finished, 1);
}

Test(stream, release_aborts_a_running_call_without_events)
{
    struct reader r = {.eager = true};
    struct sl_stream *s = started(&r, "u", "rel");
    fake_delta(fake.last, "a");
    size_t n = r.ntypes;
    sl_stream_release(s);
    cr_assert_eq(fake.cancelled, 1);
    cr_assert_eq(r.ntypes, n);
    cr_assert_eq(r.finished, 0);
    cr_assert_eq(sl_counter_get(&metrics.models[0].streams[SL_OUTCOME_DISCONNECTED]), 1);
}

Test(stream, a_second_reader_takes_over)
{
    struct reader a = {.eager = true}, b = {.eager = true};
    struct sl_stream *s = started(&a, "u", "two");
    fake_delta(fake.last, "a");
    b.s = s;
    b.last_seq = sl_stream_journal(s)->last;
    sl_stream_attach(s, &reader_ops, &b, true);
    cr_assert_eq(a.taken, 1);
    fake_delta(fake.last, "b");
    fake_done(fake.last, 1, 2);
    cr_assert_str_eq(a.text, "a");
    cr_assert_str_eq(b.text, "b");
    cr_assert_eq(b.finished, 1);
    cr_assert_eq(a.finished, 0);
}

Test(stream, shutdown_ends_a_running_stream_with_a_retryable_error)
{
    struct reader r = {.eager = true};
    struct sl_stream *s = started(&r, "u", "sd");
    fake_delta(fake.last, "a");
    cr_assert_not(sl_stream_shutdown(s, 1000));
    cr_assert_eq(fake.cancelled, 1);
    cr_assert_eq(r.types[r.ntypes - 1], 'E');
    cr_assert_eq(r.finished, 1);
}

Test(stream, a_provider_that_fails_at_once_ends_the_stream_with_its_error)
{
    fake.fail_start = true;
    struct reader r = {.eager = true};
    struct sl_stream *s = new_stream("u", "f", "x");
    r.s = s;
    sl_stream_attach(s, &reader_ops, &r, true);
    cr_assert_not(sl_stream_start(s));
    cr_assert_str_eq(r.types, "SPE");
    cr_assert_eq(r.finished, 1);
}

Test(stream, the_table_finds_by_user_id_and_epoch)
{
    struct reader a = {.eager = true}, b = {.eager = true}, c = {.eager = true};
    struct sl_stream *s1 = started(&a, "alice", "c1");
    struct sl_stream *s2 = started(&b, "alice", "c1"); /* a second run of the same id */
    struct sl_stream *s3 = started(&c, "bob", "c1");
    cr_assert_eq(sl_streams_find(&table, "alice", "c1", sl_stream_epoch(s1)), s1);
    cr_assert_eq(sl_streams_find(&table, "alice", "c1", NULL), s2);
    cr_assert_eq(sl_streams_find(&table, "bob", "c1", NULL), s3);
    cr_assert_null(sl_streams_find(&table, "alice", "c1", "nope"));
    cr_assert_null(sl_streams_find(&table, "carol", "c1", NULL));
    cr_assert_eq(sl_directory_find(dir, "alice", "c1", sl_stream_epoch(s1)), 0);
    sl_stream_release(s1);
    sl_stream_release(s2);
    sl_stream_release(s3);
}

Test(stream, an_error_after_the_first_token_is_reported_never_retried)
{
    cfg->providers[0].max_retries = 3;
    struct reader r = {.eager = true};
    started(&r, "u", "err");
    fake_delta(fake.last, "a");
    fake_error(fake.last, SL_ERR_UPSTREAM_ERROR, true);
    cr_assert_eq(fake.started, 1);
    cr_assert_eq(r.types[r.ntypes - 1], 'E');
    cr_assert_eq(r.finished, 1);
}

/*
 * Many streams with one (user, id), as from many clients of one API key that all say "1":
 * one bucket holds them all; they leave it in any order, across the table's growth.
 */
Test(stream, one_key_many_streams_leave_in_any_order)
{
    enum { N = 150 };
    static struct reader r[N];
    struct sl_stream *s[N];
    for (int i = 0; i < N; i++) {
        r[i] = (struct reader){.eager = true};
        s[i] = started(&r[i], "u", "1");
    }
    cr_assert_eq(table.count, N);
    cr_assert_gt(table.nbuckets, 64, "the table grew");
    /* Odd ones first, then even ones from the end. */
    for (int i = 1; i < N; i += 2)
        sl_stream_cancel(s[i], "client");
    cr_assert_eq(table.count, N / 2);
    for (int i = N - 2; i >= 0; i -= 2) {
        cr_assert_not_null(sl_streams_find(&table, "u", "1", NULL));
        sl_stream_cancel(s[i], "client");
    }
    cr_assert_eq(table.count, 0);
    cr_assert_null(sl_streams_find(&table, "u", "1", NULL));
}
