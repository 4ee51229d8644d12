/* cli/prompt: reading commands (GNU readline on a terminal, plain lines
 * otherwise), signals, and printing while the user types.
 *
 * Signal handlers only set the flags below and write to a self-pipe;
 * everything else happens in the main loop.
 */
#ifndef HD_PROMPT_H
#define HD_PROMPT_H

#include <signal.h>

struct hd_cli;

/* Set by SIGINT, SIGTERM and SIGHUP: the running command (watch, sleep,
 * wait) stops.  Cleared before each command. */
extern volatile sig_atomic_t hd_prompt_cancel;
/* The signal that asks heapdbg to detach and exit: SIGTERM, SIGHUP, or
 * SIGINT when standard input is not a terminal.  0 if none. */
extern volatile sig_atomic_t hd_prompt_quit_signal;

/* Install the handlers; `interactive`: stdin is a terminal (then SIGINT
 * only interrupts).  Returns 0 or -HD_E*. */
int hd_prompt_init_signals(int interactive);
/* Readable after any of our signals arrived (drained by the loops). */
int hd_prompt_signal_fd(void);
void hd_prompt_drain_signals(void);

/* Run the -ex/-x commands in order (stopping early if one ends the
 * session or a quit signal arrives).  Returns the number that failed. */
int hd_prompt_run_commands(struct hd_cli *c, char **cmds, size_t n);
/* Read and run commands from standard input until end of input, a
 * command that ends the session, or a quit signal. */
void hd_prompt_loop(struct hd_cli *c);

#endif
