/* Definitions shared by the files of tracer/ only. */
#ifndef HD_TRACER_INTERNAL_H
#define HD_TRACER_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "../common/hd.h"
#include "../common/maps.h"
#include "../profile/profile.h"
#include "tracer.h"

/* ---- ptrace and memory access (ptrace.c) ----
 *
 * One convention for every call (STYLE.md practice 3): functions return 0
 * or -errno; ESRCH means "the thread is gone" and callers treat it as an
 * event to wait for, never as a failure to report. */
int hd_pt_seize(pid_t tid, unsigned long options);
int hd_pt_interrupt(pid_t tid);
int hd_pt_cont(pid_t tid, int sig);
int hd_pt_listen(pid_t tid);
int hd_pt_detach(pid_t tid, int sig);
int hd_pt_getregs(pid_t tid, struct user_regs_struct *r);
int hd_pt_setregs(pid_t tid, const struct user_regs_struct *r);
int hd_pt_geteventmsg(pid_t tid, unsigned long *msg);
int hd_pt_getsiginfo(pid_t tid, siginfo_t *si);

/* Tracee memory: one process_vm_readv for a whole block.  Returns the
 * number of bytes read (possibly short at an unmapped page) or -errno. */
ssize_t hd_mem_read(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Exactly len bytes, or -errno / -EIO when short. */
int hd_mem_read_full(pid_t pid, uint64_t addr, void *buf, size_t len);
/* Writes through /proc/PID/mem, which works on read-only text pages. */
int hd_mem_write(pid_t pid, uint64_t addr, const void *buf, size_t len);

/* ---- ELF symbols of a file (elfsym.c) ---- */
/* Address (st_value) and size (st_size; `size` may be NULL) of defined
 * function or object `name` in ELF file `path`, searching .dynsym (and
 * .symtab when `symtab` is set).  Returns 0, -HD_ENOTFOUND, or -HD_EELF. */
int hd_elf_lookup(const char *path, const char *name, bool symtab,
		  uint64_t *value, uint64_t *size) HD_MUST_CHECK;
/* The same for n names in one pass; values[i] = 0 for a name not found.
 * Returns 0 or -HD_EELF. */
int hd_elf_lookup_many(const char *path, const char *const *names, int n,
		       bool symtab, uint64_t *values, uint64_t *sizes)
	HD_MUST_CHECK;
/* Load bias of a module mapped from `path` whose mapping of file offset
 * `offset` starts at `start` (0 for ET_EXEC); also returns e_type. */
int hd_elf_bias(const char *path, uint64_t start, uint64_t offset,
		uint64_t *bias, int *etype) HD_MUST_CHECK;
/* ELF machine of a file: 0 x86-64, -HD_ENOTX64 other, -HD_EELF. */
int hd_elf_check_x64(const char *path) HD_MUST_CHECK;
/* PT_INTERP of the file, or "" when static; returns 0 or -HD_EELF. */
int hd_elf_interp(const char *path, char *buf, size_t len) HD_MUST_CHECK;

/* ---- instruction emulation at a breakpoint (emulate.c) ---- */
enum hd_emu_kind {
	HD_EMU_NONE,    /* not emulated: entry point refused */
	HD_EMU_NOP,     /* endbr64, nop */
	HD_EMU_PUSH,    /* push r64 */
	HD_EMU_MOV,     /* mov r, r/imm/mem; lea */
	HD_EMU_ALU,     /* cmp/test/sub/add/and with flags */
	HD_EMU_RET,     /* ret (_dl_debug_state) */
	HD_EMU_JMP,     /* jmp rel (PLT-like stubs) */
};
struct hd_emu {
	enum hd_emu_kind kind;
	uint8_t len;       /* instruction length */
	uint16_t opcode;   /* ALU: the Zydis mnemonic; MOV: 1 = lea */
	uint8_t width;     /* operand width in bytes */
	uint8_t dst_kind, src_kind; /* 0 none, 1 reg, 2 mem, 3 imm */
	int dst_reg, src_reg;       /* offsetof in user_regs_struct / 8 */
	bool writes_dst;
	/* memory operand */
	int base_reg, index_reg; /* -1 none, -2 rip */
	uint8_t scale;
	int64_t disp;
	int seg; /* 0 none, 1 fs, 2 gs */
	int64_t imm;
	uint64_t target; /* jmp target */
	char text[64];   /* disassembly, for `info probes` and logs */
};
/* Decode the instruction at `addr` (bytes in `code`).  kind = NONE with
 * text naming why when it cannot be emulated. */
void hd_emu_decode(struct hd_emu *e, uint64_t addr, const uint8_t *code,
		   size_t len);
/* Execute e on thread tid's registers, as the CPU would have at addr.
 * Returns 0 or -errno (a memory access failed). */
int hd_emu_exec(const struct hd_emu *e, pid_t tid, uint64_t addr,
		struct user_regs_struct *r) HD_MUST_CHECK;

/* ---- remote unwinding (unwind.c) ---- */
struct hd_unwinder;
/* Block every signal in the calling thread for good, and let libunwind
 * skip its signal masking there (unwind.c says why). */
void hd_unwind_thread_nosig(void);
struct hd_unwinder *hd_unwinder_new(pid_t pid);
void hd_unwinder_free(struct hd_unwinder *u);
/* Return addresses of the callers of the function at whose entry the
 * thread stands (regs at entry: [rsp] is the return address).  Returns
 * the depth (>= 0; 0 when unwinding failed at once). */
void hd_unwinder_flush(struct hd_unwinder *u);
/* What an unwind from a stack copy read of it. */
struct hd_unwind_extent {
	bool complete;     /* it reached the outermost frame */
	bool beyond;       /* it needed stack above the copy (read live) */
	uint64_t read_end; /* end of the highest word it read in the copy */
};
/* The same from a copy of the stack taken at [r->rsp, r->rsp + len), with
 * r->rip the return address into the caller (pcs[0] = r->rip); other
 * memory is read from the live process. */
int hd_unwind_from_copy(struct hd_unwinder *u,
			const struct user_regs_struct *r, const uint8_t *stack,
			size_t len, uint64_t *pcs, int max,
			struct hd_unwind_extent *ext);
int hd_unwind_from_entry(struct hd_unwinder *u, pid_t tid,
			 const struct user_regs_struct *r, uint64_t *pcs,
			 int max);

/* ---- entry points (allocator.c) ---- */
enum hd_entry_kind {
	HD_MALLOC,
	HD_CALLOC,
	HD_REALLOC,
	HD_REALLOCARRAY,
	HD_FREE,
	HD_POSIX_MEMALIGN,
	HD_ALIGNED_ALLOC,
	HD_MEMALIGN,
	HD_VALLOC,
	HD_PVALLOC,
	HD_ENTRY__COUNT
};
extern const char *const hd_entry_names[HD_ENTRY__COUNT];

struct hd_module_ref {
	uint64_t bias;
	char path[4096];
};
/* The providers of the entry points in the process's link map (first
 * definition in link-map order, as the dynamic linker binds them).
 * addrs[k] = 0 when no module defines entry k.  `modules[k]` receives the
 * providing module's path.  Returns 0, -HD_ENOALLOC when no malloc was
 * found, or another -HD_E*. */
struct hd_providers {
	uint64_t addr[HD_ENTRY__COUNT];
	uint64_t size[HD_ENTRY__COUNT]; /* function sizes (0: unknown) */
	char *module[HD_ENTRY__COUNT];
	uint64_t r_debug;         /* address of _r_debug (0: static) */
	uint64_t r_brk;           /* _dl_debug_state (0: static) */
	uint64_t r_brk_size;      /* its size (0: unknown) */
	char interp[4096];
};
int hd_find_providers(pid_t pid, struct hd_providers *p, bool linkmap_ready)
	HD_MUST_CHECK;
/* Only the dynamic linker's debug hooks (r_debug, r_brk), for `run` and
 * exec: the link map is not built yet. */
int hd_find_rtld(pid_t pid, struct hd_providers *p) HD_MUST_CHECK;
void hd_providers_clear(struct hd_providers *p);

#endif
