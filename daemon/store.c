// SPDX-License-Identifier: Apache-2.0
/*
 * The object table: every object krayd knows, pending (its task has not finished) or
 * ready (sealed: immutable from then on).  Values up to inline_max live here in krayd's
 * memory; large objects move to sealed memfds with the object store (issue 3).
 *
 * An object is freed when it is ready and unreferenced.  A pending object is never freed:
 * its task will seal it, and that is when an unreferenced result is dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "krayd.h"

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
	o = calloc(1, sizeof(*o));
	if (!o)
		abort();
	o->id = *id;
	o->state = OBJ_PENDING;
	*slot = (uint64_t)(uintptr_t)o;
	d->st.objects++;
	return o;
}

static void obj_free(struct krayd *d, struct obj *o)
{
	oidmap_del(&d->objs, &o->id);
	d->st.objects--;
	d->st.object_bytes -= o->len;
	free(o->data);
	free(o);
}

/* Wakes everything waiting for o, then drops it if nobody holds it. */
static void fire(struct krayd *d, struct obj *o)
{
	struct dep *dep = o->deps;

	o->deps = NULL;
	/* Hold o while its waiters run: one of them may drop the last reference. */
	o->refs++;
	while (dep) {
		struct dep *next = dep->next;

		if (dep->task)
			task_dep_ready(d, dep->task, o);
		else
			get_dep_ready(d, dep->get);
		free(dep);
		dep = next;
	}
	store_unref(d, o);
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
	o->state = OBJ_READY;
	d->st.object_bytes += len;
	fire(d, o);
}

void store_seal(struct krayd *d, struct obj *o, const struct wire_value *v)
{
	seal(d, o, v->type, v->err, v->scalar, v->data, v->len);
}

void store_seal_error(struct krayd *d, struct obj *o, uint8_t err, const char *msg, size_t len)
{
	seal(d, o, KRAY_WT_ERROR, err, 0, msg, len);
}

void store_ref(struct obj *o)
{
	o->refs++;
}

void store_unref(struct krayd *d, struct obj *o)
{
	if (--o->refs == 0 && o->state == OBJ_READY)
		obj_free(d, o);
}

void store_put_value(struct kbuf *b, const struct obj *o)
{
	wire_put_value(b, o->type, o->err, o->scalar, o->data, o->len);
}

void store_fini(struct krayd *d)
{
	oidmap_for_each(&d->objs, s)
	{
		struct obj *o = (struct obj *)(uintptr_t)s->val;

		while (o->deps) {
			struct dep *n = o->deps->next;

			free(o->deps);
			o->deps = n;
		}
		free(o->data);
		free(o);
	}
	oidmap_free(&d->objs);
}
