// SPDX-License-Identifier: Apache-2.0
/*
 * The head's GCS log: every change to the named-actor and key-value tables, appended as
 * the frame a node would send for it (GCS_ACTOR, KV), so one codec reads both.  At start
 * the head replays the file in order; a torn last record (the head died mid-write) is
 * cut off and the file truncated to the last whole one.  Each record is written with one
 * write(2) on an O_APPEND descriptor and fdatasync()ed before the change is acknowledged:
 * the tables change rarely (actors are named, keys are put), so durability costs little.
 * The node table is not logged: nodes register again when they reconnect.
 *
 * Compaction: once the log holds twice as many records as it did after its last
 * compaction (and at least COMPACT_MIN), it is rewritten as the tables stand (one record
 * per name, key and job: gcs_snapshot()) into a new file that is fsync()ed and renamed
 * over the old one, so a head that dies at any point replays either log whole.  A key
 * put a million times then costs one record, not a million.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "core/log.h"

#define COMPACT_MIN 1024

static int gcs_log_open(struct krayd *d, gcs_apply_fn apply, gcs_snapshot_fn snapshot,
			gcs_durable_fn durable)
{
	struct cluster *cl = d->cl;
	struct stat st;
	uint8_t *buf = NULL;
	size_t off = 0, good = 0;
	int fd = open(d->cfg.gcs_log, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	(void)durable; /* every record is fdatasync()ed before its change is answered */
	d->cl->log_apply = apply;
	d->cl->log_snapshot = snapshot;
	cl->log_fd = -1;
	if (fd < 0 || fstat(fd, &st)) {
		log_err("gcs-log %s: %s", d->cfg.gcs_log, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	if (st.st_size) {
		buf = malloc((size_t)st.st_size);
		if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
			log_err("gcs-log %s: cannot read it", d->cfg.gcs_log);
			free(buf);
			close(fd);
			return -EIO;
		}
	}
	while (off + sizeof(struct kray_frame_hdr) <= (size_t)st.st_size) {
		struct kray_frame_hdr h;

		memcpy(&h, buf + off, sizeof(h));
		if (wire_check_hdr(&h, KRAY_KV_VALUE_MAX + 4096) ||
		    off + sizeof(h) + h.len > (size_t)st.st_size)
			break;
		if (d->cl->log_apply(d, h.type, buf + off + sizeof(h), h.len, false))
			break;
		off += sizeof(h) + h.len;
		good = off;
		cl->log_records++;
	}
	if (good < (size_t)st.st_size) {
		log_warn("gcs-log %s: %zu bytes after record %llu are not a whole record; cut off",
			 d->cfg.gcs_log, (size_t)st.st_size - good,
			 (unsigned long long)cl->log_records);
		if (ftruncate(fd, (off_t)good))
			log_warn("gcs-log: truncate: %s", strerror(errno));
	}
	free(buf);
	cl->log_fd = fd;
	cl->log_base = cl->log_records;
	if (cl->log_records)
		log_info("recovered %llu GCS records from %s", (unsigned long long)cl->log_records,
			 d->cfg.gcs_log);
	return 0;
}

/* Rewrites the log as the tables stand; on any failure the old log stays in use. */
static void compact(struct krayd *d)
{
	struct cluster *cl = d->cl;
	char tmp[PATH_MAX + 8], dir[PATH_MAX], *slash;
	struct kbuf b = { 0 };
	uint64_t n = d->cl->log_snapshot(d, &b);
	int fd, dfd;

	snprintf(tmp, sizeof(tmp), "%s.new", d->cfg.gcs_log);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) ||
	    rename(tmp, d->cfg.gcs_log)) {
		log_warn_ratelimited("gcs-log %s: cannot compact it (%s); it keeps growing",
				     d->cfg.gcs_log, strerror(errno));
		if (fd >= 0) {
			close(fd);
			unlink(tmp);
		}
		kbuf_free(&b);
		cl->log_base = cl->log_records; /* try again after as many more */
		return;
	}
	close(fd);
	/* The rename itself must be durable before records go into the new file. */
	snprintf(dir, sizeof(dir), "%s", d->cfg.gcs_log);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	dfd = open(slash ? (dir[0] ? dir : "/") : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	fd = open(d->cfg.gcs_log, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (fd < 0) {
		log_warn("gcs-log %s: reopening after compaction: %s", d->cfg.gcs_log,
			 strerror(errno));
	}
	close(cl->log_fd);
	cl->log_fd = fd;
	log_info("gcs-log %s: compacted %llu records into %llu (%zu bytes)", d->cfg.gcs_log,
		 (unsigned long long)cl->log_records, (unsigned long long)n, b.len);
	cl->log_records = cl->log_base = n;
	kbuf_free(&b);
}

static void gcs_log_append(struct krayd *d, uint16_t type, const void *body, size_t len)
{
	struct cluster *cl = d->cl;
	struct kbuf b = { 0 };

	if (cl->log_fd < 0)
		return;
	wire_frame(&b, type, 0, &WIRE_RAW(body, len), 1);
	if (write(cl->log_fd, b.data, b.len) != (ssize_t)b.len || fdatasync(cl->log_fd))
		log_warn_ratelimited("gcs-log %s: %s (the change holds until the head "
				     "restarts)",
				     d->cfg.gcs_log, strerror(errno));
	else
		cl->log_records++;
	kbuf_free(&b);
	if (cl->log_records >= COMPACT_MIN && cl->log_records >= 2 * cl->log_base)
		compact(d);
}

static void gcs_log_close(struct krayd *d)
{
	if (d->cl->log_fd >= 0)
		close(d->cl->log_fd);
	d->cl->log_fd = -1;
}

const struct gcs_store gcs_log_store = { .open = gcs_log_open,
					 .append = gcs_log_append,
					 .close = gcs_log_close };
