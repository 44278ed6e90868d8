/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The codec of the wire protocol (include/uapi/kray_wire.h): frame header checks, a
 * bounds-checked reader for bodies, one validating decoder per message that has a
 * variable part, and the writer helpers.  Shared by krayd and libkray.
 *
 * Decoders never trust a length: every read is checked against what is left of the body,
 * and they return -EBADMSG on anything malformed.  Values they return point into the
 * body (no copies); they are valid while the body is.
 */
#ifndef KRAY_COMMON_WIRE_H
#define KRAY_COMMON_WIRE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/uapi/kray_wire.h"
#include "buf.h"

/* A reader over a frame body. */
struct wire_rd {
	const uint8_t *p;
	size_t left;
};

/* A decoded value, pointing into the body. */
struct wire_value {
	uint8_t type; /* enum kray_wire_type */
	uint8_t err; /* enum kray_wire_err */
	uint16_t nrefs;
	uint64_t scalar;
	const void *data;
	uint32_t len;
	const struct kray_oid *refs; /* nrefs contained ids; may be unaligned: copy */
};

static inline void wire_rd_init(struct wire_rd *r, const void *body, size_t len)
{
	r->p = body;
	r->left = len;
}

/*
 * Checks a frame header.  Returns 0, -EPROTO (bad magic or version), -EBADMSG (unknown
 * type) or -EMSGSIZE (body longer than max_body).
 */
int wire_check_hdr(const struct kray_frame_hdr *h, size_t max_body);

/* Copies n bytes.  Returns 0 or -EBADMSG (short body). */
int wire_rd_fixed(struct wire_rd *r, void *dst, size_t n);
/* Points *ret at n bytes and skips them and their padding.  Returns 0 or -EBADMSG. */
int wire_rd_bytes(struct wire_rd *r, size_t n, const void **ret);
/* Decodes one value and checks its type and length.  Returns 0 or -EBADMSG. */
int wire_rd_value(struct wire_rd *r, struct wire_value *ret);
/* Returns 0 if the body was consumed exactly, else -EBADMSG. */
static inline int wire_rd_end(const struct wire_rd *r)
{
	return r->left ? -EBADMSG : 0;
}

struct wire_hello {
	struct kray_msg_hello m;
	const char *path; /* not NUL-terminated; path_len bytes */
};

struct wire_submit {
	struct kray_msg_submit m;
	const char *name; /* not NUL-terminated; m.name_len bytes */
	const char *res; /* m.res_len bytes of resources, checked by wire_parse_resources() */
	struct wire_rd args; /* m.nargs values, already validated */
};

struct wire_exec {
	struct kray_msg_exec m;
	const char *name;
	struct wire_rd args;
	int nfds; /* FD values among the args */
};

struct wire_result {
	struct kray_msg_result m;
	struct wire_rd values; /* m.n values, already validated */
};

struct wire_yield {
	struct kray_msg_yield m;
	struct wire_value v; /* the item */
};

struct wire_oids {
	uint32_t n;
	const struct kray_oid *oids; /* may be unaligned: copy before use */
};

struct wire_get {
	int64_t timeout_ms;
	uint32_t uffd; /* kray_msg_get's: the asker's userfaultfd + 1, or 0 */
	struct wire_oids ids;
};

struct wire_get_reply {
	int32_t status;
	uint32_t n;
	struct wire_rd values;
	int nfds; /* FD values among them */
};

struct wire_wait {
	int64_t timeout_ms;
	uint32_t num_ready;
	struct wire_oids ids;
};

struct wire_put {
	struct kray_oid oid;
	struct wire_value value;
};

struct wire_text {
	int32_t code; /* ERROR: negative errno; JOB: job id */
	const char *text; /* not NUL-terminated */
	uint32_t len;
};

struct wire_actor_create {
	struct kray_msg_actor_create m;
	const char *cls, *name, *ns, *res; /* not NUL-terminated; name/ns/res may be NULL */
	struct wire_rd args; /* m.nargs values, already validated */
};

struct wire_fwd_task {
	struct kray_msg_fwd_task m;
	const char *name, *path, *res; /* not NUL-terminated; res: m.res_len bytes, checked */
	struct wire_rd args; /* m.nargs values (no actor handles), already validated */
};

/* FWD_ACTOR: an actor created on another node; ACTOR_RECORD and ACTOR_RESTART carry the
 * same after their kray_msg_actor_record (rec; zero for FWD_ACTOR). */
struct wire_fwd_actor {
	struct kray_msg_actor_record rec;
	struct kray_msg_fwd_actor f;
	const char *path; /* f.path_len bytes, no NUL */
	struct wire_actor_create c;
};

struct wire_get_actor {
	struct kray_msg_get_actor m;
	const char *name, *ns;
};

struct wire_fast_count {
	struct kray_msg_fast_count m;
	const char *name; /* m.name_len bytes */
	const uint8_t *recs; /* m.nrec struct kray_fast_run, unaligned: memcpy each */
};

/* METRIC: pointers into the body (unaligned: the doubles and counts are read with
 * wire_metric_bound() and wire_metric_bucket()). */
struct wire_metric {
	struct kray_msg_metric m;
	double value; /* m.value's double */
	const char *name; /* m.name_len bytes */
	const char *help; /* m.help_len bytes */
	const char *tags; /* m.tags_len bytes: m.ntags pairs "key\0value\0" */
	const uint8_t *bounds; /* m.nbounds doubles */
	const uint8_t *buckets; /* m.nbounds + 1 counts (histogram) */
};

struct wire_actor_reply {
	struct kray_msg_actor_reply m;
	const char *text; /* m.len bytes */
};

/* A resource list "NAME:QTY,..." (unique names up to 31 bytes, quantities with up to 3
 * decimals).  Returns the count (at most KRAY_RESOURCES_MAX) or -EINVAL; writes ret
 * only on success. */
struct wire_resource {
	char name[32];
	uint64_t milli;
};
int wire_parse_resources(const char *s, size_t len, struct wire_resource *ret);

/*
 * Where a task or actor runs in a cluster (Ray's scheduling_strategy), carried in the
 * resources text of SUBMIT and ACTOR_CREATE by entries that start with '@' (no resource
 * name can):
 *   "@spread"          SPREAD: the next node in turn among the live ones that have
 *                      what it needs (this one included)
 *   "@node=XXXXXXXX"   only on that node (NodeAffinitySchedulingStrategy, soft=False):
 *                      it fails (UNSCHEDULABLE) if the node is gone or lacks the resources
 *   "@prefer=XXXXXXXX" on that node while it is alive and has the resources, else as
 *                      without it (soft=True)
 * XXXXXXXX is the node's id in hex (kray status, kray_node_id()).
 */
struct wire_place {
	uint32_t node; /* 0: any node */
	bool soft; /* node is a preference */
	bool spread;
};
/* As wire_parse_resources(), with placement entries taken into *pl (may be NULL);
 * ret gets the resources only. */
int wire_parse_placed(const char *s, size_t len, struct wire_resource *ret, struct wire_place *pl);

/* Body decoders: each returns 0 or -EBADMSG and fills *ret only on success. */
int wire_dec_hello(const void *body, size_t len, struct wire_hello *ret);
int wire_dec_submit(const void *body, size_t len, struct wire_submit *ret);
int wire_dec_exec(const void *body, size_t len, struct wire_exec *ret);
int wire_dec_result(const void *body, size_t len, struct wire_result *ret);
int wire_dec_yield(const void *body, size_t len, struct wire_yield *ret);
int wire_dec_get(const void *body, size_t len, struct wire_get *ret);
int wire_dec_get_reply(const void *body, size_t len, struct wire_get_reply *ret);
int wire_dec_put(const void *body, size_t len, struct wire_put *ret);
int wire_dec_refs(const void *body, size_t len, struct wire_oids *ret);
int wire_dec_wait(const void *body, size_t len, struct wire_wait *ret);
int wire_dec_actor_create(const void *body, size_t len, struct wire_actor_create *ret);
int wire_dec_fwd_task(const void *body, size_t len, struct wire_fwd_task *ret);
int wire_dec_fwd_actor(const void *body, size_t len, struct wire_fwd_actor *ret);
/* ACTOR_RECORD (GONE: the record alone; ADD: with a FWD_ACTOR body) and ACTOR_RESTART
 * (with one).  type: which of the two. */
int wire_dec_actor_record(uint16_t type, const void *body, size_t len, struct wire_fwd_actor *ret);
int wire_dec_get_actor(const void *body, size_t len, struct wire_get_actor *ret);
int wire_dec_actor_reply(const void *body, size_t len, struct wire_actor_reply *ret);
/* FAST_COUNT: a name of 1..KRAY_NAME_MAX bytes, pad 0, failed + stored <= runs. */
int wire_dec_fast_count(const void *body, size_t len, struct wire_fast_count *ret);
/* Writes a FAST_COUNT frame to b (one function's counts). */
void wire_put_fast_count(struct kbuf *b, const struct kray_msg_fast_count *m, const char *name,
			 const struct kray_fast_run *recs);
/* METRIC (kray_wire.h says the layout): -EBADMSG unless every rule there holds. */
int wire_dec_metric(const void *body, size_t len, struct wire_metric *ret);
double wire_metric_bound(const struct wire_metric *w, unsigned i);
uint64_t wire_metric_bucket(const struct wire_metric *w, unsigned i);
/* Whether s (n bytes) is a metric name: [a-zA-Z_:][a-zA-Z0-9_:]*, 1..KRAY_METRIC_NAME_MAX. */
bool wire_metric_name_ok(const char *s, size_t n);
/* Whether s (n bytes) may be a tag key: a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*,
 * 1..KRAY_METRIC_KEY_MAX) that is not reserved ("le", and names starting with "__"). */
bool wire_metric_key_ok(const char *s, size_t n);
/* Writes a METRIC frame to b; the caller checked the parts (wire_dec_metric()'s rules).
 * tags: m->tags_len bytes; bounds and buckets: histograms only (buckets NULL: zeros). */
void wire_put_metric(struct kbuf *b, uint64_t req, const struct kray_msg_metric *m,
		     const char *name, const char *help, const char *tags, const double *bounds,
		     const uint64_t *buckets);
int wire_dec_error(const void *body, size_t len, struct wire_text *ret);
/* The same layout for a TEXT_REPLY that carries an export (TIMELINE): any length up to
 * KRAY_FRAME_MAX, where an error or a listing stops at 64 KiB. */
int wire_dec_export(const void *body, size_t len, struct wire_text *ret);
int wire_dec_job(const void *body, size_t len, struct wire_text *ret);
/* Fixed-size bodies (HELLO_OK, REJECT, STATUS_REPLY, CREATE, CREATE_REPLY, SEAL): exact
 * length or -EBADMSG. */
int wire_dec_fixed(const void *body, size_t len, void *dst, size_t size);
/* OBJ_RANGE: its fixed size, len >= 1 and offset + len <= KRAY_OBJECT_MAX, or -EBADMSG. */
int wire_dec_obj_range(const void *body, size_t len, struct kray_msg_obj_range *ret);

/* Writers.  wire_begin() appends a header and returns its offset; wire_end() fills in the
 * body length and returns 0; in libkray (KRAY_KBUF_SOFT) it returns -ENOMEM, the partial
 * frame dropped, when an append ran out of memory.  Out of memory is fatal in krayd. */
size_t wire_begin(struct kbuf *b, uint16_t type, uint64_t req);
int wire_end(struct kbuf *b, size_t hdr_off);
void wire_put_padded(struct kbuf *b, const void *p, size_t n);

/*
 * A frame whose body is a list of parts, written whole: every fixed-layout frame krayd
 * sends is one wire_frame() call, so the header, the padding and the length are written
 * in one place.  A part is len bytes at p (NULL: zeros), padded to 8 when pad is set:
 *
 *	WIRE_FRAME(b, KRAY_MSG_ACTOR_REPLY, req, WIRE_FIXED(m), WIRE_PADDED(why, m.len));
 *
 * wire_frame_open() writes the same but leaves the frame open for values to follow; the
 * caller ends it with wire_end() (or, for a frame that carries descriptors, krayd's
 * conn_end_frame()).  Both return the frame's offset in b.
 */
struct wire_part {
	const void *p;
	size_t len;
	bool pad;
};
size_t wire_frame_open(struct kbuf *b, uint16_t type, uint64_t req, const struct wire_part *parts,
		       unsigned n);
size_t wire_frame(struct kbuf *b, uint16_t type, uint64_t req, const struct wire_part *parts,
		  unsigned n);
#define WIRE_FIXED(m) ((struct wire_part){ &(m), sizeof(m), false })
#define WIRE_RAW(p, n) ((struct wire_part){ (p), (n), false })
#define WIRE_PADDED(p, n) ((struct wire_part){ (p), (n), true })
#define WIRE_PARTS_(...) ((const struct wire_part[]){ __VA_ARGS__ })
#define WIRE_NPARTS_(...) (sizeof(WIRE_PARTS_(__VA_ARGS__)) / sizeof(struct wire_part))
#define WIRE_FRAME(b, type, req, ...) \
	wire_frame(b, type, req, WIRE_PARTS_(__VA_ARGS__), WIRE_NPARTS_(__VA_ARGS__))
#define WIRE_FRAME_OPEN(b, type, req, ...) \
	wire_frame_open(b, type, req, WIRE_PARTS_(__VA_ARGS__), WIRE_NPARTS_(__VA_ARGS__))
void wire_put_value(struct kbuf *b, uint8_t type, uint8_t err, uint64_t scalar, const void *data,
		    uint32_t len);
/* The same, with nrefs contained object ids. */
void wire_put_value_refs(struct kbuf *b, uint8_t type, uint8_t err, uint64_t scalar,
			 const void *data, uint32_t len, const struct kray_oid *refs,
			 uint16_t nrefs);
/* An error text of any length as a malloc'd string of at most KRAY_ERRMSG_MAX bytes (*len
 * without the NUL): a longer one keeps its head and its tail around a note of how much
 * was cut, so both the user's message and the end of a traceback survive.  NULL when
 * memory is short. */
char *wire_errmsg_v(size_t *len, const char *fmt, va_list ap);
/* What to say instead when wire_errmsg() had no memory. */
extern const char wire_errmsg_oom[];
char *wire_errmsg(size_t *len, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An ERROR value whose text is formatted (wire_errmsg()). */
void wire_put_verrorf(struct kbuf *b, uint8_t err, const char *fmt, va_list ap);
void wire_put_errorf(struct kbuf *b, uint8_t err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A whole ERROR frame. */
void wire_put_error_frame(struct kbuf *b, uint64_t req, int code, const char *msg);

static inline bool oid_eq(const struct kray_oid *a, const struct kray_oid *b)
{
	return a->node == b->node && a->owner == b->owner && a->seq == b->seq &&
	       a->index == b->index;
}

static inline uint64_t oid_hash(const struct kray_oid *o)
{
	uint64_t h = ((uint64_t)o->owner << 32 | o->seq) * 0x9e3779b97f4a7c15ull;
	h ^= ((uint64_t)o->node << 32 | o->index) * 0xc2b2ae3d27d4eb4full;
	return h ^ (h >> 29);
}

#endif /* KRAY_COMMON_WIRE_H */
