/* Open files: open (copying up for writes), read, lseek, fsync, fallocate, release. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct unionfs;
struct node;

/* A file handle as stored in fuse_file_info.fh. */
struct open_file {
	int fd; /* -1 until first needed, for a lazy open (file_fd()) */
	struct node *node;
	const struct layer_set *lazy; /* what a lazy open opens, with lazy_flags */
	int lazy_flags;
	int backing;  /* passthrough backing id, -1: I/O goes through the daemon */
	bool counted; /* in the node's open count (passthrough.c) */
	bool lower;   /* a file of a read-only branch: its data never changes */
};

/* Whether an open with these flags writes (and so copies the file up first). */
bool file_open_writes(int flags);
int file_open(struct unionfs *fs, struct node *node, int flags, struct open_file **out);
/* An open file for fd (taken over, closed on error), a file of node's top-most branch. */
int file_attach(struct unionfs *fs, struct node *node, int fd, uint16_t branch, int flags,
		struct open_file **out);
void file_release(struct unionfs *fs, struct open_file *fh);
/* The open file's fd, opened now if the open was lazy; -errno on failure. */
int file_fd(struct open_file *fh);
off_t file_lseek(struct open_file *fh, off_t off, int whence);

int file_fsync(struct unionfs *fs, struct open_file *fh, bool datasync);
int file_fallocate(struct open_file *fh, int mode, off_t off, off_t len);
ssize_t file_copy_range(struct open_file *in, off_t off_in, struct open_file *out, off_t off_out,
			size_t len, unsigned flags);
