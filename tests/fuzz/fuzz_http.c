// fuzz-sources: src/net/httpparse.c src/net/wshandshake.c
// fuzz-sources: src/base/buf.c src/base/alloc.c src/base/util.c
// fuzz-seeds: tests/fuzz/seeds/http/*
// fuzz-libs: -lhttp_parser libcrypto
/*
 * libFuzzer harness for the HTTP request parser (src/net/httpparse.c), the first code to see
 * a client's bytes, and for what reads the requests it produces: the WebSocket handshake
 * checks (src/net/wshandshake.c), header lookup, the query string and percent-decoding.
 *
 * The first bytes choose the limits and the cuts; the rest is a client byte stream. It is
 * parsed three ways, all at once, in pieces of sizes drawn from the input, and one byte at a
 * time, with a head callback that gives some paths no body, some a small one, and refuses
 * others. The three must see the same requests, and refuse the same streams: the parser may
 * keep no pointer into a piece, and its limits may not depend on where the bytes were cut.
 * Every request must respect the limits, and every refusal must carry an HTTP status and a
 * reason.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/httpparse.h"
#include "net/wshandshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_EVENTS 64

struct run {
    uint64_t events[MAX_EVENTS];
    size_t nevents;
    int error;
};

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t
mix_slice(uint64_t h, struct sl_slice s)
{
    h = mix(h, &s.len, sizeof(s.len));
    return s.len ? mix(h, s.ptr, s.len) : h;
}

static uint64_t
mix_int(uint64_t h, long long v)
{
    return mix(h, &v, sizeof(v));
}

static void
on_head(void *ud, const struct sl_http_req *head, struct sl_http_head_verdict *v)
{
    (void)ud;
    CHECK(head->body.len == 0);
    if (head->path.len >= 2 && head->path.ptr[0] == '/') {
        switch (head->path.ptr[1]) {
        case 'n':
            v->max_body = 0;
            break;
        case 's':
            v->max_body = 8;
            break;
        case 'r':
            v->status = 405;
            v->message = "method not allowed";
            v->headers = "Allow: GET\r\n";
            break;
        default:
            break;
        }
    }
}

/* What a complete request is, as a hash, after checking what every request must respect. */
static uint64_t
digest(const struct sl_http_limits *lim, const struct sl_http_req *req, bool cont)
{
    uint64_t h = 1469598103934665603ull;
    CHECK(req->method != NULL);
    CHECK(req->target.len <= lim->max_header_bytes);
    CHECK(lim->max_url_bytes == 0 || req->target.len <= lim->max_url_bytes);
    CHECK(req->nheaders <= SL_HTTP_MAX_HEADERS);
    CHECK(req->body.len <= lim->max_body_bytes);
    CHECK(req->has_body || req->body.len == 0);
    CHECK(req->http_minor <= 1);
    if (memchr(req->target.ptr, '?', req->target.len) != NULL)
        CHECK(req->path.len + 1 + req->query.len == req->target.len);
    else
        CHECK(req->path.len == req->target.len && req->query.len == 0);
    h = mix(h, req->method, strlen(req->method));
    h = mix_slice(h, req->target);
    h = mix_slice(h, req->path);
    h = mix_slice(h, req->query);
    for (size_t i = 0; i < req->nheaders; i++) {
        h = mix_slice(h, req->headers[i].name);
        h = mix_slice(h, req->headers[i].value);
    }
    h = mix_slice(h, req->body);
    h = mix_int(h, req->content_length);
    h = mix_int(h, req->has_body * 8 + req->keep_alive * 4 + req->upgrade * 2 + cont);

    /* What the routes do with a request. */
    const char *why = NULL;
    int hs = sl_ws_check_handshake(req, &why);
    CHECK(hs == 0 || hs == 400 || hs == 426);
    CHECK(hs == 0 || (why != NULL && why[0] != '\0'));
    h = mix_int(h, hs);
    if (hs == 0) {
        char accept[SL_WS_ACCEPT_LEN + 1];
        sl_ws_accept_key(sl_http_get_header(req, "Sec-WebSocket-Key"), accept);
        CHECK(strlen(accept) == SL_WS_ACCEPT_LEN);
        h = mix(h, accept, SL_WS_ACCEPT_LEN);
    }
    /* permessage-deflate: whatever the offer, an accepted one is within what RFC 7692 and
     * the policy allow, and its answer fits. */
    struct sl_ws_deflate_policy pol = {
        .enabled = true, .window_bits = 11, .context_takeover = true};
    struct sl_ws_deflate_params dp;
    if (sl_ws_deflate_negotiate_req(req, &pol, &dp)) {
        CHECK(dp.on && dp.server_window_bits >= 9 && dp.server_window_bits <= 11);
        char ext[SL_WS_DEFLATE_RESPONSE_MAX];
        size_t n = sl_ws_deflate_response(&dp, ext);
        CHECK(n == strlen(ext) && n > 2 && ext[n - 2] == '\r' && ext[n - 1] == '\n');
        h = mix(h, ext, n);
    }
    static const char *const names[] = {"token", "a", "", "x=y"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char out[64];
        long n = sl_http_query_param(req, names[i], out, sizeof(out));
        CHECK(n >= -2 && n < (long)sizeof(out));
        if (n >= 0) {
            CHECK(strlen(out) == (size_t)n);
            h = mix(h, out, (size_t)n);
        }
        h = mix_int(h, n);
    }
    char path[256];
    long n = sl_http_decode(req->path, path, sizeof(path), false);
    CHECK(n >= -1 && n < (long)sizeof(path));
    h = mix_int(h, n);
    struct sl_slice auth = sl_http_get_header(req, "Authorization");
    return mix_slice(h, auth);
}

/* Feeds p the input in pieces whose sizes come from cuts (0: all at once); records events. */
static void
parse(const struct sl_http_limits *lim, const uint8_t *in, size_t n, const uint8_t *cuts,
      size_t ncuts, size_t fixed, struct run *out)
{
    struct sl_http_parser p;
    sl_http_parser_init(&p, lim, on_head, NULL);
    memset(out, 0, sizeof(*out));
    size_t off = 0, k = 0;
    bool cont = false;
    while (off < n && out->nevents < MAX_EVENTS) {
        size_t piece = fixed ? fixed : (ncuts ? (size_t)cuts[k++ % ncuts] % 97 + 1 : n - off);
        if (piece > n - off)
            piece = n - off;
        /* Each piece from its own copy, freed after the call: nothing may point into it. */
        char *copy = malloc(piece);
        memcpy(copy, in + off, piece);
        size_t done = 0;
        int rc = SL_HTTP_NEED_MORE;
        bool upgraded = false;
        while (done < piece) {
            size_t used = 0;
            rc = sl_http_parser_feed(&p, copy + done, piece - done, &used);
            CHECK(used <= piece - done);
            done += used;
            cont |= sl_http_parser_take_continue(&p);
            if (rc == SL_HTTP_ERROR) {
                const char *message = NULL, *headers = NULL;
                out->error = sl_http_parser_error(&p, &message, &headers);
                CHECK(out->error >= 400 && out->error <= 505);
                CHECK(message != NULL && message[0] != '\0');
                break;
            }
            if (rc == SL_HTTP_NEED_MORE) {
                CHECK(done == piece);
                break;
            }
            struct sl_http_req req;
            sl_http_parser_request(&p, &req);
            out->events[out->nevents++] = digest(lim, &req, cont);
            cont = false;
            upgraded = req.upgrade;
            sl_http_parser_next(&p);
            if (upgraded || out->nevents == MAX_EVENTS)
                break;
        }
        free(copy);
        off += piece;
        if (rc == SL_HTTP_ERROR || upgraded)
            break;
    }
    sl_http_parser_cleanup(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    struct sl_http_limits lim = {
        .max_header_bytes = 64 + (size_t)data[0] * 16,
        .max_url_bytes = data[1] & 1 ? 0 : 16 + (size_t)(data[1] >> 1) * 4,
        .max_body_bytes = (size_t)data[2] * 4,
    };
    size_t ncuts = data[3] % 16;
    data += 4;
    size = size - 4;
    if (ncuts > size)
        ncuts = size;
    /* The cut sizes come from the stream's own last bytes, which are parsed too. */
    const uint8_t *cuts = data + size - ncuts;

    struct run whole, pieces, bytes;
    parse(&lim, data, size, NULL, 0, 0, &whole);
    parse(&lim, data, size, cuts, ncuts, 0, &pieces);
    parse(&lim, data, size, NULL, 0, 1, &bytes);
    CHECK(whole.nevents == pieces.nevents && whole.nevents == bytes.nevents);
    CHECK(memcmp(whole.events, pieces.events, whole.nevents * sizeof(uint64_t)) == 0);
    CHECK(memcmp(whole.events, bytes.events, whole.nevents * sizeof(uint64_t)) == 0);
    /* Which rule a bad request breaks first may depend on the cuts (an over-long URL is seen
     * as too long where a piece ends inside it, and as malformed where its bad byte is seen
     * first), but a refused stream is refused however it is cut. */
    CHECK((whole.error != 0) == (pieces.error != 0) && (whole.error != 0) == (bytes.error != 0));
    return 0;
}
