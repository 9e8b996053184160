/*
 * Incremental splitter for newline-delimited JSON bodies (Ollama's /api/chat stream).
 *
 * Feed it the body bytes as they arrive, in any split; it calls back once per complete
 * line with the line's bytes, which the consumer parses (with jansson). The splitter never
 * looks inside a line: it only finds the LF that ends it, removes one CR before that LF
 * (CRLF is tolerated), and skips lines made only of JSON whitespace (blank lines).
 *
 *     struct sl_ndjson p;
 *     sl_ndjson_init(&p, on_line, stream, 1 << 20);
 *     ...  rc = sl_ndjson_feed(&p, ptr, n);
 *     ...  if (sl_ndjson_finish(&p, &tail) == 1) truncated;
 *     sl_ndjson_cleanup(&p);
 *
 * Lines that arrive whole within one feed are delivered as slices of the caller's buffer;
 * only a line cut by a feed boundary is copied, into one buffer reused for the whole stream.
 */
#ifndef SL_UPSTREAM_NDJSON_H
#define SL_UPSTREAM_NDJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/util.h"

/* Errors of sl_ndjson_feed() / sl_ndjson_finish(); callbacks should stop with positive values. */
enum sl_ndjson_error {
    SL_NDJSON_ERR_LINE_TOO_LONG = -1211, /* a line (LF excluded, CR included) over the cap */
    SL_NDJSON_ERR_STOPPED = -1212,       /* sl_ndjson_finish() after a stop, error or finish */
};

/* A short English description of an sl_ndjson_error (or "unknown NDJSON error"). */
const char *sl_ndjson_strerror(int code);

/*
 * A complete, non-blank line without its LF or the CR before it. The slice is borrowed and
 * valid only during the call (ptr never NULL, not NUL-terminated). Return 0 to go on or
 * non-zero to stop at once (sl_ndjson_feed returns that value). The callback must not feed,
 * finish, clean up or free the parser; to cancel, return non-zero and release it afterwards.
 */
typedef int (*sl_ndjson_line_cb)(void *ud, struct sl_slice line);

/* Parser state; public so that a stream can embed it, fields private to ndjson.c. */
struct sl_ndjson {
    sl_ndjson_line_cb on_line;
    void *ud;
    size_t max;         /* cap on one line */
    struct sl_buf line; /* a line cut by a feed boundary, until its LF arrives */
    int stopped;        /* non-zero once stopped: the value feed keeps returning */
};

/* Prepares p. max_line_bytes caps one line (LF excluded) and so the buffer. Never fails. */
void sl_ndjson_init(struct sl_ndjson *p, sl_ndjson_line_cb on_line, void *ud,
                    size_t max_line_bytes);

/*
 * Splits len bytes (buf may be NULL when len is 0) into lines. Returns 0 when all bytes were
 * consumed, the non-zero value of a callback that stopped, or SL_NDJSON_ERR_LINE_TOO_LONG.
 * After a non-zero return the parser is stopped: further feeds return the same value without
 * calling back and sl_ndjson_finish() returns SL_NDJSON_ERR_STOPPED. The parser keeps no
 * pointer into buf once the call returns.
 */
int sl_ndjson_feed(struct sl_ndjson *p, const char *buf, size_t len);

/*
 * Ends the stream. Returns 0 if the body ended after an LF (or with only whitespace after
 * it), 1 if a non-blank unterminated tail was left (a truncated stream: Ollama ends every
 * object with LF), or SL_NDJSON_ERR_STOPPED if the parser had already stopped or finished.
 * When tail is not NULL and the result is 0 or 1, *tail is set to the bytes after the last LF,
 * exactly as received (empty if none), valid until sl_ndjson_cleanup(). Calls no callback;
 * the parser is stopped afterwards (feeds return SL_NDJSON_ERR_STOPPED).
 */
int sl_ndjson_finish(struct sl_ndjson *p, struct sl_slice *tail);

/* Frees the buffer. p may then be initialised again. Safe after any return of any call. */
void sl_ndjson_cleanup(struct sl_ndjson *p);

#endif
