/* cli/commands: the commands at the (heapdbg) prompt, in one table (name,
 * shortest abbreviation, usage, help, handler).  Output goes to stdout;
 * every error is one line on stderr and makes the command count as
 * failed (for -batch). */
#ifndef HD_COMMANDS_H
#define HD_COMMANDS_H

#include <stddef.h>

#include "parse.h"

struct hd_session;

struct hd_cli {
	struct hd_session *s;
	int quiet;       /* -q: no banner, no farewell line */
	int interactive; /* stdin is a terminal */
	int finished;    /* a command ended the session (detach, quit) */
	int failed;      /* commands that failed so far */
};

/* Run one command line.  Returns 0, or -1 if it failed (message already
 * printed). */
int hd_cli_execute(struct hd_cli *c, const char *line);

/* 1 and the "[process N exited ...]" line in buf if the process has just
 * been seen to exit (once per session). */
int hd_cli_exit_notice(struct hd_cli *c, char *buf, size_t len);

/* End the session as end of input does: detach (attach mode) or kill
 * (run mode) a process still running.  Returns 0 or -1. */
int hd_cli_finish(struct hd_cli *c);

/* ---- for tab completion ---- */

enum hd_cli_complete {
	HD_COMPLETE_NONE,
	HD_COMPLETE_SNAPSHOT, /* snapshot names */
	HD_COMPLETE_REPORT,   /* flags of report kind, snapshot names */
	HD_COMPLETE_EXPORT,   /* flags, file names, snapshot names */
	HD_COMPLETE_INFO,     /* info subcommands */
	HD_COMPLETE_COMMAND,  /* command names (help) */
};

/* The i-th command name, or NULL past the end. */
const char *hd_cli_command_name(size_t i);
/* The i-th info subcommand, or NULL past the end. */
const char *hd_cli_info_name(size_t i);
/* What the arguments of command `word` (as typed, abbreviations
 * allowed) complete to; *kind is set for REPORT and EXPORT. */
enum hd_cli_complete hd_cli_completion(const char *word,
				       enum hd_cli_report_kind *kind);

#endif
