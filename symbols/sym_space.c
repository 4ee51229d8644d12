/* symbols/: the symbol space -- modules seen in /proc/PID/maps, interned
 * strings, the pc cache and the source file cache. */
#include "sym_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MOD "sym"

/* ---- string interning ------------------------------------------------ */

static uint64_t hash_str(const char *str)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *str; str++)
		h = (h ^ (unsigned char)*str) * 1099511628211ull;
	return h;
}

static int strings_grow(struct hd_sym_space *s)
{
	size_t cap = s->capstrings ? s->capstrings * 2 : 256;
	char **tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -HD_ENOMEM;
	for (size_t i = 0; i < s->capstrings; i++) {
		char *str = s->strings[i];
		if (!str)
			continue;
		size_t j = hash_str(str) & (cap - 1);
		while (tab[j])
			j = (j + 1) & (cap - 1);
		tab[j] = str;
	}
	free(s->strings);
	s->strings = tab;
	s->capstrings = cap;
	return 0;
}

/* Returns a copy of `str` that lives as long as the space, the same
 * pointer for equal strings; NULL only when out of memory. */
const char *hd_sym_intern(struct hd_sym_space *s, const char *str)
{
	if (!str)
		return NULL;
	if ((s->nstrings + 1) * 2 > s->capstrings && strings_grow(s) < 0)
		return NULL;
	size_t j = hash_str(str) & (s->capstrings - 1);
	while (s->strings[j]) {
		if (strcmp(s->strings[j], str) == 0)
			return s->strings[j];
		j = (j + 1) & (s->capstrings - 1);
	}
	char *copy = strdup(str);
	if (!copy)
		return NULL;
	s->strings[j] = copy;
	s->nstrings++;
	return copy;
}

const char *hd_sym_intern_fmt(struct hd_sym_space *s, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return hd_sym_intern(s, buf);
}

/* ---- life cycle ------------------------------------------------------ */

struct hd_sym_space *hd_sym_space_new(void)
{
	/* libelf refuses to work before its version is set; doing it here
	 * keeps every later call free of that check. */
	if (elf_version(EV_CURRENT) == EV_NONE)
		return NULL;
	struct hd_sym_space *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (pthread_mutex_init(&s->maps_lock, NULL) != 0) {
		free(s);
		return NULL;
	}
	if (pthread_mutex_init(&s->sym_lock, NULL) != 0) {
		pthread_mutex_destroy(&s->maps_lock);
		free(s);
		return NULL;
	}
	s->callbacks.find_elf = dwfl_build_id_find_elf;
	s->callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
	s->callbacks.section_address = dwfl_offline_section_address;
	s->callbacks.debuginfo_path = &s->debuginfo_path;
	return s;
}

void hd_sym_space_free(struct hd_sym_space *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nmodules; i++)
		hd_sym_module_free(s->modules[i]);
	free(s->modules);
	for (size_t i = 0; i < s->nsources; i++) {
		free(s->sources[i].text);
		free(s->sources[i].lines);
	}
	free(s->sources);
	for (size_t i = 0; i < s->capstrings; i++)
		free(s->strings[i]);
	free(s->strings);
	free(s->pcs);
	free(s->frames);
	free(s->debuginfo_path);
	pthread_mutex_destroy(&s->sym_lock);
	pthread_mutex_destroy(&s->maps_lock);
	free(s);
}

int hd_sym_set_debuginfo_path(struct hd_sym_space *s, const char *path)
{
	char *copy = NULL;
	if (path && !(copy = strdup(path)))
		return -HD_ENOMEM;
	pthread_mutex_lock(&s->sym_lock);
	/* Modules already loaded keep what they found; the path applies to
	 * modules loaded from now on (the Dwfl callbacks read it then). */
	free(s->debuginfo_path);
	s->debuginfo_path = copy;
	pthread_mutex_unlock(&s->sym_lock);
	return 0;
}

void hd_sym_cache_flush(struct hd_sym_space *s)
{
	if (s->pcs)
		memset(s->pcs, 0, s->cappcs * sizeof(*s->pcs));
	s->npcs = 0;
	s->nframes = 0;
}

/* ---- modules ---------------------------------------------------------- */

static struct hd_sym_module *module_find(struct hd_sym_space *s,
					 const char *path, uint64_t start)
{
	for (size_t i = 0; i < s->nmodules; i++) {
		struct hd_sym_module *m = s->modules[i];
		if (m->start == start && strcmp(m->path, path) == 0)
			return m;
	}
	return NULL;
}

/* Inserts keeping the array sorted by start address. */
static int module_insert(struct hd_sym_space *s, const char *path,
			 const char *open_path, uint64_t start, uint64_t end,
			 uint64_t offset)
{
	if (s->nmodules == s->capmodules) {
		size_t cap = s->capmodules ? s->capmodules * 2 : 32;
		void *p = realloc(s->modules, cap * sizeof(*s->modules));
		if (!p)
			return -HD_ENOMEM;
		s->modules = p;
		s->capmodules = cap;
	}
	struct hd_sym_module *m = calloc(1, sizeof(*m));
	if (!m)
		return -HD_ENOMEM;
	m->path = strdup(path);
	m->open_path = strdup(open_path);
	if (!m->path || !m->open_path) {
		hd_sym_module_free(m);
		return -HD_ENOMEM;
	}
	m->start = start;
	m->end = end;
	m->offset = offset;
	m->seq = s->next_seq++;
	m->mapped = 1;

	size_t i = s->nmodules;
	while (i > 0 && s->modules[i - 1]->start > start)
		i--;
	memmove(&s->modules[i + 1], &s->modules[i],
		(s->nmodules - i) * sizeof(*s->modules));
	s->modules[i] = m;
	s->nmodules++;
	HD_DEBUG(MOD, "module %s [%#" PRIx64 ", %#" PRIx64 ") offset %#" PRIx64
		 " from %s", path, start, end, offset, open_path);
	return 0;
}

int hd_sym_space_add(struct hd_sym_space *s, const char *path,
		     uint64_t start, uint64_t end, uint64_t offset)
{
	if (!path || !*path || start >= end)
		return -HD_EINVAL;
	if (access(path, R_OK) != 0)
		return errno == EACCES ? -HD_EPERM : -HD_ENOTFOUND;
	pthread_mutex_lock(&s->maps_lock);
	int err = 0;
	struct hd_sym_module *m = module_find(s, path, start);
	if (!m)
		err = module_insert(s, path, path, start, end, offset);
	if (!m || !m->mapped)
		s->gen++;
	if (m)
		m->mapped = 1;
	pthread_mutex_unlock(&s->maps_lock);
	return err;
}

/* One executable file mapping of /proc/PID/maps. */
struct map_entry {
	uint64_t start, end, offset;
	char *path;
};

static void map_entries_free(struct map_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

static int errno_to_err(int e)
{
	switch (e) {
	case ENOENT:
	case ESRCH:
		return -HD_ENOPROC;
	case EACCES:
	case EPERM:
		return -HD_EPERM;
	case ENOMEM:
		return -HD_ENOMEM;
	default:
		return -HD_EIO;
	}
}

/* Parses one maps line; returns 1 for an executable file mapping worth a
 * module, 0 for anything else (anonymous, [vdso], [vsyscall], data). */
static int parse_maps_line(char *line, struct map_entry *e)
{
	uint64_t inode;
	char perms[5];
	int n = 0;
	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %4s %" SCNx64 " %*x:%*x %"
		   SCNu64 " %n", &e->start, &e->end, perms, &e->offset, &inode,
		   &n) < 5 || n == 0)
		return 0;
	if (strlen(perms) < 3 || perms[2] != 'x' || inode == 0)
		return 0;
	char *path = line + n;
	path[strcspn(path, "\n")] = '\0';
	/* "[vdso]" and friends have no file behind them; the vdso's symbols
	 * would need reading the tracee's memory, and allocations never
	 * start there. */
	if (path[0] != '/')
		return 0;
	e->path = path;
	return 1;
}

static int read_maps(pid_t pid, struct map_entry **out, size_t *nout)
{
	char name[64];
	snprintf(name, sizeof(name), "/proc/%d/maps", (int)pid);
	FILE *f = fopen(name, "re");
	if (!f)
		return errno_to_err(errno);
	struct map_entry *v = NULL;
	size_t n = 0, cap = 0;
	char *line = NULL;
	size_t linecap = 0;
	int err = 0;
	while (getline(&line, &linecap, f) > 0) {
		struct map_entry e;
		if (!parse_maps_line(line, &e))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			void *p = realloc(v, cap * sizeof(*v));
			if (!p) {
				err = -HD_ENOMEM;
				break;
			}
			v = p;
		}
		e.path = strdup(e.path);
		if (!e.path) {
			err = -HD_ENOMEM;
			break;
		}
		v[n++] = e;
	}
	/* A process that exits while we read leaves an empty or short file,
	 * not an error; an empty result for a live process cannot happen. */
	if (!err && ferror(f))
		err = errno_to_err(errno);
	if (!err && n == 0)
		err = -HD_EGONE;
	free(line);
	fclose(f);
	if (err) {
		map_entries_free(v, n);
		return err;
	}
	*out = v;
	*nout = n;
	return 0;
}

/* Whether the process sees the same root directory as we do; if not (a
 * container), its files are reached through /proc/PID/root. */
static bool same_root(pid_t pid)
{
	char name[64];
	struct stat a, b;
	snprintf(name, sizeof(name), "/proc/%d/root", (int)pid);
	if (stat(name, &a) != 0 || stat("/", &b) != 0)
		return true;
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static const char deleted_suffix[] = " (deleted)";

/* Where to open the file of a mapping from. */
static void open_path_of(pid_t pid, const struct map_entry *e, bool here,
			 char *buf, size_t size)
{
	size_t len = strlen(e->path), slen = sizeof(deleted_suffix) - 1;
	if (len > slen && strcmp(e->path + len - slen, deleted_suffix) == 0) {
		/* The file is gone from every directory; the kernel still
		 * hands out the mapped file itself. */
		snprintf(buf, size, "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
			 (int)pid, e->start, e->end);
	} else if (here) {
		snprintf(buf, size, "%s", e->path);
	} else {
		snprintf(buf, size, "/proc/%d/root%s", (int)pid, e->path);
	}
}

int hd_sym_space_update(struct hd_sym_space *s, pid_t pid)
{
	struct map_entry *v = NULL;
	size_t n = 0;
	int err = read_maps(pid, &v, &n);
	if (err)
		return err;
	bool here = same_root(pid);

	pthread_mutex_lock(&s->maps_lock);
	bool changed = false;
	int *was = calloc(s->nmodules + 1, sizeof(*was));
	if (!was) {
		err = -HD_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->nmodules; i++) {
		was[i] = s->modules[i]->mapped;
		s->modules[i]->mapped = 0;
	}
	size_t nold = s->nmodules;
	for (size_t i = 0; i < n && !err; i++) {
		struct hd_sym_module *m = module_find(s, v[i].path, v[i].start);
		if (m) {
			m->mapped = 1;
			continue;
		}
		char open_path[4096 + 64];
		open_path_of(pid, &v[i], here, open_path, sizeof(open_path));
		err = module_insert(s, v[i].path, open_path, v[i].start,
				    v[i].end, v[i].offset);
		changed = true;
	}
	/* Insertion reorders the array; compare flags by identity only when
	 * nothing was inserted. */
	for (size_t i = 0; i < nold && !changed; i++)
		changed = was[i] != s->modules[i]->mapped;
	free(was);
	if (changed)
		s->gen++;
out:
	pthread_mutex_unlock(&s->maps_lock);
	map_entries_free(v, n);
	return err;
}

/* ---- resolving -------------------------------------------------------- */

#define HD_SYM_MAX_FRAMES 64

static uint64_t hash_pc(uint64_t pc)
{
	pc ^= pc >> 33;
	pc *= 0xff51afd7ed558ccdull;
	pc ^= pc >> 33;
	return pc;
}

static struct hd_sym_pc_entry *pc_lookup(struct hd_sym_space *s, uint64_t pc)
{
	if (!s->cappcs)
		return NULL;
	size_t j = hash_pc(pc) & (s->cappcs - 1);
	while (s->pcs[j].used) {
		if (s->pcs[j].pc == pc)
			return &s->pcs[j];
		j = (j + 1) & (s->cappcs - 1);
	}
	return NULL;
}

static int pcs_grow(struct hd_sym_space *s)
{
	size_t cap = s->cappcs ? s->cappcs * 2 : 1024;
	struct hd_sym_pc_entry *tab = calloc(cap, sizeof(*tab));
	if (!tab)
		return -HD_ENOMEM;
	for (size_t i = 0; i < s->cappcs; i++) {
		if (!s->pcs[i].used)
			continue;
		size_t j = hash_pc(s->pcs[i].pc) & (cap - 1);
		while (tab[j].used)
			j = (j + 1) & (cap - 1);
		tab[j] = s->pcs[i];
	}
	free(s->pcs);
	s->pcs = tab;
	s->cappcs = cap;
	return 0;
}

/* Remembers the frames of `pc`; failing to is harmless (next time they
 * are computed again). */
static void pc_store(struct hd_sym_space *s, uint64_t pc,
		     const struct hd_frame *frames, int n)
{
	if ((s->npcs + 1) * 2 > s->cappcs && pcs_grow(s) < 0)
		return;
	if (s->nframes + (size_t)n > s->capframes) {
		size_t cap = s->capframes ? s->capframes * 2 : 4096;
		while (cap < s->nframes + (size_t)n)
			cap *= 2;
		void *p = realloc(s->frames, cap * sizeof(*s->frames));
		if (!p)
			return;
		s->frames = p;
		s->capframes = cap;
	}
	size_t j = hash_pc(pc) & (s->cappcs - 1);
	while (s->pcs[j].used)
		j = (j + 1) & (s->cappcs - 1);
	s->pcs[j] = (struct hd_sym_pc_entry){
		.pc = pc, .first = (uint32_t)s->nframes,
		.count = (uint32_t)n, .used = 1};
	memcpy(&s->frames[s->nframes], frames, (size_t)n * sizeof(*frames));
	s->nframes += (size_t)n;
	s->npcs++;
}

int hd_sym_resolve(struct hd_sym_space *s, uint64_t pc,
		   struct hd_frame *frames, int max)
{
	if (max <= 0)
		return 0;
	pthread_mutex_lock(&s->sym_lock);
	pthread_mutex_lock(&s->maps_lock);
	uint64_t gen = s->gen;
	struct hd_sym_module *m = hd_sym_module_at(s, pc);
	pthread_mutex_unlock(&s->maps_lock);
	/* An update since the cache was filled may have put another module
	 * under a cached pc.  (A result computed just before an update is
	 * stored under the old gen and flushed next time.) */
	if (gen != s->cache_gen) {
		hd_sym_cache_flush(s);
		s->cache_gen = gen;
	}
	struct hd_sym_pc_entry *e = pc_lookup(s, pc);
	int n;
	if (e) {
		n = (int)e->count < max ? (int)e->count : max;
		memcpy(frames, &s->frames[e->first],
		       (size_t)n * sizeof(*frames));
	} else {
		struct hd_frame all[HD_SYM_MAX_FRAMES];
		int total = hd_sym_resolve_locked(s, m, pc, all,
						  HD_SYM_MAX_FRAMES);
		pc_store(s, pc, all, total);
		n = total < max ? total : max;
		memcpy(frames, all, (size_t)n * sizeof(*frames));
	}
	pthread_mutex_unlock(&s->sym_lock);
	return n;
}

/* ---- listing ---------------------------------------------------------- */

void hd_sym_modules(struct hd_sym_space *s, int details,
		    void (*fn)(void *ctx, const struct hd_sym_module_info *),
		    void *ctx)
{
	pthread_mutex_lock(&s->sym_lock);
	pthread_mutex_lock(&s->maps_lock);
	size_t n = s->nmodules;
	struct hd_sym_module_info *infos = calloc(n + 1, sizeof(*infos));
	struct hd_sym_module **mods = calloc(n + 1, sizeof(*mods));
	for (size_t i = 0; infos && mods && i < n; i++) {
		struct hd_sym_module *m = s->modules[i];
		mods[i] = m;
		infos[i] = (struct hd_sym_module_info){
			.path = m->path, .start = m->start, .end = m->end,
			.loaded = m->mapped};
	}
	pthread_mutex_unlock(&s->maps_lock);
	for (size_t i = 0; infos && mods && i < n; i++) {
		if (details)
			hd_sym_module_details(s, mods[i]);
		infos[i].has_symbols = mods[i]->has_symbols;
		infos[i].has_lines = mods[i]->has_lines;
		infos[i].build_id = mods[i]->build_id;
	}
	pthread_mutex_unlock(&s->sym_lock);
	if (!mods)
		n = 0;
	free(mods);
	/* Called unlocked so that fn may use the space; the strings it sees
	 * are interned and outlive this call. */
	for (size_t i = 0; infos && i < n; i++)
		fn(ctx, &infos[i]);
	free(infos);
}

/* ---- source files ------------------------------------------------------ */

static int source_read(struct hd_sym_source *src)
{
	int fd = open(src->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -HD_ENOTFOUND;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return -HD_EIO;
	}
	size_t size = (size_t)st.st_size;
	char *text = malloc(size + 1);
	size_t got = 0;
	while (text && got < size) {
		ssize_t r = read(fd, text + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (!text)
		return -HD_ENOMEM;
	text[got] = '\0';

	size_t nlines = 0;
	for (size_t i = 0; i < got; i++)
		nlines += text[i] == '\n';
	char **lines = malloc((nlines + 1) * sizeof(*lines));
	if (!lines) {
		free(text);
		return -HD_ENOMEM;
	}
	size_t k = 0;
	char *p = text;
	while (*p) {
		char *nl = strchr(p, '\n');
		lines[k++] = p;
		if (!nl)
			break;
		*nl = '\0';
		if (nl > p && nl[-1] == '\r')
			nl[-1] = '\0';
		p = nl + 1;
	}
	src->text = text;
	src->lines = lines;
	src->nlines = k;
	return 0;
}

static struct hd_sym_source *source_get(struct hd_sym_space *s,
					const char *file)
{
	const char *path = hd_sym_intern(s, file);
	if (!path)
		return NULL;
	for (size_t i = 0; i < s->nsources; i++)
		if (s->sources[i].path == path)
			return &s->sources[i];
	if (s->nsources == s->capsources) {
		size_t cap = s->capsources ? s->capsources * 2 : 16;
		void *p = realloc(s->sources, cap * sizeof(*s->sources));
		if (!p)
			return NULL;
		s->sources = p;
		s->capsources = cap;
	}
	struct hd_sym_source *src = &s->sources[s->nsources++];
	*src = (struct hd_sym_source){.path = path};
	/* A missing file is remembered as such: `list` asks line by line. */
	if (source_read(src) < 0)
		HD_DEBUG(MOD, "cannot read source %s", path);
	return src;
}

const char *hd_sym_source_line(struct hd_sym_space *s, const char *file,
			       int line)
{
	if (!file || line < 1)
		return NULL;
	pthread_mutex_lock(&s->sym_lock);
	struct hd_sym_source *src = source_get(s, file);
	const char *text = NULL;
	if (src && src->text && (size_t)line <= src->nlines)
		text = src->lines[line - 1];
	pthread_mutex_unlock(&s->sym_lock);
	return text;
}
