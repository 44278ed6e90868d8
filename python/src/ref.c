// SPDX-License-Identifier: Apache-2.0
/*
 * _kray.Ref: a future's id (node, owner, seq, index) and whether this Python object holds
 * a reference on it.  kray.ObjectRef subclasses it in Python (hex(), pickling); here is
 * what must be fast: creation, hashing, comparison, and the release when it is freed.
 *
 * In a driver the release goes to libkray at once (libkray batches it).  In a worker it is
 * deferred until the next call starts or the worker blocks: a ref the task puts in its
 * result must stay held until the result has been sent, and the release must not run on
 * an actor's method thread, which may not touch the connection.
 */
#include "ext.h"

static void defer_release(const kray_ref *id)
{
	if (ext.npending == ext.cap_pending) {
		size_t cap = ext.cap_pending ? 2 * ext.cap_pending : 64;
		kray_ref *p = realloc(ext.pending, cap * sizeof(*p));

		if (!p)
			return; /* leaks one reference until the worker exits */
		ext.pending = p;
		ext.cap_pending = cap;
	}
	ext.pending[ext.npending++] = *id;
}

void ext_flush_pending(kray *k)
{
	if (ext.npending && k)
		kray_release(k, ext.pending, ext.npending);
	ext.npending = 0;
}

static void ref_dealloc(PyObject *self)
{
	ExtRef *r = (ExtRef *)self;

	/* A ref from before the last kray.init() belongs to a connection that is gone. */
	if (r->owned && r->session == ext.session) {
		ext_lock();
		if (ext.in_worker)
			defer_release(&r->id);
		else if (ext.driver)
			kray_release(ext.driver, &r->id, 1);
		pthread_mutex_unlock(&ext_mu);
	}
	Py_TYPE(self)->tp_free(self);
}

PyObject *ext_ref_new(const kray_ref *id, bool owned)
{
	PyTypeObject *t = ext.ref_type ? ext.ref_type : &ExtRefType;
	ExtRef *r = (ExtRef *)t->tp_alloc(t, 0);

	if (!r) {
		if (owned) { /* nobody will hold it: give it back */
			ext_lock();
			if (ext.in_worker)
				defer_release(id);
			else if (ext.driver)
				kray_release(ext.driver, id, 1);
			pthread_mutex_unlock(&ext_mu);
		}
		return NULL;
	}
	r->id = *id;
	r->owned = owned;
	r->session = ext.session;
	return (PyObject *)r;
}

bool ext_ref_get(PyObject *o, kray_ref *ret)
{
	if (!PyObject_TypeCheck(o, &ExtRefType))
		return false;
	*ret = ((ExtRef *)o)->id;
	return true;
}

static Py_hash_t ref_hash(PyObject *self)
{
	const kray_ref *id = &((ExtRef *)self)->id;
	Py_hash_t h = (Py_hash_t)(((uint64_t)id->node << 32 | id->owner) * 0x9e3779b97f4a7c15ull ^
				  ((uint64_t)id->seq << 32 | id->index));

	return h == -1 ? -2 : h;
}

static PyObject *ref_richcompare(PyObject *a, PyObject *b, int op)
{
	kray_ref x, y;

	if ((op != Py_EQ && op != Py_NE) || !ext_ref_get(a, &x) || !ext_ref_get(b, &y))
		Py_RETURN_NOTIMPLEMENTED;
	if (!memcmp(&x, &y, sizeof(x)) == (op == Py_EQ))
		Py_RETURN_TRUE;
	Py_RETURN_FALSE;
}

static PyObject *ref_binary(PyObject *self, PyObject *unused)
{
	(void)unused;
	return PyBytes_FromStringAndSize((const char *)&((ExtRef *)self)->id, sizeof(kray_ref));
}

static PyObject *ref_fields(PyObject *self, PyObject *unused)
{
	const kray_ref *id = &((ExtRef *)self)->id;

	(void)unused;
	return Py_BuildValue("(IIII)", id->node, id->owner, id->seq, id->index);
}

/* _kray.Ref(node, owner, seq, index): a ref that holds nothing (for tests and ids). */
static PyObject *ref_new(PyTypeObject *t, PyObject *args, PyObject *kw)
{
	kray_ref id;
	ExtRef *r;

	(void)kw;
	if (!PyArg_ParseTuple(args, "IIII", &id.node, &id.owner, &id.seq, &id.index))
		return NULL;
	r = (ExtRef *)t->tp_alloc(t, 0);
	if (r)
		r->id = id;
	return (PyObject *)r;
}

static PyMethodDef ref_methods[] = {
	{ "binary", ref_binary, METH_NOARGS, "the id as 16 bytes" },
	{ "_fields", ref_fields, METH_NOARGS, "(node, owner, seq, index)" },
	{ NULL, NULL, 0, NULL },
};

PyTypeObject ExtRefType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kray._kray.Ref",
	.tp_basicsize = sizeof(ExtRef),
	.tp_dealloc = ref_dealloc,
	.tp_hash = ref_hash,
	.tp_richcompare = ref_richcompare,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "the id of an object in kray's store",
	.tp_methods = ref_methods,
	.tp_new = ref_new,
};
