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
	bool mirror; /* the bundles another node (its home) placed here: link is that link */
	uint32_t link;
	unsigned rr; /* the next bundle for a task that takes any (pg_node_for()) */
	/* Home in a cluster (cluster/pgplace.c): replies awaited, since when, tries. */
	unsigned placing, attempt;
	uint64_t trying; /* the bundles this try reserves (the others are placed already) */
	bool place_failed;
	int64_t placing_since;
	struct pgroup *next;
};

/* Bundle subsets are masks: bit i for bundle i (64 bundles at most). */
struct pgroup *pg_find(struct krayd *d, const char *id, size_t len);
/* NULL when g's bundles in mask fit in what this node has free now, else why not. */
const char *pg_fits_here(struct krayd *d, const struct pgroup *g, uint64_t mask, char *why,
			 size_t len);
/* Reserves g's bundles in mask here (their node is this one); gives back those of mask
 * reserved here. */
void pg_reserve_here(struct krayd *d, struct pgroup *g, uint64_t mask);
void pg_unreserve_here(struct krayd *d, struct pgroup *g, uint64_t mask);
/* Every bundle is reserved: g is created and its held tasks go to the queue. */
void pg_placed(struct krayd *d, struct pgroup *g);
/* Gives g's resources back (ext pg_removed for other nodes'), kills its actors, fails its
 * queued tasks. */
void pg_remove(struct krayd *d, struct pgroup *g);
/* The bundles of group id its home (over link) reserves here: a mirror, not yet
 * reserved.  NULL (*why) when the bundles do not parse or the id is taken. */
struct pgroup *pg_mirror(struct krayd *d, const char *id, const char *bundles, size_t len,
			 uint32_t link, const char **why);
/* Removes g and frees it. */
void pg_drop(struct krayd *d, struct pgroup *g);
int pg_parse_bundles(struct pgroup *g, const char *s, size_t len, const char **why);
void pg_free(struct pgroup *g);
/* The node that holds the group bundle res asks for (of a group made here), or 0. */
uint32_t pg_node_for(struct krayd *d, const struct wire_resource *res, int nres);

/* Plugs placement groups into krayd d: the PG frame, the hold of tasks of pending groups,
 * the retries, the end of groups with their job. */
int pgroup_init(struct krayd *d);
void pgroup_fini(struct krayd *d);

#endif
