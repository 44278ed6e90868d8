// SPDX-License-Identifier: Apache-2.0
/*
 * Gets on a connection an actor shares with its threads (kray_ctx_host): an async actor's
 * event loop thread and a threaded actor's method threads.  The worker's loop thread
 * reads the connection; no other thread may wait on it for a result the loop must send
 * (a call to this very actor would never come back).  So a thread asks with
 * kray_get_async() under ext_mu, and the loop thread runs the callbacks, under ext_mu,
 * which touch no Python object: they only move the value where its waiter looks.
 *
 * - ext_get_shared()/ext_wait_shared(): a blocking get or wait of a thread, as a
 *   condition variable the callbacks signal.
 * - _kray.get_async(ref, token): for ObjectRef.future() and `await ref`; the value goes on
 *   a queue whose eventfd (_kray.async_fd()) wakes the thread that completes the futures
 *   (_kray.take_async(), kray/_aio.py).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "ext.h"

/* ---- blocking gets and waits of a thread ---- */

struct gwait;

struct gslot {
	struct gwait *w;
	size_t i;
};

struct gwait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned holders; /* the waiter, and each callback that has not run */
	bool gone; /* the waiter returned: late values are dropped */
	size_t n, done;
	kray_value *vals;
	int *status;
	struct gslot slots[];
};

static void gwait_put(struct gwait *w)
{
	bool last;

	pthread_mutex_lock(&w->mu);
	last = --w->holders == 0;
	pthread_mutex_unlock(&w->mu);
	if (!last)
		return;
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->vals);
	free(w->status);
	free(w);
}

/* On the worker's loop thread, ext_mu held. */
static void on_value(kray *k, kray_ref ref, int status, kray_value *val, void *arg)
{
	struct gslot *s = arg;
	struct gwait *w = s->w;

	(void)k;
	(void)ref;
	pthread_mutex_lock(&w->mu);
	if (w->gone) {
		kray_value_clear(val);
	} else {
		w->vals[s->i] = *val;
		w->status[s->i] = status;
		w->done++;
		pthread_cond_signal(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	gwait_put(w);
}

/*
 * Asks for n refs (the GIL dropped).  Returns the wait (the caller waits with wait_for(),
 * reads vals and status, then finishes with wait_end()), or NULL with a Python
 * exception.
 */
static struct gwait *wait_begin(kray *k, const kray_ref *refs, size_t n)
{
	struct gwait *w = calloc(1, sizeof(*w) + n * sizeof(w->slots[0]));
	pthread_condattr_t ca;
	int r = 0;

	if (!w || !(w->vals = calloc(n ? n : 1, sizeof(*w->vals))) ||
	    !(w->status = calloc(n ? n : 1, sizeof(*w->status)))) {
		if (w) {
			free(w->vals);
			free(w);
		}
		PyErr_NoMemory();
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	/* wait_for() times out on the monotonic clock. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	w->n = n;
	w->holders = 1;
	for (size_t i = 0; i < n; i++)
		w->status[i] = 1; /* not there */
	Py_BEGIN_ALLOW_THREADS pthread_mutex_lock(&ext_mu);
	ext_flush_pending(k);
	for (size_t i = 0; i < n && !r; i++) {
		w->slots[i] = (struct gslot){ .w = w, .i = i };
		pthread_mutex_lock(&w->mu);
		w->holders++;
		pthread_mutex_unlock(&w->mu);
		r = kray_get_async(k, &refs[i], on_value, &w->slots[i]);
		if (r)
			gwait_put(w); /* that callback will not run */
	}
	if (!r)
		r = kray_flush(k);
	pthread_mutex_unlock(&ext_mu);
	Py_END_ALLOW_THREADS if (r)
	{
		/* The gets already asked for still hold w: it goes with the last of them. */
		pthread_mutex_lock(&w->mu);
		w->gone = true;
		pthread_mutex_unlock(&w->mu);
		gwait_put(w);
		ext_fail(k, r, "get");
		return NULL;
	}
	return w;
}

/* Waits (GIL dropped) until need values are there or the deadline passed. */
static void wait_for(struct gwait *w, size_t need, int64_t timeout_ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	if (timeout_ms >= 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (timeout_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
	}
	Py_BEGIN_ALLOW_THREADS pthread_mutex_lock(&w->mu);
	while (w->done < need) {
		if (timeout_ms < 0)
			pthread_cond_wait(&w->cv, &w->mu);
		else if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
			break;
	}
	w->gone = true; /* from here on, values that arrive are dropped */
	pthread_mutex_unlock(&w->mu);
	Py_END_ALLOW_THREADS
}

/* Clears the values the caller did not take, then lets w go. */
static void wait_end(struct gwait *w)
{
	ext_lock();
	for (size_t i = 0; i < w->n; i++)
		if (w->status[i] <= 0)
			kray_value_clear(&w->vals[i]);
	pthread_mutex_unlock(&ext_mu);
	gwait_put(w);
}

int ext_get_shared(kray *k, const kray_ref *refs, size_t n, int64_t timeout_ms,
		   kray_value *ret_vals)
{
	struct gwait *w = wait_begin(k, refs, n);
	int r = 0;

	if (!w)
		return -EINTR; /* a Python exception is set */
	wait_for(w, n, timeout_ms);
	if (w->done < n)
		r = -ETIMEDOUT;
	for (size_t i = 0; !r && i < n; i++)
		if (w->status[i] && w->status[i] != -EREMOTEIO)
			r = w->status[i];
	if (!r || r == -EREMOTEIO) {
		for (size_t i = 0; i < n; i++) {
			ret_vals[i] = w->vals[i];
			w->vals[i] = (kray_value){ 0 };
			if (w->status[i] == -EREMOTEIO)
				r = -EREMOTEIO;
		}
	}
	wait_end(w);
	return r;
}

int ext_wait_shared(kray *k, const kray_ref *refs, size_t n, size_t num_ready, int64_t timeout_ms,
		    uint8_t *ret_ready)
{
	struct gwait *w = wait_begin(k, refs, n);

	if (!w)
		return -EINTR;
	wait_for(w, num_ready, timeout_ms);
	for (size_t i = 0; i < n; i++)
		ret_ready[i] = w->status[i] <= 0;
	wait_end(w);
	return 0;
}

/* ---- futures: values queued for kray/_aio.py ---- */

struct aitem {
	struct aitem *next;
	uint64_t token;
	int status;
	kray_value val;
};

static pthread_mutex_t aq_mu = PTHREAD_MUTEX_INITIALIZER;
static struct aitem *aq_head, **aq_tail = &aq_head;
static int aq_fd = -1;

/* On the worker's loop thread, ext_mu held: queues the value, wakes the completer. */
static void on_async(kray *k, kray_ref ref, int status, kray_value *val, void *arg)
{
	struct aitem *it = arg;
	uint64_t one = 1;
	bool was_empty;

	(void)k;
	(void)ref;
	it->status = status;
	it->val = *val;
	pthread_mutex_lock(&aq_mu);
	was_empty = !aq_head;
	*aq_tail = it;
	aq_tail = &it->next;
	pthread_mutex_unlock(&aq_mu);
	if (was_empty && write(aq_fd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd write of 1 cannot fail short of overflow */
}

/* get_async(ref, token): the value comes back from take_async() with token. */
static PyObject *api_get_async(PyObject *self, PyObject *args)
{
	unsigned long long token;
	struct aitem *it;
	PyObject *ref;
	kray_ref id;
	kray *k;
	int r;

	(void)self;
	if (!PyArg_ParseTuple(args, "OK", &ref, &token))
		return NULL;
	if (!ext_ref_get(ref, &id))
		return PyErr_Format(PyExc_TypeError, "get_async needs an ObjectRef");
	if (!ext.shared_k)
		return PyErr_Format(PyExc_RuntimeError, "get_async works in a shared worker only");
	k = ext.shared_k;
	if (aq_fd < 0) {
		pthread_mutex_lock(&aq_mu);
		if (aq_fd < 0)
			aq_fd = eventfd(0, EFD_CLOEXEC);
		pthread_mutex_unlock(&aq_mu);
		if (aq_fd < 0)
			return PyErr_SetFromErrno(PyExc_OSError);
	}
	if (!(it = calloc(1, sizeof(*it))))
		return PyErr_NoMemory();
	it->token = token;
	Py_BEGIN_ALLOW_THREADS pthread_mutex_lock(&ext_mu);
	r = kray_get_async(k, &id, on_async, it);
	if (!r)
		r = kray_flush(k);
	pthread_mutex_unlock(&ext_mu);
	Py_END_ALLOW_THREADS if (r)
	{
		free(it); /* kray_flush() failing leaves it queued: the handle is broken */
		return ext_fail(k, r, "get_async");
	}
	Py_RETURN_NONE;
}

/* async_fd() -> the eventfd that is readable when take_async() has values. */
static PyObject *api_async_fd(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (aq_fd < 0)
		return PyErr_Format(PyExc_RuntimeError, "no get_async yet");
	return PyLong_FromLong(aq_fd);
}

/* take_async() -> [(token, item or None, errno)]: what arrived; item as get() gives. */
static PyObject *api_take_async(PyObject *self, PyObject *unused)
{
	struct aitem *list;
	PyObject *out;

	(void)self;
	(void)unused;
	pthread_mutex_lock(&aq_mu);
	list = aq_head;
	aq_head = NULL;
	aq_tail = &aq_head;
	pthread_mutex_unlock(&aq_mu);
	out = PyList_New(0);
	while (list) {
		struct aitem *it = list;
		PyObject *o = NULL, *t;
		int err = it->status == -EREMOTEIO ? 0 : -it->status;

		list = it->next;
		if (!err && out && !(o = ext_decode(&it->val, true)))
			Py_CLEAR(out);
		if (err || !out) {
			ext_lock();
			kray_value_clear(&it->val);
			pthread_mutex_unlock(&ext_mu);
		}
		t = out ? Py_BuildValue("(KNi)", (unsigned long long)it->token,
					o ? o : Py_NewRef(Py_None), err) :
			  NULL;
		if (out && (!t || PyList_Append(out, t)))
			Py_CLEAR(out);
		Py_XDECREF(t);
		free(it);
	}
	return out;
}

/* shared() -> whether this worker's actor shares the connection with its threads. */
static PyObject *api_shared(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return PyBool_FromLong(ext.shared_k != NULL);
}

PyMethodDef ext_waiter_methods[] = {
	{ "shared", api_shared, METH_NOARGS, "whether the actor shares the connection" },
	{ "get_async", api_get_async, METH_VARARGS, "ask for a ref's value (shared worker)" },
	{ "async_fd", api_async_fd, METH_NOARGS, "the eventfd of get_async's values" },
	{ "take_async", api_take_async, METH_NOARGS, "the values get_async asked for" },
	{ NULL, NULL, 0, NULL },
};
