#include "base/utf8.h"

#include <string.h>

/*
 * State layout: bits 0-7 continuation bytes still expected, bits 8-15 and 16-23 the
 * inclusive range allowed for the next continuation byte. Only the first continuation
 * byte after E0, ED, F0 and F4 has a range other than 80..BF.
 */
#define ST(need, lo, hi) ((uint32_t)(need) | (uint32_t)(lo) << 8 | (uint32_t)(hi) << 16)

int
sl_utf8_feed(uint32_t *state, const uint8_t *p, size_t n)
{
    uint32_t st = *state;
    size_t i = 0;

    while (i < n) {
        if (st == 0) {
            /* ASCII fast path, eight bytes at a time. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, p + i, 8);
                if (w & 0x8080808080808080ULL)
                    break;
                i += 8;
            }
            if (i >= n)
                break;
            uint8_t c = p[i++];
            if (c < 0x80)
                continue;
            else if (c >= 0xC2 && c <= 0xDF)
                st = ST(1, 0x80, 0xBF);
            else if (c == 0xE0)
                st = ST(2, 0xA0, 0xBF);
            else if (c == 0xED)
                st = ST(2, 0x80, 0x9F);
            else if (c >= 0xE1 && c <= 0xEF)
                st = ST(2, 0x80, 0xBF);
            else if (c == 0xF0)
                st = ST(3, 0x90, 0xBF);
            else if (c >= 0xF1 && c <= 0xF3)
                st = ST(3, 0x80, 0xBF);
            else if (c == 0xF4)
                st = ST(3, 0x80, 0x8F);
            else {
                *state = st;
                return -1;
            }
        } else {
            uint8_t c = p[i++];
            uint8_t lo = (uint8_t)(st >> 8), hi = (uint8_t)(st >> 16);
            if (c < lo || c > hi) {
                *state = st;
                return -1;
            }
            uint32_t need = (st & 0xFF) - 1;
            st = need ? ST(need, 0x80, 0xBF) : 0;
        }
    }
    *state = st;
    return 0;
}

bool
sl_utf8_valid(const void *p, size_t n)
{
    uint32_t st = 0;
    return sl_utf8_feed(&st, p, n) == 0 && st == 0;
}

size_t
sl_utf8_boundary(const void *p, size_t n)
{
    const uint8_t *s = p;
    size_t i = n;
    /* Walk back over at most three continuation bytes to the lead byte. */
    for (size_t back = 0; back < 4 && i > 0; back++) {
        uint8_t c = s[i - 1];
        if ((c & 0xC0) != 0x80) {
            size_t len = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
            return (back + 1 >= len) ? n : i - 1;
        }
        i--;
    }
    return n;
}
