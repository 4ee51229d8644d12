#include "diagnose.h"

#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/hd.h"
#include "../common/proc.h"

#define CAP_SYS_PTRACE_BIT 19

int hd_cli_proc_status(pid_t pid, const char *key, char *out, size_t len)
{
	return hd_proc_status(pid, key, out, len) ? -1 : 0;
}

void hd_cli_proc_comm(pid_t pid, char *out, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(out, (int)len, f))
		snprintf(out, len, "?");
	else
		out[strcspn(out, "\n")] = '\0';
	if (f)
		fclose(f);
}

static int yama_scope(void)
{
	FILE *f = fopen("/proc/sys/kernel/yama/ptrace_scope", "r");
	int v = -1;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int have_cap_sys_ptrace(void)
{
	char v[64];

	if (hd_cli_proc_status(0, "CapEff", v, sizeof(v)) < 0)
		return geteuid() == 0;
	return (strtoull(v, NULL, 16) >> CAP_SYS_PTRACE_BIT) & 1;
}

/* The process's real uid if any of real/effective/saved differs from
 * ours (the kernel wants all three to match), else -1. */
static long foreign_uid(pid_t pid)
{
	char v[128];
	unsigned long r, e, s;
	unsigned long me = (unsigned long)geteuid();

	if (hd_cli_proc_status(pid, "Uid", v, sizeof(v)) < 0 ||
	    sscanf(v, "%lu %lu %lu", &r, &e, &s) != 3)
		return -1;
	if (r != me)
		return (long)r;
	if (e != me)
		return (long)e;
	if (s != me)
		return (long)s;
	return -1;
}

static const char *yama_fix =
	"run as root or set /proc/sys/kernel/yama/ptrace_scope to 0";

/* Why ptrace said EPERM, most specific first. */
static void explain_perm(char *buf, size_t len, pid_t pid)
{
	int scope = yama_scope();
	int cap = have_cap_sys_ptrace();
	long uid = foreign_uid(pid);

	if (scope == 3) {
		snprintf(buf, len,
			 "Yama ptrace_scope is 3: ptrace is disabled until "
			 "reboot");
		return;
	}
	if (cap) {
		snprintf(buf, len,
			 "a security module (AppArmor, SELinux) or a "
			 "seccomp filter forbids ptrace here");
		return;
	}
	if (geteuid() == 0) {
		snprintf(buf, len,
			 "heapdbg runs as root but without CAP_SYS_PTRACE; in "
			 "a container, add it (docker run --cap-add=SYS_PTRACE)");
		return;
	}
	if (uid >= 0) {
		struct passwd *pw = getpwuid((uid_t)uid);
		snprintf(buf, len,
			 "it belongs to user %s (uid %ld) and heapdbg lacks "
			 "CAP_SYS_PTRACE; run heapdbg as that user or as root",
			 pw ? pw->pw_name : "?", uid);
		return;
	}
	if (scope == 1 || scope == 2) {
		snprintf(buf, len, "Yama ptrace_scope is %d: %s; %s", scope,
			 scope == 1 ? "only a parent may trace its children"
				    : "only CAP_SYS_PTRACE may trace",
			 yama_fix);
		return;
	}
	snprintf(buf, len,
		 "it is not dumpable (setuid or prctl(PR_SET_DUMPABLE, 0)); "
		 "run as root");
}

static void explain_traced(char *buf, size_t len, pid_t pid, const char *why)
{
	char v[32], comm[32];
	long tracer = 0;

	if (hd_cli_proc_status(pid, "TracerPid", v, sizeof(v)) == 0)
		tracer = strtol(v, NULL, 10);
	if (tracer <= 0) {
		snprintf(buf, len, "%s", why && *why ? why : "");
		return;
	}
	hd_cli_proc_comm((pid_t)tracer, comm, sizeof(comm));
	snprintf(buf, len, "traced by %ld (%s); detach it first", tracer, comm);
}

/* The parenthesized part of the message for err. */
static void explain(char *buf, size_t len, pid_t pid, int err, const char *why)
{
	const char *fix = NULL;

	buf[0] = '\0';
	switch (-err) {
	case HD_EPERM:
		explain_perm(buf, len, pid);
		return;
	case HD_ETRACED:
		explain_traced(buf, len, pid, why);
		return;
	case HD_ENOPROC:
		fix = "check the id with 'ps'";
		break;
	case HD_ESELF:
		fix = "that is heapdbg's own process id";
		break;
	case HD_ENOTX64:
		fix = "heapdbg traces x86-64 processes only";
		break;
	case HD_ENOALLOC:
		fix = "no module defines malloc; a static, stripped "
		      "executable cannot be traced";
		break;
	case HD_EZOMBIE:
		fix = "it has exited and waits for its parent to reap it";
		break;
	case HD_EKTHREAD:
		fix = "kernel threads have no heap";
		break;
	default:
		break;
	}
	if (why && *why && fix)
		snprintf(buf, len, "%s; %s", why, fix);
	else if (why && *why)
		snprintf(buf, len, "%s", why);
	else if (fix)
		snprintf(buf, len, "%s", fix);
}

void hd_cli_attach_error(char *buf, size_t len, pid_t pid, int err,
			 const char *why)
{
	char detail[512];

	explain(detail, sizeof(detail), pid, err, why);
	if (detail[0])
		snprintf(buf, len, "cannot attach to %d: %s (%s)", (int)pid,
			 hd_strerror(err), detail);
	else
		snprintf(buf, len, "cannot attach to %d: %s", (int)pid,
			 hd_strerror(err));
}

void hd_cli_run_error(char *buf, size_t len, const char *prog, int err,
		      const char *why)
{
	char detail[512];

	/* The child's pid means nothing to the user: no /proc lookups. */
	explain(detail, sizeof(detail), 0, err == -HD_EPERM ? -HD_EINTERNAL : err,
		why);
	if (err == -HD_EPERM && !detail[0])
		snprintf(detail, sizeof(detail), "%s", yama_fix);
	if (detail[0])
		snprintf(buf, len, "cannot run %s: %s (%s)", prog,
			 hd_strerror(err), detail);
	else
		snprintf(buf, len, "cannot run %s: %s", prog, hd_strerror(err));
}
