#include "upstream/h1.h"

#include <http_parser.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/list.h"
#include "base/util.h"
#include "net/loop.h"
#include "obs/log.h"
#include "upstream/deadline.h"
#include "upstream/gate.h"

/* One read's buffer, shared by the worker's connections (a read is parsed before the next). */
#define READ_BUF 16384
/* Addresses kept per host name, and how long a resolution is trusted. */
#define MAX_ADDRS 8
#define RESOLVE_TTL_MS 60000
/* A response head line past this is refused like curl's (httpcall.c maps it, see head_refused). */
#define MAX_HEAD_LINE (64u << 10)
/*
 * Between two top-ups of a pool with min_idle besides those after each transfer: a
 * connection the server refused or closed at once is not re-opened in a tight loop.
 */
#define KEEPALIVE_MS 30000
/* With several addresses, the least time an attempt gets before the next is tried. */
#define CONNECT_SHARE_MIN_MS 1000
/* An idle connection older than this is not reused (curl's CONN_MAX_AGE_S in curl.c). */
#define IDLE_MAX_MS 300000

enum conn_state {
    C_RESOLVING,  /* waits for the pool's addresses */
    C_CONNECTING, /* TCP connect under way */
    C_IDLE,       /* connected, no request: in pool->idle */
    C_BUSY,       /* a request sent or being sent, its response read */
    C_CLOSING,    /* uv_close called */
};

struct sl_h1 {
    struct sl_loop *loop;
    uv_loop_t *uv;
    struct sl_list pools;
    struct sl_list xfers; /* every live transfer (for sl_h1_free) */
    uv_timer_t keepalive; /* tops the pools with min_idle up again, every KEEPALIVE_MS */
    uint64_t setup_ns;
    unsigned depth; /* > 0 inside an API call: failures are reported later (xfer_fail) */
    bool closing;
    char rbuf[READ_BUF];
};

struct sl_h1_pool {
    struct sl_gate gate;
    struct sl_list link; /* in h->pools */
    struct sl_h1 *h;
    struct sl_list idle;  /* C_IDLE connections, the most recently used last */
    struct sl_list conns; /* every other open connection */
    struct sl_list resolving;
    char *host;      /* as in the URL, without brackets */
    char *authority; /* the Host header: host[:port] as in the URL */
    int port;
    bool numeric;
    struct sockaddr_storage addrs[MAX_ADDRS];
    unsigned naddrs;
    uint64_t resolved_at;
    bool resolve_busy;
    uv_getaddrinfo_t gai;
    uint64_t connect_timeout_ms;
};

struct conn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* the connect timeout */
    uv_connect_t creq;
    uv_write_t wreq;
    struct sl_list link; /* in pool->idle, pool->conns or pool->resolving */
    struct sl_h1_pool *p;
    struct sl_h1_xfer *x; /* the transfer it serves, or NULL */
    http_parser parser;
    struct sl_buf line; /* a response head line being assembled */
    char *out;          /* the request being written (freed by the write callback) */
    enum conn_state state;
    unsigned addr;     /* the pool address being tried */
    unsigned handles;  /* of tcp and timer, still open (freed when both closed) */
    uint64_t deadline; /* of the connect (loop time), across the addresses tried */
    uint64_t rx;       /* response bytes read for the current request */
    bool reused;       /* served a request before: see conn_retry() */
    bool writing;
    bool reading;
    bool parsing;        /* inside http_parser_execute: callbacks may remove or pause */
    bool keep;           /* the response ended allowing keep-alive */
    uint64_t idle_since; /* loop time it last became idle */
    bool status_sent;    /* the status line went to on_header */
    bool in_value;       /* the parser is in a header value */
    bool complete;       /* the response ended (the parser paused there) */
    bool stop;           /* a callback stopped the parse (abort or remove) */
    bool warm;           /* opened to be kept idle (pool->gate.warming counts it) */
    CURLcode fail_rc;    /* set with stop: the error to end the transfer with */
    const char *fail_msg;
};

struct sl_h1_xfer {
    uv_timer_t timer;     /* first-byte / idle timeout, or a failure to report */
    struct sl_list link;  /* in h->xfers */
    struct sl_list qlink; /* in pool->gate.waiting while waiting */
    struct sl_h1_pool *p;
    struct conn *c;
    const struct sl_curl_xfer_cb *cb;
    void *ud;
    char *req; /* the whole request, head and body */
    size_t req_len;
    struct sl_deadline dl; /* first byte, then idle (on timer) */
    bool waiting;          /* at the gate */
    bool slot;             /* holds a gate slot */
    bool paused;
    bool removed;
    bool retried; /* sent again once after a reused connection failed */
    bool failed;  /* ended: on_end(fail_rc, errbuf) from the timer */
    CURLcode fail_rc;
    char errbuf[CURL_ERROR_SIZE];
};

static void conn_close(struct conn *c);
static void conn_send(struct conn *c);
static void conn_read(struct conn *c);
static void conn_new(struct sl_h1_pool *p, struct sl_h1_xfer *x, unsigned addr, uint64_t deadline);
static void xfer_start(struct sl_h1_xfer *x);
static void topup(struct sl_h1_pool *p);

/* --- URLs ------------------------------------------------------------------------------ */

struct url {
    const char *host;
    size_t host_len;
    const char *authority;
    size_t authority_len;
    const char *path; /* from the first '/' or '?', or "" */
    int port;
};

/* Splits http://authority/path; no userinfo (curl would send it as Basic auth). */
static bool
url_parse(const char *s, struct url *u)
{
    if (strncasecmp(s, "http://", 7) != 0)
        return false;
    const char *a = s + 7;
    size_t alen = strcspn(a, "/?#");
    if (alen == 0 || memchr(a, '@', alen) != NULL)
        return false;
    u->authority = a;
    u->authority_len = alen;
    u->path = a + alen;
    const char *end = a + alen, *port = NULL;
    if (*a == '[') {
        const char *rb = memchr(a, ']', alen);
        if (rb == NULL)
            return false;
        u->host = a + 1;
        u->host_len = (size_t)(rb - a - 1);
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return false;
            port = rb + 2;
        }
    } else {
        const char *colon = memchr(a, ':', alen);
        u->host = a;
        u->host_len = colon ? (size_t)(colon - a) : alen;
        if (colon)
            port = colon + 1;
    }
    if (u->host_len == 0 || u->host_len >= 256)
        return false;
    u->port = 80;
    if (port != NULL) {
        if (port == end)
            return false;
        long v = 0;
        for (const char *q = port; q < end; q++) {
            if (*q < '0' || *q > '9')
                return false;
            v = v * 10 + (*q - '0');
            if (v > 65535)
                return false;
        }
        if (v == 0)
            return false;
        u->port = (int)v;
    }
    return true;
}

/* Whether no_proxy names host (a list of names, or "*"), so that a proxy is not used. */
static bool
no_proxy_for(const char *host)
{
    const char *np = getenv("no_proxy");
    if (np == NULL || *np == '\0')
        np = getenv("NO_PROXY");
    if (np == NULL)
        return false;
    size_t hl = strlen(host);
    for (const char *q = np; *q;) {
        while (*q == ' ' || *q == ',')
            q++;
        size_t n = strcspn(q, ", ");
        if ((n == 1 && *q == '*') || (n == hl && strncasecmp(q, host, n) == 0))
            return true;
        q += n;
    }
    return false;
}

bool
sl_h1_eligible(const char *base_url)
{
    struct url u;
    if (base_url == NULL || !url_parse(base_url, &u))
        return false;
    static const char *const proxies[] = {"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"};
    bool proxied = false;
    for (size_t i = 0; i < SL_ARRAY_LEN(proxies); i++) {
        const char *v = getenv(proxies[i]);
        if (v != NULL && *v != '\0')
            proxied = true;
    }
    if (!proxied)
        return true;
    char host[256];
    memcpy(host, u.host, u.host_len);
    host[u.host_len] = '\0';
    return no_proxy_for(host);
}

/* --- transfers ------------------------------------------------------------------------- */

static void
free_xfer(uv_handle_t *t)
{
    struct sl_h1_xfer *x = t->data;
    free(x->req);
    free(x);
}

/*
 * Lets go of a transfer: off its connection (which the caller has dealt with), off the
 * gate (its slot goes to the oldest waiter), timer closed. No callback after this.
 */
static void
xfer_release(struct sl_h1_xfer *x)
{
    struct sl_h1_pool *p = x->p;
    if (x->c != NULL) {
        x->c->x = NULL;
        x->c = NULL;
    }
    struct sl_list *next = NULL;
    if (x->waiting)
        sl_gate_forget(&p->gate, &x->qlink);
    else if (x->slot)
        next = sl_gate_leave(&p->gate);
    x->waiting = x->slot = false;
    sl_list_unlink(&x->link);
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, free_xfer);
    if (p->h->closing)
        return;
    if (next != NULL) {
        struct sl_h1_xfer *w = SL_CONTAINER_OF(next, struct sl_h1_xfer, qlink);
        w->waiting = false;
        w->slot = true;
        xfer_start(w);
    } else {
        topup(p);
    }
}

static void on_xfer_timer(uv_timer_t *t);

/* Takes x off its connection, which goes with it: a response not over cannot be reused. */
static void
xfer_close_conn(struct sl_h1_xfer *x)
{
    struct conn *c = x->c;
    if (c == NULL)
        return;
    x->c = NULL;
    c->x = NULL;
    conn_close(c);
}

/*
 * Ends a transfer that did not complete: its connection goes, the owner is told; from the
 * timer when inside an API call (the caller of sl_h1_add must not hear of its transfer's end
 * before sl_h1_add returned).
 */
static void
xfer_fail(struct sl_h1_xfer *x, CURLcode rc, const char *msg)
{
    xfer_close_conn(x);
    if (x->p->h->depth > 0 && !x->removed) {
        x->failed = true;
        x->fail_rc = rc;
        snprintf(x->errbuf, sizeof(x->errbuf), "%s", msg);
        uv_timer_start(&x->timer, on_xfer_timer, 0, 0);
        return;
    }
    const struct sl_curl_xfer_cb *cb = x->cb;
    void *ud = x->ud;
    bool removed = x->removed;
    xfer_release(x);
    if (!removed)
        cb->on_end(ud, rc, msg);
}

static void
on_xfer_timer(uv_timer_t *t)
{
    struct sl_h1_xfer *x = t->data;
    if (x->failed) {
        xfer_fail(x, x->fail_rc, x->errbuf);
        return;
    }
    enum sl_curl_timeout which;
    if (!sl_deadline_expired(&x->dl, &which))
        return;
    xfer_close_conn(x);
    const struct sl_curl_xfer_cb *cb = x->cb;
    void *ud = x->ud;
    xfer_release(x);
    cb->on_timeout(ud, which);
}

/* A slot is held: an idle connection takes the request, or a new one is opened for it. */
static void
xfer_start(struct sl_h1_xfer *x)
{
    struct sl_h1_pool *p = x->p;
    uint64_t t0 = sl_clock_ns();
    /*
     * The most recently used first; one idle for IDLE_MAX_MS is closed instead: a NAT or a
     * firewall may have forgotten it without a word, and a request on it would wait for the
     * first-byte timeout. The oldest are at the front.
     */
    uint64_t now = uv_now(p->h->uv);
    while (!sl_list_empty(&p->idle)) {
        struct conn *old = SL_CONTAINER_OF(p->idle.next, struct conn, link);
        if (now - old->idle_since < IDLE_MAX_MS)
            break;
        conn_close(old);
    }
    if (!sl_list_empty(&p->idle)) {
        struct conn *c = SL_CONTAINER_OF(p->idle.prev, struct conn, link);
        sl_list_move_back(&p->conns, &c->link);
        c->x = x;
        x->c = c;
        conn_send(c);
    } else {
        conn_new(p, x, 0, 0);
    }
    p->h->setup_ns += sl_clock_ns() - t0;
}

/*
 * Whether the request line and headers are safe to send as they are: no space or control
 * character in the URL, no CR or LF in a header (either would let a value start a header or
 * a request of its own). They come from the configuration, but a request is never built
 * from a string that could split it.
 */
static bool
request_ok(const char *url, char *const *headers, size_t nheaders)
{
    for (const unsigned char *q = (const unsigned char *)url; *q; q++)
        if (*q <= ' ' || *q == 0x7f)
            return false;
    for (size_t i = 0; i < nheaders; i++)
        if (strpbrk(headers[i], "\r\n") != NULL)
            return false;
    return true;
}

/* The request, whole: head (Host, the caller's headers, Content-Length) and body. */
static char *
build_request(const struct sl_h1_pool *p, const char *url, char *const *headers, size_t nheaders,
              const char *body, size_t body_len, size_t *len)
{
    struct url u;
    const char *path = "";
    size_t path_len = 0;
    if (url_parse(url, &u)) {
        path = u.path;
        path_len = strcspn(path, "#");
    }
    struct sl_buf b = {0};
    sl_buf_append_str(&b, "POST ");
    if (*path != '/') /* "http://h" or "http://h?q": the path is "/" */
        sl_buf_append_byte(&b, '/');
    sl_buf_append(&b, path, path_len);
    sl_buf_append_str(&b, " HTTP/1.1\r\nHost: ");
    sl_buf_append_str(&b, p->authority);
    sl_buf_append_str(&b, "\r\n");
    for (size_t i = 0; i < nheaders; i++) {
        /* "Name:" with no value is curl's way to suppress a header it would add: not sent. */
        const char *colon = strchr(headers[i], ':');
        if (colon != NULL && colon[1 + strspn(colon + 1, " \t")] == '\0')
            continue;
        sl_buf_append_str(&b, headers[i]);
        sl_buf_append_str(&b, "\r\n");
    }
    sl_buf_printf(&b, "Content-Length: %zu\r\n\r\n", body_len);
    sl_buf_append(&b, body, body_len);
    return sl_buf_steal(&b, len);
}

struct sl_h1_xfer *
sl_h1_add(struct sl_h1_pool *p, const char *url, char *const *headers, size_t nheaders,
          const char *body, size_t body_len, const struct sl_curl_xfer_cb *cb, void *ud,
          uint64_t first_byte_ms, uint64_t idle_ms)
{
    struct sl_h1 *h = p->h;
    struct sl_h1_xfer *x = sl_calloc(1, sizeof(*x));
    x->p = p;
    x->cb = cb;
    x->ud = ud;
    x->req = build_request(p, url, headers, nheaders, body, body_len, &x->req_len);
    sl_list_init(&x->qlink);
    sl_list_push_back(&h->xfers, &x->link);
    uv_timer_init(h->uv, &x->timer);
    uv_unref((uv_handle_t *)&x->timer);
    x->timer.data = x;
    sl_deadline_init(&x->dl, &x->timer, on_xfer_timer, first_byte_ms, idle_ms);
    sl_deadline_arm(&x->dl, false); /* the wait at the gate counts against the first byte */
    h->depth++;
    if (!request_ok(url, headers, nheaders)) {
        xfer_fail(x, CURLE_URL_MALFORMAT,
                  "the request to the provider has a control character in its URL or a header");
        h->depth--;
        return x;
    }
    switch (sl_gate_enter(&p->gate, &x->qlink)) {
    case SL_GATE_GO:
        x->slot = true;
        xfer_start(x);
        break;
    case SL_GATE_WAIT:
        x->waiting = true;
        break;
    case SL_GATE_FULL:
        xfer_fail(x, CURLE_COULDNT_CONNECT,
                  "too many requests already wait for a connection to the provider "
                  "(max_connections and max_queued reached)");
        break;
    }
    h->depth--;
    return x;
}

void
sl_h1_remove(struct sl_h1_xfer *x)
{
    if (x->removed)
        return;
    x->removed = true;
    struct sl_h1 *h = x->p->h;
    struct conn *c = x->c;
    if (c != NULL) {
        /*
         * The response is not over (a finished transfer has no connection): the connection
         * goes, so that the server sees the request end. Inside its parse, the read
         * callback does that once the parser returned.
         */
        if (c->parsing) {
            c->stop = true;
            return;
        }
        xfer_close_conn(x);
    }
    h->depth++; /* the next waiter starts: its failure is reported later */
    xfer_release(x);
    h->depth--;
}

void
sl_h1_pause(struct sl_h1_xfer *x, bool paused)
{
    if (x->removed || x->failed || x->paused == paused)
        return;
    x->paused = paused;
    struct conn *c = x->c;
    if (paused) {
        uv_timer_stop(&x->timer);
        /* Inside a parse the read callback stops reading once the parser returned. */
        if (c != NULL && c->reading && !c->parsing) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = false;
        }
        return;
    }
    sl_deadline_resume(&x->dl);
    /* Reading again delivers data on a later loop iteration, never from here. */
    if (c != NULL && c->state == C_BUSY)
        conn_read(c);
}

bool
sl_h1_queued(const struct sl_h1_xfer *x)
{
    return x->waiting;
}

/* --- connections ------------------------------------------------------------------------ */

static void
on_conn_closed(uv_handle_t *hd)
{
    struct conn *c = hd->data;
    if (--c->handles > 0)
        return;
    sl_buf_free(&c->line);
    free(c->out);
    free(c);
}

static void
conn_close(struct conn *c)
{
    if (c->state == C_CLOSING)
        return;
    struct sl_h1_pool *p = c->p;
    if (c->warm && (c->state == C_RESOLVING || c->state == C_CONNECTING))
        p->gate.warming--;
    sl_list_unlink(&c->link);
    c->state = C_CLOSING;
    sl_assert(p->gate.open > 0);
    p->gate.open--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

/*
 * The request failed on a connection that served one before, with no byte of its
 * response: the server most likely closed it as it sat idle. Sent again, once, on a new
 * connection. Returns false when that does not apply.
 */
static bool
conn_retry(struct conn *c)
{
    struct sl_h1_xfer *x = c->x;
    if (x == NULL || !c->reused || c->rx > 0 || x->retried || x->p->h->closing)
        return false;
    x->retried = true;
    xfer_close_conn(x);
    conn_new(x->p, x, 0, 0);
    return true;
}

/* The transfer of c failed in the transport: retried, or ended with rc. */
static void
conn_fail(struct conn *c, CURLcode rc, const char *msg)
{
    if (c->x == NULL) {
        conn_close(c);
        return;
    }
    if (conn_retry(c))
        return;
    xfer_fail(c->x, rc, msg);
}

static void
on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = hd->data;
    *buf = uv_buf_init(c->p->h->rbuf, READ_BUF);
}

/* The response ended: the connection goes back to the pool (or is closed), the owner told. */
static void
finish_ok(struct conn *c, bool reusable)
{
    struct sl_h1_xfer *x = c->x;
    struct sl_h1_pool *p = c->p;
    x->c = NULL;
    c->x = NULL;
    if (reusable && c->keep && !c->writing && !p->h->closing) {
        c->reused = true;
        c->state = C_IDLE;
        c->idle_since = uv_now(p->h->uv);
        sl_list_move_back(&p->idle, &c->link);
        conn_read(c); /* an idle connection is read to see the server close it */
    } else {
        conn_close(c);
    }
    const struct sl_curl_xfer_cb *cb = x->cb;
    void *ud = x->ud;
    bool removed = x->removed;
    xfer_release(x);
    if (!removed)
        cb->on_end(ud, CURLE_OK, "");
}

/* After a parse: whatever a callback decided, the end of the response, or a parse error. */
static void
after_parse(struct conn *c, size_t parsed, size_t len)
{
    struct sl_h1_xfer *x = c->x;
    if (x->removed) {
        xfer_close_conn(x);
        xfer_release(x);
        return;
    }
    if (c->stop) {
        xfer_fail(x, c->fail_rc, c->fail_msg);
        return;
    }
    if (c->complete) {
        finish_ok(c, parsed == len); /* bytes past the response: not a connection to reuse */
        return;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
    if (e != HPE_OK) {
        char msg[160];
        snprintf(msg, sizeof(msg), "invalid HTTP response from the provider: %s",
                 http_errno_description(e));
        xfer_fail(x, CURLE_WEIRD_SERVER_REPLY, msg);
        return;
    }
    if (x->paused && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static const http_parser_settings parser_settings;

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct sl_h1 *h = c->p->h;
    if (nread == 0)
        return;
    if (c->x == NULL) {
        /*
         * Idle: the server closed it (or sent what nobody asked for). Replaced at once if it
         * had lasted a while, else at the next keep-alive round (no reconnect loop).
         */
        bool lasted = c->state == C_IDLE && uv_now(h->uv) - c->idle_since >= 1000;
        struct sl_h1_pool *p = c->p;
        conn_close(c);
        if (lasted)
            topup(p);
        return;
    }
    struct sl_h1_xfer *x = c->x;
    if (nread < 0 && nread != UV_EOF) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Recv failure: %s", uv_strerror((int)nread));
        conn_fail(c, CURLE_RECV_ERROR, msg);
        sl_loop_flush(h->loop);
        return;
    }
    size_t len = nread > 0 ? (size_t)nread : 0;
    if (len > 0) {
        c->rx += len;
        sl_deadline_byte(&x->dl, x->paused);
    }
    c->parsing = true;
    size_t parsed = http_parser_execute(&c->parser, &parser_settings, len ? buf->base : NULL, len);
    c->parsing = false;
    if (nread == UV_EOF && !c->complete && !c->stop && !x->removed) {
        if (c->rx == 0)
            conn_fail(c, CURLE_GOT_NOTHING, "Empty reply from server");
        else
            conn_fail(c, CURLE_PARTIAL_FILE,
                      "transfer closed with outstanding read data remaining");
    } else {
        after_parse(c, parsed, len);
    }
    /* What this read produced for clients goes out now, not after the rest of the turn. */
    sl_loop_flush(h->loop);
}

static void
conn_read(struct conn *c)
{
    if (c->reading || c->state == C_CLOSING)
        return;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
        c->reading = true;
}

static void
on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(c->out);
    c->out = NULL;
    c->writing = false;
    if (status < 0 && c->state != C_CLOSING) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Send failure: %s", uv_strerror(status));
        conn_fail(c, CURLE_SEND_ERROR, msg);
    }
}

/* Sends the request of c->x on c (connected): written now, or the rest queued in libuv. */
static void
conn_send(struct conn *c)
{
    struct sl_h1_xfer *x = c->x;
    c->state = C_BUSY;
    c->rx = 0;
    c->status_sent = c->in_value = c->complete = c->stop = c->keep = false;
    sl_buf_clear(&c->line);
    http_parser_init(&c->parser, HTTP_RESPONSE);
    /* Both framings sent: the chunks win (RFC 9112 6.3), as curl reads it, not an error. */
    c->parser.allow_chunked_length = 1;
    c->parser.data = c;
    uv_buf_t b = uv_buf_init(x->req, (unsigned)x->req_len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN || n == UV_ENOSYS)
        n = 0;
    if (n < 0) {
        char msg[128];
        snprintf(msg, sizeof(msg), "Send failure: %s", uv_strerror(n));
        conn_fail(c, CURLE_SEND_ERROR, msg);
        return;
    }
    if ((size_t)n < x->req_len) {
        /* The rest is the connection's: the transfer may go before the write ends. */
        size_t rest = x->req_len - (size_t)n;
        c->out = sl_malloc(rest);
        memcpy(c->out, x->req + n, rest);
        uv_buf_t r = uv_buf_init(c->out, (unsigned)rest);
        c->wreq.data = c;
        c->writing = true;
        int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &r, 1, on_write);
        if (rc < 0) {
            c->writing = false;
            free(c->out);
            c->out = NULL;
            char msg[128];
            snprintf(msg, sizeof(msg), "Send failure: %s", uv_strerror(rc));
            conn_fail(c, CURLE_SEND_ERROR, msg);
            return;
        }
    }
    if (!x->paused)
        conn_read(c);
}

/* The connect failed (or timed out): the next address, or the transfer's end. */
static void
connect_failed(struct conn *c, int status)
{
    struct sl_h1_pool *p = c->p;
    struct sl_h1_xfer *x = c->x;
    uint64_t now = uv_now(p->h->uv);
    bool timedout = status == UV_ETIMEDOUT;
    if (c->addr + 1 < p->naddrs && now < c->deadline) {
        /*
         * Refused, or its share of the time is up: the next address, on a new socket (one
         * that failed to connect is not reused). The deadline stays the first attempt's.
         */
        unsigned next = c->addr + 1;
        uint64_t deadline = c->deadline;
        c->x = NULL;
        if (x != NULL)
            x->c = NULL;
        conn_close(c); /* a warm one: the new one counts itself among the warming */
        conn_new(p, x, next, deadline);
        return;
    }
    if (x == NULL) {
        struct sl_logrec r;
        if (sl_log_begin(&r, SL_LOG_DEBUG, "upstream.warmup_failed")) {
            sl_log_str(&r, "host", p->authority);
            sl_log_str(&r, "msg", uv_strerror(status));
            sl_log_end(&r);
        }
        conn_close(c); /* the next top-up tries again (KEEPALIVE_MS) */
        return;
    }
    char msg[300];
    if (timedout)
        snprintf(msg, sizeof(msg), "Connection timed out after %llu milliseconds",
                 (unsigned long long)p->connect_timeout_ms);
    else
        snprintf(msg, sizeof(msg), "Failed to connect to %s port %d: %s", p->host, p->port,
                 uv_strerror(status));
    xfer_fail(x, timedout ? CURLE_OPERATION_TIMEDOUT : CURLE_COULDNT_CONNECT, msg);
}

static void
on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->state == C_CLOSING)
        return;
    uv_timer_stop(&c->timer);
    if (status < 0) {
        connect_failed(c, status);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 60);
    struct sl_h1_pool *p = c->p;
    if (c->x == NULL) {
        p->gate.warming--;
        c->state = C_IDLE;
        c->idle_since = uv_now(p->h->uv);
        sl_list_move_back(&p->idle, &c->link);
        conn_read(c);
        return;
    }
    uint64_t t0 = sl_clock_ns();
    conn_send(c);
    p->h->setup_ns += sl_clock_ns() - t0;
}

static void
on_connect_timeout(uv_timer_t *t)
{
    struct conn *c = t->data;
    connect_failed(c, UV_ETIMEDOUT);
}

/*
 * Connects to the address c->addr. With more addresses to try, an attempt gets an even
 * share of the time left (1 s at least) before the next address is tried: a host whose
 * first address drops packets (a broken IPv6 route) is reached through the next one within
 * the connect timeout, as curl's happy eyeballs would, only less eagerly.
 */
static void
conn_connect(struct conn *c)
{
    struct sl_h1_pool *p = c->p;
    uint64_t now = uv_now(p->h->uv), end = c->deadline;
    uint64_t remaining = end > now ? end - now : 0;
    unsigned left = p->naddrs - c->addr;
    if (left > 1) {
        uint64_t share = end == UINT64_MAX ? CONNECT_SHARE_MIN_MS : remaining / left;
        if (share < CONNECT_SHARE_MIN_MS)
            share = CONNECT_SHARE_MIN_MS;
        if (remaining > share)
            end = now + share;
    }
    if (end != UINT64_MAX)
        uv_timer_start(&c->timer, on_connect_timeout, end > now ? end - now : 0, 0);
    c->state = C_CONNECTING;
    sl_list_move_back(&p->conns, &c->link);
    c->creq.data = c;
    int rc =
        uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&p->addrs[c->addr], on_connect);
    if (rc < 0)
        connect_failed(c, rc);
}

static void resolve(struct sl_h1_pool *p);

/*
 * A new connection for x (NULL: a warm one, kept idle), to the pool's address addr, with
 * the connect deadline given (0: connect_timeout_ms from now).
 */
static void
conn_new(struct sl_h1_pool *p, struct sl_h1_xfer *x, unsigned addr, uint64_t deadline)
{
    struct sl_h1 *h = p->h;
    struct conn *c = sl_calloc(1, sizeof(*c));
    c->p = p;
    c->x = x;
    c->addr = addr;
    c->warm = x == NULL;
    if (x != NULL)
        x->c = c;
    else
        p->gate.warming++;
    sl_list_init(&c->link);
    uv_tcp_init(h->uv, &c->tcp);
    uv_timer_init(h->uv, &c->timer);
    uv_unref((uv_handle_t *)&c->tcp);
    uv_unref((uv_handle_t *)&c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    p->gate.open++;
    uint64_t now = uv_now(h->uv);
    c->deadline = deadline                    ? deadline
                  : p->connect_timeout_ms > 0 ? now + p->connect_timeout_ms
                                              : UINT64_MAX; /* no connect timeout */
    if (c->deadline != UINT64_MAX) /* the resolution's deadline; conn_connect() re-arms it */
        uv_timer_start(&c->timer, on_connect_timeout, c->deadline > now ? c->deadline - now : 0, 0);
    c->state = C_RESOLVING;
    bool stale = !p->numeric && (p->naddrs == 0 || now - p->resolved_at > RESOLVE_TTL_MS);
    if (p->naddrs == 0) {
        /* Waits for the resolution (listed first: a resolver failing at once ends it). */
        sl_list_push_back(&p->resolving, &c->link);
        resolve(p);
        return;
    }
    if (stale)
        resolve(p); /* the addresses known serve meanwhile */
    if (c->addr >= p->naddrs)
        c->addr = 0;
    conn_connect(c);
}

/* --- resolution ------------------------------------------------------------------------ */

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct sl_h1_pool *p = req->data;
    p->resolve_busy = false;
    if (status == 0) {
        unsigned n = 0;
        for (struct addrinfo *ai = res; ai != NULL && n < MAX_ADDRS; ai = ai->ai_next) {
            if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                continue;
            memset(&p->addrs[n], 0, sizeof(p->addrs[n]));
            memcpy(&p->addrs[n], ai->ai_addr, ai->ai_addrlen);
            n++;
        }
        if (n > 0) {
            p->naddrs = n;
            p->resolved_at = uv_now(p->h->uv);
        }
    }
    uv_freeaddrinfo(res);
    /*
     * Only the connections that waited for this resolution: an owner told of a failure may
     * add a transfer at once, which waits for the next one.
     */
    struct sl_list waited;
    sl_list_init(&waited);
    if (!sl_list_empty(&p->resolving)) {
        waited.next = p->resolving.next;
        waited.prev = p->resolving.prev;
        waited.next->prev = waited.prev->next = &waited;
        sl_list_init(&p->resolving);
    }
    while (!sl_list_empty(&waited)) {
        struct conn *c = SL_CONTAINER_OF(waited.next, struct conn, link);
        if (p->h->closing) {
            conn_close(c);
            continue;
        }
        if (p->naddrs > 0) {
            conn_connect(c);
            continue;
        }
        sl_list_unlink(&c->link);
        if (c->x == NULL) {
            conn_close(c);
            continue;
        }
        char msg[300];
        snprintf(msg, sizeof(msg), "Could not resolve host: %s (%s)", p->host,
                 uv_strerror(status ? status : UV_EAI_NONAME));
        xfer_fail(c->x, CURLE_COULDNT_RESOLVE_HOST, msg);
    }
}

static void
resolve(struct sl_h1_pool *p)
{
    if (p->resolve_busy || p->h->closing)
        return;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char port[8];
    snprintf(port, sizeof(port), "%d", p->port);
    p->gai.data = p;
    p->resolve_busy = true;
    int rc = uv_getaddrinfo(p->h->uv, &p->gai, on_resolved, p->host, port, &hints);
    if (rc < 0)
        on_resolved(&p->gai, rc, NULL);
}

/* --- the response parser's callbacks ------------------------------------------------------ */

/* Hands a head line to the owner; false if the parse must stop. */
static bool
give_line(struct conn *c, const char *line, size_t len)
{
    struct sl_h1_xfer *x = c->x;
    if (x->cb->on_header(x->ud, line, len) != 0) {
        c->stop = true;
        c->fail_rc = CURLE_WRITE_ERROR;
        c->fail_msg = "Failed writing header";
    }
    return !c->stop && !x->removed;
}

static bool
give_status(struct conn *c)
{
    if (c->status_sent)
        return true;
    c->status_sent = true;
    char line[48];
    int n = snprintf(line, sizeof(line), "HTTP/%u.%u %u \r\n", c->parser.http_major,
                     c->parser.http_minor, c->parser.status_code);
    return give_line(c, line, (size_t)n);
}

static bool
give_header(struct conn *c)
{
    if (!c->in_value)
        return true;
    c->in_value = false;
    sl_buf_append(&c->line, "\r\n", 2);
    bool ok = give_line(c, sl_buf_ptr(&c->line), sl_buf_len(&c->line));
    sl_buf_clear(&c->line);
    return ok;
}

static int
head_bytes(struct conn *c, const char *at, size_t len)
{
    if (sl_buf_len(&c->line) + len > MAX_HEAD_LINE) {
        c->stop = true;
        c->fail_rc = CURLE_RECV_ERROR;
        c->fail_msg = "a response header line is too large";
        return 1;
    }
    sl_buf_append(&c->line, at, len);
    return 0;
}

static int
on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct conn *c = hp->data;
    if (!give_status(c) || !give_header(c))
        return 1;
    return head_bytes(c, at, len);
}

static int
on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct conn *c = hp->data;
    if (!c->in_value) {
        c->in_value = true;
        sl_buf_append(&c->line, ": ", 2);
    }
    return head_bytes(c, at, len);
}

static int
on_headers_complete(http_parser *hp)
{
    struct conn *c = hp->data;
    if (!give_status(c) || !give_header(c) || !give_line(c, "\r\n", 2))
        return -1; /* http-parser's "error" from this callback (1 would mean "no body") */
    return 0;
}

static int
on_body(http_parser *hp, const char *at, size_t len)
{
    struct conn *c = hp->data;
    struct sl_h1_xfer *x = c->x;
    if (x->cb->on_data(x->ud, at, len) != 0) {
        c->stop = true;
        c->fail_rc = CURLE_WRITE_ERROR;
        c->fail_msg = "Failure writing output to destination";
    }
    return c->stop || x->removed;
}

static int
on_message_complete(http_parser *hp)
{
    struct conn *c = hp->data;
    if (hp->status_code >= 100 && hp->status_code < 200) {
        c->status_sent = false; /* an interim response (103 Early Hints): the real one follows */
        return 0;
    }
    c->keep = http_should_keep_alive(hp);
    c->complete = true;
    http_parser_pause(hp, 1); /* nothing past the response is parsed */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- pools ------------------------------------------------------------------------------- */

static void
topup(struct sl_h1_pool *p)
{
    if (p->h->closing)
        return;
    unsigned n = sl_gate_to_warm(&p->gate);
    for (unsigned i = 0; i < n; i++)
        conn_new(p, NULL, 0, 0);
}

static void
on_keepalive(uv_timer_t *t)
{
    struct sl_h1 *h = t->data;
    struct sl_list *pos;
    for (pos = h->pools.next; pos != &h->pools; pos = pos->next)
        topup(SL_CONTAINER_OF(pos, struct sl_h1_pool, link));
}

struct sl_h1_pool *
sl_h1_pool_new(struct sl_h1 *h, const struct sl_h1_pool_cfg *cfg)
{
    struct url u;
    if (!url_parse(cfg->base_url, &u))
        return NULL;
    struct sl_h1_pool *p = sl_calloc(1, sizeof(*p));
    p->h = h;
    sl_list_init(&p->idle);
    sl_list_init(&p->conns);
    sl_list_init(&p->resolving);
    p->host = sl_strndup(u.host, u.host_len);
    p->authority = sl_strndup(u.authority, u.authority_len);
    p->port = u.port;
    p->connect_timeout_ms = cfg->connect_timeout_ms;
    sl_gate_init(&p->gate, cfg->max_connections ? cfg->max_connections : 1, cfg->max_queued,
                 cfg->min_idle);
    /* An address literal needs no resolution, ever. */
    p->numeric = uv_ip4_addr(p->host, p->port, (struct sockaddr_in *)&p->addrs[0]) == 0 ||
                 uv_ip6_addr(p->host, p->port, (struct sockaddr_in6 *)&p->addrs[0]) == 0;
    p->naddrs = p->numeric ? 1 : 0;
    if (cfg->naddrs > 0) {
        p->naddrs = cfg->naddrs < MAX_ADDRS ? cfg->naddrs : MAX_ADDRS;
        memcpy(p->addrs, cfg->addrs, p->naddrs * sizeof(p->addrs[0]));
        p->numeric = true;
    }
    sl_list_push_back(&h->pools, &p->link);
    if (cfg->min_idle > 0) {
        topup(p);
        if (!uv_is_active((uv_handle_t *)&h->keepalive))
            uv_timer_start(&h->keepalive, on_keepalive, KEEPALIVE_MS, KEEPALIVE_MS);
    }
    return p;
}

const struct sl_gate *
sl_h1_pool_gate(const struct sl_h1_pool *p)
{
    return &p->gate;
}

uint64_t
sl_h1_setup_ns(const struct sl_h1 *h)
{
    return h ? h->setup_ns : 0;
}

/* --- lifetime ------------------------------------------------------------------------------ */

struct sl_h1 *
sl_h1_new(struct sl_loop *loop)
{
    struct sl_h1 *h = sl_calloc(1, sizeof(*h));
    h->loop = loop;
    h->uv = sl_loop_uv(loop);
    sl_list_init(&h->pools);
    sl_list_init(&h->xfers);
    uv_timer_init(h->uv, &h->keepalive);
    uv_unref((uv_handle_t *)&h->keepalive);
    h->keepalive.data = h;
    return h;
}

static void
close_all(struct sl_list *conns)
{
    while (!sl_list_empty(conns))
        conn_close(SL_CONTAINER_OF(conns->next, struct conn, link));
}

void
sl_h1_free(struct sl_h1 *h)
{
    if (h == NULL)
        return;
    h->closing = true;
    while (!sl_list_empty(&h->xfers)) {
        struct sl_h1_xfer *x = SL_CONTAINER_OF(h->xfers.next, struct sl_h1_xfer, link);
        x->removed = true;
        xfer_close_conn(x);
        xfer_release(x);
    }
    struct sl_list *pos;
    for (pos = h->pools.next; pos != &h->pools; pos = pos->next) {
        struct sl_h1_pool *p = SL_CONTAINER_OF(pos, struct sl_h1_pool, link);
        close_all(&p->idle);
        close_all(&p->conns);
        close_all(&p->resolving);
        if (p->resolve_busy)
            uv_cancel((uv_req_t *)&p->gai);
    }
    uv_timer_stop(&h->keepalive);
    uv_close((uv_handle_t *)&h->keepalive, NULL);
    /* Our handles are closing (and a resolution may be finishing): let them. */
    uv_run(h->uv, UV_RUN_DEFAULT);
    while (!sl_list_empty(&h->pools)) {
        struct sl_h1_pool *p = SL_CONTAINER_OF(h->pools.next, struct sl_h1_pool, link);
        sl_list_unlink(&p->link);
        free(p->host);
        free(p->authority);
        free(p);
    }
    free(h);
}
