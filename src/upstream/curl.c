#include "upstream/curl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/list.h"
#include "base/util.h"
#include "net/loop.h"
#include "obs/log.h"
#include "upstream/deadline.h"
#include "upstream/gate.h"

/*
 * Easy handles kept for reuse (curl_easy_reset) per worker: a handle and its buffers are
 * set up once, not once per stream. Past this many, a finished handle is freed.
 */
#define SPARE_EASY_MAX 256
/*
 * How long an idle connection may stay in curl's cache (CURLOPT_MAXAGE_CONN; curl's own
 * default is 118 s). The pool's keep-alive requests reuse idle connections well within it.
 */
#define CONN_MAX_AGE_S 300L
/* Between two keep-alive rounds of a pool with min_idle (see on_keepalive()). */
#define KEEPALIVE_MS 30000
/* HTTP/2 streams assumed per connection when widening a pool's cap (see learn_version()). */
#define H2_STREAMS_PER_CONN 100u

/* One watched socket: curl asked us to poll it (CURLMOPT_SOCKETFUNCTION). */
struct sock {
    uv_poll_t poll;
    struct sl_list link; /* in g->socks */
    struct sl_curl *g;
    curl_socket_t fd;
};

struct sl_curl {
    struct sl_loop *loop;
    uv_loop_t *uv;
    CURLM *multi;
    uv_timer_t timer;       /* curl's single timeout (CURLMOPT_TIMERFUNCTION) */
    unsigned depth;         /* > 0 while inside curl: multi and easy calls are refused there */
    unsigned active;        /* transfers added and not released */
    struct sl_list xfers;   /* every live transfer */
    struct sl_list pending; /* transfers with work deferred until curl returns */
    struct sl_list socks;
    struct sl_list pools;
    uv_timer_t keepalive; /* runs while some pool keeps idle connections */
    bool closing;         /* sl_curl_free(): no promotion, no warm-up */
    unsigned closed;      /* of timer and keepalive, closed (see free_glue()) */
    uint64_t timer_ns;    /* spent in curl's timer actions, in all (sl_curl_timer_ns) */
    CURL *spare[SPARE_EASY_MAX];
    unsigned nspare;
};

/* One provider's connections on this worker (see gate.h). */
struct sl_curl_pool {
    struct sl_gate gate;
    struct sl_list link; /* in g->pools */
    struct sl_curl *g;
    unsigned max_connections; /* the configured cap, in connections */
    unsigned min_idle;        /* as configured (the gate's is 1 over HTTP/2) */
    bool h2_learned;          /* the cap follows what a response told (HTTP/2 or not) */
    char *warm_url;
    long connect_timeout_ms;
    bool tls_verify;
    char *ca_file;
};

struct sl_curl_xfer {
    uv_timer_t timer;     /* first-byte / idle timeout, or a deferred resume */
    struct sl_list link;  /* in g->xfers */
    struct sl_list plink; /* in g->pending while deferred work is due */
    struct sl_curl *g;
    struct sl_curl_pool *pool; /* NULL: not gated */
    struct sl_list qlink;      /* in pool->gate.waiting while waiting */
    CURL *easy;
    struct curl_slist *headers;
    const struct sl_curl_xfer_cb *cb;
    void *ud;
    struct sl_deadline dl;        /* first byte, then idle (on timer) */
    CURLcode add_rc;              /* curl refused the handle: reported from the timer */
    const char *add_msg;          /* and why, if not curl's refusal */
    char errbuf[CURL_ERROR_SIZE]; /* here, not the owner's: curl may write it after a remove */
    bool added;                   /* in the multi handle */
    bool need_add;                /* sl_curl_add() ran inside curl: add when it returns */
    bool removed;     /* the owner let go: no more callbacks, release when curl allows */
    bool paused;      /* what the owner wants */
    bool curl_paused; /* what curl was told */
    bool resuming;    /* the timer is armed to unpause */
    bool waiting;     /* queued at the pool's gate, not yet given to curl */
    bool slot;        /* holds one of the pool's slots */
    bool warm;        /* a warm-up request of the pool (ud is the pool) */
};

static void promote(struct sl_curl_xfer *x);
static void topup(struct sl_curl_pool *p);
static void admit_waiters(struct sl_curl *g);

static void after_curl(struct sl_curl *g);

/* --- transfers ------------------------------------------------------------------------ */

static void
free_xfer(uv_handle_t *h)
{
    free(h->data);
}

/*
 * Lets go of a transfer for good. Only outside curl (depth 0). A transfer stopped before
 * its end (cancel, timeout) must not leave its connection behind: curl closes an HTTP/1.1
 * connection then, but for HTTP/2 (7.88) it only queues the RST_STREAM, which leaves when
 * the connection is next used, so a provider whose stream was alone on its connection
 * would keep generating. Forbidding reuse makes curl close such a connection; one still
 * shared by other transfers stays, and their traffic flushes the reset.
 */
static void
release(struct sl_curl_xfer *x, bool unfinished)
{
    struct sl_curl *g = x->g;
    sl_assert(g->depth == 0);
    if (unfinished)
        curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
    if (x->added)
        curl_multi_remove_handle(g->multi, x->easy);
    if (g->nspare < SPARE_EASY_MAX && !g->closing) {
        curl_easy_reset(x->easy);
        g->spare[g->nspare++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    curl_slist_free_all(x->headers);
    sl_list_unlink(&x->link);
    sl_list_unlink(&x->plink);
    g->active--;
    uv_timer_stop(&x->timer);
    struct sl_curl_pool *p = x->pool;
    bool warm = x->warm;
    struct sl_list *next = NULL;
    if (x->waiting)
        sl_gate_forget(&p->gate, &x->qlink);
    else if (x->slot)
        next = sl_gate_leave(&p->gate);
    if (warm)
        p->gate.warming--;
    uv_close((uv_handle_t *)&x->timer, free_xfer); /* x is not touched after this */
    if (p == NULL || g->closing)
        return;
    if (next != NULL)
        promote(SL_CONTAINER_OF(next, struct sl_curl_xfer, qlink));
    else if (!warm)
        topup(p); /* a failed warm-up waits for the next keep-alive round */
}

static void
defer(struct sl_curl_xfer *x)
{
    if (sl_list_empty(&x->plink))
        sl_list_push_back(&x->g->pending, &x->plink);
}

static void on_xfer_timer(uv_timer_t *t);

static void
unpause(struct sl_curl_xfer *x)
{
    struct sl_curl *g = x->g;
    x->curl_paused = false;
    /* curl may deliver buffered data from inside curl_easy_pause: count it as "in curl". */
    g->depth++;
    curl_easy_pause(x->easy, CURLPAUSE_CONT);
    g->depth--;
}

static void
on_xfer_timer(uv_timer_t *t)
{
    struct sl_curl_xfer *x = t->data;
    struct sl_curl *g = x->g;
    if (x->add_rc != CURLE_OK) {
        const struct sl_curl_xfer_cb *cb = x->cb;
        void *ud = x->ud;
        CURLcode rc = x->add_rc;
        const char *msg = x->add_msg ? x->add_msg : "curl refused the transfer";
        release(x, true);
        cb->on_end(ud, rc, msg);
        return;
    }
    if (x->resuming) {
        x->resuming = false;
        sl_deadline_resume(&x->dl);
        if (x->curl_paused && !x->paused)
            unpause(x);
        after_curl(g);
        return;
    }
    enum sl_curl_timeout which;
    if (!sl_deadline_expired(&x->dl, &which))
        return;
    const struct sl_curl_xfer_cb *cb = x->cb;
    void *ud = x->ud;
    release(x, true);
    cb->on_timeout(ud, which);
}

/*
 * curl's write and header callbacks. The owner's callbacks run only while it holds the
 * transfer; after sl_curl_remove() the data is refused, which makes curl abort the
 * transfer if it is still reading (the handle is released as soon as curl returns).
 */
#ifdef CURL_WRITEFUNC_ERROR
#define WRITE_ABORT CURL_WRITEFUNC_ERROR
#else
#define WRITE_ABORT 0
#endif

/* Aborts from inside a callback; the connection goes too (see release()). */
static size_t
abort_transfer(struct sl_curl_xfer *x)
{
    curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
    return WRITE_ABORT;
}

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
    struct sl_curl_xfer *x = arg;
    size_t len = size * n;
    if (x->removed)
        return abort_transfer(x);
    sl_deadline_byte(&x->dl, x->paused);
    if (x->cb->on_data(x->ud, p, len) != 0 || x->removed)
        return abort_transfer(x);
    return len;
}

static size_t
on_header(char *p, size_t size, size_t n, void *arg)
{
    struct sl_curl_xfer *x = arg;
    size_t len = size * n;
    if (x->removed)
        return abort_transfer(x);
    sl_deadline_byte(&x->dl, x->paused);
    if (x->cb->on_header(x->ud, p, len) != 0 || x->removed)
        return abort_transfer(x);
    return len;
}

/* Hands a transfer to curl (now, or when curl returns if we are inside it). */
static void
give_to_curl(struct sl_curl_xfer *x)
{
    struct sl_curl *g = x->g;
    if (g->depth > 0) {
        x->need_add = true;
        defer(x);
        return;
    }
    CURLMcode mc = curl_multi_add_handle(g->multi, x->easy);
    if (mc != CURLM_OK) {
        sl_log_msg(SL_LOG_WARN, "upstream.curl", "curl_multi_add_handle: %s",
                   curl_multi_strerror(mc));
        x->add_rc = CURLE_FAILED_INIT;
        uv_timer_start(&x->timer, on_xfer_timer, 0, 0);
        return;
    }
    x->added = true;
    if (x->paused && !x->curl_paused) {
        curl_easy_pause(x->easy, CURLPAUSE_RECV);
        x->curl_paused = true;
    }
}

/* A waiting transfer got its slot (from release(), outside curl). */
static void
promote(struct sl_curl_xfer *x)
{
    x->waiting = false;
    x->slot = true;
    give_to_curl(x);
}

static curl_socket_t
open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *addr)
{
    (void)purpose;
    struct sl_curl_pool *p = clientp;
    int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
    if (fd < 0)
        return CURL_SOCKET_BAD;
    p->gate.open++;
    return fd;
}

/* curl keeps this callback with the connection: it runs even when the cache closes it. */
static int
close_socket(void *clientp, curl_socket_t fd)
{
    struct sl_curl_pool *p = clientp;
    if (p->gate.open > 0)
        p->gate.open--;
    return close(fd);
}

static struct sl_curl_xfer *
add(struct sl_curl *g, struct sl_curl_pool *pool, CURL *easy, struct curl_slist *headers,
    const struct sl_curl_xfer_cb *cb, void *ud, uint64_t first_byte_ms, uint64_t idle_ms)
{
    struct sl_curl_xfer *x = sl_calloc(1, sizeof(*x));
    x->g = g;
    x->pool = pool;
    x->easy = easy;
    x->headers = headers;
    x->cb = cb;
    x->ud = ud;
    sl_list_init(&x->plink);
    sl_list_init(&x->qlink);
    sl_list_push_back(&g->xfers, &x->link);
    g->active++;
    uv_timer_init(g->uv, &x->timer);
    uv_unref((uv_handle_t *)&x->timer);
    x->timer.data = x;

    curl_easy_setopt(easy, CURLOPT_PRIVATE, x);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, CONN_MAX_AGE_S);
    if (pool != NULL) {
        curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
        curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, pool);
        curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, close_socket);
        curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, pool);
    }

    /* The wait at the gate counts against the first-byte timeout: it is its deadline. */
    sl_deadline_init(&x->dl, &x->timer, on_xfer_timer, first_byte_ms, idle_ms);
    sl_deadline_arm(&x->dl, false);
    return x;
}

struct sl_curl_xfer *
sl_curl_add(struct sl_curl *g, CURL *easy, struct curl_slist *headers,
            const struct sl_curl_xfer_cb *cb, void *ud, uint64_t first_byte_ms, uint64_t idle_ms)
{
    struct sl_curl_xfer *x = add(g, NULL, easy, headers, cb, ud, first_byte_ms, idle_ms);
    give_to_curl(x);
    return x;
}

struct sl_curl_xfer *
sl_curl_add_pooled(struct sl_curl_pool *p, CURL *easy, struct curl_slist *headers,
                   const struct sl_curl_xfer_cb *cb, void *ud, uint64_t first_byte_ms,
                   uint64_t idle_ms)
{
    struct sl_curl_xfer *x = add(p->g, p, easy, headers, cb, ud, first_byte_ms, idle_ms);
    switch (sl_gate_enter(&p->gate, &x->qlink)) {
    case SL_GATE_GO:
        x->slot = true;
        give_to_curl(x);
        break;
    case SL_GATE_WAIT:
        x->waiting = true;
        break;
    case SL_GATE_FULL:
        x->add_rc = CURLE_COULDNT_CONNECT;
        x->add_msg = "too many requests already wait for a connection to the provider "
                     "(max_connections and max_queued reached)";
        uv_timer_start(&x->timer, on_xfer_timer, 0, 0);
        break;
    }
    return x;
}

bool
sl_curl_queued(const struct sl_curl_xfer *x)
{
    return x->waiting;
}

CURL *
sl_curl_easy(struct sl_curl *g)
{
    if (g->nspare > 0)
        return g->spare[--g->nspare];
    CURL *e = curl_easy_init();
    if (e == NULL)
        sl_panic("curl_easy_init failed");
    return e;
}

void
sl_curl_remove(struct sl_curl_xfer *x)
{
    if (x->removed)
        return;
    x->removed = true;
    if (x->g->depth > 0)
        defer(x); /* curl_multi_remove_handle would fail with CURLM_RECURSIVE_API_CALL */
    else
        release(x, true);
}

void
sl_curl_pause(struct sl_curl_xfer *x, bool paused)
{
    if (x->removed || x->paused == paused)
        return;
    x->paused = paused;
    if (paused) {
        x->resuming = false;
        uv_timer_stop(&x->timer);
        if (x->g->depth > 0 || !x->added) {
            defer(x);
        } else {
            curl_easy_pause(x->easy, CURLPAUSE_RECV);
            x->curl_paused = true;
        }
        return;
    }
    /* Unpausing delivers data at once: never from the caller's stack. */
    x->resuming = true;
    uv_timer_start(&x->timer, on_xfer_timer, 0, 0);
}

unsigned
sl_curl_active(const struct sl_curl *g)
{
    return g ? g->active : 0;
}

/* --- driving curl ----------------------------------------------------------------------- */

/*
 * A pool's cap is in connections, the gate's in transfers: over HTTP/2 a connection carries
 * many. A response tells which it is; the first one sets the gate's cap for good (an
 * https:// provider starts out assumed HTTP/2, an http:// one HTTP/1.1: see
 * sl_curl_pool_new()).
 */
static void
learn_version(struct sl_curl_xfer *x)
{
    struct sl_curl_pool *p = x->pool;
    if (p->h2_learned)
        return;
    long v = 0;
    if (curl_easy_getinfo(x->easy, CURLINFO_HTTP_VERSION, &v) != CURLE_OK || v == 0)
        return;
    p->h2_learned = true;
    bool h2 = v >= CURL_HTTP_VERSION_2_0;
    sl_gate_set_cap(&p->gate, h2 ? p->max_connections * H2_STREAMS_PER_CONN : p->max_connections);
    /* One HTTP/2 connection carries every stream: more idle ones would never fill up. */
    p->gate.min_idle = h2 && p->min_idle > 0 ? 1 : p->min_idle;
    /* A wider cap frees slots for whoever waits (outside curl: on the pending pass). */
}

/* Transfers curl finished: release them, then tell their owners. */
static void
check_done(struct sl_curl *g)
{
    for (;;) {
        int left;
        CURLMsg *m = curl_multi_info_read(g->multi, &left);
        if (m == NULL)
            break;
        if (m->msg != CURLMSG_DONE)
            continue;
        CURLcode rc = m->data.result;
        struct sl_curl_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        const struct sl_curl_xfer_cb *cb = x->cb;
        void *ud = x->ud;
        bool removed = x->removed;
        if (x->pool != NULL && rc == CURLE_OK)
            learn_version(x);
        char detail[CURL_ERROR_SIZE];
        memcpy(detail, x->errbuf, sizeof(detail));
        detail[sizeof(detail) - 1] = '\0';
        release(x, false); /* m is invalid from here on */
        if (!removed)
            cb->on_end(ud, rc, detail);
    }
    if (!g->closing)
        admit_waiters(g);
}

/* Work that curl refused while it was running our callbacks, then finished transfers. */
static void
after_curl(struct sl_curl *g)
{
    while (!sl_list_empty(&g->pending)) {
        struct sl_curl_xfer *x = SL_CONTAINER_OF(g->pending.next, struct sl_curl_xfer, plink);
        sl_list_unlink(&x->plink);
        if (x->removed) {
            release(x, true);
            continue;
        }
        if (x->need_add) {
            x->need_add = false;
            CURLMcode mc = curl_multi_add_handle(g->multi, x->easy);
            if (mc != CURLM_OK) {
                x->add_rc = CURLE_FAILED_INIT;
                uv_timer_start(&x->timer, on_xfer_timer, 0, 0);
                continue;
            }
            x->added = true;
        }
        if (x->paused && !x->curl_paused && x->added) {
            curl_easy_pause(x->easy, CURLPAUSE_RECV);
            x->curl_paused = true;
        }
    }
    check_done(g);
}

static void
socket_action(struct sl_curl *g, curl_socket_t fd, int events)
{
    int running;
    g->depth++;
    curl_multi_socket_action(g->multi, fd, events, &running);
    g->depth--;
    after_curl(g);
}

static void
on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    struct sl_curl *g = s->g; /* s may be gone after the action */
    socket_action(g, s->fd, flags);
    /* What this read produced for clients goes out now, not after the rest of the turn. */
    sl_loop_flush(g->loop);
}

/* curl's timer: mostly the setup of transfers added since (resolve, connect, send). */
static void
on_curl_timer(uv_timer_t *t)
{
    struct sl_curl *g = t->data;
    uint64_t t0 = sl_clock_ns();
    socket_action(g, CURL_SOCKET_TIMEOUT, 0);
    g->timer_ns += sl_clock_ns() - t0;
}

uint64_t
sl_curl_timer_ns(const struct sl_curl *g)
{
    return g ? g->timer_ns : 0;
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; 0 means "soon", i.e. the next iteration. */
static int
on_timer_set(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct sl_curl *g = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&g->timer);
    else
        uv_timer_start(&g->timer, on_curl_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

static void
free_sock(uv_handle_t *h)
{
    free(h->data);
}

static void
close_sock(struct sock *s)
{
    uv_poll_stop(&s->poll); /* synchronous: the fd may be closed right after */
    sl_list_unlink(&s->link);
    uv_close((uv_handle_t *)&s->poll, free_sock);
}

/* CURLMOPT_SOCKETFUNCTION: watch, re-watch or forget one socket. */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct sl_curl *g = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            close_sock(s);
            curl_multi_assign(g->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = sl_calloc(1, sizeof(*s));
        s->g = g;
        s->fd = fd;
        if (uv_poll_init_socket(g->uv, &s->poll, fd) != 0) {
            free(s);
            sl_log_msg(SL_LOG_ERROR, "upstream.curl", "cannot poll socket %d", (int)fd);
            return -1;
        }
        s->poll.data = s;
        uv_unref((uv_handle_t *)&s->poll);
        sl_list_push_back(&g->socks, &s->link);
        curl_multi_assign(g->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

/* --- pools: warm-up and keep-alive ------------------------------------------------------- */

static int
warm_header(void *ud, const char *line, size_t len)
{
    (void)ud, (void)line, (void)len;
    return 0;
}

static int
warm_data(void *ud, const char *p, size_t len)
{
    (void)ud, (void)p, (void)len;
    return 0;
}

static void
warm_end(void *ud, CURLcode rc, const char *detail)
{
    struct sl_curl_pool *p = ud;
    if (rc != CURLE_OK) {
        struct sl_logrec r;
        if (sl_log_begin(&r, SL_LOG_DEBUG, "upstream.warmup_failed")) {
            sl_log_str(&r, "url", p->warm_url);
            sl_log_str(&r, "msg", detail && *detail ? detail : curl_easy_strerror(rc));
            sl_log_end(&r);
        }
    }
}

static void
warm_timeout(void *ud, enum sl_curl_timeout which)
{
    (void)ud, (void)which;
}

static const struct sl_curl_xfer_cb warm_cb = {
    .on_header = warm_header,
    .on_data = warm_data,
    .on_end = warm_end,
    .on_timeout = warm_timeout,
};

/*
 * Starts n warm-up requests: a GET of the provider's base URL without credentials. What it
 * answers does not matter (an error status is fine); its connection, kept alive, goes back
 * to curl's cache, where the next stream finds it open (no TCP or TLS handshake).
 */
static void
warm(struct sl_curl_pool *p, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        CURL *e = sl_curl_easy(p->g);
        curl_easy_setopt(e, CURLOPT_URL, p->warm_url);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout_ms);
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, p->tls_verify ? 1L : 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, p->tls_verify ? 2L : 0L);
        if (p->ca_file)
            curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
        struct sl_curl_xfer *x = add(p->g, p, e, NULL, &warm_cb, p, 10000, 10000);
        x->warm = true;
        p->gate.warming++;
        give_to_curl(x);
    }
}

static void
topup(struct sl_curl_pool *p)
{
    unsigned n = sl_gate_to_warm(&p->gate);
    if (n > 0)
        warm(p, n);
}

/*
 * Every KEEPALIVE_MS: a request on each idle connection a pool keeps (up to min_idle),
 * so that neither curl's cache (CONN_MAX_AGE_S) nor the provider (its keep-alive timeout,
 * often 60 s or more) closes it, then a top-up for any that closed anyway.
 */
static void
on_keepalive(uv_timer_t *t)
{
    struct sl_curl *g = t->data;
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &g->pools)
    {
        struct sl_curl_pool *p = SL_CONTAINER_OF(pos, struct sl_curl_pool, link);
        if (p->gate.min_idle == 0)
            continue;
        unsigned held = p->gate.busy + p->gate.warming;
        unsigned idle = p->gate.open > held ? p->gate.open - held : 0;
        unsigned n = idle < p->gate.min_idle ? idle : p->gate.min_idle;
        if (p->gate.nwaiting == 0)
            warm(p, n);
        topup(p);
    }
}

struct sl_curl_pool *
sl_curl_pool_new(struct sl_curl *g, const struct sl_curl_pool_cfg *cfg)
{
    struct sl_curl_pool *p = sl_calloc(1, sizeof(*p));
    p->g = g;
    p->max_connections = cfg->max_connections ? cfg->max_connections : 1;
    bool tls = strncmp(cfg->base_url, "https:", 6) == 0;
    /* curl asks for HTTP/2 over TLS only (CURL_HTTP_VERSION_2TLS): http:// is HTTP/1.1. */
    p->min_idle = cfg->min_idle;
    sl_gate_init(&p->gate, tls ? p->max_connections * H2_STREAMS_PER_CONN : p->max_connections,
                 cfg->max_queued, tls && cfg->min_idle > 0 ? 1 : cfg->min_idle);
    p->h2_learned = !tls;
    p->warm_url = sl_strdup(cfg->base_url);
    p->connect_timeout_ms = (long)cfg->connect_timeout_ms;
    p->tls_verify = cfg->tls_verify;
    p->ca_file = cfg->ca_file ? sl_strdup(cfg->ca_file) : NULL;
    sl_list_push_back(&g->pools, &p->link);
    if (cfg->min_idle > 0) {
        topup(p);
        if (!uv_is_active((uv_handle_t *)&g->keepalive))
            uv_timer_start(&g->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
    }
    return p;
}

const struct sl_gate *
sl_curl_pool_gate(const struct sl_curl_pool *p)
{
    return &p->gate;
}

/* After the cap widened (learn_version): the waiters that now fit go to curl. */
static void
admit_waiters(struct sl_curl *g)
{
    struct sl_list *pos;
    for (pos = g->pools.next; pos != &g->pools; pos = pos->next) {
        struct sl_curl_pool *p = SL_CONTAINER_OF(pos, struct sl_curl_pool, link);
        struct sl_list *n;
        while ((n = sl_gate_next(&p->gate)) != NULL)
            promote(SL_CONTAINER_OF(n, struct sl_curl_xfer, qlink));
    }
}

/* --- lifetime --------------------------------------------------------------------------- */

struct sl_curl *
sl_curl_new(struct sl_loop *loop, long max_host_connections)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        sl_panic("curl_global_init failed");
    struct sl_curl *g = sl_calloc(1, sizeof(*g));
    g->loop = loop;
    g->uv = sl_loop_uv(loop);
    sl_list_init(&g->xfers);
    sl_list_init(&g->pending);
    sl_list_init(&g->socks);
    sl_list_init(&g->pools);
    g->multi = curl_multi_init();
    if (g->multi == NULL)
        sl_panic("curl_multi_init failed");
    curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
    curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, on_timer_set);
    curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g);
    curl_multi_setopt(g->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (max_host_connections > 0) {
        curl_multi_setopt(g->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
        /*
         * Keep idle connections up to the same cap: curl's default cache is four times the
         * transfers running at the moment, so after a burst it closes connections the next
         * burst has to open again (a TCP, and for real providers a TLS, handshake each).
         */
        curl_multi_setopt(g->multi, CURLMOPT_MAXCONNECTS, max_host_connections);
    }
    uv_timer_init(g->uv, &g->timer);
    uv_unref((uv_handle_t *)&g->timer);
    g->timer.data = g;
    uv_timer_init(g->uv, &g->keepalive);
    uv_unref((uv_handle_t *)&g->keepalive);
    g->keepalive.data = g;
    return g;
}

/* The glue's two timers close together; the second close frees it. */
static void
free_glue(uv_handle_t *h)
{
    struct sl_curl *g = h->data;
    if (++g->closed == 2)
        free(g);
}

void
sl_curl_free(struct sl_curl *g)
{
    if (g == NULL)
        return;
    g->closing = true;
    /* Owners should have ended everything; whatever is left goes without callbacks. */
    while (!sl_list_empty(&g->xfers)) {
        struct sl_curl_xfer *x = SL_CONTAINER_OF(g->xfers.next, struct sl_curl_xfer, link);
        x->removed = true;
        release(x, true);
    }
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &g->socks)
        uv_poll_stop(&SL_CONTAINER_OF(pos, struct sock, link)->poll);
    curl_multi_cleanup(g->multi); /* closes cached connections (and their socks) */
    while (!sl_list_empty(&g->socks))
        close_sock(SL_CONTAINER_OF(g->socks.next, struct sock, link));
    while (g->nspare > 0)
        curl_easy_cleanup(g->spare[--g->nspare]);
    /* After the multi handle: closing its cached connections called close_socket(pool). */
    while (!sl_list_empty(&g->pools)) {
        struct sl_curl_pool *p = SL_CONTAINER_OF(g->pools.next, struct sl_curl_pool, link);
        sl_list_unlink(&p->link);
        free(p->warm_url);
        free(p->ca_file);
        free(p);
    }
    uv_timer_stop(&g->keepalive);
    uv_close((uv_handle_t *)&g->keepalive, free_glue);
    uv_timer_stop(&g->timer);
    uv_close((uv_handle_t *)&g->timer, free_glue);
    /* Our handles are closing: one more run delivers their close callbacks. */
    uv_run(g->uv, UV_RUN_DEFAULT);
    curl_global_cleanup();
}
