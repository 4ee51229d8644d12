/* How the symbol test programs talk to tests/unit/test_symbols.c: they
 * write "name 0xADDR" lines and then "ready" to fd 3, and obey one-byte
 * commands read from fd 4 (EOF: exit).  Addresses are return addresses
 * taken with __builtin_return_address(0), so they fall where a stack
 * unwinder would find them. */
#ifndef SYMDATA_PROTOCOL_H
#define SYMDATA_PROTOCOL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define SYMDATA_OUT 3
#define SYMDATA_IN 4

static inline void symdata_say(const char *line)
{
	size_t len = strlen(line);
	if (write(SYMDATA_OUT, line, len) != (ssize_t)len)
		_exit(2);
}

static inline void symdata_report(const char *name, uintptr_t addr)
{
	char buf[160];
	snprintf(buf, sizeof(buf), "%s 0x%llx\n", name,
		 (unsigned long long)addr);
	symdata_say(buf);
}

/* Next command byte, or -1 at EOF. */
static inline int symdata_command(void)
{
	char c;
	return read(SYMDATA_IN, &c, 1) == 1 ? c : -1;
}

#endif
