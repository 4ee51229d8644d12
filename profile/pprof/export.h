/* profile/pprof: snapshots written for other tools.
 *
 * hd_export_pprof() writes a gzipped profile.proto (the format go tool
 * pprof and pprof read; the schema is profile/pprof/profile.proto, with
 * the field numbers of the published format): sample types
 * alloc_objects/count, alloc_space/bytes, inuse_objects/count,
 * inuse_space/bytes, default inuse_space, period space/bytes = rate.
 * A snapshot made by hd_snap_diff() is written as a difference (negative
 * values), which pprof reads as a -diff_base profile.
 *
 * hd_export_folded() writes collapsed stacks ("root;...;leaf value" per
 * line, outermost frame first) for flamegraph.pl, speedscope, inferno.
 */
#ifndef HD_EXPORT_H
#define HD_EXPORT_H

#include <stdio.h>

#include "../profile.h"
#include "../../symbols/symbols.h"

/* Where names come from: normally the snapshot's hd_sym_space. */
struct hd_export_src {
	int (*resolve)(void *ctx, uint64_t pc, struct hd_frame *frames,
		       int max);
	void (*modules)(void *ctx,
			void (*fn)(void *fnctx,
				   const struct hd_sym_module_info *),
			void *fnctx);
	void *ctx;
	double start_time; /* wall-clock seconds (epoch) of session start */
};

/* Returns 0, or -HD_EIO / -HD_ENOMEM with a message in err. */
int hd_export_pprof(const char *path, const struct hd_snap *s,
		    const struct hd_export_src *src, char *err,
		    size_t errlen) HD_MUST_CHECK;
int hd_export_folded(const char *path, const struct hd_snap *s,
		     enum hd_sample_index index,
		     const struct hd_export_src *src, char *err,
		     size_t errlen) HD_MUST_CHECK;

#endif
