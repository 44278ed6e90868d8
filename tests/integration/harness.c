// SPDX-License-Identifier: Apache-2.0
/*
 * Integration test harness (see harness.h): starts and stops krayds owned by the test,
 * opens kray handles, and cleans both up from the suites' .fini so that a failed
 * assertion does not leave daemons or temp dirs behind.  Also the raw-socket helpers that
 * tests of what krayd refuses use to hand it frames no libkray would send.
 */
#include "harness.h"
#include "spawn.h"

#include <criterion/criterion.h>

#include "../../common/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/time.h>
#include <poll.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/bpfmap.h"
#include "../../include/uapi/kray_bpf.h"
#include "netns.h"

#define MAX_HANDLES 16
#define MAX_KRAYDS 20
#define MAX_TMPDIRS 8

static kray *handles[MAX_HANDLES]; /* under handles_lock: tests connect from threads */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct harness krayds[MAX_KRAYDS]; /* copies: the tests' may be on the stack */
static char tmpdirs[MAX_TMPDIRS][128];

int64_t harness_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void harness_rm_rf(const char *path)
{
	spawn_rm_rf(path);
}

void harness_tmpdir(char *buf, size_t size)
{
	int rc = spawn_tmpdir("kray-test", buf, size);

	cr_assert_eq(rc, 0, "mkdtemp: %s", strerror(-rc));
	for (int i = 0; i < MAX_TMPDIRS; i++) {
		if (!tmpdirs[i][0]) {
			snprintf(tmpdirs[i], sizeof(tmpdirs[i]), "%s", buf);
			break;
		}
	}
}

/* The suites look at the BPF metrics as soon as a krayd serves: every krayd they start
 * (through the harness or kray_init()) loads them before serving (bpf-wait), unless the
 * environment says otherwise or a test passes --bpf-wait off. */
__attribute__((constructor)) static void bpf_wait_default(void)
{
	setenv("KRAY_BPF_WAIT", "on", 0);
}

int harness_start_krayd(struct harness *h, int num_cpus)
{
	return harness_start_krayd_opts(h, num_cpus, NULL);
}

int harness_start_krayd_opts(struct harness *h, int num_cpus, const char *const *extra)
{
	const char *krayd = getenv("KRAY_KRAYD");
	const char *code = getenv("KRAY_TEST_CODE_PATH");
	char cpus[16];
	int rc;

	memset(h, 0, sizeof(*h));
	if (!krayd || !code) {
		fprintf(stderr, "harness: KRAY_KRAYD and KRAY_TEST_CODE_PATH must be set "
				"(run through make test-integration)\n");
		return -ENOENT;
	}
	rc = spawn_tmpdir("kray-test", h->dir, sizeof(h->dir));
	if (rc)
		return rc;
	snprintf(h->sock, sizeof(h->sock), "%s/krayd.sock", h->dir);
	snprintf(cpus, sizeof(cpus), "%d", num_cpus);

	const char *const flags[] = { "--num-cpus", cpus, "--code-path", code, NULL };
	const char *level = getenv("KRAY_TEST_LOG"); /* quiet on success; info: more */

	rc = spawn_krayd(krayd, h->sock, level ? level : "warn", flags, extra, 10000, &h->pid);
	if (rc) {
		fprintf(stderr, "harness: krayd %s did not become ready in 10 s (%s)\n", krayd,
			rc == -ECHILD ? "it exited" : strerror(-rc));
		harness_rm_rf(h->dir);
		h->dir[0] = 0;
		return rc;
	}
	for (int i = 0; i < MAX_KRAYDS; i++) {
		if (!krayds[i].pid) {
			krayds[i] = *h;
			break;
		}
	}
	return 0;
}

int harness_krayd_alive(struct harness *h)
{
	int status;

	if (h->pid <= 0)
		return 0;
	return waitpid(h->pid, &status, WNOHANG) == 0;
}

int harness_stop_krayd(struct harness *h)
{
	int status = -1;

	for (int i = 0; i < MAX_KRAYDS; i++)
		if (h->pid > 0 && krayds[i].pid == h->pid)
			krayds[i] = (struct harness){ 0 };
	if (h->pid > 0) {
		status = spawn_stop(h->pid, 5000, "harness");
		h->pid = 0;
	}
	if (h->dir[0]) {
		harness_rm_rf(h->dir);
		h->dir[0] = 0;
	}
	return status;
}

static void register_handle(kray *k)
{
	pthread_mutex_lock(&handles_lock);
	for (int i = 0; i < MAX_HANDLES; i++) {
		if (!handles[i]) {
			handles[i] = k;
			break;
		}
	}
	pthread_mutex_unlock(&handles_lock);
}

kray *harness_embedded(int num_cpus)
{
	struct kray_config cfg = { 0 };
	kray *k = NULL;
	int rc;

	/* KRAY_ADDRESS would turn address = NULL into "connect there". */
	unsetenv("KRAY_ADDRESS");
	cfg.address = NULL;
	cfg.code_path = getenv("KRAY_TEST_CODE_PATH");
	cfg.num_cpus = num_cpus;
	cr_assert_not_null(cfg.code_path, "KRAY_TEST_CODE_PATH is not set");
	rc = kray_init(&k, &cfg);
	cr_assert_eq(rc, 0, "kray_init (private krayd): %d %s", rc, kray_init_errmsg());
	cr_assert_not_null(k, "kray_init returned 0 but no handle");
	register_handle(k);
	return k;
}

kray *harness_connect(const char *sock)
{
	struct kray_config cfg = { 0 };
	kray *k = NULL;
	int rc;

	cfg.address = sock;
	cfg.code_path = getenv("KRAY_TEST_CODE_PATH");
	rc = kray_init(&k, &cfg);
	cr_assert_eq(rc, 0, "kray_init(%s): %d %s", sock, rc, kray_init_errmsg());
	cr_assert_not_null(k, "kray_init returned 0 but no handle");
	register_handle(k);
	return k;
}

void harness_shutdown(kray *k)
{
	pthread_mutex_lock(&handles_lock);
	for (int i = 0; i < MAX_HANDLES; i++)
		if (handles[i] == k)
			handles[i] = NULL;
	pthread_mutex_unlock(&handles_lock);
	kray_shutdown(k);
}

static char small_disk[256]; /* harness_small_disk()'s, until unmounted */

int harness_small_disk(char *disk, size_t len, const char *size)
{
	char dir[128], opts[64];

	harness_tmpdir(dir, sizeof(dir));
	snprintf(disk, len, "%s/disk", dir);
	snprintf(opts, sizeof(opts), "size=%s,mode=0700", size);
	cr_assert_eq(mkdir(disk, 0700), 0, "mkdir %s: %s", disk, strerror(errno));
	if (mount("tmpfs", disk, "tmpfs", 0, opts))
		return -errno;
	snprintf(small_disk, sizeof(small_disk), "%s", disk);
	return 0;
}

void harness_unmount_disk(const char *disk)
{
	cr_assert_eq(umount2(disk, 0), 0, "umount %s: %s", disk, strerror(errno));
	small_disk[0] = 0;
}

static pid_t children[8]; /* harness_fork_ready()'s, until harness_kill_child() */

int harness_kill_child(pid_t pid)
{
	int status = -1;

	for (int i = 0; i < 8; i++)
		if (children[i] == pid)
			children[i] = 0;
	kill(pid, SIGKILL);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

void harness_cleanup(void)
{
	for (int i = 0; i < 8; i++)
		if (children[i])
			harness_kill_child(children[i]);
	for (int i = 0; i < MAX_HANDLES; i++) {
		if (handles[i]) {
			kray_shutdown(handles[i]);
			handles[i] = NULL;
		}
	}
	for (int i = 0; i < MAX_KRAYDS; i++) {
		if (krayds[i].pid) {
			struct harness h = krayds[i];

			harness_stop_krayd(&h);
		}
	}
	if (small_disk[0]) {
		umount2(small_disk, MNT_DETACH);
		small_disk[0] = 0;
	}
	for (int i = 0; i < MAX_TMPDIRS; i++) {
		if (tmpdirs[i][0]) {
			harness_rm_rf(tmpdirs[i]);
			tmpdirs[i][0] = 0;
		}
	}
	harness_sweep_bpf();
}

/* A krayd a test SIGKILLed (or that crashed) leaves its BPF maps pinned: removed here, as
 * krayd does at start (common/bpfmap.h); only the directories of krayds that are gone. */
void harness_sweep_bpf(void)
{
	int lock = kbm_lock(KRAY_BPF_PIN_ROOT);

	if (lock < 0)
		return; /* no pins (no bpffs, or not root) */
	kbm_sweep(KRAY_BPF_PIN_ROOT);
	close(lock);
}

int harness_get1(kray *k, kray_ref ref, int64_t timeout_ms, kray_value *ret)
{
	return kray_get(k, &ref, 1, timeout_ms, ret);
}

kray_ref harness_call1(kray *k, const char *fn, const kray_value *args, size_t nargs)
{
	kray_ref r;
	int rc = kray_call(k, fn, args, nargs, NULL, &r);

	cr_assert_eq(rc, 0, "kray_call(%s): %d %s", fn, rc, kray_errmsg(k));
	return r;
}

const char *harness_errkind(int err)
{
	static const char *const names[] = {
		"NONE",	       "TASK",	   "WORKER_DIED", "UNKNOWN_FUNCTION", "BAD_ARGS",
		"OBJECT_LOST", "INTERNAL", "STORE_FULL",  "ACTOR_DIED",	      "CANCELLED"
	};

	if (err >= 0 && err < (int)(sizeof(names) / sizeof(names[0])))
		return names[err];
	return "?";
}

void harness_expect_int(kray *k, const char *fn, const kray_value *args, size_t nargs, int64_t want)
{
	kray_ref r = harness_call1(k, fn, args, nargs);
	kray_value v = { 0 };
	int rc = harness_get1(k, r, 60000, &v);

	cr_assert_eq(rc, 0, "get of %s: %d %s (value type %d: %s)", fn, rc, kray_errmsg(k), v.type,
		     v.type == KRAY_ERROR ? (const char *)v.data : "");
	cr_assert_eq(v.type, KRAY_INT64, "%s returned type %d, want INT64", fn, v.type);
	cr_assert_eq(v.i, want, "%s returned %lld, want %lld", fn, (long long)v.i, (long long)want);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
}

void harness_expect_error(kray *k, const char *fn, const kray_value *args, size_t nargs,
			  const struct kray_call_opts *opts, enum kray_errkind err,
			  const char *needle1, const char *needle2)
{
	kray_ref r;
	kray_value v = { 0 };
	int rc = kray_call(k, fn, args, nargs, opts, &r);

	cr_assert_eq(rc, 0, "kray_call(%s): %d %s", fn, rc, kray_errmsg(k));
	rc = harness_get1(k, r, 60000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "get of %s: rc %d, want -EREMOTEIO (%s)", fn, rc,
		     kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_ERROR, "%s: value type %d, want KRAY_ERROR", fn, v.type);
	cr_assert_not_null(v.data, "%s: error value without a message", fn);
	cr_assert_eq(strlen(v.data), v.len, "%s: error message len %zu != strlen %zu", fn, v.len,
		     strlen(v.data));
	cr_assert_eq(v.err, err, "%s: error kind %s (%d), want %s; message: %s", fn,
		     harness_errkind(v.err), v.err, harness_errkind(err), (const char *)v.data);
	if (needle1)
		cr_assert(strstr(v.data, needle1), "%s: message \"%s\" lacks \"%s\"", fn,
			  (const char *)v.data, needle1);
	if (needle2)
		cr_assert(strstr(v.data, needle2), "%s: message \"%s\" lacks \"%s\"", fn,
			  (const char *)v.data, needle2);
	cr_assert(kray_errmsg(k) && *kray_errmsg(k), "%s: kray_errmsg empty after -EREMOTEIO", fn);
	kray_value_clear(&v);
	cr_assert_eq(v.type, KRAY_NIL, "kray_value_clear did not reset the value to NIL");
	kray_release(k, &r, 1);
}

struct busy {
	const char *sock;
	int n;
	int64_t ms;
};

static int busy_driver(void *p, int fd)
{
	const struct busy *b = p;
	const char *sock = b->sock;
	int n = b->n;
	int64_t ms = b->ms;
	struct kray_config cfg = { .address = sock };
	kray_value arg = KRAY_V_INT(ms);
	kray *k;
	kray_ref r, actor, slow;

	if (kray_init(&k, &cfg))
		_exit(2);
	if (ms < 0) { /* tasks that wait for a call of the actor named "slow" */
		if (kray_get_actor(k, "slow", NULL, &actor) ||
		    kray_actor_call(k, actor, "sleep_ms", &KRAY_V_INT(-ms), 1, NULL, &slow))
			_exit(6);
		arg = (kray_value)KRAY_V_REF(slow);
	}
	for (int i = 0; i < n; i++)
		if (kray_call(k, ms < 0 ? "square" : "sleep_ms", &arg, 1, NULL, &r))
			_exit(3);
	if (kray_status(k, &(struct kray_stats){ 0 })) /* krayd has them all */
		_exit(4);
	if (write(fd, "s", 1) != 1)
		_exit(5);
	pause();
	_exit(0);
}

pid_t harness_fork_ready(int (*child)(void *arg, int ready_fd), void *arg, const char *what)
{
	int fds[2], status;
	pid_t pid;
	char c;

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0, "pipe");
	fflush(NULL);
	pid = fork();
	cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(fds[0]);
		_exit(child(arg, fds[1]));
	}
	close(fds[1]);
	if (read(fds[0], &c, 1) != 1) {
		close(fds[0]);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		cr_assert_fail("%s did not get ready (status %#x)", what, status);
	}
	close(fds[0]);
	for (int i = 0; i < 8; i++) {
		if (!children[i]) {
			children[i] = pid;
			break;
		}
	}
	return pid;
}

pid_t harness_busy_driver(const char *sock, int n, int64_t ms)
{
	struct busy b = { .sock = sock, .n = n, .ms = ms };

	return harness_fork_ready(busy_driver, &b, "the busy driver");
}

void harness_node_object_bytes(const char *sock, uint64_t *sent, uint64_t *received)
{
	kray *k = harness_connect(sock);
	char *text = NULL;
	const char *key = "object bytes with node ";

	*sent = *received = 0;
	cr_assert_eq(kray_describe_nodes(k, &text), 0, "describe: %s", kray_errmsg(k));
	for (char *p = text; (p = strstr(p, key)); p++) {
		unsigned long long s, r;

		if (sscanf(p + strlen(key), "%*x: %llu sent, %llu received", &s, &r) == 2) {
			*sent += s;
			*received += r;
		}
	}
	free(text);
	harness_shutdown(k);
}

void harness_start_node(struct harness *h, const struct netns_cluster *net, int i, int cpus,
			int heartbeat_ms, const char *res, const char *const *more, char *token,
			size_t token_len)
{
	char listen[32], head[32], hb[16], dead[16], env[8];
	const char *args[32];
	int n = 0, saved, rc;

	snprintf(listen, sizeof(listen), "%s:7000", net->addr[i]);
	snprintf(head, sizeof(head), "%s:7000", net->addr[0]);
	snprintf(hb, sizeof(hb), "%d", heartbeat_ms);
	snprintf(dead, sizeof(dead), "%d", heartbeat_ms * 10);
	args[n++] = "--node-listen";
	args[n++] = listen;
	args[n++] = "--heartbeat-ms";
	args[n++] = hb;
	args[n++] = "--node-timeout-ms";
	args[n++] = dead;
	if (res) {
		args[n++] = "--resources";
		args[n++] = res;
	}
	if (i == 0) {
		args[n++] = "--head";
	} else {
		args[n++] = "--address";
		args[n++] = head;
		args[n++] = "--token-file";
		args[n++] = token;
	}
	for (int j = 0; more && more[j]; j++) {
		cr_assert_lt(n, 31, "too many flags for node %d", i + 1);
		args[n++] = more[j];
	}
	args[n] = NULL;
	snprintf(env, sizeof(env), "%d", i + 1);
	setenv("KRAY_TEST_NODE", env, 1);
	saved = netns_enter(net->ns[i]);
	cr_assert_geq(saved, 0, "setns %s: %s", net->ns[i], strerror(-saved));
	rc = harness_start_krayd_opts(h, cpus, args);
	netns_leave(saved);
	cr_assert_eq(rc, 0, "node %d did not start: %s", i + 1, strerror(-rc));
	if (i == 0)
		snprintf(token, token_len, "%s.token", h->sock);
}

struct kray_stats harness_status(kray *k)
{
	struct kray_stats st;
	int rc = kray_status(k, &st);

	cr_assert_eq(rc, 0, "kray_status: %d %s", rc, kray_errmsg(k));
	return st;
}

const char *harness_run_example(const char *address, const char *args, char *out, size_t len)
{
	const char *bin = getenv("KRAY_BIN");
	char cmd[1024];
	size_t n;
	FILE *p;

	cr_assert(bin, "KRAY_BIN is not set (run through make test-integration)");
	if (address)
		snprintf(cmd, sizeof(cmd), "KRAY_ADDRESS=%s %s/../examples/%s 2>&1", address, bin,
			 args);
	else
		snprintf(cmd, sizeof(cmd), "env -u KRAY_ADDRESS %s/../examples/%s 2>&1", bin, args);
	p = popen(cmd, "r");
	cr_assert_not_null(p, "popen(%s)", cmd);
	n = fread(out, 1, len - 1, p);
	out[n] = 0;
	cr_assert_eq(pclose(p), 0, "examples/%s failed:\n%s", args, out);
	return out;
}

/* ---- raw sockets ------------------------------------------------------------------------ */

int harness_raw_connect(const char *sock, int rcv_timeout_s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = rcv_timeout_s };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", sock,
		     strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

void harness_raw_send(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
	}
}

ssize_t harness_read_full(int fd, void *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = recv(fd, (uint8_t *)p + got, n - got, 0);

		if (r == 0)
			return got ? -EPIPE : 0;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	return (ssize_t)n;
}

void harness_raw_hello(int fd, struct kray_msg_hello_ok *ok)
{
	struct kray_msg_hello m = { .role = KRAY_ROLE_DRIVER, .pid = (uint32_t)getpid() };
	struct kray_frame_hdr rh;
	struct kbuf b = { 0 };
	size_t off = wire_begin(&b, KRAY_MSG_HELLO, 0);

	kbuf_put(&b, &m, sizeof(m));
	wire_end(&b, off);
	harness_raw_send(fd, b.data, b.len);
	kbuf_free(&b);
	cr_assert_eq(harness_read_full(fd, &rh, sizeof(rh)), (ssize_t)sizeof(rh), "no HELLO_OK");
	cr_assert_eq(rh.type, KRAY_MSG_HELLO_OK, "HELLO answered by type %u", rh.type);
	cr_assert_eq(rh.len, sizeof(*ok), "HELLO_OK of %u bytes", rh.len);
	cr_assert_eq(harness_read_full(fd, ok, sizeof(*ok)), (ssize_t)sizeof(*ok),
		     "short HELLO_OK");
}

void harness_expect_error_frame(int fd, int want, const char *what)
{
	struct kray_frame_hdr h;
	struct wire_text t;
	uint8_t body[4096], extra;
	ssize_t r = harness_read_full(fd, &h, sizeof(h));

	cr_assert_eq(r, (ssize_t)sizeof(h), "%s: no ERROR frame (read %zd: %s)", what, r,
		     r < 0 ? strerror((int)-r) : "EOF");
	cr_assert_eq(h.magic, KRAY_WIRE_MAGIC, "%s: reply magic %#x", what, h.magic);
	cr_assert_eq(h.version, KRAY_WIRE_VERSION, "%s: reply version %u", what, h.version);
	cr_assert_eq(h.type, KRAY_MSG_ERROR, "%s: reply type %u, want ERROR", what, h.type);
	cr_assert_leq(h.len, sizeof(body), "%s: ERROR body of %u bytes", what, h.len);
	r = harness_read_full(fd, body, h.len);
	cr_assert_eq(r, (ssize_t)h.len, "%s: short ERROR body (%zd of %u)", what, r, h.len);
	cr_assert_eq(wire_dec_error(body, h.len, &t), 0, "%s: malformed ERROR body", what);
	cr_assert(want ? t.code == want : t.code < 0, "%s: ERROR code %d (%.*s), want %d (%s)",
		  what, t.code, (int)t.len, t.text, want, want ? strerror(-want) : "< 0");
	cr_assert_gt(t.len, 0, "%s: ERROR frame without a message", what);
	r = recv(fd, &extra, 1, 0);
	cr_assert(r == 0 || (r < 0 && errno == ECONNRESET),
		  "%s: connection not closed after the ERROR frame (recv %zd: %s)", what, r,
		  r < 0 ? strerror(errno) : "data");
}

void harness_raw_expect_error(struct harness *h, const void *frame, size_t len, int want,
			      const char *what)
{
	struct kray_msg_hello_ok ok;
	int fd = harness_raw_connect(h->sock, 10);

	harness_raw_hello(fd, &ok);
	harness_raw_send(fd, frame, len);
	harness_expect_error_frame(fd, want, what);
	close(fd);
	cr_assert(harness_krayd_alive(h), "krayd exited after %s", what);
}

/* krayd is alive and serves a new connection: a status and a task. */
void harness_expect_serving(struct harness *h, const char *after)
{
	kray_value a = KRAY_V_INT(9);
	kray *k;

	cr_assert(harness_krayd_alive(h), "krayd exited after %s", after);
	k = harness_connect(h->sock);
	harness_status(k);
	harness_expect_int(k, "square", &a, 1, 81);
	harness_shutdown(k);
	cr_assert(harness_krayd_alive(h), "krayd exited after %s", after);
}

int harness_pick_port(void)
{
	/*
	 * Below the kernel's ephemeral range (32768-60999 by default): a port the kernel
	 * handed out (bind to port 0) may be taken by another process's outgoing connection
	 * before krayd binds it, and a test that stops one krayd and starts another on the
	 * same port gave "Address already in use" that way on a busy machine.
	 */
	static unsigned seed;

	if (!seed)
		seed = (unsigned)getpid() * 2654435761u ^ (unsigned)harness_now_ms();
	for (int tries = 0; tries < 1000; tries++) {
		struct sockaddr_in sa = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port, ok;

		cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
		port = 20000 + (int)(rand_r(&seed) % 12000);
		sa.sin_port = htons((uint16_t)port);
		ok = !bind(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (ok)
			return port;
	}
	cr_assert_fail("no free port between 20000 and 32000");
	return -1;
}

bool harness_closed_within(int fd, int ms, size_t *bytes)
{
	int64_t end = harness_now_ms() + ms;
	char buf[65536];

	while (harness_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 50) <= 0)
			continue;
		r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			return true;
		if (r > 0 && bytes)
			*bytes += (size_t)r;
	}
	return false;
}

int harness_tcp_connect(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 5 };

	cr_assert_geq(fd, 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect to port %d: %s",
		     port, strerror(errno));
	return fd;
}

size_t harness_http(int port, const char *req, char *buf, size_t size)
{
	int fd = harness_tcp_connect(port);
	size_t n = 0;
	ssize_t r;

	harness_raw_send(fd, req, strlen(req));
	while (n + 1 < size && (r = recv(fd, buf + n, size - 1 - n, 0)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fd);
	return n;
}

int64_t harness_actor_int(kray *k, kray_ref a, const char *method)
{
	kray_ref r;
	kray_value v;
	int rc;

	cr_assert_eq(kray_actor_call(k, a, method, NULL, 0, NULL, &r), 0, "%s", kray_errmsg(k));
	rc = harness_get1(k, r, 30000, &v);
	cr_assert_eq(rc, 0, "%s: %d %s", method, rc, v.type == KRAY_ERROR ? (char *)v.data : "");
	cr_assert_eq(v.type, KRAY_INT64, "%s returned type %d", method, v.type);
	kray_release(k, &r, 1);
	return v.i;
}

bool harness_have_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

struct harness_mapping harness_mapping_of(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	struct harness_mapping m = { 0 };
	char line[512];
	bool in = false;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 &&
		    strchr(line, '-') < strchr(line, ' ')) {
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
			if (in)
				m.lazy_memfd = strstr(line, "kray-lazy") != NULL;
		} else if (in && !strncmp(line, "VmFlags:", 8)) {
			m.uffd_missing = strstr(line, " um") != NULL;
			m.uffd_minor = strstr(line, " ui") != NULL;
		}
	}
	fclose(f);
	return m;
}

struct harness_lazy_counts harness_lazy_counts(kray *k)
{
	struct harness_lazy_counts c = { .mode = "" };
	char *text = NULL, *p;

	cr_assert_eq(kray_describe_nodes(k, &text), 0, "describe: %s", kray_errmsg(k));
	p = strstr(text, "lazy gets from other nodes: ");
	cr_assert_not_null(p, "no lazy mode line in:\n%s", text);
	cr_assert_eq(sscanf(p,
			    "lazy gets from other nodes: mode %15[a-z]; %llu in place (MINOR), "
			    "%llu through a second memfd",
			    c.mode, &c.net_minor, &c.net_missing),
		     3, "%s", p);
	p = strstr(p, "lazy restores: ");
	cr_assert_not_null(p, "no lazy restores in the lazy mode line");
	cr_assert_eq(sscanf(p, "lazy restores: %llu MINOR, %llu MISSING", &c.spill_minor,
			    &c.spill_missing),
		     2, "%s", p);
	free(text);
	return c;
}

int harness_count_alive(kray *k)
{
	char *text = NULL;
	int n = 0;

	cr_assert_eq(kray_describe_nodes(k, &text), 0, "describe nodes: %s", kray_errmsg(k));
	for (char *p = text; (p = strstr(p, " ALIVE ")); p++)
		n++;
	free(text);
	return n;
}

/* ---- plain actors' synchronous calls (the fast path's and the ring's tests) ------------ */

int harness_actor_get(kray *k, kray_ref a, const char *m, const kray_value *args, size_t nargs,
		      int64_t timeout_ms, kray_value *ret)
{
	kray_ref r;
	int rc = kray_actor_call(k, a, m, args, nargs, NULL, &r);

	cr_assert_eq(rc, 0, "kray_actor_call(%s): %d %s", m, rc, kray_errmsg(k));
	rc = kray_get(k, &r, 1, timeout_ms, ret);
	kray_release(k, &r, 1);
	return rc;
}

int64_t harness_actor_call_int(kray *k, kray_ref a, const char *m, const kray_value *args,
			       size_t nargs)
{
	kray_value v;
	int rc = harness_actor_get(k, a, m, args, nargs, -1, &v);

	cr_assert_eq(rc, 0, "%s: %d %s", m, rc, kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_INT64, "%s: type %d", m, v.type);
	return v.i;
}

kray_ref harness_fast_counter(kray *k, const struct kray_actor_opts *o)
{
	struct kray_actor_opts def = KRAY_ACTOR_OPTS_DEFAULT;
	int64_t until = harness_now_ms() + 10000;
	uint64_t before = harness_status(k).fast_tasks;
	kray_ref a;

	cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, o ? o : &def, &a), 0, "%s",
		     kray_errmsg(k));
	while (harness_now_ms() < until) {
		cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 0);
		if (harness_status(k).fast_tasks > before)
			return a;
		usleep(5000);
	}
	cr_assert_fail("no call to the actor went fast (the ring or the program)");
	return a;
}

void harness_wait_gone(pid_t pid, const char *what)
{
	int64_t deadline = harness_now_ms() + 10000;

	while (kill(pid, 0) == 0 || errno != ESRCH) {
		cr_assert_lt(harness_now_ms(), deadline, "%s: pid %d still exists after 10 s", what,
			     (int)pid);
		usleep(5000);
	}
}
