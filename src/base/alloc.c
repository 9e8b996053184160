#include "base/alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
sl_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("sluice: fatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

void *
sl_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        sl_panic("out of memory allocating %zu bytes", n);
    return p;
}

void *
sl_calloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p == NULL)
        sl_panic("out of memory allocating %zu x %zu bytes", count, n);
    return p;
}

void *
sl_realloc(void *old, size_t n)
{
    void *p = realloc(old, n ? n : 1);
    if (p == NULL)
        sl_panic("out of memory reallocating %zu bytes", n);
    return p;
}

char *
sl_strndup(const char *s, size_t n)
{
    char *p = sl_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
sl_strdup(const char *s)
{
    return sl_strndup(s, strlen(s));
}
