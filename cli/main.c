/* heapdbg: find heap growth and leaks in a running process.
 *
 *     heapdbg [OPTIONS] attach PID
 *     heapdbg [OPTIONS] run [--] PROGRAM [ARGS...]
 *
 * Exit status: 0; 1 if attaching or starting failed, or (with -batch) if
 * a command failed; 2 for usage errors.  After SIGTERM, SIGHUP (or
 * SIGINT when standard input is not a terminal) heapdbg detaches, then
 * dies of that signal, so whoever sent it sees it worked.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/hd.h"
#include "../tracer/tracer.h"
#include "commands.h"
#include "options.h"
#include "prompt.h"
#include "session.h"
#include "units.h"

#define HD_VERSION "0.1.0"

static int usage_error(const char *msg, int hint)
{
	fprintf(stderr, "heapdbg: %s\n", msg);
	if (hint)
		fprintf(stderr, "Try 'heapdbg --help'.\n");
	return 2;
}

/* -ex and -x commands, in command-line order. */
static int gather_commands(const struct hd_cli_options *o, char ***cmds,
			   size_t *n)
{
	char err[512];

	*cmds = NULL;
	*n = 0;
	for (size_t i = 0; i < o->nscripts; i++) {
		const struct hd_cli_script *sc = &o->scripts[i];
		if (sc->is_file) {
			if (hd_cli_read_script(sc->text, cmds, n, err,
					       sizeof(err)) < 0) {
				fprintf(stderr, "heapdbg: %s\n", err);
				return -1;
			}
			continue;
		}
		char **c = realloc(*cmds, (*n + 1) * sizeof(*c));
		if (!c || !(c[*n] = strdup(sc->text))) {
			if (c)
				*cmds = c;
			fprintf(stderr, "heapdbg: %s\n",
				hd_strerror(-HD_ENOMEM));
			return -1;
		}
		*cmds = c;
		(*n)++;
	}
	return 0;
}

static void free_commands(char **cmds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(cmds[i]);
	free(cmds);
}

static void banner(struct hd_session *s)
{
	char rate[96];
	struct hd_tracer_stats ts;

	hd_cli_describe_rate(rate, sizeof(rate), hd_session_rate(s));
	if (hd_session_run_mode(s)) {
		printf("started %d (%s), %s\n", (int)hd_session_pid(s),
		       hd_session_comm(s), rate);
		return;
	}
	hd_tracer_stats(hd_session_tracer(s), &ts);
	printf("attached to %d (%s), %d thread%s, %s\n",
	       (int)hd_session_pid(s), hd_session_comm(s), ts.threads,
	       ts.threads == 1 ? "" : "s", rate);
}

/* The tracer thread must be the only one to see SIGCHLD (it reads a
 * signalfd), and our handlers must run on this thread, where the loop
 * that acts on them is: block them all before the tracer thread is
 * created (it inherits the mask), then unblock ours here. */
static void block_signals(sigset_t *ours)
{
	sigset_t all;

	sigemptyset(ours);
	sigaddset(ours, SIGINT);
	sigaddset(ours, SIGTERM);
	sigaddset(ours, SIGHUP);
	sigaddset(ours, SIGWINCH);
	sigaddset(ours, SIGPIPE);
	all = *ours;
	sigaddset(&all, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
}

static int start(const struct hd_cli_options *o, struct hd_session **s)
{
	char err[1024];
	struct hd_session_opts so = {.rate = o->rate, .level0 = o->level0};
	int r;

	if (o->action == HD_CLI_ATTACH)
		r = hd_session_attach(o->pid, &so, s, err, sizeof(err));
	else
		r = hd_session_run(o->argv, &so, s, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "heapdbg: %s\n", err);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct hd_cli_options o;
	char err[512];
	char **cmds;
	size_t ncmds;
	sigset_t ours;
	int status = 0;

	if (hd_cli_parse_options(argc, argv, &o, err, sizeof(err)) < 0)
		return usage_error(err, o.usage_hint);
	if (o.action == HD_CLI_HELP) {
		fputs(hd_cli_usage_text, stdout);
		return 0;
	}
	if (o.action == HD_CLI_VERSION) {
		printf("heapdbg " HD_VERSION "\n");
		return 0;
	}
	hd_debug_init();
	/* Line-buffered even into a pipe: replies interleave with stderr
	 * errors in the order the commands ran. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (gather_commands(&o, &cmds, &ncmds) < 0) {
		hd_cli_options_free(&o);
		return 1;
	}

	struct hd_cli c = {.quiet = o.quiet, .interactive = isatty(0)};
	/* With -batch nobody is typing: Ctrl-C means stop, as in scripts. */
	if (hd_prompt_init_signals(c.interactive && !o.batch) < 0) {
		fprintf(stderr, "heapdbg: cannot set up signal handling\n");
		status = 1;
		goto out;
	}
	block_signals(&ours);
	int r = start(&o, &c.s);
	pthread_sigmask(SIG_UNBLOCK, &ours, NULL);
	if (r < 0) {
		status = 1;
		goto out;
	}
	if (!o.quiet)
		banner(c.s);

	int failed = hd_prompt_run_commands(&c, cmds, ncmds);
	if (!o.batch)
		hd_prompt_loop(&c);
	if (hd_cli_finish(&c) < 0)
		failed++;
	if (o.batch && (failed || c.failed))
		status = 1;
	hd_session_free(c.s);
out:
	free_commands(cmds, ncmds);
	hd_cli_options_free(&o);
	fflush(stdout);
	if (hd_prompt_quit_signal) {
		int sig = hd_prompt_quit_signal;
		signal(sig, SIG_DFL);
		raise(sig);
	}
	return status;
}
