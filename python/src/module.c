// SPDX-License-Identifier: Apache-2.0
/* kray._kray: the module object, its types and the process-wide state (see ext.h). */
#include "ext.h"

struct ext_state ext;
pthread_mutex_t ext_mu;
__thread kray_ctx *ext_ctx;
__thread bool ext_loop_thread;

static struct PyModuleDef ext_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "kray._kray",
	.m_doc = "kray's C extension: libkray for the kray package",
	.m_size = -1,
};

static int add_methods(PyObject *m, PyMethodDef *defs)
{
	for (PyMethodDef *d = defs; d->ml_name; d++) {
		PyObject *f = PyCFunction_NewEx(d, NULL, NULL);

		if (!f || PyModule_AddObject(m, d->ml_name, f)) {
			Py_XDECREF(f);
			return -1;
		}
	}
	return 0;
}

PyMODINIT_FUNC PyInit__kray(void)
{
	pthread_mutexattr_t attr;
	PyObject *m;

	/* Recursive: freeing a Python object while the lock is held may release a ref. */
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&ext_mu, &attr);
	pthread_mutexattr_destroy(&attr);
	if (PyType_Ready(&ExtRefType) || PyType_Ready(&ExtBufferType))
		return NULL;
	if (!(m = PyModule_Create(&ext_module)))
		return NULL;
	ext.cancelled = PyErr_NewException("kray._kray.TaskCancelled", PyExc_RuntimeError, NULL);
	ext.unschedulable =
		PyErr_NewException("kray._kray.Unschedulable", PyExc_RuntimeError, NULL);
	if (!ext.cancelled || PyModule_AddObjectRef(m, "TaskCancelled", ext.cancelled) ||
	    !ext.unschedulable || PyModule_AddObjectRef(m, "Unschedulable", ext.unschedulable)) {
		Py_DECREF(m);
		return NULL;
	}
	Py_INCREF(&ExtRefType);
	Py_INCREF(&ExtBufferType);
	if (PyModule_AddObject(m, "Ref", (PyObject *)&ExtRefType) ||
	    PyModule_AddObject(m, "Buffer", (PyObject *)&ExtBufferType) ||
	    add_methods(m, ext_api_methods) || add_methods(m, ext_worker_methods) ||
	    add_methods(m, ext_waiter_methods) || add_methods(m, ext_metric_methods) ||
	    PyModule_AddIntConstant(m, "ERR_TASK", KRAY_ERR_TASK) ||
	    PyModule_AddIntConstant(m, "ERR_WORKER_DIED", KRAY_ERR_WORKER_DIED) ||
	    PyModule_AddIntConstant(m, "ERR_UNKNOWN_FUNCTION", KRAY_ERR_UNKNOWN_FUNCTION) ||
	    PyModule_AddIntConstant(m, "ERR_BAD_ARGS", KRAY_ERR_BAD_ARGS) ||
	    PyModule_AddIntConstant(m, "ERR_OBJECT_LOST", KRAY_ERR_OBJECT_LOST) ||
	    PyModule_AddIntConstant(m, "ERR_INTERNAL", KRAY_ERR_INTERNAL) ||
	    PyModule_AddIntConstant(m, "ERR_STORE_FULL", KRAY_ERR_STORE_FULL) ||
	    PyModule_AddIntConstant(m, "ERR_ACTOR_DIED", KRAY_ERR_ACTOR_DIED) ||
	    PyModule_AddIntConstant(m, "ERR_CANCELLED", KRAY_ERR_CANCELLED) ||
	    PyModule_AddIntConstant(m, "ERR_TIMED_OUT", KRAY_ERR_TIMED_OUT) ||
	    PyModule_AddIntConstant(m, "ERR_UNSCHEDULABLE", KRAY_ERR_UNSCHEDULABLE)) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
