#include "base/jsonw.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"

/* 0: copy as is; 1: needs an escape or validation. */
static const uint8_t special[256] = {
    /* 0x00-0x1F control characters */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 1, /* DEL */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

/* Length of the valid UTF-8 character at p (at most n bytes), or 0 if invalid. */
static size_t
utf8_char_len(const uint8_t *p, size_t n)
{
    size_t len = p[0] >= 0xF0 ? 4 : p[0] >= 0xE0 ? 3 : 2;
    if (len > n)
        return 0;
    uint32_t st = 0;
    if (sl_utf8_feed(&st, p, len) != 0 || st != 0)
        return 0;
    return len;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

/* Whether any byte of w is one that `special` marks: below 0x20, '"', '\\', DEL or 0x80 and
 * up. Each test is the classic "has a zero byte" (or "a byte less than") word trick, exact
 * as a yes/no for the word. */
static inline bool
special8(uint64_t w)
{
    uint64_t lt20 = (w - ONES * 0x20) & ~w;
    uint64_t q = w ^ (ONES * '"'), bs = w ^ (ONES * '\\'), del = w ^ (ONES * 0x7F);
    uint64_t eq = ((q - ONES) & ~q) | ((bs - ONES) & ~bs) | ((del - ONES) & ~del);
    return ((w | lt20 | eq) & HIGHS) != 0;
}

#if defined(__SSE2__)
#include <emmintrin.h>

/* The offset of the first byte of p[0..16) that `special` marks, or 16. A signed compare
 * below 0x20 catches the controls and every byte from 0x80 (negative as signed) at once. */
static inline unsigned
special16(const uint8_t *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_or_si128(
        _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)), _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))),
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')),
                     _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7F))));
    unsigned m = (unsigned)_mm_movemask_epi8(hit);
    return m ? (unsigned)__builtin_ctz(m) : 16;
}
#endif

void
sl_jsonw_escape(struct sl_buf *b, const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, run = 0;

    while (i < n) {
        /* Text is mostly plain: sixteen bytes at a time (SSE2), else eight, or a short
         * tail in one go, until one holds something to escape. Every token's text and
         * every id and name of every event goes through here, and ws-chat's whole answer
         * so far with every token. */
#if defined(__SSE2__)
        if (n - i >= 16) {
            unsigned at = special16(p + i);
            i += at;
            if (at == 16)
                continue;
        } else
#endif
        {
            size_t k = n - i < 8 ? n - i : 8;
            uint64_t w = ONES * 'a'; /* a short tail, padded with plain bytes */
            if (k == 8)
                memcpy(&w, p + i, 8);
            else
                memcpy(&w, p + i, k);
            if (!special8(w)) {
                i += k;
                continue;
            }
        }
        uint8_t c = p[i];
        if (!special[c]) {
            i++;
            continue;
        }
        sl_buf_append(b, p + run, i - run);
        if (c >= 0x80) {
            size_t len = utf8_char_len(p + i, n - i);
            if (len) {
                sl_buf_append(b, p + i, len);
                i += len;
            } else {
                SL_JSONW_LIT(b, "\\ufffd");
                i++;
            }
        } else {
            char esc[8];
            switch (c) {
            case '"':
                SL_JSONW_LIT(b, "\\\"");
                break;
            case '\\':
                SL_JSONW_LIT(b, "\\\\");
                break;
            case '\n':
                SL_JSONW_LIT(b, "\\n");
                break;
            case '\r':
                SL_JSONW_LIT(b, "\\r");
                break;
            case '\t':
                SL_JSONW_LIT(b, "\\t");
                break;
            case '\b':
                SL_JSONW_LIT(b, "\\b");
                break;
            case '\f':
                SL_JSONW_LIT(b, "\\f");
                break;
            default:
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                sl_buf_append(b, esc, 6);
            }
            i++;
        }
        run = i;
    }
    sl_buf_append(b, p + run, n - run);
}

void
sl_jsonw_str(struct sl_buf *b, const char *s, size_t n)
{
    /* Reserve for the common case of nothing to escape: one growth at most. */
    sl_buf_reserve(b, n + 2);
    sl_buf_append_byte(b, '"');
    sl_jsonw_escape(b, s, n);
    sl_buf_append_byte(b, '"');
}

void
sl_jsonw_cstr(struct sl_buf *b, const char *s)
{
    sl_jsonw_str(b, s, strlen(s));
}

void
sl_jsonw_uint(struct sl_buf *b, unsigned long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sl_buf_append(b, tmp + i, sizeof(tmp) - i);
}

void
sl_jsonw_int(struct sl_buf *b, long long v)
{
    if (v < 0) {
        sl_buf_append_byte(b, '-');
        sl_jsonw_uint(b, (unsigned long long)(-(v + 1)) + 1);
    } else {
        sl_jsonw_uint(b, (unsigned long long)v);
    }
}

void
sl_jsonw_double(struct sl_buf *b, double v)
{
    if (!isfinite(v)) {
        SL_JSONW_LIT(b, "null");
        return;
    }
    char tmp[32];
    /* The shortest %.Ng that round-trips keeps costs such as 0.00012 readable. */
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    sl_buf_append_str(b, tmp);
}
