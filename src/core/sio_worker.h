/*
 * A worker's Engine.IO and Socket.IO endpoints, and its end of the connection hand-off.
 *
 * Per worker: one Engine.IO server (net/engineio.h) serving
 *   - socketio.path: Socket.IO (net/socketio.h) with the namespaces of socketio.namespaces
 *     (sessions counted as protocol="socketio");
 *   - with debug.echo: /engine.io/, an Engine.IO echo server (every message sent back), and
 *     /echo.io/, a Socket.IO server that behaves as the reference server of the official
 *     socket.io-protocol test suite (namespaces "/" and "/custom": emits "auth" with the
 *     CONNECT payload, answers "message" with "message-back" and the same arguments,
 *     acknowledges "message-with-ack" with its arguments); counted as protocol="echo";
 * and one hand-off endpoint (net/handoff.h) through which requests carrying another
 * worker's sid go to their owner.
 *
 * The namespaces of socketio.path get their handlers from nsp_handler() in sio_worker.c,
 * where the dialects (DIALECTS.md) plug in; until then a CONNECT to one is refused with
 * CONNECT_ERROR {"message":"Namespace not served yet"} (the Engine.IO connection stays).
 */
#ifndef SL_CORE_SIO_WORKER_H
#define SL_CORE_SIO_WORKER_H

#include <stdbool.h>

#include "base/util.h"

struct sl_worker;
struct sl_conn;
struct sl_http_req;
struct sl_sio_worker;
struct sl_sio_server;

/* Creates the worker's endpoints (after its loop, pool, HTTP server and metrics). */
struct sl_sio_worker *sl_sio_worker_new(struct sl_worker *w);

/*
 * Serves the request if it is for one of the endpoints: returns the HTTP status (101 for a
 * WebSocket), SL_EIO_HANDED_OFF (net/engineio.h) if it went to another worker, or 0 if the
 * path is not an Engine.IO one.
 */
int sl_sio_worker_handle(struct sl_sio_worker *sw, struct sl_conn *c, struct sl_http_req *req);

/*
 * Moves connection c, with the request req being handled, to worker `owner` (a request for
 * a stream that lives there); from inside the request callback. false if there is no such
 * worker (then answer it here).
 */
bool sl_sio_worker_hand_to(struct sl_sio_worker *sw, unsigned owner, struct sl_conn *c,
                           const struct sl_http_req *req);

/* Whether path is one of the Engine.IO endpoints (socketio.path, the echo servers). */
bool sl_sio_worker_owns(const struct sl_sio_worker *sw, struct sl_slice path);

/* The Socket.IO server of socketio.path (to add namespace handlers). */
struct sl_sio_server *sl_sio_worker_server(struct sl_sio_worker *sw);

/* Draining: new Engine.IO sessions are refused, open ones closed (clients reconnect). */
void sl_sio_worker_drain(struct sl_sio_worker *sw);

/* Stopping: every session ends now; moved connections are no longer adopted. */
void sl_sio_worker_stop(struct sl_sio_worker *sw);

/* Frees everything, after the worker's loop ended. */
void sl_sio_worker_free(struct sl_sio_worker *sw);

#endif
