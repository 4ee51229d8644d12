/* cli/report: pprof's text reports, reproduced from the pprof sources
 * (github.com/google/pprof, as vendored in Go 1.19):
 *
 *   internal/driver   defaults: granularity "functions" (lines for list),
 *                     nodefraction 0.005, edgefraction 0.001, unit
 *                     "minimum", nodecount 10 for top; compact labels
 *                     (interactive mode); the total is computed before
 *                     -focus/-ignore, so percentages stay of the whole.
 *   profile/prune.go  the allocator frames trimmed from every stack
 *                     (Prune with the drop_frames an exported profile
 *                     carries: profile/pprof's hd_export_drop_frames).
 *   profile/filter.go focus/ignore (FilterSamplesByName).
 *   internal/graph    nodes, cum once per sample, flat on the leaf,
 *                     edges (for the "(inline)" label), sort orders.
 *   internal/report   printText, printTraces, printSource (source.go),
 *                     selectOutputUnit, reportLabels, computeTotal.
 *   internal/measurement  unit scaling and percentages.
 *
 * Values are pprof's: int64 per sample (the snapshot's estimates rounded
 * to the nearest integer, as the exported profile.proto holds them).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* qsort_r */
#endif
#include <math.h>
#include <regex.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "report.h"
#include "../profile/pprof/export.h"

#define SEPARATOR                                                            \
	"-----------+-------------------------------------------------------"
#define MAX_INLINE 64
#define NODE_FRACTION 0.005
#define EDGE_FRACTION 0.001
#define DEFAULT_TOP 10

/* ---- measurement.go ---- */

struct unit {
	const char *name;
	const char *aliases[4];
	double factor;
};

static const struct unit memory_units[] = {
	{"B", {"b", "byte"}, 1},
	{"kB", {"kb", "kbyte", "kilobyte"}, 1024.0},
	{"MB", {"mb", "mbyte", "megabyte"}, 1048576.0},
	{"GB", {"gb", "gbyte", "gigabyte"}, 1073741824.0},
	{"TB", {"tb", "tbyte", "terabyte"}, 1099511627776.0},
	{"PB", {"pb", "pbyte", "petabyte"}, 1125899906842624.0},
};

/* unitType.sniffUnit: lower-case, drop a plural 's', look up aliases. */
static const struct unit *sniff_unit(const char *unit)
{
	char buf[32];
	size_t n = strlen(unit);
	if (n >= sizeof(buf))
		return NULL;
	for (size_t i = 0; i <= n; i++)
		buf[i] = (char)(unit[i] >= 'A' && unit[i] <= 'Z'
					? unit[i] - 'A' + 'a'
					: unit[i]);
	if (n > 2 && buf[n - 1] == 's')
		buf[n - 1] = 0;
	for (size_t u = 0; u < HD_ARRAY_SIZE(memory_units); u++)
		for (int a = 0; a < 4 && memory_units[u].aliases[a]; a++)
			if (strcmp(buf, memory_units[u].aliases[a]) == 0)
				return &memory_units[u];
	return NULL;
}

/* measurement.Scale: value in from_unit to to_unit ("minimum"/"auto":
 * the largest unit that keeps the value >= 1).  *unit is "" when the
 * unit is not worth printing (counts). */
static double scale(int64_t value, const char *from, const char *to,
		    const char **unit)
{
	if (value < 0 && -value > 0)
		return -scale(-value, from, to, unit);
	const struct unit *fu = sniff_unit(from);
	if (fu) {
		double v = (double)value * fu->factor;
		if (!strcmp(to, "minimum") || !strcmp(to, "auto")) {
			const struct unit *best = NULL;
			for (size_t u = 0; u < HD_ARRAY_SIZE(memory_units); u++)
				if ((!best || memory_units[u].factor >= best->factor) &&
				    v / memory_units[u].factor >= 1.0)
					best = &memory_units[u];
			if (!best)
				best = &memory_units[0];
			*unit = best->name;
			return v / best->factor;
		}
		const struct unit *tu = sniff_unit(to);
		if (!tu)
			tu = &memory_units[0];
		*unit = tu->name;
		return v / tu->factor;
	}
	if (!strcmp(to, "count") || !strcmp(to, "sample") ||
	    !strcmp(to, "unit") || !strcmp(to, "minimum") ||
	    !strcmp(to, "auto"))
		*unit = "";
	else
		*unit = to; /* pprof prints e.g. "12KB" for counts with -unit=KB */
	return (double)value;
}

/* measurement.ScaledLabel */
static void scaled_label(char *buf, size_t len, int64_t value,
			 const char *from, const char *to)
{
	const char *unit;
	double v = scale(value, from, to, &unit);
	char num[64];
	snprintf(num, sizeof(num), "%.2f", v);
	size_t n = strlen(num);
	if (n > 3 && !strcmp(num + n - 3, ".00"))
		num[n - 3] = 0;
	if (!strcmp(num, "0") || !strcmp(num, "-0"))
		snprintf(buf, len, "0");
	else
		snprintf(buf, len, "%s%s", num, unit);
}

/* measurement.Percentage: always at least two significant digits. */
static void percentage(char *buf, size_t len, int64_t value, int64_t total)
{
	double ratio = 0;
	if (total != 0)
		ratio = fabs((double)value / (double)total) * 100;
	if (ratio >= 99.95 && ratio <= 100.05)
		snprintf(buf, len, "  100%%");
	else if (ratio >= 1.0)
		snprintf(buf, len, "%5.2f%%", ratio);
	else
		snprintf(buf, len, "%5.2g%%", ratio);
}

static const char *sample_unit(enum hd_sample_index i)
{
	return i == HD_ALLOC_OBJECTS || i == HD_INUSE_OBJECTS ? "count"
							      : "bytes";
}

static const char *sample_type(enum hd_sample_index i)
{
	static const char *const names[] = {"alloc_objects", "alloc_space",
					    "inuse_objects", "inuse_space"};
	return (unsigned)i < HD_ARRAY_SIZE(names) ? names[i] : "inuse_space";
}

void hd_report_format_value(char *buf, size_t len, double v,
			    enum hd_sample_index i, const char *unit)
{
	scaled_label(buf, len, llround(v), sample_unit(i),
		     unit ? unit : "minimum");
}

/* ---- string interning (node keys) ---- */

struct strtab {
	char **keys;
	uint32_t *slots; /* index + 1; 0 = empty */
	uint32_t n, cap, nslots;
};

static uint64_t str_hash(const char *s, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

/* Id of key (len bytes, may contain NULs), or -1 on out-of-memory. */
static int64_t strtab_intern(struct strtab *t, const char *key, size_t len,
			     bool *added)
{
	*added = false;
	if ((t->n + 1) * 2 > t->nslots) {
		uint32_t ns = t->nslots ? t->nslots * 2 : 64;
		uint32_t *slots = calloc(ns, sizeof(*slots));
		if (!slots)
			return -1;
		for (uint32_t i = 0; i < t->n; i++) {
			size_t kl;
			memcpy(&kl, t->keys[i], sizeof(kl));
			uint32_t j = (uint32_t)str_hash(t->keys[i] + sizeof(kl), kl) &
				     (ns - 1);
			while (slots[j])
				j = (j + 1) & (ns - 1);
			slots[j] = i + 1;
		}
		free(t->slots);
		t->slots = slots;
		t->nslots = ns;
	}
	uint32_t j = (uint32_t)str_hash(key, len) & (t->nslots - 1);
	for (; t->slots[j]; j = (j + 1) & (t->nslots - 1)) {
		const char *k = t->keys[t->slots[j] - 1];
		size_t kl;
		memcpy(&kl, k, sizeof(kl));
		if (kl == len && !memcmp(k + sizeof(kl), key, len))
			return t->slots[j] - 1;
	}
	if (t->n == t->cap) {
		uint32_t nc = t->cap ? t->cap * 2 : 64;
		char **keys = realloc(t->keys, nc * sizeof(*keys));
		if (!keys)
			return -1;
		t->keys = keys;
		t->cap = nc;
	}
	/* Stored as length prefix + bytes. */
	char *k = malloc(sizeof(len) + len);
	if (!k)
		return -1;
	memcpy(k, &len, sizeof(len));
	memcpy(k + sizeof(len), key, len);
	t->keys[t->n] = k;
	t->slots[j] = t->n + 1;
	*added = true;
	return t->n++;
}

static void strtab_free(struct strtab *t)
{
	for (uint32_t i = 0; i < t->n; i++)
		free(t->keys[i]);
	free(t->keys);
	free(t->slots);
}

/* ---- the profile as pprof sees it ---- */

/* A location: one pc and its frames (innermost first, after pruning). */
struct rloc {
	uint64_t pc;
	uint32_t first, n; /* frames[first .. first+n) */
	bool prune;        /* the whole location is an allocator frame */
	bool beneath;      /* an allocator frame was trimmed from it */
	signed char focus; /* 1 focused, 0 ignored, -1 neither */
};

struct rsample {
	const struct hd_stack *stack;
	uint32_t *locs; /* leaf first */
	uint32_t nlocs;
	int64_t v;
	bool kept; /* passed -focus/-ignore */
};

struct rnode {
	const char *name;
	char *file; /* cleaned, owned; NULL when the granularity has none */
	int line, start_line;
	const char *module;
	int64_t flat, cum;
	uint32_t stamp;
	bool present, kept;
	bool in_inline, in_noinline;
};

struct redge {
	uint64_t key; /* src << 32 | dst, +1 so 0 is empty */
	int64_t w;
	uint32_t stamp;
	bool is_inline;
};

struct rctx {
	const struct hd_report_opts *o;
	enum hd_sample_index index;
	const char *sunit;  /* sample unit: "bytes" or "count" */
	const char *ounit;  /* output unit */
	struct rloc *locs;
	size_t nlocs;
	struct hd_frame *frames;
	size_t nframes, capframes;
	char **names; /* names made up for unresolvable pcs */
	size_t nnames;
	struct rsample *samples;
	size_t nsamples;
	uint32_t *locpool;
	int64_t total;

	/* Graph of the current granularity. */
	uint32_t *fnode; /* node of each frame */
	struct rnode *nodes;
	size_t nnodes;
	struct redge *edges;
	size_t nedges, capedges;
};

static void ctx_free(struct rctx *c)
{
	free(c->locs);
	free(c->frames);
	for (size_t i = 0; i < c->nnames; i++)
		free(c->names[i]);
	free(c->names);
	free(c->samples);
	free(c->locpool);
	free(c->fnode);
	for (size_t i = 0; i < c->nnodes; i++)
		free(c->nodes[i].file);
	free(c->nodes);
	free(c->edges);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int64_t loc_index(const struct rctx *c, uint64_t pc)
{
	size_t lo = 0, hi = c->nlocs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->locs[mid].pc < pc)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->nlocs && c->locs[lo].pc == pc ? (int64_t)lo : -1;
}

static int add_frames(struct rctx *c, struct rloc *l)
{
	if (c->nframes + MAX_INLINE > c->capframes) {
		size_t n = c->capframes ? c->capframes * 2 : 1024;
		while (n < c->nframes + MAX_INLINE)
			n *= 2;
		struct hd_frame *f = realloc(c->frames, n * sizeof(*f));
		if (!f)
			return -HD_ENOMEM;
		c->frames = f;
		c->capframes = n;
	}
	struct hd_frame *f = &c->frames[c->nframes];
	/* Every pc is a return address: the call is the byte before. */
	int n = c->o->resolve(c->o->ctx, l->pc - 1, f, MAX_INLINE);
	if (n <= 0) {
		char **names = realloc(c->names, (c->nnames + 1) * sizeof(*names));
		if (!names)
			return -HD_ENOMEM;
		c->names = names;
		char *name = malloc(24);
		if (!name)
			return -HD_ENOMEM;
		snprintf(name, 24, "0x%llx", (unsigned long long)(l->pc - 1));
		c->names[c->nnames++] = name;
		memset(f, 0, sizeof(*f));
		f->func = name;
		n = 1;
	}
	for (int i = 0; i < n; i++)
		if (!f[i].func)
			f[i].func = "";
	l->first = (uint32_t)c->nframes;
	l->n = (uint32_t)n;
	c->nframes += (size_t)n;
	return 0;
}

/* ---- allocator frames (profile/prune.go) ---- */

/* The allocator frames: the exporter's list (pprof's allocRxStr plus
 * heapdbg's extra entry points, written as the exported profile's
 * drop_frames), and the libstdc++ allocator layers under operator new
 * (std::allocator<T>::allocate, allocator_traits, new_allocator), which
 * pprof's list names only without template arguments. */
static const char cxx_alloc_rx[] =
	"std::allocator<.*>::allocate|std::allocator_traits<.*>::allocate|"
	"(std|__gnu_cxx)::(__)?new_allocator<.*>::allocate";

static int compile_drop_rx(regex_t *rx, char *err, size_t errlen)
{
	size_t len = sizeof("^(|)$") + strlen(hd_export_drop_frames) +
		     sizeof(cxx_alloc_rx);
	char *re = malloc(len);
	if (!re)
		return -HD_ENOMEM;
	snprintf(re, len, "^(%s|%s)$", hd_export_drop_frames, cxx_alloc_rx);
	int rc = regcomp(rx, re, REG_EXTENDED | REG_NOSUB);
	free(re);
	if (rc) {
		snprintf(err, errlen, "%s", hd_strerror(-HD_EINTERNAL));
		return -HD_EINTERNAL;
	}
	return 0;
}

/* profile.simplifyFunc: cut the argument list at the first '(' that does
 * not start "(anonymous namespace)" or belong to "operator()". */
static size_t simplified_len(const char *name)
{
	static const char *const reserved[] = {"(anonymous namespace)",
					       "operator()"};
	const char *p = name;
	if (*p == '.')
		p++;
	while (*p) {
		bool skipped = false;
		for (size_t r = 0; r < HD_ARRAY_SIZE(reserved); r++) {
			size_t rl = strlen(reserved[r]);
			if (!strncmp(p, reserved[r], rl)) {
				p += rl;
				skipped = true;
				break;
			}
		}
		if (skipped)
			continue;
		if (*p == '(')
			break;
		p++;
	}
	return (size_t)(p - name);
}

static bool simplified_matches(const regex_t *rx, const char *name)
{
	char buf[1024];
	size_t off = name[0] == '.';
	size_t len = simplified_len(name) - off;
	if (len >= sizeof(buf))
		len = sizeof(buf) - 1;
	memcpy(buf, name + off, len);
	buf[len] = 0;
	return regexec(rx, buf, 0, NULL, 0) == 0;
}

static void prune_locations(struct rctx *c, const regex_t *drop)
{
	for (size_t i = 0; i < c->nlocs; i++) {
		struct rloc *l = &c->locs[i];
		int k;
		for (k = (int)l->n - 1; k >= 0; k--) {
			const char *name = c->frames[l->first + k].func;
			if (*name && simplified_matches(drop, name))
				break;
		}
		if (k < 0)
			continue;
		l->beneath = true;
		if (k == (int)l->n - 1) {
			l->prune = true;
		} else {
			l->first += (uint32_t)k + 1;
			l->n -= (uint32_t)k + 1;
		}
	}
}

/* Index of the leaf-most location kept: scanning from the root, the first
 * allocator location after a user frame cuts the stack there. */
static uint32_t prune_start(const struct rctx *c, const uint32_t *locs,
			    uint32_t n)
{
	bool found_user = false;
	for (int i = (int)n - 1; i >= 0; i--) {
		const struct rloc *l = &c->locs[locs[i]];
		if (!l->prune && !l->beneath) {
			found_user = true;
			continue;
		}
		if (!found_user)
			continue;
		return l->prune ? (uint32_t)i + 1 : (uint32_t)i;
	}
	return 0;
}

/* ---- focus / ignore (profile/filter.go) ---- */

static int compile(regex_t *rx, const char *what, const char *re, char *err,
		   size_t errlen)
{
	int rc = regcomp(rx, re, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char msg[256];
		regerror(rc, rx, msg, sizeof(msg));
		snprintf(err, errlen, "parsing %s regexp: %s: `%s`", what, msg,
			 re);
		return -HD_EINVAL;
	}
	return 0;
}

static bool rx_match(const regex_t *rx, const char *s)
{
	return s && regexec(rx, s, 0, NULL, 0) == 0;
}

/* Location.matchesName: any frame's function or file, or the module. */
static bool loc_matches(const struct rctx *c, const struct rloc *l,
			const regex_t *rx)
{
	for (uint32_t k = 0; k < l->n; k++) {
		const struct hd_frame *f = &c->frames[l->first + k];
		if (rx_match(rx, f->func) || rx_match(rx, f->file))
			return true;
	}
	return l->n && rx_match(rx, c->frames[l->first + l->n - 1].module);
}

static void apply_filters(struct rctx *c, const regex_t *focus,
			  const regex_t *ignore)
{
	for (size_t i = 0; i < c->nlocs; i++) {
		struct rloc *l = &c->locs[i];
		if (ignore && loc_matches(c, l, ignore))
			l->focus = 0;
		else if (!focus || loc_matches(c, l, focus))
			l->focus = 1;
		else
			l->focus = -1;
	}
	for (size_t s = 0; s < c->nsamples; s++) {
		struct rsample *sm = &c->samples[s];
		bool f = false, ignored = false;
		for (uint32_t k = 0; k < sm->nlocs && !ignored; k++) {
			int v = c->locs[sm->locs[k]].focus;
			f |= v == 1;
			ignored = v == 0;
		}
		sm->kept = f && !ignored;
	}
}

/* Everything up to the graph: locations, frames, pruning, samples, the
 * total, filters.  Returns 0 or -HD_E* with err set. */
static int load(struct rctx *c, const struct hd_snap *s,
		const struct hd_report_opts *o, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->o = o;
	c->index = o->index;
	c->sunit = sample_unit(o->index);
	c->ounit = o->unit ? o->unit : "minimum";

	regex_t focus, ignore, drop;
	bool have_focus = false, have_ignore = false;
	int rc;
	if (o->focus && *o->focus) {
		if ((rc = compile(&focus, "focus", o->focus, err, errlen)))
			return rc;
		have_focus = true;
	}
	if (o->ignore && *o->ignore) {
		if ((rc = compile(&ignore, "ignore", o->ignore, err, errlen)))
			goto out_focus;
		have_ignore = true;
	}
	if ((rc = compile_drop_rx(&drop, err, errlen)))
		goto out_ignore;

	rc = -HD_ENOMEM;
	size_t npcs = 0;
	for (size_t i = 0; i < s->n; i++)
		npcs += s->entries[i].stack->depth;
	uint64_t *pcs = malloc((npcs ? npcs : 1) * sizeof(*pcs));
	c->locpool = malloc((npcs ? npcs : 1) * sizeof(*c->locpool));
	c->samples = calloc(s->n ? s->n : 1, sizeof(*c->samples));
	if (!pcs || !c->locpool || !c->samples)
		goto out_pcs;
	npcs = 0;
	for (size_t i = 0; i < s->n; i++)
		for (uint32_t k = 0; k < s->entries[i].stack->depth; k++)
			pcs[npcs++] = s->entries[i].stack->pcs[k];
	qsort(pcs, npcs, sizeof(*pcs), cmp_u64);
	c->locs = calloc(npcs ? npcs : 1, sizeof(*c->locs));
	if (!c->locs)
		goto out_pcs;
	for (size_t i = 0; i < npcs; i++)
		if (!c->nlocs || c->locs[c->nlocs - 1].pc != pcs[i])
			c->locs[c->nlocs++].pc = pcs[i];
	for (size_t i = 0; i < c->nlocs; i++)
		if ((rc = add_frames(c, &c->locs[i])))
			goto out_pcs;
	prune_locations(c, &drop);

	uint32_t *pool = c->locpool;
	for (size_t i = 0; i < s->n; i++) {
		const struct hd_stack *st = s->entries[i].stack;
		struct rsample *sm = &c->samples[c->nsamples++];
		sm->stack = st;
		sm->v = llround(hd_counts_value(&s->entries[i].counts, o->index));
		/* report.computeTotal: the sum of absolute values, taken
		 * before -focus and -ignore. */
		c->total += sm->v < 0 ? -sm->v : sm->v;
		for (uint32_t k = 0; k < st->depth; k++)
			pool[k] = (uint32_t)loc_index(c, st->pcs[k]);
		uint32_t start = prune_start(c, pool, st->depth);
		sm->locs = pool + start;
		sm->nlocs = st->depth - start;
		pool += st->depth;
	}
	apply_filters(c, have_focus ? &focus : NULL,
		      have_ignore ? &ignore : NULL);
	rc = 0;
out_pcs:
	free(pcs);
	regfree(&drop);
out_ignore:
	if (have_ignore)
		regfree(&ignore);
out_focus:
	if (have_focus)
		regfree(&focus);
	if (rc == -HD_ENOMEM)
		snprintf(err, errlen, "%s", hd_strerror(rc));
	return rc;
}

/* ---- graph (internal/graph/graph.go) ---- */

enum granularity { BY_FUNCTION, BY_LINE };

/* filepath.Clean, for node file names. */
static char *clean_path(const char *path)
{
	size_t n = strlen(path);
	char *out = malloc(n + 2);
	if (!out)
		return NULL;
	bool rooted = path[0] == '/';
	size_t w = 0, dotdot = 0;
	if (rooted)
		out[w++] = '/', dotdot = 1;
	for (size_t r = 0; r < n;) {
		if (path[r] == '/') {
			r++;
		} else if (path[r] == '.' && (r + 1 == n || path[r + 1] == '/')) {
			r++;
		} else if (path[r] == '.' && path[r + 1] == '.' &&
			   (r + 2 == n || path[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			for (; r < n && path[r] != '/'; r++)
				out[w++] = path[r];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = 0;
	return out;
}

/* Map every frame to its node: the function name (functions
 * granularity), or name, file, line, module and start line (lines). */
static int make_nodes(struct rctx *c, enum granularity g)
{
	struct strtab tab = {0};
	int rc = -HD_ENOMEM;
	c->fnode = calloc(c->nframes ? c->nframes : 1, sizeof(*c->fnode));
	if (!c->fnode)
		return rc;
	size_t cap = 0;
	for (size_t i = 0; i < c->nframes; i++) {
		const struct hd_frame *f = &c->frames[i];
		char key[4096];
		int kl;
		char *file = NULL;
		if (g == BY_FUNCTION) {
			kl = snprintf(key, sizeof(key), "%s", f->func);
		} else {
			if (f->file && *f->file && !(file = clean_path(f->file)))
				goto out;
			kl = snprintf(key, sizeof(key), "%s%c%s%c%d%c%s%c%d",
				      f->func, 0, file ? file : "", 0, f->line,
				      0, f->module ? f->module : "", 0,
				      f->func_line);
		}
		if (kl < 0 || (size_t)kl >= sizeof(key))
			kl = sizeof(key) - 1;
		bool added;
		int64_t id = strtab_intern(&tab, key, (size_t)kl, &added);
		if (id < 0) {
			free(file);
			goto out;
		}
		c->fnode[i] = (uint32_t)id;
		if (!added) {
			free(file);
			continue;
		}
		if (c->nnodes == cap) {
			cap = cap ? cap * 2 : 64;
			struct rnode *nn = realloc(c->nodes, cap * sizeof(*nn));
			if (!nn) {
				free(file);
				goto out;
			}
			c->nodes = nn;
		}
		struct rnode *n = &c->nodes[c->nnodes++];
		memset(n, 0, sizeof(*n));
		n->name = f->func;
		if (g == BY_LINE) {
			n->file = file;
			n->line = f->line;
			n->start_line = f->func_line;
			n->module = f->module;
		}
	}
	rc = 0;
out:
	strtab_free(&tab);
	return rc;
}

static struct redge *edge_slot(struct rctx *c, uint32_t src, uint32_t dst)
{
	uint64_t key = ((uint64_t)src << 32 | dst) + 1;
	if ((c->nedges + 1) * 2 > c->capedges) {
		size_t n = c->capedges ? c->capedges * 2 : 256;
		struct redge *t = calloc(n, sizeof(*t));
		if (!t)
			return NULL;
		for (size_t i = 0; i < c->capedges; i++) {
			if (!c->edges[i].key)
				continue;
			size_t j = (size_t)str_hash((const char *)&c->edges[i].key, 8) & (n - 1);
			while (t[j].key)
				j = (j + 1) & (n - 1);
			t[j] = c->edges[i];
		}
		free(c->edges);
		c->edges = t;
		c->capedges = n;
	}
	size_t j = (size_t)str_hash((const char *)&key, 8) & (c->capedges - 1);
	for (; c->edges[j].key; j = (j + 1) & (c->capedges - 1))
		if (c->edges[j].key == key)
			return &c->edges[j];
	c->edges[j].key = key;
	c->edges[j].w = 0;
	c->edges[j].stamp = 0;
	c->edges[j].is_inline = true;
	c->nedges++;
	return &c->edges[j];
}

/* graph.newGraph over the kept samples: cum once per node per sample,
 * flat on the leaf, edges between consecutive kept nodes.  With `kept`
 * set, only nodes marked kept take part (the others are skipped, as a
 * graph rebuilt from a NodeSet skips them). */
static int build_graph(struct rctx *c, bool only_kept, bool with_edges)
{
	for (size_t i = 0; i < c->nnodes; i++) {
		c->nodes[i].flat = c->nodes[i].cum = 0;
		c->nodes[i].stamp = 0;
	}
	free(c->edges);
	c->edges = NULL;
	c->nedges = c->capedges = 0;
	uint32_t stamp = 0;
	for (size_t s = 0; s < c->nsamples; s++) {
		const struct rsample *sm = &c->samples[s];
		if (!sm->kept || sm->v == 0)
			continue;
		stamp++;
		int64_t parent = -1;
		bool residual = false;
		for (int li = (int)sm->nlocs - 1; li >= 0; li--) {
			const struct rloc *l = &c->locs[sm->locs[li]];
			for (int k = (int)l->n - 1; k >= 0; k--) {
				uint32_t n = c->fnode[l->first + k];
				struct rnode *nd = &c->nodes[n];
				if (only_kept && !nd->kept) {
					residual = true;
					continue;
				}
				if (nd->stamp != stamp) {
					nd->stamp = stamp;
					nd->cum += sm->v;
				}
				if (with_edges && parent >= 0 && n != parent) {
					struct redge *e = edge_slot(c, (uint32_t)parent, n);
					if (!e)
						return -HD_ENOMEM;
					if (e->stamp != stamp) {
						e->stamp = stamp;
						e->w += sm->v;
						if (k == (int)l->n - 1)
							e->is_inline = false;
					}
				}
				parent = n;
				residual = false;
			}
		}
		if (parent >= 0 && !residual)
			c->nodes[parent].flat += sm->v;
	}
	for (size_t i = 0; i < c->nnodes; i++) {
		struct rnode *nd = &c->nodes[i];
		nd->present = (nd->cum != 0 || nd->flat != 0) &&
			      (!only_kept || nd->kept);
	}
	return 0;
}

static int64_t abs64(int64_t v)
{
	return v < 0 ? -v : v;
}

/* Node orders (graph.Nodes.Sort): FlatNameOrder and CumNameOrder.  Names
 * are unique at function granularity, so the name decides every tie. */
struct node_order {
	const struct rnode *nodes;
	bool cum;
};

static int cmp_nodes(const void *a, const void *b, void *arg)
{
	const struct node_order *ord = arg;
	const struct rnode *l = &ord->nodes[*(const uint32_t *)a];
	const struct rnode *r = &ord->nodes[*(const uint32_t *)b];
	bool sort_cum = ord->cum;
	int64_t lv = sort_cum ? abs64(l->cum) : abs64(l->flat);
	int64_t rv = sort_cum ? abs64(r->cum) : abs64(r->flat);
	if (lv != rv)
		return lv > rv ? -1 : 1;
	int c = strcmp(l->name, r->name);
	if (c)
		return c;
	lv = sort_cum ? abs64(l->flat) : abs64(l->cum);
	rv = sort_cum ? abs64(r->flat) : abs64(r->cum);
	if (lv != rv)
		return lv > rv ? -1 : 1;
	return 0;
}

static void format_value(const struct rctx *c, char *buf, size_t len,
			 int64_t v)
{
	scaled_label(buf, len, v, c->sunit, c->ounit);
}

/* report.selectOutputUnit: one unit for the whole report, chosen so the
 * smallest value still shows (down to 0.01 of the unit). */
static void select_output_unit(struct rctx *c, const uint32_t *ids,
			       size_t n)
{
	if (strcmp(c->ounit, "minimum") || n == 0)
		return;
	int64_t minv = 0;
	for (size_t i = 0; i < n; i++) {
		const struct rnode *nd = &c->nodes[ids[i]];
		int64_t m = abs64(nd->flat);
		if (m == 0)
			m = abs64(nd->cum);
		if (m > 0 && (minv == 0 || m < minv))
			minv = m;
	}
	int64_t maxv = c->total;
	if (minv == 0)
		minv = maxv;
	const char *min_unit, *max_unit, *unit;
	scale(minv, c->sunit, "minimum", &min_unit);
	scale(maxv, c->sunit, "minimum", &max_unit);
	unit = min_unit;
	if (strcmp(min_unit, max_unit) && minv * 100 < maxv)
		scale(100 * minv, c->sunit, "minimum", &unit);
	c->ounit = *unit ? unit : c->sunit;
}

static void print_active_filters(FILE *out, const struct hd_report_opts *o)
{
	const char *keys[2] = {"focus", "ignore"};
	const char *vals[2] = {o->focus, o->ignore};
	bool any = false;
	for (int i = 0; i < 2; i++) {
		if (!vals[i] || !*vals[i])
			continue;
		if (!any)
			fputs("Active filters:\n", out);
		any = true;
		/* pprof cuts a filter at 80 bytes and adds an ellipsis. */
		char f[128];
		int n = snprintf(f, sizeof(f), "%s=%s", keys[i], vals[i]);
		if (n > 80)
			fprintf(out, "   %.80s\u2026\n", f);
		else
			fprintf(out, "   %s\n", f);
	}
}

int hd_report_top(FILE *out, const struct hd_snap *s,
		  const struct hd_report_opts *o, char *err, size_t errlen)
{
	struct rctx c;
	uint32_t *ids = NULL;
	int rc = load(&c, s, o, err, errlen);
	if (rc)
		goto out;
	rc = -HD_ENOMEM;
	if (make_nodes(&c, BY_FUNCTION) || build_graph(&c, false, false))
		goto out;
	ids = malloc((c.nnodes ? c.nnodes : 1) * sizeof(*ids));
	if (!ids)
		goto out;

	/* report.newTrimmedGraph: drop nodes below nodefraction of the sum
	 * of flat values, then keep the top N. */
	int64_t flat_total = 0;
	for (size_t i = 0; i < c.nnodes; i++)
		flat_total += c.nodes[i].flat;
	int64_t node_cutoff = abs64((int64_t)((double)flat_total * NODE_FRACTION));
	int64_t edge_cutoff = abs64((int64_t)((double)flat_total * EDGE_FRACTION));
	size_t n = 0, present = 0;
	for (size_t i = 0; i < c.nnodes; i++) {
		struct rnode *nd = &c.nodes[i];
		if (!nd->present)
			continue;
		present++;
		if (node_cutoff > 0 && abs64(nd->cum) < node_cutoff)
			continue;
		ids[n++] = (uint32_t)i;
	}
	size_t dropped = present - n, orig_count = n;
	struct node_order ord = {c.nodes, o->cum != 0};
	qsort_r(ids, n, sizeof(*ids), cmp_nodes, &ord);
	size_t top = o->n > 0 ? (size_t)o->n : DEFAULT_TOP;
	if (n > top)
		n = top;

	/* The final graph's edges give the "(inline)" labels. */
	for (size_t i = 0; i < c.nnodes; i++)
		c.nodes[i].kept = false;
	for (size_t i = 0; i < n; i++)
		c.nodes[ids[i]].kept = true;
	if (build_graph(&c, true, true))
		goto out;
	for (size_t i = 0; i < c.capedges; i++) {
		const struct redge *e = &c.edges[i];
		if (!e->key || abs64(e->w) < edge_cutoff)
			continue;
		struct rnode *dst = &c.nodes[(uint32_t)(e->key - 1)];
		if (e->is_inline)
			dst->in_inline = true;
		else
			dst->in_noinline = true;
	}

	select_output_unit(&c, ids, n);
	int64_t flat_sum = 0;
	for (size_t i = 0; i < n; i++)
		flat_sum += c.nodes[ids[i]].flat;
	char a[64], b[64], d[64];
	print_active_filters(out, o);
	format_value(&c, a, sizeof(a), flat_sum);
	percentage(b, sizeof(b), flat_sum, c.total);
	format_value(&c, d, sizeof(d), c.total);
	const char *pct = b + strspn(b, " ");
	fprintf(out, "Showing nodes accounting for %s, %s of %s total\n", a,
		pct, d);
	if (c.total != 0) {
		if (dropped > 0) {
			format_value(&c, a, sizeof(a),
				     abs64((int64_t)((double)c.total * NODE_FRACTION)));
			fprintf(out, "Dropped %zu node%s (cum <= %s)\n", dropped,
				dropped > 1 ? "s" : "", a);
		}
		if (n > 0 && n < orig_count)
			fprintf(out, "Showing top %zu nodes out of %zu\n", n,
				orig_count);
	}
	fprintf(out, "%10s %5s%% %5s%% %10s %5s%%\n", "flat", "flat", "sum",
		"cum", "cum");
	flat_sum = 0;
	for (size_t i = 0; i < n; i++) {
		const struct rnode *nd = &c.nodes[ids[i]];
		char fv[64], fp[16], sp[16], cv[64], cp[16];
		flat_sum += nd->flat;
		format_value(&c, fv, sizeof(fv), nd->flat);
		percentage(fp, sizeof(fp), nd->flat, c.total);
		percentage(sp, sizeof(sp), flat_sum, c.total);
		format_value(&c, cv, sizeof(cv), nd->cum);
		percentage(cp, sizeof(cp), nd->cum, c.total);
		const char *inl = !nd->in_inline     ? ""
				  : nd->in_noinline ? " (partial-inline)"
						    : " (inline)";
		fprintf(out, "%10s %s %s %10s %s  %s%s\n", fv, fp, sp, cv, cp,
			nd->name, inl);
	}
	rc = 0;
out:
	if (rc == -HD_ENOMEM)
		snprintf(err, errlen, "%s", hd_strerror(rc));
	free(ids);
	ctx_free(&c);
	return rc;
}

/* ---- traces (report.printTraces) ---- */

static int cmp_samples(const void *a, const void *b, void *arg)
{
	const struct rsample *samples = arg;
	const struct rsample *l = &samples[*(const uint32_t *)a];
	const struct rsample *r = &samples[*(const uint32_t *)b];
	if (abs64(l->v) != abs64(r->v))
		return abs64(l->v) > abs64(r->v) ? -1 : 1;
	return l->stack->id < r->stack->id ? -1 : l->stack->id > r->stack->id;
}

int hd_report_traces(FILE *out, const struct hd_snap *s,
		     const struct hd_report_opts *o, char *err, size_t errlen)
{
	struct rctx c;
	uint32_t *ids = NULL;
	int rc = load(&c, s, o, err, errlen);
	if (rc)
		goto out;
	rc = -HD_ENOMEM;
	ids = malloc((c.nsamples ? c.nsamples : 1) * sizeof(*ids));
	if (!ids)
		goto out;
	/* pprof prints every sample in profile order; the heaviest first
	 * is what a person asking for N traces wants. */
	size_t n = 0;
	for (size_t i = 0; i < c.nsamples; i++)
		if (c.samples[i].kept && c.samples[i].v != 0 &&
		    c.samples[i].nlocs > 0)
			ids[n++] = (uint32_t)i;
	qsort_r(ids, n, sizeof(*ids), cmp_samples, c.samples);
	if (o->n > 0 && (size_t)o->n < n)
		n = (size_t)o->n;

	fprintf(out, "Type: %s\n", sample_type(o->index));
	for (size_t i = 0; i < n; i++) {
		const struct rsample *sm = &c.samples[ids[i]];
		char v[64];
		format_value(&c, v, sizeof(v), sm->v);
		fprintf(out, "%s\n", SEPARATOR);
		bool first = true;
		for (uint32_t li = 0; li < sm->nlocs; li++) {
			const struct rloc *l = &c.locs[sm->locs[li]];
			for (uint32_t k = 0; k < l->n; k++) {
				fprintf(out, "%10s   %s%s\n", first ? v : "",
					c.frames[l->first + k].func,
					k != l->n - 1 ? " (inline)" : "");
				first = false;
			}
		}
	}
	fprintf(out, "%s\n", SEPARATOR);
	rc = 0;
out:
	if (rc == -HD_ENOMEM)
		snprintf(err, errlen, "%s", hd_strerror(rc));
	free(ids);
	ctx_free(&c);
	return rc;
}

/* ---- list (report/source.go printSource) ---- */

static int cmp_line_nodes(const void *a, const void *b, void *arg)
{
	const struct rnode *nodes = arg;
	const struct rnode *l = &nodes[*(const uint32_t *)a];
	const struct rnode *r = &nodes[*(const uint32_t *)b];
	int c = strcmp(l->name, r->name);
	if (c)
		return c;
	c = strcmp(l->file ? l->file : "", r->file ? r->file : "");
	if (c)
		return c;
	if (l->start_line != r->start_line)
		return l->start_line < r->start_line ? -1 : 1;
	if (l->line != r->line)
		return l->line < r->line ? -1 : 1;
	return strcmp(l->module ? l->module : "", r->module ? r->module : "");
}

static void value_or_dot(const struct rctx *c, char *buf, size_t len,
			 int64_t v)
{
	if (v == 0)
		snprintf(buf, len, ".");
	else
		format_value(c, buf, len, v);
}

/* getSourceFromFile: the function's lines from its first line (or 5
 * before the first sampled line) to 5 after the last, stopping at the
 * end of the file.  fns are sorted by line. */
static void print_source_lines(FILE *out, const struct rctx *c,
			       const char *file, const uint32_t *fns,
			       size_t nfns)
{
	enum { MARGIN = 5 };
	const struct rnode *f0 = &c->nodes[fns[0]];
	int start = f0->start_line ? f0->start_line : f0->line - MARGIN;
	int end = f0->line + MARGIN;
	for (size_t i = 0; i < nfns; i++) {
		const struct rnode *nd = &c->nodes[fns[i]];
		int ns = nd->start_line ? nd->start_line : nd->line - MARGIN;
		int ne = nd->line + MARGIN;
		/* pprof's "else if": a node that moves the start does not
		 * move the end. */
		if (ns < start)
			start = ns;
		else if (ne > end)
			end = ne;
	}
	if (start < 1)
		start = 1;
	for (int line = start; line <= end; line++) {
		const char *text = c->o->source_line(c->o->ctx, file, line);
		if (!text)
			break;
		int64_t flat = 0, cum = 0;
		for (size_t i = 0; i < nfns; i++) {
			if (c->nodes[fns[i]].line == line) {
				flat += c->nodes[fns[i]].flat;
				cum += c->nodes[fns[i]].cum;
			}
		}
		char fv[64], cv[64];
		value_or_dot(c, fv, sizeof(fv), flat);
		value_or_dot(c, cv, sizeof(cv), cum);
		size_t tl = strlen(text);
		while (tl > 0 && text[tl - 1] == '\n')
			tl--;
		fprintf(out, "%10s %10s %6d:%.*s\n", fv, cv, line, (int)tl, text);
	}
}

static void print_file(FILE *out, const struct rctx *c, const char *name,
		       const uint32_t *fns, size_t nfns)
{
	const char *file = c->nodes[fns[0]].file;
	int64_t flat = 0, cum = 0;
	for (size_t i = 0; i < nfns; i++) {
		flat += c->nodes[fns[i]].flat;
		cum += c->nodes[fns[i]].cum;
	}
	char fv[64], cv[64], pct[16];
	format_value(c, fv, sizeof(fv), flat);
	format_value(c, cv, sizeof(cv), cum);
	percentage(pct, sizeof(pct), cum, c->total);
	fprintf(out, "ROUTINE ======================== %s in %s\n", name, file);
	fprintf(out, "%10s %10s (flat, cum) %s of Total\n", fv, cv, pct);
	/* A file that cannot be read at all is an error line, as pprof
	 * prints os.Open's error; lines past its end simply stop. */
	if (!c->o->source_line(c->o->ctx, file, 1)) {
		fprintf(out, " Error: open %s: no such file or directory\n",
			file);
		return;
	}
	print_source_lines(out, c, file, fns, nfns);
}

int hd_report_list(FILE *out, const struct hd_snap *s, const char *regex,
		   const struct hd_report_opts *o, char *err, size_t errlen)
{
	struct rctx c;
	uint32_t *ids = NULL;
	regex_t rx;
	bool have_rx = false;
	int rc = load(&c, s, o, err, errlen);
	if (rc)
		goto out;
	if ((rc = compile(&rx, "argument", regex, err, errlen)))
		goto out;
	have_rx = true;
	rc = -HD_ENOMEM;
	if (make_nodes(&c, BY_LINE) || build_graph(&c, false, false))
		goto out;
	ids = malloc((c.nnodes ? c.nnodes : 1) * sizeof(*ids));
	if (!ids)
		goto out;
	size_t n = 0;
	for (size_t i = 0; i < c.nnodes; i++)
		if (c.nodes[i].present && rx_match(&rx, c.nodes[i].name))
			ids[n++] = (uint32_t)i;
	if (n == 0) {
		snprintf(err, errlen, "no matches found for regexp: %s", regex);
		rc = -HD_ENOTFOUND;
		goto out;
	}
	/* Functions by name, then each function's files by name. */
	qsort_r(ids, n, sizeof(*ids), cmp_line_nodes, c.nodes);

	char tv[64];
	format_value(&c, tv, sizeof(tv), c.total);
	fprintf(out, "Total: %s\n", tv);
	for (size_t i = 0; i < n;) {
		const char *name = c.nodes[ids[i]].name;
		size_t j = i;
		while (j < n && !strcmp(c.nodes[ids[j]].name, name))
			j++;
		bool any_file = false;
		for (size_t k = i; k < j;) {
			const char *file = c.nodes[ids[k]].file;
			size_t m = k + 1;
			if (!file) {
				k = m;
				continue;
			}
			/* Nodes of one file, sorted by line for the range. */
			uint32_t *fns = ids + k;
			while (m < j && c.nodes[ids[m]].file &&
			       !strcmp(c.nodes[ids[m]].file, file))
				m++;
			size_t nf = m - k;
			for (size_t a = 1; a < nf; a++)
				for (size_t b = a; b > 0 &&
				     c.nodes[fns[b - 1]].line > c.nodes[fns[b]].line; b--) {
					uint32_t t = fns[b];
					fns[b] = fns[b - 1];
					fns[b - 1] = t;
				}
			any_file = true;
			print_file(out, &c, name, fns, nf);
			k = m;
		}
		if (!any_file)
			fprintf(out, "No source information for %s\n", name);
		i = j;
	}
	rc = 0;
out:
	if (rc == -HD_ENOMEM)
		snprintf(err, errlen, "%s", hd_strerror(rc));
	if (have_rx)
		regfree(&rx);
	free(ids);
	ctx_free(&c);
	return rc;
}
