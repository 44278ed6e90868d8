# SPDX-License-Identifier: Apache-2.0
# The optional kernel module /dev/kray (issue 8; kmod/, docs/kmod.md).
#
#   make kmod        build kray.ko against Debian's headers (linux-headers-amd64), W=1,
#                    in $(O)/kmod/module/ (skips with a message when the headers are absent)
#   make test-kmod   build it, boot Debian's kernel under qemu with the module, the guest
#                    test program and krayd, and check the markers the guest prints
#                    (tests/kmod/run-qemu.sh; part of `make test`)
#
# The host cannot load modules, so nothing here loads kray.ko on it.  The driver the guest
# runs against krayd (tests/kmod/kmod_driver.c) is built with everything else.
.PHONY: kmod test-kmod

KMOD_KVER = $(shell dpkg-query -W -f='$${Depends}' linux-headers-amd64 2>/dev/null | \
	grep -o 'linux-headers-[^ ,]*' | head -1 | sed 's/^linux-headers-//')
KMOD_DRIVER := $(O)/tests/kmod/kmod_driver
ALL_EXTRA += $(KMOD_DRIVER)
TEST_EXTRA += test-kmod

$(KMOD_DRIVER): tests/kmod/kmod_driver.c include/uapi/kray_kmod.h $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(O)/lib -lkray $(RPATH)

kmod:
	@if [ -z "$(KMOD_KVER)" ]; then \
		echo "kmod: SKIPPED: linux-headers-amd64 is not installed (make deps)"; \
	else \
		tests/kmod/build-module.sh $(KMOD_KVER) $(CURDIR)/$(O)/kmod/module && \
		echo "kmod: $(O)/kmod/module/kray.ko (for $(KMOD_KVER))"; \
	fi

test-kmod: $(BINS) $(KMOD_DRIVER) $(O)/examples/kmod_ls $(O)/bench/bench_kmod
	@echo "== tests/kmod/run-qemu.sh"
	@tests/kmod/run-qemu.sh $(O)

# The same guest run with krayd, libkray and the driver built with ASan/LSan/UBSan
# (build-asan/, as `make test-asan` builds them): the kmod paths of krayd and libkray only
# run where the module is loaded, so this is where the sanitizers see them.
.PHONY: test-kmod-asan
test-kmod-asan:
	@$(MAKE) --no-print-directory -s O=build-asan CC="$(CC) $(SAN_FLAGS)" CFLAGS="-O1 -g" \
		build-asan/bin/krayd build-asan/bin/kray-worker build-asan/tests/kmod/kmod_driver \
		build-asan/bench/bench_kmod build-asan/examples/kmod_ls
	@echo "== tests/kmod/run-qemu.sh build-asan"
	@tests/kmod/run-qemu.sh build-asan

# The host's integration suites again, in the guest, with krayd and libkray using the
# module: the same tests pass on both paths (about 5 minutes without KVM; CI runs it).
# Left out by default: objects/spill_many_times_the_store, whose 1,000 restores of 8 MiB
# take 117 of its 120 s under emulation (it passed through the module; KMOD_SUITES_FILTER=
# with nothing after it runs everything, with KVM).
KMOD_SUITES ?= objects tasks actors limits
KMOD_SUITES_FILTER ?= !(objects/spill_many_times_the_store)
.PHONY: test-kmod-suites
test-kmod-suites: $(BINS) $(KMOD_DRIVER) $(O)/examples/kmod_ls $(O)/examples/objects \
		  $(O)/bench/bench_kmod $(INTEG) $(FIXTURES)
	@echo "== tests/kmod/run-qemu.sh with the suites: $(KMOD_SUITES)"
	@KRAY_KMOD_SUITES="$(KMOD_SUITES)" KRAY_KMOD_FILTER='$(KMOD_SUITES_FILTER)' \
		KRAY_KMOD_TIMEOUT=$${KRAY_KMOD_TIMEOUT:-1200} tests/kmod/run-qemu.sh $(O)
