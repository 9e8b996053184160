/*
 * Unit tests for src/net/http (with src/net/conn), on a real loop and real TCP connections:
 * a client socket on the same loop talks to the server side, so every byte crosses the
 * kernel. Synchronous responses, held responses with a Content-Length and chunked bodies,
 * pipelining behind a held response (and the input cap), a client that goes away
 * mid-response (reported once), HTTP/1.0, HEAD, 100-continue, backpressure and the drain
 * notification, explicit flushes, resets, and the limits (414, 431, 413, 400, 408, 505).
 * The head callback's decisions on bodies (none, a route's own limit, a refusal of its own),
 * the body timeout, a connection accepted over capacity (one answer), and a client that
 * pipelines without reading: answers wait while the output is over its cap, come in order
 * once it reads, and one that never reads (on a thread, 4 KiB receive window) is reset after
 * the send timeout while another client is served.
 *
 * The test includes http.c to look at the kept input and paused reading.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "net/conn.h"
#include "net/http.c"
#include "net/loop.h"

#define DEADLINE_MS 10000

struct client {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct sl_buf got;
    bool connected, eof, closed, reading;
    int error; /* a read error such as UV_ECONNRESET */
};

struct held {
    struct sl_http_resp *r;
    int drains, closes;
    bool aborted;
    bool end_on_drain;   /* end the response from inside its on_drain */
    bool write_on_drain; /* write another piece from every on_drain */
};

struct ctx {
    struct sl_loop *loop;
    uv_loop_t *uv;
    struct sl_conn_pool pool;
    struct sl_http_server http;
    uv_tcp_t listener;
    uv_timer_t deadline;
    int port;
    struct client cl;

    /* what the application saw */
    int requests;
    char paths[8][64];
    struct held held[4];
    int nheld;
    struct sl_conn *last_conn;
    bool in_http_call; /* set around calls into the layer: on_close must not come inside */
    bool close_inside; /* on_close came from inside a call */
    int heads;         /* head callbacks */
    int over_capacity_seen;
    size_t max_queued;          /* the most queued on a connection right after a /big answer */
    size_t check_cap;           /* if set, fail at once when a /big answer leaves more queued */
    struct sl_conn *flood_conn; /* the connection asking for /big */
    bool accept_over_capacity;  /* serve new connections as past the connection limit */
};

static struct ctx T;

/* --- the application -------------------------------------------------------------------- */

static void
on_resp_drain(void *ud, struct sl_http_resp *r)
{
    struct held *hd = ud;
    cr_assert_eq(hd->r, r);
    hd->drains++;
    if (hd->write_on_drain) {
        static const char piece[64] = "0123456789";
        sl_http_body(r, piece, sizeof(piece));
    }
    if (hd->end_on_drain) {
        hd->write_on_drain = false;
        hd->end_on_drain = false;
        sl_http_body(r, "last", 4);
        sl_http_end(r, false);
    }
}

static void
on_resp_close(void *ud, struct sl_http_resp *r, bool aborted)
{
    struct held *hd = ud;
    cr_assert_eq(hd->r, r);
    if (T.in_http_call)
        T.close_inside = true;
    hd->closes++;
    hd->aborted = aborted;
    hd->r = NULL;
}

static const struct sl_http_resp_handler resp_handler = {
    .on_drain = on_resp_drain,
    .on_close = on_resp_close,
};

/* The routes' say on bodies: /nobody takes none, /small at most 16 bytes, /refuse is
 * refused at its head with 405; the others take up to the server's limit. */
static void
on_head(void *ud, const struct sl_http_req *head, struct sl_http_head_verdict *v)
{
    struct ctx *t = ud;
    t->heads++;
    if (sl_slice_eq(head->path, "/nobody"))
        v->max_body = 0;
    else if (sl_slice_eq(head->path, "/small"))
        v->max_body = 16;
    else if (sl_slice_eq(head->path, "/refuse")) {
        v->status = 405;
        v->message = "method not allowed";
        v->headers = "Allow: GET\r\n";
    }
}

#define BIG_BODY (16 * 1024)

static void
on_request(void *ud, struct sl_conn *c, struct sl_http_req *req)
{
    struct ctx *t = ud;
    if (t->requests < 8)
        snprintf(t->paths[t->requests], sizeof(t->paths[0]), "%.*s", (int)req->path.len,
                 req->path.ptr);
    t->requests++;
    t->last_conn = c;
    /* Paths starting with /h are held, the others answered at once. */
    if (req->path.len >= 2 && memcmp(req->path.ptr, "/h", 2) == 0) {
        cr_assert_lt(t->nheld, 4);
        struct held *hd = &t->held[t->nheld++];
        hd->r = sl_http_hold(c, req, &resp_handler, hd);
        return;
    }
    t->over_capacity_seen += req->over_capacity;
    /* /big...: the path padded to 16 KiB, so that a flood of them amplifies. */
    if (req->path.len >= 4 && memcmp(req->path.ptr, "/big", 4) == 0) {
        static char body[BIG_BODY];
        memset(body, '.', sizeof(body));
        memcpy(body, req->path.ptr, req->path.len < 64 ? req->path.len : 64);
        sl_http_respond(c, req, 200, "text/plain", NULL, body, sizeof(body));
        t->flood_conn = c;
        if (sl_conn_queued(c) > t->max_queued)
            t->max_queued = sl_conn_queued(c);
        if (t->check_cap)
            cr_assert_leq(sl_conn_queued(c), t->check_cap, "%zu bytes queued", sl_conn_queued(c));
        return;
    }
    /* Answer with the path, so that the order of pipelined answers shows. */
    sl_http_respond(c, req, 200, "text/plain", NULL, req->path.ptr, req->path.len);
}

/* --- the client ------------------------------------------------------------------------- */

static void
cl_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char rbuf[64 * 1024];
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void
cl_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct client *cl = s->data;
    if (n > 0)
        sl_buf_append(&cl->got, buf->base, (size_t)n);
    else if (n == UV_EOF)
        cl->eof = true;
    else if (n < 0)
        cl->error = (int)n;
    if (n < 0) {
        uv_read_stop(s);
        cl->reading = false;
    }
}

static void
cl_start_reading(struct client *cl)
{
    if (!cl->reading && !cl->closed) {
        uv_read_start((uv_stream_t *)&cl->tcp, cl_alloc, cl_read);
        cl->reading = true;
    }
}

static void
on_connected(uv_connect_t *req, int status)
{
    struct client *cl = req->data;
    cr_assert_eq(status, 0, "connect: %s", uv_strerror(status));
    cl->connected = true;
}

static void
cl_closed(uv_handle_t *h)
{
    (void)h;
}

static void
cl_close(struct client *cl, bool reset)
{
    if (cl->closed)
        return;
    cl->closed = true;
    if (!reset || uv_tcp_close_reset(&cl->tcp, cl_closed) != 0)
        uv_close((uv_handle_t *)&cl->tcp, cl_closed);
}

struct wreq {
    uv_write_t req;
    char *data;
};

static void
cl_written(uv_write_t *req, int status)
{
    (void)status;
    struct wreq *w = (struct wreq *)req;
    free(w->data);
    free(w);
}

static void
cl_send_n(struct client *cl, const char *s, size_t n)
{
    struct wreq *w = sl_malloc(sizeof(*w));
    w->data = sl_malloc(n);
    memcpy(w->data, s, n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    cr_assert_eq(uv_write(&w->req, (uv_stream_t *)&cl->tcp, &b, 1, cl_written), 0);
}

static void
cl_send(struct client *cl, const char *s)
{
    cl_send_n(cl, s, strlen(s));
}

static const char *
got(void)
{
    return sl_buf_cstr(&T.cl.got);
}

static size_t
count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* --- the loop ----------------------------------------------------------------------------- */

static void
on_deadline(uv_timer_t *t)
{
    (void)t;
    cr_assert_fail("deadline: the awaited event never came (got so far: %s)", got());
}

/* Runs the loop until cond holds; the deadline fails the test instead of hanging it. */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        while (!(cond))                                                                            \
            uv_run(T.uv, UV_RUN_ONCE);                                                             \
    } while (0)

static void
on_accept(uv_stream_t *server, int status)
{
    cr_assert_eq(status, 0);
    struct sl_conn *c = sl_conn_accept(&T.pool, server);
    cr_assert_not_null(c);
    if (T.accept_over_capacity)
        sl_http_serve_over_capacity(&T.http, c);
    else
        sl_http_serve(&T.http, c);
}

static void
setup_full(uint64_t header_timeout_ms, uint64_t body_timeout_ms,
           const struct sl_conn_limits *conn_limits)
{
    bool over = T.accept_over_capacity;
    memset(&T, 0, sizeof(T));
    T.accept_over_capacity = over;
    T.loop = sl_loop_new();
    T.uv = sl_loop_uv(T.loop);
    sl_conn_pool_init(&T.pool, T.loop);
    if (conn_limits)
        sl_conn_pool_set_limits(&T.pool, conn_limits);
    struct sl_http_limits lim = {
        .max_header_bytes = 2048,
        .max_url_bytes = 512,
        .max_body_bytes = 1024,
        .header_timeout_ms = header_timeout_ms,
        .body_timeout_ms = body_timeout_ms,
        .keepalive_timeout_ms = 60000,
    };
    sl_http_server_init(&T.http, T.loop, &lim, on_request, &T);
    sl_http_server_on_head(&T.http, on_head);

    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(T.uv, &T.listener);
    cr_assert_eq(uv_tcp_bind(&T.listener, (const struct sockaddr *)&addr, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&T.listener, 16, on_accept), 0);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&T.listener, (struct sockaddr *)&ss, &len);
    T.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);

    uv_timer_init(T.uv, &T.deadline);
    uv_timer_start(&T.deadline, on_deadline, DEADLINE_MS, 0);

    uv_tcp_init(T.uv, &T.cl.tcp);
    T.cl.tcp.data = &T.cl;
    T.cl.creq.data = &T.cl;
    uv_ip4_addr("127.0.0.1", T.port, &addr);
    uv_tcp_connect(&T.cl.creq, &T.cl.tcp, (const struct sockaddr *)&addr, on_connected);
    RUN_UNTIL(T.cl.connected && T.pool.count == 1);
    cl_start_reading(&T.cl);
}

static void
setup_with(uint64_t header_timeout_ms)
{
    setup_full(header_timeout_ms, 0, NULL);
}

static void
setup(void)
{
    setup_with(10000);
}

static void
abort_conn(struct sl_conn *c, void *arg)
{
    (void)arg;
    sl_conn_abort(c);
}

static int
count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    return ++*(int *)arg;
}

static void
walk_count(uv_handle_t *h, void *arg)
{
    count_handle(h, arg);
}

static void
teardown(void)
{
    cl_close(&T.cl, false);
    sl_conn_pool_foreach(&T.pool, abort_conn, NULL);
    uv_close((uv_handle_t *)&T.listener, NULL);
    uv_close((uv_handle_t *)&T.deadline, NULL);
    sl_loop_stop(T.loop);
    sl_loop_run(T.loop);
    int open = 0;
    uv_walk(T.uv, walk_count, &open);
    cr_assert_eq(open, 0, "every handle is closed");
    cr_assert_eq(T.pool.count, 0);
    cr_assert_not(T.close_inside, "on_close never runs inside a call into the layer");
    for (int i = 0; i < T.nheld; i++)
        cr_assert_eq(T.held[i].closes, 1, "response %d: on_close exactly once", i);
    sl_buf_free(&T.cl.got);
    sl_loop_free(T.loop);
}

/* Calls into the layer from the test body, flagged so that on_close would be caught. */
#define CALL(expr)                                                                                 \
    do {                                                                                           \
        T.in_http_call = true;                                                                     \
        expr;                                                                                      \
        T.in_http_call = false;                                                                    \
    } while (0)

static struct http_conn *
server_http(void)
{
    cr_assert_not_null(T.last_conn);
    return sl_conn_state(T.last_conn);
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: x\r\n\r\n"
#define HEAD_OK(ctype) "HTTP/1.1 200 OK\r\nServer: sluice\r\nContent-Type: " ctype "\r\n"

/* --- helpers without a socket --------------------------------------------------------------- */

Test(http_pure, query_and_percent_decoding)
{
    char out[64];
    struct sl_slice q = SL_SLICE("alt=sse&match=a%20b+c%2B&flag&key=");
    cr_assert_eq(sl_http_query_get(q, "alt", out, sizeof(out)), 3);
    cr_assert_str_eq(out, "sse");
    cr_assert_eq(sl_http_query_get(q, "match", out, sizeof(out)), 6);
    cr_assert_str_eq(out, "a b c+");
    cr_assert_eq(sl_http_query_get(q, "flag", out, sizeof(out)), 0);
    cr_assert_eq(sl_http_query_get(q, "key", out, sizeof(out)), 0);
    cr_assert_eq(sl_http_query_get(q, "al", out, sizeof(out)), -1);
    cr_assert_eq(sl_http_query_get(SL_SLICE(""), "alt", out, sizeof(out)), -1);
    cr_assert_eq(sl_http_query_get(SL_SLICE("x=%4"), "x", out, sizeof(out)), -2);
    cr_assert_eq(sl_http_query_get(SL_SLICE("x=%zz"), "x", out, sizeof(out)), -2);
    cr_assert_eq(sl_http_query_get(SL_SLICE("x=%00"), "x", out, sizeof(out)), -2, "encoded NUL");
    cr_assert_eq(sl_http_query_get(SL_SLICE("x=abcdef"), "x", out, 4), -2, "does not fit");

    cr_assert_eq(sl_http_decode(SL_SLICE("a+b%3A"), out, sizeof(out), false), 4);
    cr_assert_str_eq(out, "a+b:");
    cr_assert_eq(sl_http_decode(SL_SLICE("a+b%3a"), out, sizeof(out), true), 4);
    cr_assert_str_eq(out, "a b:");
}

Test(http_pure, status_texts)
{
    cr_assert_str_eq(sl_http_status_text(200), "OK");
    cr_assert_str_eq(sl_http_status_text(100), "Continue");
    cr_assert_str_eq(sl_http_status_text(529), "Site Overloaded");
    cr_assert_str_eq(sl_http_status_text(299), "Unknown");
}

/* --- synchronous responses ------------------------------------------------------------- */

Test(http, sync_responses_keep_alive_and_pipeline, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/a"));
    const char *one = HEAD_OK("text/plain") "Content-Length: 2\r\n\r\n/a";
    RUN_UNTIL(strlen(got()) >= strlen(one));
    cr_assert_str_eq(got(), one);
    cl_send(&T.cl, GET("/b") GET("/c") GET("/d"));
    RUN_UNTIL(count(got(), "HTTP/1.1 200") == 4);
    RUN_UNTIL(strstr(got(), "\r\n\r\n/d") != NULL);
    cr_assert(strstr(got(), "/b") < strstr(got(), "/c") &&
              strstr(got(), "/c") < strstr(got(), "/d"));
    cr_assert_eq(T.requests, 4);
    cr_assert_not(T.cl.eof, "keep-alive");
}

Test(http, sync_error_closes, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    RUN_UNTIL(T.cl.eof);
    cr_assert_str_eq(got(),
                     HEAD_OK("text/plain") "Content-Length: 2\r\nConnection: close\r\n\r\n/a");
}

/* --- held responses ------------------------------------------------------------------------ */

Test(http, held_with_content_length, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/h"));
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    /* Held: nothing is written until the application speaks. */
    for (int i = 0; i < 3; i++)
        uv_run(T.uv, UV_RUN_NOWAIT);
    cr_assert_str_eq(got(), "");

    CALL(sl_http_head(hd->r, 200, "text/plain", "X-A: 1\r\n", 10));
    CALL(sl_http_body(hd->r, "hello", 5));
    RUN_UNTIL(strstr(got(), "hello") != NULL);
    cr_assert_str_eq(got(), HEAD_OK("text/plain") "Content-Length: 10\r\nX-A: 1\r\n\r\nhello");
    cr_assert_geq(hd->drains, 1, "drained after the first piece");
    CALL(sl_http_body(hd->r, "world", 5));
    CALL(sl_http_end(hd->r, false));
    cr_assert_eq(hd->closes, 0, "on_close comes from the loop, not from sl_http_end");
    RUN_UNTIL(hd->closes == 1);
    cr_assert_not(hd->aborted);
    RUN_UNTIL(strstr(got(), "helloworld") != NULL);

    /* The connection carries on. */
    cl_send(&T.cl, GET("/next"));
    RUN_UNTIL(strstr(got(), "\r\n\r\n/next") != NULL);
    cr_assert_not(T.cl.eof);
}

Test(http, held_chunked_stream, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/hs"));
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    CALL(sl_http_head(hd->r, 200, "text/event-stream", "Cache-Control: no-cache\r\n",
                      SL_HTTP_STREAM));
    CALL(sl_http_body(hd->r, "abc", 3));
    RUN_UNTIL(hd->drains >= 1);
    CALL(sl_http_body(hd->r, "0123456789abcdef", 16));
    CALL(sl_http_body(hd->r, "", 0)); /* ignored: an empty chunk would end the body */
    hd->end_on_drain = true;
    RUN_UNTIL(hd->closes == 1);
    cr_assert_not(hd->aborted);
    const char *want = HEAD_OK("text/event-stream") "Transfer-Encoding: chunked\r\n"
                                                    "Cache-Control: no-cache\r\n\r\n"
                                                    "3\r\nabc\r\n10\r\n0123456789abcdef\r\n"
                                                    "4\r\nlast\r\n0\r\n\r\n";
    RUN_UNTIL(strlen(got()) >= strlen(want));
    cr_assert_str_eq(got(), want);
    cr_assert_not(T.cl.eof);
}

Test(http, held_end_with_close_after, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/hs"));
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    CALL(sl_http_head(hd->r, 200, "text/plain", NULL, SL_HTTP_STREAM));
    CALL(sl_http_body(hd->r, "x", 1));
    CALL(sl_http_end(hd->r, true));
    RUN_UNTIL(T.cl.eof);
    cr_assert_eq(hd->closes, 1);
    cr_assert_not(hd->aborted, "a response ended by the server is complete");
    cr_assert(strstr(got(), "1\r\nx\r\n0\r\n\r\n") != NULL);
}

Test(http, held_short_of_its_length_closes, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/hs"));
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    CALL(sl_http_head(hd->r, 200, "text/plain", NULL, 10));
    CALL(sl_http_body(hd->r, "abc", 3));
    CALL(sl_http_end(hd->r, false));
    RUN_UNTIL(T.cl.eof);
    cr_assert_eq(hd->closes, 1);
    cr_assert(strstr(got(), "\r\n\r\nabc") != NULL);
}

Test(http, held_head_request_has_no_body, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "HEAD /hs HTTP/1.1\r\nHost: x\r\n\r\n");
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    CALL(sl_http_head(hd->r, 200, "text/plain", NULL, SL_HTTP_STREAM));
    CALL(sl_http_body(hd->r, "abc", 3));
    CALL(sl_http_end(hd->r, false));
    RUN_UNTIL(hd->closes == 1);
    cl_send(&T.cl, GET("/n"));
    RUN_UNTIL(strstr(got(), "\r\n\r\n/n") != NULL);
    cr_assert_str_eq(got(), HEAD_OK("text/plain") "Transfer-Encoding: chunked\r\n\r\n" HEAD_OK(
                                "text/plain") "Content-Length: 2\r\n\r\n/n");
}

Test(http, held_http10_is_close_delimited, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "GET /hold HTTP/1.0\r\n\r\n");
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    CALL(sl_http_head(hd->r, 200, "text/plain", NULL, SL_HTTP_STREAM));
    CALL(sl_http_body(hd->r, "abc", 3));
    CALL(sl_http_body(hd->r, "def", 3));
    CALL(sl_http_end(hd->r, false));
    RUN_UNTIL(T.cl.eof);
    cr_assert_eq(hd->closes, 1);
    cr_assert_not(hd->aborted);
    cr_assert_str_eq(got(), HEAD_OK("text/plain") "Connection: close\r\n\r\nabcdef");
}

Test(http, sync_http10_unchanged, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "GET /old HTTP/1.0\r\n\r\n");
    RUN_UNTIL(T.cl.eof);
    cr_assert_str_eq(got(),
                     HEAD_OK("text/plain") "Content-Length: 4\r\nConnection: close\r\n\r\n/old");
}

/* --- pipelining ------------------------------------------------------------------------------ */

Test(http, pipelined_requests_wait_behind_a_held_response, .init = setup, .fini = teardown)
{
    const char *rest = GET("/s3") GET("/s4");
    cl_send(&T.cl, GET("/s1") GET("/h2") GET("/s3") GET("/s4"));
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    struct http_conn *h = server_http();
    RUN_UNTIL(sl_buf_len(&h->kept) == strlen(rest));
    RUN_UNTIL(strstr(got(), "\r\n\r\n/s1") != NULL);
    cr_assert_eq(T.requests, 2, "the requests behind the held one are not parsed yet");
    cr_assert_eq(count(got(), "HTTP/1.1"), 1);

    CALL(sl_http_head(hd->r, 200, "text/plain", NULL, 2));
    CALL(sl_http_body(hd->r, "h2", 2));
    CALL(sl_http_end(hd->r, false));
    RUN_UNTIL(strstr(got(), "\r\n\r\n/s4") != NULL);
    cr_assert_eq(T.requests, 4);
    cr_assert_str_eq(T.paths[2], "/s3");
    const char *s1 = strstr(got(), "/s1"), *h2 = strstr(got(), "h2"), *s3 = strstr(got(), "/s3");
    cr_assert(s1 < h2 && h2 < s3, "answered in order");
    cr_assert_not(T.cl.eof);
}

Test(http, held_behind_held, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/h1") GET("/h2") GET("/s3"));
    RUN_UNTIL(T.nheld == 1);
    CALL(sl_http_head(T.held[0].r, 200, "text/plain", NULL, SL_HTTP_STREAM));
    CALL(sl_http_end(T.held[0].r, false));
    /* The kept input is parsed once the first is over: /h2 is held in turn, /s3 waits. */
    RUN_UNTIL(T.nheld == 2);
    cr_assert_eq(T.held[0].closes, 1);
    cr_assert_eq(T.requests, 2);
    struct http_conn *h = server_http();
    cr_assert_eq(sl_buf_len(&h->kept), strlen(GET("/s3")));
    CALL(sl_http_head(T.held[1].r, 204, NULL, NULL, 0));
    CALL(sl_http_end(T.held[1].r, false));
    RUN_UNTIL(strstr(got(), "\r\n\r\n/s3") != NULL);
    cr_assert_eq(T.held[1].closes, 1);
    cr_assert_not(T.held[1].aborted);
    cr_assert_eq(count(got(), "HTTP/1.1 "), 3);
}

Test(http, input_behind_a_held_response_is_capped, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/h1"));
    RUN_UNTIL(T.nheld == 1);
    struct http_conn *h = server_http();
    enum { N = 6000 };
    struct sl_buf b = SL_BUF_INIT;
    for (int i = 0; i < N; i++)
        sl_buf_printf(&b, "GET /s%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    size_t len = sl_buf_len(&b);
    cl_send_n(&T.cl, sl_buf_ptr(&b), len);
    sl_buf_free(&b);
    cr_assert_gt(len, SL_HTTP_HELD_INPUT_MAX + SL_LOOP_RBUF_SIZE);
    RUN_UNTIL(h->read_paused);
    cr_assert_geq(sl_buf_len(&h->kept), SL_HTTP_HELD_INPUT_MAX);
    cr_assert_lt(sl_buf_len(&h->kept), SL_HTTP_HELD_INPUT_MAX + SL_LOOP_RBUF_SIZE);
    cr_assert_eq(T.requests, 1);

    CALL(sl_http_head(T.held[0].r, 200, "text/plain", NULL, 0));
    CALL(sl_http_end(T.held[0].r, false));
    RUN_UNTIL(T.requests == N + 1);
    RUN_UNTIL(count(got(), "HTTP/1.1 200") == N + 1);
    cr_assert_not(h->read_paused);
    cr_assert(strstr(got(), "\r\n\r\n/s5999") != NULL);
}

/* --- the client goes away -------------------------------------------------------------------- */

static struct held *
start_stream(void)
{
    cl_send(&T.cl, GET("/h"));
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    CALL(sl_http_head(hd->r, 200, "text/plain", NULL, SL_HTTP_STREAM));
    CALL(sl_http_body(hd->r, "abc", 3));
    RUN_UNTIL(strstr(got(), "3\r\nabc\r\n") != NULL);
    return hd;
}

Test(http, client_close_mid_response_is_reported_once, .init = setup, .fini = teardown)
{
    struct held *hd = start_stream();
    cl_close(&T.cl, false);
    RUN_UNTIL(hd->closes == 1);
    cr_assert(hd->aborted);
    RUN_UNTIL(T.pool.count == 0);
    cr_assert_eq(hd->closes, 1);
}

Test(http, client_reset_mid_response_is_reported_once, .init = setup, .fini = teardown)
{
    struct held *hd = start_stream();
    cl_close(&T.cl, true);
    RUN_UNTIL(hd->closes == 1);
    cr_assert(hd->aborted);
    RUN_UNTIL(T.pool.count == 0);
    cr_assert_eq(hd->closes, 1);
}

Test(http, client_half_close_before_the_head_is_an_abort, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/h"));
    RUN_UNTIL(T.nheld == 1);
    uv_shutdown_t sreq;
    uv_shutdown(&sreq, (uv_stream_t *)&T.cl.tcp, NULL);
    RUN_UNTIL(T.held[0].closes == 1);
    cr_assert(T.held[0].aborted);
    RUN_UNTIL(T.cl.eof);
    cr_assert_str_eq(got(), "");
}

Test(http, server_reset_is_an_abort, .init = setup, .fini = teardown)
{
    struct held *hd = start_stream();
    CALL(sl_conn_reset(sl_http_resp_conn(hd->r)));
    RUN_UNTIL(T.cl.error != 0 || T.cl.eof);
    cr_assert_eq(T.cl.error, UV_ECONNRESET, "a reset, not an end: %s", uv_strerror(T.cl.error));
    RUN_UNTIL(hd->closes == 1);
    cr_assert(hd->aborted);
}

Test(http, server_close_is_an_abort, .init = setup, .fini = teardown)
{
    struct held *hd = start_stream();
    CALL(sl_conn_close(sl_http_resp_conn(hd->r)));
    RUN_UNTIL(T.cl.eof);
    cl_close(&T.cl, false);
    RUN_UNTIL(hd->closes == 1);
    cr_assert(hd->aborted);
}

/* --- writing ---------------------------------------------------------------------------------- */

Test(http, drain_comes_when_the_client_reads_again, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/h"));
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    uv_read_stop((uv_stream_t *)&T.cl.tcp);
    T.cl.reading = false;
    /* Far more than loopback's socket buffers hold. */
    enum { PIECE = 64 * 1024, PIECES = 512 };
    char *piece = sl_malloc(PIECE);
    memset(piece, 'x', PIECE);
    CALL(sl_http_head(hd->r, 200, "application/octet-stream", NULL, (int64_t)PIECE * PIECES));
    for (int i = 0; i < PIECES; i++)
        CALL(sl_http_body(hd->r, piece, PIECE));
    free(piece);
    for (int i = 0; i < 5; i++)
        uv_run(T.uv, UV_RUN_NOWAIT);
    cr_assert_gt(sl_http_queued(hd->r), 0, "the kernel took it all?");
    cr_assert_eq(hd->drains, 0, "no drain while bytes wait");
    CALL(sl_http_end(hd->r, false));
    cl_start_reading(&T.cl);
    RUN_UNTIL(hd->closes == 1);
    cr_assert_not(hd->aborted);
    RUN_UNTIL(sl_buf_len(&T.cl.got) >= (size_t)PIECE * PIECES);
    const char *body = strstr(got(), "\r\n\r\n");
    cr_assert_not_null(body);
    cr_assert_eq(strlen(body + 4), (size_t)PIECE * PIECES);
}

Test(http, drain_then_more, .init = setup, .fini = teardown)
{
    /* The rate=0 pattern: write a piece, write the next one from on_drain. */
    struct held *hd = start_stream();
    cr_assert_geq(hd->drains, 1, "the first piece drained");
    cr_assert_eq(sl_http_queued(hd->r), 0);
    hd->end_on_drain = true;
    CALL(sl_http_body(hd->r, "def", 3));
    RUN_UNTIL(hd->closes == 1);
    RUN_UNTIL(strstr(got(), "0\r\n\r\n") != NULL);
    cr_assert(strstr(got(), "3\r\nabc\r\n3\r\ndef\r\n4\r\nlast\r\n0\r\n\r\n") != NULL);
}

Test(http, flush_writes_at_once, .init = setup, .fini = teardown)
{
    struct held *hd = start_stream();
    uint64_t before = T.pool.bytes_out;
    CALL(sl_http_body(hd->r, "def", 3));
    cr_assert_eq(T.pool.bytes_out, before, "queued until the end of the turn");
    cr_assert_eq(sl_http_queued(hd->r), 8);
    int d = hd->drains;
    CALL(sl_http_flush(hd->r));
    cr_assert_eq(T.pool.bytes_out, before + 8, "written by the call");
    cr_assert_eq(sl_http_queued(hd->r), 0);
    cr_assert_eq(hd->drains, d, "on_drain comes from the loop");
    RUN_UNTIL(hd->drains > d);
    CALL(sl_http_end(hd->r, false));
    RUN_UNTIL(hd->closes == 1);
}

Test(http, expect_100_continue_is_answered_before_the_body, .init = setup, .fini = teardown)
{
    cl_send(&T.cl,
            "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    RUN_UNTIL(strstr(got(), "\r\n\r\n") != NULL);
    cr_assert_str_eq(got(), "HTTP/1.1 100 Continue\r\n\r\n");
    cr_assert_eq(T.requests, 0);
    cl_send(&T.cl, "hello");
    RUN_UNTIL(strstr(got(), "\r\n\r\n/a") != NULL);
    cr_assert_str_eq(
        got(), "HTTP/1.1 100 Continue\r\n\r\n" HEAD_OK("text/plain") "Content-Length: 2\r\n\r\n/a");
    /* No body announced, no 100. */
    cl_send(&T.cl, "GET /b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
    RUN_UNTIL(strstr(got(), "\r\n\r\n/b") != NULL);
    cr_assert_eq(count(got(), "100 Continue"), 1);
}

/* --- limits ----------------------------------------------------------------------------------- */

static void
expect_refusal(const char *status_line)
{
    RUN_UNTIL(T.cl.eof);
    cr_assert(strncmp(got(), status_line, strlen(status_line)) == 0, "got %s", got());
    cr_assert(strstr(got(), "Connection: close\r\n") != NULL);
    cr_assert_eq(T.requests, 0);
}

Test(http, long_url_414, .init = setup, .fini = teardown)
{
    char req[1024];
    snprintf(req, sizeof(req), "GET /%0600d HTTP/1.1\r\nHost: x\r\n\r\n", 0);
    cl_send(&T.cl, req);
    expect_refusal("HTTP/1.1 414 URI Too Long\r\n");
}

Test(http, big_headers_431, .init = setup, .fini = teardown)
{
    char req[4096];
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: x\r\nX-Big: %02200d\r\n\r\n", 0);
    cl_send(&T.cl, req);
    expect_refusal("HTTP/1.1 431 Request Header Fields Too Large\r\n");
}

Test(http, too_many_headers_431, .init = setup, .fini = teardown)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < SL_HTTP_MAX_HEADERS + 1; i++)
        sl_buf_printf(&b, "X%d: 1\r\n", i);
    sl_buf_append_str(&b, "\r\n");
    cl_send_n(&T.cl, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
    expect_refusal("HTTP/1.1 431 Request Header Fields Too Large\r\n");
}

Test(http, big_body_413, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n");
    expect_refusal("HTTP/1.1 413 Content Too Large\r\n");
}

Test(http, big_chunked_body_413, .init = setup, .fini = teardown)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_append_str(&b, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 3; i++)
        sl_buf_printf(&b, "258\r\n%0600d\r\n", 0);
    sl_buf_append_str(&b, "0\r\n\r\n");
    cl_send_n(&T.cl, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
    expect_refusal("HTTP/1.1 413 Content Too Large\r\n");
}

Test(http, malformed_400, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "GARBAGE\r\n\r\n");
    expect_refusal("HTTP/1.1 400 Bad Request\r\n");
}

Test(http, malformed_behind_a_held_response_400_after_it, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, GET("/h") "GARBAGE\r\n\r\n");
    RUN_UNTIL(T.nheld == 1);
    struct http_conn *h = server_http();
    RUN_UNTIL(sl_buf_len(&h->kept) > 0);
    CALL(sl_http_head(T.held[0].r, 200, "text/plain", NULL, 1));
    CALL(sl_http_body(T.held[0].r, "k", 1));
    CALL(sl_http_end(T.held[0].r, false));
    RUN_UNTIL(T.cl.eof);
    const char *bad = strstr(got(), "HTTP/1.1 400 Bad Request\r\n");
    cr_assert_not_null(bad);
    cr_assert(strstr(got(), "\r\n\r\nk") < bad);
}

static void
setup_short_timeout(void)
{
    setup_with(50);
}

Test(http, slow_headers_408, .init = setup_short_timeout, .fini = teardown)
{
    cl_send(&T.cl, "GET / HTTP/1.1\r\nHost");
    expect_refusal("HTTP/1.1 408 Request Timeout\r\n");
}

Test(http, no_header_timeout_while_held, .init = setup_short_timeout, .fini = teardown)
{
    /* A held response may take longer than any timeout of this layer: none is armed. */
    cl_send(&T.cl, GET("/h"));
    RUN_UNTIL(T.nheld == 1);
    cr_assert_not(sl_timeq_armed(sl_conn_timer(T.last_conn)));
    CALL(sl_http_head(T.held[0].r, 200, "text/plain", NULL, 2));
    CALL(sl_http_body(T.held[0].r, "ok", 2));
    CALL(sl_http_end(T.held[0].r, false));
    RUN_UNTIL(T.held[0].closes == 1);
    RUN_UNTIL(strstr(got(), "\r\n\r\nok") != NULL);
    cr_assert_not(T.held[0].aborted);
    /* Between requests the keep-alive timeout runs again. */
    cr_assert(sl_timeq_armed(sl_conn_timer(T.last_conn)));
}

Test(http, client_close_between_requests_frees_the_connection_at_once, .init = setup,
     .fini = teardown)
{
    cl_send(&T.cl, GET("/a"));
    RUN_UNTIL(strstr(got(), "\r\n\r\n/a") != NULL);
    uv_shutdown_t sreq;
    uv_shutdown(&sreq, (uv_stream_t *)&T.cl.tcp, NULL);
    uint64_t t0 = uv_now(T.uv);
    RUN_UNTIL(T.cl.eof && T.pool.count == 0);
    /* Both FINs are out: no linger (2 s) waiting for a FIN that already came. */
    cr_assert_lt(uv_now(T.uv) - t0, 1000);
}

/* A blocking client on its own thread that sends one request and reads until the end. */
struct reader {
    int port;
    const char *request;
    size_t got;
    atomic_bool done;
};

static void *
reader_main(void *arg)
{
    struct reader *rd = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rd->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        write(fd, rd->request, strlen(rd->request)) == (ssize_t)strlen(rd->request)) {
        char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            rd->got += (size_t)n;
    }
    close(fd);
    atomic_store(&rd->done, true);
    return NULL;
}

Test(http, a_writer_that_never_stops_does_not_hold_the_loop, .init = setup, .fini = teardown,
     .timeout = 20)
{
    struct reader rd = {
        .port = T.port,
        .request = "GET /hforever HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    };
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reader_main, &rd), 0);
    RUN_UNTIL(T.nheld == 1);
    struct held *hd = &T.held[0];
    CALL(sl_http_head(hd->r, 200, "text/plain", NULL, SL_HTTP_STREAM));
    hd->write_on_drain = true;
    CALL(sl_http_body(hd->r, "go", 2));
    /* The reader keeps up, so the kernel takes every piece: without a cap on the writes per
     * flush, the first turn would never end. With it, each turn writes at most a few. */
    int most = 0;
    for (int i = 0; i < 200; i++) {
        int before = hd->drains;
        uv_run(T.uv, UV_RUN_ONCE);
        if (hd->drains - before > most)
            most = hd->drains - before;
    }
    cr_assert_gt(hd->drains, 50, "the stream went on");
    cr_assert_leq(most, 4, "%d drains in one turn", most);
    hd->end_on_drain = true;
    RUN_UNTIL(hd->closes == 1);
    cr_assert_not(hd->aborted);
    /* The connection closes after the response; the reader sees the end and leaves. */
    RUN_UNTIL(atomic_load(&rd.done) && T.pool.count == 1);
    pthread_join(th, NULL);
    cr_assert_gt(rd.got, (size_t)50 * 64);
}

/* --- request bodies: the head's decision and the body timeout -------------------------------- */

Test(http, a_body_on_a_route_that_takes_none_is_refused_at_its_head, .init = setup,
     .fini = teardown)
{
    /* The head alone: the refusal does not wait for the 1000 bytes announced. */
    cl_send(&T.cl, "POST /nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n");
    expect_refusal("HTTP/1.1 413 Content Too Large\r\n");
    cr_assert(strstr(got(), "takes no request body") != NULL, "got %s", got());
    cr_assert_eq(T.heads, 1);
}

Test(http, a_chunked_body_on_a_route_that_takes_none_is_refused_at_its_head, .init = setup,
     .fini = teardown)
{
    cl_send(&T.cl, "POST /nobody HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect_refusal("HTTP/1.1 413 Content Too Large\r\n");
}

Test(http, a_route_without_a_body_still_serves_requests_without_one, .init = setup,
     .fini = teardown)
{
    cl_send(&T.cl, GET("/nobody") "POST /nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    RUN_UNTIL(count(got(), "\r\n\r\n/nobody") == 2);
    cr_assert_eq(T.requests, 2);
    cr_assert_not(T.cl.eof);
}

Test(http, a_route_sets_its_own_body_limit, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n0123456789abcdef");
    RUN_UNTIL(strstr(got(), "\r\n\r\n/small") != NULL);
    cl_send(&T.cl, "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 17\r\n\r\n");
    RUN_UNTIL(T.cl.eof);
    cr_assert(strstr(got(), "HTTP/1.1 413 Content Too Large\r\n") != NULL, "got %s", got());
    cr_assert_eq(T.requests, 1);
}

Test(http, a_chunked_body_over_the_routes_limit_413, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "11\r\n0123456789abcdefg\r\n0\r\n\r\n");
    expect_refusal("HTTP/1.1 413 Content Too Large\r\n");
}

Test(http, the_head_callback_refuses_with_its_own_status, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "PUT /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n");
    expect_refusal("HTTP/1.1 405 Method Not Allowed\r\n");
    cr_assert(strstr(got(), "Allow: GET\r\n") != NULL, "got %s", got());
}

static void
setup_short_body_timeout(void)
{
    setup_full(10000, 50, NULL);
}

Test(http, a_body_that_never_comes_408, .init = setup_short_body_timeout, .fini = teardown)
{
    cl_send(&T.cl, "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    expect_refusal("HTTP/1.1 408 Request Timeout\r\n");
    cr_assert(strstr(got(), "request body not received in time") != NULL, "got %s", got());
}

static void
set_flag(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void
handle_closed(uv_handle_t *h)
{
    *(bool *)h->data = true;
}

Test(http, the_body_timeout_does_not_cut_a_request_without_a_body, .init = setup_short_body_timeout,
     .fini = teardown)
{
    cl_send(&T.cl, GET("/a"));
    RUN_UNTIL(strstr(got(), "\r\n\r\n/a") != NULL);
    /* Idle keep-alive: the keep-alive timeout (60 s) runs, not the body's. */
    uv_timer_t wait;
    bool waited = false;
    uv_timer_init(T.uv, &wait);
    wait.data = &waited;
    uv_timer_start(&wait, set_flag, 200, 0);
    RUN_UNTIL(waited);
    waited = false;
    uv_close((uv_handle_t *)&wait, handle_closed);
    RUN_UNTIL(waited); /* the handle lives on this stack */
    cr_assert_not(T.cl.eof);
}

/* --- versions ------------------------------------------------------------------------------ */

Test(http, http_9_9_gets_505, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "GET / HTTP/9.9\r\nHost: x\r\n\r\n");
    expect_refusal("HTTP/1.1 505 HTTP Version Not Supported\r\n");
}

Test(http, http_1_2_gets_505, .init = setup, .fini = teardown)
{
    cl_send(&T.cl, "GET / HTTP/1.2\r\nHost: x\r\n\r\n");
    expect_refusal("HTTP/1.1 505 HTTP Version Not Supported\r\n");
}

/* --- past the connection limit -------------------------------------------------------------- */

static void
setup_over_capacity(void)
{
    T.accept_over_capacity = true;
    setup();
}

Test(http, a_connection_over_capacity_gets_one_answer_then_closes, .init = setup_over_capacity,
     .fini = teardown)
{
    cl_send(&T.cl, GET("/a") GET("/b"));
    RUN_UNTIL(T.cl.eof);
    cr_assert_eq(T.requests, 1);
    cr_assert_eq(T.over_capacity_seen, 1, "the request says so");
    cr_assert_str_eq(got(),
                     HEAD_OK("text/plain") "Content-Length: 2\r\nConnection: close\r\n\r\n/a");
}

/* --- a client that pipelines and does not read --------------------------------------------- */

#define FLOOD_CAP (64 * 1024)
/* What one /big answer adds: its head and body. */
#define BIG_HEAD HEAD_OK("text/plain") "Content-Length: 16384\r\n\r\n"
#define BIG_ANSWER (sizeof(BIG_HEAD) - 1 + BIG_BODY)

static void
setup_flood(void)
{
    struct sl_conn_limits cl = {
        .send_timeout_ms = 0, .close_timeout_ms = 5000, .max_queued = FLOOD_CAP};
    setup_full(10000, 0, &cl);
}

Test(http, pipelined_answers_wait_while_the_output_is_over_its_cap, .init = setup_flood,
     .fini = teardown)
{
    /* 500 requests for 16 KiB answers, and the client reads nothing: 8 MB of answers. */
    uv_read_stop((uv_stream_t *)&T.cl.tcp);
    T.cl.reading = false;
    enum { N = 500 };
    struct sl_buf b = SL_BUF_INIT;
    for (int i = 0; i < N; i++)
        sl_buf_printf(&b, "GET /big/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
    cl_send_n(&T.cl, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
    RUN_UNTIL(T.flood_conn != NULL && sl_conn_congested(T.flood_conn));
    for (int i = 0; i < 20; i++)
        uv_run(T.uv, UV_RUN_NOWAIT);
    cr_assert_lt(T.requests, N, "requests parsed while the answers could not leave");
    cr_assert_leq(T.max_queued, FLOOD_CAP + BIG_ANSWER, "%zu bytes queued", T.max_queued);

    /* The client reads again: every answer arrives, in order. */
    cl_start_reading(&T.cl);
    RUN_UNTIL(sl_buf_len(&T.cl.got) >= N * BIG_ANSWER);
    cr_assert_eq(sl_buf_len(&T.cl.got), N * BIG_ANSWER);
    cr_assert_eq(T.requests, N);
    const char *all = got();
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof(want), "/big/%d.", i);
        cr_assert_eq(strncmp(all + i * BIG_ANSWER + sizeof(BIG_HEAD) - 1, want, strlen(want)), 0,
                     "answer %d out of order", i);
    }
    cr_assert_leq(T.max_queued, FLOOD_CAP + BIG_ANSWER, "%zu bytes queued", T.max_queued);
    cr_assert_not(T.cl.eof);
}

/* A client on its own thread with a tiny receive window that pipelines without reading. */
struct flooder {
    int port;
    size_t sent, total;
    int err;
};

static void *
flooder_main(void *arg)
{
    struct flooder *fl = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)fl->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fl->err = errno;
        close(fd);
        return NULL;
    }
    static const char req[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    char chunk[64 * 1024];
    size_t n = 0;
    while (n + sizeof(req) - 1 <= sizeof(chunk)) {
        memcpy(chunk + n, req, sizeof(req) - 1);
        n += sizeof(req) - 1;
    }
    while (fl->sent < fl->total) {
        ssize_t w = send(fd, chunk, n, MSG_NOSIGNAL);
        if (w < 0) {
            fl->err = errno;
            break;
        }
        fl->sent += (size_t)w;
    }
    close(fd);
    return NULL;
}

static void
setup_flood_reset(void)
{
    struct sl_conn_limits cl = {
        .send_timeout_ms = 300, .close_timeout_ms = 5000, .max_queued = FLOOD_CAP};
    setup_full(10000, 0, &cl);
}

Test(http, a_client_that_pipelines_and_never_reads_is_capped_then_reset, .init = setup_flood_reset,
     .fini = teardown, .timeout = 30)
{
    T.check_cap = FLOOD_CAP + BIG_ANSWER;
    /* 32 MB of requests: half a gigabyte of answers, if they were all queued. */
    struct flooder fl = {.port = T.port, .total = 32u << 20};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, flooder_main, &fl), 0);
    RUN_UNTIL(T.flood_conn != NULL && sl_conn_congested(T.flood_conn));
    /* Another client is served meanwhile. */
    cl_send(&T.cl, GET("/a"));
    RUN_UNTIL(strstr(got(), "\r\n\r\n/a") != NULL);
    /* The flooder's answers make no progress: it is reset, and its writes fail. */
    RUN_UNTIL(T.pool.send_timeouts == 1);
    pthread_join(th, NULL);
    cr_assert(fl.err == ECONNRESET || fl.err == EPIPE, "flooder: %s", strerror(fl.err));
    cr_assert_lt(fl.sent, fl.total);
    cr_assert_eq(T.pool.count, 1, "only the other client is left");
    cr_assert_not(T.cl.eof);
}
