// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF part of krayd, at its top: it makes the node's pin directory, loads the fast
 * path (before serving) and the scheduler-metrics programs (on a thread while krayd
 * serves, unless bpf-wait: libbpf parses the kernel's BTF for them), and plugs the
 * metrics into the core (core/ext.h): workers accounted in the maps, dispatch-latency
 * samples, the oversubscription verdict that holds back worker starts,
 * the sampling window as a loop deadline, and the Prometheus lines.  Every hook is a no-op
 * when BPF is off (bpf/bpf.h).  The fast path adds its own table (bpf_fast.c).
 */
#include <stdbool.h>
#include <unistd.h>

#include "bpf/bpf.h"
#include "bpf/bpf_priv.h"
#include "core/log.h"
#include "core/krayd.h"
#include "core/worker.h"

static bool may_start(struct krayd *d)
{
	/* The CPUs are oversubscribed: another worker would only wait for a CPU too. */
	if (!kbpf_oversubscribed(d))
		return true;
	kbpf_deferred(d);
	return false;
}

static bool worker_gone(struct krayd *d, struct worker *w, const char *how)
{
	(void)how;
	kbpf_worker_del(d, w);
	return false;
}

static const struct ext kbpf_ext = {
	.name = "bpf",
	.next_deadline = kbpf_next_deadline,
	.before_dispatch = kbpf_tick,
	.worker_started = kbpf_worker_add,
	.worker_gone = worker_gone,
	.may_start = may_start,
	.exec_sent = kbpf_worker_busy,
	.result = kbpf_worker_done,
	.render_metrics = kbpf_render,
};

int bpf_plug(struct krayd *d)
{
	char dir[64];
	int lock, r;

	if (!d->cfg.bpf) {
		log_info("bpf: off by configuration: no scheduler metrics, kray top has nothing "
			 "to show; tasks run on the daemon path");
		kfast_start(d, NULL);
		return 0;
	}
	/* Under the root's lock until the fast path's maps are pinned: the directory is not
	 * taken for a dead krayd's by another krayd's sweep. */
	lock = kbpf_dir_lock(d, dir, sizeof(dir), true);
	if (lock < 0) {
		log_warn("bpf: off: %s; no scheduler metrics, tasks run on the daemon path",
			 kbpf_why_off(lock));
		kfast_start(d, NULL);
		return 0;
	}
	r = ext_add(d, &kbpf_ext);
	if (!r)
		kfast_start(d, dir); /* small: loaded before serving */
	close(lock);
	if (!r) /* about 0.1 s: in the background unless bpf-wait; pins under the lock again */
		r = kbpf_start(d, dir);
	return r;
}

void bpf_unplug(struct krayd *d)
{
	kfast_stop(d);
	kbpf_stop(d);
	if (d->cfg.bpf)
		kbpf_dir_remove(d);
}
