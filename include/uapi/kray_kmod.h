/* SPDX-License-Identifier: (GPL-2.0 OR Apache-2.0) */
/*
 * The ioctl ABI of /dev/kray, kray's optional kernel module (kmod/, docs/kmod.md): one
 * definition shared by the module, krayd, libkray and the tests.
 *
 * The module keeps a table of sealed memfds by object id (struct kray_oid).  A daemon
 * (krayd) attaches to the device as the daemon of its node and publishes objects into the
 * table, each with an access scope; any process allowed by the scope gets a read-only fd
 * for an object in one ioctl, and can wait until k of n objects are published.  The table
 * outlives the daemon: a new daemon lists the orphaned objects and adopts them.
 *
 * Every argument struct starts with `size` (the caller sets it to sizeof the struct;
 * the module refuses any other value with -EINVAL) and `flags` (0 unless stated:
 * unknown bits are -EINVAL), uses fixed-width fields with explicit padding (which must
 * be 0), and has its size pinned below.  The ioctl number also encodes the size.
 *
 * Errors every command may return: -EINVAL (size, flags, padding, counts), -EFAULT (a bad
 * pointer), -ENOTTY (an unknown command).  The others are listed per command.
 */
#ifndef KRAY_UAPI_KMOD_H
#define KRAY_UAPI_KMOD_H

#include <linux/ioctl.h>
#include <linux/types.h>

#include "kray_wire.h"

#define KRAY_KMOD_DEVICE "/dev/kray"
#define KRAY_KMOD_ABI 1 /* bumped on any incompatible change */
#define KRAY_KMOD_IOC 0xB7 /* ioctl type byte (unused in ioctl-number.rst) */

/* Limits: past them a command fails with -E2BIG. */
#define KRAY_KMOD_WAIT_MAX 4096 /* ids in one wait */
#define KRAY_KMOD_LIST_MAX 65536 /* entries in one list */

/* Who may get an object (struct kray_kmod_publish.scope). */
enum kray_kmod_scope {
	KRAY_KMOD_SCOPE_UID = 1, /* processes whose effective uid is scope_id */
	KRAY_KMOD_SCOPE_JOB = 2, /* job sessions of this node for job scope_id */
};

/* KRAY_IOC_VERSION: what the module is.  Anyone; never fails but for -EFAULT. */
struct kray_kmod_version {
	__u32 size; /* out: sizeof(struct kray_kmod_version) */
	__u32 abi; /* out: KRAY_KMOD_ABI */
	__u64 max_bytes; /* out: the module parameter max_bytes */
	__u64 used_bytes; /* out: bytes of the objects in the table */
	__u32 objects; /* out: objects in the table */
	__u32 max_objects; /* out: the module parameter max_objects */
};
_Static_assert(sizeof(struct kray_kmod_version) == 32, "kmod version is 32 bytes");

/*
 * KRAY_IOC_ATTACH: this open file becomes the daemon of `node`.  -EBUSY: the file is
 * already attached, or another live file is that node's daemon; -EPERM: the table holds
 * objects of that node published by another uid (CAP_SYS_ADMIN may take them over).
 * Closing the file detaches it; its node's objects stay, as orphans.
 */
struct kray_kmod_attach {
	__u32 size;
	__u32 flags;
	__u32 node; /* not 0 */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_kmod_attach) == 16, "kmod attach is 16 bytes");

/*
 * KRAY_IOC_PUBLISH (daemon only, else -EPERM): puts the memfd `fd` in the table under
 * `oid`.  The memfd must be a shmem memfd (-EINVAL) sealed with F_SEAL_WRITE, SHRINK, GROW
 * and SEAL (-EBADFD); the table keeps a reference to it until it is withdrawn.  -EBADF:
 * fd is not open; -EEXIST: oid is in the table; -ENOSPC: the table would pass max_bytes
 * or max_objects.  Publishing wakes the waiters.
 */
struct kray_kmod_publish {
	__u32 size;
	__u32 flags;
	struct kray_oid oid;
	__s32 fd;
	__u32 scope; /* enum kray_kmod_scope */
	__u32 scope_id; /* uid (in the caller's user namespace) or job id */
	__u32 pad;
	__u64 ret_size; /* out: the object's size (the memfd's) */
};
_Static_assert(sizeof(struct kray_kmod_publish) == 48, "kmod publish is 48 bytes");

/*
 * KRAY_IOC_WITHDRAW: takes oid out of the table.  -ENOENT: not there; -EPERM: the caller
 * is not the daemon of the object's node.  Gotten fds and mappings stay valid.  With
 * KRAY_KMOD_WITHDRAW_IF_UNUSED it fails with -EBUSY instead while any fd or mapping a get
 * handed out is still alive: a daemon about to spill an object asks that way, since an
 * object someone maps is pinned (in memory whatever the daemon does).
 */
#define KRAY_KMOD_WITHDRAW_IF_UNUSED 1u

struct kray_kmod_withdraw {
	__u32 size;
	__u32 flags; /* 0 or KRAY_KMOD_WITHDRAW_IF_UNUSED */
	struct kray_oid oid;
};
_Static_assert(sizeof(struct kray_kmod_withdraw) == 24, "kmod withdraw is 24 bytes");

/*
 * KRAY_IOC_GET: a new read-only, close-on-exec fd for the object `oid`, in the caller's
 * table; map it with PROT_READ.  -ENOENT: not published; -EACCES: the caller is outside the
 * object's scope (its node's daemon is always inside); -EMFILE: no free fd.
 */
struct kray_kmod_get {
	__u32 size;
	__u32 flags;
	struct kray_oid oid;
	__s32 ret_fd; /* out */
	__u32 pad;
	__u64 ret_size; /* out: the object's size */
};
_Static_assert(sizeof(struct kray_kmod_get) == 40, "kmod get is 40 bytes");

/*
 * KRAY_IOC_WAIT: blocks until at least k of the n objects `ids` are published (and within
 * the caller's scope), or timeout_ms passes (-1: no timeout, 0: just look).  ready[i] is
 * set to 1 for each published id, 0 otherwise, in both cases.  Returns the number of
 * published ids (>= k), or -ETIMEDOUT, or -EINTR when a signal came.  n is 1 to
 * KRAY_KMOD_WAIT_MAX, k is 1 to n.
 */
struct kray_kmod_wait {
	__u32 size;
	__u32 flags;
	__u32 n;
	__u32 k;
	__s64 timeout_ms;
	__u64 ids; /* user pointer: struct kray_oid[n] */
	__u64 ready; /* user pointer: __u8[n] */
};
_Static_assert(sizeof(struct kray_kmod_wait) == 40, "kmod wait is 40 bytes");

#define KRAY_KMOD_ENTRY_ORPHAN 1u /* its node has no daemon attached */

struct kray_kmod_entry {
	struct kray_oid oid;
	__u32 node; /* the node whose daemon published (or adopted) it */
	__u32 scope;
	__u32 scope_id;
	__u32 flags; /* KRAY_KMOD_ENTRY_* */
	__u64 size;
};
_Static_assert(sizeof(struct kray_kmod_entry) == 40, "kmod entry is 40 bytes");

/*
 * KRAY_IOC_LIST: the objects published by the caller's effective uid (all of them with
 * CAP_SYS_ADMIN), of `node` or of every node (node 0).  Up to max entries are written to
 * `entries`; ret_total says how many there are (ask again with a larger buffer if it is
 * larger than max).  max is 0 to KRAY_KMOD_LIST_MAX (0: count only).
 */
struct kray_kmod_list {
	__u32 size;
	__u32 flags;
	__u32 node;
	__u32 max;
	__u64 entries; /* user pointer: struct kray_kmod_entry[max] */
	__u32 ret_total; /* out */
	__u32 pad;
};
_Static_assert(sizeof(struct kray_kmod_list) == 32, "kmod list is 32 bytes");

/*
 * KRAY_IOC_ADOPT (daemon only, else -EPERM): the orphans of from_node published by the
 * caller's uid become objects of the caller's node.  -EBUSY: from_node has a daemon.
 * ret_count says how many moved (0 is not an error).
 */
struct kray_kmod_adopt {
	__u32 size;
	__u32 flags;
	__u32 from_node;
	__u32 ret_count; /* out */
};
_Static_assert(sizeof(struct kray_kmod_adopt) == 16, "kmod adopt is 16 bytes");

/*
 * KRAY_IOC_SESSION (daemon only, else -EPERM): a new close-on-exec fd for a job session of
 * the daemon's node: a file that may get (and wait for) the objects published with
 * KRAY_KMOD_SCOPE_JOB for `job`.  The daemon hands it to the job's processes (SCM_RIGHTS);
 * holding it is the permission.  -EMFILE: no free fd.
 */
struct kray_kmod_session {
	__u32 size;
	__u32 flags;
	__u32 job;
	__s32 ret_fd; /* out */
};
_Static_assert(sizeof(struct kray_kmod_session) == 16, "kmod session is 16 bytes");

#define KRAY_IOC_VERSION _IOR(KRAY_KMOD_IOC, 0x00, struct kray_kmod_version)
#define KRAY_IOC_ATTACH _IOW(KRAY_KMOD_IOC, 0x01, struct kray_kmod_attach)
#define KRAY_IOC_PUBLISH _IOWR(KRAY_KMOD_IOC, 0x02, struct kray_kmod_publish)
#define KRAY_IOC_WITHDRAW _IOW(KRAY_KMOD_IOC, 0x03, struct kray_kmod_withdraw)
#define KRAY_IOC_GET _IOWR(KRAY_KMOD_IOC, 0x04, struct kray_kmod_get)
#define KRAY_IOC_WAIT _IOW(KRAY_KMOD_IOC, 0x05, struct kray_kmod_wait)
#define KRAY_IOC_LIST _IOWR(KRAY_KMOD_IOC, 0x06, struct kray_kmod_list)
#define KRAY_IOC_ADOPT _IOWR(KRAY_KMOD_IOC, 0x07, struct kray_kmod_adopt)
#define KRAY_IOC_SESSION _IOWR(KRAY_KMOD_IOC, 0x08, struct kray_kmod_session)

#endif
