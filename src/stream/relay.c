#include "stream/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "net/loop.h"
#include "stream/stream.h"

/* Bytes of records in flight (sent, not yet acknowledged) per relayed stream. */
#define RELAY_WINDOW (256 * 1024)

enum frame {
    /* resuming side -> owner */
    M_RESUME, /* u32 after, u8 live, str user, str id, str epoch ("" = none) */
    M_ACK,    /* u32 seq */
    M_CANCEL,
    M_LIVE, /* u8 live */
    M_RELEASE,
    M_LIST, /* str user, str sid */
    /* owner -> resuming side */
    M_READY,   /* str epoch, str model, str provider, str agent, u64 input, f64 x2, u64 started */
    M_LISTED,  /* i32 n, n x struct sl_relay_entry */
    M_FAIL,    /* str why */
    M_RECORDS, /* journal records */
    M_TAKEN,
};

/* A token names one relayed reading on both sides: the resuming worker's counter. */
struct tnode {
    uint64_t token;
    struct tnode *next;
};

struct ttable {
    struct tnode **b;
    size_t n, count;
};

/* On the owner: the reader that feeds a stream to another worker. */
struct rreader {
    struct tnode node; /* first: the table's node */
    struct sl_relay *rl;
    unsigned peer;
    struct sl_stream *s;
    struct sl_jcursor send; /* the next record to send */
    struct sl_jcursor ack;  /* what the peer has acknowledged */
    uint64_t inflight;      /* bytes sent, not yet acknowledged */
    bool dirty;
    struct sl_list dirty_link;
};

struct sl_rstream {
    struct tnode node;
    struct sl_relay *rl;
    unsigned owner;
    const struct sl_rstream_cb *cb;
    void *ud;
    struct sl_journal mirror;
    char *id;
    char epoch[32]; /* the run, once ready ("" before) */
    char *model, *provider, *agent;
    struct sl_stream_info info;
    bool ready, ended;
};

/* A LIST request waiting for its answer. */
struct lister {
    struct tnode node;
    sl_relay_listed_cb cb;
    void *ud;
};

#define MAX_LISTED 64

struct sl_relay {
    unsigned worker;
    struct sl_loop *loop;
    struct sl_streams *streams;
    struct sl_relay **peers;
    unsigned npeers;
    struct sl_buf *out; /* frames per peer, sent at the end of the turn */
    struct ttable readers, rstreams, lists;
    struct sl_list dirty;
    sl_relay_lister lister;
    void *lister_ud;
    uint64_t next_token;
    bool stopping;
};

/* A batch of frames from one worker to another. */
struct batch {
    struct sl_relay *to;
    unsigned from;
    size_t len;
    char data[];
};

static const struct sl_stream_reader relay_reader;

/* --- token tables ------------------------------------------------------------------------- */

static size_t
slot(const struct ttable *t, uint64_t token)
{
    return (size_t)((token * 0x9E3779B97F4A7C15ull) >> 32) & (t->n - 1);
}

static void
tt_init(struct ttable *t)
{
    t->n = 16;
    t->count = 0;
    t->b = sl_calloc(t->n, sizeof(*t->b));
}

static void
tt_put(struct ttable *t, struct tnode *x)
{
    if (t->count + 1 > t->n) {
        size_t n = t->n * 2;
        struct tnode **nb = sl_calloc(n, sizeof(*nb));
        struct ttable nt = {.b = nb, .n = n};
        for (size_t i = 0; i < t->n; i++) {
            for (struct tnode *e = t->b[i], *next; e; e = next) {
                next = e->next;
                size_t k = slot(&nt, e->token);
                e->next = nb[k];
                nb[k] = e;
            }
        }
        free(t->b);
        t->b = nb;
        t->n = n;
    }
    size_t k = slot(t, x->token);
    x->next = t->b[k];
    t->b[k] = x;
    t->count++;
}

static struct tnode *
tt_get(const struct ttable *t, uint64_t token)
{
    for (struct tnode *e = t->b[slot(t, token)]; e; e = e->next)
        if (e->token == token)
            return e;
    return NULL;
}

static void
tt_del(struct ttable *t, struct tnode *x)
{
    struct tnode **pp = &t->b[slot(t, x->token)];
    while (*pp && *pp != x)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = x->next;
        t->count--;
    }
}

/* --- frames ----------------------------------------------------------------------------- */

/* Frame: u8 type, u64 token, u32 payload length, payload. */
static void
frame_begin(struct sl_relay *rl, unsigned peer, enum frame type, uint64_t token, size_t len)
{
    struct sl_buf *b = &rl->out[peer];
    uint8_t t = (uint8_t)type;
    uint32_t l = (uint32_t)len;
    sl_buf_append(b, &t, 1);
    sl_buf_append(b, &token, 8);
    sl_buf_append(b, &l, 4);
}

static void
put_str(struct sl_buf *b, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) : 0;
    sl_buf_append(b, &n, 4);
    sl_buf_append(b, s ? s : "", n);
}

static void
send_simple(struct sl_relay *rl, unsigned peer, enum frame type, uint64_t token, const void *p,
            size_t n)
{
    if (rl->stopping)
        return;
    frame_begin(rl, peer, type, token, n);
    sl_buf_append(&rl->out[peer], p, n);
}

/* A reader of received bytes; a malformed frame (never: only relays write them) is dropped. */
struct rd {
    const char *p, *end;
};

static bool
get(struct rd *r, void *out, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    memcpy(out, r->p, n);
    r->p += n;
    return true;
}

/* A NUL-terminated copy into buf (at most cap - 1 bytes kept). */
static bool
get_str(struct rd *r, char *buf, size_t cap)
{
    uint32_t n;
    if (!get(r, &n, 4) || (size_t)(r->end - r->p) < n)
        return false;
    size_t k = n < cap - 1 ? n : cap - 1;
    memcpy(buf, r->p, k);
    buf[k] = '\0';
    r->p += n;
    return true;
}

/* --- the owner's side ------------------------------------------------------------------- */

static void
reader_free(struct rreader *rr)
{
    tt_del(&rr->rl->readers, &rr->node);
    sl_list_unlink(&rr->dirty_link);
    free(rr);
}

static void
mark_dirty(struct rreader *rr)
{
    if (!rr->dirty) {
        rr->dirty = true;
        sl_list_push_back(&rr->rl->dirty, &rr->dirty_link);
    }
}

/* Copies the records the window allows into the peer's frames. */
static void
send_records(struct rreader *rr)
{
    struct sl_relay *rl = rr->rl;
    struct sl_journal *j = sl_stream_journal(rr->s);
    struct sl_buf *b = &rl->out[rr->peer];
    size_t at = 0;
    uint32_t len = 0;
    const void *rec;
    size_t size;
    while (rr->inflight < RELAY_WINDOW && sl_journal_next_raw(j, &rr->send, &rec, &size)) {
        if (len == 0) {
            frame_begin(rl, rr->peer, M_RECORDS, rr->node.token, 0);
            at = sl_buf_len(b) - 4; /* the length field, patched below */
        }
        sl_buf_append(b, rec, size);
        len += (uint32_t)size;
        rr->inflight += size;
    }
    if (len)
        memcpy((char *)sl_buf_ptr(b) + at, &len, 4);
    /* What was read only to be sent is not consumed: that is the peer's to say. */
    rr->send.unacked = 0;
}

static void
reader_on_event(void *rd, struct sl_stream *s, const struct sl_event *ev, uint32_t tokens)
{
    (void)s;
    (void)ev;
    (void)tokens;
    mark_dirty(rd);
}

static void
reader_on_taken(void *rd, struct sl_stream *s)
{
    (void)s;
    struct rreader *rr = rd;
    send_simple(rr->rl, rr->peer, M_TAKEN, rr->node.token, NULL, 0);
    reader_free(rr);
}

static void
reader_on_finished(void *rd, struct sl_stream *s)
{
    (void)s;
    reader_free(rd);
}

static const struct sl_stream_reader relay_reader = {
    .on_event = reader_on_event,
    .on_taken = reader_on_taken,
    .on_finished = reader_on_finished,
};

static void
fail(struct sl_relay *rl, unsigned peer, uint64_t token, const char *why)
{
    struct sl_buf tmp = SL_BUF_INIT;
    put_str(&tmp, why);
    send_simple(rl, peer, M_FAIL, token, sl_buf_ptr(&tmp), sl_buf_len(&tmp));
    sl_buf_free(&tmp);
}

static void
on_resume(struct sl_relay *rl, unsigned peer, uint64_t token, struct rd *r)
{
    uint32_t after;
    uint8_t live;
    char user[256], id[160], epoch[32];
    if (!get(r, &after, 4) || !get(r, &live, 1) || !get_str(r, user, sizeof(user)) ||
        !get_str(r, id, sizeof(id)) || !get_str(r, epoch, sizeof(epoch)))
        return;
    struct sl_stream *s = sl_streams_find(rl->streams, user, id, epoch[0] ? epoch : NULL);
    if (s == NULL) {
        fail(rl, peer, token, "nothing to resume for this id (unknown, expired or another epoch)");
        return;
    }
    struct sl_jcursor cur;
    if (!sl_journal_seek(sl_stream_journal(s), after, &cur)) {
        fail(rl, peer, token, "the events after this seq are no longer kept");
        return;
    }
    struct rreader *rr = sl_calloc(1, sizeof(*rr));
    rr->node.token = token;
    rr->rl = rl;
    rr->peer = peer;
    rr->s = s;
    rr->send = rr->ack = cur;
    sl_list_init(&rr->dirty_link);
    tt_put(&rl->readers, &rr->node);

    struct sl_buf tmp = SL_BUF_INIT;
    struct sl_stream_info info;
    sl_stream_info(s, &info);
    put_str(&tmp, sl_stream_epoch(s));
    put_str(&tmp, sl_stream_model(s));
    put_str(&tmp, sl_stream_provider(s));
    put_str(&tmp, info.agent);
    sl_buf_append(&tmp, &info.input_tokens, 8);
    sl_buf_append(&tmp, &info.price_in_per_1m, 8);
    sl_buf_append(&tmp, &info.price_out_per_1m, 8);
    sl_buf_append(&tmp, &info.started_ms, 8);
    send_simple(rl, peer, M_READY, token, sl_buf_ptr(&tmp), sl_buf_len(&tmp));
    sl_buf_free(&tmp);
    /* The previous reader (a session here, or another relay) is told it lost the stream. */
    sl_stream_attach(s, &relay_reader, rr, live != 0);
    mark_dirty(rr);
}

static void
on_list(struct sl_relay *rl, unsigned peer, uint64_t token, struct rd *r)
{
    char user[256], sid[64];
    if (!get_str(r, user, sizeof(user)) || !get_str(r, sid, sizeof(sid)))
        return;
    struct sl_relay_entry e[MAX_LISTED];
    int32_t n = rl->lister ? (int32_t)rl->lister(rl->lister_ud, user, sid, e, MAX_LISTED) : -1;
    size_t k = n > 0 ? (size_t)n : 0;
    if (rl->stopping)
        return;
    frame_begin(rl, peer, M_LISTED, token, 4 + k * sizeof(e[0]));
    sl_buf_append(&rl->out[peer], &n, 4);
    sl_buf_append(&rl->out[peer], e, k * sizeof(e[0]));
}

static void
on_ack(struct rreader *rr, struct rd *r)
{
    uint32_t seq;
    if (!get(r, &seq, 4))
        return;
    struct sl_journal *j = sl_stream_journal(rr->s);
    const void *rec;
    size_t size;
    while (rr->ack.seq < seq && sl_journal_next_raw(j, &rr->ack, &rec, &size))
        rr->inflight -= size < rr->inflight ? size : rr->inflight;
    struct sl_stream *s = rr->s;
    /* May finish the stream (on_finished frees rr); else rr is still its reader. */
    if (sl_stream_consumed(s, &rr->ack))
        mark_dirty(rr);
}

static void
owner_frame(struct sl_relay *rl, unsigned peer, enum frame type, uint64_t token, struct rd *r)
{
    if (type == M_RESUME) {
        on_resume(rl, peer, token, r);
        return;
    }
    if (type == M_LIST) {
        on_list(rl, peer, token, r);
        return;
    }
    struct rreader *rr = (struct rreader *)(void *)tt_get(&rl->readers, token);
    if (rr == NULL)
        return; /* the stream moved on or ended meanwhile */
    switch (type) {
    case M_ACK:
        on_ack(rr, r);
        break;
    case M_CANCEL:
        sl_stream_cancel(rr->s, "client");
        break;
    case M_LIVE: {
        uint8_t live;
        if (get(r, &live, 1))
            sl_stream_set_live(rr->s, live != 0);
        break;
    }
    case M_RELEASE: {
        struct sl_stream *s = rr->s;
        reader_free(rr);
        sl_stream_release(s);
        break;
    }
    default:
        break;
    }
}

/* --- the resuming side ------------------------------------------------------------------ */

static void
rstream_free(struct sl_rstream *x)
{
    tt_del(&x->rl->rstreams, &x->node);
    sl_journal_cleanup(&x->mirror);
    free(x->id);
    free(x->model);
    free(x->provider);
    free(x->agent);
    free(x);
}

static bool
is_terminal(const void *rec)
{
    enum sl_event_type type = sl_journal_record_type(rec);
    return type == SL_EV_DONE || type == SL_EV_ERROR || type == SL_EV_CANCELLED;
}

static void
on_listed(struct sl_relay *rl, uint64_t token, struct rd *r)
{
    struct lister *l = (struct lister *)(void *)tt_get(&rl->lists, token);
    int32_t n;
    if (l == NULL || !get(r, &n, 4))
        return;
    struct sl_relay_entry e[MAX_LISTED];
    if (n < 0 || n > MAX_LISTED || !get(r, e, (size_t)n * sizeof(e[0])))
        n = n < 0 ? -1 : 0;
    tt_del(&rl->lists, &l->node);
    l->cb(l->ud, e, n);
    free(l);
}

static void
resumer_frame(struct sl_relay *rl, enum frame type, uint64_t token, struct rd *r)
{
    if (type == M_LISTED) {
        on_listed(rl, token, r);
        return;
    }
    struct sl_rstream *x = (struct sl_rstream *)(void *)tt_get(&rl->rstreams, token);
    if (x == NULL)
        return;
    switch (type) {
    case M_READY: {
        char epoch[32], model[256], provider[256], agent[256];
        if (!get_str(r, epoch, sizeof(epoch)) || !get_str(r, model, sizeof(model)) ||
            !get_str(r, provider, sizeof(provider)) || !get_str(r, agent, sizeof(agent)) ||
            !get(r, &x->info.input_tokens, 8) || !get(r, &x->info.price_in_per_1m, 8) ||
            !get(r, &x->info.price_out_per_1m, 8) || !get(r, &x->info.started_ms, 8))
            return;
        memcpy(x->epoch, epoch, sizeof(x->epoch));
        x->model = sl_strdup(model);
        x->provider = sl_strdup(provider);
        x->agent = agent[0] ? sl_strdup(agent) : NULL;
        x->info.agent = x->agent;
        x->ready = true;
        x->cb->on_ready(x->ud, x);
        break;
    }
    case M_FAIL: {
        char why[200];
        if (!get_str(r, why, sizeof(why)))
            snprintf(why, sizeof(why), "resume failed");
        x->cb->on_failed(x->ud, x, why);
        rstream_free(x);
        break;
    }
    case M_RECORDS:
        while (r->p < r->end) {
            size_t size = sl_journal_record_size(r->p);
            if (size == 0 || (size_t)(r->end - r->p) < size)
                break;
            sl_journal_append_raw(&x->mirror, r->p, size);
            if (is_terminal(r->p))
                x->ended = true;
            r->p += size;
        }
        x->cb->on_records(x->ud, x);
        break;
    case M_TAKEN:
        x->cb->on_taken(x->ud, x);
        rstream_free(x);
        break;
    default:
        break;
    }
}

struct sl_rstream *
sl_relay_resume(struct sl_relay *rl, unsigned owner, const char *user, const char *id,
                const char *epoch, uint32_t after, bool live, const struct sl_rstream_cb *cb,
                void *ud)
{
    struct sl_rstream *x = sl_calloc(1, sizeof(*x));
    x->node.token = ((uint64_t)rl->worker << 48) | ++rl->next_token;
    x->rl = rl;
    x->owner = owner;
    x->cb = cb;
    x->ud = ud;
    x->id = sl_strdup(id);
    /* A mirror keeps nothing it has handed on: the owner's journal is the one for resume. */
    sl_journal_init(&x->mirror, NULL, UINT32_MAX, UINT64_MAX, false);
    x->mirror.last = x->mirror.acked = after;
    tt_put(&rl->rstreams, &x->node);

    struct sl_buf tmp = SL_BUF_INIT;
    uint8_t l = live;
    sl_buf_append(&tmp, &after, 4);
    sl_buf_append(&tmp, &l, 1);
    put_str(&tmp, user);
    put_str(&tmp, id);
    put_str(&tmp, epoch ? epoch : "");
    send_simple(rl, owner, M_RESUME, x->node.token, sl_buf_ptr(&tmp), sl_buf_len(&tmp));
    sl_buf_free(&tmp);
    return x;
}

const char *
sl_rstream_id(const struct sl_rstream *r)
{
    return r->id;
}

const char *
sl_rstream_epoch(const struct sl_rstream *r)
{
    return r->epoch[0] ? r->epoch : NULL;
}

void
sl_rstream_info(const struct sl_rstream *r, struct sl_stream_info *out)
{
    *out = r->info;
}

uint64_t
sl_relay_list(struct sl_relay *rl, unsigned owner, const char *user, const char *sid,
              sl_relay_listed_cb cb, void *ud)
{
    struct lister *l = sl_calloc(1, sizeof(*l));
    l->node.token = ((uint64_t)rl->worker << 48) | ++rl->next_token;
    l->cb = cb;
    l->ud = ud;
    tt_put(&rl->lists, &l->node);
    struct sl_buf tmp = SL_BUF_INIT;
    put_str(&tmp, user);
    put_str(&tmp, sid);
    send_simple(rl, owner, M_LIST, l->node.token, sl_buf_ptr(&tmp), sl_buf_len(&tmp));
    sl_buf_free(&tmp);
    return l->node.token;
}

void
sl_relay_cancel_list(struct sl_relay *rl, uint64_t token)
{
    struct lister *l = (struct lister *)(void *)tt_get(&rl->lists, token);
    if (l) {
        tt_del(&rl->lists, &l->node);
        free(l);
    }
}

void
sl_relay_set_lister(struct sl_relay *rl, sl_relay_lister fn, void *ud)
{
    rl->lister = fn;
    rl->lister_ud = ud;
}

const char *
sl_rstream_model(const struct sl_rstream *r)
{
    return r->model;
}

const char *
sl_rstream_provider(const struct sl_rstream *r)
{
    return r->provider;
}

bool
sl_rstream_ended(const struct sl_rstream *r)
{
    return r->ended;
}

struct sl_journal *
sl_rstream_journal(struct sl_rstream *r)
{
    return &r->mirror;
}

bool
sl_rstream_consumed(struct sl_rstream *r, struct sl_jcursor *cur)
{
    uint32_t seq = cur->seq;
    bool moved = seq > r->mirror.acked;
    sl_journal_ack(&r->mirror, cur);
    if (moved)
        send_simple(r->rl, r->owner, M_ACK, r->node.token, &seq, 4);
    if (r->ended && r->mirror.acked == r->mirror.last) {
        r->cb->on_finished(r->ud, r);
        rstream_free(r);
        return false;
    }
    return true;
}

void
sl_rstream_cancel(struct sl_rstream *r)
{
    send_simple(r->rl, r->owner, M_CANCEL, r->node.token, NULL, 0);
}

void
sl_rstream_set_live(struct sl_rstream *r, bool live)
{
    uint8_t l = live;
    send_simple(r->rl, r->owner, M_LIVE, r->node.token, &l, 1);
}

void
sl_rstream_release(struct sl_rstream *r)
{
    send_simple(r->rl, r->owner, M_RELEASE, r->node.token, NULL, 0);
    rstream_free(r);
}

/* --- the relay ------------------------------------------------------------------------- */

struct sl_relay *
sl_relay_new(unsigned worker, struct sl_loop *loop, struct sl_streams *streams)
{
    struct sl_relay *rl = sl_calloc(1, sizeof(*rl));
    rl->worker = worker;
    rl->loop = loop;
    rl->streams = streams;
    tt_init(&rl->readers);
    tt_init(&rl->rstreams);
    tt_init(&rl->lists);
    sl_list_init(&rl->dirty);
    return rl;
}

void
sl_relay_set_peers(struct sl_relay *rl, struct sl_relay **peers, unsigned n)
{
    rl->peers = peers;
    rl->npeers = n;
    rl->out = sl_calloc(n, sizeof(*rl->out));
}

static void
on_batch(void *arg)
{
    struct batch *bt = arg;
    struct sl_relay *rl = bt->to;
    if (!rl->stopping) {
        struct rd r = {.p = bt->data, .end = bt->data + bt->len};
        for (;;) {
            uint8_t type = 0;
            uint64_t token = 0;
            uint32_t len = 0;
            if (!get(&r, &type, 1) || !get(&r, &token, 8) || !get(&r, &len, 4) ||
                (size_t)(r.end - r.p) < len)
                break;
            struct rd body = {.p = r.p, .end = r.p + len};
            r.p += len;
            if (type <= M_LIST)
                owner_frame(rl, bt->from, (enum frame)type, token, &body);
            else
                resumer_frame(rl, (enum frame)type, token, &body);
        }
        sl_relay_flush(rl); /* replies this batch produced */
    }
    free(bt);
}

void
sl_relay_flush(struct sl_relay *rl)
{
    if (rl->stopping)
        return;
    while (!sl_list_empty(&rl->dirty)) {
        struct rreader *rr = SL_CONTAINER_OF(rl->dirty.next, struct rreader, dirty_link);
        sl_list_unlink(&rr->dirty_link);
        rr->dirty = false;
        send_records(rr);
    }
    for (unsigned i = 0; i < rl->npeers; i++) {
        struct sl_buf *b = &rl->out[i];
        size_t n = sl_buf_len(b);
        if (n == 0)
            continue;
        struct batch *bt = sl_malloc(sizeof(*bt) + n);
        bt->to = rl->peers[i];
        bt->from = rl->worker;
        bt->len = n;
        memcpy(bt->data, sl_buf_ptr(b), n);
        sl_buf_clear(b);
        sl_loop_post(rl->peers[i]->loop, on_batch, bt);
    }
}

void
sl_relay_shutdown(struct sl_relay *rl)
{
    rl->stopping = true;
    for (size_t i = 0; i < rl->readers.n; i++) {
        while (rl->readers.b[i]) {
            struct rreader *rr = (struct rreader *)(void *)rl->readers.b[i];
            struct sl_stream *s = rr->s;
            reader_free(rr);
            sl_stream_release(s);
        }
    }
}

void
sl_relay_free(struct sl_relay *rl)
{
    if (rl == NULL)
        return;
    sl_assert(rl->readers.count == 0);
    for (size_t i = 0; i < rl->rstreams.n; i++) {
        while (rl->rstreams.b[i])
            rstream_free((struct sl_rstream *)(void *)rl->rstreams.b[i]);
    }
    for (size_t i = 0; i < rl->lists.n; i++) {
        while (rl->lists.b[i]) {
            struct lister *l = (struct lister *)(void *)rl->lists.b[i];
            tt_del(&rl->lists, &l->node);
            free(l);
        }
    }
    free(rl->lists.b);
    for (unsigned i = 0; rl->out && i < rl->npeers; i++)
        sl_buf_free(&rl->out[i]);
    free(rl->out);
    free(rl->readers.b);
    free(rl->rstreams.b);
    free(rl);
}
