/*
 * A TCP connection on a worker's loop, below any protocol.
 *
 * The connection reads into the loop's shared buffer and hands the bytes to its
 * current handler (HTTP at first, WebSocket after an upgrade). Writes are queued in
 * one per-connection buffer and flushed at the end of the loop turn, so everything a
 * turn produces for a connection leaves in one write(2); the buffer is released when
 * it empties, so an idle connection holds none. A uv_write_t is allocated only when
 * the kernel does not take everything at once.
 *
 * Lifetime: a connection is freed only in its uv_close callback, after the handler's
 * on_close has run [libuv handle.rst]. sl_conn_close() may be called from any
 * callback, any number of times; the connection stays valid until that callback
 * returns to the loop.
 *
 * Deadlines and caps, whatever the protocol above (struct sl_conn_limits):
 *   - a write the peer does not take: queued output that makes no progress for
 *     send_timeout resets the connection (RST), the hard limit for a peer that stopped
 *     reading;
 *   - a graceful close: it ends within close_timeout of sl_conn_close(), flushed or not
 *     (a reset if the FIN could not be sent by then);
 *   - the output queue: above max_queued bytes the connection stops reading, so that
 *     output driven by the peer's input (responses, pongs, echoes) stops with it, and
 *     reads again once half has drained. Output not driven by input (streams) is the
 *     writer's to pace: sl_conn_queued() and on_drain are its signals.
 * Each connection has its own deadline node for these; the one sl_conn_timer() returns
 * is left to the handler.
 */
#ifndef SL_NET_CONN_H
#define SL_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/timeq.h"

struct sl_conn;
struct sl_loop;
struct uv_stream_s;

struct sl_conn_handler {
    /* Bytes arrived; data is valid only during the call. */
    void (*on_read)(struct sl_conn *c, const char *data, size_t len);
    /* The peer closed its side or the connection failed. The handler decides what follows. */
    void (*on_eof)(struct sl_conn *c);
    /* Everything queued has been handed to the kernel (optional). */
    void (*on_drain)(struct sl_conn *c);
    /* The connection is going away; release the handler's state. Called exactly once. */
    void (*on_close)(struct sl_conn *c);
};

/* The deadlines and the output cap of a pool's connections. */
struct sl_conn_limits {
    uint64_t send_timeout_ms;  /* queued output without progress this long: reset; 0: never */
    uint64_t close_timeout_ms; /* a graceful close lasts at most this long, then reset; > 0 */
    size_t max_queued;         /* reading stops above this many queued bytes; 0: no cap */
};

#define SL_CONN_SEND_TIMEOUT_MS 30000
#define SL_CONN_CLOSE_TIMEOUT_MS 5000
#define SL_CONN_MAX_QUEUED (4u << 20)
/* The longest lazy bytes wait for company (sl_conn_lazy). */
#define SL_CONN_HOLD_MS 10

/* Per-loop connection bookkeeping, owned by the worker (one per loop). */
struct sl_conn_pool {
    struct sl_loop *loop;
    struct sl_conn_limits limits;
    struct sl_list all;      /* every open connection */
    struct sl_list pending;  /* connections with queued bytes to flush */
    struct sl_timeq stall;   /* a write in flight: no progress for send_timeout resets */
    struct sl_timeq closing; /* a graceful close: its deadline */
    struct sl_timeq linger;  /* our FIN is out: wait briefly for the peer's */
    struct sl_timeq hold;    /* lazy bytes: how long they wait for company */
    struct sl_timeq soon;    /* duration 0: brings the loop back when flushing was cut short */
    struct sl_timeq_node soon_node;
    size_t count;
    uint64_t next_id;
    uint64_t bytes_out;      /* total bytes handed to the kernel (for metrics) */
    uint64_t send_timeouts;  /* connections reset because their output made no progress */
    uint64_t close_timeouts; /* graceful closes cut short by their deadline */
    uint64_t read_pauses;    /* times a connection stopped reading on its output cap */
    /*
     * Called after each connection's handler released it (optional; connection counts),
     * with the connection's tag (sl_conn_set_tag; NULL if none).
     */
    void (*on_closed)(void *ud, void *tag);
    void *on_closed_ud;
};

/* Sets up the pool with the default limits (SL_CONN_*). */
void sl_conn_pool_init(struct sl_conn_pool *p, struct sl_loop *loop);

/* Replaces the limits; only before the pool's first connection (asserted). */
void sl_conn_pool_set_limits(struct sl_conn_pool *p, const struct sl_conn_limits *lim);

/* Accepts one pending connection on server. Returns it, or NULL if accept failed. */
struct sl_conn *sl_conn_accept(struct sl_conn_pool *p, struct uv_stream_s *server);

/*
 * Takes over fd, a connected TCP socket accepted by the caller (net/listener.h). Returns the
 * connection, or NULL (fd closed) if libuv refused it.
 */
struct sl_conn *sl_conn_adopt(struct sl_conn_pool *p, int fd);

/* The connection's socket (to duplicate it for a hand-off, net/handoff.h), or -1. */
int sl_conn_fileno(const struct sl_conn *c);

/* Sets the handler and its state; reading starts on the first call. */
void sl_conn_set_handler(struct sl_conn *c, const struct sl_conn_handler *h, void *state);
void *sl_conn_state(const struct sl_conn *c);

/* Hands bytes to the current handler as if just read (after a protocol switch). */
void sl_conn_feed(struct sl_conn *c, const char *data, size_t len);
struct sl_conn_pool *sl_conn_pool(const struct sl_conn *c);
uint64_t sl_conn_id(const struct sl_conn *c);

/* Queues bytes for the end of this loop turn. Ignored once the connection is closing. */
void sl_conn_write(struct sl_conn *c, const void *p, size_t n);

/* Space for n bytes at the end of the queue, to be committed with sl_conn_commit(). */
char *sl_conn_reserve(struct sl_conn *c, size_t n);
void sl_conn_commit(struct sl_conn *c, size_t n);

/*
 * Bytes queued over the connection's life, and of those the ones the peer's TCP has
 * acknowledged (the kernel's unacknowledged send queue read with SIOCOUTQ): a position
 * written at some moment has reached the peer once acked passes it.
 */
uint64_t sl_conn_written(const struct sl_conn *c);
uint64_t sl_conn_acked(struct sl_conn *c);

/* Bytes queued and not yet taken by the kernel. */
size_t sl_conn_queued(const struct sl_conn *c);

/*
 * Whether the queue went over the pool's max_queued and has not drained to half of it yet:
 * reading is stopped meanwhile. A handler that produces output from input it already holds
 * (pipelined requests) should wait for on_drain before producing more.
 */
bool sl_conn_congested(const struct sl_conn *c);

/*
 * Hands what is queued to the kernel now instead of at the end of the turn, so that bytes
 * queued after this call start a new write (a protocol that must control its write
 * boundaries). If a write is already in flight, the bytes wait behind it as usual. With
 * nothing queued it only asks for an on_drain. on_drain is never called from inside this
 * call: it follows from the end-of-turn flush.
 */
void sl_conn_flush(struct sl_conn *c);

/*
 * Between sl_conn_lazy(c, true) and sl_conn_lazy(c, false), what is written may wait up to
 * SL_CONN_HOLD_MS for company: it leaves with the next ordinary write (one write, one
 * segment, instead of two) or on its own when that time is up. For news that is not worth
 * a write of its own (a stream's `start` and `connecting`, which the first token usually
 * follows within milliseconds). If anything ordinary is queued already, nothing waits.
 */
void sl_conn_lazy(struct sl_conn *c, bool on);

/*
 * Graceful close: stop delivering reads, flush what is queued, send FIN, and close
 * once the peer closes too (or after a short linger), so that a final response or
 * close frame is not destroyed by a reset. The whole close has a deadline
 * (close_timeout, armed here): a peer that does not take the queued bytes by then is
 * reset, one that does not answer our FIN is closed.
 */
void sl_conn_close(struct sl_conn *c);

/* Immediate close; queued bytes are dropped. */
void sl_conn_abort(struct sl_conn *c);

/*
 * Immediate close with a TCP reset (RST instead of FIN; SO_LINGER 0), for a peer that must
 * see the connection fail, not end. Queued bytes are dropped. After a graceful close has
 * sent its FIN it is a plain sl_conn_abort().
 */
void sl_conn_reset(struct sl_conn *c);

bool sl_conn_closing(const struct sl_conn *c);

/* A pointer the pool's owner keeps with the connection, given back to on_closed. */
void sl_conn_set_tag(struct sl_conn *c, void *tag);

/* Stops or restarts reading (backpressure on a peer that sends too fast). Independent of the
 * pause on the output cap: reading runs when neither holds it. */
void sl_conn_pause_reading(struct sl_conn *c);
void sl_conn_resume_reading(struct sl_conn *c);

/* The peer's address; -1 if unknown. */
struct sockaddr_storage;
int sl_conn_peer_addr(const struct sl_conn *c, struct sockaddr_storage *out);

/* Peer address as text ("127.0.0.1:5000"), for logs. */
void sl_conn_peer(const struct sl_conn *c, char *out, size_t outlen);

/* The handler's deadline node, for whichever layer owns the connection's timeout (the
 * connection's own deadlines use another node). */
struct sl_timeq_node *sl_conn_timer(struct sl_conn *c);
struct sl_conn *sl_conn_from_timer(struct sl_timeq_node *n);

/*
 * Flushes every connection with queued bytes; installed as an end-of-turn hook. Each
 * connection is written at most once per call: what its on_drain queues in reply waits for
 * the next call (the next hook, with the loop kept from blocking meanwhile), so that a
 * handler that keeps writing from on_drain cannot hold the loop away from reads, accepts
 * and timers.
 */
void sl_conn_pool_flush(void *pool);

/* Calls fn on every open connection (for shutdown); fn may close it. */
void sl_conn_pool_foreach(struct sl_conn_pool *p, void (*fn)(struct sl_conn *c, void *arg),
                          void *arg);

#endif
