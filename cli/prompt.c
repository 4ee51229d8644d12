#include "prompt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "../common/hd.h"
#include "commands.h"
#include "session.h"

#define PROMPT "(heapdbg) "
#define HISTORY_MAX 1000

volatile sig_atomic_t hd_prompt_cancel;
volatile sig_atomic_t hd_prompt_quit_signal;

static volatile sig_atomic_t got_sigint, got_sigwinch;
static int sig_pipe[2] = {-1, -1};
static int interactive_mode;

/* ---- signals ---- */

/* Async-signal-safe: flags and a write to the self-pipe only. */
static void on_signal(int sig)
{
	int saved = errno;

	if (sig == SIGWINCH) {
		got_sigwinch = 1;
	} else if (sig != SIGPIPE) {
		hd_prompt_cancel = 1;
		if (sig == SIGINT && interactive_mode)
			got_sigint = 1;
		else
			hd_prompt_quit_signal = sig;
	}
	ssize_t w = write(sig_pipe[1], "s", 1);
	(void)w; /* a full pipe is readable already */
	errno = saved;
}

int hd_prompt_init_signals(int interactive)
{
	/* SIGPIPE gets a handler, not SIG_IGN: an ignored disposition
	 * would survive the exec of a program started with 'run'.  With
	 * it, a closed stdout is an EPIPE write, not a death that leaves
	 * the tracee patched. */
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH,
				   SIGPIPE};
	struct sigaction sa = {.sa_handler = on_signal,
			       .sa_flags = SA_RESTART};

	interactive_mode = interactive;
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -HD_EIO;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < HD_ARRAY_SIZE(sigs); i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -HD_EIO;
	return 0;
}

int hd_prompt_signal_fd(void)
{
	return sig_pipe[0];
}

void hd_prompt_drain_signals(void)
{
	char buf[64];

	while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
		;
}

/* ---- running commands ---- */

static int run_one(struct hd_cli *c, const char *line)
{
	hd_prompt_cancel = 0;
	int r = hd_cli_execute(c, line);
	fflush(stdout);
	/* A Ctrl-C that interrupted the command is spent: it must not
	 * also discard the next line. */
	got_sigint = 0;
	return r;
}

static int should_stop(const struct hd_cli *c)
{
	return c->finished || hd_prompt_quit_signal;
}

int hd_prompt_run_commands(struct hd_cli *c, char **cmds, size_t n)
{
	int failed = 0;
	char line[128];

	for (size_t i = 0; i < n && !should_stop(c); i++) {
		if (run_one(c, cmds[i]) < 0)
			failed++;
		if (hd_cli_exit_notice(c, line, sizeof(line)))
			printf("%s\n", line);
	}
	return failed;
}

/* ---- history ---- */

static char *history_path(void)
{
	const char *home = getenv("HOME");
	char *path;

	if (!home || !*home) {
		struct passwd *pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (!home || asprintf(&path, "%s/.heapdbg_history", home) < 0)
		return NULL;
	return path;
}

static void history_open(const char *path)
{
	/* Created 0600 before readline touches it: commands may name
	 * files and processes the user would rather keep private. */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	stifle_history(HISTORY_MAX);
	if (read_history(path) != 0)
		HD_DEBUG("cli", "cannot read %s", path);
}

static void history_add(const char *path, const char *line)
{
	HIST_ENTRY *last = history_length ? history_get(history_base +
							history_length - 1)
					  : NULL;

	if (!*line || (last && strcmp(last->line, line) == 0))
		return;
	add_history(line);
	if (path && append_history(1, path) != 0)
		HD_DEBUG("cli", "cannot append to %s", path);
}

/* ---- completion ---- */

static const char **cands; /* candidates of the completion in progress */
static size_t ncands;

static char *generate(const char *text, int state)
{
	static size_t i;
	size_t len = strlen(text);

	if (!state)
		i = 0;
	while (i < ncands) {
		const char *c = cands[i++];
		if (strncmp(c, text, len) == 0)
			return strdup(c);
	}
	return NULL;
}

static struct hd_cli *completing_cli;

static void add_cand(const char *s)
{
	const char **n = realloc(cands, (ncands + 1) * sizeof(*n));
	if (!n)
		return;
	cands = n;
	cands[ncands++] = s;
}

static void add_snapshots(void)
{
	const struct hd_snap *snaps[256];
	size_t n = hd_session_list(completing_cli->s, snaps,
				   HD_ARRAY_SIZE(snaps));

	/* Names stay valid: snapshots live until the session ends. */
	for (size_t i = 0; i < n && i < HD_ARRAY_SIZE(snaps); i++)
		add_cand(snaps[i]->name);
}

/* The words before the one being completed (blank-separated: good
 * enough to know the command and the previous word). */
static int words_before(int start, char *first, char *prev, size_t len,
			int *positionals)
{
	int n = 0;
	char *copy = strndup(rl_line_buffer, (size_t)start);
	char *save = NULL;

	first[0] = prev[0] = '\0';
	*positionals = 0;
	if (!copy)
		return 0;
	for (char *w = strtok_r(copy, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save)) {
		if (n == 0)
			snprintf(first, len, "%s", w);
		else if (w[0] != '-' && strcmp(prev, "-base") != 0)
			(*positionals)++;
		snprintf(prev, len, "%s", w);
		n++;
	}
	free(copy);
	return n;
}

static char **complete(const char *text, int start, int end)
{
	char first[64], prev[64];
	int positionals;
	enum hd_cli_report_kind kind = HD_CLI_TOP;

	(void)end;
	ncands = 0;
	rl_attempted_completion_over = 1; /* no file names unless asked */
	int n = words_before(start, first, prev, sizeof(first), &positionals);
	if (n == 0) {
		for (size_t i = 0; hd_cli_command_name(i); i++)
			add_cand(hd_cli_command_name(i));
		return rl_completion_matches(text, generate);
	}
	enum hd_cli_complete what = hd_cli_completion(first, &kind);
	if (strcmp(prev, "-base") == 0 && (what == HD_COMPLETE_REPORT ||
					   what == HD_COMPLETE_EXPORT)) {
		add_snapshots();
	} else if (text[0] == '-' && (what == HD_COMPLETE_REPORT ||
				      what == HD_COMPLETE_EXPORT)) {
		const char *const *f = hd_cli_report_flags(kind);
		for (; *f; f++)
			add_cand(*f);
	} else if (what == HD_COMPLETE_COMMAND && n == 1) {
		for (size_t i = 0; hd_cli_command_name(i); i++)
			add_cand(hd_cli_command_name(i));
	} else if (what == HD_COMPLETE_INFO && n == 1) {
		for (size_t i = 0; hd_cli_info_name(i); i++)
			add_cand(hd_cli_info_name(i));
	} else if (what == HD_COMPLETE_SNAPSHOT && n == 1) {
		add_snapshots();
	} else if (what == HD_COMPLETE_REPORT) {
		add_snapshots();
	} else if (what == HD_COMPLETE_EXPORT) {
		if (positionals == 0) {
			rl_attempted_completion_over = 0; /* FILE */
			return NULL;
		}
		add_snapshots();
	}
	return rl_completion_matches(text, generate);
}

/* ---- the terminal loop (readline's callback interface) ---- */

static char *pending_line;
static int got_line, installed;

static void on_line(char *line)
{
	got_line = 1;
	pending_line = line; /* NULL: end of input */
	/* Leave the prompt off the screen while the command runs. */
	rl_callback_handler_remove();
	installed = 0;
}

/* Print a line while the user may be typing, without mangling what is
 * being typed: clear it, print, redraw. */
static void print_async(const char *msg)
{
	if (!installed) {
		printf("%s\n", msg);
		fflush(stdout);
		return;
	}
	int point = rl_point;
	char *saved = rl_copy_text(0, rl_end);
	rl_save_prompt();
	rl_replace_line("", 0);
	rl_redisplay();
	printf("%s\n", msg);
	fflush(stdout);
	rl_restore_prompt();
	rl_replace_line(saved ? saved : "", 0);
	rl_point = point;
	rl_redisplay();
	free(saved);
}

/* Ctrl-C at the prompt: drop the line being typed, as gdb and bash do,
 * leaving it on the screen followed by ^C. */
static void discard_line(void)
{
	fputs("^C\n", stdout);
	fflush(stdout);
	rl_replace_line("", 0);
	rl_free_line_state();
	rl_callback_sigcleanup();
	rl_callback_handler_remove();
	installed = 0;
}

static void tty_loop(struct hd_cli *c)
{
	char *hist = history_path();
	char notice[128];

	if (hist)
		history_open(hist);
	rl_readline_name = "heapdbg";
	rl_attempted_completion_function = complete;
	completing_cli = c;
	/* Our handlers, not readline's: signals act in this loop. */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;

	while (!should_stop(c)) {
		if (!installed) {
			rl_callback_handler_install(PROMPT, on_line);
			installed = 1;
		}
		struct pollfd p[3] = {
			{.fd = 0, .events = POLLIN},
			{.fd = sig_pipe[0], .events = POLLIN},
			{.fd = hd_session_exit_fd(c->s), .events = POLLIN},
		};
		if (poll(p, 3, 200) < 0 && errno != EINTR)
			break;
		hd_prompt_drain_signals();
		if (hd_prompt_quit_signal)
			break;
		if (got_sigwinch) {
			got_sigwinch = 0;
			rl_resize_terminal();
		}
		if (got_sigint) {
			got_sigint = 0;
			hd_prompt_cancel = 0;
			discard_line();
			continue;
		}
		if (hd_cli_exit_notice(c, notice, sizeof(notice)))
			print_async(notice);
		if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
			rl_callback_read_char();
		if (!got_line)
			continue;
		got_line = 0;
		if (!pending_line)
			break; /* Ctrl-D: readline has ended the line */
		history_add(hist, pending_line);
		run_one(c, pending_line);
		free(pending_line);
		pending_line = NULL;
	}
	if (installed) {
		rl_callback_handler_remove();
		installed = 0;
	}
	if (hist)
		history_truncate_file(hist, HISTORY_MAX);
	free(hist);
	free(cands);
	cands = NULL;
}

/* ---- plain lines (stdin is not a terminal) ---- */

struct linebuf {
	char *buf;
	size_t len, cap;
	int eof;
};

/* Read what is available; returns -1 on a read error. */
static int fill(struct linebuf *lb)
{
	if (lb->cap - lb->len < 4096) {
		size_t cap = lb->cap ? 2 * lb->cap : 8192;
		char *b = realloc(lb->buf, cap);
		if (!b)
			return -1;
		lb->buf = b;
		lb->cap = cap;
	}
	ssize_t n = read(0, lb->buf + lb->len, lb->cap - lb->len - 1);
	if (n < 0)
		return errno == EINTR || errno == EAGAIN ? 0 : -1;
	if (n == 0)
		lb->eof = 1;
	lb->len += (size_t)n;
	return 0;
}

/* Run every complete line in the buffer (and the last, unterminated
 * one at end of input). */
static void run_lines(struct hd_cli *c, struct linebuf *lb)
{
	size_t off = 0;

	while (off < lb->len && !should_stop(c)) {
		char *nl = memchr(lb->buf + off, '\n', lb->len - off);
		if (!nl && !lb->eof)
			break;
		size_t end = nl ? (size_t)(nl - lb->buf) : lb->len;
		lb->buf[end] = '\0';
		run_one(c, lb->buf + off);
		off = nl ? end + 1 : lb->len;
	}
	if (off) { /* buf is NULL until the first read */
		memmove(lb->buf, lb->buf + off, lb->len - off);
		lb->len -= off;
	}
}

static void pipe_loop(struct hd_cli *c)
{
	struct linebuf lb = {0};
	char notice[128];

	while (!should_stop(c) && !lb.eof) {
		struct pollfd p[3] = {
			{.fd = 0, .events = POLLIN},
			{.fd = sig_pipe[0], .events = POLLIN},
			{.fd = hd_session_exit_fd(c->s), .events = POLLIN},
		};
		if (poll(p, 3, 200) < 0 && errno != EINTR)
			break;
		hd_prompt_drain_signals();
		if (hd_cli_exit_notice(c, notice, sizeof(notice))) {
			printf("%s\n", notice);
			fflush(stdout);
		}
		if (should_stop(c))
			break;
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    fill(&lb) < 0)
			break;
		run_lines(c, &lb);
	}
	free(lb.buf);
}

void hd_prompt_loop(struct hd_cli *c)
{
	if (c->interactive)
		tty_loop(c);
	else
		pipe_loop(c);
}
