#!/bin/sh
# bench/run.sh [OPTIONS]: measure what heapdbg costs the traced process.
#
# Builds heapdbg and the benchmark workloads in build-bench/ (RelWithDebInfo,
# no sanitizers), then runs bench/bench.py, which runs every workload
# natively and under heapdbg in each mode, alternating, several times, and
# prints the table.  A full run also writes it into docs/PERFORMANCE.md.
# OPTIONS go to bench/bench.py (see `bench/run.sh --help`), e.g.
#
#     bench/run.sh                          # the full benchmark (~10 min)
#     bench/run.sh --quick                  # seconds: does it work at all
#     bench/run.sh --workloads=pair --modes=attach --reps=3
#
# On a busy machine, `nice -n -5 bench/run.sh` (as root) keeps other work
# from taking the CPUs mid-run; the niceness is recorded with the results.
set -eu

src=$(cd "$(dirname "$0")/.." && pwd)
build=${HEAPDBG_BENCH_BUILD:-$src/build-bench}

for a in "$@"; do
	case $a in
	-h | --help) exec python3 "$src/bench/bench.py" --help ;;
	esac
done

cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DHEAPDBG_SANITIZE=OFF >/dev/null
cmake --build "$build" --target heapdbg bench_workloads -j"$(nproc)" >/dev/null

# Results go into the docs only from a full run the user did not point
# elsewhere.
out=--out=$src/docs/PERFORMANCE.md
for a in "$@"; do
	case $a in
	--quick | --out | --out=*) out= ;;
	esac
done

exec python3 "$src/bench/bench.py" \
	${out:+--json="$build/bench.json"} \
	--heapdbg "$build/cli/heapdbg" \
	--workload-dir "$build/bench/workloads" \
	--source-dir "$src" \
	--command-line "bench/run.sh${*:+ $*}" \
	${out:+"$out"} "$@"
