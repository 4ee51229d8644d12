/* Minimal unit-test harness in the style of the kernel's
 * kselftest_harness.h: every test runs in a forked child with a timeout,
 * so a crash or a hang fails that test only, and a failing assertion ends
 * the child (and with it anything it started) before it returns.
 *
 *     HD_TEST(parses_rate) { HD_EXPECT_EQ(parse("1k"), 1024); }
 *     int main(void) { return hd_test_main(); }
 *
 * Prints "N passed, N failed" last, which ctest and CI read.
 */
#ifndef HD_TEST_H
#define HD_TEST_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct hd_test_case {
	const char *name;
	void (*fn)(void);
};

#define HD_TEST_MAX 256
static struct hd_test_case hd_test_cases[HD_TEST_MAX];
static int hd_test_count;
static int hd_test_failed_here;

#define HD_TEST(name)                                                        \
	static void hd_test_##name(void);                                    \
	__attribute__((constructor)) static void hd_test_reg_##name(void)   \
	{                                                                    \
		if (hd_test_count < HD_TEST_MAX)                             \
			hd_test_cases[hd_test_count++] =                     \
				(struct hd_test_case){#name, hd_test_##name}; \
	}                                                                    \
	static void hd_test_##name(void)

#define HD_FAIL_AT(...)                                                      \
	do {                                                                 \
		fprintf(stderr, "  %s:%d: ", __FILE__, __LINE__);            \
		fprintf(stderr, __VA_ARGS__);                                \
		fputc('\n', stderr);                                         \
		hd_test_failed_here = 1;                                     \
	} while (0)

/* ASSERT ends the test; EXPECT records the failure and goes on. */
#define HD_EXPECT(cond)                                                      \
	do {                                                                 \
		if (!(cond))                                                 \
			HD_FAIL_AT("expected %s", #cond);                    \
	} while (0)
#define HD_ASSERT(cond)                                                      \
	do {                                                                 \
		if (!(cond)) {                                               \
			HD_FAIL_AT("assertion %s", #cond);                   \
			_exit(1);                                            \
		}                                                            \
	} while (0)
#define HD_EXPECT_EQ(a, b)                                                   \
	do {                                                                 \
		long long hd_a_ = (long long)(a), hd_b_ = (long long)(b);   \
		if (hd_a_ != hd_b_)                                          \
			HD_FAIL_AT("%s == %lld, expected %s == %lld", #a,    \
				   hd_a_, #b, hd_b_);                        \
	} while (0)
#define HD_EXPECT_STREQ(a, b)                                                \
	do {                                                                 \
		const char *hd_a_ = (a), *hd_b_ = (b);                       \
		if (!hd_a_ || !hd_b_ || strcmp(hd_a_, hd_b_) != 0)           \
			HD_FAIL_AT("%s == \"%s\", expected \"%s\"", #a,      \
				   hd_a_ ? hd_a_ : "(null)",                 \
				   hd_b_ ? hd_b_ : "(null)");                \
	} while (0)

static inline int hd_test_main(void)
{
	int passed = 0, failed = 0;
	const char *only = getenv("HD_TEST_ONLY");
	int timeout = 30;
	if (getenv("HD_TEST_TIMEOUT"))
		timeout = atoi(getenv("HD_TEST_TIMEOUT"));
	for (int i = 0; i < hd_test_count; i++) {
		struct hd_test_case *c = &hd_test_cases[i];
		if (only && strcmp(only, c->name) != 0)
			continue;
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			setpgid(0, 0);
			alarm((unsigned)timeout);
			c->fn();
			fflush(NULL);
			_exit(hd_test_failed_here ? 1 : 0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		kill(-pid, SIGKILL); /* anything the test left behind */
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			printf("ok %s\n", c->name);
			passed++;
		} else {
			if (WIFSIGNALED(st))
				printf("FAIL %s (signal %d%s)\n", c->name,
				       WTERMSIG(st),
				       WTERMSIG(st) == SIGALRM ? ", timeout"
							       : "");
			else
				printf("FAIL %s\n", c->name);
			failed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif
