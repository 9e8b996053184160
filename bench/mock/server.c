#include "server.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/jsonw.h"
#include "base/list.h"
#include "base/util.h"
#include "fixtures.h"
#include "http.h"
#include "obs/log.h"
#include "reqlog.h"
#include "scenario.h"
#include "synth.h"

/* Pause between the writes of fixture@cuts: long enough for a client to read each piece
 * separately on loopback. */
#define CUT_PAUSE_MS 10
/* After the last token of reset_after, give the client this long to read it first. */
#define RESET_DELAY_MS 10
/* Most tokens rendered into one write when a rate > 0 stream has fallen behind. */
#define MAX_TOKENS_PER_WRITE 1000u
#define WAIT_DEFAULT_MS 5000u
#define WAIT_MAX_MS 600000u

struct mock_stats {
    uint64_t requests;    /* provider requests */
    uint64_t active;      /* provider responses open now */
    uint64_t tokens_sent; /* synthetic tokens written */
    uint64_t bytes_sent;  /* provider response body bytes written */
    uint64_t completed, aborted, mismatches;
};

struct mock_server {
    uv_loop_t *loop;
    struct mock_httpd httpd;
    struct mock_fixtures fixtures;
    struct mock_log log;
    struct sl_list waiters;
    struct mock_stats st;
    uint64_t seq;
    uint64_t start_ms;
};

enum resp_kind { R_CONTROL, R_SIMPLE, R_FIXTURE, R_SYNTH, R_WAIT };

enum synth_phase { P_FIRST_BYTE, P_STREAM, P_STALLED, P_RESET_WAIT, P_RESET_TIMER, P_ENDED };

/* One request being answered; lives from on_request to on_done / on_close. */
struct resp {
    enum resp_kind kind;
    struct mock_server *srv;
    struct mock_http *c;
    struct mock_entry *entry; /* NULL for control requests or once the log dropped it */
    const char *end;          /* how the response ended (log field "end") */
    bool provider;            /* counted in stats.active */
    bool state_set;           /* complete/aborted recorded */
    bool timer_armed;
    struct sl_buf scratch;

    /* fixture */
    const struct mock_fixture *fx;
    enum mock_delivery delivery;
    size_t pos, cut;
    uint32_t rng;
    size_t piece_len; /* random: the piece waiting for its pause, 0 if none */

    /* synth */
    struct mock_synth cfg;
    enum mock_provider fmt;
    enum mock_provider route;
    struct mock_gen gen;
    bool gen_ready;
    enum synth_phase phase;
    uint32_t sent;
    uint64_t t0_us;
    char *model;
    bool include_usage;

    /* wait */
    struct sl_list wlink;
    char *match;
    int want_state;
};

static uint64_t
now_us(void)
{
    return sl_clock_ns() / 1000u;
}

/* --- log and waiters ---------------------------------------------------------------------- */

static void respond_simple(struct resp *r, int status, const char *ctype, const struct mock_hdr *h,
                           size_t nh, const char *body, size_t len, bool close_after);

static void
answer_waiter(struct resp *w, struct mock_entry *e)
{
    sl_list_unlink(&w->wlink);
    mock_http_timer_stop(w->c);
    w->timer_armed = false;
    struct sl_buf b = SL_BUF_INIT;
    mock_entry_render(e, &b);
    sl_buf_append_byte(&b, '\n');
    respond_simple(w, 200, "application/json", NULL, 0, sl_buf_ptr(&b), sl_buf_len(&b), false);
    sl_buf_free(&b);
}

/* Called whenever an entry is created or changes state. */
static void
notify(struct mock_server *s, struct mock_entry *e)
{
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &s->waiters)
    {
        struct resp *w = SL_CONTAINER_OF(pos, struct resp, wlink);
        if (mock_entry_matches(e, w->match, w->want_state))
            answer_waiter(w, e);
    }
}

static void
set_state(struct resp *r, enum mock_state st, const char *end)
{
    struct mock_entry *e = r->entry;
    if (r->state_set)
        return;
    r->state_set = true;
    if (!r->end || st == MOCK_ABORTED)
        r->end = end;
    if (st == MOCK_ABORTED)
        r->srv->st.aborted++;
    else if (st == MOCK_COMPLETE)
        r->srv->st.completed++;
    if (!e || e->state != MOCK_STREAMING)
        return;
    e->state = st;
    e->end = r->end;
    e->ended_ms = sl_wall_ms();
    notify(r->srv, e);
}

static void
set_error(struct resp *r, const char *msg)
{
    r->srv->st.mismatches++;
    if (r->entry) {
        free(r->entry->error);
        r->entry->error = sl_strdup(msg);
    }
    sl_log_msg(SL_LOG_INFO, "mock.mismatch", "%s", msg);
}

static void
resp_free(struct resp *r)
{
    if (r->kind == R_WAIT)
        sl_list_unlink(&r->wlink);
    if (r->provider)
        r->srv->st.active--;
    if (r->entry)
        r->entry->owner = NULL;
    if (r->gen_ready)
        mock_gen_cleanup(&r->gen);
    sl_buf_free(&r->scratch);
    free(r->model);
    free(r->match);
    free(r);
}

/* --- simple responses --------------------------------------------------------------------- */

static void
respond_simple(struct resp *r, int status, const char *ctype, const struct mock_hdr *h, size_t nh,
               const char *body, size_t len, bool close_after)
{
    if (r->entry)
        r->entry->status = status;
    if (!r->end)
        r->end = status < 400 ? "done" : "http_error";
    mock_http_head(r->c, status, ctype, h, nh, (long long)len);
    mock_http_body(r->c, body, len, 0);
    mock_http_end(r->c, close_after);
}

/*
 * The mock's own complaint about a request: {"mock_error": "..."}, plus, on a provider
 * route, the same words in that provider's error shape so that an SDK or the gateway
 * shows them instead of an anonymous 400.
 */
static void
respond_mock_error(struct resp *r, int status, const char *msg)
{
    struct sl_buf b = SL_BUF_INIT;
    SL_JSONW_LIT(&b, "{\"mock_error\":");
    sl_jsonw_cstr(&b, msg);
    switch (r->route) {
    case MOCK_PROV_OPENAI:
        SL_JSONW_LIT(&b, ",\"error\":{\"message\":");
        sl_jsonw_cstr(&b, msg);
        SL_JSONW_LIT(&b,
                     ",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"mock_error\"}");
        break;
    case MOCK_PROV_ANTHROPIC:
        SL_JSONW_LIT(
            &b, ",\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":");
        sl_jsonw_cstr(&b, msg);
        SL_JSONW_LIT(&b, "}");
        break;
    case MOCK_PROV_GEMINI:
        sl_buf_printf(&b, ",\"error\":{\"code\":%d,\"message\":", status);
        sl_jsonw_cstr(&b, msg);
        SL_JSONW_LIT(&b, ",\"status\":\"INVALID_ARGUMENT\"}");
        break;
    case MOCK_PROV_OLLAMA:
        SL_JSONW_LIT(&b, ",\"error\":");
        sl_jsonw_cstr(&b, msg);
        break;
    case MOCK_PROV_NONE:
        break;
    }
    SL_JSONW_LIT(&b, "}\n");
    r->end = "mock_error";
    respond_simple(r, status, "application/json", NULL, 0, sl_buf_ptr(&b), sl_buf_len(&b), false);
    sl_buf_free(&b);
}

static void
request_id(struct resp *r, char *out, size_t n)
{
    snprintf(out, n, "req_mock%016llu",
             (unsigned long long)(r->entry ? r->entry->id : r->srv->seq));
}

/* An HTTP error in the provider's own shape (404 for unknown models, synth status=). */
static void
respond_provider_error(struct resp *r, enum mock_provider fmt, int status, int retry_after,
                       const char *model)
{
    char rid[48], ra[16];
    struct mock_hdr h[3];
    size_t nh = 0;
    request_id(r, rid, sizeof(rid));
    const char *rid_name = mock_gen_request_id_header(fmt);
    if (rid_name)
        h[nh++] = (struct mock_hdr){rid_name, rid};
    if (retry_after >= 0 && fmt != MOCK_PROV_GEMINI) {
        snprintf(ra, sizeof(ra), "%d", retry_after);
        h[nh++] = (struct mock_hdr){"retry-after", ra};
    }
    if (fmt == MOCK_PROV_ANTHROPIC)
        h[nh++] =
            (struct mock_hdr){"x-should-retry", status == 429 || status >= 500 ? "true" : "false"};
    struct sl_buf b = SL_BUF_INIT;
    mock_gen_http_error(fmt, status, retry_after, model, rid, &b);
    const char *ct = fmt == MOCK_PROV_GEMINI      ? "application/json; charset=UTF-8"
                     : fmt == MOCK_PROV_ANTHROPIC ? "application/json"
                                                  : "application/json; charset=utf-8";
    respond_simple(r, status, ct, h, nh, sl_buf_ptr(&b), sl_buf_len(&b), false);
    sl_buf_free(&b);
}

/* --- fixtures ------------------------------------------------------------------------------ */

static void
fixture_send(struct resp *r, size_t n)
{
    const struct mock_fixture *f = r->fx;
    if (n > f->body_len - r->pos)
        n = f->body_len - r->pos;
    mock_http_body(r->c, f->body + r->pos, n, 0);
    r->pos += n;
    if (r->pos == f->body_len) {
        r->end = "done";
        mock_http_end(r->c, false);
    }
}

/* Sends the next piece if its time has come; called after the head, on drain and on timer. */
static void
fixture_pump(struct resp *r)
{
    const struct mock_fixture *f = r->fx;
    if (r->timer_armed || r->pos >= f->body_len || mock_http_queued(r->c) > 0)
        return;
    switch (r->delivery) {
    case MOCK_DELIVER_WHOLE:
        fixture_send(r, f->body_len);
        break;
    case MOCK_DELIVER_BYTES:
        fixture_send(r, 1);
        break;
    case MOCK_DELIVER_CUTS: {
        size_t end = r->cut < f->ncuts ? f->cuts[r->cut++] : f->body_len;
        fixture_send(r, end - r->pos);
        if (r->pos < f->body_len) {
            r->timer_armed = true;
            mock_http_timer_start(r->c, CUT_PAUSE_MS);
        }
        break;
    }
    case MOCK_DELIVER_RANDOM: {
        if (r->piece_len == 0) {
            unsigned pause;
            mock_random_piece(&r->rng, &r->piece_len, &pause);
            if (pause > 0) {
                r->timer_armed = true;
                mock_http_timer_start(r->c, pause);
                return;
            }
        }
        size_t n = r->piece_len;
        r->piece_len = 0;
        fixture_send(r, n);
        break;
    }
    }
}

static void
fixture_start(struct resp *r, const struct mock_scenario *scn, const struct mock_fixture *f,
              const struct mock_req *req)
{
    char err[512];
    if (mock_fixture_check(f, req, err, sizeof(err)) < 0) {
        char msg[640];
        snprintf(msg, sizeof(msg), "request does not match fixture %s: %s", f->id, err);
        set_error(r, msg);
        respond_mock_error(r, 400, msg);
        return;
    }
    struct mock_hdr h[MOCK_FIXTURE_MAX_HEADERS];
    const char *ctype = NULL;
    size_t nh = 0;
    for (size_t i = 0; i < f->nheaders; i++) {
        if (strcmp(f->headers[i].name, "content-type") == 0)
            ctype = f->headers[i].value;
        else
            h[nh++] = (struct mock_hdr){f->headers[i].name, f->headers[i].value};
    }
    r->kind = R_FIXTURE;
    r->fx = f;
    r->delivery = scn->delivery;
    r->rng = scn->seed;
    if (r->entry)
        r->entry->status = f->status;
    /* Streams go out chunked like the providers'; error bodies carry a length. */
    mock_http_head(r->c, f->status, ctype, h, nh, f->stream ? -1 : (long long)f->body_len);
    if (f->body_len == 0) {
        r->end = "done";
        mock_http_end(r->c, false);
    }
}

/* --- synthetic streams -------------------------------------------------------------------- */

static void synth_pump(struct resp *r);

static void
synth_begin(struct resp *r)
{
    if (r->cfg.status != 200) {
        respond_provider_error(r, r->fmt, r->cfg.status, r->cfg.retry_after, NULL);
        r->phase = P_ENDED;
        return;
    }
    char rid[48];
    struct mock_hdr h[2];
    size_t nh = 0;
    request_id(r, rid, sizeof(rid));
    const char *rid_name = mock_gen_request_id_header(r->fmt);
    if (rid_name)
        h[nh++] = (struct mock_hdr){rid_name, rid};
    h[nh++] = (struct mock_hdr){"cache-control", "no-cache"};
    if (r->entry)
        r->entry->status = 200;
    mock_gen_init(&r->gen, &r->cfg, r->fmt, r->model, r->model ? strlen(r->model) : 0,
                  r->include_usage, r->entry ? r->entry->id : r->srv->seq);
    r->gen_ready = true;
    mock_http_head(r->c, 200, mock_gen_content_type(r->fmt), h, nh, -1);
    sl_buf_clear(&r->scratch);
    mock_gen_head(&r->gen, &r->scratch);
    mock_http_body(r->c, sl_buf_ptr(&r->scratch), sl_buf_len(&r->scratch), 0);
    r->phase = P_STREAM;
    r->t0_us = now_us();
    /* The rest goes out from on_drain, once the head has been written. */
}

/*
 * Ends the stream after its last token: appends what the scenario says comes next to
 * `out` (which holds the last k tokens) and sends it all in one write.
 */
static void
synth_finish(struct resp *r, struct sl_buf *out, uint32_t k)
{
    enum mock_fault fault = r->cfg.fault;
    if (fault == MOCK_FAULT_NONE)
        mock_gen_tail(&r->gen, out, r->sent);
    else if (fault == MOCK_FAULT_ERROR)
        mock_gen_stream_error(r->fmt, out);
    mock_http_body(r->c, sl_buf_ptr(out), sl_buf_len(out), k);

    switch (fault) {
    case MOCK_FAULT_NONE:
        r->end = "done";
        r->phase = P_ENDED;
        mock_http_end(r->c, false);
        break;
    case MOCK_FAULT_ERROR:
    case MOCK_FAULT_TRUNCATE:
        /* A clean end of the HTTP body, then FIN: the provider stopped talking. */
        r->end = fault == MOCK_FAULT_ERROR ? "error_event" : "truncated";
        r->phase = P_ENDED;
        mock_http_end(r->c, true);
        break;
    case MOCK_FAULT_STALL:
        r->end = "stalled";
        r->phase = P_STALLED;
        break;
    case MOCK_FAULT_RESET:
        /* Reset only once the tokens are in the kernel (see synth_pump). */
        r->phase = P_RESET_WAIT;
        if (mock_http_queued(r->c) == 0) {
            r->phase = P_RESET_TIMER;
            mock_http_timer_start(r->c, RESET_DELAY_MS);
        }
        break;
    }
}

static void
synth_pump(struct resp *r)
{
    if (r->phase == P_RESET_WAIT && mock_http_queued(r->c) == 0) {
        r->phase = P_RESET_TIMER;
        mock_http_timer_start(r->c, RESET_DELAY_MS);
        return;
    }
    if (r->phase != P_STREAM || r->timer_armed || mock_http_queued(r->c) > 0)
        return;
    uint32_t limit = r->cfg.tokens;
    if (r->cfg.fault != MOCK_FAULT_NONE && r->cfg.fault_after < limit)
        limit = r->cfg.fault_after;

    uint32_t k = 0;
    uint64_t now = now_us();
    if (r->sent < limit) {
        if (r->cfg.rate <= 0) {
            k = limit - r->sent < r->cfg.chunk ? limit - r->sent : r->cfg.chunk;
        } else {
            /* Token i (1-based) is due at t0 + (i - 1) / rate. */
            double elapsed = (double)(now - r->t0_us) / 1e6;
            double due = floor(elapsed * r->cfg.rate) + 1;
            if (due > limit)
                due = limit;
            k = due > r->sent ? (uint32_t)due - r->sent : 0;
            if (k > MAX_TOKENS_PER_WRITE)
                k = MAX_TOKENS_PER_WRITE;
            if (k == 0) {
                double next_us = (double)r->t0_us + (double)r->sent * 1e6 / r->cfg.rate;
                double wait_ms = ceil((next_us - (double)now) / 1000.0);
                r->timer_armed = true;
                mock_http_timer_start(r->c, wait_ms > 0 ? (uint64_t)wait_ms : 0);
                return;
            }
        }
    }
    struct sl_buf *out = &r->scratch;
    sl_buf_clear(out);
    for (uint32_t j = 0; j < k; j++) {
        uint32_t i = ++r->sent;
        mock_gen_token(&r->gen, out, i, i == r->cfg.tokens && r->cfg.fault == MOCK_FAULT_NONE, now);
    }
    if (r->sent < limit)
        mock_http_body(r->c, sl_buf_ptr(out), sl_buf_len(out), k);
    else
        synth_finish(r, out, k);
}

static void
synth_start(struct resp *r, const struct mock_scenario *scn, enum mock_provider route,
            const char *model, bool include_usage)
{
    r->kind = R_SYNTH;
    r->cfg = scn->synth;
    r->fmt = scn->synth.format != MOCK_PROV_NONE ? scn->synth.format : route;
    r->model = model ? sl_strdup(model) : NULL;
    r->include_usage = include_usage;
    if (r->cfg.first_byte_ms > 0) {
        r->phase = P_FIRST_BYTE;
        mock_http_timer_start(r->c, r->cfg.first_byte_ms);
        return;
    }
    synth_begin(r);
}

/* --- provider routes ------------------------------------------------------------------------ */

static void
provider_request(struct resp *r, struct mock_req *req, struct mock_route route)
{
    struct mock_server *s = r->srv;
    char scn_buf[1024];
    const char *scn_str = NULL;
    size_t scn_len = 0;
    const char *model = NULL;
    json_error_t jerr;

    r->route = route.provider;
    if (req->body.len > 0)
        req->json = json_loadb(req->body.ptr, req->body.len, 0, &jerr);
    json_t *jmodel = json_object_get(req->json, "model");
    if (json_is_string(jmodel))
        model = json_string_value(jmodel);
    if (route.provider == MOCK_PROV_GEMINI) {
        long n =
            mock_percent_decode(route.model.ptr, route.model.len, false, scn_buf, sizeof(scn_buf));
        model = n >= 0 ? scn_buf : NULL;
    }

    struct sl_slice hdr = mock_req_header(req, "x-mock-scenario");
    if (hdr.ptr && hdr.len > 0) {
        scn_str = hdr.ptr;
        scn_len = hdr.len;
    } else if (model) {
        scn_str = model;
        scn_len = strlen(model);
    }

    s->st.requests++;
    s->st.active++;
    r->provider = true;
    mock_log_add(&s->log, req, req->json != NULL, scn_str, scn_len, &r->entry);
    notify(s, r->entry);

    struct mock_scenario scn;
    char err[256];
    int rc = scn_str ? mock_scenario_parse(scn_str, scn_len, &scn, err, sizeof(err)) : 1;
    if (rc < 0) {
        char msg[320];
        snprintf(msg, sizeof(msg), "bad scenario: %s", err);
        set_error(r, msg);
        respond_mock_error(r, 400, msg);
    } else if (rc > 0) {
        respond_provider_error(r, route.provider, 404, -1, model ? model : "");
    } else if (scn.kind == MOCK_SCN_FIXTURE) {
        const struct mock_fixture *f =
            mock_fixtures_find(&s->fixtures, scn.fixture_id, scn.fixture_id_len);
        if (!f) {
            char msg[320];
            snprintf(msg, sizeof(msg), "unknown fixture '%.*s'", (int)scn.fixture_id_len,
                     scn.fixture_id);
            set_error(r, msg);
            respond_mock_error(r, 400, msg);
        } else {
            fixture_start(r, &scn, f, req);
        }
    } else {
        json_t *so = json_object_get(req->json, "stream_options");
        bool include_usage = json_is_true(json_object_get(so, "include_usage"));
        synth_start(r, &scn, route.provider, model, include_usage);
    }
    json_decref(req->json);
    req->json = NULL;
}

/* --- /_mock endpoints ----------------------------------------------------------------------- */

static void
respond_json(struct resp *r, int status, struct sl_buf *b)
{
    respond_simple(r, status, "application/json", NULL, 0, sl_buf_ptr(b), sl_buf_len(b), false);
}

static void
wait_timeout(struct resp *r)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_list_unlink(&r->wlink);
    SL_JSONW_LIT(&b, "{\"mock_error\":\"timeout\",\"match\":");
    if (r->match)
        sl_jsonw_cstr(&b, r->match);
    else
        SL_JSONW_LIT(&b, "null");
    SL_JSONW_LIT(&b, "}\n");
    respond_json(r, 408, &b);
    sl_buf_free(&b);
}

static void
control_request(struct resp *r, struct mock_req *req)
{
    struct mock_server *s = r->srv;
    struct sl_buf b = SL_BUF_INIT;
    char val[4096];
    bool get = sl_slice_eq(req->method, "GET");

    if (get && sl_slice_eq(req->path, "/_mock/log")) {
        uint64_t since = 0;
        long long v;
        if (mock_query_get(req->query, "since", val, sizeof(val)) >= 0 &&
            sl_parse_int(val, &v) == 0 && v > 0)
            since = (uint64_t)v;
        mock_log_render(&s->log, since, &b);
        respond_json(r, 200, &b);
    } else if (get && sl_slice_eq(req->path, "/_mock/stats")) {
        sl_buf_printf(&b,
                      "{\"requests\":%llu,\"active_streams\":%llu,\"tokens_sent\":%llu,"
                      "\"bytes_sent\":%llu,\"completed\":%llu,\"aborted\":%llu,"
                      "\"mismatches\":%llu,\"connections\":%zu,\"connections_total\":%llu,"
                      "\"log_entries\":%zu,\"uptime_ms\":%llu}\n",
                      (unsigned long long)s->st.requests, (unsigned long long)s->st.active,
                      (unsigned long long)s->st.tokens_sent, (unsigned long long)s->st.bytes_sent,
                      (unsigned long long)s->st.completed, (unsigned long long)s->st.aborted,
                      (unsigned long long)s->st.mismatches, s->httpd.nconns,
                      (unsigned long long)s->httpd.conns_total, s->log.count,
                      (unsigned long long)(sl_clock_ms() - s->start_ms));
        respond_json(r, 200, &b);
    } else if (sl_slice_eq(req->method, "POST") && sl_slice_eq(req->path, "/_mock/reset")) {
        mock_log_clear(&s->log);
        sl_buf_append_str(&b, "{\"ok\":true}\n");
        respond_json(r, 200, &b);
    } else if (get && sl_slice_eq(req->path, "/_mock/wait")) {
        long long timeout = WAIT_DEFAULT_MS;
        int state = -3;
        if (mock_query_get(req->query, "timeout_ms", val, sizeof(val)) >= 0 &&
            (sl_parse_int(val, &timeout) != 0 || timeout < 0 || timeout > WAIT_MAX_MS)) {
            respond_mock_error(r, 400, "timeout_ms must be 0..600000");
            goto out;
        }
        if (mock_query_get(req->query, "state", val, sizeof(val)) >= 0) {
            state = mock_state_parse(val);
            if (state == -1) {
                respond_mock_error(r, 400,
                                   "state must be streaming, complete, aborted, ended or any");
                goto out;
            }
        }
        long n = mock_query_get(req->query, "match", val, sizeof(val));
        if (n == -2) {
            respond_mock_error(r, 400, "bad match parameter");
            goto out;
        }
        r->kind = R_WAIT;
        r->match = n > 0 ? sl_strdup(val) : NULL;
        r->want_state = state;
        sl_list_init(&r->wlink);
        struct mock_entry *e = mock_log_find(&s->log, r->match, state);
        if (e) {
            answer_waiter(r, e);
        } else if (timeout == 0) {
            wait_timeout(r);
        } else {
            sl_list_push_back(&s->waiters, &r->wlink);
            r->timer_armed = true;
            mock_http_timer_start(r->c, (uint64_t)timeout);
        }
    } else {
        char msg[256];
        snprintf(msg, sizeof(msg), "no such endpoint: %.*s %.*s", (int)req->method.len,
                 req->method.ptr, (int)req->path.len, req->path.ptr);
        respond_mock_error(r, 404, msg);
    }
out:
    sl_buf_free(&b);
}

/* --- HTTP callbacks ------------------------------------------------------------------------- */

static void
on_request(struct mock_http *c, struct mock_req *req)
{
    struct mock_server *s = mock_http_server(c)->data;
    struct resp *r = sl_calloc(1, sizeof(*r));
    r->srv = s;
    r->c = c;
    r->kind = R_SIMPLE;
    sl_list_init(&r->wlink);
    *mock_http_app(c) = r;
    s->seq++;

    if (req->path.len >= 7 && memcmp(req->path.ptr, "/_mock/", 7) == 0) {
        r->kind = R_CONTROL;
        control_request(r, req);
        return;
    }
    struct mock_route route = mock_route_classify(req->path);
    if (route.provider == MOCK_PROV_NONE) {
        char msg[256];
        s->st.requests++;
        s->st.active++;
        r->provider = true;
        mock_log_add(&s->log, req, false, NULL, 0, &r->entry);
        snprintf(msg, sizeof(msg), "no provider route for %.*s %.*s", (int)req->method.len,
                 req->method.ptr, (int)req->path.len, req->path.ptr);
        set_error(r, msg);
        respond_mock_error(r, 404, msg);
        return;
    }
    provider_request(r, req, route);
}

static void
on_drain(struct mock_http *c)
{
    struct resp *r = *mock_http_app(c);
    if (!r)
        return;
    if (r->kind == R_FIXTURE)
        fixture_pump(r);
    else if (r->kind == R_SYNTH)
        synth_pump(r);
}

static void
on_timer(struct mock_http *c)
{
    struct resp *r = *mock_http_app(c);
    if (!r)
        return;
    r->timer_armed = false;
    switch (r->kind) {
    case R_FIXTURE:
        fixture_pump(r);
        break;
    case R_SYNTH:
        if (r->phase == P_FIRST_BYTE) {
            synth_begin(r);
        } else if (r->phase == P_RESET_TIMER) {
            r->phase = P_ENDED;
            set_state(r, MOCK_COMPLETE, "reset");
            mock_http_reset(c); /* on_close frees r */
        } else {
            synth_pump(r);
        }
        break;
    case R_WAIT:
        wait_timeout(r);
        break;
    default:
        break;
    }
}

static void
on_written(struct mock_http *c, size_t body, uint32_t tokens)
{
    struct resp *r = *mock_http_app(c);
    if (!r)
        return;
    if (r->provider) {
        r->srv->st.bytes_sent += body;
        r->srv->st.tokens_sent += tokens;
    }
    if (r->entry) {
        r->entry->bytes_sent += body;
        r->entry->tokens_sent += tokens;
    }
}

static void
on_done(struct mock_http *c)
{
    struct resp *r = *mock_http_app(c);
    if (!r)
        return;
    *mock_http_app(c) = NULL;
    if (r->provider)
        set_state(r, MOCK_COMPLETE, r->end ? r->end : "done");
    resp_free(r);
}

static void
on_close(struct mock_http *c, bool aborted)
{
    struct resp *r = *mock_http_app(c);
    if (!r)
        return;
    *mock_http_app(c) = NULL;
    if (r->provider) {
        if (aborted)
            set_state(r, MOCK_ABORTED, "client_closed");
        else
            set_state(r, MOCK_COMPLETE, r->end ? r->end : "done");
    }
    resp_free(r);
}

static const struct mock_http_cbs http_cbs = {
    .on_request = on_request,
    .on_drain = on_drain,
    .on_written = on_written,
    .on_done = on_done,
    .on_timer = on_timer,
    .on_close = on_close,
};

/* --- lifetime --------------------------------------------------------------------------------- */

struct mock_server *
mock_server_start(uv_loop_t *loop, const struct mock_server_opts *o, int *bound_port, char *err,
                  size_t errlen)
{
    struct mock_server *s = sl_calloc(1, sizeof(*s));
    s->loop = loop;
    s->start_ms = sl_clock_ms();
    sl_list_init(&s->waiters);
    if (mock_fixtures_load(&s->fixtures, o->fixtures_dir, err, errlen) < 0) {
        free(s);
        return NULL;
    }
    mock_log_init(&s->log, o->log_cap ? o->log_cap : MOCK_LOG_DEFAULT_CAP);
    int rc = mock_httpd_start(&s->httpd, loop, o->host, o->port, &http_cbs, s, bound_port);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s:%d: %s", o->host, o->port, uv_strerror(rc));
        mock_log_cleanup(&s->log);
        mock_fixtures_free(&s->fixtures);
        free(s);
        return NULL;
    }
    return s;
}

void
mock_server_stop(struct mock_server *s)
{
    mock_httpd_stop(&s->httpd);
}

void
mock_server_free(struct mock_server *s)
{
    mock_log_cleanup(&s->log);
    mock_fixtures_free(&s->fixtures);
    free(s);
}
