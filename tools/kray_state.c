// SPDX-License-Identifier: Apache-2.0
/*
 * The CLI's machine-readable views of a krayd, for scripts and other tools:
 * `kray timeline` (Chrome trace JSON of the last tasks; krayd renders it, docs/timeline.md)
 * and `kray status --json` (counters, nodes and actors, built here from libkray's structs;
 * docs/state.md).
 */
#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kray/kray.h>

#include "kray_state.h"
#include "../common/json.h"

static kray *connect_to(const char *sock)
{
	struct kray_config cfg = { .address = sock };
	kray *k;

	if (kray_init(&k, &cfg)) {
		fprintf(stderr, "kray: %s\n", kray_init_errmsg());
		return NULL;
	}
	return k;
}

int kray_timeline_main(const char *sock, const char *file)
{
	bool to_stdout = !file || !strcmp(file, "-");
	char *json = NULL;
	FILE *f = stdout;
	int ret = 1;
	kray *k = connect_to(sock);

	if (!k)
		return 1;
	if (kray_timeline(k, &json)) {
		fprintf(stderr, "kray: timeline: %s\n", kray_errmsg(k));
		goto out_shutdown;
	}
	if (!to_stdout && !(f = fopen(file, "we"))) {
		fprintf(stderr, "kray: %s: %s\n", file, strerror(errno));
		goto out_free;
	}
	fputs(json, f);
	if (to_stdout ? fflush(f) : fclose(f)) {
		fprintf(stderr, "kray: %s: %s\n", to_stdout ? "stdout" : file, strerror(errno));
		goto out_free;
	}
	if (!to_stdout)
		fprintf(stderr,
			"kray: timeline written to %s (open it in chrome://tracing or "
			"https://ui.perfetto.dev)\n",
			file);
	ret = 0;
out_free:
	free(json);
out_shutdown:
	kray_shutdown(k);
	return ret;
}

/* kray_stats' counters (all uint64_t), in their order, as `kray status --json` names them. */
#define F(f)                                       \
	{                                          \
#f, offsetof(struct kray_stats, f) \
	}
static const struct {
	const char *name;
	size_t off;
} stats_fields[] = {
	F(drivers),	      F(workers),	  F(workers_busy),    F(workers_blocked),
	F(workers_started),   F(workers_died),	  F(tasks_submitted), F(tasks_finished),
	F(tasks_failed),      F(tasks_retried),	  F(tasks_queued),    F(tasks_waiting),
	F(tasks_handed_back), F(objects),	  F(object_bytes),    F(store_capacity),
	F(store_bytes),	      F(objects_pinned),  F(objects_spilled), F(bytes_spilled),
	F(spilled_total),     F(restored_total),  F(evicted_total),   F(pool_bytes),
	F(actors_alive),      F(actors_pending),  F(num_cpus),	      F(fast_tasks),
	F(fast_bounced),      F(frames_rejected),
};
#undef F

/* kray_guard_stats' counters, in their order. */
static const char *const guard_fields[] = {
	"jobs",		 "actors_dead",	  "connections",    "buffer_bytes", "clients_refused",
	"closed_slow",	 "closed_output", "closed_buffers", "closed_nomem", "accept_pauses",
	"links_refused", "nest_stalled",  "workers_over",   "nest_failed",  "tasks_timed_out",
	"jobs_ended",
};
_Static_assert(sizeof(guard_fields) / sizeof(guard_fields[0]) ==
		       sizeof(struct kray_guard_stats) / sizeof(uint64_t),
	       "a name per guard counter");

static void put(struct kbuf *b, const char *s)
{
	kbuf_put(b, s, strlen(s));
}

/* ,"key":"s" (s escaped) */
static void put_str(struct kbuf *b, const char *key, const char *s)
{
	kbuf_printf(b, ",\"%s\":\"", key);
	json_put_str(b, s, strlen(s));
	put(b, "\"");
}

static void put_stats(struct kbuf *b, const struct kray_stats *st)
{
	put(b, "\"stats\":{");
	for (size_t i = 0; i < sizeof(stats_fields) / sizeof(stats_fields[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)st + stats_fields[i].off, sizeof(v));
		kbuf_printf(b, "\"%s\":%llu,", stats_fields[i].name, (unsigned long long)v);
	}
	kbuf_printf(b, "\"store_huge\":%u}", st->store_huge);
}

static void put_guards(struct kbuf *b, const struct kray_guard_stats *g)
{
	put(b, ",\"guards\":{");
	for (size_t i = 0; i < sizeof(guard_fields) / sizeof(guard_fields[0]); i++) {
		uint64_t v;

		memcpy(&v, (const char *)g + i * sizeof(v), sizeof(v));
		kbuf_printf(b, "%s\"%s\":%llu", i ? "," : "", guard_fields[i],
			    (unsigned long long)v);
	}
	put(b, "}");
}

static void put_nodes(struct kbuf *b, const struct kray_node_info *n, size_t count)
{
	put(b, ",\"nodes\":[");
	for (size_t i = 0; i < count; i++, n++) {
		kbuf_printf(b,
			    "%s{\"node_id\":\"%08x\",\"state\":\"%s\",\"is_head_node\":%s,"
			    "\"self\":%s,\"port\":%u,\"num_cpus\":%u,\"workers\":%u,"
			    "\"workers_busy\":%u,\"tasks_queued\":%llu,\"tasks_finished\":%llu,"
			    "\"store_mib\":%llu",
			    i ? "," : "", n->node, n->alive ? "ALIVE" : "DEAD",
			    n->head ? "true" : "false", n->self ? "true" : "false", n->port,
			    n->num_cpus, n->workers, n->workers_busy,
			    (unsigned long long)n->tasks_queued,
			    (unsigned long long)n->tasks_finished,
			    (unsigned long long)n->store_mib);
		put_str(b, "node_ip", n->address);
		put_str(b, "resources", n->resources);
		put(b, "}");
	}
	put(b, "]");
}

static const char *actor_state(enum kray_actor_state s)
{
	switch (s) {
	case KRAY_ACTOR_PENDING:
		return "PENDING_CREATION";
	case KRAY_ACTOR_STARTING:
		return "PENDING_CREATION"; /* its worker starts */
	case KRAY_ACTOR_ALIVE:
		return "ALIVE";
	case KRAY_ACTOR_DEAD:
		return "DEAD";
	}
	return "UNKNOWN";
}

static void put_actors(struct kbuf *b, const struct kray_actor_info *a, size_t count)
{
	put(b, ",\"actors\":[");
	for (size_t i = 0; i < count; i++, a++) {
		kbuf_printf(b,
			    "%s{\"actor_id\":\"%08x%08x%08x%08x\",\"state\":\"%s\",\"pid\":%d,"
			    "\"calls_in_flight\":%u,\"num_restarts\":%u",
			    i ? "," : "", a->id.node, a->id.owner, a->id.seq, a->id.index,
			    actor_state(a->state), a->pid, a->calls_in_flight, a->restarts);
		put_str(b, "class_name", a->class_name);
		put_str(b, "name", a->name);
		put_str(b, "ray_namespace", a->ns);
		put_str(b, "detail", a->detail);
		put(b, "}");
	}
	put(b, "]");
}

int kray_status_json_main(const char *sock)
{
	struct kray_node_info *nodes = NULL;
	struct kray_actor_info *actors = NULL;
	size_t nn = 0, na = 0;
	struct kray_stats st;
	struct kray_guard_stats g;
	struct kbuf b = { 0 };
	int ret = 1;
	kray *k = connect_to(sock);

	if (!k)
		return 1;
	if (kray_status(k, &st) || kray_guard_status(k, &g) || kray_list_nodes(k, &nodes, &nn) ||
	    kray_list_actors(k, &actors, &na)) {
		fprintf(stderr, "kray: %s\n", kray_errmsg(k));
		goto out;
	}
	st.drivers -= st.drivers > 0; /* not this command's own connection, as `kray status` */
	kbuf_printf(&b, "{\"node_id\":\"%08llx\"", (unsigned long long)st.node);
	put_str(&b, "socket", sock);
	put(&b, ",");
	put_stats(&b, &st);
	put_guards(&b, &g);
	put_nodes(&b, nodes, nn);
	put_actors(&b, actors, na);
	put(&b, "}\n");
	if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout)) {
		fprintf(stderr, "kray: stdout: %s\n", strerror(errno));
		goto out;
	}
	ret = 0;
out:
	kbuf_free(&b);
	free(nodes);
	free(actors);
	kray_shutdown(k);
	return ret;
}
