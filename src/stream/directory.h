/*
 * The directory: which worker owns the stream (user, id, epoch), for a resume that lands
 * on another worker.
 *
 * Process-wide and locked: it is written when a stream is created and freed and read on a
 * resume, never per token. Each worker's own table (stream.h) stays unlocked; this only
 * says where to ask.
 */
#ifndef SL_STREAM_DIRECTORY_H
#define SL_STREAM_DIRECTORY_H

#include <stdint.h>

struct sl_directory;
struct sl_direntry;

struct sl_directory *sl_directory_new(void);

/* Every entry must have been removed. */
void sl_directory_free(struct sl_directory *d);

/*
 * Records that worker owns (user, id, epoch). Strings are copied. Returns the entry, for
 * sl_directory_remove_entry().
 */
struct sl_direntry *sl_directory_add(struct sl_directory *d, const char *user, const char *id,
                                     const char *epoch, unsigned worker);

/*
 * Removes an entry in O(1), whatever shares its bucket (one API key's streams all named "1"
 * share one: removing by key walked a chain as long as the burst).
 */
void sl_directory_remove_entry(struct sl_directory *d, struct sl_direntry *e);

/*
 * The worker owning (user, id) with that epoch, or with epoch NULL the newest run of the
 * id. Returns -1 if none.
 */
int sl_directory_find(struct sl_directory *d, const char *user, const char *id, const char *epoch);

#endif
