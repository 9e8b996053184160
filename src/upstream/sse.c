/*
 * Server-sent events parser. See sse.h for the rules and the contract.
 *
 * Shape: sl_sse_feed() cuts its input into lines and hands each to process_line(), which
 * updates the pending event and dispatches it on a blank line. A line found whole in the
 * input is processed in place ("stable": its bytes stay valid until the feed returns), so
 * the pending event's type and data can simply point at it; before the feed returns,
 * keep_pending() copies whatever still points into the input. A line cut by the end of a
 * feed is accumulated in p->line and processed from there (not stable: values are copied).
 */
#include "upstream/sse.h"

#include <string.h>

#include "base/alloc.h"

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

const char *
sl_sse_strerror(int code)
{
    switch (code) {
    case SL_SSE_ERR_LINE_TOO_LONG:
        return "SSE line longer than the limit";
    case SL_SSE_ERR_EVENT_TOO_BIG:
        return "SSE event data larger than the limit";
    case SL_SSE_ERR_STOPPED:
        return "SSE parser already stopped";
    default:
        return "unknown SSE error";
    }
}

void
sl_sse_init(struct sl_sse *p, const struct sl_sse_callbacks *cb, void *ud, size_t max_event_bytes)
{
    sl_assert(cb != NULL && cb->on_event != NULL);
    memset(p, 0, sizeof(*p));
    p->cb = *cb;
    p->ud = ud;
    p->max = max_event_bytes;
    p->retry_ms = -1;
}

void
sl_sse_cleanup(struct sl_sse *p)
{
    sl_buf_free(&p->line);
    sl_buf_free(&p->data.own);
    sl_buf_free(&p->type.own);
    sl_buf_free(&p->id);
    p->data.borrowed = p->type.borrowed = false;
}

static struct sl_slice
buf_slice(const struct sl_buf *b)
{
    return sl_slice_make(sl_buf_ptr(b), sl_buf_len(b));
}

static struct sl_slice
value_get(const struct sl_sse_value *v)
{
    return v->borrowed ? v->ref : buf_slice(&v->own);
}

static void
value_set(struct sl_sse_value *v, struct sl_slice s, bool stable)
{
    if (stable) {
        v->ref = s;
        v->borrowed = true;
        return;
    }
    v->borrowed = false;
    sl_buf_clear(&v->own);
    sl_buf_append(&v->own, s.ptr, s.len);
}

/* Turns a value borrowed from the input into an owned copy, so that it can grow or outlive
 * the feed. */
static void
value_own(struct sl_sse_value *v)
{
    if (!v->borrowed)
        return;
    v->borrowed = false;
    sl_buf_clear(&v->own);
    sl_buf_append(&v->own, v->ref.ptr, v->ref.len);
}

static void
value_reset(struct sl_sse_value *v)
{
    v->borrowed = false;
    sl_buf_clear(&v->own);
}

static int
add_data(struct sl_sse *p, struct sl_slice value, bool stable)
{
    if (!p->has_data) {
        /* value is part of a line, which is already within the cap */
        p->has_data = true;
        value_set(&p->data, value, stable);
        return 0;
    }
    size_t cur = value_get(&p->data).len;
    if (value.len > p->max || cur + 1 > p->max - value.len)
        return SL_SSE_ERR_EVENT_TOO_BIG;
    value_own(&p->data);
    sl_buf_append_byte(&p->data.own, '\n');
    sl_buf_append(&p->data.own, value.ptr, value.len);
    return 0;
}

static int
dispatch(struct sl_sse *p)
{
    int rc = 0;
    p->in_event = false;
    if (p->has_data)
        rc = p->cb.on_event(p->ud, value_get(&p->type), value_get(&p->data), buf_slice(&p->id));
    p->has_data = false;
    value_reset(&p->data);
    value_reset(&p->type);
    return rc;
}

static void
set_retry(struct sl_sse *p, struct sl_slice v)
{
    int64_t ms = 0;
    if (v.len == 0)
        return;
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            return;
        /* Saturate rather than overflow: nobody waits 292 million years anyway. */
        int digit = v.ptr[i] - '0';
        if (ms > (INT64_MAX - digit) / 10)
            ms = INT64_MAX;
        else
            ms = ms * 10 + digit;
    }
    p->retry_ms = ms;
}

static bool
name_is(struct sl_slice name, const char *lit, size_t n)
{
    return name.len == n && memcmp(name.ptr, lit, n) == 0;
}

/* One line, terminator excluded. stable: the bytes stay valid until the feed returns. */
static int
process_line(struct sl_sse *p, const char *line, size_t n, bool stable)
{
    if (n == 0)
        return dispatch(p);

    if (line[0] == ':') {
        if (p->cb.on_comment == NULL)
            return 0;
        size_t skip = (n > 1 && line[1] == ' ') ? 2 : 1;
        return p->cb.on_comment(p->ud, sl_slice_make(line + skip, n - skip));
    }

    struct sl_slice name, value;
    const char *colon = memchr(line, ':', n);
    if (colon != NULL) {
        name = sl_slice_make(line, (size_t)(colon - line));
        size_t at = name.len + 1;
        if (at < n && line[at] == ' ')
            at++;
        value = sl_slice_make(line + at, n - at);
    } else {
        name = sl_slice_make(line, n);
        value = sl_slice_make("", 0);
    }
    p->in_event = true;

    if (name_is(name, "data", 4))
        return add_data(p, value, stable);
    if (name_is(name, "event", 5)) {
        value_set(&p->type, value, stable);
        return 0;
    }
    if (name_is(name, "id", 2)) {
        if (memchr(value.ptr, '\0', value.len) == NULL) {
            sl_buf_clear(&p->id);
            sl_buf_append(&p->id, value.ptr, value.len);
        }
        return 0;
    }
    if (name_is(name, "retry", 5)) {
        set_retry(p, value);
        return 0;
    }
    if (p->cb.on_ignored_field != NULL)
        return p->cb.on_ignored_field(p->ud, name, value);
    return 0;
}

/*
 * Where the next line of buf[pos..len) ends: the offset of its CR or LF, or len if it has
 * none yet. The offsets of the next CR and of the next LF are remembered across calls, so a
 * feed costs one pass of memchr per character class however its lines end (a naive search
 * for LF in a CR-only stream would rescan the rest of the buffer for every line).
 */
struct eol_scan {
    size_t cr, lf; /* offset of the next CR / LF at or after the last pos, len if none */
    bool primed;
};

static size_t
find_eol(struct eol_scan *s, const char *buf, size_t pos, size_t len)
{
    if (!s->primed || s->cr < pos) {
        const char *q = memchr(buf + pos, '\r', len - pos);
        s->cr = q ? (size_t)(q - buf) : len;
    }
    if (!s->primed || s->lf < pos) {
        const char *q = memchr(buf + pos, '\n', len - pos);
        s->lf = q ? (size_t)(q - buf) : len;
    }
    s->primed = true;
    return s->cr < s->lf ? s->cr : s->lf;
}

/* Before sl_sse_feed() returns, copy what still points into the caller's buffer. */
static void
keep_pending(struct sl_sse *p)
{
    value_own(&p->data);
    value_own(&p->type);
}

/*
 * Strips a leading BOM, which may itself arrive split across feeds. Returns how many bytes
 * of buf it consumed. On a mismatch the bytes matched so far were data after all: they go to
 * the line buffer, ahead of the rest.
 */
static size_t
strip_bom(struct sl_sse *p, const char *buf, size_t len)
{
    size_t pos = 0;
    while (!p->bom_done && pos < len) {
        if ((unsigned char)buf[pos] == bom[p->bom_matched]) {
            pos++;
            p->bom_matched++;
            if (p->bom_matched == sizeof(bom))
                p->bom_done = true;
            continue;
        }
        sl_buf_append(&p->line, bom, p->bom_matched);
        p->bom_done = true;
    }
    return pos;
}

int
sl_sse_feed(struct sl_sse *p, const char *buf, size_t len)
{
    int rc = 0;
    size_t pos = 0;
    struct eol_scan scan = {0, 0, false};

    if (p->stopped != 0)
        return p->stopped;
    if (len == 0)
        return 0;

    pos = strip_bom(p, buf, len);
    if (sl_buf_len(&p->line) > p->max) {
        rc = SL_SSE_ERR_LINE_TOO_LONG;
        goto out;
    }

    while (pos < len) {
        if (p->after_cr) {
            p->after_cr = false;
            if (buf[pos] == '\n') {
                pos++;
                continue;
            }
        }
        size_t eol = find_eol(&scan, buf, pos, len);
        size_t n = eol - pos;
        size_t held = sl_buf_len(&p->line);
        if (n > p->max || held > p->max - n) {
            rc = SL_SSE_ERR_LINE_TOO_LONG;
            goto out;
        }
        if (eol == len) {
            sl_buf_append(&p->line, buf + pos, n);
            break;
        }
        if (held > 0) {
            sl_buf_append(&p->line, buf + pos, n);
            rc = process_line(p, sl_buf_ptr(&p->line), sl_buf_len(&p->line), false);
            sl_buf_clear(&p->line);
        } else {
            rc = process_line(p, buf + pos, n, true);
        }
        p->after_cr = buf[eol] == '\r';
        pos = eol + 1;
        if (rc != 0)
            goto out;
    }
    keep_pending(p);
out:
    if (rc != 0)
        p->stopped = rc;
    return rc;
}

int
sl_sse_finish(struct sl_sse *p)
{
    if (p->stopped != 0)
        return SL_SSE_ERR_STOPPED;
    p->stopped = SL_SSE_ERR_STOPPED;
    /* A BOM prefix still being matched is an unterminated line too. */
    bool partial = sl_buf_len(&p->line) > 0 || (!p->bom_done && p->bom_matched > 0);
    return partial || p->in_event || p->has_data ? 1 : 0;
}
