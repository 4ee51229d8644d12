/* cli/session: one traced process and everything recorded about it.
 *
 * Owns the tracer, the profile (one per session), the symbol spaces (a
 * new one per exec; older ones are kept because older snapshots point at
 * them), the named snapshots and the start time.  The tracer's hooks run
 * on the tracer thread; everything else here is called from the prompt
 * thread.  Snapshots returned stay valid until hd_session_free(), even
 * when a newer one replaces them under the same name.
 */
#ifndef HD_SESSION_H
#define HD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/hd.h"
#include "../profile/pprof/export.h"
#include "../profile/profile.h"
#include "report.h"

struct hd_session;

struct hd_session_opts {
	uint64_t rate; /* mean sampling interval in bytes */
	int level0;    /* breakpoints only, no in-tracee agent */
};

/* Attach to pid / start argv traced.  On failure returns -HD_E* with the
 * user's line (without "heapdbg: ") in err. */
int hd_session_attach(pid_t pid, const struct hd_session_opts *o,
		      struct hd_session **out, char *err,
		      size_t errlen) HD_MUST_CHECK;
int hd_session_run(char *const argv[], const struct hd_session_opts *o,
		   struct hd_session **out, char *err,
		   size_t errlen) HD_MUST_CHECK;
/* Detaches first if still attached. */
void hd_session_free(struct hd_session *s);

pid_t hd_session_pid(const struct hd_session *s);
const char *hd_session_comm(const struct hd_session *s);
int hd_session_run_mode(const struct hd_session *s);
struct hd_tracer *hd_session_tracer(struct hd_session *s);
/* Seconds since the session started. */
double hd_session_elapsed(const struct hd_session *s);

/* Sampling interval in force. */
uint64_t hd_session_rate(struct hd_session *s);
/* -HD_EGONE once the process has exited. */
int hd_session_set_rate(struct hd_session *s, uint64_t rate) HD_MUST_CHECK;

/* ---- the process's life ---- */

/* 1 while the process runs and is traced. */
int hd_session_alive(struct hd_session *s);
/* 1 exactly once, when the process is first seen to have exited (its
 * wait status in *status); 0 otherwise.  Cheap: called between commands
 * and from waiting loops. */
int hd_session_poll_exit(struct hd_session *s, int *status);
/* "[process 4242 exited with status 0]" /
 * "[process 4242 killed by signal SIGSEGV]". */
void hd_session_exit_line(const struct hd_session *s, int status, char *buf,
			  size_t len);
/* A file descriptor that becomes readable when the process is about to
 * exit (for poll() loops; never read it yourself). */
int hd_session_exit_fd(const struct hd_session *s);
/* Wait for the exit (timeout < 0: forever; *cancel polled).  1 if it
 * exited (status in *status), 0 on timeout or cancel. */
int hd_session_wait_exit(struct hd_session *s, double timeout, int *status,
			 volatile int *cancel);

/* Detach, restoring the process (a process that is gone is not an
 * error).  Kill (run mode): SIGKILL and reap, status in *status. */
int hd_session_detach(struct hd_session *s) HD_MUST_CHECK;
int hd_session_kill(struct hd_session *s, int *status) HD_MUST_CHECK;

/* ---- snapshots ---- */

/* A valid snapshot name: not empty, not a number, no '/', no leading
 * '-' (it would read as a flag), printable. */
int hd_session_valid_name(const char *name);
/* Take and store snapshot `name` (replacing an older one). */
int hd_session_snapshot(struct hd_session *s, const char *name,
			const struct hd_snap **out) HD_MUST_CHECK;
/* The profile now, not stored: free with hd_snap_free(). */
struct hd_snap *hd_session_now(struct hd_session *s);
/* NULL if there is no snapshot of that name. */
const struct hd_snap *hd_session_find(struct hd_session *s, const char *name);
/* Stored snapshots in the order they were taken; returns the count and
 * fills up to max. */
size_t hd_session_list(struct hd_session *s, const struct hd_snap **out,
		       size_t max);

/* ---- reports ---- */

/* Fill o's resolve/source_line/ctx for snapshot snap. */
void hd_session_report_opts(const struct hd_snap *snap,
			    struct hd_report_opts *o);
void hd_session_export_src(const struct hd_session *s,
			   const struct hd_snap *snap,
			   struct hd_export_src *src);

/* ---- stats ---- */

/* The next stats line (advances the line counter and the reference
 * point of the rates). */
void hd_session_stats_line(struct hd_session *s, char *buf, size_t len);

/* The current symbol space (for info libs). */
struct hd_sym_space *hd_session_symbols(struct hd_session *s);

#endif
