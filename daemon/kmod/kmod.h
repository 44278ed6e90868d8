/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's glue to /dev/kray, the optional kernel object table (docs/kmod.md): large
 * objects sealed in memory are published there, so that local readers get them in one
 * ioctl.  kmod_init() plugs it into the core (core/ext.h) whether or not the device is
 * there; without it (or with kmod = 0) every hook does nothing.
 */
#ifndef KRAYD_KMOD_H
#define KRAYD_KMOD_H

struct krayd;

void kmod_init(struct krayd *d);
void kmod_fini(struct krayd *d);

#endif
