/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: the Prometheus endpoint (metrics.c).
 */
#ifndef KRAYD_CORE_METRICS_H
#define KRAYD_CORE_METRICS_H

#include "core/krayd.h"

/* metrics.c: the Prometheus endpoint (when `metrics` is set) */
int metrics_init(struct krayd *d);
void metrics_fini(struct krayd *d);
void metrics_render(struct krayd *d, struct kbuf *b);

#endif
