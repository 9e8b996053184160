// fuzz-sources: src/net/siocodec.c src/base/buf.c src/base/alloc.c src/base/jsonw.c
// fuzz-sources: src/base/utf8.c src/base/util.c
// fuzz-seeds: tests/fuzz/seeds/sio/* tests/fuzz/seeds/native/*
// fuzz-libs: jansson
/*
 * libFuzzer harness for src/net/siocodec.c: every Socket.IO packet a client sends passes
 * its decoder, and its JSON scanner decides what reaches the handlers as "valid JSON".
 *
 * Checks: slices lie inside the input; a decoded packet written again (head, name, args)
 * decodes to the same fields; and the scanner agrees with jansson on JSON validity, except
 * where JavaScript's JSON.parse (which the scanner follows) and jansson differ (lone
 * surrogate escapes, numbers too large for jansson) or the scanner's depth limit applies.
 */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "net/siocodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static bool
inside(struct sl_slice s, const char *p, size_t n)
{
    return s.len == 0 || (s.ptr >= p && s.ptr + s.len <= p + n);
}

static bool
same(struct sl_slice a, struct sl_slice b)
{
    return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

/* Differences between JSON.parse and jansson that the scanner sides with JSON.parse on. */
static bool
jansson_differs(const char *p, size_t n, const json_error_t *err)
{
    if (strstr(err->text, "too big") || strstr(err->text, "overflow") ||
        strstr(err->text, "nicode") || strstr(err->text, "surrogate"))
        return true;
    /* Depth: count brackets, a cheap upper bound on nesting. */
    size_t open = 0;
    for (size_t i = 0; i < n; i++)
        open += p[i] == '[' || p[i] == '{';
    return open >= SL_SIO_MAX_DEPTH;
}

static void
json_differential(const char *p, size_t n)
{
    /* jansson stops reading a buffer at a NUL byte; raw NULs are invalid JSON anyway. */
    if (memchr(p, '\0', n) != NULL) {
        CHECK(!sl_sio_json_valid(p, n));
        return;
    }
    json_error_t err;
    json_t *j = json_loadb(p, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    bool ours = sl_sio_json_valid(p, n);
    if (j != NULL) {
        json_decref(j);
        /* jansson takes it: so must the scanner, unless it is deeper than allowed. */
        if (!ours) {
            size_t open = 0;
            for (size_t i = 0; i < n; i++)
                open += p[i] == '[' || p[i] == '{';
            CHECK(open >= SL_SIO_MAX_DEPTH);
        }
    } else if (ours) {
        CHECK(jansson_differs(p, n, &err));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned max_att = data[0] % 16;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    json_differential(p, n);

    struct sl_sio_packet pkt;
    int rc = sl_sio_decode(p, n, max_att, &pkt);
    CHECK(rc <= 0 && rc >= SL_SIO_EUTF8);
    if (rc != 0)
        return 0;
    CHECK(pkt.type >= SL_SIO_CONNECT && pkt.type <= SL_SIO_BINARY_ACK);
    CHECK(inside(pkt.nsp, p, n) || same(pkt.nsp, SL_SLICE("/")));
    CHECK(pkt.nsp.len >= 1 && pkt.nsp.ptr[0] == '/' && pkt.nsp.len <= SL_SIO_MAX_NSP);
    CHECK(inside(pkt.data, p, n) && inside(pkt.name, p, n) && inside(pkt.args, p, n));
    CHECK(pkt.attachments <= max_att);
    if (pkt.data.len > 0)
        CHECK(sl_sio_json_valid(pkt.data.ptr, pkt.data.len));

    struct sl_buf b = SL_BUF_INIT;
    sl_sio_write_head(&b, pkt.type, pkt.nsp, pkt.attachments, pkt.id);
    if (pkt.type == SL_SIO_EVENT || pkt.type == SL_SIO_BINARY_EVENT) {
        char name[256];
        long k = sl_sio_string(pkt.name, name, sizeof(name));
        if (k >= 0 && pkt.name.ptr[0] == '"') {
            sl_sio_write_event_data(&b, name, (size_t)k, pkt.args, sl_slice_make(NULL, 0));
            struct sl_sio_packet again;
            CHECK(sl_sio_decode(sl_buf_ptr(&b), sl_buf_len(&b), max_att, &again) == 0);
            CHECK(again.type == pkt.type && again.id == pkt.id && same(again.nsp, pkt.nsp));
            CHECK(again.attachments == pkt.attachments && same(again.args, pkt.args));
            CHECK(again.placeholders == pkt.placeholders);
            char name2[256];
            CHECK(sl_sio_string(again.name, name2, sizeof(name2)) == k);
            CHECK(memcmp(name, name2, (size_t)k) == 0);
        }
    } else if (pkt.type == SL_SIO_ACK || pkt.type == SL_SIO_BINARY_ACK) {
        sl_sio_write_ack_data(&b, pkt.args);
        struct sl_sio_packet again;
        CHECK(sl_sio_decode(sl_buf_ptr(&b), sl_buf_len(&b), max_att, &again) == 0);
        CHECK(again.type == pkt.type && again.id == pkt.id && same(again.args, pkt.args));
    } else if (pkt.type == SL_SIO_CONNECT && pkt.data.len > 0) {
        char v[64];
        (void)sl_sio_member_string(pkt.data, "pid", v, sizeof(v));
    }
    sl_buf_free(&b);
    return 0;
}
