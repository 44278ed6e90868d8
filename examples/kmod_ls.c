// SPDX-License-Identifier: Apache-2.0
/*
 * kmod_ls: what the /dev/kray kernel table holds (docs/kmod.md) - the module's version and
 * limits, then one line per object your uid published (every object, as root): its id,
 * the node whose krayd published it, its scope, its size, and whether that krayd is gone
 * (an orphan).  A small user of the ioctl ABI in include/uapi/kray_kmod.h.
 *
 *	build/examples/kmod_ls [NODE]       (NODE in hex, as krayd's log prints it)
 *
 * Exits 0, or 1 when the module is not loaded (and says so).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "uapi/kray_kmod.h"

int main(int argc, char **argv)
{
	struct kray_kmod_version v = { 0 };
	struct kray_kmod_list l = { .size = sizeof(l) };
	struct kray_kmod_entry *e = NULL;
	int dev = open(KRAY_KMOD_DEVICE, O_RDWR | O_CLOEXEC);

	if (dev < 0) {
		printf("%s: %s (the module is not loaded: kray uses its socket)\n",
		       KRAY_KMOD_DEVICE, strerror(errno));
		return 1;
	}
	if (argc > 1)
		l.node = (uint32_t)strtoul(argv[1], NULL, 16);
	if (ioctl(dev, KRAY_IOC_VERSION, &v)) {
		perror("KRAY_IOC_VERSION");
		return 1;
	}
	printf("%s: ABI %u, %llu of %llu bytes, %u of %u objects\n", KRAY_KMOD_DEVICE, v.abi,
	       (unsigned long long)v.used_bytes, (unsigned long long)v.max_bytes, v.objects,
	       v.max_objects);
	/* Count, then fetch; objects may come and go in between, so ask for what fits. */
	if (ioctl(dev, KRAY_IOC_LIST, &l)) {
		perror("KRAY_IOC_LIST");
		return 1;
	}
	l.max = l.ret_total < KRAY_KMOD_LIST_MAX ? l.ret_total : KRAY_KMOD_LIST_MAX;
	if (l.max) {
		e = calloc(l.max, sizeof(*e));
		if (!e)
			return 1;
		l.entries = (uintptr_t)e;
		if (ioctl(dev, KRAY_IOC_LIST, &l)) {
			perror("KRAY_IOC_LIST");
			return 1;
		}
	}
	for (uint32_t i = 0; i < l.max && i < l.ret_total; i++)
		printf("  %08x.%u.%u.%u  node %08x  %s %u  %llu bytes%s\n", e[i].oid.node,
		       e[i].oid.owner, e[i].oid.seq, e[i].oid.index, e[i].node,
		       e[i].scope == KRAY_KMOD_SCOPE_UID ? "uid" : "job", e[i].scope_id,
		       (unsigned long long)e[i].size,
		       e[i].flags & KRAY_KMOD_ENTRY_ORPHAN ? "  (orphan: its krayd is gone)" : "");
	free(e);
	close(dev);
	return 0;
}
