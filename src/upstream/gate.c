#include "upstream/gate.h"

#include "base/alloc.h"

void
sl_gate_init(struct sl_gate *g, unsigned cap, unsigned max_waiting, unsigned min_idle)
{
    *g = (struct sl_gate){.cap = cap ? cap : 1, .max_waiting = max_waiting, .min_idle = min_idle};
    sl_list_init(&g->waiting);
}

enum sl_gate_verdict
sl_gate_enter(struct sl_gate *g, struct sl_list *node)
{
    /* Nobody jumps the queue: a free slot with waiters is about to be handed to them. */
    if (g->busy < g->cap && g->nwaiting == 0) {
        g->busy++;
        return SL_GATE_GO;
    }
    if (g->nwaiting >= g->max_waiting)
        return SL_GATE_FULL;
    sl_list_push_back(&g->waiting, node);
    g->nwaiting++;
    g->queued_total++;
    return SL_GATE_WAIT;
}

void
sl_gate_forget(struct sl_gate *g, struct sl_list *node)
{
    sl_assert(g->nwaiting > 0);
    sl_list_unlink(node);
    g->nwaiting--;
}

struct sl_list *
sl_gate_next(struct sl_gate *g)
{
    if (g->busy >= g->cap || g->nwaiting == 0)
        return NULL;
    struct sl_list *n = g->waiting.next;
    sl_list_unlink(n);
    g->nwaiting--;
    g->busy++;
    return n;
}

struct sl_list *
sl_gate_leave(struct sl_gate *g)
{
    sl_assert(g->busy > 0);
    g->busy--;
    return sl_gate_next(g);
}

void
sl_gate_set_cap(struct sl_gate *g, unsigned cap)
{
    g->cap = cap ? cap : 1;
}

unsigned
sl_gate_to_warm(const struct sl_gate *g)
{
    if (g->min_idle == 0)
        return 0;
    unsigned held = g->busy + g->warming;
    unsigned idle = g->open > held ? g->open - held : 0;
    if (idle + g->warming >= g->min_idle)
        return 0;
    unsigned want = g->min_idle - idle - g->warming;
    unsigned room = g->cap > held ? g->cap - held : 0;
    return want < room ? want : room;
}
