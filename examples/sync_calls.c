// SPDX-License-Identifier: Apache-2.0
/*
 * sync_calls.c - synchronous calls, the shape the BPF fast path serves (docs/fastpath.md):
 * each kray_call() is followed at once by kray_get() of its ref, so krayd's sk_skb
 * program hands the call straight to an idle worker and the result straight back,
 * without waking krayd.  Prints the results, the time per call, how many calls krayd's
 * counters say went fast (0 without root, or with fastpath = off), and how many tasks it
 * counts in all (fast calls included: the workers report them).
 *
 *	build/examples/sync_calls [N]
 */
#include <kray/kray.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
	char exe[PATH_MAX], code_path[PATH_MAX + 32];
	int n = argc > 1 ? atoi(argv[1]) : 10000;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct kray_stats st;
	int64_t sum = 0;
	double t0;
	kray *k;

	if (len < 0 || n <= 0) {
		fprintf(stderr, "usage: sync_calls [N > 0]\n");
		return 1;
	}
	exe[len] = '\0';
	snprintf(code_path, sizeof(code_path), "%s/libsquare_fns.so", dirname(exe));
	struct kray_config cfg = { .address = getenv("KRAY_ADDRESS"), .code_path = code_path };

	if (kray_init(&k, &cfg) < 0) {
		fprintf(stderr, "sync_calls: %s\n", kray_init_errmsg());
		return 1;
	}
	t0 = now_us();
	for (int i = 0; i < n; i++) {
		kray_ref r;
		kray_value v;

		/* Call, then get at once with no timeout: eligible for the fast path. */
		if (kray_call(k, "square", &KRAY_V_INT(i % 1000), 1, NULL, &r) < 0 ||
		    kray_get(k, &r, 1, -1, &v) < 0) {
			fprintf(stderr, "sync_calls: %s\n", kray_errmsg(k));
			kray_shutdown(k);
			return 1;
		}
		sum += v.i;
		kray_value_clear(&v);
		kray_release(k, &r, 1); /* krayd never hears of a fast call released like this */
	}
	printf("%d calls of square(): sum %lld, %.1f us per call\n", n, (long long)sum,
	       (now_us() - t0) / n);
	/* Workers report the fast calls they ran to krayd within about 5 ms. */
	usleep(20000);
	if (kray_status(k, &st) == 0)
		printf("krayd: %llu calls steered by BPF, %llu bounced; %llu tasks counted, "
		       "%llu finished\n",
		       (unsigned long long)st.fast_tasks, (unsigned long long)st.fast_bounced,
		       (unsigned long long)st.tasks_submitted,
		       (unsigned long long)st.tasks_finished);
	kray_shutdown(k);
	return 0;
}
