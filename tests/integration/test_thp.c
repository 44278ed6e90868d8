// SPDX-License-Identifier: Apache-2.0
/*
 * Large objects in shmem transparent huge pages (krayd's `thp`, docs/objects.md).
 *
 * Round trips at the sizes where pages and mappings change (1 B, 64 KiB +- 1 around
 * inline-max, 2 MiB +- 1 around a huge page, 100 MiB, 1 GiB) come back byte for byte with
 * thp on and off, through kray_put, kray_create and a task's argument; readers map large
 * objects on 2 MiB boundaries.  With thp on (where the kernel allows it) ShmemHugePages in
 * /proc/meminfo grows while large objects live and the reader's mapping is mapped with
 * huge pages; `kray status` says which; `--thp off` leaves shmem_enabled as it was.
 *
 * A test that changes /sys/kernel/mm/transparent_hugepage/shmem_enabled puts it back
 * (also after a failed assertion: the suite's .fini).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../fixtures/pattern.h"
#include "harness.h"

#define MiB (1ull << 20)
#define KiB (1ull << 10)
#define SHMEM_ENABLED "/sys/kernel/mm/transparent_hugepage/shmem_enabled"

static char saved_mode[32]; /* shmem_enabled before the test; "" if unreadable */

static bool read_mode(char *buf, size_t len)
{
	char line[128], *a, *b;
	FILE *f = fopen(SHMEM_ENABLED, "re");
	bool ok = f && fgets(line, sizeof(line), f);

	if (f)
		fclose(f);
	if (!ok || !(a = strchr(line, '[')) || !(b = strchr(a, ']')))
		return false;
	*b = 0;
	snprintf(buf, len, "%s", a + 1);
	return true;
}

static bool write_mode(const char *mode)
{
	int fd = open(SHMEM_ENABLED, O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, mode, strlen(mode)) == (ssize_t)strlen(mode);

	if (fd >= 0)
		close(fd);
	return ok;
}

/* Every krayd with thp = auto may set shmem_enabled to advise: each test puts back what
 * it found (where it can: as root). */
static void thp_init(void)
{
	if (!read_mode(saved_mode, sizeof(saved_mode)))
		saved_mode[0] = 0;
}

static void thp_fini(void)
{
	char mode[32];

	harness_cleanup();
	if (saved_mode[0] && read_mode(mode, sizeof(mode)) && strcmp(mode, saved_mode))
		write_mode(saved_mode);
}

TestSuite(thp, .init = thp_init, .fini = thp_fini, .timeout = 120);

static kray *start(struct harness *h, bool thp)
{
	const char *on[] = { "--store-size", "3G", NULL };
	const char *off[] = { "--store-size", "3G", "--thp", "off", NULL };
	int rc = harness_start_krayd_opts(h, 2, thp ? on : off);

	cr_assert_eq(rc, 0, "krayd did not start: %d", rc);
	return harness_connect(h->sock);
}

static void check_value(const kray_value *v, size_t len, uint64_t seed, const char *what)
{
	int64_t bad;

	cr_assert_eq(v->type, KRAY_BYTES, "%s: type %d", what, v->type);
	cr_assert_eq(v->len, len, "%s: %zu bytes back", what, v->len);
	bad = pattern_check(v->data, 0, len, seed);
	cr_assert_eq(bad, -1, "%s: byte %lld differs", what, (long long)bad);
	if (len >= 2 * MiB)
		cr_assert_eq((uintptr_t)v->data % (2 * MiB), 0,
			     "%s: a large object mapped at %p, not on a 2 MiB boundary", what,
			     v->data);
}

static void round_trips(bool thp)
{
	static const size_t sizes[] = { 1,	 64 * KiB - 1, 64 * KiB,  64 * KiB + 1, 2 * MiB - 1,
					2 * MiB, 2 * MiB + 1,  100 * MiB, 1024 * MiB };
	struct harness h;
	kray *k = start(&h, thp);
	char what[96];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t len = sizes[i];
		uint64_t seed = 700 + i;
		uint8_t *buf = malloc(len);
		kray_value in = KRAY_V_BYTES(buf, len), v, a, sum;
		kray_ref put, made, task;
		void *p;
		int rc;

		cr_assert_not_null(buf);
		pattern_fill(buf, 0, len, seed);
		snprintf(what, sizeof(what), "thp %s, kray_put of %zu bytes", thp ? "on" : "off",
			 len);
		rc = kray_put(k, &in, &put);
		cr_assert_eq(rc, 0, "%s: %d %s", what, rc, kray_errmsg(k));
		rc = harness_get1(k, put, 30000, &v);
		cr_assert_eq(rc, 0, "%s: get: %d %s", what, rc, kray_errmsg(k));
		check_value(&v, len, seed, what);
		kray_value_clear(&v);

		/* A task's argument, read where it did not write it. */
		a = KRAY_V_REF(put);
		task = harness_call1(k, "inspect_bytes", &a, 1);
		rc = harness_get1(k, task, 60000, &sum);
		cr_assert_eq(rc, 0, "%s: inspect_bytes: %d %s", what, rc, kray_errmsg(k));
		cr_assert_eq((uint64_t)sum.i, checksum64(buf, len),
			     "%s: the task's checksum differs", what);
		kray_value_clear(&sum);
		kray_release(k, &task, 1);
		kray_release(k, &put, 1);
		free(buf);

		snprintf(what, sizeof(what), "thp %s, kray_create of %zu bytes", thp ? "on" : "off",
			 len);
		rc = kray_create(k, len, &made, &p);
		cr_assert_eq(rc, 0, "%s: %d %s", what, rc, kray_errmsg(k));
		if (len >= 2 * MiB)
			cr_assert_eq((uintptr_t)p % (2 * MiB), 0, "%s: writer's mapping at %p",
				     what, p);
		pattern_fill(p, 0, len, seed + 1);
		rc = kray_seal(k, &made);
		cr_assert_eq(rc, 0, "%s: seal: %d %s", what, rc, kray_errmsg(k));
		rc = harness_get1(k, made, 30000, &v);
		cr_assert_eq(rc, 0, "%s: get: %d %s", what, rc, kray_errmsg(k));
		check_value(&v, len, seed + 1, what);
		kray_value_clear(&v);
		kray_release(k, &made, 1);
	}
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

Test(thp, round_trips_thp_on, .timeout = 240)
{
	round_trips(true);
}

Test(thp, round_trips_thp_off, .timeout = 240)
{
	round_trips(false);
}

static long long meminfo_kb(const char *key)
{
	char line[256];
	size_t n = strlen(key);
	long long v = -1;
	FILE *f = fopen("/proc/meminfo", "re");

	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = atoll(line + n + 1);
	if (f)
		fclose(f);
	return v;
}

/* The kB of field (e.g. "ShmemPmdMapped") in /proc/self/smaps for the mapping at addr. */
static long long smaps_kb(const void *addr, const char *field)
{
	char line[512], want[32];
	size_t n = strlen(field);
	bool in = false;
	long long v = -1;
	FILE *f = fopen("/proc/self/smaps", "re");

	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)addr);
	while (f && fgets(line, sizeof(line), f)) {
		if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f'))
			in = !strncmp(line, want, strlen(want)); /* a mapping's first line */
		else if (in && !strncmp(line, field, n) && line[n] == ':')
			v = atoll(line + n + 1);
	}
	if (f)
		fclose(f);
	return v;
}

/* Skips unless a default krayd gets shmem THP here; returns its status flags. */
static void need_thp(kray *k)
{
	struct kray_stats st = harness_status(k);
	char mode[32] = "?";

	if (meminfo_kb("ShmemHugePages") < 0)
		cr_skip_test("no ShmemHugePages in /proc/meminfo (kernel without shmem THP)");
	if (!(st.store_huge & KRAY_STORE_THP)) {
		read_mode(mode, sizeof(mode));
		cr_skip_test("krayd could not turn on shmem transparent huge pages (%s is [%s]; "
			     "setting it needs root)",
			     SHMEM_ENABLED, mode);
	}
}

Test(thp, shmem_huge_pages_while_objects_live, .timeout = 120)
{
	struct harness h;
	kray *k = start(&h, true);
	kray_ref refs[3];
	kray_value v;
	long long before, during, pmd;
	size_t len = 100 * MiB;
	uint64_t s = 0;
	int rc;

	need_thp(k);
	before = meminfo_kb("ShmemHugePages");
	for (int i = 0; i < 3; i++) {
		void *p;

		rc = kray_create(k, len, &refs[i], &p);
		cr_assert_eq(rc, 0, "kray_create: %d %s", rc, kray_errmsg(k));
		pattern_fill(p, 0, len, 900 + (uint64_t)i);
		cr_assert_eq(kray_seal(k, &refs[i]), 0, "kray_seal: %s", kray_errmsg(k));
	}
	during = meminfo_kb("ShmemHugePages");
	cr_assert_geq(during - before, 250 * 1024,
		      "ShmemHugePages grew by %lld kB with 300 MiB of objects alive (%lld -> %lld)",
		      during - before, before, during);
	/* A reader's mapping is mapped in huge pages too. */
	rc = harness_get1(k, refs[0], 30000, &v);
	cr_assert_eq(rc, 0, "get: %d %s", rc, kray_errmsg(k));
	for (size_t off = 0; off < len; off += 4096)
		s += ((const volatile uint8_t *)v.data)[off];
	(void)s;
	pmd = smaps_kb(v.data, "ShmemPmdMapped");
	cr_assert_geq(pmd, (long long)(len / 1024) - 2048,
		      "the reader's mapping has %lld kB mapped in huge pages of %zu", pmd,
		      len / 1024);
	kray_value_clear(&v);
	kray_release(k, refs, 3);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

static void status_text(const char *sock, char *out, size_t len)
{
	const char *bin = getenv("KRAY_BIN");
	char cmd[512];
	FILE *p;
	size_t n;

	cr_assert_not_null(bin, "KRAY_BIN is not set (run through make test-integration)");
	snprintf(cmd, sizeof(cmd), "%s/kray status --socket %s 2>&1", bin, sock);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	cr_assert_eq(pclose(p), 0, "kray status failed:\n%s", out);
}

Test(thp, status_says_which_pages)
{
	struct harness on, off;
	kray *kon = start(&on, true), *koff = start(&off, false);
	struct kray_stats st;
	char mode[32] = "", out[8192];
	bool allows;

	st = harness_status(koff);
	cr_assert_eq(st.store_huge & KRAY_STORE_THP, 0, "thp off, yet the status says THP");
	status_text(off.sock, out, sizeof(out));
	cr_assert(strstr(out, "huge pages for large objects: none"), "kray status:\n%s", out);

	st = harness_status(kon);
	allows = read_mode(mode, sizeof(mode)) &&
		 (!strcmp(mode, "advise") || !strcmp(mode, "always") ||
		  !strcmp(mode, "within_size") || !strcmp(mode, "force"));
	cr_assert_eq(!!(st.store_huge & KRAY_STORE_THP), allows,
		     "thp auto with shmem_enabled [%s]: status flags %#x", mode, st.store_huge);
	status_text(on.sock, out, sizeof(out));
	cr_assert(strstr(out, allows ? "huge pages for large objects: shmem THP" :
				       "huge pages for large objects: none"),
		  "kray status with shmem_enabled [%s]:\n%s", mode, out);
}

Test(thp, off_leaves_shmem_enabled, .timeout = 60)
{
	struct harness h;
	char mode[32];
	kray *k;

	if (!saved_mode[0])
		cr_skip_test("no %s (kernel without shmem THP)", SHMEM_ENABLED);
	if (geteuid() != 0 || !write_mode("never"))
		cr_skip_test("cannot write %s (needs root and a writable /sys)", SHMEM_ENABLED);
	/* The setting is the machine's: a krayd of another run starting meanwhile (thp auto)
	 * may switch it.  One that changes it three starts in a row is this one. */
	for (int tries = 0; tries < 3; tries++) {
		cr_assert(write_mode("never"));
		k = start(&h, false);
		harness_status(k); /* krayd is serving: its start is over */
		cr_assert(read_mode(mode, sizeof(mode)));
		harness_shutdown(k);
		harness_stop_krayd(&h);
		if (!strcmp(mode, "never"))
			break;
	}
	cr_assert_str_eq(mode, "never", "krayd --thp off changed shmem_enabled to %s", mode);

	/* thp auto (the default) turns it on, as root. */
	k = start(&h, true);
	cr_assert(harness_status(k).store_huge & KRAY_STORE_THP, "thp auto did not turn THP on");
	cr_assert(read_mode(mode, sizeof(mode)));
	cr_assert_str_eq(mode, "advise", "krayd left shmem_enabled at %s", mode);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}
