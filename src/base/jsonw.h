/*
 * Appending JSON text to a buffer without building a document.
 *
 * Parsing uses jansson; writing the per-token events does not, because building a
 * json_t tree costs several allocations per token on the hottest path of the gateway.
 * These helpers write straight into the destination buffer. Strings are escaped per
 * RFC 8259 and made valid UTF-8 (invalid sequences become U+FFFD), so the result can
 * always go out as a WebSocket text frame.
 */
#ifndef SL_BASE_JSONW_H
#define SL_BASE_JSONW_H

#include <stddef.h>

#include "base/buf.h"

/* Writes a quoted, escaped JSON string. */
void sl_jsonw_str(struct sl_buf *b, const char *s, size_t n);
void sl_jsonw_cstr(struct sl_buf *b, const char *s);

/* Writes the escaped content of a string without the surrounding quotes. */
void sl_jsonw_escape(struct sl_buf *b, const char *s, size_t n);

void sl_jsonw_int(struct sl_buf *b, long long v);
void sl_jsonw_uint(struct sl_buf *b, unsigned long long v);

/* Shortest representation that reads back as the same double; non-finite as null. */
void sl_jsonw_double(struct sl_buf *b, double v);

/* Appends literal JSON text (a key with its quotes and colon, punctuation, ...). */
static inline void
sl_jsonw_raw(struct sl_buf *b, const char *s, size_t n)
{
    sl_buf_append(b, s, n);
}

#define SL_JSONW_LIT(b, lit) sl_jsonw_raw((b), (lit), sizeof(lit) - 1)

#endif
