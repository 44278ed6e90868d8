// SPDX-License-Identifier: GPL-2.0
/*
 * fastpath: in-kernel dispatch of synchronous calls (issue 5, docs/fastpath.md).
 *
 * Every driver and pool worker that asks gets a second connection to krayd, a socketpair
 * whose krayd end sits in `fast_socks` with this sk_skb verdict program attached.  krayd
 * never reads those ends: everything written to them passes through here, one skb per
 * frame (AF_UNIX has no stream parser, so the peers write one frame per send and keep
 * frames under KRAY_FAST_FRAME_MAX).
 *
 *  - FAST_EXEC from a driver: claim an idle worker (IDLE -> CLAIMING, compare-and-swap,
 *    the same atomic krayd uses on its mapping of `fast_workers`), note which driver and
 *    task it runs, make it FAST, and send the frame out of that worker's connection.
 *    No idle worker: send the frame back to the driver, which then submits on the daemon
 *    path (a "bounce").
 *  - FAST_RESULT from a worker: give the worker back (FAST -> IDLE, or FAST_DAEMON ->
 *    DAEMON when krayd sent it tasks meanwhile) and send the frame to the driver noted.
 *
 * Senders prove their slot with its token (a secret krayd handed out with the
 * connection); the token is zeroed before a frame leaves, so a worker never learns a
 * driver's.  Anything malformed or unproven is dropped: only libkray writes here, and a
 * driver that forges frames only hurts itself.  The trade-off (docs/fastpath.md): each
 * redirected skb is sent from the psock's kworker, which halves a synchronous round trip
 * but is far slower than krayd's batching for pipelined calls, so libkray uses this path
 * only for a call that is waited on at once.
 */
/* The UAPI headers, not vmlinux.h: without CO-RE relocations libbpf need not parse the
 * kernel's BTF (about 140 ms) to load this object.  An sk_skb program reads only its
 * context and the packet, whose layout is UAPI. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "../include/uapi/kray_bpf.h"
#include "../include/uapi/kray_wire.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKMAP);
	__uint(max_entries, KRAY_FAST_DRIVERS + KRAY_FAST_WORKERS);
	__type(key, __u32);
	__type(value, __u64);
} fast_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KRAY_FAST_WORKERS);
	__type(key, __u32);
	__type(value, struct kray_fast_worker);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fast_workers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, KRAY_FAST_DRIVERS);
	__type(key, __u32);
	__type(value, struct kray_fast_driver);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fast_drivers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kray_fast_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fast_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KRAY_FAST_WORKERS);
	__type(key, struct kray_oid);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} fast_actors SEC(".maps");

/* Worker slots in use are below this (krayd raises it): the claim scans no further. */
__u32 nworkers = 0;

/* What the program reads of a fast frame: header, prefix, and the task id that starts
 * both kray_msg_exec and kray_msg_result. */
struct fast_head {
	struct kray_frame_hdr h;
	struct kray_msg_fast f;
	struct kray_oid task;
};

#define TOKEN_OFF (sizeof(struct kray_frame_hdr) + __builtin_offsetof(struct kray_msg_fast, token))

static __always_inline void count(__u64 *field)
{
	__sync_fetch_and_add(field, 1);
}

static __always_inline struct kray_fast_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&fast_stats, &zero);
}

/* Worker w (slot i), just moved to CLAIMING, takes the task of driver slot `driver`:
 * its slot, or -1. */
static __always_inline int take(struct kray_fast_worker *w, __u32 driver,
				const struct kray_oid *task, __u32 i)
{
	w->driver = driver;
	w->task = *task;
	w->start_ns = bpf_ktime_get_ns();
	/* Only now FAST: krayd, finding a dead worker FAST, reads a whole entry. */
	if (__sync_val_compare_and_swap(&w->state, KRAY_FW_CLAIMING, KRAY_FW_FAST) !=
	    KRAY_FW_CLAIMING)
		return -1; /* krayd retired it meanwhile (it died): send the task back */
	count(&w->tasks);
	return (int)i;
}

/* What claim_one() needs, on the caller's stack. */
struct claim {
	__u32 n; /* slots to look at */
	__u32 driver;
	struct kray_oid task;
	int found; /* the claimed slot, or -1 */
};

/* bpf_loop's body: tries slot i.  A callback is verified once, where a bounded loop over
 * KRAY_FAST_WORKERS slots was verified slot by slot (30,000 instructions, 20-170 ms of
 * every krayd's start). */
static long claim_one(__u32 i, void *data)
{
	struct claim *c = data;
	struct kray_fast_worker *w;
	__u32 key = i;

	if (i >= c->n)
		return 1;
	w = bpf_map_lookup_elem(&fast_workers, &key);
	/* An actor's worker runs only its actor's calls (claim_actor). */
	if (!w || w->state != KRAY_FW_IDLE || w->actor.index)
		return 0;
	if (__sync_val_compare_and_swap(&w->state, KRAY_FW_IDLE, KRAY_FW_CLAIMING) != KRAY_FW_IDLE)
		return 0; /* krayd (or another CPU) took it first */
	c->found = take(w, c->driver, &c->task, i);
	return 1;
}

/* Claims an idle pool worker for the task; returns its slot or -1. */
static __always_inline int claim(const struct fast_head *p)
{
	struct claim c = { .n = nworkers, .driver = p->f.slot, .task = p->task, .found = -1 };

	if (c.n > KRAY_FAST_WORKERS)
		c.n = KRAY_FAST_WORKERS;
	bpf_loop(KRAY_FAST_WORKERS, claim_one, &c, 0);
	return c.found;
}

/* The actor call's worker, claimed; -1: busy (or krayd holds it for its queue), -2: the
 * actor has no fast worker here. */
static __always_inline int claim_actor(struct __sk_buff *skb, const struct fast_head *p)
{
	struct kray_msg_fast_actor a;
	struct kray_fast_worker *w;
	__u32 *slot, key;

	if (skb->len < sizeof(struct kray_frame_hdr) + sizeof(struct kray_msg_fast) +
			       sizeof(struct kray_msg_exec) + sizeof(a) ||
	    bpf_skb_load_bytes(skb, skb->len - sizeof(a), &a, sizeof(a)))
		return -2;
	slot = bpf_map_lookup_elem(&fast_actors, &a.actor);
	if (!slot)
		return -2;
	key = *slot;
	if (key >= KRAY_FAST_WORKERS)
		return -2;
	w = bpf_map_lookup_elem(&fast_workers, &key);
	/* The entry says whose worker it is: a stale or forged mapping steers nothing. */
	if (!w || w->actor.index != a.actor.index || w->actor.seq != a.actor.seq ||
	    w->actor.owner != a.actor.owner || w->actor.node != a.actor.node)
		return -2;
	if (__sync_val_compare_and_swap(&w->state, KRAY_FW_IDLE, KRAY_FW_CLAIMING) != KRAY_FW_IDLE)
		return -1;
	return take(w, p->f.slot, &p->task, key);
}

static __always_inline int on_exec(struct __sk_buff *skb, const struct fast_head *p,
				   struct kray_fast_stats *st)
{
	__u32 slot = p->f.slot;
	struct kray_fast_driver *drv;
	__u64 zero = 0;
	int w;

	if (slot >= KRAY_FAST_DRIVERS)
		return -1;
	drv = bpf_map_lookup_elem(&fast_drivers, &slot);
	if (!drv || !drv->token || drv->token != p->f.token)
		return -1;
	if (bpf_skb_store_bytes(skb, TOKEN_OFF, &zero, sizeof(zero), 0))
		return -1;
	w = p->f.flags & KRAY_FAST_ACTOR ? claim_actor(skb, p) : claim(p);
	if (w == -2) {
		__u32 flags = p->f.flags | KRAY_FAST_NO_ACTOR;

		if (bpf_skb_store_bytes(skb,
					sizeof(struct kray_frame_hdr) +
						__builtin_offsetof(struct kray_msg_fast, flags),
					&flags, sizeof(flags), 0))
			return -1;
	}
	if (w < 0) {
		count(&drv->bounced);
		count(&st->bounced);
		return bpf_sk_redirect_map(skb, &fast_socks, slot, 0);
	}
	count(&drv->tasks);
	count(&st->steered);
	return bpf_sk_redirect_map(skb, &fast_socks, KRAY_FAST_DRIVERS + (__u32)w, 0);
}

/*
 * Gives back worker w, whose fast task has answered: FAST -> IDLE, or FAST_DAEMON -> DAEMON
 * when krayd has sent it tasks meanwhile.  krayd moves the entry between those two at any
 * time (FAST -> FAST_DAEMON when it passes the worker a task, FAST_DAEMON -> FAST once
 * that task's result came: kfast_pass() and kfast_settle() in daemon/bpf/bpf_fast.c), so a
 * swap that lost to krayd is tried again from the state it found.  (Two fixed swaps, one
 * from FAST, then one from FAST_DAEMON, missed the entry when krayd moved it from
 * FAST_DAEMON to FAST between them: the answer was dropped as a stray one, its driver
 * waited for ever, and the worker stayed FAST.)  The worker sends this answer, so it
 * cannot finish a task of krayd's meanwhile: krayd moves the entry at most twice
 * (FAST_DAEMON -> FAST -> FAST_DAEMON), and GIVE_BACK_TRIES is more than enough.  1, or
 * 0: it runs no fast task (a stray answer).
 */
#define GIVE_BACK_TRIES 8

static __always_inline int give_back(struct kray_fast_worker *w)
{
	__u32 s = w->state;

	for (int i = 0; i < GIVE_BACK_TRIES; i++) {
		__u32 to = s == KRAY_FW_FAST ? KRAY_FW_IDLE : KRAY_FW_DAEMON, found;

		if (s != KRAY_FW_FAST && s != KRAY_FW_FAST_DAEMON)
			return 0;
		found = __sync_val_compare_and_swap(&w->state, s, to);
		if (found == s)
			return 1;
		s = found;
	}
	return 0;
}

static __always_inline int on_result(struct __sk_buff *skb, const struct fast_head *p,
				     struct kray_fast_stats *st)
{
	__u32 slot = p->f.slot;
	struct kray_fast_worker *w;
	__u64 zero = 0;
	__u32 driver;

	if (slot >= KRAY_FAST_WORKERS)
		return -1;
	w = bpf_map_lookup_elem(&fast_workers, &slot);
	if (!w || !w->token || w->token != p->f.token)
		return -1;
	/* The driver whose task this answers, read while the worker is still claimed for it:
	 * once given back, another driver's call may claim it on another CPU and write its
	 * own slot there before this one is read, and the answer would go to that driver,
	 * which drops it as a stray (and this one waits for ever). */
	driver = w->driver;
	/* Give the worker back before the result can reach the driver, so that the driver's
	 * next call finds it idle. */
	if (!give_back(w))
		return -1; /* it runs no fast task: a stray result */
	if (driver >= KRAY_FAST_DRIVERS)
		return -1;
	if (bpf_skb_store_bytes(skb, TOKEN_OFF, &zero, sizeof(zero), 0))
		return -1;
	count(&st->results);
	/* A driver that went away has no socket at its slot: the redirect drops the frame. */
	return bpf_sk_redirect_map(skb, &fast_socks, driver, 0);
}

SEC("sk_skb")
int fast_verdict(struct __sk_buff *skb)
{
	struct kray_fast_stats *st = stats();
	struct fast_head p;
	int r = -1;

	if (!st)
		return SK_DROP;
	if (bpf_skb_load_bytes(skb, 0, &p, sizeof(p)) || p.h.magic != KRAY_WIRE_MAGIC ||
	    p.h.version != KRAY_WIRE_VERSION || skb->len != sizeof(p.h) + (__u64)p.h.len ||
	    skb->len > KRAY_FAST_FRAME_MAX)
		goto drop;
	if (p.h.type == KRAY_MSG_FAST_EXEC)
		r = on_exec(skb, &p, st);
	else if (p.h.type == KRAY_MSG_FAST_RESULT)
		r = on_result(skb, &p, st);
	if (r >= 0)
		return r;
drop:
	count(&st->dropped);
	return SK_DROP;
}
