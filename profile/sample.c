/* Sampling maths: Poisson sampling over allocated bytes, as tcmalloc and
 * the Go runtime do (Go: runtime/mprof.go, fastexprand and
 * scaleHeapSample).
 *
 * The tracer keeps a countdown c of bytes; each allocation of size s does
 * c -= s, and the allocation is sampled when c goes negative, after which
 * c is redrawn from hd_sample_next().  Thresholds are exponentially
 * distributed with mean R, so the process is memoryless and an allocation
 * of size s is sampled with probability p = 1 - exp(-s/R) whatever came
 * before it.  Counting each sample as 1/p allocations makes every sum an
 * unbiased estimate of the true one.
 */
#include <math.h>

#include "profile.h"

double hd_sample_weight(uint64_t size, uint64_t rate)
{
	if (rate <= 1)
		return 1.0;
	/* A sampled malloc(0) stands for itself; 1/p would be infinite. */
	if (size == 0)
		return 1.0;
	/* 1 - exp(-x) loses every digit for small x (a 16-byte allocation at
	 * 512 KiB is x = 3e-5); -expm1(-x) keeps them. */
	double x = (double)size / (double)rate;
	return 1.0 / -expm1(-x);
}

/* splitmix64 (Steele, Lea, Flood 2014): one 64-bit add and a bijective
 * mix per output, full period 2^64, passes BigCrush.  Plenty for drawing
 * thresholds and far cheaper than the mutex around it. */
static uint64_t rng_next(struct hd_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void hd_rng_seed(struct hd_rng *r, uint64_t seed)
{
	r->s = seed;
}

uint64_t hd_sample_next(struct hd_rng *r, uint64_t rate)
{
	if (rate <= 1)
		return 0;
	/* u uniform in (0, 1]: 53 random bits, +1 so log(u) is finite. */
	double u = (double)((rng_next(r) >> 11) + 1) * 0x1p-53;
	double t = -log(u) * (double)rate;
	/* floor(t) < s exactly when t < s for integer sizes, so truncating
	 * keeps the sampling probability exact. */
	if (t >= 0x1p62)
		return UINT64_C(1) << 62;
	return (uint64_t)t;
}
