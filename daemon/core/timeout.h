/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: task timeouts (timeout.c).
 */
#ifndef KRAYD_CORE_TIMEOUT_H
#define KRAYD_CORE_TIMEOUT_H

#include "core/krayd.h"

struct task;

/* t (with a timeout_ms) was sent to an idle worker: its deadline starts now. */
void timeout_arm(struct krayd *d, struct task *t);
/* Registers the timer with the loop. */
int timeout_init(struct krayd *d);

#endif
