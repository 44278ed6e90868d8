// SPDX-License-Identifier: Apache-2.0
/*
 * Network namespaces for cluster tests (see netns.h).  Everything goes through ip(8), the
 * tool an admin would use, run with its output silenced; a failure is reported by what
 * failed.
 */
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct netns_cluster *live[4];

/* Runs "ip ARGS..." quietly.  Returns its exit status (0 ok), or -1 if it could not run. */
static int ip(const char *fmt, ...)
{
	char line[512], *argv[32];
	int argc = 0, status;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	argv[argc++] = "ip";
	for (char *tok = strtok(line, " "); tok && argc < 31; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execvp("ip", argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Namespaces "kray-<pid>-..." whose pid no longer runs: a run killed before cleanup. */
static void sweep_stale(void)
{
	DIR *dir = opendir("/var/run/netns");
	struct dirent *e;

	if (!dir)
		return;
	while ((e = readdir(dir))) {
		int pid;
		char rest[32];

		if (sscanf(e->d_name, "kray-%d-%31s", &pid, rest) != 2 || pid <= 0)
			continue;
		if (kill(pid, 0) && errno == ESRCH)
			ip("netns del %s", e->d_name);
	}
	closedir(dir);
}

int netns_cluster_up(struct netns_cluster *c, int n, char *why, size_t why_len)
{
	memset(c, 0, sizeof(*c));
	if (n < 1 || n > NETNS_MAX) {
		snprintf(why, why_len, "1 to %d nodes", NETNS_MAX);
		return -EINVAL;
	}
	if (geteuid()) {
		snprintf(why, why_len, "network namespaces need root");
		return -EPERM;
	}
	if (ip("-V")) {
		snprintf(why, why_len, "ip (iproute2) is not installed");
		return -ENOENT;
	}
	sweep_stale();
	c->owner = getpid();
	snprintf(c->br, sizeof(c->br), "kray-%d-br", (int)c->owner);
	if (ip("netns add %s", c->br) || ip("-n %s link add br0 type bridge", c->br) ||
	    ip("-n %s link set br0 up", c->br)) {
		snprintf(why, why_len, "cannot make namespace %s with a bridge", c->br);
		goto err;
	}
	for (int i = 0; i < n; i++) {
		snprintf(c->ns[i], sizeof(c->ns[i]), "kray-%d-n%d", (int)c->owner, i + 1);
		snprintf(c->addr[i], sizeof(c->addr[i]), "10.77.0.%d", i + 1);
		c->n = i + 1; /* so that down() removes it if what follows fails */
		if (ip("netns add %s", c->ns[i]) ||
		    ip("link add kv%dn%d netns %s type veth peer name eth0 netns %s", (int)c->owner,
		       i + 1, c->br, c->ns[i]) ||
		    ip("-n %s link set kv%dn%d master br0 up", c->br, (int)c->owner, i + 1) ||
		    ip("-n %s addr add %s/24 dev eth0", c->ns[i], c->addr[i]) ||
		    ip("-n %s link set eth0 up", c->ns[i]) ||
		    ip("-n %s link set lo up", c->ns[i])) {
			snprintf(why, why_len, "cannot make namespace %s with a veth", c->ns[i]);
			goto err;
		}
	}
	for (int i = 0; i < 4; i++)
		if (!live[i]) {
			live[i] = c;
			break;
		}
	return 0;
err:
	netns_cluster_down(c);
	return -EIO;
}

void netns_cluster_down(struct netns_cluster *c)
{
	if (!c->owner)
		return;
	for (int i = 0; i < c->n; i++)
		ip("netns del %s", c->ns[i]);
	ip("netns del %s", c->br);
	c->owner = 0;
	c->n = 0;
	for (int i = 0; i < 4; i++)
		if (live[i] == c)
			live[i] = NULL;
}

void netns_cleanup_all(void)
{
	for (int i = 0; i < 4; i++)
		if (live[i])
			netns_cluster_down(live[i]);
}

int netns_limit_rate(const struct netns_cluster *c, int i, const char *rate)
{
	return ip("netns exec %s tc qdisc add dev eth0 root tbf rate %s burst 64kb latency 2s",
		  c->ns[i], rate) ?
		       -1 :
		       0;
}

int netns_enter(const char *name)
{
	char path[128];
	int saved = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd, r = 0;

	if (saved < 0)
		return -errno;
	snprintf(path, sizeof(path), "/var/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r) {
		close(saved);
		return r;
	}
	return saved;
}

void netns_leave(int saved)
{
	if (saved < 0)
		return;
	if (setns(saved, CLONE_NEWNET))
		perror("netns_leave: setns");
	close(saved);
}
