// fuzz-sources: src/net/eiocodec.c src/base/buf.c src/base/alloc.c src/base/jsonw.c
// fuzz-sources: src/base/utf8.c src/base/util.c
// fuzz-seeds: tests/fuzz/seeds/eio/*
/*
 * libFuzzer harness for src/net/eiocodec.c, the first code to see an Engine.IO client's
 * long-polling bodies and WebSocket text frames.
 *
 * The input is decoded as a long-polling body and as one text packet. Every slice must lie
 * inside the input, a binary packet's base64 must decode (the iterator promised it) within
 * the announced bound, and what was decoded, written again, must decode to the same
 * packets (writing and reading agree).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "net/eiocodec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAXP 64

struct decoded {
    int n;
    int rc;
    int type[MAXP];
    bool binary[MAXP];
    struct sl_buf data[MAXP]; /* binary: the decoded bytes */
};

static void
decode(const char *p, size_t n, struct decoded *d)
{
    struct sl_eio_payload it;
    struct sl_eio_packet pkt;
    memset(d, 0, sizeof(*d));
    sl_eio_payload_init(&it, p, n);
    while (d->n < MAXP && (d->rc = sl_eio_payload_next(&it, &pkt)) > 0) {
        CHECK(pkt.type >= SL_EIO_OPEN && pkt.type <= SL_EIO_NOOP);
        CHECK(pkt.data.ptr >= p && pkt.data.ptr + pkt.data.len <= p + n);
        CHECK(memchr(pkt.data.ptr, SL_EIO_SEP, pkt.data.len) == NULL);
        d->type[d->n] = pkt.type;
        d->binary[d->n] = pkt.binary;
        if (pkt.binary) {
            CHECK(pkt.type == SL_EIO_MESSAGE);
            uint8_t *bin = malloc(sl_eio_base64_max(pkt.data.len));
            long k = sl_eio_base64_decode(bin, pkt.data.ptr, pkt.data.len);
            CHECK(k >= 0 && (size_t)k <= sl_eio_base64_max(pkt.data.len));
            sl_buf_append(&d->data[d->n], bin, (size_t)k);
            free(bin);
        } else {
            sl_buf_append(&d->data[d->n], pkt.data.ptr, pkt.data.len);
        }
        d->n++;
    }
}

static void
release(struct decoded *d)
{
    for (int i = 0; i < MAXP; i++)
        sl_buf_free(&d->data[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct sl_eio_packet pkt;
    int rc = sl_eio_decode_text(p, size, &pkt);
    if (rc == 0) {
        CHECK(size > 0 && pkt.data.ptr == p + 1 && pkt.data.len == size - 1);
    } else {
        CHECK(rc == SL_EIO_EEMPTY || rc == SL_EIO_ETYPE);
    }

    struct decoded a, b;
    decode(p, size, &a);
    CHECK(a.rc <= 1);
    /* Written again, the packets read back the same. */
    struct sl_buf out = SL_BUF_INIT;
    for (int i = 0; i < a.n; i++) {
        if (i > 0)
            sl_buf_append_byte(&out, SL_EIO_SEP);
        if (a.binary[i])
            sl_eio_write_base64(&out, sl_buf_ptr(&a.data[i]), sl_buf_len(&a.data[i]));
        else
            sl_eio_write_text(&out, (enum sl_eio_type)a.type[i], sl_buf_ptr(&a.data[i]),
                              sl_buf_len(&a.data[i]));
    }
    if (a.n > 0) {
        decode(sl_buf_ptr(&out), sl_buf_len(&out), &b);
        CHECK(b.n == a.n);
        if (a.n < MAXP)
            CHECK(b.rc == 0);
        for (int i = 0; i < a.n; i++) {
            CHECK(a.type[i] == b.type[i] && a.binary[i] == b.binary[i]);
            CHECK(sl_buf_len(&a.data[i]) == sl_buf_len(&b.data[i]));
            CHECK(memcmp(sl_buf_ptr(&a.data[i]), sl_buf_ptr(&b.data[i]), sl_buf_len(&a.data[i])) ==
                  0);
        }
        release(&b);
    }
    sl_buf_free(&out);
    release(&a);
    return 0;
}
