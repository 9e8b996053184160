/*
 * A growable byte buffer with an explicit read offset.
 *
 * Used for everything that accumulates bytes: outgoing frames, a request being
 * parsed, JSON being written. The storage is released by sl_buf_free() and by
 * sl_buf_consume() when it empties the buffer and `shrink` is set, so that idle
 * connections hold no buffer at all [nginx]. Callers enforce their own caps by
 * checking sl_buf_len() before appending; the buffer itself never refuses to grow
 * (allocation failure aborts, see alloc.h).
 */
#ifndef SL_BASE_BUF_H
#define SL_BASE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct sl_buf {
    char *data; /* NULL while empty and released */
    size_t off; /* bytes before off were consumed */
    size_t len; /* end of valid data (absolute, >= off) */
    size_t cap;
};

#define SL_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

static inline size_t
sl_buf_len(const struct sl_buf *b)
{
    return b->len - b->off;
}

static inline const char *
sl_buf_ptr(const struct sl_buf *b)
{
    return b->data ? b->data + b->off : "";
}

/* The slow path of sl_buf_reserve(): slides or grows the storage. */
char *sl_buf_grow(struct sl_buf *b, size_t n);

/*
 * Makes room for n more bytes and returns where they go; commit with sl_buf_commit().
 * Inline because the JSON writer calls it for every piece of every event it writes.
 */
static inline char *
sl_buf_reserve(struct sl_buf *b, size_t n)
{
    if (b->cap - b->len >= n)
        return b->data + b->len;
    return sl_buf_grow(b, n);
}

static inline void
sl_buf_commit(struct sl_buf *b, size_t n)
{
    b->len += n;
}

static inline void
sl_buf_append(struct sl_buf *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    memcpy(sl_buf_reserve(b, n), p, n);
    b->len += n;
}

static inline void
sl_buf_append_byte(struct sl_buf *b, char c)
{
    *sl_buf_reserve(b, 1) = c;
    b->len++;
}

void sl_buf_append_str(struct sl_buf *b, const char *s);
void sl_buf_printf(struct sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops n bytes from the front. When the buffer becomes empty its storage is freed. */
void sl_buf_consume(struct sl_buf *b, size_t n);

/* Empties the buffer but keeps its storage for reuse. */
static inline void
sl_buf_clear(struct sl_buf *b)
{
    b->off = b->len = 0;
}

/* Ensures the content is NUL-terminated (the NUL is not counted) and returns it. */
const char *sl_buf_cstr(struct sl_buf *b);

/* Hands the storage to the caller (who frees it with free()); the buffer becomes empty. */
char *sl_buf_steal(struct sl_buf *b, size_t *len);

void sl_buf_free(struct sl_buf *b);

#endif
