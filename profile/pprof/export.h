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

/* Allocator frames, trimmed from the top of every stack as pprof trims a
 * heap profile: pprof's own list (allocRxStr in github.com/google/pprof
 * profile/legacy_profile.go) plus the libstdc++ allocator layers and the
 * entry points heapdbg covers that it lacks; and the frames exempted
 * (allocSkipRxStr).  Regular expressions (the same text in RE2 and POSIX
 * ERE syntax) matched against a whole function name; hd_export_pprof()
 * writes them as the profile's drop_frames and keep_frames, so pprof
 * trims exactly these. */
extern const char hd_export_drop_frames[];
extern const char hd_export_keep_frames[];

/* 1 if pprof takes the function named `func` (a demangled name, as
 * hd_frame.func) for an allocator frame, after its simplification of the
 * name (no argument list, no leading '.'); 0 if not; -HD_ENOMEM. */
int hd_export_alloc_frame(const char *func) HD_MUST_CHECK;

/* pprof's trimming (profile/prune.go, Profile.Prune) of one stack.
 * frames[0..n) are the frames of the stack's pcs as resolved, innermost
 * first and concatenated; loc[i] tells which pc frame i came from (equal
 * for the frames of one pc, which are adjacent).  Sets keep[i] to 1 for
 * the frames pprof keeps, 0 for those it drops: from the first allocator
 * frame below user code (going from the root) to the innermost frame,
 * and the inlined frames that sit inside an allocator frame of the same
 * pc.  Returns the number of frames kept, or -HD_ENOMEM. */
int hd_export_prune(const struct hd_frame *frames, const int *loc, int n,
		    unsigned char *keep) HD_MUST_CHECK;

#endif
