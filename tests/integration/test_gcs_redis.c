// SPDX-License-Identifier: Apache-2.0
/*
 * The head's GCS in Redis (gcs-storage = redis://..., docs/cluster.md "GCS in Redis"),
 * against a real redis-server the test starts on a free loopback port, in its own temp
 * dir, without persistence (--save ""), and stops by pid.  The krayds are two nodes on
 * loopback: a head and a member; a head killed is replaced by one with another socket,
 * pin dir and GCS log (another machine but for the address), that rebuilds its tables
 * from Redis alone.  Skips when redis-server is not installed (Debian's redis-server).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define REDIS_SERVER "/usr/bin/redis-server"
#define REDIS_CLI "/usr/bin/redis-cli"

struct redis {
	pid_t pid;
	int port;
	char dir[128];
	const char *password; /* NULL: none */
};

static struct redis rs;
static struct harness head, member, head2;
static int head_port;
static char url[64];
static pid_t standby_pid; /* a standby head started by the test itself */

static void stop_redis(struct redis *r)
{
	int st;

	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, &st, 0);
	}
	r->pid = 0;
}

static void fini(void)
{
	if (standby_pid > 0) {
		/* Stopped as krayd should be (its workers with it), by force after 5 s. */
		kill(standby_pid, SIGTERM);
		for (int i = 0; i < 100 && !waitpid(standby_pid, NULL, WNOHANG); i++)
			usleep(50000);
		if (!kill(standby_pid, SIGKILL))
			waitpid(standby_pid, NULL, 0);
	}
	harness_cleanup();
	stop_redis(&rs);
}

TestSuite(gcs_redis, .fini = fini, .timeout = 120);

/* redis-cli's answer to cmd (one line, no newline), or "" */
static void cli(const struct redis *r, const char *cmd, char *out, size_t size)
{
	char line[512];
	FILE *f;
	size_t n;

	snprintf(line, sizeof(line), "%s -p %d %s%s %s %s 2>/dev/null", REDIS_CLI, r->port,
		 r->password ? "--no-auth-warning -a " : "", r->password ? r->password : "",
		 "--raw", cmd);
	f = popen(line, "r");
	cr_assert(f, "popen redis-cli");
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	pclose(f);
	while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = 0;
}

/* Starts redis-server on r->port (picked when 0) in r->dir (made when empty). */
static void start_redis(struct redis *r)
{
	char port[16], log[200];
	int64_t t0;

	if (access(REDIS_SERVER, X_OK))
		cr_skip_test("needs " REDIS_SERVER " (Debian's redis-server; make deps)");
	if (!r->port)
		r->port = harness_pick_port();
	if (!r->dir[0])
		harness_tmpdir(r->dir, sizeof(r->dir));
	snprintf(port, sizeof(port), "%d", r->port);
	snprintf(log, sizeof(log), "%s/redis.log", r->dir);
	r->pid = fork();
	cr_assert_geq(r->pid, 0);
	if (!r->pid) {
		const char *argv[20] = { REDIS_SERVER, "--port",       port,   "--bind",
					 "127.0.0.1",  "--dir",	       r->dir, "--save",
					 "",	       "--appendonly", "no",   "--daemonize",
					 "no",	       "--logfile",    log };
		int n = 15;

		if (r->password) {
			argv[n++] = "--requirepass";
			argv[n++] = r->password;
		}
		argv[n] = NULL;
		execv(REDIS_SERVER, (char *const *)argv);
		_exit(127);
	}
	t0 = harness_now_ms();
	for (;;) {
		char out[64];

		cli(r, "PING", out, sizeof(out));
		if (!strcmp(out, "PONG"))
			break;
		cr_assert_lt(harness_now_ms() - t0, 10000, "redis-server did not answer (%s)", log);
		usleep(50000);
	}
	snprintf(url, sizeof(url), "redis://127.0.0.1:%d", r->port);
}

static void start_head(struct harness *h, const char *const *more)
{
	const char *args[24] = { "--head", "--node-listen",	NULL,	"--gcs-storage",
				 url,	   "--resources",	"n1:1", "--heartbeat-ms",
				 "100",	   "--node-timeout-ms", "1000" };
	char listen[32];
	int n = 11, rc;

	if (!head_port)
		head_port = harness_pick_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", head_port);
	args[2] = listen;
	for (int i = 0; more && more[i]; i++)
		args[n++] = more[i];
	args[n] = NULL;
	setenv("KRAY_TEST_NODE", "1", 1);
	rc = harness_start_krayd_opts(h, 2, args);
	cr_assert_eq(rc, 0, "head did not start: %s", strerror(-rc));
}

/* A member joining the head (or the heads in address, when not NULL). */
static void start_member(const char *token, const char *address)
{
	char addr[96];
	const char *args[] = {
		"--address",   addr,   "--node-listen",	 "127.0.0.1:0", "--token-file",	     token,
		"--resources", "n2:1", "--heartbeat-ms", "100",		"--node-timeout-ms", "1000",
		NULL
	};
	int rc;

	snprintf(addr, sizeof(addr), "%s", address ? address : "");
	if (!address)
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", head_port);
	setenv("KRAY_TEST_NODE", "2", 1);
	rc = harness_start_krayd_opts(&member, 2, args);
	cr_assert_eq(rc, 0, "member did not start: %s", strerror(-rc));
}

static char *describe(kray *k)
{
	char *text = NULL;

	cr_assert_eq(kray_describe_nodes(k, &text), 0, "describe: %s", kray_errmsg(k));
	return text;
}

static int count(const char *text, const char *word)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, word)); p += strlen(word))
		n++;
	return n;
}

static void wait_alive(kray *k, int alive, int64_t ms)
{
	int64_t t0 = harness_now_ms();
	int a = -1;

	while (harness_now_ms() - t0 < ms) {
		char *t = describe(k);

		a = count(t, " ALIVE ");
		free(t);
		if (a == alive)
			return;
		usleep(20000);
	}
	cr_assert_fail("waited %lld ms for %d alive nodes; have %d", (long long)ms, alive, a);
}

/* Waits up to ms for describe's text to contain word. */
static void wait_describe(kray *k, const char *word, int64_t ms)
{
	int64_t t0 = harness_now_ms();
	char *t = NULL;

	while (harness_now_ms() - t0 < ms) {
		free(t);
		t = describe(k);
		if (strstr(t, word)) {
			free(t);
			return;
		}
		usleep(20000);
	}
	cr_assert_fail("waited %lld ms for '%s' in:\n%s", (long long)ms, word, t);
}

static void kv_expect(kray *k, const char *key, const char *want)
{
	void *val = NULL;
	size_t len = 0;
	int rc = kray_kv_get(k, key, &val, &len);

	cr_assert_eq(rc, 0, "kv get %s: %d %s", key, rc, kray_errmsg(k));
	cr_assert_eq(len, strlen(want), "kv %s: %zu bytes", key, len);
	cr_assert_eq(memcmp(val, want, len), 0, "kv %s: wrong value", key);
	free(val);
}

/* Waits up to ms for redis' HGET of kray:gcs:kv key to be want. */
static void redis_kv_expect(const char *key, const char *want, int64_t ms)
{
	int64_t t0 = harness_now_ms();
	char cmd[128], out[256] = "";

	snprintf(cmd, sizeof(cmd), "HGET kray:gcs:kv %s", key);
	while (harness_now_ms() - t0 < ms) {
		cli(&rs, cmd, out, sizeof(out));
		if (!strcmp(out, want))
			return;
		usleep(50000);
	}
	cr_assert_fail("redis kray:gcs:kv %s is '%s', not '%s'", key, out, want);
}

static int64_t actor_int(kray *k, kray_ref a, const char *method)
{
	kray_ref r;
	kray_value v;
	int rc;

	cr_assert_eq(kray_actor_call(k, a, method, NULL, 0, NULL, &r), 0, "%s", kray_errmsg(k));
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_eq(rc, 0, "%s: %d %s", method, rc, v.type == KRAY_ERROR ? (char *)v.data : "");
	kray_release(k, &r, 1);
	return v.i;
}

/* The token of the first head, copied beside the new one (as an operator would). */
static void copy_token(const char *from, const char *to)
{
	char buf[512];
	int in = open(from, O_RDONLY), out;
	ssize_t n;

	cr_assert_geq(in, 0, "%s: %s", from, strerror(errno));
	n = read(in, buf, sizeof(buf));
	close(in);
	cr_assert_gt(n, 0);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(out, 0);
	cr_assert_eq(write(out, buf, (size_t)n), n);
	close(out);
}

/*
 * KV, a named detached actor and a finished job in Redis; the head killed; a head with
 * another socket, pin dir and no log of its own (the state is nowhere but in Redis) finds
 * them all, and the member joins it again with the actor alive.
 */
Test(gcs_redis, head_started_elsewhere_recovers_from_redis)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	char token[200], token2[200], dir2[128], out[256], *t;
	const char *more2[] = { "--token-file", token2, NULL };
	kray *k, *k2;
	kray_ref a, found;

	start_redis(&rs);
	start_head(&head, NULL);
	snprintf(token, sizeof(token), "%s.token", head.sock);
	start_member(token, NULL);
	k = harness_connect(head.sock);
	k2 = harness_connect(member.sock);
	wait_alive(k, 2, 10000);
	wait_describe(k, "gcs: redis://", 5000);

	cr_assert_eq(kray_kv_put(k2, "model", "v1", 2), 0, "%s", kray_errmsg(k2));
	cr_assert_eq(kray_kv_put(k, "gone", "x", 1), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_kv_del(k, "gone"), 0, "%s", kray_errmsg(k));
	o.name = "keeper";
	o.detached = 1;
	o.resources = "n2:0.5"; /* on the member */
	cr_assert_eq(kray_actor_create(k, "Where", NULL, 0, &o, &a), 0, "%s", kray_errmsg(k));
	cr_assert_eq(actor_int(k, a, "node"), 2);
	cr_assert_eq(actor_int(k, a, "incr"), 1);
	kray_release(k, &a, 1);
	/* In Redis, as an operator sees it. */
	redis_kv_expect("model", "v1", 5000);
	cli(&rs, "HEXISTS kray:gcs:kv gone", out, sizeof(out));
	cr_assert_str_eq(out, "0", "a deleted key stayed in Redis");
	cli(&rs, "HLEN kray:gcs:actors", out, sizeof(out));
	cr_assert_str_eq(out, "1");
	cli(&rs, "HLEN kray:gcs:nodes", out, sizeof(out));
	cr_assert_str_eq(out, "2");
	harness_shutdown(k); /* its job is finished: in the job table */
	usleep(200 * 1000);

	kill(head.pid, SIGKILL);
	usleep(300 * 1000);
	harness_tmpdir(dir2, sizeof(dir2));
	snprintf(token2, sizeof(token2), "%s/token", dir2);
	copy_token(token, token2);
	start_head(&head2, more2);
	k = harness_connect(head2.sock);
	wait_alive(k, 2, 10000);

	/* The member joined again; the actor is the same instance. */
	cr_assert_eq(kray_get_actor(k, "keeper", NULL, &found), 0, "%s", kray_errmsg(k));
	cr_assert_eq(actor_int(k, found, "node"), 2);
	cr_assert_eq(actor_int(k, found, "incr"), 2);
	kray_release(k, &found, 1);
	cr_assert_eq(kray_get_actor(k2, "keeper", NULL, &found), 0, "%s", kray_errmsg(k2));
	cr_assert_eq(actor_int(k2, found, "incr"), 3);
	/* Killed, the actor gives its name up in Redis too. */
	cr_assert_eq(kray_kill(k2, found, 1), 0, "%s", kray_errmsg(k2));
	kray_release(k2, &found, 1);
	for (int64_t t0 = harness_now_ms(); harness_now_ms() - t0 < 5000; usleep(50000)) {
		cli(&rs, "HLEN kray:gcs:actors", out, sizeof(out));
		if (!strcmp(out, "0"))
			break;
	}
	cr_assert_str_eq(out, "0", "the killed actor's name stayed in Redis");
	kv_expect(k, "model", "v1");
	kv_expect(k2, "model", "v1");
	cr_assert_neq(kray_kv_get(k, "gone", &(void *){ NULL }, &(size_t){ 0 }), 0);
	t = describe(k);
	cr_assert_geq(count(t, " FINISHED "), 1, "the finished job is gone:\n%s", t);
	cr_assert(strstr(t, "gcs: redis://"), "%s", t);
	free(t);
	harness_shutdown(k2);
	harness_shutdown(k);
}

/*
 * Redis lost while the head runs: it goes on from memory (puts and gets answer), queues
 * the writes; Redis back empty (no persistence), and the tables are written whole.  A
 * connection Redis closes is made again and writes go on; a Redis that hangs is given up
 * and its writes sent when it answers again.
 */
Test(gcs_redis, redis_lost_and_back)
{
	char out[256];
	kray *k;

	start_redis(&rs);
	start_head(&head, NULL);
	k = harness_connect(head.sock);
	cr_assert_eq(kray_kv_put(k, "k1", "v1", 2), 0, "%s", kray_errmsg(k));
	redis_kv_expect("k1", "v1", 5000);

	/* The head's connection closed by Redis: made again, the writes go on. */
	cli(&rs, "CLIENT KILL TYPE normal", out, sizeof(out));
	cr_assert_eq(kray_kv_put(k, "k2", "v2", 2), 0, "%s", kray_errmsg(k));
	redis_kv_expect("k2", "v2", 5000);

	stop_redis(&rs);
	wait_describe(k, " DOWN for ", 5000);
	cr_assert_eq(kray_kv_put(k, "k3", "v3", 2), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_kv_del(k, "k1"), 0, "%s", kray_errmsg(k));
	kv_expect(k, "k3", "v3");
	wait_describe(k, "writes queued", 1000);

	start_redis(&rs); /* same port, empty */
	redis_kv_expect("k3", "v3", 10000);
	redis_kv_expect("k2", "v2", 1000);
	redis_kv_expect("k1", "", 1000);
	wait_describe(k, " up, ", 5000);
	cr_assert_eq(kray_kv_put(k, "k4", "v4", 2), 0, "%s", kray_errmsg(k));
	redis_kv_expect("k4", "v4", 5000);

	/* A Redis that stops answering (stopped, its socket open): given up after 5 s,
	 * the write kept and sent once it answers again. */
	kill(rs.pid, SIGSTOP);
	cr_assert_eq(kray_kv_put(k, "k5", "v5", 2), 0, "%s", kray_errmsg(k));
	kv_expect(k, "k5", "v5");
	wait_describe(k, " DOWN for ", 10000);
	kill(rs.pid, SIGCONT);
	redis_kv_expect("k5", "v5", 20000);
	cr_assert(harness_krayd_alive(&head));
	harness_shutdown(k);
}

/* krayd's output and exit status for a head that cannot start (flags after --head). */
static int failed_start(const char *const *flags, char *out, size_t size)
{
	char dir[128], cmd[1024];
	size_t n = 0;
	FILE *f;
	int st;

	harness_tmpdir(dir, sizeof(dir));
	n = (size_t)snprintf(cmd, sizeof(cmd),
			     "%s --socket %s/k.sock --head --node-listen 127.0.0.1:0 "
			     "--num-cpus 1 --prestart 0",
			     getenv("KRAY_KRAYD"), dir);
	for (int i = 0; flags[i]; i++)
		n += (size_t)snprintf(cmd + n, sizeof(cmd) - n, " '%s'", flags[i]);
	snprintf(cmd + n, sizeof(cmd) - n, " 2>&1");
	f = popen(cmd, "r");
	cr_assert(f);
	n = fread(out, 1, size - 1, f);
	out[n] = 0;
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

Test(gcs_redis, unreachable_or_refused_redis_at_start_is_a_clear_error)
{
	char out[8192], bad[64], pwfile[200], dir[128];
	const char *down[] = { "--gcs-storage", bad, NULL };
	const char *garbled[] = { "--gcs-storage", "redis://nohostnoport", NULL };
	const char *wrongpw[] = { "--gcs-storage", url, "--gcs-redis-password-file", pwfile, NULL };
	int64_t t0;
	FILE *f;
	kray *k;

	if (access(REDIS_SERVER, X_OK))
		cr_skip_test("needs " REDIS_SERVER " (Debian's redis-server; make deps)");
	snprintf(bad, sizeof(bad), "redis://127.0.0.1:%d", harness_pick_port());
	t0 = harness_now_ms();
	cr_assert_neq(failed_start(down, out, sizeof(out)), 0, "started without Redis:\n%s", out);
	cr_assert(strstr(out, "gcs-storage redis://127.0.0.1:") && strstr(out, "cannot connect"),
		  "%s", out);
	cr_assert_lt(harness_now_ms() - t0, 20000, "gave up only after %lld ms",
		     (long long)(harness_now_ms() - t0));
	cr_assert_neq(failed_start(garbled, out, sizeof(out)), 0);
	cr_assert(strstr(out, "gcs-storage: not redis://HOST:PORT[/DB]"), "%s", out);
	cr_assert_neq(
		failed_start((const char *const[]){ "--head=standby", NULL }, out, sizeof(out)), 0);
	cr_assert(strstr(out, "head = standby needs gcs-storage = redis://"), "%s", out);

	/* A password Redis refuses, then the right one. */
	rs.password = "s3cret";
	start_redis(&rs);
	harness_tmpdir(dir, sizeof(dir));
	snprintf(pwfile, sizeof(pwfile), "%s/pw", dir);
	f = fopen(pwfile, "w");
	fputs("wrong\n", f);
	fclose(f);
	cr_assert_neq(failed_start(wrongpw, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "AUTH"), "%s", out);
	f = fopen(pwfile, "w");
	fputs("s3cret\n", f);
	fclose(f);
	start_head(&head, (const char *const[]){ "--gcs-redis-password-file", pwfile, NULL });
	k = harness_connect(head.sock);
	cr_assert_eq(kray_kv_put(k, "pw", "ok", 2), 0, "%s", kray_errmsg(k));
	redis_kv_expect("pw", "ok", 5000);
	harness_shutdown(k);
	rs.password = NULL;
}

/* Waits up to ms for a byte on fd; returns the ms it took, or -1. */
static int64_t wait_byte(int fd, int ms)
{
	int64_t t0 = harness_now_ms();
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, ms) != 1 || read(fd, &c, 1) != 1)
		return -1;
	return harness_now_ms() - t0;
}

/* A driver on sock that puts keys w0, w1, ... until stopped (SIGTERM), writing the
 * number of each put the cluster acknowledged to fd; returns its pid. */
static pid_t put_loop(const char *sock, int fd)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (!pid) {
		struct kray_config cfg = { .address = sock };
		kray *k = NULL;

		if (kray_init(&k, &cfg))
			_exit(1);

		for (int i = 0; k && i < 100000; i++) {
			char key[32];

			snprintf(key, sizeof(key), "w%d", i);
			if (kray_kv_put(k, key, key, strlen(key))) {
				i--; /* no head now: the same key again */
				usleep(1000);
				continue;
			}
			if (write(fd, &i, sizeof(i)) != sizeof(i))
				_exit(1);
		}
		_exit(0);
	}
	return pid;
}

/*
 * head = standby: a second head waits on the active one's lease in Redis (not serving,
 * refusing nodes); a plain head started meanwhile is refused.  The active head killed,
 * the standby takes over once the lease runs out (node-timeout-ms), the member (address:
 * both heads) joins it, and the named detached actor and the KV table are all there.
 */
Test(gcs_redis, standby_takes_over_when_the_head_dies)
{
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	char token[200], heads[96], sdir[128], ssock[160], slisten[32], readyfd[16], out[8192];
	const char *plain[] = { "--gcs-storage", url, "--heartbeat-ms", "100", "--node-timeout-ms",
				"1000",		 NULL };
	int standby_port = harness_pick_port(), pfd[2], acks[2];
	pid_t writer;
	int64_t t0, took, joined;
	kray *k, *k2, *ks;
	kray_ref a, found;

	start_redis(&rs);
	start_head(&head, NULL);
	snprintf(token, sizeof(token), "%s.token", head.sock);
	snprintf(heads, sizeof(heads), "127.0.0.1:%d,127.0.0.1:%d", head_port, standby_port);

	/* The standby, with its ready byte on a pipe of ours. */
	harness_tmpdir(sdir, sizeof(sdir));
	snprintf(ssock, sizeof(ssock), "%s/k.sock", sdir);
	snprintf(slisten, sizeof(slisten), "127.0.0.1:%d", standby_port);
	cr_assert_eq(pipe(pfd), 0);
	snprintf(readyfd, sizeof(readyfd), "%d", pfd[1]);
	standby_pid = fork();
	cr_assert_geq(standby_pid, 0);
	if (!standby_pid) {
		const char *argv[] = { getenv("KRAY_KRAYD"),
				       "--socket",
				       ssock,
				       "--num-cpus",
				       "2",
				       "--code-path",
				       getenv("KRAY_TEST_CODE_PATH"),
				       "--worker",
				       getenv("KRAY_WORKER"),
				       "--head=standby",
				       "--node-listen",
				       slisten,
				       "--gcs-storage",
				       url,
				       "--token-file",
				       token,
				       "--resources",
				       "n3:1",
				       "--heartbeat-ms",
				       "100",
				       "--node-timeout-ms",
				       "1000",
				       "--ready-fd",
				       readyfd,
				       NULL };

		close(pfd[0]);
		setenv("KRAY_TEST_NODE", "3", 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);

	start_member(token, heads);
	k = harness_connect(head.sock);
	k2 = harness_connect(member.sock);
	wait_alive(k, 2, 10000);
	cr_assert_eq(kray_kv_put(k2, "model", "v1", 2), 0, "%s", kray_errmsg(k2));
	o.name = "keeper";
	o.detached = 1;
	o.resources = "n2:0.5";
	cr_assert_eq(kray_actor_create(k, "Where", NULL, 0, &o, &a), 0, "%s", kray_errmsg(k));
	cr_assert_eq(actor_int(k, a, "node"), 2);
	cr_assert_eq(actor_int(k, a, "incr"), 1);
	kray_release(k, &a, 1);
	harness_shutdown(k);

	/* While the head lives the standby waits, and another plain head is refused. */
	cr_assert_neq(failed_start(plain, out, sizeof(out)), 0, "%s", out);
	cr_assert(strstr(out, "holds the head's lease"), "%s", out);
	cr_assert_eq(wait_byte(pfd[0], 0), -1, "the standby serves beside the active head");
	cr_assert_eq(waitpid(standby_pid, NULL, WNOHANG), 0, "the standby exited");

	/* A driver on the member puts keys throughout: none it was told is stored may be
	 * missing after the takeover. */
	cr_assert_eq(pipe(acks), 0);
	writer = put_loop(member.sock, acks[1]);
	close(acks[1]);
	usleep(300 * 1000);

	t0 = harness_now_ms();
	kill(head.pid, SIGKILL);
	took = wait_byte(pfd[0], 15000);
	cr_assert_geq(took, 0, "the standby did not take over");
	ks = harness_connect(ssock);
	wait_alive(ks, 2, 10000);
	joined = harness_now_ms() - t0;
	fprintf(stderr,
		"standby: serving %lld ms after the head's SIGKILL; the member joined it "
		"after %lld ms (lease: node-timeout-ms 1000)\n",
		(long long)took, (long long)joined);
	cr_assert_lt(joined, 10000);
	usleep(300 * 1000); /* puts to the new head too */
	kill(writer, SIGKILL);
	waitpid(writer, NULL, 0);
	{
		int i, n = 0, last = -1;

		while (read(acks[0], &i, sizeof(i)) == sizeof(i)) {
			char key[32];

			snprintf(key, sizeof(key), "w%d", i);
			kv_expect(ks, key, key);
			n++;
			last = i;
		}
		close(acks[0]);
		fprintf(stderr, "standby: %d acknowledged puts (up to w%d), all on the new head\n",
			n, last);
		cr_assert_gt(n, 0);
	}

	cr_assert_eq(kray_get_actor(ks, "keeper", NULL, &found), 0, "%s", kray_errmsg(ks));
	cr_assert_eq(actor_int(ks, found, "node"), 2);
	cr_assert_eq(actor_int(ks, found, "incr"), 2);
	kray_release(ks, &found, 1);
	cr_assert_eq(kray_get_actor(k2, "keeper", NULL, &found), 0, "%s", kray_errmsg(k2));
	cr_assert_eq(actor_int(k2, found, "incr"), 3);
	kray_release(k2, &found, 1);
	kv_expect(ks, "model", "v1");
	kv_expect(k2, "model", "v1");
	close(pfd[0]);
	harness_shutdown(k2);
	harness_shutdown(ks);
}

/*
 * Two heads that both think they are active: the lease in Redis decides.  Another head's
 * epoch in the lease (as when a standby took over while this head was cut off from Redis)
 * makes this one step down (it stops) without writing its tables over the other's.
 */
Test(gcs_redis, a_head_that_lost_the_lease_steps_down)
{
	char out[256];
	int64_t t0;
	kray *k;

	start_redis(&rs);
	start_head(&head, NULL);
	k = harness_connect(head.sock);
	cr_assert_eq(kray_kv_put(k, "mine", "1", 1), 0, "%s", kray_errmsg(k));
	redis_kv_expect("mine", "1", 5000);
	harness_shutdown(k);
	cli(&rs, "SET kray:gcs:lease other-head PX 60000", out, sizeof(out));
	cli(&rs, "SET kray:gcs:epoch other-head", out, sizeof(out));
	cli(&rs, "HSET kray:gcs:kv theirs 2", out, sizeof(out));
	t0 = harness_now_ms();
	while (harness_krayd_alive(&head) && harness_now_ms() - t0 < 10000)
		usleep(50000);
	cr_assert(!harness_krayd_alive(&head), "the head did not step down");
	cli(&rs, "GET kray:gcs:lease", out, sizeof(out));
	cr_assert_str_eq(out, "other-head", "the head took the lease back");
	redis_kv_expect("theirs", "2", 1000); /* not written over */
}
