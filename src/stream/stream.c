#include "stream/stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/util.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "limits/limits.h"
#include "net/loop.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "proto/proto.h"
#include "stream/directory.h"
#include "upstream/router.h"
#include "upstream/upstream.h"

enum state {
    ST_NEW,
    ST_CONNECTING, /* a call is running, no token yet */
    ST_WAITING,    /* between attempts (retry backoff) */
    ST_GENERATING, /* tokens are flowing */
    ST_ENDED,
};

struct sl_stream {
    struct sl_stream_env env;
    const struct sl_stream_reader *reader; /* NULL: none (being released) */
    void *rd;
    struct sl_chat_req *req;
    char *id;
    size_t id_len;
    char *user;
    char *session; /* the session that started it, for logs */
    uint64_t conn;
    char epoch[17];
    uint32_t seq;
    enum state state;
    bool live;       /* the reader's client is connected */
    bool paused;     /* the provider transfer is paused (backpressure) */
    uint8_t in_emit; /* reader callbacks running (they nest): freeing waits */
    bool finished;   /* ended and fully consumed, or released: free when in_emit clears */
    uint32_t hash;
    struct sl_stream *hnext;       /* in the table's bucket */
    struct sl_stream **hprev;      /* what points to it there (removal without a walk) */
    struct sl_list link;           /* in the table's list */
    struct sl_list slink;          /* in the table's starting queue while it waits there */
    struct sl_timeq_node deadline; /* limits.stream_timeout */
    struct sl_journal journal;
    struct sl_direntry *dent;         /* its entry in the process's directory, or NULL */
    struct sl_cmirror *mirror;        /* the journal's copy in Redis (cluster mode), or NULL */
    struct sl_cluster_limits cluster; /* the user's limits across nodes (cluster mode) */
    bool cluster_counted;             /* its tokens and spend are counted in Redis */

    const struct sl_config_agent *agent;
    const char *primary; /* model name the request resolved to */
    struct sl_route route;
    size_t chain_pos;  /* 0: the primary model, k: its fallback k-1 */
    unsigned attempts; /* retries on the current route */
    void *call;
    struct sl_delay *delay;

    char *system; /* agent's and request's system prompts, joined */
    int64_t max_tokens;
    double temperature;
    bool has_temperature;

    struct sl_usage usage;
    bool have_usage;
    struct sl_limits_ticket *ticket; /* the identity's limits (limits.h); NULL: none */
    uint64_t input_est;              /* input tokens as estimated at admission */
    uint64_t ndeltas;
    uint64_t t_created, t_first, t_last, t_call; /* ns */
    uint64_t wall_created;                       /* ms since the epoch */
    uint64_t overhead_ns;
};

static const struct sl_upstream_sink sink;
static void attempt(struct sl_stream *s);

/* The router's answer, with the test seam of upstream.h applied. */
static int
resolve(const struct sl_stream_env *env, const char *model, struct sl_route *r)
{
    if (sl_router_resolve(env->cfg, model, r) != 0)
        return -1;
    if (env->up && env->up->ops_override)
        r->ops = env->up->ops_override;
    return 0;
}
static void table_remove(struct sl_streams *t, struct sl_stream *s);
static void destroy(struct sl_stream *s);
static uint32_t key_hash(const char *user, const char *id);
static void grow(struct sl_streams *t);
static void bucket_push(struct sl_stream **head, struct sl_stream *s);

/* --- helpers ---------------------------------------------------------------------- */

/* The backlog at which the provider is paused: see stream.h. */
static bool
over_high_water(const struct sl_stream *s)
{
    if (s->live)
        return s->journal.backlog >= s->env.table->high_water || sl_journal_full(&s->journal);
    return sl_journal_full(&s->journal);
}

static void
pause_provider(struct sl_stream *s)
{
    if (s->paused || s->call == NULL || s->route.ops->pause == NULL)
        return;
    s->paused = true;
    s->route.ops->pause(s->call);
    sl_counter_add(&s->env.metrics->backpressure_pauses_total, 1);
}

static void
resume_provider(struct sl_stream *s)
{
    if (!s->paused)
        return;
    s->paused = false;
    if (s->call && s->route.ops->resume)
        s->route.ops->resume(s->call);
}

static void
emit(struct sl_stream *s, struct sl_event *ev)
{
    ev->seq = ++s->seq;
    sl_journal_append(&s->journal, ev, (uint32_t)s->ndeltas);
    if (s->mirror) {
        const void *rec;
        size_t size;
        sl_journal_newest_raw(&s->journal, &rec, &size);
        sl_cmirror_append(s->mirror, rec, size,
                          ev->type == SL_EV_DONE || ev->type == SL_EV_ERROR ||
                              ev->type == SL_EV_CANCELLED);
    }
    if (s->reader) {
        s->in_emit++;
        s->reader->on_event(s->rd, s, ev, (uint32_t)s->ndeltas);
        s->in_emit--;
    }
    if (s->state != ST_ENDED && over_high_water(s))
        pause_provider(s);
}

static void
progress(struct sl_stream *s, const char *step, const char *detail)
{
    struct sl_event ev = {.type = SL_EV_PROGRESS};
    ev.u.progress.step = step;
    ev.u.progress.detail = detail;
    emit(s, &ev);
}

/* Usage as reported, or estimated from what went through (about 4 characters a token). */
static struct sl_usage
final_usage(const struct sl_stream *s)
{
    if (s->have_usage)
        return s->usage;
    struct sl_usage u = {0};
    /* s->system already holds the request's own system prompt: count it once. */
    size_t chars = sl_chat_req_text_chars(s->req) - (s->req->system ? strlen(s->req->system) : 0) +
                   (s->system ? strlen(s->system) : 0);
    u.input_tokens = (chars + 3) / 4;
    u.output_tokens = s->ndeltas;
    u.estimated = true;
    return u;
}

static void
log_end(struct sl_stream *s, enum sl_outcome outcome, const struct sl_usage *u, const char *what)
{
    struct sl_logrec r;
    if (!sl_log_begin(&r, outcome == SL_OUTCOME_ERROR ? SL_LOG_WARN : SL_LOG_INFO, "stream.end"))
        return;
    uint64_t now = sl_clock_ns();
    sl_log_uint(&r, "worker", s->env.worker);
    if (s->conn)
        sl_log_uint(&r, "conn", s->conn);
    if (s->session)
        sl_log_str(&r, "session", s->session);
    sl_log_strn(&r, "stream", s->id, s->id_len);
    sl_log_str(&r, "user", s->user);
    sl_log_str(&r, "model", s->route.model ? s->route.model->name : s->primary);
    sl_log_str(&r, "provider", s->route.provider ? s->route.provider->name : "");
    sl_log_str(&r, "outcome", sl_outcome_name(outcome));
    if (what)
        sl_log_str(&r, "detail", what);
    sl_log_uint(&r, "tokens_in", u->input_tokens);
    sl_log_uint(&r, "tokens_out", u->output_tokens);
    if (u->estimated)
        sl_log_bool(&r, "tokens_estimated", true);
    if (s->route.model)
        sl_log_double(&r, "cost_usd",
                      sl_router_cost(s->route.model, u->input_tokens, u->output_tokens));
    if (s->t_first)
        sl_log_uint(&r, "ttft_ms", (s->t_first - s->t_created) / 1000000);
    sl_log_uint(&r, "duration_ms", (now - s->t_created) / 1000000);
    sl_log_end(&r);
}

/* The terminal step: accounting, logs, the subscriber, and the stream's memory. */
static void
end(struct sl_stream *s, enum sl_outcome outcome, const char *what)
{
    s->state = ST_ENDED;
    sl_timeq_disarm(&s->deadline);
    struct sl_usage u = final_usage(s);
    struct sl_metrics *m = s->env.metrics;
    if (s->route.model) {
        struct sl_model_metrics *mm = &m->models[s->route.model_index];
        sl_counter_add(&mm->streams[outcome], 1);
        sl_counter_add(&mm->tokens_in, u.input_tokens);
        sl_counter_add(&mm->tokens_out, u.output_tokens);
    }
    sl_counter_add(&m->streams_ended, 1);
    sl_metrics_observe(m, SL_HIST_OVERHEAD, s->overhead_ns);
    /* The identity's limits: the stream's place, its tokens and its spend (exactly once). */
    sl_limits_stream_end(
        s->ticket, u.input_tokens + u.output_tokens,
        s->route.model ? sl_router_cost(s->route.model, u.input_tokens, u.output_tokens) : 0);
    s->ticket = NULL;
    if (s->mirror && s->cluster_counted) {
        if (s->cluster.tokens_per_minute && u.input_tokens + u.output_tokens > s->input_est)
            sl_cmirror_tokens(s->mirror, u.input_tokens + u.output_tokens - s->input_est);
        if ((s->cluster.usd_per_day > 0 || s->cluster.usd_per_month > 0) && s->route.model)
            sl_cmirror_spend(s->mirror,
                             sl_router_cost(s->route.model, u.input_tokens, u.output_tokens));
    }
    log_end(s, outcome, &u, what);
    s->paused = false;
}

/*
 * Frees the stream once it is over for everyone: ended and consumed, or released. Runs
 * after the reader's callback returned, never inside it. Returns false if freed.
 */
static bool
settle(struct sl_stream *s)
{
    if (!s->finished && s->state == ST_ENDED && s->journal.acked == s->journal.last) {
        s->finished = true;
        if (s->reader && s->reader->on_finished) {
            s->in_emit++;
            s->reader->on_finished(s->rd, s);
            s->in_emit--;
        }
        s->reader = NULL;
    }
    if (!s->finished || s->in_emit)
        return true;
    destroy(s);
    return false;
}

static void
destroy(struct sl_stream *s)
{
    sl_timeq_disarm(&s->deadline);
    sl_list_unlink(&s->slink);
    table_remove(s->env.table, s);
    if (s->dent)
        sl_directory_remove_entry(s->env.dir, s->dent);
    if (s->mirror)
        sl_cmirror_close(s->mirror);
    sl_journal_cleanup(&s->journal);
    sl_chat_req_free(s->req);
    free(s->system);
    free(s->id);
    free(s->user);
    free(s->session);
    free(s);
}

/* Stops whatever is running for the stream: the provider call or a pending retry. */
static void
stop_upstream(struct sl_stream *s)
{
    sl_list_unlink(&s->slink); /* not started yet: it never will be */
    if (s->call) {
        s->route.ops->cancel(s->call);
        s->call = NULL;
    }
    if (s->delay) {
        sl_delay_cancel(s->delay);
        s->delay = NULL;
    }
}

static void
fail(struct sl_stream *s, enum sl_errcode code, const char *message, bool retryable,
     int64_t retry_after_ms)
{
    struct sl_event ev = {.type = SL_EV_ERROR};
    ev.u.error.code = code;
    ev.u.error.message = message;
    ev.u.error.retryable = retryable;
    ev.u.error.retry_after_ms = retry_after_ms;
    ev.u.error.usage = final_usage(s);
    emit(s, &ev);
    end(s, SL_OUTCOME_ERROR, sl_errcode_name(code));
}

/* --- the provider sink -------------------------------------------------------------- */

/*
 * The identity's budget (limits.h), after each token: the running cost against the
 * stream's allowance, without a lock. Over budget, the provider is stopped and the stream
 * ends with BUDGET_EXCEEDED and its usage. Returns false if the stream was freed: call it
 * last.
 */
static bool
within_budget(struct sl_stream *s)
{
    if (s->ticket == NULL || s->state == ST_ENDED)
        return true;
    uint64_t in = s->have_usage && s->usage.input_tokens ? s->usage.input_tokens : s->input_est;
    uint64_t out =
        s->have_usage && s->usage.output_tokens > s->ndeltas ? s->usage.output_tokens : s->ndeltas;
    struct sl_limits_refusal why;
    if (sl_limits_stream_spend(s->ticket, sl_router_cost(s->route.model, in, out), &why))
        return true;
    sl_counter_add(&s->env.metrics->rate_limited[why.limit], 1);
    stop_upstream(s);
    fail(s, SL_ERR_BUDGET_EXCEEDED, why.message, false, why.retry_after_ms);
    return settle(s);
}

static void
on_delta_common(struct sl_stream *s, uint64_t t0)
{
    if (s->state != ST_GENERATING) {
        s->state = ST_GENERATING;
        s->t_first = t0;
        sl_metrics_observe(s->env.metrics, SL_HIST_TTFT, t0 - s->t_created);
        progress(s, "generating", NULL);
    } else {
        sl_metrics_observe(s->env.metrics, SL_HIST_INTER_TOKEN, t0 - s->t_last);
    }
    s->t_last = t0;
    s->ndeltas++;
}

static void
on_delta(void *ud, const char *text, size_t len)
{
    struct sl_stream *s = ud;
    uint64_t t0 = sl_clock_ns();
    on_delta_common(s, t0);
    struct sl_event ev = {.type = SL_EV_DELTA};
    ev.u.delta.text = text;
    ev.u.delta.len = len;
    emit(s, &ev);
    s->overhead_ns += sl_clock_ns() - t0;
    if (within_budget(s)) /* may free s */
        settle(s);        /* a reader may have cancelled from inside the event */
}

static void
on_tool_delta(void *ud, const struct sl_tool_delta *tool)
{
    struct sl_stream *s = ud;
    uint64_t t0 = sl_clock_ns();
    on_delta_common(s, t0);
    struct sl_event ev = {.type = SL_EV_DELTA};
    ev.u.delta.tool = tool;
    emit(s, &ev);
    s->overhead_ns += sl_clock_ns() - t0;
    if (within_budget(s)) /* may free s */
        settle(s);        /* a reader may have cancelled from inside the event */
}

static void
on_usage(void *ud, const struct sl_usage *u)
{
    struct sl_stream *s = ud;
    s->usage = *u;
    s->have_usage = true;
}

static void
on_done(void *ud, enum sl_finish finish, const char *native_finish)
{
    struct sl_stream *s = ud;
    uint64_t now = sl_clock_ns();
    s->call = NULL;
    struct sl_usage u = final_usage(s);
    struct sl_event ev = {.type = SL_EV_DONE};
    ev.u.done.finish = finish;
    ev.u.done.native_finish = native_finish;
    ev.u.done.usage = u;
    ev.u.done.cost_usd = sl_router_cost(s->route.model, u.input_tokens, u.output_tokens);
    ev.u.done.ttft_ms = s->t_first ? (s->t_first - s->t_created) / 1000000 : 0;
    ev.u.done.latency_ms = (now - s->t_created) / 1000000;
    ev.u.done.model = s->route.model->name;
    ev.u.done.provider = s->route.provider->name;
    emit(s, &ev);
    s->overhead_ns += sl_clock_ns() - now;
    end(s, SL_OUTCOME_DONE, sl_finish_name(finish));
    settle(s);
}

static void
retry_now(void *arg)
{
    struct sl_stream *s = arg;
    s->delay = NULL;
    attempt(s);
    settle(s);
}

/* Backoff for retry n (1-based): base * 2^(n-1), with full jitter over its upper half. */
static uint64_t
backoff_ms(const struct sl_config_provider *p, unsigned n, int64_t retry_after_ms)
{
    uint64_t base = p->retry_base_ms << (n - 1 < 16 ? n - 1 : 16);
    uint32_t r;
    sl_random(&r, sizeof(r));
    uint64_t ms = base / 2 + (base / 2 + 1) * r / UINT32_MAX;
    if (retry_after_ms > 0 && (uint64_t)retry_after_ms > ms)
        ms = (uint64_t)retry_after_ms;
    return ms;
}

/* A failed attempt before the first token: retry, fall back, or give up. */
static void
attempt_failed(struct sl_stream *s, const struct sl_upstream_error *err)
{
    struct sl_metrics *m = s->env.metrics;
    sl_counter_add(&m->providers[s->route.provider_index].errors[err->code], 1);

    if (s->state == ST_GENERATING) {
        /* Tokens went out: a retry would repeat them. Report, never retry. */
        fail(s, err->code, err->message, err->retryable, err->retry_after_ms);
        return;
    }
    const struct sl_config_provider *p = s->route.provider;
    /* A long Retry-After is better reported to the client than waited out here. */
    bool wait_ok = err->retry_after_ms < 0 || err->retry_after_ms <= 10000;
    if (err->retryable && s->attempts < p->max_retries && wait_ok) {
        s->attempts++;
        uint64_t ms = backoff_ms(p, s->attempts, err->retry_after_ms);
        char detail[64];
        snprintf(detail, sizeof(detail), "attempt %u in %llu ms", s->attempts + 1,
                 (unsigned long long)ms);
        s->state = ST_WAITING;
        progress(s, "retrying", detail);
        s->delay = sl_loop_delay(s->env.up->loop, ms, retry_now, s);
        return;
    }
    const struct sl_config_model *primary = NULL;
    struct sl_route r;
    if (resolve(&s->env, s->primary, &r) == 0)
        primary = r.model;
    while (primary && s->chain_pos < primary->nfallback) {
        const char *next = primary->fallback[s->chain_pos++];
        if (resolve(&s->env, next, &r) != 0)
            continue;
        s->route = r;
        s->attempts = 0;
        progress(s, "fallback", next);
        attempt(s);
        return;
    }
    fail(s, err->code, err->message, err->retryable, err->retry_after_ms);
}

static void
on_error(void *ud, const struct sl_upstream_error *err)
{
    struct sl_stream *s = ud;
    s->call = NULL;
    s->paused = false;
    attempt_failed(s, err);
    settle(s);
}

static const struct sl_upstream_sink sink = {
    .on_delta = on_delta,
    .on_tool_delta = on_tool_delta,
    .on_usage = on_usage,
    .on_done = on_done,
    .on_error = on_error,
};

/* limits.stream_timeout: the whole stream, retries and fallbacks included, took too long. */
static void
on_stream_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_stream *s = SL_CONTAINER_OF(n, struct sl_stream, deadline);
    if (s->state == ST_ENDED)
        return;
    stop_upstream(s);
    char msg[96];
    snprintf(msg, sizeof(msg), "the stream ran longer than limits.stream_timeout (%llu ms)",
             (unsigned long long)s->env.table->stream_timeout.duration_ms);
    fail(s, SL_ERR_UPSTREAM_TIMEOUT, msg, true, -1);
    settle(s);
}

/* --- lifecycle ------------------------------------------------------------------------ */

static void
attempt(struct sl_stream *s)
{
    struct sl_upstream_error err = {.code = SL_ERR_UPSTREAM_ERROR, .retry_after_ms = -1};
    s->state = ST_CONNECTING;
    /* A failed attempt may have reported usage (Anthropic's message_start): not this one's. */
    s->have_usage = false;
    memset(&s->usage, 0, sizeof(s->usage));
    if (s->route.ops == NULL) {
        err.message = "this provider kind is not available in this build";
        attempt_failed(s, &err);
        return;
    }
    progress(s, "connecting", s->chain_pos ? s->route.model->name : NULL);
    char rid[48];
    snprintf(rid, sizeof(rid), "sluice-%s", s->epoch);
    struct sl_call_params p = {
        .req = s->req,
        .provider = s->route.provider,
        .upstream_model = s->route.model->upstream_model,
        .system = s->system,
        .max_tokens = s->max_tokens > 0            ? s->max_tokens
                      : s->route.model->max_tokens ? (int64_t)s->route.model->max_tokens
                                                   : -1,
        .temperature = s->temperature,
        .has_temperature = s->has_temperature,
        .request_id = rid,
    };
    if (s->t_call == 0) {
        s->t_call = sl_clock_ns();
        s->overhead_ns += s->t_call - s->t_created;
    }
    s->call = s->route.ops->start(s->env.up, &p, &sink, s, &err);
    if (s->call == NULL) {
        attempt_failed(s, &err);
    } else if (s->route.ops->queued && s->route.ops->queued(s->call)) {
        /* The provider's connections are all busy on this worker: say so, and count it. */
        sl_counter_add(&s->env.metrics->providers[s->route.provider_index].queued, 1);
        progress(s, "queued", NULL);
    }
}

struct sl_stream *
sl_stream_new(const struct sl_stream_env *env, struct sl_chat_req *req, const char *id,
              const struct sl_stream_owner *owner, enum sl_errcode *code, const char **why)
{
    const struct sl_config *cfg = env->cfg;
    const struct sl_config_agent *agent = NULL;
    if (req->agent) {
        agent = sl_config_find_agent(cfg, req->agent);
        if (agent == NULL) {
            *code = SL_ERR_UNKNOWN_MODEL;
            *why = "unknown agent";
            sl_chat_req_free(req);
            return NULL;
        }
    }
    const char *model = req->model ? req->model : agent ? agent->model : cfg->default_model;
    struct sl_route route;
    if (resolve(env, model, &route) != 0) {
        *code = SL_ERR_UNKNOWN_MODEL;
        *why = "unknown model";
        sl_chat_req_free(req);
        return NULL;
    }

    struct sl_stream *s = sl_calloc(1, sizeof(*s));
    s->env = *env;
    s->req = req;
    s->id_len = strlen(id);
    s->id = sl_strndup(id, s->id_len);
    s->user = sl_strdup(owner->user ? owner->user : "");
    s->session = owner->session ? sl_strdup(owner->session) : NULL;
    s->conn = owner->conn;
    sl_random_id(s->epoch, 16);
    s->agent = agent;
    s->route = route;
    s->primary = route.model->name;
    s->t_created = sl_clock_ns();
    s->wall_created = sl_wall_ms();
    struct sl_streams *t = env->table;
    sl_journal_init(&s->journal, &t->pool, t->journal_max_events, t->journal_max_bytes, t->retain);
    sl_timeq_node_init(&s->deadline);
    sl_list_init(&s->slink);
    if (t->loop && t->stream_timeout.duration_ms > 0)
        sl_loop_arm(t->loop, &t->stream_timeout, &s->deadline);

    if (agent && agent->system && req->system) {
        size_t a = strlen(agent->system), b = strlen(req->system);
        s->system = sl_malloc(a + b + 3);
        memcpy(s->system, agent->system, a);
        memcpy(s->system + a, "\n\n", 2);
        memcpy(s->system + a + 2, req->system, b + 1);
    } else if (agent && agent->system) {
        s->system = sl_strdup(agent->system);
    } else if (req->system) {
        s->system = sl_strdup(req->system);
    }
    s->max_tokens = req->max_tokens > 0          ? req->max_tokens
                    : agent && agent->max_tokens ? (int64_t)agent->max_tokens
                                                 : -1;
    if (req->has_temperature) {
        s->temperature = req->temperature;
        s->has_temperature = true;
    } else if (agent && agent->has_temperature) {
        s->temperature = agent->temperature;
        s->has_temperature = true;
    }
    sl_counter_add(&env->metrics->streams_started, 1);

    /* Into the table. */
    s->hash = key_hash(s->user, s->id);
    if (t->count + 1 > t->nbuckets)
        grow(t);
    size_t b = s->hash & (t->nbuckets - 1);
    bucket_push(&t->buckets[b], s);
    t->count++;
    sl_list_push_back(&t->all, &s->link);
    if (env->dir)
        s->dent = sl_directory_add(env->dir, s->user, s->id, s->epoch, env->worker);
    s->mirror = sl_cluster_mirror(env->cluster, s);
    return s;
}

void
sl_stream_attach(struct sl_stream *s, const struct sl_stream_reader *r, void *rd, bool live)
{
    const struct sl_stream_reader *old = s->reader;
    void *old_rd = s->rd;
    s->reader = r;
    s->rd = rd;
    if (old && (old != r || old_rd != rd) && old->on_taken)
        old->on_taken(old_rd, s);
    sl_stream_set_live(s, live);
}

void
sl_stream_set_live(struct sl_stream *s, bool live)
{
    s->live = live;
    if (s->state == ST_ENDED)
        return;
    if (over_high_water(s))
        pause_provider(s);
    else if (s->paused && s->journal.backlog <= s->env.table->high_water / 4 &&
             !sl_journal_full(&s->journal))
        resume_provider(s);
}

bool
sl_stream_consumed(struct sl_stream *s, struct sl_jcursor *cur)
{
    sl_journal_ack(&s->journal, cur);
    if (s->paused && !sl_journal_full(&s->journal) &&
        (!s->live || s->journal.backlog <= s->env.table->high_water / 4))
        resume_provider(s);
    return settle(s);
}

void
sl_stream_set_ticket(struct sl_stream *s, struct sl_limits_ticket *t)
{
    s->ticket = t;
    s->input_est = final_usage(s).input_tokens; /* no usage yet: the estimate */
}

/*
 * Fair admission. Starting a stream (building its request, handing it to curl, and curl
 * opening its connection on the next turn) is the expensive part of a new stream; a burst
 * of a thousand chats read in one loop turn would start them all in that turn, and the
 * first stream's token would wait behind the setup of the last. So a worker spends at most
 * START_BUDGET_NS of each loop turn starting streams (measured, so the number adapts to
 * what a start costs); the rest wait, in order, in the table's starting queue for the next
 * turns, while the tokens of the streams already running keep flowing in between.
 */
#define START_BUDGET_NS 1000000u

static void run_starts(void *arg);

/*
 * The `start` event, then the first attempt. A stream that waited for its turn says
 * `start` only now, so that the client gets it with `connecting` in one write.
 */
static void
begin(struct sl_stream *s)
{
    struct sl_event ev = {.type = SL_EV_START};
    ev.u.start.epoch = s->epoch;
    ev.u.start.model = s->route.model->name;
    ev.u.start.provider = s->route.provider->name;
    emit(s, &ev);
    if (s->state == ST_NEW) /* else the reader cancelled from inside the event */
        attempt(s);
}

/* Starts s now, charging its cost to this turn's budget. */
static void
start_timed(struct sl_streams *t, struct sl_stream *s)
{
    uint64_t t0 = sl_clock_ns();
    begin(s);
    t->turn_spent_ns += sl_clock_ns() - t0;
}

/*
 * Whether this loop turn has budget left for a start. A new turn starts charged with what
 * curl spent since the last one setting up the transfers started before (its timer action:
 * connects, requests sent): that is new-stream work too, and a cold burst's largest part.
 */
static bool
budget_left(struct sl_streams *t)
{
    uint64_t turn = sl_loop_turn(t->loop);
    if (turn != t->turn) {
        uint64_t setup = sl_upstream_setup_ns(t->up);
        /* Only a burst's (starts in consecutive turns): an idle worker starts at once. */
        t->turn_spent_ns = turn == t->turn + 1 ? setup - t->setup_mark : 0;
        t->turn = turn;
        t->setup_mark = setup;
    }
    return t->turn_spent_ns < START_BUDGET_NS;
}

static void
arm_starts(struct sl_streams *t)
{
    if (!sl_list_empty(&t->starting))
        sl_loop_soon(t->loop, run_starts, t);
}

/* A later iteration (before its I/O): the oldest waiting streams start, in budget. */
static void
run_starts(void *arg)
{
    struct sl_streams *t = arg;
    while (!sl_list_empty(&t->starting) && budget_left(t)) {
        struct sl_stream *s = SL_CONTAINER_OF(t->starting.next, struct sl_stream, slink);
        sl_list_unlink(&s->slink);
        start_timed(t, s);
        settle(s);
    }
    arm_starts(t);
}

/* Starts s now if this turn's budget allows, else queues it (fair admission). */
static bool
fair_start(struct sl_stream *s)
{
    struct sl_streams *t = s->env.table;
    t->up = s->env.up;
    if (t->loop == NULL) {
        begin(s);
    } else if (sl_list_empty(&t->starting) && budget_left(t)) {
        start_timed(t, s);
    } else {
        sl_list_push_back(&t->starting, &s->slink);
        arm_starts(t);
    }
    return settle(s);
}

void
sl_stream_set_cluster_limits(struct sl_stream *s, const struct sl_cluster_limits *l)
{
    s->cluster = *l;
}

bool
sl_stream_start(struct sl_stream *s)
{
    const struct sl_cluster_limits *l = &s->cluster;
    bool any = l->max_streams || l->tokens_per_minute || l->chats_per_minute ||
               l->usd_per_day > 0 || l->usd_per_month > 0;
    if (s->mirror && any && sl_cmirror_admit(s->mirror, l, s->input_est)) {
        s->cluster_counted = true;
        return true; /* on with sl_stream_admitted() */
    }
    return fair_start(s);
}

void
sl_stream_admitted(struct sl_stream *s, int verdict)
{
    if (s->state != ST_NEW)
        return; /* cancelled or stopped meanwhile */
    if (verdict == 1) {
        fair_start(s);
        return;
    }
    char msg[160];
    enum sl_errcode code = SL_ERR_RATE_LIMITED;
    int64_t retry = SL_LIMITS_HELD_RETRY_MS;
    if (verdict == 0) {
        sl_counter_add(&s->env.metrics->rate_limited[SL_LIMIT_STREAMS], 1);
        snprintf(msg, sizeof(msg),
                 "too many streams: at most %u at once for this user across the cluster",
                 s->cluster.max_streams);
    } else if (verdict == -4) {
        sl_counter_add(&s->env.metrics->rate_limited[SL_LIMIT_MESSAGES], 1);
        snprintf(msg, sizeof(msg),
                 "too many requests: at most %u a minute for this user across the cluster",
                 s->cluster.chats_per_minute);
        retry = 60000 / (s->cluster.chats_per_minute ? s->cluster.chats_per_minute : 1);
    } else if (verdict == -1) {
        sl_counter_add(&s->env.metrics->rate_limited[SL_LIMIT_TOKENS], 1);
        snprintf(msg, sizeof(msg),
                 "too many tokens: at most %u a minute for this user across the cluster",
                 s->cluster.tokens_per_minute);
    } else {
        bool day = verdict == -2;
        int64_t now = (int64_t)sl_wall_ms();
        sl_counter_add(
            &s->env.metrics->rate_limited[day ? SL_LIMIT_BUDGET_DAY : SL_LIMIT_BUDGET_MONTH], 1);
        snprintf(msg, sizeof(msg), "budget exhausted: $%.2f a %s for this user across the cluster",
                 day ? s->cluster.usd_per_day : s->cluster.usd_per_month, day ? "day" : "month");
        code = SL_ERR_BUDGET_EXCEEDED;
        retry = (day ? sl_limits_next_day_ms(now) : sl_limits_next_month_ms(now)) - now;
    }
    s->cluster_counted = false; /* refused: nothing of it was counted */
    fail(s, code, msg, code == SL_ERR_RATE_LIMITED, retry);
    settle(s);
}

unsigned
sl_streams_starting(const struct sl_streams *t)
{
    unsigned n = 0;
    for (const struct sl_list *l = t->starting.next; l != &t->starting; l = l->next)
        n++;
    return n;
}

bool
sl_stream_cancel(struct sl_stream *s, const char *reason)
{
    if (s->state != ST_ENDED) {
        stop_upstream(s);
        struct sl_event ev = {.type = SL_EV_CANCELLED};
        ev.u.cancelled.usage = final_usage(s);
        ev.u.cancelled.reason = reason;
        emit(s, &ev);
        end(s, SL_OUTCOME_CANCELLED, reason);
    }
    return settle(s);
}

bool
sl_stream_shutdown(struct sl_stream *s, int64_t retry_after_ms)
{
    if (s->state != ST_ENDED) {
        stop_upstream(s);
        fail(s, SL_ERR_SHUTTING_DOWN, "the server is shutting down; resume or retry elsewhere",
             true, retry_after_ms);
    }
    return settle(s);
}

void
sl_stream_release(struct sl_stream *s)
{
    sl_assert(!s->in_emit);
    s->reader = NULL;
    if (s->state != ST_ENDED) {
        stop_upstream(s);
        end(s, SL_OUTCOME_DISCONNECTED, "client gone");
    }
    s->finished = true;
    settle(s);
}

const char *
sl_stream_id(const struct sl_stream *s)
{
    return s->id;
}

const char *
sl_stream_user(const struct sl_stream *s)
{
    return s->user;
}

const char *
sl_stream_epoch(const struct sl_stream *s)
{
    return s->epoch;
}

bool
sl_stream_ended(const struct sl_stream *s)
{
    return s->state == ST_ENDED;
}

bool
sl_stream_generating(const struct sl_stream *s)
{
    return s->state == ST_GENERATING;
}

bool
sl_stream_paused(const struct sl_stream *s)
{
    return s->paused;
}

struct sl_journal *
sl_stream_journal(struct sl_stream *s)
{
    return &s->journal;
}

void
sl_stream_info(const struct sl_stream *s, struct sl_stream_info *out)
{
    out->agent = s->agent ? s->agent->name : NULL;
    out->input_tokens = s->have_usage && s->usage.input_tokens ? s->usage.input_tokens
                                                               : final_usage(s).input_tokens;
    out->price_in_per_1m = s->route.model ? s->route.model->price_input_per_1m : 0;
    out->price_out_per_1m = s->route.model ? s->route.model->price_output_per_1m : 0;
    out->started_ms = s->wall_created;
}

const char *
sl_stream_model(const struct sl_stream *s)
{
    return s->route.model ? s->route.model->name : s->primary;
}

const char *
sl_stream_provider(const struct sl_stream *s)
{
    return s->route.provider ? s->route.provider->name : NULL;
}

/* --- the table ------------------------------------------------------------------------ */

/* Journal blocks kept for reuse per worker: enough for a burst of new streams. */
#define POOL_MAX_FREE 4096

void
sl_streams_init(struct sl_streams *t, const struct sl_config *cfg, struct sl_loop *loop)
{
    memset(t, 0, sizeof(*t));
    t->loop = loop;
    sl_timeq_init(&t->stream_timeout, cfg->limits.stream_timeout_ms, on_stream_timeout);
    if (loop && cfg->limits.stream_timeout_ms > 0)
        sl_loop_add_timeq(loop, &t->stream_timeout);
    t->nbuckets = 64;
    t->buckets = sl_calloc(t->nbuckets, sizeof(*t->buckets));
    sl_list_init(&t->all);
    sl_list_init(&t->starting);
    sl_jpool_init(&t->pool, POOL_MAX_FREE);
    t->journal_max_events = cfg->resume.max_events;
    t->journal_max_bytes = cfg->resume.max_bytes;
    t->retain = cfg->resume.window_ms > 0;
    t->high_water = cfg->limits.send_high_water;
}

void
sl_streams_cleanup(struct sl_streams *t)
{
    sl_assert(t->count == 0);
    free(t->buckets);
    t->buckets = NULL;
    sl_jpool_cleanup(&t->pool);
}

static uint32_t
key_hash(const char *user, const char *id)
{
    /* FNV-1a over "user\0id": tables are per worker and small; no attacker controls
     * the bucket count, and a chain is only walked on a resume or a duplicate check. */
    uint32_t h = 2166136261u;
    for (const char *p = user; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

static void
bucket_push(struct sl_stream **head, struct sl_stream *s)
{
    s->hnext = *head;
    if (*head)
        (*head)->hprev = &s->hnext;
    *head = s;
    s->hprev = head;
}

static void
grow(struct sl_streams *t)
{
    size_t n = t->nbuckets * 2;
    struct sl_stream **nb = sl_calloc(n, sizeof(*nb));
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct sl_stream *s = t->buckets[i];
        while (s) {
            struct sl_stream *next = s->hnext;
            bucket_push(&nb[s->hash & (n - 1)], s);
            s = next;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->nbuckets = n;
}

/*
 * Out of its bucket in O(1): the streams of one API key whose clients all say id "1" share
 * a bucket, and a burst's ends would each walk it.
 */
static void
table_remove(struct sl_streams *t, struct sl_stream *s)
{
    sl_assert(*s->hprev == s);
    *s->hprev = s->hnext;
    if (s->hnext)
        s->hnext->hprev = s->hprev;
    t->count--;
    sl_list_unlink(&s->link);
}

struct sl_stream *
sl_streams_find(struct sl_streams *t, const char *user, const char *id, const char *epoch)
{
    uint32_t h = key_hash(user, id);
    struct sl_stream *best = NULL;
    for (struct sl_stream *s = t->buckets[h & (t->nbuckets - 1)]; s; s = s->hnext) {
        if (s->hash != h || s->finished || strcmp(s->user, user) != 0 || strcmp(s->id, id) != 0)
            continue;
        if (epoch) {
            if (strcmp(s->epoch, epoch) == 0)
                return s;
        } else if (best == NULL || s->t_created > best->t_created) {
            best = s;
        }
    }
    return best;
}

void
sl_streams_foreach(struct sl_streams *t, void (*fn)(struct sl_stream *s, void *arg), void *arg)
{
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &t->all) fn(SL_CONTAINER_OF(pos, struct sl_stream, link), arg);
}
