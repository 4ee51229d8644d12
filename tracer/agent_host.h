/* heapdbg's side of the in-tracee agent; tracer/ internal. */
#ifndef HD_AGENT_HOST_H
#define HD_AGENT_HOST_H

#include <stdbool.h>

#include "agent/agent_abi.h"
#include "internal.h"
#include "reloc.h"

/* Bytes of stack copied with each sampled allocation: as much as
 * `perf record --call-graph dwarf` copies by default. */
#define HD_AGENT_STACK_COPY 8192

struct hd_agent;

/* An entry point to patch: its first bytes and the whole function. */
struct hd_agent_target {
	int kind; /* HD_K_* == enum hd_entry_kind, or HD_K_RBRK */
	uint64_t addr;
	uint8_t code[32];
	const uint8_t *body;
	size_t body_len;
};

struct hd_agent_patch {
	int kind;
	uint64_t addr, tramp;
	uint8_t jmp[HD_RELOC_JMP5_LEN];
	uint8_t orig[HD_RELOC_JMP5_LEN];
	struct hd_reloc reloc;
	bool refused; /* cannot be relocated: the caller uses a breakpoint */
	bool active;  /* the jmp is in place */
	char why[128];
};

/* Map and fill the agent using stopped thread `tid` (every thread of pid
 * must be stopped); nothing is patched yet.  A signal that arrives for
 * tid meanwhile is stored in *pending_sig for the caller to deliver. */
int hd_agent_install(pid_t pid, pid_t tid, int *pending_sig,
		     const struct hd_agent_target *tg, int n, uint64_t rate,
		     struct hd_rng *rng, struct hd_agent **out, char *why,
		     size_t whylen) HD_MUST_CHECK;
int hd_agent_patches(struct hd_agent *a, struct hd_agent_patch **out);
/* Write (on) or restore (off) patch i in the memory of pid. */
int hd_agent_patch_write(struct hd_agent *a, pid_t pid, int i, bool on);
/* Where a thread stopped at rip inside the agent's stubs or trampolines
 * must go once the entry points are restored; 0 if rip is not there. */
uint64_t hd_agent_fixup_rip(const struct hd_agent *a, uint64_t rip);
bool hd_agent_in_code(const struct hd_agent *a, uint64_t rip);
/* A thread stopped at rip inside the bytes a patch will overwrite (past
 * their first) must continue in the trampoline: where; 0 if rip is not in
 * such bytes, 1 if it is but not at an instruction start. */
uint64_t hd_agent_into_tramp(const struct hd_agent *a, uint64_t rip);
/* Does the top 64 KiB of a thread's stack hold an address in the agent?
 * (A return address, or the rip saved by a signal that interrupted a stub
 * and whose handler still runs: either way unmapping would crash it.) */
bool hd_agent_on_stack(const struct hd_agent *a, pid_t tid, uint64_t rsp);
/* No thread is in the agent's slow path. */
bool hd_agent_quiet(const struct hd_agent *a);
/* Unmap both mappings from the tracee (through stopped thread tid). */
void hd_agent_remove(struct hd_agent *a, pid_t tid, int *pending_sig);
/* Our side only. */
void hd_agent_free(struct hd_agent *a);
void hd_agent_set_rate(struct hd_agent *a, uint64_t rate, struct hd_rng *rng);

/* Calls of the dynamic linker's _dl_debug_state so far (HD_K_RBRK). */
uint32_t hd_agent_modules_gen(const struct hd_agent *a);
/* The modules were read after call `gen`: the threads waiting in the
 * hook go on.  (A gen far ahead, 2^30 past the last call, releases every
 * waiter for good: detach.) */
void hd_agent_modules_ack(struct hd_agent *a, uint32_t gen);
/* The drain's wake-up word, and a sleep of up to usec that ends early
 * when the word is no longer `seen` (the _dl_debug_state hook, or
 * hd_agent_kick()).  The word may be unmapped meanwhile (the agent
 * removed): the sleep ends then. */
const uint32_t *hd_agent_wake_word(const struct hd_agent *a);
void hd_agent_nap(const uint32_t *wake_word, uint32_t seen, long usec);
void hd_agent_kick(struct hd_agent *a);
/* Ring positions: bytes reserved by the process, consumed by us. */
uint64_t hd_agent_head(const struct hd_agent *a);
uint64_t hd_agent_tail(const struct hd_agent *a);

struct hd_agent_stats {
	uint64_t dropped, slow_calls, agent_ns, set_full;
};
void hd_agent_stats(const struct hd_agent *a, struct hd_agent_stats *s);

struct hd_agent_drained {
	uint64_t samples, frees, unwind_failures;
};
/* Consume every complete record; returns how many. */
int hd_agent_drain(struct hd_agent *a, struct hd_unwinder *u,
		   struct hd_prof *prof, struct hd_agent_drained *d);

#endif
