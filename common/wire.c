// SPDX-License-Identifier: Apache-2.0
/*
 * Frame codec: see wire.h.  Every decoder walks the whole body once and rejects it unless
 * every byte is accounted for, so handlers downstream can iterate without checks.
 */
#include "wire.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wire_check_hdr(const struct kray_frame_hdr *h, size_t max_body)
{
	if (h->magic != KRAY_WIRE_MAGIC || h->version != KRAY_WIRE_VERSION)
		return -EPROTO;
	if (!kray_msg_type_known(h->type))
		return -EBADMSG;
	if (h->len > max_body)
		return -EMSGSIZE;
	return 0;
}

int wire_rd_fixed(struct wire_rd *r, void *dst, size_t n)
{
	if (r->left < n)
		return -EBADMSG;
	memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
	return 0;
}

int wire_rd_bytes(struct wire_rd *r, size_t n, const void **ret)
{
	size_t padded = KRAY_PAD8(n);

	if (n > KRAY_FRAME_MAX || r->left < padded)
		return -EBADMSG;
	*ret = r->p;
	r->p += padded;
	r->left -= padded;
	return 0;
}

int wire_rd_value(struct wire_rd *r, struct wire_value *ret)
{
	struct kray_wire_value v;
	const void *data = NULL, *refs = NULL;

	if (wire_rd_fixed(r, &v, sizeof(v)))
		return -EBADMSG;
	if (v.nrefs && (v.type == KRAY_WT_ERROR || v.type == KRAY_WT_REF))
		return -EBADMSG;
	switch (v.type) {
	case KRAY_WT_NIL:
	case KRAY_WT_INT64:
	case KRAY_WT_F64:
		if (v.len || v.err)
			return -EBADMSG;
		break;
	case KRAY_WT_BYTES:
		if (v.err)
			return -EBADMSG;
		break;
	case KRAY_WT_REF:
	case KRAY_WT_OBJECT:
	case KRAY_WT_ACTOR:
		if (v.len != sizeof(struct kray_oid) || v.err)
			return -EBADMSG;
		break;
	case KRAY_WT_FD: /* (err: KRAY_WV_LAZY or 0) */
		if (v.len != sizeof(struct kray_oid) || v.err > KRAY_WV_LAZY)
			return -EBADMSG;
		break;
	case KRAY_WT_ERROR:
		if (v.err == KRAY_WE_NONE || v.err > KRAY_WE_MAX)
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	if (v.len && wire_rd_bytes(r, v.len, &data))
		return -EBADMSG;
	if (v.nrefs && wire_rd_bytes(r, (size_t)v.nrefs * sizeof(struct kray_oid), &refs))
		return -EBADMSG;
	*ret = (struct wire_value){ .type = v.type,
				    .err = v.err,
				    .nrefs = v.nrefs,
				    .scalar = v.scalar,
				    .data = data,
				    .len = v.len,
				    .refs = refs };
	return 0;
}

#define T(x) (1u << (x))
#define PLAIN (T(KRAY_WT_NIL) | T(KRAY_WT_INT64) | T(KRAY_WT_F64) | T(KRAY_WT_BYTES))
#define NESTED (1u << 31) /* values may contain refs */

/* Walks n values, each of a type in `allowed`, so later iteration needs no checks.
 * Returns the number of FD values, or -EBADMSG. */
static int check_values(struct wire_rd r, uint32_t n, unsigned allowed)
{
	struct wire_value v;
	int fds = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (wire_rd_value(&r, &v) || !(allowed & T(v.type)) ||
		    (v.nrefs && !(allowed & NESTED)))
			return -EBADMSG;
		fds += v.type == KRAY_WT_FD;
	}
	return wire_rd_end(&r) ? -EBADMSG : fds;
}

int wire_dec_hello(const void *body, size_t len, struct wire_hello *ret)
{
	struct wire_rd r;
	struct wire_hello h;
	const void *path = NULL;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &h.m, sizeof(h.m)))
		return -EBADMSG;
	if (h.m.role != KRAY_ROLE_DRIVER && h.m.role != KRAY_ROLE_WORKER)
		return -EBADMSG;
	if (h.m.path_len > KRAY_PATH_MAX || wire_rd_bytes(&r, h.m.path_len, &path) ||
	    wire_rd_end(&r))
		return -EBADMSG;
	h.path = path;
	*ret = h;
	return 0;
}

int wire_dec_submit(const void *body, size_t len, struct wire_submit *ret)
{
	struct wire_rd r;
	struct wire_submit s;
	const void *name;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &s.m, sizeof(s.m)))
		return -EBADMSG;
	if (s.m.name_len == 0 || s.m.nargs > KRAY_ARGS_MAX || s.m.num_returns > KRAY_RETURNS_MAX ||
	    s.m.max_retries < -1 || (s.m.flags & ~(KRAY_SUBMIT_STREAMING | KRAY_SUBMIT_RETRY)) ||
	    ((s.m.flags & KRAY_SUBMIT_STREAMING) && s.m.num_returns != 1) ||
	    wire_rd_bytes(&r, s.m.name_len, &name))
		return -EBADMSG;
	if (memchr(name, 0, s.m.name_len))
		return -EBADMSG;
	s.res = NULL;
	if (s.m.res_len && (wire_rd_bytes(&r, s.m.res_len, (const void **)&s.res) ||
			    wire_parse_placed(s.res, s.m.res_len, NULL, NULL) < 0))
		return -EBADMSG;
	if (check_values(r, s.m.nargs, PLAIN | T(KRAY_WT_REF) | T(KRAY_WT_ACTOR)) < 0)
		return -EBADMSG;
	s.name = name;
	s.args = r;
	*ret = s;
	return 0;
}

int wire_dec_exec(const void *body, size_t len, struct wire_exec *ret)
{
	struct wire_rd r;
	struct wire_exec e;
	const void *name;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &e.m, sizeof(e.m)))
		return -EBADMSG;
	if (e.m.name_len == 0 || e.m.nargs > KRAY_ARGS_MAX || e.m.num_returns > KRAY_RETURNS_MAX ||
	    wire_rd_bytes(&r, e.m.name_len, &name))
		return -EBADMSG;
	if (memchr(name, 0, e.m.name_len))
		return -EBADMSG;
	e.nfds = check_values(r, e.m.nargs, PLAIN | T(KRAY_WT_FD) | T(KRAY_WT_ACTOR) | NESTED);
	if (e.nfds < 0)
		return -EBADMSG;
	e.name = name;
	e.args = r;
	*ret = e;
	return 0;
}

int wire_dec_result(const void *body, size_t len, struct wire_result *ret)
{
	struct wire_rd r;
	struct wire_result res;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &res.m, sizeof(res.m)) || res.m.n > KRAY_RETURNS_MAX ||
	    check_values(r, res.m.n, PLAIN | T(KRAY_WT_ERROR) | T(KRAY_WT_OBJECT) | NESTED) < 0)
		return -EBADMSG;
	res.values = r;
	*ret = res;
	return 0;
}

int wire_dec_yield(const void *body, size_t len, struct wire_yield *ret)
{
	struct wire_rd r;
	struct wire_yield y;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &y.m, sizeof(y.m)) || y.m.pad ||
	    check_values(r, 1, PLAIN | T(KRAY_WT_ERROR) | T(KRAY_WT_OBJECT) | NESTED) < 0 ||
	    wire_rd_value(&r, &y.v))
		return -EBADMSG;
	*ret = y;
	return 0;
}

static int dec_oids(struct wire_rd *r, uint32_t n, struct wire_oids *ret)
{
	const void *p;

	if (n > KRAY_REFS_MAX || r->left != (size_t)n * sizeof(struct kray_oid))
		return -EBADMSG;
	if (n && wire_rd_bytes(r, (size_t)n * sizeof(struct kray_oid), &p))
		return -EBADMSG;
	ret->n = n;
	ret->oids = n ? p : NULL;
	return 0;
}

int wire_dec_get(const void *body, size_t len, struct wire_get *ret)
{
	struct wire_rd r;
	struct kray_msg_get m;
	struct wire_get g;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || dec_oids(&r, m.n, &g.ids))
		return -EBADMSG;
	g.timeout_ms = m.timeout_ms;
	g.uffd = m.uffd;
	*ret = g;
	return 0;
}

int wire_dec_get_reply(const void *body, size_t len, struct wire_get_reply *ret)
{
	struct wire_rd r;
	struct kray_msg_get_reply m;

	int fds;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || m.n > KRAY_REFS_MAX || (m.status != 0 && m.n != 0))
		return -EBADMSG;
	fds = check_values(r, m.n, PLAIN | T(KRAY_WT_ERROR) | T(KRAY_WT_FD) | NESTED);
	if (fds < 0)
		return -EBADMSG;
	*ret = (struct wire_get_reply){ .status = m.status, .n = m.n, .values = r, .nfds = fds };
	return 0;
}

int wire_dec_put(const void *body, size_t len, struct wire_put *ret)
{
	struct wire_rd r;
	struct wire_put p;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &p.oid, sizeof(p.oid)) || wire_rd_value(&r, &p.value) ||
	    wire_rd_end(&r) || !(PLAIN & T(p.value.type)))
		return -EBADMSG;
	*ret = p;
	return 0;
}

/* A name of n bytes (no NUL inside), padded. */
static int rd_name(struct wire_rd *r, uint8_t n, const char **ret)
{
	const void *p = NULL;

	if (n && (wire_rd_bytes(r, n, &p) || memchr(p, 0, n)))
		return -EBADMSG;
	*ret = p;
	return 0;
}

int wire_dec_fwd_task(const void *body, size_t len, struct wire_fwd_task *ret)
{
	struct wire_rd r;
	struct wire_fwd_task f;

	wire_rd_init(&r, body, len);
	f.res = "";
	if (wire_rd_fixed(&r, &f.m, sizeof(f.m)) || !f.m.name_len || f.m.nargs > KRAY_ARGS_MAX ||
	    f.m.num_returns > KRAY_RETURNS_MAX || f.m.max_retries < -1 ||
	    f.m.path_len > KRAY_PATH_MAX || rd_name(&r, f.m.name_len, &f.name) ||
	    (f.m.path_len && (wire_rd_bytes(&r, f.m.path_len, (const void **)&f.path) ||
			      memchr(f.path, 0, f.m.path_len))) ||
	    (f.m.res_len && (wire_rd_bytes(&r, f.m.res_len, (const void **)&f.res) ||
			     wire_parse_resources(f.res, f.m.res_len, NULL) < 0)) ||
	    check_values(r, f.m.nargs, PLAIN | T(KRAY_WT_REF) | T(KRAY_WT_ACTOR)) < 0)
		return -EBADMSG;
	if (!f.m.path_len)
		f.path = "";
	f.args = r;
	*ret = f;
	return 0;
}

int wire_dec_fwd_actor(const void *body, size_t len, struct wire_fwd_actor *ret)
{
	struct wire_rd r;
	struct wire_fwd_actor x;

	memset(&x.rec, 0, sizeof(x.rec));
	x.path = "";
	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &x.f, sizeof(x.f)) || x.f.path_len > KRAY_PATH_MAX ||
	    (x.f.path_len && (wire_rd_bytes(&r, x.f.path_len, (const void **)&x.path) ||
			      memchr(x.path, 0, x.f.path_len))) ||
	    wire_dec_actor_create(r.p, r.left, &x.c) || x.f.actor.index != KRAY_OID_ACTOR ||
	    x.f.actor.seq != x.c.m.seq)
		return -EBADMSG;
	*ret = x;
	return 0;
}

int wire_dec_actor_record(uint16_t type, const void *body, size_t len, struct wire_fwd_actor *ret)
{
	struct kray_msg_actor_record m;
	struct wire_fwd_actor x;

	if (len < sizeof(m))
		return -EBADMSG;
	memcpy(&m, body, sizeof(m));
	if (m.actor.index != KRAY_OID_ACTOR || m.pad)
		return -EBADMSG;
	if (type == KRAY_MSG_ACTOR_RECORD && m.op == KRAY_AREC_GONE) {
		if (len != sizeof(m))
			return -EBADMSG;
		memset(ret, 0, sizeof(*ret));
		ret->rec = m;
		ret->path = "";
		return 0;
	}
	if (m.op != (type == KRAY_MSG_ACTOR_RECORD ? KRAY_AREC_ADD : KRAY_AREC_RESTART) ||
	    wire_dec_fwd_actor((const uint8_t *)body + sizeof(m), len - sizeof(m), &x) ||
	    !oid_eq(&x.f.actor, &m.actor))
		return -EBADMSG;
	x.rec = m;
	*ret = x;
	return 0;
}

int wire_dec_actor_create(const void *body, size_t len, struct wire_actor_create *ret)
{
	struct wire_rd r;
	struct wire_actor_create a;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &a.m, sizeof(a.m)) || !a.m.class_len || !a.m.max_concurrency ||
	    a.m.nargs > KRAY_ARGS_MAX || a.m.max_restarts < -1 || a.m.max_task_retries < -1 ||
	    a.m.detached > 1 || rd_name(&r, a.m.class_len, &a.cls) ||
	    rd_name(&r, a.m.name_len, &a.name) || rd_name(&r, a.m.ns_len, &a.ns) ||
	    rd_name(&r, a.m.res_len, &a.res) ||
	    check_values(r, a.m.nargs, PLAIN | T(KRAY_WT_REF) | T(KRAY_WT_ACTOR)) < 0)
		return -EBADMSG;
	a.args = r;
	*ret = a;
	return 0;
}

int wire_parse_resources(const char *s, size_t len, struct wire_resource *ret)
{
	struct wire_resource all[KRAY_RESOURCES_MAX];
	size_t i = 0;
	int n = 0;

	while (i < len) {
		struct wire_resource r = { 0 };
		size_t nl = 0;
		uint64_t whole = 0, frac = 0, scale = 1000;
		bool digits = false;

		while (i < len && s[i] == ' ')
			i++;
		while (i < len && s[i] != ':' && s[i] != ',') {
			char c = s[i++];

			if (nl + 1 >= sizeof(r.name) ||
			    !(c == '_' || c == '-' || c == '.' || (c >= 'a' && c <= 'z') ||
			      (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
				return -EINVAL;
			r.name[nl++] = c;
		}
		if (!nl || i >= len || s[i++] != ':')
			return -EINVAL;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			whole = whole * 10 + (uint64_t)(s[i++] - '0');
			digits = true;
			if (whole > 1000000000)
				return -EINVAL;
		}
		if (i < len && s[i] == '.') {
			i++;
			while (i < len && s[i] >= '0' && s[i] <= '9') {
				if (scale == 1)
					return -EINVAL; /* more than 3 decimals */
				scale /= 10;
				frac += (uint64_t)(s[i++] - '0') * scale;
				digits = true;
			}
		}
		if (!digits || (i < len && s[i++] != ',') || n == KRAY_RESOURCES_MAX)
			return -EINVAL;
		/* A name twice would be checked once against the node but held twice. */
		for (int j = 0; j < n; j++)
			if (!strcmp(all[j].name, r.name))
				return -EINVAL;
		r.milli = whole * 1000 + frac;
		all[n++] = r;
	}
	if (ret && n)
		memcpy(ret, all, (size_t)n * sizeof(*ret));
	return n;
}

/* One "@..." entry of a resources text (wire.h) into *pl; -EINVAL if it is none. */
static int parse_place(const char *e, size_t len, struct wire_place *pl)
{
	static const char spread[] = "@spread", node[] = "@node=", prefer[] = "@prefer=";
	const char *hex;
	uint32_t id = 0;

	if (len == sizeof(spread) - 1 && !memcmp(e, spread, len)) {
		pl->spread = true;
		return 0;
	}
	if (len == sizeof(node) - 1 + 8 && !memcmp(e, node, sizeof(node) - 1))
		hex = e + sizeof(node) - 1;
	else if (len == sizeof(prefer) - 1 + 8 && !memcmp(e, prefer, sizeof(prefer) - 1)) {
		hex = e + sizeof(prefer) - 1;
		pl->soft = true;
	} else
		return -EINVAL;
	for (int i = 0; i < 8; i++) {
		char c = hex[i];
		int v = c >= '0' && c <= '9' ? c - '0' :
			c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 :
					       -1;

		if (v < 0)
			return -EINVAL;
		id = id << 4 | (uint32_t)v;
	}
	if (!id || pl->node)
		return -EINVAL; /* no node 0; one node at most */
	pl->node = id;
	return 0;
}

int wire_parse_placed(const char *s, size_t len, struct wire_resource *ret, struct wire_place *pl)
{
	struct wire_place p = { 0 };
	char rest[1024]; /* the wire's texts are at most 255 bytes */
	size_t n = 0, i = 0;
	int r;

	if (len >= sizeof(rest)) {
		/* Longer than any wire text: only a plain list, taken as wire_parse_resources()
		 * takes it (fuzz_resources: the same list, the same answer). */
		if (memchr(s, '@', len))
			return -EINVAL;
		r = wire_parse_resources(s, len, ret);
		if (r >= 0 && pl)
			*pl = p;
		return r;
	}
	while (i < len) {
		size_t end = i, skip = i;

		while (end < len && s[end] != ',')
			end++;
		while (skip < end && s[skip] == ' ')
			skip++;
		if (skip < end && s[skip] == '@') {
			if (parse_place(s + skip, end - skip, &p))
				return -EINVAL;
		} else {
			if (n)
				rest[n++] = ',';
			memcpy(rest + n, s + i, end - i);
			n += end - i;
		}
		i = end + (end < len);
	}
	if (p.spread && p.node)
		return -EINVAL; /* one strategy */
	r = wire_parse_resources(rest, n, ret);
	if (r >= 0 && pl)
		*pl = p;
	return r;
}

int wire_dec_get_actor(const void *body, size_t len, struct wire_get_actor *ret)
{
	struct wire_rd r;
	struct wire_get_actor g;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &g.m, sizeof(g.m)) || (g.m.flags & ~KRAY_GET_ACTOR_SELF) ||
	    (g.m.flags ? g.m.name_len || g.m.ns_len : !g.m.name_len) ||
	    rd_name(&r, g.m.name_len, &g.name) || rd_name(&r, g.m.ns_len, &g.ns) || wire_rd_end(&r))
		return -EBADMSG;
	*ret = g;
	return 0;
}

int wire_dec_fast_count(const void *body, size_t len, struct wire_fast_count *ret)
{
	struct wire_rd r;
	struct wire_fast_count f;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &f.m, sizeof(f.m)) || !f.m.name_len || f.m.pad ||
	    f.m.nrec > f.m.runs || (uint64_t)f.m.failed + f.m.stored > f.m.runs ||
	    rd_name(&r, f.m.name_len, &f.name))
		return -EBADMSG;
	f.recs = r.p;
	for (unsigned i = 0; i < f.m.nrec; i++) {
		struct kray_fast_run run;

		if (wire_rd_fixed(&r, &run, sizeof(run)) || run.failed > 1)
			return -EBADMSG;
	}
	if (wire_rd_end(&r))
		return -EBADMSG;
	*ret = f;
	return 0;
}

void wire_put_fast_count(struct kbuf *b, const struct kray_msg_fast_count *m, const char *name,
			 const struct kray_fast_run *recs)
{
	size_t off = wire_begin(b, KRAY_MSG_FAST_COUNT, 0);

	kbuf_put(b, m, sizeof(*m));
	wire_put_padded(b, name, m->name_len);
	if (m->nrec)
		kbuf_put(b, recs, m->nrec * sizeof(*recs));
	wire_end(b, off);
}

int wire_dec_actor_reply(const void *body, size_t len, struct wire_actor_reply *ret)
{
	struct wire_rd r;
	struct wire_actor_reply a;
	const void *text = NULL;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &a.m, sizeof(a.m)) || a.m.len > 4096 ||
	    wire_rd_bytes(&r, a.m.len, &text) || wire_rd_end(&r))
		return -EBADMSG;
	a.text = text;
	*ret = a;
	return 0;
}

int wire_dec_wait(const void *body, size_t len, struct wire_wait *ret)
{
	struct wire_rd r;
	struct kray_msg_wait m;
	struct wire_wait w;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || m.num_ready > m.n || dec_oids(&r, m.n, &w.ids))
		return -EBADMSG;
	w.timeout_ms = m.timeout_ms;
	w.num_ready = m.num_ready;
	*ret = w;
	return 0;
}

int wire_dec_refs(const void *body, size_t len, struct wire_oids *ret)
{
	struct wire_rd r;
	struct kray_msg_refs m;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)))
		return -EBADMSG;
	return dec_oids(&r, m.n, ret);
}

bool wire_metric_name_ok(const char *s, size_t n)
{
	if (!n || n > KRAY_METRIC_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

bool wire_metric_key_ok(const char *s, size_t n)
{
	if (!n || n > KRAY_METRIC_KEY_MAX || (n == 2 && !memcmp(s, "le", 2)) ||
	    (n >= 2 && s[0] == '_' && s[1] == '_'))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		      (i && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* ntags pairs "key\0value\0" filling exactly len bytes, keys valid and strictly
 * ascending (so one tag set has one spelling, and no key repeats). */
static bool metric_tags_ok(const char *t, size_t len, unsigned ntags)
{
	const char *end = t + len, *prev = NULL;
	size_t prev_len = 0;

	for (unsigned i = 0; i < ntags; i++) {
		const char *k = t, *kz = memchr(k, 0, (size_t)(end - k)), *v, *vz;
		size_t kl;
		int cmp;

		if (!kz)
			return false;
		kl = (size_t)(kz - k);
		v = kz + 1;
		vz = v < end ? memchr(v, 0, (size_t)(end - v)) : NULL;
		if (!vz || !wire_metric_key_ok(k, kl) || (size_t)(vz - v) > KRAY_METRIC_VALUE_MAX)
			return false;
		if (prev) {
			cmp = memcmp(prev, k, prev_len < kl ? prev_len : kl);
			if (cmp > 0 || (!cmp && prev_len >= kl))
				return false;
		}
		prev = k;
		prev_len = kl;
		t = vz + 1;
	}
	return t == end;
}

double wire_metric_bound(const struct wire_metric *w, unsigned i)
{
	double d;

	memcpy(&d, w->bounds + (size_t)i * sizeof(d), sizeof(d));
	return d;
}

uint64_t wire_metric_bucket(const struct wire_metric *w, unsigned i)
{
	uint64_t n;

	memcpy(&n, w->buckets + (size_t)i * sizeof(n), sizeof(n));
	return n;
}

int wire_dec_metric(const void *body, size_t len, struct wire_metric *ret)
{
	struct wire_rd r;
	struct wire_metric w = { 0 };
	const void *name = NULL, *help = NULL, *tags = NULL, *bounds = NULL, *buckets = NULL;
	bool define;
	uint64_t total = 0;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &w.m, sizeof(w.m)))
		return -EBADMSG;
	memcpy(&w.value, &w.m.value, sizeof(w.value));
	define = w.m.flags & KRAY_METRIC_DEFINE;
	if (w.m.kind < KRAY_METRIC_COUNTER || w.m.kind > KRAY_METRIC_HISTOGRAM ||
	    (w.m.flags & ~KRAY_METRIC_DEFINE) || w.m.pad || w.m.pad2 || w.m.pad3 ||
	    w.m.ntags > KRAY_METRIC_TAGS_MAX || w.m.help_len > KRAY_METRIC_HELP_MAX ||
	    (w.m.kind == KRAY_METRIC_HISTOGRAM) != (w.m.nbounds != 0) ||
	    w.m.nbounds > KRAY_METRIC_BOUNDS_MAX ||
	    (w.m.kind != KRAY_METRIC_HISTOGRAM && w.m.count) ||
	    (define && (w.m.value || w.m.count || w.m.ntags)))
		return -EBADMSG;
	if (!define && (w.m.kind == KRAY_METRIC_COUNTER	  ? !(w.value > 0 && w.value < INFINITY) :
			w.m.kind == KRAY_METRIC_HISTOGRAM ? w.value != w.value :
							    false))
		return -EBADMSG; /* a counter goes up by a finite amount; a sum is not NaN */
	if (wire_rd_bytes(&r, w.m.name_len, &name) || !wire_metric_name_ok(name, w.m.name_len) ||
	    wire_rd_bytes(&r, w.m.help_len, &help) || memchr(help, 0, w.m.help_len) ||
	    wire_rd_bytes(&r, w.m.tags_len, &tags) ||
	    !metric_tags_ok(tags, w.m.tags_len, w.m.ntags))
		return -EBADMSG;
	w.name = name;
	w.help = help;
	w.tags = tags;
	if (w.m.nbounds) {
		if (wire_rd_bytes(&r, (size_t)w.m.nbounds * sizeof(double), &bounds) ||
		    wire_rd_bytes(&r, ((size_t)w.m.nbounds + 1) * sizeof(uint64_t), &buckets))
			return -EBADMSG;
		w.bounds = bounds;
		w.buckets = buckets;
		for (unsigned i = 0; i < w.m.nbounds; i++) {
			double b = wire_metric_bound(&w, i);

			if (!(b > -INFINITY && b < INFINITY) ||
			    (i && !(b > wire_metric_bound(&w, i - 1))))
				return -EBADMSG; /* finite, strictly ascending */
		}
		for (unsigned i = 0; i <= w.m.nbounds; i++) {
			uint64_t n = wire_metric_bucket(&w, i);

			if (n > UINT64_MAX - total)
				return -EBADMSG;
			total += n;
		}
		if (total != w.m.count)
			return -EBADMSG;
	}
	if (wire_rd_end(&r))
		return -EBADMSG;
	*ret = w;
	return 0;
}

void wire_put_metric(struct kbuf *b, uint64_t req, const struct kray_msg_metric *m,
		     const char *name, const char *help, const char *tags, const double *bounds,
		     const uint64_t *buckets)
{
	size_t off = wire_begin(b, KRAY_MSG_METRIC, req);

	kbuf_put(b, m, sizeof(*m));
	wire_put_padded(b, name, m->name_len);
	wire_put_padded(b, help, m->help_len);
	wire_put_padded(b, tags, m->tags_len);
	if (m->nbounds) {
		kbuf_put(b, bounds, m->nbounds * sizeof(*bounds));
		kbuf_put(b, buckets, (m->nbounds + 1u) * sizeof(*buckets));
	}
	wire_end(b, off);
}

static int dec_text(const void *body, size_t len, struct wire_text *ret, size_t max)
{
	struct wire_rd r;
	struct {
		int32_t code;
		uint32_t len;
	} m;
	const void *text = NULL;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || m.len > max || wire_rd_bytes(&r, m.len, &text) ||
	    wire_rd_end(&r))
		return -EBADMSG;
	*ret = (struct wire_text){ .code = m.code, .text = text, .len = m.len };
	return 0;
}

int wire_dec_error(const void *body, size_t len, struct wire_text *ret)
{
	return dec_text(body, len, ret, 65536);
}

int wire_dec_export(const void *body, size_t len, struct wire_text *ret)
{
	return dec_text(body, len, ret, KRAY_FRAME_MAX);
}

int wire_dec_job(const void *body, size_t len, struct wire_text *ret)
{
	return dec_text(body, len, ret, KRAY_PATH_MAX);
}

int wire_dec_fixed(const void *body, size_t len, void *dst, size_t size)
{
	if (len != size)
		return -EBADMSG;
	memcpy(dst, body, size);
	return 0;
}

int wire_dec_obj_range(const void *body, size_t len, struct kray_msg_obj_range *ret)
{
	if (wire_dec_fixed(body, len, ret, sizeof(*ret)) || !ret->len ||
	    ret->len > KRAY_OBJECT_MAX || ret->offset > KRAY_OBJECT_MAX - ret->len)
		return -EBADMSG;
	return 0;
}

size_t wire_begin(struct kbuf *b, uint16_t type, uint64_t req)
{
	struct kray_frame_hdr h = {
		.magic = KRAY_WIRE_MAGIC, .version = KRAY_WIRE_VERSION, .type = type, .req = req
	};
	size_t off = b->len;

	kbuf_put(b, &h, sizeof(h));
	return off;
}

int wire_end(struct kbuf *b, size_t hdr_off)
{
	uint32_t len = (uint32_t)(b->len - hdr_off - sizeof(struct kray_frame_hdr));

	if (b->nomem) { /* libkray only (KRAY_KBUF_SOFT): drop the partial frame */
		b->len = hdr_off;
		b->nomem = false;
		return -ENOMEM;
	}
	memcpy(b->data + hdr_off + offsetof(struct kray_frame_hdr, len), &len, sizeof(len));
	return 0;
}

void wire_put_padded(struct kbuf *b, const void *p, size_t n)
{
	kbuf_put(b, p, n);
	if (KRAY_PAD8(n) != n)
		kbuf_put(b, NULL, KRAY_PAD8(n) - n);
}

size_t wire_frame_open(struct kbuf *b, uint16_t type, uint64_t req, const struct wire_part *parts,
		       unsigned n)
{
	size_t off = wire_begin(b, type, req);

	for (unsigned i = 0; i < n; i++) {
		if (parts[i].pad)
			wire_put_padded(b, parts[i].p, parts[i].len);
		else
			kbuf_put(b, parts[i].p, parts[i].len);
	}
	return off;
}

size_t wire_frame(struct kbuf *b, uint16_t type, uint64_t req, const struct wire_part *parts,
		  unsigned n)
{
	size_t off = wire_frame_open(b, type, req, parts, n);

	wire_end(b, off);
	return off;
}

void wire_put_value_refs(struct kbuf *b, uint8_t type, uint8_t err, uint64_t scalar,
			 const void *data, uint32_t len, const struct kray_oid *refs,
			 uint16_t nrefs)
{
	struct kray_wire_value v = {
		.type = type, .err = err, .nrefs = nrefs, .len = len, .scalar = scalar
	};

	kbuf_put(b, &v, sizeof(v));
	if (len)
		wire_put_padded(b, data, len);
	if (nrefs)
		kbuf_put(b, refs, nrefs * sizeof(*refs));
}

void wire_put_value(struct kbuf *b, uint8_t type, uint8_t err, uint64_t scalar, const void *data,
		    uint32_t len)
{
	wire_put_value_refs(b, type, err, scalar, data, len, NULL, 0);
}

const char wire_errmsg_oom[] = "out of memory for the error's text";

char *wire_errmsg_v(size_t *len, const char *fmt, va_list ap)
{
	char note[64], *s, *out;
	size_t n, head, tail, nn;
	va_list ap2;
	int r;

	va_copy(ap2, ap);
	r = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (r < 0 || !(s = malloc((size_t)r + 1)))
		return NULL;
	vsnprintf(s, (size_t)r + 1, fmt, ap);
	n = (size_t)r;
	if (n > KRAY_ERRMSG_MAX) { /* head, note (at most 48 bytes), tail */
		head = KRAY_ERRMSG_MAX / 2;
		tail = KRAY_ERRMSG_MAX - head - 48;
		nn = (size_t)snprintf(note, sizeof(note), "\n[... %zu bytes cut ...]\n",
				      n - head - tail);
		memcpy(s + head, note, nn);
		memmove(s + head + nn, s + n - tail, tail);
		n = head + nn + tail;
		s[n] = 0;
		if ((out = realloc(s, n + 1)))
			s = out;
	}
	if (len)
		*len = n;
	return s;
}

char *wire_errmsg(size_t *len, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = wire_errmsg_v(len, fmt, ap);
	va_end(ap);
	return s;
}

void wire_put_verrorf(struct kbuf *b, uint8_t err, const char *fmt, va_list ap)
{
	size_t n;
	char *msg = wire_errmsg_v(&n, fmt, ap);

	if (msg)
		wire_put_value(b, KRAY_WT_ERROR, err, 0, msg, (uint32_t)n);
	else
		wire_put_value(b, KRAY_WT_ERROR, err, 0, wire_errmsg_oom,
			       sizeof(wire_errmsg_oom) - 1);
	free(msg);
}

void wire_put_errorf(struct kbuf *b, uint8_t err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	wire_put_verrorf(b, err, fmt, ap);
	va_end(ap);
}

void wire_put_error_frame(struct kbuf *b, uint64_t req, int code, const char *msg)
{
	size_t off = wire_begin(b, KRAY_MSG_ERROR, req);
	struct kray_msg_error e = { .code = code, .len = (uint32_t)strlen(msg) };

	kbuf_put(b, &e, sizeof(e));
	wire_put_padded(b, msg, e.len);
	wire_end(b, off);
}
