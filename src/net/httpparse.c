#include "net/httpparse.h"

#include <string.h>
#include <strings.h>

#include "base/alloc.h"

/* Where in a request the parser is (sl_http_parser.st). */
enum { S_IDLE, S_URL, S_FIELD, S_VALUE, S_BODY };

static struct sl_http_parser *
parser_of(http_parser *hp)
{
    return hp->data;
}

/*
 * Records a refusal from inside a parser callback and stops the parser: a callback's
 * non-zero answer is an error to http-parser (for on_headers_complete, any value but
 * 0, 1 and 2), so nothing after the offending byte is parsed.
 */
static int
refuse(struct sl_http_parser *p, int status, const char *message, const char *headers)
{
    p->error_status = status;
    p->error_message = message;
    p->error_headers = headers;
    return -1;
}

static bool
headers_too_big(const struct sl_http_parser *p)
{
    /* Count the raw bytes plus the ": " and CRLF of each line, roughly what was sent. */
    return sl_buf_len(&p->raw) + 4 * p->nhdr > p->limits->max_header_bytes;
}

static int
on_message_begin(http_parser *hp)
{
    struct sl_http_parser *p = parser_of(hp);
    sl_buf_clear(&p->raw);
    sl_buf_clear(&p->body);
    p->url_len = 0;
    p->nhdr = 0;
    p->st = S_URL;
    p->complete = false;
    p->want_continue = false;
    p->max_body = p->limits->max_body_bytes;
    p->content_length = -1;
    p->has_body = false;
    return 0;
}

static int
on_url(http_parser *hp, const char *at, size_t len)
{
    struct sl_http_parser *p = parser_of(hp);
    uint64_t max = p->limits->max_url_bytes;
    if (max == 0 || max > p->limits->max_header_bytes)
        max = p->limits->max_header_bytes;
    if (p->url_len + len > max)
        return refuse(p, 414, "request line too long", NULL);
    sl_buf_append(&p->raw, at, len);
    p->url_len += (uint32_t)len;
    return 0;
}

static int
on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct sl_http_parser *p = parser_of(hp);
    if (p->st != S_FIELD) {
        if (p->nhdr == SL_HTTP_MAX_HEADERS)
            return refuse(p, 431, "too many request headers", NULL);
        p->nhdr++;
        p->hdr[p->nhdr - 1].name_off = (uint32_t)sl_buf_len(&p->raw);
        p->hdr[p->nhdr - 1].name_len = p->hdr[p->nhdr - 1].value_len = 0;
        p->hdr[p->nhdr - 1].value_off = p->hdr[p->nhdr - 1].name_off;
        p->st = S_FIELD;
    }
    sl_buf_append(&p->raw, at, len);
    p->hdr[p->nhdr - 1].name_len += (uint32_t)len;
    return headers_too_big(p) ? refuse(p, 431, "request headers too large", NULL) : 0;
}

static int
on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct sl_http_parser *p = parser_of(hp);
    if (p->st != S_VALUE) {
        p->hdr[p->nhdr - 1].value_off = (uint32_t)sl_buf_len(&p->raw);
        p->st = S_VALUE;
    }
    sl_buf_append(&p->raw, at, len);
    p->hdr[p->nhdr - 1].value_len += (uint32_t)len;
    return headers_too_big(p) ? refuse(p, 431, "request headers too large", NULL) : 0;
}

static bool
declares_body(const http_parser *hp)
{
    return (hp->flags & F_CHUNKED) || ((hp->flags & F_CONTENTLENGTH) && hp->content_length > 0);
}

/*
 * Whether the client waits for "100 Continue" before sending the body it announced (curl
 * does for large bodies, for up to a second).
 */
static bool
expects_continue(const struct sl_http_parser *p)
{
    if (p->hp.http_minor < 1 || !p->has_body)
        return false;
    const char *raw = sl_buf_ptr(&p->raw);
    for (size_t i = 0; i < p->nhdr; i++) {
        if (p->hdr[i].name_len == 6 && strncasecmp(raw + p->hdr[i].name_off, "Expect", 6) == 0 &&
            p->hdr[i].value_len >= 12 &&
            strncasecmp(raw + p->hdr[i].value_off, "100-continue", 12) == 0)
            return true;
    }
    return false;
}

static void build_request(const struct sl_http_parser *p, struct sl_http_req *req);

static int
on_headers_complete(http_parser *hp)
{
    struct sl_http_parser *p = parser_of(hp);
    p->st = S_BODY;
    /* Recorded now: http-parser counts its content_length down as the body arrives. */
    p->has_body = declares_body(hp);
    p->content_length = (hp->flags & F_CONTENTLENGTH) ? (int64_t)hp->content_length : -1;
    /* http-parser reads any d.d; only 1.0 and 1.1 are spoken here (HTTP/2's preface too). */
    if (hp->http_major != 1 || hp->http_minor > 1)
        return refuse(p, 505, "HTTP version not supported: use HTTP/1.1", NULL);
    struct sl_http_head_verdict v = {.max_body = p->limits->max_body_bytes};
    if (p->on_head != NULL) {
        struct sl_http_req head;
        build_request(p, &head);
        p->on_head(p->ud, &head, &v);
    }
    if (v.status != 0)
        return refuse(p, v.status, v.message ? v.message : "request refused", v.headers);
    if (v.max_body > p->limits->max_body_bytes)
        v.max_body = p->limits->max_body_bytes;
    p->max_body = v.max_body;
    if (p->has_body && p->max_body == 0)
        return refuse(p, 413, "this endpoint takes no request body", NULL);
    if ((hp->flags & F_CONTENTLENGTH) && hp->content_length > p->max_body)
        return refuse(p, 413, "request body too large", NULL);
    if (expects_continue(p))
        p->want_continue = true;
    return 0;
}

static int
on_body(http_parser *hp, const char *at, size_t len)
{
    struct sl_http_parser *p = parser_of(hp);
    if (sl_buf_len(&p->body) + len > p->max_body)
        return refuse(p, 413, "request body too large", NULL);
    sl_buf_append(&p->body, at, len);
    return 0;
}

static int
on_message_complete(http_parser *hp)
{
    struct sl_http_parser *p = parser_of(hp);
    p->complete = true;
    /* Stop here so that the request is handled before the next pipelined one is read. */
    http_parser_pause(hp, 1);
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

void
sl_http_parser_init(struct sl_http_parser *p, const struct sl_http_limits *limits,
                    sl_http_head_cb on_head, void *ud)
{
    memset(p, 0, sizeof(*p));
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    p->limits = limits;
    p->on_head = on_head;
    p->ud = ud;
    p->st = S_IDLE;
    p->max_body = limits->max_body_bytes;
}

void
sl_http_parser_cleanup(struct sl_http_parser *p)
{
    sl_buf_free(&p->raw);
    sl_buf_free(&p->body);
}

int
sl_http_parser_feed(struct sl_http_parser *p, const char *data, size_t len, size_t *used)
{
    *used = 0;
    if (p->error_status != 0)
        return SL_HTTP_ERROR;
    sl_assert(!p->complete);
    /* For http-parser a zero length means the end of the stream. */
    if (len == 0)
        return SL_HTTP_NEED_MORE;
    size_t n = http_parser_execute(&p->hp, &settings, data, len);
    *used = n;
    if (p->error_status != 0)
        return SL_HTTP_ERROR;
    enum http_errno err = HTTP_PARSER_ERRNO(&p->hp);
    if (p->complete) {
        if (err == HPE_PAUSED)
            http_parser_pause(&p->hp, 0);
        return SL_HTTP_REQUEST;
    }
    if (err != HPE_OK || n != len) {
        p->error_status = 400;
        p->error_message = err != HPE_OK ? http_errno_description(err) : "malformed request";
        p->error_headers = NULL;
        return SL_HTTP_ERROR;
    }
    return SL_HTTP_NEED_MORE;
}

static void
build_request(const struct sl_http_parser *p, struct sl_http_req *req)
{
    const char *raw = sl_buf_ptr(&p->raw);
    memset(req, 0, sizeof(*req));
    req->method = http_method_str(p->hp.method);
    req->is_get = p->hp.method == HTTP_GET;
    req->is_head = p->hp.method == HTTP_HEAD;
    req->target = sl_slice_make(raw, p->url_len);
    const char *q = memchr(raw, '?', p->url_len);
    if (q) {
        req->path = sl_slice_make(raw, (size_t)(q - raw));
        req->query = sl_slice_make(q + 1, p->url_len - (size_t)(q - raw) - 1);
    } else {
        req->path = req->target;
        req->query = sl_slice_make(raw + p->url_len, 0);
    }
    for (size_t i = 0; i < p->nhdr; i++) {
        struct sl_http_header *h = &req->headers[i];
        h->name = sl_slice_make(raw + p->hdr[i].name_off, p->hdr[i].name_len);
        h->value = sl_slice_make(raw + p->hdr[i].value_off, p->hdr[i].value_len);
        /* Optional whitespace after the value is not part of it (RFC 9110 5.5). */
        while (h->value.len > 0 &&
               (h->value.ptr[h->value.len - 1] == ' ' || h->value.ptr[h->value.len - 1] == '\t'))
            h->value.len--;
    }
    req->nheaders = p->nhdr;
    req->body = sl_slice_make(sl_buf_ptr(&p->body), sl_buf_len(&p->body));
    req->content_length = p->content_length;
    req->has_body = p->has_body;
    req->keep_alive = http_should_keep_alive(&p->hp) != 0;
    req->upgrade = p->hp.upgrade != 0;
    req->http_minor = p->hp.http_minor;
}

void
sl_http_parser_request(const struct sl_http_parser *p, struct sl_http_req *req)
{
    sl_assert(p->complete);
    build_request(p, req);
}

void
sl_http_parser_next(struct sl_http_parser *p)
{
    sl_buf_free(&p->raw);
    sl_buf_free(&p->body);
    p->nhdr = 0;
    p->url_len = 0;
    p->st = S_IDLE;
    p->complete = false;
    p->want_continue = false;
}

enum sl_http_phase
sl_http_parser_phase(const struct sl_http_parser *p)
{
    if (p->st == S_IDLE)
        return SL_HTTP_IDLE;
    return p->st == S_BODY ? SL_HTTP_BODY : SL_HTTP_HEAD;
}

bool
sl_http_parser_take_continue(struct sl_http_parser *p)
{
    bool want = p->want_continue;
    p->want_continue = false;
    return want;
}

int
sl_http_parser_error(const struct sl_http_parser *p, const char **message, const char **headers)
{
    if (message)
        *message = p->error_message;
    if (headers)
        *headers = p->error_headers;
    return p->error_status;
}

/* --- reading a request ------------------------------------------------------------------ */

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
