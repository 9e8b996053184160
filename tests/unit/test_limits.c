/*
 * Unit tests for src/limits/limits.c: every limit, the token window, budgets and their
 * allowances, tiers, expiry and eviction at the cap, the calendar, persistence through a
 * store, and exact counts under several threads.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "config/config.h"
#include "limits/limits.h"

/* 2025-06-14 10:00:00 UTC */
#define WALL0 1749895200000ll
#define DAY 86400000ll

struct clock {
    uint64_t mono;
    int64_t wall;
};

static uint64_t
fake_mono(void *ud)
{
    return ((struct clock *)ud)->mono;
}

static int64_t
fake_wall(void *ud)
{
    return ((struct clock *)ud)->wall;
}

struct fixture {
    struct sl_config *cfg;
    struct sl_limits *l;
    struct clock clk;
};

static struct sl_config *
config(void)
{
    struct sl_config *cfg = sl_config_new_defaults();
    /* Nothing limited unless a test says so. */
    cfg->limits.max_streams_per_user = 0;
    cfg->limits.max_connections_per_user = 0;
    cfg->limits.messages_per_minute = 1000000;
    return cfg;
}

static void
start(struct fixture *f, struct sl_limits_store *store, unsigned shards)
{
    char err[256] = "";
    f->clk.mono = 1000000;
    if (f->clk.wall == 0)
        f->clk.wall = WALL0;
    struct sl_limits_opts o = {
        .shards = shards, .mono_ms = fake_mono, .wall_ms = fake_wall, .clock_ud = &f->clk};
    f->l = sl_limits_new(f->cfg, store, &o, err, sizeof(err));
    cr_assert_not_null(f->l, "%s", err);
}

static void
stop(struct fixture *f)
{
    sl_limits_free(f->l);
    sl_config_free(f->cfg);
}

static void
add_tier(struct sl_config *cfg, const char *name, unsigned mpm, unsigned streams, double per_day)
{
    cfg->limits.tiers =
        sl_realloc(cfg->limits.tiers, (cfg->limits.ntiers + 1) * sizeof(*cfg->limits.tiers));
    cfg->limits.tiers[cfg->limits.ntiers++] = (struct sl_config_tier){
        .name = sl_strdup(name),
        .messages_per_minute = mpm,
        .max_streams_per_user = streams,
        .max_connections_per_user = SL_CONFIG_UNSET,
        .tokens_per_minute = SL_CONFIG_UNSET,
        .budget_usd_per_day = per_day,
        .budget_usd_per_month = -1,
    };
}

static struct sl_limits_usage
usage(struct fixture *f, const char *user)
{
    struct sl_limits_usage u;
    sl_limits_usage(f->l, user, &u);
    return u;
}

/* --- the calendar --------------------------------------------------------------------- */

Test(limits, calendar_days_and_months)
{
    cr_assert_eq(sl_limits_day(0), 0);
    cr_assert_eq(sl_limits_day(DAY - 1), 0);
    cr_assert_eq(sl_limits_day(DAY), 1);
    cr_assert_eq(sl_limits_month(0), 0);
    /* 2025-06-14 is month (2025 - 1970) * 12 + 5. */
    cr_assert_eq(sl_limits_month(WALL0), 55 * 12 + 5);
    cr_assert_eq(sl_limits_next_day_ms(WALL0), sl_limits_days_from_civil(2025, 6, 15) * DAY);
    cr_assert_eq(sl_limits_next_month_ms(WALL0), sl_limits_days_from_civil(2025, 7, 1) * DAY);
    /* December rolls into January of the next year. */
    int64_t dec = sl_limits_days_from_civil(2024, 12, 31) * DAY + 5;
    cr_assert_eq(sl_limits_next_month_ms(dec), sl_limits_days_from_civil(2025, 1, 1) * DAY);
    cr_assert_eq(sl_limits_month(sl_limits_next_month_ms(dec)), 55 * 12);
    /* Leap days. */
    int64_t y;
    unsigned m, d;
    sl_limits_civil(sl_limits_days_from_civil(2024, 2, 28) + 1, &y, &m, &d);
    cr_assert(y == 2024 && m == 2 && d == 29);
    sl_limits_civil(sl_limits_days_from_civil(2100, 2, 28) + 1, &y, &m, &d);
    cr_assert(y == 2100 && m == 3 && d == 1);
    /* Round trip over three centuries. */
    for (int64_t day = 0; day < 120000; day += 7) {
        sl_limits_civil(day, &y, &m, &d);
        cr_assert_eq(sl_limits_days_from_civil(y, m, d), day);
    }
}

/* --- messages ------------------------------------------------------------------------- */

Test(limits, messages_bucket_per_identity)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.messages_per_minute = 3;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sl_limits_message(f.l, "alice", NULL, &why), 0);
    cr_assert_eq(sl_limits_message(f.l, "alice", NULL, &why), -1);
    cr_assert_eq(why.limit, SL_LIMIT_MESSAGES);
    cr_assert_eq(why.code, SL_ERR_RATE_LIMITED);
    cr_assert_eq(why.retry_after_ms, 20001, "one token every 20 s: %lld",
                 (long long)why.retry_after_ms);
    cr_assert_not_null(strstr(why.message, "limit messages"));
    /* Another identity has its own bucket. */
    cr_assert_eq(sl_limits_message(f.l, "bob", NULL, &why), 0);
    /* The same identity whatever the caller (a reconnect): still empty. */
    cr_assert_eq(sl_limits_message(f.l, "alice", "", &why), -1);
    f.clk.mono += 20000;
    cr_assert_eq(sl_limits_message(f.l, "alice", NULL, &why), 0);
    cr_assert_eq(sl_limits_message(f.l, "alice", NULL, &why), -1);
    /* A long pause refills a minute's worth, no more. */
    f.clk.mono += 3600000;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(sl_limits_message(f.l, "alice", NULL, &why), 0);
    cr_assert_eq(sl_limits_message(f.l, "alice", NULL, &why), -1);
    stop(&f);
}

/* --- connections ------------------------------------------------------------------------ */

Test(limits, connections_per_user)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.max_connections_per_user = 2;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_hold *a, *b, *c;
    cr_assert_eq(sl_limits_conn_begin(f.l, "alice", NULL, &a, &why), 0);
    cr_assert_eq(sl_limits_conn_begin(f.l, "alice", NULL, &b, &why), 0);
    cr_assert_not_null(a);
    cr_assert_eq(sl_limits_conn_begin(f.l, "alice", NULL, &c, &why), -1);
    cr_assert_null(c);
    cr_assert_eq(why.limit, SL_LIMIT_CONNECTIONS_USER);
    cr_assert_eq(why.retry_after_ms, SL_LIMITS_HELD_RETRY_MS);
    cr_assert_eq(usage(&f, "alice").connections, 2);
    cr_assert_eq(sl_limits_conn_begin(f.l, "bob", NULL, &c, &why), 0);
    sl_limits_conn_end(c);
    sl_limits_conn_end(a);
    cr_assert_eq(sl_limits_conn_begin(f.l, "alice", NULL, &a, &why), 0);
    sl_limits_conn_end(a);
    sl_limits_conn_end(b);
    cr_assert_eq(usage(&f, "alice").connections, 0);
    sl_limits_conn_end(NULL);
    stop(&f);
}

Test(limits, connections_unlimited_hold_nothing)
{
    struct fixture f = {.cfg = config()};
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_hold *h = (void *)1;
    cr_assert_eq(sl_limits_conn_begin(f.l, "alice", NULL, &h, &why), 0);
    cr_assert_null(h);
    cr_assert_eq(sl_limits_ip_begin(f.l, "192.0.2.1", &h, &why), 0);
    cr_assert_null(h);
    cr_assert_eq(sl_limits_count(f.l, false), 0);
    cr_assert_eq(sl_limits_count(f.l, true), 0);
    stop(&f);
}

Test(limits, connections_per_address)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.max_connections_per_ip = 2;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_hold *h[3];
    cr_assert_eq(sl_limits_ip_begin(f.l, "192.0.2.1", &h[0], &why), 0);
    cr_assert_eq(sl_limits_ip_begin(f.l, "192.0.2.1", &h[1], &why), 0);
    cr_assert_eq(sl_limits_ip_begin(f.l, "192.0.2.1", &h[2], &why), -1);
    cr_assert_eq(why.limit, SL_LIMIT_CONNECTIONS_IP);
    cr_assert_not_null(strstr(why.message, "limit connections_ip"));
    cr_assert_eq(sl_limits_ip_begin(f.l, "192.0.2.2", &h[2], &why), 0);
    cr_assert_eq(sl_limits_count(f.l, true), 2);
    sl_limits_conn_end(h[2]);
    sl_limits_conn_end(h[0]);
    cr_assert_eq(sl_limits_ip_begin(f.l, "192.0.2.1", &h[0], &why), 0);
    sl_limits_conn_end(h[0]);
    sl_limits_conn_end(h[1]);
    /* An address that holds nothing is forgotten at once. */
    cr_assert_eq(sl_limits_count(f.l, true), 0);
    stop(&f);
}

Test(limits, address_keys)
{
    char k[64];
    cr_assert_eq(sl_limits_ip_key("192.0.2.7:51234", k, sizeof(k)), 0);
    cr_assert_str_eq(k, "192.0.2.7");
    /* sl_conn_peer writes IPv6 without brackets; one /64 is one client. */
    cr_assert_eq(sl_limits_ip_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd:443", k, sizeof(k)), 0);
    cr_assert_str_eq(k, "2001:db8:1:2::/64");
    cr_assert_eq(sl_limits_ip_key("2001:db8:1:2::9:80", k, sizeof(k)), 0);
    cr_assert_str_eq(k, "2001:db8:1:2::/64");
    cr_assert_eq(sl_limits_ip_key("::ffff:198.51.100.4:80", k, sizeof(k)), 0);
    cr_assert_str_eq(k, "198.51.100.4");
    cr_assert_eq(sl_limits_ip_key("::1:80", k, sizeof(k)), 0);
    cr_assert_str_eq(k, "::/64");
    cr_assert_eq(sl_limits_ip_key("?:0", k, sizeof(k)), -1);
    cr_assert_str_eq(k, "?");
    char small[4];
    cr_assert_eq(sl_limits_ip_key("192.0.2.7:1", small, sizeof(small)), 0);
    cr_assert_eq(strlen(small), 3);
}

/* --- streams ---------------------------------------------------------------------------- */

Test(limits, streams_per_user_across_callers)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.max_streams_per_user = 2;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t[3];
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 10, 0, &t[0], &why), 0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 10, 0, &t[1], &why), 0);
    cr_assert_not_null(t[0]);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 10, 0, &t[2], &why), -1);
    cr_assert_null(t[2]);
    cr_assert_eq(why.limit, SL_LIMIT_STREAMS);
    cr_assert_eq(why.code, SL_ERR_RATE_LIMITED);
    cr_assert_eq(why.retry_after_ms, SL_LIMITS_HELD_RETRY_MS);
    cr_assert_eq(usage(&f, "alice").streams, 2);
    sl_limits_stream_end(t[0], 50, 0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 10, 0, &t[2], &why), 0);
    sl_limits_stream_end(t[1], 50, 0);
    sl_limits_stream_end(t[2], 50, 0);
    cr_assert_eq(usage(&f, "alice").streams, 0);
    sl_limits_stream_end(NULL, 0, 0);
    stop(&f);
}

Test(limits, streams_unlimited_take_no_ticket)
{
    struct fixture f = {.cfg = config()};
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t = (void *)1;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 10, 0.5, &t, &why), 0);
    cr_assert_null(t);
    cr_assert(sl_limits_stream_spend(NULL, 1e9, &why));
    cr_assert_eq(sl_limits_count(f.l, false), 0);
    stop(&f);
}

/* --- the token window ------------------------------------------------------------------- */

Test(limits, tokens_per_minute_window)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.tokens_per_minute = 1000;
    start(&f, NULL, 0);
    f.clk.mono = 0; /* slot 0 begins */
    struct sl_limits_refusal why;
    struct sl_limits_ticket *a, *b;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 600, 0, &a, &why), 0);
    cr_assert_eq(usage(&f, "alice").tokens_last_minute, 600, "the input counts at once");
    f.clk.mono = 15000;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 600, 0, &b, &why), -1);
    cr_assert_eq(why.limit, SL_LIMIT_TOKENS);
    cr_assert_eq(why.code, SL_ERR_RATE_LIMITED);
    /* The 600 were counted in the slot [0, 10 s), which leaves the window at 60 s. */
    cr_assert_eq(why.retry_after_ms, 45000, "%lld", (long long)why.retry_after_ms);
    /* The stream ends having used 900 in all: 300 more, now. */
    sl_limits_stream_end(a, 900, 0);
    cr_assert_eq(usage(&f, "alice").tokens_last_minute, 900);
    f.clk.mono = 60000; /* slot 0 gone; slot 1 holds the 300 */
    cr_assert_eq(usage(&f, "alice").tokens_last_minute, 300);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 600, 0, &b, &why), 0);
    /* A stream that used less than its estimate gives the rest back. */
    sl_limits_stream_end(b, 100, 0);
    cr_assert_eq(usage(&f, "alice").tokens_last_minute, 400);
    f.clk.mono = 200000;
    cr_assert_eq(usage(&f, "alice").tokens_last_minute, 0);
    /* Alone, a request larger than the limit passes: the window is empty. */
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 5000, 0, &b, &why), 0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 0, 0, &a, &why), -1);
    sl_limits_stream_end(b, 5000, 0);
    stop(&f);
}

/* --- budgets ---------------------------------------------------------------------------- */

Test(limits, budget_allowance_extends_then_stops)
{
    struct fixture f = {.cfg = config()};
    f.cfg->budgets.usd_per_day = 1.0;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 10, 0.1, &t, &why), 0);
    /* The input, plus half of the rest. */
    cr_assert_float_eq(usage(&f, "alice").reserved_usd, 0.55, 1e-12);
    cr_assert(sl_limits_stream_spend(t, 0.5, &why));
    cr_assert(sl_limits_stream_spend(t, 0.6, &why));
    cr_assert_float_eq(usage(&f, "alice").reserved_usd, 0.8, 1e-12);
    cr_assert(sl_limits_stream_spend(t, 1.0, &why));
    cr_assert_float_eq(usage(&f, "alice").reserved_usd, 1.0, 1e-12);
    cr_assert_not(sl_limits_stream_spend(t, 1.01, &why));
    cr_assert_eq(why.code, SL_ERR_BUDGET_EXCEEDED);
    cr_assert_eq(why.limit, SL_LIMIT_BUDGET_DAY);
    cr_assert_eq(why.retry_after_ms, sl_limits_next_day_ms(WALL0) - WALL0);
    cr_assert_not_null(strstr(why.message, "limit budget_day"));
    sl_limits_stream_end(t, 100, 1.01);
    struct sl_limits_usage u = usage(&f, "alice");
    cr_assert_float_eq(u.day_usd, 1.01, 1e-12);
    cr_assert_float_eq(u.month_usd, 1.01, 1e-12);
    cr_assert_eq(u.reserved_usd, 0);
    /* At the budget: refused before any provider is called, until the next UTC day. */
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 10, 0, &t, &why), -1);
    cr_assert_eq(why.code, SL_ERR_BUDGET_EXCEEDED);
    cr_assert_eq(why.retry_after_ms, sl_limits_next_day_ms(WALL0) - WALL0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "bob", NULL, 10, 0, &t, &why), 0);
    sl_limits_stream_end(t, 10, 0);
    f.clk.wall = sl_limits_next_day_ms(WALL0) + 1;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 10, 0, &t, &why), 0);
    sl_limits_stream_end(t, 10, 0);
    u = usage(&f, "alice");
    cr_assert_eq(u.day_usd, 0);
    cr_assert_float_eq(u.month_usd, 1.01, 1e-12, "the month keeps counting");
    stop(&f);
}

Test(limits, budget_month)
{
    struct fixture f = {.cfg = config()};
    f.cfg->budgets.usd_per_day = 10;
    f.cfg->budgets.usd_per_month = 2;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 1.5);
    f.clk.wall += DAY;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), 0);
    /* The month is the tighter budget now: 0.5 left, half of it granted. */
    cr_assert_float_eq(usage(&f, "alice").reserved_usd, 0.25, 1e-12);
    cr_assert_not(sl_limits_stream_spend(t, 0.6, &why));
    cr_assert_eq(why.limit, SL_LIMIT_BUDGET_MONTH);
    cr_assert_eq(why.retry_after_ms, sl_limits_next_month_ms(f.clk.wall) - f.clk.wall);
    sl_limits_stream_end(t, 1, 0.6);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), -1);
    cr_assert_eq(why.limit, SL_LIMIT_BUDGET_MONTH);
    f.clk.wall = sl_limits_next_month_ms(f.clk.wall);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 0);
    stop(&f);
}

Test(limits, budget_input_too_expensive)
{
    struct fixture f = {.cfg = config()};
    f.cfg->budgets.usd_per_day = 1.0;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 0.7);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 100000, 0.5, &t, &why), -1);
    cr_assert_eq(why.code, SL_ERR_BUDGET_EXCEEDED);
    cr_assert_not_null(strstr(why.message, "input"));
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 100, 0.2, &t, &why), 0);
    sl_limits_stream_end(t, 1, 0.2);
    stop(&f);
}

Test(limits, budget_held_by_running_streams)
{
    struct fixture f = {.cfg = config()};
    f.cfg->budgets.usd_per_day = 1.0;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *a, *b;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &a, &why), 0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &b, &why), 0);
    /* Half, then half of the other half: never more than the budget. */
    cr_assert_float_eq(usage(&f, "alice").reserved_usd, 0.75, 1e-12);
    sl_limits_stream_end(b, 1, 0);
    cr_assert(sl_limits_stream_spend(a, 1.0, &why), "the whole budget, asked for");
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &b, &why), -1);
    cr_assert_eq(why.code, SL_ERR_BUDGET_EXCEEDED);
    cr_assert_eq(why.retry_after_ms, SL_LIMITS_HELD_RETRY_MS);
    cr_assert_not_null(strstr(why.message, "running streams"));
    sl_limits_stream_end(a, 1, 0.3);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &b, &why), 0);
    cr_assert_float_eq(usage(&f, "alice").reserved_usd, 0.35, 1e-12);
    sl_limits_stream_end(b, 1, 0);
    stop(&f);
}

/*
 * Several streams of one identity each spend a cent a token until stopped: what they spent
 * in all passes the budget by at most one token each (the one that crossed).
 */
Test(limits, budget_concurrent_streams_overshoot_bounded)
{
    struct fixture f = {.cfg = config()};
    f.cfg->budgets.usd_per_day = 1.0;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    enum { N = 5 };
    struct sl_limits_ticket *t[N];
    double cost[N] = {0};
    bool live[N];
    for (int i = 0; i < N; i++) {
        cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t[i], &why), 0);
        live[i] = true;
    }
    for (int nlive = N; nlive > 0;) {
        for (int i = 0; i < N; i++) {
            if (!live[i])
                continue;
            /* Uneven speeds: stream i produces i + 1 tokens per round. */
            for (int k = 0; k <= i && live[i]; k++) {
                cost[i] += 0.01;
                cr_assert_leq(usage(&f, "alice").reserved_usd, 1.0 + 1e-9);
                if (!sl_limits_stream_spend(t[i], cost[i], &why)) {
                    cr_assert_eq(why.code, SL_ERR_BUDGET_EXCEEDED);
                    sl_limits_stream_end(t[i], 1, cost[i]);
                    live[i] = false;
                    nlive--;
                }
            }
        }
    }
    double total = 0;
    for (int i = 0; i < N; i++)
        total += cost[i];
    cr_assert_leq(total, 1.0 + N * 0.01 + 1e-9, "spent %f", total);
    cr_assert_geq(total, 1.0, "the budget was used, spent %f", total);
    cr_assert_float_eq(usage(&f, "alice").day_usd, total, 1e-9);
    stop(&f);
}

Test(limits, budget_bad_costs_count_as_zero)
{
    struct fixture f = {.cfg = config()};
    f.cfg->budgets.usd_per_day = 1.0;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, NAN, &t, &why), 0);
    cr_assert(sl_limits_stream_spend(t, NAN, &why));
    sl_limits_stream_end(t, 1, -5);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, INFINITY);
    cr_assert_eq(usage(&f, "alice").day_usd, 0);
    /* An absurd but finite cost spends the budget, within what a state file can hold. */
    struct sl_limits_ticket *t2;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), 0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t2, &why), 0);
    sl_limits_stream_end(t, 1, 1e300);
    sl_limits_stream_end(t2, 1, 1e300);
    cr_assert_eq(usage(&f, "alice").day_usd, 1e11);
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), -1);
    stop(&f);
}

/* --- tiers ------------------------------------------------------------------------------ */

Test(limits, tiers_override_and_inherit)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.messages_per_minute = 100;
    f.cfg->limits.max_streams_per_user = 8;
    f.cfg->budgets.usd_per_month = 50;
    add_tier(f.cfg, "free", 2, 1, 0.5);
    add_tier(f.cfg, "pro", SL_CONFIG_UNSET, SL_CONFIG_UNSET, -1);
    start(&f, NULL, 0);
    struct sl_limits_tier t;
    sl_limits_of(f.l, "free", &t);
    cr_assert_eq(t.messages_per_minute, 2);
    cr_assert_eq(t.max_streams, 1);
    cr_assert_eq(t.usd_per_day, 0.5);
    cr_assert_eq(t.usd_per_month, 50, "not given: the global value");
    sl_limits_of(f.l, "pro", &t);
    cr_assert_eq(t.messages_per_minute, 100);
    cr_assert_eq(t.max_streams, 8);
    cr_assert_eq(t.usd_per_day, 0);
    sl_limits_of(f.l, "no-such-tier", &t);
    cr_assert_eq(t.messages_per_minute, 100);

    struct sl_limits_refusal why;
    cr_assert_eq(sl_limits_message(f.l, "carol", "free", &why), 0);
    cr_assert_eq(sl_limits_message(f.l, "carol", "free", &why), 0);
    cr_assert_eq(sl_limits_message(f.l, "carol", "free", &why), -1);
    cr_assert_not_null(strstr(why.message, "at most 2 a minute"));
    struct sl_limits_ticket *a, *b;
    cr_assert_eq(sl_limits_stream_begin(f.l, "carol", "free", 1, 0, &a, &why), 0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "carol", "free", 1, 0, &b, &why), -1);
    cr_assert_eq(why.limit, SL_LIMIT_STREAMS);
    cr_assert_eq(sl_limits_stream_begin(f.l, "dave", "pro", 1, 0, &b, &why), 0);
    sl_limits_stream_end(b, 1, 0);
    /* The day budget of free: 0.5. */
    sl_limits_stream_end(a, 1, 0.5);
    cr_assert_eq(sl_limits_stream_begin(f.l, "carol", "free", 1, 0, &a, &why), -1);
    cr_assert_eq(why.limit, SL_LIMIT_BUDGET_DAY);
    stop(&f);
}

/* --- memory: expiry and the cap --------------------------------------------------------- */

Test(limits, idle_entries_expire)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.messages_per_minute = 10;
    f.cfg->limits.max_connections_per_user = 5;
    f.cfg->budgets.usd_per_day = 5;
    start(&f, NULL, 0);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    struct sl_limits_hold *h;
    cr_assert_eq(sl_limits_message(f.l, "idle", NULL, &why), 0);
    cr_assert_eq(sl_limits_conn_begin(f.l, "connected", NULL, &h, &why), 0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "spender", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 0.25);
    cr_assert_eq(sl_limits_count(f.l, false), 3);
    f.clk.mono += 60000;
    sl_limits_tick(f.l);
    cr_assert_eq(sl_limits_count(f.l, false), 3, "a minute is not enough");
    f.clk.mono += 1000;
    sl_limits_tick(f.l);
    cr_assert_not(usage(&f, "idle").known);
    cr_assert(usage(&f, "connected").known, "holds a connection");
    cr_assert(usage(&f, "spender").known, "has spent today");
    /* A new month: the spend is history, the entry goes. */
    f.clk.wall = sl_limits_next_month_ms(f.clk.wall);
    sl_limits_tick(f.l);
    f.clk.mono += 61000;
    sl_limits_tick(f.l);
    cr_assert_not(usage(&f, "spender").known);
    sl_limits_conn_end(h);
    f.clk.mono += 61000;
    sl_limits_tick(f.l);
    cr_assert_eq(sl_limits_count(f.l, false), 0);
    stop(&f);
}

Test(limits, cap_evicts_idle_longest_spend_last_holders_never)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.messages_per_minute = 10;
    f.cfg->limits.max_identities = 64;
    f.cfg->limits.max_connections_per_user = 10;
    f.cfg->budgets.usd_per_day = 5;
    start(&f, NULL, 1); /* one shard: its share is the whole cap */
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    struct sl_limits_hold *h;
    char name[32];
    cr_assert_eq(sl_limits_conn_begin(f.l, "holder", NULL, &h, &why), 0);
    cr_assert_eq(sl_limits_stream_begin(f.l, "spender", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 0.5);
    for (int i = 0; i < 62; i++) {
        snprintf(name, sizeof(name), "user%d", i);
        f.clk.mono += 1;
        cr_assert_eq(sl_limits_message(f.l, name, NULL, &why), 0);
    }
    cr_assert_eq(sl_limits_count(f.l, false), 64);
    /* user1 is used again: user0 is now the idle-longest. */
    cr_assert_eq(sl_limits_message(f.l, "user1", NULL, &why), 0);
    cr_assert_eq(sl_limits_message(f.l, "newcomer", NULL, &why), 0);
    cr_assert_eq(sl_limits_count(f.l, false), 64);
    cr_assert_not(usage(&f, "user0").known);
    cr_assert(usage(&f, "user1").known);
    cr_assert(usage(&f, "spender").known, "entries with spend go last");
    /* A flood of identities that only send messages never pushes the spend out... */
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "flood%d", i);
        cr_assert_eq(sl_limits_message(f.l, name, NULL, &why), 0);
    }
    cr_assert_eq(sl_limits_count(f.l, false), 64);
    cr_assert(usage(&f, "spender").known);
    cr_assert_float_eq(usage(&f, "spender").day_usd, 0.5, 1e-12);
    cr_assert(usage(&f, "holder").known);
    /* ...and entries that hold something stay, even past the cap. */
    for (int i = 0; i < 70; i++) {
        snprintf(name, sizeof(name), "conn%d", i);
        struct sl_limits_hold *x;
        cr_assert_eq(sl_limits_conn_begin(f.l, name, NULL, &x, &why), 0);
    }
    cr_assert_eq(sl_limits_count(f.l, false), 71);
    cr_assert(usage(&f, "holder").known);
    cr_assert_not(usage(&f, "spender").known, "last resort: the spend is forgotten");
    /* Everything is freed by sl_limits_free (holds ended or not, for the test). */
    sl_limits_conn_end(h);
    stop(&f);
}

/* --- persistence through a store ---------------------------------------------------------- */

struct memstore {
    struct sl_limits_store ops;
    struct sl_budget_rec *recs;
    size_t n;
    int load_rc;
    int saves;
    bool fail_save;
};

static int
mem_load(struct sl_limits_store *st, struct sl_budget_rec **recs, size_t *n, char *err,
         size_t errlen)
{
    struct memstore *m = (struct memstore *)st;
    *recs = NULL;
    *n = 0;
    if (m->load_rc != 0) {
        snprintf(err, errlen, "load says %d", m->load_rc);
        return m->load_rc;
    }
    *recs = sl_calloc(m->n + 1, sizeof(**recs));
    for (size_t i = 0; i < m->n; i++) {
        (*recs)[i] = m->recs[i];
        (*recs)[i].user = sl_strdup(m->recs[i].user);
    }
    *n = m->n;
    return 0;
}

static int
mem_save(struct sl_limits_store *st, const struct sl_budget_rec *recs, size_t n, char *err,
         size_t errlen)
{
    struct memstore *m = (struct memstore *)st;
    if (m->fail_save) {
        snprintf(err, errlen, "disk full");
        return -1;
    }
    sl_budget_recs_free(m->recs, m->n);
    m->recs = sl_calloc(n + 1, sizeof(*recs));
    for (size_t i = 0; i < n; i++) {
        m->recs[i] = recs[i];
        m->recs[i].user = sl_strdup(recs[i].user);
    }
    m->n = n;
    m->saves++;
    return 0;
}

static void
mem_free(struct sl_limits_store *st)
{
    (void)st; /* the test owns it */
}

static struct memstore
memstore(void)
{
    return (struct memstore){.ops = {.load = mem_load, .save = mem_save, .free = mem_free}};
}

static const struct sl_budget_rec *
rec_of(const struct memstore *m, const char *user)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->recs[i].user, user) == 0)
            return &m->recs[i];
    return NULL;
}

Test(limits, spend_saved_when_changed_and_restored)
{
    struct memstore m = memstore();
    struct fixture f = {.cfg = config()};
    f.cfg->budgets.usd_per_day = 5;
    start(&f, &m.ops, 0);
    cr_assert_eq(m.saves, 1, "written back at start");
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 0.125);
    cr_assert_eq(sl_limits_stream_begin(f.l, "bob", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 0);
    sl_limits_tick(f.l);
    cr_assert_eq(m.saves, 2);
    sl_limits_tick(f.l);
    cr_assert_eq(m.saves, 2, "nothing changed: nothing written");
    cr_assert_eq(m.n, 1, "bob spent nothing");
    const struct sl_budget_rec *r = rec_of(&m, "alice");
    cr_assert_not_null(r);
    cr_assert_eq(r->day, sl_limits_day(WALL0));
    cr_assert_eq(r->month, sl_limits_month(WALL0));
    cr_assert_eq(r->day_usd, 0.125);
    cr_assert_eq(r->month_usd, 0.125);
    sl_limits_free(f.l);

    /* A restart: the spend is back, and so is the budget it used. */
    start(&f, &m.ops, 0);
    cr_assert_eq(usage(&f, "alice").day_usd, 0.125);
    sl_limits_free(f.l);

    /* The next day: only the month's part comes back. */
    f.clk.wall = WALL0 + DAY;
    start(&f, &m.ops, 0);
    cr_assert_eq(usage(&f, "alice").day_usd, 0);
    cr_assert_eq(usage(&f, "alice").month_usd, 0.125);
    sl_limits_free(f.l);

    /* The next month: nothing. */
    f.clk.wall = sl_limits_next_month_ms(WALL0);
    start(&f, &m.ops, 0);
    cr_assert_not(usage(&f, "alice").known);
    cr_assert_eq(m.n, 0, "the old month is dropped from the store too");
    stop(&f);
    sl_budget_recs_free(m.recs, m.n);
}

Test(limits, store_failures)
{
    struct memstore m = memstore();
    struct fixture f = {.cfg = config()};
    f.cfg->budgets.usd_per_day = 5;
    char err[256] = "";
    struct sl_limits_opts o = {.mono_ms = fake_mono, .wall_ms = fake_wall, .clock_ud = &f.clk};
    f.clk.wall = WALL0;

    /* Cannot be read: no start. */
    m.load_rc = -1;
    cr_assert_null(sl_limits_new(f.cfg, &m.ops, &o, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "budgets.state_file: load says -1"), "%s", err);
    /* Unusable content: reported, start from zero. */
    m.load_rc = 1;
    f.l = sl_limits_new(f.cfg, &m.ops, &o, err, sizeof(err));
    cr_assert_not_null(f.l);
    sl_limits_free(f.l);
    /* Cannot be written: no start either. */
    m.load_rc = 0;
    m.fail_save = true;
    cr_assert_null(sl_limits_new(f.cfg, &m.ops, &o, err, sizeof(err)));
    cr_assert_not_null(strstr(err, "disk full"), "%s", err);
    /* A save failing later is retried at the next tick. */
    m.fail_save = false;
    f.l = sl_limits_new(f.cfg, &m.ops, &o, err, sizeof(err));
    cr_assert_not_null(f.l);
    struct sl_limits_refusal why;
    struct sl_limits_ticket *t;
    cr_assert_eq(sl_limits_stream_begin(f.l, "alice", NULL, 1, 0, &t, &why), 0);
    sl_limits_stream_end(t, 1, 1);
    m.fail_save = true;
    sl_limits_tick(f.l);
    cr_assert_eq(m.n, 0);
    cr_assert_eq(sl_limits_flush(f.l, err, sizeof(err)), -1);
    m.fail_save = false;
    sl_limits_tick(f.l);
    cr_assert_eq(m.n, 1);
    cr_assert_eq(sl_limits_flush(f.l, err, sizeof(err)), 0);
    stop(&f);
    sl_budget_recs_free(m.recs, m.n);
}

Test(limits, store_unused_without_budgets)
{
    struct memstore m = memstore();
    struct fixture f = {.cfg = config()};
    m.load_rc = -1; /* would refuse the start if it were read */
    start(&f, &m.ops, 0);
    cr_assert_eq(m.saves, 0);
    stop(&f);
}

/* --- threads ------------------------------------------------------------------------------ */

struct race {
    struct sl_limits *l;
    pthread_barrier_t *go;
    int id;
    int passed;
};

#define ROUNDS 4000
#define COST (1.0 / 1024) /* exact in binary: sums do not depend on their order */

static void *
churn(void *arg)
{
    struct race *r = arg;
    struct sl_limits_refusal why;
    const char *users[] = {"alice", "bob", "carol"};
    pthread_barrier_wait(r->go);
    for (int i = 0; i < ROUNDS; i++) {
        const char *u = users[(i + r->id) % 3];
        struct sl_limits_hold *h;
        struct sl_limits_ticket *t;
        cr_assert_eq(sl_limits_conn_begin(r->l, u, NULL, &h, &why), 0);
        cr_assert_eq(sl_limits_stream_begin(r->l, u, NULL, 3, 0, &t, &why), 0);
        cr_assert(sl_limits_stream_spend(t, COST, &why));
        sl_limits_stream_end(t, 5, COST);
        sl_limits_conn_end(h);
        if (sl_limits_message(r->l, "shared", NULL, &why) == 0)
            r->passed++;
    }
    return NULL;
}

Test(limits, threads_keep_counts_exact)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.messages_per_minute = 1000;
    f.cfg->limits.max_connections_per_user = 1000;
    f.cfg->limits.max_streams_per_user = 1000;
    f.cfg->limits.tokens_per_minute = 4000000000u;
    f.cfg->budgets.usd_per_day = 1e6;
    start(&f, NULL, 4);
    enum { T = 4 };
    pthread_t th[T];
    struct race r[T];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, T);
    for (int i = 0; i < T; i++) {
        r[i] = (struct race){.l = f.l, .go = &go, .id = i};
        pthread_create(&th[i], NULL, churn, &r[i]);
    }
    int passed = 0;
    for (int i = 0; i < T; i++) {
        pthread_join(th[i], NULL);
        passed += r[i].passed;
    }
    pthread_barrier_destroy(&go);
    /* The clock stands still: the bucket gave exactly its minute's worth. */
    cr_assert_eq(passed, 1000);
    double total = 0;
    uint64_t tokens = 0;
    const char *users[] = {"alice", "bob", "carol"};
    for (int i = 0; i < 3; i++) {
        struct sl_limits_usage u = usage(&f, users[i]);
        cr_assert_eq(u.streams, 0);
        cr_assert_eq(u.connections, 0);
        cr_assert_eq(u.reserved_usd, 0);
        total += u.day_usd;
        tokens += u.tokens_last_minute;
    }
    cr_assert_eq(total, T * ROUNDS * COST);
    cr_assert_eq(tokens, (uint64_t)T * ROUNDS * 5);
    stop(&f);
}

struct gate {
    struct sl_limits *l;
    pthread_barrier_t *go;
    struct sl_limits_ticket *t;
    int rc;
};

static void *
grab(void *arg)
{
    struct gate *g = arg;
    struct sl_limits_refusal why;
    pthread_barrier_wait(g->go);
    g->rc = sl_limits_stream_begin(g->l, "alice", NULL, 1, 0, &g->t, &why);
    return NULL;
}

Test(limits, threads_never_pass_the_stream_limit)
{
    struct fixture f = {.cfg = config()};
    f.cfg->limits.max_streams_per_user = 3;
    start(&f, NULL, 0);
    enum { T = 8 };
    for (int round = 0; round < 20; round++) {
        pthread_t th[T];
        struct gate g[T];
        pthread_barrier_t go;
        pthread_barrier_init(&go, NULL, T);
        for (int i = 0; i < T; i++) {
            g[i] = (struct gate){.l = f.l, .go = &go};
            pthread_create(&th[i], NULL, grab, &g[i]);
        }
        int ok = 0;
        for (int i = 0; i < T; i++) {
            pthread_join(th[i], NULL);
            ok += g[i].rc == 0;
        }
        pthread_barrier_destroy(&go);
        cr_assert_eq(ok, 3);
        for (int i = 0; i < T; i++)
            sl_limits_stream_end(g[i].t, 1, 0);
        cr_assert_eq(usage(&f, "alice").streams, 0);
    }
    stop(&f);
}
