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
#include <stddef.h>
#include <stdint.h>

struct krayd;
struct worker;
struct task;

/* bpf_plug.c: starts the BPF part and plugs it into the core (core/ext.h); returns 0
 * whether or not BPF could be used (d->bpf says).  bpf_unplug() stops it. */
int bpf_plug(struct krayd *d);
void bpf_unplug(struct krayd *d);

/* The node's pin directory (KRAY_BPF_PIN_ROOT/<node>) made, under the root's lock, whose
 * fd it returns (or -errno).  first: remove the directories of krayds that are gone, and
 * refuse an existing one (-EEXIST); later calls make it again if it was swept while empty.
 * kbpf_dir_remove() removes it once its pins are gone. */
int kbpf_dir_lock(const struct krayd *d, char *dir, size_t len, bool first);
void kbpf_dir_remove(const struct krayd *d);
/* Loads the scheduler-metrics programs, then pins their maps in dir and attaches them:
 * at once with `bpf-wait`, otherwise on a thread while krayd serves (d->bpf is set when
 * they are attached, about 0.1 s later).  Returns 0 whether or not BPF could be used. */
int kbpf_start(struct krayd *d, const char *dir);
/* Detaches and unpins; a load still running is left to end with the process. */
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
/* n results at once (fast calls a worker reports: bpf_fast.c). */
void kbpf_worker_done_n(struct krayd *d, struct worker *w, uint32_t n);

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

/*
 * bpf_fast.c: the fast path for synchronous calls (bpf/fastpath.bpf.c, docs/fastpath.md).
 * All no-ops (claims always granted) when d->fast is NULL.
 */
struct conn;
struct kray_wire_stats;
/* Loads the program and its maps (pinned in dir, beside the metrics; NULL: BPF is off)
 * if `fastpath` is on; logs why not otherwise.  It answers FAST_OPEN (a fast connection or a
 * refusal), FAST_DONE from drivers and FAST_STORE from workers either way.  kfast_stop()
 * before kbpf_stop(). */
void kfast_start(struct krayd *d, const char *dir);
void kfast_stop(struct krayd *d);
/* A driver's connection closed: its fast connection goes too. */
void kfast_conn_gone(struct conn *c);
/* krayd wants idle worker w for an EXEC: true when it has it (IDLE -> DAEMON), false when
 * the program gave it a fast task first. */
bool kfast_claim(struct krayd *d, struct worker *w);
/* Whether w runs a fast task (krayd does not count it in w->inflight). */
bool kfast_running(struct krayd *d, const struct worker *w);
/* krayd sends a task to w although it may run a fast task (FAST -> FAST_DAEMON): it runs
 * after that one, and its result wakes krayd.  False when w cannot take tasks. */
bool kfast_pass(struct krayd *d, struct worker *w);
/* After a dispatch round: w is held for krayd while tasks are queued, given back to the
 * program when it is idle and nothing is. */
void kfast_settle(struct krayd *d, struct worker *w, bool queued);
/* Before krayd stops an idle worker: false (keep it) when it runs a fast task. */
bool kfast_retire(struct krayd *d, struct worker *w);
/* Worker w died (how): returns whether it was running a fast task (its driver is told). */
bool kfast_worker_gone(struct krayd *d, struct worker *w, const char *how);
/* The program's counters in a STATUS reply. */
void kfast_stats(struct krayd *d, struct kray_wire_stats *st);

#endif
