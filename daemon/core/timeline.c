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
 * which lives as long as krayd, so a record copies no string.
 *
 * A request gets the ring and the tasks still queued or running (from the queue, the
 * tasks waiting for arguments, the actors' queues and the workers' in-flight lists, at
 * most TL_LIVE_MAX), copied at once into a snapshot that is then rendered TL_SLICE
 * records per loop turn (a timer of its own), so the 3 MB answer of a full ring never
 * holds krayd's loop for more than about a millisecond.  Calls the BPF fast path steers
 * past krayd are not in it.
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
#include "core/worker.h"
#include "core/timeline.h"

#define TL_SLICE 200 /* records rendered per loop turn (about half a millisecond) */
#define TL_LIVE_MAX 10000 /* queued and running tasks a request shows at most */
#define TL_ERRORS 64 /* failures whose error text is kept */

struct tl_err {
	struct kray_oid id;
	uint32_t len;
	char text[240];
};

/* A record's state, as Ray's TaskStatus names it. */
enum tl_state {
	TL_FINISHED,
	TL_FAILED,
	TL_RUNNING, /* the head of its worker's in-flight list */
	TL_SUBMITTED_TO_WORKER, /* pipelined behind another on its worker */
	TL_PENDING_NODE_ASSIGNMENT, /* in the ready queue */
	TL_PENDING_ARGS_AVAIL, /* waiting for its arguments */
	TL_PENDING_ACTOR, /* in its actor's queue, behind earlier calls or the concurrency */
};

static const char *const tl_states[] = {
	[TL_FINISHED] = "FINISHED",
	[TL_FAILED] = "FAILED",
	[TL_RUNNING] = "RUNNING",
	[TL_SUBMITTED_TO_WORKER] = "SUBMITTED_TO_WORKER",
	[TL_PENDING_NODE_ASSIGNMENT] = "PENDING_NODE_ASSIGNMENT",
	[TL_PENDING_ARGS_AVAIL] = "PENDING_ARGS_AVAIL",
	[TL_PENDING_ACTOR] = "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY",
};

struct tl_rec {
	struct kray_oid id;
	struct kray_oid actor; /* all zero: not an actor call */
	const struct fnstat *fn;
	int64_t submit_ns, sent_ns, end_ns; /* CLOCK_MONOTONIC */
	uint64_t run_ns;
	uint32_t worker, job; /* worker 0: not on a worker yet */
	uint8_t state; /* enum tl_state */
};

/* A request being rendered: its snapshot, what is rendered so far, and whom it is for
 * (the connection's id: it may close meanwhile). */
struct tl_job {
	struct tl_rec *recs;
	size_t n, done;
	uint64_t recorded; /* the ring's count at the snapshot */
	int64_t off; /* realtime - monotonic, ns */
	int64_t now; /* the snapshot's time (CLOCK_MONOTONIC ns) */
	struct kbuf b;
	struct tl_err errs[TL_ERRORS]; /* the failures' text at the snapshot */
	uint32_t conn;
	uint64_t req;
	timeline_done_fn done_fn;
	struct tl_job *next;
};

struct timeline {
	struct tl_rec *recs;
	uint32_t cap;
	uint64_t n; /* records written since start; the ring holds the last min(n, cap) */
	struct tl_job *jobs, *jobs_tail; /* requests being rendered, oldest first */
	struct tl_err errs[TL_ERRORS]; /* the last failures' error text */
	uint64_t nerrs;
	uint64_t slices; /* slices rendered (for the tests: a big answer took several) */
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

static void job_free(struct tl_job *j)
{
	free(j->recs);
	kbuf_free(&j->b);
	free(j);
}

void timeline_fini(struct krayd *d)
{
	if (!d->tl)
		return;
	while (d->tl->jobs) {
		struct tl_job *j = d->tl->jobs;

		d->tl->jobs = j->next;
		job_free(j);
	}
	free(d->tl->recs);
	free(d->tl);
	d->tl = NULL;
}

/* Keeps the text of a failure (one error value) for the timeline's "error". */
static void note_error(struct timeline *tl, const struct kray_oid *id, const void *text,
		       uint32_t len)
{
	struct tl_err *e = &tl->errs[tl->nerrs++ % TL_ERRORS];

	e->id = *id;
	e->len = len < sizeof(e->text) ? len : sizeof(e->text);
	memcpy(e->text, text, e->len);
}

static void timeline_note(struct krayd *d, const struct task *t, uint32_t wid, uint64_t run_ns,
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
	r->end_ns = loop_now(d);
	r->sent_ns = t->sent_ns ? t->sent_ns : r->end_ns - (int64_t)run_ns;
	/* An actor's constructor is made by ACTOR_CREATE, not submitted: it has no submit
	 * time of its own. */
	r->submit_ns = t->submit_ns ? t->submit_ns : r->sent_ns;
	r->run_ns = run_ns;
	r->worker = wid;
	r->job = t->job;
	r->state = failed ? TL_FAILED : TL_FINISHED;
}

void timeline_fast(struct krayd *d, const struct kray_fast_run *run, struct fnstat *fn,
		   uint32_t wid, const struct kray_oid *actor)
{
	struct timeline *tl = d->tl;
	int64_t now = now_ns();
	struct tl_rec *r;

	if (!tl)
		return;
	r = &tl->recs[tl->n++ % tl->cap];
	r->id = run->task;
	if (actor)
		r->actor = *actor;
	else
		memset(&r->actor, 0, sizeof(r->actor));
	r->fn = fn;
	/* The worker's clock is krayd's (CLOCK_MONOTONIC, one host); its submit and dispatch
	 * are the run's start, which is all a fast call shows krayd. */
	r->end_ns = run->end_ns > 0 && run->end_ns <= now ? run->end_ns : now;
	r->run_ns = run->run_ns;
	r->sent_ns = r->end_ns - (int64_t)run->run_ns;
	r->submit_ns = r->sent_ns;
	r->worker = wid;
	r->job = run->job;
	r->state = run->failed ? TL_FAILED : TL_FINISHED;
}

void timeline_result(struct krayd *d, const struct task *t, uint32_t wid,
		     const struct wire_result *res)
{
	struct wire_rd rd = res->values;
	struct wire_value v;
	bool error = res->m.n == 1 && !wire_rd_value(&rd, &v) && v.type == KRAY_WT_ERROR;

	timeline_note(d, t, wid, res->m.exec_ns,
		      t->cancelled || error || (res->m.flags & KRAY_RESULT_RAISED));
	if (error && d->tl)
		note_error(d->tl, &t->id, v.data, v.len);
}

/* Microseconds since the epoch of monotonic time m (off: realtime - monotonic, in ns), as
 * Chrome's "ts" wants, with three decimals. */
static void put_us(struct kbuf *b, const char *key, int64_t m, int64_t off)
{
	int64_t ns = m + off;

	kbuf_printf(b, "\"%s\":%lld.%03lld", key, (long long)(ns / 1000), (long long)(ns % 1000));
}

static void render_rec(struct kbuf *b, uint32_t node, const struct tl_rec *r, int64_t off,
		       const struct tl_err *errs)
{
	/* The worker measured the run; it started no earlier than it was sent.  A task not
	 * ended yet: its bar runs from its dispatch (or its submit, queued) to now. */
	bool live = r->state > TL_FAILED;
	int64_t start = live ? r->sent_ns : r->end_ns - (int64_t)r->run_ns;

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
		    r->id.node, r->id.owner, r->id.seq, r->job, tl_states[r->state]);
	if (r->actor.node)
		kbuf_printf(b, "\"actor_id\":\"%08x%08x%08x%08x\",", r->actor.node, r->actor.owner,
			    r->actor.seq, r->actor.index);
	for (unsigned i = 0; r->state == TL_FAILED && i < TL_ERRORS; i++) {
		if (errs[i].len && !memcmp(&errs[i].id, &r->id, sizeof(r->id))) {
			kbuf_put(b, "\"error\":\"", 9);
			json_put_str(b, errs[i].text, errs[i].len);
			kbuf_put(b, "\",", 2);
			break;
		}
	}
	put_us(b, "submit_ts", r->submit_ns, off);
	if (r->worker) {
		kbuf_put(b, ",", 1);
		put_us(b, "dispatch_ts", r->sent_ns, off);
	}
	if (!live) {
		kbuf_put(b, ",", 1);
		put_us(b, "end_ts", r->end_ns, off);
	}
	kbuf_printf(b, ",\"queue_us\":%.3f}}",
		    (double)((r->worker ? r->sent_ns : r->end_ns) - r->submit_ns) / 1e3);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* "M" events: the process (node) and thread (worker) names Chrome and Perfetto show.  The
 * workers are the distinct ids in the snapshot (sorted: this runs only on a request);
 * worker 0 is the row of tasks not on a worker yet. */
static void render_names(struct kbuf *b, const struct tl_rec *recs, size_t n, uint32_t node)
{
	uint32_t *ids = malloc(n ? n * sizeof(*ids) : 1);

	kbuf_printf(b,
		    "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":%u,\"tid\":0,"
		    "\"args\":{\"name\":\"node %08x\"}}",
		    node, node);
	if (!ids)
		return; /* the names are a nicety: the events stand without them */
	for (size_t i = 0; i < n; i++)
		ids[i] = recs[i].worker;
	qsort(ids, n, sizeof(*ids), cmp_u32);
	for (size_t i = 0; i < n; i++) {
		if (i && ids[i] == ids[i - 1])
			continue;
		if (ids[i])
			kbuf_printf(b,
				    ",{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,"
				    "\"tid\":%u,\"args\":{\"name\":\"worker %u\"}}",
				    node, ids[i], ids[i]);
		else
			kbuf_printf(b,
				    ",{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%u,"
				    "\"tid\":0,\"args\":{\"name\":\"queued\"}}",
				    node);
	}
	free(ids);
}

/* A record of task t, not ended, in state st (at now). */
static void live_rec(struct tl_rec *r, const struct task *t, uint32_t wid, enum tl_state st,
		     int64_t now)
{
	memset(r, 0, sizeof(*r));
	r->id = t->id;
	if (t->actor)
		r->actor = t->actor->id;
	r->fn = t->fn;
	r->end_ns = now;
	r->submit_ns = t->submit_ns ? t->submit_ns : now;
	r->sent_ns = wid && t->sent_ns ? t->sent_ns : r->submit_ns;
	r->worker = wid;
	r->job = t->job;
	r->state = (uint8_t)st;
}

static size_t snapshot_live(struct krayd *d, struct tl_rec *out, size_t max, int64_t now)
{
	size_t n = 0;

	for (const struct worker *w = d->workers; w && n < max; w = w->next)
		for (const struct task *t = w->head; t && n < max; t = t->next)
			live_rec(&out[n++], t, w->id,
				 t == w->head ? TL_RUNNING : TL_SUBMITTED_TO_WORKER, now);
	for (const struct actor *a = d->actors; a && n < max; a = a->next)
		for (const struct task *t = a->qhead; t && n < max; t = t->next)
			live_rec(&out[n++], t, 0,
				 t->deps_left ? TL_PENDING_ARGS_AVAIL : TL_PENDING_ACTOR, now);
	for (const struct task *t = d->qhead; t && n < max; t = t->next)
		live_rec(&out[n++], t, 0, TL_PENDING_NODE_ASSIGNMENT, now);
	oidmap_for_each (&d->waiting, s) {
		if (n >= max)
			break;
		live_rec(&out[n++], (const struct task *)(uintptr_t)s->val, 0,
			 TL_PENDING_ARGS_AVAIL, now);
	}
	return n;
}

static int64_t clock_off(void)
{
	struct timespec rt, mono;

	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	return ((int64_t)rt.tv_sec - mono.tv_sec) * 1000000000 + (rt.tv_nsec - mono.tv_nsec);
}

static void render_tail(struct kbuf *b, struct krayd *d, uint64_t recorded)
{
	const struct timeline *tl = d->tl;

	kbuf_printf(b,
		    "],\"displayTimeUnit\":\"ms\",\"otherData\":{\"node_id\":\"%08x\","
		    "\"timeline_events\":%u,\"tasks_recorded\":%llu}}\n",
		    d->node, tl ? tl->cap : 0, (unsigned long long)recorded);
}

int timeline_render_async(struct krayd *d, struct conn *c, uint64_t req, timeline_done_fn done)
{
	struct timeline *tl = d->tl;
	struct tl_job *j;
	size_t ring;

	if (!tl) { /* off: the empty answer, at once */
		struct kbuf b = { 0 };

		kbuf_put(&b, "{\"traceEvents\":[", 16);
		render_tail(&b, d, 0);
		done(c, req, &b);
		kbuf_free(&b);
		return 0;
	}
	j = calloc(1, sizeof(*j));
	ring = (size_t)(tl->n < tl->cap ? tl->n : tl->cap);
	if (!j || !(j->recs = malloc((ring + TL_LIVE_MAX) * sizeof(*j->recs)))) {
		free(j);
		return -ENOMEM;
	}
	/* The ring, oldest first, then the tasks not ended yet. */
	if (tl->n <= tl->cap) {
		memcpy(j->recs, tl->recs, ring * sizeof(*j->recs));
	} else {
		size_t head = (size_t)(tl->n % tl->cap);

		memcpy(j->recs, tl->recs + head, (tl->cap - head) * sizeof(*j->recs));
		memcpy(j->recs + (tl->cap - head), tl->recs, head * sizeof(*j->recs));
	}
	memcpy(j->errs, tl->errs, sizeof(j->errs));
	j->now = now_ns();
	j->n = ring + snapshot_live(d, j->recs + ring, TL_LIVE_MAX, j->now);
	j->recorded = tl->n;
	j->off = clock_off();
	j->conn = c->id;
	j->req = req;
	j->done_fn = done;
	if (tl->jobs_tail)
		tl->jobs_tail->next = j;
	else
		tl->jobs = j;
	tl->jobs_tail = j;
	return 0;
}

/* The connection of id, if still open. */
static struct conn *conn_by_id(struct krayd *d, uint32_t id)
{
	for (struct conn *c = d->conns; c; c = c->next)
		if (c->id == id)
			return c->closed ? NULL : c;
	return NULL;
}

/* One slice of the oldest request; the answer goes once it is whole. */
static void render_slice(struct krayd *d, int64_t now)
{
	struct timeline *tl = d->tl;
	struct tl_job *j = tl ? tl->jobs : NULL;
	struct conn *c;
	size_t end;

	(void)now;
	if (!j)
		return;
	c = conn_by_id(d, j->conn);
	if (c && !j->done) {
		/* Room for the reply's head before the JSON, and most of its size at once. */
		kbuf_reserve(&j->b, TIMELINE_HEADROOM + 320 * j->n + 4096);
		j->b.len = j->b.off = TIMELINE_HEADROOM;
		kbuf_put(&j->b, "{\"traceEvents\":[", 16);
		render_names(&j->b, j->recs, j->n, d->node);
	}
	end = j->done + TL_SLICE < j->n ? j->done + TL_SLICE : j->n;
	for (; c && j->done < end; j->done++) {
		kbuf_put(&j->b, ",", 1);
		render_rec(&j->b, d->node, &j->recs[j->done], j->off, j->errs);
	}
	tl->slices++;
	if (c && j->done < j->n)
		return;
	if (c)
		render_tail(&j->b, d, j->recorded);
	j->done_fn(c, j->req, c ? &j->b : NULL);
	tl->jobs = j->next;
	if (!tl->jobs)
		tl->jobs_tail = NULL;
	job_free(j);
}

static int64_t next_slice(struct krayd *d)
{
	return d->tl && d->tl->jobs ? 0 : -1;
}

int timeline_start(struct krayd *d)
{
	return d->tl ? loop_timer(d, next_slice, render_slice) : 0;
}
