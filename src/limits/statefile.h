/*
 * The spend of every identity in a small JSON file (budgets.state_file): the store of
 * limits.h for a single node.
 *
 *   {"format":"sluice-budgets","version":1,"saved_at":"2025-06-01T12:00:05Z",
 *    "spend":[{"user":"alice","day":"2025-06-01","day_usd":0.25,
 *              "month":"2025-06","month_usd":3.5}, ...]}
 *
 * Days and months are UTC. Amounts are written with 17 significant digits, so that a
 * reload gives back the same doubles.
 *
 * Saving writes "<path>.tmp" next to the file, flushes it to disk, renames it over the
 * file (atomic on POSIX) and flushes the directory: a crash leaves the old file or the new
 * one, never a mix. The file is created with mode 0600 (it names users).
 *
 * Loading: no file is an empty state. A file that cannot be read (permissions, an I/O
 * error, a directory) fails: sluice does not start, since it could not save either. A
 * file whose content is not a valid state (truncated by hand, edited wrong, a disk
 * fault) is renamed "<path>.corrupt-<unix seconds>", kept for the operator, and reported;
 * sluice then starts from zero spend (the rename failing fails the load instead, so that
 * the next save cannot destroy the evidence).
 */
#ifndef SL_LIMITS_STATEFILE_H
#define SL_LIMITS_STATEFILE_H

#include <stddef.h>

#include "limits/limits.h"

/* A file larger than this is not a state file (about a million identities). */
#define SL_STATEFILE_MAX_BYTES (256u << 20)

/* The store for path (copied). Freed through its free op (by sl_limits_free). */
struct sl_limits_store *sl_statefile_new(const char *path);

/*
 * The file's text for recs[0..n), NUL-terminated; the caller frees it with free().
 * saved_at_ms is the wall-clock time written in "saved_at".
 */
char *sl_statefile_encode(const struct sl_budget_rec *recs, size_t n, int64_t saved_at_ms);

/*
 * Parses a file's text (len bytes, not necessarily NUL-terminated). Returns 0 with *recs
 * and *n (freed with sl_budget_recs_free), or -1 with a one-line reason in err (nothing
 * to free). Every field is checked: a user of 1 to 1024 bytes, valid dates, amounts that
 * are finite, non-negative numbers below 1e12.
 */
int sl_statefile_decode(const char *text, size_t len, struct sl_budget_rec **recs, size_t *n,
                        char *err, size_t errlen);

#endif
