// SPDX-License-Identifier: Apache-2.0
/*
 * bench_lazy: a get of a spilled 1 GiB object with lazy restore (lazy-restore = auto, the
 * default: the get maps it at once and krayd reads its pages from disk as they are touched,
 * docs/objects.md "Lazy restore") against the eager path from the same run (lazy-restore =
 * off: the whole object is read back before the reply), and lazy with lazy-first-read = 0
 * (a fault waits for its whole 2 MiB chunk, the order before the head-first fill) against
 * the default 64K (the pages around the fault first).  Issue 14's goals: time to first
 * byte <= 2 ms; the whole object read sequentially after a lazy get >= 80% of the eager
 * path's speed.
 *
 * Each round starts a krayd per mode whose store holds the object and a sixteenth, puts the
 * object (1 GiB; 256 MiB with --quick), creates one an eighth of its size to push it to disk
 * and frees that again, then times, from the get's call: the first byte read (the object's
 * last byte, so a lazy get restores its last chunk only), and after spilling it again the
 * whole object read sequentially (a 64-bit sum).  Medians over the rounds, modes
 * alternating in order; the restored-bytes counter after the first byte is reported too.
 *
 *   build/bench/bench_lazy [--quick] [--json FILE]
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kray/kray.h>

#include "bench_common.h"

#define MiB ((size_t)1 << 20)

enum { MODE_EAGER, MODE_CHUNK, MODE_LAZY, MODES };
static const char *const mode_name[MODES] = { "eager", "lazy_chunk_first", "lazy" };
static const char *const mode_flag[MODES] = { "off", "auto", "auto" };
static const char *const mode_first[MODES] = { "64K", "0", "64K" }; /* lazy-first-read */

enum {
	F_GET_MS, /* the get alone (ms) */
	F_TTFB_MS, /* get + the last byte read (ms) */
	F_RESTORED_MIB, /* bytes read from disk by then (MiB) */
	F_FULL_S, /* get + the whole object summed (s) */
	F_COUNT
};
static const char *const fig_key[F_COUNT] = { "get_ms", "first_byte_ms",
					      "restored_at_first_byte_mib", "full_read_s" };
static const char *const fig_label[F_COUNT] = { "get returns (ms)", "get + first byte (ms)",
						"restored by then (MiB)",
						"get + whole sequential read (s)" };

static struct bench_samples fig[MODES][F_COUNT];
static size_t big = 1024 * MiB;
static int rounds = 3;

static kray *connect_to(const char *sock)
{
	struct kray_config cfg = { .address = sock };
	kray *k;

	if (kray_init(&k, &cfg))
		bench_die("kray_init", sock);
	return k;
}

static struct kray_stats status(kray *k)
{
	struct kray_stats st;

	if (kray_status(k, &st))
		bench_die("kray_status", kray_errmsg(k));
	return st;
}

/* Creates an object of big / 8 bytes (which pushes the big one to disk) and frees it. */
static void push_out(kray *k)
{
	kray_ref b;
	void *w;
	double end = bench_now() + 120;

	if (kray_create(k, big / 8, &b, &w))
		bench_die("kray_create (the one that spills)", kray_errmsg(k));
	if (kray_seal(k, &b))
		bench_die("kray_seal", kray_errmsg(k));
	while (!status(k).objects_spilled && bench_now() < end)
		usleep(5000);
	if (!status(k).objects_spilled)
		bench_die("spill", "the object did not go to disk");
	kray_release(k, &b, 1);
	status(k); /* (the release is handled) */
}

static void one_round(int mode)
{
	char store[32];
	const char *flags[] = { "--store-size",
				store,
				"--pool-size",
				"0",
				"--lazy-restore",
				mode_flag[mode],
				"--lazy-first-read",
				mode_first[mode],
				NULL };
	struct bench_krayd d;
	struct kray_stats st0, st1;
	kray_ref a;
	kray_value v;
	uint64_t sum = 0;
	double t0;
	void *w;
	kray *k;

	snprintf(store, sizeof(store), "%zuM", (big + big / 16) / MiB);
	bench_krayd_start_build(&d, flags);
	k = connect_to(d.sock);
	if (kray_create(k, big, &a, &w))
		bench_die("kray_create", kray_errmsg(k));
	for (size_t i = 0; i < big; i += 8)
		*(uint64_t *)((char *)w + i) = i;
	if (kray_seal(k, &a))
		bench_die("kray_seal", kray_errmsg(k));

	/* 1. time to first byte */
	push_out(k);
	st0 = status(k);
	t0 = bench_now();
	if (kray_get(k, &a, 1, 300000, &v) || v.len != big)
		bench_die("kray_get", kray_errmsg(k));
	bench_push(&fig[mode][F_GET_MS], (bench_now() - t0) * 1e3);
	if (*(const volatile uint64_t *)((const char *)v.data + big - 8) != big - 8)
		bench_die("the last word", "differs");
	bench_push(&fig[mode][F_TTFB_MS], (bench_now() - t0) * 1e3);
	st1 = status(k);
	bench_push(&fig[mode][F_RESTORED_MIB],
		   (double)(st1.restored_total - st0.restored_total) / (double)MiB);
	kray_value_clear(&v);

	/* 2. the whole object, after it went to disk again (a fresh object: the first is in
	 * memory now, and the lazy one may still be filling) */
	kray_release(k, &a, 1);
	if (kray_create(k, big, &a, &w))
		bench_die("kray_create", kray_errmsg(k));
	for (size_t i = 0; i < big; i += 8)
		*(uint64_t *)((char *)w + i) = i;
	if (kray_seal(k, &a))
		bench_die("kray_seal", kray_errmsg(k));
	push_out(k);
	t0 = bench_now();
	if (kray_get(k, &a, 1, 300000, &v) || v.len != big)
		bench_die("kray_get", kray_errmsg(k));
	for (size_t i = 0; i < big; i += 8)
		sum += *(const uint64_t *)((const char *)v.data + i);
	bench_push(&fig[mode][F_FULL_S], bench_now() - t0);
	if (sum != (uint64_t)(big / 8) * (big / 8 - 1) / 2 * 8)
		bench_die("the whole object", "differs");
	kray_value_clear(&v);
	kray_release(k, &a, 1);
	kray_shutdown(k);
	bench_krayd_stop(&d);
}

static void json(FILE *f, void *arg)
{
	(void)arg;
	fprintf(f, "{\"object_bytes\": %zu, \"rounds\": %d", big, rounds);
	for (int m = 0; m < MODES; m++) {
		fprintf(f, ", \"%s\": {", mode_name[m]);
		for (int i = 0; i < F_COUNT; i++) {
			fprintf(f, "%s\"%s\": {\"median\": %.3f, ", i ? ", " : "", fig_key[i],
				bench_med(&fig[m][i]));
			bench_json_array(f, "rounds", fig[m][i].v, (int)fig[m][i].n);
			fprintf(f, "}");
		}
		fprintf(f, "}");
	}
	fprintf(f, ", \"full_read_lazy_vs_eager_speed\": %.4f",
		bench_med(&fig[MODE_EAGER][F_FULL_S]) / bench_med(&fig[MODE_LAZY][F_FULL_S]));
	fprintf(f, ", \"first_byte_chunk_first_vs_head_first\": %.4f}\n",
		bench_med(&fig[MODE_CHUNK][F_TTFB_MS]) / bench_med(&fig[MODE_LAZY][F_TTFB_MS]));
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };

	bench_init("bench_lazy");
	bench_opts_parse(argc, argv, "bench_lazy [--quick] [--json FILE]", &o);
	if (o.quick) {
		big = 256 * MiB;
		rounds = 2;
	}
	unsetenv("KRAY_ADDRESS");
	unsetenv("KRAY_LAZY");
	for (int r = 0; r < rounds; r++)
		for (int m = 0; m < MODES; m++)
			one_round(r % 2 ? MODES - 1 - m : m);
	printf("bench_lazy: a get of a spilled %zu MiB object, median of %d rounds; lazy-restore "
	       "off (read back whole before the reply) against auto (pages read as touched), the "
	       "latter with lazy-first-read = 0 (a fault's whole 2 MiB chunk first) and 64K "
	       "(the default: 64 KiB around the fault first)\n",
	       big / MiB, rounds);
	printf("  %-34s %12s %12s %12s\n", "metric", "eager (off)", "chunk first", "lazy (auto)");
	for (int i = 0; i < F_COUNT; i++)
		printf("  %-34s %12.2f %12.2f %12.2f\n", fig_label[i],
		       bench_med(&fig[MODE_EAGER][i]), bench_med(&fig[MODE_CHUNK][i]),
		       bench_med(&fig[MODE_LAZY][i]));
	printf("  whole read, lazy speed / eager speed: %.2f (goal >= 0.80); lazy first byte "
	       "%.2f ms (goal <= 2 ms)\n",
	       bench_med(&fig[MODE_EAGER][F_FULL_S]) / bench_med(&fig[MODE_LAZY][F_FULL_S]),
	       bench_med(&fig[MODE_LAZY][F_TTFB_MS]));
	bench_json_out(o.json_file, json, NULL);
	return 0;
}
