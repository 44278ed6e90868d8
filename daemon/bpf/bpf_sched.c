// SPDX-License-Identifier: Apache-2.0
/*
 * The scheduling decision krayd takes from the BPF metrics: do not start more workers
 * when the CPUs are already oversubscribed.
 *
 * krayd's CPU slots (num-cpus) are a promise about the machine that can be wrong: other
 * programs compete for the same CPUs, or num-cpus was set above the real count.  A new
 * worker then does not add throughput; it adds one more process to time-slice, more
 * context switches and cache misses, and memory.  The run-queue wait the sched_switch
 * program measures says this directly: when the busy workers spent at least
 * `oversubscribed-wait` percent of the last window runnable but without a CPU, krayd
 * queues the task instead (it runs when a busy worker frees up).
 *
 * Guards, so that the decision can never stall work: it applies only while some worker is
 * running tasks (whose results re-run the dispatch), never to a queue head older than
 * KBPF_STARVE_NS, and the verdict is sampled again every window while workers are busy.  Workers blocked
 * in a get are not busy, so nested tasks still get the workers they need.
 */
#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "../../include/uapi/kray_bpf.h"
#include "bpf/bpf.h"
#include "bpf/bpf_priv.h"
#include "core/krayd.h"
#include "core/task.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/log.h"

#define KBPF_WINDOW_NS (100 * 1000 * 1000LL) /* sample at most this often */
#define KBPF_STALE_NS (1000 * 1000 * 1000LL) /* a longer window is only a new baseline */
#define KBPF_STARVE_NS (2000 * 1000 * 1000LL) /* older queue heads get a worker anyway */

/* Reads w's totals (the interval in progress included) and returns what grew since the
 * last sample.  Returns false when the worker is not in the map. */
static bool worker_delta(struct kbpf *b, struct worker *w, int64_t now, uint64_t *ret_wait,
			 uint64_t *ret_run)
{
	struct kray_worker_stats s;
	__u32 pid = (__u32)w->pid;
	uint64_t wait, run;

	if (bpf_map_lookup_elem(b->workers_fd, &pid, &s))
		return false;
	run = s.oncpu_ns;
	if (s.oncpu_since && (uint64_t)now > s.oncpu_since)
		run += (uint64_t)now - s.oncpu_since;
	wait = s.rq_wait_ns;
	if (s.runnable_since && (uint64_t)now > s.runnable_since)
		wait += (uint64_t)now - s.runnable_since;
	*ret_wait = wait > w->bpf_wait ? wait - w->bpf_wait : 0;
	*ret_run = run > w->bpf_run ? run - w->bpf_run : 0;
	w->bpf_wait = wait;
	w->bpf_run = run;
	return true;
}

static void publish(struct kbpf *b, int64_t now)
{
	struct kray_sched_state st = { .sampled_ns = (uint64_t)now,
				       .wait_permille = b->wait_permille,
				       .oversubscribed = b->oversubscribed,
				       .spawns_deferred = b->spawns_deferred,
				       .windows_over = b->windows_over };
	struct kray_sched_state old;
	__u32 zero = 0;

	if (!bpf_map_lookup_elem(b->sched_fd, &zero, &old))
		st.threshold_permille = old.threshold_permille;
	bpf_map_update_elem(b->sched_fd, &zero, &st, BPF_ANY);
	b->published_ns = now;
}

static void sample(struct krayd *d, struct kbpf *b, int64_t now)
{
	int64_t window = now - b->sampled_ns;
	bool baseline = !b->sampled_ns || window > KBPF_STALE_NS;
	uint64_t wait = 0;
	unsigned busy = 0;

	/* A worker started during the window counts from its start (its entry began at 0). */
	for (struct worker *w = d->workers; w; w = w->next) {
		uint64_t dw, dr;

		if (!worker_delta(b, w, now, &dw, &dr))
			continue;
		if (!w->inflight || w->blocked || w->state != W_READY)
			continue;
		wait += dw;
		busy++;
	}
	b->sampled_ns = now;
	b->busy = busy;
	if (baseline)
		return;
	b->wait_permille = busy ? wait * 1000 / ((uint64_t)window * busy) : 0;
	/* A switch-in between reading the clock and reading the map can add a few us past
	 * the window's end. */
	if (b->wait_permille > 1000)
		b->wait_permille = 1000;
	b->oversubscribed =
		d->cfg.oversub_wait > 0 && b->wait_permille >= (uint64_t)d->cfg.oversub_wait * 10;
	if (b->oversubscribed)
		b->windows_over++;
	else
		b->deferred_since = 0;
	publish(b, now);
}

void kbpf_tick(struct krayd *d)
{
	struct kbpf *b = d->bpf;
	int64_t now;

	if (!b)
		return;
	now = now_ns();
	if (now - b->sampled_ns >= KBPF_WINDOW_NS)
		sample(d, b, now);
	kbpf_flush_info(d, now);
}

bool kbpf_oversubscribed(struct krayd *d)
{
	struct kbpf *b = d->bpf;
	int64_t now;

	if (!b || d->cfg.oversub_wait <= 0)
		return false;
	now = now_ns();
	if (!b->oversubscribed || !d->qhead || now - d->qhead->submit_ns > KBPF_STARVE_NS)
		return false;
	return true;
}

void kbpf_deferred(struct krayd *d)
{
	struct kbpf *b = d->bpf;

	if (!b)
		return;
	if (!b->deferred_since) {
		b->deferred_since = now_ns();
		log_info("bpf: CPUs oversubscribed (busy workers waited %llu.%llu%% of the last "
			 "%lld ms for a CPU): queueing tasks instead of starting workers",
			 (unsigned long long)b->wait_permille / 10,
			 (unsigned long long)b->wait_permille % 10, KBPF_WINDOW_NS / 1000000);
	}
	/* Once per window in the map (sample() publishes the rest): dispatch runs every loop
	 * turn while the queue waits. */
	if (!b->spawns_deferred++ || b->published_ns != b->sampled_ns)
		publish(b, b->sampled_ns);
}

int64_t kbpf_next_deadline(struct krayd *d)
{
	struct kbpf *b = d->bpf;

	/* While workers are busy the verdict is kept fresh (ten samples a second), so that
	 * it is current when a task arrives and `kray top` sees it. */
	if (!b)
		return -1;
	if (!b->busy && !(b->deferred_since && d->qhead))
		return b->ndirty ? b->info_ns + KBPF_INFO_NS : -1;
	return b->sampled_ns + KBPF_WINDOW_NS;
}
