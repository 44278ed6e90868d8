#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# build-module.sh KVER OUTDIR - builds kray.ko against Debian's headers for KVER with W=1
# (the Kbuild adds -Werror), in a copy of the sources under OUTDIR so that the tree holds
# no Kbuild output and two builds never share one.  The module is OUTDIR/kray.ko.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KVER=$1
OUT=$2
mkdir -p "$OUT/include/uapi"
# Only copy what changed, so that Kbuild's own dependency tracking keeps rebuilds short.
cp -u "$ROOT/Kbuild" "$OUT/Kbuild"
cp -ru "$ROOT/kmod" "$OUT/"
cp -u "$ROOT"/include/uapi/*.h "$OUT/include/uapi/"
make -C "/usr/src/linux-headers-$KVER" M="$OUT" W=1 modules
