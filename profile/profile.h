/* profile/: the data.  Stacks (deduplicated), the live table of sampled
 * pointers, per-stack counters, snapshots, and the sampling maths.
 *
 * profile/ knows nothing of how a sample was obtained (breakpoints, an
 * in-tracee ring, a Go runtime's buckets): a source hands it a stack of
 * return addresses, a pointer, a size and the rate in force when the
 * allocation was sampled.
 *
 * Stack convention: pcs[0] is the return address into the allocator's
 * immediate caller, pcs[1] the next caller's return address, and so on
 * (innermost first).  Every pc is a return address: symbolize pc - 1.
 * The allocator entry point itself is never in the stack.
 *
 * Thread safety: the record functions are called by the tracer thread and
 * hd_prof_snapshot()/hd_prof_totals() by the prompt thread; hd_prof uses
 * one internal mutex.  Snapshots and stacks are immutable once returned
 * and stay valid until hd_prof_free().
 */
#ifndef HD_PROFILE_H
#define HD_PROFILE_H

#include <stdint.h>

#include "../common/hd.h"

#define HD_MAX_DEPTH 64
#define HD_DEFAULT_RATE (512u * 1024u)

struct hd_stack {
	uint64_t hash;
	uint32_t id; /* dense, from 0, in order of first appearance */
	uint32_t depth;
	uint64_t pcs[]; /* depth return addresses, innermost first */
};

/* Counters of one stack.  Values are Go-style scaled estimates: each
 * sampled allocation of size s at rate R counts w = 1/(1-exp(-s/R))
 * objects and w*s bytes (w = 1 exactly when R = 1). */
struct hd_counts {
	double alloc_objects, alloc_space; /* cumulative since start */
	double inuse_objects, inuse_space; /* allocated and not freed */
	uint64_t alloc_samples;            /* raw sampled allocations */
	uint64_t inuse_samples;            /* raw samples still live */
};

/* The four pprof sample types, in the order go tool pprof lists a heap
 * profile's sample types (alloc_objects, alloc_space, inuse_objects,
 * inuse_space). */
enum hd_sample_index {
	HD_ALLOC_OBJECTS,
	HD_ALLOC_SPACE,
	HD_INUSE_OBJECTS,
	HD_INUSE_SPACE,
};
double hd_counts_value(const struct hd_counts *c, enum hd_sample_index i);

struct hd_snap_entry {
	const struct hd_stack *stack;
	struct hd_counts counts;
};

/* A recorded profile.  Entries are sorted by stack id; only stacks with a
 * non-zero counter appear. */
struct hd_snap {
	char *name;
	double time;        /* seconds since the session started */
	uint64_t rate;      /* sampling rate in force when taken */
	struct hd_counts total;
	double frees;       /* estimated objects freed since start */
	uint64_t samples;   /* raw sampled allocations since start */
	void *symbols;      /* the hd_sym_space valid for these pcs (opaque
			       here; set by whoever takes the snapshot) */
	size_t n;
	struct hd_snap_entry *entries;
};

struct hd_prof;

struct hd_prof *hd_prof_new(void);
void hd_prof_free(struct hd_prof *p);

/* A sampled allocation of `size` bytes at `ptr`, sampled at rate `rate`.
 * A pointer already live is replaced (its old record is treated as
 * freed: the free was missed). */
void hd_prof_record_alloc(struct hd_prof *p, const uint64_t *pcs,
			  unsigned depth, uint64_t ptr, uint64_t size,
			  uint64_t rate);
/* A free of `ptr`; a no-op unless ptr is a live sampled pointer. */
void hd_prof_record_free(struct hd_prof *p, uint64_t ptr);
/* Everything live is gone (exec replaced the image): in-use drops to 0. */
void hd_prof_forget_live(struct hd_prof *p);

/* Copy of the current profile; time = seconds since start.  NULL on
 * out-of-memory.  Free with hd_snap_free(). */
struct hd_snap *hd_prof_snapshot(struct hd_prof *p, const char *name,
				 double time, uint64_t rate);
void hd_snap_free(struct hd_snap *s);

/* Difference cur - base, per stack (stacks absent from one side count as
 * zero there), for -base.  Returns a new snapshot named like cur. */
struct hd_snap *hd_snap_diff(const struct hd_snap *cur,
			     const struct hd_snap *base);

/* Totals only, cheap (for stats/watch). */
struct hd_prof_totals {
	struct hd_counts total;
	double frees;
	uint64_t samples;
};
void hd_prof_totals(struct hd_prof *p, struct hd_prof_totals *out);

/* ---- sampling maths (profile/sample.c) ---- */

/* Weight of one sampled allocation of size s at rate R: 1/(1-exp(-s/R));
 * exactly 1 when R <= 1. */
double hd_sample_weight(uint64_t size, uint64_t rate);

/* xorshift-style generator state; seed with hd_rng_seed. */
struct hd_rng {
	uint64_t s;
};
void hd_rng_seed(struct hd_rng *r, uint64_t seed);
/* Next byte threshold ~ Exp(mean rate); 0 when rate <= 1 (sample all). */
uint64_t hd_sample_next(struct hd_rng *r, uint64_t rate);

#endif
