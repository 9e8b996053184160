#include "core/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/util.h"
#include "config/config.h"
#include "core/server.h"
#include "core/worker.h"
#include "net/loop.h"
#include "obs/log.h"
#include "stream/stream.h"

/* Messages larger than this are refused before authentication [Redis: 1 MB unauthenticated]. */
#define PREAUTH_MAX_MESSAGE 16384

enum state { S_AUTH_WAIT, S_READY, S_CLOSING };

struct sl_session {
    struct sl_worker *w;
    const struct sl_proto *proto;
    void *t;
    const struct sl_transport_ops *tops;
    struct sl_timeq_node tnode; /* auth timeout or heartbeat */
    struct sl_list link;        /* in w->sessions */
    struct sl_stream **streams;
    unsigned nstreams, cap;
    char *user;
    char sid[17];
    uint8_t state;
    uint8_t kind;
    uint32_t next_id;
    double bucket; /* rate limit tokens */
    uint64_t bucket_ms;
    uint32_t rejected; /* consecutive rate-limited messages */
    uint64_t conn;     /* the first transport's connection id, for logs once it is gone */
    uint64_t t_start;  /* loop time at creation (ms) */
};

static const struct sl_stream_sub stream_sub;

/* The connection carrying the session now (or last), for logs. */
static uint64_t
conn_of(const struct sl_session *s)
{
    if (s->t && s->tops->conn_id)
        return s->tops->conn_id(s->t);
    return s->conn;
}

/* The ids every session log line starts with. */
static void
log_ids(const struct sl_session *s, struct sl_logrec *r)
{
    sl_log_uint(r, "worker", s->w->id);
    sl_log_uint(r, "conn", conn_of(s));
    sl_log_str(r, "session", s->sid);
}

/* --- output ------------------------------------------------------------------------- */

static void end_session(struct sl_session *s, uint16_t code, const char *reason);

/*
 * A client that reads slower than its streams produce is closed once this many times
 * limits.send_high_water is queued for it [Redis client-output-buffer-limit]: memory per
 * connection stays bounded whatever the client does. (Pausing the provider at the
 * high-water mark, so that a slow reader only slows its own streams, comes with
 * backpressure.)
 */
#define SEND_HARD_LIMIT_FACTOR 4

static void
sink_send(struct sl_proto_sink *sink)
{
    struct sl_session *s = sink->ud;
    if (s->t && s->state != S_CLOSING) {
        s->tops->send(s->t, sl_buf_ptr(sink->buf), sl_buf_len(sink->buf));
        if (s->tops->queued(s->t) > SEND_HARD_LIMIT_FACTOR * s->w->cfg->limits.send_high_water)
            end_session(s, SL_CLOSE_POLICY,
                        "{\"reason\":\"client reads too slowly: send buffer limit\","
                        "\"resume\":true}");
    }
    sl_buf_clear(sink->buf);
}

static struct sl_proto_sink
sink_of(struct sl_session *s)
{
    sl_buf_clear(&s->w->scratch);
    return (struct sl_proto_sink){.buf = &s->w->scratch, .send = sink_send, .ud = s};
}

static void
send_error(struct sl_session *s, const char *id, enum sl_errcode code, const char *message,
           int64_t retry_after_ms)
{
    struct sl_proto_sink sink = sink_of(s);
    s->proto->error(&sink, id, code, message, retry_after_ms);
}

static void
end_session(struct sl_session *s, uint16_t code, const char *reason)
{
    if (s->state == S_CLOSING)
        return;
    s->state = S_CLOSING;
    sl_timeq_disarm(&s->tnode);
    if (s->t)
        s->tops->close(s->t, code, reason);
}

static void
close_going_away(struct sl_session *s)
{
    char reason[96];
    snprintf(reason, sizeof(reason),
             "{\"reason\":\"server shutting down\",\"retry_after_ms\":%llu,"
             "\"resume\":true}",
             (unsigned long long)s->w->cfg->shutdown.retry_after_ms);
    end_session(s, SL_CLOSE_GOING_AWAY, reason);
}

/* --- streams ------------------------------------------------------------------------ */

static int
find_stream(const struct sl_session *s, const char *id)
{
    for (unsigned i = 0; i < s->nstreams; i++)
        if (strcmp(sl_stream_id(s->streams[i]), id) == 0)
            return (int)i;
    return -1;
}

static void
remove_stream(struct sl_session *s, struct sl_stream *st)
{
    for (unsigned i = 0; i < s->nstreams; i++) {
        if (s->streams[i] == st) {
            s->streams[i] = s->streams[--s->nstreams];
            s->w->nstreams--;
            break;
        }
    }
    if (s->nstreams == 0) {
        free(s->streams);
        s->streams = NULL;
        s->cap = 0;
    }
}

static void
on_stream_event(void *ud, struct sl_stream *st, const struct sl_event *ev)
{
    struct sl_session *s = ud;
    struct sl_stream_view view;
    sl_stream_view(st, &view);
    struct sl_proto_sink sink = sink_of(s);
    s->proto->event(&sink, &view, ev);
}

static void
on_stream_finished(void *ud, struct sl_stream *st)
{
    struct sl_session *s = ud;
    remove_stream(s, st);
    if (s->w->draining && s->nstreams == 0)
        close_going_away(s);
}

static const struct sl_stream_sub stream_sub = {
    .on_event = on_stream_event,
    .on_finished = on_stream_finished,
};

static void
start_chat(struct sl_session *s, struct sl_chat_req *req)
{
    const struct sl_config *cfg = s->w->cfg;
    char id[160]; /* a copy: req (and req->id) goes to the stream, or is freed */

    if (req->id != NULL) {
        snprintf(id, sizeof(id), "%s", req->id);
    } else {
        do
            snprintf(id, sizeof(id), "s%u", ++s->next_id);
        while (find_stream(s, id) >= 0);
    }
    if (s->w->draining) {
        send_error(s, id, SL_ERR_SHUTTING_DOWN, "the server is shutting down; reconnect",
                   (int64_t)cfg->shutdown.retry_after_ms);
        goto refuse;
    }
    if (find_stream(s, id) >= 0) {
        send_error(s, id, SL_ERR_DUPLICATE_ID, "a stream with this id is already running", -1);
        goto refuse;
    }
    if (s->nstreams >= cfg->limits.max_streams_per_connection) {
        char msg[96];
        snprintf(msg, sizeof(msg), "at most %u streams at once on a connection",
                 cfg->limits.max_streams_per_connection);
        send_error(s, id, SL_ERR_TOO_MANY_STREAMS, msg, -1);
        goto refuse;
    }

    struct sl_stream_env env = {.cfg = cfg,
                                .up = s->w->up,
                                .metrics = &s->w->metrics,
                                .session = s->sid,
                                .user = s->user,
                                .conn = conn_of(s),
                                .worker = s->w->id};
    enum sl_errcode code;
    const char *why;
    char name[300];
    snprintf(name, sizeof(name), "%s",
             req->agent && !req->model ? req->agent
             : req->model              ? req->model
                                       : cfg->default_model);
    struct sl_stream *st = sl_stream_new(&env, req, id, &stream_sub, s,
                                         (s->proto->flags & SL_PROTO_FULL_TEXT) != 0, &code, &why);
    if (st == NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "%s \"%s\"", why, name);
        send_error(s, id, code, msg, -1);
        return; /* sl_stream_new freed req */
    }
    if (s->nstreams == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 2;
        s->streams = sl_realloc(s->streams, s->cap * sizeof(*s->streams));
    }
    s->streams[s->nstreams++] = st;
    s->w->nstreams++;
    sl_stream_start(st); /* may finish it at once */
    return;
refuse:
    sl_chat_req_free(req);
}

/* --- authentication and heartbeat ------------------------------------------------------- */

static void
become_ready(struct sl_session *s, const char *user)
{
    const struct sl_config *cfg = s->w->cfg;
    s->user = sl_strdup(user);
    s->state = S_READY;
    if (s->tops->set_max_message)
        s->tops->set_max_message(s->t, cfg->limits.max_message_bytes);
    sl_loop_arm(s->w->loop, &s->w->hb_idle_tq, &s->tnode);

    struct sl_ready_model *models = sl_calloc(cfg->nmodels, sizeof(*models));
    for (size_t i = 0; i < cfg->nmodels; i++) {
        models[i].name = cfg->models[i].name;
        models[i].provider = cfg->models[i].provider;
    }
    struct sl_ready_agent *agents = sl_calloc(cfg->nagents ? cfg->nagents : 1, sizeof(*agents));
    for (size_t i = 0; i < cfg->nagents; i++) {
        agents[i].name = cfg->agents[i].name;
        agents[i].model = cfg->agents[i].model;
    }
    struct sl_ready_info info = {
        .session = s->sid,
        .user = s->user,
        .heartbeat_ms = cfg->heartbeat.interval_ms,
        .max_streams = cfg->limits.max_streams_per_connection,
        .max_message_bytes = cfg->limits.max_message_bytes,
        .messages_per_minute = cfg->limits.messages_per_minute,
        .resume_window_ms = cfg->resume.window_ms,
        .default_model = cfg->default_model,
        .models = models,
        .nmodels = cfg->nmodels,
        .agents = agents,
        .nagents = cfg->nagents,
    };
    struct sl_proto_sink sink = sink_of(s);
    s->proto->ready(&sink, &info);
    free(models);
    free(agents);

    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "session.ready")) {
        log_ids(s, &r);
        sl_log_str(&r, "user", s->user);
        sl_log_str(&r, "protocol", s->proto->name);
        sl_log_end(&r);
    }
}

static void
authenticate(struct sl_session *s, const char *token, size_t len)
{
    struct sl_identity id;
    const char *reason = "invalid token";
    if (sl_auth_verify(s->w->server->auth, token, len, &id, &reason) != 0) {
        sl_counter_add(&s->w->metrics.auth_failures_total, 1);
        struct sl_logrec r;
        if (sl_log_begin(&r, SL_LOG_INFO, "auth.failed")) {
            log_ids(s, &r);
            sl_log_str(&r, "reason", reason);
            sl_log_end(&r);
        }
        char msg[160];
        snprintf(msg, sizeof(msg), "authentication failed: %s", reason);
        send_error(s, NULL, SL_ERR_AUTH_FAILED, msg, -1);
        end_session(s, SL_CLOSE_AUTH_FAILED, msg);
        return;
    }
    become_ready(s, id.user);
}

static struct sl_session *
from_timer(struct sl_timeq_node *n)
{
    return SL_CONTAINER_OF(n, struct sl_session, tnode);
}

static void
on_auth_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_session *s = from_timer(n);
    send_error(s, NULL, SL_ERR_AUTH_REQUIRED, "no authentication within the auth timeout", -1);
    end_session(s, SL_CLOSE_AUTH_TIMEOUT, "authentication timeout: send auth first");
}

static void
on_heartbeat_idle(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_session *s = from_timer(n);
    if (s->tops->ping)
        s->tops->ping(s->t);
    sl_loop_arm(s->w->loop, &s->w->hb_wait_tq, &s->tnode);
}

static void
on_heartbeat_lost(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_session *s = from_timer(n);
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "session.heartbeat_lost")) {
        log_ids(s, &r);
        sl_log_uint(&r, "streams", s->nstreams);
        sl_log_end(&r);
    }
    end_session(s, SL_CLOSE_HEARTBEAT_TIMEOUT,
                "{\"reason\":\"heartbeat timeout\",\"resume\":true}");
}

void
sl_session_init_timers(struct sl_worker *w)
{
    const struct sl_config *cfg = w->cfg;
    uint64_t wait = cfg->heartbeat.timeout_ms > cfg->heartbeat.interval_ms
                        ? cfg->heartbeat.timeout_ms - cfg->heartbeat.interval_ms
                        : 1;
    sl_timeq_init(&w->auth_tq, cfg->limits.auth_timeout_ms, on_auth_timeout);
    sl_timeq_init(&w->hb_idle_tq, cfg->heartbeat.interval_ms, on_heartbeat_idle);
    sl_timeq_init(&w->hb_wait_tq, wait, on_heartbeat_lost);
    sl_loop_add_timeq(w->loop, &w->auth_tq);
    sl_loop_add_timeq(w->loop, &w->hb_idle_tq);
    sl_loop_add_timeq(w->loop, &w->hb_wait_tq);
}

/* Token bucket of limits.messages_per_minute; true if the message may pass. */
static bool
take_token(struct sl_session *s, int64_t *retry_after_ms)
{
    unsigned per_min = s->w->cfg->limits.messages_per_minute;
    if (per_min == 0)
        return true;
    uint64_t now = sl_loop_now(s->w->loop);
    s->bucket += (double)(now - s->bucket_ms) * per_min / 60000.0;
    if (s->bucket > per_min)
        s->bucket = per_min;
    s->bucket_ms = now;
    if (s->bucket >= 1) {
        s->bucket -= 1;
        return true;
    }
    *retry_after_ms = (int64_t)((1 - s->bucket) * 60000.0 / per_min) + 1;
    return false;
}

/* --- the public face ------------------------------------------------------------------- */

struct sl_session *
sl_session_new(struct sl_worker *w, const struct sl_proto *proto, enum sl_proto_kind kind,
               void *transport, const struct sl_transport_ops *ops)
{
    struct sl_session *s = sl_calloc(1, sizeof(*s));
    s->w = w;
    s->proto = proto;
    s->kind = (uint8_t)kind;
    s->t = transport;
    s->tops = ops;
    s->state = S_AUTH_WAIT;
    sl_timeq_node_init(&s->tnode);
    sl_random_id(s->sid, 16);
    s->bucket = w->cfg->limits.messages_per_minute;
    s->bucket_ms = sl_loop_now(w->loop);
    s->t_start = s->bucket_ms;
    s->conn = ops->conn_id ? ops->conn_id(transport) : 0;
    sl_list_push_back(&w->sessions, &s->link);
    w->nsessions++;
    sl_counter_add(&w->metrics.conn_opened[kind], 1);
    if (ops->set_max_message)
        ops->set_max_message(transport, PREAUTH_MAX_MESSAGE);
    return s;
}

void
sl_session_begin(struct sl_session *s, const char *token)
{
    if (s->w->draining) {
        close_going_away(s);
        return;
    }
    if (token != NULL) {
        authenticate(s, token, strlen(token));
        return;
    }
    sl_loop_arm(s->w->loop, &s->w->auth_tq, &s->tnode);
}

void
sl_session_on_activity(struct sl_session *s)
{
    if (s->state == S_READY)
        sl_loop_arm(s->w->loop, &s->w->hb_idle_tq, &s->tnode);
}

void
sl_session_on_violation(struct sl_session *s, uint16_t code, const char *reason)
{
    if (code == SL_CLOSE_TOO_BIG) {
        char msg[96];
        snprintf(msg, sizeof(msg), "message larger than %llu bytes",
                 (unsigned long long)(s->state == S_READY ? s->w->cfg->limits.max_message_bytes
                                                          : PREAUTH_MAX_MESSAGE));
        send_error(s, NULL, SL_ERR_TOO_LARGE, msg, -1);
    } else {
        send_error(s, NULL, SL_ERR_BAD_REQUEST, reason, -1);
    }
}

void
sl_session_on_message(struct sl_session *s, const char *msg, size_t len)
{
    struct sl_command cmd = {0};
    struct sl_proto_error err = {0};
    const struct sl_proto_limits lim = {
        .max_id_len = 128, .max_messages = 4096, .max_tokens_cap = 1000000};

    if (s->state == S_CLOSING)
        return;
    int rc = s->proto->parse(&lim, msg, len, &cmd, &err);

    if (s->state == S_AUTH_WAIT) {
        int64_t wait;
        /* An unauthenticated client gets no more patience than an authenticated one. */
        if (!take_token(s, &wait)) {
            sl_counter_add(&s->w->metrics.rate_limited_total, 1);
            end_session(s, SL_CLOSE_RATE_LIMITED,
                        "{\"reason\":\"too many messages before authentication\"}");
            goto out;
        }
        if (rc == 0 && cmd.type == SL_CMD_AUTH)
            authenticate(s, cmd.token, strlen(cmd.token));
        else if (rc != 0 && err.auth_cmd)
            send_error(s, NULL, err.code, err.message, -1);
        else
            send_error(s, NULL, SL_ERR_AUTH_REQUIRED,
                       "authenticate first: send {\"type\":\"auth\","
                       "\"token\":\"...\"}",
                       -1);
        goto out;
    }
    if (rc == 0 && cmd.type == SL_CMD_PING) {
        struct sl_proto_sink sink = sink_of(s);
        s->proto->pong(&sink, s->nstreams);
        goto out;
    }
    int64_t retry_after;
    if (!take_token(s, &retry_after)) {
        sl_counter_add(&s->w->metrics.rate_limited_total, 1);
        send_error(s, rc == 0 ? (cmd.chat ? cmd.chat->id : cmd.id) : err.id, SL_ERR_RATE_LIMITED,
                   "too many messages; slow down", retry_after);
        if (++s->rejected > s->w->cfg->limits.messages_per_minute)
            end_session(s, SL_CLOSE_RATE_LIMITED, "{\"reason\":\"rate limit exceeded\"}");
        goto out;
    }
    s->rejected = 0;
    if (rc != 0) {
        send_error(s, err.id, err.code, err.message, -1);
        goto out;
    }
    switch (cmd.type) {
    case SL_CMD_AUTH:
        send_error(s, NULL, SL_ERR_BAD_REQUEST, "already authenticated", -1);
        break;
    case SL_CMD_CHAT:
        start_chat(s, cmd.chat);
        cmd.chat = NULL;
        break;
    case SL_CMD_CANCEL: {
        int i = find_stream(s, cmd.id);
        if (i < 0)
            send_error(s, cmd.id, SL_ERR_NOT_FOUND, "no running stream with this id", -1);
        else
            sl_stream_cancel(s->streams[i], "client");
        break;
    }
    case SL_CMD_RESUME:
        send_error(s, cmd.id, SL_ERR_NOT_FOUND, "nothing to resume for this id; start again", -1);
        break;
    case SL_CMD_PING:
        break;
    }
out:
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);
}

void
sl_session_transport_closed(struct sl_session *s, uint16_t code)
{
    struct sl_worker *w = s->w;
    s->t = NULL;
    s->state = S_CLOSING;
    sl_timeq_disarm(&s->tnode);
    /* Without resume, a stream nobody reads is a stream nobody pays for: stop it. */
    while (s->nstreams > 0) {
        struct sl_stream *st = s->streams[--s->nstreams];
        w->nstreams--;
        sl_stream_detach(st);
    }
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "session.closed")) {
        log_ids(s, &r);
        if (s->user)
            sl_log_str(&r, "user", s->user);
        sl_log_uint(&r, "code", code);
        sl_log_uint(&r, "duration_ms", sl_loop_now(w->loop) - s->t_start);
        sl_log_end(&r);
    }
    sl_counter_add(&w->metrics.conn_closed[s->kind], 1);
    sl_list_unlink(&s->link);
    w->nsessions--;
    free(s->streams);
    free(s->user);
    free(s);
}

void
sl_session_drain(struct sl_session *s)
{
    if (s->nstreams == 0)
        close_going_away(s);
}

void
sl_session_shutdown(struct sl_session *s)
{
    close_going_away(s);
}

struct sl_session *
sl_session_from_link(struct sl_list *link)
{
    return SL_CONTAINER_OF(link, struct sl_session, link);
}
