#include "hist.h"

#include <string.h>

#define SUB (1u << LG_HIST_SUB_BITS)
#define HALF (SUB / 2)
#define VMAX ((UINT64_C(1) << (LG_HIST_MAX_MSB + 1)) - 1)

_Static_assert(LG_HIST_BUCKETS == 2304, "bucket count as documented");

void
lg_hist_init(struct lg_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned
lg_hist_index(uint64_t v)
{
    if (v > VMAX)
        v = VMAX;
    if (v < SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    /* v >> shift lands in [HALF, SUB): the top LG_HIST_SUB_BITS bits of v. */
    unsigned shift = msb - (LG_HIST_SUB_BITS - 1);
    return SUB + (shift - 1) * HALF + (unsigned)((v >> shift) - HALF);
}

uint64_t
lg_hist_bucket_max(unsigned i)
{
    if (i < SUB)
        return i;
    unsigned shift = (i - SUB) / HALF + 1;
    uint64_t top = (i - SUB) % HALF + HALF;
    return ((top + 1) << shift) - 1;
}

void
lg_hist_record_n(struct lg_hist *h, uint64_t v, uint64_t n)
{
    if (n == 0)
        return;
    h->buckets[lg_hist_index(v)] += n;
    h->count += n;
    h->sum += v * n;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void
lg_hist_merge(struct lg_hist *dst, const struct lg_hist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t
lg_hist_percentile(const struct lg_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 100.0)
        return h->max;
    double want = q / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = lg_hist_bucket_max(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

double
lg_hist_mean(const struct lg_hist *h)
{
    return h->count ? (double)h->sum / (double)h->count : 0.0;
}
