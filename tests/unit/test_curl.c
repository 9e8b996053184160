/*
 * Unit tests for src/upstream/curl (the libcurl multi <-> libuv glue), on a real loop
 * against the scripted server of uv_server.h: completion, adding from inside a callback, a
 * refused connection, and the transfer contract shared with h1.c (xfer_harness.h: removal
 * from inside a callback, first-byte and idle timeouts with their lazy re-arming, pause). Every
 * test ends with the glue freed and no handle left on the loop.
 */
#include <criterion/criterion.h>

#include "net/loop.h"
#include "upstream/curl.h"
#include "xfer_harness.h"

struct ctx {
    struct xctx t; /* first: the callbacks get it as ud */
    struct sl_curl *g;
    struct sl_curl_xfer *second;
    struct sl_buf body2;
};

static void
curl_remove(void *x)
{
    sl_curl_remove(x);
}

static void
curl_pause(void *x, bool paused)
{
    sl_curl_pause(x, paused);
}

static const struct xclient curl_client = {.remove = curl_remove, .pause = curl_pause};

static CURL *
easy_for(int port)
{
    CURL *e = curl_easy_init();
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/x", port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, "{}");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    return e;
}

static void
setup(void *arg, const struct tstep *script, size_t n, bool hold)
{
    struct ctx *c = arg;
    xctx_setup(&c->t, sizeof(*c), &curl_client, script, n, hold);
    c->g = sl_curl_new(c->t.loop, 4);
}

static void
free_client(void *arg)
{
    cr_assert_eq(sl_curl_active(arg), 0);
    sl_curl_free(arg);
}

static void
run_and_teardown(void *arg)
{
    struct ctx *c = arg;
    xctx_run(&c->t, free_client, c->g);
}

static void
ctx_free(void *arg)
{
    struct ctx *c = arg;
    sl_buf_free(&c->body2);
    xctx_free(&c->t);
}

/* The shared contract (xfer_harness.h) through this client. */
static void
suite_start(struct xctx *t, uint64_t first_byte_ms, uint64_t idle_ms)
{
    struct ctx *c = (struct ctx *)t;
    t->x = sl_curl_add(c->g, easy_for(t->srv.port), NULL, &xctx_cb, t, first_byte_ms, idle_ms);
}

static const struct xsuite suite = {sizeof(struct ctx), setup, suite_start, run_and_teardown,
                                    ctx_free};

Test(curl, removal_inside_a_callback_stops_the_transfer)
{
    xscenario_removal_inside_a_callback(&suite);
}

Test(curl, first_byte_timeout)
{
    xscenario_first_byte_timeout(&suite);
}

Test(curl, idle_timeout_after_data)
{
    xscenario_idle_timeout_after_data(&suite);
}

Test(curl, a_steady_stream_outlives_the_idle_timeout)
{
    xscenario_a_steady_stream_outlives_the_idle_timeout(&suite);
}

Test(curl, pause_holds_data_and_timeouts_until_resume)
{
    xscenario_pause_holds_data_and_timeouts_until_resume(&suite);
}

Test(curl, a_transfer_completes)
{
    static const struct tstep script[] = {{HEAD_SSE, 0}, {"data: a\n\n", 10}, {"data: b\n\n", 10}};
    struct ctx c;
    setup(&c, script, 3, false);
    c.t.x = sl_curl_add(c.g, easy_for(c.t.srv.port), NULL, &xctx_cb, &c.t, 1000, 1000);
    cr_assert_eq(sl_curl_active(c.g), 1);
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 1);
    cr_assert_eq(c.t.rc, CURLE_OK);
    cr_assert_eq(c.t.timeouts, 0);
    cr_assert(c.t.headers >= 3);
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "data: a\n\ndata: b\n\n");
    cr_assert_eq(c.t.srv.requests, 1);
    cr_assert(strstr(sl_buf_cstr(&c.t.srv.last_request), "POST /v1/x HTTP/1.1"));
    ctx_free(&c);
}

/* Adding a transfer from inside another's callback is deferred until curl returns. */
static int x_data_adds(void *ud, const char *p, size_t len);

static int
x2_data(void *ud, const char *p, size_t len)
{
    struct ctx *c = ud;
    sl_buf_append(&c->body2, p, len);
    return 0;
}

static const struct sl_curl_xfer_cb cb_adds = {
    .on_header = xctx_header,
    .on_data = x_data_adds,
    .on_end = xctx_end,
    .on_timeout = xctx_timeout,
};

static const struct sl_curl_xfer_cb cb_second = {
    .on_header = xctx_header,
    .on_data = x2_data,
    .on_end = xctx_end,
    .on_timeout = xctx_timeout,
};

static int
x_data_adds(void *ud, const char *p, size_t len)
{
    struct ctx *c = ud;
    sl_buf_append(&c->t.body, p, len);
    if (c->second == NULL)
        c->second = sl_curl_add(c->g, easy_for(c->t.srv.port), NULL, &cb_second, c, 1000, 1000);
    return 0;
}

Test(curl, adding_inside_a_callback)
{
    static const struct tstep script[] = {{HEAD_SSE "data: x\n\n", 0}, {"data: y\n\n", 50}};
    struct ctx c;
    setup(&c, script, 2, false);
    c.t.expect_ends = 2;
    c.t.x = sl_curl_add(c.g, easy_for(c.t.srv.port), NULL, &cb_adds, &c, 1000, 1000);
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 2);
    cr_assert_eq(c.t.srv.requests, 2);
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "data: x\n\ndata: y\n\n");
    cr_assert_str_eq(sl_buf_cstr(&c.body2), "data: x\n\ndata: y\n\n");
    ctx_free(&c);
}

Test(curl, connection_refused_ends_with_an_error)
{
    static const struct tstep script[] = {{HEAD_SSE, 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.t.x = sl_curl_add(c.g, easy_for(1), NULL, &xctx_cb, &c.t, 1000, 1000);
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 1);
    cr_assert_eq(c.t.rc, CURLE_COULDNT_CONNECT);
    ctx_free(&c);
}
