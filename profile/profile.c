/* profile/: stacks, the live table, per-stack counters and snapshots.
 *
 * The record functions run while a tracee thread may be stopped, so they
 * do O(1) work: one hash lookup for the stack (allocating only when the
 * stack is new), one open-addressing probe in the live table, a few
 * additions.  Tables grow by doubling (amortized O(1)).
 *
 * Both tables use linear probing.  The live table deletes by backward
 * shifting (Knuth 6.4, algorithm R) instead of tombstones, so a long run
 * of alloc/free churn never degrades probes.
 */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "profile.h"

/* One sampled pointer still live: what its allocation added, so the free
 * subtracts exactly that. */
struct live {
	uint64_t ptr; /* 0 = empty slot (malloc never returns NULL live) */
	uint32_t stack;
	double objects, bytes;
};

struct hd_prof {
	pthread_mutex_t mu;

	/* Stacks: by_id owns them; slots is the hash index (ids + 1, 0 =
	 * empty). */
	struct hd_stack **by_id;
	struct hd_counts *counts; /* parallel to by_id */
	uint32_t nstacks, cap_stacks;
	uint32_t *slots;
	uint32_t nslots; /* power of two */

	struct live *live;
	size_t nlive, cap_live; /* cap_live: power of two or 0 */

	struct hd_counts total;
	double frees;
	uint64_t samples;
};

double hd_counts_value(const struct hd_counts *c, enum hd_sample_index i)
{
	switch (i) {
	case HD_ALLOC_OBJECTS:
		return c->alloc_objects;
	case HD_ALLOC_SPACE:
		return c->alloc_space;
	case HD_INUSE_OBJECTS:
		return c->inuse_objects;
	case HD_INUSE_SPACE:
		return c->inuse_space;
	}
	return 0;
}

struct hd_prof *hd_prof_new(void)
{
	struct hd_prof *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	return p;
}

void hd_prof_free(struct hd_prof *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->nstacks; i++)
		free(p->by_id[i]);
	free(p->by_id);
	free(p->counts);
	free(p->slots);
	free(p->live);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- stacks ---- */

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t stack_hash(const uint64_t *pcs, unsigned depth)
{
	uint64_t h = 0x84222325cbf29ce4ull ^ depth;
	for (unsigned i = 0; i < depth; i++)
		h = mix64(h ^ pcs[i]) + i;
	return h;
}

static bool stack_equal(const struct hd_stack *s, uint64_t hash,
			const uint64_t *pcs, unsigned depth)
{
	return s->hash == hash && s->depth == depth &&
	       memcmp(s->pcs, pcs, depth * sizeof(*pcs)) == 0;
}

static int grow_slots(struct hd_prof *p)
{
	uint32_t n = p->nslots ? p->nslots * 2 : 256;
	uint32_t *slots = calloc(n, sizeof(*slots));
	if (!slots)
		return -HD_ENOMEM;
	for (uint32_t id = 0; id < p->nstacks; id++) {
		uint32_t i = (uint32_t)p->by_id[id]->hash & (n - 1);
		while (slots[i])
			i = (i + 1) & (n - 1);
		slots[i] = id + 1;
	}
	free(p->slots);
	p->slots = slots;
	p->nslots = n;
	return 0;
}

static int grow_stacks(struct hd_prof *p)
{
	uint32_t n = p->cap_stacks ? p->cap_stacks * 2 : 256;
	struct hd_stack **by_id = realloc(p->by_id, n * sizeof(*by_id));
	if (!by_id)
		return -HD_ENOMEM;
	p->by_id = by_id;
	struct hd_counts *counts = realloc(p->counts, n * sizeof(*counts));
	if (!counts)
		return -HD_ENOMEM;
	p->counts = counts;
	p->cap_stacks = n;
	return 0;
}

/* The id of the stack pcs[0..depth), created on first sight; -1 on
 * out-of-memory (the sample is then lost, never the profile). */
static int64_t intern_stack(struct hd_prof *p, const uint64_t *pcs,
			    unsigned depth)
{
	if (depth > HD_MAX_DEPTH)
		depth = HD_MAX_DEPTH;
	uint64_t h = stack_hash(pcs, depth);
	if (p->nslots) {
		uint32_t i = (uint32_t)h & (p->nslots - 1);
		for (; p->slots[i]; i = (i + 1) & (p->nslots - 1)) {
			uint32_t id = p->slots[i] - 1;
			if (stack_equal(p->by_id[id], h, pcs, depth))
				return id;
		}
	}
	/* New stack: keep the index at most half full. */
	if ((uint64_t)(p->nstacks + 1) * 2 > p->nslots && grow_slots(p))
		return -1;
	if (p->nstacks == p->cap_stacks && grow_stacks(p))
		return -1;
	struct hd_stack *s = malloc(sizeof(*s) + depth * sizeof(*pcs));
	if (!s)
		return -1;
	s->hash = h;
	s->id = p->nstacks;
	s->depth = depth;
	memcpy(s->pcs, pcs, depth * sizeof(*pcs));
	p->by_id[s->id] = s;
	memset(&p->counts[s->id], 0, sizeof(p->counts[s->id]));
	p->nstacks++;
	uint32_t i = (uint32_t)h & (p->nslots - 1);
	while (p->slots[i])
		i = (i + 1) & (p->nslots - 1);
	p->slots[i] = s->id + 1;
	return s->id;
}

/* ---- live table ---- */

static size_t live_home(const struct hd_prof *p, uint64_t ptr)
{
	return (size_t)mix64(ptr) & (p->cap_live - 1);
}

static struct live *live_find(struct hd_prof *p, uint64_t ptr)
{
	if (!p->cap_live)
		return NULL;
	for (size_t i = live_home(p, ptr); p->live[i].ptr;
	     i = (i + 1) & (p->cap_live - 1))
		if (p->live[i].ptr == ptr)
			return &p->live[i];
	return NULL;
}

static void live_put(struct live *tab, size_t cap, const struct live *e)
{
	size_t i = (size_t)mix64(e->ptr) & (cap - 1);
	while (tab[i].ptr)
		i = (i + 1) & (cap - 1);
	tab[i] = *e;
}

static int live_grow(struct hd_prof *p)
{
	size_t n = p->cap_live ? p->cap_live * 2 : 1024;
	struct live *tab = calloc(n, sizeof(*tab));
	if (!tab)
		return -HD_ENOMEM;
	for (size_t i = 0; i < p->cap_live; i++)
		if (p->live[i].ptr)
			live_put(tab, n, &p->live[i]);
	free(p->live);
	p->live = tab;
	p->cap_live = n;
	return 0;
}

/* Remove the entry at slot e, shifting later members of its probe run
 * back so lookups never need tombstones. */
static void live_delete(struct hd_prof *p, struct live *e)
{
	size_t mask = p->cap_live - 1;
	size_t hole = (size_t)(e - p->live);
	for (size_t j = (hole + 1) & mask; p->live[j].ptr; j = (j + 1) & mask) {
		size_t home = live_home(p, p->live[j].ptr);
		/* Move j into the hole unless its home lies cyclically in
		 * (hole, j]: then it must stay at or after its home. */
		bool stays = hole <= j ? (hole < home && home <= j)
				       : (hole < home || home <= j);
		if (stays)
			continue;
		p->live[hole] = p->live[j];
		hole = j;
	}
	p->live[hole].ptr = 0;
	p->nlive--;
}

/* Undo what a live record added to its stack and to the totals. */
static void unaccount(struct hd_prof *p, const struct live *e)
{
	struct hd_counts *c = &p->counts[e->stack];
	c->inuse_objects -= e->objects;
	c->inuse_space -= e->bytes;
	/* Sums of doubles do not cancel exactly; when nothing of a stack is
	 * live its in-use figures are exactly zero. */
	if (--c->inuse_samples == 0)
		c->inuse_objects = c->inuse_space = 0;
	p->total.inuse_objects -= e->objects;
	p->total.inuse_space -= e->bytes;
	if (--p->total.inuse_samples == 0)
		p->total.inuse_objects = p->total.inuse_space = 0;
	p->frees += e->objects;
}

/* ---- recording ---- */

void hd_prof_record_alloc(struct hd_prof *p, const uint64_t *pcs,
			  unsigned depth, uint64_t ptr, uint64_t size,
			  uint64_t rate)
{
	double w = hd_sample_weight(size, rate);
	struct live e = {.ptr = ptr, .objects = w, .bytes = w * (double)size};

	pthread_mutex_lock(&p->mu);
	int64_t id = intern_stack(p, pcs, depth);
	if (id < 0)
		goto out;
	e.stack = (uint32_t)id;

	struct hd_counts *c = &p->counts[id];
	c->alloc_objects += e.objects;
	c->alloc_space += e.bytes;
	c->alloc_samples++;
	p->total.alloc_objects += e.objects;
	p->total.alloc_space += e.bytes;
	p->total.alloc_samples++;
	p->samples++;

	if (!ptr)
		goto out; /* failed allocation: nothing stays live */
	struct live *old = live_find(p, ptr);
	if (old) {
		/* The free of the previous owner of ptr was missed. */
		unaccount(p, old);
		live_delete(p, old);
	}
	/* Keep the live table at most half full. */
	if ((p->nlive + 1) * 2 > p->cap_live && live_grow(p))
		goto out;
	live_put(p->live, p->cap_live, &e);
	p->nlive++;
	c->inuse_objects += e.objects;
	c->inuse_space += e.bytes;
	c->inuse_samples++;
	p->total.inuse_objects += e.objects;
	p->total.inuse_space += e.bytes;
	p->total.inuse_samples++;
out:
	pthread_mutex_unlock(&p->mu);
}

void hd_prof_record_free(struct hd_prof *p, uint64_t ptr)
{
	pthread_mutex_lock(&p->mu);
	struct live *e = ptr ? live_find(p, ptr) : NULL;
	if (e) {
		unaccount(p, e);
		live_delete(p, e);
	}
	pthread_mutex_unlock(&p->mu);
}

void hd_prof_forget_live(struct hd_prof *p)
{
	pthread_mutex_lock(&p->mu);
	if (p->cap_live)
		memset(p->live, 0, p->cap_live * sizeof(*p->live));
	p->nlive = 0;
	for (uint32_t i = 0; i < p->nstacks; i++) {
		struct hd_counts *c = &p->counts[i];
		c->inuse_objects = c->inuse_space = 0;
		c->inuse_samples = 0;
	}
	p->total.inuse_objects = p->total.inuse_space = 0;
	p->total.inuse_samples = 0;
	pthread_mutex_unlock(&p->mu);
}

/* ---- snapshots ---- */

static bool counts_zero(const struct hd_counts *c)
{
	return c->alloc_objects == 0 && c->alloc_space == 0 &&
	       c->inuse_objects == 0 && c->inuse_space == 0 &&
	       c->alloc_samples == 0 && c->inuse_samples == 0;
}

static struct hd_snap *snap_alloc(const char *name, size_t n)
{
	struct hd_snap *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->name = strdup(name ? name : "");
	s->entries = calloc(n ? n : 1, sizeof(*s->entries));
	if (!s->name || !s->entries) {
		hd_snap_free(s);
		return NULL;
	}
	return s;
}

struct hd_snap *hd_prof_snapshot(struct hd_prof *p, const char *name,
				 double time, uint64_t rate)
{
	pthread_mutex_lock(&p->mu);
	struct hd_snap *s = snap_alloc(name, p->nstacks);
	if (s) {
		s->time = time;
		s->rate = rate;
		s->total = p->total;
		s->frees = p->frees;
		s->samples = p->samples;
		for (uint32_t i = 0; i < p->nstacks; i++) {
			if (counts_zero(&p->counts[i]))
				continue;
			s->entries[s->n].stack = p->by_id[i];
			s->entries[s->n].counts = p->counts[i];
			s->n++;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return s;
}

void hd_snap_free(struct hd_snap *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->entries);
	free(s);
}

static void counts_sub(struct hd_counts *d, const struct hd_counts *a,
		       const struct hd_counts *b)
{
	d->alloc_objects = a->alloc_objects - b->alloc_objects;
	d->alloc_space = a->alloc_space - b->alloc_space;
	d->inuse_objects = a->inuse_objects - b->inuse_objects;
	d->inuse_space = a->inuse_space - b->inuse_space;
	/* Raw sample counters are unsigned: a difference below zero means
	 * the stack lost samples, reported as none. */
	d->alloc_samples = a->alloc_samples > b->alloc_samples
				   ? a->alloc_samples - b->alloc_samples
				   : 0;
	d->inuse_samples = a->inuse_samples > b->inuse_samples
				   ? a->inuse_samples - b->inuse_samples
				   : 0;
}

struct hd_snap *hd_snap_diff(const struct hd_snap *cur,
			     const struct hd_snap *base)
{
	struct hd_snap *d = snap_alloc(cur->name, cur->n + base->n);
	if (!d)
		return NULL;
	static const struct hd_counts zero;
	d->time = cur->time;
	d->rate = cur->rate;
	d->symbols = cur->symbols;
	counts_sub(&d->total, &cur->total, &base->total);
	d->frees = cur->frees - base->frees;
	d->samples = cur->samples > base->samples ? cur->samples - base->samples
						  : 0;
	/* Both sides are sorted by stack id: merge them. */
	size_t i = 0, j = 0;
	while (i < cur->n || j < base->n) {
		const struct hd_snap_entry *a = i < cur->n ? &cur->entries[i]
							   : NULL;
		const struct hd_snap_entry *b = j < base->n ? &base->entries[j]
							    : NULL;
		struct hd_snap_entry *e = &d->entries[d->n];
		if (a && (!b || a->stack->id < b->stack->id)) {
			e->stack = a->stack;
			counts_sub(&e->counts, &a->counts, &zero);
			i++;
		} else if (b && (!a || b->stack->id < a->stack->id)) {
			e->stack = b->stack;
			counts_sub(&e->counts, &zero, &b->counts);
			j++;
		} else {
			e->stack = a->stack;
			counts_sub(&e->counts, &a->counts, &b->counts);
			i++;
			j++;
		}
		if (!counts_zero(&e->counts))
			d->n++;
	}
	return d;
}

void hd_prof_totals(struct hd_prof *p, struct hd_prof_totals *out)
{
	pthread_mutex_lock(&p->mu);
	out->total = p->total;
	out->frees = p->frees;
	out->samples = p->samples;
	pthread_mutex_unlock(&p->mu);
}
