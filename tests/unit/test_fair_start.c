/*
 * Unit tests of fair admission (src/stream/stream.c): a worker spends a bounded time of
 * each loop turn starting streams; the rest start on later turns, oldest first, and a
 * stream cancelled while it waits never reaches the provider.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <time.h>
#include <uv.h>

#include "base/alloc.h"
#include "stream_env.h"

#define N 12

/* A provider whose start costs 400 µs of CPU and records who started, in order. */
static void *order[N];
static struct sl_jcursor cursors[N]; /* the readers' */
static unsigned ncursors;
static unsigned nstarted;

static void
spin_us(unsigned us)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000 < (long)us);
}

static void *
slow_start(struct sl_upstream *u, const struct sl_call_params *p,
           const struct sl_upstream_sink *sink, void *ud, struct sl_upstream_error *err)
{
    (void)p, (void)sink, (void)err;
    spin_us(400);
    cr_assert_lt(nstarted, N);
    order[nstarted++] = ud;
    u->active_calls++;
    return sl_malloc(1);
}

static void
slow_cancel(void *call)
{
    up->active_calls--;
    free(call);
}

static const struct sl_provider_ops slow_ops = {
    .kind = "slow", .start = slow_start, .cancel = slow_cancel};

static void
setup(void)
{
    nstarted = 0;
    ncursors = 0;
    cfg = sl_config_new_defaults();
    tenv_open(&slow_ops, true);
}

static void
teardown(void)
{
    tenv_close();
}

TestSuite(fair_start, .init = setup, .fini = teardown);

static void
on_event(void *rd, struct sl_stream *s, const struct sl_event *ev, uint32_t tokens)
{
    (void)ev, (void)tokens;
    struct sl_jcursor *cur = rd; /* consumes at once */
    sl_journal_end(sl_stream_journal(s), cur);
    sl_journal_ack(sl_stream_journal(s), cur);
}

static const struct sl_stream_reader reader_ops = {.on_event = on_event};

static struct sl_stream *
new_stream(const char *id)
{
    struct sl_chat_req *req = sl_calloc(1, sizeof(*req));
    req->max_tokens = -1;
    req->messages = json_pack("[{s:s, s:s}]", "role", "user", "content", "hi");
    struct sl_stream_owner owner = {.user = "u", .session = "sess", .conn = 1};
    enum sl_errcode code;
    const char *why;
    struct sl_stream *s = sl_stream_new(&env, req, id, &owner, &code, &why);
    cr_assert_not_null(s, "%s", why);
    cr_assert_lt(ncursors, N);
    cursors[ncursors] = (struct sl_jcursor){0};
    sl_stream_attach(s, &reader_ops, &cursors[ncursors++], true);
    return s;
}

/* One loop iteration without blocking (a 0 ms timer is due at the next one). */
static void
turn(void)
{
    uv_run(sl_loop_uv(loop), UV_RUN_NOWAIT);
}

Test(fair_start, a_burst_starts_over_several_turns_in_order)
{
    struct sl_stream *s[N];
    char id[16];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "c%d", i);
        s[i] = new_stream(id);
        cr_assert(sl_stream_start(s[i]));
    }
    /* 1 ms of budget, 400 µs a start: a few now, the rest wait. */
    cr_assert_geq(nstarted, 1);
    cr_assert_lt(nstarted, 5, "%u started in the first turn", nstarted);
    cr_assert_eq(sl_streams_starting(&table), N - nstarted);
    /* One waiting stream is cancelled: it is never started. */
    sl_stream_cancel(s[N - 1], "client");
    unsigned turns = 0;
    while (sl_streams_starting(&table) > 0 && turns < 100) {
        unsigned before = nstarted;
        turn();
        turns++;
        cr_assert_lt(nstarted - before, 5, "%u started in one turn", nstarted - before);
    }
    cr_assert_eq(nstarted, N - 1);
    cr_assert_geq(turns, 2);
    for (int i = 0; i < N - 1; i++)
        cr_assert_eq(order[i], s[i], "stream %d started out of order", i);
    for (int i = 0; i < N - 1; i++)
        sl_stream_cancel(s[i], "client");
    cr_assert_eq(up->active_calls, 0);
}

Test(fair_start, a_stream_released_while_it_waits_is_never_started)
{
    struct sl_stream *s[N];
    char id[16];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "r%d", i);
        s[i] = new_stream(id);
        sl_stream_start(s[i]);
    }
    unsigned first = nstarted;
    cr_assert_lt(first, N);
    for (int i = (int)first; i < N; i++)
        sl_stream_release(s[i]);
    cr_assert_eq(sl_streams_starting(&table), 0);
    for (int k = 0; k < 5; k++)
        turn();
    cr_assert_eq(nstarted, first);
    for (unsigned i = 0; i < first; i++)
        sl_stream_cancel(s[i], "client");
}
