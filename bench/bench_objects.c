// SPDX-License-Identifier: Apache-2.0
/*
 * bench_objects.c - object store throughput and latency, with Ray's metric names
 * (python/ray/_private/ray_perf.py), against the floor of the machine:
 *
 *   memcpy_gigabytes (floor)     memcpy of 100 MiB into a buffer that is already mapped
 *                                and was written once (no page faults)
 *   memcpy_fresh_map_gigabytes   a reference, no krayd: map a memfd whose pages exist
 *                                (written once), populate, memcpy 100 MiB, unmap; the
 *                                best a writer that maps every object anew can do here
 *   single_client_put_calls      kray_put of a small int, refs released 1,000 at a time
 *   single_client_get_calls      kray_get of the same small put object (served from this
 *                                process's own memory, as from Ray's owner store)
 *   single_client_put_gigabytes  kray_put of 100 MiB bytes values, each released after,
 *                                in bursts, against a krayd with the default pool
 *   ..._pool_hit                 the puts of those bursts that found a pre-faulted memfd
 *                                ready in krayd's pool
 *   ..._one                      one put (and its release and a status round trip) with
 *                                the pool ready and its filler idle: a program that puts
 *                                a large object now and then
 *   ..._sustained                puts without pause for a round, each released after
 *                                (Ray's single_client_put_gigabytes): the pool cannot
 *                                refill between them; with pool-reuse (default) it takes
 *                                the freed objects' memory back instead
 *   ..._sustained_noreuse        the same against a krayd started with --pool-reuse off
 *   ..._nopool                   the bursts against a krayd started with --pool-size 0
 *   ..._thp_off                  the bursts against a krayd with the default pool started
 *                                with --thp off (4 KiB pages: the figure before issue 14)
 *   create_seal_gigabytes        kray_create + memcpy + kray_seal of 100 MiB (default pool)
 *   get_1gib_first / get_1mib_first
 *                                kray_get of an object already on the node that this
 *                                process has not mapped: a round trip to krayd, the fd,
 *                                the mapping
 *   get_1gib_repeat / get_1mib_repeat
 *                                kray_get of the same object while a value still holds
 *                                its mapping (reused, no round trip)
 *   get_1gib_clear / get_1mib_clear
 *                                kray_value_clear of the last value using the mapping
 *                                (munmap, and the unpin sent to krayd)
 *
 * GB is 10^9 bytes.  Every figure is the median over rounds.  The small-object rounds
 * last about a second each, after a warm-up, and end with a kray_status round trip so
 * that krayd has taken every put.  A large-put round times one burst of a few puts per
 * mode, each ended by a status round trip (the last seal is included).  Every burst and
 * floor sample starts with the pool thread idle and the pool as full as it gets (256 MiB,
 * pool-size, holds two 100 MiB memfds; a create that finds it empty grows it, up to
 * pool-max, 1 GiB by default, so the warm-up's burst of creates makes it hold a burst);
 * a put that finds none ready (--pool-size smaller than a burst, with pool-max as small)
 * takes a fresh memfd.  The memcpy floor is sampled between the bursts, so that noise on
 * this machine hits both alike; the ratio column is GB/s over the floor's GB/s.  The get
 * latencies are compared with the 1 MiB ones instead (1 GiB should cost about what 1 MiB
 * does: the data is not touched).
 *
 * The bench starts its own krayds (bench_krayd_start() in bench_common.c: $KRAY_KRAYD,
 * else ../bin/krayd next to this program, each on a private socket in a mkdtemp
 * directory, stopped by pid): one with the default pool and a 2 GiB store (room for the 1 GiB
 * object), one with --pool-size 0.  It checks the bytes it gets back, and that the
 * objects, bytes and pins krayd counts return to where they started once everything is
 * released (a difference is printed and sets "leaks" in the JSON).  Memory: at most about
 * 1.5 GiB at a time.
 *
 *	bench_objects [--quick] [--json FILE] [--pool-size SIZE] [--pool-max SIZE]
 *
 * --pool-size, --pool-max: the default-pool krayd's (default: krayd's, 256M and 1G;
 * --pool-max 256M: a pool that does not grow).
 */
#include <kray/kray.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench_common.h"

#define SMALL_BATCH 1000
#define BIG_SIZE (100ul << 20)
#define HUGE_SIZE (1ul << 30)
#define MIB_SIZE (1ul << 20)
#define REPEAT_GETS 1000
#define GET_TIMEOUT_MS 60000
#define MAX_ROUNDS 16
#define MAX_KRAYDS 4
#define MAX_BURST 8

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int rounds = 5;
static double round_s = 1.0;
static int burst = 4; /* large puts per mode per round, at most MAX_BURST */
static double phase_s[3]; /* small objects, large puts, large gets */
static uint64_t pool_full_mib; /* what the default pool held when idle */

/* ---- helpers ------------------------------------------------------------------------- */

static void *map_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_die("mmap", strerror(errno));
	return p;
}

/* A pattern that differs per object (seed) and per 8-byte word, so a wrong page, a
 * wrong object or a stale mapping shows. */
static uint64_t pattern(uint64_t seed, size_t i)
{
	return (i + 1) * 0x9e3779b97f4a7c15ull ^ seed;
}

/* Writes every step-th 8-byte word and the last one (step 512: one per 4 KiB page). */
static void fill(void *p, size_t size, uint64_t seed, size_t step)
{
	uint64_t *w = p;

	for (size_t i = 0; i < size / 8; i += step)
		w[i] = pattern(seed, i);
	w[size / 8 - 1] = pattern(seed, size / 8 - 1);
}

/* Checks every step-th word (a multiple of fill's step) and the last one. */
static int check(const void *p, size_t size, uint64_t seed, size_t step)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < size / 8; i += step)
		if (w[i] != pattern(seed, i))
			return -1;
	return w[size / 8 - 1] == pattern(seed, size / 8 - 1) ? 0 : -1;
}

/* ---- krayds of our own ------------------------------------------------------------- */

struct krayd {
	const char *name;
	struct bench_krayd d;
	kray *k;
	struct kray_stats base; /* after connecting */
};

static struct krayd *krayds[MAX_KRAYDS];

static void krayd_stop(struct krayd *d)
{
	if (d->k) {
		kray_shutdown(d->k);
		d->k = NULL;
	}
	bench_krayd_stop(&d->d);
	for (int i = 0; i < MAX_KRAYDS; i++)
		if (krayds[i] == d)
			krayds[i] = NULL;
}

/* On any exit (bench_die() included): no krayd or directory is left behind. */
static void stop_all(void)
{
	for (int i = 0; i < MAX_KRAYDS; i++)
		if (krayds[i])
			krayd_stop(krayds[i]);
}

/* Starts krayd with extra flags (NULL-terminated), waits for --ready-fd and connects. */
static void krayd_start(struct krayd *d, const char *bin, const char *const *extra)
{
	const char *code = getenv("KRAY_TEST_CODE_PATH");
	/* No tasks here: no worker processes competing for the two cores.  The code path
	 * when one is set (the list ends early otherwise). */
	const char *const flags[] = {
		"--num-cpus", "1", "--prestart", "0", code && *code ? "--code-path" : NULL,
		code,	      NULL
	};

	for (int i = 0; i < MAX_KRAYDS; i++) {
		if (!krayds[i]) {
			krayds[i] = d;
			break;
		}
	}
	bench_krayd_start(&d->d, bin, flags, extra);

	struct kray_config cfg = { .address = d->d.sock };

	if (kray_init(&d->k, &cfg) < 0)
		bench_die("kray_init", kray_init_errmsg());
	if (kray_status(d->k, &d->base) < 0)
		bench_die("kray_status", kray_errmsg(d->k));
}

static void status(kray *k, struct kray_stats *st)
{
	if (kray_status(k, st) < 0)
		bench_die("kray_status", kray_errmsg(k));
}

/* Objects, large-object bytes and pins back to where they were after connecting?
 * Prints what is left otherwise.  Returns 0 or -1. */
static int leak_check(struct krayd *d, const char *after)
{
	struct kray_stats st;

	status(d->k, &st);
	if (st.objects == d->base.objects && st.store_bytes == d->base.store_bytes &&
	    st.objects_pinned == d->base.objects_pinned && st.object_bytes == d->base.object_bytes)
		return 0;
	fprintf(stderr,
		"bench_objects: LEAK? krayd %s after %s: objects %llu (was %llu), object_bytes "
		"%llu (was %llu), store_bytes %llu (was %llu), objects_pinned %llu (was %llu)\n",
		d->name, after, (unsigned long long)st.objects, (unsigned long long)d->base.objects,
		(unsigned long long)st.object_bytes, (unsigned long long)d->base.object_bytes,
		(unsigned long long)st.store_bytes, (unsigned long long)d->base.store_bytes,
		(unsigned long long)st.objects_pinned, (unsigned long long)d->base.objects_pinned);
	return -1;
}

/* ---- metrics ------------------------------------------------------------------------- */

enum {
	M_MEMCPY,
	M_MEMCPY_FRESH,
	M_PUT_CALLS,
	M_GET_CALLS,
	M_PUT_GB,
	M_PUT_GB_POOL_HIT,
	M_PUT_GB_ONE,
	M_PUT_GB_NOPOOL,
	M_PUT_GB_THP_OFF,
	M_PUT_GB_HUGE,
	M_PUT_GB_SUSTAINED,
	M_PUT_GB_SUSTAINED_NOREUSE,
	M_CREATE_GB,
	M_GET_1GIB_FIRST,
	M_GET_1GIB_REPEAT,
	M_GET_1GIB_CLEAR,
	M_GET_1MIB_FIRST,
	M_GET_1MIB_REPEAT,
	M_GET_1MIB_CLEAR,
	M_COUNT,
};

struct metric {
	const char *key, *label, *unit, *fmt;
	int vs; /* ratio column: -1 none, else the metric it is divided by */
	double r[MAX_ROUNDS];
	double med;
};

static struct metric m[M_COUNT] = {
	[M_MEMCPY] = { "memcpy_gigabytes", "memcpy 100 MiB (floor)", "GB/s", "%12.2f", M_MEMCPY },
	[M_MEMCPY_FRESH] = { "memcpy_fresh_map_gigabytes", "  same, into a fresh mapping (ref)",
			     "GB/s", "%12.2f", M_MEMCPY },
	[M_PUT_CALLS] = { "single_client_put_calls", "single_client_put_calls", "puts/s", "%12.0f",
			  -1 },
	[M_GET_CALLS] = { "single_client_get_calls", "single_client_get_calls", "gets/s", "%12.0f",
			  -1 },
	[M_PUT_GB] = { "single_client_put_gigabytes", "single_client_put_gigabytes", "GB/s",
		       "%12.2f", M_MEMCPY },
	[M_PUT_GB_POOL_HIT] = { "single_client_put_gigabytes_pool_hit",
				"  same, puts that found a pool memfd", "GB/s", "%12.2f",
				M_MEMCPY },
	[M_PUT_GB_ONE] = { "single_client_put_gigabytes_one", "  one put, the pool ready and idle",
			   "GB/s", "%12.2f", M_MEMCPY },
	[M_PUT_GB_NOPOOL] = { "single_client_put_gigabytes_nopool", "  same, krayd --pool-size 0",
			      "GB/s", "%12.2f", M_MEMCPY },
	[M_PUT_GB_THP_OFF] = { "single_client_put_gigabytes_thp_off",
			       "  same, krayd --thp off (4 KiB pages)", "GB/s", "%12.2f",
			       M_MEMCPY },
	[M_PUT_GB_HUGE] = { "single_client_put_gigabytes_hugepages", "  same, krayd --hugepages 1",
			    "GB/s", "%12.2f", M_MEMCPY },
	[M_PUT_GB_SUSTAINED] = { "single_client_put_gigabytes_sustained",
				 "  puts without pause (pool-reuse on)", "GB/s", "%12.2f",
				 M_MEMCPY },
	[M_PUT_GB_SUSTAINED_NOREUSE] = { "single_client_put_gigabytes_sustained_noreuse",
					 "  same, krayd --pool-reuse off", "GB/s", "%12.2f",
					 M_MEMCPY },
	[M_CREATE_GB] = { "create_seal_gigabytes", "kray_create+memcpy+kray_seal", "GB/s", "%12.2f",
			  M_MEMCPY },
	[M_GET_1GIB_FIRST] = { "get_1gib_first_us", "get 1 GiB, first (maps it)", "us", "%12.1f",
			       M_GET_1MIB_FIRST },
	[M_GET_1GIB_REPEAT] = { "get_1gib_repeat_us", "get 1 GiB, repeat (mapped)", "us", "%12.3f",
				M_GET_1MIB_REPEAT },
	[M_GET_1GIB_CLEAR] = { "get_1gib_clear_us", "clear 1 GiB value (unmaps)", "us", "%12.1f",
			       M_GET_1MIB_CLEAR },
	[M_GET_1MIB_FIRST] = { "get_1mib_first_us", "get 1 MiB, first (maps it)", "us", "%12.1f",
			       -1 },
	[M_GET_1MIB_REPEAT] = { "get_1mib_repeat_us", "get 1 MiB, repeat (mapped)", "us", "%12.3f",
				-1 },
	[M_GET_1MIB_CLEAR] = { "get_1mib_clear_us", "clear 1 MiB value (unmaps)", "us", "%12.1f",
			       -1 },
};

/* ---- small objects ------------------------------------------------------------------- */

static void put_small_batch(kray *k, kray_ref *refs)
{
	for (int i = 0; i < SMALL_BATCH; i++)
		if (kray_put(k, &KRAY_V_INT(i), &refs[i]) < 0)
			bench_die("kray_put", kray_errmsg(k));
	if (kray_release(k, refs, SMALL_BATCH) < 0)
		bench_die("kray_release", kray_errmsg(k));
}

/* Puts of a small int; a round ends with a status round trip, so krayd has taken them. */
static void bench_put_calls(kray *k)
{
	static kray_ref refs[SMALL_BATCH];
	struct kray_stats st;
	double end = bench_now() + (round_s < 1 ? round_s : 1);

	do
		put_small_batch(k, refs);
	while (bench_now() < end);
	status(k, &st);
	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now(), t;
		size_t n = 0;

		end = t0 + round_s;
		do {
			put_small_batch(k, refs);
			n += SMALL_BATCH;
		} while (bench_now() < end);
		status(k, &st);
		t = bench_now();
		m[M_PUT_CALLS].r[r] = n / (t - t0);
	}
}

static void get_small_batch(kray *k, const kray_ref *ref)
{
	kray_value v;

	for (int i = 0; i < SMALL_BATCH; i++) {
		if (kray_get(k, ref, 1, GET_TIMEOUT_MS, &v) < 0)
			bench_die("kray_get", kray_errmsg(k));
		if (v.type != KRAY_INT64 || v.i != 42)
			bench_die("kray_get", "a small get returned the wrong value");
		kray_value_clear(&v);
	}
}

static void bench_get_calls(kray *k)
{
	double end = bench_now() + (round_s < 1 ? round_s : 1);
	kray_ref ref;

	if (kray_put(k, &KRAY_V_INT(42), &ref) < 0)
		bench_die("kray_put", kray_errmsg(k));
	do
		get_small_batch(k, &ref);
	while (bench_now() < end);
	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now(), t;
		size_t n = 0;

		end = t0 + round_s;
		do {
			get_small_batch(k, &ref);
			n += SMALL_BATCH;
		} while ((t = bench_now()) < end);
		m[M_GET_CALLS].r[r] = n / (t - t0);
	}
	if (kray_release(k, &ref, 1) < 0)
		bench_die("kray_release", kray_errmsg(k));
}

/* ---- large puts and the memcpy floor ------------------------------------------------- */

static void *src, *dst; /* BIG_SIZE each: the value to put, the floor's target */
static int ref_fd = -1; /* a memfd of BIG_SIZE, written once: the fresh-mapping reference */

/* GB/s of the median of three copies of BIG_SIZE into dst (mapped, written once). */
static double memcpy_sample(void)
{
	double t[3];

	for (int i = 0; i < 3; i++) {
		double t0 = bench_now();

		memcpy(dst, src, BIG_SIZE);
		__asm__ volatile("" : : "r"(dst) : "memory");
		t[i] = bench_now() - t0;
	}
	return BIG_SIZE / bench_median_of(t, 3) / 1e9;
}

/*
 * GB/s of what a writer of a new object does at best, without krayd: map a memfd whose
 * pages exist already (written once), populate the page table, copy, unmap.  The gap
 * between this and the floor is what writing through a new mapping costs on this machine.
 */
static double memcpy_fresh_sample(void)
{
	double t0 = bench_now();
	void *p = mmap(NULL, BIG_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ref_fd, 0);

	if (p == MAP_FAILED)
		bench_die("mmap", strerror(errno));
	madvise(p, BIG_SIZE, MADV_POPULATE_WRITE);
	memcpy(p, src, BIG_SIZE);
	munmap(p, BIG_SIZE);
	return BIG_SIZE / (bench_now() - t0) / 1e9;
}

/*
 * Waits until krayd's pool holds want bytes, or has not changed for stable_s seconds, or
 * 4 s passed; returns what it holds.  The pool refills what is taken from it and grows
 * (within its budget) only when a create finds it empty.
 */
static uint64_t wait_pool(kray *k, uint64_t want, double stable_s)
{
	double t = bench_now(), deadline = t + 4, since = t;
	struct kray_stats st;
	uint64_t last = 0;

	for (;;) {
		status(k, &st);
		t = bench_now();
		if (st.pool_bytes != last) {
			last = st.pool_bytes;
			since = t;
		}
		if (st.pool_bytes >= want || t - since > stable_s || t > deadline)
			return st.pool_bytes;
		usleep(2000);
	}
}

enum { VIA_PUT, VIA_CREATE };

static void put_big(kray *k, int via, kray_ref *ref)
{
	if (via == VIA_PUT) {
		if (kray_put(k, &KRAY_V_BYTES(src, BIG_SIZE), ref) < 0)
			bench_die("kray_put 100 MiB", kray_errmsg(k));
	} else {
		void *p;

		if (kray_create(k, BIG_SIZE, ref, &p) < 0)
			bench_die("kray_create 100 MiB", kray_errmsg(k));
		memcpy(p, src, BIG_SIZE);
		if (kray_seal(k, ref) < 0)
			bench_die("kray_seal", kray_errmsg(k));
	}
}

/*
 * A burst of puts, each released after; GB/s, up to a status round trip after the last
 * seal.  A status before each put (50 us against tens of ms) tells whether krayd's pool
 * had a memfd ready for it: the GB/s of those puts, up to the next put's status, are
 * appended to hits (when not NULL).
 */
static double put_burst(kray *k, int via, double *hits, int *nhits)
{
	struct kray_stats st;
	double t0 = bench_now(), t = t0;
	int hit = 0;
	kray_ref ref;

	for (int i = 0; i <= burst; i++) {
		status(k, &st);
		if (i) {
			double t1 = bench_now();

			if (hit && hits)
				hits[(*nhits)++] = BIG_SIZE / (t1 - t) / 1e9;
			t = t1;
		}
		if (i == burst)
			break;
		hit = st.pool_bytes >= BIG_SIZE;
		put_big(k, via, &ref);
		if (kray_release(k, &ref, 1) < 0)
			bench_die("kray_release", kray_errmsg(k));
	}
	return (double)burst * BIG_SIZE / (t - t0) / 1e9;
}

/* Waits until the pools of both pooled krayds are as full as they get (wait_pool()). */
static void idle_pools(struct krayd *pooled, struct krayd *thpoff, uint64_t full)
{
	wait_pool(pooled->k, full, 0.5);
	wait_pool(thpoff->k, full, 0.5);
	wait_pool(pooled->k, full, 0.5); /* (it refills as well while the other one does) */
}

/* GB/s of one put, released, up to a status round trip: a program that puts a large
 * object now and then, the pool ready and its filler idle. */
static double put_one(kray *k)
{
	struct kray_stats st;
	double t0 = bench_now();
	kray_ref ref;

	put_big(k, VIA_PUT, &ref);
	if (kray_release(k, &ref, 1) < 0)
		bench_die("kray_release", kray_errmsg(k));
	status(k, &st);
	return BIG_SIZE / (bench_now() - t0) / 1e9;
}

/* GB/s of puts without pause, each released after, for a round (at least four puts), up
 * to a status round trip: a program that puts as fast as it can, as Ray's
 * single_client_put_gigabytes does; the pool never waits idle for it. */
static double put_sustained(kray *k)
{
	struct kray_stats st;
	double t0 = bench_now(), t;
	int n = 0;
	kray_ref ref;

	do {
		put_big(k, VIA_PUT, &ref);
		if (kray_release(k, &ref, 1) < 0)
			bench_die("kray_release", kray_errmsg(k));
		n++;
		t = bench_now() - t0;
	} while (n < 4 || t < round_s);
	status(k, &st);
	return n * (double)BIG_SIZE / (bench_now() - t0) / 1e9;
}

/* Puts one object, gets it back and compares every byte. */
static void verify_big(kray *k, int via, const char *what)
{
	kray_value v;
	kray_ref ref;

	put_big(k, via, &ref);
	if (kray_get(k, &ref, 1, GET_TIMEOUT_MS, &v) < 0)
		bench_die(what, kray_errmsg(k));
	if (v.type != KRAY_BYTES || v.len != BIG_SIZE || memcmp(v.data, src, BIG_SIZE))
		bench_die(what, "the object read back differs from what was put");
	kray_value_clear(&v);
	if (kray_release(k, &ref, 1) < 0)
		bench_die("kray_release", kray_errmsg(k));
}

static void bench_put_bytes(struct krayd *pooled, struct krayd *nopool, struct krayd *huge,
			    struct krayd *thpoff, struct krayd *noreuse)
{
	double floor_s[2], fresh_s[2], hits[MAX_BURST];
	uint64_t pool_full;
	int nhits;

	/*
	 * Warm-up: a burst of creates in a row that find the pool empty make it grow to hold
	 * a burst (it learns sizes from demand, up to pool-max); what it then holds when idle
	 * is what every burst starts with.  Then one burst each way, to fault the paths in.
	 */
	for (int pass = 0; pass < 2; pass++) { /* (a second: creates that hit the first) */
		for (int i = 0; i < 2 * burst; i++) {
			kray *k = i < burst ? pooled->k : thpoff->k;
			kray_ref ref;
			void *p;

			if (kray_create(k, BIG_SIZE, &ref, &p) < 0)
				bench_die("kray_create 100 MiB", kray_errmsg(k));
			if (kray_seal(k, &ref) < 0 || kray_release(k, &ref, 1) < 0)
				bench_die("kray_seal", kray_errmsg(k));
		}
		pool_full = wait_pool(pooled->k, UINT64_MAX, 1);
		wait_pool(thpoff->k, UINT64_MAX, 1);
	}
	put_burst(pooled->k, VIA_PUT, NULL, NULL);
	put_burst(thpoff->k, VIA_PUT, NULL, NULL);
	put_burst(nopool->k, VIA_PUT, NULL, NULL);
	if (huge)
		put_burst(huge->k, VIA_PUT, NULL, NULL); /* the host backs the huge pages */
	memcpy_sample();
	memcpy_fresh_sample();

	/* The floor and every burst start with both pool threads idle (the thp-off krayd's
	 * too: its refill after its burst took memory bandwidth from the pooled bursts that
	 * followed), so that they compete with nothing measured. */
	for (int r = 0; r < rounds; r++) {
		idle_pools(pooled, thpoff, pool_full);
		floor_s[0] = memcpy_sample();
		fresh_s[0] = memcpy_fresh_sample();
		m[M_PUT_GB_NOPOOL].r[r] = put_burst(nopool->k, VIA_PUT, NULL, NULL);
		idle_pools(pooled, thpoff, pool_full);
		m[M_PUT_GB_THP_OFF].r[r] = put_burst(thpoff->k, VIA_PUT, NULL, NULL);
		idle_pools(pooled, thpoff, pool_full);
		if (huge)
			m[M_PUT_GB_HUGE].r[r] = put_burst(huge->k, VIA_PUT, NULL, NULL);
		nhits = 0;
		m[M_PUT_GB].r[r] = put_burst(pooled->k, VIA_PUT, hits, &nhits);
		m[M_PUT_GB_POOL_HIT].r[r] = bench_median_of(hits, nhits);
		idle_pools(pooled, thpoff, pool_full);
		m[M_PUT_GB_ONE].r[r] = put_one(pooled->k);
		idle_pools(pooled, thpoff, pool_full);
		floor_s[1] = memcpy_sample();
		fresh_s[1] = memcpy_fresh_sample();
		m[M_CREATE_GB].r[r] = put_burst(pooled->k, VIA_CREATE, NULL, NULL);
		m[M_MEMCPY].r[r] = bench_median_of(floor_s, 2);
		m[M_MEMCPY_FRESH].r[r] = bench_median_of(fresh_s, 2);
	}
	/* Puts without pause, alternating between krayds that do and do not reuse the memory
	 * of freed objects: the pool refills (zeroes) beside the puts, or takes their memory
	 * back. */
	put_sustained(noreuse->k);
	for (int r = 0; r < rounds; r++) {
		idle_pools(pooled, thpoff, pool_full);
		m[M_PUT_GB_SUSTAINED].r[r] = put_sustained(pooled->k);
		m[M_PUT_GB_SUSTAINED_NOREUSE].r[r] = put_sustained(noreuse->k);
	}
	pool_full_mib = pool_full >> 20;
	verify_big(pooled->k, VIA_PUT, "kray_put 100 MiB, default pool");
	verify_big(nopool->k, VIA_PUT, "kray_put 100 MiB, --pool-size 0");
	verify_big(thpoff->k, VIA_PUT, "kray_put 100 MiB, --thp off");
	verify_big(noreuse->k, VIA_PUT, "kray_put 100 MiB, --pool-reuse off");
	if (huge)
		verify_big(huge->k, VIA_PUT, "kray_put 100 MiB, --hugepages 1");
	verify_big(pooled->k, VIA_CREATE, "kray_create 100 MiB");
}
/* ---- get latency --------------------------------------------------------------------- */

/* First get (mapping it), repeat gets while mapped, and the clear that unmaps. */
static void bench_get_big(kray *k, size_t size, int first, int repeat, int clear)
{
	double rep[REPEAT_GETS];
	uint64_t seed = size;
	kray_value v, v2;
	kray_ref ref;
	void *p;

	/* 1 MiB: every word; 1 GiB: one word per page (kray_create zeroed the rest), then
	 * one per 64 KiB in the rounds, so that checking does not dominate the run. */
	size_t step = size > BIG_SIZE ? 512 : 1, round_step = size > BIG_SIZE ? 8192 : 1;

	if (kray_create(k, size, &ref, &p) < 0)
		bench_die("kray_create", kray_errmsg(k));
	fill(p, size, seed, step);
	if (kray_seal(k, &ref) < 0)
		bench_die("kray_seal", kray_errmsg(k));
	/* Warm-up: one map and unmap, checking all that was written. */
	if (kray_get(k, &ref, 1, GET_TIMEOUT_MS, &v) < 0)
		bench_die("kray_get", kray_errmsg(k));
	if (v.type != KRAY_BYTES || v.len != size || check(v.data, size, seed, step))
		bench_die("kray_get", "a large object read back differs from what was written");
	kray_value_clear(&v);

	for (int r = 0; r < rounds; r++) {
		double t0 = bench_now(), t1;

		if (kray_get(k, &ref, 1, GET_TIMEOUT_MS, &v) < 0)
			bench_die("kray_get", kray_errmsg(k));
		t1 = bench_now();
		m[first].r[r] = (t1 - t0) * 1e6;
		if (v.type != KRAY_BYTES || v.len != size || check(v.data, size, seed, round_step))
			bench_die("kray_get",
				  "a large object read back differs from what was written");
		for (int i = 0; i < REPEAT_GETS; i++) {
			t0 = bench_now();
			if (kray_get(k, &ref, 1, GET_TIMEOUT_MS, &v2) < 0)
				bench_die("kray_get", kray_errmsg(k));
			kray_value_clear(&v2);
			rep[i] = (bench_now() - t0) * 1e6;
		}
		m[repeat].r[r] = bench_median_of(rep, REPEAT_GETS);
		t0 = bench_now();
		kray_value_clear(&v);
		m[clear].r[r] = (bench_now() - t0) * 1e6;
	}
	if (kray_release(k, &ref, 1) < 0)
		bench_die("kray_release", kray_errmsg(k));
}

/* ---- report -------------------------------------------------------------------------- */

static double ratio(int i)
{
	int d = m[i].vs;

	return d >= 0 && m[d].med > 0 ? m[i].med / m[d].med : 0;
}

static void json(FILE *f, void *arg)
{
	int leaks = *(const int *)arg;

	fprintf(f, "{");
	for (int i = 0; i < M_COUNT; i++)
		fprintf(f, "\"%s\": %.3f, ", m[i].key, m[i].med);
	fprintf(f,
		"\"put_vs_memcpy\": %.3f, \"put_pool_hit_vs_memcpy\": %.3f, "
		"\"put_one_vs_memcpy\": %.3f, \"put_sustained_vs_memcpy\": %.3f, "
		"\"put_sustained_noreuse_vs_memcpy\": %.3f, "
		"\"put_nopool_vs_memcpy\": %.3f, \"put_thp_off_vs_memcpy\": %.3f, "
		"\"create_seal_vs_memcpy\": %.3f, "
		"\"fresh_map_vs_memcpy\": %.3f, \"get_1gib_vs_1mib_first\": %.2f, "
		"\"get_1gib_vs_1mib_clear\": %.2f, \"put_size_bytes\": %lu, \"burst\": %d, "
		"\"pool_idle_mib\": %llu, \"rounds\": %d, \"round_s\": %.2f, \"online_cpus\": %ld, "
		"\"leaks\": %s, "
		"\"phase_s\": {\"small\": %.2f, \"puts\": %.2f, \"gets\": %.2f}, "
		"\"per_round\": {",
		ratio(M_PUT_GB), ratio(M_PUT_GB_POOL_HIT), ratio(M_PUT_GB_ONE),
		ratio(M_PUT_GB_SUSTAINED), ratio(M_PUT_GB_SUSTAINED_NOREUSE),
		ratio(M_PUT_GB_NOPOOL), ratio(M_PUT_GB_THP_OFF), ratio(M_CREATE_GB),
		ratio(M_MEMCPY_FRESH), ratio(M_GET_1GIB_FIRST), ratio(M_GET_1GIB_CLEAR), BIG_SIZE,
		burst, (unsigned long long)pool_full_mib, rounds, round_s,
		sysconf(_SC_NPROCESSORS_ONLN), leaks ? "true" : "false", phase_s[0], phase_s[1],
		phase_s[2]);
	for (int i = 0; i < M_COUNT; i++) {
		fprintf(f, "%s", i ? ", " : "");
		bench_json_array(f, m[i].key, m[i].r, rounds);
	}
	fprintf(f, "}}\n");
}

static void report(int leaks, const char *json_file)
{
	for (int i = 0; i < M_COUNT; i++)
		m[i].med = bench_median_of(m[i].r, rounds);
	printf("bench_objects: median of %d rounds, %d x 100 MiB puts per burst, "
	       "%ld online CPUs\n",
	       rounds, burst, sysconf(_SC_NPROCESSORS_ONLN));
	printf("  (ratio: GB/s over the memcpy floor's GB/s; 1 GiB get time over the 1 MiB one)\n");
	printf("  %-36s %12s  %-7s %9s\n", "metric", "value", "unit", "ratio");
	for (int i = 0; i < M_COUNT; i++) {
		printf("  %-36s ", m[i].label);
		printf(m[i].fmt, m[i].med);
		printf("  %-7s ", m[i].unit);
		if (m[i].vs >= 0)
			printf("%8.2fx\n", ratio(i));
		else
			printf("%9s\n", "");
	}
	if (leaks)
		printf("  WARNING: krayd's object counters did not return to their start "
		       "(see stderr)\n");
	bench_json_out(json_file, json, &leaks);
}

/* Huge pages the kernel holds in reserve (sysctl vm.nr_hugepages); kray never sets it. */
static long reserved_hugepages(void)
{
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "r");
	long n = 0;

	if (f) {
		if (fscanf(f, "%ld", &n) != 1)
			n = 0;
		fclose(f);
	}
	return n;
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	char bin[PATH_MAX + 64];
	const char *pooled_flags[] = { "--store-size", "2G", NULL, NULL, NULL, NULL, NULL };
	int npooled = 2;
	static const char *const nopool_flags[] = { "--pool-size", "0", NULL };
	static const char *const thpoff_flags[] = { "--thp", "off", NULL };
	static const char *const huge_flags[] = { "--hugepages", "1", "--pool-size", "0", NULL };
	static const char *const noreuse_flags[] = { "--pool-reuse", "off", NULL };
	struct krayd pooled = { .name = "default-pool" }, nopool = { .name = "pool-size-0" };
	struct krayd huge = { .name = "hugepages" }, thpoff = { .name = "thp-off" };
	struct krayd noreuse = { .name = "pool-reuse-off" };
	int have_huge = reserved_hugepages() >= (long)(2 * BIG_SIZE / (2 << 20) + 2);
	int leaks = 0;
	double t;

	bench_init("bench_objects");
	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "--pool-size") || !strcmp(argv[i], "--pool-max")) &&
		    i + 1 < argc && npooled < 6) {
			pooled_flags[npooled++] = argv[i];
			pooled_flags[npooled++] = argv[++i];
		} else if (!bench_opt(argc, argv, &i, false, &o)) {
			fprintf(stderr,
				"usage: %s [--quick] [--json FILE] [--pool-size SIZE] "
				"[--pool-max SIZE]\n",
				argv[0]);
			return 2;
		}
	}
	if (o.quick) {
		rounds = 3;
		round_s = 0.25;
		burst = 3;
	}
	bench_path_from_env("KRAY_KRAYD", "../bin/krayd", bin, sizeof(bin));
	if (access(bin, X_OK) < 0)
		bench_die(bin, "krayd is missing (make all?)");
	unsetenv("KRAY_ADDRESS");
	atexit(stop_all);

	src = map_anon(BIG_SIZE);
	dst = map_anon(BIG_SIZE);
	fill(src, BIG_SIZE, 7, 1);
	memset(dst, 0, BIG_SIZE);
	ref_fd = memfd_create("bench-objects-ref", MFD_CLOEXEC);
	if (ref_fd < 0 || ftruncate(ref_fd, BIG_SIZE))
		bench_die("memfd", strerror(errno));
	memcpy_fresh_sample();

	krayd_start(&pooled, bin, pooled_flags);
	krayd_start(&nopool, bin, nopool_flags);
	krayd_start(&thpoff, bin, thpoff_flags);
	krayd_start(&noreuse, bin, noreuse_flags);
	if (have_huge)
		krayd_start(&huge, bin, huge_flags);

	t = bench_now();
	bench_put_calls(pooled.k);
	bench_get_calls(pooled.k);
	leaks |= leak_check(&pooled, "small puts and gets");
	phase_s[0] = bench_now() - t;

	t = bench_now();
	bench_put_bytes(&pooled, &nopool, have_huge ? &huge : NULL, &thpoff, &noreuse);
	leaks |= leak_check(&pooled, "100 MiB puts");
	leaks |= leak_check(&nopool, "100 MiB puts");
	leaks |= leak_check(&thpoff, "100 MiB puts");
	leaks |= leak_check(&noreuse, "100 MiB puts");
	krayd_stop(&nopool);
	krayd_stop(&thpoff);
	krayd_stop(&noreuse);
	if (have_huge) {
		leaks |= leak_check(&huge, "100 MiB puts");
		krayd_stop(&huge);
	}
	munmap(src, BIG_SIZE);
	munmap(dst, BIG_SIZE);
	close(ref_fd);
	phase_s[1] = bench_now() - t;

	t = bench_now();
	bench_get_big(pooled.k, MIB_SIZE, M_GET_1MIB_FIRST, M_GET_1MIB_REPEAT, M_GET_1MIB_CLEAR);
	bench_get_big(pooled.k, HUGE_SIZE, M_GET_1GIB_FIRST, M_GET_1GIB_REPEAT, M_GET_1GIB_CLEAR);
	leaks |= leak_check(&pooled, "1 MiB and 1 GiB gets");
	krayd_stop(&pooled);
	phase_s[2] = bench_now() - t;

	report(leaks, o.json_file);
	return 0;
}
