/*
 * Limits per identity: see limits.h for the rules; this file is the table behind them.
 *
 * Two tables of the same shape, identities and client addresses. Each is split in shards
 * (a mutex, a chained hash, and two lists of the entries that hold nothing: `fresh` ones,
 * which have spent nothing this month, and `spent` ones), oldest use first, so that both
 * expiry and eviction take from the head. An entry that holds a connection or a stream is
 * on neither list: it can be neither expired nor evicted, and a hold or a ticket may point
 * at it until it is released.
 */
#include "limits/limits.h"

#include <arpa/inet.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/list.h"
#include "base/util.h"
#include "config/config.h"
#include "obs/log.h"

#define DEFAULT_SHARDS 64
/* An entry unused this long has a full message bucket and an empty token window again. */
#define IDLE_TTL_MS 61000
/* The token window: NSLOTS slots of SLOT_MS, the newest being the current one. */
#define SLOT_MS 10000
#define NSLOTS 6
/* Below this, what is left of a budget is handed out whole rather than halved. */
#define MIN_GRANT_USD 1e-6
#define DAY_MS 86400000
/* Spend is kept below this (statefile.c refuses amounts from 1e12): an absurd cost from a
 * provider's bad usage exhausts a budget without making the state file unreadable. */
#define SPEND_MAX_USD 1e11
/* A failing save is logged at most this often. */
#define SAVE_LOG_MS 60000

struct shard;

struct entry {
    struct entry *hnext; /* in the shard's bucket */
    struct sl_list link; /* in fresh or spent; unlinked while it holds something */
    struct shard *shard;
    uint64_t hash;
    uint64_t used_ms; /* last use, monotonic */
    double msg_level; /* message bucket */
    uint64_t msg_ms;
    bool msg_started;
    uint32_t tok[NSLOTS]; /* tokens per slot */
    int64_t tok_slot;     /* the newest slot's number */
    uint32_t streams;
    uint32_t conns;
    double reserved_usd; /* allowances of the running streams */
    int64_t day, month;
    double day_usd, month_usd;
    char key[];
};

struct shard {
    pthread_mutex_t mu;
    struct entry **buckets;
    size_t nbuckets;
    size_t count;
    size_t cap;
    bool addresses; /* an entry of the address table is worth nothing once it holds nothing */
    struct sl_list fresh, spent;
    struct sl_limits *l;
};

struct table {
    struct shard *shards;
    unsigned nshards;
    unsigned shift; /* shard = hash >> shift */
};

struct sl_limits {
    const struct sl_config *cfg;
    struct sl_limits_tier global;
    struct sl_limits_tier *tiers; /* parallel to cfg->limits.tiers */
    size_t ntiers;
    bool budgeted; /* some budget is set: spend is kept */
    uint64_t seed;
    struct table users, addrs;
    uint64_t (*mono_ms)(void *ud);
    int64_t (*wall_ms)(void *ud);
    void *clock_ud;

    struct sl_limits_store *store;
    atomic_bool dirty;
    atomic_ulong evicted_spend; /* entries with spend forgotten at the cap */

    pthread_mutex_t tick_mu; /* tick and flush: one at a time */
    unsigned long evicted_reported;
    int64_t swept_day;
    bool save_failing;
    uint64_t save_logged_ms;
};

struct sl_limits_ticket {
    struct entry *e;
    bool count_tokens;
    bool budgeted;
    uint64_t tokens_counted;
    double allowance; /* INFINITY when not budgeted */
    double usd_per_day, usd_per_month;
};

/* --- clocks and the calendar -------------------------------------------------------- */

static uint64_t
default_mono(void *ud)
{
    (void)ud;
    return sl_clock_ms();
}

static int64_t
default_wall(void *ud)
{
    (void)ud;
    return (int64_t)sl_wall_ms();
}

static int64_t
floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 -> civil date (proleptic Gregorian) [H. Hinnant, chrono-compatible
 * low-level date algorithms]. */
static void
civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void
sl_limits_civil(int64_t day, int64_t *y, unsigned *m, unsigned *d)
{
    civil_from_days(day, y, m, d);
}

int64_t
sl_limits_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    return days_from_civil(y, m, d);
}

int64_t
sl_limits_day(int64_t wall_ms)
{
    return floor_div(wall_ms, DAY_MS);
}

int64_t
sl_limits_month(int64_t wall_ms)
{
    int64_t y;
    unsigned m, d;
    civil_from_days(sl_limits_day(wall_ms), &y, &m, &d);
    return (y - 1970) * 12 + (int64_t)m - 1;
}

int64_t
sl_limits_next_day_ms(int64_t wall_ms)
{
    return (sl_limits_day(wall_ms) + 1) * DAY_MS;
}

int64_t
sl_limits_next_month_ms(int64_t wall_ms)
{
    int64_t next = sl_limits_month(wall_ms) + 1;
    int64_t y = 1970 + floor_div(next, 12);
    unsigned m = (unsigned)(next - floor_div(next, 12) * 12) + 1;
    return days_from_civil(y, m, 1) * DAY_MS;
}

/* --- tiers ---------------------------------------------------------------------------- */

static unsigned
pick(unsigned tier, unsigned global)
{
    return tier == SL_CONFIG_UNSET ? global : tier;
}

static double
pick_usd(double tier, double global)
{
    return tier < 0 ? global : tier;
}

static bool
has_budget(const struct sl_limits_tier *t)
{
    return t->usd_per_day > 0 || t->usd_per_month > 0;
}

void
sl_limits_of(const struct sl_limits *l, const char *tier, struct sl_limits_tier *out)
{
    *out = l->global;
    if (tier == NULL || *tier == '\0')
        return;
    for (size_t i = 0; i < l->ntiers; i++) {
        if (strcmp(l->cfg->limits.tiers[i].name, tier) == 0) {
            *out = l->tiers[i];
            return;
        }
    }
}

/* --- the table ------------------------------------------------------------------------ */

static uint64_t
hash_key(uint64_t seed, const char *s)
{
    /* FNV-1a from a random basis, then a 64-bit finaliser so that the top bits (the shard)
     * depend on every byte. */
    uint64_t h = seed ^ 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static void
table_init(struct table *t, struct sl_limits *l, unsigned nshards, size_t cap, bool addresses)
{
    t->nshards = nshards;
    t->shift = 64;
    for (unsigned n = nshards; n > 1; n >>= 1)
        t->shift--;
    t->shards = sl_calloc(nshards, sizeof(*t->shards));
    size_t per = cap / nshards;
    for (unsigned i = 0; i < nshards; i++) {
        struct shard *sh = &t->shards[i];
        pthread_mutex_init(&sh->mu, NULL);
        sh->nbuckets = 16;
        sh->buckets = sl_calloc(sh->nbuckets, sizeof(*sh->buckets));
        sh->cap = per > 0 ? per : 1;
        sh->addresses = addresses;
        sl_list_init(&sh->fresh);
        sl_list_init(&sh->spent);
        sh->l = l;
    }
}

static void
table_cleanup(struct table *t)
{
    for (unsigned i = 0; i < t->nshards; i++) {
        struct shard *sh = &t->shards[i];
        for (size_t b = 0; b < sh->nbuckets; b++) {
            struct entry *e = sh->buckets[b];
            while (e) {
                struct entry *next = e->hnext;
                free(e);
                e = next;
            }
        }
        free(sh->buckets);
        pthread_mutex_destroy(&sh->mu);
    }
    free(t->shards);
}

static struct shard *
shard_of(struct table *t, uint64_t h)
{
    return &t->shards[t->shift >= 64 ? 0 : h >> t->shift];
}

static struct entry *
find(struct shard *sh, uint64_t h, const char *key)
{
    for (struct entry *e = sh->buckets[h & (sh->nbuckets - 1)]; e; e = e->hnext)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static void
grow(struct shard *sh)
{
    size_t n = sh->nbuckets * 2;
    struct entry **nb = sl_calloc(n, sizeof(*nb));
    for (size_t i = 0; i < sh->nbuckets; i++) {
        struct entry *e = sh->buckets[i];
        while (e) {
            struct entry *next = e->hnext;
            e->hnext = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(sh->buckets);
    sh->buckets = nb;
    sh->nbuckets = n;
}

static void
remove_entry(struct shard *sh, struct entry *e)
{
    struct entry **pp = &sh->buckets[e->hash & (sh->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    sl_list_unlink(&e->link);
    sh->count--;
    free(e);
}

static struct entry *
entry_of(struct sl_list *n)
{
    return SL_CONTAINER_OF(n, struct entry, link);
}

/* Forgets up to max entries of the fresh list that have been idle for IDLE_TTL_MS. */
static void
expire(struct shard *sh, uint64_t now, size_t max)
{
    while (max-- > 0 && !sl_list_empty(&sh->fresh)) {
        struct entry *e = entry_of(sh->fresh.next);
        if (e->used_ms + IDLE_TTL_MS > now)
            break;
        remove_entry(sh, e);
    }
}

/* The shard is at its share of the cap: forget its idle-longest entry, spend-free first. */
static void
evict(struct shard *sh)
{
    if (!sl_list_empty(&sh->fresh)) {
        remove_entry(sh, entry_of(sh->fresh.next));
    } else if (!sl_list_empty(&sh->spent)) {
        remove_entry(sh, entry_of(sh->spent.next));
        atomic_fetch_add(&sh->l->evicted_spend, 1);
    }
    /* Else every entry holds a connection or a stream: those are bounded by themselves. */
}

/* A new day or month starts the entry's spend for it from zero (a clock going back does not). */
static void
roll(struct entry *e, int64_t day, int64_t month)
{
    if (day > e->day) {
        e->day = day;
        e->day_usd = 0;
    }
    if (month > e->month) {
        e->month = month;
        e->month_usd = 0;
    }
}

static bool
has_spend(const struct entry *e)
{
    return e->day_usd > 0 || e->month_usd > 0;
}

/*
 * After every use: an entry that holds something leaves the lists; one that holds nothing
 * goes to the tail of its list (or, in the address table, is forgotten at once).
 */
static void
place(struct shard *sh, struct entry *e)
{
    sl_list_unlink(&e->link);
    if (e->streams > 0 || e->conns > 0)
        return;
    if (sh->addresses) {
        remove_entry(sh, e);
        return;
    }
    sl_list_push_back(has_spend(e) ? &sh->spent : &sh->fresh, &e->link);
}

/* The entry for key, created if needed (which may expire or evict others). */
static struct entry *
get(struct shard *sh, uint64_t h, const char *key, uint64_t now, int64_t day, int64_t month)
{
    struct entry *e = find(sh, h, key);
    if (e != NULL) {
        roll(e, day, month);
        e->used_ms = now;
        return e;
    }
    expire(sh, now, 2);
    if (sh->count >= sh->cap)
        evict(sh);
    size_t len = strlen(key);
    e = sl_calloc(1, sizeof(*e) + len + 1);
    memcpy(e->key, key, len + 1);
    e->hash = h;
    e->shard = sh;
    e->used_ms = now;
    e->tok_slot = (int64_t)(now / SLOT_MS);
    e->day = day;
    e->month = month;
    sl_list_init(&e->link);
    if (sh->count + 1 > sh->nbuckets)
        grow(sh);
    struct entry **b = &sh->buckets[h & (sh->nbuckets - 1)];
    e->hnext = *b;
    *b = e;
    sh->count++;
    return e;
}

/* What every call starts with: the time, the shard locked. */
struct op {
    struct sl_limits *l;
    struct shard *sh;
    uint64_t h;
    uint64_t now;
    int64_t wall, day, month;
};

static void
op_begin(struct op *op, struct sl_limits *l, struct table *t, const char *key)
{
    op->l = l;
    op->h = hash_key(l->seed, key);
    op->sh = shard_of(t, op->h);
    op->now = l->mono_ms(l->clock_ud);
    op->wall = l->wall_ms(l->clock_ud);
    op->day = sl_limits_day(op->wall);
    op->month = sl_limits_month(op->wall);
    pthread_mutex_lock(&op->sh->mu);
}

static void
op_end(struct op *op)
{
    pthread_mutex_unlock(&op->sh->mu);
}

/* The same for an entry already held (a hold or a ticket). */
static void
op_begin_entry(struct op *op, struct entry *e)
{
    op->sh = e->shard;
    op->l = op->sh->l;
    op->h = e->hash;
    op->now = op->l->mono_ms(op->l->clock_ud);
    op->wall = op->l->wall_ms(op->l->clock_ud);
    op->day = sl_limits_day(op->wall);
    op->month = sl_limits_month(op->wall);
    pthread_mutex_lock(&op->sh->mu);
    roll(e, op->day, op->month);
    if (op->now > e->used_ms)
        e->used_ms = op->now;
}

static void refuse(struct sl_limits_refusal *why, enum sl_limit limit, enum sl_errcode code,
                   int64_t retry_after_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void
refuse(struct sl_limits_refusal *why, enum sl_limit limit, enum sl_errcode code,
       int64_t retry_after_ms, const char *fmt, ...)
{
    why->limit = limit;
    why->code = code;
    why->retry_after_ms = retry_after_ms;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why->message, sizeof(why->message), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(why->message))
        snprintf(why->message + n, sizeof(why->message) - (size_t)n, " (limit %s)",
                 sl_limit_name(limit));
}

/* --- messages -------------------------------------------------------------------------- */

int
sl_limits_message(struct sl_limits *l, const char *user, const char *tier,
                  struct sl_limits_refusal *why)
{
    struct sl_limits_tier lim;
    sl_limits_of(l, tier, &lim);
    if (lim.messages_per_minute == 0)
        return 0;
    struct op op;
    op_begin(&op, l, &l->users, user);
    struct entry *e = get(op.sh, op.h, user, op.now, op.day, op.month);
    double cap = lim.messages_per_minute;
    if (!e->msg_started) {
        e->msg_started = true;
        e->msg_level = cap;
    } else if (op.now > e->msg_ms) {
        e->msg_level += (double)(op.now - e->msg_ms) * cap / 60000.0;
    }
    if (e->msg_level > cap)
        e->msg_level = cap;
    if (op.now > e->msg_ms)
        e->msg_ms = op.now;
    int rc = 0;
    if (e->msg_level >= 1) {
        e->msg_level -= 1;
    } else {
        rc = -1;
        refuse(why, SL_LIMIT_MESSAGES, SL_ERR_RATE_LIMITED,
               (int64_t)((1 - e->msg_level) * 60000.0 / cap) + 1,
               "too many messages: at most %u a minute; slow down", lim.messages_per_minute);
    }
    place(op.sh, e);
    op_end(&op);
    return rc;
}

/* --- connections ------------------------------------------------------------------------ */

static int
hold_begin(struct sl_limits *l, struct table *t, const char *key, unsigned max, enum sl_limit limit,
           const char *what, struct sl_limits_hold **hold, struct sl_limits_refusal *why)
{
    *hold = NULL;
    if (max == 0)
        return 0;
    struct op op;
    op_begin(&op, l, t, key);
    struct entry *e = get(op.sh, op.h, key, op.now, op.day, op.month);
    int rc = 0;
    if (e->conns >= max) {
        rc = -1;
        refuse(why, limit, SL_ERR_RATE_LIMITED, SL_LIMITS_HELD_RETRY_MS,
               "too many connections: at most %u at once %s", max, what);
    } else {
        e->conns++;
        *hold = (struct sl_limits_hold *)(void *)e;
    }
    place(op.sh, e);
    op_end(&op);
    return rc;
}

int
sl_limits_conn_begin(struct sl_limits *l, const char *user, const char *tier,
                     struct sl_limits_hold **hold, struct sl_limits_refusal *why)
{
    struct sl_limits_tier lim;
    sl_limits_of(l, tier, &lim);
    return hold_begin(l, &l->users, user, lim.max_connections, SL_LIMIT_CONNECTIONS_USER,
                      "for this user", hold, why);
}

int
sl_limits_ip_begin(struct sl_limits *l, const char *ip, struct sl_limits_hold **hold,
                   struct sl_limits_refusal *why)
{
    return hold_begin(l, &l->addrs, ip, l->cfg->limits.max_connections_per_ip,
                      SL_LIMIT_CONNECTIONS_IP, "from this address", hold, why);
}

void
sl_limits_conn_end(struct sl_limits_hold *hold)
{
    if (hold == NULL)
        return;
    struct entry *e = (struct entry *)(void *)hold;
    struct op op;
    op_begin_entry(&op, e);
    sl_assert(e->conns > 0);
    e->conns--;
    place(op.sh, e);
    op_end(&op);
}

int
sl_limits_ip_key(const char *peer, char *out, size_t n)
{
    char host[64];
    const char *colon = strrchr(peer, ':');
    size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
    if (n == 0)
        return -1;
    if (len >= sizeof(host)) {
        snprintf(out, n, "%.*s", (int)len, peer);
        return -1;
    }
    memcpy(host, peer, len);
    host[len] = '\0';
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) {
        snprintf(out, n, "%s", host);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6) != 1) {
        snprintf(out, n, "%s", host);
        return -1;
    }
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    char text[INET6_ADDRSTRLEN];
    if (memcmp(a6.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
        memcpy(&a4, a6.s6_addr + 12, 4);
        inet_ntop(AF_INET, &a4, text, sizeof(text));
        snprintf(out, n, "%s", text);
        return 0;
    }
    memset(a6.s6_addr + 8, 0, 8);
    inet_ntop(AF_INET6, &a6, text, sizeof(text));
    snprintf(out, n, "%s/64", text);
    return 0;
}

/* --- the token window ------------------------------------------------------------------ */

static size_t
slot_ix(int64_t slot)
{
    return (size_t)(((slot % NSLOTS) + NSLOTS) % NSLOTS);
}

static void
tok_advance(struct entry *e, uint64_t now)
{
    int64_t slot = (int64_t)(now / SLOT_MS);
    if (slot <= e->tok_slot)
        return;
    if (slot - e->tok_slot >= NSLOTS)
        memset(e->tok, 0, sizeof(e->tok));
    else
        for (int64_t s = e->tok_slot + 1; s <= slot; s++)
            e->tok[slot_ix(s)] = 0;
    e->tok_slot = slot;
}

static uint64_t
tok_sum(const struct entry *e)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < NSLOTS; i++)
        sum += e->tok[i];
    return sum;
}

/* Whether `add` more tokens fit the window: it is empty, or stays within the limit. */
static bool
tok_fits(uint64_t sum, uint64_t add, uint64_t limit)
{
    return sum == 0 || (sum < limit && sum + add <= limit);
}

/* Milliseconds until enough of the window has slid out for tok_fits(). */
static int64_t
tok_wait(const struct entry *e, uint64_t now, uint64_t add, uint64_t limit)
{
    uint64_t sum = tok_sum(e);
    for (int64_t k = 1; k <= NSLOTS; k++) {
        sum -= e->tok[slot_ix(e->tok_slot - NSLOTS + k)];
        if (tok_fits(sum, add, limit))
            return (e->tok_slot + k) * SLOT_MS - (int64_t)now;
    }
    return (e->tok_slot + NSLOTS) * SLOT_MS - (int64_t)now;
}

static void
tok_add(struct entry *e, uint64_t n)
{
    uint32_t *s = &e->tok[slot_ix(e->tok_slot)];
    *s = n > UINT32_MAX - *s ? UINT32_MAX : *s + (uint32_t)n;
}

/* Takes back n tokens counted too many, newest slot first. */
static void
tok_sub(struct entry *e, uint64_t n)
{
    for (int64_t k = 0; k < NSLOTS && n > 0; k++) {
        uint32_t *s = &e->tok[slot_ix(e->tok_slot - k)];
        uint64_t take = n < *s ? n : *s;
        *s -= (uint32_t)take;
        n -= take;
    }
}

/* --- budgets ----------------------------------------------------------------------------- */

/* What is left of the tighter budget, and which one it is. */
static double
budget_left(const struct entry *e, double per_day, double per_month, enum sl_limit *which)
{
    double left = INFINITY;
    *which = SL_LIMIT_BUDGET_DAY;
    if (per_day > 0)
        left = per_day - e->day_usd;
    if (per_month > 0 && per_month - e->month_usd < left) {
        left = per_month - e->month_usd;
        *which = SL_LIMIT_BUDGET_MONTH;
    }
    return left;
}

static void
budget_refusal(struct sl_limits_refusal *why, enum sl_limit which, int64_t wall, double budget,
               const char *what)
{
    bool day = which == SL_LIMIT_BUDGET_DAY;
    int64_t until = day ? sl_limits_next_day_ms(wall) : sl_limits_next_month_ms(wall);
    refuse(why, which, SL_ERR_BUDGET_EXCEEDED, until - wall,
           "%s the %s budget of $%.4g; it starts again at the next UTC %s", what,
           day ? "daily" : "monthly", budget, day ? "day" : "month");
}

/* --- streams ----------------------------------------------------------------------------- */

int
sl_limits_stream_begin(struct sl_limits *l, const char *user, const char *tier,
                       uint64_t input_tokens, double input_usd, struct sl_limits_ticket **ticket,
                       struct sl_limits_refusal *why)
{
    struct sl_limits_tier lim;
    sl_limits_of(l, tier, &lim);
    *ticket = NULL;
    bool budgeted = has_budget(&lim);
    if (lim.max_streams == 0 && lim.tokens_per_minute == 0 && !budgeted)
        return 0;
    if (!(input_usd >= 0) || isinf(input_usd))
        input_usd = 0;

    struct op op;
    op_begin(&op, l, &l->users, user);
    struct entry *e = get(op.sh, op.h, user, op.now, op.day, op.month);
    int rc = -1;
    double grant = INFINITY;
    if (lim.max_streams > 0 && e->streams >= lim.max_streams) {
        refuse(why, SL_LIMIT_STREAMS, SL_ERR_RATE_LIMITED, SL_LIMITS_HELD_RETRY_MS,
               "too many streams: at most %u at once for this user", lim.max_streams);
        goto out;
    }
    if (lim.tokens_per_minute > 0) {
        tok_advance(e, op.now);
        uint64_t sum = tok_sum(e);
        if (!tok_fits(sum, input_tokens, lim.tokens_per_minute)) {
            refuse(why, SL_LIMIT_TOKENS, SL_ERR_RATE_LIMITED,
                   tok_wait(e, op.now, input_tokens, lim.tokens_per_minute),
                   "too many tokens: at most %u a minute for this user", lim.tokens_per_minute);
            goto out;
        }
    }
    if (budgeted) {
        if (lim.usd_per_day > 0 && e->day_usd >= lim.usd_per_day) {
            budget_refusal(why, SL_LIMIT_BUDGET_DAY, op.wall, lim.usd_per_day, "spent");
            goto out;
        }
        if (lim.usd_per_month > 0 && e->month_usd >= lim.usd_per_month) {
            budget_refusal(why, SL_LIMIT_BUDGET_MONTH, op.wall, lim.usd_per_month, "spent");
            goto out;
        }
        enum sl_limit which;
        double raw = budget_left(e, lim.usd_per_day, lim.usd_per_month, &which);
        double budget = which == SL_LIMIT_BUDGET_DAY ? lim.usd_per_day : lim.usd_per_month;
        double left = raw - e->reserved_usd;
        if (raw < MIN_GRANT_USD) {
            budget_refusal(why, which, op.wall, budget, "spent");
            goto out;
        }
        if (input_usd > raw) {
            budget_refusal(why, which, op.wall, budget, "the input would exceed what is left of");
            goto out;
        }
        if (left < MIN_GRANT_USD || input_usd > left) {
            /* What is left is promised to the identity's running streams, until they end. */
            refuse(why, which, SL_ERR_BUDGET_EXCEEDED, SL_LIMITS_HELD_RETRY_MS,
                   "your running streams hold what is left of the %s budget of $%.4g; retry when "
                   "one ends",
                   which == SL_LIMIT_BUDGET_DAY ? "daily" : "monthly", budget);
            goto out;
        }
        grant = left - input_usd < MIN_GRANT_USD ? left : input_usd + (left - input_usd) / 2;
    }

    struct sl_limits_ticket *t = sl_calloc(1, sizeof(*t));
    t->e = e;
    t->budgeted = budgeted;
    t->allowance = grant;
    t->usd_per_day = lim.usd_per_day;
    t->usd_per_month = lim.usd_per_month;
    if (lim.tokens_per_minute > 0) {
        t->count_tokens = true;
        t->tokens_counted = input_tokens;
        tok_add(e, input_tokens);
    }
    if (budgeted)
        e->reserved_usd += grant;
    e->streams++;
    *ticket = t;
    rc = 0;
out:
    place(op.sh, e);
    op_end(&op);
    return rc;
}

bool
sl_limits_stream_spend(struct sl_limits_ticket *t, double cost_usd, struct sl_limits_refusal *why)
{
    /* The fast path: no lock. NaN compares false and passes: a bad number never stops. */
    if (t == NULL || !(cost_usd > t->allowance))
        return true;
    struct entry *e = t->e;
    struct op op;
    op_begin_entry(&op, e);
    enum sl_limit which;
    double left =
        budget_left(e, t->usd_per_day, t->usd_per_month, &which) - (e->reserved_usd - t->allowance);
    bool ok = cost_usd <= left;
    if (ok) {
        double grant = left - cost_usd < MIN_GRANT_USD ? left : cost_usd + (left - cost_usd) / 2;
        e->reserved_usd += grant - t->allowance;
        t->allowance = grant;
    } else {
        budget_refusal(why, which, op.wall,
                       which == SL_LIMIT_BUDGET_DAY ? t->usd_per_day : t->usd_per_month,
                       "this answer reached");
    }
    op_end(&op);
    return ok;
}

void
sl_limits_stream_end(struct sl_limits_ticket *t, uint64_t tokens, double cost_usd)
{
    if (t == NULL)
        return;
    struct entry *e = t->e;
    struct op op;
    op_begin_entry(&op, e);
    sl_assert(e->streams > 0);
    e->streams--;
    if (t->count_tokens) {
        tok_advance(e, op.now);
        if (tokens > t->tokens_counted)
            tok_add(e, tokens - t->tokens_counted);
        else
            tok_sub(e, t->tokens_counted - tokens);
    }
    if (t->budgeted) {
        e->reserved_usd -= t->allowance;
        /* Sums of doubles drift: with no stream left, nothing is reserved. */
        if (e->streams == 0 || e->reserved_usd < 0)
            e->reserved_usd = 0;
        if (cost_usd > 0 && isfinite(cost_usd)) {
            e->day_usd = fmin(e->day_usd + cost_usd, SPEND_MAX_USD);
            e->month_usd = fmin(e->month_usd + cost_usd, SPEND_MAX_USD);
            atomic_store(&op.l->dirty, true);
        }
    }
    place(op.sh, e);
    op_end(&op);
    free(t);
}

/* --- persistence ------------------------------------------------------------------------- */

void
sl_budget_recs_free(struct sl_budget_rec *recs, size_t n)
{
    if (recs == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(recs[i].user);
    free(recs);
}

/* Every identity's spend of the current day and month. */
static void
snapshot(struct sl_limits *l, struct sl_budget_rec **out, size_t *nout)
{
    int64_t wall = l->wall_ms(l->clock_ud);
    int64_t day = sl_limits_day(wall), month = sl_limits_month(wall);
    struct sl_budget_rec *recs = NULL;
    size_t n = 0, cap = 0;
    for (unsigned i = 0; i < l->users.nshards; i++) {
        struct shard *sh = &l->users.shards[i];
        pthread_mutex_lock(&sh->mu);
        for (size_t b = 0; b < sh->nbuckets; b++) {
            for (struct entry *e = sh->buckets[b]; e; e = e->hnext) {
                roll(e, day, month);
                if (!has_spend(e))
                    continue;
                if (n == cap) {
                    cap = cap ? cap * 2 : 64;
                    recs = sl_realloc(recs, cap * sizeof(*recs));
                }
                recs[n++] = (struct sl_budget_rec){.user = sl_strdup(e->key),
                                                   .day = e->day,
                                                   .day_usd = e->day_usd,
                                                   .month = e->month,
                                                   .month_usd = e->month_usd};
            }
        }
        pthread_mutex_unlock(&sh->mu);
    }
    *out = recs;
    *nout = n;
}

static int
save(struct sl_limits *l, char *err, size_t errlen)
{
    struct sl_budget_rec *recs;
    size_t n;
    snapshot(l, &recs, &n);
    int rc = l->store->save(l->store, recs, n, err, errlen);
    sl_budget_recs_free(recs, n);
    return rc;
}

/* Takes the stored spend in: this month's records, the day's part only if it is today. */
static void
restore(struct sl_limits *l, const struct sl_budget_rec *recs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct sl_budget_rec *r = &recs[i];
        struct op op;
        op_begin(&op, l, &l->users, r->user);
        if (r->month == op.month && (r->month_usd > 0 || r->day_usd > 0)) {
            struct entry *e = get(op.sh, op.h, r->user, op.now, op.day, op.month);
            /* A user twice in the file: the larger figure, the safe side. */
            if (r->day == op.day && r->day_usd > e->day_usd)
                e->day_usd = r->day_usd;
            if (r->month_usd > e->month_usd)
                e->month_usd = r->month_usd;
            place(op.sh, e);
        }
        op_end(&op);
    }
}

static int
load(struct sl_limits *l, char *err, size_t errlen)
{
    struct sl_budget_rec *recs = NULL;
    size_t n = 0;
    char why[512] = "";
    int rc = l->store->load(l->store, &recs, &n, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, errlen, "budgets.state_file: %s", why);
        return -1;
    }
    if (rc > 0) {
        sl_log_msg(SL_LOG_ERROR, "budgets.corrupt",
                   "%s; spend starts from zero for this day and month", why);
    } else {
        restore(l, recs, n);
        sl_budget_recs_free(recs, n);
    }
    /* Written back at once: a store that cannot be written is found now, not at midnight. */
    if (save(l, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "budgets.state_file: %s", why);
        return -1;
    }
    return 0;
}

/* --- the object -------------------------------------------------------------------------- */

struct sl_limits *
sl_limits_new(const struct sl_config *cfg, struct sl_limits_store *store,
              const struct sl_limits_opts *opts, char *err, size_t errlen)
{
    struct sl_limits *l = sl_calloc(1, sizeof(*l));
    l->cfg = cfg;
    l->store = store;
    l->mono_ms = opts && opts->mono_ms ? opts->mono_ms : default_mono;
    l->wall_ms = opts && opts->wall_ms ? opts->wall_ms : default_wall;
    l->clock_ud = opts ? opts->clock_ud : NULL;
    l->global = (struct sl_limits_tier){
        .messages_per_minute = cfg->limits.messages_per_minute,
        .max_streams = cfg->limits.max_streams_per_user,
        .max_connections = cfg->limits.max_connections_per_user,
        .tokens_per_minute = cfg->limits.tokens_per_minute,
        .usd_per_day = cfg->budgets.usd_per_day,
        .usd_per_month = cfg->budgets.usd_per_month,
    };
    l->budgeted = has_budget(&l->global);
    l->ntiers = cfg->limits.ntiers;
    l->tiers = sl_calloc(l->ntiers ? l->ntiers : 1, sizeof(*l->tiers));
    for (size_t i = 0; i < l->ntiers; i++) {
        const struct sl_config_tier *t = &cfg->limits.tiers[i];
        l->tiers[i] = (struct sl_limits_tier){
            .messages_per_minute = pick(t->messages_per_minute, l->global.messages_per_minute),
            .max_streams = pick(t->max_streams_per_user, l->global.max_streams),
            .max_connections = pick(t->max_connections_per_user, l->global.max_connections),
            .tokens_per_minute = pick(t->tokens_per_minute, l->global.tokens_per_minute),
            .usd_per_day = pick_usd(t->budget_usd_per_day, l->global.usd_per_day),
            .usd_per_month = pick_usd(t->budget_usd_per_month, l->global.usd_per_month),
        };
        l->budgeted = l->budgeted || has_budget(&l->tiers[i]);
    }
    sl_random(&l->seed, sizeof(l->seed));
    unsigned nshards = opts && opts->shards ? opts->shards : DEFAULT_SHARDS;
    sl_assert((nshards & (nshards - 1)) == 0);
    size_t cap = cfg->limits.max_identities ? cfg->limits.max_identities : 1;
    table_init(&l->users, l, nshards, cap, false);
    table_init(&l->addrs, l, nshards, cap, true);
    pthread_mutex_init(&l->tick_mu, NULL);
    l->swept_day = sl_limits_day(l->wall_ms(l->clock_ud));
    if (l->budgeted && l->store != NULL && load(l, err, errlen) != 0) {
        sl_limits_free(l);
        return NULL;
    }
    return l;
}

void
sl_limits_free(struct sl_limits *l)
{
    if (l == NULL)
        return;
    table_cleanup(&l->users);
    table_cleanup(&l->addrs);
    pthread_mutex_destroy(&l->tick_mu);
    if (l->store)
        l->store->free(l->store);
    free(l->tiers);
    free(l);
}

/* --- upkeep ------------------------------------------------------------------------------ */

static void
sweep(struct table *t, uint64_t now, int64_t day, int64_t month, bool new_day)
{
    for (unsigned i = 0; i < t->nshards; i++) {
        struct shard *sh = &t->shards[i];
        pthread_mutex_lock(&sh->mu);
        if (new_day) {
            /* Spend of a past day or month is gone: such entries become plain idle ones. */
            struct sl_list *pos, *tmp;
            sl_list_foreach_safe(pos, tmp, &sh->spent)
            {
                struct entry *e = entry_of(pos);
                roll(e, day, month);
                if (!has_spend(e))
                    sl_list_move_back(&sh->fresh, &e->link);
            }
        }
        expire(sh, now, SIZE_MAX);
        pthread_mutex_unlock(&sh->mu);
    }
}

void
sl_limits_tick(struct sl_limits *l)
{
    pthread_mutex_lock(&l->tick_mu);
    uint64_t now = l->mono_ms(l->clock_ud);
    int64_t wall = l->wall_ms(l->clock_ud);
    int64_t day = sl_limits_day(wall), month = sl_limits_month(wall);
    bool new_day = day != l->swept_day;
    l->swept_day = day;
    sweep(&l->users, now, day, month, new_day);
    sweep(&l->addrs, now, day, month, false);

    unsigned long evicted = atomic_load(&l->evicted_spend);
    if (evicted != l->evicted_reported) {
        sl_log_msg(SL_LOG_WARN, "limits.cap",
                   "%lu identities with spend this month were forgotten at "
                   "limits.max_identities (%u): they start the day and month from zero; raise it",
                   evicted - l->evicted_reported, l->cfg->limits.max_identities);
        l->evicted_reported = evicted;
    }

    if (l->store != NULL && l->budgeted && atomic_exchange(&l->dirty, false)) {
        char err[512];
        if (save(l, err, sizeof(err)) != 0) {
            atomic_store(&l->dirty, true);
            if (!l->save_failing || now - l->save_logged_ms >= SAVE_LOG_MS) {
                sl_log_msg(SL_LOG_ERROR, "budgets.save_failed", "%s (retrying)", err);
                l->save_logged_ms = now;
            }
            l->save_failing = true;
        } else if (l->save_failing) {
            sl_log_msg(SL_LOG_INFO, "budgets.saved", "the spend is saved again");
            l->save_failing = false;
        }
    }
    pthread_mutex_unlock(&l->tick_mu);
}

int
sl_limits_flush(struct sl_limits *l, char *err, size_t errlen)
{
    int rc = 0;
    pthread_mutex_lock(&l->tick_mu);
    if (l->store != NULL && l->budgeted && atomic_exchange(&l->dirty, false)) {
        rc = save(l, err, errlen);
        if (rc != 0)
            atomic_store(&l->dirty, true);
    }
    pthread_mutex_unlock(&l->tick_mu);
    return rc;
}

/* --- inspection -------------------------------------------------------------------------- */

void
sl_limits_usage(struct sl_limits *l, const char *user, struct sl_limits_usage *out)
{
    memset(out, 0, sizeof(*out));
    struct op op;
    op_begin(&op, l, &l->users, user);
    struct entry *e = find(op.sh, op.h, user);
    if (e != NULL) {
        roll(e, op.day, op.month);
        tok_advance(e, op.now);
        out->known = true;
        out->streams = e->streams;
        out->connections = e->conns;
        out->tokens_last_minute = tok_sum(e);
        out->day_usd = e->day_usd;
        out->month_usd = e->month_usd;
        out->reserved_usd = e->reserved_usd;
    }
    op_end(&op);
}

size_t
sl_limits_count(struct sl_limits *l, bool addresses)
{
    struct table *t = addresses ? &l->addrs : &l->users;
    size_t n = 0;
    for (unsigned i = 0; i < t->nshards; i++) {
        pthread_mutex_lock(&t->shards[i].mu);
        n += t->shards[i].count;
        pthread_mutex_unlock(&t->shards[i].mu);
    }
    return n;
}
