/*
 * Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
 *
 * WebSocket text messages arrive in fragments that may split a character, so the
 * validator carries its state between calls. A state of 0 means "between characters".
 */
#ifndef SL_BASE_UTF8_H
#define SL_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Feeds n bytes. Returns 0 while the input can still be valid, -1 once it cannot. */
int sl_utf8_feed(uint32_t *state, const uint8_t *p, size_t n);

/* A whole buffer: valid and not ending inside a character. */
bool sl_utf8_valid(const void *p, size_t n);

/*
 * Length of the longest prefix of p[0..n) that does not end inside a character,
 * assuming the input is valid. Used to cut text on a character boundary.
 */
size_t sl_utf8_boundary(const void *p, size_t n);

#endif
