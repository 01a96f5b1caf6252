/*
 * Open files. Read-only opens of a file share one fd per node, so reading
 * many small files costs no open/close each; reads are answered by splicing
 * from that fd at the requested offset, which is safe across threads.
 */
#include "unionfs/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/macro.h"
#include "lib/path.h"
#include "unionfs/copyup.h"
#include "unionfs/inode.h"
#include "unionfs/unionfs.h"

/* Flags that change how the fd behaves, so such an open gets an fd of its own. */
#define PRIVATE_FD_FLAGS (O_DIRECT | O_NOATIME | O_SYNC | O_DSYNC | O_NONBLOCK)

static bool wants_write(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_TRUNC | O_APPEND));
}

/*
 * With the kernel's writeback cache, it may read pages of a file opened
 * write-only and it keeps O_APPEND positions itself.
 */
static int writable_flags(int flags)
{
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags & ~(O_APPEND | O_CREAT | O_EXCL | O_NOCTTY);
}

static int open_for_write(struct unionfs *fs, struct node *node, int flags, struct open_file *fh)
{
	char proc[32];
	int r = copyup(fs, node, !(flags & O_TRUNC));

	if (r < 0)
		return r;
	fh->fd = RET_NERRNO(open(path_fd_proc(node_fd(node), proc, sizeof(proc)),
				 writable_flags(flags) | O_CLOEXEC));
	fh->shared = false;
	return fh->fd;
}

int file_open(struct unionfs *fs, struct node *node, int flags, struct open_file **out)
{
	struct open_file *fh;
	char proc[32];
	int fd;

	if (!S_ISREG(node->type))
		return -EINVAL;
	if (wants_write(flags) && fs->read_only)
		return -EROFS;
	fh = malloc(sizeof(*fh));
	if (!fh)
		return -ENOMEM;
	fh->node = node;
	if (wants_write(flags)) {
		fd = open_for_write(fs, node, flags, fh);
	} else if (flags & PRIVATE_FD_FLAGS) {
		int open_flags = (flags & (O_ACCMODE | PRIVATE_FD_FLAGS)) | O_CLOEXEC;
		fd = RET_NERRNO(open(path_fd_proc(node_fd(node), proc, sizeof(proc)), open_flags));
		*fh = (struct open_file){.fd = fd, .shared = false, .node = node};
	} else {
		fd = node_read_fd(node);
		*fh = (struct open_file){.fd = fd, .shared = true, .node = node};
	}
	if (fd < 0) {
		free(fh);
		return fd;
	}
	*out = fh;
	return 0;
}

void file_release(struct open_file *fh)
{
	if (!fh)
		return;
	if (!fh->shared)
		closep(&fh->fd);
	free(fh);
}

off_t file_lseek(struct open_file *fh, off_t off, int whence)
{
	return RET_NERRNO(lseek(fh->fd, off, whence));
}

int file_fd_for_read(struct open_file *fh)
{
	/* A shared fd follows the node: after a copy-up reads see the upper copy. */
	return fh->shared ? node_read_fd(fh->node) : fh->fd;
}

int file_fsync(struct unionfs *fs, struct open_file *fh, bool datasync)
{
	if (fs->volatile_mode || fh->shared)
		return 0;
	return RET_NERRNO(datasync ? fdatasync(fh->fd) : fsync(fh->fd));
}

int file_fallocate(struct open_file *fh, int mode, off_t off, off_t len)
{
	if (fh->shared)
		return -EBADF;
	return RET_NERRNO(fallocate(fh->fd, mode, off, len));
}

ssize_t file_copy_range(struct open_file *in, off_t off_in, struct open_file *out, off_t off_out,
			size_t len, unsigned flags)
{
	if (out->shared)
		return -EBADF;
	return RET_NERRNO(copy_file_range(file_fd_for_read(in), &off_in, out->fd, &off_out, len,
					  flags));
}
