// fuzz-sources: src/net/wsscan.c src/base/utf8.c
// fuzz-seeds: tests/fuzz/seeds/ws/*
/*
 * libFuzzer harness for src/net/wsscan.c, the first code to see a client's WebSocket bytes.
 *
 * The input is a client byte stream. It is scanned whole and again split at a position
 * derived from the input; both must agree on the verdict, the close code and how many
 * leading bytes were accepted, and an accepted stream's idle state must match.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/wsscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

struct verdict {
    int rc;
    uint16_t code;
    size_t accepted;
    bool idle;
};

static struct verdict
scan(const uint8_t *p, size_t n, size_t cut, uint64_t max, bool binary, bool rsv1)
{
    struct sl_wsscan s;
    struct sl_wsscan_error err = {0};
    struct verdict v = {0, 0, 0, false};
    size_t ok = 0;
    sl_wsscan_init(&s, max, binary);
    s.allow_rsv1 = rsv1;
    /* Each piece from its own copy so that nothing may be kept across feeds. */
    uint8_t *a = malloc(cut ? cut : 1);
    memcpy(a, p, cut);
    v.rc = sl_wsscan_feed(&s, a, cut, &ok, &err);
    free(a);
    v.accepted = ok;
    if (v.rc == 0) {
        uint8_t *b = malloc(n - cut ? n - cut : 1);
        memcpy(b, p + cut, n - cut);
        v.rc = sl_wsscan_feed(&s, b, n - cut, &ok, &err);
        free(b);
        v.accepted = cut + ok;
    }
    if (v.rc != 0) {
        v.code = err.code;
        CHECK(err.reason != NULL && err.reason[0] != '\0');
        CHECK(v.code == 1002 || v.code == 1003 || v.code == 1007 || v.code == 1008 ||
              v.code == 1009);
    } else {
        v.idle = sl_wsscan_idle(&s);
    }
    return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint64_t max = 1 + (data[0] % 64) * 16;
    bool binary = data[1] & 1;
    bool rsv1 = data[1] & 2; /* permessage-deflate negotiated */
    data += 2;
    size -= 2;
    struct verdict whole = scan(data, size, size, max, binary, rsv1);
    size_t cut = size ? (size_t)data[0] % (size + 1) : 0;
    struct verdict split = scan(data, size, cut, max, binary, rsv1);
    CHECK(whole.rc == split.rc);
    CHECK(whole.code == split.code);
    CHECK(whole.idle == split.idle);
    /* A failure found in the second piece reports the frame start it knows of. */
    if (whole.rc == 0)
        CHECK(whole.accepted == size && split.accepted == size);
    else
        CHECK(split.accepted <= whole.accepted || split.accepted == cut);
    return 0;
}
