/* Remote unwinding with libunwind-ptrace.
 *
 * libunwind reads the tracee only through its accessor table
 * (src/ptrace/_UPT_accessors.c).  Its _UPT_access_mem reads one word per
 * PTRACE_PEEKDATA, a system call per word; instead the top of the stack is
 * read once with process_vm_readv and served from that copy, and the
 * registers come from the one PTRACE_GETREGS the tracer already did.  The
 * rest (finding .eh_frame in the module files) is libunwind's own.
 *
 * libunwind passes the `arg` given to unw_init_remote() to the accessors,
 * except that _UPT_find_proc_info hands its own UPT_info to access_mem
 * when it searches the unwind table; so access_mem and access_reg find
 * the stack copy through `cur`, which is thread-local: each unwinding
 * thread has its own hd_unwinder.
 *
 * _UPT_find_proc_info keeps the ELF image of one module per UPT_info and
 * re-reads /proc/PID/maps and maps the file again whenever the next pc
 * is in another module -- every frame of a stack alternating between an
 * executable and libc.  So there is one UPT_info per module, each of
 * which then keeps its own module's image. */
#include <errno.h>
#include <libunwind-ptrace.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

#define STACK_COPY (64 * 1024)

struct unw_module {
	uint64_t start, end;
	void *upt;
};

struct hd_unwinder {
	pid_t pid;
	unw_addr_space_t as;
	void *upt;           /* for pcs in no known module */
	struct unw_module *mods;
	size_t nmods;
	bool reloaded; /* the modules were read again during this walk */
	unw_accessors_t acc;
	/* the thread being unwound, and the copy of its stack */
	pid_t tid;
	const struct user_regs_struct *regs;
	uint64_t stack_base;
	size_t stack_len;
	const uint8_t *stack;
	/* what the walk read of the stack: the end of the highest word
	 * read inside the copy, and whether it needed more above it */
	uint64_t read_end;
	bool beyond;
	uint8_t own[STACK_COPY];
};

/* Each thread that unwinds (the tracer, the ring's drain) has its own
 * hd_unwinder. */
static __thread struct hd_unwinder *cur;

/* libunwind takes a lock around every look into its cache of unwind
 * rules (lock_acquire in its libunwind_i.h), and first blocks every
 * signal with sigprocmask(), so that a signal handler unwinding the
 * *local* process cannot deadlock on it: two system calls per frame, ten
 * per sample, half of what draining the agent's ring cost.  heapdbg
 * unwinds remote stacks, on threads that block every signal for their
 * whole life, where those calls change nothing.  So heapdbg defines
 * sigprocmask() itself -- a definition in the executable comes first for
 * every library, libunwind's PLT included -- and on a thread that called
 * hd_unwind_thread_nosig() answers from the mask it knows; anywhere else
 * it is glibc's (whose sigprocmask is pthread_sigmask with errno). */
static __thread bool nosig;

void hd_unwind_thread_nosig(void)
{
	sigset_t all;
	sigfillset(&all);
	if (pthread_sigmask(SIG_BLOCK, &all, NULL) == 0)
		nosig = true;
}

int sigprocmask(int how, const sigset_t *set, sigset_t *old)
{
	if (nosig) {
		if (old)
			sigfillset(old);
		return 0;
	}
	int err = pthread_sigmask(how, set, old);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

static int access_mem(unw_addr_space_t as, unw_word_t addr, unw_word_t *val,
		      int write, void *arg)
{
	(void)as;
	(void)arg;
	struct hd_unwinder *u = cur;
	if (write)
		return -UNW_EINVAL;
	uint64_t end = u->stack_base + u->stack_len;
	if (addr >= u->stack_base && addr + sizeof(*val) <= end) {
		memcpy(val, u->stack + (addr - u->stack_base), sizeof(*val));
		if (addr + sizeof(*val) > u->read_end)
			u->read_end = addr + sizeof(*val);
		return 0;
	}
	/* Above the copy but still on this stack, as far as one can tell:
	 * the copy was too short. */
	if (addr + sizeof(*val) > end && addr < end + (1u << 20)) {
		if (!u->beyond)
			HD_DEBUG("unwind", "read at %#lx, %lu bytes above a "
				 "copy of %zu", (unsigned long)addr,
				 (unsigned long)(addr - end), u->stack_len);
		u->beyond = true;
	}
	return hd_mem_read_full(u->tid, addr, val, sizeof(*val)) ? -UNW_EINVAL
								  : 0;
}

static int access_reg(unw_addr_space_t as, unw_regnum_t reg, unw_word_t *val,
		      int write, void *arg)
{
	(void)as;
	(void)arg;
	const struct user_regs_struct *r = cur->regs;
	if (write)
		return -UNW_EREADONLYREG;
	switch (reg) {
	case UNW_X86_64_RAX: *val = r->rax; break;
	case UNW_X86_64_RDX: *val = r->rdx; break;
	case UNW_X86_64_RCX: *val = r->rcx; break;
	case UNW_X86_64_RBX: *val = r->rbx; break;
	case UNW_X86_64_RSI: *val = r->rsi; break;
	case UNW_X86_64_RDI: *val = r->rdi; break;
	case UNW_X86_64_RBP: *val = r->rbp; break;
	case UNW_X86_64_RSP: *val = r->rsp; break;
	case UNW_X86_64_R8: *val = r->r8; break;
	case UNW_X86_64_R9: *val = r->r9; break;
	case UNW_X86_64_R10: *val = r->r10; break;
	case UNW_X86_64_R11: *val = r->r11; break;
	case UNW_X86_64_R12: *val = r->r12; break;
	case UNW_X86_64_R13: *val = r->r13; break;
	case UNW_X86_64_R14: *val = r->r14; break;
	case UNW_X86_64_R15: *val = r->r15; break;
	case UNW_X86_64_RIP: *val = r->rip; break;
	default: return -UNW_EBADREG;
	}
	return 0;
}

static void drop_modules(struct hd_unwinder *u)
{
	for (size_t i = 0; i < u->nmods; i++)
		_UPT_destroy(u->mods[i].upt);
	free(u->mods);
	u->mods = NULL;
	u->nmods = 0;
}

/* The executable file mappings of the process, each with its UPT_info. */
static void load_modules(struct hd_unwinder *u)
{
	struct hd_maps m;
	drop_modules(u);
	if (hd_maps_read(u->pid, &m))
		return;
	u->mods = calloc(m.n, sizeof(*u->mods));
	for (size_t i = 0; u->mods && i < m.n; i++) {
		if (m.v[i].perms[2] != 'x' || !m.v[i].path ||
		    m.v[i].path[0] != '/')
			continue;
		void *upt = _UPT_create(u->pid);
		if (!upt)
			break;
		u->mods[u->nmods++] = (struct unw_module){m.v[i].start,
							   m.v[i].end, upt};
	}
	hd_maps_free(&m);
}

static void *upt_for(struct hd_unwinder *u, uint64_t ip)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < u->nmods; i++)
			if (ip >= u->mods[i].start && ip < u->mods[i].end)
				return u->mods[i].upt;
		if (pass == 0 && !u->reloaded) {
			load_modules(u); /* a module loaded since */
			u->reloaded = true;
		}
	}
	return u->upt;
}

static int find_proc_info(unw_addr_space_t as, unw_word_t ip,
			  unw_proc_info_t *pi, int need_unwind_info, void *arg)
{
	(void)arg;
	return _UPT_find_proc_info(as, ip, pi, need_unwind_info,
				   upt_for(cur, ip));
}

struct hd_unwinder *hd_unwinder_new(pid_t pid)
{
	struct hd_unwinder *u = calloc(1, sizeof(*u));
	if (!u)
		return NULL;
	u->pid = pid;
	u->acc = _UPT_accessors;
	u->acc.access_mem = access_mem;
	u->acc.access_reg = access_reg;
	u->acc.find_proc_info = find_proc_info;
	u->as = unw_create_addr_space(&u->acc, 0);
	u->upt = _UPT_create(pid);
	if (!u->as || !u->upt) {
		hd_unwinder_free(u);
		return NULL;
	}
	unw_set_caching_policy(u->as, UNW_CACHE_GLOBAL);
	return u;
}

void hd_unwinder_free(struct hd_unwinder *u)
{
	if (!u)
		return;
	drop_modules(u);
	if (u->upt)
		_UPT_destroy(u->upt);
	if (u->as)
		unw_destroy_addr_space(u->as);
	free(u);
}

/* Walk from the state in u->regs; frame 0's pc is stored only when
 * `first` is set.  *complete: the walk reached the outermost frame (one
 * whose return address is undefined: _start, a thread's clone). */
static int walk(struct hd_unwinder *u, bool first, uint64_t *pcs, int max,
		bool *complete)
{
	unw_cursor_t c;
	int n = 0, step = -1;
	cur = u;
	u->reloaded = false;
	u->read_end = 0;
	u->beyond = false;
	if (unw_init_remote(&c, u->as, u->upt) < 0)
		goto out;
	if (first && max > 0)
		pcs[n++] = u->regs->rip;
	while (n < max && (step = unw_step(&c)) > 0) {
		unw_word_t ip;
		if (unw_get_reg(&c, UNW_REG_IP, &ip) < 0 || ip == 0) {
			step = -1;
			break;
		}
		pcs[n++] = ip;
	}
out:
	*complete = step == 0;
	cur = NULL;
	return n;
}

int hd_unwind_from_entry(struct hd_unwinder *u, pid_t tid,
			 const struct user_regs_struct *r, uint64_t *pcs,
			 int max)
{
	u->tid = tid;
	u->regs = r;
	u->stack_base = r->rsp;
	ssize_t got = hd_mem_read(tid, r->rsp, u->own, sizeof(u->own));
	u->stack_len = got > 0 ? (size_t)got : 0;
	u->stack = u->own;
	/* Frame 0 is the allocator's entry; its callers follow. */
	bool complete;
	return walk(u, false, pcs, max, &complete);
}

int hd_unwind_from_copy(struct hd_unwinder *u,
			const struct user_regs_struct *r, const uint8_t *stack,
			size_t len, uint64_t *pcs, int max,
			struct hd_unwind_extent *ext)
{
	u->tid = u->pid;
	u->regs = r;
	u->stack_base = r->rsp;
	u->stack_len = len;
	u->stack = stack;
	/* Frame 0 is the caller, at the return address. */
	int n = walk(u, true, pcs, max, &ext->complete);
	ext->read_end = u->read_end;
	ext->beyond = u->beyond;
	return n;
}

/* Modules changed (dlclose, exec): cached unwind info may be stale. */
void hd_unwinder_flush(struct hd_unwinder *u)
{
	if (!u)
		return;
	unw_flush_cache(u->as, 0, 0);
	drop_modules(u);
}
