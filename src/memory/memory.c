/*
 * Conversation memory (memory.h): the facade over a store, and the in-process store: 16
 * stripes, each a mutex, a chained hash of conversations and a list of them from the
 * idle-longest to the most recently used.
 */
#include "memory/memory.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/list.h"
#include "base/utf8.h"
#include "base/util.h"

struct sl_memory {
    const struct sl_memory_store_ops *ops;
    void *store;
};

const char *
sl_memory_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case SL_MEMORY_ETOOBIG:
        return "message larger than a conversation may hold";
    case SL_MEMORY_EINVAL:
        return "invalid argument";
    }
    return "unknown error";
}

/* --- the in-process store ------------------------------------------------------------ */

#define NSTRIPES 16

struct turn {
    char *text;
    size_t len;
    enum sl_memory_role role;
};

struct conv {
    struct conv *hnext;
    struct sl_list lru;
    uint64_t hash;
    uint64_t used_ms;
    struct turn *turns; /* oldest first */
    unsigned nturns, cap;
    size_t bytes;
    size_t ulen; /* key = user '\0' conversation id '\0' */
    char key[];
};

struct stripe {
    pthread_mutex_t mu;
    struct conv **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
    struct sl_list lru; /* first: the idle-longest */
    size_t messages, bytes;
};

struct local {
    struct sl_memory_limits lim;
    uint64_t seed;
    size_t stripe_cap; /* conversations per stripe */
    struct stripe stripes[NSTRIPES];
};

/*
 * FNV-1a over user, a NUL and the conversation id, from a random basis (clients choose the
 * ids: they cannot aim at one bucket without the seed), then a finaliser so that the top bits
 * (the stripe) depend on every byte.
 */
static uint64_t
hash_key(uint64_t seed, const char *user, const char *conv)
{
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (const char *p = user; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    h *= 0x100000001b3ull; /* the separator */
    for (const char *p = conv; *p; p++)
        h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static struct stripe *
stripe_of(struct local *l, uint64_t h)
{
    return &l->stripes[h >> 60];
}

static struct conv *
conv_of(struct sl_list *n)
{
    return SL_CONTAINER_OF(n, struct conv, lru);
}

static bool
same_key(const struct conv *c, uint64_t h, const char *user, const char *conv)
{
    return c->hash == h && strcmp(c->key, user) == 0 && strcmp(c->key + c->ulen + 1, conv) == 0;
}

static void
drop_turns(struct stripe *s, struct conv *c, unsigned k)
{
    for (unsigned i = 0; i < k; i++) {
        c->bytes -= c->turns[i].len;
        s->bytes -= c->turns[i].len;
        free(c->turns[i].text);
    }
    c->nturns -= k;
    s->messages -= k;
    memmove(c->turns, c->turns + k, c->nturns * sizeof(*c->turns));
}

static void
conv_remove(struct stripe *s, struct conv *c)
{
    struct conv **pp = &s->buckets[c->hash & (s->nbuckets - 1)];
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    sl_list_unlink(&c->lru);
    drop_turns(s, c, c->nturns);
    s->count--;
    free(c->turns);
    free(c);
}

/* Unused for idle_ttl. now_ms is monotonic, but calls on other threads may pass a slightly
 * earlier one than the last use: that is not idleness. */
static bool
expired(const struct local *l, const struct conv *c, uint64_t now_ms)
{
    return now_ms > c->used_ms && now_ms - c->used_ms >= l->lim.idle_ttl_ms;
}

/*
 * Puts c (unlinked) in the stripe's list in order of last use, which the sweep relies on (it
 * stops at the first live one). Usually the back; another thread's clock may be a little
 * ahead, so c goes after the last one used no later than it.
 */
static void
lru_place(struct stripe *s, struct conv *c)
{
    struct sl_list *at = s->lru.prev;
    while (at != &s->lru && conv_of(at)->used_ms > c->used_ms)
        at = at->prev;
    sl_list_push_back(at->next, &c->lru);
}

static void
touch(struct stripe *s, struct conv *c, uint64_t now_ms)
{
    if (now_ms <= c->used_ms)
        return; /* a clock behind its last use: no later use, its place stays */
    c->used_ms = now_ms;
    sl_list_unlink(&c->lru);
    lru_place(s, c);
}

/* The live conversation of the key, or NULL (an expired one is forgotten on the way). */
static struct conv *
lookup(struct local *l, struct stripe *s, uint64_t h, const char *user, const char *conv,
       uint64_t now_ms)
{
    if (s->nbuckets == 0)
        return NULL;
    for (struct conv *c = s->buckets[h & (s->nbuckets - 1)]; c != NULL; c = c->hnext) {
        if (!same_key(c, h, user, conv))
            continue;
        if (expired(l, c, now_ms)) {
            conv_remove(s, c);
            return NULL;
        }
        return c;
    }
    return NULL;
}

static void
grow(struct stripe *s)
{
    size_t n = s->nbuckets ? s->nbuckets * 2 : 16;
    struct conv **nb = sl_calloc(n, sizeof(*nb));
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct conv *c = s->buckets[i];
        while (c != NULL) {
            struct conv *next = c->hnext;
            c->hnext = nb[c->hash & (n - 1)];
            nb[c->hash & (n - 1)] = c;
            c = next;
        }
    }
    free(s->buckets);
    s->buckets = nb;
    s->nbuckets = n;
}

static struct conv *
conv_new(struct local *l, struct stripe *s, uint64_t h, const char *user, const char *conv,
         uint64_t now_ms)
{
    /* Full: forget the idle-longest conversation of the stripe. */
    if (s->count >= l->stripe_cap && !sl_list_empty(&s->lru))
        conv_remove(s, conv_of(s->lru.next));
    if (s->count >= s->nbuckets)
        grow(s);
    size_t ulen = strlen(user), clen = strlen(conv);
    struct conv *c = sl_calloc(1, sizeof(*c) + ulen + clen + 2);
    memcpy(c->key, user, ulen + 1);
    memcpy(c->key + ulen + 1, conv, clen + 1);
    c->ulen = ulen;
    c->hash = h;
    c->used_ms = now_ms;
    sl_list_init(&c->lru);
    lru_place(s, c);
    size_t b = h & (s->nbuckets - 1);
    c->hnext = s->buckets[b];
    s->buckets[b] = c;
    s->count++;
    return c;
}

/* Drops the oldest messages past the limits, then any answer left at the front. */
static void
trim(const struct local *l, struct stripe *s, struct conv *c)
{
    unsigned k = 0;
    size_t bytes = c->bytes;
    while (k < c->nturns && (c->nturns - k > l->lim.max_turns || bytes > l->lim.max_bytes))
        bytes -= c->turns[k++].len;
    while (k < c->nturns && c->turns[k].role == SL_MEMORY_ASSISTANT)
        k++;
    if (k > 0)
        drop_turns(s, c, k);
}

static int
local_append(void *store, const char *user, const char *conv, enum sl_memory_role role,
             const char *text, size_t len, uint64_t now_ms)
{
    struct local *l = store;
    if (*user == '\0' || *conv == '\0' || !sl_utf8_valid(text, len))
        return SL_MEMORY_EINVAL;
    if (len > l->lim.max_bytes)
        return SL_MEMORY_ETOOBIG;
    uint64_t h = hash_key(l->seed, user, conv);
    struct stripe *s = stripe_of(l, h);
    char *copy = sl_malloc(len + 1);
    memcpy(copy, text, len);
    copy[len] = '\0';

    pthread_mutex_lock(&s->mu);
    struct conv *c = lookup(l, s, h, user, conv, now_ms);
    if (c == NULL)
        c = conv_new(l, s, h, user, conv, now_ms);
    if (c->nturns == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 4;
        c->turns = sl_realloc(c->turns, c->cap * sizeof(*c->turns));
    }
    c->turns[c->nturns++] = (struct turn){.text = copy, .len = len, .role = role};
    c->bytes += len;
    s->messages++;
    s->bytes += len;
    trim(l, s, c);
    touch(s, c, now_ms);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static json_t *
local_history(void *store, const char *user, const char *conv, uint64_t now_ms)
{
    struct local *l = store;
    json_t *out = json_array();
    if (*user == '\0' || *conv == '\0')
        return out;
    uint64_t h = hash_key(l->seed, user, conv);
    struct stripe *s = stripe_of(l, h);
    pthread_mutex_lock(&s->mu);
    struct conv *c = lookup(l, s, h, user, conv, now_ms);
    if (c != NULL) {
        for (unsigned i = 0; i < c->nturns; i++) {
            const struct turn *t = &c->turns[i];
            json_t *m = json_object();
            json_object_set_new(m, "role",
                                json_string(t->role == SL_MEMORY_USER ? "user" : "assistant"));
            /* Valid UTF-8 (checked when appended): json_stringn cannot fail. */
            json_object_set_new(m, "content", json_stringn(t->text, t->len));
            json_array_append_new(out, m);
        }
        touch(s, c, now_ms);
    }
    pthread_mutex_unlock(&s->mu);
    return out;
}

static size_t
local_sweep(void *store, uint64_t now_ms)
{
    struct local *l = store;
    size_t n = 0;
    for (size_t i = 0; i < NSTRIPES; i++) {
        struct stripe *s = &l->stripes[i];
        pthread_mutex_lock(&s->mu);
        /* In order of use: the first one still live ends the walk. */
        while (!sl_list_empty(&s->lru) && expired(l, conv_of(s->lru.next), now_ms)) {
            conv_remove(s, conv_of(s->lru.next));
            n++;
        }
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

static void
local_stats(void *store, struct sl_memory_stats *out)
{
    struct local *l = store;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < NSTRIPES; i++) {
        struct stripe *s = &l->stripes[i];
        pthread_mutex_lock(&s->mu);
        out->conversations += s->count;
        out->messages += s->messages;
        out->bytes += s->bytes;
        pthread_mutex_unlock(&s->mu);
    }
}

static void
local_free(void *store)
{
    struct local *l = store;
    for (size_t i = 0; i < NSTRIPES; i++) {
        struct stripe *s = &l->stripes[i];
        while (!sl_list_empty(&s->lru))
            conv_remove(s, conv_of(s->lru.next));
        free(s->buckets);
        pthread_mutex_destroy(&s->mu);
    }
    free(l);
}

static const struct sl_memory_store_ops local_ops = {
    .append = local_append,
    .history = local_history,
    .sweep = local_sweep,
    .stats = local_stats,
    .free = local_free,
};

struct sl_memory *
sl_memory_new(const struct sl_memory_limits *lim)
{
    sl_assert(lim->max_turns >= 2 && lim->max_bytes > 0 && lim->idle_ttl_ms > 0 &&
              lim->max_conversations >= 1);
    struct local *l = sl_calloc(1, sizeof(*l));
    l->lim = *lim;
    sl_random(&l->seed, sizeof(l->seed));
    l->stripe_cap = (lim->max_conversations + NSTRIPES - 1) / NSTRIPES;
    for (size_t i = 0; i < NSTRIPES; i++) {
        pthread_mutex_init(&l->stripes[i].mu, NULL);
        sl_list_init(&l->stripes[i].lru);
    }
    return sl_memory_new_with(&local_ops, l);
}

/* --- the facade ---------------------------------------------------------------------- */

struct sl_memory *
sl_memory_new_with(const struct sl_memory_store_ops *ops, void *store)
{
    struct sl_memory *m = sl_calloc(1, sizeof(*m));
    m->ops = ops;
    m->store = store;
    return m;
}

void
sl_memory_free(struct sl_memory *m)
{
    if (m == NULL)
        return;
    m->ops->free(m->store);
    free(m);
}

int
sl_memory_append_user(struct sl_memory *m, const char *user, const char *conv, const char *text,
                      size_t len, uint64_t now_ms)
{
    return m->ops->append(m->store, user, conv, SL_MEMORY_USER, text, len, now_ms);
}

int
sl_memory_append_answer(struct sl_memory *m, const char *user, const char *conv, const char *text,
                        size_t len, uint64_t now_ms)
{
    return m->ops->append(m->store, user, conv, SL_MEMORY_ASSISTANT, text, len, now_ms);
}

json_t *
sl_memory_history(struct sl_memory *m, const char *user, const char *conv, uint64_t now_ms)
{
    return m->ops->history(m->store, user, conv, now_ms);
}

size_t
sl_memory_sweep(struct sl_memory *m, uint64_t now_ms)
{
    return m->ops->sweep(m->store, now_ms);
}

void
sl_memory_stats(struct sl_memory *m, struct sl_memory_stats *out)
{
    m->ops->stats(m->store, out);
}

void
sl_memory_new_id(char out[SL_MEMORY_ID_LEN + 1])
{
    sl_random_id(out, SL_MEMORY_ID_LEN);
}
