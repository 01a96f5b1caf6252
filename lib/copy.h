/* Copying file data and metadata between open files. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Copies all data of src_fd to dst_fd (both regular files, dst empty):
 * FICLONE first, then copy_file_range, then read/write; holes are kept with
 * SEEK_DATA/SEEK_HOLE so a sparse file stays sparse. dst gets src's size.
 * Returns 0 or -errno.
 */
int copy_data(int src_fd, int dst_fd);

/*
 * Same, but without FICLONE (for callers that must own distinct blocks). Also without
 * copy_file_range, which reflinks on its own on btrfs and XFS: pread/pwrite only.
 */
int copy_data_no_reflink(int src_fd, int dst_fd);

enum copy_meta_flags {
	COPY_META_MODE = 1 << 0,
	COPY_META_OWNER = 1 << 1,
	COPY_META_TIMES = 1 << 2,
	COPY_META_XATTRS = 1 << 3,
	COPY_META_ALL = 0xf,
};

/*
 * Copies metadata from st (the source's stat; NULL: src_fd is stat'ed) and src_fd's
 * xattrs to dst_fd. Works for O_PATH fds of any file type (AT_EMPTY_PATH calls,
 * /proc/self/fd for xattrs) including symlinks, where mode is skipped. Owner before
 * mode (chown clears setuid), xattrs after both (chown drops security.capability),
 * times last, with nanoseconds. Returns 0 or -errno.
 */
int copy_metadata(int src_fd, int dst_fd, const struct stat *st, unsigned flags);

/*
 * copy_metadata() leaving out the xattrs for which skip_xattr(name) is true (NULL: none),
 * e.g. a union's internal markers. Use this rather than xattr_copy_all() before
 * copy_metadata(): the chown in there would drop the security.capability just copied.
 */
int copy_metadata_skip(int src_fd, int dst_fd, const struct stat *st, unsigned flags,
		       bool (*skip_xattr)(const char *name));
