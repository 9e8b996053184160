#include "stream/journal.h"

#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

/*
 * Blocks of BLOCK_SIZE bytes hold many records; a record larger than a block's payload
 * gets a block of its own, sized to fit (and not cached). A record never spans blocks,
 * so a decoded event's strings are contiguous.
 */
#define BLOCK_SIZE 2048

struct sl_jblock {
    struct sl_jblock *next;
    uint32_t first; /* seq of its first record */
    uint32_t nrec;
    uint32_t used; /* bytes of data in use */
    uint32_t cap;  /* bytes of data */
    _Alignas(8) char data[];
};

#define BLOCK_DATA (BLOCK_SIZE - (uint32_t)offsetof(struct sl_jblock, data))

/* Record header; the payload follows, the whole padded to 8 bytes. */
struct rec {
    uint32_t size; /* header + payload + padding */
    uint32_t seq;
    uint8_t type;
    uint8_t flags;
    uint16_t reserved;
    uint32_t tokens;
};

_Static_assert(sizeof(struct rec) == 16, "record header layout");

enum { F_TOOL = 1 };

#define NULL_STR UINT32_MAX

/* --- the pool ------------------------------------------------------------------------- */

void
sl_jpool_init(struct sl_jpool *p, unsigned max_free)
{
    memset(p, 0, sizeof(*p));
    p->max_free = max_free;
}

void
sl_jpool_cleanup(struct sl_jpool *p)
{
    while (p->free) {
        struct sl_jblock *b = p->free;
        p->free = b->next;
        free(b);
    }
    p->nfree = 0;
}

static struct sl_jblock *
block_get(struct sl_jpool *p, size_t need)
{
    struct sl_jblock *b;
    if (need <= BLOCK_DATA && p && p->free) {
        b = p->free;
        p->free = b->next;
        p->nfree--;
    } else {
        uint32_t cap = need <= BLOCK_DATA ? BLOCK_DATA : (uint32_t)need;
        b = sl_malloc(offsetof(struct sl_jblock, data) + cap);
        b->cap = cap;
    }
    b->next = NULL;
    b->first = 0;
    b->nrec = 0;
    b->used = 0;
    if (p)
        p->bytes += offsetof(struct sl_jblock, data) + b->cap;
    return b;
}

static void
block_put(struct sl_jpool *p, struct sl_jblock *b)
{
    if (p)
        p->bytes -= offsetof(struct sl_jblock, data) + b->cap;
    if (p && b->cap == BLOCK_DATA && p->nfree < p->max_free) {
        b->next = p->free;
        p->free = b;
        p->nfree++;
        return;
    }
    free(b);
}

/* --- encoding --------------------------------------------------------------------------- */

/* A writer that measures when dst is NULL, so one function both sizes and fills a record. */
struct w {
    char *dst;
    size_t n;
};

static void
put(struct w *w, const void *p, size_t n)
{
    if (w->dst && n)
        memcpy(w->dst + w->n, p, n);
    w->n += n;
}

static void
put_u8(struct w *w, uint8_t v)
{
    put(w, &v, 1);
}

static void
put_u32(struct w *w, uint32_t v)
{
    put(w, &v, 4);
}

static void
put_u64(struct w *w, uint64_t v)
{
    put(w, &v, 8);
}

static void
put_f64(struct w *w, double v)
{
    put(w, &v, 8);
}

static void
put_strn(struct w *w, const char *s, size_t n)
{
    if (s == NULL) {
        put_u32(w, NULL_STR);
        return;
    }
    put_u32(w, (uint32_t)n);
    put(w, s, n);
    put_u8(w, 0); /* decoded strings are plain C strings */
}

static void
put_str(struct w *w, const char *s)
{
    put_strn(w, s, s ? strlen(s) : 0);
}

static void
put_usage(struct w *w, const struct sl_usage *u)
{
    put_u64(w, u->input_tokens);
    put_u64(w, u->output_tokens);
    put_u8(w, u->estimated);
}

static uint8_t
encode(struct w *w, const struct sl_event *ev)
{
    uint8_t flags = 0;
    switch (ev->type) {
    case SL_EV_START:
        put_str(w, ev->u.start.epoch);
        put_str(w, ev->u.start.model);
        put_str(w, ev->u.start.provider);
        break;
    case SL_EV_PROGRESS:
        put_str(w, ev->u.progress.step);
        put_str(w, ev->u.progress.detail);
        break;
    case SL_EV_DELTA:
        if (ev->u.delta.tool) {
            const struct sl_tool_delta *t = ev->u.delta.tool;
            flags |= F_TOOL;
            put_u32(w, (uint32_t)t->index);
            put_strn(w, t->id, t->id_len);
            put_strn(w, t->name, t->name_len);
            put_strn(w, t->arguments, t->arguments_len);
        } else {
            put(w, ev->u.delta.text, ev->u.delta.len);
        }
        break;
    case SL_EV_DONE:
        put_u8(w, (uint8_t)ev->u.done.finish);
        put_usage(w, &ev->u.done.usage);
        put_f64(w, ev->u.done.cost_usd);
        put_u64(w, ev->u.done.ttft_ms);
        put_u64(w, ev->u.done.latency_ms);
        put_str(w, ev->u.done.native_finish);
        put_str(w, ev->u.done.model);
        put_str(w, ev->u.done.provider);
        break;
    case SL_EV_ERROR:
        put_u32(w, (uint32_t)ev->u.error.code);
        put_u8(w, ev->u.error.retryable);
        put_u64(w, (uint64_t)ev->u.error.retry_after_ms);
        put_usage(w, &ev->u.error.usage);
        put_str(w, ev->u.error.message);
        break;
    case SL_EV_CANCELLED:
        put_usage(w, &ev->u.cancelled.usage);
        put_str(w, ev->u.cancelled.reason);
        break;
    }
    return flags;
}

/* --- decoding (of records this module wrote: no validation needed) --------------------- */

struct r {
    const char *p;
};

static void
get(struct r *r, void *out, size_t n)
{
    memcpy(out, r->p, n);
    r->p += n;
}

static uint8_t
get_u8(struct r *r)
{
    uint8_t v;
    get(r, &v, 1);
    return v;
}

static uint32_t
get_u32(struct r *r)
{
    uint32_t v;
    get(r, &v, 4);
    return v;
}

static uint64_t
get_u64(struct r *r)
{
    uint64_t v;
    get(r, &v, 8);
    return v;
}

static double
get_f64(struct r *r)
{
    double v;
    get(r, &v, 8);
    return v;
}

static const char *
get_strn(struct r *r, size_t *len)
{
    uint32_t n = get_u32(r);
    if (n == NULL_STR) {
        *len = 0;
        return NULL;
    }
    const char *s = r->p;
    r->p += n + 1;
    *len = n;
    return s;
}

static const char *
get_str(struct r *r)
{
    size_t n;
    return get_strn(r, &n);
}

static void
get_usage(struct r *r, struct sl_usage *u)
{
    u->input_tokens = get_u64(r);
    u->output_tokens = get_u64(r);
    u->estimated = get_u8(r) != 0;
}

static void
decode(const struct rec *h, struct sl_jrecord *out)
{
    struct sl_tool_delta *tool = &out->tool;
    struct r r = {.p = (const char *)(h + 1)};
    struct sl_event *ev = &out->ev;
    memset(ev, 0, sizeof(*ev));
    ev->type = (enum sl_event_type)h->type;
    ev->seq = h->seq;
    out->tokens = h->tokens;
    out->size = h->size;
    switch (ev->type) {
    case SL_EV_START:
        ev->u.start.epoch = get_str(&r);
        ev->u.start.model = get_str(&r);
        ev->u.start.provider = get_str(&r);
        break;
    case SL_EV_PROGRESS:
        ev->u.progress.step = get_str(&r);
        ev->u.progress.detail = get_str(&r);
        break;
    case SL_EV_DELTA:
        if (h->flags & F_TOOL) {
            tool->index = (int)get_u32(&r);
            tool->id = get_strn(&r, &tool->id_len);
            tool->name = get_strn(&r, &tool->name_len);
            tool->arguments = get_strn(&r, &tool->arguments_len);
            ev->u.delta.tool = tool;
        } else {
            ev->u.delta.text = r.p;
            ev->u.delta.len = h->size - sizeof(*h) - h->reserved;
        }
        break;
    case SL_EV_DONE:
        ev->u.done.finish = (enum sl_finish)get_u8(&r);
        get_usage(&r, &ev->u.done.usage);
        ev->u.done.cost_usd = get_f64(&r);
        ev->u.done.ttft_ms = get_u64(&r);
        ev->u.done.latency_ms = get_u64(&r);
        ev->u.done.native_finish = get_str(&r);
        ev->u.done.model = get_str(&r);
        ev->u.done.provider = get_str(&r);
        break;
    case SL_EV_ERROR:
        ev->u.error.code = (enum sl_errcode)get_u32(&r);
        ev->u.error.retryable = get_u8(&r) != 0;
        ev->u.error.retry_after_ms = (int64_t)get_u64(&r);
        get_usage(&r, &ev->u.error.usage);
        ev->u.error.message = get_str(&r);
        break;
    case SL_EV_CANCELLED:
        get_usage(&r, &ev->u.cancelled.usage);
        ev->u.cancelled.reason = get_str(&r);
        break;
    }
}

/* --- the journal -------------------------------------------------------------------------- */

void
sl_journal_init(struct sl_journal *j, struct sl_jpool *pool, uint32_t max_events,
                uint64_t max_bytes, bool retain)
{
    memset(j, 0, sizeof(*j));
    j->pool = pool;
    j->max_events = max_events ? max_events : 1;
    j->max_bytes = max_bytes ? max_bytes : 1;
    j->retain = retain;
}

void
sl_journal_cleanup(struct sl_journal *j)
{
    while (j->head) {
        struct sl_jblock *b = j->head;
        j->head = b->next;
        block_put(j->pool, b);
    }
    j->tail = NULL;
    j->nrec = 0;
    j->bytes = j->backlog = 0;
}

static inline uint32_t
block_last(const struct sl_jblock *b)
{
    return b->first + b->nrec - 1;
}

/* Room for a record of size bytes at the tail; returns where it goes. */
static char *
room(struct sl_journal *j, size_t size, uint32_t seq)
{
    struct sl_jblock *t = j->tail;
    if (t == NULL || t->cap - t->used < size) {
        struct sl_jblock *b = block_get(j->pool, size);
        if (t)
            t->next = b;
        else
            j->head = b;
        j->tail = t = b;
    }
    if (t->nrec == 0)
        t->first = seq;
    return t->data + t->used;
}

static void
committed(struct sl_journal *j, size_t size, uint32_t seq)
{
    struct sl_jblock *t = j->tail;
    j->newest = t->data + t->used;
    j->newest_size = size;
    t->used += (uint32_t)size;
    t->nrec++;
    if (j->nrec == 0)
        j->first = seq;
    j->nrec++;
    j->last = seq;
    j->bytes += size;
    j->backlog += size;
}

/*
 * Strings are written NUL-terminated so that decoded events carry plain C strings; a text
 * delta (rendered by length) is not, and its length is the payload minus the padding,
 * which the header's reserved field records.
 */
void
sl_journal_append(struct sl_journal *j, const struct sl_event *ev, uint32_t tokens)
{
    if (ev->type == SL_EV_DELTA && ev->u.delta.tool == NULL) {
        /* The per-token case, written at once: the payload is the text itself. */
        size_t len = ev->u.delta.len;
        size_t size = (sizeof(struct rec) + len + 7) & ~(size_t)7;
        char *dst = room(j, size, ev->seq);
        struct rec h = {.size = (uint32_t)size,
                        .seq = ev->seq,
                        .type = SL_EV_DELTA,
                        .reserved = (uint16_t)(size - sizeof(h) - len),
                        .tokens = tokens};
        /* The padding (under 8 bytes) is zeroed by clearing the last word before the copies. */
        uint64_t zero = 0;
        memcpy(dst + size - 8, &zero, 8);
        memcpy(dst, &h, sizeof(h));
        memcpy(dst + sizeof(h), ev->u.delta.text, len);
        committed(j, size, ev->seq);
        return;
    }
    struct w m = {0};
    uint8_t flags = encode(&m, ev);
    size_t payload = m.n;
    size_t size = (sizeof(struct rec) + payload + 7) & ~(size_t)7;
    char *dst = room(j, size, ev->seq);
    struct rec *h = (struct rec *)(void *)dst;
    h->size = (uint32_t)size;
    h->seq = ev->seq;
    h->type = (uint8_t)ev->type;
    h->flags = flags;
    h->reserved = (uint16_t)(size - sizeof(*h) - payload);
    h->tokens = tokens;
    struct w out = {.dst = dst + sizeof(*h)};
    encode(&out, ev);
    memset(dst + sizeof(*h) + payload, 0, h->reserved);
    committed(j, size, ev->seq);
}

void
sl_journal_newest_raw(const struct sl_journal *j, const void **rec, size_t *size)
{
    *rec = j->newest;
    *size = j->newest_size;
}

size_t
sl_journal_record_size(const void *rec)
{
    struct rec h;
    memcpy(&h, rec, sizeof(h));
    return h.size;
}

enum sl_event_type
sl_journal_record_type(const void *rec)
{
    struct rec h;
    memcpy(&h, rec, sizeof(h));
    return (enum sl_event_type)h.type;
}

void
sl_journal_append_raw(struct sl_journal *j, const void *rec, size_t size)
{
    struct rec h; /* rec may be unaligned (inside a relay frame) */
    memcpy(&h, rec, sizeof(h));
    char *dst = room(j, size, h.seq);
    memcpy(dst, rec, size);
    committed(j, size, h.seq);
}

bool
sl_journal_full(const struct sl_journal *j)
{
    return j->last - j->acked >= j->max_events || j->backlog >= j->max_bytes;
}

/* The block holding record seq (first <= seq <= last), or NULL. */
static struct sl_jblock *
find_block(const struct sl_journal *j, uint32_t seq)
{
    for (struct sl_jblock *b = j->head; b; b = b->next)
        if (b->nrec && seq >= b->first && seq <= block_last(b))
            return b;
    return NULL;
}

/* Offset of record seq inside b. */
static uint32_t
find_offset(const struct sl_jblock *b, uint32_t seq)
{
    uint32_t off = 0;
    for (uint32_t s = b->first; s < seq; s++)
        off += ((const struct rec *)(const void *)(b->data + off))->size;
    return off;
}

bool
sl_journal_seek(struct sl_journal *j, uint32_t after, struct sl_jcursor *cur)
{
    memset(cur, 0, sizeof(*cur));
    if (after > j->last)
        return false;
    if (after < j->last && (j->nrec == 0 || after + 1 < j->first))
        return false;
    cur->seq = after;
    uint64_t backlog = 0;
    if (after < j->last) {
        struct sl_jblock *b = find_block(j, after + 1);
        cur->b = b;
        cur->off = find_offset(b, after + 1);
        /* What follows the cursor is the new backlog. */
        uint32_t off = cur->off;
        for (struct sl_jblock *x = b; x; x = x->next, off = 0)
            backlog += x->used - off;
    } else {
        cur->b = j->tail;
        cur->off = j->tail ? j->tail->used : 0;
    }
    j->acked = after;
    j->backlog = backlog;
    return true;
}

void
sl_journal_end(struct sl_journal *j, struct sl_jcursor *cur)
{
    memset(cur, 0, sizeof(*cur));
    cur->seq = j->last;
    cur->b = j->tail;
    cur->off = j->tail ? j->tail->used : 0;
    cur->unacked = j->backlog;
}

static const struct rec *
advance(struct sl_journal *j, struct sl_jcursor *cur)
{
    if (cur->seq >= j->last)
        return NULL;
    if (cur->b == NULL) {
        cur->b = find_block(j, cur->seq + 1);
        cur->off = cur->b ? find_offset(cur->b, cur->seq + 1) : 0;
        if (cur->b == NULL)
            return NULL;
    }
    while (cur->off >= cur->b->used) {
        cur->b = cur->b->next;
        cur->off = 0;
        sl_assert(cur->b != NULL);
    }
    const struct rec *h = (const struct rec *)(const void *)(cur->b->data + cur->off);
    cur->off += h->size;
    cur->seq = h->seq;
    cur->unacked += h->size;
    return h;
}

bool
sl_journal_next(struct sl_journal *j, struct sl_jcursor *cur, struct sl_jrecord *rec)
{
    const struct rec *h = advance(j, cur);
    if (h == NULL)
        return false;
    decode(h, rec);
    return true;
}

bool
sl_journal_next_raw(struct sl_journal *j, struct sl_jcursor *cur, const void **rec, size_t *size)
{
    const struct rec *h = advance(j, cur);
    if (h == NULL)
        return false;
    *rec = h;
    *size = h->size;
    return true;
}

/* Drops whole blocks from the front that the reader is past and the caps do not keep. */
static void
trim(struct sl_journal *j)
{
    while (j->head && j->head != j->tail && block_last(j->head) < j->acked) {
        if (j->retain && j->nrec <= j->max_events && j->bytes <= j->max_bytes)
            break;
        struct sl_jblock *b = j->head;
        j->head = b->next;
        j->nrec -= b->nrec;
        j->bytes -= b->used;
        j->first = j->head->first;
        block_put(j->pool, b);
    }
}

void
sl_journal_take_all(struct sl_journal *j, struct sl_jcursor *cur)
{
    cur->seq = j->last;
    cur->b = j->tail;
    cur->off = j->tail ? j->tail->used : 0;
    cur->unacked = 0;
    j->acked = j->last;
    j->backlog = 0;
    if (j->head != j->tail)
        trim(j);
}

void
sl_journal_ack(struct sl_journal *j, struct sl_jcursor *cur)
{
    if (cur->seq <= j->acked && cur->unacked == 0)
        return;
    j->acked = cur->seq;
    j->backlog -= cur->unacked < j->backlog ? cur->unacked : j->backlog;
    cur->unacked = 0;
    trim(j);
}

void
sl_journal_set_retain(struct sl_journal *j, bool retain)
{
    j->retain = retain;
    trim(j);
}
