// SPDX-License-Identifier: Apache-2.0
/*
 * kray: the command line.  `kray start` runs a long-lived local krayd in the background
 * (its log next to its socket), `kray stop` stops it by the pid it recorded, `kray status`
 * prints its counters, `kray top` shows how the kernel schedules its workers (from the
 * BPF maps krayd pins; tools/kray_top.c).  Every command takes --socket (default $KRAY_ADDRESS, else
 * krayd's default: $XDG_RUNTIME_DIR/kray-UID/krayd.sock, for root /run/kray/krayd.sock, else
 * /tmp/kray-UID/krayd.sock; common/rundir.c).  The socket's directory must be this user's and
 * shut to others, and `kray stop` signals only the krayd serving the socket (issue 21).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kray/kray.h>

#include "kray_top.h"
#include "kray_state.h"
#include "../common/rundir.h"

#define KRAY_DASHBOARD_DEFAULT "127.0.0.1:8265"

static char sock[PATH_MAX];

static void default_socket(void)
{
	const char *a = getenv("KRAY_ADDRESS");

	if (a && *a)
		snprintf(sock, sizeof(sock), "%s", a);
	else
		rundir_default_socket(sock, sizeof(sock));
}

/* An absolute socket path, so that krayd, its pid file and `kray stop` from another
 * directory name the same socket (kept relative if the absolute one is too long). */
static void absolute_socket(void)
{
	char cwd[PATH_MAX], abs[PATH_MAX * 2];

	if (sock[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return;
	snprintf(abs, sizeof(abs), "%s/%s", cwd, sock);
	if (strlen(abs) < 108) /* sun_path */
		snprintf(sock, sizeof(sock), "%s", abs);
}

static int usage(void)
{
	fprintf(stderr,
		"usage: kray start [--socket PATH] [krayd flags...]   start a local krayd\n"
		"       kray start --head [--node-listen IP:PORT]     ... as a cluster's head\n"
		"       kray start --dashboard [HOST:PORT]            ... with the web dashboard "
		"(127.0.0.1:8265)\n"
		"       kray start --address=HEAD:PORT --token-file F ... joining a cluster\n"
		"       kray stop [--socket PATH]                     stop it\n"
		"       kray status [--socket PATH] [--json]          show its counters\n"
		"       kray timeline [--socket PATH] [FILE]          the last tasks as Chrome "
		"trace JSON\n"
		"       kray top [--socket PATH] [--once] [--interval MS]\n"
		"                                 per-worker CPU, run-queue wait, switches "
		"(BPF)\n");
	return 2;
}

/* $KRAY_KRAYD, else krayd next to this binary (build/bin, $PREFIX/bin), else PATH. */
static void krayd_bin(char *buf, size_t len)
{
	const char *env = getenv("KRAY_KRAYD");
	ssize_t n = readlink("/proc/self/exe", buf, len - 8);

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	if (n > 0) {
		buf[n] = 0;
		char *slash = strrchr(buf, '/');

		if (slash) {
			strcpy(slash + 1, "krayd");
			if (!access(buf, X_OK))
				return;
		}
	}
	snprintf(buf, len, "krayd");
}

static int cmd_start(int argc, char **argv)
{
	char bin[PATH_MAX], pidfile[PATH_MAX + 8], logfile[PATH_MAX + 8], fdarg[16];
	char why[PATH_MAX + 256];
	char *args[argc + 12];
	int pfd[2], n = 0, status, log;
	struct pollfd p;
	pid_t pid;
	char c;

	krayd_bin(bin, sizeof(bin));
	snprintf(pidfile, sizeof(pidfile), "%s.pid", sock);
	snprintf(logfile, sizeof(logfile), "%s.log", sock);
	/* The socket's directory must exist, be ours and shut to others before anything is
	 * written there; the log is never a symlink or someone else's file. */
	if (rundir_prepare(sock, why, sizeof(why))) {
		fprintf(stderr, "kray: %s\n", why);
		return 1;
	}
	log = rundir_open_log(logfile);
	if (log < 0) {
		fprintf(stderr, "kray: refusing the log %s: %s\n", logfile,
			log == -ELOOP ? "it is a symlink" :
			log == -EPERM ? "it is not a plain file of this user with one link" :
					strerror(-log));
		return 1;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		close(log);
		return perror("pipe"), 1;
	}
	snprintf(fdarg, sizeof(fdarg), "%d", pfd[1]);
	args[n++] = bin;
	args[n++] = "--socket";
	args[n++] = sock;
	args[n++] = "--pidfile";
	args[n++] = pidfile;
	args[n++] = "--ready-fd";
	args[n++] = fdarg;
	for (int i = 0; i < argc; i++) {
		args[n++] = argv[i];
		/* --dashboard alone: on loopback, at Ray's dashboard port. */
		if (!strcmp(argv[i], "--dashboard") && (i + 1 == argc || argv[i + 1][0] == '-'))
			args[n++] = KRAY_DASHBOARD_DEFAULT;
	}
	args[n] = NULL;

	pid = fork();
	if (pid < 0)
		return perror("fork"), 1;
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		setsid();
		fcntl(log, F_SETFL, O_APPEND); /* O_NONBLOCK was for the open alone */
		dup2(log, STDOUT_FILENO);
		dup2(log, STDERR_FILENO);
		if (null >= 0)
			dup2(null, STDIN_FILENO);
		fcntl(pfd[1], F_SETFD, 0);
		execvp(bin, args);
		_exit(127);
	}
	close(pfd[1]);
	close(log);
	p = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
	if (poll(&p, 1, 30000) != 1 || read(pfd[0], &c, 1) != 1) {
		waitpid(pid, &status, WNOHANG);
		fprintf(stderr, "kray: krayd did not start; its log: %s\n", logfile);
		return 1;
	}
	printf("kray: krayd running (pid %d), socket %s\n", (int)pid, sock);
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--dashboard") || !strncmp(argv[i], "--dashboard=", 12)) {
			const char *at = argv[i][11] == '=' ? argv[i] + 12 :
					 i + 1 < argc && argv[i + 1][0] != '-' ?
							      argv[i + 1] :
							      KRAY_DASHBOARD_DEFAULT;

			printf("kray: dashboard at http://%s/ (docs/dashboard.md)\n", at);
			break;
		}
	for (int i = 0; i < argc; i++)
		if (!strcmp(argv[i], "--head") || !strncmp(argv[i], "--head=", 7)) {
			/* krayd wrote the token there unless it was given another. */
			printf("kray: head of a cluster; nodes join with\n"
			       "  kray start --address=HOST:PORT --token-file=%s.token\n"
			       "  (copy that file to each node; HOST:PORT is the head's "
			       "node-listen)\n",
			       sock);
			break;
		}
	return 0;
}

/* Signals only the krayd that serves sock: a pid file can name any process (a stale one,
 * or one that another user wrote), so its pid is checked first (common/rundir.c). */
static int cmd_stop(void)
{
	char pidfile[PATH_MAX + 8];
	struct pollfd p;
	pid_t pid;
	int pidfd;

	snprintf(pidfile, sizeof(pidfile), "%s.pid", sock);
	pid = rundir_read_pid(pidfile);
	if (pid <= 0) {
		fprintf(stderr, "kray: no krayd running at %s (pid file %s: %s)\n", sock, pidfile,
			pid == -ENOENT ? "none" :
			pid == -ELOOP  ? "a symlink" :
					 "no pid in it");
		return 1;
	}
	/* A pidfd first, so that what is checked is what is signalled, even if the pid is
	 * reused meanwhile. */
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0 || !rundir_is_krayd(pid, sock)) {
		fprintf(stderr,
			"kray: no krayd running at %s: pid %d of %s is not the krayd serving it "
			"(a stale or forged pid file); nothing signalled\n",
			sock, (int)pid, pidfile);
		if (pidfd >= 0)
			close(pidfd);
		return 1;
	}
	if (syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0)) {
		fprintf(stderr, "kray: krayd (pid %d): %s\n", (int)pid, strerror(errno));
		close(pidfd);
		return 1;
	}
	p = (struct pollfd){ .fd = pidfd, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1) {
		fprintf(stderr, "kray: krayd (pid %d) did not stop in 10 s; killing it\n",
			(int)pid);
		syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	}
	close(pidfd);
	printf("kray: krayd stopped\n");
	return 0;
}

static int cmd_status(void)
{
	struct kray_config cfg = { .address = sock };
	struct kray_stats st;
	struct kray_guard_stats g;
	kray *k;
	int r = kray_init(&k, &cfg);

	if (r) {
		fprintf(stderr, "kray: %s\n", kray_init_errmsg());
		return 1;
	}
	r = kray_status(k, &st);
	if (!r)
		r = kray_guard_status(k, &g);
	if (r) {
		fprintf(stderr, "kray: %s\n", kray_errmsg(k));
		kray_shutdown(k);
		return 1;
	}
#define U(x) ((unsigned long long)(x))
	printf("node %08llx at %s\n"
	       "  drivers  %llu\n"
	       "  workers  %llu (%llu busy, %llu blocked in get; %llu started, %llu died)\n"
	       "  tasks    %llu submitted, %llu finished, %llu failed, %llu retried, "
	       "%llu queued, %llu waiting for arguments, %llu handed back\n"
	       "  objects  %llu (%llu bytes inline); store %llu of %llu bytes in memory, "
	       "%llu pinned\n"
	       "  spilled  %llu objects (%llu bytes) now; %llu bytes spilled, %llu restored "
	       "in all; %llu freed; pool %llu bytes\n"
	       "  actors   %llu alive, %llu pending (waiting for CPU slots or arguments)\n"
	       "  fast     %llu sync calls steered by BPF, %llu bounced to krayd\n"
	       "  rejected frames %llu\n"
	       "  huge pages for large objects: %s\n"
	       "  longest event-loop stall %u us\n",
	       U(st.node), sock, U(st.drivers) - 1, U(st.workers), U(st.workers_busy),
	       U(st.workers_blocked), U(st.workers_started), U(st.workers_died),
	       U(st.tasks_submitted), U(st.tasks_finished), U(st.tasks_failed), U(st.tasks_retried),
	       U(st.tasks_queued), U(st.tasks_waiting), U(st.tasks_handed_back), U(st.objects),
	       U(st.object_bytes), U(st.store_bytes), U(st.store_capacity), U(st.objects_pinned),
	       U(st.objects_spilled), U(st.bytes_spilled), U(st.spilled_total),
	       U(st.restored_total), U(st.evicted_total), U(st.pool_bytes), U(st.actors_alive),
	       U(st.actors_pending), U(st.fast_tasks), U(st.fast_bounced), U(st.frames_rejected),
	       (st.store_huge & KRAY_STORE_HUGETLB) && (st.store_huge & KRAY_STORE_THP) ?
		       "hugetlb where reserved, else shmem THP" :
	       st.store_huge & KRAY_STORE_HUGETLB ? "hugetlb where reserved, else none" :
	       st.store_huge & KRAY_STORE_THP	  ? "shmem THP" :
						    "none (4 KiB pages)",
	       st.loop_stall_max_us);
	printf("  limits   %llu job records, %llu dead actors kept; %llu connections (%llu buffer "
	       "bytes); refused: %llu clients, %llu node links; closed: %llu slow, %llu past "
	       "output limit, %llu past buffers, %llu out of memory; %llu accept pauses; %llu "
	       "tasks timed out; %llu jobs ended with their driver\n",
	       U(g.jobs), U(g.actors_dead), U(g.connections), U(g.buffer_bytes),
	       U(g.clients_refused), U(g.links_refused), U(g.closed_slow), U(g.closed_output),
	       U(g.closed_buffers), U(g.closed_nomem), U(g.accept_pauses), U(g.tasks_timed_out),
	       U(g.jobs_ended));
	if (g.nest_stalled || g.workers_over || g.nest_failed)
		printf("  NESTING  every pool worker is %sblocked in a get on nested tasks: %llu "
		       "workers started past max-workers, %llu tasks failed for nesting too deep\n",
		       g.nest_stalled ? "" : "(was) ", U(g.workers_over), U(g.nest_failed));
#undef U
	char *actors = NULL, *nodes = NULL;

	if (!kray_describe_nodes(k, &nodes) && *nodes)
		printf("nodes:\n%s", nodes);
	free(nodes);
	if (!kray_describe_actors(k, &actors) && *actors)
		printf("actors:\n%s", actors);
	free(actors);
	kray_shutdown(k);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd;
	int i = 2;

	if (argc < 2)
		return usage();
	cmd = argv[1];
	default_socket();
	/* --socket may stand anywhere; the rest of `start`'s flags go to krayd. */
	for (int j = 2; j < argc; j++) {
		if (strcmp(argv[j], "--socket") || j + 1 >= argc)
			continue;
		snprintf(sock, sizeof(sock), "%s", argv[j + 1]);
		memmove(&argv[j], &argv[j + 2], (size_t)(argc - j - 2 + 1) * sizeof(*argv));
		argc -= 2;
		break;
	}
	absolute_socket();
	if (!strcmp(cmd, "start"))
		return cmd_start(argc - i, argv + i);
	if (!strcmp(cmd, "top")) {
		bool once = false;
		long ms = 1000;

		for (; i < argc; i++) {
			if (!strcmp(argv[i], "--once")) {
				once = true;
			} else if (!strcmp(argv[i], "--interval") && i + 1 < argc) {
				char *end;

				ms = strtol(argv[++i], &end, 10);
				if (*end || ms < 10 || ms > 3600000)
					return usage();
			} else {
				return usage();
			}
		}
		return kray_top_main(sock, once, (unsigned)ms);
	}
	if (!strcmp(cmd, "status") && i + 1 == argc && !strcmp(argv[i], "--json"))
		return kray_status_json_main(sock);
	if (!strcmp(cmd, "timeline")) {
		if (argc - i > 1)
			return usage();
		return kray_timeline_main(sock, i < argc ? argv[i] : NULL);
	}
	if (i < argc)
		return usage();
	if (!strcmp(cmd, "stop"))
		return cmd_stop();
	if (!strcmp(cmd, "status"))
		return cmd_status();
	return usage();
}
