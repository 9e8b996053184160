/*
 * The owner of transfers for the unit tests of the two HTTP clients (test_curl.c, test_h1.c):
 * a loop, the scripted server of uv_server.h, and the callbacks of struct sl_curl_xfer_cb
 * recording what a transfer delivered (head, body, its end or timeout, when). Both clients
 * share that interface; a test names its client's remove and pause through struct xclient.
 * A test's own context embeds struct xctx first (xctx_of() gets it back in callbacks).
 *
 * Not a test file of its own; included by the tests that need it.
 */
#ifndef SL_TESTS_XFER_HARNESS_H
#define SL_TESTS_XFER_HARNESS_H

#include <criterion/criterion.h>
#include <stdio.h>

#include "net/loop.h"
#include "upstream/curl.h"
#include "uv_server.h"

struct xclient {
    void (*remove)(void *x);
    void (*pause)(void *x, bool paused);
};

struct xctx {
    struct sl_loop *loop;
    uv_loop_t *uv;
    struct tsrv srv;
    const struct xclient *client;
    void *x; /* the transfer the flags below act on */
    struct sl_buf head, body;
    int headers, datas, ends, timeouts;
    CURLcode rc;
    char detail[256];
    enum sl_curl_timeout which;
    bool remove_on_first_data;
    bool pause_on_first_data; /* then resume 250 ms later (len_* record what arrived) */
    bool in_add;              /* inside the client's add: no callback may run */
    bool finished;
    bool wait_peer_closed; /* finished only once the server saw a connection end early */
    int expect_ends;       /* transfers to wait for (default 1) */
    uint64_t t_start, t_end;
    uv_timer_t check;
    size_t len_at_pause, len_while_paused;
    void (*after_end)(struct xctx *c, CURLcode rc); /* a test's own step after an on_end */
};

#define xctx_of(ud) ((struct xctx *)(ud))

static void
xctx_finish_if_done(struct xctx *c)
{
    if (c->finished || c->ends + c->timeouts < c->expect_ends)
        return;
    if (c->wait_peer_closed && c->srv.peer_closed == 0)
        return;
    c->finished = true;
    c->t_end = uv_now(c->uv);
    tsrv_stop(&c->srv);
    sl_loop_stop(c->loop);
}

static void
xctx_on_srv_event(struct tsrv *srv)
{
    xctx_finish_if_done(srv->ud);
}

static int
xctx_header(void *ud, const char *line, size_t len)
{
    struct xctx *c = ud;
    cr_assert(!c->in_add, "on_header from inside add");
    c->headers++;
    sl_buf_append(&c->head, line, len);
    return 0;
}

static void
xctx_on_check(uv_timer_t *t)
{
    struct xctx *c = t->data;
    c->len_while_paused = sl_buf_len(&c->body);
    c->client->pause(c->x, false);
}

static int
xctx_data(void *ud, const char *p, size_t len)
{
    struct xctx *c = ud;
    cr_assert(!c->in_add, "on_data from inside add");
    c->datas++;
    sl_buf_append(&c->body, p, len);
    if (c->datas == 1 && c->remove_on_first_data) {
        c->client->remove(c->x);
        c->x = NULL;
    }
    if (c->datas == 1 && c->pause_on_first_data) {
        c->client->pause(c->x, true);
        c->len_at_pause = sl_buf_len(&c->body);
        uv_timer_start(&c->check, xctx_on_check, 250, 0);
    }
    return 0;
}

static void
xctx_end(void *ud, CURLcode rc, const char *detail)
{
    struct xctx *c = ud;
    cr_assert(!c->in_add, "on_end from inside add");
    c->ends++;
    c->rc = rc;
    snprintf(c->detail, sizeof(c->detail), "%s", detail ? detail : "");
    c->x = NULL;
    if (c->after_end)
        c->after_end(c, rc);
    xctx_finish_if_done(c);
}

static void
xctx_timeout(void *ud, enum sl_curl_timeout which)
{
    struct xctx *c = ud;
    c->timeouts++;
    c->which = which;
    c->x = NULL;
    xctx_finish_if_done(c);
}

static const struct sl_curl_xfer_cb xctx_cb = {
    .on_header = xctx_header,
    .on_data = xctx_data,
    .on_end = xctx_end,
    .on_timeout = xctx_timeout,
};

/* A loop and the server; c (the test's whole context, xctx first) is zeroed first. */
static void
xctx_setup(struct xctx *c, size_t size, const struct xclient *client, const struct tstep *script,
           size_t n, bool hold)
{
    memset(c, 0, size);
    c->loop = sl_loop_new();
    c->uv = sl_loop_uv(c->loop);
    c->client = client;
    c->expect_ends = 1;
    tsrv_start(&c->srv, c->uv, script, n, hold);
    c->srv.on_event = xctx_on_srv_event;
    c->srv.ud = c;
    uv_timer_init(c->uv, &c->check);
    c->check.data = c;
    c->t_start = uv_now(c->uv);
}

static void
xctx_count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

/*
 * Runs the loop until the test finished, frees the client (free_client(arg), which runs the
 * loop to close its handles) and checks that no handle is left.
 */
static void
xctx_run(struct xctx *c, void (*free_client)(void *arg), void *arg)
{
    uv_run(c->uv, UV_RUN_DEFAULT);
    cr_assert(c->finished, "the loop ran out of work before the test finished");
    uv_close((uv_handle_t *)&c->check, NULL);
    free_client(arg);
    uv_run(c->uv, UV_RUN_DEFAULT);
    int open_handles = 0;
    uv_walk(c->uv, xctx_count_handle, &open_handles);
    cr_assert_eq(open_handles, 0, "a handle was left open");
    sl_loop_free(c->loop);
}

static void
xctx_free(struct xctx *c)
{
    sl_buf_free(&c->head);
    sl_buf_free(&c->body);
    tsrv_cleanup(&c->srv);
}

#endif
