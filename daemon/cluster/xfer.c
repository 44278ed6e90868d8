// SPDX-License-Identifier: Apache-2.0
/*
 * Objects sent from one node to another over a link.
 *
 * An inline value goes in one OBJ_PUSH frame.  A large object goes as an OBJ_PUSH header
 * and then KRAY_CHUNK-sized OBJ_CHUNK frames whose payload goes straight from the sealed
 * memfd, one of two ways (send_mapped()):
 *  - an object no larger than a pool memfd (`pool-size`, which a cluster's nodes share)
 *    is sent from a read-only mapping of it (on 2 MiB boundaries: huge pages map whole),
 *    one io_uring send per chunk (conn_send_raw()): one copy, object to socket, as a
 *    plain TCP stream's write() makes.  The receiver has pre-faulted memory for it.
 *  - a larger one is spliced from the memfd into a pipe and from the pipe into the socket
 *    (a memfd cannot be spliced to a TCP socket directly; KERNEL-FACTS.md), both splices
 *    linked in one submission per pipe-full (a whole chunk where krayd may size the pipe
 *    so).  A splice costs more CPU per byte than the copy (a pipe buffer and an skb
 *    fragment per 4 KiB page) but allocates no memory, and a receiver that must clear
 *    fresh memory for the object ran 3-6x slower beside a copying sender here: the
 *    sender's socket buffers take the recently freed memory that the receiver's huge
 *    pages would have had (docs/cluster.md, "Transfer speed").
 * The chunks are produced as the socket drains (xfer_refill() from the loop's send and
 * splice completions), so a 1 GB object needs no buffer of its own.  Where the object can
 * be neither mapped nor spliced (a hugetlb memfd refuses the splice), the payload is read
 * into the output buffer instead, at most two chunks ahead.
 * Frames queued for the link while an object streams wait behind it (xitem.after), so
 * the receiver sees every link's frames in the order they were queued and can write
 * chunks into one memfd at a time.  Only frames that name no object (heartbeats:
 * net_out_urgent()) overtake it, between two chunks.
 *
 * The receiver makes the new memfd from its store (store_begin_large()) at the OBJ_PUSH
 * and maps it writable (on 2 MiB boundaries, huge pages where the store has them) until
 * the object is whole.  Each chunk's header is parsed as soon as it arrives, and the
 * loop receives the chunk's payload straight into that mapping (conn_kind.head and
 * conn_sink(), io_uring receives of up to 4 MiB): one copy, socket to object, as for a
 * plain TCP stream.  Only the bytes that came in the same receive as the header are
 * copied from the link's buffer.  The mapping goes before the seal (store_seal_large():
 * F_SEAL_WRITE wants no writable mapping left); one mapping per object, not per chunk,
 * because every mmap waits for the pool's pre-fault thread, which holds the process's
 * mmap lock.  Where the object cannot be mapped, its chunks come whole into the link's
 * buffer and are written with pwrite().
 *
 * An object this node owns that comes home (a forwarded task's return) fills its pending
 * object; an object of another node becomes a copy held by the link that brought it
 * (released when the task it came for is done).  A copy that already exists is not
 * written twice: its chunks are read and dropped.  A chunk that does not follow what
 * was announced (another object, a gap, past the size, a frame length that disagrees)
 * closes the link with a warning; a link that goes in the middle of an object frees the
 * half-written memfd (or returns the pending object to waiting, for a retry to fill),
 * and a receive still in flight into the mapping keeps it until the connection is freed
 * (conn_unmap_at_free()).
 *
 * A get here that waits for the object over a connection with a userfaultfd is answered at
 * its OBJ_PUSH with a lazy memfd (rx_lazy()), and the pages received so far go into that
 * too as they come (rx_lazy_put(), store_lazy_net.c); the receive above does not change.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "../../common/hugemap.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/store.h"
#include "core/actor.h"
#include "core/getreq.h"

/* Reads n bytes of fd at off into buf.  Returns 0 or -errno (-EIO: the file is short). */
static int read_at(int fd, uint8_t *buf, uint32_t n, uint64_t off)
{
	uint32_t done = 0;

	while (done < n) {
		ssize_t got = pread(fd, buf + done, n - done, (off_t)(off + done));

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? -errno : -EIO;
		done += (uint32_t)got;
	}
	return 0;
}

/* The node that hosts actor id, as this node knows it (0: unknown). */
static uint32_t handle_host(struct krayd *d, const struct kray_oid *id)
{
	uint64_t *v;

	if (actor_find(d, id))
		return d->node;
	v = oidmap_get(&d->cl->ractors, id);
	return v ? ((struct ractor *)(uintptr_t)*v)->node : 0;
}

/* Handle id, new here, came over l from the actor's node host: ractor_adopt() (called by
 * the cluster's top after the frame) makes its calls go there. */
static void lend_handle(struct link *l, const struct kray_oid *id, uint32_t host)
{
	struct lent_handle h = { .id = *id, .host = host };

	kbuf_put(&l->lent, &h, sizeof(h));
}

/*
 * The refs o contains, as they follow its OBJ_PUSH: their ids, then for each the node
 * that hosts it when it is an actor handle (0 otherwise).  The link holds each one for
 * the other node until that node releases it (PEER_RELEASE): lending them.  Returns the
 * block's length (0 with none), in *ret (malloc'd).
 */
static size_t lend_contained(struct link *l, struct obj *o, uint8_t **ret)
{
	struct krayd *d = l->d;
	size_t ids = (size_t)o->ncontained * sizeof(struct kray_oid);
	size_t len = ids + KRAY_PAD8((size_t)o->ncontained * sizeof(uint32_t));
	uint8_t *blk;

	*ret = NULL;
	if (!o->ncontained)
		return 0;
	blk = calloc(1, len);
	if (!blk)
		abort();
	memcpy(blk, o->contained, ids);
	for (uint16_t i = 0; i < o->ncontained; i++) {
		struct obj *in = store_get(d, &o->contained[i]);
		uint32_t host;

		if (!in)
			continue;
		store_conn_ref(l->c, in); /* released by the other node's PEER_RELEASE */
		if (in->id.index != KRAY_OID_ACTOR)
			continue;
		host = handle_host(d, &in->id);
		memcpy(blk + ids + i * sizeof(host), &host, sizeof(host));
	}
	*ret = blk;
	return len;
}

static void push_inline(struct kbuf *b, const struct kray_oid *id, uint8_t type, uint8_t err,
			uint64_t scalar, const void *data, uint32_t len, uint64_t why,
			uint16_t nrefs, const uint8_t *refs, size_t refs_len)
{
	struct kray_msg_obj_push m = { .oid = *id,
				       .type = type,
				       .err = err,
				       .nrefs = nrefs,
				       .len = len,
				       .scalar = scalar,
				       .size = len };
	WIRE_FRAME(b, KRAY_MSG_OBJ_PUSH, why, WIRE_FIXED(m), WIRE_PADDED(data, len),
		   WIRE_RAW(refs, refs_len));
}

void xfer_push_error(struct link *l, const struct kray_oid *id, const char *msg)
{
	push_inline(net_out(l), id, KRAY_WT_ERROR, KRAY_WE_OBJECT_LOST, 0, msg,
		    (uint32_t)strlen(msg), KRAY_PUSH_ANSWER, 0, NULL, 0);
	net_flush(l);
}

void xfer_push(struct link *l, struct obj *o, enum kray_push_why why)
{
	struct krayd *d = l->d;
	struct kray_msg_obj_push m = { .oid = o->id, .type = KRAY_WT_FD };
	struct xitem *x;
	struct kbuf *b;
	uint8_t *refs = NULL;
	size_t refs_len;
	int r;

	if (o->type == KRAY_WT_ACTOR) {
		/* A handle: the link holds it for the other node, which releases it when its
		 * own handle goes; the scalar says where the actor lives. */
		store_conn_ref(l->c, o);
		push_inline(net_out(l), &o->id, o->type, 0, handle_host(d, &o->id), o->data, o->len,
			    why, 0, NULL, 0);
		net_flush(l);
		return;
	}
	if (o->type != KRAY_WT_FD) {
		refs_len = lend_contained(l, o, &refs);
		push_inline(net_out(l), &o->id, o->type, o->err, o->scalar, o->data, o->len, why,
			    refs ? o->ncontained : 0, refs, refs_len);
		free(refs);
		net_flush(l);
		return;
	}
	r = o->spilled ? store_restore(d, o) : 0;
	if (r) {
		char msg[128];
		int n = snprintf(msg, sizeof(msg),
				 "object %u.%u.%u.%u could not be restored to "
				 "send it to another node: %s",
				 o->id.node, o->id.owner, o->id.seq, o->id.index, strerror(-r));

		push_inline(net_out(l), &o->id, KRAY_WT_ERROR, KRAY_WE_STORE_FULL, 0, msg,
			    (uint32_t)n, why, 0, NULL, 0);
		net_flush(l);
		return;
	}
	refs_len = lend_contained(l, o, &refs);
	node_bytes(d, l->node, o->size, true);
	m.scalar = m.size = o->size;
	m.nrefs = refs ? o->ncontained : 0;
	b = net_out(l);
	WIRE_FRAME(b, KRAY_MSG_OBJ_PUSH, why, WIRE_FIXED(m), WIRE_RAW(refs, refs_len));
	free(refs);
	x = calloc(1, sizeof(*x));
	if (!x)
		abort();
	x->o = o;
	x->size = o->size;
	store_ref(o);
	store_pin(d, o); /* not spilled while it streams */
	if (l->xtail)
		l->xtail->next = x;
	else
		l->xhead = x;
	l->xtail = x;
	if (l->up && l->xhead == x)
		xfer_refill(l->c);
}

/* Lets go of x (and of its mapping once no send from it is in flight on c). */
static void item_free(struct conn *c, struct xitem *x)
{
	struct krayd *d = c->d;

	if (x->map)
		conn_unmap_at_free(c, (void *)x->map, x->map_len);
	store_unpin(d, x->o);
	store_unref(d, x->o);
	kbuf_free(&x->after);
	free(x->sent);
	free(x);
}

/* Appends the next chunk of x to c's output.  Returns 0 or -errno (the object could not
 * be read: the link is closed, since the receiver cannot be told mid-object). */
static int put_chunk(struct conn *c, struct xitem *x)
{
	uint32_t n = x->size - x->off > KRAY_CHUNK ? KRAY_CHUNK : (uint32_t)(x->size - x->off);
	struct kray_msg_obj_chunk m = { .oid = x->o->id, .offset = x->off, .len = n };
	size_t off = WIRE_FRAME_OPEN(&c->out, KRAY_MSG_OBJ_CHUNK, 0, WIRE_FIXED(m));
	int r;

	kbuf_reserve(&c->out, KRAY_PAD8(n));
	r = read_at(x->o->fd, c->out.data + c->out.len, n, x->off);
	if (r)
		return r;
	memset(c->out.data + c->out.len + n, 0, KRAY_PAD8(n) - n);
	c->out.len += KRAY_PAD8(n);
	wire_end(&c->out, off);
	x->off += n;
	return 0;
}

/* Copies the n payload bytes owed for the current chunk into c's output (the splice was
 * refused).  Returns 0 or -errno. */
static int copy_raw(struct conn *c, struct xitem *x, uint32_t n)
{
	int r;

	kbuf_reserve(&c->out, n);
	r = read_at(x->o->fd, c->out.data + c->out.len, n, x->off);
	if (r)
		return r;
	c->out.len += n;
	x->off += n;
	x->chunk_left -= n;
	return 0;
}

static bool have_pipe(struct link *l)
{
	int sz;

	if (l->pipe[0] >= 0)
		return true;
	if (l->no_splice || pipe2(l->pipe, O_CLOEXEC)) {
		l->pipe[0] = l->pipe[1] = -1;
		return false;
	}
	/* A larger pipe moves more per splice: a whole chunk where krayd may (root), 1 MiB
	 * (pipe-max-size) otherwise; the default (64 KiB) works too. */
	sz = fcntl(l->pipe[1], F_SETPIPE_SZ, KRAY_CHUNK);
	if (sz < 0)
		sz = fcntl(l->pipe[1], F_SETPIPE_SZ, 1 << 20);
	l->pipe_size = sz > 0 ? (unsigned)sz : 65536;
	return true;
}

/* Whether x's chunks go from a mapping of the object (mapped here, once): when it is no
 * larger than a pool memfd, which the receiver is taken to have ready. */
static bool send_mapped(struct link *l, struct xitem *x)
{
	size_t len = (x->size + KRAY_HUGE_PAGE - 1) & ~(uint64_t)(KRAY_HUGE_PAGE - 1);
	void *p;

	if (x->map_tried)
		return x->map;
	x->map_tried = true;
	if (x->size > l->d->cfg.pool_size)
		return false;
	p = kray_map_huge(x->o->fd, len, PROT_READ, 0, l->d->thp);
	if (p == MAP_FAILED) {
		log_warn_ratelimited("node %08x: mapping a %llu-byte object to send it: %s; "
				     "splicing it instead",
				     l->node, (unsigned long long)x->size, strerror(errno));
		return false;
	}
	x->map = p;
	x->map_len = len;
	return true;
}

/* The header of a chunk whose payload follows outside the buffer. */
static void put_chunk_header(struct conn *c, struct xitem *x, uint32_t n)
{
	struct kray_msg_obj_chunk m = { .oid = x->o->id, .offset = x->off, .len = n };
	struct kray_frame_hdr h = { .magic = KRAY_WIRE_MAGIC,
				    .version = KRAY_WIRE_VERSION,
				    .type = KRAY_MSG_OBJ_CHUNK,
				    .len = (uint32_t)(sizeof(m) + KRAY_PAD8(n)) };

	kbuf_put(&c->out, &h, sizeof(h));
	kbuf_put(&c->out, &m, sizeof(m));
	x->chunk_left = n;
	x->pad = (uint8_t)(KRAY_PAD8(n) - n);
}

/* Moves the link's urgent frames to the connection's output; whether there were any. */
static bool put_urgent(struct conn *c, struct link *l)
{
	if (!kbuf_pending(&l->urgent))
		return false;
	kbuf_put(&c->out, l->urgent.data + l->urgent.off, kbuf_pending(&l->urgent));
	kbuf_consume(&l->urgent, kbuf_pending(&l->urgent));
	return true;
}

/* Picks the chunk of x to stream next, at x->off: one the receiver asked for first (that
 * was not sent), else the next in order not sent.  False when all have been. */
static bool next_chunk(struct link *l, struct xitem *x)
{
	while (x->nwant) {
		uint32_t k = x->want[0];

		memmove(x->want, x->want + 1, --x->nwant * sizeof(x->want[0]));
		if (x->sent[k])
			continue;
		x->sent[k] = 1;
		x->off = (uint64_t)k * KRAY_CHUNK;
		l->d->cl->ranges_served++;
		return true;
	}
	while (x->sent && x->seq < x->size && x->sent[x->seq / KRAY_CHUNK])
		x->seq += KRAY_CHUNK;
	if (x->seq >= x->size)
		return false;
	if (x->sent)
		x->sent[x->seq / KRAY_CHUNK] = 1;
	x->off = x->seq;
	x->seq += KRAY_CHUNK;
	return true;
}

void xfer_refill(struct conn *c)
{
	struct link *l = c->link;
	bool added = false;
	int r = 0;

	if (!l || !l->up || c->closed || c->splicing)
		return;
	while (l->xhead) {
		struct xitem *x = l->xhead;

		if (x->in_pipe || x->chunk_left) {
			/* The payload is the stream's next bytes: once all before it is sent. */
			if (!conn_idle_out(c))
				break;
			if (x->map) {
				x->stage = 3;
				conn_send_raw(c, x->map + x->off, x->chunk_left);
				return;
			}
			if (l->no_splice) {
				r = copy_raw(c, x, x->chunk_left);
				if (r)
					goto fail;
				added = true;
				continue;
			}
			if (x->in_pipe) {
				x->stage = 2; /* what a short send left in the pipe */
				conn_splice(c, l->pipe[0], -1, c->fd, x->in_pipe);
			} else {
				/* memfd -> pipe -> socket, linked: one submission a pipe-full. */
				x->stage = 1;
				conn_splice_through(c, x->o->fd, (int64_t)x->off, l->pipe, c->fd,
						    x->chunk_left < l->pipe_size ? x->chunk_left :
										   l->pipe_size);
			}
			return;
		}
		if (x->pad) {
			kbuf_put(&c->out, NULL, x->pad);
			x->pad = 0;
			added = true;
		}
		/* Between two chunks: what overtakes the objects (net_out_urgent()) goes now. */
		added |= put_urgent(c, l);
		if (kbuf_pending(&c->out) >= 2 * (size_t)KRAY_CHUNK)
			break;
		if (next_chunk(l, x)) {
			uint32_t n = x->size - x->off > KRAY_CHUNK ? KRAY_CHUNK :
								     (uint32_t)(x->size - x->off);

			if (send_mapped(l, x) || have_pipe(l)) {
				put_chunk_header(c, x, n);
			} else if ((r = put_chunk(c, x))) {
				goto fail;
			}
			added = true;
			continue;
		}
		kbuf_put(&c->out, x->after.data + x->after.off, kbuf_pending(&x->after));
		l->xhead = x->next;
		if (!l->xhead)
			l->xtail = NULL;
		item_free(c, x);
		added = true;
	}
	if (added)
		conn_flush_later(c);
	return;
fail:
	log_warn("node %08x: reading an object for it: %s", l->node, strerror(-r));
	conn_close(c, "an object could not be read");
}

/*
 * A splice of the link finished: a pair's first (memfd -> pipe: stage 1, its linked second
 * still to come), or a pair's second or a lone pipe -> socket (stage 2); or a raw send
 * from the object's mapping (stage 3).  A first that moved less than asked cancels its
 * second (-ECANCELED): what it moved goes on its own.
 * A first refused (a hugetlb memfd cannot be spliced) turns the link to copying.
 */
void xfer_spliced(struct conn *c, int res)
{
	struct link *l = c->link;
	struct xitem *x = l ? l->xhead : NULL;
	int err;

	if (!x || !x->stage)
		return;
	if (x->stage == 3) {
		x->stage = 0;
		if (res <= 0) {
			log_warn("node %08x: sending an object: %s", l->node,
				 res ? strerror(-res) : "the socket took nothing");
			conn_close(c, "an object could not be sent");
			return;
		}
		x->off += (uint32_t)res;
		x->chunk_left -= (uint32_t)res;
		c->sent += (uint64_t)res;
		xfer_refill(c);
		conn_kick(c);
		return;
	}
	if (x->stage == 1) {
		if (res > 0) {
			x->in_pipe += (uint32_t)res;
			x->off += (uint32_t)res;
			x->chunk_left -= (uint32_t)res;
		} else {
			x->err = res ? res : -ENODATA;
		}
		x->stage = 2;
		return;
	}
	if (res > 0) {
		x->in_pipe -= (uint32_t)res;
		c->sent += (uint64_t)res; /* stream bytes, as a send counts them */
	} else if (res != -ECANCELED || !(x->err || x->in_pipe)) {
		log_warn("node %08x: sending an object: %s", l->node,
			 res ? strerror(-res) : "the socket took nothing");
		conn_close(c, "an object could not be sent");
		return;
	}
	x->stage = 0;
	err = x->err;
	x->err = 0;
	if (err == -EINVAL || err == -ENOSYS) {
		/* This memfd cannot be spliced (hugetlbfs): copy from now on. */
		log_info("node %08x: splice from an object refused (%s); copying instead", l->node,
			 strerror(-err));
		l->no_splice = true;
	} else if (err) {
		log_warn("node %08x: sending an object: %s", l->node,
			 err == -ENODATA ? "the object ended early" : strerror(-err));
		conn_close(c, "an object could not be sent");
		return;
	}
	xfer_refill(c);
	conn_kick(c);
}

/* Sends PEER_RELEASE for the n ids of ids (the holds the other node's link took). */
static void release_ids(struct link *l, const struct kray_oid *ids, uint32_t n)
{
	struct kray_msg_refs m = { .n = n };
	struct kbuf *b;

	if (!n || !l->c)
		return;
	b = net_out(l);
	WIRE_FRAME(b, KRAY_MSG_PEER_RELEASE, 0, WIRE_FIXED(m), WIRE_RAW(ids, n * sizeof(*ids)));
	net_flush(l);
}

/*
 * The n refs (block blk: ids, then hosts) that object o, arriving over l, contains.  Each
 * id new here becomes a stub (an object this node pulls over l when something wants it)
 * or, for an actor handle, a handle whose calls go to its node; o keeps them alive, and
 * the other node's hold on each is released when they go (remote_obj_settled(),
 * remote_actor_gone()).  An id this node has already is released at once, and so is
 * everything when o is NULL (not wanted here).
 */
static void take_refs(struct link *l, struct obj *o, const uint8_t *blk, uint16_t n)
{
	struct krayd *d = l->d;
	struct kray_oid *ids, *rel;
	uint32_t nrel = 0;

	if (!n)
		return;
	if (o && o->ncontained)
		o = NULL; /* it has its refs already (cannot happen: a pending object) */
	ids = malloc(n * sizeof(*ids));
	rel = malloc(n * sizeof(*rel));
	if (!ids || !rel)
		abort();
	memcpy(ids, blk, n * sizeof(*ids));
	for (uint16_t i = 0; i < n; i++) {
		static const struct kray_oid zero;
		struct obj *in;

		if (oid_eq(&ids[i], &zero))
			continue;
		if (!o || store_get(d, &ids[i])) {
			rel[nrel++] = ids[i];
			continue;
		}
		in = store_create(d, &ids[i]);
		in->stub = true;
		if (ids[i].index != KRAY_OID_ACTOR)
			in->remote_link = l->id;
	}
	if (o)
		store_contain(d, o, ids, n); /* references every stub made above */
	for (uint16_t i = 0; o && i < n; i++) {
		struct obj *in = ids[i].index == KRAY_OID_ACTOR ? store_get(d, &ids[i]) : NULL;
		uint32_t host;

		if (!in || in->state == OBJ_READY)
			continue;
		/* A handle is its id: ready at once, its calls going to the actor's node. */
		struct wire_value v = { .type = KRAY_WT_ACTOR,
					.data = &ids[i],
					.len = sizeof(ids[i]) };

		memcpy(&host, blk + n * sizeof(*ids) + i * sizeof(host), sizeof(host));
		store_seal(d, in, &v);
		lend_handle(l, &ids[i], host);
	}
	release_ids(l, rel, nrel);
	free(ids);
	free(rel);
}

/* An actor handle pushed over l as an argument: the link's for the task it goes with, and
 * the other node's hold on it is kept while this node has the handle. */
static void on_handle(struct link *l, const struct kray_msg_obj_push *m)
{
	struct krayd *d = l->d;
	struct obj *o = store_get(d, &m->oid);
	struct wire_value v = { .type = KRAY_WT_ACTOR, .data = &m->oid, .len = sizeof(m->oid) };
	bool fresh = !o;

	if (fresh)
		o = store_create(d, &m->oid);
	store_conn_ref(l->c, o);
	if (fresh) {
		store_seal(d, o, &v);
		lend_handle(l, &m->oid, (uint32_t)m->scalar);
	} else {
		release_ids(l, &m->oid, 1);
	}
}

/*
 * Maps the memfd of object o, arriving over l, writable until it is whole, for its
 * chunks to be received straight into it (xfer_chunk_head()).  The length is rounded to
 * 2 MiB: huge pages map whole, and a hugetlb memfd (whose size is a multiple of 2 MiB)
 * can be mapped at all; past the end of a shmem memfd nothing is touched.  Where it
 * cannot be mapped, the chunks come into the link's buffer and are written from there.
 */
static void rx_map(struct link *l, struct obj *o)
{
	size_t len = (o->size + KRAY_HUGE_PAGE - 1) & ~(uint64_t)(KRAY_HUGE_PAGE - 1);
	void *p = kray_map_huge(o->fd, len, PROT_READ | PROT_WRITE, 0, l->d->thp);

	if (p == MAP_FAILED) {
		log_warn_ratelimited("node %08x: mapping a %llu-byte object it sends: %s; "
				     "copying it instead",
				     l->node, (unsigned long long)o->size, strerror(errno));
		return;
	}
	l->rx.map = p;
	l->rx.map_len = len;
}

/* Lets go of the mapping (before the seal: F_SEAL_WRITE wants no writable mapping). */
static void rx_unmap(struct link *l)
{
	if (l->rx.map)
		munmap(l->rx.map, l->rx.map_len);
	l->rx.map = NULL;
}

/*
 * Pending o's transfer over l starts (size bytes): where a get here waits for it over a
 * connection with a userfaultfd, it is answered now with a lazy memfd that the chunks fill
 * as they come (store_lazy_net.c); one that has it already (the transfer is a retry, from
 * another holder) keeps it and the pages it has.
 */
static void rx_lazy(struct link *l, struct obj *o, uint64_t size)
{
	struct krayd *d = l->d;

	if (o->lazy) {
		if (store_lazy_size(o->lazy) != size)
			store_lazy_sealed(d, o); /* (not the same object: its readers fail) */
		l->rx.lazy = o->lazy != NULL;
		if (o->lazy) /* what its readers wait for, from this sender now */
			store_lazy_net_reask(d, o->lazy);
		return;
	}
	if (!d->lazy || size < STORE_LAZY_MIN || l->rx.nrefs || !get_lazy_wanted(d, o))
		return;
	/* MINOR mode where every reader waiting can take it: the readers map the object's
	 * own memfd, no second copy (store_lazy_net.c). */
	if (get_lazy_minor_ok(d, o))
		o->lazy = store_lazy_new_net_minor(d, &o->id, size, o->fd);
	if (!o->lazy && !store_make_room(d, size)) {
		o->lazy = store_lazy_new_net(d, &o->id, size);
		if (o->lazy)
			d->st.store_bytes += size;
	}
	if (!o->lazy)
		return;
	l->rx.lazy = true;
	get_lazy_now(d, o);
}

/* The len bytes at src are the object arriving over l, from offset off: readers that map
 * it lazily get them too. */
static void rx_lazy_put(struct link *l, uint64_t off, const uint8_t *src, uint32_t len)
{
	struct obj *o = l->rx.discard ? NULL : store_get(l->d, &l->rx.id);

	if (!o || !o->lazy || o->writer != l->c) {
		l->rx.lazy = false;
		return;
	}
	if (store_lazy_net_put(l->d, o->lazy, o->fd, off, src, len))
		store_unlazy(l->d, o); /* (its readers fail; the object still comes whole) */
}

/* Lazy readers get a chunk's pages as they come, in steps of this much at least (each a
 * UFFDIO_COPY, the lock and a wake, and a reader at the stream's head waits for each): in a
 * chunk where a reader may wait (the object's first, one asked for first) the first
 * LAZY_STEP_FIRST alone (its time to first byte: the reader waiting there wakes before the
 * rest received with it is copied), then steps of LAZY_STEP_NEAR; in the others larger
 * ones (a reader that keeps up with the stream wakes less often). */
#define LAZY_STEP_FIRST (16u << 10)
#define LAZY_STEP_NEAR (64u << 10)
#define LAZY_STEP (1u << 20)

void xfer_chunk_sinking(struct link *l)
{
	uint32_t in;
	bool near = !(l->rx.off && l->rx.off == l->rx.next);

	if (!l->rx.lazy || !l->rx.map)
		return;
	in = (uint32_t)((l->rx.chunk - l->c->sink_left) & ~4095ull);
	if (near && !l->rx.lazy_put && in >= LAZY_STEP_FIRST) {
		rx_lazy_put(l, l->rx.off, l->rx.map + l->rx.off, LAZY_STEP_FIRST);
		l->rx.lazy_put = LAZY_STEP_FIRST;
		if (in - LAZY_STEP_FIRST < LAZY_STEP_NEAR)
			return;
	} else if (in < l->rx.lazy_put + (near ? LAZY_STEP_NEAR : LAZY_STEP)) {
		return;
	}
	rx_lazy_put(l, l->rx.off + l->rx.lazy_put, l->rx.map + l->rx.off + l->rx.lazy_put,
		    in - l->rx.lazy_put);
	l->rx.lazy_put = in;
}

int xfer_on_push(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body, uint32_t len)
{
	struct krayd *d = l->d;
	struct kray_msg_obj_push m;
	struct wire_rd r;
	const void *data = NULL, *refs = NULL;
	size_t refs_len;
	struct obj *o;
	bool foreign, usable, answer = h->req == KRAY_PUSH_ANSWER;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || (m.len && wire_rd_bytes(&r, m.len, &data)))
		return conn_fail(l->c, "malformed object push", -EBADMSG);
	refs_len = (size_t)m.nrefs * sizeof(struct kray_oid) +
		   KRAY_PAD8((size_t)m.nrefs * sizeof(uint32_t));
	if (r.left != refs_len)
		return conn_fail(l->c, "malformed object push", -EBADMSG);
	refs = m.nrefs ? r.p : NULL;
	if (h->req > KRAY_PUSH_ANSWER || (m.type == KRAY_WT_ACTOR && answer) ||
	    (m.type == KRAY_WT_FD    ? (m.len || !m.size || m.size > KRAY_OBJECT_MAX) :
	     m.type == KRAY_WT_ACTOR ? (m.len != sizeof(m.oid) || m.nrefs ||
					m.oid.index != KRAY_OID_ACTOR ||
					memcmp(data, &m.oid, sizeof(m.oid))) :
				       (m.size != m.len || m.type > KRAY_WT_ERROR ||
					m.type == KRAY_WT_REF || m.err > KRAY_WE_MAX)))
		return conn_fail(l->c, "bad object push", -EBADMSG);
	if (l->rx.active)
		return conn_fail(l->c, "object push in the middle of another object", -EPROTO);
	if (m.type == KRAY_WT_ACTOR) {
		on_handle(l, &m);
		return 0;
	}
	o = store_get(d, &m.oid);
	foreign = m.oid.node != d->node;
	/* An answer to a pull fills the stub that asked; a stub freed since wants nothing. */
	if (!o && foreign && !answer)
		o = store_create(d, &m.oid);
	if (o && foreign && !answer)
		store_conn_ref(l->c, o); /* the copy is the link's until its task is done */
	usable = o && o->state == OBJ_PENDING && !o->writer && o->fd < 0;
	if (m.type != KRAY_WT_FD) {
		struct wire_value v = {
			.type = m.type, .err = m.err, .scalar = m.scalar, .data = data, .len = m.len
		};

		take_refs(l, usable ? o : NULL, refs, m.nrefs);
		if (usable && o->remote_link)
			ext_obj_settled(d, o); /* pulled: the other copy may go */
		if (usable)
			store_seal(d, o, &v);
		return 0;
	}
	node_bytes(d, l->node, m.size, false);
	l->rx.id = m.oid;
	l->rx.off = l->rx.got = l->rx.next = 0;
	l->rx.size = m.size;
	free(l->rx.have);
	l->rx.have = calloc((m.size + KRAY_CHUNK - 1) / KRAY_CHUNK, 1);
	if (!l->rx.have)
		abort();
	l->rx.active = true;
	l->rx.discard = !usable;
	l->rx.lazy = false;
	l->rx.lazy_put = 0;
	l->rx.nrefs = m.nrefs;
	if (m.nrefs) {
		l->rx.refs = malloc(refs_len);
		if (!l->rx.refs)
			abort();
		memcpy(l->rx.refs, refs, refs_len);
	}
	if (usable) {
		int e = store_begin_large(l->c, o, m.size);

		if (e) {
			char msg[160];
			int n = snprintf(msg, sizeof(msg),
					 "no room for a %llu-byte object from node "
					 "%08x: %s",
					 (unsigned long long)m.size, l->node, strerror(-e));

			l->rx.discard = true;
			store_seal_error(d, o, KRAY_WE_STORE_FULL, msg, (size_t)n);
		} else {
			rx_map(l, o);
			rx_lazy(l, o, m.size);
		}
	}
	return 0;
}

/* The refs of the large object arriving over l: kept by o (NULL: released). */
static void rx_refs_done(struct link *l, struct obj *o)
{
	if (l->rx.nrefs)
		take_refs(l, o, l->rx.refs, l->rx.nrefs);
	free(l->rx.refs);
	l->rx.refs = NULL;
	l->rx.nrefs = 0;
}

/*
 * Checks chunk m (the body of frame h) against the object arriving over l.  Returns 0 (and
 * the chunk is the one arriving), or conn_fail()'s code with a warning: a node that sends
 * what it did not announce (a chunk of another object, one not at a multiple of KRAY_CHUNK
 * or not of the chunk's length, past the announced size, one sent twice, or a frame whose
 * length disagrees with its chunk's) is not trusted further, and its link closes.  Chunks
 * may come in any order (those asked for first: OBJ_RANGE); the object is whole once each
 * has come.
 */
static int check_chunk(struct link *l, const struct kray_frame_hdr *h,
		       const struct kray_msg_obj_chunk *m)
{
	const char *why;
	int code = -EPROTO;

	if (!m->len || h->len != sizeof(*m) + KRAY_PAD8((uint64_t)m->len)) {
		why = "malformed object chunk";
		code = -EBADMSG;
	} else if (!l->rx.active || !oid_eq(&m->oid, &l->rx.id)) {
		why = "object chunk for no object announced";
	} else if (m->offset % KRAY_CHUNK || m->offset >= l->rx.size ||
		   m->len != (l->rx.size - m->offset < KRAY_CHUNK ? l->rx.size - m->offset :
								    KRAY_CHUNK)) {
		why = "object chunk not at a chunk of the object"; /* a gap, or past its end */
	} else if (l->rx.have[m->offset / KRAY_CHUNK]) {
		why = "object chunk sent twice";
	} else {
		l->rx.off = m->offset; /* the chunk arriving */
		return 0;
	}
	log_warn_ratelimited("node %08x: %s (offset %llu, %u bytes; object of %llu bytes, "
			     "%llu received): closing its link",
			     l->node, why, (unsigned long long)m->offset, m->len,
			     (unsigned long long)l->rx.size, (unsigned long long)l->rx.got);
	return conn_fail(l->c, why, code);
}

/* The object arriving over l has len more bytes: once it is whole, it is sealed. */
static void chunk_done(struct link *l, uint32_t len)
{
	struct krayd *d = l->d;
	struct obj *o;

	l->rx.have[l->rx.off / KRAY_CHUNK] = 1;
	l->rx.got += len;
	l->rx.next = l->rx.off + len;
	if (l->rx.got < l->rx.size)
		return;
	l->rx.active = false;
	free(l->rx.have);
	l->rx.have = NULL;
	rx_unmap(l);
	o = l->rx.discard ? NULL : store_get(d, &l->rx.id);
	if (o && (o->writer != l->c || o->state != OBJ_PENDING))
		o = NULL;
	rx_refs_done(l, o);
	if (o) {
		if (o->remote_link)
			ext_obj_settled(d, o); /* pulled: the other copy may go */
		store_seal_large(l->c, &o->id);
	}
}

/* Writing the object arriving over l failed (err): its waiters get an error, the rest
 * of it is dropped. */
static void rx_failed(struct link *l, struct obj *o, int err)
{
	char msg[128];
	int k = snprintf(msg, sizeof(msg), "writing an object from node %08x: %s", l->node,
			 strerror(err));

	store_writer_end(l->d, o);
	rx_unmap(l);
	store_abort_large(l->d, o);
	store_seal_error(l->d, o, KRAY_WE_STORE_FULL, msg, (size_t)k);
	l->rx.discard = true;
}

int xfer_chunk_head(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body,
		    uint32_t avail)
{
	struct kray_msg_obj_chunk m;
	int r;

	if (h->type != KRAY_MSG_OBJ_CHUNK || avail < sizeof(m))
		return 0;
	memcpy(&m, body, sizeof(m));
	r = check_chunk(l, h, &m);
	if (r || !l->rx.map)
		return r; /* (a chunk to drop comes whole: xfer_on_chunk()) */
	l->rx.chunk = m.len;
	/* A lazy reader may wait at a chunk that jumps the stream (the object's first, one
	 * asked for first): its first step comes in a receive of its own. */
	conn_sink(l->c, l->rx.map + m.offset, m.len,
		  l->rx.lazy && !(m.offset && m.offset == l->rx.next) ? LAZY_STEP_FIRST : 0);
	return sizeof(m);
}

void xfer_chunk_sunk(struct link *l)
{
	if (l->rx.lazy)
		rx_lazy_put(l, l->rx.off + l->rx.lazy_put, l->rx.map + l->rx.off + l->rx.lazy_put,
			    l->rx.chunk - l->rx.lazy_put);
	l->rx.lazy_put = 0;
	chunk_done(l, l->rx.chunk);
}

int xfer_on_chunk(struct link *l, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct krayd *d = l->d;
	struct kray_msg_obj_chunk m;
	const uint8_t *data = body + sizeof(m);
	uint32_t done = 0;
	struct obj *o;
	int r;

	if (h->len < sizeof(m))
		return conn_fail(l->c, "malformed object chunk", -EBADMSG);
	memcpy(&m, body, sizeof(m));
	r = check_chunk(l, h, &m);
	if (r)
		return r;
	/* The whole frame came into the link's buffer (xfer_chunk_head() could not map the
	 * object, or the chunk is dropped): written from there. */
	o = l->rx.discard ? NULL : store_get(d, &m.oid);
	if (o && (o->writer != l->c || o->fd < 0))
		o = NULL;
	while (o && done < m.len) {
		ssize_t n = pwrite(o->fd, data + done, m.len - done, (off_t)(m.offset + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rx_failed(l, o, n < 0 ? errno : EIO);
			break;
		}
		done += (uint32_t)n;
	}
	if (done == m.len && l->rx.lazy)
		rx_lazy_put(l, m.offset, data, m.len);
	chunk_done(l, m.len);
	return 0;
}

void xfer_link_gone(struct link *l)
{
	struct krayd *d = l->d;

	while (l->xhead) {
		struct xitem *x = l->xhead;

		l->xhead = x->next;
		item_free(l->c, x);
	}
	l->xtail = NULL;
	/* A splice in flight holds its own references to the files. */
	if (l->pipe[0] >= 0) {
		close(l->pipe[0]);
		close(l->pipe[1]);
		l->pipe[0] = l->pipe[1] = -1;
	}
	if (l->rx.map) { /* (a receive into it may be in flight) */
		conn_sink(l->c, NULL, 0, 0);
		conn_unmap_at_free(l->c, l->rx.map, l->rx.map_len);
	}
	l->rx.map = NULL;
	if (l->rx.active && !l->rx.discard) {
		struct obj *o = store_get(d, &l->rx.id);

		/* Half an object: back to pending, for the task's retry to fill. */
		if (o && o->writer == l->c)
			store_abort_large(d, o);
	}
	free(l->rx.refs); /* the link is gone, and the holds at its other end with it */
	l->rx.refs = NULL;
	free(l->rx.have);
	l->rx.have = NULL;
	l->rx.nrefs = 0;
	l->rx.active = false;
}

void xfer_range_wanted(struct krayd *d, struct obj *o, uint64_t off, uint64_t len)
{
	struct link *l = o->writer ? o->writer->link : NULL;
	struct kray_msg_obj_range m = { .oid = o->id, .offset = off, .len = len };

	if (!l || !l->c || l->c->closed || !l->rx.active || l->rx.discard ||
	    !oid_eq(&l->rx.id, &o->id) || !len || off >= l->rx.size || len > l->rx.size - off ||
	    l->rx.have[off / KRAY_CHUNK])
		return; /* (nothing streams it here any more, or that part came already) */
	d->cl->ranges_asked++;
	/* It names an object coming in, none going out: it may overtake those. */
	wire_frame(net_out_urgent(l), KRAY_MSG_OBJ_RANGE, 0, &WIRE_RAW(&m, sizeof(m)), 1);
	net_flush(l);
}

int xfer_on_range(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_obj_range m;
	struct xitem *x;
	struct obj *o;
	uint64_t k0, k1;

	if (wire_dec_obj_range(body, len, &m))
		return conn_fail(l->c, "malformed object range request", -EBADMSG);
	for (x = l->xhead; x && !oid_eq(&x->o->id, &m.oid); x = x->next)
		;
	o = x ? x->o : store_get(l->d, &m.oid);
	if (o && o->type == KRAY_WT_FD && (m.offset >= o->size || m.len > o->size - m.offset)) {
		log_warn_ratelimited("node %08x: a range request past the end of object "
				     "%u.%u.%u.%u (offset %llu, %llu bytes; the object has %llu): "
				     "closing its link",
				     l->node, m.oid.node, m.oid.owner, m.oid.seq, m.oid.index,
				     (unsigned long long)m.offset, (unsigned long long)m.len,
				     (unsigned long long)o->size);
		return conn_fail(l->c, "object range request past the object's end", -ERANGE);
	}
	if (!x)
		return 0; /* not streaming to it (any more): it has the object, or will not */
	if (!x->sent) {
		/* From now on the chunks are picked, not only taken in order: the ones started
		 * already are marked (those before x->seq). */
		x->sent = calloc((x->size + KRAY_CHUNK - 1) / KRAY_CHUNK, 1);
		if (!x->sent)
			abort();
		memset(x->sent, 1, (x->seq + KRAY_CHUNK - 1) / KRAY_CHUNK);
	}
	k0 = m.offset / KRAY_CHUNK;
	k1 = (m.offset + m.len - 1) / KRAY_CHUNK;
	for (uint64_t k = k0; k <= k1 && x->nwant < XFER_WANT_MAX; k++) {
		bool dup = x->sent[k];

		for (unsigned i = 0; i < x->nwant && !dup; i++)
			dup = x->want[i] == k;
		if (!dup)
			x->want[x->nwant++] = (uint32_t)k;
	}
	return 0;
}
