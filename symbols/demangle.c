/* symbols/: C++ demangling through the C++ runtime's own demangler, the
 * one c++filt and addr2line -C agree with. */
#include "symbols.h"

#include <stdlib.h>

/* From libstdc++'s <cxxabi.h>, which is C++ only. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len,
		     int *status);

char *hd_demangle(const char *name)
{
	/* Only symbol names: __cxa_demangle also accepts bare type
	 * encodings, and "i" is not "int" in a symbol table. */
	if (!name || name[0] != '_' || name[1] != 'Z')
		return NULL;
	int status = 0;
	char *out = __cxa_demangle(name, NULL, NULL, &status);
	if (status != 0) {
		free(out);
		return NULL;
	}
	return out;
}
