/* Open files: open (copying up for writes), read, lseek, fsync, fallocate, release. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct unionfs;
struct node;

/* A file handle as stored in fuse_file_info.fh. */
struct open_file {
	int fd;
	struct node *node;
};

int file_open(struct unionfs *fs, struct node *node, int flags, struct open_file **out);
void file_release(struct open_file *fh);
off_t file_lseek(struct open_file *fh, off_t off, int whence);

int file_fsync(struct unionfs *fs, struct open_file *fh, bool datasync);
int file_fallocate(struct open_file *fh, int mode, off_t off, off_t len);
ssize_t file_copy_range(struct open_file *in, off_t off_in, struct open_file *out, off_t off_out,
			size_t len, unsigned flags);
