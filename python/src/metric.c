// SPDX-License-Identifier: Apache-2.0
/*
 * kray._kray's application metrics: kray/util/metrics.py sums a process's updates and
 * hands them here at each flush, one record per series; each becomes a METRIC frame
 * (kray_metric_record()) on this thread's connection, all sent in one write.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ext.h"

/* The tuple t of n strings, as C strings (borrowed from t) in out; 0 or -1 (exception). */
static int strings(PyObject *t, const char **out, size_t max, size_t *ret_n)
{
	Py_ssize_t n;

	if (!PyTuple_Check(t) || (size_t)(n = PyTuple_GET_SIZE(t)) > max) {
		PyErr_Format(PyExc_ValueError, "a metric has at most %zu tags", max);
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		if (!(out[i] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(t, i))))
			return -1;
	*ret_n = (size_t)n;
	return 0;
}

/* A tuple of numbers (None: none) into out, at most max; 0 or -1 (exception). */
static int numbers(PyObject *t, double *d, uint64_t *u, size_t max, size_t *ret_n)
{
	Py_ssize_t n;

	*ret_n = 0;
	if (t == Py_None)
		return 0;
	if (!PyTuple_Check(t) || (size_t)(n = PyTuple_GET_SIZE(t)) > max) {
		PyErr_Format(PyExc_ValueError, "a histogram has at most %d boundaries",
			     KRAY_METRIC_MAX_BOUNDARIES);
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *o = PyTuple_GET_ITEM(t, i);

		if (d)
			d[i] = PyFloat_AsDouble(o);
		else
			u[i] = PyLong_AsUnsignedLongLong(o);
		if (PyErr_Occurred())
			return -1;
	}
	*ret_n = (size_t)n;
	return 0;
}

/* One record (type, name, description, boundaries or None, tag keys, tag values, value,
 * bucket counts or None) into m; pointers borrowed from rec. */
static int record_of(PyObject *rec, struct kray_metric *m, const char **keys, const char **vals,
		     double *bounds, uint64_t *buckets, double *ret_value, bool *ret_has_buckets)
{
	PyObject *bt, *kt, *vt, *ct;
	size_t nv, nb;

	if (!PyArg_ParseTuple(rec, "izzOOOdO", &m->type, &m->name, &m->description, &bt, &kt, &vt,
			      ret_value, &ct))
		return -1;
	if (numbers(bt, bounds, NULL, KRAY_METRIC_MAX_BOUNDARIES, &m->nboundaries) ||
	    numbers(ct, NULL, buckets, KRAY_METRIC_MAX_BOUNDARIES + 1, &nb) ||
	    strings(kt, keys, KRAY_METRIC_MAX_TAGS, &m->ntags) ||
	    strings(vt, vals, KRAY_METRIC_MAX_TAGS, &nv))
		return -1;
	if (nv != m->ntags || (ct != Py_None && nb != m->nboundaries + 1)) {
		PyErr_SetString(PyExc_ValueError, "metric record: counts do not match");
		return -1;
	}
	m->boundaries = m->nboundaries ? bounds : NULL;
	m->tag_keys = keys;
	m->tag_values = vals;
	*ret_has_buckets = ct != Py_None;
	return 0;
}

/* One record, converted (strings borrowed from the record, which the list keeps alive). */
struct rec {
	struct kray_metric m;
	const char *keys[KRAY_METRIC_MAX_TAGS], *vals[KRAY_METRIC_MAX_TAGS];
	double bounds[KRAY_METRIC_MAX_BOUNDARIES], value;
	uint64_t buckets[KRAY_METRIC_MAX_BOUNDARIES + 1];
	bool has_buckets;
};
#define CHUNK 64

/* metric_send(records: list, flush: bool): queues one METRIC frame per record, then sends
 * them (flush) or leaves them to go with what this connection sends next (a worker's
 * result).  The records are converted a chunk at a time with the GIL and queued without
 * it: the lock may be held a long time by a get of the main thread, and the reporting
 * thread must not stop the program's other threads while it waits for it. */
static PyObject *api_metric_send(PyObject *self, PyObject *args)
{
	PyObject *records;
	struct rec *recs;
	int flush, r = 0;
	Py_ssize_t n, done = 0;
	kray *k;

	(void)self;
	if (!PyArg_ParseTuple(args, "O!p", &PyList_Type, &records, &flush))
		return NULL;
	k = ext_client();
	if (!k)
		return NULL;
	recs = malloc(CHUNK * sizeof(*recs));
	if (!recs)
		return PyErr_NoMemory();
	n = PyList_GET_SIZE(records);
	while (!r && done < n) {
		size_t m = 0;

		for (; done < n && m < CHUNK; done++, m++) {
			struct rec *x = &recs[m];

			memset(&x->m, 0, sizeof(x->m));
			if (record_of(PyList_GET_ITEM(records, done), &x->m, x->keys, x->vals,
				      x->bounds, x->buckets, &x->value, &x->has_buckets)) {
				free(recs);
				return NULL;
			}
		}
		BLOCKING(for (size_t i = 0; !r && i < m; i++) r =
				 kray_metric_record(k, &recs[i].m, recs[i].value,
						    recs[i].has_buckets ? recs[i].buckets : NULL);
			 if (!r && flush && done == n) r = kray_flush(k));
	}
	free(recs);
	if (r)
		return ext_fail(k, r, "metric");
	Py_RETURN_NONE;
}

/* metric_define(type, name, description, boundaries or None) -> None, or the reason krayd
 * refused it (str: the name has another type there, or its table is full). */
static PyObject *api_metric_define(PyObject *self, PyObject *args)
{
	struct kray_metric m = { 0 };
	double bounds[KRAY_METRIC_MAX_BOUNDARIES];
	PyObject *bt;
	kray *k;
	int r;

	(void)self;
	if (!PyArg_ParseTuple(args, "izzO", &m.type, &m.name, &m.description, &bt) ||
	    numbers(bt, bounds, NULL, KRAY_METRIC_MAX_BOUNDARIES, &m.nboundaries))
		return NULL;
	m.boundaries = m.nboundaries ? bounds : NULL;
	k = ext_client();
	if (!k)
		return NULL;
	BLOCKING(r = kray_metric_define(k, &m));
	if (r == -EEXIST || r == -ENOSPC)
		return PyUnicode_FromString(kray_errmsg(k));
	if (r)
		return ext_fail(k, r, "metric");
	Py_RETURN_NONE;
}

/* in_worker() -> bool: this process is a worker (it has run a call). */
static PyObject *api_in_worker(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	return PyBool_FromLong(ext.in_worker);
}

PyMethodDef ext_metric_methods[] = {
	{ "in_worker", api_in_worker, METH_NOARGS, "whether this process is a worker" },
	{ "metric_send", api_metric_send, METH_VARARGS, "queue (and send) metric updates" },
	{ "metric_define", api_metric_define, METH_VARARGS, "declare a metric to krayd" },
	{ NULL, NULL, 0, NULL },
};
