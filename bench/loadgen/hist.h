/*
 * A log-linear latency histogram in the manner of HdrHistogram.
 *
 * Values are unsigned integers (the load generator records microseconds). Values below
 * 128 have a bucket each; above, every power of two is cut into 64 equal buckets, so a
 * recorded value is known to within 1/64 (1.6 %) of itself, from 1 µs to 2^40 µs (12 days;
 * larger values are clamped). Recording is an index computation and an increment: no
 * allocation per sample, which is what lets the load generator record every token.
 *
 * The struct is a fixed 18 KiB array, embedded by value; histograms of several threads are
 * merged with lg_hist_merge() after the threads have stopped.
 */
#ifndef LG_HIST_H
#define LG_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 7 /* 2^7 exact buckets, then 2^6 per power of two */
#define LG_HIST_MAX_MSB 40 /* values are clamped to 2^41 - 1 */
#define LG_HIST_BUCKETS                                                                            \
    ((1u << LG_HIST_SUB_BITS) +                                                                    \
     (LG_HIST_MAX_MSB - LG_HIST_SUB_BITS + 1) * (1u << (LG_HIST_SUB_BITS - 1)))

struct lg_hist {
    uint64_t count;
    uint64_t sum;
    uint64_t min; /* UINT64_MAX while empty */
    uint64_t max;
    uint64_t buckets[LG_HIST_BUCKETS];
};

/* Empties h. */
void lg_hist_init(struct lg_hist *h);

/* Records one value (n times with lg_hist_record_n). */
void lg_hist_record_n(struct lg_hist *h, uint64_t v, uint64_t n);

static inline void
lg_hist_record(struct lg_hist *h, uint64_t v)
{
    lg_hist_record_n(h, v, 1);
}

/* Adds every sample of src to dst. */
void lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src);

/*
 * The value at percentile q (0 < q <= 100): the upper bound of the bucket holding the
 * ceil(q/100 * count)-th smallest sample, never above the exact maximum. 0 when empty.
 */
uint64_t lg_hist_percentile(const struct lg_hist *h, double q);

/* Mean of the recorded values (exact, from the running sum); 0 when empty. */
double lg_hist_mean(const struct lg_hist *h);

/* Bucket index of v, and the largest value mapped to bucket i (exposed for the tests). */
unsigned lg_hist_index(uint64_t v);
uint64_t lg_hist_bucket_max(unsigned i);

#endif
