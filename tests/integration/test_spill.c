// SPDX-License-Identifier: Apache-2.0
/*
 * Spilling and restoring off krayd's loop (issue 14, docs/objects.md "A full store"): the
 * spill thread writes and reads the files while the loop keeps answering other clients.
 *
 * A client's small requests on another connection keep their answers within milliseconds
 * while a 1 GiB object spills and while it comes back; a get of an object being spilled
 * reads it from memory; a spill disk that fills in the middle of a write, and a spill file
 * truncated or removed behind krayd's back, give clear errors and never a half-written
 * object; a getter killed in the middle of a restore leaves nothing behind; a task's
 * spilled argument comes back before the task is queued.
 */
#include <criterion/criterion.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../fixtures/pattern.h"
#include "harness.h"

#define MiB (1ull << 20)

TestSuite(spill, .fini = harness_cleanup, .timeout = 120);

static void start(struct harness *h, const char *const *flags)
{
	int rc = harness_start_krayd_opts(h, 1, flags);

	cr_assert_eq(rc, 0, "harness_start_krayd_opts: %d", rc);
}

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

static void expect_pattern(kray *k, kray_ref r, size_t len, uint64_t seed, const char *what)
{
	kray_value v = { 0 };
	int rc = harness_get1(k, r, 120000, &v);
	int64_t bad;

	cr_assert_eq(rc, 0, "%s: kray_get: %d %s", what, rc, kray_errmsg(k));
	cr_assert(v.type == KRAY_BYTES && v.len == len, "%s: type %d, %zu bytes (want %zu)", what,
		  v.type, v.len, len);
	bad = pattern_check(v.data, 0, len, seed);
	cr_assert_eq(bad, -1, "%s: byte %lld differs", what, (long long)bad);
	kray_value_clear(&v);
}

static int count_files(const char *path, int *ret_count)
{
	DIR *d = opendir(path);
	struct dirent *e;

	*ret_count = 0;
	if (!d)
		return -errno;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			(*ret_count)++;
	closedir(d);
	return 0;
}

/* The one spill file in dir into buf; false if there is not exactly one. */
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

static struct kray_stats poll_freed(kray *k, int ms)
{
	int64_t end = harness_now_ms() + ms;
	struct kray_stats st;

	for (;;) {
		st = harness_status(k);
		if ((!st.objects && !st.store_bytes && !st.objects_spilled && !st.bytes_spilled &&
		     !st.objects_pinned) ||
		    harness_now_ms() > end)
			return st;
		usleep(20000);
	}
}

/* ---- 1. the loop answers while a 1 GiB object spills and restores ------------------- */

enum { PH_IDLE, PH_SPILL, PH_RESTORE, PH_N };
static const char *const phase_name[PH_N] = { "idle", "spill", "restore" };

struct pinger {
	kray *k;
	int phase; /* atomic */
	int stop; /* atomic */
	int err;
	uint64_t n[PH_N];
	int64_t max_us[PH_N], sum_us[PH_N];
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Small requests (a STATUS round trip) on a connection of its own, as fast as they come,
 * each timed and counted in the phase it started in. */
static void *ping(void *arg)
{
	struct pinger *p = arg;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		int ph = __atomic_load_n(&p->phase, __ATOMIC_ACQUIRE);
		struct kray_stats st;
		int64_t t0 = now_us(), dt;

		if (kray_status(p->k, &st)) {
			p->err = 1;
			break;
		}
		dt = now_us() - t0;
		if (ph != __atomic_load_n(&p->phase, __ATOMIC_ACQUIRE))
			continue; /* straddles two phases */
		p->n[ph]++;
		p->sum_us[ph] += dt;
		if (dt > p->max_us[ph])
			p->max_us[ph] = dt;
		usleep(1000);
	}
	return NULL;
}

Test(spill, loop_answers_while_1gib_spills_and_restores, .timeout = 300)
{
	const size_t big = 1024 * MiB, small = 128 * MiB;
	char dir[128], spill[160];
	/* (the eager restore: a lazy one is test_lazy's) */
	const char *flags[] = { "--store-size", "1100M",	  "--pool-size", "0", "--spill-dir",
				spill,		"--lazy-restore", "off",	 NULL };
	struct pinger p = { 0 };
	struct harness h;
	struct kray_stats st;
	kray_ref a, b;
	pthread_t t;
	int64_t t0, spill_ms, restore_ms;
	kray *k;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(spill, sizeof(spill), "%s/spill", dir);
	start(&h, flags);
	k = harness_connect(h.sock);
	p.k = harness_connect(h.sock);
	cr_assert_eq(create_pattern(k, big, 1401, &a), 0, "1 GiB create: %s", kray_errmsg(k));
	cr_assert_eq(pthread_create(&t, NULL, ping, &p), 0, "pthread_create");
	usleep(100000);

	/* a 128 MiB create makes room: the 1 GiB object goes to disk first */
	__atomic_store_n(&p.phase, PH_SPILL, __ATOMIC_RELEASE);
	t0 = harness_now_ms();
	cr_assert_eq(create_pattern(k, small, 1402, &b), 0, "create that spills 1 GiB: %s",
		     kray_errmsg(k));
	spill_ms = harness_now_ms() - t0;
	st = harness_status(k);
	cr_assert(st.objects_spilled == 1 && st.bytes_spilled == big,
		  "the 1 GiB object is not on disk: %llu objects, %llu bytes",
		  (unsigned long long)st.objects_spilled, (unsigned long long)st.bytes_spilled);

	/* and back: the 128 MiB one makes room for it in turn */
	__atomic_store_n(&p.phase, PH_RESTORE, __ATOMIC_RELEASE);
	t0 = harness_now_ms();
	{
		kray_value v = { 0 };
		int rc = harness_get1(k, a, 120000, &v);

		restore_ms = harness_now_ms() - t0;
		__atomic_store_n(&p.phase, PH_IDLE, __ATOMIC_RELEASE);
		cr_assert_eq(rc, 0, "get of the spilled 1 GiB object: %d %s", rc, kray_errmsg(k));
		cr_assert_eq(v.len, big, "%zu bytes back", v.len);
		cr_assert_eq(pattern_check(v.data, 0, big, 1401), -1,
			     "the restored 1 GiB object differs");
		kray_value_clear(&v);
	}
	__atomic_store_n(&p.stop, 1, __ATOMIC_RELEASE);
	pthread_join(t, NULL);
	cr_assert_eq(p.err, 0, "kray_status failed on the other connection");
	st = harness_status(k);
	fprintf(stderr,
		"spill: 1 GiB spilled in %lld ms, restored in %lld ms; loop's longest "
		"stall %.2f ms\n",
		(long long)spill_ms, (long long)restore_ms, st.loop_stall_max_us / 1000.0);
	for (int i = 0; i < PH_N; i++)
		fprintf(stderr, "spill:   %-8s %5llu small requests, mean %.2f ms, max %.2f ms\n",
			phase_name[i], (unsigned long long)p.n[i],
			p.n[i] ? p.sum_us[i] / 1000.0 / (double)p.n[i] : 0.0, p.max_us[i] / 1000.0);
	cr_assert_gt(p.n[PH_SPILL] + p.n[PH_RESTORE], 0, "no request was answered meanwhile");
	/* 10 ms is the aim (bench_spill measures it).  On the loop, the spill of 1 GiB takes
	 * 1-2 s and every request waits for it; a shared, loaded machine (or the sanitizers)
	 * can delay one request by a few hundred ms anyway, so the test allows 500. */
	cr_assert_lt(p.max_us[PH_SPILL], 500000, "a request waited %.1f ms during the spill",
		     p.max_us[PH_SPILL] / 1000.0);
	cr_assert_lt(p.max_us[PH_RESTORE], 500000, "a request waited %.1f ms during the restore",
		     p.max_us[PH_RESTORE] / 1000.0);

	kray_release(k, &a, 1);
	kray_release(k, &b, 1);
	st = poll_freed(k, 20000);
	cr_assert(!st.objects && !st.store_bytes && !st.objects_spilled,
		  "left after release: %llu objects, %llu bytes, %llu spilled",
		  (unsigned long long)st.objects, (unsigned long long)st.store_bytes,
		  (unsigned long long)st.objects_spilled);
	harness_shutdown(p.k);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_stop_krayd(&h);
}

/* ---- 2. a get of an object being spilled -------------------------------------------- */

struct creator {
	kray *k;
	size_t len;
	kray_ref ref;
	int rc;
};

static void *create_thread(void *arg)
{
	struct creator *c = arg;
	void *p;

	c->rc = kray_create(c->k, c->len, &c->ref, &p);
	if (!c->rc) {
		memset(p, 7, c->len);
		c->rc = kray_seal(c->k, &c->ref);
		if (!c->rc)
			c->rc = kray_flush(c->k); /* the SEAL goes now, not with the next call */
	}
	return NULL;
}

Test(spill, get_while_spilling_reads_memory, .timeout = 120)
{
	const size_t len = 96 * MiB;
	char dir[128], spill[160];
	const char *flags[] = { "--store-size", "160M", "--pool-size", "0",
				"--spill-dir",	spill,	NULL };
	static const useconds_t delays[4] = { 0, 10000, 40000, 3000000 };
	struct creator c = { .len = len };
	struct harness h;
	struct kray_stats st;
	kray_ref a;
	pthread_t t;
	int nfiles;
	kray *k;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(spill, sizeof(spill), "%s/spill", dir);
	start(&h, flags);
	k = harness_connect(h.sock);
	c.k = harness_connect(h.sock);
	for (int round = 0; round < 4; round++) {
		cr_assert_eq(create_pattern(k, len, 1500 + (uint64_t)round, &a), 0, "create: %s",
			     kray_errmsg(k));
		harness_status(k); /* a round trip: its SEAL (not answered) is in */
		/* another client's create spills it; this one gets it meanwhile, after a delay
		 * that varies: before, during or after the write */
		cr_assert_eq(pthread_create(&t, NULL, create_thread, &c), 0, "pthread_create");
		usleep(delays[round]);
		expect_pattern(k, a, len, 1500 + (uint64_t)round, "get while it is spilled");
		pthread_join(t, NULL);
		harness_status(c.k); /* its SEAL is in */
		/* the create fits once the spill is done, or finds the store full of the view
		 * that gave the spill up: never a hang */
		cr_assert(c.rc == 0 || c.rc == -ENOSPC, "the other create: %d %s", c.rc,
			  kray_errmsg(c.k));
		fprintf(stderr, "spill: round %d: the other create %s (%s)\n", round,
			c.rc ? "found the store full (the get gave the spill up)" : "fitted",
			c.rc ? kray_errmsg(c.k) : "");
		expect_pattern(k, a, len, 1500 + (uint64_t)round, "get after");
		kray_release(k, &a, 1);
		if (!c.rc) {
			kray_release(c.k, &c.ref, 1);
			kray_flush(c.k); /* (a release rides with the next message) */
		}
		st = poll_freed(k, 20000);
		cr_assert(!st.objects && !st.store_bytes && !st.objects_spilled,
			  "round %d left %llu objects, %llu bytes, %llu spilled", round,
			  (unsigned long long)st.objects, (unsigned long long)st.store_bytes,
			  (unsigned long long)st.objects_spilled);
		/* a spill of it that was in flight removes its file once the thread is done */
		for (int i = 0; i < 100; i++) {
			if (count_files(spill, &nfiles) == -ENOENT || nfiles == 0)
				break;
			usleep(20000);
		}
		cr_assert(nfiles == 0, "round %d left %d spill files", round, nfiles);
	}
	harness_shutdown(c.k);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_stop_krayd(&h);
}

/* ---- 3. spill files damaged behind krayd's back ------------------------------------- */

static void expect_lost(kray *k, kray_ref r, const char *needle, const char *what)
{
	kray_value v = { 0 };
	int rc = harness_get1(k, r, 30000, &v);

	cr_assert_eq(rc, -EREMOTEIO, "%s: kray_get returned %d (%s), want an error value", what, rc,
		     kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_ERROR, "%s: value type %d", what, v.type);
	cr_assert_eq(v.err, KRAY_ERR_OBJECT_LOST, "%s: error %s: %s", what, harness_errkind(v.err),
		     (const char *)v.data);
	cr_assert(v.data && strstr(v.data, needle) && strstr(v.data, "lost"),
		  "%s: message \"%s\" lacks \"%s\"", what, (const char *)v.data, needle);
	fprintf(stderr, "spill: %s: %s\n", what, (const char *)v.data);
	kray_value_clear(&v);
}

Test(spill, damaged_spill_files_lose_the_object, .timeout = 120)
{
	const size_t len = 12 * MiB;
	char dir[128], spill[160], file[512];
	const char *flags[] = { "--store-size", "32M", "--pool-size", "0",
				"--spill-dir",	spill, NULL };
	struct harness h;
	struct kray_stats st;
	kray_ref r[4];
	int nfiles;
	kray *k;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(spill, sizeof(spill), "%s/spill", dir);
	start(&h, flags);
	k = harness_connect(h.sock);
	for (int i = 0; i < 3; i++) /* the third spills the first */
		cr_assert_eq(create_pattern(k, len, 1600 + (uint64_t)i, &r[i]), 0, "create %d: %s",
			     i, kray_errmsg(k));
	cr_assert(only_file(spill, file, sizeof(file)), "want one spill file in %s", spill);
	cr_assert_eq(truncate(file, (off_t)(len / 2)), 0, "truncate %s: %s", file, strerror(errno));
	expect_lost(k, r[0], "truncated", "get of an object whose spill file was truncated");
	expect_lost(k, r[0], "truncated", "the same get again");

	cr_assert_eq(create_pattern(k, len, 1603, &r[3]), 0, "create: %s", kray_errmsg(k));
	cr_assert(only_file(spill, file, sizeof(file)), "want one spill file in %s", spill);
	cr_assert_eq(unlink(file), 0, "unlink %s: %s", file, strerror(errno));
	expect_lost(k, r[1], "removed", "get of an object whose spill file was removed");

	/* the others are whole */
	expect_pattern(k, r[2], len, 1602, "an undamaged object");
	expect_pattern(k, r[3], len, 1603, "an undamaged object");
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	kray_release(k, r, 4);
	st = poll_freed(k, 20000);
	cr_assert(!st.objects && !st.store_bytes && !st.objects_spilled && !st.bytes_spilled,
		  "left: %llu objects, %llu bytes, %llu spilled (%llu bytes)",
		  (unsigned long long)st.objects, (unsigned long long)st.store_bytes,
		  (unsigned long long)st.objects_spilled, (unsigned long long)st.bytes_spilled);
	cr_assert(count_files(spill, &nfiles) == -ENOENT || nfiles == 0, "%d spill files left",
		  nfiles);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- 4. the spill disk fills in the middle of a write ------------------------------- */

Test(spill, disk_fills_during_a_write, .timeout = 120)
{
	const size_t len = 40 * MiB;
	char disk[160], spill[200];
	const char *flags[] = { "--store-size", "64M", "--pool-size", "0",
				"--spill-dir",	spill, NULL };
	struct harness h;
	struct kray_stats st;
	kray_ref a, b;
	int rc, nfiles;
	kray *k;

	if ((rc = harness_small_disk(disk, sizeof(disk), "24m"))) {
		cr_skip("cannot mount a 24 MiB tmpfs as the spill disk (%s): this test needs "
			"root or CAP_SYS_ADMIN",
			strerror(-rc));
		return;
	}
	snprintf(spill, sizeof(spill), "%s/spill", disk);
	start(&h, flags);
	k = harness_connect(h.sock);
	cr_assert_eq(create_pattern(k, len, 1700, &a), 0, "create: %s", kray_errmsg(k));
	/* 40 MiB to a 24 MiB disk: the write stops at ENOSPC; the create that wanted the
	 * room is refused, and the object stays whole in memory */
	rc = create_pattern(k, len, 1701, &b);
	cr_assert_eq(rc, -ENOSPC, "create with the spill disk too small: %d (%s)", rc,
		     kray_errmsg(k));
	cr_assert(harness_krayd_alive(&h), "krayd died when its spill disk filled up");
	cr_assert(count_files(spill, &nfiles) == 0 && nfiles == 0,
		  "a half-written spill file was left: %d files", nfiles);
	st = harness_status(k);
	cr_assert(st.objects_spilled == 0 && st.store_bytes == len,
		  "after the failed spill: %llu spilled, %llu bytes in memory",
		  (unsigned long long)st.objects_spilled, (unsigned long long)st.store_bytes);
	expect_pattern(k, a, len, 1700, "the object whose spill failed");
	/* and again, now that the view is gone: the same refusal, no hang, no leak */
	rc = create_pattern(k, len, 1701, &b);
	cr_assert_eq(rc, -ENOSPC, "second create: %d (%s)", rc, kray_errmsg(k));
	kray_release(k, &a, 1);
	cr_assert_eq(create_pattern(k, len, 1702, &b), 0, "create after the release: %s",
		     kray_errmsg(k));
	expect_pattern(k, b, len, 1702, "the new object");
	kray_release(k, &b, 1);
	st = poll_freed(k, 20000);
	cr_assert(!st.objects && !st.store_bytes, "left: %llu objects, %llu bytes",
		  (unsigned long long)st.objects, (unsigned long long)st.store_bytes);
	harness_shutdown(k);
	harness_stop_krayd(&h);
	harness_unmount_disk(disk);
}

/* ---- 5. a getter killed in the middle of a restore ---------------------------------- */

static int doomed_getter(void *sock, int ready_fd)
{
	struct kray_config cfg = { .address = sock };
	kray_ref a, b;
	kray_value v;
	kray *k;

	if (kray_init(&k, &cfg))
		return 2;
	if (create_pattern(k, 128 * MiB, 1800, &a) || create_pattern(k, 128 * MiB, 1801, &b))
		return 3; /* (b spills a) */
	if (write(ready_fd, "r", 1) != 1)
		return 4;
	kray_get(k, &a, 1, 60000, &v); /* killed while a comes back */
	return 5;
}

Test(spill, getter_killed_during_restore, .timeout = 120)
{
	char dir[128], spill[160];
	const char *flags[] = { "--store-size", "200M", "--pool-size", "0",
				"--spill-dir",	spill,	NULL };
	struct harness h;
	struct kray_stats st;
	int nfiles;
	pid_t pid;
	kray *k;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(spill, sizeof(spill), "%s/spill", dir);
	start(&h, flags);
	for (int round = 0; round < 3; round++) {
		pid = harness_fork_ready(doomed_getter, h.sock, "the getter");
		usleep((useconds_t)(5000 + round * 20000));
		harness_kill_child(pid);
		k = harness_connect(h.sock);
		st = poll_freed(k, 30000);
		cr_assert(!st.objects && !st.store_bytes && !st.objects_spilled,
			  "round %d: the killed getter left %llu objects, %llu bytes, %llu "
			  "spilled",
			  round, (unsigned long long)st.objects, (unsigned long long)st.store_bytes,
			  (unsigned long long)st.objects_spilled);
		/* the spill file goes once the thread is done with it */
		for (int i = 0; i < 100; i++) {
			if (count_files(spill, &nfiles) == -ENOENT || nfiles == 0)
				break;
			usleep(20000);
		}
		cr_assert(nfiles == 0, "round %d: %d spill files left", round, nfiles);
		harness_shutdown(k);
		cr_assert(harness_krayd_alive(&h), "krayd exited");
	}
	harness_stop_krayd(&h);
}

/* ---- 6. a task whose argument is on disk -------------------------------------------- */

Test(spill, task_argument_restored_on_the_thread, .timeout = 120)
{
	const size_t len = 40 * MiB;
	char dir[128], spill[160];
	const char *flags[] = { "--store-size", "64M", "--pool-size", "0",
				"--spill-dir",	spill, NULL };
	struct harness h;
	struct kray_stats st;
	kray_value in, v = { 0 };
	kray_ref a, b, t;
	uint8_t *buf = malloc(len);
	uint64_t sum;
	int rc;
	kray *k;

	cr_assert_not_null(buf);
	pattern_fill(buf, 0, len, 1900);
	sum = checksum64(buf, len);
	harness_tmpdir(dir, sizeof(dir));
	snprintf(spill, sizeof(spill), "%s/spill", dir);
	start(&h, flags);
	k = harness_connect(h.sock);
	in = KRAY_V_BYTES(buf, len);
	cr_assert_eq(kray_put(k, &in, &a), 0, "put: %s", kray_errmsg(k));
	cr_assert_eq(create_pattern(k, len, 1901, &b), 0, "create: %s", kray_errmsg(k));
	st = harness_status(k);
	cr_assert_eq(st.objects_spilled, 1, "the argument is not on disk");
	kray_release(k, &b, 1); /* room for it to come back */
	kray_value arg = KRAY_V_REF(a);
	t = harness_call1(k, "checksum_all", &arg, 1);
	rc = harness_get1(k, t, 60000, &v);
	cr_assert(rc == 0 && v.type == KRAY_INT64 && (uint64_t)v.i == sum,
		  "checksum of the spilled argument: rc %d type %d (%s)", rc, v.type,
		  v.type == KRAY_ERROR ? (const char *)v.data : "");
	st = harness_status(k);
	cr_assert_geq(st.restored_total, len, "restored_total %llu",
		      (unsigned long long)st.restored_total);
	kray_value_clear(&v);
	kray_release(k, &t, 1);
	kray_release(k, &a, 1);
	st = poll_freed(k, 20000);
	cr_assert(!st.objects && !st.store_bytes && !st.objects_spilled,
		  "left: %llu objects, %llu bytes, %llu spilled", (unsigned long long)st.objects,
		  (unsigned long long)st.store_bytes, (unsigned long long)st.objects_spilled);
	free(buf);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd exited");
	harness_stop_krayd(&h);
}
