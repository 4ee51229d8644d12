/* pair: malloc(32) + free in a tight loop, N times.  The worst case for
 * any allocator hook: nothing but the two calls, so every nanosecond a
 * tracer adds to them shows.  Nothing stays allocated. */
#include "wl.h"

#define DEFAULT_N 200000000LL

static WL_NOINLINE void pairs(long long n)
{
	for (long long i = 0; i < n; i++) {
		void *p = malloc(32);
		wl_escape(p);
		free(p);
	}
}

int main(int argc, char **argv)
{
	struct wl_opts o;

	wl_parse(argc, argv, &o, DEFAULT_N, 1);
	wl_handshake(&o);
	uint64_t t0 = wl_now_ns();
	pairs(o.n);
	uint64_t t1 = wl_now_ns();
	wl_report("pair", &o, t1 - t0, (uint64_t)o.n, (uint64_t)o.n,
		  32 * (uint64_t)o.n, 0);
	return 0;
}
