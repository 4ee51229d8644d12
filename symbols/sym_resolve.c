/* symbols/: from a code address to source-level frames. */
#include "sym_internal.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The module holding `pc` (maps_lock held).  Unloaded modules are kept,
 * so several may hold it: the mapped one wins, then the most recently
 * seen. */
struct hd_sym_module *hd_sym_module_at(struct hd_sym_space *s, uint64_t pc)
{
	struct hd_sym_module *best = NULL;
	for (size_t i = 0; i < s->nmodules && s->modules[i]->start <= pc;
	     i++) {
		struct hd_sym_module *m = s->modules[i];
		if (pc >= m->end)
			continue;
		if (!best || m->mapped > best->mapped ||
		    (m->mapped == best->mapped && m->seq > best->seq))
			best = m;
	}
	return best;
}

static void frame_init(struct hd_frame *f, const struct hd_sym_module *m)
{
	memset(f, 0, sizeof(*f));
	if (m) {
		f->module = m->path;
		f->module_start = m->start;
		f->module_end = m->end;
	}
}

/* Sets mangled and func from a linkage name. */
static void frame_name(struct hd_sym_space *s, struct hd_frame *f,
		       const char *linkage)
{
	/* A .symtab keeps the version a symbol was defined with in its
	 * name (glibc's `__libc_start_main@@GLIBC_2.34`): users, pprof and
	 * the allocator-frame rules know the plain name. */
	char plain[512];
	const char *at = strchr(linkage, '@');
	if (at && at != linkage && (size_t)(at - linkage) < sizeof(plain)) {
		memcpy(plain, linkage, (size_t)(at - linkage));
		plain[at - linkage] = '\0';
		linkage = plain;
	}
	f->mangled = hd_sym_intern(s, linkage);
	char *demangled = hd_demangle(linkage);
	f->func = demangled ? hd_sym_intern(s, demangled) : f->mangled;
	free(demangled);
}

static int frame_address(struct hd_sym_space *s, struct hd_frame *f,
			 const struct hd_sym_module *m, uint64_t pc)
{
	frame_init(f, m);
	f->func = hd_sym_intern_fmt(s, "0x%" PRIx64, pc);
	if (!f->func)
		f->func = "??"; /* out of memory: a static name, still valid */
	return 1;
}

/* ---- DWARF ----------------------------------------------------------------- */

static const char *die_string(Dwarf_Die *die, int at)
{
	Dwarf_Attribute attr;
	/* _integrate: follow DW_AT_abstract_origin (inlined and out-of-line
	 * instances) and DW_AT_specification (C++ members defined outside
	 * their class) to where the name is. */
	return dwarf_formstring(dwarf_attr_integrate(die, at, &attr));
}

static int die_udata(Dwarf_Die *die, int at, bool integrate)
{
	Dwarf_Attribute attr, *a;
	Dwarf_Word w;
	a = integrate ? dwarf_attr_integrate(die, at, &attr)
		      : dwarf_attr(die, at, &attr);
	if (!a || dwarf_formudata(a, &w) != 0 || w > INT32_MAX)
		return 0;
	return (int)w;
}

static const char *die_linkage(Dwarf_Die *die)
{
	const char *name = die_string(die, DW_AT_linkage_name);
	if (!name)
		name = die_string(die, DW_AT_MIPS_linkage_name);
	if (!name)
		name = die_string(die, DW_AT_name);
	return name;
}

/* Name of the outermost (not inlined) function.  ELF may hold several
 * names for it (glibc's __libc_malloc is also malloc); when the DWARF
 * name is one of them, show the preferred alias.  Otherwise DWARF knows
 * better: foo.constprop.0 is foo to the reader. */
static const char *outer_name(const struct hd_sym_module *m,
			      const char *dwarf_name, const char *elf_name,
			      uint64_t elf_addr)
{
	if (!elf_name)
		return dwarf_name;
	if (!dwarf_name || hd_sym_alias_has(m, elf_addr, dwarf_name))
		return elf_name;
	return dwarf_name;
}

static bool is_function(Dwarf_Die *die)
{
	int tag = dwarf_tag(die);
	return tag == DW_TAG_subprogram || tag == DW_TAG_inlined_subroutine;
}

/* The innermost function DIE (concrete instance) holding `addr`. */
static bool innermost_function(Dwarf_Die *cudie, Dwarf_Addr addr,
			       Dwarf_Die *out)
{
	Dwarf_Die *scopes = NULL;
	int n = dwarf_getscopes(cudie, addr, &scopes);
	bool found = false;
	/* dwarf_getscopes() stops at the innermost inlined instance and
	 * continues with the scopes of its abstract definition, so only the
	 * first function-like scope is of use here; the chain of callers
	 * comes from dwarf_getscopes_die() on it. */
	for (int i = 0; i < n && !found; i++) {
		if (is_function(&scopes[i])) {
			*out = scopes[i];
			found = true;
		}
	}
	free(scopes);
	return found;
}

struct pc_context {
	const struct hd_sym_module *m;
	const char *elf_name; /* preferred alias of the ELF symbol, or NULL */
	uint64_t elf_addr;
	const char *file;     /* source position of pc */
	int line;
};

/* Frames from the DWARF scopes: innermost inlined callee first, file:line
 * of pc; each caller at the call site (DW_AT_call_file/line) of the
 * inlined instance inside it; the enclosing subprogram last (as
 * elfutils' stack -i and addr2line -i do).  Returns 0 if DWARF does not
 * cover pc. */
static int dwarf_frames(struct hd_sym_space *s, Dwarf_Die *cudie,
			Dwarf_Addr addr, const struct pc_context *c,
			struct hd_frame *frames, int max)
{
	Dwarf_Die inner;
	if (!innermost_function(cudie, addr, &inner))
		return 0;
	Dwarf_Die *chain = NULL;
	int nchain = dwarf_getscopes_die(&inner, &chain);
	if (nchain <= 0)
		return 0;
	Dwarf_Files *files = NULL;
	size_t nfiles = 0;
	if (dwarf_getsrcfiles(cudie, &files, &nfiles) != 0)
		files = NULL;

	const char *file = c->file;
	int line = c->line;
	int n = 0;
	for (int i = 0; i < nchain && n < max; i++) {
		Dwarf_Die *die = &chain[i];
		if (!is_function(die))
			continue;
		struct hd_frame *f = &frames[n++];
		frame_init(f, c->m);
		f->file = hd_sym_intern(s, file);
		f->line = line;
		f->func_line = die_udata(die, DW_AT_decl_line, true);
		const char *name = die_linkage(die);
		if (dwarf_tag(die) == DW_TAG_subprogram) {
			name = outer_name(c->m, name, c->elf_name, c->elf_addr);
			if (name)
				frame_name(s, f, name);
			break;
		}
		if (name)
			frame_name(s, f, name);
		f->inlined = 1;
		/* The caller's position is where this instance was inlined.
		 * (0 is a valid file index in DWARF 5: check presence.) */
		int idx = die_udata(die, DW_AT_call_file, false);
		file = files && dwarf_hasattr(die, DW_AT_call_file) &&
			       (size_t)idx < nfiles
			       ? dwarf_filesrc(files, (size_t)idx, NULL, NULL)
			       : NULL;
		line = die_udata(die, DW_AT_call_line, false);
	}
	free(chain);
	/* A frame without any name (broken DWARF) is worse than the ELF
	 * symbol alone: let the caller fall back. */
	for (int i = 0; i < n; i++)
		if (!frames[i].func)
			return 0;
	return n;
}

/* ---- per module ------------------------------------------------------------ */

static int module_frames(struct hd_sym_space *s, struct hd_sym_module *m,
			 uint64_t pc, struct hd_frame *frames, int max)
{
	struct pc_context c = {.m = m};
	GElf_Off off = 0;
	GElf_Sym sym;
	const char *sym_name = dwfl_module_addrinfo(m->mod, pc, &off, &sym,
						    NULL, NULL, NULL);
	if (sym_name) {
		c.elf_addr = pc - off;
		c.elf_name = hd_sym_alias_best(m, c.elf_addr, sym_name);
	}
	Dwfl_Line *ln = dwfl_module_getsrc(m->mod, pc);
	if (ln)
		c.file = dwfl_lineinfo(ln, NULL, &c.line, NULL, NULL, NULL);

	Dwarf_Addr cubias = 0;
	Dwarf_Die *cudie = dwfl_module_addrdie(m->mod, pc, &cubias);
	if (cudie) {
		int n = dwarf_frames(s, cudie, pc - cubias, &c, frames, max);
		if (n > 0)
			return n;
	}
	if (!c.elf_name)
		return frame_address(s, frames, m, pc);
	/* Symbol table only (no DWARF, or DWARF that misses this pc). */
	frame_init(frames, m);
	frame_name(s, frames, c.elf_name);
	frames->file = hd_sym_intern(s, c.file);
	frames->line = c.file ? c.line : 0;
	return 1;
}

int hd_sym_resolve_locked(struct hd_sym_space *s, struct hd_sym_module *m,
			  uint64_t pc, struct hd_frame *frames, int max)
{
	if (!m || hd_sym_module_load(s, m) < 0)
		return frame_address(s, frames, m, pc);
	return module_frames(s, m, pc, frames, max);
}
