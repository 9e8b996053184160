/*
 * Unit tests for src/upstream/fastpath: the table-walking scanner of the adapters' per-token
 * paths. Each kind of field and each reason to leave a chunk to jansson, then the
 * differential of tests/fuzz/jscan_diff.h over the seeds and their mutants.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/alloc.h"
#include "upstream/fastpath.h"

#include "../fuzz/jscan_diff.h"

static struct sl_buf scratch;

static void
teardown(void)
{
    sl_buf_free(&scratch);
}

TestSuite(fastpath, .fini = teardown);

static int
scan(const char *json, struct sl_fp_out *o)
{
    return sl_fp_scan(jf_root, sl_slice_make(json, strlen(json)), &scratch, o);
}

static bool
str_is(struct sl_slice s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

Test(fastpath, every_kind_of_field)
{
    struct sl_fp_out o;
    cr_assert_eq(scan("{\"zz\":[1,{\"a\":2}],\"a\":\"x\\ty\",\"b\":-12,\"c\":false,"
                      "\"d\":{\"s\":\"q\",\"other\":[]},\"e\":[{\"i\":7},\"skipped\",3],"
                      "\"f\":[{\"l\":\"m\"},{},{\"l\":\"n\"}],\"g\":null,\"t\":\"y\",\"u\":\"z\"}",
                      &o),
                 0);
    cr_assert(str_is(o.str[JF_A], "x\ty"), "escapes decoded");
    cr_assert_eq(o.num[JF_B], -12);
    cr_assert(sl_fp_has(&o, JF_C) && o.num[JF_C] == 0);
    cr_assert(sl_fp_has(&o, JF_D) && str_is(o.str[JF_DS], "q"));
    cr_assert(sl_fp_has(&o, JF_EI) && o.num[JF_EI] == 7, "only the first element is read");
    cr_assert_eq(o.nlist, 2);
    cr_assert(str_is(o.list[0], "m") && str_is(o.list[1], "n"));
    cr_assert(str_is(o.str[JF_T], "y") && str_is(o.str[JF_U], "z"));

    /* absent and null (where allowed) leave nothing */
    cr_assert_eq(scan("{\"d\":null,\"e\":null,\"f\":[],\"g\":null}", &o), 0);
    cr_assert_eq(o.has, 0);
    cr_assert_eq(o.nlist, 0);
    cr_assert_eq(scan("{\"d\":{\"s\":null},\"e\":[]}", &o), 0);
    cr_assert(sl_fp_has(&o, JF_D) && !sl_fp_has(&o, JF_DS) && !sl_fp_has(&o, JF_EI));
}

Test(fastpath, what_it_leaves_to_jansson)
{
    static const char *const refused[] = {
        "{\"a\":null}",                      /* null where it is not allowed */
        "{\"a\":1}",                         /* another type */
        "{\"b\":1.5}",                       /* not an integer */
        "{\"b\":1e3}",                       /* not written as one */
        "{\"c\":\"true\"}",                  /* not a bool */
        "{\"a\":\"1\",\"a\":\"2\"}",         /* a table key twice: jansson keeps the last */
        "{\"d\":{\"s\":\"1\",\"s\":\"2\"}}", /* also inside */
        "{\"h\":null}",                      /* a refused key, whatever its value */
        "{\"f\":[{\"h\":1}]}",               /* also inside */
        "{\"g\":0}",                         /* must be null */
        "{\"t\":\"z\"}",                     /* not one of the allowed values */
        "{\"u\":\"x\"}",                     /* one of the refused values */
        "{\"e\":[5]}",                       /* the first element must be an object */
        "{\"f\":[{},5]}",                    /* each element must be */
        "{\"f\":null}",                      /* not nullable */
        "{\"d\":[]}",                        /* an array for an object */
        "{\"f\":[{\"l\":\"1\"},{\"l\":\"2\"},{\"l\":\"3\"},{\"l\":\"4\"},{\"l\":\"5\"},"
        "{\"l\":\"6\"},{\"l\":\"7\"},{\"l\":\"8\"},{\"l\":\"9\"}]}", /* the list is full */
        "[]",                                                        /* not an object */
        "{\"a\":\"x\"} {}",                                          /* two values */
        "{\"a\":\"x\"",                                              /* cut */
    };
    struct sl_fp_out o;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        cr_assert_eq(scan(refused[i], &o), SL_FP_EJANSSON, "%s", refused[i]);
    /* a repeated key that is not in the table is only skipped */
    cr_assert_eq(scan("{\"x\":1,\"x\":2,\"a\":\"k\"}", &o), 0);
}

static void
check_against_jansson(const char *p, size_t n, uint32_t *rng, unsigned *same)
{
    char *copy = sl_malloc(n ? n : 1);
    memcpy(copy, p, n);
    enum jd_result r = jd_fields_compare(copy, n, &scratch);
    cr_assert_neq(r, JD_DIFFERENT, "differs: %.*s", (int)n, p);
    *same += r == JD_SAME;
    for (int m = 0; m < 300 && n > 0; m++) {
        memcpy(copy, p, n);
        /* one byte changed, mostly into another key or value: the table's keys are a..u */
        for (int e = 0; e < 1; e++) {
            static const char alphabet[] = "abcdefghilstuxyz0123456789abcdefghilstu\"{}[],:";
            *rng = *rng * 1103515245u + 12345u;
            size_t at = (*rng >> 8) % n;
            copy[at] = alphabet[(*rng >> 20) % (sizeof(alphabet) - 1)];
        }
        r = jd_fields_compare(copy, n, &scratch);
        cr_assert_neq(r, JD_DIFFERENT, "mutant differs: %.*s", (int)n, copy);
        *same += r == JD_SAME;
    }
    free(copy);
}

Test(fastpath, differential_over_the_seeds_and_their_mutants)
{
    DIR *d = opendir("tests/fuzz/seeds/jscan");
    cr_assert(d != NULL, "run from the repository root");
    uint32_t rng = 12345;
    unsigned n = 0, same = 0;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (e->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof(path), "tests/fuzz/seeds/jscan/%s", e->d_name);
        FILE *f = fopen(path, "rb");
        cr_assert_not_null(f);
        char buf[4096];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        check_against_jansson(buf, len, &rng, &same);
        n++;
    }
    closedir(d);
    cr_assert_geq(n, 4);
    cr_assert_gt(same, 150, "%u inputs read alike", same);
}
