/*
 * Structured logs: one line per event, logfmt or JSON, to stderr.
 *
 * A record is built field by field in a stack buffer and written with a single
 * write(2), so lines from several worker threads never interleave. Keys are fixed
 * identifiers; values are escaped for the chosen format.
 *
 *     struct sl_logrec r;
 *     if (sl_log_begin(&r, SL_LOG_INFO, "stream.end")) {
 *         sl_log_str(&r, "model", model);
 *         sl_log_int(&r, "tokens", n);
 *         sl_log_end(&r);
 *     }
 *
 * What never goes into a log: tokens, prompts, API keys, JWTs. Log the ids instead.
 */
#ifndef SL_OBS_LOG_H
#define SL_OBS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sl_log_level { SL_LOG_DEBUG, SL_LOG_INFO, SL_LOG_WARN, SL_LOG_ERROR, SL_LOG_OFF };

struct sl_logrec {
    char buf[2048];
    size_t len;
    bool json;
    bool truncated;
};

/* Process-wide settings, set once at start-up before workers run. */
void sl_log_setup(int level, bool json);
int sl_log_level_from_name(const char *name); /* -1 if unknown */

/* Starts a record; returns false (and nothing need be done) below the configured level. */
bool sl_log_begin(struct sl_logrec *r, enum sl_log_level level, const char *event);
void sl_log_str(struct sl_logrec *r, const char *key, const char *value);
void sl_log_strn(struct sl_logrec *r, const char *key, const char *value, size_t n);
void sl_log_int(struct sl_logrec *r, const char *key, long long value);
void sl_log_uint(struct sl_logrec *r, const char *key, unsigned long long value);
void sl_log_double(struct sl_logrec *r, const char *key, double value);
void sl_log_bool(struct sl_logrec *r, const char *key, bool value);
void sl_log_end(struct sl_logrec *r);

/* One-shot message with a free-form text field `msg`. */
void sl_log_msg(enum sl_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
