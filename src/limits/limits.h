/*
 * Limits per identity, shared by every worker: messages per minute, concurrent streams,
 * connections per identity and per client address, tokens per minute, and spend budgets
 * per UTC day and month.
 *
 * An identity is a string: the authenticated user ("alice", an API key's name) or, for
 * anonymous clients, "anon:<address>". Whatever the connection, protocol or worker, the
 * same identity meets the same counters: a reconnect gets no fresh budget. A tier (a
 * JWT's `sluice_tier` claim, an API key's `tier`) picks the values from limits.tiers;
 * what a tier leaves out, and an unknown or empty tier, takes the global values.
 *
 * Threads: one struct sl_limits serves the whole process. Every call may come from any
 * thread at any time; the state is split in shards by a keyed hash of the identity, one
 * mutex each, held for a few hundred nanoseconds. Calls happen per message and per stream
 * start and end, never per token: the per-token budget check (sl_limits_stream_spend)
 * takes no lock while the stream stays within the allowance it was given.
 *
 * Memory: an identity costs one entry (about 200 bytes and its name). Entries that hold
 * nothing expire once forgetting them changes nothing (a minute after their last use,
 * when their message bucket is full again and their token window empty), unless they have
 * spent money in the current day or month. At most limits.max_identities entries are
 * kept per table (identities, addresses), split evenly over the shards: a shard at its
 * share forgets its idle-longest entry that has spent nothing, else its idle-longest entry
 * with spend (whose identity then starts the day and month from zero: logged), never one
 * that holds a connection or a stream. Entries that hold something are bounded by the
 * connections and streams themselves (limits.max_connections), so the table may pass its
 * cap by those, never by identities that merely sent a message.
 *
 * Budgets: spend is tracked per identity that has a budget (day and month, UTC), in USD
 * from the models' prices. A stream receives, at its start, an allowance: half of what is
 * left of the budget once the allowances of the identity's running streams are set aside
 * (at least the estimated cost of its input). It checks its own running cost against it
 * per token, without a lock (sl_limits_stream_spend); past it, it asks for more under the
 * lock, and is refused (and must stop with BUDGET_EXCEEDED) only when its cost so far
 * exceeds everything that is left. So the allowances of one identity's streams never add
 * up to more than its remaining budget, and the overshoot is bounded by what the running
 * cost does not see: the delta that crosses, and the difference between the estimates
 * (input: about 4 characters a token; output: one token per delta) and the usage the
 * provider reports at the end, for each of the identity's running streams. The price of
 * that safety: a stream may be stopped while a sibling holds an allowance it will not use.
 *
 * Persistence: the spend is kept by a store (struct sl_limits_store; a JSON file today,
 * statefile.h, Redis in cluster mode later), loaded at start and saved by
 * sl_limits_tick() when it changed and at shutdown (sl_limits_flush()).
 */
#ifndef SL_LIMITS_LIMITS_H
#define SL_LIMITS_LIMITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/codes.h"

struct sl_config;
struct sl_limits;
struct sl_limits_hold;
struct sl_limits_ticket;

/* The retry hint for limits that free up when something ends (streams, connections). */
#define SL_LIMITS_HELD_RETRY_MS 1000

/* Why a request was refused: for the client's error, the metric's label and the logs. */
struct sl_limits_refusal {
    enum sl_limit limit;
    enum sl_errcode code;   /* SL_ERR_RATE_LIMITED, or SL_ERR_BUDGET_EXCEEDED */
    int64_t retry_after_ms; /* when a retry may pass: exact for messages, tokens, budgets;
                               a hint for streams and connections */
    char message[192];      /* client-safe, names the limit and its value */
};

/* The limits of a tier once the global values filled what it left out; 0: no limit. */
struct sl_limits_tier {
    unsigned messages_per_minute;
    unsigned max_streams;
    unsigned max_connections;
    unsigned tokens_per_minute;
    double usd_per_day;
    double usd_per_month;
};

/* --- the store of spend ------------------------------------------------------------ */

/* One identity's spend. Days and months are UTC, counted from 1970-01-01 and 1970-01. */
struct sl_budget_rec {
    char *user;
    int64_t day;
    double day_usd;
    int64_t month;
    double month_usd;
};

void sl_budget_recs_free(struct sl_budget_rec *recs, size_t n);

/*
 * Where the spend survives a restart. Both calls run on whichever thread calls
 * sl_limits_new(), sl_limits_tick() or sl_limits_flush(), never two at once.
 */
struct sl_limits_store {
    /*
     * Reads every record. Returns 0 with *recs (freed by the caller with
     * sl_budget_recs_free) and *n (nothing stored yet: 0 records); 1 when what is stored is
     * unusable and was set aside (err says why and where): start from nothing; -1 when the
     * store cannot be read at all (err says why): sluice must not start.
     */
    int (*load)(struct sl_limits_store *st, struct sl_budget_rec **recs, size_t *n, char *err,
                size_t errlen);
    /* Replaces what is stored by recs[0..n). Returns 0, or -1 with err (nothing changed). */
    int (*save)(struct sl_limits_store *st, const struct sl_budget_rec *recs, size_t n, char *err,
                size_t errlen);
    void (*free)(struct sl_limits_store *st);
};

/* --- the object ------------------------------------------------------------------------ */

/* For tests: the shard count and the clocks. */
struct sl_limits_opts {
    unsigned shards;               /* a power of two; 0: 64 */
    uint64_t (*mono_ms)(void *ud); /* buckets and windows; NULL: sl_clock_ms */
    int64_t (*wall_ms)(void *ud);  /* UTC days and months; NULL: sl_wall_ms */
    void *clock_ud;
};

/*
 * Builds the limits from cfg (borrowed: it must outlive the result). store (may be NULL:
 * spend is not kept) is taken over, freed by sl_limits_free() or here on failure; it is
 * used only when some budget is set (budgets.*, or a tier's). Loads the stored spend and
 * saves it back at once, so that a store that cannot be written is found at start.
 * Returns NULL with err filled when the store cannot be read or written; a store whose
 * content is unusable is reported (logged) and the spend starts from zero. opts may be NULL.
 */
struct sl_limits *sl_limits_new(const struct sl_config *cfg, struct sl_limits_store *store,
                                const struct sl_limits_opts *opts, char *err, size_t errlen);

/* Frees everything; every hold and ticket must have been ended. Saves nothing. */
void sl_limits_free(struct sl_limits *l);

/* The limits of a tier (NULL or "": the global ones; an unknown name: the global ones). */
void sl_limits_of(const struct sl_limits *l, const char *tier, struct sl_limits_tier *out);

/* --- messages ------------------------------------------------------------------------- */

/*
 * A client message from an authenticated identity: takes one token of its bucket
 * (messages_per_minute, refilled continuously, a minute's worth at most). Returns 0, or -1
 * with *why (SL_LIMIT_MESSAGES, retry_after_ms: when the next token is there).
 */
int sl_limits_message(struct sl_limits *l, const char *user, const char *tier,
                      struct sl_limits_refusal *why);

/* --- connections -------------------------------------------------------------------- */

/*
 * A session authenticated as user: counts one connection of the identity. Returns 0 with
 * *hold (NULL when nothing is counted: no limit for this tier), which the caller ends
 * exactly once with sl_limits_conn_end() when the connection closes; or -1 with *why
 * (SL_LIMIT_CONNECTIONS_USER) and nothing held.
 */
int sl_limits_conn_begin(struct sl_limits *l, const char *user, const char *tier,
                         struct sl_limits_hold **hold, struct sl_limits_refusal *why);

/*
 * A TCP connection accepted from address ip (a key from sl_limits_ip_key()): the same for
 * limits.max_connections_per_ip (SL_LIMIT_CONNECTIONS_IP).
 */
int sl_limits_ip_begin(struct sl_limits *l, const char *ip, struct sl_limits_hold **hold,
                       struct sl_limits_refusal *why);

/* Ends a hold of either kind. NULL does nothing. */
void sl_limits_conn_end(struct sl_limits_hold *hold);

/*
 * The address key of a peer given as "host:port" (sl_conn_peer's form; IPv6 without
 * brackets): the IPv4 address, or the IPv6 /64 prefix ("2001:db8:1:2::/64"), since one
 * client commonly owns a whole /64; an IPv4-mapped IPv6 address counts as IPv4. Writes at
 * most n bytes (64 are always enough). Returns 0, or -1 when host is not an address
 * (out is then the host as given, cut to n): such a peer is best not counted at all.
 */
int sl_limits_ip_key(const char *peer, char *out, size_t n);

/* --- streams ------------------------------------------------------------------------ */

/*
 * Admission of a stream for user: checks, in this order, max_streams, tokens_per_minute
 * (tokens of the last minute, plus input_tokens unless the window is empty, against the
 * limit) and the budgets (already spent at least the day's or the month's: refused; an
 * input whose estimated cost input_usd exceeds what is left once the running streams'
 * allowances are set aside: refused). Call it before the provider is called.
 *
 * Returns 0 with *ticket, or -1 with *why (SL_LIMIT_STREAMS or SL_LIMIT_TOKENS with
 * RATE_LIMITED; SL_LIMIT_BUDGET_DAY or _MONTH with BUDGET_EXCEEDED and retry_after_ms
 * until that budget starts again) and no ticket. *ticket is NULL when the tier has no
 * limit to keep (nothing to end); otherwise the stream owns it and ends it exactly once,
 * whatever the path (done, error, cancel, release, shutdown), with sl_limits_stream_end().
 * input_tokens is counted in the token window at once; the rest at the end.
 */
int sl_limits_stream_begin(struct sl_limits *l, const char *user, const char *tier,
                           uint64_t input_tokens, double input_usd,
                           struct sl_limits_ticket **ticket, struct sl_limits_refusal *why);

/*
 * The stream's running cost (input and output so far, USD) after each token. Returns true
 * if it may go on; false, with *why (BUDGET_EXCEEDED, the budget that ran out), when its
 * cost exceeds everything left of the budget: the stream must stop now and end the ticket.
 * No lock while cost_usd stays within the allowance; above it, takes the shard's lock to
 * get more (a few times in a stream's life). ticket NULL: true. Owner thread only.
 */
bool sl_limits_stream_spend(struct sl_limits_ticket *ticket, double cost_usd,
                            struct sl_limits_refusal *why);

/*
 * The stream has ended: releases its place among the identity's streams and its
 * allowance, counts tokens (input + output, final) in the token window (less the input
 * counted at the start), and adds cost_usd (final; NaN, infinite or negative count as 0)
 * to the identity's spend. Frees the ticket. NULL does nothing.
 */
void sl_limits_stream_end(struct sl_limits_ticket *ticket, uint64_t tokens, double cost_usd);

/* --- upkeep ------------------------------------------------------------------------- */

/*
 * Every few seconds, from any one thread (src/main.c's loop): forgets expired entries,
 * starts the new day or month, saves the spend if it changed (a failure is logged, and
 * retried next time), logs spend forgotten at the cap. Takes each shard's lock in turn.
 */
void sl_limits_tick(struct sl_limits *l);

/* Saves the spend now if it changed (at shutdown). Returns 0, or -1 with err. */
int sl_limits_flush(struct sl_limits *l, char *err, size_t errlen);

/* --- inspection (tests, logs) ------------------------------------------------------- */

struct sl_limits_usage {
    bool known; /* the identity has an entry */
    unsigned streams, connections;
    uint64_t tokens_last_minute;
    double day_usd, month_usd, reserved_usd;
};

void sl_limits_usage(struct sl_limits *l, const char *user, struct sl_limits_usage *out);

/* Entries held now: identities, addresses. */
size_t sl_limits_count(struct sl_limits *l, bool addresses);

/* Days since 1970-01-01 <-> civil date (proleptic Gregorian). */
void sl_limits_civil(int64_t day, int64_t *y, unsigned *m, unsigned *d);
int64_t sl_limits_days_from_civil(int64_t y, unsigned m, unsigned d);

/* UTC day and month numbers of a wall-clock time (month: (year - 1970) * 12 + month - 1),
 * and when the next ones begin (ms). */
int64_t sl_limits_day(int64_t wall_ms);
int64_t sl_limits_month(int64_t wall_ms);
int64_t sl_limits_next_day_ms(int64_t wall_ms);
int64_t sl_limits_next_month_ms(int64_t wall_ms);

#endif
