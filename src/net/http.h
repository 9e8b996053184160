/*
 * HTTP/1.1 server side on a connection (http-parser), with the limits a public
 * endpoint needs.
 *
 * A connection starts here. Requests are parsed incrementally, checked against the
 * limits (request line 414, headers 431, body 413, malformed 400, slow headers 408)
 * and handed complete to the application's request callback, which answers with
 * sl_http_respond() or takes the connection over (WebSocket upgrade) by installing
 * its own handler with sl_conn_set_handler(); bytes that followed the request are
 * then fed to the new handler. Keep-alive and pipelining work; while idle between
 * requests a connection holds no parser buffers.
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
 * Looks up a query parameter and percent-decodes it into out (NUL-terminated).
 * Returns its length, or -1 if absent or longer than outlen - 1.
 */
long sl_http_query_param(const struct sl_http_req *req, const char *name, char *out,
                         size_t outlen);

/*
 * Percent-decodes src into out (NUL-terminated). Returns the length, or -1 on a bad
 * escape, an encoded NUL, or overflow. '+' is kept as is (paths) unless plus_space.
 */
long sl_http_decode(struct sl_slice src, char *out, size_t outlen, bool plus_space);

/*
 * Writes a complete response. headers: extra header lines, each ending in "\r\n", or NULL.
 * Adds Content-Length, Connection and Server. For HEAD the body is left out. After an
 * error status (>= 400 and not 404/405) or a request without keep-alive the
 * connection closes once the response is out.
 */
void sl_http_respond(struct sl_conn *c, const struct sl_http_req *req, int status,
                     const char *content_type, const char *headers, const void *body,
                     size_t len);

/* {"error":{"status":N,"message":"..."}} with the given status. */
void sl_http_respond_error(struct sl_conn *c, const struct sl_http_req *req, int status,
                           const char *message, const char *headers);

const char *sl_http_status_text(int status);

#endif
