#include "core/worker.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "core/http_api.h"
#include "core/routes.h"
#include "core/server.h"
#include "core/session.h"
#include "core/sio_worker.h"
#include "limits/limits.h"
#include "net/listener.h"
#include "net/loop.h"
#include "obs/log.h"
#include "stream/relay.h"
#include "upstream/upstream.h"

static const char overloaded_response[] =
    "HTTP/1.1 503 Service Unavailable\r\nServer: sluice\r\nContent-Type: application/json\r\n"
    "Retry-After: 1\r\nContent-Length: 56\r\nConnection: close\r\n\r\n"
    "{\"error\":{\"status\":503,\"message\":\"too many connections\"}}";

static const char too_many_from_address[] =
    "HTTP/1.1 429 Too Many Requests\r\nServer: sluice\r\nContent-Type: application/json\r\n"
    "Retry-After: 1\r\nContent-Length: 75\r\nConnection: close\r\n\r\n"
    "{\"error\":{\"status\":429,\"message\":\"too many connections from this address\"}}";

static void
on_conn_closed(void *ud, void *tag)
{
    struct sl_worker *w = ud;
    sl_limits_conn_end(tag); /* the address's hold (limits.max_connections_per_ip) */
    atomic_fetch_sub(&w->server->connections, 1);
}

/* limits.max_connections_per_ip: counts the connection for its address, or refuses it. */
static bool
admit_address(struct sl_worker *w, struct sl_conn *c)
{
    if (w->cfg->limits.max_connections_per_ip == 0)
        return true;
    char peer[80], key[80];
    struct sl_limits_hold *hold;
    struct sl_limits_refusal why;
    sl_conn_peer(c, peer, sizeof(peer));
    if (sl_limits_ip_key(peer, key, sizeof(key)) != 0)
        return true; /* no address to count it under */
    if (sl_limits_ip_begin(w->server->limits, key, &hold, &why) == 0) {
        sl_conn_set_tag(c, hold);
        return true;
    }
    sl_counter_add(&w->metrics.rate_limited[why.limit], 1);
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "conn.refused")) {
        sl_log_uint(&r, "worker", w->id);
        sl_log_uint(&r, "conn", sl_conn_id(c));
        sl_log_str(&r, "peer", peer);
        sl_log_int(&r, "status", 429);
        sl_log_str(&r, "reason", "limits.max_connections_per_ip");
        sl_log_end(&r);
    }
    sl_conn_write(c, too_many_from_address, sizeof(too_many_from_address) - 1);
    sl_conn_close(c);
    return false;
}

/*
 * A new connection. Past limits.max_connections it is still served, but only for what must
 * work at capacity (health probes, routes.c) and for one answer; past that by more than
 * SL_SERVER_OVER_CAPACITY it gets the 503 without being read.
 */
static void
on_accept(void *ud, int fd)
{
    struct sl_worker *w = ud;
    struct sl_conn *c = sl_conn_adopt(&w->conns, fd);
    if (c == NULL)
        return;
    sl_counter_add(&w->metrics.connections_total, 1);
    unsigned open = atomic_fetch_add(&w->server->connections, 1) + 1;
    unsigned max = w->cfg->limits.max_connections;
    if (open > max && open - max <= SL_SERVER_OVER_CAPACITY && !w->stopping) {
        sl_http_serve_over_capacity(&w->http, c);
        return;
    }
    if (open > max || w->stopping) {
        struct sl_logrec r;
        if (sl_log_begin(&r, SL_LOG_WARN, "conn.refused")) {
            char peer[64];
            sl_conn_peer(c, peer, sizeof(peer));
            sl_log_uint(&r, "worker", w->id);
            sl_log_uint(&r, "conn", sl_conn_id(c));
            sl_log_str(&r, "peer", peer);
            sl_log_int(&r, "status", 503);
            sl_log_str(&r, "reason", w->stopping ? "stopping" : "limits.max_connections");
            sl_log_end(&r);
        }
        sl_conn_write(c, overloaded_response, sizeof(overloaded_response) - 1);
        sl_conn_close(c);
        return;
    }
    if (!admit_address(w, c))
        return;
    sl_http_serve(&w->http, c);
}

/* End of each loop turn: bytes-out bookkeeping and, when stopping, the last step. */
static void
on_turn(void *arg)
{
    struct sl_worker *w = arg;
    sl_relay_flush(w->relay);
    sl_cluster_flush(w->cluster);
    sl_gauge_set(&w->metrics.journal_bytes, w->streams.pool.bytes);
    sl_gauge_set(&w->metrics.sessions_detached, w->sessions.detached);
    if (w->up->pools != NULL || w->up->h1pools != NULL) {
        for (size_t i = 0; i < w->cfg->nproviders; i++) {
            sl_gauge_set(&w->metrics.providers[i].queued_now, sl_upstream_queued(w->up, i));
            sl_gauge_set(&w->metrics.providers[i].open, sl_upstream_connections(w->up, i));
        }
    }
    if (!w->warmed && !w->stopping) {
        w->warmed = true;
        sl_upstream_warm(w->up); /* on the worker's thread, before its first streams */
    }
    uint64_t prev = sl_counter_get(&w->metrics.bytes_sent_total);
    if (w->conns.bytes_out != prev)
        sl_counter_add(&w->metrics.bytes_sent_total, w->conns.bytes_out - prev);
    if (w->stopping && w->conns.count == 0 && w->up->active_calls == 0 && w->listener == NULL)
        sl_loop_stop(w->loop);
}

struct sl_worker *
sl_worker_new(struct sl_server *srv, unsigned id, int listen_fd)
{
    const struct sl_config *cfg = srv->cfg;
    struct sl_worker *w = sl_calloc(1, sizeof(*w));
    w->id = id;
    w->server = srv;
    w->cfg = cfg;
    w->loop = sl_loop_new();
    sl_metrics_init(&w->metrics, cfg);
    w->ws_deflate = (struct sl_ws_deflate_policy){
        .enabled = cfg->websocket.permessage_deflate,
        .window_bits = (uint8_t)cfg->websocket.deflate_window_bits,
        .context_takeover = cfg->websocket.deflate_context_takeover,
        .level = (uint8_t)cfg->websocket.deflate_level,
        .mem_level = (uint8_t)cfg->websocket.deflate_mem_level,
    };

    sl_conn_pool_init(&w->conns, w->loop);
    /* Connection ids unique in the process, for logs: worker 2's are 2000000001, ... */
    w->conns.next_id = (uint64_t)id * 1000000000u;
    w->conns.on_closed = on_conn_closed;
    w->conns.on_closed_ud = w;
    struct sl_conn_limits cl = {
        .send_timeout_ms = cfg->limits.send_timeout_ms,
        .close_timeout_ms = SL_CONN_CLOSE_TIMEOUT_MS,
        .max_queued = cfg->limits.max_queued_bytes ? cfg->limits.max_queued_bytes
                                                   : 2 * cfg->limits.send_high_water,
    };
    sl_conn_pool_set_limits(&w->conns, &cl);
    struct sl_http_limits lim = {
        .max_header_bytes = cfg->limits.max_header_bytes,
        .max_body_bytes = cfg->limits.max_body_bytes,
        .header_timeout_ms = cfg->limits.header_timeout_ms,
        .body_timeout_ms = cfg->limits.body_timeout_ms,
        .keepalive_timeout_ms = cfg->limits.keepalive_timeout_ms,
    };
    sl_http_server_init(&w->http, w->loop, &lim, sl_routes_handle, w);
    sl_http_server_on_head(&w->http, sl_routes_head);
    w->up = sl_upstream_new(w->loop, cfg);
    sl_streams_init(&w->streams, cfg, w->loop);
    w->relay = sl_relay_new(id, w->loop, &w->streams);
    struct sl_cluster_env cenv = {.cfg = cfg,
                                  .loop = w->loop,
                                  .metrics = &w->metrics,
                                  .streams = &w->streams,
                                  .node = srv->node,
                                  .worker = id};
    w->cluster = sl_cluster_new(&cenv);
    struct sl_stream_env env = {.cfg = cfg,
                                .cluster = w->cluster,
                                .up = w->up,
                                .metrics = &w->metrics,
                                .table = &w->streams,
                                .dir = srv->directory,
                                .worker = id};
    sl_admission_init(&w->admission, &env);
    struct sl_sessions_env senv = {.cfg = cfg,
                                   .loop = w->loop,
                                   .metrics = &w->metrics,
                                   .auth = srv->auth,
                                   .adm = &w->admission,
                                   .dir = srv->directory,
                                   .relay = w->relay,
                                   .cluster = w->cluster,
                                   .sdir = srv->session_directory,
                                   .memory = srv->memory,
                                   .throttle = srv->throttle,
                                   .worker = id,
                                   .nworkers = sl_server_workers(cfg)};
    w->admission.limits = srv->limits;
    sl_sessions_init(&w->sessions, &senv);
    w->sio = sl_sio_worker_new(w);
    w->http_api = sl_http_api_new(w);
    sl_loop_add_turn_hook(w->loop, on_turn, w);

    w->listener = sl_listener_start(w->loop, listen_fd, on_accept, w, id);
    return w;
}

static void *
thread_main(void *arg)
{
    struct sl_worker *w = arg;
    sl_loop_run(w->loop);
    atomic_store(&w->finished, true);
    return NULL;
}

int
sl_worker_start(struct sl_worker *w)
{
    if (pthread_create(&w->thread, NULL, thread_main, w) != 0)
        return -1;
    w->started = true;
    return 0;
}

static void
do_drain(void *arg)
{
    struct sl_worker *w = arg;
    w->draining = true;
    w->admission.draining = true;
    sl_sessions_drain(&w->sessions);
    sl_sio_worker_drain(w->sio);
}

/* At the drain deadline a running stream still owes its client a terminal event. */
static void
shutdown_stream(struct sl_stream *s, void *arg)
{
    struct sl_worker *w = arg;
    sl_stream_shutdown(s, (int64_t)w->cfg->shutdown.retry_after_ms);
}

static void
close_conn(struct sl_conn *c, void *arg)
{
    (void)arg;
    sl_conn_close(c);
}

static void
do_stop(void *arg)
{
    struct sl_worker *w = arg;
    w->draining = true;
    w->admission.draining = true;
    w->stopping = true;
    if (w->listener) {
        sl_listener_stop(w->listener);
        w->listener = NULL;
    }
    sl_streams_foreach(&w->streams, shutdown_stream, w);
    sl_sessions_shutdown(&w->sessions);
    sl_sio_worker_stop(w->sio);
    sl_http_api_shutdown(w->http_api);
    sl_relay_flush(w->relay); /* the terminal events of streams read on other workers */
    sl_relay_shutdown(w->relay);
    sl_cluster_stop(w->cluster); /* writes the journals' last records, then disconnects */
    /* What is left speaks plain HTTP (or was already closing). */
    sl_conn_pool_foreach(&w->conns, close_conn, NULL);
    on_turn(w);
}

void
sl_worker_post_drain(struct sl_worker *w)
{
    sl_loop_post(w->loop, do_drain, w);
}

void
sl_worker_post_stop(struct sl_worker *w)
{
    sl_loop_post(w->loop, do_stop, w);
}

void
sl_worker_join(struct sl_worker *w)
{
    if (w == NULL || w->joined)
        return;
    w->joined = true;
    if (w->started)
        pthread_join(w->thread, NULL);
    else
        sl_loop_run(w->loop); /* never started: run the posted stop here */
}

void
sl_worker_free(struct sl_worker *w)
{
    if (w == NULL)
        return;
    sl_worker_join(w);
    sl_sio_worker_free(w->sio);
    sl_http_api_free(w->http_api);
    sl_sessions_cleanup(&w->sessions);
    sl_upstream_free(w->up);
    sl_metrics_cleanup(&w->metrics);
    sl_loop_free(w->loop); /* runs what is left in the mailbox: the relay must exist */
    sl_relay_free(w->relay);
    sl_streams_cleanup(&w->streams);
    sl_cluster_free(w->cluster);
    free(w);
}

unsigned
sl_worker_active_streams(const struct sl_worker *w)
{
    return (unsigned)(sl_counter_get(&w->metrics.streams_started) -
                      sl_counter_get(&w->metrics.streams_ended));
}

bool
sl_worker_finished(struct sl_worker *w)
{
    return !w->started || atomic_load(&w->finished);
}
