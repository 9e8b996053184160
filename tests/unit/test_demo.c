/*
 * Unit tests for src/upstream/demo, on a real loop: a whole answer, and the real
 * ops->cancel from inside each of its sink callbacks (every delta, the usage report just
 * before on_done): nothing follows a cancel and active_calls drops to 0 once, never below.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <uv.h>

#include "config/config.h"
#include "net/loop.h"
#include "upstream/demo.h"
#include "upstream/upstream.h"

struct dctx {
    struct sl_loop *loop;
    struct sl_config cfg;
    struct sl_config_provider prov;
    struct sl_upstream *up;
    struct sl_chat_req req;
    void *call;
    int deltas, usages, terminals;
    int cancel_at_delta; /* 1-based; 0: never */
    bool cancel_at_usage;
    bool after_cancel;
    unsigned active_after_cancel;
};

static void
cancel_here(struct dctx *c)
{
    sl_provider_demo.cancel(c->call);
    c->call = NULL;
    c->active_after_cancel = c->up->active_calls;
    sl_loop_stop(c->loop);
}

static void
d_delta(void *ud, const char *text, size_t len)
{
    (void)text, (void)len;
    struct dctx *c = ud;
    c->after_cancel |= c->call == NULL;
    if (++c->deltas == c->cancel_at_delta)
        cancel_here(c);
}

static void
d_tool(void *ud, const struct sl_tool_delta *t)
{
    (void)ud, (void)t;
    cr_assert_fail("the demo model calls no tool");
}

static void
d_usage(void *ud, const struct sl_usage *u)
{
    (void)u;
    struct dctx *c = ud;
    c->after_cancel |= c->call == NULL;
    c->usages++;
    if (c->cancel_at_usage)
        cancel_here(c);
}

static void
d_done(void *ud, enum sl_finish f, const char *native)
{
    (void)f, (void)native;
    struct dctx *c = ud;
    c->after_cancel |= c->call == NULL;
    c->terminals++;
    c->call = NULL;
    sl_loop_stop(c->loop);
}

static void
d_error(void *ud, const struct sl_upstream_error *e)
{
    (void)e;
    struct dctx *c = ud;
    c->after_cancel |= c->call == NULL;
    c->terminals++;
    c->call = NULL;
    sl_loop_stop(c->loop);
}

static const struct sl_upstream_sink dsink = {
    .on_delta = d_delta,
    .on_tool_delta = d_tool,
    .on_usage = d_usage,
    .on_done = d_done,
    .on_error = d_error,
};

static void
count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

/* Runs one answer of 3 tokens, all in one timer tick, with the given cancel. */
static void
run(struct dctx *c, int cancel_at_delta, bool cancel_at_usage)
{
    memset(c, 0, sizeof(*c));
    c->loop = sl_loop_new();
    c->prov.name = (char *)"demo";
    c->prov.kind = SL_PROVIDER_DEMO;
    c->prov.demo_tokens_per_second = 0; /* every token in the first tick */
    c->cfg.providers = &c->prov;
    c->cfg.nproviders = 1;
    c->up = sl_upstream_new(c->loop, &c->cfg);
    c->req.messages = json_pack("[{s:s,s:s}]", "role", "user", "content", "hello there");
    c->req.max_tokens = -1;
    c->cancel_at_delta = cancel_at_delta;
    c->cancel_at_usage = cancel_at_usage;
    struct sl_call_params p = {
        .req = &c->req, .provider = &c->prov, .upstream_model = "demo", .max_tokens = 3};
    struct sl_upstream_error err = {0};
    c->call = sl_provider_demo.start(c->up, &p, &dsink, c, &err);
    cr_assert_not_null(c->call);
    cr_assert_eq(c->up->active_calls, 1);
    uv_run(sl_loop_uv(c->loop), UV_RUN_DEFAULT);
    cr_assert_eq(c->up->active_calls, 0);
    sl_upstream_free(c->up);
    uv_run(sl_loop_uv(c->loop), UV_RUN_DEFAULT); /* the call's timer closes */
    int open_handles = 0;
    uv_walk(sl_loop_uv(c->loop), count_handle, &open_handles);
    cr_assert_eq(open_handles, 0);
    sl_loop_free(c->loop);
    json_decref(c->req.messages);
}

Test(demo, a_whole_answer)
{
    struct dctx c;
    run(&c, 0, false);
    cr_assert_eq(c.deltas, 3);
    cr_assert_eq(c.usages, 1);
    cr_assert_eq(c.terminals, 1);
}

Test(demo, cancel_from_inside_every_callback)
{
    for (int k = 1; k <= 4; k++) {
        struct dctx c;
        bool at_usage = k == 4;
        run(&c, at_usage ? 0 : k, at_usage);
        cr_assert_eq(c.deltas, at_usage ? 3 : k, "position %d", k);
        cr_assert_eq(c.usages, at_usage ? 1 : 0, "position %d", k);
        cr_assert_eq(c.terminals, 0, "position %d: a terminal after the cancel", k);
        cr_assert(!c.after_cancel, "position %d", k);
        cr_assert_eq(c.active_after_cancel, 0, "position %d", k);
    }
}
