// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the wire codec (common/wire.h): round trips of every writer/decoder pair,
 * the frame header checks, every malformed-body rule the decoders promise to enforce, and
 * a randomized mutation run (bit flips, truncations, extensions, hostile length fields)
 * in which no decoder may crash or return anything but 0 or -EBADMSG.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/wire.h"

#define HDR sizeof(struct kray_frame_hdr)

/* ---- helpers ------------------------------------------------------------------------ */

/* A frame built with the writers; body/len point inside b. */
struct frame {
	struct kbuf b;
	struct kray_frame_hdr h;
	const uint8_t *body;
	size_t len;
};

static void frame_done(struct frame *f, size_t off)
{
	wire_end(&f->b, off);
	memcpy(&f->h, f->b.data + off, HDR);
	f->body = f->b.data + off + HDR;
	f->len = f->b.len - off - HDR;
	cr_assert_eq(f->h.len, f->len, "header len %u != body bytes %zu", f->h.len, f->len);
	cr_assert_eq(wire_check_hdr(&f->h, KRAY_FRAME_MAX), 0, "writer made a bad header");
	cr_assert_eq(f->len % 8, 0, "body of %zu bytes is not padded to 8", f->len);
}

static uint64_t f64_bits(double d)
{
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	return u;
}

static double bits_f64(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static const struct kray_oid OID_A = { 1, 2, 3, 0 };
static const struct kray_oid OID_B = { 7, 8, 9, KRAY_OID_PUT };
static const uint8_t BYTES5[5] = { 'h', 'e', 'l', 'l', 'o' };
static const uint8_t zeros24[24];

static void put_submit_hdr(struct kbuf *b, const char *name, uint16_t nargs, uint16_t nret,
			   int16_t retries)
{
	struct kray_msg_submit m = { .seq = 42,
				     .job = 5,
				     .num_returns = nret,
				     .nargs = nargs,
				     .max_retries = retries,
				     .name_len = (uint8_t)strlen(name) };

	kbuf_put(b, &m, sizeof(m));
	wire_put_padded(b, name, m.name_len);
}

/* submit square-ish(int 7, f64 2.5, bytes "hello", ref OID_A, bytes "", nil) */
static void build_submit(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_SUBMIT, 99);

	put_submit_hdr(&f->b, "fn_name", 6, 2, -1);
	wire_put_value(&f->b, KRAY_WT_INT64, 0, (uint64_t)-7, NULL, 0);
	wire_put_value(&f->b, KRAY_WT_F64, 0, f64_bits(2.5), NULL, 0);
	wire_put_value(&f->b, KRAY_WT_BYTES, 0, 0, BYTES5, sizeof(BYTES5));
	wire_put_value(&f->b, KRAY_WT_REF, 0, 0, &OID_A, sizeof(OID_A));
	wire_put_value(&f->b, KRAY_WT_BYTES, 0, 0, NULL, 0);
	wire_put_value(&f->b, KRAY_WT_NIL, 0, 0, NULL, 0);
	frame_done(f, off);
}

static void build_hello(struct frame *f)
{
	static const char path[] = "/a/b:/c.so";
	size_t off = wire_begin(&f->b, KRAY_MSG_HELLO, 1);
	struct kray_msg_hello m = {
		.role = KRAY_ROLE_DRIVER, .pid = 1234, .worker_id = 0, .path_len = sizeof(path) - 1
	};

	kbuf_put(&f->b, &m, sizeof(m));
	wire_put_padded(&f->b, path, m.path_len);
	frame_done(f, off);
}

static void build_exec(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_EXEC, 0);
	struct kray_msg_exec m = {
		.task = { 1, 2, 3, 0 }, .job = 4, .num_returns = 3, .nargs = 3, .name_len = 3
	};

	kbuf_put(&f->b, &m, sizeof(m));
	wire_put_padded(&f->b, "abc", 3);
	wire_put_value(&f->b, KRAY_WT_INT64, 0, 11, NULL, 0);
	wire_put_value(&f->b, KRAY_WT_BYTES, 0, 0, BYTES5, sizeof(BYTES5));
	wire_put_value(&f->b, KRAY_WT_F64, 0, f64_bits(-1.0), NULL, 0);
	frame_done(f, off);
}

static void build_result(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_RESULT, 0);
	struct kray_msg_result m = { .task = { 1, 2, 3, 0 }, .exec_ns = 12345, .n = 3 };

	kbuf_put(&f->b, &m, sizeof(m));
	wire_put_value(&f->b, KRAY_WT_INT64, 0, 81, NULL, 0);
	wire_put_value(&f->b, KRAY_WT_NIL, 0, 0, NULL, 0);
	wire_put_value(&f->b, KRAY_WT_BYTES, 0, 0, "xyzzy12", 7);
	frame_done(f, off);
}

static void build_result_err(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_RESULT, 0);
	struct kray_msg_result m = { .task = { 1, 2, 3, 0 }, .n = 1 };

	kbuf_put(&f->b, &m, sizeof(m));
	wire_put_errorf(&f->b, KRAY_WE_TASK, "task %s failed: %d", "fail", 7);
	frame_done(f, off);
}

static void build_get(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_GET, 77);
	struct kray_msg_get m = { .timeout_ms = -1, .n = 2 };

	kbuf_put(&f->b, &m, sizeof(m));
	kbuf_put(&f->b, &OID_A, sizeof(OID_A));
	kbuf_put(&f->b, &OID_B, sizeof(OID_B));
	frame_done(f, off);
}

static void build_get_reply(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_GET_REPLY, 77);
	struct kray_msg_get_reply m = { .status = 0, .n = 3 };

	kbuf_put(&f->b, &m, sizeof(m));
	wire_put_value(&f->b, KRAY_WT_INT64, 0, 9, NULL, 0);
	wire_put_value(&f->b, KRAY_WT_ERROR, KRAY_WE_WORKER_DIED, 0, "died", 4);
	wire_put_value(&f->b, KRAY_WT_BYTES, 0, 0, BYTES5, sizeof(BYTES5));
	frame_done(f, off);
}

static void build_put(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_PUT, 0);

	kbuf_put(&f->b, &OID_B, sizeof(OID_B));
	wire_put_value(&f->b, KRAY_WT_BYTES, 0, 0, "0123456789", 10);
	frame_done(f, off);
}

static void build_refs(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_RELEASE, 0);
	struct kray_msg_refs m = { .n = 2 };

	kbuf_put(&f->b, &m, sizeof(m));
	kbuf_put(&f->b, &OID_A, sizeof(OID_A));
	kbuf_put(&f->b, &OID_B, sizeof(OID_B));
	frame_done(f, off);
}

static void build_error(struct frame *f)
{
	wire_put_error_frame(&f->b, 5, -EPROTO, "bad frame, goodbye");
	frame_done(f, 0);
}

static void build_job(struct frame *f)
{
	static const char path[] = "/x/libfns.so";
	size_t off = wire_begin(&f->b, KRAY_MSG_JOB, 0);
	struct kray_msg_job m = { .job = 3, .path_len = sizeof(path) - 1 };

	kbuf_put(&f->b, &m, sizeof(m));
	wire_put_padded(&f->b, path, m.path_len);
	frame_done(f, off);
}

static void build_wait(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_WAIT, 8);
	struct kray_msg_wait m = { .timeout_ms = 250, .n = 2, .num_ready = 1 };

	kbuf_put(&f->b, &m, sizeof(m));
	kbuf_put(&f->b, &OID_A, sizeof(OID_A));
	kbuf_put(&f->b, &OID_B, sizeof(OID_B));
	frame_done(f, off);
}

/* exec(int 1, FD OID_A of 1 MiB, FD OID_B of 2 MiB) */
static void build_exec_fd(struct frame *f)
{
	size_t off = wire_begin(&f->b, KRAY_MSG_EXEC, 0);
	struct kray_msg_exec m = {
		.task = { 1, 2, 3, 0 }, .job = 4, .num_returns = 1, .nargs = 3, .name_len = 4
	};

	kbuf_put(&f->b, &m, sizeof(m));
	wire_put_padded(&f->b, "fdfn", 4);
	wire_put_value(&f->b, KRAY_WT_INT64, 0, 1, NULL, 0);
	wire_put_value(&f->b, KRAY_WT_FD, 0, 1 << 20, &OID_A, sizeof(OID_A));
	wire_put_value(&f->b, KRAY_WT_FD, 0, 2 << 20, &OID_B, sizeof(OID_B));
	frame_done(f, off);
}

/* Every variable-body decoder behind one signature. */
/* A histogram's update with two tags (keys ascending). */
static const char metric_tags[] = "actor\0a\0route\0/x\0";
static void build_metric(struct frame *f)
{
	static const double bounds[] = { 10, 100, 1000 };
	static const uint64_t buckets[] = { 1, 2, 0, 1 };
	double sum = 5089;
	struct kray_msg_metric m = { .kind = KRAY_METRIC_HISTOGRAM,
				     .name_len = 10,
				     .ntags = 2,
				     .nbounds = 3,
				     .help_len = 8,
				     .tags_len = sizeof(metric_tags) - 1,
				     .count = 4 };

	memcpy(&m.value, &sum, sizeof(sum));
	wire_put_metric(&f->b, 0, &m, "latency_ms", "Latency.", metric_tags, bounds, buckets);
	frame_done(f, 0);
}

enum dec_kind {
	D_HELLO,
	D_SUBMIT,
	D_EXEC,
	D_RESULT,
	D_GET,
	D_GET_REPLY,
	D_PUT,
	D_REFS,
	D_ERROR,
	D_JOB,
	D_HELLO_OK,
	D_REJECT,
	D_STATS,
	D_WAIT,
	D_CREATE,
	D_CREATE_REPLY,
	D_SEAL,
	D_METRIC,
	D_COUNT
};

static const char *const dec_names[D_COUNT] = {
	"hello", "submit", "exec",   "result",	     "get",	 "get_reply",
	"put",	 "refs",   "error",  "job",	     "hello_ok", "reject",
	"stats", "wait",   "create", "create_reply", "seal",	 "metric",
};

/* Touches every byte a decoded value points at, so that sanitizers see overreads. */
static unsigned touch(const void *p, size_t n)
{
	const volatile uint8_t *q = p;
	unsigned s = 0;

	for (size_t i = 0; i < n; i++)
		s += q[i];
	return s;
}

/* Walks n already-validated values: each must decode, and the reader must end exactly. */
static int walk_values(struct wire_rd r, uint32_t n)
{
	struct wire_value v;

	for (uint32_t i = 0; i < n; i++) {
		if (wire_rd_value(&r, &v))
			return -1;
		touch(v.data, v.len);
	}
	return wire_rd_end(&r) ? -1 : 0;
}

/* Counts the FD values among n already-validated values. */
static int count_fds(struct wire_rd r, uint32_t n)
{
	struct wire_value v;
	int fds = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (wire_rd_value(&r, &v))
			return -1;
		fds += v.type == KRAY_WT_FD;
	}
	return fds;
}

/*
 * Runs decoder k over body.  Returns the decoder's result; when it accepted, also checks
 * that what it returned is consistent (walk_values == 0), else returns -1000.
 */
static int run_dec(enum dec_kind k, const void *body, size_t len)
{
	union {
		struct wire_hello hello;
		struct wire_submit submit;
		struct wire_exec exec;
		struct wire_result result;
		struct wire_get get;
		struct wire_get_reply get_reply;
		struct wire_put put;
		struct wire_oids refs;
		struct wire_text text;
		struct kray_msg_hello_ok hello_ok;
		struct kray_msg_reject reject;
		struct kray_wire_stats stats;
		struct wire_wait wait;
		struct kray_msg_create create;
		struct kray_msg_create_reply create_reply;
		struct kray_msg_seal seal;
		struct wire_metric metric;
	} u;
	int rc;

	switch (k) {
	case D_HELLO:
		rc = wire_dec_hello(body, len, &u.hello);
		if (!rc)
			touch(u.hello.path, u.hello.m.path_len);
		return rc;
	case D_SUBMIT:
		rc = wire_dec_submit(body, len, &u.submit);
		if (!rc) {
			touch(u.submit.name, u.submit.m.name_len);
			if (walk_values(u.submit.args, u.submit.m.nargs))
				return -1000;
		}
		return rc;
	case D_EXEC:
		rc = wire_dec_exec(body, len, &u.exec);
		if (!rc) {
			touch(u.exec.name, u.exec.m.name_len);
			if (walk_values(u.exec.args, u.exec.m.nargs) ||
			    count_fds(u.exec.args, u.exec.m.nargs) != u.exec.nfds)
				return -1000;
		}
		return rc;
	case D_RESULT:
		rc = wire_dec_result(body, len, &u.result);
		if (!rc && walk_values(u.result.values, u.result.m.n))
			return -1000;
		return rc;
	case D_GET:
		rc = wire_dec_get(body, len, &u.get);
		if (!rc)
			touch(u.get.ids.oids, u.get.ids.n * sizeof(struct kray_oid));
		return rc;
	case D_GET_REPLY:
		rc = wire_dec_get_reply(body, len, &u.get_reply);
		if (!rc && (walk_values(u.get_reply.values, u.get_reply.n) ||
			    count_fds(u.get_reply.values, u.get_reply.n) != u.get_reply.nfds))
			return -1000;
		return rc;
	case D_PUT:
		rc = wire_dec_put(body, len, &u.put);
		if (!rc)
			touch(u.put.value.data, u.put.value.len);
		return rc;
	case D_REFS:
		rc = wire_dec_refs(body, len, &u.refs);
		if (!rc)
			touch(u.refs.oids, u.refs.n * sizeof(struct kray_oid));
		return rc;
	case D_ERROR:
		rc = wire_dec_error(body, len, &u.text);
		if (!rc)
			touch(u.text.text, u.text.len);
		return rc;
	case D_JOB:
		rc = wire_dec_job(body, len, &u.text);
		if (!rc)
			touch(u.text.text, u.text.len);
		return rc;
	case D_HELLO_OK:
		return wire_dec_fixed(body, len, &u.hello_ok, sizeof(u.hello_ok));
	case D_REJECT:
		return wire_dec_fixed(body, len, &u.reject, sizeof(u.reject));
	case D_STATS:
		return wire_dec_fixed(body, len, &u.stats, sizeof(u.stats));
	case D_WAIT:
		rc = wire_dec_wait(body, len, &u.wait);
		if (!rc) {
			touch(u.wait.ids.oids, u.wait.ids.n * sizeof(struct kray_oid));
			if (u.wait.num_ready > u.wait.ids.n)
				return -1000;
		}
		return rc;
	case D_CREATE:
		return wire_dec_fixed(body, len, &u.create, sizeof(u.create));
	case D_CREATE_REPLY:
		return wire_dec_fixed(body, len, &u.create_reply, sizeof(u.create_reply));
	case D_SEAL:
		return wire_dec_fixed(body, len, &u.seal, sizeof(u.seal));
	case D_METRIC:
		rc = wire_dec_metric(body, len, &u.metric);
		if (!rc) {
			uint64_t total = 0;

			touch(u.metric.name, u.metric.m.name_len);
			touch(u.metric.help, u.metric.m.help_len);
			touch(u.metric.tags, u.metric.m.tags_len);
			for (unsigned i = 0; i < u.metric.m.nbounds; i++)
				if (i && !(wire_metric_bound(&u.metric, i) >
					   wire_metric_bound(&u.metric, i - 1)))
					return -1000;
			for (unsigned i = 0; u.metric.m.nbounds && i <= u.metric.m.nbounds; i++)
				total += wire_metric_bucket(&u.metric, i);
			if (total != u.metric.m.count)
				return -1000;
		}
		return rc;
	default:
		return -1000;
	}
}

/* A copy of len bytes in its own allocation, so that overreads hit the allocation end. */
static uint8_t *dup_exact(const void *p, size_t len)
{
	uint8_t *q = malloc(len ? len : 1);

	cr_assert_not_null(q);
	if (len)
		memcpy(q, p, len);
	return q;
}

/* ---- frame header -------------------------------------------------------------------- */

static struct kray_frame_hdr good_hdr(void)
{
	return (struct kray_frame_hdr){ .magic = KRAY_WIRE_MAGIC,
					.version = KRAY_WIRE_VERSION,
					.type = KRAY_MSG_SUBMIT,
					.len = 64 };
}

Test(hdr, accepts_every_known_type)
{
	struct kray_frame_hdr h = good_hdr();

	for (unsigned t = 1; t <= KRAY_MSG_TYPE_MAX; t++) {
		if (!kray_msg_type_known(t))
			continue;
		h.type = (uint16_t)t;
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "type %u rejected", t);
	}
	h.type = KRAY_MSG_CANCEL;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "CANCEL rejected");
}

Test(hdr, gap_types_rejected)
{
	struct kray_frame_hdr h = good_hdr();

	/* In the Python range (32-39) past its types (and placement groups'), and before
	 * the fast path's: not types. */
	for (unsigned t = KRAY_MSG_PG + 1; t < KRAY_MSG_FAST_TYPE_MIN; t++) {
		if (t == KRAY_MSG_LAZY_MAP || t == KRAY_MSG_JOB_END || /* issue 14's; jobs' end */
		    t == KRAY_MSG_LIST_WORKERS || /* the state API's */
		    t == KRAY_MSG_METRIC) /* kray.util.metrics' */
			continue;
		h.type = (uint16_t)t;
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EBADMSG, "gap type %u accepted",
			     t);
	}
}

/* A large object's value may say it is lazy (KRAY_WV_LAZY), and nothing else. */
Test(wire, fd_value_lazy_flag)
{
	struct kray_oid id = { 1, 2, 3, 4 };
	struct kbuf b = { 0 };
	struct wire_get_reply rep;
	struct kray_msg_get_reply m = { .n = 1 };

	for (unsigned err = 0; err < 3; err++) {
		size_t off;

		b.len = 0;
		off = b.len;
		kbuf_put(&b, &m, sizeof(m));
		wire_put_value(&b, KRAY_WT_FD, (uint8_t)err, 1 << 20, &id, sizeof(id));
		cr_assert_eq(wire_dec_get_reply(b.data + off, b.len - off, &rep) == 0, err <= 1,
			     "FD value with err %u", err);
		if (err <= 1)
			cr_assert_eq(rep.nfds, 1);
	}
	kbuf_free(&b);
}

/* The kmod range (80-87) knows only its types; the second node range (88-92) its own;
 * the rest stays unknown. */
Test(hdr, kmod_range)
{
	struct kray_frame_hdr h = good_hdr();

	h.type = KRAY_MSG_KMOD_PIN;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "KMOD_PIN rejected");
	cr_assert_eq(KRAY_MSG_NODE2_TYPE_MIN, 88, "the second node range starts after kmod's");
	for (unsigned t = KRAY_MSG_NODE_TYPE_MAX + 1; t < 1024; t++) {
		if (t == KRAY_MSG_KMOD_PIN ||
		    (t >= KRAY_MSG_NODE2_TYPE_MIN && t <= KRAY_MSG_NODE2_TYPE_MAX)) {
			h.type = (uint16_t)t;
			cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "type %u rejected", t);
			continue;
		}
		h.type = (uint16_t)t;
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EBADMSG, "type %u accepted", t);
	}
}

Test(hdr, bad_magic)
{
	struct kray_frame_hdr h = good_hdr();

	h.magic = 0x4b415259; /* byte-swapped "KRAY" */
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EPROTO, "bad magic not -EPROTO");
	h.magic = 0;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EPROTO, "zero magic not -EPROTO");
}

Test(hdr, bad_version)
{
	struct kray_frame_hdr h = good_hdr();

	h.version = 0;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EPROTO, "version 0 not -EPROTO");
	h.version = KRAY_WIRE_VERSION + 1;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EPROTO, "version+1 not -EPROTO");
}

Test(hdr, unknown_type)
{
	struct kray_frame_hdr h = good_hdr();

	h.type = 0;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EBADMSG, "type 0 not -EBADMSG");
	h.type = KRAY_MSG_TYPE_MAX + 1;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EBADMSG, "type MAX+1 not -EBADMSG");
	h.type = 0xffff;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EBADMSG, "type 0xffff not -EBADMSG");
	/* The node-to-node range (48-79) is known; the fast path's (40-47) ends right before
	 * it, and the Python range (32-39) is full up to it (39: METRIC). */
	cr_assert_eq(KRAY_MSG_FAST_TYPE_MAX + 1, KRAY_MSG_NODE_TYPE_MIN, "fast range overlaps");
	h.type = KRAY_MSG_FAST_TYPE_MIN - 1;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "METRIC (39) rejected");
	cr_assert_eq(KRAY_MSG_GUARDS_REPLY + 1, KRAY_MSG_CANCEL, "no gap before the Python range");
	/* No gap after the node range: the kmod range starts right after it. */
	cr_assert_eq(KRAY_MSG_NODE_TYPE_MAX + 1, KRAY_MSG_KMOD_PIN, "node range overlaps kmod");
	for (unsigned t = KRAY_MSG_NODE_TYPE_MIN; t <= KRAY_MSG_NODE_TYPE_MAX; t++) {
		h.type = (uint16_t)t;
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "node type %u rejected", t);
	}
}

Test(hdr, oversize_len)
{
	struct kray_frame_hdr h = good_hdr();

	h.len = KRAY_FRAME_MAX;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "len == KRAY_FRAME_MAX rejected");
	h.len = KRAY_FRAME_MAX + 1;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EMSGSIZE,
		     "len > KRAY_FRAME_MAX not -EMSGSIZE");
	h.len = UINT32_MAX;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EMSGSIZE, "len ~0 not -EMSGSIZE");
	h.len = 129;
	cr_assert_eq(wire_check_hdr(&h, 128), -EMSGSIZE, "max_body argument ignored");
	h.len = 128;
	cr_assert_eq(wire_check_hdr(&h, 128), 0, "len == max_body rejected");
}

Test(hdr, writer_fills_header)
{
	struct frame f = { 0 };

	build_get(&f);
	cr_assert_eq(f.h.magic, KRAY_WIRE_MAGIC, "magic");
	cr_assert_eq(f.h.version, KRAY_WIRE_VERSION, "version");
	cr_assert_eq(f.h.type, KRAY_MSG_GET, "type");
	cr_assert_eq(f.h.req, 77, "req not kept");
	cr_assert_eq(f.h.flags, 0, "flags not 0");
	kbuf_free(&f.b);
}

Test(hdr, two_frames_in_one_buffer)
{
	struct kbuf b = { 0 };
	struct kray_frame_hdr h1, h2;
	size_t o1 = wire_begin(&b, KRAY_MSG_STATUS, 1);

	wire_end(&b, o1);
	size_t o2 = wire_begin(&b, KRAY_MSG_REJECT, 2);
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	wire_end(&b, o2);
	memcpy(&h1, b.data + o1, HDR);
	memcpy(&h2, b.data + o2, HDR);
	cr_assert_eq(h1.len, 0, "empty STATUS body has len %u", h1.len);
	cr_assert_eq(h2.len, sizeof(OID_A), "second frame len %u", h2.len);
	cr_assert_eq(o2, HDR, "second frame should start right after the first");
	kbuf_free(&b);
}

/* ---- round trips --------------------------------------------------------------------- */

Test(roundtrip, hello)
{
	struct frame f = { 0 };
	struct wire_hello h;

	build_hello(&f);
	cr_assert_eq(wire_dec_hello(f.body, f.len, &h), 0, "valid hello rejected");
	cr_assert_eq(h.m.role, KRAY_ROLE_DRIVER, "role");
	cr_assert_eq(h.m.pid, 1234, "pid");
	cr_assert_eq(h.m.path_len, 10, "path_len");
	cr_assert(!memcmp(h.path, "/a/b:/c.so", 10), "path bytes differ");
	kbuf_free(&f.b);
}

Test(roundtrip, hello_worker_no_path)
{
	struct frame f = { 0 };
	struct wire_hello h;
	size_t off = wire_begin(&f.b, KRAY_MSG_HELLO, 0);
	struct kray_msg_hello m = { .role = KRAY_ROLE_WORKER, .pid = 9, .worker_id = 17 };

	kbuf_put(&f.b, &m, sizeof(m));
	frame_done(&f, off);
	cr_assert_eq(wire_dec_hello(f.body, f.len, &h), 0, "worker hello rejected");
	cr_assert_eq(h.m.role, KRAY_ROLE_WORKER, "role");
	cr_assert_eq(h.m.worker_id, 17, "worker_id");
	cr_assert_eq(h.m.path_len, 0, "path_len");
	kbuf_free(&f.b);
}

Test(roundtrip, submit_all_arg_types)
{
	struct frame f = { 0 };
	struct wire_submit s;
	struct wire_value v;
	struct kray_oid oid;

	build_submit(&f);
	cr_assert_eq(wire_dec_submit(f.body, f.len, &s), 0, "valid submit rejected");
	cr_assert_eq(s.m.seq, 42, "seq");
	cr_assert_eq(s.m.job, 5, "job");
	cr_assert_eq(s.m.num_returns, 2, "num_returns");
	cr_assert_eq(s.m.nargs, 6, "nargs");
	cr_assert_eq(s.m.max_retries, -1, "max_retries");
	cr_assert_eq(s.m.name_len, 7, "name_len");
	cr_assert(!memcmp(s.name, "fn_name", 7), "name differs");

	cr_assert_eq(wire_rd_value(&s.args, &v), 0, "arg 0");
	cr_assert_eq(v.type, KRAY_WT_INT64, "arg 0 type %u", v.type);
	cr_assert_eq((int64_t)v.scalar, -7, "arg 0 value");

	cr_assert_eq(wire_rd_value(&s.args, &v), 0, "arg 1");
	cr_assert_eq(v.type, KRAY_WT_F64, "arg 1 type %u", v.type);
	cr_assert_float_eq(bits_f64(v.scalar), 2.5, 0.0, "arg 1 value");

	cr_assert_eq(wire_rd_value(&s.args, &v), 0, "arg 2");
	cr_assert_eq(v.type, KRAY_WT_BYTES, "arg 2 type %u", v.type);
	cr_assert_eq(v.len, 5, "arg 2 len %u", v.len);
	cr_assert(!memcmp(v.data, "hello", 5), "arg 2 bytes");

	cr_assert_eq(wire_rd_value(&s.args, &v), 0, "arg 3");
	cr_assert_eq(v.type, KRAY_WT_REF, "arg 3 type %u", v.type);
	cr_assert_eq(v.len, sizeof(oid), "arg 3 len %u", v.len);
	memcpy(&oid, v.data, sizeof(oid));
	cr_assert(oid_eq(&oid, &OID_A), "arg 3 oid differs");

	cr_assert_eq(wire_rd_value(&s.args, &v), 0, "arg 4");
	cr_assert_eq(v.type, KRAY_WT_BYTES, "arg 4 type %u", v.type);
	cr_assert_eq(v.len, 0, "arg 4 (empty bytes) len %u", v.len);

	cr_assert_eq(wire_rd_value(&s.args, &v), 0, "arg 5");
	cr_assert_eq(v.type, KRAY_WT_NIL, "arg 5 type %u", v.type);

	cr_assert_eq(wire_rd_end(&s.args), 0, "args not consumed exactly");
	kbuf_free(&f.b);
}

Test(roundtrip, submit_no_args_max_name)
{
	struct frame f = { 0 };
	struct wire_submit s;
	char name[KRAY_NAME_MAX + 1];
	size_t off = wire_begin(&f.b, KRAY_MSG_SUBMIT, 0);

	memset(name, 'n', KRAY_NAME_MAX);
	name[KRAY_NAME_MAX] = 0;
	put_submit_hdr(&f.b, name, 0, 0, 0);
	frame_done(&f, off);
	cr_assert_eq(wire_dec_submit(f.body, f.len, &s), 0, "255-byte name rejected");
	cr_assert_eq(s.m.name_len, KRAY_NAME_MAX, "name_len");
	cr_assert_eq(s.m.num_returns, 0, "num_returns 0 must be allowed");
	cr_assert_eq(wire_rd_end(&s.args), 0, "no args, reader not at end");
	kbuf_free(&f.b);
}

Test(roundtrip, submit_limits_inclusive)
{
	struct frame f = { 0 };
	struct wire_submit s;
	size_t off = wire_begin(&f.b, KRAY_MSG_SUBMIT, 0);

	put_submit_hdr(&f.b, "f", KRAY_ARGS_MAX, KRAY_RETURNS_MAX, 3);
	for (int i = 0; i < KRAY_ARGS_MAX; i++)
		wire_put_value(&f.b, KRAY_WT_INT64, 0, (uint64_t)i, NULL, 0);
	frame_done(&f, off);
	cr_assert_eq(wire_dec_submit(f.body, f.len, &s), 0,
		     "nargs == KRAY_ARGS_MAX / num_returns == KRAY_RETURNS_MAX rejected");
	cr_assert_eq(s.m.nargs, KRAY_ARGS_MAX, "nargs");
	kbuf_free(&f.b);
}

/* Resources after the name (issue 7): decoded; a list krayd cannot parse is refused. */
Test(roundtrip, submit_resources)
{
	struct frame f = { 0 };
	struct wire_submit s;
	struct kray_msg_submit m = {
		.seq = 1, .num_returns = 1, .nargs = 1, .name_len = 2, .res_len = 11
	};
	size_t off = wire_begin(&f.b, KRAY_MSG_SUBMIT, 0);

	kbuf_put(&f.b, &m, sizeof(m));
	wire_put_padded(&f.b, "fn", 2);
	wire_put_padded(&f.b, "GPU:1,ssd:2", 11);
	wire_put_value(&f.b, KRAY_WT_INT64, 0, 7, NULL, 0);
	frame_done(&f, off);
	cr_assert_eq(wire_dec_submit(f.body, f.len, &s), 0, "submit with resources rejected");
	cr_assert_eq(s.m.res_len, 11);
	cr_assert_eq(memcmp(s.res, "GPU:1,ssd:2", 11), 0, "resources not decoded");
	cr_assert_eq(s.m.nargs, 1);
	kbuf_free(&f.b);

	f = (struct frame){ 0 };
	m.res_len = 5;
	off = wire_begin(&f.b, KRAY_MSG_SUBMIT, 0);
	kbuf_put(&f.b, &m, sizeof(m));
	wire_put_padded(&f.b, "fn", 2);
	wire_put_padded(&f.b, "GPU=1", 5);
	wire_put_value(&f.b, KRAY_WT_INT64, 0, 7, NULL, 0);
	frame_done(&f, off);
	cr_assert_eq(wire_dec_submit(f.body, f.len, &s), -EBADMSG, "bad resources accepted");
	kbuf_free(&f.b);
}

/* A task forwarded between nodes: name, code path, plain and ref arguments only. */
Test(roundtrip, fwd_task)
{
	struct frame f = { 0 };
	struct wire_fwd_task t;
	struct kray_msg_fwd_task m = { .task = OID_A,
				       .job = 3,
				       .num_returns = 2,
				       .nargs = 2,
				       .max_retries = -1,
				       .name_len = 6,
				       .path_len = 9 };
	size_t off = wire_begin(&f.b, KRAY_MSG_FWD_TASK, 0);

	m.task.index = 0;
	kbuf_put(&f.b, &m, sizeof(m));
	wire_put_padded(&f.b, "square", 6);
	wire_put_padded(&f.b, "/opt/jobs", 9);
	wire_put_value(&f.b, KRAY_WT_INT64, 0, 7, NULL, 0);
	wire_put_value(&f.b, KRAY_WT_REF, 0, 0, &OID_A, sizeof(OID_A));
	frame_done(&f, off);
	cr_assert_eq(wire_dec_fwd_task(f.body, f.len, &t), 0, "forwarded task rejected");
	cr_assert_eq(t.m.num_returns, 2);
	cr_assert_eq(memcmp(t.name, "square", 6), 0);
	cr_assert_eq(memcmp(t.path, "/opt/jobs", 9), 0);
	cr_assert_eq(t.args.left, f.len - sizeof(m) - 8 - 16, "arguments not where expected");
	/* One byte short: refused. */
	cr_assert_eq(wire_dec_fwd_task(f.body, f.len - 8, &t), -EBADMSG, "short body accepted");
	kbuf_free(&f.b);

	/* An actor handle travels in one (pushed ahead of it); a memfd value cannot. */
	f = (struct frame){ 0 };
	m.nargs = 1;
	off = wire_begin(&f.b, KRAY_MSG_FWD_TASK, 0);
	kbuf_put(&f.b, &m, sizeof(m));
	wire_put_padded(&f.b, "square", 6);
	wire_put_padded(&f.b, "/opt/jobs", 9);
	wire_put_value(&f.b, KRAY_WT_ACTOR, 0, 0, &OID_A, sizeof(OID_A));
	frame_done(&f, off);
	cr_assert_eq(wire_dec_fwd_task(f.body, f.len, &t), 0, "actor handle refused");
	kbuf_free(&f.b);
	f = (struct frame){ 0 };
	off = wire_begin(&f.b, KRAY_MSG_FWD_TASK, 0);
	kbuf_put(&f.b, &m, sizeof(m));
	wire_put_padded(&f.b, "square", 6);
	wire_put_padded(&f.b, "/opt/jobs", 9);
	wire_put_value(&f.b, KRAY_WT_FD, 0, 64, &OID_A, sizeof(OID_A));
	frame_done(&f, off);
	cr_assert_eq(wire_dec_fwd_task(f.body, f.len, &t), -EBADMSG, "memfd value accepted");
	kbuf_free(&f.b);
}

Test(roundtrip, exec)
{
	struct frame f = { 0 };
	struct wire_exec e;
	struct wire_value v;

	build_exec(&f);
	cr_assert_eq(wire_dec_exec(f.body, f.len, &e), 0, "valid exec rejected");
	cr_assert_eq(e.m.task.seq, 3, "task.seq");
	cr_assert_eq(e.m.job, 4, "job");
	cr_assert_eq(e.m.num_returns, 3, "num_returns");
	cr_assert_eq(e.m.nargs, 3, "nargs");
	cr_assert(!memcmp(e.name, "abc", 3), "name");
	cr_assert_eq(wire_rd_value(&e.args, &v), 0, "arg 0");
	cr_assert_eq(v.type, KRAY_WT_INT64, "arg 0 type");
	cr_assert_eq(v.scalar, 11, "arg 0 value");
	cr_assert_eq(wire_rd_value(&e.args, &v), 0, "arg 1");
	cr_assert_eq(v.type, KRAY_WT_BYTES, "arg 1 type");
	cr_assert(v.len == 5 && !memcmp(v.data, "hello", 5), "arg 1 bytes");
	cr_assert_eq(wire_rd_value(&e.args, &v), 0, "arg 2");
	cr_assert_eq(v.type, KRAY_WT_F64, "arg 2 type");
	cr_assert_float_eq(bits_f64(v.scalar), -1.0, 0.0, "arg 2 value");
	cr_assert_eq(wire_rd_end(&e.args), 0, "exec args not consumed exactly");
	kbuf_free(&f.b);
}

Test(roundtrip, result_values)
{
	struct frame f = { 0 };
	struct wire_result res;
	struct wire_value v;

	build_result(&f);
	cr_assert_eq(wire_dec_result(f.body, f.len, &res), 0, "valid result rejected");
	cr_assert_eq(res.m.n, 3, "n");
	cr_assert_eq(res.m.exec_ns, 12345, "exec_ns");
	cr_assert(oid_eq(&res.m.task, &(struct kray_oid){ 1, 2, 3, 0 }), "task oid");
	cr_assert_eq(wire_rd_value(&res.values, &v), 0, "value 0");
	cr_assert(v.type == KRAY_WT_INT64 && v.scalar == 81, "value 0 is not INT64 81");
	cr_assert_eq(wire_rd_value(&res.values, &v), 0, "value 1");
	cr_assert_eq(v.type, KRAY_WT_NIL, "value 1 is not NIL");
	cr_assert_eq(wire_rd_value(&res.values, &v), 0, "value 2");
	cr_assert(v.type == KRAY_WT_BYTES && v.len == 7 && !memcmp(v.data, "xyzzy12", 7),
		  "value 2 bytes");
	cr_assert_eq(wire_rd_end(&res.values), 0, "values not consumed exactly");
	kbuf_free(&f.b);
}

Test(roundtrip, result_error)
{
	struct frame f = { 0 };
	struct wire_result res;
	struct wire_value v;
	static const char want[] = "task fail failed: 7";

	build_result_err(&f);
	cr_assert_eq(wire_dec_result(f.body, f.len, &res), 0, "error result rejected");
	cr_assert_eq(res.m.n, 1, "n");
	cr_assert_eq(wire_rd_value(&res.values, &v), 0, "value 0");
	cr_assert_eq(v.type, KRAY_WT_ERROR, "type %u", v.type);
	cr_assert_eq(v.err, KRAY_WE_TASK, "err %u", v.err);
	cr_assert_eq(v.len, sizeof(want) - 1, "len %u", v.len);
	cr_assert(!memcmp(v.data, want, v.len), "message %.*s", (int)v.len, (const char *)v.data);
	kbuf_free(&f.b);
}

/* Error texts are whole up to KRAY_ERRMSG_MAX (errmsg below covers the cut past it). */
Test(roundtrip, errorf_keeps_a_long_message)
{
	struct kbuf b = { 0 };
	struct wire_rd r;
	struct wire_value v;
	char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	wire_put_errorf(&b, KRAY_WE_INTERNAL, "%s", big);
	wire_rd_init(&r, b.data, b.len);
	cr_assert_eq(wire_rd_value(&r, &v), 0, "long errorf value rejected");
	cr_assert_eq(v.type, KRAY_WT_ERROR, "type");
	cr_assert_eq(v.len, sizeof(big) - 1, "a %zu-byte message became %u bytes", sizeof(big) - 1,
		     v.len);
	cr_assert_eq(wire_rd_end(&r), 0, "trailing bytes after value");
	kbuf_free(&b);
}

Test(roundtrip, get)
{
	struct frame f = { 0 };
	struct wire_get g;
	struct kray_oid o[2];

	build_get(&f);
	cr_assert_eq(wire_dec_get(f.body, f.len, &g), 0, "valid get rejected");
	cr_assert_eq(g.timeout_ms, -1, "timeout_ms");
	cr_assert_eq(g.ids.n, 2, "n");
	memcpy(o, g.ids.oids, sizeof(o));
	cr_assert(oid_eq(&o[0], &OID_A) && oid_eq(&o[1], &OID_B), "oids differ");
	kbuf_free(&f.b);
}

Test(roundtrip, get_empty)
{
	struct frame f = { 0 };
	struct wire_get g;
	size_t off = wire_begin(&f.b, KRAY_MSG_GET, 0);
	struct kray_msg_get m = { .timeout_ms = 100, .n = 0 };

	kbuf_put(&f.b, &m, sizeof(m));
	frame_done(&f, off);
	cr_assert_eq(wire_dec_get(f.body, f.len, &g), 0, "empty get rejected");
	cr_assert_eq(g.ids.n, 0, "n");
	cr_assert_eq(g.timeout_ms, 100, "timeout_ms");
	kbuf_free(&f.b);
}

Test(roundtrip, get_reply_values)
{
	struct frame f = { 0 };
	struct wire_get_reply g;
	struct wire_value v;

	build_get_reply(&f);
	cr_assert_eq(wire_dec_get_reply(f.body, f.len, &g), 0, "valid get_reply rejected");
	cr_assert_eq(g.status, 0, "status");
	cr_assert_eq(g.n, 3, "n");
	cr_assert_eq(wire_rd_value(&g.values, &v), 0, "value 0");
	cr_assert(v.type == KRAY_WT_INT64 && v.scalar == 9, "value 0");
	cr_assert_eq(wire_rd_value(&g.values, &v), 0, "value 1");
	cr_assert(v.type == KRAY_WT_ERROR && v.err == KRAY_WE_WORKER_DIED && v.len == 4 &&
			  !memcmp(v.data, "died", 4),
		  "value 1 is not the error");
	cr_assert_eq(wire_rd_value(&g.values, &v), 0, "value 2");
	cr_assert(v.type == KRAY_WT_BYTES && v.len == 5, "value 2");
	cr_assert_eq(wire_rd_end(&g.values), 0, "values not consumed exactly");
	kbuf_free(&f.b);
}

Test(roundtrip, get_reply_timeout)
{
	struct frame f = { 0 };
	struct wire_get_reply g;
	size_t off = wire_begin(&f.b, KRAY_MSG_GET_REPLY, 3);
	struct kray_msg_get_reply m = { .status = -ETIMEDOUT, .n = 0 };

	kbuf_put(&f.b, &m, sizeof(m));
	frame_done(&f, off);
	cr_assert_eq(wire_dec_get_reply(f.body, f.len, &g), 0, "timeout reply rejected");
	cr_assert_eq(g.status, -ETIMEDOUT, "status %d", g.status);
	cr_assert_eq(g.n, 0, "n");
	kbuf_free(&f.b);
}

Test(roundtrip, put)
{
	struct frame f = { 0 };
	struct wire_put p;

	build_put(&f);
	cr_assert_eq(wire_dec_put(f.body, f.len, &p), 0, "valid put rejected");
	cr_assert(oid_eq(&p.oid, &OID_B), "oid");
	cr_assert_eq(p.value.type, KRAY_WT_BYTES, "type");
	cr_assert(p.value.len == 10 && !memcmp(p.value.data, "0123456789", 10), "bytes");
	kbuf_free(&f.b);
}

Test(roundtrip, put_scalars)
{
	static const uint8_t types[] = { KRAY_WT_NIL, KRAY_WT_INT64, KRAY_WT_F64 };

	for (size_t i = 0; i < sizeof(types); i++) {
		struct frame f = { 0 };
		struct wire_put p;
		size_t off = wire_begin(&f.b, KRAY_MSG_PUT, 0);

		kbuf_put(&f.b, &OID_A, sizeof(OID_A));
		wire_put_value(&f.b, types[i], 0, 0x1122334455667788ull, NULL, 0);
		frame_done(&f, off);
		cr_assert_eq(wire_dec_put(f.body, f.len, &p), 0, "put of type %u rejected",
			     types[i]);
		cr_assert_eq(p.value.type, types[i], "type");
		cr_assert_eq(p.value.scalar, 0x1122334455667788ull, "scalar");
		kbuf_free(&f.b);
	}
}

Test(roundtrip, refs)
{
	struct frame f = { 0 };
	struct wire_oids o;
	struct kray_oid got[2];

	build_refs(&f);
	cr_assert_eq(wire_dec_refs(f.body, f.len, &o), 0, "valid refs rejected");
	cr_assert_eq(o.n, 2, "n");
	memcpy(got, o.oids, sizeof(got));
	cr_assert(oid_eq(&got[0], &OID_A) && oid_eq(&got[1], &OID_B), "oids differ");
	kbuf_free(&f.b);
}

Test(roundtrip, refs_empty)
{
	struct kray_msg_refs m = { .n = 0 };
	struct wire_oids o;

	cr_assert_eq(wire_dec_refs(&m, sizeof(m), &o), 0, "empty refs rejected");
	cr_assert_eq(o.n, 0, "n");
}

Test(roundtrip, error_frame)
{
	struct frame f = { 0 };
	struct wire_text t;

	build_error(&f);
	cr_assert_eq(f.h.type, KRAY_MSG_ERROR, "type");
	cr_assert_eq(f.h.req, 5, "req");
	cr_assert_eq(wire_dec_error(f.body, f.len, &t), 0, "valid error rejected");
	cr_assert_eq(t.code, -EPROTO, "code %d", t.code);
	cr_assert_eq(t.len, strlen("bad frame, goodbye"), "len %u", t.len);
	cr_assert(!memcmp(t.text, "bad frame, goodbye", t.len), "text");
	kbuf_free(&f.b);
}

Test(roundtrip, error_frame_empty_text)
{
	struct frame f = { 0 };
	struct wire_text t;

	wire_put_error_frame(&f.b, 0, -EINVAL, "");
	frame_done(&f, 0);
	cr_assert_eq(wire_dec_error(f.body, f.len, &t), 0, "empty error text rejected");
	cr_assert_eq(t.code, -EINVAL, "code");
	cr_assert_eq(t.len, 0, "len");
	kbuf_free(&f.b);
}

Test(roundtrip, job)
{
	struct frame f = { 0 };
	struct wire_text t;

	build_job(&f);
	cr_assert_eq(wire_dec_job(f.body, f.len, &t), 0, "valid job rejected");
	cr_assert_eq(t.code, 3, "job id %d", t.code);
	cr_assert(t.len == 12 && !memcmp(t.text, "/x/libfns.so", 12), "path");
	kbuf_free(&f.b);
}

/* JOB_END: a kray_msg_job and nothing after it (its path_len 0). */
Test(roundtrip, job_end)
{
	struct kray_msg_job m = { .job = 9 }, m2;
	struct kbuf b = { 0 };
	struct kray_frame_hdr h;
	size_t off = wire_begin(&b, KRAY_MSG_JOB_END, 0);

	kbuf_put(&b, &m, sizeof(m));
	cr_assert_eq(wire_end(&b, off), 0);
	memcpy(&h, b.data, sizeof(h));
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "JOB_END is a known type");
	cr_assert_eq(KRAY_MSG_JOB_END, 37);
	cr_assert_eq(wire_dec_fixed(b.data + sizeof(h), h.len, &m2, sizeof(m2)), 0);
	cr_assert_eq(m2.job, 9);
	cr_assert_eq(m2.path_len, 0);
	cr_assert_eq(wire_dec_fixed(b.data + sizeof(h), h.len - 1, &m2, sizeof(m2)), -EBADMSG);
	kbuf_free(&b);
}

/* GET_ACTOR: a name (and namespace), or the SELF flag with neither; any other flag, SELF
 * with a name, or no name without SELF is -EBADMSG. */
Test(roundtrip, get_actor_self)
{
	struct {
		struct kray_msg_get_actor m;
		char name[8];
	} f = { .m = { .name_len = 3 }, .name = "abc" };
	struct wire_get_actor g;

	cr_assert_eq(wire_dec_get_actor(&f, sizeof(f), &g), 0);
	cr_assert_eq(g.m.name_len, 3);
	cr_assert_eq(memcmp(g.name, "abc", 3), 0);
	f.m.flags = KRAY_GET_ACTOR_SELF; /* SELF with a name */
	cr_assert_eq(wire_dec_get_actor(&f, sizeof(f), &g), -EBADMSG);
	f.m.name_len = 0;
	cr_assert_eq(wire_dec_get_actor(&f.m, sizeof(f.m), &g), 0);
	cr_assert_eq(g.m.flags, KRAY_GET_ACTOR_SELF);
	cr_assert_null(g.name);
	cr_assert_eq(wire_dec_get_actor(&f, sizeof(f), &g), -EBADMSG, "bytes after it");
	f.m.flags = 2; /* unknown flag */
	cr_assert_eq(wire_dec_get_actor(&f.m, sizeof(f.m), &g), -EBADMSG);
	f.m.flags = 0; /* no name, no SELF */
	cr_assert_eq(wire_dec_get_actor(&f.m, sizeof(f.m), &g), -EBADMSG);
}

/* LIST_WORKERS (38): an empty request, answered with an export-layout TEXT_REPLY. */
Test(roundtrip, list_workers)
{
	struct kbuf b = { 0 };
	struct kray_frame_hdr h;
	struct wire_text t;
	static const char json[] = "{\"workers\":[]}";
	struct kray_msg_error m = { .len = sizeof(json) - 1 };
	size_t off = wire_begin(&b, KRAY_MSG_LIST_WORKERS, 7);

	cr_assert_eq(wire_end(&b, off), 0);
	memcpy(&h, b.data, sizeof(h));
	cr_assert_eq(KRAY_MSG_LIST_WORKERS, 38);
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "LIST_WORKERS is a known type");
	cr_assert_eq(h.len, 0);
	h.type = 39;
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "39 is METRIC");
	kbuf_free(&b);
	b = (struct kbuf){ 0 };
	WIRE_FRAME(&b, KRAY_MSG_TEXT_REPLY, 7, WIRE_FIXED(m), WIRE_PADDED(json, sizeof(json) - 1));
	memcpy(&h, b.data, sizeof(h));
	cr_assert_eq(wire_dec_export(b.data + sizeof(h), h.len, &t), 0);
	cr_assert_eq(t.len, sizeof(json) - 1);
	cr_assert_eq(memcmp(t.text, json, t.len), 0);
	kbuf_free(&b);
}

/* METRIC (39): a histogram's update decodes to what was written. */
Test(metric, roundtrip)
{
	struct frame f = { 0 };
	struct wire_metric w;

	build_metric(&f);
	cr_assert_eq(f.h.type, KRAY_MSG_METRIC);
	cr_assert_eq(KRAY_MSG_METRIC, 39);
	cr_assert_eq(wire_dec_metric(f.body, f.len, &w), 0);
	cr_assert_eq(w.m.kind, KRAY_METRIC_HISTOGRAM);
	cr_assert_eq(w.m.name_len, 10);
	cr_assert_eq(memcmp(w.name, "latency_ms", 10), 0);
	cr_assert_eq(memcmp(w.help, "Latency.", 8), 0);
	cr_assert_eq(w.m.tags_len, sizeof(metric_tags) - 1);
	cr_assert_eq(memcmp(w.tags, metric_tags, w.m.tags_len), 0);
	cr_assert_eq(w.value, 5089.0);
	cr_assert_eq(w.m.count, 4);
	cr_assert_eq(wire_metric_bound(&w, 2), 1000.0);
	cr_assert_eq(wire_metric_bucket(&w, 1), 2);
	cr_assert_eq(wire_metric_bucket(&w, 3), 1);
	kbuf_free(&f.b);
}

/* A counter or gauge frame: header, name, help and tags; value is a double's bits. */
static void metric_frame(struct frame *f, uint8_t kind, uint8_t flags, double v, const char *name,
			 const char *tags, size_t tags_len, uint8_t ntags)
{
	struct kray_msg_metric m = { .kind = kind,
				     .flags = flags,
				     .name_len = (uint8_t)strlen(name),
				     .ntags = ntags,
				     .tags_len = (uint16_t)tags_len };

	memcpy(&m.value, &v, sizeof(v));
	*f = (struct frame){ 0 };
	wire_put_metric(&f->b, 0, &m, name, "", tags, NULL, NULL);
	frame_done(f, 0);
}

static int metric_rc(uint8_t kind, uint8_t flags, double v, const char *name, const char *tags,
		     size_t tags_len, uint8_t ntags)
{
	struct frame f;
	struct wire_metric w;
	int rc;

	metric_frame(&f, kind, flags, v, name, tags, tags_len, ntags);
	rc = wire_dec_metric(f.body, f.len, &w);
	kbuf_free(&f.b);
	return rc;
}

#define T(s) s, sizeof(s) - 1
/* Every rule kray_wire.h gives a METRIC frame. */
Test(metric, malformed_rejected)
{
	const uint8_t C = KRAY_METRIC_COUNTER, G = KRAY_METRIC_GAUGE;
	char longname[KRAY_METRIC_NAME_MAX + 2];
	struct frame f;
	struct wire_metric w;

	cr_assert_eq(metric_rc(C, 0, 1, "ok", T("a\0x\0b\0y\0"), 2), 0);
	cr_assert_eq(metric_rc(G, 0, -INFINITY, "g:1", T(""), 0), 0, "a gauge takes any value");
	cr_assert_eq(metric_rc(G, 0, NAN, "g", T("a\0\0"), 1), 0, "an empty tag value is one");
	cr_assert_eq(metric_rc(C, KRAY_METRIC_DEFINE, 0, "d", T(""), 0), 0);
	/* values */
	cr_assert_eq(metric_rc(C, 0, 0, "c", T(""), 0), -EBADMSG, "counter by 0");
	cr_assert_eq(metric_rc(C, 0, -1, "c", T(""), 0), -EBADMSG, "counter down");
	cr_assert_eq(metric_rc(C, 0, INFINITY, "c", T(""), 0), -EBADMSG, "counter by inf");
	cr_assert_eq(metric_rc(C, 0, NAN, "c", T(""), 0), -EBADMSG, "counter by NaN");
	cr_assert_eq(metric_rc(C, KRAY_METRIC_DEFINE, 1, "d", T(""), 0), -EBADMSG,
		     "a declaration with a value");
	cr_assert_eq(metric_rc(C, KRAY_METRIC_DEFINE, 0, "d", T("a\0x\0"), 1), -EBADMSG,
		     "a declaration with tags");
	cr_assert_eq(metric_rc(C, 0x2, 1, "c", T(""), 0), -EBADMSG, "unknown flag");
	cr_assert_eq(metric_rc(0, 0, 1, "c", T(""), 0), -EBADMSG, "kind 0");
	cr_assert_eq(metric_rc(4, 0, 1, "c", T(""), 0), -EBADMSG, "kind 4");
	/* names */
	cr_assert_eq(metric_rc(C, 0, 1, "", T(""), 0), -EBADMSG, "empty name");
	cr_assert_eq(metric_rc(C, 0, 1, "1a", T(""), 0), -EBADMSG, "leading digit");
	cr_assert_eq(metric_rc(C, 0, 1, "a-b", T(""), 0), -EBADMSG, "dash");
	cr_assert_eq(metric_rc(C, 0, 1, "a b", T(""), 0), -EBADMSG, "space");
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	cr_assert_eq(metric_rc(C, 0, 1, longname, T(""), 0), -EBADMSG, "name too long");
	/* tags */
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("b\0x\0a\0y\0"), 2), -EBADMSG, "keys descending");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("a\0x\0a\0y\0"), 2), -EBADMSG, "key repeated");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("ab\0x\0a\0y\0"), 2), -EBADMSG,
		     "a prefix after its extension");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("le\0x\0"), 1), -EBADMSG, "le is reserved");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("__a\0x\0"), 1), -EBADMSG, "__ is reserved");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("a:b\0x\0"), 1), -EBADMSG, "colon in a key");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("\0x\0"), 1), -EBADMSG, "empty key");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("a\0x\0"), 2), -EBADMSG, "fewer pairs than ntags");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("a\0x\0b\0y\0"), 1), -EBADMSG, "bytes left over");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T("a\0x"), 1), -EBADMSG, "value not ended");
	cr_assert_eq(metric_rc(C, 0, 1, "c", T(""), KRAY_METRIC_TAGS_MAX + 1), -EBADMSG,
		     "too many tags");
	/* a value over KRAY_METRIC_VALUE_MAX bytes */
	{
		char t[2 + KRAY_METRIC_VALUE_MAX + 2];

		memcpy(t, "a", 2);
		memset(t + 2, 'v', KRAY_METRIC_VALUE_MAX + 1);
		t[sizeof(t) - 1] = 0;
		cr_assert_eq(metric_rc(C, 0, 1, "c", t, sizeof(t), 1), -EBADMSG, "long value");
		t[sizeof(t) - 2] = 0; /* KRAY_METRIC_VALUE_MAX bytes then: fine */
		cr_assert_eq(metric_rc(C, 0, 1, "c", t, sizeof(t) - 1, 1), 0);
	}
	/* a counter with boundaries, a histogram without */
	metric_frame(&f, C, 0, 1, "c", "", 0, 0);
	((struct kray_msg_metric *)(void *)f.body)->nbounds = 1;
	cr_assert_eq(wire_dec_metric(f.body, f.len, &w), -EBADMSG, "counter with bounds");
	((struct kray_msg_metric *)(void *)f.body)->nbounds = 0;
	((struct kray_msg_metric *)(void *)f.body)->kind = KRAY_METRIC_HISTOGRAM;
	cr_assert_eq(wire_dec_metric(f.body, f.len, &w), -EBADMSG, "histogram without bounds");
	((struct kray_msg_metric *)(void *)f.body)->kind = C;
	((struct kray_msg_metric *)(void *)f.body)->pad = 1;
	cr_assert_eq(wire_dec_metric(f.body, f.len, &w), -EBADMSG, "pad set");
	kbuf_free(&f.b);
}
#undef T

/* A histogram's boundaries are finite and ascending, its buckets add up to its count. */
Test(metric, histogram_rules)
{
	struct frame f = { 0 };
	struct wire_metric w;
	struct kray_msg_metric *m;
	uint8_t *p;
	size_t bounds_at;
	double d;
	uint64_t n;

	build_metric(&f);
	p = (uint8_t *)f.body;
	m = (struct kray_msg_metric *)(void *)p;
	bounds_at = sizeof(*m) + KRAY_PAD8(10) + KRAY_PAD8(8) + KRAY_PAD8(m->tags_len);
	cr_assert_eq(wire_dec_metric(p, f.len, &w), 0);
	m->count = 5;
	cr_assert_eq(wire_dec_metric(p, f.len, &w), -EBADMSG, "count is not the buckets' sum");
	m->count = 4;
	d = 5; /* 10, 5, 1000 */
	memcpy(p + bounds_at + 8, &d, 8);
	cr_assert_eq(wire_dec_metric(p, f.len, &w), -EBADMSG, "descending bounds");
	d = INFINITY;
	memcpy(p + bounds_at + 16, &d, 8);
	d = 100;
	memcpy(p + bounds_at + 8, &d, 8);
	cr_assert_eq(wire_dec_metric(p, f.len, &w), -EBADMSG, "an infinite bound");
	d = 1000;
	memcpy(p + bounds_at + 16, &d, 8);
	cr_assert_eq(wire_dec_metric(p, f.len, &w), 0);
	n = UINT64_MAX;
	memcpy(p + bounds_at + 24, &n, 8);
	cr_assert_eq(wire_dec_metric(p, f.len, &w), -EBADMSG, "bucket counts overflow");
	n = 1;
	memcpy(p + bounds_at + 24, &n, 8);
	d = NAN;
	memcpy(&m->value, &d, 8);
	cr_assert_eq(wire_dec_metric(p, f.len, &w), -EBADMSG, "a NaN sum");
	d = 5089;
	memcpy(&m->value, &d, 8);
	cr_assert_eq(wire_dec_metric(p, f.len - 8, &w), -EBADMSG, "short");
	cr_assert_eq(wire_dec_metric(p, f.len, &w), 0);
	kbuf_free(&f.b);
}

/* OBJ_RANGE (92, in the second node range): a fixed body whose range is not empty and ends
 * within KRAY_OBJECT_MAX; anything else is -EBADMSG (krayd closes the link). */
Test(roundtrip, obj_range)
{
	struct kray_msg_obj_range m = { .oid = { 3, 1, 7, 0 }, .offset = 12u << 20, .len = 4096 },
				  m2;
	struct kbuf b = { 0 };
	struct kray_frame_hdr h;
	size_t off = wire_begin(&b, KRAY_MSG_OBJ_RANGE, 0);

	kbuf_put(&b, &m, sizeof(m));
	cr_assert_eq(wire_end(&b, off), 0);
	memcpy(&h, b.data, sizeof(h));
	cr_assert_eq(KRAY_MSG_OBJ_RANGE, 92);
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "OBJ_RANGE is a known type");
	cr_assert_eq(wire_dec_obj_range(b.data + sizeof(h), h.len, &m2), 0);
	cr_assert(oid_eq(&m2.oid, &m.oid) && m2.offset == m.offset && m2.len == m.len);
	cr_assert_eq(wire_dec_obj_range(b.data + sizeof(h), h.len - 1, &m2), -EBADMSG, "short");
	m2 = m;
	m2.len = 0;
	cr_assert_eq(wire_dec_obj_range(&m2, sizeof(m2), &m), -EBADMSG, "empty range accepted");
	m2.len = 1;
	m2.offset = KRAY_OBJECT_MAX;
	cr_assert_eq(wire_dec_obj_range(&m2, sizeof(m2), &m), -EBADMSG, "past the max accepted");
	m2.offset = KRAY_OBJECT_MAX - 1;
	cr_assert_eq(wire_dec_obj_range(&m2, sizeof(m2), &m), 0, "the max's last byte refused");
	m2.offset = 8;
	m2.len = UINT64_MAX - 4; /* offset + len wraps */
	cr_assert_eq(wire_dec_obj_range(&m2, sizeof(m2), &m), -EBADMSG, "wrapping range accepted");
	kbuf_free(&b);
}

Test(roundtrip, fixed_bodies)
{
	struct kray_msg_hello_ok ok = { .node = 1, .client = 2, .job = 3, .inline_max = 4 }, ok2;
	struct kray_msg_reject rj = { .task = { 5, 6, 7, 0 } }, rj2;
	struct kray_wire_stats st, st2;

	for (size_t i = 0; i < sizeof(st) / 8; i++)
		((uint64_t *)&st)[i] = i * 1000 + 1;
	cr_assert_eq(wire_dec_fixed(&ok, sizeof(ok), &ok2, sizeof(ok2)), 0, "hello_ok");
	cr_assert(!memcmp(&ok, &ok2, sizeof(ok)), "hello_ok differs");
	cr_assert_eq(wire_dec_fixed(&rj, sizeof(rj), &rj2, sizeof(rj2)), 0, "reject");
	cr_assert(oid_eq(&rj.task, &rj2.task), "reject differs");
	cr_assert_eq(wire_dec_fixed(&st, sizeof(st), &st2, sizeof(st2)), 0, "stats");
	cr_assert(!memcmp(&st, &st2, sizeof(st)), "stats differ");

	cr_assert_eq(wire_dec_fixed(&st, sizeof(st) - 1, &st2, sizeof(st2)), -EBADMSG,
		     "short fixed body accepted");
	cr_assert_eq(wire_dec_fixed(&st, sizeof(st), &ok2, sizeof(ok2)), -EBADMSG,
		     "long fixed body accepted");
	cr_assert_eq(wire_dec_fixed(&ok, 0, &ok2, sizeof(ok2)), -EBADMSG,
		     "empty fixed body accepted");
}

/* ---- malformed bodies ---------------------------------------------------------------- */

/* Builds every valid sample body: kinds[i] decodes frames[i]. */
#define NSAMPLES 19
static void build_samples(struct frame *f, enum dec_kind *kinds)
{
	static struct kray_msg_hello_ok ok = { 1, 2, 3, 4 };
	static struct kray_msg_reject rj = { { 5, 6, 7, 0 } };
	static struct kray_wire_stats st = { .objects = 3 };
	static struct kray_msg_create cr = { .oid = { 1, 2, 3, KRAY_OID_PUT }, .size = 1 << 20 };
	size_t off;
	int i = 0;

	memset(f, 0, NSAMPLES * sizeof(*f));
	build_hello(&f[i]), kinds[i++] = D_HELLO;
	build_submit(&f[i]), kinds[i++] = D_SUBMIT;
	build_exec(&f[i]), kinds[i++] = D_EXEC;
	build_result(&f[i]), kinds[i++] = D_RESULT;
	build_result_err(&f[i]), kinds[i++] = D_RESULT;
	build_get(&f[i]), kinds[i++] = D_GET;
	build_get_reply(&f[i]), kinds[i++] = D_GET_REPLY;
	build_put(&f[i]), kinds[i++] = D_PUT;
	build_refs(&f[i]), kinds[i++] = D_REFS;
	build_error(&f[i]), kinds[i++] = D_ERROR;
	build_job(&f[i]), kinds[i++] = D_JOB;
	off = wire_begin(&f[i].b, KRAY_MSG_HELLO_OK, 0);
	kbuf_put(&f[i].b, &ok, sizeof(ok));
	frame_done(&f[i], off), kinds[i++] = D_HELLO_OK;
	off = wire_begin(&f[i].b, KRAY_MSG_STATUS_REPLY, 0);
	kbuf_put(&f[i].b, &st, sizeof(st));
	frame_done(&f[i], off), kinds[i++] = D_STATS;
	off = wire_begin(&f[i].b, KRAY_MSG_REJECT, 0);
	kbuf_put(&f[i].b, &rj, sizeof(rj));
	frame_done(&f[i], off), kinds[i++] = D_REJECT;
	build_wait(&f[i]), kinds[i++] = D_WAIT;
	off = wire_begin(&f[i].b, KRAY_MSG_CREATE, 0);
	kbuf_put(&f[i].b, &cr, sizeof(cr));
	frame_done(&f[i], off), kinds[i++] = D_CREATE;
	off = wire_begin(&f[i].b, KRAY_MSG_SEAL, 0);
	kbuf_put(&f[i].b, &OID_B, sizeof(OID_B));
	frame_done(&f[i], off), kinds[i++] = D_SEAL;
	build_exec_fd(&f[i]), kinds[i++] = D_EXEC;
	build_metric(&f[i]), kinds[i++] = D_METRIC;
	cr_assert_eq(i, NSAMPLES, "sample count");
}

static void free_samples(struct frame *f)
{
	for (int i = 0; i < NSAMPLES; i++)
		kbuf_free(&f[i].b);
}

Test(malformed, samples_are_valid)
{
	struct frame f[NSAMPLES];
	enum dec_kind k[NSAMPLES];

	build_samples(f, k);
	for (int i = 0; i < NSAMPLES; i++)
		cr_assert_eq(run_dec(k[i], f[i].body, f[i].len), 0, "sample %d (%s) rejected", i,
			     dec_names[k[i]]);
	free_samples(f);
}

Test(malformed, submit_every_truncation)
{
	struct frame f = { 0 };
	struct wire_submit s;

	build_submit(&f);
	for (size_t n = 0; n < f.len; n++) {
		uint8_t *p = dup_exact(f.body, n);

		cr_assert_eq(wire_dec_submit(p, n, &s), -EBADMSG,
			     "submit truncated to %zu of %zu bytes not rejected", n, f.len);
		free(p);
	}
	kbuf_free(&f.b);
}

Test(malformed, every_decoder_every_truncation)
{
	struct frame f[NSAMPLES];
	enum dec_kind k[NSAMPLES];

	build_samples(f, k);
	for (int i = 0; i < NSAMPLES; i++) {
		for (size_t n = 0; n < f[i].len; n++) {
			uint8_t *p = dup_exact(f[i].body, n);
			int rc = run_dec(k[i], p, n);

			cr_assert_eq(rc, -EBADMSG, "%s truncated to %zu of %zu bytes: rc %d",
				     dec_names[k[i]], n, f[i].len, rc);
			free(p);
		}
	}
	free_samples(f);
}

Test(malformed, trailing_garbage)
{
	struct frame f[NSAMPLES];
	enum dec_kind k[NSAMPLES];
	static const size_t extra[] = { 1, 7, 8, 16, 24 };

	build_samples(f, k);
	for (int i = 0; i < NSAMPLES; i++) {
		for (size_t e = 0; e < sizeof(extra) / sizeof(extra[0]); e++) {
			size_t n = f[i].len + extra[e];
			uint8_t *p = calloc(1, n);

			cr_assert_not_null(p);
			memcpy(p, f[i].body, f[i].len);
			cr_assert_eq(run_dec(k[i], p, n), -EBADMSG,
				     "%s with %zu trailing zero bytes accepted", dec_names[k[i]],
				     extra[e]);
			free(p);
		}
	}
	free_samples(f);
}

/* A submit body with one custom header; args appended by the caller. */
static int dec_submit_with(struct kray_msg_submit m, const void *name, size_t name_bytes,
			   void (*args)(struct kbuf *))
{
	struct kbuf b = { 0 };
	struct wire_submit s;
	int rc;

	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, name, name_bytes);
	if (args)
		args(&b);
	rc = wire_dec_submit(b.data, b.len, &s);
	kbuf_free(&b);
	return rc;
}

static void one_int(struct kbuf *b)
{
	wire_put_value(b, KRAY_WT_INT64, 0, 1, NULL, 0);
}

Test(malformed, submit_header_fields)
{
	struct kray_msg_submit m = { .num_returns = 1, .nargs = 1, .name_len = 3 };

	cr_assert_eq(dec_submit_with(m, "abc", 3, one_int), 0, "baseline submit rejected");

	struct kray_msg_submit z = m;
	z.name_len = 0;
	cr_assert_eq(dec_submit_with(z, "", 0, one_int), -EBADMSG, "name_len 0 accepted");

	cr_assert_eq(dec_submit_with(m, "a\0c", 3, one_int), -EBADMSG, "name with NUL accepted");
	cr_assert_eq(dec_submit_with(m, "\0bc", 3, one_int), -EBADMSG,
		     "name starting with NUL accepted");

	struct kray_msg_submit a = m;
	a.nargs = KRAY_ARGS_MAX + 1;
	cr_assert_eq(dec_submit_with(a, "abc", 3, one_int), -EBADMSG,
		     "nargs > KRAY_ARGS_MAX accepted");
	a.nargs = 0xffff;
	cr_assert_eq(dec_submit_with(a, "abc", 3, one_int), -EBADMSG, "nargs 0xffff accepted");

	struct kray_msg_submit r = m;
	r.num_returns = KRAY_RETURNS_MAX + 1;
	cr_assert_eq(dec_submit_with(r, "abc", 3, one_int), -EBADMSG,
		     "num_returns > KRAY_RETURNS_MAX accepted");

	struct kray_msg_submit mr = m;
	mr.max_retries = -2;
	cr_assert_eq(dec_submit_with(mr, "abc", 3, one_int), -EBADMSG, "max_retries -2 accepted");
	mr.max_retries = -1;
	cr_assert_eq(dec_submit_with(mr, "abc", 3, one_int), 0, "max_retries -1 rejected");

	struct kray_msg_submit n2 = m;
	n2.nargs = 2;
	cr_assert_eq(dec_submit_with(n2, "abc", 3, one_int), -EBADMSG,
		     "nargs 2 with 1 value accepted");
	n2.nargs = 0;
	cr_assert_eq(dec_submit_with(n2, "abc", 3, one_int), -EBADMSG,
		     "nargs 0 with 1 value accepted");

	struct kray_msg_submit nl = m;
	nl.name_len = 200;
	cr_assert_eq(dec_submit_with(nl, "abc", 3, one_int), -EBADMSG,
		     "name_len past the body accepted");
}

/* Decodes a submit whose single argument is the raw value v (+payload). */
static int dec_submit_raw_arg(struct kray_wire_value v, const void *payload, size_t n)
{
	struct kbuf b = { 0 };
	struct kray_msg_submit m = { .num_returns = 1, .nargs = 1, .name_len = 1 };
	struct wire_submit s;
	int rc;

	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, "f", 1);
	kbuf_put(&b, &v, sizeof(v));
	if (n)
		wire_put_padded(&b, payload, n);
	rc = wire_dec_submit(b.data, b.len, &s);
	kbuf_free(&b);
	return rc;
}

Test(malformed, value_rules)
{
	static const uint8_t zeros[32];
	struct kray_wire_value v;

	v = (struct kray_wire_value){ .type = KRAY_WT_INT64, .scalar = 5 };
	cr_assert_eq(dec_submit_raw_arg(v, NULL, 0), 0, "baseline INT64 rejected");

	v = (struct kray_wire_value){ .type = KRAY_WT_MAX + 1 };
	cr_assert_eq(dec_submit_raw_arg(v, NULL, 0), -EBADMSG, "type KRAY_WT_MAX + 1 accepted");
	v = (struct kray_wire_value){ .type = 0xff };
	cr_assert_eq(dec_submit_raw_arg(v, NULL, 0), -EBADMSG, "type 255 accepted");

	v = (struct kray_wire_value){ .type = KRAY_WT_INT64, .len = 8 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 8), -EBADMSG, "INT64 with len 8 accepted");
	v = (struct kray_wire_value){ .type = KRAY_WT_F64, .len = 8 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 8), -EBADMSG, "F64 with len 8 accepted");
	v = (struct kray_wire_value){ .type = KRAY_WT_NIL, .len = 8 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 8), -EBADMSG, "NIL with len 8 accepted");
	v = (struct kray_wire_value){ .type = KRAY_WT_INT64, .err = KRAY_WE_TASK };
	cr_assert_eq(dec_submit_raw_arg(v, NULL, 0), -EBADMSG, "INT64 with err accepted");
	v = (struct kray_wire_value){ .type = KRAY_WT_BYTES, .err = KRAY_WE_TASK, .len = 1 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 1), -EBADMSG, "BYTES with err accepted");

	v = (struct kray_wire_value){ .type = KRAY_WT_REF, .len = 16 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 16), 0, "REF with len 16 rejected");
	v = (struct kray_wire_value){ .type = KRAY_WT_REF, .len = 8 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 8), -EBADMSG, "REF with len 8 accepted");
	v = (struct kray_wire_value){ .type = KRAY_WT_REF, .len = 24 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 24), -EBADMSG, "REF with len 24 accepted");
	v = (struct kray_wire_value){ .type = KRAY_WT_REF, .len = 0 };
	cr_assert_eq(dec_submit_raw_arg(v, NULL, 0), -EBADMSG, "REF with len 0 accepted");

	v = (struct kray_wire_value){ .type = KRAY_WT_BYTES, .len = 100 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 10), -EBADMSG,
		     "BYTES longer than the body accepted");
	v = (struct kray_wire_value){ .type = KRAY_WT_BYTES, .len = UINT32_MAX };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 16), -EBADMSG, "BYTES len ~0 accepted");
	v = (struct kray_wire_value){ .type = KRAY_WT_BYTES, .len = KRAY_FRAME_MAX + 1 };
	cr_assert_eq(dec_submit_raw_arg(v, zeros, 16), -EBADMSG,
		     "BYTES len > KRAY_FRAME_MAX accepted");
}

/* Decodes a result with one raw value. */
static int dec_result_raw(struct kray_wire_value v, const void *payload, size_t n)
{
	struct kbuf b = { 0 };
	struct kray_msg_result m = { .n = 1 };
	struct wire_result res;
	int rc;

	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, &v, sizeof(v));
	if (n)
		wire_put_padded(&b, payload, n);
	rc = wire_dec_result(b.data, b.len, &res);
	kbuf_free(&b);
	return rc;
}

Test(malformed, error_value_rules)
{
	struct kray_wire_value v;

	v = (struct kray_wire_value){ .type = KRAY_WT_ERROR, .err = KRAY_WE_TASK, .len = 3 };
	cr_assert_eq(dec_result_raw(v, "why", 3), 0, "baseline ERROR rejected");
	v.len = 0;
	cr_assert_eq(dec_result_raw(v, NULL, 0), 0, "ERROR with empty text rejected");
	v = (struct kray_wire_value){ .type = KRAY_WT_ERROR, .err = KRAY_WE_NONE, .len = 3 };
	cr_assert_eq(dec_result_raw(v, "why", 3), -EBADMSG, "ERROR with err 0 accepted");
	v.err = KRAY_WE_MAX + 1;
	cr_assert_eq(dec_result_raw(v, "why", 3), -EBADMSG, "ERROR with err > MAX accepted");
	v.err = 0xff;
	cr_assert_eq(dec_result_raw(v, "why", 3), -EBADMSG, "ERROR with err 255 accepted");
}

Test(malformed, ref_inside_result)
{
	struct kray_wire_value v = { .type = KRAY_WT_REF, .len = 16 };

	cr_assert_eq(dec_result_raw(v, &OID_A, 16), -EBADMSG, "REF inside result accepted");
}

Test(malformed, result_counts)
{
	struct kbuf b = { 0 };
	struct kray_msg_result m = { .n = KRAY_RETURNS_MAX + 1 };
	struct wire_result res;

	kbuf_put(&b, &m, sizeof(m));
	for (int i = 0; i < KRAY_RETURNS_MAX + 1; i++)
		wire_put_value(&b, KRAY_WT_NIL, 0, 0, NULL, 0);
	cr_assert_eq(wire_dec_result(b.data, b.len, &res), -EBADMSG,
		     "result with n > KRAY_RETURNS_MAX accepted");
	kbuf_free(&b);

	m.n = 2;
	kbuf_put(&b, &m, sizeof(m));
	wire_put_value(&b, KRAY_WT_NIL, 0, 0, NULL, 0);
	cr_assert_eq(wire_dec_result(b.data, b.len, &res), -EBADMSG,
		     "result n=2 with 1 value accepted");
	kbuf_free(&b);

	m.n = 0;
	kbuf_put(&b, &m, sizeof(m));
	cr_assert_eq(wire_dec_result(b.data, b.len, &res), 0, "result n=0 rejected");
	kbuf_free(&b);
}

Test(malformed, error_inside_submit_args)
{
	struct kray_wire_value v = { .type = KRAY_WT_ERROR, .err = KRAY_WE_TASK, .len = 4 };

	cr_assert_eq(dec_submit_raw_arg(v, "oops", 4), -EBADMSG,
		     "ERROR inside submit args accepted");
}

Test(malformed, exec_rejects_ref_and_error)
{
	struct kbuf b = { 0 };
	struct kray_msg_exec m = { .num_returns = 1, .nargs = 1, .name_len = 1 };
	struct wire_exec e;

	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, "f", 1);
	wire_put_value(&b, KRAY_WT_REF, 0, 0, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_exec(b.data, b.len, &e), -EBADMSG,
		     "REF inside exec args accepted (should be resolved by krayd)");
	kbuf_free(&b);

	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, "f", 1);
	wire_put_value(&b, KRAY_WT_ERROR, KRAY_WE_TASK, 0, "x", 1);
	cr_assert_eq(wire_dec_exec(b.data, b.len, &e), -EBADMSG, "ERROR inside exec args accepted");
	kbuf_free(&b);

	m.name_len = 0;
	kbuf_put(&b, &m, sizeof(m));
	wire_put_value(&b, KRAY_WT_INT64, 0, 0, NULL, 0);
	cr_assert_eq(wire_dec_exec(b.data, b.len, &e), -EBADMSG, "exec name_len 0 accepted");
	kbuf_free(&b);

	m.name_len = 2;
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, "a\0", 2);
	wire_put_value(&b, KRAY_WT_INT64, 0, 0, NULL, 0);
	cr_assert_eq(wire_dec_exec(b.data, b.len, &e), -EBADMSG, "exec name with NUL accepted");
	kbuf_free(&b);

	m = (struct kray_msg_exec){ .num_returns = 1, .nargs = KRAY_ARGS_MAX + 1, .name_len = 1 };
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, "f", 1);
	cr_assert_eq(wire_dec_exec(b.data, b.len, &e), -EBADMSG,
		     "exec nargs > KRAY_ARGS_MAX accepted");
	kbuf_free(&b);

	m = (struct kray_msg_exec){ .num_returns = KRAY_RETURNS_MAX + 1, .name_len = 1 };
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, "f", 1);
	cr_assert_eq(wire_dec_exec(b.data, b.len, &e), -EBADMSG,
		     "exec num_returns > KRAY_RETURNS_MAX accepted");
	kbuf_free(&b);
}

Test(malformed, refs_count_mismatch)
{
	struct kbuf b = { 0 };
	struct kray_msg_refs m = { .n = 2 };
	struct wire_oids o;

	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_refs(b.data, b.len, &o), -EBADMSG, "n=2 with 1 oid accepted");
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_refs(b.data, b.len, &o), 0, "n=2 with 2 oids rejected");
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_refs(b.data, b.len, &o), -EBADMSG, "n=2 with 3 oids accepted");
	cr_assert_eq(wire_dec_refs(b.data, b.len - 8, &o), -EBADMSG, "n=2 with 2.5 oids accepted");
	kbuf_free(&b);

	m.n = 0;
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_refs(b.data, b.len, &o), -EBADMSG, "n=0 with 1 oid accepted");
	kbuf_free(&b);
}

Test(malformed, refs_too_many)
{
	struct kbuf b = { 0 };
	struct kray_msg_refs m = { .n = KRAY_REFS_MAX };
	struct kray_msg_get g = { .timeout_ms = 0, .n = KRAY_REFS_MAX };
	struct wire_oids o;
	struct wire_get wg;

	/* exactly at the limit is fine */
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, NULL, (size_t)KRAY_REFS_MAX * 16);
	cr_assert_eq(wire_dec_refs(b.data, b.len, &o), 0, "n == KRAY_REFS_MAX rejected");
	kbuf_free(&b);

	/* one more, with a body that matches the count, must still be rejected */
	m.n = KRAY_REFS_MAX + 1;
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, NULL, (size_t)(KRAY_REFS_MAX + 1) * 16);
	cr_assert_eq(wire_dec_refs(b.data, b.len, &o), -EBADMSG, "refs n > KRAY_REFS_MAX accepted");
	kbuf_free(&b);

	g.n = KRAY_REFS_MAX + 1;
	kbuf_put(&b, &g, sizeof(g));
	kbuf_put(&b, NULL, (size_t)(KRAY_REFS_MAX + 1) * 16);
	cr_assert_eq(wire_dec_get(b.data, b.len, &wg), -EBADMSG, "get n > KRAY_REFS_MAX accepted");
	kbuf_free(&b);

	/* a count whose byte size would overflow 32 bits */
	m.n = 0x10000001u;
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, NULL, 16);
	cr_assert_eq(wire_dec_refs(b.data, b.len, &o), -EBADMSG, "refs n 0x10000001 accepted");
	kbuf_free(&b);
}

Test(malformed, get_count_mismatch)
{
	struct kbuf b = { 0 };
	struct kray_msg_get g = { .timeout_ms = 5, .n = 3 };
	struct wire_get wg;

	kbuf_put(&b, &g, sizeof(g));
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_get(b.data, b.len, &wg), -EBADMSG, "get n=3 with 2 oids accepted");
	kbuf_free(&b);
}

Test(malformed, get_reply_rules)
{
	struct kbuf b = { 0 };
	struct kray_msg_get_reply m = { .status = -ETIMEDOUT, .n = 1 };
	struct wire_get_reply g;

	kbuf_put(&b, &m, sizeof(m));
	wire_put_value(&b, KRAY_WT_INT64, 0, 1, NULL, 0);
	cr_assert_eq(wire_dec_get_reply(b.data, b.len, &g), -EBADMSG,
		     "get_reply with status != 0 and n != 0 accepted");
	kbuf_free(&b);

	m = (struct kray_msg_get_reply){ .status = 0, .n = 1 };
	kbuf_put(&b, &m, sizeof(m));
	wire_put_value(&b, KRAY_WT_REF, 0, 0, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_get_reply(b.data, b.len, &g), -EBADMSG,
		     "REF inside get_reply accepted");
	kbuf_free(&b);

	m = (struct kray_msg_get_reply){ .status = 0, .n = KRAY_REFS_MAX + 1 };
	kbuf_put(&b, &m, sizeof(m));
	cr_assert_eq(wire_dec_get_reply(b.data, b.len, &g), -EBADMSG,
		     "get_reply n > KRAY_REFS_MAX accepted");
	kbuf_free(&b);
}

Test(malformed, put_rules)
{
	struct kbuf b = { 0 };
	struct wire_put p;

	kbuf_put(&b, &OID_A, sizeof(OID_A));
	wire_put_value(&b, KRAY_WT_REF, 0, 0, &OID_B, sizeof(OID_B));
	cr_assert_eq(wire_dec_put(b.data, b.len, &p), -EBADMSG, "put of a REF accepted");
	kbuf_free(&b);

	kbuf_put(&b, &OID_A, sizeof(OID_A));
	wire_put_value(&b, KRAY_WT_ERROR, KRAY_WE_TASK, 0, "e", 1);
	cr_assert_eq(wire_dec_put(b.data, b.len, &p), -EBADMSG, "put of an ERROR accepted");
	kbuf_free(&b);

	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_put(b.data, b.len, &p), -EBADMSG, "put without a value accepted");
	kbuf_free(&b);
}

Test(malformed, hello_rules)
{
	struct kbuf b = { 0 };
	struct kray_msg_hello m = { .role = 0 };
	struct wire_hello h;
	char *path;

	kbuf_put(&b, &m, sizeof(m));
	cr_assert_eq(wire_dec_hello(b.data, b.len, &h), -EBADMSG, "role 0 accepted");
	kbuf_free(&b);

	m.role = 3;
	kbuf_put(&b, &m, sizeof(m));
	cr_assert_eq(wire_dec_hello(b.data, b.len, &h), -EBADMSG, "role 3 accepted");
	kbuf_free(&b);

	path = calloc(1, KRAY_PATH_MAX + 8);
	cr_assert_not_null(path);
	memset(path, 'p', KRAY_PATH_MAX + 1);
	m = (struct kray_msg_hello){ .role = KRAY_ROLE_DRIVER, .path_len = KRAY_PATH_MAX };
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, path, KRAY_PATH_MAX);
	cr_assert_eq(wire_dec_hello(b.data, b.len, &h), 0, "path of KRAY_PATH_MAX rejected");
	kbuf_free(&b);

	m.path_len = KRAY_PATH_MAX + 1;
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, path, KRAY_PATH_MAX + 1);
	cr_assert_eq(wire_dec_hello(b.data, b.len, &h), -EBADMSG,
		     "path longer than KRAY_PATH_MAX accepted");
	kbuf_free(&b);
	free(path);
}

Test(malformed, text_rules)
{
	struct kbuf b = { 0 };
	struct {
		int32_t code;
		uint32_t len;
	} m = { -EPROTO, 65537 };
	struct wire_text t;
	char *big = calloc(1, 65544);

	cr_assert_not_null(big);
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, big, m.len);
	cr_assert_eq(wire_dec_error(b.data, b.len, &t), -EBADMSG,
		     "error text over 64 KiB accepted");
	/* an export (the timeline) may be longer */
	cr_assert_eq(wire_dec_export(b.data, b.len, &t), 0, "a 64 KiB + 1 export refused");
	cr_assert_eq(t.len, 65537);
	kbuf_free(&b);

	m.len = KRAY_PATH_MAX + 1;
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, big, m.len);
	cr_assert_eq(wire_dec_job(b.data, b.len, &t), -EBADMSG,
		     "job path over KRAY_PATH_MAX accepted");
	kbuf_free(&b);

	m.len = 9;
	kbuf_put(&b, &m, sizeof(m));
	wire_put_padded(&b, big, 8);
	cr_assert_eq(wire_dec_error(b.data, b.len, &t), -EBADMSG,
		     "error text longer than the body accepted");
	cr_assert_eq(wire_dec_export(b.data, b.len, &t), -EBADMSG,
		     "export text longer than the body accepted");
	kbuf_free(&b);
	free(big);
}

Test(malformed, reader_bounds)
{
	uint8_t buf[16] = { 0 };
	struct wire_rd r;
	const void *p;
	uint8_t dst[16];

	wire_rd_init(&r, buf, sizeof(buf));
	cr_assert_eq(wire_rd_fixed(&r, dst, 17), -EBADMSG, "fixed read past end");
	cr_assert_eq(r.left, 16, "failed read moved the reader");
	/* 9 bytes pad to 16: fits exactly */
	cr_assert_eq(wire_rd_bytes(&r, 9, &p), 0, "9 bytes (+pad) in 16 rejected");
	cr_assert_eq(r.left, 0, "padding not skipped");
	cr_assert_eq(wire_rd_bytes(&r, 1, &p), -EBADMSG, "read past end accepted");
	wire_rd_init(&r, buf, sizeof(buf));
	cr_assert_eq(wire_rd_bytes(&r, 16, &p), 0, "16 bytes of 16 rejected");
	cr_assert_eq(wire_rd_end(&r), 0, "not at end");
	wire_rd_init(&r, buf, 15);
	cr_assert_eq(wire_rd_bytes(&r, 9, &p), -EBADMSG, "9 bytes (+pad) in 15 accepted");
	wire_rd_init(&r, buf, sizeof(buf));
	cr_assert_eq(wire_rd_bytes(&r, SIZE_MAX - 3, &p), -EBADMSG, "huge n accepted");
	cr_assert_eq(wire_rd_bytes(&r, (size_t)UINT32_MAX + 1, &p), -EBADMSG,
		     "n of 4 GiB accepted");
}

/* ---- large-object values (FD, OBJECT) and WAIT --------------------------------------- */

Test(roundtrip, exec_with_fds)
{
	struct frame f = { 0 };
	struct wire_exec e;
	struct wire_value v;
	struct kray_oid o;

	build_exec_fd(&f);
	cr_assert_eq(wire_dec_exec(f.body, f.len, &e), 0, "exec with FD values rejected");
	cr_assert_eq(e.nfds, 2, "nfds %d, want 2", e.nfds);
	cr_assert_eq(wire_rd_value(&e.args, &v), 0, "arg 0");
	cr_assert_eq(v.type, KRAY_WT_INT64, "arg 0 type");
	cr_assert_eq(wire_rd_value(&e.args, &v), 0, "arg 1");
	cr_assert_eq(v.type, KRAY_WT_FD, "arg 1 type %u", v.type);
	cr_assert_eq(v.scalar, 1 << 20, "arg 1 size %llu", (unsigned long long)v.scalar);
	memcpy(&o, v.data, sizeof(o));
	cr_assert(oid_eq(&o, &OID_A), "arg 1 oid");
	cr_assert_eq(wire_rd_value(&e.args, &v), 0, "arg 2");
	cr_assert(v.type == KRAY_WT_FD && v.scalar == 2 << 20, "arg 2");
	cr_assert_eq(wire_rd_end(&e.args), 0, "args not consumed exactly");
	kbuf_free(&f.b);
}

Test(roundtrip, get_reply_with_fd)
{
	struct frame f = { 0 };
	struct wire_get_reply g;
	size_t off = wire_begin(&f.b, KRAY_MSG_GET_REPLY, 1);
	struct kray_msg_get_reply m = { .status = 0, .n = 2 };

	kbuf_put(&f.b, &m, sizeof(m));
	wire_put_value(&f.b, KRAY_WT_FD, 0, 123456, &OID_A, sizeof(OID_A));
	wire_put_value(&f.b, KRAY_WT_INT64, 0, 1, NULL, 0);
	frame_done(&f, off);
	cr_assert_eq(wire_dec_get_reply(f.body, f.len, &g), 0, "get_reply with an FD rejected");
	cr_assert_eq(g.nfds, 1, "nfds %d, want 1", g.nfds);
	kbuf_free(&f.b);
}

Test(roundtrip, result_with_object)
{
	struct frame f = { 0 };
	struct wire_result res;
	struct wire_value v;
	size_t off = wire_begin(&f.b, KRAY_MSG_RESULT, 0);
	struct kray_msg_result m = { .task = { 1, 2, 3, 0 }, .n = 2 };

	kbuf_put(&f.b, &m, sizeof(m));
	wire_put_value(&f.b, KRAY_WT_OBJECT, 0, 0, &OID_B, sizeof(OID_B));
	wire_put_value(&f.b, KRAY_WT_NIL, 0, 0, NULL, 0);
	frame_done(&f, off);
	cr_assert_eq(wire_dec_result(f.body, f.len, &res), 0, "result with an OBJECT rejected");
	cr_assert_eq(wire_rd_value(&res.values, &v), 0, "value 0");
	cr_assert_eq(v.type, KRAY_WT_OBJECT, "value 0 type %u", v.type);
	kbuf_free(&f.b);
}

Test(roundtrip, wait)
{
	struct frame f = { 0 };
	struct wire_wait w;
	struct kray_oid o[2];

	build_wait(&f);
	cr_assert_eq(wire_dec_wait(f.body, f.len, &w), 0, "valid wait rejected");
	cr_assert_eq(w.timeout_ms, 250, "timeout_ms");
	cr_assert_eq(w.num_ready, 1, "num_ready");
	cr_assert_eq(w.ids.n, 2, "n");
	memcpy(o, w.ids.oids, sizeof(o));
	cr_assert(oid_eq(&o[0], &OID_A) && oid_eq(&o[1], &OID_B), "oids differ");
	kbuf_free(&f.b);
}

Test(roundtrip, create_and_seal_fixed)
{
	struct kray_msg_create c = { .oid = { 1, 2, 3, KRAY_OID_PUT }, .size = 99 }, c2;
	struct kray_msg_create_reply r = { .status = -ENOSPC }, r2;
	struct kray_msg_seal s = { .oid = { 4, 5, 6, KRAY_OID_PUT } }, s2;

	cr_assert_eq(wire_dec_fixed(&c, sizeof(c), &c2, sizeof(c2)), 0, "create");
	cr_assert(c2.size == 99 && oid_eq(&c2.oid, &c.oid), "create differs");
	cr_assert_eq(wire_dec_fixed(&r, sizeof(r), &r2, sizeof(r2)), 0, "create_reply");
	cr_assert_eq(r2.status, -ENOSPC, "create_reply status");
	cr_assert_eq(wire_dec_fixed(&s, sizeof(s), &s2, sizeof(s2)), 0, "seal");
	cr_assert(oid_eq(&s2.oid, &s.oid), "seal differs");
	cr_assert_eq(wire_dec_fixed(&c, sizeof(c) - 8, &c2, sizeof(c2)), -EBADMSG,
		     "short create accepted");
}

/* Where FD and OBJECT values may appear, and their shape. */
Test(malformed, fd_and_object_placement)
{
	struct kray_wire_value fd = { .type = KRAY_WT_FD, .len = 16, .scalar = 1 << 20 };
	struct kray_wire_value obj = { .type = KRAY_WT_OBJECT, .len = 16 };
	struct kbuf b = { 0 };
	struct wire_put p;
	struct wire_get_reply g;

	/* clients never send fds: not in submit args, not in a put */
	cr_assert_eq(dec_submit_raw_arg(fd, &OID_A, 16), -EBADMSG, "FD in submit args accepted");
	cr_assert_eq(dec_submit_raw_arg(obj, &OID_A, 16), -EBADMSG,
		     "OBJECT in submit args accepted");
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	kbuf_put(&b, &fd, sizeof(fd));
	kbuf_put(&b, &OID_B, sizeof(OID_B));
	cr_assert_eq(wire_dec_put(b.data, b.len, &p), -EBADMSG, "put of an FD accepted");
	kbuf_free(&b);
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	kbuf_put(&b, &obj, sizeof(obj));
	kbuf_put(&b, &OID_B, sizeof(OID_B));
	cr_assert_eq(wire_dec_put(b.data, b.len, &p), -EBADMSG, "put of an OBJECT accepted");
	kbuf_free(&b);

	/* a worker result may name an OBJECT, never an FD */
	cr_assert_eq(dec_result_raw(obj, &OID_A, 16), 0, "OBJECT in a result rejected");
	cr_assert_eq(dec_result_raw(fd, &OID_A, 16), -EBADMSG, "FD in a result accepted");

	/* a get reply carries FDs but not OBJECTs */
	struct kray_msg_get_reply m = { .n = 1 };
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, &obj, sizeof(obj));
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_get_reply(b.data, b.len, &g), -EBADMSG,
		     "OBJECT in a get reply accepted");
	kbuf_free(&b);

	/* shape: 16-byte oid payload, no err */
	fd.len = 8;
	cr_assert_eq(dec_result_raw(fd, &OID_A, 8), -EBADMSG, "FD with len 8 accepted");
	obj.len = 24;
	cr_assert_eq(dec_result_raw(obj, zeros24, 24), -EBADMSG, "OBJECT with len 24 accepted");
	obj.len = 16;
	obj.err = KRAY_WE_TASK;
	cr_assert_eq(dec_result_raw(obj, &OID_A, 16), -EBADMSG, "OBJECT with err accepted");
}

/* FD values in an exec are only for large objects; REF/ERROR/OBJECT are not allowed. */
Test(malformed, exec_value_types)
{
	static const uint8_t bad[] = { KRAY_WT_REF, KRAY_WT_ERROR, KRAY_WT_OBJECT };

	for (size_t i = 0; i < sizeof(bad); i++) {
		struct kbuf b = { 0 };
		struct kray_msg_exec m = { .num_returns = 1, .nargs = 1, .name_len = 1 };
		struct wire_exec e;

		kbuf_put(&b, &m, sizeof(m));
		wire_put_padded(&b, "f", 1);
		wire_put_value(&b, bad[i], bad[i] == KRAY_WT_ERROR ? KRAY_WE_TASK : 0, 0, &OID_A,
			       sizeof(OID_A));
		cr_assert_eq(wire_dec_exec(b.data, b.len, &e), -EBADMSG,
			     "value type %u in exec args accepted", bad[i]);
		kbuf_free(&b);
	}
}

Test(malformed, wait_rules)
{
	struct kbuf b = { 0 };
	struct kray_msg_wait m = { .timeout_ms = -1, .n = 1, .num_ready = 2 };
	struct wire_wait w;

	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_wait(b.data, b.len, &w), -EBADMSG, "num_ready > n accepted");
	kbuf_free(&b);

	m = (struct kray_msg_wait){ .n = 2, .num_ready = 1 };
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, &OID_A, sizeof(OID_A));
	cr_assert_eq(wire_dec_wait(b.data, b.len, &w), -EBADMSG, "wait n=2 with 1 oid accepted");
	kbuf_free(&b);

	m = (struct kray_msg_wait){ .n = KRAY_REFS_MAX + 1, .num_ready = 1 };
	kbuf_put(&b, &m, sizeof(m));
	kbuf_put(&b, NULL, (size_t)(KRAY_REFS_MAX + 1) * 16);
	cr_assert_eq(wire_dec_wait(b.data, b.len, &w), -EBADMSG, "wait n > KRAY_REFS_MAX accepted");
	kbuf_free(&b);

	m = (struct kray_msg_wait){ .n = 0, .num_ready = 0 };
	kbuf_put(&b, &m, sizeof(m));
	cr_assert_eq(wire_dec_wait(b.data, b.len, &w), 0, "empty wait rejected");
	kbuf_free(&b);
}

/* ---- randomized mutations ------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static const uint32_t interesting[] = {
	0,
	1,
	7,
	8,
	15,
	16,
	17,
	255,
	256,
	1023,
	1024,
	1025,
	0x7fff,
	0x8000,
	0xffff,
	0x10000,
	0x10001,
	0x7fffffff,
	0x80000000u,
	0xfffffff8u,
	0xfffffff9u,
	0xffffffffu,
	KRAY_FRAME_MAX,
	KRAY_FRAME_MAX + 1,
};

/* Mutates p[0..*len) in place (cap bytes available); may change *len. */
static void mutate(uint8_t *p, size_t *len, size_t cap)
{
	unsigned nmut = 1 + (unsigned)(rnd() % 4);

	for (unsigned m = 0; m < nmut; m++) {
		switch (rnd() % 6) {
		case 0: /* bit flip */
		case 1:
			if (*len) {
				size_t i = rnd() % *len;

				p[i] ^= (uint8_t)(1u << (rnd() % 8));
			}
			break;
		case 2: /* truncate */
			if (*len)
				*len = rnd() % *len;
			break;
		case 3: /* extend with random bytes */ {
			size_t add = 1 + rnd() % 24;

			if (*len + add > cap)
				add = cap - *len;
			for (size_t i = 0; i < add; i++)
				p[*len + i] = (uint8_t)rnd();
			*len += add;
			break;
		}
		case 4: /* a hostile 32-bit field at an aligned offset */
			if (*len >= 4) {
				size_t off = (rnd() % (*len / 4)) * 4;
				uint32_t v = interesting[rnd() % (sizeof(interesting) /
								  sizeof(interesting[0]))];

				memcpy(p + off, &v, sizeof(v));
			}
			break;
		case 5: /* random byte */
			if (*len)
				p[rnd() % *len] = (uint8_t)rnd();
			break;
		}
	}
}

Test(fuzz, random_mutations_never_crash, .timeout = 120)
{
	struct frame f[NSAMPLES];
	enum dec_kind k[NSAMPLES];
	size_t cap = 0;
	const uint64_t seed = 0x6b72617964ull;
	unsigned accepted = 0;

	rng_state = seed;
	build_samples(f, k);
	for (int i = 0; i < NSAMPLES; i++)
		if (f[i].len + 64 > cap)
			cap = f[i].len + 64;

	for (unsigned it = 0; it < 100000; it++) {
		int s = (int)(rnd() % NSAMPLES);
		size_t len = f[s].len;
		uint8_t *work = malloc(cap);
		uint8_t *p;

		cr_assert_not_null(work);
		memcpy(work, f[s].body, len);
		mutate(work, &len, cap);
		/* exact-size copy so that any overread leaves the allocation */
		p = dup_exact(work, len);
		free(work);

		for (int d = 0; d < D_COUNT; d++) {
			int rc = run_dec((enum dec_kind)d, p, len);

			if (rc != 0 && rc != -EBADMSG)
				cr_assert_fail("iteration %u (seed %#llx, sample %s, len %zu): "
					       "%s decoder returned %d",
					       it, (unsigned long long)seed, dec_names[k[s]], len,
					       dec_names[d], rc);
			if (!rc)
				accepted++;
		}

		/* the header checker on a mutated header, too */
		struct kray_frame_hdr h = f[s].h;
		size_t hl = sizeof(h);

		mutate((uint8_t *)&h, &hl, sizeof(h));
		int hrc = wire_check_hdr(&h, KRAY_FRAME_MAX);

		if (hrc != 0 && hrc != -EPROTO && hrc != -EBADMSG && hrc != -EMSGSIZE)
			cr_assert_fail("iteration %u: wire_check_hdr returned %d", it, hrc);
		free(p);
	}
	/* sanity: the mutations are not so destructive that nothing ever decodes */
	cr_assert_gt(accepted, 100, "only %u mutated bodies decoded: mutator too harsh?", accepted);
	free_samples(f);
}

/* The BPF fast path's range (40-47) knows 40-47; the gaps around it stay unknown. */
Test(hdr, fast_range)
{
	struct kray_frame_hdr h = good_hdr();

	for (unsigned t = KRAY_MSG_FAST_TYPE_MIN; t <= KRAY_MSG_FAST_TYPE_MAX; t++) {
		h.type = (uint16_t)t;
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0, "fast type %u rejected", t);
	}
	for (unsigned t = KRAY_MSG_CANCEL + 1; t < KRAY_MSG_FAST_TYPE_MIN; t++) {
		if (t == KRAY_MSG_HOLD || t == KRAY_MSG_YIELD || t == KRAY_MSG_PG ||
		    t == KRAY_MSG_LAZY_MAP || t == KRAY_MSG_JOB_END || t == KRAY_MSG_LIST_WORKERS ||
		    t == KRAY_MSG_METRIC) /* the Python range's */
			continue;
		h.type = (uint16_t)t;
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EBADMSG, "type %u accepted", t);
	}
	for (unsigned t = KRAY_MSG_FAST_TYPE_MAX + 1; t < KRAY_MSG_NODE_TYPE_MIN; t++) {
		h.type = (uint16_t)t;
		cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), -EBADMSG, "type %u accepted", t);
	}
	cr_assert_eq(KRAY_MSG_FAST_EXEC, 40);
	cr_assert_eq(KRAY_MSG_FAST_STORE, 46);
	cr_assert_eq(KRAY_MSG_FAST_COUNT, 47);
}

/* The fast frame's flags are distinct bits; an actor call's trailer is 24 bytes, the
 * actor's id first (bpf/fastpath.bpf.c reads it at the frame's end). */
Test(wire, fast_flags_and_actor_trailer)
{
	const uint32_t flags[] = { KRAY_FAST_STORED, KRAY_FAST_NOT_RUN, KRAY_FAST_ACTOR,
				   KRAY_FAST_NO_ACTOR };

	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(flags[i] & (flags[i] - 1), 0, "flag %u is not one bit", flags[i]);
		for (unsigned j = 0; j < i; j++)
			cr_assert_eq(flags[i] & flags[j], 0);
	}
	cr_assert_eq(sizeof(struct kray_msg_fast_actor), 24);
	cr_assert_eq(offsetof(struct kray_msg_fast_actor, actor), 0);
	cr_assert_eq(offsetof(struct kray_msg_fast_actor, after_seq), 16);
}

/* FAST_COUNT: a worker's counts of one function's fast calls. */
Test(fast_count, round_trip_and_limits)
{
	struct kray_msg_fast_count m = {
		.run_ns = 5000, .runs = 10, .failed = 3, .stored = 2, .name_len = 6
	};
	struct wire_fast_count f;
	struct kray_frame_hdr h;
	struct kbuf b = { 0 };
	uint8_t *body;

	wire_put_fast_count(&b, &m, "square", NULL);
	memcpy(&h, b.data, sizeof(h));
	cr_assert_eq(h.type, KRAY_MSG_FAST_COUNT);
	cr_assert_eq(wire_check_hdr(&h, KRAY_FRAME_MAX), 0);
	cr_assert_eq(h.len, sizeof(m) + 8);
	body = b.data + sizeof(h);
	cr_assert_eq(wire_dec_fast_count(body, h.len, &f), 0);
	cr_assert_eq(f.m.runs, 10);
	cr_assert_eq(f.m.failed, 3);
	cr_assert_eq(f.m.stored, 2);
	cr_assert_eq(f.m.run_ns, 5000);
	cr_assert(!memcmp(f.name, "square", 6));
	/* Short, long, or one byte in the padding of the fixed part: refused. */
	cr_assert_eq(wire_dec_fast_count(body, h.len - 8, &f), -EBADMSG);
	cr_assert_eq(wire_dec_fast_count(body, sizeof(m) - 1, &f), -EBADMSG);
	body[offsetof(struct kray_msg_fast_count, pad)] = 1;
	cr_assert_eq(wire_dec_fast_count(body, h.len, &f), -EBADMSG);
	body[offsetof(struct kray_msg_fast_count, pad)] = 0;
	/* Records said that are not there: refused. */
	body[offsetof(struct kray_msg_fast_count, nrec)] = 1;
	cr_assert_eq(wire_dec_fast_count(body, h.len, &f), -EBADMSG);
	body[offsetof(struct kray_msg_fast_count, nrec)] = 0;
	/* More failed and stored than runs, no name, a NUL in the name: refused. */
	m.failed = 9;
	memcpy(body, &m, sizeof(m));
	cr_assert_eq(wire_dec_fast_count(body, h.len, &f), -EBADMSG);
	m.failed = 0;
	m.name_len = 0;
	memcpy(body, &m, sizeof(m));
	cr_assert_eq(wire_dec_fast_count(body, sizeof(m), &f), -EBADMSG);
	m.name_len = 6;
	memcpy(body, &m, sizeof(m));
	body[sizeof(m) + 2] = 0;
	cr_assert_eq(wire_dec_fast_count(body, h.len, &f), -EBADMSG);
	kbuf_free(&b);
}

/* FAST_COUNT's records (each call, for krayd's timeline): as many as said, at most runs,
 * each failed 0 or 1. */
Test(fast_count, records)
{
	struct kray_msg_fast_count m = {
		.run_ns = 30, .runs = 3, .failed = 1, .name_len = 3, .nrec = 2
	};
	struct kray_fast_run runs[2] = {
		{ .task = { 1, 2, 3, 0 }, .end_ns = 100, .run_ns = 10, .job = 4 },
		{ .task = { 1, 2, 4, 0 }, .end_ns = 200, .run_ns = 20, .job = 4, .failed = 1 },
	}, got;
	struct wire_fast_count f;
	struct kray_frame_hdr h;
	struct kbuf b = { 0 };
	uint8_t *body;

	wire_put_fast_count(&b, &m, "add", runs);
	memcpy(&h, b.data, sizeof(h));
	body = b.data + sizeof(h);
	cr_assert_eq(h.len, sizeof(m) + 8 + 2 * sizeof(runs[0]));
	cr_assert_eq(wire_dec_fast_count(body, h.len, &f), 0);
	cr_assert_eq(f.m.nrec, 2);
	memcpy(&got, f.recs + sizeof(got), sizeof(got));
	cr_assert(!memcmp(&got, &runs[1], sizeof(got)));
	cr_assert_eq(wire_dec_fast_count(body, h.len - 8, &f), -EBADMSG, "a record cut short");
	memcpy(body + sizeof(m) + 8 + sizeof(runs[0]) + offsetof(struct kray_fast_run, failed),
	       &(uint32_t){ 2 }, 4);
	cr_assert_eq(wire_dec_fast_count(body, h.len, &f), -EBADMSG, "failed is 0 or 1");
	m.nrec = 4; /* more records than runs */
	m.runs = 3;
	memcpy(body, &m, sizeof(m));
	cr_assert_eq(wire_dec_fast_count(body, h.len, &f), -EBADMSG);
	kbuf_free(&b);
}

/* Error texts: whole up to KRAY_ERRMSG_MAX; past it, head and tail around a note. */
Test(errmsg, whole_then_head_and_tail)
{
	size_t n, big = 3 * KRAY_ERRMSG_MAX;
	char *s, *in = malloc(big + 1);

	cr_assert_not_null(in);
	for (size_t i = 0; i < big; i++)
		in[i] = (char)('a' + i % 26);
	in[big] = 0;

	s = wire_errmsg(&n, "x=%.*s", KRAY_ERRMSG_MAX - 2, in);
	cr_assert_eq(n, KRAY_ERRMSG_MAX);
	cr_assert_eq(strlen(s), n);
	cr_assert(!strncmp(s + 2, in, KRAY_ERRMSG_MAX - 2));
	free(s);

	s = wire_errmsg(&n, "%s", in);
	cr_assert_leq(n, KRAY_ERRMSG_MAX);
	cr_assert_geq(n, KRAY_ERRMSG_MAX - 48);
	cr_assert_eq(strlen(s), n);
	cr_assert(!strncmp(s, in, KRAY_ERRMSG_MAX / 2), "head kept");
	char *note = strstr(s, "\n[... ");
	cr_assert_not_null(note);
	size_t cut = strtoul(note + 6, NULL, 10),
	       tail = n - (size_t)(strchr(note + 1, '\n') + 1 - s);
	cr_assert_eq(KRAY_ERRMSG_MAX / 2 + cut + tail, big, "cut %zu tail %zu", cut, tail);
	cr_assert(!strcmp(s + n - tail, in + big - tail), "tail kept");
	free(s);
	free(in);
}

/* YIELD (a streaming call's item): one value after the fixed part, nothing else. */
Test(yield, decode)
{
	struct kray_msg_yield m = { .task = { 1, 2, 3, 0 }, .index = 7 };
	struct kbuf b = { 0 };
	struct wire_yield y;

	kbuf_put(&b, &m, sizeof(m));
	wire_put_value(&b, KRAY_WT_INT64, 0, 42, NULL, 0);
	cr_assert_eq(wire_dec_yield(b.data, b.len, &y), 0);
	cr_assert_eq(y.m.index, 7);
	cr_assert_eq(y.v.type, KRAY_WT_INT64);
	cr_assert_eq(y.v.scalar, 42);
	cr_assert_eq(wire_dec_yield(b.data, b.len - 1, &y), -EBADMSG, "cut");
	cr_assert_eq(wire_dec_yield(b.data, sizeof(m), &y), -EBADMSG, "no value");
	((struct kray_msg_yield *)b.data)->pad = 1;
	cr_assert_eq(wire_dec_yield(b.data, b.len, &y), -EBADMSG, "pad");
	kbuf_free(&b);
}

/* SUBMIT's flags: only KRAY_SUBMIT_STREAMING, and only with one return. */
Test(yield, submit_flags)
{
	struct kray_msg_submit m = { .seq = 1, .num_returns = 1, .name_len = 1 };
	struct wire_submit s;
	uint8_t body[sizeof(m) + 8] = { 0 };

	m.flags = KRAY_SUBMIT_STREAMING;
	memcpy(body, &m, sizeof(m));
	body[sizeof(m)] = 'f';
	cr_assert_eq(wire_dec_submit(body, sizeof(body), &s), 0);
	cr_assert_eq(s.m.flags, KRAY_SUBMIT_STREAMING);
	m.num_returns = 2;
	memcpy(body, &m, sizeof(m));
	cr_assert_eq(wire_dec_submit(body, sizeof(body), &s), -EBADMSG, "streaming, 2 returns");
	m.num_returns = 1;
	m.flags = KRAY_SUBMIT_RETRY; /* a fast call's retry, sent by the driver */
	memcpy(body, &m, sizeof(m));
	cr_assert_eq(wire_dec_submit(body, sizeof(body), &s), 0);
	cr_assert_eq(s.m.flags, KRAY_SUBMIT_RETRY);
	m.flags = 4;
	memcpy(body, &m, sizeof(m));
	cr_assert_eq(wire_dec_submit(body, sizeof(body), &s), -EBADMSG, "unknown flag");
}

/* A scheduling strategy among the resources (wire_parse_placed()): "@spread",
 * "@node=ID" or "@prefer=ID", taken out of the list; plain lists refuse them. */
Test(resources, placement_entries)
{
	struct wire_resource res[KRAY_RESOURCES_MAX];
	struct wire_place pl;
	const char *s;

	s = "GPU:1, @node=0a0B0c0D,ssd:0.5";
	cr_assert_eq(wire_parse_placed(s, strlen(s), res, &pl), 2);
	cr_assert_str_eq(res[0].name, "GPU");
	cr_assert_str_eq(res[1].name, "ssd");
	cr_assert_eq(res[1].milli, 500);
	cr_assert(pl.node == 0x0a0b0c0d && !pl.soft && !pl.spread);
	s = "@prefer=ffffffff";
	cr_assert_eq(wire_parse_placed(s, strlen(s), res, &pl), 0);
	cr_assert(pl.node == 0xffffffff && pl.soft && !pl.spread);
	s = "CPU:2,@spread";
	cr_assert_eq(wire_parse_placed(s, strlen(s), res, &pl), 1);
	cr_assert(!pl.node && pl.spread);
	s = "GPU:1";
	cr_assert_eq(wire_parse_placed(s, strlen(s), res, &pl), 1);
	cr_assert(!pl.node && !pl.spread && !pl.soft, "no strategy");
	cr_assert_eq(wire_parse_resources("@spread", 7, res), -EINVAL, "not a resource");

	static const char *bad[] = {
		"@node=00000000", /* no node 0 */
		"@node=0a0b0c0", /* 7 digits */
		"@node=0a0b0c0d0", /* 9 */
		"@node=0a0b0c0g",
		"@node=0a0b0c0d,@prefer=0a0b0c0d", /* one node */
		"@spread,@node=0a0b0c0d", /* one strategy */
		"@pack",
		"@spread:1",
		"GPU:1,@",
		"GPU:x,@spread", /* the rest is still checked */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(wire_parse_placed(bad[i], strlen(bad[i]), res, &pl), -EINVAL, "%s",
			     bad[i]);
}
