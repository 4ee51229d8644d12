#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hd_cli_parse_rate(const char *s, uint64_t *out)
{
	const char *p = s;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*p))
		return -HD_EINVAL; /* also rejects "", "-1", "+1", " 1" */
	for (; isdigit((unsigned char)*p); p++) {
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -HD_EINVAL;
		v = v * 10 + d;
	}
	unsigned shift = 0;
	switch (tolower((unsigned char)*p)) {
	case '\0':
		break;
	case 'k':
		shift = 10;
		break;
	case 'm':
		shift = 20;
		break;
	case 'g':
		shift = 30;
		break;
	default:
		return -HD_EINVAL;
	}
	if (shift && p[1] != '\0')
		return -HD_EINVAL;
	if (v == 0 || v > (UINT64_MAX >> shift))
		return -HD_EINVAL;
	*out = v << shift;
	return 0;
}

void hd_cli_format_rate(char *buf, size_t len, uint64_t rate)
{
	static const struct {
		unsigned shift;
		const char *unit;
	} units[] = {{30, "GiB"}, {20, "MiB"}, {10, "KiB"}};

	for (size_t i = 0; i < HD_ARRAY_SIZE(units); i++) {
		uint64_t m = (uint64_t)1 << units[i].shift;
		if (rate >= m && rate % m == 0) {
			snprintf(buf, len, "%llu %s",
				 (unsigned long long)(rate / m), units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%llu byte%s", (unsigned long long)rate,
		 rate == 1 ? "" : "s");
}

void hd_cli_describe_rate(char *buf, size_t len, uint64_t rate)
{
	char r[48];

	if (rate <= 1) {
		snprintf(buf, len, "recording every allocation");
		return;
	}
	hd_cli_format_rate(r, sizeof(r), rate);
	snprintf(buf, len, "sampling every %s on average", r);
}

int hd_cli_parse_seconds(const char *s, double *out)
{
	char *end;

	/* strtod would accept "inf", "nan", hex and leading blanks. */
	if (!isdigit((unsigned char)s[0]) &&
	    !(s[0] == '.' && isdigit((unsigned char)s[1])))
		return -HD_EINVAL;
	if (strchr(s, 'x') || strchr(s, 'X'))
		return -HD_EINVAL;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s)
		return -HD_EINVAL;
	if (*end == 's')
		end++;
	if (*end != '\0' || !isfinite(v) || v < 0 || v > 1e8)
		return -HD_EINVAL;
	*out = v;
	return 0;
}

int hd_cli_parse_count(const char *s, int *out)
{
	long v = 0;

	if (!isdigit((unsigned char)*s))
		return -HD_EINVAL;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s))
			return -HD_EINVAL;
		v = v * 10 + (*s - '0');
		if (v > 0x7fffffff)
			return -HD_EINVAL;
	}
	if (v == 0)
		return -HD_EINVAL;
	*out = (int)v;
	return 0;
}

void hd_cli_format_count(char *buf, size_t len, double v)
{
	static const char *const suffix[] = {"k", "M", "G", "T"};
	double a = fabs(v);

	if (a < 999.5) {
		snprintf(buf, len, "%.0f", v);
		return;
	}
	for (size_t i = 0; i < HD_ARRAY_SIZE(suffix); i++) {
		a /= 1000;
		/* 999.96k rounds to "1000.0k": use the next unit then. */
		if (a < 999.95 || i + 1 == HD_ARRAY_SIZE(suffix)) {
			snprintf(buf, len, "%.1f%s", v < 0 ? -a : a, suffix[i]);
			return;
		}
	}
}

void hd_cli_format_stats(char *buf, size_t len, const struct hd_cli_stats *st)
{
	const double mb = 1024.0 * 1024.0;
	char allocs[32], frees[32], rss[32];

	hd_cli_format_count(allocs, sizeof(allocs), st->allocs_per_s);
	hd_cli_format_count(frees, sizeof(frees), st->frees_per_s);
	if (st->rss < 0)
		snprintf(rss, sizeof(rss), "?");
	else
		snprintf(rss, sizeof(rss), "%.1f", st->rss / mb);
	/* "%+.2f" would print "+-0.00" never, but "-0.00" for tiny negative
	 * values: clamp those to zero so a flat heap reads "+0.00". */
	double growth = st->growth / mb;
	if (fabs(growth) < 0.005)
		growth = 0;
	snprintf(buf, len,
		 "heap %d @%.3fs: %.1f->%.1f MB in use (est.), %+.2f MB/s, "
		 "%s allocs/s, %s frees/s, rss %s MB, %llu sample%s, "
		 "%d thread%s",
		 st->seq, st->time, st->inuse_before / mb, st->inuse_now / mb,
		 growth, allocs, frees, rss, (unsigned long long)st->samples,
		 st->samples == 1 ? "" : "s", st->threads, st->threads == 1 ? "" : "s");
	if (!st->how)
		return;
	char sps[32], more[64];
	size_t used = strlen(buf);
	hd_cli_format_count(sps, sizeof(sps), st->samples_per_s);
	if (strcmp(st->how, "agent") == 0) {
		snprintf(more, sizeof(more), "%llu dropped, %.2f%% cpu",
			 (unsigned long long)st->dropped, st->agent_cpu * 100);
	} else {
		char stops[32];
		hd_cli_format_count(stops, sizeof(stops), st->stops_per_s);
		snprintf(more, sizeof(more), "%s stops/s", stops);
	}
	snprintf(buf + used, len > used ? len - used : 0,
		 "; %s: %s samples/s, %s", st->how, sps, more);
}
