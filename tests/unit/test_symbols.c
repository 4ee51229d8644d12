/* Unit tests of symbols/: exact names, files and lines for addresses the
 * test programs in symdata/ report about themselves (return addresses of
 * known calls), resolved in live processes and offline. */
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>

#include "symbols/symbols.h"
#include "tests/unit/hd_test.h"

#define PROG SYMDATA_DIR "/symprog"
#define PROG_NOPIE SYMDATA_DIR "/symprog_nopie"
#define PROG_DBGLINK SYMDATA_DIR "/symprog_dbglink"
#define PROG_BUILDID SYMDATA_DIR "/symprog_buildid"
#define PROG_CPP SYMDATA_DIR "/symcpp"
#define LIB SYMDATA_DIR "/libsymlib.so"
#define DBGROOT SYMDATA_DIR "/dbgroot"
#define SRC_C SYMDATA_SRC "/symprog.c"
#define SRC_CPP SYMDATA_SRC "/symcpp.cpp"
#define SRC_LIB SYMDATA_SRC "/symlib.c"

/* ---- helpers ------------------------------------------------------------ */

/* Line (1-based) of source `file` carrying the comment "MARK:<mark>". */
static int mark_line(const char *file, const char *mark)
{
	FILE *f = fopen(file, "r");
	HD_ASSERT(f != NULL);
	char buf[512], key[128];
	snprintf(key, sizeof(key), "MARK:%s", mark);
	size_t klen = strlen(key);
	for (int line = 1; fgets(buf, sizeof(buf), f); line++) {
		char *p = strstr(buf, key);
		if (p && !(p[klen] == '_' || (p[klen] >= 'a' && p[klen] <= 'z'))) {
			fclose(f);
			return line;
		}
	}
	fclose(f);
	HD_FAIL_AT("no MARK:%s in %s", mark, file);
	_exit(1);
}

struct child {
	pid_t pid;
	int out, in; /* what it says, what we tell it */
	char text[4096];
	size_t len;
};

static int move_high(int fd)
{
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	HD_ASSERT(high >= 0);
	close(fd);
	return high;
}

/* Reads what the child says until a line equal to `line`. */
static void child_wait_line(struct child *c, const char *line)
{
	char want[64];
	snprintf(want, sizeof(want), "%s\n", line);
	while (!strstr(c->text, want)) {
		HD_ASSERT(c->len + 1 < sizeof(c->text));
		ssize_t r = read(c->out, c->text + c->len,
				 sizeof(c->text) - 1 - c->len);
		HD_ASSERT(r > 0);
		c->len += (size_t)r;
		c->text[c->len] = '\0';
	}
}

/* Starts a symdata program; returns once it has reported its addresses. */
static void child_start(struct child *c, const char *prog, const char *arg)
{
	int up[2], down[2];
	HD_ASSERT(pipe(up) == 0 && pipe(down) == 0);
	up[0] = move_high(up[0]);
	up[1] = move_high(up[1]);
	down[0] = move_high(down[0]);
	down[1] = move_high(down[1]);
	memset(c, 0, sizeof(*c));
	c->pid = fork();
	HD_ASSERT(c->pid >= 0);
	if (c->pid == 0) {
		if (dup2(up[1], 3) < 0 || dup2(down[0], 4) < 0)
			_exit(126);
		execl(prog, prog, arg, (char *)NULL);
		_exit(127);
	}
	close(up[1]);
	close(down[0]);
	c->out = up[0];
	c->in = down[1];
	child_wait_line(c, "ready");
}

static uint64_t child_addr(struct child *c, const char *name)
{
	char key[64];
	snprintf(key, sizeof(key), "%s 0x", name);
	for (char *p = c->text; (p = strstr(p, key)); p++) {
		if (p == c->text || p[-1] == '\n')
			return strtoull(p + strlen(key), NULL, 16);
	}
	HD_FAIL_AT("child did not report %s", name);
	_exit(1);
}

static void child_command(struct child *c, char cmd, const char *reply)
{
	HD_ASSERT(write(c->in, &cmd, 1) == 1);
	child_wait_line(c, reply);
}

static void child_kill(struct child *c)
{
	kill(c->pid, SIGKILL);
	HD_ASSERT(waitpid(c->pid, NULL, 0) == c->pid);
	close(c->out);
	close(c->in);
}

static struct hd_sym_space *space_of(struct child *c)
{
	struct hd_sym_space *s = hd_sym_space_new();
	HD_ASSERT(s != NULL);
	HD_ASSERT(hd_sym_space_update(s, c->pid) == 0);
	return s;
}

/* Exactly one frame for pc, whose function and source line are given. */
static void expect_frame(struct hd_sym_space *s, uint64_t pc,
			 const char *func, const char *file, int line,
			 int func_line, const char *module)
{
	struct hd_frame f[8];
	int n = hd_sym_resolve(s, pc, f, 8);
	HD_EXPECT_EQ(n, 1);
	HD_ASSERT(n >= 1);
	HD_EXPECT_STREQ(f[0].func, func);
	HD_EXPECT_STREQ(f[0].file, file);
	HD_EXPECT_EQ(f[0].line, line);
	HD_EXPECT_EQ(f[0].func_line, func_line);
	HD_EXPECT_EQ(f[0].inlined, 0);
	HD_EXPECT_STREQ(f[0].module, module);
	HD_EXPECT(f[0].module_start <= pc && pc < f[0].module_end);
}

static void expect_outer_fn(struct hd_sym_space *s, struct child *c,
			    const char *module)
{
	expect_frame(s, child_addr(c, "outer_ra") - 1, "outer_fn", SRC_C,
		     mark_line(SRC_C, "outer_call"),
		     mark_line(SRC_C, "outer_decl"), module);
}

/* Link-time value of symbol `name` in the .symtab of `path`. */
static uint64_t elf_symbol(const char *path, const char *name)
{
	HD_ASSERT(elf_version(EV_CURRENT) != EV_NONE);
	int fd = open(path, O_RDONLY);
	HD_ASSERT(fd >= 0);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	HD_ASSERT(elf != NULL);
	uint64_t value = 0;
	Elf_Scn *scn = NULL;
	while (!value && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		HD_ASSERT(gelf_getshdr(scn, &sh) != NULL);
		if (sh.sh_type != SHT_SYMTAB)
			continue;
		Elf_Data *data = elf_getdata(scn, NULL);
		for (size_t i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			gelf_getsym(data, (int)i, &sym);
			const char *n = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (n && strcmp(n, name) == 0)
				value = sym.st_value;
		}
	}
	elf_end(elf);
	close(fd);
	HD_ASSERT(value != 0);
	return value;
}

/* The executable PT_LOAD of `path`. */
static GElf_Phdr elf_text_segment(const char *path)
{
	HD_ASSERT(elf_version(EV_CURRENT) != EV_NONE);
	int fd = open(path, O_RDONLY);
	HD_ASSERT(fd >= 0);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	HD_ASSERT(elf != NULL);
	size_t phnum = 0;
	HD_ASSERT(elf_getphdrnum(elf, &phnum) == 0);
	GElf_Phdr text = {0};
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;
		HD_ASSERT(gelf_getphdr(elf, (int)i, &ph) != NULL);
		if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X))
			text = ph;
	}
	elf_end(elf);
	close(fd);
	HD_ASSERT(text.p_type == PT_LOAD);
	return text;
}

static void elf_build_id_hex(const char *path, char *hex, size_t size)
{
	HD_ASSERT(elf_version(EV_CURRENT) != EV_NONE);
	int fd = open(path, O_RDONLY);
	HD_ASSERT(fd >= 0);
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	const void *bits = NULL;
	ssize_t len = dwelf_elf_gnu_build_id(elf, &bits);
	HD_ASSERT(len > 0 && (size_t)len * 2 < size);
	for (ssize_t i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", ((const unsigned char *)bits)[i]);
	elf_end(elf);
	close(fd);
}

/* ---- demangling and unknown addresses ------------------------------------ */

HD_TEST(demangle_cxx_names)
{
	char *d = hd_demangle("_ZN6hdtest6Widget6methodEi");
	HD_EXPECT_STREQ(d, "hdtest::Widget::method(int)");
	free(d);
	d = hd_demangle("_ZNSt6vectorIiSaIiEE9push_backERKi");
	HD_EXPECT_STREQ(d, "std::vector<int, std::allocator<int> >::push_back(int const&)");
	free(d);
	HD_EXPECT(hd_demangle("malloc") == NULL);
	HD_EXPECT(hd_demangle("i") == NULL); /* a type, not a symbol */
	HD_EXPECT(hd_demangle("_Zgarbage") == NULL);
	HD_EXPECT(hd_demangle(NULL) == NULL);
}

HD_TEST(unknown_pc_is_named_by_address)
{
	struct hd_sym_space *s = hd_sym_space_new();
	HD_ASSERT(s != NULL);
	struct hd_frame f[4];
	HD_EXPECT_EQ(hd_sym_resolve(s, 0x1234abcd, f, 4), 1);
	HD_EXPECT_STREQ(f[0].func, "0x1234abcd");
	HD_EXPECT(f[0].mangled == NULL);
	HD_EXPECT(f[0].module == NULL);
	HD_EXPECT(f[0].file == NULL);
	HD_EXPECT_EQ(f[0].line, 0);
	HD_EXPECT_EQ(hd_sym_resolve(s, 0x1234abcd, f, 0), 0);
	hd_sym_space_free(s);
}

HD_TEST(add_rejects_bad_modules)
{
	struct hd_sym_space *s = hd_sym_space_new();
	HD_ASSERT(s != NULL);
	HD_EXPECT_EQ(hd_sym_space_add(s, PROG, 0x2000, 0x1000, 0), -HD_EINVAL);
	HD_EXPECT_EQ(hd_sym_space_add(s, SYMDATA_DIR "/no-such-file", 0x1000,
				      0x2000, 0), -HD_ENOTFOUND);
	HD_EXPECT_EQ(hd_sym_space_update(s, 999999999), -HD_ENOPROC);
	hd_sym_space_free(s);
}

/* ---- live processes ------------------------------------------------------- */

HD_TEST(pie_executable_exact_line)
{
	struct child c;
	child_start(&c, PROG, NULL);
	struct hd_sym_space *s = space_of(&c);
	expect_outer_fn(s, &c, PROG);

	struct hd_frame f[2];
	HD_ASSERT(hd_sym_resolve(s, child_addr(&c, "outer_ra") - 1, f, 2) == 1);
	HD_EXPECT_STREQ(f[0].mangled, "outer_fn");
	HD_EXPECT(f[0].func == f[0].mangled); /* C: the same string */
	child_kill(&c);
	hd_sym_space_free(s);
}

HD_TEST(inlined_chain_from_one_pc)
{
	struct child c;
	child_start(&c, PROG, NULL);
	struct hd_sym_space *s = space_of(&c);
	uint64_t pc = child_addr(&c, "inline_ra") - 1;

	struct hd_frame f[8];
	int n = hd_sym_resolve(s, pc, f, 8);
	HD_ASSERT(n == 2);
	HD_EXPECT_STREQ(f[0].func, "helper");
	HD_EXPECT_EQ(f[0].inlined, 1);
	HD_EXPECT_STREQ(f[0].file, SRC_C);
	HD_EXPECT_EQ(f[0].line, mark_line(SRC_C, "inline_leaf"));
	HD_EXPECT_EQ(f[0].func_line, mark_line(SRC_C, "helper_decl"));
	HD_EXPECT_STREQ(f[1].func, "outer_fn");
	HD_EXPECT_EQ(f[1].inlined, 0);
	HD_EXPECT_STREQ(f[1].file, SRC_C);
	HD_EXPECT_EQ(f[1].line, mark_line(SRC_C, "inline_call"));
	HD_EXPECT_EQ(f[1].func_line, mark_line(SRC_C, "outer_decl"));
	HD_EXPECT_STREQ(f[1].module, PROG);

	/* Truncated to max, innermost kept. */
	struct hd_frame one;
	HD_EXPECT_EQ(hd_sym_resolve(s, pc, &one, 1), 1);
	HD_EXPECT_STREQ(one.func, "helper");
	child_kill(&c);
	hd_sym_space_free(s);
}

HD_TEST(aliases_prefer_public_names)
{
	struct child c;
	child_start(&c, PROG, NULL);
	struct hd_sym_space *s = space_of(&c);
	struct hd_frame f[4];

	/* DWARF calls it __impl_work; the ELF alias is what users know. */
	HD_ASSERT(hd_sym_resolve(s, child_addr(&c, "public_work"), f, 4) == 1);
	HD_EXPECT_STREQ(f[0].func, "public_work");
	HD_EXPECT_STREQ(f[0].file, SRC_C);

	/* glibc: malloc/__libc_malloc (both global), strdup (weak)/__strdup
	 * (global) share addresses. */
	HD_ASSERT(hd_sym_resolve(s, child_addr(&c, "malloc"), f, 4) >= 1);
	HD_EXPECT_STREQ(f[0].func, "malloc");
	HD_EXPECT(f[0].module && strstr(f[0].module, "libc.so"));
	HD_ASSERT(hd_sym_resolve(s, child_addr(&c, "strdup"), f, 4) >= 1);
	HD_EXPECT_STREQ(f[0].func, "strdup");
	child_kill(&c);
	hd_sym_space_free(s);
}

HD_TEST(cxx_method_demangled)
{
	struct child c;
	child_start(&c, PROG_CPP, NULL);
	struct hd_sym_space *s = space_of(&c);
	struct hd_frame f[4];
	HD_ASSERT(hd_sym_resolve(s, child_addr(&c, "method_ra") - 1, f, 4) == 1);
	HD_EXPECT_STREQ(f[0].func, "hdtest::Widget::method(int)");
	HD_EXPECT_STREQ(f[0].mangled, "_ZN6hdtest6Widget6methodEi");
	HD_EXPECT_STREQ(f[0].file, SRC_CPP);
	HD_EXPECT_EQ(f[0].line, mark_line(SRC_CPP, "method_call"));
	HD_EXPECT_EQ(f[0].func_line, mark_line(SRC_CPP, "method_decl"));
	HD_EXPECT_STREQ(f[0].module, PROG_CPP);

	/* libstdc++ without debug info: .dynsym name, demangled. */
	HD_ASSERT(hd_sym_resolve(s, child_addr(&c, "operator_new"), f, 4) == 1);
	HD_EXPECT_STREQ(f[0].func, "operator new(unsigned long)");
	HD_EXPECT_STREQ(f[0].mangled, "_Znwm");
	HD_EXPECT(f[0].module && strstr(f[0].module, "libstdc++.so"));
	child_kill(&c);
	hd_sym_space_free(s);
}

HD_TEST(shared_library_at_its_load_address)
{
	struct child c;
	child_start(&c, PROG, LIB);
	struct hd_sym_space *s = space_of(&c);
	expect_frame(s, child_addr(&c, "lib_ra") - 1, "symlib_work", SRC_LIB,
		     mark_line(SRC_LIB, "lib_call"),
		     mark_line(SRC_LIB, "lib_decl"), LIB);
	expect_outer_fn(s, &c, PROG);
	child_kill(&c);
	hd_sym_space_free(s);
}

struct module_list {
	struct hd_sym_module_info m[256];
	int n;
};

static void collect(void *ctx, const struct hd_sym_module_info *info)
{
	struct module_list *l = ctx;
	if (l->n < 256)
		l->m[l->n++] = *info;
}

static const struct hd_sym_module_info *find_module(struct module_list *l,
						    const char *path)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->m[i].path, path) == 0)
			return &l->m[i];
	return NULL;
}

HD_TEST(module_kept_after_dlclose)
{
	struct child c;
	child_start(&c, PROG, LIB);
	struct hd_sym_space *s = space_of(&c);
	uint64_t pc = child_addr(&c, "lib_ra") - 1;
	/* Nothing resolved yet: the library is first opened after it is
	 * gone from the process. */
	child_command(&c, 'u', "unloaded");
	HD_ASSERT(hd_sym_space_update(s, c.pid) == 0);

	struct module_list l = {0};
	hd_sym_modules(s, 0, collect, &l);
	const struct hd_sym_module_info *lib = find_module(&l, LIB);
	HD_ASSERT(lib != NULL);
	HD_EXPECT_EQ(lib->loaded, 0);
	HD_EXPECT(lib->start <= pc && pc < lib->end);
	const struct hd_sym_module_info *prog = find_module(&l, PROG);
	HD_ASSERT(prog != NULL);
	HD_EXPECT_EQ(prog->loaded, 1);

	expect_frame(s, pc, "symlib_work", SRC_LIB,
		     mark_line(SRC_LIB, "lib_call"),
		     mark_line(SRC_LIB, "lib_decl"), LIB);
	child_kill(&c);
	hd_sym_space_free(s);
}

HD_TEST(module_kept_after_exit)
{
	struct child c;
	child_start(&c, PROG, NULL);
	struct hd_sym_space *s = space_of(&c);
	child_kill(&c);
	HD_EXPECT_EQ(hd_sym_space_update(s, c.pid), -HD_ENOPROC);
	expect_outer_fn(s, &c, PROG);
	hd_sym_space_free(s);
}

HD_TEST(non_pie_executable)
{
	struct child c;
	child_start(&c, PROG_NOPIE, NULL);
	struct hd_sym_space *s = space_of(&c);
	uint64_t pc = child_addr(&c, "outer_ra") - 1;
	expect_frame(s, pc, "outer_fn", SRC_C, mark_line(SRC_C, "outer_call"),
		     mark_line(SRC_C, "outer_decl"), PROG_NOPIE);
	/* ET_EXEC runs at its link-time addresses. */
	uint64_t fn = elf_symbol(PROG_NOPIE, "outer_fn");
	HD_EXPECT(fn < pc && pc < fn + 64);
	child_kill(&c);
	hd_sym_space_free(s);
}

/* ---- offline modules -------------------------------------------------------- */

/* Map `path`'s text segment at `bias` as the kernel would, by hand. */
static void add_text(struct hd_sym_space *s, const char *path, uint64_t bias)
{
	GElf_Phdr t = elf_text_segment(path);
	uint64_t pageoff = t.p_vaddr & 4095;
	HD_ASSERT(hd_sym_space_add(s, path, bias + t.p_vaddr - pageoff,
				   bias + t.p_vaddr + t.p_memsz,
				   t.p_offset - pageoff) == 0);
}

HD_TEST(offline_pie_at_any_base)
{
	struct hd_sym_space *s = hd_sym_space_new();
	HD_ASSERT(s != NULL);
	const uint64_t base = 0x7f1200000000ull;
	add_text(s, PROG, base);
	uint64_t fn = base + elf_symbol(PROG, "outer_fn");
	struct hd_frame f[4];
	HD_ASSERT(hd_sym_resolve(s, fn, f, 4) == 1);
	HD_EXPECT_STREQ(f[0].func, "outer_fn");
	HD_EXPECT_STREQ(f[0].file, SRC_C);
	HD_EXPECT_EQ(f[0].func_line, mark_line(SRC_C, "outer_decl"));
	/* The function's entry belongs to its first line or its brace. */
	HD_EXPECT(f[0].line == f[0].func_line || f[0].line == f[0].func_line + 1);

	/* Same file elsewhere in another space: nothing shared. */
	struct hd_sym_space *s2 = hd_sym_space_new();
	HD_ASSERT(s2 != NULL);
	add_text(s2, PROG, 0x5500000000ull);
	HD_ASSERT(hd_sym_resolve(s2, fn, f, 4) == 1);
	HD_EXPECT(f[0].module == NULL);
	HD_ASSERT(hd_sym_resolve(s2, fn - base + 0x5500000000ull, f, 4) == 1);
	HD_EXPECT_STREQ(f[0].func, "outer_fn");
	hd_sym_space_free(s2);
	hd_sym_space_free(s);
}

HD_TEST(newer_module_replaces_cached_pc)
{
	struct hd_sym_space *s = hd_sym_space_new();
	HD_ASSERT(s != NULL);
	const uint64_t base = 0x7f1200000000ull;
	add_text(s, PROG, base);
	uint64_t pc = base + elf_symbol(PROG, "outer_fn");
	struct hd_frame f[4];
	HD_ASSERT(hd_sym_resolve(s, pc, f, 4) == 1);
	HD_EXPECT_STREQ(f[0].module, PROG);
	/* Another file mapped over the same addresses (as after dlclose and
	 * dlopen) wins, although the pc was cached. */
	GElf_Phdr t = elf_text_segment(PROG), c = elf_text_segment(PROG_CPP);
	HD_ASSERT(hd_sym_space_add(s, PROG_CPP, base + (t.p_vaddr & ~4095ull),
				   base + t.p_vaddr + t.p_memsz,
				   c.p_offset - (c.p_vaddr & 4095)) == 0);
	HD_ASSERT(hd_sym_resolve(s, pc, f, 4) >= 1);
	HD_EXPECT_STREQ(f[0].module, PROG_CPP);
	hd_sym_space_free(s);
}

HD_TEST(offline_non_pie)
{
	struct hd_sym_space *s = hd_sym_space_new();
	HD_ASSERT(s != NULL);
	add_text(s, PROG_NOPIE, 0);
	uint64_t fn = elf_symbol(PROG_NOPIE, "__impl_work");
	struct hd_frame f[4];
	HD_ASSERT(hd_sym_resolve(s, fn, f, 4) == 1);
	HD_EXPECT_STREQ(f[0].func, "public_work");
	HD_EXPECT_STREQ(f[0].module, PROG_NOPIE);
	hd_sym_space_free(s);
}

/* ---- separate debug info ------------------------------------------------------ */

HD_TEST(stripped_binary_debuglink)
{
	struct child c;
	child_start(&c, PROG_DBGLINK, NULL);
	struct hd_sym_space *s = space_of(&c);
	expect_outer_fn(s, &c, PROG_DBGLINK);
	child_kill(&c);
	hd_sym_space_free(s);
}

HD_TEST(stripped_binary_build_id_directory)
{
	struct child c;
	child_start(&c, PROG_BUILDID, NULL);
	uint64_t pc = child_addr(&c, "outer_ra") - 1;

	/* Without the debug directory: no name for a static text address,
	 * but the module is known. */
	struct hd_sym_space *bare = space_of(&c);
	struct hd_frame f[4];
	HD_ASSERT(hd_sym_resolve(bare, pc, f, 4) == 1);
	char hex[32];
	snprintf(hex, sizeof(hex), "0x%" PRIx64, pc);
	HD_EXPECT_STREQ(f[0].func, hex);
	HD_EXPECT_STREQ(f[0].module, PROG_BUILDID);
	HD_EXPECT(f[0].file == NULL);
	hd_sym_space_free(bare);

	struct hd_sym_space *s = hd_sym_space_new();
	HD_ASSERT(s != NULL);
	HD_ASSERT(hd_sym_set_debuginfo_path(s, DBGROOT) == 0);
	HD_ASSERT(hd_sym_space_update(s, c.pid) == 0);
	expect_outer_fn(s, &c, PROG_BUILDID);
	child_kill(&c);
	hd_sym_space_free(s);
}

/* ---- listing, sources, threads -------------------------------------------- */

HD_TEST(modules_in_address_order_with_details)
{
	struct child c;
	child_start(&c, PROG, LIB);
	struct hd_sym_space *s = space_of(&c);
	struct module_list l = {0};
	hd_sym_modules(s, 1, collect, &l);
	HD_ASSERT(l.n >= 3); /* symprog, libsymlib, libc, ld.so */
	for (int i = 1; i < l.n; i++)
		HD_EXPECT(l.m[i - 1].start < l.m[i].start);
	const struct hd_sym_module_info *p = find_module(&l, PROG);
	HD_ASSERT(p != NULL);
	HD_EXPECT_EQ(p->loaded, 1);
	HD_EXPECT_EQ(p->has_symbols, 1);
	HD_EXPECT_EQ(p->has_lines, 1);
	char hex[128];
	elf_build_id_hex(PROG, hex, sizeof(hex));
	HD_EXPECT_STREQ(p->build_id, hex);
	child_kill(&c);
	hd_sym_space_free(s);

	/* A stripped binary whose debug file is not found has no lines. */
	child_start(&c, PROG_BUILDID, NULL);
	s = space_of(&c);
	l.n = 0;
	hd_sym_modules(s, 1, collect, &l);
	p = find_module(&l, PROG_BUILDID);
	HD_ASSERT(p != NULL);
	HD_EXPECT_EQ(p->has_lines, 0);
	HD_EXPECT_STREQ(p->build_id, hex);
	child_kill(&c);
	hd_sym_space_free(s);
}

HD_TEST(source_lines_cached)
{
	struct child c;
	child_start(&c, PROG, NULL);
	struct hd_sym_space *s = space_of(&c);
	struct hd_frame f[2];
	HD_ASSERT(hd_sym_resolve(s, child_addr(&c, "outer_ra") - 1, f, 2) == 1);
	const char *text = hd_sym_source_line(s, f[0].file, f[0].line);
	HD_ASSERT(text != NULL);
	HD_EXPECT(strstr(text, "symprog_record(SLOT_OUTER); /* MARK:outer_call */"));
	HD_EXPECT(strchr(text, '\n') == NULL);
	HD_EXPECT(hd_sym_source_line(s, f[0].file, f[0].line) == text);
	HD_EXPECT_STREQ(hd_sym_source_line(s, SRC_C, 1),
			"/* Test program for the symbols unit test.  The source positions the test");
	HD_EXPECT(hd_sym_source_line(s, SRC_C, 100000) == NULL);
	HD_EXPECT(hd_sym_source_line(s, SRC_C, 0) == NULL);
	HD_EXPECT(hd_sym_source_line(s, SYMDATA_DIR "/nope.c", 1) == NULL);
	child_kill(&c);
	hd_sym_space_free(s);
}

HD_TEST(resolve_cached_and_stable)
{
	struct child c;
	child_start(&c, PROG, NULL);
	struct hd_sym_space *s = space_of(&c);
	uint64_t pc = child_addr(&c, "inline_ra") - 1;
	struct hd_frame a[4], b[4];
	HD_ASSERT(hd_sym_resolve(s, pc, a, 4) == 2);
	HD_ASSERT(hd_sym_space_update(s, c.pid) == 0); /* nothing changed */
	HD_ASSERT(hd_sym_resolve(s, pc, b, 4) == 2);
	HD_EXPECT(memcmp(a, b, 2 * sizeof(a[0])) == 0);
	child_kill(&c);
	hd_sym_space_free(s);
}

struct updater {
	struct hd_sym_space *s;
	pid_t pid;
	int failures;
};

static void *update_loop(void *arg)
{
	struct updater *u = arg;
	for (int i = 0; i < 200; i++)
		if (hd_sym_space_update(u->s, u->pid) != 0)
			u->failures++;
	return NULL;
}

HD_TEST(update_while_resolving)
{
	struct child c;
	child_start(&c, PROG, LIB);
	struct hd_sym_space *s = space_of(&c);
	struct updater u = {s, c.pid, 0};
	pthread_t t;
	HD_ASSERT(pthread_create(&t, NULL, update_loop, &u) == 0);
	uint64_t pcs[2] = {child_addr(&c, "inline_ra") - 1,
			   child_addr(&c, "lib_ra") - 1};
	int bad = 0;
	for (int i = 0; i < 400; i++) {
		struct hd_frame f[4];
		int n = hd_sym_resolve(s, pcs[i & 1], f, 4);
		const char *want = i & 1 ? "symlib_work" : "helper";
		if (n < 1 || strcmp(f[0].func, want) != 0)
			bad++;
	}
	pthread_join(t, NULL);
	HD_EXPECT_EQ(bad, 0);
	HD_EXPECT_EQ(u.failures, 0);
	child_kill(&c);
	hd_sym_space_free(s);
}

int main(void)
{
	return hd_test_main();
}
