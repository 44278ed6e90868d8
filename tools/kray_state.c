// SPDX-License-Identifier: Apache-2.0
/*
 * The CLI's machine-readable views of a krayd, for scripts and other tools:
 * `kray timeline` (Chrome trace JSON of the last tasks; krayd renders it, docs/timeline.md).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kray/kray.h>

#include "kray_state.h"

static kray *connect_to(const char *sock)
{
	struct kray_config cfg = { .address = sock };
	kray *k;

	if (kray_init(&k, &cfg)) {
		fprintf(stderr, "kray: %s\n", kray_init_errmsg());
		return NULL;
	}
	return k;
}

int kray_timeline_main(const char *sock, const char *file)
{
	bool to_stdout = !file || !strcmp(file, "-");
	char *json = NULL;
	FILE *f = stdout;
	int ret = 1;
	kray *k = connect_to(sock);

	if (!k)
		return 1;
	if (kray_timeline(k, &json)) {
		fprintf(stderr, "kray: timeline: %s\n", kray_errmsg(k));
		goto out_shutdown;
	}
	if (!to_stdout && !(f = fopen(file, "we"))) {
		fprintf(stderr, "kray: %s: %s\n", file, strerror(errno));
		goto out_free;
	}
	fputs(json, f);
	if (to_stdout ? fflush(f) : fclose(f)) {
		fprintf(stderr, "kray: %s: %s\n", to_stdout ? "stdout" : file, strerror(errno));
		goto out_free;
	}
	if (!to_stdout)
		fprintf(stderr,
			"kray: timeline written to %s (open it in chrome://tracing or "
			"https://ui.perfetto.dev)\n",
			file);
	ret = 0;
out_free:
	free(json);
out_shutdown:
	kray_shutdown(k);
	return ret;
}
