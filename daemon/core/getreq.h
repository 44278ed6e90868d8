/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: gets and waits that wait for objects (getreq.c).
 */
#ifndef KRAYD_CORE_GETREQ_H
#define KRAYD_CORE_GETREQ_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/wire.h"

#include "core/krayd.h"

struct getreq {
	struct conn *conn; /* NULL once the connection is gone */
	uint64_t req;
	bool wait; /* a kray_wait(): answer with ready flags once `missing` reaches 0 */
	bool lazy; /* a get that may map objects lazily (its client named a userfaultfd) */
	uint32_t n, missing;
	unsigned deps; /* dep entries still pointing here */
	bool done;
	bool orphan; /* its connection went before its objects: on d->gets_gone */
	int64_t deadline_ns; /* < 0: none */
	struct kray_oid *ids;
	struct getreq *next, *prev; /* d->gets while unanswered, d->gets_gone when orphaned */
};

/* getreq.c */
void get_start(struct conn *c, uint64_t req, const struct wire_oids *ids, int64_t timeout_ms,
	       bool wait, uint32_t num_ready);
void get_expire(struct krayd *d, int64_t now);
int64_t get_next_deadline(struct krayd *d);
void get_conn_gone(struct conn *c);
/* Answers c's unanswered gets and waits with -ECANCELED: the task it runs was cancelled. */
void get_cancel_conn(struct conn *c);
/* At exit, after store_fini() dropped the objects' waiters: frees the gets orphaned by
 * their connections that still waited for objects. */
void get_fini(struct krayd *d);
/* Whether a get that waits for pending o could map it lazily (its connection has a
 * userfaultfd); get_lazy_now(): those gets take o now, lazily (store_lazy_net.c). */
bool get_lazy_wanted(struct krayd *d, struct obj *o);
/* Whether every get that would take o lazily now can map it in MINOR mode. */
bool get_lazy_minor_ok(struct krayd *d, struct obj *o);
void get_lazy_now(struct krayd *d, struct obj *o);

#endif
