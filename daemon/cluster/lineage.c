// SPDX-License-Identifier: Apache-2.0
/*
 * Large returns of tasks run on another node, and their lineage.
 *
 * The node that ran a task keeps its large returns (OBJ_HELD) as references of the link
 * the task came over; the owner's objects stay pending with `remote_link` set, and the
 * owner keeps the finished task (cl->lineage).  The first thing here that waits on such
 * an object (a get, a wait, a task argument: remote_want()) pulls it, once for all of
 * them; when it arrives, or is freed here first, the other node is told to drop its copy
 * and the task is let go once none of its returns is held elsewhere.  If the link goes
 * before that, the task runs again on a live node (lineage reconstruction, as in Ray), or
 * the objects become ObjectLost errors when it cannot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/task.h"
#include "core/store.h"
#include "core/sched.h"

static void send_oids(struct link *l, uint16_t type, const struct kray_oid *id)
{
	struct kbuf *b = net_out(l);

	if (type == KRAY_MSG_PEER_RELEASE) {
		struct kray_msg_refs r = { .n = 1 };

		WIRE_FRAME(b, type, 0, WIRE_FIXED(r), WIRE_FIXED(*id));
	} else {
		struct kray_msg_obj_held h = { .oid = *id };

		WIRE_FRAME(b, type, 0, WIRE_FIXED(h));
	}
	net_flush(l);
}

int remote_on_held(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_obj_held m;
	struct kray_oid tid;
	struct obj *o;
	uint64_t *v;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed held object", -EBADMSG);
	o = store_get(d, &m.oid);
	tid = m.oid;
	tid.index = 0;
	v = oidmap_get(&d->cl->fwd_index, &tid);
	if (!o || o->state != OBJ_PENDING || o->writer || o->fd >= 0 || o->remote_link ||
	    m.oid.node != d->node || !v) {
		send_oids(l, KRAY_MSG_PEER_RELEASE, &m.oid); /* not wanted here (any more) */
		return 0;
	}
	o->remote_link = l->id;
	((struct task *)(uintptr_t)*v)->rem.held_remote++;
	if (o->deps || o->lazy)
		remote_want(d, o); /* a get or a task already waits for it, or a lazy reader
				    * (its first copy's holder died: store_lazy_net.c) */
	return 0;
}

void remote_want(struct krayd *d, struct obj *o)
{
	struct link *l;

	if (!o->remote_link || o->pulling || !d->cl)
		return;
	l = net_link_by_id(d, o->remote_link);
	if (!l)
		return; /* its node is gone: remote_link_gone() runs the task again */
	o->pulling = true;
	d->cl->pulled++;
	send_oids(l, KRAY_MSG_OBJ_PULL, &o->id);
}

void remote_obj_settled(struct krayd *d, struct obj *o)
{
	struct link *l = d->cl ? net_link_by_id(d, o->remote_link) : NULL;
	struct kray_oid tid = o->id;
	uint64_t *v;

	if (l)
		send_oids(l, KRAY_MSG_PEER_RELEASE, &o->id);
	o->remote_link = 0;
	o->pulling = false;
	if (o->stub)
		return; /* lent, not made by a task of this node */
	tid.index = 0;
	v = d->cl ? oidmap_get(&d->cl->lineage, &tid) : NULL;
	if (v) {
		struct task *t = (struct task *)(uintptr_t)*v;

		if (!--t->rem.held_remote) {
			oidmap_del(&d->cl->lineage, &tid);
			task_free(d, t);
		}
	} else if (d->cl && (v = oidmap_get(&d->cl->fwd_index, &tid))) {
		struct task *t = (struct task *)(uintptr_t)*v;

		if (t->rem.held_remote)
			t->rem.held_remote--;
	}
}

/* An object pulled over a link (its id in arg) was pending when asked for: it is ready. */
static void pulled_ready(struct krayd *d, void *arg, struct obj *o)
{
	struct link *l = net_link_by_id(d, (uint32_t)(uintptr_t)arg);

	if (l && l->c && !l->c->closed)
		xfer_push(l, o, KRAY_PUSH_ANSWER);
	store_unref(d, o); /* the wait's hold */
}

/*
 * The other node of l wants an object this node keeps for it: a large return held here
 * (OBJ_HELD), or a ref lent inside a value (the link holds it).  A pending one (a task
 * still running, or a stub lent to this node by yet another node, which is pulled in
 * turn) is sent once it is ready.
 */
int remote_on_pull(struct link *l, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_obj_held m;
	struct obj *o;

	if (wire_dec_fixed(body, len, &m, sizeof(m)))
		return conn_fail(l->c, "malformed pull", -EBADMSG);
	o = store_get(d, &m.oid);
	if (!o || !oidmap_get(&l->c->refs, &m.oid)) {
		xfer_push_error(l, &m.oid, "the object is no longer kept on the node that made it");
	} else if (o->state == OBJ_READY) {
		xfer_push(l, o, KRAY_PUSH_ANSWER);
	} else {
		store_ref(o);
		store_wait(d, o, pulled_ready, (void *)(uintptr_t)l->id);
		remote_want(d, o);
	}
	return 0;
}

/* Objects kept on the other end of l, which is gone: run their tasks again (lineage), or
 * they are lost. */
void lineage_link_gone(struct krayd *d, struct link *l)
{
	struct kray_oid *ids = NULL;
	size_t n = 0, cap = 0;

	oidmap_for_each (&d->objs, s) {
		struct obj *o = (struct obj *)(uintptr_t)s->val;

		if (o->remote_link != l->id)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			ids = realloc(ids, cap * sizeof(*ids));
			if (!ids)
				abort();
		}
		ids[n++] = o->id;
	}
	for (size_t i = 0; i < n; i++) {
		struct obj *o = store_get(d, &ids[i]);
		struct kray_oid tid = ids[i];
		uint64_t *v;
		struct task *t;

		if (!o || o->remote_link != l->id)
			continue;
		o->remote_link = 0;
		o->pulling = false;
		if (o->stub) {
			/* Lent by that node: where the owner died, Ray's OwnerDiedError. */
			char msg[200];
			int k = snprintf(msg, sizeof(msg),
					 ids[i].node == l->node ?
						 "the owner of object %u.%u.%u.%u died: its node "
						 "%08x is gone, and the object cannot be fetched" :
						 "object %u.%u.%u.%u cannot be fetched: node %08x, "
						 "which lent it, is gone",
					 ids[i].node, ids[i].owner, ids[i].seq, ids[i].index,
					 l->node);

			store_seal_error(d, o, KRAY_WE_OBJECT_LOST, msg, (size_t)k);
			continue;
		}
		tid.index = 0;
		v = oidmap_get(&d->cl->lineage, &tid);
		if (!v) {
			static const char msg[] = "the node that alone held it died, and the task "
						  "that made it cannot be run again";

			store_seal_error(d, o, KRAY_WE_OBJECT_LOST, msg, sizeof(msg) - 1);
			continue;
		}
		t = (struct task *)(uintptr_t)*v;
		oidmap_del(&d->cl->lineage, &tid);
		t->rem.held_remote = 0;
		d->cl->rebuilt++;
		log_info("task %u.%u ('%.*s'): node %08x, which kept its result, is gone; running "
			 "it again",
			 t->id.owner, t->id.seq, t->fn->name_len, t->fn->name, t->rem.fwd_node);
		sched_enqueue(d, t, true);
	}
	free(ids);
}

void lineage_fini(struct krayd *d)
{
	oidmap_for_each (&d->cl->lineage, s)
		task_free(d, (struct task *)(uintptr_t)s->val);
	oidmap_free(&d->cl->lineage);
}
