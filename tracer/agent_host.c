/* heapdbg's side of the in-tracee agent (Level 2 of DESIGN.md).
 *
 * Installing, on threads that are all stopped:
 *   1. remote system calls on one stopped thread (CRIU's compel is the
 *      model): point rip at a `syscall` instruction of the process with
 *      the registers set up, single-step, read rax, put every register
 *      back.  orig_rax = -1 keeps the kernel's syscall-restart logic out
 *      of our way; the thread's own interrupted call is restarted as
 *      usual when it runs on.
 *   2. mmap the code near the patched module (rel32 reach), memfd_create
 *      + mmap MAP_SHARED for the shared state; heapdbg maps the same
 *      memfd after taking it with pidfd_getfd(), and the tracee's
 *      descriptor is closed again.
 *   3. write the blob, its slots and the trampolines (the displaced first
 *      instructions, relocated by reloc.c, and a jump back).
 *   4. patch each entry point with `jmp rel32` to its stub.
 * Every step has its undo on the error path, in reverse order.
 *
 * Draining: records are consumed in ring order; each sampled allocation
 * is unwound from its stack copy, away from the tracee, and handed to
 * profile/ like any other sample. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent_blob.h"
#include "agent_host.h"
#include "reloc.h"

#define PAGE 4096ULL
#define TRAMP_SLOT 128 /* bytes per trampoline */

struct hd_agent {
	pid_t pid;
	uint64_t syscall_insn;
	uint64_t code, code_len;     /* in the tracee */
	uint64_t shared_remote;      /* in the tracee */
	struct hd_agent_ctl *ctl;    /* our mapping of the shared state */
	int npatch;
	struct hd_agent_patch patch[HD_K_COUNT];
	uint64_t seen_rate;
	double cycles_per_ns;
};

/* ---- remote system calls ---- */

/* A `syscall` instruction in the process's text: any will do, the thread
 * executes just that one instruction there. */
static uint64_t find_syscall_insn(pid_t pid, const struct hd_maps *m)
{
	static const uint8_t pat[2] = {0x0f, 0x05};
	for (size_t i = 0; i < m->n; i++) {
		const struct hd_map *e = &m->v[i];
		if (e->perms[2] != 'x' || !e->path || e->path[0] != '/')
			continue;
		size_t len = e->end - e->start;
		if (len > 64 << 20)
			len = 64 << 20;
		uint8_t *buf = malloc(len);
		if (!buf)
			return 0;
		ssize_t n = hd_mem_read(pid, e->start, buf, len);
		void *hit = n > 1 ? memmem(buf, (size_t)n, pat, 2) : NULL;
		uint64_t addr = hit ? e->start + (uint64_t)((uint8_t *)hit - buf)
				    : 0;
		free(buf);
		if (addr)
			return addr;
	}
	return 0;
}

static long remote_syscall(struct hd_agent *a, pid_t tid, int *pending_sig,
			   long nr, long a1, long a2, long a3, long a4,
			   long a5, long a6)
{
	struct user_regs_struct saved, r;
	int st;
	if (hd_pt_getregs(tid, &saved))
		return -ESRCH;
	r = saved;
	r.rax = (unsigned long long)nr;
	r.orig_rax = (unsigned long long)-1;
	r.rdi = (unsigned long long)a1;
	r.rsi = (unsigned long long)a2;
	r.rdx = (unsigned long long)a3;
	r.r10 = (unsigned long long)a4;
	r.r8 = (unsigned long long)a5;
	r.r9 = (unsigned long long)a6;
	r.rip = a->syscall_insn;
	if (hd_pt_setregs(tid, &r))
		return -ESRCH;
	long ret = -EIO;
	for (int tries = 0; tries < 16; tries++) {
		if (ptrace(PTRACE_SINGLESTEP, tid, NULL, NULL) < 0)
			return -errno;
		if (waitpid(tid, &st, __WALL) != tid || !WIFSTOPPED(st))
			return -ESRCH;
		bool trap = WSTOPSIG(st) == SIGTRAP && ((unsigned)st >> 16) == 0;
		/* A signal of its own may be reported before or after the
		 * step: keep it for when the thread runs on.  Step again
		 * only if the syscall has not run yet. */
		if (!trap && ((unsigned)st >> 16) == 0 && pending_sig)
			*pending_sig = WSTOPSIG(st);
		if (hd_pt_getregs(tid, &r))
			return -ESRCH;
		if (r.rip != a->syscall_insn) {
			if (r.rip == a->syscall_insn + 2)
				ret = (long)r.rax;
			break;
		}
	}
	if (hd_pt_setregs(tid, &saved))
		return -ESRCH;
	return ret;
}

/* ---- placement ---- */

/* A free range of `len` bytes within rel32 reach of every target. */
static uint64_t find_gap(const struct hd_maps *m, const uint64_t *targets,
			 int n, uint64_t len)
{
	const uint64_t reach = 1ULL << 30; /* well inside +-2 GiB */
	uint64_t best = 0, best_dist = UINT64_MAX;
	for (size_t i = 0; i + 1 < m->n; i++) {
		uint64_t lo = (m->v[i].end + PAGE - 1) & ~(PAGE - 1);
		uint64_t hi = m->v[i + 1].start;
		if (hi <= lo || hi - lo < len + 2 * PAGE)
			continue;
		/* Closest to the targets: just above lo or just below hi. */
		uint64_t cand[2] = {lo + PAGE, hi - PAGE - len};
		for (int c = 0; c < 2; c++) {
			uint64_t worst = 0;
			for (int k = 0; k < n; k++) {
				uint64_t d = cand[c] > targets[k]
						     ? cand[c] - targets[k]
						     : targets[k] - cand[c];
				if (d > worst)
					worst = d;
			}
			if (worst < reach && worst < best_dist) {
				best = cand[c];
				best_dist = worst;
			}
		}
	}
	return best;
}

/* ---- install ---- */

static void init_shared(struct hd_agent *a, uint64_t rate,
			uint32_t stack_copy, struct hd_rng *rng)
{
	struct hd_agent_ctl *c = a->ctl;
	c->magic = HD_AGENT_MAGIC;
	c->version = HD_AGENT_VERSION;
	c->stack_copy = stack_copy;
	c->rate = rate;
	c->pid = (uint64_t)a->pid;
	for (int i = 0; i <= 64; i++)
		c->log2_table[i] = log2(1.0 + i / 64.0);
	for (int i = 0; i < HD_NCOUNTERS; i++) {
		struct hd_agent_counter *k =
			(void *)((char *)c + HD_SH_COUNTERS +
				 i * HD_COUNTER_STRIDE);
		k->rng = hd_sample_next(rng, UINT32_MAX) | 1;
		k->left = rate <= 1 ? -1 : (int64_t)hd_sample_next(rng, rate);
	}
	a->seen_rate = rate;
}

/* TSC ticks per nanosecond, for the agent's own time in `stats`. */
static double tsc_rate(void)
{
	uint32_t lo, hi;
	double t0 = hd_now();
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	uint64_t c0 = (uint64_t)hi << 32 | lo;
	usleep(2000);
	double t1 = hd_now();
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	uint64_t c1 = (uint64_t)hi << 32 | lo;
	return (double)(c1 - c0) / ((t1 - t0) * 1e9);
}

static int map_shared_locally(struct hd_agent *a, pid_t tid, int *psig,
			      int remote_fd)
{
	int pidfd = (int)syscall(SYS_pidfd_open, a->pid, 0);
	if (pidfd < 0)
		return -HD_EIO;
	int fd = (int)syscall(SYS_pidfd_getfd, pidfd, remote_fd, 0);
	close(pidfd);
	remote_syscall(a, tid, psig, SYS_close, remote_fd, 0, 0, 0, 0, 0);
	if (fd < 0)
		return -HD_EIO;
	void *p = mmap(NULL, HD_SHARED_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -HD_ENOMEM;
	a->ctl = p;
	return 0;
}

int hd_agent_install(pid_t pid, pid_t tid, int *pending_sig,
		     const struct hd_agent_target *tg, int n, uint64_t rate,
		     struct hd_rng *rng, struct hd_agent **out, char *why,
		     size_t whylen)
{
	struct hd_maps m;
	uint64_t targets[HD_K_COUNT];
	int err = hd_maps_read(pid, &m);
	if (err)
		return err;
	struct hd_agent *a = calloc(1, sizeof(*a));
	if (!a) {
		hd_maps_free(&m);
		return -HD_ENOMEM;
	}
	a->pid = pid;
	a->code_len = (hd_agent_layout.size + HD_K_COUNT * TRAMP_SLOT + 64 +
		       PAGE - 1) & ~(PAGE - 1);
	for (int i = 0; i < n; i++)
		targets[i] = tg[i].addr;
	a->syscall_insn = find_syscall_insn(pid, &m);
	uint64_t hint = find_gap(&m, targets, n, a->code_len);
	hd_maps_free(&m);
	if (!a->syscall_insn || !hint) {
		snprintf(why, whylen, "%s", !hint ? "no free address range near "
						    "the allocator"
						  : "no syscall instruction");
		free(a);
		return -HD_EINVAL;
	}

	/* 1. code mapping */
	long r = remote_syscall(a, tid, pending_sig, SYS_mmap, (long)hint,
				(long)a->code_len, PROT_READ | PROT_EXEC,
				MAP_PRIVATE | MAP_ANONYMOUS |
					MAP_FIXED_NOREPLACE,
				-1, 0);
	if (r < 0 || (uint64_t)r != hint) {
		snprintf(why, whylen, "mmap in the process failed (%ld)", r);
		free(a);
		return -HD_EIO;
	}
	a->code = hint;
	/* 2. shared mapping, through a memfd */
	static const char name[] = "heapdbg-agent";
	uint64_t name_at = a->code + a->code_len - sizeof(name);
	long fd = -1;
	err = hd_mem_write(pid, name_at, name, sizeof(name));
	if (!err)
		fd = remote_syscall(a, tid, pending_sig, SYS_memfd_create,
				    (long)name_at, MFD_CLOEXEC, 0, 0, 0, 0);
	if (fd < 0 ||
	    remote_syscall(a, tid, pending_sig, SYS_ftruncate, fd,
			   HD_SHARED_SIZE, 0, 0, 0, 0) != 0) {
		snprintf(why, whylen, "memfd in the process failed");
		goto err_code;
	}
	/* Populated now, while the process is stopped anyway: a page fault
	 * at the first touch of each page of the ring and the set cost the
	 * first samples more than the rest of their work. */
	r = remote_syscall(a, tid, pending_sig, SYS_mmap, 0, HD_SHARED_SIZE,
			   PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			   fd, 0);
	if (r < 0 && r > -4096) {
		remote_syscall(a, tid, pending_sig, SYS_close, fd, 0, 0, 0, 0,
			       0);
		snprintf(why, whylen, "mmap of the ring failed (%ld)", r);
		goto err_code;
	}
	a->shared_remote = (uint64_t)r;
	if (map_shared_locally(a, tid, pending_sig, (int)fd)) {
		snprintf(why, whylen, "pidfd_getfd failed: %s",
			 strerror(errno));
		goto err_shared;
	}
	init_shared(a, rate, HD_AGENT_STACK_COPY, rng);
	a->cycles_per_ns = tsc_rate();

	/* 3. blob, slots, trampolines */
	uint8_t *img = calloc(1, a->code_len);
	if (!img)
		goto err_local;
	memcpy(img, hd_agent_blob, hd_agent_layout.size);
	struct hd_agent_slots *slots = (void *)(img + hd_agent_layout.slots);
	slots->shared = a->shared_remote;
	slots->code_start = a->code;
	slots->code_span = a->code_len;
	uint64_t tramp = (hd_agent_layout.size + 63) & ~63ULL;
	for (int i = 0; i < n; i++) {
		struct hd_agent_patch *p = &a->patch[a->npatch];
		uint64_t dst = a->code + tramp + (uint64_t)i * TRAMP_SLOT;
		p->kind = tg[i].kind;
		p->addr = tg[i].addr;
		p->tramp = dst;
		if (hd_reloc_build(tg[i].code, sizeof(tg[i].code), tg[i].addr,
				   dst, HD_RELOC_JMP5_LEN, tg[i].body,
				   tg[i].body_len, &p->reloc) ||
		    hd_reloc_jmp5(p->jmp, tg[i].addr,
				  a->code + hd_agent_layout.entry[p->kind])) {
			HD_DEBUG("agent", "%s not relocated: %s",
				 hd_entry_names[p->kind], p->reloc.why);
			p->refused = true;
			snprintf(p->why, sizeof(p->why), "%s",
				 p->reloc.why[0] ? p->reloc.why
						 : "out of rel32 reach");
		} else {
			memcpy(img + tramp + (uint64_t)i * TRAMP_SLOT,
			       p->reloc.code, p->reloc.len);
			slots->orig[p->kind] = dst;
		}
		memcpy(p->orig, tg[i].code, sizeof(p->orig));
		a->npatch++;
	}
	memcpy(img + a->code_len - sizeof(name), name, sizeof(name));
	err = hd_mem_write(pid, a->code, img, a->code_len);
	free(img);
	if (err) {
		snprintf(why, whylen, "cannot write the agent");
		goto err_local;
	}
	*out = a;
	return 0;

err_local:
	munmap(a->ctl, HD_SHARED_SIZE);
err_shared:
	remote_syscall(a, tid, pending_sig, SYS_munmap,
		       (long)a->shared_remote, HD_SHARED_SIZE, 0, 0, 0, 0);
err_code:
	if (fd >= 0 && !a->ctl)
		remote_syscall(a, tid, pending_sig, SYS_close, fd, 0, 0, 0, 0,
			       0);
	remote_syscall(a, tid, pending_sig, SYS_munmap, (long)a->code,
		       (long)a->code_len, 0, 0, 0, 0);
	free(a);
	return -HD_EIO;
}

int hd_agent_patches(struct hd_agent *a, struct hd_agent_patch **out)
{
	*out = a->patch;
	return a->npatch;
}

int hd_agent_patch_write(struct hd_agent *a, pid_t pid, int i, bool on)
{
	struct hd_agent_patch *p = &a->patch[i];
	if (p->refused)
		return 0;
	int err = hd_mem_write(pid, p->addr, on ? p->jmp : p->orig,
			       HD_RELOC_JMP5_LEN);
	if (!err)
		p->active = on;
	return err;
}

/* Kind k's stub runs from its entry to the next stub's (or to
 * hd_agent_common, which follows the last). */
static uint32_t stub_start(int k)
{
	return hd_agent_layout.entry[k];
}

static uint32_t stub_end(int k)
{
	uint32_t end = hd_agent_layout.common, s = stub_start(k);
	for (int j = 0; j < HD_K_COUNT; j++)
		if (hd_agent_layout.entry[j] > s && hd_agent_layout.entry[j] < end)
			end = hd_agent_layout.entry[j];
	return end;
}

uint64_t hd_agent_fixup_rip(const struct hd_agent *a, uint64_t rip)
{
	if (rip < a->code || rip >= a->code + a->code_len)
		return 0;
	for (int i = 0; i < a->npatch; i++) {
		const struct hd_agent_patch *p = &a->patch[i];
		if (p->refused)
			continue;
		/* In a stub, before hd_agent_common: restart the call at
		 * the original entry (the stubs change only scratch
		 * registers and a countdown, and nothing on the stack). */
		if (rip >= a->code + stub_start(p->kind) &&
		    rip < a->code + stub_end(p->kind))
			return p->addr;
		if (rip >= p->tramp && rip < p->tramp + TRAMP_SLOT) {
			uint64_t o = hd_reloc_to_original(&p->reloc, p->addr,
							  p->tramp, rip);
			if (o)
				return o;
		}
	}
	return 0;
}

uint64_t hd_agent_into_tramp(const struct hd_agent *a, uint64_t rip)
{
	for (int i = 0; i < a->npatch; i++) {
		const struct hd_agent_patch *p = &a->patch[i];
		if (p->refused || rip <= p->addr ||
		    rip >= p->addr + HD_RELOC_JMP5_LEN)
			continue;
		for (int k = 0; k < p->reloc.ninsn; k++)
			if (p->addr + p->reloc.src_off[k] == rip)
				return p->tramp + p->reloc.dst_off[k];
		return 1; /* not at an instruction start: cannot happen */
	}
	return 0;
}

bool hd_agent_in_code(const struct hd_agent *a, uint64_t rip)
{
	return rip >= a->code && rip < a->code + a->code_len;
}

bool hd_agent_on_stack(const struct hd_agent *a, pid_t tid, uint64_t rsp)
{
	static uint64_t words[8192]; /* tracer thread only */
	ssize_t n = hd_mem_read(tid, rsp & ~7ULL, words, sizeof(words));
	for (ssize_t i = 0; i < n / 8; i++)
		if (words[i] >= a->code && words[i] < a->code + a->code_len)
			return true;
	return false;
}

bool hd_agent_quiet(const struct hd_agent *a)
{
	return __atomic_load_n(&a->ctl->inside, __ATOMIC_ACQUIRE) == 0;
}

void hd_agent_remove(struct hd_agent *a, pid_t tid, int *pending_sig)
{
	remote_syscall(a, tid, pending_sig, SYS_munmap,
		       (long)a->shared_remote, HD_SHARED_SIZE, 0, 0, 0, 0);
	remote_syscall(a, tid, pending_sig, SYS_munmap, (long)a->code,
		       (long)a->code_len, 0, 0, 0, 0);
}

void hd_agent_free(struct hd_agent *a)
{
	if (!a)
		return;
	if (a->ctl)
		munmap(a->ctl, HD_SHARED_SIZE);
	free(a);
}

void hd_agent_set_rate(struct hd_agent *a, uint64_t rate, struct hd_rng *rng)
{
	if (rate == a->seen_rate)
		return;
	struct hd_agent_ctl *c = a->ctl;
	__atomic_store_n(&c->rate, rate, __ATOMIC_RELEASE);
	/* Redraw every countdown so the new rate applies from the next
	 * allocation, not after the old thresholds run out. */
	for (int i = 0; i < HD_NCOUNTERS; i++) {
		struct hd_agent_counter *k =
			(void *)((char *)c + HD_SH_COUNTERS +
				 i * HD_COUNTER_STRIDE);
		k->left = rate <= 1 ? -1 : (int64_t)hd_sample_next(rng, rate);
	}
	a->seen_rate = rate;
}

uint32_t hd_agent_modules_gen(const struct hd_agent *a)
{
	return __atomic_load_n(&a->ctl->modules_gen, __ATOMIC_ACQUIRE);
}

void hd_agent_modules_ack(struct hd_agent *a, uint32_t gen)
{
	__atomic_store_n(&a->ctl->modules_ack, gen, __ATOMIC_RELEASE);
	syscall(SYS_futex, &a->ctl->modules_ack, FUTEX_WAKE, INT_MAX, NULL,
		NULL, 0);
}

const uint32_t *hd_agent_wake_word(const struct hd_agent *a)
{
	return &a->ctl->drain_wake;
}

void hd_agent_kick(struct hd_agent *a)
{
	__atomic_add_fetch(&a->ctl->drain_wake, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &a->ctl->drain_wake, FUTEX_WAKE, INT_MAX, NULL,
		NULL, 0);
}

void hd_agent_nap(const uint32_t *wake_word, uint32_t seen, long usec)
{
	struct timespec ts = {usec / 1000000, (usec % 1000000) * 1000};
	/* Woken early by the process's _dl_debug_state hook or by a
	 * snapshot (a shared futex: the word is in the memfd both
	 * processes map).  If the mapping went away meanwhile the kernel
	 * says EFAULT at once. */
	syscall(SYS_futex, wake_word, FUTEX_WAIT, seen, &ts, NULL, 0);
}

uint64_t hd_agent_head(const struct hd_agent *a)
{
	return __atomic_load_n(&a->ctl->head, __ATOMIC_ACQUIRE);
}

uint64_t hd_agent_tail(const struct hd_agent *a)
{
	return __atomic_load_n(&a->ctl->tail, __ATOMIC_ACQUIRE);
}

void hd_agent_stats(const struct hd_agent *a, struct hd_agent_stats *s)
{
	const struct hd_agent_ctl *c = a->ctl;
	s->dropped = __atomic_load_n(&c->dropped, __ATOMIC_RELAXED);
	s->slow_calls = __atomic_load_n(&c->slow_calls, __ATOMIC_RELAXED);
	uint64_t cyc = __atomic_load_n(&c->slow_cycles, __ATOMIC_RELAXED);
	s->agent_ns = a->cycles_per_ns > 0 ? (uint64_t)(cyc / a->cycles_per_ns)
					   : 0;
	s->set_full = __atomic_load_n(&c->set_full, __ATOMIC_RELAXED);
}

/* ---- draining ---- */

/* heapdbg is the table's only writer (the drain thread); the agent reads
 * it as a seqlock. */
static void stack_entry_write(struct hd_agent_stack *e, uint32_t tid,
			      uint64_t lo, uint64_t top)
{
	uint32_t seq = e->seq;
	__atomic_store_n(&e->seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&e->tid, tid, __ATOMIC_RELAXED);
	__atomic_store_n(&e->lo, lo, __ATOMIC_RELAXED);
	__atomic_store_n(&e->top, top, __ATOMIC_RELAXED);
	__atomic_store_n(&e->seq, seq + 2, __ATOMIC_RELEASE);
}

static bool thread_alive(pid_t pid, uint32_t tid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%u", (int)pid, tid);
	return access(path, F_OK) == 0;
}

/* Learn from one unwound record how much of its thread's stack samples
 * need: an unwind that reached the outermost frame read nothing above
 * ext->read_end, and the outermost frames of a thread stay where they
 * are for its whole life.  From then on the agent copies [sp, read_end)
 * instead of the most (8 KiB), for sp on the same stack mapping.  An
 * unwind that needed more than was copied makes the agent copy the most
 * again until it is learned anew. */
static void learn_stack(struct hd_agent *a, const struct hd_rec_alloc *r,
			const struct hd_unwind_extent *ext)
{
	struct hd_agent_stack *e = hd_agent_stack_of(a->ctl, r->tid);
	bool mine = e->tid == r->tid && e->top != 0;
	/* what the agent copied for this record came from this entry */
	bool used = mine && r->sp >= e->lo && r->sp < e->top;
	if (ext->beyond) {
		/* Not enough although the agent copied what we said: what
		 * we learned is wrong.  (A copy the agent cut short because
		 * the ring was filling up says nothing.) */
		if (used && r->stack_want >= e->top - r->sp) {
			HD_DEBUG("agent", "thread %u: %u bytes of stack were not "
				 "enough", r->tid, r->stack_want);
			stack_entry_write(e, r->tid, 0, 0);
		}
		return;
	}
	if (!ext->complete || ext->read_end <= r->sp)
		return;
	if (used && ext->read_end <= e->top)
		return; /* known, and enough */
	/* Another thread's entry: keep it while that thread lives. */
	if (!mine && e->top != 0 && thread_alive(a->pid, e->tid))
		return;
	struct hd_maps m;
	if (hd_maps_read(a->pid, &m))
		return;
	const struct hd_map *mp = hd_maps_find(&m, r->sp);
	uint64_t lo = mp ? mp->start : 0;
	hd_maps_free(&m);
	if (!lo)
		return;
	uint64_t top = ext->read_end;
	if (mine && e->lo == lo && e->top > top)
		top = e->top;
	HD_DEBUG("agent", "thread %u: stack copied up to %#" PRIx64
		 " (%" PRIu64 " bytes above sp) for sp in [%#" PRIx64 ", %#"
		 PRIx64 ")", r->tid, top, top - r->sp, lo, top);
	stack_entry_write(e, r->tid, lo, top);
}

static void take_alloc(struct hd_agent *a, const struct hd_rec_alloc *r,
		       struct hd_unwinder *u, struct hd_prof *prof,
		       uint64_t *unwind_failures)
{
	struct user_regs_struct regs = {0};
	uint64_t pcs[HD_MAX_DEPTH];
	regs.rip = r->ip;
	regs.rsp = r->sp;
	regs.rbx = r->rbx;
	regs.rbp = r->rbp;
	regs.r12 = r->r12;
	regs.r13 = r->r13;
	regs.r14 = r->r14;
	regs.r15 = r->r15;
	size_t len = r->stack_len;
	if (len > r->h.len - sizeof(*r))
		len = 0;
	struct hd_unwind_extent ext;
	int depth = hd_unwind_from_copy(u, &regs, (const uint8_t *)(r + 1),
					len, pcs, HD_MAX_DEPTH, &ext);
	if (depth <= 1)
		(*unwind_failures)++;
	learn_stack(a, r, &ext);
	hd_prof_record_alloc(prof, pcs, (unsigned)depth, r->ptr, r->size,
			     r->rate);
}

int hd_agent_drain(struct hd_agent *a, struct hd_unwinder *u,
		   struct hd_prof *prof, struct hd_agent_drained *d)
{
	struct hd_agent_ctl *c = a->ctl;
	char *ring = (char *)c + HD_SH_RING;
	uint64_t tail = __atomic_load_n(&c->tail, __ATOMIC_RELAXED);
	uint64_t head = __atomic_load_n(&c->head, __ATOMIC_ACQUIRE);
	int n = 0;
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	__atomic_store_n(&c->heartbeat, (uint64_t)hi << 32 | lo,
			 __ATOMIC_RELAXED);
	while (tail < head) {
		struct hd_rec *h = (void *)(ring + (tail & (HD_RING_SIZE - 1)));
		if (!__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE))
			break; /* reserved, not yet written */
		uint32_t len = h->len;
		if (len < sizeof(*h) || len > HD_RING_SIZE || (len & 7)) {
			/* Corrupt: skip everything reserved so far rather
			 * than stall the ring forever. */
			tail = head;
			break;
		}
		switch (h->type) {
		case HD_REC_ALLOC:
			take_alloc(a, (const void *)h, u, prof,
				   &d->unwind_failures);
			d->samples++;
			break;
		case HD_REC_FREE:
			hd_prof_record_free(prof,
					    ((const struct hd_rec_free *)h)->ptr);
			d->frees++;
			break;
		default:
			break;
		}
		__atomic_store_n(&h->ready, 0, __ATOMIC_RELAXED);
		tail += len;
		__atomic_store_n(&c->tail, tail, __ATOMIC_RELEASE);
		n++;
	}
	return n;
}
