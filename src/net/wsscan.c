#include "net/wsscan.h"

#include <string.h>

#include "base/codes.h"
#include "base/utf8.h"

enum { OP_CONT = 0, OP_TEXT = 1, OP_BINARY = 2, OP_CLOSE = 8, OP_PING = 9, OP_PONG = 10 };

void
sl_wsscan_init(struct sl_wsscan *s, uint64_t max_message, bool allow_binary)
{
    memset(s, 0, sizeof(*s));
    s->max_message = max_message;
    s->allow_binary = allow_binary;
    s->hneed = 2;
}

bool
sl_wsscan_idle(const struct sl_wsscan *s)
{
    return s->hlen == 0 && !s->in_payload && s->msg_opcode == 0;
}

bool
sl_ws_close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006) ||
           (code >= 3000 && code <= 4999);
}

static int
fail(struct sl_wsscan_error *err, uint16_t code, const char *reason)
{
    err->code = code;
    err->reason = reason;
    return -1;
}

/* Called once the whole header is in s->hdr; validates it and enters the payload. */
static int
header_done(struct sl_wsscan *s, struct sl_wsscan_error *err)
{
    uint8_t b0 = s->hdr[0], b1 = s->hdr[1];
    uint64_t len = b1 & 0x7F;
    const uint8_t *m;

    if (len == 126) {
        len = (uint64_t)s->hdr[2] << 8 | s->hdr[3];
        m = s->hdr + 4;
    } else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | s->hdr[2 + i];
        if (len >> 63)
            return fail(err, SL_CLOSE_PROTOCOL_ERROR, "invalid payload length");
        m = s->hdr + 10;
    } else {
        m = s->hdr + 2;
    }
    memcpy(s->mask, m, 4);
    s->fin = (b0 & 0x80) != 0;
    s->opcode = b0 & 0x0F;
    s->payload_left = len;
    s->payload_off = 0;

    if (s->opcode >= 8) {
        if (!s->fin)
            return fail(err, SL_CLOSE_PROTOCOL_ERROR, "fragmented control frame");
        if (len > 125)
            return fail(err, SL_CLOSE_PROTOCOL_ERROR, "control frame payload over 125 bytes");
        if (s->opcode == OP_CLOSE && len == 1)
            return fail(err, SL_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload");
        s->close_utf8 = 0;
    } else {
        if (s->opcode == OP_CONT) {
            if (s->msg_opcode == 0)
                return fail(err, SL_CLOSE_PROTOCOL_ERROR, "continuation frame without a message");
            if (++s->msg_frames >
                SL_WSSCAN_MAX_FRAGMENTS + (s->msg_len + len) / SL_WSSCAN_BYTES_PER_FRAGMENT)
                return fail(err, SL_CLOSE_POLICY,
                            "message split into too many frames (over 1024 plus one per 64 bytes)");
        } else {
            if (s->msg_opcode != 0)
                return fail(err, SL_CLOSE_PROTOCOL_ERROR,
                            "new message before the fragmented one ended");
            if (s->opcode == OP_BINARY && !s->allow_binary)
                return fail(err, SL_CLOSE_UNSUPPORTED,
                            "binary messages are not supported; send JSON text");
            s->msg_opcode = s->opcode;
            s->msg_compressed = (b0 & 0x40) != 0;
            s->msg_frames = 1;
            s->msg_len = 0;
            s->utf8 = 0;
        }
        if (len > s->max_message || s->msg_len + len > s->max_message)
            return fail(err, SL_CLOSE_TOO_BIG, "message too big");
        s->msg_len += len;
    }
    s->in_payload = true;
    return 0;
}

/* The current frame's payload is complete. */
static int
frame_done(struct sl_wsscan *s, struct sl_wsscan_error *err)
{
    s->in_payload = false;
    s->hlen = 0;
    s->hneed = 2;
    if (s->opcode == OP_CLOSE) {
        if (s->payload_off >= 2) {
            unsigned code = (unsigned)s->close_code[0] << 8 | s->close_code[1];
            if (!sl_ws_close_code_valid(code))
                return fail(err, SL_CLOSE_PROTOCOL_ERROR, "invalid close code");
            if (s->close_utf8 != 0)
                return fail(err, SL_CLOSE_INVALID_DATA, "close reason is not valid UTF-8");
        }
    } else if (s->opcode < 8 && s->fin) {
        if (s->msg_opcode == OP_TEXT && !s->msg_compressed && s->utf8 != 0)
            return fail(err, SL_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
        s->msg_opcode = 0;
    }
    return 0;
}

/* Unmasks and validates a run of payload bytes that need UTF-8 checking. */
static int
scan_text(struct sl_wsscan *s, const uint8_t *p, size_t n, uint32_t *state, size_t skip_first)
{
    uint8_t tmp[256];
    size_t i = 0;
    while (i < n) {
        size_t chunk = n - i < sizeof(tmp) ? n - i : sizeof(tmp);
        size_t k = 0;
        for (size_t j = 0; j < chunk; j++) {
            uint64_t off = s->payload_off + i + j;
            uint8_t c = p[i + j] ^ s->mask[off & 3];
            if (off < skip_first)
                s->close_code[off] = c;
            else
                tmp[k++] = c;
        }
        if (sl_utf8_feed(state, tmp, k) != 0)
            return -1;
        i += chunk;
    }
    return 0;
}

int
sl_wsscan_feed(struct sl_wsscan *s, const uint8_t *p, size_t n, size_t *ok_len,
               struct sl_wsscan_error *err)
{
    size_t i = 0;
    size_t frame_start = s->hlen == 0 && !s->in_payload ? 0 : SIZE_MAX;
    *ok_len = 0;

    while (i < n) {
        if (!s->in_payload) {
            if (s->hlen == 0)
                frame_start = i;
            s->hdr[s->hlen++] = p[i++];
            if (s->hlen == 1) {
                uint8_t b0 = s->hdr[0];
                uint8_t op = b0 & 0x0F;
                if (b0 & 0x30)
                    goto fail_at_frame_rsv;
                if (b0 & 0x40) {
                    if (!s->allow_rsv1)
                        goto fail_at_frame_rsv;
                    if (op != OP_TEXT && op != OP_BINARY)
                        goto fail_at_frame_rsv1;
                }
                if (!(op <= 2 || (op >= 8 && op <= 10)))
                    goto fail_at_frame_op;
            } else if (s->hlen == 2) {
                uint8_t b1 = s->hdr[1];
                if (!(b1 & 0x80))
                    goto fail_at_frame_mask;
                uint8_t len7 = b1 & 0x7F;
                s->hneed = len7 == 126 ? 8 : len7 == 127 ? 14 : 6;
            }
            if (s->hlen == s->hneed) {
                if (header_done(s, err) != 0)
                    goto fail_at_frame;
                if (s->payload_left == 0 && frame_done(s, err) != 0)
                    goto fail_at_frame;
            }
            continue;
        }

        size_t avail = n - i;
        size_t take = s->payload_left < avail ? (size_t)s->payload_left : avail;
        if ((s->opcode == OP_TEXT || (s->opcode == OP_CONT && s->msg_opcode == OP_TEXT)) &&
            !s->msg_compressed) {
            if (scan_text(s, p + i, take, &s->utf8, 0) != 0) {
                fail(err, SL_CLOSE_INVALID_DATA, "text message is not valid UTF-8");
                goto fail_at_frame;
            }
        } else if (s->opcode == OP_CLOSE) {
            if (scan_text(s, p + i, take, &s->close_utf8, 2) != 0) {
                fail(err, SL_CLOSE_INVALID_DATA, "close reason is not valid UTF-8");
                goto fail_at_frame;
            }
        }
        s->payload_off += take;
        s->payload_left -= take;
        i += take;
        if (s->payload_left == 0 && frame_done(s, err) != 0)
            goto fail_at_frame;
    }
    *ok_len = n;
    return 0;

fail_at_frame_rsv:
    fail(err, SL_CLOSE_PROTOCOL_ERROR, "reserved bits set without an extension");
    goto fail_at_frame;
fail_at_frame_rsv1:
    fail(err, SL_CLOSE_PROTOCOL_ERROR, "RSV1 set on a continuation or control frame");
    goto fail_at_frame;
fail_at_frame_op:
    fail(err, SL_CLOSE_PROTOCOL_ERROR, "reserved opcode");
    goto fail_at_frame;
fail_at_frame_mask:
    fail(err, SL_CLOSE_PROTOCOL_ERROR, "client frames must be masked");
fail_at_frame:
    *ok_len = frame_start == SIZE_MAX ? 0 : frame_start;
    return -1;
}
