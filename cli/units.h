/* cli/units: numbers as the user types and reads them.
 *
 * Rates (sampling intervals) in bytes with k/m/g suffixes, durations in
 * seconds, counts, and the gctrace-style stats line.  Pure functions, no
 * I/O: unit-tested in tests/unit/test_cli.c.
 */
#ifndef HD_CLI_UNITS_H
#define HD_CLI_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/hd.h"

/* What a valid rate looks like, for error messages. */
#define HD_CLI_RATE_HINT                                                     \
	"expected a positive number of bytes, optionally with k, m or g "    \
	"(e.g. 512k)"

/* "524288", "512k", "1M", "2g" (suffixes are powers of 1024, either case)
 * -> bytes.  0, negatives, junk and overflow give -HD_EINVAL. */
int hd_cli_parse_rate(const char *s, uint64_t *out) HD_MUST_CHECK;

/* 524288 -> "512 KiB", 1048576 -> "1 MiB", 1000 -> "1000 bytes",
 * 1 -> "1 byte": the largest binary unit the rate is an exact multiple
 * of. */
void hd_cli_format_rate(char *buf, size_t len, uint64_t rate);

/* "sampling every 512 KiB on average", or "recording every allocation"
 * when rate is 1. */
void hd_cli_describe_rate(char *buf, size_t len, uint64_t rate);

/* Seconds: a finite decimal number >= 0 (at most 10^8), optionally
 * followed by "s".  -HD_EINVAL otherwise. */
int hd_cli_parse_seconds(const char *s, double *out) HD_MUST_CHECK;

/* A positive decimal integer that fits an int.  -HD_EINVAL otherwise. */
int hd_cli_parse_count(const char *s, int *out) HD_MUST_CHECK;

/* A per-second or plain count the way gctrace-style lines print it:
 * "950", "18.2k", "3.4M", "1.2G". */
void hd_cli_format_count(char *buf, size_t len, double v);

/* Everything one stats line shows (see SPEC.md, "stats"). */
struct hd_cli_stats {
	int seq;               /* 1 for the first line of the session */
	double time;           /* seconds since the session started */
	double inuse_before;   /* bytes, at the previous line (or 0) */
	double inuse_now;      /* bytes */
	double growth;         /* bytes per second since the previous line */
	double allocs_per_s;   /* estimated objects allocated per second */
	double frees_per_s;    /* estimated objects freed per second */
	double rss;            /* bytes; < 0 if unknown */
	uint64_t samples;      /* raw sampled allocations since start */
	int threads;
	/* How the samples were taken, since the previous line; printed
	 * only when `how` is set: "agent" or "breakpoints". */
	const char *how;
	double samples_per_s;
	uint64_t dropped;      /* agent: records lost to a full ring */
	double agent_cpu;      /* agent: share of one CPU spent in it */
	double stops_per_s;    /* breakpoints: ptrace stops per second */
};

/* "heap 7 @12.004s: 31.2->35.0 MB in use (est.), +0.31 MB/s, 18.2k
 * allocs/s, 18.0k frees/s, rss 52.4 MB, 64 samples, 4 threads"
 * (MB = 2^20 bytes, as pprof and the Go runtime mean it), then, while
 * attached, how sampling costs: "; agent: 5.3 samples/s, 0 dropped,
 * 0.12% cpu" or "; breakpoints: 5.3 samples/s, 18.2k stops/s". */
void hd_cli_format_stats(char *buf, size_t len, const struct hd_cli_stats *st);

#endif
