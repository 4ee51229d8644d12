/* A tracee with exactly known allocations, for the tracer's own tests.
 *
 * Live at exit (in-use), all made after main starts:
 *   10 x malloc(100)                     1000 B
 *    1 x calloc(4, 25)                    100 B
 *    1 x realloc: 50 -> 300 -> 700         700 B (allocations 50, 300, 700)
 *    1 x posix_memalign(64, 4096)         4096 B
 *    1 x strdup("heapdbg") (8 bytes)         8 B
 *    1 x reallocarray(NULL, 3, 33)          99 B
 *    1 x aligned_alloc(32, 320)            320 B
 * Allocated and freed: 5 x malloc(200), 1 x malloc(0) freed.
 * Total live: 16 objects, 6323 B.
 * stdio is not used: its buffers would be allocations of main's too.
 * With argument "wait" it prints "ready" and then waits for a line on
 * stdin before allocating, so a test can attach first. */
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <unistd.h>

#define ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

static void *keep[64];
static int nkeep;

__attribute__((noinline)) static void leak_small(void)
{
	for (int i = 0; i < 10; i++) {
		void *p = malloc(100);
		ESCAPE(p);
		keep[nkeep++] = p;
	}
}

__attribute__((noinline)) static void churn(void)
{
	for (int i = 0; i < 5; i++) {
		void *p = malloc(200);
		ESCAPE(p);
		free(p);
	}
	void *z = malloc(0);
	ESCAPE(z);
	free(z);
}

__attribute__((noinline)) static void others(void)
{
	void *p = calloc(4, 25);
	ESCAPE(p);
	keep[nkeep++] = p;
	char *r = malloc(50);
	ESCAPE(r);
	r = realloc(r, 300);
	ESCAPE(r);
	r = realloc(r, 700);
	ESCAPE(r);
	keep[nkeep++] = r;
	void *a = NULL;
	if (posix_memalign(&a, 64, 4096) == 0)
		keep[nkeep++] = a;
	keep[nkeep++] = strdup("heapdbg");
	void *ra = reallocarray(NULL, 3, 33);
	ESCAPE(ra);
	keep[nkeep++] = ra;
	void *al = aligned_alloc(32, 320);
	ESCAPE(al);
	keep[nkeep++] = al;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "wait") == 0) {
		char c;
		if (write(1, "ready\n", 6) != 6 || read(0, &c, 1) != 1)
			return 2;
	}
	leak_small();
	churn();
	others();
	char msg[] = "done 16\n";
	if (nkeep != 16 || write(1, msg, sizeof(msg) - 1) < 0)
		return 1;
	return 3;
}
