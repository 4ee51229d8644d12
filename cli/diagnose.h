/* cli/diagnose: turn a failed attach or run into the one line the user
 * reads: the cause and, where there is one, the fix.  The tracer returns
 * a -HD_E* code and a short `why`; the fix depends on context the cli
 * can look up (/proc/PID/status, Yama's ptrace_scope, our capabilities).
 */
#ifndef HD_CLI_DIAGNOSE_H
#define HD_CLI_DIAGNOSE_H

#include <stddef.h>
#include <sys/types.h>

/* "cannot attach to PID: <message> (<why or fix>)", without the
 * "heapdbg: " prefix.  `why` may be NULL or empty. */
void hd_cli_attach_error(char *buf, size_t len, pid_t pid, int err,
			 const char *why);

/* "cannot run PROGRAM: <message> (<why>)". */
void hd_cli_run_error(char *buf, size_t len, const char *prog, int err,
		      const char *why);

/* Helpers, exposed for tests: the value of field `key` ("TracerPid",
 * "Uid", ...) in /proc/PID/status (pid 0: self) copied to out; 0 or -1. */
int hd_cli_proc_status(pid_t pid, const char *key, char *out, size_t len);
/* /proc/PID/comm without the newline, or "?" */
void hd_cli_proc_comm(pid_t pid, char *out, size_t len);

#endif
