/* A busy multi-threaded tracee for attach/detach tests: 4 threads
 * allocate and free as fast as they can, and the main thread forks a
 * child every few milliseconds that allocates and exits 0.  It prints
 * "ready" once, runs until stdin reaches end of file, then prints
 * "children N failed 0" if every child exited 0, and exits 0. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

static atomic_int stop;

__attribute__((noinline)) static void *worker(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg;
	void *keep[64] = {0};
	while (!atomic_load(&stop)) {
		int i = (int)(rand_r(&seed) % 64);
		free(keep[i]);
		keep[i] = malloc(16 + rand_r(&seed) % 4096);
		ESCAPE(keep[i]);
	}
	for (int i = 0; i < 64; i++)
		free(keep[i]);
	return NULL;
}

static void *reader(void *arg)
{
	char buf[64];
	(void)arg;
	while (read(0, buf, sizeof(buf)) > 0)
		;
	atomic_store(&stop, 1);
	return NULL;
}

int main(void)
{
	pthread_t th[4], rd;
	int children = 0, failed = 0;
	for (long i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, worker, (void *)(i + 1));
	pthread_create(&rd, NULL, reader, NULL);
	printf("ready\n");
	fflush(stdout);
	while (!atomic_load(&stop)) {
		pid_t c = fork();
		if (c == 0) {
			for (int i = 0; i < 100; i++) {
				void *p = malloc(100);
				ESCAPE(p);
				free(p);
			}
			_exit(0);
		}
		int st;
		waitpid(c, &st, 0);
		children++;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	pthread_join(rd, NULL);
	printf("children %s failed %d\n", children > 0 ? "some" : "none",
	       failed);
	return failed ? 1 : 0;
}
