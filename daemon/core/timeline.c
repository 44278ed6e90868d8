// SPDX-License-Identifier: Apache-2.0
/*
 * The task timeline: a ring of the last N tasks this node's workers ran (N is
 * `timeline-events`, 10,000 by default, 0 turns it off), kept to answer `kray timeline`
 * and kray.timeline() with Chrome trace JSON.
 *
 * One record per task, written when its result arrives, rather than one per event
 * (submit, dispatch, end): the task already carries its submit time, the dispatch time is
 * stamped when the EXEC is queued, and the worker measures the run itself (exec_ns in
 * RESULT), so one 88-byte store at the end holds the whole life and the hot path pays one
 * clock read per dispatch and one per result.  The function name is the interned fnstat,
 * which lives as long as krayd, so a record copies no string.  Tasks still queued or
 * running are not in it, and neither are calls the BPF fast path steers past krayd.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/json.h"

#include "core/krayd.h"
#include "core/conn.h"
#include "core/task.h"
#include "core/actor.h"
#include "core/timeline.h"

struct tl_rec {
	struct kray_oid id;
	struct kray_oid actor; /* all zero: not an actor call */
	const struct fnstat *fn;
	int64_t submit_ns, sent_ns, end_ns; /* CLOCK_MONOTONIC */
	uint64_t run_ns;
	uint32_t worker, job;
	bool failed;
};

struct timeline {
	struct tl_rec *recs;
	uint32_t cap;
	uint64_t n; /* records written since start; the ring holds the last min(n, cap) */
};

int timeline_init(struct krayd *d)
{
	struct timeline *tl;

	if (d->cfg.timeline_events <= 0)
		return 0;
	tl = calloc(1, sizeof(*tl));
	if (!tl)
		return -ENOMEM;
	tl->recs = calloc((size_t)d->cfg.timeline_events, sizeof(*tl->recs));
	if (!tl->recs) {
		free(tl);
		return -ENOMEM;
	}
	tl->cap = (uint32_t)d->cfg.timeline_events;
	d->tl = tl;
	return 0;
}

void timeline_fini(struct krayd *d)
{
	if (!d->tl)
		return;
	free(d->tl->recs);
	free(d->tl);
	d->tl = NULL;
}

void timeline_note(struct krayd *d, const struct task *t, uint32_t wid, uint64_t run_ns,
		   bool failed)
{
	struct timeline *tl = d->tl;
	struct tl_rec *r;

	if (!tl)
		return;
	r = &tl->recs[tl->n++ % tl->cap];
	r->id = t->id;
	if (t->actor)
		r->actor = t->actor->id;
	else
		memset(&r->actor, 0, sizeof(r->actor));
	r->fn = t->fn;
	r->end_ns = now_ns();
	r->sent_ns = t->sent_ns ? t->sent_ns : r->end_ns - (int64_t)run_ns;
	/* An actor's constructor is made by ACTOR_CREATE, not submitted: it has no submit
	 * time of its own. */
	r->submit_ns = t->submit_ns ? t->submit_ns : r->sent_ns;
	r->run_ns = run_ns;
	r->worker = wid;
	r->job = t->job;
	r->failed = failed;
}

/* Microseconds since the epoch of monotonic time m (off: realtime - monotonic, in ns), as
 * Chrome's "ts" wants, with three decimals. */
static void put_us(struct kbuf *b, const char *key, int64_t m, int64_t off)
{
	int64_t ns = m + off;

	kbuf_printf(b, "\"%s\":%lld.%03lld", key, (long long)(ns / 1000), (long long)(ns % 1000));
}

static void render_rec(struct kbuf *b, uint32_t node, const struct tl_rec *r, int64_t off)
{
	/* The worker measured the run; it started no earlier than it was sent. */
	int64_t start = r->end_ns - (int64_t)r->run_ns;

	if (start < r->sent_ns || (int64_t)r->run_ns < 0)
		start = r->sent_ns;
	kbuf_put(b, "{\"name\":\"", 9);
	json_put_str(b, r->fn->name, r->fn->name_len);
	kbuf_printf(b, "\",\"cat\":\"%s\",\"ph\":\"X\",", r->actor.node ? "actor_task" : "task");
	put_us(b, "ts", start, off);
	kbuf_printf(b, ",\"dur\":%lld.%03lld,\"pid\":%u,\"tid\":%u,\"args\":{",
		    (long long)((r->end_ns - start) / 1000),
		    (long long)((r->end_ns - start) % 1000), node, r->worker);
	kbuf_printf(b, "\"task_id\":\"%08x%08x%08x\",\"job_id\":\"%08x\",\"state\":\"%s\",",
		    r->id.node, r->id.owner, r->id.seq, r->job, r->failed ? "FAILED" : "FINISHED");
	if (r->actor.node)
		kbuf_printf(b, "\"actor_id\":\"%08x%08x%08x%08x\",", r->actor.node, r->actor.owner,
			    r->actor.seq, r->actor.index);
	put_us(b, "submit_ts", r->submit_ns, off);
	kbuf_put(b, ",", 1);
	put_us(b, "dispatch_ts", r->sent_ns, off);
	kbuf_put(b, ",", 1);
	put_us(b, "end_ts", r->end_ns, off);
	kbuf_printf(b, ",\"queue_us\":%.3f}}", (double)(r->sent_ns - r->submit_ns) / 1e3);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* "M" events: the process (node) and thread (worker) names Chrome and Perfetto show.  The
 * workers are the distinct ids in the ring (sorted: this runs only on a request). */
static void render_names(struct kbuf *b, const struct timeline *tl, uint64_t first, uint32_t node)
{
	size_t n = (size_t)(tl->n - first), k = 0;
	uint32_t *ids = malloc(n ? n * sizeof(*ids) : 1);

	kbuf_printf(b,
		    "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,"
		    "\"args\":{\"name\":\"node %08x\"}}",
		    node, node);
	if (!ids)
		return; /* the names are a nicety: the events stand without them */
	for (uint64_t i = first; i < tl->n; i++)
		ids[k++] = tl->recs[i % tl->cap].worker;
	qsort(ids, n, sizeof(*ids), cmp_u32);
	for (size_t i = 0; i < n; i++)
		if (!i || ids[i] != ids[i - 1])
			kbuf_printf(b,
				    ",{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,"
				    "\"tid\":%u,\"args\":{\"name\":\"worker %u\"}}",
				    node, ids[i], ids[i]);
	free(ids);
}

void timeline_render(struct krayd *d, struct kbuf *b)
{
	const struct timeline *tl = d->tl;
	struct timespec rt, mono;
	uint64_t first;
	int64_t off;

	kbuf_put(b, "{\"traceEvents\":[", 16);
	if (tl) {
		clock_gettime(CLOCK_REALTIME, &rt);
		clock_gettime(CLOCK_MONOTONIC, &mono);
		off = ((int64_t)rt.tv_sec - mono.tv_sec) * 1000000000 + (rt.tv_nsec - mono.tv_nsec);
		first = tl->n > tl->cap ? tl->n - tl->cap : 0;
		render_names(b, tl, first, d->node);
		for (uint64_t i = first; i < tl->n; i++) {
			kbuf_put(b, ",", 1);
			render_rec(b, d->node, &tl->recs[i % tl->cap], off);
		}
	}
	kbuf_printf(b,
		    "],\"displayTimeUnit\":\"ms\",\"otherData\":{\"node_id\":\"%08x\","
		    "\"timeline_events\":%u,\"tasks_recorded\":%llu}}\n",
		    d->node, tl ? tl->cap : 0, tl ? (unsigned long long)tl->n : 0ULL);
}
