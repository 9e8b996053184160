#include "limits/statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/alloc.h"
#include "base/buf.h"
#include "base/util.h"

#define FORMAT "sluice-budgets"
#define VERSION 1
#define USER_MAX 1024
#define USD_MAX 1e12

struct statefile {
    struct sl_limits_store ops; /* first: the store is the statefile */
    char *path;
};

/* --- dates ------------------------------------------------------------------------------ */

static void
fmt_day(char out[48], int64_t day)
{
    int64_t y;
    unsigned m, d;
    sl_limits_civil(day, &y, &m, &d);
    snprintf(out, 48, "%04lld-%02u-%02u", (long long)y, m, d);
}

static void
fmt_month(char out[48], int64_t month)
{
    int64_t y = 1970 + (month >= 0 ? month / 12 : (month - 11) / 12);
    unsigned m = (unsigned)(month - (y - 1970) * 12) + 1;
    snprintf(out, 48, "%04lld-%02u", (long long)y, m);
}

/* n decimal digits at s. */
static bool
digits(const char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DD" (a real date, 1970 to 9999) -> day number. */
static bool
parse_day(const char *s, int64_t *out)
{
    unsigned y, m, d;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) ||
        !digits(s + 5, 2, &m) || !digits(s + 8, 2, &d) || y < 1970 || m < 1 || m > 12 || d < 1 ||
        d > 31)
        return false;
    int64_t day = sl_limits_days_from_civil(y, m, d);
    int64_t yy;
    unsigned mm, dd;
    sl_limits_civil(day, &yy, &mm, &dd);
    if (yy != (int64_t)y || mm != m || dd != d) /* 2025-02-30 */
        return false;
    *out = day;
    return true;
}

/* "YYYY-MM" -> month number. */
static bool
parse_month(const char *s, int64_t *out)
{
    unsigned y, m;
    if (strlen(s) != 7 || s[4] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &m) || y < 1970 ||
        m < 1 || m > 12)
        return false;
    *out = ((int64_t)y - 1970) * 12 + (int64_t)m - 1;
    return true;
}

/* --- encoding --------------------------------------------------------------------------- */

char *
sl_statefile_encode(const struct sl_budget_rec *recs, size_t n, int64_t saved_at_ms)
{
    struct sl_buf b = {0};
    char day[48], month[48], at[32];
    time_t t = (time_t)(saved_at_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    sl_buf_printf(&b, "{\"format\":\"%s\",\"version\":%d,\"saved_at\":\"%s\",\"spend\":[", FORMAT,
                  VERSION, at);
    /* One record a line: a file an operator can read and diff. */
    for (size_t i = 0; i < n; i++) {
        fmt_day(day, recs[i].day);
        fmt_month(month, recs[i].month);
        json_t *r = json_object();
        json_object_set_new(r, "user", json_string(recs[i].user));
        json_object_set_new(r, "day", json_string(day));
        json_object_set_new(r, "day_usd", json_real(recs[i].day_usd));
        json_object_set_new(r, "month", json_string(month));
        json_object_set_new(r, "month_usd", json_real(recs[i].month_usd));
        char *line = json_dumps(r, JSON_COMPACT | JSON_REAL_PRECISION(17) | JSON_PRESERVE_ORDER);
        json_decref(r);
        if (line == NULL)
            sl_panic("json_dumps failed");
        sl_buf_printf(&b, "%s\n%s", i ? "," : "", line);
        free(line);
    }
    sl_buf_append_str(&b, "\n]}\n");
    sl_buf_cstr(&b); /* the NUL the caller relies on */
    return sl_buf_steal(&b, NULL);
}

static int
bad(char *err, size_t errlen, const char *fmt, size_t i, const char *field)
{
    snprintf(err, errlen, fmt, i, field);
    return -1;
}

static bool
amount(json_t *v, double *out)
{
    if (!json_is_number(v))
        return false;
    double d = json_number_value(v);
    if (!isfinite(d) || d < 0 || d >= USD_MAX)
        return false;
    *out = d;
    return true;
}

int
sl_statefile_decode(const char *text, size_t len, struct sl_budget_rec **out, size_t *nout,
                    char *err, size_t errlen)
{
    json_error_t je;
    int rc = -1;
    struct sl_budget_rec *recs = NULL;
    size_t n = 0;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(err, errlen, "not JSON (line %d: %s)", je.line, je.text);
        return -1;
    }
    json_t *spend = json_object_get(root, "spend");
    if (!json_is_object(root) || !json_is_string(json_object_get(root, "format")) ||
        strcmp(json_string_value(json_object_get(root, "format")), FORMAT) != 0) {
        snprintf(err, errlen, "not a sluice budgets file (no \"format\":\"%s\")", FORMAT);
        goto out;
    }
    if (!json_is_integer(json_object_get(root, "version")) ||
        json_integer_value(json_object_get(root, "version")) != VERSION) {
        snprintf(err, errlen, "unsupported version (this sluice reads version %d)", VERSION);
        goto out;
    }
    if (!json_is_array(spend)) {
        snprintf(err, errlen, "\"spend\" is not a list");
        goto out;
    }
    size_t total = json_array_size(spend);
    recs = sl_calloc(total ? total : 1, sizeof(*recs));
    for (size_t i = 0; i < total; i++) {
        json_t *r = json_array_get(spend, i);
        json_t *user = json_object_get(r, "user");
        json_t *day = json_object_get(r, "day"), *month = json_object_get(r, "month");
        struct sl_budget_rec rec = {0};
        if (!json_is_object(r)) {
            bad(err, errlen, "spend[%zu]: not an object%s", i, "");
            goto out;
        }
        if (!json_is_string(user) || json_string_length(user) == 0 ||
            json_string_length(user) > USER_MAX ||
            strlen(json_string_value(user)) != json_string_length(user)) {
            bad(err, errlen, "spend[%zu].%s: expected a name of 1 to 1024 bytes", i, "user");
            goto out;
        }
        if (!json_is_string(day) || !parse_day(json_string_value(day), &rec.day)) {
            bad(err, errlen, "spend[%zu].%s: expected a date YYYY-MM-DD", i, "day");
            goto out;
        }
        if (!json_is_string(month) || !parse_month(json_string_value(month), &rec.month)) {
            bad(err, errlen, "spend[%zu].%s: expected a month YYYY-MM", i, "month");
            goto out;
        }
        if (!amount(json_object_get(r, "day_usd"), &rec.day_usd)) {
            bad(err, errlen, "spend[%zu].%s: expected an amount, 0 or more", i, "day_usd");
            goto out;
        }
        if (!amount(json_object_get(r, "month_usd"), &rec.month_usd)) {
            bad(err, errlen, "spend[%zu].%s: expected an amount, 0 or more", i, "month_usd");
            goto out;
        }
        rec.user = sl_strdup(json_string_value(user));
        recs[n++] = rec;
    }
    *out = recs;
    *nout = n;
    recs = NULL;
    rc = 0;
out:
    sl_budget_recs_free(recs, n);
    json_decref(root);
    return rc;
}

/* --- the file --------------------------------------------------------------------------- */

/* Reads the whole file. Returns 0 (*text NULL when there is no file), or -1 with err. */
static int
read_all(const char *path, char **text, size_t *len, bool *too_big, char *err, size_t errlen)
{
    *text = NULL;
    *len = 0;
    *too_big = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > SL_STATEFILE_MAX_BYTES) {
        *too_big = true;
        close(fd);
        return 0;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *buf = sl_malloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            if (cap > SL_STATEFILE_MAX_BYTES + 1)
                break;
            buf = sl_realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (n > SL_STATEFILE_MAX_BYTES) {
        free(buf);
        *too_big = true;
        return 0;
    }
    *text = buf;
    *len = n;
    return 0;
}

static int
file_load(struct sl_limits_store *st, struct sl_budget_rec **recs, size_t *n, char *err,
          size_t errlen)
{
    struct statefile *f = (struct statefile *)st;
    char *text;
    size_t len;
    bool too_big;
    *recs = NULL;
    *n = 0;
    if (read_all(f->path, &text, &len, &too_big, err, errlen) != 0)
        return -1;
    if (text == NULL && !too_big)
        return 0;
    char why[300];
    if (too_big)
        snprintf(why, sizeof(why), "larger than %u bytes", SL_STATEFILE_MAX_BYTES);
    else if (sl_statefile_decode(text, len, recs, n, why, sizeof(why)) == 0) {
        free(text);
        return 0;
    }
    free(text);
    char aside[4096];
    snprintf(aside, sizeof(aside), "%s.corrupt-%lld", f->path, (long long)(sl_wall_ms() / 1000));
    if (rename(f->path, aside) != 0) {
        snprintf(err, errlen, "%s is not a valid budgets file (%s) and cannot be set aside: %s",
                 f->path, why, strerror(errno));
        return -1;
    }
    snprintf(err, errlen, "%s is not a valid budgets file (%s): kept as %s", f->path, why, aside);
    return 1;
}

static int
write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Flushes the directory holding path, so that a rename in it survives a power cut. */
static void
sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse it on directories */
        close(fd);
    }
}

static int
file_save(struct sl_limits_store *st, const struct sl_budget_rec *recs, size_t n, char *err,
          size_t errlen)
{
    struct statefile *f = (struct statefile *)st;
    char tmp[4096];
    int rc = -1;
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", f->path) >= sizeof(tmp)) {
        snprintf(err, errlen, "path too long: %s", f->path);
        return -1;
    }
    char *text = sl_statefile_encode(recs, n, (int64_t)sl_wall_ms());
    size_t len = strlen(text);
    /* A leftover from a crash may have other permissions: start from a new file. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write_all(fd, text, len) != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        goto out;
    }
    if (close(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, f->path) != 0) {
        snprintf(err, errlen, "cannot replace %s: %s", f->path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    sync_dir(f->path);
    rc = 0;
out:
    free(text);
    return rc;
}

static void
file_free(struct sl_limits_store *st)
{
    struct statefile *f = (struct statefile *)st;
    free(f->path);
    free(f);
}

struct sl_limits_store *
sl_statefile_new(const char *path)
{
    struct statefile *f = sl_calloc(1, sizeof(*f));
    f->ops = (struct sl_limits_store){.load = file_load, .save = file_save, .free = file_free};
    f->path = sl_strdup(path);
    return &f->ops;
}
