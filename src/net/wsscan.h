/*
 * A validating scanner for the client-to-server WebSocket byte stream (RFC 6455).
 *
 * wslay decodes frames, reassembles messages and runs the close handshake, but it
 * answers protocol violations with a bare close code. sluice wants every close to
 * carry a reason the client can act on, refuses binary on its JSON endpoints, and
 * must know when a connection sits between messages so that an idle connection can
 * give its wslay context (over 4 KiB) back. So every byte read from a client passes
 * this scanner first; only what it accepts is handed to wslay.
 *
 * The scanner checks: reserved bits (RSV1 only on the first frame of a message, and only
 * when permessage-deflate was negotiated) and opcodes, masking, control frame rules,
 * fragmentation order, the message size limit (of the bytes on the wire: a compressed
 * message is measured again once decompressed), the number of frames a message is split
 * into (zero-length fragments cost nothing to send and would keep a message, and the
 * connection, open forever), binary refusal, UTF-8 of text messages (across frames and
 * reads), and close frame payloads. It never allocates.
 */
#ifndef SL_NET_WSSCAN_H
#define SL_NET_WSSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The most frames one message may be split into (1008 past it): 1024, plus one for every
 * 64 bytes of the message. Tiny frames of a large message are legitimate (Autobahn's 9.3.1
 * sends 4 MiB in 64-byte frames); what must not pass is frames that carry nothing, which
 * would keep a message open forever for 6 bytes each.
 */
#define SL_WSSCAN_MAX_FRAGMENTS 1024
#define SL_WSSCAN_BYTES_PER_FRAGMENT 64

struct sl_wsscan {
    uint64_t max_message; /* bytes; a message larger than this is refused with 1009 */
    bool allow_binary;    /* else 1003 at the first binary frame */
    bool allow_rsv1;      /* permessage-deflate: RSV1 marks a compressed message */

    /* current frame */
    uint8_t hdr[14];
    uint8_t hlen;  /* header bytes collected so far */
    uint8_t hneed; /* header bytes needed (2, 4, 8 or 14 once known) */
    uint8_t opcode;
    bool fin;
    bool in_payload;
    uint8_t mask[4];
    uint64_t payload_left;
    uint64_t payload_off; /* for unmasking */

    /* current message (data frames) */
    uint8_t msg_opcode;  /* 0 none, 1 text, 2 binary */
    bool msg_compressed; /* its first frame had RSV1: UTF-8 is checked once decompressed */
    uint32_t msg_frames;
    uint64_t msg_len;
    uint32_t utf8;

    /* close frame payload */
    uint8_t close_code[2];
    uint32_t close_utf8;
};

struct sl_wsscan_error {
    uint16_t code;      /* close code to send */
    const char *reason; /* static text for the close frame */
};

void sl_wsscan_init(struct sl_wsscan *s, uint64_t max_message, bool allow_binary);

/*
 * Scans n bytes. Returns 0 if all of them are acceptable. On a violation returns -1,
 * fills *err, and sets *ok_len to the number of leading bytes that form complete frames
 * preceding the offending one (they may still be processed); the stream is then dead.
 */
int sl_wsscan_feed(struct sl_wsscan *s, const uint8_t *p, size_t n, size_t *ok_len,
                   struct sl_wsscan_error *err);

/* True between frames with no fragmented message in progress. */
bool sl_wsscan_idle(const struct sl_wsscan *s);

/* Whether a close status code may appear on the wire (RFC 6455 7.4, as wslay checks it). */
bool sl_ws_close_code_valid(unsigned code);

#endif
