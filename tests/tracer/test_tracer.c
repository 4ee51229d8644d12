/* The tracer against real processes, without the prompt: exact counts at
 * rate 1, the tracee's exit status unchanged, and every patched byte
 * restored after detach. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../common/maps.h"
#include "../../tracer/tracer.h"
#include "../unit/hd_test.h"

static char tracee[PATH_MAX];

/* Live at exit in tracee_basic (see its header comment). */
enum { LIVE_OBJECTS = 16, LIVE_BYTES = 6323 };
/* Allocation calls made from its code: 10 + 5 + 1 + 1 (calloc) + 3
 * (malloc + 2 realloc) + posix_memalign + strdup + reallocarray +
 * aligned_alloc. */
enum { ALLOC_OBJECTS = 24, ALLOC_BYTES = 1000 + 1000 + 0 + 100 + 50 + 300 +
					 700 + 4096 + 8 + 99 + 320 };

struct ctx {
	struct hd_prof *prof;
	struct hd_snap *exit_snap;
	int exiting_calls;
	uint64_t exe_start, exe_end; /* the tracee's text */
};

static void on_exiting(void *c, pid_t pid, int status)
{
	struct ctx *x = c;
	struct hd_maps m;
	(void)status;
	x->exiting_calls++;
	x->exit_snap = hd_prof_snapshot(x->prof, "exit", 0, 1);
	if (hd_maps_read(pid, &m) == 0) {
		for (size_t i = 0; i < m.n; i++)
			if (m.v[i].path && strcmp(m.v[i].path, tracee) == 0 &&
			    m.v[i].perms[2] == 'x') {
				x->exe_start = m.v[i].start;
				x->exe_end = m.v[i].end;
			}
		hd_maps_free(&m);
	}
}

/* Sum of the stacks that pass through the tracee's own code: its
 * allocations, not the C library's start-up ones. */
static struct hd_counts own(const struct ctx *x)
{
	struct hd_counts sum = {0};
	for (size_t i = 0; i < x->exit_snap->n; i++) {
		const struct hd_snap_entry *e = &x->exit_snap->entries[i];
		bool mine = false;
		for (uint32_t d = 0; d < e->stack->depth; d++)
			if (e->stack->pcs[d] >= x->exe_start &&
			    e->stack->pcs[d] < x->exe_end)
				mine = true;
		if (!mine)
			continue;
		sum.inuse_objects += e->counts.inuse_objects;
		sum.inuse_space += e->counts.inuse_space;
		sum.alloc_objects += e->counts.alloc_objects;
		sum.alloc_space += e->counts.alloc_space;
	}
	return sum;
}

static int quiet_stdout(void)
{
	int saved = dup(1), devnull = open("/dev/null", O_WRONLY);
	dup2(devnull, 1);
	close(devnull);
	return saved;
}

HD_TEST(run_exact_counts)
{
	struct ctx x = {.prof = hd_prof_new()};
	struct hd_tracer_cfg cfg = {
		.rate = 1,
		.prof = x.prof,
		.hooks = {.ctx = &x, .exiting = on_exiting},
	};
	char *argv[] = {tracee, NULL};
	struct hd_tracer *t;
	char why[256];
	int saved = quiet_stdout();
	int err = hd_tracer_run(argv, &cfg, &t, why, sizeof(why));
	dup2(saved, 1);
	if (err)
		fprintf(stderr, "run: %s (%s)\n", hd_strerror(err), why);
	HD_ASSERT(err == 0);
	int status = 0;
	HD_ASSERT(hd_tracer_wait_exit(t, 30, &status, NULL) == 1);
	HD_EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 3);
	HD_EXPECT_EQ(x.exiting_calls, 1);
	HD_ASSERT(x.exit_snap && x.exe_start);
	struct hd_counts c = own(&x);
	HD_EXPECT_EQ(c.inuse_objects, LIVE_OBJECTS);
	HD_EXPECT_EQ(c.inuse_space, LIVE_BYTES);
	HD_EXPECT_EQ(c.alloc_objects, ALLOC_OBJECTS);
	HD_EXPECT_EQ(c.alloc_space, ALLOC_BYTES);
	hd_tracer_free(t);
}

int main(int argc, char **argv)
{
	if (argc < 2 || !realpath(argv[1], tracee)) {
		fprintf(stderr, "usage: test_tracer TRACEE\n");
		return 2;
	}
	hd_debug_init();
	return hd_test_main();
}
