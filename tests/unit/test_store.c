// SPDX-License-Identifier: Apache-2.0
/*
 * The object table and large objects of krayd's core (daemon/core/store.c, store_large.c,
 * store_mem.c), without a daemon around them: waiters, reference counting, nested refs,
 * pins, the hooks the store calls, memfds written, sealed and spilled for real.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "core.h"

static struct kray_oid oid(uint32_t seq, uint32_t index)
{
	return (struct kray_oid){ .node = 7, .owner = 1, .seq = seq, .index = index };
}

static void seal_int(struct obj *o, int64_t v)
{
	struct wire_value val = { .type = KRAY_WT_INT64, .scalar = (uint64_t)v };

	store_seal(&d, o, &val);
}

static struct {
	unsigned calls;
	bool ready_when_called;
	struct obj *o;
} woken[2];

static void on_ready(struct krayd *k, void *arg, struct obj *o)
{
	unsigned i = (unsigned)(uintptr_t)arg;

	(void)k;
	woken[i].calls++;
	woken[i].ready_when_called = o->state == OBJ_READY;
	woken[i].o = o;
}

TestSuite(store, .init = NULL, .fini = core_teardown, .timeout = 30);

Test(store, waiters_run_once_when_sealed)
{
	struct kray_oid id = oid(1, 0);
	struct obj *o;

	core_setup(NULL);
	memset(woken, 0, sizeof(woken));
	o = store_create(&d, &id);
	cr_assert_not_null(o);
	cr_assert_null(store_create(&d, &id), "an id is created once");
	store_ref(o);
	store_wait(&d, o, on_ready, (void *)0);
	store_wait(&d, o, on_ready, (void *)1);
	cr_assert_eq(woken[0].calls + woken[1].calls, 0, "nothing runs before the seal");
	seal_int(o, 42);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(woken[i].calls, 1);
		cr_assert(woken[i].ready_when_called);
		cr_assert_eq(woken[i].o, o);
	}
	cr_assert_eq(o->type, KRAY_WT_INT64);
	cr_assert_eq(o->scalar, 42);
	seal_int(o, 43); /* a late duplicate result */
	cr_assert_eq(o->scalar, 42, "a sealed object is immutable");
	cr_assert_eq(woken[0].calls, 1, "waiters run once");
	store_unref(&d, o);
}

Test(store, unreferenced_objects_are_freed_when_ready)
{
	struct kray_oid a = oid(2, 0), b = oid(3, 0);
	struct obj *o;

	core_setup(NULL);
	o = store_create(&d, &a);
	store_ref(o);
	seal_int(o, 1);
	cr_assert_eq(d.st.objects, 1);
	store_unref(&d, o);
	cr_assert_null(store_get(&d, &a), "the last reference frees it");
	cr_assert_eq(d.st.objects, 0);

	/* A pending object nobody holds stays until its task seals it, then goes. */
	o = store_create(&d, &b);
	store_ref(o);
	store_unref(&d, o);
	cr_assert_eq(store_get(&d, &b), o, "pending objects are never freed");
	seal_int(o, 2);
	cr_assert_null(store_get(&d, &b), "an unreferenced result is dropped at its seal");
}

Test(store, nested_refs_live_as_long_as_their_container)
{
	struct kray_oid in_id = oid(4, 0), out_id = oid(5, 0);
	struct obj *in, *out;
	struct wire_value v = {
		.type = KRAY_WT_BYTES, .data = "x", .len = 1, .nrefs = 1, .refs = &in_id
	};

	core_setup(NULL);
	in = store_create(&d, &in_id);
	store_ref(in);
	seal_int(in, 9);
	out = store_create(&d, &out_id);
	store_ref(out);
	store_seal(&d, out, &v);
	cr_assert_eq(out->ncontained, 1);
	cr_assert_eq(in->refs, 2, "the container holds what it contains");
	store_unref(&d, in); /* its creator lets go */
	cr_assert_eq(store_get(&d, &in_id), in, "kept alive by the container");
	store_unref(&d, out);
	cr_assert_null(store_get(&d, &out_id));
	cr_assert_null(store_get(&d, &in_id), "freed with its container");
}

Test(store, pins_keep_an_object_and_an_actor_handle_says_when_it_goes)
{
	struct kray_oid id = oid(6, 0), actor = oid(7, KRAY_OID_ACTOR);
	struct obj *o, *h;

	core_setup(NULL);
	o = store_create(&d, &id);
	store_ref(o);
	seal_int(o, 3);
	store_pin(&d, o);
	cr_assert_eq(d.st.objects_pinned, 1);
	store_unref(&d, o);
	cr_assert_eq(store_get(&d, &id), o, "a view keeps it");
	store_unpin(&d, o);
	cr_assert_null(store_get(&d, &id));
	cr_assert_eq(d.st.objects_pinned, 0);

	h = store_create(&d, &actor);
	store_ref(h);
	seal_int(h, 0);
	cr_assert_eq(probe.handles_gone, 0);
	store_unref(&d, h);
	cr_assert_eq(probe.handles_gone, 1, "the core is told the last handle went");
	cr_assert(oid_eq(&probe.last_handle, &actor));
}

static void fill(int fd, size_t size, uint8_t seed)
{
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	cr_assert_neq(p, MAP_FAILED);
	for (size_t i = 0; i < size; i++)
		p[i] = (uint8_t)(seed + i * 7);
	munmap(p, size);
}

static bool same(int fd, size_t size, uint8_t seed)
{
	uint8_t *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	bool ok = true;

	cr_assert_neq(p, MAP_FAILED);
	for (size_t i = 0; i < size && ok; i++)
		ok = p[i] == (uint8_t)(seed + i * 7);
	munmap(p, size);
	return ok;
}

Test(store, large_objects_are_written_sealed_published_and_withdrawn)
{
	struct kray_oid id = oid(8, KRAY_OID_PUT);
	struct conn *c;
	struct obj *o;
	int fd = -1;
	size_t size = (1u << 20) + 3;

	core_setup(NULL);
	c = core_client();
	cr_assert_eq(store_create_large(c, &id, size, &fd, NULL), 0);
	fill(fd, size, 5);
	close(fd);
	cr_assert_eq(store_seal_large(c, &id), 0);
	o = store_get(&d, &id);
	cr_assert_eq(o->state, OBJ_READY);
	cr_assert_eq(o->type, KRAY_WT_FD);
	cr_assert_eq(o->size, size);
	cr_assert_eq(fcntl(o->fd, F_GET_SEALS) & STORE_SEALS, STORE_SEALS, "sealed for good");
	cr_assert(same(o->fd, size, 5));
	cr_assert_eq(probe.published, 1, "the parts hear of it (/dev/kray)");
	cr_assert_eq(d.st.store_bytes, size);
	cr_assert_eq(store_seal_large(c, &id), -ENOENT, "sealed once");
	store_conn_unref(c, &id);
	cr_assert_null(store_get(&d, &id));
	cr_assert_eq(probe.withdrawn, 1, "withdrawn before its memory goes");
	cr_assert_eq(d.st.store_bytes, 0);
	core_client_free(c);
}

Test(store, a_writer_that_still_maps_it_writable_gets_an_error_object)
{
	struct kray_oid id = oid(9, KRAY_OID_PUT);
	struct conn *c;
	struct obj *o;
	void *w;
	int fd = -1;

	core_setup(NULL);
	c = core_client();
	cr_assert_eq(store_create_large(c, &id, 1 << 20, &fd, NULL), 0);
	w = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(w, MAP_FAILED);
	cr_assert_eq(store_seal_large(c, &id), 0);
	o = store_get(&d, &id);
	cr_assert_eq(o->state, OBJ_READY);
	cr_assert_eq(o->type, KRAY_WT_ERROR, "never a half-written object");
	cr_assert_eq(o->err, KRAY_WE_INTERNAL);
	cr_assert(memmem(o->data, o->len, "writable", 8), "says why: %.*s", (int)o->len,
		  (char *)o->data);
	munmap(w, 1 << 20);
	close(fd);
	core_client_free(c);
}

/* pool-reuse (store_reuse.c): n objects of size written with seeds seed.. and sealed. */
static void make_sealed(struct conn *c, uint32_t seq, unsigned n, size_t size, uint8_t seed)
{
	for (unsigned i = 0; i < n; i++) {
		struct kray_oid id = oid(seq + i, KRAY_OID_PUT);
		int fd = -1;

		cr_assert_eq(store_create_large(c, &id, size, &fd, NULL), 0);
		fill(fd, size, (uint8_t)(seed + i));
		close(fd);
		cr_assert_eq(store_seal_large(c, &id), 0);
		cr_assert_eq(store_get(&d, &id)->type, KRAY_WT_FD);
	}
}

static const char *const reuse_flags[] = { "--pool-size", "64M", NULL };

Test(store, reuse_seals_with_a_read_only_open_and_takes_the_memory_back)
{
	struct kray_oid id = oid(20, KRAY_OID_PUT);
	size_t size = 4u << 20;
	struct conn *c;
	struct obj *o;
	void *p;
	int fd = -1, mem;

	core_setup((const char *const *)reuse_flags);
	c = core_client();
	cr_assert_eq(store_create_large(c, &id, size, &fd, NULL), 0);
	cr_assert_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR, "the writer writes");
	fill(fd, size, 3);
	close(fd);
	cr_assert_eq(store_seal_large(c, &id), 0);
	o = store_get(&d, &id);
	cr_assert_eq(o->type, KRAY_WT_FD);
	cr_assert_geq(o->mem, 0, "sealed for reuse");
	cr_assert_eq(fcntl(o->fd, F_GETFL) & O_ACCMODE, O_RDONLY, "readers get a read-only open");
	cr_assert_eq(fcntl(o->fd, F_GET_SEALS) & F_SEAL_WRITE, 0);
	/* Nothing a reader can do with it writes: */
	cr_assert_eq(mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, o->fd, 0), MAP_FAILED);
	cr_assert_eq(write(o->fd, "x", 1), -1);
	cr_assert_eq(ftruncate(o->fd, 1), -1);
	cr_assert_eq(fcntl(o->fd, F_ADD_SEALS, F_SEAL_WRITE), -1, "nor seal it for good");
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, o->fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(mprotect(p, size, PROT_READ | PROT_WRITE), -1);
	munmap(p, size);
	cr_assert(same(o->fd, size, 3));
	mem = o->mem;
	store_conn_unref(c, &id);
	cr_assert_null(store_get(&d, &id));
	cr_assert_eq(pool_given(d.pool), size, "its memory went back to the pool");
	cr_assert_geq(pool_bytes(d.pool), size);
	/* One of the next two creates of its size (the pool may hold a refill beside it) gets
	 * that memory, as it was. */
	for (uint32_t seq = 21; seq < 23 && mem >= 0; seq++) {
		bool filled = false;

		id = oid(seq, KRAY_OID_PUT);
		cr_assert_eq(store_create_large(c, &id, size, &fd, &filled), 0);
		o = store_get(&d, &id);
		if (o->fd == mem) {
			/* (and the writer is told: KRAY_CREATE_FILLED) */
			cr_assert(filled, "reused memory was not said to be filled");
			cr_assert(same(fd, size, 3), "not zeroed again");
			mem = -1;
		}
		fill(fd, size, 9);
		close(fd);
		cr_assert_eq(store_seal_large(c, &id), 0);
		cr_assert(same(o->fd, size, 9));
	}
	cr_assert_eq(mem, -1, "the memfd was not reused");
	core_client_free(c);
}

Test(store, reuse_keeps_memory_that_a_reader_still_maps)
{
	struct kray_oid id = oid(30, KRAY_OID_PUT);
	size_t size = 2u << 20;
	struct conn *c;
	struct obj *o;
	uint8_t *p;
	int fd;

	core_setup((const char *const *)reuse_flags);
	c = core_client();
	make_sealed(c, 30, 1, size, 4);
	o = store_get(&d, &id);
	/* A reader that maps it and closed its descriptor, and unpinned (or never said). */
	fd = fcntl(o->fd, F_DUPFD_CLOEXEC, 3);
	p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	cr_assert_neq(p, MAP_FAILED);
	close(fd);
	store_conn_unref(c, &id);
	cr_assert_null(store_get(&d, &id));
	cr_assert_eq(pool_given(d.pool), 0, "a mapping holds it: not taken back");
	/* New objects of its size never land in it. */
	make_sealed(c, 31, 3, size, 40);
	for (size_t i = 0; i < size; i++)
		cr_assert_eq(p[i], (uint8_t)(4 + i * 7), "byte %zu of the mapped object changed",
			     i);
	munmap(p, size);
	/* Once nobody maps them, freed objects go back. */
	for (uint32_t s = 31; s < 34; s++)
		store_conn_unref(c, &(struct kray_oid){ 7, 1, s, KRAY_OID_PUT });
	cr_assert_eq(pool_given(d.pool), 3 * size);
	core_client_free(c);
}

Test(store, reuse_refuses_a_writer_that_still_holds_its_descriptor)
{
	struct kray_oid id = oid(40, KRAY_OID_PUT);
	struct conn *c;
	struct obj *o;
	int fd = -1;

	core_setup((const char *const *)reuse_flags);
	c = core_client();
	cr_assert_eq(store_create_large(c, &id, 1 << 20, &fd, NULL), 0);
	fill(fd, 1 << 20, 1);
	cr_assert_eq(store_seal_large(c, &id), 0, "(fd still open: it could write on)");
	o = store_get(&d, &id);
	cr_assert_eq(o->type, KRAY_WT_ERROR, "never an object its writer can still change");
	cr_assert(memmem(o->data, o->len, "writable", 8), "says why: %.*s", (int)o->len,
		  (char *)o->data);
	close(fd);
	core_client_free(c);
}

static void expect_sealed_for_good(const char *const *flags, uint32_t seq, size_t size)
{
	struct kray_oid id = oid(seq, KRAY_OID_PUT);
	struct conn *c;
	struct obj *o;

	core_setup(flags);
	c = core_client();
	make_sealed(c, seq, 1, size, 1);
	o = store_get(&d, &id);
	cr_assert_eq(o->mem, -1);
	cr_assert_eq(fcntl(o->fd, F_GET_SEALS) & STORE_SEALS, STORE_SEALS);
	core_client_free(c);
}

Test(store, reuse_off_seals_for_good)
{
	const char *flags[] = { "--pool-size", "64M", "--pool-reuse", "off", NULL };

	expect_sealed_for_good(flags, 50, 4u << 20);
}

Test(store, reuse_leaves_objects_under_1m_sealed_for_good)
{
	expect_sealed_for_good((const char *const *)reuse_flags, 51, (1u << 20) - 1);
}

Test(store, a_full_store_spills_and_restores_byte_for_byte)
{
	const char *flags[] = { "--store-size", "8M", NULL };
	struct kray_oid a = oid(10, KRAY_OID_PUT), b = oid(11, KRAY_OID_PUT);
	size_t size = 5u << 20;
	struct obj *oa, *ob;
	struct conn *c;
	struct stat st;
	int fd;

	core_setup(flags);
	c = core_client();
	cr_assert_eq(store_create_large(c, &a, size, &fd, NULL), 0);
	fill(fd, size, 1);
	close(fd);
	cr_assert_eq(store_seal_large(c, &a), 0);
	cr_assert_eq(store_create_large(c, &b, size, &fd, NULL), 0, "room is made by spilling a");
	oa = store_get(&d, &a);
	cr_assert(oa->spilled);
	cr_assert_eq(oa->fd, -1);
	cr_assert_eq(d.st.objects_spilled, 1);
	cr_assert_eq(stat(d.cfg.spill_dir, &st), 0, "the spill directory exists");
	fill(fd, size, 2);
	close(fd);
	cr_assert_eq(store_seal_large(c, &b), 0);
	cr_assert_eq(store_restore(&d, oa), 0, "b is spilled in turn");
	ob = store_get(&d, &b);
	cr_assert(!oa->spilled);
	cr_assert(ob->spilled);
	cr_assert(same(oa->fd, size, 1), "a came back as it was written");
	cr_assert_eq(store_restore(&d, ob), 0);
	cr_assert(same(ob->fd, size, 2));
	store_pin(&d, ob); /* mapped by a reader: it cannot go to disk now */
	cr_assert_eq(store_restore(&d, oa), -ENOSPC, "a does not fit beside b, which is in use");
	cr_assert(oa->spilled);
	store_unpin(&d, ob);
	cr_assert_eq(store_restore(&d, oa), 0);
	cr_assert(same(oa->fd, size, 1));
	core_client_free(c);
	cr_assert_eq(d.st.objects_spilled, 0, "spill files go with their objects");
}
