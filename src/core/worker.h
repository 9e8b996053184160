/*
 * A worker: one thread, one event loop, and everything that lives on it.
 *
 * Each worker owns its listening socket (SO_REUSEPORT, net/listener.h), its connections, client
 * sessions, streams, provider transfers and its metrics shard. Nothing on the hot
 * path is shared with another worker or locked. Other threads talk to a worker only
 * through sl_loop_post() (drain, shutdown; later cross-worker resume and cancel).
 */
#ifndef SL_CORE_WORKER_H
#define SL_CORE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/admission.h"
#include "core/session.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/wshandshake.h"
#include "obs/metrics.h"
#include "stream/stream.h"

struct sl_server;
struct sl_sio_worker;
struct sl_upstream;
struct sl_loop;
struct sl_listener;

struct sl_worker {
    unsigned id;
    struct sl_server *server;
    const struct sl_config *cfg;
    struct sl_loop *loop;
    struct sl_conn_pool conns;
    struct sl_http_server http;
    struct sl_upstream *up;
    struct sl_sio_worker *sio; /* Engine.IO / Socket.IO endpoints, connection hand-off */
    struct sl_metrics metrics;
    struct sl_ws_deflate_policy ws_deflate; /* websocket.*: every WebSocket accepted here */

    struct sl_streams streams;     /* every stream of this worker, by (user, id) */
    struct sl_admission admission; /* new streams: draining, limits, routing */
    struct sl_sessions sessions;   /* client sessions */
    struct sl_relay *relay;        /* streams read across workers */
    struct sl_cluster *cluster;    /* streams read across nodes (redis.url), or NULL */
    struct sl_http_api *http_api;  /* the OpenAI-compatible HTTP API */

    struct sl_listener *listener; /* NULL once stopped */
    pthread_t thread;
    bool started;
    bool joined;
    atomic_bool finished; /* the thread's loop returned */
    bool draining;
    bool stopping;
    bool warmed; /* the upstream pools with min_idle were opened (first loop turn) */
};

/* Creates a worker with its loop and listener socket fd (taken over). */
struct sl_worker *sl_worker_new(struct sl_server *srv, unsigned id, int listen_fd);

/* Starts the worker's thread. */
int sl_worker_start(struct sl_worker *w);

/* Thread-safe: asks the worker to drain (no new streams; idle clients leave with 1001). */
void sl_worker_post_drain(struct sl_worker *w);

/* Thread-safe: asks the worker to close every connection and stop its loop. */
void sl_worker_post_stop(struct sl_worker *w);

/* Whether the worker's loop has ended (after a stop), readable from another thread. */
bool sl_worker_finished(struct sl_worker *w);

/*
 * Waits for the thread (once). The server joins every worker before freeing any: until all
 * have stopped, one may still post to another's loop (a hand-off, a relay message).
 */
void sl_worker_join(struct sl_worker *w);

/* Frees a worker (joining it first if needed). */
void sl_worker_free(struct sl_worker *w);

/* Active streams of the worker, readable from another thread. */
unsigned sl_worker_active_streams(const struct sl_worker *w);

#endif
