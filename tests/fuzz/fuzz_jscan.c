// fuzz-sources: src/upstream/jscan.c src/base/buf.c src/base/alloc.c src/base/utf8.c
// fuzz-seeds: @fixtures/*/*.json
// fuzz-libs: jansson
/*
 * libFuzzer harness for src/upstream/jscan: differential against jansson (see
 * jscan_diff.h). Any input the scanner accepts must be accepted by jansson with the same
 * values. The input is scanned from an exact-size heap copy so that any read past its end
 * trips AddressSanitizer.
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
    sl_buf_free(&scratch);
    free(copy);
    return 0;
}
