// SPDX-License-Identifier: Apache-2.0
/*
 * Placement groups (docs/util.md): create, remove and list the groups of bundles krayd
 * reserves.  Each call is one round trip to the local krayd (core/pgroup.c there).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

_Static_assert(KRAY_PLACEMENT_PACK == KRAY_PG_PACK && KRAY_PLACEMENT_SPREAD == KRAY_PG_SPREAD &&
		       KRAY_PLACEMENT_STRICT_PACK == KRAY_PG_STRICT_PACK &&
		       KRAY_PLACEMENT_STRICT_SPREAD == KRAY_PG_STRICT_SPREAD,
	       "the public strategies are the wire's");

static int pg_request(struct kray *k, struct kray_msg_pg *m, const char *name, const char *bundles,
		      char **ret_text)
{
	struct kray_frame_hdr h;
	struct wire_text t;
	const uint8_t *body;
	uint64_t req;
	size_t off;
	int rc;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	req = ++k->next_req;
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_PG, req, WIRE_FIXED(*m),
			      WIRE_PADDED(name, m->name_len), WIRE_PADDED(bundles, m->bundles_len));
	if ((rc = kc_end(k, off)))
		return rc;
	rc = kc_wait(k, KRAY_MSG_TEXT_REPLY, req, &h, &body);
	if (rc)
		return rc;
	if ((m->op == KRAY_PG_TABLE ? wire_dec_export : wire_dec_error)(body, h.len, &t)) {
		kc_consume(k, &h);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed placement group reply from krayd");
	}
	rc = t.code;
	if (rc) {
		rc = kc_fail(k, rc < 0 ? rc : -EPROTO, "%.*s", (int)t.len, t.text);
		kc_consume(k, &h);
		return rc;
	}
	if (ret_text && !(*ret_text = strndup(t.text, t.len))) {
		kc_consume(k, &h);
		return kc_fail(k, -ENOMEM, "out of memory");
	}
	kc_consume(k, &h);
	return 0;
}

KRAY_EXPORT int kray_pg_create(struct kray *k, const char *bundles, int strategy, const char *name,
			       int detached, char *ret_id)
{
	struct kray_msg_pg m = { .op = KRAY_PG_CREATE, .detached = detached ? 1 : 0 };
	size_t nl = name ? strlen(name) : 0, bl = bundles ? strlen(bundles) : 0;
	char *id = NULL;
	int rc;

	if (strategy < KRAY_PG_PACK || strategy > KRAY_PG_STRICT_SPREAD)
		return kc_fail(k, -EINVAL,
			       "strategy is PACK, SPREAD, STRICT_PACK or STRICT_SPREAD");
	if (nl > KRAY_NAME_MAX || !bl || bl > 65536 || !ret_id)
		return kc_fail(k, -EINVAL,
			       "kray_pg_create needs bundles, ret_id and a name of at "
			       "most %d bytes",
			       KRAY_NAME_MAX);
	m.strategy = (uint8_t)strategy;
	m.name_len = (uint8_t)nl;
	m.bundles_len = (uint32_t)bl;
	rc = pg_request(k, &m, name, bundles, &id);
	if (rc)
		return rc;
	snprintf(ret_id, KRAY_PG_ID_LEN + 1, "%s", id);
	free(id);
	return 0;
}

KRAY_EXPORT int kray_pg_remove(struct kray *k, const char *id)
{
	struct kray_msg_pg m = { .op = KRAY_PG_REMOVE };

	if (!id || strlen(id) != KRAY_PG_ID_LEN)
		return kc_fail(k, -EINVAL, "a placement group id is %d hex characters",
			       KRAY_PG_ID_LEN);
	memcpy(m.id, id, KRAY_PG_ID_LEN);
	return pg_request(k, &m, NULL, NULL, NULL);
}

KRAY_EXPORT int kray_pg_table(struct kray *k, char **ret_json)
{
	struct kray_msg_pg m = { .op = KRAY_PG_TABLE };

	if (!ret_json)
		return kc_fail(k, -EINVAL, "kray_pg_table needs ret_json");
	return pg_request(k, &m, NULL, NULL, ret_json);
}
