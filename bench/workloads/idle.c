/* idle: a process of T threads (the main one included) that do almost
 * nothing, for measuring how long heapdbg takes to attach to and detach
 * from a process of that many threads.
 *
 * Every thread but the main one loops: sleep 5 ms, malloc(64), free; so
 * an attach meets threads both blocked and running, and they keep
 * calling the allocator while heapdbg arms it.  The main thread prints
 * "ready PID" once all threads run, and exits at end of stdin.
 */
#include <pthread.h>

#include "wl.h"

#define MAX_THREADS 1000

static pthread_barrier_t all_up;

static void *sleeper(void *arg)
{
	struct timespec ts = {0, 5 * 1000 * 1000};
	(void)arg;
	pthread_barrier_wait(&all_up);
	for (;;) {
		nanosleep(&ts, NULL);
		void *p = malloc(64);
		wl_escape(p);
		free(p);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	static pthread_t tids[MAX_THREADS];
	struct wl_opts o;
	pthread_attr_t attr;
	char c;

	wl_parse(argc, argv, &o, 1, MAX_THREADS);
	/* Small stacks: a hundred threads need not map 800 MB. */
	if (pthread_attr_init(&attr) ||
	    pthread_attr_setstacksize(&attr, 64 * 1024))
		wl_die("pthread_attr");
	if (pthread_barrier_init(&all_up, NULL, (unsigned)o.threads))
		wl_die("pthread_barrier_init");
	for (int t = 1; t < o.threads; t++)
		if (pthread_create(&tids[t], &attr, sleeper, NULL))
			wl_die("pthread_create");
	pthread_barrier_wait(&all_up);
	o.go = 1;
	wl_handshake(&o);
	for (;;) {
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
	}
	_exit(0);
}
