// SPDX-License-Identifier: Apache-2.0
/*
 * The worker pool's processes: spawning a worker host on a socketpair (so its connection
 * is known to be that worker's), reaping them, and saying how each died.  What a death
 * means for the tasks it held, or the actor it hosted, is the scheduler's
 * (sched_worker_lost(), through d->worker_lost): this file calls nothing above it.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/krayd.h"
#include "core/conn.h"
#include "core/worker.h"
#include "core/actor.h"
#include "core/sched.h"
#include "core/log.h"

extern char **environ;

static const char *worker_path(struct krayd *d)
{
	static char path[PATH_MAX];
	const char *env = getenv("KRAY_WORKER");
	ssize_t n;
	char *slash;

	if (d->cfg.worker[0])
		return d->cfg.worker;
	if (env && *env)
		return env;
	/* Next to krayd: build/bin/ in the tree, $PREFIX/bin/ when installed. */
	n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	if (n > 0) {
		path[n] = 0;
		slash = strrchr(path, '/');
		if (slash) {
			strcpy(slash + 1, "kray-worker");
			if (!access(path, X_OK))
				return path;
		}
	}
	return "kray-worker";
}

static struct worker *spawn(struct krayd *d);

int worker_spawn(struct krayd *d)
{
	return spawn(d) ? 0 : -1;
}

int worker_spawn_actor(struct krayd *d, struct actor *a)
{
	struct worker *w = spawn(d);

	if (!w)
		return -1;
	w->actor = a;
	a->w = w;
	return 0;
}

void worker_adopt(struct worker *w, struct actor *a)
{
	w->actor = a;
	w->cpu_milli = 0; /* the actor holds its CPU, not a task */
	w->plain = false;
	a->w = w;
}

/* The variables krayd sets for a worker; inherited ones of these names are dropped. */
static const char *const WORKER_ENV[] = {
	"KRAY_WORKER_ID=",  "KRAY_SOCKET=",	"KRAY_SOCKET_FD=", "KRAY_PARENT_PID=",
	"KRAY_WORKER_UID=", "KRAY_WORKER_GID=", "KRAY_WARM_PATH="
};
#define NWORKER_ENV (sizeof(WORKER_ENV) / sizeof(WORKER_ENV[0]))

static bool worker_env(const char *var)
{
	for (size_t i = 0; i < NWORKER_ENV; i++)
		if (!strncmp(var, WORKER_ENV[i], strlen(WORKER_ENV[i])))
			return true;
	return false;
}

/*
 * Starts a worker host.  Its connection is one end of a socketpair made here, so krayd
 * knows which worker speaks on it without trusting what the process says, and a worker
 * that runs as another user (worker-user) needs no access to krayd's socket.  That
 * worker drops to its user before it reads anything (libclient/worker.c): the kray-worker
 * binary is krayd's, the code it loads later is the job's.
 */
static struct worker *spawn(struct krayd *d)
{
	struct worker *w = calloc(1, sizeof(*w));
	char vars[NWORKER_ENV][KRAY_PATH_MAX + 32];
	const char *path = worker_path(d);
	char *argv[] = { (char *)path, NULL };
	posix_spawnattr_t attr;
	struct conn *c;
	sigset_t none;
	char **envp;
	size_t n = 0, j = 0;
	int sv[2], r;

	if (!w)
		return NULL;
	/* The worker's end must survive exec: no SOCK_CLOEXEC on it (krayd starts
	 * processes from this thread only, so it leaks into no other child). */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		log_err("cannot start a worker: socketpair: %s", strerror(errno));
		free(w);
		return NULL;
	}
	fcntl(sv[0], F_SETFD, FD_CLOEXEC);
	while (environ[n])
		n++;
	envp = calloc(n + NWORKER_ENV + 1, sizeof(*envp));
	if (!envp)
		abort();
	w->id = ++d->next_worker;
	snprintf(vars[j++], sizeof(vars[0]), "KRAY_WORKER_ID=%u", w->id);
	snprintf(vars[j++], sizeof(vars[0]), "KRAY_SOCKET=%s", d->cfg.socket);
	snprintf(vars[j++], sizeof(vars[0]), "KRAY_SOCKET_FD=%d", sv[1]);
	snprintf(vars[j++], sizeof(vars[0]), "KRAY_PARENT_PID=%d", (int)getpid());
	if (d->cfg.worker_user[0]) {
		snprintf(vars[j++], sizeof(vars[0]), "KRAY_WORKER_UID=%u",
			 (unsigned)d->cfg.worker_uid);
		snprintf(vars[j++], sizeof(vars[0]), "KRAY_WORKER_GID=%u",
			 (unsigned)d->cfg.worker_gid);
	}
	if (d->cfg.warm_code_path[0])
		snprintf(vars[j++], sizeof(vars[0]), "KRAY_WARM_PATH=%s", d->cfg.warm_code_path);
	for (size_t i = 0; i < j; i++)
		envp[i] = vars[i];
	for (size_t i = 0; i < n; i++)
		if (!worker_env(environ[i]))
			envp[j++] = environ[i];

	/* The worker must not inherit krayd's blocked signals. */
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	r = posix_spawnp(&w->pid, path, NULL, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	free(envp);
	close(sv[1]);
	if (r) {
		log_err("cannot start worker %s: %s", path, strerror(r));
		close(sv[0]);
		d->start_failures++;
		free(w);
		return NULL;
	}
	w->state = W_STARTING;
	w->next = d->workers;
	d->workers = w;
	d->nworkers++;
	d->starting++;
	d->st.workers_started++;
	c = conn_new(d, sv[0], ROLE_NONE,
		     d->client_kind); /* out of memory: the worker sees EOF and exits */
	if (c) {
		c->spawned = w->id;
		conn_deadline(c, 0, NULL); /* krayd's own worker: no deadline to say HELLO */
	}
	ext_worker_started(d, w);
	log_debug("worker %u started, pid %d", w->id, (int)w->pid);
	return w;
}

struct worker *worker_by_id(struct krayd *d, uint32_t id)
{
	for (struct worker *w = d->workers; w; w = w->next)
		if (w->id == id)
			return w;
	return NULL;
}

void worker_attach(struct worker *w, struct conn *c)
{
	w->conn = c;
	w->state = W_READY;
	c->worker = w;
	c->role = ROLE_WORKER;
	if (w->actor)
		c->d->worker_ready(c->d, w);
}

void worker_conn_lost(struct worker *w)
{
	w->conn = NULL;
	/* It is dead or misbehaving: make sure, and let the reaper account for its tasks. */
	if (w->state != W_DEAD)
		kill(w->pid, SIGKILL);
}

static void describe(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

static void worker_gone(struct krayd *d, struct worker *w, int status)
{
	char how[128];
	bool was_starting = w->state == W_STARTING, fast_ran;

	describe(status, how, sizeof(how));
	w->state = W_DEAD;
	fast_ran = ext_worker_gone(d, w, how);
	if (w->conn)
		conn_close(w->conn, "worker exited");
	if (was_starting) {
		d->starting--;
	}
	if (was_starting && w->actor) {
		w->actor->no_restart = true; /* it would fail again: do not spin */
	} else if (was_starting && !d->stopping) {
		d->start_failures++;
		log_warn("worker %u (pid %d) %s before connecting", w->id, (int)w->pid, how);
	} else if (!d->stopping) {
		log_debug("worker %u (pid %d) %s", w->id, (int)w->pid, how);
	}
	if (!d->stopping && (w->head || fast_ran || WIFSIGNALED(status)) &&
	    !(w->actor && !w->head && w->actor->state == A_DEAD))
		d->st.workers_died++;
	d->worker_lost(d, w, how, was_starting, fast_ran); /* its tasks, or its actor */

	struct worker **pp = &d->workers;

	while (*pp != w)
		pp = &(*pp)->next;
	*pp = w->next;
	d->nworkers--;
	oidmap_free(&w->jobs);
	free(w);
}

void worker_reap(struct krayd *d)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (struct worker *w = d->workers; w; w = w->next)
			if (w->pid == pid) {
				worker_gone(d, w, status);
				break;
			}
	}
}

void worker_stop_all(struct krayd *d)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	/* Closing their sockets asks them to exit; SIGTERM interrupts a long task. */
	for (struct worker *w = d->workers; w; w = w->next) {
		if (w->conn)
			conn_close(w->conn, "krayd stopping");
		kill(w->pid, SIGTERM);
	}
	for (int i = 0; i < 300 && d->workers; i++) {
		worker_reap(d);
		if (d->workers)
			nanosleep(&ts, NULL);
	}
	for (struct worker *w = d->workers; w; w = w->next)
		kill(w->pid, SIGKILL);
	while (d->workers) {
		int status;
		pid_t pid = waitpid(d->workers->pid, &status, 0);

		if (pid < 0 && errno != EINTR)
			status = 0;
		else if (pid < 0)
			continue;
		worker_gone(d, d->workers, status);
	}
}
