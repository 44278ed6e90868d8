/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The task timeline (timeline.c): a ring of the last `timeline-events` tasks this node's
 * workers ran, one record per task written when its result arrives, and its rendering as
 * Chrome trace JSON (`kray timeline`, kray.timeline(), docs/timeline.md).
 */
#ifndef KRAYD_CORE_TIMELINE_H
#define KRAYD_CORE_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

struct krayd;
struct kbuf;
struct task;
struct conn;
struct wire_result;

/* Allocates the ring of d->cfg.timeline_events records (0: the timeline is off).  Returns
 * 0 or -ENOMEM. */
int timeline_init(struct krayd *d);
void timeline_fini(struct krayd *d);

/* Worker wid sent t's result r now: one record (overwriting the oldest when the ring is
 * full), FAILED when t was cancelled, r is one error value (its text kept too, for the
 * last TL_ERRORS failures) or the function raised (KRAY_RESULT_RAISED). */
void timeline_result(struct krayd *d, const struct task *t, uint32_t wid,
		     const struct wire_result *r);

/* A fast call worker wid ran (FAST_COUNT's records: krayd did not see it run), of function
 * fn, for actor (NULL: a task): one record, as timeline_result() makes for its own. */
struct kray_fast_run;
struct fnstat;
struct kray_oid;
void timeline_fast(struct krayd *d, const struct kray_fast_run *run, struct fnstat *fn,
		   uint32_t wid, const struct kray_oid *actor);

/* Registers the timer that renders requests (after timeline_init(), with the loop's).
 * Returns 0 or -ENOSPC. */
int timeline_start(struct krayd *d);

/* What an answer goes to: c, req (the request's id, as given), b the JSON; c and b NULL
 * when the connection closed before the answer was whole (req's state may be freed).  b
 * has TIMELINE_HEADROOM bytes free before the JSON (b->off), so that a reply's head can
 * be written in front of it; done may take b's memory (leaving *b zeroed) rather than
 * copy 3 MB (proto.c, http_reply_take()). */
#define TIMELINE_HEADROOM 512
typedef void (*timeline_done_fn)(struct conn *c, uint64_t req, struct kbuf *b);

/* Answers c with the ring and the tasks not ended yet as Chrome trace JSON:
 * {"traceEvents": [...]}, oldest first: one "X" (complete) event per task, pid = node,
 * tid = worker (0: queued), and "M" events naming them.  What is shown is copied now;
 * it is rendered a slice per loop turn and done(c, req, json) runs once it is whole
 * (at once with the timeline off), or done(NULL, req, NULL) if c closed before.  Returns
 * 0 or -ENOMEM (done not called). */
int timeline_render_async(struct krayd *d, struct conn *c, uint64_t req, timeline_done_fn done);

#endif
