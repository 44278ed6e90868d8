// SPDX-License-Identifier: Apache-2.0
/*
 * The object table: every object krayd knows, pending (its task has not finished) or
 * ready (sealed: immutable from then on).  Values up to inline_max live here in krayd's
 * memory; large objects move to sealed memfds with the object store (issue 3).
 *
 * An object is freed when it is ready and unreferenced.  A pending object is never freed:
 * its task will seal it, and that is when an unreferenced result is dropped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/store.h"

struct obj *store_get(struct krayd *d, const struct kray_oid *id)
{
	uint64_t *v = oidmap_get(&d->objs, id);

	return v ? (struct obj *)(uintptr_t)*v : NULL;
}

struct obj *store_create(struct krayd *d, const struct kray_oid *id)
{
	struct obj *o;
	bool fresh;
	uint64_t *slot = oidmap_upsert(&d->objs, id, &fresh);

	if (!fresh)
		return NULL;
	o = freelist_get(&d->obj_fl, sizeof(*o));
	if (!o)
		abort();
	o->id = *id;
	o->state = OBJ_PENDING;
	o->fd = -1;
	o->mem = -1;
	*slot = (uint64_t)(uintptr_t)o;
	d->st.objects++;
	return o;
}

static void obj_free(struct krayd *d, struct obj *o)
{
	if (o->remote_link)
		ext_obj_settled(d, o); /* its copy elsewhere goes too */
	/* Nested refs go with their container. */
	for (uint16_t i = 0; i < o->ncontained; i++) {
		struct obj *in = store_get(d, &o->contained[i]);

		if (in)
			store_unref(d, in);
	}
	free(o->contained);
	oidmap_del(&d->objs, &o->id);
	store_drop_large(d, o);
	d->st.objects--;
	d->st.evicted_total++;
	if (o->id.index == KRAY_OID_ACTOR)
		d->handle_gone(d, &o->id); /* the last handle went */
	d->st.object_bytes -= o->len;
	free(o->data);
	freelist_put(&d->obj_fl, o);
}

/* Wakes everything waiting for o, then drops it if nobody holds it. */
void store_fire(struct krayd *d, struct obj *o)
{
	struct dep *dep = o->deps;

	o->deps = NULL;
	/* Hold o while its waiters run: one of them may drop the last reference. */
	o->refs++;
	while (dep) {
		struct dep *next = dep->next;

		dep->ready(d, dep->arg, o);
		freelist_put(&d->dep_fl, dep);
		dep = next;
	}
	store_unref(d, o);
}

/* A lazy reader of pending id (lazy memfd lz) waits for [off, off + len), which has not come:
 * the node that sends it is asked for that first (the cluster's obj_range_wanted hook). */
static void lazy_ask(struct krayd *d, const struct kray_oid *id, const struct lazy *lz,
		     uint64_t off, uint64_t len)
{
	struct obj *o = store_get(d, id);

	if (o && o->lazy == lz && o->state == OBJ_PENDING)
		ext_obj_range_wanted(d, o, off, len);
}

void store_io_drain(struct krayd *d)
{
	struct sio_job *j = store_io_done(d);

	store_mem_lazy_drain(d); /* lazy objects made whole, or lost */
	store_lazy_net_asks(d, lazy_ask); /* ranges lazy readers wait for, asked for first */
	while (j) {
		struct sio_job *next = j->next;

		store_io_apply(d, j);
		j = next;
	}
	/* Waking a get may start another restore, which may queue more: until none is left. */
	while (d->io_orphans || d->nio_fire) {
		while (d->io_orphans) {
			struct dep *dep = d->io_orphans;

			d->io_orphans = dep->next;
			dep->ready(d, dep->arg, NULL); /* its object went: a get says "not held" */
			freelist_put(&d->dep_fl, dep);
		}
		while (d->nio_fire) {
			struct obj *o = d->io_fire[--d->nio_fire];

			store_fire(d, o);
			store_unref(d, o); /* the reference fire_later() took */
		}
	}
}

void store_wait(struct krayd *d, struct obj *o,
		void (*ready)(struct krayd *d, void *arg, struct obj *o), void *arg)
{
	struct dep *dep = freelist_get(&d->dep_fl, sizeof(*dep));

	if (!dep)
		abort();
	dep->ready = ready;
	dep->arg = arg;
	dep->next = o->deps;
	o->deps = dep;
}

unsigned store_unwait(struct krayd *d, struct obj *o,
		      void (*ready)(struct krayd *d, void *arg, struct obj *o), void *arg)
{
	unsigned n = 0;

	for (struct dep **pp = &o->deps; *pp;) {
		struct dep *dep = *pp;

		if (dep->ready == ready && dep->arg == arg) {
			*pp = dep->next;
			freelist_put(&d->dep_fl, dep);
			n++;
		} else {
			pp = &dep->next;
		}
	}
	return n;
}

static void contain(struct krayd *d, struct obj *o, const struct kray_oid *refs, uint16_t n)
{
	if (!n || o->ncontained)
		return;
	o->contained = malloc(n * sizeof(*o->contained));
	if (!o->contained)
		abort();
	memcpy(o->contained, refs, n * sizeof(*o->contained));
	o->ncontained = n;
	for (uint16_t i = 0; i < n; i++) {
		struct obj *in = store_get(d, &o->contained[i]);

		if (in)
			store_ref(in);
		else
			o->contained[i] = (struct kray_oid){ 0 }; /* checked by the caller */
	}
}

static void seal(struct krayd *d, struct obj *o, uint8_t type, uint8_t err, uint64_t scalar,
		 const void *data, size_t len)
{
	if (o->state == OBJ_READY)
		return; /* sealed objects are immutable: a late duplicate result is dropped */
	o->type = type;
	o->err = err;
	o->scalar = scalar;
	o->len = (uint32_t)len;
	if (len) {
		o->data = malloc(len);
		if (!o->data)
			abort();
		memcpy(o->data, data, len);
	}
	store_lazy_sealed(d, o); /* (readers that map it lazily while it came) */
	o->state = OBJ_READY;
	d->st.object_bytes += len;
	store_fire(d, o);
}

void store_contain(struct krayd *d, struct obj *o, const struct kray_oid *refs, uint16_t n)
{
	if (o->state != OBJ_READY)
		contain(d, o, refs, n);
}

void store_seal(struct krayd *d, struct obj *o, const struct wire_value *v)
{
	if (o->state != OBJ_READY)
		contain(d, o, v->refs, v->nrefs);
	seal(d, o, v->type, v->err, v->scalar, v->data, v->len);
}

bool store_holds_refs(struct conn *c, const struct wire_value *v)
{
	for (uint16_t i = 0; i < v->nrefs; i++) {
		struct kray_oid id;

		memcpy(&id, &v->refs[i], sizeof(id));
		if (!oidmap_get(&c->refs, &id))
			return false;
	}
	return true;
}

void store_seal_error(struct krayd *d, struct obj *o, uint8_t err, const char *msg, size_t len)
{
	seal(d, o, KRAY_WT_ERROR, err, 0, msg, len);
}

void store_ref(struct obj *o)
{
	o->refs++;
}

/* Frees o once nothing references it and nobody has it mapped. */
void store_unref(struct krayd *d, struct obj *o)
{
	if (--o->refs == 0 && !o->pins && (o->state == OBJ_READY || o->stub))
		obj_free(d, o);
}

void store_pin(struct krayd *d, struct obj *o)
{
	if (o->io == IO_SPILL)
		store_keep(d, o); /* it is in use: its spill is given up */
	if (o->pins++ == 0)
		d->st.objects_pinned++;
}

void store_unpin(struct krayd *d, struct obj *o)
{
	if (!o->pins || --o->pins)
		return;
	d->st.objects_pinned--;
	/* Nobody maps its lazy memfd any more: promoted when whole, else its room goes back. */
	store_lazy_unmapped_all(d, o);
	if (!o->refs && o->state == OBJ_READY)
		obj_free(d, o);
}

void store_send_value(struct conn *c, struct obj *o)
{
	struct krayd *d = c->d;
	bool fresh;
	int r = 0;

	/* Whoever gets an object borrows the refs it contains. */
	for (uint16_t i = 0; i < o->ncontained; i++) {
		struct obj *in = store_get(d, &o->contained[i]);

		if (in)
			store_conn_ref(c, in);
	}
	if (o->type == KRAY_WT_FD && o->spilled && o->io_err) {
		r = o->io_err; /* its restore failed (and said why in the log): told once */
		o->io_err = 0;
	} else if (o->lazy && c->lazy && c->lazy_get && store_lazy_takes(o->lazy, c) &&
		   ((o->type == KRAY_WT_FD && o->spilled) || o->state != OBJ_READY)) {
		/* Mapped at once, and read from disk as it is touched (store_lazy.c), or filled
		 * as it comes from another node (store_lazy_net.c). */
		r = conn_frame_fd(c, store_lazy_fd(o->lazy));
		if (r && o->state != OBJ_READY) {
			wire_put_errorf(&c->out, KRAY_WE_INTERNAL,
					"object %u.%u.%u.%u cannot be mapped: %s", o->id.node,
					o->id.owner, o->id.seq, o->id.index, strerror(-r));
			return;
		}
		if (!r) {
			wire_put_value_refs(&c->out, KRAY_WT_FD, KRAY_WV_LAZY,
					    store_lazy_size(o->lazy), &o->id, sizeof(o->id),
					    o->contained, o->ncontained);
			store_pin(d, o);
			(*oidmap_upsert(&c->pins, &o->id, &fresh))++;
			return;
		}
	} else if (o->type == KRAY_WT_FD && (o->spilled || o->io == IO_SPILL)) {
		/* Normally restored already (store_want()); a get of several that had one
		 * spilled again to make room for another restores it here, on the loop. */
		r = store_restore(d, o);
	}
	if (o->type != KRAY_WT_FD) { /* (lost while it was restored: an error now) */
		wire_put_value_refs(&c->out, o->type, o->err, o->scalar, o->data, o->len,
				    o->contained, o->ncontained);
		return;
	}
	if (!r)
		r = conn_frame_fd(c, o->fd);
	if (r) {
		wire_put_errorf(&c->out, r == -ENOSPC ? KRAY_WE_STORE_FULL : KRAY_WE_INTERNAL,
				"object %u.%u.%u.%u (%llu bytes) cannot be mapped: %s", o->id.node,
				o->id.owner, o->id.seq, o->id.index, (unsigned long long)o->size,
				r == -ENOSPC ? "the object store is full and nothing more can be "
					       "spilled (every object is mapped, or the spill "
					       "directory is full)" :
				r == -E2BIG  ? "more than 253 large objects in one message" :
					       strerror(-r));
		return;
	}
	wire_put_value_refs(&c->out, KRAY_WT_FD, 0, o->size, &o->id, sizeof(o->id), o->contained,
			    o->ncontained);
	store_pin(d, o);
	(*oidmap_upsert(&c->pins, &o->id, &fresh))++;
}

void store_fini(struct krayd *d)
{
	oidmap_for_each (&d->objs, s) {
		struct obj *o = (struct obj *)(uintptr_t)s->val;

		while (o->deps) {
			struct dep *n = o->deps->next;

			free(o->deps);
			o->deps = n;
		}
		store_drop_large(d, o);
		free(o->contained);
		free(o->data);
		free(o);
	}
	oidmap_free(&d->objs);
	freelist_drain(&d->obj_fl);
	freelist_drain(&d->dep_fl);
}

void store_conn_ref(struct conn *c, struct obj *o)
{
	bool fresh;

	(*oidmap_upsert(&c->refs, &o->id, &fresh))++;
	store_ref(o);
}

void store_conn_unref(struct conn *c, const struct kray_oid *id)
{
	uint64_t *n = oidmap_get(&c->refs, id);
	struct obj *o;

	if (!n)
		return; /* not held: a double release is ignored */
	if (--*n == 0)
		oidmap_del(&c->refs, id);
	o = store_get(c->d, id);
	if (o)
		store_unref(c->d, o);
}
