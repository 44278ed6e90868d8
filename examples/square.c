// SPDX-License-Identifier: Apache-2.0
/*
 * square.c - kray's first example: run square(x) as four remote tasks and print
 * [0, 1, 4, 9].  Connects to the krayd at $KRAY_ADDRESS, or starts a private one.
 * The function itself is in square_fns.c (libsquare_fns.so, next to this program).
 */
#include <kray/kray.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define N 4

int main(void)
{
	char exe[PATH_MAX], code_path[PATH_MAX + 32];
	kray_ref refs[N];
	kray_value vals[N];
	kray *k;
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (len < 0) {
		perror("readlink /proc/self/exe");
		return 1;
	}
	exe[len] = '\0';
	snprintf(code_path, sizeof(code_path), "%s/libsquare_fns.so", dirname(exe));

	struct kray_config cfg = {
		.address = getenv("KRAY_ADDRESS"), /* NULL: a private krayd */
		.code_path = code_path,
	};

	if (kray_init(&k, &cfg) < 0) {
		fprintf(stderr, "square: %s\n", kray_init_errmsg());
		return 1;
	}

	/* Submit square(0) .. square(3): each call gives back a future at once. */
	for (int i = 0; i < N; i++) {
		kray_value arg = KRAY_V_INT(i);

		if (kray_call(k, "square", &arg, 1, NULL, &refs[i]) < 0)
			goto fail;
	}

	/* Wait for all four results. */
	if (kray_get(k, refs, N, -1, vals) < 0)
		goto fail;

	printf("[");
	for (int i = 0; i < N; i++) {
		printf("%s%lld", i ? ", " : "", (long long)vals[i].i);
		kray_value_clear(&vals[i]);
	}
	printf("]\n");

	kray_release(k, refs, N);
	kray_shutdown(k);
	return 0;

fail:
	fprintf(stderr, "square: %s\n", kray_errmsg(k));
	kray_shutdown(k);
	return 1;
}
