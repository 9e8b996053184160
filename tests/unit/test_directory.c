/*
 * Unit tests of the process-wide stream directory (src/stream/directory.c): entries found by
 * (user, id, epoch) or by the newest run of (user, id), removed through the entry add
 * returned, across the shards' growth, with many entries of one (user, id) in one bucket.
 */
#include <criterion/criterion.h>
#include <stdio.h>

#include "stream/directory.h"

#define N 3000

static void
epoch_of(int i, char out[17])
{
    snprintf(out, 17, "e%015d", i);
}

/* One API key's streams, every one named "1": a single bucket chain of N entries. */
Test(directory, entries_of_one_key_removed_through_their_handles_in_any_order)
{
    struct sl_directory *d = sl_directory_new();
    static struct sl_direntry *h[N];
    char ep[17];
    for (int i = 0; i < N; i++) {
        epoch_of(i, ep);
        h[i] = sl_directory_add(d, "key:bench", "1", ep, (unsigned)(i % 4));
        cr_assert_not_null(h[i]);
    }
    /* Every one found by its epoch, the newest without one. */
    for (int i = 0; i < N; i += 97) {
        epoch_of(i, ep);
        cr_assert_eq(sl_directory_find(d, "key:bench", "1", ep), i % 4);
    }
    cr_assert_eq(sl_directory_find(d, "key:bench", "1", NULL), (N - 1) % 4);
    /* Removed in a scattered order: odd ones first, from both ends of the chain. */
    for (int i = 1; i < N; i += 2)
        sl_directory_remove_entry(d, h[i]);
    for (int i = 0; i < N; i++) {
        epoch_of(i, ep);
        cr_assert_eq(sl_directory_find(d, "key:bench", "1", ep), i % 2 ? -1 : i % 4, "entry %d", i);
    }
    cr_assert_eq(sl_directory_find(d, "key:bench", "1", NULL), (N - 2) % 4);
    /* The rest, newest first: the chain's head each time. */
    for (int i = N - 2; i >= 0; i -= 2)
        sl_directory_remove_entry(d, h[i]);
    cr_assert_eq(sl_directory_find(d, "key:bench", "1", NULL), -1);
    sl_directory_free(d);
}

/* Many keys: the shards grow while entries are added, and handles stay valid through it. */
Test(directory, handles_stay_valid_across_growth)
{
    struct sl_directory *d = sl_directory_new();
    static struct sl_direntry *h[N];
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        h[i] = sl_directory_add(d, "u", id, "epoch", 1);
    }
    for (int i = N - 1; i >= 0; i -= 2)
        sl_directory_remove_entry(d, h[i]);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "s%d", i);
        cr_assert_eq(sl_directory_find(d, "u", id, "epoch"), (N - 1 - i) % 2 ? 1 : -1, "s%d", i);
    }
    for (int i = N - 2; i >= 0; i -= 2)
        sl_directory_remove_entry(d, h[i]);
    sl_directory_free(d); /* LeakSanitizer: nothing left behind */
}
