/* cli/options: the heapdbg command line (gdb-style options), and the
 * command files given with -x.  Pure parsing: unit-tested in
 * tests/unit/test_cli.c.
 */
#ifndef HD_CLI_OPTIONS_H
#define HD_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/hd.h"

enum hd_cli_action {
	HD_CLI_ATTACH,
	HD_CLI_RUN,
	HD_CLI_HELP,
	HD_CLI_VERSION,
};

/* One -ex CMD or -x FILE, in command-line order. */
struct hd_cli_script {
	int is_file;
	const char *text; /* the command, or the file's path */
};

struct hd_cli_options {
	enum hd_cli_action action;
	uint64_t rate;
	int level0; /* --level=0: breakpoints only */
	int batch, quiet;
	struct hd_cli_script *scripts; /* malloc'd */
	size_t nscripts;
	pid_t pid;   /* attach */
	char **argv; /* run: PROGRAM ARGS..., NULL-terminated, points into
			the argv given */
	int usage_hint; /* after an error: 1 if "Try 'heapdbg --help'"
			   helps; 0 when the message already says what is
			   expected (a bad rate or pid) */
};

/* Parse argv[1..argc).  Options: -r BYTES, -rBYTES, --rate=BYTES,
 * -rate=BYTES, --rate BYTES; -ex CMD (--ex, --eval-command[=]CMD);
 * -x FILE (--command[=]FILE); -batch; -q (-quiet, -silent); -h/--help;
 * --version; long options take one or two dashes, as in gdb.  Then
 * "attach PID" (options may follow the PID) or "run [--] PROGRAM
 * [ARGS...]".  Returns 0, or -HD_EINVAL with a one-line message (without
 * the "heapdbg: " prefix) in err. */
int hd_cli_parse_options(int argc, char **argv, struct hd_cli_options *o,
			 char *err, size_t errlen) HD_MUST_CHECK;
void hd_cli_options_free(struct hd_cli_options *o);

/* The commands of a -x file, in order: lines with surrounding blanks
 * removed, blank lines and lines starting with # skipped.  *lines is a
 * malloc'd array of malloc'd strings; append to it (so -ex and -x
 * commands can be gathered in one list).  Returns 0, or -HD_EIO with
 * "cannot read FILE: reason" in err. */
int hd_cli_read_script(const char *path, char ***lines, size_t *n, char *err,
		       size_t errlen) HD_MUST_CHECK;

/* The text of `heapdbg --help`. */
extern const char hd_cli_usage_text[];

#endif
