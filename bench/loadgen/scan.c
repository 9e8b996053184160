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

/* --- JSON members and Socket.IO packets -------------------------------------------------- */

static size_t
skip_ws(const char *s, size_t i, size_t n)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* The end (one past) of the JSON value starting at s[i], or 0 if it does not end. Nested
 * containers are skipped by counting brackets outside strings: enough to step over values
 * whose content the caller does not look at. */
static size_t
skip_value(const char *s, size_t i, size_t n)
{
    if (i >= n)
        return 0;
    if (s[i] == '"') {
        size_t e = lg_scan_string_end(s + i + 1, n - i - 1);
        return i + 1 + e < n ? i + e + 2 : 0;
    }
    if (s[i] == '{' || s[i] == '[') {
        unsigned depth = 0;
        while (i < n) {
            char c = s[i];
            if (c == '"') {
                size_t e = lg_scan_string_end(s + i + 1, n - i - 1);
                if (i + 1 + e >= n)
                    return 0;
                i += e + 2;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return 0;
    }
    /* A number or a literal: up to the next delimiter. */
    size_t start = i;
    while (i < n && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
           s[i] != '\r' && s[i] != '\t')
        i++;
    return i > start ? i : 0;
}

int
lg_scan_members(const char *obj, size_t len, const char *const *keys, size_t n,
                struct lg_jval *vals)
{
    size_t found = 0;
    for (size_t k = 0; k < n; k++)
        vals[k] = (struct lg_jval){LG_J_NONE, {NULL, 0}};
    size_t i = skip_ws(obj, 0, len);
    if (i >= len || obj[i] != '{')
        return -1;
    i = skip_ws(obj, i + 1, len);
    if (i < len && obj[i] == '}')
        return 0;
    while (found < n) {
        if (i >= len || obj[i] != '"')
            return -1;
        size_t kl = lg_scan_string_end(obj + i + 1, len - i - 1);
        if (i + 1 + kl >= len)
            return -1;
        const char *key = obj + i + 1;
        i = skip_ws(obj, i + kl + 2, len);
        if (i >= len || obj[i] != ':')
            return -1;
        i = skip_ws(obj, i + 1, len);
        size_t end = skip_value(obj, i, len);
        if (end == 0)
            return -1;
        for (size_t k = 0; k < n; k++) {
            if (vals[k].kind != LG_J_NONE || strlen(keys[k]) != kl || memcmp(keys[k], key, kl) != 0)
                continue;
            if (obj[i] == '"')
                vals[k] = (struct lg_jval){LG_J_STRING, sl_slice_make(obj + i + 1, end - i - 2)};
            else if (end - i == 4 && memcmp(obj + i, "null", 4) == 0)
                vals[k] = (struct lg_jval){LG_J_NULL, sl_slice_make(obj + i, 4)};
            else
                vals[k] = (struct lg_jval){LG_J_OTHER, sl_slice_make(obj + i, end - i)};
            found++;
            break;
        }
        i = skip_ws(obj, end, len);
        if (i < len && obj[i] == ',') {
            i = skip_ws(obj, i + 1, len);
            continue;
        }
        if (i < len && obj[i] == '}')
            break;
        return -1;
    }
    return (int)found;
}

int
lg_scan_sio_packet(const char *msg, size_t len, struct lg_sio_packet *p)
{
    memset(p, 0, sizeof(*p));
    if (len < 2 || msg[0] != '4' || msg[1] < '0' || msg[1] > '6')
        return -1;
    p->type = msg[1];
    size_t i = 2;
    p->nsp = sl_slice_make("/", 1);
    if (i < len && msg[i] == '/') {
        const char *comma = memchr(msg + i, ',', len - i);
        size_t e = comma ? (size_t)(comma - msg) : len;
        p->nsp = sl_slice_make(msg + i, e - i);
        i = comma ? e + 1 : len;
    }
    while (i < len && msg[i] >= '0' && msg[i] <= '9') /* an ack id */
        i++;
    p->data = sl_slice_make(msg + i, len - i);
    if (p->type != '2')
        return 0;
    /* ["name",{...}] or ["name",{...},"offset"] */
    if (len - i < 4 || msg[i] != '[' || msg[i + 1] != '"' || msg[len - 1] != ']')
        return -1;
    i += 2;
    size_t ne = lg_scan_string_end(msg + i, len - i);
    if (i + ne >= len)
        return -1;
    p->event = sl_slice_make(msg + i, ne);
    i += ne + 1;
    if (msg[i] == ']')
        return 0; /* no argument */
    if (msg[i] != ',')
        return -1;
    i = skip_ws(msg, i + 1, len);
    size_t end = len - 1; /* the closing bracket */
    if (end > i && msg[end - 1] == '"') {
        /* A last string argument (the offset): its opening quote, then the comma before. */
        size_t q = end - 1;
        while (q > i && msg[q - 1] != '"')
            q--;
        if (q <= i + 1 || msg[q - 1] != '"' || msg[q - 2] != ',')
            return -1;
        end = q - 2;
    }
    if (end <= i || msg[i] != '{' || msg[end - 1] != '}')
        return -1;
    p->arg = sl_slice_make(msg + i, end - i);
    return 0;
}
