# SPDX-License-Identifier: Apache-2.0
# bpf/ (issue 5): the BPF programs, their skeletons, krayd's BPF glue (daemon/bpf/bpf_*.c),
# the BPF tests and the test target that reruns the task suite with BPF off.
#
#   bpf/<name>.bpf.c --clang -target bpf--> $(O)/bpf/<name>.bpf.o
#                    --bpftool gen skeleton--> $(O)/bpf/<name>.skel.h (included by daemon/bpf/bpf_*.c)
# vmlinux.h is generated from the running kernel's BTF by bpf/gen-vmlinux.sh (CO-RE: the
# objects still load on other kernels).

BPF_CLANG   ?= clang
BPFTOOL     ?= bpftool
BPF_ARCH    := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_SRC     := $(wildcard bpf/*.bpf.c)
BPF_OBJ     := $(BPF_SRC:bpf/%.bpf.c=$(O)/bpf/%.bpf.o)
BPF_SKEL    := $(BPF_SRC:bpf/%.bpf.c=$(O)/bpf/%.skel.h)
# The multiarch directory holds asm/types.h for the programs that use the UAPI headers.
BPF_CFLAGS  := -target bpf -mcpu=v3 -g -O2 -Wall -Werror -D__TARGET_ARCH_$(BPF_ARCH) -I$(O)/bpf \
	       -idirafter /usr/include/$(shell gcc -dumpmachine)

LDLIBS_DAEMON += -lbpf -lelf -lz

$(O)/bpf/vmlinux.h: bpf/gen-vmlinux.sh
	@mkdir -p $(dir $@)
	bpf/gen-vmlinux.sh $@

$(O)/bpf/%.bpf.o: bpf/%.bpf.c include/uapi/kray_bpf.h include/uapi/kray_wire.h $(O)/bpf/vmlinux.h
	$(BPF_CLANG) $(BPF_CFLAGS) -c $< -o $@

$(O)/bpf/%.skel.h: $(O)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@.tmp && mv $@.tmp $@

# krayd's glue includes the skeletons (generated, so named here, not found by -MMD).
$(O)/daemon/bpf/bpf_metrics.o: $(BPF_SKEL)
$(O)/daemon/bpf/bpf_%.o: override CFLAGS += -I$(O)/bpf

ALL_EXTRA += $(BPF_OBJ) $(BPF_SKEL)

# The task suite again on the daemon path with BPF off (the default is on): both modes
# stay tested.  test_bpf itself runs with the other integration tests.
.PHONY: test-bpf-off
test-bpf-off: $(O)/tests/integration/test_tasks $(FIXTURES) $(BINS)
	@echo "== $(O)/tests/integration/test_tasks (KRAY_BPF=off)"
	@$(TEST_ENV) KRAY_BPF=off $(O)/tests/integration/test_tasks --jobs 1
TEST_EXTRA += test-bpf-off

# The fast-path measurements load the sk_skb prototype: libbpf and its skeleton, with
# BENCH_LIB as every bench.
$(O)/bench/bench_bpf: bench/bench_bpf.c $(O)/bpf/fastpath_proto.skel.h $(BENCH_LIB:%.c=$(O)/%.o) \
		      $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(O)/bpf -o $@ $< $(BENCH_LIB:%.c=$(O)/%.o) -L$(O)/lib -lkray $(RPATH) \
		-lbpf -lelf -lz -lm
