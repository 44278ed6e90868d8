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

/* Allocates the ring of d->cfg.timeline_events records (0: the timeline is off).  Returns
 * 0 or -ENOMEM. */
int timeline_init(struct krayd *d);
void timeline_fini(struct krayd *d);

/* Worker wid sent t's result now, after run_ns on its CPU (the worker's own measure);
 * failed: the result is an error.  Overwrites the oldest record when the ring is full. */
void timeline_note(struct krayd *d, const struct task *t, uint32_t wid, uint64_t run_ns,
		   bool failed);

/* The ring as Chrome trace JSON: {"traceEvents": [...]}, oldest first: one "X" (complete)
 * event per task, pid = node, tid = worker, and "M" events naming them. */
void timeline_render(struct krayd *d, struct kbuf *b);

#endif
