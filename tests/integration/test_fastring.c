// SPDX-License-Identifier: Apache-2.0
/*
 * The fast path's shared-memory ring (`fastpath-ring = on`, docs/fastpath.md "The
 * ring"): what only the ring has.  Calls through it return exactly what the daemon path
 * returns; krayd hands the ring (the memfd and the `fast_workers` map) with a driver's
 * fast connection only when it is on; a driver that writes garbage or forged requests
 * into the shared memory gets nothing wrong from it and leaves the workers and krayd
 * serving; a call that finds no idle worker takes the daemon path.
 *
 * The faults both transports share (a worker killed with a call in flight, a get that
 * times out and its late answer, a cancel racing the answer, many drivers and threads
 * never given another call's result) are test_fastpath's: `make test-fastpath-ring` runs
 * that suite, and test_tasks, with KRAY_FAST_RING=on.
 *
 * They need root and BPF; elsewhere they skip, naming why.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "../../include/uapi/kray_ring.h"
#include "harness.h"

TestSuite(fastring, .fini = harness_cleanup, .timeout = 90);

static const char *const ring_on[] = { "--fastpath-ring", "on", NULL };
static const char *const ring_off[] = { "--fastpath-ring", "off", NULL };

static void need_ring(void)
{
	const char *env = getenv("KRAY_FASTPATH"), *bpf = getenv("KRAY_BPF");

	if ((env && (!strcmp(env, "off") || !strcmp(env, "0"))) ||
	    (bpf && (!strcmp(bpf, "off") || !strcmp(bpf, "0"))))
		cr_skip_test("the fast path is switched off (KRAY_FASTPATH / KRAY_BPF)");
	if (geteuid() != 0)
		cr_skip_test("the fast path needs root (CAP_BPF for krayd's program)");
}

static int sync_square(kray *k, int64_t x, int64_t timeout_ms, int64_t *ret)
{
	kray_value v = { 0 };
	kray_ref r;
	int rc = kray_call(k, "square", &KRAY_V_INT(x), 1, NULL, &r);

	cr_assert_eq(rc, 0, "kray_call: %d %s", rc, kray_errmsg(k));
	rc = kray_get(k, &r, 1, timeout_ms, &v);
	*ret = v.i;
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	return rc;
}

/* Calls until one has gone fast (workers connect after krayd starts); skips without. */
static void warm_up(kray *k)
{
	int64_t until = harness_now_ms() + 10000, got;

	while (harness_now_ms() < until) {
		cr_assert_eq(sync_square(k, 3, -1, &got), 0, "%s", kray_errmsg(k));
		cr_assert_eq(got, 9);
		if (harness_status(k).fast_tasks > 0)
			return;
		usleep(10000);
	}
	cr_skip_test("krayd has no fast path here");
}

/* ---- a driver's own view of the ring, through raw frames -------------------------------- */

struct raw_ring {
	int fd, sock; /* krayd connection, fast connection */
	uint32_t slot;
	uint64_t token;
	unsigned nfds;
	uint8_t *base;
	struct kray_fast_worker *fw;
};

static int raw_driver(const char *sock)
{
	struct kray_msg_hello_ok ok;
	int fd = harness_raw_connect(sock, 5);

	harness_raw_hello(fd, &ok);
	return fd;
}

/* FAST_OPEN on a raw connection: the reply's descriptors, mapped when there are three. */
static void raw_open(const char *sock, struct raw_ring *rr)
{
	struct kray_frame_hdr h = { .magic = KRAY_WIRE_MAGIC,
				    .version = KRAY_WIRE_VERSION,
				    .type = KRAY_MSG_FAST_OPEN,
				    .req = 1 };
	struct {
		struct kray_frame_hdr h;
		struct kray_msg_fast_open_reply rep;
	} rep;
	union {
		char buf[CMSG_SPACE(8 * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { &rep, sizeof(rep) };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cm.buf,
			      .msg_controllen = sizeof(cm.buf) };
	struct cmsghdr *c;
	int fds[8];

	memset(rr, 0, sizeof(*rr));
	rr->fd = raw_driver(sock);
	cr_assert_eq(send(rr->fd, &h, sizeof(h), MSG_NOSIGNAL), (ssize_t)sizeof(h));
	cr_assert_eq(recvmsg(rr->fd, &msg, MSG_WAITALL), (ssize_t)sizeof(rep));
	cr_assert_eq(rep.h.type, KRAY_MSG_FAST_OPEN_REPLY);
	c = CMSG_FIRSTHDR(&msg);
	if (rep.rep.status || !c)
		return;
	rr->nfds = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
	memcpy(fds, CMSG_DATA(c), rr->nfds * sizeof(int));
	rr->sock = fds[0];
	rr->slot = rep.rep.slot;
	rr->token = rep.rep.token;
	if (rr->nfds != 3)
		return;
	rr->base = mmap(NULL, KRAY_RING_LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1], 0);
	rr->fw = mmap(NULL, KRAY_FAST_WORKERS * sizeof(*rr->fw), PROT_READ | PROT_WRITE, MAP_SHARED,
		      fds[2], 0);
	cr_assert_neq(rr->base, MAP_FAILED);
	cr_assert_neq(rr->fw, MAP_FAILED);
	close(fds[1]);
	close(fds[2]);
}

static void raw_close(struct raw_ring *rr)
{
	if (rr->base) {
		munmap(rr->base, KRAY_RING_LEN);
		munmap(rr->fw, KRAY_FAST_WORKERS * sizeof(*rr->fw));
	}
	if (rr->nfds)
		close(rr->sock);
	close(rr->fd);
}

static struct kray_ring_worker *warea(struct raw_ring *rr, unsigned slot)
{
	return (struct kray_ring_worker *)(rr->base + KRAY_RING_WORKER_OFF(slot));
}

static struct kray_ring_driver *darea(struct raw_ring *rr, unsigned slot)
{
	return (struct kray_ring_driver *)(rr->base + KRAY_RING_DRIVER_OFF(slot));
}

/* An idle worker's slot, claimed for task as libkray claims it (-1: none idle in 5 s). */
static int claim(struct raw_ring *rr, const struct kray_oid *task)
{
	int64_t until = harness_now_ms() + 5000;

	while (harness_now_ms() < until) {
		for (unsigned i = 0; i < KRAY_FAST_WORKERS; i++) {
			struct kray_fast_worker *w = &rr->fw[i];
			uint32_t idle = KRAY_FW_IDLE;

			if (!__atomic_compare_exchange_n(&w->state, &idle, KRAY_FW_CLAIMING, false,
							 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
				continue;
			w->driver = rr->slot;
			w->task = *task;
			__atomic_store_n(&w->state, KRAY_FW_FAST, __ATOMIC_SEQ_CST);
			return (int)i;
		}
		usleep(1000);
	}
	return -1;
}

/* Writes req (len bytes, claimed len claimed_len) into worker slot's area for seq, wakes it. */
static void post(struct raw_ring *rr, int slot, uint32_t seq, const void *req, size_t len,
		 uint32_t claimed_len, uint32_t driver)
{
	struct kray_ring_worker *w = warea(rr, (unsigned)slot);

	__atomic_store_n(&darea(rr, rr->slot)->want, seq, __ATOMIC_SEQ_CST);
	memcpy(w->req, req, len);
	w->req_len = claimed_len;
	w->driver = driver;
	w->seq = seq;
	__atomic_fetch_add(&w->req_seq, 1, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, &w->req_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Waits up to ms for our result area to hold seq: true when it does. */
static bool answered(struct raw_ring *rr, uint32_t seq, int ms)
{
	int64_t until = harness_now_ms() + ms;

	while (harness_now_ms() < until) {
		if (__atomic_load_n(&darea(rr, rr->slot)->res_seq, __ATOMIC_SEQ_CST) == seq)
			return true;
		usleep(1000);
	}
	return false;
}

static bool idle_again(struct raw_ring *rr, int slot, int ms)
{
	int64_t until = harness_now_ms() + ms;

	while (harness_now_ms() < until) {
		if (__atomic_load_n(&rr->fw[slot].state, __ATOMIC_SEQ_CST) == KRAY_FW_IDLE)
			return true;
		usleep(1000);
	}
	return false;
}

/* ---- the tests ------------------------------------------------------------------------- */

/* Many calls through the ring, each value exactly its own call's; counted as fast. */
Test(fastring, results_are_exact)
{
	struct harness h;
	kray *k;
	uint64_t before;
	int64_t got;

	need_ring();
	cr_assert_eq(harness_start_krayd_opts(&h, 2, ring_on), 0);
	k = harness_connect(h.sock);
	warm_up(k);
	before = harness_status(k).fast_tasks;
	for (int64_t i = 0; i < 3000; i++) {
		cr_assert_eq(sync_square(k, i - 1500, -1, &got), 0, "call %lld: %s", (long long)i,
			     kray_errmsg(k));
		cr_assert_eq(got, (i - 1500) * (i - 1500), "call %lld got %lld", (long long)i,
			     (long long)got);
	}
	/* Timed gets go through the ring too. */
	for (int64_t i = 0; i < 300; i++) {
		cr_assert_eq(sync_square(k, i, 10000, &got), 0);
		cr_assert_eq(got, i * i);
	}
	cr_assert_geq(harness_status(k).fast_tasks - before, 3000,
		      "only %llu of 3300 calls went fast",
		      (unsigned long long)(harness_status(k).fast_tasks - before));
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* krayd hands out the ring (three descriptors) only when it is on, as it is by default. */
Test(fastring, handed_out_only_when_on)
{
	struct harness h;
	struct raw_ring rr;

	need_ring();
	cr_assert_eq(harness_start_krayd_opts(&h, 1, ring_on), 0);
	raw_open(h.sock, &rr);
	cr_assert_eq(rr.nfds, 3, "ring on: %u descriptors", rr.nfds);
	raw_close(&rr);
	harness_stop_krayd(&h);
	cr_assert_eq(harness_start_krayd_opts(&h, 1, ring_off), 0);
	raw_open(h.sock, &rr);
	cr_assert_eq(rr.nfds, 1, "ring off: %u descriptors", rr.nfds);
	raw_close(&rr);
	harness_stop_krayd(&h);
	/* The default: on (this kernel has futex_waitv, as the project's kernels do). */
	const char *env = getenv("KRAY_FAST_RING");

	if (env && (!strcmp(env, "off") || !strcmp(env, "0")))
		return;
	cr_assert_eq(harness_start_krayd(&h, 1), 0);
	raw_open(h.sock, &rr);
	cr_assert_eq(rr.nfds, 3, "by default: %u descriptors", rr.nfds);
	raw_close(&rr);
	harness_stop_krayd(&h);
}

/*
 * A driver that writes into the shared memory what libkray never would: a wake-up with
 * no claim, a request of garbage, a length past the area, a request naming another
 * driver.  The worker answers a claimed garbage request NOT_RUN (the caller's call would
 * take the daemon path), ignores the rest, and is idle again after each; no answer ever
 * carries a worker's token; krayd and libkray's calls go on.
 */
Test(fastring, forged_requests)
{
	struct harness h;
	struct raw_ring rr;
	struct kray_oid task;
	struct kray_ring_driver *dr;
	struct kray_frame_hdr rh;
	struct kray_msg_fast rf;
	uint8_t junk[512];
	kray *k;
	int64_t got;
	int slot;

	need_ring();
	cr_assert_eq(harness_start_krayd_opts(&h, 1, ring_on), 0);
	k = harness_connect(h.sock);
	warm_up(k);
	raw_open(h.sock, &rr);
	cr_assert_eq(rr.nfds, 3);
	dr = darea(&rr, rr.slot);
	task = (struct kray_oid){ (uint32_t)harness_status(k).node, 4242, 7, 0 };
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);

	/* A wake-up with nothing claimed: nothing happens. */
	for (unsigned i = 0; i < 4; i++)
		post(&rr, (int)i, 100 + i, junk, sizeof(junk), sizeof(junk), rr.slot);
	cr_assert_not(answered(&rr, 103, 300), "an unclaimed request was answered");

	/* Claimed, garbage: NOT_RUN, without the worker's token, and the worker idle again. */
	slot = claim(&rr, &task);
	cr_assert_geq(slot, 0, "no idle worker");
	post(&rr, slot, 200, junk, sizeof(junk), sizeof(junk), rr.slot);
	cr_assert(answered(&rr, 200, 5000), "a garbage request was never answered");
	cr_assert_geq(dr->res_len, sizeof(rh) + sizeof(rf) + sizeof(task));
	memcpy(&rh, dr->res, sizeof(rh));
	memcpy(&rf, dr->res + sizeof(rh), sizeof(rf));
	cr_assert_eq(rh.type, KRAY_MSG_FAST_RESULT);
	cr_assert_eq(rf.flags, KRAY_FAST_NOT_RUN);
	cr_assert_eq(rf.token, 0, "the worker's token reached a driver");
	cr_assert(!memcmp(dr->res + sizeof(rh) + sizeof(rf), &task, sizeof(task)),
		  "the answer names another task");
	cr_assert(idle_again(&rr, slot, 5000), "the worker stayed claimed");

	/* Claimed, a length past the area. */
	slot = claim(&rr, &task);
	cr_assert_geq(slot, 0);
	post(&rr, slot, 201, junk, sizeof(junk), 0xffffffffu, rr.slot);
	cr_assert(answered(&rr, 201, 5000), "an oversized request was never answered");
	cr_assert(idle_again(&rr, slot, 5000));

	/* Claimed, but the request names another driver: no answer to anyone; idle again. */
	slot = claim(&rr, &task);
	cr_assert_geq(slot, 0);
	post(&rr, slot, 202, junk, sizeof(junk), sizeof(junk), (rr.slot + 1) % KRAY_FAST_DRIVERS);
	cr_assert(idle_again(&rr, slot, 5000), "the worker stayed claimed");
	cr_assert_not(answered(&rr, 202, 200));

	/* A FAST_EXEC on the fast socket, which libkray never sends with the ring on: the
	 * program claims no ring worker for it (they do not read their sockets), it comes
	 * back, as a bounce. */
	struct {
		struct kray_frame_hdr h;
		struct kray_msg_fast f;
		struct kray_msg_exec m;
	} fx = { .h = { .magic = KRAY_WIRE_MAGIC,
			.version = KRAY_WIRE_VERSION,
			.type = KRAY_MSG_FAST_EXEC,
			.len = sizeof(fx) - sizeof(fx.h) },
		 .f = { .slot = rr.slot, .token = rr.token },
		 .m = { .task = task } };
	struct timeval tv = { .tv_sec = 5 };

	setsockopt(rr.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(send(rr.sock, &fx, sizeof(fx), MSG_NOSIGNAL), (ssize_t)sizeof(fx));
	cr_assert_eq(recv(rr.sock, &rh, sizeof(rh), 0), (ssize_t)sizeof(rh), "no bounce");
	cr_assert_eq(rh.type, KRAY_MSG_FAST_EXEC, "a socket call was steered to a ring worker");
	for (unsigned i = 0; i < KRAY_FAST_WORKERS; i++)
		cr_assert_neq(__atomic_load_n(&rr.fw[i].state, __ATOMIC_SEQ_CST), KRAY_FW_FAST,
			      "worker %u left claimed", i);

	cr_assert(harness_krayd_alive(&h), "krayd died");
	for (int64_t i = 0; i < 200; i++) {
		cr_assert_eq(sync_square(k, i, -1, &got), 0, "%s", kray_errmsg(k));
		cr_assert_eq(got, i * i);
	}
	raw_close(&rr);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

struct slow {
	kray *k;
	int rc;
	int64_t got;
};

static void *slow_thread(void *arg)
{
	struct slow *s = arg;
	kray_value v = { 0 };
	kray_ref r;

	s->rc = kray_call(s->k, "sleep_ms", &KRAY_V_INT(700), 1, NULL, &r);
	if (!s->rc)
		s->rc = kray_get(s->k, &r, 1, -1, &v);
	s->got = v.i;
	kray_release(s->k, &r, 1);
	return NULL;
}

/* One worker, busy with a ring call: another driver's call finds no idle worker and takes
 * the daemon path (counted as bounced), with its exact value. */
Test(fastring, no_idle_worker_falls_back)
{
	struct harness h;
	struct slow s = { 0 };
	struct kray_stats before;
	pthread_t th;
	kray *a, *b;
	int64_t got;

	need_ring();
	cr_assert_eq(harness_start_krayd_opts(&h, 1, ring_on), 0);
	a = harness_connect(h.sock);
	b = harness_connect(h.sock);
	warm_up(a);
	warm_up(b);
	before = harness_status(b);
	s.k = a;
	cr_assert_eq(pthread_create(&th, NULL, slow_thread, &s), 0);
	usleep(200000);
	cr_assert_eq(sync_square(b, 12, 15000, &got), 0, "%s", kray_errmsg(b));
	cr_assert_eq(got, 144);
	pthread_join(th, NULL);
	cr_assert_eq(s.rc, 0, "the slow call: %d", s.rc);
	cr_assert_eq(s.got, 700);
	cr_assert_geq(harness_status(b).fast_bounced - before.fast_bounced, 1,
		      "the second call was not bounced");
	harness_shutdown(a);
	harness_shutdown(b);
	harness_stop_krayd(&h);
}

/* FAST_OPEN as uid 65534 (a forked child): the descriptors it got, -EPERM when refused,
 * or 100 when it could not reach krayd's socket. */
static int open_as_nobody(struct harness *h)
{
	int st, p[2];
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct raw_ring rr;
		int status = 100;

		if (!setresgid(65534, 65534, 65534) && !setresuid(65534, 65534, 65534) &&
		    !access(h->sock, W_OK)) {
			raw_open(h->sock, &rr);
			status = rr.nfds ? (int)rr.nfds : -EPERM;
		}
		(void)!write(p[1], &status, sizeof(status));
		_exit(0);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], &st, sizeof(st)), (ssize_t)sizeof(st));
	close(p[0]);
	waitpid(pid, NULL, 0);
	return st;
}

/* A driver of another user gets no fast connection while the ring is on (the workers
 * sleep on the ring: the program must not steer its calls), and the socket one when off. */
Test(fastring, other_users_get_no_ring)
{
	struct harness h;
	int st;

	need_ring();
	cr_assert_eq(harness_start_krayd_opts(&h, 1, ring_on), 0);
	chmod(h.dir, 0755);
	chmod(h.sock, 0666);
	st = open_as_nobody(&h);
	if (st == 100)
		cr_skip_test("uid 65534 cannot reach krayd's socket here");
	cr_assert_eq(st, -EPERM, "another user's driver got %d descriptors with the ring on", st);
	harness_stop_krayd(&h);
	cr_assert_eq(harness_start_krayd_opts(&h, 1, ring_off), 0);
	chmod(h.dir, 0755);
	chmod(h.sock, 0666);
	st = open_as_nobody(&h);
	cr_assert_eq(st, 1, "ring off: another user's driver got %d (want the socket)", st);
	harness_stop_krayd(&h);
}

/* A ring krayd with a driver, once calls go through the ring. */
static kray *ring_krayd(struct harness *h, int num_cpus)
{
	kray *k;

	need_ring();
	cr_assert_eq(harness_start_krayd_opts(h, num_cpus, ring_on), 0);
	k = harness_connect(h->sock);
	warm_up(k);
	return k;
}

/* A worker that dies with a ring call in flight: the driver retries it (krayd reports the
 * death in its result area), or, with no retries, gets WORKER_DIED; never a hang. */
Test(fastring, worker_dies_in_flight)
{
	struct harness h;
	struct kray_call_opts o = KRAY_CALL_OPTS_DEFAULT;
	kray *k = ring_krayd(&h, 2);
	struct kray_stats before = harness_status(k), after;
	char dir[128], path[200];
	kray_value v;
	kray_ref r;
	int rc;

	harness_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/died", dir);
	r = harness_call1(k, "die_once", &KRAY_V_BYTES(path, strlen(path)), 1);
	rc = kray_get(k, &r, 1, 20000, &v);
	cr_assert_eq(rc, 0, "die_once: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.i, 42);
	kray_release(k, &r, 1);
	after = harness_status(k);
	cr_assert_geq(after.fast_tasks - before.fast_tasks, 1, "it did not go through the ring");
	cr_assert_geq(after.workers_died - before.workers_died, 1, "no worker died");
	cr_assert_geq(after.tasks_retried - before.tasks_retried, 1, "not retried");

	o.max_retries = 0;
	cr_assert_eq(kray_call(k, "die_always", NULL, 0, &o, &r), 0);
	rc = kray_get(k, &r, 1, 20000, &v);
	cr_assert_eq(rc, -EREMOTEIO, "die_always: %d %s", rc, kray_errmsg(k));
	cr_assert_eq(v.err, KRAY_ERR_WORKER_DIED, "kind %s", harness_errkind(v.err));
	cr_assert(strstr(v.data, "die_always"), "message: %s", (const char *)v.data);
	kray_value_clear(&v);
	kray_release(k, &r, 1);
	cr_assert(harness_krayd_alive(&h), "krayd died");
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/*
 * Gets that time out while the worker still runs the call, then later gets, cancels
 * racing the answer, and ordinary calls in between: each get returns its own call's value
 * (sleep_ms returns its argument, square its square) or, after a cancel that won, the
 * cancellation; never another call's value, never a hang.
 */
Test(fastring, late_answers_and_cancels)
{
	struct harness h;
	kray *k = ring_krayd(&h, 2);
	int cancelled = 0, late = 0;
	kray_value v;
	kray_ref r;
	int64_t got;
	int rc;

	for (int i = 0; i < 60; i++) {
		int64_t ms = 1 + i % 7;

		r = harness_call1(k, "sleep_ms", &KRAY_V_INT(ms), 1);
		rc = kray_get(k, &r, 1, i % 3 ? 1 : 0, &v);
		if (rc == -ETIMEDOUT) {
			late++;
			if (i % 2) {
				cr_assert_eq(kray_cancel(k, &r, 0, 0), 0, "%s", kray_errmsg(k));
			} else { /* an ordinary call while the answer is on its way */
				cr_assert_eq(sync_square(k, i, 10000, &got), 0, "%s",
					     kray_errmsg(k));
				cr_assert_eq(got, (int64_t)i * i);
			}
			rc = kray_get(k, &r, 1, 10000, &v);
		}
		if (rc == -EREMOTEIO) {
			cr_assert_eq(v.err, KRAY_ERR_CANCELLED, "call %d: kind %s", i,
				     harness_errkind(v.err));
			cancelled++;
			kray_value_clear(&v);
		} else {
			cr_assert_eq(rc, 0, "call %d: %d %s", i, rc, kray_errmsg(k));
			cr_assert_eq(v.i, ms, "call %d got %lld, not its own %lld", i,
				     (long long)v.i, (long long)ms);
		}
		kray_release(k, &r, 1);
	}
	cr_assert_gt(late, 0, "no get timed out");
	(void)cancelled;
	for (int64_t i = 0; i < 100; i++) {
		cr_assert_eq(sync_square(k, i, -1, &got), 0);
		cr_assert_eq(got, i * i);
	}
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

struct krayd_kill {
	pid_t pid;
};

static void *kill_later(void *arg)
{
	usleep(300000);
	kill(((struct krayd_kill *)arg)->pid, SIGKILL);
	return NULL;
}

/* krayd killed while a driver waits on the ring (its workers die with it, and nobody is
 * left to report them): the get fails within about a second, it does not hang. */
Test(fastring, krayd_dies_mid_call)
{
	struct harness h;
	kray *k = ring_krayd(&h, 2);
	struct krayd_kill kk = { h.pid };
	pthread_t th;
	kray_value v = { 0 };
	kray_ref r;
	int64_t t0;
	int rc;

	r = harness_call1(k, "sleep_ms", &KRAY_V_INT(20000), 1);
	cr_assert_eq(pthread_create(&th, NULL, kill_later, &kk), 0);
	t0 = harness_now_ms();
	rc = kray_get(k, &r, 1, -1, &v);
	pthread_join(th, NULL);
	cr_assert_neq(rc, 0, "a value after krayd died: %lld", (long long)v.i);
	cr_assert_lt(harness_now_ms() - t0, 5000, "the get waited %lld ms",
		     (long long)(harness_now_ms() - t0));
	kray_value_clear(&v);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/* ---- plain actors' calls through the ring (docs/fastpath.md, "Actor calls") ------------ */

/*
 * Calls to a plain actor through the ring: exact values in order, an error as on krayd's
 * path (the actor lives on), one caller's order kept across calls that went through krayd
 * (left in flight, or waiting for an argument) and ring calls, a large result (through
 * krayd, STORED), and a FAST_EXEC forged on the fast socket for the actor is not steered
 * (the program knows no actor while the ring is on).
 */
Test(fastring, actor_calls)
{
	struct harness h;
	kray *k = ring_krayd(&h, 2);
	kray_ref a = harness_fast_counter(k, NULL), b, r, gate, pending[64];
	size_t npending = 0;
	uint64_t fast0 = harness_status(k).fast_tasks;
	struct raw_ring rr;
	kray_value v;
	int64_t n = 0;

	for (int64_t i = 1; i <= 300; i++)
		cr_assert_eq(harness_actor_call_int(k, a, "incr", &KRAY_V_INT(1), 1), i);
	cr_assert_geq(harness_status(k).fast_tasks - fast0, 250, "only %llu of 300 on the ring",
		      (unsigned long long)(harness_status(k).fast_tasks - fast0));
	cr_assert_eq(harness_actor_get(k, a, "fail", &KRAY_V_BYTES("no way", 6), 1, -1, &v),
		     -EREMOTEIO);
	cr_assert_eq(v.type, KRAY_ERROR);
	cr_assert(strstr(v.data, "no way"), "message: %s", (const char *)v.data);
	kray_value_clear(&v);
	cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 300,
		     "the actor lost its state");

	/* Order: a second counter's log must read 0, 1, 2, ... whichever way each went. */
	b = harness_fast_counter(k, NULL);
	for (int i = 0; i < 2600; i++) {
		switch (i % 7) {
		case 1: /* left in flight: krayd's path */
		case 4:
			cr_assert_eq(kray_actor_call(k, b, "append", &KRAY_V_INT(n), 1, NULL, &r),
				     0);
			if (npending == 64) {
				kray_release(k, pending, npending);
				npending = 0;
			}
			pending[npending++] = r;
			n++;
			break;
		case 5: /* waits in krayd for an argument: the ring calls after it too */
			if (i % 3)
				goto ring;
			cr_assert_eq(kray_call(k, "sleep_ms", &KRAY_V_INT(3), 1, NULL, &gate), 0);
			cr_assert_eq(
				kray_actor_call(k, b, "append",
						(kray_value[]){ KRAY_V_INT(n), KRAY_V_REF(gate) },
						2, NULL, &r),
				0);
			kray_release(k, &gate, 1);
			kray_release(k, &r, 1);
			n++;
			break;
		default:
		ring:
			cr_assert_eq(harness_actor_call_int(k, b, "append", &KRAY_V_INT(n), 1),
				     n + 1);
			n++;
		}
	}
	kray_release(k, pending, npending);
	cr_assert_eq(harness_actor_call_int(k, b, "check", NULL, 0), n, "%s", kray_errmsg(k));
	/* n int64s: more than a ring frame holds, so the worker stores it through krayd. */
	cr_assert_eq(harness_actor_get(k, b, "log", NULL, 0, -1, &v), 0, "%s", kray_errmsg(k));
	cr_assert_eq(v.type, KRAY_BYTES);
	cr_assert_eq(v.len, (size_t)n * sizeof(int64_t));
	for (int64_t i = 0; i < n; i++) {
		int64_t x;

		memcpy(&x, (const uint8_t *)v.data + i * sizeof(x), sizeof(x));
		cr_assert_eq(x, i, "log[%lld] = %lld", (long long)i, (long long)x);
	}
	kray_value_clear(&v);

	/* A FAST_EXEC for the actor forged on the fast socket comes back, NO_ACTOR. */
	raw_open(h.sock, &rr);
	cr_assert_eq(rr.nfds, 3);
	struct {
		struct kray_frame_hdr h;
		struct kray_msg_fast f;
		struct kray_msg_exec m;
		struct kray_msg_fast_actor t;
	} fx = { .h = { .magic = KRAY_WIRE_MAGIC,
			.version = KRAY_WIRE_VERSION,
			.type = KRAY_MSG_FAST_EXEC,
			.len = sizeof(fx) - sizeof(fx.h) },
		 .f = { .slot = rr.slot, .token = rr.token, .flags = KRAY_FAST_ACTOR },
		 .m = { .task = { (uint32_t)harness_status(k).node, 4243, 9, 0 } } },
	  back;
	struct timeval tv = { .tv_sec = 5 };

	memcpy(&fx.t.actor, &a, sizeof(fx.t.actor));
	setsockopt(rr.sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(send(rr.sock, &fx, sizeof(fx), MSG_NOSIGNAL), (ssize_t)sizeof(fx));
	cr_assert_eq(harness_read_full(rr.sock, &back, sizeof(back)), (ssize_t)sizeof(back),
		     "no bounce");
	cr_assert_eq(back.h.type, KRAY_MSG_FAST_EXEC, "a socket call was steered to the actor");
	cr_assert(back.f.flags & KRAY_FAST_NO_ACTOR, "flags %#x", back.f.flags);
	raw_close(&rr);
	cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 300);
	kray_release(k, &a, 1);
	kray_release(k, &b, 1);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

struct slow_call {
	const char *sock, *name; /* the krayd, the actor */
	int64_t ms;
	int rc;
	kray_value v;
	int64_t took_ms;
};

/* sleep_ms(ms) on the named actor, got at once (through the ring), from a driver of its
 * own (a handle serves one thread). */
static void *slow_call_thread(void *p)
{
	struct slow_call *s = p;
	kray *k = harness_connect(s->sock);
	int64_t t0;
	kray_ref a;

	cr_assert_eq(kray_get_actor(k, s->name, NULL, &a), 0, "%s", kray_errmsg(k));
	t0 = harness_now_ms();
	s->rc = harness_actor_get(k, a, "sleep_ms", &KRAY_V_INT(s->ms), 1, -1, &s->v);
	s->took_ms = harness_now_ms() - t0;
	kray_release(k, &a, 1);
	harness_shutdown(k);
	return NULL;
}

/* Starts s on a thread; returns once its call runs on the actor, through the ring. */
static void start_slow_call(kray *k, struct slow_call *s, pthread_t *t)
{
	uint64_t fast = harness_status(k).fast_tasks;
	int64_t until = harness_now_ms() + 5000;

	cr_assert_eq(pthread_create(t, NULL, slow_call_thread, s), 0);
	while (harness_status(k).fast_tasks == fast && harness_now_ms() < until)
		usleep(2000);
	cr_assert_gt(harness_status(k).fast_tasks, fast, "the slow call did not take the ring");
	usleep(100000); /* it runs */
}

/*
 * The actor's worker dies with a ring call in flight: killed for good (kray_kill,
 * no_restart), the call fails with ACTOR_DIED at once; its process killed with a restart
 * and max_task_retries left, the call runs again on the restarted actor; the calls after
 * take the ring again.
 */
Test(fastring, actor_killed_in_flight)
{
	struct harness h;
	kray *k = ring_krayd(&h, 2);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct slow_call s = { .sock = h.sock, .name = "victim", .ms = 5000 };
	kray_ref a;
	pthread_t t;
	kray_value v;
	uint64_t fast;
	int64_t until;
	pid_t pid;

	o.name = s.name;
	o.max_restarts = 3; /* no_restart wins */
	a = harness_fast_counter(k, &o);
	start_slow_call(k, &s, &t);
	cr_assert_eq(kray_kill(k, a, 1), 0, "%s", kray_errmsg(k));
	pthread_join(t, NULL);
	cr_assert_eq(s.rc, -EREMOTEIO, "rc %d", s.rc);
	cr_assert_eq(s.v.err, KRAY_ERR_ACTOR_DIED, "err %s: %s", harness_errkind(s.v.err),
		     (const char *)s.v.data);
	cr_assert_lt(s.took_ms, 4000, "the call waited %lld ms", (long long)s.took_ms);
	kray_value_clear(&s.v);
	cr_assert_eq(harness_actor_get(k, a, "read", NULL, 0, -1, &v), -EREMOTEIO);
	cr_assert_eq(v.err, KRAY_ERR_ACTOR_DIED);
	kray_value_clear(&v);
	kray_release(k, &a, 1);

	o.name = s.name = "phoenix";
	o.max_restarts = 1;
	o.max_task_retries = 1;
	s.ms = 2000;
	a = harness_fast_counter(k, &o);
	cr_assert_eq(harness_actor_call_int(k, a, "incr", &KRAY_V_INT(5), 1), 5);
	pid = (pid_t)harness_actor_call_int(k, a, "pid", NULL, 0);
	start_slow_call(k, &s, &t);
	kill(pid, SIGKILL);
	pthread_join(t, NULL);
	cr_assert_eq(s.rc, 0, "rc %d: %s", s.rc, s.rc ? (const char *)s.v.data : "");
	cr_assert_eq(s.v.i, 2000);
	cr_assert_eq(harness_actor_call_int(k, a, "read", NULL, 0), 0,
		     "the restarted actor's state");
	cr_assert_neq(harness_actor_call_int(k, a, "pid", NULL, 0), pid);
	fast = harness_status(k).fast_tasks;
	until = harness_now_ms() + 5000;
	for (int i = 1; harness_status(k).fast_tasks == fast && harness_now_ms() < until; i++) {
		cr_assert_eq(harness_actor_call_int(k, a, "incr", &KRAY_V_INT(1), 1), i);
		usleep(2000);
	}
	cr_assert_gt(harness_status(k).fast_tasks, fast, "no ring call after the restart");
	cr_assert(harness_krayd_alive(&h), "krayd died");
	kray_release(k, &a, 1);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/*
 * A ring call to an actor whose get times out: the caller's next call runs after it (it
 * waits in krayd, the worker being busy), the late get returns the late call's own value
 * (its answer comes on the fast socket), a cancelled late call reports CANCELLED without
 * killing the actor, and the calls after take the ring again, in order.
 */
Test(fastring, actor_timeout_then_late_answer)
{
	struct harness h;
	kray *k = ring_krayd(&h, 2);
	kray_ref a = harness_fast_counter(k, NULL), slow;
	pid_t pid = (pid_t)harness_actor_call_int(k, a, "pid", NULL, 0);
	uint64_t fast;
	kray_value v;
	int64_t n = 0;

	for (int round = 0; round < 4; round++) {
		cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(n), 1), n + 1);
		n++;
		cr_assert_eq(kray_actor_call(k, a, "sleep_ms", &KRAY_V_INT(300), 1, NULL, &slow),
			     0);
		cr_assert_eq(kray_get(k, &slow, 1, 30, &v), -ETIMEDOUT, "%s", kray_errmsg(k));
		if (round % 2) {
			cr_assert_eq(kray_cancel(k, &slow, round == 3, 0), 0, "%s", kray_errmsg(k));
			cr_assert_eq(kray_get(k, &slow, 1, 5000, &v), -EREMOTEIO);
			cr_assert_eq(v.err, KRAY_ERR_CANCELLED, "err %s", harness_errkind(v.err));
			kray_value_clear(&v);
		}
		cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(n), 1), n + 1);
		n++;
		if (!(round % 2)) {
			cr_assert_eq(kray_get(k, &slow, 1, 5000, &v), 0, "%s", kray_errmsg(k));
			cr_assert_eq(v.i, 300, "the late call got %lld", (long long)v.i);
		}
		kray_release(k, &slow, 1);
	}
	fast = harness_status(k).fast_tasks;
	for (int i = 0; i < 50; i++, n++)
		cr_assert_eq(harness_actor_call_int(k, a, "append", &KRAY_V_INT(n), 1), n + 1);
	cr_assert_gt(harness_status(k).fast_tasks - fast, 25, "the ring was left");
	cr_assert_eq(harness_actor_call_int(k, a, "check", NULL, 0), n);
	cr_assert_eq(harness_actor_call_int(k, a, "pid", NULL, 0), pid, "the actor was killed");
	kray_release(k, &a, 1);
	harness_shutdown(k);
	harness_stop_krayd(&h);
}

/*
 * A worker slot that goes to a new worker starts with fresh request counters: the last
 * worker's count of requests must not wake the new one as if a request had come (it
 * then took a driver's claim made in between for a stray and dropped the request: the
 * call hung until its get's timeout; the soak found it with actors, whose slots are
 * reused as they come and go).  Then plain actors created, called at once and killed,
 * again and again: every call answered.
 */
Test(fastring, slot_reused_fresh)
{
	struct harness h;
	kray *k = ring_krayd(&h, 1);
	struct kray_actor_opts o = KRAY_ACTOR_OPTS_DEFAULT;
	struct raw_ring rr;
	int64_t got, until;
	kray_value v;
	int slot = -1;
	pid_t pid;
	kray_ref a;

	raw_open(h.sock, &rr);
	cr_assert_eq(rr.nfds, 3);
	for (int i = 0; i < 60; i++) {
		cr_assert_eq(harness_get1(k, harness_call1(k, "pid", NULL, 0), -1, &v), 0);
		pid = (pid_t)v.i;
	}
	for (unsigned i = 0; i < KRAY_FAST_WORKERS && slot < 0; i++)
		if (__atomic_load_n(&warea(&rr, i)->req_seq, __ATOMIC_SEQ_CST) >= 50)
			slot = (int)i;
	cr_assert_geq(slot, 0, "no worker served the 60 calls through the ring");
	kill(pid, SIGKILL);
	until = harness_now_ms() + 20000;
	while (harness_now_ms() < until &&
	       (__atomic_load_n(&rr.fw[slot].state, __ATOMIC_SEQ_CST) == KRAY_FW_OFF ||
		__atomic_load_n(&warea(&rr, slot)->req_seq, __ATOMIC_SEQ_CST) >= 50)) {
		cr_assert_eq(sync_square(k, 5, 10000, &got), 0, "%s", kray_errmsg(k));
		usleep(20000);
	}
	cr_assert_neq(__atomic_load_n(&rr.fw[slot].state, __ATOMIC_SEQ_CST), KRAY_FW_OFF,
		      "no new worker took slot %d", slot);
	cr_assert_lt(__atomic_load_n(&warea(&rr, slot)->req_seq, __ATOMIC_SEQ_CST), 50,
		     "the new worker of slot %d kept its predecessor's request count", slot);
	raw_close(&rr);

	for (int i = 0; i < 25; i++) {
		uint64_t fast = harness_status(k).fast_tasks;

		cr_assert_eq(kray_actor_create(k, "Counter", NULL, 0, &o, &a), 0, "%s",
			     kray_errmsg(k));
		until = harness_now_ms() + 10000;
		for (int64_t n = 1; harness_status(k).fast_tasks == fast; n++) {
			cr_assert_lt(harness_now_ms(), until, "actor %d: no call took the ring", i);
			cr_assert_eq(harness_actor_get(k, a, "incr", &KRAY_V_INT(1), 1, 10000, &v),
				     0, "actor %d call %lld: %s", i, (long long)n, kray_errmsg(k));
			cr_assert_eq(v.i, n);
		}
		cr_assert_eq(kray_kill(k, a, 1), 0, "%s", kray_errmsg(k));
		kray_release(k, &a, 1);
	}
	harness_shutdown(k);
	harness_stop_krayd(&h);
}
