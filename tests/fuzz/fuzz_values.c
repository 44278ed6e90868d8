// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_values: the value reader, wire_rd_value(), and the reader primitives under it.
 *
 * Input: one byte that places the reader (its low 3 bits misalign the buffer, the rest
 * skip that many leading bytes), then a sequence of values (struct kray_wire_value, the
 * payload padded to 8, the nested ids).  The bytes are copied to a buffer that ends where
 * they end, so AddressSanitizer sees a read past the end.
 *
 * Oracles:
 *  - wire_rd_value() accepts a value exactly when a model of the rules in kray_wire.h
 *    does (types, errors, lengths, where nested ids may appear, bytes left), and consumes
 *    exactly the value's bytes, pointing data and refs at them;
 *  - written again with wire_put_value_refs() (wire_put_errorf() for ERROR values it can
 *    make), a value has the same bytes, padding aside, and reads back the same;
 *  - the values read are then wrapped in every message that carries a list of values
 *    (SUBMIT, EXEC, RESULT, GET_REPLY, ACTOR_CREATE, PUT) with a count of exactly those
 *    values: each decoder must accept iff every value's type is one it allows, count its
 *    FD values right, and reject a count one too high or one too low;
 *  - wire_rd_bytes() and wire_rd_fixed(), from where the values end and with a length
 *    taken from the input's last 8 bytes (any size_t), accept, point and advance as their
 *    comments say.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "../../common/wire.h"
#include "fuzz.h"

#define VHDR sizeof(struct kray_wire_value)
#define OID sizeof(struct kray_oid)
#define T(x) (1u << (x))
#define PLAIN (T(KRAY_WT_NIL) | T(KRAY_WT_INT64) | T(KRAY_WT_F64) | T(KRAY_WT_BYTES))
#define NESTED (1u << 31)

/* The bytes a value needs, or 0 when its header breaks a rule. */
static size_t value_model(const struct kray_wire_value *v)
{
	if (v->len > KRAY_FRAME_MAX)
		return 0;
	switch (v->type) {
	case KRAY_WT_NIL:
	case KRAY_WT_INT64:
	case KRAY_WT_F64:
		if (v->len || v->err)
			return 0;
		break;
	case KRAY_WT_BYTES:
		if (v->err)
			return 0;
		break;
	case KRAY_WT_REF:
		if (v->len != OID || v->err || v->nrefs)
			return 0;
		break;
	case KRAY_WT_OBJECT:
	case KRAY_WT_ACTOR:
		if (v->len != OID || v->err)
			return 0;
		break;
	case KRAY_WT_FD: /* err: 0, or KRAY_WV_LAZY (a lazily restored object) */
		if (v->len != OID || (v->err && v->err != KRAY_WV_LAZY))
			return 0;
		break;
	case KRAY_WT_ERROR:
		if (v->err == KRAY_WE_NONE || v->err > KRAY_WE_MAX || v->nrefs)
			return 0;
		break;
	default:
		return 0;
	}
	return VHDR + (((size_t)v->len + 7) & ~(size_t)7) + (size_t)v->nrefs * OID;
}

/* Writes v again and checks the bytes and a second read. */
static void write_again(const struct wire_value *v, const uint8_t *orig, size_t need)
{
	struct kbuf b = { 0 };
	struct wire_rd r;
	struct wire_value w;
	size_t pay = ((size_t)v->len + 7) & ~(size_t)7;
	uint8_t *copy;

	if (v->type == KRAY_WT_ERROR && !v->scalar && v->len < 4096 &&
	    (!v->len || !memchr(v->data, 0, v->len)))
		wire_put_errorf(&b, v->err, "%.*s", (int)v->len,
				v->len ? (const char *)v->data : "");
	else
		wire_put_value_refs(&b, v->type, v->err, v->scalar, v->data, v->len, v->refs,
				    v->nrefs);
	FUZZ_CHECK(b.len == need);
	FUZZ_CHECK(!memcmp(b.data, orig, VHDR + v->len));
	for (size_t i = VHDR + v->len; i < VHDR + pay; i++)
		FUZZ_CHECK(b.data[i] == 0);
	FUZZ_CHECK(!memcmp(b.data + VHDR + pay, orig + VHDR + pay, (size_t)v->nrefs * OID));

	copy = malloc(need);
	if (!copy)
		abort();
	memcpy(copy, b.data, need);
	wire_rd_init(&r, copy, need);
	FUZZ_CHECK(wire_rd_value(&r, &w) == 0 && r.left == 0);
	FUZZ_CHECK(w.type == v->type && w.err == v->err && w.nrefs == v->nrefs);
	FUZZ_CHECK(w.scalar == v->scalar && w.len == v->len);
	FUZZ_CHECK(!v->len || !memcmp(w.data, v->data, v->len));
	FUZZ_CHECK(!v->nrefs || !memcmp(w.refs, v->refs, (size_t)v->nrefs * OID));
	free(copy);
	kbuf_free(&b);
}

/* A message of fixed part `m`, then the values in [p, p + len): built in a buffer of
 * exactly its size. */
static uint8_t *wrap(const void *m, size_t mlen, const uint8_t *p, size_t len, size_t *ret)
{
	uint8_t *body = malloc(mlen + len ? mlen + len : 1);

	if (!body)
		abort();
	memcpy(body, m, mlen);
	if (len)
		memcpy(body + mlen, p, len);
	*ret = mlen + len;
	return body;
}

/* What the decoders of value lists must say about n values of these types. */
struct seen {
	uint32_t n;
	unsigned int types; /* T(type) of every value */
	bool nested; /* some value has nrefs */
	int fds;
};

static bool allows(const struct seen *s, unsigned int allowed)
{
	return !(s->types & ~allowed & ~NESTED) && (!s->nested || (allowed & NESTED));
}

static void lists(const struct seen *s, const uint8_t *p, size_t len)
{
	static const char name[8] = "f";
	uint8_t fixed[64];
	size_t blen;
	uint8_t *body;
	int d;

	for (int delta = -1; delta <= 1; delta++) {
		uint32_t n = s->n + (uint32_t)delta;
		bool exact = delta == 0;

		if (delta < 0 && !s->n)
			continue;

		struct kray_msg_submit sm = { .nargs = (uint16_t)n,
					      .num_returns = 1,
					      .name_len = 1 };
		bool ok = exact && n <= KRAY_ARGS_MAX &&
			  allows(s, PLAIN | T(KRAY_WT_REF) | T(KRAY_WT_ACTOR));
		struct wire_submit ws;

		memcpy(fixed, &sm, sizeof(sm));
		memcpy(fixed + sizeof(sm), name, sizeof(name));
		body = wrap(fixed, sizeof(sm) + sizeof(name), p, len, &blen);
		d = wire_dec_submit(body, blen, &ws);
		FUZZ_CHECK(d == 0 || d == -EBADMSG);
		FUZZ_CHECK((d == 0) == (ok && n <= 0xffff));
		free(body);

		struct kray_msg_exec em = { .nargs = (uint16_t)n, .num_returns = 1, .name_len = 1 };
		struct wire_exec we;

		/* EXEC arguments may carry the refs their objects contain (lent for the call). */
		ok = exact && n <= KRAY_ARGS_MAX &&
		     allows(s, PLAIN | T(KRAY_WT_FD) | T(KRAY_WT_ACTOR) | NESTED);
		memcpy(fixed, &em, sizeof(em));
		memcpy(fixed + sizeof(em), name, sizeof(name));
		body = wrap(fixed, sizeof(em) + sizeof(name), p, len, &blen);
		d = wire_dec_exec(body, blen, &we);
		FUZZ_CHECK((d == 0) == (ok && n <= 0xffff) && (d || we.nfds == s->fds));
		free(body);

		struct kray_msg_actor_create am = { .nargs = (uint16_t)n,
						    .max_concurrency = 1,
						    .class_len = 1 };
		struct wire_actor_create wa;

		ok = exact && n <= KRAY_ARGS_MAX &&
		     allows(s, PLAIN | T(KRAY_WT_REF) | T(KRAY_WT_ACTOR));
		memcpy(fixed, &am, sizeof(am));
		memcpy(fixed + sizeof(am), name, sizeof(name));
		body = wrap(fixed, sizeof(am) + sizeof(name), p, len, &blen);
		d = wire_dec_actor_create(body, blen, &wa);
		FUZZ_CHECK((d == 0) == (ok && n <= 0xffff));
		free(body);

		struct kray_msg_result rm = { .n = n };
		struct wire_result wr;

		ok = exact && n <= KRAY_RETURNS_MAX &&
		     allows(s, PLAIN | T(KRAY_WT_ERROR) | T(KRAY_WT_OBJECT) | NESTED);
		body = wrap(&rm, sizeof(rm), p, len, &blen);
		d = wire_dec_result(body, blen, &wr);
		FUZZ_CHECK((d == 0) == ok);
		free(body);

		struct kray_msg_get_reply gm = { .n = n };
		struct wire_get_reply wg;

		ok = exact && n <= KRAY_REFS_MAX &&
		     allows(s, PLAIN | T(KRAY_WT_ERROR) | T(KRAY_WT_FD) | NESTED);
		body = wrap(&gm, sizeof(gm), p, len, &blen);
		d = wire_dec_get_reply(body, blen, &wg);
		FUZZ_CHECK((d == 0) == ok && (d || wg.nfds == s->fds));
		free(body);
	}

	/* PUT carries one plain value, which may hold nested ids. */
	struct kray_msg_put pm = { { 1, 2, 3, KRAY_OID_PUT } };
	struct wire_put wp;

	body = wrap(&pm, sizeof(pm), p, len, &blen);
	d = wire_dec_put(body, blen, &wp);
	FUZZ_CHECK((d == 0) == (s->n == 1 && allows(s, PLAIN | NESTED)));
	free(body);
}

/* wire_rd_bytes() and wire_rd_fixed() with a length from the input. */
static void primitives(const uint8_t *buf, size_t left, const uint8_t *in, size_t in_len)
{
	struct wire_rd r;
	const void *p = NULL;
	uint64_t n = 0;
	uint8_t dst[64];
	int e;

	/* The input's last 8 bytes (or fewer): any size_t, SIZE_MAX and its neighbours too. */
	if (in_len >= sizeof(n))
		memcpy(&n, in + in_len - sizeof(n), sizeof(n));
	else if (in_len)
		memcpy(&n, in, in_len);
	wire_rd_init(&r, buf, left);
	e = wire_rd_bytes(&r, (size_t)n, &p);
	if (n <= KRAY_FRAME_MAX && ((n + 7) & ~7ull) <= left) {
		FUZZ_CHECK(e == 0 && p == buf && r.p == buf + ((n + 7) & ~7ull));
		FUZZ_CHECK(r.left == left - ((n + 7) & ~7ull));
	} else {
		FUZZ_CHECK(e == -EBADMSG && r.p == buf && r.left == left);
	}

	n &= 63;
	wire_rd_init(&r, buf, left);
	e = wire_rd_fixed(&r, dst, (size_t)n);
	if (n <= left)
		FUZZ_CHECK(e == 0 && r.p == buf + n && r.left == left - n &&
			   (!n || !memcmp(dst, buf, (size_t)n)));
	else
		FUZZ_CHECK(e == -EBADMSG && r.p == buf && r.left == left);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seen s = { 0 };
	size_t skip, mis, len, good = 0; /* good: bytes of the values read */
	uint8_t *alloc, *buf;
	struct wire_rd r;

	if (!size)
		return 0;
	mis = data[0] & 7;
	skip = data[0] >> 3;
	data++;
	size--;
	if (skip > size)
		skip = size;
	len = size - skip;
	alloc = malloc(mis + len ? mis + len : 1);
	if (!alloc)
		abort();
	buf = alloc + mis;
	if (len)
		memcpy(buf, data + skip, len);

	wire_rd_init(&r, buf, len);
	while (r.left) {
		const uint8_t *at = r.p;
		struct kray_wire_value hdr = { 0 };
		struct wire_value v;
		size_t need = 0;
		int e;

		if (r.left >= VHDR) {
			memcpy(&hdr, at, VHDR);
			need = value_model(&hdr);
		}
		e = wire_rd_value(&r, &v);
		FUZZ_CHECK(e == 0 || e == -EBADMSG);
		FUZZ_CHECK((e == 0) == (need && need <= (size_t)(buf + len - at)));
		if (e)
			break;
		FUZZ_CHECK(r.p == at + need && r.left == (size_t)(buf + len - at) - need);
		FUZZ_CHECK(v.type == hdr.type && v.err == hdr.err && v.nrefs == hdr.nrefs);
		FUZZ_CHECK(v.len == hdr.len && v.scalar == hdr.scalar);
		FUZZ_CHECK(v.len ? (const uint8_t *)v.data == at + VHDR : !v.data);
		FUZZ_CHECK(v.nrefs ? (const uint8_t *)v.refs == at + need - v.nrefs * OID :
				     !v.refs);
		write_again(&v, at, need);
		s.n++;
		s.types |= T(v.type);
		s.nested |= v.nrefs != 0;
		s.fds += v.type == KRAY_WT_FD;
		good += need;
	}
	lists(&s, buf, good);
	/* From where the values ended: unaligned, or at the end, as the input says. */
	primitives(buf + good, len - good, data, size);
	free(alloc);
	return 0;
}
