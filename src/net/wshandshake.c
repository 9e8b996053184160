#include "net/wshandshake.h"

#include <openssl/sha.h>
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
