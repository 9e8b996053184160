/*
 * Unit tests for src/net/socketio.c over a real Engine.IO server and real TCP: namespaces
 * (join, payload, unknown, refused, decided later, left), events and acks both ways, binary
 * events and acks with attachments (WebSocket frames and long-polling base64), every kind
 * of bad input ending the connection, the connect timeout, connection state recovery
 * (pid in the reply, pid/offset handed to on_connect, offsets on events), the connection
 * handler, and the lifetime rule (on_disconnect once per socket not refused).
 *
 * Namespaces of the test server: "/" and "/custom" behave as the reference server of the
 * socket.io-protocol test suite; "/refuse" refuses; "/later" waits for the test to decide;
 * "/ask" emits an event that wants an ack; "/recover" accepts with the pid it is given and
 * reports what it got; "/who" reports the connection handler's state (the ?token=).
 */
#include "eio_harness.h"

#include "net/engineio.h"
#include "net/socketio.c"

#define PATH "/sio/"

struct app {
    struct sl_eio_server *eio;
    struct sl_sio_server *sio;
};

static struct {
    int connects, disconnects, refused, acks;
    char last_reason[64];
    char last_ack[128];
    struct sl_sio_socket *later; /* the pending socket of /later */
    int conn_opens, conn_closes;
} R;

static void
lock(void)
{
    pthread_mutex_lock(&HV.lock);
}

static void
unlock(void)
{
    pthread_mutex_unlock(&HV.lock);
}

static void
emit_args(struct sl_sio_socket *s, const char *event, struct sl_slice args)
{
    sl_sio_emit(s, &(struct sl_sio_emit){.event = event, .args = args});
}

static void
echo_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    (void)ud;
    lock();
    R.connects++;
    unlock();
    sl_sio_accept(s, NULL, NULL);
    emit_args(s, "auth", ci->auth);
}

static void
echo_event(void *ud, struct sl_sio_socket *s, const struct sl_sio_event *ev)
{
    (void)ud;
    if (strcmp(ev->name, "message") == 0)
        sl_sio_emit(s, &(struct sl_sio_emit){.event = "message-back",
                                             .args = ev->args,
                                             .attachments = ev->attachments,
                                             .nattachments = ev->nattachments});
    else if (strcmp(ev->name, "message-with-ack") == 0 && ev->ack >= 0)
        sl_sio_ack(s, (uint64_t)ev->ack, ev->args, ev->attachments, ev->nattachments);
    else if (strcmp(ev->name, "with-offset") == 0)
        sl_sio_emit(s, &(struct sl_sio_emit){.event = "x", .args = ev->args, .offset = "17-3"});
    else if (strcmp(ev->name, "leave") == 0)
        sl_sio_disconnect(s);
    else if (strcmp(ev->name, "close") == 0)
        sl_sio_close(sl_sio_socket_conn(s));
}

static void
on_ack(void *ud, struct sl_sio_socket *s, uint64_t id, struct sl_slice args,
       const struct sl_slice *att, size_t natt)
{
    (void)ud;
    (void)s;
    (void)att;
    lock();
    R.acks++;
    snprintf(R.last_ack, sizeof(R.last_ack), "%llu:%.*s:%zu", (unsigned long long)id, (int)args.len,
             args.ptr, natt);
    unlock();
}

static void
on_disconnect(void *ud, struct sl_sio_socket *s, const char *reason)
{
    (void)ud;
    (void)s;
    lock();
    R.disconnects++;
    snprintf(R.last_reason, sizeof(R.last_reason), "%s", reason);
    if (s == R.later)
        R.later = NULL;
    unlock();
}

static const struct sl_sio_nsp_handler echo_nsp = {
    .on_connect = echo_connect,
    .on_event = echo_event,
    .on_ack = on_ack,
    .on_disconnect = on_disconnect,
};

static void
refuse_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    (void)ud;
    (void)ci;
    lock();
    R.refused++;
    unlock();
    sl_sio_refuse(s, SL_SLICE("{\"message\":\"no\"}"));
}

static const struct sl_sio_nsp_handler refuse_nsp = {
    .on_connect = refuse_connect,
    .on_event = echo_event,
    .on_disconnect = on_disconnect,
};

static void
later_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    (void)ud;
    (void)ci;
    lock();
    R.connects++;
    R.later = s;
    unlock();
}

static const struct sl_sio_nsp_handler later_nsp = {
    .on_connect = later_connect,
    .on_event = echo_event,
    .on_disconnect = on_disconnect,
};

static void
ask_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    (void)ud;
    (void)ci;
    lock();
    R.connects++;
    unlock();
    sl_sio_accept(s, NULL, NULL);
    int64_t id = sl_sio_emit(s, &(struct sl_sio_emit){.event = "ping", .want_ack = true});
    cr_assert_eq(id, 0);
    id = sl_sio_emit(s, &(struct sl_sio_emit){.event = "ping", .want_ack = true});
    cr_assert_eq(id, 1);
}

static const struct sl_sio_nsp_handler ask_nsp = {
    .on_connect = ask_connect,
    .on_event = echo_event,
    .on_ack = on_ack,
    .on_disconnect = on_disconnect,
};

static void
recover_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    (void)ud;
    lock();
    R.connects++;
    unlock();
    sl_sio_accept(s, ci->pid, NULL);
    struct sl_buf args = SL_BUF_INIT;
    sl_jsonw_cstr(&args, ci->pid ? ci->pid : "-");
    sl_buf_append_byte(&args, ',');
    sl_jsonw_cstr(&args, ci->offset ? ci->offset : "-");
    emit_args(s, "got", sl_slice_make(sl_buf_ptr(&args), sl_buf_len(&args)));
    sl_buf_free(&args);
}

static const struct sl_sio_nsp_handler recover_nsp = {
    .on_connect = recover_connect,
    .on_event = echo_event,
    .on_disconnect = on_disconnect,
};

static void
who_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    (void)ud;
    lock();
    R.connects++;
    unlock();
    sl_sio_accept(s, NULL, NULL);
    char args[128];
    snprintf(args, sizeof(args), "\"%s\"", ci->conn_ud ? (const char *)ci->conn_ud : "-");
    emit_args(s, "token", sl_slice_make(args, strlen(args)));
}

static const struct sl_sio_nsp_handler who_nsp = {
    .on_connect = who_connect,
    .on_event = echo_event,
    .on_disconnect = on_disconnect,
};

static void *
conn_open(void *ud, struct sl_sio_conn *conn, const struct sl_http_req *req, struct sl_conn *c)
{
    (void)ud;
    (void)conn;
    (void)c;
    char tok[64];
    lock();
    R.conn_opens++;
    unlock();
    if (sl_http_query_param(req, "token", tok, sizeof(tok)) > 0)
        return sl_strdup(tok);
    return NULL;
}

static void
conn_close(void *ud, void *conn_ud, const char *reason)
{
    (void)ud;
    (void)reason;
    free(conn_ud);
    lock();
    R.conn_closes++;
    unlock();
}

static const struct sl_sio_conn_handler conn_handler = {
    .on_open = conn_open,
    .on_close = conn_close,
};

static uint64_t connect_timeout_ms = 1000;

static void
hv_setup(struct hv_worker *w)
{
    struct app *a = sl_calloc(1, sizeof(*a));
    struct sl_eio_options eo = {
        .ping_interval_ms = 20000,
        .ping_timeout_ms = 20000,
        .max_payload = 100000,
        .max_queued = 1 << 20,
        .worker = w->id,
    };
    a->eio = sl_eio_server_new(w->loop, &eo);
    struct sl_sio_options so = {
        .connect_timeout_ms = connect_timeout_ms,
        .recovery = true,
        .max_attachments = 3,
        .max_binary = 1000,
    };
    a->sio = sl_sio_server_new(a->eio, w->loop, PATH, &so, &conn_handler, a);
    sl_sio_server_add_nsp(a->sio, "/", &echo_nsp, a);
    sl_sio_server_add_nsp(a->sio, "/custom", &echo_nsp, a);
    sl_sio_server_add_nsp(a->sio, "/refuse", &refuse_nsp, a);
    sl_sio_server_add_nsp(a->sio, "/later", &later_nsp, a);
    sl_sio_server_add_nsp(a->sio, "/ask", &ask_nsp, a);
    sl_sio_server_add_nsp(a->sio, "/recover", &recover_nsp, a);
    sl_sio_server_add_nsp(a->sio, "/who", &who_nsp, a);
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
    sl_sio_server_free(a->sio);
    sl_eio_server_free(a->eio);
    free(a);
}

static void
start(void)
{
    memset(&R, 0, sizeof(R));
    hv_start(1);
}

static void
finish(void)
{
    hv_finish();
    cr_assert_eq(R.connects, R.disconnects,
                 "on_disconnect once per socket not refused (%d connects, %d disconnects)",
                 R.connects, R.disconnects);
    cr_assert_eq(R.conn_opens, R.conn_closes);
}

/* Opens a WebSocket Engine.IO session at PATH (query appended), past its handshake. */
static void
sio_open(struct hc *c, struct sl_buf *m, const char *query)
{
    char t[256];
    snprintf(t, sizeof(t), PATH "?EIO=4&transport=websocket%s", query ? query : "");
    cr_assert_eq(ws_open(c, t), 101);
    cr_assert_eq(ws_recv(c, m), 1);
    cr_assert_eq(sl_buf_ptr(m)[0], '0');
}

static void
expect_text(struct hc *c, struct sl_buf *m, const char *want)
{
    cr_assert_eq(ws_recv_data(c, m), 1, "expected %s", want);
    cr_assert_str_eq(sl_buf_ptr(m), want);
}

/* Waits for the server to close the WebSocket (a close frame, or the end of the stream). */
static void
expect_closed(struct hc *c, struct sl_buf *m)
{
    for (;;) {
        int op = ws_recv(c, m);
        if (op == 8 || op == -1) {
            cr_assert_not(c->timed_out, "the connection was not closed in time");
            return;
        }
        cr_assert(op == 1 || op == 2, "unexpected opcode %d", op);
        cr_assert_str_neq(sl_buf_ptr(m), "4", "no answer expected");
    }
}

/* Joins "/" and checks the reply; returns the socket id in sid. */
static void
join_main(struct hc *c, struct sl_buf *m)
{
    ws_text(c, "40");
    cr_assert_eq(ws_recv_data(c, m), 1);
    cr_assert(strncmp(sl_buf_ptr(m), "40{\"sid\":\"", 10) == 0, "%s", sl_buf_ptr(m));
    expect_text(c, m, "42[\"auth\",{}]");
}

Test(socketio, connect_to_namespaces)
{
    start();
    struct hc c;
    struct sl_buf m = SL_BUF_INIT;
    sio_open(&c, &m, NULL);
    ws_text(&c, "40");
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    char sid[32], pid[32];
    json_str(sl_buf_ptr(&m) + 2, "sid", sid, sizeof(sid));
    json_str(sl_buf_ptr(&m) + 2, "pid", pid, sizeof(pid));
    cr_assert_eq(strlen(sid), SL_SIO_ID_LEN);
    cr_assert_eq(strlen(pid), SL_SIO_ID_LEN);
    expect_text(&c, &m, "42[\"auth\",{}]");

    ws_text(&c, "40/custom,{\"token\":\"abc\"}");
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    cr_assert(strncmp(sl_buf_ptr(&m), "40/custom,{\"sid\":\"", 18) == 0, "%s", sl_buf_ptr(&m));
    expect_text(&c, &m, "42/custom,[\"auth\",{\"token\":\"abc\"}]");

    /* Unknown and refused namespaces: an error packet, and the connection stays. */
    ws_text(&c, "40/random");
    expect_text(&c, &m, "44/random,{\"message\":\"Invalid namespace\"}");
    ws_text(&c, "40/refuse,{}");
    expect_text(&c, &m, "44/refuse,{\"message\":\"no\"}");
    ws_text(&c, "42[\"message\",1]");
    expect_text(&c, &m, "42[\"message-back\",1]");

    /* Leaving a namespace keeps the others. */
    ws_text(&c, "41/custom");
    ws_text(&c, "42[\"message\",\"main\"]");
    expect_text(&c, &m, "42[\"message-back\",\"main\"]");
    lock();
    cr_assert_str_eq(R.last_reason, SL_SIO_R_CLIENT_NSP);
    cr_assert_eq(R.refused, 1);
    unlock();
    hc_close(&c);
    sl_buf_free(&m);
    finish();
}

Test(socketio, events_and_acks)
{
    start();
    struct hc c;
    struct sl_buf m = SL_BUF_INIT;
    sio_open(&c, &m, NULL);
    join_main(&c, &m);
    ws_text(&c, "42[\"message\",1,\"2\",{\"3\":[true]}]");
    expect_text(&c, &m, "42[\"message-back\",1,\"2\",{\"3\":[true]}]");
    ws_text(&c, "42456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]");
    expect_text(&c, &m, "43456[1,\"2\",{\"3\":[false]}]");
    /* An event nobody listens to is no error. */
    ws_text(&c, "42[\"unheard\"]");
    ws_text(&c, "42[\"with-offset\",\"a\"]");
    expect_text(&c, &m, "42[\"x\",\"a\",\"17-3\"]");

    /* Server to client with an ack. */
    ws_text(&c, "40/ask,");
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    expect_text(&c, &m, "42/ask,0[\"ping\"]");
    expect_text(&c, &m, "42/ask,1[\"ping\"]");
    ws_text(&c, "43/ask,1[\"pong\",2]");
    ws_text(&c, "42/ask,[\"message\",\"sync\"]");
    expect_text(&c, &m, "42/ask,[\"message-back\",\"sync\"]");
    lock();
    cr_assert_eq(R.acks, 1);
    cr_assert_str_eq(R.last_ack, "1:\"pong\",2:0");
    unlock();
    hc_close(&c);
    sl_buf_free(&m);
    finish();
}

Test(socketio, binary_events_and_acks_over_websocket)
{
    start();
    struct hc c;
    struct sl_buf m = SL_BUF_INIT;
    sio_open(&c, &m, NULL);
    join_main(&c, &m);
    ws_text(&c, "452-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,"
                "\"num\":1}]");
    ws_send(&c, 2, "\x01\x02\x03", 3);
    ws_send(&c, 2, "\x04\x05\x06", 3);
    expect_text(&c, &m,
                "452-[\"message-back\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,"
                "\"num\":1}]");
    cr_assert_eq(ws_recv_data(&c, &m), 2);
    cr_assert(sl_buf_len(&m) == 3 && memcmp(sl_buf_ptr(&m), "\x01\x02\x03", 3) == 0);
    cr_assert_eq(ws_recv_data(&c, &m), 2);
    cr_assert(sl_buf_len(&m) == 3 && memcmp(sl_buf_ptr(&m), "\x04\x05\x06", 3) == 0);

    ws_text(&c, "452-789[\"message-with-ack\",{\"_placeholder\":true,\"num\":0},"
                "{\"_placeholder\":true,\"num\":1}]");
    ws_send(&c, 2, "\x07", 1);
    ws_send(&c, 2, "", 0);
    expect_text(&c, &m,
                "462-789[{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
    cr_assert_eq(ws_recv_data(&c, &m), 2);
    cr_assert(sl_buf_len(&m) == 1);
    cr_assert_eq(ws_recv_data(&c, &m), 2);
    cr_assert(sl_buf_len(&m) == 0);
    /* A binary packet announcing no attachment is complete at once. */
    ws_text(&c, "450-[\"message\",\"nothing\"]");
    expect_text(&c, &m, "42[\"message-back\",\"nothing\"]");
    hc_close(&c);
    sl_buf_free(&m);
    finish();
}

Test(socketio, binary_over_long_polling)
{
    start();
    struct hresp r;
    http_once(&r, "GET", PATH "?EIO=4&transport=polling", NULL, NULL, 0);
    char sid[32], t[128];
    json_str(sl_buf_ptr(&r.body) + 1, "sid", sid, sizeof(sid));
    hresp_free(&r);
    snprintf(t, sizeof(t), PATH "?EIO=4&transport=polling&sid=%s", sid);
    static const char body[] = "40\x1e"
                               "451-[\"message\",{\"_placeholder\":true,\"num\":0}]\x1e"
                               "bAQID";
    http_once(&r, "POST", t, NULL, body, sizeof(body) - 1);
    cr_assert_eq(r.status, 200);
    hresp_free(&r);
    http_once(&r, "GET", t, NULL, NULL, 0);
    const char *b = sl_buf_ptr(&r.body);
    cr_assert(strncmp(b, "40{\"sid\":\"", 10) == 0, "%s", b);
    const char *rest = strchr(b, '\x1e');
    cr_assert_str_eq(rest, "\x1e"
                           "42[\"auth\",{}]\x1e"
                           "451-[\"message-back\",{\"_placeholder\":true,\"num\":0}]\x1e"
                           "bAQID");
    hresp_free(&r);
    finish();
}

/* Each of these, sent after joining "/", ends the connection. */
Test(socketio, bad_input_closes_the_connection)
{
    static const char *const bad[] = {
        "4abc",                                                /* unknown Socket.IO type */
        "42{}",                                                /* event data not an array */
        "42abc[\"message-with-ack\",1]",                       /* invalid ack id */
        "42",                                                  /* event without data */
        "42[\"connect\"]",                                     /* reserved name */
        "42/custom,[\"message\",1]",                           /* namespace not joined */
        "40",                                                  /* joined twice */
        "44{\"message\":\"x\"}",                               /* CONNECT_ERROR from a client */
        "41/custom",                                           /* leaving a namespace not joined */
        "451-[\"message\",{\"_placeholder\":true,\"num\":1}]", /* placeholder out of range */
        "454-[\"message\"]", /* more attachments than allowed (3) */
        "4",                 /* empty Socket.IO packet */
        "43[1]",             /* ack without id */
    };
    start();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hc c;
        struct sl_buf m = SL_BUF_INIT;
        sio_open(&c, &m, NULL);
        join_main(&c, &m);
        ws_text(&c, bad[i]);
        expect_closed(&c, &m);
        hc_close(&c);
        sl_buf_free(&m);
    }
    /* Attachments out of place. */
    struct hc c;
    struct sl_buf m = SL_BUF_INIT;
    sio_open(&c, &m, NULL);
    join_main(&c, &m);
    ws_send(&c, 2, "\x01", 1);
    expect_closed(&c, &m);
    hc_close(&c);
    sio_open(&c, &m, NULL);
    join_main(&c, &m);
    ws_text(&c, "451-[\"message\",{\"_placeholder\":true,\"num\":0}]");
    ws_text(&c, "42[\"message\",1]");
    expect_closed(&c, &m);
    hc_close(&c);
    /* Attachments over max_binary (1000 here). */
    sio_open(&c, &m, NULL);
    join_main(&c, &m);
    ws_text(&c, "452-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,"
                "\"num\":1}]");
    char big[600] = {0};
    ws_send(&c, 2, big, sizeof(big));
    ws_send(&c, 2, big, sizeof(big));
    expect_closed(&c, &m);
    hc_close(&c);
    /* Before any namespace, too. */
    sio_open(&c, &m, NULL);
    ws_text(&c, "4abc");
    expect_closed(&c, &m);
    hc_close(&c);
    sl_buf_free(&m);
    finish();
}

Test(socketio, connect_timeout)
{
    connect_timeout_ms = 200;
    start();
    struct hc c;
    struct sl_buf m = SL_BUF_INIT;
    sio_open(&c, &m, NULL);
    expect_closed(&c, &m);
    hc_close(&c);
    /* Joined in time: the connection stays past the timeout (the echo still answers). */
    sio_open(&c, &m, NULL);
    join_main(&c, &m);
    struct hc other;
    sio_open(&other, &m, NULL);
    expect_closed(&other, &m); /* at least one timeout has passed meanwhile */
    hc_close(&other);
    ws_text(&c, "42[\"message\",\"still\"]");
    expect_text(&c, &m, "42[\"message-back\",\"still\"]");
    /* Attachments that never come: the connection ends after connect_timeout too. */
    ws_text(&c, "451-[\"message\",{\"_placeholder\":true,\"num\":0}]");
    expect_closed(&c, &m);
    hc_close(&c);
    sl_buf_free(&m);
    connect_timeout_ms = 1000;
    finish();
}

static void
decide_later(struct hv_worker *w, void *arg)
{
    (void)w;
    lock();
    struct sl_sio_socket *s = R.later;
    unlock();
    cr_assert_not_null(s);
    if (arg)
        sl_sio_refuse(s, SL_SLICE("{\"message\":\"later no\"}"));
    else
        sl_sio_accept(s, NULL, NULL);
    lock();
    R.later = NULL;
    if (arg)
        R.connects--; /* refused: no on_disconnect to balance */
    unlock();
}

static void
wait_later(void)
{
    for (int i = 0; i < 5000; i++) {
        lock();
        bool there = R.later != NULL;
        unlock();
        if (there)
            return;
        usleep(1000);
    }
    cr_assert_fail("on_connect of /later never came");
}

Test(socketio, decided_later)
{
    start();
    struct hc c;
    struct sl_buf m = SL_BUF_INIT;
    sio_open(&c, &m, NULL);
    ws_text(&c, "40/later,");
    wait_later();
    hv_call(0, decide_later, NULL);
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    cr_assert(strncmp(sl_buf_ptr(&m), "40/later,{\"sid\":", 16) == 0, "%s", sl_buf_ptr(&m));
    ws_text(&c, "42/later,[\"message\",1]");
    expect_text(&c, &m, "42/later,[\"message-back\",1]");
    ws_text(&c, "41/later,");
    /* Refused later. */
    ws_text(&c, "40/later,");
    wait_later();
    static char refuse[] = "refuse";
    hv_call(0, decide_later, refuse);
    expect_text(&c, &m, "44/later,{\"message\":\"later no\"}");
    /* Undecided while the client talks to it: the connection ends, on_disconnect comes. */
    ws_text(&c, "40/later,");
    wait_later();
    ws_text(&c, "42/later,[\"message\",1]");
    expect_closed(&c, &m);
    hc_close(&c);
    sl_buf_free(&m);
    finish();
}

Test(socketio, recovery)
{
    start();
    struct hc c;
    struct sl_buf m = SL_BUF_INIT;
    sio_open(&c, &m, NULL);
    ws_text(&c, "40/recover,");
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    char pid[32];
    json_str(sl_buf_ptr(&m) + 11, "pid", pid, sizeof(pid));
    expect_text(&c, &m, "42/recover,[\"got\",\"-\",\"-\"]");
    hc_close(&c);

    /* Reconnecting with {pid, offset}: on_connect gets them; accepting with the pid makes
     * the reply carry it (socket.io-client then reports recovered). */
    sio_open(&c, &m, NULL);
    char pkt[256], want[256];
    snprintf(pkt, sizeof(pkt), "40/recover,{\"token\":\"t\",\"pid\":\"%s\",\"offset\":\"17-3\"}",
             pid);
    ws_text(&c, pkt);
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    char pid2[32];
    json_str(sl_buf_ptr(&m) + 11, "pid", pid2, sizeof(pid2));
    cr_assert_str_eq(pid2, pid);
    snprintf(want, sizeof(want), "42/recover,[\"got\",\"%s\",\"17-3\"]", pid);
    expect_text(&c, &m, want);
    hc_close(&c);
    /* A pid that is not one of ours is not taken over. */
    sio_open(&c, &m, NULL);
    ws_text(&c, "40/recover,{\"pid\":\"x\\\"y\",\"offset\":\"1\"}");
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    char pid3[32];
    json_str(sl_buf_ptr(&m) + 11, "pid", pid3, sizeof(pid3));
    cr_assert_eq(strlen(pid3), SL_SIO_ID_LEN);
    cr_assert_str_neq(pid3, pid);
    expect_text(&c, &m, "42/recover,[\"got\",\"x\\\"y\",\"1\"]");
    hc_close(&c);
    sl_buf_free(&m);
    finish();
}

Test(socketio, connection_handler_and_server_close)
{
    start();
    struct hc c;
    struct sl_buf m = SL_BUF_INIT;
    sio_open(&c, &m, "&token=secret1");
    ws_text(&c, "40/who,");
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    expect_text(&c, &m, "42/who,[\"token\",\"secret1\"]");
    join_main(&c, &m);
    /* The application closes the connection: every socket gets on_disconnect. */
    ws_text(&c, "42[\"close\"]");
    expect_closed(&c, &m);
    hc_close(&c);
    for (int i = 0; i < 5000; i++) {
        lock();
        int d = R.disconnects;
        unlock();
        if (d == 2)
            break;
        usleep(1000);
    }
    lock();
    cr_assert_eq(R.disconnects, 2);
    cr_assert_str_eq(R.last_reason, "forced close");
    unlock();
    /* The application leaves a namespace: a DISCONNECT packet, the connection stays. */
    sio_open(&c, &m, NULL);
    join_main(&c, &m);
    ws_text(&c, "40/custom,");
    cr_assert_eq(ws_recv_data(&c, &m), 1);
    expect_text(&c, &m, "42/custom,[\"auth\",{}]");
    ws_text(&c, "42/custom,[\"leave\"]");
    expect_text(&c, &m, "41/custom,");
    ws_text(&c, "42[\"message\",3]");
    expect_text(&c, &m, "42[\"message-back\",3]");
    lock();
    R.connects--; /* /custom left by the application: no on_disconnect */
    unlock();
    hc_close(&c);
    sl_buf_free(&m);
    finish();
}

Test(socketio, small_structs)
{
    cr_assert_leq(sizeof(struct sl_sio_conn), 72, "%zu", sizeof(struct sl_sio_conn));
    cr_assert_leq(sizeof(struct sl_sio_socket), 80, "%zu", sizeof(struct sl_sio_socket));
}
