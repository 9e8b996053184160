/*
 * Intrusive circular doubly linked list.
 *
 * Objects embed a `struct sl_list` and can be unlinked in O(1) without knowing which
 * list they are on. The worker keeps its connections on such lists ordered by
 * deadline (see core/worker.h), which is why moving a node to the tail must be cheap.
 * An unlinked node points to itself, so sl_list_unlink() is idempotent.
 */
#ifndef SL_BASE_LIST_H
#define SL_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct sl_list {
    struct sl_list *prev, *next;
};

static inline void
sl_list_init(struct sl_list *l)
{
    l->prev = l->next = l;
}

static inline bool
sl_list_empty(const struct sl_list *l)
{
    return l->next == l;
}

static inline void
sl_list_unlink(struct sl_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static inline void
sl_list_push_back(struct sl_list *head, struct sl_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

/* Unlinks n from wherever it is and appends it to head. */
static inline void
sl_list_move_back(struct sl_list *head, struct sl_list *n)
{
    sl_list_unlink(n);
    sl_list_push_back(head, n);
}

#define sl_list_first(head) ((head)->next == (head) ? NULL : (head)->next)

/* Iterates safely against removal of the current node. */
#define sl_list_foreach_safe(pos, tmp, head)                                                       \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

#endif
