#include "net/wshandshake.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "net/httpparse.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static bool
is_base64_char(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '+' || ch == '/';
}

int
sl_ws_check_handshake(const struct sl_http_req *req, const char **why)
{
    if (!req->is_get) {
        *why = "WebSocket handshake must use GET";
        return 400;
    }
    struct sl_slice upgrade = sl_http_get_header(req, "Upgrade");
    struct sl_slice connection = sl_http_get_header(req, "Connection");
    if (!upgrade.ptr || !sl_header_has_token(upgrade, "websocket") || !connection.ptr ||
        !sl_header_has_token(connection, "upgrade")) {
        *why = "this endpoint speaks WebSocket only (Upgrade: websocket)";
        return 426;
    }
    struct sl_slice version = sl_http_get_header(req, "Sec-WebSocket-Version");
    if (!sl_slice_eq(version, "13")) {
        *why = "unsupported WebSocket version; use 13";
        return 426;
    }
    struct sl_slice key = sl_http_get_header(req, "Sec-WebSocket-Key");
    /* 16 random bytes in base64: 22 characters and "==". */
    if (key.len != 24 || key.ptr[22] != '=' || key.ptr[23] != '=') {
        *why = "missing or malformed Sec-WebSocket-Key";
        return 400;
    }
    for (size_t i = 0; i < 22; i++) {
        if (!is_base64_char(key.ptr[i])) {
            *why = "missing or malformed Sec-WebSocket-Key";
            return 400;
        }
    }
    if (req->http_minor < 1) {
        *why = "WebSocket needs HTTP/1.1";
        return 400;
    }
    return 0;
}

void
sl_ws_accept_key(struct sl_slice key, char out[SL_WS_ACCEPT_LEN + 1])
{
    sl_assert(key.len == 24);
    char concat[24 + sizeof(WS_GUID)];
    memcpy(concat, key.ptr, 24);
    memcpy(concat + 24, WS_GUID, sizeof(WS_GUID) - 1);
    uint8_t digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)concat, 24 + sizeof(WS_GUID) - 1, digest);
    size_t n = sl_base64_encode(out, digest, sizeof(digest));
    sl_assert(n == SL_WS_ACCEPT_LEN);
    out[n] = '\0';
}

/* --- permessage-deflate negotiation --------------------------------------------------------- */

/* A cursor over one header value. */
struct cur {
    const char *p, *end;
};

static bool
is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static void
skip_ows(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static bool
peek(const struct cur *c, char ch)
{
    return c->p < c->end && *c->p == ch;
}

static bool
take_token(struct cur *c, struct sl_slice *out)
{
    const char *s = c->p;
    while (c->p < c->end && is_tchar(*c->p))
        c->p++;
    *out = sl_slice_make(s, (size_t)(c->p - s));
    return out->len > 0;
}

/*
 * A parameter value: a token, or a quoted-string whose unescaped content (RFC 6455 9.1:
 * it must itself be a token) is copied into buf. A value too long for buf is kept
 * truncated and marked by a length of SIZE_MAX: no value of permessage-deflate is long.
 */
static bool
take_value(struct cur *c, char *buf, size_t cap, size_t *len)
{
    if (!peek(c, '"')) {
        struct sl_slice t;
        if (!take_token(c, &t))
            return false;
        *len = t.len < cap ? t.len : SIZE_MAX;
        if (t.len < cap)
            memcpy(buf, t.ptr, t.len);
        return true;
    }
    c->p++;
    size_t n = 0;
    bool long_value = false;
    while (c->p < c->end && *c->p != '"') {
        char ch = *c->p++;
        if (ch == '\\') {
            if (c->p == c->end)
                return false;
            ch = *c->p++;
        }
        if ((unsigned char)ch < 0x20 && ch != '\t')
            return false;
        if (n < cap)
            buf[n++] = ch;
        else
            long_value = true;
    }
    if (c->p == c->end)
        return false;
    c->p++;
    *len = long_value ? SIZE_MAX : n;
    return true;
}

/* 8..15 written as RFC 7692 7.1.2 spells it (no sign, no leading zero); -1 otherwise. */
static int
window_bits(const char *v, size_t len)
{
    if (len == 1 && (v[0] == '8' || v[0] == '9'))
        return v[0] - '0';
    if (len == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5')
        return 10 + (v[1] - '0');
    return -1;
}

struct offer {
    bool ok;
    bool server_nct, client_nct, server_bits_seen, client_bits_seen;
    int server_bits; /* 0: not given */
};

/* Applies one parameter of a permessage-deflate offer (RFC 7692 7); declines on anything
 * the RFC says to decline: unknown, repeated, a value where none belongs, a bad value. */
static void
offer_param(struct offer *o, struct sl_slice name, bool has_value, const char *v, size_t vlen)
{
    if (sl_slice_ieq(name, "server_no_context_takeover")) {
        o->ok = o->ok && !has_value && !o->server_nct;
        o->server_nct = true;
    } else if (sl_slice_ieq(name, "client_no_context_takeover")) {
        o->ok = o->ok && !has_value && !o->client_nct;
        o->client_nct = true;
    } else if (sl_slice_ieq(name, "server_max_window_bits")) {
        int b = has_value ? window_bits(v, vlen) : -1;
        /* zlib's raw deflate cannot keep a 256-byte window (it makes 512): decline 8. */
        o->ok = o->ok && b >= 9 && !o->server_bits_seen;
        o->server_bits_seen = true;
        o->server_bits = b;
    } else if (sl_slice_ieq(name, "client_max_window_bits")) {
        /* Any client window is decoded with a 32 KiB one, so the value only needs to be valid. */
        o->ok = o->ok && (!has_value || window_bits(v, vlen) > 0) && !o->client_bits_seen;
        o->client_bits_seen = true;
    } else {
        o->ok = false;
    }
}

bool
sl_ws_deflate_negotiate(struct sl_slice value, const struct sl_ws_deflate_policy *pol,
                        struct sl_ws_deflate_params *out)
{
    if (!pol->enabled || value.ptr == NULL)
        return false;
    struct cur c = {value.ptr, value.ptr + value.len};
    for (;;) {
        /* RFC 7230 7: empty list elements are allowed and ignored. */
        skip_ows(&c);
        while (peek(&c, ',')) {
            c.p++;
            skip_ows(&c);
        }
        if (c.p == c.end)
            return false;
        struct sl_slice name;
        if (!take_token(&c, &name))
            return false;
        struct offer o = {.ok = sl_slice_ieq(name, "permessage-deflate")};
        skip_ows(&c);
        while (peek(&c, ';')) {
            c.p++;
            skip_ows(&c);
            struct sl_slice pname;
            if (!take_token(&c, &pname))
                return false;
            skip_ows(&c);
            char v[16];
            size_t vlen = 0;
            bool has_value = peek(&c, '=');
            if (has_value) {
                c.p++;
                skip_ows(&c);
                if (!take_value(&c, v, sizeof(v), &vlen))
                    return false;
                skip_ows(&c);
            }
            offer_param(&o, pname, has_value, v, vlen);
        }
        if (c.p < c.end && !peek(&c, ','))
            return false;
        if (o.ok) {
            unsigned bits = pol->window_bits;
            if (o.server_bits > 0 && (unsigned)o.server_bits < bits)
                bits = (unsigned)o.server_bits;
            *out = (struct sl_ws_deflate_params){
                .on = true,
                .server_no_context_takeover = o.server_nct || !pol->context_takeover,
                .announce_server_window = o.server_bits > 0,
                .server_window_bits = (uint8_t)bits,
            };
            return true;
        }
    }
}

bool
sl_ws_deflate_negotiate_req(const struct sl_http_req *req, const struct sl_ws_deflate_policy *pol,
                            struct sl_ws_deflate_params *out)
{
    for (size_t i = 0; i < req->nheaders; i++) {
        if (sl_slice_ieq(req->headers[i].name, "Sec-WebSocket-Extensions") &&
            sl_ws_deflate_negotiate(req->headers[i].value, pol, out))
            return true;
    }
    return false;
}

size_t
sl_ws_deflate_response(const struct sl_ws_deflate_params *p, char out[SL_WS_DEFLATE_RESPONSE_MAX])
{
    int n = snprintf(out, SL_WS_DEFLATE_RESPONSE_MAX,
                     "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover%s",
                     p->server_no_context_takeover ? "; server_no_context_takeover" : "");
    if (p->announce_server_window)
        n += snprintf(out + n, SL_WS_DEFLATE_RESPONSE_MAX - (size_t)n,
                      "; server_max_window_bits=%u", (unsigned)p->server_window_bits);
    n += snprintf(out + n, SL_WS_DEFLATE_RESPONSE_MAX - (size_t)n, "\r\n");
    sl_assert((size_t)n < SL_WS_DEFLATE_RESPONSE_MAX);
    return (size_t)n;
}
