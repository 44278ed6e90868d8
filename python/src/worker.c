// SPDX-License-Identifier: Apache-2.0
/*
 * The worker side of kray._kray: one Python task, actor constructor or method call, from
 * the kray_values libkray's worker loop hands the shim (libkray_python.so) to the return
 * slots.  The shim owns the interpreter and calls _worker_call() with the GIL held; what
 * to run is decided in kray/_worker.py.
 *
 * Arguments: small ones are copied (they live in the EXEC frame, freed after the call);
 * a large one, a read-only view of the store, is taken over by a _kray.Buffer when the
 * call runs on the loop thread, so an array argument is not copied and may outlive the
 * call.  On an actor's method thread the connection is off limits, and so is the view's
 * unpin: the bytes are copied there.
 *
 * Results: a large value is written once, into an object this worker creates, and moved
 * into the return slot (kray_return_object); a small one is copied into the slot; one
 * that contains refs goes with them (kray_return_refs).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "ext.h"

/*
 * An argument as a Python object.  The refs inside it were lent for the call; with the
 * worker's connection k they become the process's own (kray_hold(), sent before the
 * result), so that the task or actor may keep them, as Ray's borrowers do: each ObjectRef
 * releases its reference when it is freed.  Without k (a method thread) they stay lent.
 */
static PyObject *decode_arg(kray_value *a, kray *k)
{
	kray_value copy = *a;
	PyObject *buf, *o;
	bool own = false;

	if (k && a->nrefs && a->type != KRAY_ERROR) {
		int r;

		ext_lock();
		r = kray_hold(k, a->refs, a->nrefs);
		pthread_mutex_unlock(&ext_mu);
		own = !r;
	}
	if (a->priv_ && k) {
		/* The call's array no longer frees this view: the Buffer does. */
		a->priv_ = NULL;
		a->type = KRAY_NIL;
		return ext_decode(&copy, own);
	}
	if (a->type != KRAY_BYTES) {
		copy.priv_ = NULL; /* scalars and errors: nothing to free here */
		return ext_decode(&copy, own);
	}
	if (!(buf = PyBytes_FromStringAndSize(a->data, (Py_ssize_t)a->len)))
		return NULL;
	o = ext_decode_bytes(buf, PyBytes_AS_STRING(buf), a->len, a->refs, a->nrefs, own);
	Py_DECREF(buf);
	return o;
}

/* Sets return slot i from (kind, pickle, buffers, refs); with yield, sends it as the next item
 * of a streaming call instead (kray_yield()). */
static int set_return(kray_ctx *ctx, kray *k, uint32_t inline_max, unsigned i, PyObject *item,
		      bool yield)
{
	PyObject *pickle, *bufs, *reflist;
	struct ext_pieces pc;
	unsigned kind;
	size_t size, nrefs = 0;
	kray_ref *refs = NULL, id;
	void *p;
	int r;

	if (!PyArg_ParseTuple(item, "IO!O!O", &kind, &PyBytes_Type, &pickle, &PyList_Type, &bufs,
			      &reflist) ||
	    ext_refs(reflist, &refs, &nrefs))
		return -1;
	if (ext_pieces(kind, pickle, bufs, &pc)) {
		free(refs);
		return -1;
	}
	size = pc.size;
	if (kind == 1) /* the error the function raised (kray/_worker.py _error) */
		kray_ctx_raised(ctx);
	if (!nrefs && k && size > inline_max) {
		ext_lock();
		r = kray_put_iov(k, pc.iov, pc.n, &id);
		if (!r)
			r = yield ? kray_yield_object(ctx, &id) : kray_return_object(ctx, i, &id);
		pthread_mutex_unlock(&ext_mu);
		ext_pieces_release(&pc);
		free(refs);
		if (r) {
			ext_fail(k, r, "storing a result");
			return -1;
		}
		return 0;
	}
	p = malloc(size ? size : 1);
	if (!p) {
		ext_pieces_release(&pc);
		free(refs);
		PyErr_NoMemory();
		return -1;
	}
	ext_pieces_copy(&pc, p);
	ext_pieces_release(&pc);
	kray_value v = KRAY_V_BYTES(p, size);
	if (yield) {
		ext_lock();
		r = kray_yield(ctx, &v, refs, nrefs);
		pthread_mutex_unlock(&ext_mu);
	} else {
		r = nrefs ? kray_return_refs(ctx, i, &v, refs, nrefs) : kray_return(ctx, i, &v);
	}
	free(p);
	free(refs);
	if (r) {
		PyErr_Format(PyExc_ValueError,
			     "result %u (%zu bytes, %zu refs) cannot be returned: %s", i, size,
			     nrefs,
			     nrefs ? "values containing refs must fit inline" : strerror(-r));
		return -1;
	}
	return 0;
}

/* The worker connection's inline limit: krayd's, fixed at hello, so read once (under
 * ext_mu, in worker_call() or share()) and not locked again per result. */
static uint32_t worker_inline_max = 64 << 10;

/* Sets the return slots from kray/_worker.py's list of results. */
static int set_returns(kray_ctx *ctx, PyObject *res)
{
	unsigned nret = kray_ctx_num_returns(ctx);
	kray *k = kray_ctx_client(ctx);

	if (!PyList_Check(res) || PyList_GET_SIZE(res) != (Py_ssize_t)nret) {
		PyErr_Format(PyExc_RuntimeError, "the task returned the wrong number of values");
		return -1;
	}
	for (unsigned i = 0; i < nret; i++)
		if (set_return(ctx, k, worker_inline_max, i, PyList_GET_ITEM(res, i), false))
			return -1;
	return 0;
}

/* Under ext_mu: k is the worker's connection. */
static void note_worker_conn(kray *k)
{
	struct kray_ids ids;

	if (k == ext.worker_k)
		return;
	ext.worker_k = k;
	kray_ids(k, &ids);
	worker_inline_max = ids.inline_max;
}

static void mu_lock(void *mu)
{
	pthread_mutex_lock(mu);
}

static void mu_unlock(void *mu)
{
	pthread_mutex_unlock(mu);
}

/* An async actor's loop thread waits in its event loop (kray/_aio.py ActorLoop.wait). */
static void loop_wait(void *arg, const int *fds, unsigned n)
{
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *mod, *r = NULL;

	(void)arg;
	ext_loop_thread = true;
	mod = PyImport_ImportModule("kray._worker");
	if (mod)
		r = PyObject_CallMethod(mod, "wait_in_loop", "(ii)", fds[0], n > 1 ? fds[1] : -1);
	if (!r) {
		/* The loop cannot run: say so, and let the worker's poll wait. */
		PyErr_Print();
		usleep(1000);
	}
	Py_XDECREF(r);
	Py_XDECREF(mod);
	PyGILState_Release(g);
}

/* kray_cancel() of an async actor's started call: its coroutine is cancelled
 * (kray/_worker.py cancel_call), as in Ray. */
static void loop_cancel(void *arg, kray_ref task)
{
	PyGILState_STATE g = PyGILState_Ensure();
	PyObject *mod, *r = NULL;

	(void)arg;
	mod = PyImport_ImportModule("kray._worker");
	if (mod)
		r = PyObject_CallMethod(mod, "cancel_call", "((IIII))", task.node, task.owner,
					task.seq, task.index);
	if (!r)
		PyErr_Print();
	Py_XDECREF(r);
	Py_XDECREF(mod);
	PyGILState_Release(g);
}

/* An actor whose methods run on threads or on an event loop (kray/_worker.py's host: 1
 * libkray's threads, 2 an event loop, 3 thread pools of Python's, which finish the calls
 * later) shares the connection with them under ext_mu. */
static int share(kray_ctx *ctx, int host)
{
	struct kray_host_opts o = {
		.lock = mu_lock,
		.unlock = mu_unlock,
		.arg = &ext_mu,
		.deferred = host >= 2,
		.wait = host == 2 ? loop_wait : NULL,
		.cancel = host == 2 ? loop_cancel : NULL,
	};
	int r;

	if (!host)
		return 0;
	r = kray_ctx_host(ctx, &o);
	if (r) {
		PyErr_Format(PyExc_RuntimeError, "kray_ctx_host: %s", strerror(-r));
		return -1;
	}
	ext_lock();
	ext.shared_k = kray_ctx_client(ctx);
	note_worker_conn(ext.shared_k);
	pthread_mutex_unlock(&ext_mu);
	return 0;
}

/*
 * _worker_call(ctx, args, nargs, mode, selfp) -> None, True when the method finishes
 * later (_worker_done), or False when a task did not run (its function blob came by id,
 * on the fast path, and this worker cannot load it: KRAY_NOT_RUN).  mode 0: a task, 1: an actor's constructor (the instance is
 * stored at selfp), 2: a method of the instance at selfp.  Raises only when the call
 * cannot be answered normally (the shim then fails the task with the message).
 */
static PyObject *worker_call(PyObject *self, PyObject *args)
{
	unsigned long long ctx_addr, args_addr, self_addr;
	Py_ssize_t nargs;
	int mode;
	PyObject *mod = NULL, *fn = NULL, *pargs = NULL, *inst, *res = NULL, *out = NULL;
	kray_ctx *ctx, *saved = ext_ctx;
	kray_value *vals;
	PyObject **selfp;
	unsigned nret;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "KKniK", &ctx_addr, &args_addr, &nargs, &mode, &self_addr))
		return NULL;
	ctx = (kray_ctx *)(uintptr_t)ctx_addr;
	vals = (kray_value *)(uintptr_t)args_addr;
	selfp = (PyObject **)(uintptr_t)self_addr;
	k = kray_ctx_client(ctx);
	nret = kray_ctx_num_returns(ctx);
	ext.in_worker = true;
	ext_ctx = ctx;
	ext_lock();
	if (k) {
		note_worker_conn(k);
		/* Results of earlier calls were sent before this EXEC was read: what they
		 * held can go now. */
		ext_flush_pending(k);
	}
	pthread_mutex_unlock(&ext_mu);

	if (!(pargs = PyList_New(nargs)))
		goto out;
	for (Py_ssize_t i = 0; i < nargs; i++) {
		/* Left pickled: the worker unpickles them (kray/_worker.py) once the function's
		 * blob has put its sender's sys.path in place, which the arguments may need. */
		PyObject *o = decode_arg(&vals[i], k);

		if (!o)
			goto out;
		PyList_SET_ITEM(pargs, i, o);
	}
	/* Looked up once: this runs for every task. */
	static PyObject *execute;

	if (!execute && (!(mod = PyImport_ImportModule("kray._worker")) ||
			 !(execute = PyObject_GetAttrString(mod, "execute"))))
		goto out;
	fn = execute;
	Py_INCREF(fn);
	kray_ref task = kray_ctx_task(ctx);
	PyObject *tid = Py_BuildValue("(IIII)", task.node, task.owner, task.seq, task.index);

	if (!tid)
		goto out;
	inst = mode == 0 ? Py_None : (*selfp ? *selfp : Py_None);
	res = PyObject_CallFunction(fn, "iOOINKI", mode, pargs, inst, nret, tid,
				    (unsigned long long)(uintptr_t)ctx,
				    kray_ctx_max_concurrency(ctx));
	if (!res)
		goto out;
	if (mode == 0 && res == Py_False) {
		/* A fast call whose function this worker has not loaded (the shim returns
		 * KRAY_NOT_RUN: the driver sends it to krayd with the blob). */
		out = Py_False;
		Py_INCREF(out);
		goto out;
	}
	if (mode == 2 && res == Py_None) { /* it finishes later: _worker_done() */
		out = Py_True;
		Py_INCREF(out);
		goto out;
	}
	if (mode == 1) {
		/* The constructor returns (instance, None, host) or (None, error results, 0). */
		PyObject *obj, *errs;
		int host;

		if (!PyArg_ParseTuple(res, "OOi", &obj, &errs, &host))
			goto out;
		if (obj != Py_None) {
			if (share(ctx, host))
				goto out;
			Py_INCREF(obj);
			Py_XDECREF(*selfp);
			*selfp = obj;
			out = Py_None;
			Py_INCREF(out);
			goto out;
		}
		PyErr_SetObject(PyExc_RuntimeError, errs);
		goto out;
	}
	if (set_returns(ctx, res))
		goto out;
	out = Py_None;
	Py_INCREF(out);
out:
	ext_ctx = saved;
	Py_XDECREF(res);
	Py_XDECREF(fn);
	Py_XDECREF(mod);
	Py_XDECREF(pargs);
	return out;
}

/* _worker_done(ctx, results): a method that _worker_call() left pending finishes, from
 * any thread. */
static PyObject *worker_done(PyObject *self, PyObject *args)
{
	unsigned long long ctx_addr;
	PyObject *res;
	kray_ctx *ctx;
	int rc = 0;

	(void)self;
	if (!PyArg_ParseTuple(args, "KO", &ctx_addr, &res))
		return NULL;
	ctx = (kray_ctx *)(uintptr_t)ctx_addr;
	if (set_returns(ctx, res)) {
		PyObject *type, *value, *tb, *s;

		PyErr_Fetch(&type, &value, &tb);
		s = value ? PyObject_Str(value) : NULL;
		rc = kray_fail(ctx, "%s", s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "error");
		PyErr_Clear();
		Py_XDECREF(s);
		Py_XDECREF(type);
		Py_XDECREF(value);
		Py_XDECREF(tb);
	}
	kray_ctx_done(ctx, rc);
	Py_RETURN_NONE;
}

/* _worker_yield(ctx, item): the next item of a streaming call (kray/_generators.py), sent
 * to its caller now. */
static PyObject *worker_yield(PyObject *self, PyObject *args)
{
	unsigned long long ctx_addr;
	PyObject *item;
	kray_ctx *ctx;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "KO", &ctx_addr, &item))
		return NULL;
	ctx = (kray_ctx *)(uintptr_t)ctx_addr;
	k = kray_ctx_client(ctx);
	if (!k)
		return PyErr_Format(PyExc_RuntimeError,
				    "a streaming generator cannot run on this thread");
	if (set_return(ctx, k, worker_inline_max, 0, item, true))
		return NULL;
	Py_RETURN_NONE;
}

/* _ctx_cancelled(ctx): whether kray.cancel() asked the running call to stop (Ray's
 * get_runtime_context().is_canceled()). */
static PyObject *worker_cancelled(PyObject *self, PyObject *arg)
{
	kray_ctx *ctx = (kray_ctx *)(uintptr_t)PyLong_AsUnsignedLongLong(arg);

	(void)self;
	if (PyErr_Occurred())
		return NULL;
	return PyBool_FromLong(kray_ctx_cancelled(ctx));
}

/* _drop_instance(selfp): the actor ends normally. */
static PyObject *worker_drop(PyObject *self, PyObject *arg)
{
	PyObject **selfp = (PyObject **)(uintptr_t)PyLong_AsUnsignedLongLong(arg);

	(void)self;
	if (PyErr_Occurred())
		return NULL;
	Py_CLEAR(*selfp);
	Py_RETURN_NONE;
}

PyMethodDef ext_worker_methods[] = {
	{ "_worker_call", worker_call, METH_VARARGS, "run one call in a worker (the shim's)" },
	{ "_drop_instance", worker_drop, METH_O, "free an actor's instance" },
	{ "_worker_done", worker_done, METH_VARARGS, "finish a pending method call" },
	{ "_worker_yield", worker_yield, METH_VARARGS, "send a streaming call's next item" },
	{ "_ctx_cancelled", worker_cancelled, METH_O, "whether the running call was cancelled" },
	{ NULL, NULL, 0, NULL },
};
