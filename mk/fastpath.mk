# SPDX-License-Identifier: Apache-2.0
# The BPF fast path for synchronous calls (issue 5 item 5, docs/fastpath.md):
# bpf/fastpath.bpf.c (built with the other programs by mk/bpf.mk), krayd's glue
# daemon/bpf_fast.c, libkray's libclient/fast.c, and its tests.

$(O)/daemon/bpf_fast.o: $(O)/bpf/fastpath.skel.h

# The task suite with BPF on but the fast path off: with `make test-integration` (fast
# path on, the default) and test-bpf-off (everything off), all three modes stay tested.
.PHONY: test-fastpath-off
test-fastpath-off: $(O)/tests/integration/test_tasks $(FIXTURES) $(BINS)
	@echo "== $(O)/tests/integration/test_tasks (KRAY_FASTPATH=off)"
	@$(TEST_ENV) KRAY_FASTPATH=off $(O)/tests/integration/test_tasks --jobs 1
TEST_EXTRA += test-fastpath-off
