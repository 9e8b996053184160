/*
 * A client session: who the client is, the streams it reads, its heartbeat and limits.
 *
 * A session is not the TCP connection that carries it. A transport (a WebSocket today;
 * Socket.IO's long-polling requests or websocket next) is attached through a small vtable,
 * delivers client messages, and renders nothing itself: the session's protocol adapter
 * turns events into that client's messages.
 *
 * The session reads its streams' journals (stream/journal.h) through one subscription
 * per stream and renders what it reads while its transport has room (less than
 * limits.send_high_water queued); the rest waits in the journals, where consecutive text
 * deltas are merged into one message when they are finally rendered, and the streams
 * pause their providers (see stream.h). The transport's drain callback brings the session
 * back to render more.
 *
 * Lifetime (docs/internals/lifetimes.md): a session is created with its first transport
 * and owned by its worker's session set (struct sl_sessions). When the transport ends,
 * a session with running or unread streams is detached and lives on for resume.window:
 * its streams keep filling their journals, and a client that comes back takes them over
 * with `resume` (from any connection of the same user). At the window's end the session
 * is freed and its streams are aborted. A session without streams, or with
 * resume.window 0, is freed at once.
 */
#ifndef SL_CORE_SESSION_H
#define SL_CORE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/list.h"
#include "base/timeq.h"
#include "obs/metrics.h"
#include "proto/proto.h"

struct sl_identity;

struct sl_admission;
struct sl_auth;
struct sl_directory;
struct sl_relay;
struct sl_memory;
struct sl_throttle;
struct sockaddr_storage;
struct sl_config;
struct sl_loop;
struct sl_session;

struct sl_transport_ops {
    /*
     * One protocol message to the client: over Socket.IO the event `event` with the
     * arguments msg (and, with recovery, the offset as its last argument); over a
     * WebSocket (event NULL) the text message msg.
     */
    void (*send)(void *t, const char *event, const char *msg, size_t len, const char *offset);
    /* Ends the transport with a close code and reason; it reports back when closed. */
    void (*close)(void *t, uint16_t code, const char *reason);
    /* Bytes waiting to be written. */
    size_t (*queued)(void *t);
    /* A liveness probe the client answers (WebSocket ping); optional. */
    void (*ping)(void *t);
    /* Tightens or relaxes the inbound message size limit (optional). */
    void (*set_max_message)(void *t, uint64_t max);
    /* The id of the TCP connection carrying the transport now, for logs (optional). */
    uint64_t (*conn_id)(void *t);
    /*
     * Delivery (optional, both or neither): a position in the bytes sent so far, and how
     * far the client has acknowledged. With them a finished stream is kept until its end
     * has reached the client, so that a connection lost with the tail in flight can resume.
     */
    uint64_t (*written)(void *t);
    uint64_t (*acked)(void *t);
    /*
     * Optional: between lazy(t, true) and lazy(t, false) what is sent may wait briefly for
     * the next message and leave in the same write (sl_conn_lazy).
     */
    void (*lazy)(void *t, bool on);
    /* The client's address, for throttling authentication failures (optional). */
    int (*peer)(void *t, struct sockaddr_storage *out);
};

/* The session module's state on one worker. */
struct sl_sessions {
    const struct sl_config *cfg;
    struct sl_loop *loop;
    struct sl_metrics *metrics;
    const struct sl_auth *auth;
    struct sl_admission *adm;
    struct sl_directory *dir;     /* which worker owns a stream, for a resume */
    struct sl_relay *relay;       /* reading streams of other workers */
    struct sl_cluster *cluster;   /* reading streams of other nodes (NULL: single node) */
    struct sl_directory *sdir;    /* process-wide: which worker holds which session (recovery) */
    struct sl_memory *memory;     /* process-wide: ws-chat conversations */
    struct sl_throttle *throttle; /* process-wide: authentication failures per address */
    unsigned worker;
    unsigned nworkers;
    struct sl_timeq auth_tq;    /* not authenticated in time: 4003 */
    struct sl_timeq hb_idle_tq; /* silent for heartbeat.interval: ping */
    struct sl_timeq hb_wait_tq; /* still silent at heartbeat.timeout: 4008 */
    struct sl_timeq window_tq;  /* detached for resume.window: freed */
    struct sl_timeq held_tq;    /* checks whether held stream ends have been delivered */
    struct sl_timeq_node held_node;
    struct sl_list held;   /* subs whose terminal event is not yet delivered */
    struct sl_list all;    /* every session */
    size_t count;          /* sessions, attached or not */
    size_t detached;       /* sessions waiting for a resume */
    struct sl_buf scratch; /* rendering, reused for every message */
    struct sl_buf merge;   /* merged delta text */
    bool stopping;         /* shutdown: no more detaching */
};

/* What the session module works with; all borrowed, outliving every session. */
struct sl_sessions_env {
    const struct sl_config *cfg;
    struct sl_loop *loop;
    struct sl_metrics *metrics;
    const struct sl_auth *auth;
    struct sl_admission *adm;
    struct sl_directory *dir;
    struct sl_relay *relay;
    struct sl_cluster *cluster;
    struct sl_directory *sdir;
    struct sl_memory *memory;
    struct sl_throttle *throttle;
    unsigned worker;
    unsigned nworkers;
};

void sl_sessions_init(struct sl_sessions *ss, const struct sl_sessions_env *env);

/* Frees what is left (every transport must be closed by now). */
void sl_sessions_cleanup(struct sl_sessions *ss);

/* Draining: sessions without running streams end with 1001 (the others when they finish). */
void sl_sessions_drain(struct sl_sessions *ss);

/* Stopping: every session ends with 1001 now, detached ones are freed. */
void sl_sessions_shutdown(struct sl_sessions *ss);

/* Session ids: 20 characters of [a-z0-9] (Socket.IO's pid format), the first the worker's. */
#define SL_SESSION_ID_LEN 20

/*
 * A session over a new transport. protos: the dialects the transport serves (1 to 4; a
 * Socket.IO namespace may serve several, each client event goes to the first that knows
 * it), borrowed for the session's life.
 */
struct sl_session *sl_session_new(struct sl_sessions *ss, const struct sl_proto *const *protos,
                                  unsigned nprotos, enum sl_proto_kind kind, void *transport,
                                  const struct sl_transport_ops *ops);

/*
 * Begins the session: with a token from the handshake (query or header) it is checked
 * at once; without, the client has limits.auth_timeout to send an auth message.
 */
void sl_session_begin(struct sl_session *s, const char *token);

/*
 * Begins a session whose identity the transport established itself (Socket.IO's CONNECT;
 * anonymous: a namespace without auth, the user is anon:<address>): the identity's limits
 * and timers, but no welcome yet. Returns false if refused (the transport was asked to
 * close). Then sl_session_greet() sends the dialect's welcome.
 */
bool sl_session_identify(struct sl_session *s, const struct sl_identity *id, bool anonymous);
void sl_session_greet(struct sl_session *s);

/* Whether `previous` names a session of this session's user anywhere (a take-over may work). */
bool sl_session_can_take_over(const struct sl_session *s, const char *previous);

/* Only these models (or agents) may be asked for (borrowed: configuration strings). */
void sl_session_allow_models(struct sl_session *s, char *const *models, size_t n);

/* Every message carries Socket.IO's recovery offset from now on. */
void sl_session_enable_offsets(struct sl_session *s);

/*
 * Takes over every stream of the earlier session `previous` of the same user, on this or
 * another worker (Socket.IO connection state recovery, seed 003's ai:reconnect): from the
 * positions of a recovery offset, or without one from what that session had rendered.
 * Returns -1 if that is known at once to be impossible; else 0, and the streams arrive
 * (on a later turn when they live on another worker). A recovery (an offset) also sends the
 * dialect's welcome when it ends, naming `previous`, the id the session answers to from then
 * on: greet a recovering session this way, not with sl_session_greet().
 */
int sl_session_take_over(struct sl_session *s, const char *previous, const char *offset);

/*
 * Cluster mode: Socket.IO recovery of a session `previous` that is not on this node. Asks
 * Redis which node holds it and that node for its streams; then calls done(ud, recovered)
 * on a later turn (the transport answers its CONNECT: with `previous` as its id if
 * recovered) and, once done returned, takes the streams over from the offset's positions.
 * Returns -1 (done never runs) when that cannot be asked now. done is forgotten when the
 * transport closes first.
 */
int sl_session_recover_remote(struct sl_session *s, const char *previous, const char *offset,
                              void (*done)(void *ud, bool recovered), void *ud);

const char *sl_session_id(const struct sl_session *s);
const char *sl_session_user(const struct sl_session *s);

/*
 * The session's recovery id: what a later connection names it by (Socket.IO's pid, seed
 * 003's clientId). Its own id at first; after a recovery, the id it recovered.
 */
const char *sl_session_rid(const struct sl_session *s);

/*
 * A complete client message: over Socket.IO the event's name and its arguments, over a
 * WebSocket (event NULL) the text message.
 */
void sl_session_on_message(struct sl_session *s, const char *event, const char *msg, size_t len);

/* Any bytes from the client (resets the heartbeat). */
void sl_session_on_activity(struct sl_session *s);

/* The transport refused a message (too big, binary, ...) and is closing. */
void sl_session_on_violation(struct sl_session *s, uint16_t code, const char *reason);

/* Everything queued on the transport was written: render more. */
void sl_session_on_drain(struct sl_session *s);

/*
 * The transport is gone. The session detaches (or is freed, see above); the caller must
 * not use it afterwards.
 */
void sl_session_transport_closed(struct sl_session *s, uint16_t code);

#endif
