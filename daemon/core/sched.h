/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: the local scheduler and the job table (sched.c).
 */
#ifndef KRAYD_CORE_SCHED_H
#define KRAYD_CORE_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "core/krayd.h"
#include "core/job.h"

/* sched.c */
/* Returns 0, or -1 when t cannot be sent (too many or too large arguments, an argument
 * that cannot be restored): t has been failed. */
int sched_send_exec(struct krayd *d, struct worker *w, struct task *t);
/* Gives back the actor handles a worker's connection borrowed for running t. */
void sched_unlend(struct conn *c, struct task *t);
void sched_enqueue(struct krayd *d, struct task *t, bool front);
/* Takes the queued task *pp (prev: the one before it, NULL at the head) out of the queue. */
struct task *sched_unqueue(struct krayd *d, struct task **pp, struct task *prev);
void sched_dispatch(struct krayd *d);
/* Gives back the custom resources t held on its worker (result, hand-back, death). */
void sched_res_give(struct krayd *d, struct task *t);
void sched_result(struct conn *c, const struct wire_result *r);
void sched_reject(struct conn *c, const struct kray_oid *task);
void sched_blocked(struct worker *w, bool blocked);
struct fnstat *sched_fn(struct krayd *d, const char *name, uint8_t len);
/* A worker's account of fast calls of one function (bpf_fast.c's FAST_COUNT): counted as
 * tasks krayd ran, in the same counters and per-function run time.  stored of them ended
 * through krayd (FAST_STORE), which counted their end already. */
void sched_fast_ran(struct krayd *d, const char *name, uint8_t len, uint32_t runs, uint32_t failed,
		    uint32_t stored, uint64_t run_ns);
/* Sends w the JOB frame (code path) of job, unless it has had it. */
void sched_tell_job(struct worker *w, uint32_t job, const char *path);
/* Tells the code path of the last driver that connected with one (d->warm_job) to idle
 * pool worker w, or to every idle one (w NULL): each loads the code and runs its
 * kray_warm() (kray.h) while it waits, not at the job's first call. */
void sched_warm(struct krayd *d, struct worker *w);
void sched_fini(struct krayd *d);
/* An idle pool worker for actor a to host instead of a process started for it (a
 * Python actor's preferably one whose interpreter runs), taken off the fast path (no
 * driver may claim it for a task from now on; one a driver claimed an instant before is
 * passed over); NULL when none is idle.  The caller makes it a's (worker_adopt()). */
struct worker *sched_adopt(struct krayd *d, const struct actor *a);
/* Starts pool workers up to the pool's floor (prestart), less the CPU slots actors hold:
 * after an actor took one, or after workers or actors died, the next tasks (and actors)
 * find one ready. */
void sched_refill(struct krayd *d);
/* Pool workers running now beyond max-workers (started for nested tasks). */
unsigned sched_workers_over(struct krayd *d);
/* Worker w was reaped (how it died): its tasks are queued again or failed, or its actor is
 * told; with was_starting, three failed starts in a row fail the queue. */
void sched_worker_lost(struct krayd *d, struct worker *w, const char *how, bool was_starting,
		       bool fast_ran);

#endif
