# SPDX-License-Identifier: Apache-2.0
# The Python package (python/, issue 6): kray._kray (the C extension over libkray), the
# shim that runs Python tasks inside kray-worker (libkray_python.so), and the package's
# Python modules, laid out in $(O)/python/kray so that PYTHONPATH=$(O)/python imports it.
#
#   make python        build the package into $(O)/python
#   make test-python   the pytest suite (tests/python), part of `make test`
#   make bench-python  bench/bench_python.py (Ray's microbenchmark names)
#   make bench-rllib   bench/bench_rllib.py (PPO/ES parallel rollouts, Tune's overhead)
#   make bench-dag     bench/bench_dag.py (kray.dag's execute() beside .remote() calls)

PY_INC     := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
PY_EXT     := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
PY_VER     := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_python_version())')
PY_SONAME  := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("INSTSONAME"))')
PY_LIBDIR  := $(shell $(PYTHON) -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')

PY_OUT     := $(O)/python/kray
PY_EXT_SRC := python/src/module.c python/src/api.c python/src/value.c python/src/ref.c \
	python/src/worker.c python/src/waiter.c python/src/metric.c
# The package's modules, with its subpackages (kray.tune, kray.rllib, kray.util: issue 16).
PY_MODS    := $(shell find python/kray -name '*.py' | sort)
PY_TARGETS := $(PY_OUT)/_kray$(PY_EXT) $(PY_OUT)/libkray_python.so \
	$(PY_MODS:python/kray/%=$(PY_OUT)/%)
# Found from the build tree (build/python/kray -> build/lib) and once installed
# (PREFIX/lib/pythonX.Y/dist-packages/kray -> PREFIX/lib).
PY_RPATH   := -Wl,-rpath,'$$ORIGIN/../../lib' -Wl,-rpath,'$$ORIGIN/../../..'
# Python's headers are not -Wshadow clean.
PY_CFLAGS  := $(filter-out -Wshadow,$(CFLAGS)) -I$(PY_INC) -fPIC -fvisibility=hidden

ALL_EXTRA  += $(PY_TARGETS)
TEST_EXTRA += test-python

.PHONY: python test-python bench-python bench-rllib bench-dag install-python uninstall-python
python: $(PY_TARGETS)

$(PY_OUT)/_kray$(PY_EXT): $(PY_EXT_SRC) python/src/ext.h include/kray/kray.h $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(PY_CFLAGS) -shared -o $@ $(PY_EXT_SRC) -L$(O)/lib -lkray $(PY_RPATH) -lpthread

$(PY_OUT)/libkray_python.so: python/src/shim.c include/kray/kray.h $(LIBKRAY)
	@mkdir -p $(dir $@)
	$(CC) $(PY_CFLAGS) -DKRAY_LIBPYTHON='"$(PY_SONAME)"' -DKRAY_PYTHON_EXE='"$(PYTHON)"' \
		-shared -o $@ $< -L$(O)/lib -lkray -L$(PY_LIBDIR) -lpython$(PY_VER) -ldl \
		$(PY_RPATH)

$(PY_OUT)/%.py: python/kray/%.py
	@mkdir -p $(dir $@)
	cp $< $@

# Each test session starts its own private krayd (kray.init() without an address).
PY_TEST_ENV = $(TEST_ENV) PYTHONPATH=$(CURDIR)/$(O)/python PYTHONDONTWRITEBYTECODE=1

test-python: $(PY_TARGETS) $(BINS)
	@echo "== tests/python (pytest)"
	@$(PY_TEST_ENV) $(PYTHON) -m pytest -q -p no:cacheprovider tests/python

bench-python: $(PY_TARGETS) $(BINS) $(BENCHES)
	@$(PY_TEST_ENV) $(PYTHON) bench/bench_python.py

bench-rllib: $(PY_TARGETS) $(BINS)
	@$(PY_TEST_ENV) $(PYTHON) bench/bench_rllib.py

bench-dag: $(PY_TARGETS) $(BINS)
	@$(PY_TEST_ENV) $(PYTHON) bench/bench_dag.py

PY_INSTDIR := $(PREFIX)/lib/python$(PY_VER)/dist-packages/kray
install: install-python
install-python: $(PY_TARGETS)
	install -d $(DESTDIR)$(PY_INSTDIR)
	for m in $(PY_MODS:python/kray/%=%); do \
		install -D -m 0644 $(PY_OUT)/$$m $(DESTDIR)$(PY_INSTDIR)/$$m || exit 1; done
	install -m 0755 -t $(DESTDIR)$(PY_INSTDIR) $(PY_OUT)/_kray$(PY_EXT) \
		$(PY_OUT)/libkray_python.so
uninstall: uninstall-python
uninstall-python:
	rm -rf $(DESTDIR)$(PY_INSTDIR)
	rmdir $(DESTDIR)$(dir $(PY_INSTDIR)) $(DESTDIR)$(PREFIX)/lib/python$(PY_VER) 2>/dev/null || true
