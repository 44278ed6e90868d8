// SPDX-License-Identifier: Apache-2.0
/*
 * Application metrics (kray.util.metrics, kray_metric_record()): the node's table of
 * series, fed by METRIC frames and rendered on the Prometheus endpoint as Ray's are,
 * ray_<name> (docs/observability.md says why the prefix is Ray's).
 *
 * Each process sums its own updates and sends only what changed since its last flush:
 * a counter's increment, a gauge's last value, a histogram's new observations per bucket.
 * Here they merge across the node's processes: counters and histograms add, a gauge keeps
 * the last value any process set (one series per tag set, as a node-wide gauge).  A metric
 * keeps the type (and a histogram its boundaries) of its first frame; a frame of another
 * is refused.  The table is bounded (APPM_NAMES_MAX names, APPM_SERIES_MAX series): past
 * it, new series are dropped and counted (kray_app_metric_dropped_total), existing ones
 * still update.  Nothing expires: a series lives as long as krayd, as a Prometheus
 * counter must.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/appmetric.h"
#include "core/log.h"
#include "../common/wire.h"

#define FAM_HASH 2048
#define SERIES_HASH 16384

struct am_series {
	struct am_series *next; /* in its family, in order of arrival */
	struct am_series *hnext; /* in its hash chain */
	struct am_family *fam;
	uint32_t hash;
	uint16_t tags_len;
	uint8_t ntags;
	double value; /* counter: total; gauge: last value; histogram: sum */
	uint64_t count; /* histogram: observations */
	uint64_t *buckets; /* histogram: nbounds + 1 (not cumulative) */
	char tags[]; /* tags_len bytes: "key\0value\0" pairs, keys ascending */
};

struct am_family {
	struct am_family *hnext;
	uint32_t hash;
	uint8_t kind, nbounds, name_len;
	char name[KRAY_METRIC_NAME_MAX + 1];
	char *help;
	double *bounds;
	struct am_series *series, **tail;
};

struct appmetrics {
	struct am_family *fam[APPM_NAMES_MAX]; /* in order of arrival */
	unsigned nfam, nseries;
	struct am_family *fhash[FAM_HASH];
	struct am_series *shash[SERIES_HASH];
	uint64_t updates, dropped, refused;
};

static uint32_t fnv(uint32_t h, const void *p, size_t n)
{
	const uint8_t *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 16777619u;
	return h;
}

static struct am_family *fam_find(struct appmetrics *a, const char *name, uint8_t len, uint32_t h)
{
	for (struct am_family *f = a->fhash[h % FAM_HASH]; f; f = f->hnext)
		if (f->hash == h && f->name_len == len && !memcmp(f->name, name, len))
			return f;
	return NULL;
}

static const char *const suffixes[4][4] = {
	[KRAY_METRIC_COUNTER] = { "_total" },
	[KRAY_METRIC_GAUGE] = { "" },
	[KRAY_METRIC_HISTOGRAM] = { "_bucket", "_sum", "_count" },
};

/* Another family whose series would carry a name of a new one (kind, name), as a gauge
 * "x_count" and a histogram "x" would: Prometheus refuses a scrape where a name repeats.
 * Each name the new one renders is split every way another family could render it. */
static const struct am_family *clash(struct appmetrics *a, uint8_t kind, const char *name,
				     size_t len)
{
	for (unsigned i = 0; i < 3 && suffixes[kind][i]; i++) {
		char full[KRAY_METRIC_NAME_MAX + 8];
		size_t n = len + strlen(suffixes[kind][i]);

		memcpy(full, name, len);
		memcpy(full + len, suffixes[kind][i], n - len);
		for (uint8_t k = KRAY_METRIC_COUNTER; k <= KRAY_METRIC_HISTOGRAM; k++) {
			for (unsigned j = 0; j < 3 && suffixes[k][j]; j++) {
				size_t sl = strlen(suffixes[k][j]);
				const struct am_family *f;

				if (n <= sl || n - sl > KRAY_METRIC_NAME_MAX ||
				    memcmp(full + n - sl, suffixes[k][j], sl))
					continue;
				f = fam_find(a, full, (uint8_t)(n - sl),
					     fnv(2166136261u, full, n - sl));
				if (f && f->kind == k)
					return f;
			}
		}
	}
	return NULL;
}

/* The family named by w, made if new.  NULL with *ret_why set when it cannot be had. */
static struct am_family *family(struct appmetrics *a, const struct wire_metric *w,
				const char **ret_why, int *ret_code, char *buf, size_t size)
{
	const struct am_family *other;

	uint32_t h = fnv(2166136261u, w->name, w->m.name_len);
	struct am_family *f = fam_find(a, w->name, w->m.name_len, h);

	if (f) {
		if (f->kind != w->m.kind) {
			*ret_why = f->kind == KRAY_METRIC_COUNTER ? "is a Counter already" :
				   f->kind == KRAY_METRIC_GAUGE	  ? "is a Gauge already" :
								    "is a Histogram already";
			*ret_code = -EEXIST;
			return NULL;
		}
		if (f->nbounds != w->m.nbounds) {
			*ret_why = "is a Histogram with other boundaries already";
			*ret_code = -EEXIST;
			return NULL;
		}
		for (unsigned i = 0; i < f->nbounds; i++) {
			if (f->bounds[i] != wire_metric_bound(w, i)) {
				*ret_why = "is a Histogram with other boundaries already";
				*ret_code = -EEXIST;
				return NULL;
			}
		}
		return f;
	}
	if ((other = clash(a, w->m.kind, w->name, w->m.name_len))) {
		snprintf(buf, size, "would export a series under a name that metric '%s' exports",
			 other->name);
		*ret_why = buf;
		*ret_code = -EEXIST;
		return NULL;
	}
	if (a->nfam >= APPM_NAMES_MAX) {
		*ret_why = "cannot be added: krayd keeps 1024 metric names at most";
		*ret_code = -ENOSPC;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f || !(f->help = malloc(w->m.help_len + 1u)) ||
	    (w->m.nbounds && !(f->bounds = malloc(w->m.nbounds * sizeof(double))))) {
		if (f)
			free(f->help);
		free(f);
		*ret_why = "cannot be added: out of memory";
		*ret_code = -ENOMEM;
		return NULL;
	}
	f->hash = h;
	f->kind = w->m.kind;
	f->nbounds = w->m.nbounds;
	f->name_len = w->m.name_len;
	memcpy(f->name, w->name, w->m.name_len);
	memcpy(f->help, w->help, w->m.help_len);
	f->help[w->m.help_len] = 0;
	for (unsigned i = 0; i < f->nbounds; i++)
		f->bounds[i] = wire_metric_bound(w, i);
	f->tail = &f->series;
	f->hnext = a->fhash[h % FAM_HASH];
	a->fhash[h % FAM_HASH] = f;
	a->fam[a->nfam++] = f;
	return f;
}

/* The series of w's tag set in f, made if new; NULL when the table is full. */
static struct am_series *series(struct appmetrics *a, struct am_family *f,
				const struct wire_metric *w)
{
	uint32_t h = fnv(f->hash, w->tags, w->m.tags_len);
	struct am_series *s;

	for (s = a->shash[h % SERIES_HASH]; s; s = s->hnext)
		if (s->hash == h && s->fam == f && s->tags_len == w->m.tags_len &&
		    !memcmp(s->tags, w->tags, s->tags_len))
			return s;
	if (a->nseries >= APPM_SERIES_MAX)
		return NULL;
	s = calloc(1, sizeof(*s) + w->m.tags_len);
	if (!s || (f->nbounds && !(s->buckets = calloc(f->nbounds + 1u, sizeof(uint64_t))))) {
		free(s);
		return NULL;
	}
	s->fam = f;
	s->hash = h;
	s->tags_len = w->m.tags_len;
	s->ntags = w->m.ntags;
	memcpy(s->tags, w->tags, w->m.tags_len);
	s->hnext = a->shash[h % SERIES_HASH];
	a->shash[h % SERIES_HASH] = s;
	*f->tail = s;
	f->tail = &s->next;
	a->nseries++;
	return s;
}

static void answer(struct conn *c, uint64_t req, int code, const char *text)
{
	struct kray_msg_error m = { .code = code, .len = (uint32_t)strlen(text) };

	if (!req)
		return;
	WIRE_FRAME(&c->out, KRAY_MSG_TEXT_REPLY, req, WIRE_FIXED(m), WIRE_PADDED(text, m.len));
	conn_flush_later(c);
}

int appmetric_on_frame(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct krayd *d = c->d;
	struct appmetrics *a = d->appm;
	struct wire_metric w;
	struct am_family *f;
	struct am_series *s;
	const char *why = NULL;
	char text[512], buf[256];
	int code = 0;

	if (c->role != ROLE_DRIVER && c->role != ROLE_WORKER)
		return conn_fail(c, "metric from a connection that is not a driver or worker",
				 -EPROTO);
	if (wire_dec_metric(body, h->len, &w))
		return conn_fail(c, "malformed metric (see kray_wire.h's METRIC rules)", -EBADMSG);
	if (!a && !(a = d->appm = calloc(1, sizeof(*a))))
		return conn_fail(c, "out of memory for the metrics table", -ENOMEM);
	f = family(a, &w, &why, &code, buf, sizeof(buf));
	if (f && !(w.m.flags & KRAY_METRIC_DEFINE)) {
		s = series(a, f, &w);
		if (!s) {
			why = "has no room for another tag set: krayd keeps 10000 series at most";
			code = -ENOSPC;
		} else if (f->kind == KRAY_METRIC_COUNTER) {
			s->value += w.value;
		} else if (f->kind == KRAY_METRIC_GAUGE) {
			s->value = w.value;
		} else {
			s->value += w.value;
			s->count += w.m.count;
			for (unsigned i = 0; i <= f->nbounds; i++)
				s->buckets[i] += wire_metric_bucket(&w, i);
		}
		if (s)
			a->updates++;
	}
	if (why) {
		snprintf(text, sizeof(text), "Metric '%.*s' %s", (int)w.m.name_len, w.name, why);
		if (!(w.m.flags & KRAY_METRIC_DEFINE)) /* a declaration is answered instead */
			*(code == -EEXIST ? &a->refused : &a->dropped) += 1;
		if (!h->req)
			log_warn_ratelimited("%s: update dropped", text);
		answer(c, h->req, code, text);
		return 0;
	}
	answer(c, h->req, 0, "");
	return 0;
}

/* A sample value as Prometheus reads it: the shortest of %.15g and %.17g that reads back
 * the same, or NaN, +Inf, -Inf. */
static void put_double(struct kbuf *b, double v)
{
	char s[40];
	int n;

	if (v != v) {
		kbuf_put(b, "NaN", 3);
		return;
	}
	if (isinf(v)) {
		kbuf_put(b, v > 0 ? "+Inf" : "-Inf", 4);
		return;
	}
	n = snprintf(s, sizeof(s), "%.15g", v);
	if (strtod(s, NULL) != v)
		n = snprintf(s, sizeof(s), "%.17g", v);
	kbuf_put(b, s, (size_t)n);
}

static void put_u64(struct kbuf *b, uint64_t v)
{
	char s[24];
	int n = snprintf(s, sizeof(s), "%llu", (unsigned long long)v);

	kbuf_put(b, s, (size_t)n);
}

/* Text with backslash and newline escaped (HELP), and the double quote too (a label). */
static void put_escaped(struct kbuf *b, const char *s, size_t n, bool quote)
{
	size_t from = 0;

	for (size_t i = 0; i < n; i++) {
		const char *e = s[i] == '\\'	     ? "\\\\" :
				s[i] == '\n'	     ? "\\n" :
				quote && s[i] == '"' ? "\\\"" :
						       NULL;

		if (!e)
			continue;
		kbuf_put(b, s + from, i - from);
		kbuf_put(b, e, 2);
		from = i + 1;
	}
	kbuf_put(b, s + from, n - from);
}

static void put_str(struct kbuf *b, const char *s)
{
	kbuf_put(b, s, strlen(s));
}

/* name{tags[,le="bound"]} value\n; le: NULL for none, "" for +Inf. */
static void sample(struct kbuf *b, const struct am_family *f, const char *suffix,
		   const struct am_series *s, const double *le, bool le_inf)
{
	const char *t = s->tags, *end = s->tags + s->tags_len;
	bool first = true;

	put_str(b, "ray_");
	kbuf_put(b, f->name, f->name_len);
	put_str(b, suffix);
	if (s->ntags || le || le_inf)
		kbuf_put(b, "{", 1);
	while (t < end) {
		size_t kl = strlen(t), vl = strlen(t + kl + 1);

		if (!first)
			kbuf_put(b, ",", 1);
		first = false;
		kbuf_put(b, t, kl);
		kbuf_put(b, "=\"", 2);
		put_escaped(b, t + kl + 1, vl, true);
		kbuf_put(b, "\"", 1);
		t += kl + 1 + vl + 1;
	}
	if (le || le_inf) {
		if (!first)
			kbuf_put(b, ",", 1);
		kbuf_put(b, "le=\"", 4);
		if (le)
			put_double(b, *le);
		else
			put_str(b, "+Inf");
		kbuf_put(b, "\"", 1);
	}
	if (s->ntags || le || le_inf)
		kbuf_put(b, "}", 1);
	kbuf_put(b, " ", 1);
}

static void render_family(struct kbuf *b, const struct am_family *f)
{
	static const char *const type[] = { "", "counter", "gauge", "histogram" };
	const char *suffix = f->kind == KRAY_METRIC_COUNTER ? "_total" : "";

	for (int line = 0; line < 2; line++) {
		put_str(b, line ? "# TYPE ray_" : "# HELP ray_");
		kbuf_put(b, f->name, f->name_len);
		put_str(b, suffix);
		if (line) {
			put_str(b, " ");
			put_str(b, type[f->kind]);
		} else if (f->help[0]) {
			put_str(b, " ");
			put_escaped(b, f->help, strlen(f->help), false);
		}
		kbuf_put(b, "\n", 1);
	}
	for (const struct am_series *s = f->series; s; s = s->next) {
		uint64_t cum = 0;

		if (f->kind != KRAY_METRIC_HISTOGRAM) {
			sample(b, f, suffix, s, NULL, false);
			put_double(b, s->value);
			kbuf_put(b, "\n", 1);
			continue;
		}
		for (unsigned i = 0; i < f->nbounds; i++) {
			cum += s->buckets[i];
			sample(b, f, "_bucket", s, &f->bounds[i], false);
			put_u64(b, cum);
			kbuf_put(b, "\n", 1);
		}
		sample(b, f, "_bucket", s, NULL, true);
		put_u64(b, s->count);
		kbuf_put(b, "\n", 1);
		sample(b, f, "_sum", s, NULL, false);
		put_double(b, s->value);
		kbuf_put(b, "\n", 1);
		sample(b, f, "_count", s, NULL, false);
		put_u64(b, s->count);
		kbuf_put(b, "\n", 1);
	}
}

void appmetric_render(struct krayd *d, struct kbuf *b)
{
	const struct appmetrics *a = d->appm;
	char line[1024];
	int n;

	n = snprintf(line, sizeof(line),
		     "# HELP kray_app_metric_series Application metric series (a metric and a "
		     "tag set) krayd keeps.\n# TYPE kray_app_metric_series gauge\n"
		     "kray_app_metric_series %u\n"
		     "# HELP kray_app_metric_updates_total Application metric updates merged.\n"
		     "# TYPE kray_app_metric_updates_total counter\n"
		     "kray_app_metric_updates_total %llu\n"
		     "# HELP kray_app_metric_dropped_total Application metric updates dropped: "
		     "the table was full.\n# TYPE kray_app_metric_dropped_total counter\n"
		     "kray_app_metric_dropped_total %llu\n"
		     "# HELP kray_app_metric_refused_total Application metric updates refused: "
		     "the name has another type.\n# TYPE kray_app_metric_refused_total counter\n"
		     "kray_app_metric_refused_total %llu\n",
		     a ? a->nseries : 0, a ? (unsigned long long)a->updates : 0ull,
		     a ? (unsigned long long)a->dropped : 0ull,
		     a ? (unsigned long long)a->refused : 0ull);
	kbuf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	for (unsigned i = 0; a && i < a->nfam; i++)
		if (a->fam[i]->series)
			render_family(b, a->fam[i]);
}

void appmetric_fini(struct krayd *d)
{
	struct appmetrics *a = d->appm;

	if (!a)
		return;
	for (unsigned i = 0; i < a->nfam; i++) {
		struct am_family *f = a->fam[i];
		struct am_series *s = f->series, *next;

		for (; s; s = next) {
			next = s->next;
			free(s->buckets);
			free(s);
		}
		free(f->help);
		free(f->bounds);
		free(f);
	}
	free(a);
	d->appm = NULL;
}
