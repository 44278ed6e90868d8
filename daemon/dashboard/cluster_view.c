// SPDX-License-Identifier: Apache-2.0
/*
 * The dashboard's cluster-wide answers (docs/dashboard.md, "In a cluster"): the node
 * serving the page asks every other live node over the node links (the cluster part's
 * gather hook, core/ext.h) for its summary or its timeline, then answers with its own
 * beside theirs.  Outside a cluster (no other node) they are this node's alone.
 *
 *   /api/v1/cluster   {"api": "v1", "nodes": [{"node_id", "workers", "tasks", "actors"}
 *                     (or {"node_id", "error"} for a node that did not answer), ...]}
 *   /api/v1/timeline  one Chrome trace: every node's events (pid = node), and
 *                     "otherData": {..., "nodes": [each node's otherData]}
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/ext.h"
#include "core/http.h"
#include "core/timeline.h"
#include "dashboard/dashboard.h"

static void reply_json(struct conn *c, struct kbuf *b)
{
	http_reply_take(c, "200 OK", "application/json", "", b);
	conn_flush_later(c);
}

static void fail(struct conn *c)
{
	static const char msg[] = "{\"error\":\"out of memory\"}\n";

	http_reply(c, "503 Service Unavailable", "application/json", "", msg, sizeof(msg) - 1);
	conn_flush_later(c);
}

static void cluster_done(struct conn *c, const struct ext_part *parts, unsigned n)
{
	struct kbuf b = { 0 };

	if (!c)
		return;
	kbuf_put(&b, "{\"api\":\"v1\",\"nodes\":[", 21);
	dash_summary(c->d, &b);
	for (unsigned i = 0; i < n; i++) {
		if (parts[i].ok && parts[i].text->len) {
			kbuf_put(&b, ",", 1);
			kbuf_put(&b, parts[i].text->data, parts[i].text->len);
		} else {
			kbuf_printf(&b,
				    ",{\"node_id\":\"%08x\",\"error\":\"it did not answer within "
				    "node-timeout-ms\"}",
				    parts[i].node);
		}
	}
	kbuf_put(&b, "]}\n", 3);
	reply_json(c, &b);
	kbuf_free(&b);
}

void dash_cluster(struct conn *c)
{
	int r = ext_gather(c, KRAY_QUERY_SUMMARY, cluster_done);

	if (r == -ENOENT)
		cluster_done(c, NULL, 0);
	else if (r)
		fail(c);
}

/* A trace's parts: its events (between "traceEvents":[ and ],"displayTimeUnit") and its
 * otherData object; false for text not of that shape. */
static bool split_trace(const char *s, size_t len, const char **ev, size_t *ev_len,
			const char **other, size_t *other_len)
{
	static const char head[] = "{\"traceEvents\":[", mid[] = "],\"displayTimeUnit\"",
			  od[] = "\"otherData\":";
	const char *m, *o;

	while (len && (s[len - 1] == '\n' || s[len - 1] == ' '))
		len--;
	if (len < sizeof(head) || memcmp(s, head, sizeof(head) - 1) || s[len - 1] != '}')
		return false;
	m = memmem(s, len, mid, sizeof(mid) - 1);
	if (!m)
		return false;
	o = memmem(m, len - (size_t)(m - s), od, sizeof(od) - 1);
	if (!o)
		return false;
	*ev = s + sizeof(head) - 1;
	*ev_len = (size_t)(m - *ev);
	*other = o + sizeof(od) - 1;
	*other_len = (size_t)(s + len - 1 - *other); /* without the trace's closing brace */
	return true;
}

/* The other nodes' timelines, kept until this node's own is rendered. */
struct merge {
	struct kbuf events, others;
};

static void timeline_merged(struct conn *c, uint64_t req, struct kbuf *own)
{
	struct merge *mg = (struct merge *)(uintptr_t)req;
	const char *ev, *other;
	size_t ev_len, other_len;
	struct kbuf b = { 0 };

	if (c && split_trace((const char *)own->data + own->off, kbuf_pending(own), &ev, &ev_len,
			     &other, &other_len)) {
		/* Room for the HTTP head in front, as the timeline leaves (no copy then). */
		kbuf_reserve(&b, TIMELINE_HEADROOM + ev_len + mg->events.len + 4096);
		b.len = b.off = TIMELINE_HEADROOM;
		kbuf_put(&b, "{\"traceEvents\":[", 16);
		kbuf_put(&b, ev, ev_len);
		if (mg->events.len) /* (each part begins with a comma) */
			kbuf_put(&b, mg->events.data + !ev_len, mg->events.len - !ev_len);
		kbuf_put(&b, "],\"displayTimeUnit\":\"ms\",\"otherData\":", 37);
		/* This node's otherData, with every node's beside it. */
		kbuf_put(&b, other, other_len - 1);
		kbuf_put(&b, ",\"nodes\":[", 10);
		kbuf_put(&b, other, other_len);
		kbuf_put(&b, mg->others.data, mg->others.len);
		kbuf_put(&b, "]}}\n", 4);
		reply_json(c, &b);
	} else if (c) {
		reply_json(c, own);
	}
	kbuf_free(&b);
	kbuf_free(&mg->events);
	kbuf_free(&mg->others);
	free(mg);
}

static void timeline_own(struct conn *c, uint64_t req, struct kbuf *b)
{
	(void)req;
	if (c)
		reply_json(c, b);
}

static void timeline_gathered(struct conn *c, const struct ext_part *parts, unsigned n)
{
	struct merge *mg;

	if (!c)
		return;
	mg = calloc(1, sizeof(*mg));
	if (!mg) {
		fail(c);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		const char *ev, *other;
		size_t ev_len, other_len;

		if (!parts[i].ok ||
		    !split_trace((const char *)parts[i].text->data, parts[i].text->len, &ev,
				 &ev_len, &other, &other_len))
			continue;
		if (ev_len) {
			kbuf_put(&mg->events, ",", 1);
			kbuf_put(&mg->events, ev, ev_len);
		}
		kbuf_put(&mg->others, ",", 1);
		kbuf_put(&mg->others, other, other_len);
	}
	if (timeline_render_async(c->d, c, (uintptr_t)mg, timeline_merged)) {
		kbuf_free(&mg->events);
		kbuf_free(&mg->others);
		free(mg);
		fail(c);
	}
}

void dash_timeline(struct conn *c)
{
	int r = ext_gather(c, KRAY_QUERY_TIMELINE, timeline_gathered);

	if (r == -ENOENT)
		r = timeline_render_async(c->d, c, 0, timeline_own);
	if (r)
		fail(c);
}
