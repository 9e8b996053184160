/*
 * One load-generator thread: a libuv loop driving its share of the connections.
 *
 * Connection i of the run belongs to worker i % threads. A worker goes through the run's
 * phases on the main thread's command (lg_worker_command, through a uv_async):
 *
 *   connect   opens its connections at once from lg_worker_start(), never more than its
 *             share of --ramp handshakes in progress, so that neither side drops SYNs;
 *             a connection is resolved when it is ready (authenticated, or connected for
 *             over http://) or has failed;
 *   stream    LG_CMD_STREAM: starts the streams (each connection's first one at its offset
 *             within --spread), K at once per connection, the next as soon as one ends;
 *   cut       LG_CMD_CUT (--cut-at / --cut-after): resets every connection that still has
 *             streams to run (a TCP RST, no close frame), reconnects each (the same token,
 *             the same source address, within --ramp) and sends `resume` for each of its
 *             running streams with the last seq it saw and the stream's epoch; streams go
 *             on as before;
 *   close     LG_CMD_CLOSE: closes every connection politely (WebSocket close 1000),
 *             forcing those still open after a grace period; the loop then ends.
 *   abort     LG_CMD_ABORT (run timeout, SIGINT): what has not finished counts as a
 *             TIMEOUT error, then as close.
 *
 * The worker's progress is published into atomics once per loop turn for the main thread's
 * progress line and phase changes; its detailed stats are read only after the thread ended.
 *
 * The connection protocols (wsconn.c: WebSocket, carrying sluice's native protocol or, through
 * dialect.c, Socket.IO and the seed frontends' dialects; sseconn.c: plain OpenAI chat
 * completions over HTTP/1.1 SSE: to the mock (the no-gateway baseline), to sluice's HTTP API
 * or to another gateway) plug in through struct lg_proto_ops; this file owns sockets, ramp,
 * scheduling and accounting.
 */
#ifndef LG_WORKER_H
#define LG_WORKER_H

#include <http_parser.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "base/buf.h"
#include "stats.h"
#include "upstream/sse.h"
#include "verify.h"

/* LG_MODE_NATIVE: over WebSocket (the native protocol, or cfg->dialect's). */
enum lg_mode { LG_MODE_NATIVE, LG_MODE_SSE };

struct lg_dialect; /* dialect.h */
enum lg_auth { LG_AUTH_QUERY, LG_AUTH_HEADER, LG_AUTH_MESSAGE, LG_AUTH_NONE };

/* The run's settings, shared read-only by every worker. */
struct lg_config {
    enum lg_mode mode;
    struct sockaddr_storage addr; /* the target */
    unsigned nsrc;                /* > 0: bind connection i to 127.0.0.(1 + i % nsrc) */
    uint32_t connections;         /* sockets in this run (http:// opens C x K) */
    uint32_t streams;             /* per connection, in total; 0 = idle */
    uint32_t concurrency;         /* per connection, at once */
    uint64_t spread_ms;           /* first streams' start offsets spread over this */
    unsigned ramp;                /* handshakes in progress, all workers together */
    unsigned threads;
    uint64_t handshake_timeout_ms; /* connect + upgrade + ready, per connection */
    uint64_t expect_tokens;        /* > 0: a stream delivering another count is an error */
    bool verify;                   /* check each stream's text (lg_verify) */
    bool deflate;                  /* offer permessage-deflate (native) */
    enum lg_auth auth;
    const char *token;      /* the run's token (JWT or API key), NULL for none */
    const char *jwt_secret; /* non-NULL: each connection mints its own HS256 JWT, sub
                               jwt_sub + its index, and keeps it across a reconnect */
    const char *jwt_sub;
    const struct lg_dialect *dialect; /* NULL: sluice's native protocol (or SSE) */
    /* Socket.IO: the namespace as packets name it ("/ai," or "" for "/"). */
    struct sl_buf sio_nsp;
    bool chat_id; /* a request carries the stream's number (else the server names streams) */
    /* Prebuilt bytes. Native: the upgrade request is `hs_path`, the token percent-encoded
     * (auth=query: `hs_path` ends with "?token=" or "&token="), then `hs_rest` (the request
     * line's end and the fixed headers); `chat_head` + id + `chat_tail` is a chat message.
     * Dialects: the same, in the dialect's request (without a number unless chat_id).
     * SSE: `request` is one whole HTTP request, sent as is for every stream. */
    struct sl_buf hs_path, hs_rest, chat_head, chat_tail, request;
};

/* In the order the phases come: a worker ignores a command for a phase it has passed. */
enum lg_cmd { LG_CMD_NONE, LG_CMD_STREAM, LG_CMD_CUT, LG_CMD_CLOSE, LG_CMD_ABORT };

/* Published by a worker once per loop turn, read by the main thread. */
struct lg_progress {
    _Atomic uint64_t resolved; /* connections ready or failed (connect phase) */
    _Atomic uint64_t ready;
    _Atomic uint64_t failed;
    _Atomic uint64_t finished; /* connections with nothing more to do in the stream phase */
    _Atomic uint64_t streams_ok, streams_failed, tokens, errors;
    _Atomic uint64_t firsts;      /* streams that received their first token */
    _Atomic uint64_t last_end_us; /* when the last stream ended */
    _Atomic uint64_t lat_max_us;  /* largest token latency since the main thread last took it */
    _Atomic uint64_t cut_streams, resumes_answered; /* streams cut; resumes answered or refused */
    _Atomic uint64_t last_resume_us;                /* when the last of them was answered */
    _Atomic bool exited;                            /* the loop has ended */
};

enum lg_conn_state {
    LG_CONN_INIT,
    LG_CONN_CONNECTING,
    LG_CONN_HANDSHAKE, /* native: upgrade sent / auth pending */
    LG_CONN_READY,
    LG_CONN_CLOSING, /* we asked to close */
    LG_CONN_CLOSED,  /* uv_close called */
};

#define LG_EPOCH_MAX 64

struct lg_slot {
    uint32_t n; /* the stream's number on its connection (its id) */
    bool active;
    bool first;         /* first token seen */
    uint64_t tokens;    /* received */
    uint64_t t_sent_us; /* request written */
    uint64_t last_seq;  /* the highest seq seen: what a resume sends as `after` */
    /* Resume: `resume_wait` until the stream's first event after the resume was sent,
     * `classify` until its first live token (stamped after the resume was sent). */
    bool resume_wait, classify, replay_seen;
    uint8_t epoch_len; /* 0: no `start` seen */
    uint8_t sid_len;   /* dialects whose server names the streams: 0 until it did */
    uint64_t t_resume_us;
    char epoch[LG_EPOCH_MAX];
    char sid[LG_EPOCH_MAX]; /* the server's name of the stream (stream, ws-chat dialects) */
    struct lg_verify verify;
};

struct lg_worker;

struct lg_conn {
    uv_tcp_t tcp;
    struct lg_worker *w;
    uint32_t index; /* in the whole run */
    uint8_t state;
    bool writing;
    bool failed;
    bool finished;     /* counted in progress.finished */
    bool due;          /* its streams' start offset has come */
    bool reconnecting; /* cut: from the reset until the new connection is ready or failed */
    uint32_t started;  /* streams started */
    uint32_t ended;    /* streams ended, ok or not */
    uint32_t active;
    uint64_t t0_us;         /* connect() called */
    uint64_t t_tcp_us;      /* established */
    uint64_t t_cut_us;      /* reset by the cut */
    char *token;            /* its own JWT (cfg->jwt_secret), minted on first connect */
    struct sl_buf out;      /* bytes to write */
    struct sl_buf inflight; /* bytes of the write in flight */
    uv_write_t wreq;
    struct lg_slot *slots; /* concurrency entries, from the stream phase on */
    union {
        struct {
            wslay_event_context_ptr ctx;
            const uint8_t *rp; /* the read being fed to wslay */
            size_t rn;
            struct sl_buf hs;           /* the upgrade response until its blank line */
            char key[32];               /* Sec-WebSocket-Key sent */
            struct z_stream_s *inflate; /* permessage-deflate, when the server accepted it */
            bool inflate_reset;         /* server_no_context_takeover: reset per message */
            struct sl_buf plain;        /* a decompressed message */
        } ws;
        struct {
            http_parser hp;
            struct sl_sse sse;
            bool sse_live;
            bool complete; /* the response ended (set by the parser callback) */
            bool done_seen;
            bool error_seen;
            char error_name[32]; /* of an in-stream error event, "" if none */
            bool keep_alive;
        } http;
    } u;
};

struct lg_proto_ops {
    /* TCP is up: send the upgrade (native) or become ready (http://). */
    void (*connected)(struct lg_conn *c);
    /* Bytes read; the worker's now_us is their arrival time. */
    void (*read)(struct lg_conn *c, const char *p, size_t n);
    /* Send the request of the stream in slot s (s->n is its number). */
    void (*start_stream)(struct lg_conn *c, struct lg_slot *s);
    /* Send a resume of the stream in slot s (after a cut; native only). */
    void (*resume_stream)(struct lg_conn *c, struct lg_slot *s);
    /* Begin a polite close of a ready connection (the worker forces it later). */
    void (*close)(struct lg_conn *c);
    /* Release what the protocol holds (called once, from the close callback). */
    void (*cleanup)(struct lg_conn *c);
};

extern const struct lg_proto_ops lg_wsconn_ops;
/* wsconn.c, for dialect.c: queues one text message; handles one native protocol message;
 * the connection's token (NULL for none). */
void lg_ws_send_text(struct lg_conn *c, const char *p, size_t n);
void lg_ws_native_message(struct lg_conn *c, const char *msg, size_t len);
const char *lg_ws_token(struct lg_conn *c);
extern const struct lg_proto_ops lg_sseconn_ops;

struct lg_worker {
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t async;
    uv_timer_t timer; /* stream start offsets, then the close deadline */
    uv_timer_t sweep; /* handshake timeouts, during the connect phase */
    uv_check_t check; /* publishes progress */
    const struct lg_config *cfg;
    const struct lg_proto_ops *ops;
    unsigned id;
    struct lg_conn *conns;
    uint32_t nconns;
    uint32_t ramp_next, ramp_pending, ramp_max;
    bool in_ramp;
    uint32_t sweep_from;    /* connections before it are past their handshake */
    uint32_t open;          /* connections whose handle is not closed yet */
    uint32_t spread_next;   /* next connection to start in the stream phase */
    struct lg_conn **recon; /* cut connections waiting for their reconnect (ramped) */
    uint32_t nrecon, recon_next;
    int phase;       /* the last command applied */
    _Atomic int cmd; /* set by the main thread before uv_async_send */
    uint64_t now_us; /* arrival time of the read being processed */
    uint64_t stream_t0_us;
    uint64_t last_end_us;
    uint64_t ivl_max_us; /* largest token latency since the last publish */
    uint64_t last_resume_us;
    uint64_t finished;
    uint64_t resolved;
    uint64_t prng;
    struct lg_stats stats;
    struct lg_progress progress;
    char rbuf[64 * 1024]; /* one read buffer for all connections: reads are processed whole */
};

/* Prepares worker id of nthreads (conns i with i % nthreads == id). Call on the main thread. */
void lg_worker_init(struct lg_worker *w, const struct lg_config *cfg, unsigned id);

/* Runs the worker's loop in a new thread, starting with the connect phase. */
int lg_worker_start(struct lg_worker *w);

/* Asks the worker to apply a command (any thread). */
void lg_worker_command(struct lg_worker *w, enum lg_cmd cmd);

/* Joins the thread and frees the loop's resources; stats stay readable. */
void lg_worker_join(struct lg_worker *w);
void lg_worker_cleanup(struct lg_worker *w);

/* --- for the protocols ----------------------------------------------------------------- */

uint64_t lg_now_us(void);
uint64_t lg_worker_rand(struct lg_worker *w);

/* Appends bytes to the connection's output and writes them out (now, or when possible). */
void lg_conn_write(struct lg_conn *c, const void *p, size_t n);
void lg_conn_flush(struct lg_conn *c);

/* The connection is ready (native: `ready` received): counts it, takes the next ramp step. */
void lg_conn_ready(struct lg_conn *c);

/* Counts an error and fails the connection: its unfinished streams fail, the socket closes. */
void lg_conn_fail(struct lg_conn *c, const char *code);

/* Closes the socket (quietly: no error). */
void lg_conn_close(struct lg_conn *c);

/* The slot of stream number n, or NULL. */
struct lg_slot *lg_conn_slot(struct lg_conn *c, uint32_t n);

/* Records `tokens` new tokens on slot s, `stamps` of them with a stamp (latency already
 * recorded by the caller through lg_conn_stamp). */
void lg_slot_tokens(struct lg_conn *c, struct lg_slot *s, uint64_t tokens, uint64_t stamps);

/* Latency of one stamped token: now_us - stamp. */
void lg_conn_stamp(void *conn, uint64_t stamp_us);

/*
 * The stream in slot s delivered an event with sequence number seq (0: none, e.g. an
 * error about the message): checks that seqs only grow, and after a resume times the
 * stream's first event.
 */
void lg_slot_event(struct lg_conn *c, struct lg_slot *s, uint64_t seq);

/* A token stamped stamp_us arrived on slot s after a resume: times the first replayed and
 * the first live one (the caller stops calling once s->classify is false). */
void lg_slot_resume_stamp(struct lg_conn *c, struct lg_slot *s, uint64_t stamp_us);

/* The stream in slot s ended: ok, or failed with error code `code` (counted). Starts the
 * connection's next stream, if any. */
void lg_slot_end(struct lg_conn *c, struct lg_slot *s, const char *code);

#endif
