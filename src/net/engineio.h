/*
 * Engine.IO v4 server: a message transport over HTTP long-polling and WebSocket.
 *
 * One sl_eio_server per worker serves one or more endpoints (a path with its handler:
 * Socket.IO at socketio.path, the debug echo servers). A client session (struct sl_eio) is
 * opened by a handshake request (GET path?EIO=4&transport=polling, or a WebSocket upgrade
 * with transport=websocket) and then identified by its sid:
 *   - long-polling: a GET waits for what the server has to say (one pending GET at a time;
 *     a second one is a protocol error that closes the session), a POST carries the
 *     client's packets (joined by 0x1e, binary as "b" + base64);
 *   - WebSocket: one packet per frame, binary messages as binary frames;
 *   - upgrade: a long-polling session opens a WebSocket with its sid, probes it ("2probe" /
 *     "3probe"; a pending GET is released with a "6" noop), and switches with "5"; packets
 *     queued for polling then leave on the WebSocket, in order.
 * The server pings ("2") every ping_interval after the last pong and closes a session
 * whose pong ("3") does not come within ping_timeout. Every packet is checked
 * (net/eiocodec.h); bad input gets Engine.IO's answer: HTTP 400 with {"code","message"}
 * (and the end of the session when it is a protocol error inside one), 413 for a body over
 * max_payload, a WebSocket close.
 *
 * Workers: the sid names the worker that owns the session. A request with a sid that lands
 * on another worker (SO_REUSEPORT spreads connections, not sessions) is passed to the
 * options' handoff function, which moves the connection to the owner (net/handoff.h); the
 * owner then sees it as its own request. Nothing of a session is shared between threads.
 *
 * Memory: an idle WebSocket session is one struct sl_eio (about 170 bytes) beside the
 * connection and its sl_ws; deadlines are nodes in the server's deadline queues. A
 * long-polling session holds its queued packets until the next GET (capped: over
 * max_queued the session is closed), and a held GET holds a small response.
 *
 * Lifetime and callbacks: the handler's on_close is called exactly once per session that
 * was opened (on_open was called), never from inside a call the application makes on the
 * session (sl_eio_send/close): it comes from the loop (the end-of-turn hook). After on_close
 * the session must not be touched. Callbacks may call any sl_eio_* function.
 */
#ifndef SL_NET_ENGINEIO_H
#define SL_NET_ENGINEIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "net/wshandshake.h"

struct sl_conn;
struct sl_http_req;
struct sl_loop;
struct sl_eio;
struct sl_eio_server;
struct sl_eio_endpoint;

/* Length of a sid: two characters naming the worker, eighteen random ones. */
#define SL_EIO_SID_LEN 20

/* Reasons given to on_close (static strings, compared by value or by text). */
extern const char SL_EIO_R_CLIENT[];   /* "transport close": the client closed or went away */
extern const char SL_EIO_R_PING[];     /* "ping timeout" */
extern const char SL_EIO_R_ERROR[];    /* "transport error": protocol violation by the client */
extern const char SL_EIO_R_PARSE[];    /* "parse error": a malformed packet */
extern const char SL_EIO_R_QUEUE[];    /* "send queue full": the client did not read */
extern const char SL_EIO_R_SERVER[];   /* "forced close": sl_eio_close() */
extern const char SL_EIO_R_SHUTDOWN[]; /* "server shutting down" */

struct sl_eio_handler {
    /*
     * A session was opened. req and c are the handshake request and its connection, valid
     * only during the call: read the query, the headers, the peer address here. The
     * handshake answer has been queued; messages sent from here follow it. Set the
     * session's user data here (sl_eio_set_user_data), else the endpoint's ud is passed.
     */
    void (*on_open)(void *ud, struct sl_eio *s, const struct sl_http_req *req, struct sl_conn *c);
    /* A message from the client: text (UTF-8) or binary. data is valid during the call. */
    void (*on_message)(void *ud, struct sl_eio *s, const char *data, size_t len, bool binary);
    /* Everything queued has been handed to the kernel (backpressure). Optional. */
    void (*on_drain)(void *ud, struct sl_eio *s);
    /* The session is over (reason: one of SL_EIO_R_*). Exactly once; see the lifetime rule. */
    void (*on_close)(void *ud, struct sl_eio *s, const char *reason);
};

struct sl_eio_options {
    uint64_t ping_interval_ms;
    uint64_t ping_timeout_ms;
    uint64_t max_payload;        /* bytes: a WebSocket message, a long-polling POST body */
    uint64_t max_queued;         /* bytes queued towards a client before its session closes */
    uint64_t upgrade_timeout_ms; /* a probe WebSocket must complete the upgrade within this */
    unsigned worker;             /* this worker's index (named in the sids it makes), < 4096 */
    /*
     * The Origin policy (auth/origin.h): whether a browser page of origin may use the
     * server. origin.ptr is NULL when the request has no Origin. NULL: every origin may.
     */
    bool (*origin_allowed)(void *ud, struct sl_slice origin, struct sl_slice host);
    /*
     * A request for a session of worker `owner` arrived here: move the connection with the
     * request to the owner (net/handoff.h), from inside the request callback, and return
     * true; or return false if there is no such worker (the request is then answered 400,
     * unknown sid). NULL: a single worker.
     */
    bool (*handoff)(void *ud, unsigned owner, struct sl_conn *c, const struct sl_http_req *req);
    void *ud; /* for origin_allowed and handoff */
    /* Seconds suggested in Retry-After when a handshake is refused while draining. */
    unsigned retry_after_s;
    struct sl_ws_deflate_policy deflate; /* permessage-deflate on the WebSocket transport */
};

/* Creates the server of a loop; its deadline queues and end-of-turn hook live with the loop. */
struct sl_eio_server *sl_eio_server_new(struct sl_loop *loop, const struct sl_eio_options *opt);

/*
 * Frees the server. Call after the loop ended (sl_eio_server_shutdown first, then let the
 * loop run out); sessions still there are freed without callbacks.
 */
void sl_eio_server_free(struct sl_eio_server *srv);

/*
 * Serves path (e.g. "/socket.io/"; the same path without its trailing slash is accepted
 * too) with handler h; ud is passed to the handler until a session has its own. The handler
 * and path must outlive the server.
 */
struct sl_eio_endpoint *sl_eio_server_add(struct sl_eio_server *srv, const char *path,
                                          const struct sl_eio_handler *h, void *ud);

/* sl_eio_handle() results besides an HTTP status. */
#define SL_EIO_NOT_MINE 0   /* not an Engine.IO path: route it elsewhere */
#define SL_EIO_HANDED_OFF 1 /* passed to the owner worker, which answers (and logs) it */

/*
 * Handles an HTTP request if its path is an endpoint's, from inside the HTTP request
 * callback. Returns SL_EIO_NOT_MINE, SL_EIO_HANDED_OFF, or the HTTP status of the answer
 * (101 for a WebSocket, 200 also for a GET that is held until there is something to say).
 */
int sl_eio_handle(struct sl_eio_server *srv, struct sl_conn *c, const struct sl_http_req *req);

/* Draining: handshakes are refused with 503 from now on; sessions go on. */
void sl_eio_server_drain(struct sl_eio_server *srv);

/* sl_eio_close() on every open session (draining: clients reconnect elsewhere). */
void sl_eio_server_close_all(struct sl_eio_server *srv);

/*
 * Closes every session (reason SL_EIO_R_SHUTDOWN; a WebSocket with 1001, a pending GET
 * with a close packet) and refuses handshakes. The on_close callbacks run before this
 * returns (it is not a call on a session), so that nothing waits for a later loop turn.
 */
void sl_eio_server_shutdown(struct sl_eio_server *srv);

/* Open sessions (for tests and metrics). */
size_t sl_eio_server_sessions(const struct sl_eio_server *srv);

/*
 * Queues a message to the client. Over WebSocket it is written at once (to the
 * connection's queue); over long-polling it waits for the client's GET (a GET already
 * waiting is answered at the end of the loop turn, with everything queued by then).
 * Text must be UTF-8 and, for a long-polling client, free of 0x1e (Engine.IO's separator;
 * JSON text never holds one). Ignored once the session is closing. If the queued bytes
 * would exceed max_queued, the session is closed with SL_EIO_R_QUEUE instead.
 */
void sl_eio_send(struct sl_eio *s, const char *data, size_t len, bool binary);

/*
 * Closes the session: a WebSocket after what is queued, long-polling by delivering what is
 * queued and a close packet with the client's next GET (or at once to a GET waiting), the
 * session ending at the latest ping_timeout later. on_close(SL_EIO_R_SERVER) follows.
 */
void sl_eio_close(struct sl_eio *s);

/*
 * Ends the session at once for a protocol error found above Engine.IO (a malformed
 * Socket.IO packet): a WebSocket is closed with 1002, a pending GET gets a close packet,
 * what is queued is dropped. on_close(SL_EIO_R_PARSE) follows.
 */
void sl_eio_fail(struct sl_eio *s);

/* Bytes queued towards the client and not yet handed to the kernel. */
size_t sl_eio_queued(const struct sl_eio *s);

/*
 * Delivery positions: bytes of the packets sent so far, and how many of them have surely
 * reached the client (its TCP acknowledged them over WebSocket; over long-polling, it asked
 * for more after reading them). A position taken from sl_eio_sent() has been delivered once
 * sl_eio_delivered() reaches it.
 */
uint64_t sl_eio_sent(const struct sl_eio *s);
uint64_t sl_eio_delivered(struct sl_eio *s);

void sl_eio_set_user_data(struct sl_eio *s, void *ud);
const char *sl_eio_sid(const struct sl_eio *s);
bool sl_eio_websocket(const struct sl_eio *s); /* the transport is (now) a WebSocket */
bool sl_eio_closing(const struct sl_eio *s);

#endif
