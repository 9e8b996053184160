/*
 * Unit tests for src/upstream/gate: slots, the order and cap of the queue, leaving while
 * waiting, a wider cap handing out slots, and how many warm-up requests keep min_idle.
 */
#include <criterion/criterion.h>

#include "base/alloc.h"
#include "upstream/gate.h"

struct waiter {
    struct sl_list link;
    int id;
};

static struct waiter *
of(struct sl_list *n)
{
    return n ? SL_CONTAINER_OF(n, struct waiter, link) : NULL;
}

static void
init_waiters(struct waiter *w, int n)
{
    for (int i = 0; i < n; i++) {
        sl_list_init(&w[i].link);
        w[i].id = i;
    }
}

Test(gate, slots_then_a_queue_in_order_then_refusal)
{
    struct sl_gate g;
    struct waiter w[6];
    init_waiters(w, 6);
    sl_gate_init(&g, 2, 3, 0);
    cr_assert_eq(sl_gate_enter(&g, &w[0].link), SL_GATE_GO);
    cr_assert_eq(sl_gate_enter(&g, &w[1].link), SL_GATE_GO);
    cr_assert_eq(sl_gate_enter(&g, &w[2].link), SL_GATE_WAIT);
    cr_assert_eq(sl_gate_enter(&g, &w[3].link), SL_GATE_WAIT);
    cr_assert_eq(sl_gate_enter(&g, &w[4].link), SL_GATE_WAIT);
    cr_assert_eq(sl_gate_enter(&g, &w[5].link), SL_GATE_FULL);
    cr_assert_eq(g.queued_total, 3);
    cr_assert_eq(g.nwaiting, 3);
    /* Each end hands its slot to the oldest waiter. */
    cr_assert_eq(of(sl_gate_leave(&g))->id, 2);
    cr_assert_eq(of(sl_gate_leave(&g))->id, 3);
    cr_assert_eq(g.busy, 2);
    cr_assert_eq(of(sl_gate_leave(&g))->id, 4);
    cr_assert_null(sl_gate_leave(&g));
    cr_assert_null(sl_gate_leave(&g));
    cr_assert_eq(g.busy, 0);
    cr_assert_eq(g.nwaiting, 0);
}

Test(gate, a_waiter_that_gives_up_is_skipped)
{
    struct sl_gate g;
    struct waiter w[4];
    init_waiters(w, 4);
    sl_gate_init(&g, 1, 10, 0);
    cr_assert_eq(sl_gate_enter(&g, &w[0].link), SL_GATE_GO);
    cr_assert_eq(sl_gate_enter(&g, &w[1].link), SL_GATE_WAIT);
    cr_assert_eq(sl_gate_enter(&g, &w[2].link), SL_GATE_WAIT);
    sl_gate_forget(&g, &w[1].link);
    cr_assert_eq(of(sl_gate_leave(&g))->id, 2);
    cr_assert_eq(g.nwaiting, 0);
}

Test(gate, nobody_jumps_the_queue)
{
    struct sl_gate g;
    struct waiter w[3];
    init_waiters(w, 3);
    sl_gate_init(&g, 1, 10, 0);
    cr_assert_eq(sl_gate_enter(&g, &w[0].link), SL_GATE_GO);
    cr_assert_eq(sl_gate_enter(&g, &w[1].link), SL_GATE_WAIT);
    sl_gate_set_cap(&g, 3);
    /* A slot is free, but w[1] waits for it: a newcomer goes behind. */
    cr_assert_eq(sl_gate_enter(&g, &w[2].link), SL_GATE_WAIT);
    cr_assert_eq(of(sl_gate_next(&g))->id, 1);
    cr_assert_eq(of(sl_gate_next(&g))->id, 2);
    cr_assert_null(sl_gate_next(&g));
    cr_assert_eq(g.busy, 3);
}

Test(gate, warm_ups_keep_min_idle_within_the_cap)
{
    struct sl_gate g;
    sl_gate_init(&g, 4, 10, 3);
    cr_assert_eq(sl_gate_to_warm(&g), 3); /* nothing open */
    g.warming = 3;
    cr_assert_eq(sl_gate_to_warm(&g), 0); /* on their way */
    g.warming = 0;
    g.open = 3;
    cr_assert_eq(sl_gate_to_warm(&g), 0); /* three idle */
    g.busy = 2;                           /* two streams took two of them */
    cr_assert_eq(sl_gate_to_warm(&g), 2); /* but only 2 fit under the cap of 4 */
    g.busy = 4;
    cr_assert_eq(sl_gate_to_warm(&g), 0);
    sl_gate_init(&g, 4, 10, 0);
    cr_assert_eq(sl_gate_to_warm(&g), 0); /* no min_idle: no warm-up */
}
