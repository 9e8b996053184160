#include "net/wsdeflate.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/alloc.h"
#include "base/codes.h"

struct sl_wsdeflate {
    z_stream def; /* valid while def_live */
    bool def_live;
    bool no_context_takeover; /* the compressor is freed after every message */
    int window_bits;
    int level;
    int mem_level;
    size_t mem; /* bytes zlib holds through zalloc */
};

/* zlib's allocations, counted (a size header in front of each block) and fatal on failure
 * like every other allocation of sluice (base/alloc.h). */
struct zhdr {
    size_t n;
    max_align_t align;
};

static voidpf
zalloc(voidpf opaque, uInt items, uInt size)
{
    struct sl_wsdeflate *d = opaque;
    size_t n = (size_t)items * size;
    struct zhdr *h = sl_malloc(offsetof(struct zhdr, align) + n);
    h->n = n;
    d->mem += n;
    return (char *)h + offsetof(struct zhdr, align);
}

static void
zfree(voidpf opaque, voidpf p)
{
    struct sl_wsdeflate *d = opaque;
    struct zhdr *h = (struct zhdr *)((char *)p - offsetof(struct zhdr, align));
    d->mem -= h->n;
    free(h);
}

struct sl_wsdeflate *
sl_wsdeflate_new(const struct sl_ws_deflate_params *p, int level, int mem_level)
{
    struct sl_wsdeflate *d = sl_calloc(1, sizeof(*d));
    d->no_context_takeover = p->server_no_context_takeover;
    d->window_bits = p->server_window_bits;
    d->level = level;
    d->mem_level = mem_level;
    return d;
}

static void
end_deflate(struct sl_wsdeflate *d)
{
    if (d->def_live) {
        deflateEnd(&d->def);
        d->def_live = false;
    }
}

void
sl_wsdeflate_free(struct sl_wsdeflate *d)
{
    if (d == NULL)
        return;
    end_deflate(d);
    free(d);
}

size_t
sl_wsdeflate_memory(const struct sl_wsdeflate *d)
{
    return d->mem;
}

bool
sl_wsdeflate_compress(struct sl_wsdeflate *d, const void *msg, size_t len, struct sl_buf *out)
{
    if (d->no_context_takeover && len < SL_WSDEFLATE_MIN_ALONE)
        return false;
    if (len == 0) {
        /* An empty stored block (its LEN/NLEN taken off like any tail): zlib would write
         * nothing, since it refuses a second flush with no input in between. */
        sl_buf_append_byte(out, 0);
        return true;
    }
    if (!d->def_live) {
        memset(&d->def, 0, sizeof(d->def));
        d->def.zalloc = zalloc;
        d->def.zfree = zfree;
        d->def.opaque = d;
        /* Negative window bits: a raw deflate stream, no zlib header or checksum. */
        int r = deflateInit2(&d->def, d->level, Z_DEFLATED, -d->window_bits, d->mem_level,
                             Z_DEFAULT_STRATEGY);
        if (r != Z_OK)
            sl_panic("deflateInit2 failed (%d)", r);
        d->def_live = true;
    }
    size_t start = sl_buf_len(out);
    d->def.next_in = (Bytef *)(uintptr_t)msg;
    /* uInt: feed a message larger than 4 GiB in pieces (never happens: limits are lower). */
    size_t left = len;
    for (;;) {
        uInt in = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
        d->def.avail_in = in;
        size_t room = (size_t)in + (size_t)in / 8 + 64;
        d->def.next_out = (Bytef *)sl_buf_reserve(out, room);
        d->def.avail_out = (uInt)room;
        int r = deflate(&d->def, left > in ? Z_NO_FLUSH : Z_SYNC_FLUSH);
        sl_assert(r == Z_OK || r == Z_BUF_ERROR);
        sl_buf_commit(out, room - d->def.avail_out);
        left -= in - d->def.avail_in;
        /* A sync flush is complete once it returns with output space to spare. */
        if (left == 0 && d->def.avail_out > 0)
            break;
    }
    size_t n = sl_buf_len(out) - start;
    const unsigned char *tail = (const unsigned char *)sl_buf_ptr(out) + sl_buf_len(out) - 4;
    sl_assert(n >= 4 && tail[0] == 0 && tail[1] == 0 && tail[2] == 0xff && tail[3] == 0xff);
    out->len -= 4;
    if (!d->no_context_takeover)
        return true;
    end_deflate(d);
    if (n - 4 < len)
        return true;
    out->len -= n - 4;
    return false;
}

int
sl_wsdeflate_decompress(struct sl_wsdeflate *d, const void *in, size_t len, uint64_t max,
                        struct sl_buf *out, const char **why)
{
    static const unsigned char tail[4] = {0, 0, 0xff, 0xff};
    z_stream z;
    memset(&z, 0, sizeof(z));
    z.zalloc = zalloc;
    z.zfree = zfree;
    z.opaque = d;
    /* 15 bits decodes whatever window the client used; the stream lives for this call only. */
    int ir = inflateInit2(&z, -15);
    if (ir != Z_OK)
        sl_panic("inflateInit2 failed (%d)", ir);

    int code = 0;
    bool ended = false;
    size_t start = sl_buf_len(out);
    const unsigned char *src[2] = {in, tail};
    size_t srclen[2] = {len, sizeof(tail)};
    for (int part = 0; part < 2 && code == 0 && !ended; part++) {
        z.next_in = (Bytef *)(uintptr_t)src[part];
        size_t left = srclen[part];
        for (;;) {
            uInt chunk = left > UINT32_MAX ? UINT32_MAX : (uInt)left;
            z.avail_in = chunk;
            size_t produced = sl_buf_len(out) - start;
            /* Room for what may still be allowed, plus one byte to see the limit crossed;
             * grown geometrically, so that a small message costs a small buffer. */
            size_t room = (size_t)(max - produced) + 1;
            size_t step = produced < 4096 ? 4096 : produced;
            if (room > step)
                room = step;
            if (room > UINT32_MAX)
                room = UINT32_MAX;
            z.next_out = (Bytef *)sl_buf_reserve(out, room);
            z.avail_out = (uInt)room;
            int r = inflate(&z, Z_SYNC_FLUSH);
            sl_buf_commit(out, room - z.avail_out);
            left -= chunk - z.avail_in;
            if (sl_buf_len(out) - start > max) {
                code = SL_CLOSE_TOO_BIG;
                *why = "message too big once decompressed";
                break;
            }
            if (r == Z_STREAM_END) {
                /* The message ended with a final block (RFC 7692 7.2.3.3 allows it); the
                 * appended empty block is then not needed, but nothing else may follow. */
                if (left > 0) {
                    code = SL_CLOSE_INVALID_DATA;
                    *why = "data after the end of the compressed message";
                }
                ended = true;
                break;
            }
            if (r != Z_OK && r != Z_BUF_ERROR) {
                code = SL_CLOSE_INVALID_DATA;
                *why = "invalid compressed data";
                break;
            }
            if (left == 0 && z.avail_out > 0)
                break; /* this part is consumed and all its output is out */
        }
    }
    inflateEnd(&z);
    if (code != 0)
        out->len = out->off + start;
    return code;
}
