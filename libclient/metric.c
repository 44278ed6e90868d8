// SPDX-License-Identifier: Apache-2.0
/*
 * Application metrics (kray.h's kray_metric_record()): each update is checked here, its
 * tags put in krayd's one spelling (pairs "key\0value\0", keys ascending) and queued as a
 * METRIC frame with the other requests.  Summing a process's updates between flushes is
 * the caller's (kray.util.metrics does it); krayd keeps the node's table
 * (daemon/core/appmetric.c).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

_Static_assert(KRAY_METRIC_MAX_TAGS == KRAY_METRIC_TAGS_MAX, "kray.h agrees with the wire");
_Static_assert(KRAY_METRIC_MAX_BOUNDARIES == KRAY_METRIC_BOUNDS_MAX, "kray.h agrees");
_Static_assert(KRAY_COUNTER == KRAY_METRIC_COUNTER && KRAY_GAUGE == KRAY_METRIC_GAUGE &&
		       KRAY_HISTOGRAM == KRAY_METRIC_HISTOGRAM,
	       "kray.h's types are the wire's");

/* Checks m and fills the frame's header; the tags go to tags (sorted).  0 or -EINVAL. */
static int prepare(struct kray *k, const struct kray_metric *m, struct kray_msg_metric *ret,
		   struct kbuf *tags)
{
	size_t name_len, help_len, order[KRAY_METRIC_TAGS_MAX];
	const char *help;

	if (!m)
		return kc_fail(k, -EINVAL, "no metric");
	if (m->type < KRAY_COUNTER || m->type > KRAY_HISTOGRAM)
		return kc_fail(k, -EINVAL,
			       "a metric's type is KRAY_COUNTER, KRAY_GAUGE or "
			       "KRAY_HISTOGRAM");
	name_len = m->name ? strlen(m->name) : 0;
	if (!wire_metric_name_ok(m->name, name_len))
		return kc_fail(k, -EINVAL,
			       "metric name '%.*s': 1 to %d of [a-zA-Z0-9_:], not starting with "
			       "a digit",
			       (int)(name_len > 64 ? 64 : name_len), m->name ? m->name : "",
			       KRAY_METRIC_NAME_MAX);
	help = m->description ? m->description : "";
	help_len = strlen(help);
	if (help_len > KRAY_METRIC_HELP_MAX)
		return kc_fail(k, -EINVAL, "metric %s: a description is at most %d bytes", m->name,
			       KRAY_METRIC_HELP_MAX);
	if ((m->type == KRAY_HISTOGRAM) != (m->nboundaries != 0) ||
	    m->nboundaries > KRAY_METRIC_BOUNDS_MAX || (m->nboundaries && !m->boundaries))
		return kc_fail(k, -EINVAL,
			       "metric %s: a histogram has 1 to %d boundaries, other metrics none",
			       m->name, KRAY_METRIC_BOUNDS_MAX);
	for (size_t i = 0; i < m->nboundaries; i++)
		if (!isfinite(m->boundaries[i]) ||
		    (i && !(m->boundaries[i] > m->boundaries[i - 1])))
			return kc_fail(k, -EINVAL,
				       "metric %s: boundaries are finite and strictly ascending",
				       m->name);
	if (m->ntags > KRAY_METRIC_TAGS_MAX || (m->ntags && (!m->tag_keys || !m->tag_values)))
		return kc_fail(k, -EINVAL, "metric %s: at most %d tags", m->name,
			       KRAY_METRIC_TAGS_MAX);
	for (size_t i = 0; i < m->ntags; i++) {
		const char *key = m->tag_keys[i], *val = m->tag_values[i];
		size_t j = i;

		if (!key || !wire_metric_key_ok(key, strlen(key)))
			return kc_fail(k, -EINVAL,
				       "metric %s: tag key '%.64s' is not a label name "
				       "([a-zA-Z_][a-zA-Z0-9_]*, up to %d bytes) or is reserved "
				       "(le, __*)",
				       m->name, key ? key : "", KRAY_METRIC_KEY_MAX);
		if (!val || strlen(val) > KRAY_METRIC_VALUE_MAX)
			return kc_fail(k, -EINVAL, "metric %s: tag %s's value is up to %d bytes",
				       m->name, key, KRAY_METRIC_VALUE_MAX);
		while (j && strcmp(m->tag_keys[order[j - 1]], key) > 0) { /* insertion sort */
			order[j] = order[j - 1];
			j--;
		}
		if (j && !strcmp(m->tag_keys[order[j - 1]], key))
			return kc_fail(k, -EINVAL, "metric %s: tag %s given twice", m->name, key);
		order[j] = i;
	}
	for (size_t i = 0; i < m->ntags; i++) {
		const char *key = m->tag_keys[order[i]], *val = m->tag_values[order[i]];

		kbuf_put(tags, key, strlen(key) + 1);
		kbuf_put(tags, val, strlen(val) + 1);
	}
	if (tags->nomem)
		return kc_fail(k, -ENOMEM, "out of memory");
	*ret = (struct kray_msg_metric){ .kind = (uint8_t)m->type,
					 .name_len = (uint8_t)name_len,
					 .ntags = (uint8_t)m->ntags,
					 .nbounds = (uint8_t)m->nboundaries,
					 .help_len = (uint16_t)help_len,
					 .tags_len = (uint16_t)tags->len };
	return 0;
}

KRAY_EXPORT int kray_metric_record(kray *k, const struct kray_metric *m, double value,
				   const uint64_t *buckets)
{
	struct kray_msg_metric h;
	struct kbuf tags = { 0 };
	uint64_t one[KRAY_METRIC_BOUNDS_MAX + 1] = { 0 };
	size_t off;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	r = prepare(k, m, &h, &tags);
	if (r)
		goto out;
	r = -EINVAL;
	if (m->type == KRAY_COUNTER && !(value > 0 && isfinite(value))) {
		kc_fail(k, r, "metric %s: a counter goes up by a finite value > 0", m->name);
		goto out;
	}
	if (m->type == KRAY_HISTOGRAM) {
		if (!buckets) { /* one observation: the first bucket whose bound is >= it */
			size_t i = 0;

			while (i < m->nboundaries && !(value <= m->boundaries[i]))
				i++;
			one[i] = 1;
			buckets = one;
		}
		for (size_t i = 0; i <= m->nboundaries; i++) {
			if (buckets[i] > UINT64_MAX - h.count) {
				kc_fail(k, r, "metric %s: bucket counts overflow", m->name);
				goto out;
			}
			h.count += buckets[i];
		}
		if (isnan(value)) {
			kc_fail(k, r, "metric %s: a histogram's sum is not NaN", m->name);
			goto out;
		}
	}
	memcpy(&h.value, &value, sizeof(value));
	off = k->out.len;
	wire_put_metric(&k->out, 0, &h, m->name, m->description ? m->description : "",
			(const char *)tags.data, m->boundaries, buckets);
	r = k->out.len > off ? 0 : kc_fail(k, -ENOMEM, "out of memory queuing a metric");
out:
	kbuf_free(&tags);
	return r;
}

KRAY_EXPORT int kray_metric_define(kray *k, const struct kray_metric *m)
{
	struct kray_msg_metric h;
	struct kbuf tags = { 0 };
	struct kray_metric decl;
	struct kray_frame_hdr rh;
	struct wire_text t;
	const uint8_t *body;
	uint64_t req;
	size_t off;
	int r;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!m)
		return kc_fail(k, -EINVAL, "no metric");
	decl = *m;
	decl.ntags = 0; /* a declaration carries no series */
	r = prepare(k, &decl, &h, &tags);
	kbuf_free(&tags);
	if (r)
		return r;
	h.flags = KRAY_METRIC_DEFINE;
	req = ++k->next_req;
	off = k->out.len;
	wire_put_metric(&k->out, req, &h, m->name, m->description ? m->description : "", NULL,
			m->boundaries, NULL);
	if (k->out.len == off)
		return kc_fail(k, -ENOMEM, "out of memory queuing a metric");
	r = kc_wait(k, KRAY_MSG_TEXT_REPLY, req, &rh, &body);
	if (r)
		return r;
	if (wire_dec_error(body, rh.len, &t)) {
		kc_consume(k, &rh);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed metric reply from krayd");
	}
	r = t.code > 0 ? -EPROTO : t.code;
	if (r)
		kc_fail(k, r, "%.*s", (int)t.len, t.text);
	kc_consume(k, &rh);
	return r;
}
