/*
 * The adapters' per-token fast path: one scanner (over jscan.h) driven by a table of the
 * fields an adapter needs from a chunk, instead of a hand-written loop per adapter.
 *
 * A table is an array of struct sl_fp_field ending with a NULL key: for each key of an
 * object, what its value must be and where it goes. sl_fp_scan() reads a chunk (a JSON
 * object) through the table of its top level, checks and skips every other key, and fills
 * a struct sl_fp_out. It returns SL_FP_EJANSSON, and the adapter parses the chunk with jansson
 * instead (which has the last word), whenever the chunk is not what the table describes:
 *   - invalid JSON, or anything jscan leaves to jansson (see jscan.h);
 *   - a value of another type than its field says (null is allowed only with
 *     SL_FP_NULLABLE, and then counts as absent);
 *   - a key of the table given twice in one object (jansson keeps the last one);
 *   - a SL_FP_REFUSE key present at all (a tool call, an error: not per-token business), a
 *     SL_FP_NULL key that is not null, a string outside its field's `values` (or inside
 *     them, with SL_FP_EXCEPT);
 *   - more than SL_FP_LIST_MAX strings for the list (SL_FP_LIST).
 * Whatever it accepts, jansson reads the same way: tests/fuzz/fuzz_wire.c checks every
 * adapter's fast path against its jansson path, and tests/fuzz/jscan_diff.h this scanner
 * against jansson's lookups of the same paths.
 *
 *     static const struct sl_fp_field delta[] = {
 *         {SL_FP_KEY("content"), SL_FP_STRING, SL_FP_NULLABLE, SLOT_TEXT, NULL, NULL},
 *         SL_FP_END};
 *     static const struct sl_fp_field chunk[] = {
 *         {SL_FP_KEY("delta"), SL_FP_OBJECT, 0, -1, delta, NULL},
 *         {SL_FP_KEY("error"), SL_FP_REFUSE, 0, -1, NULL, NULL},
 *         SL_FP_END};
 *     if (sl_fp_scan(chunk, data, &r->scratch, &out) != 0) return -1;  (jansson then)
 *     if (sl_fp_has(&out, SLOT_TEXT)) ... out.str[SLOT_TEXT] ...
 *
 * Strings are slices into the chunk or the scratch buffer (jscan.h), valid until the
 * scratch buffer is used again. No allocation; the table is read-only and shared.
 */
#ifndef SL_UPSTREAM_FASTPATH_H
#define SL_UPSTREAM_FASTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/util.h"

#define SL_FP_SLOTS 8       /* slots of one scan (str, num and the has bits) */
#define SL_FP_LIST_MAX 8    /* strings of the list */
#define SL_FP_MAX_FIELDS 32 /* keys of one table level (one bit each while reading an object) */

enum sl_fp_kind {
    SL_FP_STRING, /* a string into str[slot] (or the list, with SL_FP_LIST) */
    SL_FP_INT,    /* an integer (no fraction, no exponent) into num[slot] */
    SL_FP_BOOL,   /* true or false into num[slot] (1 or 0) */
    SL_FP_OBJECT, /* an object read through `fields`; has bit `slot` set, if slot >= 0 */
    SL_FP_FIRST,  /* an array whose first element is an object read through `fields`; the
                     other elements are checked and skipped */
    SL_FP_EACH,   /* an array of objects, each read through `fields` */
    SL_FP_NULL,   /* the value must be null */
    SL_FP_REFUSE, /* the key must not be there */
};

/* Flags of a field. */
#define SL_FP_NULLABLE 0x01u /* null is allowed, as if the key were absent */
#define SL_FP_LIST 0x02u     /* SL_FP_STRING: appended to the list instead of a slot */
#define SL_FP_EXCEPT 0x04u   /* `values` are the strings refused, not the ones allowed */

/*
 * A field's first three members: the key, its length, and its first 8 bytes as a little-
 * endian word (zero-padded; a constant, computed here from the literal). A chunk's key is
 * told apart from a field by one comparison of its length and first byte, and matched by
 * one comparison of words when it is not longer than 8 bytes. Keys are not empty.
 * SL_FP_END ends a table.
 */
#define SL_FP_BYTE_(lit, i)                                                                        \
    ((uint64_t)(unsigned char)(sizeof(lit) > (i) + 1 ? (lit)[i] : 0) << (8 * (i)))
#define SL_FP_KEY(lit)                                                                             \
    (lit), sizeof(lit) - 1,                                                                        \
        (SL_FP_BYTE_(lit, 0) | SL_FP_BYTE_(lit, 1) | SL_FP_BYTE_(lit, 2) | SL_FP_BYTE_(lit, 3) |   \
         SL_FP_BYTE_(lit, 4) | SL_FP_BYTE_(lit, 5) | SL_FP_BYTE_(lit, 6) | SL_FP_BYTE_(lit, 7))
#define SL_FP_END                                                                                  \
    {                                                                                              \
        NULL, 0, 0, 0, 0, -1, NULL, NULL                                                           \
    }

struct sl_fp_field {
    const char *key; /* NULL ends a table */
    size_t keylen;   /* 0 ends a table too */
    uint64_t head;   /* the first 8 bytes (SL_FP_KEY) */
    enum sl_fp_kind kind;
    unsigned flags;
    int slot;                         /* -1: none */
    const struct sl_fp_field *fields; /* OBJECT, FIRST, EACH */
    const struct sl_slice *values;    /* STRING: allowed (or refused) values, {NULL}-ended */
};

struct sl_fp_out {
    uint32_t has; /* bit slot: the field was there and not null */
    struct sl_slice str[SL_FP_SLOTS];
    int64_t num[SL_FP_SLOTS];
    struct sl_slice list[SL_FP_LIST_MAX];
    size_t nlist;
};

/* In the upstream layer's range of internal codes (base/codes.h; sl_upstream_strerror). */
enum sl_fp_error {
    SL_FP_EJANSSON = -1221, /* "chunk left to jansson": not for the fast path, not an error */
};

/*
 * Reads data (a whole JSON object and nothing else) through the top-level table. Returns 0
 * with *out filled, or SL_FP_EJANSSON (then *out means nothing): the chunk is for jansson.
 * scratch is jscan's scratch buffer (sl_jscan_init).
 */
int sl_fp_scan(const struct sl_fp_field *table, struct sl_slice data, struct sl_buf *scratch,
               struct sl_fp_out *out);

static inline bool
sl_fp_has(const struct sl_fp_out *o, int slot)
{
    return (o->has >> slot) & 1u;
}

#endif
