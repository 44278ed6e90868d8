// SPDX-License-Identifier: Apache-2.0
/*
 * Writing large objects: CREATE gets the writer a descriptor of the object's memfd from
 * krayd, the bytes go in, and SEAL hands the object over (immutable from then on).
 *
 * A caller that writes in place (kray_create) maps the memfd.  A put of bytes the caller
 * already has (kray_put, a large return, Python's pickled values) writes them with
 * pwritev(2) where that is faster: into memory that exists (krayd's pool pre-faulted it,
 * or it held an earlier object), the kernel copies straight into its pages, with no new
 * mapping to set up and tear down (docs/objects.md, "Writing without a mapping").
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "client.h"
#include "../common/hugemap.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#define WRITE_IOV 64 /* pieces per pwritev() */

static const struct kray_oid *oid(const kray_ref *r)
{
	return (const struct kray_oid *)r;
}

/* Prefers the NUMA node this thread runs on for pages the object does not have yet
 * (a no-op on one node; pooled pages are already placed by krayd). */
static void bind_local(void *p, size_t size)
{
	static int nodes = -1;
	unsigned long mask;
	int node;

	if (nodes < 0)
		nodes = numa_available() < 0 ? 0 : numa_max_node() + 1;
	if (nodes <= 1 || nodes > (int)(8 * sizeof(mask)))
		return;
	node = numa_node_of_cpu(sched_getcpu());
	if (node < 0)
		return;
	mask = 1ul << node;
	mbind(p, size, MPOL_PREFERRED, &mask, sizeof(mask) * 8, MPOL_MF_MOVE);
}

/* The CREATE round trip of a new object of size bytes: its ref, the writer's descriptor
 * (*ret_fd, the caller's to close), the memfd's length (a hugetlb one is rounded up to
 * whole pages) and the reply's KRAY_CREATE_* flags. */
static int create_fd(struct kray *k, size_t size, kray_ref *ret_ref, int *ret_fd,
		     size_t *ret_maplen, uint32_t *ret_flags)
{
	struct kray_msg_create m = { .size = size };
	struct kray_msg_create_reply rep;
	struct kray_frame_hdr h;
	const uint8_t *body;
	uint64_t req = ++k->next_req;
	struct stat st;
	size_t off;
	int r, fd, *fds;

	m.oid = (struct kray_oid){ k->node, k->client, ++k->next_seq, KRAY_OID_PUT };
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_CREATE, req, WIRE_FIXED(m));
	if ((r = kc_end(k, off)))
		return r;
	r = kc_wait(k, KRAY_MSG_CREATE_REPLY, req, &h, &body);
	if (r)
		return r;
	if (wire_dec_fixed(body, h.len, &rep, sizeof(rep)) ||
	    KRAY_FRAME_NFDS(h.flags) != (rep.status ? 0u : 1u)) {
		kc_consume(k, &h);
		k->broken = true;
		return kc_fail(k, -EBADMSG, "malformed create reply from krayd");
	}
	if (rep.status) {
		kc_consume(k, &h);
		return kc_fail(k, rep.status, "cannot create an object of %zu bytes: %s", size,
			       rep.status == -ENOSPC ? "the object store is full and nothing more "
						       "can be spilled (every object is mapped, or "
						       "the spill directory is full)" :
			       rep.status == -EFBIG  ? "larger than the largest object (1 TiB)" :
						       strerror(-rep.status));
	}
	fds = kc_frame_fds(k, &h);
	fd = fds[0];
	fds[0] = -1;
	kc_consume(k, &h);
	if (fstat(fd, &st) || (uint64_t)st.st_size < size) {
		close(fd);
		return kc_fail(k, -EBADMSG, "krayd sent a memfd smaller than the object");
	}
	memcpy(ret_ref, &m.oid, sizeof(*ret_ref));
	*ret_fd = fd;
	*ret_maplen = (size_t)st.st_size;
	*ret_flags = rep.flags;
	return 0;
}

/* Maps the writer's memfd, its pages faulted in, or MAP_FAILED with errno set. */
static void *map_writer(int fd, size_t maplen, uint32_t flags)
{
	/* In huge pages where krayd says so (its thp setting): the pool pre-faulted them, and
	 * a 2 MiB-aligned mapping maps them whole. */
	void *p = kray_map_huge(fd, maplen, PROT_READ | PROT_WRITE, 0, flags & KRAY_CREATE_HUGE);

	if (p == MAP_FAILED)
		return p;
	bind_local(p, maplen);
	/* One batched fault pass instead of a fault per page while the caller writes. */
	madvise(p, maplen, MADV_POPULATE_WRITE);
	return p;
}

int kc_create(struct kray *k, size_t size, kray_ref *ret_ref, void **ret_data)
{
	struct view *vw;
	size_t maplen;
	uint32_t flags;
	uint64_t *slot;
	kray_ref id;
	int r, fd;
	void *p;
	bool fresh;

	if ((r = create_fd(k, size, &id, &fd, &maplen, &flags)))
		return r;
	p = map_writer(fd, maplen, flags);
	if (p == MAP_FAILED) {
		r = -errno;
		close(fd);
		return kc_fail(k, r, "mmap of a new object: %s", strerror(-r));
	}
	slot = oidmap_upsert(&k->writing, oid(&id), &fresh);
	vw = slot ? calloc(1, sizeof(*vw)) : NULL;
	if (!vw) {
		/* krayd drops the unsealed object when this connection closes. */
		if (slot)
			oidmap_del(&k->writing, oid(&id));
		munmap(p, maplen);
		close(fd);
		return kc_fail(k, -ENOMEM, "out of memory creating an object");
	}
	*vw = (struct view){ .kind = MEM_VIEW,
			     .k = k,
			     .id = id,
			     .addr = p,
			     .size = size,
			     .maplen = maplen,
			     .fd = fd };
	*slot = (uint64_t)(uintptr_t)vw;
	*ret_ref = id;
	*ret_data = p;
	kc_hold(k, ret_ref, 1);
	return 0;
}

KRAY_EXPORT int kray_create(struct kray *k, size_t size, kray_ref *ret_ref, void **ret_data)
{
	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	if (!ret_ref || !ret_data)
		return kc_fail(k, -EINVAL, "kray_create needs ret_ref and ret_data");
	if (size > KRAY_OBJECT_MAX)
		return kc_fail(k, -EFBIG, "objects are at most %llu bytes",
			       (unsigned long long)KRAY_OBJECT_MAX);
	if (size <= k->inline_max) {
		/* Small: a heap buffer, sent inline by kray_seal(). */
		struct view *vw = calloc(1, sizeof(*vw));
		uint64_t *slot = NULL;
		bool fresh;

		if (!vw || !(vw->addr = malloc(size ? size : 1)) ||
		    !(slot = oidmap_upsert(
			      &k->writing,
			      oid(&(kray_ref){ k->node, k->client, k->next_seq + 1, KRAY_OID_PUT }),
			      &fresh))) {
			if (vw)
				free(vw->addr);
			free(vw);
			return kc_fail(k, -ENOMEM, "out of memory creating an object");
		}
		vw->kind = MEM_HEAP;
		vw->size = size;
		vw->fd = -1;
		vw->id = (kray_ref){ k->node, k->client, ++k->next_seq, KRAY_OID_PUT };
		*slot = (uint64_t)(uintptr_t)vw;
		*ret_ref = vw->id;
		*ret_data = vw->addr;
		return 0;
	}
	return kc_create(k, size, ret_ref, ret_data);
}

/* Queues the SEAL of large object ref (which contains nrefs refs).  0 or -ENOMEM. */
static int seal_frame(struct kray *k, const kray_ref *ref, const kray_ref *refs, uint16_t nrefs)
{
	struct kray_msg_seal m;
	size_t off;

	memcpy(&m.oid, ref, sizeof(m.oid));
	/* The refs it contains follow: krayd keeps them alive with it. */
	off = WIRE_FRAME_OPEN(&k->out, KRAY_MSG_SEAL, 0, WIRE_FIXED(m),
			      WIRE_RAW(refs, (size_t)nrefs * sizeof(*refs)));
	return kc_end(k, off);
}

int kc_seal_refs(struct kray *k, const kray_ref *ref, const kray_ref *refs, uint16_t nrefs)
{
	uint64_t *slot = ref ? oidmap_get(&k->writing, oid(ref)) : NULL;
	struct view *vw;

	if (!slot)
		return kc_fail(k, -ENOENT, "kray_seal: not an object this process is creating");
	vw = (struct view *)(uintptr_t)*slot;
	/* Out of memory queuing the frame leaves the object being created: seal it again. */
	if (vw->kind == MEM_HEAP) {
		kray_value v = KRAY_V_BYTES(vw->addr, vw->size);

		if (kc_put_inline(k, ref, &v, refs, nrefs))
			return -ENOMEM;
		oidmap_del(&k->writing, oid(ref));
		free(vw->addr);
		free(vw);
		return k->broken ? kc_fail(k, -EPIPE, "the connection to krayd is broken") : 0;
	}
	/* Let go first: krayd's seal (F_SEAL_WRITE, or a write lease) fails while the writer
	 * still maps the memfd or holds its descriptor. */
	if (vw->fd >= 0) {
		munmap(vw->addr, vw->maplen);
		close(vw->fd);
		vw->fd = -1;
	}
	if (seal_frame(k, ref, refs, nrefs))
		return -ENOMEM;
	oidmap_del(&k->writing, oid(ref));
	free(vw);
	return k->broken ? kc_fail(k, -EPIPE, "the connection to krayd is broken") : 0;
}

KRAY_EXPORT int kray_seal(struct kray *k, const kray_ref *ref)
{
	return kc_seal_refs(k, ref, NULL, 0);
}

void kc_gather(void *dst, const struct iovec *iov, size_t n)
{
	for (size_t i = 0, at = 0; i < n; at += iov[i++].iov_len)
		if (iov[i].iov_len) /* (an empty piece may have no base) */
			memcpy((char *)dst + at, iov[i].iov_base, iov[i].iov_len);
}

/* Writes the n pieces of iov one after the other from the start of fd.  0 or -errno. */
static int write_all(int fd, const struct iovec *iov, size_t n)
{
	struct iovec v[WRITE_IOV];
	size_t i = 0, done = 0; /* iov[i] has its first done bytes written */
	off_t at = 0;

	for (;;) {
		size_t m = 0;
		ssize_t w;

		while (i < n && iov[i].iov_len == done) {
			i++;
			done = 0;
		}
		if (i == n)
			return 0;
		for (size_t j = i; j < n && m < WRITE_IOV; j++)
			v[m++] = iov[j];
		v[0].iov_base = (char *)v[0].iov_base + done;
		v[0].iov_len -= done;
		w = pwritev(fd, v, (int)m, at);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		at += w;
		for (size_t left = (size_t)w; left && i < n;) {
			size_t piece = iov[i].iov_len - done;

			if (left < piece) {
				done += left;
				break;
			}
			left -= piece;
			i++;
			done = 0;
		}
	}
}

int kc_put_large(struct kray *k, const struct iovec *iov, size_t n, const kray_ref *refs,
		 uint16_t nrefs, kray_ref *ret_ref)
{
	size_t size = 0, maplen;
	uint32_t flags;
	kray_ref id;
	bool by_write;
	int r, fd;
	void *p;

	for (size_t i = 0; i < n; i++)
		size += iov[i].iov_len;
	if ((r = create_fd(k, size, &id, &fd, &maplen, &flags)))
		return r;
	/* Written without a mapping into memory that exists, and where krayd has no huge
	 * pages to lose (write(2) allocates 4 KiB pages: faster than a fault each).  A
	 * hugetlb memfd refuses write(2): mapped instead. */
	by_write = (flags & KRAY_CREATE_FILLED) || !(flags & KRAY_CREATE_HUGE);
	if (!by_write || write_all(fd, iov, n)) {
		p = map_writer(fd, maplen, flags);
		if (p == MAP_FAILED) {
			r = -errno;
			close(fd);
			return kc_fail(k, r, "mmap of a new object: %s", strerror(-r));
		}
		kc_gather(p, iov, n);
		munmap(p, maplen);
	}
	close(fd);
	/* Out of memory queuing the seal: krayd drops the object with this connection. */
	if (seal_frame(k, &id, refs, nrefs))
		return kc_fail(k, -ENOMEM, "out of memory sealing an object");
	if (k->broken)
		return kc_fail(k, -EPIPE, "the connection to krayd is broken");
	*ret_ref = id;
	kc_hold(k, ret_ref, 1);
	return 0;
}
