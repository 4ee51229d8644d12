/* tracer/: everything that touches the traced process.
 *
 * One tracer thread owns every ptrace call (ptrace is per tracer thread).
 * hd_tracer_attach()/hd_tracer_run() start it; the other functions here
 * are called from the prompt thread and talk to it through a queue.
 *
 * The tracer records raw return addresses, sizes and pointers into the
 * hd_prof it is given; it knows nothing of names and formats no text.
 */
#ifndef HD_TRACER_H
#define HD_TRACER_H

#include <stdint.h>
#include <sys/types.h>

#include "../common/hd.h"
#include "../profile/profile.h"

struct hd_tracer;

/* Hooks, called on the tracer thread while the tracee is stopped: keep
 * them short (copy data; no DWARF work). */
struct hd_tracer_hooks {
	void *ctx;
	/* The set of mapped modules may have changed (library load or unload
	 * about to happen, exec).  `exec` is 1 when a new image replaced
	 * the old one (the caller switches to a new symbol space). */
	void (*modules_changed)(void *ctx, pid_t pid, int exec);
	/* The whole process is about to exit: every thread is stopped at
	 * its exit and memory is still readable.  `status` is the wait
	 * status it will exit with. */
	void (*exiting)(void *ctx, pid_t pid, int status);
};

struct hd_tracer_cfg {
	uint64_t rate; /* mean sampling interval in bytes; 1 = every one */
	/* Force Level 0: a breakpoint (a stop) at every entry point.  By
	 * default the in-tracee agent takes every entry point it can, with
	 * breakpoints only where it cannot. */
	int level0;
	struct hd_prof *prof;
	struct hd_tracer_hooks hooks;
};

/* hd_tracer_attach() and hd_tracer_run() block SIGCHLD in the calling
 * thread (the tracer reads it from a signalfd, so it must be blocked in
 * every thread): create other threads after calling them. */

/* Seize every thread of pid, arm sampling, let it run.  On failure the
 * process is left exactly as it was and a -HD_E* code is returned;
 * `why` (if non-NULL, size whylen) receives a detail for the message
 * (e.g. "Yama ptrace_scope is 1"). */
int hd_tracer_attach(pid_t pid, const struct hd_tracer_cfg *cfg,
		     struct hd_tracer **out, char *why, size_t whylen) HD_MUST_CHECK;

/* Start argv[0] (searched in PATH) traced, armed before any constructor
 * runs. */
int hd_tracer_run(char *const argv[], const struct hd_tracer_cfg *cfg,
		  struct hd_tracer **out, char *why, size_t whylen) HD_MUST_CHECK;

pid_t hd_tracer_pid(const struct hd_tracer *t);
int hd_tracer_is_run_mode(const struct hd_tracer *t);

/* Remove every trace of heapdbg from the process (patched bytes, hijacked
 * return addresses), leave no thread stopped, detach.  Idempotent; a
 * process that is gone is not an error. */
int hd_tracer_detach(struct hd_tracer *t);
/* SIGKILL the tracee (run mode), then reap it. */
int hd_tracer_kill(struct hd_tracer *t);
/* Stop the tracer thread and free; detaches first if still attached. */
void hd_tracer_free(struct hd_tracer *t);

/* Wait (at most `timeout` seconds) until every sample the process has
 * recorded so far has reached the profile: the agent hands samples over
 * asynchronously, and a snapshot should hold every allocation made before
 * it was asked for. */
void hd_tracer_sync(struct hd_tracer *t, double timeout);

/* Change the sampling interval; takes effect for the next allocation. */
void hd_tracer_set_rate(struct hd_tracer *t, uint64_t rate);
uint64_t hd_tracer_rate(const struct hd_tracer *t);

/* Wait until the tracee has exited or `timeout` seconds pass (< 0:
 * forever), or *cancel becomes non-zero (polled every 50 ms; may be
 * NULL).  Returns 1 if it exited (status in *status), 0 otherwise. */
int hd_tracer_wait_exit(struct hd_tracer *t, double timeout, int *status,
			volatile int *cancel);
/* 1 while the tracee is alive and attached. */
int hd_tracer_alive(const struct hd_tracer *t);

struct hd_thread_info {
	pid_t tid;
	char name[16];
	char state; /* R, S, D, t... as in /proc/TID/stat */
};
/* Fills up to max entries, returns the number of traced threads. */
int hd_tracer_threads(struct hd_tracer *t, struct hd_thread_info *out,
		      int max);

struct hd_tracer_stats {
	uint64_t allocs, frees; /* calls seen (Level 0 sees every call) */
	uint64_t samples;       /* sampled allocations recorded */
	uint64_t stops;         /* ptrace stops handled */
	uint64_t unwind_failures;
	int threads;
	int agent;              /* 1 while the in-tracee agent is active */
	int agent_used;         /* 1 if it ever was: the figures below are
				   those of every agent of the session */
	uint64_t dropped;       /* agent records lost: the ring was full */
	uint64_t agent_calls;   /* calls that took the agent's slow path */
	uint64_t agent_ns;      /* time the tracee spent there */
};
void hd_tracer_stats(struct hd_tracer *t, struct hd_tracer_stats *out);

/* Entry points armed, for `info probes`: name, address, module, method
 * ("breakpoint", "breakpoint+xol"...).  Returns the count. */
struct hd_probe_info {
	char name[32];
	uint64_t addr;
	char module[256];
	char method[128]; /* "breakpoint, emulating push %r12" or
			     "not probed: <why>" */
};
int hd_tracer_probes(struct hd_tracer *t, struct hd_probe_info *out, int max);

#endif
