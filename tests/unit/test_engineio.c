/*
 * Unit tests for src/net/engineio.c, with real loops and real TCP: the handshake over both
 * transports and its refusals, long-polling (messages both ways, a held GET answered later,
 * binary as base64, the second pending GET, a client's close, malformed bodies, max_payload,
 * binary bodies), WebSocket (messages, binary, bad packets), the upgrade (probe, noop,
 * the queue moving onto the WebSocket, later requests refused), heartbeats and their
 * timeouts, a server-side close over both transports, the queue cap, CORS, shutdown, the
 * lifetime rule (on_close once, never inside a call), and the idle session's size.
 *
 * The endpoint is an echo server; a text message "close" makes it call sl_eio_close(),
 * "big:N" makes it send N bytes.
 */
#include "eio_harness.h"

#include "net/engineio.c"

#define PATH "/eio/"

struct app {
    struct sl_eio_server *eio;
    bool in_call; /* inside a call into the layer: on_close must not come */
};

static struct {
    struct sl_eio_options opt;
    int opens, closes;
    const char *reasons[64];
    bool close_inside;
} A;

static void
rec_lock(void)
{
    pthread_mutex_lock(&HV.lock);
}

static void
rec_unlock(void)
{
    pthread_mutex_unlock(&HV.lock);
}

static void
e_open(void *ud, struct sl_eio *s, const struct sl_http_req *req, struct sl_conn *c)
{
    (void)req;
    (void)c;
    sl_eio_set_user_data(s, ud);
    rec_lock();
    A.opens++;
    rec_unlock();
}

static void
e_message(void *ud, struct sl_eio *s, const char *data, size_t len, bool binary)
{
    struct app *a = ud;
    a->in_call = true;
    if (!binary && len == 5 && memcmp(data, "close", 5) == 0) {
        sl_eio_close(s);
    } else if (!binary && len == 3 && memcmp(data, "pos", 3) == 0) {
        /* The delivery positions as they stand: "<sent> <delivered>". */
        char pos[64];
        int n = snprintf(pos, sizeof(pos), "%llu %llu", (unsigned long long)sl_eio_sent(s),
                         (unsigned long long)sl_eio_delivered(s));
        sl_eio_send(s, pos, (size_t)n, false);
    } else if (!binary && len > 4 && memcmp(data, "big:", 4) == 0) {
        size_t n = (size_t)atol(data + 4);
        char *big = sl_malloc(n);
        memset(big, 'x', n);
        sl_eio_send(s, big, n, false);
        free(big);
    } else {
        sl_eio_send(s, data, len, binary);
    }
    a->in_call = false;
}

static void
e_close(void *ud, struct sl_eio *s, const char *reason)
{
    (void)s;
    struct app *a = ud;
    rec_lock();
    if (a->in_call)
        A.close_inside = true;
    if (A.closes < 64)
        A.reasons[A.closes] = reason;
    A.closes++;
    rec_unlock();
}

static const struct sl_eio_handler echo = {
    .on_open = e_open,
    .on_message = e_message,
    .on_close = e_close,
};

static bool
allow_origin(void *ud, struct sl_slice origin, struct sl_slice host)
{
    (void)ud;
    (void)host;
    return sl_slice_eq(origin, "https://good.example");
}

static void
hv_setup(struct hv_worker *w)
{
    struct app *a = sl_calloc(1, sizeof(*a));
    struct sl_eio_options o = A.opt;
    o.worker = w->id;
    o.origin_allowed = allow_origin;
    a->eio = sl_eio_server_new(w->loop, &o);
    sl_eio_server_add(a->eio, PATH, &echo, a);
    w->app = a;
}

static void
hv_request(struct hv_worker *w, struct sl_conn *c, struct sl_http_req *req)
{
    struct app *a = w->app;
    if (sl_eio_handle(a->eio, c, req) == SL_EIO_NOT_MINE)
        sl_http_respond(c, req, 404, "text/plain", NULL, "no", 2);
}

static void
hv_stop(struct hv_worker *w)
{
    struct app *a = w->app;
    sl_eio_server_shutdown(a->eio);
}

static void
hv_cleanup(struct hv_worker *w)
{
    struct app *a = w->app;
    sl_eio_server_free(a->eio);
    free(a);
}

static void
start_with(uint64_t ping_interval, uint64_t ping_timeout, uint64_t max_queued)
{
    memset(&A, 0, sizeof(A));
    A.opt = (struct sl_eio_options){
        .ping_interval_ms = ping_interval,
        .ping_timeout_ms = ping_timeout,
        .max_payload = 1000,
        .max_queued = max_queued,
        .upgrade_timeout_ms = 1000,
    };
    hv_start(1);
}

static void
start(void)
{
    start_with(20000, 20000, 1 << 20);
}

static void
finish(void)
{
    hv_finish();
    cr_assert_eq(A.opens, A.closes, "on_close once per opened session (%d opened, %d closed)",
                 A.opens, A.closes);
    cr_assert_not(A.close_inside, "on_close never inside a call");
}

/* Waits (bounded) until n sessions were closed; returns the reason of the last one. */
static const char *
wait_closes(int n)
{
    for (int i = 0; i < 5000; i++) {
        rec_lock();
        int k = A.closes;
        const char *r = k > 0 ? A.reasons[k - 1] : NULL;
        rec_unlock();
        if (k >= n)
            return r;
        usleep(1000);
    }
    cr_assert_fail("only %d sessions closed, expected %d", A.closes, n);
    return NULL;
}

struct held_q {
    const char *sid;
    bool held;
};

static void
check_held(struct hv_worker *w, void *arg)
{
    struct app *a = w->app;
    struct held_q *q = arg;
    struct sl_eio *s = table_find(a->eio, q->sid);
    q->held = s != NULL && s->get != NULL;
}

/* Waits (bounded) until the server holds a GET for sid: the order of two requests then is
 * known, without sleeping on it. */
static void
wait_get_held(const char *sid)
{
    struct held_q q = {sid, false};
    for (int i = 0; i < 5000 && !q.held; i++) {
        hv_call(0, check_held, &q);
        if (!q.held)
            usleep(1000);
    }
    cr_assert(q.held, "the GET was never held");
}

static void
open_polling(char *sid)
{
    struct hresp r;
    http_once(&r, "GET", PATH "?EIO=4&transport=polling", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    const char *b = sl_buf_ptr(&r.body);
    cr_assert_eq(b[0], '0', "handshake: %s", b);
    json_str(b + 1, "sid", sid, SL_EIO_SID_LEN + 1);
    cr_assert_eq(strlen(sid), SL_EIO_SID_LEN);
    hresp_free(&r);
}

static void
target(char *out, size_t n, const char *sid, const char *transport)
{
    snprintf(out, n, PATH "?EIO=4&transport=%s&sid=%s", transport, sid);
}

/* A GET on its own connection, answered (status into *status, body into *body). */
static void
poll_once(const char *sid, int *status, struct sl_buf *body)
{
    char t[128];
    struct hresp r;
    target(t, sizeof(t), sid, "polling");
    http_once(&r, "GET", t, NULL, NULL, 0);
    *status = r.status;
    sl_buf_clear(body);
    sl_buf_append(body, sl_buf_ptr(&r.body), sl_buf_len(&r.body));
    sl_buf_cstr(body);
    hresp_free(&r);
}

static int post_once(const char *sid, const char *body, size_t n, const char *headers);

/* A POST of a string without NULs. */
static int
post_str(const char *sid, const char *body)
{
    return post_once(sid, body, strlen(body), NULL);
}

static int
post_once(const char *sid, const char *body, size_t n, const char *headers)
{
    char t[128];
    struct hresp r;
    target(t, sizeof(t), sid, "polling");
    http_once(&r, "POST", t, headers, body, n);
    int st = r.status;
    if (st == 200)
        cr_assert_str_eq(sl_buf_ptr(&r.body), "ok");
    hresp_free(&r);
    return st;
}

Test(engineio, polling_handshake)
{
    start_with(300, 200, 1 << 20);
    struct hresp r;
    http_once(&r, "GET", PATH "?EIO=4&transport=polling", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(hc_header(&r, "Content-Type"), "text/plain; charset=UTF-8");
    const char *b = sl_buf_ptr(&r.body);
    char sid[32];
    json_str(b + 1, "sid", sid, sizeof(sid));
    char want[256];
    snprintf(want, sizeof(want),
             "0{\"sid\":\"%s\",\"upgrades\":[\"websocket\"],\"pingInterval\":300,"
             "\"pingTimeout\":200,\"maxPayload\":1000}",
             sid);
    cr_assert_str_eq(b, want);
    /* The sid names worker 0 in its first two characters. */
    cr_assert_eq(sid[0], 'A');
    cr_assert_eq(sid[1], 'A');
    hresp_free(&r);
    /* The path without its trailing slash is the same endpoint. */
    http_once(&r, "GET", "/eio?EIO=4&transport=polling", NULL, NULL, 0);
    cr_assert_eq(r.status, 200);
    hresp_free(&r);
    finish();
}

Test(engineio, bad_handshakes)
{
    start();
    static const struct {
        const char *method, *target;
        int status;
        const char *body;
    } cases[] = {
        {"GET", PATH "?transport=polling", 400,
         "{\"code\":5,\"message\":\"Unsupported protocol version\"}"},
        {"GET", PATH "?EIO=abc&transport=polling", 400, NULL},
        {"GET", PATH "?EIO=3&transport=polling", 400, NULL},
        {"GET", PATH "?EIO=4", 400, "{\"code\":0,\"message\":\"Transport unknown\"}"},
        {"GET", PATH "?EIO=4&transport=abc", 400, NULL},
        {"POST", PATH "?EIO=4&transport=polling", 400,
         "{\"code\":2,\"message\":\"Bad handshake method\"}"},
        {"PUT", PATH "?EIO=4&transport=polling", 400, NULL},
        {"GET", PATH "?EIO=4&transport=polling&sid=AAnosuchsessionxxxxx", 400,
         "{\"code\":1,\"message\":\"Session ID unknown\"}"},
        {"GET", PATH "?EIO=4&transport=polling&sid=short", 400, NULL},
        /* A sid naming a worker that does not exist. */
        {"GET", PATH "?EIO=4&transport=polling&sid=__nosuchsessionxxxxx", 400, NULL},
        /* transport=websocket without an upgrade. */
        {"GET", PATH "?EIO=4&transport=websocket", 400, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct hresp r;
        http_once(&r, cases[i].method, cases[i].target, NULL, NULL, 0);
        cr_assert_eq(r.status, cases[i].status, "%s %s: %d", cases[i].method, cases[i].target,
                     r.status);
        if (cases[i].body)
            cr_assert_str_eq(sl_buf_ptr(&r.body), cases[i].body);
        hresp_free(&r);
    }
    /* A WebSocket handshake with a bad query gets the same 400. */
    struct hc c;
    cr_assert_eq(ws_open(&c, PATH "?EIO=abc&transport=websocket"), 400);
    hc_close(&c);
    cr_assert_eq(A.opens, 0);
    finish();
}

Test(engineio, polling_messages_both_ways)
{
    start();
    char sid[32];
    open_polling(sid);
    cr_assert_eq(post_str(sid, "4hello"), 200);
    struct sl_buf body = SL_BUF_INIT;
    int st;
    poll_once(sid, &st, &body);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(sl_buf_ptr(&body), "4hello");

    /* Several packets, text and binary, in one body; echoed in one answer, in order. */
    static const char many[] = "4test1\x1e"
                               "4test2\x1e"
                               "bAQIDBA==\x1e"
                               "4\xc3\xa9t\xc3\xa9";
    cr_assert_eq(post_once(sid, many, sizeof(many) - 1, NULL), 200);
    poll_once(sid, &st, &body);
    cr_assert_str_eq(sl_buf_ptr(&body), many);
    sl_buf_free(&body);
    finish();
}

Test(engineio, long_polling_counts_what_the_next_get_confirms_delivered)
{
    start();
    char sid[32];
    open_polling(sid);
    struct sl_buf body = SL_BUF_INIT;
    int st;
    cr_assert_eq(post_str(sid, "4a"), 200); /* echoed: 2 bytes sent ('4' and "a") */
    poll_once(sid, &st, &body);
    cr_assert_str_eq(sl_buf_ptr(&body), "4a");
    /* Sent, but no GET since: not known to have arrived. */
    cr_assert_eq(post_str(sid, "4pos"), 200);
    poll_once(sid, &st, &body);
    cr_assert_str_eq(sl_buf_ptr(&body), "42 0");
    /* That GET confirmed "a"; the "2 0" answer (4 bytes) was still waiting then. */
    cr_assert_eq(post_str(sid, "4pos"), 200);
    poll_once(sid, &st, &body);
    cr_assert_str_eq(sl_buf_ptr(&body), "46 2");
    sl_buf_free(&body);
    finish();
}

Test(engineio, held_get_is_answered_when_there_is_something)
{
    start();
    char sid[32], t[128];
    open_polling(sid);
    struct hc get;
    hc_open(&get);
    target(t, sizeof(t), sid, "polling");
    hc_request(&get, "GET", t, NULL, NULL, 0);
    /* Nothing yet: the GET waits. (The POST comes on another connection.) */
    cr_assert_eq(post_str(sid, "4one\x1e"
                               "4two"),
                 200);
    struct hresp r;
    cr_assert(hc_response(&get, &r));
    cr_assert_eq(r.status, 200);
    /* Both echoes leave in the one answer: written at the end of the turn. */
    cr_assert_str_eq(sl_buf_ptr(&r.body), "4one\x1e"
                                          "4two");
    hresp_free(&r);
    /* The same connection carries the next GET (keep-alive). */
    hc_request(&get, "GET", t, NULL, NULL, 0);
    cr_assert_eq(post_str(sid, "4three"), 200);
    cr_assert(hc_response(&get, &r));
    cr_assert_str_eq(sl_buf_ptr(&r.body), "4three");
    hresp_free(&r);
    hc_close(&get);
    finish();
}

Test(engineio, second_pending_get_closes_the_session)
{
    start();
    char sid[32], t[128];
    open_polling(sid);
    target(t, sizeof(t), sid, "polling");
    struct hc first;
    hc_open(&first);
    hc_request(&first, "GET", t, NULL, NULL, 0);
    wait_get_held(sid);
    struct hresp r2, r1;
    http_once(&r2, "GET", t, NULL, NULL, 0);
    cr_assert_eq(r2.status, 400);
    cr_assert(hc_response(&first, &r1));
    cr_assert_eq(r1.status, 200);
    cr_assert_str_eq(sl_buf_ptr(&r1.body), "1");
    hresp_free(&r1);
    hresp_free(&r2);
    hc_close(&first);
    cr_assert_eq(wait_closes(1), SL_EIO_R_ERROR);
    struct sl_buf body = SL_BUF_INIT;
    int st;
    poll_once(sid, &st, &body);
    cr_assert_eq(st, 400);
    sl_buf_free(&body);
    finish();
}

Test(engineio, client_close_releases_the_pending_get_with_a_noop)
{
    start();
    char sid[32], t[128];
    open_polling(sid);
    target(t, sizeof(t), sid, "polling");
    struct hc get;
    hc_open(&get);
    hc_request(&get, "GET", t, NULL, NULL, 0);
    wait_get_held(sid);
    cr_assert_eq(post_str(sid, "1"), 200);
    struct hresp r;
    cr_assert(hc_response(&get, &r));
    cr_assert_str_eq(sl_buf_ptr(&r.body), "6");
    hresp_free(&r);
    hc_close(&get);
    cr_assert_eq(wait_closes(1), SL_EIO_R_CLIENT);
    finish();
}

Test(engineio, client_going_away_from_its_poll_ends_the_session)
{
    start();
    char sid[32], t[128];
    open_polling(sid);
    target(t, sizeof(t), sid, "polling");
    struct hc get;
    hc_open(&get);
    hc_request(&get, "GET", t, NULL, NULL, 0);
    wait_get_held(sid);
    hc_reset(&get);
    cr_assert_eq(wait_closes(1), SL_EIO_R_CLIENT);
    finish();
}

Test(engineio, malformed_and_oversized_bodies)
{
    start();
    char sid[32];
    struct sl_buf body = SL_BUF_INIT;
    int st;

    open_polling(sid);
    cr_assert_eq(post_str(sid, "abc"), 400);
    cr_assert_eq(wait_closes(1), SL_EIO_R_PARSE);
    poll_once(sid, &st, &body);
    cr_assert_eq(st, 400);

    /* Packets before the bad one are handled; the session then ends. */
    open_polling(sid);
    cr_assert_eq(post_str(sid, "4ok\x1e\x1e"), 400);
    cr_assert_eq(wait_closes(2), SL_EIO_R_PARSE);

    open_polling(sid);
    cr_assert_eq(post_str(sid, "4\xff"), 400);
    cr_assert_eq(wait_closes(3), SL_EIO_R_PARSE);

    open_polling(sid);
    cr_assert_eq(post_str(sid, ""), 400);
    cr_assert_eq(wait_closes(4), SL_EIO_R_PARSE);

    /* max_payload is 1000 here. */
    open_polling(sid);
    char big[1001];
    memset(big, 'x', sizeof(big));
    big[0] = '4';
    cr_assert_eq(post_once(sid, big, sizeof(big), NULL), 413);
    cr_assert_eq(wait_closes(5), SL_EIO_R_ERROR);
    open_polling(sid);
    cr_assert_eq(post_once(sid, big, sizeof(big) - 1, NULL), 200);
    poll_once(sid, &st, &body);
    cr_assert_eq(sl_buf_len(&body), 1000);

    /* v4 carries binary as base64, never as an octet-stream body. */
    cr_assert_eq(post_once(sid, "\x01\x02", 2, "Content-Type: application/octet-stream\r\n"), 400);
    cr_assert_eq(wait_closes(6), SL_EIO_R_ERROR);

    /* A client ping is the wrong direction in v4. */
    open_polling(sid);
    cr_assert_eq(post_str(sid, "2"), 200);
    cr_assert_eq(wait_closes(7), SL_EIO_R_ERROR);
    sl_buf_free(&body);
    finish();
}

Test(engineio, websocket_transport)
{
    start_with(300, 200, 1 << 20);
    struct hc ws;
    struct sl_buf m = SL_BUF_INIT;
    cr_assert_eq(ws_open(&ws, PATH "?EIO=4&transport=websocket"), 101);
    cr_assert_eq(ws_recv(&ws, &m), 1);
    char sid[32], want[256];
    json_str(sl_buf_ptr(&m) + 1, "sid", sid, sizeof(sid));
    snprintf(want, sizeof(want),
             "0{\"sid\":\"%s\",\"upgrades\":[],\"pingInterval\":300,\"pingTimeout\":200,"
             "\"maxPayload\":1000}",
             sid);
    cr_assert_str_eq(sl_buf_ptr(&m), want);
    ws_text(&ws, "4hello");
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_str_eq(sl_buf_ptr(&m), "4hello");
    const uint8_t bin[] = {1, 2, 3, 4};
    ws_send(&ws, 2, bin, sizeof(bin));
    cr_assert_eq(ws_recv(&ws, &m), 2);
    cr_assert_eq(sl_buf_len(&m), 4);
    cr_assert(memcmp(sl_buf_ptr(&m), bin, 4) == 0);
    /* Heartbeat: pings keep coming as long as pongs answer them. */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ws_recv(&ws, &m), 1);
        cr_assert_str_eq(sl_buf_ptr(&m), "2");
        ws_text(&ws, "3");
    }
    /* A polling request with a WebSocket session's sid is refused. */
    struct sl_buf body = SL_BUF_INIT;
    int st;
    poll_once(sid, &st, &body);
    cr_assert_eq(st, 400);
    sl_buf_free(&body);
    /* An invalid packet closes with 1002. */
    ws_text(&ws, "abc");
    cr_assert_eq(ws_recv(&ws, &m), 8);
    cr_assert_eq(ws_close_code(&m), 1002);
    hc_close(&ws);
    cr_assert_eq(wait_closes(1), SL_EIO_R_PARSE);
    sl_buf_free(&m);
    finish();
}

Test(engineio, websocket_over_max_payload_is_closed)
{
    start();
    struct hc ws;
    struct sl_buf m = SL_BUF_INIT;
    cr_assert_eq(ws_open(&ws, PATH "?EIO=4&transport=websocket"), 101);
    cr_assert_eq(ws_recv(&ws, &m), 1);
    char big[1002];
    memset(big, 'x', sizeof(big));
    big[0] = '4';
    ws_send(&ws, 1, big, sizeof(big));
    cr_assert_eq(ws_recv(&ws, &m), 8);
    cr_assert_eq(ws_close_code(&m), 1009);
    hc_close(&ws);
    cr_assert_eq(wait_closes(1), SL_EIO_R_CLIENT);
    sl_buf_free(&m);
    finish();
}

Test(engineio, ping_timeouts)
{
    start_with(100, 100, 1 << 20);
    char sid[32];
    struct sl_buf body = SL_BUF_INIT;
    int st;
    open_polling(sid);
    /* Long-polling: each GET brings a ping, each POSTed pong keeps the session. */
    for (int i = 0; i < 3; i++) {
        poll_once(sid, &st, &body);
        cr_assert_eq(st, 200);
        cr_assert_str_eq(sl_buf_ptr(&body), "2");
        cr_assert_eq(post_str(sid, "3"), 200);
    }
    /* No pong: gone after interval + timeout. */
    cr_assert_eq(wait_closes(1), SL_EIO_R_PING);
    poll_once(sid, &st, &body);
    cr_assert_eq(st, 400);

    struct hc ws;
    struct sl_buf m = SL_BUF_INIT;
    cr_assert_eq(ws_open(&ws, PATH "?EIO=4&transport=websocket"), 101);
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_str_eq(sl_buf_ptr(&m), "2");
    cr_assert_eq(ws_recv(&ws, &m), 8);
    cr_assert_eq(ws_close_code(&m), 4008);
    cr_assert_eq(wait_closes(2), SL_EIO_R_PING);
    hc_close(&ws);
    sl_buf_free(&m);
    sl_buf_free(&body);
    finish();
}

Test(engineio, upgrade_from_polling)
{
    start();
    char sid[32], t[128];
    struct sl_buf m = SL_BUF_INIT;
    open_polling(sid);
    target(t, sizeof(t), sid, "polling");
    struct hc get;
    hc_open(&get);
    hc_request(&get, "GET", t, NULL, NULL, 0);

    char wt[128];
    target(wt, sizeof(wt), sid, "websocket");
    struct hc ws;
    cr_assert_eq(ws_open(&ws, wt), 101);
    ws_text(&ws, "2probe");
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_str_eq(sl_buf_ptr(&m), "3probe");
    /* The pending GET is released with a noop. */
    struct hresp r;
    cr_assert(hc_response(&get, &r));
    cr_assert_str_eq(sl_buf_ptr(&r.body), "6");
    hresp_free(&r);
    /* A GET during the upgrade is answered with a noop at once. */
    struct sl_buf body = SL_BUF_INIT;
    int st;
    poll_once(sid, &st, &body);
    cr_assert_eq(st, 200);
    cr_assert_str_eq(sl_buf_ptr(&body), "6");
    /* Messages still come by polling until "5": their echoes wait in the queue... */
    cr_assert_eq(post_str(sid, "4queued\x1e"
                               "bAQI="),
                 200);
    /* ...and leave on the WebSocket once it is the transport, in order. */
    ws_text(&ws, "5");
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_str_eq(sl_buf_ptr(&m), "4queued");
    cr_assert_eq(ws_recv(&ws, &m), 2);
    cr_assert_eq(sl_buf_len(&m), 2);
    ws_text(&ws, "4after");
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_str_eq(sl_buf_ptr(&m), "4after");

    /* Polling with this sid is over, and so is upgrading again. */
    poll_once(sid, &st, &body);
    cr_assert_eq(st, 400);
    struct hc ws2;
    cr_assert_eq(ws_open(&ws2, wt), 101);
    cr_assert_eq(ws_recv(&ws2, &m), 8);
    cr_assert_eq(ws_close_code(&m), 1002);
    hc_close(&ws2);
    /* The session lives on. */
    ws_text(&ws, "4still");
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_str_eq(sl_buf_ptr(&m), "4still");
    hc_close(&get);
    hc_close(&ws);
    cr_assert_eq(wait_closes(1), SL_EIO_R_CLIENT);
    sl_buf_free(&m);
    sl_buf_free(&body);
    finish();
}

Test(engineio, a_bad_probe_leaves_the_polling_session)
{
    start();
    char sid[32], wt[128];
    struct sl_buf m = SL_BUF_INIT, body = SL_BUF_INIT;
    int st;
    open_polling(sid);
    target(wt, sizeof(wt), sid, "websocket");
    struct hc ws;
    cr_assert_eq(ws_open(&ws, wt), 101);
    ws_text(&ws, "4not a probe");
    cr_assert_eq(ws_recv(&ws, &m), 8);
    cr_assert_eq(ws_close_code(&m), 1002);
    hc_close(&ws);
    cr_assert_eq(post_str(sid, "4alive"), 200);
    poll_once(sid, &st, &body);
    cr_assert_str_eq(sl_buf_ptr(&body), "4alive");
    /* A probe that never completes is closed after upgrade_timeout (1 s here). */
    cr_assert_eq(ws_open(&ws, wt), 101);
    ws_text(&ws, "2probe");
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_eq(ws_recv(&ws, &m), 8);
    cr_assert_eq(ws_close_code(&m), 1002);
    hc_close(&ws);
    cr_assert_eq(post_str(sid, "4still"), 200);
    poll_once(sid, &st, &body);
    cr_assert_str_eq(sl_buf_ptr(&body), "4still");
    cr_assert_eq(A.closes, 0);
    sl_buf_free(&m);
    sl_buf_free(&body);
    finish();
}

Test(engineio, server_close)
{
    start_with(20000, 300, 1 << 20);
    char sid[32];
    struct sl_buf m = SL_BUF_INIT, body = SL_BUF_INIT;
    int st;
    /* Long-polling, no GET waiting: the queue and a close packet go with the next GET. */
    open_polling(sid);
    cr_assert_eq(post_str(sid, "4bye\x1e"
                               "4close"),
                 200);
    poll_once(sid, &st, &body);
    cr_assert_str_eq(sl_buf_ptr(&body), "4bye\x1e"
                                        "1");
    cr_assert_eq(wait_closes(1), SL_EIO_R_SERVER);
    poll_once(sid, &st, &body);
    cr_assert_eq(st, 400);
    /* No GET comes: the session ends after ping_timeout anyway. */
    open_polling(sid);
    cr_assert_eq(post_str(sid, "4close"), 200);
    cr_assert_eq(wait_closes(2), SL_EIO_R_SERVER);
    /* WebSocket: what was sent first still arrives, then the close. */
    struct hc ws;
    cr_assert_eq(ws_open(&ws, PATH "?EIO=4&transport=websocket"), 101);
    cr_assert_eq(ws_recv(&ws, &m), 1);
    ws_text(&ws, "4x");
    ws_text(&ws, "4close");
    cr_assert_eq(ws_recv(&ws, &m), 1);
    cr_assert_str_eq(sl_buf_ptr(&m), "4x");
    cr_assert_eq(ws_recv(&ws, &m), 8);
    cr_assert_eq(ws_close_code(&m), 1000);
    hc_close(&ws);
    cr_assert_eq(wait_closes(3), SL_EIO_R_SERVER);
    sl_buf_free(&m);
    sl_buf_free(&body);
    finish();
}

Test(engineio, queue_cap_closes_a_client_that_does_not_read)
{
    start_with(20000, 20000, 4096);
    char sid[32];
    open_polling(sid);
    cr_assert_eq(post_str(sid, "4big:3000"), 200);
    cr_assert_eq(A.closes, 0);
    cr_assert_eq(post_str(sid, "4big:3000"), 200);
    cr_assert_eq(wait_closes(1), SL_EIO_R_QUEUE);
    finish();
}

Test(engineio, cors)
{
    start();
    struct hresp r;
    http_once(&r, "GET", PATH "?EIO=4&transport=polling", "Origin: https://good.example\r\n", NULL,
              0);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(hc_header(&r, "Access-Control-Allow-Origin"), "https://good.example");
    cr_assert_str_eq(hc_header(&r, "Access-Control-Allow-Credentials"), "true");
    char sid[32];
    json_str(sl_buf_ptr(&r.body) + 1, "sid", sid, sizeof(sid));
    hresp_free(&r);
    /* A held GET answered later carries them too. */
    char t[128];
    target(t, sizeof(t), sid, "polling");
    struct hc get;
    hc_open(&get);
    hc_request(&get, "GET", t, "Origin: https://good.example\r\n", NULL, 0);
    cr_assert_eq(post_once(sid, "4x", 2, "Origin: https://good.example\r\n"), 200);
    cr_assert(hc_response(&get, &r));
    cr_assert_str_eq(sl_buf_ptr(&r.body), "4x");
    cr_assert_str_eq(hc_header(&r, "Access-Control-Allow-Origin"), "https://good.example");
    hresp_free(&r);
    hc_close(&get);
    /* Preflight. */
    http_once(&r, "OPTIONS", PATH "?EIO=4&transport=polling",
              "Origin: https://good.example\r\nAccess-Control-Request-Method: POST\r\n"
              "Access-Control-Request-Headers: content-type\r\n",
              NULL, 0);
    cr_assert_eq(r.status, 204);
    cr_assert_str_eq(hc_header(&r, "Access-Control-Allow-Origin"), "https://good.example");
    cr_assert_not_null(strstr(hc_header(&r, "Access-Control-Allow-Methods"), "POST"));
    cr_assert_str_eq(hc_header(&r, "Access-Control-Allow-Headers"), "content-type");
    hresp_free(&r);
    /* No Origin: no CORS headers; another origin: refused. */
    http_once(&r, "GET", PATH "?EIO=4&transport=polling", NULL, NULL, 0);
    cr_assert_null(hc_header(&r, "Access-Control-Allow-Origin"));
    hresp_free(&r);
    http_once(&r, "GET", PATH "?EIO=4&transport=polling", "Origin: https://evil.example\r\n", NULL,
              0);
    cr_assert_eq(r.status, 403);
    hresp_free(&r);
    finish();
}

static void
do_shutdown(struct hv_worker *w, void *arg)
{
    (void)arg;
    struct app *a = w->app;
    sl_eio_server_shutdown(a->eio);
}

Test(engineio, shutdown_closes_every_session)
{
    start();
    char sid[32], t[128];
    struct sl_buf m = SL_BUF_INIT;
    open_polling(sid);
    target(t, sizeof(t), sid, "polling");
    struct hc get;
    hc_open(&get);
    hc_request(&get, "GET", t, NULL, NULL, 0);
    char idle[32];
    open_polling(idle);
    struct hc ws;
    cr_assert_eq(ws_open(&ws, PATH "?EIO=4&transport=websocket"), 101);
    cr_assert_eq(ws_recv(&ws, &m), 1);
    wait_get_held(sid);
    hv_call(0, do_shutdown, NULL);
    struct hresp r;
    cr_assert(hc_response(&get, &r));
    cr_assert_str_eq(sl_buf_ptr(&r.body), "1");
    hresp_free(&r);
    cr_assert_eq(ws_recv(&ws, &m), 8);
    cr_assert_eq(ws_close_code(&m), 1001);
    cr_assert_eq(wait_closes(3), SL_EIO_R_SHUTDOWN);
    /* New handshakes are refused. */
    http_once(&r, "GET", PATH "?EIO=4&transport=polling", NULL, NULL, 0);
    cr_assert_eq(r.status, 503);
    hresp_free(&r);
    hc_close(&get);
    hc_close(&ws);
    sl_buf_free(&m);
    finish();
}

Test(engineio, an_idle_session_is_small)
{
    /* The promise of the header: about 170 bytes beside the connection and its sl_ws. */
    cr_assert_leq(sizeof(struct sl_eio), 176, "struct sl_eio is %zu bytes", sizeof(struct sl_eio));
}
