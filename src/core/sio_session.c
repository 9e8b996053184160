#include "core/sio_session.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth/auth.h"
#include "auth/throttle.h"
#include "base/alloc.h"
#include "base/jsonw.h"
#include "config/config.h"
#include "core/server.h"
#include "core/session.h"
#include "core/worker.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/socketio.h"
#include "obs/log.h"
#include "proto/dialects.h"

#define MAX_NSP_DIALECTS 4

struct sl_sio_nsp_sessions {
    struct sl_worker *w;
    const struct sl_config_namespace *ns;
    const struct sl_proto *protos[MAX_NSP_DIALECTS];
    unsigned nprotos;
};

/* What a connection's handshake said, for its namespaces. Kept for the connection's life,
 * so kept small (every idle Socket.IO client holds one): the address as it came, its text
 * made only when an `auth: none` namespace names its user after it. */
struct conn_info {
    char *token; /* ?token= or Bearer, or NULL */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
    bool have_peer;
};

/* One joined namespace: the session's transport. */
struct sio_t {
    struct sl_sio_socket *s;
    struct sl_sio_nsp_sessions *n;
    struct sl_session *session;
    bool accepted;
    bool refused; /* closed before the CONNECT was answered: refuse it */
    char *why;    /* the reason, when refused (rare: not worth a buffer in every socket) */
    char pid[24]; /* the session recovered from another node (its CONNECT waits) */
};

static void recovered_remote(void *ud, bool recovered);

/* The client's address without its port ("?" if unknown), as anon:<address> names it. */
static void
peer_ip(const struct conn_info *cc, char *out, size_t outlen)
{
    snprintf(out, outlen, "?");
    if (cc == NULL || !cc->have_peer)
        return;
    const void *a = cc->peer.sa.sa_family == AF_INET ? (const void *)&cc->peer.in.sin_addr
                                                     : (const void *)&cc->peer.in6.sin6_addr;
    if (inet_ntop(cc->peer.sa.sa_family, a, out, (socklen_t)outlen) == NULL)
        snprintf(out, outlen, "?");
}

/* --- the transport ------------------------------------------------------------------------- */

static void
t_send(void *tp, const char *event, const char *msg, size_t len, const char *offset)
{
    struct sio_t *t = tp;
    if (!t->accepted || event == NULL)
        return;
    sl_sio_emit(t->s, &(struct sl_sio_emit){
                          .event = event, .args = sl_slice_make(msg, len), .offset = offset});
}

static void
t_close(void *tp, uint16_t code, const char *reason)
{
    (void)code;
    struct sio_t *t = tp;
    if (!t->accepted) {
        /* Answered as a CONNECT_ERROR by whoever is deciding the CONNECT. */
        t->refused = true;
        free(t->why);
        t->why = sl_strdup(reason ? reason : "refused");
        return;
    }
    /* The whole Engine.IO connection: the client reconnects by itself (never a DISCONNECT). */
    sl_sio_close(sl_sio_socket_conn(t->s));
}

static size_t
t_queued(void *tp)
{
    struct sio_t *t = tp;
    return sl_sio_queued(t->s);
}

/* Delivery: a finished stream is kept until its end has reached the client (recovery). */
static uint64_t
t_written(void *tp)
{
    struct sio_t *t = tp;
    return sl_sio_sent(t->s);
}

static uint64_t
t_acked(void *tp)
{
    struct sio_t *t = tp;
    return sl_sio_delivered(t->s);
}

static const struct sl_transport_ops ops = {
    .send = t_send,
    .close = t_close,
    .queued = t_queued,
    .written = t_written,
    .acked = t_acked,
};

/* --- connecting ------------------------------------------------------------------------------ */

static void
refuse(struct sl_sio_socket *s, const char *message)
{
    struct sl_buf b = SL_BUF_INIT;
    SL_JSONW_LIT(&b, "{\"message\":");
    sl_jsonw_cstr(&b, message);
    sl_buf_append_byte(&b, '}');
    sl_sio_refuse(s, sl_slice_make(sl_buf_ptr(&b), sl_buf_len(&b)));
    sl_buf_free(&b);
}

/* The token of a CONNECT: its payload's {token}, else the handshake's. Owned by the caller. */
static char *
token_of(const struct sl_sio_connect_info *ci, const struct conn_info *cc)
{
    json_error_t e;
    json_t *auth = json_loadb(ci->auth.ptr, ci->auth.len, 0, &e);
    char *tok = NULL;
    json_t *t = json_object_get(auth, "token");
    if (json_is_string(t) && json_string_length(t) > 0)
        tok = sl_strndup(json_string_value(t), json_string_length(t));
    json_decref(auth);
    if (tok == NULL && cc && cc->token)
        tok = sl_strdup(cc->token);
    return tok;
}

static void
on_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    struct sl_sio_nsp_sessions *n = ud;
    struct sl_worker *w = n->w;
    const struct conn_info *cc = ci->conn_ud;
    struct sl_identity id;
    memset(&id, 0, sizeof(id));
    bool anonymous = n->ns->auth == SL_NSP_AUTH_NONE;
    if (anonymous) {
        char ip[64];
        peer_ip(cc, ip, sizeof(ip));
        snprintf(id.user, sizeof(id.user), "anon:%s", ip);
        snprintf(id.method, sizeof(id.method), "none");
    } else {
        char *tok = token_of(ci, cc);
        const char *reason = "no token";
        uint64_t wait = 0;
        int rc = tok ? sl_auth_verify_throttled(w->server->auth, w->server->throttle,
                                                cc && cc->have_peer ? (struct sockaddr *)&cc->peer
                                                                    : NULL,
                                                tok, strlen(tok), &id, &reason, &wait)
                     : -1;
        free(tok);
        if (rc != 0) {
            sl_counter_add(&w->metrics.auth_failures_total, 1);
            struct sl_logrec r;
            if (sl_log_begin(&r, SL_LOG_INFO, "auth.failed")) {
                sl_log_uint(&r, "worker", w->id);
                sl_log_str(&r, "namespace", n->ns->name);
                sl_log_str(&r, "reason", reason);
                sl_log_end(&r);
            }
            refuse(s, "Authentication failed");
            return;
        }
    }
    struct sio_t *t = sl_calloc(1, sizeof(*t));
    t->s = s;
    t->n = n;
    sl_sio_set_user_data(s, t);
    t->session = sl_session_new(&w->sessions, n->protos, n->nprotos, SL_PK__COUNT, t, &ops);
    sl_session_allow_models(t->session, n->ns->models, n->ns->nmodels);
    if (!sl_session_identify(t->session, &id, anonymous)) {
        refuse(s, t->refused && t->why ? t->why : "refused");
        sl_session_transport_closed(t->session, 4001);
        free(t->why);
        free(t);
        return;
    }
    /* Recovery: the pid is a recovery id of this user's; the session answers to it. */
    bool recover =
        w->cfg->socketio.recovery && ci->pid && sl_session_can_take_over(t->session, ci->pid);
    /* Not on this node: in cluster mode perhaps on another; the CONNECT waits for the answer. */
    if (!recover && w->cfg->socketio.recovery && ci->pid && strlen(ci->pid) < sizeof(t->pid) &&
        sl_session_recover_remote(t->session, ci->pid, ci->offset, recovered_remote, t) == 0) {
        snprintf(t->pid, sizeof(t->pid), "%s", ci->pid);
        return;
    }
    t->accepted = true;
    sl_sio_accept(s, recover ? ci->pid : sl_session_rid(t->session), NULL);
    if (w->cfg->socketio.recovery)
        sl_session_enable_offsets(t->session);
    /*
     * A recovery is welcomed once it has taken the earlier session over (sl_session_take_over
     * greets then), so that the welcome names the id the client keeps: ai:connected's clientId
     * must be the one a later ai:reconnect can name.
     */
    if (!recover || sl_session_take_over(t->session, ci->pid, ci->offset ? ci->offset : "0") != 0)
        sl_session_greet(t->session);
}

/* The answer of sl_session_recover_remote: the CONNECT is answered now. */
static void
recovered_remote(void *ud, bool recovered)
{
    struct sio_t *t = ud;
    t->accepted = true;
    sl_sio_accept(t->s, recovered ? t->pid : sl_session_rid(t->session), NULL);
    sl_session_enable_offsets(t->session);
    /* Greeted at the end of the take-over, under the id the client keeps (as on_connect's). */
}

static void
on_event(void *ud, struct sl_sio_socket *s, const struct sl_sio_event *ev)
{
    (void)s;
    struct sio_t *t = ud;
    sl_session_on_activity(t->session);
    sl_session_on_message(t->session, ev->name, ev->args.ptr, ev->args.len);
}

static void
on_drain(void *ud, struct sl_sio_socket *s)
{
    (void)s;
    struct sio_t *t = ud;
    sl_session_on_drain(t->session);
}

static void
on_disconnect(void *ud, struct sl_sio_socket *s, const char *reason)
{
    (void)s;
    (void)reason;
    struct sio_t *t = ud;
    sl_session_transport_closed(t->session, 1006);
    free(t->why);
    free(t);
}

const struct sl_sio_nsp_handler sl_sio_sessions_handler = {
    .on_connect = on_connect,
    .on_event = on_event,
    .on_drain = on_drain,
    .on_disconnect = on_disconnect,
};

/* --- namespaces and connections --------------------------------------------------------------- */

struct sl_sio_nsp_sessions *
sl_sio_sessions_new(struct sl_worker *w, const struct sl_config_namespace *ns, const char **why)
{
    struct sl_sio_nsp_sessions *n = sl_calloc(1, sizeof(*n));
    n->w = w;
    n->ns = ns;
    for (size_t i = 0; i < ns->ndialects && n->nprotos < MAX_NSP_DIALECTS; i++) {
        const struct sl_proto *p = sl_proto_by_dialect(ns->dialects[i]);
        if (p == NULL) {
            *why = ns->dialects[i];
            free(n);
            return NULL;
        }
        n->protos[n->nprotos++] = p;
    }
    if (n->nprotos == 0)
        n->protos[n->nprotos++] = sl_proto_by_dialect("native");
    return n;
}

void
sl_sio_sessions_free(struct sl_sio_nsp_sessions *n)
{
    free(n);
}

void *
sl_sio_sessions_conn_new(const struct sl_http_req *req, struct sl_conn *c)
{
    struct conn_info *cc = sl_calloc(1, sizeof(*cc));
    struct sockaddr_storage ss;
    if (sl_conn_peer_addr(c, &ss) == 0 && (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)) {
        memcpy(&cc->peer, &ss,
               ss.ss_family == AF_INET ? sizeof(cc->peer.in) : sizeof(cc->peer.in6));
        cc->have_peer = true;
    }
    size_t cap = req->query.len + 1;
    char *buf = sl_malloc(cap);
    if (sl_http_query_param(req, "token", buf, cap) > 0) {
        cc->token = buf;
    } else {
        free(buf);
        struct sl_slice a = sl_http_get_header(req, "Authorization");
        if (a.ptr && a.len > 7 && strncasecmp(a.ptr, "Bearer ", 7) == 0)
            cc->token = sl_strndup(a.ptr + 7, a.len - 7);
    }
    return cc;
}

void
sl_sio_sessions_conn_free(void *conn_ud)
{
    struct conn_info *cc = conn_ud;
    if (cc == NULL)
        return;
    free(cc->token);
    free(cc);
}
