// SPDX-License-Identifier: Apache-2.0
/*
 * A bounded soak: mixed load from several driver processes at once against one krayd with
 * a small store (so that objects spill), for KRAY_SOAK_SECONDS seconds (default 45, so
 * that CI stays fast; `KRAY_SOAK_SECONDS=600 make test-integration` soaks for ten
 * minutes).  The test's timeout is KRAY_SOAK_SECONDS + 60 s.
 *
 * Each driver is a forked process with its own connection and random seed.  It runs a
 * random mix of small tasks, nested tasks, tasks with ref arguments, puts and gets of 0 B
 * to 16 MiB (byte patterns verified, in the driver and in tasks), kray_create/kray_seal,
 * nested refs, actors (create, calls, named lookups across drivers, kill with and without
 * restart, release, detached), tasks that kill their worker, get timeouts and the API
 * inside workers; it keeps some refs, views and actors across operations and checks them
 * again later.  Every value that must be right is checked: a wrong one fails the test,
 * with the driver's seed.  A driver lives a few seconds and then shuts down cleanly, or
 * exits abruptly (SIGKILL or _exit without kray_shutdown) while holding refs, views,
 * actors, an object half written and a running task; a new driver takes its place.
 *
 * After a warm-up round and at the end (every driver gone, a settle poll of kray_status),
 * the test records krayd's RSS, its open descriptors, kray_status's objects, store bytes,
 * pinned, spilled and live actors, and krayd's worker processes, prints them on one line
 * ("soak: ..."), and asserts that everything is back: no object, store byte, pin, spilled
 * object or spill file and no live actor; descriptors other than the pool's memfds back to
 * the start (within 2); the pool's memfds within its bound; RSS within start + 16 MiB; no
 * more worker processes than the prestarted pool; and krayd alive and answering.
 *
 * Three short tests at the end each check one bug the soak found, on its own: an object
 * that contains refs passed to a task, a killed actor's name, and an actor dropped before
 * its process connected.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../fixtures/pattern.h"
#include "harness.h"

#define SOAK_DEFAULT_S 45
#define NUM_CPUS 4 /* krayd's CPU slots, and so its prestarted workers */
#define DRIVERS 6 /* driver processes at once */
#define STORE_SIZE "64M" /* small, so that objects spill */
#define POOL_SIZE "32M"
#define POOL_MAX 64 /* memfds the pool keeps at most (daemon/core/pool.c) */
#define GET_MS 30000 /* a get that must answer: a hang fails the driver */
#define MAX_OBJECT (16u << 20)
#define INLINE_MAX (64u << 10) /* krayd's default inline-max */
#define FD_MARGIN 2 /* descriptors other than pool memfds: start + this at most */
#define RSS_MARGIN_KB (16 << 10) /* allocator caches: see Test(soak, mixed_load) */
#define SETTLE_MS 15000

TestSuite(soak, .fini = harness_cleanup);

static int soak_seconds(void)
{
	const char *s = getenv("KRAY_SOAK_SECONDS");
	int n = s && *s ? atoi(s) : SOAK_DEFAULT_S;

	return n > 0 ? n : SOAK_DEFAULT_S;
}

/* ---- what drivers share with the test ------------------------------------------------ */

enum op {
	OP_TASKS,
	OP_NESTED,
	OP_REF_ARGS,
	OP_PUT_GET,
	OP_CREATE,
	OP_TASK_BYTES,
	OP_CHECK_HELD,
	OP_NESTED_REFS,
	OP_ACTOR,
	OP_ACTOR_LOOKUP,
	OP_DETACHED,
	OP_WORKER_DEATH,
	OP_TIMEOUT,
	OP_WORKER_API,
	OP_TASK_TIMEOUT,
	NOPS
};

static const char *const op_names[NOPS] = {
	"tasks",      "nested",	      "ref_args",    "put_get",	   "create",
	"task_bytes", "check_held",   "nested_refs", "actor",	   "actor_lookup",
	"detached",   "worker_death", "timeout",     "worker_api", "task_timeout",
};

/* In a MAP_SHARED mapping made before the drivers are forked; updated atomically. */
struct shared {
	uint64_t ops[NOPS];
	uint64_t enospc; /* large creates refused because the store was full of pins */
	uint64_t store_full; /* large values that could not be made or restored, same reason */
	uint64_t clean, killed, exited, failed, started;
	int fail_claimed;
	char fail[1024]; /* the first driver failure */
};

static struct shared *sh;

#define ADD(field, n) __atomic_fetch_add(&sh->field, (n), __ATOMIC_RELAXED)

/* ---- a driver ------------------------------------------------------------------------ */

#define HELD_MAX 12
#define VIEWS_MAX 2
#define VIEW_MAX_SIZE (2u << 20) /* views kept across operations (they pin) */
#define ACTORS_MAX 2

struct held {
	kray_ref ref;
	bool bytes;
	int64_t x; /* INT64 value */
	size_t size; /* BYTES: size and pattern seed */
	uint64_t seed;
};

struct actor {
	kray_ref h;
	int64_t n; /* the counter's value, as this driver knows it */
	int64_t start;
	int restarts; /* restarts left */
	bool threads; /* max_concurrency 2: calls may run at once, so only reads */
	char name[64]; /* "" if unnamed */
};

struct driver {
	kray *k;
	int slot, serial;
	uint64_t seed, rng;
	const char *tmpdir;
	enum op op;
	struct held held[HELD_MAX];
	int nheld;
	kray_value views[VIEWS_MAX]; /* values kept (and so mapped) across operations */
	int nviews;
	struct actor actors[ACTORS_MAX];
	int nactors;
	unsigned names; /* named actors made */
	uint8_t *buf; /* MAX_OBJECT bytes of scratch */
};

static uint64_t rnd(struct driver *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return d->rng * 0x2545f4914f6cdd1dull;
}

/* Uniform in [lo, hi]. */
static int64_t range(struct driver *d, int64_t lo, int64_t hi)
{
	return lo + (int64_t)(rnd(d) % (uint64_t)(hi - lo + 1));
}

static bool chance(struct driver *d, int percent)
{
	return (int)(rnd(d) % 100) < percent;
}

/* Records the failure (the first one is kept for the test's message) and exits. */
static void __attribute__((noreturn, format(printf, 2, 3)))
dfail(struct driver *d, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "soak driver %d.%d (seed %#llx), op %s: %s\n", d->slot, d->serial,
		(unsigned long long)d->seed, op_names[d->op], msg);
	n = 0;
	if (__atomic_compare_exchange_n(&sh->fail_claimed, &n, 1, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE))
		snprintf(sh->fail, sizeof(sh->fail), "driver %d.%d (seed %#llx), op %s: %s",
			 d->slot, d->serial, (unsigned long long)d->seed, op_names[d->op], msg);
	_exit(10);
}

/* The error text of a value, for messages. */
static const char *why(const kray_value *v)
{
	return v->type == KRAY_ERROR && v->data ? (const char *)v->data : "";
}

/* A size from 0 B to 16 MiB, with the edges (inline-max and one more) often. */
static size_t any_size(struct driver *d)
{
	switch (range(d, 0, 19)) {
	case 0:
		return 0;
	case 1:
		return INLINE_MAX;
	case 2:
		return INLINE_MAX + 1;
	case 3:
		return MAX_OBJECT;
	case 4:
	case 5:
	case 6:
		return (size_t)range(d, 1, 64);
	case 7:
	case 8:
		return (size_t)range(d, 65, 4096);
	case 9:
	case 10:
		return (size_t)range(d, 4097, INLINE_MAX);
	case 11:
	case 12:
	case 13:
		return (size_t)range(d, INLINE_MAX + 2, 1 << 20);
	case 14:
	case 15:
	case 16:
		return (size_t)range(d, (1 << 20) + 1, 4 << 20);
	default:
		return (size_t)range(d, (4 << 20) + 1, MAX_OBJECT);
	}
}

static void must(struct driver *d, int rc, const char *what)
{
	if (rc)
		dfail(d, "%s: %d (%s)", what, rc, kray_errmsg(d->k));
}

/* Gets one value; any rc but 0 or -EREMOTEIO (an error value) fails the driver. */
static int get1(struct driver *d, kray_ref r, kray_value *v, const char *what)
{
	int rc = kray_get(d->k, &r, 1, GET_MS, v);

	if (rc && rc != -EREMOTEIO)
		dfail(d, "get of %s: %d (%s)", what, rc, kray_errmsg(d->k));
	return rc;
}

/* Gets r, which must be the INT64 want; releases r. */
static void expect_int(struct driver *d, kray_ref r, int64_t want, const char *what)
{
	kray_value v = { 0 };

	if (get1(d, r, &v, what) || v.type != KRAY_INT64 || v.i != want)
		dfail(d, "%s: type %d value %lld, want %lld (%s)", what, v.type, (long long)v.i,
		      (long long)want, why(&v));
	kray_value_clear(&v);
	kray_release(d->k, &r, 1);
}

/* Gets r, which must be an ERROR of kind err; releases r. */
static void expect_err(struct driver *d, kray_ref r, enum kray_errkind err, const char *what)
{
	kray_value v = { 0 };
	int rc = get1(d, r, &v, what);

	if (rc != -EREMOTEIO || v.type != KRAY_ERROR || v.err != err)
		dfail(d, "%s: rc %d type %d err %d (%s), want error kind %d", what, rc, v.type,
		      v.err, why(&v), err);
	kray_value_clear(&v);
	kray_release(d->k, &r, 1);
}

static kray_ref call(struct driver *d, const char *fn, const kray_value *args, size_t n,
		     const struct kray_call_opts *o)
{
	kray_ref r;

	must(d, kray_call(d->k, fn, args, n, o, &r), fn);
	return r;
}

static kray_ref acall(struct driver *d, kray_ref a, const char *m, const kray_value *args, size_t n)
{
	kray_ref r;

	must(d, kray_actor_call(d->k, a, m, args, n, NULL, &r), m);
	return r;
}

/* Checks that v is the BYTES value pattern(size, seed); a large value that could not be
 * restored because the store is full of pinned objects is allowed (returns false). */
static bool check_bytes(struct driver *d, int rc, const kray_value *v, size_t size, uint64_t seed,
			const char *what)
{
	int64_t bad;

	if (rc == -EREMOTEIO && v->type == KRAY_ERROR && v->err == KRAY_ERR_STORE_FULL &&
	    size > INLINE_MAX) {
		ADD(store_full, 1);
		return false;
	}
	if (rc || v->type != KRAY_BYTES || v->len != size)
		dfail(d, "%s: rc %d type %d len %zu, want %zu bytes (%s)", what, rc, v->type,
		      v->len, size, why(v));
	bad = pattern_check(v->data, 0, size, seed);
	if (bad >= 0)
		dfail(d, "%s: byte %lld of %zu differs (seed %#llx)", what, (long long)bad, size,
		      (unsigned long long)seed);
	return true;
}

static void release_held(struct driver *d, int i)
{
	kray_release(d->k, &d->held[i].ref, 1);
	d->held[i] = d->held[--d->nheld];
}

/* Keeps ref (its value known) for later checks, dropping a random older one if full. */
static void keep(struct driver *d, struct held h)
{
	if (d->nheld == HELD_MAX)
		release_held(d, (int)range(d, 0, HELD_MAX - 1));
	d->held[d->nheld++] = h;
}

/* Keeps a got value (and its mapping) across operations, dropping an older one. */
static bool keep_view(struct driver *d, kray_value *v)
{
	if (v->len > VIEW_MAX_SIZE)
		return false;
	if (d->nviews == VIEWS_MAX) {
		kray_value_clear(&d->views[0]);
		d->views[0] = d->views[--d->nviews];
	}
	d->views[d->nviews++] = *v;
	*v = (kray_value){ 0 };
	return true;
}

/* ---- operations ---- */

static void op_tasks(struct driver *d)
{
	int n = (int)range(d, 1, 32);
	kray_ref refs[32];
	kray_value vals[32];
	int64_t want[32];
	int rc;

	for (int i = 0; i < n; i++) {
		int64_t a = range(d, -3000000000LL, 3000000000LL), b = range(d, -1000, 1000);

		if (i & 1) {
			kray_value args[2] = { KRAY_V_INT(a), KRAY_V_INT(b) };

			refs[i] = call(d, "add", args, 2, NULL);
			want[i] = a + b;
		} else {
			kray_value x = KRAY_V_INT(a);

			refs[i] = call(d, "square", &x, 1, NULL);
			want[i] = a * a;
		}
	}
	rc = kray_get(d->k, refs, (size_t)n, GET_MS, vals);
	if (rc)
		dfail(d, "get of %d tasks: %d (%s)", n, rc, kray_errmsg(d->k));
	for (int i = 0; i < n; i++) {
		if (vals[i].type != KRAY_INT64 || vals[i].i != want[i])
			dfail(d, "task %d: type %d %lld, want %lld", i, vals[i].type,
			      (long long)vals[i].i, (long long)want[i]);
		kray_value_clear(&vals[i]);
	}
	kray_release(d->k, refs, (size_t)n);
}

static void op_nested(struct driver *d)
{
	int64_t depth = range(d, 1, 2), width = range(d, 1, 3), want = 1;
	kray_value args[2] = { KRAY_V_INT(depth), KRAY_V_INT(width) };

	for (int i = 0; i < depth; i++)
		want *= width;
	expect_int(d, call(d, "nested", args, 2, NULL), want, "nested");
}

static void op_ref_args(struct driver *d)
{
	int64_t a = range(d, -10000, 10000), b = range(d, -10000, 10000);
	kray_value va = KRAY_V_INT(a);
	kray_ref ra, r1, r2;

	must(d, kray_put(d->k, &va, &ra), "put");
	kray_value args[2] = { KRAY_V_REF(ra), KRAY_V_INT(b) };
	r1 = call(d, "add", args, 2, NULL);
	kray_value s = KRAY_V_REF(r1);
	r2 = call(d, "square", &s, 1, NULL);
	if (chance(d, 50))
		kray_release(d->k, &r1, 1); /* the pending task holds it */
	else
		keep(d, (struct held){ .ref = r1, .x = a + b });
	if (chance(d, 50))
		kray_release(d->k, &ra, 1);
	else
		keep(d, (struct held){ .ref = ra, .x = a });
	expect_int(d, r2, (a + b) * (a + b), "square(add(ref, b))");

	/* a held bytes object read by a task */
	for (int i = 0; i < d->nheld; i++) {
		struct held *h = &d->held[i];
		kray_value v = { 0 };
		int rc;

		if (!h->bytes)
			continue;
		kray_value arg = KRAY_V_REF(h->ref);
		kray_ref r = call(d, "inspect_bytes", &arg, 1, NULL);

		rc = get1(d, r, &v, "inspect_bytes");
		if (rc == -EREMOTEIO && v.err == KRAY_ERR_STORE_FULL && h->size > INLINE_MAX) {
			ADD(store_full, 1);
		} else {
			pattern_fill(d->buf, 0, h->size, h->seed);
			if (rc || v.type != KRAY_INT64 ||
			    (uint64_t)v.i != checksum64(d->buf, h->size))
				dfail(d,
				      "inspect_bytes of a held %zu-byte object: rc %d type %d "
				      "(%s)",
				      h->size, rc, v.type, why(&v));
		}
		kray_value_clear(&v);
		kray_release(d->k, &r, 1);
		break;
	}
}

/* What to do with a value just checked: keep its ref, keep its view, or drop both. */
static void after_check(struct driver *d, kray_ref r, kray_value *v, size_t size, uint64_t seed)
{
	if (chance(d, 30))
		keep(d, (struct held){ .ref = r, .bytes = true, .size = size, .seed = seed });
	else
		kray_release(d->k, &r, 1);
	/* a view may outlive its ref */
	if (!(chance(d, 25) && keep_view(d, v)))
		kray_value_clear(v);
}

static void op_put_get(struct driver *d)
{
	size_t size = any_size(d);
	uint64_t seed = rnd(d);
	kray_value v = KRAY_V_BYTES(d->buf, size), got = { 0 };
	kray_ref r;
	int rc;

	pattern_fill(d->buf, 0, size, seed);
	rc = kray_put(d->k, &v, &r);
	if (rc == -ENOSPC && size > INLINE_MAX) {
		ADD(enospc, 1);
		return;
	}
	must(d, rc, "put");
	rc = kray_get(d->k, &r, 1, GET_MS, &got);
	if (rc && rc != -EREMOTEIO)
		dfail(d, "get of a %zu-byte put: %d (%s)", size, rc, kray_errmsg(d->k));
	if (!check_bytes(d, rc, &got, size, seed, "put then get")) {
		kray_value_clear(&got);
		kray_release(d->k, &r, 1);
		return;
	}
	after_check(d, r, &got, size, seed);
}

static void op_create(struct driver *d)
{
	size_t size = any_size(d);
	uint64_t seed = rnd(d);
	kray_value got = { 0 };
	kray_ref r;
	void *p;
	int rc = kray_create(d->k, size, &r, &p);

	if (rc == -ENOSPC && size > INLINE_MAX) {
		ADD(enospc, 1);
		return;
	}
	must(d, rc, "kray_create");
	pattern_fill(p, 0, size, seed);
	must(d, kray_seal(d->k, &r), "kray_seal");
	rc = kray_get(d->k, &r, 1, GET_MS, &got);
	if (rc && rc != -EREMOTEIO)
		dfail(d, "get of a %zu-byte created object: %d (%s)", size, rc, kray_errmsg(d->k));
	if (!check_bytes(d, rc, &got, size, seed, "create then get")) {
		kray_value_clear(&got);
		kray_release(d->k, &r, 1);
		return;
	}
	after_check(d, r, &got, size, seed);
}

static void op_task_bytes(struct driver *d)
{
	size_t size = any_size(d);
	uint64_t seed = rnd(d) >> 1;
	kray_value args[2] = { KRAY_V_INT((int64_t)size), KRAY_V_INT((int64_t)seed) };
	kray_value got = { 0 };
	kray_ref r = call(d, "make_pattern", args, 2, NULL);
	int rc = get1(d, r, &got, "make_pattern");

	if (!check_bytes(d, rc, &got, size, seed, "make_pattern")) {
		kray_value_clear(&got);
		kray_release(d->k, &r, 1);
		return;
	}
	after_check(d, r, &got, size, seed);
}

static void op_check_held(struct driver *d)
{
	kray_ref refs[HELD_MAX] = { 0 };
	kray_value vals[HELD_MAX];
	int n = d->nheld, rc;

	/* every kept view still holds its bytes */
	for (int i = 0; i < d->nviews; i++)
		if (d->views[i].type != KRAY_BYTES)
			dfail(d, "a kept view has type %d", d->views[i].type);
	if (!n)
		return;
	for (int i = 0; i < n; i++)
		refs[i] = d->held[i].ref;
	rc = kray_get(d->k, refs, (size_t)n, GET_MS, vals);
	if (rc && rc != -EREMOTEIO)
		dfail(d, "get of %d held refs: %d (%s)", n, rc, kray_errmsg(d->k));
	for (int i = 0; i < n; i++) {
		struct held *h = &d->held[i];

		if (h->bytes) {
			check_bytes(d, vals[i].type == KRAY_ERROR ? -EREMOTEIO : 0, &vals[i],
				    h->size, h->seed, "a held object");
		} else if (vals[i].type != KRAY_INT64 || vals[i].i != h->x) {
			dfail(d, "held int: type %d %lld, want %lld (%s)", vals[i].type,
			      (long long)vals[i].i, (long long)h->x, why(&vals[i]));
		}
		kray_value_clear(&vals[i]);
	}
	if (chance(d, 30))
		release_held(d, (int)range(d, 0, n - 1));
}

static void op_nested_refs(struct driver *d)
{
	int n = d->nheld < 4 ? d->nheld : 4;
	kray_ref in[4], c, t;
	kray_value tag = KRAY_V_INT(range(d, 0, 1 << 30)), v = { 0 };

	if (!n) {
		op_ref_args(d); /* makes some */
		return;
	}
	for (int i = 0; i < n; i++)
		in[i] = d->held[(int)range(d, 0, d->nheld - 1)].ref;
	must(d, kray_put_refs(d->k, &tag, in, (size_t)n, &c), "kray_put_refs");
	if (get1(d, c, &v, "a container") || v.type != KRAY_INT64 || v.i != tag.i ||
	    v.nrefs != (size_t)n)
		dfail(d, "container: type %d %lld, %zu refs, want %lld and %d refs (%s)", v.type,
		      (long long)v.i, v.nrefs, (long long)tag.i, n, why(&v));
	for (int i = 0; i < n; i++)
		if (memcmp(&v.refs[i], &in[i], sizeof(in[i])))
			dfail(d, "container: ref %d differs", i);
	must(d, kray_release(d->k, v.refs, v.nrefs), "release of borrowed refs");
	kray_value_clear(&v);
	/* the container as an argument arrives as its value */
	kray_value arg = KRAY_V_REF(c);

	t = call(d, "type_of", &arg, 1, NULL);
	kray_release(d->k, &c, 1);
	expect_int(d, t, KRAY_INT64, "type_of(container)");
}

static void actor_drop(struct driver *d, int i)
{
	kray_release(d->k, &d->actors[i].h, 1);
	d->actors[i] = d->actors[--d->nactors];
}

/* Waits until pid is gone (its death handled by krayd), 10 s at most. */
static void wait_gone(struct driver *d, pid_t pid)
{
	int64_t end = harness_now_ms() + 10000;

	while (kill(pid, 0) == 0 || errno != ESRCH) {
		if (harness_now_ms() > end)
			dfail(d, "a killed actor's process %d is still there after 10 s", pid);
		usleep(5000);
	}
}

static int64_t actor_int(struct driver *d, kray_ref a, const char *m, const kray_value *args,
			 size_t n)
{
	kray_value v = { 0 };
	kray_ref r = acall(d, a, m, args, n);
	int64_t x;

	if (get1(d, r, &v, m) || v.type != KRAY_INT64)
		dfail(d, "%s(): type %d (%s)", m, v.type, why(&v));
	x = v.i;
	kray_value_clear(&v);
	kray_release(d->k, &r, 1);
	return x;
}

static void op_actor(struct driver *d)
{
	struct actor *a;
	int i;

	if (!d->nactors || (d->nactors < ACTORS_MAX && chance(d, 30))) {
		struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
		struct actor n = { .start = range(d, -100, 100) };
		kray_value s = KRAY_V_INT(n.start);

		if (chance(d, 50)) {
			snprintf(n.name, sizeof(n.name), "soak-%d-%u", d->serial, ++d->names);
			o.name = n.name;
			o.ns = "soak";
		}
		n.restarts = o.max_restarts = chance(d, 30) ? 1 : 0;
		if (chance(d, 30)) {
			o.max_concurrency = 2;
			n.threads = true;
		}
		must(d, kray_actor_create(d->k, "Counter", &s, 1, &o, &n.h), "kray_actor_create");
		n.n = n.start;
		d->actors[d->nactors++] = n;
	}
	i = (int)range(d, 0, d->nactors - 1);
	a = &d->actors[i];

	switch (range(d, 0, 9)) {
	case 0: { /* kill it for good: calls then fail */
		kray_value one = KRAY_V_INT(1);

		must(d, kray_kill(d->k, a->h, 1), "kray_kill");
		expect_err(d, acall(d, a->h, "incr", &one, 1), KRAY_ERR_ACTOR_DIED,
			   "a call after kray_kill");
		actor_drop(d, i);
		return;
	}
	case 1: /* kill it with a restart left: the constructor runs again */
		if (a->restarts) {
			pid_t pid = (pid_t)actor_int(d, a->h, "pid", NULL, 0);

			must(d, kray_kill(d->k, a->h, 0), "kray_kill(restart)");
			wait_gone(d, pid);
			a->restarts--;
			a->n = a->start;
			if (actor_int(d, a->h, "read", NULL, 0) != a->n)
				dfail(d, "a restarted counter does not read its start");
			return;
		}
		break;
	case 2: /* let it go */
		actor_drop(d, i);
		return;
	case 3: { /* through a task that is given its handle */
		kray_value args[2] = { KRAY_V_ACTOR(a->h), KRAY_V_BYTES("read", 4) };

		expect_int(d, call(d, "call_actor", args, 2, NULL), a->n, "call_actor(read)");
		return;
	}
	case 4: /* by its name */
		if (a->name[0]) {
			kray_ref f;

			must(d, kray_get_actor(d->k, a->name, "soak", &f), "kray_get_actor");
			if (memcmp(&f, &a->h, sizeof(f)))
				dfail(d, "kray_get_actor(%s) found another actor", a->name);
			if (actor_int(d, f, "read", NULL, 0) != a->n)
				dfail(d, "read through a looked-up handle");
			kray_release(d->k, &f, 1);
			return;
		}
		break;
	}
	/* a pipeline of increments, in order (reads where methods may run at once) */
	int n = (int)range(d, 1, 10);
	kray_ref refs[10];
	kray_value vals[10];
	int64_t by[10];

	for (int j = 0; j < n; j++) {
		kray_value x = KRAY_V_INT(by[j] = a->threads ? 0 : range(d, -5, 5));

		refs[j] = a->threads ? acall(d, a->h, "read", NULL, 0) :
				       acall(d, a->h, "incr", &x, 1);
	}
	if (kray_get(d->k, refs, (size_t)n, GET_MS, vals))
		dfail(d, "get of %d incr calls: %s", n, kray_errmsg(d->k));
	for (int j = 0; j < n; j++) {
		a->n += by[j];
		if (vals[j].type != KRAY_INT64 || vals[j].i != a->n)
			dfail(d, "incr %d of %d: type %d %lld, want %lld", j, n, vals[j].type,
			      (long long)vals[j].i, (long long)a->n);
		kray_value_clear(&vals[j]);
	}
	kray_release(d->k, refs, (size_t)n);
}

/* Other drivers' actors, by name (drivers started near this one): they may exist or not,
 * and may die at any time. */
static void op_actor_lookup(struct driver *d)
{
	char name[64];
	kray_ref f, r;
	kray_value v = { 0 };
	int rc;

	snprintf(name, sizeof(name), "soak-%d-%d", d->serial + (int)range(d, -DRIVERS, 2),
		 (int)range(d, 1, 4));
	rc = kray_get_actor(d->k, name, "soak", &f);
	if (rc == -ENOENT)
		return;
	must(d, rc, "kray_get_actor of another driver's actor");
	r = acall(d, f, "read", NULL, 0);
	rc = get1(d, r, &v, "read of another driver's actor");
	if (!(rc == 0 && v.type == KRAY_INT64) &&
	    !(rc == -EREMOTEIO && v.err == KRAY_ERR_ACTOR_DIED))
		dfail(d, "read of %s: rc %d type %d err %d (%s)", name, rc, v.type, v.err, why(&v));
	kray_value_clear(&v);
	kray_release(d->k, &r, 1);
	kray_release(d->k, &f, 1);
}

/* A detached named actor: it outlives every handle, so it is killed here. */
static void op_detached(struct driver *d)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_value by = KRAY_V_INT(3);
	char name[64];
	kray_ref a, f;

	snprintf(name, sizeof(name), "soak-detached-%d-%u", d->serial, ++d->names);
	o.name = name;
	o.detached = 1;
	must(d, kray_actor_create(d->k, "Counter", NULL, 0, &o, &a), "create detached");
	kray_release(d->k, &a, 1);
	must(d, kray_get_actor(d->k, name, NULL, &f), "kray_get_actor(detached)");
	if (actor_int(d, f, "incr", &by, 1) != 3)
		dfail(d, "a detached counter");
	must(d, kray_kill(d->k, f, 1), "kray_kill(detached)");
	/* dead for good at once: no longer found, and calls fail */
	if (kray_get_actor(d->k, name, NULL, &a) != -ENOENT)
		dfail(d, "a killed detached actor is still found");
	expect_err(d, acall(d, f, "read", NULL, 0), KRAY_ERR_ACTOR_DIED, "read after kill");
	kray_release(d->k, &f, 1);
}

static void op_worker_death(struct driver *d)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	char path[256];

	if (chance(d, 50)) {
		snprintf(path, sizeof(path), "%s/die-%d-%d-%u", d->tmpdir, d->slot, d->serial,
			 (unsigned)rnd(d));
		kray_value p = KRAY_V_BYTES(path, strlen(path));

		expect_int(d, call(d, "die_once", &p, 1, NULL), 42, "die_once");
	} else {
		o.max_retries = (int)range(d, 0, 1);
		expect_err(d, call(d, "die_always", NULL, 0, &o), KRAY_ERR_WORKER_DIED,
			   "die_always");
	}
}

static void op_timeout(struct driver *d)
{
	int64_t ms = range(d, 1000, 1500); /* far longer than the short get, even when busy */
	kray_value a = KRAY_V_INT(ms), v = { 0 };
	kray_ref r = call(d, "sleep_ms", &a, 1, NULL);
	uint8_t ready = 9;
	size_t nready = 9;
	int rc;

	rc = kray_get(d->k, &r, 1, range(d, 0, 30), &v);
	if (rc != -ETIMEDOUT)
		dfail(d, "get of a %lld ms task with a short timeout: %d, want -ETIMEDOUT",
		      (long long)ms, rc);
	rc = kray_wait(d->k, &r, 1, 1, 0, &ready, &nready);
	if (rc || nready != 0 || ready != 0)
		dfail(d, "kray_wait(0 ms) of a sleeping task: %d, %zu ready", rc, nready);
	expect_int(d, r, ms, "sleep_ms after a timeout");
}

static void op_worker_api(struct driver *d)
{
	int64_t x = range(d, -1000000, 1000000);
	kray_value a = KRAY_V_INT(x);
	kray_value args[2] = { KRAY_V_BYTES("die_always", 10), KRAY_V_INT(0) };

	expect_int(d, call(d, "put_get", &a, 1, NULL), x, "put_get");
	expect_int(d, call(d, "call_and_get", args, 2, NULL), -100 - KRAY_ERR_WORKER_DIED,
		   "call_and_get(die_always)");
}

/* A task past its timeout fails with TIMED_OUT (its worker replaced); one in time does
 * not. */
static void op_task_timeout(struct driver *d)
{
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray_value slow = KRAY_V_INT(5000), quick = KRAY_V_INT(1);

	o.timeout_ms = (unsigned)range(d, 100, 300);
	expect_err(d, call(d, "sleep_ms", &slow, 1, &o), KRAY_ERR_TIMED_OUT, "sleep past timeout");
	o.timeout_ms = 30000;
	expect_int(d, call(d, "sleep_ms", &quick, 1, &o), 1, "sleep_ms in time");
}

static void (*const ops[NOPS])(struct driver *) = {
	[OP_TASKS] = op_tasks,
	[OP_NESTED] = op_nested,
	[OP_REF_ARGS] = op_ref_args,
	[OP_PUT_GET] = op_put_get,
	[OP_CREATE] = op_create,
	[OP_TASK_BYTES] = op_task_bytes,
	[OP_CHECK_HELD] = op_check_held,
	[OP_NESTED_REFS] = op_nested_refs,
	[OP_ACTOR] = op_actor,
	[OP_ACTOR_LOOKUP] = op_actor_lookup,
	[OP_DETACHED] = op_detached,
	[OP_WORKER_DEATH] = op_worker_death,
	[OP_TIMEOUT] = op_timeout,
	[OP_WORKER_API] = op_worker_api,
	[OP_TASK_TIMEOUT] = op_task_timeout,
};

/* Relative weights: the cheap operations most often. */
static const int weights[NOPS] = {
	[OP_TASKS] = 14,  [OP_NESTED] = 5,	 [OP_REF_ARGS] = 8,	[OP_PUT_GET] = 14,
	[OP_CREATE] = 8,  [OP_TASK_BYTES] = 8,	 [OP_CHECK_HELD] = 8,	[OP_NESTED_REFS] = 5,
	[OP_ACTOR] = 10,  [OP_ACTOR_LOOKUP] = 4, [OP_DETACHED] = 1,	[OP_WORKER_DEATH] = 3,
	[OP_TIMEOUT] = 2, [OP_WORKER_API] = 3,	 [OP_TASK_TIMEOUT] = 1,
};

static enum op pick(struct driver *d)
{
	int total = 0, x;

	for (int i = 0; i < NOPS; i++)
		total += weights[i];
	x = (int)range(d, 0, total - 1);
	for (int i = 0; i < NOPS; i++) {
		if (x < weights[i])
			return (enum op)i;
		x -= weights[i];
	}
	return OP_TASKS;
}

enum ending { END_CLEAN, END_SIGKILL, END_EXIT };

/* Leaves with refs, views, an actor, an object half written and a running task. */
static void __attribute__((noreturn)) abrupt(struct driver *d, enum ending how)
{
	kray_value ms = KRAY_V_INT(300);
	kray_ref r;
	void *p;

	d->op = OP_PUT_GET;
	if (!d->nviews) {
		uint64_t seed = rnd(d);
		kray_value v = KRAY_V_BYTES(d->buf, 1 << 20), got = { 0 };

		pattern_fill(d->buf, 0, 1 << 20, seed);
		if (!kray_put(d->k, &v, &r) && !get1(d, r, &got, "a view to die with"))
			keep_view(d, &got);
		kray_value_clear(&got);
	}
	d->op = OP_ACTOR;
	if (!d->nactors)
		op_actor(d);
	if (!kray_create(d->k, (size_t)range(d, INLINE_MAX + 1, 4 << 20), &r, &p))
		memset(p, 0xab, 4096); /* never sealed */
	kray_call(d->k, "sleep_ms", &ms, 1, NULL, &r);
	kray_flush(d->k);
	usleep(20000); /* let the task start */
	if (how == END_SIGKILL)
		raise(SIGKILL);
	_exit(77);
}

static void __attribute__((noreturn))
driver_main(const char *sock, const char *tmpdir, int slot, int serial, uint64_t seed,
	    int64_t deadline, bool warmup)
{
	struct kray_config cfg = { .address = sock, .code_path = getenv("KRAY_TEST_CODE_PATH") };
	struct driver d = {
		.slot = slot, .serial = serial, .seed = seed, .rng = seed | 1, .tmpdir = tmpdir
	};
	int64_t end = harness_now_ms() + 2000 + (int64_t)(seed % 6000);
	enum ending how = END_CLEAN;
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (end > deadline)
		end = deadline;
	if (!warmup && chance(&d, 35))
		how = chance(&d, 50) ? END_SIGKILL : END_EXIT;
	d.buf = malloc(MAX_OBJECT);
	if (!d.buf)
		dfail(&d, "out of memory");
	rc = kray_init(&d.k, &cfg);
	if (rc)
		dfail(&d, "kray_init(%s): %d %s", sock, rc, kray_init_errmsg());
	ADD(started, 1);
	while (harness_now_ms() < end) {
		d.op = pick(&d);
		ops[d.op](&d);
		ADD(ops[d.op], 1);
	}
	if (how != END_CLEAN)
		abrupt(&d, how);
	/* A clean end: everything released, then shut down. */
	d.op = OP_CHECK_HELD;
	op_check_held(&d);
	while (d.nheld)
		release_held(&d, 0);
	while (d.nviews)
		kray_value_clear(&d.views[--d.nviews]);
	while (d.nactors)
		actor_drop(&d, 0);
	rc = kray_flush(d.k);
	if (rc)
		dfail(&d, "kray_flush at the end: %d %s", rc, kray_errmsg(d.k));
	kray_shutdown(d.k);
	free(d.buf);
	_exit(0);
}

/* ---- the test's side ----------------------------------------------------------------- */

struct figures {
	long rss_kb;
	int fds, memfds;
	int workers;
	int spill_files;
	struct kray_stats st;
	struct kray_guard_stats g;
};

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Open descriptors of pid; *memfds of them are memfds (objects and the pool). */
static int count_fds(pid_t pid, int *memfds)
{
	char path[64], link[PATH_MAX], target[256];
	struct dirent *e;
	int n = 0;
	DIR *dir;

	*memfds = 0;
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((e = readdir(dir))) {
		ssize_t len;

		if (e->d_name[0] == '.')
			continue;
		n++;
		snprintf(link, sizeof(link), "%s/%s", path, e->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len > 0) {
			target[len] = 0;
			if (strstr(target, "memfd:"))
				(*memfds)++;
		}
	}
	closedir(dir);
	return n;
}

/* Processes whose parent is pid: krayd's workers (task pool and actors). */
static int children_of(pid_t pid)
{
	struct dirent *e;
	int n = 0;
	DIR *proc = opendir("/proc");

	if (!proc)
		return -1;
	while ((e = readdir(proc))) {
		char path[300], buf[1024], *close_paren;
		int ppid;
		size_t len;
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = 0;
		/* "pid (comm) state ppid ...": comm may hold spaces and parentheses */
		close_paren = strrchr(buf, ')');
		if (close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 && ppid == pid)
			n++;
	}
	closedir(proc);
	return n;
}

/*
 * True when krayd runs under a sanitizer: its RSS then says little (ASan keeps freed
 * memory in a quarantine of up to 256 MiB, and shadow memory grows with the heap).  The
 * test binary is built like krayd in make test-asan and test-tsan; a krayd with a
 * sanitizer runtime in its maps counts too.
 */
static bool sanitized(pid_t pid)
{
	char path[64], line[512];
	bool found = false;
	FILE *f;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
	return true;
#endif
#endif
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, "/libasan.") || strstr(line, "/libtsan.");
	fclose(f);
	return found;
}

static int count_files(const char *dir)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir(dir);

	if (!d)
		return 0; /* never made: nothing spilled there */
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static struct figures measure(struct harness *h, kray *k)
{
	struct figures f;
	char spill[200];

	f.st = harness_status(k);
	cr_assert_eq(kray_guard_status(k, &f.g), 0, "kray_guard_status: %s", kray_errmsg(k));
	f.rss_kb = rss_kb(h->pid);
	f.fds = count_fds(h->pid, &f.memfds);
	f.workers = children_of(h->pid);
	snprintf(spill, sizeof(spill), "%s.spill", h->sock);
	f.spill_files = count_files(spill);
	return f;
}

/* Polls until krayd holds nothing (and, with pool, has no more workers than its pool),
 * SETTLE_MS at most. */
static struct figures settle(struct harness *h, kray *k, bool pool)
{
	int64_t deadline = harness_now_ms() + SETTLE_MS;
	struct figures f;

	do {
		f = measure(h, k);
		if (!f.st.objects && !f.st.store_bytes && !f.st.objects_pinned &&
		    !f.st.objects_spilled && !f.st.actors_alive && !f.st.actors_pending &&
		    !f.st.tasks_queued && !f.st.workers_busy && !f.spill_files && f.g.jobs <= 1 &&
		    (!pool || f.workers <= NUM_CPUS))
			break;
		usleep(50000);
	} while (harness_now_ms() < deadline);
	return f;
}

struct slot {
	pid_t pid;
	int serial;
	bool warmup;
};

/* Reaps a finished driver; returns true if slot s is free again. */
static bool reap(struct slot *s)
{
	int status;

	if (!s->pid)
		return true;
	if (waitpid(s->pid, &status, WNOHANG) != s->pid)
		return false;
	s->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		ADD(clean, 1);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
		ADD(exited, 1);
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
		ADD(killed, 1);
	else {
		ADD(failed, 1);
		if (!(WIFEXITED(status) && WEXITSTATUS(status) == 10))
			fprintf(stderr, "soak: driver %d died: %s %d\n", s->serial,
				WIFEXITED(status) ? "exit code" : "signal",
				WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	return true;
}

static void spawn(struct slot *s, int slot, int serial, const struct harness *h, const char *tmpdir,
		  int64_t deadline, bool warmup)
{
	uint64_t seed = ((uint64_t)getpid() << 32) ^ ((uint64_t)serial * 0x9e3779b97f4a7c15ull) ^
			(uint64_t)harness_now_ms();
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0)
		driver_main(h->sock, tmpdir, slot, serial, seed, deadline, warmup);
	*s = (struct slot){ .pid = pid, .serial = serial, .warmup = warmup };
}

/*
 * Runs drivers in DRIVERS slots until deadline (a finished one is replaced at once),
 * then waits for the last ones: a driver still running 45 s after the deadline is hung
 * (its gets time out after 30 s) and is killed, which fails the test.
 */
static void run_drivers(struct harness *h, const char *tmpdir, int64_t deadline, bool warmup,
			int *serial)
{
	struct slot slots[DRIVERS] = { 0 };
	int64_t hard = deadline + 45000;
	int left;

	do {
		left = 0;
		for (int i = 0; i < DRIVERS; i++) {
			if (reap(&slots[i]) && harness_now_ms() < deadline &&
			    (!warmup || !slots[i].serial))
				spawn(&slots[i], i, ++*serial, h, tmpdir, deadline, warmup);
			left += slots[i].pid != 0;
		}
		cr_assert(harness_krayd_alive(h), "krayd died during the soak");
		usleep(20000);
	} while (left && harness_now_ms() < hard);
	for (int i = 0; i < DRIVERS; i++) {
		if (slots[i].pid) {
			fprintf(stderr, "soak: driver %d hung past the deadline: killed\n",
				slots[i].serial);
			kill(slots[i].pid, SIGKILL);
			waitpid(slots[i].pid, NULL, 0);
			ADD(failed, 1);
		}
	}
}

static void print_figures(const char *when, const struct figures *f)
{
	fprintf(stderr,
		"%s: rss %ld kB, fds %d (memfds %d), workers %d, objects %llu, store_bytes "
		"%llu, pinned %llu, spilled %llu, spill files %d, actors %llu, job records %llu, "
		"dead actors %llu",
		when, f->rss_kb, f->fds, f->memfds, f->workers, (unsigned long long)f->st.objects,
		(unsigned long long)f->st.store_bytes, (unsigned long long)f->st.objects_pinned,
		(unsigned long long)f->st.objects_spilled, f->spill_files,
		(unsigned long long)f->st.actors_alive, (unsigned long long)f->g.jobs,
		(unsigned long long)f->g.actors_dead);
}

/*
 * The soak.  RSS allowance: krayd's heap after the soak may hold up to 16 MiB more than
 * after the warm-up without leaking: glibc keeps freed memory in its arenas and bins (and
 * raises its mmap threshold after large frees, so that later large buffers come from the
 * heap and stay), and connection buffers grow to the largest frame they carried (up to 16
 * MiB for a GET reply of 253 inline objects) before their connection is freed.  A leak of
 * anything per task, object, connection or actor would exceed that over a soak of this
 * many operations.  Descriptors: the pool keeps up to 64 pre-faulted memfds whatever the
 * load, so memfds are checked against that bound and every other descriptor against the
 * start.
 */
Test(soak, mixed_load)
{
	const int seconds = soak_seconds();
	const char *extra[] = { "--store-size", STORE_SIZE, "--pool-size", POOL_SIZE, NULL };
	struct harness h;
	struct figures start, end;
	char tmpdir[128];
	uint64_t total = 0;
	int serial = 0, rc;
	kray *k;

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(sh, MAP_FAILED, "mmap: %s", strerror(errno));
	harness_tmpdir(tmpdir, sizeof(tmpdir));
	rc = harness_start_krayd_opts(&h, NUM_CPUS, extra);
	cr_assert_eq(rc, 0, "harness_start_krayd: %d", rc);
	k = harness_connect(h.sock);

	/* warm-up: one round of drivers that end cleanly, then the baseline */
	run_drivers(&h, tmpdir, harness_now_ms() + 4000, true, &serial);
	cr_assert_eq(sh->failed, 0, "a warm-up driver failed: %s", sh->fail);
	start = settle(&h, k, false);
	print_figures("soak start", &start);
	fprintf(stderr, "\n");
	cr_assert(!start.st.objects && !start.st.actors_alive,
		  "the warm-up left objects (%llu) or actors (%llu)",
		  (unsigned long long)start.st.objects, (unsigned long long)start.st.actors_alive);

	run_drivers(&h, tmpdir, harness_now_ms() + (int64_t)seconds * 1000, false, &serial);
	cr_assert(harness_krayd_alive(&h), "krayd died during the soak");
	end = settle(&h, k, true);

	for (int i = 0; i < NOPS; i++)
		total += sh->ops[i];
	fprintf(stderr,
		"soak: %d s, %llu drivers (%llu clean, %llu SIGKILLed, %llu _exit), %llu "
		"operations, %llu ENOSPC, %llu STORE_FULL; start rss %ld kB fds %d (memfds %d) "
		"workers %d; end rss %ld kB fds %d (memfds %d) workers %d objects %llu "
		"store_bytes %llu pinned %llu spilled %llu spill_files %d actors %llu; "
		"tasks %llu, workers started %llu, died %llu, spilled %llu MiB, restored %llu "
		"MiB\n",
		seconds, (unsigned long long)sh->started, (unsigned long long)sh->clean,
		(unsigned long long)sh->killed, (unsigned long long)sh->exited,
		(unsigned long long)total, (unsigned long long)sh->enospc,
		(unsigned long long)sh->store_full, start.rss_kb, start.fds, start.memfds,
		start.workers, end.rss_kb, end.fds, end.memfds, end.workers,
		(unsigned long long)end.st.objects, (unsigned long long)end.st.store_bytes,
		(unsigned long long)end.st.objects_pinned,
		(unsigned long long)end.st.objects_spilled, end.spill_files,
		(unsigned long long)end.st.actors_alive, (unsigned long long)end.st.tasks_finished,
		(unsigned long long)end.st.workers_started, (unsigned long long)end.st.workers_died,
		(unsigned long long)(end.st.spilled_total >> 20),
		(unsigned long long)(end.st.restored_total >> 20));
	fprintf(stderr, "soak: operations:");
	for (int i = 0; i < NOPS; i++)
		fprintf(stderr, " %s %llu", op_names[i], (unsigned long long)sh->ops[i]);
	fprintf(stderr, "\n");

	cr_assert_eq(sh->failed, 0, "%llu drivers failed; the first: %s",
		     (unsigned long long)sh->failed, sh->fail);
	cr_assert_gt(sh->killed + sh->exited, 0, "no driver exited abruptly");
	cr_assert_eq(end.st.objects, 0, "objects %llu", (unsigned long long)end.st.objects);
	cr_assert_eq(end.st.store_bytes, 0, "store_bytes %llu",
		     (unsigned long long)end.st.store_bytes);
	cr_assert_eq(end.st.objects_pinned, 0, "objects_pinned %llu",
		     (unsigned long long)end.st.objects_pinned);
	cr_assert_eq(end.st.objects_spilled, 0, "objects_spilled %llu",
		     (unsigned long long)end.st.objects_spilled);
	cr_assert_eq(end.spill_files, 0, "%d spill files left", end.spill_files);
	cr_assert_eq(end.st.actors_alive, 0, "actors_alive %llu",
		     (unsigned long long)end.st.actors_alive);
	cr_assert_eq(end.st.actors_pending, 0, "actors_pending %llu",
		     (unsigned long long)end.st.actors_pending);
	cr_assert_leq(end.workers, NUM_CPUS,
		      "%d worker processes left, more than the prestarted pool of %d", end.workers,
		      NUM_CPUS);
	/* Records of drivers and actors that came and went do not pile up. */
	cr_assert_eq(end.g.jobs, 1, "job records left: %llu (only the test's own driver's)",
		     (unsigned long long)end.g.jobs);
	cr_assert_leq(end.g.actors_dead, 1000, "dead actors' records: %llu (dead-actors-kept)",
		      (unsigned long long)end.g.actors_dead);
	/* One socket per worker, two with the BPF fast path (krayd keeps its end of the
	 * worker's fast connection, docs/fastpath.md): a slow (sanitized) pool may still have
	 * been connecting when the baseline was taken, so count workers that joined since. */
	int joined = end.workers > start.workers ? end.workers - start.workers : 0;
	char fast_map[64];

	snprintf(fast_map, sizeof(fast_map), "/sys/fs/bpf/kray/%08llx/fast_workers",
		 (unsigned long long)end.st.node);
	if (!access(fast_map, F_OK))
		joined *= 2;
	cr_assert_leq(end.fds - end.memfds, start.fds - start.memfds + joined + FD_MARGIN,
		      "descriptors other than memfds: %d at the start (%d workers), %d at the "
		      "end (%d workers)",
		      start.fds - start.memfds, start.workers, end.fds - end.memfds, end.workers);
	cr_assert_leq(end.memfds, POOL_MAX, "%d memfds with no object left (the pool keeps %d)",
		      end.memfds, POOL_MAX);
	if (sanitized(h.pid))
		fprintf(stderr, "soak: RSS not checked: krayd runs under a sanitizer\n");
	else
		cr_assert_leq(end.rss_kb, start.rss_kb + RSS_MARGIN_KB,
			      "krayd's RSS grew from %ld kB to %ld kB", start.rss_kb, end.rss_kb);

	/* still serving */
	for (int i = 0; i < 4; i++) {
		kray_value a = KRAY_V_INT(i + 7);

		harness_expect_int(k, "square", &a, 1, (i + 7) * (i + 7));
	}
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	/* A clean exit: also what says that a sanitizer found nothing at exit (make
	 * test-asan sets exitcode=66 for LeakSanitizer's and AddressSanitizer's reports). */
	rc = harness_stop_krayd(&h);
	cr_assert(rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0,
		  "krayd did not exit cleanly at SIGTERM: %s %d",
		  rc == -1	  ? "status" :
		  WIFSIGNALED(rc) ? "signal" :
				    "exit code",
		  rc == -1	  ? -1 :
		  WIFSIGNALED(rc) ? WTERMSIG(rc) :
				    WEXITSTATUS(rc));
	munmap(sh, sizeof(*sh));
}

/*
 * The test's timeout is KRAY_SOAK_SECONDS + 60 s, known only at run time: Criterion reads
 * it from the test's extra data when it starts the test, so it is set here, before main.
 */
__attribute__((constructor)) static void soak_set_timeout(void)
{
	CR_IDENTIFIER_(soak, mixed_load, extra).timeout = soak_seconds() + 60;
}

/* ---- what the soak found, one by one ------------------------------------------------- */

/*
 * An object that contains refs (kray_put_refs) passed to a task: the task gets the
 * object's value.  (The soak found such a task never ran: krayd sent the contained ids in
 * the EXEC, which the worker's decoder refused, and the EXEC was dropped unanswered.)
 */
Test(soak, container_argument, .timeout = 60)
{
	struct harness h;
	kray_value x = KRAY_V_INT(5), tag = KRAY_V_INT(6), v = { 0 };
	kray_ref in, c, t;
	kray *k;
	int rc;

	rc = harness_start_krayd(&h, 2);
	cr_assert_eq(rc, 0, "harness_start_krayd: %d", rc);
	k = harness_connect(h.sock);
	cr_assert_eq(kray_put(k, &x, &in), 0, "put: %s", kray_errmsg(k));
	cr_assert_eq(kray_put_refs(k, &tag, &in, 1, &c), 0, "put_refs: %s", kray_errmsg(k));
	kray_value arg = KRAY_V_REF(c);
	t = harness_call1(k, "identity", &arg, 1);
	rc = harness_get1(k, t, 10000, &v);
	cr_assert_neq(rc, -ETIMEDOUT,
		      "a task whose argument contains refs did not finish in "
		      "10 s");
	cr_assert_eq(rc, 0, "identity(container): %d %s", rc, kray_errmsg(k));
	cr_assert(v.type == KRAY_INT64 && v.i == 6, "identity(container): type %d %lld", v.type,
		  (long long)v.i);
	kray_value_clear(&v);
	kray_release(k, &t, 1);
	kray_release(k, &c, 1);
	kray_release(k, &in, 1);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
}

/*
 * kray_kill(no_restart) leaves the actor "dead for good" (kray.h) when it returns, and a
 * dead actor's name is free: a lookup right after the kill finds nothing, and a new actor
 * may take the name.  (The soak found krayd marked the actor dead only when it reaped the
 * process, so for that moment the name still led to the dying actor.)
 */
Test(soak, kill_frees_name_at_once, .timeout = 60)
{
	struct harness h;
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref a, f, r;
	kray_value v = { 0 };
	kray *k;
	int rc;

	rc = harness_start_krayd(&h, 2);
	cr_assert_eq(rc, 0, "harness_start_krayd: %d", rc);
	k = harness_connect(h.sock);
	o.name = "killed";
	for (int i = 0; i < 10; i++) {
		rc = kray_actor_create(k, "Counter", NULL, 0, &o, &a);
		cr_assert_eq(rc, 0, "round %d: create of a name whose actor was killed: %d %s", i,
			     rc, kray_errmsg(k));
		cr_assert_eq(kray_actor_call(k, a, "read", NULL, 0, NULL, &r), 0, "call");
		rc = harness_get1(k, r, 30000, &v);
		cr_assert_eq(rc, 0, "read: %d %s", rc, kray_errmsg(k));
		kray_value_clear(&v);
		kray_release(k, &r, 1);
		cr_assert_eq(kray_kill(k, a, 1), 0, "kray_kill: %s", kray_errmsg(k));
		rc = kray_get_actor(k, "killed", NULL, &f);
		cr_assert_eq(rc, -ENOENT,
			     "round %d: kray_get_actor right after kray_kill: %d, "
			     "want -ENOENT",
			     i, rc);
		kray_release(k, &a, 1);
	}
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
}

/*
 * An actor whose last handle goes (or whose creator exits) before its process has
 * connected: the process must still go.  (The soak found such processes stayed, idle and
 * outside the pool, until krayd exited; enough of them reach max-workers, and then no
 * task runs at all.)
 */
Test(soak, actor_dropped_before_start, .timeout = 60)
{
	struct harness h;
	struct kray_stats st;
	int64_t deadline;
	int rc, workers;
	kray *k;

	rc = harness_start_krayd(&h, 2);
	cr_assert_eq(rc, 0, "harness_start_krayd: %d", rc);
	k = harness_connect(h.sock);
	for (int i = 0; i < 4; i++) {
		kray_ref a;

		rc = kray_actor_create(k, "Counter", NULL, 0, NULL, &a);
		cr_assert_eq(rc, 0, "create: %d %s", rc, kray_errmsg(k));
		kray_release(k, &a, 1);
	}
	kray_flush(k);
	deadline = harness_now_ms() + 10000;
	do {
		usleep(50000);
		st = harness_status(k);
		workers = children_of(h.pid);
	} while ((workers > 2 || st.workers > 2) && harness_now_ms() < deadline);
	cr_assert_eq(st.actors_alive + st.actors_pending, 0, "actors alive or pending");
	cr_assert(workers <= 2 && st.workers <= 2,
		  "10 s after 4 actors were dropped before they started: %d worker processes "
		  "(krayd counts %llu), the pool is 2",
		  workers, (unsigned long long)st.workers);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
}
