/*
 * The per-worker event loop context: a libuv loop plus what every connection on it
 * shares.
 *
 * A worker thread owns exactly one sl_loop and everything registered on it; nothing
 * here is touched by another thread except sl_loop_post(), the one thread-safe entry.
 * The loop provides:
 *   - the read buffer shared by all connections of the worker (one, not one per
 *     connection: libuv calls alloc and read back to back, and every reader consumes
 *     or copies its bytes before returning);
 *   - deadline queues (base/timeq.h) behind a single timer;
 *   - end-of-turn hooks, run after I/O callbacks and after timers, where queued
 *     writes are flushed: everything produced in one loop turn leaves in one write;
 *   - a mailbox for messages from other threads (drain, shutdown, later cross-worker
 *     resume and cancel).
 * Only files that glue libuv include <uv.h>; this header does not.
 */
#ifndef SL_NET_LOOP_H
#define SL_NET_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "base/list.h"
#include "base/timeq.h"

struct uv_loop_s;
struct sl_loop;

#define SL_LOOP_RBUF_SIZE (64 * 1024)

typedef void (*sl_loop_fn)(void *arg);

struct sl_loop *sl_loop_new(void);

/* Frees the loop. Every handle must be closed and sl_loop_run must have returned. */
void sl_loop_free(struct sl_loop *l);

struct uv_loop_s *sl_loop_uv(struct sl_loop *l);

/* Runs until sl_loop_stop() and until every handle is closed. */
void sl_loop_run(struct sl_loop *l);

/* Closes the loop's own handles so that sl_loop_run can return once users closed theirs. */
void sl_loop_stop(struct sl_loop *l);

/* The loop's cached time in ms (monotonic, updated once per turn). */
uint64_t sl_loop_now(const struct sl_loop *l);

/*
 * The number of the current loop iteration: it changes once per turn, at its end (after
 * the I/O callbacks), so the timers, idle work and I/O callbacks of one iteration share one
 * number. For budgets per turn (fair admission, stream.c).
 */
uint64_t sl_loop_turn(const struct sl_loop *l);

/*
 * Runs fn(arg) once in the next loop iteration, before the loop polls for I/O (and that
 * poll does not wait). Registering the same fn and arg again before it ran runs it once.
 * At most 8 distinct registrations at a time; nothing runs once the loop is stopping. For
 * work spread over turns (fair admission): unlike a 0 ms timer, whose callback libuv may
 * run again in the same timers phase, this is always a later iteration.
 */
void sl_loop_soon(struct sl_loop *l, sl_loop_fn fn, void *arg);

/* The shared read buffer. */
char *sl_loop_rbuf(struct sl_loop *l);

/* Registers a deadline queue; queues live as long as the loop. */
void sl_loop_add_timeq(struct sl_loop *l, struct sl_timeq *q);

/* Arms n on q (registered on l) at now + q->duration_ms, rescheduling the timer if needed. */
void sl_loop_arm(struct sl_loop *l, struct sl_timeq *q, struct sl_timeq_node *n);

/* Registers fn(arg) to run at the end of every loop turn. At most 4 hooks. */
void sl_loop_add_turn_hook(struct sl_loop *l, sl_loop_fn fn, void *arg);

/*
 * Runs the end-of-turn hooks now. A source of many events per turn (the upstream glue)
 * calls it after each event, so that the writes one event produced leave at once instead
 * of waiting behind every other event of the turn: coalescing stays within an event, and
 * the first token of a busy turn does not pay for the processing of the last.
 */
void sl_loop_flush(struct sl_loop *l);

/*
 * A one-shot delay of a variable length (retry backoff). Returns a handle that can be
 * cancelled until fn runs; after fn ran (or after cancel) the handle is gone.
 */
struct sl_delay;
struct sl_delay *sl_loop_delay(struct sl_loop *l, uint64_t ms, sl_loop_fn fn, void *arg);
void sl_delay_cancel(struct sl_delay *d);

/*
 * Thread-safe: runs fn(arg) on l's thread during a later turn. Messages are delivered
 * in order. The caller owns arg until fn runs.
 */
void sl_loop_post(struct sl_loop *l, sl_loop_fn fn, void *arg);

#endif
