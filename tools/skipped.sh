#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# skipped.sh LOG - the end of `make test`: how many tests were skipped, and each with its
# reason (written by tests/skiplog.c and tests/python/conftest.py while the suites ran).
log=$1
if [ ! -s "$log" ]; then
	echo "== skipped: none"
	exit 0
fi
echo "== skipped: $(wc -l <"$log") test(s), each with its reason:"
sed 's/^/   /' "$log"
