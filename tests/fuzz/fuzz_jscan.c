// fuzz-sources: src/upstream/jscan.c src/upstream/fastpath.c src/base/buf.c src/base/alloc.c
// fuzz-sources: src/base/utf8.c src/base/util.c
// fuzz-seeds: @fixtures/*/*.json tests/fuzz/seeds/jscan/*
// fuzz-libs: jansson
/*
 * libFuzzer harness for src/upstream/jscan and the table-walking scanner built on it
 * (src/upstream/fastpath.c): differential against jansson (see jscan_diff.h). Any input
 * either accepts must be accepted by jansson with the same values. The input is scanned from an
 * exact-size heap copy so that any read past its end trips AddressSanitizer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    struct sl_buf scratch = SL_BUF_INIT;
    bool jansson_ok;
    enum jd_result r = jd_compare(copy, size, &scratch, &jansson_ok);
    if (r == JD_DIFFERENT) {
        fprintf(stderr, "fuzz_jscan: the scanner accepted what jansson %s\n",
                jansson_ok ? "reads differently" : "refuses");
        abort();
    }
    if (jd_fields_compare(copy, size, &scratch) == JD_DIFFERENT) {
        fprintf(stderr, "fuzz_jscan: the table scanner read what jansson reads otherwise\n");
        abort();
    }
    sl_buf_free(&scratch);
    free(copy);
    return 0;
}
