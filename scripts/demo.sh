#!/usr/bin/env bash
# scripts/demo.sh: build heapdbg and show its main story on a leaking
# process: attach to the running fixtures/leaky, take a snapshot, let it
# run, take another, and ask what grew and on which source line.
#
#   scripts/demo.sh [--no-build] [BUILD_DIR]     (default BUILD_DIR: build)
#
# The session runs on a pseudo-terminal (scripts/session.py), so what it
# prints is what a person at the prompt sees: each command after the
# "(heapdbg) " prompt, then its output.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_it=1
if [[ ${1:-} == --no-build ]]; then
	build_it=0
	shift
fi
build=${1:-$src/build}

"$src/scripts/deps.sh"
if ((build_it)); then
	cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build "$build" -j2 --target heapdbg fixture_leaky >/dev/null
fi
heapdbg=$build/cli/heapdbg
leaky=$build/fixtures/leaky
for f in "$heapdbg" "$leaky"; do
	[[ -x $f ]] || { echo "demo.sh: $f is missing; build first" >&2; exit 1; }
done

tmp=$(mktemp -d)
leaky_pid=
cleanup() {
	if [[ -n $leaky_pid ]]; then
		kill "$leaky_pid" 2>/dev/null || true
		wait "$leaky_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# The "server": leaks 4 KiB per request, a request every millisecond.  It
# serves for at most 60 s should this script be interrupted.
mkfifo "$tmp/ready"
"$leaky" 60 >"$tmp/ready" &
leaky_pid=$!
read -r -t 30 line <"$tmp/ready" || true
if [[ ${line:-} != ready ]]; then
	echo "demo.sh: fixtures/leaky did not start" >&2
	exit 1
fi

echo "\$ fixtures/leaky &        # a server that leaks 4 KiB per request"
echo "\$ heapdbg attach $leaky_pid"
status=0
python3 "$src/scripts/session.py" "$heapdbg" attach "$leaky_pid" <<'CMDS' || status=$?
snapshot base
sleep 2
snapshot current
top -base base
list leak_session
detach
CMDS
exit $status
