# SPDX-License-Identifier: Apache-2.0
# Debian packages (issue 22; debian/, docs/deploy.md) and the package test.
#
#   make deb        krayd, libkray0, libkray-dev, python3-kray and kray-dkms as .debs in
#                   $(O)/deb/ (dpkg-buildpackage -us -uc -b in a clean copy of the tree)
#   make test-deb   builds them, installs them into a Debian 12 chroot, runs krayd from
#                   the unit's ExecStart= and the C and Python examples, upgrades to a
#                   rebuilt version, purges; pip install into a venv; lintian
#                   (tests/deb/run.sh; CI runs it, not `make test`)
.PHONY: deb dist-build test-deb

# What `make install` installs, built: debian/rules (in O=debian/_build) and setup.py
# (pip, in O=build/pip) call this.  `python` (mk/python.mk, included after this file) is
# the Python package.
dist-build: $(LIBKRAY) $(O)/lib/libkray.a $(BINS) python

deb: deps
	@tests/deb/build.sh $(O)/deb

test-deb: deps
	@tests/deb/run.sh $(O)
