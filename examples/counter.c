// SPDX-License-Identifier: Apache-2.0
/*
 * counter.c - the seed's actor example: four Counter actors, one increment on each, then a
 * read of each, printing [1, 1, 1, 1].  Ray's version:
 *
 *	counters = [Counter.remote() for i in range(4)]
 *	[c.increment.remote() for c in counters]
 *	print(ray.get([c.read.remote() for c in counters]))
 */
#include <kray/kray.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
	char exe[PATH_MAX], lib[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct kray_config cfg = { .address = getenv("KRAY_ADDRESS") };
	struct kray_call_opts none = { .num_returns = 0 };
	kray_ref counters[4], reads[4];
	kray_value vals[4];
	kray *k;

	if (n < 0)
		return perror("readlink"), 1;
	exe[n] = 0;
	snprintf(lib, sizeof(lib), "%s/libcounter_fns.so", dirname(exe));
	cfg.code_path = lib;
	if (kray_init(&k, &cfg)) {
		fprintf(stderr, "counter: %s\n", kray_init_errmsg());
		return 1;
	}
	for (int i = 0; i < 4; i++)
		if (kray_actor_create(k, "Counter", NULL, 0, NULL, &counters[i]))
			goto fail;
	for (int i = 0; i < 4; i++)
		if (kray_actor_call(k, counters[i], "increment", NULL, 0, &none, NULL))
			goto fail;
	for (int i = 0; i < 4; i++)
		if (kray_actor_call(k, counters[i], "read", NULL, 0, NULL, &reads[i]))
			goto fail;
	if (kray_get(k, reads, 4, -1, vals))
		goto fail;
	printf("[%lld, %lld, %lld, %lld]\n", (long long)vals[0].i, (long long)vals[1].i,
	       (long long)vals[2].i, (long long)vals[3].i);
	kray_release(k, reads, 4);
	kray_release(k, counters, 4); /* the last handle gone: the actors end */
	kray_shutdown(k);
	return 0;

fail:
	fprintf(stderr, "counter: %s\n", kray_errmsg(k));
	kray_shutdown(k);
	return 1;
}
