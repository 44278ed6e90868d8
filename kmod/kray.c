// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/kray: kray's optional kernel object table (docs/kmod.md, ABI in
 * include/uapi/kray_kmod.h).
 *
 * What it does that user space cannot: it holds a node's sealed objects itself, so that
 * any permitted local process gets a read-only fd for one in a single system call instead
 * of a round trip to krayd, blocks a caller in the kernel until objects are published,
 * and keeps the objects alive across a krayd restart for the next krayd to adopt.
 *
 * This file is the device: sessions (one per open file) and the ioctl entry points, which
 * copy and validate every argument before calling into the table (table.c) and copy
 * results out after it returns, so no lock is ever held across a user copy.  An fd is
 * installed in the caller's table only once everything else has succeeded: a failed copy
 * leaves no fd behind.
 */
#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "kray.h"

unsigned long kray_max_bytes = 1UL << 30;
module_param_named(max_bytes, kray_max_bytes, ulong, 0644);
MODULE_PARM_DESC(max_bytes, "bytes of objects the table may hold (default 1 GiB)");

unsigned int kray_max_objects = 65536;
module_param_named(max_objects, kray_max_objects, uint, 0644);
MODULE_PARM_DESC(max_objects, "objects the table may hold (default 65536)");

static const struct file_operations kray_fops;

static struct kray_sess *sess_new(void)
{
	struct kray_sess *s = kzalloc(sizeof(*s), GFP_KERNEL);

	if (s)
		INIT_LIST_HEAD(&s->daemons);
	return s;
}

static int kray_open(struct inode *inode, struct file *file)
{
	struct kray_sess *s = sess_new();

	if (!s)
		return -ENOMEM;
	file->private_data = s;
	return 0;
}

static int kray_release(struct inode *inode, struct file *file)
{
	struct kray_sess *s = file->private_data;

	kray_table_detach(s); /* the node's objects stay, as orphans */
	kfree(s);
	return 0;
}

/* Copies in an argument struct of len bytes whose first field is its size. */
static int args_in(void *dst, const void __user *src, size_t len)
{
	u32 size;

	if (copy_from_user(dst, src, len))
		return -EFAULT;
	memcpy(&size, dst, sizeof(size));
	return size == len ? 0 : -EINVAL;
}

static long ioc_version(void __user *uarg)
{
	struct kray_kmod_version v = { .size = sizeof(v), .abi = KRAY_KMOD_ABI };

	v.max_bytes = READ_ONCE(kray_max_bytes);
	v.max_objects = READ_ONCE(kray_max_objects);
	kray_table_stats(&v.used_bytes, &v.objects);
	return copy_to_user(uarg, &v, sizeof(v)) ? -EFAULT : 0;
}

static long ioc_attach(struct kray_sess *s, void __user *uarg)
{
	struct kray_kmod_attach a;
	int r = args_in(&a, uarg, sizeof(a));

	if (r)
		return r;
	if (a.flags || a.pad || !a.node)
		return -EINVAL;
	return kray_table_attach(s, a.node);
}

static long ioc_publish(struct kray_sess *s, void __user *uarg)
{
	struct kray_kmod_publish __user *ua = uarg;
	struct kray_kmod_publish a;
	int r = args_in(&a, uarg, sizeof(a));

	if (r)
		return r;
	if (a.flags || a.pad)
		return -EINVAL;
	/* The size goes back in the same struct: one that cannot be written fails before
	 * anything is published, and a copy that fails after (the caller unmapped it
	 * meanwhile) takes the publish back. */
	if (put_user(0ULL, &ua->ret_size))
		return -EFAULT;
	r = kray_table_publish(s, &a);
	if (r)
		return r;
	if (put_user(a.ret_size, &ua->ret_size)) {
		kray_table_withdraw(s, &a.oid, false);
		return -EFAULT;
	}
	return 0;
}

static long ioc_withdraw(struct kray_sess *s, void __user *uarg)
{
	struct kray_kmod_withdraw a;
	int r = args_in(&a, uarg, sizeof(a));

	if (r)
		return r;
	if (a.flags & ~KRAY_KMOD_WITHDRAW_IF_UNUSED)
		return -EINVAL;
	return kray_table_withdraw(s, &a.oid, a.flags & KRAY_KMOD_WITHDRAW_IF_UNUSED);
}

/* Installs file as a new close-on-exec fd once `out` (which names the fd) is copied to
 * the caller; on any failure the file is put and no fd is left.  Returns 0 or -errno. */
static int install_fd(struct file *file, s32 *fd_field, void __user *uarg, void *out, size_t len)
{
	int fd = get_unused_fd_flags(O_CLOEXEC);

	if (fd < 0) {
		fput(file);
		return fd;
	}
	*fd_field = fd;
	if (copy_to_user(uarg, out, len)) {
		put_unused_fd(fd);
		fput(file);
		return -EFAULT;
	}
	fd_install(fd, file);
	return 0;
}

static long ioc_get(struct kray_sess *s, void __user *uarg)
{
	struct kray_kmod_get a;
	struct file *memfd, *ro;
	int r = args_in(&a, uarg, sizeof(a));

	if (r)
		return r;
	if (a.flags || a.pad)
		return -EINVAL;
	r = kray_table_get(s, &a.oid, &memfd, &a.ret_size);
	if (r)
		return r;
	/* A file of its own on the memfd's inode, opened read-only whatever the daemon's
	 * was: the caller can neither write nor map it writable. */
	ro = dentry_open(&memfd->f_path, O_RDONLY | O_LARGEFILE, current_cred());
	fput(memfd);
	if (IS_ERR(ro))
		return PTR_ERR(ro);
	return install_fd(ro, &a.ret_fd, uarg, &a, sizeof(a));
}

static long ioc_wait(struct kray_sess *s, void __user *uarg)
{
	struct kray_kmod_wait a;
	struct kray_oid *ids;
	u8 *ready;
	long r = args_in(&a, uarg, sizeof(a));

	if (r)
		return r;
	if (a.flags || !a.n || !a.k || a.k > a.n || a.timeout_ms < -1)
		return -EINVAL;
	if (a.n > KRAY_KMOD_WAIT_MAX)
		return -E2BIG;
	ids = kvmalloc_array(a.n, sizeof(*ids), GFP_KERNEL);
	ready = kvzalloc(a.n, GFP_KERNEL);
	if (!ids || !ready) {
		r = -ENOMEM;
		goto out;
	}
	if (copy_from_user(ids, u64_to_user_ptr(a.ids), a.n * sizeof(*ids))) {
		r = -EFAULT;
		goto out;
	}
	/* The ready array must be writable before we sleep, not found bad afterwards. */
	if (copy_to_user(u64_to_user_ptr(a.ready), ready, a.n)) {
		r = -EFAULT;
		goto out;
	}
	r = kray_table_wait(s, ids, a.n, a.k, a.timeout_ms, ready);
	if (r != -EINTR && copy_to_user(u64_to_user_ptr(a.ready), ready, a.n))
		r = -EFAULT;
out:
	kvfree(ids);
	kvfree(ready);
	return r;
}

static long ioc_list(void __user *uarg)
{
	struct kray_kmod_list a;
	struct kray_kmod_entry *buf = NULL;
	int r = args_in(&a, uarg, sizeof(a));

	if (r)
		return r;
	if (a.flags || a.pad)
		return -EINVAL;
	if (a.max > KRAY_KMOD_LIST_MAX)
		return -E2BIG;
	if (a.max) {
		buf = kvcalloc(a.max, sizeof(*buf), GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
	}
	r = kray_table_list(a.node, buf, a.max, &a.ret_total);
	if (!r && a.max &&
	    copy_to_user(u64_to_user_ptr(a.entries), buf,
			 (size_t)min(a.max, a.ret_total) * sizeof(*buf)))
		r = -EFAULT;
	if (!r && copy_to_user(uarg, &a, sizeof(a)))
		r = -EFAULT;
	kvfree(buf);
	return r;
}

static long ioc_adopt(struct kray_sess *s, void __user *uarg)
{
	struct kray_kmod_adopt a;
	int r = args_in(&a, uarg, sizeof(a));

	if (r)
		return r;
	if (a.flags || !a.from_node)
		return -EINVAL;
	/* Fail on a struct that cannot take the count before anything moves. */
	if (put_user(0U, &((struct kray_kmod_adopt __user *)uarg)->ret_count))
		return -EFAULT;
	r = kray_table_adopt(s, a.from_node, &a.ret_count);
	if (r)
		return r;
	return copy_to_user(uarg, &a, sizeof(a)) ? -EFAULT : 0;
}

static long ioc_session(struct kray_sess *s, void __user *uarg)
{
	struct kray_kmod_session a;
	struct kray_sess *js;
	struct file *file;
	int r = args_in(&a, uarg, sizeof(a));

	if (r)
		return r;
	if (a.flags)
		return -EINVAL;
	/* role and node only change from NONE to DAEMON, once, so this read is stable. */
	if (READ_ONCE(s->role) != KRAY_SESS_DAEMON)
		return -EPERM;
	js = sess_new();
	if (!js)
		return -ENOMEM;
	js->role = KRAY_SESS_JOB;
	js->node = s->node;
	js->job = a.job;
	file = anon_inode_getfile("[kray-job]", &kray_fops, js, O_RDWR);
	if (IS_ERR(file)) {
		kfree(js);
		return PTR_ERR(file);
	}
	return install_fd(file, &a.ret_fd, uarg, &a, sizeof(a)); /* release frees js */
}

static long kray_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct kray_sess *s = file->private_data;
	void __user *uarg = (void __user *)arg;

	switch (cmd) {
	case KRAY_IOC_VERSION:
		return ioc_version(uarg);
	case KRAY_IOC_ATTACH:
		return ioc_attach(s, uarg);
	case KRAY_IOC_PUBLISH:
		return ioc_publish(s, uarg);
	case KRAY_IOC_WITHDRAW:
		return ioc_withdraw(s, uarg);
	case KRAY_IOC_GET:
		return ioc_get(s, uarg);
	case KRAY_IOC_WAIT:
		return ioc_wait(s, uarg);
	case KRAY_IOC_LIST:
		return ioc_list(uarg);
	case KRAY_IOC_ADOPT:
		return ioc_adopt(s, uarg);
	case KRAY_IOC_SESSION:
		return ioc_session(s, uarg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations kray_fops = {
	.owner = THIS_MODULE,
	.open = kray_open,
	.release = kray_release,
	.unlocked_ioctl = kray_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kray_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kray",
	.fops = &kray_fops,
	.mode = 0666, /* anyone may open it: every command checks its own permission */
};

static int __init kray_init(void)
{
	int r = misc_register(&kray_dev);

	if (r)
		return r;
	pr_info("kray: /dev/kray ready (abi %d, max_bytes %lu, max_objects %u)\n", KRAY_KMOD_ABI,
		kray_max_bytes, kray_max_objects);
	return 0;
}

static void __exit kray_exit(void)
{
	/* Every open file holds a module reference, so no session is left here: only the
	 * table's own references to the memfds, which go now.  Fds and mappings that
	 * processes got keep their objects' memory until they close them. */
	misc_deregister(&kray_dev);
	kray_table_fini();
}

module_init(kray_init);
module_exit(kray_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kray: a kernel table of sealed objects by id (/dev/kray)");
MODULE_AUTHOR("the kray authors");
