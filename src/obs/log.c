#include "obs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int log_level = SL_LOG_INFO;
static bool log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void
sl_log_setup(int level, bool json)
{
    log_level = level;
    log_json = json;
}

int
sl_log_level_from_name(const char *name)
{
    for (int i = 0; i <= SL_LOG_OFF; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return SL_LOG_WARN;
    return -1;
}

static void
put(struct sl_logrec *r, const char *s, size_t n)
{
    /* Keep room for the closing brace and newline. */
    size_t room = sizeof(r->buf) - 3 - r->len;
    if (n > room) {
        n = room;
        r->truncated = true;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
}

static void
put_escaped(struct sl_logrec *r, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[8];
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            put(r, tmp, 2);
        } else if (c == '\n') {
            put(r, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(tmp, sizeof(tmp), "\\u%04x", c);
            put(r, tmp, 6);
        } else {
            put(r, (const char *)&s[i], 1);
        }
    }
}

static void
put_key(struct sl_logrec *r, const char *key)
{
    if (r->json) {
        put(r, ",\"", 2);
        put(r, key, strlen(key));
        put(r, "\":", 2);
    } else {
        put(r, " ", 1);
        put(r, key, strlen(key));
        put(r, "=", 1);
    }
}

bool
sl_log_begin(struct sl_logrec *r, enum sl_log_level level, const char *event)
{
    if ((int)level < log_level)
        return false;
    r->len = 0;
    r->json = log_json;
    r->truncated = false;

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    int n = snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000);
    if (r->json) {
        put(r, "{\"ts\":\"", 7);
        put(r, when, (size_t)n);
        put(r, "\",\"level\":\"", 11);
        put(r, level_names[level], strlen(level_names[level]));
        put(r, "\",\"event\":\"", 11);
        put_escaped(r, event, strlen(event));
        put(r, "\"", 1);
    } else {
        put(r, "ts=", 3);
        put(r, when, (size_t)n);
        put(r, " level=", 7);
        put(r, level_names[level], strlen(level_names[level]));
        put(r, " event=", 7);
        put(r, event, strlen(event));
    }
    return true;
}

void
sl_log_strn(struct sl_logrec *r, const char *key, const char *value, size_t n)
{
    put_key(r, key);
    if (value == NULL) {
        put(r, r->json ? "null" : "\"\"", r->json ? 4 : 2);
        return;
    }
    bool quote = r->json || n == 0;
    for (size_t i = 0; !quote && i < n; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            quote = true;
    }
    if (quote)
        put(r, "\"", 1);
    put_escaped(r, value, n);
    if (quote)
        put(r, "\"", 1);
}

void
sl_log_str(struct sl_logrec *r, const char *key, const char *value)
{
    sl_log_strn(r, key, value, value ? strlen(value) : 0);
}

void
sl_log_int(struct sl_logrec *r, const char *key, long long value)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", value);
    put_key(r, key);
    put(r, tmp, (size_t)n);
}

void
sl_log_uint(struct sl_logrec *r, const char *key, unsigned long long value)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", value);
    put_key(r, key);
    put(r, tmp, (size_t)n);
}

void
sl_log_double(struct sl_logrec *r, const char *key, double value)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%.6g", value);
    put_key(r, key);
    put(r, tmp, (size_t)n);
}

void
sl_log_bool(struct sl_logrec *r, const char *key, bool value)
{
    put_key(r, key);
    put(r, value ? "true" : "false", value ? 4 : 5);
}

void
sl_log_end(struct sl_logrec *r)
{
    if (r->truncated) {
        /* put() always leaves three bytes for this tail. */
        r->len = sizeof(r->buf) - 3;
    }
    if (r->json)
        r->buf[r->len++] = '}';
    r->buf[r->len++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, r->buf, r->len);
    (void)ignored;
}

void
sl_log_msg(enum sl_log_level level, const char *event, const char *fmt, ...)
{
    struct sl_logrec r;
    if (!sl_log_begin(&r, level, event))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl_log_str(&r, "msg", msg);
    sl_log_end(&r);
}
