/* symbols/: private definitions shared by the files of the module. */
#ifndef HD_SYM_INTERNAL_H
#define HD_SYM_INTERNAL_H

#include <elfutils/libdwfl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "symbols.h"

/* A function symbol of a module, for choosing among aliases. */
struct hd_sym_alias {
	uint64_t addr; /* run-time address */
	const char *name; /* owned by the module's Dwfl */
	int rank;      /* lower is preferred, see alias_rank() */
};

enum hd_sym_load_state {
	HD_SYM_UNLOADED = 0, /* ELF not opened yet */
	HD_SYM_READY,        /* Dwfl module reported */
	HD_SYM_FAILED,       /* could not be opened; resolves to addresses */
};

/* Fields up to `mapped` are set when the module is found and never change
 * (only `mapped`, under maps_lock); the rest is lazily filled in under
 * sym_lock. */
struct hd_sym_module {
	char *path;            /* as the process names it */
	char *open_path;       /* where we open it from */
	uint64_t start, end, offset;
	uint64_t seq;          /* order of discovery: later wins overlaps */
	int mapped;            /* present at the last update */

	enum hd_sym_load_state state;
	Dwfl *dwfl;            /* one per module: unloaded modules may
				  overlap newer ones, which one Dwfl
				  refuses */
	Dwfl_Module *mod;
	uint64_t bias;
	struct hd_sym_alias *aliases; /* sorted by addr, then rank */
	size_t naliases;

	int details_done;
	int has_symbols, has_lines;
	const char *build_id;
};

/* Resolved frames of one pc, kept so that reports that ask again for the
 * same addresses cost a hash lookup. */
struct hd_sym_pc_entry {
	uint64_t pc;
	uint32_t first, count; /* into hd_sym_space.frames */
	int used;
};

struct hd_sym_source {
	const char *path; /* interned */
	char *text;       /* whole file, lines split in place; NULL if
			     unreadable */
	char **lines;
	size_t nlines;
};

/* Two locks, so that hd_sym_space_update() (the tracer thread, maybe
 * while a tracee thread waits) never waits for DWARF being read by a
 * resolve on the prompt thread:
 *   maps_lock: the module list and its `mapped` flags, `gen`;
 *   sym_lock:  everything else.
 * Order: sym_lock before maps_lock.  Modules are freed only with the
 * space, so a module pointer stays valid outside maps_lock. */
struct hd_sym_space {
	pthread_mutex_t maps_lock;
	struct hd_sym_module **modules; /* sorted by start, then seq */
	size_t nmodules, capmodules;
	uint64_t next_seq;
	uint64_t gen; /* bumped whenever the module set or a flag changes */

	pthread_mutex_t sym_lock;
	Dwfl_Callbacks callbacks;
	char *debuginfo_path;
	uint64_t cache_gen; /* gen the pc cache was filled under */

	/* String intern table (open addressing). */
	char **strings;
	size_t nstrings, capstrings;

	/* pc -> frames cache (open addressing), flushed when gen moves. */
	struct hd_sym_pc_entry *pcs;
	size_t npcs, cappcs;
	struct hd_frame *frames;
	size_t nframes, capframes;

	struct hd_sym_source *sources;
	size_t nsources, capsources;
};

/* sym_space.c */
const char *hd_sym_intern(struct hd_sym_space *s, const char *str);
const char *hd_sym_intern_fmt(struct hd_sym_space *s, const char *fmt, ...)
	HD_PRINTF(2, 3);
void hd_sym_cache_flush(struct hd_sym_space *s);

/* sym_module.c */
int hd_sym_module_load(struct hd_sym_space *s, struct hd_sym_module *m);
void hd_sym_module_details(struct hd_sym_space *s, struct hd_sym_module *m);
void hd_sym_module_free(struct hd_sym_module *m);
const char *hd_sym_alias_best(const struct hd_sym_module *m, uint64_t addr,
			      const char *name);
int hd_sym_alias_has(const struct hd_sym_module *m, uint64_t addr,
		     const char *name);

/* sym_resolve.c; called with sym_lock held, `m` the module holding pc
 * or NULL. */
int hd_sym_resolve_locked(struct hd_sym_space *s, struct hd_sym_module *m,
			  uint64_t pc, struct hd_frame *frames, int max);
struct hd_sym_module *hd_sym_module_at(struct hd_sym_space *s, uint64_t pc);

#endif
