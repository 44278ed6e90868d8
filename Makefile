# SPDX-License-Identifier: Apache-2.0
# kray's one build: krayd, libkray (.so with a version script, .a, pkg-config), the worker
# host, the kray CLI, examples, benchmarks and tests.  Everything lands in build/.
#
#   make            build everything
#   make deps       install the Debian packages kray needs (only those missing)
#   make demo       deps + build + start kray + run the main job (examples) + stop
#   make test       deps + build + every test
#   make bench      run the benchmarks (figures and JSON)
#   make install    install to $(DESTDIR)$(PREFIX) (default /usr/local); make uninstall

.DEFAULT_GOAL := all # mk/*.mk (included before all:) must not take it
CC      ?= cc
O       := build
PREFIX  ?= /usr/local
# The interpreter the Python wrapper is built and tested with (Debian's, see KERNEL-FACTS).
PYTHON  ?= /usr/bin/python3

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -Wno-format-truncation
CFLAGS  ?= -O2 -g
# What kray needs whatever CFLAGS says (a command-line CFLAGS replaces only the above).
override CFLAGS += -std=gnu11 $(WARN) -D_GNU_SOURCE -fno-strict-aliasing -Iinclude -MMD -MP
# Sanitizers (make test-asan): AddressSanitizer, LeakSanitizer and UBSan in every binary.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDLIBS_DAEMON := -luring -lnuma -lpthread -lsystemd -lhiredis
LDLIBS_CLIENT := -ldl -lnuma
OBJCOPY ?= objcopy

SONAME  := libkray.so.0
LIBVER  := 0.1.0

COMMON_SRC := $(wildcard common/*.c)
# krayd's parts, one folder each (docs/ARCHITECTURE.md): the core, then what plugs into it.
DAEMON_SRC := $(wildcard daemon/*.c daemon/core/*.c daemon/cluster/*.c daemon/bpf/*.c daemon/kmod/*.c \
	daemon/dashboard/*.c)
CLIENT_SRC := $(wildcard libclient/*.c)

COMMON_OBJ := $(COMMON_SRC:%.c=$(O)/%.o)
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(O)/%.o)
CLIENT_PIC := $(CLIENT_SRC:%.c=$(O)/pic/%.o) $(COMMON_SRC:%.c=$(O)/pic/%.o)

LIBKRAY    := $(O)/lib/libkray.so
BINS       := $(O)/bin/krayd $(O)/bin/kray $(O)/bin/kray-worker

EX_FNS     := $(wildcard examples/*_fns.c)
EX_BINS_SRC:= $(filter-out $(EX_FNS),$(wildcard examples/*.c))
EXAMPLES   := $(EX_FNS:examples/%.c=$(O)/examples/lib%.so) $(EX_BINS_SRC:examples/%.c=$(O)/examples/%)
# Linked into every bench (bench_bpf has its own rule, mk/bpf.mk): bench/bench_common.c, the
# krayd start/stop it shares with the tests' harness, and the call loops (bench_calls.c).
BENCH_LIB  := bench/bench_common.c bench/bench_calls.c tests/integration/spawn.c
BENCH_SRC  := $(filter-out $(BENCH_LIB) bench/bench_nodes.c,$(wildcard bench/*.c))
BENCHES    := $(BENCH_SRC:bench/%.c=$(O)/bench/%)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT       := $(UNIT_SRC:tests/%.c=$(O)/tests/%)
INTEG_SRC  := $(wildcard tests/integration/test_*.c)
INTEG      := $(INTEG_SRC:tests/%.c=$(O)/tests/%)
INTEG_LIB  := $(filter-out $(INTEG_SRC),$(wildcard tests/integration/*.c))
FIXTURES   := $(patsubst tests/fixtures/%.c,$(O)/tests/lib%.so,$(wildcard tests/fixtures/*.c))

RPATH = -Wl,-rpath,'$$ORIGIN/../lib' -Wl,-rpath,'$$ORIGIN/../../lib'

# The larger parts (bpf/, python/, kmod/, the cluster) keep their rules in mk/<part>.mk,
# included here: each adds what it builds to ALL_EXTRA and its test targets to TEST_EXTRA
# (run by `make test` after the C suites).
ALL_EXTRA  :=
TEST_EXTRA :=
include $(sort $(wildcard mk/*.mk))

.PHONY: all deps demo test test-asan test-tsan test-unit test-layers test-integration bench clean \
	format format-check
all: $(LIBKRAY) $(O)/lib/libkray.a $(O)/lib/pkgconfig/kray.pc $(BINS) $(EXAMPLES) $(BENCHES) \
     $(UNIT) $(INTEG) $(FIXTURES) $(ALL_EXTRA)

deps:
	@dist/install-deps.sh

$(O)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# libkray's objects (its own and common/'s): allocation failure is -ENOMEM to the caller
# there, never abort() (KRAY_KBUF_SOFT, common/buf.h).
$(O)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DKRAY_KBUF_SOFT -fPIC -fvisibility=hidden -c $< -o $@

$(LIBKRAY): $(CLIENT_PIC) libclient/libkray.map
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=libclient/libkray.map \
		-o $@.$(LIBVER) $(CLIENT_PIC) $(LDLIBS_CLIENT)
	ln -sf libkray.so.$(LIBVER) $(O)/lib/$(SONAME)
	ln -sf libkray.so.$(LIBVER) $@

# One relocatable object with everything but kray_* made local (the internals are hidden
# already; the partial link lets objcopy turn them local), so that a static link of
# libkray.a meets no kc_fail, wire_begin or oidmap_get of ours (tests/check-symbols.sh).
$(O)/lib/libkray.a: $(CLIENT_PIC)
	@mkdir -p $(dir $@)
	$(LD) -r -o $(O)/lib/libkray-all.o $^
	$(OBJCOPY) --localize-hidden $(O)/lib/libkray-all.o
	rm -f $@
	$(AR) rcs $@ $(O)/lib/libkray-all.o
	rm -f $(O)/lib/libkray-all.o

$(O)/lib/pkgconfig/kray.pc: libclient/kray.pc.in
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIBVER)|' $< > $@

# krayd's files include each other's headers by their path below daemon/.
$(DAEMON_OBJ): override CFLAGS += -iquote daemon

# The dashboard's page is built into krayd (.incbin in page.c).
$(O)/daemon/dashboard/page.o: daemon/dashboard/index.html

$(O)/bin/krayd: $(DAEMON_OBJ) $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS_DAEMON)

$(O)/bin/kray: $(O)/tools/kray.o $(O)/tools/kray_top.o $(O)/tools/kray_state.o $(O)/common/rundir.o \
		$(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^) -L$(O)/lib -lkray $(RPATH)

$(O)/bin/kray-worker: $(O)/tools/kray-worker.o $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(O)/lib -lkray $(RPATH)

# Remote-function libraries: examples/*_fns.c and tests/fixtures/*.c.
$(O)/examples/lib%.so: examples/%.c include/kray/kray.h $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $< -L$(O)/lib -lkray $(RPATH) -lm
$(O)/tests/lib%.so: tests/fixtures/%.c include/kray/kray.h $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fPIC -shared -o $@ $< -L$(O)/lib -lkray $(RPATH) -lm

$(O)/examples/%: examples/%.c $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< -L$(O)/lib -lkray $(RPATH) -lm

$(O)/bench/%: bench/%.c $(BENCH_LIB:%.c=$(O)/%.o) $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BENCH_LIB:%.c=$(O)/%.o) -L$(O)/lib -lkray $(RPATH) -lm

# Every Criterion binary logs its skipped tests and their reasons (tests/skiplog.c).
SKIPLOG_OBJ := $(O)/tests/skiplog.o
SKIP_LOG    := $(O)/skipped.txt

# A unit test links common/ and, where it names them below, single libclient objects:
# the library's layers can be tested alone (docs/libkray.md).
$(O)/tests/unit/%: tests/unit/%.c $(COMMON_OBJ) $(SKIPLOG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c %.o,$^) -lcriterion
$(O)/tests/unit/test_listing: $(O)/libclient/listing.o
$(O)/tests/unit/test_code: $(O)/libclient/code.o
# The connection alone, built as in the library (soft allocation failure: KRAY_KBUF_SOFT).
$(O)/tests/unit/test_conn: tests/unit/test_conn.c $(O)/pic/libclient/conn.o \
		$(COMMON_SRC:%.c=$(O)/pic/%.o) $(SKIPLOG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DKRAY_KBUF_SOFT -o $@ $(filter %.c %.o,$^) -lcriterion

# Unit tests of krayd's core modules link the core alone (tests/unit/core.h): the layers
# make that possible (docs/ARCHITECTURE.md).
CORE_OBJ   := $(filter $(O)/daemon/core/%,$(DAEMON_OBJ))
UNIT_CORE  := $(addprefix $(O)/tests/unit/,test_store test_sched test_task test_pool)
$(UNIT_CORE): $(O)/tests/unit/%: tests/unit/%.c $(O)/tests/unit/core.o $(CORE_OBJ) $(COMMON_OBJ) \
	      $(SKIPLOG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -iquote daemon -o $@ $< $(O)/tests/unit/core.o $(CORE_OBJ) $(SKIPLOG_OBJ) \
		$(COMMON_OBJ) -lcriterion $(LDLIBS_DAEMON)
$(O)/tests/unit/core.o: override CFLAGS += -iquote daemon

$(O)/tests/integration/%: tests/integration/%.c $(INTEG_LIB) $(LIBKRAY) $(COMMON_OBJ) $(SKIPLOG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(INTEG_LIB) $(SKIPLOG_OBJ) $(COMMON_OBJ) -L$(O)/lib -lkray $(RPATH) \
		-lcriterion

# Tests find the build through these; each test starts its own krayd on its own socket.
TEST_ENV = KRAY_KRAYD=$(CURDIR)/$(O)/bin/krayd KRAY_WORKER=$(CURDIR)/$(O)/bin/kray-worker \
	KRAY_TEST_CODE_PATH=$(CURDIR)/$(O)/tests KRAY_BIN=$(CURDIR)/$(O)/bin \
	KRAY_SKIP_LOG=$(CURDIR)/$(SKIP_LOG)

# Ends with the list of tests that were skipped, each with its reason (tests/skiplog.c).
test: deps
	@$(MAKE) --no-print-directory -s all
	@rm -f $(SKIP_LOG)
	@r=0; $(MAKE) --no-print-directory -s format-check test-unit test-layers test-integration \
		test-fuzz-replay $(TEST_EXTRA) || r=$$?; tools/skipped.sh $(SKIP_LOG); exit $$r

# The C style (.clang-format: kernel style, 100 columns) over every tracked C file.
FORMAT_SRC = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	@clang-format -i $(FORMAT_SRC)
format-check:
	@echo "== clang-format (.clang-format)"
	@clang-format --dry-run -Werror $(FORMAT_SRC) 2>&1 | head -40; \
	 clang-format --dry-run -Werror $(FORMAT_SRC) >/dev/null 2>&1 || \
	 { echo "format-check: files differ from .clang-format: run make format" >&2; exit 1; }

# krayd's layers hold (docs/ARCHITECTURE.md, "Layers"): no core file calls the cluster,
# BPF or kmod parts; fewer than 10 pairs of files call each other; the one cycle is
# actor/sched/task.
test-layers: $(O)/bin/krayd
	@echo "== krayd's call graph (tools/callgraph.py)"
	@$(PYTHON) tools/callgraph.py $(O)/daemon --check --max-pairs 9 --core core \
		--outer cluster,bpf,kmod,dashboard --allow-cycle actor,sched,task

# The whole suite again with every binary built with ASan, LSan and UBSan (build-asan/):
# any report fails the run, whichever process printed it (tests/san-check.sh).
test-asan: deps
	@$(MAKE) --no-print-directory -s O=build-asan CC="$(CC) $(SAN_FLAGS)" CFLAGS="-O1 -g" all
	@ASAN_OPTIONS=abort_on_error=0:detect_leaks=1:exitcode=66 \
	 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 $(MAKE) --no-print-directory -s O=build-asan CC="$(CC) $(SAN_FLAGS)" CFLAGS="-O1 -g" \
		TEST_WRAP=$(CURDIR)/tests/san-check.sh test-unit test-integration test-fuzz-replay

# ThreadSanitizer where kray has threads: krayd (the pool filler) and kray-worker (actor
# method threads), built in build-tsan/ and driven by the normal test binaries (Criterion
# itself does not run under TSan).  A race stops krayd or the worker: the tests fail.
TSAN_TESTS := $(O)/tests/integration/test_actors $(O)/tests/integration/test_objects
test-tsan: deps
	@$(MAKE) --no-print-directory -s all
	@$(MAKE) --no-print-directory -s O=build-tsan CC="$(CC) -fsanitize=thread" CFLAGS="-O1 -g" \
		build-tsan/bin/krayd build-tsan/bin/kray-worker
	@set -e; for t in $(TSAN_TESTS); do echo "== $$t (TSan krayd and workers)"; \
		TSAN_OPTIONS=halt_on_error=1:exitcode=66 $(TEST_ENV) \
		KRAY_KRAYD=$(CURDIR)/build-tsan/bin/krayd KRAY_WORKER=$(CURDIR)/build-tsan/bin/kray-worker \
		$$t --jobs 1; done

test-unit: $(UNIT) $(LIBKRAY) $(O)/lib/libkray.a
	@echo "== tests/check-symbols.sh"; CC="$(CC)" tests/check-symbols.sh $(O)/lib
	@echo "== tests/libclient-pairs.sh"; tests/libclient-pairs.sh --check $(O)/pic/libclient
	@set -e; for t in $(UNIT); do echo "== $$t"; $(TEST_ENV) $(TEST_WRAP) $$t --jobs 2; done

test-integration: $(INTEG) $(FIXTURES) $(BINS)
	@set -e; for t in $(INTEG); do echo "== $$t"; $(TEST_ENV) $(TEST_WRAP) $$t --jobs 1; done

# ---- fuzzing (tests/fuzz/, docs/hardening.md) -------------------------------------------
# Fuzz targets over what a peer or an admin hands kray: fuzz_frame (a stream of frames
# through wire_check_hdr() and every decoder, with round trips through the writers),
# fuzz_values (the value reader at any placement), fuzz_resources (custom resource lists)
# and fuzz_config (krayd's config file).
# Their seed corpus is generated by gen_corpus (valid inputs of every kind, written with
# the wire_put_* writers) into $(O)/fuzz/corpus/<target>/; hand-made and regression inputs
# are in tests/fuzz/corpus/<target>/.
#
#   make test-fuzz-replay   each target built with $(CC) and the plain driver (driver.c) and
#                           run once over both corpora; part of `make test` and, built with
#                           the sanitizers under build-asan/, of `make test-asan`.
#   make fuzz               each target built with clang's libFuzzer, ASan and UBSan, run
#                           for FUZZ_SECONDS (default 60) from the corpora: new inputs go to
#                           $(O)/fuzz/work/<target>/ (kept, so runs build on each other),
#                           crashes to $(O)/fuzz/findings/<target>/, libFuzzer's output to
#                           $(O)/fuzz/<target>.log.  Fails if any target found a crash (or
#                           a leak, a timeout, a failed check: libFuzzer stops on each).
.PHONY: test-fuzz-replay fuzz
FUZZ_TARGETS := frame values resources config
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_REPLAY  := $(FUZZ_TARGETS:%=$(O)/fuzz/fuzz_%)
FUZZ_LF      := $(FUZZ_TARGETS:%=$(O)/fuzz/libfuzzer/fuzz_%)
FUZZ_STAMP   := $(O)/fuzz/corpus/.stamp
# The inputs of target $(1): generated seeds, then what tests/fuzz/corpus/ holds for it.
fuzz_inputs   = $(O)/fuzz/corpus/$(1) $(wildcard tests/fuzz/corpus/$(1))
# fuzz_config also links krayd's settings parser and what it calls.
FUZZ_CONFIG_SRC := daemon/core/config.c daemon/core/log.c

$(FUZZ_REPLAY): $(O)/fuzz/fuzz_%: $(O)/tests/fuzz/fuzz_%.o $(O)/tests/fuzz/driver.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.o,$^)
$(O)/fuzz/fuzz_config: $(FUZZ_CONFIG_SRC:%.c=$(O)/%.o)

$(O)/fuzz/gen_corpus: $(O)/tests/fuzz/gen_corpus.o $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^

# The example config is a seed too: what admins start from.
$(FUZZ_STAMP): $(O)/fuzz/gen_corpus dist/krayd.conf.example
	@rm -rf $(O)/fuzz/corpus
	@$(O)/fuzz/gen_corpus $(O)/fuzz/corpus
	@cp dist/krayd.conf.example $(O)/fuzz/corpus/config/dist-krayd.conf.example
	@touch $@

test-fuzz-replay: $(FUZZ_REPLAY) $(FUZZ_STAMP)
	@set -e; $(foreach t,$(FUZZ_TARGETS),$(O)/fuzz/fuzz_$(t) $(call fuzz_inputs,$(t));)

# libFuzzer builds compile the sources themselves (no shared objects with the gcc build).
FUZZ_CFLAGS := -std=gnu11 $(WARN) -Wno-unknown-warning-option -D_GNU_SOURCE \
	-fno-strict-aliasing -Iinclude -iquote daemon -O1 -g -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
FUZZ_HDRS := $(wildcard include/uapi/*.h common/*.h daemon/core/config.h daemon/core/log.h tests/fuzz/*.h)

$(FUZZ_LF): $(O)/fuzz/libfuzzer/fuzz_%: tests/fuzz/fuzz_%.c $(COMMON_SRC) $(FUZZ_HDRS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(filter %.c,$^)
$(O)/fuzz/libfuzzer/fuzz_config: $(FUZZ_CONFIG_SRC)

fuzz: $(FUZZ_LF) $(FUZZ_STAMP)
	@fail=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(O)/fuzz/work/$$t $(O)/fuzz/findings/$$t; \
		dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
		echo "== fuzz_$$t: $(FUZZ_SECONDS)s, log in $(O)/fuzz/$$t.log"; \
		if ! $(O)/fuzz/libfuzzer/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) \
			-print_final_stats=1 -artifact_prefix=$(O)/fuzz/findings/$$t/ $$dict \
			$(O)/fuzz/work/$$t $(O)/fuzz/corpus/$$t \
			$$(ls -d tests/fuzz/corpus/$$t 2>/dev/null) \
			>$(O)/fuzz/$$t.log 2>&1; then \
			fail=1; echo "fuzz_$$t: STOPPED ON A FINDING: see the log, $(O)/fuzz/findings/$$t/"; \
		fi; \
		grep -E '^Done |stat::number_of_executed_units|stat::new_units_added' \
			$(O)/fuzz/$$t.log | sed 's/^/   /'; \
	done; exit $$fail

demo: deps
	@$(MAKE) --no-print-directory -s all
	@dist/demo.sh

bench: all
	@set -e; for b in $(BENCHES); do $(TEST_ENV) $$b; done

clean:
	rm -rf $(O) build-asan build-tsan

# ---- install / uninstall ---------------------------------------------------------------
# `make install` copies the build to $(DESTDIR)$(PREFIX) (a staging root when DESTDIR is
# set, as packagers do); `make uninstall` with the same PREFIX and DESTDIR removes exactly
# what it copied.  Files that name paths (kray.pc, krayd.service) are written for PREFIX,
# not for DESTDIR.  libkray finds krayd at <libdir>/../bin/krayd and krayd finds
# kray-worker next to itself, so all three programs go to bin/ and the library to lib/
# (not a multiarch lib/<triplet>/).  The library is renamed into place, because install(1)
# would rewrite the old file in place, under the programs that have it mapped.  The BPF
# programs are compiled into krayd (skeletons, mk/bpf.mk); the Python package is installed
# by mk/python.mk (install-python, into PREFIX/lib/pythonX.Y/dist-packages/kray).
DESTDIR      ?=
BINDIR       := $(PREFIX)/bin
LIBDIR       := $(PREFIX)/lib
INCLUDEDIR   := $(PREFIX)/include
PKGCONFIGDIR := $(LIBDIR)/pkgconfig
MANDIR       := $(PREFIX)/share/man
DATADIR      := $(PREFIX)/share/kray
UNITDIR      := $(PREFIX)/lib/systemd/system
SYSUSERSDIR  := $(PREFIX)/lib/sysusers.d

# Every installed file, for uninstall (the two library links included).
INSTALLED := $(addprefix $(BINDIR)/,krayd kray kray-worker) \
	$(addprefix $(LIBDIR)/,libkray.so.$(LIBVER) $(SONAME) libkray.so libkray.a) \
	$(INCLUDEDIR)/kray/kray.h $(PKGCONFIGDIR)/kray.pc \
	$(MANDIR)/man8/krayd.8 $(MANDIR)/man1/kray.1 \
	$(UNITDIR)/krayd.service $(SYSUSERSDIR)/kray.conf $(DATADIR)/krayd.conf.example

.PHONY: install uninstall
install: $(LIBKRAY) $(O)/lib/libkray.a $(BINS)
	install -D -m 0755 -t $(DESTDIR)$(BINDIR) $(BINS)
	install -D -m 0755 $(LIBKRAY).$(LIBVER) $(DESTDIR)$(LIBDIR)/libkray.so.$(LIBVER).new
	mv -f $(DESTDIR)$(LIBDIR)/libkray.so.$(LIBVER).new $(DESTDIR)$(LIBDIR)/libkray.so.$(LIBVER)
	ln -sf libkray.so.$(LIBVER) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf libkray.so.$(LIBVER) $(DESTDIR)$(LIBDIR)/libkray.so
	install -D -m 0644 $(O)/lib/libkray.a $(DESTDIR)$(LIBDIR)/libkray.a
	install -D -m 0644 include/kray/kray.h $(DESTDIR)$(INCLUDEDIR)/kray/kray.h
	install -d $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(UNITDIR)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(LIBVER)|' libclient/kray.pc.in \
		> $(DESTDIR)$(PKGCONFIGDIR)/kray.pc
	sed -e 's|@BINDIR@|$(BINDIR)|g' dist/systemd/krayd.service.in \
		> $(DESTDIR)$(UNITDIR)/krayd.service
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/kray.pc $(DESTDIR)$(UNITDIR)/krayd.service
	install -D -m 0644 dist/systemd/kray.sysusers $(DESTDIR)$(SYSUSERSDIR)/kray.conf
	install -D -m 0644 dist/man/krayd.8 $(DESTDIR)$(MANDIR)/man8/krayd.8
	install -D -m 0644 dist/man/kray.1 $(DESTDIR)$(MANDIR)/man1/kray.1
	install -D -m 0644 dist/krayd.conf.example $(DESTDIR)$(DATADIR)/krayd.conf.example

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	rmdir $(DESTDIR)$(INCLUDEDIR)/kray $(DESTDIR)$(DATADIR) 2>/dev/null || true

-include $(shell find $(O) -name '*.d' 2>/dev/null)
