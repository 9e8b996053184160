#include "core/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/throttle.h"
#include "base/alloc.h"
#include "base/util.h"
#include "config/config.h"
#include "core/worker.h"
#include "limits/limits.h"
#include "limits/statefile.h"
#include "memory/memory.h"
#include "net/listener.h"
#include "obs/log.h"
#include "stream/directory.h"
#include "stream/relay.h"

unsigned
sl_server_workers(const struct sl_config *cfg)
{
    if (cfg->workers > 0)
        return cfg->workers;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (unsigned)cpus : 1;
}

/* Descriptors per worker: listener, epoll, the async wakeup, libuv's and the listener's
 * reserves, the curl multi handle's wakeup pair, and slack. */
#define FDS_PER_WORKER 8
/* stdio, the main loop and its signal pipe, the static files being read, libraries. */
#define FDS_PROCESS 24

unsigned long
sl_server_fd_budget(const struct sl_config *cfg)
{
    unsigned long n = sl_server_workers(cfg);
    unsigned long upstream = 0;
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (cfg->providers[i].kind != SL_PROVIDER_DEMO)
            upstream += cfg->providers[i].max_connections;
    unsigned long redis = cfg->redis.url ? 3 : 0; /* cluster: commands, subscriber, tail */
    return FDS_PROCESS + n * (FDS_PER_WORKER + upstream + redis) + SL_SERVER_OVER_CAPACITY;
}

struct sl_server *
sl_server_new(const struct sl_config *cfg, const char *web_root, char *err, size_t errlen)
{
    struct sl_server *srv = sl_calloc(1, sizeof(*srv));
    srv->cfg = cfg;
    srv->web_root = sl_strdup(web_root);
    srv->auth = sl_auth_new(cfg, err, errlen);
    if (cfg->auth_throttle.burst > 0) {
        struct sl_throttle_limits tl = SL_THROTTLE_DEFAULTS;
        tl.burst = cfg->auth_throttle.burst;
        tl.refill_ms = cfg->auth_throttle.refill_ms;
        tl.max_block_ms = cfg->auth_throttle.max_block_ms > cfg->auth_throttle.refill_ms
                              ? cfg->auth_throttle.max_block_ms
                              : cfg->auth_throttle.refill_ms;
        srv->throttle = sl_throttle_new(&tl);
    }
    if (srv->auth == NULL)
        goto fail;
    srv->limits = sl_limits_new(
        cfg, cfg->budgets.state_file ? sl_statefile_new(cfg->budgets.state_file) : NULL, NULL, err,
        errlen);
    if (srv->limits == NULL)
        goto fail;

    unsigned n = sl_server_workers(cfg);
    srv->workers = sl_calloc(n, sizeof(*srv->workers));
    srv->shards = sl_calloc(n, sizeof(*srv->shards));
    srv->relays = sl_calloc(n, sizeof(*srv->relays));
    srv->directory = sl_directory_new();
    if (cfg->redis.node) {
        snprintf(srv->node, sizeof(srv->node), "%s", cfg->redis.node);
    } else {
        /* Unique per run: a restarted node is a new one (its old streams are not its own). */
        char host[48] = "node", rnd[9];
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        sl_random_id(rnd, 8);
        snprintf(srv->node, sizeof(srv->node), "%s-%s", host, rnd);
    }
    srv->session_directory = sl_directory_new();
    struct sl_memory_limits ml = {
        .max_turns = cfg->ws_chat.memory.max_turns,
        .max_bytes = cfg->ws_chat.memory.max_bytes,
        .idle_ttl_ms = cfg->ws_chat.memory.idle_ttl_ms,
        .max_conversations = cfg->ws_chat.memory.max_conversations,
    };
    srv->memory = sl_memory_new(&ml);

    uint16_t port = cfg->listen_port;
    if (!cfg->listen_reuse && sl_listener_probe(cfg->listen_host, port, &port, err, errlen) != 0)
        goto fail;
    for (unsigned i = 0; i < n; i++) {
        uint16_t bound;
        int fd = sl_listener_open(cfg->listen_host, port, &bound, err, errlen);
        if (fd < 0)
            goto fail;
        port = bound; /* port 0: the others join the port the first one got */
        srv->workers[i] = sl_worker_new(srv, i, fd);
        srv->shards[i] = &srv->workers[i]->metrics;
        srv->relays[i] = srv->workers[i]->relay;
        srv->nworkers = i + 1;
    }
    for (unsigned i = 0; i < n; i++)
        sl_relay_set_peers(srv->relays[i], srv->relays, n);
    srv->port = port;
    return srv;
fail:
    sl_server_free(srv);
    return NULL;
}

int
sl_server_start(struct sl_server *srv, char *err, size_t errlen)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (sl_worker_start(srv->workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread %u", i);
            return -1;
        }
    }
    return 0;
}

void
sl_server_drain(struct sl_server *srv)
{
    atomic_store(&srv->draining, true);
    for (unsigned i = 0; i < srv->nworkers; i++)
        sl_worker_post_drain(srv->workers[i]);
}

unsigned
sl_server_active_streams(const struct sl_server *srv)
{
    unsigned n = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        n += sl_worker_active_streams(srv->workers[i]);
    return n;
}

void
sl_server_stop(struct sl_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = true;
    for (unsigned i = 0; i < srv->nworkers; i++)
        sl_worker_post_stop(srv->workers[i]);
}

bool
sl_server_stopped(const struct sl_server *srv)
{
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (!sl_worker_finished(srv->workers[i]))
            return false;
    return true;
}

void
sl_server_free(struct sl_server *srv)
{
    if (srv == NULL)
        return;
    sl_server_stop(srv);
    /* Every loop must have ended before any is freed: a running worker may still post to
     * another's mailbox (a hand-off, a relay message). */
    for (unsigned i = 0; i < srv->nworkers; i++)
        sl_worker_join(srv->workers[i]);
    for (unsigned i = 0; i < srv->nworkers; i++)
        sl_worker_free(srv->workers[i]);
    free(srv->workers);
    free(srv->shards);
    free(srv->relays);
    sl_directory_free(srv->directory);
    sl_directory_free(srv->session_directory);
    sl_memory_free(srv->memory);
    if (srv->limits != NULL) {
        char err[512];
        if (sl_limits_flush(srv->limits, err, sizeof(err)) != 0)
            sl_log_msg(SL_LOG_ERROR, "budgets.save_failed", "at shutdown: %s", err);
        sl_limits_free(srv->limits);
    }
    sl_auth_free(srv->auth);
    sl_throttle_free(srv->throttle);
    free(srv->web_root);
    free(srv);
}
