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

struct krayd;
struct kbuf;

/* Listens on d->cfg.dashboard when set.  Beyond loopback the cluster token (token, else
 * token-file) is required, and its absence is an error.  Returns 0 or -errno (logged). */
int dashboard_init(struct krayd *d);
void dashboard_fini(struct krayd *d);

/* api.c: the JSON of each /api/v1/ endpoint; false for an unknown name. */
bool dash_api(struct krayd *d, const char *name, size_t len, struct kbuf *b);

/* page.c: the page, built into krayd. */
extern const char dash_page[];
extern const char dash_page_end[];

#endif
