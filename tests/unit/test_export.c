/* Unit tests for profile/pprof: a synthetic snapshot (every allocation
 * recorded, rate 1, names from a fake resolver) is exported, read back
 * with zlib and protobuf-c, and every field written is checked.
 *
 * `test_export --write DIR` writes the same synthetic profiles to DIR
 * (full.pb.gz, diff.pb.gz, full.folded, and the source files the fake
 * frames name) for tests/e2e/test_export_go.py, which reads them with
 * go tool pprof.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <zlib.h>

#include "hd_test.h"
#include "profile/pprof/export.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile pb_profile;

/* ---- the fake program ---------------------------------------------- */

#define EXE_START 0x1000
#define EXE_END 0x9000
#define LIB_START 0x10000
#define LIB_END 0x20000

/* Return addresses (the stacks hold these; frames are looked up at pc-1) */
#define PC_MAIN 0x1100   /* main -> worker        main.c:10 */
#define PC_MAIN2 0x1110  /* main -> ns::Leaf::alloc  main.c:11 */
#define PC_WORKER 0x1200 /* worker -> Leaf::alloc   main.c:20 */
#define PC_INL 0x1300    /* helper (inlined in worker) -> malloc */
#define PC_LEAF 0x1400   /* Leaf::alloc -> malloc   leaf.cc:40 */
#define PC_LEAF2 0x1404  /* Leaf::alloc -> malloc   leaf.cc:41 */
#define PC_LEAF3 0x1410  /* Leaf::alloc -> operator new  leaf.cc:42 */
#define PC_NEW 0x10100   /* operator new -> malloc (no line info) */
#define PC_NOWHERE 0x50000 /* in no module */

#define LEAF "ns::Leaf::alloc(int)"
#define LEAF_MANGLED "_ZN2ns4Leaf5allocEi"
#define NEW "operator new(unsigned long)"

static const char *exe_path = "/opt/fake/bin/server";
static const char *lib_path = "/usr/lib/libstdc++.so.6";

static struct hd_frame frame(const char *func, const char *mangled,
			     const char *file, int line, int func_line,
			     int inlined, int lib)
{
	return (struct hd_frame){
		.func = func,
		.mangled = mangled,
		.file = file,
		.line = line,
		.func_line = func_line,
		.module = lib ? lib_path : exe_path,
		.module_start = lib ? LIB_START : EXE_START,
		.module_end = lib ? LIB_END : EXE_END,
		.inlined = inlined,
	};
}

static int resolve_calls;

static int fake_resolve(void *ctx, uint64_t pc, struct hd_frame *f, int max)
{
	(void)ctx;
	resolve_calls++;
	if (max < 2)
		return 0;
	switch (pc + 1) { /* the exporter asks for return address - 1 */
	case PC_MAIN:
		f[0] = frame("main", "main", "main.c", 10, 5, 0, 0);
		return 1;
	case PC_MAIN2:
		f[0] = frame("main", "main", "main.c", 11, 5, 0, 0);
		return 1;
	case PC_WORKER:
		f[0] = frame("worker", "worker", "main.c", 20, 18, 0, 0);
		return 1;
	case PC_INL:
		f[0] = frame("helper", "helper", "main.c", 31, 30, 1, 0);
		f[1] = frame("worker", "worker", "main.c", 22, 18, 0, 0);
		return 2;
	case PC_LEAF:
		f[0] = frame(LEAF, LEAF_MANGLED, "leaf.cc", 40, 39, 0, 0);
		return 1;
	case PC_LEAF2:
		f[0] = frame(LEAF, LEAF_MANGLED, "leaf.cc", 41, 39, 0, 0);
		return 1;
	case PC_LEAF3:
		f[0] = frame(LEAF, LEAF_MANGLED, "leaf.cc", 42, 39, 0, 0);
		return 1;
	case PC_NEW:
		f[0] = frame(NEW, "_Znwm", NULL, 0, 0, 0, 1);
		return 1;
	}
	f[0] = frame("0x4ffff", NULL, NULL, 0, 0, 0, 0);
	f[0].module = NULL;
	return 1;
}

static void fake_modules(void *ctx,
			 void (*fn)(void *, const struct hd_sym_module_info *),
			 void *fnctx)
{
	(void)ctx;
	/* Not in address order on purpose: the exporter sorts. */
	struct hd_sym_module_info lib = {lib_path, LIB_START, LIB_END, 1, 1, 0,
					 NULL, 0x9000};
	struct hd_sym_module_info exe = {exe_path, EXE_START, EXE_END, 1, 1, 1,
					 "0123abcd", 0x1000};
	fn(fnctx, &lib);
	fn(fnctx, &exe);
}

static const struct hd_export_src src = {
	.resolve = fake_resolve,
	.modules = fake_modules,
	.start_time = 1700000000.5,
};

static const uint64_t stack_a[] = {PC_LEAF, PC_WORKER, PC_MAIN};
static const uint64_t stack_d[] = {PC_LEAF2, PC_WORKER, PC_MAIN};
static const uint64_t stack_b[] = {PC_INL, PC_MAIN};
static const uint64_t stack_c[] = {PC_NEW, PC_LEAF3, PC_MAIN2};

#define REC(p, st, ptr, size)                                                \
	hd_prof_record_alloc(p, st, HD_ARRAY_SIZE(st), ptr, size, 1)

/* The base profile: stack A 3 x 100 B, stack B 1 x 1000 B, all live. */
static void record_base(struct hd_prof *p)
{
	REC(p, stack_a, 0xa1, 100);
	REC(p, stack_a, 0xa2, 100);
	REC(p, stack_a, 0xa3, 100);
	REC(p, stack_b, 0xb1, 1000);
}

/* Then: one A and the B freed, D 1 x 50 B, C 2 x 8 B with one freed.
 *
 *               alloc_objects alloc_space inuse_objects inuse_space
 *   A (leaf.cc:40)       3         300          2           200
 *   D (leaf.cc:41)       1          50          1            50
 *   B (helper)           1        1000          0             0
 *   C (new, :42)         2          16          1             8
 *   total                7        1366          4           258
 */
static void record_more(struct hd_prof *p)
{
	hd_prof_record_free(p, 0xa1);
	hd_prof_record_free(p, 0xb1);
	REC(p, stack_d, 0xd1, 50);
	REC(p, stack_c, 0xc1, 8);
	REC(p, stack_c, 0xc2, 8);
	hd_prof_record_free(p, 0xc2);
}

/* ---- reading back --------------------------------------------------- */

static uint8_t *gunzip_file(const char *path, size_t *len)
{
	gzFile gz = gzopen(path, "rb");
	if (!gz)
		return NULL;
	size_t cap = 1 << 16, n = 0;
	uint8_t *buf = malloc(cap);
	int r;
	while (buf && (r = gzread(gz, buf + n, (unsigned)(cap - n))) > 0) {
		n += (size_t)r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	gzclose(gz);
	*len = n;
	return buf;
}

static pb_profile *read_profile(const char *path)
{
	size_t len = 0;
	uint8_t *raw = gunzip_file(path, &len);
	HD_ASSERT(raw != NULL);
	HD_ASSERT(len > 0);
	pb_profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
	free(raw);
	HD_ASSERT(p != NULL);
	return p;
}

static const char *str(const pb_profile *p, int64_t i)
{
	HD_ASSERT(i >= 0 && (size_t)i < p->n_string_table);
	return p->string_table[i];
}

static Perftools__Profiles__Location *loc_by_id(const pb_profile *p,
						 uint64_t id)
{
	for (size_t i = 0; i < p->n_location; i++)
		if (p->location[i]->id == id)
			return p->location[i];
	return NULL;
}

static Perftools__Profiles__Function *func_by_id(const pb_profile *p,
						  uint64_t id)
{
	for (size_t i = 0; i < p->n_function; i++)
		if (p->function[i]->id == id)
			return p->function[i];
	return NULL;
}

static Perftools__Profiles__Mapping *map_by_id(const pb_profile *p,
					       uint64_t id)
{
	for (size_t i = 0; i < p->n_mapping; i++)
		if (p->mapping[i]->id == id)
			return p->mapping[i];
	return NULL;
}

/* The sample whose stack is `pcs` (compared as written: pc - 1). */
static Perftools__Profiles__Sample *sample_of(const pb_profile *p,
					      const uint64_t *pcs, size_t n)
{
	for (size_t i = 0; i < p->n_sample; i++) {
		Perftools__Profiles__Sample *s = p->sample[i];
		if (s->n_location_id != n)
			continue;
		size_t d = 0;
		for (; d < n; d++) {
			Perftools__Profiles__Location *l =
				loc_by_id(p, s->location_id[d]);
			if (!l || l->address != pcs[d] - 1)
				break;
		}
		if (d == n)
			return s;
	}
	return NULL;
}

static void expect_values(const pb_profile *p, const uint64_t *pcs, size_t n,
			  int64_t ao, int64_t as, int64_t io, int64_t is)
{
	Perftools__Profiles__Sample *s = sample_of(p, pcs, n);
	HD_ASSERT(s != NULL);
	HD_ASSERT(s->n_value == 4);
	HD_EXPECT_EQ(s->value[0], ao);
	HD_EXPECT_EQ(s->value[1], as);
	HD_EXPECT_EQ(s->value[2], io);
	HD_EXPECT_EQ(s->value[3], is);
}

#define EXPECT_SAMPLE(p, st, ao, as, io, is)                                 \
	expect_values(p, st, HD_ARRAY_SIZE(st), ao, as, io, is)

static char tmpdir[64];

static const char *tmp_path(const char *name)
{
	static char buf[4][128];
	static int k;
	if (!tmpdir[0]) {
		strcpy(tmpdir, "/tmp/hd_export_XXXXXX");
		HD_ASSERT(mkdtemp(tmpdir) != NULL);
	}
	char *b = buf[k++ % 4];
	snprintf(b, sizeof(buf[0]), "%s/%s", tmpdir, name);
	return b;
}

static void cleanup_tmp(void)
{
	char cmd[128];
	if (!tmpdir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	HD_EXPECT(system(cmd) == 0);
}

static struct hd_snap *full_snapshot(struct hd_prof *p)
{
	record_base(p);
	record_more(p);
	struct hd_snap *s = hd_prof_snapshot(p, "full", 2.25, 1);
	HD_ASSERT(s != NULL);
	return s;
}

static pb_profile *export_and_read(const struct hd_snap *s, const char *name)
{
	char err[256] = "";
	const char *path = tmp_path(name);
	int rc = hd_export_pprof(path, s, &src, err, sizeof(err));
	if (rc)
		fprintf(stderr, "  export: %s\n", err);
	HD_ASSERT(rc == 0);
	return read_profile(path);
}

/* ---- tests ---------------------------------------------------------- */

HD_TEST(header_fields)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *s = full_snapshot(pr);
	pb_profile *p = export_and_read(s, "h.pb.gz");

	HD_ASSERT(p->n_string_table > 0);
	HD_EXPECT_STREQ(p->string_table[0], "");
	static const char *types[4][2] = {{"alloc_objects", "count"},
					  {"alloc_space", "bytes"},
					  {"inuse_objects", "count"},
					  {"inuse_space", "bytes"}};
	HD_ASSERT(p->n_sample_type == 4);
	for (int i = 0; i < 4; i++) {
		HD_EXPECT_STREQ(str(p, p->sample_type[i]->type), types[i][0]);
		HD_EXPECT_STREQ(str(p, p->sample_type[i]->unit), types[i][1]);
	}
	HD_EXPECT_STREQ(str(p, p->default_sample_type), "inuse_space");
	HD_ASSERT(p->period_type != NULL);
	HD_EXPECT_STREQ(str(p, p->period_type->type), "space");
	HD_EXPECT_STREQ(str(p, p->period_type->unit), "bytes");
	HD_EXPECT_EQ(p->period, 1);
	HD_EXPECT_EQ(p->time_nanos, 1700000002750000000LL);
	HD_EXPECT_EQ(p->duration_nanos, 2250000000LL);
	HD_EXPECT_STREQ(str(p, p->drop_frames), hd_export_drop_frames);
	HD_EXPECT_STREQ(str(p, p->keep_frames), hd_export_keep_frames);
	HD_ASSERT(p->n_comment == 1);
	HD_EXPECT_STREQ(str(p, p->comment[0]), "heapdbg snapshot full");

	/* Strings are interned: no duplicates. */
	for (size_t i = 0; i < p->n_string_table; i++)
		for (size_t j = i + 1; j < p->n_string_table; j++)
			HD_EXPECT(strcmp(p->string_table[i],
					 p->string_table[j]) != 0);

	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

HD_TEST(mappings)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *s = full_snapshot(pr);
	pb_profile *p = export_and_read(s, "m.pb.gz");

	HD_ASSERT(p->n_mapping == 2);
	/* In address order, ids from 1: the executable is mapping[0], which
	 * pprof takes for the main binary. */
	Perftools__Profiles__Mapping *exe = p->mapping[0], *lib = p->mapping[1];
	HD_EXPECT_EQ(exe->id, 1);
	HD_EXPECT_EQ(lib->id, 2);
	HD_EXPECT_STREQ(str(p, exe->filename), exe_path);
	HD_EXPECT_STREQ(str(p, exe->build_id), "0123abcd");
	HD_EXPECT_EQ(exe->memory_start, EXE_START);
	HD_EXPECT_EQ(exe->memory_limit, EXE_END);
	HD_EXPECT_EQ(exe->file_offset, 0x1000);
	HD_EXPECT(exe->has_functions && exe->has_filenames &&
		  exe->has_line_numbers && exe->has_inline_frames);
	HD_EXPECT_STREQ(str(p, lib->filename), lib_path);
	HD_EXPECT_STREQ(str(p, lib->build_id), "");
	HD_EXPECT_EQ(lib->memory_start, LIB_START);
	HD_EXPECT_EQ(lib->memory_limit, LIB_END);
	HD_EXPECT_EQ(lib->file_offset, 0x9000);
	/* The module has symbols but no line info, and the frame written
	 * has neither file nor line. */
	HD_EXPECT(lib->has_functions);
	HD_EXPECT(!lib->has_filenames && !lib->has_line_numbers);

	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

HD_TEST(samples_values_and_ids)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *s = full_snapshot(pr);
	pb_profile *p = export_and_read(s, "s.pb.gz");

	HD_EXPECT_EQ(p->n_sample, 4);
	EXPECT_SAMPLE(p, stack_a, 3, 300, 2, 200);
	EXPECT_SAMPLE(p, stack_d, 1, 50, 1, 50);
	EXPECT_SAMPLE(p, stack_b, 1, 1000, 0, 0);
	EXPECT_SAMPLE(p, stack_c, 2, 16, 1, 8);

	/* No dangling ids, anywhere; ids non-zero and unique. */
	for (size_t i = 0; i < p->n_sample; i++)
		for (size_t d = 0; d < p->sample[i]->n_location_id; d++)
			HD_EXPECT(loc_by_id(p, p->sample[i]->location_id[d]));
	for (size_t i = 0; i < p->n_location; i++) {
		Perftools__Profiles__Location *l = p->location[i];
		HD_EXPECT(l->id != 0);
		HD_EXPECT(loc_by_id(p, l->id) == l);
		HD_EXPECT(l->mapping_id != 0 && map_by_id(p, l->mapping_id));
		for (size_t j = 0; j < l->n_line; j++)
			HD_EXPECT(func_by_id(p, l->line[j]->function_id));
	}
	for (size_t i = 0; i < p->n_function; i++) {
		Perftools__Profiles__Function *f = p->function[i];
		HD_EXPECT(f->id != 0 && func_by_id(p, f->id) == f);
		str(p, f->name);
		str(p, f->system_name);
		str(p, f->filename);
	}
	/* One Location per distinct pc: 8 pcs in the four stacks. */
	HD_EXPECT_EQ(p->n_location, 8);
	/* main, worker, helper, Leaf::alloc, operator new. */
	HD_EXPECT_EQ(p->n_function, 5);
	/* Each pc resolved once. */
	HD_EXPECT_EQ(resolve_calls, 8);

	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

static Perftools__Profiles__Function *line_func(const pb_profile *p,
						Perftools__Profiles__Location *l,
						size_t i)
{
	HD_ASSERT(i < l->n_line);
	Perftools__Profiles__Function *f = func_by_id(p, l->line[i]->function_id);
	HD_ASSERT(f != NULL);
	return f;
}

HD_TEST(lines_functions_and_inlining)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *s = full_snapshot(pr);
	pb_profile *p = export_and_read(s, "l.pb.gz");

	Perftools__Profiles__Sample *sb = sample_of(p, stack_b, 2);
	HD_ASSERT(sb != NULL);
	/* The inlined pc: Line[0] is helper (innermost), Line[1] worker. */
	Perftools__Profiles__Location *inl = loc_by_id(p, sb->location_id[0]);
	HD_ASSERT(inl->n_line == 2);
	HD_EXPECT_EQ(inl->address, PC_INL - 1);
	HD_EXPECT_STREQ(str(p, line_func(p, inl, 0)->name), "helper");
	HD_EXPECT_EQ(inl->line[0]->line, 31);
	HD_EXPECT_EQ(line_func(p, inl, 0)->start_line, 30);
	HD_EXPECT_STREQ(str(p, line_func(p, inl, 1)->name), "worker");
	HD_EXPECT_EQ(inl->line[1]->line, 22);
	HD_EXPECT_STREQ(str(p, line_func(p, inl, 1)->filename), "main.c");

	/* worker is one Function whichever pc named it. */
	Perftools__Profiles__Sample *sa = sample_of(p, stack_a, 3);
	HD_ASSERT(sa != NULL);
	Perftools__Profiles__Location *w = loc_by_id(p, sa->location_id[1]);
	HD_ASSERT(w->n_line == 1);
	HD_EXPECT_EQ(w->line[0]->function_id, inl->line[1]->function_id);
	HD_EXPECT_EQ(w->line[0]->line, 20);

	/* C++: demangled name, mangled system name. */
	Perftools__Profiles__Location *leaf = loc_by_id(p, sa->location_id[0]);
	Perftools__Profiles__Function *lf = line_func(p, leaf, 0);
	HD_EXPECT_STREQ(str(p, lf->name), LEAF);
	HD_EXPECT_STREQ(str(p, lf->system_name), LEAF_MANGLED);
	HD_EXPECT_STREQ(str(p, lf->filename), "leaf.cc");
	HD_EXPECT_EQ(lf->start_line, 39);
	HD_EXPECT_EQ(leaf->line[0]->line, 40);
	HD_EXPECT_EQ(leaf->mapping_id, 1);

	Perftools__Profiles__Sample *sc = sample_of(p, stack_c, 3);
	HD_ASSERT(sc != NULL);
	Perftools__Profiles__Location *nw = loc_by_id(p, sc->location_id[0]);
	HD_EXPECT_EQ(nw->mapping_id, 2);
	HD_EXPECT_STREQ(str(p, line_func(p, nw, 0)->name), NEW);
	HD_EXPECT_STREQ(str(p, line_func(p, nw, 0)->system_name), "_Znwm");
	HD_EXPECT_STREQ(str(p, line_func(p, nw, 0)->filename), "");
	HD_EXPECT_EQ(nw->line[0]->line, 0);

	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

static struct hd_snap *diff_snapshot(struct hd_prof *pr)
{
	record_base(pr);
	struct hd_snap *base = hd_prof_snapshot(pr, "base", 1.0, 1);
	record_more(pr);
	struct hd_snap *cur = hd_prof_snapshot(pr, "cur", 2.0, 1);
	HD_ASSERT(base && cur);
	struct hd_snap *d = hd_snap_diff(cur, base);
	HD_ASSERT(d != NULL);
	hd_snap_free(base);
	hd_snap_free(cur);
	return d;
}

HD_TEST(diff_negative_values)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *d = diff_snapshot(pr);
	pb_profile *p = export_and_read(d, "d.pb.gz");

	/* cur - base, per stack. */
	HD_EXPECT_EQ(p->n_sample, 4);
	EXPECT_SAMPLE(p, stack_a, 0, 0, -1, -100);
	EXPECT_SAMPLE(p, stack_d, 1, 50, 1, 50);
	EXPECT_SAMPLE(p, stack_b, 0, 0, -1, -1000);
	EXPECT_SAMPLE(p, stack_c, 2, 16, 1, 8);

	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(d);
	hd_prof_free(pr);
	cleanup_tmp();
}

HD_TEST(scaled_values_rounded)
{
	/* At rate 4096 a 1000-byte sample weighs 1/(1-exp(-1000/4096)):
	 * 4.6162... objects, 4616.2... bytes; written to the nearest. */
	struct hd_prof *pr = hd_prof_new();
	hd_prof_record_alloc(pr, stack_b, 2, 0xb1, 1000, 4096);
	struct hd_snap *s = hd_prof_snapshot(pr, "scaled", 1.0, 4096);
	pb_profile *p = export_and_read(s, "r.pb.gz");
	double w = hd_sample_weight(1000, 4096);
	HD_EXPECT_EQ(p->period, 4096);
	EXPECT_SAMPLE(p, stack_b, llround(w), llround(w * 1000), llround(w),
		      llround(w * 1000));
	HD_EXPECT_EQ(llround(w * 1000), 4616);
	HD_EXPECT_EQ(llround(w), 5);
	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

HD_TEST(unknown_pc_has_no_mapping)
{
	static const uint64_t stack[] = {PC_NOWHERE, PC_MAIN};
	struct hd_prof *pr = hd_prof_new();
	hd_prof_record_alloc(pr, stack, 2, 0x1, 64, 1);
	struct hd_snap *s = hd_prof_snapshot(pr, NULL, 1.0, 1);
	pb_profile *p = export_and_read(s, "u.pb.gz");
	Perftools__Profiles__Sample *x = sample_of(p, stack, 2);
	HD_ASSERT(x != NULL);
	Perftools__Profiles__Location *l = loc_by_id(p, x->location_id[0]);
	HD_EXPECT_EQ(l->mapping_id, 0);
	HD_EXPECT_STREQ(str(p, line_func(p, l, 0)->name), "0x4ffff");
	HD_EXPECT_EQ(p->n_comment, 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

/* A module unloaded, and another loaded at the same addresses: the
 * mapping is the one the resolver names. */
static int reuse_resolve(void *ctx, uint64_t pc, struct hd_frame *f, int max)
{
	(void)ctx;
	(void)max;
	f[0] = frame("plugin_fn", "plugin_fn", "p.c", 3, 1, 0, 0);
	f[0].module = pc + 1 == 0x30100 ? "/p/new.so" : "/p/old.so";
	f[0].module_start = 0x30000;
	f[0].module_end = 0x31000;
	return 1;
}

static void reuse_modules(void *ctx,
			  void (*fn)(void *, const struct hd_sym_module_info *),
			  void *fnctx)
{
	(void)ctx;
	struct hd_sym_module_info old = {"/p/old.so", 0x30000, 0x31000, 0, 1,
					 1, NULL, 0};
	struct hd_sym_module_info new = {"/p/new.so", 0x30000, 0x31000, 1, 1,
					 1, NULL, 0};
	fn(fnctx, &old);
	fn(fnctx, &new);
}

HD_TEST(reused_addresses)
{
	static const uint64_t st_old[] = {0x30200}, st_new[] = {0x30100};
	const struct hd_export_src rsrc = {.resolve = reuse_resolve,
					   .modules = reuse_modules};
	struct hd_prof *pr = hd_prof_new();
	hd_prof_record_alloc(pr, st_old, 1, 0x1, 10, 1);
	hd_prof_record_alloc(pr, st_new, 1, 0x2, 20, 1);
	struct hd_snap *s = hd_prof_snapshot(pr, "r", 1.0, 1);
	char err[256];
	const char *path = tmp_path("reuse.pb.gz");
	HD_ASSERT(hd_export_pprof(path, s, &rsrc, err, sizeof(err)) == 0);
	pb_profile *p = read_profile(path);
	HD_ASSERT(p->n_mapping == 2);
	for (int i = 0; i < 2; i++) {
		const uint64_t *st = i ? st_new : st_old;
		Perftools__Profiles__Sample *x = sample_of(p, st, 1);
		HD_ASSERT(x != NULL);
		Perftools__Profiles__Location *l =
			loc_by_id(p, x->location_id[0]);
		Perftools__Profiles__Mapping *m = map_by_id(p, l->mapping_id);
		HD_ASSERT(m != NULL);
		HD_EXPECT_STREQ(str(p, m->filename),
				i ? "/p/new.so" : "/p/old.so");
	}
	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

HD_TEST(empty_snapshot)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *s = hd_prof_snapshot(pr, "empty", 0.0, 512 * 1024);
	pb_profile *p = export_and_read(s, "e.pb.gz");
	HD_EXPECT_EQ(p->n_sample, 0);
	HD_EXPECT_EQ(p->n_location, 0);
	HD_EXPECT_EQ(p->n_sample_type, 4);
	HD_EXPECT_EQ(p->period, 512 * 1024);
	HD_EXPECT_STREQ(p->string_table[0], "");
	perftools__profiles__profile__free_unpacked(p, NULL);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

HD_TEST(write_errors)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *s = full_snapshot(pr);
	char err[256] = "";
	HD_EXPECT_EQ(hd_export_pprof("/nonexistent/dir/x.pb.gz", s, &src, err,
				     sizeof(err)),
		     -HD_EIO);
	HD_EXPECT_STREQ(err, "cannot write /nonexistent/dir/x.pb.gz: No such "
			     "file or directory");
	err[0] = 0;
	HD_EXPECT_EQ(hd_export_folded("/nonexistent/f", s, HD_INUSE_SPACE,
				      &src, err, sizeof(err)),
		     -HD_EIO);
	HD_EXPECT_STREQ(err,
			"cannot write /nonexistent/f: No such file or directory");
	/* A full device: the error surfaces at write or close, and the
	 * device itself is left alone. */
	struct stat st;
	if (stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode)) {
		err[0] = 0;
		HD_EXPECT_EQ(hd_export_pprof("/dev/full", s, &src, err,
					     sizeof(err)),
			     -HD_EIO);
		HD_EXPECT_STREQ(err, "cannot write /dev/full: No space left "
				     "on device");
		HD_EXPECT(stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode));
	}
	/* A write cut short (file size limit: EFBIG) leaves no half-written
	 * regular file behind. */
	const char *path = tmp_path("partial.pb.gz");
	struct rlimit lim = {16, 16};
	signal(SIGXFSZ, SIG_IGN);
	HD_ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0);
	err[0] = 0;
	HD_EXPECT_EQ(hd_export_pprof(path, s, &src, err, sizeof(err)),
		     -HD_EIO);
	char want[256];
	snprintf(want, sizeof(want), "cannot write %s: File too large", path);
	HD_EXPECT_STREQ(err, want);
	HD_EXPECT(access(path, F_OK) != 0 && errno == ENOENT);
	cleanup_tmp();
	hd_snap_free(s);
	hd_prof_free(pr);
}

/* ---- folded --------------------------------------------------------- */

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	HD_ASSERT(f != NULL);
	static char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

static long long folded_sum(const char *text)
{
	long long sum = 0;
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		HD_ASSERT(nl != NULL);
		const char *sp = l;
		for (const char *c = l; c < nl; c++)
			if (*c == ' ')
				sp = c;
		HD_ASSERT(sp > l);
		sum += strtoll(sp + 1, NULL, 10);
		l = nl + 1;
	}
	return sum;
}

HD_TEST(folded_inuse_space)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *s = full_snapshot(pr);
	char err[256];
	const char *path = tmp_path("f.txt");
	HD_ASSERT(hd_export_folded(path, s, HD_INUSE_SPACE, &src, err,
				   sizeof(err)) == 0);
	/* A and D differ only in line: one line of 250.  operator new is
	 * trimmed from C.  B (nothing in use) is omitted.  Sorted. */
	HD_EXPECT_STREQ(read_text(path), "main;" LEAF " 8\n"
					 "main;worker;" LEAF " 250\n");
	HD_EXPECT_EQ(folded_sum(read_text(path)), 258);
	HD_EXPECT_EQ(folded_sum(read_text(path)), s->total.inuse_space);
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

HD_TEST(folded_every_index_sums_to_total)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *s = full_snapshot(pr);
	char err[256];
	const char *path = tmp_path("f.txt");
	static const long long want[4] = {7, 1366, 4, 258};
	for (int i = 0; i < 4; i++) {
		HD_ASSERT(hd_export_folded(path, s, i, &src, err,
					   sizeof(err)) == 0);
		HD_EXPECT_EQ(folded_sum(read_text(path)), want[i]);
		HD_EXPECT_EQ(folded_sum(read_text(path)),
			     llround(hd_counts_value(&s->total, i)));
	}
	/* Inlined frames are frames of their own. */
	HD_ASSERT(hd_export_folded(path, s, HD_ALLOC_SPACE, &src, err,
				   sizeof(err)) == 0);
	HD_EXPECT_STREQ(read_text(path), "main;" LEAF " 16\n"
					 "main;worker;helper 1000\n"
					 "main;worker;" LEAF " 350\n");
	hd_snap_free(s);
	hd_prof_free(pr);
	cleanup_tmp();
}

HD_TEST(folded_diff)
{
	struct hd_prof *pr = hd_prof_new();
	struct hd_snap *d = diff_snapshot(pr);
	char err[256];
	const char *path = tmp_path("fd.txt");
	HD_ASSERT(hd_export_folded(path, d, HD_INUSE_SPACE, &src, err,
				   sizeof(err)) == 0);
	/* A -100 and D +50 merge into one line. */
	HD_EXPECT_STREQ(read_text(path), "main;" LEAF " 8\n"
					 "main;worker;helper -1000\n"
					 "main;worker;" LEAF " -50\n");
	HD_EXPECT_EQ(folded_sum(read_text(path)), -1042);
	hd_snap_free(d);
	hd_prof_free(pr);
	cleanup_tmp();
}

/* ---- pprof's trimming ---------------------------------------------- */

static int prune(const char *const *names, const int *loc, int n,
		 unsigned char *keep)
{
	struct hd_frame f[16];
	for (int i = 0; i < n; i++)
		f[i] = (struct hd_frame){.func = names[i]};
	return hd_export_prune(f, loc, n, keep);
}

static void expect_keep(const unsigned char *keep, const char *want, int n)
{
	char got[32];
	for (int i = 0; i < n; i++)
		got[i] = keep[i] ? '1' : '0';
	got[n] = 0;
	HD_EXPECT_STREQ(got, want);
}

HD_TEST(prune_allocator_frames)
{
	unsigned char keep[16];
	/* operator new over user code: trimmed, with anything above it. */
	const char *a[] = {"__libc_malloc", "operator new(unsigned long)",
			   "f", "main"};
	const int la[] = {0, 1, 2, 3};
	HD_EXPECT_EQ(prune(a, la, 4, keep), 2);
	expect_keep(keep, "0011", 4);

	/* Names are simplified first: parameters go, a leading '.' goes,
	 * "operator()" is not a parameter list. */
	const char *b[] = {".malloc", "operator new[](unsigned long)",
			   "std::vector<int>::operator()(int)", "main"};
	HD_EXPECT_EQ(prune(b, la, 4, keep), 2);
	expect_keep(keep, "0011", 4);

	/* Only whole names match. */
	const char *c[] = {"my_malloc", "malloc_wrapper", "main"};
	HD_EXPECT_EQ(prune(c, la, 3, keep), 3);
	expect_keep(keep, "111", 3);

	/* No user code below: nothing is cut (pprof keeps the stack). */
	const char *d[] = {"malloc", "calloc"};
	HD_EXPECT_EQ(prune(d, la, 2, keep), 2);

	/* An allocator inlined into user code at one pc: the lines inside
	 * it go, the location stays. */
	const char *e[] = {"malloc", "f", "main"};
	const int le[] = {0, 0, 1};
	HD_EXPECT_EQ(prune(e, le, 3, keep), 2);
	expect_keep(keep, "011", 3);

	/* A partial match in the root location trims its lines even where
	 * the stack is not cut (pprof edits the Location itself). */
	const char *e2[] = {"f", "malloc", "g"};
	const int le2[] = {0, 1, 1};
	HD_EXPECT_EQ(prune(e2, le2, 3, keep), 2);
	expect_keep(keep, "101", 3);

	/* Cut at the first allocator frame from the root: the user frame
	 * above it goes too (pprof drops everything beneath it). */
	const char *g[] = {"cb", "realloc", "f", "main"};
	HD_EXPECT_EQ(prune(g, la, 4, keep), 2);
	expect_keep(keep, "0011", 4);

	/* Template allocator layers of libstdc++ are allocator frames. */
	const char *t[] = {"std::__new_allocator<int>::allocate(unsigned long, "
			   "void const*)",
			   "std::allocator_traits<std::allocator<int> >::"
			   "allocate(std::allocator<int>&, unsigned long)",
			   "std::vector<int>::push_back(int const&)", "main"};
	HD_EXPECT_EQ(prune(t, la, 4, keep), 2);
	expect_keep(keep, "0011", 4);
	HD_EXPECT_EQ(hd_export_alloc_frame("std::allocator<char>::allocate"),
		     1);
	HD_EXPECT_EQ(hd_export_alloc_frame("allocate_buffer"), 0);
	HD_EXPECT_EQ(hd_export_alloc_frame(""), 0);
	HD_EXPECT_EQ(hd_export_alloc_frame(NULL), 0);

	/* runtime.panic is kept (keep_frames) although runtime.* drops. */
	HD_EXPECT_EQ(hd_export_alloc_frame("runtime.mallocgc"), 1);
	HD_EXPECT_EQ(hd_export_alloc_frame("runtime.panic"), 0);
	HD_EXPECT_EQ(hd_export_alloc_frame("runtime.call32"), 0);

	/* tcmalloc::* and runtime.* patterns. */
	const char *h[] = {"tcmalloc::Alloc", "runtime.mallocgc", "main.f"};
	HD_EXPECT_EQ(prune(h, la, 3, keep), 1);
	expect_keep(keep, "001", 3);
}

/* ---- the synthetic profiles for the go tool pprof test -------------- */

static int write_source(const char *dir, const char *name, int lines)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	for (int i = 1; i <= lines; i++)
		fprintf(f, "line %d of %s\n", i, name);
	return fclose(f);
}

static int write_all(const char *dir)
{
	char path[512], err[256];
	struct hd_prof *pr = hd_prof_new();
	record_base(pr);
	struct hd_snap *base = hd_prof_snapshot(pr, "base", 1.0, 1);
	record_more(pr);
	struct hd_snap *cur = hd_prof_snapshot(pr, "full", 2.25, 1);
	struct hd_snap *diff = base && cur ? hd_snap_diff(cur, base) : NULL;
	int rc = diff ? 0 : -1;

	snprintf(path, sizeof(path), "%s/full.pb.gz", dir);
	if (!rc)
		rc = hd_export_pprof(path, cur, &src, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/base.pb.gz", dir);
	if (!rc)
		rc = hd_export_pprof(path, base, &src, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/diff.pb.gz", dir);
	if (!rc)
		rc = hd_export_pprof(path, diff, &src, err, sizeof(err));
	static const char *idx[4] = {"alloc_objects", "alloc_space",
				     "inuse_objects", "inuse_space"};
	for (int i = 0; i < 4 && !rc; i++) {
		snprintf(path, sizeof(path), "%s/full.%s.folded", dir, idx[i]);
		rc = hd_export_folded(path, cur, i, &src, err, sizeof(err));
	}
	if (rc)
		fprintf(stderr, "test_export: %s\n", err);
	if (!rc && (write_source(dir, "main.c", 40) ||
		    write_source(dir, "leaf.cc", 50)))
		rc = -1;
	hd_snap_free(diff);
	hd_snap_free(cur);
	hd_snap_free(base);
	hd_prof_free(pr);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--write") == 0)
		return write_all(argv[2]);
	return hd_test_main();
}
