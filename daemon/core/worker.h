/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: the worker pool's processes (worker.c).
 *
 * A worker is a kray-worker process krayd started on a socketpair; it runs pool tasks,
 * or hosts one actor.
 */
#ifndef KRAYD_CORE_WORKER_H
#define KRAYD_CORE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../../common/oidmap.h"

#include "core/krayd.h"

enum worker_state { W_STARTING, W_READY, W_DEAD };

struct worker {
	uint32_t id;
	pid_t pid;
	enum worker_state state;
	struct conn *conn;
	struct task *head, *tail; /* in flight, in dispatch order; head is running */
	unsigned inflight;
	bool blocked; /* in a get: its CPU slot is given back */
	uint32_t cpu_milli; /* CPU (thousandths of a slot) its running task holds */
	bool plain; /* runs tasks of the default shape only (1 CPU, no custom resources):
		     * more of those may be pipelined to it */
	struct actor *actor; /* the actor it hosts: not in the task pool */
	struct oidmap jobs; /* {job, 0, 0, 0}: jobs whose code path it has been told */
	uint64_t tasks_done; /* results it sent */
	uint64_t bpf_wait, bpf_run; /* run-queue wait and on-CPU ns at the last BPF sample */
	unsigned bpf_slot; /* its slot in the BPF `submits` map, when bpf_in */
	bool bpf_in, bpf_dirty; /* accounted in the BPF maps; its winfo entry is stale */
	uint16_t fast_slot; /* its fast connection's slot + 1 (bpf_fast.c); 0: none */
	struct worker *next;
};

/* worker.c */
int worker_spawn(struct krayd *d);
/* A worker dedicated to hosting actor a (started now; a is told when it connects). */
int worker_spawn_actor(struct krayd *d, struct actor *a);
/* Idle pool worker w (sched_adopt()'s) hosts actor a from now: it leaves the pool. */
void worker_adopt(struct worker *w, struct actor *a);
struct worker *worker_by_id(struct krayd *d, uint32_t id);
void worker_attach(struct worker *w, struct conn *c);
void worker_conn_lost(struct worker *w);
void worker_reap(struct krayd *d);
void worker_stop_all(struct krayd *d);
/* worker_list.c: the workers and drivers as JSON, {"api", "node_id", "workers": [...],
 * "drivers": [...]} (docs/state.md, docs/dashboard.md). */
void worker_list(struct krayd *d, struct kbuf *b);

#endif
