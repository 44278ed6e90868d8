// SPDX-License-Identifier: GPL-2.0
/*
 * The object table: sealed memfds by object id, each with the node whose daemon published
 * it, the uid that published it and the scope of who may get it.
 *
 * The table holds one reference to each memfd (a struct file).  A get opens a new
 * read-only file on the same inode for the caller, so what the caller holds (fd, mapping)
 * is independent of the table: an object's memory goes when the last of the table entry,
 * the gotten fds and their mappings goes, and the kernel's file references count that for
 * us.  Bytes are counted at publish from the inode's size, which the seals freeze.
 *
 * Daemons come and go; objects stay.  An object whose node has no attached daemon is an
 * orphan until a daemon of the same uid attaches to that node or adopts it.
 */
#include <linux/cred.h>
#include <linux/capability.h>
#include <linux/dcache.h>
#include <linux/fcntl.h>
#include <linux/file.h>
#include <linux/hashtable.h>
#include <linux/jhash.h>
#include <linux/sched/signal.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/wait.h>

#include "kray.h"

#define ALL_SEALS (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

struct kray_obj {
	struct hlist_node hash;
	struct kray_oid oid;
	struct file *memfd; /* the table's reference */
	u64 size;
	u32 node;
	kuid_t owner; /* effective uid of the publisher */
	u32 scope; /* enum kray_kmod_scope */
	u32 job; /* KRAY_KMOD_SCOPE_JOB */
	kuid_t uid; /* KRAY_KMOD_SCOPE_UID */
};

static DEFINE_SPINLOCK(kray_lock);
static DEFINE_HASHTABLE(kray_objs, 12);
static LIST_HEAD(kray_daemons);
static DECLARE_WAIT_QUEUE_HEAD(kray_wq);
static u64 kray_used;
static u32 kray_nobjs;

static u32 oid_hash(const struct kray_oid *oid)
{
	return jhash2((const u32 *)oid, sizeof(*oid) / sizeof(u32), 0);
}

static bool oid_eq(const struct kray_oid *a, const struct kray_oid *b)
{
	return a->node == b->node && a->owner == b->owner && a->seq == b->seq &&
	       a->index == b->index;
}

/* Root in the initial namespace, asked without an audit record for every refusal. */
static bool is_admin(void)
{
	return ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN);
}

/* Under kray_lock. */
static struct kray_obj *find(const struct kray_oid *oid)
{
	struct kray_obj *o;

	hash_for_each_possible (kray_objs, o, hash, oid_hash(oid))
		if (oid_eq(&o->oid, oid))
			return o;
	return NULL;
}

/* Under kray_lock. */
static bool node_live(u32 node)
{
	struct kray_sess *d;

	list_for_each_entry (d, &kray_daemons, daemons)
		if (d->node == node)
			return true;
	return false;
}

/* Under kray_lock; euid is the caller's, read before the lock. */
static bool may_get(const struct kray_sess *s, const struct kray_obj *o, kuid_t euid)
{
	if (s->role == KRAY_SESS_DAEMON && s->node == o->node)
		return true;
	if (o->scope == KRAY_KMOD_SCOPE_UID)
		return uid_eq(euid, o->uid);
	return s->role == KRAY_SESS_JOB && s->node == o->node && s->job == o->job;
}

void kray_table_stats(u64 *ret_used, u32 *ret_objects)
{
	spin_lock(&kray_lock);
	*ret_used = kray_used;
	*ret_objects = kray_nobjs;
	spin_unlock(&kray_lock);
}

int kray_table_attach(struct kray_sess *s, u32 node)
{
	bool admin = is_admin();
	kuid_t euid = current_euid();
	struct kray_obj *o;
	int bkt, r = 0;

	spin_lock(&kray_lock);
	if (s->role != KRAY_SESS_NONE || node_live(node)) {
		r = -EBUSY;
		goto out;
	}
	if (!admin) {
		hash_for_each (kray_objs, bkt, o, hash) {
			if (o->node == node && !uid_eq(o->owner, euid)) {
				r = -EPERM;
				goto out;
			}
		}
	}
	s->role = KRAY_SESS_DAEMON;
	s->node = node;
	list_add(&s->daemons, &kray_daemons);
out:
	spin_unlock(&kray_lock);
	return r;
}

void kray_table_detach(struct kray_sess *s)
{
	if (s->role != KRAY_SESS_DAEMON)
		return;
	spin_lock(&kray_lock);
	list_del(&s->daemons);
	spin_unlock(&kray_lock);
}

/* Only a shmem memfd with every seal (which also freezes its size) is accepted. */
static int check_memfd(struct file *f, u64 *ret_size)
{
	struct inode *inode = file_inode(f);

	if (!shmem_file(f))
		return -EINVAL;
	if ((READ_ONCE(SHMEM_I(inode)->seals) & ALL_SEALS) != ALL_SEALS)
		return -EBADFD;
	*ret_size = (u64)i_size_read(inode);
	return 0;
}

int kray_table_publish(struct kray_sess *s, struct kray_kmod_publish *a)
{
	/* The parameters may change at any time (sysfs): read each once. */
	u64 max_bytes = READ_ONCE(kray_max_bytes);
	u32 max_objects = READ_ONCE(kray_max_objects);
	kuid_t euid = current_euid();
	struct kray_obj *o;
	struct file *f;
	u64 size;
	int r;

	if (a->scope != KRAY_KMOD_SCOPE_UID && a->scope != KRAY_KMOD_SCOPE_JOB)
		return -EINVAL;
	o = kzalloc(sizeof(*o), GFP_KERNEL);
	if (!o)
		return -ENOMEM;
	if (a->scope == KRAY_KMOD_SCOPE_UID) {
		o->uid = make_kuid(current_user_ns(), a->scope_id);
		if (!uid_valid(o->uid)) {
			r = -EINVAL;
			goto err_free;
		}
	}
	f = fget(a->fd);
	if (!f) {
		r = -EBADF;
		goto err_free;
	}
	r = check_memfd(f, &size);
	if (r)
		goto err_put;
	o->oid = a->oid;
	o->memfd = f;
	o->size = size;
	o->owner = euid;
	o->scope = a->scope;
	o->job = a->scope == KRAY_KMOD_SCOPE_JOB ? a->scope_id : 0;

	spin_lock(&kray_lock);
	if (s->role != KRAY_SESS_DAEMON)
		r = -EPERM;
	else if (find(&a->oid))
		r = -EEXIST;
	else if (kray_nobjs >= max_objects || size > max_bytes - min(kray_used, max_bytes))
		r = -ENOSPC;
	if (!r) {
		o->node = s->node;
		hash_add(kray_objs, &o->hash, oid_hash(&o->oid));
		kray_used += size;
		kray_nobjs++;
	}
	spin_unlock(&kray_lock);
	if (r)
		goto err_put;
	a->ret_size = size;
	wake_up_all(&kray_wq);
	return 0;

err_put:
	fput(f);
err_free:
	kfree(o);
	return r;
}

/* Under kray_lock: unhooks o; the caller frees it (drop()) after unlocking. */
static void unhook(struct kray_obj *o)
{
	hash_del(&o->hash);
	kray_used -= o->size;
	kray_nobjs--;
}

static void drop(struct kray_obj *o)
{
	fput(o->memfd);
	kfree(o);
}

/*
 * Under kray_lock: whether a file a get opened (an fd, or a mapping's file) is alive.
 * Every get opens its own file on the memfd's dentry, and each file holds a dentry
 * reference; the table's memfd (the daemon's own file, however many fds and mappings
 * the daemon has of it) holds one.  A get racing with a withdraw may open its file just
 * after we looked: it still gets the object's bytes (it holds the memfd), the daemon just
 * does not count that reader's memory.
 */
static bool in_use(const struct kray_obj *o)
{
	return d_count(o->memfd->f_path.dentry) > 1;
}

int kray_table_withdraw(struct kray_sess *s, const struct kray_oid *oid, bool if_unused)
{
	struct kray_obj *o;
	int r = 0;

	spin_lock(&kray_lock);
	o = find(oid);
	if (!o)
		r = -ENOENT;
	else if (s->role != KRAY_SESS_DAEMON || s->node != o->node)
		r = -EPERM;
	else if (if_unused && in_use(o))
		r = -EBUSY;
	else
		unhook(o);
	spin_unlock(&kray_lock);
	if (!r)
		drop(o);
	return r;
}

int kray_table_get(struct kray_sess *s, const struct kray_oid *oid, struct file **ret_file,
		   u64 *ret_size)
{
	kuid_t euid = current_euid();
	struct kray_obj *o;
	int r = 0;

	spin_lock(&kray_lock);
	o = find(oid);
	if (!o) {
		r = -ENOENT;
	} else if (!may_get(s, o, euid)) {
		r = -EACCES;
	} else {
		*ret_file = get_file(o->memfd);
		*ret_size = o->size;
	}
	spin_unlock(&kray_lock);
	return r;
}

u32 kray_table_ready(struct kray_sess *s, const struct kray_oid *ids, u32 n, u8 *ready)
{
	kuid_t euid = current_euid();
	u32 i, count = 0;

	spin_lock(&kray_lock);
	for (i = 0; i < n; i++) {
		struct kray_obj *o = find(&ids[i]);

		ready[i] = o && may_get(s, o, euid);
		count += ready[i];
	}
	spin_unlock(&kray_lock);
	return count;
}

long kray_table_wait(struct kray_sess *s, const struct kray_oid *ids, u32 n, u32 k, s64 timeout_ms,
		     u8 *ready)
{
	long left;
	u32 count;

	/* Every publish wakes every waiter, which rechecks its ids: waiters are few (one
	 * per blocked get), publishes cheap to recheck, and nothing is lost between a check
	 * and the sleep because wait_event re-tests after queueing itself. */
	if (timeout_ms < 0) {
		left = wait_event_interruptible(kray_wq, kray_table_ready(s, ids, n, ready) >= k);
		if (left)
			return -EINTR;
	} else {
		left = wait_event_interruptible_timeout(
			kray_wq, kray_table_ready(s, ids, n, ready) >= k,
			msecs_to_jiffies((unsigned int)min_t(s64, timeout_ms, INT_MAX)));
		if (left < 0)
			return -EINTR;
	}
	count = kray_table_ready(s, ids, n, ready);
	return count >= k ? (long)count : -ETIMEDOUT;
}

int kray_table_list(u32 node, struct kray_kmod_entry *buf, u32 max, u32 *ret_total)
{
	bool admin = is_admin();
	kuid_t euid = current_euid();
	struct user_namespace *ns = current_user_ns();
	struct kray_obj *o;
	u32 total = 0;
	int bkt;

	spin_lock(&kray_lock);
	hash_for_each (kray_objs, bkt, o, hash) {
		if ((node && o->node != node) || (!admin && !uid_eq(o->owner, euid)))
			continue;
		if (total < max) {
			struct kray_kmod_entry *e = &buf[total];

			e->oid = o->oid;
			e->node = o->node;
			e->scope = o->scope;
			e->scope_id = o->scope == KRAY_KMOD_SCOPE_UID ?
					      from_kuid_munged(ns, o->uid) :
					      o->job;
			e->flags = node_live(o->node) ? 0 : KRAY_KMOD_ENTRY_ORPHAN;
			e->size = o->size;
		}
		total++;
	}
	spin_unlock(&kray_lock);
	*ret_total = total;
	return 0;
}

int kray_table_adopt(struct kray_sess *s, u32 from_node, u32 *ret_count)
{
	bool admin = is_admin();
	kuid_t euid = current_euid();
	struct kray_obj *o;
	u32 count = 0;
	int bkt, r = 0;

	spin_lock(&kray_lock);
	if (s->role != KRAY_SESS_DAEMON) {
		r = -EPERM;
	} else if (from_node == s->node || node_live(from_node)) {
		r = -EBUSY;
	} else {
		hash_for_each (kray_objs, bkt, o, hash) {
			if (o->node == from_node && (admin || uid_eq(o->owner, euid))) {
				o->node = s->node;
				count++;
			}
		}
	}
	spin_unlock(&kray_lock);
	*ret_count = count;
	if (count)
		wake_up_all(&kray_wq); /* job sessions of the new node may now see them */
	return r;
}

void kray_table_fini(void)
{
	struct kray_obj *o;
	struct hlist_node *tmp;
	int bkt;

	/* No session is left (each holds a module reference), so nothing races with this. */
	hash_for_each_safe (kray_objs, bkt, tmp, o, hash) {
		unhook(o);
		drop(o);
	}
}
