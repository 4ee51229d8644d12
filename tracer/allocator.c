/* Finding the allocator the process really uses.
 *
 * The dynamic linker binds `malloc` to the first module in the link map
 * (executable first, then libraries in load order) that defines it in
 * .dynsym, and glibc's own internal callers (strdup, fopen, getline...)
 * call through that binding too.  So the definition to instrument is the
 * first one in link-map order.  The link map is read from the dynamic
 * linker's _r_debug, as gdb does; a static executable has none and
 * provides everything itself (.symtab). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

const char *const hd_entry_names[HD_ENTRY__COUNT] = {
	[HD_MALLOC] = "malloc",
	[HD_CALLOC] = "calloc",
	[HD_REALLOC] = "realloc",
	[HD_REALLOCARRAY] = "reallocarray",
	[HD_FREE] = "free",
	[HD_POSIX_MEMALIGN] = "posix_memalign",
	[HD_ALIGNED_ALLOC] = "aligned_alloc",
	[HD_MEMALIGN] = "memalign",
	[HD_VALLOC] = "valloc",
	[HD_PVALLOC] = "pvalloc",
};

/* struct r_debug and struct link_map (glibc <link.h>), as laid out in an
 * x86-64 process. */
enum {
	R_DEBUG_MAP = 8,
	R_DEBUG_BRK = 16,
	LM_ADDR = 0,
	LM_NAME = 8,
	LM_NEXT = 24,
};

/* Files of the process are opened through /proc/PID/root so that a
 * process in another mount namespace (a container) works too. */
static void proc_path(pid_t pid, const char *path, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/%d/root%s", (int)pid, path);
}

static int read_u64(pid_t pid, uint64_t addr, uint64_t *v)
{
	return hd_mem_read_full(pid, addr, v, sizeof(*v)) ? -HD_EIO : 0;
}

static int read_string(pid_t pid, uint64_t addr, char *buf, size_t len)
{
	ssize_t n = hd_mem_read(pid, addr, buf, len - 1);
	if (n <= 0)
		return -HD_EIO;
	buf[n] = '\0';
	return 0;
}

void hd_providers_clear(struct hd_providers *p)
{
	for (int k = 0; k < HD_ENTRY__COUNT; k++)
		free(p->module[k]);
	memset(p, 0, sizeof(*p));
}

static int exe_path(pid_t pid, char *buf, size_t len)
{
	char fn[64];
	snprintf(fn, sizeof(fn), "/proc/%d/exe", (int)pid);
	ssize_t n = readlink(fn, buf, len - 1);
	if (n < 0)
		return errno == EACCES ? -HD_EPERM : -HD_ENOPROC;
	buf[n] = '\0';
	return 0;
}

/* Base of the mapping of `path` (by inode) at file offset 0. */
static int module_start(const struct hd_maps *m, pid_t pid, const char *path,
			uint64_t *start, char *mapped, size_t len)
{
	char full[PATH_MAX + 64];
	struct stat st;
	proc_path(pid, path, full, sizeof(full));
	if (stat(full, &st) != 0)
		return -HD_ENOTFOUND;
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].inode == st.st_ino && m->v[i].offset == 0 &&
		    m->v[i].path) {
			*start = m->v[i].start;
			snprintf(mapped, len, "%s", m->v[i].path);
			return 0;
		}
	}
	return -HD_ENOTFOUND;
}

int hd_find_rtld(pid_t pid, struct hd_providers *p)
{
	char exe[PATH_MAX], full[PATH_MAX + 64], ld[PATH_MAX];
	struct hd_maps m;
	int err = exe_path(pid, exe, sizeof(exe));
	if (err)
		return err;
	proc_path(pid, exe, full, sizeof(full));
	err = hd_elf_check_x64(full);
	if (err)
		return err;
	err = hd_elf_interp(full, p->interp, sizeof(p->interp));
	if (err || !p->interp[0])
		return err; /* static: no dynamic linker */
	err = hd_maps_read(pid, &m);
	if (err)
		return err;
	uint64_t start, bias, rdebug, brk;
	int etype;
	err = module_start(&m, pid, p->interp, &start, ld, sizeof(ld));
	hd_maps_free(&m);
	if (err)
		return err;
	proc_path(pid, ld, full, sizeof(full));
	if (hd_elf_bias(full, start, 0, &bias, &etype) ||
	    hd_elf_lookup(full, "_r_debug", false, &rdebug, NULL) ||
	    hd_elf_lookup(full, "_dl_debug_state", false, &brk,
			  &p->r_brk_size))
		return -HD_EELF;
	p->r_debug = bias + rdebug;
	p->r_brk = bias + brk;
	return 0;
}

/* Look every entry point not yet found up in one module. */
static void scan_module(pid_t pid, const char *path, uint64_t bias,
			bool symtab, struct hd_providers *p)
{
	char full[PATH_MAX + 64];
	uint64_t v[HD_ENTRY__COUNT], size[HD_ENTRY__COUNT];
	proc_path(pid, path, full, sizeof(full));
	if (hd_elf_lookup_many(full, hd_entry_names, HD_ENTRY__COUNT, symtab,
			       v, size))
		return;
	for (int k = 0; k < HD_ENTRY__COUNT; k++) {
		if (p->addr[k] || !v[k])
			continue;
		p->addr[k] = bias + v[k];
		p->size[k] = size[k];
		p->module[k] = strdup(path);
		HD_DEBUG("alloc", "%s at %#lx in %s", hd_entry_names[k],
			 (unsigned long)p->addr[k], path);
	}
}

static int exe_bias(pid_t pid, const char *exe, uint64_t *bias)
{
	struct hd_maps m;
	char mapped[PATH_MAX], full[PATH_MAX + 64];
	uint64_t start;
	int etype, err = hd_maps_read(pid, &m);
	if (err)
		return err;
	err = module_start(&m, pid, exe, &start, mapped, sizeof(mapped));
	hd_maps_free(&m);
	if (err)
		return err;
	proc_path(pid, exe, full, sizeof(full));
	return hd_elf_bias(full, start, 0, bias, &etype);
}

int hd_find_providers(pid_t pid, struct hd_providers *p, bool linkmap_ready)
{
	char exe[PATH_MAX], name[PATH_MAX];
	int err = hd_find_rtld(pid, p);
	if (err)
		return err;
	err = exe_path(pid, exe, sizeof(exe));
	if (err)
		return err;
	uint64_t lm = 0;
	if (p->r_debug && linkmap_ready &&
	    read_u64(pid, p->r_debug + R_DEBUG_MAP, &lm) == 0 && lm) {
		/* Walk the link map in order: the executable first. */
		for (int guard = 0; lm && guard < 4096; guard++) {
			uint64_t l_addr, l_name, next;
			if (read_u64(pid, lm + LM_ADDR, &l_addr) ||
			    read_u64(pid, lm + LM_NAME, &l_name) ||
			    read_u64(pid, lm + LM_NEXT, &next))
				return -HD_EIO;
			if (guard == 0)
				scan_module(pid, exe, l_addr, false, p);
			else if (l_name &&
				 read_string(pid, l_name, name,
					     sizeof(name)) == 0 &&
				 name[0] == '/')
				scan_module(pid, name, l_addr, false, p);
			lm = next;
		}
	} else {
		uint64_t bias;
		err = exe_bias(pid, exe, &bias);
		if (err)
			return err;
		scan_module(pid, exe, bias, !p->r_debug, p);
	}
	return p->addr[HD_MALLOC] ? 0 : -HD_ENOALLOC;
}
