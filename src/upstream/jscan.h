/*
 * A validating, allocation-free JSON scanner for the per-token path of the adapters.
 *
 * A provider chunk carries one or two fields worth reading among a dozen that are not
 * (an OpenAI chunk: ~300 bytes, 20 values, for one token of text). Building a jansson
 * document of it costs about 5 µs, an allocation per value and per key; the gateway's
 * budget is 2 µs per token in all. This scanner walks the text once, hands out string
 * slices (pointing into the input, or into a scratch buffer when escapes had to be
 * decoded) and checks, then skips, everything else.
 *
 * It is an optimisation with an escape hatch, not a second JSON parser to trust: whenever
 * the input is invalid, or merely unusual (a key with escapes, a number with more than 18
 * digits or a 3-digit exponent, nesting deeper than 60), the scan fails and the caller
 * parses the chunk with jansson instead, which has the last word. Anything the scanner
 * accepts, jansson (json_loadb with JSON_ALLOW_NUL) accepts with the same values:
 * tests/fuzz/fuzz_jscan.c checks exactly that, differentially.
 *
 *     struct sl_jscan s;
 *     struct sl_slice key, text;
 *     sl_jscan_init(&s, chunk, len, &scratch);
 *     if (sl_jscan_object(&s))
 *         while (sl_jscan_key(&s, &key))
 *             if (sl_slice_eq(key, "text")) sl_jscan_string(&s, &text); else sl_jscan_skip(&s);
 *     if (!sl_jscan_done(&s)) fall back to jansson;
 *
 * Every function returns false once the scan has failed (and sets it failed on an error),
 * so a caller may check only at the end. A key must be followed by exactly one value call.
 */
#ifndef SL_UPSTREAM_JSCAN_H
#define SL_UPSTREAM_JSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"

#define SL_JSCAN_MAX_DEPTH 60

/* Compares a key (or any slice) with a string literal, without strlen. */
#define SL_JSCAN_IS(slice, lit)                                                                    \
    ((slice).len == sizeof(lit) - 1 && memcmp((slice).ptr, (lit), sizeof(lit) - 1) == 0)

enum sl_jtype {
    SL_JT_BAD, /* not the start of a value (or the scan failed) */
    SL_JT_OBJECT,
    SL_JT_ARRAY,
    SL_JT_STRING,
    SL_JT_NUMBER,
    SL_JT_TRUE,
    SL_JT_FALSE,
    SL_JT_NULL,
};

struct sl_jscan {
    const char *p, *end;
    char *out; /* decoded strings go here; room for the whole input was reserved */
    uint64_t more; /* bit d: the container at depth d has had a member already */
    int depth;
    bool began; /* the top-level container was opened */
    bool failed;
};

/*
 * Prepares a scan of p[0..n). scratch is cleared and reserved for n bytes, which is as
 * much as decoded strings can take, so slices handed out stay valid until the scratch
 * buffer is used again (it is not freed here).
 */
void sl_jscan_init(struct sl_jscan *s, const char *p, size_t n, struct sl_buf *scratch);

/* The type of the next value, without consuming it. */
enum sl_jtype sl_jscan_peek(struct sl_jscan *s);

/* Consumes '{' / '[' (failing if the next value is something else). */
bool sl_jscan_object(struct sl_jscan *s);
bool sl_jscan_array(struct sl_jscan *s);

/* The next member's key (its ':' consumed), or false at the closing '}' (consumed). */
bool sl_jscan_key(struct sl_jscan *s, struct sl_slice *key);

/* True if another array element follows (its ',' consumed); false at ']' (consumed). */
bool sl_jscan_next(struct sl_jscan *s);

/* A string value, decoded. */
bool sl_jscan_string(struct sl_jscan *s, struct sl_slice *out);

/* An integer value (no fraction, no exponent, at most 18 digits). */
bool sl_jscan_int(struct sl_jscan *s, int64_t *out);

/* A number's text as written (checked against the JSON grammar and the limits above). */
bool sl_jscan_number(struct sl_jscan *s, struct sl_slice *raw);

/* true / false. */
bool sl_jscan_bool(struct sl_jscan *s, bool *out);

/* If the next value is null, consumes it and returns true; otherwise consumes nothing. */
bool sl_jscan_null(struct sl_jscan *s);

/* Checks and skips one value of any type. */
bool sl_jscan_skip(struct sl_jscan *s);

/* Makes the scan fail (a caller that met something it does not handle). Returns false. */
bool sl_jscan_fail(struct sl_jscan *s);

/* True if the top-level value is complete, only whitespace follows, and nothing failed. */
bool sl_jscan_done(struct sl_jscan *s);

#endif
