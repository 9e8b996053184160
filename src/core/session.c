#include "core/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/throttle.h"
#include "base/alloc.h"
#include "base/util.h"
#include "cluster/cluster.h"
#include "config/config.h"
#include "core/admission.h"
#include "limits/limits.h"
#include "memory/memory.h"
#include "net/loop.h"
#include "obs/log.h"
#include "stream/directory.h"
#include "stream/relay.h"
#include "stream/stream.h"

/* Messages larger than this are refused before authentication [Redis: 1 MB unauthenticated]. */
#define PREAUTH_MAX_MESSAGE 16384

/* Consecutive text deltas merged into one message when a backlog is rendered. */
#define MERGE_MAX 16384

/* Text kept per stream for renderers that show the whole answer (SL_PROTO_FULL_TEXT). */
#define TEXT_MAX (1u << 20)

/* Socket.IO's recovery offset (the client sends it back in its CONNECT payload). */
#define OFFSET_MAX 64

/* How long before a token's `exp` the client is told to send a fresh one. */
#define EXPIRY_NOTICE_MS 60000

enum { TAKEOVER_NONE, TAKEOVER_RECONNECT, TAKEOVER_RECOVERY };

enum state {
    S_AUTH_WAIT, /* transport attached, not authenticated */
    S_READY,     /* attached and authenticated */
    S_CLOSING,   /* we asked the transport to close */
    S_DETACHED,  /* no transport; waiting up to resume.window */
};

/*
 * What a session reads: a stream of its own worker, or one of another worker through the
 * relay (stream/relay.h). Both are a journal read through a cursor; these are the few
 * things that differ.
 */
struct source_ops {
    const char *(*id)(const void *src);
    bool (*ended)(const void *src);
    struct sl_journal *(*journal)(void *src);
    const char *(*model)(const void *src);
    const char *(*provider)(const void *src);
    /* false: the source is gone (finished), and so is the sub */
    bool (*consumed)(void *src, struct sl_jcursor *cur);
    void (*cancel)(void *src);
    void (*set_live)(void *src, bool live);
    void (*release)(void *src);
    void (*info)(const void *src, struct sl_stream_info *out);
};

/* A session's reading of one stream. */
struct sub {
    struct sl_list link; /* in session->subs */
    struct sl_session *session;
    const struct source_ops *ops;
    void *src;                    /* struct sl_stream or struct sl_rstream */
    bool pending;                 /* a remote resume not yet answered */
    const struct sl_proto *proto; /* the dialect that renders this stream */
    const char *id;               /* its id (borrowed from the source), once rendered */
    size_t id_len;
    unsigned idx;      /* number within the session (Socket.IO recovery offsets) */
    uint32_t rendered; /* the last seq rendered to the client */
    bool skip_deltas;  /* cancelled: what the journal still holds of it is dropped */
    bool holding;      /* its terminal event is rendered but not yet acknowledged as delivered */
    uint64_t end_mark; /* the transport's position right after that terminal event */
    struct sl_list held_link; /* in ss->held while the session can check delivery */
    char *conversation;       /* ws-chat: the conversation the stream answers in */
    char *question;           /* ws-chat: the user's message, remembered at done */
    struct sl_jcursor cur;
    struct sl_buf text; /* the answer so far, for SL_PROTO_FULL_TEXT renderers */
    bool text_cut;      /* a delta did not fit under TEXT_MAX: text holds no more */
};

/* At most this many dialects share a transport (a Socket.IO namespace serves a set). */
#define MAX_DIALECTS 4

struct sl_session {
    struct sl_sessions *ss;
    const struct sl_proto *proto; /* the dialect of the message being answered */
    const struct sl_proto *protos[MAX_DIALECTS];
    uint8_t nprotos;
    bool offsets; /* every message carries the recovery offset (Socket.IO recovery) */
    bool behind;  /* the client fell behind and was told (the dialect's backpressure event) */
    struct sl_list waiting; /* chats waiting their turn (SL_PROTO_ONE_AT_A_TIME) */
    unsigned nwaiting;
    bool anonymous;       /* the identity is anon:<address> (a namespace without auth) */
    char *const *allowed; /* models (or agents) a request may use; NULL: any */
    size_t nallowed;
    void *t; /* the transport; NULL when detached */
    const struct sl_transport_ops *tops;
    struct sl_timeq_node tnode; /* auth timeout, heartbeat or resume window */
    struct sl_list link;        /* in ss->all */
    struct sl_list subs;        /* struct sub */
    char *user;
    char *tier;                                    /* the identity's limits tier ("" if none) */
    char *claims_sub, *claims_email, *claims_name; /* for dialects that show them */
    struct sl_limits_hold *conn_hold; /* one of the identity's connections (limits.h) */
    char sid[SL_SESSION_ID_LEN + 1];  /* first character: the worker (see sl_session_id) */
    char rid[SL_SESSION_ID_LEN + 1];  /* recovery id: how a later connection names this one */
    struct sl_direntry *rid_entry;    /* rid's entry in the sessions' directory, or NULL */
    unsigned next_idx;
    uint8_t takeover;    /* what a take-over under way answers: TAKEOVER_* */
    uint64_t list_token; /* a take-over's list request to another worker, or 0 */
    bool list_cluster;   /* ... to another node (through the cluster), not the relay */
    void (*recover_done)(void *ud, bool recovered); /* sl_session_recover_remote's answer */
    void *hist_req;  /* ws-chat: a conversation's history asked of Redis (cluster), or NULL */
    char *hist_conv; /* the conversation last looked up there */
    void *recover_ud;
    bool in_cluster;       /* its recovery id is findable from other nodes (detached) */
    char *takeover_offset; /* the recovery offset it applies, or NULL */
    char previous[SL_SESSION_ID_LEN + 1];
    uint8_t state;
    uint8_t kind;
    bool expiry_noticed;
    uint32_t next_id;
    int64_t expires_ms; /* the token's exp (wall clock, ms); 0: none */
    double bucket;      /* rate limit tokens */
    uint64_t bucket_ms;
    uint32_t rejected; /* consecutive rate-limited messages */
    uint64_t conn;     /* the last transport's connection id, for logs once it is gone */
    uint64_t t_start;  /* loop time at creation (ms) */
};

static const struct sl_stream_reader reader;
static const struct sl_rstream_cb rstream_cb;
static const struct sl_cstream_cb cstream_cb;
static int list_session(void *ud, const char *user, const char *sid, struct sl_relay_entry *out,
                        unsigned max);
static void end_session(struct sl_session *s, uint16_t code, const char *reason);
static void free_session(struct sl_session *s);
static void next_waiting(struct sl_session *s);
static bool consume(struct sub *b, struct sl_jcursor *before_end);

/* --- sources: a local stream, or a remote one through the relay ------------------------------ */

static const char *
l_id(const void *src)
{
    return sl_stream_id(src);
}
static bool
l_ended(const void *src)
{
    return sl_stream_ended(src);
}
static struct sl_journal *
l_journal(void *src)
{
    return sl_stream_journal(src);
}
static const char *
l_model(const void *src)
{
    return sl_stream_model(src);
}
static const char *
l_provider(const void *src)
{
    return sl_stream_provider(src);
}
static bool
l_consumed(void *src, struct sl_jcursor *cur)
{
    return sl_stream_consumed(src, cur);
}
static void
l_cancel(void *src)
{
    sl_stream_cancel(src, "client");
}
static void
l_set_live(void *src, bool live)
{
    sl_stream_set_live(src, live);
}
static void
l_release(void *src)
{
    sl_stream_release(src);
}
static void
l_info(const void *src, struct sl_stream_info *out)
{
    sl_stream_info(src, out);
}

static const struct source_ops local_ops = {
    .id = l_id,
    .ended = l_ended,
    .journal = l_journal,
    .model = l_model,
    .provider = l_provider,
    .consumed = l_consumed,
    .cancel = l_cancel,
    .set_live = l_set_live,
    .release = l_release,
    .info = l_info,
};

static const char *
r_id(const void *src)
{
    return sl_rstream_id(src);
}
static bool
r_ended(const void *src)
{
    return sl_rstream_ended(src);
}
static struct sl_journal *
r_journal(void *src)
{
    return sl_rstream_journal(src);
}
static const char *
r_model(const void *src)
{
    return sl_rstream_model(src);
}
static const char *
r_provider(const void *src)
{
    return sl_rstream_provider(src);
}
static bool
r_consumed(void *src, struct sl_jcursor *cur)
{
    return sl_rstream_consumed(src, cur);
}
static void
r_cancel(void *src)
{
    sl_rstream_cancel(src);
}
static void
r_set_live(void *src, bool live)
{
    sl_rstream_set_live(src, live);
}
static void
r_release(void *src)
{
    sl_rstream_release(src);
}
static void
r_info(const void *src, struct sl_stream_info *out)
{
    sl_rstream_info(src, out);
}

static const struct source_ops remote_ops = {
    .id = r_id,
    .ended = r_ended,
    .journal = r_journal,
    .model = r_model,
    .provider = r_provider,
    .consumed = r_consumed,
    .cancel = r_cancel,
    .set_live = r_set_live,
    .release = r_release,
    .info = r_info,
};

static const char *
c_id(const void *src)
{
    return sl_cstream_id(src);
}
static bool
c_ended(const void *src)
{
    return sl_cstream_ended(src);
}
static struct sl_journal *
c_journal(void *src)
{
    return sl_cstream_journal(src);
}
static const char *
c_model(const void *src)
{
    return sl_cstream_model(src);
}
static const char *
c_provider(const void *src)
{
    return sl_cstream_provider(src);
}
static bool
c_consumed(void *src, struct sl_jcursor *cur)
{
    return sl_cstream_consumed(src, cur);
}
static void
c_cancel(void *src)
{
    sl_cstream_cancel(src);
}
static void
c_set_live(void *src, bool live)
{
    sl_cstream_set_live(src, live);
}
static void
c_release(void *src)
{
    sl_cstream_release(src);
}
static void
c_info(const void *src, struct sl_stream_info *out)
{
    sl_cstream_info(src, out);
}

/* A stream of another node, read from Redis (cluster/cluster.h). */
static const struct source_ops cluster_ops = {
    .id = c_id,
    .ended = c_ended,
    .journal = c_journal,
    .model = c_model,
    .provider = c_provider,
    .consumed = c_consumed,
    .cancel = c_cancel,
    .set_live = c_set_live,
    .release = c_release,
    .info = c_info,
};

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
    sl_log_uint(r, "worker", s->ss->worker);
    sl_log_uint(r, "conn", conn_of(s));
    sl_log_str(r, "session", s->sid);
}

static bool
attached(const struct sl_session *s)
{
    return s->t != NULL && s->state != S_CLOSING;
}

static size_t
queued(const struct sl_session *s)
{
    return s->tops->queued(s->t);
}

/* --- output ------------------------------------------------------------------------- */

/*
 * The recovery offset of Socket.IO (connection state recovery): where each of the
 * session's streams stood when this message was sent, "<idx>.<seq>" pairs joined by '_'.
 * Messages reach the client in order, so the last offset a client received says how far
 * it got in every stream; a recovery replays each from there.
 */
/* Writes v in decimal backwards, ending just before `end`; returns where it starts. */
static char *
udec_back(char *end, unsigned v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static const char *
offset_of(struct sl_session *s, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (struct sl_list *l = s->subs.next; l != &s->subs; l = l->next) {
        struct sub *b = SL_CONTAINER_OF(l, struct sub, link);
        if (b->rendered == 0)
            continue;
        /* "[_]<idx>.<rendered>" without snprintf: this runs for every event sent. */
        char tmp[24], *end = tmp + sizeof(tmp);
        char *p = udec_back(end, b->rendered);
        *--p = '.';
        p = udec_back(p, b->idx);
        if (n)
            *--p = '_';
        size_t k = (size_t)(end - p);
        if (k >= cap - n)
            break; /* more streams than an offset holds: those replay from their start */
        memcpy(buf + n, p, k);
        n += k;
        buf[n] = '\0';
    }
    return n ? buf : "0";
}

static void
sink_send(struct sl_proto_sink *sink)
{
    struct sl_session *s = sink->ud;
    char off[OFFSET_MAX];
    if (attached(s))
        s->tops->send(s->t, sink->event, sl_buf_ptr(sink->buf), sl_buf_len(sink->buf),
                      s->offsets ? offset_of(s, off, sizeof(off)) : NULL);
    sl_buf_clear(sink->buf);
    sink->event = NULL;
}

static struct sl_proto_sink
sink_of(struct sl_session *s)
{
    sl_buf_clear(&s->ss->scratch);
    return (struct sl_proto_sink){
        .buf = &s->ss->scratch, .event = NULL, .send = sink_send, .ud = s};
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
    if (!attached(s))
        return;
    s->state = S_CLOSING;
    sl_timeq_disarm(&s->tnode);
    s->tops->close(s->t, code, reason);
}

static void
close_going_away(struct sl_session *s)
{
    char reason[96];
    snprintf(reason, sizeof(reason),
             "{\"reason\":\"server shutting down\",\"retry_after_ms\":%llu,"
             "\"resume\":true}",
             (unsigned long long)s->ss->cfg->shutdown.retry_after_ms);
    end_session(s, SL_CLOSE_GOING_AWAY, reason);
}

/* --- subscriptions: reading the streams' journals ----------------------------------------- */

static struct sub *
sub_of(struct sl_list *l)
{
    return SL_CONTAINER_OF(l, struct sub, link);
}

static struct sub *
find_sub(const struct sl_session *s, const char *id)
{
    for (struct sl_list *l = s->subs.next; l != &s->subs; l = l->next) {
        struct sub *b = sub_of(l);
        if (strcmp(b->ops->id(b->src), id) == 0)
            return b;
    }
    return NULL;
}

/* Streams of this session still running (the per-connection limit counts these). */
static unsigned
running(const struct sl_session *s)
{
    unsigned n = 0;
    for (struct sl_list *l = s->subs.next; l != &s->subs; l = l->next) {
        struct sub *b = sub_of(l);
        n += !b->ops->ended(b->src);
    }
    return n;
}

/* Another sub than `not` reading id (a resume replaces it once the new one exists). */
static struct sub *
find_sub_other(const struct sl_session *s, const char *id, const struct sub * not )
{
    for (struct sl_list *l = s->subs.next; l != &s->subs; l = l->next) {
        struct sub *b = sub_of(l);
        if (b != not &&b->src != NULL && strcmp(b->ops->id(b->src), id) == 0)
            return b;
    }
    return NULL;
}

static struct sub *
sub_new(struct sl_session *s, const struct source_ops *ops, void *src)
{
    struct sub *b = sl_calloc(1, sizeof(*b));
    b->session = s;
    b->ops = ops;
    b->src = src;
    b->proto = s->proto;
    b->idx = ++s->next_idx;
    sl_list_init(&b->held_link);
    sl_list_push_back(&s->subs, &b->link);
    return b;
}

static void
sub_free(struct sub *b)
{
    sl_list_unlink(&b->link);
    sl_list_unlink(&b->held_link);
    sl_buf_free(&b->text);
    free(b->conversation);
    free(b->question);
    free(b);
}

static void
render(struct sl_session *s, struct sub *b, const struct sl_event *ev, uint32_t tokens)
{
    if (b->id == NULL) { /* the id never changes: looked up once */
        b->id = b->ops->id(b->src);
        b->id_len = strlen(b->id);
    }
    struct sl_stream_view v = {
        .id = b->id,
        .id_len = b->id_len,
        .model = b->ops->model(b->src),
        .provider = b->ops->provider(b->src),
        .tokens = tokens,
    };
    b->rendered = ev->seq;
    if (b->proto->flags & SL_PROTO_VIEW_INFO) {
        struct sl_stream_info info;
        b->ops->info(b->src, &info);
        v.agent = info.agent;
        v.input_tokens = info.input_tokens;
        v.cost_usd = ((double)info.input_tokens * info.price_in_per_1m +
                      (double)tokens * info.price_out_per_1m) /
                     1e6;
        v.started_ms = info.started_ms;
        v.now_ms = sl_wall_ms();
    }
    if (b->proto->flags & SL_PROTO_FULL_TEXT) {
        if (ev->type == SL_EV_DELTA && !ev->u.delta.tool && !b->text_cut) {
            /* Past the cap the text stops: a prefix of the answer, never one with a hole. */
            if (sl_buf_len(&b->text) + ev->u.delta.len <= TEXT_MAX)
                sl_buf_append(&b->text, ev->u.delta.text, ev->u.delta.len);
            else
                b->text_cut = true;
        }
        v.text = sl_buf_ptr(&b->text);
        v.text_len = sl_buf_len(&b->text);
    }
    v.conversation = b->conversation;
    if (ev->type == SL_EV_DONE && b->conversation && s->ss->memory) {
        /* Both turns only once the answer is whole: a failed exchange is not remembered. */
        uint64_t now = sl_clock_ms();
        sl_memory_append_user(s->ss->memory, s->user, b->conversation, b->question,
                              b->question ? strlen(b->question) : 0, now);
        sl_memory_append_answer(s->ss->memory, s->user, b->conversation, sl_buf_ptr(&b->text),
                                sl_buf_len(&b->text), now);
        /* Cluster mode: the next message of the conversation may land on another node. */
        sl_cluster_remember(s->ss->cluster, s->user, b->conversation, b->question,
                            b->question ? strlen(b->question) : 0, sl_buf_ptr(&b->text),
                            sl_buf_len(&b->text));
    }
    struct sl_proto_sink sink = sink_of(s);
    b->proto->event(&sink, &v, ev);
    bool terminal =
        ev->type == SL_EV_DONE || ev->type == SL_EV_ERROR || ev->type == SL_EV_CANCELLED;
    if (terminal && s->tops->written && s->ss->cfg->resume.window_ms > 0) {
        /* Kept until the client has it: see release_delivered(). */
        b->holding = true;
        b->end_mark = s->tops->written(s->t);
        sl_list_move_back(&s->ss->held, &b->held_link);
        if (!sl_timeq_armed(&s->ss->held_node))
            sl_loop_arm(s->ss->loop, &s->ss->held_tq, &s->ss->held_node);
    }
}

/*
 * Renders what the cursor has not read yet, merging consecutive text deltas, until the
 * transport holds high water or the journal is exhausted. Returns false if the sub is gone
 * (its stream finished and was freed).
 */
static bool
render_backlog(struct sl_session *s, struct sub *b)
{
    struct sl_journal *j = b->ops->journal(b->src);
    size_t hw = s->ss->cfg->limits.send_high_water;
    struct sl_buf *merge = &s->ss->merge;
    struct sl_jrecord rec;
    struct sl_event merged;
    uint32_t merged_tokens = 0;
    bool have_merged = false;
    struct sl_jcursor before_end = b->cur; /* where the cursor was before a terminal record */

    while (attached(s) && queued(s) < hw) {
        struct sl_jcursor peek = b->cur;
        bool more = sl_journal_next(j, &peek, &rec);
        bool text = more && rec.ev.type == SL_EV_DELTA && rec.ev.u.delta.tool == NULL;
        if (have_merged && (!text || sl_buf_len(merge) + rec.ev.u.delta.len > MERGE_MAX)) {
            merged.u.delta.text = sl_buf_ptr(merge);
            merged.u.delta.len = sl_buf_len(merge);
            render(s, b, &merged, merged_tokens);
            sl_buf_clear(merge);
            have_merged = false;
            continue;
        }
        if (!more)
            break;
        if (rec.ev.type == SL_EV_DONE || rec.ev.type == SL_EV_ERROR ||
            rec.ev.type == SL_EV_CANCELLED)
            before_end = b->cur;
        b->cur = peek;
        if (b->skip_deltas && rec.ev.type == SL_EV_DELTA)
            continue;
        if (text) {
            if (!have_merged) {
                merged = rec.ev;
                have_merged = true;
            }
            merged.seq = rec.ev.seq;
            merged_tokens = rec.tokens;
            sl_buf_append(merge, rec.ev.u.delta.text, rec.ev.u.delta.len);
            continue;
        }
        render(s, b, &rec.ev, rec.tokens);
    }
    if (have_merged) {
        merged.u.delta.text = sl_buf_ptr(merge);
        merged.u.delta.len = sl_buf_len(merge);
        render(s, b, &merged, merged_tokens);
        sl_buf_clear(merge);
    }
    return consume(b, &before_end);
}

/*
 * Acknowledges what the cursor has passed, except a terminal event the session holds until
 * it is delivered (before_end: the cursor just before it). Returns false if the sub is gone.
 */
static bool
consume(struct sub *b, struct sl_jcursor *before_end)
{
    if (!b->holding)
        return b->ops->consumed(b->src, &b->cur);
    uint64_t tail = b->cur.unacked - before_end->unacked;
    if (!b->ops->consumed(b->src, before_end))
        return false;
    b->cur.unacked = tail;
    return true;
}

static bool
has_backlog(struct sub *b)
{
    return !b->pending && b->cur.seq < b->ops->journal(b->src)->last;
}

/* Renders backlogs, a stream at a time in turn, while the transport has room. */
static void
pump(struct sl_session *s)
{
    size_t hw = s->ss->cfg->limits.send_high_water;
    if (attached(s) && queued(s) == 0)
        s->behind = false;
    bool progress = true;
    while (progress && attached(s) && queued(s) < hw) {
        progress = false;
        struct sl_list *l, *next;
        for (l = s->subs.next; l != &s->subs; l = next) {
            next = l->next;
            struct sub *b = sub_of(l);
            if (!has_backlog(b))
                continue;
            /* render_backlog may free b (on_finished): next was taken before. */
            render_backlog(s, b);
            progress = true;
            if (!attached(s) || queued(s) >= hw)
                break;
        }
    }
}

/* The client reads slower than its streams produce: its dialect says so, once per episode. */
static void
fell_behind(struct sl_session *s)
{
    if (s->behind || s->proto->backpressure == NULL)
        return;
    s->behind = true;
    struct sl_proto_sink sink = sink_of(s);
    s->proto->backpressure(&sink, queued(s), true);
}

static bool
lazy_event(const struct sl_event *ev)
{
    if (ev->type == SL_EV_START)
        return true;
    if (ev->type != SL_EV_PROGRESS || ev->u.progress.step == NULL)
        return false;
    return strcmp(ev->u.progress.step, "connecting") == 0 ||
           strcmp(ev->u.progress.step, "queued") == 0;
}

static void
on_stream_event(void *rd, struct sl_stream *st, const struct sl_event *ev, uint32_t tokens)
{
    struct sub *b = rd;
    struct sl_session *s = b->session;
    if (!attached(s) || b->cur.seq + 1 != ev->seq)
        return; /* read later from the journal: on drain, or on resume */
    if (queued(s) >= s->ss->cfg->limits.send_high_water) {
        fell_behind(s);
        return;
    }
    struct sl_journal *j = sl_stream_journal(st);
    if (!(b->skip_deltas && ev->type == SL_EV_DELTA)) {
        /*
         * A stream's start and its way to the provider are news the first token usually
         * follows within milliseconds: they wait briefly to leave in the same write.
         */
        void *t = s->t;
        bool lazy = s->tops->lazy != NULL && lazy_event(ev);
        if (lazy)
            s->tops->lazy(t, true);
        render(s, b, ev, tokens);
        if (lazy && s->t == t)
            s->tops->lazy(t, false);
    }
    if (b->holding) {
        sl_journal_end(j, &b->cur); /* the terminal event: acknowledged once delivered */
        return;
    }
    sl_journal_take_all(j, &b->cur);
}

static void
on_stream_taken(void *rd, struct sl_stream *st)
{
    (void)st;
    struct sub *b = rd;
    struct sl_session *s = b->session;
    sub_free(b);
    if (s->state == S_DETACHED && sl_list_empty(&s->subs))
        free_session(s);
}

static void
on_stream_finished(void *rd, struct sl_stream *st)
{
    (void)st;
    struct sub *b = rd;
    struct sl_session *s = b->session;
    sub_free(b);
    if (s->state == S_DETACHED && sl_list_empty(&s->subs))
        free_session(s);
    else if (s->ss->adm->draining && attached(s) && running(s) == 0)
        close_going_away(s);
    else
        next_waiting(s);
}

static const struct sl_stream_reader reader = {
    .on_event = on_stream_event,
    .on_taken = on_stream_taken,
    .on_finished = on_stream_finished,
};

/*
 * Streams whose end was rendered are let go once the client's TCP has acknowledged it: a
 * connection lost with the tail in flight (a slow link, a reset) leaves the stream to a
 * resume instead of losing the tail. Checked on every drain and every 100 ms while any
 * waits; a detached session's held streams wait for a resume or the window's end.
 */
static void
release_delivered(struct sl_sessions *ss)
{
    struct sl_list *l, *next;
    for (l = ss->held.next; l != &ss->held; l = next) {
        next = l->next;
        struct sub *b = SL_CONTAINER_OF(l, struct sub, held_link);
        struct sl_session *s = b->session;
        if (!attached(s)) {
            sl_list_unlink(&b->held_link); /* held for a resume now */
            continue;
        }
        if (s->tops->acked(s->t) < b->end_mark)
            continue;
        sl_list_unlink(&b->held_link);
        b->holding = false;
        b->ops->consumed(b->src, &b->cur); /* may free b (on_finished) */
    }
    if (!sl_list_empty(&ss->held))
        sl_loop_arm(ss->loop, &ss->held_tq, &ss->held_node);
}

/*
 * On a drain, only the drained session's held streams can have been delivered by it: one
 * read of its acknowledged bytes for all of them. (Scanning every session's, each with its
 * own SIOCOUTQ, on every drain made the end of a burst quadratic: 1,000 streams ending
 * together cost tens of thousands of ioctl calls.)
 */
static void
release_delivered_of(struct sl_session *s)
{
    uint64_t acked = 0;
    bool have = false;
    struct sl_list *l, *next;
    for (l = s->subs.next; l != &s->subs && attached(s); l = next) {
        next = l->next;
        struct sub *b = sub_of(l);
        if (!b->holding || sl_list_empty(&b->held_link))
            continue;
        if (!have) {
            acked = s->tops->acked(s->t);
            have = true;
        }
        if (acked < b->end_mark)
            continue;
        sl_list_unlink(&b->held_link);
        b->holding = false;
        b->ops->consumed(b->src, &b->cur); /* may free b (on_finished): next was taken */
    }
}

static void
on_held_tick(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    release_delivered(SL_CONTAINER_OF(n, struct sl_sessions, held_node));
}

/* --- commands ------------------------------------------------------------------------ */

/*
 * A request naming a provider (seed 004's `provider`) runs on that provider's
 * default_model unless it names a model itself. Returns false (req untouched) if there is
 * no such provider or it has no default model.
 */
static bool
model_of_provider(const struct sl_config *cfg, struct sl_chat_req *req, const char *provider)
{
    if (provider == NULL || req->model != NULL)
        return true;
    const struct sl_config_provider *p = sl_config_find_provider(cfg, provider);
    if (p == NULL || p->default_model == NULL)
        return false;
    req->model = sl_strdup(p->default_model);
    return true;
}

/* A chat waiting for the connection's running one to end (SL_PROTO_ONE_AT_A_TIME). */
struct waiting {
    struct sl_list link;
    const struct sl_proto *proto;
    struct sl_command cmd;
};

/* At most this many chats wait their turn on a connection; beyond, TOO_MANY_STREAMS. */
#define MAX_WAITING 16

static void start_chat(struct sl_session *s, struct sl_command *cmd);

/* The next waiting chat, once nothing of the connection runs. */
static void
next_waiting(struct sl_session *s)
{
    while (!sl_list_empty(&s->waiting) && attached(s) && running(s) == 0 && s->hist_req == NULL) {
        struct waiting *wt = SL_CONTAINER_OF(s->waiting.next, struct waiting, link);
        sl_list_unlink(&wt->link);
        s->nwaiting--;
        const struct sl_proto *saved = s->proto;
        s->proto = wt->proto;
        start_chat(s, &wt->cmd);
        s->proto = saved;
        sl_command_clear(&wt->cmd);
        free(wt);
    }
}

static void
drop_waiting(struct sl_session *s)
{
    while (!sl_list_empty(&s->waiting)) {
        struct waiting *wt = SL_CONTAINER_OF(s->waiting.next, struct waiting, link);
        sl_list_unlink(&wt->link);
        sl_command_clear(&wt->cmd);
        free(wt);
    }
    s->nwaiting = 0;
}

/*
 * ws-chat's conversation: the history goes before the new message, and the stream keeps the
 * conversation id (made up when the client sent null) and the question, for the memory at
 * done. Returns the conversation id (owned by the caller) or NULL.
 */
static char *
with_history(struct sl_session *s, struct sl_command *cmd, struct sl_chat_req *req)
{
    if (!cmd->conversation && !cmd->conversation_null)
        return NULL;
    char made[SL_MEMORY_ID_LEN + 1];
    const char *conv = cmd->conversation;
    if (conv == NULL) {
        sl_memory_new_id(made);
        conv = made;
    }
    if (s->ss->memory) {
        json_t *h = sl_memory_history(s->ss->memory, s->user, conv, sl_clock_ms());
        if (json_array_size(h) > 0 && json_is_array(req->messages)) {
            json_array_extend(h, req->messages);
            json_decref(req->messages);
            req->messages = h;
        } else {
            json_decref(h);
        }
    }
    return sl_strdup(conv);
}

/* The namespace's allow-list (socketio.namespaces.<name>.models), for what req asks. */
static bool
model_allowed(const struct sl_session *s, const struct sl_chat_req *req)
{
    if (s->allowed == NULL || s->nallowed == 0)
        return true;
    const char *want = req->model   ? req->model
                       : req->agent ? req->agent
                                    : s->ss->cfg->default_model;
    for (size_t i = 0; i < s->nallowed; i++)
        if (strcmp(s->allowed[i], want) == 0)
            return true;
    return false;
}

/*
 * Cluster mode: a ws-chat conversation this node has no memory of may have begun on another
 * node. Its history is asked of Redis first, the message waiting meanwhile; returns whether
 * the message was queued for that.
 */
static void on_history(void *ud, json_t *messages);

static bool
history_elsewhere(struct sl_session *s, struct sl_command *cmd)
{
    const char *conv = cmd->conversation;
    if (conv == NULL || s->ss->cluster == NULL || s->ss->memory == NULL ||
        (s->hist_conv && strcmp(s->hist_conv, conv) == 0))
        return false;
    free(s->hist_conv);
    s->hist_conv = sl_strdup(conv);
    json_t *h = sl_memory_history(s->ss->memory, s->user, conv, sl_clock_ms());
    size_t n = json_array_size(h);
    json_decref(h);
    if (n > 0)
        return false;
    s->hist_req = sl_cluster_history(s->ss->cluster, s->user, conv, on_history, s);
    if (s->hist_req == NULL)
        return false;
    struct waiting *wt = sl_calloc(1, sizeof(*wt));
    wt->proto = s->proto;
    wt->cmd = *cmd;
    memset(cmd, 0, sizeof(*cmd));
    sl_list_push_back(s->waiting.next, &wt->link); /* before the others: it came first */
    s->nwaiting++;
    return true;
}

/* Redis's copy of the conversation goes into this node's memory; the message goes on. */
static void
on_history(void *ud, json_t *messages)
{
    struct sl_session *s = ud;
    s->hist_req = NULL;
    uint64_t now = sl_clock_ms();
    for (size_t i = 0; i < json_array_size(messages); i++) {
        json_t *m = json_array_get(messages, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *text = json_string_value(json_object_get(m, "content"));
        size_t len = json_string_length(json_object_get(m, "content"));
        if (strcmp(role, "user") == 0)
            sl_memory_append_user(s->ss->memory, s->user, s->hist_conv, text, len, now);
        else
            sl_memory_append_answer(s->ss->memory, s->user, s->hist_conv, text, len, now);
    }
    next_waiting(s);
}

static void
start_chat(struct sl_session *s, struct sl_command *cmd)
{
    const struct sl_config *cfg = s->ss->cfg;
    if ((s->proto->flags & SL_PROTO_ONE_AT_A_TIME) && (running(s) > 0 || s->hist_req != NULL)) {
        if (s->nwaiting >= MAX_WAITING) {
            send_error(s, cmd->chat->id, SL_ERR_TOO_MANY_STREAMS,
                       "too many messages waiting for the running answer", -1);
            return;
        }
        struct waiting *wt = sl_calloc(1, sizeof(*wt));
        wt->proto = s->proto;
        wt->cmd = *cmd;
        memset(cmd, 0, sizeof(*cmd));
        sl_list_push_back(&s->waiting, &wt->link);
        s->nwaiting++;
        return;
    }
    if (history_elsewhere(s, cmd))
        return;
    struct sl_chat_req *req = cmd->chat;
    cmd->chat = NULL;
    char id[160]; /* a copy: req (and req->id) goes to the stream, or is freed */

    if (req->id != NULL) {
        snprintf(id, sizeof(id), "%s", req->id);
    } else {
        /* Unique for the user, not only the connection: a resume finds streams by (user, id). */
        do
            snprintf(id, sizeof(id), "s%u-%.6s", ++s->next_id, s->sid);
        while (find_sub(s, id) != NULL);
    }
    struct sub *old = find_sub(s, id);
    if (old != NULL && !old->ops->ended(old->src)) {
        send_error(s, id, SL_ERR_DUPLICATE_ID, "a stream with this id is already running", -1);
        sl_chat_req_free(req);
        return;
    }
    if (!model_of_provider(cfg, req, cmd->provider)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "unknown provider \"%.120s\" (or it has no default_model)",
                 cmd->provider);
        send_error(s, id, SL_ERR_UNKNOWN_MODEL, msg, -1);
        sl_chat_req_free(req);
        return;
    }
    if (!model_allowed(s, req)) {
        char msg[200];
        snprintf(msg, sizeof(msg), "model \"%.120s\" is not available here",
                 req->model   ? req->model
                 : req->agent ? req->agent
                              : cfg->default_model);
        send_error(s, id, SL_ERR_UNKNOWN_MODEL, msg, -1);
        sl_chat_req_free(req);
        return;
    }
    if (!s->ss->adm->draining && running(s) >= cfg->limits.max_streams_per_connection) {
        char msg[96];
        snprintf(msg, sizeof(msg), "at most %u streams at once on a connection",
                 cfg->limits.max_streams_per_connection);
        send_error(s, id, SL_ERR_TOO_MANY_STREAMS, msg, -1);
        sl_chat_req_free(req);
        return;
    }
    size_t qlen = 0;
    const char *q = sl_chat_req_last_user_text(req, &qlen);
    char *question = q ? sl_strndup(q, qlen) : NULL;
    char *conversation = with_history(s, cmd, req);
    struct sl_stream_owner owner = {
        .user = s->user, .session = s->sid, .conn = conn_of(s), .tier = s->tier};
    struct sl_refusal why;
    struct sl_stream *st = sl_admission_chat(s->ss->adm, &owner, req, id, &why);
    if (st == NULL) {
        send_error(s, id, why.code, why.message, why.retry_after_ms);
        free(question);
        free(conversation);
        return;
    }
    if (old != NULL) {
        /* The same id again after it ended: the old run's unread tail is of no use now. */
        const struct source_ops *ops = old->ops;
        void *prev = old->src;
        sub_free(old);
        ops->release(prev);
    }
    struct sub *b = sub_new(s, &local_ops, st);
    b->conversation = conversation;
    b->question = question;
    sl_stream_attach(st, &reader, b, true);
    if (s->proto->accepted) {
        struct sl_stream_view v = {.id = id, .id_len = strlen(id), .now_ms = sl_wall_ms()};
        v.model = sl_stream_model(st);
        v.provider = sl_stream_provider(st);
        struct sl_proto_sink sink = sink_of(s);
        s->proto->accepted(&sink, &v);
    }
    sl_stream_start(st); /* may finish it (and free b) at once */
}

static void
cancel_stream(struct sl_session *s, const char *id)
{
    struct sub *b = find_sub(s, id);
    bool found = b != NULL && !b->ops->ended(b->src);
    if (b == NULL && s->ss->cluster != NULL) {
        /*
         * Cluster mode: a cancel reaches the user's stream wherever it runs (another tab):
         * here, or on its owner (another worker or node), whose reader gets `cancelled`.
         * Whether a remote one was still running is not known here.
         */
        struct sl_stream *st = sl_streams_find(s->ss->adm->env.table, s->user, id, NULL);
        bool sent =
            st != NULL ? !sl_stream_ended(st) : sl_cluster_cancel(s->ss->cluster, s->user, id);
        if (sent) {
            if (s->proto->cancel_reply) {
                struct sl_proto_sink sink = sink_of(s);
                s->proto->cancel_reply(&sink, id, true);
            }
            if (st != NULL)
                sl_stream_cancel(st, "client");
            return;
        }
    }
    if (s->proto->cancel_reply) {
        struct sl_proto_sink sink = sink_of(s);
        s->proto->cancel_reply(&sink, id, found);
    } else if (!found) {
        send_error(s, id, SL_ERR_NOT_FOUND, "no running stream with this id", -1);
    }
    if (found) {
        /* Nothing of it after the answer to the cancel: what waits in the journal is dropped. */
        b->skip_deltas = true;
        b->ops->cancel(b->src);
    }
}

/*
 * resume {id, after, epoch}: take a stream of the same user over from wherever it is read
 * now (this session, a session whose client is gone, or another live connection), replay
 * the events after `after` and go on live.
 */
static void
log_resume(struct sl_session *s, const char *id, uint64_t after, int owner)
{
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "stream.resumed")) {
        log_ids(s, &r);
        sl_log_str(&r, "stream", id);
        sl_log_uint(&r, "after", after);
        if (owner >= 0)
            sl_log_uint(&r, "owner", (uint64_t)owner);
        sl_log_end(&r);
    }
}

/* Drops a sub that reads the same id but another run of it (a resume picked a new one). */
static void
drop_other_run(struct sl_session *s, const char *id, const void *keep)
{
    struct sub *b = find_sub(s, id);
    if (b != NULL && b->src != keep) {
        const struct source_ops *ops = b->ops;
        void *src = b->src;
        sub_free(b);
        ops->release(src);
    }
}

/*
 * resume {id, after, epoch}: take a stream of the same user over from wherever it is read
 * now (this session, a session whose client is gone, another live connection, another
 * worker), replay the events after `after` and go on live.
 */
static void
resume_stream(struct sl_session *s, const char *id, uint64_t after, const char *epoch)
{
    struct sl_streams *table = s->ss->adm->env.table;
    if (after > UINT32_MAX) {
        send_error(s, id, SL_ERR_NOT_FOUND, "no event has this seq; start again", -1);
        return;
    }
    struct sl_stream *st = sl_streams_find(table, s->user, id, epoch);
    if (st == NULL) {
        int owner = sl_directory_find(s->ss->dir, s->user, id, epoch);
        if (owner < 0 && s->ss->cluster != NULL) {
            /* Not on this node: another node's, through Redis. */
            struct sub *b = sub_new(s, &cluster_ops, NULL);
            b->pending = true;
            b->src = sl_cluster_resume(s->ss->cluster, s->user, id, epoch, (uint32_t)after, true,
                                       &cstream_cb, b);
            if (b->src != NULL) {
                struct sub *old = find_sub_other(s, id, b);
                if (old != NULL) {
                    const struct source_ops *ops = old->ops;
                    void *src = old->src;
                    sub_free(old);
                    ops->release(src);
                }
                sl_journal_seek(sl_cstream_journal(b->src), (uint32_t)after, &b->cur);
                log_resume(s, id, after, -1);
                return;
            }
            sub_free(b);
        }
        if (owner < 0 || (unsigned)owner == s->ss->worker) {
            send_error(s, id, SL_ERR_NOT_FOUND,
                       "nothing to resume for this id (unknown, expired or another epoch); "
                       "start again",
                       -1);
            return;
        }
        drop_other_run(s, id, NULL);
        struct sub *b = sub_new(s, &remote_ops, NULL);
        b->pending = true;
        b->src = sl_relay_resume(s->ss->relay, (unsigned)owner, s->user, id, epoch, (uint32_t)after,
                                 true, &rstream_cb, b);
        /* The mirror starts after `after`: that is where the cursor stands. */
        sl_journal_seek(sl_rstream_journal(b->src), (uint32_t)after, &b->cur);
        log_resume(s, id, after, owner);
        return;
    }
    struct sl_jcursor cur;
    if (!sl_journal_seek(sl_stream_journal(st), (uint32_t)after, &cur)) {
        send_error(s, id, SL_ERR_NOT_FOUND,
                   "the events after this seq are no longer kept; start again", -1);
        return;
    }
    drop_other_run(s, id, st);
    struct sub *b = find_sub(s, id);
    if (b == NULL)
        b = sub_new(s, &local_ops, st);
    b->cur = cur;
    sl_buf_clear(&b->text);
    sl_stream_attach(st, &reader, b, true);
    sl_counter_add(&s->ss->metrics->resumes_total, 1);
    log_resume(s, id, after, -1);
    pump(s);
}

/* --- the relay's callbacks (a stream of another worker) ------------------------------------ */

static void
rs_ready(void *ud, struct sl_rstream *r)
{
    (void)r;
    struct sub *b = ud;
    b->pending = false;
    sl_counter_add(&b->session->ss->metrics->resumes_total, 1);
}

static void
rs_failed(void *ud, struct sl_rstream *r, const char *why)
{
    struct sub *b = ud;
    struct sl_session *s = b->session;
    char msg[240];
    snprintf(msg, sizeof(msg), "%s; start again", why);
    send_error(s, sl_rstream_id(r), SL_ERR_NOT_FOUND, msg, -1);
    sub_free(b);
    if (s->state == S_DETACHED && sl_list_empty(&s->subs))
        free_session(s);
}

static void
rs_records(void *ud, struct sl_rstream *r)
{
    (void)r;
    struct sub *b = ud;
    pump(b->session);
}

static void
rs_gone(void *ud, struct sl_rstream *r)
{
    (void)r;
    struct sub *b = ud;
    struct sl_session *s = b->session;
    sub_free(b);
    if (s->state == S_DETACHED && sl_list_empty(&s->subs))
        free_session(s);
    else if (s->ss->adm->draining && attached(s) && running(s) == 0)
        close_going_away(s);
    else
        next_waiting(s);
}

static const struct sl_rstream_cb rstream_cb = {
    .on_ready = rs_ready,
    .on_failed = rs_failed,
    .on_records = rs_records,
    .on_taken = rs_gone,
    .on_finished = rs_gone,
};

/* --- the cluster's callbacks (a stream of another node) --------------------------------------- */

static void
cs_ready(void *ud, struct sl_cstream *r)
{
    (void)r;
    struct sub *b = ud;
    b->pending = false;
    sl_counter_add(&b->session->ss->metrics->resumes_total, 1);
}

static void
cs_failed(void *ud, struct sl_cstream *r, const char *why)
{
    struct sub *b = ud;
    struct sl_session *s = b->session;
    char msg[240];
    snprintf(msg, sizeof(msg), "%s; start again", why);
    send_error(s, sl_cstream_id(r), SL_ERR_NOT_FOUND, msg, -1);
    sub_free(b);
    if (s->state == S_DETACHED && sl_list_empty(&s->subs))
        free_session(s);
}

static void
cs_records(void *ud, struct sl_cstream *r)
{
    (void)r;
    struct sub *b = ud;
    pump(b->session);
}

static void
cs_gone(void *ud, struct sl_cstream *r)
{
    (void)r;
    rs_gone(ud, NULL);
}

static const struct sl_cstream_cb cstream_cb = {
    .on_ready = cs_ready,
    .on_failed = cs_failed,
    .on_records = cs_records,
    .on_taken = cs_gone,
    .on_finished = cs_gone,
};

/* --- the sessions' directory: finding a session from a later connection ---------------------- */

static void
register_rid(struct sl_session *s)
{
    if (s->ss->sdir && s->user && s->rid_entry == NULL)
        s->rid_entry = sl_directory_add(s->ss->sdir, s->user, s->rid, s->sid, s->ss->worker);
}

static void
unregister_rid(struct sl_session *s)
{
    if (s->rid_entry) {
        sl_directory_remove_entry(s->ss->sdir, s->rid_entry);
        s->rid_entry = NULL;
    }
}

/* --- authentication and heartbeat ------------------------------------------------------- */

/* The identity's message rate, as its tier has it. */
static unsigned
messages_per_minute(const struct sl_session *s)
{
    struct sl_limits_tier t;
    if (s->ss->adm->limits == NULL)
        return s->ss->cfg->limits.messages_per_minute;
    sl_limits_of(s->ss->adm->limits, s->tier, &t);
    return t.messages_per_minute;
}

/*
 * The identity's connections (limits.max_connections_per_user, across workers): counted
 * until the transport closes, or refused with RATE_LIMITED and close 4029.
 */
static bool
admit_identity(struct sl_session *s, const struct sl_identity *id)
{
    struct sl_limits *l = s->ss->adm->limits;
    struct sl_limits_refusal why;
    if (l == NULL || sl_limits_conn_begin(l, id->user, id->tier, &s->conn_hold, &why) == 0)
        return true;
    sl_counter_add(&s->ss->metrics->rate_limited[why.limit], 1);
    send_error(s, NULL, why.code, why.message, why.retry_after_ms);
    char reason[120];
    snprintf(reason, sizeof(reason),
             "{\"reason\":\"too many connections for this user\",\"retry_after_ms\":%lld}",
             (long long)why.retry_after_ms);
    end_session(s, SL_CLOSE_RATE_LIMITED, reason);
    return false;
}

/* The session becomes the identity's: limits, timers, the directory. false: refused. */
static bool
identify(struct sl_session *s, const struct sl_identity *id)
{
    const struct sl_config *cfg = s->ss->cfg;
    if (!admit_identity(s, id))
        return false;
    s->tier = sl_strdup(id->tier);
    s->user = sl_strdup(id->user);
    s->claims_sub = id->sub[0] ? sl_strdup(id->sub) : NULL;
    s->claims_email = id->email[0] ? sl_strdup(id->email) : NULL;
    s->claims_name = id->name[0] ? sl_strdup(id->name) : NULL;
    register_rid(s);
    s->expires_ms = id->exp_ms;
    s->state = S_READY;
    if (s->tops->set_max_message)
        s->tops->set_max_message(s->t, cfg->limits.max_message_bytes);
    sl_loop_arm(s->ss->loop, &s->ss->hb_idle_tq, &s->tnode);
    return true;
}

/* The dialect's welcome (native `ready`, ws-chat `auth_success`, ai:connected). */
static void
greet(struct sl_session *s)
{
    const struct sl_config *cfg = s->ss->cfg;

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
        .session = s->rid,
        .user = s->user,
        .sub = s->claims_sub,
        .email = s->claims_email,
        .name = s->claims_name,
        .heartbeat_ms = cfg->heartbeat.interval_ms,
        .max_streams = cfg->limits.max_streams_per_connection,
        .max_message_bytes = cfg->limits.max_message_bytes,
        .messages_per_minute = messages_per_minute(s),
        .resume_window_ms = cfg->resume.window_ms,
        .backpressure_bytes = cfg->limits.send_high_water,
        .default_model = cfg->default_model,
        .models = models,
        .nmodels = cfg->nmodels,
        .agents = agents,
        .nagents = cfg->nagents,
    };
    if (s->proto->ready) {
        struct sl_proto_sink sink = sink_of(s);
        s->proto->ready(&sink, &info);
    }
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
become_ready(struct sl_session *s, const struct sl_identity *id)
{
    if (identify(s, id))
        greet(s);
}

static void
auth_failed(struct sl_session *s, const char *reason, int64_t retry_after_ms)
{
    sl_counter_add(&s->ss->metrics->auth_failures_total, 1);
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "auth.failed")) {
        log_ids(s, &r);
        sl_log_str(&r, "reason", reason);
        sl_log_end(&r);
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "authentication failed: %s", reason);
    send_error(s, NULL, SL_ERR_AUTH_FAILED, msg, retry_after_ms);
    end_session(s, SL_CLOSE_AUTH_FAILED, msg);
}

static void
authenticate(struct sl_session *s, const char *token, size_t len)
{
    struct sl_identity id;
    const char *reason = "invalid token";
    struct sockaddr_storage peer;
    bool have_peer = s->tops->peer && s->tops->peer(s->t, &peer) == 0;
    uint64_t wait = 0;
    int rc = sl_auth_verify_throttled(s->ss->auth, s->ss->throttle,
                                      have_peer ? (struct sockaddr *)&peer : NULL, token, len, &id,
                                      &reason, &wait);
    bool ok = rc == 0;
    int64_t retry_after = rc == SL_AUTH_ETHROTTLED ? (int64_t)wait : -1;
    if (s->state == S_READY) {
        /*
         * A fresh token for a session that has one: same user, later expiry. A bad one is
         * refused without ending the session, whose token is still good.
         */
        if (ok && strcmp(id.user, s->user) != 0) {
            ok = false;
            reason = "a fresh token must be for the same user";
        }
        if (!ok) {
            sl_counter_add(&s->ss->metrics->auth_failures_total, 1);
            char msg[160];
            snprintf(msg, sizeof(msg), "authentication failed: %s (the session goes on)", reason);
            send_error(s, NULL, SL_ERR_AUTH_FAILED, msg, retry_after);
            return;
        }
        s->expires_ms = id.exp_ms;
        s->expiry_noticed = false;
        free(s->tier); /* the issuer's latest word on the user's tier */
        s->tier = sl_strdup(id.tier);
        struct sl_logrec r;
        if (sl_log_begin(&r, SL_LOG_INFO, "session.reauthenticated")) {
            log_ids(s, &r);
            sl_log_end(&r);
        }
        if (s->proto->flags & SL_PROTO_GREET_ON_AUTH)
            greet(s);
        return;
    }
    if (!ok) {
        auth_failed(s, reason, retry_after);
        return;
    }
    become_ready(s, &id);
}

/*
 * A session outlives no token: shortly before `exp` the client is told to send a fresh
 * `auth`; at `exp` without one the session ends with 4001 (its streams wait for a resume
 * with a valid token). Checked on activity and on each heartbeat tick, so at most
 * heartbeat.interval late.
 */
static bool
check_expiry(struct sl_session *s)
{
    if (s->expires_ms == 0 || s->state != S_READY)
        return true;
    int64_t now = (int64_t)sl_wall_ms();
    if (now >= s->expires_ms) {
        end_session(s, SL_CLOSE_AUTH_FAILED, "{\"reason\":\"token expired\",\"resume\":true}");
        return false;
    }
    if (!s->expiry_noticed && now >= s->expires_ms - EXPIRY_NOTICE_MS) {
        s->expiry_noticed = true;
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "the token expires in %lld ms: send {\"type\":\"auth\",\"token\":\"...\"} "
                 "with a fresh one",
                 (long long)(s->expires_ms - now));
        send_error(s, NULL, SL_ERR_AUTH_REQUIRED, msg, s->expires_ms - now);
    }
    return true;
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
    if (!check_expiry(s))
        return;
    if (s->tops->ping)
        s->tops->ping(s->t);
    sl_loop_arm(s->ss->loop, &s->ss->hb_wait_tq, &s->tnode);
}

static void
on_heartbeat_lost(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_session *s = from_timer(n);
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "session.heartbeat_lost")) {
        log_ids(s, &r);
        sl_log_uint(&r, "streams", running(s));
        sl_log_end(&r);
    }
    end_session(s, SL_CLOSE_HEARTBEAT_TIMEOUT,
                "{\"reason\":\"heartbeat timeout\",\"resume\":true}");
}

static void
on_window_over(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct sl_session *s = from_timer(n);
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "session.expired")) {
        log_ids(s, &r);
        sl_log_uint(&r, "streams", running(s));
        sl_log_end(&r);
    }
    free_session(s);
}

/* Token bucket of limits.messages_per_minute; true if the message may pass. */
static bool
take_token(struct sl_session *s, int64_t *retry_after_ms)
{
    unsigned per_min = s->ss->cfg->limits.messages_per_minute;
    if (per_min == 0)
        return true;
    uint64_t now = sl_loop_now(s->ss->loop);
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

/*
 * An authenticated client's message takes a token of its identity's bucket, shared by all
 * its connections (limits.h): a reconnect gets no fresh budget. Before authentication,
 * the session's own.
 */
static bool
take_message(struct sl_session *s, int64_t *retry_after_ms)
{
    struct sl_limits_refusal why;
    if (s->ss->adm->limits == NULL || s->user == NULL)
        return take_token(s, retry_after_ms);
    if (sl_limits_message(s->ss->adm->limits, s->user, s->tier, &why) == 0)
        return true;
    *retry_after_ms = why.retry_after_ms;
    return false;
}

/* --- the session set ------------------------------------------------------------------- */

void
sl_sessions_init(struct sl_sessions *ss, const struct sl_sessions_env *env)
{
    memset(ss, 0, sizeof(*ss));
    const struct sl_config *cfg = env->cfg;
    struct sl_loop *loop = env->loop;
    ss->cfg = cfg;
    ss->loop = loop;
    ss->metrics = env->metrics;
    ss->auth = env->auth;
    ss->adm = env->adm;
    ss->dir = env->dir;
    ss->relay = env->relay;
    ss->cluster = env->cluster;
    ss->sdir = env->sdir;
    ss->memory = env->memory;
    ss->throttle = env->throttle;
    ss->worker = env->worker;
    ss->nworkers = env->nworkers ? env->nworkers : 1;
    if (ss->relay)
        sl_relay_set_lister(ss->relay, list_session, ss);
    sl_cluster_set_lister(ss->cluster, list_session, ss);
    sl_list_init(&ss->all);
    uint64_t wait = cfg->heartbeat.timeout_ms > cfg->heartbeat.interval_ms
                        ? cfg->heartbeat.timeout_ms - cfg->heartbeat.interval_ms
                        : 1;
    sl_timeq_init(&ss->auth_tq, cfg->limits.auth_timeout_ms, on_auth_timeout);
    sl_timeq_init(&ss->hb_idle_tq, cfg->heartbeat.interval_ms, on_heartbeat_idle);
    sl_timeq_init(&ss->hb_wait_tq, wait, on_heartbeat_lost);
    sl_timeq_init(&ss->window_tq, cfg->resume.window_ms, on_window_over);
    sl_loop_add_timeq(loop, &ss->auth_tq);
    sl_loop_add_timeq(loop, &ss->hb_idle_tq);
    sl_loop_add_timeq(loop, &ss->hb_wait_tq);
    sl_loop_add_timeq(loop, &ss->window_tq);
    sl_list_init(&ss->held);
    sl_timeq_node_init(&ss->held_node);
    sl_timeq_init(&ss->held_tq, 100, on_held_tick);
    sl_loop_add_timeq(loop, &ss->held_tq);
}

void
sl_sessions_cleanup(struct sl_sessions *ss)
{
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &ss->all)
    {
        struct sl_session *s = SL_CONTAINER_OF(pos, struct sl_session, link);
        sl_assert(s->t == NULL);
        free_session(s);
    }
    sl_timeq_disarm(&ss->held_node);
    sl_buf_free(&ss->scratch);
    sl_buf_free(&ss->merge);
}

void
sl_sessions_drain(struct sl_sessions *ss)
{
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &ss->all)
    {
        struct sl_session *s = SL_CONTAINER_OF(pos, struct sl_session, link);
        if (attached(s) && running(s) == 0)
            close_going_away(s);
    }
}

void
sl_sessions_shutdown(struct sl_sessions *ss)
{
    ss->stopping = true;
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &ss->all)
    {
        struct sl_session *s = SL_CONTAINER_OF(pos, struct sl_session, link);
        if (s->state == S_DETACHED)
            free_session(s);
        else
            close_going_away(s);
    }
}

/* --- the public face ------------------------------------------------------------------- */

struct sl_session *
sl_session_new(struct sl_sessions *ss, const struct sl_proto *const *protos, unsigned nprotos,
               enum sl_proto_kind kind, void *transport, const struct sl_transport_ops *ops)
{
    struct sl_session *s = sl_calloc(1, sizeof(*s));
    s->ss = ss;
    sl_assert(nprotos >= 1 && nprotos <= MAX_DIALECTS);
    for (unsigned i = 0; i < nprotos; i++)
        s->protos[i] = protos[i];
    s->nprotos = (uint8_t)nprotos;
    s->proto = protos[0];
    s->kind = (uint8_t)kind;
    s->t = transport;
    s->tops = ops;
    s->state = S_AUTH_WAIT;
    sl_timeq_node_init(&s->tnode);
    sl_list_init(&s->subs);
    sl_list_init(&s->waiting);
    /* The first character names the worker: a recovery on another worker finds it. */
    sl_random_id(s->sid, SL_SESSION_ID_LEN);
    s->sid[0] = "0123456789abcdefghijklmnopqrstuvwxyz"[ss->worker % 36];
    memcpy(s->rid, s->sid, sizeof(s->rid));
    s->bucket = ss->cfg->limits.messages_per_minute;
    s->bucket_ms = sl_loop_now(ss->loop);
    s->t_start = s->bucket_ms;
    s->conn = ops->conn_id ? ops->conn_id(transport) : 0;
    sl_list_push_back(&ss->all, &s->link);
    ss->count++;
    if (kind < SL_PK__COUNT) /* Socket.IO counts its connections itself */
        sl_counter_add(&ss->metrics->conn_opened[kind], 1);
    if (ops->set_max_message)
        ops->set_max_message(transport, PREAUTH_MAX_MESSAGE);
    return s;
}

void
sl_session_begin(struct sl_session *s, const char *token)
{
    if (s->ss->adm->draining) {
        close_going_away(s);
        return;
    }
    if (token != NULL) {
        authenticate(s, token, strlen(token));
        return;
    }
    sl_loop_arm(s->ss->loop, &s->ss->auth_tq, &s->tnode);
}

bool
sl_session_identify(struct sl_session *s, const struct sl_identity *id, bool anonymous)
{
    if (s->ss->adm->draining) {
        close_going_away(s);
        return false;
    }
    s->anonymous = anonymous;
    return identify(s, id);
}

void
sl_session_greet(struct sl_session *s)
{
    greet(s);
}

bool
sl_session_can_take_over(const struct sl_session *s, const char *previous)
{
    return s->user && previous && s->ss->sdir &&
           sl_directory_find(s->ss->sdir, s->user, previous, NULL) >= 0;
}

void
sl_session_allow_models(struct sl_session *s, char *const *models, size_t n)
{
    s->allowed = models;
    s->nallowed = n;
}

void
sl_session_enable_offsets(struct sl_session *s)
{
    s->offsets = true;
}

const char *
sl_session_id(const struct sl_session *s)
{
    return s->sid;
}

const char *
sl_session_user(const struct sl_session *s)
{
    return s->user;
}

const char *
sl_session_rid(const struct sl_session *s)
{
    return s->rid;
}

/* The position of stream idx in a recovery offset ("<idx>.<seq>_..."): 0 if absent. */
static uint32_t
offset_seq(const char *offset, unsigned idx)
{
    const char *p = offset;
    while (p && *p) {
        char *end;
        unsigned long i = strtoul(p, &end, 10);
        if (*end != '.')
            return 0;
        unsigned long seq = strtoul(end + 1, &end, 10);
        if (i == idx)
            return seq > UINT32_MAX ? 0 : (uint32_t)seq;
        p = *end == '_' ? end + 1 : NULL;
    }
    return 0;
}

/* The end of a take-over: the dialect's answer for a reconnect. */
static void
took_over(struct sl_session *s, bool ok)
{
    uint8_t kind = s->takeover;
    s->takeover = TAKEOVER_NONE;
    if (ok && kind == TAKEOVER_RECOVERY) {
        /* The client keeps its recovery id: this session answers to it from now on. */
        unregister_rid(s);
        drop_waiting(s);
        memcpy(s->rid, s->previous, sizeof(s->rid));
        register_rid(s);
    }
    free(s->takeover_offset);
    s->takeover_offset = NULL;
    if (kind == TAKEOVER_RECOVERY && attached(s))
        greet(s); /* now that it answers to the id the client keeps (sio_session.c) */
    if (kind == TAKEOVER_RECONNECT && attached(s)) {
        struct sl_proto_sink sink = sink_of(s);
        if (ok && s->proto->reconnected)
            s->proto->reconnected(&sink, s->previous, s->rid);
        else if (!ok)
            send_error(s, NULL, SL_ERR_NOT_FOUND,
                       "nothing to reconnect to: no such client, another user's, or its streams "
                       "are gone",
                       -1);
    }
    struct sl_logrec r;
    if (kind != TAKEOVER_NONE && sl_log_begin(&r, SL_LOG_INFO, "session.took_over")) {
        log_ids(s, &r);
        sl_log_str(&r, "previous", s->previous);
        sl_log_bool(&r, "ok", ok);
        sl_log_end(&r);
    }
    pump(s);
}

static struct sl_session *
find_session(struct sl_sessions *ss, const char *sid)
{
    for (struct sl_list *l = ss->all.next; l != &ss->all; l = l->next) {
        struct sl_session *p = SL_CONTAINER_OF(l, struct sl_session, link);
        if (strcmp(p->rid, sid) == 0)
            return p;
    }
    return NULL;
}

/* Moves every stream of p (same worker) to s, from the offset's positions. */
static bool
take_local(struct sl_session *s, struct sl_session *p, const char *offset)
{
    bool any = false;
    while (!sl_list_empty(&p->subs)) {
        struct sub *b = sub_of(p->subs.next);
        uint32_t after = offset ? offset_seq(offset, b->idx) : b->rendered;
        sl_list_unlink(&b->link);
        b->session = s;
        b->idx = ++s->next_idx;
        sl_list_push_back(&s->subs, &b->link);
        if (b->ops == &local_ops) {
            struct sl_jcursor cur;
            if (sl_journal_seek(sl_stream_journal(b->src), after, &cur)) {
                b->cur = cur;
                b->rendered = after;
            }
        }
        b->ops->set_live(b->src, true);
        any = true;
    }
    if (p->state == S_DETACHED)
        free_session(p);
    return any;
}

static void
on_listed(void *ud, const struct sl_relay_entry *e, int n)
{
    struct sl_session *s = ud;
    s->list_token = 0;
    s->list_cluster = false;
    /*
     * Each stream is resumed from its owner, which need not be the listing worker (a
     * session that was itself recovered there reads its streams through the relay) nor
     * another worker than this one.
     */
    for (int i = 0; i < n; i++) {
        uint32_t after = s->takeover_offset ? offset_seq(s->takeover_offset, e[i].idx) : e[i].after;
        resume_stream(s, e[i].id, after, e[i].epoch[0] ? e[i].epoch : NULL);
    }
    took_over(s, n >= 0);
}

int
sl_session_take_over(struct sl_session *s, const char *previous, const char *offset)
{
    if (s->user == NULL || previous == NULL || strlen(previous) > SL_SESSION_ID_LEN ||
        strcmp(previous, s->rid) == 0 || s->takeover != TAKEOVER_NONE)
        return -1;
    int owner = s->ss->sdir ? sl_directory_find(s->ss->sdir, s->user, previous, NULL) : -1;
    if (owner < 0 && s->ss->cluster != NULL && offset == NULL) {
        /* Not on this node: perhaps on another (a reconnect; the answer comes later). */
        s->list_token = sl_cluster_list(s->ss->cluster, s->user, previous, on_listed, s);
        if (s->list_token == 0)
            return -1;
        s->list_cluster = true;
        snprintf(s->previous, sizeof(s->previous), "%s", previous);
        s->takeover = TAKEOVER_RECONNECT;
        s->takeover_offset = NULL;
        return 0;
    }
    if (owner < 0)
        return -1;
    snprintf(s->previous, sizeof(s->previous), "%s", previous);
    s->takeover = offset ? TAKEOVER_RECOVERY : TAKEOVER_RECONNECT;
    s->takeover_offset = offset ? sl_strdup(offset) : NULL;
    if ((unsigned)owner == s->ss->worker) {
        struct sl_session *p = find_session(s->ss, previous);
        if (p == NULL || p->user == NULL || strcmp(p->user, s->user) != 0) {
            s->takeover = TAKEOVER_NONE;
            free(s->takeover_offset);
            s->takeover_offset = NULL;
            return -1;
        }
        take_local(s, p, offset);
        took_over(s, true);
        return 0;
    }
    s->list_token = sl_relay_list(s->ss->relay, (unsigned)owner, s->user, previous, on_listed, s);
    return 0;
}

/* The answer of another node for sl_session_recover_remote. */
static void
on_recover_listed(void *ud, const struct sl_relay_entry *e, int n)
{
    struct sl_session *s = ud;
    s->list_token = 0;
    s->list_cluster = false;
    void (*done)(void *, bool) = s->recover_done;
    void *dud = s->recover_ud;
    s->recover_done = NULL;
    if (done == NULL || s->t == NULL) {
        /* The client left meanwhile. */
        s->takeover = TAKEOVER_NONE;
        free(s->takeover_offset);
        s->takeover_offset = NULL;
        return;
    }
    done(dud, n >= 0); /* the CONNECT is answered: events may go out from now on */
    for (int i = 0; i < n; i++)
        resume_stream(s, e[i].id, offset_seq(s->takeover_offset, e[i].idx),
                      e[i].epoch[0] ? e[i].epoch : NULL);
    took_over(s, n >= 0);
}

int
sl_session_recover_remote(struct sl_session *s, const char *previous, const char *offset,
                          void (*done)(void *ud, bool recovered), void *ud)
{
    if (s->ss->cluster == NULL || s->user == NULL || previous == NULL ||
        strlen(previous) > SL_SESSION_ID_LEN || strcmp(previous, s->rid) == 0 ||
        s->takeover != TAKEOVER_NONE)
        return -1;
    s->list_token = sl_cluster_list(s->ss->cluster, s->user, previous, on_recover_listed, s);
    if (s->list_token == 0)
        return -1;
    s->list_cluster = true;
    s->recover_done = done;
    s->recover_ud = ud;
    snprintf(s->previous, sizeof(s->previous), "%s", previous);
    s->takeover = TAKEOVER_RECOVERY;
    s->takeover_offset = sl_strdup(offset ? offset : "0");
    return 0;
}

/* The relay's question on this worker: the streams of session sid, for a take-over. */
static int
list_session(void *ud, const char *user, const char *sid, struct sl_relay_entry *out, unsigned max)
{
    struct sl_session *p = find_session(ud, sid);
    if (p == NULL || p->user == NULL || strcmp(p->user, user) != 0)
        return -1;
    unsigned n = 0;
    for (struct sl_list *l = p->subs.next; l != &p->subs && n < max; l = l->next) {
        struct sub *b = sub_of(l);
        const char *epoch = b->ops == &local_ops     ? sl_stream_epoch(b->src)
                            : b->ops == &cluster_ops ? sl_cstream_epoch(b->src)
                                                     : sl_rstream_epoch(b->src);
        memset(&out[n], 0, sizeof(out[n]));
        snprintf(out[n].id, sizeof(out[n].id), "%s", b->ops->id(b->src));
        snprintf(out[n].epoch, sizeof(out[n].epoch), "%s", epoch ? epoch : "");
        out[n].after = b->rendered;
        out[n].idx = b->idx;
        n++;
    }
    return (int)n;
}

void
sl_session_on_activity(struct sl_session *s)
{
    if (s->state == S_READY && check_expiry(s))
        sl_loop_arm(s->ss->loop, &s->ss->hb_idle_tq, &s->tnode);
}

void
sl_session_on_violation(struct sl_session *s, uint16_t code, const char *reason)
{
    if (code == SL_CLOSE_TOO_BIG) {
        char msg[96];
        snprintf(msg, sizeof(msg), "message larger than %llu bytes",
                 (unsigned long long)(s->state == S_READY ? s->ss->cfg->limits.max_message_bytes
                                                          : PREAUTH_MAX_MESSAGE));
        send_error(s, NULL, SL_ERR_TOO_LARGE, msg, -1);
    } else {
        send_error(s, NULL, SL_ERR_BAD_REQUEST, reason, -1);
    }
}

void
sl_session_on_drain(struct sl_session *s)
{
    if (!sl_list_empty(&s->ss->held))
        release_delivered_of(s);
    pump(s);
}

void
sl_session_on_message(struct sl_session *s, const char *event, const char *msg, size_t len)
{
    struct sl_command cmd = {0};
    struct sl_proto_error err = {0};
    const struct sl_proto_limits lim = {
        .max_id_len = 128, .max_messages = 4096, .max_tokens_cap = 1000000};

    if (!attached(s))
        return;
    /* The first dialect that knows the event parses it, and answers it. */
    int rc = SL_PROTO_NOT_MINE;
    for (unsigned i = 0; i < s->nprotos && rc == SL_PROTO_NOT_MINE; i++) {
        s->proto = s->protos[i];
        rc = s->proto->parse(&lim, event, msg, len, &cmd, &err);
    }
    if (rc == SL_PROTO_NOT_MINE) {
        s->proto = s->protos[0];
        sl_proto_error_clear(&err);
        snprintf(err.message, sizeof(err.message), "unknown event \"%.60s\"", event ? event : "");
        err.code = SL_ERR_BAD_REQUEST;
        rc = -1;
    }

    if (s->state == S_AUTH_WAIT) {
        int64_t wait;
        /* An unauthenticated client gets no more patience than an authenticated one. */
        if (!take_token(s, &wait)) {
            sl_counter_add(&s->ss->metrics->rate_limited[SL_LIMIT_MESSAGES], 1);
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
        struct sl_pong_info pi = {.streams = running(s), .queued = queued(s)};
        if (s->proto->pong)
            s->proto->pong(&sink, &pi);
        goto out;
    }
    int64_t retry_after;
    if (!take_message(s, &retry_after)) {
        sl_counter_add(&s->ss->metrics->rate_limited[SL_LIMIT_MESSAGES], 1);
        send_error(s, rc == 0 ? (cmd.chat ? cmd.chat->id : cmd.id) : err.id, SL_ERR_RATE_LIMITED,
                   "too many messages; slow down", retry_after);
        if (++s->rejected > s->ss->cfg->limits.messages_per_minute)
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
        authenticate(s, cmd.token, strlen(cmd.token));
        break;
    case SL_CMD_CHAT:
        start_chat(s, &cmd);
        break;
    case SL_CMD_CANCEL:
        cancel_stream(s, cmd.id);
        break;
    case SL_CMD_RESUME:
        resume_stream(s, cmd.id, cmd.after, cmd.epoch);
        break;
    case SL_CMD_PING:
        break;
    case SL_CMD_RECONNECT:
        if (sl_session_take_over(s, cmd.previous, NULL) != 0)
            send_error(s, NULL, SL_ERR_NOT_FOUND,
                       "nothing to reconnect to: no such client, another user's, or its "
                       "streams are gone",
                       -1);
        break;
    }
out:
    sl_command_clear(&cmd);
    sl_proto_error_clear(&err);
}

static void
log_closed(struct sl_session *s, const char *what, uint16_t code)
{
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, what)) {
        log_ids(s, &r);
        if (s->user)
            sl_log_str(&r, "user", s->user);
        if (code)
            sl_log_uint(&r, "code", code);
        sl_log_uint(&r, "streams", running(s));
        sl_log_uint(&r, "duration_ms", sl_loop_now(s->ss->loop) - s->t_start);
        sl_log_end(&r);
    }
}

/* Frees a session; its streams are released (a running provider call is aborted). */
static void
free_session(struct sl_session *s)
{
    struct sl_sessions *ss = s->ss;
    sl_timeq_disarm(&s->tnode);
    while (!sl_list_empty(&s->subs)) {
        struct sub *b = sub_of(s->subs.next);
        const struct source_ops *ops = b->ops;
        void *src = b->src;
        sub_free(b);
        ops->release(src);
    }
    if (s->state == S_DETACHED)
        ss->detached--;
    if (s->list_token && s->list_cluster)
        sl_cluster_cancel_list(ss->cluster, s->list_token);
    else if (s->list_token)
        sl_relay_cancel_list(ss->relay, s->list_token);
    drop_waiting(s); /* messages of a client that left while they waited their turn */
    if (s->in_cluster)
        sl_cluster_session_gone(ss->cluster, s->user, s->rid);
    sl_cluster_history_cancel(s->hist_req);
    free(s->hist_conv);
    unregister_rid(s);
    free(s->takeover_offset);
    sl_list_unlink(&s->link);
    ss->count--;
    free(s->user);
    free(s->tier);
    free(s->claims_sub);
    free(s->claims_email);
    free(s->claims_name);
    free(s);
}

void
sl_session_transport_closed(struct sl_session *s, uint16_t code)
{
    struct sl_sessions *ss = s->ss;
    s->conn = conn_of(s);
    s->t = NULL;
    s->recover_done = NULL; /* the transport that waited for it is gone */
    sl_timeq_disarm(&s->tnode);
    sl_limits_conn_end(s->conn_hold); /* a detached session is no connection */
    s->conn_hold = NULL;
    if (s->kind < SL_PK__COUNT)
        sl_counter_add(&ss->metrics->conn_closed[s->kind], 1);
    bool keep = s->user != NULL && !sl_list_empty(&s->subs) && ss->cfg->resume.window_ms > 0 &&
                !ss->stopping;
    if (!keep) {
        log_closed(s, "session.closed", code);
        free_session(s);
        return;
    }
    /* Disconnect is a pause: the streams go on into their journals until a resume. */
    log_closed(s, "session.detached", code);
    s->state = S_DETACHED;
    if (ss->cluster) {
        /* A reconnect on another node (ai:reconnect) finds it through Redis. */
        sl_cluster_session_detached(ss->cluster, s->user, s->rid);
        s->in_cluster = true;
    }
    ss->detached++;
    sl_loop_arm(ss->loop, &ss->window_tq, &s->tnode);
    for (struct sl_list *l = s->subs.next; l != &s->subs; l = l->next) {
        struct sub *b = sub_of(l);
        b->ops->set_live(b->src, false);
    }
}
