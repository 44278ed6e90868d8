// SPDX-License-Identifier: Apache-2.0
/*
 * A task's life in krayd's core (daemon/core/task.c) from a SUBMIT frame: its return
 * objects, its ref arguments (held, waited for, failed from), the ready queue, failure.
 */
#include "core.h"

static struct conn *c;

static void setup(void)
{
	core_setup(NULL);
	c = core_client();
}

static void teardown(void)
{
	core_client_free(c);
	core_teardown();
}

TestSuite(task, .init = setup, .fini = teardown, .timeout = 30);

/* Submits "fn"(args...) as c, seq: the frame encoded and decoded as krayd would. */
static void submit(uint32_t seq, uint16_t num_returns, const struct kray_oid *refs, unsigned nrefs,
		   int64_t plain)
{
	struct kray_msg_submit m = { .seq = seq,
				     .num_returns = num_returns,
				     .nargs = (uint16_t)(nrefs + 1),
				     .name_len = 2 };
	struct kbuf b = { 0 };
	struct wire_submit s;

	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, "fn", 2);
	wire_put_value(&b, KRAY_WT_INT64, 0, (uint64_t)plain, NULL, 0);
	for (unsigned i = 0; i < nrefs; i++)
		wire_put_value(&b, KRAY_WT_REF, 0, 0, &refs[i], sizeof(refs[i]));
	cr_assert_eq(wire_dec_submit(b.data, b.len, &s), 0);
	task_submit(c, &s);
	kbuf_free(&b);
}

static struct obj *ret(uint32_t seq, uint32_t i)
{
	struct kray_oid id = { d.node, c->id, seq, i };

	return store_get(&d, &id);
}

/* An object c holds, pending until sealed. */
static struct obj *held(uint32_t seq)
{
	struct kray_oid id = { d.node, c->id, seq, KRAY_OID_PUT };
	struct obj *o = store_create(&d, &id);

	cr_assert_not_null(o);
	store_conn_ref(c, o);
	return o;
}

Test(task, a_task_without_ref_arguments_is_queued_with_its_returns)
{
	submit(1, 2, NULL, 0, 5);
	cr_assert_not_null(d.qhead);
	cr_assert_eq(d.qhead->id.seq, 1);
	cr_assert_eq(d.qhead->nargs, 1);
	cr_assert_eq(d.st.tasks_submitted, 1);
	for (uint32_t i = 0; i < 2; i++) {
		cr_assert_not_null(ret(1, i));
		cr_assert_eq(ret(1, i)->state, OBJ_PENDING);
	}
}

Test(task, a_task_waits_for_its_arguments_then_is_queued)
{
	struct obj *a = held(100), *b = held(101);
	struct kray_oid ids[2] = { a->id, b->id };
	struct wire_value v = { .type = KRAY_WT_INT64, .scalar = 1 };

	submit(1, 1, ids, 2, 0);
	cr_assert_null(d.qhead, "not ready: its arguments are pending");
	cr_assert_eq(d.st.tasks_waiting, 1);
	cr_assert_eq(a->refs, 2, "held by the task as well as the client");
	store_seal(&d, a, &v);
	cr_assert_null(d.qhead, "one argument still pending");
	store_seal(&d, b, &v);
	cr_assert_not_null(d.qhead);
	cr_assert_eq(d.qhead->id.seq, 1);
	cr_assert_eq(d.st.tasks_waiting, 0);
}

Test(task, an_error_argument_fails_the_task_at_once)
{
	struct obj *a = held(100);
	struct kray_oid id = a->id;
	struct obj *r;

	store_seal_error(&d, a, KRAY_WE_TASK, "boom", 4);
	submit(1, 1, &id, 1, 0);
	cr_assert_null(d.qhead);
	r = ret(1, 0);
	cr_assert_eq(r->state, OBJ_READY);
	cr_assert_eq(r->type, KRAY_WT_ERROR);
	cr_assert_eq(r->err, KRAY_WE_TASK, "the argument's own error");
	cr_assert_eq(d.st.tasks_failed, 1);
}

Test(task, a_ref_the_submitter_does_not_hold_fails_the_task)
{
	struct kray_oid stranger = { d.node, 999, 1, KRAY_OID_PUT };
	struct obj *r;

	submit(1, 1, &stranger, 1, 0);
	cr_assert_null(d.qhead);
	r = ret(1, 0);
	cr_assert_eq(r->type, KRAY_WT_ERROR);
	cr_assert_eq(r->err, KRAY_WE_OBJECT_LOST);
}

Test(task, failing_a_task_seals_every_return_with_the_error)
{
	struct task *t;

	submit(1, 3, NULL, 0, 0);
	t = sched_unqueue(&d, &d.qhead, NULL);
	task_fail(&d, t, KRAY_WE_WORKER_DIED, "worker died running '%s'", "fn");
	for (uint32_t i = 0; i < 3; i++) {
		struct obj *r = ret(1, i);

		cr_assert_eq(r->type, KRAY_WT_ERROR);
		cr_assert_eq(r->err, KRAY_WE_WORKER_DIED);
		cr_assert(memmem(r->data, r->len, "'fn'", 4));
	}
	cr_assert_eq(d.st.tasks_failed, 1);
}

Test(task, cancelling_a_waiting_task_fails_it_when_its_arguments_arrive)
{
	struct obj *a = held(100);
	struct kray_oid id = a->id, rid = { d.node, c->id, 1, 0 };
	struct wire_value v = { .type = KRAY_WT_INT64 };

	submit(1, 1, &id, 1, 0);
	task_cancel(&d, &rid, 0);
	store_seal(&d, a, &v);
	cr_assert_null(d.qhead, "it never runs");
	cr_assert_eq(ret(1, 0)->type, KRAY_WT_ERROR);
	cr_assert_eq(ret(1, 0)->err, KRAY_WE_CANCELLED);
}
