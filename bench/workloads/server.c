/* server: a request loop that allocates about 200 MB/s in mixed sizes
 * (on a 2-vCPU EPYC VM; the amount of work per request is fixed, so the
 * rate scales with the machine).
 *
 * Each request allocates a request record, 4 to 12 header strings of 16
 * to 128 B, a body of 256 B to 32 KiB (sizes log-uniform), hashes the
 * body and does a fixed amount of other computation ("the handler"),
 * builds a response half the body's size, and frees it all.  One request
 * in four replaces an entry of a 4096-entry session cache (256 B to
 * 2 KiB), and one in 512 leaks its response: the slow growth a user would
 * hunt with `top -base`.  About 11 KB in 11 allocations (and as many
 * frees) per request.
 */
#include "wl.h"

#define DEFAULT_N 30000LL
#define SESSIONS 4096
#define LEAK_EVERY 512
#define HANDLER_SPIN 20000 /* iterations of the handler's arithmetic */

struct request {
	char *header[12];
	uint32_t header_len[12];
	int nheaders;
	unsigned char *body;
	uint32_t body_len;
	uint64_t digest;
	char pad[64];
};

struct stats {
	uint64_t allocs, frees, bytes, live, sink;
};

static void *xmalloc(size_t n, struct stats *st)
{
	void *p = malloc(n);
	if (!p)
		wl_die("malloc");
	st->allocs++;
	st->bytes += n;
	return p;
}

static void xfree(void *p, struct stats *st)
{
	free(p);
	st->frees++;
}

static WL_NOINLINE struct request *parse_request(uint64_t *rng,
						 const struct wl_logsize *hsz,
						 const struct wl_logsize *bsz,
						 struct stats *st)
{
	struct request *r = xmalloc(sizeof(*r), st);
	r->nheaders = 4 + (int)(wl_rand(rng) % 9);
	for (int i = 0; i < r->nheaders; i++) {
		uint32_t n = wl_logsize_pick(hsz, rng);
		r->header[i] = xmalloc(n, st);
		r->header_len[i] = n;
		memset(r->header[i], 'a' + i, n - 1);
		r->header[i][n - 1] = 0;
	}
	r->body_len = wl_logsize_pick(bsz, rng);
	r->body = xmalloc(r->body_len, st);
	for (uint32_t i = 0; i < r->body_len; i += 8) {
		uint64_t v = wl_rand(rng);
		memcpy(r->body + i, &v,
		       r->body_len - i < 8 ? r->body_len - i : 8);
	}
	return r;
}

/* The handler: hash the body (FNV-1a), then a fixed amount of
 * arithmetic standing for the rest of the application's work. */
static WL_NOINLINE uint64_t handle(const struct request *r)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (uint32_t i = 0; i < r->body_len; i++)
		h = (h ^ r->body[i]) * 0x100000001b3ull;
	uint64_t x = h | 1;
	for (int i = 0; i < HANDLER_SPIN; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return h ^ x;
}

static WL_NOINLINE unsigned char *respond(const struct request *r,
					  uint32_t *len, struct stats *st)
{
	*len = r->body_len / 2 + 64;
	unsigned char *resp = xmalloc(*len, st);
	memset(resp, (int)(r->digest & 0xff), *len);
	return resp;
}

static void free_request(struct request *r, struct stats *st)
{
	for (int i = 0; i < r->nheaders; i++)
		xfree(r->header[i], st);
	xfree(r->body, st);
	xfree(r, st);
}

static WL_NOINLINE void touch_session(void **cache, uint32_t *cache_len,
				      uint64_t *rng,
				      const struct wl_logsize *ssz,
				      struct stats *st)
{
	size_t i = (size_t)(wl_rand(rng) % SESSIONS);
	if (cache[i]) {
		xfree(cache[i], st);
		st->live -= cache_len[i];
	}
	uint32_t n = wl_logsize_pick(ssz, rng);
	cache[i] = xmalloc(n, st);
	memset(cache[i], 0x5a, n);
	cache_len[i] = n;
	st->live += n;
}

static WL_NOINLINE void serve(long long n, uint64_t *rng, struct stats *st,
			      void **cache, uint32_t *cache_len)
{
	static struct wl_logsize hsz, bsz, ssz;
	wl_logsize_init(&hsz, 16, 128);
	wl_logsize_init(&bsz, 256, 32768);
	wl_logsize_init(&ssz, 256, 2048);

	for (long long q = 0; q < n; q++) {
		struct request *r = parse_request(rng, &hsz, &bsz, st);
		r->digest = handle(r);
		uint32_t len;
		unsigned char *resp = respond(r, &len, st);
		st->sink += resp[len - 1];
		if ((q + 1) % LEAK_EVERY == 0) {
			wl_escape(resp);
			st->live += len;
		} else {
			xfree(resp, st);
		}
		if ((wl_rand(rng) & 3) == 0)
			touch_session(cache, cache_len, rng, &ssz, st);
		free_request(r, st);
	}
}

int main(int argc, char **argv)
{
	static void *cache[SESSIONS];
	static uint32_t cache_len[SESSIONS];
	struct wl_opts o;
	struct stats st = {0};

	wl_parse(argc, argv, &o, DEFAULT_N, 1);
	uint64_t rng = wl_seed(o.seed, 0);
	wl_handshake(&o);
	uint64_t t0 = wl_now_ns();
	serve(o.n, &rng, &st, cache, cache_len);
	uint64_t t1 = wl_now_ns();
	wl_escape(&st.sink);
	wl_report("server", &o, t1 - t0, st.allocs, st.frees, st.bytes,
		  st.live);
	return 0;
}
