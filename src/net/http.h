/*
 * HTTP/1.1 server side on a connection (http-parser), with the limits a public
 * endpoint needs.
 *
 * A connection starts here. Requests are parsed incrementally (net/httpparse.h, the
 * I/O-free part), checked against the limits (request line 414, headers 431, body 413,
 * version 505, malformed 400, slow headers or body 408) and handed complete to the
 * application's request callback. Before a request's body is read, the application's head
 * callback (optional) says whether that request may carry one and how large: a route that
 * takes no body refuses one at once instead of buffering it. The request callback does
 * one of:
 *   - answers at once with sl_http_respond() (a complete response);
 *   - takes the connection over (WebSocket upgrade) by installing its own handler with
 *     sl_conn_set_handler(); bytes that followed the request are then fed to it;
 *   - holds the request with sl_http_hold() and answers later, possibly in pieces: a head
 *     with a Content-Length or a chunked body, body pieces, an end (below).
 * Keep-alive and pipelining work: requests are answered in order, and the next pipelined
 * request is not parsed while a held response is open, nor while the connection's output
 * is over its cap (net/conn.h): a client that pipelines and never reads gets no more
 * answers queued than the cap, and is reset once its output makes no progress.
 * `Expect: 100-continue` is answered as soon as the request head has passed the limits.
 * While idle between requests a connection holds no parser buffers.
 */
#ifndef SL_NET_HTTP_H
#define SL_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/timeq.h"
#include "base/util.h"
#include "net/httpparse.h"

struct sl_conn;
struct sl_loop;

typedef void (*sl_http_request_cb)(void *ud, struct sl_conn *c, struct sl_http_req *req);

/* Per-loop HTTP state shared by its connections. */
struct sl_http_server {
    struct sl_loop *loop;
    struct sl_http_limits limits;
    struct sl_timeq header_tq;
    struct sl_timeq body_tq;
    struct sl_timeq keepalive_tq;
    sl_http_request_cb on_request;
    sl_http_head_cb on_head; /* optional; gets the same ud */
    void *ud;
    uint64_t requests; /* served, for metrics */
};

/* limits->body_timeout_ms 0 means the header timeout. */
void sl_http_server_init(struct sl_http_server *s, struct sl_loop *loop,
                         const struct sl_http_limits *limits, sl_http_request_cb cb, void *ud);

/*
 * Installs the head callback (httpparse.h), called with the server's ud for every request
 * once its head is in, before its body: it decides how large a body the request may carry,
 * or refuses it. Before the first connection.
 */
void sl_http_server_on_head(struct sl_http_server *s, sl_http_head_cb cb);

/* Starts serving HTTP on a freshly accepted connection. */
void sl_http_serve(struct sl_http_server *s, struct sl_conn *c);

/*
 * The same for a connection accepted past the server's connection limit: its requests are
 * marked (req->over_capacity) so that the application answers only what must work at
 * capacity (health probes) and refuses the rest, and the connection closes after its first
 * answer.
 */
void sl_http_serve_over_capacity(struct sl_http_server *s, struct sl_conn *c);

/*
 * Writes a complete response, from inside the request callback only. headers: extra header
 * lines, each ending in "\r\n", or NULL. Adds Content-Length, Connection and Server. For
 * HEAD the body is left out. After an error status (>= 400 and not 401/403/404/405/429/503)
 * or a request without keep-alive the connection closes once the response is out. Not for a
 * held request (asserted).
 */
void sl_http_respond(struct sl_conn *c, const struct sl_http_req *req, int status,
                     const char *content_type, const char *headers, const void *body, size_t len);

/* {"error":{"status":N,"message":"..."}} with the given status. */
void sl_http_respond_error(struct sl_conn *c, const struct sl_http_req *req, int status,
                           const char *message, const char *headers);

const char *sl_http_status_text(int status);

/* --- held (asynchronous, streamed) responses ------------------------------------------------
 *
 * The request callback may hold the request instead of answering it, return, and answer
 * later from any callback on the same loop: a head, body pieces, an end. Meanwhile:
 *   - the request's slices are gone (they die when the callback returns): copy what you need;
 *   - the next pipelined request is not parsed; bytes that arrive are kept (up to
 *     SL_HTTP_HELD_INPUT_MAX, then reading pauses until the response is over) and parsed
 *     once it is;
 *   - the socket keeps being read, so a client that closes, resets or half-closes is seen
 *     at once and reported through on_close(aborted = true);
 *   - the connection has no timeout of this layer: the application owns the response's
 *     pace (the header and keep-alive timeouts apply between requests as before).
 *
 * Lifetime: a struct sl_http_resp exists from sl_http_hold() until its on_close returns;
 * on_close is called exactly once, and after it the application must not touch the response
 * (the connection is still valid during on_close). on_close never runs inside a call the
 * application makes on the response or its connection (sl_http_head/body/flush/end,
 * sl_conn_close/abort/reset): it comes from the loop (the end-of-turn flush, which
 * sl_loop_flush() also runs, a read, a write completion, the connection's release).
 * Memory: the response (a small struct, plus its kept input if a client pipelines) is the
 * only allocation beyond an idle connection's, and it is freed with the response.
 */

struct sl_http_resp;

/* The most input kept behind a held response before reading pauses. */
#define SL_HTTP_HELD_INPUT_MAX (64 * 1024)

/* content_length for sl_http_head(): the body's length is not known in advance. */
#define SL_HTTP_STREAM (-1)

struct sl_http_resp_handler {
    /*
     * Everything written so far has been handed to the kernel (sl_http_queued() is 0) and
     * the response is not ended: the moment to write more (backpressure). Optional. May also
     * come before the first write (after earlier pipelined responses drained). The
     * application may call any sl_http_* function on r from inside.
     */
    void (*on_drain)(void *ud, struct sl_http_resp *r);
    /*
     * The response is over. aborted = false: sl_http_end() was called and every byte of the
     * response has been handed to the kernel. aborted = true: it ended otherwise: the client
     * closed, reset or half-closed its connection, a write failed, or the connection was
     * closed or reset by the server (sl_conn_close/abort/reset: then on_close comes when the
     * connection is released). Required; exactly once; r is freed when it returns.
     */
    void (*on_close)(void *ud, struct sl_http_resp *r, bool aborted);
};

/*
 * Holds the request being handled: called from inside the request callback, instead of
 * sl_http_respond(), at most once per request. The handler must stay valid for the
 * response's life; ud is passed to its callbacks. Returns the response, owned by this layer
 * (see the lifetime rule above).
 */
struct sl_http_resp *sl_http_hold(struct sl_conn *c, const struct sl_http_req *req,
                                  const struct sl_http_resp_handler *h, void *ud);

/*
 * Queues the head, once, before any body. headers: extra header lines, each ending in
 * "\r\n", or NULL. Adds Server, the framing and, when the connection will close after
 * this response (a request without keep-alive, a close-delimited body), Connection: close.
 * content_length >= 0: a body of exactly that length follows (ending it short closes the
 * connection). SL_HTTP_STREAM: a stream, sent with chunked transfer encoding to an HTTP/1.1
 * client and delimited by the close to an HTTP/1.0 one.
 */
void sl_http_head(struct sl_http_resp *r, int status, const char *content_type, const char *headers,
                  int64_t content_length);

/*
 * Queues a body piece (one chunk when chunked; nothing for HEAD; n = 0 is ignored). Pieces
 * queued together leave together at the next flush of the loop, unless sl_http_flush() cuts
 * them. Writing past a Content-Length is a bug (asserted).
 */
void sl_http_body(struct sl_http_resp *r, const void *p, size_t n);

/*
 * Hands what is queued to the kernel now, as its own write, so that the next piece starts
 * a new write (fixed write boundaries, e.g. a fixture's cuts). If the kernel is not taking
 * bytes, they wait behind the write already in flight. on_drain still comes from the loop.
 */
void sl_http_flush(struct sl_http_resp *r);

/*
 * Ends the response (the chunked terminator when chunked). close_after: close the
 * connection (FIN) once it is written, instead of keeping it for the next request; a
 * request without keep-alive or a close-delimited body closes anyway. on_close(false)
 * follows once everything is handed to the kernel. Further body calls are ignored.
 */
void sl_http_end(struct sl_http_resp *r, bool close_after);

/* Bytes queued on the connection and not yet taken by the kernel (for backpressure). */
size_t sl_http_queued(const struct sl_http_resp *r);

/* The connection carrying r: for its peer address, id, or sl_conn_reset(). */
struct sl_conn *sl_http_resp_conn(const struct sl_http_resp *r);

#endif
