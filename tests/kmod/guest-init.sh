#!/bin/busybox sh
# SPDX-License-Identifier: Apache-2.0
# /init of the kmod test guest (tests/kmod/run-qemu.sh packs it): mounts what the tests
# need, loads kray.ko with an 8 MiB table, runs the guest test program, then - when the
# initramfs holds kray - krayd with the module and a driver, and powers off.  Markers at
# line start go to the serial console for the host to check.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
mkdir -p /dev/shm && mount -t tmpfs shm /dev/shm # Criterion's arena (the suites)
echo "KRAY-GUEST booted $(uname -r)"
if insmod /kray.ko max_bytes=8388608; then
	/kmod_guest
	echo "KRAY-GUEST kmod_guest exited $?"
else
	echo "KRAY-TEST FAIL insmod: kray.ko did not load"
fi
if [ "$(cat /with-kray)" = 1 ]; then
	sh /kray-guest.sh
fi
echo "KRAY-GUEST done"
sync
poweroff -f
