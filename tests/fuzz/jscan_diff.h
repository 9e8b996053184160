/*
 * Differential check of src/upstream/jscan against jansson, shared by the libFuzzer harness
 * (tests/fuzz/fuzz_jscan.c) and the unit tests (tests/unit/test_jscan.c).
 *
 * Both sides render the document into the same canonical byte string (type tags, lengths,
 * decoded strings, integers as int64, reals as the bits of their double). The property:
 * whenever the scanner accepts an input (and no object in it repeats a key, where jansson
 * keeps only the last value), jansson accepts it too and renders the same string. When the
 * scanner refuses, nothing is claimed: the adapters then fall back to jansson.
 */
#ifndef SL_TESTS_JSCAN_DIFF_H
#define SL_TESTS_JSCAN_DIFF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "upstream/jscan.h"

static void
jd_put(struct sl_buf *b, char tag, const void *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    sl_buf_append_byte(b, tag);
    sl_buf_append(b, &len, sizeof(len));
    sl_buf_append(b, p, n);
}

static void
jd_number(struct sl_buf *b, const char *p, size_t n)
{
    char tmp[64];
    if (n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    if (strpbrk(tmp, ".eE")) {
        double d = strtod(tmp, NULL);
        jd_put(b, 'r', &d, sizeof(d));
    } else {
        long long v = strtoll(tmp, NULL, 10);
        jd_put(b, 'i', &v, sizeof(v));
    }
}

/* The scanner's rendering of the next value; false if it failed or met a repeated key. */
static bool
jd_walk(struct sl_jscan *s, struct sl_buf *out, bool *dup)
{
    struct sl_slice v;
    bool t;
    switch (sl_jscan_peek(s)) {
    case SL_JT_OBJECT: {
        sl_jscan_object(s);
        sl_buf_append_byte(out, '{');
        struct sl_buf keys = SL_BUF_INIT; /* NUL-separated, to spot repeats */
        while (sl_jscan_key(s, &v)) {
            const char *k = sl_buf_ptr(&keys), *kend = k + sl_buf_len(&keys);
            while (k < kend) {
                size_t kl = strlen(k);
                if (kl == v.len && memcmp(k, v.ptr, kl) == 0 && memchr(v.ptr, 0, v.len) == NULL)
                    *dup = true;
                k += kl + 1;
            }
            sl_buf_append(&keys, v.ptr, v.len);
            sl_buf_append_byte(&keys, '\0');
            jd_put(out, 'k', v.ptr, v.len);
            if (!jd_walk(s, out, dup))
                break;
        }
        sl_buf_free(&keys);
        sl_buf_append_byte(out, '}');
        return !s->failed;
    }
    case SL_JT_ARRAY:
        sl_jscan_array(s);
        sl_buf_append_byte(out, '[');
        while (sl_jscan_next(s))
            if (!jd_walk(s, out, dup))
                break;
        sl_buf_append_byte(out, ']');
        return !s->failed;
    case SL_JT_STRING:
        if (!sl_jscan_string(s, &v))
            return false;
        jd_put(out, 's', v.ptr, v.len);
        return true;
    case SL_JT_NUMBER:
        if (!sl_jscan_number(s, &v))
            return false;
        jd_number(out, v.ptr, v.len);
        return true;
    case SL_JT_TRUE:
    case SL_JT_FALSE:
        if (!sl_jscan_bool(s, &t))
            return false;
        sl_buf_append_byte(out, t ? 'T' : 'F');
        return true;
    case SL_JT_NULL:
        sl_jscan_null(s);
        sl_buf_append_byte(out, 'N');
        return !s->failed;
    default:
        return sl_jscan_fail(s);
    }
}

static void
jd_render(const json_t *j, struct sl_buf *out)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        sl_buf_append_byte(out, '{');
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            jd_put(out, 'k', k, strlen(k));
            jd_render(v, out);
        }
        sl_buf_append_byte(out, '}');
        return;
    }
    case JSON_ARRAY: {
        sl_buf_append_byte(out, '[');
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) jd_render(v, out);
        sl_buf_append_byte(out, ']');
        return;
    }
    case JSON_STRING:
        jd_put(out, 's', json_string_value(j), json_string_length(j));
        return;
    case JSON_INTEGER: {
        long long v = json_integer_value(j);
        jd_put(out, 'i', &v, sizeof(v));
        return;
    }
    case JSON_REAL: {
        double d = json_real_value(j);
        jd_put(out, 'r', &d, sizeof(d));
        return;
    }
    case JSON_TRUE:
        sl_buf_append_byte(out, 'T');
        return;
    case JSON_FALSE:
        sl_buf_append_byte(out, 'F');
        return;
    case JSON_NULL:
        sl_buf_append_byte(out, 'N');
        return;
    }
}

enum jd_result { JD_REFUSED, JD_SAME, JD_DIFFERENT };

/* Runs both on data[0..n); *accepted_by_jansson tells what jansson thought. */
static enum jd_result
jd_compare(const char *data, size_t n, struct sl_buf *scratch, bool *accepted_by_jansson)
{
    struct sl_jscan s;
    struct sl_buf mine = SL_BUF_INIT, theirs = SL_BUF_INIT;
    bool dup = false;
    sl_jscan_init(&s, data, n, scratch);
    bool ok = jd_walk(&s, &mine, &dup) && sl_jscan_done(&s) && !dup;
    json_t *j = json_loadb(data, n, JSON_ALLOW_NUL, NULL);
    *accepted_by_jansson = j != NULL;
    enum jd_result r = JD_REFUSED;
    if (ok) {
        r = JD_DIFFERENT;
        if (j != NULL) {
            jd_render(j, &theirs);
            if (sl_buf_len(&mine) == sl_buf_len(&theirs) &&
                memcmp(sl_buf_ptr(&mine), sl_buf_ptr(&theirs), sl_buf_len(&mine)) == 0)
                r = JD_SAME;
        }
    }
    json_decref(j);
    sl_buf_free(&mine);
    sl_buf_free(&theirs);
    return r;
}

#endif
