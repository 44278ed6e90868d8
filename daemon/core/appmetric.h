/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's core: the application metrics of this node's processes (appmetric.c), merged
 * from their METRIC frames and served beside krayd's own on the Prometheus endpoint.
 */
#ifndef KRAYD_CORE_APPMETRIC_H
#define KRAYD_CORE_APPMETRIC_H

#include "core/krayd.h"

/* The table's bounds: metric names, and series (a metric with one tag set) in all. */
#define APPM_NAMES_MAX 1024
#define APPM_SERIES_MAX 10000

struct kray_frame_hdr;
struct kbuf;

/* A METRIC frame from a driver or worker: malformed closes the connection (conn_fail());
 * one the table cannot take (another type under that name, the table full) is dropped,
 * counted and logged, and answered with its reason when it asked (req != 0). */
int appmetric_on_frame(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
/* Appends the series in the text exposition format, and the table's own counters. */
void appmetric_render(struct krayd *d, struct kbuf *b);
void appmetric_fini(struct krayd *d);

#endif
