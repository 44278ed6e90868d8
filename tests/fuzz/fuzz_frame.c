// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_frame: the input is a byte stream as krayd or libkray reads it from a socket, frame
 * headers each followed by its body.  Every header goes through wire_check_hdr(); the first
 * bad or truncated one ends the stream, as it ends a connection.  Every body is copied to
 * a buffer of exactly its length, so that AddressSanitizer sees a read past it, and given
 * to the decoder of its type, then to every other decoder as well: a peer picks the type
 * as freely as the bytes.
 *
 * When a decoder accepts a body:
 *  - what common/wire.h and kray_wire.h promise holds (limits, names without NULs, every
 *    byte of the body accounted for);
 *  - the values it validated walk with wire_rd_value() without a failure, are of the types
 *    the message allows and end the body exactly;
 *  - the frame written again with the wire_put_* writers is a good frame of the same
 *    length, and decodes to the same fields, names and values.
 * A failed oracle aborts (fuzz.h), which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "../../common/wire.h"
#include "fuzz.h"

#define HDR sizeof(struct kray_frame_hdr)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The value types each message allows (as in wire.c; NESTED: values may carry refs). */
#define T(x) (1u << (x))
#define PLAIN (T(KRAY_WT_NIL) | T(KRAY_WT_INT64) | T(KRAY_WT_F64) | T(KRAY_WT_BYTES))
#define NESTED (1u << 31)
#define SUBMIT_ARGS (PLAIN | T(KRAY_WT_REF) | T(KRAY_WT_ACTOR))
/* EXEC arguments: objects passed to a task lend it the refs they contain. */
#define EXEC_ARGS (PLAIN | T(KRAY_WT_FD) | T(KRAY_WT_ACTOR) | NESTED)
#define RESULT_VALUES (PLAIN | T(KRAY_WT_ERROR) | T(KRAY_WT_OBJECT) | NESTED)
#define REPLY_VALUES (PLAIN | T(KRAY_WT_ERROR) | T(KRAY_WT_FD) | NESTED)

/* A copy of len bytes in a buffer of exactly that size. */
static uint8_t *dup_exact(const void *p, size_t len)
{
	uint8_t *b = malloc(len ? len : 1);

	if (!b)
		abort();
	if (len)
		memcpy(b, p, len);
	return b;
}

static bool same_bytes(const void *a, const void *b, size_t n)
{
	return !n || (a && b && !memcmp(a, b, n));
}

/* ---- writing a frame again ---------------------------------------------------------- */

struct again {
	struct kbuf b;
	size_t off;
	uint8_t *body; /* exact-size copy of the written body */
};

static void again_begin(struct again *a, uint16_t type)
{
	*a = (struct again){ 0 };
	a->off = wire_begin(&a->b, type, 0x0123456789abcdefull);
}

/* Ends the frame: its header must pass and its body be as long as the original. */
static const uint8_t *again_end(struct again *a, size_t want_len)
{
	struct kray_frame_hdr h;

	wire_end(&a->b, a->off);
	memcpy(&h, a->b.data + a->off, HDR);
	FUZZ_CHECK(wire_check_hdr(&h, KRAY_FRAME_MAX) == 0);
	FUZZ_CHECK(h.len == a->b.len - a->off - HDR);
	FUZZ_CHECK(h.len == want_len);
	FUZZ_CHECK(h.req == 0x0123456789abcdefull && h.flags == 0);
	a->body = dup_exact(a->b.data + a->off + HDR, h.len);
	return a->body;
}

static void again_free(struct again *a)
{
	kbuf_free(&a->b);
	free(a->body);
}

/* ---- values ------------------------------------------------------------------------- */

static void same_value(const struct wire_value *a, const struct wire_value *b)
{
	FUZZ_CHECK(a->type == b->type && a->err == b->err && a->nrefs == b->nrefs);
	FUZZ_CHECK(a->scalar == b->scalar && a->len == b->len);
	FUZZ_CHECK(same_bytes(a->data, b->data, a->len));
	FUZZ_CHECK(same_bytes(a->refs, b->refs, (size_t)a->nrefs * sizeof(struct kray_oid)));
}

/* Appends v with the writers; the ERROR values wire_put_errorf() can make go through it. */
static void put_value(struct kbuf *b, const struct wire_value *v)
{
	if (v->type == KRAY_WT_ERROR && !v->scalar && v->len < 4096 &&
	    (!v->len || !memchr(v->data, 0, v->len)))
		wire_put_errorf(b, v->err, "%.*s", (int)v->len,
				v->len ? (const char *)v->data : "");
	else if (v->nrefs)
		wire_put_value_refs(b, v->type, v->err, v->scalar, v->data, v->len, v->refs,
				    v->nrefs);
	else
		wire_put_value(b, v->type, v->err, v->scalar, v->data, v->len);
}

/*
 * Walks the n values a decoder validated: each must read, be of a type in allowed, and
 * together they must end the body.  Appends each to out.  Returns the FD values.
 */
static int walk(struct wire_rd r, uint32_t n, unsigned int allowed, struct kbuf *out)
{
	struct wire_value v;
	int fds = 0;

	for (uint32_t i = 0; i < n; i++) {
		FUZZ_CHECK(wire_rd_value(&r, &v) == 0);
		FUZZ_CHECK(v.type <= KRAY_WT_MAX && (allowed & T(v.type)));
		FUZZ_CHECK(!v.nrefs || (allowed & NESTED));
		fds += v.type == KRAY_WT_FD;
		put_value(out, &v);
	}
	FUZZ_CHECK(wire_rd_end(&r) == 0);
	return fds;
}

static void same_values(struct wire_rd a, struct wire_rd b, uint32_t n)
{
	struct wire_value va, vb;

	for (uint32_t i = 0; i < n; i++) {
		FUZZ_CHECK(wire_rd_value(&a, &va) == 0 && wire_rd_value(&b, &vb) == 0);
		same_value(&va, &vb);
	}
	FUZZ_CHECK(!a.left && !b.left);
}

/* ---- one checker per decoder -------------------------------------------------------- */

static void chk_hello(const uint8_t *body, size_t len)
{
	struct wire_hello x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_hello(body, len, &x))
		return;
	FUZZ_CHECK(x.m.role == KRAY_ROLE_DRIVER || x.m.role == KRAY_ROLE_WORKER);
	FUZZ_CHECK(x.m.path_len <= KRAY_PATH_MAX);
	FUZZ_CHECK(len == sizeof(x.m) + KRAY_PAD8(x.m.path_len));
	again_begin(&a, KRAY_MSG_HELLO);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	wire_put_padded(&a.b, x.path, x.m.path_len);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_hello(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)));
	FUZZ_CHECK(same_bytes(x.path, y.path, x.m.path_len));
	again_free(&a);
}

static void chk_submit(const uint8_t *body, size_t len)
{
	struct wire_submit x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_submit(body, len, &x))
		return;
	FUZZ_CHECK(x.m.name_len && !memchr(x.name, 0, x.m.name_len));
	FUZZ_CHECK(x.m.nargs <= KRAY_ARGS_MAX && x.m.num_returns <= KRAY_RETURNS_MAX);
	FUZZ_CHECK(x.m.max_retries >= -1);
	FUZZ_CHECK(!(x.m.flags & ~(KRAY_SUBMIT_STREAMING | KRAY_SUBMIT_RETRY)));
	/* Resources, when present, are a list krayd can parse (issue 7), with at most one
	 * placement entry ("@spread", "@node=", "@prefer=": issue 17). */
	FUZZ_CHECK(!x.m.res_len || wire_parse_placed(x.res, x.m.res_len, NULL, NULL) >= 0);
	again_begin(&a, KRAY_MSG_SUBMIT);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	wire_put_padded(&a.b, x.name, x.m.name_len);
	wire_put_padded(&a.b, x.res, x.m.res_len);
	walk(x.args, x.m.nargs, SUBMIT_ARGS, &a.b);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_submit(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)));
	FUZZ_CHECK(same_bytes(x.name, y.name, x.m.name_len));
	FUZZ_CHECK(same_bytes(x.res, y.res, x.m.res_len));
	same_values(x.args, y.args, x.m.nargs);
	again_free(&a);
}

static void chk_exec(const uint8_t *body, size_t len)
{
	struct wire_exec x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_exec(body, len, &x))
		return;
	FUZZ_CHECK(x.m.name_len && !memchr(x.name, 0, x.m.name_len));
	FUZZ_CHECK(x.m.nargs <= KRAY_ARGS_MAX && x.m.num_returns <= KRAY_RETURNS_MAX);
	again_begin(&a, KRAY_MSG_EXEC);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	wire_put_padded(&a.b, x.name, x.m.name_len);
	FUZZ_CHECK(walk(x.args, x.m.nargs, EXEC_ARGS, &a.b) == x.nfds);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_exec(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)) && x.nfds == y.nfds);
	FUZZ_CHECK(same_bytes(x.name, y.name, x.m.name_len));
	same_values(x.args, y.args, x.m.nargs);
	again_free(&a);
}

static void chk_result(const uint8_t *body, size_t len)
{
	struct wire_result x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_result(body, len, &x))
		return;
	FUZZ_CHECK(x.m.n <= KRAY_RETURNS_MAX);
	again_begin(&a, KRAY_MSG_RESULT);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	walk(x.values, x.m.n, RESULT_VALUES, &a.b);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_result(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)));
	same_values(x.values, y.values, x.m.n);
	again_free(&a);
}

static void chk_yield(const uint8_t *body, size_t len)
{
	struct wire_yield x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_yield(body, len, &x))
		return;
	FUZZ_CHECK(x.m.pad == 0);
	again_begin(&a, KRAY_MSG_YIELD);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	wire_put_value_refs(&a.b, x.v.type, x.v.err, x.v.scalar, x.v.data, x.v.len, x.v.refs,
			    x.v.nrefs);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_yield(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)) && x.v.type == y.v.type && x.v.len == y.v.len &&
		   x.v.nrefs == y.v.nrefs);
	FUZZ_CHECK(same_bytes(x.v.data, y.v.data, x.v.len));
	again_free(&a);
}

static void same_oids(const struct wire_oids *x, const struct wire_oids *y)
{
	FUZZ_CHECK(x->n == y->n && !x->oids == !x->n);
	FUZZ_CHECK(same_bytes(x->oids, y->oids, (size_t)x->n * sizeof(struct kray_oid)));
}

static void chk_get(const uint8_t *body, size_t len)
{
	struct wire_get x, y;
	struct again a;
	const uint8_t *p;
	struct kray_msg_get m;

	if (wire_dec_get(body, len, &x))
		return;
	FUZZ_CHECK(x.ids.n <= KRAY_REFS_MAX);
	FUZZ_CHECK(len == sizeof(m) + (size_t)x.ids.n * sizeof(struct kray_oid));
	m = (struct kray_msg_get){ .timeout_ms = x.timeout_ms, .n = x.ids.n };
	again_begin(&a, KRAY_MSG_GET);
	kbuf_put(&a.b, &m, sizeof(m));
	kbuf_put(&a.b, x.ids.oids, (size_t)x.ids.n * sizeof(struct kray_oid));
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_get(p, len, &y) == 0);
	FUZZ_CHECK(x.timeout_ms == y.timeout_ms);
	same_oids(&x.ids, &y.ids);
	again_free(&a);
}

static void chk_get_reply(const uint8_t *body, size_t len)
{
	struct wire_get_reply x, y;
	struct again a;
	const uint8_t *p;
	struct kray_msg_get_reply m;

	if (wire_dec_get_reply(body, len, &x))
		return;
	FUZZ_CHECK(x.n <= KRAY_REFS_MAX && (x.status == 0 || x.n == 0));
	m = (struct kray_msg_get_reply){ .status = x.status, .n = x.n };
	again_begin(&a, KRAY_MSG_GET_REPLY);
	kbuf_put(&a.b, &m, sizeof(m));
	FUZZ_CHECK(walk(x.values, x.n, REPLY_VALUES, &a.b) == x.nfds);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_get_reply(p, len, &y) == 0);
	FUZZ_CHECK(x.status == y.status && x.n == y.n && x.nfds == y.nfds);
	same_values(x.values, y.values, x.n);
	again_free(&a);
}

static void chk_put(const uint8_t *body, size_t len)
{
	struct wire_put x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_put(body, len, &x))
		return;
	FUZZ_CHECK(PLAIN & T(x.value.type));
	again_begin(&a, KRAY_MSG_PUT);
	kbuf_put(&a.b, &x.oid, sizeof(x.oid));
	put_value(&a.b, &x.value);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_put(p, len, &y) == 0);
	FUZZ_CHECK(oid_eq(&x.oid, &y.oid));
	same_value(&x.value, &y.value);
	again_free(&a);
}

/* RELEASE and UNPIN. */
static void chk_refs(const uint8_t *body, size_t len)
{
	struct wire_oids x, y;
	struct again a;
	const uint8_t *p;
	struct kray_msg_refs m;

	if (wire_dec_refs(body, len, &x))
		return;
	FUZZ_CHECK(x.n <= KRAY_REFS_MAX);
	FUZZ_CHECK(len == sizeof(m) + (size_t)x.n * sizeof(struct kray_oid));
	m = (struct kray_msg_refs){ .n = x.n };
	again_begin(&a, KRAY_MSG_RELEASE);
	kbuf_put(&a.b, &m, sizeof(m));
	kbuf_put(&a.b, x.oids, (size_t)x.n * sizeof(struct kray_oid));
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_refs(p, len, &y) == 0);
	same_oids(&x, &y);
	again_free(&a);
}

static void chk_wait(const uint8_t *body, size_t len)
{
	struct wire_wait x, y;
	struct again a;
	const uint8_t *p;
	struct kray_msg_wait m;

	if (wire_dec_wait(body, len, &x))
		return;
	FUZZ_CHECK(x.ids.n <= KRAY_REFS_MAX && x.num_ready <= x.ids.n);
	FUZZ_CHECK(len == sizeof(m) + (size_t)x.ids.n * sizeof(struct kray_oid));
	m = (struct kray_msg_wait){ .timeout_ms = x.timeout_ms,
				    .n = x.ids.n,
				    .num_ready = x.num_ready };
	again_begin(&a, KRAY_MSG_WAIT);
	kbuf_put(&a.b, &m, sizeof(m));
	kbuf_put(&a.b, x.ids.oids, (size_t)x.ids.n * sizeof(struct kray_oid));
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_wait(p, len, &y) == 0);
	FUZZ_CHECK(x.timeout_ms == y.timeout_ms && x.num_ready == y.num_ready);
	same_oids(&x.ids, &y.ids);
	again_free(&a);
}

/* WAIT_REPLY has no decoder in wire.c: libkray reads it with the reader, as here. */
static void chk_wait_reply(const uint8_t *body, size_t len)
{
	struct wire_rd r;
	struct kray_msg_wait_reply m;
	const void *flags = NULL;

	wire_rd_init(&r, body, len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || wire_rd_bytes(&r, m.n, &flags) || wire_rd_end(&r))
		return;
	FUZZ_CHECK(len == sizeof(m) + KRAY_PAD8((size_t)m.n));
	FUZZ_CHECK(flags == body + sizeof(m));
}

/* A name the decoder returned: NULL exactly when it is empty, and without NULs. */
static void good_name(const char *s, size_t n)
{
	FUZZ_CHECK(!s == !n);
	FUZZ_CHECK(!n || !memchr(s, 0, n));
}

static void chk_actor_create(const uint8_t *body, size_t len)
{
	struct wire_actor_create x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_actor_create(body, len, &x))
		return;
	FUZZ_CHECK(x.m.class_len && x.m.max_concurrency && x.m.nargs <= KRAY_ARGS_MAX);
	FUZZ_CHECK(x.m.max_restarts >= -1 && x.m.max_task_retries >= -1 && x.m.detached <= 1);
	good_name(x.cls, x.m.class_len);
	good_name(x.name, x.m.name_len);
	good_name(x.ns, x.m.ns_len);
	good_name(x.res, x.m.res_len);
	/* krayd parses the resources next (fuzz_resources has the oracles). */
	{
		struct wire_resource res[KRAY_RESOURCES_MAX];
		int n = wire_parse_placed(x.res, x.m.res_len, res, NULL);

		FUZZ_CHECK(n == -EINVAL || (n >= 0 && n <= KRAY_RESOURCES_MAX));
	}
	again_begin(&a, KRAY_MSG_ACTOR_CREATE);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	wire_put_padded(&a.b, x.cls, x.m.class_len);
	wire_put_padded(&a.b, x.name, x.m.name_len);
	wire_put_padded(&a.b, x.ns, x.m.ns_len);
	wire_put_padded(&a.b, x.res, x.m.res_len);
	walk(x.args, x.m.nargs, SUBMIT_ARGS, &a.b);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_actor_create(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)));
	FUZZ_CHECK(same_bytes(x.cls, y.cls, x.m.class_len));
	FUZZ_CHECK(same_bytes(x.name, y.name, x.m.name_len));
	FUZZ_CHECK(same_bytes(x.ns, y.ns, x.m.ns_len));
	FUZZ_CHECK(same_bytes(x.res, y.res, x.m.res_len));
	same_values(x.args, y.args, x.m.nargs);
	again_free(&a);
}

static void chk_get_actor(const uint8_t *body, size_t len)
{
	struct wire_get_actor x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_get_actor(body, len, &x))
		return;
	/* A name, or (SELF, the only flag) none at all. */
	FUZZ_CHECK(x.m.flags ? x.m.flags == KRAY_GET_ACTOR_SELF && !x.m.name_len && !x.m.ns_len :
			       x.m.name_len != 0);
	good_name(x.name, x.m.name_len);
	good_name(x.ns, x.m.ns_len);
	FUZZ_CHECK(len ==
		   sizeof(x.m) + KRAY_PAD8((size_t)x.m.name_len) + KRAY_PAD8((size_t)x.m.ns_len));
	again_begin(&a, KRAY_MSG_GET_ACTOR);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	wire_put_padded(&a.b, x.name, x.m.name_len);
	wire_put_padded(&a.b, x.ns, x.m.ns_len);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_get_actor(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)));
	FUZZ_CHECK(same_bytes(x.name, y.name, x.m.name_len));
	FUZZ_CHECK(same_bytes(x.ns, y.ns, x.m.ns_len));
	again_free(&a);
}

static void chk_fast_count(const uint8_t *body, size_t len)
{
	struct wire_fast_count x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_fast_count(body, len, &x))
		return;
	FUZZ_CHECK(x.m.name_len && !x.m.pad && x.m.nrec <= x.m.runs);
	FUZZ_CHECK((uint64_t)x.m.failed + x.m.stored <= x.m.runs);
	good_name(x.name, x.m.name_len);
	FUZZ_CHECK(len == sizeof(x.m) + KRAY_PAD8((size_t)x.m.name_len) +
				  x.m.nrec * sizeof(struct kray_fast_run));
	for (unsigned i = 0; i < x.m.nrec; i++) {
		struct kray_fast_run run;

		memcpy(&run, x.recs + i * sizeof(run), sizeof(run));
		FUZZ_CHECK(run.failed <= 1);
	}
	again_begin(&a, KRAY_MSG_FAST_COUNT);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	wire_put_padded(&a.b, x.name, x.m.name_len);
	kbuf_put(&a.b, x.recs, x.m.nrec * sizeof(struct kray_fast_run));
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_fast_count(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)));
	FUZZ_CHECK(same_bytes(x.name, y.name, x.m.name_len));
	FUZZ_CHECK(same_bytes(x.recs, y.recs, x.m.nrec * sizeof(struct kray_fast_run)));
	/* The worker's writer makes the same frame (from aligned records, as it has them). */
	struct kbuf w = { 0 };
	struct kray_frame_hdr h;
	struct kray_fast_run *runs = malloc(x.m.nrec * sizeof(*runs) + 1);

	FUZZ_CHECK(runs != NULL);
	memcpy(runs, x.recs, x.m.nrec * sizeof(*runs));
	wire_put_fast_count(&w, &x.m, x.name, runs);
	free(runs);
	FUZZ_CHECK(!w.nomem && w.len == HDR + len && !memcmp(w.data + HDR, p, len));
	memcpy(&h, w.data, HDR);
	FUZZ_CHECK(h.type == KRAY_MSG_FAST_COUNT && h.len == len &&
		   wire_check_hdr(&h, KRAY_FRAME_MAX) == 0);
	kbuf_free(&w);
	again_free(&a);
}

/* A label name as kray_wire.h has it (not "le", not "__*"), written out again here. */
static bool model_key(const char *k, size_t n)
{
	if (!n || n > KRAY_METRIC_KEY_MAX || (n == 2 && k[0] == 'l' && k[1] == 'e') ||
	    (n >= 2 && k[0] == '_' && k[1] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') || k[i] == '_' ||
		      (i && k[i] >= '0' && k[i] <= '9')))
			return false;
	return true;
}

static void chk_metric(const uint8_t *body, size_t len)
{
	struct wire_metric x, y;
	struct again a;
	const uint8_t *p;
	const char *t, *prev = NULL;
	size_t prev_len = 0;
	double *bounds;
	uint64_t *buckets, total = 0;

	if (wire_dec_metric(body, len, &x))
		return;
	FUZZ_CHECK(x.m.kind >= KRAY_METRIC_COUNTER && x.m.kind <= KRAY_METRIC_HISTOGRAM);
	FUZZ_CHECK(!(x.m.flags & ~KRAY_METRIC_DEFINE) && !x.m.pad && !x.m.pad2 && !x.m.pad3);
	FUZZ_CHECK(x.m.name_len && x.m.name_len <= KRAY_METRIC_NAME_MAX);
	for (unsigned i = 0; i < x.m.name_len; i++) {
		char c = x.name[i];

		FUZZ_CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			   c == ':' || (i && c >= '0' && c <= '9'));
	}
	FUZZ_CHECK(x.m.help_len <= KRAY_METRIC_HELP_MAX);
	FUZZ_CHECK(!x.m.help_len || !memchr(x.help, 0, x.m.help_len));
	FUZZ_CHECK(x.m.ntags <= KRAY_METRIC_TAGS_MAX);
	t = x.tags;
	for (unsigned i = 0; i < x.m.ntags; i++) { /* pairs, keys ascending, all bytes used */
		size_t kl = strnlen(t, (size_t)(x.tags + x.m.tags_len - t)), vl;

		FUZZ_CHECK(t + kl < x.tags + x.m.tags_len && model_key(t, kl));
		vl = strnlen(t + kl + 1, (size_t)(x.tags + x.m.tags_len - t - kl - 1));
		FUZZ_CHECK(t + kl + 1 + vl < x.tags + x.m.tags_len && vl <= KRAY_METRIC_VALUE_MAX);
		if (prev) {
			int c = memcmp(prev, t, prev_len < kl ? prev_len : kl);

			FUZZ_CHECK(c < 0 || (!c && prev_len < kl));
		}
		prev = t;
		prev_len = kl;
		t += kl + 1 + vl + 1;
	}
	FUZZ_CHECK(t == x.tags + x.m.tags_len);
	if (x.m.flags & KRAY_METRIC_DEFINE)
		FUZZ_CHECK(!x.m.value && !x.m.count && !x.m.ntags);
	else if (x.m.kind == KRAY_METRIC_COUNTER)
		FUZZ_CHECK(x.value > 0 && x.value - x.value == 0); /* finite */
	else if (x.m.kind == KRAY_METRIC_HISTOGRAM)
		FUZZ_CHECK(x.value == x.value);
	FUZZ_CHECK((x.m.kind == KRAY_METRIC_HISTOGRAM) == (x.m.nbounds > 0));
	FUZZ_CHECK(x.m.nbounds <= KRAY_METRIC_BOUNDS_MAX);
	FUZZ_CHECK(x.m.kind == KRAY_METRIC_HISTOGRAM || !x.m.count);
	bounds = malloc(x.m.nbounds * sizeof(*bounds) + 1);
	buckets = malloc((x.m.nbounds + 1u) * sizeof(*buckets));
	FUZZ_CHECK(bounds && buckets);
	for (unsigned i = 0; i < x.m.nbounds; i++) {
		bounds[i] = wire_metric_bound(&x, i);
		FUZZ_CHECK(bounds[i] - bounds[i] == 0 && (!i || bounds[i] > bounds[i - 1]));
	}
	for (unsigned i = 0; x.m.nbounds && i <= x.m.nbounds; i++) {
		buckets[i] = wire_metric_bucket(&x, i);
		FUZZ_CHECK(buckets[i] <= UINT64_MAX - total);
		total += buckets[i];
	}
	FUZZ_CHECK(!x.m.nbounds || total == x.m.count);
	FUZZ_CHECK(len == sizeof(x.m) + KRAY_PAD8((size_t)x.m.name_len) +
				  KRAY_PAD8((size_t)x.m.help_len) +
				  KRAY_PAD8((size_t)x.m.tags_len) +
				  (x.m.nbounds ? (2u * x.m.nbounds + 1u) * 8u : 0));
	/* The writer makes the same frame again. */
	again_begin(&a, KRAY_MSG_METRIC);
	a.b.len = a.off; /* wire_put_metric() writes its own header */
	wire_put_metric(&a.b, 0x0123456789abcdefull, &x.m, x.name, x.help, x.tags, bounds, buckets);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_metric(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)));
	FUZZ_CHECK(same_bytes(x.name, y.name, x.m.name_len));
	FUZZ_CHECK(same_bytes(x.help, y.help, x.m.help_len));
	FUZZ_CHECK(same_bytes(x.tags, y.tags, x.m.tags_len));
	for (unsigned i = 0; i < x.m.nbounds; i++) /* padding aside, the same numbers */
		FUZZ_CHECK(!memcmp(y.bounds + i * 8, x.bounds + i * 8, 8));
	for (unsigned i = 0; x.m.nbounds && i <= x.m.nbounds; i++)
		FUZZ_CHECK(wire_metric_bucket(&y, i) == wire_metric_bucket(&x, i));
	free(bounds);
	free(buckets);
	again_free(&a);
}

static void chk_actor_reply(const uint8_t *body, size_t len)
{
	struct wire_actor_reply x, y;
	struct again a;
	const uint8_t *p;

	if (wire_dec_actor_reply(body, len, &x))
		return;
	FUZZ_CHECK(x.m.len <= 4096 && len == sizeof(x.m) + KRAY_PAD8((size_t)x.m.len));
	again_begin(&a, KRAY_MSG_ACTOR_REPLY);
	kbuf_put(&a.b, &x.m, sizeof(x.m));
	wire_put_padded(&a.b, x.text, x.m.len);
	p = again_end(&a, len);
	FUZZ_CHECK(wire_dec_actor_reply(p, len, &y) == 0);
	FUZZ_CHECK(!memcmp(&x.m, &y.m, sizeof(x.m)) && same_bytes(x.text, y.text, x.m.len));
	again_free(&a);
}

/* ERROR (written by wire_put_error_frame() when the text allows) and JOB: code + text. */
static void chk_text(const uint8_t *body, size_t len, uint16_t type, size_t max)
{
	int (*dec)(const void *, size_t, struct wire_text *) =
		type == KRAY_MSG_ERROR ? wire_dec_error : wire_dec_job;
	struct kray_msg_error m;
	struct wire_text x, y;
	struct again a;
	const uint8_t *p;
	char *msg;

	if (dec(body, len, &x))
		return;
	FUZZ_CHECK(x.len <= max && len == sizeof(m) + KRAY_PAD8((size_t)x.len));
	if (type == KRAY_MSG_ERROR && (!x.len || !memchr(x.text, 0, x.len))) {
		a = (struct again){ 0 };
		msg = strndup(x.len ? x.text : "", x.len);
		if (!msg)
			abort();
		wire_put_error_frame(&a.b, 0x0123456789abcdefull, x.code, msg);
		free(msg);
	} else {
		again_begin(&a, type);
		m = (struct kray_msg_error){ .code = x.code, .len = x.len };
		kbuf_put(&a.b, &m, sizeof(m));
		wire_put_padded(&a.b, x.text, x.len);
	}
	p = again_end(&a, len);
	FUZZ_CHECK(dec(p, len, &y) == 0);
	FUZZ_CHECK(x.code == y.code && x.len == y.len && same_bytes(x.text, y.text, x.len));
	again_free(&a);
}

static void chk_error(const uint8_t *body, size_t len)
{
	chk_text(body, len, KRAY_MSG_ERROR, 65536);
}

static void chk_job(const uint8_t *body, size_t len)
{
	chk_text(body, len, KRAY_MSG_JOB, KRAY_PATH_MAX);
}

/* The fixed-size bodies: exactly size bytes, copied as they are. */
static void chk_fixed(const uint8_t *body, size_t len, size_t size)
{
	uint8_t dst[sizeof(struct kray_wire_stats)];

	if (wire_dec_fixed(body, len, dst, size))
		return;
	FUZZ_CHECK(len == size && same_bytes(dst, body, size));
}

#define FIXED(name, size)                                       \
	static void chk_##name(const uint8_t *body, size_t len) \
	{                                                       \
		chk_fixed(body, len, size);                     \
	}
FIXED(empty, 0) /* STATUS, ACTOR_STOP */
FIXED(hello_ok, sizeof(struct kray_msg_hello_ok))
FIXED(status_reply, sizeof(struct kray_wire_stats))
FIXED(reject, sizeof(struct kray_msg_reject))
FIXED(create, sizeof(struct kray_msg_create))
FIXED(create_reply, sizeof(struct kray_msg_create_reply))
FIXED(seal, sizeof(struct kray_msg_seal))
FIXED(kill, sizeof(struct kray_msg_kill))
FIXED(cancel, sizeof(struct kray_msg_cancel))
FIXED(job_end, sizeof(struct kray_msg_job))

/* A task forwarded between nodes (issue 7): what remote_on_task() relies on. */
static void chk_fwd_task(const uint8_t *body, size_t len)
{
	struct wire_fwd_task x;

	if (wire_dec_fwd_task(body, len, &x))
		return;
	FUZZ_CHECK(x.m.name_len && !memchr(x.name, 0, x.m.name_len));
	FUZZ_CHECK(x.m.nargs <= KRAY_ARGS_MAX && x.m.num_returns <= KRAY_RETURNS_MAX);
	FUZZ_CHECK(x.m.max_retries >= -1 && x.m.path_len <= KRAY_PATH_MAX);
	FUZZ_CHECK(!memchr(x.path, 0, x.m.path_len));
	/* Its arguments are plain values, refs and actor handles only: walk them. */
	{
		struct wire_rd r = x.args;
		struct wire_value v;

		for (unsigned i = 0; i < x.m.nargs; i++) {
			FUZZ_CHECK(wire_rd_value(&r, &v) == 0);
			FUZZ_CHECK(v.type <= KRAY_WT_BYTES || v.type == KRAY_WT_REF ||
				   v.type == KRAY_WT_ACTOR);
		}
		FUZZ_CHECK(wire_rd_end(&r) == 0);
	}
}

/* An actor's creation record (FWD_ACTOR, ACTOR_RECORD, ACTOR_RESTART): what remote_on_actor()
 * and gactor.c rely on, and the body written again decodes the same. */
static void chk_fwd_actor_as(const uint8_t *body, size_t len, uint16_t type)
{
	struct wire_fwd_actor x, y;
	struct again a;
	const uint8_t *p;
	int r = type == KRAY_MSG_FWD_ACTOR ? wire_dec_fwd_actor(body, len, &x) :
					     wire_dec_actor_record(type, body, len, &x);

	if (r)
		return;
	FUZZ_CHECK(x.f.path_len <= KRAY_PATH_MAX && !memchr(x.path, 0, x.f.path_len));
	if (type == KRAY_MSG_FWD_ACTOR)
		FUZZ_CHECK(!x.rec.op && !x.rec.host && !x.rec.restarts);
	else
		FUZZ_CHECK(x.rec.actor.index == KRAY_OID_ACTOR && !x.rec.pad);
	if (x.rec.op == KRAY_AREC_GONE) {
		FUZZ_CHECK(type == KRAY_MSG_ACTOR_RECORD && len == sizeof(x.rec));
		return;
	}
	FUZZ_CHECK(x.f.actor.index == KRAY_OID_ACTOR && x.f.actor.seq == x.c.m.seq);
	FUZZ_CHECK(type == KRAY_MSG_FWD_ACTOR || oid_eq(&x.f.actor, &x.rec.actor));
	FUZZ_CHECK(x.c.m.class_len && x.c.m.nargs <= KRAY_ARGS_MAX);
	good_name(x.c.cls, x.c.m.class_len);
	again_begin(&a, type);
	if (type != KRAY_MSG_FWD_ACTOR)
		kbuf_put(&a.b, &x.rec, sizeof(x.rec));
	kbuf_put(&a.b, &x.f, sizeof(x.f));
	wire_put_padded(&a.b, x.path, x.f.path_len);
	kbuf_put(&a.b, &x.c.m, sizeof(x.c.m));
	wire_put_padded(&a.b, x.c.cls, x.c.m.class_len);
	wire_put_padded(&a.b, x.c.name, x.c.m.name_len);
	wire_put_padded(&a.b, x.c.ns, x.c.m.ns_len);
	wire_put_padded(&a.b, x.c.res, x.c.m.res_len);
	walk(x.c.args, x.c.m.nargs, SUBMIT_ARGS, &a.b);
	p = again_end(&a, len);
	FUZZ_CHECK((type == KRAY_MSG_FWD_ACTOR ? wire_dec_fwd_actor(p, len, &y) :
						 wire_dec_actor_record(type, p, len, &y)) == 0);
	FUZZ_CHECK(!memcmp(&x.rec, &y.rec, sizeof(x.rec)) && !memcmp(&x.f, &y.f, sizeof(x.f)));
	FUZZ_CHECK(!memcmp(&x.c.m, &y.c.m, sizeof(x.c.m)));
	same_values(x.c.args, y.c.args, x.c.m.nargs);
	again_free(&a);
}

static void chk_fwd_actor(const uint8_t *body, size_t len)
{
	chk_fwd_actor_as(body, len, KRAY_MSG_FWD_ACTOR);
}

static void chk_actor_record(const uint8_t *body, size_t len)
{
	chk_fwd_actor_as(body, len, KRAY_MSG_ACTOR_RECORD);
}

static void chk_actor_restart(const uint8_t *body, size_t len)
{
	chk_fwd_actor_as(body, len, KRAY_MSG_ACTOR_RESTART);
}

FIXED(actor_locate, sizeof(struct kray_msg_actor_locate))

/* OBJ_RANGE: what xfer.c's range request handler relies on (a range not empty, within the
 * largest object, without wrapping), copied as it is. */
static void chk_obj_range(const uint8_t *body, size_t len)
{
	struct kray_msg_obj_range m;

	if (wire_dec_obj_range(body, len, &m))
		return;
	FUZZ_CHECK(len == sizeof(m) && same_bytes(&m, body, sizeof(m)));
	FUZZ_CHECK(m.len >= 1 && m.len <= KRAY_OBJECT_MAX && m.offset < KRAY_OBJECT_MAX &&
		   m.offset + m.len <= KRAY_OBJECT_MAX);
}

typedef void (*chk_fn)(const uint8_t *body, size_t len);

/* The decoder each type's reader uses (krayd's proto.c, libkray's conn.c and api.c).
 * A type added later without an entry here still meets every decoder below. */
static const chk_fn by_type[KRAY_MSG_TYPE_MAX + 1] = {
	[KRAY_MSG_HELLO] = chk_hello,
	[KRAY_MSG_HELLO_OK] = chk_hello_ok,
	[KRAY_MSG_SUBMIT] = chk_submit,
	[KRAY_MSG_GET] = chk_get,
	[KRAY_MSG_GET_REPLY] = chk_get_reply,
	[KRAY_MSG_PUT] = chk_put,
	[KRAY_MSG_RELEASE] = chk_refs,
	[KRAY_MSG_HOLD] = chk_refs,
	[KRAY_MSG_YIELD] = chk_yield,
	[KRAY_MSG_STATUS] = chk_empty,
	[KRAY_MSG_STATUS_REPLY] = chk_status_reply,
	[KRAY_MSG_ERROR] = chk_error,
	[KRAY_MSG_EXEC] = chk_exec,
	[KRAY_MSG_RESULT] = chk_result,
	[KRAY_MSG_REJECT] = chk_reject,
	[KRAY_MSG_JOB] = chk_job,
	[KRAY_MSG_JOB_END] = chk_job_end,
	[KRAY_MSG_CREATE] = chk_create,
	[KRAY_MSG_CREATE_REPLY] = chk_create_reply,
	[KRAY_MSG_SEAL] = chk_seal,
	[KRAY_MSG_UNPIN] = chk_refs,
	[KRAY_MSG_WAIT] = chk_wait,
	[KRAY_MSG_WAIT_REPLY] = chk_wait_reply,
	[KRAY_MSG_ACTOR_CREATE] = chk_actor_create,
	[KRAY_MSG_GET_ACTOR] = chk_get_actor,
	[KRAY_MSG_KILL] = chk_kill,
	[KRAY_MSG_ACTOR_REPLY] = chk_actor_reply,
	[KRAY_MSG_ACTOR_STOP] = chk_empty,
	[KRAY_MSG_FAST_COUNT] = chk_fast_count,
	[KRAY_MSG_CANCEL] = chk_cancel,
	[KRAY_MSG_TIMELINE] = chk_empty,
	[KRAY_MSG_LIST_OBJECTS] = chk_empty,
	[KRAY_MSG_LIST_WORKERS] = chk_empty,
	[KRAY_MSG_METRIC] = chk_metric,
	[KRAY_MSG_GUARDS] = chk_empty,
	[KRAY_MSG_FWD_ACTOR] = chk_fwd_actor,
	[KRAY_MSG_ACTOR_RECORD] = chk_actor_record,
	[KRAY_MSG_ACTOR_RESTART] = chk_actor_restart,
	[KRAY_MSG_ACTOR_LOCATE] = chk_actor_locate,
	[KRAY_MSG_ACTOR_LOCATED] = chk_actor_locate,
	[KRAY_MSG_OBJ_RANGE] = chk_obj_range,
};

static const chk_fn every[] = {
	chk_hello,	  chk_submit,	 chk_exec,	   chk_result,	      chk_get,
	chk_get_reply,	  chk_put,	 chk_refs,	   chk_wait,	      chk_wait_reply,
	chk_actor_create, chk_get_actor, chk_actor_reply,  chk_error,	      chk_job,
	chk_empty,	  chk_hello_ok,	 chk_reject,	   chk_create,	      chk_create_reply,
	chk_seal,	  chk_kill,	 chk_status_reply, chk_cancel,	      chk_fwd_task,
	chk_yield,	  chk_fwd_actor, chk_actor_record, chk_actor_restart, chk_actor_locate,
	chk_fast_count,	  chk_job_end,	 chk_obj_range,	   chk_metric,
};

/* What wire_check_hdr() promises in wire.h. */
static int hdr_model(const struct kray_frame_hdr *h, size_t max_body)
{
	if (h->magic != KRAY_WIRE_MAGIC || h->version != KRAY_WIRE_VERSION)
		return -EPROTO;
	if (!kray_msg_type_known(h->type))
		return -EBADMSG;
	return h->len > max_body ? -EMSGSIZE : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	while (size >= HDR) {
		struct kray_frame_hdr h;
		chk_fn own = NULL;
		uint8_t *body;
		int r;

		memcpy(&h, data, HDR);
		/* A smaller limit too, from the request id, so -EMSGSIZE is reached. */
		FUZZ_CHECK(wire_check_hdr(&h, h.req & 0xffff) == hdr_model(&h, h.req & 0xffff));
		r = wire_check_hdr(&h, KRAY_FRAME_MAX);
		FUZZ_CHECK(r == hdr_model(&h, KRAY_FRAME_MAX));
		if (r || h.len > size - HDR)
			break; /* a bad header closes the connection; a short body waits */
		body = dup_exact(data + HDR, h.len);
		if (h.type < ARRAY_SIZE(by_type))
			own = by_type[h.type];
		if (h.type == KRAY_MSG_KMOD_PIN)
			own = chk_refs; /* krayd's proto.c decodes it as a refs body */
		if (own)
			own(body, h.len);
		for (size_t i = 0; i < ARRAY_SIZE(every); i++)
			if (every[i] != own)
				every[i](body, h.len);
		free(body);
		data += HDR + h.len;
		size -= HDR + h.len;
	}
	return 0;
}
