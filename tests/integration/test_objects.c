// SPDX-License-Identifier: Apache-2.0
/*
 * End-to-end tests of the object store (issue 3) against real krayds: round trips at the
 * inline boundary and at 100 MiB, by put/get and through tasks; zero-copy read-only views
 * (faults on write, one mapping per object, alive until cleared); the reader's own checks
 * of seals and sizes, against a fake krayd that sends bad memfds by SCM_RIGHTS; store
 * usage returning to zero; nested refs; spilling to disk at several times the store's
 * capacity; a store full of pinned objects; a driver killed while holding views; refs the
 * caller does not hold; a full spill disk; and kray_wait.
 *
 * The byte patterns come from tests/fixtures/pattern.h, shared with the remote functions
 * make_pattern and inspect_bytes in tests/fixtures/testfns.c.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../../common/wire.h"
#include "../fixtures/maps.h"
#include "../fixtures/pattern.h"
#include "harness.h"

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

#define INLINE (64u << 10) /* krayd's default inline-max */
#define MiB (1ull << 20)

TestSuite(objects, .fini = harness_cleanup, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------- */

#define ST_FMT                                                                     \
	"objects %llu, object_bytes %llu, store_bytes %llu, objects_pinned %llu, " \
	"objects_spilled %llu, bytes_spilled %llu"
#define ST_ARGS(s)                                                                           \
	(unsigned long long)(s).objects, (unsigned long long)(s).object_bytes,               \
		(unsigned long long)(s).store_bytes, (unsigned long long)(s).objects_pinned, \
		(unsigned long long)(s).objects_spilled, (unsigned long long)(s).bytes_spilled

static int all_freed(const struct kray_stats *s)
{
	return !s->objects && !s->object_bytes && !s->store_bytes && !s->objects_pinned &&
	       !s->objects_spilled && !s->bytes_spilled;
}

static int unpinned(const struct kray_stats *s)
{
	return !s->objects_pinned;
}

/* Polls kray_status until cond holds or ms pass; returns the last stats. */
static struct kray_stats poll_until(kray *k, int (*cond)(const struct kray_stats *), int ms)
{
	int64_t deadline = harness_now_ms() + ms;
	struct kray_stats st;

	for (;;) {
		st = harness_status(k);
		if (cond(&st) || harness_now_ms() >= deadline)
			return st;
		usleep(20000);
	}
}

static void expect_all_freed(kray *k, const char *when)
{
	struct kray_stats st = poll_until(k, all_freed, 15000);

	cr_assert(all_freed(&st), "%s, 15 s later the store still holds: " ST_FMT, when,
		  ST_ARGS(st));
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	cr_assert_not_null(d, "/proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own descriptor */
}

/* Asserts that v is BYTES holding exactly pattern seed of len bytes. */
static void expect_pattern(const kray_value *v, size_t len, uint64_t seed, const char *what)
{
	int64_t bad;

	cr_assert_eq(v->type, KRAY_BYTES, "%s: type %d, want BYTES (%s)", what, v->type,
		     v->type == KRAY_ERROR ? (const char *)v->data : "");
	cr_assert_eq(v->len, len, "%s: len %zu, want %zu", what, v->len, len);
	bad = pattern_check(v->data, 0, len, seed);
	cr_assert_eq(bad, -1, "%s: byte %lld of %zu differs from pattern %llu", what,
		     (long long)bad, len, (unsigned long long)seed);
}

/* The same, checking the first, middle and last 4 KiB and 4 pages picked by salt. */
static void expect_pattern_sampled(const kray_value *v, size_t len, uint64_t seed, uint64_t salt,
				   const char *what)
{
	const uint8_t *p = v->data;
	size_t slice = len < 4096 ? len : 4096;
	uint64_t offs[7] = { 0, len / 2 - len / 2 % 4096, len - slice };
	int64_t bad;

	cr_assert_eq(v->type, KRAY_BYTES, "%s: type %d, want BYTES (%s)", what, v->type,
		     v->type == KRAY_ERROR ? (const char *)v->data : "");
	cr_assert_eq(v->len, len, "%s: len %zu, want %zu", what, v->len, len);
	for (int i = 3; i < 7; i++)
		offs[i] = len > slice ? pattern_word(salt, (uint64_t)i) % (len - slice) : 0;
	for (int i = 0; i < 7; i++) {
		if (offs[i] + slice > len)
			offs[i] = len - slice;
		bad = pattern_check(p + offs[i], offs[i], slice, seed);
		cr_assert_eq(bad, -1, "%s: byte %lld of %zu differs from pattern %llu", what,
			     (long long)bad, len, (unsigned long long)seed);
	}
}

/* kray_put of len bytes of pattern seed.  Returns the ref; *ret_sum gets the checksum. */
static kray_ref put_pattern(kray *k, size_t len, uint64_t seed, uint64_t *ret_sum)
{
	uint8_t *buf = malloc(len ? len : 1);
	kray_value in = KRAY_V_BYTES(buf, len);
	kray_ref r;
	int rc;

	cr_assert_not_null(buf, "malloc(%zu)", len);
	pattern_fill(buf, 0, len, seed);
	if (ret_sum)
		*ret_sum = checksum64(buf, len);
	rc = kray_put(k, &in, &r);
	cr_assert_eq(rc, 0, "kray_put of %zu bytes: %d %s", len, rc, kray_errmsg(k));
	free(buf);
	return r;
}

/* kray_create + fill + kray_seal of len bytes of pattern seed; returns rc of the create. */
static int create_pattern(kray *k, size_t len, uint64_t seed, kray_ref *ret)
{
	void *p;
	int rc = kray_create(k, len, ret, &p);

	if (rc)
		return rc;
	pattern_fill(p, 0, len, seed);
	rc = kray_seal(k, ret);
	cr_assert_eq(rc, 0, "kray_seal of %zu bytes: %d %s", len, rc, kray_errmsg(k));
	return 0;
}

static kray_value get_ok(kray *k, kray_ref r, const char *what)
{
	kray_value v = { 0 };
	int rc = harness_get1(k, r, 30000, &v);

	cr_assert_eq(rc, 0, "%s: kray_get: %d %s", what, rc, kray_errmsg(k));
	return v;
}

static void expect_error(kray *k, int rc, const kray_value *v, enum kray_errkind kind,
			 const char *needle, const char *what)
{
	cr_assert_eq(rc, -EREMOTEIO, "%s: kray_get returned %d, want -EREMOTEIO (type %d%s%s)",
		     what, rc, v->type, rc ? ": " : "", rc ? kray_errmsg(k) : "");
	cr_assert_eq(v->type, KRAY_ERROR, "%s: value type %d, want KRAY_ERROR", what, v->type);
	cr_assert(v->data && strlen(v->data) == v->len, "%s: error value without a message", what);
	if (kind != KRAY_ERR_NONE)
		cr_assert_eq(v->err, kind, "%s: error kind %s, want %s: %s", what,
			     harness_errkind(v->err), harness_errkind(kind), (const char *)v->data);
	if (needle)
		cr_assert(strstr(v->data, needle), "%s: message \"%s\" lacks \"%s\"", what,
			  (const char *)v->data, needle);
}

/* A child that writes to p: returns its wait status. */
static int write_in_child(const void *p)
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGSEGV, SIG_DFL);
		((volatile uint8_t *)p)[0] ^= 0x5a;
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid, "waitpid");
	return status;
}

static const char *status_str(int status)
{
	static char buf[64];

	if (WIFSIGNALED(status))
		snprintf(buf, sizeof(buf), "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, sizeof(buf), "exit code %d", WEXITSTATUS(status));
	return buf;
}

static int start_krayd(struct harness *h, const char *const *flags)
{
	int rc = harness_start_krayd_opts(h, 2, flags);

	cr_assert_eq(rc, 0, "harness_start_krayd_opts: %d", rc);
	return rc;
}

/* ---- 1. round trips ------------------------------------------------------------------ */

static const size_t sizes[] = { 0, 1, INLINE - 1, INLINE, INLINE + 1, 100 * MiB };

/* put/get at the inline boundary and at 100 MiB: the bytes come back; large ones as a
 * read-only view. */
Test(objects, put_get_sizes, .timeout = 60)
{
	kray *k = harness_embedded(2);
	char what[64];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		kray_ref r = put_pattern(k, len, 100 + i, NULL);
		kray_value v;

		snprintf(what, sizeof(what), "put/get of %zu bytes", len);
		v = get_ok(k, r, what);
		expect_pattern(&v, len, 100 + i, what);
		if (len > INLINE)
			cr_assert_eq(maps_read_only(v.data), 1,
				     "%s: not a read-only mapping (a copy?)", what);
		kray_value_clear(&v);
		cr_assert_eq(v.type, KRAY_NIL, "kray_value_clear did not reset the value");
		kray_release(k, &r, 1);
	}
	expect_all_freed(k, "after all round trips were released");
	harness_shutdown(k);
}

/* kray_put_iov of pattern seed's len bytes cut into n pieces (every third one empty, the
 * rest alike), as one object; the checks of what comes back are the caller's. */
static kray_ref put_pieces(kray *k, const uint8_t *buf, size_t len, size_t n)
{
	struct iovec *iov = calloc(n, sizeof(*iov));
	size_t at = 0, full = n - n / 3, each = len / full;
	kray_ref r;
	int rc;

	cr_assert_not_null(iov);
	for (size_t i = 0, f = 0; i < n; i++) {
		if (i % 3 == 2)
			continue; /* empty */
		iov[i].iov_base = (void *)(buf + at);
		iov[i].iov_len = ++f == full ? len - at : each;
		at += iov[i].iov_len;
	}
	rc = kray_put_iov(k, iov, n, &r);
	cr_assert_eq(rc, 0, "kray_put_iov of %zu bytes in %zu pieces: %d %s", len, n, rc,
		     kray_errmsg(k));
	free(iov);
	return r;
}

/* kray_put_iov's bytes come back whole whatever memory krayd gives the writer: memory of
 * its pool (written with pwritev), reused memory, a fresh memfd with huge pages (mapped)
 * or without (written), at the inline limit and at huge-page edges, in one piece or in
 * more pieces than one pwritev() takes. */
Test(objects, put_iov_in_every_kind_of_memory, .timeout = 120)
{
	static const char *const modes[][7] = {
		{ NULL },
		{ "--thp", "off", NULL },
		{ "--pool-size", "0", NULL },
		{ "--pool-size", "0", "--thp", "off", NULL },
		{ "--pool-reuse", "off", NULL },
		/* hugetlb memfds refuse write(2): mapped after all (normal pages where vm.nr_hugepages
		 * has none for them) */
		{ "--hugepages", "1", "--pool-size", "0", "--thp", "off", NULL },
	};
	static const size_t lens[] = { INLINE, INLINE + 1, 2 * MiB - 1, 2 * MiB + 1, 24 * MiB };
	static const size_t pieces[] = { 1, 3, 200 };
	uint8_t *buf = malloc(24 * MiB);
	char what[128];

	cr_assert_not_null(buf);
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct harness h;
		kray *k;

		start_krayd(&h, modes[m]);
		k = harness_connect(h.sock);
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
			for (size_t j = 0; j < sizeof(pieces) / sizeof(pieces[0]); j++)
				/* Twice: the second put of a size gets the first's memory back. */
				for (int again = 0; again < 2; again++) {
					uint64_t seed = 1000 * m + 100 * i + 10 * j + again;
					size_t len = lens[i];
					kray_ref r;
					kray_value v;

					pattern_fill(buf, 0, len, seed);
					r = put_pieces(k, buf, len, pieces[j]);
					snprintf(what, sizeof(what),
						 "%s %s: %zu bytes in %zu pieces",
						 modes[m][0] ? modes[m][0] : "default",
						 modes[m][0] ? modes[m][1] : "", len, pieces[j]);
					v = get_ok(k, r, what);
					expect_pattern(&v, len, seed, what);
					kray_value_clear(&v);
					kray_release(k, &r, 1);
				}
		expect_all_freed(k, "after the puts were released");
		harness_shutdown(k);
		harness_stop_krayd(&h);
	}
	free(buf);
}

/* Bad pieces are refused, with nothing stored. */
Test(objects, put_iov_bad_input, .timeout = 60)
{
	kray *k = harness_embedded(1);
	struct iovec bad[2] = { { "ab", 2 }, { NULL, 5 } };
	struct iovec huge[2] = { { "a", 1 }, { "b", SIZE_MAX } };
	kray_ref r;
	kray_value v;

	cr_assert_eq(kray_put_iov(k, bad, 2, &r), -EINVAL);
	cr_assert_eq(kray_put_iov(k, NULL, 1, &r), -EINVAL);
	cr_assert_eq(kray_put_iov(k, huge, 2, &r), -EFBIG);
	/* No pieces: the empty value. */
	cr_assert_eq(kray_put_iov(k, NULL, 0, &r), 0, "%s", kray_errmsg(k));
	v = get_ok(k, r, "the empty put");
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, 0);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	expect_all_freed(k, "after the bad puts");
	harness_shutdown(k);
}

/* The example a user would copy: examples/objects.c. */
Test(objects, objects_example, .timeout = 60)
{
	char out[4096];

	harness_run_example(NULL, "objects 8", out, sizeof(out));
	cr_assert(strstr(out, "8 MiB in 2 pieces") && strstr(out, "8 MiB written in place"), "%s",
		  out);
}

/* The same sizes through tasks: a put object as an argument (checksummed by the worker,
 * which sees a read-only view when it is large), a result made by a worker, and that
 * result as the argument of another task. */
Test(objects, task_sizes, .timeout = 90)
{
	kray *k = harness_embedded(2);
	struct kray_call_opts three = KRAY_CALL_OPTS_DEFAULT;
	char what[96];
	int rc;

	three.num_returns = 3;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		uint64_t sum, seed = 200 + i;
		kray_ref p = put_pattern(k, len, seed, &sum), ins[3], made;
		kray_value a = KRAY_V_REF(p), vals[3], v;

		/* argument by ref */
		snprintf(what, sizeof(what), "inspect_bytes(put of %zu bytes)", len);
		rc = kray_call(k, "inspect_bytes", &a, 1, &three, ins);
		cr_assert_eq(rc, 0, "%s: kray_call: %d %s", what, rc, kray_errmsg(k));
		rc = kray_get(k, ins, 3, 30000, vals);
		cr_assert_eq(rc, 0, "%s: %d %s", what, rc, kray_errmsg(k));
		cr_assert_eq(vals[2].i, (int64_t)len, "%s: the worker saw %lld bytes", what,
			     (long long)vals[2].i);
		cr_assert_eq((uint64_t)vals[0].i, sum, "%s: the worker's checksum differs", what);
		if (len > INLINE)
			cr_assert_eq(vals[1].i, 1,
				     "%s: the worker's argument is not a read-only view (%lld)",
				     what, (long long)vals[1].i);
		for (int j = 0; j < 3; j++)
			kray_value_clear(&vals[j]);
		kray_release(k, ins, 3);

		/* result returned by a function */
		snprintf(what, sizeof(what), "make_pattern(%zu)", len);
		kray_value m[2] = { KRAY_V_INT((int64_t)len), KRAY_V_INT((int64_t)seed + 1000) };
		made = harness_call1(k, "make_pattern", m, 2);
		v = get_ok(k, made, what);
		expect_pattern(&v, len, seed + 1000, what);
		if (len > INLINE)
			cr_assert_eq(maps_read_only(v.data), 1,
				     "%s: the result is not a read-only view", what);
		sum = checksum64(v.data, v.len);
		kray_value_clear(&v);

		/* and that result as another task's argument */
		snprintf(what, sizeof(what), "inspect_bytes(make_pattern(%zu))", len);
		a = KRAY_V_REF(made);
		rc = kray_call(k, "inspect_bytes", &a, 1, &three, ins);
		cr_assert_eq(rc, 0, "%s: kray_call: %d %s", what, rc, kray_errmsg(k));
		rc = kray_get(k, ins, 3, 30000, vals);
		cr_assert_eq(rc, 0, "%s: %d %s", what, rc, kray_errmsg(k));
		cr_assert(vals[2].i == (int64_t)len && (uint64_t)vals[0].i == sum,
			  "%s: the worker saw %lld bytes, checksum %s", what, (long long)vals[2].i,
			  (uint64_t)vals[0].i == sum ? "equal" : "differs");
		for (int j = 0; j < 3; j++)
			kray_value_clear(&vals[j]);
		kray_release(k, ins, 3);
		kray_release(k, &made, 1);
		kray_release(k, &p, 1);
	}
	expect_all_freed(k, "after every task's objects were released");
	harness_shutdown(k);
}

/* The client follows the inline limit krayd announces (here 1000 bytes), for puts,
 * creates and results; objects at the limit stay in krayd's memory, one byte more goes to
 * the store. */
Test(objects, inline_limit_from_krayd, .timeout = 60)
{
	static const char *const flags[] = { "--inline-max", "1000", NULL };
	struct harness h;
	struct kray_stats st;
	kray_value v;
	kray_ref r;
	char what[64];
	kray *k;

	start_krayd(&h, flags);
	k = harness_connect(h.sock);
	for (size_t len = 999; len <= 1001; len++) {
		for (int how = 0; how < 3; how++) {
			snprintf(what, sizeof(what), "%s of %zu bytes (inline-max 1000)",
				 how == 0 ? "put" :
				 how == 1 ? "create" :
					    "make_pattern",
				 len);
			if (how == 0) {
				r = put_pattern(k, len, len, NULL);
			} else if (how == 1) {
				cr_assert_eq(create_pattern(k, len, len, &r), 0, "%s: %s", what,
					     kray_errmsg(k));
			} else {
				kray_value m[2] = { KRAY_V_INT((int64_t)len),
						    KRAY_V_INT((int64_t)len) };
				r = harness_call1(k, "make_pattern", m, 2);
			}
			v = get_ok(k, r, what);
			expect_pattern(&v, len, len, what);
			st = harness_status(k);
			if (len > 1000) {
				cr_assert_eq(maps_read_only(v.data), 1, "%s: not a view", what);
				cr_assert_eq(st.store_bytes, len, "%s: store_bytes %llu", what,
					     (unsigned long long)st.store_bytes);
			} else {
				cr_assert_eq(st.store_bytes, 0, "%s: store_bytes %llu", what,
					     (unsigned long long)st.store_bytes);
				cr_assert_geq(st.object_bytes, len, "%s: object_bytes %llu", what,
					      (unsigned long long)st.object_bytes);
			}
			kray_value_clear(&v);
			kray_release(k, &r, 1);
			expect_all_freed(k, what);
		}
	}
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- 2. zero-copy views -------------------------------------------------------------- */

Test(objects, zero_copy_views, .timeout = 60)
{
	enum { LEN = 8 << 20, SEED = 7 };
	kray *k = harness_embedded(2);
	kray_ref r = put_pattern(k, LEN, SEED, NULL), c, two[2];
	kray_value v1, v2, both[2];
	struct kray_stats st;
	uint8_t *w;
	int status, rc;

	v1 = get_ok(k, r, "first get");
	expect_pattern(&v1, LEN, SEED, "first get");
	cr_assert_eq(maps_read_only(v1.data), 1, "a large value is not mapped read-only");

	/* writing faults, and the view cannot be made writable either */
	status = write_in_child((const uint8_t *)v1.data + LEN / 2);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		  "writing to a view did not die of SIGSEGV: %s", status_str(status));
	fflush(NULL);
	pid_t pid = fork();
	cr_assert_geq(pid, 0, "fork");
	if (pid == 0) {
		void *page = (void *)((uintptr_t)v1.data & ~(uintptr_t)4095);

		if (mprotect(page, 4096, PROT_READ | PROT_WRITE))
			_exit(0);
		((volatile uint8_t *)page)[0] ^= 1;
		_exit(1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid, "waitpid");
	cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) == 0,
		  "mprotect(PROT_WRITE) of a view succeeded and a write went through: the "
		  "memfd is not sealed against writes");

	/* one mapping per object, however many values use it */
	v2 = get_ok(k, r, "second get");
	cr_assert_eq(v2.data, v1.data, "a second get mapped the object again (%p vs %p)", v2.data,
		     v1.data);
	two[0] = two[1] = r;
	rc = kray_get(k, two, 2, 30000, both);
	cr_assert_eq(rc, 0, "get [r, r]: %d %s", rc, kray_errmsg(k));
	cr_assert(both[0].data == v1.data && both[1].data == v1.data,
		  "get [r, r] gave other mappings");
	st = harness_status(k);
	cr_assert_eq(st.objects_pinned, 1, "objects_pinned %llu with one object viewed 4 times",
		     (unsigned long long)st.objects_pinned);
	kray_value_clear(&both[0]);
	kray_value_clear(&both[1]);
	kray_value_clear(&v2);
	expect_pattern(&v1, LEN, SEED, "the first view after the others were cleared");

	/* the view outlives the ref */
	rc = kray_release(k, &r, 1);
	cr_assert_eq(rc, 0, "kray_release: %d %s", rc, kray_errmsg(k));
	st = harness_status(k); /* the release has been handled */
	cr_assert(st.objects == 1 && st.store_bytes == LEN && st.objects_pinned == 1,
		  "released but still viewed: " ST_FMT, ST_ARGS(st));
	expect_pattern(&v1, LEN, SEED, "the view after kray_release");
	kray_value_clear(&v1);
	expect_all_freed(k, "after the last view of a released object was cleared");

	/* a created object: the writer's mapping goes away at seal, the reader's is
	 * read-only */
	rc = kray_create(k, LEN, &c, (void **)&w);
	cr_assert_eq(rc, 0, "kray_create: %d %s", rc, kray_errmsg(k));
	pattern_fill(w, 0, LEN, SEED + 1);
	cr_assert_eq(kray_seal(k, &c), 0, "kray_seal: %s", kray_errmsg(k));
	status = write_in_child(w + 4096);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		  "the writer's mapping is still there after kray_seal: %s", status_str(status));
	v1 = get_ok(k, c, "get of a created object");
	expect_pattern(&v1, LEN, SEED + 1, "get of a created object");
	status = write_in_child(v1.data);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV,
		  "writing to the view of a created object: %s", status_str(status));
	kray_value_clear(&v1);
	kray_release(k, &c, 1);
	expect_all_freed(k, "after the created object was released");
	harness_shutdown(k);
}

/* One get of more large objects than one message can carry descriptors for (253). */
Test(objects, get_many_large, .timeout = 60)
{
	enum { N = 600, LEN = INLINE + 4096 };
	kray *k = harness_embedded(2);
	kray_ref *refs = calloc(N, sizeof(*refs));
	kray_value *vals = calloc(N, sizeof(*vals));
	struct kray_stats st;
	char what[64];
	int fds, rc;

	cr_assert(refs && vals, "out of memory");
	for (int i = 0; i < N; i++)
		cr_assert_eq(create_pattern(k, LEN, 900 + (uint64_t)i, &refs[i]), 0,
			     "create %d: %s", i, kray_errmsg(k));
	fds = count_fds();
	rc = kray_get(k, refs, N, 30000, vals);
	cr_assert_eq(rc, 0, "one get of %d large objects: %d %s", N, rc, kray_errmsg(k));
	for (int i = 0; i < N; i++) {
		snprintf(what, sizeof(what), "object %d of %d", i, N);
		expect_pattern(&vals[i], LEN, 900 + (uint64_t)i, what);
	}
	cr_assert_eq(count_fds(), fds, "%d descriptors open while %d views are held, %d before",
		     count_fds(), N, fds);
	st = harness_status(k);
	cr_assert_eq(st.objects_pinned, N, "objects_pinned %llu",
		     (unsigned long long)st.objects_pinned);
	for (int i = 0; i < N; i++)
		kray_value_clear(&vals[i]);
	kray_release(k, refs, N);
	expect_all_freed(k, "after 600 large objects were got and released");
	free(refs);
	free(vals);
	harness_shutdown(k);
}

/* A view stays readable after kray_shutdown() until its value is cleared. */
Test(objects, view_outlives_shutdown, .timeout = 60)
{
	struct harness h;
	kray_value v;
	kray_ref r;
	kray *k, *k2;

	start_krayd(&h, NULL);
	k = harness_connect(h.sock);
	r = put_pattern(k, 4 * MiB, 61, NULL);
	v = get_ok(k, r, "before shutdown");
	harness_shutdown(k);
	expect_pattern(&v, 4 * MiB, 61, "a view after kray_shutdown");
	kray_value_clear(&v);
	k2 = harness_connect(h.sock);
	expect_all_freed(k2, "after the driver shut down and its view was cleared");
	harness_shutdown(k2);
	harness_stop_krayd(&h);
}

/* pool-reuse (docs/objects.md): a freed object whose memory a process still maps is never
 * reused, while objects of its size are put, got byte-exact and freed (their memory reused)
 * around it. */
Test(objects, mapped_memory_is_never_reused, .timeout = 60)
{
	struct harness h;
	kray_value v, w;
	kray_ref r;
	kray *k, *k2;

	start_krayd(&h, NULL);
	k = harness_connect(h.sock);
	r = put_pattern(k, 4 * MiB, 71, NULL);
	v = get_ok(k, r, "the object to keep mapped");
	harness_shutdown(k); /* its refs and pins go: the object is freed, the view stays */
	k2 = harness_connect(h.sock);
	for (int i = 0; i < 8; i++) {
		r = put_pattern(k2, 4 * MiB, 80 + i, NULL);
		w = get_ok(k2, r, "a put beside the mapped one");
		expect_pattern(&w, 4 * MiB, 80 + i, "a put beside the mapped one");
		kray_value_clear(&w);
		kray_release(k2, &r, 1);
		expect_pattern(&v, 4 * MiB, 71, "the freed object a view still maps");
	}
	kray_value_clear(&v);
	expect_all_freed(k2, "after the puts and the view");
	harness_shutdown(k2);
	harness_stop_krayd(&h);
}

/* A ref released by this process cannot be got any more, small or large, whether or not
 * a value still maps it (kray.h: KRAY_ERR_OBJECT_LOST, "never received, or released"). */
Test(objects, get_after_release_refused, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_value v, held;
	kray_ref small, large;
	int rc;

	small = put_pattern(k, 100, 1, NULL);
	v = get_ok(k, small, "small");
	kray_value_clear(&v);
	kray_release(k, &small, 1);
	rc = harness_get1(k, small, 5000, &v);
	expect_error(k, rc, &v, KRAY_ERR_OBJECT_LOST, NULL, "get of a released small object");
	kray_value_clear(&v);

	large = put_pattern(k, 2 * MiB, 2, NULL);
	v = get_ok(k, large, "large");
	kray_value_clear(&v);
	kray_release(k, &large, 1);
	rc = harness_get1(k, large, 5000, &v);
	expect_error(k, rc, &v, KRAY_ERR_OBJECT_LOST, NULL,
		     "get of a released large object (no view left)");
	kray_value_clear(&v);

	large = put_pattern(k, 2 * MiB, 3, NULL);
	held = get_ok(k, large, "large, held");
	kray_release(k, &large, 1);
	harness_status(k);
	rc = harness_get1(k, large, 5000, &v);
	expect_error(k, rc, &v, KRAY_ERR_OBJECT_LOST, NULL,
		     "get of a released large object while an earlier value still maps it");
	kray_value_clear(&v);
	kray_value_clear(&held);
	expect_all_freed(k, "after everything was released");
	harness_shutdown(k);
}

/* ---- 3. the reader checks seals: a fake krayd ---------------------------------------- */

enum fake_mode {
	FK_SEALED, /* a good object: all seals, the announced size */
	FK_UNSEALED, /* no seals at all */
	FK_NO_WRITE_SEAL, /* SHRINK | GROW | SEAL: its writer may still write */
	FK_FUTURE_WRITE, /* FUTURE_WRITE instead of WRITE: an old mapping may still write */
	FK_READ_ONLY, /* no seals, a read-only open: a good object (krayd's pool-reuse) */
	FK_SIZE_BIGGER, /* sealed, but the announced size is twice the real one */
	FK_SIZE_SMALLER, /* sealed, announced size half the real one */
	FK_PIPE, /* not a memfd at all */
	FK_NO_FD, /* an FD value, but no descriptor and flags 0 */
	FK_FD_MISSING, /* flags say 1 descriptor, none is sent */
};

#define FAKE_LEN (1u << 20)
#define FAKE_SEED 77

static int fk_send(int fd, const uint8_t *p, size_t n, int pass_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { (void *)p, n };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t w;

	if (pass_fd >= 0) {
		struct cmsghdr *c;

		memset(&u, 0, sizeof(u));
		msg.msg_control = u.buf;
		msg.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	w = sendmsg(fd, &msg, MSG_NOSIGNAL);
	if (w < 0)
		return -1;
	while ((size_t)w < n) {
		ssize_t x = send(fd, p + w, n - (size_t)w, MSG_NOSIGNAL);

		if (x <= 0)
			return -1;
		w += x;
	}
	return 0;
}

static int fk_memfd(int seals, size_t len)
{
	int fd = memfd_create("fake-object", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	void *p;

	if (fd < 0 || ftruncate(fd, (off_t)len))
		return -1;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -1;
	pattern_fill(p, 0, len, FAKE_SEED);
	munmap(p, len);
	if (seals && fcntl(fd, F_ADD_SEALS, seals))
		return -1;
	return fd;
}

/* Answers one GET (for one oid) as mode says.  Returns 0 or an exit code. */
static int fk_get_reply(int c, const struct kray_frame_hdr *h, const uint8_t *body,
			enum fake_mode mode)
{
	struct kray_msg_get_reply rep = { .status = 0, .n = 1 };
	struct kbuf b = { 0 };
	struct wire_get g;
	struct kray_oid id;
	uint64_t announce = FAKE_LEN;
	uint32_t flags = 1;
	int fd = -1, pfd[2], r;
	size_t off;

	if (wire_dec_get(body, h->len, &g) || g.ids.n != 1)
		return 21;
	memcpy(&id, g.ids.oids, sizeof(id));
	switch (mode) {
	case FK_SEALED:
		fd = fk_memfd(ALL_SEALS, FAKE_LEN);
		break;
	case FK_UNSEALED:
		fd = fk_memfd(0, FAKE_LEN);
		break;
	case FK_NO_WRITE_SEAL:
		fd = fk_memfd(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL, FAKE_LEN);
		break;
	case FK_FUTURE_WRITE:
		fd = fk_memfd(F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE | F_SEAL_SEAL,
			      FAKE_LEN);
		break;
	case FK_READ_ONLY: {
		int rw = fk_memfd(0, FAKE_LEN);
		char path[64];

		snprintf(path, sizeof(path), "/proc/self/fd/%d", rw);
		fd = rw >= 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		if (rw >= 0)
			close(rw);
		break;
	}
	case FK_SIZE_BIGGER:
		fd = fk_memfd(ALL_SEALS, FAKE_LEN);
		announce = 2 * FAKE_LEN;
		break;
	case FK_SIZE_SMALLER:
		fd = fk_memfd(ALL_SEALS, FAKE_LEN);
		announce = FAKE_LEN / 2;
		break;
	case FK_PIPE:
		if (pipe2(pfd, O_CLOEXEC))
			return 22;
		close(pfd[1]);
		fd = pfd[0];
		break;
	case FK_NO_FD:
		flags = 0;
		break;
	case FK_FD_MISSING:
		break;
	}
	if (fd < 0 && mode != FK_NO_FD && mode != FK_FD_MISSING)
		return 23;
	off = wire_begin(&b, KRAY_MSG_GET_REPLY, h->req);
	kbuf_put(&b, &rep, sizeof(rep));
	wire_put_value(&b, KRAY_WT_FD, 0, announce, &id, sizeof(id));
	wire_end(&b, off);
	memcpy(b.data + off + offsetof(struct kray_frame_hdr, flags), &flags, sizeof(flags));
	r = fk_send(c, b.data, b.len, fd);
	kbuf_free(&b);
	if (fd >= 0)
		close(fd);
	return r ? 24 : 0;
}

/* The fake krayd: serves connections one after another; the i-th GET overall is answered
 * as modes[i] says.  Returns an exit code. */
static int fake_krayd(int lfd, const enum fake_mode *modes, int nmodes)
{
	int next = 0;

	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			return 10;
		for (;;) {
			struct kray_frame_hdr h;
			uint8_t *body;
			size_t off;
			int r;

			if (harness_read_full(c, &h, sizeof(h)) != (ssize_t)sizeof(h))
				break; /* the client went away */
			if (h.magic != KRAY_WIRE_MAGIC || h.len > (1u << 20))
				return 11;
			body = malloc(h.len + 1);
			if (!body || harness_read_full(c, body, h.len) != (ssize_t)h.len)
				return 12;
			if (h.type == KRAY_MSG_HELLO) {
				struct kray_msg_hello_ok ok = {
					.node = 0x600d, .client = 7, .job = 7, .inline_max = INLINE
				};
				struct kbuf b = { 0 };

				off = wire_begin(&b, KRAY_MSG_HELLO_OK, h.req);
				kbuf_put(&b, &ok, sizeof(ok));
				wire_end(&b, off);
				r = fk_send(c, b.data, b.len, -1);
				kbuf_free(&b);
				if (r)
					return 13;
			} else if (h.type == KRAY_MSG_GET) {
				r = fk_get_reply(c, &h, body,
						 next < nmodes ? modes[next] : FK_SEALED);
				next++;
				if (r)
					return r;
			} else if (h.type == KRAY_MSG_STATUS) {
				struct kray_wire_stats st = { .node = 0x600d };
				struct kbuf b = { 0 };

				off = wire_begin(&b, KRAY_MSG_STATUS_REPLY, h.req);
				kbuf_put(&b, &st, sizeof(st));
				wire_end(&b, off);
				r = fk_send(c, b.data, b.len, -1);
				kbuf_free(&b);
				if (r)
					return 14;
			}
			/* UNPIN, RELEASE and the rest need no answer */
			free(body);
		}
		close(c);
	}
}

static kray *fake_connect(const char *sock)
{
	struct kray_config cfg = { .address = sock };
	kray *k = NULL;
	int rc = kray_init(&k, &cfg);

	cr_assert_eq(rc, 0, "kray_init to the fake krayd: %d %s", rc, kray_init_errmsg());
	return k;
}

Test(objects, reader_checks_seals, .timeout = 60)
{
	static const struct {
		enum fake_mode mode;
		const char *what, *needle;
	} cases[] = {
		{ FK_SEALED, "a sealed memfd of the announced size", NULL },
		{ FK_UNSEALED, "an unsealed memfd", "seal" },
		{ FK_NO_WRITE_SEAL, "a memfd without F_SEAL_WRITE", "seal" },
		{ FK_FUTURE_WRITE, "a memfd with F_SEAL_FUTURE_WRITE, not F_SEAL_WRITE", "seal" },
		{ FK_READ_ONLY, "a read-only open of an unsealed memfd (pool-reuse)", NULL },
		{ FK_SIZE_BIGGER, "a sealed memfd half the announced size", "size" },
		{ FK_SIZE_SMALLER, "a sealed memfd twice the announced size", "size" },
		{ FK_PIPE, "a pipe instead of a memfd", NULL },
		{ FK_SEALED, "a sealed memfd after all the bad ones", NULL },
	};
	enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
	enum fake_mode modes[NCASES + 2];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[128], sock[160];
	int lfd, fds0, fds1, rc, status;
	kray_value v;
	pid_t pid;
	kray *k;

	for (int i = 0; i < NCASES; i++)
		modes[i] = cases[i].mode;
	modes[NCASES] = FK_NO_FD;
	modes[NCASES + 1] = FK_FD_MISSING;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/fake.sock", dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(lfd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(lfd, 4), 0, "listen: %s", strerror(errno));
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(fake_krayd(lfd, modes, NCASES + 2));
	}
	close(lfd);

	fds0 = count_fds();
	k = fake_connect(sock);
	fds1 = count_fds();
	for (int i = 0; i < NCASES; i++) {
		kray_ref r = { 0x600d, 7, 1000 + (uint32_t)i, KRAY_OID_PUT };

		v = (kray_value){ 0 };
		rc = harness_get1(k, r, 10000, &v);
		if (cases[i].mode == FK_SEALED || cases[i].mode == FK_READ_ONLY) {
			cr_assert_eq(rc, 0, "%s: kray_get: %d %s", cases[i].what, rc,
				     kray_errmsg(k));
			expect_pattern(&v, FAKE_LEN, FAKE_SEED, cases[i].what);
			cr_assert_eq(maps_read_only(v.data), 1, "%s: not mapped read-only",
				     cases[i].what);
		} else {
			expect_error(k, rc, &v, KRAY_ERR_NONE, cases[i].needle, cases[i].what);
			cr_assert(strstr(kray_errmsg(k), "cannot be mapped") ||
					  strstr(kray_errmsg(k), "seal") ||
					  strstr(kray_errmsg(k), "size"),
				  "%s: kray_errmsg \"%s\" does not say why", cases[i].what,
				  kray_errmsg(k));
		}
		kray_value_clear(&v);
		cr_assert_eq(count_fds(), fds1, "%s: %d descriptors open, %d before", cases[i].what,
			     count_fds(), fds1);
	}

	/* An FD value without its descriptor breaks the stream: an error, not a crash. */
	kray_ref r = { 0x600d, 7, 2000, KRAY_OID_PUT };
	v = (kray_value){ .type = KRAY_F64, .f = 1.5 };
	rc = harness_get1(k, r, 10000, &v);
	cr_assert(rc < 0 && rc != -EREMOTEIO && rc != -ETIMEDOUT,
		  "an FD value without a descriptor: kray_get returned %d (%s)", rc,
		  kray_errmsg(k));
	cr_assert(v.type == KRAY_F64, "a failed kray_get wrote its value");
	kray_shutdown(k);

	/* flags announce a descriptor that never comes */
	k = fake_connect(sock);
	r.seq = 2001;
	rc = harness_get1(k, r, 10000, &v);
	cr_assert(rc < 0 && rc != -EREMOTEIO && rc != -ETIMEDOUT,
		  "a frame whose descriptor is missing: kray_get returned %d (%s)", rc,
		  kray_errmsg(k));
	kray_shutdown(k);
	cr_assert_eq(count_fds(), fds0, "%d descriptors open after shutdown, %d before",
		     count_fds(), fds0);

	rc = waitpid(pid, &status, WNOHANG);
	cr_assert_eq(rc, 0, "the fake krayd exited early: %s", status_str(status));
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* ---- 4. store usage returns to zero -------------------------------------------------- */

Test(objects, usage_returns_to_zero, .timeout = 90)
{
	enum { ROUNDS = 30, MAXR = 12 };
	static const char *const flags[] = { "--store-size", "48M", NULL };
	struct harness h;
	struct kray_stats st;
	kray_value carried = { 0 }, vals[MAXR];
	kray_ref refs[MAXR];
	size_t lens[MAXR];
	uint64_t seeds[MAXR];
	char what[64];
	kray *k;
	int rc;

	start_krayd(&h, flags);
	k = harness_connect(h.sock);
	for (int round = 0; round < ROUNDS; round++) {
		int n = 0, outer, sums;
		uint64_t seed = 1000 + (uint64_t)round * 16, large_sum = 0;
		kray_value x = KRAY_V_INT(round);

		rc = kray_put(k, &x, &refs[n]);
		cr_assert_eq(rc, 0, "put int: %s", kray_errmsg(k));
		lens[n] = 0, seeds[n++] = 0; /* not bytes */
		lens[n] = 100, seeds[n] = seed + 1;
		refs[n] = put_pattern(k, lens[n], seeds[n], NULL), n++;
		lens[n] = INLINE, seeds[n] = seed + 2;
		refs[n] = put_pattern(k, lens[n], seeds[n], NULL), n++;
		lens[n] = MiB + (size_t)round * 4096 + 1, seeds[n] = seed + 3;
		refs[n] = put_pattern(k, lens[n], seeds[n], &large_sum), n++;
		lens[n] = 3 * MiB, seeds[n] = seed + 4;
		cr_assert_eq(create_pattern(k, lens[n], seeds[n], &refs[n]), 0, "create: %s",
			     kray_errmsg(k));
		n++;
		lens[n] = 200, seeds[n] = seed + 5;
		cr_assert_eq(create_pattern(k, lens[n], seeds[n], &refs[n]), 0, "create: %s",
			     kray_errmsg(k));
		n++;
		for (int j = 0; j < 2; j++) {
			kray_value m[2] = { KRAY_V_INT(j ? 500 : 2 * MiB + round),
					    KRAY_V_INT((int64_t)seed + 6 + j) };

			lens[n] = (size_t)m[0].i, seeds[n] = seed + 6 + (uint64_t)j;
			refs[n++] = harness_call1(k, "make_pattern", m, 2);
		}
		kray_value a = KRAY_V_REF(refs[3]);
		sums = n;
		lens[n] = 0, seeds[n] = 0;
		refs[n++] = harness_call1(k, "inspect_bytes", &a, 1);
		kray_value o = KRAY_V_BYTES("outer", 5);
		kray_ref inner[2] = { refs[1], refs[3] };
		outer = n;
		rc = kray_put_refs(k, &o, inner, 2, &refs[n]);
		cr_assert_eq(rc, 0, "kray_put_refs: %s", kray_errmsg(k));
		lens[n] = 0, seeds[n] = 0;
		n++;

		rc = kray_get(k, refs, (size_t)n, 30000, vals);
		cr_assert_eq(rc, 0, "round %d: kray_get of %d: %d %s", round, n, rc,
			     kray_errmsg(k));
		for (int i = 0; i < n; i++) {
			snprintf(what, sizeof(what), "round %d value %d", round, i);
			if (i == 0)
				cr_assert(vals[i].type == KRAY_INT64 && vals[i].i == round, "%s",
					  what);
			else if (i == sums)
				cr_assert(vals[i].type == KRAY_INT64 &&
						  (uint64_t)vals[i].i == large_sum,
					  "%s: inspect_bytes: type %d", what, vals[i].type);
			else if (i == outer)
				cr_assert(vals[i].type == KRAY_BYTES && vals[i].nrefs == 2,
					  "%s: outer: type %d nrefs %zu", what, vals[i].type,
					  vals[i].nrefs);
			else
				expect_pattern_sampled(&vals[i], lens[i], seeds[i], (uint64_t)round,
						       what);
		}
		/* the borrowed refs of the outer object are this process's to release */
		kray_release(k, vals[outer].refs, vals[outer].nrefs);
		/* a view carried over from the last round, its ref long released */
		if (carried.type == KRAY_BYTES)
			expect_pattern_sampled(&carried, 3 * MiB, seed - 16 + 4, 1, "carried");
		kray_value_clear(&carried);
		carried = vals[4];
		vals[4] = (kray_value){ 0 };
		if (round % 2) {
			kray_release(k, refs, (size_t)n);
			for (int i = 0; i < n; i++)
				kray_value_clear(&vals[i]);
		} else {
			for (int i = 0; i < n; i++)
				kray_value_clear(&vals[i]);
			kray_release(k, refs, (size_t)n);
		}
	}
	st = harness_status(k);
	cr_assert(st.objects_pinned >= 1, "the carried view is not pinned: " ST_FMT, ST_ARGS(st));
	kray_value_clear(&carried);
	expect_all_freed(k, "after 30 rounds of puts, creates, tasks and nested refs");
	st = harness_status(k);
	cr_assert_geq(st.evicted_total, ROUNDS * 10, "evicted_total %llu",
		      (unsigned long long)st.evicted_total);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_stop_krayd(&h);
}

/* ---- 5. nested refs ------------------------------------------------------------------ */

Test(objects, nested_refs, .timeout = 60)
{
	struct harness h;
	struct kray_stats st;
	kray_value o = KRAY_V_BYTES("outer", 5), vals[2], v;
	kray_ref small, large, outer, mid, top, inner[2];
	kray *k;
	int rc;

	start_krayd(&h, NULL);
	k = harness_connect(h.sock);
	small = put_pattern(k, 300, 11, NULL);
	large = put_pattern(k, 4 * MiB, 12, NULL);
	inner[0] = small;
	inner[1] = large;
	rc = kray_put_refs(k, &o, inner, 2, &outer);
	cr_assert_eq(rc, 0, "kray_put_refs: %d %s", rc, kray_errmsg(k));
	kray_release(k, inner, 2);
	st = harness_status(k);
	cr_assert_eq(st.objects, 3, "the inner objects did not stay alive: " ST_FMT, ST_ARGS(st));
	cr_assert_eq(st.store_bytes, 4 * MiB, "store_bytes %llu",
		     (unsigned long long)st.store_bytes);

	v = get_ok(k, outer, "outer");
	cr_assert(v.type == KRAY_BYTES && v.len == 5 && !memcmp(v.data, "outer", 5),
		  "outer's value: type %d len %zu", v.type, v.len);
	cr_assert_eq(v.nrefs, 2, "outer carries %zu refs, want 2", v.nrefs);
	cr_assert(!memcmp(&v.refs[0], &small, sizeof(small)) &&
			  !memcmp(&v.refs[1], &large, sizeof(large)),
		  "outer's refs are not the inner objects");
	/* borrowed: this process may get them again */
	rc = kray_get(k, v.refs, 2, 10000, vals);
	cr_assert_eq(rc, 0, "get of the borrowed inner refs: %d %s", rc, kray_errmsg(k));
	expect_pattern(&vals[0], 300, 11, "borrowed small inner");
	expect_pattern(&vals[1], 4 * MiB, 12, "borrowed large inner");
	kray_value_clear(&vals[0]);
	kray_value_clear(&vals[1]);
	kray_release(k, &outer, 1);
	st = harness_status(k);
	cr_assert_eq(st.objects, 2, "outer released, inner borrowed: " ST_FMT, ST_ARGS(st));
	kray_release(k, v.refs, v.nrefs);
	kray_value_clear(&v);
	expect_all_freed(k, "after outer and its borrowed refs were released");

	/* three levels: top -> mid -> small; only top is held */
	small = put_pattern(k, 64, 13, NULL);
	rc = kray_put_refs(k, &o, &small, 1, &mid);
	cr_assert_eq(rc, 0, "kray_put_refs(mid): %d %s", rc, kray_errmsg(k));
	rc = kray_put_refs(k, &o, &mid, 1, &top);
	cr_assert_eq(rc, 0, "kray_put_refs(top): %d %s", rc, kray_errmsg(k));
	kray_release(k, &small, 1);
	kray_release(k, &mid, 1);
	v = get_ok(k, top, "top");
	cr_assert(v.nrefs == 1 && !memcmp(&v.refs[0], &mid, sizeof(mid)), "top's refs");
	vals[0] = get_ok(k, v.refs[0], "mid through top");
	cr_assert(vals[0].nrefs == 1 && !memcmp(&vals[0].refs[0], &small, sizeof(small)),
		  "mid's refs");
	vals[1] = get_ok(k, vals[0].refs[0], "small through mid");
	expect_pattern(&vals[1], 64, 13, "small through mid");
	kray_release(k, &top, 1);
	kray_release(k, v.refs, 1);
	kray_release(k, vals[0].refs, 1);
	kray_value_clear(&v);
	kray_value_clear(&vals[0]);
	kray_value_clear(&vals[1]);
	expect_all_freed(k, "after the three levels were released");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* kray_put_refs naming a ref the process does not hold gives an error object, and keeps
 * nothing alive. */
Test(objects, put_refs_unheld_ref, .timeout = 60)
{
	struct harness h;
	kray_value o = KRAY_V_BYTES("outer", 5), v;
	kray_ref theirs, mine, released, bogus, bad[3];
	kray *a, *b;
	int rc;

	start_krayd(&h, NULL);
	a = harness_connect(h.sock);
	b = harness_connect(h.sock);
	theirs = put_pattern(b, 2 * MiB, 21, NULL); /* valid, held by b only */
	mine = put_pattern(a, 100, 22, NULL);
	released = put_pattern(a, 100, 23, NULL);
	kray_release(a, &released, 1);
	bogus = (kray_ref){ mine.node, mine.owner, mine.seq + 1000, KRAY_OID_PUT };
	kray_ref cand[3] = { theirs, released, bogus };
	static const char *const names[3] = { "another driver's ref", "a released ref",
					      "a made-up ref" };

	for (int i = 0; i < 3; i++) {
		kray_ref two[2] = { mine, cand[i] };

		rc = kray_put_refs(a, &o, two, 2, &bad[i]);
		cr_assert_eq(rc, 0, "kray_put_refs is asynchronous, yet returned %d", rc);
		rc = harness_get1(a, bad[i], 10000, &v);
		expect_error(a, rc, &v, KRAY_ERR_OBJECT_LOST, NULL, names[i]);
		kray_value_clear(&v);
	}
	v = get_ok(a, mine, "the held ref after the failed put_refs");
	expect_pattern(&v, 100, 22, "the held ref after the failed put_refs");
	kray_value_clear(&v);
	kray_release(a, bad, 3);
	kray_release(a, &mine, 1);
	kray_release(b, &theirs, 1);
	cr_assert_eq(kray_flush(b), 0, "flush: %s", kray_errmsg(b));
	expect_all_freed(a, "after the failed put_refs and every ref were released");
	harness_shutdown(a);
	harness_shutdown(b);
	harness_stop_krayd(&h);
}

/* ---- 6. spilling --------------------------------------------------------------------- */

static int count_dir(const char *path, int *ret_count)
{
	DIR *d = opendir(path);
	struct dirent *e;

	*ret_count = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			(*ret_count)++;
	closedir(d);
	return 0;
}

Test(objects, spill_many_times_the_store, .timeout = 120)
{
	enum { N = 100, LEN = 8 << 20, GETS = 1000 };
	char dir[128], spill[160];
	const char *flags[] = { "--store-size", "64M", "--pool-size", "0",
				"--spill-dir",	spill, NULL };
	struct harness h;
	struct kray_stats st;
	kray_ref *refs = calloc(N, sizeof(*refs));
	uint64_t x = 0x2545f4914f6cdd1dull;
	char what[64];
	int64_t t0;
	int rc, nfiles;
	kray *k;

	cr_assert_not_null(refs);
	harness_tmpdir(dir, sizeof(dir));
	snprintf(spill, sizeof(spill), "%s/spill", dir);
	start_krayd(&h, flags);
	k = harness_connect(h.sock);
	t0 = harness_now_ms();
	for (int i = 0; i < N; i++) {
		rc = create_pattern(k, LEN, 5000 + (uint64_t)i, &refs[i]);
		cr_assert_eq(rc, 0, "object %d of %d x 8 MiB in a 64 MiB store: %d %s", i, N, rc,
			     kray_errmsg(k));
	}
	st = harness_status(k);
	cr_assert_leq(st.store_bytes, 64 * MiB, "store_bytes %llu over the capacity",
		      (unsigned long long)st.store_bytes);
	cr_assert_geq(st.objects_spilled, N - 8, "only %llu objects spilled",
		      (unsigned long long)st.objects_spilled);
	fprintf(stderr, "spill: %d x 8 MiB written in %lld ms\n", N,
		(long long)(harness_now_ms() - t0));

	t0 = harness_now_ms();
	for (int i = 0; i < GETS; i++) {
		kray_value v;
		int idx;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		idx = (int)(x % N);
		snprintf(what, sizeof(what), "get %d (object %d)", i, idx);
		v = get_ok(k, refs[idx], what);
		if (i % 50 == 0)
			expect_pattern(&v, LEN, 5000 + (uint64_t)idx, what);
		else
			expect_pattern_sampled(&v, LEN, 5000 + (uint64_t)idx, x, what);
		kray_value_clear(&v);
	}
	fprintf(stderr, "spill: %d random gets in %lld ms\n", GETS,
		(long long)(harness_now_ms() - t0));
	st = harness_status(k);
	cr_assert(st.spilled_total >= (uint64_t)(N - 8) * LEN && st.restored_total > 0,
		  "spilled_total %llu restored_total %llu", (unsigned long long)st.spilled_total,
		  (unsigned long long)st.restored_total);
	cr_assert_leq(st.store_bytes, 64 * MiB, "store_bytes %llu over the capacity",
		      (unsigned long long)st.store_bytes);
	rc = count_dir(spill, &nfiles);
	cr_assert(rc == 0 && (uint64_t)nfiles == st.objects_spilled,
		  "%d files in the spill dir (%s), objects_spilled %llu", nfiles,
		  rc ? strerror(-rc) : "ok", (unsigned long long)st.objects_spilled);

	kray_release(k, refs, N);
	expect_all_freed(k, "after all 100 spilled objects were released");
	rc = count_dir(spill, &nfiles);
	cr_assert(rc == -ENOENT || (rc == 0 && nfiles == 0),
		  "the spill dir still holds %d files after every object was released", nfiles);
	free(refs);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_stop_krayd(&h);
}

/* ---- 7. a store full of pinned objects ----------------------------------------------- */

Test(objects, store_full_of_views, .timeout = 60)
{
	enum { LEN = 8 << 20, N = 5 };
	static const char *const flags[] = { "--store-size", "32M", "--pool-size", "0", NULL };
	struct harness h;
	struct kray_stats st;
	kray_ref refs[N + 2], keep = { 9, 9, 9, 9 }, c = keep;
	kray_value views[N], v, in;
	uint8_t *buf = calloc(1, LEN);
	void *p = NULL;
	kray *k;
	int rc;

	cr_assert_not_null(buf);
	start_krayd(&h, flags);
	k = harness_connect(h.sock);
	for (int i = 0; i < N; i++) /* the fifth spills the first */
		cr_assert_eq(create_pattern(k, LEN, 300 + (uint64_t)i, &refs[i]), 0,
			     "create %d: %s", i, kray_errmsg(k));
	for (int i = 1; i < N; i++)
		views[i] = get_ok(k, refs[i], "view");
	st = harness_status(k);
	cr_assert(st.objects_pinned == 4 && st.store_bytes == 32 * MiB && st.objects_spilled == 1,
		  "4 views of 8 MiB in a 32 MiB store: " ST_FMT, ST_ARGS(st));

	rc = kray_create(k, LEN, &c, &p);
	cr_assert_eq(rc, -ENOSPC, "kray_create(8 MiB) with the store full of views: %d (%s)", rc,
		     kray_errmsg(k));
	cr_assert(strstr(kray_errmsg(k), "full"), "kray_errmsg after -ENOSPC: \"%s\"",
		  kray_errmsg(k));
	cr_assert(!memcmp(&c, &keep, sizeof(c)), "a failed kray_create wrote its ref");
	in = KRAY_V_BYTES(buf, LEN);
	rc = kray_put(k, &in, &c);
	cr_assert_eq(rc, -ENOSPC, "kray_put(8 MiB) with the store full of views: %d (%s)", rc,
		     kray_errmsg(k));
	cr_assert(strstr(kray_errmsg(k), "full"), "kray_errmsg after -ENOSPC: \"%s\"",
		  kray_errmsg(k));
	rc = kray_create(k, INLINE + 1, &c, &p);
	cr_assert_eq(rc, -ENOSPC, "kray_create(inline + 1) with the store full: %d (%s)", rc,
		     kray_errmsg(k));
	/* small objects live in krayd's memory, not the store */
	in = KRAY_V_BYTES(buf, INLINE);
	rc = kray_put(k, &in, &refs[N]);
	cr_assert_eq(rc, 0, "a small put with the store full: %d %s", rc, kray_errmsg(k));
	/* the spilled one cannot come back while everything is pinned */
	v = (kray_value){ 0 };
	rc = harness_get1(k, refs[0], 10000, &v);
	expect_error(k, rc, &v, KRAY_ERR_STORE_FULL, "full",
		     "get of a spilled object with the store full of views");
	kray_value_clear(&v);

	/* one view dropped: its object can be spilled to bring the other back */
	kray_value_clear(&views[1]);
	views[0] = get_ok(k, refs[0], "the spilled object once a view was dropped");
	expect_pattern(&views[0], LEN, 300, "the spilled object once a view was dropped");
	rc = kray_create(k, LEN, &c, &p);
	cr_assert_eq(rc, -ENOSPC, "kray_create with 4 views again: %d (%s)", rc, kray_errmsg(k));

	for (int i = 0; i < N; i++)
		if (i != 1)
			kray_value_clear(&views[i]);
	st = poll_until(k, unpinned, 10000);
	cr_assert_eq(st.objects_pinned, 0, "objects_pinned %llu after every view was cleared",
		     (unsigned long long)st.objects_pinned);
	rc = create_pattern(k, LEN, 400, &refs[N + 1]);
	cr_assert_eq(rc, 0, "kray_create once the views were cleared: %d %s", rc, kray_errmsg(k));
	in = KRAY_V_BYTES(buf, LEN);
	rc = kray_put(k, &in, &c);
	cr_assert_eq(rc, 0, "kray_put once the views were cleared: %d %s", rc, kray_errmsg(k));
	for (int i = 0; i < N; i++) {
		v = get_ok(k, refs[i], "after the store was full");
		expect_pattern(&v, LEN, 300 + (uint64_t)i, "after the store was full");
		kray_value_clear(&v);
	}
	v = get_ok(k, refs[N + 1], "the object created after");
	expect_pattern(&v, LEN, 400, "the object created after");
	kray_value_clear(&v);
	kray_release(k, refs, N + 2);
	kray_release(k, &c, 1);
	expect_all_freed(k, "after the full store's objects were released");
	free(buf);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_stop_krayd(&h);
}

/* ---- 8. a driver killed while holding views ------------------------------------------ */

/* The child: fills krayd with everything a driver can hold, says so, waits, and dies by
 * SIGKILL.  Returns an exit code if something failed first. */
static int doomed_driver(const char *sock, int ready_fd, int go_fd)
{
	struct kray_config cfg = { .address = sock, .code_path = getenv("KRAY_TEST_CODE_PATH") };
	kray_value vals[8], x = KRAY_V_INT(5), o = KRAY_V_BYTES("outer", 5);
	kray_ref refs[12], mk[2];
	kray *k;
	void *p;
	char c;
	int n = 0;

	if (kray_init(&k, &cfg))
		return 2;
	for (int i = 0; i < 3; i++) {
		if (kray_create(k, 4 * MiB, &refs[n], &p))
			return 3;
		pattern_fill(p, 0, 4 * MiB, (uint64_t)i);
		if (kray_seal(k, &refs[n]))
			return 3;
		if (kray_get(k, &refs[n], 1, 10000, &vals[i]) || vals[i].type != KRAY_BYTES)
			return 4;
		n++;
	}
	if (kray_put(k, &x, &refs[n]))
		return 5;
	if (kray_put_refs(k, &o, refs, 2, &refs[n + 1]))
		return 6;
	n += 2;
	if (kray_create(k, 4 * MiB, &refs[n++], &p)) /* never sealed */
		return 7;
	memset(p, 1, 4 * MiB);
	kray_value m[2] = { KRAY_V_INT(4 * MiB), KRAY_V_INT(9) };
	if (kray_call(k, "make_pattern", m, 2, NULL, &mk[0]))
		return 8;
	if (kray_get(k, &mk[0], 1, 30000, &vals[3]) || vals[3].type != KRAY_BYTES)
		return 9;
	m[0] = KRAY_V_INT(64 * MiB); /* probably still running at the kill */
	if (kray_call(k, "make_pattern", m, 2, NULL, &mk[1]) || kray_flush(k))
		return 10;
	if (write(ready_fd, "r", 1) != 1)
		return 11;
	if (read(go_fd, &c, 1) != 1)
		return 12;
	raise(SIGKILL);
	return 13;
}

Test(objects, killed_driver_leaves_nothing, .timeout = 60)
{
	struct harness h;
	struct kray_stats st;
	int ready[2], go[2], status, rc;
	struct pollfd pf;
	kray_value v;
	kray_ref r;
	char c;
	pid_t pid;
	kray *k;

	start_krayd(&h, NULL);
	cr_assert_eq(pipe2(ready, O_CLOEXEC), 0, "pipe");
	cr_assert_eq(pipe2(go, O_CLOEXEC), 0, "pipe");
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		_exit(doomed_driver(h.sock, ready[1], go[0]));
	}
	close(ready[1]);
	close(go[0]);
	pf = (struct pollfd){ .fd = ready[0], .events = POLLIN };
	rc = poll(&pf, 1, 40000);
	if (rc != 1 || read(ready[0], &c, 1) != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		cr_assert_fail("the doomed driver did not get ready: %s", status_str(status));
	}
	k = harness_connect(h.sock);
	st = harness_status(k);
	cr_assert(st.objects_pinned >= 4 && st.store_bytes >= 20 * MiB && st.objects >= 8,
		  "the doomed driver holds less than it should: " ST_FMT, ST_ARGS(st));
	cr_assert_eq(write(go[1], "g", 1), 1, "write");
	cr_assert_eq(waitpid(pid, &status, 0), pid, "waitpid");
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the doomed driver: %s",
		  status_str(status));
	close(ready[0]);
	close(go[1]);

	expect_all_freed(k, "after a driver holding views was killed");
	/* and the store still works */
	r = put_pattern(k, 4 * MiB, 99, NULL);
	v = get_ok(k, r, "after the kill");
	expect_pattern(&v, 4 * MiB, 99, "after the kill");
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	expect_all_freed(k, "after the last put was released");
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_stop_krayd(&h);
}

/* ---- 9. bad input -------------------------------------------------------------------- */

/* Another driver's valid refs, ready or pending, small or large, are not this driver's. */
Test(objects, get_other_drivers_ref, .timeout = 60)
{
	struct harness h;
	kray_value x = KRAY_V_INT(6), ms = KRAY_V_INT(1500), v, vals[4];
	kray_ref theirs[4];
	int64_t t0;
	kray *a, *b;
	int rc;

	start_krayd(&h, NULL);
	a = harness_connect(h.sock);
	b = harness_connect(h.sock);
	cr_assert_eq(kray_put(a, &x, &theirs[0]), 0, "put: %s", kray_errmsg(a));
	theirs[1] = put_pattern(a, 2 * MiB, 31, NULL);
	theirs[2] = harness_call1(a, "square", &x, 1);
	theirs[3] = harness_call1(a, "sleep_ms", &ms, 1);
	v = get_ok(a, theirs[2], "a's task");
	kray_value_clear(&v);

	static const char *const names[4] = { "a small put", "a large put", "a task result",
					      "a pending task result" };
	t0 = harness_now_ms();
	for (int i = 0; i < 4; i++) {
		v = (kray_value){ 0 };
		rc = harness_get1(b, theirs[i], 10000, &v);
		expect_error(b, rc, &v, KRAY_ERR_OBJECT_LOST, NULL, names[i]);
		kray_value_clear(&v);
	}
	rc = kray_get(b, theirs, 4, 10000, vals);
	cr_assert_eq(rc, -EREMOTEIO, "get of 4 refs of another driver: %d", rc);
	for (int i = 0; i < 4; i++) {
		cr_assert(vals[i].type == KRAY_ERROR && vals[i].err == KRAY_ERR_OBJECT_LOST,
			  "%s in one get: type %d kind %s", names[i], vals[i].type,
			  harness_errkind(vals[i].err));
		kray_value_clear(&vals[i]);
	}
	cr_assert_lt(harness_now_ms() - t0, 1000, "refused gets waited for a's task");
	/* none of that touched a's objects */
	v = get_ok(a, theirs[1], "a's large object");
	expect_pattern(&v, 2 * MiB, 31, "a's large object");
	kray_value_clear(&v);
	kray_release(a, theirs, 4);
	cr_assert_eq(kray_flush(a), 0, "flush: %s", kray_errmsg(a));
	expect_all_freed(b, "after a released its objects");
	harness_shutdown(a);
	harness_shutdown(b);
	harness_stop_krayd(&h);
}

/* kray_seal of anything but an object this handle is creating is -ENOENT (a made-up ref
 * and sealing twice are in test_tasks.c). */
Test(objects, seal_bad_refs, .timeout = 60)
{
	struct harness h;
	kray_ref put, small, large, small_other;
	kray *a, *b;
	kray_value v;
	void *p, *q, *qb;
	int rc;

	start_krayd(&h, NULL);
	a = harness_connect(h.sock);
	b = harness_connect(h.sock);
	put = put_pattern(a, 100, 41, NULL);
	rc = kray_seal(a, &put);
	cr_assert_eq(rc, -ENOENT, "kray_seal of a put object: %d", rc);
	rc = kray_seal(a, NULL);
	cr_assert_eq(rc, -ENOENT, "kray_seal(NULL): %d", rc);

	rc = kray_create(a, 2 * MiB, &large, &p);
	cr_assert_eq(rc, 0, "kray_create: %d %s", rc, kray_errmsg(a));
	rc = kray_create(a, 10, &small, &q);
	cr_assert_eq(rc, 0, "kray_create(10): %d %s", rc, kray_errmsg(a));
	rc = kray_seal(b, &large);
	cr_assert_eq(rc, -ENOENT, "kray_seal of another handle's large object: %d", rc);
	rc = kray_seal(b, &small);
	cr_assert_eq(rc, -ENOENT, "kray_seal of another handle's small object: %d", rc);
	rc = kray_create(b, 10, &small_other, &qb);
	cr_assert_eq(rc, 0, "kray_create(10) in b: %d %s", rc, kray_errmsg(b));
	memset(qb, 'b', 10);
	cr_assert_eq(kray_seal(b, &small_other), 0, "b's own seal: %s", kray_errmsg(b));
	harness_status(b);
	cr_assert(harness_krayd_alive(&h), "krayd exited");

	/* a's objects were not affected */
	pattern_fill(p, 0, 2 * MiB, 42);
	cr_assert_eq(kray_seal(a, &large), 0, "a's seal: %s", kray_errmsg(a));
	memcpy(q, "small of a", 10);
	rc = kray_seal(a, &small);
	cr_assert_eq(rc, 0, "a's seal of its small object: %d %s", rc, kray_errmsg(a));
	v = get_ok(a, large, "a's large object");
	expect_pattern(&v, 2 * MiB, 42, "a's large object");
	kray_value_clear(&v);
	v = get_ok(a, small, "a's small object");
	cr_assert(v.len == 10 && !memcmp(v.data, "small of a", 10), "a's small object");
	kray_value_clear(&v);
	kray_release(a, &large, 1);
	kray_release(a, &small, 1);
	kray_release(a, &put, 1);
	kray_release(b, &small_other, 1);
	cr_assert_eq(kray_flush(b), 0, "flush: %s", kray_errmsg(b));
	expect_all_freed(a, "after the seals");
	harness_shutdown(a);
	harness_shutdown(b);
	harness_stop_krayd(&h);
}

/* kray_create of size 0 and of inline sizes takes the small path (krayd's memory, no
 * memfd); one byte more takes the store. */
Test(objects, create_small_sizes, .timeout = 60)
{
	static const size_t lens[] = { 0, 1, INLINE - 1, INLINE, INLINE + 1 };
	kray *k = harness_embedded(2);
	struct kray_stats st;
	kray_value v;
	kray_ref r, keep = { 5, 5, 5, 5 };
	char what[64];
	void *p = NULL;
	int rc;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		snprintf(what, sizeof(what), "kray_create(%zu)", lens[i]);
		rc = kray_create(k, lens[i], &r, &p);
		cr_assert_eq(rc, 0, "%s: %d %s", what, rc, kray_errmsg(k));
		cr_assert(p || !lens[i], "%s gave no memory", what);
		pattern_fill(p, 0, lens[i], 50 + i);
		cr_assert_eq(kray_seal(k, &r), 0, "%s: seal: %s", what, kray_errmsg(k));
		v = get_ok(k, r, what);
		expect_pattern(&v, lens[i], 50 + i, what);
		st = harness_status(k);
		cr_assert_eq(st.store_bytes, lens[i] > INLINE ? lens[i] : 0, "%s: store_bytes %llu",
			     what, (unsigned long long)st.store_bytes);
		kray_value_clear(&v);
		kray_release(k, &r, 1);
	}
	r = keep;
	rc = kray_create(k, 10, NULL, &p);
	cr_assert_eq(rc, -EINVAL, "kray_create without ret_ref: %d", rc);
	rc = kray_create(k, 10, &r, NULL);
	cr_assert_eq(rc, -EINVAL, "kray_create without ret_data: %d", rc);
	cr_assert(!memcmp(&r, &keep, sizeof(r)), "a failed kray_create wrote its ref");
	expect_all_freed(k, "after the small creates");
	harness_shutdown(k);
}

/* The spill directory fills up (an 8 MiB tmpfs): krayd keeps running, no object comes
 * back wrong, creates fail with -ENOSPC, and all is well once space is freed. */
Test(objects, spill_disk_full, .timeout = 60)
{
	enum { LEN = 4 << 20, MAX = 12 };
	char disk[160], spill[200];
	const char *flags[] = { "--store-size", "16M", "--pool-size", "0",
				"--spill-dir",	spill, NULL };
	struct harness h;
	struct kray_stats st;
	kray_ref refs[MAX];
	kray_value v;
	int n = 0, rc, ok = 0, nfiles;
	kray *k;

	if ((rc = harness_small_disk(disk, sizeof(disk), "8m"))) {
		cr_skip("cannot mount an 8 MiB tmpfs for a full spill disk (%s): this test "
			"needs root or CAP_SYS_ADMIN",
			strerror(-rc));
		return;
	}
	snprintf(spill, sizeof(spill), "%s/spill", disk);
	start_krayd(&h, flags);
	k = harness_connect(h.sock);

	/* 16 MiB in memory + 8 MiB on disk: the seventh 4 MiB object cannot fit */
	for (n = 0; n < MAX; n++) {
		rc = create_pattern(k, LEN, 600 + (uint64_t)n, &refs[n]);
		if (rc)
			break;
	}
	cr_assert_eq(rc, -ENOSPC, "create %d with store and spill disk full: %d (%s)", n, rc,
		     kray_errmsg(k));
	cr_assert_geq(n, 5, "only %d objects fit in a 16 MiB store + 8 MiB disk", n);
	cr_assert(*kray_errmsg(k), "no kray_errmsg after -ENOSPC");
	cr_assert(harness_krayd_alive(&h), "krayd died when its spill disk filled up");
	st = harness_status(k);
	rc = count_dir(spill, &nfiles);
	cr_assert(rc == 0 && (uint64_t)nfiles == st.objects_spilled &&
			  st.bytes_spilled == st.objects_spilled * LEN,
		  "spill dir: %d files (%s); " ST_FMT, nfiles, rc ? strerror(-rc) : "ok",
		  ST_ARGS(st));
	{
		DIR *d = opendir(spill);
		struct dirent *e;

		while (d && (e = readdir(d))) {
			char path[512];
			struct stat sb;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", spill, e->d_name);
			cr_assert(!stat(path, &sb) && sb.st_size == LEN,
				  "a partial spill file was left behind: %s (%lld bytes)", path,
				  (long long)sb.st_size);
		}
		if (d)
			closedir(d);
	}

	/* every object is right, or refused for lack of room: never wrong */
	for (int i = 0; i < n; i++) {
		v = (kray_value){ 0 };
		rc = harness_get1(k, refs[i], 10000, &v);
		if (rc == 0) {
			expect_pattern(&v, LEN, 600 + (uint64_t)i, "get with the disk full");
			ok++;
		} else {
			expect_error(k, rc, &v, KRAY_ERR_STORE_FULL, NULL,
				     "get with the store and the spill disk full");
		}
		kray_value_clear(&v);
	}
	cr_assert_geq(ok, 4, "only %d of %d objects could be read with the disk full", ok, n);

	/* free one: everything can be read again, and a create fits */
	kray_release(k, &refs[n - 1], 1);
	n--;
	for (int i = 0; i < n; i++) {
		v = get_ok(k, refs[i], "get after space was freed");
		expect_pattern(&v, LEN, 600 + (uint64_t)i, "get after space was freed");
		kray_value_clear(&v);
	}
	rc = create_pattern(k, LEN, 600 + (uint64_t)n, &refs[n]);
	cr_assert_eq(rc, 0, "create after space was freed: %d %s", rc, kray_errmsg(k));
	n++;
	v = get_ok(k, refs[n - 1], "the new object");
	expect_pattern(&v, LEN, 600 + (uint64_t)n - 1, "the new object");
	kray_value_clear(&v);
	cr_assert(harness_krayd_alive(&h), "krayd exited");

	kray_release(k, refs, (size_t)n);
	expect_all_freed(k, "after every object was released");
	rc = count_dir(spill, &nfiles);
	cr_assert(rc == -ENOENT || (rc == 0 && nfiles == 0), "%d spill files left", nfiles);
	harness_shutdown(k);
	harness_stop_krayd(&h);
	harness_unmount_disk(disk);
}

/* ---- 10. kray_wait (what wait_for_some in test_tasks.c does not cover) ---------------- */

Test(objects, wait_semantics, .timeout = 60)
{
	kray *k = harness_embedded(2);
	kray_value ms = KRAY_V_INT(400), x = KRAY_V_INT(3);
	kray_ref done, slow, big, c, refs[4];
	struct kray_stats st;
	uint8_t ready[4];
	size_t nready;
	int64_t t0, dt;
	void *p;
	int rc;

	done = harness_call1(k, "square", &x, 1);
	rc = kray_wait(k, &done, 1, 1, 30000, ready, &nready);
	cr_assert(rc == 0 && nready == 1, "wait for square: rc %d num_ready %zu", rc, nready);

	/* n = 0 and num_ready = 0 answer at once */
	rc = kray_wait(k, NULL, 0, 0, -1, NULL, &nready);
	cr_assert(rc == 0 && nready == 0, "kray_wait of nothing: rc %d num_ready %zu", rc, nready);
	slow = harness_call1(k, "sleep_ms", &ms, 1);
	refs[0] = slow;
	refs[1] = done;
	t0 = harness_now_ms();
	rc = kray_wait(k, refs, 2, 0, -1, ready, &nready);
	dt = harness_now_ms() - t0;
	cr_assert(rc == 0 && dt < 300, "kray_wait with num_ready 0: rc %d after %lld ms", rc,
		  (long long)dt);
	cr_assert(nready == 1 && ready[0] == 0 && ready[1] == 1,
		  "num_ready 0: count %zu ready [%u %u]", nready, ready[0], ready[1]);

	/* it returns when the object is ready, not at the timeout */
	t0 = harness_now_ms();
	rc = kray_wait(k, &slow, 1, 1, 20000, ready, &nready);
	dt = harness_now_ms() - t0;
	cr_assert(rc == 0 && nready == 1 && ready[0] == 1,
		  "wait for sleep_ms(400): rc %d num_ready %zu", rc, nready);
	cr_assert(dt >= 100 && dt < 5000, "wait for sleep_ms(400) took %lld ms", (long long)dt);

	/* the same ref twice counts twice */
	kray_release(k, &slow, 1);
	slow = harness_call1(k, "sleep_ms", &ms, 1);
	refs[0] = refs[1] = slow;
	refs[2] = done;
	rc = kray_wait(k, refs, 3, 2, 20000, ready, &nready);
	cr_assert(rc == 0 && nready == 3 && ready[0] && ready[1] && ready[2],
		  "wait for [slow, slow, done] (2 of 3): rc %d num_ready %zu", rc, nready);

	/* more ready than asked for: every flag is written */
	refs[0] = done;
	refs[1] = slow;
	rc = kray_wait(k, refs, 2, 1, 0, ready, &nready);
	cr_assert(rc == 0 && nready == 2 && ready[0] == 1 && ready[1] == 1,
		  "wait 1 of 2 ready: rc %d num_ready %zu", rc, nready);

	/* an object being created is not ready until sealed */
	rc = kray_create(k, 2 * MiB, &c, &p);
	cr_assert_eq(rc, 0, "kray_create: %s", kray_errmsg(k));
	t0 = harness_now_ms();
	rc = kray_wait(k, &c, 1, 1, 200, ready, &nready);
	dt = harness_now_ms() - t0;
	cr_assert(rc == 0 && nready == 0 && ready[0] == 0,
		  "wait on an unsealed object: rc %d num_ready %zu", rc, nready);
	cr_assert(dt >= 150, "wait on an unsealed object returned after %lld ms, not 200",
		  (long long)dt);
	pattern_fill(p, 0, 2 * MiB, 70);
	cr_assert_eq(kray_seal(k, &c), 0, "seal: %s", kray_errmsg(k));
	rc = kray_wait(k, &c, 1, 1, 10000, ready, &nready);
	cr_assert(rc == 0 && nready == 1, "wait on a sealed object: rc %d num_ready %zu", rc,
		  nready);

	/* waiting neither maps nor pins a large object */
	big = put_pattern(k, 4 * MiB, 71, NULL);
	refs[0] = big;
	refs[1] = c;
	rc = kray_wait(k, refs, 2, 2, 10000, ready, &nready);
	cr_assert(rc == 0 && nready == 2, "wait on large objects: rc %d num_ready %zu", rc, nready);
	st = harness_status(k);
	cr_assert_eq(st.objects_pinned, 0, "kray_wait pinned %llu objects",
		     (unsigned long long)st.objects_pinned);
	kray_release(k, &done, 1);
	kray_release(k, &slow, 1);
	kray_release(k, &big, 1);
	kray_release(k, &c, 1);
	rc = kray_wait(k, NULL, 0, 0, 0, NULL, NULL);
	cr_assert_eq(rc, 0, "kray_wait of nothing with no out-parameters: %d", rc);
	expect_all_freed(k, "after the waits");
	harness_shutdown(k);
}

/* A wait that returns before its timeout has num_ready objects ready, even when one of
 * the refs is not the caller's: it counts as ready (a get would fail at once) or is
 * waited for, but a wait never returns early with too few. */
Test(objects, wait_unheld_ref, .timeout = 60)
{
	struct harness h;
	kray_value ms = KRAY_V_INT(1500);
	kray_ref theirs;
	uint8_t ready = 9;
	size_t nready = 99;
	int64_t t0, dt;
	kray *a, *b;
	int rc;

	start_krayd(&h, NULL);
	a = harness_connect(h.sock);
	b = harness_connect(h.sock);
	theirs = harness_call1(a, "sleep_ms", &ms, 1);
	cr_assert_eq(kray_flush(a), 0, "flush: %s", kray_errmsg(a));
	harness_status(a); /* the task exists */
	t0 = harness_now_ms();
	rc = kray_wait(b, &theirs, 1, 1, 5000, &ready, &nready);
	dt = harness_now_ms() - t0;
	cr_assert_eq(rc, 0, "kray_wait: %d %s", rc, kray_errmsg(b));
	cr_assert(dt >= 4500 || nready >= 1,
		  "kray_wait(num_ready 1, timeout 5000) on another driver's pending object "
		  "returned after %lld ms with num_ready %zu (ready[0] = %u)",
		  (long long)dt, nready, ready);
	kray_release(a, &theirs, 1);
	harness_shutdown(a);
	harness_shutdown(b);
	harness_stop_krayd(&h);
}
