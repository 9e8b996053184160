/*
 * Checks a stream's text against the mock upstream's synthetic text, token by token.
 *
 * The mock's `synth:` streams (docs/mock.md) write token i as "tok<i> " (ts=0) or
 * "tok<i>@<µs> " (ts=2), so the text a client ends up with must be exactly
 * "tok1 tok2 ... tokN " (stamps aside): after a cut connection and a resume, a missing
 * token means the gateway lost it and a repeated one means it replayed something the
 * client already had. The checker reads the text as it arrives, in any pieces (sluice
 * merges deltas when a client falls behind; nothing says a piece ends on a token), and
 * keeps only a few counters and the unfinished token: no copy of the text.
 *
 * Counting: a token numbered above the next expected one counts the gap as lost; one
 * numbered below counts as duplicated (so a token that comes late, after a gap, counts
 * once as lost and once as duplicated: either way the text is wrong); anything that is
 * not a token at all is garbled. At the end, tokens missing after the last one received
 * are lost, and tokens past the expected count are extra.
 */
#ifndef LG_VERIFY_H
#define LG_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_VERIFY_PART_MAX 40 /* "tok4294967295@18446744073709551615" fits */

struct lg_verify {
    uint64_t next;      /* the token number expected next (1-based) */
    uint64_t lost;      /* tokens skipped over, and at the end those never received */
    uint64_t dup;       /* tokens received again (or out of order) */
    uint64_t garbled;   /* pieces of text between spaces that are no token */
    uint64_t extra;     /* tokens past the expected count (set by lg_verify_end) */
    uint8_t plen;       /* bytes of the unfinished token in part */
    bool part_overflow; /* the unfinished token outgrew part: it is garbled */
    char part[LG_VERIFY_PART_MAX];
};

void lg_verify_init(struct lg_verify *v);

/*
 * Feeds a piece of the stream's text as it appears in a JSON string (escapes untouched:
 * the synthetic text has none, so a backslash is garbage). Returns the number of new
 * tokens it completed, in order or after a gap (not the duplicated or garbled ones): the
 * stream's token count.
 */
uint64_t lg_verify_feed(struct lg_verify *v, const char *s, size_t n);

/* The stream ended: `expected` tokens were due. Counts the missing tail, the extra tokens
 * and an unfinished last token. */
void lg_verify_end(struct lg_verify *v, uint64_t expected);

/* Whether the text so far is exactly the expected one (call after lg_verify_end). */
bool lg_verify_exact(const struct lg_verify *v);

/*
 * The error code of a stream whose text is not exact, for counting streams by what went
 * wrong: "TEXT_GARBLED", "TEXT_LOST", "TEXT_DUPLICATED", "TEXT_EXTRA" (the first that
 * applies, in that order), or NULL when it is exact.
 */
const char *lg_verify_error(const struct lg_verify *v);

#endif
