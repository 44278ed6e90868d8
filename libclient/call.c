// SPDX-License-Identifier: Apache-2.0
/*
 * One call in a worker, from EXEC to RESULT: find what to run (a remote function, an
 * actor's constructor or method), turn the arguments into kray_values (large ones are
 * read-only views of the store), run it, and answer with its return slots or one error.
 * Preparing and finishing happen on the worker's loop thread; running may happen on an
 * actor's method thread, where the context has no connection (ctx->k is NULL) and large
 * return values are moved into the store when the call is finished.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "worker.h"

/* ---- the context remote functions see ---- */

/* Moves a large value into the object store and leaves an internal KRAY_REF naming it in
 * the slot: krayd moves that object into the task's return slot.  Loop thread only. */
static int store_large(kray_ctx *ctx, kray_value *dst, const void *data, size_t len,
		       const kray_ref *refs, size_t nrefs)
{
	struct iovec one = { (void *)data, len };
	kray_ref id;
	int r = kc_put_large(ctx->k, &one, 1, refs, (uint16_t)nrefs, &id);

	if (r) {
		/* The task fails with the store's reason, whatever the function does. */
		ctx->store_err = r;
		free(ctx->err);
		ctx->err = wire_errmsg(NULL, "%s", ctx->k->err);
		return r;
	}
	*dst = (kray_value){ .type = KRAY_REF, .ref = id };
	return 0;
}

KRAY_EXPORT int kray_return(kray_ctx *ctx, unsigned idx, const kray_value *v)
{
	kray_value *dst;
	uint64_t scalar = 0;

	if (idx >= ctx->num_returns || !v ||
	    (v->type != KRAY_NIL && v->type != KRAY_INT64 && v->type != KRAY_F64 &&
	     v->type != KRAY_BYTES) ||
	    (v->type == KRAY_BYTES && v->len && !v->data) || v->len > KRAY_OBJECT_MAX)
		return -EINVAL;
	dst = &ctx->rets[idx];
	kray_value_clear(dst);
	if (v->type == KRAY_BYTES && ctx->k && v->len > ctx->k->inline_max)
		return store_large(ctx, dst, v->data, v->len, NULL, 0);
	memcpy(&scalar, v->type == KRAY_F64 ? (const void *)&v->f : (const void *)&v->i,
	       sizeof(scalar));
	return kc_mem_value((uint8_t)v->type, scalar, v->data, v->type == KRAY_BYTES ? v->len : 0,
			    dst);
}

KRAY_EXPORT int kray_return_refs(kray_ctx *ctx, unsigned idx, const kray_value *v,
				 const kray_ref *refs, size_t nrefs)
{
	kray_value *dst;

	if (!nrefs)
		return kray_return(ctx, idx, v);
	if (idx >= ctx->num_returns || !v || v->type != KRAY_BYTES || (v->len && !v->data) ||
	    !refs || nrefs > UINT16_MAX)
		return -EINVAL;
	dst = &ctx->rets[idx];
	kray_value_clear(dst);
	/* A large one goes to the store now, with its refs (as kray_return does). */
	if (ctx->k && v->len > ctx->k->inline_max)
		return store_large(ctx, dst, v->data, v->len, refs, nrefs);
	return kc_mem_value_refs(KRAY_WT_BYTES, v->data, v->len, refs, nrefs, dst);
}

KRAY_EXPORT int kray_return_object(kray_ctx *ctx, unsigned idx, const kray_ref *ref)
{
	struct kray *k = kray_ctx_client(ctx);
	kray_value *dst;

	/* krayd checks that the object is this worker's own and sealed when it moves it. */
	if (idx >= ctx->num_returns || !ref || !k || ref->index != KRAY_OID_PUT ||
	    ref->owner != k->client)
		return -EINVAL;
	dst = &ctx->rets[idx];
	kray_value_clear(dst);
	*dst = (kray_value){ .type = KRAY_REF, .ref = *ref };
	return 0;
}

KRAY_EXPORT int kray_return_int(kray_ctx *ctx, unsigned idx, int64_t x)
{
	return kray_return(ctx, idx, &KRAY_V_INT(x));
}

KRAY_EXPORT int kray_return_f64(kray_ctx *ctx, unsigned idx, double x)
{
	return kray_return(ctx, idx, &KRAY_V_F64(x));
}

KRAY_EXPORT int kray_return_bytes(kray_ctx *ctx, unsigned idx, const void *data, size_t len)
{
	return kray_return(ctx, idx, &KRAY_V_BYTES(data, len));
}

KRAY_EXPORT int kray_fail(kray_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	free(ctx->err);
	ctx->err = wire_errmsg_v(NULL, fmt, ap);
	va_end(ap);
	ctx->failed = true;
	return -EREMOTEIO;
}

KRAY_EXPORT void kray_ctx_raised(kray_ctx *ctx)
{
	ctx->raised = true;
}

KRAY_EXPORT kray *kray_ctx_client(kray_ctx *ctx)
{
	return ctx->k ? ctx->k : ctx->shared;
}

KRAY_EXPORT unsigned kray_ctx_max_concurrency(const kray_ctx *ctx)
{
	return ctx->max_concurrency ? ctx->max_concurrency : 1;
}

KRAY_EXPORT int kray_ctx_host(kray_ctx *ctx, const struct kray_host_opts *o)
{
	struct call *c = (struct call *)((char *)ctx - offsetof(struct call, ctx));

	if (!o || !ctx->k || !ctx->k->ws || !c->x.m.ctor || !o->lock != !o->unlock)
		return -EINVAL;
	ctx->k->ws->hopts = *o;
	return 0;
}

KRAY_EXPORT int kray_ctx_done(kray_ctx *ctx, int rc)
{
	struct call *c = (struct call *)((char *)ctx - offsetof(struct call, ctx));

	if (!c->host)
		return -EINVAL;
	host_finish(c->host, c, rc, (uint64_t)kc_mono_ns() - c->t0);
	return 0;
}

KRAY_EXPORT kray_ref kray_ctx_task(const kray_ctx *ctx)
{
	return ctx->task;
}

KRAY_EXPORT unsigned kray_ctx_num_returns(const kray_ctx *ctx)
{
	return ctx->num_returns;
}

/* ---- one call ---- */

volatile uintptr_t kc_cancel_asked; /* set by worker.c's signal handler */

struct exec *exec_new(unsigned nfds, uint32_t len)
{
	struct exec *e = malloc(sizeof(*e) + nfds * sizeof(int) + len);

	if (!e)
		return NULL;
	*e = (struct exec){ .len = len, .nfds = nfds, .fds = e->data };
	e->body = (uint8_t *)(e->data + nfds);
	return e;
}

void exec_free(struct exec *e)
{
	for (unsigned i = 0; i < e->nfds; i++)
		if (e->fds[i] >= 0)
			close(e->fds[i]);
	if (e->body_apart)
		free(e->body);
	free(e);
}

/* Where a call's RESULT goes: krayd, or the fast task's answer (worker.c sends it). */
static struct kbuf *results(struct kray *k)
{
	return k->ws && k->ws->results ? k->ws->results : &k->out;
}

static void put_error(struct kray *k, const struct kray_oid *task, uint64_t ns, uint8_t err,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void put_error(struct kray *k, const struct kray_oid *task, uint64_t ns, uint8_t err,
		      const char *fmt, ...)
{
	struct kray_msg_result m = { .task = *task, .exec_ns = ns, .n = 1 };
	struct kbuf *b = results(k);
	va_list ap;
	size_t off = WIRE_FRAME_OPEN(b, KRAY_MSG_RESULT, 0, WIRE_FIXED(m));

	va_start(ap, fmt);
	wire_put_verrorf(b, err, fmt, ap);
	va_end(ap);
	if (wire_end(b, off))
		k->ws->nomem = true;
}

void call_refuse(struct kray *k, struct exec *e, uint8_t err, const char *msg)
{
	struct kray_msg_exec x;

	memcpy(&x, e->body, sizeof(x)); /* on_frame() took only EXECs this long */
	put_error(k, &x.task, 0, err, "%s", msg);
	exec_free(e);
}

static void call_free(struct call *c)
{
	for (unsigned i = 0; c->args && i < c->x.m.nargs; i++)
		if (c->args[i].priv_)
			kray_value_clear(&c->args[i]);
	for (unsigned i = 0; c->ctx.rets && i < c->x.m.num_returns; i++)
		if (c->ctx.rets[i].type != KRAY_REF)
			kray_value_clear(&c->ctx.rets[i]);
	free(c->ctx.rets);
	free(c->ctx.err);
	free(c->args);
	exec_free(c->e);
	free(c);
}

/* The length of a name's symbol part.  A name "fn:label" runs fn; the label (a Python
 * function's qualified name, say) only names the task to krayd's per-function statistics,
 * to errors and to kray top. */
static int sym_len(const char *name)
{
	const char *colon = strchr(name, ':');

	return colon ? (int)(colon - name) : (int)strlen(name);
}

/* Finds what c runs.  Returns 0, or answers with an error and returns -1. */
static int resolve(struct kray *k, struct call *c)
{
	struct worker_state *ws = k->ws;
	struct job *j = code_job(ws, c->x.m.job);
	char sym[2 * KRAY_NAME_MAX + 32], why[1200];
	int32_t nargs;

	if (c->x.m.ctor) {
		const struct kray_class_desc *cls;

		snprintf(sym, sizeof(sym), KRAY_CLASS_SYMBOL_PREFIX "%.*s", sym_len(c->name),
			 c->name);
		cls = code_find(j, sym);
		if (!cls || cls->abi != KRAY_FN_ABI) {
			code_describe(j, why, sizeof(why));
			put_error(k, &c->x.m.task, 0, KRAY_WE_UNKNOWN_FUNCTION,
				  "unknown actor class '%s': %s", c->name, why);
			return -1;
		}
		c->method = cls->ctor;
		c->self = calloc(1, cls->state_size ? cls->state_size : 1);
		if (!c->self) {
			put_error(k, &c->x.m.task, 0, KRAY_WE_INTERNAL,
				  "out of memory for the state of actor class '%s'", c->name);
			return -1;
		}
		nargs = cls->nargs;
	} else if (ws->cls) {
		const struct kray_method_desc *m;

		snprintf(sym, sizeof(sym), KRAY_METHOD_SYMBOL_PREFIX "%s__%.*s", ws->cls->name,
			 sym_len(c->name), c->name);
		m = code_find(ws->cls_job, sym);
		if (!m || m->abi != KRAY_FN_ABI) {
			put_error(k, &c->x.m.task, 0, KRAY_WE_UNKNOWN_FUNCTION,
				  "actor class '%s' has no method '%s'", ws->cls->name, c->name);
			return -1;
		}
		c->method = m->fn;
		c->self = ws->self;
		nargs = m->nargs;
	} else {
		const struct kray_fn_desc *f = NULL;

		/* Tasks come in runs of one function: the last one found is kept. */
		if (j && j == ws->fn_job && !strcmp(c->name, ws->fn_name)) {
			f = ws->fn;
		} else {
			snprintf(sym, sizeof(sym), KRAY_FN_SYMBOL_PREFIX "%.*s", sym_len(c->name),
				 c->name);
			f = code_find(j, sym);
			if (f && f->abi == KRAY_FN_ABI) {
				ws->fn_job = j;
				ws->fn = f;
				memcpy(ws->fn_name, c->name, sizeof(ws->fn_name));
			}
		}
		if (!f || f->abi != KRAY_FN_ABI) {
			code_describe(j, why, sizeof(why));
			put_error(k, &c->x.m.task, 0, KRAY_WE_UNKNOWN_FUNCTION,
				  "unknown function '%s': %s", c->name, why);
			return -1;
		}
		c->fn = f->fn;
		nargs = f->nargs;
	}
	if (nargs != KRAY_NARGS_ANY && (unsigned)nargs != c->x.m.nargs) {
		put_error(k, &c->x.m.task, 0, KRAY_WE_BAD_ARGS, "%s() takes %d argument%s, got %u",
			  c->name, nargs, nargs == 1 ? "" : "s", c->x.m.nargs);
		return -1;
	}
	return 0;
}

/* Turns the wire arguments into kray_values.  Returns 0, or answers and returns -1. */
static int take_args(struct kray *k, struct call *c)
{
	int *fds = c->e->fds;
	unsigned nfd = 0;

	c->args = calloc(c->x.m.nargs ? c->x.m.nargs : 1, sizeof(*c->args));
	if (!c->args) {
		put_error(k, &c->x.m.task, 0, KRAY_WE_INTERNAL, "out of memory for arguments");
		return -1;
	}
	for (unsigned i = 0; i < c->x.m.nargs; i++) {
		kray_value *a = &c->args[i];
		struct wire_value w;

		wire_rd_value(&c->x.args, &w); /* validated by wire_dec_exec() */
		switch (w.type) {
		case KRAY_WT_FD: {
			/* A large argument: a read-only view of the store's memory. */
			int *f = nfd < c->e->nfds ? fds + nfd : NULL;

			kc_take_value(k, &w, &f, a);
			nfd++;
			if (a->type == KRAY_ERROR) {
				put_error(k, &c->x.m.task, 0, KRAY_WE_INTERNAL,
					  "argument %u of '%s': %s", i, c->name,
					  (const char *)a->data);
				return -1;
			}
			break;
		}
		case KRAY_WT_ACTOR:
			*a = (kray_value){ .type = KRAY_ACTOR };
			memcpy(&a->ref, w.data, sizeof(a->ref));
			break;
		default:
			/* Refs the argument contains are lent to this call (krayd takes them
			 * back when it answers). */
			*a = (kray_value){ .type = (enum kray_type)w.type,
					   .data = w.data,
					   .len = w.len,
					   .refs = (const kray_ref *)w.refs,
					   .nrefs = w.nrefs };
			memcpy(w.type == KRAY_WT_F64 ? (void *)&a->f : (void *)&a->i, &w.scalar,
			       sizeof(w.scalar));
		}
	}
	return 0;
}

struct call *call_prepare(struct kray *k, struct exec *e)
{
	struct call *c = calloc(1, sizeof(*c));

	if (!c) {
		struct kray_msg_exec m;

		if (e->len >= sizeof(m)) {
			memcpy(&m, e->body, sizeof(m));
			put_error(k, &m.task, 0, KRAY_WE_INTERNAL, "out of memory in the worker");
		}
		exec_free(e);
		return NULL;
	}
	c->e = e;
	if (wire_dec_exec(e->body, e->len, &c->x)) {
		call_free(c); /* krayd sent garbage: nothing sensible to answer */
		return NULL;
	}
	memcpy(c->name, c->x.name, c->x.m.name_len);
	c->name[c->x.m.name_len] = 0;
	if (resolve(k, c) || take_args(k, c)) {
		if (c->x.m.ctor)
			free(c->self);
		call_free(c);
		return NULL;
	}
	c->ctx.k = k->ws->host && !c->x.m.ctor ? NULL : k;
	c->ctx.shared = k->ws->host && k->ws->hopts.lock ? k : NULL;
	c->ctx.max_concurrency = c->x.m.max_concurrency;
	c->host = c->x.m.ctor ? NULL : k->ws->host;
	memcpy(&c->ctx.task, &c->x.m.task, sizeof(c->ctx.task));
	c->ctx.num_returns = c->x.m.num_returns;
	c->ctx.rets = calloc(c->x.m.num_returns ? c->x.m.num_returns : 1, sizeof(*c->ctx.rets));
	if (!c->ctx.rets) {
		put_error(k, &c->x.m.task, 0, KRAY_WE_INTERNAL, "out of memory in the worker");
		if (c->x.m.ctor)
			free(c->self);
		call_free(c);
		return NULL;
	}
	return c;
}

void call_execute(struct call *c)
{
	int rc;

	c->t0 = (uint64_t)kc_mono_ns();
	if (c->fn && kc_cancel_asked &&
	    kc_cancel_asked == (uintptr_t)((uint64_t)c->ctx.task.owner << 32 | c->ctx.task.seq)) {
		/* Cancelled before it started here: krayd reports the cancellation. */
		kc_cancel_asked = 0;
		rc = kray_fail(&c->ctx, "cancelled before it started");
	} else if (c->fn) {
		rc = c->fn(&c->ctx, c->args, c->x.m.nargs);
	} else {
		rc = c->method(&c->ctx, c->self, c->args, c->x.m.nargs);
	}
	if (c->host) {
		/* Its host decides under its lock (host.c: the method may finish later). */
		c->returned = rc;
		c->returned_ns = (uint64_t)kc_mono_ns() - c->t0;
		return;
	}
	if (rc == KRAY_PENDING)
		rc = kray_fail(&c->ctx, "returned KRAY_PENDING outside an actor's host");
	c->not_run = rc == KRAY_NOT_RUN && c->fn;
	c->rc = rc;
	c->ns = (uint64_t)kc_mono_ns() - c->t0;
}

/* A constructor that succeeded makes this worker the actor's host. */
static void become_host(struct kray *k, struct call *c)
{
	struct worker_state *ws = k->ws;
	struct job *j = code_job(ws, c->x.m.job);
	char sym[KRAY_NAME_MAX + 32];
	const kray_dtor_fn *dtor;

	snprintf(sym, sizeof(sym), KRAY_CLASS_SYMBOL_PREFIX "%.*s", sym_len(c->name), c->name);
	ws->cls = code_find(j, sym);
	ws->cls_job = j;
	ws->self = c->self;
	snprintf(sym, sizeof(sym), KRAY_DTOR_SYMBOL_PREFIX "%.*s", sym_len(c->name), c->name);
	dtor = code_find(j, sym);
	ws->dtor = dtor ? *dtor : NULL;
	if (ws->hopts.deferred)
		ws->host = host_start(0, call_execute);
	else if (c->x.m.max_concurrency > 1)
		ws->host = host_start(c->x.m.max_concurrency, call_execute);
	if (!ws->host)
		ws->hopts = (struct kray_host_opts){ 0 }; /* one at a time, on the loop */
	else if (ws->hopts.lock)
		k->job = c->x.m.job; /* what its threads submit belongs to the actor's job */
}

void call_finish(struct kray *k, struct call *c)
{
	const char *what = c->x.m.ctor ? "constructor of" : c->method ? "method" : "task";
	bool ok = !c->rc && !c->ctx.failed && !c->ctx.store_err;

	if (c->not_run && k->ws->results) {
		/* A fast call it could not run from its stand-in argument: no answer here,
		 * so the driver sends it to krayd (kc_fast_reply: NOT_RUN). */
		call_free(c);
		return;
	}
	if (c->not_run && !c->ctx.failed)
		kray_fail(&c->ctx, "it cannot run from its arguments (returned KRAY_NOT_RUN "
				   "outside the fast path)");

	/* Large values returned on a method thread go to the store here. */
	for (unsigned i = 0; ok && i < c->x.m.num_returns; i++) {
		kray_value *v = &c->ctx.rets[i];

		if (v->type == KRAY_BYTES && v->len > k->inline_max) {
			kray_value copy = *v;

			c->ctx.k = k;
			*v = (kray_value){ 0 };
			ok = !store_large(&c->ctx, v, copy.data, copy.len, copy.refs, copy.nrefs);
			kray_value_clear(&copy);
		}
	}
	if (c->ctx.store_err) {
		put_error(k, &c->x.m.task, c->ns,
			  c->ctx.store_err == -ENOSPC ? KRAY_WE_STORE_FULL : KRAY_WE_INTERNAL,
			  "%s '%s' failed: its result: %s", what, c->name,
			  c->ctx.err ? c->ctx.err : "the object store refused it");
	} else if (!ok) {
		put_error(k, &c->x.m.task, c->ns, KRAY_WE_TASK, "%s '%s' failed: %s", what, c->name,
			  c->ctx.failed && c->ctx.err ? c->ctx.err :
			  c->ctx.failed		      ? wire_errmsg_oom :
							"returned an error code");
	} else {
		struct kbuf *b = results(k);
		struct kray_msg_result m = { .task = c->x.m.task,
					     .exec_ns = c->ns,
					     .n = c->x.m.num_returns,
					     .flags = c->ctx.raised ? KRAY_RESULT_RAISED : 0 };
		size_t off = WIRE_FRAME_OPEN(b, KRAY_MSG_RESULT, 0, WIRE_FIXED(m));

		for (unsigned i = 0; i < c->x.m.num_returns &&
				     b->len - off - sizeof(struct kray_frame_hdr) <= KRAY_FRAME_MAX;
		     i++) {
			const kray_value *v = &c->ctx.rets[i];
			uint64_t scalar = 0;

			if (v->type == KRAY_REF) { /* a large result, already in the store */
				wire_put_value(b, KRAY_WT_OBJECT, 0, 0, &v->ref, sizeof(v->ref));
				continue;
			}
			memcpy(&scalar,
			       v->type == KRAY_F64 ? (const void *)&v->f : (const void *)&v->i,
			       sizeof(scalar));
			wire_put_value_refs(b, (uint8_t)v->type, 0,
					    v->type == KRAY_BYTES ? 0 : scalar, v->data,
					    v->type == KRAY_BYTES ? (uint32_t)v->len : 0,
					    (const struct kray_oid *)v->refs, (uint16_t)v->nrefs);
		}
		if (b->len - off - sizeof(struct kray_frame_hdr) > KRAY_FRAME_MAX) {
			/* Many inline values past what one message carries: say so. */
			size_t bytes = b->len - off;

			b->len = off;
			for (unsigned i = 0; i < c->x.m.num_returns; i++)
				if (c->ctx.rets[i].type == KRAY_REF) /* stored for nothing */
					kray_release(k, &c->ctx.rets[i].ref, 1);
			put_error(k, &c->x.m.task, c->ns, KRAY_WE_TASK,
				  "%s '%s' failed: its results come to more than %zu bytes inline, "
				  "more than one message carries (%u)",
				  what, c->name, bytes, KRAY_FRAME_MAX);
		} else if (wire_end(b, off)) {
			/* Out of memory for the answer: the error is shorter. */
			put_error(k, &c->x.m.task, c->ns, KRAY_WE_INTERNAL,
				  "%s '%s': out of memory for its results", what, c->name);
		} else {
			/* Large results move into the return slots: no longer this worker's. */
			for (unsigned i = 0; i < c->x.m.num_returns; i++)
				if (c->ctx.rets[i].type == KRAY_REF)
					kc_kmod_unhold(k, &c->ctx.rets[i].ref, 1);
		}
	}
	if (c->x.m.ctor) {
		if (ok)
			become_host(k, c);
		else
			free(c->self);
	}
	call_free(c);
}
