#include "hd.h"

#include <stdarg.h>
#include <time.h>

static const char *const hd_messages[] = {
#define HD_ERR_MSG(name, msg) msg,
	HD_ERRORS(HD_ERR_MSG)
#undef HD_ERR_MSG
};

const char *hd_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= HD_E__COUNT)
		return "unknown error";
	return hd_messages[err];
}

int hd_debug_enabled;

void hd_debug_init(void)
{
	const char *v = getenv("HEAPDBG_DEBUG");
	hd_debug_enabled = v && *v && *v != '0';
}

void hd_log(const char *mod, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "heapdbg[%s]: ", mod);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void hd_seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

double hd_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
