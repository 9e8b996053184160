#include "stream/directory.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

struct entry {
    struct entry *next;
    struct entry **pprev; /* what points to it: removal without a walk */
    uint32_t hash;
    unsigned worker;
    uint64_t order; /* creation order: the newest run of an id wins without an epoch */
    char epoch[17];
    char *user; /* user "\0" id, one allocation */
    const char *id;
};

/* Shards keep the lock short and mostly uncontended across workers. */
#define SHARDS 16

struct shard {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets, count;
};

struct sl_directory {
    struct shard shards[SHARDS];
    _Atomic uint64_t order; /* creation order across shards */
};

static uint32_t
hash_of(const char *user, const char *id)
{
    uint32_t h = 2166136261u;
    for (const char *p = user; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xff) * 16777619u;
    for (const char *p = id; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    return h;
}

struct sl_directory *
sl_directory_new(void)
{
    struct sl_directory *d = sl_calloc(1, sizeof(*d));
    for (int i = 0; i < SHARDS; i++) {
        pthread_mutex_init(&d->shards[i].lock, NULL);
        d->shards[i].nbuckets = 64;
        d->shards[i].buckets = sl_calloc(64, sizeof(struct entry *));
    }
    return d;
}

void
sl_directory_free(struct sl_directory *d)
{
    if (d == NULL)
        return;
    for (int i = 0; i < SHARDS; i++) {
        struct shard *s = &d->shards[i];
        for (size_t b = 0; b < s->nbuckets; b++) {
            while (s->buckets[b]) {
                struct entry *e = s->buckets[b];
                s->buckets[b] = e->next;
                free(e->user);
                free(e);
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(d);
}

static void
push(struct entry **head, struct entry *e)
{
    e->next = *head;
    if (e->next)
        e->next->pprev = &e->next;
    e->pprev = head;
    *head = e;
}

static void
unlink_entry(struct shard *s, struct entry *e)
{
    *e->pprev = e->next;
    if (e->next)
        e->next->pprev = e->pprev;
    s->count--;
    free(e->user);
    free(e);
}

static void
grow(struct shard *s)
{
    size_t n = s->nbuckets * 2;
    struct entry **nb = sl_calloc(n, sizeof(*nb));
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct entry *e = s->buckets[i];
        while (e) {
            struct entry *next = e->next;
            push(&nb[(e->hash >> 4) & (n - 1)], e);
            e = next;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

struct sl_direntry *
sl_directory_add(struct sl_directory *d, const char *user, const char *id, const char *epoch,
                 unsigned worker)
{
    uint32_t h = hash_of(user, id);
    size_t ul = strlen(user), il = strlen(id);
    struct entry *e = sl_calloc(1, sizeof(*e));
    e->hash = h;
    e->worker = worker;
    e->user = sl_malloc(ul + il + 2);
    memcpy(e->user, user, ul + 1);
    memcpy(e->user + ul + 1, id, il + 1);
    e->id = e->user + ul + 1;
    strncpy(e->epoch, epoch, sizeof(e->epoch) - 1);
    e->order = atomic_fetch_add(&d->order, 1) + 1;
    struct shard *s = &d->shards[h % SHARDS];
    pthread_mutex_lock(&s->lock);
    if (s->count + 1 > s->nbuckets)
        grow(s);
    push(&s->buckets[(h >> 4) & (s->nbuckets - 1)], e);
    s->count++;
    pthread_mutex_unlock(&s->lock);
    return (struct sl_direntry *)e;
}

void
sl_directory_remove_entry(struct sl_directory *d, struct sl_direntry *de)
{
    struct entry *e = (struct entry *)de;
    struct shard *s = &d->shards[e->hash % SHARDS];
    pthread_mutex_lock(&s->lock);
    unlink_entry(s, e);
    pthread_mutex_unlock(&s->lock);
}

static int
matches(const struct entry *e, uint32_t h, const char *user, const char *id)
{
    return e->hash == h && strcmp(e->user, user) == 0 && strcmp(e->id, id) == 0;
}

int
sl_directory_find(struct sl_directory *d, const char *user, const char *id, const char *epoch)
{
    uint32_t h = hash_of(user, id);
    struct shard *s = &d->shards[h % SHARDS];
    int worker = -1;
    uint64_t best = 0;
    pthread_mutex_lock(&s->lock);
    for (struct entry *e = s->buckets[(h >> 4) & (s->nbuckets - 1)]; e; e = e->next) {
        if (!matches(e, h, user, id))
            continue;
        if (epoch) {
            if (strcmp(e->epoch, epoch) == 0) {
                worker = (int)e->worker;
                break;
            }
        } else if (e->order > best) {
            best = e->order;
            worker = (int)e->worker;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return worker;
}
