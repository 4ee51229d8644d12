/* The agent's entry stubs: what each patched allocator entry point jumps
 * to.  malloc and free have fast paths here, a handful of instructions
 * that decide whether the call is interesting; everything else, and the
 * interesting calls, go to hd_agent_slow() with the caller's registers as
 * they were at the entry (the DWARF unwinder starts from them).
 *
 * At entry: the arguments in rdi, rsi, rdx, rcx; (%rsp) = the return
 * address.  rax, r10 and r11 are free: no allocator entry point is
 * variadic and neither is used for arguments.  free's stub also uses
 * rcx, which free (one argument) does not take and its callers do not
 * expect kept. */
#include "agent_abi.h"

	.section .hd_slots, "a"
	.balign 64
	.globl hd_agent_slots
	.hidden hd_agent_slots
hd_agent_slots:
	.zero HD_SLOTS_SIZE

	.text
	.balign 16
	.globl hd_stubs_start
	.hidden hd_stubs_start
hd_stubs_start:

/* A return address inside the agent means the allocator was called by
 * the agent's own call of an original function (realloc(NULL, n) jumps
 * to malloc): such calls are passed through, so each allocation counts
 * once. */
.macro NESTED_CHECK target
	mov	(%rsp), %rax
	sub	hd_agent_slots+HD_SLOT_CODE_START(%rip), %rax
	cmp	hd_agent_slots+HD_SLOT_CODE_SPAN(%rip), %rax
	jb	\target
.endm

	.globl hd_entry_malloc
	.hidden hd_entry_malloc
hd_entry_malloc:
	NESTED_CHECK 1f
	/* countdown of this stack's bucket -= size; sampled below zero */
	mov	hd_agent_slots+HD_SLOT_SHARED(%rip), %r11
	mov	%rsp, %rax
	shr	$14, %rax
	movabs	$HD_HASH_MUL, %r10
	imul	%r10, %rax
	shr	$56, %rax
	shl	$6, %rax
	sub	%rdi, HD_SH_COUNTERS(%r11,%rax)
	js	2f
1:	jmp	*hd_agent_slots+HD_SLOT_ORIG+8*HD_K_MALLOC(%rip)
2:	mov	$HD_K_MALLOC, %eax
	jmp	hd_agent_common

	.globl hd_entry_free
	.hidden hd_entry_free
hd_entry_free:
	test	%rdi, %rdi
	jz	1f
	mov	hd_agent_slots+HD_SLOT_SHARED(%rip), %r11
	testl	$HD_AGENT_ALL_FREES, HD_SH_FLAGS(%r11)
	jnz	2f
	/* the counting filters say whether ptr may be a sampled one: the
	 * summary's byte e >> 6, then the fine counter e = hash(ptr), bits
	 * 4*(e&1)+3..4*(e&1) of byte e>>1 */
	mov	%rdi, %rax
	movabs	$HD_HASH_MUL, %r10
	imul	%r10, %rax
	shr	$(64 - HD_FILTER_BITS), %rax
	mov	%eax, %ecx
	shr	$(HD_FILTER_BITS - HD_SUMMARY_BITS), %ecx
	cmpb	$0, HD_SH_SUMMARY(%r11,%rcx)
	je	1f
	mov	%eax, %ecx
	shr	$1, %eax
	movzbl	HD_SH_FILTER(%r11,%rax), %eax
	and	$1, %ecx
	shl	$2, %ecx
	shr	%cl, %eax
	test	$15, %al
	jnz	2f
1:	jmp	*hd_agent_slots+HD_SLOT_ORIG+8*HD_K_FREE(%rip)
2:	mov	$HD_K_FREE, %eax
	jmp	hd_agent_common

.macro SLOW_ENTRY name kind
	.globl \name
	.hidden \name
\name:
	mov	$\kind, %eax
	jmp	hd_agent_common
.endm

/* _dl_debug_state: tell heapdbg (hd_agent_linkmap), then run the
 * original (a `ret`, relocated).  At entry rsp is 8 mod 16. */
	.globl hd_entry_rbrk
	.hidden hd_entry_rbrk
hd_entry_rbrk:
	sub	$8, %rsp
	call	hd_agent_linkmap
	add	$8, %rsp
	jmp	*hd_agent_slots+HD_SLOT_ORIG+8*HD_K_RBRK(%rip)

	SLOW_ENTRY hd_entry_calloc HD_K_CALLOC
	SLOW_ENTRY hd_entry_realloc HD_K_REALLOC
	SLOW_ENTRY hd_entry_reallocarray HD_K_REALLOCARRAY
	SLOW_ENTRY hd_entry_posix_memalign HD_K_POSIX_MEMALIGN
	SLOW_ENTRY hd_entry_aligned_alloc HD_K_ALIGNED_ALLOC
	SLOW_ENTRY hd_entry_memalign HD_K_MEMALIGN
	SLOW_ENTRY hd_entry_valloc HD_K_VALLOC
	SLOW_ENTRY hd_entry_pvalloc HD_K_PVALLOC

/* Save the entry state as struct hd_entry_regs (agent.c) and call
 * hd_agent_slow(kind, regs); its result is the allocator's.  At entry
 * rsp is 8 mod 16; 88 bytes keep the call aligned. */
	.globl hd_agent_common
	.hidden hd_agent_common
hd_agent_common:
	sub	$88, %rsp
	mov	%rbx, 0(%rsp)
	mov	%rbp, 8(%rsp)
	mov	%r12, 16(%rsp)
	mov	%r13, 24(%rsp)
	mov	%r14, 32(%rsp)
	mov	%r15, 40(%rsp)
	mov	%rdi, 48(%rsp)
	mov	%rsi, 56(%rsp)
	mov	%rdx, 64(%rsp)
	mov	%rcx, 72(%rsp)
	lea	88(%rsp), %r11
	mov	%r11, 80(%rsp)
	mov	%eax, %edi
	mov	%rsp, %rsi
	call	hd_agent_slow
	add	$88, %rsp
	ret

	.globl hd_stubs_end
	.hidden hd_stubs_end
hd_stubs_end:
	.section .note.GNU-stack, "", @progbits
