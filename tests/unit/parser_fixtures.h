/*
 * Shared by the parser unit tests (test_sse.c, test_ndjson.c): the fixtures of
 * ../shared/upstream-fixtures ($SL_FIXTURES) whose body is of one format, read and listed
 * as Criterion parameters, and seeded random cuts so that a failing split can be replayed.
 *
 * Not a test file of its own (its name does not start with test_); each test includes it.
 */
#ifndef SL_TESTS_PARSER_FIXTURES_H
#define SL_TESTS_PARSER_FIXTURES_H

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

/* xorshift64*: a fixed, seeded sequence so that a failing split can be replayed. */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Random cuts with chunk sizes 1..64, plus the odd empty feed. Returns the count. */
static size_t
random_cuts(uint64_t *seed, size_t len, size_t *cuts)
{
    size_t n = 0, at = 0;
    for (;;) {
        uint64_t x = rnd(seed);
        if (x % 16 == 0) {
            cuts[n++] = at; /* empty feed */
            continue;
        }
        at += 1 + (x >> 8) % 64;
        if (at >= len)
            return n;
        cuts[n++] = at;
    }
}

/* ---- fixtures ------------------------------------------------------------------------- */

static const char *
fixtures_dir(void)
{
    const char *d = getenv("SL_FIXTURES");
    return d != NULL && *d != '\0' ? d : "../shared/upstream-fixtures";
}

static char *
read_fixture(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), rel);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (set SL_FIXTURES)", path);
    struct sl_buf b = SL_BUF_INIT;
    char chunk[4096];
    for (;;) {
        size_t n = fread(chunk, 1, sizeof(chunk), f);
        if (n == 0)
            break;
        sl_buf_append(&b, chunk, n);
    }
    fclose(f);
    sl_buf_append_byte(&b, '\0');
    char *out = sl_buf_steal(&b, len);
    (*len)--;
    return out;
}

static json_t *
load_json(const char *rel)
{
    size_t len;
    char *text = read_fixture(rel, &len);
    json_error_t err;
    json_t *j = json_loadb(text, len, 0, &err);
    cr_assert_not_null(j, "%s: %s", rel, err.text);
    free(text);
    return j;
}

struct fixture {
    char id[128];
    char body[256];
    char meta[256];
    char events[256];
};

static void
free_fixtures(struct criterion_test_params *crp)
{
    cr_free(crp->params);
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = s ? strlen(s) : 0, k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The index entries with an events file whose body's name ends in `suffix`; the count. */
static size_t
list_fixtures(struct fixture *out, size_t cap, const char *suffix)
{
    char path[1024];
    size_t n = 0;
    snprintf(path, sizeof(path), "%s/index.json", fixtures_dir());
    json_t *index = json_load_file(path, 0, NULL);
    if (index == NULL)
        return 0;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(index, "fixtures"), i, e)
    {
        const char *events = json_string_value(json_object_get(e, "events"));
        const char *body = json_string_value(json_object_get(e, "body"));
        if (events == NULL || !ends_with(body, suffix))
            continue;
        if (out != NULL && n < cap) {
            snprintf(out[n].id, sizeof(out[n].id), "%s",
                     json_string_value(json_object_get(e, "id")));
            snprintf(out[n].body, sizeof(out[n].body), "%s", body);
            snprintf(out[n].meta, sizeof(out[n].meta), "%s",
                     json_string_value(json_object_get(e, "meta")));
            snprintf(out[n].events, sizeof(out[n].events), "%s", events);
        }
        n++;
    }
    json_decref(index);
    return n;
}

/* The Criterion parameters of a fixture test: every fixture of that body format. */
static struct criterion_test_params
fixture_params(const char *suffix)
{
    size_t n = list_fixtures(NULL, 0, suffix);
    struct fixture *fx = cr_calloc(n ? n : 1, sizeof(*fx));
    list_fixtures(fx, n, suffix);
    return cr_make_param_array(struct fixture, fx, n, free_fixtures);
}

#endif
