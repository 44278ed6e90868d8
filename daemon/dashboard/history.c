// SPDX-License-Identifier: Apache-2.0
/*
 * The dashboard's history (GET /api/v1/history): a sample of krayd's counters each second
 * for the last DASH_HISTORY seconds (10 minutes), kept in a ring the dashboard allocates
 * once, so the page can chart store use and the task rate over time from its first load.
 * Sampled by the dashboard's tick hook (core/ext.h) on krayd's loop: one proto_stats() a
 * second.
 */
#include <stdlib.h>
#include <time.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/proto.h"
#include "dashboard/dashboard.h"

struct dash_sample {
	int64_t t_ms; /* realtime */
	uint64_t store_bytes, store_capacity, bytes_spilled, spilled_total, restored_total;
	uint64_t submitted, finished, failed, queued, waiting, busy;
};

struct dash_history {
	struct dash_sample s[DASH_HISTORY];
	uint64_t n; /* samples taken; the ring holds the last min(n, DASH_HISTORY) */
	int64_t next; /* CLOCK_MONOTONIC ns of the next sample */
};

struct dash_history *dash_history_new(void)
{
	return calloc(1, sizeof(struct dash_history));
}

int64_t dash_history_next(const struct dash_history *h)
{
	return h->next;
}

void dash_history_tick(struct krayd *d, struct dash_history *h, int64_t now)
{
	struct kray_wire_stats st;
	struct dash_sample *s;
	struct timespec rt;

	if (now < h->next)
		return;
	h->next = now + 1000000000;
	proto_stats(d, &st);
	clock_gettime(CLOCK_REALTIME, &rt);
	s = &h->s[h->n++ % DASH_HISTORY];
	*s = (struct dash_sample){
		.t_ms = (int64_t)rt.tv_sec * 1000 + rt.tv_nsec / 1000000,
		.store_bytes = st.store_bytes,
		.store_capacity = st.store_capacity,
		.bytes_spilled = st.bytes_spilled,
		.spilled_total = st.spilled_total,
		.restored_total = st.restored_total,
		.submitted = st.tasks_submitted,
		.finished = st.tasks_finished,
		.failed = st.tasks_failed,
		.queued = st.tasks_queued,
		.waiting = st.tasks_waiting,
		.busy = st.workers_busy,
	};
}

#define U(x) ((unsigned long long)(x))

void dash_history_render(struct krayd *d, const struct dash_history *h, struct kbuf *b)
{
	uint64_t first = h->n > DASH_HISTORY ? h->n - DASH_HISTORY : 0;

	kbuf_printf(b,
		    "{\"api\":\"v1\",\"node_id\":\"%08x\",\"interval_ms\":1000,\"columns\":["
		    "\"t_ms\",\"store_bytes\",\"store_capacity\",\"bytes_spilled\","
		    "\"spilled_total\",\"restored_total\",\"tasks_submitted\","
		    "\"tasks_finished\",\"tasks_failed\",\"tasks_queued\",\"tasks_waiting\","
		    "\"workers_busy\"],\"samples\":[",
		    d->node);
	for (uint64_t i = first; i < h->n; i++) {
		const struct dash_sample *s = &h->s[i % DASH_HISTORY];

		kbuf_printf(b, "%s[%lld,%llu,%llu,%llu,%llu,%llu,", i == first ? "" : ",",
			    (long long)s->t_ms, U(s->store_bytes), U(s->store_capacity),
			    U(s->bytes_spilled), U(s->spilled_total), U(s->restored_total));
		kbuf_printf(b, "%llu,%llu,%llu,%llu,%llu,%llu]", U(s->submitted), U(s->finished),
			    U(s->failed), U(s->queued), U(s->waiting), U(s->busy));
	}
	kbuf_put(b, "]}", 2);
}
