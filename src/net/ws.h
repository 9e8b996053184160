/*
 * WebSocket (RFC 6455, version 13) on a connection, server side.
 *
 * The handshake is answered here (its checks: net/wshandshake.h); then client bytes pass the
 * validating scanner (wsscan.h) and go to a wslay event context, which reassembles messages,
 * answers pings and runs the close handshake. The wslay context (over 4 KiB) exists
 * only while needed: it is created when bytes arrive or a close starts, and given
 * back once the connection sits between messages with nothing queued, so an idle
 * connection costs a few hundred bytes.
 *
 * Server-to-client data frames are written straight into the connection's queue
 * (they are unmasked and need no state); wslay's own output (pongs, close) goes to
 * the same queue, which it always drains completely, so the order is kept.
 *
 * permessage-deflate (RFC 7692, net/wsdeflate.h) is used when the options allow it and the
 * client offers it: every data message is then compressed (RSV1), whatever protocol runs
 * over the WebSocket, and a compressed message from the client is decompressed before the
 * handler sees it, under the same size limit.
 *
 * Lifetime: the connection owns the sl_ws. The owner's on_closed runs exactly once,
 * from the connection's close; the sl_ws is freed right after it returns.
 */
#ifndef SL_NET_WS_H
#define SL_NET_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/wshandshake.h" /* sl_ws_check_handshake() */

struct sl_conn;
struct sl_http_req;
struct sl_ws;

struct sl_ws_handler {
    /* A complete text message (valid UTF-8, within the size limit). */
    void (*on_text)(void *ud, const char *msg, size_t len);
    /* A complete binary message; only when binary is allowed (the echo endpoint). */
    void (*on_binary)(void *ud, const char *msg, size_t len);
    /* Any bytes from the peer arrived (heartbeat bookkeeping). Optional. */
    void (*on_activity)(void *ud);
    /*
     * The peer broke a rule the scanner checks (too big, binary, bad UTF-8, ...); the
     * connection is closed with code right after this returns, so a last message sent
     * from here still arrives first. Optional.
     */
    void (*on_violation)(void *ud, uint16_t code, const char *reason);
    /* The send queue emptied (backpressure). Optional. */
    void (*on_drain)(void *ud);
    /*
     * The connection is gone. code: the close code received from the peer, or 1006 if
     * none arrived (reset, EOF, timeout), or the code we sent for our own closes.
     */
    void (*on_closed)(void *ud, uint16_t code);
};

struct sl_ws_options {
    uint64_t max_message; /* bytes */
    bool allow_binary;
    const char *extra_headers; /* added to the 101 response, lines ending in "\r\n" */
    const struct sl_ws_deflate_policy *deflate; /* NULL or disabled: never negotiated */
};

/*
 * Answers the handshake (101) and turns the connection into a WebSocket endpoint; the
 * HTTP layer feeds it any bytes that followed the request. The handshake must have
 * passed sl_ws_check_handshake() (net/wshandshake.h).
 */
struct sl_ws *sl_ws_accept(struct sl_conn *c, const struct sl_http_req *req,
                           const struct sl_ws_options *opt, const struct sl_ws_handler *h,
                           void *ud);

/* Queues a text (or binary) message. Ignored once a close was started. */
void sl_ws_send_text(struct sl_ws *ws, const char *msg, size_t len);
void sl_ws_send_binary(struct sl_ws *ws, const char *msg, size_t len);

void sl_ws_ping(struct sl_ws *ws);

/*
 * Starts the close handshake with code and reason (at most 123 bytes; longer is cut on
 * a UTF-8 boundary). Nothing more is sent after it. The connection closes when the
 * peer answers, or after a short timeout.
 */
void sl_ws_close(struct sl_ws *ws, uint16_t code, const char *reason);

bool sl_ws_closing(const struct sl_ws *ws);

/* Sets the handler's user data (when it could not exist before the accept). */
void sl_ws_set_user_data(struct sl_ws *ws, void *ud);

/*
 * Replaces the handler and its user data (an Engine.IO probe WebSocket becoming the
 * session's transport). Allowed from inside a callback: the next callback uses the new one.
 */
void sl_ws_set_handler(struct sl_ws *ws, const struct sl_ws_handler *h, void *ud);

/* Changes the message size limit (tighter before authentication). */
void sl_ws_set_max_message(struct sl_ws *ws, uint64_t max);

/* Bytes queued towards the peer. */
size_t sl_ws_queued(const struct sl_ws *ws);

/* Whether a wslay context is currently held (for tests of the idle memory promise). */
bool sl_ws_has_context(const struct sl_ws *ws);

struct sl_conn *sl_ws_conn(const struct sl_ws *ws);

#endif
