/* The tracer against real processes, without the prompt: exact counts at
 * rate 1, the tracee's exit status unchanged, and every patched byte
 * restored after detach. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/maps.h"
#include "../../tracer/tracer.h"
#include "../unit/hd_test.h"

static char tracee[PATH_MAX], tracee_threads[PATH_MAX];

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

/* ---- attach and detach on a busy process ---- */

struct child {
	pid_t pid;
	int in, out; /* its stdin (write end), its stdout (read end) */
};

static void start_child(const char *path, struct child *c)
{
	int in[2], out[2];
	HD_ASSERT(pipe(in) == 0 && pipe(out) == 0);
	c->pid = fork();
	HD_ASSERT(c->pid >= 0);
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(path, path, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	c->out = out[0];
	char buf[16] = "";
	HD_ASSERT(read(c->out, buf, 6) == 6 && memcmp(buf, "ready\n", 6) == 0);
}

/* Every byte of every executable mapping of pid. */
struct image {
	size_t n;
	struct {
		uint64_t start;
		size_t len;
		uint8_t *bytes;
	} m[64];
};

static void read_image(pid_t pid, struct image *im)
{
	struct hd_maps maps;
	char fn[64];
	HD_ASSERT(hd_maps_read(pid, &maps) == 0);
	snprintf(fn, sizeof(fn), "/proc/%d/mem", pid);
	int fd = open(fn, O_RDONLY);
	HD_ASSERT(fd >= 0);
	im->n = 0;
	for (size_t i = 0; i < maps.n && im->n < 64; i++) {
		if (maps.v[i].perms[2] != 'x' || !maps.v[i].path ||
		    maps.v[i].path[0] != '/')
			continue;
		size_t len = maps.v[i].end - maps.v[i].start;
		uint8_t *b = malloc(len);
		HD_ASSERT(b && pread(fd, b, len, (off_t)maps.v[i].start) ==
				       (ssize_t)len);
		im->m[im->n].start = maps.v[i].start;
		im->m[im->n].len = len;
		im->m[im->n].bytes = b;
		im->n++;
	}
	close(fd);
	hd_maps_free(&maps);
}

static size_t image_diff(const struct image *a, const struct image *b)
{
	size_t d = 0;
	HD_ASSERT(a->n == b->n);
	for (size_t i = 0; i < a->n; i++) {
		HD_ASSERT(a->m[i].start == b->m[i].start &&
			  a->m[i].len == b->m[i].len);
		for (size_t j = 0; j < a->m[i].len; j++)
			d += a->m[i].bytes[j] != b->m[i].bytes[j];
	}
	return d;
}

/* Threads in a stopped state ('t' traced or 'T' stopped). */
static int stopped_threads(pid_t pid)
{
	char dir[64];
	int n = 0;
	snprintf(dir, sizeof(dir), "/proc/%d/task", pid);
	DIR *d = opendir(dir);
	HD_ASSERT(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		char fn[384], line[128];
		if (e->d_name[0] == '.')
			continue;
		snprintf(fn, sizeof(fn), "%s/%s/status", dir, e->d_name);
		FILE *f = fopen(fn, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "State:", 6) == 0 &&
			    strpbrk(line + 6, "tT"))
				n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

HD_TEST(attach_detach_restores_every_byte)
{
	struct child c;
	start_child(tracee_threads, &c);
	struct image before, after;
	read_image(c.pid, &before);
	for (int round = 0; round < 10; round++) {
		struct hd_prof *prof = hd_prof_new();
		struct hd_tracer_cfg cfg = {.rate = 1, .prof = prof};
		struct hd_tracer *t;
		char why[256];
		int err = hd_tracer_attach(c.pid, &cfg, &t, why, sizeof(why));
		if (err)
			fprintf(stderr, "attach: %s (%s)\n", hd_strerror(err),
				why);
		HD_ASSERT(err == 0);
		sleep_ms(100);
		struct hd_prof_totals tot;
		hd_prof_totals(prof, &tot);
		HD_EXPECT(tot.samples > 0);
		HD_EXPECT(hd_tracer_detach(t) == 0);
		hd_tracer_free(t);
		read_image(c.pid, &after);
		HD_EXPECT_EQ(image_diff(&before, &after), 0);
		HD_EXPECT_EQ(stopped_threads(c.pid), 0);
		hd_prof_free(prof);
	}
	close(c.in);
	char out[128] = "";
	ssize_t n = read(c.out, out, sizeof(out) - 1);
	HD_ASSERT(n > 0);
	out[n] = '\0';
	HD_EXPECT_STREQ(out, "children some failed 0\n");
	int st;
	HD_ASSERT(waitpid(c.pid, &st, 0) == c.pid);
	HD_EXPECT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv)
{
	if (argc < 3 || !realpath(argv[1], tracee) ||
	    !realpath(argv[2], tracee_threads)) {
		fprintf(stderr, "usage: test_tracer TRACEE TRACEE_THREADS\n");
		return 2;
	}
	hd_debug_init();
	return hd_test_main();
}
