# SPDX-License-Identifier: Apache-2.0
"""Checkpoint: Ray AIR's checkpoint, a directory on disk or a dict."""
import contextlib
import os
import pickle
import shutil
import tempfile

_DICT_FILE = "dict_checkpoint.pkl"


class Checkpoint:
    """A checkpoint: from_dict()/to_dict(), from_directory()/to_directory()."""

    def __init__(self, local_path=None, data_dict=None):
        self._path = local_path
        self._dict = data_dict

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise TypeError("Checkpoint.from_dict() takes a dict")
        return cls(data_dict=dict(data))

    @classmethod
    def from_directory(cls, path):
        if not os.path.isdir(path):
            raise ValueError(f"Checkpoint.from_directory(): {path} is not a directory")
        return cls(local_path=os.path.abspath(path))

    @property
    def path(self):
        return self._path

    def to_dict(self):
        if self._dict is not None:
            return dict(self._dict)
        f = os.path.join(self._path, _DICT_FILE)
        if os.path.exists(f):
            with open(f, "rb") as fh:
                return pickle.load(fh)
        out = {}
        for name in os.listdir(self._path):
            p = os.path.join(self._path, name)
            if os.path.isfile(p) and not name.startswith("."):
                with open(p, "rb") as fh:
                    out[name] = fh.read()
        return out

    def to_directory(self, path=None):
        path = path or tempfile.mkdtemp(prefix="kray-checkpoint-")
        os.makedirs(path, exist_ok=True)
        if self._dict is not None:
            with open(os.path.join(path, _DICT_FILE), "wb") as fh:
                pickle.dump(self._dict, fh)
        elif os.path.abspath(path) != self._path:
            shutil.copytree(self._path, path, dirs_exist_ok=True)
        return path

    @contextlib.contextmanager
    def as_directory(self):
        if self._path is not None:
            yield self._path
        else:
            d = self.to_directory()
            try:
                yield d
            finally:
                shutil.rmtree(d, ignore_errors=True)

    def __repr__(self):
        return f"Checkpoint({'dict' if self._dict is not None else self._path})"
