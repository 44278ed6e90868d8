// SPDX-License-Identifier: Apache-2.0
/*
 * A kray driver for the qemu guest (tests/kmod/kray-guest.sh runs it): it talks to a krayd
 * that has /dev/kray and checks that large objects go through the module.
 *
 *   kmod_driver get kmod     put a 1 MiB object; it must be in the module (a direct
 *                            KRAY_IOC_GET of its id returns its bytes); kray_get and
 *                            kray_wait must answer from the module alone (they do while
 *                            krayd is stopped, SIGSTOP to $KRAYD_PID); krayd must count the
 *                            view as pinned (the KMOD_PIN frame) and, after the release,
 *                            have withdrawn the object
 *   kmod_driver get socket   the same with KRAY_KMOD=0, krayd running: kray_get goes
 *                            through krayd, with the same bytes and the same pin count
 *   kmod_driver hold FILE    put a 1 MiB object, create FILE, then sleep until killed
 *   kmod_driver count        print "objects=N": what the module's table holds
 *
 * Connects to $KRAY_ADDRESS.  Prints "KRAY-DRIVER ok ..." or "KRAY-DRIVER FAIL ..." and
 * exits 0 only when every check passed.
 */
#include <kray/kray.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "uapi/kray_kmod.h"
#include "../fixtures/pattern.h"

#define SIZE (1u << 20)
#define SEED 77

static int fails;

#define CHECK(c)                                                                                  \
	do {                                                                                      \
		if (!(c)) {                                                                       \
			printf("KRAY-DRIVER FAIL line %d: %s (errno %d)\n", __LINE__, #c, errno); \
			fails++;                                                                  \
		}                                                                                 \
	} while (0)

static int table_objects(void)
{
	struct kray_kmod_version v = { 0 };
	int fd = open(KRAY_KMOD_DEVICE, O_RDWR | O_CLOEXEC);

	if (fd < 0 || ioctl(fd, KRAY_IOC_VERSION, &v))
		return -1;
	close(fd);
	return (int)v.objects;
}

static int check_bytes(const uint8_t *p, size_t size)
{
	for (size_t i = 0; i < size; i++)
		if (p[i] != pattern_byte(SEED, i))
			return 0;
	return 1;
}

static int put_big(kray *k, kray_ref *ret)
{
	uint8_t *buf = malloc(SIZE);
	kray_value v = KRAY_V_BYTES(buf, SIZE);
	int r;

	pattern_fill(buf, 0, SIZE, SEED);
	r = kray_put(k, &v, ret);
	free(buf);
	return r;
}

/* The module holds the object under its id: get it directly, as any process of our uid. */
static int direct_get_ok(const kray_ref *ref)
{
	struct kray_kmod_get a = { .size = sizeof(a) };
	int dev = open(KRAY_KMOD_DEVICE, O_RDWR | O_CLOEXEC), ok;
	void *p;

	memcpy(&a.oid, ref, sizeof(a.oid));
	if (dev < 0 || ioctl(dev, KRAY_IOC_GET, &a))
		return 0;
	close(dev);
	p = mmap(NULL, a.ret_size, PROT_READ, MAP_SHARED, a.ret_fd, 0);
	close(a.ret_fd);
	if (p == MAP_FAILED)
		return 0;
	ok = a.ret_size == SIZE && check_bytes(p, SIZE);
	munmap(p, a.ret_size);
	return ok;
}

static int do_get(int via_kmod)
{
	struct kray_stats st;
	kray_value v;
	kray_ref ref;
	uint8_t ready = 0;
	size_t nready = 0;
	int before = table_objects();
	kray *k;

	CHECK(before >= 0);
	CHECK(kray_init(&k, NULL) == 0);
	if (fails)
		return 1;
	CHECK(put_big(k, &ref) == 0);
	CHECK(kray_status(k, &st) == 0); /* krayd has sealed (and published) it */
	CHECK(table_objects() == before + 1);
	CHECK(direct_get_ok(&ref));

	/* Through the module, krayd has nothing to do with it: stop krayd meanwhile. */
	pid_t krayd = getenv("KRAYD_PID") ? (pid_t)atoi(getenv("KRAYD_PID")) : 0;
	kray_value v2;

	CHECK(!via_kmod || krayd > 0);
	if (via_kmod && krayd > 0)
		CHECK(kill(krayd, SIGSTOP) == 0);
	CHECK(kray_get(k, &ref, 1, 5000, &v) == 0);
	CHECK(v.type == KRAY_BYTES && v.len == SIZE && check_bytes(v.data, SIZE));
	/* A second get while mapped reuses the mapping either way. */
	CHECK(kray_get(k, &ref, 1, 5000, &v2) == 0 && v2.data == v.data);
	kray_value_clear(&v2);
	CHECK(kray_wait(k, &ref, 1, 1, 0, &ready, &nready) == 0 && ready == 1 && nready == 1);
	if (via_kmod && krayd > 0)
		CHECK(kill(krayd, SIGCONT) == 0);
	CHECK(kray_status(k, &st) == 0);
	/* krayd counts the view as pinned on both paths (through the module, from the
	 * KMOD_PIN frame that went with the status request). */
	printf("KRAY-INFO get via %s: krayd counts %llu pinned objects\n",
	       via_kmod ? "/dev/kray" : "the socket", (unsigned long long)st.objects_pinned);
	CHECK(st.objects_pinned == 1);
	kray_value_clear(&v);
	CHECK(kray_release(k, &ref, 1) == 0);
	CHECK(kray_status(k, &st) == 0);
	CHECK(st.objects_pinned == 0);
	/* Freed by krayd, so withdrawn from the module. */
	CHECK(table_objects() == before);
	kray_shutdown(k);
	if (!fails)
		printf("KRAY-DRIVER ok get via %s\n", via_kmod ? "kmod" : "socket");
	return fails ? 1 : 0;
}

static int do_hold(const char *file)
{
	kray_ref ref;
	struct kray_stats st;
	kray *k;
	int fd;

	CHECK(kray_init(&k, NULL) == 0);
	if (fails)
		return 1;
	CHECK(put_big(k, &ref) == 0);
	CHECK(kray_status(k, &st) == 0);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && !strcmp(argv[1], "get"))
		return do_get(!strcmp(argv[2], "kmod"));
	if (argc == 3 && !strcmp(argv[1], "hold"))
		return do_hold(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "count")) {
		printf("objects=%d\n", table_objects());
		return 0;
	}
	fprintf(stderr, "usage: kmod_driver get kmod|socket | hold FILE | count\n");
	return 2;
}
