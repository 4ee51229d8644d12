#include "commands.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../profile/pprof/export.h"
#include "../symbols/symbols.h"
#include "../tracer/tracer.h"
#include "prompt.h"
#include "report.h"
#include "session.h"
#include "units.h"

struct cmd {
	const char *name;
	size_t min; /* shortest accepted abbreviation */
	const char *usage;
	const char *summary;
	const char *help;
	int (*fn)(struct hd_cli *c, const struct cmd *cmd, char **argv,
		  int argc);
	enum hd_cli_complete complete;
	enum hd_cli_report_kind kind;
};

static void fail(const struct cmd *cmd, const char *fmt, ...) HD_PRINTF(2, 3);
static void fail(const struct cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	if (cmd)
		fprintf(stderr, "%s: ", cmd->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void no_snapshot(const char *name)
{
	fail(NULL, "no snapshot named '%s'; 'snapshots' lists them", name);
}

static int too_many(const struct cmd *cmd, char **argv, int argc, int max)
{
	if (argc - 1 <= max)
		return 0;
	fail(cmd, "unexpected argument '%s'; see 'help %s'", argv[max + 1],
	     cmd->name);
	return -1;
}

static int need_alive(struct hd_cli *c, const char *what)
{
	if (hd_session_alive(c->s))
		return 0;
	fflush(stdout);
	fprintf(stderr, "%s: the process has exited\n", what);
	return -1;
}

int hd_cli_exit_notice(struct hd_cli *c, char *buf, size_t len)
{
	int status;

	if (!hd_session_poll_exit(c->s, &status))
		return 0;
	hd_session_exit_line(c->s, status, buf, len);
	return 1;
}

/* Print the exit line now if the process has just exited (we are not
 * inside readline while a command runs). */
static int check_exit(struct hd_cli *c)
{
	char line[128];

	if (!hd_cli_exit_notice(c, line, sizeof(line)))
		return 0;
	printf("%s\n", line);
	fflush(stdout);
	return 1;
}

/* ---- waiting ---- */

enum wait_end { WAIT_DONE, WAIT_CANCEL, WAIT_KEY, WAIT_EXIT };

/* Let `seconds` pass while the process runs.  Ends early on a signal,
 * on a key (if `keys`: stdin is a terminal in non-canonical mode), or,
 * if `until_exit`, when the process exits.  Exit lines are printed as
 * they happen. */
static enum wait_end wait_for(struct hd_cli *c, double seconds, int keys,
			      int until_exit)
{
	double end = hd_now() + seconds;

	for (;;) {
		if (hd_prompt_cancel)
			return WAIT_CANCEL;
		if (check_exit(c) && until_exit)
			return WAIT_EXIT;
		double left = end - hd_now();
		if (left <= 0)
			return WAIT_DONE;
		struct pollfd p[3] = {
			{.fd = hd_prompt_signal_fd(), .events = POLLIN},
			{.fd = hd_session_exit_fd(c->s), .events = POLLIN},
			{.fd = keys ? 0 : -1, .events = POLLIN},
		};
		/* Wake at least every 100 ms: the exit hook does not fire
		 * for every way a process can die (SIGKILL). */
		int ms = left > 0.1 ? 100 : (int)(left * 1000) + 1;
		if (poll(p, 3, ms) < 0 && errno != EINTR)
			return WAIT_CANCEL;
		hd_prompt_drain_signals();
		if (keys && (p[2].revents & (POLLIN | POLLHUP))) {
			char ch;
			if (read(0, &ch, 1) <= 0 || ch)
				return WAIT_KEY;
		}
	}
}

/* ---- snapshot, snapshots ---- */

static void print_value(char *buf, size_t len, double v, enum hd_sample_index i)
{
	hd_report_format_value(buf, len, v, i, NULL);
}

static int cmd_snapshot(struct hd_cli *c, const struct cmd *cmd, char **argv,
			int argc)
{
	const struct hd_snap *snap;
	char bytes[32];

	if (argc < 2) {
		fail(cmd, "missing NAME; see 'help snapshot'");
		return -1;
	}
	if (too_many(cmd, argv, argc, 1) < 0)
		return -1;
	if (!hd_session_valid_name(argv[1])) {
		fail(cmd,
		     "bad name '%s': a name is not a number, has no blanks or "
		     "'/', and does not start with '-'",
		     argv[1]);
		return -1;
	}
	int r = hd_session_snapshot(c->s, argv[1], &snap);
	if (r < 0) {
		fail(cmd, "%s", hd_strerror(r));
		return -1;
	}
	print_value(bytes, sizeof(bytes), snap->total.inuse_space,
		    HD_INUSE_SPACE);
	printf("snapshot %s: %s in use (est.), %.0f objects, %llu samples, "
	       "at %.3fs\n",
	       snap->name, bytes, snap->total.inuse_objects,
	       (unsigned long long)snap->samples, snap->time);
	return 0;
}

static int cmd_snapshots(struct hd_cli *c, const struct cmd *cmd, char **argv,
			 int argc)
{
	const struct hd_snap *snaps[256];
	size_t n;

	if (too_many(cmd, argv, argc, 0) < 0)
		return -1;
	n = hd_session_list(c->s, snaps, HD_ARRAY_SIZE(snaps));
	if (n > HD_ARRAY_SIZE(snaps))
		n = HD_ARRAY_SIZE(snaps);
	if (n == 0) {
		printf("no snapshots; 'snapshot NAME' takes one\n");
		return 0;
	}
	int w = 4;
	for (size_t i = 0; i < n; i++)
		if ((int)strlen(snaps[i]->name) > w)
			w = (int)strlen(snaps[i]->name);
	printf("%-*s %10s %10s %10s %8s\n", w, "name", "time", "inuse",
	       "objects", "samples");
	for (size_t i = 0; i < n; i++) {
		char t[32], bytes[32];
		snprintf(t, sizeof(t), "%.3fs", snaps[i]->time);
		print_value(bytes, sizeof(bytes), snaps[i]->total.inuse_space,
			    HD_INUSE_SPACE);
		printf("%-*s %10s %10s %10.0f %8llu\n", w, snaps[i]->name, t,
		       bytes, snaps[i]->total.inuse_objects,
		       (unsigned long long)snaps[i]->samples);
	}
	return 0;
}

/* ---- top, list, traces, export ---- */

/* The snapshot a report is about, with -base applied.  *owned is what
 * the caller frees (the fresh "now" profile, and the diff). */
static const struct hd_snap *report_snap(struct hd_cli *c,
					 const struct cmd *cmd,
					 const struct hd_cli_report_args *a,
					 const char *name,
					 struct hd_snap *owned[2])
{
	const struct hd_snap *snap;

	owned[0] = owned[1] = NULL;
	if (name) {
		snap = hd_session_find(c->s, name);
		if (!snap) {
			no_snapshot(name);
			return NULL;
		}
	} else {
		snap = owned[0] = hd_session_now(c->s);
		if (!snap) {
			fail(cmd, "%s", hd_strerror(-HD_ENOMEM));
			return NULL;
		}
	}
	if (!a->base)
		return snap;
	const struct hd_snap *base = hd_session_find(c->s, a->base);
	if (!base) {
		no_snapshot(a->base);
		goto fail;
	}
	owned[1] = hd_snap_diff(snap, base);
	if (!owned[1]) {
		fail(cmd, "%s", hd_strerror(-HD_ENOMEM));
		goto fail;
	}
	/* Names come from the newer profile's address space. */
	owned[1]->symbols = snap->symbols;
	return owned[1];
fail:
	hd_snap_free(owned[0]);
	owned[0] = NULL;
	return NULL;
}

static void free_owned(struct hd_snap *owned[2])
{
	hd_snap_free(owned[1]);
	hd_snap_free(owned[0]);
}

/* A report or export's outcome: its message on failure. */
static int finish(const struct cmd *cmd, int r, const char *err)
{
	if (r < 0) {
		fail(cmd, "%s", err[0] ? err : hd_strerror(r));
		return -1;
	}
	return 0;
}

static int cmd_report(struct hd_cli *c, const struct cmd *cmd, char **argv,
		      int argc)
{
	struct hd_cli_report_args a;
	struct hd_snap *owned[2];
	char err[512] = "";

	if (hd_cli_parse_report_args(cmd->kind, argv + 1, argc - 1, &a, err,
				     sizeof(err)) < 0) {
		fail(cmd, "%s", err);
		return -1;
	}
	const struct hd_snap *snap = report_snap(c, cmd, &a, a.snapshot, owned);
	if (!snap)
		return -1;
	struct hd_report_opts o = {
		.index = a.index,
		.cum = a.cum,
		.unit = a.unit,
		.focus = a.focus,
		.ignore = a.ignore,
		.n = a.n,
	};
	hd_session_report_opts(snap, &o);
	int r;
	switch (cmd->kind) {
	case HD_CLI_LIST:
		r = hd_report_list(stdout, snap, a.regex, &o, err, sizeof(err));
		break;
	case HD_CLI_TRACES:
		r = hd_report_traces(stdout, snap, &o, err, sizeof(err));
		break;
	default:
		r = hd_report_top(stdout, snap, &o, err, sizeof(err));
		break;
	}
	free_owned(owned);
	return finish(cmd, r, err);
}

static int export_one(struct hd_cli *c, const struct cmd *cmd,
		      const struct hd_cli_report_args *a, const char *name,
		      const char *path)
{
	struct hd_snap *owned[2];
	struct hd_export_src src;
	char err[512] = "";
	int r;

	const struct hd_snap *snap = report_snap(c, cmd, a, name, owned);
	if (!snap)
		return -1;
	hd_session_export_src(c->s, snap, &src);
	if (a->folded)
		r = hd_export_folded(path, snap, a->index, &src, err,
				     sizeof(err));
	else
		r = hd_export_pprof(path, snap, &src, err, sizeof(err));
	free_owned(owned);
	return finish(cmd, r, err);
}

static int export_all(struct hd_cli *c, const struct cmd *cmd,
		      const struct hd_cli_report_args *a)
{
	const struct hd_snap *snaps[256];
	size_t n = hd_session_list(c->s, snaps, HD_ARRAY_SIZE(snaps));

	if (n > HD_ARRAY_SIZE(snaps))
		n = HD_ARRAY_SIZE(snaps);
	if (n == 0) {
		fail(cmd, "no snapshots to write; 'snapshot NAME' takes one");
		return -1;
	}
	if (mkdir(a->file, 0777) < 0 && errno != EEXIST) {
		fail(cmd, "cannot create %s: %s", a->file, strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s%s", a->file,
			 snaps[i]->name, a->folded ? ".folded" : ".pb.gz");
		if (export_one(c, cmd, a, snaps[i]->name, path) < 0)
			return -1;
	}
	printf("wrote %zu snapshot%s to %s\n", n, n == 1 ? "" : "s", a->file);
	return 0;
}

static int cmd_export(struct hd_cli *c, const struct cmd *cmd, char **argv,
		      int argc)
{
	struct hd_cli_report_args a;
	char err[512] = "";

	if (hd_cli_parse_report_args(HD_CLI_EXPORT, argv + 1, argc - 1, &a, err,
				     sizeof(err)) < 0) {
		fail(cmd, "%s", err);
		return -1;
	}
	if (a.all)
		return export_all(c, cmd, &a);
	if (export_one(c, cmd, &a, a.snapshot, a.file) < 0)
		return -1;
	printf("wrote %s\n", a.file);
	return 0;
}

/* ---- stats, watch ---- */

static void print_stats(struct hd_cli *c)
{
	char line[256];

	hd_session_stats_line(c->s, line, sizeof(line));
	printf("%s\n", line);
	fflush(stdout);
}

static int cmd_stats(struct hd_cli *c, const struct cmd *cmd, char **argv,
		     int argc)
{
	if (too_many(cmd, argv, argc, 0) < 0)
		return -1;
	print_stats(c);
	return 0;
}

static int parse_secs(const struct cmd *cmd, const char *s, double *out,
		      int positive)
{
	if (hd_cli_parse_seconds(s, out) < 0 || (positive && *out <= 0)) {
		fail(cmd, "bad duration '%s': expected %sseconds, e.g. 2 or 0.5",
		     s, positive ? "a positive number of " : "");
		return -1;
	}
	return 0;
}

/* Put the terminal in non-canonical, no-echo mode so a single key ends
 * watch; returns 1 if *saved must be restored. */
static int keys_on(struct termios *saved)
{
	struct termios t;

	if (tcgetattr(0, saved) < 0)
		return 0;
	t = *saved;
	t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	return tcsetattr(0, TCSANOW, &t) == 0;
}

static int cmd_watch(struct hd_cli *c, const struct cmd *cmd, char **argv,
		     int argc)
{
	double secs;
	int count = -1;
	struct termios saved;

	if (argc < 2) {
		fail(cmd, "missing SECONDS; see 'help watch'");
		return -1;
	}
	if (too_many(cmd, argv, argc, 2) < 0 ||
	    parse_secs(cmd, argv[1], &secs, 1) < 0)
		return -1;
	if (argc > 2 && hd_cli_parse_count(argv[2], &count) < 0) {
		fail(cmd, "bad count '%s': expected a positive number",
		     argv[2]);
		return -1;
	}
	int keys = c->interactive && keys_on(&saved);
	for (;;) {
		print_stats(c);
		if (count > 0 && --count == 0)
			break;
		if (!hd_session_alive(c->s)) {
			check_exit(c);
			break;
		}
		if (wait_for(c, secs, keys, 1) != WAIT_DONE)
			break;
	}
	if (keys)
		tcsetattr(0, TCSANOW, &saved);
	/* Ctrl-C is how watch is meant to end: not a failure. */
	return 0;
}

/* ---- rate, sleep, wait ---- */

static int cmd_rate(struct hd_cli *c, const struct cmd *cmd, char **argv,
		    int argc)
{
	char desc[96];
	uint64_t rate;

	if (too_many(cmd, argv, argc, 1) < 0)
		return -1;
	if (argc == 2) {
		if (hd_cli_parse_rate(argv[1], &rate) < 0) {
			fail(cmd, "bad rate '%s': %s", argv[1],
			     HD_CLI_RATE_HINT);
			return -1;
		}
		if (need_alive(c, cmd->name) < 0 ||
		    hd_session_set_rate(c->s, rate) < 0)
			return -1;
	}
	hd_cli_describe_rate(desc, sizeof(desc), hd_session_rate(c->s));
	printf("%s\n", desc);
	return 0;
}

static int cmd_sleep(struct hd_cli *c, const struct cmd *cmd, char **argv,
		     int argc)
{
	double secs;

	if (argc < 2) {
		fail(cmd, "missing SECONDS; see 'help sleep'");
		return -1;
	}
	if (too_many(cmd, argv, argc, 1) < 0 ||
	    parse_secs(cmd, argv[1], &secs, 0) < 0)
		return -1;
	if (wait_for(c, secs, 0, 0) == WAIT_CANCEL) {
		fail(cmd, "interrupted");
		return -1;
	}
	return 0;
}

static int cmd_wait(struct hd_cli *c, const struct cmd *cmd, char **argv,
		    int argc)
{
	double secs = -1;
	int status;
	char line[128];

	if (too_many(cmd, argv, argc, 1) < 0 ||
	    (argc == 2 && parse_secs(cmd, argv[1], &secs, 0) < 0))
		return -1;
	if (hd_session_wait_exit(c->s, secs, &status,
				 (volatile int *)&hd_prompt_cancel)) {
		hd_session_exit_line(c->s, status, line, sizeof(line));
		printf("%s\n", line);
		return 0;
	}
	if (hd_prompt_cancel) {
		fail(cmd, "interrupted");
		return -1;
	}
	if (!hd_session_alive(c->s)) {
		/* Detached or gone without a status. */
		fail(cmd, "the process is no longer traced");
		return -1;
	}
	printf("still running after %g s\n", secs);
	return 0;
}

/* ---- info ---- */

static int info_threads(struct hd_cli *c, const struct cmd *cmd)
{
	struct hd_thread_info *th = NULL;
	int n, max = 64;

	(void)cmd;
	if (need_alive(c, "info threads") < 0)
		return -1;
	for (;;) {
		struct hd_thread_info *t = realloc(th, (size_t)max * sizeof(*t));
		if (!t) {
			free(th);
			fail(cmd, "%s", hd_strerror(-HD_ENOMEM));
			return -1;
		}
		th = t;
		n = hd_tracer_threads(hd_session_tracer(c->s), th, max);
		if (n <= max)
			break;
		max = n + 16; /* threads were born meanwhile */
	}
	printf("%8s  %-5s  %s\n", "tid", "state", "name");
	for (int i = 0; i < n; i++)
		printf("%8d  %-5c  %s\n", (int)th[i].tid, th[i].state,
		       th[i].name);
	free(th);
	return 0;
}

struct libs {
	struct hd_sym_module_info *m;
	size_t n, cap;
};

static void collect_lib(void *ctx, const struct hd_sym_module_info *mi)
{
	struct libs *l = ctx;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 32;
		struct hd_sym_module_info *m = realloc(l->m, cap * sizeof(*m));
		if (!m)
			return;
		l->m = m;
		l->cap = cap;
	}
	/* The strings belong to the space and live as long as it does. */
	l->m[l->n++] = *mi;
}

static int info_libs(struct hd_cli *c, const struct cmd *cmd)
{
	struct libs l = {0};

	(void)cmd;
	hd_sym_modules(hd_session_symbols(c->s), 1, collect_lib, &l);
	printf("%-18s %-18s %-4s %-5s %s\n", "start", "end", "syms", "lines",
	       "path");
	for (size_t i = 0; i < l.n; i++) {
		const struct hd_sym_module_info *m = &l.m[i];
		printf("0x%016llx 0x%016llx %-4s %-5s %s%s\n",
		       (unsigned long long)m->start,
		       (unsigned long long)m->end,
		       m->has_symbols ? "yes" : "no",
		       m->has_lines ? "yes" : "no", m->path,
		       m->loaded ? "" : " (unloaded)");
	}
	free(l.m);
	return 0;
}

static int info_probes(struct hd_cli *c, const struct cmd *cmd)
{
	struct hd_probe_info p[64];

	(void)cmd;
	int n = hd_tracer_probes(hd_session_tracer(c->s), p,
				 (int)HD_ARRAY_SIZE(p));
	if (n > (int)HD_ARRAY_SIZE(p))
		n = (int)HD_ARRAY_SIZE(p);
	if (n <= 0) {
		printf("no probes armed\n");
		return 0;
	}
	printf("%-16s %-18s %-20s %s\n", "name", "address", "module",
	       "method");
	for (int i = 0; i < n; i++) {
		const char *base = strrchr(p[i].module, '/');
		printf("%-16s 0x%016llx %-20s %s\n", p[i].name,
		       (unsigned long long)p[i].addr,
		       base ? base + 1 : p[i].module, p[i].method);
	}
	return 0;
}

static const struct info {
	const char *name;
	int (*fn)(struct hd_cli *c, const struct cmd *cmd);
} infos[] = {
	{"threads", info_threads},
	{"libs", info_libs},
	{"probes", info_probes},
};

static int cmd_info(struct hd_cli *c, const struct cmd *cmd, char **argv,
		    int argc)
{
	if (argc < 2) {
		fail(cmd, "missing what; try 'info threads', 'info libs' or "
			  "'info probes'");
		return -1;
	}
	if (too_many(cmd, argv, argc, 1) < 0)
		return -1;
	for (size_t i = 0; i < HD_ARRAY_SIZE(infos); i++)
		if (hd_cli_abbrev_match(argv[1], infos[i].name, 1))
			return infos[i].fn(c, cmd);
	fail(cmd, "unknown subcommand '%s'; try 'info threads', 'info libs' "
		  "or 'info probes'",
	     argv[1]);
	return -1;
}

/* ---- detach, kill, quit ---- */

static int cmd_detach(struct hd_cli *c, const struct cmd *cmd, char **argv,
		      int argc)
{
	if (too_many(cmd, argv, argc, 0) < 0)
		return -1;
	int alive = hd_session_alive(c->s);
	int r = hd_session_detach(c->s);
	if (r < 0) {
		fail(cmd, "%s", hd_strerror(r));
		return -1;
	}
	if (alive)
		printf("detached from %d (%s)\n", (int)hd_session_pid(c->s),
		       hd_session_comm(c->s));
	c->finished = 1;
	return 0;
}

static int cmd_kill(struct hd_cli *c, const struct cmd *cmd, char **argv,
		    int argc)
{
	int status;
	char line[128];

	if (too_many(cmd, argv, argc, 0) < 0)
		return -1;
	if (!hd_session_run_mode(c->s)) {
		fail(cmd, "heapdbg did not start %d; use detach",
		     (int)hd_session_pid(c->s));
		return -1;
	}
	if (need_alive(c, cmd->name) < 0)
		return -1;
	int r = hd_session_kill(c->s, &status);
	if (r < 0) {
		fail(cmd, "%s", hd_strerror(r));
		return -1;
	}
	hd_session_exit_line(c->s, status, line, sizeof(line));
	printf("%s\n", line);
	return 0;
}

static int cmd_quit(struct hd_cli *c, const struct cmd *cmd, char **argv,
		    int argc)
{
	if (too_many(cmd, argv, argc, 0) < 0)
		return -1;
	c->finished = 1;
	return hd_cli_finish(c);
}

int hd_cli_finish(struct hd_cli *c)
{
	int status, r;
	char line[128];

	check_exit(c);
	if (!hd_session_alive(c->s))
		return 0;
	if (hd_session_run_mode(c->s)) {
		/* We started it: like gdb, leaving means killing it. */
		r = hd_session_kill(c->s, &status);
		if (r == 0 && !c->quiet) {
			hd_session_exit_line(c->s, status, line, sizeof(line));
			printf("%s\n", line);
		}
	} else {
		r = hd_session_detach(c->s);
		if (r == 0 && !c->quiet)
			printf("detached from %d (%s)\n",
			       (int)hd_session_pid(c->s),
			       hd_session_comm(c->s));
	}
	fflush(stdout);
	if (r < 0) {
		fail(NULL, "heapdbg: cannot %s %d: %s",
		     hd_session_run_mode(c->s) ? "kill" : "detach from",
		     (int)hd_session_pid(c->s), hd_strerror(r));
		return -1;
	}
	return 0;
}

/* ---- help ---- */

static int cmd_help(struct hd_cli *c, const struct cmd *cmd, char **argv,
		    int argc);

#define FLAGS_HELP                                                           \
	"FLAGS (as in pprof):\n"                                             \
	"  -base NAME      subtract snapshot NAME: the growth since then\n"  \
	"  -inuse_space    bytes allocated and not freed (the default)\n"    \
	"  -inuse_objects  objects allocated and not freed\n"                \
	"  -alloc_space    bytes allocated since start\n"                    \
	"  -alloc_objects  objects allocated since start\n"

#define REPORT_FLAGS_HELP                                                    \
	FLAGS_HELP                                                           \
	"  -cum            sort by cumulative value\n"                       \
	"  -unit=U         B, KB, MB, GB or auto\n"                          \
	"  -focus=REGEX    only stacks with a function matching REGEX\n"     \
	"  -ignore=REGEX   drop stacks with a function matching REGEX\n"     \
	"Without SNAPSHOT, the profile as it is now.\n"

static const struct cmd cmds[] = {
	{"snapshot", 4, "snapshot NAME", "record the profile now under NAME",
	 "Record the current profile under NAME, replacing an older one of\n"
	 "that name, and print a one-line summary.  When the process\n"
	 "exits, a snapshot named 'exit' is taken by itself.\n",
	 cmd_snapshot, HD_COMPLETE_SNAPSHOT, 0},
	{"snapshots", 9, "snapshots", "list the snapshots",
	 "List the snapshots: name, time since start, bytes and objects in\n"
	 "use (estimated), and the number of samples behind them.\n",
	 cmd_snapshots, HD_COMPLETE_NONE, 0},
	{"top", 3, "top [N] [FLAGS] [SNAPSHOT]",
	 "the N heaviest functions (default 10)",
	 "Print the N (default 10) heaviest functions, as go tool pprof's\n"
	 "top does.\n" REPORT_FLAGS_HELP,
	 cmd_report, HD_COMPLETE_REPORT, HD_CLI_TOP},
	{"list", 1, "list REGEX [FLAGS] [SNAPSHOT]",
	 "annotated source of matching functions",
	 "Print the source of every function whose name matches REGEX, each\n"
	 "line with its flat and cumulative values, as go tool pprof's list\n"
	 "does.\n" REPORT_FLAGS_HELP,
	 cmd_report, HD_COMPLETE_REPORT, HD_CLI_LIST},
	{"traces", 2, "traces [N] [FLAGS] [SNAPSHOT]",
	 "the N heaviest stacks",
	 "Print the N heaviest full stacks, heaviest first.\n"
	 REPORT_FLAGS_HELP,
	 cmd_report, HD_COMPLETE_REPORT, HD_CLI_TRACES},
	{"stats", 2, "stats", "one line: heap growth, rates, rss",
	 "Print one gctrace-style line:\n"
	 "  heap 7 @12.004s: 31.2->35.0 MB in use (est.), +0.31 MB/s, "
	 "18.2k allocs/s,\n"
	 "  18.0k frees/s, rss 52.4 MB, 64 samples, 4 threads\n"
	 "7: the line's number; @: time since start; A->B: bytes in use at\n"
	 "the previous line (or at start) and now; then the growth, and\n"
	 "objects allocated and freed per second since the previous line;\n"
	 "the resident set size, sampled allocations, and traced threads.\n",
	 cmd_stats, HD_COMPLETE_NONE, 0},
	{"watch", 3, "watch SECONDS [COUNT]", "a stats line every SECONDS",
	 "Print a stats line now and every SECONDS after, COUNT lines in\n"
	 "all, or until a key is pressed, Ctrl-C, or the process exits.\n",
	 cmd_watch, HD_COMPLETE_NONE, 0},
	{"export", 3, "export FILE [FLAGS] [SNAPSHOT]",
	 "write a pprof profile (or -all DIR)",
	 "Write a gzipped pprof profile.proto that go tool pprof and pprof\n"
	 "read (with -base: the difference, as pprof's -diff_base).  FILE\n"
	 "ending in .folded, or -format=folded, writes folded stacks for\n"
	 "flame graphs instead.  'export -all DIR' writes every snapshot as\n"
	 "DIR/NAME.pb.gz.\n" FLAGS_HELP
	 "  -format=F       pprof (the default) or folded\n"
	 "Without SNAPSHOT, the profile as it is now.\n",
	 cmd_export, HD_COMPLETE_EXPORT, HD_CLI_EXPORT},
	{"rate", 2, "rate [BYTES]", "show or change the sampling interval",
	 "Show the mean sampling interval, or change it to BYTES (k, m, g\n"
	 "suffixes; 1 records every allocation).  Allocations already\n"
	 "sampled keep their weights.\n",
	 cmd_rate, HD_COMPLETE_NONE, 0},
	{"sleep", 2, "sleep SECONDS", "wait while the process runs",
	 "Wait SECONDS while the process runs (for scripts).\n", cmd_sleep,
	 HD_COMPLETE_NONE, 0},
	{"wait", 3, "wait [SECONDS]", "wait until the process exits",
	 "Wait until the process exits, or SECONDS pass, or Ctrl-C.\n",
	 cmd_wait, HD_COMPLETE_NONE, 0},
	{"info", 1, "info threads|libs|probes",
	 "traced threads, modules, probes",
	 "info threads   traced threads: id, state, name\n"
	 "info libs      loaded modules: address range, whether they have\n"
	 "               symbols and line info, path\n"
	 "info probes    the allocator entry points armed, and how\n",
	 cmd_info, HD_COMPLETE_INFO, 0},
	{"detach", 3, "detach", "let the process go, then exit",
	 "Restore every byte heapdbg changed in the process, let it run on,\n"
	 "and exit heapdbg.\n",
	 cmd_detach, HD_COMPLETE_NONE, 0},
	{"kill", 1, "kill", "kill a process started with run",
	 "Kill the process heapdbg started with 'run'.  The prompt stays\n"
	 "open to inspect what was recorded.\n",
	 cmd_kill, HD_COMPLETE_NONE, 0},
	{"quit", 1, "quit", "detach (or kill, after run) and exit",
	 "Detach from the process (or kill it, if heapdbg started it) and\n"
	 "exit.  End of input does the same.\n",
	 cmd_quit, HD_COMPLETE_NONE, 0},
	{"help", 1, "help [COMMAND]", "this list, or one command in detail",
	 "Without COMMAND, list the commands; with one, describe it.\n",
	 cmd_help, HD_COMPLETE_COMMAND, 0},
};

static const struct cmd *lookup(const char *word)
{
	for (size_t i = 0; i < HD_ARRAY_SIZE(cmds); i++)
		if (strcmp(word, cmds[i].name) == 0)
			return &cmds[i];
	for (size_t i = 0; i < HD_ARRAY_SIZE(cmds); i++)
		if (hd_cli_abbrev_match(word, cmds[i].name, cmds[i].min))
			return &cmds[i];
	return NULL;
}

static int cmd_help(struct hd_cli *c, const struct cmd *cmd, char **argv,
		    int argc)
{
	(void)c;
	if (too_many(cmd, argv, argc, 1) < 0)
		return -1;
	if (argc == 2) {
		const struct cmd *h = lookup(argv[1]);
		if (!h) {
			fail(cmd, "unknown command '%s'; try 'help'", argv[1]);
			return -1;
		}
		printf("usage: %s\n%s", h->usage, h->help);
		return 0;
	}
	for (size_t i = 0; i < HD_ARRAY_SIZE(cmds); i++)
		printf("%-32s %s\n", cmds[i].usage, cmds[i].summary);
	printf("\nCommands may be abbreviated (l, i, k, q, h, snap, tr, st...).\n"
	       "'help COMMAND' describes one, with its flags.\n");
	return 0;
}

/* ---- dispatch ---- */

int hd_cli_execute(struct hd_cli *c, const char *line)
{
	char **argv;
	int argc, r;
	char err[128];

	if (hd_cli_tokenize(line, &argv, &argc, err, sizeof(err)) < 0) {
		fail(NULL, "%s", err);
		c->failed++;
		return -1;
	}
	if (argc == 0) {
		hd_cli_words_free(argv);
		return 0;
	}
	const struct cmd *cmd = lookup(argv[0]);
	if (!cmd) {
		fail(NULL, "unknown command '%s'; try 'help'", argv[0]);
		r = -1;
	} else {
		r = cmd->fn(c, cmd, argv, argc) < 0 ? -1 : 0;
	}
	hd_cli_words_free(argv);
	fflush(stdout);
	if (r < 0)
		c->failed++;
	return r;
}

/* ---- completion ---- */

const char *hd_cli_command_name(size_t i)
{
	return i < HD_ARRAY_SIZE(cmds) ? cmds[i].name : NULL;
}

const char *hd_cli_info_name(size_t i)
{
	return i < HD_ARRAY_SIZE(infos) ? infos[i].name : NULL;
}

enum hd_cli_complete hd_cli_completion(const char *word,
				       enum hd_cli_report_kind *kind)
{
	const struct cmd *cmd = lookup(word);

	if (!cmd)
		return HD_COMPLETE_NONE;
	*kind = cmd->kind;
	return cmd->complete;
}
