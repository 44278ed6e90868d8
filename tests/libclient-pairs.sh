#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Counts the pairs of libclient files that call each other (issue 15: the library in
# layers).  Reads the symbols each object defines and needs (nm) and prints every pair
# A <-> B where A uses something B defines and B uses something A defines, then the count.
#
#   tests/libclient-pairs.sh [--check] [build/pic/libclient]
#
# With --check (make test-unit) it fails when any pair is found: the layers stay layers.
set -eu
check=0
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi
dir=${1:-build/pic/libclient}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for o in "$dir"/*.o; do
	b=$(basename "$o" .o)
	nm --defined-only -g "$o" | awk '{print $3}' | sort -u > "$tmp/$b.def"
	nm -u "$o" | awk '{print $2}' | sort -u > "$tmp/$b.use"
done
n=0
for a in "$tmp"/*.def; do
	a=$(basename "$a" .def)
	for b in "$tmp"/*.def; do
		b=$(basename "$b" .def)
		[ "$a" \< "$b" ] || continue
		if [ -n "$(comm -12 "$tmp/$a.use" "$tmp/$b.def")" ] &&
		   [ -n "$(comm -12 "$tmp/$b.use" "$tmp/$a.def")" ]; then
			echo "$a.c <-> $b.c"
			n=$((n + 1))
		fi
	done
done
echo "$n pairs of files call each other"
[ "$check" = 0 ] || [ "$n" = 0 ]
