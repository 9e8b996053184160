#include "core/http_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "auth/auth.h"
#include "auth/throttle.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/util.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "core/admission.h"
#include "core/server.h"
#include "core/sio_worker.h"
#include "core/worker.h"
#include "limits/limits.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/loop.h"
#include "obs/log.h"
#include "proto/openai_http.h"
#include "stream/directory.h"
#include "stream/stream.h"

/* The most a `stream: false` answer may hold (content and tool calls) before it fails. */
#define MAX_RESPONSE_BYTES (16u << 20)

/* An SSE comment after this much silence keeps proxies from closing the response. */
#define HEARTBEAT_MS 15000

#define COMPLETIONS "/v1/chat/completions"
#define MODELS "/v1/models"

/* One chat completion request: the reader of its stream. */
struct oai {
    struct sl_http_api *api;
    struct sl_http_resp *r; /* NULL while detached (waiting for a resume) */
    struct sl_stream *st;   /* NULL once the stream is gone */
    struct sl_cstream *cs;  /* or a stream of another node, read from Redis (cluster mode) */
    struct sl_jcursor cur;
    struct sl_oai_stream fmt; /* SSE rendering */
    struct sl_oai_agg *agg;   /* stream: false */
    char *user;
    char *id;
    char *model;
    uint64_t created;
    bool stream;
    bool resumable;
    bool head_sent;
    bool ended;                 /* the response got its terminal event */
    struct sl_timeq_node tnode; /* heartbeat while attached, resume window while detached */
    struct sl_list link;        /* in api->all */
};

struct sl_http_api {
    struct sl_worker *w;
    struct sl_list all;
    struct sl_timeq hb_tq, window_tq;
    struct sl_buf out;
    uint64_t started; /* unix seconds: the models' `created`, the same in every answer */
    bool stopping;
};

static const struct sl_stream_reader reader;
static const struct sl_http_resp_handler resp_handler;

/* --- errors -------------------------------------------------------------------------------- */

/* An OpenAI-shaped error answer, with the retry headers the SDKs read. */
static int
respond_with(struct sl_conn *c, const struct sl_http_req *req, int status, const char *headers,
             const struct sl_oai_error *e)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_oai_render_error(&b, e);
    sl_http_respond(c, req, status, "application/json", headers, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
    return status;
}

static int
respond_error(struct sl_conn *c, const struct sl_http_req *req, const struct sl_oai_error *e)
{
    char headers[SL_OAI_ERROR_HEADERS_MAX];
    return respond_with(c, req, sl_oai_error_status(e->code),
                        sl_oai_error_headers(e, headers, sizeof(headers)), e);
}

/*
 * 405 with an OpenAI-shaped body (as OpenAI answers a wrong method: invalid_request_error),
 * so that an SDK reports it like any other error, and the Allow header HTTP asks for.
 */
static int
method_not_allowed(struct sl_conn *c, const struct sl_http_req *req, const char *allow)
{
    struct sl_oai_error e;
    struct sl_slice p = req->path;
    sl_oai_error_set(&e, SL_ERR_BAD_REQUEST, "", -1, "Invalid method for URL (%s %.*s)",
                     req->method, (int)(p.len > 100 ? 100 : p.len), p.ptr);
    return respond_with(c, req, 405, allow, &e);
}

/* The same for a held response whose head has not been sent (the provider's refusal). */
static void
resp_error(struct oai *o, const struct sl_oai_error *e)
{
    struct sl_buf *b = &o->api->out;
    sl_buf_clear(b);
    sl_oai_render_error(b, e);
    char headers[SL_OAI_ERROR_HEADERS_MAX];
    sl_http_head(o->r, sl_oai_error_status(e->code), "application/json",
                 sl_oai_error_headers(e, headers, sizeof(headers)), (int64_t)sl_buf_len(b));
    sl_http_body(o->r, sl_buf_ptr(b), sl_buf_len(b));
    sl_http_end(o->r, false);
    o->head_sent = o->ended = true;
}

/* Authorization: Bearer <JWT or API key>. */
static int
authenticate(struct sl_http_api *a, struct sl_conn *c, const struct sl_http_req *req,
             struct sl_identity *id, struct sl_oai_error *e)
{
    struct sl_slice h = sl_http_get_header(req, "Authorization");
    if (h.ptr == NULL || h.len <= 7 || strncasecmp(h.ptr, "Bearer ", 7) != 0)
        return sl_oai_error_set(e, SL_ERR_AUTH_REQUIRED, "", -1,
                                "missing Authorization: Bearer <token or API key>");
    const char *reason = "invalid token";
    struct sockaddr_storage peer;
    bool have = sl_conn_peer_addr(c, &peer) == 0;
    uint64_t wait = 0;
    int rc = sl_auth_verify_throttled(a->w->server->auth, a->w->server->throttle,
                                      have ? (struct sockaddr *)&peer : NULL, h.ptr + 7, h.len - 7,
                                      id, &reason, &wait);
    if (rc != 0) {
        sl_counter_add(&a->w->metrics.auth_failures_total, 1);
        return sl_oai_error_set(e, SL_ERR_AUTH_FAILED, "",
                                rc == SL_AUTH_ETHROTTLED ? (int64_t)wait : -1,
                                "authentication failed: %s", reason);
    }
    return 0;
}

/* --- the response ---------------------------------------------------------------------------- */

static void
oai_free(struct oai *o)
{
    sl_timeq_disarm(&o->tnode);
    sl_list_unlink(&o->link);
    sl_oai_stream_cleanup(&o->fmt);
    sl_oai_agg_free(o->agg);
    free(o->user);
    free(o->id);
    free(o->model);
    free(o);
}

static void
send_head(struct oai *o)
{
    char headers[320];
    snprintf(headers, sizeof(headers),
             "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nx-sluice-stream-id: %s\r\n"
             "x-sluice-resumable: %s\r\n",
             o->id, o->resumable ? "true" : "false");
    sl_http_head(o->r, 200, "text/event-stream; charset=utf-8", headers, SL_HTTP_STREAM);
    o->head_sent = true;
}

static bool
decisive(enum sl_event_type t)
{
    return t != SL_EV_START && t != SL_EV_PROGRESS;
}

/* The journal of its stream, local or another node's. */
static struct sl_journal *
journal_of(struct oai *o)
{
    return o->st ? sl_stream_journal(o->st) : sl_cstream_journal(o->cs);
}

static void
set_live(struct oai *o, bool live)
{
    if (o->st)
        sl_stream_set_live(o->st, live);
    else
        sl_cstream_set_live(o->cs, live);
}

/*
 * Renders what the journal holds after the cursor while the connection has room. The head
 * of a streaming response waits for the first token (or the end): a failure before it is an
 * HTTP error status, not an SSE event. in_event: called from inside the stream's callback,
 * where the journal is acknowledged directly (the stream settles after the callback).
 */
static void
pump(struct oai *o, bool in_event)
{
    if (o->r == NULL || (o->st == NULL && o->cs == NULL) || o->ended)
        return;
    if (o->cs && !o->stream)
        return; /* not ready yet: the format waits for the stream's metadata */
    struct sl_journal *j = journal_of(o);
    const struct sl_config *cfg = o->api->w->cfg;
    struct sl_jrecord rec;
    if (!o->head_sent && o->stream) {
        struct sl_jcursor la = o->cur;
        bool found = false;
        while (sl_journal_next(j, &la, &rec)) {
            if (decisive(rec.ev.type)) {
                found = true;
                break;
            }
        }
        if (!found)
            return;
        if (rec.ev.type == SL_EV_ERROR || rec.ev.type == SL_EV_CANCELLED) {
            struct sl_oai_error e;
            sl_oai_error_from_event(&e, &rec.ev);
            resp_error(o, &e);
            sl_journal_end(j, &o->cur);
            goto ack;
        }
        send_head(o);
    }
    struct sl_buf *b = &o->api->out;
    while (!o->ended && sl_http_queued(o->r) < cfg->limits.send_high_water &&
           sl_journal_next(j, &o->cur, &rec)) {
        if (!o->stream) {
            enum sl_oai_agg_state st = sl_oai_agg_event(o->agg, &rec.ev);
            if (st == SL_OAI_AGG_COMPLETE) {
                sl_buf_clear(b);
                sl_oai_agg_render(o->agg, b, o->id, strlen(o->id), o->model, o->created);
                sl_http_head(o->r, 200, "application/json", NULL, (int64_t)sl_buf_len(b));
                sl_http_body(o->r, sl_buf_ptr(b), sl_buf_len(b));
                sl_http_end(o->r, false);
                o->head_sent = o->ended = true;
            } else if (st == SL_OAI_AGG_FAILED) {
                resp_error(o, sl_oai_agg_error(o->agg));
            }
            continue;
        }
        sl_buf_clear(b);
        int last = sl_oai_sse_event(&o->fmt, b, &rec.ev);
        sl_http_body(o->r, sl_buf_ptr(b), sl_buf_len(b));
        if (last) {
            sl_http_end(o->r, false);
            o->ended = true;
        }
    }
    if (o->r && !o->ended)
        sl_loop_arm(o->api->w->loop, &o->api->hb_tq, &o->tnode);
ack:
    if (in_event)
        sl_journal_ack(j, &o->cur);
    else if (o->st)
        sl_stream_consumed(o->st, &o->cur); /* may end the stream: on_finished */
    else
        sl_cstream_consumed(o->cs, &o->cur); /* likewise: cs_finished */
}

/* --- the stream's reader ------------------------------------------------------------------------
 */

static void
on_stream_event(void *rd, struct sl_stream *st, const struct sl_event *ev, uint32_t tokens)
{
    (void)st;
    (void)ev;
    (void)tokens;
    pump(rd, true);
}

static void
on_stream_taken(void *rd, struct sl_stream *st)
{
    (void)st;
    struct oai *o = rd;
    o->st = NULL;
    if (o->r == NULL) {
        oai_free(o);
        return;
    }
    sl_http_end(o->r, true); /* a resume elsewhere took it: this response stops here */
    o->ended = true;
}

static void
on_stream_finished(void *rd, struct sl_stream *st)
{
    (void)st;
    struct oai *o = rd;
    o->st = NULL;
    if (o->r == NULL)
        oai_free(o);
}

static const struct sl_stream_reader reader = {
    .on_event = on_stream_event,
    .on_taken = on_stream_taken,
    .on_finished = on_stream_finished,
};

/* --- a stream of another node (cluster mode): its mirror journal, filled from Redis ---------- */

/*
 * The metadata is known: the chunks name the agent or model the stream ran (the name the
 * request gave is not kept in Redis; with none it was the default model, the same) and its
 * start; the usage chunk is always sent (stream_options is not kept either).
 */
static void
cs_ready(void *ud, struct sl_cstream *r)
{
    struct oai *o = ud;
    struct sl_stream_info info;
    sl_cstream_info(r, &info);
    free(o->model);
    o->model = sl_strdup(info.agent ? info.agent : sl_cstream_model(r));
    o->created = info.started_ms / 1000;
    sl_oai_stream_init(&o->fmt, o->id, strlen(o->id), o->model, o->created, true);
    o->stream = true;
    sl_counter_add(&o->api->w->metrics.resumes_total, 1);
    pump(o, false);
}

static void
cs_failed(void *ud, struct sl_cstream *r, const char *why)
{
    (void)r;
    struct oai *o = ud;
    o->cs = NULL; /* freed after this */
    if (o->r == NULL) {
        oai_free(o);
        return;
    }
    if (o->ended)
        return;
    char msg[240];
    snprintf(msg, sizeof(msg), "nothing to resume for this stream: %s", why);
    if (!o->head_sent) {
        struct sl_oai_error e;
        sl_oai_error_set(&e, SL_ERR_NOT_FOUND, "", -1, "%s", msg);
        resp_error(o, &e);
        return;
    }
    /* Lost after the head (its node gone mid-stream): the body ends with an error event. */
    struct sl_event ev = {.type = SL_EV_ERROR, .seq = o->cur.seq}; /* a resume after it: 404 */
    ev.u.error.code = SL_ERR_NOT_FOUND;
    ev.u.error.message = msg;
    ev.u.error.retry_after_ms = -1;
    struct sl_buf *b = &o->api->out;
    sl_buf_clear(b);
    sl_oai_sse_event(&o->fmt, b, &ev);
    sl_http_body(o->r, sl_buf_ptr(b), sl_buf_len(b));
    sl_http_end(o->r, false);
    o->ended = true;
}

static void
cs_records(void *ud, struct sl_cstream *r)
{
    (void)r;
    pump(ud, false);
}

static void
cs_gone(void *ud, struct sl_cstream *r)
{
    (void)r;
    struct oai *o = ud;
    o->cs = NULL; /* freed after this */
    if (o->r == NULL) {
        oai_free(o);
    } else if (!o->ended) {
        sl_http_end(o->r, true); /* a resume elsewhere took it: this response stops here */
        o->ended = true;
    }
}

static const struct sl_cstream_cb cstream_cb = {
    .on_ready = cs_ready,
    .on_failed = cs_failed,
    .on_records = cs_records,
    .on_taken = cs_gone,
    .on_finished = cs_gone,
};

/* Lets the stream go: the provider stops at once (through its owner for another node's). */
static void
release_source(struct oai *o)
{
    struct sl_stream *st = o->st;
    struct sl_cstream *cs = o->cs;
    o->st = NULL;
    o->cs = NULL;
    if (st)
        sl_stream_release(st);
    if (cs)
        sl_cstream_release(cs);
}

/* --- the HTTP response's callbacks ----------------------------------------------------------- */

static void
on_drain(void *ud, struct sl_http_resp *r)
{
    struct oai *o = ud;
    if (r == o->r)
        pump(o, false);
}

static void
on_close(void *ud, struct sl_http_resp *r, bool aborted)
{
    struct oai *o = ud;
    struct sl_http_api *a = o->api;
    sl_counter_add(&a->w->metrics.conn_closed[SL_PK_SSE], 1);
    if (r != o->r)
        return; /* a response a resume took the stream from */
    o->r = NULL;
    sl_timeq_disarm(&o->tnode);
    if (o->st == NULL && o->cs == NULL) {
        oai_free(o);
        return;
    }
    if (aborted && o->resumable && (o->stream || o->cs) && !o->ended && !a->stopping &&
        a->w->cfg->resume.window_ms > 0) {
        /* Disconnect is a pause: the stream fills its journal until a resume or the window. */
        set_live(o, false);
        sl_loop_arm(a->w->loop, &a->window_tq, &o->tnode);
        return;
    }
    release_source(o); /* the provider stops at once */
    oai_free(o);
}

static const struct sl_http_resp_handler resp_handler = {.on_drain = on_drain,
                                                         .on_close = on_close};

static void
on_heartbeat(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct oai *o = SL_CONTAINER_OF(n, struct oai, tnode);
    if (o->r == NULL || !o->head_sent || o->ended || !o->stream)
        return;
    struct sl_buf *b = &o->api->out;
    sl_buf_clear(b);
    sl_oai_sse_heartbeat(b);
    sl_http_body(o->r, sl_buf_ptr(b), sl_buf_len(b));
    sl_loop_arm(o->api->w->loop, &o->api->hb_tq, &o->tnode);
}

static void
on_window_over(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct oai *o = SL_CONTAINER_OF(n, struct oai, tnode);
    release_source(o);
    oai_free(o);
}

/* --- requests ------------------------------------------------------------------------------- */

static bool
header_true(const struct sl_http_req *req, const char *name)
{
    struct sl_slice v = sl_http_get_header(req, name);
    return v.ptr &&
           ((v.len == 4 && strncasecmp(v.ptr, "true", 4) == 0) || (v.len == 1 && v.ptr[0] == '1'));
}

static int
completions(struct sl_http_api *a, struct sl_conn *c, struct sl_http_req *req)
{
    struct sl_worker *w = a->w;
    const struct sl_config *cfg = w->cfg;
    struct sl_oai_error e;
    struct sl_identity id;
    if (authenticate(a, c, req, &id, &e) != 0)
        return respond_error(c, req, &e);
    /*
     * A request is a message: it takes a token of the identity's bucket
     * (limits.messages_per_minute), the one its WebSocket connections draw from, valid or not.
     */
    struct sl_limits_refusal lr;
    if (w->admission.limits && sl_limits_message(w->admission.limits, id.user, id.tier, &lr) != 0) {
        sl_counter_add(&w->metrics.rate_limited[lr.limit], 1);
        sl_oai_error_set(&e, lr.code, "", lr.retry_after_ms, "%s", lr.message);
        return respond_error(c, req, &e);
    }
    struct sl_oai_chat chat;
    const struct sl_proto_limits lim = {
        .max_id_len = 128, .max_messages = 4096, .max_tokens_cap = 1000000};
    if (sl_oai_parse_chat(&lim, req->body.ptr, req->body.len, &chat, &e) != 0)
        return respond_error(c, req, &e);
    struct sl_chat_req *creq = chat.req;
    chat.req = NULL;
    if (creq->model && !sl_config_find_model(cfg, creq->model) &&
        sl_config_find_agent(cfg, creq->model))
        sl_oai_model_as_agent(creq);
    char model[256];
    snprintf(model, sizeof(model), "%s",
             creq->model   ? creq->model
             : creq->agent ? creq->agent
                           : cfg->default_model);
    char sid[24];
    sl_random_id(sid, 20);
    struct sl_stream_owner owner = {.user = id.user, .conn = sl_conn_id(c), .tier = id.tier};
    struct sl_refusal why;
    struct sl_stream *st = sl_admission_chat(&w->admission, &owner, creq, sid, &why);
    if (st == NULL) {
        sl_oai_chat_clear(&chat);
        sl_oai_error_set(&e, why.code, why.code == SL_ERR_UNKNOWN_MODEL ? "model" : "",
                         why.retry_after_ms, "%s", why.message);
        return respond_error(c, req, &e);
    }
    struct oai *o = sl_calloc(1, sizeof(*o));
    o->api = a;
    o->st = st;
    o->user = sl_strdup(id.user);
    o->id = sl_strdup(sid);
    o->model = sl_strdup(model);
    o->created = sl_wall_ms() / 1000;
    o->stream = chat.stream;
    o->resumable = chat.stream && header_true(req, "x-sluice-resumable");
    sl_timeq_node_init(&o->tnode);
    sl_list_push_back(&a->all, &o->link);
    if (o->stream)
        sl_oai_stream_init(&o->fmt, sid, strlen(sid), model, o->created, chat.include_usage);
    else
        o->agg = sl_oai_agg_new(MAX_RESPONSE_BYTES);
    sl_oai_chat_clear(&chat);
    sl_journal_seek(sl_stream_journal(st), 0, &o->cur);
    o->r = sl_http_hold(c, req, &resp_handler, o);
    sl_counter_add(&w->metrics.conn_opened[SL_PK_SSE], 1);
    sl_stream_attach(st, &reader, o, true);
    sl_stream_start(st); /* may end the stream (and free nothing of o: the response holds it) */
    return 200;
}

/*
 * A stream no worker of this node holds: in cluster mode perhaps another node's. Its events
 * come from Redis, then live; the head waits for them (or for NOT_FOUND) like a new request's.
 */
static int
resume_remote(struct sl_http_api *a, struct sl_conn *c, struct sl_http_req *req,
              const struct sl_identity *id, const char *sid, uint32_t after)
{
    struct oai *o = sl_calloc(1, sizeof(*o));
    o->api = a;
    o->user = sl_strdup(id->user);
    o->id = sl_strdup(sid);
    o->resumable = true; /* it was resumed: a cut pauses it again for the window */
    sl_timeq_node_init(&o->tnode);
    o->cs = sl_cluster_resume(a->w->cluster, id->user, sid, NULL, after, true, &cstream_cb, o);
    if (o->cs == NULL) {
        oai_free(o);
        struct sl_oai_error e;
        sl_oai_error_set(&e, SL_ERR_NOT_FOUND, "", -1,
                         "nothing to resume for this stream (the cluster is unreachable now)");
        return respond_error(c, req, &e);
    }
    sl_list_push_back(&a->all, &o->link);
    sl_journal_seek(sl_cstream_journal(o->cs), after, &o->cur);
    o->r = sl_http_hold(c, req, &resp_handler, o);
    sl_counter_add(&a->w->metrics.conn_opened[SL_PK_SSE], 1);
    return 200;
}

/* GET /v1/chat/completions/<stream>/events, Last-Event-ID: <stream>:<seq> */
static int
resume(struct sl_http_api *a, struct sl_conn *c, struct sl_http_req *req, struct sl_slice sid)
{
    struct sl_oai_error e;
    struct sl_identity id;
    if (authenticate(a, c, req, &id, &e) != 0)
        return respond_error(c, req, &e);
    uint64_t after = 0;
    struct sl_slice last = sl_http_get_header(req, "Last-Event-ID");
    char qbuf[200];
    if (last.ptr == NULL && sl_http_query_param(req, "last_event_id", qbuf, sizeof(qbuf)) > 0)
        last = sl_slice_make(qbuf, strlen(qbuf));
    if (last.ptr) {
        const char *s;
        size_t sl;
        if (sl_oai_parse_event_id(last.ptr, last.len, &s, &sl, &after) != 0 || sl != sid.len ||
            memcmp(s, sid.ptr, sl) != 0) {
            sl_oai_error_set(&e, SL_ERR_BAD_REQUEST, "Last-Event-ID", -1,
                             "Last-Event-ID must be \"<stream>:<seq>\" of this stream");
            return respond_error(c, req, &e);
        }
    }
    char idbuf[64];
    if (sid.len == 0 || sid.len >= sizeof(idbuf)) {
        sl_oai_error_set(&e, SL_ERR_NOT_FOUND, "", -1, "no such stream");
        return respond_error(c, req, &e);
    }
    memcpy(idbuf, sid.ptr, sid.len);
    idbuf[sid.len] = '\0';
    struct oai *o = NULL;
    for (struct sl_list *l = a->all.next; l != &a->all; l = l->next) {
        struct oai *x = SL_CONTAINER_OF(l, struct oai, link);
        if ((x->st || x->cs) && x->stream && x->resumable && strcmp(x->id, idbuf) == 0 &&
            strcmp(x->user, id.user) == 0)
            o = x;
    }
    if (o == NULL) {
        int owner = sl_directory_find(a->w->server->directory, id.user, idbuf, NULL);
        if (owner >= 0 && (unsigned)owner != a->w->id &&
            sl_sio_worker_hand_to(a->w->sio, (unsigned)owner, c, req))
            return 0; /* answered by the stream's worker */
        if (owner < 0 && a->w->cluster != NULL && after <= UINT32_MAX)
            return resume_remote(a, c, req, &id, idbuf, (uint32_t)after);
        sl_oai_error_set(&e, SL_ERR_NOT_FOUND, "", -1,
                         "nothing to resume for this stream (unknown, finished, not resumable, "
                         "or past resume.window)");
        return respond_error(c, req, &e);
    }
    struct sl_jcursor cur;
    if (after > UINT32_MAX || !sl_journal_seek(journal_of(o), (uint32_t)after, &cur)) {
        sl_oai_error_set(&e, SL_ERR_NOT_FOUND, "", -1,
                         "the events after this id are no longer kept; start again");
        return respond_error(c, req, &e);
    }
    if (o->r != NULL) {
        /* Still held by an older response (a half-dead connection): this one takes over. */
        struct sl_http_resp *old = o->r;
        o->r = NULL;
        sl_http_end(old, true);
    }
    sl_timeq_disarm(&o->tnode);
    o->cur = cur;
    o->ended = false;
    o->r = sl_http_hold(c, req, &resp_handler, o);
    sl_counter_add(&a->w->metrics.conn_opened[SL_PK_SSE], 1);
    sl_counter_add(&a->w->metrics.resumes_total, 1);
    if (o->st || o->head_sent) /* another node's not yet ready: pump sends it */
        send_head(o);
    set_live(o, true);
    pump(o, false);
    return 200;
}

static int
models(struct sl_http_api *a, struct sl_conn *c, struct sl_http_req *req)
{
    struct sl_oai_error e;
    struct sl_identity id;
    if (authenticate(a, c, req, &id, &e) != 0)
        return respond_error(c, req, &e);
    const struct sl_config *cfg = a->w->cfg;
    struct sl_ready_model *ms = sl_calloc(cfg->nmodels + 1, sizeof(*ms));
    struct sl_ready_agent *as = sl_calloc(cfg->nagents + 1, sizeof(*as));
    for (size_t i = 0; i < cfg->nmodels; i++)
        ms[i] = (struct sl_ready_model){cfg->models[i].name, cfg->models[i].provider};
    for (size_t i = 0; i < cfg->nagents; i++)
        as[i] = (struct sl_ready_agent){cfg->agents[i].name, cfg->agents[i].model};
    struct sl_buf b = SL_BUF_INIT;
    sl_oai_render_models(&b, ms, cfg->nmodels, as, cfg->nagents, a->started);
    sl_http_respond(c, req, 200, "application/json", NULL, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
    free(ms);
    free(as);
    return 200;
}

static bool
has_prefix(struct sl_slice s, const char *p)
{
    size_t n = strlen(p);
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

bool
sl_http_api_owns(struct sl_slice path)
{
    return has_prefix(path, "/v1/");
}

int
sl_http_api_handle(struct sl_http_api *a, struct sl_conn *c, struct sl_http_req *req)
{
    struct sl_oai_error e;
    struct sl_slice p = req->path;
    bool post = strcmp(req->method, "POST") == 0;
    if (sl_slice_eq(p, COMPLETIONS)) {
        if (!post) {
            return method_not_allowed(c, req, "Allow: POST\r\n");
        }
        return completions(a, c, req);
    }
    if (sl_slice_eq(p, MODELS)) {
        if (!req->is_get && !req->is_head) {
            return method_not_allowed(c, req, "Allow: GET, HEAD\r\n");
        }
        return models(a, c, req);
    }
    static const char events[] = "/events";
    size_t pre = sizeof(COMPLETIONS); /* "/v1/chat/completions/" */
    if (has_prefix(p, COMPLETIONS "/") && p.len > pre + sizeof(events) - 1 &&
        memcmp(p.ptr + p.len - (sizeof(events) - 1), events, sizeof(events) - 1) == 0) {
        if (!req->is_get) {
            return method_not_allowed(c, req, "Allow: GET\r\n");
        }
        return resume(a, c, req, sl_slice_make(p.ptr + pre, p.len - pre - (sizeof(events) - 1)));
    }
    sl_oai_error_set(&e, SL_ERR_NOT_FOUND, "", -1, "no such endpoint: %.*s",
                     (int)(p.len > 100 ? 100 : p.len), p.ptr);
    return respond_error(c, req, &e);
}

struct sl_http_api *
sl_http_api_new(struct sl_worker *w)
{
    struct sl_http_api *a = sl_calloc(1, sizeof(*a));
    a->w = w;
    a->started = sl_wall_ms() / 1000;
    sl_list_init(&a->all);
    sl_timeq_init(&a->hb_tq, HEARTBEAT_MS, on_heartbeat);
    sl_timeq_init(&a->window_tq, w->cfg->resume.window_ms ? w->cfg->resume.window_ms : 1,
                  on_window_over);
    sl_loop_add_timeq(w->loop, &a->hb_tq);
    sl_loop_add_timeq(w->loop, &a->window_tq);
    return a;
}

void
sl_http_api_shutdown(struct sl_http_api *a)
{
    a->stopping = true;
    struct sl_list *l, *next;
    for (l = a->all.next; l != &a->all; l = next) {
        next = l->next;
        struct oai *o = SL_CONTAINER_OF(l, struct oai, link);
        if (o->r == NULL)
            on_window_over(&o->tnode, 0);
    }
}

void
sl_http_api_free(struct sl_http_api *a)
{
    if (a == NULL)
        return;
    while (!sl_list_empty(&a->all)) {
        struct oai *o = SL_CONTAINER_OF(a->all.next, struct oai, link);
        release_source(o);
        oai_free(o);
    }
    sl_buf_free(&a->out);
    free(a);
}
