#include "core/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/origin.h"
#include "base/alloc.h"
#include "config/config.h"
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
                                .allow_binary = true};
    struct echo *e = sl_calloc(1, sizeof(*e));
    e->w = w;
    e->ws = sl_ws_accept(c, req, &opt, &echo_handler, e);
    sl_counter_add(&w->metrics.conn_opened[SL_PK_ECHO], 1);
}

/* --- WebSocket endpoints ------------------------------------------------------------------ */

/* The token from ?token= or Authorization: Bearer, copied into buf; NULL if none. */
static const char *
handshake_token(const struct sl_http_req *req, char *buf, size_t len)
{
    if (sl_http_query_param(req, "token", buf, len) > 0)
        return buf;
    struct sl_slice auth = sl_http_get_header(req, "Authorization");
    if (auth.ptr && auth.len > 7 && strncasecmp(auth.ptr, "Bearer ", 7) == 0) {
        size_t n = auth.len - 7;
        const char *p = auth.ptr + 7;
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        if (n > 0 && n < len) {
            memcpy(buf, p, n);
            buf[n] = '\0';
            return buf;
        }
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

static bool
method_ok(struct sl_conn *c, const struct sl_http_req *req)
{
    if (req->is_get || req->is_head)
        return true;
    sl_http_respond_error(c, req, 405, "method not allowed", "Allow: GET, HEAD\r\n");
    return false;
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

void
sl_routes_handle(void *ud, struct sl_conn *c, struct sl_http_req *req)
{
    struct sl_worker *w = ud;
    const struct sl_config *cfg = w->cfg;
    struct sl_slice path = req->path;
    int status = 200;

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
    if (sl_slice_eq(path, "/ws")) {
        status = ws_admit(w, c, req);
        if (status != 0)
            goto out;
        /* Logged before the session starts, so that its lines follow the upgrade's. */
        status = 101;
        log_access(w, c, req, status, "native");
        char tokbuf[SL_AUTH_MAX_TOKEN + 1];
        const char *token = handshake_token(req, tokbuf, sizeof(tokbuf));
        sl_ws_transport_accept(w, c, req, &sl_proto_native, SL_PK_NATIVE, token);
        return;
    } else if (sl_slice_eq(path, "/ws/echo") && cfg->debug.echo) {
        status = ws_admit(w, c, req);
        if (status != 0)
            goto out;
        status = 101;
        log_access(w, c, req, status, "echo");
        accept_echo(w, c, req);
        return;
    } else if (!method_ok(c, req)) {
        status = 405;
    } else if (sl_slice_eq(path, "/healthz")) {
        sl_http_respond(c, req, 200, "application/json", NULL, "{\"status\":\"ok\"}\n", 16);
    } else if (sl_slice_eq(path, "/readyz")) {
        if (atomic_load(&w->server->draining)) {
            status = 503;
            sl_http_respond(c, req, 503, "application/json", NULL, "{\"status\":\"draining\"}\n",
                            22);
        } else {
            sl_http_respond(c, req, 200, "application/json", NULL, "{\"status\":\"ready\"}\n", 19);
        }
    } else if (sl_slice_eq(path, "/metrics")) {
        metrics(w, c, req);
    } else if (sl_slice_eq(path, "/ws/test")) {
        status = sl_files_serve(c, req, w->server->web_root, SL_SLICE("/index.html"));
    } else {
        status = sl_files_serve(c, req, w->server->web_root, path);
    }
out:
    log_access(w, c, req, status, NULL);
}
