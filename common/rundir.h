/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The runtime directory of a krayd (its socket, pid file and log) and the question "is
 * that pid the krayd serving this socket?", shared by krayd (daemon/main.c) and the CLI
 * (tools/kray.c) so that `kray start` and krayd refuse the same directories and `kray
 * stop` signals only what krayd would call itself.  Issue 21: another user must not be
 * able to squat the directory, plant symlinks for the pid file or log, or make root
 * signal a pid of her choosing.
 */
#ifndef KRAY_COMMON_RUNDIR_H
#define KRAY_COMMON_RUNDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The default socket: $XDG_RUNTIME_DIR/kray-UID/krayd.sock, else for root
 * /run/kray/krayd.sock (the systemd unit's RuntimeDirectory, which only root can
 * create), else /tmp/kray-UID/krayd.sock.  $KRAY_ADDRESS is the caller's to honour.
 */
void rundir_default_socket(char *buf, size_t len);

/*
 * Creates the directory that holds sock (mode 0700) or, if it exists, checks that it is
 * safe: a real directory (not a symlink) owned by this user or by root, and not writable
 * by group or others unless it is sticky and root's (as /tmp is).  Returns 0, or -errno
 * with a sentence for the user in why (nothing has been written then).
 */
int rundir_prepare(const char *sock, char *why, size_t why_len);

/*
 * Opens path for appending (a log): O_NOFOLLOW, created 0600 if absent, and refused
 * unless it is a regular file of this user with one link.  Returns the fd (O_CLOEXEC) or
 * -errno (-ELOOP for a symlink, -EPERM for someone else's file).
 */
int rundir_open_log(const char *path);

/*
 * Reads the pid in a pid file without following a symlink.  Returns the pid (> 0),
 * -ENOENT if there is no file, or another -errno (-EINVAL: no pid in it).
 */
pid_t rundir_read_pid(const char *path);

/*
 * True if pid is a running krayd serving sock: its executable (or argv[0]) is named
 * krayd and it holds the listening unix socket bound at sock.  A pid file can name any
 * process; this is what makes it safe to signal one.
 */
bool rundir_is_krayd(pid_t pid, const char *sock);

#endif /* KRAY_COMMON_RUNDIR_H */
