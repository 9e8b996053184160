/*
 * Prometheus metrics, one shard per worker, summed at scrape time.
 *
 * Each worker writes only its own shard, with relaxed atomic stores (a plain load,
 * add and store on x86: no locked instruction on the hot path); a scrape on any thread
 * reads every shard with relaxed loads. Names and labels follow DESIGN.md
 * ("Metrics") and are a contract with dashboards.
 */
#ifndef SL_OBS_METRICS_H
#define SL_OBS_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/codes.h"

struct sl_config;

typedef _Atomic uint64_t sl_counter;

/* Single-writer increment: only the owning worker thread calls these. */
static inline void
sl_counter_add(sl_counter *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* A value the owning worker overwrites (a gauge of its own state, e.g. bytes in journals). */
static inline void
sl_gauge_set(sl_counter *c, uint64_t v)
{
    atomic_store_explicit(c, v, memory_order_relaxed);
}

static inline uint64_t
sl_counter_get(const sl_counter *c)
{
    return atomic_load_explicit((sl_counter *)c, memory_order_relaxed);
}

/* Client protocols, the `protocol` label of sluice_connections. */
enum sl_proto_kind {
    SL_PK_NATIVE,
    SL_PK_ECHO,
    SL_PK_SOCKETIO,
    SL_PK_SEED,
    SL_PK_SSE,
    SL_PK__COUNT,
};

enum sl_outcome {
    SL_OUTCOME_DONE,
    SL_OUTCOME_ERROR,
    SL_OUTCOME_CANCELLED,
    SL_OUTCOME_DISCONNECTED,
    SL_OUTCOME__COUNT,
};

const char *sl_outcome_name(enum sl_outcome o);

#define SL_HIST_MAX_BUCKETS 16

enum sl_hist_kind { SL_HIST_TTFT, SL_HIST_INTER_TOKEN, SL_HIST_OVERHEAD, SL_HIST__COUNT };

/*
 * A histogram shard. Bucket i counts the observations in (bound i-1, bound i]; the one
 * after the last bound counts those above it (+Inf). The count is the sum of the
 * buckets, not a counter of its own, so a scrape racing an observation still renders
 * cumulative buckets that never decrease and a +Inf bucket equal to _count.
 */
struct sl_hist {
    sl_counter buckets[SL_HIST_MAX_BUCKETS];
    sl_counter sum_ns;
};

struct sl_model_metrics {
    sl_counter streams[SL_OUTCOME__COUNT];
    sl_counter tokens_in;
    sl_counter tokens_out;
};

struct sl_provider_metrics {
    sl_counter errors[SL_ERR__COUNT];
    sl_counter queued;     /* streams that waited for a connection (max_connections) */
    sl_counter queued_now; /* gauge: streams waiting now */
    sl_counter open;       /* gauge: connections open to the provider */
};

struct sl_metrics {
    sl_counter conn_opened[SL_PK__COUNT]; /* client sessions by protocol */
    sl_counter conn_closed[SL_PK__COUNT];
    sl_counter connections_total; /* TCP connections accepted (HTTP and WebSocket) */
    sl_counter http_requests_total;
    sl_counter streams_started;
    sl_counter streams_ended;
    sl_counter bytes_sent_total;
    sl_counter auth_failures_total;
    sl_counter rate_limited[SL_LIMIT__COUNT]; /* refusals, by the limit that refused */
    sl_counter backpressure_pauses_total;
    sl_counter resumes_total;
    sl_counter journal_bytes;        /* gauge: bytes held by stream journals */
    sl_counter sessions_detached;    /* gauge: sessions waiting for a resume */
    sl_counter redis_up;             /* gauge: the worker's Redis connection is up (cluster) */
    sl_counter redis_commands_total; /* commands sent to Redis (cluster) */
    struct sl_hist hist[SL_HIST__COUNT];
    struct sl_model_metrics *models;       /* [cfg->nmodels] */
    struct sl_provider_metrics *providers; /* [cfg->nproviders] */
    size_t nmodels, nproviders;
};

void sl_metrics_init(struct sl_metrics *m, const struct sl_config *cfg);
void sl_metrics_cleanup(struct sl_metrics *m);

/* Records a duration in a histogram (single writer: the shard's worker). */
void sl_metrics_observe(struct sl_metrics *m, enum sl_hist_kind h, uint64_t ns);

/*
 * Appends the Prometheus text exposition (format 0.0.4) of the sum of n shards; safe to
 * call from any thread while the workers run. Every family is present even when zero.
 */
void sl_metrics_render(struct sl_buf *out, struct sl_metrics *const *shards, size_t n,
                       const struct sl_config *cfg);

#endif
