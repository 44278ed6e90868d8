// SPDX-License-Identifier: Apache-2.0
/*
 * Task timeouts (timeout_ms in kray_call_opts, `timeout_s` in Python).  Ray has none, but
 * a task that never returns would hold its CPU for ever: a task still running past its
 * deadline is marked timed out and its worker killed; the reaper fails it with
 * KRAY_WE_TIMED_OUT, without a retry, and the pool starts another worker.
 *
 * The deadline counts from when krayd sends the task to an idle worker (a task with a
 * timeout is never pipelined behind another, sched.c).  One timer serves all: the earliest
 * deadline of the tasks started with one, recomputed when it passes.
 */
#include <signal.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/task.h"
#include "core/timeout.h"
#include "core/worker.h"

void timeout_arm(struct krayd *d, struct task *t)
{
	t->timed_out = false; /* a task that went back to the queue unstarted */
	t->deadline_ns = now_ns() + (int64_t)t->timeout_ms * 1000000;
	if (!d->next_timeout || t->deadline_ns < d->next_timeout)
		d->next_timeout = t->deadline_ns;
}

static int64_t timeout_next(struct krayd *d)
{
	return d->next_timeout ? d->next_timeout : -1;
}

static void timeout_run(struct krayd *d, int64_t now)
{
	int64_t next = 0;

	if (!d->next_timeout || now < d->next_timeout)
		return;
	for (struct worker *w = d->workers; w; w = w->next) {
		struct task *t = w->head;

		if (w->actor || !t || !t->timeout_ms || t->timed_out || w->state == W_DEAD)
			continue;
		if (now < t->deadline_ns) {
			if (!next || t->deadline_ns < next)
				next = t->deadline_ns;
			continue;
		}
		t->timed_out = true;
		d->tasks_timed_out++;
		log_info("task '%.*s' ran past its timeout (%u ms): killing its worker (pid %d)",
			 t->fn->name_len, t->fn->name, t->timeout_ms, (int)w->pid);
		if (w->pid > 0)
			kill(w->pid, SIGKILL);
	}
	d->next_timeout = next;
}

int timeout_init(struct krayd *d)
{
	return loop_timer(d, timeout_next, timeout_run);
}
