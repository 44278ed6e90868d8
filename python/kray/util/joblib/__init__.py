# SPDX-License-Identifier: Apache-2.0
"""A joblib backend on kray (Ray's ray.util.joblib):

    from kray.util.joblib import register_kray
    register_kray()
    with joblib.parallel_backend("kray"):
        cross_val_score(model, X, y, cv=5, n_jobs=-1)     # the folds run on kray

register_ray() is the same (Ray's name); both register the names "kray" and "ray"."""


def register_kray():
    """Registers the joblib backends "kray" and "ray"."""
    try:
        from joblib.parallel import register_parallel_backend
    except ImportError:
        raise ImportError("kray.util.joblib needs joblib (Debian: python3-joblib)") from None
    from .backend import KrayBackend
    register_parallel_backend("kray", KrayBackend)
    register_parallel_backend("ray", KrayBackend)


register_ray = register_kray

__all__ = ["register_kray", "register_ray"]
