/* Test program for the symbols unit test.  The source positions the test
 * expects are the lines carrying MARK comments; keep each marker on the
 * line of the code it names. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

enum { SLOT_INLINE, SLOT_OUTER, SLOT_ALIAS, SLOT_COUNT };
static uintptr_t slots[SLOT_COUNT];

/* noipa: no clone, no inlining, a plain call whose return address lands
 * in the caller. */
__attribute__((noipa)) void symprog_record(int slot)
{
	slots[slot] = (uintptr_t)__builtin_return_address(0);
}

static inline __attribute__((always_inline)) int helper(int x) /* MARK:helper_decl */
{
	int y = x * 3;
	symprog_record(SLOT_INLINE); /* MARK:inline_leaf */
	return y + 1;
}

__attribute__((noinline, noclone)) int outer_fn(int x) /* MARK:outer_decl */
{
	int r = helper(x); /* MARK:inline_call */
	symprog_record(SLOT_OUTER); /* MARK:outer_call */
	return r;
}

/* An implementation name and the public alias users know it by. */
__attribute__((noinline, noclone)) int __impl_work(int x)
{
	symprog_record(SLOT_ALIAS);
	return x + 1;
}
extern int public_work(int x) __attribute__((alias("__impl_work")));

int main(int argc, char **argv)
{
	int r = outer_fn(argc) + public_work(argc);
	symdata_report("inline_ra", slots[SLOT_INLINE]);
	symdata_report("outer_ra", slots[SLOT_OUTER]);
	symdata_report("public_work", (uintptr_t)&public_work);
	symdata_report("malloc", (uintptr_t)&malloc);
	symdata_report("strdup", (uintptr_t)&strdup);

	void *lib = NULL;
	if (argc > 1) {
		lib = dlopen(argv[1], RTLD_NOW);
		if (!lib)
			return 3;
		int (*work)(int) = (int (*)(int))dlsym(lib, "symlib_work");
		uintptr_t *ra = (uintptr_t *)dlsym(lib, "symlib_ra");
		if (!work || !ra)
			return 4;
		r += work(argc);
		symdata_report("lib_ra", *ra);
	}
	symdata_say("ready\n");
	for (int c; (c = symdata_command()) != -1;) {
		if (c == 'u' && lib) {
			dlclose(lib);
			lib = NULL;
			symdata_say("unloaded\n");
		}
	}
	return r == 0; /* r is never 0: keeps the calls */
}
