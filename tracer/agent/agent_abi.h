/* The contract between heapdbg and the agent it injects into the tracee.
 *
 * Two mappings in the tracee:
 *   code   private, read+exec, within rel32 reach of the patched module:
 *          the agent blob (header, code, read-only data), then the slots
 *          heapdbg fills (hd_agent_slots), then the trampolines that run
 *          the displaced first instructions of each original function.
 *   shared a memfd mapped MAP_SHARED by the tracee and by heapdbg: the
 *          control block, the sampling countdowns, the sampled-pointer
 *          filter and set, and the ring of records heapdbg drains.
 * Everything the agent changes lives in `shared`; the blob has no
 * writable data of its own (the link checks that).
 *
 * This header is included by the freestanding agent and by heapdbg: plain
 * C types only, and offsets that the agent's assembly uses are constants
 * checked against offsetof() below. */
#ifndef HD_AGENT_ABI_H
#define HD_AGENT_ABI_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

#define HD_AGENT_MAGIC 0x47414448u /* "HDAG" */
#define HD_AGENT_VERSION 2u

/* Entry kinds: the same order as enum hd_entry_kind in tracer/. */
#define HD_K_MALLOC 0
#define HD_K_CALLOC 1
#define HD_K_REALLOC 2
#define HD_K_REALLOCARRAY 3
#define HD_K_FREE 4
#define HD_K_POSIX_MEMALIGN 5
#define HD_K_ALIGNED_ALLOC 6
#define HD_K_MEMALIGN 7
#define HD_K_VALLOC 8
#define HD_K_PVALLOC 9
/* Not an allocator entry point: the dynamic linker's _dl_debug_state,
 * called around every change of the link map (dlopen, dlclose).  Its
 * stub counts the call (modules_gen), wakes heapdbg, and waits a little
 * for heapdbg to have read the modules (modules_ack) -- as long as
 * heapdbg's drain beats -- before it runs the original.  (A breakpoint
 * there did the same, but would stop the process with a SIGTRAP nobody
 * handles once heapdbg is gone.) */
#define HD_K_RBRK 10
#define HD_K_COUNT 11

/* ---- the code mapping ---- */

/* The blob is linked at address 0 from tracer/agent/; its layout (entry
 * stubs, slots, size) is read from its symbol table at build time into
 * struct hd_agent_layout (tracer/inject.c). */

#define HD_SLOT_SHARED 0
#define HD_SLOT_ORIG 8
#define HD_SLOT_CODE_START (8 + 8 * HD_K_COUNT)
#define HD_SLOT_CODE_SPAN (HD_SLOT_CODE_START + 8)
#define HD_SLOTS_SIZE (HD_SLOT_CODE_SPAN + 8)

#ifndef __ASSEMBLER__
/* Filled by heapdbg before any entry point is patched; read-only for the
 * agent. */
struct hd_agent_slots {
	uint64_t shared;            /* address of the shared mapping */
	uint64_t orig[HD_K_COUNT];  /* trampoline of each original function */
	uint64_t code_start;        /* the code mapping ... */
	uint64_t code_span;         /* ... and its length: a return address
				       inside means a call from the agent */
};
#endif

/* ---- the shared mapping ---- */

#define HD_AGENT_ALL_FREES 1u /* set: every free goes to the slow path */
#define HD_AGENT_STALLED 2u   /* exact mode gave up waiting for room */

#define HD_SH_FLAGS 8        /* offsetof(struct hd_agent_ctl, flags) */
/* The counting filters of sampled pointers, which every free consults.
 * The summary, 1024 byte counters, is indexed by the top 10 bits of the
 * pointer's hash: 16 cache lines that stay in L1.  Only where it is not
 * zero does a free look at the fine filter: 2^16 4-bit counters, two to
 * a byte (counter e is bits 4*(e&1)..4*(e&1)+3 of byte e>>1), indexed by
 * the top 16 bits, 32 KiB that a process churning through its heap
 * evicts from its caches.  (A byte per counter and no summary, 64 KiB,
 * cost every free a cache miss.)  Counters saturate and then stay there
 * (agent.c); at 15 and 255 that takes more sampled pointers on one
 * counter than a heap of terabytes has. */
#define HD_SH_SUMMARY 2048
#define HD_SUMMARY_BITS 10
#define HD_SH_FILTER 4096
#define HD_FILTER_BITS 16    /* log2 of the number of counters */
#define HD_FILTER_SIZE ((1u << HD_FILTER_BITS) / 2)
#define HD_SH_COUNTERS (HD_SH_FILTER + HD_FILTER_SIZE)
#define HD_NCOUNTERS 256     /* countdowns, one 64-byte line each */
#define HD_COUNTER_STRIDE 64
/* How much stack each thread needs copied (struct hd_agent_stack),
 * learned by heapdbg: a table indexed by a hash of the thread id. */
#define HD_SH_STACKS (HD_SH_COUNTERS + HD_NCOUNTERS * HD_COUNTER_STRIDE)
#define HD_STACKS_BITS 10
#define HD_NSTACKS (1u << HD_STACKS_BITS)
#define HD_STACK_STRIDE 32
/* The set of sampled pointers: 8 slots (one cache line) a bucket. */
#define HD_SH_SET (HD_SH_STACKS + HD_NSTACKS * HD_STACK_STRIDE)
#define HD_SET_BITS 15
#define HD_SET_BUCKETS (1u << HD_SET_BITS)
#define HD_SET_WAYS 8
#define HD_SH_RING (HD_SH_SET + HD_SET_BUCKETS * HD_SET_WAYS * 8)
#define HD_RING_SIZE (8u << 20)
#define HD_SHARED_SIZE (HD_SH_RING + HD_RING_SIZE)

/* Multiplicative hash constant (2^64 / golden ratio). */
#define HD_HASH_MUL 0x9E3779B97F4A7C15

#ifndef __ASSEMBLER__
struct hd_agent_ctl {
	uint32_t magic, version;
	uint32_t flags;        /* HD_AGENT_* (offset HD_SH_FLAGS) */
	uint32_t stack_copy;   /* most bytes of stack copied per sample */
	uint64_t rate;         /* mean sampling interval; <= 1: all */
	uint64_t pid;          /* the tracee, for process_vm_readv */
	/* fastlog2 table: log2(1 + i/64) for i = 0..64, by heapdbg */
	double log2_table[65];
	/* counters the agent increments (atomically) */
	uint64_t inside;       /* threads in the agent's slow path */
	uint64_t dropped;      /* records not written: ring full */
	uint64_t set_full;     /* sampled pointers the set could not hold */
	uint64_t slow_calls;   /* calls that took the slow path */
	uint64_t slow_cycles;  /* rdtsc cycles spent there */
	uint64_t heartbeat;    /* rdtsc when heapdbg last drained */
	/* futex words, shared with heapdbg: calls of _dl_debug_state, the
	 * last of them heapdbg has seen the modules for, and a count that
	 * wakes heapdbg's drain when it changes */
	uint32_t modules_gen, modules_ack, drain_wake;
	uint8_t pad0[64];
	uint64_t head;         /* ring: bytes reserved, ever (producers) */
	uint8_t pad1[56];
	uint64_t tail;         /* ring: bytes consumed, ever (heapdbg) */
	uint8_t pad2[56];
};

/* What heapdbg learned of one thread's stack: a sample taken with sp in
 * [lo, top) needs the stack copied up to `top` only -- the end of the
 * outermost frame an unwinder reads (_start's, or start_thread's), which
 * stays where it is for the thread's whole life.  Written by heapdbg
 * alone under `seq` (odd while it writes); a reader that sees seq odd or
 * changed copies the default amount instead. */
struct hd_agent_stack {
	uint32_t seq;
	uint32_t tid;
	uint64_t lo, top;
	uint64_t pad;
};

/* The table entry of thread `tid`: the agent reads it, heapdbg writes
 * it, and both must find the same one. */
static inline struct hd_agent_stack *hd_agent_stack_of(void *shared,
						      uint32_t tid)
{
	uint64_t h = ((uint64_t)tid * HD_HASH_MUL) >> (64 - HD_STACKS_BITS);
	return (struct hd_agent_stack *)((char *)shared + HD_SH_STACKS) + h;
}

struct hd_agent_counter {
	int64_t left;  /* bytes until the next sample */
	uint64_t rng;  /* xorshift state */
	uint8_t pad[HD_COUNTER_STRIDE - 16];
};

/* ---- ring records (8-byte aligned, never wrapping: a pad record fills
 * the end of the ring when the next record would not fit) ---- */

#define HD_REC_PAD 1
#define HD_REC_ALLOC 2
#define HD_REC_FREE 3

struct hd_rec {
	uint32_t len;   /* whole record, multiple of 8 */
	uint16_t type;
	uint16_t ready; /* 1 when complete (written last, release) */
};

/* The caller's state at the allocator's entry: enough for a DWARF
 * unwinder to continue from the caller's frame. */
struct hd_rec_alloc {
	struct hd_rec h;
	uint32_t kind, stack_len;
	uint32_t tid;
	uint32_t stack_want; /* bytes asked for: stack_len is less when the
				copy stopped at an unmapped page */
	uint64_t ptr, size, rate;
	uint64_t ip;  /* return address into the caller */
	uint64_t sp;  /* the caller's rsp after the return */
	uint64_t rbx, rbp, r12, r13, r14, r15;
	/* followed by stack_len bytes copied from sp upwards */
};

struct hd_rec_free {
	struct hd_rec h;
	uint64_t ptr;
};

#include <stddef.h>
_Static_assert(offsetof(struct hd_agent_slots, code_span) ==
		       HD_SLOT_CODE_SPAN,
	       "slots layout");
_Static_assert(offsetof(struct hd_agent_ctl, flags) == HD_SH_FLAGS,
	       "flags offset");
_Static_assert(sizeof(struct hd_agent_ctl) <= HD_SH_SUMMARY, "ctl size");
_Static_assert(HD_SH_SUMMARY + (1u << HD_SUMMARY_BITS) <= HD_SH_FILTER,
	       "summary size");
_Static_assert(sizeof(struct hd_agent_counter) == HD_COUNTER_STRIDE,
	       "counter size");
_Static_assert(offsetof(struct hd_agent_counter, left) == 0, "left");
_Static_assert(sizeof(struct hd_agent_stack) == HD_STACK_STRIDE, "stack");
_Static_assert(sizeof(struct hd_rec_alloc) % 8 == 0, "record alignment");
#endif

#endif
