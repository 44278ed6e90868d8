# SPDX-License-Identifier: Apache-2.0
# Application metrics, as with Ray's ray.util.metrics: a driver, a task and an actor count
# requests, set a gauge and time work in a histogram; krayd serves them on its Prometheus
# endpoint under Ray's names (ray_<name>), so Ray's dashboards and queries work as they are.
# docs/observability.md ("Application metrics") has more.
# Run: PYTHONPATH=build/python python3 examples/python/metrics.py [PORT]
#      (starts a private krayd serving metrics on 127.0.0.1:PORT, default a free port, and
#      prints the application's series from one scrape)
import socket
import sys
import time
import urllib.request

import kray as ray
from kray.util.metrics import Counter, Gauge, Histogram

if len(sys.argv) > 1:
    port = int(sys.argv[1])
else:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
# With a shared krayd, `metrics = 127.0.0.1:PORT` in its krayd.conf does the same.
ray.init(num_cpus=2, _metrics_export_port=port)

requests = Counter("num_requests", description="Requests handled.", tag_keys=("route",))
requests.set_default_tags({"route": "/"})
latency = Histogram("request_latency_ms", description="Time to handle a request.",
                    boundaries=[1, 10, 100], tag_keys=("route",))


@ray.remote
def handle(route, ms):
    # A metric made in a task names the same series as the driver's: krayd adds them.
    c = Counter("num_requests", description="Requests handled.", tag_keys=("route",))
    h = Histogram("request_latency_ms", description="Time to handle a request.",
                  boundaries=[1, 10, 100], tag_keys=("route",))
    start = time.monotonic()
    time.sleep(ms / 1000)
    c.inc(tags={"route": route})
    h.observe((time.monotonic() - start) * 1000, tags={"route": route})
    return ms


@ray.remote
class Queue:
    def __init__(self):
        self.size = Gauge("queue_size", description="Items waiting.", tag_keys=("queue",))
        self.items = []

    def push(self, x):
        self.items.append(x)
        self.size.set(len(self.items), tags={"queue": "work"})
        return len(self.items)


requests.inc()  # route "/" (the default tag)
ray.get([handle.remote("/api", ms) for ms in (2, 5, 20)])
q = Queue.remote()
ray.get([q.push.remote(i) for i in range(3)])

# A driver sends every second (KRAY_METRICS_REPORT_INTERVAL_MS) and at shutdown, workers
# with each call's result; wait for the next send.
time.sleep(1.5)
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
for line in body.decode().splitlines():
    if line.startswith("ray_"):
        print(line)
ray.shutdown()
