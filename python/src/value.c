// SPDX-License-Identifier: Apache-2.0
/*
 * Values between Python and libkray.
 *
 * A value kray's Python layer stores is a struct pyv_hdr, the pickle stream (protocol 5)
 * and its out-of-band buffers, each at a 64-byte aligned offset, so that a numpy array
 * lands in the object store once and comes back as a view.  What libkray hands back is
 * wrapped in a _kray.Buffer that owns the kray_value (a heap copy for small objects, a
 * read-only mapping of the store for large ones) and exposes it read-only through the
 * buffer protocol; memoryviews of it (and numpy arrays over those) keep it, and so the
 * mapping, alive.
 */
#include "ext.h"

typedef struct {
	PyObject_HEAD kray_value v;
	Py_ssize_t exports;
} ExtBuffer;

static void buffer_dealloc(PyObject *self)
{
	ExtBuffer *b = (ExtBuffer *)self;

	ext_lock();
	kray_value_clear(&b->v); /* a view: unmapped, and krayd told (UNPIN) */
	pthread_mutex_unlock(&ext_mu);
	Py_TYPE(self)->tp_free(self);
}

static int buffer_get(PyObject *self, Py_buffer *view, int flags)
{
	ExtBuffer *b = (ExtBuffer *)self;

	if (flags & PyBUF_WRITABLE) {
		PyErr_SetString(PyExc_BufferError, "kray objects are immutable (read-only)");
		return -1;
	}
	b->exports++;
	return PyBuffer_FillInfo(view, self, (void *)b->v.data, (Py_ssize_t)b->v.len, 1, flags);
}

static void buffer_release(PyObject *self, Py_buffer *view)
{
	(void)view;
	((ExtBuffer *)self)->exports--;
}

static PyBufferProcs buffer_procs = { buffer_get, buffer_release };

static Py_ssize_t buffer_len(PyObject *self)
{
	return (Py_ssize_t)((ExtBuffer *)self)->v.len;
}

static PySequenceMethods buffer_seq = { .sq_length = buffer_len };

PyTypeObject ExtBufferType = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kray._kray.Buffer",
	.tp_basicsize = sizeof(ExtBuffer),
	.tp_dealloc = buffer_dealloc,
	.tp_as_buffer = &buffer_procs,
	.tp_as_sequence = &buffer_seq,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "read-only bytes of a kray object (a view of the store for large ones)",
};

static PyObject *buffer_wrap(kray_value *v)
{
	ExtBuffer *b = PyObject_New(ExtBuffer, &ExtBufferType);

	if (!b) {
		ext_lock();
		kray_value_clear(v);
		pthread_mutex_unlock(&ext_mu);
		return NULL;
	}
	b->v = *v;
	b->exports = 0;
	*v = (kray_value){ .type = KRAY_NIL };
	return (PyObject *)b;
}

int ext_args(PyObject *list, kray_value **ret_vals, size_t *ret_n)
{
	Py_ssize_t n = PyList_Size(list);
	kray_value *vals;

	if (n < 0)
		return -1;
	vals = calloc(n ? (size_t)n : 1, sizeof(*vals));
	if (!vals) {
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *o = PyList_GET_ITEM(list, i);
		kray_value *v = &vals[i];

		if (o == Py_None) {
			v->type = KRAY_NIL;
		} else if (PyBytes_Check(o)) {
			*v = KRAY_V_BYTES(PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
		} else if (PyBool_Check(o) || PyLong_Check(o)) {
			long long x = PyLong_AsLongLong(o);

			if (x == -1 && PyErr_Occurred())
				goto err_free;
			*v = KRAY_V_INT(x);
		} else if (PyFloat_Check(o)) {
			*v = KRAY_V_F64(PyFloat_AS_DOUBLE(o));
		} else if (ext_ref_get(o, &v->ref)) {
			v->type = KRAY_REF;
		} else if (PyTuple_Check(o) && PyTuple_GET_SIZE(o) == 1 &&
			   ext_ref_get(PyTuple_GET_ITEM(o, 0), &v->ref)) {
			v->type = KRAY_ACTOR;
		} else {
			PyErr_Format(PyExc_TypeError,
				     "argument %zd of a C function: %.100s is not bytes, int, "
				     "float, None or an ObjectRef",
				     i, Py_TYPE(o)->tp_name);
			goto err_free;
		}
	}
	*ret_vals = vals;
	*ret_n = (size_t)n;
	return 0;
err_free:
	free(vals);
	return -1;
}

int ext_refs(PyObject *list, kray_ref **ret, size_t *ret_n)
{
	Py_ssize_t n = PySequence_Size(list);
	kray_ref *refs;

	if (n < 0)
		return -1;
	refs = malloc((n ? (size_t)n : 1) * sizeof(*refs));
	if (!refs) {
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *o = PySequence_GetItem(list, i);
		bool ok = o && ext_ref_get(o, &refs[i]);

		Py_XDECREF(o);
		if (!ok) {
			free(refs);
			if (!PyErr_Occurred())
				PyErr_SetString(PyExc_TypeError, "expected ObjectRefs");
			return -1;
		}
	}
	*ret = refs;
	*ret_n = (size_t)n;
	return 0;
}

/* (0, kind, pickle memoryview, [buffer memoryviews], [refs]) for a Python value whose
 * bytes (data, len) buf exposes. */
static PyObject *decode_python(PyObject *buf, const void *data, size_t len, const kray_ref *nested,
			       size_t nnested, bool owned_refs)
{
	const struct pyv_hdr *h = data;
	const uint64_t *offs = (const uint64_t *)(h + 1);
	size_t head = sizeof(*h) + 2 * sizeof(uint64_t) * (size_t)h->nbufs;
	PyObject *mv = NULL, *pick = NULL, *bufs = NULL, *refs = NULL;

	if (head > len || h->pickle_len > len - head)
		return PyErr_Format(PyExc_ValueError, "malformed kray value (%zu bytes)", len);
	if (!(mv = PyMemoryView_FromObject(buf)))
		return NULL;
	pick = PySequence_GetSlice(mv, (Py_ssize_t)head, (Py_ssize_t)(head + h->pickle_len));
	bufs = PyList_New(h->nbufs);
	refs = PyList_New((Py_ssize_t)nnested);
	if (!pick || !bufs || !refs)
		goto err;
	for (uint32_t i = 0; i < h->nbufs; i++) {
		uint64_t off = offs[2 * i], blen = offs[2 * i + 1];
		PyObject *s;

		if (off > len || blen > len - off) {
			PyErr_SetString(PyExc_ValueError, "malformed kray value (buffer)");
			goto err;
		}
		if (!(s = PySequence_GetSlice(mv, (Py_ssize_t)off, (Py_ssize_t)(off + blen))))
			goto err;
		PyList_SET_ITEM(bufs, i, s);
	}
	for (size_t i = 0; i < nnested; i++) {
		PyObject *r = ext_ref_new(&nested[i], owned_refs);

		if (!r)
			goto err;
		PyList_SET_ITEM(refs, (Py_ssize_t)i, r);
	}
	Py_DECREF(mv);
	return Py_BuildValue("(iINNN)", 0, h->kind, pick, bufs, refs);
err:
	/* Owned refs not yet wrapped leak a reference; only on out-of-memory. */
	Py_XDECREF(mv);
	Py_XDECREF(pick);
	Py_XDECREF(bufs);
	Py_XDECREF(refs);
	return NULL;
}

static bool is_python(const void *data, size_t len)
{
	return len >= sizeof(struct pyv_hdr) && ((const struct pyv_hdr *)data)->magic == PYV_MAGIC;
}

PyObject *ext_decode_bytes(PyObject *buf, const void *data, size_t len, const kray_ref *refs,
			   size_t nrefs, bool owned_refs)
{
	if (is_python(data, len))
		return decode_python(buf, data, len, refs, nrefs, owned_refs);
	return Py_BuildValue("(iO)", 1, buf);
}

/*
 * (0, kind, pickle, buffers, refs) for a Python value, (1, value) for a plain one (None,
 * int, float, bytes: what a C function returns), (2, errkind, message) for an error.
 */
PyObject *ext_decode(kray_value *v, bool owned_refs)
{
	PyObject *o, *buf, *r;

	switch (v->type) {
	case KRAY_NIL:
		o = Py_BuildValue("(iO)", 1, Py_None);
		break;
	case KRAY_INT64:
		o = Py_BuildValue("(iL)", 1, (long long)v->i);
		break;
	case KRAY_F64:
		o = Py_BuildValue("(id)", 1, v->f);
		break;
	case KRAY_ERROR:
		o = Py_BuildValue("(iis#)", 2, (int)v->err, (const char *)v->data,
				  (Py_ssize_t)v->len);
		break;
	case KRAY_BYTES:
		if (is_python(v->data, v->len)) {
			const kray_value *w;

			if (!(buf = buffer_wrap(v)))
				return NULL;
			w = &((ExtBuffer *)buf)->v;
			r = decode_python(buf, w->data, w->len, w->refs, w->nrefs, owned_refs);
			Py_DECREF(buf);
			return r;
		}
		o = Py_BuildValue("(iy#)", 1, (const char *)v->data, (Py_ssize_t)v->len);
		break;
	default:
		o = PyErr_Format(PyExc_ValueError, "unexpected value type %d", (int)v->type);
	}
	ext_lock();
	kray_value_clear(v);
	pthread_mutex_unlock(&ext_mu);
	return o;
}

/* A plain value's pickle up to this size, with no buffers and no refs, is unpickled here. */
#define PLAIN_MAX 4096

/* (1, value) of a small plain Python value in (data, len), unpickled; NULL and no exception
 * when it is not one (or NULL and the exception unpickling raised). */
static PyObject *decode_plain(const void *data, size_t len, size_t nrefs)
{
	static PyObject *loads;
	const struct pyv_hdr *h = data;
	PyObject *mv, *o;

	if (nrefs || !is_python(data, len) || h->kind != PYV_VALUE || h->nbufs ||
	    h->pickle_len > PLAIN_MAX || h->pickle_len > len - sizeof(*h))
		return NULL;
	if (!loads) {
		PyObject *m = PyImport_ImportModule("pickle");

		loads = m ? PyObject_GetAttrString(m, "loads") : NULL;
		Py_XDECREF(m);
		if (!loads)
			return NULL;
	}
	if (!(mv = PyMemoryView_FromMemory((char *)(h + 1), (Py_ssize_t)h->pickle_len, PyBUF_READ)))
		return NULL;
	o = PyObject_CallOneArg(loads, mv);
	Py_DECREF(mv);
	return o ? Py_BuildValue("(iN)", 1, o) : NULL;
}

PyObject *ext_decode_got(kray_value *v)
{
	PyObject *o;

	if (v->type != KRAY_BYTES)
		return ext_decode(v, true);
	o = decode_plain(v->data, v->len, v->nrefs);
	if (!o && !PyErr_Occurred())
		return ext_decode(v, true);
	ext_lock();
	kray_value_clear(v);
	pthread_mutex_unlock(&ext_mu);
	return o;
}

static const char zeros[PYV_ALIGN];

void ext_pieces_release(struct ext_pieces *pc)
{
	for (Py_ssize_t i = 0; i < pc->nviews; i++)
		PyBuffer_Release(&pc->views[i]);
	PyMem_Free(pc->views);
	PyMem_Free(pc->iov);
	PyMem_Free(pc->head);
	*pc = (struct ext_pieces){ 0 };
}

int ext_pieces(uint32_t kind, PyObject *pickle, PyObject *bufs, struct ext_pieces *pc)
{
	Py_ssize_t nb = PyList_Check(bufs) ? PyList_GET_SIZE(bufs) : -1;
	size_t headlen = sizeof(struct pyv_hdr) + 16 * (size_t)(nb > 0 ? nb : 0);
	struct pyv_hdr *h;
	uint64_t *offs;

	*pc = (struct ext_pieces){ 0 };
	if (nb < 0 || !PyBytes_Check(pickle)) {
		PyErr_SetString(PyExc_TypeError, "layout takes bytes and a list of buffers");
		return -1;
	}
	/* The header with its table of buffers, the pickle, then per buffer its padding and
	 * its bytes. */
	pc->head = PyMem_Malloc(headlen);
	pc->iov = PyMem_Calloc(2 + 2 * (size_t)nb, sizeof(*pc->iov));
	pc->views = PyMem_Calloc(nb ? (size_t)nb : 1, sizeof(*pc->views));
	if (!pc->head || !pc->iov || !pc->views) {
		ext_pieces_release(pc);
		PyErr_NoMemory();
		return -1;
	}
	h = pc->head;
	offs = (uint64_t *)(h + 1);
	*h = (struct pyv_hdr){ .magic = PYV_MAGIC,
			       .kind = kind,
			       .nbufs = (uint32_t)nb,
			       .pickle_len = (uint64_t)PyBytes_GET_SIZE(pickle) };
	pc->iov[pc->n++] = (struct iovec){ pc->head, headlen };
	pc->iov[pc->n++] =
		(struct iovec){ PyBytes_AS_STRING(pickle), (size_t)PyBytes_GET_SIZE(pickle) };
	pc->size = headlen + (size_t)PyBytes_GET_SIZE(pickle);
	for (Py_ssize_t i = 0; i < nb; i++) {
		Py_buffer *b = &pc->views[i];
		size_t pad = (PYV_ALIGN - pc->size % PYV_ALIGN) % PYV_ALIGN;

		if (PyObject_GetBuffer(PyList_GET_ITEM(bufs, i), b, PyBUF_SIMPLE)) {
			ext_pieces_release(pc);
			return -1;
		}
		pc->nviews++;
		if (pad)
			pc->iov[pc->n++] = (struct iovec){ (void *)zeros, pad };
		pc->size += pad;
		offs[2 * i] = pc->size;
		offs[2 * i + 1] = (uint64_t)b->len;
		pc->iov[pc->n++] = (struct iovec){ b->buf, (size_t)b->len };
		pc->size += (size_t)b->len;
	}
	return 0;
}

void ext_pieces_copy(const struct ext_pieces *pc, void *dst)
{
	char *at = dst;

	for (size_t i = 0; i < pc->n; i++) {
		if (pc->iov[i].iov_len)
			memcpy(at, pc->iov[i].iov_base, pc->iov[i].iov_len);
		at += pc->iov[i].iov_len;
	}
}
