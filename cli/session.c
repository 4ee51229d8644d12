#include "session.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../symbols/symbols.h"
#include "../tracer/tracer.h"
#include "diagnose.h"
#include "units.h"

struct hd_session {
	/* Guards what the tracer thread's hooks touch: space, spaces,
	 * snaps, dead, exit_rss, rate. */
	pthread_mutex_t lock;
	struct hd_tracer *tracer;
	struct hd_prof *prof;

	struct hd_sym_space *space;   /* the current image's */
	struct hd_sym_space **spaces; /* every space ever made (one per exec) */
	size_t nspaces;

	struct hd_snap **snaps; /* named, in the order taken */
	size_t nsnaps;
	struct hd_snap **dead; /* replaced by a newer one of the same name:
				  kept, a report may still be using it */
	size_t ndead;

	double start;      /* hd_now() at start */
	double start_wall; /* epoch seconds at start, for exports */
	pid_t pid;
	char comm[64];
	int run_mode;
	uint64_t rate;
	int level0;

	int exit_pipe[2]; /* written by the exiting hook to wake poll() */
	int exited, exit_status;
	double exit_rss; /* VmRSS read in the exiting hook; < 0 unknown */

	/* Reference point of the next stats line. */
	int stats_seq;
	double stats_time, stats_inuse, stats_allocs, stats_frees;
	uint64_t stats_samples, stats_stops, stats_agent_ns;
};

/* ---- small helpers ---- */

static void space_update(struct hd_sym_space *sp, pid_t pid)
{
	int r = hd_sym_space_update(sp, pid);
	if (r < 0)
		HD_DEBUG("cli", "symbols of %d: %s", (int)pid, hd_strerror(r));
}

/* VmRSS in bytes, or -1. */
static double read_rss(pid_t pid)
{
	char v[64];

	if (hd_cli_proc_status(pid, "VmRSS", v, sizeof(v)) < 0)
		return -1;
	return strtod(v, NULL) * 1024.0;
}

static void snap_store_locked(struct hd_session *s, struct hd_snap *snap)
{
	for (size_t i = 0; i < s->nsnaps; i++) {
		if (strcmp(s->snaps[i]->name, snap->name) != 0)
			continue;
		struct hd_snap **d =
			realloc(s->dead, (s->ndead + 1) * sizeof(*d));
		if (d) {
			s->dead = d;
			s->dead[s->ndead++] = s->snaps[i];
		}
		/* If even that failed, leaking the old one is the safe
		 * choice: a report may be reading it. */
		memmove(&s->snaps[i], &s->snaps[i + 1],
			(s->nsnaps - i - 1) * sizeof(*s->snaps));
		s->nsnaps--;
		break;
	}
	s->snaps[s->nsnaps++] = snap;
}

/* Take snapshot `name` of the profile as it is; NULL on out-of-memory.
 * Caller holds the lock. */
static struct hd_snap *take_locked(struct hd_session *s, const char *name,
				   int store)
{
	if (store) {
		struct hd_snap **n =
			realloc(s->snaps, (s->nsnaps + 1) * sizeof(*n));
		if (!n)
			return NULL;
		s->snaps = n;
	}
	struct hd_snap *snap = hd_prof_snapshot(
		s->prof, name, hd_now() - s->start, s->rate);
	if (!snap)
		return NULL;
	snap->symbols = s->space;
	if (store)
		snap_store_locked(s, snap);
	return snap;
}

/* ---- hooks (tracer thread, tracee stopped: keep them short) ---- */

static void on_modules_changed(void *ctx, pid_t pid, int exec)
{
	struct hd_session *s = ctx;

	pthread_mutex_lock(&s->lock);
	if (exec) {
		/* A new image: old snapshots keep the old space. */
		struct hd_sym_space *sp = hd_sym_space_new();
		struct hd_sym_space **n =
			realloc(s->spaces, (s->nspaces + 1) * sizeof(*n));
		if (sp && n) {
			s->spaces = n;
			s->spaces[s->nspaces++] = sp;
			s->space = sp;
		} else {
			if (n)
				s->spaces = n;
			hd_sym_space_free(sp);
		}
	}
	space_update(s->space, pid);
	pthread_mutex_unlock(&s->lock);
}

static void on_exiting(void *ctx, pid_t pid, int status)
{
	struct hd_session *s = ctx;

	pthread_mutex_lock(&s->lock);
	space_update(s->space, pid);
	if (!take_locked(s, "exit", 1))
		HD_DEBUG("cli", "snapshot exit: out of memory");
	s->exit_rss = read_rss(pid);
	pthread_mutex_unlock(&s->lock);
	HD_DEBUG("cli", "process %d exiting, status 0x%x", (int)pid, status);
	/* Wake the prompt; it learns the status from the tracer. */
	ssize_t w = write(s->exit_pipe[1], "x", 1);
	(void)w; /* a full pipe is already readable */
}

/* ---- life cycle ---- */

static struct hd_session *session_new(const struct hd_session_opts *o)
{
	struct hd_session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	pthread_mutex_init(&s->lock, NULL);
	s->exit_pipe[0] = s->exit_pipe[1] = -1;
	s->exit_rss = -1;
	s->rate = o->rate;
	s->level0 = o->level0;
	s->prof = hd_prof_new();
	s->space = hd_sym_space_new();
	s->spaces = malloc(sizeof(*s->spaces));
	if (!s->prof || !s->space || !s->spaces ||
	    pipe2(s->exit_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		/* Not yet in s->spaces, so hd_session_free would miss it. */
		if (s->space)
			hd_sym_space_free(s->space);
		hd_session_free(s);
		return NULL;
	}
	s->spaces[s->nspaces++] = s->space;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	s->start_wall = (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
	s->start = hd_now();
	s->stats_time = 0;
	return s;
}

static struct hd_tracer_cfg session_cfg(struct hd_session *s)
{
	return (struct hd_tracer_cfg){
		.rate = s->rate,
		.level0 = s->level0,
		.prof = s->prof,
		.hooks = {.ctx = s,
			  .modules_changed = on_modules_changed,
			  .exiting = on_exiting},
	};
}

static void session_started(struct hd_session *s, const char *fallback)
{
	s->pid = hd_tracer_pid(s->tracer);
	hd_cli_proc_comm(s->pid, s->comm, sizeof(s->comm));
	if (strcmp(s->comm, "?") == 0 && fallback) {
		const char *b = strrchr(fallback, '/');
		snprintf(s->comm, sizeof(s->comm), "%s", b ? b + 1 : fallback);
	}
	pthread_mutex_lock(&s->lock);
	space_update(s->space, s->pid);
	pthread_mutex_unlock(&s->lock);
}

int hd_session_attach(pid_t pid, const struct hd_session_opts *o,
		      struct hd_session **out, char *err, size_t errlen)
{
	struct hd_session *s = session_new(o);
	char why[256] = "";

	if (!s) {
		snprintf(err, errlen, "cannot attach to %d: %s", (int)pid,
			 hd_strerror(-HD_ENOMEM));
		return -HD_ENOMEM;
	}
	struct hd_tracer_cfg cfg = session_cfg(s);
	int r = hd_tracer_attach(pid, &cfg, &s->tracer, why, sizeof(why));
	if (r < 0) {
		hd_cli_attach_error(err, errlen, pid, r, why);
		s->tracer = NULL;
		hd_session_free(s);
		return r;
	}
	session_started(s, NULL);
	*out = s;
	return 0;
}

int hd_session_run(char *const argv[], const struct hd_session_opts *o,
		   struct hd_session **out, char *err, size_t errlen)
{
	struct hd_session *s = session_new(o);
	char why[256] = "";

	if (!s) {
		snprintf(err, errlen, "cannot run %s: %s", argv[0],
			 hd_strerror(-HD_ENOMEM));
		return -HD_ENOMEM;
	}
	struct hd_tracer_cfg cfg = session_cfg(s);
	int r = hd_tracer_run(argv, &cfg, &s->tracer, why, sizeof(why));
	if (r < 0) {
		hd_cli_run_error(err, errlen, argv[0], r, why);
		s->tracer = NULL;
		hd_session_free(s);
		return r;
	}
	s->run_mode = 1;
	session_started(s, argv[0]);
	*out = s;
	return 0;
}

void hd_session_free(struct hd_session *s)
{
	if (!s)
		return;
	/* The tracer first: after this no hook can run. */
	if (s->tracer)
		hd_tracer_free(s->tracer);
	for (size_t i = 0; i < s->nsnaps; i++)
		hd_snap_free(s->snaps[i]);
	for (size_t i = 0; i < s->ndead; i++)
		hd_snap_free(s->dead[i]);
	free(s->snaps);
	free(s->dead);
	for (size_t i = 0; i < s->nspaces; i++)
		hd_sym_space_free(s->spaces[i]);
	free(s->spaces);
	if (s->prof)
		hd_prof_free(s->prof);
	if (s->exit_pipe[0] >= 0)
		close(s->exit_pipe[0]);
	if (s->exit_pipe[1] >= 0)
		close(s->exit_pipe[1]);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

pid_t hd_session_pid(const struct hd_session *s)
{
	return s->pid;
}

const char *hd_session_comm(const struct hd_session *s)
{
	return s->comm;
}

int hd_session_run_mode(const struct hd_session *s)
{
	return s->run_mode;
}

struct hd_tracer *hd_session_tracer(struct hd_session *s)
{
	return s->tracer;
}

double hd_session_elapsed(const struct hd_session *s)
{
	return hd_now() - s->start;
}

uint64_t hd_session_rate(struct hd_session *s)
{
	pthread_mutex_lock(&s->lock);
	uint64_t r = s->rate;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int hd_session_set_rate(struct hd_session *s, uint64_t rate)
{
	if (!hd_session_alive(s))
		return -HD_EGONE;
	hd_tracer_set_rate(s->tracer, rate);
	pthread_mutex_lock(&s->lock);
	s->rate = rate;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

struct hd_sym_space *hd_session_symbols(struct hd_session *s)
{
	pthread_mutex_lock(&s->lock);
	struct hd_sym_space *sp = s->space;
	pthread_mutex_unlock(&s->lock);
	return sp;
}

/* ---- the process's life ---- */

int hd_session_alive(struct hd_session *s)
{
	return !s->exited && hd_tracer_alive(s->tracer);
}

int hd_session_poll_exit(struct hd_session *s, int *status)
{
	char buf[16];

	/* Drain the wake-up bytes; the status comes from the tracer. */
	while (read(s->exit_pipe[0], buf, sizeof(buf)) > 0)
		;
	if (s->exited)
		return 0;
	if (!hd_tracer_wait_exit(s->tracer, 0, &s->exit_status, NULL))
		return 0;
	s->exited = 1;
	*status = s->exit_status;
	return 1;
}

void hd_session_exit_line(const struct hd_session *s, int status, char *buf,
			  size_t len)
{
	if (WIFSIGNALED(status)) {
		const char *abbrev = sigabbrev_np(WTERMSIG(status));
		char num[16];
		if (!abbrev) {
			snprintf(num, sizeof(num), "%d", WTERMSIG(status));
			abbrev = num;
		}
		snprintf(buf, len, "[process %d killed by signal %s%s%s]",
			 (int)s->pid, isdigit((unsigned char)*abbrev) ? "" : "SIG",
			 abbrev, WCOREDUMP(status) ? " (core dumped)" : "");
	} else {
		snprintf(buf, len, "[process %d exited with status %d]",
			 (int)s->pid, WEXITSTATUS(status));
	}
}

int hd_session_exit_fd(const struct hd_session *s)
{
	return s->exit_pipe[0];
}

int hd_session_wait_exit(struct hd_session *s, double timeout, int *status,
			 volatile int *cancel)
{
	if (s->exited) {
		*status = s->exit_status;
		return 1;
	}
	if (!hd_tracer_wait_exit(s->tracer, timeout, &s->exit_status, cancel))
		return 0;
	s->exited = 1;
	*status = s->exit_status;
	return 1;
}

int hd_session_detach(struct hd_session *s)
{
	return hd_tracer_detach(s->tracer);
}

int hd_session_kill(struct hd_session *s, int *status)
{
	int r = hd_tracer_kill(s->tracer);
	if (r < 0)
		return r;
	if (!hd_session_wait_exit(s, 10, status, NULL))
		return -HD_EINTERNAL;
	return 0;
}

/* ---- snapshots ---- */

int hd_session_valid_name(const char *name)
{
	const char *p = name;

	if (!*name || *name == '-' || strlen(name) > 64)
		return 0;
	while (isdigit((unsigned char)*p))
		p++;
	if (!*p)
		return 0; /* a number would read as top's N */
	for (p = name; *p; p++)
		if (*p == '/' || !isgraph((unsigned char)*p))
			return 0;
	return 1;
}

/* What the agent recorded before now reaches the profile first. */
static void sync_samples(struct hd_session *s)
{
	if (hd_session_alive(s))
		hd_tracer_sync(s->tracer, 10.0);
}

int hd_session_snapshot(struct hd_session *s, const char *name,
			const struct hd_snap **out)
{
	sync_samples(s);
	if (hd_session_alive(s))
		space_update(hd_session_symbols(s), s->pid);
	pthread_mutex_lock(&s->lock);
	struct hd_snap *snap = take_locked(s, name, 1);
	pthread_mutex_unlock(&s->lock);
	if (!snap)
		return -HD_ENOMEM;
	*out = snap;
	return 0;
}

struct hd_snap *hd_session_now(struct hd_session *s)
{
	sync_samples(s);
	if (hd_session_alive(s))
		space_update(hd_session_symbols(s), s->pid);
	pthread_mutex_lock(&s->lock);
	struct hd_snap *snap = take_locked(s, "now", 0);
	pthread_mutex_unlock(&s->lock);
	return snap;
}

const struct hd_snap *hd_session_find(struct hd_session *s, const char *name)
{
	const struct hd_snap *found = NULL;

	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nsnaps && !found; i++)
		if (strcmp(s->snaps[i]->name, name) == 0)
			found = s->snaps[i];
	pthread_mutex_unlock(&s->lock);
	return found;
}

size_t hd_session_list(struct hd_session *s, const struct hd_snap **out,
		       size_t max)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->nsnaps;
	for (size_t i = 0; i < n && i < max; i++)
		out[i] = s->snaps[i];
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- reports ---- */

static int resolve_cb(void *ctx, uint64_t pc, struct hd_frame *frames,
		      int max)
{
	return hd_sym_resolve(ctx, pc, frames, max);
}

static const char *source_cb(void *ctx, const char *file, int line)
{
	return hd_sym_source_line(ctx, file, line);
}

static void modules_cb(void *ctx,
		       void (*fn)(void *fnctx,
				  const struct hd_sym_module_info *),
		       void *fnctx)
{
	hd_sym_modules(ctx, 1, fn, fnctx);
}

void hd_session_report_opts(const struct hd_snap *snap,
			    struct hd_report_opts *o)
{
	o->resolve = resolve_cb;
	o->source_line = source_cb;
	o->ctx = snap->symbols;
}

void hd_session_export_src(const struct hd_session *s,
			   const struct hd_snap *snap,
			   struct hd_export_src *src)
{
	*src = (struct hd_export_src){
		.resolve = resolve_cb,
		.modules = modules_cb,
		.ctx = snap->symbols,
		.start_time = s->start_wall,
	};
}

/* ---- stats ---- */

void hd_session_stats_line(struct hd_session *s, char *buf, size_t len)
{
	struct hd_prof_totals tot;
	struct hd_cli_stats st = {.rss = -1};
	int alive = hd_session_alive(s);

	hd_prof_totals(s->prof, &tot);
	st.seq = ++s->stats_seq;
	st.time = hd_session_elapsed(s);
	st.inuse_before = s->stats_inuse;
	st.inuse_now = tot.total.inuse_space;
	double dt = st.time - s->stats_time;
	if (dt > 1e-3) {
		st.growth = (st.inuse_now - s->stats_inuse) / dt;
		st.allocs_per_s =
			(tot.total.alloc_objects - s->stats_allocs) / dt;
		st.frees_per_s = (tot.frees - s->stats_frees) / dt;
	}
	struct hd_tracer_stats ts;
	hd_tracer_stats(s->tracer, &ts);
	if (alive) {
		st.threads = ts.threads;
		st.rss = read_rss(s->pid);
	} else {
		pthread_mutex_lock(&s->lock);
		st.rss = s->exit_rss;
		pthread_mutex_unlock(&s->lock);
	}
	/* After exit too: how the profile was recorded, and how many records
	 * were lost, is part of what the exit snapshot means. */
	if (alive || ts.agent_used || ts.stops) {
		st.how = ts.agent || ts.agent_used ? "agent" : "breakpoints";
		st.dropped = ts.dropped;
		if (dt > 1e-3) {
			st.samples_per_s = (double)(tot.samples -
						    s->stats_samples) / dt;
			st.stops_per_s = (double)(ts.stops - s->stats_stops) /
					 dt;
			st.agent_cpu = (double)(ts.agent_ns -
						s->stats_agent_ns) /
				       (dt * 1e9);
		}
		s->stats_stops = ts.stops;
		s->stats_agent_ns = ts.agent_ns;
	}
	st.samples = tot.samples;
	hd_cli_format_stats(buf, len, &st);

	s->stats_time = st.time;
	s->stats_inuse = st.inuse_now;
	s->stats_allocs = tot.total.alloc_objects;
	s->stats_frees = tot.frees;
	s->stats_samples = tot.samples;
}
