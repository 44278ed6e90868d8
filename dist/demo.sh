#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# demo.sh - what `make demo` runs after the build: starts a local krayd with
# `kray start`, runs the example jobs (square, pi, and the Python seed examples) against
# it through $KRAY_ADDRESS, shows `kray status`, and stops it.  krayd is stopped and the temporary directory
# removed however the script ends.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=$root/build
KRAY=$B/bin/kray

fail() {
	echo "demo: FAILED: $*" >&2
	exit 1
}

for f in "$KRAY" "$B/bin/krayd" "$B/examples/square" "$B/examples/counter" "$B/examples/pi"; do
	[ -x "$f" ] || fail "$f is missing: run 'make all' first"
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/kray-demo.XXXXXX")
sock=$dir/krayd.sock
started=0

cleanup() {
	local rc=$?

	if [ "$started" = 1 ]; then
		"$KRAY" stop --socket "$sock" >/dev/null 2>&1 || true
	fi
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() {
	printf '\n== %s\n' "$*"
}

step "kray start --socket $sock"
started=1 # from here on, stop it whatever happens
"$KRAY" start --socket "$sock" || fail "kray start"
export KRAY_ADDRESS=$sock

step "square (examples/square.c)"
"$B/examples/square" || fail "examples/square"

step "counter (examples/counter.c): four actors"
"$B/examples/counter" || fail "examples/counter"

step "pi (examples/pi.c)"
"$B/examples/pi" || fail "examples/pi"

# The seed's Ray examples in Python, against the same krayd (kray.init() uses
# $KRAY_ADDRESS), when the package is built.
if [ -f "$B/python/kray/__init__.py" ]; then
	step "the seed's Ray examples in Python (examples/python/tasks.py, actors.py)"
	PYTHONPATH=$B/python /usr/bin/python3 "$root/examples/python/tasks.py" ||
		fail "examples/python/tasks.py"
	PYTHONPATH=$B/python /usr/bin/python3 "$root/examples/python/actors.py" ||
		fail "examples/python/actors.py"
fi

step "kray status"
"$KRAY" status --socket "$sock" || fail "kray status"

step "kray stop"
"$KRAY" stop --socket "$sock" || fail "kray stop"
started=0

echo
echo "demo: OK"
