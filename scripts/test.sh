#!/usr/bin/env bash
# scripts/test.sh: build heapdbg twice and run the whole test suite on
# both builds:
#   build/       RelWithDebInfo, as shipped
#   build-asan/  heapdbg itself under AddressSanitizer and UBSan (unit
#                and end-to-end tests; the reliability scenarios run on
#                build/)
#                (-DHEAPDBG_SANITIZE=ON; fixtures stay uninstrumented)
# Exits non-zero if anything fails to build or any test fails.
#
#   scripts/test.sh [ctest args...]
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
jobs=${HEAPDBG_JOBS:-2}

"$src/scripts/deps.sh"

status=0
for variant in build build-asan; do
	dir=$src/$variant
	opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
	[[ $variant == build-asan ]] && opts+=(-DHEAPDBG_SANITIZE=ON)
	echo "== $variant: configure and build"
	cmake -S "$src" -B "$dir" "${opts[@]}"
	cmake --build "$dir" -j"$jobs"
	echo "== $variant: test"
	# The reliability scenarios (hundreds of attach cycles on loaded
	# processes) run on the build as shipped; under ASan, heapdbg runs
	# the unit and end-to-end tests.  `scripts/reliability.sh --build
	# build-asan` runs the scenarios against it too.
	filter=()
	[[ $variant == build-asan ]] && filter=(-LE reliability)
	if ! (cd "$dir" && ctest --output-on-failure -j"$jobs" "${filter[@]}" "$@"); then
		status=1
	fi
done
exit $status
