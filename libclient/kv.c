// SPDX-License-Identifier: Apache-2.0
/*
 * The cluster's key-value table (docs/cluster.md): small values under names, kept by the
 * head node's GCS and in its log, so they outlive drivers, nodes and a head restart.
 * Every call is one round trip to the local krayd, which asks the head.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

static int kv_request(struct kray *k, uint8_t op, const char *key, const void *val, size_t len,
		      void **ret_val, size_t *ret_len)
{
	struct kray_msg_kv m = { .op = op };
	struct kray_frame_hdr h;
	struct wire_rd r;
	const uint8_t *body;
	const void *data = NULL;
	uint64_t req;
	size_t key_len, off;
	int rc;

	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!key || !(key_len = strlen(key)) || key_len > KRAY_NAME_MAX)
		return kc_fail(k, -EINVAL, "a key is 1 to %d bytes", KRAY_NAME_MAX);
	if (len > KRAY_KV_VALUE_MAX || (len && !val))
		return kc_fail(k, -EINVAL, "a value is at most %u bytes", KRAY_KV_VALUE_MAX);
	m.key_len = (uint8_t)key_len;
	m.value_len = (uint32_t)len;
	req = ++k->next_req;
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_KV, req, WIRE_FIXED(m), WIRE_PADDED(key, key_len),
			      WIRE_PADDED(val, len));
	if ((rc = kc_end(k, off)))
		return rc;
	rc = kc_wait(k, KRAY_MSG_KV_REPLY, req, &h, &body);
	if (rc)
		return rc;
	wire_rd_init(&r, body, h.len);
	if (wire_rd_fixed(&r, &m, sizeof(m)) || m.value_len > KRAY_KV_VALUE_MAX ||
	    (m.value_len && wire_rd_bytes(&r, m.value_len, &data))) {
		kc_consume(k, &h);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed kv reply from krayd");
	}
	if (m.status) {
		kc_consume(k, &h);
		return kc_fail(k, m.status < 0 ? m.status : -EPROTO, "%s",
			       m.status == -ENOENT    ? "no such key" :
			       m.status == -ENOTCONN  ? "not in a cluster (no head keeps a table)" :
			       m.status == -EAGAIN    ? "the head is not reachable now" :
			       m.status == -ETIMEDOUT ? "the head did not answer in time" :
							"the head refused the request");
	}
	if (ret_val) {
		void *copy = malloc(m.value_len ? m.value_len : 1);

		if (!copy) {
			kc_consume(k, &h);
			return kc_fail(k, -ENOMEM, "out of memory");
		}
		if (m.value_len)
			memcpy(copy, data, m.value_len);
		*ret_val = copy;
		*ret_len = m.value_len;
	}
	kc_consume(k, &h);
	return 0;
}

KRAY_EXPORT int kray_kv_put(struct kray *k, const char *key, const void *val, size_t len)
{
	return kv_request(k, KRAY_KV_PUT, key, val, len, NULL, NULL);
}

KRAY_EXPORT int kray_kv_get(struct kray *k, const char *key, void **ret_val, size_t *ret_len)
{
	if (!ret_val || !ret_len)
		return kc_fail(k, -EINVAL, "ret_val and ret_len are needed");
	return kv_request(k, KRAY_KV_GET, key, NULL, 0, ret_val, ret_len);
}

KRAY_EXPORT int kray_kv_del(struct kray *k, const char *key)
{
	return kv_request(k, KRAY_KV_DEL, key, NULL, 0, NULL, NULL);
}
