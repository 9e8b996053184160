/* Unit tests for src/obs/metrics: bucket edges, summing shards, the text exposition. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "config/config.h"
#include "obs/metrics.h"

/* Writable copies: the config's strings are char *. */
static char m1[] = "m1", weird[] = "we\"ird\\", p1[] = "p1";
static struct sl_config_model models[] = {
    {.name = m1, .provider = p1},
    {.name = weird, .provider = p1},
};
static struct sl_config_provider providers[] = {{.name = p1}};

static struct sl_config
config(void)
{
    struct sl_config c;
    memset(&c, 0, sizeof(c));
    c.models = models;
    c.nmodels = 2;
    c.providers = providers;
    c.nproviders = 1;
    return c;
}

/* The value of the sample line that starts with `prefix` followed by a space. */
static double
sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    cr_assert_fail("no sample %s in:\n%s", prefix, text);
    return -1;
}

static char *
render(struct sl_metrics *const *shards, size_t n, const struct sl_config *cfg)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_metrics_render(&b, shards, n, cfg);
    size_t len;
    char *s = sl_buf_steal(&b, &len);
    s = realloc(s, len + 1);
    s[len] = '\0';
    return s;
}

Test(metrics, bucket_edges_follow_le)
{
    struct sl_config cfg = config();
    struct sl_metrics m;
    sl_metrics_init(&m, &cfg);
    sl_metrics_observe(&m, SL_HIST_TTFT, 10000000);     /* exactly 0.01 s: in le=0.01 */
    sl_metrics_observe(&m, SL_HIST_TTFT, 10000001);     /* just above: le=0.025 */
    sl_metrics_observe(&m, SL_HIST_TTFT, 120000000000); /* 120 s: only +Inf */
    sl_metrics_observe(&m, SL_HIST_INTER_TOKEN, 50000); /* 50 us: the first bucket */
    struct sl_metrics *shards[] = {&m};
    char *t = render(shards, 1, &cfg);
    cr_assert_eq(sample(t, "sluice_ttft_seconds_bucket{le=\"0.01\"}"), 1);
    cr_assert_eq(sample(t, "sluice_ttft_seconds_bucket{le=\"0.025\"}"), 2);
    cr_assert_eq(sample(t, "sluice_ttft_seconds_bucket{le=\"60\"}"), 2);
    cr_assert_eq(sample(t, "sluice_ttft_seconds_bucket{le=\"+Inf\"}"), 3);
    cr_assert_eq(sample(t, "sluice_ttft_seconds_count"), 3);
    cr_assert_float_eq(sample(t, "sluice_ttft_seconds_sum"), 120.020000001, 1e-6);
    cr_assert_eq(sample(t, "sluice_inter_token_seconds_bucket{le=\"0.0001\"}"), 1);
    cr_assert_eq(sample(t, "sluice_inter_token_seconds_count"), 1);
    free(t);
    sl_metrics_cleanup(&m);
}

Test(metrics, shards_are_summed_at_scrape_time)
{
    struct sl_config cfg = config();
    struct sl_metrics a, b;
    sl_metrics_init(&a, &cfg);
    sl_metrics_init(&b, &cfg);
    sl_counter_add(&a.connections_total, 3);
    sl_counter_add(&b.connections_total, 4);
    sl_counter_add(&a.conn_opened[SL_PK_NATIVE], 2);
    sl_counter_add(&b.conn_opened[SL_PK_NATIVE], 1);
    sl_counter_add(&b.conn_closed[SL_PK_NATIVE], 1);
    sl_counter_add(&a.models[0].streams[SL_OUTCOME_DONE], 1);
    sl_counter_add(&b.models[0].streams[SL_OUTCOME_DONE], 2);
    sl_counter_add(&b.models[0].tokens_out, 50);
    sl_counter_add(&b.providers[0].errors[SL_ERR_UPSTREAM_TIMEOUT], 2);
    sl_counter_add(&a.streams_started, 2);
    sl_counter_add(&b.streams_ended, 1);
    sl_metrics_observe(&a, SL_HIST_OVERHEAD, 1000);
    sl_metrics_observe(&b, SL_HIST_OVERHEAD, 1000);
    sl_counter_add(&a.rate_limited[SL_LIMIT_MESSAGES], 2);
    sl_counter_add(&b.rate_limited[SL_LIMIT_MESSAGES], 1);
    sl_counter_add(&b.rate_limited[SL_LIMIT_BUDGET_MONTH], 4);
    struct sl_metrics *shards[] = {&a, &b};
    char *t = render(shards, 2, &cfg);
    cr_assert_eq(sample(t, "sluice_connections_total"), 7);
    cr_assert_eq(sample(t, "sluice_connections{protocol=\"native\"}"), 2);
    cr_assert_eq(sample(t, "sluice_streams_active"), 1);
    cr_assert_eq(sample(t, "sluice_streams_total{provider=\"p1\",model=\"m1\",outcome=\"done\"}"),
                 3);
    cr_assert_eq(
        sample(t, "sluice_tokens_total{provider=\"p1\",model=\"m1\",direction=\"output\"}"), 50);
    cr_assert_eq(
        sample(t, "sluice_upstream_errors_total{provider=\"p1\",code=\"UPSTREAM_TIMEOUT\"}"), 2);
    cr_assert_eq(sample(t, "sluice_overhead_seconds_count"), 2);
    cr_assert_eq(sample(t, "sluice_rate_limited_total{limit=\"messages\"}"), 3);
    cr_assert_eq(sample(t, "sluice_rate_limited_total{limit=\"budget_month\"}"), 4);
    /* Every limit is there from the start, so that rate() sees the first refusal. */
    static const char *const limits[] = {"messages",       "streams", "connections_user",
                                         "connections_ip", "tokens",  "budget_day"};
    for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
        char name[96];
        snprintf(name, sizeof(name), "sluice_rate_limited_total{limit=\"%s\"}", limits[i]);
        cr_assert_eq(sample(t, name), strcmp(limits[i], "messages") == 0 ? 3 : 0);
    }
    /* Label values are escaped. */
    cr_assert_eq(sample(t, "sluice_streams_total{provider=\"p1\",model=\"we\\\"ird\\\\\","
                           "outcome=\"error\"}"),
                 0);
    cr_assert_not_null(strstr(t, "sluice_build_info{version=\"" SL_VERSION "\"} 1\n"));
    free(t);
    sl_metrics_cleanup(&a);
    sl_metrics_cleanup(&b);
}

Test(metrics, a_gauge_never_goes_negative)
{
    /* A scrape can see a close before the matching open on another shard's counters. */
    struct sl_config cfg = config();
    struct sl_metrics a;
    sl_metrics_init(&a, &cfg);
    sl_counter_add(&a.conn_closed[SL_PK_SSE], 1);
    sl_counter_add(&a.streams_ended, 1);
    struct sl_metrics *shards[] = {&a};
    char *t = render(shards, 1, &cfg);
    cr_assert_eq(sample(t, "sluice_connections{protocol=\"sse\"}"), 0);
    cr_assert_eq(sample(t, "sluice_streams_active"), 0);
    free(t);
    sl_metrics_cleanup(&a);
}

Test(metrics, every_family_has_help_and_type)
{
    struct sl_config cfg = config();
    struct sl_metrics a;
    sl_metrics_init(&a, &cfg);
    struct sl_metrics *shards[] = {&a};
    char *t = render(shards, 1, &cfg);
    static const char *const names[] = {
        "sluice_build_info",
        "sluice_connections",
        "sluice_connections_total",
        "sluice_streams_active",
        "sluice_streams_total",
        "sluice_tokens_total",
        "sluice_bytes_sent_total",
        "sluice_ttft_seconds",
        "sluice_inter_token_seconds",
        "sluice_upstream_errors_total",
        "sluice_auth_failures_total",
        "sluice_rate_limited_total",
        "sluice_backpressure_pauses_total",
        "sluice_resumes_total",
        "sluice_overhead_seconds",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char want[128];
        snprintf(want, sizeof(want), "# TYPE %s ", names[i]);
        cr_assert_not_null(strstr(t, want), "%s", names[i]);
        snprintf(want, sizeof(want), "# HELP %s ", names[i]);
        cr_assert_not_null(strstr(t, want), "%s", names[i]);
    }
    cr_assert_eq(t[strlen(t) - 1], '\n');
    free(t);
    sl_metrics_cleanup(&a);
}
