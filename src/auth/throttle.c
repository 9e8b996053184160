#include "auth/throttle.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "base/alloc.h"
#include "base/util.h"

#define NONE UINT32_MAX
#define MAX_STRIKES 64 /* enough doublings to reach any max_block_ms */

/* An address as the table keys it: the IPv4 address, or an IPv6 /64 prefix. */
struct key {
    uint8_t family; /* 4 or 6 */
    uint8_t bytes[8];
};

struct entry {
    struct key key;
    uint8_t strikes;       /* blocks since the last success or quiet period */
    uint32_t next;         /* in its hash chain, or the free list */
    uint32_t newer, older; /* LRU list */
    double tokens;
    uint64_t last_ms;         /* tokens were brought up to date at this time */
    uint64_t last_failure_ms; /* for the quiet-period reset */
    uint64_t blocked_until_ms;
};

struct sl_throttle {
    pthread_mutex_t lock;
    struct sl_throttle_limits lim;
    uint64_t seed;
    uint32_t *heads; /* hash chains, nbuckets of them */
    uint32_t nbuckets;
    struct entry *e;
    uint32_t free;           /* free list through entry.next */
    uint32_t newest, oldest; /* LRU ends */
    size_t used;
};

/* --- the table (the caller holds the lock) ----------------------------------------------- */

static bool
make_key(const struct sockaddr *sa, struct key *k)
{
    memset(k, 0, sizeof(*k));
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        k->family = 4;
        memcpy(k->bytes, &in->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, sizeof(mapped)) == 0) {
            k->family = 4;
            memcpy(k->bytes, a + 12, 4);
        } else {
            k->family = 6;
            memcpy(k->bytes, a, 8);
        }
        return true;
    }
    return false;
}

static uint64_t
mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

/* Keyed with a random seed: addresses an attacker picks do not share a chain on purpose. */
static uint32_t
bucket_of(const struct sl_throttle *t, const struct key *k)
{
    uint64_t v;
    memcpy(&v, k->bytes, sizeof(v));
    uint64_t h = mix(mix(v ^ t->seed) + k->family + t->seed);
    return (uint32_t)(h & (t->nbuckets - 1));
}

static uint32_t
find(const struct sl_throttle *t, const struct key *k)
{
    for (uint32_t i = t->heads[bucket_of(t, k)]; i != NONE; i = t->e[i].next)
        if (t->e[i].key.family == k->family && memcmp(t->e[i].key.bytes, k->bytes, 8) == 0)
            return i;
    return NONE;
}

static void
lru_unlink(struct sl_throttle *t, uint32_t i)
{
    struct entry *e = &t->e[i];
    if (e->newer != NONE)
        t->e[e->newer].older = e->older;
    else
        t->newest = e->older;
    if (e->older != NONE)
        t->e[e->older].newer = e->newer;
    else
        t->oldest = e->newer;
    e->newer = e->older = NONE;
}

static void
lru_push(struct sl_throttle *t, uint32_t i)
{
    struct entry *e = &t->e[i];
    e->newer = NONE;
    e->older = t->newest;
    if (t->newest != NONE)
        t->e[t->newest].newer = i;
    t->newest = i;
    if (t->oldest == NONE)
        t->oldest = i;
}

static void
chain_unlink(struct sl_throttle *t, uint32_t i)
{
    uint32_t *p = &t->heads[bucket_of(t, &t->e[i].key)];
    while (*p != i) {
        sl_assert(*p != NONE);
        p = &t->e[*p].next;
    }
    *p = t->e[i].next;
}

static void
remove_entry(struct sl_throttle *t, uint32_t i)
{
    chain_unlink(t, i);
    lru_unlink(t, i);
    t->e[i].next = t->free;
    t->free = i;
    t->used--;
}

/* A fresh entry for k: a free one, or the least recently used one, evicted. */
static uint32_t
add_entry(struct sl_throttle *t, const struct key *k, uint64_t now_ms)
{
    if (t->free == NONE)
        remove_entry(t, t->oldest);
    uint32_t i = t->free;
    struct entry *e = &t->e[i];
    t->free = e->next;
    memset(e, 0, sizeof(*e));
    e->key = *k;
    e->tokens = t->lim.burst;
    e->last_ms = now_ms;
    uint32_t b = bucket_of(t, k);
    e->next = t->heads[b];
    t->heads[b] = i;
    lru_push(t, i);
    t->used++;
    return i;
}

/*
 * Brings the bucket up to now: an address quiet for max_block_ms after its last failure
 * and after its last block starts over; otherwise tokens come back from last_ms on, which a block
 * moves to its end, so that a block's length is not paid back in tokens.
 */
static void
refill(const struct sl_throttle *t, struct entry *e, uint64_t now_ms)
{
    uint64_t quiet_since =
        e->blocked_until_ms > e->last_failure_ms ? e->blocked_until_ms : e->last_failure_ms;
    if (now_ms >= quiet_since && now_ms - quiet_since >= t->lim.max_block_ms) {
        e->strikes = 0;
        e->tokens = t->lim.burst;
        e->last_ms = now_ms;
        return;
    }
    /* Threads read the clock before taking the lock: "now" may lag a little behind. */
    if (now_ms > e->last_ms) {
        e->tokens += (double)(now_ms - e->last_ms) / (double)t->lim.refill_ms;
        if (e->tokens > t->lim.burst)
            e->tokens = t->lim.burst;
        e->last_ms = now_ms;
    }
}

/* --- the API ------------------------------------------------------------------------------ */

struct sl_throttle *
sl_throttle_new(const struct sl_throttle_limits *lim)
{
    static const struct sl_throttle_limits defaults = SL_THROTTLE_DEFAULTS;
    if (lim == NULL)
        lim = &defaults;
    sl_assert(lim->burst >= 1 && lim->refill_ms >= 1 && lim->max_block_ms >= lim->refill_ms);
    sl_assert(lim->max_block_ms < (UINT64_C(1) << 62)); /* doubling up to it cannot overflow */
    sl_assert(lim->capacity >= 1 && lim->capacity < NONE / 2);
    struct sl_throttle *t = sl_calloc(1, sizeof(*t));
    if (pthread_mutex_init(&t->lock, NULL) != 0)
        sl_panic("pthread_mutex_init failed");
    t->lim = *lim;
    sl_random(&t->seed, sizeof(t->seed));
    t->nbuckets = 1;
    while (t->nbuckets < lim->capacity)
        t->nbuckets <<= 1;
    t->heads = sl_malloc(t->nbuckets * sizeof(*t->heads));
    for (uint32_t b = 0; b < t->nbuckets; b++)
        t->heads[b] = NONE;
    t->e = sl_calloc(lim->capacity, sizeof(*t->e));
    for (size_t i = 0; i < lim->capacity; i++)
        t->e[i].next = i + 1 < lim->capacity ? (uint32_t)(i + 1) : NONE;
    t->free = 0;
    t->newest = t->oldest = NONE;
    return t;
}

void
sl_throttle_free(struct sl_throttle *t)
{
    if (t == NULL)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->heads);
    free(t->e);
    free(t);
}

int
sl_throttle_check(struct sl_throttle *t, const struct sockaddr *peer, uint64_t now_ms,
                  uint64_t *retry_after_ms)
{
    struct key k;
    int rc = 0;
    if (!make_key(peer, &k))
        return 0;
    pthread_mutex_lock(&t->lock);
    uint32_t i = find(t, &k);
    if (i != NONE && now_ms < t->e[i].blocked_until_ms) {
        *retry_after_ms = t->e[i].blocked_until_ms - now_ms;
        rc = SL_AUTH_ETHROTTLED;
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void
sl_throttle_failure(struct sl_throttle *t, const struct sockaddr *peer, uint64_t now_ms)
{
    struct key k;
    if (!make_key(peer, &k))
        return;
    pthread_mutex_lock(&t->lock);
    uint32_t i = find(t, &k);
    if (i == NONE) {
        i = add_entry(t, &k, now_ms);
    } else {
        lru_unlink(t, i);
        lru_push(t, i);
    }
    struct entry *e = &t->e[i];
    refill(t, e, now_ms);
    e->tokens -= 1;
    /* Failures that passed the check together may overdraw; not without end. */
    if (e->tokens < -(double)t->lim.burst)
        e->tokens = -(double)t->lim.burst;
    if (now_ms > e->last_failure_ms)
        e->last_failure_ms = now_ms;
    if (e->tokens < 1) {
        if (e->strikes < MAX_STRIKES)
            e->strikes++;
        uint64_t block = t->lim.refill_ms;
        for (unsigned s = 1; s < e->strikes && block < t->lim.max_block_ms; s++)
            block *= 2;
        if (block > t->lim.max_block_ms)
            block = t->lim.max_block_ms;
        if (now_ms + block > e->blocked_until_ms)
            e->blocked_until_ms = now_ms + block;
        e->last_ms = e->blocked_until_ms; /* no tokens come back while blocked */
    }
    pthread_mutex_unlock(&t->lock);
}

void
sl_throttle_success(struct sl_throttle *t, const struct sockaddr *peer, uint64_t now_ms)
{
    struct key k;
    if (!make_key(peer, &k))
        return;
    pthread_mutex_lock(&t->lock);
    uint32_t i = find(t, &k);
    if (i != NONE) {
        struct entry *e = &t->e[i];
        refill(t, e, now_ms);
        e->strikes = 0;
        /* Nothing left to remember: give the slot back. */
        if (e->tokens >= t->lim.burst && now_ms >= e->blocked_until_ms)
            remove_entry(t, i);
    }
    pthread_mutex_unlock(&t->lock);
}

size_t
sl_throttle_size(struct sl_throttle *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->used;
    pthread_mutex_unlock(&t->lock);
    return n;
}

int
sl_auth_verify_throttled(const struct sl_auth *a, struct sl_throttle *t,
                         const struct sockaddr *peer, const char *token, size_t len,
                         struct sl_identity *id, const char **reason, uint64_t *retry_after_ms)
{
    *retry_after_ms = 0;
    uint64_t now = sl_clock_ms();
    if (t && peer && sl_throttle_check(t, peer, now, retry_after_ms) != 0) {
        *reason = sl_auth_strerror(SL_AUTH_ETHROTTLED);
        return SL_AUTH_ETHROTTLED;
    }
    int rc = sl_auth_verify(a, token, len, id, reason);
    if (t && peer) {
        if (rc == 0)
            sl_throttle_success(t, peer, now);
        else
            sl_throttle_failure(t, peer, now);
    }
    return rc;
}
