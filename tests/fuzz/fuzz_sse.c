// fuzz-sources: src/upstream/sse.c src/base/buf.c src/base/alloc.c
// fuzz-seeds: @fixtures/*/*.sse
/*
 * libFuzzer harness for src/upstream/sse.
 *
 * The whole input is the stream body (so the fixtures are meaningful seeds); the settings of
 * a run (the cap, when a callback stops, how the body is cut) are derived from a hash of the
 * input. Each input is parsed four ways, which must report exactly the same callbacks, feed
 * result, finish result and retry value:
 *   1. fed whole;
 *   2. fed one byte at a time;
 *   3. fed in pieces of pseudo-random sizes, with empty feeds mixed in;
 *   4. by a deliberately naive reference parser written here from the spec, which holds the
 *      whole body and copies every line (no borrowing, no state carried between feeds).
 * Every piece is fed from its own heap copy that is freed after the feed, so a parser that
 * kept a pointer into an earlier feed trips AddressSanitizer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "upstream/sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_sse: check failed: %s (line %d)\n", #cond, __LINE__);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct rec {
    struct sl_buf log;
    int stop_after; /* the stop_after-th callback returns 77 (0: never) */
    int calls;
    bool stopped; /* a callback already returned non-zero */
};

static void
put_slice(struct sl_buf *b, struct sl_slice s)
{
    uint32_t n = (uint32_t)s.len;
    sl_buf_append(b, &n, sizeof(n));
    sl_buf_append(b, s.ptr, s.len);
}

static int
next_rc(struct rec *r)
{
    CHECK(!r->stopped);
    r->calls++;
    if (r->stop_after != 0 && r->calls == r->stop_after) {
        r->stopped = true;
        return 77;
    }
    return 0;
}

static int
on_event(void *ud, struct sl_slice event, struct sl_slice data, struct sl_slice id)
{
    struct rec *r = ud;
    CHECK(event.ptr != NULL && data.ptr != NULL && id.ptr != NULL);
    sl_buf_append_byte(&r->log, 'E');
    put_slice(&r->log, event);
    put_slice(&r->log, data);
    put_slice(&r->log, id);
    return next_rc(r);
}

static int
on_comment(void *ud, struct sl_slice text)
{
    struct rec *r = ud;
    sl_buf_append_byte(&r->log, 'C');
    put_slice(&r->log, text);
    return next_rc(r);
}

static int
on_ignored(void *ud, struct sl_slice name, struct sl_slice value)
{
    struct rec *r = ud;
    sl_buf_append_byte(&r->log, 'I');
    put_slice(&r->log, name);
    put_slice(&r->log, value);
    return next_rc(r);
}

static const struct sl_sse_callbacks callbacks = {
    .on_event = on_event,
    .on_comment = on_comment,
    .on_ignored_field = on_ignored,
};

struct result {
    int rc, finish;
    int64_t retry;
};

static int
feed_copy(struct sl_sse *p, const uint8_t *data, size_t n)
{
    if (n == 0)
        return sl_sse_feed(p, NULL, 0);
    char *tmp = malloc(n);
    memcpy(tmp, data, n);
    int rc = sl_sse_feed(p, tmp, n);
    memset(tmp, 0xA5, n);
    free(tmp);
    return rc;
}

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* mode 0: whole, 1: byte by byte, 2: random pieces of 0..maxpiece bytes */
static struct result
run_parser(const uint8_t *data, size_t size, size_t max, int mode, uint64_t seed, size_t maxpiece,
           struct rec *r)
{
    struct sl_sse p;
    struct result res = {0, 0, -1};
    sl_sse_init(&p, &callbacks, r, max);
    size_t pos = 0;
    while (pos < size || (mode == 0 && pos == 0)) {
        size_t n = size - pos;
        if (mode == 1)
            n = 1;
        else if (mode == 2)
            n = (size_t)(rnd(&seed) % (maxpiece + 1));
        if (n > size - pos)
            n = size - pos;
        int rc = feed_copy(&p, data + pos, n);
        if (res.rc == 0) {
            res.rc = rc;
        } else {
            CHECK(rc == res.rc); /* a stopped parser stays stopped, silently */
        }
        pos += n;
        if (mode == 0)
            break;
    }
    res.retry = sl_sse_retry_ms(&p);
    size_t logged = sl_buf_len(&r->log);
    res.finish = sl_sse_finish(&p);
    CHECK(sl_buf_len(&r->log) == logged);
    CHECK(sl_sse_finish(&p) == SL_SSE_ERR_STOPPED);
    sl_sse_cleanup(&p);
    return res;
}

/* ---- the reference: the spec's steps, literally, over the whole body ----------------- */

struct ref {
    struct rec *r;
    size_t max;
    struct sl_buf data, type, id;
    bool has_data, in_event;
    int64_t retry;
};

static bool
is(struct sl_slice s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static int
ref_line(struct ref *s, const char *line, size_t n)
{
    if (n == 0) {
        s->in_event = false;
        int rc = 0;
        if (s->has_data)
            rc = on_event(s->r, sl_slice_make(sl_buf_ptr(&s->type), sl_buf_len(&s->type)),
                          sl_slice_make(sl_buf_ptr(&s->data), sl_buf_len(&s->data)),
                          sl_slice_make(sl_buf_ptr(&s->id), sl_buf_len(&s->id)));
        s->has_data = false;
        sl_buf_clear(&s->data);
        sl_buf_clear(&s->type);
        return rc;
    }
    if (line[0] == ':') {
        size_t k = 1;
        if (n > 1 && line[1] == ' ')
            k = 2;
        return on_comment(s->r, sl_slice_make(line + k, n - k));
    }
    size_t colon = 0;
    while (colon < n && line[colon] != ':')
        colon++;
    struct sl_slice name = sl_slice_make(line, colon);
    struct sl_slice value = sl_slice_make("", 0);
    if (colon < n) {
        size_t v = colon + 1;
        if (v < n && line[v] == ' ')
            v++;
        value = sl_slice_make(line + v, n - v);
    }
    s->in_event = true;
    if (is(name, "data")) {
        if (s->has_data) {
            if (sl_buf_len(&s->data) + 1 + value.len > s->max)
                return SL_SSE_ERR_EVENT_TOO_BIG;
            sl_buf_append_byte(&s->data, '\n');
        }
        sl_buf_append(&s->data, value.ptr, value.len);
        s->has_data = true;
    } else if (is(name, "event")) {
        sl_buf_clear(&s->type);
        sl_buf_append(&s->type, value.ptr, value.len);
    } else if (is(name, "id")) {
        if (memchr(value.ptr, 0, value.len) == NULL) {
            sl_buf_clear(&s->id);
            sl_buf_append(&s->id, value.ptr, value.len);
        }
    } else if (is(name, "retry")) {
        bool digits = value.len > 0;
        for (size_t i = 0; i < value.len; i++)
            digits = digits && value.ptr[i] >= '0' && value.ptr[i] <= '9';
        if (digits) {
            /* saturating, as the parser documents */
            int64_t x = 0;
            bool saturated = false;
            for (size_t i = 0; i < value.len; i++) {
                if (__builtin_mul_overflow(x, 10, &x) ||
                    __builtin_add_overflow(x, value.ptr[i] - '0', &x))
                    saturated = true;
            }
            s->retry = saturated ? INT64_MAX : x;
        }
    } else {
        return on_ignored(s->r, name, value);
    }
    return 0;
}

static struct result
run_reference(const uint8_t *data, size_t size, size_t max, struct rec *r)
{
    struct ref s = {.r = r, .max = max, .retry = -1};
    struct result res = {0, 0, -1};
    const char *in = (const char *)data;
    size_t pos = 0;
    bool bom_prefix = size < 3 && size > 0 && memcmp(in, "\xEF\xBB\xBF", size) == 0;

    if (size >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    while (pos < size && !bom_prefix) {
        size_t eol = pos;
        while (eol < size && in[eol] != '\r' && in[eol] != '\n')
            eol++;
        if (eol - pos > max) {
            res.rc = SL_SSE_ERR_LINE_TOO_LONG;
            break;
        }
        if (eol == size) {
            res.finish = 1; /* an unterminated line */
            break;
        }
        res.rc = ref_line(&s, in + pos, eol - pos);
        if (res.rc != 0)
            break;
        pos = eol + 1;
        if (in[eol] == '\r' && pos < size && in[pos] == '\n')
            pos++;
    }
    res.retry = s.retry;
    if (res.rc != 0)
        res.finish = SL_SSE_ERR_STOPPED;
    else if (bom_prefix || s.in_event || s.has_data)
        res.finish = 1;
    sl_buf_free(&s.data);
    sl_buf_free(&s.type);
    sl_buf_free(&s.id);
    return res;
}

/* ---- driver --------------------------------------------------------------------------- */

static uint64_t
fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void
same(const struct rec *a, struct result ra, const struct rec *b, struct result rb)
{
    CHECK(ra.rc == rb.rc);
    CHECK(ra.finish == rb.finish);
    CHECK(ra.retry == rb.retry);
    CHECK(a->calls == b->calls);
    CHECK(sl_buf_len(&a->log) == sl_buf_len(&b->log));
    CHECK(memcmp(sl_buf_ptr(&a->log), sl_buf_ptr(&b->log), sl_buf_len(&a->log)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t h = fnv1a(data, size);
    static const size_t caps[] = {1 << 20, 1 << 20, 1 << 20, 4096, 64, 16, 3, 0};
    size_t max = caps[h % 8];
    int stop_after = (h >> 8) % 4 == 0 ? 1 + (int)((h >> 12) % 16) : 0;
    size_t maxpiece = 1 + (size_t)((h >> 20) % 96);

    struct rec whole = {.stop_after = stop_after};
    struct rec bytes = {.stop_after = stop_after};
    struct rec pieces = {.stop_after = stop_after};
    struct rec ref = {.stop_after = stop_after};
    struct result rw = run_parser(data, size, max, 0, 0, 0, &whole);
    struct result rb = run_parser(data, size, max, 1, 0, 0, &bytes);
    struct result rp = run_parser(data, size, max, 2, h | 1, maxpiece, &pieces);
    struct result rr = run_reference(data, size, max, &ref);

    same(&whole, rw, &bytes, rb);
    same(&whole, rw, &pieces, rp);
    same(&whole, rw, &ref, rr);
    if (rw.rc == 77)
        CHECK(whole.calls == stop_after);
    CHECK(rw.rc == 0 || rw.rc == 77 || rw.rc == SL_SSE_ERR_LINE_TOO_LONG ||
          rw.rc == SL_SSE_ERR_EVENT_TOO_BIG);

    sl_buf_free(&whole.log);
    sl_buf_free(&bytes.log);
    sl_buf_free(&pieces.log);
    sl_buf_free(&ref.log);
    return 0;
}
