/*
 * The admission gate in front of one provider's connections on one worker: at most cap
 * transfers hold a connection at once, the rest wait in order in a capped queue, and the
 * pool of idle connections is topped up to min_idle.
 *
 * libcurl has a cap of its own (CURLMOPT_MAX_HOST_CONNECTIONS), but a transfer waiting
 * there is invisible: no event, no count, nothing until a timeout fails it. The gate makes
 * the wait something sluice knows about, so the client is told (`progress: queued`) and
 * the metrics count it. It is pure bookkeeping (no curl, no libuv) so that it can be tested
 * alone; the curl glue (curl.c) drives it.
 *
 * A slot is a transfer, which for HTTP/1.1 (every http:// provider) is a connection for
 * the transfer's whole life. Over HTTP/2 many transfers share a connection, so the glue
 * widens the cap by the streams a connection multiplexes (sl_gate_set_cap).
 */
#ifndef SL_UPSTREAM_GATE_H
#define SL_UPSTREAM_GATE_H

#include <stdint.h>

#include "base/list.h"

struct sl_gate {
    unsigned cap;         /* transfers running at once */
    unsigned max_waiting; /* the queue's cap; past it a transfer is refused */
    unsigned min_idle;    /* idle connections to keep open (0: none kept on purpose) */
    unsigned busy;        /* transfers holding a slot */
    unsigned nwaiting;
    unsigned open;    /* connections open (counted where curl opens and closes sockets) */
    unsigned warming; /* warm-up requests in flight (each leaves one idle connection) */
    struct sl_list waiting;
    uint64_t queued_total; /* transfers that had to wait */
};

enum sl_gate_verdict {
    SL_GATE_GO,   /* a slot is taken: run now */
    SL_GATE_WAIT, /* node is queued: it runs when sl_gate_leave() or sl_gate_next() hands it one */
    SL_GATE_FULL, /* the queue is full too: refuse */
};

void sl_gate_init(struct sl_gate *g, unsigned cap, unsigned max_waiting, unsigned min_idle);

/* A transfer wants to run; node is its queue link (unlinked). */
enum sl_gate_verdict sl_gate_enter(struct sl_gate *g, struct sl_list *node);

/* A waiting transfer gives up (cancel, timeout) before it got a slot. */
void sl_gate_forget(struct sl_gate *g, struct sl_list *node);

/*
 * A running transfer ended: its slot goes to the oldest waiter, whose node is returned
 * (unlinked; it now holds the slot), or NULL if nobody waits.
 */
struct sl_list *sl_gate_leave(struct sl_gate *g);

/* Changes the cap; then hand out the slots that became free with sl_gate_next(). */
void sl_gate_set_cap(struct sl_gate *g, unsigned cap);

/* The oldest waiter if a slot is free (it takes the slot), else NULL. */
struct sl_list *sl_gate_next(struct sl_gate *g);

/*
 * How many warm-up requests to start now so that min_idle connections stay idle: idle is
 * what is open beyond the running transfers and the warm-ups in flight, and the transfers
 * plus warm-ups never exceed the cap.
 */
unsigned sl_gate_to_warm(const struct sl_gate *g);

#endif
