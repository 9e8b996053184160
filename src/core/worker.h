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

#include "base/buf.h"
#include "base/list.h"
#include "base/timeq.h"
#include "net/conn.h"
#include "net/http.h"
#include "obs/metrics.h"

struct sl_server;
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
    struct sl_metrics metrics;

    /* session deadlines (core/session.c) */
    struct sl_timeq auth_tq;    /* not authenticated in time: 4003 */
    struct sl_timeq hb_idle_tq; /* silent for heartbeat.interval: ping */
    struct sl_timeq hb_wait_tq; /* still silent at heartbeat.timeout: 4008 */
    struct sl_list sessions;
    size_t nsessions;
    unsigned nstreams; /* streams owned by this worker's sessions */

    struct sl_buf scratch; /* rendering buffer, reused for every message */

    struct sl_listener *listener; /* NULL once stopped */
    pthread_t thread;
    bool started;
    atomic_bool finished; /* the thread's loop returned */
    bool draining;
    bool stopping;
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

/* Waits for the thread and frees the worker. */
void sl_worker_join_free(struct sl_worker *w);

/* Active streams of the worker, readable from another thread. */
unsigned sl_worker_active_streams(const struct sl_worker *w);

#endif
