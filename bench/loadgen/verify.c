#include "verify.h"

#include <string.h>

void
lg_verify_init(struct lg_verify *v)
{
    memset(v, 0, sizeof(*v));
    v->next = 1;
}

/* The number of "tok<i>" or "tok<i>@<digits>", or 0 if t is neither (tokens start at 1). */
static uint64_t
token_number(const char *t, size_t n)
{
    if (n < 4 || memcmp(t, "tok", 3) != 0)
        return 0;
    size_t i = 3;
    uint64_t num = 0;
    size_t digits = 0;
    while (i < n && t[i] >= '0' && t[i] <= '9') {
        if (++digits > 19)
            return 0;
        num = num * 10 + (uint64_t)(t[i] - '0');
        i++;
    }
    if (digits == 0 || (digits > 1 && t[3] == '0'))
        return 0;
    if (i == n)
        return num;
    if (t[i] != '@' || i + 1 == n)
        return 0;
    for (i++; i < n; i++) {
        if (t[i] < '0' || t[i] > '9')
            return 0;
    }
    return num;
}

/* One whole token (the text between two spaces). Returns 1 if it is new. */
static uint64_t
token(struct lg_verify *v, const char *t, size_t n, bool overflow)
{
    uint64_t num = overflow ? 0 : token_number(t, n);
    if (num == 0) {
        v->garbled++;
        return 0;
    }
    if (num < v->next) {
        v->dup++;
        return 0;
    }
    v->lost += num - v->next;
    v->next = num + 1;
    return 1;
}

uint64_t
lg_verify_feed(struct lg_verify *v, const char *s, size_t n)
{
    uint64_t fresh = 0;
    size_t i = 0;
    while (i < n) {
        const char *sp = memchr(s + i, ' ', n - i);
        size_t end = sp ? (size_t)(sp - s) : n;
        size_t len = end - i;
        if (sp == NULL) {
            /* The token goes on in the next piece: keep what fits. */
            if (v->plen + len > sizeof(v->part)) {
                v->part_overflow = true;
            } else {
                memcpy(v->part + v->plen, s + i, len);
                v->plen = (uint8_t)(v->plen + len);
            }
            return fresh;
        }
        if (v->plen > 0 || v->part_overflow) {
            bool over = v->part_overflow || v->plen + len > sizeof(v->part);
            if (!over)
                memcpy(v->part + v->plen, s + i, len);
            fresh += token(v, v->part, over ? 0 : v->plen + len, over);
            v->plen = 0;
            v->part_overflow = false;
        } else {
            fresh += token(v, s + i, len, false);
        }
        i = end + 1;
    }
    return fresh;
}

void
lg_verify_end(struct lg_verify *v, uint64_t expected)
{
    if (v->plen > 0 || v->part_overflow) {
        /* Every synthetic token ends with a space: an unfinished one is garbage. */
        v->garbled++;
        v->plen = 0;
        v->part_overflow = false;
    }
    uint64_t got_to = v->next - 1; /* the highest token number received */
    if (got_to < expected)
        v->lost += expected - got_to;
    else
        v->extra = got_to - expected;
}

bool
lg_verify_exact(const struct lg_verify *v)
{
    return v->lost == 0 && v->dup == 0 && v->garbled == 0 && v->extra == 0 && v->plen == 0 &&
           !v->part_overflow;
}

const char *
lg_verify_error(const struct lg_verify *v)
{
    /* Garbage first: then the text is no synthetic text at all, and its "losses" mean little. */
    if (v->garbled > 0 || v->plen > 0 || v->part_overflow)
        return "TEXT_GARBLED";
    if (v->lost > 0)
        return "TEXT_LOST";
    if (v->dup > 0)
        return "TEXT_DUPLICATED";
    if (v->extra > 0)
        return "TEXT_EXTRA";
    return NULL;
}
