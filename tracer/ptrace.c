/* Thin wrappers around ptrace(2) and tracee memory access.
 *
 * Every wrapper returns 0 or -errno and saves nothing else: the caller
 * decides what ESRCH (thread gone) means in its context. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>

#include "internal.h"

static int pt(enum __ptrace_request req, pid_t tid, void *addr, void *data)
{
	if (ptrace(req, tid, addr, data) == -1)
		return -errno;
	return 0;
}

int hd_pt_seize(pid_t tid, unsigned long options)
{
	return pt(PTRACE_SEIZE, tid, NULL, (void *)options);
}

int hd_pt_interrupt(pid_t tid)
{
	return pt(PTRACE_INTERRUPT, tid, NULL, NULL);
}

int hd_pt_cont(pid_t tid, int sig)
{
	return pt(PTRACE_CONT, tid, NULL, (void *)(long)sig);
}

int hd_pt_listen(pid_t tid)
{
	return pt(PTRACE_LISTEN, tid, NULL, NULL);
}

int hd_pt_detach(pid_t tid, int sig)
{
	return pt(PTRACE_DETACH, tid, NULL, (void *)(long)sig);
}

int hd_pt_getregs(pid_t tid, struct user_regs_struct *r)
{
	return pt(PTRACE_GETREGS, tid, NULL, r);
}

int hd_pt_setregs(pid_t tid, const struct user_regs_struct *r)
{
	return pt(PTRACE_SETREGS, tid, NULL, (void *)r);
}

int hd_pt_geteventmsg(pid_t tid, unsigned long *msg)
{
	return pt(PTRACE_GETEVENTMSG, tid, NULL, msg);
}

int hd_pt_getsiginfo(pid_t tid, siginfo_t *si)
{
	return pt(PTRACE_GETSIGINFO, tid, NULL, si);
}

ssize_t hd_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {buf, len};
	struct iovec remote = {(void *)(uintptr_t)addr, len};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	return n < 0 ? -errno : n;
}

int hd_mem_read_full(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	ssize_t n = hd_mem_read(pid, addr, buf, len);
	if (n < 0)
		return (int)n;
	return (size_t)n == len ? 0 : -EIO;
}

int hd_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	char fn[64];
	snprintf(fn, sizeof(fn), "/proc/%d/mem", (int)pid);
	int fd = open(fn, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	ssize_t n = pwrite(fd, buf, len, (off_t)addr);
	int err = n < 0 ? -errno : ((size_t)n == len ? 0 : -EIO);
	close(fd);
	return err;
}
