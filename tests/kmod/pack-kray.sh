#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# pack-kray.sh BUILD_DIR ROOT - copies krayd, libkray, the kmod test driver and every
# shared library they load (what ldd lists, with the dynamic loader) into the initramfs
# tree ROOT, keeping the build's layout under /kray so that the programs' RPATHs
# ($ORIGIN/../lib) find libkray, and the system's paths for the rest.
set -euo pipefail
BUILD=$1
ROOT=$2
mkdir -p "$ROOT/kray/bin" "$ROOT/kray/lib" "$ROOT/kray/tests/kmod" "$ROOT/kray/bench"
cp "$BUILD/bin/krayd" "$BUILD/bin/kray-worker" "$ROOT/kray/bin/"
cp -a "$BUILD"/lib/libkray.so* "$ROOT/kray/lib/"
cp "$BUILD/tests/kmod/kmod_driver" "$ROOT/kray/tests/kmod/"
mkdir -p "$ROOT/kray/examples" && cp "$BUILD/examples/kmod_ls" "$ROOT/kray/examples/"
cp "$(dirname "$0")/kray-guest.sh" "$ROOT/kray-guest.sh"
bins=("$BUILD/bin/krayd" "$BUILD/bin/kray-worker" "$BUILD/tests/kmod/kmod_driver"
	"$BUILD/examples/kmod_ls")
# The system-call count of a get (bench_kmod --counts-only) needs strace in the guest.
if [ -x "$BUILD/bench/bench_kmod" ] && command -v strace >/dev/null; then
	cp "$BUILD/bench/bench_kmod" "$ROOT/kray/bench/"
	cp "$(command -v strace)" "$ROOT/bin/strace"
	bins+=("$BUILD/bench/bench_kmod" "$(command -v strace)")
fi
# The integration suites named in $KRAY_KMOD_SUITES (e.g. "objects tasks"): the same
# tests as on the host, here with krayd and libkray using the module.
for s in ${KRAY_KMOD_SUITES:-}; do
	mkdir -p "$ROOT/kray/tests/integration"
	cp "$BUILD/tests/integration/test_$s" "$ROOT/kray/tests/integration/"
	cp "$BUILD"/tests/lib*.so "$ROOT/kray/tests/"
	bins+=("$BUILD/tests/integration/test_$s")
	echo "$s" >>"$ROOT/kray/suites"
done
# The example test_objects runs (objects_example).
if [ -n "${KRAY_KMOD_SUITES:-}" ] && [ -x "$BUILD/examples/objects" ]; then
	cp "$BUILD/examples/objects" "$ROOT/kray/examples/"
	bins+=("$BUILD/examples/objects")
fi
[ -n "${KRAY_KMOD_FILTER:-}" ] && echo "$KRAY_KMOD_FILTER" >"$ROOT/kray/filter"
true
for bin in "${bins[@]}"; do
	ldd "$bin" | grep -o '/[^ ]*' || true
done | sort -u | while read -r lib; do
	case "$lib" in "$BUILD"/*) continue ;; esac
	mkdir -p "$ROOT$(dirname "$lib")"
	cp -L "$lib" "$ROOT$lib"
done
