/*
 * A test harness for the Engine.IO and Socket.IO layers: W server loops, each on its own
 * thread with its own listening socket (SO_REUSEPORT on one port, as sluice's workers),
 * connection pool and HTTP server; and blocking clients in the test thread that speak raw
 * HTTP/1.1 and WebSocket, so that every byte crosses the kernel and every answer is read
 * as a client would read it. Every client read has a deadline (SO_RCVTIMEO), so a missing
 * answer fails the test instead of hanging it.
 *
 * The test provides hv_setup(w) (before the loop runs: register endpoints), hv_request(w, c,
 * req) (each HTTP request, on the server thread), hv_stop(w) (on the server thread, at the
 * end: shut its layers down) and hv_cleanup(w) (after the thread ended: free them). Not a
 * test file of its own.
 */
#ifndef SL_TESTS_EIO_HARNESS_H
#define SL_TESTS_EIO_HARNESS_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/util.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/listener.h"
#include "net/loop.h"

#pragma GCC diagnostic ignored "-Wunused-function"

#define HV_MAX_WORKERS 4
#define HV_READ_TIMEOUT_MS 5000

struct hv_worker {
    unsigned id;
    struct sl_loop *loop;
    struct sl_conn_pool pool;
    struct sl_http_server http;
    uv_tcp_t listener;
    pthread_t thread;
    bool stopping;
    void *app; /* the test's per-worker state */
};

static struct {
    unsigned n;
    int port;
    struct hv_worker w[HV_MAX_WORKERS];
    pthread_mutex_t lock; /* for the test's own records */
    atomic_int ready;
} HV;

/* Provided by the test. */
static void hv_setup(struct hv_worker *w);
static void hv_request(struct hv_worker *w, struct sl_conn *c, struct sl_http_req *req);
static void hv_stop(struct hv_worker *w);
static void hv_cleanup(struct hv_worker *w); /* after the thread ended */

static void
hv_on_request(void *ud, struct sl_conn *c, struct sl_http_req *req)
{
    hv_request(ud, c, req);
}

static void
hv_on_accept(uv_stream_t *server, int status)
{
    struct hv_worker *w = server->data;
    if (status < 0)
        return;
    struct sl_conn *c = sl_conn_accept(&w->pool, server);
    if (c)
        sl_http_serve(&w->http, c);
}

static void
hv_close_conn(struct sl_conn *c, void *arg)
{
    (void)arg;
    sl_conn_close(c);
}

static void
hv_check_done(void *arg)
{
    struct hv_worker *w = arg;
    if (w->stopping && w->pool.count == 0)
        sl_loop_stop(w->loop);
}

static void
hv_do_stop(void *arg)
{
    struct hv_worker *w = arg;
    w->stopping = true;
    uv_close((uv_handle_t *)&w->listener, NULL);
    hv_stop(w);
    sl_conn_pool_foreach(&w->pool, hv_close_conn, NULL);
    hv_check_done(w);
}

static void *
hv_thread(void *arg)
{
    struct hv_worker *w = arg;
    sl_loop_run(w->loop);
    return NULL;
}

/* Starts n workers on one port. */
static void
hv_start(unsigned n)
{
    memset(&HV, 0, sizeof(HV));
    pthread_mutex_init(&HV.lock, NULL);
    HV.n = n;
    uint16_t port = 0;
    for (unsigned i = 0; i < n; i++) {
        struct hv_worker *w = &HV.w[i];
        char err[128];
        uint16_t bound;
        int fd = sl_listener_open("127.0.0.1", port, &bound, err, sizeof(err));
        cr_assert_geq(fd, 0, "listen: %s", err);
        port = bound;
        w->id = i;
        w->loop = sl_loop_new();
        sl_conn_pool_init(&w->pool, w->loop);
        struct sl_http_limits lim = {
            .max_header_bytes = 16384,
            .max_body_bytes = 4 << 20,
            .header_timeout_ms = 10000,
            .keepalive_timeout_ms = 30000,
        };
        sl_http_server_init(&w->http, w->loop, &lim, hv_on_request, w);
        sl_loop_add_turn_hook(w->loop, hv_check_done, w);
        uv_tcp_init(sl_loop_uv(w->loop), &w->listener);
        w->listener.data = w;
        cr_assert_eq(uv_tcp_open(&w->listener, fd), 0);
        cr_assert_eq(uv_listen((uv_stream_t *)&w->listener, 128, hv_on_accept), 0);
        hv_setup(w);
    }
    HV.port = port;
    for (unsigned i = 0; i < n; i++)
        pthread_create(&HV.w[i].thread, NULL, hv_thread, &HV.w[i]);
}

/* Runs fn(arg) on worker i's thread and waits until it ran. */
struct hv_call {
    void (*fn)(struct hv_worker *w, void *arg);
    void *arg;
    struct hv_worker *w;
    atomic_int done;
};

static void
hv_call_run(void *p)
{
    struct hv_call *c = p;
    c->fn(c->w, c->arg);
    atomic_store(&c->done, 1);
}

static void
hv_call(unsigned i, void (*fn)(struct hv_worker *w, void *arg), void *arg)
{
    struct hv_call c = {.fn = fn, .arg = arg, .w = &HV.w[i]};
    sl_loop_post(HV.w[i].loop, hv_call_run, &c);
    for (int k = 0; k < 5000 && !atomic_load(&c.done); k++)
        usleep(1000);
    cr_assert(atomic_load(&c.done), "worker %u did not run the call", i);
}

static void
hv_finish(void)
{
    for (unsigned i = 0; i < HV.n; i++)
        sl_loop_post(HV.w[i].loop, hv_do_stop, &HV.w[i]);
    for (unsigned i = 0; i < HV.n; i++) {
        pthread_join(HV.w[i].thread, NULL);
        hv_cleanup(&HV.w[i]);
        sl_loop_free(HV.w[i].loop);
    }
    pthread_mutex_destroy(&HV.lock);
}

/* --- blocking clients ----------------------------------------------------------------------- */

struct hc {
    int fd;
    struct sl_buf in;
    bool timed_out; /* the last read found nothing within the deadline */
};

struct hresp {
    int status;
    char head[4096];
    struct sl_buf body;
};

static void
hc_open(struct hc *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(c->fd, 0);
    struct timeval tv = {HV_READ_TIMEOUT_MS / 1000, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)HV.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    cr_assert_eq(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void
hc_close(struct hc *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    sl_buf_free(&c->in);
}

/* Closes with a reset (SO_LINGER 0). */
static void
hc_reset(struct hc *c)
{
    struct linger l = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    hc_close(c);
}

static void
hc_send(struct hc *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        cr_assert_gt(k, 0, "send: %s", strerror(errno));
        s += k;
        n -= (size_t)k;
    }
}

/* Reads more into c->in. Returns false on EOF, error or timeout. */
static bool
hc_fill(struct hc *c)
{
    char buf[65536];
    ssize_t k;
    do
        k = recv(c->fd, buf, sizeof(buf), 0);
    while (k < 0 && errno == EINTR);
    c->timed_out = k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    if (k <= 0)
        return false;
    sl_buf_append(&c->in, buf, (size_t)k);
    return true;
}

/* Reads until the server closes the connection: true on EOF or reset, false on timeout. */
static bool
hc_wait_eof(struct hc *c)
{
    char buf[4096];
    for (;;) {
        ssize_t k = recv(c->fd, buf, sizeof(buf), 0);
        if (k > 0) {
            sl_buf_append(&c->in, buf, (size_t)k);
            continue;
        }
        if (k == 0)
            return true;
        if (errno == EINTR)
            continue;
        return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

static const char *
hc_header(const struct hresp *r, const char *name)
{
    static char v[512];
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *s = p + 3 + n;
            while (*s == ' ')
                s++;
            const char *e = strstr(s, "\r\n");
            snprintf(v, sizeof(v), "%.*s", (int)(e ? e - s : (long)strlen(s)), s);
            return v;
        }
    }
    return NULL;
}

/* Reads one response (a Content-Length or chunked body). Returns false if none came. */
static bool
hc_response(struct hc *c, struct hresp *r)
{
    memset(r, 0, sizeof(*r));
    const char *end;
    while ((end = memmem(sl_buf_ptr(&c->in), sl_buf_len(&c->in), "\r\n\r\n", 4)) == NULL)
        if (!hc_fill(c))
            return false;
    size_t hl = (size_t)(end - sl_buf_ptr(&c->in)) + 4;
    cr_assert_lt(hl, sizeof(r->head));
    memcpy(r->head, sl_buf_ptr(&c->in), hl);
    r->head[hl] = '\0';
    sl_buf_consume(&c->in, hl);
    r->status = atoi(r->head + 9);
    const char *cl = hc_header(r, "Content-Length");
    if (cl) {
        size_t n = (size_t)atol(cl);
        while (sl_buf_len(&c->in) < n)
            if (!hc_fill(c))
                return false;
        sl_buf_append(&r->body, sl_buf_ptr(&c->in), n);
        sl_buf_consume(&c->in, n);
    }
    sl_buf_cstr(&r->body);
    return true;
}

static void
hresp_free(struct hresp *r)
{
    sl_buf_free(&r->body);
}

/* Sends a request on c. */
static void
hc_request(struct hc *c, const char *method, const char *target, const char *headers,
           const void *body, size_t blen)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n", method,
                  target, headers ? headers : "", blen);
    sl_buf_append(&b, body, blen);
    hc_send(c, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
}

/* One request on a fresh connection; the response into *r. */
static void
http_once(struct hresp *r, const char *method, const char *target, const char *headers,
          const void *body, size_t blen)
{
    struct hc c;
    hc_open(&c);
    hc_request(&c, method, target, headers, body, blen);
    cr_assert(hc_response(&c, r), "no response to %s %s", method, target);
    hc_close(&c);
}

/* --- WebSocket ----------------------------------------------------------------------------------
 */

/* Opens a WebSocket at target; returns the handshake status (101 on success). */
static int
ws_open(struct hc *c, const char *target)
{
    hc_open(c);
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b,
                  "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: "
                  "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  target);
    hc_send(c, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
    struct hresp r;
    if (!hc_response(c, &r))
        return 0;
    hresp_free(&r);
    return r.status;
}

static void
ws_send(struct hc *c, int opcode, const void *p, size_t n)
{
    uint8_t hdr[14];
    size_t hl = 0;
    hdr[hl++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        hdr[hl++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        hdr[hl++] = 0x80 | 126;
        hdr[hl++] = (uint8_t)(n >> 8);
        hdr[hl++] = (uint8_t)n;
    } else {
        hdr[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    const uint8_t mask[4] = {1, 2, 3, 4};
    memcpy(hdr + hl, mask, 4);
    hl += 4;
    uint8_t *frame = sl_malloc(hl + n + 1);
    memcpy(frame, hdr, hl);
    for (size_t i = 0; i < n; i++)
        frame[hl + i] = ((const uint8_t *)p)[i] ^ mask[i & 3];
    hc_send(c, frame, hl + n);
    free(frame);
}

static void
ws_text(struct hc *c, const char *s)
{
    ws_send(c, 1, s, strlen(s));
}

/*
 * Reads one frame: returns its opcode (1 text, 2 binary, 8 close, ...) with the payload in
 * *out (NUL-terminated), or -1 if the connection ended or nothing came in time.
 */
static int
ws_recv(struct hc *c, struct sl_buf *out)
{
    sl_buf_clear(out);
    for (;;) {
        const uint8_t *p = (const uint8_t *)sl_buf_ptr(&c->in);
        size_t n = sl_buf_len(&c->in);
        if (n >= 2) {
            size_t len = p[1] & 0x7f, hl = 2;
            if (len == 126 && n >= 4) {
                len = (size_t)p[2] << 8 | p[3];
                hl = 4;
            } else if (len == 127 && n >= 10) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = len << 8 | p[2 + i];
                hl = 10;
            } else if (len >= 126) {
                hl = SIZE_MAX;
            }
            if (hl != SIZE_MAX && n >= hl + len) {
                int op = p[0] & 0x0f;
                sl_buf_append(out, p + hl, len);
                sl_buf_cstr(out);
                sl_buf_consume(&c->in, hl + len);
                return op;
            }
        }
        if (!hc_fill(c))
            return -1;
    }
}

/* Reads frames until a text or binary one (skipping pings of the WebSocket layer). */
static int
ws_recv_data(struct hc *c, struct sl_buf *out)
{
    for (;;) {
        int op = ws_recv(c, out);
        if (op != 9 && op != 10)
            return op;
    }
}

/* A close frame's code, or 0. */
static int
ws_close_code(const struct sl_buf *payload)
{
    if (sl_buf_len(payload) < 2)
        return 0;
    const uint8_t *p = (const uint8_t *)sl_buf_ptr(payload);
    return p[0] << 8 | p[1];
}

/* The value of "key":"..." in a JSON text (naive; for sids in handshake packets). */
static void
json_str(const char *json, const char *key, char *out, size_t outlen)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    cr_assert_not_null(p, "no %s in %s", key, json);
    p += strlen(pat);
    const char *e = strchr(p, '"');
    snprintf(out, outlen, "%.*s", (int)(e - p), p);
}

#endif
