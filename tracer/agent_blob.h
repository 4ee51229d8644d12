/* The agent image embedded in heapdbg (generated from tracer/agent/). */
#ifndef HD_AGENT_BLOB_H
#define HD_AGENT_BLOB_H

#include <stdint.h>

#include "agent/agent_abi.h"

struct hd_agent_layout {
	uint32_t size;        /* bytes of hd_agent_blob */
	uint32_t slots;       /* offset of struct hd_agent_slots */
	uint32_t stubs_start, stubs_end; /* the entry stubs' code */
	uint32_t common;      /* hd_agent_common: past every stub's own
				 instructions (state saved on the stack) */
	uint32_t entry[HD_K_COUNT];      /* each kind's entry stub */
};

extern const unsigned char hd_agent_blob[];
extern const struct hd_agent_layout hd_agent_layout;

#endif
