// SPDX-License-Identifier: Apache-2.0
/*
 * This node's worker processes and drivers as JSON, for `kray.util.state.list_workers()`
 * (KRAY_MSG_LIST_WORKERS, docs/state.md) and the dashboard's /api/v1/workers
 * (docs/dashboard.md): one renderer, so both show the same fields.  On request only.
 */
#include <string.h>

#include "../../common/json.h"

#include "core/krayd.h"
#include "core/conn.h"
#include "core/task.h"
#include "core/worker.h"
#include "core/actor.h"

#define U(x) ((unsigned long long)(x))

static const char *worker_state(const struct worker *w)
{
	if (w->state == W_STARTING)
		return "STARTING";
	if (w->state == W_DEAD)
		return "DEAD";
	if (w->blocked)
		return "BLOCKED";
	return w->inflight ? "BUSY" : "IDLE";
}

void worker_list(struct krayd *d, struct kbuf *b)
{
	bool first = true;

	kbuf_printf(b, "{\"api\":\"v1\",\"node_id\":\"%08x\",\"workers\":[", d->node);
	for (const struct worker *w = d->workers; w; w = w->next, first = false) {
		/* client_id: the id its connection got, the second half of the worker id
		 * get_runtime_context().get_worker_id() gives inside it (0 while starting). */
		kbuf_printf(b,
			    "%s{\"worker_id\":%u,\"client_id\":%u,\"pid\":%d,\"state\":\"%s\","
			    "\"tasks_in_flight\":%u,\"tasks_done\":%llu,\"run_queue_wait_ns\":%llu,"
			    "\"on_cpu_ns\":%llu",
			    first ? "" : ",", w->id, w->conn ? w->conn->id : 0, (int)w->pid,
			    worker_state(w), w->inflight, U(w->tasks_done), U(w->bpf_wait),
			    U(w->bpf_run));
		if (w->head) {
			kbuf_put(b, ",\"task\":\"", 9);
			json_put_str(b, w->head->fn->name, w->head->fn->name_len);
			kbuf_put(b, "\"", 1);
		}
		if (w->actor)
			kbuf_printf(b, ",\"actor_id\":\"%08x%08x%08x%08x\"", w->actor->id.node,
				    w->actor->id.owner, w->actor->id.seq, w->actor->id.index);
		kbuf_put(b, "}", 1);
	}
	/* The drivers connected now: client id (= its job id), pid, when it connected. */
	kbuf_put(b, "],\"drivers\":[", 13);
	first = true;
	for (const struct conn *c = d->conns; c; c = c->next) {
		if (c->role != ROLE_DRIVER || c->closed)
			continue;
		kbuf_printf(b,
			    "%s{\"client_id\":%u,\"job_id\":\"%08x\",\"pid\":%u,"
			    "\"start_time_ms\":%llu}",
			    first ? "" : ",", c->id, c->job, c->pid, U(c->start_ms));
		first = false;
	}
	kbuf_put(b, "]}", 2);
}
