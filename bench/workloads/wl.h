/* bench/workloads/wl.h: what every benchmark workload shares.
 *
 * A workload does a FIXED amount of work (never a fixed time), so that
 * native and traced runs do exactly the same calls, and reports on exit
 * one machine-readable line on stdout:
 *
 *     BENCH name=churn threads=1 n=10000000 wall_ns=1432000000
 *           allocs=10000000 frees=9990000 alloc_bytes=5890000000
 *           live_bytes=48123456
 *
 * (one line).  wall_ns is CLOCK_MONOTONIC around the work phase only:
 * neither process start-up nor heapdbg's attach is in it.  live_bytes is
 * the exact sum of the requested sizes of every block the work phase
 * left allocated; the workload never frees them, so a leak report taken
 * at exit sees exactly those.
 *
 * Start handshake: the workload prints "ready PID" and blocks reading a
 * line from stdin; the driver attaches heapdbg, then writes the line.
 * With --go it starts at once (heapdbg `run`, armed before main).
 *
 * Only raw read()/write() touch the standard streams: stdio would
 * malloc its buffers during the work phase and spoil the exact count.
 */
#ifndef WL_H
#define WL_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WL_NOINLINE __attribute__((noinline, noclone))

struct wl_opts {
	long long n;   /* work size: the workload's unit (ops, pairs, requests) */
	int threads;
	int go;        /* start without waiting for the stdin line */
	unsigned seed;
};

/* The empty asm takes p as an input and clobbers memory: the compiler
 * must assume p is used, so malloc/free pairs cannot be elided. */
static inline void wl_escape(const void *p)
{
	__asm__ volatile("" : : "r"(p) : "memory");
}

static inline void wl_die(const char *what)
{
	char buf[256];
	int k = snprintf(buf, sizeof(buf), "workload: %s: %s\n", what,
			 strerror(errno));
	if (k > 0 && write(2, buf, (size_t)k) < 0)
		_exit(3);
	_exit(3);
}

static inline void wl_usage(const char *name, long long defn, int maxthreads)
{
	char buf[512];
	int k = snprintf(buf, sizeof(buf),
			 "usage: %s [-n N] [-t THREADS] [-s SEED] [--go]\n"
			 "  -n N        work size (default %lld)\n"
			 "  -t THREADS  1..%d (default 1)\n"
			 "  --go        start at once instead of waiting for a "
			 "line on stdin\n",
			 name, defn, maxthreads);
	if (k > 0 && write(2, buf, (size_t)k) < 0)
		_exit(2);
	_exit(2);
}

static inline void wl_parse(int argc, char **argv, struct wl_opts *o,
			    long long defn, int maxthreads)
{
	*o = (struct wl_opts){.n = defn, .threads = 1, .seed = 1};
	for (int i = 1; i < argc; i++) {
		char *end;
		if (strcmp(argv[i], "--go") == 0) {
			o->go = 1;
		} else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc) {
			o->n = strtoll(argv[++i], &end, 10);
			if (*end || o->n <= 0)
				wl_usage(argv[0], defn, maxthreads);
		} else if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			long t = strtol(argv[++i], &end, 10);
			if (*end || t < 1 || t > maxthreads)
				wl_usage(argv[0], defn, maxthreads);
			o->threads = (int)t;
		} else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc) {
			o->seed = (unsigned)strtoul(argv[++i], &end, 10);
			if (*end)
				wl_usage(argv[0], defn, maxthreads);
		} else {
			wl_usage(argv[0], defn, maxthreads);
		}
	}
}

static inline void wl_write_all(const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t w = write(1, buf, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			wl_die("write");
		buf += w;
		len -= (size_t)w;
	}
}

/* Prints "ready PID", then (unless --go) waits for one line on stdin. */
static inline void wl_handshake(const struct wl_opts *o)
{
	char buf[64];
	int k = snprintf(buf, sizeof(buf), "ready %d\n", (int)getpid());
	wl_write_all(buf, (size_t)k);
	if (o->go)
		return;
	for (;;) {
		char c;
		ssize_t r = read(0, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(4); /* the driver went away: nothing to measure */
		if (c == '\n')
			return;
	}
}

static inline uint64_t wl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void wl_report(const char *name, const struct wl_opts *o,
			     uint64_t wall_ns, uint64_t allocs, uint64_t frees,
			     uint64_t alloc_bytes, uint64_t live_bytes)
{
	char buf[320];
	int k = snprintf(buf, sizeof(buf),
			 "BENCH name=%s threads=%d n=%lld wall_ns=%llu "
			 "allocs=%llu frees=%llu alloc_bytes=%llu "
			 "live_bytes=%llu\n",
			 name, o->threads, o->n, (unsigned long long)wall_ns,
			 (unsigned long long)allocs, (unsigned long long)frees,
			 (unsigned long long)alloc_bytes,
			 (unsigned long long)live_bytes);
	wl_write_all(buf, (size_t)k);
}

/* xorshift64*: fast, good enough for picking sizes and slots. */
static inline uint64_t wl_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static inline uint64_t wl_seed(unsigned seed, unsigned stream)
{
	uint64_t s = 0x9E3779B97F4A7C15ull * (seed + 1) + stream * 0xBF58476D1CE4E5B9ull;
	return s ? s : 1;
}

/* A size log-uniform in [lo, hi]: lo * (hi/lo)^u, read from a table of
 * 1024 steps built once, so the hot loop does no floating point. */
struct wl_logsize {
	uint32_t tab[1024];
};

static inline void wl_logsize_init(struct wl_logsize *t, uint32_t lo,
				   uint32_t hi)
{
	for (int i = 0; i < 1024; i++) {
		double v = lo * exp(log((double)hi / lo) * (i + 0.5) / 1024.0);
		t->tab[i] = (uint32_t)(v + 0.5);
	}
}

static inline uint32_t wl_logsize_pick(const struct wl_logsize *t,
				       uint64_t *rng)
{
	return t->tab[wl_rand(rng) >> 54];
}

#endif
