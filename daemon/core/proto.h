/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: frames from clients and workers (proto.c).
 */
#ifndef KRAYD_CORE_PROTO_H
#define KRAYD_CORE_PROTO_H

#include <stdbool.h>
#include <stdint.h>

#include "../../common/wire.h"

#include "core/krayd.h"

/* proto.c: frames from clients and workers */
/* The ACTOR_REPLY to a client's ACTOR_CREATE, GET_ACTOR or KILL. */
void actor_reply(struct conn *c, uint64_t req, int status, const struct kray_oid *id,
		 const char *why);
/* Has fn answer frames of this type from clients and workers (a part outside the core:
 * the fast path's, KMOD_PIN, KV).  fn returns 0, or conn_fail()'s code. */
void proto_on(struct krayd *d, uint16_t type, proto_handler fn);
/* The counters a STATUS answers (kray_status()): d->st with the gauges filled in. */
void proto_stats(struct krayd *d, struct kray_wire_stats *ret);
int proto_handle(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
/* Clients' and workers' connections; proto_accepted() makes one for an accepted fd. */
extern const struct conn_kind proto_client;
void proto_accepted(struct krayd *d, int fd);
int proto_release(struct conn *c, const uint8_t *body, uint32_t len);
void proto_conn_gone(struct conn *c);

#endif
