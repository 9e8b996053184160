#include "obs/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/utf8.h"

/* Room kept free at all times for the end of a record: ,"truncated":true}\n */
#define TAIL 24
_Static_assert(TAIL >= sizeof(",\"truncated\":true}\n"), "the tail fits");

static int log_level = SL_LOG_INFO;
static bool log_json;
static int log_fd = STDERR_FILENO;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void
sl_log_setup(int level, bool json)
{
    log_level = level;
    log_json = json;
}

void
sl_log_set_fd(int fd)
{
    log_fd = fd;
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

static size_t
room(const struct sl_logrec *r)
{
    return sizeof(r->buf) - TAIL - r->len;
}

/* Appends all of s or nothing. */
static bool
put(struct sl_logrec *r, const char *s, size_t n)
{
    if (n > room(r))
        return false;
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    return true;
}

/* Length of the valid UTF-8 character at s[0..n), or 0 if the bytes are not one. */
static size_t
utf8_char(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC0 ? 2 : 1;
    if (len > n || !sl_utf8_valid(s, len))
        return 0;
    return len;
}

/*
 * Appends s escaped for a quoted value (the same escapes serve JSON and logfmt), keeping
 * `keep` bytes free for what closes the value. Stops before the first character that
 * does not fit, so a cut never splits a character or an escape; returns false then.
 */
static bool
put_escaped(struct sl_logrec *r, const char *s, size_t n, size_t keep)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        char tmp[8];
        const char *out = tmp;
        size_t len, step = 1;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            len = 2;
        } else if (c == '\n' || c == '\r' || c == '\t') {
            tmp[0] = '\\';
            tmp[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            len = 2;
        } else if (c < 0x20 || c == 0x7f) {
            len = (size_t)snprintf(tmp, sizeof(tmp), "\\u%04x", c);
        } else if (c < 0x80) {
            out = s + i;
            len = 1;
        } else {
            step = utf8_char(u + i, n - i);
            if (step == 0) {
                out = "\\ufffd";
                len = 6;
                step = 1;
            } else {
                out = s + i;
                len = step;
            }
        }
        if (len + keep > room(r))
            return false;
        put(r, out, len);
        i += step;
    }
    return true;
}

/* Writes the separator and key of a field; returns where the field began, for a rollback. */
static size_t
field_key(struct sl_logrec *r, const char *key, bool *ok)
{
    size_t mark = r->len;
    if (r->json)
        *ok = put(r, ",\"", 2) && put(r, key, strlen(key)) && put(r, "\":", 2);
    else
        *ok = put(r, " ", 1) && put(r, key, strlen(key)) && put(r, "=", 1);
    return mark;
}

static void
rollback(struct sl_logrec *r, size_t mark)
{
    r->len = mark;
    r->truncated = true;
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
    int n =
        snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    const char *lv = level_names[level];
    if (r->json) {
        put(r, "{\"ts\":\"", 7);
        put(r, when, (size_t)n);
        put(r, "\",\"level\":\"", 11);
        put(r, lv, strlen(lv));
        put(r, "\",\"event\":\"", 11);
        put_escaped(r, event, strlen(event), 1);
        put(r, "\"", 1);
    } else {
        put(r, "ts=", 3);
        put(r, when, (size_t)n);
        put(r, " level=", 7);
        put(r, lv, strlen(lv));
        put(r, " event=", 7);
        put(r, event, strlen(event));
    }
    return true;
}

/* logfmt leaves a value bare when it holds nothing a reader could take for syntax. */
static bool
needs_quotes(const char *v, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            return true;
    }
    return false;
}

void
sl_log_strn(struct sl_logrec *r, const char *key, const char *value, size_t n)
{
    bool ok;
    size_t mark = field_key(r, key, &ok);
    if (!ok)
        goto fail;
    if (value == NULL) {
        if (!(r->json ? put(r, "null", 4) : put(r, "\"\"", 2)))
            goto fail;
        return;
    }
    bool quote = r->json || needs_quotes(value, n);
    if (quote && !put(r, "\"", 1))
        goto fail;
    if (!put_escaped(r, value, n, quote ? 1 : 0)) {
        /* Keep the beginning of a long value: more useful than nothing. */
        r->truncated = true;
        if (r->len - mark < strlen(key) + 8) {
            rollback(r, mark);
            return;
        }
    }
    if (quote)
        put(r, "\"", 1); /* put_escaped left room for it */
    return;
fail:
    rollback(r, mark);
}

void
sl_log_str(struct sl_logrec *r, const char *key, const char *value)
{
    sl_log_strn(r, key, value, value ? strlen(value) : 0);
}

static void
raw_field(struct sl_logrec *r, const char *key, const char *v, size_t n)
{
    bool ok;
    size_t mark = field_key(r, key, &ok);
    if (!ok || !put(r, v, n))
        rollback(r, mark);
}

void
sl_log_int(struct sl_logrec *r, const char *key, long long value)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%lld", value);
    raw_field(r, key, tmp, (size_t)n);
}

void
sl_log_uint(struct sl_logrec *r, const char *key, unsigned long long value)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof(tmp), "%llu", value);
    raw_field(r, key, tmp, (size_t)n);
}

void
sl_log_double(struct sl_logrec *r, const char *key, double value)
{
    char tmp[32];
    int n;
    if (isfinite(value))
        n = snprintf(tmp, sizeof(tmp), "%.6g", value);
    else /* JSON has no NaN or infinity */
        n = snprintf(tmp, sizeof(tmp), "%s", r->json ? "null" : isnan(value) ? "NaN" : "Inf");
    raw_field(r, key, tmp, (size_t)n);
}

void
sl_log_bool(struct sl_logrec *r, const char *key, bool value)
{
    raw_field(r, key, value ? "true" : "false", value ? 4 : 5);
}

void
sl_log_end(struct sl_logrec *r)
{
    /* TAIL bytes are always free here. */
    static const char jt[] = ",\"truncated\":true", lt[] = " truncated=true";
    if (r->truncated) {
        const char *t = r->json ? jt : lt;
        size_t n = r->json ? sizeof(jt) - 1 : sizeof(lt) - 1;
        memcpy(r->buf + r->len, t, n);
        r->len += n;
    }
    if (r->json)
        r->buf[r->len++] = '}';
    r->buf[r->len++] = '\n';
    ssize_t ignored = write(log_fd, r->buf, r->len);
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
