// SPDX-License-Identifier: Apache-2.0
/*
 * A simulated node (simnode.h): the connector's handshake of net.c, the reports of
 * cluster.c and the answers of remote.c's running side, by hand over one blocking socket.
 */
#include "simnode.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../include/uapi/kray_wire.h"

#define OUT_MAX 8192

static int send_all(int fd, const void *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p = (const uint8_t *)p + n;
		len -= (size_t)n;
	}
	return 0;
}

/* Appends one frame to out (which has room: callers keep it under OUT_MAX). */
static size_t put_frame(uint8_t *out, size_t off, uint16_t type, uint64_t req, const void *body,
			uint32_t len)
{
	struct kray_frame_hdr h = { .magic = KRAY_WIRE_MAGIC,
				    .version = KRAY_WIRE_VERSION,
				    .type = type,
				    .len = len,
				    .req = req };

	memcpy(out + off, &h, sizeof(h));
	memcpy(out + off + sizeof(h), body, len);
	return off + sizeof(h) + len;
}

/* Reads one whole frame, waiting (the handshake's); its body into body (cap bytes). */
static int recv_frame(int fd, void *body, size_t cap, uint16_t *type)
{
	struct kray_frame_hdr h;
	size_t got;

	for (got = 0; got < sizeof(h);) {
		ssize_t n = recv(fd, (uint8_t *)&h + got, sizeof(h) - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	if (h.magic != KRAY_WIRE_MAGIC || h.len > cap)
		return -1;
	for (got = 0; got < h.len;) {
		ssize_t n = recv(fd, (uint8_t *)body + got, h.len - got, 0);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	*type = h.type;
	return 0;
}

int simnode_report(struct simnode *s, uint16_t type, struct simnode_stats *st)
{
	size_t rlen = strlen(s->res);
	struct kray_msg_node m = { .node = s->node,
				   .addr = htonl(INADDR_LOOPBACK),
				   .port = 9, /* nothing listens: the head uses the link we made */
				   .alive = 1,
				   .res_len = (uint8_t)rlen,
				   .num_cpus = 1,
				   .workers = 1,
				   .workers_busy = s->busy,
				   .tasks_queued = s->load };
	uint8_t body[sizeof(m) + sizeof(s->res) + 8] = { 0 }, out[sizeof(body) + 64];

	memcpy(body, &m, sizeof(m));
	memcpy(body + sizeof(m), s->res, rlen);
	if (send_all(s->fd, out,
		     put_frame(out, 0, type, 0, body, (uint32_t)(sizeof(m) + KRAY_PAD8(rlen)))))
		return -1;
	if (st)
		st->reports += type == KRAY_MSG_NODE_HEARTBEAT;
	return 0;
}

int simnode_join(struct simnode *s, unsigned short port, const char *token, char *why,
		 size_t why_len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct kray_msg_node_challenge ch;
	struct kray_msg_node_auth a = { 0 };
	uint8_t msg[1 + 2 * KRAY_NONCE_LEN + 4], body[256], out[256];
	unsigned len = KRAY_MAC_LEN;
	uint16_t type;
	int one = 1;

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&sa, sizeof(sa))) {
		snprintf(why, why_len, "connect to the head: %s", strerror(errno));
		return -1;
	}
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (recv_frame(s->fd, &ch, sizeof(ch), &type) || type != KRAY_MSG_NODE_CHALLENGE) {
		snprintf(why, why_len, "the head did not challenge");
		return -1;
	}
	if (getrandom(a.nonce, sizeof(a.nonce), 0) != sizeof(a.nonce)) {
		snprintf(why, why_len, "getrandom: %s", strerror(errno));
		return -1;
	}
	a.node = s->node;
	msg[0] = 'C';
	memcpy(msg + 1, ch.nonce, KRAY_NONCE_LEN);
	memcpy(msg + 1 + KRAY_NONCE_LEN, a.nonce, KRAY_NONCE_LEN);
	memcpy(msg + 1 + 2 * KRAY_NONCE_LEN, &a.node, 4);
	HMAC(EVP_sha256(), token, (int)strlen(token), msg, sizeof(msg), a.mac, &len);
	if (send_all(s->fd, out, put_frame(out, 0, KRAY_MSG_NODE_AUTH, 0, &a, sizeof(a))) ||
	    recv_frame(s->fd, body, sizeof(body), &type) || type != KRAY_MSG_NODE_AUTH_OK) {
		snprintf(why, why_len, "the head refused the token");
		return -1;
	}
	if (simnode_report(s, KRAY_MSG_NODE_REGISTER, NULL)) {
		snprintf(why, why_len, "register: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A forwarded task (remote.c's send_task(): the fixed part, then name, code path and
 * resources, each padded to 8, then the arguments as wire values): its returns go back
 * at once, as remote_task_done() sends them, into out.  Returns the new length of out,
 * or 0 when the frame is not a task.
 */
static size_t answer(struct simnode *s, const uint8_t *body, uint32_t len, uint8_t *out, size_t off)
{
	struct kray_msg_fwd_task m;
	struct kray_msg_fwd_done done;
	struct kray_wire_value v = { 0 };
	size_t at;

	if (len < sizeof(m))
		return 0;
	memcpy(&m, body, sizeof(m));
	at = sizeof(m) + KRAY_PAD8(m.name_len) + KRAY_PAD8((size_t)m.path_len) +
	     KRAY_PAD8(m.res_len);
	if (at > len)
		return 0;
	if (m.nargs && len - at >= sizeof(v))
		memcpy(&v, body + at, sizeof(v));
	for (unsigned i = 0; i < m.num_returns; i++) {
		struct kray_msg_obj_push p = { .oid = m.task, .type = KRAY_WT_NIL };

		p.oid.index = i;
		if (v.type == KRAY_WT_INT64) {
			int64_t x = (int64_t)v.scalar;

			p.type = KRAY_WT_INT64;
			p.scalar = (uint64_t)(x * x);
		}
		if (off + 2 * (sizeof(struct kray_frame_hdr) + sizeof(p)) > OUT_MAX) {
			if (send_all(s->fd, out, off))
				return 0;
			off = 0;
		}
		off = put_frame(out, off, KRAY_MSG_OBJ_PUSH, KRAY_PUSH_ARG, &p, sizeof(p));
	}
	done.task = m.task;
	off = put_frame(out, off, KRAY_MSG_FWD_DONE, 0, &done, sizeof(done));
	s->answered++;
	return off;
}

int simnode_drain(struct simnode *s, struct simnode_stats *st)
{
	uint8_t out[OUT_MAX];
	size_t off = 0;

	for (;;) {
		ssize_t n = recv(s->fd, s->in + s->have, sizeof(s->in) - s->have, MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (n == 0)
			return -1;
		s->have += (size_t)n;
		while (s->have >= sizeof(struct kray_frame_hdr)) {
			struct kray_frame_hdr h;
			size_t whole;

			memcpy(&h, s->in, sizeof(h));
			if (h.magic != KRAY_WIRE_MAGIC)
				return -1;
			whole = sizeof(h) + h.len;
			if (whole > s->have) {
				if (whole <= sizeof(s->in))
					break; /* the rest comes later */
				/* Larger than the buffer (a whole view of many nodes): skip it
				 * as it comes. */
				size_t left = whole - s->have;
				uint8_t skip[4096];

				if (h.type != KRAY_MSG_NODE_VIEW)
					return -1;
				st->view_bytes += whole;
				while (left) {
					ssize_t m =
						recv(s->fd, skip,
						     left < sizeof(skip) ? left : sizeof(skip), 0);

					if (m <= 0)
						return -1;
					left -= (size_t)m;
				}
				s->have = 0;
				break;
			}
			if (h.type == KRAY_MSG_NODE_VIEW)
				st->view_bytes += whole;
			if (h.type == KRAY_MSG_FWD_TASK) {
				size_t next = answer(s, s->in + sizeof(h), h.len, out, off);

				if (!next)
					return -1;
				off = next;
				st->tasks++;
				if (off > OUT_MAX / 2) {
					if (send_all(s->fd, out, off))
						return -1;
					off = 0;
				}
			}
			memmove(s->in, s->in + whole, s->have - whole);
			s->have -= whole;
		}
	}
	if (off && send_all(s->fd, out, off))
		return -1;
	return 0;
}
