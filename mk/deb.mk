# SPDX-License-Identifier: Apache-2.0
# Debian packages (issue 22; debian/, docs/deploy.md) and the package test.
#
#   make deb        krayd, libkray0, libkray-dev, python3-kray and kray-dkms as .debs in
#                   $(O)/deb/ (dpkg-buildpackage -us -uc -b in a clean copy of the tree)
#   make test-deb   builds them, installs them into a Debian 12 chroot, runs krayd from
#                   the unit's ExecStart= and the C and Python examples, upgrades to a
#                   rebuilt version, purges; pip install into a venv; lintian
#                   (tests/deb/run.sh; CI runs it, not `make test`)
.PHONY: deb deb-build test-deb

# What `make install` installs, built (debian/rules calls this, in its own O=).
deb-build: $(LIBKRAY) $(O)/lib/libkray.a $(BINS) $(PY_TARGETS)

deb:
	@tests/deb/build.sh $(O)/deb

test-deb:
	@tests/deb/run.sh $(O)
