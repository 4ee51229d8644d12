/* symbols/: the modules of a process and what their addresses mean.
 *
 * A symbol space is the set of modules (ELF files mapped executable) seen
 * in one address space, with their load addresses.  Modules are added as
 * they appear and kept after they are unmapped, so stacks recorded earlier
 * still resolve.  Everything expensive (opening ELF files, reading DWARF)
 * happens lazily on the first lookup in a module, never while a tracee
 * thread is stopped: hd_sym_space_update() only reads /proc/PID/maps.
 *
 * Thread safety: every function may be called from any thread; update
 * may run on the tracer thread while the prompt thread resolves, and it
 * never waits for ELF or DWARF being read (the module list has a lock of
 * its own).
 */
#ifndef HD_SYMBOLS_H
#define HD_SYMBOLS_H

#include <stdint.h>
#include <sys/types.h>

#include "../common/hd.h"

struct hd_sym_space;

/* Files of a process in another mount namespace (a container) are
 * opened through /proc/PID/root, decided per update. */
struct hd_sym_space *hd_sym_space_new(void);
void hd_sym_space_free(struct hd_sym_space *s);

/* Where separate debug files are looked for, in elfutils' debuginfo_path
 * syntax (":.debug:/usr/lib/debug", the default when NULL): entries are
 * the binary's own directory (empty), subdirectories of it (relative), or
 * roots holding .build-id/xx/yyyy.debug and mirrored paths (absolute).
 * Applies to modules loaded afterwards. */
int hd_sym_set_debuginfo_path(struct hd_sym_space *s,
			      const char *path) HD_MUST_CHECK;

/* Read /proc/PID/maps and add every file-backed executable mapping not
 * yet known (files are then named through /proc/PID/root when the path is
 * not visible from here).  Modules no longer mapped are kept, marked
 * unloaded.  Returns 0 or -HD_E*. */
int hd_sym_space_update(struct hd_sym_space *s, pid_t pid) HD_MUST_CHECK;

/* Add one module by hand (tests, offline use): file `path` whose
 * executable segment of file offset `offset` is mapped at [start, end). */
int hd_sym_space_add(struct hd_sym_space *s, const char *path,
		     uint64_t start, uint64_t end, uint64_t offset) HD_MUST_CHECK;

/* One source-level frame.  Strings belong to the space and live as long
 * as it does. */
struct hd_frame {
	const char *func;    /* demangled name, or "0x<hex>" if unknown */
	const char *mangled; /* linkage name as in the ELF symbol (== func
				for C) or NULL if unknown */
	const char *file;    /* source file (absolute when DWARF says so),
				or NULL */
	int line;            /* 0 if unknown */
	int func_line;       /* line where the function starts (DW_AT_decl_line),
				0 if unknown */
	const char *module;  /* path of the module, or NULL */
	uint64_t module_start, module_end; /* mapped range of the module */
	int inlined;         /* 1 if this frame was inlined into the next */
};

/* Frames for code address `pc` (the caller applies pc - 1 to return
 * addresses first).  Innermost first: for a pc inside code inlined from g
 * into f, frames[0] = g (inlined = 1, file:line inside g) and frames[1] =
 * f (file:line of the call site of g).  Returns the number of frames
 * written (at least 1 when max >= 1: an unknown pc gives one frame named
 * by its address), at most max. */
int hd_sym_resolve(struct hd_sym_space *s, uint64_t pc,
		   struct hd_frame *frames, int max);

/* Line `line` (1-based) of source file `file`, without its newline, or
 * NULL if the file cannot be read.  Files are read once and cached. */
const char *hd_sym_source_line(struct hd_sym_space *s, const char *file,
			       int line);

/* For `info libs`. */
struct hd_sym_module_info {
	const char *path;
	uint64_t start, end;
	int loaded;     /* still mapped at the last update */
	int has_symbols; /* .symtab or .dynsym found (forces loading) */
	int has_lines;   /* DWARF line info found, in the file or in
			    /usr/lib/debug/.build-id */
	const char *build_id; /* hex, or NULL */
	uint64_t offset; /* file offset mapped at start (pprof's
			    Mapping.file_offset) */
};
/* Calls fn for every module in address order; has_symbols/has_lines are
 * computed (loading the module) only when `details` is non-zero. */
void hd_sym_modules(struct hd_sym_space *s, int details,
		    void (*fn)(void *ctx, const struct hd_sym_module_info *),
		    void *ctx);

/* Demangle a C++ name; returns a malloc'd string or NULL if not mangled. */
char *hd_demangle(const char *name);

#endif
