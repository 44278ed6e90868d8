/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: placement groups (pgroup.c, docs/util.md).  A group's bundles reserve CPU
 * slots and custom resources of this node; while it holds them the node has the group's
 * own resources, named as Ray names them: NAME_group_I_ID for bundle I, NAME_group_ID for
 * any bundle, and bundle_group_I_ID / bundle_group_ID (1 per bundle).  Tasks and actors in
 * the group ask for those (the client renames their resources), so the scheduler needs
 * nothing of its own for groups; a task that asks for a group still pending waits here.
 */
#ifndef KRAYD_CORE_PGROUP_H
#define KRAYD_CORE_PGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "core/krayd.h"

enum pg_state { PG_PENDING, PG_CREATED, PG_REMOVED };

struct pg_bundle {
	struct wire_resource res[KRAY_RESOURCES_MAX]; /* CPU among them, as given */
	int nres;
	uint32_t node; /* where it is reserved (0: not yet) */
};

struct pgroup {
	char id[KRAY_PG_ID_LEN + 1];
	char *name; /* NULL: unnamed */
	uint8_t strategy; /* enum kray_pg_strategy */
	enum pg_state state;
	bool detached;
	uint32_t job; /* its creator's job: the group goes with it unless detached */
	int nb;
	struct pg_bundle *b;
	char why[160]; /* pending: what it waits for */
	struct task *held; /* tasks that asked for it while pending */
	struct pgroup *next;
};

/* Plugs placement groups into krayd d: the PG frame, the hold of tasks of pending groups,
 * the retries, the end of groups with their job. */
int pgroup_init(struct krayd *d);
void pgroup_fini(struct krayd *d);

#endif
