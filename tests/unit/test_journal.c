/* Unit tests for src/stream/journal.c: encoding, reading, acknowledging, caps, raw copies. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "stream/journal.h"

static struct sl_event
delta(uint32_t seq, const char *text)
{
    struct sl_event ev = {.type = SL_EV_DELTA, .seq = seq};
    ev.u.delta.text = text;
    ev.u.delta.len = strlen(text);
    return ev;
}

static void
append_deltas(struct sl_journal *j, uint32_t from, uint32_t to)
{
    char text[32];
    for (uint32_t s = from; s <= to; s++) {
        snprintf(text, sizeof(text), "t%u ", s);
        struct sl_event ev = delta(s, text);
        sl_journal_append(j, &ev, s);
    }
}

/* Reads everything after the cursor, checking the texts "t<seq> ". */
static uint32_t
read_deltas(struct sl_journal *j, struct sl_jcursor *cur)
{
    struct sl_jrecord r;
    uint32_t n = 0;
    char want[32];
    while (sl_journal_next(j, cur, &r)) {
        cr_assert_eq(r.ev.type, SL_EV_DELTA);
        snprintf(want, sizeof(want), "t%u ", r.ev.seq);
        cr_assert_eq(r.ev.u.delta.len, strlen(want));
        cr_assert(memcmp(r.ev.u.delta.text, want, r.ev.u.delta.len) == 0);
        cr_assert_eq(r.tokens, r.ev.seq);
        n++;
    }
    return n;
}

Test(journal, every_event_type_round_trips)
{
    struct sl_jpool pool;
    sl_jpool_init(&pool, 4);
    struct sl_journal j;
    sl_journal_init(&j, &pool, 100, 1 << 20, true);

    struct sl_event ev[7];
    memset(ev, 0, sizeof(ev));
    ev[0].type = SL_EV_START;
    ev[0].u.start.epoch = "e123";
    ev[0].u.start.model = "demo";
    ev[0].u.start.provider = "demo-p";
    ev[1].type = SL_EV_PROGRESS;
    ev[1].u.progress.step = "connecting";
    ev[1].u.progress.detail = NULL;
    ev[2] = delta(0, "Hello \"world\"");
    struct sl_tool_delta tool = {.index = 3,
                                 .id = "call_1",
                                 .id_len = 6,
                                 .name = "get",
                                 .name_len = 3,
                                 .arguments = "{\"a\":",
                                 .arguments_len = 5};
    ev[3].type = SL_EV_DELTA;
    ev[3].u.delta.tool = &tool;
    ev[4].type = SL_EV_DONE;
    ev[4].u.done.finish = SL_FINISH_LENGTH;
    ev[4].u.done.native_finish = "max_tokens";
    ev[4].u.done.usage =
        (struct sl_usage){.input_tokens = 9, .output_tokens = 31, .estimated = true};
    ev[4].u.done.cost_usd = 0.125;
    ev[4].u.done.ttft_ms = 180;
    ev[4].u.done.latency_ms = 950;
    ev[4].u.done.model = "demo";
    ev[4].u.done.provider = "demo-p";
    ev[5].type = SL_EV_ERROR;
    ev[5].u.error.code = SL_ERR_UPSTREAM_TIMEOUT;
    ev[5].u.error.message = "slow";
    ev[5].u.error.retryable = true;
    ev[5].u.error.retry_after_ms = -1;
    ev[5].u.error.usage.output_tokens = 4;
    ev[6].type = SL_EV_CANCELLED;
    ev[6].u.cancelled.reason = "client";
    ev[6].u.cancelled.usage.input_tokens = 2;
    for (uint32_t i = 0; i < 7; i++) {
        ev[i].seq = i + 1;
        sl_journal_append(&j, &ev[i], i * 10);
    }
    cr_assert_eq(j.last, 7);

    struct sl_jcursor cur;
    cr_assert(sl_journal_seek(&j, 0, &cur));
    struct sl_jrecord r;
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_eq(r.ev.type, SL_EV_START);
    cr_assert_eq(r.ev.seq, 1);
    cr_assert_str_eq(r.ev.u.start.epoch, "e123");
    cr_assert_str_eq(r.ev.u.start.model, "demo");
    cr_assert_str_eq(r.ev.u.start.provider, "demo-p");
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_str_eq(r.ev.u.progress.step, "connecting");
    cr_assert_null(r.ev.u.progress.detail);
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_null(r.ev.u.delta.tool);
    cr_assert_eq(r.ev.u.delta.len, 13);
    cr_assert(memcmp(r.ev.u.delta.text, "Hello \"world\"", 13) == 0);
    cr_assert_eq(r.tokens, 20);
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_not_null(r.ev.u.delta.tool);
    cr_assert_eq(r.ev.u.delta.tool->index, 3);
    cr_assert_eq(r.ev.u.delta.tool->id_len, 6);
    cr_assert(memcmp(r.ev.u.delta.tool->id, "call_1", 6) == 0);
    cr_assert(memcmp(r.ev.u.delta.tool->name, "get", 3) == 0);
    cr_assert_eq(r.ev.u.delta.tool->arguments_len, 5);
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_eq(r.ev.type, SL_EV_DONE);
    cr_assert_eq(r.ev.u.done.finish, SL_FINISH_LENGTH);
    cr_assert_str_eq(r.ev.u.done.native_finish, "max_tokens");
    cr_assert_eq(r.ev.u.done.usage.input_tokens, 9);
    cr_assert_eq(r.ev.u.done.usage.output_tokens, 31);
    cr_assert(r.ev.u.done.usage.estimated);
    cr_assert_float_eq(r.ev.u.done.cost_usd, 0.125, 1e-12);
    cr_assert_eq(r.ev.u.done.ttft_ms, 180);
    cr_assert_eq(r.ev.u.done.latency_ms, 950);
    cr_assert_str_eq(r.ev.u.done.provider, "demo-p");
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_eq(r.ev.u.error.code, SL_ERR_UPSTREAM_TIMEOUT);
    cr_assert(r.ev.u.error.retryable);
    cr_assert_eq(r.ev.u.error.retry_after_ms, -1);
    cr_assert_str_eq(r.ev.u.error.message, "slow");
    cr_assert_eq(r.ev.u.error.usage.output_tokens, 4);
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_str_eq(r.ev.u.cancelled.reason, "client");
    cr_assert_eq(r.ev.u.cancelled.usage.input_tokens, 2);
    cr_assert_not(sl_journal_next(&j, &cur, &r));

    sl_journal_cleanup(&j);
    cr_assert_eq(pool.bytes, 0);
    sl_jpool_cleanup(&pool);
}

Test(journal, backlog_is_counted_and_acked)
{
    struct sl_jpool pool;
    sl_jpool_init(&pool, 4);
    struct sl_journal j;
    sl_journal_init(&j, &pool, 1000, 1 << 20, false);
    struct sl_jcursor cur;
    cr_assert(sl_journal_seek(&j, 0, &cur));
    append_deltas(&j, 1, 500);
    cr_assert_eq(j.backlog, j.bytes);
    cr_assert_eq(read_deltas(&j, &cur), 500);
    cr_assert_gt(j.backlog, 0);
    sl_journal_ack(&j, &cur);
    cr_assert_eq(j.backlog, 0);
    cr_assert_eq(j.acked, 500);
    /* Without retain, only the block holding the last acknowledged record stays. */
    cr_assert_lt(j.nrec, 500);
    append_deltas(&j, 501, 510);
    cr_assert_eq(read_deltas(&j, &cur), 10);
    sl_journal_ack(&j, &cur);
    cr_assert_eq(j.backlog, 0);
    sl_journal_cleanup(&j);
    sl_jpool_cleanup(&pool);
}

Test(journal, retained_records_allow_a_resume_from_further_back)
{
    struct sl_jpool pool;
    sl_jpool_init(&pool, 4);
    struct sl_journal j;
    sl_journal_init(&j, &pool, 1000, 1 << 20, true);
    struct sl_jcursor cur;
    sl_journal_seek(&j, 0, &cur);
    append_deltas(&j, 1, 300);
    read_deltas(&j, &cur);
    sl_journal_ack(&j, &cur);
    cr_assert_eq(j.nrec, 300);

    /* A new reader that has 17 gets 18..300, and the backlog is what it has not read. */
    struct sl_jcursor again;
    cr_assert(sl_journal_seek(&j, 17, &again));
    cr_assert_eq(j.acked, 17);
    cr_assert_gt(j.backlog, 0);
    struct sl_jrecord r;
    cr_assert(sl_journal_next(&j, &again, &r));
    cr_assert_eq(r.ev.seq, 18);
    cr_assert_eq(read_deltas(&j, &again), 300 - 18);
    sl_journal_ack(&j, &again);
    cr_assert_eq(j.backlog, 0);

    /* Beyond the end, or before what is kept: impossible. */
    cr_assert_not(sl_journal_seek(&j, 301, &again));
    cr_assert(sl_journal_seek(&j, 300, &again));
    cr_assert_not(sl_journal_next(&j, &again, &r));
    sl_journal_cleanup(&j);
    sl_jpool_cleanup(&pool);
}

Test(journal, caps_drop_the_oldest_acknowledged_records_only)
{
    struct sl_jpool pool;
    sl_jpool_init(&pool, 4);
    struct sl_journal j;
    sl_journal_init(&j, &pool, 200, 1 << 20, true);
    struct sl_jcursor cur;
    sl_journal_seek(&j, 0, &cur);
    append_deltas(&j, 1, 1000);
    /* Nothing acknowledged: nothing dropped, and the journal is full. */
    cr_assert_eq(j.nrec, 1000);
    cr_assert(sl_journal_full(&j));
    read_deltas(&j, &cur);
    sl_journal_ack(&j, &cur);
    cr_assert_not(sl_journal_full(&j));
    /* Dropped by whole blocks: at most a block's worth under the cap. */
    cr_assert_leq(j.nrec, 200);
    cr_assert_geq(j.nrec, 200 - 100);
    struct sl_jcursor old;
    cr_assert_not(sl_journal_seek(&j, 10, &old));
    cr_assert(sl_journal_seek(&j, j.first - 1, &old));
    sl_journal_cleanup(&j);
    sl_jpool_cleanup(&pool);
}

Test(journal, full_by_bytes)
{
    struct sl_journal j;
    sl_journal_init(&j, NULL, 1000000, 4096, true);
    append_deltas(&j, 1, 50);
    cr_assert_not(sl_journal_full(&j));
    append_deltas(&j, 51, 400);
    cr_assert(sl_journal_full(&j));
    sl_journal_cleanup(&j);
}

Test(journal, a_record_larger_than_a_block)
{
    struct sl_jpool pool;
    sl_jpool_init(&pool, 4);
    struct sl_journal j;
    sl_journal_init(&j, &pool, 100, 1 << 20, true);
    static char big[10000];
    memset(big, 'x', sizeof(big) - 1);
    append_deltas(&j, 1, 3);
    struct sl_event ev = delta(4, big);
    sl_journal_append(&j, &ev, 4);
    append_deltas(&j, 5, 6);
    struct sl_jcursor cur;
    cr_assert(sl_journal_seek(&j, 3, &cur));
    struct sl_jrecord r;
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_eq(r.ev.u.delta.len, sizeof(big) - 1);
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_eq(r.ev.seq, 5);
    sl_journal_cleanup(&j);
    cr_assert_eq(pool.bytes, 0);
    sl_jpool_cleanup(&pool);
}

Test(journal, raw_copies_make_an_identical_journal)
{
    struct sl_journal a, b;
    sl_journal_init(&a, NULL, 1000, 1 << 20, true);
    sl_journal_init(&b, NULL, 1000, 1 << 20, false);
    append_deltas(&a, 1, 120);
    struct sl_jcursor ca, cb;
    sl_journal_seek(&a, 40, &ca);
    sl_journal_seek(&b, 0, &cb);
    const void *rec;
    size_t size;
    bool first = true;
    while (sl_journal_next_raw(&a, &ca, &rec, &size)) {
        if (first) {
            /* A mirror starts where its source's reader starts. */
            b.last = b.acked = 40;
            cb.seq = 40;
            first = false;
        }
        sl_journal_append_raw(&b, rec, size);
    }
    cr_assert_eq(b.last, 120);
    cr_assert_eq(read_deltas(&b, &cb), 80);
    sl_journal_ack(&b, &cb);
    cr_assert_eq(b.backlog, 0);
    sl_journal_cleanup(&a);
    sl_journal_cleanup(&b);
}

Test(journal, freed_blocks_are_reused)
{
    struct sl_jpool pool;
    sl_jpool_init(&pool, 8);
    struct sl_journal j;
    sl_journal_init(&j, &pool, 100000, 1 << 30, false);
    struct sl_jcursor cur;
    sl_journal_seek(&j, 0, &cur);
    for (uint32_t round = 0; round < 20; round++) {
        append_deltas(&j, round * 200 + 1, round * 200 + 200);
        read_deltas(&j, &cur);
        sl_journal_ack(&j, &cur);
    }
    cr_assert_gt(pool.nfree, 0);
    cr_assert_leq(pool.nfree, 8);
    sl_journal_cleanup(&j);
    sl_jpool_cleanup(&pool);
}

Test(journal, take_all_acknowledges_the_newest_record_at_once)
{
    struct sl_jpool pool;
    sl_jpool_init(&pool, 4);
    struct sl_journal j;
    sl_journal_init(&j, &pool, 1000, 1 << 20, true);
    struct sl_jcursor cur;
    sl_journal_seek(&j, 0, &cur);
    for (uint32_t s = 1; s <= 250; s++) {
        append_deltas(&j, s, s);
        sl_journal_take_all(&j, &cur); /* the reader rendered it straight from the event */
        cr_assert_eq(j.backlog, 0);
        cr_assert_eq(j.acked, s);
    }
    /* Kept for a resume, and a record appended after take_all is read from the cursor. */
    struct sl_jcursor again;
    cr_assert(sl_journal_seek(&j, 100, &again));
    cr_assert_eq(read_deltas(&j, &again), 150);
    append_deltas(&j, 251, 251);
    struct sl_jrecord r;
    cr_assert(sl_journal_next(&j, &cur, &r));
    cr_assert_eq(r.ev.seq, 251);
    sl_journal_cleanup(&j);
    sl_jpool_cleanup(&pool);
}
