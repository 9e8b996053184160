#include "obs/metrics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "config/config.h"

/* Upper bounds in seconds. TTFT spans a local model to a slow reasoning model; inter-token
 * spans a fast local stream to a provider stalling mid-answer. */
static const double ttft_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
static const double itl_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                    0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};
static const double overhead_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                         0.0025,  0.005,    0.01,    0.05,   0.1,     1};

static const struct {
    const char *name;
    const char *help;
    const double *bounds;
    size_t n;
} hists[SL_HIST__COUNT] = {
    [SL_HIST_TTFT] = {"sluice_ttft_seconds", "Time from request to first token.", ttft_bounds,
                      SL_ARRAY_LEN(ttft_bounds)},
    [SL_HIST_INTER_TOKEN] = {"sluice_inter_token_seconds", "Time between consecutive tokens.",
                             itl_bounds, SL_ARRAY_LEN(itl_bounds)},
    [SL_HIST_OVERHEAD] = {"sluice_overhead_seconds",
                          "Time a request spent in sluice itself (total minus waiting on the "
                          "provider).",
                          overhead_bounds, SL_ARRAY_LEN(overhead_bounds)},
};

/* Each histogram needs one bucket more than it has bounds: the +Inf one. */
_Static_assert(SL_ARRAY_LEN(itl_bounds) < SL_HIST_MAX_BUCKETS, "bucket array fits");
_Static_assert(SL_ARRAY_LEN(ttft_bounds) < SL_HIST_MAX_BUCKETS, "bucket array fits");
_Static_assert(SL_ARRAY_LEN(overhead_bounds) < SL_HIST_MAX_BUCKETS, "bucket array fits");

static const char *const proto_names[SL_PK__COUNT] = {
    [SL_PK_NATIVE] = "native", [SL_PK_ECHO] = "echo", [SL_PK_SOCKETIO] = "socketio",
    [SL_PK_SEED] = "seed",     [SL_PK_SSE] = "sse",
};

const char *
sl_outcome_name(enum sl_outcome o)
{
    switch (o) {
    case SL_OUTCOME_DONE:
        return "done";
    case SL_OUTCOME_ERROR:
        return "error";
    case SL_OUTCOME_CANCELLED:
        return "cancelled";
    case SL_OUTCOME_DISCONNECTED:
        return "disconnected";
    default:
        return "unknown";
    }
}

void
sl_metrics_init(struct sl_metrics *m, const struct sl_config *cfg)
{
    memset(m, 0, sizeof(*m));
    m->nmodels = cfg->nmodels;
    m->nproviders = cfg->nproviders;
    m->models = sl_calloc(cfg->nmodels ? cfg->nmodels : 1, sizeof(*m->models));
    m->providers = sl_calloc(cfg->nproviders ? cfg->nproviders : 1, sizeof(*m->providers));
}

void
sl_metrics_cleanup(struct sl_metrics *m)
{
    free(m->models);
    free(m->providers);
    m->models = NULL;
    m->providers = NULL;
}

void
sl_metrics_observe(struct sl_metrics *m, enum sl_hist_kind kind, uint64_t ns)
{
    struct sl_hist *h = &m->hist[kind];
    double s = (double)ns / 1e9;
    size_t i = 0;
    while (i < hists[kind].n && s > hists[kind].bounds[i])
        i++;
    sl_counter_add(&h->buckets[i], 1); /* i == n: above every bound */
    sl_counter_add(&h->sum_ns, ns);
}

/* --- rendering ------------------------------------------------------------------------ */

/* Sums the counter at byte offset off of every shard's struct sl_metrics. */
static uint64_t
sum_at(struct sl_metrics *const *shards, size_t n, size_t off)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += sl_counter_get((const sl_counter *)(const void *)((const char *)shards[i] + off));
    return t;
}

/* The same for a counter of model i (off within struct sl_model_metrics). */
static uint64_t
sum_model(struct sl_metrics *const *shards, size_t n, size_t i, size_t off)
{
    uint64_t t = 0;
    for (size_t k = 0; k < n; k++)
        t += sl_counter_get(
            (const sl_counter *)(const void *)((const char *)&shards[k]->models[i] + off));
    return t;
}

static uint64_t
sum_provider(struct sl_metrics *const *shards, size_t n, size_t i, int code)
{
    uint64_t t = 0;
    for (size_t k = 0; k < n; k++)
        t += sl_counter_get(&shards[k]->providers[i].errors[code]);
    return t;
}

static uint64_t
sum_provider_at(struct sl_metrics *const *shards, size_t n, size_t i, size_t off)
{
    uint64_t t = 0;
    for (size_t k = 0; k < n; k++)
        t += sl_counter_get((const sl_counter *)((const char *)&shards[k]->providers[i] + off));
    return t;
}

#define SUM(field) sum_at(shards, n, offsetof(struct sl_metrics, field))

/*
 * A gauge kept as two counters, "up" and "down", read while workers run: the caller reads
 * down first, so up (read later, and never behind down in its own shard) is normally
 * the larger; the clamp covers what the relaxed loads do not promise.
 */
static uint64_t
gauge(uint64_t up, uint64_t down)
{
    return up > down ? up - down : 0;
}

static void
header(struct sl_buf *b, const char *name, const char *type, const char *help)
{
    sl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
label_value(struct sl_buf *b, const char *v)
{
    /* Prometheus label values escape backslash, quote and newline. */
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            sl_buf_append_byte(b, '\\');
        if (*v == '\n') {
            sl_buf_append_str(b, "\\n");
            continue;
        }
        sl_buf_append_byte(b, *v);
    }
}

/* One line per provider of a per-provider counter or gauge. */
static void
per_provider(struct sl_buf *b, struct sl_metrics *const *shards, size_t n,
             const struct sl_config *cfg, const char *name, size_t off)
{
    for (size_t i = 0; i < cfg->nproviders; i++) {
        sl_buf_printf(b, "%s{provider=\"", name);
        label_value(b, cfg->providers[i].name);
        sl_buf_printf(b, "\"} %llu\n", (unsigned long long)sum_provider_at(shards, n, i, off));
    }
}

static void
seconds(struct sl_buf *b, double v)
{
    sl_jsonw_double(b, v);
}

static void
render_hist(struct sl_buf *b, struct sl_metrics *const *shards, size_t n, enum sl_hist_kind k)
{
    header(b, hists[k].name, "histogram", hists[k].help);
    uint64_t cum = 0;
    for (size_t i = 0; i < hists[k].n; i++) {
        cum += SUM(hist[k].buckets[i]);
        sl_buf_printf(b, "%s_bucket{le=\"", hists[k].name);
        seconds(b, hists[k].bounds[i]);
        sl_buf_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    uint64_t count = cum + SUM(hist[k].buckets[hists[k].n]);
    sl_buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", hists[k].name, (unsigned long long)count);
    sl_buf_printf(b, "%s_sum ", hists[k].name);
    seconds(b, (double)SUM(hist[k].sum_ns) / 1e9);
    sl_buf_printf(b, "\n%s_count %llu\n", hists[k].name, (unsigned long long)count);
}

void
sl_metrics_render(struct sl_buf *b, struct sl_metrics *const *shards, size_t n,
                  const struct sl_config *cfg)
{
    header(b, "sluice_build_info", "gauge", "Build information.");
    sl_buf_printf(b, "sluice_build_info{version=\"%s\"} 1\n", SL_VERSION);

    header(b, "sluice_connections", "gauge", "Open client connections by protocol.");
    for (int p = 0; p < SL_PK__COUNT; p++) {
        uint64_t closed = SUM(conn_closed[p]);
        sl_buf_printf(b, "sluice_connections{protocol=\"%s\"} %llu\n", proto_names[p],
                      (unsigned long long)gauge(SUM(conn_opened[p]), closed));
    }
    header(b, "sluice_connections_total", "counter",
           "TCP connections accepted (HTTP requests and WebSocket clients).");
    sl_buf_printf(b, "sluice_connections_total %llu\n", (unsigned long long)SUM(connections_total));
    header(b, "sluice_http_requests_total", "counter", "HTTP requests served.");
    sl_buf_printf(b, "sluice_http_requests_total %llu\n",
                  (unsigned long long)SUM(http_requests_total));

    header(b, "sluice_streams_active", "gauge", "Streams in flight.");
    uint64_t ended = SUM(streams_ended);
    sl_buf_printf(b, "sluice_streams_active %llu\n",
                  (unsigned long long)gauge(SUM(streams_started), ended));

    header(b, "sluice_streams_total", "counter", "Streams ended, by provider, model and outcome.");
    for (size_t i = 0; i < cfg->nmodels; i++) {
        for (int o = 0; o < SL_OUTCOME__COUNT; o++) {
            uint64_t v = sum_model(shards, n, i, offsetof(struct sl_model_metrics, streams[o]));
            sl_buf_append_str(b, "sluice_streams_total{provider=\"");
            label_value(b, cfg->models[i].provider);
            sl_buf_append_str(b, "\",model=\"");
            label_value(b, cfg->models[i].name);
            sl_buf_printf(b, "\",outcome=\"%s\"} %llu\n", sl_outcome_name((enum sl_outcome)o),
                          (unsigned long long)v);
        }
    }
    header(b, "sluice_tokens_total", "counter", "Tokens by provider, model and direction.");
    for (size_t i = 0; i < cfg->nmodels; i++) {
        for (int d = 0; d < 2; d++) {
            uint64_t v = sum_model(shards, n, i,
                                   d == 0 ? offsetof(struct sl_model_metrics, tokens_in)
                                          : offsetof(struct sl_model_metrics, tokens_out));
            sl_buf_append_str(b, "sluice_tokens_total{provider=\"");
            label_value(b, cfg->models[i].provider);
            sl_buf_append_str(b, "\",model=\"");
            label_value(b, cfg->models[i].name);
            sl_buf_printf(b, "\",direction=\"%s\"} %llu\n", d == 0 ? "input" : "output",
                          (unsigned long long)v);
        }
    }
    header(b, "sluice_bytes_sent_total", "counter", "Bytes written to clients.");
    sl_buf_printf(b, "sluice_bytes_sent_total %llu\n", (unsigned long long)SUM(bytes_sent_total));

    header(b, "sluice_upstream_errors_total", "counter", "Provider failures by provider and code.");
    for (size_t i = 0; i < cfg->nproviders; i++) {
        for (int c = 1; c < SL_ERR__COUNT; c++) {
            uint64_t v = sum_provider(shards, n, i, c);
            if (v == 0)
                continue;
            sl_buf_append_str(b, "sluice_upstream_errors_total{provider=\"");
            label_value(b, cfg->providers[i].name);
            sl_buf_printf(b, "\",code=\"%s\"} %llu\n", sl_errcode_name((enum sl_errcode)c),
                          (unsigned long long)v);
        }
    }

    header(b, "sluice_upstream_queued_total", "counter",
           "Streams that waited for a connection to their provider (providers.<name>."
           "max_connections busy on the worker), by provider.");
    per_provider(b, shards, n, cfg, "sluice_upstream_queued_total",
                 offsetof(struct sl_provider_metrics, queued));
    header(b, "sluice_upstream_queued", "gauge",
           "Streams waiting for a connection to their provider now, by provider.");
    per_provider(b, shards, n, cfg, "sluice_upstream_queued",
                 offsetof(struct sl_provider_metrics, queued_now));
    header(b, "sluice_upstream_connections", "gauge",
           "Connections open to each provider (running streams' and idle ones), by provider.");
    per_provider(b, shards, n, cfg, "sluice_upstream_connections",
                 offsetof(struct sl_provider_metrics, open));

    header(b, "sluice_auth_failures_total", "counter", "Failed authentications.");
    sl_buf_printf(b, "sluice_auth_failures_total %llu\n",
                  (unsigned long long)SUM(auth_failures_total));
    header(b, "sluice_rate_limited_total", "counter",
           "Requests, connections and streams refused by a limit, by limit.");
    for (int k = 0; k < SL_LIMIT__COUNT; k++)
        sl_buf_printf(b, "sluice_rate_limited_total{limit=\"%s\"} %llu\n",
                      sl_limit_name((enum sl_limit)k), (unsigned long long)SUM(rate_limited[k]));
    header(b, "sluice_backpressure_pauses_total", "counter",
           "Upstream transfers paused for a slow client.");
    sl_buf_printf(b, "sluice_backpressure_pauses_total %llu\n",
                  (unsigned long long)SUM(backpressure_pauses_total));
    header(b, "sluice_resumes_total", "counter", "Streams resumed after a reconnect.");
    sl_buf_printf(b, "sluice_resumes_total %llu\n", (unsigned long long)SUM(resumes_total));
    header(b, "sluice_journal_bytes", "gauge",
           "Memory held by stream journals (events kept for slow clients and resume).");
    sl_buf_printf(b, "sluice_journal_bytes %llu\n", (unsigned long long)SUM(journal_bytes));
    header(b, "sluice_sessions_detached", "gauge",
           "Sessions whose client is gone, waiting up to resume.window for a resume.");
    sl_buf_printf(b, "sluice_sessions_detached %llu\n", (unsigned long long)SUM(sessions_detached));
    header(b, "sluice_redis_up", "gauge",
           "1 when every worker's connection to Redis (redis.url) is up; 0 when one is down or "
           "no Redis is configured.");
    sl_buf_printf(b, "sluice_redis_up %d\n",
                  cfg->redis.url != NULL && n > 0 && SUM(redis_up) == n ? 1 : 0);
    header(b, "sluice_redis_commands_total", "counter", "Commands sent to Redis (cluster mode).");
    sl_buf_printf(b, "sluice_redis_commands_total %llu\n",
                  (unsigned long long)SUM(redis_commands_total));

    for (int k = 0; k < SL_HIST__COUNT; k++)
        render_hist(b, shards, n, (enum sl_hist_kind)k);
}
