/* SPDX-License-Identifier: Apache-2.0 */
/*
 * krayd's one HTTP/1.0 server (http.c), shared by the Prometheus endpoint (metrics.c) and
 * the dashboard (daemon/dashboard/): GET only, one request per connection, a request head
 * of at most HTTP_HEAD_MAX bytes, HTTP_CONNS connections per server (more get 503), and
 * frame-timeout-ms for a request to arrive and be answered.  No body is read.  It runs on
 * krayd's loop like every connection, so a slow or malformed client never stalls it.
 */
#ifndef KRAYD_CORE_HTTP_H
#define KRAYD_CORE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "core/conn.h"

#define HTTP_HEAD_MAX 8192
#define HTTP_CONNS 64

/* A request: its head (the request line and headers, without the blank line) and the
 * path of its request line (not NUL-terminated; the query string included). */
struct http_req {
	const char *head;
	size_t head_len;
	const char *path;
	size_t path_len;
};

struct http_server {
	struct conn_kind kind; /* first: a connection's kind leads back to its server */
	const char *name; /* in logs: "metrics", "dashboard" */
	unsigned nconns; /* open connections */
	/* Answers a well-formed GET with http_reply(); the connection closes once it is
	 * sent. */
	void (*handle)(struct conn *c, const struct http_req *req);
};

/* A listening TCP socket on spec ("HOST:PORT", "[V6]:PORT").  Returns the fd, -EINVAL
 * for a bad spec, or -errno. */
int http_listen(const char *spec);
/* Whether listening fd is bound to a loopback address (127/8, ::1). */
bool http_loopback(int fd);
/* Takes accepted fd as a connection of s (or refuses it with 503 past HTTP_CONNS). */
void http_accept(struct http_server *s, struct krayd *d, int fd);
/* Queues the reply: status ("200 OK"), its Content-Type, extra header lines (each ending
 * in \r\n; "" for none) and the body. */
void http_reply(struct conn *c, const char *status, const char *type, const char *extra,
		const void *body, size_t len);
/* The same with body's pending bytes, taking body's memory (leaving it zeroed) when c has
 * no other output and body has room for the head before them (a 3 MB answer is not
 * copied again); else copied. */
void http_reply_take(struct conn *c, const char *status, const char *type, const char *extra,
		     struct kbuf *body);
/* The value of header name (case-insensitive) in req, spaces trimmed: true with *ret_val
 * and *ret_len, or false. */
bool http_header(const struct http_req *req, const char *name, const char **ret_val,
		 size_t *ret_len);

#endif
