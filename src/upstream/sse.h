/*
 * Incremental parser for text/event-stream bodies (WHATWG HTML, "parsing an event stream").
 *
 * Sits between libcurl's write callback and the provider adapters: feed it the body bytes
 * exactly as they arrive, in any split (inside a field, between the CR and LF of a CRLF,
 * inside a UTF-8 character), and it calls back once per dispatched event. It knows nothing
 * about JSON, providers or `[DONE]`: payloads are handed over as raw bytes.
 *
 *     struct sl_sse p;
 *     sl_sse_init(&p, &callbacks, stream, 1 << 20);
 *     ...  rc = sl_sse_feed(&p, ptr, n);          from the curl write callback
 *     ...  if (sl_sse_finish(&p) == 1) truncated;  at the end of the transfer
 *     sl_sse_cleanup(&p);
 *
 * Rules implemented (byte for byte as the spec, except that bytes are not UTF-8 decoded):
 * - Lines end in LF, CRLF or a lone CR; a CR ending one feed and an LF starting the next
 *   are one line end. One leading UTF-8 BOM (EF BB BF) is stripped; a later one is data.
 * - `:` at the start of a line is a comment. `name:value` loses at most one space after the
 *   colon; a line without a colon is a field with an empty value.
 * - `data` appends its value to the event's data (several lines are joined with LF);
 *   `event` sets the type; `id` sets the last event id unless the value contains NUL (the
 *   id persists across events, as the spec's "last event ID buffer"); `retry` of ASCII
 *   digits only sets the reconnection time; any other name is reported and otherwise ignored.
 * - A blank line dispatches: an event with at least one `data` line is passed to on_event;
 *   either way the event type is reset (the id is not).
 * - Bytes after the last blank line at end of input are an incomplete event: never
 *   dispatched, reported by sl_sse_finish().
 *
 * Invalid UTF-8 passes through untouched (the consumer's JSON decoder rejects it); the spec
 * would decode it to U+FFFD, which for JSON payloads only hides the damage.
 *
 * Cost: lines that arrive whole within one feed are parsed in place and dispatched as slices
 * of the caller's buffer; only a line cut by a feed boundary, or an event still pending when a
 * feed returns, is copied into the parser's buffers. The buffers are reused across events,
 * so nothing is allocated per event once they have grown to the stream's largest event.
 */
#ifndef SL_UPSTREAM_SSE_H
#define SL_UPSTREAM_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"

/*
 * Errors returned by sl_sse_feed() and sl_sse_finish(). Negative, in a range of their own so
 * that they never collide with each other's modules; callbacks should stop the parser with
 * positive values (any non-zero value works, but a positive one cannot be mistaken for these).
 */
enum sl_sse_error {
    SL_SSE_ERR_LINE_TOO_LONG = -1201, /* one line (terminator excluded) over max_event_bytes */
    SL_SSE_ERR_EVENT_TOO_BIG = -1202, /* the joined data of one event over max_event_bytes */
    SL_SSE_ERR_STOPPED = -1203,       /* sl_sse_finish() after a stop, an error or a finish */
};

/* A short English description of an sl_sse_error (or "unknown SSE error"). */
const char *sl_sse_strerror(int code);

/*
 * Callbacks. Every one returns 0 to go on, or non-zero to stop at once: sl_sse_feed() then
 * returns that value and the parser never calls back again (see sl_sse_feed). Slices are
 * borrowed and valid only during the call; their ptr is never NULL (an empty slice points at
 * "") but the bytes are not NUL-terminated and may contain NUL. A callback must not feed,
 * finish, clean up or free the parser: to cancel, return non-zero and release it after
 * sl_sse_feed() has returned.
 */

/* A dispatched event. event: the type, empty when the event had no `event` line; data: the
 * data lines joined with LF (no final LF); id: the last event id seen so far (empty if none). */
typedef int (*sl_sse_event_cb)(void *ud, struct sl_slice event, struct sl_slice data,
                               struct sl_slice id);
/* A comment line: the text after the colon, less one leading space (": ping" -> "ping"). */
typedef int (*sl_sse_comment_cb)(void *ud, struct sl_slice text);
/* A field with a name other than data/event/id/retry (such as llama.cpp's `error:`). */
typedef int (*sl_sse_field_cb)(void *ud, struct sl_slice name, struct sl_slice value);

struct sl_sse_callbacks {
    sl_sse_event_cb on_event;         /* required */
    sl_sse_comment_cb on_comment;     /* optional (NULL) */
    sl_sse_field_cb on_ignored_field; /* optional (NULL) */
};

/*
 * Parser state. The layout is public so that a stream can embed the parser; the fields are
 * private to sse.c. A pending value is either borrowed from the buffer of the feed in
 * progress (`ref`) or owned (`own`): borrowing is what lets a whole event be dispatched
 * without a copy.
 */
struct sl_sse_value {
    struct sl_buf own;
    struct sl_slice ref;
    bool borrowed;
};

struct sl_sse {
    struct sl_sse_callbacks cb;
    void *ud;
    size_t max;               /* cap on one line and on one event's joined data */
    struct sl_buf line;       /* a line cut by a feed boundary, until its end arrives */
    struct sl_sse_value data; /* the pending event's joined data */
    struct sl_sse_value type; /* the pending event's type */
    struct sl_buf id;         /* the last event id (persists across events) */
    int64_t retry_ms;         /* last valid `retry`, -1 if none */
    int stopped;              /* non-zero once stopped: the value feed keeps returning */
    uint8_t bom_matched;      /* leading bytes matched against the BOM so far */
    bool bom_done;            /* the BOM check is over (stripped or absent) */
    bool after_cr;            /* the last line ended in CR: an LF next is part of it */
    bool has_data;            /* the pending event has at least one data line */
    bool in_event;            /* a field line was seen since the last blank line */
};

/*
 * Prepares p. cb is copied; ud is passed to every callback. max_event_bytes caps the length
 * of one line (without its terminator) and of one event's joined data, and so the memory a
 * peer can make the parser hold: a pending line and the event's data (plus its type and the
 * last id, which are parts of lines), each at most max_event_bytes. Never fails.
 */
void sl_sse_init(struct sl_sse *p, const struct sl_sse_callbacks *cb, void *ud,
                 size_t max_event_bytes);

/*
 * Parses len bytes (buf may be NULL when len is 0), calling back for each complete line and
 * dispatched event. Returns 0 when all bytes were consumed, the non-zero value of a callback
 * that asked to stop, or a negative sl_sse_error. After any non-zero return the parser is
 * stopped: further feeds return the same value without calling back, sl_sse_finish() returns
 * SL_SSE_ERR_STOPPED, and only sl_sse_cleanup() (or a new sl_sse_init() after cleanup) is
 * useful. The parser keeps no pointer into buf once the call returns.
 */
int sl_sse_feed(struct sl_sse *p, const char *buf, size_t len);

/*
 * Ends the stream (call it when the body is complete). Returns 0 if the body ended cleanly
 * after a blank line (or a complete comment line), 1 if an incomplete event was discarded
 * (a non-empty unterminated line, or field lines without the blank line that would dispatch
 * them: a truncated stream), or SL_SSE_ERR_STOPPED if the parser had already stopped or
 * finished. Calls no callback. The parser is stopped afterwards: feeds return
 * SL_SSE_ERR_STOPPED.
 */
int sl_sse_finish(struct sl_sse *p);

/* The reconnection time of the last valid `retry` field in milliseconds, or -1 if none. */
static inline int64_t
sl_sse_retry_ms(const struct sl_sse *p)
{
    return p->retry_ms;
}

/* Frees the buffers. p may then be initialised again. Safe after any return of any call. */
void sl_sse_cleanup(struct sl_sse *p);

#endif
