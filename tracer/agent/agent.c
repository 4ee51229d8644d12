/* The agent: freestanding code injected into the tracee.
 *
 * No libc (it runs inside the tracee's malloc), no writable data of its
 * own, raw system calls only.  It is reentrant and lock-free: any thread
 * may be in it at once, and a signal handler may enter it again.  All
 * state is in the shared mapping (agent_abi.h), which heapdbg reads.
 *
 * hd_agent_slow() handles the calls the entry stubs (entry.S) hand over:
 * a sampled malloc, a free of a possibly sampled pointer, and every call
 * of the other entry points.  A sampled allocation is recorded with the
 * caller's registers and a copy of the top of its stack, as
 * `perf record --call-graph dwarf` does: heapdbg unwinds it later, away
 * from the tracee.  When the ring is full (heapdbg is slow, or gone) the
 * record is dropped and counted: the tracee never waits. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_abi.h"

#define HIDDEN __attribute__((visibility("hidden")))

/* The caller's state at the entry point, saved by hd_agent_common. */
struct hd_entry_regs {
	uint64_t rbx, rbp, r12, r13, r14, r15;
	uint64_t rdi, rsi, rdx, rcx;
	uint64_t rsp; /* at the entry: (rsp) is the return address */
};

extern const struct hd_agent_slots hd_agent_slots HIDDEN;
uint64_t hd_agent_slow(uint32_t kind, struct hd_entry_regs *r) HIDDEN;
void hd_agent_linkmap(void) HIDDEN;

/* The compiler may emit calls to these for struct copies. */
void *memset(void *d, int c, size_t n) HIDDEN;
void *memcpy(void *d, const void *s, size_t n) HIDDEN;
void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;
	while (n--)
		*p++ = (unsigned char)c;
	return d;
}
void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;
	while (n--)
		*p++ = *q++;
	return d;
}

static inline struct hd_agent_ctl *shared(void)
{
	return (struct hd_agent_ctl *)(uintptr_t)hd_agent_slots.shared;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static long sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8),
			   "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}

#define SYS_process_vm_readv 310

struct iov {
	void *base;
	size_t len;
};

/* Copy from our own memory without faulting: the kernel stops at the
 * first unmapped page, where a plain copy would crash the tracee. */
static size_t safe_copy(struct hd_agent_ctl *c, void *dst, uint64_t src,
			size_t len)
{
	struct iov local = {dst, len}, remote = {(void *)(uintptr_t)src, len};
	long n = sys6(SYS_process_vm_readv, (long)c->pid, (long)&local, 1,
		      (long)&remote, 1, 0);
	return n > 0 ? (size_t)n : 0;
}

/* ---- sampling ---- */

static struct hd_agent_counter *counter(struct hd_agent_ctl *c, uint64_t rsp)
{
	/* The same bucket as the malloc stub's: by stack address, so
	 * threads (on different stacks) rarely share a counter. */
	uint64_t h = ((rsp >> 14) * HD_HASH_MUL) >> 56;
	return (struct hd_agent_counter *)((char *)c + HD_SH_COUNTERS +
					   h * HD_COUNTER_STRIDE);
}

/* -ln(u) for u uniform in (0, 1]: an exponential variate of mean 1.
 * log2 by exponent and a linearly interpolated table, as the Go runtime's
 * fastlog2 does; heapdbg fills the table (no libm here). */
static double exp_variate(struct hd_agent_ctl *c, uint64_t *state)
{
	uint64_t x = *state ? *state : 0x853c49e6748fea9bull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	uint64_t r = (x * 2685821657736338717ull) >> 11; /* 53 bits */
	union {
		double d;
		uint64_t b;
	} v = {.d = (double)(int64_t)(r + 1) * 0x1p-53};
	int e = (int)((v.b >> 52) & 0x7ff) - 1023;
	uint64_t mant = v.b & ((1ull << 52) - 1);
	unsigned i = (unsigned)(mant >> 46);
	double frac = (double)(int64_t)(mant & ((1ull << 46) - 1)) * 0x1p-46;
	double lo = c->log2_table[i], hi = c->log2_table[i + 1];
	double l2 = (double)e + lo + (hi - lo) * frac;
	return -l2 * 0.69314718055994530942;
}

static void redraw(struct hd_agent_ctl *c, struct hd_agent_counter *k)
{
	uint64_t rate = __atomic_load_n(&c->rate, __ATOMIC_RELAXED);
	if (rate <= 1) {
		k->left = -1; /* every allocation, even of 0 bytes */
		return;
	}
	k->left = (int64_t)(exp_variate(c, &k->rng) * (double)rate);
}

/* The countdown for calls that come here directly (all but malloc). */
static bool sample(struct hd_agent_ctl *c, uint64_t rsp, uint64_t size)
{
	struct hd_agent_counter *k = counter(c, rsp);
	k->left -= (int64_t)size;
	if (k->left >= 0)
		return false;
	redraw(c, k);
	return true;
}

/* ---- the sampled-pointer set: 8 slots per bucket, one cache line; a
 * summary and a counting filter in front so that most frees look at one
 * byte of the summary ---- */

static uint64_t *set_bucket(struct hd_agent_ctl *c, uint64_t ptr)
{
	uint64_t h = (ptr * HD_HASH_MUL) >> (64 - HD_SET_BITS);
	return (uint64_t *)((char *)c + HD_SH_SET) + h * HD_SET_WAYS;
}

/* Add delta (+1 or -1) to the n-bit counter at bit `sh` of *f, which
 * saturates at its largest value and then stays there for good: a
 * counter that once counted that many pointers cannot know when the last
 * one is gone.  It only costs the frees that hash there a look further. */
static void counter_add(uint8_t *f, unsigned sh, unsigned max, int delta)
{
	uint8_t v = __atomic_load_n(f, __ATOMIC_RELAXED);
	for (;;) {
		unsigned n = (v >> sh) & max;
		if (n == max || (delta < 0 && n == 0))
			return;
		n = delta > 0 ? n + 1 : n - 1;
		uint8_t nv = (uint8_t)((v & ~(max << sh)) | n << sh);
		if (__atomic_compare_exchange_n(f, &v, nv, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return;
	}
}

/* Both filters count ptr in (+1) or out (-1): its 4-bit counter e (the
 * free stub's hash), bits 4*(e&1).. of fine-filter byte e>>1, and the
 * summary's byte e >> 6.  A counter is never below the number of set
 * members that hash to it, so a zero in either means "not in the set" to
 * the free stub. */
static void filter_add(struct hd_agent_ctl *c, uint64_t ptr, int delta)
{
	uint64_t e = (ptr * HD_HASH_MUL) >> (64 - HD_FILTER_BITS);
	counter_add((uint8_t *)c + HD_SH_FILTER + (e >> 1),
		    (unsigned)(e & 1) * 4, 15, delta);
	counter_add((uint8_t *)c + HD_SH_SUMMARY +
			    (e >> (HD_FILTER_BITS - HD_SUMMARY_BITS)),
		    0, 255, delta);
}

static void overflow(struct hd_agent_ctl *c)
{
	/* A sampled pointer we cannot track: from now on every free is
	 * reported, and heapdbg ignores the ones it does not know. */
	__atomic_fetch_add(&c->set_full, 1, __ATOMIC_RELAXED);
	__atomic_fetch_or(&c->flags, HD_AGENT_ALL_FREES, __ATOMIC_RELEASE);
}

/* The pointer goes into its bucket before its counter goes up, and out
 * of it before the counter goes down: a free that sees the counter at
 * zero can only be of a pointer that is not in the set.  (Nobody frees
 * ptr before the allocation that returns it has inserted it.) */
static void set_insert(struct hd_agent_ctl *c, uint64_t ptr)
{
	uint64_t *b = set_bucket(c, ptr);
	for (int i = 0; i < HD_SET_WAYS; i++) {
		uint64_t empty = 0;
		if (__atomic_compare_exchange_n(&b[i], &empty, ptr, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			filter_add(c, ptr, 1);
			return;
		}
	}
	overflow(c);
}

static bool set_remove(struct hd_agent_ctl *c, uint64_t ptr)
{
	uint64_t *b = set_bucket(c, ptr);
	for (int i = 0; i < HD_SET_WAYS; i++) {
		uint64_t want = ptr;
		if (__atomic_load_n(&b[i], __ATOMIC_RELAXED) == ptr &&
		    __atomic_compare_exchange_n(&b[i], &want, 0, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			filter_add(c, ptr, -1);
			return true;
		}
	}
	return false;
}

/* ---- the ring ---- */

#define SYS_sched_yield 24
/* How long exact mode waits for heapdbg to make room: about 200 ms. */
#define FULL_WAIT_CYCLES (600ull * 1000 * 1000)

/* A full ring drops the record -- except in exact mode (rate 1), where
 * every allocation matters: there the thread yields until heapdbg has
 * drained some.  While heapdbg's drain keeps beating it waits; once the
 * heartbeat is older than FULL_WAIT_CYCLES it waits that long at most,
 * so a heapdbg that died or hangs never blocks the process for long. */
/* heapdbg's drain has beaten lately: it is alive and draining. */
static bool heapdbg_beats(struct hd_agent_ctl *c, uint64_t now)
{
	return now - __atomic_load_n(&c->heartbeat, __ATOMIC_RELAXED) <
	       FULL_WAIT_CYCLES;
}

static bool wait_for_room(struct hd_agent_ctl *c, uint64_t *since)
{
	if (__atomic_load_n(&c->rate, __ATOMIC_RELAXED) > 1 ||
	    (__atomic_load_n(&c->flags, __ATOMIC_RELAXED) & HD_AGENT_STALLED))
		return false;
	uint64_t now = rdtsc();
	if (!*since)
		*since = now;
	/* heapdbg is alive and draining (slower than we allocate): wait
	 * as long as it takes; otherwise give up after a while. */
	if (heapdbg_beats(c, now)) {
		sys6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
		return true;
	}
	if (now - *since > FULL_WAIT_CYCLES) {
		/* Nobody drains: drop at once from now on, until there is
		 * room again. */
		__atomic_fetch_or(&c->flags, HD_AGENT_STALLED,
				  __ATOMIC_RELAXED);
		return false;
	}
	sys6(SYS_sched_yield, 0, 0, 0, 0, 0, 0);
	return true;
}

static struct hd_rec *reserve(struct hd_agent_ctl *c, uint32_t len)
{
	char *ring = (char *)c + HD_SH_RING;
	uint64_t head = __atomic_load_n(&c->head, __ATOMIC_RELAXED);
	uint64_t since = 0;
	for (;;) {
		uint64_t off = head & (HD_RING_SIZE - 1);
		uint64_t pad = off + len > HD_RING_SIZE ? HD_RING_SIZE - off : 0;
		uint64_t tail = __atomic_load_n(&c->tail, __ATOMIC_ACQUIRE);
		if (head + pad + len - tail > HD_RING_SIZE) {
			if (wait_for_room(c, &since)) {
				head = __atomic_load_n(&c->head,
						       __ATOMIC_RELAXED);
				continue;
			}
			__atomic_fetch_add(&c->dropped, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		if (!__atomic_compare_exchange_n(&c->head, &head,
						 head + pad + len, false,
						 __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		if (__atomic_load_n(&c->flags, __ATOMIC_RELAXED) &
		    HD_AGENT_STALLED)
			__atomic_fetch_and(&c->flags, ~HD_AGENT_STALLED,
					   __ATOMIC_RELAXED);
		if (pad) {
			struct hd_rec *p = (struct hd_rec *)(ring + off);
			p->len = (uint32_t)pad;
			p->type = HD_REC_PAD;
			__atomic_store_n(&p->ready, 1, __ATOMIC_RELEASE);
		}
		struct hd_rec *r =
			(struct hd_rec *)(ring + ((head + pad) &
						  (HD_RING_SIZE - 1)));
		r->len = len;
		return r;
	}
}

static void commit(struct hd_rec *r, uint16_t type)
{
	r->type = type;
	__atomic_store_n(&r->ready, 1, __ATOMIC_RELEASE);
}

#define SYS_gettid 186
/* The most stack a sample copies while the ring is more than half full. */
#define PRESSED_COPY 2048

/* How much of the stack above sp to copy: up to the top heapdbg learned
 * for this thread when it has, else the most (c->stack_copy). */
static uint32_t stack_want(struct hd_agent_ctl *c, uint32_t tid, uint64_t sp)
{
	uint32_t most = c->stack_copy & ~7u;
	struct hd_agent_stack *e = hd_agent_stack_of(c, tid);
	uint32_t s1 = __atomic_load_n(&e->seq, __ATOMIC_ACQUIRE);
	uint32_t etid = __atomic_load_n(&e->tid, __ATOMIC_RELAXED);
	uint64_t lo = __atomic_load_n(&e->lo, __ATOMIC_RELAXED);
	uint64_t top = __atomic_load_n(&e->top, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	uint32_t s2 = __atomic_load_n(&e->seq, __ATOMIC_RELAXED);
	if ((s1 & 1) || s1 != s2 || etid != tid || sp < lo || sp >= top)
		return most;
	uint64_t want = (top - sp + 7) & ~7ull;
	return want < most ? (uint32_t)want : most;
}

static void record_alloc(struct hd_agent_ctl *c, uint32_t kind,
			 const struct hd_entry_regs *r, uint64_t ptr,
			 uint64_t size)
{
	uint64_t sp = r->rsp + 8;
	uint32_t tid = (uint32_t)sys6(SYS_gettid, 0, 0, 0, 0, 0, 0);
	uint32_t copy = stack_want(c, tid, sp);
	/* Falling behind (heapdbg drains slower than this process samples,
	 * typically at rate 1): keep every allocation, with a shorter stack,
	 * rather than lose them when the ring is full.  (A size heapdbg
	 * learned for the thread is usually smaller still.) */
	uint64_t used = __atomic_load_n(&c->head, __ATOMIC_RELAXED) -
			__atomic_load_n(&c->tail, __ATOMIC_RELAXED);
	if (used > HD_RING_SIZE / 2 && copy > PRESSED_COPY)
		copy = PRESSED_COPY;
	struct hd_rec *h = reserve(c, sizeof(struct hd_rec_alloc) + copy);
	if (h) {
		struct hd_rec_alloc *a = (struct hd_rec_alloc *)h;
		a->kind = kind;
		a->tid = tid;
		a->ptr = ptr;
		a->size = size;
		a->rate = __atomic_load_n(&c->rate, __ATOMIC_RELAXED);
		a->ip = *(const uint64_t *)(uintptr_t)r->rsp;
		a->sp = sp;
		a->rbx = r->rbx;
		a->rbp = r->rbp;
		a->r12 = r->r12;
		a->r13 = r->r13;
		a->r14 = r->r14;
		a->r15 = r->r15;
		a->stack_want = copy;
		a->stack_len = (uint32_t)safe_copy(c, a + 1, sp, copy);
		commit(h, HD_REC_ALLOC);
	}
	/* Tracked even when the record was dropped, so its free is seen. */
	set_insert(c, ptr);
}

static void record_free(struct hd_agent_ctl *c, uint64_t ptr)
{
	struct hd_rec *h = reserve(c, sizeof(struct hd_rec_free));
	if (!h)
		return;
	((struct hd_rec_free *)h)->ptr = ptr;
	commit(h, HD_REC_FREE);
}

/* A free of ptr: reported before the original free runs, because once it
 * has, another thread may be handed the same address. */
static void forget(struct hd_agent_ctl *c, uint64_t ptr)
{
	if (!ptr)
		return;
	if (set_remove(c, ptr) ||
	    (__atomic_load_n(&c->flags, __ATOMIC_ACQUIRE) & HD_AGENT_ALL_FREES))
		record_free(c, ptr);
}

/* ---- the dynamic linker's hook ---- */

#define SYS_futex 202
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
/* How long one change of the link map waits for heapdbg: about 50 ms
 * at most (it takes well under a millisecond while heapdbg is alive). */
#define LINKMAP_WAIT_CYCLES (150ull * 1000 * 1000)

struct timespec_ {
	long sec, nsec;
};

/* _dl_debug_state was called: the link map is about to change or has
 * changed.  Wake heapdbg's drain (which waits on drain_wake) and give
 * it the time to read the modules while they are as the dynamic linker
 * says -- a library loaded and unloaded again before heapdbg looked
 * would leave its samples' frames without names.  Only while heapdbg's
 * drain beats, and never for long. */
void hd_agent_linkmap(void)
{
	struct hd_agent_ctl *c = shared();
	uint32_t gen = __atomic_add_fetch(&c->modules_gen, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&c->drain_wake, 1, __ATOMIC_SEQ_CST);
	sys6(SYS_futex, (long)&c->drain_wake, FUTEX_WAKE, 1, 0, 0, 0);
	uint64_t t0 = rdtsc();
	for (;;) {
		uint32_t ack = __atomic_load_n(&c->modules_ack, __ATOMIC_ACQUIRE);
		if ((int32_t)(ack - gen) >= 0)
			return;
		uint64_t now = rdtsc();
		if (!heapdbg_beats(c, now) || now - t0 > LINKMAP_WAIT_CYCLES)
			return;
		struct timespec_ ts = {0, 1000 * 1000};
		sys6(SYS_futex, (long)&c->modules_ack, FUTEX_WAIT, (long)ack,
		     (long)&ts, 0, 0);
	}
}

/* ---- the slow path ---- */

typedef uint64_t (*orig_fn)(uint64_t, uint64_t, uint64_t);

static uint64_t call_orig(uint32_t kind, const struct hd_entry_regs *r)
{
	orig_fn f = (orig_fn)(uintptr_t)hd_agent_slots.orig[kind];
	return f(r->rdi, r->rsi, r->rdx);
}

static bool mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}

uint64_t hd_agent_slow(uint32_t kind, struct hd_entry_regs *r)
{
	struct hd_agent_ctl *c = shared();
	uint64_t t0 = rdtsc(), res, size = 0;
	uint64_t ret = *(const uint64_t *)(uintptr_t)r->rsp;
	bool sampled = false;

	__atomic_fetch_add(&c->inside, 1, __ATOMIC_ACQ_REL);
	if (ret - hd_agent_slots.code_start < hd_agent_slots.code_span) {
		/* Called by an original function we called: theirs. */
		res = call_orig(kind, r);
		goto out;
	}
	switch (kind) {
	case HD_K_MALLOC:
		/* The stub's countdown crossed zero. */
		redraw(c, counter(c, r->rsp));
		sampled = true;
		size = r->rdi;
		break;
	case HD_K_FREE:
		forget(c, r->rdi);
		res = call_orig(kind, r);
		goto out;
	case HD_K_CALLOC:
		if (!mul_ok(r->rdi, r->rsi, &size))
			size = 0;
		break;
	case HD_K_REALLOC:
		size = r->rsi;
		forget(c, r->rdi);
		if (size == 0 && r->rdi) {
			res = call_orig(kind, r); /* realloc(p, 0) frees */
			goto out;
		}
		break;
	case HD_K_REALLOCARRAY:
		if (!mul_ok(r->rsi, r->rdx, &size))
			size = 0;
		forget(c, r->rdi);
		break;
	case HD_K_POSIX_MEMALIGN:
		size = r->rdx;
		break;
	case HD_K_ALIGNED_ALLOC:
	case HD_K_MEMALIGN:
		size = r->rsi;
		break;
	default: /* valloc, pvalloc */
		size = r->rdi;
		break;
	}
	if (kind != HD_K_MALLOC)
		sampled = sample(c, r->rsp, size);
	res = call_orig(kind, r);
	if (sampled) {
		uint64_t ptr = res;
		if (kind == HD_K_POSIX_MEMALIGN)
			ptr = res == 0 ? *(const uint64_t *)(uintptr_t)r->rdi
				       : 0;
		if (ptr)
			record_alloc(c, kind, r, ptr, size);
	}
out:
	__atomic_fetch_add(&c->slow_calls, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&c->slow_cycles, rdtsc() - t0, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&c->inside, 1, __ATOMIC_ACQ_REL);
	return res;
}
