/*
 * Socket.IO v5 packets: decoding and encoding, I/O-free.
 *
 * A Socket.IO packet travels as the data of one Engine.IO message:
 *
 *     <type>[<attachments>-][<namespace>,][<ack id>][<JSON data>]
 *
 *     0                      CONNECT to "/" (no auth payload)
 *     0/admin,{"token":"x"}  CONNECT to "/admin" with an auth payload
 *     2["chat",{"a":1}]      EVENT "chat"
 *     212["chat",1]          EVENT with ack id 12
 *     312[true]              ACK 12
 *     4{"message":"no"}      CONNECT_ERROR
 *     51-["up",{"_placeholder":true,"num":0}]   BINARY_EVENT with one attachment, which
 *                            follows as the next Engine.IO (binary) message
 *
 * The decoder checks everything the reference parser checks (socket.io-parser: type,
 * attachment count, namespace, ack id, JSON validity and the payload's shape per type,
 * reserved event names, placeholder indexes), and a few limits of its own (attachments,
 * namespace length, ack id digits, nesting depth). The JSON is validated by a scanner
 * here rather than parsed into a document: the data is handed on as text, slices into the
 * input, and nothing is allocated. A peer's malformed packet is an error code, never an
 * assertion. Fuzzed by tests/fuzz/fuzz_siocodec.c, differentially against jansson.
 */
#ifndef SL_NET_SIOCODEC_H
#define SL_NET_SIOCODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"

enum sl_sio_type {
    SL_SIO_CONNECT = 0,
    SL_SIO_DISCONNECT = 1,
    SL_SIO_EVENT = 2,
    SL_SIO_ACK = 3,
    SL_SIO_CONNECT_ERROR = 4,
    SL_SIO_BINARY_EVENT = 5,
    SL_SIO_BINARY_ACK = 6,
};

/* Limits of the decoder. */
#define SL_SIO_MAX_NSP 256       /* namespace bytes */
#define SL_SIO_MAX_ACK_DIGITS 15 /* ack ids stay below 2^53, exact as JavaScript numbers */
#define SL_SIO_MAX_DEPTH 64      /* JSON nesting */

/* Decoding errors (negative; 0 is success). */
enum sl_sio_err {
    SL_SIO_EEMPTY = -1,        /* no type */
    SL_SIO_ETYPE = -2,         /* the type is not 0-6 */
    SL_SIO_EATTACH = -3,       /* a binary packet without a valid "<n>-" */
    SL_SIO_ETOOMANY = -4,      /* more attachments than allowed */
    SL_SIO_ENSP = -5,          /* namespace longer than SL_SIO_MAX_NSP */
    SL_SIO_EACKID = -6,        /* ack id longer than SL_SIO_MAX_ACK_DIGITS, or missing on an ACK */
    SL_SIO_EJSON = -7,         /* the data is not JSON */
    SL_SIO_EDEPTH = -8,        /* JSON nested deeper than SL_SIO_MAX_DEPTH */
    SL_SIO_EPAYLOAD = -9,      /* JSON of the wrong shape for the type */
    SL_SIO_ERESERVED = -10,    /* an event named "connect", "disconnect", ... */
    SL_SIO_EPLACEHOLDER = -11, /* a placeholder whose num is not an attachment's index */
    SL_SIO_EUTF8 = -12,        /* not valid UTF-8 */
};

/* A static, human-readable text for an sl_sio_err. */
const char *sl_sio_strerror(int err);

struct sl_sio_packet {
    enum sl_sio_type type;
    struct sl_slice nsp;  /* "/" when the packet names none */
    int64_t id;           /* ack id, -1 when none */
    unsigned attachments; /* binary types: attachments that follow */
    struct sl_slice data; /* the JSON data, {NULL-or-end, 0} when none */
    /* EVENT and BINARY_EVENT: */
    struct sl_slice name; /* the first element as a JSON token: a string with its quotes, or a
                             number; sl_sio_string() decodes it */
    /* EVENT, BINARY_EVENT (after the name), ACK, BINARY_ACK (all elements): the arguments
     * as they appear inside the array, separated by commas; empty when there are none. */
    struct sl_slice args;
    unsigned placeholders; /* binary types: placeholder objects seen in data */
};

/*
 * Decodes the Socket.IO packet in p[0..n) (the data of one Engine.IO text message).
 * max_attachments caps the attachments of a binary packet. Returns 0 or an sl_sio_err;
 * on success every slice of *out points into p.
 */
int sl_sio_decode(const char *p, size_t n, unsigned max_attachments, struct sl_sio_packet *out);

/*
 * Decodes a JSON string token (with its quotes, as in sl_sio_packet.name) into out, NUL-
 * terminated. A number token is copied as it is (an event may be named by a number).
 * Returns the length, or -1 if it does not fit in outlen - 1 bytes (or is not a string or
 * number token). An escaped NUL is kept, so the length is the truth, not strlen.
 */
long sl_sio_string(struct sl_slice tok, char *out, size_t outlen);

/*
 * In a JSON object text (already validated, as the data of a decoded CONNECT), finds the
 * top-level member `key` and, if it is a string, decodes it into out as sl_sio_string()
 * does. Returns the length; -1 if absent, not a string, or too long.
 */
long sl_sio_member_string(struct sl_slice object, const char *key, char *out, size_t outlen);

/* Whether p[0..n) is one valid JSON value (surrounded by optional whitespace). */
bool sl_sio_json_valid(const char *p, size_t n);

/* --- writing ------------------------------------------------------------------------------- */

/*
 * The header of a packet: the type, "<attachments>-" for the binary types, "<nsp>," unless
 * nsp is "/" (or empty), and the ack id when id >= 0. The data follows (or nothing).
 */
void sl_sio_write_head(struct sl_buf *b, enum sl_sio_type type, struct sl_slice nsp,
                       unsigned attachments, int64_t id);

/*
 * EVENT data: ["<name>",<args>,"<offset>"]. name is escaped here; args is zero or more
 * JSON values separated by commas (the caller's responsibility: it is copied as it is);
 * offset, when its ptr is not NULL, is appended as a last string argument (connection
 * state recovery).
 */
void sl_sio_write_event_data(struct sl_buf *b, const char *name, size_t name_len,
                             struct sl_slice args, struct sl_slice offset);

/* ACK data: [<args>]. */
void sl_sio_write_ack_data(struct sl_buf *b, struct sl_slice args);

#endif
