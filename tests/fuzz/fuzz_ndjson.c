// fuzz-sources: src/upstream/ndjson.c src/base/buf.c src/base/alloc.c
// fuzz-seeds: @fixtures/*/*.ndjson
/*
 * libFuzzer harness for src/upstream/ndjson.
 *
 * The whole input is the body; the cap, the callback that stops and the cut sizes are
 * derived from a hash of it. The body is split four ways (whole, byte by byte, pseudo-random
 * pieces with empty feeds, and a naive reference splitter written here), which must deliver
 * the same lines, feed result, finish result and tail. Each piece is fed from its own heap
 * copy, freed right after the feed, so a pointer kept into an earlier feed trips ASan.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "upstream/ndjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_ndjson: check failed: %s (line %d)\n", #cond, __LINE__);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct rec {
    struct sl_buf log;
    int stop_after; /* the stop_after-th line returns 55 (0: never) */
    int calls;
    bool stopped;
};

static int
on_line(void *ud, struct sl_slice line)
{
    struct rec *r = ud;
    CHECK(!r->stopped);
    CHECK(line.ptr != NULL && line.len > 0);
    CHECK(memchr(line.ptr, '\n', line.len) == NULL);
    bool all_blank = true;
    for (size_t i = 0; i < line.len; i++)
        all_blank = all_blank && strchr(" \t\r", line.ptr[i]) != NULL && line.ptr[i] != 0;
    CHECK(!all_blank); /* blank lines are skipped */
    uint32_t n = (uint32_t)line.len;
    sl_buf_append(&r->log, &n, sizeof(n));
    sl_buf_append(&r->log, line.ptr, line.len);
    r->calls++;
    if (r->stop_after != 0 && r->calls == r->stop_after) {
        r->stopped = true;
        return 55;
    }
    return 0;
}

struct result {
    int rc, finish;
    struct sl_buf tail;
};

static int
feed_copy(struct sl_ndjson *p, const uint8_t *data, size_t n)
{
    if (n == 0)
        return sl_ndjson_feed(p, NULL, 0);
    char *tmp = malloc(n);
    memcpy(tmp, data, n);
    int rc = sl_ndjson_feed(p, tmp, n);
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
    struct sl_ndjson p;
    struct result res = {0, 0, SL_BUF_INIT};
    sl_ndjson_init(&p, on_line, r, max);
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
            CHECK(rc == res.rc);
        }
        pos += n;
        if (mode == 0)
            break;
    }
    struct sl_slice tail = {NULL, 0};
    int calls = r->calls;
    res.finish = sl_ndjson_finish(&p, &tail);
    CHECK(r->calls == calls);
    if (res.finish >= 0) {
        CHECK(tail.ptr != NULL);
        sl_buf_append(&res.tail, tail.ptr, tail.len);
    }
    CHECK(sl_ndjson_finish(&p, NULL) == SL_NDJSON_ERR_STOPPED);
    sl_ndjson_cleanup(&p);
    return res;
}

static bool
blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    }
    return true;
}

/* The naive version: look for each LF in the whole body and copy every line. */
static struct result
run_reference(const uint8_t *data, size_t size, size_t max, struct rec *r)
{
    struct result res = {0, 0, SL_BUF_INIT};
    const char *in = (const char *)data;
    size_t pos = 0;
    for (;;) {
        size_t eol = pos;
        while (eol < size && in[eol] != '\n')
            eol++;
        if (eol - pos > max) {
            res.rc = SL_NDJSON_ERR_LINE_TOO_LONG;
            break;
        }
        if (eol == size) {
            sl_buf_append(&res.tail, in + pos, size - pos);
            res.finish = blank(in + pos, size - pos) ? 0 : 1;
            break;
        }
        size_t n = eol - pos;
        char *copy = malloc(n + 1);
        memcpy(copy, in + pos, n);
        if (n > 0 && copy[n - 1] == '\r')
            n--;
        if (!blank(copy, n))
            res.rc = on_line(r, sl_slice_make(copy, n));
        free(copy);
        if (res.rc != 0)
            break;
        pos = eol + 1;
    }
    if (res.rc != 0)
        res.finish = SL_NDJSON_ERR_STOPPED;
    return res;
}

static uint64_t
fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void
same(const struct rec *a, const struct result *ra, const struct rec *b, const struct result *rb)
{
    CHECK(ra->rc == rb->rc);
    CHECK(ra->finish == rb->finish);
    CHECK(a->calls == b->calls);
    CHECK(sl_buf_len(&a->log) == sl_buf_len(&b->log));
    CHECK(memcmp(sl_buf_ptr(&a->log), sl_buf_ptr(&b->log), sl_buf_len(&a->log)) == 0);
    if (ra->rc == 0) {
        CHECK(sl_buf_len(&ra->tail) == sl_buf_len(&rb->tail));
        CHECK(memcmp(sl_buf_ptr(&ra->tail), sl_buf_ptr(&rb->tail), sl_buf_len(&ra->tail)) == 0);
    }
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

    same(&whole, &rw, &bytes, &rb);
    same(&whole, &rw, &pieces, &rp);
    same(&whole, &rw, &ref, &rr);
    CHECK(rw.rc == 0 || rw.rc == 55 || rw.rc == SL_NDJSON_ERR_LINE_TOO_LONG);

    struct result *all[] = {&rw, &rb, &rp, &rr};
    for (size_t i = 0; i < 4; i++)
        sl_buf_free(&all[i]->tail);
    sl_buf_free(&whole.log);
    sl_buf_free(&bytes.log);
    sl_buf_free(&pieces.log);
    sl_buf_free(&ref.log);
    return 0;
}
