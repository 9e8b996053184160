#include "core/ws_transport.h"

#include "config/config.h"
#include "core/session.h"
#include "core/worker.h"
#include "net/conn.h"
#include "net/ws.h"

/*
 * The session and the sl_ws point at each other: the session's transport is the sl_ws,
 * the sl_ws's user data is the session. The sl_ws reports its end exactly once
 * (on_closed), which frees the session; nothing else frees either.
 */

static void
on_text(void *ud, const char *msg, size_t len)
{
    sl_session_on_message(ud, NULL, msg, len);
}

static void
on_activity(void *ud)
{
    sl_session_on_activity(ud);
}

static void
on_violation(void *ud, uint16_t code, const char *reason)
{
    sl_session_on_violation(ud, code, reason);
}

static void
on_drain(void *ud)
{
    sl_session_on_drain(ud);
}

static void
on_closed(void *ud, uint16_t code)
{
    sl_session_transport_closed(ud, code);
}

static const struct sl_ws_handler handler = {
    .on_text = on_text,
    .on_activity = on_activity,
    .on_violation = on_violation,
    .on_drain = on_drain,
    .on_closed = on_closed,
};

static void
t_send(void *t, const char *event, const char *msg, size_t len, const char *offset)
{
    (void)event;
    (void)offset;
    sl_ws_send_text(t, msg, len);
}

static void
t_close(void *t, uint16_t code, const char *reason)
{
    sl_ws_close(t, code, reason);
}

static size_t
t_queued(void *t)
{
    return sl_ws_queued(t);
}

static void
t_ping(void *t)
{
    sl_ws_ping(t);
}

static void
t_set_max(void *t, uint64_t max)
{
    sl_ws_set_max_message(t, max);
}

static uint64_t
t_conn_id(void *t)
{
    return sl_conn_id(sl_ws_conn(t));
}

static uint64_t
t_written(void *t)
{
    return sl_conn_written(sl_ws_conn(t));
}

static uint64_t
t_acked(void *t)
{
    return sl_conn_acked(sl_ws_conn(t));
}

static int
t_peer(void *t, struct sockaddr_storage *out)
{
    return sl_conn_peer_addr(sl_ws_conn(t), out);
}

static void
t_lazy(void *t, bool on)
{
    sl_conn_lazy(sl_ws_conn(t), on);
}

static const struct sl_transport_ops ops = {
    .lazy = t_lazy,
    .peer = t_peer,
    .written = t_written,
    .acked = t_acked,
    .send = t_send,
    .close = t_close,
    .queued = t_queued,
    .ping = t_ping,
    .set_max_message = t_set_max,
    .conn_id = t_conn_id,
};

void
sl_ws_transport_accept(struct sl_worker *w, struct sl_conn *c, const struct sl_http_req *req,
                       const struct sl_proto *proto, enum sl_proto_kind kind, const char *token)
{
    struct sl_ws_options opt = {.max_message = w->cfg->limits.max_message_bytes,
                                .deflate = &w->ws_deflate};
    /* The session needs the sl_ws and the sl_ws its session: create with a NULL user data
     * first, then wire both before any byte can arrive (reads start on the next turn). */
    struct sl_ws *ws = sl_ws_accept(c, req, &opt, &handler, NULL);
    struct sl_session *s = sl_session_new(&w->sessions, &proto, 1, kind, ws, &ops);
    sl_ws_set_user_data(ws, s);
    sl_session_begin(s, token);
}
