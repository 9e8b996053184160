#include "net/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/jsonw.h"
#include "net/conn.h"
#include "net/loop.h"
#include "obs/log.h"

/* Which of this layer's timeouts runs on the connection's node. */
enum timer { T_NONE, T_HEADER, T_BODY, T_KEEPALIVE };

struct http_conn {
    struct sl_http_parser p;
    struct sl_http_server *srv;
    struct sl_conn *conn;
    /*
     * Input not parsed yet: bytes that arrived behind a held response, or that were left
     * while the connection's output was over its cap. Parsed, in order, once the response is
     * over or the output drained.
     */
    struct sl_buf kept;
    uint8_t timer;
    bool close_after;          /* the response asked for Connection: close */
    bool read_paused;          /* reading paused: too much input kept */
    bool over_capacity;        /* accepted past the connection limit: one answer, then close */
    struct sl_http_resp *resp; /* the held response, NULL if none */
};

/* A held response; allocated by sl_http_hold(), freed after its on_close. */
struct sl_http_resp {
    struct http_conn *h;
    const struct sl_http_resp_handler *handler;
    void *ud;
    int64_t remaining; /* body bytes still due under a Content-Length; -1: no length */
    bool keep_alive;   /* the request allows another one on this connection */
    bool is_head;
    bool http11; /* chunked encoding is available */
    bool head_sent;
    bool chunked;
    bool ended;
    bool close_after; /* close the connection once the response is out */
};

static const struct sl_conn_handler http_handler;

static struct http_conn *
http_of(struct sl_conn *c)
{
    return sl_conn_state(c);
}

const char *
sl_http_status_text(int status)
{
    /* clang-format off */
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default: return "Unknown";
    }
    /* clang-format on */
}

/* --- timeouts ---------------------------------------------------------------------------- */

/* Runs one of this layer's timeouts on the connection's node (T_NONE: none). */
static void
set_timer(struct http_conn *h, enum timer t)
{
    struct sl_timeq_node *n = sl_conn_timer(h->conn);
    struct sl_http_server *s = h->srv;
    h->timer = (uint8_t)t;
    if (t == T_NONE || sl_conn_closing(h->conn)) {
        sl_timeq_disarm(n);
        return;
    }
    sl_loop_arm(s->loop,
                t == T_HEADER ? &s->header_tq
                : t == T_BODY ? &s->body_tq
                              : &s->keepalive_tq,
                n);
}

/*
 * After bytes were parsed without completing a request: from the first byte of a request its
 * head must arrive within the header timeout (slowloris), then its body within the body
 * timeout. Each starts when its phase does, not again with every byte.
 */
static void
follow_phase(struct http_conn *h)
{
    switch (sl_http_parser_phase(&h->p)) {
    case SL_HTTP_HEAD:
        if (h->timer != T_HEADER)
            set_timer(h, T_HEADER);
        break;
    case SL_HTTP_BODY:
        if (h->timer != T_BODY)
            set_timer(h, T_BODY);
        break;
    case SL_HTTP_IDLE:
        break;
    }
}

/* --- requests and responses ------------------------------------------------ */

/* framing for write_head(): a length >= 0, or one of these. */
enum { BODY_CHUNKED = -1, BODY_TO_CLOSE = -2 };

static void
write_head(struct sl_conn *c, int status, const char *content_type, const char *headers,
           int64_t framing, bool close)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b, "HTTP/1.1 %d %s\r\nServer: sluice\r\n", status, sl_http_status_text(status));
    if (content_type)
        sl_buf_printf(&b, "Content-Type: %s\r\n", content_type);
    if (framing >= 0)
        sl_buf_printf(&b, "Content-Length: %lld\r\n", (long long)framing);
    else if (framing == BODY_CHUNKED)
        sl_buf_append_str(&b, "Transfer-Encoding: chunked\r\n");
    if (headers)
        sl_buf_append_str(&b, headers);
    sl_buf_append_str(&b, close ? "Connection: close\r\n\r\n" : "\r\n");
    sl_conn_write(c, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
}

void
sl_http_respond(struct sl_conn *c, const struct sl_http_req *req, int status,
                const char *content_type, const char *headers, const void *body, size_t len)
{
    struct http_conn *h = http_of(c);
    sl_assert(h->resp == NULL);
    /*
     * A handler answers a request read whole, so an error of its own leaves the connection's
     * framing intact (a 400 for a bad JSON body: an SDK's pool keeps the connection). Errors
     * that may leave bytes unread (408, 413, ...) and failures of the server close it.
     */
    bool close = !req->keep_alive || req->upgrade || h->over_capacity ||
                 (status >= 400 && status != 400 && status != 404 && status != 405 &&
                  status != 401 && status != 403 && status != 503 && status != 429);
    if (close)
        h->close_after = true;
    write_head(c, status, content_type, headers, (int64_t)len, close);
    if (!req->is_head && len > 0)
        sl_conn_write(c, body, len);
    h->srv->requests++;
}

void
sl_http_respond_error(struct sl_conn *c, const struct sl_http_req *req, int status,
                      const char *message, const char *headers)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b, "{\"error\":{\"status\":%d,\"message\":", status);
    sl_jsonw_cstr(&b, message);
    SL_JSONW_LIT(&b, "}}");
    sl_http_respond(c, req, status, "application/json", headers, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
}

/* A response for a request that was refused before it was complete; always closes. */
static void
respond_raw_error(struct http_conn *h, int status, const char *message, const char *headers)
{
    /* The routes log every request they see; this one never reached them. */
    struct sl_logrec r;
    if (sl_log_begin(&r, SL_LOG_INFO, "http.access")) {
        char peer[64];
        sl_conn_peer(h->conn, peer, sizeof(peer));
        sl_log_uint(&r, "conn", sl_conn_id(h->conn));
        sl_log_str(&r, "peer", peer);
        sl_log_int(&r, "status", status);
        sl_log_str(&r, "error", message);
        sl_log_end(&r);
    }
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b, "{\"error\":{\"status\":%d,\"message\":", status);
    sl_jsonw_cstr(&b, message);
    SL_JSONW_LIT(&b, "}}");
    write_head(h->conn, status, "application/json", headers, (int64_t)sl_buf_len(&b), true);
    sl_conn_write(h->conn, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
    sl_conn_close(h->conn);
}

static void
free_http(struct http_conn *h)
{
    sl_http_parser_cleanup(&h->p);
    sl_buf_free(&h->kept);
    free(h);
}

static void
dispatch(struct http_conn *h)
{
    struct sl_http_req req;
    sl_http_parser_request(&h->p, &req);
    req.over_capacity = h->over_capacity;
    h->close_after = false;
    h->srv->on_request(h->srv->ud, h->conn, &req);
}

/*
 * Keeps input that cannot be parsed yet (behind a held response, or while the output is
 * over its cap), to be parsed once it can. Past SL_HTTP_HELD_INPUT_MAX, reading pauses: the
 * kernel then holds the rest, and a client that goes away is only noticed later.
 */
static void
keep_input(struct http_conn *h, const char *data, size_t len)
{
    sl_buf_append(&h->kept, data, len);
    if (sl_buf_len(&h->kept) >= SL_HTTP_HELD_INPUT_MAX && !h->read_paused) {
        h->read_paused = true;
        sl_conn_pause_reading(h->conn);
    }
}

/*
 * Parses and dispatches the requests in data, in order, until the bytes are used up, the
 * connection closes, or parsing must wait: a request is held, or the connection's output
 * went over its cap (each answer adds to it, and a client that pipelines without reading
 * would otherwise have every answer queued). What is left waits in h->kept. Returns false if
 * the connection was taken over by another protocol, which freed h.
 */
static bool
parse(struct http_conn *h, const char *data, size_t len)
{
    struct sl_conn *c = h->conn;
    size_t off = 0;

    while (off < len && !sl_conn_closing(c)) {
        if (h->resp != NULL || sl_conn_congested(c)) {
            keep_input(h, data + off, len - off);
            return true;
        }
        size_t used;
        int rc = sl_http_parser_feed(&h->p, data + off, len - off, &used);
        off += used;
        if (sl_http_parser_take_continue(&h->p)) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            sl_conn_write(c, cont, sizeof(cont) - 1);
        }
        if (rc == SL_HTTP_ERROR) {
            const char *message, *headers;
            int status = sl_http_parser_error(&h->p, &message, &headers);
            respond_raw_error(h, status, message, headers);
            return true;
        }
        if (rc == SL_HTTP_NEED_MORE) {
            follow_phase(h);
            break;
        }
        set_timer(h, T_NONE);
        bool upgrade = h->p.hp.upgrade != 0;
        dispatch(h);
        if (sl_conn_state(c) != h) {
            /* Taken over (WebSocket): what follows the request is the new protocol's. */
            sl_assert(h->resp == NULL);
            free_http(h);
            if (off < len && !sl_conn_closing(c))
                sl_conn_feed(c, data + off, len - off);
            return false;
        }
        /* The request's buffers go now: a held response may last long. */
        sl_http_parser_next(&h->p);
        if (h->resp != NULL)
            continue;
        if (h->close_after || upgrade || h->over_capacity) {
            sl_conn_close(c);
            return true;
        }
        set_timer(h, T_KEEPALIVE);
    }
    return true;
}

/* Parses what was kept, as if it had just arrived. */
static void
parse_kept(struct http_conn *h)
{
    struct sl_buf in = h->kept;
    h->kept = (struct sl_buf)SL_BUF_INIT;
    if (h->read_paused) {
        h->read_paused = false;
        sl_conn_resume_reading(h->conn);
    }
    parse(h, sl_buf_ptr(&in), sl_buf_len(&in));
    sl_buf_free(&in);
}

static void
on_read(struct sl_conn *c, const char *data, size_t len)
{
    struct http_conn *h = http_of(c);
    /* Behind input already waiting: keep the order. */
    if (sl_buf_len(&h->kept) > 0) {
        keep_input(h, data, len);
        return;
    }
    parse(h, data, len);
}

/* Ends the held response's life: its on_close, then the free. */
static void
release_resp(struct http_conn *h, bool aborted)
{
    struct sl_http_resp *r = h->resp;
    h->resp = NULL;
    r->handler->on_close(r->ud, r, aborted);
    free(r);
}

/*
 * The held response is ended and entirely handed to the kernel: report it, then close, or
 * go on with the input that waited behind it.
 */
static void
complete(struct http_conn *h)
{
    struct sl_conn *c = h->conn;
    bool close = h->resp->close_after;
    release_resp(h, false);
    if (close || sl_conn_closing(c)) {
        sl_conn_close(c);
        return;
    }
    set_timer(h, T_KEEPALIVE);
    parse_kept(h);
}

static void
on_drain(struct sl_conn *c)
{
    struct http_conn *h = http_of(c);
    struct sl_http_resp *r = h->resp;
    if (r == NULL) {
        /* The output drained: requests that waited for it may go on. */
        if (sl_buf_len(&h->kept) > 0)
            parse_kept(h);
        return;
    }
    if (r->ended)
        complete(h);
    else if (r->handler->on_drain)
        r->handler->on_drain(r->ud, r);
}

static void
on_eof(struct sl_conn *c)
{
    struct http_conn *h = http_of(c);
    struct sl_http_resp *r = h->resp;
    if (r == NULL) {
        sl_conn_close(c);
        return;
    }
    /*
     * The client closed (or half-closed: taken as gone, as nginx does) while a response was
     * open. If the whole response is already in the kernel, it is complete anyway (its
     * drain notification was still to come).
     */
    release_resp(h, !(r->ended && sl_conn_queued(c) == 0));
    sl_conn_abort(c);
}

static void
on_close(struct sl_conn *c)
{
    struct http_conn *h = http_of(c);
    if (h->resp != NULL)
        release_resp(h, true);
    free_http(h);
}

static const struct sl_conn_handler http_handler = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_drain = on_drain,
    .on_close = on_close,
};

static void
on_header_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct http_conn *h = http_of(sl_conn_from_timer(n));
    h->timer = T_NONE;
    respond_raw_error(h, 408, "request headers not received in time", NULL);
}

static void
on_body_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct http_conn *h = http_of(sl_conn_from_timer(n));
    h->timer = T_NONE;
    respond_raw_error(h, 408, "request body not received in time", NULL);
}

static void
on_keepalive_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    struct http_conn *h = http_of(sl_conn_from_timer(n));
    h->timer = T_NONE;
    sl_conn_close(h->conn);
}

void
sl_http_server_init(struct sl_http_server *s, struct sl_loop *loop,
                    const struct sl_http_limits *limits, sl_http_request_cb cb, void *ud)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->limits = *limits;
    if (s->limits.body_timeout_ms == 0)
        s->limits.body_timeout_ms = s->limits.header_timeout_ms;
    s->on_request = cb;
    s->ud = ud;
    sl_timeq_init(&s->header_tq, s->limits.header_timeout_ms, on_header_timeout);
    sl_timeq_init(&s->body_tq, s->limits.body_timeout_ms, on_body_timeout);
    sl_timeq_init(&s->keepalive_tq, s->limits.keepalive_timeout_ms, on_keepalive_timeout);
    sl_loop_add_timeq(loop, &s->header_tq);
    sl_loop_add_timeq(loop, &s->body_tq);
    sl_loop_add_timeq(loop, &s->keepalive_tq);
}

void
sl_http_server_on_head(struct sl_http_server *s, sl_http_head_cb cb)
{
    s->on_head = cb;
}

static void
serve(struct sl_http_server *s, struct sl_conn *c, bool over_capacity)
{
    struct http_conn *h = sl_calloc(1, sizeof(*h));
    sl_http_parser_init(&h->p, &s->limits, s->on_head, s->ud);
    h->srv = s;
    h->conn = c;
    h->over_capacity = over_capacity;
    sl_conn_set_handler(c, &http_handler, h);
    /* The first request's head is due from the connection's start. */
    set_timer(h, T_HEADER);
}

void
sl_http_serve(struct sl_http_server *s, struct sl_conn *c)
{
    serve(s, c, false);
}

void
sl_http_serve_over_capacity(struct sl_http_server *s, struct sl_conn *c)
{
    serve(s, c, true);
}

/* --- held responses ------------------------------------------------------------------------ */

struct sl_http_resp *
sl_http_hold(struct sl_conn *c, const struct sl_http_req *req,
             const struct sl_http_resp_handler *handler, void *ud)
{
    struct http_conn *h = http_of(c);
    /* Only from inside the request callback, once. */
    sl_assert(h->p.complete && h->resp == NULL && handler->on_close != NULL);
    struct sl_http_resp *r = sl_calloc(1, sizeof(*r));
    r->h = h;
    r->handler = handler;
    r->ud = ud;
    r->remaining = -1;
    /* After an upgrade request the bytes that follow are not HTTP: close after the answer. */
    r->keep_alive = req->keep_alive && !req->upgrade && !h->over_capacity;
    r->is_head = req->is_head;
    r->http11 = req->http_minor >= 1;
    h->resp = r;
    h->srv->requests++;
    return r;
}

void
sl_http_head(struct sl_http_resp *r, int status, const char *content_type, const char *headers,
             int64_t content_length)
{
    sl_assert(!r->head_sent);
    r->head_sent = true;
    int64_t framing = content_length;
    if (content_length >= 0) {
        r->remaining = content_length;
    } else if (r->http11) {
        r->chunked = true;
        framing = BODY_CHUNKED;
    } else {
        /* HTTP/1.0 has no chunks: the end of the body is the end of the connection. */
        framing = BODY_TO_CLOSE;
        r->close_after = true;
    }
    if (!r->keep_alive)
        r->close_after = true;
    write_head(r->h->conn, status, content_type, headers, framing, r->close_after);
}

void
sl_http_body(struct sl_http_resp *r, const void *p, size_t n)
{
    sl_assert(r->head_sent);
    if (n == 0 || r->ended || r->is_head)
        return;
    struct sl_conn *c = r->h->conn;
    if (r->remaining >= 0) {
        sl_assert((uint64_t)r->remaining >= n);
        r->remaining -= (int64_t)n;
    }
    if (!r->chunked) {
        sl_conn_write(c, p, n);
        return;
    }
    /* The chunk-size line, without printf: this runs for every piece of a stream. */
    char hex[2 * sizeof(size_t) + 2];
    size_t k = sizeof(hex);
    hex[--k] = '\n';
    hex[--k] = '\r';
    for (size_t v = n; v != 0; v >>= 4)
        hex[--k] = "0123456789abcdef"[v & 15];
    size_t line = sizeof(hex) - k;
    char *dst = sl_conn_reserve(c, line + n + 2);
    memcpy(dst, hex + k, line);
    memcpy(dst + line, p, n);
    memcpy(dst + line + n, "\r\n", 2);
    sl_conn_commit(c, line + n + 2);
}

void
sl_http_flush(struct sl_http_resp *r)
{
    sl_conn_flush(r->h->conn);
}

void
sl_http_end(struct sl_http_resp *r, bool close_after)
{
    sl_assert(r->head_sent);
    if (r->ended)
        return;
    r->ended = true;
    struct sl_conn *c = r->h->conn;
    /* A body short of its Content-Length leaves the client waiting: only a close ends it. */
    if (close_after || (r->remaining > 0 && !r->is_head))
        r->close_after = true;
    if (r->chunked && !r->is_head)
        sl_conn_write(c, "0\r\n\r\n", 5);
    /* Completion comes with the drain notification; ask for one if nothing is queued. */
    if (sl_conn_queued(c) == 0)
        sl_conn_flush(c);
}

size_t
sl_http_queued(const struct sl_http_resp *r)
{
    return sl_conn_queued(r->h->conn);
}

struct sl_conn *
sl_http_resp_conn(const struct sl_http_resp *r)
{
    return r->h->conn;
}
