// SPDX-License-Identifier: Apache-2.0
/*
 * libkray_python.so: Python tasks and actors for kray's worker host.
 *
 * kray.init() puts this library on the job's code path.  Any kray-worker that gets a
 * Python task loads it like any job library, and it declares the three entry points a
 * Python job needs in C terms: a remote function (kray_py_task), an actor class
 * (kray_py_actor) and its one method (call, which names the Python method in its first
 * argument).  On the first call it starts an interpreter inside the worker (the first
 * task on a fresh worker pays Python's start-up once), imports kray._kray and hands it
 * the call; the GIL is released between calls, so an actor's method threads each take it.
 *
 * Why inside kray-worker and not a separate `python3 -m kray.worker` pool: C and Python
 * tasks then share one pool of workers and one scheduler with no notion of language, and
 * the worker protocol stays in one place (libkray's worker loop).  See
 * docs/ARCHITECTURE.md, "Python".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include <kray/kray.h>
#include <uapi/kray_wire.h>

_Static_assert(KRAY_CANCEL_SIGNAL == SIGUSR2, "the cancel signal is SIGUSR2");

#ifndef KRAY_LIBPYTHON
#error "KRAY_LIBPYTHON (libpython's soname) must be defined by the build"
#endif
#ifndef KRAY_PYTHON_EXE
#define KRAY_PYTHON_EXE "/usr/bin/python3"
#endif

/* The task running Python on the loop thread, as (owner << 32 | seq), or 0. */
static volatile uintptr_t py_current;

static void catch_cancel_once(void);

/* A cancel request for a task that had not started in Python yet (its interpreter still
 * starting, say): enter() interrupts the task as soon as it starts. */
static volatile uintptr_t py_cancel_early;
static struct sigaction host_cancel; /* the worker's own handler, called after ours */

/* KRAY_CANCEL_SIGNAL: krayd asks to interrupt a cancelled task.  If it runs here now (the
 * value names it): a KeyboardInterrupt, as Ray raises, at Python's next check (a sleep or
 * a blocking call returns with EINTR and checks at once); otherwise it is kept for when
 * the task starts.  The worker's handler notes it too (a task that never reaches Python). */
static void on_cancel_signal(int sig, siginfo_t *si, void *uc)
{
	if (si->si_code == SI_QUEUE) {
		uintptr_t v = (uintptr_t)si->si_value.sival_ptr;

		if (py_current && v == py_current)
			PyErr_SetInterruptEx(SIGINT);
		else
			py_cancel_early = v;
	}
	if ((host_cancel.sa_flags & SA_SIGINFO) && host_cancel.sa_sigaction)
		host_cancel.sa_sigaction(sig, si, uc);
}

/* Installs on_cancel_signal once, in a worker (the first call or kray_warm()), before
 * Python starts: a request made while the interpreter starts is not lost. */
static void catch_cancel(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, catch_cancel_once);
}

/* Drops an interrupt meant for a task that has finished.  GIL held. */
static void drop_stale_interrupt(void)
{
	if (PyErr_CheckSignals())
		PyErr_Clear();
}

static pthread_once_t py_once = PTHREAD_ONCE_INIT;
static const char *py_err; /* why Python could not start, or NULL */
static PyObject *py_call; /* kray._kray._worker_call */
static PyObject *py_drop; /* kray._kray._drop_instance */

/* The directory above this library's: the package's parent, for sys.path. */
static void package_root(char *buf, size_t len)
{
	Dl_info info;
	char tmp[PATH_MAX];

	buf[0] = 0;
	if (!dladdr((void *)package_root, &info) || !info.dli_fname)
		return;
	snprintf(tmp, sizeof(tmp), "%s", info.dli_fname);
	snprintf(buf, len, "%s", dirname(dirname(tmp)));
}

static void catch_cancel_once(void)
{
	struct sigaction sa = { .sa_sigaction = on_cancel_signal, .sa_flags = SA_SIGINFO };

	sigemptyset(&sa.sa_mask);
	sigaction(KRAY_CANCEL_SIGNAL, &sa, &host_cancel);
}

static void start_python(void)
{
	char root[PATH_MAX];
	PyConfig config;
	PyStatus st;
	PyObject *mod;

	/* The worker loaded libpython as a dependency of this library, privately; Python's
	 * own extension modules (numpy, _pickle) need its symbols global. */
	if (!dlopen(KRAY_LIBPYTHON, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) {
		py_err = "cannot make libpython's symbols global";
		return;
	}
	PyConfig_InitPythonConfig(&config);
	config.install_signal_handlers = 0; /* SIGINT and SIGTERM keep kray-worker's meaning */
	config.parse_argv = 0;
	st = PyConfig_SetBytesString(&config, &config.program_name, KRAY_PYTHON_EXE);
	if (!PyStatus_Exception(st))
		st = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(st)) {
		py_err = st.err_msg ? st.err_msg : "Python did not start";
		return;
	}
	/* SIGINT raises KeyboardInterrupt (the interpreter installed no handlers), so that
	 * PyErr_SetInterruptEx() works; the cancel signal trips it.  No SA_RESTART: a
	 * sleeping task wakes. */
	(void)PyRun_SimpleString("import signal\n"
				 "signal.signal(signal.SIGINT, signal.default_int_handler)\n");
	package_root(root, sizeof(root));
	PyObject *path = PySys_GetObject("path"), *s = PyUnicode_FromString(root);

	if (path && s)
		PyList_Insert(path, 0, s);
	Py_XDECREF(s);
	mod = PyImport_ImportModule("kray._kray");
	if (mod) {
		py_call = PyObject_GetAttrString(mod, "_worker_call");
		py_drop = PyObject_GetAttrString(mod, "_drop_instance");
		Py_DECREF(mod);
	}
	if (!py_call || !py_drop) {
		PyErr_Print();
		py_err = "cannot import kray._kray (see the worker's stderr)";
	}
	PyEval_SaveThread(); /* from now on each call takes the GIL */
}

/* The message of the current Python exception, for kray_fail(). */
static void fail_with_exception(kray_ctx *ctx, int *rc)
{
	PyObject *type, *value, *tb, *s;

	PyErr_Fetch(&type, &value, &tb);
	s = value ? PyObject_Str(value) : NULL;
	*rc = kray_fail(ctx, "%s", s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "error");
	if (!s)
		PyErr_Clear();
	Py_XDECREF(s);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
}

/* Called by the worker once it has loaded this library (kray.h, KRAY_WARM_SYMBOL): when a
 * Python driver connects while the worker is idle, or as the worker starts (krayd's
 * warm-code-path; kray.init() sets it for the krayd it starts).  Starts the interpreter
 * and imports what a call runs, on the loop thread (which stays Python's main thread, for
 * signals), so the first task does not pay for it. */
__attribute__((visibility("default"))) void kray_warm(void)
{
	PyGILState_STATE g;
	PyObject *mod;

	catch_cancel();
	pthread_once(&py_once, start_python);
	if (py_err)
		return; /* the first call says why */
	g = PyGILState_Ensure();
	mod = PyImport_ImportModule("kray._worker");
	if (!mod)
		PyErr_Clear(); /* the first call meets it again and reports it */
	Py_XDECREF(mod);
	PyGILState_Release(g);
}

/* mode 0: a task, 1: the constructor, 2: a method; selfp holds the actor's instance. */
static int enter(kray_ctx *ctx, PyObject **selfp, const kray_value *args, size_t nargs, int mode)
{
	PyGILState_STATE g;
	PyObject *r;
	int rc = 0;

	if (mode == 0)
		catch_cancel();
	pthread_once(&py_once, start_python);
	if (py_err)
		return kray_fail(ctx, "Python is not available in this worker: %s", py_err);
	g = PyGILState_Ensure();
	if (mode == 0) { /* tasks run on the loop thread; only they are cancelled */
		kray_ref t = kray_ctx_task(ctx);

		drop_stale_interrupt();
		py_current = (uintptr_t)((uint64_t)t.owner << 32 | t.seq);
		if (py_cancel_early == py_current) { /* asked before it started */
			py_cancel_early = 0;
			PyErr_SetInterruptEx(SIGINT);
		}
	}
	r = PyObject_CallFunction(py_call, "KKniK", (unsigned long long)(uintptr_t)ctx,
				  (unsigned long long)(uintptr_t)args, (Py_ssize_t)nargs, mode,
				  (unsigned long long)(uintptr_t)selfp);
	if (mode == 0) {
		py_current = 0;
		if (r)
			drop_stale_interrupt();
	}
	if (!r)
		fail_with_exception(ctx, &rc);
	else if (r == Py_True) /* a method that finishes later (kray_ctx_done) */
		rc = KRAY_PENDING;
	else if (r == Py_False) /* a fast call this worker cannot run: krayd's path */
		rc = KRAY_NOT_RUN;
	Py_XDECREF(r);
	PyGILState_Release(g);
	return rc;
}

KRAY_REMOTE(kray_py_task, KRAY_NARGS_ANY)
{
	return enter(ctx, NULL, args, nargs, 0);
}

struct py_actor {
	PyObject *instance;
};

KRAY_ACTOR(kray_py_actor, struct py_actor, KRAY_NARGS_ANY)
{
	return enter(ctx, &self->instance, args, nargs, 1);
}

KRAY_METHOD(kray_py_actor, call, KRAY_NARGS_ANY)
{
	return enter(ctx, &self->instance, args, nargs, 2);
}

KRAY_ACTOR_DESTRUCTOR(kray_py_actor)
{
	PyGILState_STATE g;
	PyObject *r;

	if (!self->instance || py_err)
		return;
	g = PyGILState_Ensure();
	r = PyObject_CallFunction(py_drop, "K", (unsigned long long)(uintptr_t)&self->instance);
	if (!r)
		PyErr_Clear();
	Py_XDECREF(r);
	PyGILState_Release(g);
}
