/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A cluster of network namespaces for the cluster tests and benchmark: one namespace per
 * node, each with an eth0 (10.77.0.<i>/24) that is one end of a veth pair whose other end
 * is on a bridge in a namespace of its own, so nothing is added to the caller's network.
 * Every name carries the creating process's pid ("kray-<pid>-n<i>", "kray-<pid>-br"), so
 * two runs at once never collide, and namespaces left by a run that was killed are found
 * (their pid is gone) and removed by the next one.  Needs root and iproute2.
 */
#ifndef KRAY_TESTS_NETNS_H
#define KRAY_TESTS_NETNS_H

#include <stddef.h>
#include <sys/types.h>

#define NETNS_MAX 16

struct netns_cluster {
	int n; /* nodes */
	pid_t owner; /* the pid in the names */
	char br[32]; /* the bridge's namespace */
	char ns[NETNS_MAX][32]; /* node i's namespace (0-based) */
	char addr[NETNS_MAX][16]; /* node i's IPv4 address */
};

/*
 * Creates n node namespaces joined by a bridge.  Returns 0, or a negative errno with a
 * reason in why (not root, no iproute2, no namespaces): the caller skips.  Whatever was
 * made is removed on failure.  Registered for netns_cleanup_all().
 */
int netns_cluster_up(struct netns_cluster *c, int n, char *why, size_t why_len);

/* Removes every namespace of c (their veths and the bridge go with them).  Safe twice. */
void netns_cluster_down(struct netns_cluster *c);

/* Removes every cluster this process made: for suites' .fini, which runs after a failed
 * assertion too. */
void netns_cleanup_all(void);

/* Limits what node i sends to rate ("80mbit": tc's token bucket on its eth0), to make a
 * transfer slow on purpose.  Returns 0, or -1 where tc or its tbf qdisc is missing. */
int netns_limit_rate(const struct netns_cluster *c, int i, const char *rate);

/* Moves the calling thread into namespace name (processes it forks start there).
 * Returns a descriptor of the namespace it was in, for netns_leave(), or -errno. */
int netns_enter(const char *name);
void netns_leave(int saved);

#endif
