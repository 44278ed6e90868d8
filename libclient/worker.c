// SPDX-License-Identifier: Apache-2.0
/*
 * The worker host's loop (kray_worker_main).
 *
 * A worker connects to krayd with the id krayd gave it, then runs what krayd sends, in
 * order: tasks of any job, or, once an actor's constructor ran here, that actor's method
 * calls.  krayd may pipeline several short tasks; they wait in a local queue.  When a
 * task blocks in kray_get(), the queued tasks are handed back (REJECT) so that they can
 * run elsewhere, and tasks that arrive during the get are handed back at once: a worker
 * never sits on work it cannot start.  Results are sent in one batch whenever the local
 * queue runs dry.  An actor with max_concurrency > 1 runs its methods on threads
 * (host.c) while this loop keeps reading and answering.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

/*
 * Hands an EXEC back unstarted.  krayd pinned every large argument it sent (one pin per
 * FD value, on this connection) and lent the refs inside argument objects: it takes the
 * loans back itself (sched_reject), and the pins are given back here, since no view of
 * them will ever be cleared.  The descriptors themselves are closed with the frame.
 */
static void put_reject(struct kray *k, const void *body, size_t len)
{
	struct kray_msg_reject m;
	struct wire_exec x;
	struct wire_value v;
	size_t off;

	if (wire_dec_exec(body, len, &x))
		return; /* garbage from krayd: nothing to hand back */
	for (unsigned i = 0; i < x.m.nargs && !wire_rd_value(&x.args, &v); i++) {
		kray_ref id;

		if (v.type != KRAY_WT_FD)
			continue;
		memcpy(&id, v.data, sizeof(id));
		kc_put_unpin(k, &id);
	}
	m = (struct kray_msg_reject){ .task = x.m.task };
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_REJECT, 0, WIRE_FIXED(m));
	if (wire_end(&k->out, off))
		k->ws->nomem = true; /* the task would wait forever: krayd must see us go */
}

void kc_worker_before_block(struct kray *k)
{
	struct worker_state *ws = k->ws;

	if (!ws->in_task || ws->cls)
		return; /* an actor's calls are its own: they wait for it */
	while (ws->qhead) {
		struct exec *e = ws->qhead;

		ws->qhead = e->next;
		put_reject(k, e->body, e->len);
		exec_free(e);
	}
	ws->qtail = NULL;
}

/* k->wake: only another thread's reading needs the loop to look again, or a get answered
 * from the cache (k->wake_self). */
static void wake_loop(struct kray *k)
{
	struct worker_state *ws = k->ws;

	if (ws && ws->host && (k->wake_self || !pthread_equal(pthread_self(), ws->loop)))
		host_wake(ws->host);
}

/* CANCEL from krayd, for an actor's call (krayd interrupts a task by signal): a call
 * queued here that has not started does not run (an actor's calls wait here in order); a
 * started one is told (kray_ctx_cancelled()) and, in a deferred host, may be ended. */
static void cancel_queued(struct kray *k, const uint8_t *body, uint32_t len)
{
	struct worker_state *ws = k->ws;
	struct kray_msg_cancel m;
	struct exec *prev = NULL;

	if (len < sizeof(m))
		return;
	memcpy(&m, body, sizeof(m));
	for (struct exec *e = ws->qhead; e; prev = e, e = e->next) {
		struct kray_msg_exec x;

		memcpy(&x, e->body, sizeof(x));
		if (memcmp(&x.task, &m.oid, sizeof(x.task)))
			continue;
		if (prev)
			prev->next = e->next;
		else
			ws->qhead = e->next;
		if (ws->qtail == e)
			ws->qtail = prev;
		call_refuse(k, e, KRAY_WE_CANCELLED, "the call was cancelled before it started");
		return;
	}
	/* Started: it runs on, and kray_ctx_cancelled() tells it it was asked to stop. */
	pthread_mutex_lock(&ws->stopped_mu);
	memcpy(&ws->stopped[ws->stopped_next++ % STOPPED_MAX], &m.oid, sizeof(kray_ref));
	pthread_mutex_unlock(&ws->stopped_mu);
	/* A deferred host may end it (its cancel hook, at the loop's next turn). */
	if (ws->hopts.cancel) {
		if (ws->ncancels == ws->cap_cancels) {
			unsigned cap = ws->cap_cancels ? 2 * ws->cap_cancels : 16;
			kray_ref *p = realloc(ws->cancels, cap * sizeof(*p));

			if (!p)
				return; /* the call runs to its end */
			ws->cancels = p;
			ws->cap_cancels = cap;
		}
		memcpy(&ws->cancels[ws->ncancels++], &m.oid, sizeof(kray_ref));
		if (k->wake)
			k->wake(k);
	}
}

static void on_frame(struct kray *k, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct worker_state *ws = k->ws;
	struct exec *e;

	switch (h->type) {
	case KRAY_MSG_JOB:
		code_on_job(ws, body, h->len);
		return;
	case KRAY_MSG_JOB_END:
		code_end_job(ws, body, h->len);
		return;
	case KRAY_MSG_CANCEL:
		cancel_queued(k, body, h->len);
		return;
	case KRAY_MSG_ACTOR_STOP:
		ws->stop = true;
		return;
	case KRAY_MSG_EXEC:
		break;
	default:
		return;
	}
	if (h->len < sizeof(struct kray_msg_exec))
		return;
	if (ws->in_task && !ws->cls) {
		/* Blocked in a get: this task can run elsewhere. */
		put_reject(k, body, h->len);
		return;
	}
	e = exec_new(KRAY_FRAME_NFDS(h->flags), h->len);
	if (!e) {
		/* Out of memory: the task is handed back, to run elsewhere or later. */
		put_reject(k, body, h->len);
		return;
	}
	memcpy(e->body, body, h->len);
	if (e->nfds) {
		int *fds = kc_frame_fds(k, h);

		for (unsigned i = 0; i < e->nfds; i++) {
			e->fds[i] = fds[i];
			fds[i] = -1;
		}
	}
	e->next = NULL;
	if (ws->qtail)
		ws->qtail->next = e;
	else
		ws->qhead = e;
	ws->qtail = e;
}

/* Takes in every frame that has arrived (waiting for one if block).  Returns 0, or
 * -EPIPE when krayd closed the connection. */
static int take_frames(struct kray *k, bool block)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	int r;

	while ((r = kc_next_frame(k, block, &h, &body)) == 1) {
		/* Replies to kray_get_async() (an actor's threads get that way) go to it. */
		if (!kc_layers_take(k, &h, body))
			on_frame(k, &h, body);
		kc_consume(k, &h);
		block = false;
	}
	return r < 0 ? r : 0;
}

KRAY_EXPORT int kray_ctx_cancelled(kray_ctx *ctx)
{
	struct kray *k = kray_ctx_client(ctx);
	struct worker_state *ws = k ? k->ws : NULL;
	uintptr_t asked = kc_cancel_asked;
	bool hit = false;

	if (!ws)
		return 0;
	if (asked && asked == (uintptr_t)((uint64_t)ctx->task.owner << 32 | ctx->task.seq))
		return 1; /* a task krayd interrupted (KRAY_CANCEL_SIGNAL) */
	/* A method on the loop thread: CANCEL frames wait in the socket until it reads (one
	 * read, past the hint that nothing came: kc_next_frame()). */
	if (ctx->k && pthread_equal(pthread_self(), ws->loop)) {
		ctx->k->in_short = false;
		if (take_frames(ctx->k, false))
			return 0; /* krayd is gone: the loop sees it after the call */
	}
	pthread_mutex_lock(&ws->stopped_mu);
	for (unsigned i = 0; i < STOPPED_MAX && !hit; i++)
		hit = !memcmp(&ws->stopped[i], &ctx->task, sizeof(ctx->task)) &&
		      (ctx->task.owner || ctx->task.seq);
	pthread_mutex_unlock(&ws->stopped_mu);
	return hit;
}

static struct exec *pop(struct worker_state *ws)
{
	struct exec *e = ws->qhead;

	if (e) {
		ws->qhead = e->next;
		if (!ws->qhead)
			ws->qtail = NULL;
	}
	return e;
}

/* Answers the fast task whose exec body starts at exec NOT_RUN: the driver takes the
 * daemon path. */
static void refuse_fast(struct kray *k, const void *exec)
{
	struct kray_msg_exec m;
	struct kbuf none = { 0 };

	memcpy(&m, exec, sizeof(m));
	kc_fast_reply(k, &none, &m.task, NULL);
}

/* Queues the fast task whose exec body is in *body (taken): it goes first. */
static void queue_fast(struct kray *k, struct kbuf *body)
{
	struct worker_state *ws = k->ws;
	struct exec *e;

	if (body->len < sizeof(struct kray_msg_exec)) {
		body->len = 0; /* cannot happen: the program (or kc_ring_take) checked it */
		return;
	}
	e = exec_new(0, 0);
	if (!e) { /* out of memory: the driver takes the daemon path */
		refuse_fast(k, body->data);
		body->len = 0;
		return;
	}
	e->body = (uint8_t *)body->data;
	e->body_apart = true;
	e->len = (uint32_t)body->len;
	e->fast = true;
	*body = (struct kbuf){ 0 };
	if (ws->cls && fast_actor_untrail(e)) { /* cannot happen: the program checked */
		refuse_fast(k, e->body);
		exec_free(e);
		return;
	}
	e->next = ws->qhead;
	ws->qhead = e;
	if (!ws->qtail)
		ws->qtail = e;
}

/* Takes in the fast tasks that arrived (at most one: the program claims this worker for
 * one at a time); they go first.  Returns 0: a broken fast connection only ends the fast
 * path here. */
static int take_fast(struct kray *k)
{
	struct kbuf body = { 0 };

	/* One recv; more only for what that one left in the buffer. */
	do {
		if (kc_fast_take(k, &body) != 1)
			break;
		queue_fast(k, &body);
	} while (k->fast_state == 1 && kbuf_pending(&k->fast_in));
	kbuf_free(&body);
	return 0;
}

/*
 * The idle wait when krayd runs the fast path's ring (ring.c): the worker sleeps on its
 * ring words, not in poll, and krayd bumps one after it sent the worker frames.  The
 * wait times out every 100 ms (5 ms while fast calls' counts are held) and reads the
 * socket anyway.
 */
static int wait_ring(struct kray *k)
{
	struct worker_state *ws = k->ws;
	int ev = kc_ring_wait(k, ws->counts.runs ? FAST_COUNT_NS / 1000000 + 1 : 100), r = 0;

	if (ev < 0)
		return ev;
	if (ev & KC_RING_REQ) {
		struct kbuf body = { 0 }, none = { 0 };
		struct kray_oid task;

		switch (kc_ring_take(k, &body, &task)) {
		case 1:
			queue_fast(k, &body);
			break;
		case 2: /* unfit to run: the caller takes the daemon path */
			kc_fast_reply(k, &none, &task, NULL);
			break;
		}
		kbuf_free(&body);
	}
	if (ev & KC_RING_KRAYD) {
		if (fast_count_fd(k) >= 0 && ws->counts.runs) {
			fast_count_due(k);
			r = kc_flush(k);
		}
		k->in_short = false; /* krayd sent something, or the safety timeout: read */
		if (!r)
			r = take_frames(k, false);
	}
	return r;
}

/*
 * Takes in what krayd and the fast path sent, waiting for something if block.  The fast
 * connection is looked at only when the worker would sleep: a fast task comes only to an
 * idle worker (the program claims it), so a worker with tasks queued pays nothing for it.
 */
static int wait_frames(struct kray *k, bool block)
{
	struct worker_state *ws = k->ws;
	int r;

	if (k->fast_state != 1 || !block)
		return take_frames(k, block);
	/* Bytes already received may hold whole frames: those first, then sleep on both
	 * connections (poll reports anything that arrives meanwhile, so no read is needed
	 * before it: an idle worker makes two system calls per fast task, as a ping-pong). */
	r = kbuf_pending(&k->in) ? take_frames(k, false) : 0;
	while (!r && !ws->qhead && !ws->stop && k->fast_state == 1 && k->ring)
		r = wait_ring(k);
	while (!r && !ws->qhead && !ws->stop && k->fast_state == 1) {
		struct pollfd p[3] = { { .fd = k->fd, .events = POLLIN },
				       { .fd = k->fast_fd, .events = POLLIN },
				       { .fd = fast_count_fd(k), .events = POLLIN } };

		if (poll(p, p[2].fd >= 0 ? 3 : 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		k->in_short = false; /* poll() said what came: read what it reports */
		if (p[2].fd >= 0 && p[2].revents) { /* the fast calls' counts are due at krayd */
			fast_count_due(k);
			r = kc_flush(k);
		}
		if (p[1].revents)
			take_fast(k);
		if (!r && p[0].revents)
			r = take_frames(k, false);
	}
	if (!r && k->fast_state != 1 && !ws->qhead && !ws->stop)
		r = take_frames(k, true); /* the fast connection broke: krayd's only */
	return r;
}

static void run_call(struct kray *k, struct call *c)
{
	uint32_t job = k->job;

	k->job = c->x.m.job;
	k->ws->in_task = true;
	call_execute(c);
	k->ws->in_task = false;
	k->job = job;
	call_finish(k, c);
}

/* A fast task: run as any other, but its RESULT is the fast answer (kc_fast_reply). */
static void run_fast(struct kray *k, struct exec *e)
{
	struct worker_state *ws = k->ws;
	struct kbuf res = { 0 };
	struct kc_fast_ran ran = { 0 };
	struct kray_msg_exec m;
	char name[KRAY_NAME_MAX];
	struct call *c;

	memcpy(&m, e->body, sizeof(m));
	/* The function's name, for krayd's count (call_prepare() checks the frame). */
	if (e->len < sizeof(m) + m.name_len)
		m.name_len = 0;
	memcpy(name, e->body + sizeof(m), m.name_len);
	/* An actor call runs only after the caller's previous call to it ran here; else the
	 * driver sends it to krayd, behind that one (fast_actor.c). */
	if (e->actor_call) {
		if (!fast_actor_in_order(ws, &m.task, e->after_seq)) {
			exec_free(e);
			kc_fast_reply(k, &res, &m.task, NULL); /* NOT_RUN */
			return;
		}
		fast_actor_ran(ws, &m.task);
	}
	/* krayd sends every driver's code path to fast workers; it may still be on its way
	 * (a read, whatever the last one suggested). */
	if (!code_job(ws, m.job)) {
		k->in_short = false;
		take_frames(k, false);
	}
	if (code_job(ws, m.job)) {
		ws->results = &res;
		c = call_prepare(k, e);
		if (c)
			run_call(k, c);
		ws->results = NULL;
	} else {
		exec_free(e); /* unknown job: the driver submits it to krayd instead */
	}
	kc_fast_reply(k, &res, &m.task, &ran);
	kbuf_free(&res);
	fast_count_add(k, name, m.name_len, &m.task, m.job, &ran);
}

static void on_cancel_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_code == SI_QUEUE)
		kc_cancel_asked = (uintptr_t)si->si_value.sival_ptr;
}

/* Runs one call on this thread; its nested tasks belong to its job. */
static void run_here(struct kray *k, struct exec *e)
{
	struct call *c;

	if (e->fast) {
		run_fast(k, e);
		return;
	}
	if (k->ws->cls && e->len >= sizeof(struct kray_msg_exec)) {
		struct kray_oid task;

		memcpy(&task, e->body, sizeof(task)); /* kray_msg_exec starts with it */
		fast_actor_ran(k->ws, &task);
	}
	/* krayd gave this pool worker an actor to host (core/actor.c, "adopt"): its pool fast
	 * connection, claimable for plain tasks, is let go first (krayd already took it off
	 * the path); once constructed it asks again, as an actor's worker. */
	if (!k->ws->cls && k->fast_state == 1 && e->len >= sizeof(struct kray_msg_exec)) {
		struct kray_msg_exec m;

		memcpy(&m, e->body, sizeof(m));
		if (m.ctor && k->ws->counts.runs)
			fast_count_put(k); /* the pool's fast calls, counted before it goes */
		if (m.ctor)
			kc_fast_worker_close(k);
	}
	c = call_prepare(k, e);
	if (c)
		run_call(k, c);
}

/* The connection's lock, when the actor shares it with its threads (kray_ctx_host). */
static void conn_lock(struct worker_state *ws)
{
	if (ws->hopts.lock)
		ws->hopts.lock(ws->hopts.arg);
}

static void conn_unlock(struct worker_state *ws)
{
	if (ws->hopts.unlock)
		ws->hopts.unlock(ws->hopts.arg);
}

/*
 * An actor with method threads, or a deferred host: hand calls over, send what they
 * finished, run the callbacks of its threads' gets.  The connection is used under the
 * shared lock; the calls are handed over outside it, since a deferred host runs them on
 * this thread and they may take the lock themselves.
 */
static int host_turn(struct kray *k)
{
	struct worker_state *ws = k->ws;
	struct call *c, *ready = NULL, **tail = &ready;
	struct exec *e;
	int r = 0;

	conn_lock(ws);
	/* Frames another thread read but left in the buffer: poll() cannot see them. */
	if (kbuf_pending(&k->in))
		r = take_frames(k, false);
	while ((e = pop(ws))) {
		c = call_prepare(k, e);
		if (c) {
			c->next = NULL;
			*tail = c;
			tail = &c->next;
		}
	}
	while ((c = host_done(ws->host)))
		call_finish(k, c);
	kc_async_run(k);
	if (!r && kc_flush(k))
		r = -EPIPE;
	kray_ref cancels[16];
	unsigned ncancels = ws->ncancels < 16 ? ws->ncancels : 16;

	if (ncancels) {
		memcpy(cancels, ws->cancels, ncancels * sizeof(*cancels));
		memmove(ws->cancels, ws->cancels + ncancels,
			(ws->ncancels - ncancels) * sizeof(*cancels));
		ws->ncancels -= ncancels;
	}
	conn_unlock(ws);
	while ((c = ready)) {
		ready = c->next;
		host_submit(ws->host, c);
	}
	for (unsigned i = 0; i < ncancels; i++)
		ws->hopts.cancel(ws->hopts.arg, cancels[i]);
	if (ws->ncancels) /* more than one turn's worth: the next turn at once */
		host_wake(ws->host);
	if (r || (ws->stop && !host_busy(ws->host)))
		return r;
	struct pollfd p[2] = { { .fd = k->fd, .events = POLLIN },
			       { .fd = host_fd(ws->host), .events = POLLIN } };

	if (ws->hopts.wait) {
		int fds[2] = { p[0].fd, p[1].fd };

		/* The language host's event loop runs until one is readable. */
		ws->hopts.wait(ws->hopts.arg, fds, 2);
		p[0].revents = POLLIN; /* a read that finds nothing costs one recv */
	} else if (poll(p, 2, -1) < 0 && errno != EINTR) {
		return -errno;
	}
	if (p[0].revents) {
		conn_lock(ws);
		k->in_short = false; /* poll() (or the host's wait) said something came */
		r = take_frames(k, false);
		conn_unlock(ws);
	}
	return r;
}

/*
 * A worker of a krayd with worker-user set starts as root (krayd's user) and becomes that
 * user here, before it reads a byte from krayd or loads any job code: no supplementary
 * groups, then the group, then the user (which drops every capability), and no way back
 * (no_new_privs; setuid(0) must fail).  Returns 0, or -1 with a message.
 */
static int become_worker_user(void)
{
	const char *u = getenv("KRAY_WORKER_UID"), *g = getenv("KRAY_WORKER_GID");
	uid_t uid;
	gid_t gid;

	if (!u || !g)
		return 0;
	uid = (uid_t)strtoul(u, NULL, 10);
	gid = (gid_t)strtoul(g, NULL, 10);
	if ((getuid() == 0 && setgroups(0, NULL)) || setresgid(gid, gid, gid) ||
	    setresuid(uid, uid, uid)) {
		fprintf(stderr, "kray-worker: cannot become uid %u gid %u: %s\n", (unsigned)uid,
			(unsigned)gid, strerror(errno));
		return -1;
	}
	if (uid != 0 && setuid(0) == 0) {
		fprintf(stderr, "kray-worker: could become root again after dropping to %u\n",
			(unsigned)uid);
		return -1;
	}
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	return 0;
}

/*
 * Whether to look at krayd's socket before the next queued task.  With tasks queued,
 * what krayd sends meanwhile (more tasks, a cancel of a queued one) can wait a little: a
 * non-blocking read that finds nothing costs a system call per task, most of a short
 * task's cost.  So the socket is read at most every WORKER_LOOK_NS while the queue lasts
 * (after every task when tasks take longer than that), and frames already received are
 * always taken first.
 */
#define WORKER_LOOK_NS 50000

static bool look_due(struct kray *k)
{
	struct worker_state *ws = k->ws;
	uint64_t now;

	if (kbuf_pending(&k->in))
		return true;
	now = (uint64_t)kc_mono_ns();
	if (ws->qhead && !ws->stop && now - ws->looked_ns < WORKER_LOOK_NS)
		return false;
	ws->looked_ns = now;
	if (ws->qhead)
		k->in_short = false; /* a look on the timer reads: krayd may have sent more */
	return true;
}

KRAY_EXPORT int kray_worker_main(int argc, char **argv)
{
	const char *sockfd = getenv("KRAY_SOCKET_FD"), *id = getenv("KRAY_WORKER_ID");
	const char *ppid = getenv("KRAY_PARENT_PID");
	struct worker_state ws = { .counts.tfd = -1, .stopped_mu = PTHREAD_MUTEX_INITIALIZER };
	struct kray k = { .fd = -1,
			  .kmod_fd = -1,
			  .uffd = -1,
			  .ws = &ws,
			  .on_frame = on_frame,
			  .wake = wake_loop };
	int r;

	ws.loop = pthread_self();
	kc_layers_init(&k);
	(void)argc;
	(void)argv;
	if (!sockfd || !id) {
		fprintf(stderr, "kray-worker: started by krayd only (KRAY_SOCKET_FD, "
				"KRAY_WORKER_ID)\n");
		return 2;
	}
	/* Die with krayd, even if it is SIGKILLed. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* krayd asks a language host to interrupt a cancelled task with this signal (see
	 * KRAY_CANCEL_SIGNAL); a C task cannot be interrupted and runs on, but one that has
	 * not started fails instead (kc_cancel_asked). */
	struct sigaction sa = { .sa_sigaction = on_cancel_signal, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(KRAY_CANCEL_SIGNAL, &sa, NULL);
	if (ppid && getppid() != (pid_t)atoi(ppid))
		return 1;
	if (become_worker_user())
		return 1;
	/* krayd's socketpair end: no access to its socket needed */
	k.fd = atoi(sockfd);
	fcntl(k.fd, F_SETFD, FD_CLOEXEC); /* not for the processes tasks start */
	r = kc_hello(&k, KRAY_ROLE_WORKER, (uint32_t)strtoul(id, NULL, 10), NULL);
	if (r) {
		fprintf(stderr, "kray-worker: %s\n", k.err);
		kc_close(&k);
		return 1;
	}
	kc_lazy_uffd(&k); /* (lazy gets: lazy.c) */
	/* Pool workers take fast tasks too; krayd refuses an actor's worker (or any, with
	 * the fast path off), which then works as before. */
	kc_fast_worker_open(&k);
	/* krayd's warm-code-path: loaded now, so its kray_warm() is not paid by a call. */
	if (getenv("KRAY_WARM_PATH") && *getenv("KRAY_WARM_PATH"))
		code_preload(&ws, getenv("KRAY_WARM_PATH"));
	for (;;) {
		if (ws.host) {
			r = host_turn(&k);
		} else {
			r = look_due(&k) ? wait_frames(&k, !ws.qhead && !ws.stop) : 0;
			if (!r && ws.qhead)
				run_here(&k, pop(&ws));
			/* A plain synchronous actor (one method at a time, no host of its own)
			 * takes its callers' fast calls, once constructed (fast_actor.c). */
			if (!r && ws.cls && !ws.host && !ws.fast_asked) {
				ws.fast_asked = true;
				k.fast_state = 0;
				kc_fast_worker_open(&k);
			}
			/* Fast calls' counts go with what the worker sends krayd anyway. */
			if (!r && !ws.qhead && ws.counts.runs && kbuf_pending(&k.out))
				fast_count_put(&k);
			if (!r && !ws.qhead)
				r = kc_flush(&k);
		}
		if (r)
			break; /* krayd closed the connection: time to go */
		if (ws.nomem) {
			fprintf(stderr,
				"kray-worker: out of memory for a task's answer: exiting\n");
			break;
		}
		if (ws.stop && !ws.qhead && !(ws.host && host_busy(ws.host)))
			break;
	}
	if (!r && ws.counts.runs) { /* the last fast calls' counts, if krayd still listens */
		fast_count_put(&k);
		kc_flush(&k);
	}
	fast_count_fini(&k);
	/* An actor that ends normally runs its destructor; a killed one never gets here. */
	host_stop(ws.host);
	if (ws.stop && ws.self && ws.dtor)
		ws.dtor(ws.self);
	free(ws.self);
	free(ws.cancels);
	while (ws.qhead)
		exec_free(pop(&ws));
	code_fini(&ws);
	kc_close(&k);
	return 0;
}
