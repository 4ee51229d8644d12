/* cli/report: pprof's text reports (top, list, traces) of a snapshot.
 *
 * The layout is exactly what `go tool pprof` prints for the same profile
 * (github.com/google/pprof internal/report): the same header lines, column
 * widths, unit scaling, node dropping (nodefraction 0.005), sorting and
 * ties.  Allocator frames (malloc, calloc, realloc, operator new, ...)
 * are trimmed from the top of every stack as pprof does; inlined frames
 * are frames of their own.
 */
#ifndef HD_REPORT_H
#define HD_REPORT_H

#include <stdio.h>

#include "../profile/profile.h"
#include "../symbols/symbols.h"

struct hd_report_opts {
	enum hd_sample_index index; /* default HD_INUSE_SPACE */
	int cum;                    /* sort by cum instead of flat */
	const char *unit;           /* "B", "KB", "MB", "GB" or "auto"(NULL) */
	const char *focus;          /* POSIX extended regex or NULL */
	const char *ignore;         /* POSIX extended regex or NULL */
	int n;                      /* top/traces: how many; <= 0: default */

	/* How pcs become frames: normally hd_sym_resolve on the snapshot's
	 * symbol space; tests substitute their own. */
	int (*resolve)(void *ctx, uint64_t pc, struct hd_frame *frames,
		       int max);
	const char *(*source_line)(void *ctx, const char *file, int line);
	void *ctx;
};

/* Each returns 0, or -HD_EINVAL with a message in err (bad regex), or
 * -HD_ENOTFOUND for list with no matching function ("no matches found for
 * regexp: X", as pprof says). */
int hd_report_top(FILE *out, const struct hd_snap *s,
		  const struct hd_report_opts *o, char *err, size_t errlen);
int hd_report_list(FILE *out, const struct hd_snap *s, const char *regex,
		   const struct hd_report_opts *o, char *err, size_t errlen);
int hd_report_traces(FILE *out, const struct hd_snap *s,
		     const struct hd_report_opts *o, char *err, size_t errlen);

/* pprof's unit formatting of a value of sample index i: "3.01MB", "512B",
 * "1.50kB", counts as "1234" / "12.5k"? -- exactly as pprof's
 * measurement.Label / ScaledLabel does for the given unit option. */
void hd_report_format_value(char *buf, size_t len, double v,
			    enum hd_sample_index i, const char *unit);

#endif
