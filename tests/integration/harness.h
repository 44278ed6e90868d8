/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the integration tests (linked into every tests/integration/test_*):
 * a krayd started by the test itself on a private socket, embedded (private) krayds
 * through kray_init(), cleanup that runs even when an assertion fails, small timing and
 * value helpers, and raw sockets that hand krayd frames no libkray would send.
 */
#ifndef KRAY_TESTS_HARNESS_H
#define KRAY_TESTS_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <kray/kray.h>

/* A krayd this test started: its private directory, socket and pid. */
struct harness {
	char dir[128];
	char sock[160];
	pid_t pid;
};

/*
 * Starts "$KRAY_KRAYD --socket <dir>/krayd.sock --num-cpus N --code-path
 * $KRAY_TEST_CODE_PATH --ready-fd FD" in a new temp dir and waits (10 s at most) for its
 * ready byte.  Registers h for harness_cleanup().  Returns 0 or a negative errno (with a
 * message on stderr).
 */
int harness_start_krayd(struct harness *h, int num_cpus);

/* The same with more krayd flags (a NULL-terminated list, e.g. "--store-size", "8M"). */
int harness_start_krayd_opts(struct harness *h, int num_cpus, const char *const *extra);

/* True while the krayd started by h is still running (has not exited or crashed). */
int harness_krayd_alive(struct harness *h);
/* Asserts krayd is alive and serves a new connection (a status and a task) after what. */
void harness_expect_serving(struct harness *h, const char *after);

/*
 * Stops it: SIGTERM to the pid started, SIGKILL after 5 s, waitpid, then removes the temp
 * dir.  Returns the wait status, or -1 if none was running.  Safe to call twice.
 */
int harness_stop_krayd(struct harness *h);

/* kray_init() with a private krayd (address NULL, code path from the environment).
 * Asserts success; the handle is shut down by harness_cleanup() if the test does not. */
kray *harness_embedded(int num_cpus);

/* kray_init() to the krayd at sock.  Asserts success; registered like harness_embedded. */
kray *harness_connect(const char *sock);

/* kray_shutdown() of a handle from harness_embedded/harness_connect, unregistering it. */
void harness_shutdown(kray *k);

/* Shuts down every registered handle and stops every registered krayd.  Used as the
 * .fini of every suite, so it runs after a failed assertion too. */
void harness_cleanup(void);
/* Removes the BPF pin directories of krayds that are gone (part of harness_cleanup). */
void harness_sweep_bpf(void);

/* Milliseconds on the monotonic clock. */
int64_t harness_now_ms(void);

/* A new private temp dir (mkdtemp) in buf; asserts success.  Removed by harness_cleanup. */
void harness_tmpdir(char *buf, size_t size);

/* A tmpfs of `size` ("24m") mounted at a new temp dir's "disk" (its path in disk, len
 * bytes): a small disk that fills.  Unmounted by harness_unmount_disk() or, after a
 * failed assertion, harness_cleanup().  Returns 0, or -errno when it cannot be mounted
 * (not root): the caller skips. */
int harness_small_disk(char *disk, size_t len, const char *size);
/* Unmounts it, asserting that it could. */
void harness_unmount_disk(const char *disk);

/* Removes a directory tree; ignores errors. */
void harness_rm_rf(const char *path);

/* Calls kray_get on one ref with timeout_ms and returns rc; *ret is written. */
int harness_get1(kray *k, kray_ref ref, int64_t timeout_ms, kray_value *ret);

/* Submits fn(args) with one return, asserting kray_call succeeded. */
kray_ref harness_call1(kray *k, const char *fn, const kray_value *args, size_t nargs);

/* Submits fn(args), gets its one value (60 s timeout) and asserts it is INT64 want. */
/* method() of actor a (no arguments) through k, which must return an INT64: its value. */
int64_t harness_actor_int(kray *k, kray_ref a, const char *method);

void harness_expect_int(kray *k, const char *fn, const kray_value *args, size_t nargs,
			int64_t want);

/* Submits fn(args), gets its one value and asserts it is an ERROR of kind err whose
 * message contains every non-NULL needle. */
void harness_expect_error(kray *k, const char *fn, const kray_value *args, size_t nargs,
			  const struct kray_call_opts *opts, enum kray_errkind err,
			  const char *needle1, const char *needle2);

/* Forks a driver of its own that submits n sleep_ms(ms) tasks to the krayd at sock (ms <
 * 0: a call sleep_ms(-ms) of the actor named "slow", then n square() tasks that wait for
 * its result), and returns its pid once krayd has them all; it then waits to be killed:
 * by harness_kill_child(), or by harness_cleanup() after a failed assertion. */
pid_t harness_busy_driver(const char *sock, int n, int64_t ms);
/* Forks a child that runs child(arg, ready_fd) and exits with what it returns, and returns
 * its pid once the child wrote a byte to ready_fd (fails the test, naming what, if it
 * exited first).  The child is killed by harness_kill_child(), or by harness_cleanup()
 * after a failed assertion. */
pid_t harness_fork_ready(int (*child)(void *arg, int ready_fd), void *arg, const char *what);
/* SIGKILLs and reaps a child of harness_busy_driver() or harness_fork_ready(); returns its
 * wait status. */
int harness_kill_child(pid_t pid);

struct netns_cluster;
/* Starts node i (0-based) of the namespace cluster net into h with cpus slots: it listens on
 * net->addr[i]:7000 and reports every heartbeat_ms (dead after ten missed); node 0 is the
 * head, whose token file's path goes to token; the others join it with that file.  res:
 * --resources (NULL: none); more: extra flags, NULL-terminated (or NULL).  KRAY_TEST_NODE
 * = i + 1 is set for its workers (the fixtures' node and where functions say it). */
void harness_start_node(struct harness *h, const struct netns_cluster *net, int i, int cpus,
			int heartbeat_ms, const char *res, const char *const *more, char *token,
			size_t token_len);

/* The object bytes the krayd at sock sent to and received from all other nodes (the
 * "object bytes with node ..." lines of kray_describe_nodes()). */
void harness_node_object_bytes(const char *sock, uint64_t *sent, uint64_t *received);

/* kray_status(), asserting success. */
struct kray_stats harness_status(kray *k);

/* Runs build/examples/<args> (the program and its arguments) with address as KRAY_ADDRESS
 * (NULL: none, so it starts a private krayd) and returns what it printed (stdout and
 * stderr, at most len - 1 bytes, in out); fails the test when it does not exit 0. */
const char *harness_run_example(const char *address, const char *args, char *out, size_t len);

/* The name of an enum kray_errkind, for messages. */
const char *harness_errkind(int err);

/* ---- raw sockets: hand-made frames, for the tests of what krayd refuses ---------------- */

struct kray_msg_hello_ok;

/* A plain AF_UNIX connection to krayd's socket with a receive timeout of rcv_timeout_s
 * (a read that would wait longer fails); asserts success.  Says nothing yet. */
int harness_raw_connect(const char *sock, int rcv_timeout_s);

/* Sends all of p, without SIGPIPE; stops quietly where krayd has closed already (it
 * answers a bad header before the body arrives). */
void harness_raw_send(int fd, const void *p, size_t n);

/* Reads exactly n bytes.  Returns n, 0 at EOF before any byte, or -errno (-EPIPE at EOF
 * after some). */
ssize_t harness_read_full(int fd, void *p, size_t n);

/* Says HELLO as a driver (no code path) and reads HELLO_OK into *ok; asserts it came. */
void harness_raw_hello(int fd, struct kray_msg_hello_ok *ok);

/*
 * Asserts that the next frame on fd is one ERROR (right magic and version, a well-formed
 * body with a message) of code want, or of any negative errno if want is 0, and that
 * krayd then closes the connection.  what names the case in the messages.
 */
void harness_expect_error_frame(int fd, int want, const char *what);

/* Sends frame (len bytes, one or more whole frames) on a new raw driver connection
 * after HELLO, expects ERROR want and the end of the connection, and that krayd lives. */
void harness_raw_expect_error(struct harness *h, const void *frame, size_t len, int want,
			      const char *what);

/* ---- TCP and HTTP: the metrics endpoint, the dashboard ------------------------------- */

/* A free TCP port on 127.0.0.1, below the kernel's ephemeral range (bound and released: another
 * test may still take it first, but no outgoing connection does). */
int harness_pick_port(void);

/* Whether fd reaches EOF (or a reset) within ms, reading and dropping what comes (counted
 * in *bytes when not NULL). */
bool harness_closed_within(int fd, int ms, size_t *bytes);

/* A TCP connection to 127.0.0.1:port with a receive timeout of 5 s; asserts success. */
int harness_tcp_connect(int port);

/* One HTTP exchange with 127.0.0.1:port: sends req, reads the reply until the server
 * closes (at most size - 1 bytes, NUL-terminated, into buf).  Returns its length. */
size_t harness_http(int port, const char *req, char *buf, size_t size);

/* Whether this machine lets a process use userfaultfd (else krayd restores eagerly). */
bool harness_have_uffd(void);

/* How the mapping that holds p is made: its memfd is a separate lazy one ("kray-lazy":
 * MISSING mode, filled with UFFDIO_COPY), and it is registered with a userfaultfd for
 * missing faults ("um" in its VmFlags) and for minor ones ("ui": MINOR mode, the object's
 * own memfd). */
struct harness_mapping {
	bool lazy_memfd, uffd_missing, uffd_minor;
};
struct harness_mapping harness_mapping_of(const void *p);

/* krayd's "lazy gets from other nodes" line (kray_describe_nodes()): its mode ("minor",
 * "missing"), the net lazy gets in place (MINOR) and through a second memfd (MISSING),
 * and the lazy restores of spilled objects in each mode. */
struct harness_lazy_counts {
	char mode[16];
	unsigned long long net_minor, net_missing, spill_minor, spill_missing;
};
struct harness_lazy_counts harness_lazy_counts(kray *k);

/* Waits up to 10 s until process pid no longer exists (krayd reaped it: its death was
 * handled); asserts, naming what. */
void harness_wait_gone(pid_t pid, const char *what);

/* Nodes the connected krayd's cluster view has ALIVE (kray_describe_nodes()). */
int harness_count_alive(kray *k);

/* Plain actors' synchronous calls (test_fastpath, test_fastring): a's method m with args,
 * its value got at once (waiting up to timeout_ms: kray_get()'s return); the same for an
 * int result, asserted; and a Counter (tests/fixtures/actorfns.c; opts o or the
 * defaults) once a call to it has gone fast, through the ring or the BPF program. */
int harness_actor_get(kray *k, kray_ref a, const char *m, const kray_value *args, size_t nargs,
		      int64_t timeout_ms, kray_value *ret);
int64_t harness_actor_call_int(kray *k, kray_ref a, const char *m, const kray_value *args,
			       size_t nargs);
kray_ref harness_fast_counter(kray *k, const struct kray_actor_opts *o);

#endif /* KRAY_TESTS_HARNESS_H */
