#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run.sh [O] - `make test-deb` (issue 22): kray's Debian packages and pip package, end to
# end.  Must run as root (chroot, mounts).
#
#   1. make deb twice: the tree's version, and the same tree as version V+upgradetest1
#      (a changelog entry added in build.sh's copy) for the upgrade;
#   2. lintian on the first build: every tag must be in tests/deb/lintian-allow (each
#      with its reason there);
#   3. a pristine Debian 12 root (debootstrap --variant=minbase from deb.debian.org, with
#      the packages' dependencies and gcc/pkg-config for the C example; cached as a tarball
#      in O/deb-test/, made once), with /proc, /sys, /sys/fs/bpf and /dev mounted and a
#      fresh tmpfs on /run: dpkg -i of krayd, libkray0, libkray-dev, python3-kray; checks
#      the group, the conffile, the enabled unit; starts krayd with the installed unit's
#      ExecStart= line (systemd does not run in a chroot: what the unit's RuntimeDirectory=,
#      StateDirectory= and UMask= would do is done by hand); compiles examples/square.c
#      with pkg-config and runs it, and examples/python/tasks.py and actors.py, as a user
#      in the group kray, against the service (and tasks.py once more with a private
#      krayd); checks that a user outside the group is refused;
#   4. upgrade to the rebuilt packages while krayd runs: the postinst must restart the
#      unit (deb-systemd-invoke restart, checked in the script since nothing restarts it
#      in a chroot), the test restarts krayd as systemd would and runs the examples again;
#      an edited conffile is kept;
#   5. purge: krayd stopped as the prerm would, then dpkg --purge; nothing left: programs,
#      /etc/kray, /var/lib/kray, the group kray, the unit's enablement;
#   6. kray-dkms: the module source it ships builds against the host's kernel headers
#      (linux-headers-amd64; skipped, saying so, without them);
#   7. pip: a fresh venv (--system-site-packages) from /usr/bin/python3, pip install
#      --no-build-isolation --no-index of the tree; python3 -m build --no-isolation --wheel
#      and that wheel into a second venv; both run examples/python/tasks.py, actors.py and
#      numpy_zero_copy.py with the krayd the package put in the venv.
#
# Everything is removed at exit, on failure too: krayd stopped by pid, the chroot's mounts
# unmounted (the chroot is deleted only when nothing is mounted under it), the venvs.
# BPF: krayd runs with its default (bpf = on) and sees the host's /sys/fs/bpf; it pins its
# maps under /sys/fs/bpf/kray/<node>/ and removes them at exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
O=${1:-build}
case "$O" in /*) ;; *) O=$ROOT/$O ;; esac
T=$O/deb-test
SUITE=bookworm
MIRROR=${KRAY_DEB_MIRROR:-http://deb.debian.org/debian}
# The packages' run-time dependencies (krayd, libkray0, python3-kray), systemd (for
# systemd-sysusers, as on any Debian 12), and what compiles the C example.
INCLUDE=systemd,python3,python3-cloudpickle,libpython3.11,libbpf1,libssl3,liburing2,libnuma1,libsystemd0,libhiredis0.14,gcc,libc6-dev,pkg-config,libnuma-dev
TARBALL=$T/$SUITE-$(echo "$INCLUDE" | md5sum | cut -c1-8).tar

start=$(date +%s)
say() { echo "test-deb: $*"; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (chroot, mount)"

CH=$T/root
KRAYD_PID=
TMPV=
# SIGTERM to krayd alone (KillMode=mixed), as systemctl stop does.
stop_krayd() {
	[ -n "$KRAYD_PID" ] || return 0
	kill -TERM "$KRAYD_PID" 2>/dev/null || true
	for _ in $(seq 100); do kill -0 "$KRAYD_PID" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$KRAYD_PID" 2>/dev/null || true
	wait "$KRAYD_PID" 2>/dev/null || true
	KRAYD_PID=
}
mounted() { awk -v r="$CH" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts; }
unmount_all() { # deepest first
	for m in $(mounted | sort -r); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
cleanup() {
	set +e
	stop_krayd
	unmount_all
	if [ -n "$(mounted)" ]; then
		echo "test-deb: still mounted under $CH, not removing it:" >&2
		mounted >&2
	else
		rm -rf "$CH"
	fi
	[ -n "$TMPV" ] && rm -rf "$TMPV"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

in_ch() { chroot "$CH" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# ---- 1. the packages ------------------------------------------------------------------
VERSION=$(dpkg-parsechangelog -l "$ROOT/debian/changelog" -S Version)
V2=$VERSION+upgradetest1
say "make deb ($VERSION), and again as $V2"
"$ROOT/tests/deb/build.sh" "$T/v1" >/dev/null
KRAY_DEB_VERSION=$V2 "$ROOT/tests/deb/build.sh" "$T/v2" >/dev/null
for p in krayd libkray0 libkray-dev python3-kray; do
	[ -f "$T/v1/${p}_${VERSION}_amd64.deb" ] || fail "no $p $VERSION"
	[ -f "$T/v2/${p}_${V2}_amd64.deb" ] || fail "no $p $V2"
done
[ -f "$T/v1/kray-dkms_${VERSION}_all.deb" ] || fail "no kray-dkms"
say "5 packages built ($(( $(date +%s) - start ))s)"

# ---- 2. lintian -----------------------------------------------------------------------
lintian -I --pedantic --tag-display-limit 0 "$T"/v1/*.changes 2>/dev/null |
	grep -E '^[EWIPX]: ' | sort -u >"$T/lintian.txt" || true
bad=0
while read -r line; do
	# "W: pkg: tag [extra]" -> "pkg: tag"
	key=$(echo "$line" | awk '{ print $2, $3 }')
	if ! grep -v '^#' "$ROOT/tests/deb/lintian-allow" | grep -qxF "$key"; then
		echo "test-deb: lintian tag not in tests/deb/lintian-allow: $line" >&2
		bad=1
	fi
done <"$T/lintian.txt"
[ "$bad" -eq 0 ] || fail "lintian (above; the whole output: $T/lintian.txt)"
say "lintian: $(wc -l <"$T/lintian.txt") tag(s), all allowed with a reason"

# ---- 3. install into a pristine Debian 12 ---------------------------------------------
if [ ! -f "$TARBALL" ]; then
	say "debootstrap $SUITE (minbase) from $MIRROR, once: cached as $TARBALL"
	rm -rf "$T/bootstrap"
	if ! debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$T/bootstrap" "$MIRROR" \
		>"$T/debootstrap.log" 2>&1; then
		tail -20 "$T/debootstrap.log" >&2
		rm -rf "$T/bootstrap"
		fail "debootstrap (log: $T/debootstrap.log)"
	fi
	tar -C "$T/bootstrap" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
	rm -rf "$T/bootstrap"
fi
[ -z "$(mounted)" ] || fail "something is still mounted under $CH"
rm -rf "$CH" && mkdir -p "$CH"
tar -C "$CH" -xf "$TARBALL"
mount -t proc proc "$CH/proc"
# /sys with what is mounted below it (/sys/fs/bpf, the tracing file systems for the
# scheduler tracepoints, cgroups); rslave, so that unmounting here never reaches the host.
mount --rbind /sys "$CH/sys"
mount --make-rslave "$CH/sys"
mount --bind /dev "$CH/dev"
mount -t tmpfs -o mode=0755 tmpfs "$CH/run"
cp /etc/resolv.conf "$CH/etc/" 2>/dev/null || true

: >"$T/krayd.log"
mkdir -p "$CH/debs"
cp "$T"/v1/*.deb "$T"/v2/*.deb "$CH/debs/"
say "dpkg -i krayd libkray0 libkray-dev python3-kray $VERSION"
in_ch dpkg -i /debs/libkray0_"$VERSION"_amd64.deb /debs/krayd_"$VERSION"_amd64.deb \
	/debs/libkray-dev_"$VERSION"_amd64.deb /debs/python3-kray_"$VERSION"_amd64.deb \
	>"$T/dpkg-install.log" 2>&1 || { cat "$T/dpkg-install.log" >&2; fail "dpkg -i"; }
in_ch getent group kray >/dev/null || fail "no group kray after install (sysusers)"
[ -f "$CH/etc/kray/krayd.conf" ] || fail "no /etc/kray/krayd.conf"
grep -qx /etc/kray/krayd.conf "$CH/var/lib/dpkg/info/krayd.conffiles" || fail "krayd.conf is no conffile"
[ -L "$CH/etc/systemd/system/multi-user.target.wants/krayd.service" ] ||
	fail "krayd.service not enabled by the postinst"
grep -q "deb-systemd-invoke \$_dh_action 'krayd.service'" "$CH/var/lib/dpkg/info/krayd.postinst" ||
	fail "the postinst does not start krayd.service"

UNIT=$CH/lib/systemd/system/krayd.service
EXEC=$(sed -n 's/^ExecStart=//p' "$UNIT")
[ -n "$EXEC" ] || fail "no ExecStart= in $UNIT"
grep -qx 'Group=kray' "$UNIT" && grep -qx 'UMask=0007' "$UNIT" || fail "the unit changed: update this test"

# What systemd does before ExecStart= (RuntimeDirectory=kray 0750 root:kray,
# StateDirectory=kray 0700, Group=kray, UMask=0007), then the command line itself.
start_krayd() {
	install -d -m 0750 "$CH/run/kray" && in_ch chgrp kray /run/kray
	install -d -m 0700 "$CH/var/lib/kray"
	say "krayd: $EXEC (from the unit)"
	setsid chroot "$CH" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
		/usr/bin/setpriv --regid=kray --clear-groups -- \
		/bin/sh -c "umask 0007; exec $EXEC" >>"$T/krayd.log" 2>&1 </dev/null &
	KRAYD_PID=$!
	for _ in $(seq 100); do
		[ -S "$CH/run/kray/krayd.sock" ] && return 0
		kill -0 "$KRAYD_PID" 2>/dev/null || { cat "$T/krayd.log" >&2; fail "krayd exited"; }
		sleep 0.1
	done
	cat "$T/krayd.log" >&2
	fail "krayd's socket did not appear"
}

# The examples, as alice (group kray), in /opt (the unit hides /home; worker-user nobody
# must read the job's library).
in_ch useradd -m -G kray alice
in_ch useradd -m bob
install -d -m 0755 "$CH/opt/kray-test"
cp "$ROOT/examples/square.c" "$ROOT/examples/square_fns.c" "$ROOT/examples/python/tasks.py" \
	"$ROOT/examples/python/actors.py" "$CH/opt/kray-test/"
sed 's/^ray.init()$/ray.init("auto")/' "$ROOT/examples/python/tasks.py" >"$CH/opt/kray-test/tasks_service.py"
sed 's/^ray.init()$/ray.init("auto")/' "$ROOT/examples/python/actors.py" >"$CH/opt/kray-test/actors_service.py"
grep -q 'ray.init("auto")' "$CH/opt/kray-test/tasks_service.py" || fail "tasks.py changed: update this test"
in_ch sh -c 'cd /opt/kray-test &&
	gcc -O2 -o square square.c $(pkg-config --cflags --libs kray) &&
	gcc -O2 -fPIC -shared -o libsquare_fns.so square_fns.c $(pkg-config --cflags --libs kray)' ||
	fail "examples/square.c does not build with pkg-config kray (libkray-dev)"
chmod -R a+rX "$CH/opt/kray-test"

as_alice() { in_ch runuser -u alice -- env HOME=/home/alice KRAY_ADDRESS=/run/kray/krayd.sock "$@"; }
expect() { # expect WANT CMD...: runs CMD, a line of its output must be WANT (a private
	   # krayd's stderr may add a line: bpf off for a user without privileges)
	local out
	out=$("${@:2}" 2>&1) || { echo "$out" >&2; fail "${*:2}"; }
	grep -qxF "$1" <<<"$out" || { echo "$out" >&2; fail "${*:2}: wanted '$1'"; }
}
run_examples() { # $1: which installed version
	expect "[0, 1, 4, 9]" as_alice /opt/kray-test/square
	expect "[0, 1, 4, 9]" as_alice python3 /opt/kray-test/tasks_service.py
	expect "[1, 1, 1, 1]" as_alice python3 /opt/kray-test/actors_service.py
	# tasks.py as written: a private krayd, started by libkray from /usr/bin/krayd.
	expect "[0, 1, 4, 9]" in_ch runuser -u alice -- env HOME=/home/alice python3 /opt/kray-test/tasks.py
	as_alice kray status --socket /run/kray/krayd.sock >"$T/status.txt" 2>&1 ||
		{ cat "$T/status.txt" >&2; fail "kray status"; }
	say "$1: square.c, tasks.py, actors.py against the service, tasks.py with a private krayd: ok"
}

start_krayd
run_examples "$VERSION"
if grep -q 'bpf: scheduler metrics on' "$T/krayd.log"; then
	say "krayd's BPF programs loaded in the chroot (bpf = on)"
else
	say "krayd ran without BPF here (its log: $T/krayd.log)"
fi
if in_ch runuser -u bob -- env KRAY_ADDRESS=/run/kray/krayd.sock /opt/kray-test/square >/dev/null 2>&1; then
	fail "bob (not in the group kray) reached the service"
fi
echo "# an operator's edit" >>"$CH/etc/kray/krayd.conf"
in_ch sh -c 'umask 077; echo 0123456789abcdef0123456789abcdef > /etc/kray/cluster.token'

# ---- 4. upgrade -----------------------------------------------------------------------
say "upgrade to $V2 while krayd runs"
old_pid=$KRAYD_PID
in_ch env DEBIAN_FRONTEND=noninteractive dpkg -i --force-confold \
	/debs/libkray0_"$V2"_amd64.deb /debs/krayd_"$V2"_amd64.deb \
	/debs/libkray-dev_"$V2"_amd64.deb /debs/python3-kray_"$V2"_amd64.deb \
	>"$T/dpkg-upgrade.log" 2>&1 || { cat "$T/dpkg-upgrade.log" >&2; fail "dpkg -i (upgrade)"; }
[ "$(in_ch dpkg-query -W -f='${Version}' krayd)" = "$V2" ] || fail "krayd is not $V2"
grep -q '_dh_action=restart' "$CH/var/lib/dpkg/info/krayd.postinst" ||
	fail "the postinst does not restart krayd.service on upgrade"
grep -qx "# an operator's edit" "$CH/etc/kray/krayd.conf" || fail "the upgrade lost the edited conffile"
[ -f "$CH/etc/kray/krayd.conf.dpkg-new" ] && fail "krayd.conf.dpkg-new after the upgrade (the conffile did not change)"
kill -0 "$old_pid" || fail "krayd $VERSION stopped during the upgrade"
stop_krayd
start_krayd
run_examples "$V2"

# ---- 5. purge -------------------------------------------------------------------------
stop_krayd
say "dpkg --purge"
in_ch dpkg --purge python3-kray libkray-dev krayd libkray0 >"$T/dpkg-purge.log" 2>&1 ||
	{ cat "$T/dpkg-purge.log" >&2; fail "dpkg --purge"; }
for f in /usr/bin/krayd /usr/bin/kray /usr/bin/kray-worker /usr/lib/libkray.so.0 /etc/kray \
	 /var/lib/kray /usr/lib/sysusers.d/kray.conf /lib/systemd/system/krayd.service \
	 /etc/systemd/system/multi-user.target.wants/krayd.service \
	 /usr/lib/python3/dist-packages/kray; do
	if [ -e "$CH$f" ] || [ -L "$CH$f" ]; then fail "$f is left after purge"; fi
done
in_ch getent group kray >/dev/null && fail "the group kray is left after purge"
say "purge: nothing left"
stop_krayd
unmount_all
[ -z "$(mounted)" ] || fail "could not unmount everything under $CH"
rm -rf "$CH"

# ---- 6. kray-dkms ---------------------------------------------------------------------
KVER=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null |
	grep -o 'linux-headers-[^ ,]*' | head -1 | sed 's/^linux-headers-//')
TMPV=$(mktemp -d "$T/tmp.XXXXXX")
if [ -n "$KVER" ] && [ -d "/usr/src/linux-headers-$KVER" ]; then
	dpkg-deb -x "$T/v1/kray-dkms_${VERSION}_all.deb" "$TMPV/dkms"
	src=$TMPV/dkms/usr/src/kray-$VERSION
	grep -qx "PACKAGE_VERSION=\"$VERSION\"" "$src/dkms.conf" || fail "dkms.conf: no version"
	make -C "/usr/src/linux-headers-$KVER" M="$src" modules >"$T/dkms-build.log" 2>&1 ||
		{ tail -20 "$T/dkms-build.log" >&2; fail "kray-dkms's source does not build for $KVER"; }
	[ -f "$src/kray.ko" ] || fail "no kray.ko from kray-dkms's source"
	say "kray-dkms: its source builds kray.ko for $KVER (as DKMS's default make does)"
else
	say "kray-dkms: SKIPPED the module build: linux-headers-amd64 is not installed"
fi

# ---- 7. pip ---------------------------------------------------------------------------
say "pip install --no-build-isolation . into a fresh venv"
/usr/bin/python3 -m venv --system-site-packages "$TMPV/venv"
(cd "$ROOT" && KRAY_MAKE_ARGS=-j2 "$TMPV/venv/bin/pip" install -q --no-build-isolation \
	--no-index . >"$T/pip.log" 2>&1) || { tail -30 "$T/pip.log" >&2; fail "pip install"; }
(cd "$ROOT" && /usr/bin/python3 -m build --no-isolation --wheel --outdir "$TMPV/wheel" \
	>"$T/wheel.log" 2>&1) || { tail -30 "$T/wheel.log" >&2; fail "python3 -m build --wheel"; }
/usr/bin/python3 -m venv --system-site-packages "$TMPV/venv2"
"$TMPV/venv2/bin/pip" install -q --no-index "$TMPV"/wheel/kray-*.whl >>"$T/wheel.log" 2>&1 ||
	{ tail -30 "$T/wheel.log" >&2; fail "pip install of the wheel"; }
for v in venv venv2; do
	where=$(cd / && "$TMPV/$v/bin/python" -c 'import kray; print(kray.__file__)')
	case "$where" in "$TMPV/$v/"*) ;; *) fail "$v imports kray from $where" ;; esac
	# No KRAY_* from the caller: the venv's own krayd (venv/bin, beside venv/lib/libkray).
	pyrun() { (cd / && env -u KRAY_ADDRESS -u KRAY_KRAYD -u KRAY_WORKER -u PYTHONPATH \
		"$TMPV/$v/bin/python" "$@"); }
	expect "[0, 1, 4, 9]" pyrun "$ROOT/examples/python/tasks.py"
	expect "[1, 1, 1, 1]" pyrun "$ROOT/examples/python/actors.py"
	if "$TMPV/$v/bin/python" -c 'import numpy' 2>/dev/null; then
		pyrun "$ROOT/examples/python/numpy_zero_copy.py" >"$T/numpy.txt" 2>&1 ||
			{ cat "$T/numpy.txt" >&2; fail "$v: numpy_zero_copy.py"; }
	fi
	say "pip ($v): tasks.py, actors.py, numpy_zero_copy.py: ok"
done

say "PASS ($(( $(date +%s) - start ))s)"
