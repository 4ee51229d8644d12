#include "parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "units.h"


/* ---- words ---- */

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Scan one word starting at *pp (not blank, not NUL) into out (large
 * enough: a word is never longer than the line).  Returns 0, or
 * -HD_EINVAL for an unterminated quote. */
static int scan_word(const char **pp, char *out, char *err, size_t errlen)
{
	const char *p = *pp;
	char *o = out;

	while (*p && !is_blank(*p)) {
		char q = *p;
		if (q == '\'' || q == '"') {
			p++;
			while (*p && *p != q) {
				if (q == '"' && *p == '\\' &&
				    (p[1] == '"' || p[1] == '\\'))
					p++;
				*o++ = *p++;
			}
			if (!*p) {
				hd_seterr(err, errlen, "unterminated %s quote",
				       q == '"' ? "double" : "single");
				return -HD_EINVAL;
			}
			p++;
		} else if (q == '\\' && p[1]) {
			*o++ = p[1];
			p += 2;
		} else {
			*o++ = *p++;
		}
	}
	*o = '\0';
	*pp = p;
	return 0;
}

int hd_cli_tokenize(const char *line, char ***words, int *n, char *err,
		    size_t errlen)
{
	size_t cap = 8, cnt = 0;
	char **w = calloc(cap, sizeof(*w));
	char *buf = malloc(strlen(line) + 1);
	const char *p = line;
	int r = -HD_ENOMEM;

	if (!w || !buf)
		goto fail;
	for (;;) {
		while (is_blank(*p))
			p++;
		if (!*p || *p == '#')
			break;
		r = scan_word(&p, buf, err, errlen);
		if (r < 0)
			goto fail;
		if (cnt + 2 > cap) {
			char **nw = realloc(w, 2 * cap * sizeof(*w));
			r = -HD_ENOMEM;
			if (!nw)
				goto fail;
			w = nw;
			cap *= 2;
		}
		r = -HD_ENOMEM;
		w[cnt] = strdup(buf);
		if (!w[cnt])
			goto fail;
		w[++cnt] = NULL;
	}
	free(buf);
	*words = w;
	*n = (int)cnt;
	return 0;
fail:
	if (r == -HD_ENOMEM)
		hd_seterr(err, errlen, "%s", hd_strerror(r));
	free(buf);
	hd_cli_words_free(w);
	return r;
}

void hd_cli_words_free(char **words)
{
	if (!words)
		return;
	for (char **w = words; *w; w++)
		free(*w);
	free(words);
}

int hd_cli_abbrev_match(const char *word, const char *name, size_t min)
{
	size_t len = strlen(word);

	if (strcmp(word, name) == 0)
		return 1;
	return len >= min && len < strlen(name) &&
	       strncmp(word, name, len) == 0;
}

/* ---- report flags ---- */

enum flag_id {
	F_BASE,
	F_INUSE_SPACE,
	F_INUSE_OBJECTS,
	F_ALLOC_SPACE,
	F_ALLOC_OBJECTS,
	F_CUM,
	F_UNIT,
	F_FOCUS,
	F_IGNORE,
	F_FORMAT,
	F_ALL,
};

#define K_REPORTS (1u << HD_CLI_TOP | 1u << HD_CLI_LIST | 1u << HD_CLI_TRACES)
#define K_EXPORT (1u << HD_CLI_EXPORT)
#define K_ALL (K_REPORTS | K_EXPORT)

static const struct flag {
	const char *name; /* without the dash */
	enum flag_id id;
	int has_value;
	unsigned kinds; /* bit per enum hd_cli_report_kind */
} flags[] = {
	{"base", F_BASE, 1, K_ALL},
	{"inuse_space", F_INUSE_SPACE, 0, K_ALL},
	{"inuse_objects", F_INUSE_OBJECTS, 0, K_ALL},
	{"alloc_space", F_ALLOC_SPACE, 0, K_ALL},
	{"alloc_objects", F_ALLOC_OBJECTS, 0, K_ALL},
	{"cum", F_CUM, 0, K_REPORTS},
	{"unit", F_UNIT, 1, K_REPORTS},
	{"focus", F_FOCUS, 1, K_REPORTS},
	{"ignore", F_IGNORE, 1, K_REPORTS},
	{"format", F_FORMAT, 1, K_EXPORT},
	{"all", F_ALL, 0, K_EXPORT},
};

static const char *const kind_name[] = {"top", "list", "traces", "export"};

const char *const *hd_cli_report_flags(enum hd_cli_report_kind kind)
{
	/* One list per kind, built from the table once. */
	static const char *lists[4][HD_ARRAY_SIZE(flags) + 1];
	static char names[HD_ARRAY_SIZE(flags)][24];
	static int built;

	if (!built) {
		for (size_t i = 0; i < HD_ARRAY_SIZE(flags); i++)
			snprintf(names[i], sizeof(names[i]), "-%s",
				 flags[i].name);
		for (int k = 0; k < 4; k++) {
			size_t m = 0;
			for (size_t i = 0; i < HD_ARRAY_SIZE(flags); i++)
				if (flags[i].kinds & (1u << k))
					lists[k][m++] = names[i];
			lists[k][m] = NULL;
		}
		built = 1;
	}
	return lists[kind];
}

static const struct flag *find_flag(const char *name, size_t len,
				    enum hd_cli_report_kind kind)
{
	for (size_t i = 0; i < HD_ARRAY_SIZE(flags); i++)
		if (strlen(flags[i].name) == len &&
		    strncmp(flags[i].name, name, len) == 0 &&
		    (flags[i].kinds & (1u << kind)))
			return &flags[i];
	return NULL;
}

static int parse_unit(const char *v, const char **out)
{
	static const char *const units[] = {"B", "KB", "MB", "GB"};

	if (strcasecmp(v, "auto") == 0) {
		*out = NULL;
		return 0;
	}
	for (size_t i = 0; i < HD_ARRAY_SIZE(units); i++)
		if (strcasecmp(v, units[i]) == 0) {
			*out = units[i];
			return 0;
		}
	return -HD_EINVAL;
}

static int apply_flag(const struct flag *f, const char *v,
		      struct hd_cli_report_args *a, char *err, size_t errlen)
{
	switch (f->id) {
	case F_BASE:
		a->base = v;
		break;
	case F_INUSE_SPACE:
		a->index = HD_INUSE_SPACE;
		break;
	case F_INUSE_OBJECTS:
		a->index = HD_INUSE_OBJECTS;
		break;
	case F_ALLOC_SPACE:
		a->index = HD_ALLOC_SPACE;
		break;
	case F_ALLOC_OBJECTS:
		a->index = HD_ALLOC_OBJECTS;
		break;
	case F_CUM:
		a->cum = 1;
		break;
	case F_UNIT:
		if (parse_unit(v, &a->unit) < 0) {
			hd_seterr(err, errlen,
			       "bad unit '%s': expected B, KB, MB, GB or auto",
			       v);
			return -HD_EINVAL;
		}
		break;
	case F_FOCUS:
		a->focus = v;
		break;
	case F_IGNORE:
		a->ignore = v;
		break;
	case F_FORMAT:
		if (strcmp(v, "folded") == 0) {
			a->folded = 1;
		} else if (strcmp(v, "pprof") == 0 || strcmp(v, "proto") == 0) {
			a->folded = 0;
		} else {
			hd_seterr(err, errlen,
			       "bad format '%s': expected pprof or folded", v);
			return -HD_EINVAL;
		}
		break;
	case F_ALL:
		a->all = 1;
		break;
	}
	return 0;
}

/* words[*i] starts with '-': parse it (and its value word, if any). */
static int parse_flag(enum hd_cli_report_kind kind, char *const *words,
		      int n, int *i, struct hd_cli_report_args *a, char *err,
		      size_t errlen)
{
	const char *w = words[*i];
	const char *name = w + (w[1] == '-' ? 2 : 1);
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct flag *f = find_flag(name, len, kind);
	const char *v = NULL;

	if (!f || (eq && !f->has_value)) {
		hd_seterr(err, errlen, "unknown flag '%s'; see 'help %s'", w,
		       kind_name[kind]);
		return -HD_EINVAL;
	}
	if (f->has_value) {
		if (eq) {
			v = eq + 1;
		} else if (*i + 1 < n) {
			v = words[++*i];
		}
		if (!v || !*v) {
			hd_seterr(err, errlen, "flag -%s needs a value; see 'help %s'",
			       f->name, kind_name[kind]);
			return -HD_EINVAL;
		}
	}
	return apply_flag(f, v, a, err, errlen);
}

/* A positional argument, in the order the command's usage gives them. */
static int parse_positional(enum hd_cli_report_kind kind, const char *w,
			    struct hd_cli_report_args *a, int *seen, char *err,
			    size_t errlen)
{
	switch (kind) {
	case HD_CLI_TOP:
	case HD_CLI_TRACES:
		if (*seen == 0 && hd_cli_parse_count(w, &a->n) == 0) {
			*seen = 1;
			return 0;
		}
		if (*seen < 2) {
			a->snapshot = w;
			*seen = 2;
			return 0;
		}
		break;
	case HD_CLI_LIST:
		if (*seen == 0) {
			a->regex = w;
			*seen = 1;
			return 0;
		}
		if (*seen == 1) {
			a->snapshot = w;
			*seen = 2;
			return 0;
		}
		break;
	case HD_CLI_EXPORT:
		if (*seen == 0) {
			a->file = w;
			*seen = 1;
			return 0;
		}
		if (*seen == 1) {
			a->snapshot = w;
			*seen = 2;
			return 0;
		}
		break;
	}
	hd_seterr(err, errlen, "unexpected argument '%s'; see 'help %s'", w,
	       kind_name[kind]);
	return -HD_EINVAL;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int hd_cli_parse_report_args(enum hd_cli_report_kind kind, char *const *words,
			     int n, struct hd_cli_report_args *out, char *err,
			     size_t errlen)
{
	struct hd_cli_report_args a = {.index = HD_INUSE_SPACE};
	int seen = 0, format_given = 0;

	for (int i = 0; i < n; i++) {
		const char *w = words[i];
		int r;
		/* "--x" is a flag too; a lone "-" is an unknown one. */
		if (w[0] == '-') {
			r = parse_flag(kind, words, n, &i, &a, err, errlen);
			if (strncmp(w + (w[1] == '-'), "-format", 7) == 0)
				format_given = 1;
		} else {
			r = parse_positional(kind, w, &a, &seen, err, errlen);
		}
		if (r < 0)
			return r;
	}
	if (kind == HD_CLI_LIST && !a.regex) {
		hd_seterr(err, errlen, "missing REGEX; see 'help list'");
		return -HD_EINVAL;
	}
	if (kind == HD_CLI_EXPORT) {
		if (!a.file) {
			hd_seterr(err, errlen, "missing %s; see 'help export'",
			       a.all ? "DIR" : "FILE");
			return -HD_EINVAL;
		}
		if (a.all && a.snapshot) {
			hd_seterr(err, errlen,
			       "-all writes every snapshot; unexpected "
			       "argument '%s'",
			       a.snapshot);
			return -HD_EINVAL;
		}
		if (!format_given && !a.all && has_suffix(a.file, ".folded"))
			a.folded = 1;
	}
	*out = a;
	return 0;
}
