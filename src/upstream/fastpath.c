#include "upstream/fastpath.h"

#include <string.h>

#include "base/alloc.h"
#include "upstream/jscan.h"

_Static_assert(SL_FP_SLOTS <= 32 && SL_FP_MAX_FIELDS <= 32, "one bit each in a uint32_t");

static bool read_object(struct sl_jscan *s, const struct sl_fp_field *fields,
                        struct sl_fp_out *out);

/* Whether the key's bytes are the field's: the head word, then the rest if any. */
static inline bool
key_is(const struct sl_fp_field *f, struct sl_slice key, const char *end)
{
    static const uint64_t lows[9] = {0,
                                     0xff,
                                     0xffff,
                                     0xffffff,
                                     0xffffffff,
                                     0xffffffffffull,
                                     0xffffffffffffull,
                                     0xffffffffffffffull,
                                     ~0ull};
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* The key lies in the chunk (jscan leaves keys with escapes to jansson). */
    if (end - key.ptr >= 8) {
        uint64_t w;
        memcpy(&w, key.ptr, 8);
        size_t n = key.len < 8 ? key.len : 8;
        if (((w ^ f->head) & lows[n]) != 0)
            return false;
        return key.len <= 8 || memcmp(f->key + 8, key.ptr + 8, key.len - 8) == 0;
    }
#else
    (void)end, (void)lows;
#endif
    return memcmp(f->key, key.ptr, key.len) == 0;
}

/*
 * The field of key in a table (and its index), or NULL. Tables are short: a linear search,
 * one comparison of length and first byte per field, the rest only when those agree.
 */
static const struct sl_fp_field *
lookup(const struct sl_fp_field *fields, struct sl_slice key, const char *end, unsigned *idx)
{
    if (key.len == 0)
        return NULL;
    uint64_t first = (unsigned char)key.ptr[0];
    for (const struct sl_fp_field *f = fields; f->keylen != 0; f++) {
        if (f->keylen == key.len && (f->head & 0xff) == first && key_is(f, key, end)) {
            *idx = (unsigned)(f - fields);
            sl_assert(*idx < SL_FP_MAX_FIELDS);
            return f;
        }
    }
    return NULL;
}

static bool
value_allowed(const struct sl_fp_field *f, struct sl_slice v)
{
    if (f->values == NULL)
        return true;
    bool listed = false;
    for (const struct sl_slice *p = f->values; p->ptr != NULL && !listed; p++)
        listed = p->len == v.len && memcmp(p->ptr, v.ptr, v.len) == 0;
    return (f->flags & SL_FP_EXCEPT) ? !listed : listed;
}

static void
set(struct sl_fp_out *out, int slot)
{
    sl_assert(slot >= 0 && slot < SL_FP_SLOTS);
    out->has |= 1u << slot;
}

/* An array: the first element (or each) read through f->fields, the others skipped. */
static bool
read_array(struct sl_jscan *s, const struct sl_fp_field *f, struct sl_fp_out *out)
{
    if (!sl_jscan_array(s))
        return false;
    for (bool first = true; sl_jscan_next(s); first = false) {
        bool ok =
            first || f->kind == SL_FP_EACH ? read_object(s, f->fields, out) : sl_jscan_skip(s);
        if (!ok)
            return false;
    }
    return !s->failed;
}

static bool
read_value(struct sl_jscan *s, const struct sl_fp_field *f, struct sl_fp_out *out)
{
    if ((f->flags & SL_FP_NULLABLE) && sl_jscan_null(s))
        return true;
    switch (f->kind) {
    case SL_FP_STRING: {
        struct sl_slice v;
        if (!sl_jscan_string(s, &v) || !value_allowed(f, v))
            return sl_jscan_fail(s);
        if (f->flags & SL_FP_LIST) {
            if (out->nlist == SL_FP_LIST_MAX)
                return sl_jscan_fail(s);
            out->list[out->nlist++] = v;
            return true;
        }
        set(out, f->slot);
        out->str[f->slot] = v;
        return true;
    }
    case SL_FP_INT:
        set(out, f->slot);
        return sl_jscan_int(s, &out->num[f->slot]);
    case SL_FP_BOOL: {
        bool b;
        set(out, f->slot);
        out->num[f->slot] = 0;
        if (!sl_jscan_bool(s, &b))
            return false;
        out->num[f->slot] = b;
        return true;
    }
    case SL_FP_OBJECT:
        if (f->slot >= 0)
            set(out, f->slot);
        return read_object(s, f->fields, out);
    case SL_FP_FIRST:
    case SL_FP_EACH:
        return read_array(s, f, out);
    case SL_FP_NULL:
        return sl_jscan_null(s) || sl_jscan_fail(s);
    case SL_FP_REFUSE:
        break;
    }
    return sl_jscan_fail(s);
}

static bool
read_object(struct sl_jscan *s, const struct sl_fp_field *fields, struct sl_fp_out *out)
{
    if (!sl_jscan_object(s))
        return false;
    uint32_t seen = 0;
    struct sl_slice key;
    while (sl_jscan_key(s, &key)) {
        unsigned i;
        const struct sl_fp_field *f = lookup(fields, key, s->end, &i);
        if (f == NULL) {
            sl_jscan_skip(s);
            continue;
        }
        /* jansson keeps the last of two; this would read the first: let jansson decide. */
        if (seen & (1u << i))
            return sl_jscan_fail(s);
        seen |= 1u << i;
        if (!read_value(s, f, out))
            return false;
    }
    return !s->failed;
}

int
sl_fp_scan(const struct sl_fp_field *table, struct sl_slice data, struct sl_buf *scratch,
           struct sl_fp_out *out)
{
    struct sl_jscan s;
    out->has = 0;
    out->nlist = 0;
    sl_jscan_init(&s, data.ptr, data.len, scratch);
    if (!read_object(&s, table, out) || !sl_jscan_done(&s))
        return SL_FP_EJANSSON;
    return 0;
}
