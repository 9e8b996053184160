/*
 * Allocation that never returns NULL.
 *
 * sluice treats running out of memory as fatal, like Redis's zmalloc: a gateway
 * that limps on after a failed malloc corrupts streams in ways nobody can debug.
 * Every buffer that grows with peer input has its own cap instead (see buf.h),
 * so a hostile client hits a limit long before the allocator does.
 */
#ifndef SL_BASE_ALLOC_H
#define SL_BASE_ALLOC_H

#include <stddef.h>

void *sl_malloc(size_t n);
void *sl_calloc(size_t count, size_t n);
void *sl_realloc(void *p, size_t n);
char *sl_strdup(const char *s);
char *sl_strndup(const char *s, size_t n);

/* Prints a message and aborts. Used for allocation failure and broken invariants. */
_Noreturn void sl_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Internal invariants, kept in release builds (Redis serverAssert). Never use on peer bytes. */
#define sl_assert(e)                                                                               \
    ((e) ? (void)0 : sl_panic("assertion failed: %s (%s:%d)", #e, __FILE__, __LINE__))

#define SL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define SL_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

#endif
