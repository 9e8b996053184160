/*
 * Unit tests for src/upstream/curl (the libcurl multi <-> libuv glue), on a real loop
 * against the scripted server of uv_server.h: completion, removal from inside a curl
 * callback, first-byte and idle timeouts (and their lazy re-arming), pause and resume,
 * adding from inside a callback. Every test ends with the glue freed and no handle left on
 * the loop.
 */
#include <criterion/criterion.h>

#include "net/loop.h"
#include "upstream/curl.h"
#include "uv_server.h"

struct ctx {
    struct sl_loop *loop;
    uv_loop_t *uv;
    struct sl_curl *g;
    struct tsrv srv;
    struct sl_curl_xfer *x;
    struct sl_buf body;
    int headers, datas, ends, timeouts;
    CURLcode rc;
    enum sl_curl_timeout which;
    bool remove_on_first_data;
    bool pause_on_first_data;
    bool finished;
    int expect_ends; /* transfers to wait for (default 1) */
    bool wait_peer_closed;
    uint64_t t_start, t_end;
    uv_timer_t check; /* pause test: look while paused, then resume */
    size_t len_at_pause;
    size_t len_while_paused;
    struct sl_curl_xfer *second;
    struct sl_buf body2;
};

static void
finish_if_done(struct ctx *c)
{
    if (c->finished)
        return;
    if (c->ends + c->timeouts < c->expect_ends)
        return;
    if (c->wait_peer_closed && c->srv.peer_closed == 0)
        return;
    c->finished = true;
    c->t_end = uv_now(c->uv);
    tsrv_stop(&c->srv);
    sl_loop_stop(c->loop);
}

static void
on_srv_event(struct tsrv *srv)
{
    finish_if_done(srv->ud);
}

static int
x_header(void *ud, const char *line, size_t len)
{
    (void)line;
    (void)len;
    struct ctx *c = ud;
    c->headers++;
    return 0;
}

static void
on_check(uv_timer_t *t)
{
    struct ctx *c = t->data;
    c->len_while_paused = sl_buf_len(&c->body);
    sl_curl_pause(c->x, false);
}

static int
x_data(void *ud, const char *p, size_t len)
{
    struct ctx *c = ud;
    c->datas++;
    sl_buf_append(&c->body, p, len);
    if (c->datas == 1 && c->remove_on_first_data) {
        sl_curl_remove(c->x);
        c->x = NULL;
    }
    if (c->datas == 1 && c->pause_on_first_data) {
        sl_curl_pause(c->x, true);
        c->len_at_pause = sl_buf_len(&c->body);
        uv_timer_start(&c->check, on_check, 250, 0);
    }
    return 0;
}

static void
x_end(void *ud, CURLcode rc, const char *detail)
{
    (void)detail;
    struct ctx *c = ud;
    c->ends++;
    c->rc = rc;
    c->x = NULL;
    finish_if_done(c);
}

static void
x_timeout(void *ud, enum sl_curl_timeout which)
{
    struct ctx *c = ud;
    c->timeouts++;
    c->which = which;
    c->x = NULL;
    finish_if_done(c);
}

static const struct sl_curl_xfer_cb cb = {
    .on_header = x_header,
    .on_data = x_data,
    .on_end = x_end,
    .on_timeout = x_timeout,
};

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
setup(struct ctx *c, const struct tstep *script, size_t n, bool hold)
{
    memset(c, 0, sizeof(*c));
    c->loop = sl_loop_new();
    c->uv = sl_loop_uv(c->loop);
    c->g = sl_curl_new(c->loop, 4);
    c->expect_ends = 1;
    tsrv_start(&c->srv, c->uv, script, n, hold);
    c->srv.on_event = on_srv_event;
    c->srv.ud = c;
    uv_timer_init(c->uv, &c->check);
    c->check.data = c;
    c->t_start = uv_now(c->uv);
}

static void
count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

static void
run_and_teardown(struct ctx *c)
{
    uv_run(c->uv, UV_RUN_DEFAULT);
    cr_assert(c->finished, "the loop ran out of work before the test finished");
    uv_close((uv_handle_t *)&c->check, NULL);
    cr_assert_eq(sl_curl_active(c->g), 0);
    sl_curl_free(c->g);
    uv_run(c->uv, UV_RUN_DEFAULT);
    int open_handles = 0;
    uv_walk(c->uv, count_handle, &open_handles);
    cr_assert_eq(open_handles, 0, "a handle was left open");
    sl_loop_free(c->loop);
}

static void
ctx_free(struct ctx *c)
{
    sl_buf_free(&c->body);
    sl_buf_free(&c->body2);
    tsrv_cleanup(&c->srv);
}

Test(curl, a_transfer_completes)
{
    static const struct tstep script[] = {
        {HEAD_SSE, 0}, {"data: a\n\n", 10}, {"data: b\n\n", 10}};
    struct ctx c;
    setup(&c, script, 3, false);
    c.x = sl_curl_add(c.g, easy_for(c.srv.port), NULL, &cb, &c, 1000, 1000);
    cr_assert_eq(sl_curl_active(c.g), 1);
    run_and_teardown(&c);
    cr_assert_eq(c.ends, 1);
    cr_assert_eq(c.rc, CURLE_OK);
    cr_assert_eq(c.timeouts, 0);
    cr_assert(c.headers >= 3);
    cr_assert_str_eq(sl_buf_cstr(&c.body), "data: a\n\ndata: b\n\n");
    cr_assert_eq(c.srv.requests, 1);
    cr_assert(strstr(sl_buf_cstr(&c.srv.last_request), "POST /v1/x HTTP/1.1"));
    ctx_free(&c);
}

Test(curl, removal_inside_a_callback_stops_the_transfer)
{
    static const struct tstep script[] = {
        {HEAD_SSE "data: a\n\n", 0}, {"data: b\n\n", 300}, {"data: c\n\n", 300}};
    struct ctx c;
    setup(&c, script, 3, false);
    c.remove_on_first_data = true;
    c.expect_ends = 0;
    c.wait_peer_closed = true;
    c.x = sl_curl_add(c.g, easy_for(c.srv.port), NULL, &cb, &c, 1000, 1000);
    run_and_teardown(&c);
    cr_assert_eq(c.datas, 1, "no callback after the removal");
    cr_assert_eq(c.ends + c.timeouts, 0);
    cr_assert_eq(c.srv.peer_closed, 1, "the server saw the connection end");
    cr_assert(c.t_end - c.t_start < 250, "at once, not after the next write");
    ctx_free(&c);
}

Test(curl, first_byte_timeout)
{
    static const struct tstep script[] = {{HEAD_SSE, 5000}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.wait_peer_closed = true;
    c.x = sl_curl_add(c.g, easy_for(c.srv.port), NULL, &cb, &c, 100, 1000);
    run_and_teardown(&c);
    cr_assert_eq(c.timeouts, 1);
    cr_assert_eq(c.which, SL_CURL_TIMEOUT_FIRST_BYTE);
    cr_assert_eq(c.ends, 0);
    cr_assert(c.t_end - c.t_start >= 99 && c.t_end - c.t_start < 1000, "%llu ms",
              (unsigned long long)(c.t_end - c.t_start));
    ctx_free(&c);
}

Test(curl, idle_timeout_after_data)
{
    static const struct tstep script[] = {{HEAD_SSE "data: a\n\n", 0}, {"data: b\n\n", 5000}};
    struct ctx c;
    setup(&c, script, 2, false);
    c.wait_peer_closed = true;
    c.x = sl_curl_add(c.g, easy_for(c.srv.port), NULL, &cb, &c, 5000, 150);
    run_and_teardown(&c);
    cr_assert_eq(c.timeouts, 1);
    cr_assert_eq(c.which, SL_CURL_TIMEOUT_IDLE);
    cr_assert_str_eq(sl_buf_cstr(&c.body), "data: a\n\n");
    cr_assert(c.t_end - c.t_start >= 149, "%llu ms", (unsigned long long)(c.t_end - c.t_start));
    ctx_free(&c);
}

Test(curl, a_steady_stream_outlives_the_idle_timeout)
{
    static const struct tstep script[] = {
        {HEAD_SSE, 0},         {"data: 1\n\n", 60}, {"data: 2\n\n", 60}, {"data: 3\n\n", 60},
        {"data: 4\n\n", 60},   {"data: 5\n\n", 60}, {"data: 6\n\n", 60}, {"data: 7\n\n", 60}};
    struct ctx c;
    setup(&c, script, 8, false);
    c.x = sl_curl_add(c.g, easy_for(c.srv.port), NULL, &cb, &c, 1000, 150);
    run_and_teardown(&c);
    cr_assert_eq(c.timeouts, 0);
    cr_assert_eq(c.rc, CURLE_OK);
    cr_assert(c.t_end - c.t_start >= 400, "longer than the idle timeout in all");
    ctx_free(&c);
}

Test(curl, pause_holds_data_and_timeouts_until_resume)
{
    static const struct tstep script[] = {
        {HEAD_SSE "data: a\n\n", 0}, {"data: b\n\n", 40}, {"data: c\n\n", 40}};
    struct ctx c;
    setup(&c, script, 3, false);
    c.pause_on_first_data = true;
    /* an idle timeout shorter than the pause: paused transfers are not idle */
    c.x = sl_curl_add(c.g, easy_for(c.srv.port), NULL, &cb, &c, 1000, 120);
    run_and_teardown(&c);
    cr_assert_eq(c.timeouts, 0);
    cr_assert_eq(c.ends, 1);
    cr_assert_eq(c.rc, CURLE_OK);
    cr_assert_eq(c.len_while_paused, c.len_at_pause, "nothing delivered while paused");
    cr_assert_str_eq(sl_buf_cstr(&c.body), "data: a\n\ndata: b\n\ndata: c\n\n");
    ctx_free(&c);
}

/* Adding a transfer from inside another's callback is deferred until curl returns. */
static int
x_data_adds(void *ud, const char *p, size_t len);

static int
x2_data(void *ud, const char *p, size_t len)
{
    struct ctx *c = ud;
    sl_buf_append(&c->body2, p, len);
    return 0;
}

static const struct sl_curl_xfer_cb cb_adds = {
    .on_header = x_header,
    .on_data = x_data_adds,
    .on_end = x_end,
    .on_timeout = x_timeout,
};

static const struct sl_curl_xfer_cb cb_second = {
    .on_header = x_header,
    .on_data = x2_data,
    .on_end = x_end,
    .on_timeout = x_timeout,
};

static int
x_data_adds(void *ud, const char *p, size_t len)
{
    struct ctx *c = ud;
    sl_buf_append(&c->body, p, len);
    if (c->second == NULL)
        c->second = sl_curl_add(c->g, easy_for(c->srv.port), NULL, &cb_second, c, 1000, 1000);
    return 0;
}

Test(curl, adding_inside_a_callback)
{
    static const struct tstep script[] = {{HEAD_SSE "data: x\n\n", 0}, {"data: y\n\n", 50}};
    struct ctx c;
    setup(&c, script, 2, false);
    c.expect_ends = 2;
    c.x = sl_curl_add(c.g, easy_for(c.srv.port), NULL, &cb_adds, &c, 1000, 1000);
    run_and_teardown(&c);
    cr_assert_eq(c.ends, 2);
    cr_assert_eq(c.srv.requests, 2);
    cr_assert_str_eq(sl_buf_cstr(&c.body), "data: x\n\ndata: y\n\n");
    cr_assert_str_eq(sl_buf_cstr(&c.body2), "data: x\n\ndata: y\n\n");
    ctx_free(&c);
}

Test(curl, connection_refused_ends_with_an_error)
{
    static const struct tstep script[] = {{HEAD_SSE, 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.x = sl_curl_add(c.g, easy_for(1), NULL, &cb, &c, 1000, 1000);
    run_and_teardown(&c);
    cr_assert_eq(c.ends, 1);
    cr_assert_eq(c.rc, CURLE_COULDNT_CONNECT);
    ctx_free(&c);
}
