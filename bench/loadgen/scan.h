/*
 * The load generator's hot-path parsers: no allocation, no JSON library.
 *
 * Every token the benchmark delivers passes through here once, so the common messages are
 * recognised by their fixed layout instead of being parsed into a document:
 *
 * - sluice's native delta frame, as rendered by src/proto/native.c:
 *       {"type":"delta","id":"<id>","seq":<n>,"text":"<text>"}
 *   Any other native message (start, done, error, ready, ...) is left to the caller, who
 *   parses it with jansson: they come a few per stream.
 * - the `data:` payload of an OpenAI chat.completion.chunk from the mock upstream, whose
 *   token text is in "content":"<text>".
 *
 * Token text produced with the mock's `ts=1` is a run of stamps "@<CLOCK_MONOTONIC µs> ",
 * one per token; sluice may join several deltas into one frame when a client falls behind,
 * so a text may hold any number of them.
 */
#ifndef LG_SCAN_H
#define LG_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

/* Called once per stamp found. */
typedef void (*lg_stamp_cb)(void *ud, uint64_t stamp_us);

/*
 * Scans a JSON string body (the bytes between the quotes, escapes untouched) for stamps:
 * an '@' followed by at least one decimal digit. Calls cb for each and returns how many
 * were found. A backslash escape is skipped whole, so an escaped character never starts a
 * stamp. cb may be NULL (count only).
 */
size_t lg_scan_stamps(const char *s, size_t n, lg_stamp_cb cb, void *ud);

/*
 * The end of a JSON string body starting at s (just after its opening quote): the index of
 * the closing quote, or n if the string is not closed within n bytes.
 */
size_t lg_scan_string_end(const char *s, size_t n);

/* A native delta frame, as slices of the message. */
struct lg_delta {
    struct sl_slice id;   /* the stream id, unescaped only if it needed no escape */
    struct sl_slice text; /* the text's JSON string body (escapes untouched) */
    uint64_t seq;
    bool tool; /* a tool-call fragment rather than text */
};

/*
 * Recognises a native delta frame. Returns 1 and fills d if msg is one, 0 if msg is some
 * other message (or a delta laid out differently, which the caller then parses in full).
 */
int lg_scan_native_delta(const char *msg, size_t len, struct lg_delta *d);

/*
 * The text of an OpenAI chunk's first choice: fills text with the body of its
 * "content":"..." string and returns 1; returns 0 if the chunk has no string content
 * (role chunk with "content":"" counts as found, empty). Also sets *finish when the chunk
 * carries a non-null finish_reason and *error when it is an in-stream error object.
 */
int lg_scan_openai_chunk(const char *data, size_t len, struct sl_slice *text, bool *finish,
                         bool *error);

/*
 * The error code an in-stream error event names, for counting it: `data` is
 * `{"error":{...}}` as OpenAI and sluice's HTTP API send mid-stream. Writes the error's
 * `code` (else its `type`) in upper case, so that sluice's `upstream_timeout` counts as
 * UPSTREAM_TIMEOUT as on the WebSocket path, or "SSE_ERROR_EVENT" when it names neither.
 * The cold path: parsed with jansson, once per failed stream.
 */
void lg_scan_error_name(const char *data, size_t len, char *out, size_t cap);

/*
 * A member value of a JSON object, as a slice of the message: for a string its body (the
 * bytes between the quotes, escapes untouched), for anything else its raw text.
 */
enum lg_jkind { LG_J_NONE, LG_J_STRING, LG_J_NULL, LG_J_OTHER };
struct lg_jval {
    enum lg_jkind kind; /* LG_J_NONE: the member is absent */
    struct sl_slice v;
};

/*
 * Looks up the top-level members keys[0..n) of the JSON object obj[0..len) in one pass,
 * filling vals[i] for each (LG_J_NONE when absent; keys are compared byte for byte, so a
 * key written with escapes is not found). Stops as soon as all are found, so members after
 * them are never scanned. Returns how many were found, or -1 if the object is malformed
 * before then (not an object, unterminated string, bad nesting).
 */
int lg_scan_members(const char *obj, size_t len, const char *const *keys, size_t n,
                    struct lg_jval *vals);

/*
 * A Socket.IO packet carried in an Engine.IO message (`4` + the Socket.IO packet), as the
 * server sends them over WebSocket: `4<type>[/nsp,][ackid][data]`.
 */
struct lg_sio_packet {
    char type;             /* '0' CONNECT ... '6' BINARY_ACK */
    struct sl_slice nsp;   /* "/" when the packet names none */
    struct sl_slice data;  /* the rest: JSON (CONNECT's object, EVENT's array), may be empty */
    struct sl_slice event; /* EVENT: the event's name (string body) */
    struct sl_slice arg;   /* EVENT: the first argument, exactly (an object), or empty */
};

/*
 * Takes apart an Engine.IO `4` message holding a Socket.IO packet. For an EVENT also finds
 * its name and its first argument, which must be an object (sluice's events have one
 * object, then with connection state recovery the event's offset as a last string
 * argument); the object's end is found from the message's end, so a long token text is not
 * scanned twice. Returns 0, or -1 if the packet is not laid out that way.
 */
int lg_scan_sio_packet(const char *msg, size_t len, struct lg_sio_packet *p);

/* Parses a decimal stream id (what the load generator sends as "id"): 0 on success. */
int lg_scan_u32(struct sl_slice s, uint32_t *out);

#endif
