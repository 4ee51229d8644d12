/* cli/report: pprof's text reports on a snapshot resolved by a fake
 * symbolizer.  The expected strings are what `go tool pprof` (1.19,
 * interactive mode, i.e. -compact_labels -nodecount=10) prints for a
 * profile.proto with the same samples, locations and drop_frames. */
#include <math.h>

#include "hd_test.h"
#include "cli/report.h"

/* ---- fake symbolizer: code address -> frames ---- */

struct fake_frame {
	uint64_t pc;
	const char *func, *file;
	int line, func_line, inlined;
	const char *module;
};

/* Frames of one pc are consecutive, innermost first. */
static const struct fake_frame fake_frames[] = {
	{0x1000, "main", "/src/app.c", 50, 45, 0, NULL},
	{0x2000, "handle_request", "/src/app.c", 30, 25, 0, NULL},
	{0x3000, "leak_session", "/src/app.c", 12, 10, 0, NULL},
	{0x3100, "leak_session", "/src/app.c", 14, 10, 0, NULL},
	{0x4000, "make_buf", "/src/buf.h", 5, 3, 1, NULL},
	{0x4000, "build_reply", "/src/app.c", 40, 38, 0, NULL},
	{0x5000, "operator new(unsigned long)", "/usr/src/new_op.cc", 50, 48, 0,
	 "/usr/lib/libstdc++.so.6"},
	{0x6000, "small_fn", "/src/app.c", 60, 58, 0, NULL},
	{0x7000, "tiny2", "/src/app.c", 70, 68, 0, NULL},
	{0x8000, "recurse", "/src/app.c", 80, 78, 0, NULL},
	{0x8100, "recurse", "/src/app.c", 82, 78, 0, NULL},
	{0x9000, "nosrc_fn", "/nonexistent/x.c", 5, 3, 0, NULL},
	{0xa000, "twin_b", "/src/app.c", 90, 88, 0, NULL},
	{0xb000, "twin_a", "/src/app.c", 95, 93, 0, NULL},
	/* libstdc++'s allocator layers inlined into the user's function. */
	{0xc000, "std::__new_allocator<int>::allocate(unsigned long, void const*)",
	 "/usr/include/c++/12/bits/new_allocator.h", 137, 126, 1, NULL},
	{0xc000, "std::allocator_traits<std::allocator<int> >::allocate("
		 "std::allocator<int>&, unsigned long)",
	 "/usr/include/c++/12/bits/alloc_traits.h", 464, 463, 1, NULL},
	{0xc000, "fill_vec(int)", "/src/vec.cc", 7, 5, 0, NULL},
	{0xd000, "(anonymous namespace)::Pool::grow()", "/src/vec.cc", 20, 18, 0,
	 NULL},
};

static int resolve_calls;

static int fake_resolve(void *ctx, uint64_t pc, struct hd_frame *frames,
			int max)
{
	(void)ctx;
	resolve_calls++;
	int n = 0;
	for (size_t i = 0; i < HD_ARRAY_SIZE(fake_frames) && n < max; i++) {
		const struct fake_frame *f = &fake_frames[i];
		if (f->pc != pc)
			continue;
		frames[n] = (struct hd_frame){
			.func = f->func, .mangled = f->func, .file = f->file,
			.line = f->line, .func_line = f->func_line,
			.module = f->module ? f->module : "/usr/bin/app",
			.inlined = f->inlined};
		n++;
	}
	return n;
}

/* /src/app.c has 100 lines, /src/buf.h 8, /nonexistent/x.c none. */
static const char *fake_source_line(void *ctx, const char *file, int line)
{
	static char buf[64];
	(void)ctx;
	if (!strcmp(file, "/src/app.c") && line >= 1 && line <= 100) {
		snprintf(buf, sizeof(buf), "/* app.c:%d */", line);
		return buf;
	}
	if (!strcmp(file, "/src/buf.h") && line >= 1 && line <= 8) {
		snprintf(buf, sizeof(buf), "\t/* buf.h:%d */", line);
		return buf;
	}
	return NULL;
}

/* ---- snapshots ---- */

struct fake_sample {
	uint64_t pcs[4]; /* return addresses, innermost first, 0-ended */
	double v[4];     /* alloc_objects, alloc_space, inuse_objects,
			    inuse_space */
};

static const struct fake_sample main_set[] = {
	{{0x3001, 0x2001, 0x1001}, {4, 4000000, 3, 3000000}},
	{{0x3101, 0x2001, 0x1001}, {1, 1048576, 1, 1048576}},
	/* operator new is the allocator's caller here: trimmed. */
	{{0x5001, 0x4001, 0x2001, 0x1001}, {2, 2000000, 2, 2000000}},
	{{0x6001, 0x1001}, {10, 1000, 5, 100}},
	{{0x7001, 0x1001}, {20, 2000, 2, 200}},
	{{0x8101, 0x8001, 0x8001, 0x1001}, {3, 30000, 3, 30000}},
	{{0x9001, 0x1001}, {1, 512, 1, 512}},
	{{0xa001, 0x1001}, {5, 500000, 5, 500000}},
	{{0xb001, 0x1001}, {5, 500000, 5, 500000}},
};

static const struct fake_sample cxx_set[] = {
	{{0x5001, 0xc001, 0x1001}, {1, 4096, 1, 4096}},
	{{0x5001, 0xd001, 0x1001}, {1, 1024, 1, 1024}},
};

static const struct fake_sample base_set[] = {
	{{0x3001, 0x2001, 0x1001}, {4, 4000000, 1, 1000000}},
	{{0x6001, 0x1001}, {10, 1000, 5, 100}},
	{{0xa001, 0x1001}, {6, 600000, 6, 600000}},
	{{0xb001, 0x1001}, {5, 500000, 5, 1500000}},
	{{0x8101, 0x8001, 0x8001, 0x1001}, {3, 30000, 3, 30000}},
};

/* Stacks shared by every snapshot of a test, as hd_prof shares them. */
static struct hd_stack *stacks[32];
static int nstacks;

static struct hd_stack *get_stack(const uint64_t *pcs)
{
	unsigned depth = 0;
	while (depth < 4 && pcs[depth])
		depth++;
	for (int i = 0; i < nstacks; i++)
		if (stacks[i]->depth == depth &&
		    !memcmp(stacks[i]->pcs, pcs, depth * sizeof(*pcs)))
			return stacks[i];
	struct hd_stack *s = calloc(1, sizeof(*s) + depth * sizeof(*pcs));
	s->id = (uint32_t)nstacks;
	s->depth = depth;
	memcpy(s->pcs, pcs, depth * sizeof(*pcs));
	return stacks[nstacks++] = s;
}

static int cmp_entries(const void *a, const void *b)
{
	const struct hd_snap_entry *x = a, *y = b;
	return x->stack->id < y->stack->id ? -1 : x->stack->id > y->stack->id;
}

static struct hd_snap *make_snap(const struct fake_sample *set, size_t n)
{
	struct hd_snap *s = calloc(1, sizeof(*s));
	s->name = strdup("test");
	s->entries = calloc(n, sizeof(*s->entries));
	s->n = n;
	s->rate = 1;
	for (size_t i = 0; i < n; i++) {
		s->entries[i].stack = get_stack(set[i].pcs);
		struct hd_counts *c = &s->entries[i].counts;
		c->alloc_objects = set[i].v[0];
		c->alloc_space = set[i].v[1];
		c->inuse_objects = set[i].v[2];
		c->inuse_space = set[i].v[3];
	}
	/* Entries sorted by stack id, as hd_prof_snapshot makes them. */
	qsort(s->entries, n, sizeof(*s->entries), cmp_entries);
	return s;
}

static struct hd_report_opts opts(void)
{
	return (struct hd_report_opts){.index = HD_INUSE_SPACE,
				       .resolve = fake_resolve,
				       .source_line = fake_source_line};
}

enum which { TOP, TRACES, LIST };

static char errbuf[256];
static int last_rc;

/* The report as a string (caller frees). */
static char *render(enum which w, const struct hd_snap *s,
		    const struct hd_report_opts *o, const char *regex)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	errbuf[0] = 0;
	if (w == TOP)
		last_rc = hd_report_top(f, s, o, errbuf, sizeof(errbuf));
	else if (w == TRACES)
		last_rc = hd_report_traces(f, s, o, errbuf, sizeof(errbuf));
	else
		last_rc = hd_report_list(f, s, regex, o, errbuf, sizeof(errbuf));
	fclose(f);
	return buf;
}

#define EXPECT_REPORT(w, s, o, regex, expected)                              \
	do {                                                                 \
		char *got_ = render(w, s, o, regex);                         \
		HD_EXPECT_EQ(last_rc, 0);                                    \
		HD_EXPECT_STREQ(got_, expected);                             \
		free(got_);                                                  \
	} while (0)

#define MAIN_SNAP() make_snap(main_set, HD_ARRAY_SIZE(main_set))

/* ---- top ---- */

HD_TEST(top_default)
{
	/* Total 7079388 B; cutoff 0.5% = 35396 B drops recurse (30000),
	 * nosrc_fn, tiny2, small_fn.  operator new is trimmed, so make_buf
	 * (inlined into build_reply) is the leaf; twin_a/twin_b tie on flat
	 * and sort by name, as do the three zero-flat callers. */
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 6883.38kB, 99.56% of 6913.46kB total\n"
		"Dropped 4 nodes (cum <= 34.57kB)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		" 3953.69kB 57.19% 57.19%  3953.69kB 57.19%  leak_session\n"
		" 1953.12kB 28.25% 85.44%  1953.12kB 28.25%  make_buf (inline)\n"
		"  488.28kB  7.06% 92.50%   488.28kB  7.06%  twin_a\n"
		"  488.28kB  7.06% 99.56%   488.28kB  7.06%  twin_b\n"
		"         0     0% 99.56%  1953.12kB 28.25%  build_reply\n"
		"         0     0% 99.56%  5906.81kB 85.44%  handle_request\n"
		"         0     0% 99.56%  6913.46kB   100%  main\n");
	hd_snap_free(s);
}

HD_TEST(top_cum)
{
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	o.cum = 1;
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 6883.38kB, 99.56% of 6913.46kB total\n"
		"Dropped 4 nodes (cum <= 34.57kB)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"         0     0%     0%  6913.46kB   100%  main\n"
		"         0     0%     0%  5906.81kB 85.44%  handle_request\n"
		" 3953.69kB 57.19% 57.19%  3953.69kB 57.19%  leak_session\n"
		"         0     0% 57.19%  1953.12kB 28.25%  build_reply\n"
		" 1953.12kB 28.25% 85.44%  1953.12kB 28.25%  make_buf (inline)\n"
		"  488.28kB  7.06% 92.50%   488.28kB  7.06%  twin_a\n"
		"  488.28kB  7.06% 99.56%   488.28kB  7.06%  twin_b\n");
	hd_snap_free(s);
}

HD_TEST(top_units)
{
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	o.unit = "B";
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 7048576B, 99.56% of 7079388B total\n"
		"Dropped 4 nodes (cum <= 35396B)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"  4048576B 57.19% 57.19%   4048576B 57.19%  leak_session\n"
		"  2000000B 28.25% 85.44%   2000000B 28.25%  make_buf (inline)\n"
		"   500000B  7.06% 92.50%    500000B  7.06%  twin_a\n"
		"   500000B  7.06% 99.56%    500000B  7.06%  twin_b\n"
		"         0     0% 99.56%   2000000B 28.25%  build_reply\n"
		"         0     0% 99.56%   6048576B 85.44%  handle_request\n"
		"         0     0% 99.56%   7079388B   100%  main\n");
	o.unit = "KB"; /* pprof's canonical spelling is kB */
	o.n = 2;
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 5906.81kB, 85.44% of 6913.46kB total\n"
		"Dropped 4 nodes (cum <= 34.57kB)\n"
		"Showing top 2 nodes out of 7\n"
		"      flat  flat%   sum%        cum   cum%\n"
		" 3953.69kB 57.19% 57.19%  3953.69kB 57.19%  leak_session\n"
		/* build_reply is not shown, so no edge says "inline" */
		" 1953.12kB 28.25% 85.44%  1953.12kB 28.25%  make_buf\n");
	o.unit = "MB";
	o.n = 0;
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 6.72MB, 99.56% of 6.75MB total\n"
		"Dropped 4 nodes (cum <= 0.03MB)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"    3.86MB 57.19% 57.19%     3.86MB 57.19%  leak_session\n"
		"    1.91MB 28.25% 85.44%     1.91MB 28.25%  make_buf (inline)\n"
		"    0.48MB  7.06% 92.50%     0.48MB  7.06%  twin_a\n"
		"    0.48MB  7.06% 99.56%     0.48MB  7.06%  twin_b\n"
		"         0     0% 99.56%     1.91MB 28.25%  build_reply\n"
		"         0     0% 99.56%     5.77MB 85.44%  handle_request\n"
		"         0     0% 99.56%     6.75MB   100%  main\n");
	/* auto: every value in its own best unit. */
	o.unit = "auto";
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 6.72MB, 99.56% of 6.75MB total\n"
		"Dropped 4 nodes (cum <= 34.57kB)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"    3.86MB 57.19% 57.19%     3.86MB 57.19%  leak_session\n"
		"    1.91MB 28.25% 85.44%     1.91MB 28.25%  make_buf (inline)\n"
		"  488.28kB  7.06% 92.50%   488.28kB  7.06%  twin_a\n"
		"  488.28kB  7.06% 99.56%   488.28kB  7.06%  twin_b\n"
		"         0     0% 99.56%     1.91MB 28.25%  build_reply\n"
		"         0     0% 99.56%     5.77MB 85.44%  handle_request\n"
		"         0     0% 99.56%     6.75MB   100%  main\n");
	/* Values below 0.005 GB print as 0; the cutoff too. */
	o.unit = "GB";
	o.index = HD_ALLOC_SPACE;
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 0.01GB, 99.59% of 0.01GB total\n"
		"Dropped 4 nodes (cum <= 0)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"         0 62.47% 62.47%          0 62.47%  leak_session\n"
		"         0 24.75% 87.21%          0 24.75%  make_buf (inline)\n"
		"         0  6.19% 93.40%          0  6.19%  twin_a\n"
		"         0  6.19% 99.59%          0  6.19%  twin_b\n"
		"         0     0% 99.59%          0 24.75%  build_reply\n"
		"         0     0% 99.59%     0.01GB 87.21%  handle_request\n"
		"         0     0% 99.59%     0.01GB   100%  main\n");
	hd_snap_free(s);
}

HD_TEST(top_objects)
{
	/* 51 objects: the cutoff rounds to 0, nothing is dropped, and the
	 * default 10 nodes of 11 show. */
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	o.index = HD_ALLOC_OBJECTS;
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 51, 100% of 51 total\n"
		"Showing top 10 nodes out of 11\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"        20 39.22% 39.22%         20 39.22%  tiny2\n"
		"        10 19.61% 58.82%         10 19.61%  small_fn\n"
		"         5  9.80% 68.63%          5  9.80%  leak_session\n"
		"         5  9.80% 78.43%          5  9.80%  twin_a\n"
		"         5  9.80% 88.24%          5  9.80%  twin_b\n"
		"         3  5.88% 94.12%          3  5.88%  recurse\n"
		"         2  3.92% 98.04%          2  3.92%  make_buf (inline)\n"
		"         1  1.96%   100%          1  1.96%  nosrc_fn\n"
		"         0     0%   100%          2  3.92%  build_reply\n"
		"         0     0%   100%          7 13.73%  handle_request\n");
	/* pprof labels counts with a forced unit as they are. */
	o.index = HD_INUSE_OBJECTS;
	o.unit = "KB";
	o.n = 3;
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 15KB, 55.56% of 27KB total\n"
		"Showing top 3 nodes out of 11\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"       5KB 18.52% 18.52%        5KB 18.52%  small_fn\n"
		"       5KB 18.52% 37.04%        5KB 18.52%  twin_a\n"
		"       5KB 18.52% 55.56%        5KB 18.52%  twin_b\n");
	hd_snap_free(s);
}

HD_TEST(top_focus_ignore)
{
	/* The total stays that of the whole profile. */
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	o.focus = "build_reply";
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Active filters:\n"
		"   focus=build_reply\n"
		"Showing nodes accounting for 1.91MB, 28.25% of 6.75MB total\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"    1.91MB 28.25% 28.25%     1.91MB 28.25%  make_buf (inline)\n"
		"         0     0% 28.25%     1.91MB 28.25%  build_reply\n"
		"         0     0% 28.25%     1.91MB 28.25%  handle_request\n"
		"         0     0% 28.25%     1.91MB 28.25%  main\n");
	/* Modules match too: libstdc++ is the trimmed operator new's. */
	o.focus = NULL;
	o.ignore = "twin_|libstdc";
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Active filters:\n"
		"   ignore=twin_|libstdc\n"
		"Showing nodes accounting for 5.77MB, 85.44% of 6.75MB total\n"
		"Dropped 4 nodes (cum <= 0.03MB)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"    3.86MB 57.19% 57.19%     3.86MB 57.19%  leak_session\n"
		"    1.91MB 28.25% 85.44%     1.91MB 28.25%  make_buf (inline)\n"
		"         0     0% 85.44%     1.91MB 28.25%  build_reply\n"
		"         0     0% 85.44%     5.77MB 85.44%  handle_request\n"
		"         0     0% 85.44%     5.80MB 85.87%  main\n");
	/* File names match: every frame is in app.c or buf.h. */
	o.focus = "app";
	o.ignore = "leak";
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Active filters:\n"
		"   focus=app\n"
		"   ignore=leak\n"
		"Showing nodes accounting for 2.89MB, 42.80% of 6.75MB total\n"
		"Dropped 3 nodes (cum <= 0.03MB)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"    1.91MB 28.25% 28.25%     1.91MB 28.25%  make_buf (inline)\n"
		"    0.48MB  7.06% 35.31%     0.48MB  7.06%  twin_a\n"
		"    0.48MB  7.06% 42.38%     0.48MB  7.06%  twin_b\n"
		"    0.03MB  0.42% 42.80%     0.03MB  0.42%  recurse\n"
		"         0     0% 42.80%     1.91MB 28.25%  build_reply\n"
		"         0     0% 42.80%     1.91MB 28.25%  handle_request\n"
		"         0     0% 42.80%     2.89MB 42.81%  main\n");
	hd_snap_free(s);
}

HD_TEST(bad_regex)
{
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	o.focus = "(";
	char *got = render(TOP, s, &o, NULL);
	HD_EXPECT_EQ(last_rc, -HD_EINVAL);
	HD_EXPECT(!strncmp(errbuf, "parsing focus regexp: ", 22));
	HD_EXPECT_STREQ(got, ""); /* nothing printed */
	free(got);
	o.focus = NULL;
	o.ignore = "a[";
	free(render(TRACES, s, &o, NULL));
	HD_EXPECT_EQ(last_rc, -HD_EINVAL);
	HD_EXPECT(!strncmp(errbuf, "parsing ignore regexp: ", 23));
	o.ignore = NULL;
	free(render(LIST, s, &o, "x(")); /* the list argument itself */
	HD_EXPECT_EQ(last_rc, -HD_EINVAL);
	HD_EXPECT(!strncmp(errbuf, "parsing argument regexp: ", 25));
	hd_snap_free(s);
}

HD_TEST(top_diff_negative)
{
	/* cur - base: twin_a (0xb001) shrank, twin_b (0xa001) shrank, small_fn
	 * and recurse cancel out.  The total is the sum of absolute values,
	 * percentages are of absolute values, sum% goes down. */
	struct hd_snap *cur = MAIN_SNAP();
	struct hd_snap *base = make_snap(base_set, HD_ARRAY_SIZE(base_set));
	struct hd_snap *d = hd_snap_diff(cur, base);
	struct hd_report_opts o = opts();
	EXPECT_REPORT(TOP, d, &o, NULL,
		"Showing nodes accounting for 3856.03kB, 64.21% of 6005.16kB total\n"
		"Dropped 2 nodes (cum <= 30.03kB)\n"
		"      flat  flat%   sum%        cum   cum%\n"
		" 2977.12kB 49.58% 49.58%  2977.12kB 49.58%  leak_session\n"
		" 1953.12kB 32.52% 82.10%  1953.12kB 32.52%  make_buf (inline)\n"
		" -976.56kB 16.26% 65.84%  -976.56kB 16.26%  twin_a\n"
		"  -97.66kB  1.63% 64.21%   -97.66kB  1.63%  twin_b\n"
		"         0     0% 64.21%  1953.12kB 32.52%  build_reply\n"
		"         0     0% 64.21%  4930.25kB 82.10%  handle_request\n"
		"         0     0% 64.21%  3856.73kB 64.22%  main\n");
	o.index = HD_INUSE_OBJECTS;
	o.cum = 1;
	EXPECT_REPORT(TOP, d, &o, NULL,
		"Showing nodes accounting for 7, 77.78% of 9 total\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"         0     0%     0%          7 77.78%  main\n"
		"         0     0%     0%          5 55.56%  handle_request\n"
		"         3 33.33% 33.33%          3 33.33%  leak_session\n"
		"         0     0% 33.33%          2 22.22%  build_reply\n"
		"         2 22.22% 55.56%          2 22.22%  make_buf (inline)\n"
		"         2 22.22% 77.78%          2 22.22%  tiny2\n"
		"         1 11.11% 88.89%          1 11.11%  nosrc_fn\n"
		"        -1 11.11% 77.78%         -1 11.11%  twin_b\n");
	o.index = HD_INUSE_SPACE;
	o.cum = 0;
	EXPECT_REPORT(LIST, d, &o, "make_buf",
		"Total: 5.86MB\n"
		"ROUTINE ======================== make_buf in /src/buf.h\n"
		"    1.91MB     1.91MB (flat, cum) 32.52% of Total\n"
		"         .          .      3:\t/* buf.h:3 */\n"
		"         .          .      4:\t/* buf.h:4 */\n"
		"    1.91MB     1.91MB      5:\t/* buf.h:5 */\n"
		"         .          .      6:\t/* buf.h:6 */\n"
		"         .          .      7:\t/* buf.h:7 */\n"
		"         .          .      8:\t/* buf.h:8 */\n");
	hd_snap_free(d);
	hd_snap_free(base);
	hd_snap_free(cur);
}

HD_TEST(cxx_allocator_frames_trimmed)
{
	/* operator new, then std::__new_allocator and allocator_traits
	 * inlined into fill_vec at one pc: only fill_vec is left there.
	 * "(anonymous namespace)" is not an argument list. */
	struct hd_snap *s = make_snap(cxx_set, HD_ARRAY_SIZE(cxx_set));
	struct hd_report_opts o = opts();
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 5kB, 100% of 5kB total\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"       4kB 80.00% 80.00%        4kB 80.00%  fill_vec(int)\n"
		"       1kB 20.00%   100%        1kB 20.00%  (anonymous namespace)::Pool::grow()\n"
		"         0     0%   100%        5kB   100%  main\n");
	EXPECT_REPORT(TRACES, s, &o, NULL,
		"Type: inuse_space\n"
		"-----------+-------------------------------------------------------\n"
		"       4kB   fill_vec(int)\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"       1kB   (anonymous namespace)::Pool::grow()\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n");
	hd_snap_free(s);
}

/* ---- traces ---- */

HD_TEST(traces_heaviest_first)
{
	/* pprof's layout; the order is by weight (pprof: profile order),
	 * ties by stack age.  Inlined frames say so; recursion repeats. */
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	EXPECT_REPORT(TRACES, s, &o, NULL,
		"Type: inuse_space\n"
		"-----------+-------------------------------------------------------\n"
		"    2.86MB   leak_session\n"
		"             handle_request\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"    1.91MB   make_buf (inline)\n"
		"             build_reply\n"
		"             handle_request\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"       1MB   leak_session\n"
		"             handle_request\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"  488.28kB   twin_b\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"  488.28kB   twin_a\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"   29.30kB   recurse\n"
		"             recurse\n"
		"             recurse\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"      512B   nosrc_fn\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"      200B   tiny2\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n"
		"      100B   small_fn\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n");
	o.n = 1;
	o.ignore = "leak";
	o.index = HD_ALLOC_OBJECTS;
	EXPECT_REPORT(TRACES, s, &o, NULL,
		"Type: alloc_objects\n"
		"-----------+-------------------------------------------------------\n"
		"        20   tiny2\n"
		"             main\n"
		"-----------+-------------------------------------------------------\n");
	hd_snap_free(s);
}

/* ---- list ---- */

HD_TEST(list_functions)
{
	/* Sorted by name.  leak_session: from its first line (10) to 5
	 * after the last sampled line, lines without samples as dots.
	 * make_buf was inlined: its own file and lines; the file ends at 8.
	 * nosrc_fn's file cannot be read.  recurse: cum once per sample
	 * per line, so the function's cum counts the sample twice. */
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	EXPECT_REPORT(LIST, s, &o, "leak|make_buf|nosrc|recurse",
		"Total: 6.75MB\n"
		"ROUTINE ======================== leak_session in /src/app.c\n"
		"    3.86MB     3.86MB (flat, cum) 57.19% of Total\n"
		"         .          .     10:/* app.c:10 */\n"
		"         .          .     11:/* app.c:11 */\n"
		"    2.86MB     2.86MB     12:/* app.c:12 */\n"
		"         .          .     13:/* app.c:13 */\n"
		"       1MB        1MB     14:/* app.c:14 */\n"
		"         .          .     15:/* app.c:15 */\n"
		"         .          .     16:/* app.c:16 */\n"
		"         .          .     17:/* app.c:17 */\n"
		"         .          .     18:/* app.c:18 */\n"
		"         .          .     19:/* app.c:19 */\n"
		"ROUTINE ======================== make_buf in /src/buf.h\n"
		"    1.91MB     1.91MB (flat, cum) 28.25% of Total\n"
		"         .          .      3:\t/* buf.h:3 */\n"
		"         .          .      4:\t/* buf.h:4 */\n"
		"    1.91MB     1.91MB      5:\t/* buf.h:5 */\n"
		"         .          .      6:\t/* buf.h:6 */\n"
		"         .          .      7:\t/* buf.h:7 */\n"
		"         .          .      8:\t/* buf.h:8 */\n"
		"ROUTINE ======================== nosrc_fn in /nonexistent/x.c\n"
		"      512B       512B (flat, cum) 0.0072% of Total\n"
		" Error: open /nonexistent/x.c: no such file or directory\n"
		"ROUTINE ======================== recurse in /src/app.c\n"
		"   29.30kB    58.59kB (flat, cum)  0.85% of Total\n"
		"         .          .     78:/* app.c:78 */\n"
		"         .          .     79:/* app.c:79 */\n"
		"         .    29.30kB     80:/* app.c:80 */\n"
		"         .          .     81:/* app.c:81 */\n"
		"   29.30kB    29.30kB     82:/* app.c:82 */\n"
		"         .          .     83:/* app.c:83 */\n"
		"         .          .     84:/* app.c:84 */\n"
		"         .          .     85:/* app.c:85 */\n"
		"         .          .     86:/* app.c:86 */\n"
		"         .          .     87:/* app.c:87 */\n");
	o.index = HD_ALLOC_OBJECTS;
	EXPECT_REPORT(LIST, s, &o, "leak",
		"Total: 51\n"
		"ROUTINE ======================== leak_session in /src/app.c\n"
		"         5          5 (flat, cum)  9.80% of Total\n"
		"         .          .     10:/* app.c:10 */\n"
		"         .          .     11:/* app.c:11 */\n"
		"         4          4     12:/* app.c:12 */\n"
		"         .          .     13:/* app.c:13 */\n"
		"         1          1     14:/* app.c:14 */\n"
		"         .          .     15:/* app.c:15 */\n"
		"         .          .     16:/* app.c:16 */\n"
		"         .          .     17:/* app.c:17 */\n"
		"         .          .     18:/* app.c:18 */\n"
		"         .          .     19:/* app.c:19 */\n");
	hd_snap_free(s);
}

HD_TEST(list_no_match)
{
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	char *got = render(LIST, s, &o, "zzz");
	HD_EXPECT_EQ(last_rc, -HD_ENOTFOUND);
	HD_EXPECT_STREQ(errbuf, "no matches found for regexp: zzz");
	HD_EXPECT_STREQ(got, "");
	free(got);
	/* operator new was trimmed: nothing of it is left to list. */
	free(render(LIST, s, &o, "operator new"));
	HD_EXPECT_EQ(last_rc, -HD_ENOTFOUND);
	hd_snap_free(s);
}

HD_TEST(unresolvable_pc)
{
	/* No frames for 0xf001: named by its address (pc - 1). */
	static const struct fake_sample set[] = {
		{{0xf001, 0x1001}, {1, 64, 1, 64}},
	};
	struct hd_snap *s = make_snap(set, 1);
	struct hd_report_opts o = opts();
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 64B, 100% of 64B total\n"
		"      flat  flat%   sum%        cum   cum%\n"
		"       64B   100%   100%        64B   100%  0xf000\n"
		"         0     0%   100%        64B   100%  main\n");
	EXPECT_REPORT(LIST, s, &o, "^0x",
		"Total: 64B\n"
		"No source information for 0xf000\n");
	hd_snap_free(s);
}

HD_TEST(empty_profile)
{
	struct hd_snap *s = make_snap(NULL, 0);
	struct hd_report_opts o = opts();
	EXPECT_REPORT(TOP, s, &o, NULL,
		"Showing nodes accounting for 0, 0% of 0 total\n"
		"      flat  flat%   sum%        cum   cum%\n");
	EXPECT_REPORT(TRACES, s, &o, NULL,
		"Type: inuse_space\n"
		"-----------+-------------------------------------------------------\n");
	hd_snap_free(s);
}

HD_TEST(each_pc_resolved_once)
{
	struct hd_snap *s = MAIN_SNAP();
	struct hd_report_opts o = opts();
	resolve_calls = 0;
	free(render(TOP, s, &o, NULL));
	HD_EXPECT_EQ(resolve_calls, 13); /* distinct pcs in main_set */
	hd_snap_free(s);
}

/* ---- hd_report_format_value (measurement.ScaledLabel) ---- */

HD_TEST(format_value)
{
	char b[64];
	hd_report_format_value(b, sizeof(b), 3156000, HD_INUSE_SPACE, NULL);
	HD_EXPECT_STREQ(b, "3.01MB");
	hd_report_format_value(b, sizeof(b), 512, HD_INUSE_SPACE, NULL);
	HD_EXPECT_STREQ(b, "512B");
	hd_report_format_value(b, sizeof(b), 1536, HD_ALLOC_SPACE, "auto");
	HD_EXPECT_STREQ(b, "1.50kB");
	hd_report_format_value(b, sizeof(b), 1024, HD_ALLOC_SPACE, NULL);
	HD_EXPECT_STREQ(b, "1kB");
	hd_report_format_value(b, sizeof(b), -1536, HD_ALLOC_SPACE, "B");
	HD_EXPECT_STREQ(b, "-1536B");
	hd_report_format_value(b, sizeof(b), 1536, HD_ALLOC_SPACE, "kb");
	HD_EXPECT_STREQ(b, "1.50kB");
	hd_report_format_value(b, sizeof(b), 1536, HD_ALLOC_SPACE, "mb");
	HD_EXPECT_STREQ(b, "0"); /* 0.00MB */
	hd_report_format_value(b, sizeof(b), 2, HD_ALLOC_SPACE, "GB");
	HD_EXPECT_STREQ(b, "0");
	hd_report_format_value(b, sizeof(b), 3LL << 40, HD_ALLOC_SPACE, NULL);
	HD_EXPECT_STREQ(b, "3TB");
	hd_report_format_value(b, sizeof(b), 12345, HD_INUSE_OBJECTS, NULL);
	HD_EXPECT_STREQ(b, "12345");
	hd_report_format_value(b, sizeof(b), 12.6, HD_INUSE_OBJECTS, NULL);
	HD_EXPECT_STREQ(b, "13");
	hd_report_format_value(b, sizeof(b), 0, HD_INUSE_SPACE, NULL);
	HD_EXPECT_STREQ(b, "0");
}

int main(void)
{
	return hd_test_main();
}
