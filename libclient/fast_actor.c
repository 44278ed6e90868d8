// SPDX-License-Identifier: Apache-2.0
/*
 * Actor method calls on the BPF fast path (docs/fastpath.md, "Actor calls").
 *
 * A synchronous call to a plain actor (one method at a time, no host of its own) goes as
 * a FAST_EXEC with KRAY_FAST_ACTOR and a kray_msg_fast_actor trailer: the program steers
 * it only to that actor's worker (its `fast_actors` entry), and only while krayd holds
 * nothing for it (krayd claims the worker before it sends it calls, as for pool workers).
 *
 * Order per caller: the trailer names the caller's previous call to the actor
 * (after_seq).  The actor's worker runs the fast call only if it has run that one (it
 * notes the last call it ran of each caller); otherwise it answers NOT_RUN and the
 * driver submits the call to krayd, behind the earlier one.  A call that reached the
 * worker through krayd and one that came fast are thus never reordered, whatever krayd
 * has read of the driver's socket when the fast frame passes.
 *
 * Driver side: per actor this process got a handle to from krayd (created or looked up
 * by name; the program cannot check handles, krayd does on the daemon path), the handles
 * held, the seqs of its last two calls (and whether they may still wait in the output
 * buffer: a call behind one that does goes to krayd with it, not fast for a NOT_RUN), and
 * how many calls to skip after the program said the actor has no fast worker
 * (KRAY_FAST_NO_ACTOR; with the ring, after ring.c found none, where it also notes the
 * worker's slot that it found).  Calls to other actors, or after the last handle was
 * released, take the daemon path.  Worker side:
 * the last call run per caller.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "worker.h"

/* After a NO_ACTOR bounce, calls to that actor take the daemon path for a while before one
 * tries the fast path again: 1, then 3, 7, ... up to this many.  Its worker may still be
 * starting (a call right after the actor's creation) or restarting, or it is not a plain
 * actor, which then costs a bounce every NO_ACTOR_SKIP_MAX calls. */
#define NO_ACTOR_SKIP_MAX 255

struct kc_fast_actor {
	struct kray_oid actor;
	uint32_t last, prev; /* seqs of this caller's last two calls to it (0: none) */
	/* Whether their SUBMITs may still be in the output buffer: not flushed since, and not
	 * taken out for the fast path (a hint: wrong, it costs a NOT_RUN round trip). */
	bool last_queued, prev_queued;
	uint32_t skip; /* calls left before trying the fast path again */
	uint32_t backoff; /* the skip after the next NO_ACTOR bounce */
	uint32_t held; /* handles to it this process got from krayd and holds */
	uint32_t ring_slot; /* its worker's `fast_workers` slot + 1, as the ring last found
			     * it (ring.c); 0: not known */
};

static struct kc_fast_actor *find(struct kray *k, const kray_ref *actor, bool add)
{
	struct kc_fast_actor *a;

	for (size_t i = 0; i < k->fast_nactors; i++)
		if (!memcmp(&k->fast_actors[i].actor, actor, sizeof(*actor)))
			return &k->fast_actors[i];
	if (!add)
		return NULL;
	if (k->fast_nactors == k->fast_actors_cap) {
		size_t cap = k->fast_actors_cap ? 2 * k->fast_actors_cap : 8;

		a = realloc(k->fast_actors, cap * sizeof(*a));
		if (!a)
			return NULL;
		k->fast_actors = a;
		k->fast_actors_cap = cap;
	}
	a = &k->fast_actors[k->fast_nactors++];
	*a = (struct kc_fast_actor){ .backoff = 1 };
	memcpy(&a->actor, actor, sizeof(a->actor));
	return a;
}

void kc_fast_actor_called(struct kray *k, const kray_ref *actor, uint32_t seq)
{
	struct kc_fast_actor *a;

	if (k->ws || k->fast_state < 0)
		return;
	a = find(k, actor, false);
	if (a) {
		a->prev = a->last;
		a->prev_queued = a->last_queued;
		a->last = seq;
		a->last_queued = true;
	}
}

void kc_fast_actor_flushed(struct kray *k)
{
	for (size_t i = 0; i < k->fast_nactors; i++)
		k->fast_actors[i].last_queued = k->fast_actors[i].prev_queued = false;
}

void kc_fast_actor_held(struct kray *k, const kray_ref *actor)
{
	struct kc_fast_actor *a;

	if (k->ws || k->fast_state < 0)
		return;
	a = find(k, actor, true);
	if (a)
		a->held++;
	else
		k->fast_actors_lost = true; /* out of memory: no fast actor calls */
}

void kc_fast_actor_released(struct kray *k, const kray_ref *actor)
{
	struct kc_fast_actor *a = find(k, actor, false);

	/* The entry stays: its order is still needed if a handle comes back. */
	if (a && a->held)
		a->held--;
}

bool kc_fast_actor_ok(struct kray *k, const kray_ref *actor)
{
	struct kc_fast_actor *a = k->fast_actors_lost ? NULL : find(k, actor, false);

	if (!a || !a->held)
		return false;
	/* The caller's previous call to it is still in the output buffer (a pipelined call
	 * the flusher has not sent yet): the actor's worker, not having run it, would answer
	 * NOT_RUN, so this one goes to krayd with it at once, in the same write. */
	if (a->prev && a->prev_queued)
		return false;
	if (a->skip) {
		a->skip--;
		return false;
	}
	return true;
}

int kc_fast_actor_trailer(struct kray *k, const struct kray_oid *actor, uint32_t seq,
			  struct kbuf *b)
{
	struct kc_fast_actor *a = find(k, (const kray_ref *)actor, false);
	struct kray_msg_fast_actor t = { .actor = *actor };

	if (!a || a->last != seq)
		return -EINVAL; /* cannot happen: kc_submit noted it */
	a->last_queued = false; /* it goes fast, not to krayd */
	t.after_seq = a->prev;
	kbuf_put(b, &t, sizeof(t));
	return b->nomem ? -ENOMEM : 0;
}

void kc_fast_actor_bounced(struct kray *k, const uint8_t *body, size_t len)
{
	struct kray_msg_fast f;
	struct kray_msg_fast_actor t;

	if (len < sizeof(f) + sizeof(t))
		return;
	memcpy(&f, body, sizeof(f));
	if (!(f.flags & KRAY_FAST_ACTOR) || !(f.flags & KRAY_FAST_NO_ACTOR))
		return;
	memcpy(&t, body + len - sizeof(t), sizeof(t));
	kc_fast_actor_no_worker(k, &t.actor);
}

uint32_t *kc_fast_actor_ring_slot(struct kray *k, const struct kray_oid *actor)
{
	struct kc_fast_actor *a = find(k, (const kray_ref *)actor, false);

	return a ? &a->ring_slot : NULL;
}

void kc_fast_actor_no_worker(struct kray *k, const struct kray_oid *actor)
{
	struct kc_fast_actor *a = find(k, (const kray_ref *)actor, false);

	if (!a)
		return;
	a->ring_slot = 0;
	a->skip = a->backoff;
	a->backoff = a->backoff * 2 + 1;
	if (a->backoff > NO_ACTOR_SKIP_MAX)
		a->backoff = NO_ACTOR_SKIP_MAX;
}

void kc_fast_actor_free(struct kray *k)
{
	free(k->fast_actors);
	k->fast_actors = NULL;
	k->fast_nactors = k->fast_actors_cap = 0;
}

/* Worker side. */

void fast_actor_ran(struct worker_state *ws, const struct kray_oid *task)
{
	struct fast_actor_seen *s = ws->seen;
	unsigned n = ws->nseen, i;

	for (i = 0; i < n && (s[i].owner != task->owner || s[i].node != task->node); i++)
		;
	if (i == n) {
		if (n < FAST_ACTOR_SEEN)
			ws->nseen++;
		else
			i = ws->seen_next++ % FAST_ACTOR_SEEN; /* forgotten: it falls back */
		s[i].node = task->node;
		s[i].owner = task->owner;
	}
	s[i].seq = task->seq;
}

bool fast_actor_in_order(const struct worker_state *ws, const struct kray_oid *task,
			 uint32_t after_seq)
{
	if (!after_seq)
		return true; /* the caller's first call to it */
	for (unsigned i = 0; i < ws->nseen; i++)
		if (ws->seen[i].owner == task->owner && ws->seen[i].node == task->node)
			return ws->seen[i].seq >= after_seq; /* per caller, seqs only grow */
	return false;
}

int fast_actor_untrail(struct exec *e)
{
	struct kray_msg_fast_actor t;

	if (e->len < sizeof(struct kray_msg_exec) + sizeof(t))
		return -EBADMSG;
	memcpy(&t, e->body + e->len - sizeof(t), sizeof(t));
	e->len -= sizeof(t);
	e->actor_call = true;
	e->after_seq = t.after_seq;
	return 0;
}
