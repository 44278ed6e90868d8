# SPDX-License-Identifier: Apache-2.0
"""setup.py for pip and python3 -m build (metadata in pyproject.toml).

The C parts are built by the tree's Makefile, `make dist-build O=build/pip`, with the
interpreter that runs this file (PYTHON=sys.executable, so a venv's python is the one
Python tasks start).  What it installs, in a venv (sys.prefix) or a wheel:

    <site-packages>/kray/            the Python modules, _kray (the extension) and
                                     libkray_python.so (Python tasks in kray-worker)
    <prefix>/lib/libkray.so.0        found by the extension (RPATH $ORIGIN/../../..)
    <prefix>/bin/krayd, kray-worker, kray
                                     libkray starts a private krayd from <libdir>/../bin,
                                     krayd finds kray-worker next to itself

so `kray.init()` works in the venv alone, and `kray.init("/run/kray/krayd.sock")`
reaches the node's service (the same wire protocol: same kray version).
Build needs what `make` needs (make deps).  KRAY_MAKE_ARGS adds make arguments (-j2).
"""
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
O = os.path.join("build", "pip")
LIBVER = "0.1.0"


class MakeBuild(build_ext):
    """Runs the Makefile instead of compiling: kray._kray is the Makefile's extension."""

    def run(self):
        cmd = ["make", "--no-print-directory", "O=" + O, "PYTHON=" + sys.executable,
               *shlex.split(os.environ.get("KRAY_MAKE_ARGS", "")), "dist-build"]
        print("kray: " + " ".join(cmd), flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)
        out = os.path.join(ROOT, O, "python", "kray")
        ext_suffix = sysconfig.get_config_var("EXT_SUFFIX")
        dest = os.path.dirname(self.get_ext_fullpath("kray._kray"))
        os.makedirs(dest, exist_ok=True)
        for name in ("_kray" + ext_suffix, "libkray_python.so"):
            shutil.copy2(os.path.join(out, name), os.path.join(dest, name))

    def get_outputs(self):
        dest = os.path.dirname(self.get_ext_fullpath("kray._kray"))
        return super().get_outputs() + [os.path.join(dest, "libkray_python.so")]


def built(*parts):
    return os.path.join(O, *parts)


setup(
    ext_modules=[Extension("kray._kray", sources=[])],
    cmdclass={"build_ext": MakeBuild},
    # Relative to the prefix (the venv): bin/ and lib/ side by side, as libkray expects.
    data_files=[
        ("bin", [built("bin", "krayd"), built("bin", "kray-worker"), built("bin", "kray")]),
        ("lib", [built("lib", "libkray.so.0")]),
    ],
)
