/* Shared library for the symbols unit test, dlopen'ed by symprog. */
#include <stdint.h>

uintptr_t symlib_ra;

__attribute__((noipa)) void symlib_leaf(void)
{
	symlib_ra = (uintptr_t)__builtin_return_address(0);
}

__attribute__((noinline, noclone)) int symlib_work(int x) /* MARK:lib_decl */
{
	symlib_leaf(); /* MARK:lib_call */
	return x + 2;
}
