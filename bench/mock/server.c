#include "server.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/jsonw.h"
#include "base/list.h"
#include "base/util.h"
#include "fixtures.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/loop.h"
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

/* The kernel clamps this to net.core.somaxconn; ask for plenty so that a benchmark opening
 * thousands of streams at once does not lose SYNs (a lost SYN costs a 1 s retransmit). */
#define LISTEN_BACKLOG 65535

/* What a client may send: URL 8 KiB, 64 headers (SL_HTTP_MAX_HEADERS) in 64 KiB, body 16 MiB.
 * The HTTP layer counts the URL and the headers together, plus 4 bytes a header line. */
#define MAX_URL (8u * 1024u)
#define MAX_HEADER_BYTES (MAX_URL + 64u * 1024u + 4u * SL_HTTP_MAX_HEADERS)
#define MAX_BODY (16u * 1024u * 1024u)
/* The mock does not hurry its clients: a test may hold an idle connection for long. */
#define IDLE_TIMEOUT_MS (3600u * 1000u)

struct mock_stats {
    uint64_t requests;    /* provider requests */
    uint64_t active;      /* provider responses open now */
    uint64_t tokens_sent; /* synthetic tokens written */
    uint64_t bytes_sent;  /* provider response body bytes written */
    uint64_t completed, aborted, mismatches;
};

struct mock_server {
    struct sl_loop *loop;
    uv_tcp_t listener;
    struct sl_conn_pool pool;
    struct sl_http_server http;
    bool stopping;
    struct sl_buf names; /* the lower-cased header names of the request being read */
    struct mock_fixtures fixtures;
    struct mock_log log;
    struct sl_list waiters;
    struct mock_stats st;
    uint64_t seq;
    uint64_t start_ms;
};

enum resp_kind { R_CONTROL, R_SIMPLE, R_FIXTURE, R_SYNTH, R_WAIT };

enum synth_phase { P_FIRST_BYTE, P_STREAM, P_STALLED, P_RESET_WAIT, P_RESET_TIMER, P_ENDED };

/* A response header line for send_head(). */
struct mock_hdr {
    const char *name;
    const char *value;
};

/*
 * One request being answered; lives from on_request to the response's on_close (then a
 * little longer while its timer handle closes).
 */
struct resp {
    enum resp_kind kind;
    struct mock_server *srv;
    struct sl_http_resp *http; /* NULL once the response is over */
    struct sl_conn *conn;      /* valid while http is */
    struct mock_entry *entry;  /* NULL for control requests or once the log dropped it */
    const char *end;           /* how the response ended (log field "end") */
    bool provider;             /* counted in stats.active */
    bool state_set;            /* complete/aborted recorded */
    bool timer_armed;
    bool timer_init; /* the timer handle exists (made on first use) */
    uv_timer_t timer;
    /* Queued and not yet known to be in the kernel: credited at the next drain. */
    size_t queued_bytes;
    uint32_t queued_tokens;
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

/* --- the response, over src/net/http -------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

/* The response's own one-shot timer (pacing, pauses, delays, /_mock/wait's timeout). */
static void
timer_start(struct resp *r, uint64_t ms)
{
    if (!r->timer_init) {
        uv_timer_init(sl_loop_uv(r->srv->loop), &r->timer);
        r->timer.data = r;
        r->timer_init = true;
    }
    uv_timer_start(&r->timer, on_timer, ms, 0);
}

static void
timer_stop(struct resp *r)
{
    if (r->timer_init)
        uv_timer_stop(&r->timer);
}

/* content_length: SL_HTTP_STREAM for a stream (chunked, or close-delimited for HTTP/1.0). */
static void
send_head(struct resp *r, int status, const char *ctype, const struct mock_hdr *h, size_t nh,
          int64_t content_length)
{
    struct sl_buf b = SL_BUF_INIT;
    for (size_t i = 0; i < nh; i++)
        sl_buf_printf(&b, "%s: %s\r\n", h[i].name, h[i].value);
    sl_http_head(r->http, status, ctype, nh > 0 ? sl_buf_cstr(&b) : NULL, content_length);
    sl_buf_free(&b);
}

/* Queues body bytes (one chunk) carrying `tokens` synthetic tokens. */
static void
send_body(struct resp *r, const void *p, size_t n, uint32_t tokens)
{
    sl_http_body(r->http, p, n);
    r->queued_bytes += n;
    r->queued_tokens += tokens;
}

/*
 * Everything queued so far is in the kernel (a drain, or the response's end): count it as
 * written. A stream queues its next piece only once the previous one drained, so what an
 * abort leaves uncounted is at most the piece that was being written.
 */
static void
credit(struct resp *r)
{
    if (r->provider) {
        r->srv->st.bytes_sent += r->queued_bytes;
        r->srv->st.tokens_sent += r->queued_tokens;
    }
    if (r->entry) {
        r->entry->bytes_sent += r->queued_bytes;
        r->entry->tokens_sent += r->queued_tokens;
    }
    r->queued_bytes = 0;
    r->queued_tokens = 0;
}

/* --- log and waiters ---------------------------------------------------------------------- */

static void respond_simple(struct resp *r, int status, const char *ctype, const struct mock_hdr *h,
                           size_t nh, const char *body, size_t len, bool close_after);

static void
answer_waiter(struct resp *w, struct mock_entry *e)
{
    sl_list_unlink(&w->wlink);
    timer_stop(w);
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
free_resp(uv_handle_t *h)
{
    free(h->data);
}

/* After the response's on_close: releases everything; the struct goes with its timer. */
static void
resp_release(struct resp *r)
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
    if (r->timer_init)
        uv_close((uv_handle_t *)&r->timer, free_resp);
    else
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
    send_head(r, status, ctype, h, nh, (int64_t)len);
    send_body(r, body, len, 0);
    sl_http_end(r->http, close_after);
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
    send_body(r, f->body + r->pos, n, 0);
    /* Every piece is a write of its own (the client's reads see the fixture's cuts). */
    if (r->delivery != MOCK_DELIVER_WHOLE)
        sl_http_flush(r->http);
    r->pos += n;
    if (r->pos == f->body_len) {
        r->end = "done";
        sl_http_end(r->http, false);
    }
}

/* Sends the next piece if its time has come; called after the head, on drain and on timer. */
static void
fixture_pump(struct resp *r)
{
    const struct mock_fixture *f = r->fx;
    if (r->timer_armed || r->pos >= f->body_len || sl_http_queued(r->http) > 0)
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
            timer_start(r, CUT_PAUSE_MS);
        }
        break;
    }
    case MOCK_DELIVER_RANDOM: {
        if (r->piece_len == 0) {
            unsigned pause;
            mock_random_piece(&r->rng, &r->piece_len, &pause);
            if (pause > 0) {
                r->timer_armed = true;
                timer_start(r, pause);
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
    send_head(r, f->status, ctype, h, nh, f->stream ? SL_HTTP_STREAM : (int64_t)f->body_len);
    if (f->body_len == 0) {
        r->end = "done";
        sl_http_end(r->http, false);
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
    send_head(r, 200, mock_gen_content_type(r->fmt), h, nh, SL_HTTP_STREAM);
    sl_buf_clear(&r->scratch);
    mock_gen_head(&r->gen, &r->scratch);
    send_body(r, sl_buf_ptr(&r->scratch), sl_buf_len(&r->scratch), 0);
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
    send_body(r, sl_buf_ptr(out), sl_buf_len(out), k);
    sl_http_flush(r->http);

    switch (fault) {
    case MOCK_FAULT_NONE:
        r->end = "done";
        r->phase = P_ENDED;
        sl_http_end(r->http, false);
        break;
    case MOCK_FAULT_ERROR:
    case MOCK_FAULT_TRUNCATE:
        /* A clean end of the HTTP body, then FIN: the provider stopped talking. */
        r->end = fault == MOCK_FAULT_ERROR ? "error_event" : "truncated";
        r->phase = P_ENDED;
        sl_http_end(r->http, true);
        break;
    case MOCK_FAULT_STALL:
        r->end = "stalled";
        r->phase = P_STALLED;
        break;
    case MOCK_FAULT_RESET:
        /* Reset only once the tokens are in the kernel (see synth_pump). */
        r->phase = P_RESET_WAIT;
        if (sl_http_queued(r->http) == 0) {
            r->phase = P_RESET_TIMER;
            timer_start(r, RESET_DELAY_MS);
        }
        break;
    }
}

static void
synth_pump(struct resp *r)
{
    if (r->phase == P_RESET_WAIT && sl_http_queued(r->http) == 0) {
        r->phase = P_RESET_TIMER;
        timer_start(r, RESET_DELAY_MS);
        return;
    }
    if (r->phase != P_STREAM || r->timer_armed || sl_http_queued(r->http) > 0)
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
                timer_start(r, wait_ms > 0 ? (uint64_t)wait_ms : 0);
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
    if (r->sent < limit) {
        send_body(r, sl_buf_ptr(out), sl_buf_len(out), k);
        /* Now, not at the end of the turn: the tokens' stamps (ts=1) say when they were
         * written, and a paced stream's tokens should not wait for the other streams'. */
        sl_http_flush(r->http);
    } else {
        synth_finish(r, out, k);
    }
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
        timer_start(r, r->cfg.first_byte_ms);
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
        long n = sl_http_decode(route.model, scn_buf, sizeof(scn_buf), false);
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
        /* fail_first: the log tells how many requests of this scenario came before. */
        if (scn.synth.fail_first > 0 &&
            mock_log_count_scenario(&s->log, scn_str, scn_len) > scn.synth.fail_first)
            scn.synth.status = 200;
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
        if (sl_http_query_get(req->query, "since", val, sizeof(val)) >= 0 &&
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
                      (unsigned long long)s->st.mismatches, s->pool.count,
                      (unsigned long long)s->pool.next_id, s->log.count,
                      (unsigned long long)(sl_clock_ms() - s->start_ms));
        respond_json(r, 200, &b);
    } else if (sl_slice_eq(req->method, "POST") && sl_slice_eq(req->path, "/_mock/reset")) {
        mock_log_clear(&s->log);
        sl_buf_append_str(&b, "{\"ok\":true}\n");
        respond_json(r, 200, &b);
    } else if (get && sl_slice_eq(req->path, "/_mock/wait")) {
        long long timeout = WAIT_DEFAULT_MS;
        int state = -3;
        if (sl_http_query_get(req->query, "timeout_ms", val, sizeof(val)) >= 0 &&
            (sl_parse_int(val, &timeout) != 0 || timeout < 0 || timeout > WAIT_MAX_MS)) {
            respond_mock_error(r, 400, "timeout_ms must be 0..600000");
            goto out;
        }
        if (sl_http_query_get(req->query, "state", val, sizeof(val)) >= 0) {
            state = mock_state_parse(val);
            if (state == -1) {
                respond_mock_error(r, 400,
                                   "state must be streaming, complete, aborted, ended or any");
                goto out;
            }
        }
        long n = sl_http_query_get(req->query, "match", val, sizeof(val));
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
            timer_start(r, (uint64_t)timeout);
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

static void on_resp_drain(void *ud, struct sl_http_resp *http);
static void on_resp_close(void *ud, struct sl_http_resp *http, bool aborted);

static const struct sl_http_resp_handler resp_handler = {
    .on_drain = on_resp_drain,
    .on_close = on_resp_close,
};

/*
 * The mock's view of a request: the same slices, with header names lower-cased into the
 * server's scratch buffer (valid until the next request) and any fragment cut off the query.
 */
static void
mock_req_from(struct mock_server *s, const struct sl_http_req *h, struct mock_req *r)
{
    memset(r, 0, sizeof(*r));
    r->method = sl_slice_make(h->method, strlen(h->method));
    r->path = h->path;
    r->query = h->query;
    const char *hash = memchr(r->query.ptr, '#', r->query.len);
    if (hash)
        r->query.len = (size_t)(hash - r->query.ptr);
    size_t total = 0;
    for (size_t i = 0; i < h->nheaders; i++)
        total += h->headers[i].name.len;
    sl_buf_clear(&s->names);
    char *dst = sl_buf_reserve(&s->names, total + 1);
    for (size_t i = 0; i < h->nheaders && i < MOCK_MAX_HEADERS; i++) {
        const struct sl_slice *name = &h->headers[i].name;
        for (size_t k = 0; k < name->len; k++)
            dst[k] = (char)tolower((unsigned char)name->ptr[k]);
        r->headers[i].name = sl_slice_make(dst, name->len);
        r->headers[i].value = h->headers[i].value;
        r->nheaders++;
        dst += name->len;
    }
    r->body = h->body;
}

static void
on_request(void *ud, struct sl_conn *c, struct sl_http_req *hreq)
{
    struct mock_server *s = ud;
    struct mock_req req;
    mock_req_from(s, hreq, &req);
    struct resp *r = sl_calloc(1, sizeof(*r));
    r->srv = s;
    r->conn = c;
    r->kind = R_SIMPLE;
    sl_list_init(&r->wlink);
    /* Every answer is held: its end, written or aborted, is what the log records. */
    r->http = sl_http_hold(c, hreq, &resp_handler, r);
    s->seq++;

    if (req.path.len >= 7 && memcmp(req.path.ptr, "/_mock/", 7) == 0) {
        r->kind = R_CONTROL;
        control_request(r, &req);
        return;
    }
    struct mock_route route = mock_route_classify(req.path);
    if (route.provider == MOCK_PROV_NONE) {
        char msg[256];
        s->st.requests++;
        s->st.active++;
        r->provider = true;
        mock_log_add(&s->log, &req, false, NULL, 0, &r->entry);
        snprintf(msg, sizeof(msg), "no provider route for %.*s %.*s", (int)req.method.len,
                 req.method.ptr, (int)req.path.len, req.path.ptr);
        set_error(r, msg);
        respond_mock_error(r, 404, msg);
        return;
    }
    provider_request(r, &req, route);
}

static void
on_resp_drain(void *ud, struct sl_http_resp *http)
{
    struct resp *r = ud;
    (void)http;
    credit(r);
    if (r->kind == R_FIXTURE)
        fixture_pump(r);
    else if (r->kind == R_SYNTH)
        synth_pump(r);
}

static void
on_timer(uv_timer_t *t)
{
    struct resp *r = t->data;
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
            sl_conn_reset(r->conn); /* on_resp_close follows from the loop */
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
on_resp_close(void *ud, struct sl_http_resp *http, bool aborted)
{
    struct resp *r = ud;
    (void)http;
    r->http = NULL;
    r->conn = NULL;
    timer_stop(r);
    if (!aborted)
        credit(r);
    if (r->provider) {
        if (aborted)
            set_state(r, MOCK_ABORTED, "client_closed");
        else
            set_state(r, MOCK_COMPLETE, r->end ? r->end : "done");
    }
    resp_release(r);
}

/* --- lifetime --------------------------------------------------------------------------------- */

static void
on_connection(uv_stream_t *server, int status)
{
    struct mock_server *s = server->data;
    if (status < 0 || s->stopping)
        return;
    struct sl_conn *c = sl_conn_accept(&s->pool, server);
    if (c != NULL)
        sl_http_serve(&s->http, c);
}

static int
listen_on(struct mock_server *s, const char *host, int port, int *bound_port)
{
    struct sockaddr_storage ss;
    int rc;
    memset(&ss, 0, sizeof(ss));
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc != 0)
        return rc;
    uv_tcp_init(sl_loop_uv(s->loop), &s->listener);
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, LISTEN_BACKLOG, on_connection);
    if (rc == 0) {
        struct sockaddr_storage got;
        int len = sizeof(got);
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&got, &len);
        if (rc == 0)
            *bound_port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                          : ((struct sockaddr_in *)&got)->sin_port);
    }
    if (rc != 0)
        uv_close((uv_handle_t *)&s->listener, NULL);
    return rc;
}

struct mock_server *
mock_server_start(struct sl_loop *loop, const struct mock_server_opts *o, int *bound_port,
                  char *err, size_t errlen)
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
    int rc = listen_on(s, o->host, o->port, bound_port);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s:%d: %s", o->host, o->port, uv_strerror(rc));
        mock_log_cleanup(&s->log);
        mock_fixtures_free(&s->fixtures);
        free(s);
        return NULL;
    }
    sl_conn_pool_init(&s->pool, loop);
    struct sl_http_limits lim = {
        .max_header_bytes = MAX_HEADER_BYTES,
        .max_url_bytes = MAX_URL,
        .max_body_bytes = MAX_BODY,
        .header_timeout_ms = IDLE_TIMEOUT_MS,
        .keepalive_timeout_ms = IDLE_TIMEOUT_MS,
    };
    sl_http_server_init(&s->http, loop, &lim, on_request, s);
    return s;
}

static void
abort_conn(struct sl_conn *c, void *arg)
{
    (void)arg;
    sl_conn_abort(c);
}

void
mock_server_stop(struct mock_server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    uv_close((uv_handle_t *)&s->listener, NULL);
    sl_conn_pool_foreach(&s->pool, abort_conn, NULL);
}

void
mock_server_free(struct mock_server *s)
{
    mock_log_cleanup(&s->log);
    mock_fixtures_free(&s->fixtures);
    sl_buf_free(&s->names);
    free(s);
}
