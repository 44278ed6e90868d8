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
	uint32_t n, missing;
	unsigned deps; /* dep entries still pointing here */
	bool done;
	int64_t deadline_ns; /* < 0: none */
	struct kray_oid *ids;
	struct getreq *next, *prev; /* d->gets, when it has a deadline */
};

/* getreq.c */
void get_start(struct conn *c, uint64_t req, const struct wire_oids *ids, int64_t timeout_ms,
	       bool wait, uint32_t num_ready);
void get_expire(struct krayd *d, int64_t now);
int64_t get_next_deadline(struct krayd *d);
void get_conn_gone(struct conn *c);

#endif
