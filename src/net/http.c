#include "net/http.h"

#include <http_parser.h>
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

enum pstate { S_IDLE, S_URL, S_FIELD, S_VALUE, S_BODY };

struct hdr_off {
    uint32_t name_off, name_len, value_off, value_len;
};

struct http_conn {
    http_parser parser;
    struct sl_http_server *srv;
    struct sl_conn *conn;
    struct sl_buf raw; /* URL and header bytes of the request being parsed */
    struct sl_buf body;
    uint32_t url_len;
    struct hdr_off hdr[SL_HTTP_MAX_HEADERS];
    size_t nhdr;
    enum pstate st;
    int error_status; /* a limit hit inside a parser callback */
    bool complete;
    bool close_after;          /* the response asked for Connection: close */
    bool read_paused;          /* reading paused: too much input behind a held response */
    struct sl_http_resp *resp; /* the held response, NULL if none */
};

/* A held response; allocated by sl_http_hold(), freed after its on_close. */
struct sl_http_resp {
    struct http_conn *h;
    const struct sl_http_resp_handler *handler;
    void *ud;
    struct sl_buf in;  /* input that arrived behind the response, not parsed yet */
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
    case 529: return "Site Overloaded";
    default: return "Unknown";
    }
    /* clang-format on */
}

/* --- parser callbacks --------------------------------------------------- */

static int
limit(struct http_conn *h, int status)
{
    h->error_status = status;
    return 1;
}

static bool
headers_too_big(struct http_conn *h)
{
    /* Count the raw bytes plus the ": " and CRLF of each line, roughly what was sent. */
    return sl_buf_len(&h->raw) + 4 * h->nhdr > h->srv->limits.max_header_bytes;
}

static int
on_message_begin(http_parser *p)
{
    struct http_conn *h = p->data;
    sl_buf_clear(&h->raw);
    sl_buf_clear(&h->body);
    h->url_len = 0;
    h->nhdr = 0;
    h->st = S_URL;
    h->complete = false;
    /* From the first byte of a request, the header timeout runs (slowloris). */
    sl_loop_arm(h->srv->loop, &h->srv->header_tq, sl_conn_timer(h->conn));
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *h = p->data;
    sl_buf_append(&h->raw, at, len);
    h->url_len += (uint32_t)len;
    uint64_t max = h->srv->limits.max_url_bytes;
    if (max == 0 || max > h->srv->limits.max_header_bytes)
        max = h->srv->limits.max_header_bytes;
    if (h->url_len > max)
        return limit(h, 414);
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *h = p->data;
    if (h->st != S_FIELD) {
        if (h->nhdr == SL_HTTP_MAX_HEADERS)
            return limit(h, 431);
        struct hdr_off *o = &h->hdr[h->nhdr++];
        o->name_off = (uint32_t)sl_buf_len(&h->raw);
        o->name_len = o->value_len = 0;
        o->value_off = o->name_off;
        h->st = S_FIELD;
    }
    sl_buf_append(&h->raw, at, len);
    h->hdr[h->nhdr - 1].name_len += (uint32_t)len;
    return headers_too_big(h) ? limit(h, 431) : 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *h = p->data;
    struct hdr_off *o = &h->hdr[h->nhdr - 1];
    if (h->st != S_VALUE) {
        o->value_off = (uint32_t)sl_buf_len(&h->raw);
        h->st = S_VALUE;
    }
    sl_buf_append(&h->raw, at, len);
    o->value_len += (uint32_t)len;
    return headers_too_big(h) ? limit(h, 431) : 0;
}

/*
 * Whether the client waits for "100 Continue" before sending the body it announced (curl
 * does for large bodies, for up to a second).
 */
static bool
expects_continue(struct http_conn *h, const http_parser *p)
{
    if (p->http_major != 1 || p->http_minor < 1)
        return false;
    if (!(p->flags & F_CHUNKED) && !((p->flags & F_CONTENTLENGTH) && p->content_length > 0))
        return false;
    const char *raw = sl_buf_ptr(&h->raw);
    for (size_t i = 0; i < h->nhdr; i++) {
        const struct hdr_off *o = &h->hdr[i];
        if (o->name_len == 6 && strncasecmp(raw + o->name_off, "Expect", 6) == 0 &&
            o->value_len >= 12 && strncasecmp(raw + o->value_off, "100-continue", 12) == 0)
            return true;
    }
    return false;
}

static int
on_headers_complete(http_parser *p)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct http_conn *h = p->data;
    h->st = S_BODY;
    sl_timeq_disarm(sl_conn_timer(h->conn));
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > h->srv->limits.max_body_bytes)
        return limit(h, 413);
    if (expects_continue(h, p))
        sl_conn_write(h->conn, cont, sizeof(cont) - 1);
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *h = p->data;
    if (sl_buf_len(&h->body) + len > h->srv->limits.max_body_bytes)
        return limit(h, 413);
    sl_buf_append(&h->body, at, len);
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct http_conn *h = p->data;
    h->complete = true;
    /* Stop here so that the request is handled before the next pipelined one is read. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- requests and responses ------------------------------------------------ */

static void
reset_request(struct http_conn *h)
{
    sl_buf_free(&h->raw);
    sl_buf_free(&h->body);
    h->nhdr = 0;
    h->url_len = 0;
    h->st = S_IDLE;
    h->complete = false;
}

static void
build_request(struct http_conn *h, struct sl_http_req *req)
{
    const char *raw = sl_buf_ptr(&h->raw);
    memset(req, 0, sizeof(*req));
    req->method = http_method_str(h->parser.method);
    req->is_get = h->parser.method == HTTP_GET;
    req->is_head = h->parser.method == HTTP_HEAD;
    req->target = sl_slice_make(raw, h->url_len);
    const char *q = memchr(raw, '?', h->url_len);
    if (q) {
        req->path = sl_slice_make(raw, (size_t)(q - raw));
        req->query = sl_slice_make(q + 1, h->url_len - (size_t)(q - raw) - 1);
    } else {
        req->path = req->target;
        req->query = sl_slice_make(raw + h->url_len, 0);
    }
    for (size_t i = 0; i < h->nhdr; i++) {
        req->headers[i].name = sl_slice_make(raw + h->hdr[i].name_off, h->hdr[i].name_len);
        req->headers[i].value = sl_slice_make(raw + h->hdr[i].value_off, h->hdr[i].value_len);
        /* Optional whitespace after the value is not part of it (RFC 9110 5.5). */
        while (req->headers[i].value.len > 0 &&
               (req->headers[i].value.ptr[req->headers[i].value.len - 1] == ' ' ||
                req->headers[i].value.ptr[req->headers[i].value.len - 1] == '\t'))
            req->headers[i].value.len--;
    }
    req->nheaders = h->nhdr;
    req->body = sl_slice_make(sl_buf_ptr(&h->body), sl_buf_len(&h->body));
    req->keep_alive = http_should_keep_alive(&h->parser) != 0;
    req->upgrade = h->parser.upgrade != 0;
    req->http_minor = h->parser.http_minor;
}

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
    bool close = !req->keep_alive || req->upgrade ||
                 (status >= 400 && status != 404 && status != 405 && status != 401 &&
                  status != 403 && status != 503 && status != 429);
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

/* A response for a request that could not be parsed at all; always closes. */
static void
respond_raw_error(struct http_conn *h, int status, const char *message)
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
    write_head(h->conn, status, "application/json", NULL, (int64_t)sl_buf_len(&b), true);
    sl_conn_write(h->conn, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
    sl_conn_close(h->conn);
}

static const char *
limit_message(int status)
{
    /* clang-format off */
    switch (status) {
    case 413: return "request body too large";
    case 414: return "request line too long";
    case 431: return "request headers too large";
    default: return "malformed request";
    }
    /* clang-format on */
}

static void
free_http(struct http_conn *h)
{
    sl_buf_free(&h->raw);
    sl_buf_free(&h->body);
    free(h);
}

static void
dispatch(struct http_conn *h)
{
    struct sl_http_req req;
    build_request(h, &req);
    h->close_after = false;
    h->srv->on_request(h->srv->ud, h->conn, &req);
}

/*
 * Keeps input that arrived behind a held response, to be parsed once it is over. Past the
 * cap, reading pauses: the kernel then holds the rest, and a client that goes away is only
 * noticed when the response is over.
 */
static void
keep_input(struct http_conn *h, const char *data, size_t len)
{
    struct sl_buf *in = &h->resp->in;
    sl_buf_append(in, data, len);
    if (sl_buf_len(in) >= SL_HTTP_HELD_INPUT_MAX && !h->read_paused) {
        h->read_paused = true;
        sl_conn_pause_reading(h->conn);
    }
}

/*
 * Parses and dispatches the requests in data, in order, until the bytes are used up, the
 * connection closes, or a request is held (the rest is then kept behind the response).
 * Returns false if the connection was taken over by another protocol, which freed h.
 */
static bool
parse(struct http_conn *h, const char *data, size_t len)
{
    struct sl_conn *c = h->conn;
    size_t off = 0;

    while (off < len && !sl_conn_closing(c)) {
        size_t n = http_parser_execute(&h->parser, &settings, data + off, len - off);
        off += n;
        if (h->error_status) {
            respond_raw_error(h, h->error_status, limit_message(h->error_status));
            return true;
        }
        enum http_errno err = HTTP_PARSER_ERRNO(&h->parser);
        if (h->complete) {
            if (err == HPE_PAUSED)
                http_parser_pause(&h->parser, 0);
            bool upgrade = h->parser.upgrade != 0;
            dispatch(h);
            if (sl_conn_state(c) != h) {
                /* Taken over (WebSocket): what follows the request is the new protocol's. */
                sl_assert(h->resp == NULL);
                free_http(h);
                if (off < len && !sl_conn_closing(c))
                    sl_conn_feed(c, data + off, len - off);
                return false;
            }
            if (h->resp != NULL) {
                /* Held, maybe for long: drop the request's buffers now. */
                reset_request(h);
                if (off < len)
                    keep_input(h, data + off, len - off);
                return true;
            }
            if (h->close_after || upgrade) {
                sl_conn_close(c);
                return true;
            }
            reset_request(h);
            sl_loop_arm(h->srv->loop, &h->srv->keepalive_tq, sl_conn_timer(c));
            continue;
        }
        if (err != HPE_OK) {
            respond_raw_error(h, 400, http_errno_description(err));
            return true;
        }
        if (n == 0)
            break;
    }
    return true;
}

static void
on_read(struct sl_conn *c, const char *data, size_t len)
{
    struct http_conn *h = http_of(c);
    if (h->resp != NULL) {
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
    sl_buf_free(&r->in);
    free(r);
}

/*
 * The held response is ended and entirely handed to the kernel: report it, then close, or
 * go on with the input that waited behind it as if it had just arrived.
 */
static void
complete(struct http_conn *h)
{
    struct sl_conn *c = h->conn;
    struct sl_buf in = h->resp->in;
    bool close = h->resp->close_after;
    h->resp->in = (struct sl_buf)SL_BUF_INIT;
    release_resp(h, false);
    if (close || sl_conn_closing(c)) {
        sl_buf_free(&in);
        sl_conn_close(c);
        return;
    }
    if (h->read_paused) {
        h->read_paused = false;
        sl_conn_resume_reading(c);
    }
    sl_loop_arm(h->srv->loop, &h->srv->keepalive_tq, sl_conn_timer(c));
    parse(h, sl_buf_ptr(&in), sl_buf_len(&in));
    sl_buf_free(&in);
}

static void
on_drain(struct sl_conn *c)
{
    struct http_conn *h = http_of(c);
    struct sl_http_resp *r = h->resp;
    if (r == NULL)
        return;
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
    struct sl_conn *c = sl_conn_from_timer(n);
    struct http_conn *h = http_of(c);
    respond_raw_error(h, 408, "request headers not received in time");
}

static void
on_keepalive_timeout(struct sl_timeq_node *n, uint64_t now)
{
    (void)now;
    sl_conn_close(sl_conn_from_timer(n));
}

void
sl_http_server_init(struct sl_http_server *s, struct sl_loop *loop,
                    const struct sl_http_limits *limits, sl_http_request_cb cb, void *ud)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->limits = *limits;
    s->on_request = cb;
    s->ud = ud;
    sl_timeq_init(&s->header_tq, limits->header_timeout_ms, on_header_timeout);
    sl_timeq_init(&s->keepalive_tq, limits->keepalive_timeout_ms, on_keepalive_timeout);
    sl_loop_add_timeq(loop, &s->header_tq);
    sl_loop_add_timeq(loop, &s->keepalive_tq);
}

void
sl_http_serve(struct sl_http_server *s, struct sl_conn *c)
{
    struct http_conn *h = sl_calloc(1, sizeof(*h));
    http_parser_init(&h->parser, HTTP_REQUEST);
    h->parser.data = h;
    h->srv = s;
    h->conn = c;
    sl_loop_arm(s->loop, &s->header_tq, sl_conn_timer(c));
    sl_conn_set_handler(c, &http_handler, h);
}

struct sl_slice
sl_http_get_header(const struct sl_http_req *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct sl_slice *k = &req->headers[i].name;
        if (k->len == n && strncasecmp(k->ptr, name, n) == 0)
            return req->headers[i].value;
    }
    return sl_slice_make(NULL, 0);
}

long
sl_http_decode(struct sl_slice src, char *out, size_t outlen, bool plus_space)
{
    size_t o = 0;
    for (size_t i = 0; i < src.len; i++) {
        char ch = src.ptr[i];
        if (ch == '%') {
            if (i + 2 >= src.len)
                return -1;
            int hi = sl_hex_digit(src.ptr[i + 1]), lo = sl_hex_digit(src.ptr[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            ch = (char)(hi << 4 | lo);
            if (ch == '\0')
                return -1;
            i += 2;
        } else if (ch == '+' && plus_space) {
            ch = ' ';
        }
        if (o + 1 >= outlen)
            return -1;
        out[o++] = ch;
    }
    if (outlen == 0)
        return -1;
    out[o] = '\0';
    return (long)o;
}

long
sl_http_query_get(struct sl_slice query, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);
    const char *p = query.ptr, *end = query.ptr + query.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - p) == nlen && memcmp(p, name, nlen) == 0) {
            struct sl_slice v =
                eq ? sl_slice_make(eq + 1, (size_t)(pe - eq - 1)) : sl_slice_make(pe, 0);
            long n = sl_http_decode(v, out, outlen, true);
            return n < 0 ? -2 : n;
        }
        p = pe + 1;
    }
    return -1;
}

long
sl_http_query_param(const struct sl_http_req *req, const char *name, char *out, size_t outlen)
{
    return sl_http_query_get(req->query, name, out, outlen);
}

/* --- held responses ------------------------------------------------------------------------ */

struct sl_http_resp *
sl_http_hold(struct sl_conn *c, const struct sl_http_req *req,
             const struct sl_http_resp_handler *handler, void *ud)
{
    struct http_conn *h = http_of(c);
    /* Only from inside the request callback, once. */
    sl_assert(h->complete && h->resp == NULL && handler->on_close != NULL);
    struct sl_http_resp *r = sl_calloc(1, sizeof(*r));
    r->h = h;
    r->handler = handler;
    r->ud = ud;
    r->remaining = -1;
    /* After an upgrade request the bytes that follow are not HTTP: close after the answer. */
    r->keep_alive = req->keep_alive && !req->upgrade;
    r->is_head = req->is_head;
    r->http11 = h->parser.http_major == 1 && h->parser.http_minor >= 1;
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
