/* profile/pprof: a snapshot as a gzipped profile.proto, or as folded
 * stacks.
 *
 * The profile is built as protobuf-c messages (code generated from
 * profile.proto at build time), packed in one buffer, gzipped with zlib
 * and written in one go, so a failed export never leaves half a message
 * behind a valid gzip header.
 *
 * Addresses: every pc of a stack is a return address (profile.h).  Names
 * come from pc - 1, which lies inside the call instruction, and that is
 * also the address written: Go's runtime/pprof writes the same (its
 * runtime.Frame.PC is the return address minus one) and pprof's parsers
 * of legacy profiles subtract one from return addresses for the same
 * reason, so a tool that re-symbolizes or disassembles the address lands
 * on the call line, as the Lines written here do.
 */
#include "export.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile pb_profile;
typedef Perftools__Profiles__ValueType pb_value_type;
typedef Perftools__Profiles__Sample pb_sample;
typedef Perftools__Profiles__Mapping pb_mapping;
typedef Perftools__Profiles__Location pb_location;
typedef Perftools__Profiles__Line pb_line;
typedef Perftools__Profiles__Function pb_function;

/* Deepest inlining chain resolved at one pc. */
#define EX_MAX_INLINE 32

/* ------------------------------------------------------------------ */
/* Allocator frames (shared with cli/report.c)                         */
/* ------------------------------------------------------------------ */

/* pprof's allocRxStr, in its order, then the libstdc++ allocator layers
 * (std::allocator<T>::allocate and the new_allocator under it), which
 * pprof's list names only without template arguments, and the entry
 * points of heapdbg that pprof's list predates. */
const char hd_export_drop_frames[] =
	"calloc|cfree|malloc|free|memalign|do_memalign|(__)?posix_memalign|"
	"pvalloc|valloc|realloc|"
	"tcmalloc::.*|tc_calloc|tc_cfree|tc_malloc|tc_free|tc_memalign|"
	"tc_posix_memalign|tc_pvalloc|tc_valloc|tc_realloc|tc_new|tc_delete|"
	"tc_newarray|tc_deletearray|tc_new_nothrow|tc_newarray_nothrow|"
	"malloc_zone_malloc|malloc_zone_calloc|malloc_zone_valloc|"
	"malloc_zone_realloc|malloc_zone_memalign|malloc_zone_free|"
	"runtime\\..*|"
	"BaseArena::.*|(::)?do_malloc_no_errno|(::)?do_malloc_pages|"
	"(::)?do_malloc|DoSampledAllocation|"
	"MallocedMemBlock::MallocedMemBlock|_M_allocate|"
	"__builtin_(vec_)?delete|__builtin_(vec_)?new|"
	"__gnu_cxx::new_allocator::allocate|__libc_malloc|"
	"__malloc_alloc_template::allocate|allocate|cpp_alloc|"
	"operator new(\\[\\])?|simple_alloc::allocate|"
	"std::allocator<.*>::allocate|std::allocator_traits<.*>::allocate|"
	"(std|__gnu_cxx)::(__)?new_allocator<.*>::allocate|"
	"aligned_alloc|reallocarray";

/* pprof's allocSkipRxStr: Go runtime frames kept mid-stack. */
const char hd_export_keep_frames[] =
	"runtime\\.panic|runtime\\.reflectcall|runtime\\.call[0-9]*";

static regex_t drop_rx, keep_rx;
static int rx_err = -1;
static pthread_once_t rx_once = PTHREAD_ONCE_INIT;

/* pprof anchors each list as "^(" + list + ")$". */
static int compile_anchored(regex_t *rx, const char *list)
{
	size_t len = strlen(list) + 5;
	char *text = malloc(len);
	if (!text)
		return REG_ESPACE;
	snprintf(text, len, "^(%s)$", list);
	int rc = regcomp(rx, text, REG_EXTENDED | REG_NOSUB);
	free(text);
	return rc;
}

static void rx_init(void)
{
	rx_err = compile_anchored(&drop_rx, hd_export_drop_frames);
	if (rx_err == 0) {
		rx_err = compile_anchored(&keep_rx, hd_export_keep_frames);
		if (rx_err != 0)
			regfree(&drop_rx);
	}
}

static int rx_ready(void)
{
	pthread_once(&rx_once, rx_init);
	if (rx_err == 0)
		return 0;
	return rx_err == REG_ESPACE ? -HD_ENOMEM : -HD_EINTERNAL;
}

/* pprof's simplifyFunc: drop a leading '.', and cut the name at the first
 * '(' that does not belong to "(anonymous namespace)" or "operator()".
 * Returns the length of the simplified name starting at *name. */
static size_t simplify_func(const char **name)
{
	static const char *const reserved[] = {"(anonymous namespace)",
					       "operator()"};
	const char *s = *name;

	if (*s == '.')
		s++;
	*name = s;
	for (size_t i = 0; s[i];) {
		size_t skip = 0;
		for (size_t r = 0; r < HD_ARRAY_SIZE(reserved); r++) {
			size_t len = strlen(reserved[r]);
			if (strncmp(s + i, reserved[r], len) == 0) {
				skip = len;
				break;
			}
		}
		if (skip) {
			i += skip;
			continue;
		}
		if (s[i] == '(')
			return i;
		i++;
	}
	return strlen(s);
}

int hd_export_alloc_frame(const char *func)
{
	int rc = rx_ready();
	if (rc)
		return rc;
	if (!func || !*func)
		return 0;
	const char *name = func;
	size_t len = simplify_func(&name);
	char buf[512];
	char *copy = len < sizeof(buf) ? buf : malloc(len + 1);
	if (!copy)
		return -HD_ENOMEM;
	memcpy(copy, name, len);
	copy[len] = 0;
	rc = regexec(&drop_rx, copy, 0, NULL, 0) == 0 &&
	     regexec(&keep_rx, copy, 0, NULL, 0) != 0;
	if (copy != buf)
		free(copy);
	return rc;
}

/* Mirrors Profile.Prune: per location, the outermost allocator line
 * decides; a location whose outermost line matches is dropped whole
 * ("prune"), one with a match further in keeps only the lines outside
 * the match ("prune beneath").  Then each stack is cut, from the root,
 * at the first such location found below a location of user code. */
int hd_export_prune(const struct hd_frame *frames, const int *loc, int n,
		    unsigned char *keep)
{
	for (int i = 0; i < n; i++)
		keep[i] = 1;

	bool found_user = false;
	/* Locations from the root (outermost) in: [b, e) per location. */
	for (int e = n; e > 0;) {
		int b = e - 1;
		while (b > 0 && loc[b - 1] == loc[e - 1])
			b--;
		int m = e - 1;
		for (; m >= b; m--) {
			int rc = hd_export_alloc_frame(frames[m].func);
			if (rc < 0)
				return rc;
			if (rc)
				break;
		}
		bool prune_whole = m == e - 1, prune_beneath = m >= b;

		/* A partial match trims the location's lines wherever it
		 * appears, as pprof edits the Location itself. */
		if (prune_beneath && !prune_whole)
			for (int i = b; i <= m; i++)
				keep[i] = 0;
		if (!prune_beneath) {
			found_user = true;
		} else if (found_user) {
			int cut = prune_whole ? e : b;
			for (int i = 0; i < cut; i++)
				keep[i] = 0;
			break;
		}
		e = b;
	}

	int kept = 0;
	for (int i = 0; i < n; i++)
		kept += keep[i];
	return kept;
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static int grow(void *pv, size_t *cap, size_t need, size_t size)
{
	void **p = pv;
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(*p, ncap * size);
	if (!np)
		return -HD_ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static uint64_t hash_bytes(const void *data, size_t len, uint64_t h)
{
	/* FNV-1a: keys are short; quality over speed does not matter. */
	const unsigned char *p = data;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* Open-addressing map from a 3-word key to a non-zero value; the caller
 * hashes and compares through the key words alone. */
struct map_slot {
	uint64_t k[3];
	uint64_t v; /* 0 = empty */
};

struct map {
	struct map_slot *slots;
	size_t cap, n; /* cap a power of two */
};

static uint64_t map_hash(const uint64_t k[3])
{
	return hash_u64(k[0] ^ hash_u64(k[1] ^ hash_u64(k[2])));
}

static struct map_slot *map_find(const struct map *m, const uint64_t k[3])
{
	if (!m->cap)
		return NULL;
	for (size_t i = map_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct map_slot *s = &m->slots[i];
		if (!s->v || memcmp(s->k, k, sizeof(s->k)) == 0)
			return s;
	}
}

static int map_put(struct map *m, const uint64_t k[3], uint64_t v)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct map_slot *ns = calloc(ncap, sizeof(*ns));
		if (!ns)
			return -HD_ENOMEM;
		struct map old = *m;
		m->slots = ns;
		m->cap = ncap;
		for (size_t i = 0; i < old.cap; i++)
			if (old.slots[i].v)
				*map_find(m, old.slots[i].k) = old.slots[i];
		free(old.slots);
	}
	struct map_slot *s = map_find(m, k);
	if (!s->v)
		m->n++;
	memcpy(s->k, k, sizeof(s->k));
	s->v = v;
	return 0;
}

static int set_err(char *err, size_t errlen, int rc, const char *path)
{
	if (!err || !errlen)
		return rc;
	if (rc == -HD_EIO)
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	else
		snprintf(err, errlen, "%s", hd_strerror(rc));
	return rc;
}

/* Write `len` bytes to `path`; on failure errno says why.  A regular
 * file left half-written is removed (never anything else: the path may
 * be a device or a pipe). */
static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -HD_EIO;
	struct stat st;
	bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
	int rc = 0;
	if (len && fwrite(buf, 1, len, f) != len)
		rc = -HD_EIO;
	int saved = errno;
	if (fclose(f) != 0 && rc == 0) {
		rc = -HD_EIO;
		saved = errno;
	}
	if (rc) {
		if (regular)
			unlink(path);
		errno = saved;
	}
	return rc;
}

static int64_t round_value(double v)
{
	/* Nearest integer: the file carries integers (as Go's does); sums
	 * of nearest-rounded estimates stay closest to the estimate. */
	if (!isfinite(v))
		return 0;
	if (v >= 9.2e18)
		return INT64_MAX;
	if (v <= -9.2e18)
		return INT64_MIN;
	return llround(v);
}

/* Frames of one pc (a return address: resolved at pc - 1).  Returns the
 * number of frames, 0 if the resolver knows nothing. */
static int resolve_pc(const struct hd_export_src *src, uint64_t pc,
		      struct hd_frame *frames)
{
	if (!src || !src->resolve || pc == 0)
		return 0;
	int n = src->resolve(src->ctx, pc - 1, frames, EX_MAX_INLINE);
	return n < 0 ? 0 : n > EX_MAX_INLINE ? EX_MAX_INLINE : n;
}

/* ------------------------------------------------------------------ */
/* The profile under construction                                      */
/* ------------------------------------------------------------------ */

struct ex {
	const struct hd_export_src *src;

	char **strs;
	size_t nstrs, capstrs;
	struct map strmap; /* k = {hash, len, salt}; v = index + 1 */

	pb_mapping *maps;
	size_t nmaps, capmaps;

	pb_location *locs;
	pb_line **lines; /* per location: its Lines, innermost first */
	size_t nlocs, caplocs, caplines;
	struct map locmap; /* k = {pc, 0, 0}; v = location id */

	pb_function *funcs;
	size_t nfuncs, capfuncs;
	struct map funcmap; /* k = {name, system_name, filename}; v = id */

	pb_sample *samples;
	size_t nsamples, capsamples;

	int nomem; /* set by callbacks that cannot return an error */
};

/* Interned string index, or -1 (out of memory).  Strings are copied, so
 * names made here and names lent by the resolver are owned alike. */
static int64_t ex_str(struct ex *x, const char *s)
{
	if (!s)
		s = "";
	size_t len = strlen(s);
	uint64_t h = hash_bytes(s, len, 0xcbf29ce484222325ull);
	/* Equal hashes of different strings take the next "salt" slot. */
	for (uint64_t salt = 0;; salt++) {
		uint64_t k[3] = {h, len, salt};
		struct map_slot *slot = map_find(&x->strmap, k);
		if (slot && slot->v) {
			if (strcmp(x->strs[slot->v - 1], s) == 0)
				return (int64_t)(slot->v - 1);
			continue;
		}
		if (grow(&x->strs, &x->capstrs, x->nstrs + 1, sizeof(char *)))
			return -1;
		char *copy = strdup(s);
		if (!copy)
			return -1;
		if (map_put(&x->strmap, k, x->nstrs + 1)) {
			free(copy);
			return -1;
		}
		x->strs[x->nstrs] = copy;
		return (int64_t)x->nstrs++;
	}
}

static void ex_add_module(void *ctx, const struct hd_sym_module_info *mi)
{
	struct ex *x = ctx;
	if (grow(&x->maps, &x->capmaps, x->nmaps + 1, sizeof(*x->maps))) {
		x->nomem = 1;
		return;
	}
	pb_mapping *m = &x->maps[x->nmaps];
	perftools__profiles__mapping__init(m);
	m->memory_start = mi->start;
	m->memory_limit = mi->end;
	/* pprof maps addresses to the file with it (disassembly, and
	 * symbolization of mappings without symbols). */
	m->file_offset = mi->offset;
	int64_t file = ex_str(x, mi->path), bid = ex_str(x, mi->build_id);
	if (file < 0 || bid < 0) {
		x->nomem = 1;
		return;
	}
	m->filename = file;
	m->build_id = bid;
	/* Whether the module could tell: refined by the frames written. */
	m->has_functions = mi->has_symbols;
	m->has_filenames = m->has_line_numbers = m->has_inline_frames =
		mi->has_lines;
	x->nmaps++;
}

static int map_by_start(const void *a, const void *b)
{
	const pb_mapping *x = a, *y = b;
	return x->memory_start < y->memory_start ? -1
	       : x->memory_start > y->memory_start ? 1
						   : 0;
}

static int ex_modules(struct ex *x)
{
	if (!x->src || !x->src->modules)
		return 0;
	x->src->modules(x->src->ctx, ex_add_module, x);
	if (x->nomem)
		return -HD_ENOMEM;
	qsort(x->maps, x->nmaps, sizeof(*x->maps), map_by_start);
	for (size_t i = 0; i < x->nmaps; i++)
		x->maps[i].id = i + 1;
	return 0;
}

/* Mapping of a code address, or NULL.  The module the resolver named
 * decides when there is one: a module unloaded and another loaded later
 * may have used the same addresses. */
static pb_mapping *ex_mapping_of(struct ex *x, uint64_t addr,
				 const struct hd_frame *f)
{
	if (f && f->module) {
		/* Mappings are sorted by start: the first at module_start. */
		size_t lo = 0, hi = x->nmaps;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (x->maps[mid].memory_start < f->module_start)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < x->nmaps &&
		       x->maps[lo].memory_start == f->module_start;
		     lo++) {
			pb_mapping *m = &x->maps[lo];
			if (m->memory_limit == f->module_end &&
			    strcmp(x->strs[m->filename], f->module) == 0)
				return m;
		}
	}
	/* Code the resolver could not place (rare): any module holding it. */
	for (size_t i = 0; i < x->nmaps; i++)
		if (x->maps[i].memory_start <= addr &&
		    addr < x->maps[i].memory_limit)
			return &x->maps[i];
	return NULL;
}

static int64_t ex_function(struct ex *x, const struct hd_frame *f)
{
	/* The resolver names unknown code by its address; be safe anyway. */
	const char *name = f->func ? f->func : "[unknown]";
	int64_t n = ex_str(x, name);
	int64_t sys = ex_str(x, f->mangled ? f->mangled : name);
	int64_t file = ex_str(x, f->file);
	if (n < 0 || sys < 0 || file < 0)
		return -1;
	uint64_t k[3] = {(uint64_t)n, (uint64_t)sys, (uint64_t)file};
	struct map_slot *slot = map_find(&x->funcmap, k);
	if (slot && slot->v)
		return (int64_t)slot->v;
	if (grow(&x->funcs, &x->capfuncs, x->nfuncs + 1, sizeof(*x->funcs)))
		return -1;
	pb_function *fn = &x->funcs[x->nfuncs];
	perftools__profiles__function__init(fn);
	fn->id = x->nfuncs + 1;
	fn->name = n;
	fn->system_name = sys;
	fn->filename = file;
	fn->start_line = f->func_line;
	if (map_put(&x->funcmap, k, fn->id))
		return -1;
	x->nfuncs++;
	return (int64_t)fn->id;
}

/* Records in the location's mapping what its frames carry. */
static void ex_note_symbols(pb_mapping *m, const struct hd_frame *frames,
			    int n)
{
	if (!m)
		return;
	for (int i = 0; i < n; i++) {
		if (frames[i].mangled)
			m->has_functions = 1;
		if (frames[i].file)
			m->has_filenames = 1;
		if (frames[i].line > 0)
			m->has_line_numbers = 1;
		if (frames[i].inlined)
			m->has_inline_frames = 1;
	}
}

/* Location id of return address `pc`, made on first use. */
static int64_t ex_location(struct ex *x, uint64_t pc)
{
	uint64_t k[3] = {pc, 0, 0};
	struct map_slot *slot = map_find(&x->locmap, k);
	if (slot && slot->v)
		return (int64_t)slot->v;

	struct hd_frame frames[EX_MAX_INLINE];
	int n = resolve_pc(x->src, pc, frames);
	pb_line *lines = NULL;
	if (n > 0) {
		lines = calloc((size_t)n, sizeof(*lines));
		if (!lines)
			return -1;
	}
	for (int i = 0; i < n; i++) {
		/* Line[0] is the innermost inlined function, as resolved. */
		perftools__profiles__line__init(&lines[i]);
		int64_t fid = ex_function(x, &frames[i]);
		if (fid < 0) {
			free(lines);
			return -1;
		}
		lines[i].function_id = (uint64_t)fid;
		lines[i].line = frames[i].line;
	}
	if (grow(&x->locs, &x->caplocs, x->nlocs + 1, sizeof(*x->locs)) ||
	    grow(&x->lines, &x->caplines, x->nlocs + 1, sizeof(*x->lines))) {
		free(lines);
		return -1;
	}
	pb_location *l = &x->locs[x->nlocs];
	perftools__profiles__location__init(l);
	l->id = x->nlocs + 1;
	l->address = pc ? pc - 1 : 0;
	pb_mapping *m = ex_mapping_of(x, l->address, n ? &frames[n - 1] : NULL);
	l->mapping_id = m ? m->id : 0;
	ex_note_symbols(m, frames, n);
	/* l->line (pointers) is filled in ex_pack(). */
	l->n_line = (size_t)n;
	x->lines[x->nlocs] = lines;
	x->nlocs++;
	if (map_put(&x->locmap, k, l->id))
		return -1;
	return (int64_t)l->id;
}

static int ex_sample(struct ex *x, const struct hd_snap_entry *e)
{
	int64_t v[4];
	bool any = false;
	for (int i = 0; i < 4; i++) {
		v[i] = round_value(hd_counts_value(&e->counts, i));
		any |= v[i] != 0;
	}
	if (!any)
		return 0;

	const struct hd_stack *st = e->stack;
	uint64_t *ids = calloc(st->depth ? st->depth : 1, sizeof(*ids));
	int64_t *vals = malloc(sizeof(v));
	if (!ids || !vals)
		goto nomem;
	memcpy(vals, v, sizeof(v));
	for (uint32_t d = 0; d < st->depth; d++) {
		int64_t id = ex_location(x, st->pcs[d]);
		if (id < 0)
			goto nomem;
		ids[d] = (uint64_t)id;
	}
	if (grow(&x->samples, &x->capsamples, x->nsamples + 1,
		 sizeof(*x->samples)))
		goto nomem;
	pb_sample *s = &x->samples[x->nsamples++];
	perftools__profiles__sample__init(s);
	s->n_location_id = st->depth;
	s->location_id = ids;
	s->n_value = 4;
	s->value = vals;
	return 0;
nomem:
	free(ids);
	free(vals);
	return -HD_ENOMEM;
}

static void ex_free(struct ex *x)
{
	for (size_t i = 0; i < x->nstrs; i++)
		free(x->strs[i]);
	free(x->strs);
	free(x->strmap.slots);
	free(x->maps);
	for (size_t i = 0; i < x->nlocs; i++)
		free(x->lines[i]);
	free(x->lines);
	free(x->locs);
	free(x->locmap.slots);
	free(x->funcs);
	free(x->funcmap.slots);
	for (size_t i = 0; i < x->nsamples; i++) {
		free(x->samples[i].location_id);
		free(x->samples[i].value);
	}
	free(x->samples);
}

/* ------------------------------------------------------------------ */
/* Packing and gzip                                                    */
/* ------------------------------------------------------------------ */

static void value_type(struct ex *x, pb_value_type *vt, const char *type,
		       const char *unit, int *fail)
{
	perftools__profiles__value_type__init(vt);
	int64_t t = ex_str(x, type), u = ex_str(x, unit);
	if (t < 0 || u < 0)
		*fail = 1;
	vt->type = t;
	vt->unit = u;
}

/* Epoch nanoseconds of start + offset.  Whole seconds are kept apart
 * because a double holding epoch nanoseconds is only exact to 256 ns. */
static int64_t time_nanos(double start, double offset)
{
	double whole = floor(start);
	return (int64_t)whole * 1000000000 +
	       llround((start - whole) * 1e9) + llround(offset * 1e9);
}

/* Pointer arrays for protobuf-c's repeated message fields. */
static void **ptrs(void *base, size_t n, size_t size)
{
	void **p = calloc(n ? n : 1, sizeof(*p));
	if (p)
		for (size_t i = 0; i < n; i++)
			p[i] = (char *)base + i * size;
	return p;
}

static int gzip_buf(const uint8_t *in, size_t len, uint8_t **out,
		    size_t *outlen)
{
	z_stream z = {0};
	/* windowBits 15 + 16: a gzip header and trailer, as pprof expects. */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK)
		return -HD_ENOMEM;
	size_t cap = deflateBound(&z, (uLong)len);
	uint8_t *buf = malloc(cap);
	if (!buf) {
		deflateEnd(&z);
		return -HD_ENOMEM;
	}
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	int zr = deflate(&z, Z_FINISH);
	*outlen = z.total_out;
	deflateEnd(&z);
	if (zr != Z_STREAM_END) {
		free(buf);
		return -HD_EINTERNAL;
	}
	*out = buf;
	return 0;
}

static int ex_pack(struct ex *x, const struct hd_snap *s, uint8_t **out,
		   size_t *outlen)
{
	pb_profile p;
	pb_value_type types[4], period;
	pb_value_type *type_ptrs[4] = {&types[0], &types[1], &types[2],
				       &types[3]};
	int fail = 0;

	perftools__profiles__profile__init(&p);
	value_type(x, &types[HD_ALLOC_OBJECTS], "alloc_objects", "count",
		   &fail);
	value_type(x, &types[HD_ALLOC_SPACE], "alloc_space", "bytes", &fail);
	value_type(x, &types[HD_INUSE_OBJECTS], "inuse_objects", "count",
		   &fail);
	value_type(x, &types[HD_INUSE_SPACE], "inuse_space", "bytes", &fail);
	value_type(x, &period, "space", "bytes", &fail);
	int64_t def = ex_str(x, "inuse_space");
	int64_t drop = ex_str(x, hd_export_drop_frames);
	int64_t keep = ex_str(x, hd_export_keep_frames);
	int64_t comment = -1;
	bool named = s->name && *s->name;
	if (named) {
		char buf[256];
		snprintf(buf, sizeof(buf), "heapdbg snapshot %s", s->name);
		comment = ex_str(x, buf);
	}
	if (fail || def < 0 || drop < 0 || keep < 0 || (named && comment < 0))
		return -HD_ENOMEM;

	p.n_sample_type = 4;
	p.sample_type = type_ptrs;
	p.period_type = &period;
	p.period = (int64_t)s->rate;
	p.default_sample_type = def;
	p.drop_frames = drop;
	p.keep_frames = keep;
	if (named) {
		p.n_comment = 1;
		p.comment = &comment;
	}
	p.time_nanos = time_nanos(x->src ? x->src->start_time : 0, s->time);
	p.duration_nanos = llround(s->time * 1e9);

	/* protobuf-c's repeated messages are arrays of pointers. */
	int rc = -HD_ENOMEM;
	void **sp = ptrs(x->samples, x->nsamples, sizeof(*x->samples));
	void **mp = ptrs(x->maps, x->nmaps, sizeof(*x->maps));
	void **lp = ptrs(x->locs, x->nlocs, sizeof(*x->locs));
	void **fp = ptrs(x->funcs, x->nfuncs, sizeof(*x->funcs));
	size_t done = 0;
	uint8_t *raw = NULL;
	if (!sp || !mp || !lp || !fp)
		goto out;
	for (; done < x->nlocs; done++) {
		pb_location *l = &x->locs[done];
		l->line = (pb_line **)ptrs(x->lines[done], l->n_line,
					   sizeof(pb_line));
		if (!l->line)
			goto out;
	}
	p.n_sample = x->nsamples;
	p.sample = (pb_sample **)sp;
	p.n_mapping = x->nmaps;
	p.mapping = (pb_mapping **)mp;
	p.n_location = x->nlocs;
	p.location = (pb_location **)lp;
	p.n_function = x->nfuncs;
	p.function = (pb_function **)fp;
	p.n_string_table = x->nstrs;
	p.string_table = x->strs;

	size_t len = perftools__profiles__profile__get_packed_size(&p);
	raw = malloc(len ? len : 1);
	if (!raw)
		goto out;
	perftools__profiles__profile__pack(&p, raw);
	rc = gzip_buf(raw, len, out, outlen);
out:
	for (size_t i = 0; i < done; i++) {
		free(x->locs[i].line);
		x->locs[i].line = NULL;
	}
	free(sp);
	free(mp);
	free(lp);
	free(fp);
	free(raw);
	return rc;
}

int hd_export_pprof(const char *path, const struct hd_snap *s,
		    const struct hd_export_src *src, char *err, size_t errlen)
{
	struct ex x = {.src = src};
	uint8_t *gz = NULL;
	size_t gzlen = 0;
	int rc;

	/* String 0 must be "". */
	if (ex_str(&x, "") != 0) {
		rc = -HD_ENOMEM;
		goto out;
	}
	rc = ex_modules(&x);
	for (size_t i = 0; rc == 0 && i < s->n; i++)
		rc = ex_sample(&x, &s->entries[i]);
	if (rc == 0)
		rc = ex_pack(&x, s, &gz, &gzlen);
	if (rc == 0)
		rc = write_file(path, gz, gzlen);
out:
	free(gz);
	ex_free(&x);
	return rc ? set_err(err, errlen, rc, path) : 0;
}

/* ------------------------------------------------------------------ */
/* Folded stacks                                                       */
/* ------------------------------------------------------------------ */

struct folded_line {
	char *stack;
	int64_t value;
};

struct strbuf {
	char *p;
	size_t len, cap;
};

static int sb_add(struct strbuf *b, const char *s)
{
	size_t n = strlen(s);
	if (grow(&b->p, &b->cap, b->len + n + 1, 1))
		return -HD_ENOMEM;
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
	return 0;
}

/* One stack as "root;...;leaf", after pprof's trimming.  ';' and newlines
 * inside names would break the format: they become ':' and ' '. */
/* Room for the frames of one stack, reused from stack to stack. */
struct folded_scratch {
	struct hd_frame frames[HD_MAX_DEPTH * EX_MAX_INLINE];
	int loc[HD_MAX_DEPTH * EX_MAX_INLINE];
	unsigned char keep[HD_MAX_DEPTH * EX_MAX_INLINE];
};

static int folded_stack(const struct hd_export_src *src,
			const struct hd_stack *st, struct folded_scratch *sc,
			char **out)
{
	struct hd_frame *frames = sc->frames;
	int *loc = sc->loc;
	unsigned char *keep = sc->keep;
	struct strbuf b = {0};
	int rc = -HD_ENOMEM;

	int n = 0;
	for (uint32_t d = 0; d < st->depth && d < HD_MAX_DEPTH; d++) {
		int k = resolve_pc(src, st->pcs[d], frames + n);
		for (int i = 0; i < k; i++)
			loc[n + i] = (int)d;
		n += k;
	}
	int kept = hd_export_prune(frames, loc, n, keep);
	if (kept < 0) {
		rc = kept;
		goto out;
	}
	if (sb_add(&b, ""))
		goto out;
	for (int i = n - 1; i >= 0; i--) {
		if (!keep[i])
			continue;
		if (b.len && sb_add(&b, ";"))
			goto out;
		size_t at = b.len;
		if (sb_add(&b, frames[i].func ? frames[i].func : "[unknown]"))
			goto out;
		for (char *c = b.p + at; *c; c++)
			if (*c == ';')
				*c = ':';
			else if (*c == '\n')
				*c = ' ';
	}
	if (!b.len && sb_add(&b, "[unknown]"))
		goto out;
	*out = b.p;
	b.p = NULL;
	rc = 0;
out:
	free(b.p);
	return rc;
}

static int folded_cmp(const void *a, const void *b)
{
	const struct folded_line *x = a, *y = b;
	return strcmp(x->stack, y->stack);
}

static int folded_write(const char *path, struct folded_line *lines, size_t n)
{
	struct strbuf b = {0};
	int rc = 0;
	if (sb_add(&b, ""))
		return -HD_ENOMEM;
	for (size_t i = 0; i < n && rc == 0;) {
		/* Equal stacks (different pcs, same names) are one line. */
		int64_t sum = 0;
		size_t j = i;
		for (; j < n && strcmp(lines[j].stack, lines[i].stack) == 0; j++)
			sum += lines[j].value;
		if (sum != 0) {
			char num[32];
			snprintf(num, sizeof(num), " %" PRId64 "\n", sum);
			rc = sb_add(&b, lines[i].stack);
			if (rc == 0)
				rc = sb_add(&b, num);
		}
		i = j;
	}
	if (rc == 0)
		rc = write_file(path, b.p, b.len);
	free(b.p);
	return rc;
}

int hd_export_folded(const char *path, const struct hd_snap *s,
		     enum hd_sample_index index,
		     const struct hd_export_src *src, char *err, size_t errlen)
{
	struct folded_line *lines = calloc(s->n ? s->n : 1, sizeof(*lines));
	struct folded_scratch *sc = malloc(sizeof(*sc));
	size_t n = 0;
	int rc = lines && sc ? 0 : -HD_ENOMEM;

	for (size_t i = 0; rc == 0 && i < s->n; i++) {
		const struct hd_snap_entry *e = &s->entries[i];
		/* Rounded per stack, as in the pprof file: both sum to the
		 * same total. */
		int64_t v = round_value(hd_counts_value(&e->counts, index));
		if (v == 0)
			continue;
		rc = folded_stack(src, e->stack, sc, &lines[n].stack);
		if (rc == 0)
			lines[n++].value = v;
	}
	if (rc == 0) {
		qsort(lines, n, sizeof(*lines), folded_cmp);
		rc = folded_write(path, lines, n);
	}
	for (size_t i = 0; i < n; i++)
		free(lines[i].stack);
	free(lines);
	free(sc);
	return rc ? set_err(err, errlen, rc, path) : 0;
}
