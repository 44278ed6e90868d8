/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's BPF glue (daemon/bpf_*.c): the scheduler-metrics programs (bpf/sched_metrics.bpf.c)
 * loaded, attached and their maps pinned under /sys/fs/bpf/kray/<node>/ while krayd runs,
 * and the scheduling decision krayd takes from them.
 *
 * Every call is a no-op when BPF is off (`bpf = off`, KRAY_BPF=off, or no privileges or
 * kernel support: then kbpf_start() says so once in the log and krayd runs exactly as
 * without this file).
 */
#ifndef KRAYD_BPF_H
#define KRAYD_BPF_H

#include <stdbool.h>
#include <stdint.h>

struct krayd;
struct worker;
struct task;

/* Loads, pins and attaches.  Returns 0 whether or not BPF could be used (d->bpf says). */
int kbpf_start(struct krayd *d);
/* Detaches, unpins and removes the pin directory. */
void kbpf_stop(struct krayd *d);

/* bpf_prom.c: the metrics in the Prometheus text format, appended to b (nothing when off). */
struct kbuf;
void kbpf_render(struct krayd *d, struct kbuf *b);

/* Worker w was started (its pid is accounted from now on) / has been reaped. */
void kbpf_worker_add(struct krayd *d, struct worker *w);
void kbpf_worker_del(struct krayd *d, struct worker *w);
/* Writes the winfo entries that changed, if KBPF_INFO_NS has passed (every dispatch). */
void kbpf_flush_info(struct krayd *d, int64_t now);
/* w was idle and has been sent t: a dispatch-latency sample is due when it gets a CPU. */
void kbpf_worker_busy(struct krayd *d, struct worker *w, const struct task *t);
/* w sent a result. */
void kbpf_worker_done(struct krayd *d, struct worker *w);

/* bpf_sched.c: samples the workers' metrics if a window has passed (every dispatch). */
void kbpf_tick(struct krayd *d);
/*
 * bpf_sched.c: whether the run-queue wait of the busy workers over the last sample window
 * says the CPUs are oversubscribed (then krayd queues tasks rather than start workers).
 * From the last kbpf_tick() sample.  False when BPF is off.
 */
bool kbpf_oversubscribed(struct krayd *d);
/* Counts a worker start skipped because of it. */
void kbpf_deferred(struct krayd *d);
/* When krayd must look again (a deferred start waits for the next window); -1: never. */
int64_t kbpf_next_deadline(struct krayd *d);

#endif
