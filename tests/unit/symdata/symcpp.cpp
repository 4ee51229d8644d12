// C++ test program for the symbols unit test: a member function in a
// namespace, whose name the test expects demangled.
#include <cstdint>
#include <new>

#include "protocol.h"

static uintptr_t method_ra;

__attribute__((noipa)) void symcpp_record()
{
	method_ra = (uintptr_t)__builtin_return_address(0);
}

namespace hdtest {
class Widget {
public:
	int method(int x);
};

__attribute__((noinline, noclone)) int Widget::method(int x) // MARK:method_decl
{
	symcpp_record(); // MARK:method_call
	return x + 5;
}
} // namespace hdtest

int main(int argc, char **)
{
	hdtest::Widget w;
	int r = w.method(argc);
	void *(*new_fn)(std::size_t) = &::operator new;
	symdata_report("method_ra", method_ra);
	symdata_report("operator_new", (uintptr_t)new_fn);
	symdata_say("ready\n");
	while (symdata_command() != -1)
		;
	return r == 0;
}
