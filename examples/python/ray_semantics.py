# SPDX-License-Identifier: Apache-2.0
"""Ray semantics on kray (docs/python.md): a runtime_env shipped to the workers, an actor
that keeps refs its callers sent it, and cancelling a running task and a running actor
call (which polls get_runtime_context().is_canceled() and cleans up).

    python3 examples/python/ray_semantics.py
"""
import os
import shutil
import tempfile
import time

import kray as ray

ray.init(num_cpus=2, runtime_env={"env_vars": {"STAGE": "demo"}})

# runtime_env: a working directory and a variable, wherever the task runs.
project = tempfile.mkdtemp(prefix="kray-example-")
with open(os.path.join(project, "settings.py"), "w") as f:
    f.write("GREETING = 'hello from the working_dir'\n")


@ray.remote(runtime_env={"working_dir": project})
def greet():
    import settings
    return f"{settings.GREETING} (STAGE={os.environ['STAGE']})"


print(ray.get(greet.remote()))
shutil.rmtree(project)  # (the workers have their own copy of it)


# Borrowed refs: the mailbox keeps the refs its callers put in their letters.
@ray.remote
class Mailbox:
    def __init__(self):
        self.letters = []

    def post(self, letter):
        self.letters.append(letter["ref"])

    def read(self):
        return ray.get(self.letters)


box = Mailbox.remote()
for i in range(3):
    box.post.remote({"ref": ray.put(f"letter {i}")})  # the driver keeps no ref
print(ray.get(box.read.remote()))


# Cancelling a running task: it is interrupted at once, not after its hour.
@ray.remote
def wait_forever():
    time.sleep(3600)


t = wait_forever.remote()
time.sleep(0.5)
ray.cancel(t)
try:
    ray.get(t, timeout=30)
except ray.exceptions.TaskCancelledError:
    print("cancelled")


# Cancelling a running actor call: not interrupted (the actor's state is at stake), but
# told; it stops itself, and its caller gets TaskCancelledError.
@ray.remote
class Job:
    def __init__(self):
        self.steps = 0

    def run(self):
        while not ray.get_runtime_context().is_canceled():
            self.steps += 1
            time.sleep(0.01)
        return "stopped"

    def cleaned_up(self):
        return self.steps > 0


job = Job.remote()
r = job.run.remote()
time.sleep(0.5)
ray.cancel(r)
try:
    ray.get(r, timeout=30)
except ray.exceptions.TaskCancelledError:
    print("actor call cancelled, steps kept:", ray.get(job.cleaned_up.remote()))
