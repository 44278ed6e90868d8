// SPDX-License-Identifier: Apache-2.0
/*
 * Lazy restore (issue 14, docs/objects.md "Lazy restore"): a get of a spilled object maps it
 * at once and krayd reads its pages from the spill file as the reader touches them
 * (userfaultfd).
 *
 * A get of a spilled 1 GiB object that reads one byte at its end restores a few MiB (the
 * restored-bytes counter says so), and the whole object reads back byte-exact; a spill file
 * truncated behind krayd's back gives SIGBUS in the reader that touches the bad range and
 * makes the object lost for later gets; a reader killed while it faults leaves nothing
 * behind; an object freed while a reader still maps it stays whole for that reader; with
 * lazy-restore = off (or KRAY_LAZY=0 in the reader) a get restores the whole object first.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../fixtures/pattern.h"
#include "harness.h"

#define MiB (1ull << 20)

TestSuite(lazy, .fini = harness_cleanup, .timeout = 180);

/* first: lazy-first-read, or NULL for the default. */
static void start_first(struct harness *h, char *spill, size_t len, const char *store,
			const char *lazy, const char *first)
{
	char dir[128];
	const char *flags[] = {
		"--store-size",	  store, "--pool-size",	      "0",   "--spill-dir", spill,
		"--lazy-restore", lazy,	 "--lazy-first-read", first, NULL
	};
	int rc;

	if (!first)
		flags[8] = NULL;
	harness_tmpdir(dir, sizeof(dir));
	snprintf(spill, len, "%s/spill", dir);
	rc = harness_start_krayd_opts(h, 1, flags);
	cr_assert_eq(rc, 0, "harness_start_krayd_opts: %d", rc);
}

static void start(struct harness *h, char *spill, size_t len, const char *store, const char *lazy)
{
	start_first(h, spill, len, store, lazy, NULL);
}

static void create_pattern(kray *k, size_t len, uint64_t seed, kray_ref *ret)
{
	void *p;
	int rc = kray_create(k, len, ret, &p);

	cr_assert_eq(rc, 0, "kray_create of %zu bytes: %d %s", len, rc, kray_errmsg(k));
	pattern_fill(p, 0, len, seed);
	rc = kray_seal(k, ret);
	cr_assert_eq(rc, 0, "kray_seal of %zu bytes: %d %s", len, rc, kray_errmsg(k));
}

/* Waits until n objects are on disk (the spill thread writes them). */
static struct kray_stats wait_spilled(kray *k, uint64_t n)
{
	int64_t end = harness_now_ms() + 60000;
	struct kray_stats st;

	for (;;) {
		st = harness_status(k);
		if (st.objects_spilled >= n || harness_now_ms() > end)
			break;
		usleep(10000);
	}
	cr_assert_geq(st.objects_spilled, n, "%llu objects spilled, want %llu",
		      (unsigned long long)st.objects_spilled, (unsigned long long)n);
	return st;
}

/* *a: a len-byte pattern (seed) on disk alone: another object of other bytes spilled it,
 * and is gone again, so that a get of a finds room (else it waits for the other's spill,
 * eagerly). */
static void spill_one(kray *k, size_t len, uint64_t seed, size_t other, kray_ref *a)
{
	kray_ref b;

	create_pattern(k, len, seed, a);
	create_pattern(k, other, seed + 1, &b); /* spills a */
	wait_spilled(k, 1);
	kray_release(k, &b, 1);
}

static struct kray_stats poll_freed(kray *k, int ms)
{
	int64_t end = harness_now_ms() + ms;
	struct kray_stats st;

	for (;;) {
		st = harness_status(k);
		if ((!st.objects && !st.store_bytes && !st.objects_spilled && !st.bytes_spilled) ||
		    harness_now_ms() > end)
			return st;
		usleep(20000);
	}
}

static int count_files(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static bool only_file(const char *dir, char *buf, size_t size)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return false;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && n++ == 0)
			snprintf(buf, size, "%s/%s", dir, e->d_name);
	closedir(d);
	return n == 1;
}

static void expect_clean(kray *k, const char *spill)
{
	struct kray_stats st = poll_freed(k, 30000);

	cr_assert(!st.objects && !st.store_bytes && !st.objects_spilled && !st.bytes_spilled,
		  "left: %llu objects, %llu bytes, %llu spilled (%llu bytes)",
		  (unsigned long long)st.objects, (unsigned long long)st.store_bytes,
		  (unsigned long long)st.objects_spilled, (unsigned long long)st.bytes_spilled);
	for (int i = 0; i < 100 && count_files(spill); i++)
		usleep(20000);
	cr_assert_eq(count_files(spill), 0, "spill files left in %s", spill);
}

/* ---- 1. one byte of a spilled 1 GiB object ------------------------------------------ */

Test(lazy, one_byte_of_1gib_restores_a_few_mib, .timeout = 300)
{
	const size_t len = 1024 * MiB;
	char spill[160];
	struct harness h;
	struct kray_stats st0, st1, st2;
	kray_ref a;
	kray_value v = { 0 };
	int64_t bad;
	kray *k;
	int rc;

	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	start(&h, spill, sizeof(spill), "1100M", "auto");
	k = harness_connect(h.sock);
	spill_one(k, len, 1400, 100 * MiB, &a);
	st0 = harness_status(k);
	rc = harness_get1(k, a, 60000, &v);
	cr_assert_eq(rc, 0, "kray_get: %d %s", rc, kray_errmsg(k));
	cr_assert(v.type == KRAY_BYTES && v.len == len, "type %d, %zu bytes", v.type, v.len);
	cr_assert_eq(((const uint8_t *)v.data)[len - 1], pattern_byte(1400, len - 1),
		     "the last byte differs");
	st1 = harness_status(k);
	cr_assert_leq(st1.restored_total - st0.restored_total, 8 * MiB,
		      "one byte restored %llu bytes",
		      (unsigned long long)(st1.restored_total - st0.restored_total));
	cr_assert_geq(st1.restored_total - st0.restored_total, 1,
		      "the restored-bytes counter did not move");
	/* The whole object reads back byte-exact, and was read from disk once. */
	bad = pattern_check(v.data, 0, len, 1400);
	cr_assert_eq(bad, -1, "byte %lld differs", (long long)bad);
	st2 = harness_status(k);
	cr_assert_eq(st2.restored_total - st0.restored_total, len, "restored %llu bytes, want %zu",
		     (unsigned long long)(st2.restored_total - st0.restored_total), len);
	kray_value_clear(&v);
	/* Whole now: a later get maps it as any object in memory. */
	rc = harness_get1(k, a, 60000, &v);
	cr_assert_eq(rc, 0, "kray_get again: %d %s", rc, kray_errmsg(k));
	bad = pattern_check(v.data, 0, len, 1400);
	cr_assert_eq(bad, -1, "again: byte %lld differs", (long long)bad);
	kray_value_clear(&v);
	kray_release(k, &a, 1);
	expect_clean(k, spill);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- 2. the spill file is truncated behind krayd's back ------------------------------ */

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_seen;

static void on_bus(int sig)
{
	(void)sig;
	bus_seen = 1;
	siglongjmp(bus_jmp, 1);
}

Test(lazy, truncated_spill_file_sigbus_in_the_reader, .timeout = 120)
{
	const size_t len = 16 * MiB;
	char spill[160], file[512];
	struct sigaction sa = { .sa_handler = on_bus }, old;
	struct harness h;
	kray_ref a;
	kray_value v = { 0 };
	volatile uint8_t x = 0;
	kray *k;
	int rc;

	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	start(&h, spill, sizeof(spill), "24M", "auto");
	k = harness_connect(h.sock);
	spill_one(k, len, 1500, len, &a);
	cr_assert(only_file(spill, file, sizeof(file)), "want one spill file in %s", spill);
	rc = harness_get1(k, a, 60000, &v);
	cr_assert_eq(rc, 0, "kray_get: %d %s", rc, kray_errmsg(k));
	cr_assert(v.type == KRAY_BYTES && v.len == len, "type %d, %zu bytes", v.type, v.len);
	cr_assert_eq(((const uint8_t *)v.data)[0], pattern_byte(1500, 0), "byte 0 differs");
	/* Mapped, its first chunk read: the rest of its file goes. */
	cr_assert_eq(truncate(file, (off_t)(6 * MiB)), 0, "truncate: %s", strerror(errno));
	sigaction(SIGBUS, &sa, &old);
	if (!sigsetjmp(bus_jmp, 1))
		x = ((const volatile uint8_t *)v.data)[len - 1];
	sigaction(SIGBUS, &old, NULL);
	cr_assert(bus_seen, "a touch of the truncated part read %u, not SIGBUS", x);
	/* What was read stays readable. */
	cr_assert_eq(((const uint8_t *)v.data)[1], pattern_byte(1500, 1), "byte 1 differs");
	kray_value_clear(&v);
	/* The object is lost for later gets, with the reason. */
	for (int i = 0; i < 100; i++) {
		rc = harness_get1(k, a, 60000, &v);
		if (rc || v.type == KRAY_ERROR)
			break;
		kray_value_clear(&v); /* (the loop learns it on its next turn) */
		usleep(20000);
	}
	cr_assert(v.type == KRAY_ERROR, "a later get of the damaged object: %d %s", rc,
		  kray_errmsg(k));
	cr_assert(v.len && strstr(v.data, "lost") && strstr(v.data, "truncated"), "error: %.*s",
		  (int)v.len, (const char *)v.data);
	kray_value_clear(&v);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	kray_release(k, &a, 1);
	expect_clean(k, spill);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- 3. a reader killed while its faults are pending ---------------------------------- */

static int doomed_reader(void *sock, int ready_fd)
{
	struct kray_config cfg = { .address = sock };
	kray_ref a, b;
	kray_value v;
	uint64_t sum = 0;
	kray *k;

	if (kray_init(&k, &cfg))
		return 2;
	create_pattern(k, 96 * MiB, 1700, &a);
	create_pattern(k, 96 * MiB, 1701, &b); /* spills a */
	while (harness_status(k).objects_spilled < 1)
		usleep(10000);
	kray_release(k, &b, 1); /* room for a */
	if (harness_get1(k, a, 60000, &v) || v.type != KRAY_BYTES)
		return 3;
	if (write(ready_fd, "r", 1) != 1)
		return 4;
	for (size_t i = 0; i < v.len; i += 4096) /* killed while it faults */
		sum += ((const uint8_t *)v.data)[i];
	return sum == 1 ? 6 : 5;
}

Test(lazy, reader_killed_with_faults_pending, .timeout = 180)
{
	char spill[160];
	struct harness h;
	kray_ref a, b;
	kray_value v = { 0 };
	int64_t bad;
	pid_t pid;
	kray *k;

	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	start(&h, spill, sizeof(spill), "160M", "auto");
	for (int round = 0; round < 3; round++) {
		pid = harness_fork_ready(doomed_reader, h.sock, "the reader");
		usleep((useconds_t)(1000 + round * 5000));
		harness_kill_child(pid);
		k = harness_connect(h.sock);
		expect_clean(k, spill);
		harness_shutdown(k);
		cr_assert(harness_krayd_alive(&h), "krayd exited");
	}
	/* krayd's fault thread still serves: a lazy get reads whole. */
	k = harness_connect(h.sock);
	create_pattern(k, 96 * MiB, 1702, &a);
	create_pattern(k, 96 * MiB, 1703, &b);
	wait_spilled(k, 1);
	kray_release(k, &b, 1);
	cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
	bad = pattern_check(v.data, 0, v.len, 1702);
	cr_assert_eq(bad, -1, "byte %lld differs", (long long)bad);
	kray_value_clear(&v);
	kray_release(k, &a, 1);
	expect_clean(k, spill);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- 4. the object is freed while a reader maps it ----------------------------------- */

Test(lazy, freed_while_a_reader_maps_it, .timeout = 120)
{
	const size_t len = 64 * MiB;
	char spill[160];
	struct harness h;
	struct kray_stats st0, st1;
	kray_ref a;
	kray_value v = { 0 };
	int64_t bad;
	kray *k;

	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	start(&h, spill, sizeof(spill), "100M", "auto");
	k = harness_connect(h.sock);
	spill_one(k, len, 1900, len, &a);
	st0 = harness_status(k);
	cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
	cr_assert_eq(((const uint8_t *)v.data)[0], pattern_byte(1900, 0), "byte 0 differs");
	st1 = harness_status(k);
	cr_assert_lt(st1.restored_total - st0.restored_total, len, "the get was not lazy");
	kray_release(k, &a, 1);
	harness_status(k); /* (the releases are handled) */
	bad = pattern_check(v.data, 0, len, 1900);
	cr_assert_eq(bad, -1, "byte %lld of the freed object differs", (long long)bad);
	kray_value_clear(&v);
	expect_clean(k, spill);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* Threads reading one lazy mapping side by side: one thread's fault fills a chunk while the
 * others touch other pages of it.  None may see a page before all of it is in. */
struct side_by_side {
	const uint8_t *data;
	size_t len;
	int t, n;
	int64_t bad;
};

static void *read_pages(void *arg)
{
	struct side_by_side *r = arg;

	for (size_t pg = (size_t)r->t; pg * 4096 < r->len && r->bad < 0; pg += (size_t)r->n)
		r->bad = pattern_check(r->data + pg * 4096, pg * 4096,
				       r->len - pg * 4096 < 4096 ? r->len - pg * 4096 : 4096, 2000);
	return NULL;
}

Test(lazy, threads_side_by_side_see_whole_pages, .timeout = 120)
{
	const size_t len = 64 * MiB;
	char spill[160];
	struct harness h;
	struct side_by_side r[4];
	pthread_t th[4];
	kray_ref a;
	kray_value v = { 0 };
	kray *k;

	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	start(&h, spill, sizeof(spill), "100M", "auto");
	k = harness_connect(h.sock);
	for (int round = 0; round < 4; round++) {
		struct kray_stats st0, st1;

		spill_one(k, len, 2000, len, &a);
		st0 = harness_status(k);
		cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
		st1 = harness_status(k);
		cr_assert_lt(st1.restored_total - st0.restored_total, len, "the get was not lazy");
		for (int t = 0; t < 4; t++) {
			r[t] = (struct side_by_side){ v.data, len, t, 4, -1 };
			cr_assert_eq(pthread_create(&th[t], NULL, read_pages, &r[t]), 0);
		}
		for (int t = 0; t < 4; t++)
			pthread_join(th[t], NULL);
		for (int t = 0; t < 4; t++)
			cr_assert_eq(r[t].bad, -1, "round %d: thread %d saw byte %lld differ",
				     round, t, (long long)r[t].bad);
		kray_value_clear(&v);
		kray_release(k, &a, 1);
		poll_freed(k, 30000);
	}
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- 5. eager restores: lazy-restore = off, or KRAY_LAZY=0 in the reader --------------- */

static void eager_round(const char *lazy, bool env_off)
{
	const size_t len = 32 * MiB;
	char spill[160];
	struct harness h;
	struct kray_stats st0, st1;
	kray_ref a, b;
	kray_value v = { 0 };
	int64_t bad;
	kray *k;

	start(&h, spill, sizeof(spill), "48M", lazy);
	if (env_off)
		setenv("KRAY_LAZY", "0", 1);
	k = harness_connect(h.sock);
	create_pattern(k, len, 2000, &a);
	create_pattern(k, len, 2001, &b); /* spills a */
	wait_spilled(k, 1);
	st0 = harness_status(k);
	cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
	st1 = harness_status(k);
	cr_assert_eq(st1.restored_total - st0.restored_total, len,
		     "%s: restored %llu bytes before the first touch, want all %zu", lazy,
		     (unsigned long long)(st1.restored_total - st0.restored_total), len);
	bad = pattern_check(v.data, 0, len, 2000);
	cr_assert_eq(bad, -1, "byte %lld differs", (long long)bad);
	kray_value_clear(&v);
	kray_release(k, &a, 1);
	kray_release(k, &b, 1);
	expect_clean(k, spill);
	harness_shutdown(k);
	harness_stop_krayd(&h);
	unsetenv("KRAY_LAZY");
}

Test(lazy, lazy_restore_off_restores_whole)
{
	eager_round("off", false);
}

Test(lazy, reader_without_userfaultfd_restores_whole)
{
	eager_round("auto", true);
}

/* Each get says whether it maps lazily: a connection that got one object lazily and then
 * asks with KRAY_LAZY=0 gets the next one whole (krayd once kept the first get's choice). */
Test(lazy, each_get_chooses, .timeout = 120)
{
	const size_t len = 32 * MiB;
	char spill[160];
	struct harness h;
	struct kray_stats st0, st1;
	kray_ref a, b, c, d, e;
	kray_value v = { 0 };
	kray *k;

	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	start(&h, spill, sizeof(spill), "80M", "auto");
	k = harness_connect(h.sock);
	create_pattern(k, len, 3000, &a);
	create_pattern(k, len, 3001, &b);
	create_pattern(k, len, 3002, &c); /* spills a */
	wait_spilled(k, 1);
	kray_release(k, &c, 1); /* room for a's lazy copy */
	st0 = harness_status(k);
	cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
	st1 = harness_status(k);
	cr_assert_lt(st1.restored_total - st0.restored_total, len, "the first get was not lazy");
	cr_assert_eq(pattern_check(v.data, 0, len, 3000), -1);
	kray_value_clear(&v);
	kray_release(k, &a, 1);
	create_pattern(k, len, 3003, &d);
	create_pattern(k, len, 3004, &e); /* spills b (a, freed, is no longer counted) */
	wait_spilled(k, 1);
	kray_release(k, &d, 1); /* room enough for a lazy copy of b, as for a's */
	kray_release(k, &e, 1);
	setenv("KRAY_LAZY", "0", 1);
	st0 = harness_status(k);
	cr_assert_eq(harness_get1(k, b, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
	st1 = harness_status(k);
	unsetenv("KRAY_LAZY");
	cr_assert_eq(st1.restored_total - st0.restored_total, len,
		     "with KRAY_LAZY=0 the get restores all %zu bytes first, restored %llu", len,
		     (unsigned long long)(st1.restored_total - st0.restored_total));
	cr_assert_eq(pattern_check(v.data, 0, len, 3001), -1);
	kray_value_clear(&v);
	kray_release(k, &b, 1);
	expect_clean(k, spill);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- 6. a fault's head first (lazy-first-read) ------------------------------------------ */

/* Faults in the middle and at the ends of chunks, each answered with its head first and the
 * rest of its chunk after, then threads side by side and a whole read: every byte is right
 * and every page was read from disk once (the restored-bytes counter is the object's size
 * exactly), whatever the head's size (one that does not divide a chunk, none at all). */
static void head_first_round(const char *first)
{
	const size_t len = 64 * MiB + 5000; /* the last page is partly the object's */
	const size_t touch[] = { 3 * 2 * MiB + MiB + 123,
				 len - 1,
				 10 * 2 * MiB + 2 * MiB - 1,
				 70000,
				 3 * 2 * MiB + 5,
				 31 * 2 * MiB + 100 * 1024 };
	char spill[160];
	struct harness h;
	struct side_by_side r[3];
	pthread_t th[3];
	struct kray_stats st0, st1;
	kray_ref a;
	kray_value v = { 0 };
	int64_t bad;
	kray *k;

	start_first(&h, spill, sizeof(spill), "100M", "auto", first);
	k = harness_connect(h.sock);
	spill_one(k, len, 2000, 64 * MiB, &a);
	st0 = harness_status(k);
	cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
	cr_assert_eq(v.len, len);
	for (size_t i = 0; i < sizeof(touch) / sizeof(touch[0]); i++)
		cr_assert_eq(((const uint8_t *)v.data)[touch[i]], pattern_byte(2000, touch[i]),
			     "lazy-first-read %s: byte %zu differs", first, touch[i]);
	st1 = harness_status(k);
	cr_assert_lt(st1.restored_total - st0.restored_total, len, "the get was not lazy");
	for (int t = 0; t < 3; t++) {
		r[t] = (struct side_by_side){ v.data, len, t, 3, -1 };
		cr_assert_eq(pthread_create(&th[t], NULL, read_pages, &r[t]), 0);
	}
	for (int t = 0; t < 3; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < 3; t++)
		cr_assert_eq(r[t].bad, -1, "lazy-first-read %s: thread %d saw byte %lld differ",
			     first, t, (long long)r[t].bad);
	bad = pattern_check(v.data, 0, len, 2000);
	cr_assert_eq(bad, -1, "lazy-first-read %s: byte %lld differs", first, (long long)bad);
	st1 = harness_status(k);
	cr_assert_eq(st1.restored_total - st0.restored_total, len,
		     "lazy-first-read %s: restored %llu bytes, want %zu (each page once)", first,
		     (unsigned long long)(st1.restored_total - st0.restored_total), len);
	kray_value_clear(&v);
	kray_release(k, &a, 1);
	expect_clean(k, spill);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

Test(lazy, head_first_puts_each_page_once, .timeout = 180)
{
	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	head_first_round("64K");
	head_first_round("100K"); /* does not divide a chunk; 25 pages */
	head_first_round("0"); /* the whole chunk first */
}

/* ---- MINOR mode: a lazy restore read straight into the memfd -------------------------- */

/* A spilled object of len bytes got lazily and read whole, byte-exact: in MINOR mode (the
 * reader's mapping registered for minor faults; krayd reads the file straight into the
 * memfd) unless KRAY_LAZY_MINOR=0 is in the reader's environment (MISSING mode, the
 * UFFDIO_COPY path), which krayd's counters say too. */
static void minor_round_opts(size_t len, bool env_off, bool setting_off)
{
	struct harness_lazy_counts c0, c1;
	struct harness_mapping m;
	char spill[160], store[32];
	struct harness h;
	kray_ref a;
	kray_value v = { 0 };
	int64_t bad;
	kray *k;

	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	snprintf(store, sizeof(store), "%zuK", (len + len / 2) >> 10);
	if (setting_off) { /* lazy-minor = off: krayd keeps to MISSING mode */
		char dir[128];
		const char *flags[] = {
			"--store-size", store,		"--pool-size", "0", "--spill-dir",
			spill,		"--lazy-minor", "off",	       NULL
		};

		harness_tmpdir(dir, sizeof(dir));
		snprintf(spill, sizeof(spill), "%s/spill", dir);
		cr_assert_eq(harness_start_krayd_opts(&h, 1, flags), 0, "krayd did not start");
	} else {
		start(&h, spill, sizeof(spill), store, "auto");
	}
	if (env_off)
		setenv("KRAY_LAZY_MINOR", "0", 1);
	k = harness_connect(h.sock);
	spill_one(k, len, 2100 + len, len, &a);
	c0 = harness_lazy_counts(k);
	cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
	cr_assert(v.type == KRAY_BYTES && v.len == len, "type %d, %zu bytes", v.type, v.len);
	m = harness_mapping_of(v.data);
	cr_assert(m.uffd_missing, "%zu bytes: not mapped lazily", len);
	/* (lazy-minor = off: the reader still registers minor faults; krayd uses MISSING) */
	cr_assert_eq(m.uffd_minor, !env_off, "%zu bytes: minor faults %s", len,
		     m.uffd_minor ? "registered" : "not registered");
	env_off = env_off || setting_off; /* MISSING mode from here on */
	bad = pattern_check(v.data, 0, len, 2100 + len);
	cr_assert_eq(bad, -1, "%zu bytes: byte %lld differs", len, (long long)bad);
	c1 = harness_lazy_counts(k);
	cr_assert_str_eq(c1.mode, setting_off ? "missing" : "minor");
	cr_assert_eq(c1.spill_minor - c0.spill_minor, env_off ? 0 : 1, "MINOR restores: %llu",
		     c1.spill_minor - c0.spill_minor);
	cr_assert_eq(c1.spill_missing - c0.spill_missing, env_off ? 1 : 0, "MISSING restores: %llu",
		     c1.spill_missing - c0.spill_missing);
	kray_value_clear(&v);
	/* Whole, and nobody maps it lazily: the object's memory now, byte-exact. */
	cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get again: %s", kray_errmsg(k));
	cr_assert(!harness_mapping_of(v.data).uffd_missing, "a whole object was mapped lazily");
	bad = pattern_check(v.data, 0, len, 2100 + len);
	cr_assert_eq(bad, -1, "again: byte %lld differs", (long long)bad);
	kray_value_clear(&v);
	kray_release(k, &a, 1);
	expect_clean(k, spill);
	harness_shutdown(k);
	harness_stop_krayd(&h);
	unsetenv("KRAY_LAZY_MINOR");
}

static void minor_round(size_t len, bool env_off)
{
	minor_round_opts(len, env_off, false);
}

/* Sizes around the 2 MiB chunk (the lazy minimum is 4 MiB) and one that ends mid-page. */
Test(lazy, minor_mode_sizes_byte_exact, .timeout = 180)
{
	const size_t sizes[] = { 4 * MiB, 4 * MiB + 1, 6 * MiB - 1, 6 * MiB + 1, 10 * MiB + 4095 };

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		minor_round(sizes[i], false);
}

Test(lazy, minor_mode_1gib_byte_exact, .timeout = 300)
{
	minor_round(1024 * MiB, false);
}

Test(lazy, missing_mode_forced_by_env)
{
	minor_round(6 * MiB + 1, true);
}

Test(lazy, missing_mode_forced_by_setting)
{
	minor_round_opts(6 * MiB + 1, false, true);
}

/* A value kept after kray_shutdown() (its connection gone): in MINOR mode every page the
 * reader had not had mapped would fault to nobody, so krayd maps what is in for it when the
 * connection goes and poisons the rest: the chunks filled ahead of it read back right, a
 * chunk never read is SIGBUS, and nothing blocks. */
Test(lazy, value_kept_after_shutdown_reads_what_came, .timeout = 60)
{
	const size_t len = 64 * MiB;
	struct sigaction sa = { .sa_handler = on_bus }, old;
	char spill[160];
	struct harness h;
	kray_ref a;
	kray_value v = { 0 };
	volatile uint8_t x = 0;
	kray *k;

	if (!harness_have_uffd())
		cr_skip_test("userfaultfd is not allowed here: lazy restore is off");
	start(&h, spill, sizeof(spill), "96M", "auto");
	k = harness_connect(h.sock);
	spill_one(k, len, 1600, len, &a);
	cr_assert_eq(harness_get1(k, a, 60000, &v), 0, "kray_get: %s", kray_errmsg(k));
	cr_assert(harness_mapping_of(v.data).uffd_minor, "not mapped in MINOR mode");
	/* Two chunks in order: the thread fills the next ones ahead, unmapped here. */
	cr_assert_eq(((const uint8_t *)v.data)[0], pattern_byte(1600, 0), "byte 0 differs");
	cr_assert_eq(((const uint8_t *)v.data)[2 * MiB], pattern_byte(1600, 2 * MiB),
		     "byte 2M differs");
	usleep(500000); /* (the fill-ahead: 8 chunks) */
	harness_shutdown(k);
	usleep(200000); /* (krayd learns the connection went) */
	cr_assert_eq(((const uint8_t *)v.data)[4 * MiB + 4096], pattern_byte(1600, 4 * MiB + 4096),
		     "a page filled ahead reads wrong after the shutdown");
	sigaction(SIGBUS, &sa, &old);
	if (!sigsetjmp(bus_jmp, 1))
		x = ((const volatile uint8_t *)v.data)[len - 1];
	sigaction(SIGBUS, &old, NULL);
	cr_assert(bus_seen, "a page never read gave %u after the shutdown, not SIGBUS", x);
	kray_value_clear(&v); /* the value's to clear, its connection gone or not */
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_stop_krayd(&h);
}
