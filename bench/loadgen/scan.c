#include "scan.h"

#include <jansson.h>
#include <string.h>

size_t
lg_scan_stamps(const char *s, size_t n, lg_stamp_cb cb, void *ud)
{
    size_t found = 0;
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '\\') {
            i += 2;
            continue;
        }
        if (c != '@') {
            i++;
            continue;
        }
        i++;
        uint64_t v = 0;
        size_t digits = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            v = v * 10 + (uint64_t)(s[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0)
            continue;
        found++;
        if (cb)
            cb(ud, v);
    }
    return found;
}

size_t
lg_scan_string_end(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *q = memchr(s + i, '"', n - i);
        if (q == NULL)
            return n;
        size_t at = (size_t)(q - s);
        /* The quote is escaped when an odd number of backslashes precede it. */
        size_t bs = 0;
        while (bs < at - i && s[at - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return at;
        i = at + 1;
    }
    return n;
}

static bool
starts(const char *p, size_t n, const char *lit, size_t litlen)
{
    return n >= litlen && memcmp(p, lit, litlen) == 0;
}

#define STARTS(p, n, lit) starts((p), (n), (lit), sizeof(lit) - 1)

int
lg_scan_native_delta(const char *msg, size_t len, struct lg_delta *d)
{
    static const char head[] = "{\"type\":\"delta\",\"id\":\"";
    if (!STARTS(msg, len, head))
        return 0;
    const char *p = msg + sizeof(head) - 1;
    size_t n = len - (sizeof(head) - 1);
    size_t idend = lg_scan_string_end(p, n);
    if (idend == n)
        return 0;
    d->id = sl_slice_make(p, idend);
    p += idend + 1;
    n -= idend + 1;
    /* ,"seq":<n> then ,"text":" or ,"tool_call": */
    if (!STARTS(p, n, ",\"seq\":"))
        return 0;
    p += 7;
    n -= 7;
    uint64_t seq = 0;
    size_t digits = 0;
    while (n > 0 && *p >= '0' && *p <= '9') {
        if (++digits > 19)
            return 0;
        seq = seq * 10 + (uint64_t)(*p - '0');
        p++;
        n--;
    }
    if (digits == 0)
        return 0;
    d->seq = seq;
    if (STARTS(p, n, ",\"text\":\"")) {
        p += 9;
        n -= 9;
        size_t end = lg_scan_string_end(p, n);
        if (end == n)
            return 0;
        d->text = sl_slice_make(p, end);
        d->tool = false;
        return 1;
    }
    if (STARTS(p, n, ",\"tool_call\":")) {
        d->text = sl_slice_make("", 0);
        d->tool = true;
        return 1;
    }
    return 0;
}

int
lg_scan_openai_chunk(const char *data, size_t len, struct sl_slice *text, bool *finish, bool *error)
{
    static const char content[] = "\"content\":\"";
    static const char fin[] = "\"finish_reason\":\"";
    *finish = memmem(data, len, fin, sizeof(fin) - 1) != NULL;
    *error = STARTS(data, len, "{\"error\":");
    const char *c = memmem(data, len, content, sizeof(content) - 1);
    if (c == NULL)
        return 0;
    const char *p = c + sizeof(content) - 1;
    size_t n = len - (size_t)(p - data);
    size_t end = lg_scan_string_end(p, n);
    if (end == n)
        return 0;
    *text = sl_slice_make(p, end);
    return 1;
}

void
lg_scan_error_name(const char *data, size_t len, char *out, size_t cap)
{
    json_t *root = json_loadb(data, len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    const char *name = json_string_value(json_object_get(e, "code"));
    if (name == NULL || *name == '\0')
        name = json_string_value(json_object_get(e, "type"));
    if (name == NULL || *name == '\0')
        name = "SSE_ERROR_EVENT";
    size_t i;
    for (i = 0; i + 1 < cap && name[i]; i++) {
        char c = name[i];
        out[i] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
    }
    if (cap > 0)
        out[i] = '\0';
    json_decref(root);
}

int
lg_scan_u32(struct sl_slice s, uint32_t *out)
{
    if (s.len == 0 || s.len > 10)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s.ptr[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}
