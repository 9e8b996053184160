/*
 * The owner of transfers for the unit tests of the two HTTP clients (test_curl.c, test_h1.c):
 * a loop, the scripted server of uv_server.h, and the callbacks of struct sl_curl_xfer_cb
 * recording what a transfer delivered (head, body, its end or timeout, when). Both clients
 * share that interface; a test names its client's remove and pause through struct xclient.
 * A test's own context embeds struct xctx first. The scenarios at the end are the contract
 * both clients keep (removal, timeouts, pause), run by each test file on its own client.
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

/* --- the transfer contract both clients keep ---------------------------------------------- */

/*
 * A client under test: its test file's context (size bytes, struct xctx first), set up,
 * started, run and freed by the file's own functions.
 */
struct xsuite {
    size_t size;
    void (*setup)(void *c, const struct tstep *script, size_t n, bool hold);
    /* A transfer to the server (into c->x) with these timeouts. */
    void (*start)(struct xctx *c, uint64_t first_byte_ms, uint64_t idle_ms);
    void (*run)(void *c);  /* xctx_run with the client */
    void (*free)(void *c); /* after run: what the context holds (not the context) */
};

static struct xctx *
xsuite_make(const struct xsuite *s, const struct tstep *script, size_t n, bool hold)
{
    struct xctx *c = sl_malloc(s->size);
    s->setup(c, script, n, hold);
    return c;
}

static void
xsuite_destroy(const struct xsuite *s, struct xctx *c)
{
    s->free(c);
    free(c);
}

/* Removal from inside on_data: no callback after it, and the server sees the request end. */
static void
xscenario_removal_inside_a_callback(const struct xsuite *s)
{
    static const struct tstep script[] = {
        {HEAD_SSE "data: a\n\n", 0}, {"data: b\n\n", 300}, {"data: c\n\n", 300}};
    struct xctx *c = xsuite_make(s, script, 3, false);
    c->remove_on_first_data = true;
    c->expect_ends = 0;
    c->wait_peer_closed = true;
    s->start(c, 1000, 1000);
    s->run(c);
    cr_assert_eq(c->datas, 1, "no callback after the removal");
    cr_assert_eq(c->ends + c->timeouts, 0);
    cr_assert_eq(c->srv.peer_closed, 1, "the server saw the connection end");
    cr_assert(c->t_end - c->t_start < 250, "at once, not after the next write");
    xsuite_destroy(s, c);
}

static void
xscenario_first_byte_timeout(const struct xsuite *s)
{
    static const struct tstep script[] = {{HEAD_SSE, 5000}};
    struct xctx *c = xsuite_make(s, script, 1, false);
    c->wait_peer_closed = true;
    s->start(c, 100, 1000);
    s->run(c);
    cr_assert_eq(c->timeouts, 1);
    cr_assert_eq(c->which, SL_CURL_TIMEOUT_FIRST_BYTE);
    cr_assert_eq(c->ends, 0);
    cr_assert(c->t_end - c->t_start >= 99 && c->t_end - c->t_start < 1000, "%llu ms",
              (unsigned long long)(c->t_end - c->t_start));
    xsuite_destroy(s, c);
}

static void
xscenario_idle_timeout_after_data(const struct xsuite *s)
{
    static const struct tstep script[] = {{HEAD_SSE "data: a\n\n", 0}, {"data: b\n\n", 5000}};
    struct xctx *c = xsuite_make(s, script, 2, false);
    c->wait_peer_closed = true;
    s->start(c, 5000, 150);
    s->run(c);
    cr_assert_eq(c->timeouts, 1);
    cr_assert_eq(c->which, SL_CURL_TIMEOUT_IDLE);
    cr_assert_str_eq(sl_buf_cstr(&c->body), "data: a\n\n");
    cr_assert(c->t_end - c->t_start >= 149, "%llu ms", (unsigned long long)(c->t_end - c->t_start));
    xsuite_destroy(s, c);
}

/* The idle timeout is re-armed lazily: a stream with short gaps lives longer than it. */
static void
xscenario_a_steady_stream_outlives_the_idle_timeout(const struct xsuite *s)
{
    static const struct tstep script[] = {
        {HEAD_SSE, 0},       {"data: 1\n\n", 60}, {"data: 2\n\n", 60}, {"data: 3\n\n", 60},
        {"data: 4\n\n", 60}, {"data: 5\n\n", 60}, {"data: 6\n\n", 60}, {"data: 7\n\n", 60}};
    struct xctx *c = xsuite_make(s, script, 8, false);
    s->start(c, 1000, 150);
    s->run(c);
    cr_assert_eq(c->timeouts, 0);
    cr_assert_eq(c->rc, CURLE_OK, "%s", c->detail);
    cr_assert(c->t_end - c->t_start >= 400, "longer than the idle timeout in all");
    xsuite_destroy(s, c);
}

static void
xscenario_pause_holds_data_and_timeouts_until_resume(const struct xsuite *s)
{
    static const struct tstep script[] = {
        {HEAD_SSE "data: a\n\n", 0}, {"data: b\n\n", 40}, {"data: c\n\n", 40}};
    struct xctx *c = xsuite_make(s, script, 3, false);
    c->pause_on_first_data = true;
    /* an idle timeout shorter than the pause: paused transfers are not idle */
    s->start(c, 1000, 120);
    s->run(c);
    cr_assert_eq(c->timeouts, 0);
    cr_assert_eq(c->ends, 1);
    cr_assert_eq(c->rc, CURLE_OK, "%s", c->detail);
    cr_assert_eq(c->len_while_paused, c->len_at_pause, "nothing delivered while paused");
    cr_assert_str_eq(sl_buf_cstr(&c->body), "data: a\n\ndata: b\n\ndata: c\n\n");
    xsuite_destroy(s, c);
}

#endif
