#include "upstream/jscan.h"

#include <string.h>

#include "base/utf8.h"
#include "base/util.h"

_Static_assert(SL_JSCAN_MAX_DEPTH < 64, "one bit per depth in `more`");

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/*
 * Advances from p over bytes that end no string run: anything but '"', '\\' and control
 * characters. Eight bytes at a time while none of them can be one (most of a chunk is
 * strings: ids, model names, the text), then byte by byte to the exact stop. ORs the
 * bytes passed into *high so the caller knows whether UTF-8 needs checking.
 */
static inline const char *
plain_run(const char *p, const char *end, unsigned char *high)
{
    uint64_t acc = 0;
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
        /* Zero-byte tests; a false alarm only sends the rest to the byte loop. */
        uint64_t stop = ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w);
        if (stop & HIGHS)
            break;
        acc |= w;
        p += 8;
    }
    if (acc & HIGHS)
        *high |= 0x80;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\' || c < 0x20)
            break;
        *high |= c;
        p++;
    }
    return p;
}

/*
 * The loops below work on local copies of s->p: through a char pointer every store may
 * alias the struct, so the compiler would reload and store s->p at every byte.
 */
/* The bytes that end a key's plain run: '"', '\\' and the control characters. */
static const bool key_stop[256] = {
    [0] = true,  [1] = true,  [2] = true,  [3] = true,  [4] = true,   [5] = true,    [6] = true,
    [7] = true,  [8] = true,  [9] = true,  [10] = true, [11] = true,  [12] = true,   [13] = true,
    [14] = true, [15] = true, [16] = true, [17] = true, [18] = true,  [19] = true,   [20] = true,
    [21] = true, [22] = true, [23] = true, [24] = true, [25] = true,  [26] = true,   [27] = true,
    [28] = true, [29] = true, [30] = true, [31] = true, ['"'] = true, ['\\'] = true,
};

static inline void
skip_ws(struct sl_jscan *s)
{
    const char *p = s->p, *end = s->end;
    /* Compact JSON has no blanks: one comparison tells (every blank is below '!'). */
    if (p < end && (unsigned char)*p > ' ')
        return;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    s->p = p;
}

bool
sl_jscan_fail(struct sl_jscan *s)
{
    s->failed = true;
    s->p = s->end;
    return false;
}

void
sl_jscan_init(struct sl_jscan *s, const char *p, size_t n, struct sl_buf *scratch)
{
    s->p = p;
    s->end = p + n;
    sl_buf_clear(scratch);
    s->out = sl_buf_reserve(scratch, n ? n : 1);
    s->more = 0;
    s->depth = 0;
    s->began = false;
    s->failed = false;
}

enum sl_jtype
sl_jscan_peek(struct sl_jscan *s)
{
    if (s->failed)
        return SL_JT_BAD;
    skip_ws(s);
    if (s->p >= s->end)
        return SL_JT_BAD;
    switch (*s->p) {
    case '{':
        return SL_JT_OBJECT;
    case '[':
        return SL_JT_ARRAY;
    case '"':
        return SL_JT_STRING;
    case 't':
        return SL_JT_TRUE;
    case 'f':
        return SL_JT_FALSE;
    case 'n':
        return SL_JT_NULL;
    default:
        return (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) ? SL_JT_NUMBER : SL_JT_BAD;
    }
}

static bool
open(struct sl_jscan *s, char c)
{
    if (s->failed)
        return false;
    skip_ws(s);
    if (s->p >= s->end || *s->p != c || s->depth >= SL_JSCAN_MAX_DEPTH)
        return sl_jscan_fail(s);
    if (s->depth == 0) {
        if (s->began)
            return sl_jscan_fail(s); /* a second top-level value */
        s->began = true;
    }
    s->p++;
    s->depth++;
    s->more &= ~(1ull << s->depth);
    return true;
}

bool
sl_jscan_object(struct sl_jscan *s)
{
    return open(s, '{');
}

bool
sl_jscan_array(struct sl_jscan *s)
{
    return open(s, '[');
}

/*
 * Before a member or an element: the closing bracket (returns 0, consumed), or the comma
 * that must separate it from the previous one (returns 1, consumed), or an error (-1).
 */
static int
separator(struct sl_jscan *s, char close)
{
    if (s->failed)
        return -1;
    skip_ws(s);
    if (s->p >= s->end) {
        sl_jscan_fail(s);
        return -1;
    }
    uint64_t bit = 1ull << s->depth;
    if (*s->p == close) {
        s->p++;
        s->depth--;
        return 0;
    }
    if (s->more & bit) {
        if (*s->p != ',') {
            sl_jscan_fail(s);
            return -1;
        }
        s->p++;
        skip_ws(s);
    }
    s->more |= bit;
    return 1;
}

bool
sl_jscan_key(struct sl_jscan *s, struct sl_slice *key)
{
    if (separator(s, '}') != 1)
        return false;
    if (s->p >= s->end || *s->p != '"')
        return sl_jscan_fail(s);
    const char *start = ++s->p, *p = start, *end = s->end;
    unsigned char high = 0;
    /* Keys are plain and short (byte by byte beats plain_run's word loop here, and one
     * table lookup per byte beats three comparisons); one with an escape or a control
     * character is left to jansson. */
    while (p < end && !key_stop[(unsigned char)*p]) {
        high |= (unsigned char)*p;
        p++;
    }
    if (p < end && *p != '"')
        return sl_jscan_fail(s);
    s->p = p;
    if (p >= end || ((high & 0x80) && !sl_utf8_valid(start, (size_t)(p - start))))
        return sl_jscan_fail(s);
    *key = sl_slice_make(start, (size_t)(s->p - start));
    s->p++;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return sl_jscan_fail(s);
    s->p++;
    return true;
}

bool
sl_jscan_next(struct sl_jscan *s)
{
    return separator(s, ']') == 1;
}

/* Four hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long
hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = sl_hex_digit(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static char *
put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/*
 * One escape after the backslash at s->p: decoded into *o. Unicode escapes follow jansson:
 * a high surrogate must be followed by an escaped low one, a lone low surrogate is an
 * error. The decoded form is never longer than the escape (6 or 12 bytes -> at most 4).
 */
static bool
unescape(struct sl_jscan *s, char **o)
{
    if (s->end - s->p < 2)
        return false;
    char c = s->p[1];
    s->p += 2;
    switch (c) {
    case '"':
    case '\\':
    case '/':
        *(*o)++ = c;
        return true;
    case 'b':
        *(*o)++ = '\b';
        return true;
    case 'f':
        *(*o)++ = '\f';
        return true;
    case 'n':
        *(*o)++ = '\n';
        return true;
    case 'r':
        *(*o)++ = '\r';
        return true;
    case 't':
        *(*o)++ = '\t';
        return true;
    case 'u':
        break;
    default:
        return false;
    }
    if (s->end - s->p < 4)
        return false;
    long v = hex4(s->p);
    s->p += 4;
    if (v < 0 || (v >= 0xDC00 && v <= 0xDFFF))
        return false;
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
            return false;
        long lo = hex4(s->p + 2);
        if (lo < 0xDC00 || lo > 0xDFFF)
            return false;
        s->p += 6;
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
    }
    *o = put_utf8(*o, (unsigned long)v);
    return true;
}

bool
sl_jscan_string(struct sl_jscan *s, struct sl_slice *out)
{
    if (s->failed)
        return false;
    skip_ws(s);
    if (s->p >= s->end || *s->p != '"')
        return sl_jscan_fail(s);
    const char *start = ++s->p;
    const char *run = start; /* raw bytes not yet copied, once decoding */
    char *o = NULL;
    unsigned char high = 0; /* any byte >= 0x80 in the current run: UTF-8 to check */
    for (;;) {
        s->p = plain_run(s->p, s->end, &high);
        if (s->p >= s->end)
            return sl_jscan_fail(s);
        unsigned char c = (unsigned char)*s->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return sl_jscan_fail(s);
        if ((high & 0x80) && !sl_utf8_valid(run, (size_t)(s->p - run)))
            return sl_jscan_fail(s);
        high = 0;
        if (o == NULL)
            o = s->out;
        memcpy(o, run, (size_t)(s->p - run));
        o += s->p - run;
        if (!unescape(s, &o))
            return sl_jscan_fail(s);
        run = s->p;
    }
    if ((high & 0x80) && !sl_utf8_valid(run, (size_t)(s->p - run)))
        return sl_jscan_fail(s);
    if (o == NULL) {
        *out = sl_slice_make(start, (size_t)(s->p - start));
    } else {
        memcpy(o, run, (size_t)(s->p - run));
        o += s->p - run;
        *out = sl_slice_make(s->out, (size_t)(o - s->out));
        s->out = o;
    }
    s->p++;
    return true;
}

static bool
is_digit(const struct sl_jscan *s)
{
    return s->p < s->end && *s->p >= '0' && *s->p <= '9';
}

bool
sl_jscan_number(struct sl_jscan *s, struct sl_slice *raw)
{
    if (s->failed)
        return false;
    skip_ws(s);
    const char *start = s->p;
    if (s->p < s->end && *s->p == '-')
        s->p++;
    const char *digits = s->p;
    if (!is_digit(s))
        return sl_jscan_fail(s);
    if (*s->p == '0') {
        s->p++;
    } else {
        while (is_digit(s))
            s->p++;
    }
    /* Past 18 digits jansson's integers overflow: let it decide. */
    if (s->p - digits > 18)
        return sl_jscan_fail(s);
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!is_digit(s))
            return sl_jscan_fail(s);
        while (is_digit(s))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        const char *e = s->p;
        while (is_digit(s))
            s->p++;
        /* No digit is an error; three could overflow a double: jansson decides. */
        if (s->p == e || s->p - e > 2)
            return sl_jscan_fail(s);
    }
    *raw = sl_slice_make(start, (size_t)(s->p - start));
    return true;
}

bool
sl_jscan_int(struct sl_jscan *s, int64_t *out)
{
    struct sl_slice raw;
    if (!sl_jscan_number(s, &raw))
        return false;
    int64_t v = 0;
    size_t i = raw.ptr[0] == '-' ? 1 : 0;
    for (; i < raw.len; i++) {
        if (raw.ptr[i] < '0' || raw.ptr[i] > '9')
            return sl_jscan_fail(s); /* a fraction or an exponent: not an integer */
        v = v * 10 + (raw.ptr[i] - '0');
    }
    *out = raw.ptr[0] == '-' ? -v : v;
    return true;
}

static bool
literal(struct sl_jscan *s, const char *lit, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, lit, n) != 0)
        return sl_jscan_fail(s);
    s->p += n;
    return true;
}

bool
sl_jscan_bool(struct sl_jscan *s, bool *out)
{
    enum sl_jtype t = sl_jscan_peek(s);
    if (t == SL_JT_TRUE) {
        *out = true;
        return literal(s, "true", 4);
    }
    if (t == SL_JT_FALSE) {
        *out = false;
        return literal(s, "false", 5);
    }
    return sl_jscan_fail(s);
}

bool
sl_jscan_null(struct sl_jscan *s)
{
    if (sl_jscan_peek(s) != SL_JT_NULL)
        return false;
    return literal(s, "null", 4);
}

bool
sl_jscan_skip(struct sl_jscan *s)
{
    struct sl_slice tmp;
    bool b;
    switch (sl_jscan_peek(s)) {
    case SL_JT_OBJECT:
        sl_jscan_object(s);
        while (sl_jscan_key(s, &tmp))
            sl_jscan_skip(s);
        return !s->failed;
    case SL_JT_ARRAY:
        sl_jscan_array(s);
        while (sl_jscan_next(s))
            sl_jscan_skip(s);
        return !s->failed;
    case SL_JT_STRING:
        return sl_jscan_string(s, &tmp);
    case SL_JT_NUMBER:
        return sl_jscan_number(s, &tmp);
    case SL_JT_TRUE:
    case SL_JT_FALSE:
        return sl_jscan_bool(s, &b);
    case SL_JT_NULL:
        return sl_jscan_null(s);
    default:
        return sl_jscan_fail(s);
    }
}

bool
sl_jscan_done(struct sl_jscan *s)
{
    if (s->failed || s->depth != 0 || !s->began)
        return false;
    skip_ws(s);
    return s->p == s->end;
}
