/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kray._kray, the C extension under `import kray`: the pieces it shares between its files.
 *
 * The extension is a thin layer over libkray's public API (kray/kray.h).  It keeps one
 * connection per process: a driver's (kray.init) or, in a worker, the worker's own
 * connection while a task runs on the loop thread.  Everything Python-shaped (pickling,
 * options, exceptions) lives in the Python modules of the package; this layer moves bytes,
 * refs and views.
 *
 * Locking: a kray handle serves one thread at a time, so every libkray call on it runs
 * under ext_mu, a recursive mutex (a Python object freed while it is held may release a
 * ref).  Calls that may block (get, wait, actor requests) drop the GIL first.
 */
#ifndef KRAY_PYTHON_EXT_H
#define KRAY_PYTHON_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/uio.h>

#include <kray/kray.h>

/* Values written by kray's Python layer start with this header. */
#define PYV_MAGIC 0x5950524bu /* "KRPY" */
#define PYV_ALIGN 64 /* out-of-band buffers start at this alignment */

enum pyv_kind {
	PYV_VALUE = 0, /* a pickled value */
	PYV_ERROR = 1, /* a pickled exception a task raised */
	PYV_LARGE = 2, /* a large value with refs: the refs, the body in the last (_serial) */
	PYV_BLOB_ID = 3, /* a function blob by id, on the fast path (kray/_remote.py) */
};

struct pyv_hdr {
	uint32_t magic;
	uint32_t kind; /* enum pyv_kind */
	uint32_t nbufs; /* out-of-band buffers */
	uint32_t pad;
	uint64_t pickle_len;
	/* then nbufs x { u64 offset, u64 len } from the start of the value, the pickle
	 * stream, and each buffer at its offset (PYV_ALIGN-aligned) */
};

struct ext_state {
	kray *driver; /* kray.init()'s connection, or NULL */
	bool in_worker; /* this process is a worker (the shim loaded us) */
	kray *worker_k; /* the worker's connection, once a call gave it to us */
	/* The worker's connection once its actor shares it with its threads (an async or
	 * threaded actor, kray_ctx_host): any thread may use it under ext_mu, and gets on it
	 * go through waiter.c. */
	kray *shared_k;
	kray_ref *pending; /* refs to release once it is safe (worker only) */
	size_t npending, cap_pending;
	PyTypeObject *ref_type; /* kray.ObjectRef (a Python subclass of _kray.Ref) */
	uint32_t session; /* bumped by each kray.init(): refs of an earlier one are stale */
	PyObject *cancelled; /* _kray.TaskCancelled: a get or wait of a cancelled task */
	PyObject *unschedulable; /* _kray.Unschedulable: an actor's "@node=" cannot be met */
};

extern struct ext_state ext;
extern pthread_mutex_t ext_mu;
/* The task this thread runs, in a worker (NULL on an actor's method thread). */
extern __thread kray_ctx *ext_ctx;
/* This thread is the worker's loop thread of an async actor (it runs the event loop): its
 * gets read the shared connection themselves. */
extern __thread bool ext_loop_thread;

/* Runs stmt under ext_mu with the GIL dropped: for calls that may wait on krayd. */
#define BLOCKING(stmt)                                              \
	do {                                                        \
		Py_BEGIN_ALLOW_THREADS pthread_mutex_lock(&ext_mu); \
		stmt;                                               \
		pthread_mutex_unlock(&ext_mu);                      \
		Py_END_ALLOW_THREADS                                \
	} while (0)
/*
 * Takes ext_mu from a thread that holds the GIL.  While another thread holds ext_mu (a
 * get that waits on krayd, its GIL dropped) the GIL is dropped for the wait too: a thread
 * that blocked on ext_mu holding the GIL stopped every Python thread of the process until
 * that get returned (a ref freed, a .remote() or a put on another thread).
 */
static inline void ext_lock(void)
{
	if (pthread_mutex_trylock(&ext_mu)) {
		Py_BEGIN_ALLOW_THREADS pthread_mutex_lock(&ext_mu);
		Py_END_ALLOW_THREADS
	}
}

/* Runs stmt under ext_mu, the GIL held (dropped only while waiting for ext_mu). */
#define LOCKED(stmt)                           \
	do {                                   \
		ext_lock();                    \
		stmt;                          \
		pthread_mutex_unlock(&ext_mu); \
	} while (0)
/* The connection this thread may use, or NULL with a Python exception set. */
kray *ext_client(void);
/* Sets a Python exception for a failed libkray call and returns NULL. */
PyObject *ext_fail(kray *k, int r, const char *what);
/* Releases the refs deferred in a worker (ext_mu held). */
void ext_flush_pending(kray *k);

/* ref.c: _kray.Ref, the base of kray.ObjectRef */
extern PyTypeObject ExtRefType;
typedef struct {
	PyObject_HEAD kray_ref id;
	bool owned; /* this object holds a reference and releases it when freed */
	uint32_t session; /* ext.session when it was made */
} ExtRef;
/* A new kray.ObjectRef for id; owned says whether it takes over a reference. */
PyObject *ext_ref_new(const kray_ref *id, bool owned);
/* True and *ret when o is a Ref. */
bool ext_ref_get(PyObject *o, kray_ref *ret);

/* value.c */
extern PyTypeObject ExtBufferType;
/* Turns Python arguments (bytes, int, float, None, Ref, (Ref,) for an actor handle) into
 * kray_values; the values borrow from args, which must stay alive. */
int ext_args(PyObject *list, kray_value **ret_vals, size_t *ret_n);
/* Decodes a value from libkray: takes over v (it is cleared or moved).  owned_refs says
 * whether the nested refs are this process's (a get) or lent (a worker's arguments). */
PyObject *ext_decode(kray_value *v, bool owned_refs);
/* ext_decode() of a value a get returned, where a small plain Python value (kind 0, no
 * buffers, no refs: most small tasks' results) comes unpickled, as (1, value): one
 * pickle.loads, without the tuple, lists and views kray/_serial.py decode() would take. */
PyObject *ext_decode_got(kray_value *v);
/* The same for bytes (data, len) that buf (a bytes-like object) holds. */
PyObject *ext_decode_bytes(PyObject *buf, const void *data, size_t len, const kray_ref *refs,
			   size_t nrefs, bool owned_refs);
/* A Python value laid out (kind, a pickle and its out-of-band buffers) as the pieces of
 * its bytes, for kray_put_iov() or ext_pieces_copy(): the header and its table of buffers,
 * the pickle, and each buffer after its padding.  The buffers stay exported (their memory
 * cannot move) until ext_pieces_release(). */
struct ext_pieces {
	struct iovec *iov;
	size_t n;
	size_t size; /* of the whole value */
	Py_buffer *views;
	Py_ssize_t nviews;
	void *head;
};
/* 0, or -1 with a Python exception set (nothing to release). */
int ext_pieces(uint32_t kind, PyObject *pickle, PyObject *bufs, struct ext_pieces *pc);
void ext_pieces_copy(const struct ext_pieces *pc, void *dst);
void ext_pieces_release(struct ext_pieces *pc);
/* The refs of a Python list as an array (malloc'ed). */
int ext_refs(PyObject *list, kray_ref **ret, size_t *ret_n);

/* waiter.c: get and wait on the shared connection, for a thread other than the worker's
 * loop (the GIL held; it is dropped while waiting).  Return as kray_get() and kray_wait(),
 * or -EINTR with a Python exception set. */
int ext_get_shared(kray *k, const kray_ref *refs, size_t n, int64_t timeout_ms,
		   kray_value *ret_vals);
int ext_wait_shared(kray *k, const kray_ref *refs, size_t n, size_t num_ready, int64_t timeout_ms,
		    uint8_t *ret_ready);

/* api.c, worker.c and waiter.c: the module's functions */
extern PyMethodDef ext_api_methods[];
extern PyMethodDef ext_worker_methods[];
extern PyMethodDef ext_waiter_methods[];
extern PyMethodDef ext_metric_methods[];

#endif
