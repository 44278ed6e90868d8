// SPDX-License-Identifier: Apache-2.0
/*
 * bench_scale.c - how far one head goes (issue 19, docs/cluster.md "How far one head
 * goes"): a real head krayd and N simulated nodes that speak the node protocol against it
 * from this process (the token handshake, REGISTER, a HEARTBEAT every heartbeat-ms with
 * their load, the views the head answers with), for N = 100, 300 and 1,000:
 *
 *   head_cpu_pct           the head's CPU time over the measuring window, % of one CPU
 *   head_cpu_us_per_report the same per heartbeat it handled
 *   head_rss_kb_per_node   the head's resident memory with N nodes less with none, per node
 *   view_bytes_per_report  what the head sent back per heartbeat (its view of the cluster)
 *   join_ms                the N handshakes and registrations, one after another
 *   detect_dead_ms         a node's link closed until the head lists it DEAD
 *
 * A tenth of the simulated nodes report a different load at each heartbeat (busy nodes);
 * the others report the same figures every time (idle ones).  The baseline beside each
 * figure is the same measure at the smallest N: a head that scales linearly keeps the CPU
 * and view bytes per report, and the memory per node, flat as N grows.
 *
 * Medians of the rounds (--quick: 100 and 300 nodes, 1 s windows).  Needs nothing but
 * loopback; raises its file limit for the sockets.
 *
 *	bench_scale [--quick] [--json FILE] [--nodes N[,N...]]
 */
#include <kray/kray.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../include/uapi/kray_wire.h"
#include "bench_common.h"

#define TOKEN "bench-scale-token-0123456789abcdef"
#define HEARTBEAT_MS 1000
#define MAX_SIZES 8

struct sim {
	int fd;
	uint32_t node;
	int64_t next_ms; /* when it reports next */
	uint32_t load; /* what it reports as queued */
	bool busy;
	uint8_t in[1 << 16];
	size_t have;
};

struct size_result {
	unsigned n;
	double cpu_pct, cpu_us_per_report, rss_kb_per_node, view_bytes_per_report, join_ms,
		detect_ms;
};

static struct bench_krayd head;
static unsigned short port;
static uint64_t view_bytes, reports;

static int64_t now_ms(void)
{
	return (int64_t)(bench_now() * 1000);
}

static void cleanup(void)
{
	bench_krayd_stop(&head);
}

static void send_all(int fd, const void *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			bench_die("send to the head", strerror(errno));
		p = (const uint8_t *)p + n;
		len -= (size_t)n;
	}
}

static void send_frame(int fd, uint16_t type, const void *body, uint32_t len)
{
	struct kray_frame_hdr h = {
		.magic = KRAY_WIRE_MAGIC, .version = KRAY_WIRE_VERSION, .type = type, .len = len
	};
	uint8_t buf[sizeof(h) + 256];

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	send_all(fd, buf, sizeof(h) + len);
}

/* Reads one whole frame (blocking); its body into body (at most cap bytes). */
static uint16_t recv_frame(int fd, void *body, size_t cap)
{
	struct kray_frame_hdr h;
	size_t got = 0;

	while (got < sizeof(h)) {
		ssize_t n = recv(fd, (uint8_t *)&h + got, sizeof(h) - got, 0);

		if (n <= 0)
			bench_die("the head closed a node link during the handshake", NULL);
		got += (size_t)n;
	}
	if (h.magic != KRAY_WIRE_MAGIC || h.len > cap)
		bench_die("a frame from the head that is not one", NULL);
	for (got = 0; got < h.len;) {
		ssize_t n = recv(fd, (uint8_t *)body + got, h.len - got, 0);

		if (n <= 0)
			bench_die("the head closed a node link during the handshake", NULL);
		got += (size_t)n;
	}
	return h.type;
}

/* A node's report: its entry, as krayd's report() writes it (no resources). */
static void report(struct sim *s, uint16_t type)
{
	struct kray_msg_node m = { .node = s->node,
				   .addr = htonl(INADDR_LOOPBACK),
				   .port = 9, /* nothing listens: the head never dials it */
				   .alive = 1,
				   .num_cpus = 1,
				   .workers = 1,
				   .workers_busy = s->busy,
				   .tasks_queued = s->load };

	send_frame(s->fd, type, &m, sizeof(m));
	reports += type == KRAY_MSG_NODE_HEARTBEAT;
}

/* Connects, proves the token and registers (the connector's side of net.c). */
static void join(struct sim *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct kray_msg_node_challenge ch;
	struct kray_msg_node_auth a = { 0 };
	uint8_t msg[1 + 2 * KRAY_NONCE_LEN + 4], body[256];
	unsigned len = KRAY_MAC_LEN;
	int one = 1;

	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)))
		bench_die("connect to the head", strerror(errno));
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (recv_frame(s->fd, &ch, sizeof(ch)) != KRAY_MSG_NODE_CHALLENGE)
		bench_die("the head did not challenge", NULL);
	if (getrandom(a.nonce, sizeof(a.nonce), 0) != sizeof(a.nonce))
		bench_die("getrandom", strerror(errno));
	a.node = s->node;
	msg[0] = 'C';
	memcpy(msg + 1, ch.nonce, KRAY_NONCE_LEN);
	memcpy(msg + 1 + KRAY_NONCE_LEN, a.nonce, KRAY_NONCE_LEN);
	memcpy(msg + 1 + 2 * KRAY_NONCE_LEN, &a.node, 4);
	HMAC(EVP_sha256(), TOKEN, (int)strlen(TOKEN), msg, sizeof(msg), a.mac, &len);
	send_frame(s->fd, KRAY_MSG_NODE_AUTH, &a, sizeof(a));
	if (recv_frame(s->fd, body, sizeof(body)) != KRAY_MSG_NODE_AUTH_OK)
		bench_die("the head refused the token", NULL);
	report(s, KRAY_MSG_NODE_REGISTER);
}

/* Reads what the head sent s (views), counting their bytes.  0, or -1 when it closed. */
static int drain(struct sim *s)
{
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

			memcpy(&h, s->in, sizeof(h));
			if (h.magic != KRAY_WIRE_MAGIC)
				bench_die("a frame from the head that is not one", NULL);
			if (h.type == KRAY_MSG_NODE_VIEW)
				view_bytes += sizeof(h) + h.len;
			if (sizeof(h) + h.len > s->have) {
				/* A view larger than the buffer: skip it as it comes. */
				if (sizeof(h) + h.len > sizeof(s->in)) {
					size_t left = sizeof(h) + h.len - s->have;
					uint8_t skip[4096];

					while (left) {
						ssize_t m = recv(s->fd, skip,
								 left < sizeof(skip) ? left :
										       sizeof(skip),
								 0);
						if (m <= 0)
							return -1;
						left -= (size_t)m;
					}
					s->have = 0;
				}
				break;
			}
			memmove(s->in, s->in + sizeof(h) + h.len, s->have - sizeof(h) - h.len);
			s->have -= sizeof(h) + h.len;
		}
	}
	return 0;
}

/* Heartbeats for ms: each node on its own schedule, the busy ones with a new load. */
static void run(struct sim *sims, unsigned n, int64_t ms)
{
	struct pollfd *p = calloc(n, sizeof(*p));
	int64_t end = now_ms() + ms;

	if (!p)
		bench_die("out of memory", NULL);
	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = sims[i].fd, .events = POLLIN };
	for (int64_t t = now_ms(); t < end; t = now_ms()) {
		int64_t next = end;

		for (unsigned i = 0; i < n; i++) {
			if (sims[i].next_ms <= t) {
				if (sims[i].busy)
					sims[i].load = (sims[i].load * 1103515245u + 12345u) % 64;
				report(&sims[i], KRAY_MSG_NODE_HEARTBEAT);
				sims[i].next_ms += HEARTBEAT_MS;
			}
			if (sims[i].next_ms < next)
				next = sims[i].next_ms;
		}
		if (poll(p, n, (int)(next > t ? next - t : 0)) < 0 && errno != EINTR)
			bench_die("poll", strerror(errno));
		for (unsigned i = 0; i < n; i++)
			if ((p[i].revents & POLLIN) && drain(&sims[i]))
				bench_die("the head closed a simulated node's link", NULL);
	}
	free(p);
}

static void proc_figures(pid_t pid, double *cpu_s, double *rss_kb)
{
	char path[64], line[1024];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f || !fgets(line, sizeof(line), f))
		bench_die("reading the head's /proc stat", strerror(errno));
	fclose(f);
	char *p = strrchr(line, ')');
	unsigned long ut = 0, st = 0;

	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		bench_die("parsing the head's /proc stat", NULL);
	*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		bench_die("reading the head's /proc status", strerror(errno));
	*rss_kb = 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "VmRSS:", 6))
			*rss_kb = atof(line + 6);
	fclose(f);
}

/* Polls the head's node list until node is listed dead; returns the ms it took. */
static double wait_dead(kray *k, uint32_t node)
{
	double t0 = bench_now();

	for (;;) {
		struct kray_node_info *info = NULL;
		size_t n = 0;
		bool dead = false;

		if (kray_list_nodes(k, &info, &n))
			bench_die("kray_list_nodes", kray_errmsg(k));
		for (size_t i = 0; i < n; i++)
			dead |= info[i].node == node && !info[i].alive;
		free(info);
		if (dead)
			return (bench_now() - t0) * 1000;
		if (bench_now() - t0 > 30)
			bench_die("the head did not list a closed node as dead in 30 s", NULL);
		usleep(1000);
	}
}

static void one_size(unsigned n, double window_s, struct size_result *r)
{
	char listen[32], hb[16];
	const char *const flags[] = { "--head", "--node-listen",
				      listen,	"--token",
				      TOKEN,	"--heartbeat-ms",
				      hb,	"--node-timeout-ms",
				      "30000",	"--num-cpus",
				      "1",	"--prestart",
				      "0",	"--bpf",
				      "off",	"--max-unproven-links",
				      "64",	NULL };
	struct sim *sims = calloc(n, sizeof(*sims));
	struct kray_config cfg = { 0 };
	double cpu0, cpu1, rss0, rss1, t0;
	uint64_t bytes0, reports0;
	kray *k;

	if (!sims)
		bench_die("out of memory", NULL);
	/* A free port: bind, note it, close (the head binds it next). */
	{
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t len = sizeof(sa);
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    getsockname(fd, (struct sockaddr *)&sa, &len))
			bench_die("finding a free port", strerror(errno));
		port = ntohs(sa.sin_port);
		close(fd);
	}
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	snprintf(hb, sizeof(hb), "%d", HEARTBEAT_MS);
	bench_krayd_start_build(&head, flags);
	cfg.address = head.sock;
	if (kray_init(&k, &cfg))
		bench_die("connecting to the head", kray_init_errmsg());
	usleep(200000);
	proc_figures(head.pid, &cpu0, &rss0);

	t0 = bench_now();
	for (unsigned i = 0; i < n; i++) {
		do
			if (getrandom(&sims[i].node, sizeof(sims[i].node), 0) != 4)
				bench_die("getrandom", strerror(errno));
		while (!sims[i].node);
		sims[i].busy = i % 10 == 0;
		join(&sims[i]);
		/* Spread the heartbeats over the period, as nodes that joined at random. */
		sims[i].next_ms = now_ms() + (int64_t)((uint64_t)i * HEARTBEAT_MS / n);
	}
	r->join_ms = (bench_now() - t0) * 1000;
	run(sims, n, 1500); /* every node has reported once since */

	proc_figures(head.pid, &cpu0, &rss1);
	bytes0 = view_bytes;
	reports0 = reports;
	t0 = bench_now();
	run(sims, n, (int64_t)(window_s * 1000));
	proc_figures(head.pid, &cpu1, &rss1);
	r->n = n;
	r->cpu_pct = 100 * (cpu1 - cpu0) / (bench_now() - t0);
	r->cpu_us_per_report = 1e6 * (cpu1 - cpu0) / (double)(reports - reports0);
	r->view_bytes_per_report = (double)(view_bytes - bytes0) / (double)(reports - reports0);
	r->rss_kb_per_node = (rss1 - rss0) / n;

	/* One node's link closes: the head lists it dead. */
	close(sims[0].fd);
	r->detect_ms = wait_dead(k, sims[0].node);

	kray_shutdown(k);
	for (unsigned i = 1; i < n; i++)
		close(sims[i].fd);
	free(sims);
	bench_krayd_stop(&head);
}

struct report {
	struct size_result r[MAX_SIZES];
	int n;
};

static void emit(FILE *f, void *arg)
{
	const struct report *rep = arg;

	fprintf(f, "{\"bench\": \"scale\", \"heartbeat_ms\": %d, \"sizes\": [", HEARTBEAT_MS);
	for (int i = 0; i < rep->n; i++) {
		const struct size_result *r = &rep->r[i];

		fprintf(f,
			"%s{\"nodes\": %u, \"head_cpu_pct\": %.2f, \"head_cpu_us_per_report\": "
			"%.1f, \"head_rss_kb_per_node\": %.1f, \"view_bytes_per_report\": %.0f, "
			"\"join_ms\": %.0f, \"detect_dead_ms\": %.1f}",
			i ? ", " : "", r->n, r->cpu_pct, r->cpu_us_per_report, r->rss_kb_per_node,
			r->view_bytes_per_report, r->join_ms, r->detect_ms);
	}
	fprintf(f, "]}\n");
}

int main(int argc, char **argv)
{
	struct bench_opts o = { 0 };
	struct report rep = { 0 };
	unsigned sizes[MAX_SIZES] = { 100, 300, 1000 };
	int nsizes = 3;
	struct rlimit rl;

	bench_init("bench_scale");
	for (int i = 1; i < argc; i++) {
		if (bench_opt(argc, argv, &i, false, &o))
			continue;
		if (!strcmp(argv[i], "--nodes") && i + 1 < argc) {
			char *s = argv[++i], *end;

			for (nsizes = 0; *s && nsizes < MAX_SIZES; s = *end ? end + 1 : end) {
				sizes[nsizes++] = (unsigned)strtoul(s, &end, 10);
				if (end == s || !sizes[nsizes - 1])
					bench_die("--nodes takes N[,N...]", NULL);
			}
			continue;
		}
		fprintf(stderr, "usage: bench_scale [--quick] [--json FILE] [--nodes N[,N...]]\n");
		return 2;
	}
	if (o.quick && nsizes == 3)
		nsizes = 2;
	/* Sockets: ours and the head's (it inherits the limit). */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	atexit(cleanup);
	printf("bench_scale: a head and N simulated nodes on loopback, heartbeat %d ms, a "
	       "tenth of them busy\n",
	       HEARTBEAT_MS);
	printf("%7s %10s %14s %13s %14s %9s %11s\n", "nodes", "head CPU%", "CPU us/report",
	       "RSS KB/node", "view B/report", "join ms", "detect ms");
	for (int i = 0; i < nsizes; i++) {
		struct size_result *r = &rep.r[rep.n++];

		one_size(sizes[i], o.quick ? 1.0 : 4.0, r);
		printf("%7u %10.2f %14.1f %13.1f %14.0f %9.0f %11.1f\n", r->n, r->cpu_pct,
		       r->cpu_us_per_report, r->rss_kb_per_node, r->view_bytes_per_report,
		       r->join_ms, r->detect_ms);
		fflush(stdout);
	}
	bench_json_out(o.json_file, emit, &rep);
	return 0;
}
