// SPDX-License-Identifier: Apache-2.0
/*
 * The BPF scheduler metrics on krayd's Prometheus endpoint (daemon/core/metrics.c), for
 * whoever scrapes rather than runs `kray top`: per worker (labelled by worker id) its
 * on-CPU time, run-queue wait and context switches; the dispatch latency's sum and count;
 * and the oversubscription verdict.  Read from the same maps, at scrape time.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "../../include/uapi/kray_bpf.h"
#include "bpf/bpf.h"
#include "bpf/bpf_priv.h"
#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/task.h"

static void head(struct kbuf *b, const char *name, const char *type, const char *help)
{
	kbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Each worker's entry, with the running interval of one on a CPU now added. */
static unsigned read_workers(struct krayd *d, struct kray_worker_stats *out, unsigned max)
{
	int64_t now = now_ns();
	unsigned n = 0;

	for (struct worker *w = d->workers; w && n < max; w = w->next) {
		__u32 pid = (__u32)w->pid;
		struct kray_worker_stats *s = &out[n];

		if (bpf_map_lookup_elem(d->bpf->workers_fd, &pid, s))
			continue;
		if (s->oncpu_since && (uint64_t)now > s->oncpu_since)
			s->oncpu_ns += (uint64_t)now - s->oncpu_since;
		if (s->runnable_since && (uint64_t)now > s->runnable_since)
			s->rq_wait_ns += (uint64_t)now - s->runnable_since;
		n++;
	}
	return n;
}

void kbpf_render(struct krayd *d, struct kbuf *b)
{
	struct kray_worker_stats *ws;
	struct kbpf *k = d->bpf;
	struct kray_hist h = { 0 };
	__u32 zero = 0;
	unsigned n;

	if (!k || !(ws = calloc(d->nworkers + 1, sizeof(*ws))))
		return;
	n = read_workers(d, ws, d->nworkers);
	head(b, "kray_worker_cpu_seconds_total", "counter", "Time a worker spent on a CPU (BPF).");
	for (unsigned i = 0; i < n; i++)
		kbuf_printf(b, "kray_worker_cpu_seconds_total{worker=\"%u\"} %.9f\n",
			    ws[i].worker_id, (double)ws[i].oncpu_ns / 1e9);
	head(b, "kray_worker_runqueue_wait_seconds_total", "counter",
	     "Time a worker was runnable but had no CPU (BPF).");
	for (unsigned i = 0; i < n; i++)
		kbuf_printf(b, "kray_worker_runqueue_wait_seconds_total{worker=\"%u\"} %.9f\n",
			    ws[i].worker_id, (double)ws[i].rq_wait_ns / 1e9);
	head(b, "kray_worker_context_switches_total", "counter",
	     "Times a worker left its CPU: blocked (voluntary) or preempted (involuntary).");
	for (unsigned i = 0; i < n; i++) {
		kbuf_printf(b,
			    "kray_worker_context_switches_total{worker=\"%u\",kind=\"voluntary\"} "
			    "%llu\n",
			    ws[i].worker_id, (unsigned long long)ws[i].nvcsw);
		kbuf_printf(b,
			    "kray_worker_context_switches_total{worker=\"%u\",kind=\"involuntary\"}"
			    " %llu\n",
			    ws[i].worker_id, (unsigned long long)ws[i].nivcsw);
	}
	bpf_map_lookup_elem(k->dispatch_fd, &zero, &h);
	head(b, "kray_dispatch_latency_seconds_total", "counter",
	     "Sum of submit-to-start times of tasks sent to idle workers (BPF).");
	kbuf_printf(b, "kray_dispatch_latency_seconds_total %.9f\n", (double)h.sum_ns / 1e9);
	head(b, "kray_dispatch_latency_samples_total", "counter",
	     "Tasks in kray_dispatch_latency_seconds_total.");
	kbuf_printf(b, "kray_dispatch_latency_samples_total %llu\n", (unsigned long long)h.count);
	head(b, "kray_cpus_oversubscribed", "gauge",
	     "1 while busy workers wait for a CPU past oversubscribed-wait: no new workers.");
	kbuf_printf(b, "kray_cpus_oversubscribed %d\n", k->oversubscribed ? 1 : 0);
	head(b, "kray_runqueue_wait_ratio", "gauge",
	     "Share of the last 100 ms the busy workers spent waiting for a CPU.");
	kbuf_printf(b, "kray_runqueue_wait_ratio %.3f\n", (double)k->wait_permille / 1000);
	head(b, "kray_worker_starts_deferred_total", "counter",
	     "Dispatch rounds that queued tasks instead of starting workers (oversubscribed).");
	kbuf_printf(b, "kray_worker_starts_deferred_total %llu\n",
		    (unsigned long long)k->spawns_deferred);
	if (d->fast) { /* docs/fastpath.md */
		struct kray_wire_stats st = { 0 };

		kfast_stats(d, &st);
		head(b, "kray_fast_tasks_total", "counter",
		     "Synchronous calls steered to an idle worker by the BPF fast path.");
		kbuf_printf(b, "kray_fast_tasks_total %llu\n", (unsigned long long)st.fast_tasks);
		head(b, "kray_fast_bounced_total", "counter",
		     "Fast calls sent back to the daemon path (no idle worker, or tasks queued).");
		kbuf_printf(b, "kray_fast_bounced_total %llu\n",
			    (unsigned long long)st.fast_bounced);
	}
	free(ws);
}
