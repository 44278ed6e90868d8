/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The web dashboard (docs/dashboard.md): a page and a versioned JSON API (/api/v1/...)
 * served by krayd on `dashboard = HOST:PORT`, off by default.  A part outside the core,
 * like the cluster: it reads the core's tables and plugs a hook table into it
 * (core/ext.h) for its own Prometheus counters; the core never calls it.
 */
#ifndef KRAYD_DASHBOARD_H
#define KRAYD_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct krayd;
struct kbuf;
struct conn;

/* Listens on d->cfg.dashboard when set.  Beyond loopback the cluster token (token, else
 * token-file) is required, and its absence is an error.  Returns 0 or -errno (logged). */
int dashboard_init(struct krayd *d);
void dashboard_fini(struct krayd *d);

/* api.c: the JSON of each /api/v1/ endpoint rendered at once (all but the timeline,
 * which core/timeline.c renders a slice per loop turn, and the history); false for an
 * unknown name. */
bool dash_api(struct krayd *d, const char *name, size_t len, struct kbuf *b);

/* api.c: this node's workers, tasks and actors, {"node_id", "workers": {...}, "tasks":
 * {...}, "actors": {...}} (each as its endpoint answers), for the head's cluster view. */
void dash_summary(struct krayd *d, struct kbuf *b);

/* cluster_view.c: GET /api/v1/cluster (every node's summary) and /api/v1/timeline (merged
 * across the nodes), answered once the other nodes did (core/ext.h ext_gather()). */
void dash_cluster(struct conn *c);
void dash_timeline(struct conn *c);

/* history.c: a sample of krayd's counters a second for the last DASH_HISTORY seconds. */
#define DASH_HISTORY 600
struct dash_history;
struct dash_history *dash_history_new(void);
int64_t dash_history_next(const struct dash_history *h); /* CLOCK_MONOTONIC ns */
void dash_history_tick(struct krayd *d, struct dash_history *h, int64_t now);
/* GET /api/v1/history: {"api", "node_id", "interval_ms", "columns": [...], "samples":
 * [[t_ms, store_bytes, ...], ...]}, oldest first. */
void dash_history_render(struct krayd *d, const struct dash_history *h, struct kbuf *b);

/* The charting library (Chart.js, Debian's libjs-chart.js), read once at start from
 * DASH_CHARTJS (or $KRAY_DASHBOARD_CHARTJS) and served as GET /chart.js; at most
 * DASH_CHARTJS_MAX bytes. */
#define DASH_CHARTJS "/usr/share/javascript/chart.js/chart.min.js"
#define DASH_CHARTJS_MAX (4u << 20)

/* page.c: the page, built into krayd. */
extern const char dash_page[];
extern const char dash_page_end[];

#endif
