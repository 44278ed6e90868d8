#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# observe.sh - the BPF scheduler metrics of a running krayd (docs/observability.md):
# starts a krayd with `kray start` (as root, so that it loads its BPF programs), puts
# some CPU-bound tasks on it (the pi example), and shows `kray top --once`, the pinned
# maps with bpftool, and the same figures on the Prometheus endpoint.  krayd is stopped
# and the temporary directory removed however the script ends.
#
#	examples/observe.sh		(after `make`)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
B=$root/build
KRAY=$B/bin/kray

[ "$(id -u)" = 0 ] || { echo "observe: run as root (BPF needs CAP_BPF and CAP_PERFMON)" >&2; exit 1; }
for f in "$KRAY" "$B/bin/krayd" "$B/examples/pi"; do
	[ -x "$f" ] || { echo "observe: $f is missing: run 'make' first" >&2; exit 1; }
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/kray-observe.XXXXXX")
sock=$dir/krayd.sock
port=$((20000 + RANDOM % 20000))
started=0
cleanup() {
	local rc=$?

	[ "$started" = 1 ] && "$KRAY" stop --socket "$sock" >/dev/null 2>&1 || true
	rm -rf "$dir"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$KRAY" start --socket "$sock" --code-path "$B/examples" --metrics "127.0.0.1:$port" >/dev/null
started=1
grep 'bpf:' "$sock.log" || true

# Load in the background: 20,000 pi tasks keep the workers busy for a few seconds.
KRAY_ADDRESS=$sock "$B/examples/pi" 20000 >/dev/null &
load=$!
sleep 0.3

printf '\n== kray top --once\n'
"$KRAY" top --socket "$sock" --once --interval 500

node=$("$KRAY" status --socket "$sock" | awk '/^node/ { print $2 }')
maps=/sys/fs/bpf/kray/$node
printf '\n== %s\n' "$maps"
ls "$maps"
if command -v bpftool >/dev/null; then
	printf '\n== bpftool map dump pinned %s/workers (first entry)\n' "$maps"
	bpftool map dump pinned "$maps/workers" | head -17
fi
printf '\n== the Prometheus endpoint, BPF series\n'
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3
grep -E '^kray_(worker_|dispatch|cpus_|runqueue)' <&3 || true
exec 3<&-
wait "$load"
