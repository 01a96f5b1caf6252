/* Attributes: setattr, readlink, statfs, access. getattr lives with lookup in namei. */
#pragma once

#include <stddef.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

struct unionfs;
struct node;

/* Reads a symlink's target into buf (NUL-terminated); returns the length or -errno. */
ssize_t attr_readlink(struct node *node, char *buf, size_t size);
int attr_statfs(struct unionfs *fs, struct statvfs *st);
/* access(2) for the caller uid/gid with its groups. */
int attr_access(struct unionfs *fs, struct node *node, int mask, uid_t uid, gid_t gid,
		const gid_t *groups, int ngroups);

enum attr_set {
	ATTR_SET_MODE = 1 << 0,
	ATTR_SET_UID = 1 << 1,
	ATTR_SET_GID = 1 << 2,
	ATTR_SET_SIZE = 1 << 3,
	ATTR_SET_ATIME = 1 << 4,
	ATTR_SET_MTIME = 1 << 5,
	ATTR_SET_ATIME_NOW = 1 << 6,
	ATTR_SET_MTIME_NOW = 1 << 7,
};

/*
 * chmod, chown, truncate, utimensat on a node (copying it up first; a
 * truncate to 0 copies no data). write_fd, when >= 0, is an open writable
 * fd to truncate through. *out gets the new attributes.
 */
int attr_setattr(struct unionfs *fs, struct node *node, const struct stat *attr, unsigned to_set,
		 int write_fd, struct stat *out);
