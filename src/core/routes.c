#include "core/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/origin.h"
#include "base/alloc.h"
#include "config/config.h"
#include "core/http_api.h"
#include "core/server.h"
#include "core/sio_worker.h"
#include "core/worker.h"
#include "core/ws_transport.h"
#include "net/conn.h"
#include "net/engineio.h"
#include "net/files.h"
#include "net/http.h"
#include "net/ws.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "proto/dialects.h"
#include "proto/native.h"

/* --- the echo endpoint (Autobahn) ----------------------------------------------------- */

struct echo {
    struct sl_ws *ws;
    struct sl_worker *w;
};

static void
echo_text(void *ud, const char *msg, size_t len)
{
    struct echo *e = ud;
    sl_ws_send_text(e->ws, msg, len);
}

static void
echo_binary(void *ud, const char *msg, size_t len)
{
    struct echo *e = ud;
    sl_ws_send_binary(e->ws, msg, len);
}

static void
echo_closed(void *ud, uint16_t code)
{
    (void)code;
    struct echo *e = ud;
    sl_counter_add(&e->w->metrics.conn_closed[SL_PK_ECHO], 1);
    free(e);
}

static const struct sl_ws_handler echo_handler = {
    .on_text = echo_text,
    .on_binary = echo_binary,
    .on_closed = echo_closed,
};

static void
accept_echo(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req)
{
    struct sl_ws_options opt = {.max_message = w->cfg->limits.max_message_bytes,
                                .allow_binary = true,
                                .deflate = &w->ws_deflate};
    struct echo *e = sl_calloc(1, sizeof(*e));
    e->w = w;
    e->ws = sl_ws_accept(c, req, &opt, &echo_handler, e);
    sl_counter_add(&w->metrics.conn_opened[SL_PK_ECHO], 1);
}

/* --- WebSocket endpoints ------------------------------------------------------------------ */

/*
 * The token from ?token= or Authorization: Bearer, in a buffer the caller frees; NULL if
 * there is none, or if the query's is malformed (then *status and *why say so). A token
 * over the auth layer's limit is passed on whole, so that the session refuses it with a
 * reason (AUTH_FAILED "token too long", close 4001) instead of it being silently dropped.
 */
static char *
handshake_token(const struct sl_http_req *req, int *status, const char **why)
{
    /* The query bounds the decoded value (the URL is capped by limits.max_header_bytes). */
    size_t cap = req->query.len + 1;
    char *buf = sl_malloc(cap);
    long n = sl_http_query_param(req, "token", buf, cap);
    if (n > 0)
        return buf;
    free(buf);
    if (n == -2) {
        *status = 400;
        *why = "malformed token in the query (bad percent-encoding)";
        return NULL;
    }
    struct sl_slice auth = sl_http_get_header(req, "Authorization");
    if (auth.ptr && auth.len > 7 && strncasecmp(auth.ptr, "Bearer ", 7) == 0) {
        size_t len = auth.len - 7;
        const char *p = auth.ptr + 7;
        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        if (len > 0)
            return sl_strndup(p, len);
    }
    return NULL;
}

/* Checks shared by every WebSocket endpoint; answers and returns the status if refused, 0
 * if the upgrade may go ahead. */
static int
ws_admit(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req)
{
    const char *why;
    int status = sl_ws_check_handshake(req, &why);
    if (status == 426) {
        sl_http_respond_error(c, req, 426, why,
                              "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
        return 426;
    }
    if (status != 0) {
        sl_http_respond_error(c, req, status, why, NULL);
        return status;
    }
    struct sl_slice origin = sl_http_get_header(req, "Origin");
    struct sl_slice host = sl_http_get_header(req, "Host");
    if (!sl_origin_allowed(w->cfg, origin, host, false)) {
        sl_http_respond_error(c, req, 403, "origin not allowed", NULL);
        return 403;
    }
    if (atomic_load(&w->server->draining) || w->draining) {
        char hdr[64];
        snprintf(hdr, sizeof(hdr), "Retry-After: %llu\r\n",
                 (unsigned long long)(w->cfg->shutdown.retry_after_ms + 999) / 1000);
        sl_http_respond_error(c, req, 503, "server is shutting down", hdr);
        return 503;
    }
    return 0;
}

/* --- HTTP routes -------------------------------------------------------------------------- */

enum route_kind {
    R_WS,
    R_WS_ECHO,
    R_WS_CHAT,
    R_HEALTHZ,
    R_READYZ,
    R_HEALTH,    /* seed 002's /health */
    R_WS_HEALTH, /* seed 004's /websocket/health */
    R_METRICS,
    R_TEST_PAGE,
    R_FILES
};

enum { M_GET = 1, M_HEAD = 2, M_POST = 4 };

/*
 * What each path serves: its methods, the request body it takes (0: none, a body is refused
 * as soon as the request's head is in), and whether it is answered on a connection accepted
 * past limits.max_connections (liveness and readiness must be, or a full server would be
 * restarted for being busy). The last row is every other path (the test page's files).
 */
struct route {
    const char *path; /* exact; NULL: any other path */
    enum route_kind kind;
    unsigned methods;
    const char *allow; /* the Allow header of a 405 */
    uint64_t max_body;
    bool at_capacity;
};

#define ALLOW_GET "Allow: GET\r\n"
#define ALLOW_GET_HEAD "Allow: GET, HEAD\r\n"

static const struct route routes[] = {
    {"/ws", R_WS, M_GET, ALLOW_GET, 0, false},
    {"/ws/echo", R_WS_ECHO, M_GET, ALLOW_GET, 0, false},
    {"/healthz", R_HEALTHZ, M_GET | M_HEAD, ALLOW_GET_HEAD, 0, true},
    {"/health", R_HEALTH, M_GET | M_HEAD, ALLOW_GET_HEAD, 0, true},
    {"/websocket/health", R_WS_HEALTH, M_GET | M_HEAD, ALLOW_GET_HEAD, 0, false},
    {"/readyz", R_READYZ, M_GET | M_HEAD, ALLOW_GET_HEAD, 0, true},
    {"/metrics", R_METRICS, M_GET | M_HEAD, ALLOW_GET_HEAD, 0, false},
    {"/ws/test", R_TEST_PAGE, M_GET | M_HEAD, ALLOW_GET_HEAD, 0, false},
    {NULL, R_FILES, M_GET | M_HEAD, ALLOW_GET_HEAD, 0, false},
};

/* ws_chat.path (seed 002's WebSocket), configurable. */
static const struct route ws_chat_route = {NULL, R_WS_CHAT, M_GET, ALLOW_GET, 0, false};

static const struct route *
find_route(const struct sl_worker *w, struct sl_slice path)
{
    if (sl_slice_eq(path, w->cfg->ws_chat.path))
        return &ws_chat_route;
    for (size_t i = 0; i < SL_ARRAY_LEN(routes); i++) {
        const struct route *r = &routes[i];
        if (r->path == NULL)
            return r;
        if (r->kind == R_WS_ECHO && !w->cfg->debug.echo)
            continue;
        if (sl_slice_eq(path, r->path))
            return r;
    }
    return &routes[SL_ARRAY_LEN(routes) - 1];
}

static bool
method_allowed(const struct route *r, const struct sl_http_req *req)
{
    unsigned m = req->is_get                        ? M_GET
                 : req->is_head                     ? M_HEAD
                 : strcmp(req->method, "POST") == 0 ? M_POST
                                                    : 0;
    return (r->methods & m) != 0;
}

void
sl_routes_head(void *ud, const struct sl_http_req *head, struct sl_http_head_verdict *v)
{
    struct sl_worker *w = ud;
    /*
     * Engine.IO's long-polling POSTs carry packets: the Engine.IO layer enforces
     * socketio.max_payload itself (a 413 that also ends the session, as the spec says), so
     * the HTTP layer lets a body a little over it through.
     */
    if (sl_sio_worker_owns(w->sio, head->path)) {
        uint64_t cap = w->cfg->socketio.max_payload + 1;
        v->max_body = cap > w->cfg->limits.max_body_bytes ? cap : w->cfg->limits.max_body_bytes;
        return;
    }
    if (sl_http_api_owns(head->path))
        return; /* POST /v1/chat/completions: up to limits.max_body_bytes */
    const struct route *r = find_route(ud, head->path);
    v->max_body = r->max_body;
    /* A body on a route that takes none: a wrong method says more than "no body". */
    if (head->has_body && r->max_body == 0 && !method_allowed(r, head)) {
        v->status = 405;
        v->message = "method not allowed";
        v->headers = r->allow;
    }
}

/* The open client connections and active streams of every worker (from the metrics shards). */
static void
totals(struct sl_worker *w, uint64_t *clients, uint64_t *streams)
{
    struct sl_server *srv = w->server;
    *clients = *streams = 0;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        const struct sl_metrics *m = srv->shards[i];
        for (int p = 0; p < SL_PK__COUNT; p++) {
            uint64_t o = sl_counter_get(&m->conn_opened[p]),
                     cl = sl_counter_get(&m->conn_closed[p]);
            *clients += o > cl ? o - cl : 0;
        }
        uint64_t st = sl_counter_get(&m->streams_started), en = sl_counter_get(&m->streams_ended);
        *streams += st > en ? st - en : 0;
    }
}

/* Seed 002's GET /health: JSON, alive (as /healthz) with the counts it shows. */
static void
health(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req)
{
    uint64_t clients, streams;
    totals(w, &clients, &streams);
    char body[200];
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"healthy\",\"service\":\"sluice\",\"version\":\"" SL_VERSION
                     "\",\"connections\":%llu,\"active_streams\":%llu,\"draining\":%s}\n",
                     (unsigned long long)clients, (unsigned long long)streams,
                     atomic_load(&w->server->draining) ? "true" : "false");
    sl_http_respond(c, req, 200, "application/json", NULL, body, (size_t)n);
}

/* Seed 004's GET /websocket/health: {connectedClients, totalSubscriptions, activeLLMStreams}. */
static void
websocket_health(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req)
{
    uint64_t clients, streams;
    totals(w, &clients, &streams);
    char body[200];
    int n = snprintf(body, sizeof(body),
                     "{\"connectedClients\":%llu,\"totalSubscriptions\":%llu,"
                     "\"activeLLMStreams\":%llu}\n",
                     (unsigned long long)clients, (unsigned long long)clients,
                     (unsigned long long)streams);
    sl_http_respond(c, req, 200, "application/json", NULL, body, (size_t)n);
}

static void
metrics(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req)
{
    struct sl_buf b = SL_BUF_INIT;
    struct sl_server *srv = w->server;
    /* Bytes written is kept by each connection pool; fold it in at scrape time. */
    sl_metrics_render(&b, srv->shards, srv->nworkers, w->cfg);
    sl_http_respond(c, req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, sl_buf_ptr(&b),
                    sl_buf_len(&b));
    sl_buf_free(&b);
}

/*
 * The access line of a request: the path but never the query (it may hold a token).
 * upgrade: the WebSocket endpoint's protocol after a 101, else NULL.
 */
static void
log_access(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req, int status,
           const char *upgrade)
{
    struct sl_logrec r;
    if (!sl_log_begin(&r, SL_LOG_INFO, "http.access"))
        return;
    char peer[64];
    sl_conn_peer(c, peer, sizeof(peer));
    sl_log_uint(&r, "worker", w->id);
    sl_log_uint(&r, "conn", sl_conn_id(c));
    sl_log_str(&r, "peer", peer);
    sl_log_str(&r, "method", req->method);
    sl_log_strn(&r, "path", req->path.ptr, req->path.len);
    sl_log_int(&r, "status", status);
    if (upgrade)
        sl_log_str(&r, "upgrade", upgrade);
    sl_log_end(&r);
}

/* A WebSocket endpoint's upgrade; returns the status logged (101, or the refusal's). */
static int
upgrade(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req, enum route_kind kind)
{
    int status = ws_admit(w, c, req);
    if (status != 0)
        return status;
    if (kind == R_WS_ECHO) {
        log_access(w, c, req, 101, "echo");
        accept_echo(w, c, req);
        return 101;
    }
    const char *why = NULL;
    char *token = handshake_token(req, &status, &why);
    if (why != NULL) {
        sl_http_respond_error(c, req, status, why, NULL);
        return status;
    }
    /* Logged before the session starts, so that its lines follow the upgrade's. */
    bool chat = kind == R_WS_CHAT;
    log_access(w, c, req, 101, chat ? "ws-chat" : "native");
    sl_ws_transport_accept(w, c, req, chat ? &sl_proto_ws_chat : &sl_proto_native,
                           chat ? SL_PK_SEED : SL_PK_NATIVE, token);
    free(token);
    return 101;
}

void
sl_routes_handle(void *ud, struct sl_conn *c, struct sl_http_req *req)
{
    struct sl_worker *w = ud;
    const struct route *r = find_route(w, req->path);
    int status;

    /* Engine.IO paths first: a request handed to its session's worker is counted there. */
    status = sl_sio_worker_handle(w->sio, c, req);
    if (status == SL_EIO_HANDED_OFF)
        return;
    sl_counter_add(&w->metrics.http_requests_total, 1);
    if (status != 0) {
        log_access(w, c, req, status, status == 101 ? "engine.io" : NULL);
        return;
    }
    status = 200;
    if (sl_http_api_owns(req->path) && !req->over_capacity) {
        status = sl_http_api_handle(w->http_api, c, req);
        if (status == 0)
            return; /* handed to the worker of its stream */
        goto out;
    }
    if (req->over_capacity && !r->at_capacity) {
        status = 503;
        sl_http_respond_error(c, req, 503, "too many connections", "Retry-After: 1\r\n");
        goto out;
    }
    switch (r->kind) {
    case R_WS:
    case R_WS_ECHO:
    case R_WS_CHAT:
        /* The handshake check names a wrong method itself. */
        status = upgrade(w, c, req, r->kind);
        if (status == 101)
            return;
        goto out;
    default:
        break;
    }
    if (!method_allowed(r, req)) {
        status = 405;
        sl_http_respond_error(c, req, 405, "method not allowed", r->allow);
        goto out;
    }
    switch (r->kind) {
    case R_HEALTHZ:
        sl_http_respond(c, req, 200, "application/json", NULL, "{\"status\":\"ok\"}\n", 16);
        break;
    case R_READYZ:
        if (atomic_load(&w->server->draining)) {
            status = 503;
            sl_http_respond(c, req, 503, "application/json", NULL, "{\"status\":\"draining\"}\n",
                            22);
        } else {
            sl_http_respond(c, req, 200, "application/json", NULL, "{\"status\":\"ready\"}\n", 19);
        }
        break;
    case R_HEALTH:
        health(w, c, req);
        break;
    case R_WS_HEALTH:
        websocket_health(w, c, req);
        break;
    case R_METRICS:
        metrics(w, c, req);
        break;
    case R_TEST_PAGE:
        status = sl_files_serve(c, req, w->server->web_root, SL_SLICE("/index.html"));
        break;
    default:
        status = sl_files_serve(c, req, w->server->web_root, req->path);
        break;
    }
out:
    log_access(w, c, req, status, NULL);
}
