/*
 * Open files. A read-only open of a lower file gets its own fd there (a
 * copy-up later does not change what that open reads, as on overlayfs
 * before metacopy); a writing open copies the file up first.
 */
#include "unionfs/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/macro.h"
#include "unionfs/copyup.h"
#include "unionfs/inode.h"
#include "unionfs/passthrough.h"
#include "unionfs/unionfs.h"

/* What an open passes on to the real file. */
#define PASSED_FLAGS (O_ACCMODE | O_DIRECT | O_NOATIME | O_SYNC | O_DSYNC | O_NONBLOCK | O_TRUNC)

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

static int open_for_write(struct unionfs *fs, struct node *node, int flags, uint16_t *branch)
{
	int r = copyup(fs, node, !(flags & O_TRUNC));

	return r < 0 ? r : node_open_branch(node, writable_flags(flags) & PASSED_FLAGS, branch);
}

int file_open(struct unionfs *fs, struct node *node, int flags, struct open_file **out)
{
	uint16_t branch;
	int fd;

	if (!S_ISREG(node->type))
		return -EINVAL;
	if (wants_write(flags) && fs->read_only)
		return -EROFS;
	if (wants_write(flags))
		fd = open_for_write(fs, node, flags, &branch);
	else
		fd = node_open_branch(node, flags & PASSED_FLAGS, &branch);
	if (fd < 0)
		return fd;
	return file_attach(fs, node, fd, branch, out);
}

int file_attach(struct unionfs *fs, struct node *node, int fd, uint16_t branch,
		struct open_file **out)
{
	struct open_file *fh = malloc(sizeof(*fh));
	int r;

	if (!fh) {
		close(fd);
		return -ENOMEM;
	}
	*fh = (struct open_file){.fd = fd, .node = node, .backing = -1};
	r = passthrough_open(fs, node, fd, branch, &fh->backing);
	if (r < 0) {
		close(fd);
		free(fh);
		return r;
	}
	fh->counted = fs->pt.active;
	*out = fh;
	return 0;
}

void file_release(struct unionfs *fs, struct open_file *fh)
{
	if (!fh)
		return;
	if (fh->counted)
		passthrough_release(fs, fh->node);
	closep(&fh->fd);
	free(fh);
}

off_t file_lseek(struct open_file *fh, off_t off, int whence)
{
	return RET_NERRNO(lseek(fh->fd, off, whence));
}

int file_fsync(struct unionfs *fs, struct open_file *fh, bool datasync)
{
	if (fs->volatile_mode)
		return 0;
	return RET_NERRNO(datasync ? fdatasync(fh->fd) : fsync(fh->fd));
}

int file_fallocate(struct open_file *fh, int mode, off_t off, off_t len)
{
	return RET_NERRNO(fallocate(fh->fd, mode, off, len));
}

ssize_t file_copy_range(struct open_file *in, off_t off_in, struct open_file *out, off_t off_out,
			size_t len, unsigned flags)
{
	return RET_NERRNO(copy_file_range(in->fd, &off_in, out->fd, &off_out, len, flags));
}
