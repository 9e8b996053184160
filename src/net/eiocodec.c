#include "net/eiocodec.h"

#include <string.h>

#include "base/jsonw.h"
#include "base/utf8.h"

const char *
sl_eio_strerror(int err)
{
    /* clang-format off */
    switch (err) {
    case 0: return "ok";
    case SL_EIO_EEMPTY: return "empty Engine.IO packet";
    case SL_EIO_ETYPE: return "unknown Engine.IO packet type";
    case SL_EIO_EBASE64: return "invalid base64 in a binary Engine.IO packet";
    case SL_EIO_EUTF8: return "Engine.IO payload is not valid UTF-8";
    default: return "invalid Engine.IO packet";
    }
    /* clang-format on */
}

static long b64(uint8_t *out, const char *in, size_t n);

static int
decode_typed(const char *p, size_t n, struct sl_eio_packet *out)
{
    if (n == 0)
        return SL_EIO_EEMPTY;
    if (p[0] < '0' || p[0] > '6')
        return SL_EIO_ETYPE;
    out->type = (enum sl_eio_type)(p[0] - '0');
    out->binary = false;
    out->data = sl_slice_make(p + 1, n - 1);
    return 0;
}

int
sl_eio_decode_text(const char *p, size_t n, struct sl_eio_packet *out)
{
    return decode_typed(p, n, out);
}

void
sl_eio_payload_init(struct sl_eio_payload *it, const char *p, size_t n)
{
    it->p = p;
    it->end = p + n;
    it->done = false;
    it->err = sl_utf8_valid(p, n) ? 0 : SL_EIO_EUTF8;
}

int
sl_eio_payload_next(struct sl_eio_payload *it, struct sl_eio_packet *out)
{
    if (it->done)
        return 0;
    if (it->err != 0) {
        it->done = true;
        return it->err;
    }
    const char *sep = memchr(it->p, SL_EIO_SEP, (size_t)(it->end - it->p));
    const char *pe = sep ? sep : it->end;
    const char *p = it->p;
    size_t n = (size_t)(pe - p);
    if (sep)
        it->p = sep + 1;
    else
        it->done = true;
    if (n > 0 && p[0] == 'b') {
        /* Checked here, so that sl_eio_base64_decode() of it cannot fail later. */
        if (b64(NULL, p + 1, n - 1) < 0) {
            it->done = true;
            return SL_EIO_EBASE64;
        }
        out->type = SL_EIO_MESSAGE;
        out->binary = true;
        out->data = sl_slice_make(p + 1, n - 1);
        return 1;
    }
    int rc = decode_typed(p, n, out);
    if (rc != 0) {
        it->done = true;
        return rc;
    }
    return 1;
}

static int
b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes into out, or only checks when out is NULL. */
static long
b64(uint8_t *out, const char *in, size_t n)
{
    /* Padding: at most two '=', and only to complete the last quantum. */
    size_t pad = 0;
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if ((pad > 0 && (n + pad) % 4 != 0) || n % 4 == 1)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (out)
                out[o] = (uint8_t)(acc >> bits);
            o++;
        }
    }
    return (long)o;
}

long
sl_eio_base64_decode(uint8_t *out, const char *in, size_t n)
{
    return b64(out, in, n);
}

void
sl_eio_write_text(struct sl_buf *b, enum sl_eio_type type, const char *data, size_t n)
{
    char *dst = sl_buf_reserve(b, n + 1);
    dst[0] = (char)('0' + type);
    if (n > 0)
        memcpy(dst + 1, data, n);
    sl_buf_commit(b, n + 1);
}

void
sl_eio_write_base64(struct sl_buf *b, const void *data, size_t n)
{
    size_t enc = (n + 2) / 3 * 4;
    char *dst = sl_buf_reserve(b, enc + 2);
    dst[0] = 'b';
    sl_base64_encode(dst + 1, data, n);
    sl_buf_commit(b, enc + 1);
}

void
sl_eio_write_open(struct sl_buf *b, const char *sid, bool upgrade_websocket,
                  uint64_t ping_interval_ms, uint64_t ping_timeout_ms, uint64_t max_payload)
{
    SL_JSONW_LIT(b, "0{\"sid\":");
    sl_jsonw_cstr(b, sid);
    if (upgrade_websocket)
        SL_JSONW_LIT(b, ",\"upgrades\":[\"websocket\"],\"pingInterval\":");
    else
        SL_JSONW_LIT(b, ",\"upgrades\":[],\"pingInterval\":");
    sl_jsonw_uint(b, ping_interval_ms);
    SL_JSONW_LIT(b, ",\"pingTimeout\":");
    sl_jsonw_uint(b, ping_timeout_ms);
    SL_JSONW_LIT(b, ",\"maxPayload\":");
    sl_jsonw_uint(b, max_payload);
    sl_buf_append_byte(b, '}');
}
