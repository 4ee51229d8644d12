#!/usr/bin/env bash
# scripts/reliability.sh: run every reliability scenario with the full
# counts of the issue and write docs/RELIABILITY.md from the results.
#
#   scripts/reliability.sh [--build DIR] [--heapdbg-arg ARG]... [--no-doc]
#
# --build DIR        the build tree to use (default build/, configured and
#                    built here); e.g. build-asan to check an ASan/UBSan
#                    heapdbg
# --heapdbg-arg ARG  an extra option for every heapdbg run (e.g.
#                    --level=0); repeatable
# --no-doc           print the table, leave docs/RELIABILITY.md alone
#
# Exit status 0 when every scenario passed (or was skipped with a
# reason), 1 otherwise.  ctest runs the same scenarios with lower counts
# (tests/reliability/CMakeLists.txt).
set -uo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$src/build
hd_args=()
write_doc=1
while (($#)); do
	case $1 in
	--build) build=$(cd "$2" 2>/dev/null && pwd || echo "$2"); shift 2 ;;
	--heapdbg-arg) hd_args+=("--heapdbg-arg=$2"); shift 2 ;;
	--no-doc) write_doc=0; shift ;;
	*) echo "usage: $0 [--build DIR] [--heapdbg-arg ARG]... [--no-doc]" >&2
	   exit 2 ;;
	esac
done

if [[ ! -x $build/cli/heapdbg || ! -x $build/tests/reliability/rel_target ]]; then
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
		cmake --build "$build" -j"${HEAPDBG_JOBS:-2}" >/dev/null ||
		{ echo "reliability.sh: build failed" >&2; exit 1; }
fi

driver=(python3 "$src/tests/reliability/reliability.py"
	--heapdbg "$build/cli/heapdbg"
	--target "$build/tests/reliability/rel_target" "${hd_args[@]}")
if [[ -x $build/tests/reliability/rel_sleeper32 ]]; then
	driver+=(--sleeper32 "$build/tests/reliability/rel_sleeper32")
fi

# scenario  runs  issue item  description
scenarios=(
	"threads 50 1 threads created and joined at a high rate; attach, burst of 40 threads, detach"
	"exact_load 50 1 --rate=1 while 2 threads allocate hard: 200 known allocations counted"
	"fork 50 2 fork children malloc/free and exit 0 while attached"
	"spawn 50 3 posix_spawn, vfork+exec, vfork+_exit, system() while attached"
	"exec_attach 50 3 attached process execs itself; counts before and after"
	"exec_run 50 3 heapdbg run: the program execs; exit snapshot of the new image"
	"sig_stop 50 4 SIGSTOP/SIGCONT, raise(SIGSTOP), detach while stopped"
	"sig_usr1 50 4 SIGUSR1 handler run thousands of times, none lost"
	"sig_trap 50 4 the tracee's own int3 and raise(SIGTRAP) with its handler"
	"sig_segv 50 4 SIGSEGV handler recovering from a guard page"
	"sig_kill 50 4 tracee killed by SIGKILL while attached"
	"exit_attach 100 4 tracee exits while heapdbg is attaching"
	"quit_sigint 50 5 heapdbg gets SIGINT while 4 threads allocate"
	"quit_sigterm 50 5 heapdbg gets SIGTERM while 4 threads allocate"
	"quit_sighup 50 5 heapdbg gets SIGHUP while 4 threads allocate"
	"hd_killed 20 5 heapdbg killed by SIGKILL while 4 threads allocate: tracee runs on, loads a library"
	"dlopen 50 3 a library loaded, allocating and unloaded again: its blocks counted under its names"
	"quit_tty 50 5 heapdbg's terminal closes while 4 threads allocate"
	"detach 100 6 detach while 4 threads allocate hard"
	"refuse_traced 10 7 refused: already traced by strace"
	"refuse_zombie 10 7 refused: zombie"
	"refuse_kthread 10 7 refused: kernel thread"
	"refuse_self 10 7 refused: heapdbg itself"
	"refuse_32bit 10 7 refused: 32-bit process"
)

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
pct() { # pct N OF -> "100%" or "n/a"
	if (($2 == 0)); then echo "n/a"; else
		awk -v n="$1" -v d="$2" 'BEGIN { v = 100 * n / d;
			if (v == int(v)) printf "%d%%", v; else printf "%.1f%%", v }'
	fi
}
rows=()
status=0
start=$(date +%s)
for s in "${scenarios[@]}"; do
	read -r name runs item desc <<<"$s"
	t0=$(date +%s)
	"${driver[@]}" --scenario "$name" --runs "$runs" >"$log/$name" 2>&1
	rc=$?
	secs=$(($(date +%s) - t0))
	if ((rc == 77)); then
		why=$(sed -n 's/^SKIP: //p' "$log/$name" | head -1)
		rows+=("| $item | $name: $desc | skipped | | | | $why |")
		echo "$name: skipped ($why)"
		continue
	fi
	r=$(grep '^RESULT ' "$log/$name" | tail -1)
	if [[ -z $r ]]; then
		rows+=("| $item | $name: $desc | $runs | **crashed** | | | see the log |")
		echo "$name: the driver failed"; tail -20 "$log/$name"
		status=1
		continue
	fi
	get() { sed -n "s/.* $1=\([0-9/]*\).*/\1/p" <<<"$r"; }
	IFS=/ read -r sv sn <<<"$(get survived)"
	IFS=/ read -r bv bn <<<"$(get restored)"
	IFS=/ read -r lv ln <<<"$(get lost)"
	failed=$(get failed)
	note="${secs}s"
	if ((failed > 0)); then
		status=1
		note="**$failed failed**, ${secs}s"
		grep -A8 '^FAIL' "$log/$name" | head -40
	fi
	rows+=("| $item | $name: $desc | $runs | $(pct "$sv" "$sn") | $(pct "$bv" "$bn") | $(pct "$lv" "$ln") | $note |")
	echo "$name: $runs runs, $failed failed, ${secs}s"
done

# Scenario 8: the command parser under libFuzzer.
fuzz=$build/tests/fuzz/fuzz_cli
if [[ -x $fuzz ]]; then
	t0=$(date +%s)
	if "$src/tests/fuzz/run_fuzz.sh" "$fuzz" "$src/tests/fuzz/corpus" 60 \
		>"$log/fuzz" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log/fuzz")
		rows+=("| 8 | fuzz_cli: tokenizer, report flags, rate/seconds/count and option parsers under libFuzzer+ASan+UBSan, 60 s | ${execs:-?} inputs | n/a | n/a | n/a | no crash, $(($(date +%s) - t0))s |")
	else
		status=1
		rows+=("| 8 | fuzz_cli | | | | | **crash found** |")
		tail -30 "$log/fuzz"
	fi
else
	rows+=("| 8 | fuzz_cli | skipped | | | | no clang with libFuzzer |")
fi
total=$(($(date +%s) - start))

table() {
	echo "| # | scenario | runs | tracee survived | bytes restored | allocations lost | notes |"
	echo "|---|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
}

if ((write_doc)); then
	doc=$src/docs/RELIABILITY.md
	tmp=$doc.tmp
	{
		sed -n '1,/^<!-- results -->$/p' "$doc"
		echo
		echo "Produced by \`scripts/reliability.sh${hd_args[*]:+ ${hd_args[*]}}\` on $(date -u '+%Y-%m-%d %H:%M UTC'),"
		echo "Linux $(uname -r), $(nproc) CPUs, heapdbg $(git -C "$src" describe --always --dirty 2>/dev/null || echo '?'), ${total}s in all."
		echo
		table
		echo
		sed -n '/^<!-- end of results -->$/,$p' "$doc"
	} >"$tmp" && mv "$tmp" "$doc"
	echo "wrote $doc"
else
	table
fi
exit $status
