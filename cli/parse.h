/* cli/parse: the words of a command line at the prompt, and the
 * pprof-style flags of top, list, traces and export.  Pure functions:
 * unit-tested in tests/unit/test_cli.c.
 */
#ifndef HD_CLI_PARSE_H
#define HD_CLI_PARSE_H

#include <stddef.h>

#include "../common/hd.h"
#include "../profile/profile.h"

/* Split `line` into words as a shell would, minus expansions: blanks
 * separate words; '...' is literal; "..." is literal except \" and \\;
 * outside quotes a backslash makes the next character literal; an
 * unquoted # at the start of a word starts a comment.  On success
 * *words is a NULL-terminated malloc'd array (free with
 * hd_cli_words_free) and *n its length (0 for a blank line).  Returns
 * -HD_EINVAL with a message in err for an unterminated quote. */
int hd_cli_tokenize(const char *line, char ***words, int *n, char *err,
		    size_t errlen) HD_MUST_CHECK;
void hd_cli_words_free(char **words);

/* 1 if `word` names command `name`: equal, or a prefix of it at least
 * `min` characters long (gdb-style abbreviations). */
int hd_cli_abbrev_match(const char *word, const char *name, size_t min);

enum hd_cli_report_kind {
	HD_CLI_TOP,
	HD_CLI_LIST,
	HD_CLI_TRACES,
	HD_CLI_EXPORT,
};

/* The arguments of a report command.  Strings point into the words
 * parsed. */
struct hd_cli_report_args {
	int n;                      /* top/traces N; 0 = the default */
	const char *regex;          /* list REGEX */
	const char *file;           /* export FILE (or DIR with -all) */
	const char *snapshot;       /* NULL = the profile as it is now */
	const char *base;           /* -base NAME */
	enum hd_sample_index index; /* default HD_INUSE_SPACE */
	int cum;                    /* -cum */
	const char *unit;           /* "B", "KB", "MB", "GB"; NULL = auto */
	const char *focus, *ignore; /* -focus=RE, -ignore=RE */
	int folded;                 /* export: -format=folded or *.folded */
	int all;                    /* export -all DIR */
};

/* Parse words[0..n) (the words after the command name).  Flags may come
 * before, between or after the positional arguments, as -flag or
 * --flag, with values as "-flag=V" or "-flag V".  For top and traces a
 * first positional that is a number is N.  On error returns -HD_EINVAL
 * with a message (without the command name) in err, e.g. "unknown flag
 * '-x'; see 'help top'". */
int hd_cli_parse_report_args(enum hd_cli_report_kind kind, char *const *words,
			     int n, struct hd_cli_report_args *out, char *err,
			     size_t errlen) HD_MUST_CHECK;

/* The flags a report command accepts, as typed ("-base", "-cum", ...),
 * NULL-terminated: for tab completion and help. */
const char *const *hd_cli_report_flags(enum hd_cli_report_kind kind);

#endif
