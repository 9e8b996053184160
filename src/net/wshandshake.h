/*
 * The WebSocket opening handshake (RFC 6455 4.2), server side, without I/O: the checks of a
 * client's upgrade request and the Sec-WebSocket-Accept it is answered with. Pure so that
 * it is unit-tested and fuzzed with the HTTP request parser (tests/fuzz/fuzz_http.c);
 * net/ws.c answers the handshake with it.
 */
#ifndef SL_NET_WSHANDSHAKE_H
#define SL_NET_WSHANDSHAKE_H

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

#endif
