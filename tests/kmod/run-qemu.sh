#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run-qemu.sh - tests /dev/kray (kmod/) by booting Debian's kernel under qemu.
#
# Modules cannot be loaded on kray's build machines, so this builds kray.ko against the
# Debian headers (linux-headers-amd64, W=1, warnings are errors), downloads the matching
# Debian kernel image once (cached under build/kmod/), packs a busybox initramfs with the
# module and the statically linked guest programs, boots it, and decides pass or fail from
# the markers the guest prints on the serial console (qemu's exit code says nothing about
# the guest).  With KRAY_KMOD_KRAY=1 (the default when build/bin/krayd exists) the guest also
# runs krayd with the module and a driver that gets an object through /dev/kray; with
# KRAY_KMOD_SUITES="objects ..." it also runs those integration suites (build/tests/
# integration/test_NAME, the host's tests) in the guest, krayd and libkray using the module
# (KRAY_KMOD_FILTER: a Criterion --filter for them).
#
# Exits 0 when every guest test passed, 1 when one failed, and 0 with a line starting
# "test-kmod: SKIPPED:" when it cannot run here (no headers, no qemu, the Debian archive
# unreachable) - CI has all of them, so a skip there is visible in the log.
#
#   tests/kmod/run-qemu.sh [BUILD_DIR]     (default build; uses BUILD_DIR/kmod/)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$(cd "$ROOT" && mkdir -p "${1:-build}" && cd "${1:-build}" && pwd)
K="$BUILD/kmod"
TIMEOUT=${KRAY_KMOD_TIMEOUT:-600}

skip() {
	echo "test-kmod: SKIPPED: $*"
	exit 0
}

KVER=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null |
	grep -o 'linux-headers-[^ ,]*' | head -1 | sed 's/^linux-headers-//') || true
[ -n "$KVER" ] || skip "linux-headers-amd64 is not installed (make deps installs it)"
HDRS=/usr/src/linux-headers-$KVER
[ -d "$HDRS" ] || skip "$HDRS is missing (reinstall linux-headers-amd64)"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
[ -x /bin/busybox ] || skip "/bin/busybox (busybox-static) is not installed"
command -v cpio >/dev/null || skip "cpio is not installed"

mkdir -p "$K"
# Everything of this run lives in its own directory, so that two runs never collide.
RUN=$(mktemp -d "$K/run.XXXXXX")
trap 'rm -rf "$RUN"' EXIT

# ---- the module, built in a copy so the source tree stays clean -------------------------
"$ROOT/tests/kmod/build-module.sh" "$KVER" "$RUN/module" >"$RUN/module.log" 2>&1 || {
	cat "$RUN/module.log"
	echo "test-kmod: FAILED: kray.ko does not build cleanly against $KVER (log above)"
	exit 1
}

# ---- the kernel image, downloaded once per version (for every build dir: build/kmod/) ---
CACHE="$ROOT/build/kmod"
mkdir -p "$CACHE"
VMLINUZ="$CACHE/vmlinuz-$KVER"
if [ ! -s "$VMLINUZ" ]; then
	dl=$(mktemp -d "$CACHE/dl.XXXXXX")
	if ! (cd "$dl" && apt-get download "linux-image-$KVER") >"$dl/log" 2>&1; then
		sed 's/^/  /' "$dl/log" | tail -5
		rm -rf "$dl"
		skip "cannot download linux-image-$KVER from the Debian archive (unreachable?)"
	fi
	dpkg-deb --fsys-tarfile "$dl"/linux-image-*.deb | tar -x -C "$dl" "./boot/vmlinuz-$KVER"
	mv "$dl/boot/vmlinuz-$KVER" "$VMLINUZ.tmp" && mv "$VMLINUZ.tmp" "$VMLINUZ"
	rm -rf "$dl"
fi

# ---- the initramfs: busybox, kray.ko, the guest programs, /init --------------------------
IR="$RUN/root"
mkdir -p "$IR"/{bin,dev,proc,sys,tmp,etc}
cp /bin/busybox "$IR/bin/busybox"
cp "$RUN/module/kray.ko" "$IR/kray.ko"
gcc -static -O2 -g -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers \
	-D_GNU_SOURCE -I"$ROOT/include" "$ROOT/tests/kmod/kmod_guest.c" -o "$IR/kmod_guest"
printf 'root:x:0:0::/:/bin/sh\nuser:x:1000:1000::/tmp:/bin/sh\n' >"$IR/etc/passwd"

WITH_KRAY=${KRAY_KMOD_KRAY:-auto}
if [ "$WITH_KRAY" = auto ]; then
	WITH_KRAY=0
	[ -x "$BUILD/bin/krayd" ] && [ -x "$BUILD/tests/kmod/kmod_driver" ] &&
		[ -x "$BUILD/examples/kmod_ls" ] && WITH_KRAY=1
fi
if [ "$WITH_KRAY" = 1 ]; then
	"$ROOT/tests/kmod/pack-kray.sh" "$BUILD" "$IR"
fi
cp "$ROOT/tests/kmod/guest-init.sh" "$IR/init"
chmod +x "$IR/init"
echo "$WITH_KRAY" >"$IR/with-kray"
(cd "$IR" && find . | cpio -o -H newc --quiet | gzip -1) >"$RUN/initramfs.gz"

# ---- boot ------------------------------------------------------------------------------
# The integration suites (KRAY_KMOD_SUITES) need room for their stores and spill dirs.
MEM=512
[ -n "${KRAY_KMOD_SUITES:-}" ] && MEM=3072
ACCEL=()
[ -w /dev/kvm ] && ACCEL=(-enable-kvm -cpu host)
LOG="$RUN/guest.log"
BOOT_TIMEOUT=${KRAY_KMOD_BOOT_TIMEOUT:-180}
# An emulated guest whose serial log has not grown for this long has stalled (the suites
# print each test as it starts and ends; none runs this long silent): boot again.
STALL_TIMEOUT=${KRAY_KMOD_STALL_TIMEOUT:-300}
# A KVM guest reaches /init in a few seconds.  On some hosts KVM cannot run it at all (a
# nested hypervisor that refuses an MSR: qemu aborts; or the kernel hangs in early boot):
# past this many seconds, or when qemu ends first, the guest is booted emulated instead.
KVM_BOOT_TIMEOUT=${KRAY_KMOD_KVM_BOOT_TIMEOUT:-60}

# Boots the guest once; returns 0 when it ran (whatever it printed), 1 when the kernel
# never reached /init within BOOT_TIMEOUT s: emulated (TCG) boots on a loaded host now and
# then hang in early boot, and that says nothing about kray; 2 when an emulated CPU
# stalled (a soft lockup under TCG, below); 3 when an emulated guest printed nothing for
# STALL_TIMEOUT s; 4 when KVM could not boot it (above).
boot() {
	local qemu waited=0

	timeout "$TIMEOUT" qemu-system-x86_64 "${ACCEL[@]}" -kernel "$VMLINUZ" \
		-initrd "$RUN/initramfs.gz" -append "console=ttyS0 panic=-1 quiet loglevel=5" \
		-nographic -m "$MEM" -smp 2 -no-reboot </dev/null >"$LOG" 2>&1 &
	qemu=$!
	while kill -0 "$qemu" 2>/dev/null; do
		# Emulated (TCG) vCPUs on a 2-core host can starve each other: a CPU then waits
		# for ever in smp_call_function_many_cond() for the other to answer its IPI, and
		# the watchdog says "soft lockup".  Under emulation that is the host, not kray:
		# stop and boot again (under KVM it is reported, not retried).
		if [ ${#ACCEL[@]} = 0 ] && grep -aq 'watchdog: BUG: soft lockup' "$LOG" 2>/dev/null; then
			kill "$qemu" 2>/dev/null || true
			wait "$qemu" || true
			return 2
		fi
		if grep -aq '^KRAY-GUEST booted' <(tr -d '\r' 2>/dev/null <"$LOG"); then
			local size=0 still=0 now

			while kill -0 "$qemu" 2>/dev/null; do
				if [ ${#ACCEL[@]} = 0 ] &&
					grep -aq 'watchdog: BUG: soft lockup' "$LOG"; then
					kill "$qemu" 2>/dev/null || true
					wait "$qemu" || true
					return 2
				fi
				now=$(stat -c %s "$LOG" 2>/dev/null || echo 0)
				if [ "$now" = "$size" ]; then
					still=$((still + 1))
				else
					size=$now
					still=0
				fi
				if [ ${#ACCEL[@]} = 0 ] && [ "$still" -ge "$STALL_TIMEOUT" ]; then
					kill "$qemu" 2>/dev/null || true
					wait "$qemu" || true
					return 3
				fi
				sleep 1
			done
			wait "$qemu" || true
			return 0
		fi
		if [ ${#ACCEL[@]} != 0 ] && [ "$waited" -ge "$KVM_BOOT_TIMEOUT" ]; then
			kill "$qemu" 2>/dev/null || true
			wait "$qemu" || true
			return 4
		fi
		if [ "$waited" -ge "$BOOT_TIMEOUT" ]; then
			kill "$qemu" 2>/dev/null || true # timeout(1) passes it on to qemu
			wait "$qemu" || true
			return 1
		fi
		sleep 1
		waited=$((waited + 1))
	done
	wait "$qemu" || true
	if [ ${#ACCEL[@]} != 0 ] && ! grep -aq '^KRAY-GUEST booted' <(tr -d '\r' <"$LOG"); then
		return 4 # qemu ended before the guest's /init ran: KVM refused it
	fi
	return 0
}

echo "test-kmod: booting $KVER under qemu${ACCEL:+ (kvm)}; serial log in $K/guest.log"
start=$(date +%s)
booted=0
for attempt in 1 2 3; do
	rc=0
	boot || rc=$?
	if [ $rc = 4 ]; then
		echo "test-kmod: KVM could not boot the guest ($(tr -d '\r' <"$LOG" |
			grep -a -m1 -iE 'error|assert' || echo "no output past the firmware")):" \
			"emulating it (TCG) instead"
		cp "$LOG" "$K/guest-kvm.log"
		ACCEL=()
		rc=0
		boot || rc=$?
	fi
	if [ $rc = 0 ]; then
		booted=1
		break
	fi
	if [ $rc = 2 ]; then
		echo "test-kmod: an emulated CPU stalled (soft lockup in the guest; attempt" \
			"$attempt of 3): booting again"
	elif [ $rc = 3 ]; then
		echo "test-kmod: the emulated guest printed nothing for ${STALL_TIMEOUT} s" \
			"(attempt $attempt of 3; an emulation stall): booting again"
	else
		echo "test-kmod: the guest kernel did not reach /init in ${BOOT_TIMEOUT} s" \
			"(attempt $attempt of 3; an emulation hang)"
	fi
	cp "$LOG" "$K/guest-hung.log"
done
echo "test-kmod: guest ran $(($(date +%s) - start)) s"
if [ $booted = 0 ]; then
	echo "test-kmod: FAILED: the guest never reached /init (last log: $K/guest-hung.log)"
	exit 1
fi
cp "$LOG" "$K/guest.log.$$" && mv -f "$K/guest.log.$$" "$K/guest.log" # the last run's

# ---- verdict from the markers ----------------------------------------------------------
tr -d '\r' <"$LOG" | grep -aE '^ *(KRAY-TEST|KRAY-INFO|KRAY-GUEST|KRAY-DRIVER|krayd:)' | sed 's/^/  /' || true
EXPECT=(version attach publish-get-map withdraw-if-unused refuse-unsealed scope wait-2-of-3 wait-timeout
	bad-args memory-bound-and-release concurrent-stress kill-daemon-and-adopt unload-with-objects)
[ "$WITH_KRAY" = 1 ] && EXPECT+=(krayd-publishes-driver-gets kmod-get-syscalls krayd-restart-drops-orphans)
if [ "$WITH_KRAY" = 1 ]; then
	for s in ${KRAY_KMOD_SUITES:-}; do EXPECT+=("suite-$s-with-kmod"); done
fi
fail=0
clean=$(tr -d '\r' <"$LOG")
for t in "${EXPECT[@]}"; do
	if ! grep -aqE "^KRAY-TEST ok $t( .*)?\$" <<<"$clean"; then
		echo "test-kmod: FAILED: no 'ok' marker for $t"
		fail=1
	fi
done
grep -aq '^KRAY-TEST DONE pass=[0-9]* fail=0$' <<<"$clean" ||
	{ echo "test-kmod: FAILED: the guest test did not finish clean"; fail=1; }
grep -aq '^KRAY-TEST FAIL' <<<"$clean" && fail=1
if grep -aqE 'BUG:|WARNING:|Oops|Call Trace|KASAN|general protection' <<<"$clean"; then
	grep -aE -A5 'BUG:|WARNING:|Oops|general protection' <<<"$clean" | head -40
	echo "test-kmod: FAILED: the guest kernel complained (above)"
	fail=1
fi
if [ $fail -ne 0 ]; then
	echo "test-kmod: FAILED (full serial log: $K/guest.log)"
	exit 1
fi
echo "test-kmod: passed (${#EXPECT[@]} guest tests)"
