// SPDX-License-Identifier: Apache-2.0
/*
 * The head's GCS in Redis (gcs-storage = redis://HOST:PORT[/DB]; docs/cluster.md, "GCS in
 * Redis"): the same records the log holds (gcs_log.c), kept as Redis hashes so that a head
 * started anywhere else with the same Redis finds the tables again:
 *
 *   NS:gcs:actors  field NAMESPACE \0 NAME   -> the GCS_ACTOR record (body)
 *   NS:gcs:kv      field KEY                 -> the value itself
 *   NS:gcs:jobs    field NODE/JOB (hex/dec)  -> the GCS_JOB record
 *   NS:gcs:nodes   field NODE (hex)          -> the node's last registration (alive ones)
 *   NS:gcs:epoch   the head's epoch: proves Redis still holds what this head wrote
 *
 * NS is gcs-redis-namespace.  At start the head connects with hiredis' blocking API (the
 * loop does not serve yet), reads the tables back through gcs.c's apply (nodes are only
 * counted: they register again) and writes its epoch; a Redis that cannot be reached then
 * is an error.  From then on every change goes out on hiredis' asynchronous API, polled on
 * krayd's io_uring loop (loop_watch_*(), core/loop.c), so the loop never waits on Redis.
 *
 * Every write is a command in one queue that stays until Redis answered it.  When Redis
 * goes away the head goes on from memory: the queue grows (at most QUEUE_MAX bytes) and
 * the connection is tried again with a backoff (100 ms doubling to 5 s).  Back, the head
 * reads the epoch: its own, and the unanswered writes are sent again in order (each sets
 * or deletes a whole entry, so sending one twice is harmless); missing (Redis restarted
 * empty) or another (another head wrote), or the queue overflowed, and the tables are
 * written whole from memory in one MULTI/EXEC.  A head that stops sends what is still
 * queued on a blocking connection, for at most a few seconds.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <systemd/sd-daemon.h>

#include "cluster/cluster.h"
#include "core/conn.h"
#include "core/log.h"

#define QUEUE_MAX (64ull << 20) /* bytes of writes kept while Redis is away */
#define BACKOFF_MIN_NS (100ll * 1000000)
#define BACKOFF_MAX_NS (5000ll * 1000000)
#define START_TRIES 4 /* at start: tries 0.25, 0.5 and 1 s apart before giving up */
#define SYNC_TIMEOUT_MS 3000
#define STALL_NS (5000ll * 1000000) /* no answer this long: connect again */

struct rcmd {
	char *cmd; /* in Redis' protocol (redisFormatCommandArgv) */
	int len;
	int64_t sent_ns; /* when it went out last (0: not yet) */
	uint64_t seq; /* answered: the store has the writes up to seq (0: not a write) */
	struct rcmd *next;
};

enum rstate { R_DOWN, R_CONNECTING, R_UP };

struct gcs_redis {
	struct krayd *d;
	char url[256];
	char ip[INET6_ADDRSTRLEN]; /* resolved once, at start */
	int port, db;
	char *password; /* NULL: no AUTH */
	char k_actors[96], k_kv[96], k_jobs[96], k_nodes[96], k_epoch[96], k_lease[96];
	char epoch[33];
	gcs_snapshot_fn snapshot;
	gcs_durable_fn durable;
	uint64_t seq; /* of the last write queued */
	redisAsyncContext *ac;
	struct loop_watch *w;
	unsigned ev; /* POLLIN/POLLOUT hiredis asked for */
	enum rstate state;
	struct rcmd *head, **tail, *unsent; /* the queue; unsent: first not sent yet */
	size_t queued, queued_bytes;
	bool resync; /* write the tables whole at the next connection */
	bool closing, warned, stalled;
	bool lease_inflight, stepped_down, opened;
	int64_t lease_ms, next_lease; /* the lease's length (node-timeout-ms), next renewal */
	int64_t next_try, backoff, down_since, attempt_ns;
	uint64_t writes, acked, replayed, resyncs, errors, dropped;
};

/* ---- parsing the setting ------------------------------------------------------------ */

static int parse_url(struct gcs_redis *r, const char *url)
{
	const char *host = url + 8, *colon, *slash, *port;
	char name[256], *end;
	long v;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int e;

	snprintf(r->url, sizeof(r->url), "%s", url);
	if (host[0] == '[') { /* [IPv6]:PORT */
		colon = strchr(host, ']');
		if (!colon || colon[1] != ':')
			return -EINVAL;
		snprintf(name, sizeof(name), "%.*s", (int)(colon - host - 1), host + 1);
		port = colon + 2;
	} else {
		colon = strrchr(host, ':');
		if (!colon || colon == host)
			return -EINVAL;
		snprintf(name, sizeof(name), "%.*s", (int)(colon - host), host);
		port = colon + 1;
	}
	v = strtol(port, &end, 10);
	if (end == port || v < 1 || v > 65535 || (*end && *end != '/'))
		return -EINVAL;
	r->port = (int)v;
	slash = *end == '/' ? end : NULL;
	if (slash) {
		v = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || v < 0 || v > 1000000)
			return -EINVAL;
		r->db = (int)v;
	}
	/* Resolved now: hiredis resolves names with a blocking getaddrinfo(), which the
	 * loop must not wait on when it connects again later. */
	e = getaddrinfo(name, NULL, &hints, &ai);
	if (e) {
		log_err("gcs-storage %s: host '%s': %s", url, name, gai_strerror(e));
		return -EHOSTUNREACH;
	}
	if (ai->ai_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, r->ip,
			  sizeof(r->ip));
	else
		inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, r->ip,
			  sizeof(r->ip));
	freeaddrinfo(ai);
	return 0;
}

static int read_password(struct gcs_redis *r, const char *path)
{
	char buf[1024];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		log_err("gcs-redis-password-file %s: %s", path, strerror(errno));
		return -errno;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		log_err("gcs-redis-password-file %s: %s", path, strerror(errno));
		return -EIO;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (!n) {
		log_err("gcs-redis-password-file %s: empty", path);
		return -EINVAL;
	}
	r->password = strndup(buf, (size_t)n);
	explicit_bzero(buf, sizeof(buf));
	return r->password ? 0 : -ENOMEM;
}

/* ---- records as Redis commands ------------------------------------------------------ */

struct args {
	int n;
	const char *v[8];
	size_t len[8];
};

/* A name given up leaves Redis only if its actor still has it there: as in gcs.c's table,
 * only the actor that has the name gives it up (the record begins with the actor's id). */
_Static_assert(offsetof(struct kray_msg_gcs_actor, actor) == 0, "a record begins with its id");
static const char release_lua[] = "local v = redis.call('HGET', KEYS[1], ARGV[1]) "
				  "if v and string.sub(v, 1, string.len(ARGV[2])) == ARGV[2] then "
				  "return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0";

static void arg(struct args *a, const void *p, size_t len)
{
	a->v[a->n] = p;
	a->len[a->n++] = len;
}

/* The command that makes Redis hold what record (type, body) left in the tables, in a:
 * returns 1 or -EBADMSG.  field is a's buffer. */
static int record_args(struct gcs_redis *r, uint16_t type, const uint8_t *body, size_t len,
		       struct args *a, char *field)
{
	struct wire_rd rd;
	const void *name = "", *ns = "", *val = NULL;

	a->n = 0;
	wire_rd_init(&rd, body, len);
	if (type == KRAY_MSG_KV) {
		struct kray_msg_kv m;

		if (wire_rd_fixed(&rd, &m, sizeof(m)) || !m.key_len ||
		    wire_rd_bytes(&rd, m.key_len, &name) ||
		    (m.value_len && wire_rd_bytes(&rd, m.value_len, &val)))
			return -EBADMSG;
		arg(a, m.op == KRAY_KV_PUT ? "HSET" : "HDEL", 4);
		arg(a, r->k_kv, strlen(r->k_kv));
		arg(a, name, m.key_len);
		if (m.op == KRAY_KV_PUT)
			arg(a, val ? val : "", m.value_len);
		return 1;
	}
	if (type == KRAY_MSG_GCS_ACTOR) {
		struct kray_msg_gcs_actor m;

		if (wire_rd_fixed(&rd, &m, sizeof(m)) || !m.name_len ||
		    wire_rd_bytes(&rd, m.name_len, &name) ||
		    (m.ns_len && wire_rd_bytes(&rd, m.ns_len, &ns)))
			return -EBADMSG;
		memcpy(field, ns, m.ns_len);
		field[m.ns_len] = 0;
		memcpy(field + m.ns_len + 1, name, m.name_len);
		if (!m.alive) {
			arg(a, "EVAL", 4);
			arg(a, release_lua, sizeof(release_lua) - 1);
			arg(a, "1", 1);
		} else {
			arg(a, "HSET", 4);
		}
		arg(a, r->k_actors, strlen(r->k_actors));
		arg(a, field, (size_t)m.ns_len + 1 + m.name_len);
		/* The whole record, or the actor's id at its start (not m: a's parts
		 * outlive this function). */
		arg(a, body, m.alive ? len : sizeof(m.actor));
		return 1;
	}
	if (type == KRAY_MSG_GCS_JOB) {
		struct kray_msg_gcs_job m;

		if (wire_rd_fixed(&rd, &m, sizeof(m)))
			return -EBADMSG;
		arg(a, "HSET", 4);
		arg(a, r->k_jobs, strlen(r->k_jobs));
		arg(a, field, (size_t)sprintf(field, "%08x/%u", m.node, m.job));
		arg(a, body, len);
		return 1;
	}
	return -EBADMSG;
}

/* ---- the queue ----------------------------------------------------------------------- */

static void q_reply(redisAsyncContext *ac, void *reply, void *priv);

static void send_unsent(struct gcs_redis *r)
{
	int64_t now = now_ns();

	for (; r->unsent && r->ac; r->unsent = r->unsent->next) {
		if (redisAsyncFormattedCommand(r->ac, q_reply, r, r->unsent->cmd,
					       (size_t)r->unsent->len) != REDIS_OK)
			break; /* the context is going: sent again at the next one */
		r->unsent->sent_ns = now;
	}
}

/* Queues a command; counts: a write whose answer makes the store have it (seq). */
static void push(struct gcs_redis *r, int argc, const char **argv, const size_t *len, bool counts)
{
	struct rcmd *c = calloc(1, sizeof(*c));

	if (!c || (c->len = redisFormatCommandArgv(&c->cmd, argc, argv, len)) < 0)
		abort();
	if (counts)
		c->seq = ++r->seq;
	*r->tail = c;
	r->tail = &c->next;
	if (!r->unsent)
		r->unsent = c;
	r->queued++;
	r->queued_bytes += (size_t)c->len;
}

static void free_cmd(struct gcs_redis *r, struct rcmd *c)
{
	r->queued--;
	r->queued_bytes -= (size_t)c->len;
	free(c->cmd);
	free(c);
}

/* Drops the writes not sent yet (those sent wait for their answers). */
static void drop_unsent(struct gcs_redis *r)
{
	struct rcmd **p = &r->head;

	while (*p && *p != r->unsent)
		p = &(*p)->next;
	while (*p) {
		struct rcmd *c = *p;

		*p = c->next;
		r->dropped++;
		free_cmd(r, c);
	}
	r->tail = p;
	r->unsent = NULL;
}

static void start_resync(struct gcs_redis *r);
static void step_down(struct gcs_redis *r, const char *other);

static void enqueue(struct gcs_redis *r, int argc, const char **argv, const size_t *len)
{
	if (r->resync || r->stepped_down)
		return; /* written whole from memory at the next connection; or never */
	push(r, argc, argv, len, true);
	r->writes++;
	if (r->queued_bytes > QUEUE_MAX) {
		log_warn("gcs-storage %s: %zu writes (%zu bytes) wait for Redis; dropped, the "
			 "tables are written whole when it answers again",
			 r->url, r->queued, r->queued_bytes);
		drop_unsent(r);
		r->resync = true;
		if (r->state == R_UP)
			start_resync(r);
		return;
	}
	if (r->state == R_UP)
		send_unsent(r);
}

static void append_record(struct gcs_redis *r, uint16_t type, const uint8_t *body, size_t len)
{
	char field[2 * 256 + 32];
	struct args a;

	if (record_args(r, type, body, len, &a, field) == 1)
		enqueue(r, a.n, a.v, a.len);
}

static void node_args(struct gcs_redis *r, const struct node_entry *e, struct kbuf *b,
		      struct args *a, char *field)
{
	a->n = 0;
	arg(a, e->m.alive ? "HSET" : "HDEL", 4);
	arg(a, r->k_nodes, strlen(r->k_nodes));
	arg(a, field, (size_t)sprintf(field, "%08x", e->m.node));
	if (e->m.alive) {
		kbuf_put(b, &e->m, sizeof(e->m));
		kbuf_put(b, e->res_text, e->m.res_len);
		arg(a, b->data, b->len);
	}
}

/* The tables whole, from memory, in one transaction that replaces Redis' copy. */
static void start_resync(struct gcs_redis *r)
{
	struct krayd *d = r->d;
	struct kbuf b = { 0 };
	size_t off = 0;
	const char *argv[6];
	size_t len[6];

	r->resync = false;
	r->resyncs++;
	drop_unsent(r);
	argv[0] = "MULTI";
	len[0] = 5;
	push(r, 1, argv, len, false);
	argv[0] = "DEL";
	len[0] = 3;
	argv[1] = r->k_actors;
	argv[2] = r->k_kv;
	argv[3] = r->k_jobs;
	argv[4] = r->k_nodes;
	for (int i = 1; i < 5; i++)
		len[i] = strlen(argv[i]);
	push(r, 5, argv, len, false);
	r->snapshot(d, &b);
	while (off + sizeof(struct kray_frame_hdr) <= b.len) {
		struct kray_frame_hdr h;
		char field[2 * 256 + 32];
		struct args a;

		memcpy(&h, b.data + off, sizeof(h));
		if (record_args(r, h.type, b.data + off + sizeof(h), h.len, &a, field) == 1)
			push(r, a.n, a.v, a.len, false);
		off += sizeof(h) + h.len;
	}
	kbuf_free(&b);
	for (unsigned i = 0; i < d->cl->nnodes; i++) {
		struct kbuf nb = { 0 };
		char field[16];
		struct args a;

		if (!d->cl->nodes[i].m.alive)
			continue;
		node_args(r, &d->cl->nodes[i], &nb, &a, field);
		push(r, a.n, a.v, a.len, false);
		kbuf_free(&nb);
	}
	argv[0] = "SET";
	len[0] = 3;
	argv[1] = r->k_epoch;
	len[1] = strlen(r->k_epoch);
	argv[2] = r->epoch;
	len[2] = strlen(r->epoch);
	push(r, 3, argv, len, false);
	argv[0] = "EXEC";
	len[0] = 4;
	push(r, 1, argv, len, true); /* the tables are Redis' once this is answered */
	log_info("gcs-storage %s: writing the tables whole (%zu commands)", r->url, r->queued);
	if (r->state == R_UP)
		send_unsent(r);
}

/* ---- hiredis on krayd's loop --------------------------------------------------------- */

static void ev_ready(void *arg, unsigned ev)
{
	struct gcs_redis *r = arg;

	if (r->ac && (ev & (POLLIN | POLLERR | POLLHUP)))
		redisAsyncHandleRead(r->ac);
	if (r->ac && (ev & POLLOUT))
		redisAsyncHandleWrite(r->ac);
}

static void ev_set(struct gcs_redis *r, unsigned ev)
{
	r->ev = ev;
	if (r->w)
		loop_watch_set(r->w, ev);
}

static void ev_add_read(void *p)
{
	struct gcs_redis *r = p;

	ev_set(r, r->ev | POLLIN);
}

static void ev_del_read(void *p)
{
	struct gcs_redis *r = p;

	ev_set(r, r->ev & ~(unsigned)POLLIN);
}

static void ev_add_write(void *p)
{
	struct gcs_redis *r = p;

	ev_set(r, r->ev | POLLOUT);
}

static void ev_del_write(void *p)
{
	struct gcs_redis *r = p;

	ev_set(r, r->ev & ~(unsigned)POLLOUT);
}

static void ev_cleanup(void *p)
{
	struct gcs_redis *r = p;

	loop_watch_free(r->w);
	r->w = NULL;
	r->ev = 0;
}

static void retry_later(struct gcs_redis *r, const char *why)
{
	int64_t now = now_ns();

	r->ac = NULL;
	r->state = R_DOWN;
	r->unsent = r->head; /* what was not answered goes again */
	if (!r->down_since)
		r->down_since = now;
	if (!r->warned && !r->closing)
		log_warn("gcs-storage %s: %s; the head serves from memory, queues its writes "
			 "and tries again",
			 r->url, why);
	r->warned = true;
	r->next_try = now + r->backoff;
	r->backoff = r->backoff * 2 > BACKOFF_MAX_NS ? BACKOFF_MAX_NS : r->backoff * 2;
	/* Without Redis the head answers from memory: writes held for it are answered. */
	if (!r->closing)
		r->durable(r->d, UINT64_MAX);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct gcs_redis *r = ac->ev.data;

	if (status != REDIS_OK)
		retry_later(r, ac->errstr[0] ? ac->errstr : "cannot connect");
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct gcs_redis *r = ac->ev.data;

	(void)status;
	retry_later(r, r->stalled    ? "no answer for 5 s" :
		       ac->errstr[0] ? ac->errstr :
				       "Redis closed the connection");
	r->stalled = false;
}

static void q_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct gcs_redis *r = priv;
	redisReply *rep = reply;
	struct rcmd *c = r->head;
	uint64_t seq;

	(void)ac;
	if (!rep || r->closing || !c)
		return; /* the connection went: the write stays queued */
	if (rep->type == REDIS_REPLY_ERROR) {
		r->errors++;
		log_warn_ratelimited("gcs-storage %s: Redis refused a write: %s", r->url, rep->str);
	}
	r->head = c->next;
	if (!r->head)
		r->tail = &r->head;
	if (r->unsent == c)
		r->unsent = c->next; /* cannot happen: answered means sent */
	r->acked++;
	seq = c->seq;
	free_cmd(r, c);
	if (seq)
		r->durable(r->d, seq);
}

/* AUTH and SELECT: a refusal is a setting to fix; it is tried again like an outage. */
static void ctl_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct gcs_redis *r = ac->ev.data;
	redisReply *rep = reply;

	if (rep && rep->type == REDIS_REPLY_ERROR && !r->closing) {
		log_ratelimited(LOG_ERR, "gcs-storage %s: %s: %s", r->url, (const char *)priv,
				rep->str);
		redisAsyncDisconnect(ac);
	}
}

static void epoch_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct gcs_redis *r = ac->ev.data;
	redisReply *rep = reply;
	bool ours;

	(void)priv;
	if (!rep || r->closing || rep->type == REDIS_REPLY_ERROR)
		return; /* (an error: AUTH or SELECT failed and said so) */
	ours = rep->type == REDIS_REPLY_STRING && !strcmp(rep->str, r->epoch);
	if (rep->type == REDIS_REPLY_STRING && !ours) {
		step_down(r, rep->str);
		return;
	}
	r->state = R_UP;
	r->backoff = BACKOFF_MIN_NS;
	if (r->warned)
		log_info("gcs-storage %s: Redis answers again after %lld ms; %s %zu writes", r->url,
			 (long long)((now_ns() - r->down_since) / 1000000),
			 ours && !r->resync ? "sending the" : "writing the tables whole instead of",
			 r->queued);
	r->warned = false;
	r->down_since = 0;
	if (!ours || r->resync) {
		start_resync(r);
		return;
	}
	for (struct rcmd *c = r->head; c; c = c->next)
		r->replayed++;
	send_unsent(r);
}

/* The head's lease: renewed when it is ours, taken when it is free; otherwise the other
 * head's epoch comes back.  Returns 1 or that epoch. */
static const char lease_lua[] =
	"local v = redis.call('GET', KEYS[1]) "
	"if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
	"if v then return v end "
	"redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1";

/* Another head holds the lease: it took over while this one was cut off from Redis.
 * This one stops, writing nothing more (its tables are older than the other's). */
static void step_down(struct gcs_redis *r, const char *other)
{
	if (r->stepped_down)
		return;
	r->stepped_down = true;
	log_err("gcs-storage %s: another head (epoch %s) holds the lease: this head (epoch %s) "
		"steps down and stops",
		r->url, other, r->epoch);
	kill(getpid(), SIGTERM);
}

static void lease_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct gcs_redis *r = ac->ev.data;
	redisReply *rep = reply;

	(void)priv;
	r->lease_inflight = false;
	if (!rep || r->closing)
		return;
	if (rep->type == REDIS_REPLY_STRING)
		step_down(r, rep->str);
	else if (rep->type == REDIS_REPLY_ERROR)
		log_warn_ratelimited("gcs-storage %s: renewing the head's lease: %s", r->url,
				     rep->str);
}

static void renew_lease(struct gcs_redis *r)
{
	if (!r->ac || r->lease_inflight || r->stepped_down)
		return;
	r->lease_inflight = true;
	r->next_lease = now_ns() + r->lease_ms * 1000000 / 3;
	redisAsyncCommand(r->ac, lease_reply, NULL, "EVAL %s 1 %s %s %lld", lease_lua, r->k_lease,
			  r->epoch, (long long)r->lease_ms);
}

static void try_connect(struct gcs_redis *r)
{
	redisAsyncContext *ac = redisAsyncConnect(r->ip, r->port);

	if (!ac || ac->err) {
		if (ac)
			redisAsyncFree(ac);
		retry_later(r, "cannot make a connection");
		return;
	}
	r->w = loop_watch_new(r->d, ac->c.fd, ev_ready, r);
	if (!r->w) {
		redisAsyncFree(ac);
		retry_later(r, "out of memory");
		return;
	}
	r->ac = ac;
	r->state = R_CONNECTING;
	r->attempt_ns = now_ns();
	ac->ev.data = r;
	ac->ev.addRead = ev_add_read;
	ac->ev.delRead = ev_del_read;
	ac->ev.addWrite = ev_add_write;
	ac->ev.delWrite = ev_del_write;
	ac->ev.cleanup = ev_cleanup;
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	/* hiredis sends these once connected, in order, before any queued write. */
	if (r->password)
		redisAsyncCommand(ac, ctl_reply, "AUTH", "AUTH %s", r->password);
	if (r->db)
		redisAsyncCommand(ac, ctl_reply, "SELECT", "SELECT %d", r->db);
	r->lease_inflight = false;
	renew_lease(r);
	redisAsyncCommand(ac, epoch_reply, NULL, "GET %s", r->k_epoch);
}

/* ---- blocking connection: start and stop ---------------------------------------------- */

static redisContext *sync_connect(struct gcs_redis *r, char *why, size_t n)
{
	struct timeval tv = { SYNC_TIMEOUT_MS / 1000, (SYNC_TIMEOUT_MS % 1000) * 1000 };
	redisContext *c = redisConnectWithTimeout(r->ip, r->port, tv);
	redisReply *rep = NULL;

	if (!c || c->err) {
		snprintf(why, n, "cannot connect to %s:%d: %s", r->ip, r->port,
			 c ? c->errstr : "out of memory");
		goto fail;
	}
	redisSetTimeout(c, tv);
	if (r->password) {
		rep = redisCommand(c, "AUTH %s", r->password);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			snprintf(why, n, "AUTH: %s", rep ? rep->str : c->errstr);
			goto fail;
		}
		freeReplyObject(rep);
	}
	if (r->db) {
		rep = redisCommand(c, "SELECT %d", r->db);
		if (!rep || rep->type == REDIS_REPLY_ERROR) {
			snprintf(why, n, "SELECT %d: %s", r->db, rep ? rep->str : c->errstr);
			goto fail;
		}
		freeReplyObject(rep);
	}
	return c;
fail:
	if (rep)
		freeReplyObject(rep);
	if (c)
		redisFree(c);
	return NULL;
}

/* HGETALL key, each value through apply (as type; KV: built from field and value). */
static int load_hash(struct gcs_redis *r, redisContext *c, const char *key, uint16_t type,
		     gcs_apply_fn apply, size_t *n)
{
	redisReply *rep = redisCommand(c, "HGETALL %s", key);

	*n = 0;
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		log_err("gcs-storage %s: HGETALL %s: %s", r->url, key,
			!rep			       ? c->errstr :
			rep->type == REDIS_REPLY_ERROR ? rep->str :
							 "not a hash");
		if (rep)
			freeReplyObject(rep);
		return -EIO;
	}
	for (size_t i = 0; i + 1 < rep->elements; i += 2) {
		redisReply *f = rep->element[i], *v = rep->element[i + 1];
		struct kbuf b = { 0 };
		const uint8_t *body = (const uint8_t *)v->str;
		size_t len = v->len;
		int bad;

		if (type == KRAY_MSG_KV) {
			struct kray_msg_kv m = { .op = KRAY_KV_PUT,
						 .key_len = (uint8_t)f->len,
						 .value_len = (uint32_t)v->len };

			if (!f->len || f->len > KRAY_NAME_MAX || v->len > KRAY_KV_VALUE_MAX) {
				log_warn("gcs-storage %s: %s: key of %zu bytes or value of %zu "
					 "bytes out of bounds; left out",
					 r->url, key, f->len, v->len);
				continue;
			}
			WIRE_FRAME(&b, KRAY_MSG_KV, 0, WIRE_FIXED(m), WIRE_PADDED(f->str, f->len),
				   WIRE_PADDED(v->str, v->len));
			body = b.data + sizeof(struct kray_frame_hdr);
			len = b.len - sizeof(struct kray_frame_hdr);
		}
		bad = len > UINT32_MAX || apply(r->d, type, body, (uint32_t)len, false);
		kbuf_free(&b);
		if (bad)
			log_warn("gcs-storage %s: %s: malformed entry '%.*s' left out", r->url, key,
				 (int)(f->len > 64 ? 64 : f->len), f->str);
		else
			(*n)++;
	}
	freeReplyObject(rep);
	return 0;
}

/* Takes the head's lease on c.  A head waits for the lease of one that died (it runs out
 * within lease_ms); a standby waits as long as the active head lives, and through
 * Redis' own outages.  Returns 0, or a negative errno (said why); *c may be replaced. */
static int acquire(struct gcs_redis *r, redisContext **c)
{
	int64_t t0 = now_ns(), nap = r->lease_ms / 4 < 50 ? 50 : r->lease_ms / 4, grace = 0;
	bool said = false;
	char why[256];

	for (;;) {
		redisReply *rep;

		/* A lease that went with the GCS itself (a Redis restarted empty) is not a
		 * dead head: the active one, if it lives, writes its tables again at once. */
		if (said && *c && r->d->cfg.head_standby) {
			rep = redisCommand(*c, "EXISTS %s", r->k_epoch);
			if (rep && rep->type == REDIS_REPLY_INTEGER && !rep->integer &&
			    (!grace || now_ns() < grace)) {
				if (!grace)
					log_warn("gcs-storage %s: standby: Redis holds no GCS "
						 "(restarted "
						 "empty?); the active head has %lld ms to write it "
						 "again",
						 r->url, (long long)(2 * r->lease_ms));
				if (!grace)
					grace = now_ns() + 2 * r->lease_ms * 1000000;
				freeReplyObject(rep);
				usleep((useconds_t)nap * 1000);
				continue;
			}
			if (rep)
				freeReplyObject(rep);
		}
		rep = *c ? redisCommand(*c, "EVAL %s 1 %s %s %lld", lease_lua, r->k_lease, r->epoch,
					(long long)r->lease_ms) :
			   NULL;

		if (rep && rep->type == REDIS_REPLY_INTEGER) {
			freeReplyObject(rep);
			if (said)
				log_info(
					"gcs-storage %s: the head's lease is this one's after %lld "
					"ms: taking over",
					r->url, (long long)((now_ns() - t0) / 1000000));
			return 0;
		}
		if (!rep || rep->type != REDIS_REPLY_STRING) {
			snprintf(why, sizeof(why), "%s",
				 !rep ? (*c ? (*c)->errstr : "not connected") : rep->str);
			if (rep)
				freeReplyObject(rep);
			if (!r->d->cfg.head_standby) {
				log_err("gcs-storage %s: taking the head's lease: %s", r->url, why);
				return -EIO;
			}
			/* A standby outlives Redis' outages: it connects again. */
			log_warn_ratelimited("gcs-storage %s: standby: %s; trying again", r->url,
					     why);
			if (*c)
				redisFree(*c);
			usleep((useconds_t)nap * 1000);
			*c = sync_connect(r, why, sizeof(why));
			continue;
		}
		if (!r->d->cfg.head_standby && now_ns() - t0 > (r->lease_ms + 1000) * 1000000) {
			log_err("gcs-storage %s: another head (epoch %s) holds the head's lease "
				"and "
				"renews it: it is alive.  Stop it, or start this one with head = "
				"standby to take over when it dies",
				r->url, rep->str);
			freeReplyObject(rep);
			return -EBUSY;
		}
		if (!said)
			log_info("gcs-storage %s: %s: the head with epoch %s holds the lease (%lld "
				 "ms); %s",
				 r->url, r->d->cfg.head_standby ? "standby" : "waiting", rep->str,
				 (long long)r->lease_ms,
				 r->d->cfg.head_standby ? "taking over when it runs out" :
							  "waiting for it to run out");
		said = true;
		/* Under systemd (Type=notify) a standby stays "activating" while it waits. */
		sd_notifyf(0, "EXTEND_TIMEOUT_USEC=%lld\nSTATUS=%s: head %s holds the lease",
			   (long long)(nap + 10000) * 1000,
			   r->d->cfg.head_standby ? "standby head" : "head waiting", rep->str);
		freeReplyObject(rep);
		usleep((useconds_t)nap * 1000);
	}
}

static int load(struct gcs_redis *r, gcs_apply_fn apply)
{
	char why[256] = "";
	redisContext *c = NULL;
	redisReply *rep;
	size_t na, nk, nj, nn = 0;
	int64_t wait_ms = 250;
	int e;

	for (int i = 0; i < START_TRIES && !c; i++) {
		if (i) {
			log_warn("gcs-storage %s: %s; trying again in %lld ms", r->url, why,
				 (long long)wait_ms);
			usleep((useconds_t)wait_ms * 1000);
			wait_ms *= 2;
		}
		c = sync_connect(r, why, sizeof(why));
	}
	if (!c) {
		log_err("gcs-storage %s: %s (is redis-server running there?)", r->url, why);
		return -ECONNREFUSED;
	}
	if ((e = acquire(r, &c))) {
		if (c)
			redisFree(c);
		return e;
	}
	if (load_hash(r, c, r->k_actors, KRAY_MSG_GCS_ACTOR, apply, &na) ||
	    load_hash(r, c, r->k_kv, KRAY_MSG_KV, apply, &nk) ||
	    load_hash(r, c, r->k_jobs, KRAY_MSG_GCS_JOB, apply, &nj)) {
		redisFree(c);
		return -EIO;
	}
	rep = redisCommand(c, "HLEN %s", r->k_nodes);
	if (rep && rep->type == REDIS_REPLY_INTEGER)
		nn = (size_t)rep->integer;
	if (rep)
		freeReplyObject(rep);
	/* The nodes register again with this head: the old table only says how many. */
	rep = redisCommand(c, "MULTI");
	if (rep)
		freeReplyObject(rep);
	rep = redisCommand(c, "DEL %s", r->k_nodes);
	if (rep)
		freeReplyObject(rep);
	rep = redisCommand(c, "SET %s %s", r->k_epoch, r->epoch);
	if (rep)
		freeReplyObject(rep);
	rep = redisCommand(c, "EXEC");
	if (!rep || rep->type != REDIS_REPLY_ARRAY) {
		log_err("gcs-storage %s: cannot write the epoch: %s", r->url,
			!rep			       ? c->errstr :
			rep->type == REDIS_REPLY_ERROR ? rep->str :
							 "aborted");
		if (rep)
			freeReplyObject(rep);
		redisFree(c);
		return -EIO;
	}
	freeReplyObject(rep);
	redisFree(c);
	r->opened = true;
	log_info("gcs-storage %s: recovered %zu named actors, %zu keys and %zu jobs; %zu nodes "
		 "were known (they join again); epoch %s",
		 r->url, na, nk, nj, nn, r->epoch);
	return 0;
}

/* At stop: what Redis has not answered yet, on a blocking connection (the tables whole
 * if Redis lost what this head wrote; nothing if another head took over), then the
 * lease given back, so that a standby takes over at once. */
static void flush_sync(struct gcs_redis *r)
{
	char why[256];
	redisContext *c;
	redisReply *rep;
	size_t n = 0, sent = 0;
	bool other;

	if (!r->opened || r->stepped_down)
		return;
	c = sync_connect(r, why, sizeof(why));
	if (!c) {
		log_warn("gcs-storage %s: %zu writes not in Redis at stop: %s", r->url, r->queued,
			 why);
		return;
	}
	rep = redisCommand(c, "GET %s", r->k_epoch);
	other = rep && rep->type == REDIS_REPLY_STRING && strcmp(rep->str, r->epoch);
	r->state = R_DOWN; /* (start_resync() only queues) */
	if (!other && (r->resync || !rep || rep->type != REDIS_REPLY_STRING))
		start_resync(r);
	if (rep)
		freeReplyObject(rep);
	if (other) {
		log_warn("gcs-storage %s: another head wrote the GCS: %zu writes left out", r->url,
			 r->queued);
		redisFree(c);
		return;
	}
	for (struct rcmd *q = r->head; q; q = q->next, sent++)
		if (redisAppendFormattedCommand(c, q->cmd, (size_t)q->len) != REDIS_OK)
			break;
	for (; n < sent; n++) {
		void *reply = NULL;

		if (redisGetReply(c, &reply) != REDIS_OK)
			break;
		freeReplyObject(reply);
	}
	if (n < r->queued)
		log_warn("gcs-storage %s: %zu of %zu writes not in Redis at stop: %s", r->url,
			 r->queued - n, r->queued, c->errstr);
	else if (n)
		log_info("gcs-storage %s: %zu writes sent at stop", r->url, n);
	rep = redisCommand(c, "EVAL %s 1 %s %s",
			   "if redis.call('GET', KEYS[1]) == ARGV[1] then "
			   "return redis.call('DEL', KEYS[1]) end return 0",
			   r->k_lease, r->epoch);
	if (rep)
		freeReplyObject(rep);
	redisFree(c);
}

/* ---- the store's interface (gcs.c) ----------------------------------------------------- */

static int redis_open(struct krayd *d, gcs_apply_fn apply, gcs_snapshot_fn snapshot,
		      gcs_durable_fn durable)
{
	struct gcs_redis *r = calloc(1, sizeof(*r));
	uint8_t rnd[16];
	const char *ns = d->cfg.gcs_redis_namespace;
	int e;

	if (!r)
		return -ENOMEM;
	d->cl->redis = r;
	r->d = d;
	r->snapshot = snapshot; /* the tables whole, for start_resync() */
	r->durable = durable;
	r->tail = &r->head;
	r->backoff = BACKOFF_MIN_NS;
	e = parse_url(r, d->cfg.gcs_storage);
	if (e) {
		if (e == -EINVAL)
			log_err("gcs-storage: not redis://HOST:PORT[/DB]: '%s'",
				d->cfg.gcs_storage);
		return e;
	}
	if (d->cfg.gcs_redis_password_file[0] &&
	    (e = read_password(r, d->cfg.gcs_redis_password_file)))
		return e;
	snprintf(r->k_actors, sizeof(r->k_actors), "%s:gcs:actors", ns);
	snprintf(r->k_kv, sizeof(r->k_kv), "%s:gcs:kv", ns);
	snprintf(r->k_jobs, sizeof(r->k_jobs), "%s:gcs:jobs", ns);
	snprintf(r->k_nodes, sizeof(r->k_nodes), "%s:gcs:nodes", ns);
	snprintf(r->k_epoch, sizeof(r->k_epoch), "%s:gcs:epoch", ns);
	snprintf(r->k_lease, sizeof(r->k_lease), "%s:gcs:lease", ns);
	r->lease_ms = d->cfg.node_timeout_ms; /* a head silent this long is dead, as a node */
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	for (int i = 0; i < 16; i++)
		sprintf(r->epoch + 2 * i, "%02x", rnd[i]);
	e = load(r, apply);
	if (e)
		return e;
	try_connect(r);
	return 0;
}

static void redis_append(struct krayd *d, uint16_t type, const void *body, size_t len)
{
	append_record(d->cl->redis, type, body, len);
}

static uint64_t redis_pending(struct krayd *d)
{
	struct gcs_redis *r = d->cl->redis;

	return r->state == R_UP && r->head && !r->stepped_down ? r->seq : 0;
}

static void redis_node_changed(struct krayd *d, const struct node_entry *e)
{
	struct gcs_redis *r = d->cl->redis;
	struct kbuf b = { 0 };
	char field[16];
	struct args a;

	node_args(r, e, &b, &a, field);
	enqueue(r, a.n, a.v, a.len);
	kbuf_free(&b);
}

static void redis_tick(struct krayd *d, int64_t now)
{
	struct gcs_redis *r = d->cl->redis;

	if (r->state == R_DOWN && now >= r->next_try) {
		try_connect(r);
		return;
	}
	if (r->state == R_UP && now >= r->next_lease)
		renew_lease(r);
	/* A Redis that stopped answering (hung, or a network that drops packets): its
	 * connection is given up, the writes stay queued, and a new one is tried. */
	if (r->ac && ((r->state == R_CONNECTING && now - r->attempt_ns > STALL_NS) ||
		      (r->state == R_UP && r->head && r->head->sent_ns &&
		       now - r->head->sent_ns > STALL_NS))) {
		r->stalled = true;
		redisAsyncFree(r->ac); /* on_disconnect() or nothing: */
		if (r->ac) /* (never connected: no disconnect callback) */
			retry_later(r, "no answer for 5 s");
		r->stalled = false;
	}
}

static void redis_describe(struct krayd *d, struct kbuf *b)
{
	struct gcs_redis *r = d->cl->redis;
	char line[512];
	int n;

	if (r->state == R_UP)
		n = snprintf(line, sizeof(line),
			     "gcs: %s up, %llu writes (%llu answered, %llu sent again, %llu "
			     "errors), %zu in flight, tables written whole %llu times\n",
			     r->url, (unsigned long long)r->writes, (unsigned long long)r->acked,
			     (unsigned long long)r->replayed, (unsigned long long)r->errors,
			     r->queued, (unsigned long long)r->resyncs);
	else
		n = snprintf(line, sizeof(line),
			     "gcs: %s %s for %lld ms, %zu writes queued (%zu bytes)%s\n", r->url,
			     r->down_since ? "DOWN" : "connecting",
			     r->down_since ? (long long)((now_ns() - r->down_since) / 1000000) : 0,
			     r->queued, r->queued_bytes,
			     r->resync ? ", tables to be written whole" : "");
	kbuf_put(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static void redis_close(struct krayd *d)
{
	struct gcs_redis *r = d->cl->redis;

	if (!r)
		return;
	r->closing = true;
	if (r->ac)
		redisAsyncFree(r->ac); /* (its callbacks see closing) */
	r->ac = NULL;
	flush_sync(r);
	while (r->head) {
		struct rcmd *c = r->head;

		r->head = c->next;
		free_cmd(r, c);
	}
	if (r->password) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	loop_watch_free(r->w);
	free(r);
	d->cl->redis = NULL;
}

const struct gcs_store gcs_redis_store = { .open = redis_open,
					   .append = redis_append,
					   .node_changed = redis_node_changed,
					   .tick = redis_tick,
					   .describe = redis_describe,
					   .pending = redis_pending,
					   .close = redis_close };
