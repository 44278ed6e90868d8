// SPDX-License-Identifier: Apache-2.0
/*
 * kray_init() and kray_shutdown(): connect to a running krayd, or start a private one for
 * this process (the embedded default, as ray.init() does) and stop it again.
 *
 * A private krayd lives in its own mkdtemp() directory with its own socket, so any number
 * of processes and test runs can each have one without colliding.  It gets
 * PR_SET_PDEATHSIG, so a driver that dies without kray_shutdown() does not leave it behind.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"

static __thread char init_err[1024];

KRAY_EXPORT const char *kray_init_errmsg(void)
{
	return init_err;
}

KRAY_EXPORT const char *kray_errmsg(const struct kray *k)
{
	return k ? k->err : "no kray handle";
}

KRAY_EXPORT int kray_fd(const struct kray *k)
{
	return k->fd;
}

/* krayd for a private instance: the config, $KRAY_KRAYD, next to libkray, then PATH. */
static void krayd_path(const struct kray_config *cfg, char *buf, size_t len)
{
	const char *env = getenv("KRAY_KRAYD");
	Dl_info info;

	if (cfg && cfg->krayd_path) {
		snprintf(buf, len, "%s", cfg->krayd_path);
		return;
	}
	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	if (dladdr((void *)kray_init, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
		char dir[PATH_MAX];
		char *slash;

		snprintf(dir, sizeof(dir), "%s", info.dli_fname);
		slash = strrchr(dir, '/');
		*slash = 0;
		snprintf(buf, len, "%s/../bin/krayd", dir);
		if (!access(buf, X_OK))
			return;
	}
	snprintf(buf, len, "krayd");
}

static int start_private(struct kray *k, const struct kray_config *cfg, char *sock, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX], bin[PATH_MAX], fdarg[16], cpus[16];
	int pfd[2], status;
	struct pollfd p;
	char c;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/kray-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir))
		return kc_fail(k, -errno, "mkdtemp %s: %s", dir, strerror(errno));
	snprintf(sock, len, "%s/krayd.sock", dir);
	krayd_path(cfg, bin, sizeof(bin));
	snprintf(cpus, sizeof(cpus), "%d", cfg && cfg->num_cpus > 0 ? cfg->num_cpus : 0);
	if (pipe2(pfd, O_CLOEXEC)) {
		rmdir(dir);
		return kc_fail(k, -errno, "pipe: %s", strerror(errno));
	}
	snprintf(fdarg, sizeof(fdarg), "%d", pfd[1]);
	char *base[] = { bin,
			 "--socket",
			 sock,
			 "--num-cpus",
			 cpus,
			 "--ready-fd",
			 fdarg,
			 "--remove-dir",
			 dir,
			 "--log-level",
			 "warn",
			 "--code-path",
			 (char *)(cfg && cfg->code_path ? cfg->code_path : "") };
	size_t nbase = sizeof(base) / sizeof(base[0]), nextra = 0;

	while (cfg && cfg->krayd_args && cfg->krayd_args[nextra])
		nextra++;
	/* Built before fork(): the child may only exec. */
	char *argv[nbase + nextra + 1];

	memcpy(argv, base, sizeof(base));
	for (size_t i = 0; i < nextra; i++)
		argv[nbase + i] = (char *)cfg->krayd_args[i];
	argv[nbase + nextra] = NULL;

	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		rmdir(dir);
		return kc_fail(k, -errno, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* Only async-signal-safe calls until exec: the driver may be threaded. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		fcntl(pfd[1], F_SETFD, 0);
		setpgid(0, 0); /* a ^C to the driver reaches krayd through its parent, once */
		execvp(bin, argv);
		_exit(127);
	}
	close(pfd[1]);
	p = (struct pollfd){ .fd = pfd[0], .events = POLLIN };
	if (poll(&p, 1, 30000) != 1 || read(pfd[0], &c, 1) != 1) {
		close(pfd[0]);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		rmdir(dir);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			return kc_fail(k, -ENOENT, "cannot run krayd '%s' (set KRAY_KRAYD)", bin);
		return kc_fail(k, -ECHILD,
			       "krayd '%s' did not start (status %d); see its log "
			       "on stderr",
			       bin, status);
	}
	close(pfd[0]);
	k->krayd_pid = pid;
	k->private_dir = strdup(dir);
	return 0;
}

static void stop_private(struct kray *k)
{
	int status;

	if (!k->krayd_pid)
		return;
	kill(k->krayd_pid, SIGTERM);
	while (waitpid(k->krayd_pid, &status, 0) < 0 && errno == EINTR)
		;
	k->krayd_pid = 0;
	if (k->private_dir)
		rmdir(k->private_dir); /* krayd removes it; this covers a krayd that crashed */
	free(k->private_dir);
	k->private_dir = NULL;
}

/*
 * The code path with every relative entry made absolute: workers do not share the
 * driver's working directory (under systemd theirs is /).  *ret is NULL for no path.
 */
static int absolute_path(struct kray *k, const char *path, char **ret)
{
	struct kbuf b = { 0 };
	char cwd[PATH_MAX];
	const char *p = path;

	*ret = NULL;
	if (!path || !*path)
		return 0;
	if (!getcwd(cwd, sizeof(cwd)))
		return kc_fail(k, -errno, "getcwd: %s", strerror(errno));
	while (*p) {
		const char *end = strchr(p, ':');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (b.len)
			kbuf_put(&b, ":", 1);
		if (b.nomem)
			break;
		if (n && p[0] != '/') {
			kbuf_put(&b, cwd, strlen(cwd));
			kbuf_put(&b, "/", 1);
		}
		kbuf_put(&b, p, n);
		p += n + (end ? 1 : 0);
	}
	kbuf_put(&b, "", 1);
	if (b.nomem) {
		kbuf_free(&b);
		return kc_fail(k, -ENOMEM, "out of memory");
	}
	*ret = (char *)b.data;
	return 0;
}

void kc_layers_init(struct kray *k)
{
	/* Closed in this order too: the fast connection, the module, then the objects. */
	kc_layer_add(k, &kc_fast_layer);
	kc_layer_add(k, &kc_kmod_layer);
	kc_layer_add(k, &kc_objects_layer);
	kc_layer_add(k, &kc_async_layer);
}

KRAY_EXPORT int kray_init(struct kray **ret_k, const struct kray_config *cfg)
{
	struct kray *k = calloc(1, sizeof(*k));
	const char *addr = cfg && cfg->address ? cfg->address : getenv("KRAY_ADDRESS");
	char sock[PATH_MAX], *code_path = NULL;
	int r;

	if (!k) {
		snprintf(init_err, sizeof(init_err), "out of memory");
		return -ENOMEM;
	}
	k->fd = -1;
	k->kmod_fd = -1;
	k->uffd = -1;
	kc_layers_init(k);
	if (addr && *addr) {
		snprintf(sock, sizeof(sock), "%s", addr);
	} else {
		r = start_private(k, cfg, sock, sizeof(sock));
		if (r)
			goto err;
	}
	r = absolute_path(k, cfg ? cfg->code_path : NULL, &code_path);
	if (!r)
		r = kc_connect(k, sock, KRAY_ROLE_DRIVER, 0, code_path);
	free(code_path);
	if (r)
		goto err;
	kc_lazy_uffd(k); /* made now, with the connection: a get opens no descriptor */
	*ret_k = k;
	return 0;

err:
	snprintf(init_err, sizeof(init_err), "%s", k->err);
	kc_close(k);
	kc_lazy_close(k);
	stop_private(k);
	free(k);
	return r;
}

KRAY_EXPORT void kray_shutdown(struct kray *k)
{
	if (!k)
		return;
	if (!k->broken)
		kc_flush(k);
	kc_close(k);
	kc_lazy_close(k);
	stop_private(k);
	free(k);
}
