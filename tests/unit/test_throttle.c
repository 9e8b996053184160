/*
 * Unit tests for src/auth/throttle: the bucket and its escalating blocks on an explicit
 * clock, what a success does and does not forgive, address keys (IPv4, IPv6 /64, mapped),
 * eviction in a full table, and two threads at once.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>
#include <sys/un.h>

#include "auth/auth.h"
#include "auth/throttle.h"

static struct sockaddr_storage
addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1, "%s", ip);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1, "%s", ip);
    }
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

/* 0 if allowed, else the retry-after (asserting it is positive). */
static uint64_t
blocked_for(struct sl_throttle *t, const struct sockaddr *sa, uint64_t now)
{
    uint64_t after = 0;
    int rc = sl_throttle_check(t, sa, now, &after);
    if (rc == 0)
        return 0;
    cr_assert_eq(rc, SL_AUTH_ETHROTTLED);
    cr_assert_gt(after, 0);
    return after;
}

static const struct sl_throttle_limits lim = {
    .burst = 3, .refill_ms = 1000, .max_block_ms = 8000, .capacity = 64};

Test(throttle, burst_then_escalating_blocks)
{
    struct sl_throttle *t = sl_throttle_new(&lim);
    struct sockaddr_storage a = addr("192.0.2.1");
    uint64_t now = 1000000;
    cr_assert_eq(blocked_for(t, SA(a), now), 0, "an unknown address is allowed");
    sl_throttle_failure(t, SA(a), now);
    sl_throttle_failure(t, SA(a), now);
    cr_assert_eq(blocked_for(t, SA(a), now), 0, "two of a burst of three");
    sl_throttle_failure(t, SA(a), now);
    cr_assert_eq(blocked_for(t, SA(a), now), 1000, "the third failure blocks for one refill");
    cr_assert_eq(blocked_for(t, SA(a), now + 999), 1);
    cr_assert_eq(blocked_for(t, SA(a), now + 1000), 0, "the block is over: one attempt");
    /* each further failure doubles the block, up to max_block_ms */
    uint64_t want[] = {2000, 4000, 8000, 8000, 8000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        now += blocked_for(t, SA(a), now);
        cr_assert_eq(blocked_for(t, SA(a), now), 0);
        sl_throttle_failure(t, SA(a), now);
        cr_assert_eq(blocked_for(t, SA(a), now), want[i], "block %zu", i);
    }
    /* other addresses are not affected */
    struct sockaddr_storage b = addr("192.0.2.2");
    cr_assert_eq(blocked_for(t, SA(b), now), 0);
    sl_throttle_free(t);
}

Test(throttle, a_success_ends_the_escalation_but_forgives_no_failure)
{
    struct sl_throttle *t = sl_throttle_new(&lim);
    struct sockaddr_storage a = addr("198.51.100.7");
    uint64_t now = 5000;
    for (int i = 0; i < 3; i++)
        sl_throttle_failure(t, SA(a), now);
    now += 1000;
    sl_throttle_failure(t, SA(a), now);
    cr_assert_eq(blocked_for(t, SA(a), now), 2000, "second block");
    now += 2000;
    sl_throttle_success(t, SA(a), now); /* a valid key, interleaved */
    cr_assert_eq(blocked_for(t, SA(a), now), 0);
    sl_throttle_failure(t, SA(a), now);
    cr_assert_eq(blocked_for(t, SA(a), now), 1000,
                 "no token given back (still blocked at once), but the escalation restarts");
    sl_throttle_free(t);
}

Test(throttle, a_quiet_address_starts_over_and_a_clean_success_frees_its_slot)
{
    struct sl_throttle *t = sl_throttle_new(&lim);
    struct sockaddr_storage a = addr("203.0.113.9");
    uint64_t now = 100;
    for (int i = 0; i < 5; i++) {
        now += blocked_for(t, SA(a), now);
        sl_throttle_failure(t, SA(a), now);
    }
    cr_assert_gt(blocked_for(t, SA(a), now), 1000);
    /* quiet for max_block_ms after the block ended: strikes forgotten, bucket full */
    now += blocked_for(t, SA(a), now) + lim.max_block_ms - 1;
    for (int i = 0; i < 3; i++)
        sl_throttle_failure(t, SA(a), now); /* the bucket refilled meanwhile */
    cr_assert_eq(blocked_for(t, SA(a), now), lim.max_block_ms, "one ms short: still escalated");
    now += blocked_for(t, SA(a), now) + lim.max_block_ms;
    cr_assert_eq(blocked_for(t, SA(a), now), 0);
    for (int i = 0; i < 3; i++)
        sl_throttle_failure(t, SA(a), now);
    cr_assert_eq(blocked_for(t, SA(a), now), 1000, "a first block again");
    cr_assert_eq(sl_throttle_size(t), 1);
    now += lim.refill_ms; /* the block */
    sl_throttle_success(t, SA(a), now);
    cr_assert_eq(sl_throttle_size(t), 1, "the failures are still remembered");
    now += 3 * lim.refill_ms; /* three tokens back: a full bucket */
    sl_throttle_success(t, SA(a), now);
    cr_assert_eq(sl_throttle_size(t), 0, "nothing left to remember");
    sl_throttle_free(t);
}

Test(throttle, addresses_are_keyed_by_ipv4_or_ipv6_slash_64)
{
    struct sl_throttle *t = sl_throttle_new(&lim);
    struct sockaddr_storage v6a = addr("2001:db8:1:2::1"), v6b = addr("2001:db8:1:2:ffff::9");
    struct sockaddr_storage v6other = addr("2001:db8:1:3::1");
    for (int i = 0; i < 3; i++)
        sl_throttle_failure(t, SA(v6a), 10);
    cr_assert_gt(blocked_for(t, SA(v6b), 10), 0, "the same /64");
    cr_assert_eq(blocked_for(t, SA(v6other), 10), 0, "another /64");

    struct sockaddr_storage v4 = addr("192.0.2.44"), mapped = addr("::ffff:192.0.2.44");
    for (int i = 0; i < 3; i++)
        sl_throttle_failure(t, SA(mapped), 10);
    cr_assert_gt(blocked_for(t, SA(v4), 10), 0, "an IPv4-mapped address is the IPv4 one");

    struct sockaddr_un un = {.sun_family = AF_UNIX};
    for (int i = 0; i < 10; i++)
        sl_throttle_failure(t, (const struct sockaddr *)&un, 10);
    cr_assert_eq(blocked_for(t, (const struct sockaddr *)&un, 10), 0, "never throttled");
    cr_assert_eq(blocked_for(t, NULL, 10), 0);
    cr_assert_eq(sl_throttle_size(t), 2);
    sl_throttle_free(t);
}

Test(throttle, a_full_table_evicts_the_least_recently_used)
{
    struct sl_throttle_limits small = lim;
    small.capacity = 4;
    struct sl_throttle *t = sl_throttle_new(&small);
    struct sockaddr_storage a[6];
    char ip[32];
    for (int i = 0; i < 6; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
        a[i] = addr(ip);
    }
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 3; k++)
            sl_throttle_failure(t, SA(a[i]), 100);
    cr_assert_eq(sl_throttle_size(t), 4);
    sl_throttle_failure(t, SA(a[0]), 101); /* a[0] is now the most recent, a[1] the oldest */
    sl_throttle_failure(t, SA(a[4]), 102);
    cr_assert_eq(sl_throttle_size(t), 4, "the table never grows");
    cr_assert_eq(blocked_for(t, SA(a[1]), 102), 0, "the least recently used was forgotten");
    for (int i = 0; i < 4; i++)
        if (i != 1)
            cr_assert_gt(blocked_for(t, SA(a[i]), 102), 0, "a[%d] kept", i);
    /* thousands of addresses later, still four entries */
    for (unsigned i = 0; i < 5000; i++) {
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        struct sockaddr_storage x = addr(ip);
        sl_throttle_failure(t, SA(x), 200 + i);
    }
    cr_assert_eq(sl_throttle_size(t), 4);
    sl_throttle_free(t);
}

struct hammer {
    struct sl_throttle *t;
    int id;
    unsigned checks_refused;
};

static void *
hammer_run(void *arg)
{
    struct hammer *h = arg;
    char ip[32];
    for (unsigned i = 0; i < 20000; i++) {
        /* a shared address and addresses of this thread's own, more than the table holds */
        if (i % 2 == 0)
            snprintf(ip, sizeof(ip), "192.0.2.200");
        else
            snprintf(ip, sizeof(ip), "10.%d.%u.%u", h->id, (i >> 8) & 255, i & 255);
        struct sockaddr_storage a = addr(ip);
        uint64_t after;
        if (sl_throttle_check(h->t, SA(a), i, &after) != 0)
            h->checks_refused++;
        if (i % 7 == 0)
            sl_throttle_success(h->t, SA(a), i);
        else
            sl_throttle_failure(h->t, SA(a), i);
    }
    return NULL;
}

Test(throttle, two_threads_at_once)
{
    struct sl_throttle_limits l = lim;
    l.capacity = 256;
    struct sl_throttle *t = sl_throttle_new(&l);
    struct hammer h[2] = {{t, 1, 0}, {t, 2, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, hammer_run, &h[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_leq(sl_throttle_size(t), 256);
    cr_assert_gt(h[0].checks_refused + h[1].checks_refused, 0, "the shared address got blocked");
    struct sockaddr_storage shared = addr("192.0.2.200");
    cr_assert_gt(blocked_for(t, SA(shared), 20000), 0);
    sl_throttle_free(t);
}
