// SPDX-License-Identifier: Apache-2.0
/*
 * The hook tables of the parts outside the core (core/ext.h): each ext_*() calls the hook
 * of every table added, in order, and combines the answers as ext.h says.  With no table,
 * the answer is a single node's without BPF or /dev/kray.
 */
#include <errno.h>

#include "core/ext.h"
#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/task.h"
#include "core/actor.h"
#include "core/store.h"

int ext_add(struct krayd *d, const struct ext *e)
{
	if (d->next_ext >= EXT_MAX)
		return -ENOSPC;
	d->ext[d->next_ext++] = e;
	return 0;
}

/* Each table added that has hook h, as e. */
#define each(d, e, h)                                                        \
	for (const struct ext *const *e##_p = (d)->ext, *e;                  \
	     e##_p < (d)->ext + (d)->next_ext && ((e = *e##_p), 1); e##_p++) \
		if (e->h)

int64_t ext_next_deadline(struct krayd *d)
{
	int64_t best = -1;

	each(d, e, next_deadline)
	{
		int64_t t = e->next_deadline(d);

		if (t >= 0 && (best < 0 || t < best))
			best = t;
	}
	return best;
}

bool ext_can_pass(struct krayd *d)
{
	each(d, e, worker_pass) return true;
	return false;
}

void ext_tick(struct krayd *d, int64_t now)
{
	each(d, e, tick) e->tick(d, now);
}

void ext_before_dispatch(struct krayd *d)
{
	each(d, e, before_dispatch) e->before_dispatch(d);
}

bool ext_place(struct krayd *d, struct task *t)
{
	each(d, e, place) if (e->place(d, t)) return true;
	return false;
}

bool ext_pg_place(struct krayd *d, struct pgroup *g)
{
	each(d, e, pg_place) if (e->pg_place(d, g)) return true;
	return false;
}

void ext_pg_removed(struct krayd *d, struct pgroup *g)
{
	each(d, e, pg_removed) e->pg_removed(d, g);
}

bool ext_worker_claim(struct krayd *d, struct worker *w)
{
	each(d, e, worker_claim) if (!e->worker_claim(d, w)) return false;
	return true;
}

bool ext_worker_busy(struct krayd *d, const struct worker *w)
{
	each(d, e, worker_busy) if (e->worker_busy(d, w)) return true;
	return false;
}

bool ext_worker_pass(struct krayd *d, struct worker *w)
{
	each(d, e, worker_pass) if (e->worker_pass(d, w)) return true;
	return false;
}

void ext_worker_settle(struct krayd *d, struct worker *w, bool queued)
{
	each(d, e, worker_settle) e->worker_settle(d, w, queued);
}

bool ext_worker_retire(struct krayd *d, struct worker *w)
{
	each(d, e, worker_retire) if (!e->worker_retire(d, w)) return false;
	return true;
}

void ext_worker_sent(struct krayd *d, struct worker *w)
{
	each(d, e, worker_sent) e->worker_sent(d, w);
}

void ext_worker_unpooled(struct krayd *d, struct worker *w)
{
	each(d, e, worker_unpooled) e->worker_unpooled(d, w);
}

void ext_worker_started(struct krayd *d, struct worker *w)
{
	each(d, e, worker_started) e->worker_started(d, w);
}

bool ext_worker_gone(struct krayd *d, struct worker *w, const char *how)
{
	bool any = false;

	each(d, e, worker_gone) any |= e->worker_gone(d, w, how);
	return any;
}

bool ext_may_start(struct krayd *d)
{
	each(d, e, may_start) if (!e->may_start(d)) return false;
	return true;
}

void ext_exec_sent(struct krayd *d, struct worker *w, const struct task *t)
{
	each(d, e, exec_sent) e->exec_sent(d, w, t);
}

void ext_result(struct krayd *d, struct worker *w)
{
	each(d, e, result) e->result(d, w);
}

void ext_task_done(struct krayd *d, struct task *t)
{
	each(d, e, task_done) e->task_done(d, t);
}

void ext_task_cancel(struct krayd *d, const struct kray_oid *tid, uint32_t flags)
{
	each(d, e, task_cancel) e->task_cancel(d, tid, flags);
}

void ext_obj_wanted(struct krayd *d, struct obj *o)
{
	each(d, e, obj_wanted) e->obj_wanted(d, o);
}

void ext_obj_range_wanted(struct krayd *d, struct obj *o, uint64_t off, uint64_t len)
{
	each(d, e, obj_range_wanted) e->obj_range_wanted(d, o, off, len);
}

void ext_obj_settled(struct krayd *d, struct obj *o)
{
	each(d, e, obj_settled) e->obj_settled(d, o);
}

void ext_obj_published(struct krayd *d, struct obj *o)
{
	each(d, e, obj_published) e->obj_published(d, o);
}

int ext_obj_withdraw(struct krayd *d, struct obj *o, bool if_unused)
{
	each(d, e, obj_withdraw)
	{
		int r = e->obj_withdraw(d, o, if_unused);

		if (r)
			return r;
	}
	return 0;
}

void ext_actor_changed(struct krayd *d, struct actor *a, bool alive)
{
	each(d, e, actor_changed) e->actor_changed(d, a, alive);
}

int ext_actor_place(struct conn *c, const struct wire_actor_create *m, const struct wire_place *pl,
		    const struct wire_resource *res, int nres, struct kray_oid *ret_id)
{
	each(c->d, e, actor_place)
	{
		int r = e->actor_place(c, m, res, nres, pl, ret_id);

		if (r != -ENOENT)
			return r;
	}
	return -ENOENT;
}

bool ext_actor_known(struct krayd *d, const struct kray_oid *id)
{
	each(d, e, actor_known) if (e->actor_known(d, id)) return true;
	return false;
}

void ext_actor_released(struct krayd *d, const struct kray_oid *id)
{
	each(d, e, actor_released) e->actor_released(d, id);
}

int ext_actor_kill(struct krayd *d, const struct kray_oid *id, bool no_restart)
{
	each(d, e, actor_kill)
	{
		int r = e->actor_kill(d, id, no_restart);

		if (r != -ENOENT)
			return r;
	}
	return -ENOENT;
}

bool ext_actor_lookup(struct conn *c, uint64_t req, const char *name, size_t len, const char *ns,
		      size_t ns_len)
{
	each(c->d, e, actor_lookup) if (e->actor_lookup(c, req, name, len, ns, ns_len)) return true;
	return false;
}

bool ext_actor_claim(struct conn *c, uint64_t req, const struct wire_actor_create *m,
		     const uint8_t *body, uint32_t len)
{
	each(c->d, e, actor_claim) if (e->actor_claim(c, req, m, body, len)) return true;
	return false;
}

void ext_driver_changed(struct conn *c, bool alive)
{
	each(c->d, e, driver_changed) e->driver_changed(c, alive);
}

void ext_conn_gone(struct conn *c)
{
	each(c->d, e, conn_gone) e->conn_gone(c);
}

void ext_stats(struct krayd *d, struct kray_wire_stats *st)
{
	each(d, e, stats) e->stats(d, st);
}

void ext_describe_nodes(struct krayd *d, struct kbuf *b)
{
	each(d, e, describe_nodes) e->describe_nodes(d, b);
}

void ext_render_metrics(struct krayd *d, struct kbuf *b)
{
	each(d, e, render_metrics) e->render_metrics(d, b);
}

void ext_node_summary(struct krayd *d, struct kbuf *b)
{
	each(d, e, node_summary)
	{
		e->node_summary(d, b);
		return;
	}
	kbuf_put(b, "{}", 2);
}

int ext_gather(struct conn *c, uint32_t what, ext_gather_fn done)
{
	each(c->d, e, gather)
	{
		int r = e->gather(c, what, done);

		if (r != -ENOENT)
			return r;
	}
	return -ENOENT;
}
