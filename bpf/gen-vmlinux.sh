#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Writes vmlinux.h (every kernel type, from the running kernel's BTF) to $1, for the CO-RE
# programs in bpf/.  CO-RE relocations make the objects load on other kernels too.
set -eu
out=$1
btf=${2:-/sys/kernel/btf/vmlinux}
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
