// SPDX-License-Identifier: Apache-2.0
/*
 * poll_loop.c - kray inside your own event loop.  Submits N square(i) tasks, asks for
 * each result with kray_get_async(), and collects them in a plain poll() loop on
 * kray_fd() beside the program's other descriptors (here: stdin, to show the loop stays
 * the program's): libkray never blocks and never owns the loop.  Prints the sum of the
 * squares and checks it.  Connects to $KRAY_ADDRESS or starts a private krayd; the
 * function is square() from square_fns.c (libsquare_fns.so, next to this program).
 *
 *   build/examples/poll_loop [N]        (default 1000)
 */
#include <kray/kray.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct totals {
	long long sum;
	long done, failed;
};

/* Runs from kray_process(): one result arrived.  The value is ours to clear. */
static void on_square(kray *k, kray_ref ref, int status, kray_value *val, void *arg)
{
	struct totals *t = arg;

	if (status == 0 && val->type == KRAY_INT64)
		t->sum += val->i;
	else
		t->failed++;
	t->done++;
	kray_value_clear(val);
	kray_release(k, &ref, 1); /* only queued: the loop sends it */
}

int main(int argc, char **argv)
{
	char exe[PATH_MAX], code_path[PATH_MAX + 32];
	long n = argc > 1 ? atol(argv[1]) : 1000;
	struct totals t = { 0 };
	long long want = 0;
	long loops = 0;
	kray *k;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (len < 0 || n < 0) {
		fprintf(stderr, "usage: poll_loop [N]\n");
		return 2;
	}
	exe[len] = '\0';
	snprintf(code_path, sizeof(code_path), "%s/libsquare_fns.so", dirname(exe));

	struct kray_config cfg = { .address = getenv("KRAY_ADDRESS"), .code_path = code_path };

	if (kray_init(&k, &cfg) < 0) {
		fprintf(stderr, "poll_loop: %s\n", kray_init_errmsg());
		return 1;
	}
	/* From here on nothing waits for the socket: the loop below writes what is queued. */
	kray_set_nonblocking(k, 1);

	/* Submit everything: each call and each get only queues. */
	for (long i = 0; i < n; i++) {
		kray_ref ref;

		if (kray_call(k, "square", &KRAY_V_INT(i), 1, NULL, &ref) < 0 ||
		    kray_get_async(k, &ref, on_square, &t) < 0)
			goto fail;
		want += (long long)i * i;
	}

	/* The event loop: the program's own descriptors and kray's, side by side. */
	while (kray_pending(k)) {
		struct pollfd p[2] = {
			{ .fd = kray_fd(k), .events = POLLIN | (kray_want_write(k) ? POLLOUT : 0) },
			{ .fd = STDIN_FILENO, .events = 0 }, /* say, the program's own work */
		};

		if (poll(p, 2, 1000) < 0 && errno != EINTR) {
			perror("poll");
			break;
		}
		if (kray_process(k) < 0)
			goto fail;
		loops++;
	}
	printf("%ld squares in %ld turns of the loop: sum %lld (%s), %ld failed\n", t.done, loops,
	       t.sum, t.sum == want ? "right" : "WRONG", t.failed);
	kray_shutdown(k);
	return t.sum == want && !t.failed ? 0 : 1;

fail:
	fprintf(stderr, "poll_loop: %s\n", kray_errmsg(k));
	kray_shutdown(k);
	return 1;
}
