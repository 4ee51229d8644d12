#!/bin/sh
# run_fuzz.sh FUZZER CORPUS SECONDS: a bounded fuzzing run for ctest.
# The committed corpus is only read; new inputs go to a scratch
# directory.  Exit 0 when no crash was found, 77 when the fuzzer could
# not be built here (no clang with libFuzzer).
fuzzer=$1 corpus=$2 secs=$3
if [ ! -x "$fuzzer" ]; then
	echo "SKIP: $fuzzer not built (clang with libFuzzer not found)"
	exit 77
fi
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
"$fuzzer" "$work" "$corpus" -max_total_time="$secs" -runs=5000000 \
	-max_len=512 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
