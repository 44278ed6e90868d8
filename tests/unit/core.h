/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the unit tests of krayd's core modules share (tests/unit/test_store.c,
 * test_sched.c, test_task.c): a krayd of the core alone, set up as main.c does but with
 * no loop, no workers and no parts plugged in besides a probe table (core/ext.h) that
 * counts the hooks the core calls.  They link the core's objects only, which the layering
 * makes possible (docs/ARCHITECTURE.md, "Layers").
 */
#ifndef KRAY_TESTS_UNIT_CORE_H
#define KRAY_TESTS_UNIT_CORE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/krayd.h"
#include "core/proto.h"
#include "core/sched.h"
#include "core/store.h"
#include "core/task.h"
#include "core/worker.h"

struct probe {
	unsigned published, withdrawn, settled, placed, exec_sent, claims, handles_gone;
	bool refuse_claims; /* worker_claim answers false */
	bool place_custom; /* place takes tasks that need custom resources */
	struct kray_oid last_handle;
};

extern struct krayd d;
extern struct probe probe;
extern char tmpdir[64];

/* A core of its own in a fresh temporary directory (spill files go there); extra flags
 * as krayd takes them (NULL-terminated). */
void core_setup(const char *const *flags);
void core_teardown(void);
/* A client connection of the core (not on a socket: its output stays in c->out). */
struct conn *core_client(void);
void core_client_free(struct conn *c);

#endif
