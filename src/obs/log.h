/*
 * Structured logs: one line per event, logfmt or JSON (log.format), to stderr.
 *
 * A record is built field by field in a stack buffer and written with a single
 * write(2), so lines from several worker threads never interleave. Keys are fixed
 * identifiers; values are escaped for the chosen format, and every line parses on its
 * own whatever the values hold: control characters are escaped, bytes that are not
 * UTF-8 become U+FFFD, and a record too long for the buffer keeps its first fields
 * whole, cuts a long string value on a character boundary, drops what does not fit,
 * and ends with truncated=true.
 *
 *     struct sl_logrec r;
 *     if (sl_log_begin(&r, SL_LOG_INFO, "stream.end")) {
 *         sl_log_str(&r, "model", model);
 *         sl_log_int(&r, "tokens", n);
 *         sl_log_end(&r);
 *     }
 *
 * Every line starts with ts (UTC, milliseconds), level and event. The usual ids:
 * worker, conn (unique in the process), session, stream.
 *
 * What never goes into a log: tokens, prompts, API keys, JWTs, query strings. Log the
 * ids instead.
 */
#ifndef SL_OBS_LOG_H
#define SL_OBS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sl_log_level { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR, SL_LOG_OFF };

#define SL_LOG_LINE_MAX 2048

struct sl_logrec {
    char buf[SL_LOG_LINE_MAX];
    size_t len;
    bool json;
    bool truncated;
};

/* Process-wide settings, set once at start-up before workers run. */
void sl_log_setup(int level, bool json);
int sl_log_level_from_name(const char *name); /* -1 if unknown */

/* Where lines go (default STDERR_FILENO); for tests. Set before workers run. */
void sl_log_set_fd(int fd);

/* Starts a record; returns false (and nothing need be done) below the configured level. */
bool sl_log_begin(struct sl_logrec *r, enum sl_log_level level, const char *event);
void sl_log_str(struct sl_logrec *r, const char *key, const char *value); /* NULL: null / "" */
void sl_log_strn(struct sl_logrec *r, const char *key, const char *value, size_t n);
void sl_log_int(struct sl_logrec *r, const char *key, long long value);
void sl_log_uint(struct sl_logrec *r, const char *key, unsigned long long value);
void sl_log_double(struct sl_logrec *r, const char *key, double value);
void sl_log_bool(struct sl_logrec *r, const char *key, bool value);
/* Writes the line. The record may be reused with sl_log_begin afterwards. */
void sl_log_end(struct sl_logrec *r);

/* One-shot message with a free-form text field `msg`. */
void sl_log_msg(enum sl_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
