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

bool file_open_writes(int flags)
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

static bool is_small_lower(const struct layer_set *set)
{
	return layer_set_by_name(set) && set->size < PASSTHROUGH_MIN_SIZE;
}

/*
 * Small lower files read better from the kernel's page cache of our inode
 * (kept across opens, as lower data never changes) than through a backing
 * file, which costs every open two ioctls and a second open in the kernel.
 */
static bool wants_backing(int fd, bool lower, int flags)
{
	struct stat st;

	if (file_open_writes(flags) || !lower)
		return true;
	return fstat(fd, &st) < 0 || st.st_size >= PASSTHROUGH_MIN_SIZE;
}

/* An open file for fd (taken over; -1 for a lazy open), counted for passthrough. */
static int new_open_file(struct unionfs *fs, struct node *node, int fd, uint16_t branch,
			 bool want_backing, struct open_file **out)
{
	struct open_file *fh = malloc(sizeof(*fh));
	int r;

	if (!fh) {
		closep(&fd);
		return -ENOMEM;
	}
	*fh = (struct open_file){
	    .fd = fd, .node = node, .backing = -1, .lower = fs->read_only || branch != 0};
	r = passthrough_open(fs, node, fd, branch, want_backing, &fh->backing);
	if (r < 0) {
		closep(&fh->fd);
		free(fh);
		return r;
	}
	fh->counted = fs->pt.active;
	*out = fh;
	return 0;
}

/*
 * A read-only open of a small lower file opens nothing yet: with its data in
 * the kernel's page cache (kept across opens), the file is never read here.
 */
static int open_lazily(struct unionfs *fs, struct node *node, int flags, struct open_file **out)
{
	const struct layer_set *set = node_layers(node);
	int r = new_open_file(fs, node, -1, set->v[0].branch, false, out);

	if (r == 0) {
		(*out)->lazy = set;
		(*out)->lazy_flags = flags & PASSED_FLAGS;
	}
	return r;
}

int file_attach(struct unionfs *fs, struct node *node, int fd, uint16_t branch, int flags,
		struct open_file **out)
{
	bool lower = fs->read_only || branch != 0;

	return new_open_file(fs, node, fd, branch, wants_backing(fd, lower, flags), out);
}

int file_open(struct unionfs *fs, struct node *node, int flags, struct open_file **out)
{
	uint16_t branch;
	int fd;

	if (!S_ISREG(node->type))
		return -EINVAL;
	if (file_open_writes(flags) && fs->read_only)
		return -EROFS;
	if (!file_open_writes(flags) && is_small_lower(node_layers(node)))
		return open_lazily(fs, node, flags, out);
	if (file_open_writes(flags))
		fd = open_for_write(fs, node, flags, &branch);
	else
		fd = node_open_branch(node, flags & PASSED_FLAGS, &branch);
	if (fd < 0)
		return fd;
	return file_attach(fs, node, fd, branch, flags, out);
}

int file_fd(struct open_file *fh)
{
	const struct layer_set *set = fh->lazy;
	int fd = __atomic_load_n(&fh->fd, __ATOMIC_ACQUIRE), expected = -1;

	if (fd >= 0 || !set)
		return fd >= 0 ? fd : -EBADF;
	fd = RET_NERRNO(openat(set->parent_fd, set->name, fh->lazy_flags | O_NOFOLLOW | O_CLOEXEC));
	if (fd < 0)
		return fd;
	/* Two threads may race here: one fd wins, the other is closed. */
	if (!__atomic_compare_exchange_n(&fh->fd, &expected, fd, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_ACQUIRE)) {
		close(fd);
		fd = expected;
	}
	return fd;
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
	int fd = file_fd(fh);

	return fd < 0 ? fd : RET_NERRNO(lseek(fd, off, whence));
}

int file_fsync(struct unionfs *fs, struct open_file *fh, bool datasync)
{
	int fd = file_fd(fh);

	if (fs->volatile_mode || fd < 0)
		return fd < 0 ? fd : 0;
	return RET_NERRNO(datasync ? fdatasync(fd) : fsync(fd));
}

int file_fallocate(struct open_file *fh, int mode, off_t off, off_t len)
{
	int fd = file_fd(fh);

	return fd < 0 ? fd : RET_NERRNO(fallocate(fd, mode, off, len));
}

ssize_t file_copy_range(struct open_file *in, off_t off_in, struct open_file *out, off_t off_out,
			size_t len, unsigned flags)
{
	int in_fd = file_fd(in), out_fd = file_fd(out);

	if (in_fd < 0 || out_fd < 0)
		return in_fd < 0 ? in_fd : out_fd;
	return RET_NERRNO(copy_file_range(in_fd, &off_in, out_fd, &off_out, len, flags));
}
