#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Only kray_* leaves libkray (issue 15): a program that links libkray.a statically, or
# loads libkray.so, must not meet kc_fail, wire_begin or oidmap_get of ours.  Lists every
# defined global symbol of both libraries that does not start with kray_ and fails if there
# is one.  Run by `make test-unit`.
#
#   tests/check-symbols.sh [build/lib]
set -eu
lib=${1:-build/lib}
bad=0
check() { # what, then the symbol names on stdin
	what=$1
	out=$(grep -v '^kray_' || true)
	if [ -n "$out" ]; then
		echo "FAIL: $what exports symbols outside kray_*:"
		echo "$out" | sed 's/^/    /'
		bad=1
	else
		echo "ok: $what exports only kray_* symbols"
	fi
}
# Defined, global (or weak) symbols; the version node (type A) is not a symbol of ours.
nm -g --defined-only "$lib/libkray.a" | awk 'NF == 3 && $2 != "A" {print $3}' | sort -u |
	check libkray.a
nm -D --defined-only "$lib/libkray.so" | awk 'NF == 3 && $2 != "A" {print $3}' | sort -u |
	check libkray.so
# And the proof: a program with its own kc_fail and wire_begin links the whole archive.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/clash.c" <<'C'
#include <kray/kray.h>
int kc_fail(void) { return 0; } /* names libkray uses inside */
int wire_begin = 1;
int main(void) { return kray_init_errmsg() ? wire_begin + kc_fail() - 1 : 1; }
C
if ${CC:-cc} -Iinclude "$tmp/clash.c" -Wl,--whole-archive "$lib/libkray.a" \
	-Wl,--no-whole-archive -ldl -lnuma -lpthread -o "$tmp/clash" 2> "$tmp/err" &&
   "$tmp/clash"; then
	echo "ok: a program with its own kc_fail and wire_begin links libkray.a whole"
else
	echo "FAIL: a static link of libkray.a clashes:"
	sed 's/^/    /' "$tmp/err"
	bad=1
fi
exit $bad
