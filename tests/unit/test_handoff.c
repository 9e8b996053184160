/*
 * Unit tests for src/net/handoff.c: two worker loops on two threads sharing a port. A
 * request for /to/N is handed to worker N when it lands elsewhere; every answer names the
 * worker that wrote it. Checked: the request arrives whole (method, target, headers, body,
 * a chunked body made whole), the bytes read after it (pipelined requests) move along,
 * the connection stays with its new worker for later requests, many connections all end
 * up on their owner, a stopping owner closes what it receives, and nothing leaks.
 */
#include "eio_harness.h"

#include "net/handoff.h"

struct app {
    struct sl_handoff *ho;
    int served; /* requests answered here (this thread only) */
};

static atomic_int handed_off;

static bool
admit(void *ud)
{
    (void)ud;
    return true;
}

static void
serve(void *ud, struct sl_conn *c)
{
    struct hv_worker *w = ud;
    sl_http_serve(&w->http, c);
}

static const struct sl_handoff_ops ops = {.admit = admit, .serve = serve};

static void
hv_setup(struct hv_worker *w)
{
    struct app *a = sl_calloc(1, sizeof(*a));
    a->ho = sl_handoff_new(w->loop, &w->pool, &ops, w);
    w->app = a;
}

static void
hv_request(struct hv_worker *w, struct sl_conn *c, struct sl_http_req *req)
{
    struct app *a = w->app;
    if (req->path.len == 5 && memcmp(req->path.ptr, "/to/", 4) == 0) {
        unsigned n = (unsigned)(req->path.ptr[4] - '0');
        if (n < HV.n && n != w->id) {
            atomic_fetch_add(&handed_off, 1);
            sl_handoff_request(a->ho, c, req, ((struct app *)HV.w[n].app)->ho);
            return;
        }
    }
    /* The answer: who, what, and the body and one header as received. */
    a->served++;
    struct sl_buf b = SL_BUF_INIT;
    struct sl_slice x = sl_http_get_header(req, "X-Test");
    sl_buf_printf(&b, "worker=%u %s %.*s x=%.*s body=%.*s", w->id, req->method,
                  (int)req->target.len, req->target.ptr, (int)x.len, x.ptr ? x.ptr : "",
                  (int)req->body.len, req->body.ptr);
    sl_http_respond(c, req, 200, "text/plain", NULL, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
}

static void
hv_stop(struct hv_worker *w)
{
    struct app *a = w->app;
    sl_handoff_stop(a->ho);
}

static void
hv_cleanup(struct hv_worker *w)
{
    struct app *a = w->app;
    sl_handoff_free(a->ho);
    free(a);
}

Test(handoff, a_request_reaches_its_owner_whole)
{
    atomic_store(&handed_off, 0);
    hv_start(2);
    int moved = 0;
    /* Until a connection has landed on worker 0 and was moved (SO_REUSEPORT decides). */
    for (int i = 0; i < 200 && moved == 0; i++) {
        int before = atomic_load(&handed_off);
        struct hc c;
        hc_open(&c);
        hc_request(&c, "POST", "/to/1?q=1", "X-Test: yes\r\n", "hello", 5);
        struct hresp r;
        cr_assert(hc_response(&c, &r));
        cr_assert_eq(r.status, 200);
        cr_assert_str_eq(sl_buf_ptr(&r.body), "worker=1 POST /to/1?q=1 x=yes body=hello");
        hresp_free(&r);
        moved = atomic_load(&handed_off) - before;
        if (moved) {
            /* The connection now belongs to worker 1: the next request goes there directly. */
            hc_request(&c, "GET", "/who", NULL, NULL, 0);
            cr_assert(hc_response(&c, &r));
            cr_assert_str_eq(sl_buf_ptr(&r.body), "worker=1 GET /who x= body=");
            hresp_free(&r);
            cr_assert_eq(atomic_load(&handed_off), before + 1);
        }
        hc_close(&c);
    }
    cr_assert_gt(moved, 0, "no connection ever landed on worker 0");
    hv_finish();
}

Test(handoff, pipelined_bytes_move_along)
{
    atomic_store(&handed_off, 0);
    hv_start(2);
    int moved = 0;
    for (int i = 0; i < 200 && moved == 0; i++) {
        int before = atomic_load(&handed_off);
        struct hc c;
        hc_open(&c);
        /* Three requests in one write, the first chunked: all read by the first worker. */
        static const char three[] =
            "POST /to/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            "GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
            "POST /third HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nxyz";
        hc_send(&c, three, sizeof(three) - 1);
        struct hresp r;
        cr_assert(hc_response(&c, &r));
        cr_assert_str_eq(sl_buf_ptr(&r.body), "worker=1 POST /to/1 x= body=abcde");
        hresp_free(&r);
        moved = atomic_load(&handed_off) - before;
        cr_assert(hc_response(&c, &r));
        if (moved)
            cr_assert_str_eq(sl_buf_ptr(&r.body), "worker=1 GET /second x= body=");
        hresp_free(&r);
        cr_assert(hc_response(&c, &r));
        if (moved)
            cr_assert_str_eq(sl_buf_ptr(&r.body), "worker=1 POST /third x= body=xyz");
        hresp_free(&r);
        hc_close(&c);
    }
    cr_assert_gt(moved, 0);
    hv_finish();
}

Test(handoff, many_connections_all_end_up_on_their_owner)
{
    atomic_store(&handed_off, 0);
    hv_start(2);
    enum { N = 100 };
    struct hc c[N];
    for (int i = 0; i < N; i++) {
        hc_open(&c[i]);
        char t[32];
        snprintf(t, sizeof(t), "/to/%d", i % 2);
        hc_request(&c[i], "GET", t, NULL, NULL, 0);
    }
    for (int i = 0; i < N; i++) {
        struct hresp r;
        cr_assert(hc_response(&c[i], &r), "connection %d got no answer", i);
        char want[64];
        snprintf(want, sizeof(want), "worker=%d GET /to/%d x= body=", i % 2, i % 2);
        cr_assert_str_eq(sl_buf_ptr(&r.body), want);
        hresp_free(&r);
        hc_close(&c[i]);
    }
    /* With 100 connections spread by the kernel, both directions happened. */
    cr_assert_gt(atomic_load(&handed_off), 0);
    hv_finish();
}

static void
stop_worker1(struct hv_worker *w, void *arg)
{
    (void)arg;
    struct app *a = w->app;
    sl_handoff_stop(a->ho);
}

Test(handoff, a_stopping_owner_closes_what_it_receives)
{
    atomic_store(&handed_off, 0);
    hv_start(2);
    hv_call(1, stop_worker1, NULL);
    int moved = 0;
    for (int i = 0; i < 200 && moved == 0; i++) {
        int before = atomic_load(&handed_off);
        struct hc c;
        hc_open(&c);
        hc_request(&c, "GET", "/to/1", NULL, NULL, 0);
        struct hresp r;
        bool answered = hc_response(&c, &r);
        moved = atomic_load(&handed_off) - before;
        if (moved)
            cr_assert_not(answered, "a stopping worker does not serve moved connections");
        else
            hresp_free(&r);
        hc_close(&c);
    }
    cr_assert_gt(moved, 0);
    hv_finish();
}
