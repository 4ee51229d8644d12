/* heapdbg: definitions shared by every module.
 *
 * Error handling convention (STYLE.md practice 5): library code (tracer/,
 * symbols/, profile/) returns 0 or a negative hd_err code and never prints
 * to the user or exits; only cli/ prints and exits.  Each error has one
 * message, generated from the X-macro list below.
 */
#ifndef HD_COMMON_H
#define HD_COMMON_H

#include <stdio.h>
#include <stdlib.h>

#define HD_MUST_CHECK __attribute__((warn_unused_result))
#define HD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define HD_UNUSED __attribute__((unused))
#define HD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* X(name, message).  Messages name the cause; cli/ adds the fix where the
 * fix depends on context (pid, user). */
#define HD_ERRORS(X)                                                         \
	X(OK, "success")                                                     \
	X(NOMEM, "out of memory")                                            \
	X(NOPROC, "no such process")                                         \
	X(PERM, "permission denied")                                         \
	X(TRACED, "process is already traced by another debugger")           \
	X(SELF, "cannot trace heapdbg itself")                               \
	X(EXITED, "process exited while attaching")                          \
	X(NOTX64, "not an x86-64 ELF process")                               \
	X(NOALLOC, "no allocator symbols found")                             \
	X(ZOMBIE, "process is a zombie")                                     \
	X(KTHREAD, "process is a kernel thread")                             \
	X(EXEC, "cannot start program")                                      \
	X(IO, "input/output error")                                          \
	X(ELF, "cannot read ELF file")                                       \
	X(NOTFOUND, "not found")                                             \
	X(INVAL, "invalid argument")                                         \
	X(GONE, "process is gone")                                           \
	X(INTERNAL, "internal error")

enum hd_err {
#define HD_ERR_ENUM(name, msg) HD_E##name,
	HD_ERRORS(HD_ERR_ENUM)
#undef HD_ERR_ENUM
	HD_E__COUNT
};

/* Message for -code or code (either sign accepted). */
const char *hd_strerror(int err);

/* Debug logging, switched on at run time with HEAPDBG_DEBUG=1 (never by
 * recompiling).  Goes to stderr with a module prefix. */
extern int hd_debug_enabled;
void hd_debug_init(void);
void hd_log(const char *mod, const char *fmt, ...) HD_PRINTF(2, 3);
#define HD_DEBUG(mod, ...)                                                   \
	do {                                                                 \
		if (hd_debug_enabled)                                        \
			hd_log(mod, __VA_ARGS__);                            \
	} while (0)

/* vsnprintf into err (nothing when err is NULL or errlen 0): the one way
 * library and cli code fill a caller's message buffer. */
void hd_seterr(char *err, size_t errlen, const char *fmt, ...)
	HD_PRINTF(3, 4);

/* Monotonic clock in seconds. */
double hd_now(void);

#endif
