// SPDX-License-Identifier: Apache-2.0
/*
 * krayd's scheduler (daemon/core/sched.c) on its own: the ready queue, the placement hook,
 * function and job tables, and dispatch to idle workers, with workers that are only
 * connections whose output the test reads (no process is started: max-workers is held at
 * the number of fake workers).
 */
#include "core.h"

static uint32_t job;

static struct task *mk_task(uint32_t seq, uint32_t cpu_milli)
{
	struct task *t = calloc(1, sizeof(*t));

	cr_assert_not_null(t);
	t->id = (struct kray_oid){ .node = 7, .owner = 1, .seq = seq };
	task_set_job(&d, t, job);
	t->fn = sched_fn(&d, "f", 1);
	t->cpu_milli = cpu_milli;
	t->submit_ns = now_ns();
	return t;
}

static struct worker *fake_worker(void)
{
	struct worker *w = calloc(1, sizeof(*w));
	struct conn *c = core_client();

	cr_assert_not_null(w);
	c->role = ROLE_WORKER;
	c->worker = w;
	w->id = ++d.next_worker;
	w->state = W_READY;
	w->conn = c;
	w->next = d.workers;
	d.workers = w;
	d.nworkers++;
	d.cfg.max_workers = (int)d.nworkers; /* dispatch must not start real ones */
	return w;
}

static void workers_free(void)
{
	while (d.workers) {
		struct worker *w = d.workers;

		d.workers = w->next;
		while (w->head) {
			struct task *t = w->head;

			w->head = t->next;
			task_free(&d, t);
		}
		/* Not a worker any more: its release must not signal a process. */
		w->conn->worker = NULL;
		w->conn->role = ROLE_DRIVER;
		core_client_free(w->conn);
		oidmap_free(&w->jobs);
		free(w);
	}
	d.nworkers = 0;
}

static void setup(void)
{
	core_setup(NULL);
	job = 1;
	job_hold(job_add(&d, job, "libf.so", 7));
}

static void teardown(void)
{
	workers_free();
	core_teardown();
}

TestSuite(sched, .init = setup, .fini = teardown, .timeout = 30);

static uint32_t queued_seq(unsigned i)
{
	struct task *t = d.qhead;

	while (t && i--)
		t = t->next;
	return t ? t->id.seq : 0;
}

Test(sched, the_queue_is_fifo_and_front_goes_first)
{
	struct task *b;

	sched_enqueue(&d, mk_task(1, 1000), false);
	sched_enqueue(&d, b = mk_task(2, 1000), false);
	sched_enqueue(&d, mk_task(3, 1000), false);
	sched_enqueue(&d, mk_task(4, 1000), true); /* a hand-back goes first */
	cr_assert_eq(d.st.tasks_queued, 4);
	cr_assert_eq(queued_seq(0), 4);
	cr_assert_eq(queued_seq(1), 1);
	cr_assert_eq(queued_seq(3), 3);
	/* Out of the middle, then off the tail: the tail follows. */
	sched_unqueue(&d, &d.qhead->next->next, d.qhead->next);
	task_free(&d, b);
	cr_assert_eq(queued_seq(2), 3);
	task_free(&d, sched_unqueue(&d, &d.qhead->next->next, d.qhead->next));
	cr_assert_eq(d.qtail->id.seq, 1);
	sched_enqueue(&d, mk_task(5, 1000), false);
	cr_assert_eq(queued_seq(2), 5);
	cr_assert_eq(d.st.tasks_queued, 3);
}

/* Jobs with queued tasks take turns; each keeps its own order; a job that was idle starts
 * after the last task dispatched, with no turns banked. */
Test(sched, jobs_take_turns)
{
	uint32_t a = job, b = 2, c = 3;
	struct task *t;

	job_hold(job_add(&d, b, "libf.so", 7));
	job_hold(job_add(&d, c, "libf.so", 7));
	for (uint32_t i = 1; i <= 5; i++)
		sched_enqueue(&d, mk_task(i, 1000), false); /* job a: 1..5 */
	job = b;
	sched_enqueue(&d, mk_task(11, 1000), false);
	sched_enqueue(&d, mk_task(12, 1000), false);
	static const uint32_t want[] = { 1, 11, 2, 12, 3, 4, 5 };

	for (unsigned i = 0; i < 7; i++)
		cr_assert_eq(queued_seq(i), want[i], "place %u: %u, want %u", i, queued_seq(i),
			     want[i]);
	/* Take three (as dispatch does), then job c arrives: it joins the current round (after
	 * a's task of the same rank), not the end of the queue. */
	for (int i = 0; i < 3; i++) {
		t = d.qhead;
		sched_unqueue(&d, &d.qhead, NULL);
		if (t->rank > d.vnow)
			d.vnow = t->rank;
		task_free(&d, t);
	}
	job = c;
	sched_enqueue(&d, mk_task(21, 1000), false);
	cr_assert_eq(queued_seq(0), 12);
	cr_assert_eq(queued_seq(1), 3);
	cr_assert_eq(queued_seq(2), 21, "job c's first task: %u", queued_seq(2));
	cr_assert_eq(queued_seq(3), 4);
	job = a;
}

/* A job's record lives while its driver or a task refers to it. */
Test(sched, job_records_go_with_their_last_reference)
{
	struct task *t;

	job_hold(job_add(&d, 9, "libj.so", 7));
	job = 9;
	t = mk_task(1, 1000);
	job = 1;
	job_drop(&d, job_get(&d, 9)); /* the driver went: its task still holds it */
	cr_assert_str_eq(job_code_path(&d, 9), "libj.so");
	task_free(&d, t);
	cr_assert_null(job_get(&d, 9), "the record outlived its last task");
}

Test(sched, the_placement_hook_takes_what_it_wants)
{
	struct task *t = mk_task(1, 1000);

	probe.place_custom = true;
	t->res = calloc(1, sizeof(*t->res));
	snprintf(t->res[0].name, sizeof(t->res[0].name), "GPU");
	t->res[0].milli = 1000;
	t->nres = 1;
	sched_enqueue(&d, t, false); /* taken (and freed) by the probe, as the cluster would */
	cr_assert_eq(probe.placed, 1);
	cr_assert_null(d.qhead);
	sched_enqueue(&d, mk_task(2, 1000), false);
	cr_assert_eq(probe.placed, 1, "a plain task stays");
	cr_assert_eq(queued_seq(0), 2);
}

Test(sched, functions_and_jobs_are_interned)
{
	struct fnstat *f = sched_fn(&d, "square", 6);

	cr_assert_eq(sched_fn(&d, "square", 6), f);
	cr_assert_neq(sched_fn(&d, "squares", 7), f);
	cr_assert_eq(f->name_len, 6);
	cr_assert_str_eq(job_code_path(&d, job), "libf.so");
	cr_assert_null(job_code_path(&d, 999));
}

/* The frames queued to c: the type of the first `n`, and the EXEC's task. */
static unsigned frames(struct conn *c, uint16_t *types, unsigned n, struct kray_oid *exec_task)
{
	size_t off = c->out.off;
	unsigned i = 0;

	while (off + sizeof(struct kray_frame_hdr) <= c->out.len && i < n) {
		struct kray_frame_hdr h;

		memcpy(&h, c->out.data + off, sizeof(h));
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0);
		types[i++] = h.type;
		if (h.type == KRAY_MSG_EXEC && exec_task) {
			struct wire_exec e;

			cr_assert_eq(wire_dec_exec(c->out.data + off + sizeof(h), h.len, &e), 0);
			*exec_task = e.m.task;
		}
		off += sizeof(h) + h.len;
	}
	return i;
}

Test(sched, dispatch_sends_a_queued_task_to_an_idle_worker)
{
	struct worker *w = fake_worker();
	struct task *t = mk_task(1, 1000);
	struct kray_oid sent = { 0 };
	uint16_t types[4];

	sched_enqueue(&d, t, false);
	sched_dispatch(&d);
	cr_assert_null(d.qhead);
	cr_assert_eq(w->head, t);
	cr_assert_eq(w->inflight, 1);
	cr_assert_eq(w->cpu_milli, 1000, "it holds the task's CPU");
	cr_assert_geq(probe.claims, 1, "the worker was claimed from the parts first");
	cr_assert_eq(probe.exec_sent, 1);
	cr_assert_eq(frames(w->conn, types, 4, &sent), 2);
	cr_assert_eq(types[0], KRAY_MSG_JOB, "the job's code path first");
	cr_assert_eq(types[1], KRAY_MSG_EXEC);
	cr_assert(oid_eq(&sent, &t->id));
}

/* A job whose record goes: each worker that was told its code path is told to forget it
 * (JOB_END), once; a worker never told hears nothing. */
Test(sched, workers_forget_an_ended_job)
{
	struct worker *told = fake_worker(), *other = fake_worker();
	struct kray_oid key = { .node = 9 };
	uint16_t types[4];

	job_hold(job_add(&d, 9, "libj.so", 7));
	sched_tell_job(told, 9, "libj.so");
	sched_tell_job(told, 9, "libj.so"); /* (told once) */
	cr_assert_eq(frames(told->conn, types, 4, NULL), 1);
	told->conn->out.off = told->conn->out.len; /* as if sent */
	cr_assert_not_null(oidmap_get(&told->jobs, &key));
	job_drop(&d, job_get(&d, 9));
	cr_assert_null(job_get(&d, 9));
	cr_assert_eq(frames(told->conn, types, 4, NULL), 1);
	cr_assert_eq(types[0], KRAY_MSG_JOB_END);
	cr_assert_null(oidmap_get(&told->jobs, &key), "krayd's view of the worker forgot it");
	cr_assert_eq(frames(other->conn, types, 4, NULL), 0, "a worker never told hears nothing");
	/* The same id again (a job of another node back with more tasks): told afresh. */
	job_hold(job_add(&d, 9, "libj.so", 7));
	told->conn->out.off = told->conn->out.len;
	sched_tell_job(told, 9, "libj.so");
	cr_assert_eq(frames(told->conn, types, 4, NULL), 1);
	cr_assert_eq(types[0], KRAY_MSG_JOB);
	job_drop(&d, job_get(&d, 9));
}

Test(sched, cpu_slots_bound_what_starts)
{
	struct worker *a = fake_worker(), *b = fake_worker();

	sched_enqueue(&d, mk_task(1, 1000), false);
	sched_enqueue(&d, mk_task(2, 1000), false);
	sched_dispatch(&d); /* one CPU slot (--num-cpus 1) */
	cr_assert_eq(a->inflight + b->inflight, 1);
	cr_assert_eq(queued_seq(0), 2, "the second waits for the slot");
	/* A task of no CPU runs beside the slots. */
	sched_enqueue(&d, mk_task(3, 0), false);
	sched_dispatch(&d);
	cr_assert_eq(a->inflight + b->inflight, 2);
	cr_assert_eq(queued_seq(0), 2);
}

Test(sched, a_refused_claim_keeps_the_task_queued)
{
	struct worker *w = fake_worker();

	probe.refuse_claims = true; /* the fast path gave it work first */
	sched_enqueue(&d, mk_task(1, 1000), false);
	sched_dispatch(&d);
	cr_assert_eq(w->inflight, 0);
	cr_assert_eq(queued_seq(0), 1);
	probe.refuse_claims = false;
	sched_dispatch(&d);
	cr_assert_eq(w->inflight, 1);
	cr_assert_null(d.qhead);
}
