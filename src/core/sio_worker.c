#include "core/sio_worker.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth/origin.h"
#include "base/alloc.h"
#include "config/config.h"
#include "core/server.h"
#include "core/sio_session.h"
#include "core/worker.h"
#include "net/engineio.h"
#include "net/handoff.h"
#include "net/http.h"
#include "net/loop.h"
#include "net/socketio.h"
#include "obs/log.h"
#include "obs/metrics.h"

#define ECHO_EIO_PATH "/engine.io/"
#define ECHO_SIO_PATH "/echo.io/"

struct sl_sio_worker {
    struct sl_worker *w;
    struct sl_eio_server *eio;
    struct sl_sio_server *sio;      /* socketio.path */
    struct sl_sio_server *echo_sio; /* /echo.io/ (debug.echo) */
    struct sl_handoff *handoff;
    struct sl_sio_nsp_sessions **nsps; /* the configured namespaces' sessions */
    size_t nnsps;
};

/* --- metrics: one Engine.IO session is one connection of its protocol ---------------------- */

static void *
count_open(struct sl_sio_worker *sw, enum sl_proto_kind kind)
{
    sl_counter_add(&sw->w->metrics.conn_opened[kind], 1);
    return NULL;
}

static void
count_close(struct sl_sio_worker *sw, enum sl_proto_kind kind)
{
    sl_counter_add(&sw->w->metrics.conn_closed[kind], 1);
}

static void *
sio_open(void *ud, struct sl_sio_conn *conn, const struct sl_http_req *req, struct sl_conn *c)
{
    (void)conn;
    count_open(ud, SL_PK_SOCKETIO);
    return sl_sio_sessions_conn_new(req, c);
}

static void
sio_close(void *ud, void *conn_ud, const char *reason)
{
    (void)reason;
    count_close(ud, SL_PK_SOCKETIO);
    sl_sio_sessions_conn_free(conn_ud);
}

static const struct sl_sio_conn_handler sio_conns = {.on_open = sio_open, .on_close = sio_close};

static void *
echo_sio_open(void *ud, struct sl_sio_conn *conn, const struct sl_http_req *req, struct sl_conn *c)
{
    (void)conn;
    (void)req;
    (void)c;
    return count_open(ud, SL_PK_ECHO);
}

static void
echo_sio_close(void *ud, void *conn_ud, const char *reason)
{
    (void)conn_ud;
    (void)reason;
    count_close(ud, SL_PK_ECHO);
}

static const struct sl_sio_conn_handler echo_sio_conns = {.on_open = echo_sio_open,
                                                          .on_close = echo_sio_close};

/* --- the configured namespaces ------------------------------------------------------------- */

static void
unserved_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    (void)ud;
    (void)ci;
    sl_sio_refuse(s, SL_SLICE("{\"message\":\"Namespace not served yet\"}"));
}

static void
unserved_event(void *ud, struct sl_sio_socket *s, const struct sl_sio_event *ev)
{
    (void)ud;
    (void)s;
    (void)ev;
}

static void
unserved_disconnect(void *ud, struct sl_sio_socket *s, const char *reason)
{
    (void)ud;
    (void)s;
    (void)reason;
}

static const struct sl_sio_nsp_handler unserved = {
    .on_connect = unserved_connect,
    .on_event = unserved_event,
    .on_disconnect = unserved_disconnect,
};

/* The handler of a configured namespace: where its dialects plug in. */
static const struct sl_sio_nsp_handler *
nsp_handler(const struct sl_config_namespace *ns)
{
    (void)ns;
    return &unserved;
}

/* --- /echo.io/: the reference server of the socket.io-protocol test suite ------------------ */

/*
 * The "auth" event follows the CONNECT reply ECHO_AUTH_DELAY_MS later, not in the same write:
 * the official test suite registers a listener for the next message only after the previous
 * one arrived, and misses an event that came in the same read as the reply (the reference
 * server sends it a loop turn later, once the reply's write completed; on a busy machine a
 * loop turn is not always enough, hence a delay long enough for the client to read).
 */
#define ECHO_AUTH_DELAY_MS 20

struct echo_sock {
    struct sl_sio_socket *s;
    struct sl_delay *d;
    char *auth;
    size_t len;
};

static void
echo_auth(void *arg)
{
    struct echo_sock *es = arg;
    es->d = NULL;
    sl_sio_emit(es->s,
                &(struct sl_sio_emit){.event = "auth", .args = sl_slice_make(es->auth, es->len)});
    free(es->auth);
    es->auth = NULL;
}

static void
echo_connect(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci)
{
    struct sl_sio_worker *sw = ud;
    struct echo_sock *es = sl_calloc(1, sizeof(*es));
    es->s = s;
    es->auth = sl_strndup(ci->auth.ptr, ci->auth.len);
    es->len = ci->auth.len;
    sl_sio_set_user_data(s, es);
    sl_sio_accept(s, NULL, NULL);
    es->d = sl_loop_delay(sw->w->loop, ECHO_AUTH_DELAY_MS, echo_auth, es);
}

static void
echo_event(void *ud, struct sl_sio_socket *s, const struct sl_sio_event *ev)
{
    (void)ud;
    if (strcmp(ev->name, "message") == 0)
        sl_sio_emit(s, &(struct sl_sio_emit){.event = "message-back",
                                             .args = ev->args,
                                             .attachments = ev->attachments,
                                             .nattachments = ev->nattachments});
    else if (strcmp(ev->name, "message-with-ack") == 0 && ev->ack >= 0)
        sl_sio_ack(s, (uint64_t)ev->ack, ev->args, ev->attachments, ev->nattachments);
}

static void
echo_disconnect(void *ud, struct sl_sio_socket *s, const char *reason)
{
    (void)s;
    (void)reason;
    struct echo_sock *es = ud;
    if (es->d)
        sl_delay_cancel(es->d);
    free(es->auth);
    free(es);
}

static const struct sl_sio_nsp_handler echo_nsp = {
    .on_connect = echo_connect,
    .on_event = echo_event,
    .on_disconnect = echo_disconnect,
};

/* --- /engine.io/: every message back ------------------------------------------------------- */

static void
eecho_open(void *ud, struct sl_eio *s, const struct sl_http_req *req, struct sl_conn *c)
{
    (void)s;
    (void)req;
    (void)c;
    count_open(ud, SL_PK_ECHO);
}

static void
eecho_message(void *ud, struct sl_eio *s, const char *data, size_t len, bool binary)
{
    (void)ud;
    sl_eio_send(s, data, len, binary);
}

static void
eecho_close(void *ud, struct sl_eio *s, const char *reason)
{
    (void)s;
    (void)reason;
    count_close(ud, SL_PK_ECHO);
}

static const struct sl_eio_handler eecho = {
    .on_open = eecho_open,
    .on_message = eecho_message,
    .on_close = eecho_close,
};

/* --- wiring ------------------------------------------------------------------------------------
 */

static bool
origin_allowed(void *ud, struct sl_slice origin, struct sl_slice host)
{
    struct sl_sio_worker *sw = ud;
    return sl_origin_allowed(sw->w->cfg, origin, host, false);
}

bool
sl_sio_worker_hand_to(struct sl_sio_worker *sw, unsigned owner, struct sl_conn *c,
                      const struct sl_http_req *req)
{
    struct sl_server *srv = sw->w->server;
    if (owner >= srv->nworkers || srv->workers[owner] == NULL || owner == sw->w->id)
        return false;
    sl_handoff_request(sw->handoff, c, req, srv->workers[owner]->sio->handoff);
    return true;
}

static bool
handoff(void *ud, unsigned owner, struct sl_conn *c, const struct sl_http_req *req)
{
    struct sl_sio_worker *sw = ud;
    struct sl_server *srv = sw->w->server;
    if (owner >= srv->nworkers || srv->workers[owner] == NULL)
        return false;
    sl_handoff_request(sw->handoff, c, req, srv->workers[owner]->sio->handoff);
    return true;
}

/* A connection moved here from another worker: counted like an accepted one. */
static bool
admit(void *ud)
{
    struct sl_sio_worker *sw = ud;
    if (sw->w->stopping)
        return false;
    atomic_fetch_add(&sw->w->server->connections, 1);
    return true;
}

static void
serve(void *ud, struct sl_conn *c)
{
    struct sl_sio_worker *sw = ud;
    sl_http_serve(&sw->w->http, c);
}

static const struct sl_handoff_ops handoff_ops = {.admit = admit, .serve = serve};

struct sl_sio_worker *
sl_sio_worker_new(struct sl_worker *w)
{
    const struct sl_config *cfg = w->cfg;
    struct sl_sio_worker *sw = sl_calloc(1, sizeof(*sw));
    sw->w = w;
    sw->handoff = sl_handoff_new(w->loop, &w->conns, &handoff_ops, sw);
    struct sl_eio_options eo = {
        .ping_interval_ms = cfg->socketio.ping_interval_ms,
        .ping_timeout_ms = cfg->socketio.ping_timeout_ms,
        .max_payload = cfg->socketio.max_payload,
        /* Over the pause threshold of the streams, with room for a last message. */
        .max_queued = 4 * cfg->limits.send_high_water + cfg->socketio.max_payload,
        .worker = w->id,
        .origin_allowed = origin_allowed,
        .handoff = handoff,
        .ud = sw,
        .retry_after_s = (unsigned)((cfg->shutdown.retry_after_ms + 999) / 1000),
        .deflate = w->ws_deflate,
    };
    sw->eio = sl_eio_server_new(w->loop, &eo);
    struct sl_sio_options so = {
        .connect_timeout_ms = cfg->socketio.connect_timeout_ms,
        .recovery = cfg->socketio.recovery,
        .max_binary = cfg->socketio.max_payload,
    };
    sw->sio = sl_sio_server_new(sw->eio, w->loop, cfg->socketio.path, &so, &sio_conns, sw);
    sw->nsps = sl_calloc(cfg->socketio.nnamespaces + 1, sizeof(*sw->nsps));
    for (size_t i = 0; i < cfg->socketio.nnamespaces; i++) {
        const struct sl_config_namespace *ns = &cfg->socketio.namespaces[i];
        const char *why = NULL;
        struct sl_sio_nsp_sessions *n = sl_sio_sessions_new(w, ns, &why);
        if (n == NULL) {
            /* A dialect this build does not serve: its CONNECTs are refused, said once. */
            sl_log_msg(SL_LOG_WARN, "socketio.namespace", "%s: dialect \"%s\" is not available",
                       ns->name, why);
            sl_sio_server_add_nsp(sw->sio, ns->name, nsp_handler(ns), sw);
            continue;
        }
        sw->nsps[sw->nnsps++] = n;
        sl_sio_server_add_nsp(sw->sio, ns->name, &sl_sio_sessions_handler, n);
    }
    if (cfg->debug.echo) {
        sl_eio_server_add(sw->eio, ECHO_EIO_PATH, &eecho, sw);
        so.recovery = false;
        sw->echo_sio = sl_sio_server_new(sw->eio, w->loop, ECHO_SIO_PATH, &so, &echo_sio_conns, sw);
        sl_sio_server_add_nsp(sw->echo_sio, "/", &echo_nsp, sw);
        sl_sio_server_add_nsp(sw->echo_sio, "/custom", &echo_nsp, sw);
    }
    return sw;
}

int
sl_sio_worker_handle(struct sl_sio_worker *sw, struct sl_conn *c, struct sl_http_req *req)
{
    return sl_eio_handle(sw->eio, c, req);
}

static bool
has_prefix(struct sl_slice path, const char *prefix)
{
    size_t n = strlen(prefix);
    return path.len >= n && memcmp(path.ptr, prefix, n) == 0;
}

bool
sl_sio_worker_owns(const struct sl_sio_worker *sw, struct sl_slice path)
{
    const struct sl_config *cfg = sw->w->cfg;
    return has_prefix(path, cfg->socketio.path) ||
           (cfg->debug.echo &&
            (has_prefix(path, ECHO_EIO_PATH) || has_prefix(path, ECHO_SIO_PATH)));
}

struct sl_sio_server *
sl_sio_worker_server(struct sl_sio_worker *sw)
{
    return sw->sio;
}

void
sl_sio_worker_drain(struct sl_sio_worker *sw)
{
    sl_eio_server_drain(sw->eio);
    sl_eio_server_close_all(sw->eio);
}

void
sl_sio_worker_stop(struct sl_sio_worker *sw)
{
    sl_handoff_stop(sw->handoff);
    sl_eio_server_shutdown(sw->eio);
}

void
sl_sio_worker_free(struct sl_sio_worker *sw)
{
    if (sw == NULL)
        return;
    sl_sio_server_free(sw->sio);
    sl_sio_server_free(sw->echo_sio);
    for (size_t i = 0; i < sw->nnsps; i++)
        sl_sio_sessions_free(sw->nsps[i]);
    free(sw->nsps);
    sl_eio_server_free(sw->eio);
    sl_handoff_free(sw->handoff);
    free(sw);
}
