// SPDX-License-Identifier: Apache-2.0
/*
 * The driver-side functions of kray._kray: connect, submit tasks and actor calls, put,
 * get, wait, actors by name, kill, cancel, status.  Each maps to one libkray call on the
 * connection this thread may use (ext_client()); kray/__init__.py and kray/_api.py give
 * them Ray's names and arguments.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "ext.h"

/*
 * The driver's flusher.  Ray sends a task when .remote() returns; libkray batches
 * submissions until something waits, which is what makes 1,000 submissions cost one
 * write.  A thread of the extension (libkray owns none) gives both.  A submission that
 * comes long after the last send (FLUSH_IDLE_NS; a program that submits, then gets) is
 * sent at once, which starts the task soonest and wakes no thread.  One that follows
 * closely (a burst) is left to the thread, which lets the burst gather for FLUSH_DELAY_NS
 * and then sends it all; a get or wait in between sends it first anyway.
 *
 * A task that may take the fast path (it has a stand-in for its function blob, see
 * sent_later), and an actor call with one return (a plain actor's may go fast), are never
 * sent at once: the fast path needs its get to be the very next thing
 * (docs/fastpath.md).  The thread sends it FLUSH_DELAY_NS later if no get came; on
 * krayd's path, a get that comes sends the call and the GET in one write.
 * Waking the thread for each such call would cost more than the call, so once woken
 * it stays awake for FLUSH_LINGER_NS, looking every FLUSH_TICK_NS, and is signalled
 * only when it sleeps.
 *
 * Workers flush at each submission instead: their connection belongs to libkray's worker
 * loop, not to this lock.
 */
#define FLUSH_DELAY_NS 50000
#define FLUSH_IDLE_NS 100000
#define FLUSH_TICK_NS 250000
#define FLUSH_LINGER_NS 20000000
static pthread_mutex_t fl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fl_cond = PTHREAD_COND_INITIALIZER;
static bool fl_run, fl_dirty, fl_asleep;
static int64_t fl_dirty_ns; /* when fl_dirty was set (under fl_mu) */
static pthread_t fl_thread;
static int64_t fl_last_ns; /* the last send of the driver's buffer (under ext_mu) */

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
	struct timespec t = { ns / 1000000000, ns % 1000000000 };

	nanosleep(&t, NULL);
}

static void *flusher_main(void *unused)
{
	int64_t awake_until = 0, now;

	(void)unused;
	pthread_mutex_lock(&fl_mu);
	for (;;) {
		while (fl_run && !fl_dirty && mono_ns() >= awake_until) {
			fl_asleep = true;
			pthread_cond_wait(&fl_cond, &fl_mu);
			fl_asleep = false;
			/* Woken for a call: more are likely to follow, each got at once. */
			awake_until = mono_ns() + FLUSH_LINGER_NS;
		}
		if (!fl_run)
			break;
		now = mono_ns();
		if (!fl_dirty || now - fl_dirty_ns < FLUSH_DELAY_NS) {
			/* Nothing due yet (a get sends it first, the common sync case). */
			int64_t ns = fl_dirty ? fl_dirty_ns + FLUSH_DELAY_NS - now : FLUSH_TICK_NS;

			if (fl_dirty)
				awake_until = now + FLUSH_LINGER_NS; /* calls keep coming */
			pthread_mutex_unlock(&fl_mu);
			sleep_ns(ns);
			pthread_mutex_lock(&fl_mu);
			continue;
		}
		pthread_mutex_unlock(&fl_mu);
		pthread_mutex_lock(&ext_mu); /* lock order: ext_mu, then fl_mu */
		pthread_mutex_lock(&fl_mu);
		fl_dirty = false;
		pthread_mutex_unlock(&fl_mu);
		if (ext.driver)
			kray_flush(ext.driver); /* an error shows at the next call */
		fl_last_ns = mono_ns();
		pthread_mutex_unlock(&ext_mu);
		pthread_mutex_lock(&fl_mu);
		awake_until = fl_last_ns + FLUSH_LINGER_NS;
	}
	pthread_mutex_unlock(&fl_mu);
	return NULL;
}

/* Something is in the driver's buffer for the flusher to send. */
static void mark_dirty(int64_t now)
{
	pthread_mutex_lock(&fl_mu);
	if (!fl_dirty) {
		fl_dirty = true;
		fl_dirty_ns = now;
		if (fl_asleep)
			pthread_cond_signal(&fl_cond);
	}
	pthread_mutex_unlock(&fl_mu);
}

/* After a submission, ext_mu held: sends it now (worker) or soon (driver). */
static int sent_soon(kray *k)
{
	int64_t now;

	if (k != ext.driver || !fl_run)
		return kray_flush(k);
	now = mono_ns();
	if (now - fl_last_ns > FLUSH_IDLE_NS) {
		fl_last_ns = now;
		return kray_flush(k);
	}
	mark_dirty(now);
	return 0;
}

/* After a submission that may go fast (a task with a stand-in, an actor call with one
 * return), ext_mu held: left in the buffer for its get, or for the flusher,
 * FLUSH_DELAY_NS from now. */
static int sent_later(kray *k)
{
	if (k != ext.driver || !fl_run)
		return sent_soon(k);
	mark_dirty(mono_ns());
	return 0;
}

/* A call that waits sends everything first: the flusher has nothing to do. */
static void sent_now(void)
{
	fl_last_ns = mono_ns(); /* racy read-modify of a hint: only timing depends on it */
	pthread_mutex_lock(&fl_mu);
	fl_dirty = false;
	pthread_mutex_unlock(&fl_mu);
}

static void flusher_start(void)
{
	fl_run = true;
	if (pthread_create(&fl_thread, NULL, flusher_main, NULL))
		fl_run = false; /* every submission flushes instead */
}

static void flusher_stop(void)
{
	if (!fl_run)
		return;
	pthread_mutex_lock(&fl_mu);
	fl_run = false;
	pthread_cond_signal(&fl_cond);
	pthread_mutex_unlock(&fl_mu);
	pthread_join(fl_thread, NULL);
}

PyObject *ext_fail(kray *k, int r, const char *what)
{
	PyObject *type = PyExc_RuntimeError;

	if (r == -ENOSPC)
		type = PyExc_MemoryError; /* kray.exceptions maps it to ObjectStoreFullError */
	else if (r == -EINVAL || r == -E2BIG)
		type = PyExc_ValueError;
	else if (r == -ENOENT)
		type = PyExc_LookupError;
	else if (r == -EEXIST)
		type = PyExc_FileExistsError;
	else if (r == -EPIPE)
		type = PyExc_ConnectionError;
	else if (r == -ECANCELED)
		type = ext.cancelled; /* kray.get/wait raise TaskCancelledError in the task */
	else if (r == -EHOSTDOWN)
		type = ext.unschedulable; /* kray.exceptions.ActorUnschedulableError */
	PyErr_Format(type, "%s: %s", what, k ? kray_errmsg(k) : strerror(-r));
	return NULL;
}

kray *ext_client(void)
{
	kray *k;

	if (ext.shared_k)
		return ext.shared_k; /* any thread of an actor that shares it */
	if (ext_ctx) {
		k = kray_ctx_client(ext_ctx);
		if (!k)
			PyErr_SetString(PyExc_RuntimeError,
					"kray calls are not available inside an actor with "
					"max_concurrency > 1 (its methods run on threads)");
		return k;
	}
	if (ext.in_worker) {
		PyErr_SetString(PyExc_RuntimeError,
				"kray calls in a worker are available only while a task runs");
		return NULL;
	}
	if (!ext.driver)
		PyErr_SetString(PyExc_RuntimeError, "kray is not initialized: call kray.init()");
	return ext.driver;
}

static PyObject *refs_list(const kray_ref *refs, size_t n)
{
	PyObject *l = PyList_New((Py_ssize_t)n);

	for (size_t i = 0; l && i < n; i++) {
		PyObject *r = ext_ref_new(&refs[i], true);

		if (!r) {
			Py_DECREF(l);
			return NULL;
		}
		PyList_SET_ITEM(l, (Py_ssize_t)i, r);
	}
	return l;
}

/* init(address, code_path, num_cpus, krayd_args) */
static PyObject *api_init(PyObject *self, PyObject *args)
{
	const char *address, *code_path;
	PyObject *extra, *seq = NULL;
	struct kray_config cfg = { 0 };
	const char **argv = NULL;
	int num_cpus, r;
	kray *k = NULL;

	(void)self;
	if (!PyArg_ParseTuple(args, "zziO", &address, &code_path, &num_cpus, &extra))
		return NULL;
	if (ext.in_worker)
		Py_RETURN_NONE; /* a worker is connected already: ray.init() there is a no-op */
	if (ext.driver)
		return PyErr_Format(PyExc_RuntimeError, "kray is already initialized");
	if (!(seq = PySequence_Fast(extra, "krayd_args must be a list")))
		return NULL;
	argv = calloc((size_t)PySequence_Fast_GET_SIZE(seq) + 1, sizeof(*argv));
	if (!argv) {
		Py_DECREF(seq);
		return PyErr_NoMemory();
	}
	for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++)
		if (!(argv[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(seq, i))))
			goto err;
	cfg.address = address;
	cfg.code_path = code_path;
	cfg.num_cpus = num_cpus;
	cfg.krayd_args = argv;
	Py_BEGIN_ALLOW_THREADS r = kray_init(&k, &cfg);
	Py_END_ALLOW_THREADS if (r)
	{
		PyErr_Format(PyExc_ConnectionError, "kray.init: %s", kray_init_errmsg());
		goto err;
	}
	LOCKED(ext.driver = k; ext.session++);
	flusher_start();
	free(argv);
	Py_DECREF(seq);
	Py_RETURN_NONE;
err:
	free(argv);
	Py_DECREF(seq);
	return NULL;
}

static PyObject *api_shutdown(PyObject *self, PyObject *unused)
{
	kray *k;

	(void)self;
	(void)unused;
	Py_BEGIN_ALLOW_THREADS flusher_stop();
	Py_END_ALLOW_THREADS LOCKED(k = ext.driver; ext.driver = NULL);
	if (k)
		BLOCKING(kray_shutdown(k));
	Py_RETURN_NONE;
}

static PyObject *api_connected(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return PyBool_FromLong(ext.driver || ext.in_worker);
}

/* (node, client, job) of this thread's connection. */
static PyObject *api_ids(PyObject *self, PyObject *unused)
{
	struct kray_ids ids;
	kray *k = ext_client();

	(void)self;
	(void)unused;
	if (!k)
		return NULL;
	LOCKED(kray_ids(k, &ids));
	return Py_BuildValue("(III)", ids.node, ids.client, ids.job);
}

/* submit(fn, args, num_returns, max_retries, actor or None[, resources[, timeout_ms[,
 * streaming[, fast_arg0]]]]) -> [ObjectRef]; resources: a task's "CPU:n,GPU:n,NAME:n" or
 * None; timeout_ms: 0 for none; streaming: a streaming generator's call (the one ref is
 * its completion; see stream_slot); fast_arg0: bytes standing in for the first argument
 * on the fast path (kray_call_opts.fast_arg0), or None */
static PyObject *api_submit(PyObject *self, PyObject *args)
{
	const char *fn;
	PyObject *list, *actor, *out = NULL, *stand_in = Py_None;
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value *vals = NULL, arg0;
	kray_ref *rets = NULL, aid;
	size_t n;
	int r;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "sO!IiO|zIpO", &fn, &PyList_Type, &list, &o.num_returns,
			      &o.max_retries, &actor, &o.resources, &o.timeout_ms, &o.streaming,
			      &stand_in))
		return NULL;
	if (actor != Py_None && !ext_ref_get(actor, &aid))
		return PyErr_Format(PyExc_TypeError, "actor must be an ObjectRef");
	if (stand_in != Py_None) {
		if (!PyBytes_Check(stand_in) || actor != Py_None)
			return PyErr_Format(PyExc_TypeError, "fast_arg0 is bytes, for a task");
		arg0 = KRAY_V_BYTES(PyBytes_AS_STRING(stand_in),
				    (size_t)PyBytes_GET_SIZE(stand_in));
		o.fast_arg0 = &arg0;
	}
	if (!(k = ext_client()) || ext_args(list, &vals, &n))
		return NULL;
	rets = calloc(o.num_returns ? o.num_returns : 1, sizeof(*rets));
	if (!rets) {
		free(vals);
		return PyErr_NoMemory();
	}
	/* Sent without a get, as Ray does: a driver may submit and then only sleep. */
	if (actor == Py_None)
		LOCKED(r = kray_call(k, fn, vals, n, &o, rets);
		       if (!r) r = o.fast_arg0 ? sent_later(k) : sent_soon(k));
	else /* a synchronous actor call may go fast too (libclient/fast_actor.c) */
		LOCKED(r = kray_actor_call(k, aid, fn, vals, n, &o, rets);
		       if (!r) r =
			       o.num_returns == 1 && !o.streaming ? sent_later(k) : sent_soon(k));
	free(vals);
	out = r ? ext_fail(k, r, fn) : refs_list(rets, o.num_returns);
	free(rets);
	return out;
}

/* actor_create(cls, args, name, ns, detached, max_restarts, max_task_retries,
 *              max_concurrency, num_cpus, resources) -> ObjectRef (the handle) */
static PyObject *api_actor_create(PyObject *self, PyObject *args)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	const char *cls;
	PyObject *list;
	kray_value *vals;
	kray_ref id;
	size_t n;
	int r;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "sO!zzpiiIdz", &cls, &PyList_Type, &list, &o.name, &o.ns,
			      &o.detached, &o.max_restarts, &o.max_task_retries, &o.max_concurrency,
			      &o.num_cpus, &o.resources))
		return NULL;
	if (!(k = ext_client()) || ext_args(list, &vals, &n))
		return NULL;
	BLOCKING(r = kray_actor_create(k, cls, vals, n, &o, &id));
	free(vals);
	if (r)
		return ext_fail(k, r, "actor creation");
	return ext_ref_new(&id, true);
}

static PyObject *api_get_actor(PyObject *self, PyObject *args)
{
	const char *name, *ns;
	kray_ref id;
	int r;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "sz", &name, &ns) || !(k = ext_client()))
		return NULL;
	BLOCKING(r = kray_get_actor(k, name, ns, &id));
	if (r)
		return ext_fail(k, r, "get_actor");
	return ext_ref_new(&id, true);
}

/* actor_self() -> Ref: in an actor, a handle to itself (kray_actor_self; LookupError
 * elsewhere).  get_runtime_context().current_actor wraps it. */
static PyObject *api_actor_self(PyObject *self, PyObject *unused)
{
	kray_ref id;
	int r;
	kray *k;

	(void)self;
	(void)unused;
	if (!(k = ext_client()))
		return NULL;
	BLOCKING(r = kray_actor_self(k, &id));
	if (r)
		return ext_fail(k, r, "actor_self");
	return ext_ref_new(&id, true);
}

static PyObject *api_kill(PyObject *self, PyObject *args)
{
	PyObject *actor;
	int no_restart, r;
	kray_ref id;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "Op", &actor, &no_restart) || !(k = ext_client()))
		return NULL;
	if (!ext_ref_get(actor, &id))
		return PyErr_Format(PyExc_TypeError, "kill takes an actor handle");
	BLOCKING(r = kray_kill(k, id, no_restart));
	if (r)
		return ext_fail(k, r, "kill");
	Py_RETURN_NONE;
}

/* put(kind, pickle, buffers, refs) -> ObjectRef.  Written once, in place: a large value
 * goes straight into the store's memory. */
static PyObject *api_put(PyObject *self, PyObject *args)
{
	PyObject *pickle, *bufs, *reflist;
	struct ext_pieces pc;
	unsigned kind;
	kray_ref id, *refs = NULL;
	size_t nrefs = 0;
	int r;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "IO!O!O", &kind, &PyBytes_Type, &pickle, &PyList_Type, &bufs,
			      &reflist))
		return NULL;
	if (!(k = ext_client()) || ext_refs(reflist, &refs, &nrefs))
		return NULL;
	if (ext_pieces(kind, pickle, bufs, &pc)) {
		free(refs);
		return NULL;
	}
	if (nrefs) {
		/* Values with refs are small (pickle refuses nothing; libkray refuses large
		 * ones and kray/_serial.py then stores the body separately): refuse those
		 * before laying them out for nothing. */
		struct kray_ids ids;
		kray_value v;
		void *tmp;
		bool big;

		kray_ids(k, &ids);
		big = pc.size > ids.inline_max;
		if (big || !(tmp = malloc(pc.size))) {
			ext_pieces_release(&pc);
			free(refs);
			return big ? PyErr_Format(PyExc_ValueError,
						  "a value with refs must fit inline") :
				     PyErr_NoMemory();
		}
		v = KRAY_V_BYTES(tmp, pc.size);
		ext_pieces_copy(&pc, tmp);
		LOCKED(r = kray_put_refs(k, &v, refs, nrefs, &id));
		free(tmp);
	} else {
		/* Written from the buffers straight into the store (their exports keep them
		 * in place), without the GIL. */
		BLOCKING(r = kray_put_iov(k, pc.iov, pc.n, &id));
	}
	ext_pieces_release(&pc);
	free(refs);
	if (r)
		return ext_fail(k, r, "put");
	return ext_ref_new(&id, true);
}

/* cancel(ref, force, recursive) */
static PyObject *api_cancel(PyObject *self, PyObject *args)
{
	PyObject *ref;
	int force, recursive, r;
	kray_ref id;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "Opp", &ref, &force, &recursive) || !(k = ext_client()))
		return NULL;
	if (!ext_ref_get(ref, &id))
		return PyErr_Format(PyExc_TypeError, "cancel takes an ObjectRef");
	LOCKED(r = kray_cancel(k, &id, force, recursive); if (!r) r = sent_soon(k));
	if (r)
		return ext_fail(k, r, "cancel");
	Py_RETURN_NONE;
}

/* pack(kind, pickle, buffers) -> bytes laid out as a value (a small call argument). */
static PyObject *api_pack(PyObject *self, PyObject *args)
{
	PyObject *pickle, *bufs, *out;
	struct ext_pieces pc;
	unsigned kind;

	(void)self;
	if (!PyArg_ParseTuple(args, "IO!O!", &kind, &PyBytes_Type, &pickle, &PyList_Type, &bufs) ||
	    ext_pieces(kind, pickle, bufs, &pc))
		return NULL;
	if ((out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)pc.size)))
		ext_pieces_copy(&pc, PyBytes_AS_STRING(out));
	ext_pieces_release(&pc);
	return out;
}

/*
 * A driver's get or wait holds its connection (ext_mu) while it waits on krayd.  When the
 * program has other Python threads, it waits in slices of WAIT_SLICE_MS, letting go of the
 * connection between them, so that another thread's .remote(), put or get is held up for
 * one slice, not for the whole wait (a slice that times out costs krayd a round trip).
 */
#define WAIT_SLICE_MS 20

static bool other_threads(void)
{
	PyThreadState *me = PyThreadState_Get();

	for (PyThreadState *t = PyInterpreterState_ThreadHead(PyThreadState_GetInterpreter(me)); t;
	     t = PyThreadState_Next(t))
		if (t != me)
			return true;
	return false;
}

/* The next slice of a wait with left ms to go (-1: forever): its length. */
static long long slice_of(long long left)
{
	return left < 0 || left > WAIT_SLICE_MS ? WAIT_SLICE_MS : left;
}

/* Milliseconds left of left (-1: forever) after a slice that began at t0 (ns). */
static long long left_after(long long left, int64_t t0)
{
	long long spent = (long long)((mono_ns() - t0) / 1000000);

	return left < 0 ? -1 : left > spent ? left - spent : 0;
}

/* get(refs, timeout_ms) -> [decoded] (see ext_decode_got), or None on timeout. */
static PyObject *api_get(PyObject *self, PyObject *args)
{
	PyObject *reflist, *out;
	long long timeout_ms;
	kray_value *vals;
	kray_ref *refs;
	size_t n;
	int r;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "OL", &reflist, &timeout_ms) || !(k = ext_client()) ||
	    ext_refs(reflist, &refs, &n))
		return NULL;
	vals = calloc(n ? n : 1, sizeof(*vals));
	if (!vals) {
		free(refs);
		return PyErr_NoMemory();
	}
	if (k == ext.driver)
		sent_now();
	if (k == ext.shared_k && !ext_loop_thread) {
		r = ext_get_shared(k, refs, n, timeout_ms, vals);
	} else if (k == ext.driver && timeout_ms && other_threads()) {
		long long left = timeout_ms;
		int64_t t0;

		do {
			t0 = mono_ns();
			BLOCKING(r = kray_get(k, refs, n, slice_of(left), vals));
			left = left_after(left, t0);
			if (r == -ETIMEDOUT && left && PyErr_CheckSignals())
				r = -EINTR; /* (Ctrl-C between slices) */
		} while (r == -ETIMEDOUT && left);
	} else {
		BLOCKING(if (ext.in_worker) ext_flush_pending(k);
			 r = kray_get(k, refs, n, timeout_ms, vals));
	}
	free(refs);
	if (r == -EINTR && PyErr_Occurred()) {
		free(vals);
		return NULL;
	}
	if (r == -ETIMEDOUT) {
		free(vals);
		Py_RETURN_NONE;
	}
	if (r && r != -EREMOTEIO) {
		free(vals);
		return ext_fail(k, r, "get");
	}
	out = PyList_New((Py_ssize_t)n);
	for (size_t i = 0; i < n; i++) {
		PyObject *o = out ? ext_decode_got(&vals[i]) : NULL;

		if (!o) {
			LOCKED(for (size_t j = i; j < n; j++) kray_value_clear(&vals[j]));
			Py_XDECREF(out);
			out = NULL;
			break;
		}
		PyList_SET_ITEM(out, (Py_ssize_t)i, o);
	}
	free(vals);
	return out;
}

/* stream_slot(ref, index) -> ObjectRef: item index - 1 of the streaming call whose
 * completion is ref, a ref this process holds already (krayd made it for the submitter,
 * libclient/stream.c): the ObjectRef releases it. */
static PyObject *api_stream_slot(PyObject *self, PyObject *args)
{
	PyObject *ref;
	unsigned index;
	kray_ref id;

	(void)self;
	if (!PyArg_ParseTuple(args, "OI", &ref, &index))
		return NULL;
	if (!ext_ref_get(ref, &id))
		return PyErr_Format(PyExc_TypeError, "ref must be an ObjectRef");
	id.index = index;
	return ext_ref_new(&id, true);
}

/* wait(refs, num_ready, timeout_ms) -> bytes, one 0/1 per ref */
static PyObject *api_wait(PyObject *self, PyObject *args)
{
	PyObject *reflist, *out;
	long long timeout_ms;
	Py_ssize_t num_ready;
	kray_ref *refs;
	uint8_t *ready;
	size_t n, got;
	int r;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "OnL", &reflist, &num_ready, &timeout_ms) ||
	    !(k = ext_client()) || ext_refs(reflist, &refs, &n))
		return NULL;
	ready = calloc(n ? n : 1, 1);
	if (!ready) {
		free(refs);
		return PyErr_NoMemory();
	}
	if (k == ext.driver)
		sent_now();
	if (k == ext.shared_k && !ext_loop_thread) {
		r = ext_wait_shared(k, refs, n, (size_t)num_ready, timeout_ms, ready);
	} else if (k == ext.driver && timeout_ms && other_threads()) {
		long long left = timeout_ms;
		int64_t t0;

		do {
			t0 = mono_ns();
			BLOCKING(r = kray_wait(k, refs, n, (size_t)num_ready, slice_of(left), ready,
					       &got));
			left = left_after(left, t0);
			if (!r && got < (size_t)num_ready && left && PyErr_CheckSignals())
				r = -EINTR;
		} while (!r && got < (size_t)num_ready && left);
	} else {
		BLOCKING(if (ext.in_worker) ext_flush_pending(k);
			 r = kray_wait(k, refs, n, (size_t)num_ready, timeout_ms, ready, &got));
	}
	free(refs);
	if (r == -EINTR && PyErr_Occurred()) {
		free(ready);
		return NULL;
	}
	out = r ? ext_fail(k, r, "wait") : PyBytes_FromStringAndSize((char *)ready, (Py_ssize_t)n);
	free(ready);
	return out;
}

static PyObject *api_flush(PyObject *self, PyObject *unused)
{
	kray *k = ext_client();
	int r;

	(void)self;
	(void)unused;
	if (!k)
		return NULL;
	BLOCKING(r = kray_flush(k));
	if (r)
		return ext_fail(k, r, "flush");
	Py_RETURN_NONE;
}

static PyObject *api_status(PyObject *self, PyObject *unused)
{
	struct kray_stats st;
	kray *k = ext_client();
	int r;

	(void)self;
	(void)unused;
	if (!k)
		return NULL;
	BLOCKING(r = kray_status(k, &st));
	if (r)
		return ext_fail(k, r, "status");
	return Py_BuildValue("{sKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsK}", "node", st.node,
			     "num_cpus", st.num_cpus, "workers", st.workers, "workers_busy",
			     st.workers_busy, "tasks_queued", st.tasks_queued, "tasks_submitted",
			     st.tasks_submitted, "tasks_finished", st.tasks_finished,
			     "tasks_failed", st.tasks_failed, "tasks_retried", st.tasks_retried,
			     "objects", st.objects, "store_bytes", st.store_bytes, "store_capacity",
			     st.store_capacity, "workers_died", st.workers_died, "actors_alive",
			     st.actors_alive, "objects_pinned", st.objects_pinned, "store_huge",
			     (unsigned long long)st.store_huge, "objects_spilled",
			     st.objects_spilled, "bytes_spilled", st.bytes_spilled, "spilled_total",
			     st.spilled_total, "restored_total", st.restored_total, "fast_tasks",
			     st.fast_tasks, "fast_bounced", st.fast_bounced);
}

/* describe_nodes() -> str: a line per node of the cluster ("" outside one), as `kray status`
 * prints them (kray_describe_nodes). */
static PyObject *api_describe_nodes(PyObject *self, PyObject *unused)
{
	kray *k = ext_client();
	char *text = NULL;
	PyObject *s;
	int r;

	(void)self;
	(void)unused;
	if (!k)
		return NULL;
	BLOCKING(r = kray_describe_nodes(k, &text));
	if (r)
		return ext_fail(k, r, "describe_nodes");
	s = PyUnicode_FromString(text);
	free(text);
	return s;
}

/* pg_create(bundles, strategy, name, detached) -> id: a placement group (kray_pg_create). */
static PyObject *api_pg_create(PyObject *self, PyObject *args)
{
	const char *bundles, *name;
	int strategy, detached, r;
	char id[16]; /* 12 hex characters and a NUL */
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "sizp", &bundles, &strategy, &name, &detached) ||
	    !(k = ext_client()))
		return NULL;
	BLOCKING(r = kray_pg_create(k, bundles, strategy, name, detached, id));
	if (r)
		return ext_fail(k, r, "placement_group");
	return PyUnicode_FromString(id);
}

/* pg_remove(id): removes a placement group (kray_pg_remove). */
static PyObject *api_pg_remove(PyObject *self, PyObject *args)
{
	const char *id;
	kray *k;
	int r;

	(void)self;
	if (!PyArg_ParseTuple(args, "s", &id) || !(k = ext_client()))
		return NULL;
	BLOCKING(r = kray_pg_remove(k, id));
	if (r)
		return ext_fail(k, r, "remove_placement_group");
	Py_RETURN_NONE;
}

/* A JSON export of krayd's (fn: kray_timeline, kray_describe_objects) as a str.  A C
 * function's name may be any bytes: krayd replaces what is not UTF-8, and so does this,
 * should one slip through. */
static PyObject *json_export(int (*fn)(kray *, char **), const char *what)
{
	kray *k = ext_client();
	char *json = NULL;
	PyObject *s;
	int r;

	if (!k)
		return NULL;
	BLOCKING(r = fn(k, &json));
	if (r)
		return ext_fail(k, r, what);
	s = PyUnicode_DecodeUTF8(json, (Py_ssize_t)strlen(json), "replace");
	free(json);
	return s;
}

/* timeline() -> str: the task timeline as Chrome trace JSON (kray.timeline() parses it). */
static PyObject *api_timeline(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return json_export(kray_timeline, "timeline");
}

/* objects() -> str: the connected krayd's largest objects as JSON (kray_describe_objects;
 * kray.util.state.list_objects() parses it). */
static PyObject *api_objects(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return json_export(kray_describe_objects, "objects");
}

/* workers() -> str: the connected krayd's workers and drivers as JSON
 * (kray_describe_workers; kray.util.state.list_workers() parses it). */
static PyObject *api_workers(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return json_export(kray_describe_workers, "workers");
}

static PyObject *api_pg_table(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return json_export(kray_pg_table, "placement_group_table");
}

/* list_actors() -> [dict]: the actors krayd knows, from kray_list_actors(): actor_id
 * ((node, owner, seq, index)), state (enum kray_actor_state), pid, calls_in_flight,
 * restarts, class_name, namespace, name, detail. */
static PyObject *api_list_actors(PyObject *self, PyObject *unused)
{
	kray *k = ext_client();
	struct kray_actor_info *actors = NULL;
	PyObject *list;
	size_t n = 0;
	int r;

	(void)self;
	(void)unused;
	if (!k)
		return NULL;
	BLOCKING(r = kray_list_actors(k, &actors, &n));
	if (r)
		return ext_fail(k, r, "list_actors");
	list = PyList_New(0);
	for (size_t i = 0; list && i < n; i++) {
		const struct kray_actor_info *a = &actors[i];
		PyObject *d = Py_BuildValue("{s:(IIII),s:i,s:i,s:I,s:I,s:s,s:s,s:s,s:s}",
					    "actor_id", a->id.node, a->id.owner, a->id.seq,
					    a->id.index, "state", (int)a->state, "pid", a->pid,
					    "calls_in_flight", a->calls_in_flight, "restarts",
					    a->restarts, "class_name", a->class_name, "namespace",
					    a->ns, "name", a->name, "detail", a->detail);

		if (!d || PyList_Append(list, d)) {
			Py_XDECREF(d);
			Py_CLEAR(list);
			break;
		}
		Py_DECREF(d);
	}
	free(actors);
	return list;
}

/* list_nodes() -> [dict]: the cluster's nodes ([] outside one), from kray_list_nodes():
 * node, address, port, alive, head, self, num_cpus, workers, workers_busy, tasks_queued,
 * tasks_finished, store_mib, resources ("NAME:QTY,..."). */
static PyObject *api_list_nodes(PyObject *self, PyObject *unused)
{
	kray *k = ext_client();
	struct kray_node_info *nodes = NULL;
	PyObject *list;
	size_t n = 0;
	int r;

	(void)self;
	(void)unused;
	if (!k)
		return NULL;
	BLOCKING(r = kray_list_nodes(k, &nodes, &n));
	if (r)
		return ext_fail(k, r, "list_nodes");
	list = PyList_New(0);
	for (size_t i = 0; list && i < n; i++) {
		const struct kray_node_info *e = &nodes[i];
		PyObject *d = Py_BuildValue(
			"{s:I,s:s,s:I,s:O,s:O,s:O,s:I,s:I,s:I,s:K,s:K,s:K,s:s}", "node", e->node,
			"address", e->address, "port", (unsigned)e->port, "alive",
			e->alive ? Py_True : Py_False, "head", e->head ? Py_True : Py_False, "self",
			e->self ? Py_True : Py_False, "num_cpus", e->num_cpus, "workers",
			e->workers, "workers_busy", e->workers_busy, "tasks_queued",
			(unsigned long long)e->tasks_queued, "tasks_finished",
			(unsigned long long)e->tasks_finished, "store_mib",
			(unsigned long long)e->store_mib, "resources", e->resources);

		if (!d || PyList_Append(list, d)) {
			Py_XDECREF(d);
			Py_CLEAR(list);
			break;
		}
		Py_DECREF(d);
	}
	free(nodes);
	return list;
}

/* set_ref_type(cls): the Python class refs are made as (a subclass of Ref). */
static PyObject *api_set_ref_type(PyObject *self, PyObject *cls)
{
	(void)self;
	if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &ExtRefType))
		return PyErr_Format(PyExc_TypeError, "not a subclass of Ref");
	Py_INCREF(cls);
	Py_XDECREF((PyObject *)ext.ref_type);
	ext.ref_type = (PyTypeObject *)cls;
	Py_RETURN_NONE;
}

/* Memory of a buffer-supporting object: for tests of zero-copy ((address, length)). */
static PyObject *api_address(PyObject *self, PyObject *o)
{
	Py_buffer b;
	PyObject *r;

	(void)self;
	if (PyObject_GetBuffer(o, &b, PyBUF_SIMPLE))
		return NULL;
	r = Py_BuildValue("(Kn)", (unsigned long long)(uintptr_t)b.buf, b.len);
	PyBuffer_Release(&b);
	return r;
}

PyMethodDef ext_api_methods[] = {
	{ "init", api_init, METH_VARARGS, "connect, or start a private krayd" },
	{ "shutdown", api_shutdown, METH_NOARGS, "disconnect (and stop a private krayd)" },
	{ "connected", api_connected, METH_NOARGS, "whether kray calls can be made" },
	{ "ids", api_ids, METH_NOARGS, "(node, client, job)" },
	{ "submit", api_submit, METH_VARARGS, "a task or actor call" },
	{ "describe_nodes", api_describe_nodes, METH_NOARGS, "the cluster's nodes, as text" },
	{ "pg_create", api_pg_create, METH_VARARGS, "reserves a placement group; its id" },
	{ "pg_remove", api_pg_remove, METH_VARARGS, "removes a placement group" },
	{ "pg_table", api_pg_table, METH_NOARGS, "the placement groups, as JSON" },
	{ "timeline", api_timeline, METH_NOARGS, "the task timeline, as Chrome trace JSON" },
	{ "objects", api_objects, METH_NOARGS, "the largest objects, as JSON" },
	{ "workers", api_workers, METH_NOARGS, "the workers and drivers, as JSON" },
	{ "list_nodes", api_list_nodes, METH_NOARGS, "the cluster's nodes, as dicts" },
	{ "list_actors", api_list_actors, METH_NOARGS, "the actors krayd knows, as dicts" },
	{ "actor_create", api_actor_create, METH_VARARGS, "create an actor" },
	{ "get_actor", api_get_actor, METH_VARARGS, "a named actor's handle" },
	{ "actor_self", api_actor_self, METH_NOARGS, "in an actor, its own handle" },
	{ "kill", api_kill, METH_VARARGS, "kill an actor" },
	{ "put", api_put, METH_VARARGS, "store a value" },
	{ "cancel", api_cancel, METH_VARARGS, "cancel a task" },
	{ "pack", api_pack, METH_VARARGS, "a value's bytes" },
	{ "get", api_get, METH_VARARGS, "values of refs" },
	{ "wait", api_wait, METH_VARARGS, "which refs are ready" },
	{ "stream_slot", api_stream_slot, METH_VARARGS, "a streaming call's next item ref" },
	{ "flush", api_flush, METH_NOARGS, "send what is buffered" },
	{ "status", api_status, METH_NOARGS, "krayd's counters" },
	{ "set_ref_type", api_set_ref_type, METH_O, "the ObjectRef class" },
	{ "address", api_address, METH_O, "(address, length) of a buffer" },
	{ NULL, NULL, 0, NULL },
};
