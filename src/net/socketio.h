/*
 * Socket.IO v5 server: namespaces, events and acknowledgements over Engine.IO.
 *
 * One sl_sio_server serves one Engine.IO endpoint (a path of an sl_eio_server). Every
 * Engine.IO session there is a Socket.IO connection (struct sl_sio_conn); inside it the
 * client joins namespaces with CONNECT packets, and each joined namespace is a socket
 * (struct sl_sio_socket), the unit the application talks to:
 *
 *     client                                     server (this layer)       application
 *     0/chat,{"token":"..."}  CONNECT    ->                                on_connect(auth)
 *                                         <-  0/chat,{"sid":..,"pid":..}   sl_sio_accept()
 *                      (or CONNECT_ERROR  <-  4/chat,{"message":"..."}     sl_sio_refuse())
 *     2/chat,7["ask",{..}]    EVENT      ->                                on_event("ask", 7)
 *                                         <-  3/chat,7[...]                sl_sio_ack(7)
 *                                         <-  2/chat,["delta",{..},"12"]   sl_sio_emit(offset)
 *     1/chat,                 DISCONNECT ->                                on_disconnect()
 *
 * Binary events and acks (BINARY_EVENT/BINARY_ACK) arrive as a packet with placeholders and
 * then its attachments as binary Engine.IO messages; they are reassembled here (at most
 * max_attachments, at most max_binary bytes in all, all of them within connect_timeout) and
 * handed over together.
 *
 * Rules enforced as the reference server enforces them: a packet that does not decode
 * (net/siocodec.h), a packet for a namespace the client has not joined (or is still
 * joining), a second CONNECT to a joined namespace, a CONNECT_ERROR from the client, or an
 * attachment out of place ends the Engine.IO connection (sl_eio_fail: the client sees a
 * transport error and reconnects). A CONNECT to an unknown namespace gets CONNECT_ERROR
 * {"message":"Invalid namespace"} and the connection stays open. A connection that has
 * joined no namespace within connect_timeout is closed.
 *
 * Connection state recovery (Socket.IO 4.6+), when opt.recovery is set: the CONNECT reply
 * carries a private session id (pid) besides the socket id; events the application emits
 * carry an offset as their last argument (sl_sio_emit's offset); a client that reconnects
 * sends {pid, offset} in its CONNECT payload, which on_connect receives, and the
 * application answers sl_sio_accept(s, pid, sid) with the old ids to say "recovered" (the
 * client compares the pid) and then emits what the client missed.
 *
 * Lifetimes: a socket exists from on_connect until sl_sio_refuse(), sl_sio_disconnect(),
 * or on_disconnect (which comes exactly once for every socket that was not refused or
 * disconnected by the application, accepted or still undecided, from the loop and never
 * inside a call the application makes). A connection's conn_ud (from on_open) is handed to
 * on_close after the on_disconnect of all its sockets.
 *
 * Memory: a connection is one small struct (72 bytes), each joined namespace one more (80
 * bytes); nothing else while idle.
 */
#ifndef SL_NET_SOCKETIO_H
#define SL_NET_SOCKETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

struct sl_conn;
struct sl_http_req;
struct sl_loop;
struct sl_eio_server;
struct sl_sio_server;
struct sl_sio_conn;
struct sl_sio_socket;
struct sl_sio_nsp;

/* Length of socket ids and pids: 20 characters of [A-Za-z0-9_-]. */
#define SL_SIO_ID_LEN 20
/* The longest pid and offset taken from a client's CONNECT payload. */
#define SL_SIO_MAX_RECOVERY 64

/* on_disconnect reasons besides Engine.IO's (SL_EIO_R_*), which end every socket. */
extern const char SL_SIO_R_CLIENT_NSP[]; /* "client namespace disconnect" */

struct sl_sio_options {
    uint64_t connect_timeout_ms;
    bool recovery;            /* CONNECT replies carry a pid */
    unsigned max_attachments; /* per binary packet; 0: 10, as socket.io-parser */
    uint64_t max_binary;      /* bytes of attachments per packet; 0: 1000000 */
};

/* The connection's handshake, for the application (optional). */
struct sl_sio_conn_handler {
    /*
     * A client opened a Socket.IO connection (its Engine.IO handshake). req and c are the
     * handshake request and its connection, valid during the call only: take what the
     * namespaces will need (a ?token=, an Authorization header, the peer address). Returns
     * the connection's state, handed to each on_connect as conn_ud.
     */
    void *(*on_open)(void *ud, struct sl_sio_conn *conn, const struct sl_http_req *req,
                     struct sl_conn *c);
    /* The connection is gone, after the on_disconnect of its sockets. */
    void (*on_close)(void *ud, void *conn_ud, const char *reason);
};

struct sl_sio_connect_info {
    struct sl_slice auth; /* the CONNECT payload, a JSON object ("{}" when none was sent) */
    const char *pid;      /* recovery: the pid the client asks to recover, else NULL */
    const char *offset;   /* recovery: the offset of the last event it got, else NULL */
    void *conn_ud;        /* from the connection handler's on_open (NULL without one) */
};

struct sl_sio_event {
    const char *name; /* decoded, NUL-terminated (a number name as its digits) */
    size_t name_len;
    struct sl_slice args; /* JSON values separated by commas, as inside the array (may be
                             empty); for a binary event they hold the placeholders */
    int64_t ack;          /* the client waits for sl_sio_ack(ack); -1 if it does not */
    const struct sl_slice *attachments; /* binary events: nattachments byte strings */
    size_t nattachments;
};

struct sl_sio_nsp_handler {
    /*
     * A client asks to join. Answer with sl_sio_accept() or sl_sio_refuse(), from here or
     * later (until then the client must wait; anything it sends to this namespace ends the
     * connection). ud is the namespace's; set the socket's own with sl_sio_set_user_data().
     */
    void (*on_connect)(void *ud, struct sl_sio_socket *s, const struct sl_sio_connect_info *ci);
    /* An event from the client (data valid during the call). */
    void (*on_event)(void *ud, struct sl_sio_socket *s, const struct sl_sio_event *ev);
    /* The client's answer to an event emitted with want_ack (optional; ignored without). */
    void (*on_ack)(void *ud, struct sl_sio_socket *s, uint64_t id, struct sl_slice args,
                   const struct sl_slice *attachments, size_t nattachments);
    /* Everything queued on the connection has been handed to the kernel (optional). */
    void (*on_drain)(void *ud, struct sl_sio_socket *s);
    /* The socket is gone: the client left the namespace, or the connection ended. */
    void (*on_disconnect)(void *ud, struct sl_sio_socket *s, const char *reason);
};

/*
 * Serves Socket.IO at path of eio (an endpoint is added to it). ch (optional) and the
 * handlers of the namespaces must outlive the server.
 */
struct sl_sio_server *sl_sio_server_new(struct sl_eio_server *eio, struct sl_loop *loop,
                                        const char *path, const struct sl_sio_options *opt,
                                        const struct sl_sio_conn_handler *ch, void *ud);

/* Frees the server (after its Engine.IO server shut down and the loop ended). */
void sl_sio_server_free(struct sl_sio_server *srv);

/* Adds namespace name ("/", "/chat"). name must outlive the server. */
struct sl_sio_nsp *sl_sio_server_add_nsp(struct sl_sio_server *srv, const char *name,
                                         const struct sl_sio_nsp_handler *h, void *ud);

/*
 * Accepts a pending socket: the CONNECT reply {"sid":...} (and "pid" with recovery) is
 * queued. pid and sid: the ids of the session being recovered (the client then reports
 * `recovered`), or NULL for new ones. Events may be emitted right after.
 */
void sl_sio_accept(struct sl_sio_socket *s, const char *pid, const char *sid);

/*
 * Refuses a pending socket with CONNECT_ERROR; data is its JSON payload, normally
 * {"message":"..."}. The Engine.IO connection stays open. s is gone when this returns.
 */
void sl_sio_refuse(struct sl_sio_socket *s, struct sl_slice data);

struct sl_sio_emit {
    const char *event;                  /* the event name */
    struct sl_slice args;               /* JSON values separated by commas (may be empty) */
    const struct sl_slice *attachments; /* binary: the args hold the placeholders */
    size_t nattachments;
    const char *offset; /* recovery: appended as the last argument, or NULL */
    bool want_ack;      /* the client is asked for an ack (on_ack) */
};

/*
 * Emits an event to the socket's client. Returns the ack id when want_ack, else 0; -1 if
 * the socket is not connected (nothing is sent).
 */
int64_t sl_sio_emit(struct sl_sio_socket *s, const struct sl_sio_emit *e);

/* Answers the client's event ack id with args (and attachments, then a BINARY_ACK). */
void sl_sio_ack(struct sl_sio_socket *s, uint64_t id, struct sl_slice args,
                const struct sl_slice *attachments, size_t nattachments);

/*
 * Makes the client leave the namespace (a DISCONNECT packet; socket.io-client does not
 * reconnect it). s is gone when this returns; no on_disconnect follows.
 */
void sl_sio_disconnect(struct sl_sio_socket *s);

/*
 * Closes the socket's whole connection at the Engine.IO level (what was queued goes
 * first): the client reconnects by itself, as after a drop. on_disconnect follows for
 * every socket.
 */
void sl_sio_close(struct sl_sio_conn *conn);

void sl_sio_set_user_data(struct sl_sio_socket *s, void *ud);
struct sl_sio_conn *sl_sio_socket_conn(const struct sl_sio_socket *s);
const char *sl_sio_socket_nsp(const struct sl_sio_socket *s);
const char *sl_sio_socket_id(const struct sl_sio_socket *s);  /* after accept */
const char *sl_sio_socket_pid(const struct sl_sio_socket *s); /* after accept, with recovery */
size_t sl_sio_queued(const struct sl_sio_socket *s);          /* the connection's queue */
uint64_t sl_sio_sent(const struct sl_sio_socket *s);          /* sl_eio_sent() of its connection */
uint64_t sl_sio_delivered(const struct sl_sio_socket *s);     /* sl_eio_delivered() likewise */
const char *sl_sio_conn_eio_sid(const struct sl_sio_conn *conn);

#endif
