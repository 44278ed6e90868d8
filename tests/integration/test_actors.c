// SPDX-License-Identifier: Apache-2.0
/*
 * End-to-end tests of actors through the public C API (kray.h), with the classes of
 * tests/fixtures/actorfns.c (and the tasks of tests/fixtures/testfns.c).  Every test starts
 * its own krayd: a private one through kray_init(address = NULL), or one the harness starts
 * on its own socket when a second driver process (fork + kray_init with that address) has
 * to reach it.  Covers the seed example, per-connection call order with pending
 * arguments, handles passed to tasks, methods and constructors, named actors and
 * namespaces, detached and creator-bound lifetimes, process death with and without
 * restarts and call retries, constructor errors, kray_kill, destructors, method
 * concurrency, CPU placement, bad input and that nothing is left once every handle goes.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>
#include <uapi/kray_wire.h>

#include "harness.h"

TestSuite(actors, .fini = harness_cleanup, .timeout = 60);

#define GET_MS 30000 /* a get that should answer at once, with room for a slow machine */

static kray_value bytes_of(const char *s)
{
	return KRAY_V_BYTES(s, strlen(s));
}

/* ---- helpers ------------------------------------------------------------------------- */

static kray_ref create(kray *k, const char *cls, const kray_value *args, size_t nargs,
		       const struct kray_actor_opts *o)
{
	kray_ref a;
	int rc = kray_actor_create(k, cls, args, nargs, o, &a);

	cr_assert_eq(rc, 0, "kray_actor_create(%s): %d %s", cls, rc, kray_errmsg(k));
	cr_assert_eq(a.index, 0xfffffffeu, "%s: handle index %#x is not an actor's", cls, a.index);
	return a;
}

/* Counter(start) with options o (NULL: defaults). */
static kray_ref counter(kray *k, int64_t start, const struct kray_actor_opts *o)
{
	kray_value a = KRAY_V_INT(start);

	return create(k, "Counter", &a, 1, o);
}

static kray_ref acall(kray *k, kray_ref a, const char *method, const kray_value *args, size_t nargs)
{
	kray_ref r;
	int rc = kray_actor_call(k, a, method, args, nargs, NULL, &r);

	cr_assert_eq(rc, 0, "kray_actor_call(%s): %d %s", method, rc, kray_errmsg(k));
	return r;
}

/* Gets r (and releases it), asserting an INT64 value; returns it. */
static int64_t get_int(kray *k, kray_ref r, const char *what)
{
	kray_value v = { 0 };
	int rc = harness_get1(k, r, GET_MS, &v);
	int64_t x;

	cr_assert_eq(rc, 0, "%s: get: %d %s (value type %d, %s: %s)", what, rc, kray_errmsg(k),
		     v.type, harness_errkind(v.err),
		     v.type == KRAY_ERROR ? (const char *)v.data : "");
	cr_assert_eq(v.type, KRAY_INT64, "%s: value type %d, want INT64", what, v.type);
	x = v.i;
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	return x;
}

/* a.method(args) -> its INT64 value. */
static int64_t call_int(kray *k, kray_ref a, const char *method, const kray_value *args,
			size_t nargs)
{
	return get_int(k, acall(k, a, method, args, nargs), method);
}

static int64_t call_int1(kray *k, kray_ref a, const char *method, int64_t x)
{
	kray_value v = KRAY_V_INT(x);

	return call_int(k, a, method, &v, 1);
}

/* Gets r (and releases it), asserting an ERROR of kind err whose message has both needles. */
static void expect_err(kray *k, kray_ref r, enum kray_errkind err, const char *what,
		       const char *needle1, const char *needle2)
{
	kray_value v = { 0 };
	int rc = harness_get1(k, r, GET_MS, &v);

	cr_assert_eq(rc, -EREMOTEIO, "%s: get rc %d, want -EREMOTEIO (%s; value type %d %lld)",
		     what, rc, kray_errmsg(k), v.type, (long long)v.i);
	cr_assert_eq(v.type, KRAY_ERROR, "%s: value type %d, want ERROR", what, v.type);
	cr_assert_not_null(v.data, "%s: error without a message", what);
	cr_assert_eq(v.err, err, "%s: error kind %s (%d), want %s; message: %s", what,
		     harness_errkind(v.err), v.err, harness_errkind(err), (const char *)v.data);
	if (needle1)
		cr_assert(strstr(v.data, needle1), "%s: message \"%s\" lacks \"%s\"", what,
			  (const char *)v.data, needle1);
	if (needle2)
		cr_assert(strstr(v.data, needle2), "%s: message \"%s\" lacks \"%s\"", what,
			  (const char *)v.data, needle2);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
}

static void call_err(kray *k, kray_ref a, const char *method, const kray_value *args, size_t nargs,
		     enum kray_errkind err, const char *needle1, const char *needle2)
{
	expect_err(k, acall(k, a, method, args, nargs), err, method, needle1, needle2);
}

/* Polls kray_status until no actor is alive or pending and no object is left. */
static void expect_drained(kray *k, const char *after)
{
	int64_t deadline = harness_now_ms() + 10000;
	struct kray_stats st;

	do {
		st = harness_status(k);
		if (!st.actors_alive && !st.actors_pending && !st.objects)
			return;
		usleep(20000);
	} while (harness_now_ms() < deadline);
	cr_assert_fail("10 s after %s: actors_alive %llu, actors_pending %llu, objects %llu", after,
		       (unsigned long long)st.actors_alive, (unsigned long long)st.actors_pending,
		       (unsigned long long)st.objects);
}

static int wait_file(const char *path, int ms)
{
	int64_t deadline = harness_now_ms() + ms;

	do {
		if (access(path, F_OK) == 0)
			return 1;
		usleep(10000);
	} while (harness_now_ms() < deadline);
	return 0;
}

/* ---- second driver processes --------------------------------------------------------- */

/*
 * A child driver: fork()ed from the test, connects to a harness krayd with kray_init and
 * reports failures through a pipe (criterion's asserts belong to the test process).  It
 * can wait for the test's go-ahead.
 */
struct child {
	pid_t pid;
	int report; /* read end: why the child failed */
	int go; /* write end: the go-ahead */
};

static int child_out = -1, child_in = -1;

static void child_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void child_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdprintf(child_out, fmt, ap);
	va_end(ap);
	_exit(1);
}

static kray *child_connect(const char *sock)
{
	struct kray_config cfg = { .address = sock, .code_path = getenv("KRAY_TEST_CODE_PATH") };
	kray *k;

	if (kray_init(&k, &cfg))
		child_die("child: kray_init(%s): %s", sock, kray_init_errmsg());
	return k;
}

static void child_wait_go(void)
{
	char b;

	if (read(child_in, &b, 1) != 1)
		child_die("child: no go-ahead from the test");
}

/* a.method(args) -> INT64, or child_die. */
static int64_t child_call_int(kray *k, kray_ref a, const char *method, const kray_value *args,
			      size_t nargs)
{
	kray_value v = { 0 };
	kray_ref r;
	int rc = kray_actor_call(k, a, method, args, nargs, NULL, &r);

	if (rc)
		child_die("child: kray_actor_call(%s): %d %s", method, rc, kray_errmsg(k));
	rc = kray_get(k, &r, 1, GET_MS, &v);
	if (rc || v.type != KRAY_INT64)
		child_die("child: %s: get %d (%s), type %d %s", method, rc, kray_errmsg(k), v.type,
			  v.type == KRAY_ERROR ? (const char *)v.data : "");
	kray_release(k, &r, 1);
	return v.i;
}

static void child_start(struct child *ch, void (*fn)(const char *sock, void *arg), const char *sock,
			void *arg)
{
	int rep[2], go[2];

	cr_assert_eq(pipe2(rep, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
	cr_assert_eq(pipe2(go, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
	fflush(NULL);
	ch->pid = fork();
	cr_assert_geq(ch->pid, 0, "fork: %s", strerror(errno));
	if (ch->pid == 0) {
		close(rep[0]);
		close(go[1]);
		child_out = rep[1];
		child_in = go[0];
		fn(sock, arg);
		_exit(0);
	}
	close(rep[1]);
	close(go[0]);
	ch->report = rep[0];
	ch->go = go[1];
}

static void child_go(struct child *ch)
{
	cr_assert_eq(write(ch->go, "g", 1), 1, "go-ahead: %s", strerror(errno));
}

/* Waits (20 s at most) for the child and asserts it exited 0. */
static void child_join(struct child *ch, const char *what)
{
	int64_t deadline = harness_now_ms() + 20000;
	char why[1024] = "";
	int status = 0;
	pid_t r;
	ssize_t n;

	while ((r = waitpid(ch->pid, &status, WNOHANG)) == 0 && harness_now_ms() < deadline)
		usleep(10000);
	if (r == 0) {
		kill(ch->pid, SIGKILL);
		waitpid(ch->pid, &status, 0);
	}
	n = read(ch->report, why, sizeof(why) - 1);
	why[n > 0 ? n : 0] = 0;
	close(ch->report);
	close(ch->go);
	cr_assert_neq(r, 0, "%s: the child driver did not finish in 20 s", what);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: child driver %s %d: %s", what,
		  WIFEXITED(status) ? "exit code" : "killed by signal",
		  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), why);
}

/* ---- the seed example and call order ------------------------------------------------- */

/* The seed's Counter example: four counters, one increment each, reads -> [1, 1, 1, 1]. */
Test(actors, seed_counters, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_call_opts none = { .num_returns = 0 };
	kray_ref counters[4], reads[4];
	kray_value vals[4];
	int rc;

	for (int i = 0; i < 4; i++)
		counters[i] = create(k, "Counter", NULL, 0, NULL);
	for (int i = 0; i < 4; i++) {
		rc = kray_actor_call(k, counters[i], "increment", NULL, 0, &none, NULL);
		cr_assert_eq(rc, 0, "increment %d: %d %s", i, rc, kray_errmsg(k));
	}
	for (int i = 0; i < 4; i++)
		reads[i] = acall(k, counters[i], "read", NULL, 0);
	rc = kray_get(k, reads, 4, GET_MS, vals);
	cr_assert_eq(rc, 0, "get of the reads: %d %s", rc, kray_errmsg(k));
	for (int i = 0; i < 4; i++) {
		cr_assert(vals[i].type == KRAY_INT64 && vals[i].i == 1,
			  "counter %d read %lld (type %d), want 1", i, (long long)vals[i].i,
			  vals[i].type);
		kray_value_clear(&vals[i]);
	}
	kray_release(k, reads, 4);
	/* four actors, four processes */
	cr_assert_eq(harness_status(k).actors_alive, 4, "actors_alive != 4");
	kray_release(k, counters, 4);
	expect_drained(k, "releasing the four counters");
	harness_shutdown(k);
}

/*
 * 1,000 calls through one connection, some with ref arguments still pending when later
 * calls are submitted (slow tasks' results, one of them finishing before an earlier one),
 * some with a seq that is itself a ready ref: they run in submission order.
 */
Test(actors, call_order_with_pending_args, .timeout = 90)
{
	enum { N = 1000 };
	kray *k = harness_embedded(2);
	kray_ref c = counter(k, 0, NULL), slow[3], puts[N], *refs = calloc(N, sizeof(*refs));
	kray_value *vals = calloc(N, sizeof(*vals)), v = { 0 };
	kray_value ms[3] = { KRAY_V_INT(600), KRAY_V_INT(100), KRAY_V_INT(300) };
	size_t nputs = 0;
	int64_t t0 = harness_now_ms();
	int rc;

	cr_assert(refs && vals, "out of memory");
	for (int i = 0; i < 3; i++)
		slow[i] = harness_call1(k, "sleep_ms", &ms[i], 1);
	for (int i = 0; i < N; i++) {
		kray_value a[2] = { KRAY_V_INT(i) };
		size_t n = 1;

		if (i == 0 || i == N - 1)
			a[n++] = KRAY_V_REF(slow[0]); /* 600 ms */
		else if (i == 400)
			a[n++] = KRAY_V_REF(slow[1]); /* 100 ms: ready before call 0's */
		else if (i == 700)
			a[n++] = KRAY_V_REF(slow[2]);
		if (i % 100 == 50) {
			kray_value x = KRAY_V_INT(i);

			rc = kray_put(k, &x, &puts[nputs]);
			cr_assert_eq(rc, 0, "kray_put: %d %s", rc, kray_errmsg(k));
			a[0] = KRAY_V_REF(puts[nputs++]);
		}
		refs[i] = acall(k, c, "append", a, n);
	}
	rc = kray_get(k, refs, N, 60000, vals);
	cr_assert_eq(rc, 0, "get of %d appends: %d %s", N, rc, kray_errmsg(k));
	cr_assert_geq(harness_now_ms() - t0, 600, "call 0 did not wait for its 600 ms argument");
	for (int i = 0; i < N; i++) {
		cr_assert(vals[i].type == KRAY_INT64 && vals[i].i == i + 1,
			  "append %d returned %lld (type %d), want %d: it ran out of order", i,
			  (long long)vals[i].i, vals[i].type, i + 1);
		kray_value_clear(&vals[i]);
	}
	kray_release(k, refs, N);

	/* the log the actor kept: 0, 1, ..., 999 */
	rc = harness_get1(k, refs[0] = acall(k, c, "log", NULL, 0), GET_MS, &v);
	cr_assert_eq(rc, 0, "log: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_BYTES, "log type %d", v.type);
	cr_assert_eq(v.len, N * sizeof(int64_t), "log has %zu bytes, want %zu", v.len,
		     N * sizeof(int64_t));
	for (int i = 0; i < N; i++) {
		int64_t x;

		memcpy(&x, (const char *)v.data + i * sizeof(x), sizeof(x));
		cr_assert_eq(x, i, "call %d logged %lld: a later call overtook an earlier one", i,
			     (long long)x);
	}
	kray_value_clear(&v);
	kray_release(k, refs, 1);
	cr_assert_eq(call_int(k, c, "check", NULL, 0), N, "check() disagrees");

	kray_release(k, slow, 3);
	kray_release(k, puts, nputs);
	kray_release(k, &c, 1);
	free(refs);
	free(vals);
	expect_drained(k, "releasing the counter");
	harness_shutdown(k);
}

/* A method's error is that call's error; the actor and its state live on. */
Test(actors, method_error_keeps_state, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_ref c = counter(k, 5, NULL);
	kray_value msg = bytes_of("this call is refused");

	cr_assert_eq(call_int1(k, c, "incr", 2), 7);
	call_err(k, c, "fail", &msg, 1, KRAY_ERR_TASK, "this call is refused", NULL);
	cr_assert_eq(call_int(k, c, "read", NULL, 0), 7, "the state changed after an error");
	cr_assert_eq(call_int1(k, c, "incr", 1), 8);
	kray_release(k, &c, 1);
	harness_shutdown(k);
}

/* ---- handles passed around ----------------------------------------------------------- */

/* A handle passed to tasks: they call the actor through their worker's connection. */
Test(actors, handle_to_task, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_ref c = counter(k, 0, NULL), r[8];
	kray_value a[3] = { KRAY_V_ACTOR(c), bytes_of("incr"), KRAY_V_INT(5) };

	r[0] = harness_call1(k, "call_actor", a, 3);
	cr_assert_eq(get_int(k, r[0], "call_actor(c, incr, 5)"), 5);
	/* several tasks at once, all on the same actor */
	a[2] = KRAY_V_INT(1);
	for (int i = 0; i < 8; i++)
		r[i] = harness_call1(k, "call_actor", a, 3);
	for (int i = 0; i < 8; i++) {
		int64_t x = get_int(k, r[i], "call_actor(c, incr, 1)");

		cr_assert(x >= 6 && x <= 13, "call_actor %d returned %lld", i, (long long)x);
	}
	/* the actor's error (incr without its argument) is the task's */
	r[0] = harness_call1(k, "call_actor", a, 2);
	expect_err(k, r[0], KRAY_ERR_TASK, "call_actor(c, incr)", "takes 1 argument", NULL);
	a[1] = bytes_of("read");
	r[0] = harness_call1(k, "call_actor", a, 2);
	cr_assert_eq(get_int(k, r[0], "call_actor(c, read)"), 13);
	cr_assert_eq(call_int(k, c, "read", NULL, 0), 13, "the driver sees another count");

	/* a pending task holds the handle: the actor outlives the driver's release */
	kray_value ms = KRAY_V_INT(300);
	kray_ref slow = harness_call1(k, "sleep_ms", &ms, 1);
	kray_value pa[4] = { KRAY_V_ACTOR(c), bytes_of("append"), KRAY_V_INT(0), KRAY_V_REF(slow) };

	r[0] = harness_call1(k, "call_actor", pa, 4);
	kray_release(k, &c, 1);
	kray_release(k, &slow, 1);
	cr_assert_eq(get_int(k, r[0], "call_actor(c, append, 0, slow) after releasing c"), 1);
	expect_drained(k, "the task that held the last handle finished");

	/* a task checks that it got a handle */
	a[0] = KRAY_V_INT(1);
	r[0] = harness_call1(k, "call_actor", a, 2);
	expect_err(k, r[0], KRAY_ERR_TASK, "call_actor(1, read)", "must be actor", NULL);
	harness_shutdown(k);
}

/* A handle passed to another actor's method, which calls it. */
Test(actors, handle_to_method, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_ref a = counter(k, 0, NULL), b = counter(k, 50, NULL);
	kray_value args[3] = { KRAY_V_ACTOR(b), bytes_of("incr"), KRAY_V_INT(2) };

	cr_assert_eq(call_int(k, a, "call_other", args, 3), 52, "a.call_other(b, incr, 2)");
	cr_assert_eq(call_int(k, b, "read", NULL, 0), 52);
	cr_assert_eq(call_int(k, a, "read", NULL, 0), 0, "a's own state changed");
	kray_release(k, &a, 1);
	kray_release(k, &b, 1);
	expect_drained(k, "releasing both counters");
	harness_shutdown(k);
}

/* A handle passed to a constructor, which calls it, keeps it and calls it again later. */
Test(actors, handle_to_constructor, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_ref c = counter(k, 100, NULL), w;
	kray_value args[2] = { KRAY_V_ACTOR(c), KRAY_V_INT(7) };

	w = create(k, "Caller", args, 2, NULL);
	cr_assert_eq(call_int(k, w, "first", NULL, 0), 107, "Caller's constructor call");
	cr_assert_eq(call_int1(k, w, "again", 1), 108, "Caller.again(1)");
	cr_assert_eq(call_int(k, c, "read", NULL, 0), 108);

	/* the constructor checks its argument types */
	args[0] = KRAY_V_INT(3);
	kray_ref bad = create(k, "Caller", args, 2, NULL);

	call_err(k, bad, "first", NULL, 0, KRAY_ERR_TASK, "must be actor", "Caller");
	kray_release(k, &bad, 1);
	kray_release(k, &w, 1);
	kray_release(k, &c, 1);
	expect_drained(k, "releasing the actors");
	harness_shutdown(k);
}

/* ---- named actors and namespaces ----------------------------------------------------- */

static void lookup_child(const char *sock, void *arg)
{
	kray *k = child_connect(sock);
	kray_value one = KRAY_V_INT(1), v = { 0 };
	kray_ref a, b, r;
	int64_t x;
	int rc;

	/* The creator's handle id, known here (fork) but never received through krayd: a
	 * call with it fails, and the connection stays usable. */
	rc = kray_actor_call(k, *(kray_ref *)arg, "read", NULL, 0, NULL, &r);
	if (rc)
		child_die("kray_actor_call with a handle not held: %d %s", rc, kray_errmsg(k));
	rc = kray_get(k, &r, 1, GET_MS, &v);
	if (rc != -EREMOTEIO || v.type != KRAY_ERROR || v.err != KRAY_ERR_OBJECT_LOST ||
	    !strstr(v.data, "handle"))
		child_die("call with a handle not held: get %d (%s), type %d, kind %d (want "
			  "OBJECT_LOST), %s",
			  rc, kray_errmsg(k), v.type, v.err,
			  v.type == KRAY_ERROR ? (const char *)v.data : "");
	kray_value_clear(&v);
	kray_release(k, &r, 1);

	rc = kray_get_actor(k, "ctr", NULL, &a);
	if (rc)
		child_die("kray_get_actor(ctr): %d %s", rc, kray_errmsg(k));
	if ((x = child_call_int(k, a, "read", NULL, 0)) != 3)
		child_die("ctr.read() = %lld in the second driver, want 3", (long long)x);
	if ((x = child_call_int(k, a, "incr", &one, 1)) != 4)
		child_die("ctr.incr(1) = %lld in the second driver, want 4", (long long)x);
	rc = kray_get_actor(k, "no-such-actor", NULL, &b);
	if (rc != -ENOENT)
		child_die("kray_get_actor(no-such-actor) = %d, want -ENOENT", rc);
	rc = kray_get_actor(k, "ctr", "elsewhere", &b);
	if (rc != -ENOENT)
		child_die("kray_get_actor(ctr, ns elsewhere) = %d, want -ENOENT", rc);
	kray_shutdown(k); /* its handle goes; the creator's keeps the actor */
}

/* A second driver finds a named actor; names are unique, and freed when it dies. */
Test(actors, named_actor, .timeout = 60)
{
	struct harness h;
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct child ch;
	kray_ref c, dup, again, fresh;
	kray *k;
	int rc;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	k = harness_connect(h.sock);
	o.name = "ctr";
	c = counter(k, 2, &o);
	cr_assert_eq(call_int1(k, c, "incr", 1), 3);

	child_start(&ch, lookup_child, h.sock, &c);
	child_join(&ch, "lookup by name");
	cr_assert_eq(call_int(k, c, "read", NULL, 0), 4, "the second driver's incr is not seen");

	/* the creator can look it up too: the same handle */
	rc = kray_get_actor(k, "ctr", NULL, &again);
	cr_assert_eq(rc, 0, "kray_get_actor(ctr) by its creator: %d %s", rc, kray_errmsg(k));
	cr_assert(!memcmp(&again, &c, sizeof(c)), "lookup gave another handle");
	kray_release(k, &again, 1);

	/* a taken name */
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &dup);
	cr_assert_eq(rc, -EEXIST, "second actor named ctr: %d, want -EEXIST", rc);
	cr_assert(strstr(kray_errmsg(k), "name"), "errmsg \"%s\" does not mention the name",
		  kray_errmsg(k));
	rc = kray_get_actor(k, "nobody", NULL, &dup);
	cr_assert_eq(rc, -ENOENT, "kray_get_actor(nobody): %d, want -ENOENT", rc);

	/* killed: the name is free again */
	rc = kray_kill(k, c, 1);
	cr_assert_eq(rc, 0, "kray_kill: %d %s", rc, kray_errmsg(k));
	call_err(k, c, "read", NULL, 0, KRAY_ERR_ACTOR_DIED, "killed", NULL);
	rc = kray_get_actor(k, "ctr", NULL, &dup);
	cr_assert_eq(rc, -ENOENT, "kray_get_actor(ctr) after kill: %d, want -ENOENT", rc);
	fresh = counter(k, 40, &o);
	cr_assert_eq(call_int(k, fresh, "read", NULL, 0), 40, "the new ctr");
	rc = kray_get_actor(k, "ctr", NULL, &again);
	cr_assert_eq(rc, 0, "kray_get_actor(new ctr): %d %s", rc, kray_errmsg(k));
	cr_assert(!memcmp(&again, &fresh, sizeof(fresh)), "the name still leads to the old actor");
	kray_release(k, &again, 1);
	kray_release(k, &fresh, 1);
	kray_release(k, &c, 1);
	expect_drained(k, "releasing the named actors");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* Equal names in different namespaces are different actors. */
Test(actors, namespaces, .timeout = 60)
{
	kray *k = harness_embedded(2);
	const char *nss[3] = { "a", "b", NULL };
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref c[3], found, dup;
	int rc;

	o.name = "same";
	for (int i = 0; i < 3; i++) {
		o.ns = nss[i];
		c[i] = counter(k, 10 * (i + 1), &o);
	}
	for (int i = 0; i < 3; i++) {
		rc = kray_get_actor(k, "same", nss[i], &found);
		cr_assert_eq(rc, 0, "kray_get_actor(same, %s): %d %s", nss[i] ? nss[i] : "NULL", rc,
			     kray_errmsg(k));
		cr_assert(!memcmp(&found, &c[i], sizeof(found)), "namespace %s: another actor",
			  nss[i] ? nss[i] : "NULL");
		cr_assert_eq(call_int(k, found, "read", NULL, 0), 10 * (i + 1),
			     "namespace %s: another state", nss[i] ? nss[i] : "NULL");
		kray_release(k, &found, 1);
	}
	/* NULL is the namespace "" */
	rc = kray_get_actor(k, "same", "", &found);
	cr_assert_eq(rc, 0, "kray_get_actor(same, \"\"): %d %s", rc, kray_errmsg(k));
	cr_assert(!memcmp(&found, &c[2], sizeof(found)), "\"\" is not the NULL namespace");
	kray_release(k, &found, 1);
	rc = kray_get_actor(k, "same", "c", &found);
	cr_assert_eq(rc, -ENOENT, "kray_get_actor(same, c): %d, want -ENOENT", rc);
	o.ns = "a";
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &dup);
	cr_assert_eq(rc, -EEXIST, "a second 'same' in namespace a: %d, want -EEXIST", rc);
	kray_release(k, c, 3);
	expect_drained(k, "releasing the actors");
	harness_shutdown(k);
}

/* ---- lifetimes ------------------------------------------------------------------------ */

static void detached_child(const char *sock, void *arg)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value start = KRAY_V_INT(0), by = KRAY_V_INT(41);
	kray *k = child_connect(sock);
	kray_ref a;
	int64_t x;
	int rc;

	(void)arg;
	o.name = "det";
	o.detached = 1;
	rc = kray_actor_create(k, "Counter", &start, 1, &o, &a);
	if (rc)
		child_die("create det: %d %s", rc, kray_errmsg(k));
	if ((x = child_call_int(k, a, "incr", &by, 1)) != 41)
		child_die("det.incr(41) = %lld", (long long)x);
	kray_shutdown(k); /* drops its handle, then exits */
}

/* A detached actor outlives its creator; another driver finds it and kills it. */
Test(actors, detached_outlives_driver, .timeout = 60)
{
	struct harness h;
	struct child ch;
	kray_ref a, gone;
	kray *k;
	int rc;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	child_start(&ch, detached_child, h.sock, NULL);
	child_join(&ch, "creating the detached actor");
	usleep(200000); /* krayd has seen the creator go */

	k = harness_connect(h.sock);
	rc = kray_get_actor(k, "det", NULL, &a);
	cr_assert_eq(rc, 0, "kray_get_actor(det) after its creator exited: %d %s", rc,
		     kray_errmsg(k));
	cr_assert_eq(call_int1(k, a, "incr", 1), 42, "the detached actor lost its state");
	cr_assert_eq(harness_status(k).actors_alive, 1);

	/* releasing this handle does not end it either */
	kray_release(k, &a, 1);
	kray_flush(k);
	usleep(200000);
	rc = kray_get_actor(k, "det", NULL, &a);
	cr_assert_eq(rc, 0, "kray_get_actor(det) after the last driver handle went: %d %s", rc,
		     kray_errmsg(k));
	cr_assert_eq(call_int(k, a, "read", NULL, 0), 42);

	rc = kray_kill(k, a, 1);
	cr_assert_eq(rc, 0, "kray_kill(det): %d %s", rc, kray_errmsg(k));
	call_err(k, a, "read", NULL, 0, KRAY_ERR_ACTOR_DIED, "killed", NULL);
	rc = kray_get_actor(k, "det", NULL, &gone);
	cr_assert_eq(rc, -ENOENT, "kray_get_actor(det) after kill: %d, want -ENOENT", rc);
	kray_release(k, &a, 1);
	expect_drained(k, "killing the detached actor and releasing its handle");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

static void creator_child(const char *sock, void *arg)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value start = KRAY_V_INT(5), path = bytes_of(arg);
	kray *k = child_connect(sock);
	kray_ref a, m;
	int rc;

	o.name = "nd";
	rc = kray_actor_create(k, "Counter", &start, 1, &o, &a);
	if (rc)
		child_die("create nd: %d %s", rc, kray_errmsg(k));
	rc = kray_actor_create(k, "Marker", &path, 1, NULL, &m);
	if (rc)
		child_die("create Marker: %d %s", rc, kray_errmsg(k));
	child_call_int(k, m, "pid", NULL, 0);
	child_wait_go();
	_exit(0); /* no kray_shutdown: the process just ends */
}

/* A non-detached actor ends when its creator exits, though another driver holds it; it
 * ends normally (its destructor runs). */
Test(actors, ends_with_creator, .timeout = 60)
{
	char dir[128], path[192];
	struct harness h;
	struct child ch;
	int64_t deadline;
	kray_ref a;
	kray *k;
	int rc;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/marker", dir);
	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	k = harness_connect(h.sock);
	child_start(&ch, creator_child, h.sock, path);
	deadline = harness_now_ms() + 20000;
	while ((rc = kray_get_actor(k, "nd", NULL, &a)) == -ENOENT && harness_now_ms() < deadline)
		usleep(10000);
	cr_assert_eq(rc, 0, "kray_get_actor(nd): %d %s", rc, kray_errmsg(k));
	cr_assert_eq(call_int1(k, a, "incr", 1), 6);
	child_go(&ch);
	child_join(&ch, "the creator");

	/* krayd sees the creator's connection close a little after it exits */
	deadline = harness_now_ms() + 10000;
	for (;;) {
		kray_ref r = acall(k, a, "read", NULL, 0);
		kray_value v = { 0 };

		rc = harness_get1(k, r, GET_MS, &v);
		if (rc == -EREMOTEIO) {
			kray_value_clear(&v);
			expect_err(k, r, KRAY_ERR_ACTOR_DIED, "read after the creator exited",
				   "creator exited", NULL);
			break;
		}
		cr_assert(rc == 0 && v.type == KRAY_INT64 && v.i == 6,
			  "read before the end: rc %d type %d value %lld (%s)", rc, v.type,
			  (long long)v.i, kray_errmsg(k));
		kray_value_clear(&v);
		kray_release(k, &r, 1);
		cr_assert_lt(harness_now_ms(), deadline,
			     "the actor still answers 10 s after its creator exited");
		usleep(20000);
	}
	rc = kray_get_actor(k, "nd", NULL, &a);
	cr_assert_eq(rc, -ENOENT, "kray_get_actor(nd) after its end: %d, want -ENOENT", rc);
	cr_assert(wait_file(path, 10000),
		  "the Marker's destructor did not run when its creator exited");
	kray_release(k, &a, 1);
	expect_drained(k, "the creator's exit");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* The destructor runs when the last handle goes, and not when the process is killed. */
Test(actors, destructor, .timeout = 60)
{
	kray *k = harness_embedded(2);
	char dir[128], p1[192], p2[192], line[32] = "";
	kray_value arg;
	kray_ref m;
	int64_t pid;
	int fd;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(p1, sizeof(p1), "%s/released", dir);
	snprintf(p2, sizeof(p2), "%s/killed", dir);

	arg = bytes_of(p1);
	m = create(k, "Marker", &arg, 1, NULL);
	pid = call_int(k, m, "pid", NULL, 0);
	cr_assert(access(p1, F_OK) < 0, "the destructor ran while a handle was held");
	kray_release(k, &m, 1);
	kray_flush(k); /* a release is batched like a call */
	cr_assert(wait_file(p1, 10000), "the destructor did not run within 10 s of the release");
	fd = open(p1, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s", p1);
	cr_assert_gt(read(fd, line, sizeof(line) - 1), 0, "read %s", p1);
	close(fd);
	cr_assert_eq(atoll(line), pid, "the destructor ran in pid %s, the actor was %lld", line,
		     (long long)pid);
	harness_wait_gone((pid_t)pid, "the released actor");

	arg = bytes_of(p2);
	m = create(k, "Marker", &arg, 1, NULL);
	pid = call_int(k, m, "pid", NULL, 0);
	cr_assert_eq(kray_kill(k, m, 1), 0, "kray_kill: %s", kray_errmsg(k));
	harness_wait_gone((pid_t)pid, "the killed actor");
	call_err(k, m, "pid", NULL, 0, KRAY_ERR_ACTOR_DIED, "killed", NULL);
	kray_release(k, &m, 1);
	kray_flush(k);
	usleep(300000);
	cr_assert(access(p2, F_OK) < 0, "the destructor of a killed actor ran");
	expect_drained(k, "releasing the markers");
	harness_shutdown(k);
}

/* ---- process death -------------------------------------------------------------------- */

/* SIGKILL, no restarts: the call in flight, the queued one and later ones all fail. */
Test(actors, sigkill_no_restart, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_ref c = counter(k, 10, NULL), running, queued;
	kray_value ms = KRAY_V_INT(5000), one = KRAY_V_INT(1);
	int64_t pid;

	cr_assert_eq(call_int1(k, c, "incr", 1), 11);
	pid = call_int(k, c, "pid", NULL, 0);
	running = acall(k, c, "sleep_ms", &ms, 1);
	queued = acall(k, c, "incr", &one, 1);
	kray_flush(k);
	usleep(300000); /* sleep_ms is running */
	cr_assert_eq(kill((pid_t)pid, SIGKILL), 0, "kill %lld: %s", (long long)pid,
		     strerror(errno));
	expect_err(k, running, KRAY_ERR_ACTOR_DIED, "sleep_ms in flight", "sleep_ms", "signal 9");
	expect_err(k, queued, KRAY_ERR_ACTOR_DIED, "incr queued", "died", "signal 9");
	call_err(k, c, "read", NULL, 0, KRAY_ERR_ACTOR_DIED, "died", "signal 9");
	cr_assert_eq(harness_status(k).actors_alive, 0, "a dead actor counts as alive");
	cr_assert_eq(kray_kill(k, c, 1), -ENOENT, "kray_kill of a dead actor");
	kray_release(k, &c, 1);
	expect_drained(k, "releasing the dead actor");
	harness_shutdown(k);
}

/* SIGKILL with max_restarts 1: the constructor runs again (state back to the start), and
 * the next death is final. */
Test(actors, sigkill_restart, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref c;
	int64_t pid, pid2;

	o.max_restarts = 1;
	c = counter(k, 10, &o);
	cr_assert_eq(call_int1(k, c, "incr", 5), 15);
	pid = call_int(k, c, "pid", NULL, 0);
	cr_assert_eq(kill((pid_t)pid, SIGKILL), 0, "kill: %s", strerror(errno));
	harness_wait_gone((pid_t)pid, "the actor's first process");
	cr_assert_eq(call_int(k, c, "read", NULL, 0), 10, "state after the restart");
	cr_assert_eq(call_int1(k, c, "incr", 1), 11);
	pid2 = call_int(k, c, "pid", NULL, 0);
	cr_assert_neq(pid2, pid, "the restarted actor has the old pid");
	cr_assert_eq(harness_status(k).tasks_retried, 0, "nothing was in flight to retry");

	cr_assert_eq(kill((pid_t)pid2, SIGKILL), 0, "kill: %s", strerror(errno));
	harness_wait_gone((pid_t)pid2, "the actor's second process");
	call_err(k, c, "read", NULL, 0, KRAY_ERR_ACTOR_DIED, "no restarts left", "signal 9");
	kray_release(k, &c, 1);
	expect_drained(k, "releasing the dead actor");
	harness_shutdown(k);
}

/* max_task_retries decides about the call in flight when the process died. */
Test(actors, task_retries, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value ms = KRAY_V_INT(1000);

	for (int retries = 1; retries >= 0; retries--) {
		kray_ref c, running, after;
		int64_t pid;

		o.max_restarts = 1;
		o.max_task_retries = retries;
		c = counter(k, 3, &o);
		cr_assert_eq(call_int1(k, c, "incr", 4), 7);
		pid = call_int(k, c, "pid", NULL, 0);
		running = acall(k, c, "sleep_ms", &ms, 1);
		after = acall(k, c, "read", NULL, 0); /* queued behind it */
		kray_flush(k);
		usleep(300000);
		cr_assert_eq(kill((pid_t)pid, SIGKILL), 0, "kill: %s", strerror(errno));
		if (retries)
			cr_assert_eq(get_int(k, running, "sleep_ms with max_task_retries 1"), 1000,
				     "the retried call's value");
		else
			expect_err(k, running, KRAY_ERR_ACTOR_DIED,
				   "sleep_ms with max_task_retries 0", "sleep_ms", "signal 9");
		/* the restarted actor serves the queued call and later ones, state reset */
		cr_assert_eq(get_int(k, after, "read queued behind"), 3,
			     "max_task_retries %d: queued read", retries);
		cr_assert_neq(call_int(k, c, "pid", NULL, 0), pid, "no new process");
		kray_release(k, &c, 1);
	}
	expect_drained(k, "releasing the actors");
	harness_shutdown(k);
}

/* ---- constructor errors, kill ---------------------------------------------------------- */

/* A constructor's error is the error of every call, made before or after it is known. */
Test(actors, constructor_error, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_value msg = bytes_of("no counter today"), bad = bytes_of("x");
	kray_ref b, r[3];

	b = create(k, "Broken", &msg, 1, NULL);
	for (int i = 0; i < 3; i++)
		r[i] = acall(k, b, "read", NULL, 0);
	for (int i = 0; i < 3; i++)
		expect_err(k, r[i], KRAY_ERR_TASK, "call before the error is known",
			   "no counter today", "Broken");
	usleep(100000);
	call_err(k, b, "read", NULL, 0, KRAY_ERR_TASK, "no counter today", "constructed");
	call_err(k, b, "no_such_method", NULL, 0, KRAY_ERR_TASK, "no counter today", NULL);
	cr_assert_eq(harness_status(k).actors_alive, 0, "a failed actor counts as alive");
	kray_release(k, &b, 1);

	/* argument checks in a constructor are its errors too */
	b = create(k, "Counter", &bad, 1, NULL);
	call_err(k, b, "read", NULL, 0, KRAY_ERR_TASK, "must be int64", NULL);
	kray_release(k, &b, 1);
	expect_drained(k, "releasing the broken actors");
	harness_shutdown(k);
}

/* kray_kill: with restarts left and no_restart 0 it restarts; no_restart ends it. */
Test(actors, kill, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value one = KRAY_V_INT(1);
	kray_ref c;
	int64_t pid;
	int rc;

	o.max_restarts = 3;
	c = counter(k, 1, &o);
	cr_assert_eq(call_int1(k, c, "incr", 1), 2);
	pid = call_int(k, c, "pid", NULL, 0);
	rc = kray_kill(k, c, 0);
	cr_assert_eq(rc, 0, "kray_kill(no_restart 0): %d %s", rc, kray_errmsg(k));
	harness_wait_gone((pid_t)pid, "the killed process");
	cr_assert_eq(call_int(k, c, "read", NULL, 0), 1, "state after a restarting kill");
	cr_assert_neq(call_int(k, c, "pid", NULL, 0), pid, "not restarted");

	rc = kray_kill(k, c, 1);
	cr_assert_eq(rc, 0, "kray_kill(no_restart 1): %d %s", rc, kray_errmsg(k));
	call_err(k, c, "read", NULL, 0, KRAY_ERR_ACTOR_DIED, "killed", NULL);
	call_err(k, c, "incr", &one, 1, KRAY_ERR_ACTOR_DIED, "killed", NULL);
	rc = kray_kill(k, c, 1);
	cr_assert_eq(rc, -ENOENT, "kray_kill of a dead actor: %d, want -ENOENT", rc);
	cr_assert_eq(harness_status(k).actors_alive, 0);
	kray_release(k, &c, 1);
	expect_drained(k, "releasing the killed actor");
	harness_shutdown(k);
}

/* ---- concurrency and placement -------------------------------------------------------- */

/* Four 300 ms calls: about 300 ms with max_concurrency 4, about 1200 ms with 1. */
Test(actors, max_concurrency, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value ms = KRAY_V_INT(300);
	unsigned conc[2] = { 4, 1 };
	int64_t took[2];

	for (int j = 0; j < 2; j++) {
		kray_ref c, r[4];
		kray_value v[4];
		int64_t t0;
		int rc;

		o.max_concurrency = conc[j];
		c = counter(k, 0, &o);
		cr_assert_eq(call_int(k, c, "read", NULL, 0), 0); /* constructed */
		t0 = harness_now_ms();
		for (int i = 0; i < 4; i++)
			r[i] = acall(k, c, "sleep_ms", &ms, 1);
		rc = kray_get(k, r, 4, GET_MS, v);
		took[j] = harness_now_ms() - t0;
		cr_assert_eq(rc, 0, "max_concurrency %u: get: %d %s", conc[j], rc, kray_errmsg(k));
		for (int i = 0; i < 4; i++) {
			cr_assert(v[i].type == KRAY_INT64 && v[i].i == 300, "sleep_ms %d: %lld", i,
				  (long long)v[i].i);
			kray_value_clear(&v[i]);
		}
		kray_release(k, r, 4);
		kray_release(k, &c, 1);
	}
	cr_assert_lt(took[0], 600, "max_concurrency 4: 4 x 300 ms took %lld ms",
		     (long long)took[0]);
	cr_assert_geq(took[1], 1190, "max_concurrency 1: 4 x 300 ms took only %lld ms",
		      (long long)took[1]);
	cr_assert_lt(took[1], 5000, "max_concurrency 1: 4 x 300 ms took %lld ms",
		     (long long)took[1]);
	expect_drained(k, "releasing the actors");
	harness_shutdown(k);
}

/* A deferred host (kray_ctx_host): 40 sleeps of 300 ms, each finished later by a thread of
 * the fixture's, overlap without method threads: well under the 12 s one at a time. */
Test(actors, deferred_methods_overlap, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value on = KRAY_V_INT(1), off = KRAY_V_INT(0), ms = KRAY_V_INT(300);
	kray_ref a, b, r[40];
	kray_value v[40];
	int64_t t0, took;
	int rc;

	o.max_concurrency = 100;
	a = create(k, "Later", &on, 1, &o);
	cr_assert_eq(call_int(k, a, "value", NULL, 0), 7); /* finishes at once */
	t0 = harness_now_ms();
	for (int i = 0; i < 40; i++)
		r[i] = acall(k, a, "sleep_ms", &ms, 1);
	rc = kray_get(k, r, 40, GET_MS, v);
	took = harness_now_ms() - t0;
	cr_assert_eq(rc, 0, "get: %d %s", rc, kray_errmsg(k));
	for (int i = 0; i < 40; i++)
		cr_assert(v[i].type == KRAY_INT64 && v[i].i == 300, "sleep_ms %d: %lld", i,
			  (long long)v[i].i);
	cr_assert_lt(took, 4000, "40 x 300 ms deferred took %lld ms", (long long)took);
	kray_release(k, r, 40);

	/* Outside a host, KRAY_PENDING is an error, and the actor lives on. */
	b = create(k, "Later", &off, 1, NULL);
	call_err(k, b, "sleep_ms", &ms, 1, KRAY_ERR_TASK, "KRAY_PENDING", NULL);
	cr_assert_eq(call_int(k, b, "value", NULL, 0), 7);
	kray_release(k, &a, 1);
	kray_release(k, &b, 1);
	expect_drained(k, "releasing the actors");
	harness_shutdown(k);
}

/* Method threads that share the worker's connection (kray_ctx_host's lock) submit tasks
 * and get their results while the loop keeps answering. */
Test(actors, threads_share_the_connection, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref a, r[16];

	o.max_concurrency = 4;
	a = create(k, "Sharer", NULL, 0, &o);
	for (int i = 0; i < 16; i++) {
		kray_value x = KRAY_V_INT(i);

		r[i] = acall(k, a, "square_task", &x, 1);
	}
	for (int i = 0; i < 16; i++)
		cr_assert_eq(get_int(k, r[i], "square_task"), i * i);
	kray_release(k, &a, 1);
	expect_drained(k, "releasing the actor");
	harness_shutdown(k);
}

/* An actor holds its CPUs while alive: on 2 CPUs, after a 2-CPU actor a 1-CPU one waits. */
Test(actors, num_cpus_placement, .timeout = 60)
{
	struct harness h;
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct kray_stats st;
	kray_ref big, small, r, three;
	kray_value v = { 0 };
	kray *k;
	int rc;

	cr_assert_eq(harness_start_krayd(&h, 2), 0, "harness_start_krayd");
	k = harness_connect(h.sock);
	o.num_cpus = 3;
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &three);
	cr_assert_eq(rc, -EINVAL, "a 3-CPU actor on 2 CPUs: %d, want -EINVAL", rc);

	o.num_cpus = 2;
	big = counter(k, 1, &o);
	cr_assert_eq(call_int(k, big, "read", NULL, 0), 1);
	o.num_cpus = 1;
	small = counter(k, 2, &o);
	st = harness_status(k);
	cr_assert_eq(st.actors_alive, 1, "actors_alive %llu", (unsigned long long)st.actors_alive);
	cr_assert_eq(st.actors_pending, 1, "actors_pending %llu, want 1",
		     (unsigned long long)st.actors_pending);
	r = acall(k, small, "read", NULL, 0);
	rc = harness_get1(k, r, 300, &v);
	cr_assert_eq(rc, -ETIMEDOUT, "the pending actor answered (rc %d, value %lld)", rc,
		     (long long)v.i);
	cr_assert_eq(harness_status(k).actors_pending, 1, "no longer pending");

	rc = kray_kill(k, big, 1);
	cr_assert_eq(rc, 0, "kray_kill(big): %d %s", rc, kray_errmsg(k));
	cr_assert_eq(get_int(k, r, "read of the placed actor"), 2);
	st = harness_status(k);
	cr_assert(st.actors_alive == 1 && st.actors_pending == 0, "alive %llu, pending %llu",
		  (unsigned long long)st.actors_alive, (unsigned long long)st.actors_pending);
	kray_release(k, &big, 1);
	kray_release(k, &small, 1);
	expect_drained(k, "releasing both actors");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- bad input and cleanup ------------------------------------------------------------ */

Test(actors, bad_input, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref keep = { 1, 2, 3, 4 }, a = keep, c, u, r;
	kray_value two[2] = { KRAY_V_INT(1), KRAY_V_INT(2) }, x = bytes_of("x");
	char longname[300];
	int rc;

	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;

	rc = kray_actor_create(k, NULL, NULL, 0, NULL, &a);
	cr_assert_eq(rc, -EINVAL, "NULL class: %d", rc);
	rc = kray_actor_create(k, "", NULL, 0, NULL, &a);
	cr_assert_eq(rc, -EINVAL, "empty class: %d", rc);
	rc = kray_actor_create(k, longname, NULL, 0, NULL, &a);
	cr_assert_eq(rc, -EINVAL, "299-byte class name: %d", rc);
	rc = kray_actor_create(k, "Counter", NULL, 0, NULL, NULL);
	cr_assert_eq(rc, -EINVAL, "NULL ret_actor: %d", rc);
	rc = kray_actor_create(k, "Counter", NULL, 1, NULL, &a);
	cr_assert_eq(rc, -EINVAL, "nargs 1 with NULL args: %d", rc);
	o.name = "";
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &a);
	cr_assert_eq(rc, -EINVAL, "empty name: %d", rc);
	o.name = longname;
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &a);
	cr_assert_eq(rc, -EINVAL, "299-byte name: %d", rc);
	o = KRAY_ACTOR_OPTS_DEFAULT;
	o.max_concurrency = 0;
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &a);
	cr_assert_eq(rc, -EINVAL, "max_concurrency 0: %d", rc);
	o = KRAY_ACTOR_OPTS_DEFAULT;
	o.max_restarts = -2;
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &a);
	cr_assert_eq(rc, -EINVAL, "max_restarts -2: %d", rc);
	o = KRAY_ACTOR_OPTS_DEFAULT;
	o.num_cpus = -1;
	rc = kray_actor_create(k, "Counter", NULL, 0, &o, &a);
	cr_assert_eq(rc, -EINVAL, "num_cpus -1: %d", rc);
	cr_assert(!memcmp(&a, &keep, sizeof(a)), "a failed create wrote its handle");
	cr_assert(*kray_errmsg(k), "no message after -EINVAL");

	/* unknown class: accepted, every call fails */
	u = create(k, "NoSuchClass", NULL, 0, NULL);
	call_err(k, u, "read", NULL, 0, KRAY_ERR_UNKNOWN_FUNCTION, "NoSuchClass", NULL);
	kray_release(k, &u, 1);

	c = counter(k, 0, NULL);
	call_err(k, c, "no_such_method", NULL, 0, KRAY_ERR_UNKNOWN_FUNCTION, "no_such_method",
		 NULL);
	call_err(k, c, "incr", NULL, 0, KRAY_ERR_BAD_ARGS, "incr", "1 argument");
	call_err(k, c, "incr", two, 2, KRAY_ERR_BAD_ARGS, "incr", NULL);
	call_err(k, c, "incr", &x, 1, KRAY_ERR_TASK, "must be int64", NULL);
	cr_assert_eq(call_int1(k, c, "incr", 1), 1, "the actor after bad calls");
	/* a constructor with the wrong argument count (Counter takes 0 or 1) */
	u = create(k, "Counter", two, 2, NULL);
	call_err(k, u, "read", NULL, 0, KRAY_ERR_TASK, "0 or 1", NULL);
	kray_release(k, &u, 1);

	/* not actor handles */
	r = harness_call1(k, "noop", NULL, 0);
	rc = kray_actor_call(k, r, "read", NULL, 0, NULL, &u);
	cr_assert_eq(rc, -EINVAL, "kray_actor_call on an object ref: %d", rc);
	rc = kray_kill(k, r, 1);
	cr_assert_eq(rc, -EINVAL, "kray_kill of an object ref: %d", rc);
	kray_release(k, &r, 1);
	rc = kray_get_actor(k, NULL, NULL, &u);
	cr_assert_eq(rc, -EINVAL, "kray_get_actor(NULL): %d", rc);
	rc = kray_get_actor(k, "", NULL, &u);
	cr_assert_eq(rc, -EINVAL, "kray_get_actor(\"\"): %d", rc);
	rc = kray_get_actor(k, longname, NULL, &u);
	cr_assert_eq(rc, -EINVAL, "kray_get_actor(299 bytes): %d", rc);

	/* a handle this process never had: a forged id */
	u = c;
	u.seq += 1000;
	call_err(k, u, "read", NULL, 0, KRAY_ERR_ACTOR_DIED, NULL, NULL);
	rc = kray_kill(k, u, 1);
	cr_assert_eq(rc, -ENOENT, "kray_kill of an unknown actor: %d", rc);
	cr_assert_eq(call_int(k, c, "read", NULL, 0), 1, "the actor after it all");
	kray_release(k, &c, 1);
	expect_drained(k, "releasing the actors");
	harness_shutdown(k);
}

/* Many actors of every kind, calls, lookups: once every handle and ref is released, no
 * actor is alive or pending and no object is left. */
Test(actors, drained_after_release, .timeout = 60)
{
	kray *k = harness_embedded(2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref h[8], r[16], found;
	kray_value msg = bytes_of("nope");
	size_t nr = 0;
	int rc;

	o.name = "drain";
	h[0] = counter(k, 0, &o);
	o = KRAY_ACTOR_OPTS_DEFAULT;
	o.max_concurrency = 3;
	h[1] = counter(k, 1, &o);
	h[2] = create(k, "Broken", &msg, 1, NULL);
	h[3] = create(k, "Noop", NULL, 0, NULL);
	kray_value cargs[2] = { KRAY_V_ACTOR(h[0]), KRAY_V_INT(1) };
	h[4] = create(k, "Caller", cargs, 2, NULL);
	h[5] = counter(k, 5, NULL);
	rc = kray_get_actor(k, "drain", NULL, &found);
	cr_assert_eq(rc, 0, "kray_get_actor(drain): %d %s", rc, kray_errmsg(k));
	for (int i = 0; i < 6; i++)
		r[nr++] = acall(k, h[i], i == 3 ? "noop" : i == 4 ? "first" : "read", NULL, 0);
	kray_value ta[2] = { KRAY_V_ACTOR(h[5]), bytes_of("read") };
	r[nr++] = harness_call1(k, "call_actor", ta, 2);
	r[nr++] = acall(k, found, "read", NULL, 0);
	uint8_t ready[16];
	size_t nready;

	rc = kray_wait(k, r, nr, nr, GET_MS, ready, &nready);
	cr_assert(rc == 0 && nready == nr, "kray_wait: %d, %zu of %zu ready", rc, nready, nr);
	cr_assert_geq(harness_status(k).actors_alive, 5);
	kray_release(k, r, nr);
	kray_release(k, &found, 1);
	kray_release(k, h, 6);
	expect_drained(k, "releasing every handle and ref");
	harness_shutdown(k);
}

/* As in Ray, calls made before the last handle went are answered (`A.remote().f.remote()`);
 * the actor ends after the last of them, and a later call cannot reach it. */
Test(actors, calls_made_before_release_are_answered, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_value ms = KRAY_V_INT(200);
	kray_ref c = counter(k, 10, NULL), slow, r[3];

	slow = acall(k, c, "sleep_ms", &ms, 1);
	for (int i = 0; i < 3; i++)
		r[i] = acall(k, c, "incr", &KRAY_V_INT(1), 1);
	kray_release(k, &c, 1);
	cr_assert_eq(get_int(k, slow, "sleep_ms before release"), 200);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(get_int(k, r[i], "incr before release"), 11 + i);
	expect_drained(k, "the last call of a released actor");
	harness_shutdown(k);
}

/* A ref lent inside an argument is the actor's to keep once it kray_hold()s it: returned
 * later, after the caller dropped every ref, it still names the object.  Without the
 * hold, returning it is refused (the actor does not hold it). */
Test(actors, borrower_keeps_a_lent_ref, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_value box = bytes_of("box"), v = { 0 }, inner = { 0 };
	kray_ref x, boxed, keepers[2];
	int rc;

	for (int hold = 0; hold < 2; hold++) {
		kray_value args[2] = { KRAY_V_REF(boxed), KRAY_V_INT(hold) };

		cr_assert_eq(kray_put(k, &KRAY_V_INT(42 + hold), &x), 0);
		cr_assert_eq(kray_put_refs(k, &box, &x, 1, &boxed), 0);
		args[0] = KRAY_V_REF(boxed);
		keepers[hold] = create(k, "Keeper", NULL, 0, NULL);
		cr_assert_eq(call_int(k, keepers[hold], "keep", args, 2), 1);
		kray_release(k, &x, 1);
		kray_release(k, &boxed, 1);
		kray_flush(k);
		usleep(100 * 1000);
		kray_ref r = acall(k, keepers[hold], "give", NULL, 0);

		rc = harness_get1(k, r, GET_MS, &v);
		if (!hold) {
			cr_assert_eq(rc, -EREMOTEIO, "a ref kept without kray_hold came back");
			cr_assert_eq(v.err, KRAY_ERR_OBJECT_LOST, "kind %s",
				     harness_errkind(v.err));
		} else {
			cr_assert_eq(rc, 0, "give: %d %s", rc, kray_errmsg(k));
			cr_assert_eq(v.nrefs, 1);
			cr_assert_eq(harness_get1(k, v.refs[0], GET_MS, &inner), 0, "%s",
				     kray_errmsg(k));
			cr_assert_eq(inner.i, 43);
			kray_value_clear(&inner);
			kray_release(k, v.refs, 1); /* the getter of the box holds it too */
		}
		kray_value_clear(&v);
		kray_release(k, &r, 1);
	}
	kray_release(k, keepers, 2);
	expect_drained(k, "releasing the keepers");
	harness_shutdown(k);
}

/* kray_actor_self() (GET_ACTOR with the SELF flag) answers only an actor's own worker: a
 * driver gets -ENOENT and goes on; SELF with a name is refused, and krayd keeps serving. */
Test(actors, self_handle_only_in_an_actor, .timeout = 60)
{
	struct harness h;
	struct {
		struct kray_frame_hdr h;
		struct kray_msg_get_actor m;
		char name[8];
	} f = { .h = { .magic = KRAY_WIRE_MAGIC,
		       .version = KRAY_WIRE_VERSION,
		       .type = KRAY_MSG_GET_ACTOR,
		       .len = sizeof(f) - sizeof(f.h),
		       .req = 1 },
		.m = { .name_len = 3, .flags = KRAY_GET_ACTOR_SELF },
		.name = "abc" };
	kray_ref self;
	kray_value v;
	kray *k;

	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	k = harness_connect(h.sock);
	cr_assert_eq(kray_actor_self(k, &self), -ENOENT, "%s", kray_errmsg(k));
	cr_assert_eq(kray_actor_self(k, NULL), -EINVAL);
	cr_assert_eq(harness_get1(k, harness_call1(k, "square", &KRAY_V_INT(4), 1), 20000, &v), 0,
		     "the connection still works: %s", kray_errmsg(k));
	kray_value_clear(&v);
	harness_shutdown(k);
	harness_raw_expect_error(&h, &f, sizeof(f), -EBADMSG, "GET_ACTOR SELF with a name");
	harness_expect_serving(&h, "a malformed GET_ACTOR");
}
