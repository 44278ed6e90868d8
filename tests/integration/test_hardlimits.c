// SPDX-License-Identifier: Apache-2.0
/*
 * krayd against greedy, slow and careless clients (issue 21, docs/limits.md "Connections
 * and memory"): frame headers that claim 256 MiB and stall, a client that never reads its
 * replies, thousands of node links that never prove the token, the descriptor limit, and
 * the Prometheus endpoint's method, path and idle checks.  Each starts its own krayd.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../../common/buf.h"
#include "../../common/wire.h"
#include "../../include/uapi/kray_wire.h"
#include "harness.h"

TestSuite(hardlimits, .fini = harness_cleanup, .timeout = 120);

static struct harness start(const char *const *extra)
{
	struct harness h;
	int rc = harness_start_krayd_opts(&h, 2, extra);

	cr_assert_eq(rc, 0, "harness_start_krayd: %d", rc);
	return h;
}

/* A field of /proc/PID/status in kB (VmRSS, VmData). */
static long proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
			v = strtol(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	cr_assert_geq(v, 0, "no %s in %s", field, path);
	return v;
}

/* utime + stime of pid, in clock ticks. */
static long cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	cr_assert_not_null(p);
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
	cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st),
		     2);
	return (long)(ut + st);
}

static void raise_nofile(void)
{
	struct rlimit rl;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/*
 * 20 clients each send a header claiming KRAY_FRAME_MAX (256 MiB) and 64 KiB of it, then
 * stall: krayd's memory grows with what arrived (not 20 x 256 MiB of address space), and
 * each is closed at frame-timeout-ms while krayd goes on serving; a client that never says
 * HELLO is closed at hello-timeout-ms.
 */
Test(hardlimits, stalled_large_frames, .timeout = 60)
{
	const char *const extra[] = { "--frame-timeout-ms", "1500", "--hello-timeout-ms", "1500",
				      NULL };
	struct harness h = start(extra);
	struct kray_msg_hello_ok ok;
	int silent = harness_raw_connect(h.sock, 10);
	struct kray_frame_hdr hdr = { .magic = KRAY_WIRE_MAGIC,
				      .version = KRAY_WIRE_VERSION,
				      .type = KRAY_MSG_PUT,
				      .len = KRAY_FRAME_MAX };
	static uint8_t part[64 << 10];
	long rss0 = proc_kb(h.pid, "VmRSS"), data0 = proc_kb(h.pid, "VmData"), rss, data;
	int fd[20];

	for (int i = 0; i < 20; i++) {
		fd[i] = harness_raw_connect(h.sock, 10);
		harness_raw_hello(fd[i], &ok);
		harness_raw_send(fd[i], &hdr, sizeof(hdr));
		harness_raw_send(fd[i], part, sizeof(part));
	}
	usleep(300 * 1000);
	rss = proc_kb(h.pid, "VmRSS");
	data = proc_kb(h.pid, "VmData");
	cr_assert_lt(data - data0, 256 << 10, "20 stalled 256 MiB headers: VmData %ld -> %ld kB",
		     data0, data);
	cr_assert_lt(rss - rss0, 64 << 10, "20 stalled 256 MiB headers: VmRSS %ld -> %ld kB", rss0,
		     rss);
	harness_expect_serving(&h, "20 stalled frames");
	for (int i = 0; i < 20; i++) {
		cr_assert(harness_closed_within(fd[i], 5000, NULL),
			  "a frame stalled past frame-timeout-ms was kept (client %d)", i);
		close(fd[i]);
	}
	/* And one that never said HELLO is closed at hello-timeout-ms. */
	cr_assert(harness_closed_within(silent, 3000, NULL),
		  "a client silent past hello-timeout-ms was kept");
	close(silent);
	harness_expect_serving(&h, "stalled frames closed");
}

/*
 * A client asks for a 60 KiB object 4,000 times (240 MB of replies) and never reads: it is
 * disconnected once client-output-limit (8 MiB here) is queued, krayd's memory stays
 * bounded, and another client is served meanwhile.
 */
Test(hardlimits, client_not_reading_is_disconnected, .timeout = 90)
{
	const char *const extra[] = { "--client-output-limit", "8M", NULL };
	struct harness h = start(extra);
	struct kray_msg_hello_ok ok;
	struct kbuf b = { 0 };
	static uint8_t val[60 << 10];
	size_t off, got = 0;
	long rss0 = proc_kb(h.pid, "VmRSS"), rss;
	int fd = harness_raw_connect(h.sock, 10);
	int rcv = 4096;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	harness_raw_hello(fd, &ok);
	struct kray_oid oid = { ok.node, ok.client, 1, KRAY_OID_PUT };
	struct kray_msg_put m = { .oid = oid };

	off = wire_begin(&b, KRAY_MSG_PUT, 0);
	kbuf_put(&b, &m, sizeof(m));
	wire_put_value(&b, KRAY_WT_BYTES, 0, 0, val, sizeof(val));
	wire_end(&b, off);
	for (int i = 0; i < 4000; i++) {
		struct kray_msg_get g = { .timeout_ms = 0, .n = 1 };

		off = wire_begin(&b, KRAY_MSG_GET, (uint64_t)i + 1);
		kbuf_put(&b, &g, sizeof(g));
		kbuf_put(&b, &oid, sizeof(oid));
		wire_end(&b, off);
	}
	harness_raw_send(fd, b.data, b.len); /* stops quietly once krayd closes it */
	kbuf_free(&b);
	usleep(500 * 1000);
	rss = proc_kb(h.pid, "VmRSS");
	cr_assert_lt(rss - rss0, 100 << 10, "a client not reading: krayd's VmRSS %ld -> %ld kB",
		     rss0, rss);
	harness_expect_serving(&h, "a client not reading");
	cr_assert(harness_closed_within(fd, 10000, &got), "a client not reading was kept");
	cr_assert_lt(got, 32u << 20, "it received %zu bytes before the end", got);
	close(fd);
	harness_expect_serving(&h, "a client disconnected at the output limit");
}

/*
 * Past client-buffers-max (5 MiB here) the client whose buffers hold the most is closed:
 * three clients each send 2 MiB of a frame claiming 256 MiB; one goes at once (long
 * before frame-timeout-ms), the others stay, and krayd serves a new client.
 */
Test(hardlimits, total_buffer_cap, .timeout = 60)
{
	const char *const extra[] = { "--client-buffers-max", "5M", NULL };
	struct harness h = start(extra);
	struct kray_msg_hello_ok ok;
	struct kray_frame_hdr hdr = { .magic = KRAY_WIRE_MAGIC,
				      .version = KRAY_WIRE_VERSION,
				      .type = KRAY_MSG_PUT,
				      .len = KRAY_FRAME_MAX };
	static uint8_t part[2 << 20];
	int fd[3], closed = 0;

	for (int i = 0; i < 3; i++) {
		fd[i] = harness_raw_connect(h.sock, 10);
		harness_raw_hello(fd[i], &ok);
		harness_raw_send(fd[i], &hdr, sizeof(hdr));
		harness_raw_send(fd[i], part, sizeof(part));
	}
	for (int i = 0; i < 3; i++)
		closed += harness_closed_within(fd[i], i ? 200 : 2000, NULL);
	cr_assert_eq(closed, 1, "client-buffers-max 5M, 3 x 2 MiB held: %d clients closed", closed);
	harness_expect_serving(&h, "client-buffers-max");
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

/*
 * 3,000 TCP connections to a head's node port that never prove the token: the head's
 * memory stays bounded (at most max-unproven-links of them are held), memory goes back
 * once they close, and a node with the token still joins.
 */
Test(hardlimits, half_open_node_links, .timeout = 120)
{
	char listen[32], token[200];
	int port = harness_pick_port();
	struct harness head, member;
	const char *hargs[] = { "--head", "--node-listen", listen, NULL };
	const char *margs[] = { "--address",	  listen,	  "--node-listen",
				"127.0.0.1:0",	  "--token-file", token,
				"--heartbeat-ms", "100",	  NULL };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static int fd[3000];
	long rss0, rss, data0, data;
	kray *k;

	raise_nofile();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	head = start(hargs);
	snprintf(token, sizeof(token), "%s.token", head.sock);
	rss0 = proc_kb(head.pid, "VmRSS");
	data0 = proc_kb(head.pid, "VmData");
	for (int i = 0; i < 3000; i++) {
		fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fd[i], 0, "socket %d: %s", i, strerror(errno));
		cr_assert_eq(connect(fd[i], (struct sockaddr *)&sa, sizeof(sa)), 0,
			     "connect %d: %s", i, strerror(errno));
	}
	usleep(500 * 1000);
	rss = proc_kb(head.pid, "VmRSS");
	data = proc_kb(head.pid, "VmData");
	cr_assert_lt(rss - rss0, 64 << 10, "3,000 half-open links: head VmRSS %ld -> %ld kB", rss0,
		     rss);
	cr_assert_lt(data - data0, 128 << 10, "3,000 half-open links: head VmData %ld -> %ld kB",
		     data0, data);
	/* A node with the token joins meanwhile (the flood is closed at the cap or timed
	 * out: AUTH_TIMEOUT_NS). */
	member = start(margs);
	k = harness_connect(head.sock);
	int64_t end = harness_now_ms() + 20000;

	while (harness_count_alive(k) < 2 && harness_now_ms() < end)
		usleep(50000);
	cr_assert_eq(harness_count_alive(k), 2,
		     "a node with the token did not join past the flood");
	for (int i = 0; i < 3000; i++)
		close(fd[i]);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&head), "the head died");
	(void)member;
}

/*
 * krayd started under a low descriptor limit (RLIMIT_NOFILE 64, inherited): 300 clients
 * connect; the accepts that fail with EMFILE pause instead of spinning (krayd's CPU time
 * stays low over a second), and once they hang up krayd serves new clients again.
 */
Test(hardlimits, descriptor_limit_does_not_spin, .timeout = 60)
{
	const char *const extra[] = { "--max-clients", "100000", NULL };
	struct rlimit old, low;
	struct harness h;
	int fd[300];
	long t0, t1;
	int rc;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;
	cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0, "setrlimit: %s", strerror(errno));
	rc = harness_start_krayd_opts(&h, 2, extra);
	setrlimit(RLIMIT_NOFILE, &old);
	cr_assert_eq(rc, 0, "krayd did not start under RLIMIT_NOFILE 64: %d", rc);
	raise_nofile();
	for (int i = 0; i < 300; i++)
		fd[i] = harness_raw_connect(h.sock, 10);
	usleep(300 * 1000);
	t0 = cpu_ticks(h.pid);
	usleep(1000 * 1000);
	t1 = cpu_ticks(h.pid);
	cr_assert_lt(t1 - t0, sysconf(_SC_CLK_TCK) / 5,
		     "krayd at EMFILE used %ld ticks of CPU in one second", t1 - t0);
	cr_assert(harness_krayd_alive(&h), "krayd died at its descriptor limit");
	for (int i = 0; i < 300; i++)
		close(fd[i]);
	usleep(300 * 1000);
	harness_expect_serving(&h, "the descriptor limit");
}

/* Past max-clients a new client gets ERROR -EUSERS and is closed; krayd serves the others
 * and, once one leaves, a new one. */
Test(hardlimits, max_clients_refused, .timeout = 60)
{
	const char *const extra[] = { "--max-clients", "12", NULL };
	struct harness h = start(extra);
	struct kray_msg_hello_ok ok;
	int fd[16], n = 0, extra_fd;

	/* Fill up to the limit (workers count too): connect until one is refused. */
	for (;;) {
		cr_assert_lt(n, 16, "max-clients 12: 16 clients accepted");
		fd[n] = harness_raw_connect(h.sock, 5);
		struct kray_frame_hdr hd;
		struct pollfd p = { .fd = fd[n], .events = POLLIN };

		if (poll(&p, 1, 300) > 0 && recv(fd[n], &hd, sizeof(hd), MSG_PEEK) > 0) {
			harness_expect_error_frame(fd[n], -EUSERS, "a client past max-clients");
			close(fd[n]);
			break;
		}
		harness_raw_hello(fd[n], &ok);
		n++;
	}
	cr_assert_gt(n, 0, "no client accepted under max-clients 12");
	close(fd[--n]);
	usleep(200 * 1000);
	extra_fd = harness_raw_connect(h.sock, 5);
	harness_raw_hello(extra_fd, &ok);
	close(extra_fd);
	while (n)
		close(fd[--n]);
	usleep(200 * 1000);
	harness_expect_serving(&h, "max-clients");
}

/* The metrics endpoint answers GET /metrics only (405 for POST, 404 for another path)
 * and closes a connection that sends nothing. */
Test(hardlimits, metrics_endpoint_checks, .timeout = 60)
{
	int port = harness_pick_port();
	char addr[32], buf[4096];
	const char *const extra[] = { "--metrics", addr, "--frame-timeout-ms", "1000", NULL };
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct harness h;
	int fd;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	h = start(extra);
	harness_http(port, "GET /metrics HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	cr_assert(!strncmp(buf, "HTTP/1.0 200", 12) && strstr(buf, "kray_tasks_submitted_total"),
		  "GET /metrics: %.80s", buf);
	harness_http(port, "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", buf, sizeof(buf));
	cr_assert(!strncmp(buf, "HTTP/1.0 405", 12), "POST /metrics: %.80s", buf);
	harness_http(port, "GET /secret HTTP/1.0\r\n\r\n", buf, sizeof(buf));
	cr_assert(!strncmp(buf, "HTTP/1.0 404", 12), "GET /secret: %.80s", buf);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert(harness_closed_within(fd, 4000, NULL), "an idle metrics connection was kept");
	close(fd);
	harness_expect_serving(&h, "metrics checks");
}
