#include "cluster/rconn.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "base/alloc.h"
#include "net/loop.h"
#include "obs/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000

enum state { C_DOWN, C_CONNECTING, C_UP };

struct sl_rconn {
    struct sl_loop *loop;
    struct sl_rconn_opts o;
    char *url, *name;
    struct sl_redis_addr addr;
    redisAsyncContext *ac;
    uv_timer_t *timer; /* the retry delay, or the handshake's deadline */
    enum state state;
    uint64_t backoff_ms;
    uint64_t commands;
    bool was_up;      /* up at least once since the last down line */
    bool down_logged; /* the current outage was logged */
    bool freeing;
    bool closing;         /* sl_rconn_close: waiting for the last replies */
    unsigned outstanding; /* replies awaited (blocking commands and SUBSCRIBE aside) */
    uint64_t since;       /* loop time of the last reply, or of the first command awaited */
};

static void finish_close(struct sl_rconn *c);

static void connect_now(struct sl_rconn *c);

/*
 * The adapter's poll callback ignores an error status, and libuv reports a socket error
 * (a reset: the server was killed while we were writing) only that way, after stopping
 * the poll: the connection would never be seen to fail. Each time the adapter (re)starts
 * the poll, it is restarted here with this callback, which lets hiredis read: the read
 * fails and hiredis disconnects as for any other loss.
 */
static void
poll_cb(uv_poll_t *h, int status, int events)
{
    redisLibuvEvents *p = h->data;
    if (p->context == NULL)
        return;
    if (status != 0) {
        redisAsyncHandleRead(p->context);
        return;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(p->context);
    if (p->context != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->context);
}

static void
repoll(void *privdata)
{
    redisLibuvEvents *p = privdata;
    if (p->events)
        uv_poll_start(&p->handle, p->events, poll_cb);
}

static void
shim_add_read(void *d)
{
    redisLibuvAddRead(d);
    repoll(d);
}
static void
shim_del_read(void *d)
{
    redisLibuvDelRead(d);
    repoll(d);
}
static void
shim_add_write(void *d)
{
    redisLibuvAddWrite(d);
    repoll(d);
}
static void
shim_del_write(void *d)
{
    redisLibuvDelWrite(d);
    repoll(d);
}

static int
attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    if (redisLibuvAttach(ac, loop) != REDIS_OK)
        return REDIS_ERR;
    ac->ev.addRead = shim_add_read;
    ac->ev.delRead = shim_del_read;
    ac->ev.addWrite = shim_add_write;
    ac->ev.delWrite = shim_del_write;
    return REDIS_OK;
}

int
sl_redis_parse_url(const char *url, struct sl_redis_addr *out)
{
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        out->unix_socket = true;
        snprintf(out->host, sizeof(out->host), "%s", url + 7);
        return out->host[0] == '/' ? 0 : -1;
    }
    if (strncmp(url, "redis://", 8) != 0)
        return -1;
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        /* [user]:password@ (or password@): a user names an ACL user (AUTH user password). */
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if (colon && colon > p) {
            if ((size_t)(colon - p) >= sizeof(out->username))
                return -1;
            memcpy(out->username, p, (size_t)(colon - p));
            out->username[colon - p] = '\0';
        }
        size_t n = (size_t)(at - pw);
        if (n >= sizeof(out->password))
            return -1;
        memcpy(out->password, pw, n);
        out->password[n] = '\0';
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    const char *end = slash ? slash : p + strlen(p);
    const char *colon = NULL;
    if (*p == '[') { /* [v6]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return -1;
        if ((size_t)(rb - p - 1) >= sizeof(out->host))
            return -1;
        memcpy(out->host, p + 1, (size_t)(rb - p - 1));
        colon = rb[1] == ':' ? rb + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        const char *he = colon ? colon : end;
        if ((size_t)(he - p) >= sizeof(out->host))
            return -1;
        memcpy(out->host, p, (size_t)(he - p));
    }
    if (out->host[0] == '\0')
        snprintf(out->host, sizeof(out->host), "127.0.0.1");
    if (colon) {
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e != end || port <= 0 || port > 65535)
            return -1;
        out->port = (int)port;
    }
    if (slash && slash[1]) {
        char *e;
        long db = strtol(slash + 1, &e, 10);
        if (*e != '\0' || db < 0 || db > 100000)
            return -1;
        out->db = (int)db;
    }
    return 0;
}

/* --- timers ----------------------------------------------------------------------------- */

static void
free_timer(uv_handle_t *h)
{
    free(h);
}

static void
on_timer(uv_timer_t *t)
{
    struct sl_rconn *c = t->data;
    if (c->closing) {
        /* The server did not answer the last commands in time. */
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        if (ac) {
            ac->data = NULL;
            redisAsyncFree(ac);
        }
        finish_close(c);
        return;
    }
    if (c->state == C_DOWN) {
        connect_now(c);
        return;
    }
    if (c->state == C_CONNECTING && c->ac) {
        /* The server accepted (or not) but did not answer the handshake in time. */
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        ac->data = NULL;
        c->state = C_DOWN;
        if (!c->down_logged && !c->o.quiet) {
            c->down_logged = true;
            sl_log_msg(SL_LOG_WARN, "redis.down", "worker %u %s: no answer within %llu ms",
                       c->o.worker, c->name, (unsigned long long)c->o.timeout_ms);
        }
        redisAsyncFree(ac);
        if (c->was_up && c->o.on_down) {
            c->was_up = false;
            c->o.on_down(c->o.ud);
        }
        c->backoff_ms = BACKOFF_MIN_MS;
        uv_timer_start(c->timer, on_timer, c->backoff_ms, 0);
    }
}

/* The connection is gone (or never came): say so once, and try again later. */
static void
went_down(struct sl_rconn *c, const char *why)
{
    c->state = C_DOWN;
    c->outstanding = 0;
    if (!c->down_logged && !c->o.quiet) {
        c->down_logged = true;
        struct sl_logrec r;
        if (sl_log_begin(&r, SL_LOG_WARN, "redis.down")) {
            sl_log_uint(&r, "worker", c->o.worker);
            sl_log_str(&r, "connection", c->name);
            sl_log_str(&r, "error", why);
            sl_log_uint(&r, "retry_ms", c->backoff_ms);
            sl_log_end(&r);
        }
    }
    if (c->was_up) {
        c->was_up = false;
        if (c->o.on_down)
            c->o.on_down(c->o.ud);
    }
    if (c->freeing)
        return;
    uv_timer_start(c->timer, on_timer, c->backoff_ms, 0);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct sl_rconn *c = ac->data;
    if (c == NULL || c->ac != ac)
        return;
    if (status != REDIS_OK) {
        c->ac = NULL; /* hiredis frees it after this callback */
        went_down(c, ac->errstr[0] ? ac->errstr : "connection refused");
    }
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct sl_rconn *c = ac->data;
    if (c == NULL || c->ac != ac)
        return;
    c->ac = NULL;
    if (c->closing) {
        finish_close(c);
        return;
    }
    went_down(c, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void
on_hello(redisAsyncContext *ac, void *r, void *priv)
{
    struct sl_rconn *c = priv;
    redisReply *reply = r;
    if (c->ac != ac || c->state != C_CONNECTING)
        return;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        char why[200];
        snprintf(why, sizeof(why), "%s", reply ? reply->str : "no answer");
        c->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac); /* deferred by hiredis until this callback returns */
        went_down(c, why);
        return;
    }
    uv_timer_stop(c->timer);
    c->state = C_UP;
    c->was_up = true;
    c->backoff_ms = BACKOFF_MIN_MS;
    if (!c->o.quiet) {
        struct sl_logrec lr;
        if (sl_log_begin(&lr, c->down_logged ? SL_LOG_WARN : SL_LOG_INFO, "redis.up")) {
            sl_log_uint(&lr, "worker", c->o.worker);
            sl_log_str(&lr, "connection", c->name);
            sl_log_end(&lr);
        }
    }
    c->down_logged = false;
    if (c->o.on_up)
        c->o.on_up(c->o.ud);
}

/* A reply to a caller's command: the trampoline from hiredis's signature. */
struct pending {
    sl_rconn_reply_fn fn;
    void *ud;
    bool sticky; /* SUBSCRIBE: called for every message, freed at the end */
    bool blocks; /* XREAD BLOCK: may rightly take long */
};

static void
on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct pending *p = priv;
    struct sl_rconn *c = ac->data; /* NULL once we let go of the context */
    if (c != NULL && !p->sticky && !p->blocks && c->outstanding > 0) {
        c->outstanding--;
        c->since = sl_loop_now(c->loop);
    }
    if (p->fn)
        p->fn(p->ud, r);
    if (!p->sticky || r == NULL)
        free(p);
}

static void
connect_now(struct sl_rconn *c)
{
    redisAsyncContext *ac = c->addr.unix_socket ? redisAsyncConnectUnix(c->addr.host)
                                                : redisAsyncConnect(c->addr.host, c->addr.port);
    if (ac == NULL) {
        went_down(c, "out of memory");
        return;
    }
    if (ac->err) {
        char why[200];
        snprintf(why, sizeof(why), "%s", ac->errstr);
        redisAsyncFree(ac);
        went_down(c, why);
        return;
    }
    if (attach(ac, sl_loop_uv(c->loop)) != REDIS_OK) {
        redisAsyncFree(ac);
        went_down(c, "cannot watch the socket");
        return;
    }
    ac->data = c;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    c->ac = ac;
    c->state = C_CONNECTING;
    /* Queued now, written once the socket connects: the handshake needs no extra turn. */
    if (c->addr.password[0] && c->addr.username[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s %s", c->addr.username, c->addr.password);
    else if (c->addr.password[0])
        redisAsyncCommand(ac, NULL, NULL, "AUTH %s", c->addr.password);
    if (c->addr.db)
        redisAsyncCommand(ac, NULL, NULL, "SELECT %d", c->addr.db);
    redisAsyncCommand(ac, on_hello, c, "PING");
    uv_timer_start(c->timer, on_timer, c->o.timeout_ms ? c->o.timeout_ms : 2000, 0);
}

struct sl_rconn *
sl_rconn_new(struct sl_loop *loop, const struct sl_rconn_opts *o)
{
    struct sl_rconn *c = sl_calloc(1, sizeof(*c));
    c->loop = loop;
    c->o = *o;
    c->url = sl_strdup(o->url);
    c->name = sl_strdup(o->name ? o->name : "redis");
    c->o.url = c->url;
    c->o.name = c->name;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->timer = sl_malloc(sizeof(*c->timer));
    uv_timer_init(sl_loop_uv(loop), c->timer);
    c->timer->data = c;
    if (sl_redis_parse_url(c->url, &c->addr) != 0) {
        c->down_logged = true;
        sl_log_msg(SL_LOG_ERROR, "redis.down", "redis.url cannot be parsed");
        c->state = C_DOWN;
        return c; /* never connects */
    }
    connect_now(c);
    return c;
}

void
sl_rconn_free(struct sl_rconn *c)
{
    if (c == NULL)
        return;
    c->freeing = true;
    uv_timer_stop(c->timer);
    uv_close((uv_handle_t *)c->timer, free_timer);
    if (c->ac) {
        redisAsyncContext *ac = c->ac;
        c->ac = NULL;
        ac->data = NULL;
        c->state = C_DOWN;
        redisAsyncFree(ac); /* pending callbacks run now with NULL */
    }
    free(c->url);
    free(c->name);
    free(c);
}

static void
finish_close(struct sl_rconn *c)
{
    c->closing = false;
    sl_rconn_free(c);
}

void
sl_rconn_close(struct sl_rconn *c)
{
    if (c == NULL)
        return;
    if (!sl_rconn_up(c)) {
        sl_rconn_free(c);
        return;
    }
    c->closing = true;
    c->state = C_DOWN; /* nothing more is accepted */
    uv_timer_start(c->timer, on_timer, c->o.timeout_ms ? c->o.timeout_ms : 2000, 0);
    redisAsyncDisconnect(c->ac);
}

bool
sl_rconn_up(const struct sl_rconn *c)
{
    return c != NULL && c->state == C_UP && c->ac != NULL;
}

int
sl_rconn_cmd(struct sl_rconn *c, sl_rconn_reply_fn fn, void *ud, int argc, const char **argv,
             const size_t *argvlen)
{
    if (!sl_rconn_up(c))
        return -1;
    struct pending *p = sl_malloc(sizeof(*p));
    p->fn = fn;
    p->ud = ud;
    p->sticky = argc > 0 && argvlen[0] == 9 && strncasecmp(argv[0], "SUBSCRIBE", 9) == 0;
    p->blocks = argc > 0 && argvlen[0] == 5 && strncasecmp(argv[0], "XREAD", 5) == 0;
    if (redisAsyncCommandArgv(c->ac, on_reply, p, argc, argv, argvlen) != REDIS_OK) {
        free(p);
        return -1;
    }
    if (!p->sticky && !p->blocks && c->outstanding++ == 0)
        c->since = sl_loop_now(c->loop);
    c->commands++;
    return 0;
}

void
sl_rconn_check(struct sl_rconn *c)
{
    if (!sl_rconn_up(c) || c->outstanding == 0)
        return;
    uint64_t limit = c->o.timeout_ms ? c->o.timeout_ms : 2000;
    if (sl_loop_now(c->loop) - c->since < limit)
        return;
    /* Replies stopped coming (a server hung, a network cut without a reset): start over. */
    redisAsyncContext *ac = c->ac;
    c->ac = NULL;
    ac->data = NULL;
    char why[96];
    snprintf(why, sizeof(why), "no answer within %llu ms", (unsigned long long)limit);
    went_down(c, why);
    redisAsyncFree(ac); /* pending callbacks run now with NULL */
}

uint64_t
sl_rconn_commands(const struct sl_rconn *c)
{
    return c ? c->commands : 0;
}
