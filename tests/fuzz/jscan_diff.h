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
static inline enum jd_result
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

/*
 * The same property for the table-walking scanner of the adapters' fast paths
 * (src/upstream/fastpath.c): a table with every kind of field (keys a..u below), and
 * whatever it accepts must match what jansson finds at the same paths: a captured value is
 * there with the same value, an uncaptured one absent or null, the list holds the strings
 * of every element in order, refused keys are absent, constrained strings obey.
 */
#include "upstream/fastpath.h"

enum { JF_A, JF_B, JF_C, JF_D, JF_DS, JF_EI, JF_T, JF_U };

static const struct sl_slice jf_xy[] = {SL_SLICE("x"), SL_SLICE("y"), {NULL, 0}};
static const struct sl_slice jf_x[] = {SL_SLICE("x"), {NULL, 0}};

static const struct sl_fp_field jf_d[] = {
    {SL_FP_KEY("s"), SL_FP_STRING, SL_FP_NULLABLE, JF_DS, NULL, NULL},
    SL_FP_END,
};
static const struct sl_fp_field jf_e[] = {
    {SL_FP_KEY("i"), SL_FP_INT, 0, JF_EI, NULL, NULL},
    SL_FP_END,
};
static const struct sl_fp_field jf_f[] = {
    {SL_FP_KEY("l"), SL_FP_STRING, SL_FP_LIST, -1, NULL, NULL},
    {SL_FP_KEY("h"), SL_FP_REFUSE, 0, -1, NULL, NULL},
    SL_FP_END,
};
static const struct sl_fp_field jf_root[] = {
    {SL_FP_KEY("a"), SL_FP_STRING, 0, JF_A, NULL, NULL},
    {SL_FP_KEY("b"), SL_FP_INT, 0, JF_B, NULL, NULL},
    {SL_FP_KEY("c"), SL_FP_BOOL, 0, JF_C, NULL, NULL},
    {SL_FP_KEY("d"), SL_FP_OBJECT, SL_FP_NULLABLE, JF_D, jf_d, NULL},
    {SL_FP_KEY("e"), SL_FP_FIRST, SL_FP_NULLABLE, -1, jf_e, NULL},
    {SL_FP_KEY("f"), SL_FP_EACH, 0, -1, jf_f, NULL},
    {SL_FP_KEY("g"), SL_FP_NULL, 0, -1, NULL, NULL},
    {SL_FP_KEY("h"), SL_FP_REFUSE, 0, -1, NULL, NULL},
    {SL_FP_KEY("t"), SL_FP_STRING, 0, JF_T, NULL, jf_xy},
    {SL_FP_KEY("u"), SL_FP_STRING, SL_FP_EXCEPT, JF_U, NULL, jf_x},
    SL_FP_END,
};

static bool
jf_str_is(const json_t *v, struct sl_slice s)
{
    return json_is_string(v) && json_string_length(v) == s.len &&
           memcmp(json_string_value(v), s.ptr, s.len) == 0;
}

/* A captured string at key of obj, or (not captured) nothing but null there. */
static bool
jf_string(const json_t *obj, const char *key, const struct sl_fp_out *o, int slot)
{
    const json_t *v = json_object_get(obj, key);
    if (sl_fp_has(o, slot))
        return jf_str_is(v, o->str[slot]);
    return v == NULL || json_is_null(v);
}

static bool
jf_int(const json_t *obj, const char *key, const struct sl_fp_out *o, int slot)
{
    const json_t *v = json_object_get(obj, key);
    if (sl_fp_has(o, slot))
        return json_is_integer(v) && json_integer_value(v) == o->num[slot];
    return v == NULL;
}

static bool
jf_listed(const struct sl_slice *values, struct sl_slice s)
{
    for (; values->ptr != NULL; values++)
        if (values->len == s.len && memcmp(values->ptr, s.ptr, s.len) == 0)
            return true;
    return false;
}

static bool
jf_check(const json_t *j, const struct sl_fp_out *o)
{
    if (!json_is_object(j) || !jf_string(j, "a", o, JF_A) || !jf_int(j, "b", o, JF_B))
        return false;
    const json_t *c = json_object_get(j, "c");
    if (sl_fp_has(o, JF_C) ? !json_is_boolean(c) || json_is_true(c) != (o->num[JF_C] != 0)
                           : c != NULL)
        return false;
    const json_t *d = json_object_get(j, "d");
    if (sl_fp_has(o, JF_D) != json_is_object(d) ||
        !(json_is_object(d) || d == NULL || json_is_null(d)))
        return false;
    if (json_is_object(d) ? !jf_string(d, "s", o, JF_DS) : sl_fp_has(o, JF_DS))
        return false;
    const json_t *e = json_object_get(j, "e");
    const json_t *e0 = json_array_get(e, 0);
    if (e0 != NULL ? !json_is_object(e0) || !jf_int(e0, "i", o, JF_EI) : sl_fp_has(o, JF_EI))
        return false;
    const json_t *f = json_object_get(j, "f");
    size_t nl = 0;
    if (f != NULL) {
        if (!json_is_array(f))
            return false;
        for (size_t i = 0; i < json_array_size(f); i++) {
            const json_t *fi = json_array_get(f, i);
            if (!json_is_object(fi) || json_object_get(fi, "h") != NULL)
                return false;
            const json_t *l = json_object_get(fi, "l");
            if (l == NULL)
                continue;
            if (nl >= o->nlist || !jf_str_is(l, o->list[nl]))
                return false;
            nl++;
        }
    }
    if (nl != o->nlist)
        return false;
    const json_t *g = json_object_get(j, "g");
    if ((g != NULL && !json_is_null(g)) || json_object_get(j, "h") != NULL)
        return false;
    if (!jf_string(j, "t", o, JF_T) || !jf_string(j, "u", o, JF_U))
        return false;
    if (sl_fp_has(o, JF_T) && !jf_listed(jf_xy, o->str[JF_T]))
        return false;
    return !sl_fp_has(o, JF_U) || !jf_listed(jf_x, o->str[JF_U]);
}

/* JD_SAME or JD_REFUSED, or JD_DIFFERENT: the table scanner took what jansson reads otherwise. */
static inline enum jd_result
jd_fields_compare(const char *data, size_t n, struct sl_buf *scratch)
{
    struct sl_fp_out o;
    if (sl_fp_scan(jf_root, sl_slice_make(data, n), scratch, &o) != 0)
        return JD_REFUSED;
    json_t *j = json_loadb(data, n, JSON_ALLOW_NUL, NULL);
    enum jd_result r = j != NULL && jf_check(j, &o) ? JD_SAME : JD_DIFFERENT;
    json_decref(j);
    return r;
}

#endif
