#include "http.h"

#include <ctype.h>
#include <http_parser.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "obs/log.h"
#include "synth.h"

/* The kernel clamps this to net.core.somaxconn; ask for plenty so that a benchmark opening
 * thousands of streams at once does not lose SYNs (a lost SYN costs a 1 s retransmit). */
#define LISTEN_BACKLOG 65535

struct hdr_off {
    uint32_t name_off, name_len, val_off, val_len;
};

struct mock_http {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t sreq;
    uv_write_t wreq;
    struct mock_httpd *d;
    struct sl_list link;
    void *app;
    int open_handles;
    bool closing, shutting;

    http_parser parser;
    struct sl_buf in; /* bytes read and not parsed yet */
    /* the request being parsed */
    struct sl_buf url, hbuf, body;
    struct hdr_off hdrs[MOCK_MAX_HEADERS];
    size_t nhdrs;
    int hstate; /* 0: none, 1: in a field, 2: in a value */
    bool have_request, too_big, bad_header;
    struct mock_req req;

    /* the response */
    bool in_response, chunked, ended, close_after, keep_alive;
    struct sl_buf pend, fly;
    size_t pend_body, fly_body;
    uint32_t pend_tokens, fly_tokens;
    bool writing;
};

static void conn_close(struct mock_http *c, bool aborted);
static void process_input(struct mock_http *c);
static void on_shutdown(uv_shutdown_t *req, int status);

struct mock_httpd *
mock_http_server(struct mock_http *c)
{
    return c->d;
}

void **
mock_http_app(struct mock_http *c)
{
    return &c->app;
}

/* --- parser callbacks -------------------------------------------------------------------- */

static int
on_message_begin(http_parser *p)
{
    struct mock_http *c = p->data;
    sl_buf_clear(&c->url);
    sl_buf_clear(&c->hbuf);
    sl_buf_clear(&c->body);
    c->nhdrs = 0;
    c->hstate = 0;
    c->too_big = c->bad_header = false;
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t n)
{
    struct mock_http *c = p->data;
    if (sl_buf_len(&c->url) + n > MOCK_HTTP_MAX_URL) {
        c->too_big = true;
        return -1;
    }
    sl_buf_append(&c->url, at, n);
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t n)
{
    struct mock_http *c = p->data;
    if (sl_buf_len(&c->hbuf) + n > MOCK_HTTP_MAX_HEADER_BYTES) {
        c->bad_header = true;
        return -1;
    }
    if (c->hstate != 1) {
        if (c->nhdrs == MOCK_MAX_HEADERS) {
            c->bad_header = true;
            return -1;
        }
        struct hdr_off *h = &c->hdrs[c->nhdrs++];
        h->name_off = (uint32_t)sl_buf_len(&c->hbuf);
        h->name_len = 0;
        h->val_off = h->name_off;
        h->val_len = 0;
        c->hstate = 1;
    }
    sl_buf_append(&c->hbuf, at, n);
    c->hdrs[c->nhdrs - 1].name_len += (uint32_t)n;
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t n)
{
    struct mock_http *c = p->data;
    if (sl_buf_len(&c->hbuf) + n > MOCK_HTTP_MAX_HEADER_BYTES || c->nhdrs == 0) {
        c->bad_header = true;
        return -1;
    }
    struct hdr_off *h = &c->hdrs[c->nhdrs - 1];
    if (c->hstate != 2) {
        h->val_off = (uint32_t)sl_buf_len(&c->hbuf);
        h->val_len = 0;
        c->hstate = 2;
    }
    sl_buf_append(&c->hbuf, at, n);
    h->val_len += (uint32_t)n;
    return 0;
}

static void queue_raw(struct mock_http *c, const void *p, size_t n);
static void kick(struct mock_http *c);

static int
on_headers_complete(http_parser *p)
{
    struct mock_http *c = p->data;
    char *base = c->hbuf.data;
    for (size_t i = 0; i < c->nhdrs; i++) {
        for (uint32_t k = 0; k < c->hdrs[i].name_len; k++)
            base[c->hdrs[i].name_off + k] =
                (char)tolower((unsigned char)base[c->hdrs[i].name_off + k]);
    }
    if (p->content_length != ULLONG_MAX && p->content_length > MOCK_HTTP_MAX_BODY) {
        c->too_big = true;
        return -1;
    }
    /* libcurl sends "Expect: 100-continue" with larger bodies and waits up to a second
     * for the interim answer; give it at once. */
    for (size_t i = 0; i < c->nhdrs; i++) {
        struct sl_slice name = sl_slice_make(base + c->hdrs[i].name_off, c->hdrs[i].name_len);
        struct sl_slice val = sl_slice_make(base + c->hdrs[i].val_off, c->hdrs[i].val_len);
        if (sl_slice_eq(name, "expect") && sl_slice_ieq(val, "100-continue") &&
            p->http_minor >= 1) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            queue_raw(c, cont, sizeof(cont) - 1);
            kick(c);
        }
    }
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
    struct mock_http *c = p->data;
    if (sl_buf_len(&c->body) + n > MOCK_HTTP_MAX_BODY) {
        c->too_big = true;
        return -1;
    }
    sl_buf_append(&c->body, at, n);
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    struct mock_http *c = p->data;
    c->have_request = true;
    /* Stop here: the next pipelined request waits until this response has ended. */
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* --- writing ------------------------------------------------------------------------------ */

static void
finish_response(struct mock_http *c)
{
    bool close_after = c->close_after;
    c->in_response = false;
    c->ended = false;
    sl_buf_free(&c->pend);
    sl_buf_free(&c->fly);
    sl_buf_free(&c->url);
    sl_buf_free(&c->hbuf);
    sl_buf_free(&c->body);
    if (c->d->cbs->on_done)
        c->d->cbs->on_done(c);
    if (c->closing)
        return;
    if (close_after) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->shutting = true;
        /* uv_shutdown waits for queued writes, then sends FIN. */
        if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
            conn_close(c, false);
        return;
    }
    http_parser_pause(&c->parser, 0);
    process_input(c);
}

static void
on_write(uv_write_t *req, int status)
{
    struct mock_http *c = req->data;
    c->writing = false;
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_close(c, c->in_response);
        return;
    }
    size_t body = c->fly_body;
    uint32_t tokens = c->fly_tokens;
    sl_buf_clear(&c->fly);
    c->fly_body = 0;
    c->fly_tokens = 0;
    if ((body || tokens) && c->d->cbs->on_written)
        c->d->cbs->on_written(c, body, tokens);
    if (c->closing)
        return;
    if (sl_buf_len(&c->pend) > 0) {
        kick(c);
    } else if (c->in_response && c->ended) {
        finish_response(c);
    } else if (c->in_response && c->d->cbs->on_drain) {
        c->d->cbs->on_drain(c);
    }
}

static void
kick(struct mock_http *c)
{
    if (c->writing || c->closing || c->shutting || sl_buf_len(&c->pend) == 0)
        return;
    struct sl_buf t = c->fly;
    c->fly = c->pend;
    c->pend = t;
    sl_buf_clear(&c->pend);
    c->fly_body = c->pend_body;
    c->fly_tokens = c->pend_tokens;
    c->pend_body = 0;
    c->pend_tokens = 0;
    uv_buf_t b = uv_buf_init((char *)sl_buf_ptr(&c->fly), (unsigned)sl_buf_len(&c->fly));
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        conn_close(c, c->in_response);
        return;
    }
    c->writing = true;
}

static void
queue_raw(struct mock_http *c, const void *p, size_t n)
{
    sl_buf_append(&c->pend, p, n);
}

void
mock_http_head(struct mock_http *c, int status, const char *content_type,
               const struct mock_hdr *extra, size_t nextra, long long content_length)
{
    struct sl_buf *b = &c->pend;
    c->chunked = content_length < 0 && c->parser.http_major == 1 && c->parser.http_minor >= 1;
    if (content_length < 0 && !c->chunked)
        c->close_after = true; /* HTTP/1.0: the close delimits the body */
    sl_buf_printf(b, "HTTP/1.1 %d %s\r\n", status, mock_http_reason(status));
    if (content_type)
        sl_buf_printf(b, "content-type: %s\r\n", content_type);
    for (size_t i = 0; i < nextra; i++)
        sl_buf_printf(b, "%s: %s\r\n", extra[i].name, extra[i].value);
    if (content_length >= 0)
        sl_buf_printf(b, "content-length: %lld\r\n", content_length);
    else if (c->chunked)
        sl_buf_append_str(b, "transfer-encoding: chunked\r\n");
    if (!c->keep_alive || c->close_after)
        sl_buf_append_str(b, "connection: close\r\n");
    sl_buf_append_str(b, "\r\n");
    kick(c);
}

void
mock_http_body(struct mock_http *c, const void *p, size_t n, uint32_t tokens)
{
    if (c->closing || n == 0)
        return;
    if (c->chunked) {
        /* The chunk-size line, without printf: this runs for every write of a stream. */
        char hex[20];
        size_t k = sizeof(hex);
        hex[--k] = '\n';
        hex[--k] = '\r';
        size_t v = n;
        do {
            hex[--k] = "0123456789abcdef"[v & 15];
            v >>= 4;
        } while (v);
        sl_buf_append(&c->pend, hex + k, sizeof(hex) - k);
    }
    sl_buf_append(&c->pend, p, n);
    if (c->chunked)
        sl_buf_append(&c->pend, "\r\n", 2);
    c->pend_body += n;
    c->pend_tokens += tokens;
    kick(c);
}

void
mock_http_end(struct mock_http *c, bool close_after)
{
    if (c->closing || c->ended)
        return;
    if (c->chunked)
        sl_buf_append(&c->pend, "0\r\n\r\n", 5);
    c->ended = true;
    c->close_after = c->close_after || close_after || !c->keep_alive;
    if (!c->writing && sl_buf_len(&c->pend) == 0)
        finish_response(c);
    else
        kick(c);
}

size_t
mock_http_queued(const struct mock_http *c)
{
    return sl_buf_len(&c->pend) + sl_buf_len(&c->fly);
}

/* --- reading ------------------------------------------------------------------------------ */

static void
answer_bad_request(struct mock_http *c, int status, const char *what)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b, "{\"mock_error\":\"%s\"}\n", what);
    c->in_response = true;
    c->keep_alive = false;
    mock_http_head(c, status, "application/json", NULL, 0, (long long)sl_buf_len(&b));
    mock_http_body(c, sl_buf_ptr(&b), sl_buf_len(&b), 0);
    mock_http_end(c, true);
    sl_buf_free(&b);
}

static void
dispatch(struct mock_http *c)
{
    struct mock_req *r = &c->req;
    c->have_request = false;
    c->in_response = true;
    c->ended = false;
    c->close_after = false;
    c->keep_alive = http_should_keep_alive(&c->parser) != 0;

    memset(r, 0, sizeof(*r));
    r->method = sl_slice_make(http_method_str((enum http_method)c->parser.method),
                              strlen(http_method_str((enum http_method)c->parser.method)));
    const char *url = sl_buf_cstr(&c->url);
    const char *q = strchr(url, '?');
    size_t ulen = strlen(url);
    if (q) {
        r->path = sl_slice_make(url, (size_t)(q - url));
        r->query = sl_slice_make(q + 1, ulen - (size_t)(q - url) - 1);
    } else {
        r->path = sl_slice_make(url, ulen);
        r->query = sl_slice_make("", 0);
    }
    /* Drop a fragment, which clients should not send anyway. */
    const char *hash = memchr(r->query.ptr, '#', r->query.len);
    if (hash)
        r->query.len = (size_t)(hash - r->query.ptr);
    const char *base = c->hbuf.data ? c->hbuf.data : "";
    for (size_t i = 0; i < c->nhdrs; i++) {
        struct mock_header *h = &r->headers[r->nheaders++];
        h->name = sl_slice_make(base + c->hdrs[i].name_off, c->hdrs[i].name_len);
        h->value = sl_slice_make(base + c->hdrs[i].val_off, c->hdrs[i].val_len);
        while (h->value.len > 0 &&
               (h->value.ptr[h->value.len - 1] == ' ' || h->value.ptr[h->value.len - 1] == '\t'))
            h->value.len--;
    }
    r->body = sl_slice_make(sl_buf_ptr(&c->body), sl_buf_len(&c->body));
    c->d->cbs->on_request(c, r);
}

static void
process_input(struct mock_http *c)
{
    while (!c->in_response && !c->closing && !c->shutting && sl_buf_len(&c->in) > 0) {
        size_t len = sl_buf_len(&c->in);
        size_t n = http_parser_execute(&c->parser, &parser_settings, sl_buf_ptr(&c->in), len);
        enum http_errno err = HTTP_PARSER_ERRNO(&c->parser);
        if (c->have_request) {
            sl_buf_consume(&c->in, n);
            dispatch(c);
            continue;
        }
        if (err != HPE_OK) {
            sl_buf_free(&c->in);
            if (c->too_big)
                answer_bad_request(c, 413, "request too large");
            else if (c->bad_header)
                answer_bad_request(c, 431, "too many or too large headers");
            else
                answer_bad_request(c, 400, http_errno_name(err));
            return;
        }
        sl_buf_consume(&c->in, n);
        if (n == len)
            break;
    }
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct mock_http *c = h->data;
    *buf = uv_buf_init(c->d->rbuf, sizeof(c->d->rbuf));
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct mock_http *c = s->data;
    if (nread < 0) {
        if (c->in_response && c->ended && sl_buf_len(&c->pend) == 0 &&
            uv_stream_get_write_queue_size(s) == 0) {
            /* The whole response is in the kernel and the client read it and left before
             * our write callback ran (it runs on the next loop turn): that is a complete
             * response, not an abort. */
            size_t body = c->fly_body;
            uint32_t tokens = c->fly_tokens;
            c->fly_body = 0;
            c->fly_tokens = 0;
            if ((body || tokens) && c->d->cbs->on_written)
                c->d->cbs->on_written(c, body, tokens);
            c->in_response = false;
            if (c->d->cbs->on_done)
                c->d->cbs->on_done(c);
            conn_close(c, false);
            return;
        }
        /* EOF or reset: a client that leaves during a response aborted it. */
        conn_close(c, c->in_response);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    if (c->in_response && sl_buf_len(&c->in) + (size_t)nread > MOCK_HTTP_MAX_PIPELINED) {
        conn_close(c, true);
        return;
    }
    sl_buf_append(&c->in, buf->base, (size_t)nread);
    process_input(c);
}

/* --- lifetime ----------------------------------------------------------------------------- */

static void
on_handle_closed(uv_handle_t *h)
{
    struct mock_http *c = h->data;
    if (--c->open_handles > 0)
        return;
    sl_list_unlink(&c->link);
    c->d->nconns--;
    sl_buf_free(&c->in);
    sl_buf_free(&c->url);
    sl_buf_free(&c->hbuf);
    sl_buf_free(&c->body);
    sl_buf_free(&c->pend);
    sl_buf_free(&c->fly);
    free(c);
}

static void
conn_close(struct mock_http *c, bool aborted)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->d->cbs->on_close)
        c->d->cbs->on_close(c, aborted);
    c->app = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    struct mock_http *c = req->handle->data;
    conn_close(c, false);
}

void
mock_http_reset(struct mock_http *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->d->cbs->on_close)
        c->d->cbs->on_close(c, false);
    c->app = NULL;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->shutting || uv_tcp_close_reset(&c->tcp, on_handle_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

static void
on_timer(uv_timer_t *t)
{
    struct mock_http *c = t->data;
    if (!c->closing && c->d->cbs->on_timer)
        c->d->cbs->on_timer(c);
}

void
mock_http_timer_start(struct mock_http *c, uint64_t ms)
{
    if (!c->closing)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

void
mock_http_timer_stop(struct mock_http *c)
{
    uv_timer_stop(&c->timer);
}

static void
on_connection(uv_stream_t *server, int status)
{
    struct mock_httpd *d = server->data;
    if (status < 0 || d->stopping)
        return;
    struct mock_http *c = sl_calloc(1, sizeof(*c));
    c->d = d;
    uv_tcp_init(d->loop, &c->tcp);
    uv_timer_init(d->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    sl_list_init(&c->link);
    sl_list_push_back(&d->conns, &c->link);
    d->nconns++;
    d->conns_total++;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, false);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c, false);
}

int
mock_httpd_start(struct mock_httpd *d, uv_loop_t *loop, const char *host, int port,
                 const struct mock_http_cbs *cbs, void *data, int *bound_port)
{
    struct sockaddr_storage ss;
    int rc;
    memset(&ss, 0, sizeof(ss));
    d->loop = loop;
    d->cbs = cbs;
    d->data = data;
    d->nconns = 0;
    d->conns_total = 0;
    d->stopping = false;
    sl_list_init(&d->conns);
    if (strchr(host, ':'))
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss);
    else
        rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc != 0)
        return rc;
    uv_tcp_init(loop, &d->listener);
    d->listener.data = d;
    rc = uv_tcp_bind(&d->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&d->listener, LISTEN_BACKLOG, on_connection);
    if (rc == 0) {
        struct sockaddr_storage got;
        int len = sizeof(got);
        rc = uv_tcp_getsockname(&d->listener, (struct sockaddr *)&got, &len);
        if (rc == 0)
            *bound_port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                                                          : ((struct sockaddr_in *)&got)->sin_port);
    }
    if (rc != 0)
        uv_close((uv_handle_t *)&d->listener, NULL);
    return rc;
}

void
mock_httpd_stop(struct mock_httpd *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    uv_close((uv_handle_t *)&d->listener, NULL);
    struct sl_list *pos, *tmp;
    sl_list_foreach_safe(pos, tmp, &d->conns)
    {
        struct mock_http *c = SL_CONTAINER_OF(pos, struct mock_http, link);
        conn_close(c, c->in_response);
    }
}
