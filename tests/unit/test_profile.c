/* profile/: stacks, live table, counters, snapshots, diff, sampling. */
#include <math.h>

#include "hd_test.h"
#include "profile/profile.h"

static const uint64_t stack_a[] = {0x401010, 0x402020, 0x403030};
static const uint64_t stack_b[] = {0x401010, 0x402099};

static const struct hd_snap_entry *find(const struct hd_snap *s,
					const uint64_t *pcs, unsigned depth)
{
	for (size_t i = 0; i < s->n; i++) {
		const struct hd_stack *st = s->entries[i].stack;
		if (st->depth == depth &&
		    memcmp(st->pcs, pcs, depth * sizeof(*pcs)) == 0)
			return &s->entries[i];
	}
	return NULL;
}

HD_TEST(weight_is_one_at_rate_one)
{
	HD_EXPECT(hd_sample_weight(1, 1) == 1.0);
	HD_EXPECT(hd_sample_weight(1 << 20, 1) == 1.0);
	HD_EXPECT(hd_sample_weight(100, 0) == 1.0);
}

HD_TEST(weight_matches_formula)
{
	/* 1/(1-exp(-s/R)) for s = R: 1/(1-1/e) = 1.5819767068693265 */
	double w = hd_sample_weight(512 * 1024, 512 * 1024);
	HD_EXPECT(fabs(w - 1.5819767068693265) < 1e-12);
	/* Tiny sizes: w ~ R/s + 1/2; 1 - exp(-x) would lose it. */
	w = hd_sample_weight(16, 512 * 1024);
	HD_EXPECT(fabs(w - (32768.0 + 0.5)) < 1e-3);
	/* Huge sizes are always sampled: weight 1. */
	HD_EXPECT(hd_sample_weight(1ull << 40, 512 * 1024) == 1.0);
}

HD_TEST(next_is_exponential_with_mean_rate)
{
	struct hd_rng r;
	hd_rng_seed(&r, 42);
	HD_EXPECT_EQ(hd_sample_next(&r, 1), 0);
	HD_EXPECT_EQ(hd_sample_next(&r, 0), 0);
	const int n = 200000;
	double sum = 0, sum2 = 0;
	int below_mean = 0;
	for (int i = 0; i < n; i++) {
		double t = (double)hd_sample_next(&r, 1000000);
		sum += t;
		sum2 += t * t;
		below_mean += t < 1000000;
	}
	double mean = sum / n, var = sum2 / n - mean * mean;
	/* Exp(mean m): sd = m, so the mean is within 1% (4.5 sigma) and the
	 * sd within 2%; P(t < m) = 1 - 1/e = 0.632. */
	HD_EXPECT(fabs(mean / 1e6 - 1) < 0.01);
	HD_EXPECT(fabs(sqrt(var) / 1e6 - 1) < 0.02);
	HD_EXPECT(fabs((double)below_mean / n - 0.6321) < 0.005);
}

HD_TEST(exact_counts_at_rate_one)
{
	struct hd_prof *p = hd_prof_new();
	HD_ASSERT(p);
	hd_prof_record_alloc(p, stack_a, 3, 0x1000, 100, 1);
	hd_prof_record_alloc(p, stack_a, 3, 0x2000, 50, 1);
	hd_prof_record_alloc(p, stack_b, 2, 0x3000, 7, 1);
	hd_prof_record_free(p, 0x1000);
	hd_prof_record_free(p, 0x9999); /* never sampled: no-op */

	struct hd_snap *s = hd_prof_snapshot(p, "one", 1.5, 1);
	HD_ASSERT(s);
	HD_EXPECT_STREQ(s->name, "one");
	HD_EXPECT_EQ(s->n, 2);
	const struct hd_snap_entry *a = find(s, stack_a, 3);
	const struct hd_snap_entry *b = find(s, stack_b, 2);
	HD_ASSERT(a && b);
	HD_EXPECT_EQ(a->stack->id, 0);
	HD_EXPECT_EQ(b->stack->id, 1);
	HD_EXPECT(s->entries[0].stack == a->stack); /* sorted by id */
	HD_EXPECT(a->counts.alloc_objects == 2 && a->counts.alloc_space == 150);
	HD_EXPECT(a->counts.inuse_objects == 1 && a->counts.inuse_space == 50);
	HD_EXPECT_EQ(a->counts.alloc_samples, 2);
	HD_EXPECT_EQ(a->counts.inuse_samples, 1);
	HD_EXPECT(b->counts.inuse_space == 7 && b->counts.alloc_space == 7);
	HD_EXPECT(s->total.alloc_space == 157 && s->total.inuse_space == 57);
	HD_EXPECT(s->total.inuse_objects == 2 && s->frees == 1);
	HD_EXPECT_EQ(s->samples, 3);

	struct hd_prof_totals t;
	hd_prof_totals(p, &t);
	HD_EXPECT(t.total.inuse_space == 57 && t.frees == 1);
	HD_EXPECT_EQ(t.samples, 3);
	hd_snap_free(s);
	hd_prof_free(p);
}

HD_TEST(same_stack_is_deduplicated)
{
	struct hd_prof *p = hd_prof_new();
	uint64_t copy[3];
	memcpy(copy, stack_a, sizeof(copy));
	hd_prof_record_alloc(p, stack_a, 3, 0x10, 1, 1);
	hd_prof_record_alloc(p, copy, 3, 0x20, 1, 1);
	/* A prefix is a different stack. */
	hd_prof_record_alloc(p, stack_a, 2, 0x30, 1, 1);
	struct hd_snap *s = hd_prof_snapshot(p, "s", 0, 1);
	HD_EXPECT_EQ(s->n, 2);
	HD_EXPECT(find(s, stack_a, 3)->counts.alloc_objects == 2);
	HD_EXPECT(find(s, stack_a, 2)->counts.alloc_objects == 1);
	hd_snap_free(s);
	hd_prof_free(p);
}

HD_TEST(realloc_like_sequence)
{
	/* realloc(p, n) is seen as free(old) + alloc(new); in-place growth
	 * returns the same pointer. */
	struct hd_prof *p = hd_prof_new();
	hd_prof_record_alloc(p, stack_a, 3, 0x1000, 10, 1);
	hd_prof_record_free(p, 0x1000);
	hd_prof_record_alloc(p, stack_b, 2, 0x1000, 20, 1);
	hd_prof_record_free(p, 0x1000);
	hd_prof_record_alloc(p, stack_b, 2, 0x5000, 40, 1);
	struct hd_snap *s = hd_prof_snapshot(p, "s", 0, 1);
	const struct hd_snap_entry *a = find(s, stack_a, 3);
	const struct hd_snap_entry *b = find(s, stack_b, 2);
	HD_ASSERT(a && b);
	HD_EXPECT(a->counts.inuse_space == 0 && a->counts.inuse_objects == 0);
	HD_EXPECT(a->counts.alloc_space == 10);
	HD_EXPECT(b->counts.inuse_space == 40 && b->counts.alloc_space == 60);
	HD_EXPECT(s->total.inuse_space == 40 && s->frees == 2);
	hd_snap_free(s);
	hd_prof_free(p);
}

HD_TEST(reused_pointer_replaces_missed_free)
{
	struct hd_prof *p = hd_prof_new();
	hd_prof_record_alloc(p, stack_a, 3, 0x1000, 10, 1);
	/* The free of 0x1000 was missed; malloc hands it out again. */
	hd_prof_record_alloc(p, stack_b, 2, 0x1000, 30, 1);
	hd_prof_record_free(p, 0x1000);
	hd_prof_record_free(p, 0x1000); /* double free: no-op */
	struct hd_snap *s = hd_prof_snapshot(p, "s", 0, 1);
	HD_EXPECT(find(s, stack_a, 3)->counts.inuse_space == 0);
	HD_EXPECT(find(s, stack_b, 2)->counts.inuse_space == 0);
	HD_EXPECT(s->total.inuse_space == 0 && s->total.alloc_space == 40);
	HD_EXPECT_EQ(s->total.inuse_samples, 0);
	HD_EXPECT(s->frees == 2);
	hd_snap_free(s);
	hd_prof_free(p);
}

HD_TEST(free_subtracts_exactly_what_alloc_added)
{
	/* Scaled weights at a large rate; frees must bring in-use back to
	 * exactly zero, even across table growth and many collisions. */
	struct hd_prof *p = hd_prof_new();
	const int n = 50000;
	for (int i = 1; i <= n; i++)
		hd_prof_record_alloc(p, i % 2 ? stack_a : stack_b,
				     i % 2 ? 3 : 2, (uint64_t)i * 16,
				     (uint64_t)(i % 977) + 1, 512 * 1024);
	struct hd_prof_totals t;
	hd_prof_totals(p, &t);
	HD_EXPECT_EQ(t.total.inuse_samples, n);
	/* Free in an order unrelated to insertion. */
	for (int k = 0; k < n; k++) {
		int i = (int)(((uint64_t)k * 7919) % (uint64_t)n) + 1;
		hd_prof_record_free(p, (uint64_t)i * 16);
		if (k == n / 2) {
			hd_prof_totals(p, &t);
			HD_EXPECT(t.total.inuse_space > 0);
			HD_EXPECT_EQ(t.total.inuse_samples, n - n / 2 - 1);
		}
	}
	hd_prof_totals(p, &t);
	HD_EXPECT(t.total.inuse_space == 0 && t.total.inuse_objects == 0);
	HD_EXPECT(fabs(t.frees - t.total.alloc_objects) <
		  1e-9 * t.total.alloc_objects);
	struct hd_snap *s = hd_prof_snapshot(p, "s", 0, 512 * 1024);
	for (size_t i = 0; i < s->n; i++)
		HD_EXPECT(s->entries[i].counts.inuse_space == 0);
	hd_snap_free(s);
	hd_prof_free(p);
}

HD_TEST(forget_live)
{
	struct hd_prof *p = hd_prof_new();
	hd_prof_record_alloc(p, stack_a, 3, 0x1000, 10, 1);
	hd_prof_record_alloc(p, stack_b, 2, 0x2000, 20, 1);
	hd_prof_forget_live(p);
	hd_prof_record_free(p, 0x1000); /* gone with the old image */
	hd_prof_record_alloc(p, stack_b, 2, 0x2000, 5, 1);
	struct hd_snap *s = hd_prof_snapshot(p, "s", 0, 1);
	HD_EXPECT(find(s, stack_a, 3)->counts.inuse_space == 0);
	HD_EXPECT(find(s, stack_a, 3)->counts.alloc_space == 10);
	HD_EXPECT(find(s, stack_b, 2)->counts.inuse_space == 5);
	HD_EXPECT(s->total.inuse_space == 5 && s->frees == 0);
	hd_snap_free(s);
	hd_prof_free(p);
}

HD_TEST(snapshot_is_immutable)
{
	struct hd_prof *p = hd_prof_new();
	hd_prof_record_alloc(p, stack_a, 3, 0x1000, 10, 1);
	struct hd_snap *s = hd_prof_snapshot(p, "before", 1, 1);
	const struct hd_stack *st = s->entries[0].stack;
	/* Many new stacks force the stack tables to grow. */
	for (uint64_t i = 0; i < 5000; i++) {
		uint64_t pcs[2] = {0x500000 + i, 0x600000};
		hd_prof_record_alloc(p, pcs, 2, 0x100000 + i * 64, 8, 1);
	}
	hd_prof_record_alloc(p, stack_a, 3, 0x2000, 90, 1);
	hd_prof_record_free(p, 0x1000);
	HD_EXPECT_EQ(s->n, 1);
	HD_EXPECT(s->entries[0].stack == st);
	HD_EXPECT(st->depth == 3 && st->pcs[2] == 0x403030);
	HD_EXPECT(s->entries[0].counts.inuse_space == 10);
	HD_EXPECT(s->total.alloc_space == 10);
	struct hd_snap *s2 = hd_prof_snapshot(p, "after", 2, 1);
	HD_EXPECT_EQ(s2->n, 5001);
	HD_EXPECT(find(s2, stack_a, 3)->stack == st); /* same object */
	HD_EXPECT(find(s2, stack_a, 3)->counts.inuse_space == 90);
	hd_snap_free(s2);
	hd_snap_free(s);
	hd_prof_free(p);
}

HD_TEST(diff_has_negatives_and_both_sides)
{
	static const uint64_t stack_c[] = {0x700000};
	struct hd_prof *p = hd_prof_new();
	hd_prof_record_alloc(p, stack_a, 3, 0x1000, 100, 1);
	hd_prof_record_alloc(p, stack_b, 2, 0x2000, 30, 1);
	struct hd_snap *base = hd_prof_snapshot(p, "base", 1, 1);
	hd_prof_record_free(p, 0x1000);
	hd_prof_record_alloc(p, stack_c, 1, 0x3000, 64, 1);
	struct hd_snap *cur = hd_prof_snapshot(p, "cur", 2, 1);
	/* base: a only in base's in-use; cur: c only in cur. */
	struct hd_snap *d = hd_snap_diff(cur, base);
	HD_ASSERT(d);
	HD_EXPECT_STREQ(d->name, "cur");
	HD_EXPECT(d->time == 2);
	/* b did not change at all: absent. */
	HD_EXPECT_EQ(d->n, 2);
	const struct hd_snap_entry *a = find(d, stack_a, 3);
	const struct hd_snap_entry *c = find(d, stack_c, 1);
	HD_ASSERT(a && c && !find(d, stack_b, 2));
	HD_EXPECT(a->counts.inuse_space == -100 && a->counts.inuse_objects == -1);
	HD_EXPECT(a->counts.alloc_space == 0);
	HD_EXPECT(c->counts.inuse_space == 64 && c->counts.alloc_space == 64);
	HD_EXPECT(d->total.inuse_space == -36 && d->total.alloc_space == 64);
	HD_EXPECT(d->frees == 1);
	HD_EXPECT(d->entries[0].stack->id < d->entries[1].stack->id);

	/* Reversed: a stack only in the base counts as zero in cur. */
	struct hd_snap *r = hd_snap_diff(base, cur);
	HD_EXPECT(find(r, stack_c, 1)->counts.inuse_space == -64);
	HD_EXPECT(find(r, stack_a, 3)->counts.inuse_space == 100);
	hd_snap_free(r);
	hd_snap_free(d);
	hd_snap_free(cur);
	hd_snap_free(base);
	hd_prof_free(p);
}

/* Sizes log-uniform in [16 B, 64 KiB], from a table so the loop is cheap. */
static uint64_t sizes[4096];

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

HD_TEST(sampling_estimates_are_unbiased)
{
	/* Simulate the tracer's countdown at R = 512 KiB over a known
	 * mixture of sizes and check that the scaled estimates match the
	 * truth.  Relative standard deviations per allocation count N:
	 * bytes sqrt(R*sum s)/sum s, about 0.8%/sqrt(N/1M); objects
	 * sqrt(R*sum 1/s)/N, about 6.3%/sqrt(N/1M) since small allocations
	 * are rarely sampled.  N = 40M puts the 3% objects bound at 3 sigma
	 * and the 2% bytes bound beyond 10. */
	const uint64_t rate = 512 * 1024;
	const long n = 40L * 1000 * 1000;
	for (int i = 0; i < 4096; i++)
		sizes[i] = (uint64_t)llround(16.0 * exp2(12.0 * (i + 0.5) / 4096));
	struct hd_prof *p = hd_prof_new();
	struct hd_rng rng;
	hd_rng_seed(&rng, 0x5eed);
	uint64_t pick = 12345;
	double true_bytes = 0;
	int64_t countdown = (int64_t)hd_sample_next(&rng, rate);
	for (long i = 0; i < n; i++) {
		uint64_t s = sizes[splitmix(&pick) >> 52];
		true_bytes += (double)s;
		countdown -= (int64_t)s;
		if (countdown < 0) {
			uint64_t pcs[1] = {0x400000 + (s & 0xff0)};
			hd_prof_record_alloc(p, pcs, 1, 0x10000000 + (uint64_t)i * 16,
					     s, rate);
			countdown = (int64_t)hd_sample_next(&rng, rate);
		}
	}
	struct hd_prof_totals t;
	hd_prof_totals(p, &t);
	double eb = t.total.alloc_space / true_bytes - 1;
	double eo = t.total.alloc_objects / (double)n - 1;
	printf("  bytes error %+.3f%%, objects error %+.3f%%, %llu samples\n",
	       eb * 100, eo * 100, (unsigned long long)t.samples);
	HD_EXPECT(fabs(eb) < 0.02);
	HD_EXPECT(fabs(eo) < 0.03);
	/* Nothing freed: in-use equals allocated. */
	HD_EXPECT(t.total.inuse_space == t.total.alloc_space);
	hd_prof_free(p);
}

int main(void)
{
	return hd_test_main();
}
