/*
 * WebSocket, client side (lg_wsconn_ops), carrying sluice's native protocol or a dialect's
 * messages (dialect.c: Socket.IO, ws-chat).
 *
 * The upgrade handshake is written and checked here (status 101 and the
 * Sec-WebSocket-Accept of our key); frames go through wslay's event API in client mode,
 * which masks what we send (genmask from the worker's PRNG) and answers pings by itself.
 * Delta frames, the bulk of the traffic, are recognised by scan.c without a JSON parse;
 * the few other messages of a stream are parsed with jansson. After a cut (worker.c) the
 * new connection sends a `resume` per running stream with the last seq it saw and the
 * epoch of the stream's `start` event. With --deflate the upgrade offers permessage-deflate
 * (RFC 7692) and compressed messages are inflated, keeping the server's context unless it
 * said server_no_context_takeover; what we send stays uncompressed (RFC 7692 allows it).
 */
#include <jansson.h>
#include <jwt.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zlib.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "base/util.h"
#include "dialect.h"
#include "scan.h"
#include "worker.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_HANDSHAKE_BYTES (16 * 1024)

/* --- wslay callbacks ---------------------------------------------------------------------- */

static ssize_t
on_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    struct lg_conn *c = ud;
    (void)flags;
    if (c->u.ws.rn == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->u.ws.rn ? len : c->u.ws.rn;
    memcpy(buf, c->u.ws.rp, n);
    c->u.ws.rp += n;
    c->u.ws.rn -= n;
    return (ssize_t)n;
}

/* Frames are collected in the connection's output and written by lg_conn_flush(). */
static ssize_t
on_ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags, void *ud)
{
    struct lg_conn *c = ud;
    (void)ctx;
    (void)flags;
    sl_buf_append(&c->out, data, len);
    return (ssize_t)len;
}

static int
on_ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *ud)
{
    struct lg_conn *c = ud;
    (void)ctx;
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = lg_worker_rand(c->w);
        memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
    }
    return 0;
}

/* --- messages ----------------------------------------------------------------------------- */

static struct lg_slot *
slot_of(struct lg_conn *c, struct sl_slice id)
{
    uint32_t n;
    if (lg_scan_u32(id, &n) != 0)
        return NULL;
    return lg_conn_slot(c, n);
}

struct stamp_ctx {
    struct lg_conn *c;
    struct lg_slot *s;
};

/* A stamp after a resume: its latency, and whether it was replayed or is live. */
static void
on_resumed_stamp(void *ud, uint64_t stamp_us)
{
    struct stamp_ctx *x = ud;
    lg_conn_stamp(x->c, stamp_us);
    if (x->s->classify)
        lg_slot_resume_stamp(x->c, x->s, stamp_us);
}

static void
on_delta(struct lg_conn *c, struct sl_slice id, uint64_t seq, struct sl_slice text, bool tool)
{
    struct lg_slot *s = slot_of(c, id);
    if (s == NULL) {
        lg_errors_add_str(&c->w->stats.errors, "UNEXPECTED_ID");
        return;
    }
    lg_slot_event(c, s, seq);
    if (tool) {
        lg_slot_tokens(c, s, 1, 0);
        return;
    }
    size_t stamps;
    if (s->classify) {
        struct stamp_ctx x = {c, s};
        stamps = lg_scan_stamps(text.ptr, text.len, on_resumed_stamp, &x);
    } else {
        stamps = lg_scan_stamps(text.ptr, text.len, lg_conn_stamp, c);
    }
    uint64_t tokens = stamps ? stamps : 1;
    if (c->w->cfg->verify)
        tokens = lg_verify_feed(&s->verify, text.ptr, text.len);
    lg_slot_tokens(c, s, tokens, stamps);
}

/* The stream's epoch, from its `start` event, for a later resume. */
static void
keep_epoch(struct lg_slot *s, json_t *root)
{
    json_t *e = json_object_get(root, "epoch");
    size_t n = json_string_length(e);
    if (!json_is_string(e) || n == 0 || n >= sizeof(s->epoch))
        return;
    memcpy(s->epoch, json_string_value(e), n);
    s->epoch_len = (uint8_t)n;
}

/* Everything but the common delta layout: a few messages per stream. */
static void
on_other(struct lg_conn *c, const char *msg, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(msg, len, 0, &jerr);
    const char *type = json_string_value(json_object_get(root, "type"));
    if (type == NULL) {
        lg_errors_add_str(&c->w->stats.errors, "BAD_MESSAGE");
        goto out;
    }
    json_t *jid = json_object_get(root, "id");
    struct sl_slice id = sl_slice_make("", 0);
    if (json_is_string(jid))
        id = sl_slice_make(json_string_value(jid), json_string_length(jid));
    /* Every event of a running stream: its seq, and the answer to a resume. */
    struct lg_slot *es = json_is_string(jid) ? slot_of(c, id) : NULL;
    if (es != NULL && strcmp(type, "delta") != 0) {
        json_t *jseq = json_object_get(root, "seq");
        if (strcmp(type, "error") == 0 && es->resume_wait) {
            /* A refused resume (NOT_FOUND) is counted as an error, not timed. */
            es->resume_wait = false;
            c->w->last_resume_us = c->w->now_us;
            c->w->stats.resumes_refused++;
        }
        lg_slot_event(c, es, json_is_integer(jseq) ? (uint64_t)json_integer_value(jseq) : 0);
        if (strcmp(type, "start") == 0)
            keep_epoch(es, root);
    }

    if (strcmp(type, "ready") == 0) {
        if (c->state == LG_CONN_HANDSHAKE)
            lg_conn_ready(c);
    } else if (strcmp(type, "done") == 0) {
        struct lg_slot *s = slot_of(c, id);
        if (s)
            lg_slot_end(c, s, NULL);
        else
            lg_errors_add_str(&c->w->stats.errors, "UNEXPECTED_ID");
    } else if (strcmp(type, "error") == 0 || strcmp(type, "cancelled") == 0) {
        const char *code =
            type[0] == 'c' ? "CANCELLED" : json_string_value(json_object_get(root, "code"));
        if (code == NULL)
            code = "ERROR";
        struct lg_slot *s = json_is_string(jid) ? slot_of(c, id) : NULL;
        if (s)
            lg_slot_end(c, s, code);
        else if (c->state == LG_CONN_HANDSHAKE)
            lg_conn_fail(c, code); /* authentication refused */
        else
            lg_errors_add_str(&c->w->stats.errors, code);
    } else if (strcmp(type, "delta") == 0) {
        /* A delta laid out otherwise than sluice renders it today. */
        json_t *text = json_object_get(root, "text");
        json_t *jseq = json_object_get(root, "seq");
        bool tool = !json_is_string(text);
        on_delta(c, id, json_is_integer(jseq) ? (uint64_t)json_integer_value(jseq) : 0,
                 tool ? sl_slice_make("", 0)
                      : sl_slice_make(json_string_value(text), json_string_length(text)),
                 tool);
    }
    /* start, progress, pong: nothing to measure. */
out:
    json_decref(root);
}

/* Inflates a compressed message into c->u.ws.plain (RFC 7692 7.2.2: the stream's sync-flush
 * tail put back). Returns 0, or -1 if it is not valid deflate data. */
static int
inflate_msg(struct lg_conn *c, const uint8_t *in, size_t len)
{
    static const uint8_t tail[4] = {0, 0, 0xff, 0xff};
    z_stream *z = c->u.ws.inflate;
    struct sl_buf *out = &c->u.ws.plain;
    sl_buf_clear(out);
    const uint8_t *src[2] = {in, tail};
    size_t srclen[2] = {len, sizeof(tail)};
    for (int part = 0; part < 2; part++) {
        z->next_in = (Bytef *)(uintptr_t)src[part];
        z->avail_in = (uInt)srclen[part];
        do {
            size_t room = 4096 + sl_buf_len(out);
            z->next_out = (Bytef *)sl_buf_reserve(out, room);
            z->avail_out = (uInt)room;
            int r = inflate(z, Z_SYNC_FLUSH);
            sl_buf_commit(out, room - z->avail_out);
            if (r != Z_OK && r != Z_BUF_ERROR)
                return -1;
        } while (z->avail_in > 0 || z->avail_out == 0);
    }
    if (c->u.ws.inflate_reset)
        inflateReset(z);
    return 0;
}

void
lg_ws_native_message(struct lg_conn *c, const char *msg, size_t len)
{
    struct lg_delta d;
    if (lg_scan_native_delta(msg, len, &d))
        on_delta(c, d.id, d.seq, d.text, d.tool);
    else
        on_other(c, msg, len);
}

static void
on_ws_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    struct lg_conn *c = ud;
    (void)ctx;
    if (c->state == LG_CONN_CLOSED)
        return;
    c->w->stats.messages++;
    if (arg->opcode == WSLAY_TEXT_FRAME) {
        const char *msg = (const char *)arg->msg;
        size_t len = arg->msg_length;
        if ((arg->rsv & WSLAY_RSV1_BIT) && c->u.ws.inflate != NULL) {
            if (inflate_msg(c, arg->msg, arg->msg_length) != 0) {
                lg_conn_fail(c, "BAD_DEFLATE");
                return;
            }
            msg = sl_buf_ptr(&c->u.ws.plain);
            len = sl_buf_len(&c->u.ws.plain);
        }
        if (c->w->cfg->dialect)
            lg_dialect_text(c, msg, len);
        else
            lg_ws_native_message(c, msg, len);
    } else if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
        if (c->state != LG_CONN_CLOSING) {
            char code[32];
            snprintf(code, sizeof(code), "CLOSE_%u", (unsigned)arg->status_code);
            lg_conn_fail(c, code);
        }
    } else if (arg->opcode == WSLAY_BINARY_FRAME) {
        lg_errors_add_str(&c->w->stats.errors, "BINARY_FRAME");
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = on_ws_recv,
    .send_callback = on_ws_send,
    .genmask_callback = on_ws_genmask,
    .on_msg_recv_callback = on_ws_msg,
};

/* Sends what wslay has queued; closes the socket once both directions are shut. */
static void
ws_pump(struct lg_conn *c)
{
    wslay_event_context_ptr ctx = c->u.ws.ctx;
    if (c->state == LG_CONN_CLOSED)
        return;
    if (wslay_event_want_write(ctx) && wslay_event_send(ctx) != 0) {
        lg_conn_fail(c, "WS_SEND");
        return;
    }
    lg_conn_flush(c);
    if (c->state == LG_CONN_CLOSING && !wslay_event_want_read(ctx) &&
        !wslay_event_want_write(ctx) && !c->writing)
        lg_conn_close(c);
}

void
lg_ws_send_text(struct lg_conn *c, const char *p, size_t n)
{
    if (c->state == LG_CONN_CLOSED || c->u.ws.ctx == NULL)
        return;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)p, n};
    if (wslay_event_queue_msg(c->u.ws.ctx, &m) != 0) {
        lg_conn_fail(c, "WS_QUEUE");
        return;
    }
    ws_pump(c);
}

/* --- handshake ---------------------------------------------------------------------------- */

/* Percent-encodes everything but RFC 3986 unreserved characters. */
static void
append_urlenc(struct sl_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '.' || ch == '_' || ch == '~') {
            sl_buf_append_byte(b, (char)ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
            sl_buf_append(b, e, 3);
        }
    }
}

/* An HS256 JWT for user <prefix><index>, valid for a day. NULL if libjwt refuses. */
static char *
mint_jwt(const char *secret, const char *prefix, uint32_t index)
{
    char sub[160];
    snprintf(sub, sizeof(sub), "%s%u", prefix, index);
    jwt_t *jwt = NULL;
    char *tok = NULL;
    if (jwt_new(&jwt) != 0)
        sl_panic("out of memory in jwt_new");
    long now = (long)time(NULL);
    if (jwt_add_grant(jwt, "sub", sub) == 0 && jwt_add_grant_int(jwt, "iat", now) == 0 &&
        jwt_add_grant_int(jwt, "exp", now + 86400) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)) == 0)
        tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    return tok;
}

/* The connection's token: the run's, or its own JWT, minted once so that a reconnect
 * after a cut authenticates as the same user with the same token. */
const char *
lg_ws_token(struct lg_conn *c)
{
    const struct lg_config *cfg = c->w->cfg;
    if (cfg->jwt_secret == NULL)
        return cfg->token;
    if (c->token == NULL) {
        c->token = mint_jwt(cfg->jwt_secret, cfg->jwt_sub, c->index);
        if (c->token == NULL)
            sl_panic("cannot mint a JWT");
    }
    return c->token;
}

static void
ws_connected(struct lg_conn *c)
{
    const struct lg_config *cfg = c->w->cfg;
    const char *token = lg_ws_token(c);
    uint8_t raw[16];
    uint64_t r1 = lg_worker_rand(c->w), r2 = lg_worker_rand(c->w);
    memcpy(raw, &r1, 8);
    memcpy(raw + 8, &r2, 8);
    sl_base64_encode(c->u.ws.key, raw, sizeof(raw));
    sl_buf_append(&c->out, sl_buf_ptr(&cfg->hs_path), sl_buf_len(&cfg->hs_path));
    if (token && cfg->auth == LG_AUTH_QUERY)
        append_urlenc(&c->out, token);
    sl_buf_append(&c->out, sl_buf_ptr(&cfg->hs_rest), sl_buf_len(&cfg->hs_rest));
    if (token && cfg->auth == LG_AUTH_HEADER)
        sl_buf_printf(&c->out, "Authorization: Bearer %s\r\n", token);
    sl_buf_append_str(&c->out, "Sec-WebSocket-Key: ");
    sl_buf_append_str(&c->out, c->u.ws.key);
    sl_buf_append_str(&c->out, "\r\n\r\n");
    lg_conn_flush(c);
}

/* The value of header `name` in a response head, or an empty slice. */
static struct sl_slice
header(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len);
    const char *end = head + len;
    while (p != NULL && p + 1 < end) {
        p++;
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            return sl_slice_make(v, (size_t)(ve - v));
        }
        p = eol;
    }
    return sl_slice_make("", 0);
}

/* Checks the upgrade response (head: up to and including the blank line). 0 if accepted,
 * else an error code written to code[n]. */
static int
check_upgrade(struct lg_conn *c, const char *head, size_t len, char *code, size_t n)
{
    int status = 0;
    if (len < 12 || memcmp(head, "HTTP/1.", 7) != 0 || sscanf(head + 9, "%3d", &status) != 1) {
        snprintf(code, n, "BAD_HANDSHAKE");
        return -1;
    }
    if (status != 101) {
        snprintf(code, n, "HTTP_%d", status);
        return -1;
    }
    char concat[64];
    unsigned char digest[SHA_DIGEST_LENGTH];
    char want[32];
    int cl = snprintf(concat, sizeof(concat), "%s%s", c->u.ws.key, WS_GUID);
    SHA1((const unsigned char *)concat, (size_t)cl, digest);
    sl_base64_encode(want, digest, sizeof(digest));
    struct sl_slice got = header(head, len, "Sec-WebSocket-Accept");
    if (!sl_slice_eq(got, want)) {
        snprintf(code, n, "BAD_ACCEPT");
        return -1;
    }
    struct sl_slice ext = header(head, len, "Sec-WebSocket-Extensions");
    bool deflate = ext.len >= 18 && strncasecmp(ext.ptr, "permessage-deflate", 18) == 0;
    if (deflate != c->w->cfg->deflate) {
        snprintf(code, n, deflate ? "UNASKED_EXTENSION" : "NO_DEFLATE");
        return -1;
    }
    if (deflate) {
        z_stream *z = sl_calloc(1, sizeof(*z));
        if (inflateInit2(z, -15) != Z_OK)
            sl_panic("zlib: out of memory");
        c->u.ws.inflate = z;
        c->u.ws.inflate_reset = memmem(ext.ptr, ext.len, "server_no_context_takeover", 26) != NULL;
    }
    return 0;
}

static void
feed(struct lg_conn *c, const char *p, size_t n)
{
    c->u.ws.rp = (const uint8_t *)p;
    c->u.ws.rn = n;
    if (wslay_event_recv(c->u.ws.ctx) != 0) {
        if (c->state == LG_CONN_CLOSING)
            lg_conn_close(c);
        else
            lg_conn_fail(c, "WS_PROTOCOL");
        return;
    }
    c->u.ws.rn = 0;
    ws_pump(c);
}

static void
ws_read(struct lg_conn *c, const char *p, size_t n)
{
    if (c->u.ws.ctx != NULL) {
        feed(c, p, n);
        return;
    }
    /* Still reading the upgrade response. */
    struct sl_buf *hs = &c->u.ws.hs;
    size_t before = sl_buf_len(hs);
    sl_buf_append(hs, p, n);
    const char *h = sl_buf_ptr(hs);
    size_t from = before > 3 ? before - 3 : 0;
    const char *end = memmem(h + from, sl_buf_len(hs) - from, "\r\n\r\n", 4);
    if (end == NULL) {
        if (sl_buf_len(hs) > MAX_HANDSHAKE_BYTES)
            lg_conn_fail(c, "BAD_HANDSHAKE");
        return;
    }
    size_t head_len = (size_t)(end - h) + 4;
    char code[40];
    if (check_upgrade(c, h, head_len, code, sizeof(code)) != 0) {
        lg_conn_fail(c, code);
        return;
    }
    if (wslay_event_context_client_init(&c->u.ws.ctx, &ws_callbacks, c) != 0)
        sl_panic("wslay: out of memory");
    if (c->u.ws.inflate != NULL)
        wslay_event_config_set_allowed_rsv_bits(c->u.ws.ctx, WSLAY_RSV1_BIT);
    /* What came after the head is WebSocket already (the `ready` message, with ?token=).
     * The bytes of p past the head are those of hs past it. */
    size_t rest = sl_buf_len(hs) - head_len;
    const char *tail = p + (n - rest);
    const char *token = lg_ws_token(c);
    const struct lg_dialect *dl = c->w->cfg->dialect;
    /* Over Socket.IO the token goes in the namespace's CONNECT (dialect.c). */
    if (token && c->w->cfg->auth == LG_AUTH_MESSAGE && (dl == NULL || !lg_dialect_sio(dl))) {
        struct sl_buf am = SL_BUF_INIT;
        SL_JSONW_LIT(&am, "{\"type\":\"auth\",\"token\":");
        sl_jsonw_cstr(&am, token);
        sl_buf_append_byte(&am, '}');
        lg_ws_send_text(c, sl_buf_ptr(&am), sl_buf_len(&am));
        sl_buf_free(&am);
        if (c->state == LG_CONN_CLOSED)
            return;
    }
    if (rest > 0)
        feed(c, tail, rest);
    sl_buf_free(hs);
}

/* --- streams and close -------------------------------------------------------------------- */

static void
ws_start_stream(struct lg_conn *c, struct lg_slot *s)
{
    const struct lg_config *cfg = c->w->cfg;
    char msg[512];
    struct sl_buf b = SL_BUF_INIT;
    size_t hl = sl_buf_len(&cfg->chat_head), tl = sl_buf_len(&cfg->chat_tail);
    char num[16];
    int nl = cfg->chat_id ? snprintf(num, sizeof(num), "%u", s->n) : 0;
    size_t total = hl + (size_t)nl + tl;
    const char *p = msg;
    if (total <= sizeof(msg)) {
        memcpy(msg, sl_buf_ptr(&cfg->chat_head), hl);
        memcpy(msg + hl, num, (size_t)nl);
        memcpy(msg + hl + (size_t)nl, sl_buf_ptr(&cfg->chat_tail), tl);
    } else {
        sl_buf_append(&b, sl_buf_ptr(&cfg->chat_head), hl);
        sl_buf_append(&b, num, (size_t)nl);
        sl_buf_append(&b, sl_buf_ptr(&cfg->chat_tail), tl);
        p = sl_buf_ptr(&b);
    }
    lg_ws_send_text(c, p, total);
    sl_buf_free(&b);
}

static void
ws_resume_stream(struct lg_conn *c, struct lg_slot *s)
{
    struct sl_buf b = SL_BUF_INIT;
    sl_buf_printf(&b, "{\"type\":\"resume\",\"id\":\"%u\",\"after\":%llu", s->n,
                  (unsigned long long)s->last_seq);
    if (s->epoch_len > 0) {
        /* Without it (no `start` seen yet) the server takes the newest run of the id. */
        SL_JSONW_LIT(&b, ",\"epoch\":");
        sl_jsonw_str(&b, s->epoch, s->epoch_len);
    }
    sl_buf_append_byte(&b, '}');
    lg_ws_send_text(c, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
}

static void
ws_close(struct lg_conn *c)
{
    if (c->u.ws.ctx == NULL) {
        lg_conn_close(c);
        return;
    }
    wslay_event_queue_close(c->u.ws.ctx, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    ws_pump(c);
}

static void
ws_cleanup(struct lg_conn *c)
{
    if (c->u.ws.ctx)
        wslay_event_context_free(c->u.ws.ctx);
    c->u.ws.ctx = NULL;
    sl_buf_free(&c->u.ws.hs);
    if (c->u.ws.inflate) {
        inflateEnd(c->u.ws.inflate);
        free(c->u.ws.inflate);
        c->u.ws.inflate = NULL;
    }
    sl_buf_free(&c->u.ws.plain);
}

const struct lg_proto_ops lg_wsconn_ops = {
    .connected = ws_connected,
    .read = ws_read,
    .start_stream = ws_start_stream,
    .resume_stream = ws_resume_stream,
    .close = ws_close,
    .cleanup = ws_cleanup,
};
