#include "base/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"

char *
sl_buf_grow(struct sl_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return b->data + b->len;
    /* Slide the live bytes to the front before growing: consumers eat from the front. */
    if (b->off > 0) {
        size_t live = b->len - b->off;
        memmove(b->data, b->data + b->off, live);
        b->off = 0;
        b->len = live;
        if (b->cap - b->len >= n)
            return b->data + b->len;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2)
            sl_panic("buffer size overflow");
        cap *= 2;
    }
    b->data = sl_realloc(b->data, cap);
    b->cap = cap;
    return b->data + b->len;
}

void
sl_buf_append_str(struct sl_buf *b, const char *s)
{
    sl_buf_append(b, s, strlen(s));
}

void
sl_buf_printf(struct sl_buf *b, const char *fmt, ...)
{
    va_list ap;
    char *dst = sl_buf_reserve(b, 128);
    va_start(ap, fmt);
    int n = vsnprintf(dst, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= b->cap - b->len) {
        dst = sl_buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(dst, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void
sl_buf_consume(struct sl_buf *b, size_t n)
{
    if (n >= b->len - b->off) {
        sl_buf_free(b);
        return;
    }
    b->off += n;
}

const char *
sl_buf_cstr(struct sl_buf *b)
{
    char *end = sl_buf_reserve(b, 1);
    *end = '\0';
    return b->data + b->off;
}

char *
sl_buf_steal(struct sl_buf *b, size_t *len)
{
    if (b->off > 0 && b->data != NULL) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    char *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->off = b->len = b->cap = 0;
    return p;
}

void
sl_buf_free(struct sl_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}
