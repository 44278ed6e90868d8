#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# build.sh OUTDIR - `make deb`: builds kray's Debian packages with dpkg-buildpackage -us -uc
# -b in a copy of the tree (OUTDIR/src/kray/: what git tracks plus new files it does not
# ignore, or everything but build outputs outside a git checkout), so that the tree gets
# no debian/tmp and the .debs land in OUTDIR, not in the tree's parent directory.
# dpkg-buildpackage's log is OUTDIR/build.log.  KRAY_DEB_VERSION=V builds the copy as
# version V (a changelog entry added in the copy; make test-deb's upgrade).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
SRC=$OUT/src/kray

rm -rf "$OUT/src"
rm -f "$OUT"/*.deb "$OUT"/*.ddeb "$OUT"/*.buildinfo "$OUT"/*.changes
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 -I{} sh -c 'test -e "{}" || test -L "{}" && echo "{}"' |
		cpio -pdm --quiet "$SRC")
else
	tar -C "$ROOT" --exclude=./build --exclude='./build-*' -cf - . | tar -C "$SRC" -xf -
fi

if [ -n "${KRAY_DEB_VERSION:-}" ]; then
	{ printf 'kray (%s) unstable; urgency=medium\n\n  * Rebuilt as %s.\n\n -- %s  %s\n\n' \
		"$KRAY_DEB_VERSION" "$KRAY_DEB_VERSION" \
		"$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Maintainer)" \
		"$(date -R)"; cat "$SRC/debian/changelog"; } >"$SRC/debian/changelog.new"
	mv "$SRC/debian/changelog.new" "$SRC/debian/changelog"
fi

echo "deb: dpkg-buildpackage -us -uc -b in $SRC (log: $OUT/build.log)"
# Not the outer make's flags (-s, -j, variables): debian/rules runs its own make.
if ! (cd "$SRC" && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1; then
	tail -40 "$OUT/build.log" >&2
	if [ -n "${KRAY_DEB_VERSION:-}" ]; then
	{ printf 'kray (%s) unstable; urgency=medium\n\n  * Rebuilt as %s.\n\n -- %s  %s\n\n' \
		"$KRAY_DEB_VERSION" "$KRAY_DEB_VERSION" \
		"$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Maintainer)" \
		"$(date -R)"; cat "$SRC/debian/changelog"; } >"$SRC/debian/changelog.new"
	mv "$SRC/debian/changelog.new" "$SRC/debian/changelog"
fi

echo "deb: dpkg-buildpackage failed (the whole log: $OUT/build.log)" >&2
	exit 1
fi
# dpkg-buildpackage writes to the parent of the source tree: OUTDIR/src.
mv "$OUT"/src/*.deb "$OUT"/src/*.buildinfo "$OUT"/src/*.changes "$OUT"/
rm -rf "$OUT/src"
ls -1 "$OUT"/*.deb
