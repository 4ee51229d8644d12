/* The tracer: one thread owns every ptrace call and runs one event loop.
 *
 * The loop classifies each wait status once into an event (classify())
 * and dispatches it; handlers never call waitpid themselves and make
 * every restart decision through resume() (strace's dispatch_event() and
 * ptrace_restart() are the model).
 *
 * Level 0 (DESIGN.md): an int3 at each allocator entry point.  On a hit
 * the displaced instruction is emulated (emulate.c) and the thread goes
 * on: one stop per call.  A sampled allocation also needs its result: the
 * return address on the stack is replaced by the address of a breakpoint
 * we own (the entry point's own int3, so nothing is mapped into the
 * tracee), and the real one is remembered per thread; when the thread
 * traps there with the stack pointer just above the hijacked slot, rax
 * holds the result and rip is set to the real return address, as the
 * kernel's uretprobes do.  Every hijacked slot is put back on detach.
 *
 * Calls made by the allocator to its own entry points (realloc(NULL, n)
 * jumping to malloc, reallocarray calling realloc) must count once: the
 * entry points that can do so always get their return hijacked, and a
 * hit on a thread that is inside one of them is passed through. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ptrace.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "../common/proc.h"
#include "agent_host.h"
#include "internal.h"

#define PT_OPTIONS                                                           \
	(PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |    \
	 PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT)

#define BP_RBRK (-1) /* the dynamic linker's _dl_debug_state */

struct bp {
	uint64_t addr;
	int kind; /* enum hd_entry_kind, or BP_RBRK */
	const char *name;
	char *module;
	uint8_t orig[16];
	struct hd_emu emu;
	bool armed;
	/* _dl_debug_state taken over by the agent (HD_K_RBRK): its int3 is
	 * gone, but a thread that hit it just before still reports it */
	bool hooked;
	struct bp *alias; /* memalign == aligned_alloc: one int3, two names */
};

struct pending_ret {
	uint64_t slot;     /* stack address of the hijacked return address */
	uint64_t real_ret; /* what was there */
	uint64_t trap;     /* what we wrote there */
	int kind;
	bool sampled;
	uint64_t size, memptr, rate;
	int depth;
	uint64_t pcs[HD_MAX_DEPTH];
};

enum task_kind {
	TASK_THREAD,  /* a thread of the traced process */
	TASK_SHARED,  /* another process sharing its memory (vfork, CLONE_VM):
			 breakpoints are passed through until it execs */
	TASK_NEW,     /* first stop not seen yet */
};

struct task {
	pid_t tid;
	enum task_kind kind;
	bool stopped;     /* in a ptrace-stop we have not resumed */
	bool exiting;     /* PTRACE_EVENT_EXIT seen */
	bool group_stop;  /* held in a group-stop (PTRACE_LISTEN) */
	int pending_sig;  /* to deliver when resumed or detached */
	struct user_regs_struct regs; /* valid while stopped after a trap */
	int nret, capret;
	struct pending_ret *rets;
};

enum cmd_type { CMD_NONE, CMD_ATTACH, CMD_RUN, CMD_DETACH, CMD_KILL, CMD_QUIT };

struct hd_tracer {
	pid_t pid;
	bool run_mode;
	struct hd_prof *prof;
	struct hd_tracer_hooks hooks;
	_Atomic uint64_t rate;

	/* tracer thread only */
	pthread_t thread;
	int sigfd, evfd;
	struct hd_unwinder *unw;
	struct hd_providers prov;
	struct bp *bps;
	int nbp;
	bool armed;      /* entry points armed in the current image */
	bool hold;       /* resume() leaves tasks stopped (detach, install) */
	int level;       /* 0: breakpoints only; 2: the agent where it can */
	bool exiting_reported;
	int64_t countdown;
	struct hd_rng rng;

	/* the agent (Level 2) and the thread that drains its ring; agent
	 * is replaced only under drain_lock */
	struct hd_agent *agent;
	pthread_t drainer;
	bool drainer_started;
	_Atomic bool drainer_stop;
	pthread_cond_t drain_cond;  /* wakes a drain that has no agent */
	pthread_mutex_t drain_lock;
	struct hd_unwinder *drain_unw;
	struct hd_rng drain_rng;
	uint32_t modules_gen;          /* drain thread only */
	_Atomic bool modules_changed;  /* drain -> tracer thread */
	struct hd_agent_drained drained;
	struct hd_agent_stats agent_past; /* of agents dropped (exit, exec) */
	bool agent_used;

	/* shared with the prompt thread, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct task *tasks;
	int ntask, captask;
	bool alive;      /* process not yet reaped and still attached */
	bool attached;
	bool exited;
	int exit_status;
	struct hd_tracer_stats stats;
	struct {
		enum cmd_type type;
		char *const *argv;
		int result;
		bool done;
		char *why;
		size_t whylen;
	} cmd;
};

static void why_set(struct hd_tracer *t, const char *fmt, ...)
	HD_PRINTF(2, 3);
static void why_set(struct hd_tracer *t, const char *fmt, ...)
{
	if (!t->cmd.why || !t->cmd.whylen)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t->cmd.why, t->cmd.whylen, fmt, ap);
	va_end(ap);
}

/* ---------------------------------------------------------------- */
/* tasks */

static struct task *task_find(struct hd_tracer *t, pid_t tid)
{
	for (int i = 0; i < t->ntask; i++)
		if (t->tasks[i].tid == tid)
			return &t->tasks[i];
	return NULL;
}

static struct task *task_add(struct hd_tracer *t, pid_t tid,
			     enum task_kind kind)
{
	pthread_mutex_lock(&t->lock);
	if (t->ntask == t->captask) {
		int nc = t->captask ? t->captask * 2 : 16;
		struct task *nt = realloc(t->tasks, nc * sizeof(*nt));
		if (!nt) {
			pthread_mutex_unlock(&t->lock);
			return NULL;
		}
		t->tasks = nt;
		t->captask = nc;
	}
	struct task *k = &t->tasks[t->ntask++];
	memset(k, 0, sizeof(*k));
	k->tid = tid;
	k->kind = kind;
	pthread_mutex_unlock(&t->lock);
	return k;
}

static void task_remove(struct hd_tracer *t, struct task *k)
{
	pthread_mutex_lock(&t->lock);
	free(k->rets);
	*k = t->tasks[--t->ntask];
	pthread_mutex_unlock(&t->lock);
}

static int count_threads(struct hd_tracer *t, bool exiting_too)
{
	int n = 0;
	for (int i = 0; i < t->ntask; i++)
		if (t->tasks[i].kind == TASK_THREAD &&
		    (exiting_too || !t->tasks[i].exiting))
			n++;
	return n;
}

/* The one place that restarts a stopped task.  While detaching or
 * installing the agent, tasks are held stopped instead, their signal
 * kept for later (PTRACE_DETACH or release_held()). */
static void resume(struct hd_tracer *t, struct task *k, int sig)
{
	/* A task sharing our memory (a vfork child) is never held: its
	 * parent cannot stop until it execs or exits, so holding it would
	 * make stop_all() wait forever.  stop_all() lets it finish. */
	if (t->hold && k->kind != TASK_SHARED) {
		k->stopped = true;
		if (sig)
			k->pending_sig = sig;
		return;
	}
	int err = hd_pt_cont(k->tid, sig);
	if (err && err != -ESRCH)
		HD_DEBUG("tracer", "PTRACE_CONT %d: %s", k->tid, strerror(-err));
	k->stopped = false;
}

static void stop_all(struct hd_tracer *t);

/* ---------------------------------------------------------------- */
/* breakpoints */

static struct bp *bp_find(struct hd_tracer *t, uint64_t addr)
{
	for (int i = 0; i < t->nbp; i++)
		if (t->bps[i].addr == addr &&
		    (t->bps[i].armed || t->bps[i].hooked))
			return t->bps[i].alias ? t->bps[i].alias : &t->bps[i];
	return NULL;
}

static int bp_insert_locked(struct hd_tracer *t, uint64_t addr, int kind,
			    const char *module)
{
	struct bp *nb = realloc(t->bps, (t->nbp + 1) * sizeof(*nb));
	if (!nb)
		return -HD_ENOMEM;
	t->bps = nb;
	struct bp *b = &t->bps[t->nbp];
	memset(b, 0, sizeof(*b));
	b->addr = addr;
	b->kind = kind;
	b->name = kind == BP_RBRK ? "_dl_debug_state" : hd_entry_names[kind];
	b->module = module ? strdup(module) : NULL;
	for (int i = 0; i < t->nbp; i++) {
		if (t->bps[i].addr == addr && t->bps[i].armed) {
			/* Two names, one address (glibc's memalign is also
			 * aligned_alloc): the first one's int3 serves both. */
			b->alias = &t->bps[i];
			b->emu = t->bps[i].emu;
			t->nbp++;
			return 0;
		}
	}
	if (hd_mem_read_full(t->pid, addr, b->orig, sizeof(b->orig))) {
		t->nbp++;
		snprintf(b->emu.text, sizeof(b->emu.text), "(unreadable)");
		return -HD_EIO;
	}
	hd_emu_decode(&b->emu, addr, b->orig, sizeof(b->orig));
	t->nbp++;
	if (b->emu.kind == HD_EMU_NONE) {
		HD_DEBUG("bp", "%s at %#" PRIx64 " not probed: %s", b->name,
			 addr, b->emu.text);
		return -HD_EINVAL;
	}
	uint8_t int3 = 0xcc;
	int err = hd_mem_write(t->pid, addr, &int3, 1);
	if (err)
		return err == -ESRCH ? -HD_EGONE : -HD_EIO;
	b->armed = true;
	HD_DEBUG("bp", "%s at %#" PRIx64 " (%s)", b->name, addr, b->emu.text);
	return 0;
}

/* The table is changed under the lock because `info probes` reads it
 * from the prompt thread. */
static int bp_insert(struct hd_tracer *t, uint64_t addr, int kind,
		     const char *module)
{
	pthread_mutex_lock(&t->lock);
	int err = bp_insert_locked(t, addr, kind, module);
	pthread_mutex_unlock(&t->lock);
	return err;
}

/* Put every original byte back in the memory of `pid` (the traced
 * process, or a forked child that has a copy of our int3s). */
static void bp_restore_all(struct hd_tracer *t, pid_t pid)
{
	if (t->agent) {
		struct hd_agent_patch *p;
		int n = hd_agent_patches(t->agent, &p);
		for (int i = 0; i < n; i++)
			if (p[i].active &&
			    hd_mem_write(pid, p[i].addr, p[i].orig,
					 HD_RELOC_JMP5_LEN) == 0 &&
			    pid == t->pid)
				p[i].active = false;
	}
	for (int i = 0; i < t->nbp; i++) {
		struct bp *b = &t->bps[i];
		if (!b->armed || b->alias)
			continue;
		int err = hd_mem_write(pid, b->addr, b->orig, 1);
		if (err && err != -ESRCH)
			HD_DEBUG("bp", "restore %s in %d: %s", b->name, pid,
				 strerror(-err));
	}
}

/* The image went away (exec): its breakpoints are gone with it. */
static void bp_forget_all(struct hd_tracer *t)
{
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->nbp; i++)
		free(t->bps[i].module);
	free(t->bps);
	t->bps = NULL;
	t->nbp = 0;
	t->armed = false;
	pthread_mutex_unlock(&t->lock);
	hd_providers_clear(&t->prov);
}

/* ---------------------------------------------------------------- */
/* the agent */

/* The drain naps between passes: each wake-up of a thread on a machine
 * the process keeps busy preempts one of its threads (churn4, 4 threads
 * on 2 CPUs: 200 more involuntary context switches a second at 5 ms),
 * and the ring holds about a second of samples at the default rate.  It
 * naps less when a pass found the ring filling (more than 1/16 of it),
 * and in exact mode, where the process waits for room when the ring is
 * full.  The _dl_debug_state hook and snapshots wake it at once. */
#define DRAIN_NAP_US 20000
#define DRAIN_NAP_BUSY_US 1000

static void *drainer_main(void *arg)
{
	struct hd_tracer *t = arg;
	hd_unwind_thread_nosig();
	/* A little behind the process's own threads when they want the
	 * CPU: no preempting them at every wake-up. */
	struct sched_param sp = {0};
	pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);
	while (!atomic_load(&t->drainer_stop)) {
		bool more = false, busy = false;
		uint64_t rate = atomic_load(&t->rate);
		pthread_mutex_lock(&t->drain_lock);
		struct hd_agent *a = t->agent;
		const uint32_t *word = a ? hd_agent_wake_word(a) : NULL;
		uint32_t seen = word ? __atomic_load_n(word, __ATOMIC_SEQ_CST)
				     : 0;
		if (a) {
			uint64_t tail0 = hd_agent_tail(a);
			hd_agent_set_rate(a, rate, &t->drain_rng);
			uint32_t gen = hd_agent_modules_gen(a);
			if (gen != t->modules_gen) {
				/* dlopen or dlclose, and the thread doing it
				 * waits in the hook: unwind what was recorded
				 * while every module it may need is mapped
				 * (dlclose calls the hook before unmapping),
				 * forget what the unwinder knows of modules,
				 * and have the tracer thread read the symbols
				 * and let the hook go on. */
				while (hd_agent_drain(a, t->drain_unw, t->prof,
						      &t->drained) > 0)
					;
				HD_DEBUG("agent", "link map changed (%u calls "
					 "of _dl_debug_state)", gen);
				t->modules_gen = gen;
				hd_unwinder_flush(t->drain_unw);
				atomic_store(&t->modules_changed, true);
				uint64_t one = 1;
				if (write(t->evfd, &one, sizeof(one)) < 0)
					HD_DEBUG("agent", "cannot wake the "
						 "tracer thread");
			}
			/* More came in while this pass ran. */
			more = hd_agent_drain(a, t->drain_unw, t->prof,
					      &t->drained) > 0 &&
			       hd_agent_head(a) != hd_agent_tail(a);
			busy = hd_agent_tail(a) - tail0 > HD_RING_SIZE / 16;
		}
		pthread_mutex_unlock(&t->drain_lock);
		if (more)
			continue;
		long nap = rate <= 1 || busy ? DRAIN_NAP_BUSY_US : DRAIN_NAP_US;
		if (word) {
			hd_agent_nap(word, seen, nap);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += nap * 1000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_mutex_lock(&t->drain_lock);
		if (!t->agent && !atomic_load(&t->drainer_stop))
			pthread_cond_timedwait(&t->drain_cond, &t->drain_lock,
					       &ts);
		pthread_mutex_unlock(&t->drain_lock);
	}
	return NULL;
}

/* The agent's _dl_debug_state hook was called (the drain saw it): read
 * the modules, then let the waiting threads go on.  Tracer thread. */
static void modules_changed_by_agent(struct hd_tracer *t)
{
	pthread_mutex_lock(&t->drain_lock);
	uint32_t gen = t->modules_gen;
	pthread_mutex_unlock(&t->drain_lock);
	if (!t->agent || !t->alive)
		return;
	if (t->unw)
		hd_unwinder_flush(t->unw);
	if (t->hooks.modules_changed)
		t->hooks.modules_changed(t->hooks.ctx, t->pid, 0);
	hd_agent_modules_ack(t->agent, gen);
}

/* Everything the agent recorded so far, now (exit, detach). */
static void drain_agent_now(struct hd_tracer *t)
{
	pthread_mutex_lock(&t->drain_lock);
	while (t->agent &&
	       hd_agent_drain(t->agent, t->drain_unw, t->prof, &t->drained))
		;
	pthread_mutex_unlock(&t->drain_lock);
}

/* The agent's figures, of this agent and every one before it (under
 * drain_lock). */
static void agent_stats_all(struct hd_tracer *t, struct hd_agent_stats *s)
{
	*s = (struct hd_agent_stats){0};
	if (t->agent)
		hd_agent_stats(t->agent, s);
	s->dropped += t->agent_past.dropped;
	s->slow_calls += t->agent_past.slow_calls;
	s->agent_ns += t->agent_past.agent_ns;
	s->set_full += t->agent_past.set_full;
}

static void drop_agent(struct hd_tracer *t)
{
	pthread_mutex_lock(&t->drain_lock);
	if (t->agent) {
		/* Its figures stay in `stats` after exit or exec. */
		struct hd_agent_stats all;
		agent_stats_all(t, &all);
		t->agent_past = all;
		t->agent_used = true;
		/* The drain may nap on a word of the mapping about to go:
		 * wake it, so it naps on drain_cond instead. */
		hd_agent_kick(t->agent);
	}
	hd_agent_free(t->agent);
	t->agent = NULL;
	hd_unwinder_free(t->drain_unw);
	t->drain_unw = NULL;
	pthread_mutex_unlock(&t->drain_lock);
}

/* Restart every held task but `except` (release what t->hold kept). */
static void release_held(struct hd_tracer *t, struct task *except)
{
	t->hold = false;
	for (int i = 0; i < t->ntask; i++) {
		struct task *k = &t->tasks[i];
		if (!k->stopped || k == except)
			continue;
		if (k->group_stop) {
			if (hd_pt_listen(k->tid) == 0)
				k->stopped = false;
			continue;
		}
		int sig = k->pending_sig;
		k->pending_sig = 0;
		resume(t, k, sig);
	}
}

/* Patch the entry points with jumps to the agent (every task stopped;
 * `via` runs the system calls).  by_agent[k] tells which ones it took;
 * the others get a breakpoint. */
static void install_agent(struct hd_tracer *t, struct task *via,
			  bool by_agent[HD_ENTRY__COUNT])
{
	struct hd_agent_target tg[HD_ENTRY__COUNT + 1];
	uint8_t *bodies[HD_ENTRY__COUNT] = {0};
	int n = 0;
	char why[256] = "";
	for (int k = 0; k < HD_ENTRY__COUNT; k++) {
		uint64_t addr = t->prov.addr[k];
		bool dup = false;
		for (int j = 0; j < n; j++)
			dup |= tg[j].addr == addr;
		if (!addr || dup)
			continue;
		struct hd_agent_target *g = &tg[n];
		memset(g, 0, sizeof(*g));
		g->kind = k;
		g->addr = addr;
		if (hd_mem_read_full(t->pid, addr, g->code, sizeof(g->code)))
			continue;
		size_t size = t->prov.size[k] < (1 << 16) ? t->prov.size[k] : 0;
		if (size && (bodies[n] = malloc(size)) &&
		    hd_mem_read_full(t->pid, addr, bodies[n], size) == 0) {
			g->body = bodies[n];
			g->body_len = size;
		}
		n++;
	}
	int nalloc = n;
	/* The dynamic linker's hook, whose int3 is in place: the agent
	 * takes it over, so that no breakpoint is left that would kill the
	 * process with SIGTRAP at its next dlopen if heapdbg died. */
	struct bp *rb = t->prov.r_brk ? bp_find(t, t->prov.r_brk) : NULL;
	if (rb && rb->kind == BP_RBRK && rb->armed && !rb->alias &&
	    t->prov.r_brk_size && t->prov.r_brk_size <= sizeof(rb->orig) &&
	    hd_mem_read_full(t->pid, rb->addr, tg[n].code,
			     sizeof(tg[n].code)) == 0) {
		struct hd_agent_target *g = &tg[n++];
		g->kind = HD_K_RBRK;
		g->addr = rb->addr;
		g->code[0] = rb->orig[0]; /* under our int3 */
		g->body = rb->orig;
		g->body_len = t->prov.r_brk_size;
	}
	struct hd_agent *a = NULL;
	int err = hd_agent_install(t->pid, via->tid, &via->pending_sig, tg, n,
				   atomic_load(&t->rate), &t->rng, &a, why,
				   sizeof(why));
	for (int i = 0; i < nalloc; i++)
		free(bodies[i]);
	if (err) {
		HD_DEBUG("agent", "not installed: %s (%s)", hd_strerror(err),
			 why);
		return;
	}
	/* A stopped thread may be between the instructions the jumps will
	 * overwrite (free's `test` done, its `je` next): it goes on from the
	 * same instruction in the trampoline. */
	for (int i = 0; i < t->ntask; i++) {
		struct user_regs_struct r;
		if (hd_pt_getregs(t->tasks[i].tid, &r))
			continue;
		uint64_t to = hd_agent_into_tramp(a, r.rip);
		if (to > 1) {
			r.rip = to;
			hd_pt_setregs(t->tasks[i].tid, &r);
		} else if (to == 1) {
			HD_DEBUG("agent", "thread %d inside an instruction at "
				 "%#llx: not installed", t->tasks[i].tid,
				 r.rip);
			hd_agent_remove(a, via->tid, &via->pending_sig);
			hd_agent_free(a);
			return;
		}
	}
	struct hd_agent_patch *p;
	int np = hd_agent_patches(a, &p);
	for (int i = 0; i < np; i++) {
		if (p[i].refused || hd_agent_patch_write(a, t->pid, i, true))
			continue;
		if (p[i].kind == HD_K_RBRK) {
			pthread_mutex_lock(&t->lock);
			rb->armed = false;
			rb->hooked = true;
			pthread_mutex_unlock(&t->lock);
			continue;
		}
		for (int k = 0; k < HD_ENTRY__COUNT; k++)
			if (t->prov.addr[k] == p[i].addr)
				by_agent[k] = true;
	}
	pthread_mutex_lock(&t->drain_lock);
	t->agent = a;
	t->modules_gen = 0;
	t->drain_unw = hd_unwinder_new(t->pid);
	pthread_mutex_unlock(&t->drain_lock);
	if (!t->drainer_started &&
	    pthread_create(&t->drainer, NULL, drainer_main, t) == 0)
		t->drainer_started = true;
}

/* Take every thread out of the agent and remove it (detach: the entry
 * points are restored already, so no thread enters it again).  Threads
 * in a stub or a trampoline are moved to the equivalent original
 * instruction; threads in its slow path (inside an original function
 * the agent called), or in a signal handler that interrupted agent code,
 * are let run until no stack holds an agent address.  If that does not
 * happen in time the agent stays mapped, harmless: nothing jumps to it. */
static void leave_agent(struct hd_tracer *t)
{
	bool quiet = false;
	/* A thread waiting in the _dl_debug_state hook for us goes on. */
	hd_agent_modules_ack(t->agent, hd_agent_modules_gen(t->agent) +
					       (1u << 30));
	for (int round = 0; round < 200 && t->ntask > 0; round++) {
		quiet = hd_agent_quiet(t->agent);
		for (int i = 0; i < t->ntask; i++) {
			struct task *k = &t->tasks[i];
			struct user_regs_struct r;
			if (hd_pt_getregs(k->tid, &r))
				continue;
			if (hd_agent_on_stack(t->agent, k->tid, r.rsp))
				quiet = false;
			if (!hd_agent_in_code(t->agent, r.rip))
				continue;
			uint64_t to = hd_agent_fixup_rip(t->agent, r.rip);
			if (to) {
				r.rip = to;
				hd_pt_setregs(k->tid, &r);
			} else {
				quiet = false;
			}
		}
		if (quiet)
			break;
		release_held(t, NULL);
		usleep(1000);
		t->hold = true;
		stop_all(t);
	}
	drain_agent_now(t);
	struct task *via = NULL;
	for (int i = 0; i < t->ntask && !via; i++)
		if (t->tasks[i].stopped && !t->tasks[i].group_stop)
			via = &t->tasks[i];
	if (quiet && via)
		hd_agent_remove(t->agent, via->tid, &via->pending_sig);
	drop_agent(t);
}

static int arm_entry_points(struct hd_tracer *t, struct task *via)
{
	bool by_agent[HD_ENTRY__COUNT] = {0};
	int err = hd_find_providers(t->pid, &t->prov, true);
	if (err)
		return err;
	if (t->level >= 2 && via)
		install_agent(t, via, by_agent);
	for (int k = 0; k < HD_ENTRY__COUNT; k++) {
		if (!t->prov.addr[k] || by_agent[k])
			continue;
		err = bp_insert(t, t->prov.addr[k], k, t->prov.module[k]);
		if (err == -HD_EGONE)
			return err;
		if (err && k == HD_MALLOC) {
			why_set(t, "malloc at %#" PRIx64 " starts with %s",
				t->prov.addr[k], t->bps[t->nbp - 1].emu.text);
			return -HD_ENOALLOC;
		}
	}
	t->armed = true;
	return 0;
}

/* Arm now if the link map is complete, else wait for the dynamic
 * linker to say so at _dl_debug_state. */
static int arm_image(struct hd_tracer *t, bool at_exec, struct task *via)
{
	int err = hd_find_rtld(t->pid, &t->prov);
	if (err)
		return err;
	if (t->prov.r_brk) {
		err = bp_insert(t, t->prov.r_brk, BP_RBRK, t->prov.interp);
		if (err)
			return err;
	}
	if (at_exec && t->prov.r_brk)
		return 0;
	return arm_entry_points(t, via);
}

/* ---------------------------------------------------------------- */
/* sampling */

static bool draw_sample(struct hd_tracer *t, uint64_t size, uint64_t *rate)
{
	*rate = atomic_load(&t->rate);
	if (*rate <= 1)
		return true;
	t->countdown -= (int64_t)size;
	if (t->countdown >= 0)
		return false;
	t->countdown = (int64_t)hd_sample_next(&t->rng, *rate);
	return true;
}

static uint64_t alloc_size(int kind, const struct user_regs_struct *r)
{
	unsigned __int128 p;
	switch (kind) {
	case HD_MALLOC:
	case HD_VALLOC:
	case HD_PVALLOC:
		return r->rdi;
	case HD_CALLOC:
		p = (unsigned __int128)r->rdi * r->rsi;
		return p >> 64 ? 0 : (uint64_t)p;
	case HD_REALLOC:
		return r->rsi;
	case HD_REALLOCARRAY:
		p = (unsigned __int128)r->rsi * r->rdx;
		return p >> 64 ? 0 : (uint64_t)p;
	case HD_POSIX_MEMALIGN:
		return r->rdx;
	case HD_ALIGNED_ALLOC:
	case HD_MEMALIGN:
		return r->rsi;
	default:
		return 0;
	}
}

/* Entry points that may call other entry points themselves: their return
 * is always hijacked so the inner calls are recognized as theirs. */
static bool may_nest(int kind)
{
	return kind != HD_MALLOC && kind != HD_FREE;
}

static int push_ret(struct task *k,
		    const struct user_regs_struct *r, struct bp *b,
		    struct pending_ret *pr)
{
	if (k->nret == k->capret) {
		int nc = k->capret ? k->capret * 2 : 4;
		struct pending_ret *nr = realloc(k->rets, nc * sizeof(*nr));
		if (!nr)
			return -HD_ENOMEM;
		k->rets = nr;
		k->capret = nc;
	}
	pr->slot = r->rsp;
	pr->trap = b->addr;
	if (hd_mem_read_full(k->tid, r->rsp, &pr->real_ret, 8) ||
	    hd_mem_write(k->tid, r->rsp, &pr->trap, 8))
		return -HD_EIO;
	k->rets[k->nret++] = *pr;
	return 0;
}

static void on_entry(struct hd_tracer *t, struct task *k, struct bp *b,
		     struct user_regs_struct *r)
{
	if (b->kind == BP_RBRK || k->kind != TASK_THREAD || k->nret > 0)
		return; /* pass through: not an outermost call of ours */
	pthread_mutex_lock(&t->lock);
	if (b->kind == HD_FREE)
		t->stats.frees++;
	else
		t->stats.allocs++;
	pthread_mutex_unlock(&t->lock);

	if (b->kind == HD_FREE) {
		if (r->rdi)
			hd_prof_record_free(t->prof, r->rdi);
		return;
	}
	if ((b->kind == HD_REALLOC || b->kind == HD_REALLOCARRAY) && r->rdi) {
		/* Forget the old block now, not at return: once realloc has
		 * released it another thread may be handed the same address.
		 * (If realloc fails the block stays allocated and is lost to
		 * the profile; realloc failures are rare enough.) */
		hd_prof_record_free(t->prof, r->rdi);
		if (alloc_size(b->kind, r) == 0 && b->kind == HD_REALLOC)
			return; /* realloc(p, 0) frees */
	}
	struct pending_ret pr = {.kind = b->kind};
	pr.size = alloc_size(b->kind, r);
	pr.memptr = r->rdi;
	pr.sampled = draw_sample(t, pr.size, &pr.rate);
	if (!pr.sampled && !may_nest(b->kind))
		return;
	if (pr.sampled) {
		pr.depth = hd_unwind_from_entry(t->unw, k->tid, r, pr.pcs,
						HD_MAX_DEPTH);
		if (pr.depth == 0) {
			pthread_mutex_lock(&t->lock);
			t->stats.unwind_failures++;
			pthread_mutex_unlock(&t->lock);
		}
	}
	if (push_ret(k, r, b, &pr))
		HD_DEBUG("tracer", "cannot hijack return of %d", k->tid);
}

/* Thread k stopped at a breakpoint that is the trap of its innermost
 * pending return, with rsp just above the slot: the call returned. */
static bool is_return(const struct task *k, uint64_t addr,
		      const struct user_regs_struct *r)
{
	if (k->nret == 0)
		return false;
	const struct pending_ret *p = &k->rets[k->nret - 1];
	return p->trap == addr && r->rsp == p->slot + 8;
}

static void on_return(struct hd_tracer *t, struct task *k,
		      struct user_regs_struct *r)
{
	struct pending_ret *p = &k->rets[--k->nret];
	r->rip = p->real_ret;
	if (!p->sampled)
		return;
	uint64_t ptr = r->rax;
	if (p->kind == HD_POSIX_MEMALIGN) {
		if (r->rax != 0 ||
		    hd_mem_read_full(k->tid, p->memptr, &ptr, sizeof(ptr)))
			ptr = 0;
	}
	if (!ptr)
		return;
	hd_prof_record_alloc(t->prof, p->pcs, (unsigned)p->depth, ptr,
			     p->size, p->rate);
	pthread_mutex_lock(&t->lock);
	t->stats.samples++;
	pthread_mutex_unlock(&t->lock);
}

/* r_debug.r_state (glibc <link.h>): RT_CONSISTENT, RT_ADD, RT_DELETE. */
#define R_DEBUG_STATE 24
#define RT_CONSISTENT 0

static void on_rtld_hook(struct hd_tracer *t, struct task *k)
{
	int32_t state = -1;
	if (hd_mem_read_full(t->pid, t->prov.r_debug + R_DEBUG_STATE, &state,
			     sizeof(state)))
		return;
	if (state == RT_CONSISTENT && !t->armed) {
		/* Usually the only thread (start-up, just after exec); if not,
		 * the others are stopped while the entry points change. */
		bool others = count_threads(t, true) > 1;
		if (others) {
			t->hold = true;
			stop_all(t);
		}
		int err = arm_entry_points(t, k);
		if (others)
			release_held(t, k);
		if (err)
			HD_DEBUG("tracer", "arming at r_brk: %s",
				 hd_strerror(err));
	}
	hd_unwinder_flush(t->unw);
	if (t->hooks.modules_changed)
		t->hooks.modules_changed(t->hooks.ctx, t->pid, 0);
}

/* A SIGTRAP stop: ours when rip - 1 is an armed breakpoint. */
static bool on_breakpoint(struct hd_tracer *t, struct task *k)
{
	struct user_regs_struct *r = &k->regs;
	if (hd_pt_getregs(k->tid, r))
		return true; /* gone: its exit will be reported */
	uint64_t addr = r->rip - 1;
	struct bp *b = bp_find(t, addr);
	if (!b)
		return false;
	r->rip = addr;
	if (b->hooked) {
		/* It hit the int3 just before the agent's jump replaced it:
		 * run the jump. */
	} else if (k->kind == TASK_THREAD && is_return(k, addr, r)) {
		on_return(t, k, r);
	} else {
		on_entry(t, k, b, r);
		if (hd_emu_exec(&b->emu, k->tid, addr, r))
			HD_DEBUG("tracer", "emulating %s in %d failed", b->name,
				 k->tid);
		if (b->kind == BP_RBRK && k->kind == TASK_THREAD) {
			/* The thread is past the hook before the entry
			 * points change: installing the agent moves any
			 * thread found inside the bytes it patches, and
			 * this one's rip is still just past our int3. */
			if (hd_pt_setregs(k->tid, r))
				return true;
			on_rtld_hook(t, k);
		}
	}
	if (hd_pt_setregs(k->tid, r) == 0)
		resume(t, k, 0);
	return true;
}

/* ---------------------------------------------------------------- */
/* events */

enum event {
	EV_EXITED,     /* WIFEXITED or WIFSIGNALED */
	EV_SIGNAL,     /* signal-delivery-stop */
	EV_GROUP_STOP, /* PTRACE_EVENT_STOP with a stop signal */
	EV_STOP,       /* PTRACE_EVENT_STOP: interrupt or first stop */
	EV_CLONE,      /* PTRACE_EVENT_CLONE/FORK/VFORK */
	EV_EXEC,
	EV_EXIT,       /* PTRACE_EVENT_EXIT */
	EV_OTHER,      /* VFORK_DONE and the like: just resume */
};

static enum event classify(int status)
{
	if (WIFEXITED(status) || WIFSIGNALED(status))
		return EV_EXITED;
	int sig = WSTOPSIG(status);
	switch ((unsigned)status >> 16) {
	case 0:
		return EV_SIGNAL;
	case PTRACE_EVENT_STOP:
		return (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN ||
			sig == SIGTTOU)
			       ? EV_GROUP_STOP
			       : EV_STOP;
	case PTRACE_EVENT_CLONE:
	case PTRACE_EVENT_FORK:
	case PTRACE_EVENT_VFORK:
		return EV_CLONE;
	case PTRACE_EVENT_EXEC:
		return EV_EXEC;
	case PTRACE_EVENT_EXIT:
		return EV_EXIT;
	default:
		return EV_OTHER;
	}
}

static pid_t tgid_of(pid_t tid)
{
	char v[32];
	return hd_proc_status(tid, "Tgid", v, sizeof(v)) ? -1 : atoi(v);
}

/* 1 if a and b share their memory, 0 if not, -1 if that cannot be told
 * (one of them is gone). */
static int shares_memory(pid_t a, pid_t b)
{
	long r = syscall(SYS_kcmp, a, b, KCMP_VM, 0, 0);
	return r < 0 ? -1 : r == 0;
}

/* First stop of a task we did not seize ourselves: a new thread, or a
 * child process (fork, vfork, clone).  A child with its own copy of our
 * memory is cleaned of every int3 and let go; one that shares our memory
 * (vfork) is kept and passed through until it execs or exits. */
static void on_first_stop(struct hd_tracer *t, struct task *k)
{
	pid_t tgid = tgid_of(k->tid);
	if (tgid == t->pid) {
		k->kind = TASK_THREAD;
		resume(t, k, 0);
		return;
	}
	int shared = tgid > 0 ? shares_memory(k->tid, t->pid) : -1;
	if (shared == 1) {
		k->kind = TASK_SHARED;
		resume(t, k, 0);
		return;
	}
	/* Writing "its" memory when it may be ours would remove our
	 * instrumentation from the traced process itself: only a child
	 * known to have its own copy is cleaned. */
	HD_DEBUG("tracer", "releasing child %d (%s)", k->tid,
		 shared == 0 ? "cleaned" : "gone");
	if (shared == 0)
		bp_restore_all(t, k->tid);
	hd_pt_detach(k->tid, 0);
	task_remove(t, k);
}

static void process_gone(struct hd_tracer *t, int status)
{
	drain_agent_now(t);
	if (!t->exiting_reported && t->hooks.exiting) {
		t->exiting_reported = true;
		t->hooks.exiting(t->hooks.ctx, t->pid, status);
	}
	pthread_mutex_lock(&t->lock);
	t->alive = false;
	t->attached = false;
	t->exited = true;
	t->exit_status = status;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void on_exec(struct hd_tracer *t, struct task *k)
{
	if (k->kind != TASK_THREAD) {
		/* A vfork child replaced its image: none of ours is left. */
		hd_pt_detach(k->tid, 0);
		task_remove(t, k);
		return;
	}
	/* Every other thread is gone; the exec'ing one now has the
	 * leader's id (ptrace(2), "execve(2) under ptrace"). */
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->ntask;) {
		struct task *o = &t->tasks[i];
		if (o->kind == TASK_THREAD && o != k) {
			free(o->rets);
			*o = t->tasks[--t->ntask];
			if (k == &t->tasks[t->ntask])
				k = o;
			continue;
		}
		i++;
	}
	k->tid = t->pid;
	k->nret = 0;
	pthread_mutex_unlock(&t->lock);

	bp_forget_all(t);
	drop_agent(t); /* its mappings went with the old image */
	hd_prof_forget_live(t->prof);
	hd_unwinder_free(t->unw);
	t->unw = hd_unwinder_new(t->pid);
	if (t->hooks.modules_changed)
		t->hooks.modules_changed(t->hooks.ctx, t->pid, 1);
	int err = arm_image(t, true, k);
	if (err)
		HD_DEBUG("tracer", "arming after exec: %s", hd_strerror(err));
	resume(t, k, 0);
}

static void on_exit_event(struct hd_tracer *t, struct task *k)
{
	k->exiting = true;
	k->nret = 0;
	if (k->kind == TASK_THREAD && count_threads(t, false) == 0 &&
	    !t->exiting_reported) {
		/* Every thread is past its last allocation and memory is
		 * still readable: the moment for the `exit` snapshot. */
		unsigned long msg = 0;
		hd_pt_geteventmsg(k->tid, &msg);
		drain_agent_now(t);
		t->exiting_reported = true;
		if (t->hooks.exiting)
			t->hooks.exiting(t->hooks.ctx, t->pid, (int)msg);
	}
	resume(t, k, 0);
}

static void on_exited(struct hd_tracer *t, pid_t tid, int status)
{
	struct task *k = task_find(t, tid);
	if (k)
		task_remove(t, k);
	if (tid == t->pid)
		process_gone(t, status);
}

static bool traced_by_us(pid_t tid);

/* A clone, fork or vfork event names the new task: know it now, before
 * its first stop is reported, so that stop_all() waits for that stop.
 * Otherwise a detach could finish first, and a forked child would be
 * released by our exit still holding our int3s (it dies of SIGTRAP).
 * (Its first stop may also come first and have released it already:
 * then it is no longer ours.) */
static void expect_child(struct hd_tracer *t, pid_t parent)
{
	unsigned long msg = 0;
	if (hd_pt_geteventmsg(parent, &msg) || msg == 0 ||
	    task_find(t, (pid_t)msg) || !traced_by_us((pid_t)msg))
		return;
	task_add(t, (pid_t)msg, TASK_NEW);
}

static void dispatch(struct hd_tracer *t, pid_t tid, int status)
{
	enum event ev = classify(status);
	if (ev == EV_EXITED) {
		on_exited(t, tid, status);
		return;
	}
	struct task *k = task_find(t, tid);
	if (!k && !(k = task_add(t, tid, TASK_NEW)))
		return;
	k->stopped = true;
	pthread_mutex_lock(&t->lock);
	t->stats.stops++;
	pthread_mutex_unlock(&t->lock);

	switch (ev) {
	case EV_SIGNAL: {
		int sig = WSTOPSIG(status);
		if (sig == SIGTRAP && on_breakpoint(t, k))
			return;
		/* Not ours: the tracee's own signal goes back to it. */
		resume(t, k, sig);
		return;
	}
	case EV_GROUP_STOP:
		if (k->kind == TASK_NEW) {
			on_first_stop(t, k);
			return;
		}
		/* The tracee's own SIGSTOP: stay stopped but keep
		 * reporting (PTRACE_LISTEN), so SIGCONT works as usual. */
		if (t->hold) {
			k->group_stop = true;
			return;
		}
		k->group_stop = true;
		if (hd_pt_listen(k->tid) == 0)
			k->stopped = false;
		return;
	case EV_STOP:
		k->group_stop = false;
		if (k->kind == TASK_NEW)
			on_first_stop(t, k);
		else
			resume(t, k, 0);
		return;
	case EV_EXEC:
		on_exec(t, k);
		return;
	case EV_EXIT:
		on_exit_event(t, k);
		return;
	case EV_CLONE:
		expect_child(t, tid);
		k = task_find(t, tid); /* task_add() may move the table */
		resume(t, k, 0);
		return;
	case EV_OTHER:
	case EV_EXITED:
		resume(t, k, 0);
		return;
	}
}

/* Wait for and dispatch events.  block: wait for at least one. */
static int drain(struct hd_tracer *t, bool block)
{
	int n = 0, status;
	pid_t tid;
	while ((tid = waitpid(-1, &status, __WALL | (block ? 0 : WNOHANG))) > 0) {
		dispatch(t, tid, status);
		n++;
		block = false;
	}
	return n;
}

/* ---------------------------------------------------------------- */
/* attach, run, detach */

static int read_status_field(pid_t pid, const char *key, char *val,
			     size_t len)
{
	return hd_proc_status(pid, key, val, len);
}

static bool is_kernel_thread(pid_t pid)
{
	struct hd_proc_stat st;
	return hd_proc_stat(pid, 0, &st) == 0 && (st.flags & HD_PF_KTHREAD);
}

/* Why may we not trace pid?  Fills the reason and the fix. */
static void explain_eperm(struct hd_tracer *t, pid_t pid)
{
	char uid[128] = "", cap[64] = "";
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "re");
	int scope = 0;
	if (f) {
		if (fscanf(f, "%d", &scope) != 1)
			scope = 0;
		fclose(f);
	}
	read_status_field(pid, "Uid", uid, sizeof(uid));
	unsigned target_uid = (unsigned)atoi(uid);
	if (geteuid() != 0 && target_uid != geteuid())
		why_set(t, "it belongs to uid %u; run heapdbg as that user or "
			   "as root",
			target_uid);
	else if (scope >= 3)
		why_set(t, "Yama ptrace_scope is 3, which forbids all "
			   "ptrace attach until reboot");
	else if (scope >= 1 && geteuid() != 0)
		why_set(t, "Yama ptrace_scope is %d; run as root, grant "
			   "CAP_SYS_PTRACE, or set "
			   "/proc/sys/kernel/yama/ptrace_scope to 0",
			scope);
	else if (read_status_field(getpid(), "CapEff", cap, sizeof(cap)) == 0 &&
		 geteuid() == 0 && strtoull(cap, NULL, 16) == 0)
		why_set(t, "missing CAP_SYS_PTRACE (in a container, add it)");
	else
		why_set(t, "missing CAP_SYS_PTRACE; run as root");
}

static int check_target(struct hd_tracer *t, pid_t pid)
{
	char state[64], tracer[64], tgid[64];
	if (pid <= 0)
		return -HD_ENOPROC;
	if (read_status_field(pid, "State", state, sizeof(state)))
		return -HD_ENOPROC;
	if (read_status_field(pid, "Tgid", tgid, sizeof(tgid)) == 0 &&
	    atoi(tgid) == getpid())
		return -HD_ESELF;
	if (atoi(tgid) != pid)
		why_set(t, "%d is a thread of process %s; attach to that", pid,
			tgid);
	if (atoi(tgid) != pid)
		return -HD_EINVAL;
	if (state[0] == 'Z' || state[0] == 'X')
		return -HD_EZOMBIE;
	if (is_kernel_thread(pid))
		return -HD_EKTHREAD;
	if (read_status_field(pid, "TracerPid", tracer, sizeof(tracer)) == 0 &&
	    atoi(tracer) != 0) {
		char comm[64] = "?", fn[96];
		snprintf(fn, sizeof(fn), "/proc/%s/comm", tracer);
		FILE *f = fopen(fn, "re");
		if (f) {
			if (fgets(comm, sizeof(comm), f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
		why_set(t, "by %s (pid %s); detach it first", comm, tracer);
		return -HD_ETRACED;
	}
	return 0;
}

/* Interrupt every running task and dispatch events until all are held
 * stopped (t->hold makes resume() hold them). */
static void stop_all(struct hd_tracer *t)
{
	for (int i = 0; i < t->ntask; i++) {
		struct task *k = &t->tasks[i];
		if (k->kind == TASK_SHARED && k->stopped)
			resume(t, k, k->pending_sig);
		else if (!k->stopped && k->kind != TASK_SHARED)
			hd_pt_interrupt(k->tid);
	}
	/* Done when every thread is stopped and every vfork child has
	 * exec'd or exited (on_exec()/on_exited() forget it): until then
	 * its parent may be unable to stop. */
	for (;;) {
		bool all = true;
		for (int i = 0; i < t->ntask; i++)
			if (!t->tasks[i].stopped ||
			    t->tasks[i].kind == TASK_SHARED)
				all = false;
		if (all || t->ntask == 0)
			break;
		if (drain(t, true) == 0 && errno == ECHILD)
			break;
	}
}

/* Is SIGTRAP pending for thread tid (not yet delivered)? */
static bool sigtrap_pending(pid_t tid)
{
	char val[64];
	if (read_status_field(tid, "SigPnd", val, sizeof(val)))
		return false;
	return strtoull(val, NULL, 16) & (1ULL << (SIGTRAP - 1));
}

/* A thread can be interrupted after its int3 raised SIGTRAP but before
 * the signal was delivered: the kernel reports the interrupt first and
 * keeps SIGTRAP pending (get_signal() handles job-control traps before
 * dequeuing signals).  Detached in that state, the thread would die of
 * that SIGTRAP.  So let each such thread run into its signal stop, which
 * on_breakpoint() handles like any other hit and then holds. */
static void collect_pending_traps(struct hd_tracer *t)
{
	for (int round = 0; round < 100; round++) {
		bool any = false;
		for (int i = 0; i < t->ntask; i++) {
			struct task *k = &t->tasks[i];
			struct user_regs_struct r;
			/* Group-stopped threads too: a thread that must
			 * join a group-stop does so before it dequeues the
			 * SIGTRAP of an int3 it just ran (get_signal()). */
			if (!k->stopped || !sigtrap_pending(k->tid) ||
			    hd_pt_getregs(k->tid, &r) || !bp_find(t, r.rip - 1))
				continue;
			if (hd_pt_cont(k->tid, 0) == 0) {
				k->stopped = false;
				any = true;
			}
		}
		if (!any)
			return;
		/* No new interrupt: it would be reported first again.  The
		 * pending SIGTRAP stops each of them at once. */
		for (;;) {
			bool all = true;
			for (int i = 0; i < t->ntask; i++)
				if (!t->tasks[i].stopped)
					all = false;
			if (all || drain(t, true) == 0)
				break;
		}
	}
}

/* Put back every hijacked return address of a stopped thread. */
static void unhijack(struct hd_tracer *t, struct task *k)
{
	if (k->nret == 0)
		return;
	struct user_regs_struct r;
	if (hd_pt_getregs(k->tid, &r) == 0) {
		struct pending_ret *top = &k->rets[k->nret - 1];
		if (r.rip == top->trap && r.rsp == top->slot + 8) {
			/* Returned onto our trap but not yet trapped. */
			r.rip = top->real_ret;
			hd_pt_setregs(k->tid, &r);
			k->nret--;
		}
	}
	for (int i = k->nret - 1; i >= 0; i--)
		hd_mem_write(k->tid, k->rets[i].slot, &k->rets[i].real_ret, 8);
	k->nret = 0;
	(void)t;
}

static void release_all(struct hd_tracer *t)
{
	t->hold = true;
	stop_all(t);
	collect_pending_traps(t);
	bp_restore_all(t, t->pid);
	for (int i = 0; i < t->ntask; i++)
		unhijack(t, &t->tasks[i]);
	if (t->agent)
		leave_agent(t);
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->ntask; i++) {
		struct task *k = &t->tasks[i];
		int sig = k->pending_sig;
		if (k->group_stop && !sig)
			sig = SIGSTOP;
		hd_pt_detach(k->tid, sig);
		free(k->rets);
	}
	t->ntask = 0;
	t->attached = false;
	t->alive = false;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
	bp_forget_all(t);
	t->hold = false;
}

/* Has thread tid of pid exited (gone, zombie or dead)?  The kernel
 * refuses to seize an exiting thread with EPERM, which must not be
 * mistaken for a permission problem: threads exit at any moment. */
static bool task_dead(pid_t pid, pid_t tid)
{
	struct hd_proc_stat st;
	return hd_proc_stat(pid, tid, &st) || st.state == 'Z' ||
	       st.state == 'X';
}

/* Is tid traced by us already?  A thread created by a thread we seized
 * is attached automatically (PTRACE_O_TRACECLONE), and seizing it again
 * fails with EPERM.  TracerPid names the tracing thread (this one), not
 * heapdbg's process id. */
static bool traced_by_us(pid_t tid)
{
	char val[64];
	return read_status_field(tid, "TracerPid", val, sizeof(val)) == 0 &&
	       atoi(val) == gettid();
}

static int seize_all(struct hd_tracer *t)
{
	char dir[64];
	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)t->pid);
	for (bool found = true; found;) {
		found = false;
		DIR *d = opendir(dir);
		if (!d)
			return -HD_EEXITED;
		struct dirent *e;
		while ((e = readdir(d))) {
			pid_t tid = atoi(e->d_name);
			if (tid <= 0 || task_find(t, tid))
				continue;
			int err = hd_pt_seize(tid, PT_OPTIONS);
			if (err == -EPERM && traced_by_us(tid)) {
				/* Born of a seized thread: already ours.  Its
				 * first stop comes through the event loop. */
				if (!task_add(t, tid, TASK_NEW)) {
					closedir(d);
					return -HD_ENOMEM;
				}
				found = true;
				continue;
			}
			if (err == -EPERM && task_dead(t->pid, tid))
				err = -ESRCH; /* exiting: not a permission */
			if (err == -ESRCH && tid != t->pid)
				continue; /* thread exited meanwhile */
			if (err) {
				closedir(d);
				if (err == -EPERM)
					return -HD_EPERM;
				return err == -ESRCH ? -HD_EEXITED : -HD_EIO;
			}
			if (!task_add(t, tid, TASK_THREAD)) {
				closedir(d);
				return -HD_ENOMEM;
			}
			found = true;
		}
		closedir(d);
	}
	return 0;
}

/* Is the process exiting or gone?  Reading the memory of a process that
 * is exiting fails too, which must not be reported as a permission
 * problem. */
static bool exiting(pid_t pid)
{
	struct hd_proc_stat st;
	if (hd_proc_stat(pid, 0, &st))
		return true;
	return st.state == 'Z' || st.state == 'X' ||
	       (st.flags & HD_PF_EXITING);
}

static int do_attach(struct hd_tracer *t)
{
	int err = check_target(t, t->pid);
	if (err)
		return err;
	err = hd_find_providers(t->pid, &t->prov, true);
	if (err && exiting(t->pid))
		return -HD_EEXITED; /* its memory went away with it */
	if (err == -HD_EPERM || err == -HD_EIO) {
		/* Reading its memory was refused: say why precisely. */
		explain_eperm(t, t->pid);
		return -HD_EPERM;
	}
	if (err)
		return err;
	hd_providers_clear(&t->prov);
	err = seize_all(t);
	if (err == -HD_EPERM)
		explain_eperm(t, t->pid);
	if (!err && !(t->unw = hd_unwinder_new(t->pid)))
		err = -HD_ENOMEM;
	if (!err && t->level >= 2) {
		/* The agent is installed with every thread stopped. */
		t->hold = true;
		stop_all(t);
	}
	if (!err) {
		struct task *via = task_find(t, t->pid);
		if (via && (!via->stopped || via->group_stop))
			via = NULL;
		for (int i = 0; i < t->ntask && !via; i++)
			if (t->tasks[i].stopped && !t->tasks[i].group_stop)
				via = &t->tasks[i];
		err = arm_image(t, false, via);
	}
	if (err) {
		release_all(t);
		/* Whatever failed, a process that is exiting explains it. */
		return exiting(t->pid) ? -HD_EEXITED : err;
	}
	release_held(t, NULL);
	t->alive = t->attached = true;
	if (t->hooks.modules_changed)
		t->hooks.modules_changed(t->hooks.ctx, t->pid, 0);
	return 0;
}

static int do_run(struct hd_tracer *t, char *const argv[])
{
	int sync[2], errp[2];
	if (pipe2(sync, O_CLOEXEC) || pipe2(errp, O_CLOEXEC))
		return -HD_EIO;
	pid_t pid = fork();
	if (pid < 0)
		return -HD_EIO;
	if (pid == 0) {
		char c;
		sigset_t all;
		sigemptyset(&all);
		pthread_sigmask(SIG_SETMASK, &all, NULL);
		close(sync[1]);
		close(errp[0]);
		/* Its own process group: Ctrl-C at heapdbg's prompt is for
		 * heapdbg, not for the program (which keeps the terminal for
		 * output; reading it would stop the program, as for any
		 * background job). */
		setpgid(0, 0);
		/* Wait until the tracer has seized us. */
		while (read(sync[0], &c, 1) < 0 && errno == EINTR)
			;
		execvp(argv[0], argv);
		int e = errno;
		if (write(errp[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(sync[0]);
	close(errp[1]);
	t->pid = pid;
	int err = hd_pt_seize(pid, PT_OPTIONS);
	close(sync[1]);
	int child_errno = 0;
	ssize_t n = read(errp[0], &child_errno, sizeof(child_errno));
	close(errp[0]);
	if (err || n == sizeof(child_errno)) {
		/* Seized, it stops at its exit (even when killed): let it
		 * go on until it is reaped. */
		int st;
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, __WALL) == pid && WIFSTOPPED(st))
			hd_pt_cont(pid, 0);
		why_set(t, "%s: %s", argv[0],
			strerror(err ? -err : child_errno));
		return -HD_EEXEC;
	}
	if (!task_add(t, pid, TASK_THREAD))
		return -HD_ENOMEM;
	/* The exec stop comes first: arm from there. */
	int st;
	if (waitpid(pid, &st, __WALL) != pid || classify(st) != EV_EXEC) {
		why_set(t, "%s did not start", argv[0]);
		return -HD_EEXEC;
	}
	struct task *k = task_find(t, pid);
	k->stopped = true;
	t->unw = hd_unwinder_new(pid);
	err = t->unw ? arm_image(t, true, k) : -HD_ENOMEM;
	if (err) {
		kill(pid, SIGKILL);
		while (waitpid(pid, &st, __WALL) == pid && WIFSTOPPED(st))
			hd_pt_cont(pid, 0);
		return err;
	}
	t->alive = t->attached = true;
	if (t->hooks.modules_changed)
		t->hooks.modules_changed(t->hooks.ctx, t->pid, 1);
	resume(t, k, 0);
	return 0;
}

static void do_kill(struct hd_tracer *t)
{
	if (!t->alive)
		return;
	kill(t->pid, SIGKILL);
	while (t->alive && drain(t, true) > 0)
		;
}

/* ---------------------------------------------------------------- */
/* the thread and its command queue */

static void finish_cmd(struct hd_tracer *t, int result)
{
	pthread_mutex_lock(&t->lock);
	t->cmd.result = result;
	t->cmd.done = true;
	t->cmd.type = CMD_NONE;
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void *tracer_main(void *arg)
{
	struct hd_tracer *t = arg;
	/* Level 0 unwinds here while the sampled thread is stopped: without
	 * libunwind's sigprocmask calls.  Nothing here needs a signal
	 * delivered (SIGCHLD comes through the signalfd; heapdbg's own
	 * signals go to the main thread). */
	hd_unwind_thread_nosig();
	for (;;) {
		pthread_mutex_lock(&t->lock);
		enum cmd_type c = t->cmd.done ? CMD_NONE : t->cmd.type;
		pthread_mutex_unlock(&t->lock);
		switch (c) {
		case CMD_ATTACH:
			finish_cmd(t, do_attach(t));
			continue;
		case CMD_RUN:
			finish_cmd(t, do_run(t, t->cmd.argv));
			continue;
		case CMD_DETACH:
			if (t->attached)
				release_all(t);
			finish_cmd(t, 0);
			continue;
		case CMD_KILL:
			do_kill(t);
			finish_cmd(t, 0);
			continue;
		case CMD_QUIT:
			if (t->attached && t->run_mode)
				do_kill(t);
			else if (t->attached)
				release_all(t);
			finish_cmd(t, 0);
			return NULL;
		case CMD_NONE:
			break;
		}
		struct pollfd pf[2] = {{t->sigfd, POLLIN, 0},
				       {t->evfd, POLLIN, 0}};
		if (poll(pf, 2, 1000) < 0 && errno != EINTR)
			break;
		if (pf[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(t->sigfd, &si, sizeof(si)) == sizeof(si))
				;
		}
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			if (read(t->evfd, &v, sizeof(v)) < 0)
				continue;
		}
		/* SIGCHLD may coalesce: always drain everything. */
		drain(t, false);
		if (atomic_exchange(&t->modules_changed, false))
			modules_changed_by_agent(t);
	}
	return NULL;
}

static int send_cmd(struct hd_tracer *t, enum cmd_type c)
{
	pthread_mutex_lock(&t->lock);
	while (t->cmd.type != CMD_NONE && !t->cmd.done)
		pthread_cond_wait(&t->cond, &t->lock);
	t->cmd.type = c;
	t->cmd.done = false;
	pthread_mutex_unlock(&t->lock);
	uint64_t one = 1;
	if (write(t->evfd, &one, sizeof(one)) < 0)
		return -HD_EIO;
	pthread_mutex_lock(&t->lock);
	while (!t->cmd.done)
		pthread_cond_wait(&t->cond, &t->lock);
	int r = t->cmd.result;
	pthread_mutex_unlock(&t->lock);
	return r;
}

static struct hd_tracer *tracer_new(const struct hd_tracer_cfg *cfg)
{
	struct hd_tracer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->prof = cfg->prof;
	t->hooks = cfg->hooks;
	t->level = cfg->level0 ? 0 : 2;
	pthread_mutex_init(&t->drain_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->drain_cond, &ca);
	pthread_condattr_destroy(&ca);
	hd_rng_seed(&t->drain_rng, (uint64_t)time(NULL) * 31 + 7);
	atomic_store(&t->rate, cfg->rate ? cfg->rate : HD_DEFAULT_RATE);
	hd_rng_seed(&t->rng, (uint64_t)time(NULL) ^ (uint64_t)getpid() << 32);
	t->countdown = (int64_t)hd_sample_next(&t->rng, atomic_load(&t->rate));
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	t->cmd.done = true;
	/* SIGCHLD is read from a signalfd; it must be blocked in every
	 * thread, so block it here, before the tracer thread (and any
	 * thread the caller creates later) inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	t->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->sigfd < 0 || t->evfd < 0 ||
	    pthread_create(&t->thread, NULL, tracer_main, t)) {
		if (t->sigfd >= 0)
			close(t->sigfd);
		if (t->evfd >= 0)
			close(t->evfd);
		free(t);
		return NULL;
	}
	return t;
}

static int start(struct hd_tracer *t, enum cmd_type c, char *why,
		 size_t whylen, struct hd_tracer **out)
{
	t->cmd.why = why;
	t->cmd.whylen = whylen;
	if (why && whylen)
		why[0] = '\0';
	int err = send_cmd(t, c);
	t->cmd.why = NULL;
	if (err) {
		hd_tracer_free(t);
		return err;
	}
	*out = t;
	return 0;
}

int hd_tracer_attach(pid_t pid, const struct hd_tracer_cfg *cfg,
		     struct hd_tracer **out, char *why, size_t whylen)
{
	struct hd_tracer *t = tracer_new(cfg);
	if (!t)
		return -HD_ENOMEM;
	t->pid = pid;
	return start(t, CMD_ATTACH, why, whylen, out);
}

int hd_tracer_run(char *const argv[], const struct hd_tracer_cfg *cfg,
		  struct hd_tracer **out, char *why, size_t whylen)
{
	struct hd_tracer *t = tracer_new(cfg);
	if (!t)
		return -HD_ENOMEM;
	t->run_mode = true;
	t->cmd.argv = argv;
	return start(t, CMD_RUN, why, whylen, out);
}

pid_t hd_tracer_pid(const struct hd_tracer *t)
{
	return t->pid;
}

int hd_tracer_is_run_mode(const struct hd_tracer *t)
{
	return t->run_mode;
}

int hd_tracer_detach(struct hd_tracer *t)
{
	return send_cmd(t, CMD_DETACH);
}

int hd_tracer_kill(struct hd_tracer *t)
{
	return send_cmd(t, CMD_KILL);
}

void hd_tracer_free(struct hd_tracer *t)
{
	if (!t)
		return;
	send_cmd(t, CMD_QUIT);
	pthread_join(t->thread, NULL);
	if (t->drainer_started) {
		/* Wake it from its nap, whichever it is in. */
		pthread_mutex_lock(&t->drain_lock);
		atomic_store(&t->drainer_stop, true);
		pthread_cond_broadcast(&t->drain_cond);
		if (t->agent)
			hd_agent_kick(t->agent);
		pthread_mutex_unlock(&t->drain_lock);
		pthread_join(t->drainer, NULL);
	}
	drop_agent(t);
	pthread_mutex_destroy(&t->drain_lock);
	pthread_cond_destroy(&t->drain_cond);
	bp_forget_all(t);
	hd_unwinder_free(t->unw);
	close(t->sigfd);
	close(t->evfd);
	for (int i = 0; i < t->ntask; i++)
		free(t->tasks[i].rets);
	free(t->tasks);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
}

void hd_tracer_sync(struct hd_tracer *t, double timeout)
{
	pthread_mutex_lock(&t->drain_lock);
	struct hd_agent *a = t->agent;
	uint64_t head = a ? hd_agent_head(a) : 0;
	pthread_mutex_unlock(&t->drain_lock);
	if (!a)
		return;
	double end = hd_now() + timeout;
	for (;;) {
		pthread_mutex_lock(&t->drain_lock);
		bool done = t->agent != a || hd_agent_tail(a) >= head;
		if (!done)
			hd_agent_kick(a);
		pthread_mutex_unlock(&t->drain_lock);
		if (done || hd_now() > end)
			return;
		usleep(1000);
	}
}

void hd_tracer_set_rate(struct hd_tracer *t, uint64_t rate)
{
	atomic_store(&t->rate, rate ? rate : 1);
}

uint64_t hd_tracer_rate(const struct hd_tracer *t)
{
	return atomic_load(&((struct hd_tracer *)t)->rate);
}

int hd_tracer_wait_exit(struct hd_tracer *t, double timeout, int *status,
			volatile int *cancel)
{
	double end = hd_now() + timeout;
	pthread_mutex_lock(&t->lock);
	while (!t->exited) {
		if (!t->attached)
			break; /* detached: it will never be seen exiting */
		if (cancel && *cancel)
			break;
		if (timeout >= 0 && hd_now() >= end)
			break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&t->cond, &t->lock, &ts);
	}
	int exited = t->exited;
	if (exited && status)
		*status = t->exit_status;
	pthread_mutex_unlock(&t->lock);
	return exited;
}

int hd_tracer_alive(const struct hd_tracer *t)
{
	struct hd_tracer *m = (struct hd_tracer *)t;
	pthread_mutex_lock(&m->lock);
	int a = m->alive;
	pthread_mutex_unlock(&m->lock);
	return a;
}

static void thread_info(pid_t pid, pid_t tid, struct hd_thread_info *ti)
{
	struct hd_proc_stat st;
	ti->tid = tid;
	ti->name[0] = '\0';
	ti->state = '?';
	if (hd_proc_stat(pid, tid, &st))
		return;
	snprintf(ti->name, sizeof(ti->name), "%s", st.comm);
	ti->state = st.state;
}

int hd_tracer_threads(struct hd_tracer *t, struct hd_thread_info *out,
		      int max)
{
	pid_t tids[4096];
	int n = 0;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->ntask && n < 4096; i++)
		if (t->tasks[i].kind == TASK_THREAD)
			tids[n++] = t->tasks[i].tid;
	pthread_mutex_unlock(&t->lock);
	for (int i = 0; i < n && i < max; i++)
		thread_info(t->pid, tids[i], &out[i]);
	return n;
}

void hd_tracer_stats(struct hd_tracer *t, struct hd_tracer_stats *out)
{
	struct hd_agent_stats as;
	struct hd_agent_drained d;
	bool agent, used;
	pthread_mutex_lock(&t->drain_lock);
	agent = t->agent != NULL;
	agent_stats_all(t, &as);
	used = agent || t->agent_used;
	d = t->drained;
	pthread_mutex_unlock(&t->drain_lock);
	pthread_mutex_lock(&t->lock);
	*out = t->stats;
	out->samples += d.samples;
	out->unwind_failures += d.unwind_failures;
	out->dropped = as.dropped;
	out->agent_ns = as.agent_ns;
	out->agent_calls = as.slow_calls;
	out->agent = agent;
	out->agent_used = used;
	out->threads = 0;
	for (int i = 0; i < t->ntask; i++)
		if (t->tasks[i].kind == TASK_THREAD)
			out->threads++;
	pthread_mutex_unlock(&t->lock);
}

int hd_tracer_probes(struct hd_tracer *t, struct hd_probe_info *out, int max)
{
	int n = 0;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->nbp && n < max; i++) {
		struct bp *b = &t->bps[i];
		if (b->hooked)
			continue; /* the agent's now: listed below */
		struct hd_probe_info *o = &out[n++];
		snprintf(o->name, sizeof(o->name), "%s", b->name);
		o->addr = b->addr;
		snprintf(o->module, sizeof(o->module), "%s",
			 b->module ? b->module : "");
		if (b->armed || b->alias)
			snprintf(o->method, sizeof(o->method),
				 "breakpoint, emulating %s", b->emu.text);
		else
			snprintf(o->method, sizeof(o->method),
				 "not probed: %s", b->emu.text);
	}
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_lock(&t->drain_lock);
	struct hd_agent_patch *p;
	int np = t->agent ? hd_agent_patches(t->agent, &p) : 0;
	for (int i = 0; i < np && n < max; i++) {
		if (!p[i].active)
			continue;
		if (p[i].kind == HD_K_RBRK) {
			struct hd_probe_info *o = &out[n++];
			snprintf(o->name, sizeof(o->name), "_dl_debug_state");
			o->addr = p[i].addr;
			snprintf(o->module, sizeof(o->module), "%.255s",
				 t->prov.interp);
			snprintf(o->method, sizeof(o->method),
				 "agent, counting link-map changes, relocated "
				 "%.80s", p[i].reloc.text);
			continue;
		}
		for (int k = 0; k < HD_ENTRY__COUNT && n < max; k++) {
			if (t->prov.addr[k] != p[i].addr)
				continue;
			struct hd_probe_info *o = &out[n++];
			snprintf(o->name, sizeof(o->name), "%s",
				 hd_entry_names[k]);
			o->addr = p[i].addr;
			snprintf(o->module, sizeof(o->module), "%s",
				 t->prov.module[k] ? t->prov.module[k] : "");
			snprintf(o->method, sizeof(o->method),
				 "agent, relocated %.100s", p[i].reloc.text);
		}
	}
	pthread_mutex_unlock(&t->drain_lock);
	return n;
}
