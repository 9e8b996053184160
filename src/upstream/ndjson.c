/*
 * NDJSON line splitter. See ndjson.h for the contract.
 */
#include "upstream/ndjson.h"

#include <string.h>

#include "base/alloc.h"

const char *
sl_ndjson_strerror(int code)
{
    switch (code) {
    case SL_NDJSON_ERR_LINE_TOO_LONG:
        return "NDJSON line longer than the limit";
    case SL_NDJSON_ERR_STOPPED:
        return "NDJSON parser already stopped";
    default:
        return "unknown NDJSON error";
    }
}

void
sl_ndjson_init(struct sl_ndjson *p, sl_ndjson_line_cb on_line, void *ud, size_t max_line_bytes)
{
    sl_assert(on_line != NULL);
    memset(p, 0, sizeof(*p));
    p->on_line = on_line;
    p->ud = ud;
    p->max = max_line_bytes;
}

void
sl_ndjson_cleanup(struct sl_ndjson *p)
{
    sl_buf_free(&p->line);
}

/* JSON's insignificant whitespace (RFC 8259): a line of only these is skipped. */
static bool
is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
            return false;
    }
    return true;
}

static int
deliver(struct sl_ndjson *p, const char *line, size_t n)
{
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (is_blank(line, n))
        return 0;
    return p->on_line(p->ud, sl_slice_make(line, n));
}

int
sl_ndjson_feed(struct sl_ndjson *p, const char *buf, size_t len)
{
    int rc = 0;
    size_t pos = 0;

    if (p->stopped != 0)
        return p->stopped;

    while (pos < len) {
        const char *lf = memchr(buf + pos, '\n', len - pos);
        size_t eol = lf ? (size_t)(lf - buf) : len;
        size_t n = eol - pos;
        size_t held = sl_buf_len(&p->line);
        if (n > p->max || held > p->max - n) {
            rc = SL_NDJSON_ERR_LINE_TOO_LONG;
            goto out;
        }
        if (lf == NULL) {
            sl_buf_append(&p->line, buf + pos, n);
            break;
        }
        if (held > 0) {
            sl_buf_append(&p->line, buf + pos, n);
            rc = deliver(p, sl_buf_ptr(&p->line), sl_buf_len(&p->line));
            sl_buf_clear(&p->line);
        } else {
            rc = deliver(p, buf + pos, n);
        }
        pos = eol + 1;
        if (rc != 0)
            goto out;
    }
out:
    if (rc != 0)
        p->stopped = rc;
    return rc;
}

int
sl_ndjson_finish(struct sl_ndjson *p, struct sl_slice *tail)
{
    if (p->stopped != 0)
        return SL_NDJSON_ERR_STOPPED;
    p->stopped = SL_NDJSON_ERR_STOPPED;
    struct sl_slice t = sl_slice_make(sl_buf_ptr(&p->line), sl_buf_len(&p->line));
    if (tail != NULL)
        *tail = t;
    return is_blank(t.ptr, t.len) ? 0 : 1;
}
