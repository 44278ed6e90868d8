// SPDX-License-Identifier: Apache-2.0
/*
 * Streaming generators (Ray's num_returns="streaming"), both sides.  The worker sends
 * each item with YIELD while the call runs; krayd seals it into the pending object
 * (task, 1 + i) the caller holds, and makes the next one (task_yield(), daemon/core).
 * The caller waits on that object like on any ref: a blocking get, a wait, an async get.
 * When the call ends, krayd seals the pending object with KRAY_ERR_STREAM_END, or with
 * the call's error (cancelled, worker died), and makes no other.
 */
#include <errno.h>
#include <string.h>

#include "client.h"
#include "worker.h"

static int send_yield(kray_ctx *ctx, struct kray *k, const kray_value *v, const kray_ref *refs,
		      size_t nrefs)
{
	struct kray_msg_yield m = { .task = *(const struct kray_oid *)&ctx->task,
				    .index = ctx->yielded };
	size_t off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_YIELD, 0, WIRE_FIXED(m));
	int r;

	if (v->type == KRAY_REF) /* a large item, already in the store: moved */
		wire_put_value(&k->out, KRAY_WT_OBJECT, 0, 0, &v->ref, sizeof(v->ref));
	else
		kc_put_value(&k->out, v, (const struct kray_oid *)refs, (uint16_t)nrefs);
	if ((r = kc_end(k, off)))
		return r;
	ctx->yielded++;
	/* The caller is waiting for it: it goes now, not with the result. */
	return kc_flush(k);
}

KRAY_EXPORT int kray_yield(kray_ctx *ctx, const kray_value *v, const kray_ref *refs, size_t nrefs)
{
	struct kray *k = ctx ? kray_ctx_client(ctx) : NULL;
	kray_value big;
	int r;

	if (!k || !v ||
	    (v->type != KRAY_NIL && v->type != KRAY_INT64 && v->type != KRAY_F64 &&
	     v->type != KRAY_BYTES) ||
	    (v->type == KRAY_BYTES && v->len && !v->data) || v->len > KRAY_OBJECT_MAX ||
	    nrefs > UINT16_MAX || (nrefs && (!refs || v->type != KRAY_BYTES)))
		return -EINVAL;
	if (v->type == KRAY_BYTES && v->len > k->inline_max) {
		if (nrefs)
			return -EINVAL; /* values that contain refs must fit inline */
		struct iovec one = { (void *)v->data, v->len };

		if ((r = kc_put_large(k, &one, 1, NULL, 0, &big.ref)))
			return r;
		return kray_yield_object(ctx, &big.ref);
	}
	return send_yield(ctx, k, v, refs, nrefs);
}

KRAY_EXPORT int kray_yield_object(kray_ctx *ctx, const kray_ref *ref)
{
	struct kray *k = ctx ? kray_ctx_client(ctx) : NULL;
	kray_value v;
	int r;

	if (!k || !ref || ref->index != KRAY_OID_PUT || ref->owner != k->client)
		return -EINVAL;
	v = (kray_value){ .type = KRAY_REF, .ref = *ref };
	r = send_yield(ctx, k, &v, NULL, 0);
	if (!r)
		kc_kmod_unhold(k, ref, 1); /* krayd moves it into the item: no longer ours */
	return r;
}

KRAY_EXPORT int kray_stream_next(kray *k, kray_ref *stream, int64_t timeout_ms, kray_ref *ret_item)
{
	kray_ref item, next;
	kray_value v = { 0 };
	bool last;
	int r;

	if (!k || !stream || !ret_item)
		return -EINVAL;
	if (stream->index == KRAY_OID_PUT)
		return 1; /* ended */
	item = *stream;
	item.index++;
	/* Its value says whether it is an item, the end, or the call's error (a small value
	 * is then in this process's cache for the caller's own get). */
	r = kray_get(k, &item, 1, timeout_ms, &v);
	if (r && r != -EREMOTEIO)
		return r;
	if (v.type == KRAY_ERROR && v.err == KRAY_ERR_STREAM_END) {
		kray_value_clear(&v);
		kray_release(k, &item, 1);
		stream->index = KRAY_OID_PUT;
		return 1;
	}
	last = v.type == KRAY_ERROR; /* the call failed here: nothing follows */
	if (v.nrefs) /* only looked: the caller's own get borrows them */
		kray_release(k, v.refs, v.nrefs);
	kray_value_clear(&v);
	*ret_item = item;
	if (last) {
		stream->index = KRAY_OID_PUT;
		return 0;
	}
	/* krayd made the next item's object, held by this process, when it sealed this one. */
	stream->index++;
	next = *stream;
	next.index++;
	kc_hold(k, &next, 1);
	return 0;
}

KRAY_EXPORT int kray_stream_close(kray *k, kray_ref *stream)
{
	kray_ref next;

	if (!k || !stream || stream->index == KRAY_OID_PUT)
		return 0;
	next = *stream;
	next.index++;
	stream->index = KRAY_OID_PUT;
	return kray_release(k, &next, 1);
}
