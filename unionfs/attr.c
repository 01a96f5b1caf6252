/* Attributes beyond getattr: symlink targets, file system statistics, access checks. */
#include "unionfs/attr.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/macro.h"
#include "lib/path.h"
#include "unionfs/copyup.h"
#include "unionfs/inode.h"
#include "unionfs/namei.h"
#include "unionfs/unionfs.h"

ssize_t attr_readlink(struct node *node, char *buf, size_t size)
{
	_cleanup_close_ int fd = node_open(node, O_PATH);
	ssize_t n;

	if (fd < 0)
		return fd;
	n = readlinkat(fd, "", buf, size - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return n;
}

int attr_statfs(struct unionfs *fs, struct statvfs *st)
{
	/* The top branch is where new data goes, so its free space is what matters. */
	return RET_NERRNO(fstatvfs(fs->branches.v[0].fd, st));
}

static bool in_groups(gid_t gid, const gid_t *groups, int ngroups)
{
	for (int i = 0; i < ngroups; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

int attr_access(struct unionfs *fs, struct node *node, int mask, uid_t uid, gid_t gid,
		const gid_t *groups, int ngroups)
{
	struct stat st;
	mode_t bits;
	int r;

	r = namei_getattr(fs, node, &st);
	if (r < 0)
		return r;
	if ((mask & W_OK) && fs->read_only)
		return -EROFS;
	if (mask == F_OK)
		return 0;
	if (uid == 0) {
		/* root may do anything but execute a file nobody may execute. */
		if ((mask & X_OK) && !S_ISDIR(st.st_mode) && !(st.st_mode & 0111))
			return -EACCES;
		return 0;
	}
	if (st.st_uid == uid)
		bits = (st.st_mode >> 6) & 7;
	else if (st.st_gid == gid || in_groups(st.st_gid, groups, ngroups))
		bits = (st.st_mode >> 3) & 7;
	else
		bits = st.st_mode & 7;
	return (bits & mask) == (mode_t)mask ? 0 : -EACCES;
}

static int set_times(int fd, const struct stat *attr, unsigned to_set)
{
	struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

	if (to_set & ATTR_SET_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (to_set & ATTR_SET_ATIME)
		ts[0] = attr->st_atim;
	if (to_set & ATTR_SET_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (to_set & ATTR_SET_MTIME)
		ts[1] = attr->st_mtim;
	/* AT_EMPTY_PATH works on O_PATH fds, symlinks included. */
	return RET_NERRNO(utimensat(fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
}

static int set_size(int fd, off_t size, int write_fd)
{
	char proc[32];

	if (write_fd >= 0)
		return RET_NERRNO(ftruncate(write_fd, size));
	return RET_NERRNO(truncate(path_fd_proc(fd, proc, sizeof(proc)), size));
}

static bool same_time(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* True (with *cur filled) when to_set only sets atime/mtime to the values they have. */
static bool times_unchanged(struct unionfs *fs, struct node *node, const struct stat *attr,
			    unsigned to_set, struct stat *cur)
{
	if (to_set & ~(ATTR_SET_ATIME | ATTR_SET_MTIME))
		return false;
	if (namei_getattr(fs, node, cur) < 0)
		return false;
	return (!(to_set & ATTR_SET_ATIME) || same_time(&attr->st_atim, &cur->st_atim)) &&
	       (!(to_set & ATTR_SET_MTIME) || same_time(&attr->st_mtim, &cur->st_mtim));
}

int attr_setattr(struct unionfs *fs, struct node *node, const struct stat *attr, unsigned to_set,
		 int write_fd, struct stat *out)
{
	bool data = !((to_set & ATTR_SET_SIZE) && attr->st_size == 0);
	_cleanup_close_ int own = -EBADF;
	int fd, r;

	/*
	 * With the writeback cache the kernel flushes its cached times, unchanged,
	 * also after an unlink: that must not copy up the file just deleted.
	 */
	if (!copyup_done(fs, node) && times_unchanged(fs, node, attr, to_set, out))
		return 0;
	r = to_set & ATTR_SET_SIZE ? copyup(fs, node, data) : copyup_meta(fs, node);
	if (r < 0)
		return r;
	fd = node_use_fd(node, &own);
	if (fd < 0)
		return fd;
	if (to_set & (ATTR_SET_UID | ATTR_SET_GID)) {
		uid_t uid = to_set & ATTR_SET_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid = to_set & ATTR_SET_GID ? attr->st_gid : (gid_t)-1;
		r = RET_NERRNO(fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	}
	if (r == 0 && (to_set & ATTR_SET_MODE))
		r = path_fd_chmod(fd, attr->st_mode & 07777);
	if (r == 0 && (to_set & ATTR_SET_SIZE))
		r = set_size(fd, attr->st_size, write_fd);
	if (r == 0 &&
	    (to_set & (ATTR_SET_ATIME | ATTR_SET_MTIME | ATTR_SET_ATIME_NOW | ATTR_SET_MTIME_NOW)))
		r = set_times(fd, attr, to_set);
	if (r < 0)
		return r;
	return namei_getattr(fs, node, out);
}
