/*
 * A scripted HTTP server on a libuv loop, for the loop-driven unit tests of the curl glue
 * and the HTTP call (test_curl.c, test_httpcall.c). It reads one request per connection
 * (head and Content-Length body), then plays its script: each step waits delay_ms, then
 * writes its bytes; after the last step it closes the connection, or holds it open when
 * the script says so, or (keepalive) waits for the next request on the same connection and
 * plays the script again. It records what it saw, including whether the client went away
 * first (the proof that a cancel reached the "provider").
 *
 * Not a test file of its own; included by the tests that need it.
 */
#ifndef SL_TESTS_UV_SERVER_H
#define SL_TESTS_UV_SERVER_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"

#pragma GCC diagnostic ignored "-Wunused-function"

struct tstep {
    const char *bytes;
    uint64_t delay_ms;
};

struct tsrv;

struct tconn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct tsrv *srv;
    struct sl_buf in;
    size_t step;
    bool responding;
    bool closing;
    size_t req_len; /* of the request being answered (keepalive: consumed after) */
    int served;     /* requests answered on this connection */
    int open_handles;
};

struct tsrv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    const struct tstep *script;
    size_t nsteps;
    bool hold;        /* keep the connection open after the script */
    bool keepalive;   /* after the script, serve the next request on the connection */
    bool drop_reused; /* a request on a connection that served one: closed unanswered */
    int dropped;
    int connections;
    int requests;
    int peer_closed; /* connections the client closed before the script ended */
    int script_done; /* connections whose script ran to its end */
    struct sl_buf last_request;
    void (*on_event)(struct tsrv *srv); /* after each recorded event (for tests to react) */
    void *ud;
    struct tconn *conns[16];
    int nconns;
};

static void tconn_close(struct tconn *c);

static void
tconn_free_cb(uv_handle_t *h)
{
    struct tconn *c = h->data;
    if (--c->open_handles == 0) {
        sl_buf_free(&c->in);
        for (int i = 0; i < c->srv->nconns; i++)
            if (c->srv->conns[i] == c)
                c->srv->conns[i] = NULL;
        free(c);
    }
}

static void
tconn_close(struct tconn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, tconn_free_cb);
    uv_close((uv_handle_t *)&c->tcp, tconn_free_cb);
}

static void tconn_step(struct tconn *c);

static void
tconn_on_write(uv_write_t *w, int status)
{
    (void)status;
    free(w->data);
    free(w);
}

static void
tconn_on_timer(uv_timer_t *t)
{
    struct tconn *c = t->data;
    const struct tstep *st = &c->srv->script[c->step++];
    size_t n = strlen(st->bytes);
    uv_write_t *w = sl_malloc(sizeof(*w));
    char *copy = sl_malloc(n ? n : 1);
    memcpy(copy, st->bytes, n);
    w->data = copy;
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, tconn_on_write) != 0) {
        free(copy);
        free(w);
    }
    tconn_step(c);
}

static void
tconn_step(struct tconn *c)
{
    struct tsrv *srv = c->srv;
    if (c->step < srv->nsteps) {
        uv_timer_start(&c->timer, tconn_on_timer, srv->script[c->step].delay_ms, 0);
        return;
    }
    srv->script_done++;
    if (srv->keepalive) {
        c->served++;
        c->step = 0;
        c->responding = false;
        sl_buf_consume(&c->in, c->req_len);
    }
    if (srv->on_event)
        srv->on_event(srv);
    if (!srv->hold && !srv->keepalive)
        tconn_close(c);
}

static void
tconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char rbuf[65536];
    *buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void
tconn_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct tconn *c = s->data;
    if (n < 0) {
        /* keepalive: a connection closed between two requests is not a request cut short */
        bool mid = !c->srv->keepalive || c->responding;
        if (!c->closing && mid && (c->step < c->srv->nsteps || c->srv->hold)) {
            c->srv->peer_closed++;
            if (c->srv->on_event)
                c->srv->on_event(c->srv);
        }
        tconn_close(c);
        return;
    }
    if (c->responding)
        return;
    sl_buf_append(&c->in, buf->base, (size_t)n);
    const char *all = sl_buf_cstr(&c->in);
    const char *end = strstr(all, "\r\n\r\n");
    if (end == NULL)
        return;
    size_t head = (size_t)(end + 4 - all), body = 0;
    const char *cl = strcasestr(all, "\r\ncontent-length:");
    if (cl && cl < end)
        body = (size_t)strtoul(cl + 17, NULL, 10);
    if (sl_buf_len(&c->in) < head + body)
        return;
    if (c->srv->drop_reused && c->served > 0) {
        c->srv->dropped++;
        tconn_close(c);
        return;
    }
    c->responding = true;
    c->req_len = head + body;
    c->srv->requests++;
    sl_buf_clear(&c->srv->last_request);
    sl_buf_append(&c->srv->last_request, all, head + body);
    tconn_step(c);
}

static void
tsrv_on_conn(uv_stream_t *l, int status)
{
    struct tsrv *srv = l->data;
    if (status < 0)
        return;
    struct tconn *c = sl_calloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        tconn_close(c);
        return;
    }
    srv->connections++;
    if (srv->nconns < 16)
        srv->conns[srv->nconns++] = c;
    uv_read_start((uv_stream_t *)&c->tcp, tconn_alloc, tconn_on_read);
}

static void
tsrv_start(struct tsrv *srv, uv_loop_t *loop, const struct tstep *script, size_t nsteps, bool hold)
{
    memset(srv, 0, sizeof(*srv));
    srv->loop = loop;
    srv->script = script;
    srv->nsteps = nsteps;
    srv->hold = hold;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    cr_assert_eq(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0), 0);
    cr_assert_eq(uv_listen((uv_stream_t *)&srv->listener, 16, tsrv_on_conn), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&got, &len);
    srv->port = ntohs(got.sin_port);
}

/* Closes the listener and every connection (the loop then runs out of server handles). */
static void
tsrv_stop(struct tsrv *srv)
{
    if (!uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, NULL);
    for (int i = 0; i < srv->nconns; i++)
        if (srv->conns[i])
            tconn_close(srv->conns[i]);
}

static void
tsrv_cleanup(struct tsrv *srv)
{
    sl_buf_free(&srv->last_request);
}

/* A streaming response head whose body ends when the server closes the connection. */
#define HEAD_SSE "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"

#endif
