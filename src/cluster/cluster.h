/*
 * Cluster mode: several sluice nodes sharing one Redis (redis.url), so that a client may
 * come back on any node (docs/cluster.md).
 *
 * One struct sl_cluster per worker, on the worker's loop, with its own connections: one
 * for commands (pipelined: everything a loop turn produces leaves in one write), one
 * subscribed to the worker's channel (messages from other nodes: take, cancel, release,
 * list and their answers), and one for XREAD BLOCK (the live tail of streams owned elsewhere).
 *
 * What it does:
 *   - mirrors: every stream's journal records are appended to a Redis Stream, batched: per
 *     redis.flush_interval one script call appends, for each stream with something new,
 *     one entry holding every new record (one XADD inside), trimmed to resume.max_events
 *     entries and expiring resume.window after the last write; a small hash names the
 *     newest run of (user, id), its owner and its metadata;
 *   - remote readers (sl_cstream): a resume of a stream this node does not hold replays it
 *     from Redis, asks its owner to hand the stream over (the owner's session lets go, the
 *     provider keeps running there) and follows the tail until the terminal record;
 *   - cancel and release travel to the owner over its channel;
 *   - sessions: a detached session is findable by its recovery id, and a reconnect on
 *     another node (ai:reconnect) asks its worker for its streams (list / listed);
 *   - admission: streams per user counted cluster-wide by a server-side script.
 *
 * Redis down: every call here falls back at once (nothing mirrored is lost while records
 * fit the per-stream cap; they are written when Redis is back; a resume elsewhere is
 * NOT_FOUND; limits are local only), a gauge and a log line say so, and the connections
 * come back with backoff.
 */
#ifndef SL_CLUSTER_CLUSTER_H
#define SL_CLUSTER_CLUSTER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stream/journal.h"
#include "stream/relay.h"
#include "stream/stream.h"

struct sl_cluster;
struct sl_cmirror;
struct sl_cstream;
struct sl_loop;
struct sl_metrics;
struct sl_config;

struct sl_cluster_env {
    const struct sl_config *cfg;
    struct sl_loop *loop;
    struct sl_metrics *metrics;
    struct sl_streams *streams;
    const char *node; /* this node's name (copied) */
    unsigned worker;
};

/* NULL when cfg has no redis.url. */
struct sl_cluster *sl_cluster_new(const struct sl_cluster_env *env);

/* End of a loop turn: writes what is due (mirrors, messages). */
void sl_cluster_flush(struct sl_cluster *cl);

/*
 * The worker is stopping (its streams already ended): writes what is pending, lets go of
 * streams read by other nodes, and closes the connections. Nothing is sent afterwards.
 */
void sl_cluster_stop(struct sl_cluster *cl);

/* After the loop ended. */
void sl_cluster_free(struct sl_cluster *cl);

/* --- the owner's side: a stream's journal in Redis ---------------------------------------- */

/* The mirror of a new stream (NULL: no cluster, or resume.window 0). */
struct sl_cmirror *sl_cluster_mirror(struct sl_cluster *cl, struct sl_stream *s);

/* A record the stream appended (copied); terminal: done, error or cancelled. */
void sl_cmirror_append(struct sl_cmirror *m, const void *rec, size_t size, bool terminal);

/* The stream is being freed: what is pending is still written, then the mirror goes. */
void sl_cmirror_close(struct sl_cmirror *m);

/*
 * Cluster-wide admission, one atomic script: the identity's running streams across nodes,
 * its tokens of the last minute (counting input_tokens now) and what it spent today and
 * this month (UTC, the nodes' clocks), against l. On a later turn calls
 * sl_stream_admitted() unless the stream is closed first. Returns false when Redis cannot
 * be asked now (the caller goes on: the local limits held at admission).
 */
bool sl_cmirror_admit(struct sl_cmirror *m, const struct sl_cluster_limits *l,
                      uint64_t input_tokens);

/* The stream ended having used `tokens` beyond the input counted at admission. */
void sl_cmirror_tokens(struct sl_cmirror *m, uint64_t tokens);

/* The stream ended having cost usd (added to the identity's day and month). */
void sl_cmirror_spend(struct sl_cmirror *m, double usd);

/* --- the resuming side: a stream owned by another node ---------------------------------- */

struct sl_cstream_cb {
    /* The stream's metadata is known (and its replay begins). */
    void (*on_ready)(void *ud, struct sl_cstream *r);
    /* Nothing to resume (unknown, expired, another epoch, a gap, its node gone); r is freed after.
     */
    void (*on_failed)(void *ud, struct sl_cstream *r, const char *why);
    /* Records arrived in the mirror journal. */
    void (*on_records)(void *ud, struct sl_cstream *r);
    /* Another reader took the stream over; r is freed after. */
    void (*on_taken)(void *ud, struct sl_cstream *r);
    /* The terminal record was consumed; r is freed after. */
    void (*on_finished)(void *ud, struct sl_cstream *r);
};

/*
 * Asks Redis for stream (user, id, epoch or NULL: the newest run) from the event after
 * `after`. Returns NULL when Redis is not reachable now; else callbacks come on later turns.
 */
struct sl_cstream *sl_cluster_resume(struct sl_cluster *cl, const char *user, const char *id,
                                     const char *epoch, uint32_t after, bool live,
                                     const struct sl_cstream_cb *cb, void *ud);

const char *sl_cstream_id(const struct sl_cstream *r);
const char *sl_cstream_epoch(const struct sl_cstream *r);
const char *sl_cstream_model(const struct sl_cstream *r);
const char *sl_cstream_provider(const struct sl_cstream *r);
void sl_cstream_info(const struct sl_cstream *r, struct sl_stream_info *out);
bool sl_cstream_ended(const struct sl_cstream *r);
struct sl_journal *sl_cstream_journal(struct sl_cstream *r);
/* Returns false when that was the terminal record: on_finished ran and r is freed. */
bool sl_cstream_consumed(struct sl_cstream *r, struct sl_jcursor *cur);
void sl_cstream_cancel(struct sl_cstream *r);
void sl_cstream_set_live(struct sl_cstream *r, bool live);
/* The session lets go: the owner releases the stream (aborting a running call); r is freed. */
void sl_cstream_release(struct sl_cstream *r);

/*
 * A cancel for a stream this node neither holds nor reads: sent to whichever node owns
 * (user, id), if any. Returns false when Redis is not reachable now.
 */
bool sl_cluster_cancel(struct sl_cluster *cl, const char *user, const char *id);

/* --- sessions across nodes (seed 003's ai:reconnect) ------------------------------------------ */

/*
 * A session whose client left is waiting for a reconnect: its recovery id is findable from
 * other nodes for resume.window. sl_cluster_session_gone when it is freed.
 */
void sl_cluster_session_detached(struct sl_cluster *cl, const char *user, const char *rid);
void sl_cluster_session_gone(struct sl_cluster *cl, const char *user, const char *rid);

/* On the owner: how a `list` question is answered (the session module's lister). */
void sl_cluster_set_lister(struct sl_cluster *cl, sl_relay_lister fn, void *ud);

/*
 * Asks whichever node holds session `rid` of `user` for its streams; cb runs on a later turn
 * with them (n >= 0), or n = -1 (no such session anywhere, or no answer within
 * redis.timeout). Returns a token for sl_cluster_cancel_list, or 0 when Redis cannot be
 * asked now (cb never runs).
 */
/* --- ws-chat's conversation memory across nodes ----------------------------------------------- */

/*
 * An exchange of conversation `conv` ended (its question and whole answer): appended to the
 * conversation's copy in Redis (a list trimmed to ws_chat.memory.max_turns messages,
 * forgotten after ws_chat.memory.idle_ttl). Best effort: Redis down, it is not kept there.
 */
void sl_cluster_remember(struct sl_cluster *cl, const char *user, const char *conv,
                         const char *question, size_t qlen, const char *answer, size_t alen);

/*
 * The conversation's messages in Redis: cb(ud, messages) on a later turn with a JSON array
 * of {"role", "content"} (empty if none; NULL when Redis could not answer), borrowed for the
 * call. Returns a handle for sl_cluster_history_cancel (then cb never runs), or NULL when
 * Redis cannot be asked now (cb never runs).
 */
typedef void (*sl_cluster_history_cb)(void *ud, json_t *messages);
void *sl_cluster_history(struct sl_cluster *cl, const char *user, const char *conv,
                         sl_cluster_history_cb cb, void *ud);
void sl_cluster_history_cancel(void *handle);

uint64_t sl_cluster_list(struct sl_cluster *cl, const char *user, const char *rid,
                         sl_relay_listed_cb cb, void *ud);
void sl_cluster_cancel_list(struct sl_cluster *cl, uint64_t token);

#endif
