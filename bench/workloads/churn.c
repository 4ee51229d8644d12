/* churn: a window of live blocks constantly replaced, with a slow leak.
 *
 * Each op picks a random slot of the thread's window, frees the block
 * there (or, one time in LEAK_EVERY, leaks it instead), allocates a new
 * block of a size log-uniform between 16 B and 4 KiB and writes every
 * byte of it.  N ops in all, split evenly between the threads; each
 * thread has its own window of WINDOW/threads slots, so the process keeps
 * about WINDOW blocks (~48 MB) live once the windows are full.
 *
 * Threads are created before the "ready" line, so an attach finds them
 * all, and they start together on a barrier after the start line.
 */
#include <pthread.h>

#include "wl.h"

#define DEFAULT_N 8000000LL
#define WINDOW 65536
#define LEAK_EVERY 1000
#define MAX_THREADS 64

struct worker {
	pthread_t tid;
	long long ops;
	uint64_t rng;
	const struct wl_logsize *sizes;
	void **slot;         /* the thread's part of window[] */
	uint32_t *slot_size;
	size_t nslots;
	uint64_t allocs, frees, bytes, live;
};

static pthread_barrier_t start_line;

static WL_NOINLINE void *churn_alloc(uint32_t size, long long op)
{
	unsigned char *p = malloc(size);
	if (!p)
		wl_die("malloc");
	memset(p, (int)(op & 0xff), size);
	return p;
}

static WL_NOINLINE void churn_leak(void *p)
{
	wl_escape(p);
}

static void run_ops(struct worker *w)
{
	long long kept = 0;

	for (long long op = 0; op < w->ops; op++) {
		size_t i = (size_t)(wl_rand(&w->rng) % w->nslots);
		if (w->slot[i]) {
			w->live -= w->slot_size[i];
			if (++kept % LEAK_EVERY == 0) {
				churn_leak(w->slot[i]);
				w->live += w->slot_size[i];
			} else {
				free(w->slot[i]);
				w->frees++;
			}
		}
		uint32_t size = wl_logsize_pick(w->sizes, &w->rng);
		w->slot[i] = churn_alloc(size, op);
		w->slot_size[i] = size;
		w->allocs++;
		w->bytes += size;
		w->live += size;
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	pthread_barrier_wait(&start_line);
	run_ops(w);
	return NULL;
}

int main(int argc, char **argv)
{
	/* Static, not malloc'd: the workload's own bookkeeping must not be
	 * heap, or a leak report of a `run` would count it. */
	static struct worker workers[MAX_THREADS];
	static struct wl_logsize sizes;
	static void *window[WINDOW];
	static uint32_t window_size[WINDOW];
	struct wl_opts o;

	wl_parse(argc, argv, &o, DEFAULT_N, MAX_THREADS);
	wl_logsize_init(&sizes, 16, 4096);

	size_t per = WINDOW / (size_t)o.threads;
	for (int t = 0; t < o.threads; t++) {
		struct worker *w = &workers[t];
		w->ops = o.n / o.threads + (t == 0 ? o.n % o.threads : 0);
		w->rng = wl_seed(o.seed, (unsigned)t);
		w->sizes = &sizes;
		w->nslots = per;
		w->slot = window + (size_t)t * per;
		w->slot_size = window_size + (size_t)t * per;
	}
	if (pthread_barrier_init(&start_line, NULL, (unsigned)o.threads))
		wl_die("pthread_barrier_init");
	for (int t = 1; t < o.threads; t++)
		if (pthread_create(&workers[t].tid, NULL, worker_main,
				   &workers[t]))
			wl_die("pthread_create");

	wl_handshake(&o);
	uint64_t t0 = wl_now_ns();
	pthread_barrier_wait(&start_line);
	run_ops(&workers[0]);
	for (int t = 1; t < o.threads; t++)
		pthread_join(workers[t].tid, NULL);
	uint64_t t1 = wl_now_ns();

	uint64_t allocs = 0, frees = 0, bytes = 0, live = 0;
	for (int t = 0; t < o.threads; t++) {
		allocs += workers[t].allocs;
		frees += workers[t].frees;
		bytes += workers[t].bytes;
		live += workers[t].live;
	}
	wl_report("churn", &o, t1 - t0, allocs, frees, bytes, live);
	return 0;
}
