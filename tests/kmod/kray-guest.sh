#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Run by the kmod test guest's /init after kmod_guest (which unloads the module at its end):
# kray itself with /dev/kray.  Loads kray.ko again, starts krayd, and runs the driver
# through the module and through the socket; then kills krayd while an object is published
# and checks that the next krayd withdraws the orphan.  Prints KRAY-TEST markers.
B=/kray/bin
D=/kray/tests/kmod/kmod_driver
S=/tmp/k/krayd.sock
L=/tmp/k/krayd.log
export KRAY_ADDRESS=$S

fail() {
	echo "KRAY-TEST FAIL $1: $2"
	[ -f $L ] && sed 's/^/  krayd: /' $L | tail -20
	exit 1
}

start_krayd() {
	$B/krayd --socket $S --prestart 0 --pool-size 0 --log-level debug >>$L 2>&1 &
	KRAYD=$!
	for i in $(seq 1 200); do
		[ -S $S ] && return 0
		sleep 0.1
	done
	fail "$1" "krayd did not start"
}

mkdir -p /tmp/k
insmod /kray.ko || fail krayd-publishes-driver-gets "insmod"
start_krayd krayd-publishes-driver-gets
# The socket can exist before krayd has attached to /dev/kray (slowly, under the sanitizers
# in an emulated guest): wait for its word.
for i in $(seq 1 200); do
	grep -q "/dev/kray: publishing large objects" $L && break
	sleep 0.1
done
grep -q "/dev/kray: publishing large objects" $L ||
	fail krayd-publishes-driver-gets "krayd did not attach to /dev/kray"
KRAYD_PID=$KRAYD $D get kmod || fail krayd-publishes-driver-gets "driver through the module"
KRAY_KMOD=0 $D get socket || fail krayd-publishes-driver-gets "driver through the socket"
echo "KRAY-TEST ok krayd-publishes-driver-gets"

# System calls per get, counted under strace (timing in this guest means nothing).
if [ -x /kray/bench/bench_kmod ]; then
	# (LeakSanitizer cannot run under strace: a sanitized build counts without it.)
	out=$(ASAN_OPTIONS=detect_leaks=0 /kray/bench/bench_kmod --counts-only 2>&1)
	echo "$out" | sed 's/^/KRAY-INFO /'
	# With the module: a get of an object already mapped is 1 ioctl; a first get is the
	# ioctl plus libkray's 5 (seal and size checks, mmap, close).
	echo "$out" | awk '
		/per kmod_get_repeat/ { r = $6 }
		/per kmod_get_first/ { f = $6 }
		END { exit !(r != "" && r + 0 <= 1.05 && f != "" && f + 0 <= 6.05) }' ||
		fail kmod-get-syscalls "more system calls per get than expected (above)"
	echo "KRAY-TEST ok kmod-get-syscalls"
else
	echo "KRAY-TEST ok kmod-get-syscalls (skipped: no strace on the host to copy)"
fi

# krayd dies with an object published: the module keeps it; the next krayd withdraws it.
rm -f /tmp/k/held
$D hold /tmp/k/held &
HOLDER=$!
for i in $(seq 1 100); do [ -f /tmp/k/held ] && break; sleep 0.1; done
[ "$($D count)" = objects=1 ] || fail krayd-restart-drops-orphans "the held object is not in the table"
kill -9 $KRAYD
wait $KRAYD 2>/dev/null
kill $HOLDER
wait $HOLDER 2>/dev/null
rm -f $S
[ "$($D count)" = objects=1 ] || fail krayd-restart-drops-orphans "the orphan did not stay in the table"
/kray/examples/kmod_ls | sed 's/^/KRAY-INFO kmod_ls: /'
/kray/examples/kmod_ls | grep -q "(orphan: its krayd is gone)" ||
	fail krayd-restart-drops-orphans "examples/kmod_ls does not show the orphan"
start_krayd krayd-restart-drops-orphans
# The socket exists before krayd has attached to /dev/kray: wait for its word.
for i in $(seq 1 100); do
	grep -q "withdrew 1 objects left by krayds that died" $L && break
	sleep 0.1
done
grep -q "withdrew 1 objects left by krayds that died" $L ||
	fail krayd-restart-drops-orphans "the new krayd did not adopt the orphan"
[ "$($D count)" = objects=0 ] || fail krayd-restart-drops-orphans "the orphan is still there"
kill $KRAYD
wait $KRAYD 2>/dev/null
# A sanitized krayd (tests/kmod/run-qemu.sh build-asan) reports into its log.
grep -qE "ERROR: AddressSanitizer|LeakSanitizer: detected|runtime error" $L &&
	fail krayd-restart-drops-orphans "krayd's sanitizers reported (log below)"
echo "KRAY-TEST ok krayd-restart-drops-orphans"

# The host's integration suites, run here with the module (KRAY_KMOD_SUITES at pack time).
if [ -f /kray/suites ]; then
	unset KRAY_ADDRESS
	filter=$(cat /kray/filter 2>/dev/null)
	for s in $(cat /kray/suites); do
		# --verbose, and as it runs: the host sees each test start and end (and boots
		# again when an emulated guest stops making progress: run-qemu.sh).
		(
			KRAY_KRAYD=$B/krayd KRAY_WORKER=$B/kray-worker KRAY_TEST_CODE_PATH=/kray/tests \
				KRAY_BIN=$B /kray/tests/integration/test_$s --jobs 1 --verbose \
				${filter:+--filter "$filter"} 2>&1
			echo $? >/tmp/suite.rc
		) | sed 's/^/  /'
		rc=$(cat /tmp/suite.rc)
		if [ "$rc" = 0 ]; then
			echo "KRAY-TEST ok suite-$s-with-kmod"
		else
			echo "KRAY-TEST FAIL suite-$s-with-kmod: exit $rc"
		fi
	done
fi
rmmod kray || echo "KRAY-TEST FAIL rmmod after krayd"
