// SPDX-License-Identifier: Apache-2.0
/*
 * The local scheduler: a FIFO of ready tasks, num_cpus CPU slots, and a pool of workers.
 *
 * A worker running a task holds that task's CPU (one slot unless it asked otherwise) and
 * the task its custom resources, unless it is blocked in a get: then its CPU is given back
 * (as in Ray), so nested tasks can always run.  Idle workers take tasks first;
 * when every slot is busy, short tasks are pipelined: a worker may hold several tasks in
 * flight, as many as fit in PIPE_BUDGET_NS of that function's measured run time, so that
 * no-op tasks cost one socket round trip per batch instead of per task while long tasks
 * are never queued behind each other.  A function not run yet is not pipelined.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/task.h"
#include "core/actor.h"
#include "core/store.h"
#include "core/sched.h"
#include "core/job.h"
#include "core/log.h"
#include "core/timeline.h"
#include "core/timeout.h"

#define PIPE_BUDGET_NS 100000
#define PIPE_MAX 64

struct fnstat *sched_fn(struct krayd *d, const char *name, uint8_t len)
{
	struct fnstat *f;

	for (f = d->fns; f; f = f->next)
		if (f->name_len == len && !memcmp(f->name, name, len))
			return f;
	f = calloc(1, sizeof(*f));
	if (!f || !(f->name = malloc(len)))
		abort();
	memcpy(f->name, name, len);
	f->name_len = len;
	f->next = d->fns;
	d->fns = f;
	return f;
}

/* The moving average of f's run time, after a run (or a batch's mean) of ns. */
static void fn_ran(struct fnstat *f, uint64_t ns)
{
	f->avg_ns = f->avg_ns ? (f->avg_ns * 7 + ns) / 8 : ns;
	if (!f->avg_ns)
		f->avg_ns = 1;
}

void sched_fast_ran(struct krayd *d, const char *name, uint8_t len, uint32_t runs, uint32_t failed,
		    uint32_t stored, uint64_t run_ns)
{
	struct fnstat *f;

	if (!runs)
		return;
	d->st.tasks_submitted += runs;
	d->st.tasks_failed += failed;
	d->st.tasks_finished += runs - failed - stored;
	f = sched_fn(d, name, len);
	f->runs += runs;
	fn_ran(f, run_ns / runs);
}

/* Where t goes in the queue kept in rank order (job.h): after the last queued task whose
 * rank is not above t's.  Its job's last queued task is the usual place to start looking;
 * a job's first task usually belongs near the head, the others of a single busy job at the
 * tail. */
static struct task *fair_after(struct krayd *d, struct task *t)
{
	struct task *p = t->jp && t->jp->qlast ? t->jp->qlast : d->qhead;

	if (d->qtail->rank <= t->rank)
		return d->qtail;
	if (p->rank > t->rank) {
		if (p == d->qhead)
			return NULL; /* before the head */
		p = d->qhead; /* not expected: look from the head */
		if (p->rank > t->rank)
			return NULL;
	}
	while (p->next && p->next->rank <= t->rank)
		p = p->next;
	return p;
}

void sched_enqueue(struct krayd *d, struct task *t, bool front)
{
	struct task *after;

	/* In a cluster, a task that needs resources only another node has runs there, and one
	 * that would wait here may go to a less loaded node (cluster/remote.c). */
	if (ext_place(d, t))
		return;
	if (front) {
		/* Back from a worker (handed back, or its worker died): it goes first, as
		 * before. */
		t->rank = d->qhead && d->qhead->rank < d->vnow ? d->qhead->rank : d->vnow;
		after = NULL;
	} else {
		uint64_t start = t->jp && t->jp->vt > d->vnow ? t->jp->vt : d->vnow;

		t->rank = start + 1;
		if (t->jp)
			t->jp->vt = t->rank;
		after = d->qhead ? fair_after(d, t) : NULL;
	}
	if (after) {
		t->next = after->next;
		after->next = t;
		if (d->qtail == after)
			d->qtail = t;
	} else {
		t->next = d->qhead;
		d->qhead = t;
		if (!d->qtail)
			d->qtail = t;
	}
	if (t->jp && (!t->jp->qlast || t->jp->qlast->rank <= t->rank))
		t->jp->qlast = t;
	d->st.tasks_queued++;
}

struct task *sched_unqueue(struct krayd *d, struct task **pp, struct task *prev)
{
	struct task *t = *pp;

	*pp = t->next;
	if (d->qtail == t)
		d->qtail = prev;
	if (t->jp && t->jp->qlast == t)
		t->jp->qlast = prev && prev->jp == t->jp ? prev : NULL;
	t->next = NULL;
	d->st.tasks_queued--;
	return t;
}

/* t leaves the queue for a worker: jobs that fall behind its rank start after it. */
static struct task *take(struct krayd *d, struct task **pp, struct task *prev)
{
	struct task *t = sched_unqueue(d, pp, prev);

	if (t->rank > d->vnow)
		d->vnow = t->rank;
	return t;
}

static struct task *dequeue(struct krayd *d)
{
	return sched_unqueue(d, &d->qhead, NULL);
}

static unsigned pipe_depth(const struct fnstat *f)
{
	uint64_t n;

	if (!f->avg_ns)
		return 1;
	n = PIPE_BUDGET_NS / f->avg_ns;
	return n < 1 ? 1 : n > PIPE_MAX ? PIPE_MAX : (unsigned)n;
}

void sched_tell_job(struct worker *w, uint32_t job, const char *path)
{
	struct kray_msg_job m = { .job = job, .path_len = (uint32_t)strlen(path) };
	struct kray_oid key = { .node = job };
	bool fresh;

	oidmap_upsert(&w->jobs, &key, &fresh);
	if (!fresh)
		return;
	WIRE_FRAME(&w->conn->out, KRAY_MSG_JOB, 0, WIRE_FIXED(m), WIRE_PADDED(path, m.path_len));
}

/* Tells idle pool worker w (or every one, w NULL) the code path of the last driver that
 * connected with one (d->warm_job), if that job is still there. */
void sched_warm(struct krayd *d, struct worker *w)
{
	const char *path = d->warm_job ? job_code_path(d, d->warm_job) : NULL;

	if (!path || !*path)
		return;
	for (struct worker *x = w ? w : d->workers; x; x = w ? NULL : x->next)
		if (x->state == W_READY && x->conn && !x->actor && !x->inflight) {
			sched_tell_job(x, d->warm_job, path);
			conn_flush_later(x->conn);
		}
}

/* Drops the pins exec_fits() took on t's large arguments (those already in memory). */
static void unpin_args(struct krayd *d, struct task *t)
{
	struct task_arg a;

	for (task_arg_first(&a, t); task_arg_next(&a);) {
		struct obj *o;

		if (a.v.type != KRAY_WT_REF)
			continue;
		o = store_get(d, &a.id);
		if (o->type == KRAY_WT_FD && o->pins && o->exec_pin) {
			o->exec_pin = false;
			store_unpin(d, o);
		}
	}
}

/*
 * Checks that t's arguments, resolved, fit in one EXEC: at most KRAY_FDS_PER_MSG large
 * objects (each restored from disk if it was spilled, and pinned) and KRAY_FRAME_MAX
 * bytes.  Returns how many large arguments it pinned, or fails t and returns -1.
 */
static int exec_fits(struct krayd *d, struct task *t)
{
	uint64_t bytes = sizeof(struct kray_msg_exec) + KRAY_PAD8(t->fn->name_len);
	unsigned large = 0;
	struct task_arg a;

	for (task_arg_first(&a, t); task_arg_next(&a);) {
		unsigned i = a.i;
		struct obj *o;
		int err;

		bytes += sizeof(struct kray_wire_value);
		if (a.v.type != KRAY_WT_REF) {
			bytes += KRAY_PAD8(a.v.len);
			continue;
		}
		o = store_get(d, &a.id);
		if (o->type != KRAY_WT_FD) {
			bytes += KRAY_PAD8(o->len) + o->ncontained * sizeof(struct kray_oid);
			continue;
		}
		bytes += sizeof(struct kray_oid);
		if (++large > KRAY_FDS_PER_MSG) {
			unpin_args(d, t);
			task_fail(d, t, KRAY_WE_BAD_ARGS,
				  "'%.*s' has more than %d large arguments (one message carries "
				  "at most %d memfds)",
				  t->fn->name_len, t->fn->name, KRAY_FDS_PER_MSG, KRAY_FDS_PER_MSG);
			return -1;
		}
		err = store_restore(d, o);
		if (err) {
			unpin_args(d, t);
			task_fail(d, t, err == -ENOSPC ? KRAY_WE_STORE_FULL : KRAY_WE_INTERNAL,
				  "argument %u of '%.*s' cannot be restored from disk: %s", i,
				  t->fn->name_len, t->fn->name,
				  err == -ENOSPC ? "the object store is full" : strerror(-err));
			return -1;
		}
		/* Restoring the next one must not spill this one again. */
		if (!o->exec_pin) {
			o->exec_pin = true;
			store_pin(d, o);
		}
	}
	if (bytes > KRAY_FRAME_MAX) {
		unpin_args(d, t);
		task_fail(
			d, t, KRAY_WE_BAD_ARGS,
			"the arguments of '%.*s' come to %llu bytes inline, more than one message "
			"carries (%u); pass large values as objects (kray_put)",
			t->fn->name_len, t->fn->name, (unsigned long long)bytes, KRAY_FRAME_MAX);
		return -1;
	}
	return (int)large;
}

int sched_send_exec(struct krayd *d, struct worker *w, struct task *t)
{
	struct kbuf *b = &w->conn->out;
	struct kray_msg_exec m = { .task = t->id,
				   .job = t->job,
				   .num_returns = t->num_returns,
				   .nargs = t->nargs,
				   .name_len = t->fn->name_len,
				   .ctor = t->ctor,
				   .max_concurrency = t->ctor ? t->actor->max_concurrency : 0 };
	const char *path = job_code_path(d, t->job);
	struct task_arg a;
	size_t off;
	int pinned = exec_fits(d, t);

	if (pinned < 0)
		return -1;
	sched_tell_job(w, t->job, path ? path : "");
	off = WIRE_FRAME_OPEN(b, KRAY_MSG_EXEC, 0, WIRE_FIXED(m),
			      WIRE_PADDED(t->fn->name, t->fn->name_len));
	for (task_arg_first(&a, t); task_arg_next(&a);) {
		if (a.v.type == KRAY_WT_REF) {
			store_send_value(w->conn, store_get(d, &a.id)); /* held and ready */
			continue;
		}
		/* The worker borrows an actor handle while it runs the call. */
		if (a.v.type == KRAY_WT_ACTOR)
			store_conn_ref(w->conn, store_get(d, &a.id)); /* held by the task */
		wire_put_value(b, a.v.type, a.v.err, a.v.scalar, a.v.data, a.v.len);
	}
	conn_end_frame(w->conn, off);
	conn_flush_later(w->conn);
	if (pinned) /* the worker's views pin them now; most tasks have no large argument */
		unpin_args(d, t);

	if (d->tl)
		t->sent_ns = loop_now(d);
	if (w->tail)
		w->tail->next = t;
	else
		w->head = t;
	w->tail = t;
	if (!w->inflight++)
		ext_exec_sent(d, w, t);
	return 0;
}

static bool runnable(const struct worker *w)
{
	return w->state == W_READY && w->conn && !w->conn->closed && !w->blocked && !w->actor;
}

/* A task of the default shape: one CPU slot, no custom resources.  Only those are
 * pipelined, behind others of the same shape. */
static bool plain(const struct task *t)
{
	return t->cpu_milli == 1000 && !t->nres && !t->timeout_ms;
}

/* Whether t's custom resources are free now (the node has them: remote_take() saw to
 * that before it was queued). */
static bool res_free(struct krayd *d, const struct task *t)
{
	for (unsigned i = 0; i < t->nres; i++) {
		struct node_resource *n = node_res(d, t->res[i].name);

		if (!n || n->used_milli + t->res[i].milli > n->r.milli)
			return false;
	}
	return true;
}

static void res_take(struct krayd *d, struct task *t)
{
	for (unsigned i = 0; i < t->nres; i++)
		node_res(d, t->res[i].name)->used_milli += t->res[i].milli;
	t->res_held = t->nres > 0;
}

/* Gives back the custom resources t took when it went to a worker. */
void sched_res_give(struct krayd *d, struct task *t)
{
	if (!t->res_held)
		return;
	for (unsigned i = 0; i < t->nres; i++)
		node_res(d, t->res[i].name)->used_milli -= t->res[i].milli;
	t->res_held = false;
}

/* The pool's workers (not actors', not on their way out): those that take tasks, or will
 * once started. */
static unsigned pool_size(struct krayd *d)
{
	unsigned n = 0;

	for (struct worker *w = d->workers; w; w = w->next)
		n += !w->actor && w->state != W_DEAD && !(w->conn && w->conn->closed);
	return n;
}

/* The pool krayd keeps: what it started at boot (prestart, at most max-workers).  Actors
 * take workers from it (sched_adopt()) and it is refilled (sched_refill()); it is trimmed
 * down to it, never below, so that it neither churns nor runs dry. */
static unsigned pool_floor(struct krayd *d)
{
	int n = d->cfg.prestart < d->cfg.max_workers ? d->cfg.prestart : d->cfg.max_workers;

	return n > 0 ? (unsigned)n : 0;
}

/* Stops idle workers beyond the free slots and the pool's floor: workers blocked in gets
 * made the pool grow, and it shrinks back once they are done. */
static void trim_pool(struct krayd *d, unsigned keep)
{
	unsigned pool = pool_size(d), floor = pool_floor(d);

	for (struct worker *w = d->workers; w && pool > floor; w = w->next) {
		if (!runnable(w) || w->inflight || ext_worker_busy(d, w))
			continue;
		if (keep) {
			keep--;
		} else if (ext_worker_retire(d, w)) { /* not if the fast path just gave it a task */
			conn_close(w->conn, "worker not needed");
			pool--;
		}
	}
}

void sched_refill(struct krayd *d)
{
	uint64_t cap = (uint64_t)d->cfg.num_cpus * 1000;
	unsigned pool, want = pool_floor(d), slots;

	if (d->stopping || d->start_failures >= 3 || !want)
		return;
	/* Not while an actor's constructor runs: its start is what the pool is for, and a
	 * process starting beside it (and, first, posix_spawn() on this thread, before the
	 * constructor's EXEC is sent) would slow it.  Its answer dispatches again; tasks
	 * queued meanwhile start workers for themselves as always. */
	for (struct worker *w = d->workers; w; w = w->next)
		if (w->actor && w->head && w->head->ctor)
			return;
	/* Not for the CPU slots actors (and groups) hold: no task could run there, and the
	 * starts would take CPU from the actors.  Once they end, the pool fills again. */
	slots = cap > d->actor_slots_milli ? (unsigned)((cap - d->actor_slots_milli + 999) / 1000) :
					     0;
	if (want > slots)
		want = slots;
	for (pool = pool_size(d); pool < want; pool++)
		if (worker_spawn(d))
			break;
}

/* How much w suits actor a: a worker that was told a's job has its code loaded (for a
 * Python actor, its interpreter started: kray_warm()); one that ran tasks may have
 * started Python for them.  Any idle worker suits a C actor. */
static int adopt_score(const struct worker *w, const struct actor *a, bool py)
{
	struct kray_oid key = { .node = a->ctor->job };

	if (oidmap_get(&w->jobs, &key))
		return 2;
	return py && w->tasks_done ? 1 : 0;
}

#define ADOPT_TRIES 8

struct worker *sched_adopt(struct krayd *d, const struct actor *a)
{
	static const char py_actor[] = "kray_py_actor";
	bool py = a->ctor->fn->name_len >= sizeof(py_actor) - 1 &&
		  !memcmp(a->ctor->fn->name, py_actor, sizeof(py_actor) - 1);
	uint32_t tried[ADOPT_TRIES];
	unsigned ntried = 0;

	while (ntried < ADOPT_TRIES) {
		struct worker *best = NULL;
		int best_score = -1;

		for (struct worker *w = d->workers; w; w = w->next) {
			int score;
			bool seen = false;

			if (!runnable(w) || w->inflight || ext_worker_busy(d, w))
				continue;
			for (unsigned i = 0; i < ntried; i++)
				seen |= tried[i] == w->id;
			if (seen)
				continue;
			/* Of equals the oldest (the list is newest first): likeliest warm. */
			score = adopt_score(w, a, py);
			if (score >= best_score) {
				best = w;
				best_score = score;
			}
		}
		if (!best)
			return NULL;
		/* Off the fast path for good, unless a driver's fast call claimed it an
		 * instant ago: then another one. */
		if (ext_worker_retire(d, best))
			return best;
		log_debug("worker %u (pid %d): a fast call claimed it; not adopted", best->id,
			  (int)best->pid);
		tried[ntried++] = best->id;
	}
	return NULL;
}

/* Sends t to w, which was idle: w holds t's CPU, t its resources.  -1: t failed instead. */
static int start_on(struct krayd *d, struct worker *w, struct task *t)
{
	if (sched_send_exec(d, w, t))
		return -1;
	w->cpu_milli = t->cpu_milli;
	w->plain = plain(t);
	res_take(d, t);
	if (t->timeout_ms)
		timeout_arm(d, t);
	return 0;
}

/*
 * The fast path (bpf_fast.c) runs tasks krayd does not see.  A queued task must not wait
 * for a wake-up that never comes: when no daemon-path task is in flight and no worker is
 * starting, nothing will call sched_dispatch() again, so the queue's head tasks go to the
 * workers that run fast tasks, one each, to run next (their results wake krayd).
 */
static void unstrand(struct krayd *d)
{
	if (!ext_can_pass(d) || !d->qhead || d->starting)
		return;
	for (struct worker *w = d->workers; w; w = w->next)
		if (w->state == W_READY && w->inflight && !w->blocked)
			return; /* its result will dispatch (a blocked one may wait on the queue) */
	for (struct worker *w = d->workers; w && d->qhead; w = w->next)
		if (runnable(w) && !w->inflight && res_free(d, d->qhead) && ext_worker_pass(d, w))
			start_on(d, w, take(d, &d->qhead, NULL));
}

/* An idle worker, claimed from the fast path (whose program may give it a task first). */
static struct worker *idle_worker(struct krayd *d)
{
	for (struct worker *w = d->workers; w; w = w->next)
		if (runnable(w) && !w->inflight && ext_worker_claim(d, w))
			return w;
	return NULL;
}

/* The busy worker with the fewest tasks that can take plain task t behind its own. */
static struct worker *pipeline_worker(struct krayd *d, const struct task *t)
{
	unsigned depth = pipe_depth(t->fn);
	struct worker *best = NULL;

	for (struct worker *w = d->workers; w && depth > 1; w = w->next)
		if (runnable(w) && w->plain && w->inflight && w->inflight < depth &&
		    (!best || w->inflight < best->inflight))
			best = w;
	return best;
}

/*
 * A task of several CPUs that plain tasks have kept out for STARVE_NS: it could run once
 * running tasks end (its resources are free, and the actors leave it room), so the scan
 * stops there and lets CPUs free up for it.
 */
#define STARVE_NS 1000000000ll

static bool starved(struct krayd *d, const struct task *t, uint64_t cap)
{
	return t->cpu_milli > 1000 && d->actor_slots_milli <= cap &&
	       t->cpu_milli <= cap - d->actor_slots_milli && res_free(d, t) &&
	       now_ns() - t->submit_ns > STARVE_NS;
}

/*
 * Starts what can start.  CPU is counted in thousandths of a slot: a running task holds
 * its cpu_milli (a worker blocked in a get gives it back), actors hold theirs.  The queue
 * is FIFO, but a task whose CPU or custom resources are not free now is stepped over, so
 * that it does not hold up tasks that could run; the scan ends SCAN_MAX tasks past the
 * first one that could not start, which bounds the work per turn with a long queue.
 */
#define SCAN_MAX 256

/*
 * Nested tasks deeper than max-workers: every pool worker is blocked in a get, waiting for
 * tasks that wait in the queue for a worker.  Nothing would ever move, so the limit is
 * raised for them, up to NEST_FACTOR times max-workers; past that the task at the head of
 * the queue fails with a clear error (its caller's get returns it, so the chain unwinds)
 * rather than the node hanging in silence.
 */
#define NEST_FACTOR 2

static unsigned worker_limit(struct krayd *d, bool stalled)
{
	unsigned max = (unsigned)d->cfg.max_workers;

	if (!stalled)
		return max;
	if (!d->nest_stalls++)
		log_warn("every pool worker (%u) is blocked in a get while tasks wait: nested "
			 "tasks deeper than max-workers (%u); starting workers beyond it, up to %u",
			 d->nworkers, max, max * NEST_FACTOR);
	return max * NEST_FACTOR;
}

unsigned sched_workers_over(struct krayd *d)
{
	unsigned pool = 0;

	for (struct worker *w = d->workers; w; w = w->next)
		pool += !w->actor && w->state != W_DEAD;
	return pool > (unsigned)d->cfg.max_workers ? pool - (unsigned)d->cfg.max_workers : 0;
}

static void fail_stalled(struct krayd *d)
{
	struct task *t = sched_unqueue(d, &d->qhead, NULL);

	log_warn_ratelimited("'%.*s' cannot run: all %u workers are blocked waiting for nested "
			     "tasks (max-workers %d, raised to %d for nesting)",
			     t->fn->name_len, t->fn->name, d->nworkers, d->cfg.max_workers,
			     d->cfg.max_workers * NEST_FACTOR);
	d->nest_failed++;
	task_fail(d, t, KRAY_WE_INTERNAL,
		  "'%.*s' cannot run: tasks are nested deeper than this node's workers allow "
		  "(max-workers %d, raised to %d for nesting, every one blocked waiting for a "
		  "nested task)",
		  t->fn->name_len, t->fn->name, d->cfg.max_workers,
		  d->cfg.max_workers * NEST_FACTOR);
}

void sched_dispatch(struct krayd *d)
{
	uint64_t cap = (uint64_t)d->cfg.num_cpus * 1000, used = d->actor_slots_milli;
	/* Pool workers still starting will take queued tasks: counted, or every loop turn
	 * before they connect would start another one per queued task. */
	unsigned idle = 0, pool_starting = 0, want = 0, past = 0, pool = 0, blocked = 0;
	/* Tasks of no CPU run beside the slots, but at most num-cpus of them at once: they
	 * must not start a worker per task and crowd out every other job. */
	unsigned zero = 0, zero_max = d->cfg.num_cpus > 0 ? (unsigned)d->cfg.num_cpus : 1;
	struct task **pp = &d->qhead, *prev = NULL, *t;
	bool stalled;

	if (d->stopping)
		return;
	ext_before_dispatch(d);
	for (struct worker *w = d->workers; w; w = w->next) {
		if (runnable(w) && w->inflight) {
			used += w->cpu_milli;
			zero += !w->cpu_milli;
		} else if (runnable(w) && ext_worker_busy(d, w))
			used += 1000; /* a fast task (always plain) holds a CPU slot too */
		else if (runnable(w))
			idle++;
		else if (w->state == W_STARTING && !w->actor)
			pool_starting++;
		if (!w->actor && w->state != W_DEAD) {
			pool++;
			blocked += w->blocked;
		}
	}
	stalled = d->qhead && pool && blocked == pool && !pool_starting &&
		  d->nworkers >= (unsigned)d->cfg.max_workers;
	if (!stalled && !blocked)
		d->nest_stalls = 0;
	while ((t = *pp) && past <= SCAN_MAX) {
		bool fits = (t->cpu_milli ? used + t->cpu_milli <= cap : zero < zero_max) &&
			    res_free(d, t);
		struct worker *w = fits && idle ? idle_worker(d) : NULL;

		if (w) {
			take(d, pp, prev);
			idle--;
			if (!start_on(d, w, t)) { /* else it failed: the worker stays idle */
				used += t->cpu_milli;
				zero += !t->cpu_milli;
			}
			continue;
		}
		w = plain(t) ? pipeline_worker(d, t) : NULL;
		if (w) {
			take(d, pp, prev);
			sched_send_exec(d, w, t);
			continue;
		}
		/* It waits: for a worker to start, or for CPU or resources to be given back.
		 * Plain tasks behind a plain one that waits cannot start either: start
		 * workers for as many as the free CPU holds, and look further only for a
		 * task of another shape that an idle worker could take. */
		if (plain(t)) {
			if (fits)
				want += (unsigned)((cap - used) / 1000);
			if (fits || !idle)
				break;
		} else if (fits) {
			want++; /* its CPU counted as taken: no more start than the slots hold */
			used += t->cpu_milli;
			zero += !t->cpu_milli;
		} else if (starved(d, t, cap)) {
			break; /* the tasks behind it wait, so that slots drain until it fits */
		}
		past++;
		prev = t;
		pp = &t->next;
	}
	if (want > d->st.tasks_queued)
		want = (unsigned)d->st.tasks_queued;
	if (!d->qhead) {
		trim_pool(d, cap > used ? (unsigned)((cap - used) / 1000) : 0);
		sched_refill(d);
	} else {
		/* Start workers for the waiting tasks that fit, less those starting already. */
		want = want > pool_starting ? want - pool_starting : 0;
		/* The CPUs are oversubscribed (daemon/bpf/bpf_sched.c): another worker would only
		 * wait for a CPU too.  Queue; the busy workers' results dispatch again. */
		if (want && used > d->actor_slots_milli && !ext_may_start(d))
			want = 0;
		while (want-- && d->nworkers < worker_limit(d, stalled) && d->start_failures < 3)
			if (worker_spawn(d))
				break;
		if (stalled && d->qhead && d->nworkers >= worker_limit(d, stalled))
			fail_stalled(d);
	}
	if (ext_can_pass(d)) {
		unstrand(d);
		for (struct worker *w = d->workers; w; w = w->next)
			if (runnable(w))
				ext_worker_settle(d, w, d->qhead != NULL);
	}
}

/* Gives back the actor handles, and the refs inside argument objects, that worker
 * connection c borrowed for t. */
void sched_unlend(struct conn *c, struct task *t)
{
	struct task_arg a;

	for (task_arg_first(&a, t); task_arg_next(&a);) {
		if (a.v.type != KRAY_WT_ACTOR && a.v.type != KRAY_WT_REF)
			continue;
		if (a.v.type == KRAY_WT_ACTOR) {
			store_conn_unref(c, &a.id);
			continue;
		}
		/* The refs an argument object contains were lent with it (store_send_value). */
		struct obj *o = store_get(c->d, &a.id);

		for (uint16_t j = 0; o && j < o->ncontained; j++)
			store_conn_unref(c, &o->contained[j]);
	}
}

static struct task *unlink_inflight(struct krayd *d, struct worker *w, const struct kray_oid *id)
{
	struct task *prev = NULL;

	for (struct task *t = w->head; t; prev = t, t = t->next) {
		if (!oid_eq(&t->id, id))
			continue;
		if (prev)
			prev->next = t->next;
		else
			w->head = t->next;
		if (w->tail == t)
			w->tail = prev;
		t->next = NULL;
		w->inflight--;
		sched_res_give(d, t);
		return t;
	}
	return NULL;
}

void sched_result(struct conn *c, const struct wire_result *r)
{
	struct worker *w = c->worker;
	struct task *t = unlink_inflight(c->d, w, &r->m.task);

	if (!t) {
		log_warn("worker %u: result for a task it does not hold", w->id);
		return;
	}
	/* Handles given to a constructor stay with the actor's process (its state may
	 * keep them) until it exits; a call's are lent for the call. */
	if (!t->ctor)
		sched_unlend(c, t);
	if (c->d->tl)
		timeline_result(c->d, t, w->id, r);
	ext_result(c->d, w);
	if (t->actor) {
		actor_result(c, t, r);
		return;
	}
	if (t->cancelled) {
		task_fail_cancelled(c->d, t);
		return;
	}
	t->fn->runs++;
	fn_ran(t->fn, r->m.exec_ns);
	task_finish(c, t, r->values, r->m.n);
}

void sched_reject(struct conn *c, const struct kray_oid *id)
{
	struct task *t = c->worker->actor ? NULL : unlink_inflight(c->d, c->worker, id);

	/* An actor never hands calls back: its calls wait for it, in order. */
	if (t) {
		c->d->st.tasks_handed_back++;
		sched_unlend(c, t);
		if (t->cancelled)
			task_fail_cancelled(c->d, t);
		else
			sched_enqueue(c->d, t, true);
	}
}

void sched_blocked(struct worker *w, bool blocked)
{
	w->blocked = blocked;
}

void sched_fini(struct krayd *d)
{
	while (d->qhead)
		task_free(d, dequeue(d));
	while (d->fns) {
		struct fnstat *f = d->fns;

		d->fns = f->next;
		free(f->name);
		free(f);
	}
	oidmap_free(&d->cancelled);
	oidmap_free(&d->waiting);
	freelist_drain(&d->task_fl);
}

/* none_ran: a fast task was running (bpf_fast.c), so none of the tasks krayd sent it had
 * started: all go back to the queue, none counts an attempt. */
static void tasks_lost(struct krayd *d, struct worker *w, const char *how, bool none_ran)
{
	struct task *t = w->head, *rest;

	if (!t)
		return;
	rest = none_ran ? t : t->next;
	w->head = w->tail = NULL;
	w->inflight = 0;
	for (struct task *x = t; x; x = x->next)
		sched_res_give(d, x);

	/* The others had not started: back to the front of the queue, in order. */
	struct task *stack = NULL;

	while (rest) {
		struct task *n = rest->next;

		rest->next = stack;
		stack = rest;
		rest = n;
	}
	while (stack) {
		struct task *n = stack->next;

		if (stack->cancelled)
			task_fail_cancelled(d, stack);
		else
			sched_enqueue(d, stack, true);
		stack = n;
	}
	if (none_ran)
		return; /* t was requeued with the rest */
	t->next = NULL;
	if (t->timed_out) { /* killed by timeout.c: not a fault to retry */
		task_fail(d, t, KRAY_WE_TIMED_OUT,
			  "task '%.*s' timed out: still running after its timeout of %u ms; its "
			  "worker (pid %d) was killed",
			  t->fn->name_len, t->fn->name, t->timeout_ms, (int)w->pid);
		return;
	}
	if (t->cancelled) { /* killed by kray_cancel(force): not a fault to retry */
		task_fail(d, t, KRAY_WE_CANCELLED,
			  "task '%.*s' was cancelled (its worker, pid %d, "
			  "was killed)",
			  t->fn->name_len, t->fn->name, (int)w->pid);
		return;
	}
	t->attempts++;
	if (t->max_retries < 0 || t->attempts <= t->max_retries) {
		log_info("worker %u (pid %d) %s while running '%.*s': retrying (%u of %d)", w->id,
			 (int)w->pid, how, t->fn->name_len, t->fn->name, t->attempts,
			 t->max_retries);
		d->st.tasks_retried++;
		sched_enqueue(d, t, true);
		return;
	}
	task_fail(d, t, KRAY_WE_WORKER_DIED,
		  "worker died while running '%.*s': pid %d %s; %u attempt%s, max_retries %d",
		  t->fn->name_len, t->fn->name, (int)w->pid, how, t->attempts,
		  t->attempts == 1 ? "" : "s", t->max_retries);
}

static void fail_queue(struct krayd *d, const char *how)
{
	while (d->qhead) {
		struct task *t = sched_unqueue(d, &d->qhead, NULL);

		task_fail(d, t, KRAY_WE_INTERNAL, "cannot start a worker for '%.*s': %s",
			  t->fn->name_len, t->fn->name, how);
	}
}

void sched_worker_lost(struct krayd *d, struct worker *w, const char *how, bool was_starting,
		       bool fast_ran)
{
	if (was_starting && !w->actor && !d->stopping && d->start_failures >= 3)
		fail_queue(d, how);
	if (!d->stopping && w->actor) {
		actor_worker_died(d, w, how);
	} else if (!d->stopping) {
		tasks_lost(d, w, how, fast_ran);
	} else {
		/* Stopping: the worker is freed next, and loop_fini() still ends the actors whose
		 * owners' connections it closes (actor_dead() looks at a->w). */
		if (w->actor)
			w->actor->w = NULL;
		while (w->head) {
			struct task *t = w->head;

			w->head = t->next;
			if (!t->ctor) /* the actor owns its constructor */
				task_free(d, t);
		}
	}
}
