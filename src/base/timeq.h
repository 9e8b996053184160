/*
 * Deadline queues with a fixed duration.
 *
 * Every timeout in sluice belongs to a class with one duration (header timeout,
 * auth timeout, heartbeat, close handshake, ...). Arming a node appends it with
 * at = now + duration, so each queue stays sorted by construction: arming, re-arming
 * and disarming are O(1), and expiry only looks at the head. A worker keeps a few
 * such queues behind a single libuv timer instead of one uv_timer_t (152 bytes) per
 * connection and per purpose.
 */
#ifndef SL_BASE_TIMEQ_H
#define SL_BASE_TIMEQ_H

#include <stddef.h>
#include <stdint.h>

#include "base/list.h"

struct sl_timeq_node {
    struct sl_list link;
    uint64_t at; /* ms, monotonic */
};

/* The queue walks from the list link straight to the node. */
_Static_assert(offsetof(struct sl_timeq_node, link) == 0, "link first");

struct sl_timeq {
    struct sl_list head;
    uint64_t duration_ms;
    /* Called with the node already unlinked; the callback may re-arm it or free its owner. */
    void (*expire)(struct sl_timeq_node *node, uint64_t now);
};

static inline void
sl_timeq_init(struct sl_timeq *q, uint64_t duration_ms,
              void (*expire)(struct sl_timeq_node *, uint64_t))
{
    sl_list_init(&q->head);
    q->duration_ms = duration_ms;
    q->expire = expire;
}

static inline void
sl_timeq_node_init(struct sl_timeq_node *n)
{
    sl_list_init(&n->link);
    n->at = 0;
}

/* (Re)arms n on q to fire duration_ms after now; removes it from any other queue first. */
static inline void
sl_timeq_arm(struct sl_timeq *q, struct sl_timeq_node *n, uint64_t now)
{
    n->at = now + q->duration_ms;
    sl_list_move_back(&q->head, &n->link);
}

static inline void
sl_timeq_disarm(struct sl_timeq_node *n)
{
    sl_list_unlink(&n->link);
}

static inline int
sl_timeq_armed(const struct sl_timeq_node *n)
{
    return !sl_list_empty(&n->link);
}

/* The earliest deadline in q, or UINT64_MAX if q is empty. */
static inline uint64_t
sl_timeq_next(const struct sl_timeq *q)
{
    if (sl_list_empty(&q->head))
        return UINT64_MAX;
    return ((const struct sl_timeq_node *)(const void *)q->head.next)->at;
}

/* Fires every node whose deadline is <= now, oldest first. */
static inline void
sl_timeq_run(struct sl_timeq *q, uint64_t now)
{
    while (!sl_list_empty(&q->head)) {
        struct sl_timeq_node *n = (struct sl_timeq_node *)(void *)q->head.next;
        if (n->at > now)
            break;
        sl_list_unlink(&n->link);
        q->expire(n, now);
    }
}

#endif
