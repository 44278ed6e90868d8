// SPDX-License-Identifier: Apache-2.0
/*
 * The object table as JSON, for `kray.util.state.list_objects()` and the dashboard
 * (KRAY_MSG_LIST_OBJECTS, docs/state.md): the largest objects first, at most
 * STORE_LIST_MAX of them, with what Ray's state API shows of an object where krayd knows
 * it (id, size, whether its task finished) and what kray adds (where its bytes are, how
 * many references and views hold it).  On request only: it walks the whole table.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/krayd.h"
#include "core/store.h"

#define STORE_LIST_MAX 10000

static uint64_t obj_size(const struct obj *o)
{
	return o->type == KRAY_WT_FD ? o->size : o->len;
}

static int by_size_desc(const void *a, const void *b)
{
	uint64_t x = obj_size(*(struct obj *const *)a), y = obj_size(*(struct obj *const *)b);

	return x < y ? 1 : x > y ? -1 : 0;
}

static const char *where(const struct obj *o)
{
	if (o->state == OBJ_PENDING)
		return "NONE";
	if (o->type == KRAY_WT_FD)
		return o->spilled ? "SPILLED" : "SHARED_MEMORY";
	return "INLINE";
}

static void put_obj(struct kbuf *b, const struct obj *o, bool first)
{
	char line[512];
	const struct kray_oid *id = &o->id;
	int n = snprintf(
		line, sizeof(line),
		"%s{\"object_id\":\"%08x%08x%08x%08x\",\"task_id\":\"%08x%08x%08x\","
		"\"object_size\":%llu,\"task_status\":\"%s\",\"type\":\"%s\",\"location\":\"%s\","
		"\"refs\":%u,\"pins\":%u,\"error\":%s}",
		first ? "" : ",", id->node, id->owner, id->seq, id->index, id->node, id->owner,
		id->seq, (unsigned long long)obj_size(o),
		o->state == OBJ_PENDING ? "PENDING" : "FINISHED",
		id->index == KRAY_OID_PUT ? "PUT" :
		o->type == KRAY_WT_ACTOR  ? "ACTOR_HANDLE" :
					    "TASK_RETURN",
		where(o), o->refs, o->pins,
		o->state == OBJ_READY && o->type == KRAY_WT_ERROR ? "true" : "false");

	kbuf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

void store_list(struct krayd *d, struct kbuf *b)
{
	struct obj **all = malloc((d->objs.n ? d->objs.n : 1) * sizeof(*all));
	size_t n = 0, shown;
	char tail[128];
	int len;

	kbuf_put(b, "{\"objects\":[", 12);
	if (all) {
		oidmap_for_each (&d->objs, s) {
			if (n < d->objs.n)
				all[n++] = (struct obj *)(uintptr_t)s->val;
		}
		qsort(all, n, sizeof(*all), by_size_desc);
	}
	shown = n < STORE_LIST_MAX ? n : STORE_LIST_MAX;
	for (size_t i = 0; i < shown; i++)
		put_obj(b, all[i], !i);
	free(all);
	len = snprintf(tail, sizeof(tail), "],\"total\":%zu,\"shown\":%zu}\n", d->objs.n, shown);
	kbuf_put(b, tail, (size_t)len);
}
