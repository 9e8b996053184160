#include "net/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "net/loop.h"

/* How long a closing connection waits for the peer's FIN after ours. */
#define LINGER_MS 2000

enum {
    F_READING = 1 << 0,  /* uv_read_start is active */
    F_PAUSED = 1 << 1,   /* reading paused by the handler */
    F_PENDING = 1 << 2,  /* on pool->pending */
    F_WRITING = 1 << 3,  /* a uv_write is in flight */
    F_CLOSING = 1 << 4,  /* graceful close requested */
    F_SHUTDOWN = 1 << 5, /* FIN sent */
    F_CLOSED = 1 << 6,   /* uv_close called */
    F_EOF = 1 << 7,      /* the peer's FIN (or an error) was read */
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
    struct sl_timeq_node tnode;
    uint64_t id;
    unsigned flags;
    void *tag; /* the owner's (sl_conn_set_tag) */
};

struct write_req {
    uv_write_t req;
    char *base; /* the buffer storage to free */
};

static void flush(struct sl_conn *c);

static void
on_linger(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    sl_conn_abort(sl_conn_from_timer(n));
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
    sl_timeq_init(&p->linger, LINGER_MS, on_linger);
    sl_loop_add_timeq(loop, &p->linger);
    sl_timeq_init(&p->soon, 0, on_soon);
    sl_timeq_node_init(&p->soon_node);
    sl_loop_add_timeq(loop, &p->soon);
    sl_loop_add_turn_hook(loop, sl_conn_pool_flush, p);
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

static void
start_reading(struct sl_conn *c)
{
    if (c->flags & (F_READING | F_CLOSED))
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->flags |= F_READING;
}

static void
free_unaccepted(uv_handle_t *h)
{
    free(h->data);
}

struct sl_conn *
sl_conn_accept(struct sl_conn_pool *p, struct uv_stream_s *server)
{
    struct sl_conn *c = sl_calloc(1, sizeof(*c));
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    c->pool = p;
    sl_list_init(&c->all_link);
    sl_list_init(&c->pending_link);
    sl_timeq_node_init(&c->tnode);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
        return NULL;
    }
    /* sluice coalesces per loop turn itself; Nagle would only add latency. */
    uv_tcp_nodelay(&c->tcp, 1);
    c->id = ++p->next_id;
    sl_list_push_back(&p->all, &c->all_link);
    p->count++;
    return c;
}

struct sl_conn *
sl_conn_adopt(struct sl_conn_pool *p, int fd)
{
    struct sl_conn *c = sl_calloc(1, sizeof(*c));
    uv_tcp_init(sl_loop_uv(p->loop), &c->tcp);
    c->tcp.data = c;
    c->pool = p;
    sl_list_init(&c->all_link);
    sl_list_init(&c->pending_link);
    sl_timeq_node_init(&c->tnode);
    if (uv_tcp_open(&c->tcp, fd) != 0) {
        uv_close((uv_handle_t *)&c->tcp, free_unaccepted);
        return NULL;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->id = ++p->next_id;
    sl_list_push_back(&p->all, &c->all_link);
    p->count++;
    return c;
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
sl_conn_set_handler(struct sl_conn *c, const struct sl_conn_handler *h, void *state)
{
    c->h = h;
    c->state = state;
    if (!(c->flags & F_PAUSED))
        start_reading(c);
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

void
sl_conn_write(struct sl_conn *c, const void *p, size_t n)
{
    if (c->flags & (F_CLOSING | F_CLOSED) || n == 0)
        return;
    memcpy(reserve(c, n), p, n);
    sl_buf_commit(&c->out, n);
    mark_pending(c);
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
    mark_pending(c);
}

size_t
sl_conn_queued(const struct sl_conn *c)
{
    return sl_buf_len(&c->out) + c->inflight;
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
    c->flags &= ~F_PAUSED;
    start_reading(c);
    sl_loop_arm(c->pool->loop, &c->pool->linger, &c->tnode);
}

void
sl_conn_close(struct sl_conn *c)
{
    if (c->flags & (F_CLOSING | F_CLOSED))
        return;
    c->flags |= F_CLOSING;
    sl_timeq_disarm(&c->tnode);
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
    flush(c);
}

/* Everything queued went out: finish a close, or tell the handler. */
static void
drained(struct sl_conn *c)
{
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
    if (c->flags & F_READING) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->flags &= ~F_READING;
    }
}

void
sl_conn_resume_reading(struct sl_conn *c)
{
    c->flags &= ~F_PAUSED;
    if (c->h != NULL)
        start_reading(c);
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

void
sl_conn_set_tag(struct sl_conn *c, void *tag)
{
    c->tag = tag;
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
