#include "net/socketio.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/jsonw.h"
#include "base/timeq.h"
#include "net/engineio.h"
#include "net/loop.h"
#include "net/siocodec.h"
#include "obs/log.h"

const char SL_SIO_R_CLIENT_NSP[] = "client namespace disconnect";

#define MAX_NSPS 16
#define MAX_ATTACHMENTS 64

enum { K_PENDING, K_CONNECTED, K_GONE };

struct sl_sio_nsp {
    const char *name;
    size_t len;
    const struct sl_sio_nsp_handler *h;
    void *ud;
};

/* A binary packet waiting for its attachments (within connect_timeout). */
struct partial {
    struct sl_timeq_node node;
    struct sl_sio_conn *conn;
    struct sl_buf text;  /* the packet, copied */
    struct sl_buf bytes; /* the attachments so far, one after the other */
    unsigned want, got;
    size_t ends[]; /* where each attachment ends in bytes */
};

struct sl_sio_conn {
    struct sl_sio_server *srv;
    struct sl_eio *eio; /* NULL once the Engine.IO session is over */
    void *ud;           /* the connection handler's state */
    struct sl_sio_socket *sockets;
    struct partial *partial;
    struct sl_timeq_node ct; /* connect timeout */
    uint16_t busy;           /* callbacks on the stack: sockets and conn stay allocated */
    bool dead;               /* the Engine.IO session is over: free once not busy */
};

struct sl_sio_socket {
    struct sl_sio_socket *next;
    struct sl_sio_conn *conn;
    struct sl_sio_nsp *nsp;
    void *ud;
    uint32_t next_ack;
    uint8_t state;
    char sid[SL_SIO_ID_LEN + 1];
    char pid[SL_SIO_ID_LEN + 1];
};

struct sl_sio_server {
    struct sl_eio_server *eio;
    struct sl_loop *loop;
    struct sl_sio_options opt;
    const struct sl_sio_conn_handler *ch;
    void *ud;
    struct sl_sio_nsp nsps[MAX_NSPS];
    size_t nnsps;
    struct sl_timeq connect_tq;
    struct sl_timeq attach_tq; /* a binary packet's attachments */
    struct sl_buf out;         /* packets being written */
    struct sl_buf name;        /* the event name being decoded */
};

/* --- ids ---------------------------------------------------------------------------------- */

static const char id_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void
make_id(char *out)
{
    uint8_t rnd[SL_SIO_ID_LEN];
    sl_random(rnd, sizeof(rnd));
    for (size_t i = 0; i < SL_SIO_ID_LEN; i++)
        out[i] = id_chars[rnd[i] & 63];
    out[SL_SIO_ID_LEN] = '\0';
}

/* Copies an id the application hands back (one issued here), or makes a new one. */
static void
take_id(char *out, const char *given)
{
    if (given != NULL && strlen(given) == SL_SIO_ID_LEN &&
        strspn(given, id_chars) == SL_SIO_ID_LEN) {
        memcpy(out, given, SL_SIO_ID_LEN + 1);
        return;
    }
    make_id(out);
}

/* --- lifetime ----------------------------------------------------------------------------- */

static void
free_partial(struct sl_sio_conn *c)
{
    if (c->partial == NULL)
        return;
    sl_timeq_disarm(&c->partial->node);
    sl_buf_free(&c->partial->text);
    sl_buf_free(&c->partial->bytes);
    free(c->partial);
    c->partial = NULL;
}

static void
enter(struct sl_sio_conn *c)
{
    c->busy++;
}

/* Frees the sockets that went while callbacks were running, and the connection if dead. */
static void
leave(struct sl_sio_conn *c)
{
    if (--c->busy > 0)
        return;
    struct sl_sio_socket **pp = &c->sockets;
    while (*pp) {
        struct sl_sio_socket *s = *pp;
        if (s->state == K_GONE) {
            *pp = s->next;
            free(s);
        } else {
            pp = &s->next;
        }
    }
    if (c->dead) {
        sl_timeq_disarm(&c->ct);
        free_partial(c);
        free(c);
    }
}

/* The socket is gone for the application; its memory goes at the next leave(). */
static void
drop_socket(struct sl_sio_socket *s)
{
    s->state = K_GONE;
    enter(s->conn);
    leave(s->conn);
}

static struct sl_sio_socket *
find_socket(struct sl_sio_conn *c, struct sl_slice nsp)
{
    for (struct sl_sio_socket *s = c->sockets; s; s = s->next)
        if (s->state != K_GONE && s->nsp->len == nsp.len &&
            memcmp(s->nsp->name, nsp.ptr, nsp.len) == 0)
            return s;
    return NULL;
}

static struct sl_sio_nsp *
find_nsp(struct sl_sio_server *srv, struct sl_slice name)
{
    for (size_t i = 0; i < srv->nnsps; i++)
        if (srv->nsps[i].len == name.len && memcmp(srv->nsps[i].name, name.ptr, name.len) == 0)
            return &srv->nsps[i];
    return NULL;
}

static void
protocol_error(struct sl_sio_conn *c, const char *why)
{
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "sio.protocol_error")) {
        sl_log_str(&r, "sid", c->eio ? sl_eio_sid(c->eio) : NULL);
        sl_log_str(&r, "error", why);
        sl_log_end(&r);
    }
    free_partial(c);
    if (c->eio)
        sl_eio_fail(c->eio);
}

/* --- writing ------------------------------------------------------------------------------ */

static struct sl_buf *
begin(struct sl_sio_conn *c, enum sl_sio_type type, const struct sl_sio_nsp *nsp,
      struct sl_slice nsp_name, unsigned attachments, int64_t id)
{
    struct sl_buf *b = &c->srv->out;
    sl_buf_clear(b);
    sl_sio_write_head(b, type, nsp ? sl_slice_make(nsp->name, nsp->len) : nsp_name, attachments,
                      id);
    return b;
}

static void
send_out(struct sl_sio_conn *c, const struct sl_slice *attachments, size_t n)
{
    struct sl_buf *b = &c->srv->out;
    if (c->eio == NULL)
        return;
    sl_eio_send(c->eio, sl_buf_ptr(b), sl_buf_len(b), false);
    for (size_t i = 0; i < n && c->eio; i++)
        sl_eio_send(c->eio, attachments[i].ptr, attachments[i].len, true);
}

void
sl_sio_accept(struct sl_sio_socket *s, const char *pid, const char *sid)
{
    struct sl_sio_conn *c = s->conn;
    if (s->state != K_PENDING)
        return;
    s->state = K_CONNECTED;
    take_id(s->sid, sid);
    if (c->srv->opt.recovery)
        take_id(s->pid, pid);
    struct sl_buf *b = begin(c, SL_SIO_CONNECT, s->nsp, SL_SLICE("/"), 0, -1);
    SL_JSONW_LIT(b, "{\"sid\":\"");
    sl_buf_append(b, s->sid, SL_SIO_ID_LEN);
    if (c->srv->opt.recovery) {
        SL_JSONW_LIT(b, "\",\"pid\":\"");
        sl_buf_append(b, s->pid, SL_SIO_ID_LEN);
    }
    SL_JSONW_LIT(b, "\"}");
    send_out(c, NULL, 0);
    sl_timeq_disarm(&c->ct);
}

void
sl_sio_refuse(struct sl_sio_socket *s, struct sl_slice data)
{
    struct sl_sio_conn *c = s->conn;
    if (s->state != K_PENDING)
        return;
    struct sl_buf *b = begin(c, SL_SIO_CONNECT_ERROR, s->nsp, SL_SLICE("/"), 0, -1);
    sl_buf_append(b, data.ptr, data.len);
    send_out(c, NULL, 0);
    drop_socket(s);
}

int64_t
sl_sio_emit(struct sl_sio_socket *s, const struct sl_sio_emit *e)
{
    struct sl_sio_conn *c = s->conn;
    if (s->state != K_CONNECTED || c->eio == NULL)
        return -1;
    int64_t id = e->want_ack ? (int64_t)s->next_ack++ : -1;
    struct sl_buf *b = begin(c, e->nattachments ? SL_SIO_BINARY_EVENT : SL_SIO_EVENT, s->nsp,
                             SL_SLICE("/"), (unsigned)e->nattachments, id);
    sl_sio_write_event_data(b, e->event, strlen(e->event), e->args,
                            e->offset ? sl_slice_make(e->offset, strlen(e->offset))
                                      : sl_slice_make(NULL, 0));
    send_out(c, e->attachments, e->nattachments);
    return e->want_ack ? id : 0;
}

void
sl_sio_ack(struct sl_sio_socket *s, uint64_t id, struct sl_slice args,
           const struct sl_slice *attachments, size_t nattachments)
{
    struct sl_sio_conn *c = s->conn;
    if (s->state != K_CONNECTED || c->eio == NULL)
        return;
    struct sl_buf *b = begin(c, nattachments ? SL_SIO_BINARY_ACK : SL_SIO_ACK, s->nsp,
                             SL_SLICE("/"), (unsigned)nattachments, (int64_t)id);
    sl_sio_write_ack_data(b, args);
    send_out(c, attachments, nattachments);
}

void
sl_sio_disconnect(struct sl_sio_socket *s)
{
    struct sl_sio_conn *c = s->conn;
    if (s->state == K_GONE)
        return;
    begin(c, SL_SIO_DISCONNECT, s->nsp, SL_SLICE("/"), 0, -1);
    send_out(c, NULL, 0);
    drop_socket(s);
}

void
sl_sio_close(struct sl_sio_conn *conn)
{
    if (conn->eio)
        sl_eio_close(conn->eio);
}

void
sl_sio_set_user_data(struct sl_sio_socket *s, void *ud)
{
    s->ud = ud;
}

struct sl_sio_conn *
sl_sio_socket_conn(const struct sl_sio_socket *s)
{
    return s->conn;
}

const char *
sl_sio_socket_nsp(const struct sl_sio_socket *s)
{
    return s->nsp->name;
}

const char *
sl_sio_socket_id(const struct sl_sio_socket *s)
{
    return s->sid;
}

const char *
sl_sio_socket_pid(const struct sl_sio_socket *s)
{
    return s->pid;
}

size_t
sl_sio_queued(const struct sl_sio_socket *s)
{
    return s->conn->eio ? sl_eio_queued(s->conn->eio) : 0;
}

uint64_t
sl_sio_sent(const struct sl_sio_socket *s)
{
    return s->conn->eio ? sl_eio_sent(s->conn->eio) : 0;
}

uint64_t
sl_sio_delivered(const struct sl_sio_socket *s)
{
    return s->conn->eio ? sl_eio_delivered(s->conn->eio) : 0;
}

const char *
sl_sio_conn_eio_sid(const struct sl_sio_conn *conn)
{
    return conn->eio ? sl_eio_sid(conn->eio) : "";
}

/* --- reading ------------------------------------------------------------------------------ */

static void
on_connect_packet(struct sl_sio_conn *c, const struct sl_sio_packet *pkt)
{
    struct sl_sio_server *srv = c->srv;
    struct sl_sio_nsp *nsp = find_nsp(srv, pkt->nsp);
    if (nsp == NULL) {
        struct sl_buf *b = begin(c, SL_SIO_CONNECT_ERROR, NULL, pkt->nsp, 0, -1);
        SL_JSONW_LIT(b, "{\"message\":\"Invalid namespace\"}");
        send_out(c, NULL, 0);
        return;
    }
    struct sl_sio_socket *s = sl_calloc(1, sizeof(*s));
    s->conn = c;
    s->nsp = nsp;
    s->ud = nsp->ud;
    s->state = K_PENDING;
    s->next = c->sockets;
    c->sockets = s;

    char pid[SL_SIO_MAX_RECOVERY + 1], offset[SL_SIO_MAX_RECOVERY + 1];
    struct sl_sio_connect_info ci = {
        .auth = pkt->data.len ? pkt->data : SL_SLICE("{}"),
        .conn_ud = c->ud,
    };
    if (srv->opt.recovery && pkt->data.len) {
        if (sl_sio_member_string(pkt->data, "pid", pid, sizeof(pid)) > 0)
            ci.pid = pid;
        if (sl_sio_member_string(pkt->data, "offset", offset, sizeof(offset)) > 0)
            ci.offset = offset;
    }
    nsp->h->on_connect(nsp->ud, s, &ci);
}

static void
dispatch(struct sl_sio_conn *c, const struct sl_sio_packet *pkt, const struct sl_slice *att,
         size_t natt)
{
    struct sl_sio_socket *s = find_socket(c, pkt->nsp);
    if (pkt->type == SL_SIO_CONNECT) {
        if (s != NULL)
            protocol_error(c, "CONNECT to a namespace already joined");
        else
            on_connect_packet(c, pkt);
        return;
    }
    if (pkt->type == SL_SIO_CONNECT_ERROR) {
        protocol_error(c, "CONNECT_ERROR from the client");
        return;
    }
    if (s == NULL || s->state != K_CONNECTED) {
        protocol_error(c, "packet for a namespace not joined");
        return;
    }
    const struct sl_sio_nsp_handler *h = s->nsp->h;
    switch (pkt->type) {
    case SL_SIO_DISCONNECT:
        s->state = K_GONE;
        h->on_disconnect(s->ud, s, SL_SIO_R_CLIENT_NSP);
        break;
    case SL_SIO_EVENT:
    case SL_SIO_BINARY_EVENT: {
        struct sl_buf *nb = &c->srv->name;
        sl_buf_clear(nb);
        char *name = sl_buf_reserve(nb, pkt->name.len + 1);
        long n = sl_sio_string(pkt->name, name, pkt->name.len + 1);
        sl_assert(n >= 0); /* a string or number token, decoded no longer than it is */
        struct sl_sio_event ev = {
            .name = name,
            .name_len = (size_t)n,
            .args = pkt->args,
            .ack = pkt->id,
            .attachments = att,
            .nattachments = natt,
        };
        h->on_event(s->ud, s, &ev);
        break;
    }
    case SL_SIO_ACK:
    case SL_SIO_BINARY_ACK:
        if (h->on_ack)
            h->on_ack(s->ud, s, (uint64_t)pkt->id, pkt->args, att, natt);
        break;
    default:
        break;
    }
}

/* The last attachment arrived: the packet goes out with all of them. */
static void
complete_partial(struct sl_sio_conn *c)
{
    struct partial *p = c->partial;
    struct sl_slice att[MAX_ATTACHMENTS];
    struct sl_sio_packet pkt;
    int rc = sl_sio_decode(sl_buf_ptr(&p->text), sl_buf_len(&p->text), p->want, &pkt);
    sl_assert(rc == 0); /* it decoded when it came */
    size_t start = 0;
    for (unsigned i = 0; i < p->want; i++) {
        att[i] = sl_slice_make(sl_buf_ptr(&p->bytes) + start, p->ends[i] - start);
        start = p->ends[i];
    }
    /* Detached first: a callback may send more packets, even another binary one. */
    c->partial = NULL;
    sl_timeq_disarm(&p->node);
    dispatch(c, &pkt, att, p->want);
    sl_buf_free(&p->text);
    sl_buf_free(&p->bytes);
    free(p);
}

static void
on_binary(struct sl_sio_conn *c, const char *data, size_t len)
{
    struct partial *p = c->partial;
    if (p == NULL) {
        protocol_error(c, "binary data without a binary packet");
        return;
    }
    if (sl_buf_len(&p->bytes) + len > c->srv->opt.max_binary) {
        protocol_error(c, "attachments too large");
        return;
    }
    sl_buf_append(&p->bytes, data, len);
    p->ends[p->got++] = sl_buf_len(&p->bytes);
    if (p->got == p->want)
        complete_partial(c);
}

static void
on_text(struct sl_sio_conn *c, const char *data, size_t len)
{
    struct sl_sio_packet pkt;
    if (c->partial) {
        protocol_error(c, "a packet where an attachment was due");
        return;
    }
    int rc = sl_sio_decode(data, len, c->srv->opt.max_attachments, &pkt);
    if (rc != 0) {
        protocol_error(c, sl_sio_strerror(rc));
        return;
    }
    if ((pkt.type == SL_SIO_BINARY_EVENT || pkt.type == SL_SIO_BINARY_ACK) && pkt.attachments > 0) {
        struct partial *p = sl_calloc(1, sizeof(*p) + pkt.attachments * sizeof(size_t));
        p->want = pkt.attachments;
        p->conn = c;
        sl_buf_append(&p->text, data, len);
        sl_timeq_node_init(&p->node);
        sl_loop_arm(c->srv->loop, &c->srv->attach_tq, &p->node);
        c->partial = p;
        return;
    }
    dispatch(c, &pkt, NULL, 0);
}

/* --- the Engine.IO endpoint ----------------------------------------------------------------- */

static void
e_open(void *ud, struct sl_eio *e, const struct sl_http_req *req, struct sl_conn *tcp)
{
    struct sl_sio_server *srv = ud;
    struct sl_sio_conn *c = sl_calloc(1, sizeof(*c));
    c->srv = srv;
    c->eio = e;
    sl_timeq_node_init(&c->ct);
    sl_eio_set_user_data(e, c);
    sl_loop_arm(srv->loop, &srv->connect_tq, &c->ct);
    if (srv->ch && srv->ch->on_open)
        c->ud = srv->ch->on_open(srv->ud, c, req, tcp);
}

static void
e_message(void *ud, struct sl_eio *e, const char *data, size_t len, bool binary)
{
    (void)e;
    struct sl_sio_conn *c = ud;
    enter(c);
    if (binary)
        on_binary(c, data, len);
    else
        on_text(c, data, len);
    leave(c);
}

static void
e_drain(void *ud, struct sl_eio *e)
{
    (void)e;
    struct sl_sio_conn *c = ud;
    enter(c);
    for (struct sl_sio_socket *s = c->sockets; s; s = s->next)
        if (s->state == K_CONNECTED && s->nsp->h->on_drain)
            s->nsp->h->on_drain(s->ud, s);
    leave(c);
}

static void
e_close(void *ud, struct sl_eio *e, const char *reason)
{
    (void)e;
    struct sl_sio_conn *c = ud;
    struct sl_sio_server *srv = c->srv;
    enter(c);
    c->eio = NULL;
    c->dead = true;
    sl_timeq_disarm(&c->ct);
    free_partial(c);
    for (struct sl_sio_socket *s = c->sockets; s; s = s->next) {
        if (s->state == K_GONE)
            continue;
        s->state = K_GONE;
        s->nsp->h->on_disconnect(s->ud, s, reason);
    }
    if (srv->ch && srv->ch->on_close)
        srv->ch->on_close(srv->ud, c->ud, reason);
    leave(c);
}

static const struct sl_eio_handler eio_handler = {
    .on_open = e_open,
    .on_message = e_message,
    .on_drain = e_drain,
    .on_close = e_close,
};

static void
on_connect_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_sio_conn *c = SL_CONTAINER_OF(n, struct sl_sio_conn, ct);
    for (struct sl_sio_socket *s = c->sockets; s; s = s->next)
        if (s->state == K_CONNECTED)
            return;
    if (c->eio)
        sl_eio_close(c->eio);
}

static void
on_attach_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct partial *p = SL_CONTAINER_OF(n, struct partial, node);
    protocol_error(p->conn, "attachments not received in time");
}

struct sl_sio_server *
sl_sio_server_new(struct sl_eio_server *eio, struct sl_loop *loop, const char *path,
                  const struct sl_sio_options *opt, const struct sl_sio_conn_handler *ch, void *ud)
{
    struct sl_sio_server *srv = sl_calloc(1, sizeof(*srv));
    srv->eio = eio;
    srv->loop = loop;
    srv->opt = *opt;
    if (srv->opt.max_attachments == 0)
        srv->opt.max_attachments = 10;
    if (srv->opt.max_attachments > MAX_ATTACHMENTS)
        srv->opt.max_attachments = MAX_ATTACHMENTS;
    if (srv->opt.max_binary == 0)
        srv->opt.max_binary = 1000000;
    srv->ch = ch;
    srv->ud = ud;
    sl_timeq_init(&srv->connect_tq, opt->connect_timeout_ms, on_connect_timeout);
    sl_loop_add_timeq(loop, &srv->connect_tq);
    sl_timeq_init(&srv->attach_tq, opt->connect_timeout_ms, on_attach_timeout);
    sl_loop_add_timeq(loop, &srv->attach_tq);
    sl_eio_server_add(eio, path, &eio_handler, srv);
    return srv;
}

void
sl_sio_server_free(struct sl_sio_server *srv)
{
    if (srv == NULL)
        return;
    sl_buf_free(&srv->out);
    sl_buf_free(&srv->name);
    free(srv);
}

struct sl_sio_nsp *
sl_sio_server_add_nsp(struct sl_sio_server *srv, const char *name,
                      const struct sl_sio_nsp_handler *h, void *ud)
{
    sl_assert(srv->nnsps < MAX_NSPS && name[0] == '/');
    struct sl_sio_nsp *n = &srv->nsps[srv->nnsps++];
    n->name = name;
    n->len = strlen(name);
    n->h = h;
    n->ud = ud;
    return n;
}
