/*
 * Unit tests for src/upstream/h1 (the builtin HTTP/1.1 client of http:// providers), on a
 * real loop against the scripted server of uv_server.h: a whole transfer (sized, chunked,
 * read to the close), keep-alive reuse, the resend after a reused connection was dropped,
 * removal from inside a callback reaching the server, timeouts, pause, the gate (a cap, a
 * full queue), warm connections, name resolution with a fallback address, and errors as
 * curl's codes, never reported from inside sl_h1_add. Every test ends with the client freed
 * and no handle left on the loop.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <unistd.h>

#include "net/loop.h"
#include "upstream/gate.h"
#include "upstream/h1.h"
#include "xfer_harness.h"

struct ctx {
    struct xctx t; /* first: the callbacks get it as ud */
    struct sl_h1 *h;
    struct sl_h1_pool *p;
    char url[96];
    bool again_on_end;      /* a second transfer from the first one's on_end */
    bool watch_idle_on_end; /* then the server closes it; the test ends once none is open */
    int idle_polls;
};

static void
h1_remove(void *x)
{
    sl_h1_remove(x);
}

static void
h1_pause(void *x, bool paused)
{
    sl_h1_pause(x, paused);
}

static const struct xclient h1_client = {.remove = h1_remove, .pause = h1_pause};

static void add(struct ctx *c);
static void on_idle_check(uv_timer_t *t);

static void
after_end(struct xctx *t, CURLcode rc)
{
    struct ctx *c = (struct ctx *)t;
    if (c->again_on_end && t->ends == 1 && rc == CURLE_OK)
        add(c);
    if (c->watch_idle_on_end) {
        cr_assert_eq(sl_h1_pool_gate(c->p)->open, 1, "kept open, idle");
        tsrv_stop(&t->srv); /* closes the server's side of it */
        uv_timer_start(&t->check, on_idle_check, 5, 0);
    }
}

static char *const headers[] = {(char *)"Content-Type: application/json",
                                (char *)"Authorization: Bearer k"};

static void
add_timed(struct ctx *c, uint64_t first_byte_ms, uint64_t idle_ms)
{
    c->t.in_add = true;
    c->t.x = sl_h1_add(c->p, c->url, headers, 2, "{}", 2, &xctx_cb, &c->t, first_byte_ms, idle_ms);
    c->t.in_add = false;
}

static void
add(struct ctx *c)
{
    add_timed(c, 1000, 1000);
}

static void
setup_pool(struct ctx *c, const char *host, int port, unsigned max_connections, unsigned max_queued,
           unsigned min_idle)
{
    char base[80];
    snprintf(base, sizeof(base), "http://%s:%d/v1", host, port);
    snprintf(c->url, sizeof(c->url), "%s/x?y=1", base);
    struct sl_h1_pool_cfg pc = {
        .base_url = base,
        .max_connections = max_connections,
        .max_queued = max_queued,
        .min_idle = min_idle,
        .connect_timeout_ms = 1000,
    };
    c->p = sl_h1_pool_new(c->h, &pc);
    cr_assert_not_null(c->p);
}

static void
setup(void *arg, const struct tstep *script, size_t n, bool hold)
{
    struct ctx *c = arg;
    xctx_setup(&c->t, sizeof(*c), &h1_client, script, n, hold);
    c->t.after_end = after_end;
    c->h = sl_h1_new(c->t.loop);
    setup_pool(c, "127.0.0.1", c->t.srv.port, 4, 16, 0);
}

static void
free_client(void *arg)
{
    sl_h1_free(arg);
}

static void
run_and_teardown(void *arg)
{
    struct ctx *c = arg;
    xctx_run(&c->t, free_client, c->h);
}

static void
ctx_free(void *arg)
{
    struct ctx *c = arg;
    xctx_free(&c->t);
}

/* The shared contract (xfer_harness.h) through this client. */
static void
suite_start(struct xctx *t, uint64_t first_byte_ms, uint64_t idle_ms)
{
    add_timed((struct ctx *)t, first_byte_ms, idle_ms);
}

static const struct xsuite suite = {sizeof(struct ctx), setup, suite_start, run_and_teardown,
                                    ctx_free};

Test(h1, removal_inside_a_callback_reaches_the_server)
{
    xscenario_removal_inside_a_callback(&suite);
}

Test(h1, first_byte_timeout)
{
    xscenario_first_byte_timeout(&suite);
}

Test(h1, idle_timeout_after_data)
{
    xscenario_idle_timeout_after_data(&suite);
}

Test(h1, a_steady_stream_outlives_the_idle_timeout)
{
    xscenario_a_steady_stream_outlives_the_idle_timeout(&suite);
}

Test(h1, pause_holds_data_and_timeouts_until_resume)
{
    xscenario_pause_holds_data_and_timeouts_until_resume(&suite);
}

#define HEAD_CHUNKED                                                                               \
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"

Test(h1, a_chunked_transfer_completes)
{
    static const struct tstep script[] = {
        {HEAD_CHUNKED "9\r\ndata: a\n\n\r\n", 0}, {"9\r\ndata: b\n\n\r\n", 10}, {"0\r\n\r\n", 10}};
    struct ctx c;
    setup(&c, script, 3, true);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 1);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "data: a\n\ndata: b\n\n");
    /* The head as curl hands it: the status line, each header, the blank line. */
    cr_assert_str_eq(sl_buf_cstr(&c.t.head), "HTTP/1.1 200 \r\nContent-Type: text/event-stream\r\n"
                                             "Transfer-Encoding: chunked\r\n\r\n");
    const char *req = sl_buf_cstr(&c.t.srv.last_request);
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", c.t.srv.port);
    cr_assert(strncmp(req, "POST /v1/x?y=1 HTTP/1.1\r\n", 25) == 0, "%s", req);
    cr_assert(strstr(req, host), "%s", req);
    cr_assert(strstr(req, "\r\nAuthorization: Bearer k\r\n"), "%s", req);
    cr_assert(strstr(req, "\r\nContent-Length: 2\r\n\r\n{}"), "%s", req);
    ctx_free(&c);
}

Test(h1, a_body_read_to_the_close_completes)
{
    static const struct tstep script[] = {{HEAD_SSE "data: a\n\n", 0}, {"data: b\n\n", 10}};
    struct ctx c;
    setup(&c, script, 2, false);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "data: a\n\ndata: b\n\n");
    ctx_free(&c);
}

/* Two requests, the second sent from the first one's on_end; both must read "abc". */
static void
two_requests_in_a_row(struct ctx *c, bool drop_reused)
{
    static const struct tstep script[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 0}};
    setup(c, script, 1, false);
    c->t.srv.keepalive = true;
    c->t.srv.drop_reused = drop_reused;
    c->t.expect_ends = 2;
    c->again_on_end = true;
    add(c);
    run_and_teardown(c);
    cr_assert_eq(c->t.ends, 2);
    cr_assert_eq(c->t.rc, CURLE_OK, "%s", c->t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c->t.body), "abcabc");
}

Test(h1, keep_alive_reuses_the_connection)
{
    struct ctx c;
    two_requests_in_a_row(&c, false);
    cr_assert_eq(c.t.srv.requests, 2);
    cr_assert_eq(c.t.srv.connections, 1, "the second request went on the first one's connection");
    ctx_free(&c);
}

Test(h1, a_request_dropped_on_a_reused_connection_is_sent_again)
{
    struct ctx c;
    /* as a server closing an idle connection just as the request comes */
    two_requests_in_a_row(&c, true);
    cr_assert_eq(c.t.srv.dropped, 1);
    cr_assert_eq(c.t.srv.connections, 2, "sent again on a new connection");
    ctx_free(&c);
}

Test(h1, connection_refused_is_reported_later_as_curl_would)
{
    static const struct tstep script[] = {{HEAD_SSE, 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    setup_pool(&c, "127.0.0.1", 1, 4, 16, 0);
    add(&c); /* x_end asserts it does not run inside sl_h1_add */
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 1);
    cr_assert_eq(c.t.rc, CURLE_COULDNT_CONNECT);
    cr_assert(strstr(c.t.detail, "Failed to connect to 127.0.0.1 port 1"), "%s", c.t.detail);
    ctx_free(&c);
}

Test(h1, a_truncated_body_and_an_empty_reply_are_errors)
{
    static const struct tstep cut[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0}};
    struct ctx c;
    setup(&c, cut, 1, false);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_PARTIAL_FILE);
    ctx_free(&c);

    static const struct tstep nothing[] = {{"", 0}};
    setup(&c, nothing, 1, false);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_GOT_NOTHING);
    ctx_free(&c);

    static const struct tstep junk[] = {{"HTTP/1.1 abc\r\n\r\n", 0}};
    setup(&c, junk, 1, true);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_WEIRD_SERVER_REPLY);
    ctx_free(&c);
}

Test(h1, the_gate_queues_past_the_cap_and_refuses_past_the_queue)
{
    static const struct tstep script[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", 30}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.t.srv.keepalive = true;
    setup_pool(&c, "127.0.0.1", c.t.srv.port, 1, 1, 0);
    c.t.expect_ends = 3;
    add(&c);
    cr_assert(!sl_h1_queued(c.t.x));
    add(&c);
    cr_assert(sl_h1_queued(c.t.x), "past max_connections: waits");
    cr_assert_eq(sl_h1_pool_gate(c.p)->nwaiting, 1);
    cr_assert_eq(sl_h1_pool_gate(c.p)->queued_total, 1);
    add(&c); /* past max_queued: refused, on a later iteration */
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 3);
    cr_assert_eq(c.t.srv.requests, 2);
    cr_assert_eq(c.t.srv.connections, 1, "the waiter took the first one's connection");
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "aa");
    ctx_free(&c);
}

static void
on_warm_check(uv_timer_t *t)
{
    struct ctx *c = t->data;
    if (c->t.srv.connections < 2) {
        uv_timer_start(t, on_warm_check, 5, 0);
        return;
    }
    c->t.len_at_pause = sl_h1_pool_gate(c->p)->open;
    add(c);
}

Test(h1, min_idle_connections_are_opened_ahead_and_used)
{
    static const struct tstep script[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.t.srv.keepalive = true;
    setup_pool(&c, "127.0.0.1", c.t.srv.port, 4, 16, 2);
    uv_timer_start(&c.t.check, on_warm_check, 5, 0);
    run_and_teardown(&c);
    cr_assert_eq(c.t.len_at_pause, 2, "two connections open before any request");
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_eq(c.t.srv.connections, 2, "the request used a warm connection");
    ctx_free(&c);
}

Test(h1, a_host_name_is_resolved)
{
    /* (localhost may also resolve to ::1 first, where nothing listens: the next serves.) */
    static const struct tstep script[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    setup_pool(&c, "localhost", c.t.srv.port, 4, 16, 0);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "ok");
    ctx_free(&c);
}

Test(h1, eligibility)
{
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("all_proxy");
    unsetenv("ALL_PROXY");
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    cr_assert(sl_h1_eligible("http://127.0.0.1:8080/v1"));
    cr_assert(sl_h1_eligible("http://localhost/v1"));
    cr_assert(sl_h1_eligible("http://[::1]:11434"));
    cr_assert(!sl_h1_eligible("https://api.openai.com/v1"));
    cr_assert(!sl_h1_eligible("http://user:pw@host/v1"), "userinfo is curl's (Basic auth)");
    cr_assert(!sl_h1_eligible("http://host:99999/v1"));
    cr_assert(!sl_h1_eligible("http://:80/v1"));
    setenv("http_proxy", "http://proxy:3128", 1);
    cr_assert(!sl_h1_eligible("http://llm.internal/v1"), "a proxy is curl's");
    setenv("no_proxy", "other, llm.internal", 1);
    cr_assert(sl_h1_eligible("http://llm.internal/v1"));
    setenv("no_proxy", "*", 1);
    cr_assert(sl_h1_eligible("http://anything/v1"));
    unsetenv("http_proxy");
    unsetenv("no_proxy");
}

Test(h1, a_name_that_does_not_resolve_is_reported_later_as_curl_would)
{
    static const struct tstep script[] = {{HEAD_SSE, 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    setup_pool(&c, "no-such-host.invalid", 80, 4, 16, 0);
    add(&c); /* x_end asserts it does not run inside sl_h1_add */
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 1);
    cr_assert_eq(c.t.rc, CURLE_COULDNT_RESOLVE_HOST, "%d %s", c.t.rc, c.t.detail);
    cr_assert(strstr(c.t.detail, "no-such-host.invalid"), "%s", c.t.detail);
    ctx_free(&c);
}

static void
on_idle_check(uv_timer_t *t)
{
    struct ctx *c = t->data;
    if (sl_h1_pool_gate(c->p)->open > 0) {
        cr_assert(++c->idle_polls < 400, "the closed idle connection is still open after 2 s");
        uv_timer_start(t, on_idle_check, 5, 0);
        return;
    }
    c->t.finished = true;
    tsrv_stop(&c->t.srv);
    sl_loop_stop(c->t.loop);
}

Test(h1, an_idle_connection_the_server_closes_is_let_go)
{
    static const struct tstep script[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.t.srv.keepalive = true;
    c.watch_idle_on_end = true;
    c.t.expect_ends = 99; /* the idle check ends the test */
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_eq(sl_buf_len(&c.t.body), 1);
    ctx_free(&c);
}

Test(h1, a_response_cut_anywhere_across_reads_reads_the_same)
{
    /* Every piece a read of its own (5 ms apart): a name, a value, a chunk size cut in two. */
    static const struct tstep script[] = {{"HTTP/1.1 200 OK\r\nConte", 0},
                                          {"nt-Type: text/ev", 5},
                                          {"ent-stream\r\nX-Req", 5},
                                          {"uest-Id: r1\r\nTransfer-Encoding: chunked\r\n", 5},
                                          {"\r\n", 5},
                                          {"9\r\ndata:", 5},
                                          {" a\n\n\r\n", 5},
                                          {"1", 5},
                                          {"0\r\ndata: bcdefghi\n\n\r\n0\r", 5},
                                          {"\n\r\n", 5}};
    struct ctx c;
    setup(&c, script, SL_ARRAY_LEN(script), true);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c.t.head),
                     "HTTP/1.1 200 \r\nContent-Type: text/event-stream\r\nX-Request-Id: r1\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "data: a\n\ndata: bcdefghi\n\n");
    ctx_free(&c);
}

Test(h1, a_header_line_past_the_cap_ends_the_transfer)
{
    static char big[(70u << 10) + 64];
    static struct tstep script[1];
    strcpy(big, "HTTP/1.1 200 OK\r\nX-Big: ");
    size_t n = strlen(big);
    memset(big + n, 'a', 70u << 10);
    strcpy(big + n + (70u << 10), "\r\n\r\n");
    script[0].bytes = big;
    struct ctx c;
    setup(&c, script, 1, true);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 1);
    /* curl's code for a head it refuses; httpcall.c reads it as a head too large. */
    cr_assert_eq(c.t.rc, CURLE_RECV_ERROR, "%d %s", c.t.rc, c.t.detail);
    cr_assert(strstr(c.t.detail, "header"), "%s", c.t.detail);
    ctx_free(&c);
}

Test(h1, a_url_or_header_that_would_split_the_request_is_refused)
{
    static const struct tstep script[] = {{HEAD_SSE, 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    c.t.expect_ends = 2;
    char bad_url[160];
    snprintf(bad_url, sizeof(bad_url), "http://127.0.0.1:%d/v1/m HTTP/1.1\r\nX-Evil: 1",
             c.t.srv.port);
    c.t.in_add = true;
    c.t.x = sl_h1_add(c.p, bad_url, headers, 2, "{}", 2, &xctx_cb, &c.t, 1000, 1000);
    char *const evil[] = {(char *)"X-A: 1\r\nX-Evil: 2"};
    c.t.x = sl_h1_add(c.p, c.url, evil, 1, "{}", 2, &xctx_cb, &c.t, 1000, 1000);
    c.t.in_add = false;
    run_and_teardown(&c);
    cr_assert_eq(c.t.ends, 2);
    cr_assert_eq(c.t.rc, CURLE_URL_MALFORMAT);
    cr_assert_eq(c.t.srv.connections, 0, "nothing was sent");
    ctx_free(&c);
}

Test(h1, chunked_wins_over_a_content_length_sent_with_it)
{
    static const struct tstep script[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
         "2\r\nok\r\n0\r\n\r\n",
         0}};
    struct ctx c;
    setup(&c, script, 1, true);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "ok");
    ctx_free(&c);
}

/* A pool whose addresses are given: 127.0.0.1 at each of these ports, in order. */
static void
setup_pool_addrs(struct ctx *c, const int *ports, unsigned n, uint64_t connect_timeout_ms)
{
    struct sockaddr_storage addrs[4];
    memset(addrs, 0, sizeof(addrs));
    for (unsigned i = 0; i < n; i++)
        uv_ip4_addr("127.0.0.1", ports[i], (struct sockaddr_in *)&addrs[i]);
    snprintf(c->url, sizeof(c->url), "http://provider.test/v1/x");
    struct sl_h1_pool_cfg pc = {
        .base_url = "http://provider.test/v1",
        .max_connections = 4,
        .max_queued = 4,
        .connect_timeout_ms = connect_timeout_ms,
        .addrs = addrs,
        .naddrs = n,
    };
    c->p = sl_h1_pool_new(c->h, &pc);
    cr_assert_not_null(c->p);
}

Test(h1, a_refused_address_moves_on_to_the_next)
{
    static const struct tstep script[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    int ports[] = {1, c.t.srv.port}; /* nothing listens on port 1 */
    setup_pool_addrs(&c, ports, 2, 3000);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "ok");
    cr_assert(strstr(sl_buf_cstr(&c.t.srv.last_request), "\r\nHost: provider.test\r\n"));
    ctx_free(&c);
}

Test(h1, an_address_that_drops_the_connect_gets_its_share_then_the_next_serves)
{
    /* A listener whose one-place queue is full: the kernel drops further SYNs. */
    int hole = socket(AF_INET, SOCK_STREAM, 0), filler = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    socklen_t al = sizeof(a);
    cr_assert_eq(bind(hole, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(hole, 0), 0);
    getsockname(hole, (struct sockaddr *)&a, &al);
    cr_assert_eq(connect(filler, (struct sockaddr *)&a, sizeof(a)), 0);

    static const struct tstep script[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0}};
    struct ctx c;
    setup(&c, script, 1, false);
    int ports[] = {ntohs(a.sin_port), c.t.srv.port};
    setup_pool_addrs(&c, ports, 2, 3000); /* two addresses: 1.5 s each */
    add_timed(&c, 5000, 5000);
    run_and_teardown(&c);
    close(filler);
    close(hole);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c.t.body), "ok");
    uint64_t took = c.t.t_end - c.t.t_start;
    cr_assert(took >= 1400 && took < 3000, "the first address had its share, not more: %llu ms",
              (unsigned long long)took);
    ctx_free(&c);
}

Test(h1, an_empty_header_value_does_not_run_into_the_next_header)
{
    static const struct tstep script[] = {
        {"HTTP/1.1 429 Too Many\r\nX-Empty:\r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n", 0}};
    struct ctx c;
    setup(&c, script, 1, true);
    add(&c);
    run_and_teardown(&c);
    cr_assert_eq(c.t.rc, CURLE_OK, "%s", c.t.detail);
    cr_assert_str_eq(sl_buf_cstr(&c.t.head),
                     "HTTP/1.1 429 \r\nX-Empty: \r\nRetry-After: 3\r\nContent-Length: 0\r\n\r\n");
    ctx_free(&c);
}
