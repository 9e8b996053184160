/*
 * A stream: one chat request's life, from routing to its last event, and the journal of
 * those events.
 *
 * The stream is the one module that sees both sides. It resolves the model, runs the
 * provider call (with retries and fallbacks before the first token, never after), stamps
 * each canonical event with the next sequence number, appends it to its journal
 * (journal.h), and tells its reader. The reader (a client session, or the relay that
 * carries the stream to a session on another worker) renders what it can and
 * acknowledges it; what the reader has not consumed is the stream's backlog.
 *
 * Backpressure: while the reader is live (its client connected), a backlog of
 * limits.send_high_water bytes pauses the provider transfer; while it is not (the client
 * is gone and may resume), the provider is read until the journal is full. Reading
 * resumes once the reader has consumed down to a quarter of that. Tokens are never
 * dropped.
 *
 * Lifetime (docs/internals/lifetimes.md): streams are owned by their worker's stream
 * table (sl_streams) from sl_stream_new() on. The provider side ends with exactly one
 * terminal event (done, error or cancelled). The stream itself is freed when it has
 * ended and its reader has consumed the terminal event (the reader is told through
 * on_finished just before), or when its reader lets go (sl_stream_release), which aborts
 * a provider call still running.
 *
 * Re-entrancy: sl_stream_start(), sl_stream_cancel(), sl_stream_shutdown() and
 * sl_stream_consumed() may emit events and free the stream before they return: the caller
 * must not use the stream pointer afterwards unless it learns otherwise (they return
 * whether the stream still exists).
 */
#ifndef SL_STREAM_STREAM_H
#define SL_STREAM_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/codes.h"
#include "base/list.h"
#include "base/timeq.h"
#include "canon/event.h"
#include "canon/request.h"
#include "stream/journal.h"

struct sl_config;
struct sl_limits_ticket;
struct sl_upstream;
struct sl_metrics;
struct sl_stream;
struct sl_streams;
struct sl_directory;
struct sl_loop;

/* What a stream needs from its worker. Borrowed; outlives every stream. */
struct sl_stream_env {
    const struct sl_config *cfg;
    struct sl_upstream *up;
    struct sl_metrics *metrics;
    struct sl_streams *table;
    struct sl_directory *dir;   /* process-wide: where each stream lives (NULL: not recorded) */
    struct sl_cluster *cluster; /* cluster mode: journals mirrored to Redis (NULL: none) */
    unsigned worker;            /* worker id */
};

/* Who the stream is for, copied by the stream. */
struct sl_stream_owner {
    const char *user;    /* identity; streams are found again by (user, id) */
    const char *session; /* the session that started it, for logs */
    uint64_t conn;       /* its connection id, for logs (0 if none) */
    const char *tier;    /* the identity's limits tier (admission only; NULL: none) */
};

/*
 * The reader of a stream. Every callback runs on the stream's worker; none may free the
 * stream (release it later, outside the callback).
 */
struct sl_stream_reader {
    /*
     * ev (seq = journal last) was appended. A reader with nothing unread before it may
     * render it straight from ev and move its cursor with sl_journal_end(); else it
     * reads the backlog later. tokens: output deltas so far.
     */
    void (*on_event)(void *rd, struct sl_stream *s, const struct sl_event *ev, uint32_t tokens);
    /* Another reader took the stream over (a resume elsewhere); forget it, do not release. */
    void (*on_taken)(void *rd, struct sl_stream *s);
    /* The stream has ended and everything was consumed; it is freed when this returns. */
    void (*on_finished)(void *rd, struct sl_stream *s);
};

/*
 * Creates a stream for req (ownership passes to the stream) under the given id (copied),
 * registered in env->table. Resolves the agent and model; on failure returns NULL with
 * *code and *why set (UNKNOWN_MODEL) and req freed.
 */
struct sl_stream *sl_stream_new(const struct sl_stream_env *env, struct sl_chat_req *req,
                                const char *id, const struct sl_stream_owner *owner,
                                enum sl_errcode *code, const char **why);

/*
 * Sets the reader (replacing a previous one, which gets on_taken). live: whether the
 * reader's client is connected (see the backpressure rule above).
 */
void sl_stream_attach(struct sl_stream *s, const struct sl_stream_reader *r, void *rd, bool live);

/* The reader's client came or went. */
void sl_stream_set_live(struct sl_stream *s, bool live);

/*
 * The reader acknowledges what its cursor has passed. Resumes a paused provider when the
 * backlog is low again; frees the stream (after on_finished) when it has ended and
 * everything was consumed. Returns false if the stream was freed.
 */
bool sl_stream_consumed(struct sl_stream *s, struct sl_jcursor *cur);

/*
 * The reader lets go for good (its session is over). A running provider call is aborted
 * (outcome "disconnected", usage accounted) and the stream freed, without any event.
 */
void sl_stream_release(struct sl_stream *s);

/*
 * Hands the stream its ticket of the identity's limits (limits.h; NULL: none), taken at
 * admission. The stream checks its running cost against the budget after each token
 * (over it: the provider is stopped and the stream ends with BUDGET_EXCEEDED) and ends
 * the ticket exactly once, when it ends, with its final usage and cost.
 */
void sl_stream_set_ticket(struct sl_stream *s, struct sl_limits_ticket *t);

/* The identity's limits that cluster mode keeps across nodes (0: no such limit). */
struct sl_cluster_limits {
    unsigned max_streams;
    unsigned tokens_per_minute;
    unsigned chats_per_minute; /* messages_per_minute, counting chats only */
    double usd_per_day, usd_per_month;
};

/*
 * Cluster mode: the identity's limits across every node. The start (sl_stream_start) then
 * waits for Redis's answer (sl_stream_admitted); with Redis unreachable it goes on at once
 * (the local limits held at admission). Call after sl_stream_set_ticket.
 */
void sl_stream_set_cluster_limits(struct sl_stream *s, const struct sl_cluster_limits *l);

/*
 * Redis's answer: 1 starts the stream; 0 (streams), -1 (tokens) or -4 (chats a minute) ends
 * it with RATE_LIMITED, -2 (the day's budget) or -3 (the month's) with BUDGET_EXCEEDED.
 */
void sl_stream_admitted(struct sl_stream *s, int verdict);

/*
 * Emits start and calls the provider (in cluster mode once Redis has admitted it), now or, past this loop turn's budget for starting
 * streams (fair admission, stream.c), on a later iteration in arrival order (then `start`
 * is emitted then). Returns false if the stream was freed.
 */
bool sl_stream_start(struct sl_stream *s);

/*
 * The client asked to stop: the provider call ends at once and `cancelled` is emitted.
 * Returns false if the stream was freed.
 */
bool sl_stream_cancel(struct sl_stream *s, const char *reason);

/*
 * The server is stopping: a running stream ends with an error event SHUTTING_DOWN
 * (retryable) so that its client gets the terminal event it was promised.
 */
bool sl_stream_shutdown(struct sl_stream *s, int64_t retry_after_ms);

const char *sl_stream_id(const struct sl_stream *s);
const char *sl_stream_user(const struct sl_stream *s);
const char *sl_stream_epoch(const struct sl_stream *s);
bool sl_stream_ended(const struct sl_stream *s);
bool sl_stream_generating(const struct sl_stream *s);
bool sl_stream_paused(const struct sl_stream *s);
struct sl_journal *sl_stream_journal(struct sl_stream *s);

/* What renderers show of a stream besides its events (see sl_stream_view). */
struct sl_stream_info {
    const char *agent;     /* the agent preset, or NULL (configuration string) */
    uint64_t input_tokens; /* reported by the provider, else estimated */
    double price_in_per_1m, price_out_per_1m;
    uint64_t started_ms; /* wall clock, ms since the epoch */
};

void sl_stream_info(const struct sl_stream *s, struct sl_stream_info *out);

/* The model and provider in use (configuration strings: valid for the process). */
const char *sl_stream_model(const struct sl_stream *s);
const char *sl_stream_provider(const struct sl_stream *s);

/* --- the worker's stream table ------------------------------------------------------- */

/*
 * Every stream of a worker, by (user, id); several runs of one id (epochs) may coexist
 * (two tabs of one user both calling their stream "c1").
 */
struct sl_streams {
    struct sl_stream **buckets;
    size_t nbuckets;
    size_t count;
    struct sl_jpool pool; /* journal blocks of this worker's streams */
    uint32_t journal_max_events;
    uint64_t journal_max_bytes;
    bool retain;         /* resume.window > 0 */
    uint64_t high_water; /* limits.send_high_water */
    struct sl_list all;  /* every stream, oldest first (for shutdown) */
    /* Fair admission (stream.c): streams waiting for their turn to start, oldest first. */
    struct sl_list starting;
    uint64_t turn;          /* the loop turn turn_spent_ns is for */
    uint64_t turn_spent_ns; /* spent starting streams in that turn */
    struct sl_upstream *up; /* the streams' (curl's setup time counts too) */
    uint64_t setup_mark;    /* sl_upstream_setup_ns() when the turn began */
    struct sl_loop *loop;
    struct sl_timeq stream_timeout; /* limits.stream_timeout */
};

/* loop: for limits.stream_timeout (NULL: no time cap, as in unit tests). */
void sl_streams_init(struct sl_streams *t, const struct sl_config *cfg, struct sl_loop *loop);

/* Streams admitted and waiting for their turn to start (fair admission; for tests). */
unsigned sl_streams_starting(const struct sl_streams *t);

/* Every stream must have been freed. */
void sl_streams_cleanup(struct sl_streams *t);

/*
 * The stream (user, id) with the given epoch, or without one (NULL) the newest run of
 * that id. NULL if none.
 */
struct sl_stream *sl_streams_find(struct sl_streams *t, const char *user, const char *id,
                                  const char *epoch);

/* Calls fn on every stream (which fn may free). */
void sl_streams_foreach(struct sl_streams *t, void (*fn)(struct sl_stream *s, void *arg),
                        void *arg);

#endif
