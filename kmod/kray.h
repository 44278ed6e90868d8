/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Private to the module: the open-file sessions (kray.c) and the object table (table.c).
 *
 * Locking: one spinlock, kray_lock, guards the table, the list of attached daemons and the
 * counters.  It is only ever held for lookups and list edits: never across a user copy,
 * an allocation, an fd install or a file open, so every path that may sleep runs with it
 * dropped (holding a file reference where it needs the object's memfd afterwards).
 */
#ifndef KRAY_KMOD_KRAY_H
#define KRAY_KMOD_KRAY_H

#include <linux/fs.h>
#include <linux/list.h>
#include <linux/types.h>

#include "kray_kmod.h"

enum kray_sess_role {
	KRAY_SESS_NONE = 0, /* opened /dev/kray: may get uid-scoped objects */
	KRAY_SESS_DAEMON, /* attached as the daemon of `node` */
	KRAY_SESS_JOB, /* a job session the daemon of `node` made for `job` */
};

/* One per open file (a /dev/kray open, or a job session's anonymous file). */
struct kray_sess {
	struct list_head daemons; /* on the daemon list while attached */
	enum kray_sess_role role;
	u32 node;
	u32 job;
};

extern unsigned long kray_max_bytes;
extern unsigned int kray_max_objects;

/* table.c: each returns 0 (or a count) or -errno, and takes copied-in arguments only. */
void kray_table_stats(u64 *ret_used, u32 *ret_objects);
int kray_table_attach(struct kray_sess *s, u32 node);
void kray_table_detach(struct kray_sess *s);
int kray_table_publish(struct kray_sess *s, struct kray_kmod_publish *a);
int kray_table_withdraw(struct kray_sess *s, const struct kray_oid *oid, bool if_unused);
/* A reference to the object's memfd (fput() it), after the scope check. */
int kray_table_get(struct kray_sess *s, const struct kray_oid *oid, struct file **ret_file,
		   u64 *ret_size);
/* Sets ready[i] for each of ids[0..n) the session may get; returns how many. */
u32 kray_table_ready(struct kray_sess *s, const struct kray_oid *ids, u32 n, u8 *ready);
/* Waits for kray_table_ready() >= k.  Returns the count, -ETIMEDOUT or -EINTR. */
long kray_table_wait(struct kray_sess *s, const struct kray_oid *ids, u32 n, u32 k, s64 timeout_ms,
		     u8 *ready);
int kray_table_list(u32 node, struct kray_kmod_entry *buf, u32 max, u32 *ret_total);
int kray_table_adopt(struct kray_sess *s, u32 from_node, u32 *ret_count);
/* Drops every object (module unload: no session is left). */
void kray_table_fini(void);

#endif
