// SPDX-License-Identifier: Apache-2.0
/*
 * libkray's side of /dev/kray (kmod/, docs/kmod.md).  Where the module is loaded, krayd
 * publishes its large objects there, and a get of one that this process does not have
 * yet is one ioctl (the module installs a read-only fd of the sealed memfd here) instead
 * of a GET round trip through krayd's loop.  Anything the module does not hold for us -
 * small objects, pending ones, spilled ones, another uid's, or everything when the module
 * is not loaded - goes to krayd over the socket as before.
 *
 * Same answers on both paths:
 *  - krayd answers a get only for refs the asking process holds, and the module knows no
 *    refs, so this file keeps count of the refs this process holds that may be large
 *    (task returns and large creates, +1 each, -1 per release) and asks the module only
 *    for those; any other ref goes to krayd, which says what it says today.
 *  - A view krayd hands out is pinned until the process unmaps it.  A view taken through
 *    the module is reported with a KMOD_PIN frame, queued with the next request (no
 *    round trip), so krayd pins it the same way and the usual UNPIN undoes it.  Until
 *    krayd reads it the object cannot be spilled anyway: the module refuses to withdraw
 *    an object whose fd or mapping is alive, and krayd asks it before spilling.
 *
 * $KRAY_KMOD=0 makes libkray ignore the module (benchmarks and tests compare both paths).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client.h"
#include "uapi/kray_kmod.h"

static void kmod_open(struct kray *k)
{
	const char *env = getenv("KRAY_KMOD");
	struct kray_kmod_version v = { 0 };
	int fd;

	if (k->kmod_fd >= 0 || (env && !strcmp(env, "0")))
		return;
	fd = open(KRAY_KMOD_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return; /* not loaded: the socket path */
	if (ioctl(fd, KRAY_IOC_VERSION, &v) || v.abi != KRAY_KMOD_ABI) {
		close(fd);
		return;
	}
	k->kmod_fd = fd;
}

static void kmod_close(struct kray *k)
{
	if (k->kmod_fd >= 0)
		close(k->kmod_fd);
	k->kmod_fd = -1;
	oidmap_free(&k->held);
}

void kc_kmod_hold(struct kray *k, const kray_ref *refs, size_t n)
{
	bool fresh;

	if (k->kmod_fd < 0)
		return; /* without the module nothing asks: keep nothing */
	/* Without memory a ref is not counted: the module is then not asked for it (krayd
	 * answers), which is always correct. */
	for (size_t i = 0; i < n; i++) {
		uint64_t *c = oidmap_upsert(&k->held, (const struct kray_oid *)&refs[i], &fresh);

		if (c)
			(*c)++;
	}
}

void kc_kmod_unhold(struct kray *k, const kray_ref *refs, size_t n)
{
	if (k->kmod_fd < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		const struct kray_oid *id = (const struct kray_oid *)&refs[i];
		uint64_t *c = oidmap_get(&k->held, id);

		if (c && --*c == 0)
			oidmap_del(&k->held, id);
	}
}

/* Queues a KMOD_PIN for id: krayd counts the view as it counts one it handed out.  0 or
 * -ENOMEM. */
static int queue_pin(struct kray *k, const kray_ref *id)
{
	struct kray_msg_refs m = { .n = 1 };
	size_t off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_KMOD_PIN, 0, WIRE_FIXED(m),
				     WIRE_RAW(id, sizeof(*id)));

	return kc_end(k, off);
}

bool kc_kmod_get(struct kray *k, const kray_ref *id, kray_value *ret)
{
	struct kray_kmod_get a = { .size = sizeof(a) };
	const char *why;
	struct view *vw;
	uint64_t *slot;

	if (k->kmod_fd < 0 || k->broken || !oidmap_get(&k->held, (const struct kray_oid *)id))
		return false;
	memcpy(&a.oid, id, sizeof(a.oid));
	slot = oidmap_get(&k->views, (const struct kray_oid *)id);
	if (slot) {
		/* Mapped here already: the module only needs to confirm it still holds it
		 * (krayd would pin it again, and this process unpin it at once). */
		if (!kc_kmod_all_ready(k, id, 1))
			return false;
		kc_view_value((struct view *)(uintptr_t)*slot, ret);
		return true;
	}
	if (ioctl(k->kmod_fd, KRAY_IOC_GET, &a))
		return false; /* ENOENT, EACCES: krayd knows what to answer */
	vw = kc_map_fd(k, id, a.ret_fd, a.ret_size, false, &why);
	close(a.ret_fd);
	if (!vw)
		return false; /* krayd's answer will say why */
	if (queue_pin(k, id)) { /* out of memory: no view here, krayd answers */
		oidmap_del(&k->views, (const struct kray_oid *)id);
		munmap(vw->addr, vw->maplen);
		free(vw);
		return false;
	}
	kc_view_value(vw, ret);
	return true;
}

bool kc_kmod_all_ready(struct kray *k, const kray_ref *refs, size_t n)
{
	struct kray_kmod_wait a = { .size = sizeof(a),
				    .n = (uint32_t)n,
				    .k = (uint32_t)n,
				    .timeout_ms = 0,
				    .ids = (uintptr_t)refs };
	uint8_t stack[64], *ready = stack;
	int r;

	if (k->kmod_fd < 0 || k->broken || !n || n > KRAY_KMOD_WAIT_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!oidmap_get(&k->held, (const struct kray_oid *)&refs[i]))
			return false; /* krayd answers for refs not held here */
	if (n > sizeof(stack) && !(ready = malloc(n)))
		return false;
	a.ready = (uintptr_t)ready;
	r = ioctl(k->kmod_fd, KRAY_IOC_WAIT, &a);
	if (ready != stack)
		free(ready);
	return r == (int)n;
}

const struct kc_layer kc_kmod_layer = {
	.name = "kmod",
	.on_hello = kmod_open,
	.on_hold = kc_kmod_hold,
	.on_close = kmod_close,
};
