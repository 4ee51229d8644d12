/* Relocating the first instructions of a function into a trampoline.
 *
 * An entry point is probed by overwriting its first bytes with a 5-byte
 * `jmp rel32` to agent code.  The agent still has to run the function, so
 * the instructions that the jump displaced are copied to a trampoline,
 * rewritten to behave the same at their new address, and followed by a
 * jump back to the first instruction that was not displaced.  This module
 * builds that trampoline from bytes the caller read; it does no I/O and
 * touches no process, so the tracer can run it on a copy of the tracee's
 * code and unit tests can run the result in-process.
 *
 * Which instructions can be relocated, and why the others are refused, is
 * the table at the top of reloc.c. */
#ifndef HD_TRACER_RELOC_H
#define HD_TRACER_RELOC_H

#include <stddef.h>
#include <stdint.h>

#include "common/hd.h"

/* The most instructions one trampoline relocates (size of src_off). */
#define HD_RELOC_MAX_INSN 16
/* Bytes of `code` the caller must supply beyond min_len: the longest x86
 * instruction, so the last displaced instruction decodes whole. */
#define HD_RELOC_LOOKAHEAD 15
/* Length of the patch that hd_reloc_jmp5() writes. */
#define HD_RELOC_JMP5_LEN 5

struct hd_reloc {
	/* The trampoline, position-dependent: valid only at `dst`. */
	uint8_t code[96];
	/* Bytes of `code` in use, including the jump back. */
	size_t len;
	/* Original bytes the patch may overwrite and the tracer must save
	 * and restore: whole instructions, at least min_len.  When the
	 * function ends early (ret or jmp) this includes the padding after
	 * it, which is never executed. */
	size_t displaced;
	/* Relocated instructions, 1..HD_RELOC_MAX_INSN (padding after a
	 * ret or jmp is displaced but not counted: it never runs). */
	int ninsn;
	/* Instruction i starts at src + src_off[i] in the original and at
	 * dst + dst_off[i] in the trampoline; lets the tracer move a thread
	 * stopped inside the trampoline back to the original code. */
	uint8_t src_off[HD_RELOC_MAX_INSN], dst_off[HD_RELOC_MAX_INSN];
	/* Offset in `code` of the jump back to src + displaced, or 0 when
	 * the relocated code ends in ret or jmp and needs none (offset 0 is
	 * always the first relocated instruction, never the jump back). */
	size_t jmp_back;
	/* The displaced instructions in AT&T syntax at their original
	 * addresses, "; "-separated, truncated with "..." if long; for
	 * `info probes`. */
	char text[128];
	/* When hd_reloc_build() refuses: why, one line, naming the
	 * instruction and its offset from src.  Empty on success. */
	char why[128];
};

/* Build the trampoline for the function at `src`, to run at `dst`.
 * code/codelen: the bytes at src, at least min_len + HD_RELOC_LOOKAHEAD of
 * them when the function is that long.  body/bodylen: the whole function
 * starting at src (its ELF symbol size), used to check that no branch in
 * the function lands strictly inside the displaced range and that the
 * range does not run past the function; NULL/0 if unknown, in which case
 * only the supplied code bytes are checked.  min_len: bytes the patch
 * needs (HD_RELOC_JMP5_LEN).  Returns 0, or -HD_EINVAL with r->why set. */
int hd_reloc_build(const uint8_t *code, size_t codelen, uint64_t src,
		   uint64_t dst, size_t min_len, const uint8_t *body,
		   size_t bodylen, struct hd_reloc *r) HD_MUST_CHECK;

/* The 5-byte `jmp rel32` at `from` that lands on `to`; -HD_EINVAL if `to`
 * is out of rel32 reach. */
int hd_reloc_jmp5(uint8_t out[HD_RELOC_JMP5_LEN], uint64_t from,
		  uint64_t to) HD_MUST_CHECK;

/* The original address equivalent to `addr` in the trampoline built by
 * hd_reloc_build(.., src, dst, ..): src + src_off[i] for dst + dst_off[i],
 * src + displaced for the jump back; 0 if addr is not at the start of one
 * of those (a thread stopped elsewhere must first be stepped on). */
uint64_t hd_reloc_to_original(const struct hd_reloc *r, uint64_t src,
			      uint64_t dst, uint64_t addr);

#endif
