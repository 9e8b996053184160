#include "worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/alloc.h"
#include "base/util.h"

#define CLOSE_GRACE_MS 3000 /* after LG_CMD_CLOSE, connections still open are forced shut */
#define SWEEP_MS 250        /* how often handshakes are checked against their timeout */

uint64_t
lg_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* xorshift64*: masks and WebSocket keys need to be unpredictable to nobody here, only
 * varied, and a PRNG keeps getrandom() off the per-frame path. */
uint64_t
lg_worker_rand(struct lg_worker *w)
{
    uint64_t x = w->prng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->prng = x;
    return x * UINT64_C(2685821657736338717);
}

/* --- progress ------------------------------------------------------------------------ */

static void
publish(struct lg_worker *w)
{
    struct lg_progress *p = &w->progress;
    const struct lg_stats *s = &w->stats;
    atomic_store_explicit(&p->resolved, w->resolved, memory_order_relaxed);
    atomic_store_explicit(&p->ready, s->conns_ok, memory_order_relaxed);
    atomic_store_explicit(&p->failed, s->conns_failed, memory_order_relaxed);
    atomic_store_explicit(&p->streams_ok, s->streams_ok, memory_order_relaxed);
    atomic_store_explicit(&p->streams_failed, s->streams_failed, memory_order_relaxed);
    atomic_store_explicit(&p->tokens, s->tokens, memory_order_relaxed);
    atomic_store_explicit(&p->firsts, s->ttft.count, memory_order_relaxed);
    atomic_store_explicit(&p->errors, s->errors.total, memory_order_relaxed);
    atomic_store_explicit(&p->last_end_us, w->last_end_us, memory_order_relaxed);
    atomic_store_explicit(&p->cut_streams, s->cut_streams, memory_order_relaxed);
    atomic_store_explicit(&p->resumes_answered, s->resumes_answered + s->resumes_refused,
                          memory_order_relaxed);
    atomic_store_explicit(&p->last_resume_us, w->last_resume_us, memory_order_relaxed);
    if (w->ivl_max_us > 0) {
        /* The main thread takes this with an exchange: raise, never lower, what it left. */
        uint64_t cur = atomic_load_explicit(&p->lat_max_us, memory_order_relaxed);
        while (cur < w->ivl_max_us &&
               !atomic_compare_exchange_weak_explicit(&p->lat_max_us, &cur, w->ivl_max_us,
                                                      memory_order_relaxed, memory_order_relaxed))
            ;
        w->ivl_max_us = 0;
    }
    /* Release: whoever sees `finished` complete also sees the counters above. */
    atomic_store_explicit(&p->finished, w->finished, memory_order_release);
}

static void
on_check(uv_check_t *h)
{
    publish(h->data);
}

/* --- connection accounting ------------------------------------------------------------ */

static void ramp(struct lg_worker *w);
static void maybe_exit(struct lg_worker *w);
static void start_streams(struct lg_conn *c);

/* Streams may start (and the next one after one ends). */
static bool
streaming(const struct lg_worker *w)
{
    return w->phase == LG_CMD_STREAM || w->phase == LG_CMD_CUT;
}

/* The connection has nothing more to do in the stream phase. */
static void
set_finished(struct lg_conn *c)
{
    if (c->finished)
        return;
    c->finished = true;
    c->w->finished++;
}

static void
resolve(struct lg_conn *c)
{
    struct lg_worker *w = c->w;
    w->resolved++;
    sl_assert(w->ramp_pending > 0);
    w->ramp_pending--;
    ramp(w);
}

/* A cut connection is back: every stream it was running is resumed where it stopped. */
static void
reconnected(struct lg_conn *c, uint64_t now)
{
    struct lg_worker *w = c->w;
    c->reconnecting = false;
    c->state = LG_CONN_READY;
    w->stats.reconnected++;
    lg_hist_record(&w->stats.reconnect, now - c->t_cut_us);
    lg_hist_record(&w->stats.reconnect_hs, now - c->t0_us);
    resolve(c);
    for (uint32_t i = 0; c->slots != NULL && i < w->cfg->concurrency; i++) {
        struct lg_slot *s = &c->slots[i];
        if (!s->active)
            continue;
        s->t_resume_us = lg_now_us();
        s->resume_wait = true;
        s->classify = true;
        s->replay_seen = false;
        w->stats.resumes_sent++;
        w->ops->resume_stream(c, s);
        if (c->state != LG_CONN_READY)
            return;
    }
    /* Streams whose turn came while it was away. */
    if (c->due)
        start_streams(c);
}

void
lg_conn_ready(struct lg_conn *c)
{
    struct lg_worker *w = c->w;
    uint64_t now = lg_now_us();
    if (c->reconnecting) {
        reconnected(c, now);
        return;
    }
    c->state = LG_CONN_READY;
    w->stats.conns_ok++;
    if (w->cfg->mode == LG_MODE_NATIVE)
        lg_hist_record(&w->stats.auth, now - c->t_tcp_us);
    resolve(c);
    if (w->cfg->streams == 0)
        set_finished(c);
}

static void
on_close(uv_handle_t *h)
{
    struct lg_conn *c = h->data;
    struct lg_worker *w = c->w;
    if (w->ops->cleanup)
        w->ops->cleanup(c);
    sl_buf_free(&c->out);
    sl_buf_free(&c->inflight);
    free(c->slots);
    c->slots = NULL;
    sl_assert(w->open > 0);
    w->open--;
    maybe_exit(w);
}

void
lg_conn_close(struct lg_conn *c)
{
    if (c->state == LG_CONN_CLOSED || c->state == LG_CONN_INIT)
        return;
    c->state = LG_CONN_CLOSED;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

/* Every stream of the connection that has not ended fails with it. */
static void
fail_streams(struct lg_conn *c)
{
    struct lg_worker *w = c->w;
    uint32_t unended = w->cfg->streams - c->ended;
    w->stats.streams_failed += unended;
    c->ended = w->cfg->streams;
    c->active = 0;
    if (unended > 0)
        w->last_end_us = lg_now_us();
    set_finished(c);
}

void
lg_conn_fail(struct lg_conn *c, const char *code)
{
    struct lg_worker *w = c->w;
    if (c->failed || c->state == LG_CONN_CLOSED)
        return;
    c->failed = true;
    lg_errors_add_str(&w->stats.errors, code);
    if (c->state == LG_CONN_CONNECTING || c->state == LG_CONN_HANDSHAKE) {
        if (c->reconnecting)
            w->stats.reconnect_failed++;
        else
            w->stats.conns_failed++;
        resolve(c);
    }
    c->reconnecting = false;
    fail_streams(c);
    lg_conn_close(c);
}

/* --- writing -------------------------------------------------------------------------- */

static void
on_write(uv_write_t *req, int status)
{
    struct lg_conn *c = req->data;
    c->writing = false;
    sl_buf_clear(&c->inflight);
    if (c->state == LG_CONN_CLOSED)
        return;
    if (status < 0) {
        char code[48];
        snprintf(code, sizeof(code), "WRITE_%s", uv_err_name(status));
        lg_conn_fail(c, code);
        return;
    }
    lg_conn_flush(c);
}

void
lg_conn_flush(struct lg_conn *c)
{
    if (c->writing || sl_buf_len(&c->out) == 0 || c->state == LG_CONN_CLOSED)
        return;
    uv_buf_t b = uv_buf_init((char *)sl_buf_ptr(&c->out), (unsigned)sl_buf_len(&c->out));
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0)
        sl_buf_consume(&c->out, (size_t)n);
    else if (n < 0 && n != UV_EAGAIN) {
        char code[48];
        snprintf(code, sizeof(code), "WRITE_%s", uv_err_name(n));
        lg_conn_fail(c, code);
        return;
    }
    if (sl_buf_len(&c->out) == 0)
        return;
    /* The rest goes out with uv_write from a buffer of its own, so that `out` may grow. */
    struct sl_buf tmp = c->inflight;
    c->inflight = c->out;
    c->out = tmp;
    sl_buf_clear(&c->out);
    b = uv_buf_init((char *)sl_buf_ptr(&c->inflight), (unsigned)sl_buf_len(&c->inflight));
    c->wreq.data = c;
    c->writing = true;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        c->writing = false;
        lg_conn_fail(c, "WRITE_FAILED");
    }
}

void
lg_conn_write(struct lg_conn *c, const void *p, size_t n)
{
    sl_buf_append(&c->out, p, n);
    lg_conn_flush(c);
}

/* --- reading -------------------------------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct lg_conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->w->rbuf, sizeof(c->w->rbuf));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct lg_conn *c = s->data;
    struct lg_worker *w = c->w;
    if (nread == 0)
        return;
    if (nread < 0) {
        /* Only a close we asked for is not an error, even on a connection whose work is
         * done: a server dropping idle clients is what the idle mode is there to find. */
        if (c->state == LG_CONN_CLOSING) {
            lg_conn_close(c);
            return;
        }
        /* Over HTTP, a server may close a keep-alive connection that sits idle (Node's
         * default: after 5 s); once all of this connection's streams are done that ends
         * nothing the run asked for. */
        if (nread == UV_EOF && w->cfg->mode == LG_MODE_SSE && c->finished && c->active == 0) {
            lg_conn_close(c);
            return;
        }
        char code[48];
        if (nread == UV_EOF)
            snprintf(code, sizeof(code), "EOF");
        else
            snprintf(code, sizeof(code), "READ_%s", uv_err_name((int)nread));
        lg_conn_fail(c, code);
        return;
    }
    w->now_us = lg_now_us();
    w->stats.bytes += (uint64_t)nread;
    w->ops->read(c, buf->base, (size_t)nread);
}

/* --- connecting ------------------------------------------------------------------------ */

static void
on_connect(uv_connect_t *req, int status)
{
    struct lg_conn *c = req->data;
    free(req);
    if (c->state == LG_CONN_CLOSED)
        return;
    if (status < 0) {
        char code[48];
        snprintf(code, sizeof(code), "CONNECT_%s", uv_err_name(status));
        lg_conn_fail(c, code);
        return;
    }
    c->t_tcp_us = lg_now_us();
    if (!c->reconnecting) /* reconnections have their own figures */
        lg_hist_record(&c->w->stats.connect, c->t_tcp_us - c->t0_us);
    c->state = LG_CONN_HANDSHAKE;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc != 0) {
        lg_conn_fail(c, "READ_START");
        return;
    }
    c->w->ops->connected(c);
}

/* Binds the socket to a 127.0.0.x source so that more than one port range of connections
 * can reach one destination. IP_BIND_ADDRESS_NO_PORT defers the port choice to connect(),
 * where the kernel only needs the 4-tuple to be unique. */
static int
bind_source(struct lg_conn *c)
{
    const struct lg_config *cfg = c->w->cfg;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
        return -1;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(0x7f000001u + c->index % cfg->nsrc);
    return uv_tcp_bind(&c->tcp, (const struct sockaddr *)&sa, 0);
}

static void
connect_one(struct lg_worker *w, struct lg_conn *c)
{
    const struct lg_config *cfg = w->cfg;
    c->w = w;
    c->tcp.data = c;
    c->t0_us = lg_now_us();
    c->state = LG_CONN_CONNECTING;
    w->ramp_pending++;
    int rc = uv_tcp_init_ex(&w->loop, &c->tcp, cfg->addr.ss_family);
    if (rc != 0) {
        /* No handle to close: count the failure by hand. */
        char code[48];
        snprintf(code, sizeof(code), "SOCKET_%s", uv_err_name(rc));
        lg_errors_add_str(&w->stats.errors, code);
        if (c->reconnecting)
            w->stats.reconnect_failed++;
        else
            w->stats.conns_failed++;
        c->reconnecting = false;
        fail_streams(c);
        c->failed = true;
        c->state = LG_CONN_INIT;
        resolve(c);
        return;
    }
    w->open++;
    uv_tcp_nodelay(&c->tcp, 1);
    if (cfg->nsrc > 0 && cfg->addr.ss_family == AF_INET && bind_source(c) != 0) {
        lg_conn_fail(c, "BIND_SOURCE");
        return;
    }
    uv_connect_t *req = sl_malloc(sizeof(*req));
    req->data = c;
    rc = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&cfg->addr, on_connect);
    if (rc != 0) {
        free(req);
        char code[48];
        snprintf(code, sizeof(code), "CONNECT_%s", uv_err_name(rc));
        lg_conn_fail(c, code);
    }
}

/* Opens connections while fewer than ramp_max handshakes are in progress. Iterative, and
 * re-entered from resolve(): the guard keeps the recursion one level deep. */
static void
ramp(struct lg_worker *w)
{
    if (w->in_ramp)
        return;
    w->in_ramp = true;
    while (w->ramp_next < w->nconns && w->ramp_pending < w->ramp_max && w->phase < LG_CMD_CLOSE)
        connect_one(w, &w->conns[w->ramp_next++]);
    while (w->recon_next < w->nrecon && w->ramp_pending < w->ramp_max && w->phase < LG_CMD_CLOSE)
        connect_one(w, w->recon[w->recon_next++]);
    w->in_ramp = false;
}

/* --- streams ----------------------------------------------------------------------------- */

struct lg_slot *
lg_conn_slot(struct lg_conn *c, uint32_t n)
{
    if (c->slots == NULL)
        return NULL;
    for (uint32_t i = 0; i < c->w->cfg->concurrency; i++) {
        if (c->slots[i].active && c->slots[i].n == n)
            return &c->slots[i];
    }
    return NULL;
}

void
lg_conn_stamp(void *conn, uint64_t stamp_us)
{
    struct lg_conn *c = conn;
    struct lg_worker *w = c->w;
    uint64_t lat = w->now_us > stamp_us ? w->now_us - stamp_us : 0;
    lg_hist_record(&w->stats.latency, lat);
    if (lat > w->ivl_max_us)
        w->ivl_max_us = lat;
}

void
lg_slot_event(struct lg_conn *c, struct lg_slot *s, uint64_t seq)
{
    struct lg_worker *w = c->w;
    if (seq > 0) {
        if (seq <= s->last_seq) {
            w->stats.seq_regressed++;
            lg_errors_add_str(&w->stats.errors, "SEQ_REGRESSED");
        } else {
            s->last_seq = seq;
        }
    }
    if (s->resume_wait) {
        s->resume_wait = false;
        w->last_resume_us = w->now_us;
        w->stats.resumes_answered++;
        lg_hist_record(&w->stats.resume, w->now_us - s->t_resume_us);
    }
}

void
lg_slot_resume_stamp(struct lg_conn *c, struct lg_slot *s, uint64_t stamp_us)
{
    struct lg_worker *w = c->w;
    uint64_t since = w->now_us - s->t_resume_us;
    if (stamp_us < s->t_resume_us) {
        if (!s->replay_seen) {
            s->replay_seen = true;
            lg_hist_record(&w->stats.replay, since);
        }
        return;
    }
    s->classify = false;
    lg_hist_record(&w->stats.live, since);
    lg_hist_record(&w->stats.live_lag, w->now_us > stamp_us ? w->now_us - stamp_us : 0);
}

void
lg_slot_tokens(struct lg_conn *c, struct lg_slot *s, uint64_t n, uint64_t stamps)
{
    struct lg_worker *w = c->w;
    if (!s->first && n > 0) {
        s->first = true;
        lg_hist_record(&w->stats.ttft, w->now_us > s->t_sent_us ? w->now_us - s->t_sent_us : 0);
    }
    s->tokens += n;
    w->stats.tokens += n;
    w->stats.stamped += stamps;
}

static void
start_slot(struct lg_conn *c, struct lg_slot *s)
{
    s->n = c->started++;
    s->active = true;
    s->first = false;
    s->tokens = 0;
    s->last_seq = 0;
    s->resume_wait = s->classify = s->replay_seen = false;
    s->epoch_len = 0;
    s->sid_len = 0;
    if (c->w->cfg->verify)
        lg_verify_init(&s->verify);
    s->t_sent_us = lg_now_us();
    c->active++;
    c->w->ops->start_stream(c, s);
}

void
lg_slot_end(struct lg_conn *c, struct lg_slot *s, const char *code)
{
    struct lg_worker *w = c->w;
    const struct lg_config *cfg = w->cfg;
    if (!s->active)
        return;
    if (code == NULL && cfg->verify) {
        /* The text check counts a short or long stream by what went wrong. */
        struct lg_verify *v = &s->verify;
        lg_verify_end(v, cfg->expect_tokens);
        w->stats.verified++;
        w->stats.exact += lg_verify_exact(v);
        w->stats.tokens_lost += v->lost;
        w->stats.tokens_dup += v->dup;
        w->stats.garbled += v->garbled;
        w->stats.extra += v->extra;
        code = lg_verify_error(v);
    } else if (code == NULL && cfg->expect_tokens > 0 && s->tokens != cfg->expect_tokens) {
        code = s->tokens < cfg->expect_tokens ? "SHORT_STREAM" : "LONG_STREAM";
    }
    s->active = false;
    c->active--;
    c->ended++;
    w->last_end_us = lg_now_us();
    if (code) {
        w->stats.streams_failed++;
        lg_errors_add_str(&w->stats.errors, code);
    } else {
        w->stats.streams_ok++;
    }
    if (c->ended == cfg->streams) {
        set_finished(c);
        return;
    }
    if (c->started < cfg->streams && streaming(w) && c->state == LG_CONN_READY)
        start_slot(c, s);
}

static void
start_streams(struct lg_conn *c)
{
    const struct lg_config *cfg = c->w->cfg;
    if (c->state != LG_CONN_READY || c->finished)
        return;
    if (c->slots == NULL)
        c->slots = sl_calloc(cfg->concurrency, sizeof(*c->slots));
    for (uint32_t i = 0; i < cfg->concurrency && c->started < cfg->streams; i++) {
        if (!c->slots[i].active)
            start_slot(c, &c->slots[i]);
    }
}

/* Starts every connection whose offset in the spread has come, then waits for the next. */
static void
on_spread_timer(uv_timer_t *t)
{
    struct lg_worker *w = t->data;
    const struct lg_config *cfg = w->cfg;
    uint64_t elapsed_ms = (lg_now_us() - w->stream_t0_us) / 1000u;
    while (w->spread_next < w->nconns && streaming(w)) {
        struct lg_conn *c = &w->conns[w->spread_next];
        uint64_t at = cfg->spread_ms * c->index / cfg->connections;
        if (at > elapsed_ms) {
            uv_timer_start(&w->timer, on_spread_timer, at - elapsed_ms, 0);
            return;
        }
        w->spread_next++;
        c->due = true;
        start_streams(c);
    }
}

/* --- handshake timeouts ------------------------------------------------------------------- */

/* A handshake that never completes (a server that accepts and says nothing, an auth that is
 * never answered) would hold its ramp slot for ever: fail it after the timeout. One sweep
 * of the connections being opened, a few times a second, costs less than a timer each. */
static void
on_sweep(uv_timer_t *t)
{
    struct lg_worker *w = t->data;
    uint64_t limit = w->cfg->handshake_timeout_ms * 1000u;
    uint64_t now = lg_now_us();
    /* Failing one opens the next (ramp): those are not looked at before the next sweep. */
    uint32_t end = w->ramp_next;
    for (uint32_t i = w->sweep_from; i < end; i++) {
        struct lg_conn *c = &w->conns[i];
        if ((c->state == LG_CONN_CONNECTING || c->state == LG_CONN_HANDSHAKE) &&
            now > c->t0_us + limit)
            lg_conn_fail(c, "HANDSHAKE_TIMEOUT");
    }
    /* Connections before the first one still pending need no more looks. */
    while (w->sweep_from < w->ramp_next && w->conns[w->sweep_from].state != LG_CONN_CONNECTING &&
           w->conns[w->sweep_from].state != LG_CONN_HANDSHAKE &&
           !w->conns[w->sweep_from].reconnecting)
        w->sweep_from++;
    if (w->sweep_from == w->nconns)
        uv_timer_stop(t);
}

/* --- commands and shutdown -------------------------------------------------------------- */

static void
on_closed_quietly(uv_handle_t *h)
{
    (void)h;
}

static void
maybe_exit(struct lg_worker *w)
{
    if (w->phase < LG_CMD_CLOSE || w->open > 0 || w->ramp_next < w->nconns)
        return;
    if (uv_is_closing((uv_handle_t *)&w->async))
        return;
    publish(w);
    uv_close((uv_handle_t *)&w->async, on_closed_quietly);
    uv_close((uv_handle_t *)&w->timer, on_closed_quietly);
    uv_close((uv_handle_t *)&w->sweep, on_closed_quietly);
    uv_close((uv_handle_t *)&w->check, on_closed_quietly);
}

static void
on_close_deadline(uv_timer_t *t)
{
    struct lg_worker *w = t->data;
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct lg_conn *c = &w->conns[i];
        if (c->state != LG_CONN_CLOSED && c->state != LG_CONN_INIT)
            lg_conn_close(c);
    }
}

static void
begin_close(struct lg_worker *w, bool abort)
{
    /* Connections never opened stay unopened: the ramp stops at LG_CMD_CLOSE. */
    if (w->ramp_next < w->nconns) {
        uint32_t left = w->nconns - w->ramp_next;
        if (abort)
            lg_errors_add_n(&w->stats.errors, "NOT_CONNECTED", left);
        w->stats.conns_failed += left;
        w->stats.streams_failed += (uint64_t)left * w->cfg->streams;
        w->ramp_next = w->nconns;
    }
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct lg_conn *c = &w->conns[i];
        if (c->reconnecting && (c->state == LG_CONN_CLOSED || c->state == LG_CONN_INIT)) {
            /* Cut and not connected again: its streams end here. */
            c->reconnecting = false;
            if (!c->finished) {
                lg_errors_add_str(&w->stats.errors, abort ? "TIMEOUT" : "NOT_RECONNECTED");
                fail_streams(c);
            }
            continue;
        }
        if (c->state == LG_CONN_CLOSED || c->state == LG_CONN_INIT)
            continue;
        if (abort && !c->finished) {
            lg_conn_fail(c, "TIMEOUT");
            continue;
        }
        if (c->state == LG_CONN_READY) {
            c->state = LG_CONN_CLOSING;
            w->ops->close(c);
        } else if (c->state != LG_CONN_CLOSING) {
            lg_conn_close(c);
        }
    }
    uv_timer_stop(&w->sweep);
    uv_timer_stop(&w->timer);
    uv_timer_start(&w->timer, on_close_deadline, CLOSE_GRACE_MS, 0);
    maybe_exit(w);
}

/* The reset of a cut connection is complete: the handle may be opened again. */
static void
on_cut_closed(uv_handle_t *h)
{
    struct lg_conn *c = h->data;
    struct lg_worker *w = c->w;
    if (w->ops->cleanup)
        w->ops->cleanup(c);
    memset(&c->u, 0, sizeof(c->u));
    sl_buf_clear(&c->out);
    sl_buf_clear(&c->inflight);
    c->writing = false;
    sl_assert(w->open > 0);
    w->open--;
    if (!c->reconnecting) {
        /* The run was closed or aborted meanwhile (begin_close failed its streams). */
        free(c->slots);
        c->slots = NULL;
        sl_buf_free(&c->out);
        sl_buf_free(&c->inflight);
        maybe_exit(w);
        return;
    }
    w->recon[w->nrecon++] = c;
    ramp(w);
}

/*
 * Resets every connection that still has streams to run, all in this one callback: a TCP
 * RST (SO_LINGER 0), no close frame. A reset, rather than a FIN, because it is what a dead
 * client, a NAT or a mobile network dropping state looks like to the server, and because
 * whatever was in flight either way is lost at once: bytes the client had not read yet
 * (a close() with unread data resets anyway), and frames the server is still writing.
 * The client resumes from the last seq it processed, not from what the server sent.
 */
static void
cut_all(struct lg_worker *w)
{
    uint64_t now = lg_now_us();
    if (w->recon == NULL)
        w->recon = sl_calloc(w->nconns ? w->nconns : 1, sizeof(*w->recon));
    for (uint32_t i = 0; i < w->nconns; i++) {
        struct lg_conn *c = &w->conns[i];
        if (c->state != LG_CONN_READY || c->finished)
            continue;
        c->t_cut_us = now;
        c->reconnecting = true;
        c->state = LG_CONN_CLOSED; /* nothing more is read or written on this socket */
        w->stats.cut_conns++;
        w->stats.cut_streams += c->active;
        if (uv_tcp_close_reset(&c->tcp, on_cut_closed) != 0)
            uv_close((uv_handle_t *)&c->tcp, on_cut_closed);
    }
    /* Reconnections time out like first connections. */
    w->sweep_from = 0;
    if (!uv_is_active((uv_handle_t *)&w->sweep))
        uv_timer_start(&w->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
}

static void
on_async(uv_async_t *h)
{
    struct lg_worker *w = h->data;
    int cmd = atomic_exchange(&w->cmd, LG_CMD_NONE);
    if (cmd == LG_CMD_NONE || cmd <= w->phase)
        return;
    if (cmd == LG_CMD_CUT) {
        if (w->phase != LG_CMD_STREAM)
            return;
        w->phase = LG_CMD_CUT;
        cut_all(w);
        return;
    }
    if (cmd == LG_CMD_STREAM) {
        w->phase = LG_CMD_STREAM;
        w->stream_t0_us = lg_now_us();
        w->spread_next = 0;
        on_spread_timer(&w->timer);
        return;
    }
    bool abort = cmd == LG_CMD_ABORT;
    w->phase = LG_CMD_CLOSE;
    begin_close(w, abort);
}

void
lg_worker_command(struct lg_worker *w, enum lg_cmd cmd)
{
    atomic_store(&w->cmd, (int)cmd);
    uv_async_send(&w->async);
}

/* --- lifecycle ---------------------------------------------------------------------------- */

void
lg_worker_init(struct lg_worker *w, const struct lg_config *cfg, unsigned id)
{
    memset(w, 0, sizeof(*w));
    w->cfg = cfg;
    w->ops = cfg->mode == LG_MODE_NATIVE ? &lg_wsconn_ops : &lg_sseconn_ops;
    w->id = id;
    sl_random(&w->prng, sizeof(w->prng));
    w->prng |= 1;
    lg_stats_init(&w->stats);
    w->nconns = cfg->connections / cfg->threads + (id < cfg->connections % cfg->threads ? 1 : 0);
    w->conns = sl_calloc(w->nconns ? w->nconns : 1, sizeof(*w->conns));
    for (uint32_t i = 0; i < w->nconns; i++) {
        w->conns[i].index = id + i * cfg->threads;
        w->conns[i].w = w;
    }
    w->ramp_max = cfg->ramp / cfg->threads;
    if (w->ramp_max == 0)
        w->ramp_max = 1;
    sl_assert(uv_loop_init(&w->loop) == 0);
    sl_assert(uv_async_init(&w->loop, &w->async, on_async) == 0);
    w->async.data = w;
    uv_timer_init(&w->loop, &w->timer);
    w->timer.data = w;
    uv_timer_init(&w->loop, &w->sweep);
    w->sweep.data = w;
    if (w->nconns > 0)
        uv_timer_start(&w->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_check_init(&w->loop, &w->check);
    w->check.data = w;
    uv_check_start(&w->check, on_check);
    uv_unref((uv_handle_t *)&w->check);
}

static void
run(void *arg)
{
    struct lg_worker *w = arg;
    ramp(w);
    publish(w);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    publish(w);
    atomic_store(&w->progress.exited, true);
}

int
lg_worker_start(struct lg_worker *w)
{
    return uv_thread_create(&w->thread, run, w);
}

void
lg_worker_join(struct lg_worker *w)
{
    uv_thread_join(&w->thread);
}

void
lg_worker_cleanup(struct lg_worker *w)
{
    uv_loop_close(&w->loop);
    for (uint32_t i = 0; i < w->nconns; i++)
        free(w->conns[i].token);
    free(w->recon);
    w->recon = NULL;
    free(w->conns);
    w->conns = NULL;
}
