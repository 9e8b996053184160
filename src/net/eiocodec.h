/*
 * Engine.IO v4 packets: decoding and encoding, I/O-free.
 *
 * An Engine.IO packet is a type digit and optional data: "4hello" is a message, "2" a ping,
 * "3probe" a pong with data. Over WebSocket each packet is one frame, and a binary frame
 * is a message whose bytes are the data (no type). Over HTTP long-polling several packets
 * travel in one body, joined by the record separator 0x1e, a binary message written as
 * "b" followed by its bytes in base64 ("4hello\x1ebAQIDBA==").
 *
 * Like net/wsscan.c, this is the first code to see a client's Engine.IO bytes, so it
 * depends on libc only, never allocates (decoded slices point into the input; base64 is
 * decoded into a buffer the caller provides), and is fuzzed (tests/fuzz/fuzz_eiocodec.c).
 * Writing appends to an sl_buf.
 */
#ifndef SL_NET_EIOCODEC_H
#define SL_NET_EIOCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"

enum sl_eio_type {
    SL_EIO_OPEN = 0,
    SL_EIO_CLOSE = 1,
    SL_EIO_PING = 2,
    SL_EIO_PONG = 3,
    SL_EIO_MESSAGE = 4,
    SL_EIO_UPGRADE = 5,
    SL_EIO_NOOP = 6,
};

/* The separator of packets in a long-polling body. */
#define SL_EIO_SEP '\x1e'

/* Decoding errors (negative; 0 is success). */
enum sl_eio_err {
    SL_EIO_EEMPTY = -1,  /* a packet without even a type */
    SL_EIO_ETYPE = -2,   /* the type is not 0-6 (nor "b" in a payload) */
    SL_EIO_EBASE64 = -3, /* "b" followed by something that is not base64 */
    SL_EIO_EUTF8 = -4,   /* a text packet that is not valid UTF-8 */
};

/* A static, human-readable text for an sl_eio_err. */
const char *sl_eio_strerror(int err);

struct sl_eio_packet {
    enum sl_eio_type type;
    /*
     * A binary message: from a WebSocket binary frame (data holds the bytes), or "b..." in
     * a long-polling payload (data holds the base64 text: sl_eio_base64_decode() it).
     */
    bool binary;
    struct sl_slice data; /* after the type digit; points into the input */
};

/*
 * Decodes one packet from a WebSocket text frame (already UTF-8-checked by the WebSocket
 * layer). Returns 0 or an sl_eio_err. A text frame starting with "b" is not a packet in
 * v4 (binary goes in binary frames) and fails with SL_EIO_ETYPE.
 */
int sl_eio_decode_text(const char *p, size_t n, struct sl_eio_packet *out);

/*
 * Iterates over the packets of a long-polling body:
 *
 *     struct sl_eio_payload it;
 *     sl_eio_payload_init(&it, body, len);
 *     while ((rc = sl_eio_payload_next(&it, &pkt)) > 0) handle(&pkt);
 *     if (rc < 0) the body is malformed from here on (the packets before it were good);
 *
 * The whole body is checked as UTF-8 once, at init, so that an invalid body fails at
 * its first packet before any is handled. An empty body is one empty packet: an error,
 * as it is for Engine.IO's own decoder.
 */
struct sl_eio_payload {
    const char *p, *end;
    int err; /* the body's verdict from init: 0 or SL_EIO_EUTF8 */
    bool done;
};

void sl_eio_payload_init(struct sl_eio_payload *it, const char *p, size_t n);

/* 1: *out is the next packet; 0: no more packets; < 0: an sl_eio_err (and no more). */
int sl_eio_payload_next(struct sl_eio_payload *it, struct sl_eio_packet *out);

/* The most bytes that base64 text of n characters decodes to. */
static inline size_t
sl_eio_base64_max(size_t n)
{
    return n / 4 * 3 + 3;
}

/*
 * Decodes base64 (the standard alphabet, or the URL-safe one; padding optional) into out,
 * which has room for sl_eio_base64_max(n) bytes. Returns the decoded length, or -1 if the
 * text is not base64.
 */
long sl_eio_base64_decode(uint8_t *out, const char *in, size_t n);

/* --- writing ------------------------------------------------------------------------------- */

/* A text packet: the type digit, then data (n may be 0). */
void sl_eio_write_text(struct sl_buf *b, enum sl_eio_type type, const char *data, size_t n);

/* A binary message in a long-polling payload: "b" and the bytes in base64. */
void sl_eio_write_base64(struct sl_buf *b, const void *data, size_t n);

/*
 * The handshake packet: 0{"sid":...,"upgrades":[...],"pingInterval":...,"pingTimeout":...,
 * "maxPayload":...}. upgrade_websocket: whether the client may upgrade ("websocket" listed;
 * only a long-polling session may).
 */
void sl_eio_write_open(struct sl_buf *b, const char *sid, bool upgrade_websocket,
                       uint64_t ping_interval_ms, uint64_t ping_timeout_ms, uint64_t max_payload);

#endif
