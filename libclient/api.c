// SPDX-License-Identifier: Apache-2.0
/*
 * The driver API: calls, puts, gets, releases and status.  A call allocates its task id
 * locally (owner = this connection, seq = a counter), so it needs no reply and is only
 * appended to the output buffer; anything that waits flushes it first.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "client.h"

#define SAME(a, b) ((int)(a) == (int)(b))
_Static_assert(SAME(KRAY_INT64, KRAY_WT_INT64) && SAME(KRAY_F64, KRAY_WT_F64) &&
		       SAME(KRAY_BYTES, KRAY_WT_BYTES) && SAME(KRAY_REF, KRAY_WT_REF) &&
		       SAME(KRAY_ERROR, KRAY_WT_ERROR) && SAME(KRAY_NIL, KRAY_WT_NIL),
	       "public and wire value types agree");
_Static_assert(SAME(KRAY_ERR_TASK, KRAY_WE_TASK) &&
		       SAME(KRAY_ERR_WORKER_DIED, KRAY_WE_WORKER_DIED) &&
		       SAME(KRAY_ERR_UNKNOWN_FUNCTION, KRAY_WE_UNKNOWN_FUNCTION) &&
		       SAME(KRAY_ERR_BAD_ARGS, KRAY_WE_BAD_ARGS) &&
		       SAME(KRAY_ERR_OBJECT_LOST, KRAY_WE_OBJECT_LOST) &&
		       SAME(KRAY_ERR_INTERNAL, KRAY_WE_INTERNAL) &&
		       SAME(KRAY_ERR_CANCELLED, KRAY_WE_CANCELLED) &&
		       SAME(KRAY_ERR_TIMED_OUT, KRAY_WE_TIMED_OUT) &&
		       SAME(KRAY_ERR_STREAM_END, KRAY_WE_STREAM_END) &&
		       SAME(KRAY_ERR_UNSCHEDULABLE, KRAY_WE_UNSCHEDULABLE),
	       "public and wire error kinds agree");
_Static_assert(sizeof(kray_ref) == sizeof(struct kray_oid), "a ref is an oid");

/* Flush before the buffer grows past this, so a long run of calls stays bounded. */
#define OUT_HIGH_WATER (1u << 20)

int kc_check_value(struct kray *k, const kray_value *v, bool allow_ref)
{
	switch (v->type) {
	case KRAY_NIL:
	case KRAY_INT64:
	case KRAY_F64:
		return 0;
	case KRAY_BYTES:
		if (v->len && !v->data)
			return kc_fail(k, -EINVAL, "bytes value with NULL data");
		/* Inline (call arguments) they must fit in a message; as objects (allow_ref
		 * false: puts) they go to the store, up to KRAY_OBJECT_MAX. */
		if (allow_ref ? v->len > KRAY_FRAME_MAX / 2 : v->len > KRAY_OBJECT_MAX)
			return kc_fail(k, allow_ref ? -E2BIG : -EFBIG,
				       "bytes value of %zu bytes is too large", v->len);
		return 0;
	case KRAY_REF:
	case KRAY_ACTOR:
		if (allow_ref)
			return 0;
		/* fall through */
	default:
		return kc_fail(k, -EINVAL, "value type %d not allowed here", (int)v->type);
	}
}

/* Drops a frame begun at off whose body grew too large; returns -E2BIG. */
static int frame_too_big(struct kray *k, size_t off)
{
	k->out.len = off;
	return kc_fail(k, -E2BIG, "request larger than %u bytes", KRAY_FRAME_MAX);
}

static int maybe_flush(struct kray *k)
{
	if (kbuf_pending(&k->out) <= OUT_HIGH_WATER)
		return 0;
	return k->nonblock ? kc_flush_some(k) : kc_flush(k);
}

KRAY_EXPORT void kray_ids(const kray *k, struct kray_ids *ret_ids)
{
	*ret_ids = (struct kray_ids){
		.node = k->node, .client = k->client, .job = k->job, .inline_max = k->inline_max
	};
}

KRAY_EXPORT int kray_cancel(struct kray *k, const kray_ref *ref, int force, int recursive)
{
	struct kray_msg_cancel m = { 0 };
	size_t off;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!ref)
		return kc_fail(k, -EINVAL, "kray_cancel needs a ref");
	/* A fast call whose get timed out: cancelled here, since krayd has not heard of
	 * it; the CANCEL still goes (with force, krayd kills its worker). */
	if (k->fast_nlate && kc_fast_cancel(k, ref))
		return -ENOMEM;
	memcpy(&m.oid, ref, sizeof(m.oid));
	m.flags = (force ? KRAY_CANCEL_FORCE : 0) | (recursive ? KRAY_CANCEL_RECURSIVE : 0);
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_CANCEL, 0, WIRE_FIXED(m));
	if (kc_end(k, off))
		return -ENOMEM;
	return maybe_flush(k);
}

KRAY_EXPORT int kray_call(struct kray *k, const char *fn, const kray_value *args, size_t nargs,
			  const struct kray_call_opts *opts, kray_ref *ret_refs)
{
	return kc_submit(k, NULL, fn, args, nargs, opts, ret_refs);
}

int kc_submit(struct kray *k, const kray_ref *actor, const char *fn, const kray_value *args,
	      size_t nargs, const struct kray_call_opts *opts, kray_ref *ret_refs)
{
	struct kray_call_opts o = opts ? *opts : KRAY_CALL_OPTS_DEFAULT;
	struct kray_msg_submit m = { 0 };
	size_t name_len, res_len, off;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!fn || !(name_len = strlen(fn)) || name_len > KRAY_NAME_MAX)
		return kc_fail(k, -EINVAL, "function name must be 1 to %d bytes", KRAY_NAME_MAX);
	if (nargs > KRAY_ARGS_MAX || (nargs && !args))
		return kc_fail(k, -EINVAL, "at most %d arguments", KRAY_ARGS_MAX);
	if (o.num_returns > KRAY_RETURNS_MAX || (o.num_returns && !ret_refs))
		return kc_fail(k, -EINVAL, "num_returns must be 0 to %d", KRAY_RETURNS_MAX);
	if (o.streaming && o.num_returns != 1)
		return kc_fail(k, -EINVAL, "a streaming call has num_returns 1 (its completion)");
	if (o.max_retries < -1 || o.max_retries > INT16_MAX)
		return kc_fail(k, -EINVAL, "max_retries must be -1 to %d", INT16_MAX);
	for (size_t i = 0; i < nargs; i++)
		if ((r = kc_check_value(k, &args[i], true)))
			return r;
	if ((r = kc_fast_args_known(k, args, nargs)))
		return r;
	if (o.fast_arg0 && (actor || !nargs || !kc_fast_stand_in_ok(o.fast_arg0)))
		return kc_fail(k, -EINVAL,
			       "fast_arg0 stands in for a task's first argument: "
			       "bytes (at most 8 KiB) or a scalar");
	if (actor && o.timeout_ms)
		return kc_fail(k, -EINVAL, "timeout_ms is for tasks, not actor method calls");
	res_len = o.resources ? strlen(o.resources) : 0;
	if (res_len > 255 || (res_len && wire_parse_placed(o.resources, res_len, NULL, NULL) < 0))
		return kc_fail(k, -EINVAL,
			       "resources must be \"NAME:QTY,...\" (at most %d, "
			       "255 bytes), with at most one of @spread, @node=ID, @prefer=ID",
			       KRAY_RESOURCES_MAX);

	m.seq = ++k->next_seq;
	if (actor) /* its order, for fast calls to it (fast_actor.c) */
		kc_fast_actor_called(k, actor, m.seq);
	m.job = k->job;
	m.num_returns = (uint16_t)o.num_returns;
	m.nargs = (uint16_t)nargs;
	m.max_retries = (int16_t)o.max_retries;
	m.name_len = (uint8_t)name_len;
	m.res_len = (uint8_t)res_len;
	m.flags = o.streaming ? KRAY_SUBMIT_STREAMING : 0;
	m.timeout_ms = o.timeout_ms;
	if (actor)
		memcpy(&m.actor, actor, sizeof(m.actor));
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_SUBMIT, 0, WIRE_FIXED(m), WIRE_PADDED(fn, name_len),
			      WIRE_PADDED(o.resources, res_len));
	for (size_t i = 0; i < nargs; i++)
		kc_put_value(&k->out, &args[i], NULL, 0);
	if (!k->out.nomem && k->out.len - off - sizeof(struct kray_frame_hdr) > KRAY_FRAME_MAX)
		return frame_too_big(k, off);
	if ((r = kc_end(k, off)))
		return r;
	for (unsigned i = 0; i < o.num_returns; i++)
		ret_refs[i] = (kray_ref){ k->node, k->client, m.seq, i };
	kc_hold(k, ret_refs, o.num_returns);
	if (o.streaming) /* and the first item's (stream.c) */
		kc_hold(k, &(kray_ref){ k->node, k->client, m.seq, 1 }, 1);
	r = maybe_flush(k);
	/* Still the last frame in the buffer: if the next operation gets its result, it
	 * may go on the fast path instead (fast.c). */
	if (!r && k->out.len > off &&
	    kc_fast_eligible(k, actor, args, nargs, &o, k->out.len - off) &&
	    !kc_fast_stand_in(k, &o)) {
		k->defer = true;
		k->defer_off = off;
		k->defer_end = k->out.len;
		k->defer_seq = m.seq;
	}
	return r;
}

KRAY_EXPORT int kray_put(struct kray *k, const kray_value *v, kray_ref *ret_ref)
{
	kray_ref id;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!v || !ret_ref)
		return kc_fail(k, -EINVAL, "kray_put needs a value and ret_ref");
	if ((r = kc_check_value(k, v, false)))
		return r;
	if (v->type == KRAY_BYTES && v->len > k->inline_max) {
		struct iovec one = { (void *)v->data, v->len };

		r = kc_put_large(k, &one, 1, NULL, 0, &id);
	} else {
		id = (kray_ref){ k->node, k->client, ++k->next_seq, KRAY_OID_PUT };
		r = kc_put_inline(k, &id, v, NULL, 0);
		if (!r)
			r = maybe_flush(k);
	}
	if (!r)
		*ret_ref = id;
	return r;
}

KRAY_EXPORT int kray_put_refs(struct kray *k, const kray_value *v, const kray_ref *refs,
			      size_t nrefs, kray_ref *ret_ref)
{
	kray_ref id;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!v || !ret_ref || nrefs > UINT16_MAX || (nrefs && !refs))
		return kc_fail(k, -EINVAL, "kray_put_refs takes a value and 0 to 65535 refs");
	if ((r = kc_check_value(k, v, false)))
		return r;
	if (v->type == KRAY_BYTES && v->len > k->inline_max) {
		/* A large object: its refs go with its seal. */
		struct iovec one = { (void *)v->data, v->len };

		return kc_put_large(k, &one, 1, refs, (uint16_t)nrefs, ret_ref);
	}
	id = (kray_ref){ k->node, k->client, ++k->next_seq, KRAY_OID_PUT };
	if ((r = kc_put_inline(k, &id, v, refs, (uint16_t)nrefs)))
		return r;
	*ret_ref = id;
	return maybe_flush(k);
}

KRAY_EXPORT int kray_put_iov(struct kray *k, const struct iovec *iov, size_t n, kray_ref *ret_ref)
{
	size_t size = 0;
	char *buf;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if ((n && !iov) || !ret_ref)
		return kc_fail(k, -EINVAL, "kray_put_iov needs its pieces and ret_ref");
	for (size_t i = 0; i < n; i++) {
		if (iov[i].iov_len && !iov[i].iov_base)
			return kc_fail(k, -EINVAL, "kray_put_iov: piece %zu has no bytes", i);
		if (iov[i].iov_len > KRAY_OBJECT_MAX - size)
			return kc_fail(k, -EFBIG, "objects are at most %llu bytes",
				       (unsigned long long)KRAY_OBJECT_MAX);
		size += iov[i].iov_len;
	}
	if (size > k->inline_max)
		return kc_put_large(k, iov, n, NULL, 0, ret_ref);
	/* Small: gathered, and sent inline. */
	if (!(buf = malloc(size ? size : 1)))
		return kc_fail(k, -ENOMEM, "out of memory putting an object");
	kc_gather(buf, iov, n);
	r = kray_put(k, &KRAY_V_BYTES(buf, size), ret_ref);
	free(buf);
	return r;
}

/* Queues one GET for refs that are not here yet; returns its request id, or 0 when out of
 * memory (nothing queued). */
static uint64_t send_get(struct kray *k, const kray_ref *refs, size_t n, int64_t timeout_ms)
{
	struct kray_msg_get m = { .timeout_ms = timeout_ms < 0 ? -1 : timeout_ms,
				  .n = (uint32_t)n,
				  .uffd = kc_lazy_uffd(k) };
	uint64_t req = ++k->next_req;
	size_t off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_GET, req, WIRE_FIXED(m),
				     WIRE_RAW(refs, n * sizeof(*refs)));

	return kc_end(k, off) ? 0 : req;
}

/*
 * Receives one reply to the GETs with request ids first.. first + nreq - 1 (sent for
 * consecutive chunks of KRAY_FDS_PER_MSG refs of ask/idx) and fills its values in.
 */
static int recv_get(struct kray *k, uint64_t first, size_t nreq, const size_t *idx, size_t nask,
		    int64_t timeout_ms, kray_value *vals)
{
	struct kray_frame_hdr h;
	struct wire_get_reply rep;
	const uint8_t *body;
	size_t chunk, n;
	int *fds;
	int r = kc_wait_range(k, KRAY_MSG_GET_REPLY, first, first + nreq - 1, &h, &body);

	if (r)
		return r;
	chunk = (size_t)(h.req - first) * KRAY_FDS_PER_MSG;
	n = nask - chunk < KRAY_FDS_PER_MSG ? nask - chunk : KRAY_FDS_PER_MSG;
	if (wire_dec_get_reply(body, h.len, &rep) || (rep.status == 0 && rep.n != n) ||
	    (unsigned)rep.nfds != KRAY_FRAME_NFDS(h.flags)) {
		kc_consume(k, &h);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed get reply from krayd");
	}
	if (rep.status) {
		kc_consume(k, &h);
		if (rep.status == -ECANCELED)
			return kc_fail(k, -ECANCELED,
				       "the task was cancelled while it waited in a get");
		return kc_fail(k, rep.status, "get timed out after %lld ms", (long long)timeout_ms);
	}
	fds = kc_frame_fds(k, &h);
	r = 0;
	for (size_t i = 0; i < n; i++) {
		struct wire_value w;

		wire_rd_value(&rep.values, &w); /* validated by wire_dec_get_reply() */
		/* Every value is taken, even after one ran out of memory: each owns a pin. */
		if (kc_take_value(k, &w, &fds, &vals[idx[chunk + i]]))
			r = kc_fail(k, -ENOMEM, "out of memory taking a value");
	}
	kc_consume(k, &h);
	return r;
}

KRAY_EXPORT int kray_get(struct kray *k, const kray_ref *refs, size_t n, int64_t timeout_ms,
			 kray_value *ret_vals)
{
	uint64_t first = 0;
	size_t *idx, nask = 0, nreq = 0;
	kray_value *vals;
	kray_ref *ask;
	int r = 0, first_err = -1;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (n > KRAY_REFS_MAX || (n && (!refs || !ret_vals)))
		return kc_fail(k, -EINVAL, "a get takes 0 to %d refs", KRAY_REFS_MAX);
	if (k->defer && n == 1 && k->out.len == k->defer_end && refs[0].node == k->node &&
	    refs[0].owner == k->client && refs[0].seq == k->defer_seq && refs[0].index == 0) {
		r = kc_fast_get(k, timeout_ms, ret_vals);
		if (r <= 0)
			return r;
		r = 0; /* the daemon path: the SUBMIT is queued again, or krayd has the result */
	}
	if (k->fast_nlate) {
		/* Fast calls whose earlier get timed out: their answers come on the fast
		 * connection (fast.c). */
		int64_t left = timeout_ms;

		r = kc_fast_settle(k, refs, n, &left);
		if (r == -ETIMEDOUT)
			return kc_fail(k, r, "get timed out after %lld ms", (long long)timeout_ms);
		if (r)
			return r;
		timeout_ms = left;
	}
	vals = calloc(n ? n : 1, sizeof(*vals));
	ask = malloc((n ? n : 1) * sizeof(*ask));
	idx = malloc((n ? n : 1) * sizeof(*idx));
	if (!vals || !ask || !idx) {
		free(vals);
		free(ask);
		free(idx);
		return kc_fail(k, -ENOMEM, "out of memory");
	}
	/* What this process has already, or the module holds, costs no round trip. */
	for (size_t i = 0; i < n; i++)
		if (!kc_cached(k, &refs[i], &vals[i]) && !kc_kmod_get(k, &refs[i], &vals[i])) {
			ask[nask] = refs[i];
			idx[nask++] = i;
		}
	if (nask) {
		if (k->ws)
			kc_worker_before_block(k);
		/* At most KRAY_FDS_PER_MSG refs per GET, so that each reply's descriptors
		 * fit in one message. */
		for (size_t i = 0; i < nask; i += KRAY_FDS_PER_MSG, nreq++) {
			uint64_t req =
				send_get(k, ask + i,
					 nask - i < KRAY_FDS_PER_MSG ? nask - i : KRAY_FDS_PER_MSG,
					 timeout_ms);

			if (!req) { /* out of memory: wait for the GETs queued, then fail */
				r = -ENOMEM;
				break;
			}
			if (!nreq)
				first = req;
		}
		for (size_t j = 0; j < nreq; j++) {
			int rr = recv_get(k, first, nreq, idx, nask, timeout_ms, vals);

			if (rr && !r)
				r = rr;
			if (rr && rr != -ETIMEDOUT && rr != -ENOMEM)
				break; /* the connection is gone or broken */
		}
		if (r == -ENOMEM)
			kc_fail(k, r, "out of memory in kray_get");
		for (size_t i = 0; i < nask && !r; i++)
			kc_cache_put(k, &ask[i], &vals[idx[i]]);
	}
	if (r) {
		for (size_t i = 0; i < n; i++)
			kray_value_clear(&vals[i]);
	} else {
		for (size_t i = 0; i < n && first_err < 0; i++)
			if (vals[i].type == KRAY_ERROR)
				first_err = (int)i;
		memcpy(ret_vals, vals, n * sizeof(*vals));
		if (first_err >= 0)
			r = kc_fail(k, -EREMOTEIO, "%s", (const char *)vals[first_err].data);
	}
	free(vals);
	free(ask);
	free(idx);
	return r;
}

KRAY_EXPORT int kray_wait(struct kray *k, const kray_ref *refs, size_t n, size_t num_ready,
			  int64_t timeout_ms, uint8_t *ret_ready, size_t *ret_num_ready)
{
	struct kray_msg_wait m = { .timeout_ms = timeout_ms < 0 ? -1 : timeout_ms,
				   .n = (uint32_t)n,
				   .num_ready = (uint32_t)num_ready };
	struct kray_frame_hdr h;
	struct wire_rd rd;
	struct kray_msg_wait_reply rep;
	const void *flags;
	const uint8_t *body;
	uint64_t req = ++k->next_req;
	size_t off, count = 0;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (n > KRAY_REFS_MAX || num_ready > n || (n && (!refs || !ret_ready)))
		return kc_fail(k, -EINVAL, "a wait takes 0 to %d refs and num_ready <= n",
			       KRAY_REFS_MAX);
	/* Objects the module holds are sealed: when it holds them all, they are all ready
	 * (small objects never enter the module: such a wait asks krayd). */
	if (kc_kmod_all_ready(k, refs, n)) {
		memset(ret_ready, 1, n);
		if (ret_num_ready)
			*ret_num_ready = n;
		return 0;
	}
	if (k->fast_nlate) {
		/* Fast calls whose get timed out: waited for here, up to the timeout (krayd has
		 * not heard of them); those still in flight then are not ready. */
		int64_t left = timeout_ms;

		r = kc_fast_settle(k, refs, n, &left);
		if (r && r != -ETIMEDOUT)
			return r;
		m.timeout_ms = r ? 0 : left < 0 ? -1 : left;
	}
	if (k->ws)
		kc_worker_before_block(k);
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_WAIT, req, WIRE_FIXED(m),
			      WIRE_RAW(refs, n * sizeof(*refs)));
	if ((r = kc_end(k, off)))
		return r;
	r = kc_wait(k, KRAY_MSG_WAIT_REPLY, req, &h, &body);
	if (r)
		return r;
	wire_rd_init(&rd, body, h.len);
	if (wire_rd_fixed(&rd, &rep, sizeof(rep)) || rep.n != n || wire_rd_bytes(&rd, n, &flags) ||
	    wire_rd_end(&rd)) {
		kc_consume(k, &h);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed wait reply from krayd");
	}
	if (rep.status) {
		kc_consume(k, &h);
		if (rep.status == -ECANCELED)
			return kc_fail(k, -ECANCELED,
				       "the task was cancelled while it waited in a wait");
		k->broken = true;
		return kc_fail(k, -EBADMSG, "krayd answered a wait with status %d", rep.status);
	}
	for (size_t i = 0; i < n; i++) {
		ret_ready[i] = ((const uint8_t *)flags)[i] && !kc_fast_is_late(k, &refs[i]);
		count += ret_ready[i];
	}
	kc_consume(k, &h);
	if (ret_num_ready)
		*ret_num_ready = count;
	return 0;
}

/* 1 when refs[n] may go in a HOLD or RELEASE (what names it), 0 when there is nothing to
 * send, or -errno. */
static int check_refs(struct kray *k, const kray_ref *refs, size_t n, const char *what)
{
	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!n)
		return 0;
	if (n > KRAY_REFS_MAX || !refs)
		return kc_fail(k, -EINVAL, "a %s takes 1 to %d refs", what, KRAY_REFS_MAX);
	return 1;
}

KRAY_EXPORT int kray_hold(struct kray *k, const kray_ref *refs, size_t n)
{
	struct kray_msg_refs m = { .n = (uint32_t)n };
	int r = check_refs(k, refs, n, "hold");

	if (r <= 0)
		return r;
	return kc_end(k, WIRE_FRAME_OPEN(&k->out, KRAY_MSG_HOLD, 0, WIRE_FIXED(m),
					 WIRE_RAW(refs, n * sizeof(*refs))));
}

KRAY_EXPORT int kray_release(struct kray *k, const kray_ref *refs, size_t n)
{
	struct kray_msg_refs m = { .n = (uint32_t)n };
	int r = check_refs(k, refs, n, "release");
	size_t off;

	if (r <= 0)
		return r;
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_RELEASE, 0, WIRE_FIXED(m));
	if (!kbuf_pending(&k->fast_pending) && !k->fast_nlate)
		kbuf_put(&k->out, refs, n * sizeof(*refs));
	else /* fast results krayd never heard of stay unheard */
		for (size_t i = 0; i < n; i++)
			if (!kc_fast_forget(k, &refs[i]))
				kbuf_put(&k->out, &refs[i], sizeof(*refs));
	if (k->out.nomem) /* nothing released: the caller may try again */
		return kc_end(k, off);
	m.n = (uint32_t)((k->out.len - off - sizeof(struct kray_frame_hdr) - sizeof(m)) /
			 sizeof(*refs));
	if (!m.n)
		k->out.len = off;
	else
		memcpy(k->out.data + off + sizeof(struct kray_frame_hdr), &m, sizeof(m));
	if (m.n)
		wire_end(&k->out, off);
	for (size_t i = 0; i < n; i++) {
		kc_cache_drop(k, &refs[i]);
		if (refs[i].index == KRAY_OID_ACTOR && k->fast_nactors)
			kc_fast_actor_released(k, &refs[i]);
	}
	kc_kmod_unhold(k, refs, n);
	return maybe_flush(k);
}

KRAY_EXPORT int kray_flush(struct kray *k)
{
	return k->broken ? kc_fail(k, -EPIPE, "the connection to krayd is broken") : kc_flush(k);
}

/* An empty request of type answered by a reply of a fixed size copied into ret. */
static int fixed_request(struct kray *k, uint16_t type, uint16_t reply, void *ret, size_t size,
			 const char *what)
{
	struct kray_frame_hdr h;
	const uint8_t *body;
	uint64_t req = ++k->next_req;
	size_t off;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	off = wire_frame_open(&k->out, type, req, NULL, 0);
	if ((r = kc_end(k, off)))
		return r;
	r = kc_wait(k, reply, req, &h, &body);
	if (r)
		return r;
	r = wire_dec_fixed(body, h.len, ret, size);
	kc_consume(k, &h);
	return r ? kc_fail(k, -EBADMSG, "malformed %s reply from krayd", what) : 0;
}

KRAY_EXPORT int kray_status(struct kray *k, struct kray_stats *ret_stats)
{
	_Static_assert(sizeof(struct kray_stats) == sizeof(struct kray_wire_stats),
		       "stats layouts agree");
	return fixed_request(k, KRAY_MSG_STATUS, KRAY_MSG_STATUS_REPLY, ret_stats,
			     sizeof(*ret_stats), "status");
}

KRAY_EXPORT int kray_guard_status(struct kray *k, struct kray_guard_stats *ret)
{
	_Static_assert(sizeof(struct kray_guard_stats) == sizeof(struct kray_wire_guards),
		       "guards layouts agree");
	return fixed_request(k, KRAY_MSG_GUARDS, KRAY_MSG_GUARDS_REPLY, ret, sizeof(*ret),
			     "guards");
}
