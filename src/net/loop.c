#include "net/loop.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/alloc.h"

#define MAX_TIMEQS 32
#define MAX_HOOKS 4
#define MAX_SOON 8

struct msg {
    struct msg *next;
    sl_loop_fn fn;
    void *arg;
};

struct sl_loop {
    uv_loop_t uv;
    uv_timer_t timer;
    uv_prepare_t prepare;
    uv_check_t check;
    uv_idle_t idle; /* active while sl_loop_soon() work is due */
    uv_async_t async;
    uint64_t timer_at; /* when the timer is due, UINT64_MAX if stopped */
    uint64_t turn;     /* loop iterations so far (counted after each poll for I/O) */

    struct sl_timeq *timeqs[MAX_TIMEQS];
    size_t ntimeqs;

    struct {
        sl_loop_fn fn;
        void *arg;
    } hooks[MAX_HOOKS];
    size_t nhooks;

    struct {
        sl_loop_fn fn;
        void *arg;
    } soon[MAX_SOON];
    size_t nsoon;

    pthread_mutex_t mbox_lock;
    struct msg *mbox_head, *mbox_tail;
    int stopping;

    char rbuf[SL_LOOP_RBUF_SIZE];
};

static void on_timer(uv_timer_t *t);

static void
start_timer(struct sl_loop *l)
{
    uint64_t next = UINT64_MAX;
    for (size_t i = 0; i < l->ntimeqs; i++) {
        uint64_t at = sl_timeq_next(l->timeqs[i]);
        if (at < next)
            next = at;
    }
    l->timer_at = next;
    if (next == UINT64_MAX) {
        uv_timer_stop(&l->timer);
        return;
    }
    uint64_t now = uv_now(&l->uv);
    uv_timer_start(&l->timer, on_timer, next > now ? next - now : 0, 0);
}

static void
on_timer(uv_timer_t *t)
{
    struct sl_loop *l = t->data;
    uint64_t now = uv_now(&l->uv);
    l->timer_at = UINT64_MAX;
    for (size_t i = 0; i < l->ntimeqs; i++)
        sl_timeq_run(l->timeqs[i], now);
    if (!l->stopping)
        start_timer(l);
}

static void
run_hooks(struct sl_loop *l)
{
    for (size_t i = 0; i < l->nhooks; i++)
        l->hooks[i].fn(l->hooks[i].arg);
}

void
sl_loop_flush(struct sl_loop *l)
{
    run_hooks(l);
}

static void
on_prepare(uv_prepare_t *h)
{
    run_hooks(h->data);
}

static void
on_idle(uv_idle_t *h)
{
    struct sl_loop *l = h->data;
    size_t n = l->nsoon;
    struct {
        sl_loop_fn fn;
        void *arg;
    } due[MAX_SOON];
    memcpy(due, l->soon, n * sizeof(due[0]));
    l->nsoon = 0;
    uv_idle_stop(&l->idle);
    for (size_t i = 0; i < n; i++)
        due[i].fn(due[i].arg);
}

void
sl_loop_soon(struct sl_loop *l, sl_loop_fn fn, void *arg)
{
    if (l->stopping)
        return;
    for (size_t i = 0; i < l->nsoon; i++)
        if (l->soon[i].fn == fn && l->soon[i].arg == arg)
            return;
    sl_assert(l->nsoon < MAX_SOON);
    l->soon[l->nsoon].fn = fn;
    l->soon[l->nsoon].arg = arg;
    l->nsoon++;
    uv_idle_start(&l->idle, on_idle);
}

uint64_t
sl_loop_turn(const struct sl_loop *l)
{
    return l->turn;
}

static void
on_check(uv_check_t *h)
{
    struct sl_loop *l = h->data;
    run_hooks(l);
    l->turn++; /* the iteration's I/O is done: what follows is the next one's */
}

static void
drain_mailbox(struct sl_loop *l)
{
    for (;;) {
        pthread_mutex_lock(&l->mbox_lock);
        struct msg *m = l->mbox_head;
        l->mbox_head = l->mbox_tail = NULL;
        pthread_mutex_unlock(&l->mbox_lock);
        if (m == NULL)
            return;
        while (m != NULL) {
            struct msg *next = m->next;
            m->fn(m->arg);
            free(m);
            m = next;
        }
    }
}

static void
on_async(uv_async_t *h)
{
    drain_mailbox(h->data);
}

struct sl_loop *
sl_loop_new(void)
{
    struct sl_loop *l = sl_calloc(1, sizeof(*l));
    if (uv_loop_init(&l->uv) != 0)
        sl_panic("uv_loop_init failed");
    l->uv.data = l;
    uv_timer_init(&l->uv, &l->timer);
    l->timer.data = l;
    uv_prepare_init(&l->uv, &l->prepare);
    l->prepare.data = l;
    uv_check_init(&l->uv, &l->check);
    l->check.data = l;
    uv_idle_init(&l->uv, &l->idle);
    l->idle.data = l;
    uv_unref((uv_handle_t *)&l->idle);
    uv_async_init(&l->uv, &l->async, on_async);
    l->async.data = l;
    /* The hooks must not keep the loop alive on their own. */
    uv_prepare_start(&l->prepare, on_prepare);
    uv_check_start(&l->check, on_check);
    uv_unref((uv_handle_t *)&l->prepare);
    uv_unref((uv_handle_t *)&l->check);
    uv_unref((uv_handle_t *)&l->timer);
    pthread_mutex_init(&l->mbox_lock, NULL);
    l->timer_at = UINT64_MAX;
    return l;
}

void
sl_loop_free(struct sl_loop *l)
{
    if (l == NULL)
        return;
    drain_mailbox(l);
    uv_loop_close(&l->uv);
    pthread_mutex_destroy(&l->mbox_lock);
    free(l);
}

struct uv_loop_s *
sl_loop_uv(struct sl_loop *l)
{
    return &l->uv;
}

void
sl_loop_run(struct sl_loop *l)
{
    uv_run(&l->uv, UV_RUN_DEFAULT);
}

void
sl_loop_stop(struct sl_loop *l)
{
    if (l->stopping)
        return;
    l->stopping = 1;
    drain_mailbox(l);
    uv_close((uv_handle_t *)&l->timer, NULL);
    uv_close((uv_handle_t *)&l->prepare, NULL);
    uv_close((uv_handle_t *)&l->check, NULL);
    uv_close((uv_handle_t *)&l->idle, NULL);
    uv_close((uv_handle_t *)&l->async, NULL);
}

uint64_t
sl_loop_now(const struct sl_loop *l)
{
    return uv_now(&l->uv);
}

char *
sl_loop_rbuf(struct sl_loop *l)
{
    return l->rbuf;
}

void
sl_loop_add_timeq(struct sl_loop *l, struct sl_timeq *q)
{
    sl_assert(l->ntimeqs < MAX_TIMEQS);
    l->timeqs[l->ntimeqs++] = q;
}

void
sl_loop_arm(struct sl_loop *l, struct sl_timeq *q, struct sl_timeq_node *n)
{
    sl_timeq_arm(q, n, uv_now(&l->uv));
    if (n->at < l->timer_at && !l->stopping)
        start_timer(l);
}

void
sl_loop_add_turn_hook(struct sl_loop *l, sl_loop_fn fn, void *arg)
{
    sl_assert(l->nhooks < MAX_HOOKS);
    l->hooks[l->nhooks].fn = fn;
    l->hooks[l->nhooks].arg = arg;
    l->nhooks++;
}

void
sl_loop_post(struct sl_loop *l, sl_loop_fn fn, void *arg)
{
    struct msg *m = sl_malloc(sizeof(*m));
    m->next = NULL;
    m->fn = fn;
    m->arg = arg;
    pthread_mutex_lock(&l->mbox_lock);
    if (l->mbox_tail)
        l->mbox_tail->next = m;
    else
        l->mbox_head = m;
    l->mbox_tail = m;
    pthread_mutex_unlock(&l->mbox_lock);
    uv_async_send(&l->async);
}

struct sl_delay {
    uv_timer_t timer;
    sl_loop_fn fn;
    void *arg;
};

static void
free_delay(uv_handle_t *h)
{
    free(h->data);
}

static void
on_delay(uv_timer_t *t)
{
    struct sl_delay *d = t->data;
    sl_loop_fn fn = d->fn;
    void *arg = d->arg;
    uv_close((uv_handle_t *)&d->timer, free_delay);
    fn(arg);
}

struct sl_delay *
sl_loop_delay(struct sl_loop *l, uint64_t ms, sl_loop_fn fn, void *arg)
{
    struct sl_delay *d = sl_malloc(sizeof(*d));
    uv_timer_init(&l->uv, &d->timer);
    d->timer.data = d;
    d->fn = fn;
    d->arg = arg;
    uv_timer_start(&d->timer, on_delay, ms, 0);
    return d;
}

void
sl_delay_cancel(struct sl_delay *d)
{
    uv_timer_stop(&d->timer);
    uv_close((uv_handle_t *)&d->timer, free_delay);
}
