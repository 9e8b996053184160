/*
 * Sessions over Socket.IO: each joined namespace of a Socket.IO connection is a session
 * (core/session.h) whose transport is the namespace's socket (net/socketio.h), speaking the
 * namespace's dialects (socketio.namespaces.<name>.dialects; `native` is sluice's own
 * protocol as events, DIALECTS.md the seeds').
 *
 * Authentication is decided at the namespace's CONNECT: with `auth: required` a token from
 * the CONNECT payload {token}, else the handshake's ?token= or Authorization: Bearer; a
 * refused token is a CONNECT_ERROR {"message":"Authentication failed"} and the Engine.IO
 * connection stays open. With `auth: none` the user is anon:<client address>, and every
 * per-user limit applies to the address.
 *
 * Connection state recovery (socketio.recovery): the CONNECT reply's pid is the session's
 * recovery id, every event carries an offset (where each stream stood), and a client that
 * reconnects with {pid, offset} within resume.window gets its session's streams from there
 * on, whichever worker held them (the reply keeps the pid, so socket.io-client reports
 * `recovered`).
 *
 * Closing a session closes its whole Engine.IO connection (socket.io-client reconnects by
 * itself, as after a drop); a Socket.IO DISCONNECT, after which it would not, is never sent.
 */
#ifndef SL_CORE_SIO_SESSION_H
#define SL_CORE_SIO_SESSION_H

#include <stdbool.h>

struct sl_worker;
struct sl_conn;
struct sl_http_req;
struct sl_config_namespace;
struct sl_sio_nsp_handler;
struct sl_sio_nsp_sessions;

/* The dialects of a namespace, for a worker. NULL (with *why) if a dialect is unknown here. */
struct sl_sio_nsp_sessions *
sl_sio_sessions_new(struct sl_worker *w, const struct sl_config_namespace *ns, const char **why);
void sl_sio_sessions_free(struct sl_sio_nsp_sessions *n);

/* The namespace handler serving sessions (its ud: the sl_sio_nsp_sessions). */
extern const struct sl_sio_nsp_handler sl_sio_sessions_handler;

/*
 * A Socket.IO connection opened: what its namespaces' CONNECTs may need from the
 * handshake (its token, the client's address). Freed with sl_sio_sessions_conn_free.
 */
void *sl_sio_sessions_conn_new(const struct sl_http_req *req, struct sl_conn *c);
void sl_sio_sessions_conn_free(void *conn_ud);

#endif
