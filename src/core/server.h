/*
 * The server: the configuration, the authenticator, and the workers, with start-up
 * and the drain-then-stop shutdown sequence. Created and driven by main.c on the main
 * thread; workers reach it read-only (cfg, auth) or through atomics (counts, state).
 */
#ifndef SL_CORE_SERVER_H
#define SL_CORE_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_config;
struct sl_auth;
struct sl_throttle;
struct sl_limits;

/*
 * Connections accepted past limits.max_connections that are still read, so that health
 * probes are answered at capacity (one answer each, then closed); beyond them the rest get a
 * 503 without being read. Part of the descriptor budget (sl_server_fd_budget).
 */
#define SL_SERVER_OVER_CAPACITY 16
struct sl_worker;
struct sl_metrics;
struct sl_directory;
struct sl_relay;
struct sl_memory;

struct sl_server {
    const struct sl_config *cfg;
    struct sl_auth *auth;
    struct sl_throttle *throttle; /* authentication failures per client address */
    struct sl_limits *limits;     /* per-identity limits and budgets, shared by the workers */
    char *web_root;               /* resolved directory of the test page */
    unsigned nworkers;
    struct sl_worker **workers;
    struct sl_metrics **shards;             /* each worker's metrics, for scrapes */
    struct sl_relay **relays;               /* each worker's relay, for cross-worker resume */
    struct sl_directory *directory;         /* which worker owns which stream */
    struct sl_directory *session_directory; /* which worker holds which session (recovery) */
    struct sl_memory *memory;               /* ws-chat conversations */
    uint16_t port;                          /* the bound port */
    char node[80];                          /* this node's name in a cluster (redis.node) */
    atomic_uint connections;                /* open TCP connections, all workers */
    atomic_bool draining;
    bool stopping; /* main thread only */
};

/* The number of workers cfg asks for (workers: auto is one per online CPU). */
unsigned sl_server_workers(const struct sl_config *cfg);

/*
 * File descriptors the process needs besides one per client connection: each worker's
 * listener, loop and reserve, the upstream connections each worker may open (every
 * provider's max_connections), its three Redis connections in cluster mode, the
 * over-capacity connections, and a margin for logs, files and libraries.
 */
unsigned long sl_server_fd_budget(const struct sl_config *cfg);

/*
 * Builds the server: authenticator, limits (loading the budgets' state file), listening
 * sockets, workers (not yet running). Unless cfg->listen_reuse, the address must be free:
 * another process listening there is an error (SO_REUSEPORT would let both run and share
 * the connections silently).
 * Returns NULL with a message in err on failure.
 */
struct sl_server *sl_server_new(const struct sl_config *cfg, const char *web_root, char *err,
                                size_t errlen);

/* Starts the worker threads. */
int sl_server_start(struct sl_server *srv, char *err, size_t errlen);

/* Begins draining: /readyz turns 503, no new streams or sessions, idle clients leave. */
void sl_server_drain(struct sl_server *srv);

/* Streams still running on any worker. */
unsigned sl_server_active_streams(const struct sl_server *srv);

/* Asks every worker to close its connections (1001) and stop. Returns at once. */
void sl_server_stop(struct sl_server *srv);

/* Whether every worker has stopped (after sl_server_stop). */
bool sl_server_stopped(const struct sl_server *srv);

/*
 * Joins the workers and frees everything (stops them first if needed, blocking); the
 * budgets' spend is saved once every stream has ended.
 */
void sl_server_free(struct sl_server *srv);

#endif
