// SPDX-License-Identifier: Apache-2.0
/*
 * krayd's side of /dev/kray, the optional kernel object table (kmod/, docs/kmod.md).
 *
 * Where the module is loaded, krayd attaches to it as the daemon of its node and publishes
 * every large object it holds in memory (sealed memfds) under the object's id, readable by
 * krayd's own uid, so that a local client gets one in a single ioctl instead of a round
 * trip through this loop.  An object leaves the table before its memory does: when it is
 * freed, spilled or moved.  An object a reader still maps through the module is in use:
 * the spill path asks the module to withdraw it only if unused, and treats a refusal like
 * a pin.
 *
 * Everything here is best effort: without the module, or when a publish is refused
 * (the table is full, a hugetlb memfd), clients ask krayd over the socket as before.
 *
 * A krayd that dies leaves its objects in the table (the module keeps them, as orphans).
 * Their ids name a node and clients that died with it, so nothing can ask for them again:
 * the next krayd of the same uid adopts such orphans and withdraws them, so that a crash
 * does not leave memory held in the kernel.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../../include/uapi/kray_kmod.h"
#include "core/krayd.h"
#include "core/conn.h"
#include "core/store.h"
#include "core/proto.h"
#include "kmod/kmod.h"
#include "core/log.h"

/* Adopts and withdraws the orphans of dead krayds of this uid (as krayd publishes them:
 * scope uid = its own; root's LIST also shows other users', which are left alone).
 * Returns how many. */
static unsigned drop_orphans(struct krayd *d)
{
	struct kray_kmod_list l = { .size = sizeof(l) };
	struct kray_kmod_entry *e;
	unsigned dropped = 0;

	if (ioctl(d->kmod_fd, KRAY_IOC_LIST, &l) || !l.ret_total)
		return 0;
	l.max = l.ret_total < KRAY_KMOD_LIST_MAX ? l.ret_total : KRAY_KMOD_LIST_MAX;
	e = calloc(l.max, sizeof(*e));
	if (!e)
		return 0;
	l.entries = (uintptr_t)e;
	if (ioctl(d->kmod_fd, KRAY_IOC_LIST, &l)) {
		free(e);
		return 0;
	}
	if (l.ret_total < l.max)
		l.max = l.ret_total; /* some went since the count */
	for (uint32_t i = 0; i < l.max; i++) {
		struct kray_kmod_adopt a = { .size = sizeof(a), .from_node = e[i].node };

		if (!(e[i].flags & KRAY_KMOD_ENTRY_ORPHAN) || e[i].scope != KRAY_KMOD_SCOPE_UID ||
		    e[i].scope_id != geteuid())
			continue;
		/* One adopt takes all of a node's orphans; later entries of that node find
		 * their node gone (ret_count 0) and are withdrawn all the same. */
		if (e[i].node != d->node && ioctl(d->kmod_fd, KRAY_IOC_ADOPT, &a))
			continue; /* its krayd came back meanwhile */
		struct kray_kmod_withdraw w = { .size = sizeof(w), .oid = e[i].oid };

		if (!ioctl(d->kmod_fd, KRAY_IOC_WITHDRAW, &w))
			dropped++;
	}
	free(e);
	return dropped;
}

static int on_kmod_pin(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body);
/* Publishes a sealed large object in memory, so that local readers get it in one ioctl. */
static void kmod_publish(struct krayd *d, struct obj *o);
/* Withdraws o if published.  With if_unused, fails with -EBUSY (o stays published) while
 * a reader holds an fd or a mapping the module handed out.  Returns 0 or -EBUSY. */
static int kmod_withdraw(struct krayd *d, struct obj *o, bool if_unused);

static const struct ext kmod_ext = {
	.name = "kmod",
	.obj_published = kmod_publish,
	.obj_withdraw = kmod_withdraw,
};

void kmod_init(struct krayd *d)
{
	struct kray_kmod_version v = { 0 };
	struct kray_kmod_attach a = { .size = sizeof(a), .node = d->node };
	unsigned dropped;
	int fd;

	d->kmod_fd = -1;
	/* Always: each hook does nothing without the device. */
	proto_on(d, KRAY_MSG_KMOD_PIN, on_kmod_pin);
	ext_add(d, &kmod_ext);
	if (!d->cfg.kmod)
		return;
	fd = open(KRAY_KMOD_DEVICE, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
			log_debug("no %s: clients get objects through the socket",
				  KRAY_KMOD_DEVICE);
		else
			log_warn("%s: %s: clients get objects through the socket", KRAY_KMOD_DEVICE,
				 strerror(errno));
		return;
	}
	if (ioctl(fd, KRAY_IOC_VERSION, &v) || v.abi != KRAY_KMOD_ABI) {
		log_warn("%s speaks ABI %u, krayd %u: not used", KRAY_KMOD_DEVICE, v.abi,
			 KRAY_KMOD_ABI);
		close(fd);
		return;
	}
	if (ioctl(fd, KRAY_IOC_ATTACH, &a)) {
		log_warn("%s: cannot attach as node %08x: %s", KRAY_KMOD_DEVICE, d->node,
			 strerror(errno));
		close(fd);
		return;
	}
	d->kmod_fd = fd;
	dropped = drop_orphans(d);
	if (dropped)
		log_info("%s: withdrew %u objects left by krayds that died", KRAY_KMOD_DEVICE,
			 dropped);
	log_info("%s: publishing large objects (table: %llu of %llu bytes, %u objects)",
		 KRAY_KMOD_DEVICE, (unsigned long long)v.used_bytes,
		 (unsigned long long)v.max_bytes, v.objects);
}

static void kmod_publish(struct krayd *d, struct obj *o)
{
	struct kray_kmod_publish a = {
		.size = sizeof(a), .fd = o->fd, .scope = KRAY_KMOD_SCOPE_UID, .scope_id = geteuid()
	};

	if (d->kmod_fd < 0 || o->kmod || o->fd < 0)
		return;
	memcpy(&a.oid, &o->id, sizeof(a.oid));
	if (ioctl(d->kmod_fd, KRAY_IOC_PUBLISH, &a)) {
		/* ENOSPC (the table's max_bytes), EINVAL (a hugetlb memfd): readers of this
		 * one ask krayd. */
		log_debug("%s: object %u.%u.%u not published: %s", KRAY_KMOD_DEVICE, o->id.owner,
			  o->id.seq, o->id.index, strerror(errno));
		return;
	}
	o->kmod = true;
}

static int kmod_withdraw(struct krayd *d, struct obj *o, bool if_unused)
{
	struct kray_kmod_withdraw a = { .size = sizeof(a),
					.flags = if_unused ? KRAY_KMOD_WITHDRAW_IF_UNUSED : 0 };

	if (!o->kmod)
		return 0;
	memcpy(&a.oid, &o->id, sizeof(a.oid));
	if (ioctl(d->kmod_fd, KRAY_IOC_WITHDRAW, &a)) {
		if (errno == EBUSY)
			return -EBUSY;
		log_warn("%s: withdraw of %u.%u.%u: %s", KRAY_KMOD_DEVICE, o->id.owner, o->id.seq,
			 o->id.index, strerror(errno));
	}
	o->kmod = false;
	return 0;
}

static void kmod_pin(struct conn *c, const struct wire_oids *ids)
{
	for (uint32_t i = 0; i < ids->n; i++) {
		struct kray_oid id;
		struct obj *o;
		bool fresh;

		memcpy(&id, &ids->oids[i], sizeof(id));
		o = store_get(c->d, &id);
		/* Only what a get would have pinned: a large object in memory that c holds
		 * (the client only asks the module for those, so the rest is a no-op; its
		 * UNPIN later is ignored the same way). */
		if (!o || o->state != OBJ_READY || o->type != KRAY_WT_FD || o->fd < 0 ||
		    !oidmap_get(&c->refs, &id))
			continue;
		store_pin(c->d, o);
		(*oidmap_upsert(&c->pins, &id, &fresh))++;
	}
}

void kmod_fini(struct krayd *d)
{
	/* store_fini() withdrew every object; closing detaches this node. */
	if (d->kmod_fd >= 0)
		close(d->kmod_fd);
	d->kmod_fd = -1;
}

/* KMOD_PIN: c mapped these objects through /dev/kray; pin those it holds, as a get would. */
static int on_kmod_pin(struct conn *c, const struct kray_frame_hdr *h, const uint8_t *body)
{
	struct wire_oids ids;

	if (wire_dec_refs(body, h->len, &ids))
		return conn_fail(c, "malformed kmod pin", -EBADMSG);
	kmod_pin(c, &ids);
	return 0;
}
