/*
 * Unit tests for the load generator's log-linear histogram (bench/loadgen/hist.c): bucket
 * bounds, the documented precision, percentiles against sorted samples, merging.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "../../bench/loadgen/hist.c"

static struct lg_hist h, h2;

static void
setup(void)
{
    lg_hist_init(&h);
    lg_hist_init(&h2);
}

TestSuite(loadgen_hist, .init = setup);

Test(loadgen_hist, small_values_are_exact)
{
    for (uint64_t v = 0; v < 128; v++) {
        cr_assert_eq(lg_hist_index(v), v);
        cr_assert_eq(lg_hist_bucket_max((unsigned)v), v);
    }
}

Test(loadgen_hist, buckets_are_contiguous_and_increasing)
{
    /* Every bucket starts right after the previous one ends. */
    for (unsigned i = 1; i < LG_HIST_BUCKETS; i++) {
        uint64_t lo = lg_hist_bucket_max(i - 1) + 1;
        cr_assert_eq(lg_hist_index(lo), i, "bucket %u starts at %llu", i, (unsigned long long)lo);
        cr_assert_eq(lg_hist_index(lg_hist_bucket_max(i)), i);
    }
    cr_assert_eq(lg_hist_index(UINT64_MAX), LG_HIST_BUCKETS - 1);
}

Test(loadgen_hist, relative_error_is_within_one_64th)
{
    for (uint64_t v = 128; v < (UINT64_C(1) << 40); v = v * 3 / 2 + 7) {
        uint64_t top = lg_hist_bucket_max(lg_hist_index(v));
        cr_assert_geq(top, v);
        cr_assert_leq((double)(top - v), (double)v / 64.0, "v=%llu top=%llu", (unsigned long long)v,
                      (unsigned long long)top);
    }
}

Test(loadgen_hist, empty)
{
    cr_assert_eq(lg_hist_percentile(&h, 50), 0);
    cr_assert_eq(lg_hist_percentile(&h, 100), 0);
    cr_assert_eq(lg_hist_mean(&h), 0.0);
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

Test(loadgen_hist, percentiles_match_sorted_samples)
{
    enum { N = 10000 };
    static uint64_t v[N];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = x % 5000000; /* up to 5 s in µs */
        lg_hist_record(&h, v[i]);
    }
    qsort(v, N, sizeof(v[0]), cmp_u64);
    const double qs[] = {1, 50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        uint64_t exact = v[(size_t)(qs[i] / 100.0 * N + 0.999999) - 1];
        uint64_t got = lg_hist_percentile(&h, qs[i]);
        cr_assert_geq(got, exact, "q=%g", qs[i]);
        cr_assert_leq((double)got, (double)exact * (1 + 1.0 / 64) + 1, "q=%g", qs[i]);
    }
    cr_assert_eq(lg_hist_percentile(&h, 100), v[N - 1]);
    cr_assert_eq(h.min, v[0]);
    cr_assert_eq(h.count, N);
}

Test(loadgen_hist, percentile_never_exceeds_max)
{
    lg_hist_record(&h, 1000);
    cr_assert_eq(lg_hist_percentile(&h, 50), 1000);
    cr_assert_eq(lg_hist_percentile(&h, 99.9), 1000);
}

Test(loadgen_hist, record_n_and_merge)
{
    lg_hist_record_n(&h, 10, 99);
    lg_hist_record(&h2, 5000);
    lg_hist_record_n(&h2, 7, 0);
    lg_hist_merge(&h, &h2);
    cr_assert_eq(h.count, 100);
    cr_assert_eq(h.sum, 99 * 10 + 5000);
    cr_assert_eq(h.min, 10);
    cr_assert_eq(h.max, 5000);
    cr_assert_eq(lg_hist_percentile(&h, 99), 10);
    cr_assert_eq(lg_hist_percentile(&h, 99.5), 5000);
    cr_assert_float_eq(lg_hist_mean(&h), 59.9, 1e-9);
}
