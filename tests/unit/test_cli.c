/* Unit tests of cli/'s parsing: rates, durations, the stats line, the
 * words of a command line, report flags, the heapdbg command line, -x
 * files and attach-error diagnosis. */
#include <stdint.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#include "cli/diagnose.h"
#include "cli/options.h"
#include "cli/parse.h"
#include "cli/units.h"
#include "hd_test.h"

/* ---- rates ---- */

static long long rate_of(const char *s)
{
	uint64_t v = 0;
	if (hd_cli_parse_rate(s, &v) < 0)
		return -1;
	return (long long)v;
}

HD_TEST(rate_plain_and_suffixes)
{
	HD_EXPECT_EQ(rate_of("1"), 1);
	HD_EXPECT_EQ(rate_of("524288"), 524288);
	HD_EXPECT_EQ(rate_of("512k"), 524288);
	HD_EXPECT_EQ(rate_of("512K"), 524288);
	HD_EXPECT_EQ(rate_of("1m"), 1048576);
	HD_EXPECT_EQ(rate_of("3M"), 3 * 1048576);
	HD_EXPECT_EQ(rate_of("2g"), 2LL << 30);
	HD_EXPECT_EQ(rate_of("1G"), 1LL << 30);
	HD_EXPECT_EQ(rate_of("007"), 7);
}

HD_TEST(rate_rejects_junk)
{
	const char *bad[] = {"",   "0",	 "0k",	 "-1",	 "+5",	"k",
			     "1x", "1kb", "1 k", " 1",	 "1.5m", "12k3",
			     "0x10", "1e3", "1t", "abc"};
	for (size_t i = 0; i < HD_ARRAY_SIZE(bad); i++)
		if (rate_of(bad[i]) != -1)
			HD_FAIL_AT("rate '%s' accepted", bad[i]);
}

HD_TEST(rate_overflow)
{
	uint64_t v; /* UINT64_MAX itself fits */
	HD_EXPECT_EQ(hd_cli_parse_rate("18446744073709551615", &v), 0);
	HD_EXPECT(v == UINT64_MAX);
	HD_EXPECT_EQ(hd_cli_parse_rate("18446744073709551616", &v),
		     -HD_EINVAL);
	HD_EXPECT_EQ(hd_cli_parse_rate("17179869183g", &v), 0); /* 2^64-2^30 */
	HD_EXPECT_EQ(hd_cli_parse_rate("17179869184g", &v), -HD_EINVAL);
	HD_EXPECT_EQ(hd_cli_parse_rate("99999999999999999999999k", &v),
		     -HD_EINVAL);
}

static const char *fmt_rate(uint64_t r)
{
	static char buf[64];
	hd_cli_format_rate(buf, sizeof(buf), r);
	return buf;
}

HD_TEST(rate_format)
{
	HD_EXPECT_STREQ(fmt_rate(524288), "512 KiB");
	HD_EXPECT_STREQ(fmt_rate(1024), "1 KiB");
	HD_EXPECT_STREQ(fmt_rate(1536 * 1024), "1536 KiB");
	HD_EXPECT_STREQ(fmt_rate(1048576), "1 MiB");
	HD_EXPECT_STREQ(fmt_rate(3ULL << 30), "3 GiB");
	HD_EXPECT_STREQ(fmt_rate(1000), "1000 bytes");
	HD_EXPECT_STREQ(fmt_rate(1025), "1025 bytes");
	HD_EXPECT_STREQ(fmt_rate(1), "1 byte");
	char buf[64];
	hd_cli_describe_rate(buf, sizeof(buf), 524288);
	HD_EXPECT_STREQ(buf, "sampling every 512 KiB on average");
	hd_cli_describe_rate(buf, sizeof(buf), 1);
	HD_EXPECT_STREQ(buf, "recording every allocation");
	hd_cli_describe_rate(buf, sizeof(buf), 4096);
	HD_EXPECT_STREQ(buf, "sampling every 4 KiB on average");
}

/* ---- durations, counts, the stats line ---- */

HD_TEST(seconds_and_counts)
{
	double d = -1;
	HD_EXPECT_EQ(hd_cli_parse_seconds("2", &d), 0);
	HD_EXPECT(d == 2.0);
	HD_EXPECT_EQ(hd_cli_parse_seconds("0.25", &d), 0);
	HD_EXPECT(d == 0.25);
	HD_EXPECT_EQ(hd_cli_parse_seconds(".5s", &d), 0);
	HD_EXPECT(d == 0.5);
	HD_EXPECT_EQ(hd_cli_parse_seconds("0", &d), 0);
	HD_EXPECT(d == 0);
	const char *bad[] = {"", "-1", "inf", "nan", "1ms", "0x10", " 1",
			     "1e9", "s", "2ss"};
	for (size_t i = 0; i < HD_ARRAY_SIZE(bad); i++)
		if (hd_cli_parse_seconds(bad[i], &d) == 0)
			HD_FAIL_AT("duration '%s' accepted", bad[i]);
	int n = 0;
	HD_EXPECT_EQ(hd_cli_parse_count("25", &n), 0);
	HD_EXPECT_EQ(n, 25);
	HD_EXPECT_EQ(hd_cli_parse_count("0", &n), -HD_EINVAL);
	HD_EXPECT_EQ(hd_cli_parse_count("3x", &n), -HD_EINVAL);
	HD_EXPECT_EQ(hd_cli_parse_count("2147483648", &n), -HD_EINVAL);
}

HD_TEST(count_format)
{
	char b[32];
	hd_cli_format_count(b, sizeof(b), 0);
	HD_EXPECT_STREQ(b, "0");
	hd_cli_format_count(b, sizeof(b), 950.2);
	HD_EXPECT_STREQ(b, "950");
	hd_cli_format_count(b, sizeof(b), 18200);
	HD_EXPECT_STREQ(b, "18.2k");
	hd_cli_format_count(b, sizeof(b), 999960);
	HD_EXPECT_STREQ(b, "1.0M");
	hd_cli_format_count(b, sizeof(b), 3.44e6);
	HD_EXPECT_STREQ(b, "3.4M");
	hd_cli_format_count(b, sizeof(b), 1.2e9);
	HD_EXPECT_STREQ(b, "1.2G");
}

HD_TEST(stats_line_as_in_spec)
{
	const double mb = 1048576;
	struct hd_cli_stats st = {
		.seq = 7,
		.time = 12.004,
		.inuse_before = 31.2 * mb,
		.inuse_now = 35.0 * mb,
		.growth = 0.31 * mb,
		.allocs_per_s = 18200,
		.frees_per_s = 18000,
		.rss = 52.4 * mb,
		.samples = 64,
		.threads = 4,
	};
	char buf[256];
	hd_cli_format_stats(buf, sizeof(buf), &st);
	HD_EXPECT_STREQ(buf, "heap 7 @12.004s: 31.2->35.0 MB in use (est.), "
			     "+0.31 MB/s, 18.2k allocs/s, 18.0k frees/s, "
			     "rss 52.4 MB, 64 samples, 4 threads");
	st = (struct hd_cli_stats){.seq = 1, .time = 0.5, .inuse_now = mb,
				   .growth = -0.001, .rss = -1, .samples = 1,
				   .threads = 1};
	hd_cli_format_stats(buf, sizeof(buf), &st);
	HD_EXPECT_STREQ(buf, "heap 1 @0.500s: 0.0->1.0 MB in use (est.), "
			     "+0.00 MB/s, 0 allocs/s, 0 frees/s, rss ? MB, "
			     "1 sample, 1 thread");
	st.growth = -2.5 * mb;
	hd_cli_format_stats(buf, sizeof(buf), &st);
	HD_EXPECT(strstr(buf, ", -2.50 MB/s, ") != NULL);
}

/* ---- words ---- */

static char **words_of(const char *line, int *n)
{
	char **w = NULL;
	char err[128];
	if (hd_cli_tokenize(line, &w, n, err, sizeof(err)) < 0)
		return NULL;
	return w;
}

HD_TEST(tokenize_blanks_and_quotes)
{
	int n = -1;
	char **w = words_of("  top   5\t-base  base  ", &n);
	HD_ASSERT(w);
	HD_EXPECT_EQ(n, 4);
	HD_EXPECT_STREQ(w[0], "top");
	HD_EXPECT_STREQ(w[1], "5");
	HD_EXPECT_STREQ(w[2], "-base");
	HD_EXPECT_STREQ(w[3], "base");
	HD_EXPECT(w[4] == NULL);
	hd_cli_words_free(w);

	w = words_of("list 'std::vector<int> *' \"a \\\"b\\\" \\\\c\" x\\ y "
		     "-focus='a b'",
		     &n);
	HD_ASSERT(w);
	HD_EXPECT_EQ(n, 5);
	HD_EXPECT_STREQ(w[1], "std::vector<int> *");
	HD_EXPECT_STREQ(w[2], "a \"b\" \\c");
	HD_EXPECT_STREQ(w[3], "x y");
	HD_EXPECT_STREQ(w[4], "-focus=a b");
	hd_cli_words_free(w);

	w = words_of("'\\n' \"\\n\"", &n); /* backslash literal inside */
	HD_ASSERT(w);
	HD_EXPECT_EQ(n, 2);
	HD_EXPECT_STREQ(w[0], "\\n");
	HD_EXPECT_STREQ(w[1], "\\n");
	hd_cli_words_free(w);
}

HD_TEST(tokenize_comments_and_empty)
{
	int n = -1;
	char **w = words_of("", &n);
	HD_ASSERT(w);
	HD_EXPECT_EQ(n, 0);
	HD_EXPECT(w[0] == NULL);
	hd_cli_words_free(w);

	w = words_of("   # just a comment", &n);
	HD_ASSERT(w);
	HD_EXPECT_EQ(n, 0);
	hd_cli_words_free(w);

	w = words_of("snapshot a#b # comment '", &n);
	HD_ASSERT(w);
	HD_EXPECT_EQ(n, 2);
	HD_EXPECT_STREQ(w[1], "a#b");
	hd_cli_words_free(w);

	w = words_of("''", &n); /* an empty word is a word */
	HD_ASSERT(w);
	HD_EXPECT_EQ(n, 1);
	HD_EXPECT_STREQ(w[0], "");
	hd_cli_words_free(w);
}

HD_TEST(tokenize_unterminated)
{
	char **w = NULL;
	int n;
	char err[128] = "";
	HD_EXPECT_EQ(hd_cli_tokenize("list 'abc", &w, &n, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unterminated single quote");
	HD_EXPECT_EQ(hd_cli_tokenize("list \"a\\\"", &w, &n, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unterminated double quote");
}

HD_TEST(abbreviations)
{
	HD_EXPECT(hd_cli_abbrev_match("snapshot", "snapshot", 4));
	HD_EXPECT(hd_cli_abbrev_match("snap", "snapshot", 4));
	HD_EXPECT(!hd_cli_abbrev_match("sna", "snapshot", 4));
	HD_EXPECT(!hd_cli_abbrev_match("snapshotx", "snapshot", 4));
	HD_EXPECT(hd_cli_abbrev_match("q", "quit", 1));
	HD_EXPECT(!hd_cli_abbrev_match("", "quit", 1));
	HD_EXPECT(!hd_cli_abbrev_match("qx", "quit", 1));
	HD_EXPECT(!hd_cli_abbrev_match("snapshots", "snapshot", 4));
}

/* ---- report flags ---- */

static int parse_report(enum hd_cli_report_kind k, const char *line,
			struct hd_cli_report_args *a, char *err, size_t len)
{
	int n;
	char **w = words_of(line, &n);
	if (!w)
		return -100;
	int r = hd_cli_parse_report_args(k, w, n, a, err, len);
	/* The args point into the words: keep them (leaked on purpose in
	 * the forked test child). */
	return r;
}

HD_TEST(top_flags)
{
	struct hd_cli_report_args a;
	char err[128] = "";

	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "", &a, err, sizeof(err)), 0);
	HD_EXPECT_EQ(a.n, 0);
	HD_EXPECT(a.snapshot == NULL && a.base == NULL && a.unit == NULL);
	HD_EXPECT_EQ(a.index, HD_INUSE_SPACE);
	HD_EXPECT_EQ(a.cum, 0);

	HD_EXPECT_EQ(parse_report(HD_CLI_TOP,
				  "5 -base base -alloc_space current -cum "
				  "-unit=mb -focus=handle --ignore zlib",
				  &a, err, sizeof(err)),
		     0);
	HD_EXPECT_EQ(a.n, 5);
	HD_EXPECT_STREQ(a.base, "base");
	HD_EXPECT_STREQ(a.snapshot, "current");
	HD_EXPECT_EQ(a.index, HD_ALLOC_SPACE);
	HD_EXPECT_EQ(a.cum, 1);
	HD_EXPECT_STREQ(a.unit, "MB");
	HD_EXPECT_STREQ(a.focus, "handle");
	HD_EXPECT_STREQ(a.ignore, "zlib");

	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "-base=b1 -inuse_objects s2",
				  &a, err, sizeof(err)),
		     0);
	HD_EXPECT_EQ(a.n, 0);
	HD_EXPECT_STREQ(a.base, "b1");
	HD_EXPECT_STREQ(a.snapshot, "s2");
	HD_EXPECT_EQ(a.index, HD_INUSE_OBJECTS);

	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "-unit auto -alloc_objects 3",
				  &a, err, sizeof(err)),
		     0);
	HD_EXPECT(a.unit == NULL);
	HD_EXPECT_EQ(a.index, HD_ALLOC_OBJECTS);
	HD_EXPECT_EQ(a.n, 3);

	/* A number after the snapshot name is a second positional. */
	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "s1 5", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unexpected argument '5'; see 'help top'");
}

HD_TEST(top_flag_errors)
{
	struct hd_cli_report_args a;
	char err[128] = "";

	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "-x", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unknown flag '-x'; see 'help top'");
	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "-base", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "flag -base needs a value; see 'help top'");
	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "-base=", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "flag -base needs a value; see 'help top'");
	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "-cum=1", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unknown flag '-cum=1'; see 'help top'");
	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "-unit=TB", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "bad unit 'TB': expected B, KB, MB, GB or auto");
	HD_EXPECT_EQ(parse_report(HD_CLI_TOP, "-format=folded", &a, err,
				  sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unknown flag '-format=folded'; see 'help top'");
	HD_EXPECT_EQ(parse_report(HD_CLI_TRACES, "1 2 3", &a, err,
				  sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unexpected argument '3'; see 'help traces'");
	HD_EXPECT_EQ(parse_report(HD_CLI_TRACES, "-", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unknown flag '-'; see 'help traces'");
}

HD_TEST(list_flags)
{
	struct hd_cli_report_args a;
	char err[128] = "";

	HD_EXPECT_EQ(parse_report(HD_CLI_LIST, "handle_request", &a, err,
				  sizeof(err)),
		     0);
	HD_EXPECT_STREQ(a.regex, "handle_request");
	HD_EXPECT(a.snapshot == NULL);
	/* A number is a regex for list, not N. */
	HD_EXPECT_EQ(parse_report(HD_CLI_LIST, "42 exit -base=base", &a, err,
				  sizeof(err)),
		     0);
	HD_EXPECT_STREQ(a.regex, "42");
	HD_EXPECT_STREQ(a.snapshot, "exit");
	HD_EXPECT_STREQ(a.base, "base");
	HD_EXPECT_EQ(parse_report(HD_CLI_LIST, "-cum", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "missing REGEX; see 'help list'");
	HD_EXPECT_EQ(parse_report(HD_CLI_LIST, "a b c", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unexpected argument 'c'; see 'help list'");
}

HD_TEST(traces_flags)
{
	struct hd_cli_report_args a;
	char err[128] = "";

	HD_EXPECT_EQ(parse_report(HD_CLI_TRACES, "3 exit", &a, err,
				  sizeof(err)),
		     0);
	HD_EXPECT_EQ(a.n, 3);
	HD_EXPECT_STREQ(a.snapshot, "exit");
	HD_EXPECT_EQ(parse_report(HD_CLI_TRACES, "exit", &a, err, sizeof(err)),
		     0);
	HD_EXPECT_EQ(a.n, 0);
	HD_EXPECT_STREQ(a.snapshot, "exit");
}

HD_TEST(export_flags)
{
	struct hd_cli_report_args a;
	char err[128] = "";

	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT,
				  "growth.pb.gz current -base base", &a, err,
				  sizeof(err)),
		     0);
	HD_EXPECT_STREQ(a.file, "growth.pb.gz");
	HD_EXPECT_STREQ(a.snapshot, "current");
	HD_EXPECT_STREQ(a.base, "base");
	HD_EXPECT_EQ(a.folded, 0);
	HD_EXPECT_EQ(a.all, 0);

	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT, "out.folded", &a, err,
				  sizeof(err)),
		     0);
	HD_EXPECT_EQ(a.folded, 1);
	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT,
				  "out.txt -format=folded -alloc_objects", &a,
				  err, sizeof(err)),
		     0);
	HD_EXPECT_EQ(a.folded, 1);
	HD_EXPECT_EQ(a.index, HD_ALLOC_OBJECTS);
	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT, "x.folded -format pprof", &a,
				  err, sizeof(err)),
		     0);
	HD_EXPECT_EQ(a.folded, 0);
	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT, "-all dir", &a, err,
				  sizeof(err)),
		     0);
	HD_EXPECT_EQ(a.all, 1);
	HD_EXPECT_STREQ(a.file, "dir");

	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT, "", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "missing FILE; see 'help export'");
	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT, "-all", &a, err, sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "missing DIR; see 'help export'");
	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT, "-all d s", &a, err,
				  sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err,
			"-all writes every snapshot; unexpected argument 's'");
	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT, "f -format=svg", &a, err,
				  sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "bad format 'svg': expected pprof or folded");
	HD_EXPECT_EQ(parse_report(HD_CLI_EXPORT, "f -cum", &a, err,
				  sizeof(err)),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "unknown flag '-cum'; see 'help export'");
}

HD_TEST(report_flag_lists)
{
	const char *const *f = hd_cli_report_flags(HD_CLI_EXPORT);
	int n = 0, has_all = 0, has_cum = 0;
	for (; f[n]; n++) {
		has_all |= strcmp(f[n], "-all") == 0;
		has_cum |= strcmp(f[n], "-cum") == 0;
	}
	HD_EXPECT_EQ(n, 7);
	HD_EXPECT(has_all && !has_cum);
	f = hd_cli_report_flags(HD_CLI_TOP);
	for (n = 0; f[n]; n++)
		;
	HD_EXPECT_EQ(n, 9);
	HD_EXPECT_STREQ(f[0], "-base");
}

/* ---- the heapdbg command line ---- */

static int parse_cmdline(struct hd_cli_options *o, char *err, size_t len,
			 char **argv)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	return hd_cli_parse_options(argc, argv, o, err, len);
}

#define ARGV(...) ((char *[]){"heapdbg", __VA_ARGS__, NULL})

HD_TEST(options_attach_defaults)
{
	struct hd_cli_options o;
	char err[256] = "";
	HD_ASSERT(parse_cmdline(&o, err, sizeof(err), ARGV("attach", "4242")) ==
		  0);
	HD_EXPECT_EQ(o.action, HD_CLI_ATTACH);
	HD_EXPECT_EQ(o.pid, 4242);
	HD_EXPECT_EQ(o.rate, 524288);
	HD_EXPECT_EQ(o.batch, 0);
	HD_EXPECT_EQ(o.quiet, 0);
	HD_EXPECT_EQ(o.nscripts, 0);
	hd_cli_options_free(&o);
}

HD_TEST(options_rate_forms)
{
	struct hd_cli_options o;
	char err[256] = "";
	char **forms[] = {
		ARGV("-r", "4k", "attach", "1"),
		ARGV("-r4k", "attach", "1"),
		ARGV("--rate=4k", "attach", "1"),
		ARGV("-rate=4k", "attach", "1"),
		ARGV("--rate", "4k", "attach", "1"),
		ARGV("-rate", "4096", "attach", "1"),
		ARGV("attach", "1", "--rate=4K"),
	};
	for (size_t i = 0; i < HD_ARRAY_SIZE(forms); i++) {
		if (parse_cmdline(&o, err, sizeof(err), forms[i]) != 0) {
			HD_FAIL_AT("form %zu: %s", i, err);
			continue;
		}
		if (o.rate != 4096)
			HD_FAIL_AT("form %zu: rate %llu", i,
				   (unsigned long long)o.rate);
		hd_cli_options_free(&o);
	}
	HD_EXPECT_EQ(parse_cmdline(&o, err, sizeof(err),
				   ARGV("--rate=0", "attach", "1")),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "bad rate '0': expected a positive number of "
			     "bytes, optionally with k, m or g (e.g. 512k)");
	HD_EXPECT_EQ(o.usage_hint, 0); /* the message says it all */
	HD_EXPECT_EQ(parse_cmdline(&o, err, sizeof(err),
				   ARGV("-r", "-5", "attach", "1")),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "bad rate '-5': expected a positive number of "
			     "bytes, optionally with k, m or g (e.g. 512k)");
	HD_EXPECT_EQ(parse_cmdline(&o, err, sizeof(err), ARGV("-r")),
		     -HD_EINVAL);
	HD_EXPECT_STREQ(err, "option '-r' requires an argument");
	HD_EXPECT_EQ(o.usage_hint, 1);
}

HD_TEST(options_ex_order_and_batch)
{
	struct hd_cli_options o;
	char err[256] = "";
	HD_ASSERT(parse_cmdline(&o, err, sizeof(err),
				ARGV("-q", "-ex", "snapshot a", "-x", "cmds.txt",
				     "--eval-command=stats", "-batch",
				     "--ex", "top", "attach", "77")) == 0);
	HD_EXPECT_EQ(o.quiet, 1);
	HD_EXPECT_EQ(o.batch, 1);
	HD_EXPECT_EQ(o.pid, 77);
	HD_ASSERT(o.nscripts == 4);
	HD_EXPECT(!o.scripts[0].is_file);
	HD_EXPECT_STREQ(o.scripts[0].text, "snapshot a");
	HD_EXPECT(o.scripts[1].is_file);
	HD_EXPECT_STREQ(o.scripts[1].text, "cmds.txt");
	HD_EXPECT_STREQ(o.scripts[2].text, "stats");
	HD_EXPECT_STREQ(o.scripts[3].text, "top");
	hd_cli_options_free(&o);
}

HD_TEST(options_run)
{
	struct hd_cli_options o;
	char err[256] = "";
	/* o.argv points into the array: it must outlive the checks. */
	char **run1 = ARGV("-batch", "run", "--", "./prog", "-q", "--rate=1",
			   "--");
	HD_ASSERT(parse_cmdline(&o, err, sizeof(err), run1) == 0);
	HD_EXPECT_EQ(o.action, HD_CLI_RUN);
	HD_EXPECT_EQ(o.batch, 1);
	HD_EXPECT_EQ(o.quiet, 0);
	HD_EXPECT_EQ(o.rate, 524288);
	HD_EXPECT_STREQ(o.argv[0], "./prog");
	HD_EXPECT_STREQ(o.argv[1], "-q");
	HD_EXPECT_STREQ(o.argv[2], "--rate=1");
	HD_EXPECT_STREQ(o.argv[3], "--");
	HD_EXPECT(o.argv[4] == NULL);
	hd_cli_options_free(&o);

	char **run2 = ARGV("run", "ls", "-l");
	HD_ASSERT(parse_cmdline(&o, err, sizeof(err), run2) == 0);
	HD_EXPECT_STREQ(o.argv[0], "ls");
	HD_EXPECT_STREQ(o.argv[1], "-l");
	hd_cli_options_free(&o);
}

HD_TEST(options_usage_errors)
{
	struct hd_cli_options o;
	char err[256] = "";
	struct {
		char **argv;
		const char *msg;
	} cases[] = {
		{ARGV("-q"), "missing 'attach PID' or 'run PROGRAM'"},
		{ARGV("attach"), "attach: missing PID"},
		{ARGV("attach", "12x"),
		 "bad process id '12x': expected a positive number"},
		{ARGV("attach", "0"),
		 "bad process id '0': expected a positive number"},
		{ARGV("attach", "1", "2"), "unexpected argument '2'"},
		{ARGV("run"), "run: missing PROGRAM"},
		{ARGV("run", "--"), "run: missing PROGRAM"},
		{ARGV("-z", "attach", "1"), "unrecognized option '-z'"},
		{ARGV("--batch=1", "attach", "1"),
		 "unrecognized option '--batch=1'"},
		{ARGV("-ex"), "option '-ex' requires an argument"},
		{ARGV("frobnicate"), "unknown command 'frobnicate': expected "
				     "'attach PID' or 'run PROGRAM'"},
	};
	for (size_t i = 0; i < HD_ARRAY_SIZE(cases); i++) {
		err[0] = '\0';
		if (parse_cmdline(&o, err, sizeof(err), cases[i].argv) !=
		    -HD_EINVAL)
			HD_FAIL_AT("case %zu accepted", i);
		HD_EXPECT_STREQ(err, cases[i].msg);
	}
}

HD_TEST(options_help_version)
{
	struct hd_cli_options o;
	char err[256] = "";
	HD_ASSERT(parse_cmdline(&o, err, sizeof(err), ARGV("--help")) == 0);
	HD_EXPECT_EQ(o.action, HD_CLI_HELP);
	HD_ASSERT(parse_cmdline(&o, err, sizeof(err), ARGV("-h")) == 0);
	HD_EXPECT_EQ(o.action, HD_CLI_HELP);
	HD_ASSERT(parse_cmdline(&o, err, sizeof(err), ARGV("--version")) == 0);
	HD_EXPECT_EQ(o.action, HD_CLI_VERSION);
	HD_EXPECT(strncmp(hd_cli_usage_text, "Usage: heapdbg", 14) == 0);
}

HD_TEST(script_file)
{
	char path[] = "/tmp/hd_test_cli_XXXXXX";
	int fd = mkstemp(path);
	HD_ASSERT(fd >= 0);
	const char *text = "# a comment\n\nsnapshot base\n   \n"
			   "  stats  \r\n\t# indented comment\ntop 5 -cum";
	HD_ASSERT(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);

	char **lines = NULL;
	size_t n = 0;
	char err[256];
	lines = malloc(sizeof(*lines));
	lines[0] = strdup("from -ex");
	n = 1;
	HD_ASSERT(hd_cli_read_script(path, &lines, &n, err, sizeof(err)) == 0);
	unlink(path);
	HD_ASSERT(n == 4);
	HD_EXPECT_STREQ(lines[0], "from -ex");
	HD_EXPECT_STREQ(lines[1], "snapshot base");
	HD_EXPECT_STREQ(lines[2], "stats");
	HD_EXPECT_STREQ(lines[3], "top 5 -cum");

	HD_EXPECT_EQ(hd_cli_read_script("/nonexistent/x", &lines, &n, err,
					sizeof(err)),
		     -HD_EIO);
	HD_EXPECT_STREQ(err,
			"cannot read /nonexistent/x: No such file or directory");
}

/* ---- attach errors ---- */

HD_TEST(attach_error_lines)
{
	char buf[512];
	hd_cli_attach_error(buf, sizeof(buf), 4242, -HD_ESELF, NULL);
	HD_EXPECT_STREQ(buf, "cannot attach to 4242: cannot trace heapdbg "
			     "itself (that is heapdbg's own process id)");
	hd_cli_attach_error(buf, sizeof(buf), 99, -HD_ENOTX64,
			    "ELF class 32");
	HD_EXPECT_STREQ(buf, "cannot attach to 99: not an x86-64 ELF process "
			     "(ELF class 32; heapdbg traces x86-64 processes "
			     "only)");
	hd_cli_attach_error(buf, sizeof(buf), 99, -HD_EEXITED, "");
	HD_EXPECT_STREQ(buf,
			"cannot attach to 99: process exited while attaching");
	hd_cli_run_error(buf, sizeof(buf), "./nope", -HD_EEXEC,
			 "No such file or directory");
	HD_EXPECT_STREQ(buf, "cannot run ./nope: cannot start program (No "
			     "such file or directory)");
}

/* A process traced by us: the message names us as its tracer. */
HD_TEST(attach_error_names_tracer)
{
	pid_t child = fork();
	HD_ASSERT(child >= 0);
	if (child == 0) {
		pause();
		_exit(0);
	}
	HD_ASSERT(ptrace(PTRACE_SEIZE, child, 0, 0) == 0);
	char comm[32], want[512], buf[512];
	hd_cli_proc_comm(getpid(), comm, sizeof(comm));
	hd_cli_attach_error(buf, sizeof(buf), child, -HD_ETRACED, NULL);
	snprintf(want, sizeof(want),
		 "cannot attach to %d: process is already traced by another "
		 "debugger (traced by %d (%s); detach it first)",
		 (int)child, (int)getpid(), comm);
	HD_EXPECT_STREQ(buf, want);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
}

HD_TEST(proc_status_fields)
{
	char v[64];
	HD_ASSERT(hd_cli_proc_status(getpid(), "Pid", v, sizeof(v)) == 0);
	HD_EXPECT_EQ(atoi(v), getpid());
	HD_EXPECT_EQ(hd_cli_proc_status(getpid(), "NoSuchField", v, sizeof(v)),
		     -1);
	HD_EXPECT_EQ(hd_cli_proc_status(0x7ffffff0, "Pid", v, sizeof(v)), -1);
	hd_cli_proc_comm(0x7ffffff0, v, sizeof(v));
	HD_EXPECT_STREQ(v, "?");
}

int main(void)
{
	return hd_test_main();
}
