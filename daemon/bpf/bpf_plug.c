// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF part of krayd, at its top: it loads the scheduler-metrics programs and the fast
 * path, and plugs the metrics into the core (core/ext.h): workers accounted in the maps,
 * dispatch-latency samples, the oversubscription verdict that holds back worker starts,
 * the sampling window as a loop deadline, and the Prometheus lines.  Every hook is a no-op
 * when BPF is off (bpf/bpf.h).  The fast path adds its own table (bpf_fast.c).
 */
#include <stdbool.h>

#include "bpf/bpf.h"
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
	int r = kbpf_start(d); /* before the first worker, so that every worker is accounted */

	if (!r)
		r = ext_add(d, &kbpf_ext);
	if (!r)
		kfast_start(d);
	return r;
}

void bpf_unplug(struct krayd *d)
{
	kfast_stop(d);
	kbpf_stop(d);
}
