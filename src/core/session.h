/*
 * A client session: who the client is, its streams, its heartbeat and rate limit.
 *
 * A session is not the TCP connection that carries it. A transport (a WebSocket today;
 * later Socket.IO's long-polling requests, or a new WebSocket after a resume) is
 * attached through a small vtable, delivers client messages, and renders nothing
 * itself: the session's protocol adapter turns events into that client's messages.
 *
 * Lifetime: the session is created with its first transport and freed when the
 * transport reports it closed (sl_session_transport_closed). Its streams are detached
 * then (the provider transfers stop); resume will keep them for resume.window.
 */
#ifndef SL_CORE_SESSION_H
#define SL_CORE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "obs/metrics.h"
#include "proto/proto.h"

struct sl_worker;
struct sl_session;

struct sl_transport_ops {
    /* One protocol message to the client. */
    void (*send)(void *t, const char *msg, size_t len);
    /* Ends the transport with a close code and reason; it reports back when closed. */
    void (*close)(void *t, uint16_t code, const char *reason);
    /* Bytes waiting to be written. */
    size_t (*queued)(void *t);
    /* A liveness probe the client answers (WebSocket ping). */
    void (*ping)(void *t);
    /* Tightens or relaxes the inbound message size limit (optional). */
    void (*set_max_message)(void *t, uint64_t max);
    /* The id of the TCP connection carrying the transport now, for logs (optional). */
    uint64_t (*conn_id)(void *t);
};

/* Sets up the worker's session deadline queues (auth timeout, heartbeat). */
void sl_session_init_timers(struct sl_worker *w);

struct sl_session *sl_session_new(struct sl_worker *w, const struct sl_proto *proto,
                                  enum sl_proto_kind kind, void *transport,
                                  const struct sl_transport_ops *ops);

/*
 * Begins the session: with a token from the handshake (query or header) it is checked
 * at once; without, the client has limits.auth_timeout to send an auth message.
 */
void sl_session_begin(struct sl_session *s, const char *token);

/* A complete client message. */
void sl_session_on_message(struct sl_session *s, const char *msg, size_t len);

/* Any bytes from the client (resets the heartbeat). */
void sl_session_on_activity(struct sl_session *s);

/* The transport refused a message (too big, binary, ...) and is closing. */
void sl_session_on_violation(struct sl_session *s, uint16_t code, const char *reason);

/* The transport is gone. Frees the session. */
void sl_session_transport_closed(struct sl_session *s, uint16_t code);

/* Draining: end the session with 1001 if it has no streams (else when they end). */
void sl_session_drain(struct sl_session *s);

/* Shutting down: end the session with 1001 now. */
void sl_session_shutdown(struct sl_session *s);

struct sl_session *sl_session_from_link(struct sl_list *link);

#endif
