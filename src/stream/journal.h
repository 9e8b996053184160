/*
 * A stream's journal: its events, in order, in a compact binary form.
 *
 * Every event a stream emits is appended here before anyone renders it. The journal is
 * both the stream's outbound queue and its memory for resume:
 *
 *   first ........ acked ............ last
 *   |  delivered,  |  backlog: not yet |
 *   |  kept for    |  consumed by the  |
 *   |  resume      |  reader           |
 *
 * The reader (the session the stream is attached to) consumes records through a cursor
 * and acknowledges them; what it acknowledged is kept for a later resume as long as the
 * caps (max_events, max_bytes) allow (retain), and dropped oldest first beyond them, or at
 * once without retain (resume.window 0). The backlog is never dropped: when it alone
 * reaches a cap the journal is full and the stream must pause its provider. So a slow
 * client or a dropped connection never loses a token; it only slows its own stream.
 *
 * Records live in blocks of a few KiB taken from a per-worker pool, so appending a token
 * costs a memcpy, not a malloc. Strings in decoded events point into the blocks and stay
 * valid until the record is dropped (never before the reader acknowledges it).
 *
 * Sequence numbers are the stream's: consecutive, starting at 1. A journal is used by
 * one thread (its worker); nothing here locks.
 */
#ifndef SL_STREAM_JOURNAL_H
#define SL_STREAM_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "canon/event.h"

struct sl_jblock;

/* A cache of free blocks, one per worker (journals on one thread share it). */
struct sl_jpool {
    struct sl_jblock *free;
    unsigned nfree, max_free;
    uint64_t bytes; /* held by journals of this pool (for metrics) */
};

void sl_jpool_init(struct sl_jpool *p, unsigned max_free);
void sl_jpool_cleanup(struct sl_jpool *p);

struct sl_journal {
    struct sl_jblock *head, *tail;
    struct sl_jpool *pool;
    uint32_t first;   /* seq of the oldest record held (valid when nrec > 0) */
    uint32_t last;    /* seq of the newest record appended, 0 before any */
    uint32_t acked;   /* the reader has consumed every record up to this seq */
    uint32_t nrec;    /* records held */
    uint64_t bytes;   /* bytes held (records with their headers) */
    uint64_t backlog; /* bytes of the records after acked */
    uint32_t max_events;
    uint64_t max_bytes;
    bool retain;        /* keep acknowledged records (for resume) within the caps */
    const void *newest; /* the record appended last (valid until it is dropped) */
    size_t newest_size;
};

/* A reading position: the next record to read is the one after seq. */
struct sl_jcursor {
    struct sl_jblock *b;
    uint32_t off;
    uint32_t seq;     /* the last record read (or the position sought) */
    uint64_t unacked; /* bytes read since the last sl_journal_ack() */
};

/* A decoded record: the event and the running output token count after it. */
struct sl_jrecord {
    struct sl_event ev;
    struct sl_tool_delta tool; /* ev.u.delta.tool points here for a tool-call fragment */
    uint32_t tokens;
    size_t size; /* encoded size, header included */
};

void sl_journal_init(struct sl_journal *j, struct sl_jpool *pool, uint32_t max_events,
                     uint64_t max_bytes, bool retain);

/* Frees every block. */
void sl_journal_cleanup(struct sl_journal *j);

/*
 * Appends ev (ev->seq must be last + 1) with the stream's running output token count.
 * Never refuses: the caps are the caller's to honour through sl_journal_full().
 */
void sl_journal_append(struct sl_journal *j, const struct sl_event *ev, uint32_t tokens);

/* The encoded size and event type of a raw record (from sl_journal_next_raw). */
size_t sl_journal_record_size(const void *rec);
enum sl_event_type sl_journal_record_type(const void *rec);

/*
 * The encoded bytes of the record appended last (for a copy made at once: the cluster's
 * mirror); only right after an append, before any acknowledgement may drop it.
 */
void sl_journal_newest_raw(const struct sl_journal *j, const void **rec, size_t *size);

/* Appends a record already encoded (copied from another journal). */
void sl_journal_append_raw(struct sl_journal *j, const void *rec, size_t size);

/* Whether the backlog alone has reached a cap: the writer must stop producing. */
bool sl_journal_full(const struct sl_journal *j);

/*
 * Positions a cursor after record `after` (0: before the first event). Returns false
 * if records after `after` were already dropped (or `after` is beyond the last record):
 * a resume from there is impossible.
 */
bool sl_journal_seek(struct sl_journal *j, uint32_t after, struct sl_jcursor *cur);

/*
 * A cursor after the newest record, counting everything after the old acked position as
 * read (for a reader that rendered the newest record directly, with no backlog before it).
 */
void sl_journal_end(struct sl_journal *j, struct sl_jcursor *cur);

/*
 * The reader rendered the newest record itself with nothing unread before it: the cursor
 * goes after it and everything is acknowledged (sl_journal_end + sl_journal_ack in one step,
 * the per-token path).
 */
void sl_journal_take_all(struct sl_journal *j, struct sl_jcursor *cur);

/* Decodes the record after the cursor and advances. Returns false at the end. */
bool sl_journal_next(struct sl_journal *j, struct sl_jcursor *cur, struct sl_jrecord *rec);

/* The encoded bytes of the record after the cursor (for copying), and advances. */
bool sl_journal_next_raw(struct sl_journal *j, struct sl_jcursor *cur, const void **rec,
                         size_t *size);

/*
 * The reader consumed everything up to the cursor: moves acked there and drops what the
 * caps (or !retain) no longer allow to keep. A cursor placed by seek() to an earlier seq
 * than acked moves acked back (a resume from further back).
 */
void sl_journal_ack(struct sl_journal *j, struct sl_jcursor *cur);

/* Turns retention on or off (off: acknowledged records are dropped at once). */
void sl_journal_set_retain(struct sl_journal *j, bool retain);

#endif
