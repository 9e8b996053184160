/*
 * The mock's HTTP/1.1 server side: a libuv listener, keep-alive connections parsed
 * with http-parser, and a response writer with chunked transfer encoding.
 *
 * One request at a time per connection: while a response is open, further bytes are
 * only buffered (pipelining is answered in order afterwards), but the socket keeps
 * being read, so a client that goes away mid-response is noticed at once (on_close
 * with aborted = true). That is the point of the mock's abort detection.
 *
 * Writes: at most one uv_write in flight per connection; bytes queued meanwhile
 * collect in a second buffer that goes out when the first completes. Both buffers
 * keep their storage for the life of the response, so a stream allocates nothing per
 * token. on_drain fires when nothing is queued or in flight, which is when a stream
 * that sends "as fast as possible" renders its next batch (natural backpressure).
 *
 * Lifetimes: a struct mock_http belongs to the listener and is freed after both its
 * handles (socket, timer) have closed. The application learns of the end through
 * on_close, after which it must not touch the connection.
 */
#ifndef MOCK_HTTP_H
#define MOCK_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/list.h"
#include "request.h"

/* Caps on what a client may send. */
#define MOCK_HTTP_MAX_URL 8192u
#define MOCK_HTTP_MAX_HEADER_BYTES (64u * 1024u)
#define MOCK_HTTP_MAX_BODY (16u * 1024u * 1024u)
#define MOCK_HTTP_MAX_PIPELINED (1024u * 1024u)

struct mock_http;

struct mock_hdr {
    const char *name;
    const char *value;
};

struct mock_http_cbs {
    /* A complete request. The slices in r live until the response ends. The application
     * must answer it: mock_http_head(), mock_http_body()..., mock_http_end(). */
    void (*on_request)(struct mock_http *c, struct mock_req *r);
    /* Nothing queued or in flight while the response is still open. */
    void (*on_drain)(struct mock_http *c);
    /* A write reached the socket: body bytes (without chunk framing) and tokens it held. */
    void (*on_written)(struct mock_http *c, size_t body_bytes, uint32_t tokens);
    /* The response was ended and is completely written. */
    void (*on_done)(struct mock_http *c);
    void (*on_timer)(struct mock_http *c);
    /* The connection is going away; aborted: a response was still being written. */
    void (*on_close)(struct mock_http *c, bool aborted);
};

struct mock_httpd {
    uv_loop_t *loop;
    uv_tcp_t listener;
    const struct mock_http_cbs *cbs;
    void *data;
    struct sl_list conns;
    size_t nconns;
    uint64_t conns_total;
    bool stopping;
    char rbuf[64 * 1024]; /* one read buffer for all connections: reads are consumed at once */
};

/*
 * Binds host:port (port 0: any), listens, and writes the bound port to *bound_port.
 * Returns 0 or a negative libuv error. d must stay put until the loop is done.
 */
int mock_httpd_start(struct mock_httpd *d, uv_loop_t *loop, const char *host, int port,
                     const struct mock_http_cbs *cbs, void *data, int *bound_port);

/* Stops listening and closes every connection (on_close for each). */
void mock_httpd_stop(struct mock_httpd *d);

/* The server a connection belongs to, and the application's per-connection pointer. */
struct mock_httpd *mock_http_server(struct mock_http *c);
void **mock_http_app(struct mock_http *c);

/*
 * Queues the response head. content_length < 0: the body is a stream, sent with chunked
 * transfer encoding (or, to an HTTP/1.0 client, delimited by the close).
 */
void mock_http_head(struct mock_http *c, int status, const char *content_type,
                    const struct mock_hdr *extra, size_t nextra, long long content_length);

/* Queues body bytes (framed as one chunk when chunked) carrying `tokens` tokens. */
void mock_http_body(struct mock_http *c, const void *p, size_t n, uint32_t tokens);

/* Ends the response; with close_after, the connection is closed (FIN) once written. */
void mock_http_end(struct mock_http *c, bool close_after);

/* Bytes queued or in flight. */
size_t mock_http_queued(const struct mock_http *c);

/* Closes the connection at once with a TCP reset (SO_LINGER 0). */
void mock_http_reset(struct mock_http *c);

/* One-shot timer for the application; a new start replaces the previous one. */
void mock_http_timer_start(struct mock_http *c, uint64_t ms);
void mock_http_timer_stop(struct mock_http *c);

#endif
