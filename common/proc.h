/* Reading /proc/PID/stat and /proc/PID/status, for tracer/ and cli/. */
#ifndef HD_PROC_H
#define HD_PROC_H

#include <stddef.h>
#include <sys/types.h>

#include "hd.h"

struct hd_proc_stat {
	char comm[16];
	char state;          /* R, S, D, t, T, Z, X... */
	unsigned long flags; /* PF_* */
};

#define HD_PF_EXITING 0x4UL
#define HD_PF_KTHREAD 0x00200000UL

/* /proc/PID/stat, or /proc/PID/task/TID/stat when tid != 0.  Returns 0
 * or -HD_ENOPROC. */
int hd_proc_stat(pid_t pid, pid_t tid, struct hd_proc_stat *st)
	HD_MUST_CHECK;
/* The value of field `key` of /proc/PID/status (pid 0: our own), blanks
 * trimmed.  Returns 0, -HD_ENOPROC, or -HD_ENOTFOUND. */
int hd_proc_status(pid_t pid, const char *key, char *val, size_t len)
	HD_MUST_CHECK;

#endif
