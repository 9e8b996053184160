/*
 * The WebSocket opening handshake (RFC 6455 4.2), server side, without I/O: the checks of a
 * client's upgrade request, the Sec-WebSocket-Accept it is answered with, and the
 * permessage-deflate negotiation (RFC 7692). Pure so that it is unit-tested and fuzzed with
 * the HTTP request parser (tests/fuzz/fuzz_http.c); net/ws.c answers the handshake with it.
 */
#ifndef SL_NET_WSHANDSHAKE_H
#define SL_NET_WSHANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

struct sl_http_req;

/* Length of a Sec-WebSocket-Accept value (base64 of a SHA-1), without the NUL. */
#define SL_WS_ACCEPT_LEN 28

/*
 * Checks that req is a valid WebSocket opening handshake. Returns 0, or the HTTP status
 * to answer (400 malformed, 426 wrong version: send Sec-WebSocket-Version: 13) with
 * *why set to a static explanation.
 */
int sl_ws_check_handshake(const struct sl_http_req *req, const char **why);

/*
 * Writes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key (one that passed
 * sl_ws_check_handshake) into out, NUL-terminated.
 */
void sl_ws_accept_key(struct sl_slice key, char out[SL_WS_ACCEPT_LEN + 1]);

/* --- permessage-deflate (RFC 7692) ---------------------------------------------------------- */

/* What the server is willing to do (websocket.* keys). */
struct sl_ws_deflate_policy {
    bool enabled;
    uint8_t window_bits;   /* 9..15: the most history our compressor keeps */
    bool context_takeover; /* false: every answer says server_no_context_takeover */
    uint8_t level;         /* zlib compression level 1..9 (not negotiated) */
    uint8_t mem_level;     /* zlib memLevel 1..9 (not negotiated) */
};

/* What one connection agreed on. */
struct sl_ws_deflate_params {
    bool on;
    bool server_no_context_takeover; /* our compressor starts afresh for every message */
    bool announce_server_window;     /* the offer named server_max_window_bits: answer it */
    uint8_t server_window_bits;      /* 9..15: what our compressor may use */
};

/*
 * Picks the first permessage-deflate offer of one Sec-WebSocket-Extensions value that the
 * policy accepts. Returns true and fills *out if one was accepted; false if none was (no
 * offer, every offer declined: an unknown or repeated parameter, a bad value, a
 * server_max_window_bits of 8, which zlib cannot produce), or the value is not the
 * extension-list grammar of RFC 6455 9.1 (the rest of it is then ignored).
 *
 * The server always answers client_no_context_takeover (RFC 7692 7.1.1.2 lets it): a
 * client's messages are then each compressed on their own, and the decompressor lives
 * only while one message is decoded, instead of 40 KiB kept for every connection.
 */
bool sl_ws_deflate_negotiate(struct sl_slice value, const struct sl_ws_deflate_policy *pol,
                             struct sl_ws_deflate_params *out);

/* The same over every Sec-WebSocket-Extensions header of a request, in order. */
bool sl_ws_deflate_negotiate_req(const struct sl_http_req *req,
                                 const struct sl_ws_deflate_policy *pol,
                                 struct sl_ws_deflate_params *out);

/*
 * Writes the response header for an accepted offer ("Sec-WebSocket-Extensions: ...\r\n"),
 * NUL-terminated. Returns its length; out must hold SL_WS_DEFLATE_RESPONSE_MAX bytes.
 */
#define SL_WS_DEFLATE_RESPONSE_MAX 160
size_t sl_ws_deflate_response(const struct sl_ws_deflate_params *p,
                              char out[SL_WS_DEFLATE_RESPONSE_MAX]);

#endif
