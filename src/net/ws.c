#include "net/ws.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/codes.h"
#include "base/utf8.h"
#include "base/util.h"
#include "net/conn.h"
#include "net/http.h"
#include "net/wsdeflate.h"
#include "net/wsscan.h"

enum { WS_OPEN, WS_CLOSING };

struct sl_ws {
    struct sl_conn *conn;
    wslay_event_context_ptr ctx;  /* NULL while idle */
    struct sl_wsdeflate *deflate; /* permessage-deflate, when negotiated */
    const struct sl_ws_handler *h;
    void *ud;
    struct sl_wsscan scan;
    const uint8_t *in; /* input for wslay's recv callback */
    size_t in_len;
    uint16_t close_code; /* received or sent; 1006 if none */
    uint8_t state;
    bool in_recv;       /* inside wslay_event_recv: the context must stay */
    bool close_pending; /* a close was queued from inside wslay_event_recv */
};

static const struct sl_conn_handler ws_conn_handler;

/* --- wslay callbacks ---------------------------------------------------------- */

static ssize_t
recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    struct sl_ws *ws = ud;
    if (ws->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = ws->in_len < len ? ws->in_len : len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t
send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    (void)ctx;
    (void)flags;
    struct sl_ws *ws = ud;
    /* The connection queue takes everything, so wslay never holds a partial frame. */
    sl_conn_write(ws->conn, data, len);
    return (ssize_t)len;
}

static void
violation(struct sl_ws *ws, uint16_t code, const char *reason)
{
    if (ws->h->on_violation)
        ws->h->on_violation(ws->ud, code, reason);
    sl_ws_close(ws, code, reason);
}

/* A data message whose first frame had RSV1: decompressed, then checked as the scanner
 * checks an uncompressed one (the size limit, UTF-8 of text), then handed on. */
static void
deliver_compressed(struct sl_ws *ws, uint8_t opcode, const uint8_t *msg, size_t len)
{
    struct sl_buf out = SL_BUF_INIT;
    const char *why = NULL;
    int code = sl_wsdeflate_decompress(ws->deflate, msg, len, ws->scan.max_message, &out, &why);
    if (code == 0 && opcode == WSLAY_TEXT_FRAME &&
        !sl_utf8_valid(sl_buf_ptr(&out), sl_buf_len(&out))) {
        code = SL_CLOSE_INVALID_DATA;
        why = "text message is not valid UTF-8";
    }
    if (code != 0)
        violation(ws, (uint16_t)code, why);
    else if (opcode == WSLAY_TEXT_FRAME)
        ws->h->on_text(ws->ud, sl_buf_ptr(&out), sl_buf_len(&out));
    else if (ws->h->on_binary)
        ws->h->on_binary(ws->ud, sl_buf_ptr(&out), sl_buf_len(&out));
    sl_buf_free(&out);
}

static void
on_msg_recv(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    (void)ctx;
    struct sl_ws *ws = ud;
    bool compressed = (arg->rsv & WSLAY_RSV1_BIT) != 0 && ws->deflate != NULL;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        if (ws->state == WS_OPEN && compressed)
            deliver_compressed(ws, arg->opcode, arg->msg, arg->msg_length);
        else if (ws->state == WS_OPEN)
            ws->h->on_text(ws->ud, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        if (ws->state == WS_OPEN && ws->h->on_binary && compressed)
            deliver_compressed(ws, arg->opcode, arg->msg, arg->msg_length);
        else if (ws->state == WS_OPEN && ws->h->on_binary)
            ws->h->on_binary(ws->ud, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_CONNECTION_CLOSE:
        /* wslay queues the echo of the close itself. */
        if (ws->state == WS_OPEN)
            ws->close_code = arg->status_code ? arg->status_code : 1005;
        ws->state = WS_CLOSING;
        break;
    default:
        break;
    }
}

static const struct wslay_event_callbacks wslay_cbs = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg_recv,
};

static void
ensure_ctx(struct sl_ws *ws)
{
    if (ws->ctx != NULL)
        return;
    if (wslay_event_context_server_init(&ws->ctx, &wslay_cbs, ws) != 0)
        sl_panic("out of memory creating a WebSocket context");
    /* The scanner already enforces the limit with a better close reason. */
    wslay_event_config_set_max_recv_msg_length(ws->ctx, ws->scan.max_message + 1);
    if (ws->deflate)
        wslay_event_config_set_allowed_rsv_bits(ws->ctx, WSLAY_RSV1_BIT);
}

/* Gives the wslay context back when nothing depends on its state. */
static void
maybe_release(struct sl_ws *ws)
{
    if (ws->ctx == NULL || ws->state != WS_OPEN || ws->in_recv)
        return;
    if (!sl_wsscan_idle(&ws->scan) || wslay_event_want_write(ws->ctx))
        return;
    wslay_event_context_free(ws->ctx);
    ws->ctx = NULL;
}

static void
send_wslay(struct sl_ws *ws)
{
    if (ws->ctx == NULL)
        return;
    if (wslay_event_send(ws->ctx) != 0) {
        sl_conn_abort(ws->conn);
        return;
    }
}

/* --- frames written directly ---------------------------------------------------- */

/* rsv1: the payload is compressed (permessage-deflate). */
static void
write_frame(struct sl_ws *ws, uint8_t opcode, bool rsv1, const char *payload, size_t len)
{
    uint8_t hdr[10];
    size_t hl;
    hdr[0] = (uint8_t)(0x80 | (rsv1 ? 0x40 : 0) | opcode);
    if (len < 126) {
        hdr[1] = (uint8_t)len;
        hl = 2;
    } else if (len <= 0xFFFF) {
        hdr[1] = 126;
        hdr[2] = (uint8_t)(len >> 8);
        hdr[3] = (uint8_t)len;
        hl = 4;
    } else {
        hdr[1] = 127;
        for (int i = 0; i < 8; i++)
            hdr[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        hl = 10;
    }
    char *dst = sl_conn_reserve(ws->conn, hl + len);
    memcpy(dst, hdr, hl);
    if (len)
        memcpy(dst + hl, payload, len);
    sl_conn_commit(ws->conn, hl + len);
}

static void
send_message(struct sl_ws *ws, uint8_t opcode, const char *msg, size_t len)
{
    if (ws->state != WS_OPEN)
        return;
    /*
     * Data frames never go through wslay's queue: wslay sends control frames first, so
     * a message queued before a close would be lost behind it. What wslay holds (a pong
     * for a ping in the same read) goes out first, which keeps the wire order.
     */
    if (ws->ctx != NULL && wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) != 0) {
        sl_conn_abort(ws->conn);
        return;
    }
    if (ws->deflate != NULL && opcode < 8) {
        struct sl_buf z = SL_BUF_INIT;
        bool packed = sl_wsdeflate_compress(ws->deflate, msg, len, &z);
        if (packed)
            write_frame(ws, opcode, true, sl_buf_ptr(&z), sl_buf_len(&z));
        sl_buf_free(&z);
        if (packed)
            return;
    }
    write_frame(ws, opcode, false, msg, len);
}

void
sl_ws_send_text(struct sl_ws *ws, const char *msg, size_t len)
{
    send_message(ws, WSLAY_TEXT_FRAME, msg, len);
}

void
sl_ws_send_binary(struct sl_ws *ws, const char *msg, size_t len)
{
    send_message(ws, WSLAY_BINARY_FRAME, msg, len);
}

void
sl_ws_ping(struct sl_ws *ws)
{
    send_message(ws, WSLAY_PING, NULL, 0);
}

/* --- closing ---------------------------------------------------------------------- */

static void
finish_close(struct sl_ws *ws)
{
    send_wslay(ws);
    sl_conn_close(ws->conn);
}

void
sl_ws_close(struct sl_ws *ws, uint16_t code, const char *reason)
{
    if (ws->state != WS_OPEN)
        return;
    ws->state = WS_CLOSING;
    ws->close_code = code;
    ensure_ctx(ws);
    size_t rlen = reason ? strlen(reason) : 0;
    if (rlen > 123)
        rlen = sl_utf8_boundary(reason, 123);
    wslay_event_queue_close(ws->ctx, code, (const uint8_t *)reason, rlen);
    if (ws->in_recv) {
        ws->close_pending = true;
        return;
    }
    finish_close(ws);
}

bool
sl_ws_closing(const struct sl_ws *ws)
{
    return ws->state != WS_OPEN || sl_conn_closing(ws->conn);
}

void
sl_ws_set_user_data(struct sl_ws *ws, void *ud)
{
    ws->ud = ud;
}

void
sl_ws_set_handler(struct sl_ws *ws, const struct sl_ws_handler *h, void *ud)
{
    ws->h = h;
    ws->ud = ud;
}

void
sl_ws_set_max_message(struct sl_ws *ws, uint64_t max)
{
    ws->scan.max_message = max;
    if (ws->ctx)
        wslay_event_config_set_max_recv_msg_length(ws->ctx, max + 1);
}

size_t
sl_ws_queued(const struct sl_ws *ws)
{
    return sl_conn_queued(ws->conn);
}

bool
sl_ws_has_context(const struct sl_ws *ws)
{
    return ws->ctx != NULL;
}

struct sl_conn *
sl_ws_conn(const struct sl_ws *ws)
{
    return ws->conn;
}

/* --- connection handler ------------------------------------------------------------ */

static void
on_read(struct sl_conn *c, const char *data, size_t len)
{
    struct sl_ws *ws = sl_conn_state(c);
    size_t ok_len;
    struct sl_wsscan_error err;
    int bad = sl_wsscan_feed(&ws->scan, (const uint8_t *)data, len, &ok_len, &err);

    if (ws->h->on_activity)
        ws->h->on_activity(ws->ud);
    if (ok_len > 0 && ws->state == WS_OPEN) {
        ensure_ctx(ws);
        ws->in = (const uint8_t *)data;
        ws->in_len = ok_len;
        ws->in_recv = true;
        int r = wslay_event_recv(ws->ctx);
        ws->in_recv = false;
        ws->in_len = 0;
        if (r != 0) {
            sl_conn_abort(c);
            return;
        }
    }
    if (bad && ws->state == WS_OPEN)
        violation(ws, err.code, err.reason);
    if (ws->close_pending || ws->state == WS_CLOSING) {
        ws->close_pending = false;
        finish_close(ws);
        return;
    }
    send_wslay(ws);
    maybe_release(ws);
}

static void
on_eof(struct sl_conn *c)
{
    sl_conn_abort(c);
}

static void
on_drain(struct sl_conn *c)
{
    struct sl_ws *ws = sl_conn_state(c);
    if (ws->state == WS_OPEN && ws->h->on_drain)
        ws->h->on_drain(ws->ud);
}

static void
on_close(struct sl_conn *c)
{
    struct sl_ws *ws = sl_conn_state(c);
    if (ws->ctx)
        wslay_event_context_free(ws->ctx);
    ws->h->on_closed(ws->ud, ws->close_code);
    sl_wsdeflate_free(ws->deflate);
    free(ws);
}

static const struct sl_conn_handler ws_conn_handler = {
    .on_read = on_read,
    .on_eof = on_eof,
    .on_drain = on_drain,
    .on_close = on_close,
};

/* --- handshake ---------------------------------------------------------------------- */

struct sl_ws *
sl_ws_accept(struct sl_conn *c, const struct sl_http_req *req, const struct sl_ws_options *opt,
             const struct sl_ws_handler *h, void *ud)
{
    char accept[SL_WS_ACCEPT_LEN + 1];
    sl_ws_accept_key(sl_http_get_header(req, "Sec-WebSocket-Key"), accept);
    struct sl_ws_deflate_params dp;
    char ext[SL_WS_DEFLATE_RESPONSE_MAX] = "";
    bool deflate = opt->deflate != NULL && sl_ws_deflate_negotiate_req(req, opt->deflate, &dp);
    if (deflate)
        sl_ws_deflate_response(&dp, ext);

    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b,
                  "HTTP/1.1 101 Switching Protocols\r\nServer: sluice\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s%s\r\n",
                  accept, ext, opt->extra_headers ? opt->extra_headers : "");
    sl_conn_write(c, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);

    struct sl_ws *ws = sl_calloc(1, sizeof(*ws));
    ws->conn = c;
    ws->h = h;
    ws->ud = ud;
    ws->close_code = 1006;
    ws->state = WS_OPEN;
    sl_wsscan_init(&ws->scan, opt->max_message, opt->allow_binary);
    if (deflate) {
        ws->deflate = sl_wsdeflate_new(&dp, opt->deflate->level, opt->deflate->mem_level);
        ws->scan.allow_rsv1 = true;
    }
    sl_conn_set_handler(c, &ws_conn_handler, ws);
    return ws;
}
