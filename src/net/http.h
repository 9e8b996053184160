/*
 * HTTP/1.1 server side on a connection (http-parser), with the limits a public
 * endpoint needs.
 *
 * A connection starts here. Requests are parsed incrementally, checked against the
 * limits (request line 414, headers 431, body 413, malformed 400, slow headers 408)
 * and handed complete to the application's request callback, which does one of:
 *   - answers at once with sl_http_respond() (a complete response);
 *   - takes the connection over (WebSocket upgrade) by installing its own handler with
 *     sl_conn_set_handler(); bytes that followed the request are then fed to it;
 *   - holds the request with sl_http_hold() and answers later, possibly in pieces: a head
 *     with a Content-Length or a chunked body, body pieces, an end (below).
 * Keep-alive and pipelining work: requests are answered in order, and the next pipelined
 * request is not parsed while a held response is open. `Expect: 100-continue` is answered
 * as soon as the request head has passed the limits. While idle between requests a
 * connection holds no parser buffers.
 */
#ifndef SL_NET_HTTP_H
#define SL_NET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/timeq.h"
#include "base/util.h"

struct sl_conn;
struct sl_loop;

#define SL_HTTP_MAX_HEADERS 64

struct sl_http_header {
    struct sl_slice name;
    struct sl_slice value;
};

/* A parsed request; every slice is valid until the request callback returns. */
struct sl_http_req {
    const char *method; /* "GET", "POST", ... */
    bool is_get, is_head;
    struct sl_slice target; /* as sent: path?query */
    struct sl_slice path;   /* before '?', still percent-encoded */
    struct sl_slice query;  /* after '?', without it */
    struct sl_http_header headers[SL_HTTP_MAX_HEADERS];
    size_t nheaders;
    struct sl_slice body;
    bool keep_alive;
    bool upgrade;
    unsigned short http_minor;
};

struct sl_http_limits {
    uint64_t max_header_bytes; /* request line + headers */
    uint64_t max_url_bytes;    /* the request target alone (414); 0: max_header_bytes */
    uint64_t max_body_bytes;
    uint64_t header_timeout_ms;
    uint64_t keepalive_timeout_ms;
};

typedef void (*sl_http_request_cb)(void *ud, struct sl_conn *c, struct sl_http_req *req);

/* Per-loop HTTP state shared by its connections. */
struct sl_http_server {
    struct sl_loop *loop;
    struct sl_http_limits limits;
    struct sl_timeq header_tq;
    struct sl_timeq keepalive_tq;
    sl_http_request_cb on_request;
    void *ud;
    uint64_t requests; /* served, for metrics */
};

void sl_http_server_init(struct sl_http_server *s, struct sl_loop *loop,
                         const struct sl_http_limits *limits, sl_http_request_cb cb, void *ud);

/* Starts serving HTTP on a freshly accepted connection. */
void sl_http_serve(struct sl_http_server *s, struct sl_conn *c);

/* Header value by name (case-insensitive); {NULL, 0} if absent. The first one wins. */
struct sl_slice sl_http_get_header(const struct sl_http_req *req, const char *name);

/*
 * Looks up parameter `name` (exact, case-sensitive) in a query string (the part after '?')
 * and percent-decodes its value ('+' is a space) into out (NUL-terminated). A parameter
 * without '=' has the empty value. Returns the value's length, -1 if absent, -2 if present
 * but malformed (bad escape, encoded NUL) or longer than outlen - 1.
 */
long sl_http_query_get(struct sl_slice query, const char *name, char *out, size_t outlen);

/* sl_http_query_get() on the request's query. */
long sl_http_query_param(const struct sl_http_req *req, const char *name, char *out, size_t outlen);

/*
 * Percent-decodes src into out (NUL-terminated). Returns the length, or -1 on a bad
 * escape, an encoded NUL, or overflow. '+' is kept as is (paths) unless plus_space.
 */
long sl_http_decode(struct sl_slice src, char *out, size_t outlen, bool plus_space);

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
