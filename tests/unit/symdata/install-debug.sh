#!/bin/sh
# install-debug.sh BINARY DEBUGFILE ROOT: put BINARY's separate DEBUGFILE
# where a debugger looks it up by build id, ROOT/.build-id/xx/yyyy.debug
# (as Debian's -dbgsym packages do under /usr/lib/debug).
set -e
id=$(${READELF:-readelf} -n "$1" | sed -n 's/.*Build ID: *//p')
[ -n "$id" ] || { echo "$1: no build id" >&2; exit 1; }
dir="$3/.build-id/$(echo "$id" | cut -c1-2)"
mkdir -p "$dir"
cp "$2" "$dir/$(echo "$id" | cut -c3-).debug"
