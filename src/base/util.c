#include "base/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/alloc.h"
#include "base/codes.h"

bool
sl_slice_eq(struct sl_slice a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.ptr, lit, n) == 0;
}

bool
sl_slice_ieq(struct sl_slice a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && strncasecmp(a.ptr, lit, n) == 0;
}

bool
sl_header_has_token(struct sl_slice v, const char *token)
{
    size_t tn = strlen(token);
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.ptr[i] == ' ' || v.ptr[i] == '\t' || v.ptr[i] == ','))
            i++;
        size_t start = i;
        while (i < v.len && v.ptr[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v.ptr[end - 1] == ' ' || v.ptr[end - 1] == '\t'))
            end--;
        if (end - start == tn && strncasecmp(v.ptr + start, token, tn) == 0)
            return true;
    }
    return false;
}

uint64_t
sl_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t
sl_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
sl_random(void *out, size_t n)
{
    char *p = out;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            sl_panic("getrandom failed: %s", strerror(errno));
        }
        p += r;
        n -= (size_t)r;
    }
}

void
sl_random_id(char *out, size_t n)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    uint8_t raw[64];
    sl_assert(n <= sizeof(raw));
    sl_random(raw, n);
    for (size_t i = 0; i < n; i++)
        out[i] = alphabet[raw[i] % 36]; /* the slight bias does not matter for ids */
    out[n] = '\0';
}

size_t
sl_base64_encode(char *out, const void *in, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const uint8_t *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = tbl[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = tbl[v >> 18];
        out[o++] = tbl[(v >> 12) & 63];
        out[o++] = tbl[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

void
sl_hex_encode(char *out, const void *in, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Splits "12.5ms" into a non-negative number and a unit suffix. */
static int
split_number(const char *s, double *num, const char **unit)
{
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s) && *s != '.')
        return SL_BASE_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || v < 0)
        return SL_BASE_EINVAL;
    while (isspace((unsigned char)*end))
        end++;
    size_t ulen = strlen(end);
    while (ulen > 0 && isspace((unsigned char)end[ulen - 1]))
        ulen--;
    if (ulen > 8)
        return SL_BASE_EINVAL;
    *num = v;
    *unit = end;
    return 0;
}

static bool
unit_is(const char *unit, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(unit, name, n) != 0)
        return false;
    for (const char *p = unit + n; *p; p++)
        if (!isspace((unsigned char)*p))
            return false;
    return true;
}

int
sl_parse_duration_ms(const char *s, uint64_t *out)
{
    double v;
    const char *u;
    if (split_number(s, &v, &u) != 0)
        return SL_BASE_EINVAL;
    double ms;
    if (*u == '\0' || unit_is(u, "s"))
        ms = v * 1000;
    else if (unit_is(u, "ms"))
        ms = v;
    else if (unit_is(u, "us"))
        ms = v / 1000;
    else if (unit_is(u, "m") || unit_is(u, "min"))
        ms = v * 60000;
    else if (unit_is(u, "h"))
        ms = v * 3600000;
    else if (unit_is(u, "d"))
        ms = v * 86400000;
    else
        return SL_BASE_EINVAL;
    if (ms > 1e15)
        return SL_BASE_EINVAL;
    *out = (uint64_t)(ms + 0.5);
    return 0;
}

int
sl_parse_size(const char *s, uint64_t *out)
{
    double v;
    const char *u;
    if (split_number(s, &v, &u) != 0)
        return SL_BASE_EINVAL;
    double mult;
    if (*u == '\0' || unit_is(u, "b"))
        mult = 1;
    else if (unit_is(u, "k") || unit_is(u, "kb") || unit_is(u, "kib"))
        mult = 1024;
    else if (unit_is(u, "m") || unit_is(u, "mb") || unit_is(u, "mib"))
        mult = 1024.0 * 1024;
    else if (unit_is(u, "g") || unit_is(u, "gb") || unit_is(u, "gib"))
        mult = 1024.0 * 1024 * 1024;
    else
        return SL_BASE_EINVAL;
    double bytes = v * mult;
    if (bytes > 1e18)
        return SL_BASE_EINVAL;
    *out = (uint64_t)bytes;
    return 0;
}

int
sl_parse_int(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return SL_BASE_EINVAL;
    *out = v;
    return 0;
}
