// SPDX-License-Identifier: GPL-2.0
/*
 * sched_metrics: how the kernel really schedules kray's workers.
 *
 * Three BTF tracepoints (tp_btf: fentry and kprobes do not load on kray's kernels) keep,
 * for every pid krayd put in the `workers` map, its on-CPU time, its run-queue waits (a
 * log2 histogram and a total) and its voluntary and involuntary switches.  A task is
 * "waiting in the run queue" from the moment it becomes runnable without a CPU (woken,
 * or preempted while still runnable) to the moment sched_switch gives it one.
 *
 * The same sched_switch also measures dispatch latency: when krayd sends a task to an
 * idle worker it stores the task's submit time in the worker's slot of `submits` (an
 * mmapable array: a plain store in krayd, no system call on the task's path); the next
 * time that worker gets a CPU (to read the task) the program swaps the slot for 0 and
 * adds now - submit to the `dispatch` histogram.  So the figure includes krayd's own work,
 * the socket and the worker's run-queue wait, which is what a caller waits for.
 *
 * Trade-offs: threads are keyed by pid (thread id); only a pool worker's main thread is
 * registered, which is where tasks run.  Counters are updated with atomic adds, the
 * timestamps with plain stores: a wakeup racing a switch on the other CPU can lose one
 * sample, never corrupt a total.  Every program returns at once for pids not in the map,
 * which is the cost every context switch on the machine pays while krayd runs.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "../include/uapi/kray_bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KRAY_BPF_MAX_WORKERS);
	__type(key, __u32);
	__type(value, struct kray_worker_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} workers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KRAY_BPF_MAX_WORKERS);
	__type(key, __u32);
	__type(value, struct kray_worker_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} winfo SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KRAY_BPF_MAX_WORKERS);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} submits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kray_hist);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dispatch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kray_sched_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sched SEC(".maps");

/* log2 of a duration in microseconds (a binary search: no loop for the verifier). */
static __always_inline __u32 slot_of(__u64 ns)
{
	__u64 us = ns / 1000;
	__u32 s = 0;

	if (us >> 32) {
		us >>= 32;
		s += 32;
	}
	if (us >> 16) {
		us >>= 16;
		s += 16;
	}
	if (us >> 8) {
		us >>= 8;
		s += 8;
	}
	if (us >> 4) {
		us >>= 4;
		s += 4;
	}
	if (us >> 2) {
		us >>= 2;
		s += 2;
	}
	if (us >> 1)
		s += 1;
	return s < KRAY_BPF_HIST_SLOTS ? s : KRAY_BPF_HIST_SLOTS - 1;
}

/* The clock is read only for kray's workers: most switches on the machine are not theirs. */
static __always_inline void runnable(__u32 pid)
{
	struct kray_worker_stats *s = bpf_map_lookup_elem(&workers, &pid);

	if (s && !s->runnable_since && !s->oncpu_since)
		s->runnable_since = bpf_ktime_get_ns();
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_wakeup, struct task_struct *p)
{
	runnable(p->pid);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(on_wakeup_new, struct task_struct *p)
{
	runnable(p->pid);
	return 0;
}

static __always_inline void switched_out(struct kray_worker_stats *s, __u64 now,
					 bool still_runnable)
{
	if (s->oncpu_since && now > s->oncpu_since)
		__sync_fetch_and_add(&s->oncpu_ns, now - s->oncpu_since);
	s->oncpu_since = 0;
	if (still_runnable) {
		__sync_fetch_and_add(&s->nivcsw, 1);
		s->runnable_since = now;
	} else {
		__sync_fetch_and_add(&s->nvcsw, 1);
		s->runnable_since = 0;
	}
}

static __always_inline void dispatch_sample(const struct kray_worker_stats *s, __u64 now)
{
	__u32 slot = s->slot, zero = 0;
	__u64 *p = bpf_map_lookup_elem(&submits, &slot);
	struct kray_hist *h;
	__u64 submit;

	/* Swapped, not read then cleared: krayd may store the next task's time meanwhile. */
	if (!p || !*p || !(submit = __sync_lock_test_and_set(p, 0)))
		return;
	h = bpf_map_lookup_elem(&dispatch, &zero);
	if (!h || now < submit)
		return;
	__sync_fetch_and_add(&h->count, 1);
	__sync_fetch_and_add(&h->sum_ns, now - submit);
	__sync_fetch_and_add(&h->slot[slot_of(now - submit) & (KRAY_BPF_HIST_SLOTS - 1)], 1);
}

static __always_inline void switched_in(struct kray_worker_stats *s, __u64 now)
{
	__u64 since = s->runnable_since;

	if (since && now > since) {
		__u64 wait = now - since;

		__sync_fetch_and_add(&s->rq_wait_ns, wait);
		__sync_fetch_and_add(&s->rq_waits, 1);
		__sync_fetch_and_add(&s->rq_hist[slot_of(wait) & (KRAY_BPF_HIST_SLOTS - 1)], 1);
	}
	s->runnable_since = 0;
	s->oncpu_since = now;
	dispatch_sample(s, now);
}

/* prev_state 0 (TASK_RUNNING) means prev was preempted and stays on the run queue. */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u32 prev_pid = prev->pid, next_pid = next->pid;
	struct kray_worker_stats *out = bpf_map_lookup_elem(&workers, &prev_pid);
	struct kray_worker_stats *in = bpf_map_lookup_elem(&workers, &next_pid);
	__u64 now;

	/* Two branches rather than `!out && !in`, which clang turns into an OR of the
	 * pointers that the verifier refuses. */
	if (out) {
		now = bpf_ktime_get_ns();
		switched_out(out, now, prev_state == 0);
		if (in)
			switched_in(in, now);
	} else if (in) {
		switched_in(in, bpf_ktime_get_ns());
	}
	return 0;
}
