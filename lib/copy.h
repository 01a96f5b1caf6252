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

/* Same, but without FICLONE (for callers that must own distinct blocks). */
int copy_data_no_reflink(int src_fd, int dst_fd);

enum copy_meta_flags {
	COPY_META_MODE = 1 << 0,
	COPY_META_OWNER = 1 << 1,
	COPY_META_TIMES = 1 << 2,
	COPY_META_XATTRS = 1 << 3,
	COPY_META_ALL = 0xf,
};

/*
 * Copies metadata from st (the source's stat) and src_fd's xattrs to dst_fd.
 * Works for O_PATH fds of any file type (through /proc/self/fd) including
 * symlinks, where mode is skipped. Owner before mode (chown clears setuid),
 * times last. Returns 0 or -errno.
 */
int copy_metadata(int src_fd, int dst_fd, const struct stat *st, unsigned flags);
