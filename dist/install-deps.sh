#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# install-deps.sh - installs the Debian 12 packages kray needs to build, test and run,
# and only those that are missing.  Run by `make deps` (and so by `make demo`/`make test`).
set -euo pipefail

# The packages kray needs: add new ones here.
PACKAGES=(
	build-essential pkg-config liburing-dev libnuma-dev libbpf-dev libelf-dev zlib1g-dev
	libcriterion-dev clang llvm bpftool libsystemd-dev iproute2 procps
	libclang-rt-14-dev # libFuzzer for make fuzz: clang only recommends it
	python3-dev python3-cloudpickle python3-numpy python3-pytest # the Python wrapper (python/)
	python3-torch python3-sklearn python3-joblib # kray.rllib's learner (torch), kray.util.joblib and its scikit-learn test and example (issue 16)
	libhiredis-dev # the head's GCS in Redis (gcs-storage = redis://..., daemon/cluster/gcs_redis.c)
	redis-server # tests/integration/test_gcs_redis.c starts a real one on a loopback port
	libssl-dev # libcrypto: HMAC-SHA256 of the cluster token (daemon/cluster/net.c)
	clang-format # make format-check (part of make test): the C style in .clang-format
	groff-base systemd # test_install renders the man pages and checks the unit (systemd-analyze)
	debhelper dh-python dh-dkms chrpath # make deb: dpkg-buildpackage with dh (debian/rules), the python3 and dkms sequences, RPATHs removed
	lintian debootstrap # make test-deb: lintian's check, the pristine Debian 12 root the packages are installed into
	python3-venv python3-setuptools python3-wheel python3-build # pip install --no-build-isolation . and python3 -m build --no-isolation --wheel (pyproject.toml, setup.py; make test-deb)
	chromium # tests/python/test_dashboard_browser.py: headless Chromium loads the dashboard (docs/dashboard.md)
	libjs-chart.js # the dashboard's charts: krayd serves /usr/share/javascript/chart.js/chart.min.js as /chart.js (docs/dashboard.md)
	linux-headers-amd64 qemu-system-x86 busybox-static cpio strace # kmod/: build kray.ko, boot it under qemu, count syscalls per get (make test-kmod)
)

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "deps: dpkg-query not found: this script is for Debian 12; install by hand: ${PACKAGES[*]}" >&2
	exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
	installed "$p" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all present"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	echo "deps: missing ${missing[*]}; run as root or install sudo" >&2
	exit 1
fi

echo "deps: installing ${missing[*]}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { "${SUDO[@]}" apt-get update -q &&
       "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
	cat "$log" >&2
	echo "deps: apt-get failed (output above)" >&2
	exit 1
fi
