/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: actors (actor.c).
 */
#ifndef KRAYD_CORE_ACTOR_H
#define KRAYD_CORE_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/wire.h"

#include "core/krayd.h"

/*
 * An actor: a class instance in its own worker process.  Its method calls queue here in
 * submission order and go to its worker, at most max_concurrency at a time; a call waits
 * at the head until its arguments exist, so later calls never overtake it.  Its handle is
 * the object with the actor's id: whoever holds a reference to that object holds a
 * handle, and when the object is freed the actor ends.
 */
enum actor_state { A_PENDING, A_STARTING, A_ALIVE, A_DEAD };

struct actor {
	struct kray_oid id; /* index KRAY_OID_ACTOR */
	struct task *ctor; /* class name, job and constructor arguments */
	uint32_t owner; /* the creator's connection id */
	char *name, *ns; /* NULL: unnamed */
	bool detached, no_restart;
	bool unheld; /* no handle remains: it ends once its queued and running calls are done */
	int16_t max_restarts, max_task_retries;
	uint16_t max_concurrency;
	uint32_t slots_milli; /* CPU slots held while placed */
	struct wire_resource res[KRAY_RESOURCES_MAX]; /* custom resources held while placed */
	int nres;
	bool placed;
	enum actor_state state;
	struct worker *w;
	struct task *qhead, *qtail; /* calls not sent yet */
	unsigned inflight;
	uint16_t restarts;
	uint8_t death_err; /* enum kray_wire_err */
	char *death; /* why it died (malloc'd), once dead */
	bool done; /* dead, no handle, no process, no call: kept for listings, up to
		    * dead-actors-kept of them; older ones are freed */
	struct actor *next, **pprev; /* krayd's list */
	struct actor *done_next; /* the oldest done actors are freed first */
};

/* actor.c */
/* This node's custom resource of that name, or NULL. */
struct node_resource *node_res(struct krayd *d, const char *name);
int actor_create(struct conn *c, const struct wire_actor_create *m, struct kray_oid *ret_id,
		 const char **ret_why);
/* The same for an actor another node asked for: id and job given; c is the link. */
int actor_create_as(struct conn *c, const struct wire_actor_create *m, const struct kray_oid *id,
		    uint32_t job, const char **ret_why);
struct actor *actor_find(struct krayd *d, const struct kray_oid *id);
/* Why a dead actor died, as its calls are told. */
const char *actor_death(const struct actor *a);
struct actor *actor_by_name(struct krayd *d, const char *name, size_t len, const char *ns,
			    size_t ns_len);
int actor_kill(struct krayd *d, struct actor *a, bool no_restart);
void actor_enqueue(struct krayd *d, struct actor *a, struct task *t);
/* Takes the call with that id out of its actor's queue (not sent to the actor yet, maybe
 * still waiting for its arguments); NULL if no queue has it. */
struct task *actor_unqueue(struct krayd *d, const struct kray_oid *id);
void actor_dispatch(struct krayd *d, struct actor *a);
void actor_ctor_ready(struct krayd *d, struct actor *a);
void actor_ctor_failed(struct krayd *d, struct actor *a, uint8_t err, const char *msg, size_t len);
void actor_result(struct conn *c, struct task *t, const struct wire_result *r);
void actor_worker_ready(struct krayd *d, struct worker *w);
void actor_worker_died(struct krayd *d, struct worker *w, const char *how);
void actor_handle_gone(struct krayd *d, const struct kray_oid *id);
void actor_owner_gone(struct krayd *d, uint32_t owner);
void actor_fini(struct krayd *d);
unsigned actor_count(struct krayd *d, enum actor_state state);
void actor_describe(struct krayd *d, struct kbuf *b);

#endif
