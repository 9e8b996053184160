/*
 * The relay: reading a stream that lives on another worker.
 *
 * A stream stays on the worker that runs its provider call (its owner, "A"); a client may
 * come back on any worker ("B", where SO_REUSEPORT put its new connection) and resume it.
 * B then reads A's stream through the relay: on A a relay reader takes the stream over
 * like any reader (stream.h) and copies its journal records to B; on B an sl_rstream
 * holds them in a mirror journal that B's session reads exactly as it reads a local
 * stream. Acknowledgements, cancel, live/not live and release travel back to A.
 *
 * Everything crosses threads as messages (sl_loop_post), batched per destination worker
 * and loop turn; nothing is shared or locked. Flow control is a credit window: A sends at
 * most RELAY_WINDOW bytes that B has not acknowledged, so a slow client on B makes A's
 * stream pause its provider exactly as a slow local client does.
 *
 * Lifetime: a relay per worker, created with the worker, wired to its peers once all
 * exist, freed after the worker's loop has ended and its mailbox has been drained
 * (messages arriving at a stopping worker are dropped: its streams and sessions are being
 * released anyway). An sl_rstream belongs to the session that resumed; the relay frees
 * it after telling the session (on_finished, on_taken, on_failed) or when the session
 * releases it.
 */
#ifndef SL_STREAM_RELAY_H
#define SL_STREAM_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "stream/journal.h"
#include "stream/stream.h"

struct sl_loop;
struct sl_streams;
struct sl_relay;
struct sl_rstream;
struct sl_metrics;

struct sl_relay *sl_relay_new(unsigned worker, struct sl_loop *loop, struct sl_streams *streams);

/* Gives every relay the others (peers[i] is worker i's), before any worker starts. */
void sl_relay_set_peers(struct sl_relay *r, struct sl_relay **peers, unsigned n);

/* Sends what this loop turn produced (called at the end of every turn). */
void sl_relay_flush(struct sl_relay *r);

/*
 * The worker is stopping: streams read from other workers are released, and from now on
 * nothing is sent and whatever arrives is dropped.
 */
void sl_relay_shutdown(struct sl_relay *r);

/* After the loop ended and its mailbox was drained. */
void sl_relay_free(struct sl_relay *r);

/* --- the streams of a session of another worker (recovery, seed 003's reconnect) ----------- */

/* One stream a session reads: what a resume of it needs. */
struct sl_relay_entry {
    char id[160];
    char epoch[32];
    uint32_t after; /* the last seq the session rendered to its client */
    uint32_t idx;   /* its number within the session */
};

/*
 * On the owner: lists the streams of session `sid` of `user` into out (at most max);
 * returns how many, or -1 if there is no such session. Set by the session module.
 */
typedef int (*sl_relay_lister)(void *ud, const char *user, const char *sid,
                               struct sl_relay_entry *out, unsigned max);
void sl_relay_set_lister(struct sl_relay *r, sl_relay_lister fn, void *ud);

/*
 * Asks worker `owner` for the streams of its session `sid` (same user); cb runs on a later
 * loop turn with them (n >= 0) or n = -1 if there is no such session. The request can be
 * forgotten with sl_relay_cancel_list (then cb never runs).
 */
typedef void (*sl_relay_listed_cb)(void *ud, const struct sl_relay_entry *e, int n);
uint64_t sl_relay_list(struct sl_relay *r, unsigned owner, const char *user, const char *sid,
                       sl_relay_listed_cb cb, void *ud);
void sl_relay_cancel_list(struct sl_relay *r, uint64_t token);

/* --- reading a stream of another worker (the resuming side) ------------------------------ */

struct sl_rstream_cb {
    /* The owner accepted the resume; the metadata below is known. */
    void (*on_ready)(void *ud, struct sl_rstream *r);
    /* The owner refused (nothing to resume, events no longer kept); r is freed after. */
    void (*on_failed)(void *ud, struct sl_rstream *r, const char *why);
    /* Records arrived in the mirror journal. */
    void (*on_records)(void *ud, struct sl_rstream *r);
    /* Another reader took the stream over; r is freed after. */
    void (*on_taken)(void *ud, struct sl_rstream *r);
    /* The terminal record was consumed; r is freed after. */
    void (*on_finished)(void *ud, struct sl_rstream *r);
};

/*
 * Asks worker `owner` for stream (user, id, epoch or NULL) from the event after `after`.
 * Callbacks come on later loop turns, never from inside this call.
 */
struct sl_rstream *sl_relay_resume(struct sl_relay *rl, unsigned owner, const char *user,
                                   const char *id, const char *epoch, uint32_t after, bool live,
                                   const struct sl_rstream_cb *cb, void *ud);

const char *sl_rstream_id(const struct sl_rstream *r);
/* The run read, once ready; NULL before. */
const char *sl_rstream_epoch(const struct sl_rstream *r);
/* Known once ready; NULL before. Configuration strings. */
const char *sl_rstream_model(const struct sl_rstream *r);
const char *sl_rstream_provider(const struct sl_rstream *r);
/* The stream's agent, input tokens, prices and start, as its owner said when ready. */
void sl_rstream_info(const struct sl_rstream *r, struct sl_stream_info *out);

/* The terminal record has arrived (the stream is over on its owner). */
bool sl_rstream_ended(const struct sl_rstream *r);
struct sl_journal *sl_rstream_journal(struct sl_rstream *r);

/*
 * The session consumed up to the cursor. Returns false if that was the terminal record:
 * on_finished has run and r is freed.
 */
bool sl_rstream_consumed(struct sl_rstream *r, struct sl_jcursor *cur);

void sl_rstream_cancel(struct sl_rstream *r);
void sl_rstream_set_live(struct sl_rstream *r, bool live);

/* The session lets go: the owner releases the stream (aborting a running call); r is freed. */
void sl_rstream_release(struct sl_rstream *r);

#endif
