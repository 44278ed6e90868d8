# SPDX-License-Identifier: Apache-2.0
# The BPF fast path for synchronous calls (issue 5 item 5, docs/fastpath.md):
# bpf/fastpath.bpf.c (built with the other programs by mk/bpf.mk), krayd's glue
# daemon/bpf/bpf_fast.c, libkray's libclient/fast.c, and its tests; its shared-memory
# ring: daemon/bpf/bpf_ring.c, libclient/ring.c.

$(O)/daemon/bpf/bpf_fast.o: $(O)/bpf/fastpath.skel.h

# The task suite with BPF on but the fast path off: with `make test-integration` (fast
# path on, the default) and test-bpf-off (everything off), all three modes stay tested.
.PHONY: test-fastpath-off
test-fastpath-off: $(O)/tests/integration/test_tasks $(FIXTURES) $(BINS)
	@echo "== $(O)/tests/integration/test_tasks (KRAY_FASTPATH=off)"
	@$(TEST_ENV) KRAY_FASTPATH=off $(O)/tests/integration/test_tasks --jobs 1
TEST_EXTRA += test-fastpath-off

# The fast path's suite and the task suite over each of its transports
# (docs/fastpath.md "The ring"): the same faults (workers killed with a call in flight,
# late answers, cancels, many drivers, actors' order and deaths) through the program's
# socket redirects (KRAY_FAST_RING=off; the ring is the default, which `make
# test-integration` runs) and, by name, over the ring.  test_fastring (with the
# integration tests) has what only the ring has.
.PHONY: test-fastpath-ring test-fastpath-sockets
test-fastpath-ring: $(O)/tests/integration/test_fastpath $(O)/tests/integration/test_tasks \
		    $(FIXTURES) $(BINS)
	@set -e; for t in test_fastpath test_tasks; do \
	 echo "== $(O)/tests/integration/$$t (KRAY_FAST_RING=on)"; \
	 $(TEST_ENV) KRAY_FAST_RING=on $(O)/tests/integration/$$t --jobs 1; done
test-fastpath-sockets: $(O)/tests/integration/test_fastpath $(O)/tests/integration/test_tasks \
		       $(FIXTURES) $(BINS)
	@set -e; for t in test_fastpath test_tasks; do \
	 echo "== $(O)/tests/integration/$$t (KRAY_FAST_RING=off)"; \
	 $(TEST_ENV) KRAY_FAST_RING=off $(O)/tests/integration/$$t --jobs 1; done
TEST_EXTRA += test-fastpath-sockets

# The fast path's krayd and libkray parts under ASan/LSan/UBSan (build-asan/, as `make
# test-asan` builds it): test_fastpath, the task suite and the ring's tests, with sanitized krayd,
# workers and drivers.  Any report fails the run.
.PHONY: test-fastpath-asan
test-fastpath-asan:
	@$(MAKE) --no-print-directory -s O=build-asan CC="$(CC) $(SAN_FLAGS)" CFLAGS="-O1 -g" \
		build-asan/bin/krayd build-asan/bin/kray-worker build-asan/bin/kray \
		build-asan/tests/integration/test_fastpath build-asan/tests/integration/test_tasks \
		build-asan/tests/integration/test_fastring \
		build-asan/tests/libtestfns.so build-asan/tests/libreturnfns.so \
		build-asan/tests/libactorfns.so build-asan/tests/libwarmfns.so
	@set -e; for t in test_fastpath test_tasks test_fastring; do \
	 echo "== build-asan/tests/integration/$$t"; \
	 ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:exitcode=66 \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 $(MAKE) --no-print-directory -s O=build-asan TEST_ONE=$$t test-fastpath-run-one; done

.PHONY: test-fastpath-run-one
test-fastpath-run-one:
	@$(TEST_ENV) $(O)/tests/integration/$(TEST_ONE) --jobs 1
