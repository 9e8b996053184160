/*
 * Throttling of authentication failures per client address.
 *
 * Without it an attacker may try API keys and JWTs as fast as the connection limits allow.
 * One struct sl_throttle serves the whole process (every worker thread, under one mutex:
 * it is touched once per authentication attempt, not per token). Per address it keeps a
 * token bucket of failures, with an escalating block:
 *
 *   - an address starts with `burst` tokens; each failure takes one, and one token comes
 *     back every `refill_ms`, up to `burst` again;
 *   - the failure that leaves less than one token blocks the address: for refill_ms the
 *     first time, then twice as long at each further block (refill_ms * 2^(strikes - 1)),
 *     at most max_block_ms; no token comes back during a block. While blocked,
 *     sl_throttle_check() refuses without verifying and says when to come back. After a
 *     block one attempt is allowed; if it fails, the next block is twice as long;
 *   - a success ends the escalation (strikes back to 0) but gives no token back: otherwise
 *     an attacker holding one valid key could interleave it with guesses for ever;
 *   - an address quiet for max_block_ms after its last failure, and after its last block
 *     ended, starts over with a full bucket.
 * With the defaults: 10 failures at once, then one after 6 s, 12 s, 24 s, ... up to one per
 * 15 minutes; 15 quiet minutes restore the 10.
 *
 * Addresses: an IPv4 address, or an IPv6 address by its /64 prefix (one host usually has a
 * whole /64 to pick from); an IPv4-mapped IPv6 address counts as the IPv4 one. Other
 * families (a Unix socket) are never throttled.
 *
 * Memory is bounded: a fixed table of `capacity` entries (about 64 bytes each), allocated
 * once. When it is full, the least recently used entry is evicted: an attacker with more
 * addresses than the table holds can make it forget some blocks, but cannot grow it. The
 * hash is keyed with a random seed, so chosen addresses cannot pile into one chain.
 *
 * Wiring (left to the session layer; nothing calls this module yet): the server makes one
 * throttle next to its struct sl_auth; before sl_auth_verify(), sl_throttle_check() with
 * the peer's address: on SL_AUTH_ETHROTTLED, answer AUTH_FAILED with its
 * sl_auth_strerror() text and the retry-after, without verifying; after the verdict,
 * sl_throttle_failure() or sl_throttle_success(). Times are a monotonic clock in ms
 * (sl_clock_ms(), or the loop's time), the same clock for every call.
 */
#ifndef SL_AUTH_THROTTLE_H
#define SL_AUTH_THROTTLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct sl_throttle_limits {
    unsigned burst;        /* failures allowed at once, >= 1 */
    uint64_t refill_ms;    /* one failure forgiven per this time, >= 1 */
    uint64_t max_block_ms; /* longest block, >= refill_ms */
    size_t capacity;       /* addresses remembered, >= 1 */
};

/* 10 failures, then one per 6 s doubling up to 15 minutes; 16384 addresses (about 1 MiB). */
#define SL_THROTTLE_DEFAULTS                                                                       \
    {                                                                                              \
        .burst = 10, .refill_ms = 6000, .max_block_ms = 15 * 60 * 1000, .capacity = 16384          \
    }

struct sl_throttle;

/* Allocates the table at once. lim NULL: SL_THROTTLE_DEFAULTS. Aborts on invalid limits. */
struct sl_throttle *sl_throttle_new(const struct sl_throttle_limits *lim);
void sl_throttle_free(struct sl_throttle *t);

/*
 * Before verifying a token from peer: 0 if an attempt is allowed, or SL_AUTH_ETHROTTLED
 * (auth.h) with *retry_after_ms (> 0) set to the time until the block ends. Changes
 * nothing (a refused attempt is not a failure). Thread-safe.
 */
int sl_throttle_check(struct sl_throttle *t, const struct sockaddr *peer, uint64_t now_ms,
                      uint64_t *retry_after_ms);

/* The token from peer was refused. Thread-safe. */
void sl_throttle_failure(struct sl_throttle *t, const struct sockaddr *peer, uint64_t now_ms);

/* The token from peer was accepted: the escalation ends (see above). Thread-safe. */
void sl_throttle_success(struct sl_throttle *t, const struct sockaddr *peer, uint64_t now_ms);

/*
 * sl_auth_verify() behind the throttle: a peer that failed too often is refused without
 * verifying (SL_AUTH_ETHROTTLED, *retry_after_ms set); otherwise the verdict is recorded.
 * t or peer NULL: no throttling. Returns what sl_auth_verify returns, with *reason set.
 */
struct sl_auth;
struct sl_identity;
int sl_auth_verify_throttled(const struct sl_auth *a, struct sl_throttle *t,
                             const struct sockaddr *peer, const char *token, size_t len,
                             struct sl_identity *id, const char **reason, uint64_t *retry_after_ms);

/* Addresses remembered now (at most capacity): for tests and metrics. */
size_t sl_throttle_size(struct sl_throttle *t);

#endif
