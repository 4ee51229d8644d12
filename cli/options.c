#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../profile/profile.h"
#include "units.h"

const char hd_cli_usage_text[] =
	"Usage: heapdbg [OPTIONS] attach PID\n"
	"       heapdbg [OPTIONS] run [--] PROGRAM [ARGS...]\n"
	"\n"
	"Attach to a running process (or start one), sample its heap\n"
	"allocations, and answer pprof-style questions at a prompt.\n"
	"\n"
	"Options:\n"
	"  -r, --rate=BYTES  mean sampling interval in bytes (default 512k;\n"
	"                    k, m, g suffixes; 1 records every allocation)\n"
	"      --level=0     breakpoints only: a stop in every allocator call\n"
	"                    (slow; the default is the in-process agent)\n"
	"  -ex CMD           run CMD at the prompt (repeatable, in order)\n"
	"  -x FILE           run the commands in FILE, one per line\n"
	"  -batch            run the -ex/-x commands, then detach (or kill,\n"
	"                    after run) and exit; exit status 1 if any\n"
	"                    command failed\n"
	"  -q                do not print the banner\n"
	"  -h, --help        show this help and exit\n"
	"      --version     show the version and exit\n"
	"\n"
	"Type 'help' at the (heapdbg) prompt for its commands.\n";


static int add_script(struct hd_cli_options *o, int is_file, const char *text)
{
	struct hd_cli_script *s =
		realloc(o->scripts, (o->nscripts + 1) * sizeof(*s));
	if (!s)
		return -HD_ENOMEM;
	o->scripts = s;
	s[o->nscripts++] = (struct hd_cli_script){is_file, text};
	return 0;
}

/* Long option names, taken with one or two dashes. */
enum opt_id { O_RATE, O_LEVEL, O_EX, O_X, O_BATCH, O_QUIET, O_HELP,
	      O_VERSION };

static const struct opt {
	const char *name;
	enum opt_id id;
	int has_value;
} opts[] = {
	{"r", O_RATE, 1},	  {"rate", O_RATE, 1},
	{"level", O_LEVEL, 1},
	{"ex", O_EX, 1},	  {"eval-command", O_EX, 1},
	{"x", O_X, 1},		  {"command", O_X, 1},
	{"batch", O_BATCH, 0},	  {"q", O_QUIET, 0},
	{"quiet", O_QUIET, 0},	  {"silent", O_QUIET, 0},
	{"h", O_HELP, 0},	  {"help", O_HELP, 0},
	{"version", O_VERSION, 0},
};

static const struct opt *find_opt(const char *name, size_t len)
{
	for (size_t i = 0; i < HD_ARRAY_SIZE(opts); i++)
		if (strlen(opts[i].name) == len &&
		    strncmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

static int apply_opt(const struct opt *op, const char *v,
		     struct hd_cli_options *o, char *err, size_t errlen)
{
	switch (op->id) {
	case O_RATE:
		if (hd_cli_parse_rate(v, &o->rate) < 0) {
			hd_seterr(err, errlen, "bad rate '%s': %s", v,
			       HD_CLI_RATE_HINT);
			o->usage_hint = 0;
			return -HD_EINVAL;
		}
		return 0;
	case O_LEVEL:
		/* 0: breakpoints; 2: the agent where it can (the default) */
		if (strcmp(v, "0") != 0 && strcmp(v, "2") != 0) {
			hd_seterr(err, errlen,
			       "bad level '%s': 0 (breakpoints) or 2 (agent)",
			       v);
			return -HD_EINVAL;
		}
		o->level0 = v[0] == '0';
		return 0;
	case O_EX:
		return add_script(o, 0, v);
	case O_X:
		return add_script(o, 1, v);
	case O_BATCH:
		o->batch = 1;
		return 0;
	case O_QUIET:
		o->quiet = 1;
		return 0;
	case O_HELP:
		o->action = HD_CLI_HELP;
		return 0;
	case O_VERSION:
		o->action = HD_CLI_VERSION;
		return 0;
	}
	return -HD_EINTERNAL;
}

/* argv[*i] starts with '-'.  Handles "-name", "--name", "-name=V",
 * "-name V", and "-rBYTES" (the one short option with a glued value). */
static int parse_opt(int argc, char **argv, int *i, struct hd_cli_options *o,
		     char *err, size_t errlen)
{
	const char *w = argv[*i];
	const char *name = w + (w[1] == '-' ? 2 : 1);
	const char *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	const struct opt *op = find_opt(name, len);
	const char *v = NULL;

	if (!op && w[1] == 'r' && isdigit((unsigned char)w[2])) {
		op = find_opt("r", 1);
		v = w + 2;
	} else if (!op || (eq && !op->has_value)) {
		hd_seterr(err, errlen, "unrecognized option '%s'", w);
		return -HD_EINVAL;
	} else if (op->has_value) {
		if (eq)
			v = eq + 1;
		else if (*i + 1 < argc)
			v = argv[++*i];
		else {
			hd_seterr(err, errlen, "option '%s' requires an argument",
			       w);
			return -HD_EINVAL;
		}
	}
	int r = apply_opt(op, v, o, err, errlen);
	if (r == -HD_ENOMEM)
		hd_seterr(err, errlen, "%s", hd_strerror(r));
	return r;
}

/* A pid is a positive decimal number, like a count. */
static int parse_pid(const char *s, pid_t *out)
{
	int v;

	if (hd_cli_parse_count(s, &v) < 0)
		return -HD_EINVAL;
	*out = (pid_t)v;
	return 0;
}

int hd_cli_parse_options(int argc, char **argv, struct hd_cli_options *o,
			 char *err, size_t errlen)
{
	int i, r, have_cmd = 0;

	*o = (struct hd_cli_options){.rate = HD_DEFAULT_RATE,
				     .action = HD_CLI_ATTACH,
				     .usage_hint = 1};
	for (i = 1; i < argc; i++) {
		const char *w = argv[i];
		if (w[0] == '-' && w[1] != '\0') {
			r = parse_opt(argc, argv, &i, o, err, errlen);
			if (r < 0)
				goto fail;
			continue;
		}
		if (have_cmd) {
			hd_seterr(err, errlen, "unexpected argument '%s'", w);
			goto inval;
		}
		if (strcmp(w, "attach") == 0) {
			if (i + 1 >= argc) {
				hd_seterr(err, errlen, "attach: missing PID");
				goto inval;
			}
			if (parse_pid(argv[++i], &o->pid) < 0) {
				hd_seterr(err, errlen,
				       "bad process id '%s': expected a positive "
				       "number",
				       argv[i]);
				o->usage_hint = 0;
				goto inval;
			}
			have_cmd = 1;
			continue;
		}
		if (strcmp(w, "run") == 0) {
			i++;
			if (i < argc && strcmp(argv[i], "--") == 0)
				i++;
			if (i >= argc) {
				hd_seterr(err, errlen, "run: missing PROGRAM");
				goto inval;
			}
			o->argv = &argv[i];
			have_cmd = 2;
			break; /* the rest is the program's */
		}
		hd_seterr(err, errlen,
		       "unknown command '%s': expected 'attach PID' or 'run "
		       "PROGRAM'",
		       w);
		goto inval;
	}
	o->usage_hint = 0;
	if (o->action == HD_CLI_HELP || o->action == HD_CLI_VERSION)
		return 0;
	if (!have_cmd) {
		hd_seterr(err, errlen, "missing 'attach PID' or 'run PROGRAM'");
		o->usage_hint = 1;
		goto inval;
	}
	o->action = have_cmd == 1 ? HD_CLI_ATTACH : HD_CLI_RUN;
	return 0;
inval:
	r = -HD_EINVAL;
fail:
	hd_cli_options_free(o);
	return r;
}

void hd_cli_options_free(struct hd_cli_options *o)
{
	free(o->scripts);
	o->scripts = NULL;
	o->nscripts = 0;
}

static char *trim(char *s)
{
	size_t n = strlen(s);

	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

int hd_cli_read_script(const char *path, char ***lines, size_t *n, char *err,
		       size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	int r = 0;

	if (!f) {
		hd_seterr(err, errlen, "cannot read %s: %s", path,
		       strerror(errno));
		return -HD_EIO;
	}
	while (getline(&line, &cap, f) >= 0) {
		char *t = trim(line);
		if (!*t || *t == '#')
			continue;
		char **nl = realloc(*lines, (*n + 1) * sizeof(**lines));
		char *copy = strdup(t);
		if (nl)
			*lines = nl;
		if (!nl || !copy) {
			free(copy);
			hd_seterr(err, errlen, "cannot read %s: %s", path,
			       hd_strerror(-HD_ENOMEM));
			r = -HD_ENOMEM;
			break;
		}
		(*lines)[(*n)++] = copy;
	}
	if (!r && ferror(f)) {
		hd_seterr(err, errlen, "cannot read %s: %s", path,
		       strerror(errno));
		r = -HD_EIO;
	}
	free(line);
	fclose(f);
	return r;
}
