#include "net/conn.h"

#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "net/loop.h"
#include "obs/log.h"

/* How long a closing connection waits for the peer's FIN after ours (within the close
 * deadline). */
#define LINGER_MS 2000

enum {
    F_READING = 1 << 0,   /* uv_read_start is active */
    F_PAUSED = 1 << 1,    /* reading paused by the handler */
    F_PENDING = 1 << 2,   /* on pool->pending */
    F_WRITING = 1 << 3,   /* a uv_write is in flight */
    F_CLOSING = 1 << 4,   /* graceful close requested */
    F_SHUTDOWN = 1 << 5,  /* FIN sent */
    F_CLOSED = 1 << 6,    /* uv_close called */
    F_EOF = 1 << 7,       /* the peer's FIN (or an error) was read */
    F_CONGESTED = 1 << 8, /* reading stopped: the queue went over max_queued */
    F_LAZY = 1 << 9,      /* writes now may wait for company (sl_conn_lazy) */
    F_HELD = 1 << 10,     /* lazy bytes queued, not pending: hnode flushes them at the latest */
};

struct sl_conn {
    uv_tcp_t tcp;
    struct sl_conn_pool *pool;
    const struct sl_conn_handler *h;
    void *state;
    struct sl_buf out;
    size_t inflight; /* bytes in the uv_write in flight */
    struct sl_list all_link;
    struct sl_list pending_link;
    struct sl_timeq_node tnode; /* the handler's (sl_conn_timer) */
    /* The connection's own deadline: the send timeout while a write is in flight, then the
     * close deadline, then the linger after our FIN. */
    struct sl_timeq_node wnode;
    struct sl_timeq_node hnode; /* lazy bytes held: when they go anyway (pool->hold) */
    size_t stall_mark; /* bytes not acknowledged by the peer at the last check (unacked()) */
    uint64_t id;

    uint64_t written; /* bytes queued over the connection's life (sl_conn_written) */
    void *tag;        /* the owner's (sl_conn_set_tag) */
    unsigned flags;
};

struct write_req {
    uv_write_t req;
    char *base; /* the buffer storage to free */
};

static void flush(struct sl_conn *c);
static void mark_pending(struct sl_conn *c);

static struct sl_conn *
from_wnode(struct sl_timeq_node *n)
{
    return SL_CONTAINER_OF(n, struct sl_conn, wnode);
}

static void
log_deadline(struct sl_conn *c, const char *event, const char *reason)
{
    struct sl_logrec r;
    if (!sl_log_begin(&r, SL_LOG_INFO, event))
        return;
    char peer[64];
    sl_conn_peer(c, peer, sizeof(peer));
    sl_log_uint(&r, "conn", c->id);
    sl_log_str(&r, "peer", peer);
    sl_log_uint(&r, "queued", sl_conn_queued(c));
    sl_log_str(&r, "reason", reason);
    sl_log_end(&r);
}

/*
 * Bytes written and not yet acknowledged by the peer: what is left of the write in flight
 * plus the kernel's send queue. Only the peer reading makes it shrink; the kernel taking
 * bytes from libuv only moves them from one part to the other.
 */
static size_t
unacked(struct sl_conn *c)
{
    size_t n = uv_stream_get_write_queue_size((const uv_stream_t *)&c->tcp);
    uv_os_fd_t fd;
    int outq = 0;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) == 0 && ioctl(fd, SIOCOUTQ, &outq) == 0 &&
        outq > 0)
        n += (size_t)outq;
    return n;
}

/*
 * A write has been in flight for send_timeout. libuv reports a write only once it is
 * complete, and the kernel's buffers absorb megabytes before it asks for more, so progress
 * is read from what the peer acknowledged: if it took anything since the last check, wait
 * another period; if not, the peer stopped reading and the connection is reset rather than
 * left holding its queue.
 */
static void
on_stall(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_conn *c = from_wnode(n);
    if (!(c->flags & F_WRITING) || (c->flags & (F_CLOSING | F_CLOSED)))
        return;
    size_t left = unacked(c);
    if (left < c->stall_mark) {
        c->stall_mark = left;
        sl_loop_arm(c->pool->loop, &c->pool->stall, &c->wnode);
        return;
    }
    c->pool->send_timeouts++;
    log_deadline(c, "conn.send_timeout", "the peer took no data for limits.send_timeout");
    sl_conn_reset(c);
}

/* The close deadline: a reset if the FIN could not be sent (the peer is not reading),
 * otherwise just the end of waiting for the peer's FIN. */
static void
on_close_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_conn *c = from_wnode(n);
    if (c->flags & F_SHUTDOWN) {
        sl_conn_abort(c);
        return;
    }
    c->pool->close_timeouts++;
    log_deadline(c, "conn.close_timeout", "graceful close not done within its deadline");
    sl_conn_reset(c);
}

static void
on_linger(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    sl_conn_abort(from_wnode(n));
}

/* Lazy bytes waited long enough for company: they go on their own. */
static void
on_hold(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_conn *c = SL_CONTAINER_OF(n, struct sl_conn, hnode);
    c->flags &= ~F_HELD;
    mark_pending(c);
}

void
sl_conn_lazy(struct sl_conn *c, bool on)
{
    if (on) {
        /* Something urgent is queued already: these bytes go with it, at once. */
        if (!(c->flags & (F_PENDING | F_WRITING | F_CLOSING | F_CLOSED)))
            c->flags |= F_LAZY;
        return;
    }
    if (!(c->flags & F_LAZY))
        return;
    c->flags &= ~F_LAZY;
    if (sl_buf_len(&c->out) == 0 || (c->flags & (F_HELD | F_PENDING)))
        return;
    c->flags |= F_HELD;
    sl_loop_arm(c->pool->loop, &c->pool->hold, &c->hnode);
}

/* Only there to keep the loop from blocking in poll; the turn's hooks do the flushing. */
static void
on_soon(struct sl_timeq_node *n, uint64_t now)
{
    (void)n;
    (void)now;
}

void
sl_conn_pool_init(struct sl_conn_pool *p, struct sl_loop *loop)
{
    memset(p, 0, sizeof(*p));
    p->loop = loop;
    sl_list_init(&p->all);
    sl_list_init(&p->pending);
    p->limits = (struct sl_conn_limits){
        .send_timeout_ms = SL_CONN_SEND_TIMEOUT_MS,
        .close_timeout_ms = SL_CONN_CLOSE_TIMEOUT_MS,
        .max_queued = SL_CONN_MAX_QUEUED,
    };
    sl_timeq_init(&p->stall, p->limits.send_timeout_ms, on_stall);
    sl_loop_add_timeq(loop, &p->stall);
    sl_timeq_init(&p->closing, p->limits.close_timeout_ms, on_close_timeout);
    sl_loop_add_timeq(loop, &p->closing);
    sl_timeq_init(&p->linger, LINGER_MS, on_linger);
    sl_loop_add_timeq(loop, &p->linger);
    sl_timeq_init(&p->hold, SL_CONN_HOLD_MS, on_hold);
    sl_loop_add_timeq(loop, &p->hold);
    sl_timeq_init(&p->soon, 0, on_soon);
    sl_timeq_node_init(&p->soon_node);
    sl_loop_add_timeq(loop, &p->soon);
    sl_loop_add_turn_hook(loop, sl_conn_pool_flush, p);
}

void
sl_conn_pool_set_limits(struct sl_conn_pool *p, const struct sl_conn_limits *lim)
{
    /* A queue's duration may only change while no node is armed on it. */
    sl_assert(p->count == 0 && lim->close_timeout_ms > 0);
    p->limits = *lim;
    p->stall.duration_ms = lim->send_timeout_ms;
    p->closing.duration_ms = lim->close_timeout_ms;
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct sl_conn *c = h->data;
    buf->base = sl_loop_rbuf(c->pool->loop);
    buf->len = SL_LOOP_RBUF_SIZE;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct sl_conn *c = s->data;
    if (nread == 0)
        return;
    if (c->flags & F_CLOSING) {
        /* Draining the peer until its FIN; what it sends no longer matters. */
        if (nread < 0)
            sl_conn_abort(c);
        return;
    }
    if (nread < 0) {
        c->flags |= F_EOF;
        c->h->on_eof(c);
        if (!(c->flags & (F_CLOSING | F_CLOSED)) && (c->flags & F_READING)) {
            uv_read_stop(s);
            c->flags &= ~F_READING;
        }
        return;
    }
    c->h->on_read(c, buf->base, (size_t)nread);
}

/* Reads when a handler is set and neither it (F_PAUSED) nor the output cap holds reading. */
static void
update_reading(struct sl_conn *c)
{
    bool want = c->h != NULL && !(c->flags & (F_PAUSED | F_CONGESTED | F_CLOSED));
    if (want && !(c->flags & F_READING)) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->flags |= F_READING;
    } else if (!want && (c->flags & F_READING)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->flags &= ~F_READING;
    }
}

static void
free_unaccepted(uv_handle_t *h)
{
    free(h->data);
}

static struct sl_conn *
conn_new(struct sl_conn_pool *p)
{
    struct sl_conn *c = sl_calloc(1, sizeof(*c));
    uv_tcp_init(sl_loop_uv(p->loop), &c->tcp);
    c->tcp.data = c;
    c->pool = p;
    sl_list_init(&c->all_link);
    sl_list_init(&c->pending_link);
    sl_timeq_node_init(&c->tnode);
    sl_timeq_node_init(&c->wnode);
    sl_timeq_node_init(&c->hnode);
    return c;
}

static struct sl_conn *
conn_opened(struct sl_conn *c)
{
    struct sl_conn_pool *p = c->pool;
    /* sluice coalesces per loop turn itself; Nagle would only add latency. */
    uv_tcp_nodelay(&c->tcp, 1);
    c->id = ++p->next_id;
    sl_list_push_back(&p->all, &c->all_link);
    p->count++;
    return c;
}

struct sl_conn *
sl_conn_accept(struct sl_conn_pool *p, struct uv_stream_s *server)
{
    struct sl_conn *c = conn_new(p);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
        return NULL;
    }
    return conn_opened(c);
}

struct sl_conn *
sl_conn_adopt(struct sl_conn_pool *p, int fd)
{
    struct sl_conn *c = conn_new(p);
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        close(fd);
        uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
        return NULL;
    }
    return conn_opened(c);
}

int
sl_conn_fileno(const struct sl_conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
        return -1;
    return fd;
}

void
sl_conn_set_tag(struct sl_conn *c, void *tag)
{
    c->tag = tag;
}

void
sl_conn_set_handler(struct sl_conn *c, const struct sl_conn_handler *h, void *state)
{
    c->h = h;
    c->state = state;
    update_reading(c);
}

void *
sl_conn_state(const struct sl_conn *c)
{
    return c->state;
}

void
sl_conn_feed(struct sl_conn *c, const char *data, size_t len)
{
    if (!(c->flags & (F_CLOSING | F_CLOSED)))
        c->h->on_read(c, data, len);
}

struct sl_conn_pool *
sl_conn_pool(const struct sl_conn *c)
{
    return c->pool;
}

uint64_t
sl_conn_id(const struct sl_conn *c)
{
    return c->id;
}

static void
mark_pending(struct sl_conn *c)
{
    if (c->flags & F_LAZY)
        return;
    if (c->flags & F_HELD) {
        c->flags &= ~F_HELD; /* the held bytes leave with these */
        sl_timeq_disarm(&c->hnode);
    }
    if (c->flags & (F_PENDING | F_WRITING | F_CLOSED))
        return;
    c->flags |= F_PENDING;
    sl_list_push_back(&c->pool->pending, &c->pending_link);
}

/*
 * The queue is released whenever it empties, so a streaming connection starts a fresh one
 * every turn: start it big enough for a turn's worth of frames instead of growing it by
 * doubling from 64 bytes.
 */
#define OUT_INITIAL 2048

static char *
reserve(struct sl_conn *c, size_t n)
{
    if (c->out.data == NULL && n < OUT_INITIAL) {
        sl_buf_reserve(&c->out, OUT_INITIAL);
        return c->out.data;
    }
    return sl_buf_reserve(&c->out, n);
}

/*
 * Over the output cap: stop reading, so that the output the peer's input drives stops
 * growing with it. Input already read is the handler's to hold (sl_conn_congested()).
 */
static void
check_cap(struct sl_conn *c)
{
    size_t max = c->pool->limits.max_queued;
    if (max == 0 || (c->flags & F_CONGESTED) || sl_conn_queued(c) <= max)
        return;
    c->flags |= F_CONGESTED;
    c->pool->read_pauses++;
    update_reading(c);
}

/* Under half the cap again: read again. */
static void
relieve(struct sl_conn *c)
{
    if (!(c->flags & F_CONGESTED) || sl_conn_queued(c) > c->pool->limits.max_queued / 2)
        return;
    c->flags &= ~F_CONGESTED;
    if (!(c->flags & (F_CLOSING | F_CLOSED)))
        update_reading(c);
}

void
sl_conn_write(struct sl_conn *c, const void *p, size_t n)
{
    if (c->flags & (F_CLOSING | F_CLOSED) || n == 0)
        return;
    memcpy(reserve(c, n), p, n);
    sl_buf_commit(&c->out, n);
    c->written += n;
    mark_pending(c);
    check_cap(c);
}

char *
sl_conn_reserve(struct sl_conn *c, size_t n)
{
    return reserve(c, n);
}

void
sl_conn_commit(struct sl_conn *c, size_t n)
{
    if (c->flags & (F_CLOSING | F_CLOSED))
        return;
    sl_buf_commit(&c->out, n);
    c->written += n;
    mark_pending(c);
    check_cap(c);
}

uint64_t
sl_conn_written(const struct sl_conn *c)
{
    return c->written;
}

uint64_t
sl_conn_acked(struct sl_conn *c)
{
    if (c->flags & F_CLOSED)
        return 0;
    size_t pending = sl_buf_len(&c->out) + unacked(c);
    return c->written > pending ? c->written - pending : 0;
}

size_t
sl_conn_queued(const struct sl_conn *c)
{
    /* The write in flight counts whole until its completion: 0 means drained, on_drain due. */
    return sl_buf_len(&c->out) + c->inflight;
}

bool
sl_conn_congested(const struct sl_conn *c)
{
    return (c->flags & F_CONGESTED) != 0;
}

bool
sl_conn_closing(const struct sl_conn *c)
{
    return (c->flags & (F_CLOSING | F_CLOSED)) != 0;
}

static void
on_close_done(uv_handle_t *h)
{
    struct sl_conn *c = h->data;
    struct sl_conn_pool *p = c->pool;
    void *tag = c->tag;
    if (c->h && c->h->on_close)
        c->h->on_close(c);
    sl_buf_free(&c->out);
    free(c);
    if (p->on_closed)
        p->on_closed(p->on_closed_ud, tag);
}

static void
close_now(struct sl_conn *c, bool reset)
{
    if (c->flags & F_CLOSED)
        return;
    c->flags |= F_CLOSED;
    sl_timeq_disarm(&c->tnode);
    sl_timeq_disarm(&c->wnode);
    sl_timeq_disarm(&c->hnode);
    sl_list_unlink(&c->pending_link);
    sl_list_unlink(&c->all_link);
    c->pool->count--;
    /* libuv refuses a reset once a shutdown (FIN) is under way. */
    if (reset && uv_tcp_close_reset(&c->tcp, on_close_done) == 0)
        return;
    uv_close((uv_handle_t *)&c->tcp, on_close_done);
}

void
sl_conn_abort(struct sl_conn *c)
{
    close_now(c, false);
}

void
sl_conn_reset(struct sl_conn *c)
{
    close_now(c, true);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    struct sl_conn *c = req->handle->data;
    free(req);
    /* Our FIN is out; if the peer's came already there is nothing left to wait for. */
    if (status < 0 || (c->flags & F_EOF))
        sl_conn_abort(c);
}

static void
start_shutdown(struct sl_conn *c)
{
    c->flags |= F_SHUTDOWN;
    uv_shutdown_t *req = sl_malloc(sizeof(*req));
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        sl_conn_abort(c);
        return;
    }
    /* Keep reading so that the peer's FIN (EOF) ends the linger early. */
    c->flags &= ~(F_PAUSED | F_CONGESTED);
    update_reading(c);
    /* The linger, unless the close deadline comes first. */
    uint64_t now = sl_loop_now(c->pool->loop);
    if (!sl_timeq_armed(&c->wnode) || c->wnode.at > now + LINGER_MS)
        sl_loop_arm(c->pool->loop, &c->pool->linger, &c->wnode);
}

void
sl_conn_close(struct sl_conn *c)
{
    if (c->flags & (F_CLOSING | F_CLOSED))
        return;
    c->flags |= F_CLOSING;
    c->flags &= ~(F_LAZY | F_HELD); /* what is held goes with the close */
    sl_timeq_disarm(&c->hnode);
    sl_timeq_disarm(&c->tnode);
    /* From here the close deadline replaces the send timeout: it bounds the whole close. */
    sl_loop_arm(c->pool->loop, &c->pool->closing, &c->wnode);
    if (c->flags & F_WRITING)
        return; /* on_write continues */
    c->flags &= ~F_PENDING;
    sl_list_unlink(&c->pending_link);
    flush(c);
}

static void
on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct sl_conn *c = req->handle->data;
    free(w->base);
    free(w);
    if (c->flags & F_CLOSED)
        return;
    c->flags &= ~F_WRITING;
    c->pool->bytes_out += c->inflight;
    c->inflight = 0;
    if (status < 0) {
        sl_conn_abort(c);
        return;
    }
    /* Progress: the send timeout starts again with the next write (or not at all). */
    if (!(c->flags & F_CLOSING))
        sl_timeq_disarm(&c->wnode);
    relieve(c);
    flush(c);
}

/* Everything queued went out: finish a close, or tell the handler. */
static void
drained(struct sl_conn *c)
{
    relieve(c);
    if (c->flags & F_CLOSING) {
        if (!(c->flags & F_SHUTDOWN))
            start_shutdown(c);
        return;
    }
    if (c->h && c->h->on_drain)
        c->h->on_drain(c);
}

/*
 * Writes the queue: what the kernel takes at once, and the rest through a uv_write. Returns
 * true if the queue emptied (nothing left, nothing in flight), false otherwise or if the
 * connection failed (and is now closed).
 */
static bool
write_out(struct sl_conn *c)
{
    size_t n = sl_buf_len(&c->out);
    if (n == 0)
        return true;
    uv_buf_t b = uv_buf_init((char *)sl_buf_ptr(&c->out), (unsigned)n);
    int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (r == UV_EAGAIN || r == UV_ENOSYS)
        r = 0;
    if (r < 0) {
        sl_conn_abort(c);
        return false;
    }
    c->pool->bytes_out += (uint64_t)r;
    sl_buf_consume(&c->out, (size_t)r);
    n = sl_buf_len(&c->out);
    if (n == 0)
        return true;
    /* The kernel is full: hand the rest to libuv and keep queuing into a fresh buffer. */
    struct write_req *w = sl_malloc(sizeof(*w));
    w->base = c->out.data;
    b = uv_buf_init(c->out.data + c->out.off, (unsigned)n);
    c->out.data = NULL;
    c->out.off = c->out.len = c->out.cap = 0;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        free(w->base);
        free(w);
        sl_conn_abort(c);
        return false;
    }
    c->flags |= F_WRITING;
    c->inflight = n;
    if (c->pool->limits.send_timeout_ms > 0 && !(c->flags & F_CLOSING)) {
        c->stall_mark = unacked(c);
        sl_loop_arm(c->pool->loop, &c->pool->stall, &c->wnode);
    }
    return false;
}

static void
flush(struct sl_conn *c)
{
    if (c->flags & (F_WRITING | F_CLOSED))
        return;
    if (write_out(c))
        drained(c);
}

void
sl_conn_flush(struct sl_conn *c)
{
    if (c->flags & (F_WRITING | F_CLOSING | F_CLOSED))
        return;
    /* Written now; if that empties the queue, the end-of-turn flush finds it empty and
     * calls on_drain, so that the handler never runs inside its own call. */
    if (write_out(c))
        mark_pending(c);
}

void
sl_conn_pool_flush(void *arg)
{
    struct sl_conn_pool *p = arg;
    if (sl_list_empty(&p->pending))
        return;
    /* Take the list as it is: a connection that on_drain queues again goes onto a fresh one. */
    struct sl_list batch = p->pending;
    batch.next->prev = &batch;
    batch.prev->next = &batch;
    sl_list_init(&p->pending);
    while (!sl_list_empty(&batch)) {
        struct sl_list *n = batch.next;
        struct sl_conn *c = SL_CONTAINER_OF(n, struct sl_conn, pending_link);
        sl_list_unlink(n);
        c->flags &= ~F_PENDING;
        flush(c);
    }
    if (!sl_list_empty(&p->pending))
        sl_loop_arm(p->loop, &p->soon, &p->soon_node);
}

void
sl_conn_pause_reading(struct sl_conn *c)
{
    c->flags |= F_PAUSED;
    update_reading(c);
}

void
sl_conn_resume_reading(struct sl_conn *c)
{
    c->flags &= ~F_PAUSED;
    update_reading(c);
}

int
sl_conn_peer_addr(const struct sl_conn *c, struct sockaddr_storage *out)
{
    int len = sizeof(*out);
    return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)out, &len) == 0 ? 0 : -1;
}

void
sl_conn_peer(const struct sl_conn *c, char *out, size_t outlen)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[64] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, outlen, "%s:%d", host, port);
}

struct sl_timeq_node *
sl_conn_timer(struct sl_conn *c)
{
    return &c->tnode;
}

struct sl_conn *
sl_conn_from_timer(struct sl_timeq_node *n)
{
    return SL_CONTAINER_OF(n, struct sl_conn, tnode);
}

void
sl_conn_pool_foreach(struct sl_conn_pool *p, void (*fn)(struct sl_conn *c, void *arg), void *arg)
{
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &p->all) fn(SL_CONTAINER_OF(pos, struct sl_conn, all_link), arg);
}
