// SPDX-License-Identifier: Apache-2.0
/*
 * The fast path's shared-memory ring (`fastpath-ring = on`, include/uapi/kray_ring.h,
 * docs/fastpath.md "The ring"): a synchronous call from a driver to an idle worker on
 * this node through shared memory and futex wake-ups, instead of the BPF program's
 * socket redirects.  The frames are the socket fast path's (fast.c builds and reads
 * them); this file moves them.
 *
 * Driver: claims an idle worker in its mapping of `fast_workers` exactly as the program
 * does (IDLE -> CLAIMING, the entry written, -> FAST), so that krayd's scheduler, `kray
 * top` and krayd's reaper see the same claim.  A plain actor's call claims that actor's
 * worker only (the entry whose `actor` names it), as the program's claim_actor() does;
 * the per-caller order against calls that went through krayd is kept as on the socket
 * (fast_actor.c: the trailer's after_seq, checked by the worker).  It sets its result
 * area's `want` to the call's sequence number, writes the FAST_EXEC frame into the
 * worker's request area, bumps the worker's req_seq and wakes it if it sleeps, then
 * sleeps on its own res_seq.
 *
 * Worker: sleeps in futex_waitv on its req_seq and kd_seq (krayd bumps that one after it
 * sent the worker frames), checks a request against its `fast_workers` entry (claimed
 * FAST, for that driver and task) and runs it as a socket fast task.  The answer goes
 * into the driver's result area if the driver still waits (want: seq -> seq|BUSY), the
 * worker gives itself back (FAST -> IDLE) and publishes res_seq.  A driver that gave up
 * (its get timed out: want seq -> 0 first) gets the answer on its fast connection
 * through the program, as a late socket call's.  A worker that dies is reported in the
 * result area by krayd (bpf_ring.c).  Either way every claimed call ends in exactly one
 * answer, and the driver checks that it names its task.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "../include/uapi/kray_ring.h"

#define FW_LEN (KRAY_FAST_WORKERS * sizeof(struct kray_fast_worker))

/*
 * Before it sleeps on a futex word, each side polls it for up to RING_POLL_US
 * (KRAY_FAST_RING_POLL_US in the environment; 0: sleep at once), calling sched_yield()
 * between rounds of a few looks: a driver waiting for its answer, a worker for its next
 * request.  A synchronous caller's answer, or its next call, mostly comes within that
 * time, and is then taken without the sleep and the wake-up, which cost more than the
 * polling on a virtual machine (a context switch each way).  Yielding lets the other side
 * of the call run when both share a CPU.  A worker whose wait timed out with nothing
 * come (idle) does not poll before its next.
 *
 * Polling pays only while the CPU is otherwise idle.  When another thread wants it (a
 * busy machine), a yield hands it that thread's whole time slice (milliseconds), where a
 * sleeper's wake-up would have preempted it at once: a bare spin made calls 10-20x
 * slower on a loaded 2-CPU machine, and so did this polling, until it learnt to stop.  So
 * a round that comes back more than RING_POLL_GAP_NS after the last (this thread was
 * off the CPU) ends the polling at once, and none is done for a while: 10 ms at first,
 * doubled at each such round up to 1 s, and back to 10 ms once polling has gone on
 * undisturbed for RING_POLL_CALM_NS.  On a machine that stays busy, one poll a second
 * hands the CPU away.  docs/fastpath.md "The ring" has the figures.
 */
#define RING_POLL_US 100
#define RING_POLL_GAP_NS 50000
#define RING_POLL_BACKOFF_MIN_NS 10000000LL
#define RING_POLL_BACKOFF_MAX_NS 1000000000LL
#define RING_POLL_CALM_NS 1000000000LL

struct kc_ring {
	uint8_t *base;
	struct kray_fast_worker *fw; /* `fast_workers`, mapped */
	uint32_t seq; /* driver: the last call's sequence number */
	unsigned spin; /* polls of a futex word before sleeping (KRAY_FAST_RING_SPIN) */
	int64_t poll_ns; /* then polls, yielding the CPU, this long (KRAY_FAST_RING_POLL_US) */
	/* No polling until poll_off_until: a poll found the CPU busy, and each that did
	 * turned polling off twice as long as the last (poll_backoff). */
	int64_t poll_off_until, poll_backoff;
	/* worker */
	uint32_t req_seen, kd_seen;
	bool idle; /* the last wait timed out with nothing come: no polling before the next */
	bool serving; /* the fast task running came on the ring */
	uint32_t serve_driver, serve_seq;
};

static struct kray_ring_worker *warea(struct kc_ring *r, unsigned slot)
{
	return (struct kray_ring_worker *)(r->base + KRAY_RING_WORKER_OFF(slot));
}

static struct kray_ring_driver *darea(struct kc_ring *r, unsigned slot)
{
	return (struct kray_ring_driver *)(r->base + KRAY_RING_DRIVER_OFF(slot));
}

static uint32_t ld(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void st(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static bool cas(uint32_t *p, uint32_t from, uint32_t to)
{
	return __atomic_compare_exchange_n(p, &from, to, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static void wake(uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int kc_ring_map(struct kray *k, const int *fds)
{
	struct kc_ring *r = calloc(1, sizeof(*r));
	const char *spin = getenv("KRAY_FAST_RING_SPIN");

	if (!r)
		return -ENOMEM;
	r->base = mmap(NULL, KRAY_RING_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (r->base == MAP_FAILED) {
		free(r);
		return -errno;
	}
	r->fw = mmap(NULL, FW_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	if (r->fw == MAP_FAILED) {
		int e = -errno;

		munmap(r->base, KRAY_RING_LEN);
		free(r);
		return e;
	}
	r->spin = spin ? (unsigned)strtoul(spin, NULL, 10) : 0;
	spin = getenv("KRAY_FAST_RING_POLL_US");
	r->poll_ns = (spin ? (int64_t)strtoul(spin, NULL, 10) : RING_POLL_US) * 1000;
	k->ring = r;
	return 0;
}

void kc_ring_unmap(struct kray *k)
{
	struct kc_ring *r = k->ring;

	if (!r)
		return;
	munmap(r->base, KRAY_RING_LEN);
	munmap(r->fw, FW_LEN);
	free(r);
	k->ring = NULL;
}

/* ---- the driver ------------------------------------------------------------------------ */

/* Claims an idle worker for task as the program's claim() does: its slot, or -1. */
static int claim(struct kc_ring *r, uint32_t driver, const struct kray_oid *task)
{
	for (unsigned i = 0; i < KRAY_FAST_WORKERS; i++) {
		struct kray_fast_worker *w = &r->fw[i];

		if (ld(&w->state) != KRAY_FW_IDLE || w->actor.index || /* (tasks only) */
		    !cas(&w->state, KRAY_FW_IDLE, KRAY_FW_CLAIMING))
			continue;
		w->driver = driver;
		memcpy(&w->task, task, sizeof(*task));
		w->start_ns = (uint64_t)kc_mono_ns();
		/* Only now FAST: krayd, finding a dead worker FAST, reads a whole entry. */
		if (!cas(&w->state, KRAY_FW_CLAIMING, KRAY_FW_FAST))
			return -1; /* krayd retired it meanwhile */
		__atomic_fetch_add(&w->tasks, 1, __ATOMIC_RELAXED);
		return (int)i;
	}
	return -1;
}

static bool names(const struct kray_fast_worker *w, const struct kray_oid *actor)
{
	return !memcmp(&w->actor, actor, sizeof(*actor));
}

/* Claims the worker of actor for task, as the program's claim_actor() does, but found by
 * the entries' `actor` (krayd keeps actors out of the program's `fast_actors` map with
 * the ring on), the slot remembered per actor: its slot, -1 if it is busy (or krayd holds
 * it for calls of its own: they go first), -2 if the actor has no worker in the map (not
 * plain, not on this node, not constructed yet, restarting). */
static int claim_actor(struct kray *k, uint32_t driver, const struct kray_oid *task,
		       const struct kray_oid *actor)
{
	struct kc_ring *r = k->ring;
	uint32_t *hint = kc_fast_actor_ring_slot(k, actor);
	struct kray_fast_worker *w;

	if (!hint)
		return -2; /* cannot happen: kc_fast_actor_ok() said yes */
	if (!*hint || *hint > KRAY_FAST_WORKERS || ld(&r->fw[*hint - 1].state) == KRAY_FW_OFF ||
	    !names(&r->fw[*hint - 1], actor)) {
		*hint = 0;
		for (unsigned i = 0; i < KRAY_FAST_WORKERS && !*hint; i++)
			if (ld(&r->fw[i].state) != KRAY_FW_OFF && names(&r->fw[i], actor))
				*hint = i + 1;
		if (!*hint)
			return -2;
	}
	w = &r->fw[*hint - 1];
	if (!cas(&w->state, KRAY_FW_IDLE, KRAY_FW_CLAIMING))
		return -1;
	/* Ours now, so its `actor` holds still: a slot that changed hands since we looked
	 * (the actor's worker died and another took it) is given back. */
	if (!names(w, actor)) {
		cas(&w->state, KRAY_FW_CLAIMING, KRAY_FW_IDLE);
		*hint = 0;
		return -1;
	}
	w->driver = driver;
	memcpy(&w->task, task, sizeof(*task));
	w->start_ns = (uint64_t)kc_mono_ns();
	if (!cas(&w->state, KRAY_FW_CLAIMING, KRAY_FW_FAST))
		return -1; /* krayd retired it meanwhile (the worker died) */
	__atomic_fetch_add(&w->tasks, 1, __ATOMIC_RELAXED);
	return (int)(*hint - 1);
}

/* The actor a FAST_EXEC frame (len bytes, header included) is for, from its trailer
 * (fast_actor.c): 1 and *ret for an actor call, 0 for a task, -1 for an actor call too
 * short to hold the trailer. */
static int actor_of(const uint8_t *frame, size_t len, struct kray_oid *ret)
{
	struct kray_msg_fast f;
	struct kray_msg_fast_actor t;
	const size_t pre = sizeof(struct kray_frame_hdr);

	memcpy(&f, frame + pre, sizeof(f));
	if (!(f.flags & KRAY_FAST_ACTOR))
		return 0;
	if (len < pre + sizeof(f) + sizeof(struct kray_msg_exec) + sizeof(t))
		return -1;
	memcpy(&t, frame + len - sizeof(t), sizeof(t));
	*ret = t.actor;
	return 1;
}

static int64_t ld64(const int64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static void st64(int64_t *p, int64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* Polls *a != va or *b != vb for up to r->poll_ns, yielding the CPU between rounds,
 * unless the CPU was found busy lately (RING_POLL_US): true if one changed. */
static bool poll_words(struct kc_ring *r, const uint32_t *a, uint32_t va, const uint32_t *b,
		       uint32_t vb)
{
	int64_t now, prev, end, back;

	if (r->poll_ns <= 0)
		return false;
	now = kc_mono_ns();
	if (now < ld64(&r->poll_off_until))
		return false;
	end = now + r->poll_ns;
	for (;;) {
		for (unsigned i = 0; i < 16; i++) {
			if (ld(a) != va || ld(b) != vb)
				return true;
			__builtin_ia32_pause();
		}
		sched_yield();
		prev = now;
		now = kc_mono_ns();
		if (now - prev > RING_POLL_GAP_NS) {
			/* Another thread had this CPU: polling on would hand it more. */
			back = ld64(&r->poll_backoff);
			if (now - ld64(&r->poll_off_until) > RING_POLL_CALM_NS)
				back = 0; /* polled undisturbed that long: start again */
			if (back < RING_POLL_BACKOFF_MIN_NS)
				back = RING_POLL_BACKOFF_MIN_NS;
			else if (back < RING_POLL_BACKOFF_MAX_NS / 2)
				back *= 2;
			else
				back = RING_POLL_BACKOFF_MAX_NS;
			st64(&r->poll_backoff, back);
			st64(&r->poll_off_until, now + back);
			return ld(a) != va || ld(b) != vb;
		}
		if (now >= end)
			return false;
	}
}

/* Sleeps while *word == v, until deadline (ns; -1: none).  -ETIMEDOUT or 0 (look again). */
static int sleep_on(struct kc_ring *r, uint32_t *word, uint32_t v, int64_t deadline)
{
	struct timespec ts, *tp = NULL;

	for (unsigned i = 0; i < r->spin; i++) {
		if (ld(word) != v)
			return 0;
		__builtin_ia32_pause();
	}
	if (poll_words(r, word, v, word, v))
		return 0;
	if (deadline >= 0) {
		int64_t left = deadline - kc_mono_ns();

		if (left <= 0)
			return -ETIMEDOUT;
		ts = (struct timespec){ left / 1000000000, left % 1000000000 };
		tp = &ts;
	}
	if (syscall(SYS_futex, word, FUTEX_WAIT, v, tp, NULL, 0) && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

/* How long a driver sleeps before it looks whether krayd is still there. */
#define RING_SLICE_NS (250 * 1000000LL)

/* Whether the other end of the fast connection (krayd's) has gone. */
static bool hung_up(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR | POLLNVAL));
}

/* The answer is in (res_seq == seq): copied out.  1. */
static int take_answer(struct kray_ring_driver *dr, struct kbuf *ret_frame)
{
	uint32_t len = ld(&dr->res_len);

	if (len > KRAY_FAST_FRAME_MAX)
		len = 0; /* cannot happen: an empty frame is malformed, and says so */
	ret_frame->len = ret_frame->off = 0;
	kbuf_put(ret_frame, dr->res, len);
	st(&dr->want, 0);
	return ret_frame->nomem ? -ENOMEM : 1;
}

int kc_ring_call(struct kray *k, const struct kbuf *exec, const struct kray_oid *task,
		 int64_t deadline, struct kbuf *ret_frame)
{
	struct kc_ring *r = k->ring;
	struct kray_ring_driver *dr = darea(r, k->fast_slot);
	struct kray_ring_worker *wa;
	struct kray_oid actor;
	uint32_t seq, v;
	int slot;

	if (exec->len > KRAY_FAST_FRAME_MAX)
		return 0;
	slot = actor_of(exec->data, exec->len, &actor) > 0 ?
		       claim_actor(k, k->fast_slot, task, &actor) :
		       claim(r, k->fast_slot, task);
	if (slot < 0) {
		if (slot == -2)
			kc_fast_actor_no_worker(k, &actor); /* the next calls: krayd's path */
		__atomic_fetch_add(&dr->bounced, 1, __ATOMIC_RELAXED);
		return 0;
	}
	__atomic_fetch_add(&dr->calls, 1, __ATOMIC_RELAXED);
	/* A new slot's first: well away from what a previous driver of it used, so that
	 * the answer of one of its calls still in flight cannot be mistaken for ours (the
	 * task id is checked too). */
	if (!r->seq)
		r->seq = ld(&dr->res_seq) + 0x10000;
	seq = r->seq = ((r->seq + 1) & KRAY_RING_SEQ_MASK) ?: 1;
	st(&dr->want, seq);
	wa = warea(r, (unsigned)slot);
	memcpy(wa->req, exec->data, exec->len);
	st(&wa->req_len, (uint32_t)exec->len);
	st(&wa->driver, k->fast_slot);
	st(&wa->seq, seq);
	__atomic_fetch_add(&wa->req_seq, 1, __ATOMIC_SEQ_CST);
	if (ld(&wa->sleeping))
		wake(&wa->req_seq);
	for (;;) {
		int64_t now, slice;

		v = ld(&dr->res_seq);
		if (v == seq)
			return take_answer(dr, ret_frame);
		/* Sleeps in slices: krayd, which reports dead workers, may die too (and its
		 * workers with it), and then only the fast socket's hang-up says so. */
		now = kc_mono_ns();
		slice = deadline >= 0 && deadline - now < RING_SLICE_NS ? deadline :
									  now + RING_SLICE_NS;
		if (sleep_on(r, &dr->res_seq, v, slice) != -ETIMEDOUT)
			continue;
		if (slice != deadline && !hung_up(k->fast_fd))
			continue;
		if (cas(&dr->want, seq, 0))
			return slice == deadline ? -ETIMEDOUT : -EPIPE; /* the socket's turn */
		deadline = -1; /* being written (or krayd reports the worker dead): moments */
	}
}

/* ---- the worker ------------------------------------------------------------------------ */

static int waitv(struct kray_ring_worker *w, uint32_t req, uint32_t kd, int timeout_ms)
{
	struct futex_waitv v[2] = {
		{ .val = req, .uaddr = (uintptr_t)&w->req_seq, .flags = FUTEX_32 },
		{ .val = kd, .uaddr = (uintptr_t)&w->kd_seq, .flags = FUTEX_32 },
	};
	struct timespec ts;
	int64_t at = kc_mono_ns() + (int64_t)timeout_ms * 1000000;

	ts = (struct timespec){ at / 1000000000, at % 1000000000 };
	return (int)syscall(SYS_futex_waitv, v, 2, 0, &ts, CLOCK_MONOTONIC);
}

int kc_ring_wait(struct kray *k, int timeout_ms)
{
	struct kc_ring *r = k->ring;
	struct kray_ring_worker *w = warea(r, k->fast_slot);

	for (unsigned i = 0;; i++) {
		uint32_t req = ld(&w->req_seq), kd = ld(&w->kd_seq);
		int ev = (req != r->req_seen ? KC_RING_REQ : 0) |
			 (kd != r->kd_seen ? KC_RING_KRAYD : 0);
		long rc;

		if (ev) {
			r->req_seen = req;
			r->kd_seen = kd;
			r->idle = false;
			return ev;
		}
		if (i < r->spin) {
			__builtin_ia32_pause();
			continue;
		}
		/* Not after a wait that timed out with nothing come: an idle worker sleeps. */
		if (i == r->spin && !r->idle && poll_words(r, &w->req_seq, req, &w->kd_seq, kd))
			continue;
		/* Dekker with the wakers: they bump, then look at sleeping. */
		st(&w->sleeping, 1);
		if (ld(&w->req_seq) == req && ld(&w->kd_seq) == kd) {
			rc = waitv(w, req, kd, timeout_ms);
			if (rc < 0 && errno != EAGAIN && errno != EINTR) {
				/* ETIMEDOUT: look anyway (a safety net, and the counts).  No
				 * futex_waitv (before Linux 5.16): poll every millisecond. */
				if (errno != ETIMEDOUT)
					usleep(1000);
				st(&w->sleeping, 0);
				r->idle = true;
				return KC_RING_KRAYD;
			}
		}
		st(&w->sleeping, 0);
	}
}

/* Frees this worker's claim, as the program does when the answer passes (give_back() in
 * bpf/fastpath.bpf.c): FAST -> IDLE, or FAST_DAEMON -> DAEMON.  krayd moves the entry
 * between those two meanwhile (it passes the worker a task, or that task's result came),
 * so a swap that lost to krayd is tried again from the state it found: two fixed swaps
 * missed it when it moved from FAST_DAEMON to FAST between them, and left it FAST for
 * good (never claimable again, a CPU slot krayd counted busy). */
static void give_back(struct kray *k)
{
	uint32_t *s = &k->ring->fw[k->fast_slot].state, v = ld(s);

	while (v == KRAY_FW_FAST || v == KRAY_FW_FAST_DAEMON) {
		uint32_t to = v == KRAY_FW_FAST ? KRAY_FW_IDLE : KRAY_FW_DAEMON;

		/* On failure v is what it found. */
		if (__atomic_compare_exchange_n(s, &v, to, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST))
			return;
	}
}

/* Whether the FAST_EXEC frame (len bytes) is for this worker of entry e: an actor's
 * worker runs only calls to its actor, a pool worker no actor's calls (as the program
 * steers them). */
static bool for_me(const struct kray_fast_worker *e, const uint8_t *frame, size_t len)
{
	struct kray_oid mine, to;
	int a = actor_of(frame, len, &to);

	memcpy(&mine, &e->actor, sizeof(mine));
	return a > 0 ? mine.index && oid_eq(&to, &mine) : !a && !mine.index;
}

int kc_ring_take(struct kray *k, struct kbuf *ret_body, struct kray_oid *ret_task)
{
	struct kc_ring *r = k->ring;
	struct kray_ring_worker *w = warea(r, k->fast_slot);
	struct kray_fast_worker *e = &r->fw[k->fast_slot];
	uint32_t s = ld(&e->state), len = ld(&w->req_len);
	struct kray_frame_hdr h;
	struct kray_msg_exec m;
	struct kray_oid task;
	const size_t pre = sizeof(h) + sizeof(struct kray_msg_fast);
	uint8_t *body;

	/* Claimed by a driver (the entry names it and the task), or a stray bump: nothing. */
	if (s != KRAY_FW_FAST && s != KRAY_FW_FAST_DAEMON)
		return 0;
	memcpy(&task, &e->task, sizeof(task));
	*ret_task = task;
	r->serving = true;
	r->serve_driver = ld(&w->driver);
	r->serve_seq = ld(&w->seq);
	if (r->serve_driver != e->driver || r->serve_driver >= KRAY_FAST_DRIVERS) {
		/* Not the claimant's request (another driver wrote over it): this worker goes
		 * back to work, and the claimant waits for its get's timeout. */
		r->serving = false;
		give_back(k);
		return 0;
	}
	body = malloc(KRAY_FAST_FRAME_MAX);
	if (!body)
		goto not_run;
	if (len > KRAY_FAST_FRAME_MAX || len < pre + sizeof(m))
		goto bad;
	memcpy(body, w->req, len); /* once: the driver may scribble, we read our copy */
	memcpy(&h, body, sizeof(h));
	memcpy(&m, body + pre, sizeof(m));
	if (wire_check_hdr(&h, KRAY_FAST_FRAME_MAX) || h.type != KRAY_MSG_FAST_EXEC ||
	    sizeof(h) + h.len != len || !oid_eq(&m.task, &task) || !for_me(e, body, len))
		goto bad;
	ret_body->len = ret_body->off = 0;
	kbuf_put(ret_body, body + pre, len - pre);
	free(body);
	if (ret_body->nomem) {
		ret_body->nomem = false;
		ret_body->len = 0;
		goto not_run;
	}
	return 1;
bad:
	free(body);
	/* Garbage from the claimant: it is told NOT_RUN (its call takes the daemon path). */
not_run:
	return 2;
}

int kc_ring_reply(struct kray *k, uint8_t *frame, size_t len)
{
	struct kc_ring *r = k->ring;
	struct kray_ring_driver *dr;
	const size_t tok = sizeof(struct kray_frame_hdr) + offsetof(struct kray_msg_fast, token);

	if (!r || !r->serving)
		return 0;
	r->serving = false;
	dr = darea(r, r->serve_driver);
	if (len > KRAY_FAST_FRAME_MAX ||
	    !cas(&dr->want, r->serve_seq, r->serve_seq | KRAY_RING_BUSY))
		return 0; /* the driver gave up: the socket path, through the program */
	memcpy(dr->res, frame, len);
	memset(dr->res + tok, 0, sizeof(uint64_t)); /* the driver never learns our token */
	st(&dr->res_len, (uint32_t)len);
	give_back(k); /* before the answer: the driver's next call finds us idle */
	st(&dr->res_seq, r->serve_seq);
	wake(&dr->res_seq);
	return 1;
}
