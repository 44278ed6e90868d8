#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Runs a test binary and fails if any process of its run (the test's own workers, krayd,
# kray-worker, drivers it forked) printed a sanitizer report.  A leak that LeakSanitizer
# reports when a Criterion worker or a krayd the harness stopped exits does not fail the
# test by itself: nobody looks at those exit statuses.  `make test-asan` runs every suite
# through this script.
#
#   tests/san-check.sh BINARY [ARGS...]
set -u
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" >"$log" 2>&1
rc=$?
cat "$log"
if grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$log"; then
	echo "san-check: $1: a sanitizer report above (see its 'ERROR:' or 'runtime error:'" \
		"line)" >&2
	[ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
