#include "proc.h"

#include <stdio.h>
#include <string.h>

int hd_proc_stat(pid_t pid, pid_t tid, struct hd_proc_stat *st)
{
	char fn[96], buf[1024];
	if (tid)
		snprintf(fn, sizeof(fn), "/proc/%d/task/%d/stat", (int)pid,
			 (int)tid);
	else
		snprintf(fn, sizeof(fn), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(fn, "re");
	if (!f)
		return -HD_ENOPROC;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ppid pgrp session tty_nr tpgid flags ...": comm
	 * may hold spaces and parentheses, so it ends at the last ')'. */
	char *l = strchr(buf, '('), *r = strrchr(buf, ')');
	if (!l || !r || r < l || r[1] != ' ')
		return -HD_ENOPROC;
	size_t len = (size_t)(r - l - 1);
	if (len >= sizeof(st->comm))
		len = sizeof(st->comm) - 1;
	memcpy(st->comm, l + 1, len);
	st->comm[len] = '\0';
	st->state = r[2];
	st->flags = 0;
	if (sscanf(r + 2, "%*c %*d %*d %*d %*d %*d %lu", &st->flags) != 1)
		st->flags = 0;
	return 0;
}

int hd_proc_status(pid_t pid, const char *key, char *val, size_t len)
{
	char fn[64], line[512];
	size_t kl = strlen(key);
	if (pid)
		snprintf(fn, sizeof(fn), "/proc/%d/status", (int)pid);
	else
		snprintf(fn, sizeof(fn), "/proc/self/status");
	FILE *f = fopen(fn, "re");
	if (!f)
		return -HD_ENOPROC;
	int err = -HD_ENOTFOUND;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, kl) != 0 || line[kl] != ':')
			continue;
		char *v = line + kl + 1;
		v += strspn(v, " \t");
		v[strcspn(v, "\n")] = '\0';
		snprintf(val, len, "%s", v);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}
