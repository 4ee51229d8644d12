/* Parsing /proc/PID/maps, shared by tracer/ and symbols/. */
#ifndef HD_MAPS_H
#define HD_MAPS_H

#include <stdint.h>
#include <sys/types.h>

#include "hd.h"

struct hd_map {
	uint64_t start, end, offset;
	uint64_t inode;
	char perms[5]; /* "r-xp" */
	char *path;    /* NULL for anonymous mappings; "[stack]" etc. as is */
};

struct hd_maps {
	size_t n;
	struct hd_map *v;
};

/* Reads /proc/PID/maps.  Returns 0 or -HD_ENOPROC / -HD_EPERM /
 * -HD_ENOMEM. */
int hd_maps_read(pid_t pid, struct hd_maps *out) HD_MUST_CHECK;
void hd_maps_free(struct hd_maps *m);
/* The mapping containing addr, or NULL. */
const struct hd_map *hd_maps_find(const struct hd_maps *m, uint64_t addr);

#endif
