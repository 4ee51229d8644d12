/* symbols/: loading one module -- load bias from the program headers, a
 * Dwfl of its own, and the table of function symbol aliases. */
#include "sym_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MOD "sym"

/* x86-64 ELF_MIN_ALIGN: the kernel maps segment p at
 * PAGESTART(bias + p_vaddr) from file offset p_offset - PAGEOFFSET(p_vaddr)
 * (fs/binfmt_elf.c elf_map()). */
#define HD_ELF_PAGE 4096ull

/* Does PT_LOAD `ph` cover the file offset a mapping starts at? */
static bool phdr_covers(const GElf_Phdr *ph, uint64_t offset)
{
	uint64_t first = ph->p_offset - (ph->p_vaddr & (HD_ELF_PAGE - 1));
	return offset >= first && offset < ph->p_offset + ph->p_filesz;
}

/* The load bias (run-time address minus link-time address) of a module
 * whose file offset `offset` is mapped at `start`.
 *
 * A byte at file offset X of segment p has the link-time address
 * p_vaddr + (X - p_offset); the mapping puts X = offset at `start`, so
 * bias = start - (p_vaddr + offset - p_offset).  This holds for PIE
 * executables and shared libraries alike, whatever their first p_vaddr
 * (prelinked libraries have a non-zero one).  ET_EXEC files are mapped at
 * their link-time addresses: bias 0. */
static int elf_bias(Elf *elf, uint64_t start, uint64_t offset,
		    uint64_t *bias)
{
	GElf_Ehdr eh;
	if (!gelf_getehdr(elf, &eh))
		return -HD_EELF;
	if (eh.e_type == ET_EXEC) {
		*bias = 0;
		return 0;
	}
	size_t phnum;
	if (elf_getphdrnum(elf, &phnum) != 0)
		return -HD_EELF;
	GElf_Phdr best;
	bool found = false;
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD ||
		    !phdr_covers(&ph, offset))
			continue;
		/* Segments may share a page in old layouts; the executable
		 * one is what an executable mapping shows. */
		if (!found || (ph.p_flags & PF_X)) {
			best = ph;
			found = true;
		}
	}
	if (!found)
		return -HD_EELF;
	*bias = start - (best.p_vaddr + offset - best.p_offset);
	return 0;
}

static int module_bias(const struct hd_sym_module *m, uint64_t *bias)
{
	int fd = open(m->open_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == EACCES ? -HD_EPERM : -HD_ENOTFOUND;
	int err = -HD_EELF;
	Elf *elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (elf && elf_kind(elf) == ELF_K_ELF)
		err = elf_bias(elf, m->start, m->offset, bias);
	elf_end(elf);
	close(fd);
	return err;
}

/* ---- aliases ------------------------------------------------------------ */

/* Rank of one name among the symbols of one address.  Users read these
 * names: `malloc` rather than `__libc_malloc` or `__GI___libc_malloc`,
 * `strdup` rather than `__strdup`.  Leading underscores mark the
 * implementation's names, so they count first; then exported names beat
 * weak and local ones (glibc makes the public name weak at times, as for
 * strdup, so binding alone would choose wrongly). */
static int alias_rank(const char *name, int bind)
{
	int under = 0;
	while (name[under] == '_' && under < 3)
		under++;
	int b = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1
		: bind == STB_LOCAL ? 2 : 3;
	return under * 4 + b;
}

static int alias_cmp(const void *a, const void *b)
{
	const struct hd_sym_alias *x = a, *y = b;
	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank - y->rank;
	size_t lx = strlen(x->name), ly = strlen(y->name);
	if (lx != ly)
		return lx < ly ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int aliases_build(struct hd_sym_module *m)
{
	int n = dwfl_module_getsymtab(m->mod);
	if (n <= 0)
		return 0;
	struct hd_sym_alias *v = calloc((size_t)n, sizeof(*v));
	if (!v)
		return -HD_ENOMEM;
	size_t k = 0;
	for (int i = 1; i < n; i++) {
		GElf_Sym sym;
		GElf_Addr addr;
		const char *name = dwfl_module_getsym_info(
			m->mod, i, &sym, &addr, NULL, NULL, NULL);
		int type = GELF_ST_TYPE(sym.st_info);
		if (!name || !*name || sym.st_shndx == SHN_UNDEF ||
		    (type != STT_FUNC && type != STT_GNU_IFUNC))
			continue;
		v[k++] = (struct hd_sym_alias){
			.addr = addr, .name = name,
			.rank = alias_rank(name, GELF_ST_BIND(sym.st_info))};
	}
	qsort(v, k, sizeof(*v), alias_cmp);
	m->aliases = v;
	m->naliases = k;
	return 0;
}

/* Index of the first alias at `addr`, or naliases. */
static size_t alias_first(const struct hd_sym_module *m, uint64_t addr)
{
	size_t lo = 0, hi = m->naliases;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->aliases[mid].addr < addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->naliases && m->aliases[lo].addr == addr ? lo
							       : m->naliases;
}

const char *hd_sym_alias_best(const struct hd_sym_module *m, uint64_t addr,
			      const char *name)
{
	size_t i = alias_first(m, addr);
	return i < m->naliases ? m->aliases[i].name : name;
}

int hd_sym_alias_has(const struct hd_sym_module *m, uint64_t addr,
		     const char *name)
{
	for (size_t i = alias_first(m, addr);
	     i < m->naliases && m->aliases[i].addr == addr; i++)
		if (strcmp(m->aliases[i].name, name) == 0)
			return 1;
	return 0;
}

/* ---- loading -------------------------------------------------------------- */

/* Opens the module's ELF file and reports it to a Dwfl of its own, on the
 * first lookup in it.  Failure is remembered: the module then resolves
 * to bare addresses. */
int hd_sym_module_load(struct hd_sym_space *s, struct hd_sym_module *m)
{
	if (m->state != HD_SYM_UNLOADED)
		return m->state == HD_SYM_READY ? 0 : -HD_EELF;
	m->state = HD_SYM_FAILED;

	uint64_t bias;
	int err = module_bias(m, &bias);
	if (err) {
		HD_DEBUG(MOD, "%s: no load bias: %s", m->open_path,
			 hd_strerror(err));
		return err;
	}
	Dwfl *dwfl = dwfl_begin(&s->callbacks);
	if (!dwfl)
		return -HD_ENOMEM;
	dwfl_report_begin(dwfl);
	/* add_p_vaddr: `bias` is added to every p_vaddr, i.e. it is the
	 * bias itself (ignored for ET_EXEC, which is what we want). */
	Dwfl_Module *mod = dwfl_report_elf(dwfl, m->path, m->open_path, -1,
					   bias, true);
	if (!mod || dwfl_report_end(dwfl, NULL, NULL) != 0) {
		HD_DEBUG(MOD, "%s: %s", m->open_path, dwfl_errmsg(-1));
		dwfl_end(dwfl);
		return -HD_EELF;
	}
	m->dwfl = dwfl;
	m->mod = mod;
	m->bias = bias;
	if (aliases_build(m) < 0)
		HD_DEBUG(MOD, "%s: no memory for the alias table", m->path);
	m->state = HD_SYM_READY;
	HD_DEBUG(MOD, "loaded %s bias %#" PRIx64 ", %zu function symbols",
		 m->path, bias, m->naliases);
	return 0;
}

static int module_has_lines(Dwfl_Module *mod)
{
	Dwarf_Addr bias;
	if (!dwfl_module_getdwarf(mod, &bias))
		return 0;
	Dwarf_Die *cu = NULL;
	while ((cu = dwfl_module_nextcu(mod, cu, &bias))) {
		Dwarf_Lines *lines;
		size_t n;
		if (dwarf_getsrclines(cu, &lines, &n) == 0 && n > 0)
			return 1;
	}
	return 0;
}

void hd_sym_module_details(struct hd_sym_space *s, struct hd_sym_module *m)
{
	if (m->details_done)
		return;
	m->details_done = 1;
	if (hd_sym_module_load(s, m) < 0)
		return;
	m->has_symbols = dwfl_module_getsymtab(m->mod) > 0;
	m->has_lines = module_has_lines(m->mod);

	const unsigned char *bits;
	GElf_Addr vaddr;
	int len = dwfl_module_build_id(m->mod, &bits, &vaddr);
	if (len > 0) {
		char hex[2 * 256 + 1];
		int n = len < 256 ? len : 256;
		for (int i = 0; i < n; i++)
			snprintf(hex + 2 * i, 3, "%02x", bits[i]);
		m->build_id = hd_sym_intern(s, hex);
	}
}

void hd_sym_module_free(struct hd_sym_module *m)
{
	if (m->dwfl)
		dwfl_end(m->dwfl);
	free(m->aliases);
	free(m->path);
	free(m->open_path);
	free(m);
}
