# SPDX-License-Identifier: Apache-2.0
"""joblib's multiprocessing backend with kray's Pool in place of the process pool."""
from joblib._parallel_backends import MultiprocessingBackend
from joblib.pool import PicklingPool  # noqa: F401 (joblib's own; not used, kept importable)

import kray
from ..multiprocessing import Pool


class KrayBackend(MultiprocessingBackend):
    """Each joblib batch is a call on one of a Pool's actors; n_jobs=-1 is every CPU of
    the cluster."""
    supports_timeout = True

    def __init__(self, nesting_level=None, inner_max_num_threads=None,
                 ray_remote_args=None, **kwargs):
        self.ray_remote_args = ray_remote_args
        super().__init__(nesting_level=nesting_level,
                         inner_max_num_threads=inner_max_num_threads, **kwargs)

    def effective_n_jobs(self, n_jobs):
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if not kray.is_initialized():
            kray.init()
        cpus = max(1, int(kray.cluster_resources().get("CPU", 1)))
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(1, cpus + 1 + n_jobs)
        return n_jobs

    def configure(self, n_jobs=1, parallel=None, prefer=None, require=None,
                  **memmappingpool_args):
        n_jobs = self.effective_n_jobs(n_jobs)
        self._pool = Pool(processes=n_jobs, ray_remote_args=self.ray_remote_args)
        self.parallel = parallel
        return n_jobs

    def terminate(self):
        if getattr(self, "_pool", None) is not None:
            self._pool.terminate()
            self._pool = None
        self.reset_batch_stats()
