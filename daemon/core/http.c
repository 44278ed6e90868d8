// SPDX-License-Identifier: Apache-2.0
/*
 * krayd's HTTP/1.0 server, shared by the Prometheus endpoint and the dashboard (http.h):
 * the listening socket, the limits and the little parsing there is.  A connection waits
 * for the end of its request head (at most HTTP_HEAD_MAX bytes: more is 431), then the
 * request line is checked (400 if malformed, 405 unless GET) and the server's handler
 * answers; the connection closes once the reply is sent, and whatever else the client
 * sends is ignored.  The connection's deadline (frame-timeout-ms) closes a slow client.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/http.h"
#include "core/log.h"

int http_listen(const char *spec)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICSERV | AI_PASSIVE };
	struct addrinfo *ai;
	int fd, r, one = 1;

	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host) || !colon[1])
		return -EINVAL;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = 0;
	if (host[0] == '[' && host[strlen(host) - 1] == ']') { /* [::1]:9090 */
		memmove(host, host + 1, strlen(host) - 2);
		host[strlen(host) - 2] = 0;
	}
	r = getaddrinfo(host, colon + 1, &hints, &ai);
	if (r)
		return -EINVAL;
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 64)) {
		r = -errno;
		close(fd);
		goto out;
	}
	r = fd;
out:
	freeaddrinfo(ai);
	return r;
}

bool http_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		return IN6_IS_ADDR_LOOPBACK(a) ||
		       (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return false;
}

static size_t head_of(char *head, size_t size, const char *status, const char *type,
		      const char *extra, size_t len)
{
	int n = snprintf(head, size,
			 "HTTP/1.0 %s\r\n%sContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
			 "Connection: close\r\n\r\n",
			 status, extra, type, len);

	return (size_t)n < size ? (size_t)n : size - 1;
}

void http_reply(struct conn *c, const char *status, const char *type, const char *extra,
		const void *body, size_t len)
{
	char head[512];

	kbuf_put(&c->out, head, head_of(head, sizeof(head), status, type, extra, len));
	kbuf_put(&c->out, body, len);
}

void http_reply_take(struct conn *c, const char *status, const char *type, const char *extra,
		     struct kbuf *body)
{
	char head[512];
	size_t len = kbuf_pending(body), n = head_of(head, sizeof(head), status, type, extra, len);

	if (kbuf_pending(&c->out) || body->off < n) {
		http_reply(c, status, type, extra, body->data + body->off, len);
		return;
	}
	body->off -= n;
	memcpy(body->data + body->off, head, n);
	kbuf_free(&c->out);
	c->out = *body;
	*body = (struct kbuf){ 0 };
}

static void reply_text(struct conn *c, const char *status, const char *extra, const char *text)
{
	http_reply(c, status, "text/plain", extra, text, strlen(text));
}

bool http_header(const struct http_req *req, const char *name, const char **ret_val,
		 size_t *ret_len)
{
	size_t nlen = strlen(name);
	const char *p = req->head, *end = req->head + req->head_len;

	/* Line by line, skipping the request line. */
	while ((p = memchr(p, '\n', (size_t)(end - p))) && ++p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p)), *v;

		if (!eol)
			eol = end;
		if ((size_t)(eol - p) <= nlen || p[nlen] != ':' || strncasecmp(p, name, nlen))
			continue;
		v = p + nlen + 1;
		while (v < eol && (*v == ' ' || *v == '\t'))
			v++;
		while (eol > v && (eol[-1] == '\r' || eol[-1] == ' ' || eol[-1] == '\t'))
			eol--;
		*ret_val = v;
		*ret_len = (size_t)(eol - v);
		return true;
	}
	return false;
}

static struct http_server *server_of(struct conn *c)
{
	return (struct http_server *)(uintptr_t)c->kind;
}

/* The request line: "GET /path HTTP/1.x" (the version may be missing, as in HTTP/0.9). */
static int parse_line(const char *p, size_t len, struct http_req *req)
{
	const char *eol = memchr(p, '\n', len), *sp, *path, *pend;

	if (!eol)
		return -EBADMSG;
	sp = memchr(p, ' ', (size_t)(eol - p));
	if (!sp || sp == p)
		return -EBADMSG;
	path = sp + 1;
	for (pend = path; pend < eol && *pend != ' ' && *pend != '\r'; pend++)
		;
	if (pend == path || *path != '/')
		return -EBADMSG;
	req->path = path;
	req->path_len = (size_t)(pend - path);
	if ((size_t)(sp - p) != 3 || memcmp(p, "GET", 3))
		return -EOPNOTSUPP;
	return 0;
}

static void on_recv(struct conn *c)
{
	const char *p = (const char *)c->in.data + c->in.off, *end;
	size_t len = kbuf_pending(&c->in);
	struct http_req req = { 0 };
	int r;

	if (c->close_when_sent)
		return; /* answered: what else it sends is ignored */
	end = memmem(p, len, "\r\n\r\n", 4);
	if (!end)
		end = memmem(p, len, "\n\n", 2);
	if (!end && len < HTTP_HEAD_MAX)
		return; /* the head is not complete yet */
	c->close_when_sent = true;
	if (!end) {
		reply_text(c, "431 Request Header Fields Too Large", "",
			   "request head over 8 KiB\n");
		goto done;
	}
	req.head = p;
	req.head_len = (size_t)(end - p);
	r = parse_line(p, len, &req);
	if (r == -EBADMSG)
		reply_text(c, "400 Bad Request", "", "malformed request line\n");
	else if (r)
		reply_text(c, "405 Method Not Allowed", "Allow: GET\r\n", "only GET\n");
	else
		server_of(c)->handle(c, &req);
done:
	c->in.off = c->in.len = 0;
	conn_flush_later(c);
}

static void gone(struct conn *c)
{
	server_of(c)->nconns--;
}

void http_accept(struct http_server *s, struct krayd *d, int fd)
{
	static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";
	struct conn *c;

	if (s->nconns >= HTTP_CONNS) {
		log_warn_ratelimited("%s: %u connections already: one refused", s->name, s->nconns);
		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			log_debug("%s refusal: %s", s->name, strerror(errno));
		close(fd);
		return;
	}
	s->kind.recv = on_recv;
	s->kind.gone = gone;
	s->nconns++; /* (before: gone() counts it down if it closes at once) */
	c = conn_new(d, fd, ROLE_METRICS, &s->kind);
	if (!c) {
		s->nconns--;
		return;
	}
	/* An idle or slow client is closed: a request and its answer in frame-timeout-ms. */
	conn_deadline(c, now_ns() + (int64_t)d->cfg.frame_timeout_ms * 1000000,
		      "HTTP request not done in time (frame-timeout-ms)");
}
