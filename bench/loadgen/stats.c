#include "stats.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/jsonw.h"

static void
errors_add_n(struct lg_errors *e, const char *name, size_t len, uint64_t count)
{
    if (len >= LG_ERR_NAME_MAX)
        len = LG_ERR_NAME_MAX - 1;
    e->total += count;
    for (unsigned i = 0; i < e->n; i++) {
        if (strlen(e->e[i].name) == len && memcmp(e->e[i].name, name, len) == 0) {
            e->e[i].count += count;
            return;
        }
    }
    if (e->n == LG_ERR_NAMES) {
        /* The last slot becomes the catch-all once the table is full. */
        strcpy(e->e[LG_ERR_NAMES - 1].name, "OTHER");
        e->e[LG_ERR_NAMES - 1].count += count;
        return;
    }
    memcpy(e->e[e->n].name, name, len);
    e->e[e->n].name[len] = '\0';
    e->e[e->n].count = count;
    e->n++;
}

void
lg_errors_add(struct lg_errors *e, const char *name, size_t len)
{
    errors_add_n(e, name, len, 1);
}

void
lg_errors_add_str(struct lg_errors *e, const char *name)
{
    errors_add_n(e, name, strlen(name), 1);
}

void
lg_errors_add_n(struct lg_errors *e, const char *name, uint64_t count)
{
    errors_add_n(e, name, strlen(name), count);
}

static void
errors_merge(struct lg_errors *dst, const struct lg_errors *src)
{
    for (unsigned i = 0; i < src->n; i++)
        errors_add_n(dst, src->e[i].name, strlen(src->e[i].name), src->e[i].count);
}

void
lg_stats_init(struct lg_stats *s)
{
    memset(s, 0, sizeof(*s));
    lg_hist_init(&s->latency);
    lg_hist_init(&s->ttft);
    lg_hist_init(&s->connect);
    lg_hist_init(&s->auth);
    lg_hist_init(&s->reconnect);
    lg_hist_init(&s->reconnect_hs);
    lg_hist_init(&s->resume);
    lg_hist_init(&s->replay);
    lg_hist_init(&s->live);
    lg_hist_init(&s->live_lag);
}

void
lg_stats_merge(struct lg_stats *dst, const struct lg_stats *src)
{
    lg_hist_merge(&dst->latency, &src->latency);
    lg_hist_merge(&dst->ttft, &src->ttft);
    lg_hist_merge(&dst->connect, &src->connect);
    lg_hist_merge(&dst->auth, &src->auth);
    dst->conns_ok += src->conns_ok;
    dst->conns_failed += src->conns_failed;
    dst->streams_ok += src->streams_ok;
    dst->streams_failed += src->streams_failed;
    dst->tokens += src->tokens;
    dst->stamped += src->stamped;
    dst->messages += src->messages;
    dst->bytes += src->bytes;
    errors_merge(&dst->errors, &src->errors);
    dst->cut_conns += src->cut_conns;
    dst->cut_streams += src->cut_streams;
    dst->reconnected += src->reconnected;
    dst->reconnect_failed += src->reconnect_failed;
    dst->resumes_sent += src->resumes_sent;
    dst->resumes_answered += src->resumes_answered;
    dst->resumes_refused += src->resumes_refused;
    lg_hist_merge(&dst->reconnect, &src->reconnect);
    lg_hist_merge(&dst->reconnect_hs, &src->reconnect_hs);
    lg_hist_merge(&dst->resume, &src->resume);
    lg_hist_merge(&dst->replay, &src->replay);
    lg_hist_merge(&dst->live, &src->live);
    lg_hist_merge(&dst->live_lag, &src->live_lag);
    dst->verified += src->verified;
    dst->exact += src->exact;
    dst->tokens_lost += src->tokens_lost;
    dst->tokens_dup += src->tokens_dup;
    dst->garbled += src->garbled;
    dst->extra += src->extra;
    dst->seq_regressed += src->seq_regressed;
}

uint64_t
lg_report_errors(const struct lg_report *r, const struct lg_stats *s)
{
    return s->errors.total + (r->timed_out ? 1 : 0) + (r->cut_missed ? 1 : 0);
}

/* --- derived figures ------------------------------------------------------------------- */

static const double pcts[] = {50, 90, 99, 99.9};
static const char *const pct_names[] = {"p50", "p90", "p99", "p99.9"};

static double
ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static double
round3(double v)
{
    return round(v * 1000.0) / 1000.0;
}

static bool
have_server(const struct lg_report *r)
{
    return r->server_pid > 0 && r->srv_start.ok && r->srv_connected.ok && r->srv_end.ok;
}

/* Server CPU over the streaming phase, per token delivered, in µs; < 0 if unknown. */
static double
cpu_us_per_token(const struct lg_report *r, const struct lg_stats *s)
{
    if (!have_server(r) || s->tokens == 0)
        return -1;
    return (r->srv_end.cpu_s - r->srv_connected.cpu_s) * 1e6 / (double)s->tokens;
}

/* Server RSS added per open connection, in bytes; < 0 if unknown. */
static double
rss_per_conn(const struct lg_report *r, const struct lg_stats *s)
{
    if (!have_server(r) || s->conns_ok == 0)
        return -1;
    return ((double)r->srv_connected.rss_kib - (double)r->srv_start.rss_kib) * 1024.0 /
           (double)s->conns_ok;
}

static double
tokens_per_s(const struct lg_report *r, const struct lg_stats *s)
{
    return r->stream_wall_s > 0 ? (double)s->tokens / r->stream_wall_s : 0;
}

/* --- JSON ----------------------------------------------------------------------------- */

static void
key(struct sl_buf *b, const char *k, bool *first)
{
    if (!*first)
        sl_buf_append_byte(b, ',');
    *first = false;
    sl_jsonw_cstr(b, k);
    sl_buf_append_byte(b, ':');
}

static void
kv_num(struct sl_buf *b, const char *k, double v, bool *first)
{
    key(b, k, first);
    sl_jsonw_double(b, round3(v));
}

static void
kv_uint(struct sl_buf *b, const char *k, uint64_t v, bool *first)
{
    key(b, k, first);
    sl_jsonw_uint(b, v);
}

static void
kv_str(struct sl_buf *b, const char *k, const char *v, bool *first)
{
    key(b, k, first);
    if (v)
        sl_jsonw_cstr(b, v);
    else
        SL_JSONW_LIT(b, "null");
}

/* {"count":n,"mean":..,"p50":..,...,"max":..} in milliseconds. */
static void
hist_json(struct sl_buf *b, const struct lg_hist *h)
{
    bool first = true;
    sl_buf_append_byte(b, '{');
    kv_uint(b, "count", h->count, &first);
    kv_num(b, "mean", lg_hist_mean(h) / 1000.0, &first);
    kv_num(b, "p10", ms(lg_hist_percentile(h, 10)), &first);
    for (size_t i = 0; i < SL_ARRAY_LEN(pcts); i++)
        kv_num(b, pct_names[i], ms(lg_hist_percentile(h, pcts[i])), &first);
    kv_num(b, "max", ms(h->max), &first);
    sl_buf_append_byte(b, '}');
}

static void
sample_json(struct sl_buf *b, const char *k, const struct lg_proc_sample *p, bool *first)
{
    key(b, k, first);
    if (!p->ok) {
        SL_JSONW_LIT(b, "null");
        return;
    }
    bool f = true;
    sl_buf_append_byte(b, '{');
    kv_num(b, "cpu_s", p->cpu_s, &f);
    kv_uint(b, "rss_kib", p->rss_kib, &f);
    sl_buf_append_byte(b, '}');
}

static void
kv_hist(struct sl_buf *b, const char *k, const struct lg_hist *h, bool *first)
{
    key(b, k, first);
    hist_json(b, h);
}

static void
cut_json(struct sl_buf *b, const struct lg_report *r, const struct lg_stats *s, bool *first)
{
    key(b, "cut", first);
    if (!r->cut) {
        SL_JSONW_LIT(b, "null");
        return;
    }
    bool f = true;
    sl_buf_append_byte(b, '{');
    kv_str(b, "trigger", r->cut_trigger, &f);
    key(b, "at_s", &f);
    if (r->cut_at_s >= 0)
        sl_jsonw_double(b, round3(r->cut_at_s));
    else
        SL_JSONW_LIT(b, "null");
    kv_uint(b, "connections", s->cut_conns, &f);
    kv_uint(b, "streams", s->cut_streams, &f);
    kv_uint(b, "reconnected", s->reconnected, &f);
    kv_uint(b, "reconnect_failed", s->reconnect_failed, &f);
    kv_uint(b, "resumes_sent", s->resumes_sent, &f);
    kv_uint(b, "resumes_answered", s->resumes_answered, &f);
    kv_uint(b, "resumes_refused", s->resumes_refused, &f);
    key(b, "resumed_wall_s", &f);
    if (r->resumed_wall_s >= 0)
        sl_jsonw_double(b, round3(r->resumed_wall_s));
    else
        SL_JSONW_LIT(b, "null");
    key(b, "server_cpu_s", &f);
    if (r->srv_cut.ok && r->srv_resumed.ok && r->resumed_wall_s >= 0)
        sl_jsonw_double(b, round3(r->srv_resumed.cpu_s - r->srv_cut.cpu_s));
    else
        SL_JSONW_LIT(b, "null");
    kv_hist(b, "reconnect_ms", &s->reconnect, &f);
    kv_hist(b, "reconnect_handshake_ms", &s->reconnect_hs, &f);
    kv_hist(b, "resume_ms", &s->resume, &f);
    kv_hist(b, "replay_ms", &s->replay, &f);
    kv_hist(b, "live_ms", &s->live, &f);
    kv_hist(b, "live_lag_ms", &s->live_lag, &f);
    sl_buf_append_byte(b, '}');
}

static void
verify_json(struct sl_buf *b, const struct lg_report *r, const struct lg_stats *s, bool *first)
{
    key(b, "verify", first);
    if (!r->verify) {
        SL_JSONW_LIT(b, "null");
        return;
    }
    bool f = true;
    sl_buf_append_byte(b, '{');
    kv_uint(b, "streams", s->verified, &f);
    kv_uint(b, "exact", s->exact, &f);
    kv_uint(b, "tokens_lost", s->tokens_lost, &f);
    kv_uint(b, "tokens_duplicated", s->tokens_dup, &f);
    kv_uint(b, "garbled", s->garbled, &f);
    kv_uint(b, "extra", s->extra, &f);
    kv_uint(b, "seq_regressed", s->seq_regressed, &f);
    sl_buf_append_byte(b, '}');
}

static void
srvm_sample_json(struct sl_buf *b, const char *k, const struct lg_srvm_sample *m, bool *first)
{
    key(b, k, first);
    if (!m->ok) {
        SL_JSONW_LIT(b, "null");
        return;
    }
    bool f = true;
    sl_buf_append_byte(b, '{');
    for (int i = 0; i < LG_SRVM__COUNT; i++) {
        key(b, lg_srvm_names[i], &f);
        if (m->v[i] >= 0)
            sl_jsonw_double(b, m->v[i]);
        else
            SL_JSONW_LIT(b, "null");
    }
    sl_buf_append_byte(b, '}');
}

/* Journal bytes per active stream of a sample; < 0 if unknown. */
static double
per_stream(const struct lg_srvm_sample *m)
{
    if (!m->ok || m->v[LG_SRVM_JOURNAL_BYTES] < 0 || m->v[LG_SRVM_STREAMS_ACTIVE] <= 0)
        return -1;
    return m->v[LG_SRVM_JOURNAL_BYTES] / m->v[LG_SRVM_STREAMS_ACTIVE];
}

static void
kv_opt(struct sl_buf *b, const char *k, double v, bool *first)
{
    key(b, k, first);
    if (v >= 0)
        sl_jsonw_double(b, round(v));
    else
        SL_JSONW_LIT(b, "null");
}

static void
srvm_json(struct sl_buf *b, const struct lg_report *r, bool *first)
{
    key(b, "server_metrics", first);
    if (!r->srvm) {
        SL_JSONW_LIT(b, "null");
        return;
    }
    bool f = true;
    sl_buf_append_byte(b, '{');
    kv_uint(b, "samples", r->srvm_samples, &f);
    kv_uint(b, "failed", r->srvm_failed, &f);
    srvm_sample_json(b, "at_cut", &r->srvm_cut, &f);
    srvm_sample_json(b, "peak", &r->srvm_peak, &f);
    srvm_sample_json(b, "end", &r->srvm_end, &f);
    kv_opt(b, "journal_bytes_per_stream_at_cut", per_stream(&r->srvm_cut), &f);
    kv_opt(b, "journal_bytes_per_stream_peak", r->srvm_peak_per_stream, &f);
    sl_buf_append_byte(b, '}');
}

void
lg_report_json(struct sl_buf *b, const struct lg_report *r, const struct lg_stats *s)
{
    bool first = true;
    sl_buf_append_byte(b, '{');
    kv_str(b, "label", r->label, &first);
    kv_str(b, "mode", r->mode, &first);
    kv_str(b, "dialect", r->dialect, &first);
    kv_str(b, "namespace", r->nsp, &first);
    kv_str(b, "target", r->target, &first);
    kv_str(b, "model", r->model, &first);
    kv_uint(b, "threads", r->threads, &first);
    kv_uint(b, "connections", r->connections, &first);
    kv_uint(b, "streams_per_connection", r->streams_per_conn, &first);
    kv_uint(b, "concurrency", r->concurrency, &first);
    kv_num(b, "idle_s", r->idle_s, &first);
    kv_num(b, "spread_s", r->spread_s, &first);
    key(b, "ok", &first);
    if (lg_report_errors(r, s) == 0)
        SL_JSONW_LIT(b, "true");
    else
        SL_JSONW_LIT(b, "false");

    key(b, "connect", &first);
    {
        bool f = true;
        sl_buf_append_byte(b, '{');
        kv_uint(b, "ok", s->conns_ok, &f);
        kv_uint(b, "failed", s->conns_failed, &f);
        kv_num(b, "wall_s", r->connect_wall_s, &f);
        key(b, "ms", &f);
        hist_json(b, &s->connect);
        key(b, "auth_ms", &f);
        hist_json(b, &s->auth);
        sl_buf_append_byte(b, '}');
    }
    key(b, "streams", &first);
    {
        bool f = true;
        sl_buf_append_byte(b, '{');
        kv_uint(b, "ok", s->streams_ok, &f);
        kv_uint(b, "failed", s->streams_failed, &f);
        kv_num(b, "wall_s", r->stream_wall_s, &f);
        sl_buf_append_byte(b, '}');
    }
    key(b, "tokens", &first);
    {
        bool f = true;
        sl_buf_append_byte(b, '{');
        kv_uint(b, "total", s->tokens, &f);
        kv_uint(b, "stamped", s->stamped, &f);
        kv_num(b, "per_s", tokens_per_s(r, s), &f);
        kv_uint(b, "messages", s->messages, &f);
        kv_uint(b, "bytes", s->bytes, &f);
        sl_buf_append_byte(b, '}');
    }
    key(b, "latency_ms", &first);
    hist_json(b, &s->latency);
    key(b, "ttft_ms", &first);
    hist_json(b, &s->ttft);

    key(b, "errors", &first);
    {
        bool f = true;
        sl_buf_append_byte(b, '{');
        kv_uint(b, "total", lg_report_errors(r, s), &f);
        key(b, "by_code", &f);
        bool g = true;
        sl_buf_append_byte(b, '{');
        for (unsigned i = 0; i < s->errors.n; i++)
            kv_uint(b, s->errors.e[i].name, s->errors.e[i].count, &g);
        if (r->timed_out)
            kv_uint(b, r->interrupted ? "INTERRUPTED" : "RUN_TIMEOUT", 1, &g);
        if (r->cut_missed)
            kv_uint(b, "CUT_MISSED", 1, &g);
        sl_buf_append_byte(b, '}');
        sl_buf_append_byte(b, '}');
    }
    cut_json(b, r, s, &first);
    verify_json(b, r, s, &first);
    srvm_json(b, r, &first);

    key(b, "server", &first);
    if (r->server_pid <= 0) {
        SL_JSONW_LIT(b, "null");
    } else {
        bool f = true;
        sl_buf_append_byte(b, '{');
        kv_uint(b, "pid", (uint64_t)r->server_pid, &f);
        sample_json(b, "start", &r->srv_start, &f);
        sample_json(b, "connected", &r->srv_connected, &f);
        sample_json(b, "end", &r->srv_end, &f);
        double cpt = cpu_us_per_token(r, s);
        double rpc = rss_per_conn(r, s);
        if (have_server(r)) {
            kv_num(b, "connect_cpu_s", r->srv_connected.cpu_s - r->srv_start.cpu_s, &f);
            kv_num(b, "stream_cpu_s", r->srv_end.cpu_s - r->srv_connected.cpu_s, &f);
        }
        /* A burst: from the streams' start until each had its first token. */
        if (r->srv_connected.ok && r->srv_firsts.ok && r->firsts > 0) {
            double cpu = r->srv_firsts.cpu_s - r->srv_connected.cpu_s;
            kv_num(b, "firsts_cpu_s", round3(cpu), &f);
            kv_num(b, "firsts_wall_s", round3(r->firsts_wall_s), &f);
            kv_num(b, "cpu_us_per_new_stream", round3(cpu * 1e6 / (double)r->firsts), &f);
        }
        key(b, "cpu_us_per_token", &f);
        if (cpt >= 0)
            sl_jsonw_double(b, round3(cpt));
        else
            SL_JSONW_LIT(b, "null");
        key(b, "rss_bytes_per_connection", &f);
        if (have_server(r) && s->conns_ok > 0)
            sl_jsonw_double(b, round(rpc));
        else
            SL_JSONW_LIT(b, "null");
        sl_buf_append_byte(b, '}');
    }
    key(b, "loadgen", &first);
    {
        bool f = true;
        sl_buf_append_byte(b, '{');
        kv_num(b, "cpu_s", r->loadgen_cpu_s, &f);
        sl_buf_append_byte(b, '}');
    }
    sl_buf_append_byte(b, '}');
}

/* --- table ---------------------------------------------------------------------------- */

static void
hist_row(FILE *f, const char *name, const struct lg_hist *h)
{
    fprintf(f, "  %-10s %9llu", name, (unsigned long long)h->count);
    if (h->count == 0) {
        fputs("        -        -        -        -        -\n", f);
        return;
    }
    for (size_t i = 0; i < SL_ARRAY_LEN(pcts); i++)
        fprintf(f, " %8.3f", ms(lg_hist_percentile(h, pcts[i])));
    fprintf(f, " %8.3f\n", ms(h->max));
}

static const char *
si(double v, char *buf, size_t n)
{
    if (v >= 1e6)
        snprintf(buf, n, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(buf, n, "%.1fk", v / 1e3);
    else
        snprintf(buf, n, "%.0f", v);
    return buf;
}

void
lg_report_table(FILE *f, const struct lg_report *r, const struct lg_stats *s)
{
    char b1[32];
    if (r->label)
        fprintf(f, "[%s] ", r->label);
    fprintf(f, "%s %s", r->mode, r->target);
    if (r->dialect && r->mode && strcmp(r->dialect, r->mode) != 0 && strcmp(r->mode, "sse") != 0)
        fprintf(f, "  dialect %s", r->dialect);
    if (r->nsp)
        fprintf(f, "  namespace %s", r->nsp);
    if (r->model)
        fprintf(f, "  model %s", r->model);
    fputc('\n', f);
    fprintf(f, "  connections %llu ok, %llu failed (of %llu) in %.2f s",
            (unsigned long long)s->conns_ok, (unsigned long long)s->conns_failed,
            (unsigned long long)r->connections, r->connect_wall_s);
    if (r->idle_s > 0)
        fprintf(f, ", held idle %.1f s", r->idle_s);
    fputc('\n', f);
    if (r->streams_per_conn > 0) {
        fprintf(
            f, "  streams     %llu ok, %llu failed (%llu per connection, %llu at once) in %.2f s\n",
            (unsigned long long)s->streams_ok, (unsigned long long)s->streams_failed,
            (unsigned long long)r->streams_per_conn, (unsigned long long)r->concurrency,
            r->stream_wall_s);
        fprintf(f, "  tokens      %llu = %s tokens/s (%llu stamped)\n",
                (unsigned long long)s->tokens, si(tokens_per_s(r, s), b1, sizeof(b1)),
                (unsigned long long)s->stamped);
    }
    fprintf(f, "  %-10s %9s %8s %8s %8s %8s %8s   (ms)\n", "", "count", "p50", "p90", "p99",
            "p99.9", "max");
    if (r->streams_per_conn > 0) {
        hist_row(f, "latency", &s->latency);
        hist_row(f, "ttft", &s->ttft);
    }
    hist_row(f, "connect", &s->connect);
    if (s->auth.count)
        hist_row(f, "auth", &s->auth);
    if (r->cut) {
        hist_row(f, "reconnect", &s->reconnect);
        hist_row(f, "resume", &s->resume);
        if (s->replay.count || s->live.count) {
            hist_row(f, "replay", &s->replay);
            hist_row(f, "live", &s->live);
            hist_row(f, "live lag", &s->live_lag);
        }
    }
    if (r->cut) {
        if (r->cut_at_s >= 0)
            fprintf(f,
                    "  cut         at %.2f s (%s): %llu connections reset with %llu streams "
                    "running; %llu reconnected, %llu failed; %llu resumes sent, %llu answered\n",
                    r->cut_at_s, r->cut_trigger, (unsigned long long)s->cut_conns,
                    (unsigned long long)s->cut_streams, (unsigned long long)s->reconnected,
                    (unsigned long long)s->reconnect_failed, (unsigned long long)s->resumes_sent,
                    (unsigned long long)s->resumes_answered);
        if (r->resumed_wall_s >= 0 && r->srv_cut.ok && r->srv_resumed.ok)
            fprintf(f,
                    "              every resume answered %.3f s after the cut; server cpu "
                    "meanwhile %.3f s\n",
                    r->resumed_wall_s, r->srv_resumed.cpu_s - r->srv_cut.cpu_s);
        else
            fprintf(f, "  cut         never (%s): the streams ended first\n", r->cut_trigger);
    }
    if (r->verify)
        fprintf(f,
                "  text        %llu of %llu streams exact; %llu tokens lost, %llu duplicated, "
                "%llu garbled, %llu extra; %llu seq regressions\n",
                (unsigned long long)s->exact, (unsigned long long)s->verified,
                (unsigned long long)s->tokens_lost, (unsigned long long)s->tokens_dup,
                (unsigned long long)s->garbled, (unsigned long long)s->extra,
                (unsigned long long)s->seq_regressed);
    if (r->srvm) {
        const struct lg_srvm_sample *c = &r->srvm_cut, *p = &r->srvm_peak;
        fprintf(f, "  /metrics    %llu samples (%llu failed)", (unsigned long long)r->srvm_samples,
                (unsigned long long)r->srvm_failed);
        if (c->ok)
            fprintf(f, "; at the cut: journals %.0f B for %.0f streams = %.0f B/stream",
                    c->v[LG_SRVM_JOURNAL_BYTES], c->v[LG_SRVM_STREAMS_ACTIVE], per_stream(c));
        if (p->ok)
            fprintf(f, "; peaks: journals %.0f B, %.0f B/stream, %.0f sessions detached",
                    p->v[LG_SRVM_JOURNAL_BYTES], r->srvm_peak_per_stream, p->v[LG_SRVM_DETACHED]);
        fputc('\n', f);
    }
    if (lg_report_errors(r, s) == 0) {
        fputs("  errors      none\n", f);
    } else {
        fprintf(f, "  errors      %llu:", (unsigned long long)lg_report_errors(r, s));
        for (unsigned i = 0; i < s->errors.n; i++)
            fprintf(f, " %s=%llu", s->errors.e[i].name, (unsigned long long)s->errors.e[i].count);
        if (r->timed_out)
            fputs(r->interrupted ? " INTERRUPTED" : " RUN_TIMEOUT", f);
        if (r->cut_missed)
            fputs(" CUT_MISSED", f);
        fputc('\n', f);
    }
    if (r->server_pid > 0) {
        if (!have_server(r)) {
            fprintf(f, "  server      pid %d: /proc samples unavailable\n", r->server_pid);
        } else {
            fprintf(
                f,
                "  server      pid %d: rss %llu KiB at start, %llu KiB connected (%.0f B/conn), "
                "%llu KiB at end\n",
                r->server_pid, (unsigned long long)r->srv_start.rss_kib,
                (unsigned long long)r->srv_connected.rss_kib, rss_per_conn(r, s),
                (unsigned long long)r->srv_end.rss_kib);
            fprintf(f, "              cpu %.2f s connecting, %.2f s streaming",
                    r->srv_connected.cpu_s - r->srv_start.cpu_s,
                    r->srv_end.cpu_s - r->srv_connected.cpu_s);
            double cpt = cpu_us_per_token(r, s);
            if (cpt >= 0)
                fprintf(f, " = %.2f µs/token", cpt);
            fputc('\n', f);
        }
    }
    fprintf(f, "  loadgen     cpu %.2f s\n", r->loadgen_cpu_s);
}
