#include "upstream/curl.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/list.h"
#include "net/loop.h"
#include "obs/log.h"

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
};

struct sl_curl_xfer {
    uv_timer_t timer;     /* first-byte / idle timeout, or a deferred resume */
    struct sl_list link;  /* in g->xfers */
    struct sl_list plink; /* in g->pending while deferred work is due */
    struct sl_curl *g;
    CURL *easy;
    struct curl_slist *headers;
    const struct sl_curl_xfer_cb *cb;
    void *ud;
    uint64_t first_byte_ms, idle_ms;
    uint64_t last;                /* loop time of the last response byte */
    CURLcode add_rc;              /* curl refused the handle: reported from the timer */
    char errbuf[CURL_ERROR_SIZE]; /* here, not the owner's: curl may write it after a remove */
    bool got_byte;
    bool added;       /* in the multi handle */
    bool need_add;    /* sl_curl_add() ran inside curl: add when it returns */
    bool removed;     /* the owner let go: no more callbacks, release when curl allows */
    bool paused;      /* what the owner wants */
    bool curl_paused; /* what curl was told */
    bool resuming;    /* the timer is armed to unpause */
};

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
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    sl_list_unlink(&x->link);
    sl_list_unlink(&x->plink);
    g->active--;
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, free_xfer);
}

static void
defer(struct sl_curl_xfer *x)
{
    if (sl_list_empty(&x->plink))
        sl_list_push_back(&x->g->pending, &x->plink);
}

static void on_xfer_timer(uv_timer_t *t);

static void
arm_timeout(struct sl_curl_xfer *x)
{
    uint64_t ms = x->got_byte ? x->idle_ms : x->first_byte_ms;
    if (ms == 0 || x->paused) {
        uv_timer_stop(&x->timer);
        return;
    }
    uv_timer_start(&x->timer, on_xfer_timer, ms, 0);
}

/* A response byte arrived: from now on only the idle timeout applies. */
static void
activity(struct sl_curl_xfer *x)
{
    x->last = uv_now(x->g->uv);
    if (!x->got_byte) {
        x->got_byte = true;
        arm_timeout(x);
    }
}

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
        release(x, true);
        cb->on_end(ud, rc, "curl refused the transfer");
        return;
    }
    if (x->resuming) {
        x->resuming = false;
        x->last = uv_now(g->uv);
        arm_timeout(x);
        if (x->curl_paused && !x->paused)
            unpause(x);
        after_curl(g);
        return;
    }
    uint64_t now = uv_now(g->uv);
    enum sl_curl_timeout which = SL_CURL_TIMEOUT_FIRST_BYTE;
    if (x->got_byte) {
        /* Chunks only store their time; the deadline is checked here, lazily. */
        uint64_t due = x->last + x->idle_ms;
        if (now < due) {
            uv_timer_start(&x->timer, on_xfer_timer, due - now, 0);
            return;
        }
        which = SL_CURL_TIMEOUT_IDLE;
    }
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
    activity(x);
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
    activity(x);
    if (x->cb->on_header(x->ud, p, len) != 0 || x->removed)
        return abort_transfer(x);
    return len;
}

struct sl_curl_xfer *
sl_curl_add(struct sl_curl *g, CURL *easy, struct curl_slist *headers,
            const struct sl_curl_xfer_cb *cb, void *ud, uint64_t first_byte_ms, uint64_t idle_ms)
{
    struct sl_curl_xfer *x = sl_calloc(1, sizeof(*x));
    x->g = g;
    x->easy = easy;
    x->headers = headers;
    x->cb = cb;
    x->ud = ud;
    x->first_byte_ms = first_byte_ms;
    x->idle_ms = idle_ms;
    sl_list_init(&x->plink);
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

    arm_timeout(x);
    if (g->depth > 0) {
        x->need_add = true;
        defer(x);
        return x;
    }
    CURLMcode mc = curl_multi_add_handle(g->multi, easy);
    if (mc != CURLM_OK) {
        sl_log_msg(SL_LOG_WARN, "upstream.curl", "curl_multi_add_handle: %s",
                   curl_multi_strerror(mc));
        x->add_rc = CURLE_FAILED_INIT;
        uv_timer_start(&x->timer, on_xfer_timer, 0, 0);
        return x;
    }
    x->added = true;
    return x;
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
        char detail[CURL_ERROR_SIZE];
        memcpy(detail, x->errbuf, sizeof(detail));
        detail[sizeof(detail) - 1] = '\0';
        release(x, false); /* m is invalid from here on */
        if (!removed)
            cb->on_end(ud, rc, detail);
    }
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
        if (x->paused && !x->curl_paused) {
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

static void
on_curl_timer(uv_timer_t *t)
{
    socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
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
    return g;
}

static void
free_glue(uv_handle_t *h)
{
    free(h->data);
}

void
sl_curl_free(struct sl_curl *g)
{
    if (g == NULL)
        return;
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
    uv_timer_stop(&g->timer);
    uv_close((uv_handle_t *)&g->timer, free_glue);
    /* Our handles are closing: one more run delivers their close callbacks. */
    uv_run(g->uv, UV_RUN_DEFAULT);
    curl_global_cleanup();
}
