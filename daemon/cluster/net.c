// SPDX-License-Identifier: Apache-2.0
/*
 * Links between nodes: TCP connections on krayd's io_uring loop, with the same framing as
 * the local protocol, and the handshake that proves the cluster token.
 *
 * Nothing a link sends is read until it has proven the token.  The acceptor sends a
 * random nonce (NODE_CHALLENGE); the connector answers with its own nonce and
 * HMAC-SHA256(token, "C" || nonce_a || nonce_c || node) (NODE_AUTH); the acceptor checks it
 * and proves itself the same way with "A" (NODE_AUTH_OK).  The token never travels, a
 * proof cannot be replayed (fresh nonces on both sides), and a node that connects to an
 * impostor learns so before it sends any work.  Until then a link may only send frames
 * of the handshake, each at most KRAY_AUTH_BODY_MAX bytes, and must finish within
 * AUTH_TIMEOUT_NS; anything else closes it, and krayd goes on serving everyone else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "core/log.h"
#include "core/conn.h"
#include "core/proto.h"

static void mac(const struct cluster *cl, char role, const uint8_t *nonce_a, const uint8_t *nonce_c,
		uint32_t node, uint8_t *ret)
{
	uint8_t msg[1 + 2 * KRAY_NONCE_LEN + 4];
	unsigned len = KRAY_MAC_LEN;

	msg[0] = (uint8_t)role;
	memcpy(msg + 1, nonce_a, KRAY_NONCE_LEN);
	memcpy(msg + 1 + KRAY_NONCE_LEN, nonce_c, KRAY_NONCE_LEN);
	memcpy(msg + 1 + 2 * KRAY_NONCE_LEN, &node, 4);
	if (!HMAC(EVP_sha256(), cl->token, (int)cl->token_len, msg, sizeof(msg), ret, &len))
		memset(ret, 0, KRAY_MAC_LEN); /* cannot happen; a zero MAC never verifies */
}

static void nonce(uint8_t *p)
{
	if (getrandom(p, KRAY_NONCE_LEN, 0) != KRAY_NONCE_LEN)
		abort(); /* no randomness: no safe handshake */
}

static const struct conn_kind link_kind;

static struct link *link_new(struct krayd *d, struct conn *c, bool outbound)
{
	struct link *l = calloc(1, sizeof(*l));
	bool fresh;

	if (!l)
		abort();
	l->d = d;
	l->c = c;
	c->frame_max = KRAY_AUTH_BODY_MAX; /* no room for a large frame before the proof */
	l->outbound = outbound;
	l->id = ++d->cl->next_link;
	l->pipe[0] = l->pipe[1] = -1;
	l->since = now_ns();
	l->next = d->cl->links;
	d->cl->links = l;
	c->link = l;
	*oidmap_upsert(&d->cl->link_index, &(struct kray_oid){ .owner = l->id }, &fresh) =
		(uint64_t)(uintptr_t)l;
	return l;
}

static void send_frame(struct conn *c, uint16_t type, const void *body, size_t len)
{
	wire_frame(&c->out, type, 0, &WIRE_RAW(body, len), 1);
	conn_flush_later(c);
}

static void tune(int fd)
{
	int one = 1;

	/* Frames are whole messages: Nagle would only delay the small ones. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void net_accepted(struct krayd *d, int fd)
{
	struct conn *c;
	struct link *l;
	struct kray_msg_node_challenge ch;

	unsigned unproven = 0;

	if (!d->cl) {
		close(fd);
		return;
	}
	/* sshd's MaxStartups: links that have not proven the token are few and short-lived
	 * (AUTH_TIMEOUT_NS); past the cap a new one is closed at once. */
	for (l = d->cl->links; l; l = l->next)
		if (l->c && !l->up && !l->outbound && !l->c->closed)
			unproven++;
	if (unproven >= (unsigned)d->cfg.max_unproven_links) {
		log_warn_ratelimited("node link refused: %u links have not proven the token yet "
				     "(max-unproven-links)",
				     unproven);
		d->loop.links_refused++;
		close(fd);
		return;
	}
	tune(fd);
	c = conn_new(d, fd, ROLE_PEER_AUTH, &link_kind);
	if (!c)
		return;
	l = link_new(d, c, false);
	nonce(l->nonce);
	memcpy(ch.nonce, l->nonce, sizeof(ch.nonce));
	send_frame(c, KRAY_MSG_NODE_CHALLENGE, &ch, sizeof(ch));
}

struct link *net_connect(struct krayd *d, const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct conn *c;
	struct link *l;

	if (fd < 0) {
		log_warn_ratelimited("socket: %s", strerror(errno));
		return NULL;
	}
	tune(fd);
	c = conn_new_idle(d, fd, ROLE_PEER_AUTH, &link_kind);
	if (!c)
		return NULL;
	l = link_new(d, c, true);
	l->sa = *sa;
	conn_connect(c, (const struct sockaddr *)&l->sa, sizeof(l->sa), d->cfg.node_timeout_ms);
	return l;
}

static void net_connected(struct conn *c, int res)
{
	char addr[INET_ADDRSTRLEN];

	if (c->closed)
		return;
	if (res < 0) {
		inet_ntop(AF_INET, &c->link->sa.sin_addr, addr, sizeof(addr));
		log_debug("connect to %s:%u: %s", addr, ntohs(c->link->sa.sin_port),
			  strerror(-res == ECANCELED ? ETIMEDOUT : -res));
		conn_close(c, "connect failed");
		return;
	}
	conn_start_recv(c); /* the acceptor speaks first */
}

struct link *net_link_to(struct krayd *d, uint32_t node)
{
	struct node_entry *e;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct link *l;

	/* Any proven link to it will do: links carry frames both ways.  The one found last
	 * first: a head forwarding to a thousand nodes does not walk its links per task. */
	e = node_find(d, node);
	l = e && e->link_id ? net_link_by_id(d, e->link_id) : NULL;
	if (l && l->up && l->node == node)
		return l;
	for (l = d->cl->links; l; l = l->next)
		if (l->c && l->up && l->node == node && !l->c->closed) {
			if (e)
				e->link_id = l->id;
			return l;
		}
	for (l = d->cl->links; l; l = l->next)
		if (l->c && l->outbound && !l->up && l->node == node && !l->c->closed)
			return l;
	if (!e || !e->m.alive)
		return NULL;
	sa.sin_addr.s_addr = e->m.addr;
	sa.sin_port = htons(e->m.port);
	l = net_connect(d, &sa);
	if (l)
		l->node = node; /* checked against its proof */
	return l;
}

struct kbuf *net_out(struct link *l)
{
	/* Behind the objects streaming out, whatever the link's state: frames keep order. */
	if (l->xtail)
		return &l->xtail->after;
	if (!l->up)
		return &l->backlog;
	return &l->c->out;
}

struct kbuf *net_out_urgent(struct link *l)
{
	return l->xhead && l->up ? &l->urgent : net_out(l);
}

struct link *net_link_by_id(struct krayd *d, uint32_t id)
{
	uint64_t *v = oidmap_get(&d->cl->link_index, &(struct kray_oid){ .owner = id });
	struct link *l = v ? (struct link *)(uintptr_t)*v : NULL;

	return l && l->c && !l->c->closed ? l : NULL;
}

void net_drop_node(struct krayd *d, uint32_t node)
{
	for (struct link *l = d->cl->links; l; l = l->next)
		if (l->c && l->node == node && !l->c->closed)
			conn_close(l->c, "its node is dead");
}

void net_flush(struct link *l)
{
	if (l->c && l->up && !l->c->closed)
		conn_flush_later(l->c);
}

void net_send_fixed(struct link *l, uint16_t type, const void *m, size_t len)
{
	wire_frame(net_out(l), type, 0, &WIRE_RAW(m, len), 1);
	net_flush(l);
}

static void link_up(struct link *l)
{
	struct conn *c = l->c;

	l->up = true;
	c->role = ROLE_PEER;
	c->frame_max = 0;
	if (kbuf_pending(&l->backlog))
		kbuf_put(&c->out, l->backlog.data + l->backlog.off, kbuf_pending(&l->backlog));
	kbuf_free(&l->backlog);
	conn_flush_later(c);
	log_debug("link to node %08x up (%s)", l->node, l->outbound ? "out" : "in");
	l->d->cl->hooks.up(l);
}

static int on_challenge(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_node_challenge ch;
	struct kray_msg_node_auth a = { .node = l->d->node };

	if (!l->outbound || wire_dec_fixed(body, len, &ch, sizeof(ch)))
		return conn_fail(l->c, "unexpected challenge", -EPROTO);
	memcpy(l->peer_nonce, ch.nonce, KRAY_NONCE_LEN);
	nonce(l->nonce);
	memcpy(a.nonce, l->nonce, KRAY_NONCE_LEN);
	mac(l->d->cl, 'C', l->peer_nonce, l->nonce, a.node, a.mac);
	send_frame(l->c, KRAY_MSG_NODE_AUTH, &a, sizeof(a));
	l->proved = true;
	return 0;
}

static int on_auth(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_node_auth a, ok = { .node = l->d->node };
	uint8_t want[KRAY_MAC_LEN];

	if (l->outbound || wire_dec_fixed(body, len, &a, sizeof(a)))
		return conn_fail(l->c, "unexpected auth", -EPROTO);
	mac(l->d->cl, 'C', l->nonce, a.nonce, a.node, want);
	if (CRYPTO_memcmp(want, a.mac, KRAY_MAC_LEN)) {
		log_warn_ratelimited("node link refused: wrong cluster token");
		return conn_fail(l->c, "wrong cluster token", -EACCES);
	}
	if (a.node == l->d->node || !a.node)
		return conn_fail(l->c, "a node id that is not another node's", -EPROTO);
	memcpy(l->peer_nonce, a.nonce, KRAY_NONCE_LEN);
	l->node = a.node;
	mac(l->d->cl, 'A', l->nonce, l->peer_nonce, ok.node, ok.mac);
	send_frame(l->c, KRAY_MSG_NODE_AUTH_OK, &ok, sizeof(ok));
	link_up(l);
	return 0;
}

static int on_auth_ok(struct link *l, const uint8_t *body, uint32_t len)
{
	struct kray_msg_node_auth a;
	uint8_t want[KRAY_MAC_LEN];

	if (!l->outbound || wire_dec_fixed(body, len, &a, sizeof(a)))
		return conn_fail(l->c, "unexpected auth ok", -EPROTO);
	mac(l->d->cl, 'A', l->peer_nonce, l->nonce, a.node, want);
	if (CRYPTO_memcmp(want, a.mac, KRAY_MAC_LEN)) {
		log_warn_ratelimited("node link: the other end does not know the cluster token");
		return conn_fail(l->c, "wrong cluster token", -EACCES);
	}
	/* A link made to reach a given node must reach that one. */
	if (l->node && l->node != a.node)
		return conn_fail(l->c, "another node answers at that address", -EPROTO);
	l->node = a.node;
	link_up(l);
	return 0;
}

static int net_handle(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct link *l = c->link;

	if (!l->up) {
		switch (h->type) {
		case KRAY_MSG_NODE_CHALLENGE:
			return on_challenge(l, body, h->len);
		case KRAY_MSG_NODE_AUTH:
			return on_auth(l, body, h->len);
		case KRAY_MSG_NODE_AUTH_OK:
			return on_auth_ok(l, body, h->len);
		default:
			return conn_fail(l->c, "prove the cluster token first", -EACCES);
		}
	}
	return l->d->cl->hooks.frame(l, h, body);
}

static void net_conn_gone(struct conn *c)
{
	struct link *l = c->link;
	struct krayd *d = c->d;

	d->cl->hooks.gone(l);
	/* Freed later (net_sweep()): callers up the stack may be walking the links. */
	c->link = NULL;
	l->c = NULL;
}

static void link_closed(struct conn *c)
{
	proto_conn_gone(c); /* the refs the other node held through it */
	net_conn_gone(c);
}

static void link_sent(struct conn *c)
{
	if (c->role == ROLE_PEER)
		c->d->cl->hooks.sent(c->link);
}

static void link_spliced(struct conn *c, int res)
{
	c->d->cl->hooks.spliced(c->link, res);
}

/* Only a proven link may have a frame's body received elsewhere. */
static int link_head(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body,
		     uint32_t avail)
{
	struct link *l = c->link;

	return l->up ? l->d->cl->hooks.head(l, h, body, avail) : 0;
}

static void link_sunk(struct conn *c)
{
	c->d->cl->hooks.sunk(c->link);
}

static void link_sinking(struct conn *c)
{
	c->d->cl->hooks.sinking(c->link);
}

static const struct conn_kind link_kind = {
	.frame = net_handle,
	.head = link_head,
	.sunk = link_sunk,
	.sinking = link_sinking,
	.sent = link_sent,
	.spliced = link_spliced,
	.connected = net_connected,
	.gone = link_closed,
};

void net_sweep(struct krayd *d)
{
	struct link **p = &d->cl->links;

	while (*p) {
		struct link *l = *p;

		if (l->c) {
			p = &l->next;
			continue;
		}
		*p = l->next;
		oidmap_del(&d->cl->link_index, &(struct kray_oid){ .owner = l->id });
		kbuf_free(&l->backlog);
		kbuf_free(&l->urgent);
		kbuf_free(&l->lent);
		free(l);
	}
}

void net_close_unproven(struct krayd *d, int64_t now)
{
	for (struct link *l = d->cl->links; l; l = l->next)
		if (l->c && !l->up && !l->c->closed && now - l->since > AUTH_TIMEOUT_NS)
			conn_close(l->c, "did not prove the cluster token in time");
}

/* Parses "HOST:PORT" (IPv4 dotted quad or "localhost"). */
int net_parse_addr(const char *s, struct sockaddr_in *ret)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;
	struct sockaddr_in sa = { .sin_family = AF_INET };

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	port = strtol(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	if (!strcmp(host, "localhost"))
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	sa.sin_port = htons((uint16_t)port);
	*ret = sa;
	return 0;
}

int net_init(struct krayd *d)
{
	struct cluster *cl = d->cl;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int one = 1, r;

	if (net_parse_addr(d->cfg.node_listen, &sa)) {
		log_err("node-listen: not IPV4:PORT: '%s'", d->cfg.node_listen);
		return -EINVAL;
	}
	cl->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->listen_fd < 0)
		return -errno;
	setsockopt(cl->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(cl->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(cl->listen_fd, 128) ||
	    getsockname(cl->listen_fd, (struct sockaddr *)&cl->self, &len)) {
		r = -errno;
		log_err("node-listen %s: %s", d->cfg.node_listen, strerror(-r));
		close(cl->listen_fd);
		cl->listen_fd = -1;
		return r;
	}
	r = loop_listen(d, cl->listen_fd, net_accepted, "nodes");
	if (r) {
		close(cl->listen_fd);
		cl->listen_fd = -1;
	}
	return r;
}

void net_fini(struct krayd *d)
{
	net_sweep(d); /* every connection is closed by now */
	oidmap_free(&d->cl->link_index);
	if (d->cl->listen_fd >= 0)
		close(d->cl->listen_fd);
	d->cl->listen_fd = -1;
}
