#include "net/handoff.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/timeq.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/loop.h"
#include "obs/log.h"

struct sl_handoff {
    struct sl_loop *loop;
    struct sl_conn_pool *pool;
    const struct sl_handoff_ops *ops;
    void *ud;
    struct sl_timeq soon; /* duration 0: detach on the next turn */
    uint64_t sent, received;
    bool stopping;
};

/* A connection on its way out of this loop (its handler state). */
struct mover {
    struct sl_handoff *from, *to;
    struct sl_conn *c;
    struct sl_buf bytes; /* the request written again, then what followed it */
    bool wait_drain;     /* detach once the queue is written */
    bool detached;
};

/* What travels to the other loop. */
struct moved {
    struct sl_handoff *to;
    int fd;
    struct sl_buf bytes;
};

static void detach(struct mover *m);

/* --- the connection handler while moving ------------------------------------------------ */

static void
m_read(struct sl_conn *c, const char *data, size_t len)
{
    /* Only what http.c feeds after the request: reading itself is paused. */
    struct mover *m = sl_conn_state(c);
    sl_buf_append(&m->bytes, data, len);
}

static void
m_eof(struct sl_conn *c)
{
    sl_conn_abort(c);
}

static void
m_drain(struct sl_conn *c)
{
    struct mover *m = sl_conn_state(c);
    if (m->wait_drain && !m->detached)
        detach(m);
}

static void
m_close(struct sl_conn *c)
{
    struct mover *m = sl_conn_state(c);
    sl_buf_free(&m->bytes);
    free(m);
}

static const struct sl_conn_handler mover_handler = {
    .on_read = m_read,
    .on_eof = m_eof,
    .on_drain = m_drain,
    .on_close = m_close,
};

/* --- sending ------------------------------------------------------------------------------- */

static bool
skipped_header(struct sl_slice name)
{
    /* The body is sent whole with its own length; a 100 Continue was already answered. */
    return sl_slice_ieq(name, "Content-Length") || sl_slice_ieq(name, "Transfer-Encoding") ||
           sl_slice_ieq(name, "Expect");
}

static void
write_request(struct sl_buf *b, const struct sl_http_req *req)
{
    sl_buf_printf(b, "%s %.*s HTTP/1.%u\r\n", req->method, (int)req->target.len, req->target.ptr,
                  req->http_minor);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sl_http_header *h = &req->headers[i];
        if (skipped_header(h->name))
            continue;
        sl_buf_append(b, h->name.ptr, h->name.len);
        sl_buf_append(b, ": ", 2);
        sl_buf_append(b, h->value.ptr, h->value.len);
        sl_buf_append(b, "\r\n", 2);
    }
    sl_buf_printf(b, "Content-Length: %zu\r\n\r\n", req->body.len);
    sl_buf_append(b, req->body.ptr, req->body.len);
}

static void receive(void *arg);

static void
detach(struct mover *m)
{
    struct sl_conn *c = m->c;
    if (sl_conn_queued(c) > 0) {
        /* Something was queued for the client (a 100 Continue): it leaves from here first. */
        m->wait_drain = true;
        return;
    }
    int fd = sl_conn_fileno(c);
    int dupfd = fd >= 0 ? dup(fd) : -1;
    if (dupfd < 0) {
        sl_log_msg(SL_LOG_WARN, "handoff.failed", "cannot duplicate the socket: %s",
                   strerror(errno));
        sl_conn_abort(c);
        return;
    }
    m->detached = true;
    struct moved *mv = sl_malloc(sizeof(*mv));
    mv->to = m->to;
    mv->fd = dupfd;
    mv->bytes = m->bytes;
    m->bytes = (struct sl_buf)SL_BUF_INIT;
    m->from->sent++;
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_DEBUG, "handoff")) {
        sl_log_uint(&r, "conn", sl_conn_id(c));
        sl_log_uint(&r, "bytes", sl_buf_len(&mv->bytes));
        sl_log_end(&r);
    }
    /* Closed here without a FIN: the duplicate keeps the socket open. */
    sl_conn_abort(c);
    sl_loop_post(m->to->loop, receive, mv);
}

static void
on_soon(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_conn *c = sl_conn_from_timer(n);
    detach(sl_conn_state(c));
}

void
sl_handoff_request(struct sl_handoff *from, struct sl_conn *c, const struct sl_http_req *req,
                   struct sl_handoff *to)
{
    struct mover *m = sl_calloc(1, sizeof(*m));
    m->from = from;
    m->to = to;
    m->c = c;
    write_request(&m->bytes, req);
    /*
     * Taking the connection over makes the HTTP layer hand us the bytes it read after the
     * request (as after a WebSocket upgrade), right after this callback returns; with
     * reading paused nothing more comes. The move itself waits for the next turn.
     */
    sl_conn_pause_reading(c);
    sl_conn_set_handler(c, &mover_handler, m);
    sl_loop_arm(from->loop, &from->soon, sl_conn_timer(c));
}

/* --- receiving ------------------------------------------------------------------------------ */

static void
receive(void *arg)
{
    struct moved *mv = arg;
    struct sl_handoff *h = mv->to;
    struct sl_conn *c = NULL;
    if (!h->stopping && (h->ops->admit == NULL || h->ops->admit(h->ud)))
        c = sl_conn_adopt(h->pool, mv->fd); /* closes the socket if it fails */
    else
        close(mv->fd);
    if (c != NULL) {
        h->received++;
        h->ops->serve(h->ud, c);
        if (sl_buf_len(&mv->bytes) > 0 && !sl_conn_closing(c))
            sl_conn_feed(c, sl_buf_ptr(&mv->bytes), sl_buf_len(&mv->bytes));
    }
    sl_buf_free(&mv->bytes);
    free(mv);
}

struct sl_handoff *
sl_handoff_new(struct sl_loop *loop, struct sl_conn_pool *pool, const struct sl_handoff_ops *ops,
               void *ud)
{
    struct sl_handoff *h = sl_calloc(1, sizeof(*h));
    h->loop = loop;
    h->pool = pool;
    h->ops = ops;
    h->ud = ud;
    sl_timeq_init(&h->soon, 0, on_soon);
    sl_loop_add_timeq(loop, &h->soon);
    return h;
}

void
sl_handoff_stop(struct sl_handoff *h)
{
    h->stopping = true;
}

void
sl_handoff_free(struct sl_handoff *h)
{
    free(h);
}

uint64_t
sl_handoff_sent(const struct sl_handoff *h)
{
    return h->sent;
}

uint64_t
sl_handoff_received(const struct sl_handoff *h)
{
    return h->received;
}
