#include "net/engineio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/codes.h"
#include "base/list.h"
#include "base/timeq.h"
#include "net/conn.h"
#include "net/eiocodec.h"
#include "net/http.h"
#include "net/loop.h"
#include "net/ws.h"
#include "obs/log.h"

const char SL_EIO_R_CLIENT[] = "transport close";
const char SL_EIO_R_PING[] = "ping timeout";
const char SL_EIO_R_ERROR[] = "transport error";
const char SL_EIO_R_PARSE[] = "parse error";
const char SL_EIO_R_QUEUE[] = "send queue full";
const char SL_EIO_R_SERVER[] = "forced close";
const char SL_EIO_R_SHUTDOWN[] = "server shutting down";

#define MAX_ENDPOINTS 4
#define POLL_CONTENT_TYPE "text/plain; charset=UTF-8"

/* Engine.IO's error codes, in the JSON body of a 400 (as the reference server sends them). */
enum {
    E_UNKNOWN_TRANSPORT = 0,
    E_UNKNOWN_SID = 1,
    E_BAD_HANDSHAKE_METHOD = 2,
    E_BAD_REQUEST = 3,
    E_FORBIDDEN = 4,
    E_UNSUPPORTED_PROTOCOL_VERSION = 5,
};

enum { S_OPEN, S_CLOSING, S_CLOSED };

enum {
    EF_WS = 1 << 0,       /* the transport is a WebSocket */
    EF_PENDING = 1 << 1,  /* on srv->pending, for the end-of-turn hook */
    EF_NOTIFY = 1 << 2,   /* on_close is due */
    EF_OPENED = 1 << 3,   /* on_open was called */
    EF_PONG_DUE = 1 << 4, /* a ping is out: hb waits on wait_tq */
};

/* A WebSocket opened with a long-polling session's sid, until it completes the upgrade. */
struct upgrade {
    struct sl_timeq_node node; /* upgrade deadline */
    struct sl_eio *s;          /* NULL once the session let go of it */
    struct sl_ws *ws;
    bool probed; /* "2probe" was answered */
};

/*
 * The long-polling queue holds entries of [kind][length, 4 bytes][bytes]: kind 't' for a
 * text packet (its type digit included), 'b' for a binary message. They are rendered into a
 * payload when a GET takes them, or sent as frames if the session upgrades first.
 */
#define ENTRY_HEAD 5

struct sl_eio {
    struct sl_eio *hnext; /* the sid table's chain */
    struct sl_eio_endpoint *ep;
    void *ud;
    struct sl_ws *ws;         /* the WebSocket transport */
    struct sl_http_resp *get; /* the pending (unanswered) GET */
    struct upgrade *up;       /* a probe WebSocket */
    char *cors;               /* CORS header lines for the pending GET */
    const char *reason;       /* why it ended (S_CLOSING, S_CLOSED) */
    struct sl_buf out;        /* the long-polling queue */
    uint64_t sent;            /* bytes of the packets sent so far (type and data) */
    struct sl_timeq_node hb;  /* heartbeat: ping due, or pong (or orderly close) deadline */
    struct sl_list link;      /* on srv->pending */
    uint32_t nresp;           /* held responses whose on_close has not come yet */
    uint32_t lag; /* sent minus the bytes known to have reached the client (saturated: errs low) */
    uint8_t state;
    uint8_t flags;
    char sid[SL_EIO_SID_LEN + 1];
};

struct sl_eio_endpoint {
    struct sl_eio_server *srv;
    const char *path;
    size_t plen;
    const struct sl_eio_handler *h;
    void *ud;
};

struct sl_eio_server {
    struct sl_loop *loop;
    struct sl_eio_options opt;
    struct sl_timeq ping_tq;    /* ping_interval since the last pong: send a ping */
    struct sl_timeq wait_tq;    /* ping_timeout since the ping (or an orderly close): end */
    struct sl_timeq upgrade_tq; /* a probe WebSocket's time to complete the upgrade */
    struct sl_timeq soon_tq;    /* duration 0: keeps the loop from sleeping on our writes */
    struct sl_timeq_node soon;
    struct sl_eio_endpoint eps[MAX_ENDPOINTS];
    size_t neps;
    struct sl_eio **table; /* sid -> session, chained, power-of-two size */
    size_t tcap, count;
    struct sl_list pending;
    struct sl_buf scratch; /* rendering: frames, payloads */
    struct sl_buf bin;     /* base64-decoded binary messages */
    struct sl_buf cors;    /* the CORS lines of the request being handled */
    bool draining;
};

static const struct sl_ws_handler main_ws_handler;
static const struct sl_ws_handler probe_ws_handler;
static const struct sl_ws_handler reject_ws_handler;

static struct sl_eio_server *
srv_of(const struct sl_eio *s)
{
    return s->ep->srv;
}

/* --- the sid table ---------------------------------------------------------------------------- */

static const char sid_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
sid_value(char c)
{
    const char *p = memchr(sid_chars, c, 64);
    return c != '\0' && p ? (int)(p - sid_chars) : -1;
}

/* The worker named by a sid, or -1 if it is not one of ours. */
static int
sid_worker(const char *sid, size_t len)
{
    if (len != SL_EIO_SID_LEN)
        return -1;
    int hi = sid_value(sid[0]), lo = sid_value(sid[1]);
    if (hi < 0 || lo < 0)
        return -1;
    return hi << 6 | lo;
}

static void
make_sid(char *sid, unsigned worker)
{
    uint8_t rnd[SL_EIO_SID_LEN - 2];
    sl_random(rnd, sizeof(rnd));
    sid[0] = sid_chars[(worker >> 6) & 63];
    sid[1] = sid_chars[worker & 63];
    for (size_t i = 0; i < sizeof(rnd); i++)
        sid[2 + i] = sid_chars[rnd[i] & 63];
    sid[SL_EIO_SID_LEN] = '\0';
}

static size_t
sid_hash(const char *sid)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 2; i < SL_EIO_SID_LEN; i++)
        h = (h ^ (uint8_t)sid[i]) * 1099511628211ull;
    return (size_t)h;
}

static void
table_grow(struct sl_eio_server *srv)
{
    size_t ncap = srv->tcap ? srv->tcap * 2 : 64;
    struct sl_eio **nt = sl_calloc(ncap, sizeof(*nt));
    for (size_t i = 0; i < srv->tcap; i++) {
        struct sl_eio *s = srv->table[i];
        while (s) {
            struct sl_eio *next = s->hnext;
            size_t b = sid_hash(s->sid) & (ncap - 1);
            s->hnext = nt[b];
            nt[b] = s;
            s = next;
        }
    }
    free(srv->table);
    srv->table = nt;
    srv->tcap = ncap;
}

static void
table_add(struct sl_eio_server *srv, struct sl_eio *s)
{
    if (srv->count + 1 > srv->tcap)
        table_grow(srv);
    size_t b = sid_hash(s->sid) & (srv->tcap - 1);
    s->hnext = srv->table[b];
    srv->table[b] = s;
    srv->count++;
}

static struct sl_eio *
table_find(struct sl_eio_server *srv, const char *sid)
{
    if (srv->tcap == 0)
        return NULL;
    for (struct sl_eio *s = srv->table[sid_hash(sid) & (srv->tcap - 1)]; s; s = s->hnext)
        if (memcmp(s->sid, sid, SL_EIO_SID_LEN) == 0)
            return s;
    return NULL;
}

static void
table_del(struct sl_eio_server *srv, struct sl_eio *s)
{
    struct sl_eio **pp = &srv->table[sid_hash(s->sid) & (srv->tcap - 1)];
    while (*pp != s)
        pp = &(*pp)->hnext;
    *pp = s->hnext;
    s->hnext = NULL;
    srv->count--;
}

/* --- lifetime ----------------------------------------------------------------------------------
 */

/* Puts s on the list the end-of-turn hook works through. */
static void
schedule(struct sl_eio *s)
{
    if (s->flags & EF_PENDING)
        return;
    s->flags |= EF_PENDING;
    sl_list_push_back(&srv_of(s)->pending, &s->link);
}

/* Frees an ended session once nothing refers to it any more. */
static void
maybe_free(struct sl_eio *s)
{
    if (s->state != S_CLOSED || (s->flags & (EF_NOTIFY | EF_PENDING)) || s->nresp > 0 ||
        s->ws != NULL)
        return;
    sl_buf_free(&s->out);
    free(s->cors);
    free(s);
}

static void
log_session(struct sl_eio *s, const char *event, const char *reason)
{
    struct sl_logrec r;
    if (!sl_log_begin(&r, SL_LOG_INFO, event))
        return;
    sl_log_uint(&r, "worker", srv_of(s)->opt.worker);
    sl_log_str(&r, "sid", s->sid);
    sl_log_str(&r, "path", s->ep->path);
    sl_log_str(&r, "transport", (s->flags & EF_WS) ? "websocket" : "polling");
    if (reason)
        sl_log_str(&r, "reason", reason);
    sl_log_end(&r);
}

static uint16_t
close_code(const char *reason)
{
    if (reason == SL_EIO_R_PARSE || reason == SL_EIO_R_ERROR)
        return SL_CLOSE_PROTOCOL_ERROR;
    if (reason == SL_EIO_R_PING)
        return SL_CLOSE_HEARTBEAT_TIMEOUT;
    if (reason == SL_EIO_R_QUEUE)
        return SL_CLOSE_POLICY;
    if (reason == SL_EIO_R_SHUTDOWN)
        return SL_CLOSE_GOING_AWAY;
    return SL_CLOSE_NORMAL;
}

static void answer_get(struct sl_eio *s, bool with_queue, const char *tail);

/* Lets go of a probe WebSocket: it is closed, and frees its struct when it is gone. */
static void
drop_upgrade(struct sl_eio *s, uint16_t code, const char *why)
{
    struct upgrade *up = s->up;
    if (up == NULL)
        return;
    s->up = NULL;
    up->s = NULL;
    sl_timeq_disarm(&up->node);
    sl_ws_close(up->ws, code, why);
}

/*
 * Ends the session now: out of the table, deadlines disarmed, transports closed (a GET
 * waiting gets the close packet, or a noop when the client itself closed). on_close follows
 * from the hook.
 */
static void
end(struct sl_eio *s, const char *reason)
{
    if (s->state == S_CLOSED)
        return;
    struct sl_eio_server *srv = srv_of(s);
    s->state = S_CLOSED;
    s->reason = reason;
    table_del(srv, s);
    sl_timeq_disarm(&s->hb);
    drop_upgrade(s, SL_CLOSE_NORMAL, "session closed");
    sl_buf_free(&s->out);
    if (s->get)
        answer_get(s, false, reason == SL_EIO_R_CLIENT ? "6" : "1");
    if (s->ws)
        sl_ws_close(s->ws, close_code(reason), reason);
    if (s->flags & EF_OPENED) {
        s->flags |= EF_NOTIFY;
        log_session(s, "eio.close", reason);
    }
    schedule(s);
}

/* --- writing --------------------------------------------------------------------------------- */

static void
queue_entry(struct sl_eio *s, char kind, char type, const char *data, size_t n)
{
    size_t len = n + (kind == 't');
    char *dst = sl_buf_reserve(&s->out, ENTRY_HEAD + len);
    dst[0] = kind;
    dst[1] = (char)(len & 0xff);
    dst[2] = (char)((len >> 8) & 0xff);
    dst[3] = (char)((len >> 16) & 0xff);
    dst[4] = (char)((len >> 24) & 0xff);
    if (kind == 't')
        dst[ENTRY_HEAD] = type;
    if (n)
        memcpy(dst + ENTRY_HEAD + (kind == 't'), data, n);
    sl_buf_commit(&s->out, ENTRY_HEAD + len);
}

/* Walks the queue: calls fn for each entry. */
static void
each_entry(const struct sl_buf *q, void (*fn)(void *arg, char kind, const char *p, size_t n),
           void *arg)
{
    const char *p = sl_buf_ptr(q), *end = p + sl_buf_len(q);
    while (p < end) {
        size_t n = (size_t)(uint8_t)p[1] | (size_t)(uint8_t)p[2] << 8 |
                   (size_t)(uint8_t)p[3] << 16 | (size_t)(uint8_t)p[4] << 24;
        fn(arg, p[0], p + ENTRY_HEAD, n);
        p += ENTRY_HEAD + n;
    }
}

static void
render_entry(void *arg, char kind, const char *p, size_t n)
{
    struct sl_buf *b = arg;
    if (sl_buf_len(b) > 0)
        sl_buf_append_byte(b, SL_EIO_SEP);
    if (kind == 'b')
        sl_eio_write_base64(b, p, n);
    else
        sl_buf_append(b, p, n);
}

static void
frame_entry(void *arg, char kind, const char *p, size_t n)
{
    struct sl_ws *ws = arg;
    if (kind == 'b')
        sl_ws_send_binary(ws, p, n);
    else
        sl_ws_send_text(ws, p, n);
}

/* The long-polling payload: the queue (if with_queue) and a last packet (tail), in scratch. */
static void
render_payload(struct sl_eio *s, bool with_queue, const char *tail)
{
    struct sl_buf *b = &srv_of(s)->scratch;
    sl_buf_clear(b);
    if (with_queue) {
        each_entry(&s->out, render_entry, b);
        sl_buf_free(&s->out);
    }
    if (tail) {
        if (sl_buf_len(b) > 0)
            sl_buf_append_byte(b, SL_EIO_SEP);
        sl_buf_append_str(b, tail);
    }
}

/* Answers the pending GET (its on_close still follows). */
static void
answer_get(struct sl_eio *s, bool with_queue, const char *tail)
{
    struct sl_http_resp *r = s->get;
    struct sl_buf *b = &srv_of(s)->scratch;
    s->get = NULL;
    render_payload(s, with_queue, tail);
    sl_http_head(r, 200, POLL_CONTENT_TYPE, s->cors, (int64_t)sl_buf_len(b));
    sl_http_body(r, sl_buf_ptr(b), sl_buf_len(b));
    sl_http_end(r, false);
    free(s->cors);
    s->cors = NULL;
}

/* A packet to the client, by the current transport. */
static void
send_packet(struct sl_eio *s, enum sl_eio_type type, const char *data, size_t n, bool binary)
{
    s->sent += n + 1;
    s->lag = n + 1 > UINT32_MAX - s->lag ? UINT32_MAX : s->lag + (uint32_t)(n + 1);
    if (s->flags & EF_WS) {
        if (binary) {
            sl_ws_send_binary(s->ws, data, n);
            return;
        }
        struct sl_buf *b = &srv_of(s)->scratch;
        sl_buf_clear(b);
        sl_eio_write_text(b, type, data, n);
        sl_ws_send_text(s->ws, sl_buf_ptr(b), sl_buf_len(b));
        return;
    }
    queue_entry(s, binary ? 'b' : 't', (char)('0' + type), data, n);
    if (s->get)
        schedule(s);
}

size_t
sl_eio_queued(const struct sl_eio *s)
{
    size_t n = sl_buf_len(&s->out);
    if (s->ws)
        n += sl_ws_queued(s->ws);
    return n;
}

uint64_t
sl_eio_sent(const struct sl_eio *s)
{
    return s->sent;
}

/* `away` bytes of what was sent have not surely reached the client (yet). */
static void
set_away(struct sl_eio *s, uint64_t away)
{
    if (away < s->lag)
        s->lag = (uint32_t)away;
}

/* Counts an entry of the long-polling queue as send_packet() counted it (type and data). */
static void
count_entry(void *arg, char kind, const char *p, size_t n)
{
    (void)p;
    *(uint64_t *)arg += n + (kind == 'b');
}

/*
 * What is still on its way is at most what the queues hold plus what the WebSocket's TCP has
 * not had acknowledged (framing included, so the estimate errs low); over long-polling, what
 * the client's latest GET confirmed (see poll()).
 */
uint64_t
sl_eio_delivered(struct sl_eio *s)
{
    if ((s->flags & EF_WS) && s->ws) {
        struct sl_conn *c = sl_ws_conn(s->ws);
        set_away(s, sl_eio_queued(s) + (sl_conn_written(c) - sl_conn_acked(c)));
    }
    return s->sent - s->lag;
}

void
sl_eio_send(struct sl_eio *s, const char *data, size_t len, bool binary)
{
    if (s->state != S_OPEN)
        return;
    if (sl_eio_queued(s) + len > srv_of(s)->opt.max_queued) {
        end(s, SL_EIO_R_QUEUE);
        return;
    }
    send_packet(s, SL_EIO_MESSAGE, data, len, binary);
}

void
sl_eio_close(struct sl_eio *s)
{
    if (s->state != S_OPEN)
        return;
    if ((s->flags & EF_WS) || s->get) {
        if (s->get)
            answer_get(s, true, "1");
        end(s, SL_EIO_R_SERVER);
        return;
    }
    /* Long-polling with no GET waiting: the close packet goes with the next one. */
    struct sl_eio_server *srv = srv_of(s);
    s->state = S_CLOSING;
    s->reason = SL_EIO_R_SERVER;
    s->flags &= (uint8_t)~EF_PONG_DUE;
    drop_upgrade(s, SL_CLOSE_NORMAL, "session closed");
    sl_loop_arm(srv->loop, &srv->wait_tq, &s->hb);
}

void
sl_eio_fail(struct sl_eio *s)
{
    end(s, SL_EIO_R_PARSE);
}

void
sl_eio_set_user_data(struct sl_eio *s, void *ud)
{
    s->ud = ud;
}

const char *
sl_eio_sid(const struct sl_eio *s)
{
    return s->sid;
}

bool
sl_eio_websocket(const struct sl_eio *s)
{
    return (s->flags & EF_WS) != 0;
}

bool
sl_eio_closing(const struct sl_eio *s)
{
    return s->state != S_OPEN;
}

/* --- reading --------------------------------------------------------------------------------- */

static void
deliver(struct sl_eio *s, const char *data, size_t n, bool binary)
{
    if (s->state == S_OPEN)
        s->ep->h->on_message(s->ud, s, data, n, binary);
}

/* A decoded packet from the current transport (not the probe). */
static void
on_packet(struct sl_eio *s, const struct sl_eio_packet *pkt)
{
    struct sl_eio_server *srv = srv_of(s);
    switch (pkt->type) {
    case SL_EIO_MESSAGE:
        deliver(s, pkt->data.ptr, pkt->data.len, false);
        break;
    case SL_EIO_PONG:
        /* As the reference server: any pong restarts the ping interval. */
        s->flags &= (uint8_t)~EF_PONG_DUE;
        sl_loop_arm(srv->loop, &srv->ping_tq, &s->hb);
        break;
    case SL_EIO_PING:
        /* In v4 the server pings; a client's ping is a protocol error. */
        end(s, SL_EIO_R_ERROR);
        break;
    case SL_EIO_CLOSE:
        end(s, SL_EIO_R_CLIENT);
        break;
    default:
        /* open, upgrade and noop mean nothing here; Engine.IO ignores them too. */
        break;
    }
}

/* --- timers ---------------------------------------------------------------------------------- */

static void
on_ping_due(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_eio *s = SL_CONTAINER_OF(n, struct sl_eio, hb);
    struct sl_eio_server *srv = srv_of(s);
    s->flags |= EF_PONG_DUE;
    sl_loop_arm(srv->loop, &srv->wait_tq, &s->hb);
    send_packet(s, SL_EIO_PING, NULL, 0, false);
}

static void
on_wait_over(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_eio *s = SL_CONTAINER_OF(n, struct sl_eio, hb);
    end(s, s->state == S_CLOSING ? s->reason : SL_EIO_R_PING);
}

static void
on_upgrade_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct upgrade *up = SL_CONTAINER_OF(n, struct upgrade, node);
    if (up->s)
        drop_upgrade(up->s, SL_CLOSE_PROTOCOL_ERROR, "upgrade not completed in time");
}

/*
 * A deadline that passed without its timer having run yet (a request processed in the same
 * loop turn): the session is over, as it would have been a moment earlier.
 */
static bool
expired(struct sl_eio *s)
{
    struct sl_eio_server *srv = srv_of(s);
    bool waiting = (s->flags & EF_PONG_DUE) || s->state == S_CLOSING;
    if (waiting && sl_timeq_armed(&s->hb) && s->hb.at <= sl_loop_now(srv->loop)) {
        sl_timeq_disarm(&s->hb);
        on_wait_over(&s->hb, s->hb.at);
        return true;
    }
    return s->state == S_CLOSED;
}

/* --- the end-of-turn hook ------------------------------------------------------------------- */

static void
on_soon(struct sl_timeq_node *n, uint64_t now)
{
    (void)n;
    (void)now;
}

/*
 * Answers the GETs that have something waiting (everything a turn queued leaves in one
 * answer) and delivers the due on_close callbacks. The connections' own flush hook may
 * have run before this one in the turn: a zero-length deadline then brings the loop round
 * again instead of letting it sleep on what was just written.
 */
static void
on_turn(void *arg)
{
    struct sl_eio_server *srv = arg;
    if (!sl_list_empty(&srv->pending))
        sl_loop_arm(srv->loop, &srv->soon_tq, &srv->soon);
    while (!sl_list_empty(&srv->pending)) {
        struct sl_eio *s = SL_CONTAINER_OF(srv->pending.next, struct sl_eio, link);
        sl_list_unlink(&s->link);
        s->flags &= (uint8_t)~EF_PENDING;
        if (s->state == S_OPEN && s->get && sl_buf_len(&s->out) > 0)
            answer_get(s, true, NULL);
        if (s->flags & EF_NOTIFY) {
            s->flags &= (uint8_t)~EF_NOTIFY;
            s->ep->h->on_close(s->ud, s, s->reason);
        }
        maybe_free(s);
    }
}

/* --- held GETs ------------------------------------------------------------------------------- */

static void
on_get_close(void *ud, struct sl_http_resp *r, bool aborted)
{
    struct sl_eio *s = ud;
    s->nresp--;
    if (r == s->get) {
        /* The client gave up its pending poll: it is gone (as for the reference server). */
        s->get = NULL;
        free(s->cors);
        s->cors = NULL;
        if (aborted)
            end(s, SL_EIO_R_CLIENT);
    } else if (!aborted && s->state == S_OPEN && s->get == NULL && sl_buf_len(&s->out) == 0 &&
               s->ep->h->on_drain) {
        s->ep->h->on_drain(s->ud, s);
    }
    maybe_free(s);
}

static const struct sl_http_resp_handler get_handler = {
    .on_close = on_get_close,
};

/* --- WebSocket transports ------------------------------------------------------------------ */

static void
main_text(void *ud, const char *msg, size_t len)
{
    struct sl_eio *s = ud;
    struct sl_eio_packet pkt;
    if (s->state != S_OPEN)
        return;
    if (sl_eio_decode_text(msg, len, &pkt) != 0) {
        end(s, SL_EIO_R_PARSE);
        return;
    }
    on_packet(s, &pkt);
}

static void
main_binary(void *ud, const char *msg, size_t len)
{
    deliver(ud, msg, len, true);
}

static void
main_drain(void *ud)
{
    struct sl_eio *s = ud;
    if (s->state == S_OPEN && s->ep->h->on_drain)
        s->ep->h->on_drain(s->ud, s);
}

static void
main_closed(void *ud, uint16_t code)
{
    (void)code;
    struct sl_eio *s = ud;
    s->ws = NULL;
    end(s, SL_EIO_R_CLIENT);
    maybe_free(s);
}

static const struct sl_ws_handler main_ws_handler = {
    .on_text = main_text,
    .on_binary = main_binary,
    .on_drain = main_drain,
    .on_closed = main_closed,
};

/* The probe says "5": the WebSocket becomes the transport, the queue moves onto it. */
static void
complete_upgrade(struct sl_eio *s)
{
    struct upgrade *up = s->up;
    struct sl_ws *ws = up->ws;
    s->up = NULL;
    sl_timeq_disarm(&up->node);
    free(up);
    sl_ws_set_handler(ws, &main_ws_handler, s);
    if (s->get)
        answer_get(s, false, "6");
    s->ws = ws;
    s->flags |= EF_WS;
    each_entry(&s->out, frame_entry, ws);
    sl_buf_free(&s->out);
    log_session(s, "eio.upgrade", NULL);
}

static void
probe_text(void *ud, const char *msg, size_t len)
{
    struct upgrade *up = ud;
    struct sl_eio *s = up->s;
    struct sl_eio_packet pkt;
    if (s == NULL)
        return;
    int rc = sl_eio_decode_text(msg, len, &pkt);
    if (rc == 0 && pkt.type == SL_EIO_PING && sl_slice_eq(pkt.data, "probe")) {
        sl_ws_send_text(up->ws, "3probe", 6);
        up->probed = true;
        /* Release the client's pending GET so that it can pause polling. */
        if (s->get && sl_buf_len(&s->out) == 0)
            answer_get(s, false, "6");
        return;
    }
    if (rc == 0 && pkt.type == SL_EIO_UPGRADE) {
        complete_upgrade(s);
        return;
    }
    drop_upgrade(s, SL_CLOSE_PROTOCOL_ERROR, "expected 2probe or 5 during the upgrade");
}

static void
probe_binary(void *ud, const char *msg, size_t len)
{
    (void)msg;
    (void)len;
    struct upgrade *up = ud;
    if (up->s)
        drop_upgrade(up->s, SL_CLOSE_PROTOCOL_ERROR, "expected 2probe or 5 during the upgrade");
}

static void
probe_closed(void *ud, uint16_t code)
{
    (void)code;
    struct upgrade *up = ud;
    if (up->s) {
        up->s->up = NULL;
        sl_timeq_disarm(&up->node);
    }
    free(up);
}

static const struct sl_ws_handler probe_ws_handler = {
    .on_text = probe_text,
    .on_binary = probe_binary,
    .on_closed = probe_closed,
};

static void
reject_text(void *ud, const char *msg, size_t len)
{
    (void)ud;
    (void)msg;
    (void)len;
}

static void
reject_closed(void *ud, uint16_t code)
{
    (void)ud;
    (void)code;
}

/* A WebSocket accepted only to be closed (a second one for an upgraded session). */
static const struct sl_ws_handler reject_ws_handler = {
    .on_text = reject_text,
    .on_binary = reject_text,
    .on_closed = reject_closed,
};

/* --- requests --------------------------------------------------------------------------------- */

static int
respond_error(struct sl_eio_server *srv, struct sl_conn *c, const struct sl_http_req *req,
              int status, int code, const char *message, const char *extra)
{
    struct sl_buf hdr = SL_BUF_INIT;
    char body[160];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", code, message);
    sl_buf_append(&hdr, sl_buf_ptr(&srv->cors), sl_buf_len(&srv->cors));
    if (extra)
        sl_buf_append_str(&hdr, extra);
    sl_http_respond(c, req, status, "application/json", sl_buf_cstr(&hdr), body, (size_t)n);
    sl_buf_free(&hdr);
    return status;
}

static bool
printable(struct sl_slice v)
{
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.ptr[i] < 0x20 || (unsigned char)v.ptr[i] == 0x7f)
            return false;
    return true;
}

/*
 * The Origin check and the CORS lines of the answer (into srv->cors). Returns false if the
 * origin is refused.
 */
static bool
cors_check(struct sl_eio_server *srv, const struct sl_http_req *req)
{
    struct sl_slice origin = sl_http_get_header(req, "Origin");
    sl_buf_clear(&srv->cors);
    if (origin.ptr == NULL)
        return true;
    if (!printable(origin))
        return false;
    if (srv->opt.origin_allowed &&
        !srv->opt.origin_allowed(srv->opt.ud, origin, sl_http_get_header(req, "Host")))
        return false;
    sl_buf_append_str(&srv->cors, "Access-Control-Allow-Origin: ");
    sl_buf_append(&srv->cors, origin.ptr, origin.len);
    sl_buf_append_str(&srv->cors, "\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n");
    return true;
}

static int
preflight(struct sl_eio_server *srv, struct sl_conn *c, const struct sl_http_req *req)
{
    struct sl_buf hdr = SL_BUF_INIT;
    sl_buf_append(&hdr, sl_buf_ptr(&srv->cors), sl_buf_len(&srv->cors));
    sl_buf_append_str(&hdr, "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                            "Access-Control-Max-Age: 86400\r\n");
    struct sl_slice want = sl_http_get_header(req, "Access-Control-Request-Headers");
    if (want.ptr && want.len > 0 && want.len < 1024 && printable(want)) {
        sl_buf_append_str(&hdr, "Access-Control-Allow-Headers: ");
        sl_buf_append(&hdr, want.ptr, want.len);
        sl_buf_append_str(&hdr, "\r\n");
    }
    sl_http_respond(c, req, 204, NULL, sl_buf_cstr(&hdr), NULL, 0);
    sl_buf_free(&hdr);
    return 204;
}

static struct sl_eio *
session_new(struct sl_eio_endpoint *ep, bool websocket)
{
    struct sl_eio_server *srv = ep->srv;
    struct sl_eio *s = sl_calloc(1, sizeof(*s));
    s->ep = ep;
    s->ud = ep->ud;
    s->state = S_OPEN;
    if (websocket)
        s->flags |= EF_WS;
    sl_list_init(&s->link);
    sl_timeq_node_init(&s->hb);
    do
        make_sid(s->sid, srv->opt.worker);
    while (table_find(srv, s->sid) != NULL);
    table_add(srv, s);
    sl_loop_arm(srv->loop, &srv->ping_tq, &s->hb);
    return s;
}

static void
opened(struct sl_eio *s, const struct sl_http_req *req, struct sl_conn *c)
{
    s->flags |= EF_OPENED;
    log_session(s, "eio.open", NULL);
    s->ep->h->on_open(s->ud, s, req, c);
}

static int
accept_ws(struct sl_eio_server *srv, struct sl_conn *c, const struct sl_http_req *req,
          const struct sl_ws_handler *h, void *ud, struct sl_ws **out)
{
    const char *why;
    int status = sl_ws_check_handshake(req, &why);
    if (status != 0)
        return respond_error(srv, c, req, status, E_BAD_REQUEST, why,
                             status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                           : NULL);
    struct sl_ws_options o = {
        .max_message = srv->opt.max_payload,
        .allow_binary = true,
        .deflate = &srv->opt.deflate,
    };
    *out = sl_ws_accept(c, req, &o, h, ud);
    return 101;
}

static int
handshake(struct sl_eio_endpoint *ep, struct sl_conn *c, const struct sl_http_req *req,
          bool websocket)
{
    struct sl_eio_server *srv = ep->srv;
    if (!req->is_get)
        return respond_error(srv, c, req, 400, E_BAD_HANDSHAKE_METHOD, "Bad handshake method",
                             NULL);
    if (srv->draining) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", srv->opt.retry_after_s);
        return respond_error(srv, c, req, 503, E_BAD_REQUEST, "Server is shutting down", hdr);
    }
    if (websocket) {
        struct sl_ws *ws = NULL;
        if (!req->upgrade)
            return respond_error(srv, c, req, 400, E_BAD_REQUEST, "Bad request", NULL);
        int status = accept_ws(srv, c, req, &main_ws_handler, NULL, &ws);
        if (status != 101)
            return status;
        struct sl_eio *s = session_new(ep, true);
        s->ws = ws;
        sl_ws_set_user_data(ws, s);
        struct sl_buf *b = &srv->scratch;
        sl_buf_clear(b);
        sl_eio_write_open(b, s->sid, false, srv->opt.ping_interval_ms, srv->opt.ping_timeout_ms,
                          srv->opt.max_payload);
        sl_ws_send_text(ws, sl_buf_ptr(b), sl_buf_len(b));
        opened(s, req, c);
        return 101;
    }
    struct sl_eio *s = session_new(ep, false);
    struct sl_buf *b = &srv->scratch;
    sl_buf_clear(b);
    sl_eio_write_open(b, s->sid, true, srv->opt.ping_interval_ms, srv->opt.ping_timeout_ms,
                      srv->opt.max_payload);
    sl_http_respond(c, req, 200, POLL_CONTENT_TYPE,
                    sl_buf_len(&srv->cors) ? sl_buf_cstr(&srv->cors) : NULL, sl_buf_ptr(b),
                    sl_buf_len(b));
    opened(s, req, c);
    return 200;
}

/* A long-polling GET: answered now if there is something to say, else held. */
static int
poll(struct sl_eio *s, struct sl_conn *c, const struct sl_http_req *req)
{
    struct sl_eio_server *srv = srv_of(s);
    const char *cors = sl_buf_len(&srv->cors) ? sl_buf_cstr(&srv->cors) : NULL;
    /* A client polls again only once it has read the last answer: all sent before is in. */
    uint64_t waiting = 0;
    each_entry(&s->out, count_entry, &waiting);
    set_away(s, waiting);
    if (s->get) {
        /* One pending GET at a time: a second one ends the session (Engine.IO's rule). */
        respond_error(srv, c, req, 400, E_BAD_REQUEST, "Bad request", NULL);
        end(s, SL_EIO_R_ERROR);
        return 400;
    }
    /* Closing: the queue and a close packet. Probed: a noop, so that the client can pause. */
    const char *tail = NULL;
    if (s->state == S_CLOSING)
        tail = "1";
    else if (sl_buf_len(&s->out) == 0 && s->up && s->up->probed)
        tail = "6";
    if (tail || sl_buf_len(&s->out) > 0) {
        render_payload(s, true, tail);
        sl_http_respond(c, req, 200, POLL_CONTENT_TYPE, cors, sl_buf_ptr(&srv->scratch),
                        sl_buf_len(&srv->scratch));
        if (s->state == S_CLOSING)
            end(s, s->reason);
        return 200;
    }
    s->get = sl_http_hold(c, req, &get_handler, s);
    s->nresp++;
    if (cors)
        s->cors = sl_strdup(cors);
    return 200;
}

/* A long-polling POST: the client's packets. */
static int
push(struct sl_eio *s, struct sl_conn *c, const struct sl_http_req *req)
{
    struct sl_eio_server *srv = srv_of(s);
    if (sl_slice_ieq(sl_http_get_header(req, "Content-Type"), "application/octet-stream")) {
        respond_error(srv, c, req, 400, E_BAD_REQUEST, "Binary payloads are base64 in v4", NULL);
        end(s, SL_EIO_R_ERROR);
        return 400;
    }
    if (req->body.len > srv->opt.max_payload) {
        respond_error(srv, c, req, 413, E_BAD_REQUEST, "Payload too large", NULL);
        end(s, SL_EIO_R_ERROR);
        return 413;
    }
    struct sl_eio_payload it;
    struct sl_eio_packet pkt;
    int rc = 0;
    sl_eio_payload_init(&it, req->body.ptr, req->body.len);
    while (s->state == S_OPEN && (rc = sl_eio_payload_next(&it, &pkt)) > 0) {
        if (!pkt.binary) {
            on_packet(s, &pkt);
            continue;
        }
        struct sl_buf *bin = &srv->bin;
        sl_buf_clear(bin);
        char *dst = sl_buf_reserve(bin, sl_eio_base64_max(pkt.data.len));
        long n = sl_eio_base64_decode((uint8_t *)dst, pkt.data.ptr, pkt.data.len);
        sl_assert(n >= 0); /* the iterator checked it */
        deliver(s, dst, (size_t)n, true);
    }
    if (s->state == S_OPEN && rc < 0) {
        respond_error(srv, c, req, 400, E_BAD_REQUEST, sl_eio_strerror(rc), NULL);
        end(s, SL_EIO_R_PARSE);
        return 400;
    }
    sl_http_respond(c, req, 200, "text/html",
                    sl_buf_len(&srv->cors) ? sl_buf_cstr(&srv->cors) : NULL, "ok", 2);
    return 200;
}

static struct sl_eio_endpoint *
find_endpoint(struct sl_eio_server *srv, struct sl_slice path)
{
    for (size_t i = 0; i < srv->neps; i++) {
        struct sl_eio_endpoint *ep = &srv->eps[i];
        if (path.len == ep->plen && memcmp(path.ptr, ep->path, ep->plen) == 0)
            return ep;
        /* The same path without its trailing slash. */
        if (path.len + 1 == ep->plen && ep->path[ep->plen - 1] == '/' &&
            memcmp(path.ptr, ep->path, path.len) == 0)
            return ep;
    }
    return NULL;
}

int
sl_eio_handle(struct sl_eio_server *srv, struct sl_conn *c, const struct sl_http_req *req)
{
    struct sl_eio_endpoint *ep = find_endpoint(srv, req->path);
    if (ep == NULL)
        return SL_EIO_NOT_MINE;
    if (!cors_check(srv, req)) {
        sl_buf_clear(&srv->cors);
        return respond_error(srv, c, req, 403, E_FORBIDDEN, "Forbidden", NULL);
    }
    if (strcmp(req->method, "OPTIONS") == 0)
        return preflight(srv, c, req);

    char v[SL_EIO_SID_LEN + 2];
    if (sl_http_query_param(req, "EIO", v, sizeof(v)) != 1 || v[0] != '4')
        return respond_error(srv, c, req, 400, E_UNSUPPORTED_PROTOCOL_VERSION,
                             "Unsupported protocol version", NULL);
    bool websocket;
    long tn = sl_http_query_param(req, "transport", v, sizeof(v));
    if (tn > 0 && strcmp(v, "polling") == 0)
        websocket = false;
    else if (tn > 0 && strcmp(v, "websocket") == 0)
        websocket = true;
    else
        return respond_error(srv, c, req, 400, E_UNKNOWN_TRANSPORT, "Transport unknown", NULL);

    long sn = sl_http_query_param(req, "sid", v, sizeof(v));
    if (sn == -1)
        return handshake(ep, c, req, websocket);
    int owner = sn > 0 ? sid_worker(v, (size_t)sn) : -1;
    if (owner >= 0 && (unsigned)owner != srv->opt.worker && srv->opt.handoff &&
        srv->opt.handoff(srv->opt.ud, (unsigned)owner, c, req))
        return SL_EIO_HANDED_OFF;
    struct sl_eio *s = owner == (int)srv->opt.worker ? table_find(srv, v) : NULL;
    if (s == NULL || s->ep != ep || expired(s))
        return respond_error(srv, c, req, 400, E_UNKNOWN_SID, "Session ID unknown", NULL);

    if (websocket) {
        struct sl_ws *ws = NULL;
        if (!req->upgrade)
            return respond_error(srv, c, req, 400, E_BAD_REQUEST, "Bad request", NULL);
        if ((s->flags & EF_WS) || s->up || s->state != S_OPEN) {
            /* As the reference server: accepted, then closed. */
            int status = accept_ws(srv, c, req, &reject_ws_handler, NULL, &ws);
            if (status == 101)
                sl_ws_close(ws, SL_CLOSE_PROTOCOL_ERROR, "session already upgraded or upgrading");
            return status;
        }
        struct upgrade *up = sl_calloc(1, sizeof(*up));
        int status = accept_ws(srv, c, req, &probe_ws_handler, up, &ws);
        if (status != 101) {
            free(up);
            return status;
        }
        up->s = s;
        up->ws = ws;
        sl_timeq_node_init(&up->node);
        sl_loop_arm(srv->loop, &srv->upgrade_tq, &up->node);
        s->up = up;
        return 101;
    }
    if (s->flags & EF_WS)
        return respond_error(srv, c, req, 400, E_BAD_REQUEST, "Bad request", NULL);
    if (req->is_get)
        return poll(s, c, req);
    if (strcmp(req->method, "POST") == 0) {
        if (s->state != S_OPEN) {
            /* Closing: what the client says no longer matters. */
            sl_http_respond(c, req, 200, "text/html", NULL, "ok", 2);
            return 200;
        }
        return push(s, c, req);
    }
    return respond_error(srv, c, req, 400, E_BAD_REQUEST, "Bad request", NULL);
}

/* --- the server --------------------------------------------------------------------------------
 */

struct sl_eio_server *
sl_eio_server_new(struct sl_loop *loop, const struct sl_eio_options *opt)
{
    struct sl_eio_server *srv = sl_calloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->opt = *opt;
    if (srv->opt.upgrade_timeout_ms == 0)
        srv->opt.upgrade_timeout_ms = 10000;
    sl_assert(srv->opt.worker < 64 * 64);
    sl_list_init(&srv->pending);
    sl_timeq_init(&srv->ping_tq, opt->ping_interval_ms, on_ping_due);
    sl_timeq_init(&srv->wait_tq, opt->ping_timeout_ms, on_wait_over);
    sl_timeq_init(&srv->upgrade_tq, srv->opt.upgrade_timeout_ms, on_upgrade_timeout);
    sl_loop_add_timeq(loop, &srv->ping_tq);
    sl_loop_add_timeq(loop, &srv->wait_tq);
    sl_loop_add_timeq(loop, &srv->upgrade_tq);
    sl_timeq_init(&srv->soon_tq, 0, on_soon);
    sl_timeq_node_init(&srv->soon);
    sl_loop_add_timeq(loop, &srv->soon_tq);
    sl_loop_add_turn_hook(loop, on_turn, srv);
    return srv;
}

struct sl_eio_endpoint *
sl_eio_server_add(struct sl_eio_server *srv, const char *path, const struct sl_eio_handler *h,
                  void *ud)
{
    sl_assert(srv->neps < MAX_ENDPOINTS && path[0] == '/');
    struct sl_eio_endpoint *ep = &srv->eps[srv->neps++];
    ep->srv = srv;
    ep->path = path;
    ep->plen = strlen(path);
    ep->h = h;
    ep->ud = ud;
    return ep;
}

void
sl_eio_server_drain(struct sl_eio_server *srv)
{
    srv->draining = true;
}

void
sl_eio_server_close_all(struct sl_eio_server *srv)
{
    for (size_t i = 0; i < srv->tcap; i++) {
        /* A close may take a session out of the chain, never free it on the spot. */
        struct sl_eio *s = srv->table[i];
        while (s) {
            struct sl_eio *next = s->hnext;
            sl_eio_close(s);
            s = next;
        }
    }
}

void
sl_eio_server_shutdown(struct sl_eio_server *srv)
{
    srv->draining = true;
    for (size_t i = 0; i < srv->tcap; i++)
        while (srv->table[i])
            end(srv->table[i], SL_EIO_R_SHUTDOWN);
    /*
     * The callbacks now, not at the end of the turn: a worker that stops may stop its loop
     * (and its hooks) as soon as its connections are gone, and a long-polling session
     * without a GET has none.
     */
    on_turn(srv);
}

size_t
sl_eio_server_sessions(const struct sl_eio_server *srv)
{
    return srv->count;
}

void
sl_eio_server_free(struct sl_eio_server *srv)
{
    if (srv == NULL)
        return;
    /* Whatever is left never got its loop turn: free it without callbacks. */
    while (!sl_list_empty(&srv->pending)) {
        struct sl_eio *s = SL_CONTAINER_OF(srv->pending.next, struct sl_eio, link);
        sl_list_unlink(&s->link);
        sl_buf_free(&s->out);
        free(s->cors);
        free(s);
    }
    for (size_t i = 0; i < srv->tcap; i++) {
        while (srv->table[i]) {
            struct sl_eio *s = srv->table[i];
            srv->table[i] = s->hnext;
            sl_buf_free(&s->out);
            free(s->cors);
            free(s);
        }
    }
    free(srv->table);
    sl_buf_free(&srv->scratch);
    sl_buf_free(&srv->bin);
    sl_buf_free(&srv->cors);
    free(srv);
}
