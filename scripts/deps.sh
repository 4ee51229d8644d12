#!/usr/bin/env bash
# scripts/deps.sh: make sure the Debian 12 packages heapdbg needs to build
# and test are installed.  As root, installs what is missing; otherwise
# prints the exact command to run and exits 1.
set -euo pipefail

packages=(
	cmake make gcc g++ pkg-config
	libunwind-dev libelf-dev libdw-dev libzydis-dev libreadline-dev
	zlib1g-dev libprotobuf-c-dev protobuf-c-compiler
	python3 tmux golang-go strace procps file binutils
	clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [[ "$status" != "install ok installed" ]]; then
		missing+=("$p")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
	echo "deps.sh: installing ${missing[*]}" >&2
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends "${missing[@]}"
	exit 0
fi

echo "deps.sh: missing packages; install them with:" >&2
echo "sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
exit 1
