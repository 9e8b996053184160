#include "dialect.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "base/alloc.h"
#include "base/jsonw.h"
#include "scan.h"

#define CODE_MAX 48

struct lg_dialect {
    const char *name;
    bool sio;
    bool native; /* the native protocol's messages as events (the /sluice namespace) */
    const char *nsp;
    /* The request: an event (Socket.IO) or a type (ws-chat) and its members. */
    const char *req;
    const char *req_id; /* the member naming the stream; NULL: the server names it */
    const char *req_text;
    bool req_messages;   /* req_text is a list of messages: [{"role":"user","content":...}] */
    const char *req_max; /* the max tokens member, NULL: none */
    bool req_model, req_provider;
    const char *req_extra; /* members always sent, each with its leading comma */
    /* The events read (dialects other than native). */
    const char *id; /* the stream's id in them */
    const char *token, *text;
    const char *start; /* a stream's first event: binds a server-named stream */
    const char *done;
    const char *error; /* a stream failed (or a request was refused): code in code_key */
    const char *code_key;
    const char *cancelled;
    const char *fatal; /* an error tied to no stream */
    const char *ready; /* ws-chat: authenticated */
    const char *auth_error;
    const char *const *ignore; /* NULL-terminated: events with nothing to measure */
};

static const char *const native_events[] = {"ready", "start",     "progress", "delta", "done",
                                            "error", "cancelled", "pong",     NULL};
static const char *const llm_ignore[] = {"llm:chat:stream:acknowledged",
                                         "llm:stream:cancel:acknowledged", NULL};
static const char *const ai_ignore[] = {"ai:connected",         "ai:stream:complete",
                                        "ai:heartbeat:ack",     "ai:backpressure",
                                        "ai:reconnect:success", NULL};
static const char *const wschat_ignore[] = {"pong", "auth_success", NULL};

static const struct lg_dialect dialects[] = {
    {
        .name = "sluice",
        .sio = true,
        .native = true,
        .nsp = "/sluice",
        .req = "chat",
        .req_id = "id",
        .req_text = "message",
        .req_max = "max_tokens",
        .req_model = true,
    },
    {
        .name = "chat",
        .sio = true,
        .nsp = "/",
        .req = "chat",
        .req_id = "requestId",
        .req_text = "messages",
        .req_messages = true,
        .req_max = "max_tokens",
        .req_model = true,
        .id = "requestId",
        .token = "chat:chunk",
        .text = "content",
        .start = "chat:start",
        .done = "chat:complete",
        .error = "chat:error",
        .code_key = "code",
        .fatal = "error",
    },
    {
        .name = "llm",
        .sio = true,
        .nsp = "/",
        .req = "llm:chat:stream",
        .req_id = "sessionId",
        .req_text = "messages",
        .req_messages = true,
        .req_model = true,
        .req_provider = true,
        .id = "sessionId",
        .token = "llm:stream:token",
        .text = "token",
        .start = "llm:stream:start",
        .done = "llm:stream:done",
        .error = "llm:stream:error",
        .code_key = "code",
        .cancelled = "llm:stream:cancelled",
        .fatal = "error", /* the namespace's answer to an event no dialect of it knows */
        .ignore = llm_ignore,
    },
    {
        .name = "stream",
        .sio = true,
        .nsp = "/stream",
        .req = "stream_request",
        .req_text = "message",
        .req_model = true,
        .id = "sessionId",
        .token = "stream_chunk",
        .text = "chunk",
        .start = "stream_start",
        .done = "stream_complete",
        .error = "stream_error",
        .code_key = "code",
    },
    {
        .name = "ai",
        .sio = true,
        .nsp = "/ai",
        .req = "ai:stream",
        .req_id = "streamId",
        .req_text = "prompt",
        .req_max = "maxTokens",
        .req_model = true,
        .id = "streamId",
        .token = "ai:token",
        .text = "data",
        .start = "ai:stream:start",
        .done = "ai:done",
        .error = "ai:stream:error",
        .code_key = "code",
        .cancelled = "ai:stream:cancelled",
        .fatal = "ai:error",
        .ignore = ai_ignore,
    },
    {
        .name = "ws-chat",
        .req = "message",
        .req_text = "message",
        .req_extra = ",\"session_id\":null", /* a new conversation per request */
        .id = "stream_id",
        .token = "token",
        .text = "token",
        .start = "progress",
        .done = "complete",
        .error = "error",
        .code_key = "detail", /* sluice's code; `code` is the seed's PROCESSING_ERROR */
        .ready = "auth_success",
        .auth_error = "auth_error",
        .ignore = wschat_ignore,
    },
};

const struct lg_dialect *
lg_dialect_find(const char *name)
{
    for (size_t i = 0; i < SL_ARRAY_LEN(dialects); i++) {
        if (strcmp(dialects[i].name, name) == 0)
            return &dialects[i];
    }
    return NULL;
}

const char *
lg_dialect_names(void)
{
    return "sluice, chat, llm, stream, ai, ws-chat";
}

const char *
lg_dialect_name(const struct lg_dialect *d)
{
    return d->name;
}

bool
lg_dialect_sio(const struct lg_dialect *d)
{
    return d->sio;
}

const char *
lg_dialect_nsp(const struct lg_dialect *d)
{
    return d->nsp;
}

/* --- requests ------------------------------------------------------------------------------ */

int
lg_dialect_build(const struct lg_dialect *d, const struct lg_request_opts *o, struct lg_config *cfg,
                 char *err, size_t errlen)
{
    if (o->model && !d->req_model) {
        snprintf(err, errlen,
                 "the %s dialect names no model (the server's default_model answers): drop -m",
                 d->name);
        return -1;
    }
    if (o->max_tokens > 0 && d->req_max == NULL) {
        snprintf(err, errlen, "the %s dialect has no max tokens field", d->name);
        return -1;
    }
    if (o->provider && !d->req_provider) {
        snprintf(err, errlen, "--provider is for the llm dialect");
        return -1;
    }
    if (d->sio) {
        const char *nsp = o->nsp ? o->nsp : d->nsp;
        if (nsp[0] != '/' || strpbrk(nsp, ",?#\"\\ ") != NULL) {
            snprintf(err, errlen, "bad namespace %s (expected /NAME)", nsp);
            return -1;
        }
        if (strcmp(nsp, "/") != 0) {
            sl_buf_append_str(&cfg->sio_nsp, nsp);
            sl_buf_append_byte(&cfg->sio_nsp, ',');
        }
    } else if (o->nsp) {
        snprintf(err, errlen, "--namespace is for the Socket.IO dialects");
        return -1;
    }

    /* The members after the id, each with its leading comma. */
    struct sl_buf m = SL_BUF_INIT;
    sl_buf_append_byte(&m, ',');
    sl_jsonw_cstr(&m, d->req_text);
    sl_buf_append_byte(&m, ':');
    if (d->req_messages) {
        SL_JSONW_LIT(&m, "[{\"role\":\"user\",\"content\":");
        sl_jsonw_cstr(&m, o->message);
        SL_JSONW_LIT(&m, "}]");
    } else {
        sl_jsonw_cstr(&m, o->message);
    }
    if (o->provider) {
        SL_JSONW_LIT(&m, ",\"provider\":");
        sl_jsonw_cstr(&m, o->provider);
    }
    if (o->model) {
        SL_JSONW_LIT(&m, ",\"model\":");
        sl_jsonw_cstr(&m, o->model);
    }
    if (o->max_tokens > 0) {
        sl_buf_append_byte(&m, ',');
        sl_jsonw_cstr(&m, d->req_max);
        sl_buf_append_byte(&m, ':');
        sl_jsonw_int(&m, o->max_tokens);
    }
    if (d->req_extra)
        sl_buf_append_str(&m, d->req_extra);
    sl_buf_append_str(&m, d->sio ? "}]" : "}");

    struct sl_buf *h = &cfg->chat_head;
    if (d->sio) {
        SL_JSONW_LIT(h, "42");
        sl_buf_append(h, sl_buf_ptr(&cfg->sio_nsp), sl_buf_len(&cfg->sio_nsp));
        sl_buf_append_byte(h, '[');
        sl_jsonw_cstr(h, d->req);
        SL_JSONW_LIT(h, ",{");
    } else {
        SL_JSONW_LIT(h, "{\"type\":");
        sl_jsonw_cstr(h, d->req);
        sl_buf_append_byte(h, ',');
    }
    cfg->chat_id = d->req_id != NULL;
    if (cfg->chat_id) {
        sl_jsonw_cstr(h, d->req_id);
        SL_JSONW_LIT(h, ":\"");
        sl_buf_append_byte(&cfg->chat_tail, '"');
        sl_buf_append(&cfg->chat_tail, sl_buf_ptr(&m), sl_buf_len(&m));
    } else {
        sl_buf_append(h, sl_buf_ptr(&m) + 1, sl_buf_len(&m) - 1);
    }
    sl_buf_free(&m);
    return 0;
}

/* --- events -------------------------------------------------------------------------------- */

static bool
is(struct sl_slice name, const char *lit)
{
    return lit != NULL && sl_slice_eq(name, lit);
}

static bool
listed(struct sl_slice name, const char *const *list)
{
    for (; list && *list; list++) {
        if (sl_slice_eq(name, *list))
            return true;
    }
    return false;
}

/* An event this run cannot account for ends the connection; its name goes to stderr once,
 * since the report only counts the code. */
static void
unexpected(struct lg_conn *c, const char *what, struct sl_slice name)
{
    static atomic_bool said;
    if (!atomic_exchange(&said, true))
        fprintf(stderr,
                "sluice-loadgen: unexpected %s \"%.*s\" (the wrong dialect for the "
                "namespace or path?)\n",
                what, (int)(name.len > 80 ? 80 : name.len), name.ptr);
    lg_conn_fail(c, "UNEXPECTED_EVENT");
}

/* The active stream the server calls `id`. A server-named stream not bound yet is bound to
 * the oldest stream waiting for its name when `bind`. */
static struct lg_slot *
find_slot(struct lg_conn *c, struct sl_slice id, bool bind)
{
    const struct lg_config *cfg = c->w->cfg;
    if (cfg->chat_id) {
        uint32_t n;
        return lg_scan_u32(id, &n) == 0 ? lg_conn_slot(c, n) : NULL;
    }
    struct lg_slot *oldest = NULL;
    for (uint32_t i = 0; c->slots != NULL && i < cfg->concurrency; i++) {
        struct lg_slot *s = &c->slots[i];
        if (!s->active)
            continue;
        if (s->sid_len > 0 && s->sid_len == id.len && memcmp(s->sid, id.ptr, id.len) == 0)
            return s;
        if (s->sid_len == 0 && (oldest == NULL || s->n < oldest->n))
            oldest = s;
    }
    if (!bind || oldest == NULL || id.len == 0 || id.len >= sizeof(oldest->sid))
        return NULL;
    memcpy(oldest->sid, id.ptr, id.len);
    oldest->sid_len = (uint8_t)id.len;
    return oldest;
}

/* The oldest active stream the server has not named yet (for an error naming none). */
static struct lg_slot *
oldest_unnamed(struct lg_conn *c)
{
    struct lg_slot *oldest = NULL;
    for (uint32_t i = 0; c->slots != NULL && i < c->w->cfg->concurrency; i++) {
        struct lg_slot *s = &c->slots[i];
        if (s->active && s->sid_len == 0 && (oldest == NULL || s->n < oldest->n))
            oldest = s;
    }
    return oldest;
}

static void
on_token(struct lg_conn *c, const char *obj, size_t len)
{
    const struct lg_dialect *d = c->w->cfg->dialect;
    const char *keys[2] = {d->id, d->text};
    struct lg_jval v[2];
    if (lg_scan_members(obj, len, keys, 2, v) < 0 || v[0].kind != LG_J_STRING ||
        v[1].kind != LG_J_STRING) {
        lg_errors_add_str(&c->w->stats.errors, "BAD_MESSAGE");
        return;
    }
    struct lg_slot *s = find_slot(c, v[0].v, true);
    if (s == NULL) {
        lg_errors_add_str(&c->w->stats.errors, "UNEXPECTED_ID");
        return;
    }
    struct sl_slice text = v[1].v;
    if (text.len == 0)
        return; /* the end of a stream (chat's last chunk) or a tool call's fragment */
    size_t stamps = lg_scan_stamps(text.ptr, text.len, lg_conn_stamp, c);
    uint64_t tokens = stamps ? stamps : 1;
    if (c->w->cfg->verify)
        tokens = lg_verify_feed(&s->verify, text.ptr, text.len);
    lg_slot_tokens(c, s, tokens, stamps);
}

/* The id and, for errors, the code of a stream event. */
struct ev_ids {
    struct lg_jval id;
    char code[CODE_MAX];
};

static int
read_ids(const struct lg_dialect *d, const char *obj, size_t len, struct ev_ids *e)
{
    const char *keys[2] = {d->id, d->code_key ? d->code_key : "code"};
    struct lg_jval v[2];
    if (lg_scan_members(obj, len, keys, 2, v) < 0)
        return -1;
    e->id = v[0];
    size_t n = v[1].kind == LG_J_STRING ? v[1].v.len : 0;
    if (n == 0 || n >= sizeof(e->code) || memchr(v[1].v.ptr, '\\', n) != NULL) {
        snprintf(e->code, sizeof(e->code), "ERROR");
    } else {
        memcpy(e->code, v[1].v.ptr, n);
        e->code[n] = '\0';
    }
    return 0;
}

static void
on_stream_error(struct lg_conn *c, const char *obj, size_t len)
{
    const struct lg_dialect *d = c->w->cfg->dialect;
    struct ev_ids e;
    if (read_ids(d, obj, len, &e) != 0) {
        lg_conn_fail(c, "BAD_MESSAGE");
        return;
    }
    struct lg_slot *s = NULL;
    if (e.id.kind == LG_J_STRING)
        s = find_slot(c, e.id.v, true);
    else if (!c->w->cfg->chat_id)
        s = oldest_unnamed(c); /* refused before the stream had a name */
    if (s)
        lg_slot_end(c, s, e.code);
    else
        lg_conn_fail(c, e.code); /* about no stream of ours: nothing else will end them */
}

static void
on_stream_end(struct lg_conn *c, const char *obj, size_t len, const char *code)
{
    const struct lg_dialect *d = c->w->cfg->dialect;
    struct ev_ids e;
    if (read_ids(d, obj, len, &e) != 0 || e.id.kind != LG_J_STRING) {
        lg_errors_add_str(&c->w->stats.errors, "BAD_MESSAGE");
        return;
    }
    struct lg_slot *s = find_slot(c, e.id.v, true);
    if (s)
        lg_slot_end(c, s, code);
    else
        lg_errors_add_str(&c->w->stats.errors, "UNEXPECTED_ID");
}

static void
on_event(struct lg_conn *c, struct sl_slice name, const char *obj, size_t len)
{
    const struct lg_dialect *d = c->w->cfg->dialect;
    if (d->native) {
        if (!listed(name, native_events)) {
            unexpected(c, "event", name);
            return;
        }
        lg_ws_native_message(c, obj, len);
        return;
    }
    if (is(name, d->token)) {
        on_token(c, obj, len);
    } else if (is(name, d->start)) {
        if (!c->w->cfg->chat_id) {
            struct ev_ids e;
            if (read_ids(d, obj, len, &e) == 0 && e.id.kind == LG_J_STRING)
                (void)find_slot(c, e.id.v, true);
        }
    } else if (is(name, d->done)) {
        on_stream_end(c, obj, len, NULL);
    } else if (is(name, d->cancelled)) {
        on_stream_end(c, obj, len, "CANCELLED");
    } else if (is(name, d->error)) {
        on_stream_error(c, obj, len);
    } else if (is(name, d->ready) && c->state == LG_CONN_HANDSHAKE) {
        lg_conn_ready(c);
    } else if (is(name, d->fatal) || is(name, d->auth_error)) {
        struct ev_ids e;
        if (read_ids(d, obj, len, &e) != 0)
            snprintf(e.code, sizeof(e.code), "ERROR");
        /* ws-chat's auth_error has its code in `code`, not `detail`. */
        if (is(name, d->auth_error))
            snprintf(e.code, sizeof(e.code), "AUTH_FAILED");
        lg_conn_fail(c, e.code);
    } else if (!listed(name, d->ignore)) {
        unexpected(c, "event", name);
    }
}

/* --- Socket.IO ------------------------------------------------------------------------------ */

/* CONNECT_ERROR {"message":"Invalid namespace"} counts as INVALID_NAMESPACE. */
static void
connect_error(struct lg_conn *c, struct sl_slice data)
{
    const char *keys[1] = {"message"};
    struct lg_jval v[1];
    char code[CODE_MAX] = "CONNECT_ERROR";
    if (lg_scan_members(data.ptr, data.len, keys, 1, v) == 1 && v[0].kind == LG_J_STRING &&
        v[0].v.len > 0) {
        size_t n = 0;
        for (size_t i = 0; i < v[0].v.len && n + 1 < sizeof(code); i++) {
            char ch = v[0].v.ptr[i];
            if (ch >= 'a' && ch <= 'z')
                ch = (char)(ch - 'a' + 'A');
            else if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
                ch = '_';
            code[n++] = ch;
        }
        code[n] = '\0';
    }
    lg_conn_fail(c, code);
}

static void
send_connect(struct lg_conn *c)
{
    const struct lg_config *cfg = c->w->cfg;
    const char *token = lg_ws_token(c);
    struct sl_buf b = SL_BUF_INIT;
    SL_JSONW_LIT(&b, "40");
    sl_buf_append(&b, sl_buf_ptr(&cfg->sio_nsp), sl_buf_len(&cfg->sio_nsp));
    if (token && cfg->auth == LG_AUTH_MESSAGE) {
        SL_JSONW_LIT(&b, "{\"token\":");
        sl_jsonw_cstr(&b, token);
        sl_buf_append_byte(&b, '}');
    }
    lg_ws_send_text(c, sl_buf_ptr(&b), sl_buf_len(&b));
    sl_buf_free(&b);
}

static void
sio_text(struct lg_conn *c, const char *msg, size_t len)
{
    const struct lg_config *cfg = c->w->cfg;
    if (len == 0) {
        lg_conn_fail(c, "BAD_PACKET");
        return;
    }
    switch (msg[0]) {
    case '0': /* open: join the namespace */
        if (c->state == LG_CONN_HANDSHAKE)
            send_connect(c);
        return;
    case '2': /* the server's ping */
        lg_ws_send_text(c, "3", 1);
        return;
    case '3':
    case '6':
        return;
    case '1':
        lg_conn_fail(c, "EIO_CLOSE");
        return;
    case '4':
        break;
    default:
        lg_conn_fail(c, "BAD_PACKET");
        return;
    }
    struct lg_sio_packet p;
    if (lg_scan_sio_packet(msg, len, &p) != 0) {
        lg_conn_fail(c, "BAD_PACKET");
        return;
    }
    size_t nl = sl_buf_len(&cfg->sio_nsp);
    bool mine = nl == 0 ? sl_slice_eq(p.nsp, "/")
                        : p.nsp.len + 1 == nl &&
                              memcmp(p.nsp.ptr, sl_buf_ptr(&cfg->sio_nsp), p.nsp.len) == 0;
    if (!mine) {
        lg_conn_fail(c, "WRONG_NAMESPACE");
        return;
    }
    switch (p.type) {
    case '0':
        if (c->state == LG_CONN_HANDSHAKE)
            lg_conn_ready(c);
        return;
    case '1':
        lg_conn_fail(c, "SIO_DISCONNECT");
        return;
    case '2':
        on_event(c, p.event, p.arg.ptr ? p.arg.ptr : "{}", p.arg.ptr ? p.arg.len : 2);
        return;
    case '3':
        return;
    case '4':
        connect_error(c, p.data);
        return;
    default:
        lg_conn_fail(c, "BINARY_EVENT");
        return;
    }
}

/* --- ws-chat ------------------------------------------------------------------------------- */

static void
wschat_text(struct lg_conn *c, const char *msg, size_t len)
{
    const char *keys[1] = {"type"};
    struct lg_jval v[1];
    if (lg_scan_members(msg, len, keys, 1, v) != 1 || v[0].kind != LG_J_STRING) {
        lg_conn_fail(c, "BAD_MESSAGE");
        return;
    }
    on_event(c, v[0].v, msg, len);
}

void
lg_dialect_text(struct lg_conn *c, const char *msg, size_t len)
{
    if (c->w->cfg->dialect->sio)
        sio_text(c, msg, len);
    else
        wschat_text(c, msg, len);
}
