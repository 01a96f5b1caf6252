/*
 * Copying file data and metadata between open files. Data goes by reflink
 * when the file system can, otherwise extent by extent (SEEK_DATA/SEEK_HOLE)
 * with copy_file_range, falling back to pread/pwrite, so holes stay holes.
 * Metadata goes through *at(fd, "", AT_EMPTY_PATH) calls, which also work on
 * O_PATH fds and on symlinks.
 */
#include "lib/copy.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/xattr.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define COPY_BUFFER_SIZE (1u << 20)
#define COPY_SMALL_FILE (64 << 10)
/* copy_file_range takes a size_t but the kernel caps one call near 2 GiB anyway. */
#define COPY_CHUNK_MAX (1u << 30)

struct copy_state {
	int src_fd;
	int dst_fd;
	bool use_cfr; /* copy_file_range still worth trying */
	void *buf;    /* bounce buffer, allocated on first use */
};

/* Errors that mean "this way of copying is not available here", not "the copy failed". */
static bool is_unsupported(int r)
{
	return r == -EXDEV || r == -EOPNOTSUPP || r == -EINVAL || r == -ENOSYS || r == -ENOTTY ||
	       r == -EBADF;
}

static int write_all(int fd, const char *buf, size_t len, off_t off)
{
	while (len > 0) {
		ssize_t n = RET_NERRNO(pwrite(fd, buf, len, off));

		if (n < 0) {
			if (n == -EINTR)
				continue;
			return (int)n;
		}
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Copies [off, off + len) with pread/pwrite; returns bytes copied (short at EOF) or -errno. */
static int64_t copy_range_rw(struct copy_state *s, off_t off, uint64_t len)
{
	uint64_t done = 0;

	if (!s->buf) {
		s->buf = aligned_alloc(4096, COPY_BUFFER_SIZE);
		if (!s->buf)
			return -ENOMEM;
	}
	while (done < len) {
		size_t want = (size_t)MIN(len - done, (uint64_t)COPY_BUFFER_SIZE);
		ssize_t n = RET_NERRNO(pread(s->src_fd, s->buf, want, off + (off_t)done));
		int r;

		if (n == -EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? n : (int64_t)done;
		r = write_all(s->dst_fd, s->buf, (size_t)n, off + (off_t)done);
		if (r < 0)
			return r;
		done += (uint64_t)n;
	}
	return (int64_t)done;
}

/* Same with copy_file_range; gives up on it for good when the kernel cannot do it here. */
static int64_t copy_range_cfr(struct copy_state *s, off_t off, uint64_t len)
{
	uint64_t done = 0;
	int64_t rest;

	while (done < len) {
		loff_t in = off + (off_t)done, out = in;
		size_t want = (size_t)MIN(len - done, (uint64_t)COPY_CHUNK_MAX);
		ssize_t n = RET_NERRNO(copy_file_range(s->src_fd, &in, s->dst_fd, &out, want, 0));

		if (n == -EINTR)
			continue;
		/* Some file systems (procfs-like, some FUSE) say 0 instead of failing: read
		 * instead. */
		if ((n < 0 && is_unsupported((int)n)) || (n == 0 && done == 0)) {
			s->use_cfr = false;
			break;
		}
		if (n <= 0)
			return n < 0 ? n : (int64_t)done;
		done += (uint64_t)n;
	}
	if (done == len)
		return (int64_t)done;
	rest = copy_range_rw(s, off + (off_t)done, len - done);

	return rest < 0 ? rest : (int64_t)done + rest;
}

static int64_t copy_range(struct copy_state *s, off_t off, uint64_t len)
{
	if (s->use_cfr)
		return copy_range_cfr(s, off, len);
	return copy_range_rw(s, off, len);
}

/* Finds the next data extent at or after off: 1 with [*data, *hole), 0 when none, -errno. */
static int next_extent(int fd, off_t off, off_t size, off_t *data, off_t *hole)
{
	off_t d = lseek(fd, off, SEEK_DATA);

	if (d < 0) {
		if (errno == ENXIO)
			return 0;
		/* A file system without SEEK_DATA: treat the rest as data. */
		if (errno != EINVAL && errno != EOPNOTSUPP)
			return -errno;
		*data = off;
		*hole = size;
		return 1;
	}
	if (d >= size)
		return 0;
	*data = d;
	*hole = lseek(fd, d, SEEK_HOLE);
	if (*hole < 0)
		return -errno;
	*hole = MIN(*hole, size);
	return 1;
}

/* Copies [off, off + len): 1 when the source ended early (it shrank under us: so does dst). */
static int copy_data_range(struct copy_state *s, off_t off, off_t len)
{
	int64_t n = copy_range(s, off, (uint64_t)len);
	int r;

	if (n < 0)
		return (int)n;
	if (n == len)
		return 0;
	r = RET_NERRNO(ftruncate(s->dst_fd, off + n));
	return r < 0 ? r : 1;
}

/* Copies the data extents of src, so that holes stay holes. */
static int copy_sparse(struct copy_state *s, off_t size)
{
	off_t off = 0, data = 0, hole = 0;
	int r = 0;

	while (off < size && (r = next_extent(s->src_fd, off, size, &data, &hole)) > 0) {
		r = copy_data_range(s, data, hole - data);
		if (r != 0)
			return r < 0 ? r : 0;
		off = hole;
	}
	if (off < size && r < 0)
		return r;
	/* Extends dst over a trailing hole, which writing data alone would not do. */
	return hole == size ? 0 : RET_NERRNO(ftruncate(s->dst_fd, size));
}

static int copy_extents(struct copy_state *s, off_t size)
{
	off_t pos;
	int r;

	/* A hole in a small file is not worth four lseeks a copy: it is copied as zeros. */
	if (size <= COPY_SMALL_FILE) {
		r = copy_data_range(s, 0, size);
		return r < 0 ? r : 0;
	}
	/* SEEK_DATA/SEEK_HOLE move src's offset, which belongs to the caller. */
	pos = lseek(s->src_fd, 0, SEEK_CUR);
	if (pos < 0)
		return -errno;
	r = copy_sparse(s, size);
	if (lseek(s->src_fd, pos, SEEK_SET) < 0 && r == 0)
		r = -errno;
	return r;
}

static int copy_data_common(int src_fd, int dst_fd, bool reflink, bool use_cfr)
{
	struct copy_state s = {.src_fd = src_fd, .dst_fd = dst_fd, .use_cfr = use_cfr};
	struct stat st;
	int r;

	if (fstat(src_fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (reflink) {
		r = RET_NERRNO(ioctl(dst_fd, FICLONE, src_fd));
		if (r == 0 || !is_unsupported(r))
			return r;
	}
	r = copy_extents(&s, st.st_size);
	free(s.buf);
	return r;
}

int copy_data(int src_fd, int dst_fd)
{
	return copy_data_common(src_fd, dst_fd, true, true);
}

/* copy_file_range() reflinks by itself where it can (btrfs, XFS), so it is left out here. */
int copy_data_no_reflink(int src_fd, int dst_fd)
{
	return copy_data_common(src_fd, dst_fd, false, false);
}

static int copy_times(int dst_fd, const struct stat *st)
{
	const struct timespec ts[2] = {st->st_atim, st->st_mtim};

	/* On a symlink's O_PATH fd this sets the link's own times (lutimes). */
	return RET_NERRNO(utimensat(dst_fd, "", ts, AT_EMPTY_PATH));
}

int copy_metadata(int src_fd, int dst_fd, const struct stat *st, unsigned flags)
{
	return copy_metadata_skip(src_fd, dst_fd, st, flags, NULL);
}

int copy_metadata_skip(int src_fd, int dst_fd, const struct stat *st, unsigned flags,
		       bool (*skip_xattr)(const char *name))
{
	struct stat own;
	int r;

	if (!st) {
		if (fstatat(src_fd, "", &own, AT_EMPTY_PATH) < 0)
			return -errno;
		st = &own;
	}
	/* chown clears setuid/setgid and security.capability, so it comes first. */
	if (flags & COPY_META_OWNER) {
		r = RET_NERRNO(fchownat(dst_fd, "", st->st_uid, st->st_gid, AT_EMPTY_PATH));
		if (r < 0)
			return r;
	}
	if ((flags & COPY_META_MODE) && !S_ISLNK(st->st_mode)) {
		r = path_fd_chmod(dst_fd, st->st_mode & 07777);
		if (r < 0)
			return r;
	}
	if (flags & COPY_META_XATTRS) {
		r = xattr_copy_all(src_fd, dst_fd, skip_xattr);
		if (r < 0)
			return r;
	}
	/* Last: every change above bumps ctime, and some file systems mtime too. */
	if (flags & COPY_META_TIMES)
		return copy_times(dst_fd, st);
	return 0;
}
