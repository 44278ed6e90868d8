# SPDX-License-Identifier: Apache-2.0
"""``ray.job_config.JobConfig``: a job's settings given to ``init(job_config=...)``.

kray honours ``code_search_path`` (the job's C remote function libraries, as
``init(code_path=...)``), ``ray_namespace`` and ``runtime_env``; the rest is kept for
programs that read it back."""


class JobConfig:
    def __init__(self, jvm_options=None, code_search_path=None, runtime_env=None,
                 client_job=False, metadata=None, ray_namespace=None,
                 default_actor_lifetime="non_detached", _py_driver_sys_path=None):
        self.jvm_options = list(jvm_options or [])
        self.code_search_path = list(code_search_path or [])
        self.runtime_env = runtime_env
        self.client_job = client_job
        self.metadata = dict(metadata or {})
        self.ray_namespace = ray_namespace
        self.default_actor_lifetime = default_actor_lifetime
        self._py_driver_sys_path = list(_py_driver_sys_path or [])

    def set_metadata(self, key, value):
        self.metadata[key] = value

    def set_runtime_env(self, runtime_env, validate=False):
        self.runtime_env = runtime_env

    def set_ray_namespace(self, ray_namespace):
        self.ray_namespace = ray_namespace

    def set_default_actor_lifetime(self, default_actor_lifetime):
        if default_actor_lifetime not in ("detached", "non_detached"):
            raise ValueError("Default actor lifetime must be one of 'detached' and "
                             "'non_detached'")
        self.default_actor_lifetime = default_actor_lifetime

    @classmethod
    def from_json(cls, job_config_json):
        return cls(**job_config_json)
