/*
 * Small helpers with no better home: clocks, random identifiers, string slices,
 * base64, and the parsing of durations and sizes shared by config and CLI.
 */
#ifndef SL_BASE_UTIL_H
#define SL_BASE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A borrowed byte range; never owns its memory [h2o h2o_iovec_t]. */
struct sl_slice {
    const char *ptr;
    size_t len;
};

#define SL_SLICE(lit) ((struct sl_slice){(lit), sizeof(lit) - 1})

static inline struct sl_slice
sl_slice_make(const char *p, size_t n)
{
    return (struct sl_slice){p, n};
}

bool sl_slice_eq(struct sl_slice a, const char *lit);
bool sl_slice_ieq(struct sl_slice a, const char *lit);

/* True if the comma-separated header value contains token (case-insensitive). */
bool sl_header_has_token(struct sl_slice value, const char *token);

/* Monotonic clock. */
uint64_t sl_clock_ns(void);
static inline uint64_t
sl_clock_ms(void)
{
    return sl_clock_ns() / 1000000u;
}

/* Wall clock in milliseconds and seconds since the epoch. */
uint64_t sl_wall_ms(void);

/* Cryptographically random bytes (getrandom); aborts if the kernel cannot provide them. */
void sl_random(void *out, size_t n);

/* Writes a random identifier of n characters from [0-9a-z] plus a NUL to out[n + 1]. */
void sl_random_id(char *out, size_t n);

/* Standard base64 with padding. Returns the length written (out needs 4 * ceil(n / 3) + 1). */
size_t sl_base64_encode(char *out, const void *in, size_t n);

/* The value of a hex digit, or -1. */
static inline int
sl_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Lower-case hex. out needs 2n + 1 bytes. */
void sl_hex_encode(char *out, const void *in, size_t n);

/*
 * "250ms", "25s", "10m", "1h", "1d" or a bare number of seconds -> milliseconds.
 * Returns 0 on success, SL_BASE_EINVAL (base/codes.h) on a malformed value.
 */
int sl_parse_duration_ms(const char *s, uint64_t *out);

/* "1048576", "64k", "64KiB", "1m", "1MiB", "1g" -> bytes. Returns 0 or SL_BASE_EINVAL. */
int sl_parse_size(const char *s, uint64_t *out);

/* A decimal integer with optional sign, the whole string. Returns 0 or SL_BASE_EINVAL. */
int sl_parse_int(const char *s, long long *out);

#endif
