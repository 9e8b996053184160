#include "net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "net/loop.h"
#include "obs/log.h"

#define BACKLOG 4096

/* Connections accepted per readiness event, so that a burst cannot hold the loop. */
#define ACCEPT_BATCH 64

/* Backlog connections answered 503 per overload event. */
#define SHED_BATCH 256

/* At most one overload log line per this long, with the counts since the last one. */
#define LOG_INTERVAL_MS 1000

#define BUSY_BODY "{\"error\":{\"status\":503,\"message\":\"server overloaded; retry shortly\"}}"
#define BUSY_LEN 69
#define STR_(x) #x
#define STR(x) STR_(x)

static const char busy_response[] =
    "HTTP/1.1 503 Service Unavailable\r\nServer: sluice\r\nContent-Type: application/json\r\n"
    "Retry-After: 1\r\nConnection: close\r\nContent-Length: " STR(BUSY_LEN) "\r\n\r\n" BUSY_BODY;
_Static_assert(sizeof(BUSY_BODY) - 1 == BUSY_LEN, "BUSY_LEN is the body's length");

/* --- sockets ------------------------------------------------------------------------------ */

/* A socket for host:port with SO_REUSEADDR (and SO_REUSEPORT if asked), bound. */
static int
bind_socket(const char *host, uint16_t port, bool reuseport, uint16_t *bound_port, char *err,
            size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    int fd = -1, rc = -EINVAL, one = 1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%u", port);
    int gai = getaddrinfo(host && *host ? host : NULL, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address %s: %s", host, gai_strerror(gai));
        goto out;
    }
    fd = socket(res->ai_family, res->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "socket: %s", strerror(errno));
        goto out;
    }
    /* Our own connections of a previous run in TIME_WAIT must not block a restart. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        rc = -errno;
        snprintf(err, errlen, "SO_REUSEPORT: %s", strerror(errno));
        goto out;
    }
    if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
        rc = -errno;
        if (errno == EADDRINUSE && !reuseport)
            snprintf(err, errlen,
                     "cannot listen on %s:%u: address in use by another process (stop it, or "
                     "start with --reuse-port / listen_reuse: true if a handover is intended)",
                     host, port);
        else
            snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, strerror(errno));
        goto out;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    if (ss.ss_family == AF_INET)
        *bound_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    else
        *bound_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    rc = fd;
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    if (res)
        freeaddrinfo(res);
    return rc;
}

int
sl_listener_open(const char *host, uint16_t port, uint16_t *bound_port, char *err, size_t errlen)
{
    int fd = bind_socket(host, port, true, bound_port, err, errlen);
    if (fd < 0)
        return fd;
    if (listen(fd, BACKLOG) != 0) {
        int rc = -errno;
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return rc;
    }
    return fd;
}

int
sl_listener_probe(const char *host, uint16_t port, uint16_t *bound_port, char *err, size_t errlen)
{
    int fd = bind_socket(host, port, false, bound_port, err, errlen);
    if (fd < 0)
        return fd;
    /* Closed at once: bound but never listening, it leaves nothing behind (no TIME_WAIT). */
    close(fd);
    return 0;
}

/* --- accepting -------------------------------------------------------------------------- */

struct sl_listener {
    uv_poll_t poll;
    uv_timer_t pause;
    int fd;
    int reserve; /* a descriptor kept to be given up when there are none left */
    int open_handles;
    sl_listener_accept_cb cb;
    void *ud;
    unsigned worker;
    struct sl_listener_stats stats;
    /* counts not logged yet, and when the last line went out */
    uint64_t shed_unlogged, pauses_unlogged;
    uint64_t last_log_ms;
    int last_err;
    bool logged_once;
};

static int
open_reserve(void)
{
    return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void
log_overload(struct sl_listener *l, const char *event)
{
    uint64_t now = uv_now(l->poll.loop);
    if (l->logged_once && now - l->last_log_ms < LOG_INTERVAL_MS)
        return;
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_WARN, event)) {
        sl_log_uint(&r, "worker", l->worker);
        sl_log_str(&r, "error", strerror(l->last_err));
        sl_log_uint(&r, "shed", l->shed_unlogged);
        sl_log_uint(&r, "pauses", l->pauses_unlogged);
        sl_log_uint(&r, "pause_ms", SL_LISTENER_PAUSE_MS);
        sl_log_str(&r, "reason",
                   "out of file descriptors: waiting connections answered 503, accepting paused "
                   "(raise the file limit or lower limits.max_connections)");
        sl_log_end(&r);
    }
    l->logged_once = true;
    l->last_log_ms = now;
    l->shed_unlogged = l->pauses_unlogged = 0;
}

/*
 * Answers the connections waiting in the backlog with a fast 503 and closes them, so that
 * their clients learn at once that the server is overloaded instead of waiting for a
 * handshake that cannot come. The reserved descriptor makes room for each accept.
 */
static void
shed(struct sl_listener *l)
{
    if (l->reserve >= 0) {
        close(l->reserve);
        l->reserve = -1;
    }
    for (int i = 0; i < SHED_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        /* What the client already sent is read first: unread input would turn the close
         * into a reset that may destroy the answer. */
        char sink[4096];
        while (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0)
            ;
        ssize_t w = send(fd, busy_response, sizeof(busy_response) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)w;
        close(fd);
        l->stats.shed++;
        l->shed_unlogged++;
    }
    /* Another thread may have taken the freed number meanwhile: then next time. */
    l->reserve = open_reserve();
}

static void on_poll(uv_poll_t *p, int status, int events);

static void
on_resume(uv_timer_t *t)
{
    struct sl_listener *l = t->data;
    uv_poll_start(&l->poll, UV_READABLE, on_poll);
}

/* Out of descriptors (or kernel memory): shed, then stop accepting for a moment. */
static void
overload(struct sl_listener *l, int err)
{
    l->last_err = err;
    if (err == EMFILE || err == ENFILE)
        shed(l);
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->pause, on_resume, SL_LISTENER_PAUSE_MS, 0);
    l->stats.pauses++;
    l->pauses_unlogged++;
    log_overload(l, "accept.overload");
}

static void
on_poll(uv_poll_t *p, int status, int events)
{
    (void)events;
    struct sl_listener *l = p->data;
    if (status < 0) {
        overload(l, -status);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            l->stats.accepted++;
            l->cb(l->ud, fd);
            continue;
        }
        switch (errno) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
            break;
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case EOPNOTSUPP:
        case ENETUNREACH:
            /* That connection's trouble, not the listener's (accept(2)): the next one. */
            continue;
        default:
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or worse: retrying at once would spin. */
            overload(l, errno);
            return;
        }
        break;
    }
    /* Accepting again after an overload: the counts of its last moments. */
    if (l->shed_unlogged + l->pauses_unlogged > 0)
        log_overload(l, "accept.recovered");
}

struct sl_listener *
sl_listener_start(struct sl_loop *loop, int fd, sl_listener_accept_cb cb, void *ud, unsigned worker)
{
    struct sl_listener *l = sl_calloc(1, sizeof(*l));
    l->fd = fd;
    l->cb = cb;
    l->ud = ud;
    l->worker = worker;
    l->reserve = open_reserve();
    if (uv_poll_init_socket(sl_loop_uv(loop), &l->poll, fd) != 0)
        sl_panic("cannot poll listening socket %d", fd);
    uv_timer_init(sl_loop_uv(loop), &l->pause);
    l->poll.data = l->pause.data = l;
    l->open_handles = 2;
    uv_poll_start(&l->poll, UV_READABLE, on_poll);
    return l;
}

static void
on_handle_closed(uv_handle_t *h)
{
    struct sl_listener *l = h->data;
    if (--l->open_handles > 0)
        return;
    close(l->fd);
    if (l->reserve >= 0)
        close(l->reserve);
    free(l);
}

void
sl_listener_stop(struct sl_listener *l)
{
    uv_close((uv_handle_t *)&l->poll, on_handle_closed);
    uv_close((uv_handle_t *)&l->pause, on_handle_closed);
}

void
sl_listener_stats(const struct sl_listener *l, struct sl_listener_stats *out)
{
    *out = l->stats;
}
