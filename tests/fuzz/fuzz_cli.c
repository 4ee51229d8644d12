/* fuzz_cli: libFuzzer target for everything heapdbg parses from a user.
 *
 * The input is split at newlines; each line goes through the prompt's
 * tokenizer, then its words through the parser of every report command
 * (top, list, traces, export), the rate, seconds and count parsers, the
 * command-name abbreviation matcher, and the heapdbg command line parser
 * (as if typed after "heapdbg").  Any crash, leak, or undefined
 * behaviour is a finding; results are not checked beyond the contracts
 * the headers state (a successful parse fills what it promises).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/options.h"
#include "cli/parse.h"
#include "cli/units.h"

static const enum hd_cli_report_kind kinds[] = {
	HD_CLI_TOP, HD_CLI_LIST, HD_CLI_TRACES, HD_CLI_EXPORT,
};

/* A contract violation: abort so libFuzzer reports it with the input. */
static void require(int cond)
{
	if (!cond)
		abort();
}

static void words_parsers(char **words, int n)
{
	char err[256];
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct hd_cli_report_args a;
		err[0] = '\0';
		int r = hd_cli_parse_report_args(kinds[k], words, n, &a, err,
						 sizeof(err));
		require(r == 0 || (r < 0 && err[0] != '\0'));
		require(memchr(err, '\0', sizeof(err)) != NULL);
		if (r == 0)
			require(a.n >= 0);
	}
	for (int i = 0; i < n; i++) {
		uint64_t rate;
		double secs;
		int count;
		if (hd_cli_parse_rate(words[i], &rate) == 0)
			require(rate > 0);
		if (hd_cli_parse_seconds(words[i], &secs) == 0)
			require(secs >= 0 && secs <= 1e8);
		if (hd_cli_parse_count(words[i], &count) == 0)
			require(count > 0);
		(void)hd_cli_abbrev_match(words[i], "snapshot", 4);
	}
	/* The same words as heapdbg's own command line. */
	char **argv = malloc((size_t)(n + 2) * sizeof(*argv));
	if (!argv)
		return;
	argv[0] = "heapdbg";
	memcpy(argv + 1, words, (size_t)n * sizeof(*argv));
	argv[n + 1] = NULL;
	struct hd_cli_options o;
	if (hd_cli_parse_options(n + 1, argv, &o, err, sizeof(err)) == 0)
		hd_cli_options_free(&o);
	free(argv);
}

static void one_line(const char *line)
{
	char **words;
	int n;
	char err[256];
	if (hd_cli_tokenize(line, &words, &n, err, sizeof(err)) < 0)
		return;
	require(n >= 0 && words[n] == NULL);
	words_parsers(words, n);
	hd_cli_words_free(words);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (char *line = buf, *nl; line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		one_line(line);
	}
	free(buf);
	return 0;
}
