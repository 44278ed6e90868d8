// SPDX-License-Identifier: Apache-2.0
/*
 * The dashboard's JSON API, version 1 (docs/dashboard.md lists every field): one renderer
 * per endpoint, each reading the core's tables on krayd's loop, so what it shows is one
 * consistent moment.  The objects and the timeline are the core's own exports
 * (store_list(), timeline_render()), and so are the workers (worker_list()): the same JSON kray.util.state and kray.timeline() get.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../../common/json.h"

#include "core/krayd.h"
#include "core/conn.h"
#include "core/task.h"
#include "core/worker.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/proto.h"
#include "core/ext.h"
#include "core/timeline.h"
#include "dashboard/dashboard.h"

/* "key":"s" with s escaped (len bytes), after a comma unless first. */
static void put_str(struct kbuf *b, const char *key, const char *s, size_t len)
{
	kbuf_printf(b, ",\"%s\":\"", key);
	json_put_str(b, s, len);
	kbuf_put(b, "\"", 1);
}

#define U(x) ((unsigned long long)(x))

static void nodes(struct krayd *d, struct kbuf *b)
{
	struct kray_wire_stats st;
	struct kbuf text = { 0 };
	size_t start = 0;
	bool first = true;

	proto_stats(d, &st);
	kbuf_printf(b,
		    "{\"api\":\"v1\",\"nodes\":[{\"node_id\":\"%08x\",\"state\":\"ALIVE\",\"self\":"
		    "true,"
		    "\"num_cpus\":%llu,\"workers\":%llu,\"workers_busy\":%llu,"
		    "\"workers_blocked\":%llu,\"drivers\":%llu,",
		    d->node, U(st.num_cpus), U(st.workers), U(st.workers_busy),
		    U(st.workers_blocked), U(st.drivers));
	kbuf_printf(b,
		    "\"tasks_submitted\":%llu,\"tasks_finished\":%llu,\"tasks_failed\":%llu,"
		    "\"tasks_queued\":%llu,\"tasks_waiting\":%llu,\"objects\":%llu,",
		    U(st.tasks_submitted), U(st.tasks_finished), U(st.tasks_failed),
		    U(st.tasks_queued), U(st.tasks_waiting), U(st.objects));
	kbuf_printf(b,
		    "\"store_bytes\":%llu,\"store_capacity\":%llu,\"object_inline_bytes\":%llu,"
		    "\"objects_spilled\":%llu,\"spilled_bytes\":%llu,\"spilled_total\":%llu,"
		    "\"restored_total\":%llu,\"actors_alive\":%llu,\"actors_pending\":%llu}]",
		    U(st.store_bytes), U(st.store_capacity), U(st.object_bytes),
		    U(st.objects_spilled), U(st.bytes_spilled), U(st.spilled_total),
		    U(st.restored_total), U(st.actors_alive), U(st.actors_pending));
	/* In a cluster, the head's view of every node, as `kray status` prints it. */
	ext_describe_nodes(d, &text);
	kbuf_put(b, ",\"cluster\":[", 12);
	for (size_t i = 0; i < text.len; i++) {
		if (text.data[i] != '\n')
			continue;
		kbuf_put(b, first ? "\"" : ",\"", first ? 1 : 2);
		json_put_str(b, (const char *)text.data + start, i - start);
		kbuf_put(b, "\"", 1);
		first = false;
		start = i + 1;
	}
	kbuf_put(b, "]}", 2);
	kbuf_free(&text);
}

static void workers(struct krayd *d, struct kbuf *b)
{
	worker_list(d, b); /* the core's, the same JSON kray.util.state.list_workers() gets */
}

static void tasks(struct krayd *d, struct kbuf *b)
{
	const struct kray_wire_stats *s = &d->st;
	bool first = true;

	kbuf_printf(b,
		    "{\"api\":\"v1\",\"node_id\":\"%08x\",\"counts\":{\"submitted\":%llu,"
		    "\"finished\":%llu,\"failed\":%llu,\"retried\":%llu,\"queued\":%llu,"
		    "\"waiting\":%llu,\"handed_back\":%llu},\"functions\":[",
		    d->node, U(s->tasks_submitted), U(s->tasks_finished), U(s->tasks_failed),
		    U(s->tasks_retried), U(s->tasks_queued), U(s->tasks_waiting),
		    U(s->tasks_handed_back));
	for (const struct fnstat *f = d->fns; f; f = f->next, first = false) {
		kbuf_printf(b, "%s{\"runs\":%llu,\"mean_run_ns\":%llu", first ? "" : ",",
			    U(f->runs), U(f->avg_ns));
		put_str(b, "name", f->name, f->name_len);
		kbuf_put(b, "}", 1);
	}
	kbuf_put(b, "]}", 2);
}

static const char *const actor_states[] = {
	[A_PENDING] = "PENDING_CREATION",
	[A_STARTING] = "STARTING",
	[A_ALIVE] = "ALIVE",
	[A_DEAD] = "DEAD",
};

static void actors(struct krayd *d, struct kbuf *b)
{
	bool first = true;

	kbuf_printf(b, "{\"api\":\"v1\",\"node_id\":\"%08x\",\"actors\":[", d->node);
	for (const struct actor *a = d->actors; a; a = a->next, first = false) {
		char why[600];
		unsigned queued = 0;

		for (const struct task *t = a->qhead; t; t = t->next)
			queued++;
		kbuf_printf(b,
			    "%s{\"actor_id\":\"%08x%08x%08x%08x\",\"state\":\"%s\",\"pid\":%d,"
			    "\"num_restarts\":%u,\"calls_in_flight\":%u,\"calls_queued\":%u,"
			    "\"detached\":%s",
			    first ? "" : ",", a->id.node, a->id.owner, a->id.seq, a->id.index,
			    actor_states[a->state],
			    a->w && a->state == A_ALIVE ? (int)a->w->pid : 0, a->restarts,
			    a->inflight, queued, a->detached ? "true" : "false");
		if (a->ctor)
			put_str(b, "class_name", a->ctor->fn->name, a->ctor->fn->name_len);
		put_str(b, "name", a->name ? a->name : "", a->name ? strlen(a->name) : 0);
		put_str(b, "ray_namespace", a->ns ? a->ns : "", a->ns ? strlen(a->ns) : 0);
		if (a->state == A_DEAD) /* (whole: a->death is a pointer, not an array) */
			put_str(b, "death_cause", actor_death(a), strlen(actor_death(a)));
		if (actor_waits_for(d, a, why, sizeof(why)))
			put_str(b, "pending_reason", why, strlen(why));
		kbuf_put(b, "}", 1);
	}
	kbuf_put(b, "]}", 2);
}

static const struct {
	const char *name;
	void (*render)(struct krayd *d, struct kbuf *b);
} endpoints[] = {
	{ "nodes", nodes },   { "workers", workers },	 { "tasks", tasks },
	{ "actors", actors }, { "objects", store_list },
};

void dash_summary(struct krayd *d, struct kbuf *b)
{
	kbuf_printf(b, "{\"node_id\":\"%08x\",\"workers\":", d->node);
	workers(d, b);
	kbuf_put(b, ",\"tasks\":", 9);
	tasks(d, b);
	kbuf_put(b, ",\"actors\":", 10);
	actors(d, b);
	kbuf_put(b, "}", 1);
}

bool dash_api(struct krayd *d, const char *name, size_t len, struct kbuf *b)
{
	for (size_t i = 0; i < sizeof(endpoints) / sizeof(endpoints[0]); i++) {
		if (strlen(endpoints[i].name) == len && !memcmp(endpoints[i].name, name, len)) {
			endpoints[i].render(d, b);
			return true;
		}
	}
	return false;
}
