// SPDX-License-Identifier: Apache-2.0
/*
 * krayd as a node service: systemd readiness (READY=1 / STOPPING=1 on a fake
 * NOTIFY_SOCKET), the Prometheus endpoint (scraped and every line parsed), the config file
 * (flags override it; an unknown key or a bad value stops krayd with the file and line),
 * reload on SIGHUP, and the `kray start/status/stop` CLI.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static void fini(void)
{
	harness_cleanup();
}

TestSuite(service, .fini = fini);

/* Runs krayd with args (NULL-terminated, after argv[0]) and the given environment entry,
 * stderr to errfile.  Returns the pid. */
static pid_t spawn_krayd(const char *const *args, const char *env, const char *errfile)
{
	const char *krayd = getenv("KRAY_KRAYD");
	char *argv[32];
	int n = 0;
	pid_t pid;

	cr_assert(krayd, "KRAY_KRAYD is not set (run through make test-integration)");
	argv[n++] = (char *)krayd;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = (char *)args[i];
	argv[n] = NULL;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fd >= 0)
			dup2(fd, STDERR_FILENO);
		if (env)
			putenv((char *)env);
		execv(krayd, argv);
		_exit(127);
	}
	return pid;
}

static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, size - 1, f) : 0;

	buf[n] = 0;
	if (f)
		fclose(f);
}

/* Waits for pid to exit within ms; returns its status, or -1 (then it is killed). */
static int wait_exit(pid_t pid, int ms)
{
	int status;

	for (int i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

Test(service, sd_notify_ready_and_stopping, .timeout = 30)
{
	char dir[128], sock[192], nsock[192], env[256], err[256], msg[512];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd p;
	int fd, status;
	ssize_t n;
	pid_t pid;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/krayd.sock", dir);
	snprintf(nsock, sizeof(nsock), "%s/notify", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	snprintf(env, sizeof(env), "NOTIFY_SOCKET=%s", nsock);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", nsock);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));

	const char *args[] = { "--socket", sock, "--num-cpus", "1", "--log-level", "warn", NULL };

	pid = spawn_krayd(args, env, err);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 10000), 1, "no notification from krayd in 10 s");
	n = recv(fd, msg, sizeof(msg) - 1, 0);
	cr_assert_gt(n, 0);
	msg[n] = 0;
	cr_assert(strstr(msg, "READY=1"), "first notification: '%s'", msg);
	/* Ready means serving: a client can connect right away. */
	kray *k = harness_connect(sock);

	harness_shutdown(k);
	kill(pid, SIGTERM);
	cr_assert_eq(poll(&p, 1, 10000), 1, "no STOPPING notification");
	n = recv(fd, msg, sizeof(msg) - 1, 0);
	msg[n > 0 ? n : 0] = 0;
	cr_assert(strstr(msg, "STOPPING=1"), "second notification: '%s'", msg);
	status = wait_exit(pid, 10000);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "krayd status %d", status);
	cr_assert_neq(access(sock, F_OK), 0, "krayd left its socket behind");
	close(fd);
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static size_t scrape(int port, char *buf, size_t size)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	const char req[] = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
	size_t got = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
		     strerror(errno));
	cr_assert_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
	while (got < size - 1 && (n = read(fd, buf + got, size - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	close(fd);
	return got;
}

/* Checks one exposition-format sample line "name{labels} value" and returns the value. */
static double parse_sample(const char *line, char *name, size_t name_size)
{
	const char *p = line;
	size_t n = 0;
	char *end;
	double v;

	while (*p && *p != ' ' && *p != '{') {
		cr_assert((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				  (*p >= '0' && *p <= '9' && n) || *p == '_' || *p == ':',
			  "bad metric name character in '%s'", line);
		if (n + 1 < name_size)
			name[n++] = *p;
		p++;
	}
	name[n] = 0;
	cr_assert_gt(n, 0, "empty metric name: '%s'", line);
	if (*p == '{') {
		p = strchr(p, '}');
		cr_assert(p, "unterminated labels: '%s'", line);
		p++;
	}
	cr_assert_eq(*p, ' ', "no value in '%s'", line);
	v = strtod(p + 1, &end);
	cr_assert(end != p + 1 && (*end == 0 || *end == ' '), "bad value in '%s'", line);
	return v;
}

Test(service, metrics_endpoint, .timeout = 60)
{
	struct harness h;
	char port_s[32], buf[65536], name[128], typed[128] = "";
	int port = free_port(), samples = 0;
	double finished = -1, fast = 0;

	snprintf(port_s, sizeof(port_s), "127.0.0.1:%d", port);
	const char *extra[] = { "--metrics", port_s, NULL };

	cr_assert_eq(harness_start_krayd_opts(&h, 2, extra), 0);
	kray *k = harness_connect(h.sock);

	for (int i = 0; i < 20; i++)
		harness_expect_int(k, "square", &KRAY_V_INT(i), 1, (int64_t)i * i);
	size_t n = scrape(port, buf, sizeof(buf));

	cr_assert_gt(n, 0, "empty scrape");
	cr_assert(!strncmp(buf, "HTTP/1.0 200", 12), "status line: %.40s", buf);
	cr_assert(strstr(buf, "Content-Type: text/plain; version=0.0.4"), "content type");
	char *body = strstr(buf, "\r\n\r\n");

	cr_assert(body, "no end of headers");
	body += 4;
	for (char *line = strtok(body, "\n"); line; line = strtok(NULL, "\n")) {
		if (!strncmp(line, "# HELP ", 7))
			continue;
		if (!strncmp(line, "# TYPE ", 7)) {
			char kind[32];

			cr_assert_eq(sscanf(line + 7, "%127s %31s", typed, kind), 2, "'%s'", line);
			cr_assert(!strcmp(kind, "counter") || !strcmp(kind, "gauge"), "'%s'", line);
			continue;
		}
		cr_assert_neq(line[0], '#', "unknown comment '%s'", line);
		double v = parse_sample(line, name, sizeof(name));

		cr_assert_str_eq(name, typed, "sample %s without its TYPE line", name);
		cr_assert_geq(v, 0, "negative %s", name);
		if (!strcmp(name, "kray_tasks_finished_total"))
			finished = v;
		if (!strcmp(name, "kray_fast_tasks_total"))
			fast = v; /* synchronous calls krayd's BPF program steered */
		samples++;
	}
	cr_assert_geq(samples, 20, "only %d samples", samples);
	cr_assert_geq(finished, 0, "no kray_tasks_finished_total");
	cr_assert_geq(finished + fast, 20,
		      "kray_tasks_finished_total %g + kray_fast_tasks_total %g after 20 tasks",
		      finished, fast);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(&h), "krayd died serving metrics");
}

Test(service, config_file_errors_name_the_line, .timeout = 30)
{
	char dir[128], conf[192], err[192], text[4096], sock[192];
	FILE *f;
	int status;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(conf, sizeof(conf), "%s/krayd.conf", dir);
	snprintf(err, sizeof(err), "%s/err", dir);
	snprintf(sock, sizeof(sock), "%s/krayd.sock", dir);

	f = fopen(conf, "w");
	fprintf(f, "# a comment\n\nnum-cpus = 2\nno-such-key = 1\n");
	fclose(f);
	const char *a1[] = { "--config", conf, "--socket", sock, NULL };

	status = wait_exit(spawn_krayd(a1, NULL, err), 10000);
	slurp(err, text, sizeof(text));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "unknown key: status %d", status);
	cr_assert(strstr(text, "krayd.conf:4") && strstr(text, "no-such-key"), "stderr: %s", text);

	f = fopen(conf, "w");
	fprintf(f, "store-size = lots\n");
	fclose(f);
	status = wait_exit(spawn_krayd(a1, NULL, err), 10000);
	slurp(err, text, sizeof(text));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "bad value: status %d", status);
	cr_assert(strstr(text, "krayd.conf:1") && strstr(text, "lots"), "stderr: %s", text);

	f = fopen(conf, "w");
	fprintf(f, "num-cpus = 2\n");
	fclose(f);
	const char *a2[] = { "--config", conf, "--socket", sock, "--num-cpus", "-5", NULL };

	status = wait_exit(spawn_krayd(a2, NULL, err), 10000);
	slurp(err, text, sizeof(text));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "bad flag: status %d", status);
	cr_assert(strstr(text, "--num-cpus"), "stderr: %s", text);
	cr_assert_neq(access(sock, F_OK), 0, "a refused krayd left a socket");
}

Test(service, flags_override_config_and_sighup_reloads, .timeout = 30)
{
	struct harness h;
	char dir[128], conf[192];
	FILE *f;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(conf, sizeof(conf), "%s/krayd.conf", dir);
	f = fopen(conf, "w");
	fprintf(f, "num-cpus = 1\nlog-level = warn\n");
	fclose(f);
	/* The harness passes --num-cpus 2 after --config: the flag wins. */
	const char *extra[] = { "--config", conf, NULL };

	cr_assert_eq(harness_start_krayd_opts(&h, 2, extra), 0);
	kray *k = harness_connect(h.sock);
	kray_ref r[2];

	for (int i = 0; i < 2; i++)
		r[i] = harness_call1(k, "sleep_ms", &KRAY_V_INT(300), 1);
	int64_t t0 = harness_now_ms();
	kray_value v[2];

	cr_assert_eq(kray_get(k, r, 2, 10000, v), 0, "%s", kray_errmsg(k));
	cr_assert_lt(harness_now_ms() - t0, 550, "two 300 ms tasks did not run in parallel");
	/* A reload with a broken file changes nothing and keeps krayd running; a good one
	 * applies. */
	f = fopen(conf, "w");
	fprintf(f, "log-level = loud\n");
	fclose(f);
	kill(h.pid, SIGHUP);
	usleep(100000);
	cr_assert(harness_krayd_alive(&h), "krayd died on a bad reload");
	f = fopen(conf, "w");
	fprintf(f, "log-level = debug\n");
	fclose(f);
	kill(h.pid, SIGHUP);
	usleep(100000);
	cr_assert(harness_krayd_alive(&h), "krayd died on reload");
	harness_expect_int(k, "square", &KRAY_V_INT(7), 1, 49);
	f = fopen(conf, "w");
	fprintf(f, "log-level = warn\n");
	fclose(f);
	kill(h.pid, SIGHUP);
	harness_shutdown(k);
}

Test(service, cli_start_status_stop, .timeout = 60)
{
	const char *bin = getenv("KRAY_BIN");
	char dir[128], sock[192], cmd[1024], out[4096];
	FILE *p;
	size_t n;
	int rc;

	cr_assert(bin, "KRAY_BIN is not set");
	harness_tmpdir(dir, sizeof(dir));
	snprintf(sock, sizeof(sock), "%s/krayd.sock", dir);
	snprintf(cmd, sizeof(cmd), "%s/kray start --socket %s --num-cpus 1 --log-level warn 2>&1",
		 bin, sock);
	p = popen(cmd, "r");
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	rc = pclose(p);
	cr_assert_eq(rc, 0, "kray start: %s", out);
	cr_assert(strstr(out, "running"), "kray start said: %s", out);

	snprintf(cmd, sizeof(cmd), "%s/kray status --socket %s 2>&1", bin, sock);
	p = popen(cmd, "r");
	n = fread(out, 1, sizeof(out) - 1, p);
	out[n] = 0;
	rc = pclose(p);
	cr_assert_eq(rc, 0, "kray status: %s", out);
	cr_assert(strstr(out, "workers") && strstr(out, "objects"), "status: %s", out);

	snprintf(cmd, sizeof(cmd), "%s/kray stop --socket %s 2>&1", bin, sock);
	rc = system(cmd);
	cr_assert_eq(rc, 0, "kray stop failed");
	cr_assert_neq(access(sock, F_OK), 0, "socket left after kray stop");
	snprintf(cmd, sizeof(cmd), "%s/kray status --socket %s >/dev/null 2>&1", bin, sock);
	cr_assert_neq(system(cmd), 0, "status succeeded after stop");
}

Test(service, status_says_why_an_actor_waits, .timeout = 60)
{
	struct harness h;
	struct kray_actor_opts big = KRAY_ACTOR_OPTS_DEFAULT, small = KRAY_ACTOR_OPTS_DEFAULT;
	kray_ref a, b;
	char *text = NULL;

	cr_assert_eq(harness_start_krayd(&h, 2), 0);
	kray *k = harness_connect(h.sock);

	big.num_cpus = 2;
	small.num_cpus = 1;
	small.name = "waiter";
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &big, &a), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &small, &b), 0, "%s", kray_errmsg(k));
	/* Once the first is up, the second still waits for its slot. */
	struct kray_stats st;

	for (int i = 0; i < 500; i++) {
		st = harness_status(k);
		if (st.actors_alive == 1)
			break;
		usleep(10000);
	}
	cr_assert_eq(st.actors_alive, 1, "the first actor did not start");
	cr_assert_eq(st.actors_pending, 1, "actors_pending %llu",
		     (unsigned long long)st.actors_pending);
	cr_assert_eq(kray_describe_actors(k, &text), 0, "%s", kray_errmsg(k));
	cr_assert(strstr(text, "/waiter pending: waiting for 1 CPU slots (0 of 2 free)"),
		  "actor list:\n%s", text);
	free(text);
	cr_assert_eq(kray_kill(k, a, 1), 0, "%s", kray_errmsg(k));
	/* The slots are free now: the waiter starts. */
	for (int i = 0; i < 500; i++) {
		st = harness_status(k);
		if (st.actors_alive == 1 && !st.actors_pending)
			break;
		usleep(10000);
	}
	cr_assert_eq(st.actors_alive, 1, "the waiting actor did not start");
	cr_assert_eq(kray_describe_actors(k, &text), 0);
	cr_assert(strstr(text, "/waiter alive: pid"), "actor list:\n%s", text);
	free(text);
	kray_release(k, &a, 1);
	kray_release(k, &b, 1);
	harness_shutdown(k);
}

Test(service, custom_resources_place_actors, .timeout = 60)
{
	struct harness h;
	struct kray_actor_opts gpu = KRAY_ACTOR_OPTS_DEFAULT, bad = KRAY_ACTOR_OPTS_DEFAULT;
	const char *extra[] = { "--resources", "GPU:1,ssd:2.5", NULL };
	kray_ref a, b, c;
	char *text = NULL;

	cr_assert_eq(harness_start_krayd_opts(&h, 2, extra), 0);
	kray *k = harness_connect(h.sock);

	gpu.resources = "GPU:1";
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &gpu, &a), 0, "%s", kray_errmsg(k));
	gpu.name = "second";
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &gpu, &b), 0, "%s", kray_errmsg(k));
	/* A resource the node lacks, or more of one than it has, cannot be placed here. */
	bad.resources = "TPU:1";
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &bad, &c), -EINVAL);
	bad.resources = "ssd:3";
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &bad, &c), -EINVAL);
	bad.resources = "GPU";
	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &bad, &c), -EINVAL);

	kray_ref r;
	kray_value v;

	cr_assert_eq(kray_actor_call(k, a, "incr", &KRAY_V_INT(1), 1, NULL, &r), 0);
	cr_assert_eq(kray_get(k, &r, 1, 10000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(kray_describe_actors(k, &text), 0);
	cr_assert(strstr(text, "/second pending: waiting for 1 GPU (0 of 1 free)"),
		  "actor list:\n%s", text);
	free(text);
	cr_assert_eq(kray_actor_call(k, b, "incr", &KRAY_V_INT(5), 1, NULL, &r), 0);
	cr_assert_eq(kray_get(k, &r, 1, 300, &v), -ETIMEDOUT, "the second GPU actor ran");
	kray_release(k, &a, 1); /* its GPU goes to the waiting one */
	cr_assert_eq(kray_get(k, &r, 1, 10000, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.i, 5);
	harness_shutdown(k);

	const char *broken[] = { "--resources", "GPU=1", NULL };
	struct harness h2;

	cr_assert_neq(harness_start_krayd_opts(&h2, 1, broken), 0, "krayd took resources GPU=1");
}

/* Whether user pw could load path (every directory above it searchable, it readable). */
static bool readable_as(const struct passwd *pw, const char *path)
{
	pid_t pid = fork();
	int status;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid))
			_exit(2);
		_exit(access(path, R_OK) ? 1 : 0);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/*
 * worker-user: krayd (root) runs its workers, and so every task, as that user, without
 * capabilities or supplementary groups; krayd's socket need not be reachable by that
 * user (a worker talks over a socketpair krayd made).  An unknown user is refused at
 * start with exit status 2.
 */
Test(service, worker_user_runs_tasks_without_privileges, .timeout = 60)
{
	const char *const bad[] = { "--socket", "/nonexistent/k.sock", "--worker-user",
				    "no-such-user-kray", NULL };
	const char *code = getenv("KRAY_TEST_CODE_PATH");
	const char *opts[] = { "--worker-user", "nobody", NULL };
	struct passwd *pw = getpwnam("nobody");
	char lib[PATH_MAX], errfile[PATH_MAX], err[1024], tmp[128];
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	struct harness h;
	kray_value v[4];
	kray_ref r[4];
	int status, rc;
	kray *k;

	if (geteuid() != 0)
		cr_skip_test("worker-user needs krayd to run as root: not root here");
	if (!pw)
		cr_skip_test("there is no user nobody");
	cr_assert(code);
	snprintf(lib, sizeof(lib), "%s/libtestfns.so", code);
	if (!readable_as(pw, lib))
		cr_skip_test("%s is not readable by nobody (a directory above it is closed)", lib);

	/* an unknown user: krayd says so and exits 2 */
	harness_tmpdir(tmp, sizeof(tmp));
	snprintf(errfile, sizeof(errfile), "%s/err", tmp);
	status = wait_exit(spawn_krayd(bad, NULL, errfile), 10000);
	slurp(errfile, err, sizeof(err));
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2, "status %#x: %s", status, err);
	cr_assert(strstr(err, "no such user 'no-such-user-kray'"), "stderr: %s", err);

	cr_assert_eq(harness_start_krayd_opts(&h, 1, opts), 0);
	k = harness_connect(h.sock);
	o.num_returns = 4;
	rc = kray_call(k, "worker_identity", NULL, 0, &o, r);
	cr_assert_eq(rc, 0, "%s", kray_errmsg(k));
	rc = kray_get(k, r, 4, 30000, v);
	cr_assert_eq(rc, 0, "get: %d %s %s", rc, kray_errmsg(k),
		     v[0].type == KRAY_ERROR ? (const char *)v[0].data : "");
	cr_assert_eq(v[0].i, (int64_t)pw->pw_uid, "the task ran as uid %lld", (long long)v[0].i);
	cr_assert_eq(v[1].i, (int64_t)pw->pw_gid, "the task ran as gid %lld", (long long)v[1].i);
	cr_assert_eq(v[2].i, 0, "the task has capabilities %#llx", (unsigned long long)v[2].i);
	cr_assert_eq(v[3].i, 0, "the task has %lld supplementary groups", (long long)v[3].i);
	kray_release(k, r, 4);
	harness_expect_int(k, "square", &KRAY_V_INT(9), 1, 81);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}
