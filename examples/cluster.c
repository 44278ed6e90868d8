// SPDX-License-Identifier: Apache-2.0
/*
 * cluster.c - the seed example on a cluster: square(0..3) as tasks forced onto each node
 * by a custom resource that only that node has, then the cluster's node list.
 *
 * Start a cluster whose nodes have resources (docs/cluster.md), e.g. on three machines
 *   kray start --head --node-listen 10.0.0.1:6380 --resources n1:1
 *   kray start --address=10.0.0.1:6380 --token-file cluster.token \
 *              --node-listen 10.0.0.2:0 --resources n2:1          (and n3:1 on a third)
 * then, on any of them:
 *   KRAY_ADDRESS=<that node's krayd socket> build/examples/cluster n1 n2 n3
 * Each line says where its four tasks ran.  The code is square_fns.c, next to this
 * program, at the same path on every node.
 */
#include <kray/kray.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define N 4

int main(int argc, char **argv)
{
	char exe[PATH_MAX], code_path[PATH_MAX + 32], res[64];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *nodes = NULL;
	kray *k;

	if (argc < 2 || len < 0) {
		fprintf(stderr, "usage: KRAY_ADDRESS=SOCKET cluster RESOURCE...\n");
		return 2;
	}
	exe[len] = '\0';
	snprintf(code_path, sizeof(code_path), "%s/libsquare_fns.so", dirname(exe));
	struct kray_config cfg = { .address = getenv("KRAY_ADDRESS"), .code_path = code_path };

	if (kray_init(&k, &cfg) < 0) {
		fprintf(stderr, "cluster: %s\n", kray_init_errmsg());
		return 1;
	}
	for (int a = 1; a < argc; a++) {
		struct kray_call_opts opts = KRAY_CALL_OPTS_DEFAULT;
		kray_ref refs[N];
		kray_value vals[N];

		/* Only the node that has this resource can run these tasks. */
		snprintf(res, sizeof(res), "%s:1", argv[a]);
		opts.resources = res;
		for (int i = 0; i < N; i++) {
			kray_value arg = KRAY_V_INT(i);

			if (kray_call(k, "square", &arg, 1, &opts, &refs[i]) < 0)
				goto fail;
		}
		if (kray_get(k, refs, N, 60000, vals) < 0)
			goto fail;
		printf("on the node with %s: [", argv[a]);
		for (int i = 0; i < N; i++) {
			printf("%s%lld", i ? ", " : "", (long long)vals[i].i);
			kray_value_clear(&vals[i]);
		}
		printf("]\n");
		kray_release(k, refs, N);
	}
	if (kray_describe_nodes(k, &nodes) == 0) {
		printf("%s", *nodes ? nodes : "(not a cluster: one node)\n");
		free(nodes);
	}
	kray_shutdown(k);
	return 0;
fail:
	fprintf(stderr, "cluster: %s\n", kray_errmsg(k));
	kray_shutdown(k);
	return 1;
}
