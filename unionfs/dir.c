/*
 * Changes to the namespace, as overlayfs makes them: in the writable branch,
 * with whiteouts where a lower name must disappear, opaque directories where
 * a new directory replaces a deleted one, redirects where a directory with
 * lower parts moves. Each change that replaces something is built in the
 * work dir and put in place with one rename, so it is all-or-nothing.
 */
#include "unionfs/dir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/macro.h"
#include "lib/path.h"
#include "unionfs/copyup.h"
#include "unionfs/nlink.h"
#include "unionfs/inode.h"
#include "unionfs/namei.h"
#include "unionfs/readdir.h"
#include "unionfs/unionfs.h"
#include "unionfs/workdir.h"

int dir_upper_fd(struct unionfs *fs, struct node *dir)
{
	int r = copyup(fs, dir, true);

	return r < 0 ? r : node_fd(dir);
}

/* True when name in dir is visible from the branches below the writable one. */
bool dir_name_in_lower(const struct node *dir, const char *name)
{
	const struct layer_set *set = node_layers(dir);
	char aufs[NAME_MAX + WHITEOUT_AUFS_PREFIX_LEN + 1];
	struct stat st;

	snprintf(aufs, sizeof(aufs), WHITEOUT_AUFS_PREFIX "%s", name);
	/* The top-most lower layer that knows the name decides: a whiteout there hides the rest. */
	for (uint16_t i = 0; i < set->n; i++) {
		if (set->v[i].branch == 0)
			continue;
		if (fstatat(set->v[i].fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return !whiteout_is_overlay(&st);
		if (faccessat(set->v[i].fd, aufs, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
			return false;
	}
	return false;
}

static int make_at(int dirfd, const char *name, const struct new_object *obj, int *fd)
{
	switch (obj->mode & S_IFMT) {
	case S_IFREG:
		*fd = RET_NERRNO(openat(dirfd, name,
					(obj->open_flags & ~(O_NOFOLLOW | O_TRUNC)) | O_CREAT |
					    O_EXCL | O_CLOEXEC,
					obj->mode & 07777));
		return *fd < 0 ? *fd : 0;
	case S_IFDIR:
		return RET_NERRNO(mkdirat(dirfd, name, obj->mode & 07777));
	case S_IFLNK:
		return RET_NERRNO(symlinkat(obj->target, dirfd, name));
	default:
		return RET_NERRNO(mknodat(dirfd, name, obj->mode, obj->rdev));
	}
}

/*
 * The group and mode a new object gets in parent: a setgid parent's group
 * (and, for a directory, its setgid bit), and, as the kernel does, no setgid
 * file for a group its creator is not in.
 */
static void new_owner(const struct stat *parent, const struct new_object *obj,
		      const struct creds *creds, gid_t *gid, mode_t *mode)
{
	*mode = obj->mode & 07777;
	*gid = creds->gid;
	if (parent->st_mode & S_ISGID) {
		*gid = parent->st_gid;
		if (S_ISDIR(obj->mode))
			*mode |= S_ISGID;
	}
	if (!S_ISDIR(obj->mode) && (*mode & S_ISGID) && creds->uid != 0 && *gid != creds->gid)
		*mode &= ~S_ISGID;
}

/*
 * Gives a new object to the caller. An object built in the work dir did not
 * inherit from a setgid parent: new_owner() gives it here. chown clears
 * setuid/setgid bits, so the mode is set again after it.
 */
static int set_owner(struct unionfs *fs, int parent_fd, int dirfd, const char *name,
		     const struct new_object *obj, const struct creds *creds)
{
	struct stat parent;
	mode_t mode;
	gid_t gid;

	if (fstat(parent_fd, &parent) < 0)
		return -errno;
	new_owner(&parent, obj, creds, &gid, &mode);
	if (fs->privileged && fchownat(dirfd, name, creds->uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	/* chown clears setuid/setgid: set the mode again. */
	if (!S_ISLNK(obj->mode) && (mode & 07000) && fchmodat(dirfd, name, mode, 0) < 0)
		return -errno;
	return 0;
}

/*
 * set_owner() for a regular file made in place, through its open fd; *st
 * gets its attributes. The kernel already gave it a setgid parent's group,
 * and when the caller is the daemon's own user (root creating as root) there
 * is nothing to change.
 */
static int set_file_owner(struct unionfs *fs, int parent_fd, int fd, const struct new_object *obj,
			  const struct creds *creds, struct stat *st)
{
	mode_t mode = obj->mode & 07777;
	struct stat parent;
	gid_t gid;
	int r;

	if (fstat(fd, st) < 0)
		return -errno;
	/* The caller's own ids: whatever the parent, no group to give, no setgid to drop. */
	if (st->st_uid == creds->uid && st->st_gid == creds->gid)
		return (st->st_mode & 07777) == mode ? 0 : RET_NERRNO(fchmod(fd, mode));
	if (fstat(parent_fd, &parent) < 0)
		return -errno;
	new_owner(&parent, obj, creds, &gid, &mode);
	if (!fs->privileged || (st->st_uid == creds->uid && st->st_gid == gid))
		r = (st->st_mode & 07777) == mode ? 0 : RET_NERRNO(fchmod(fd, mode));
	else if (fchown(fd, creds->uid, gid) < 0)
		r = -errno;
	/* chown may have cleared setuid/setgid: set the mode again. */
	else
		r = ((mode | obj->mode) & 07000) ? RET_NERRNO(fchmod(fd, mode)) : 0;
	return r < 0 ? r : RET_NERRNO(fstat(fd, st));
}

static void undo_make(int dirfd, const char *name, const struct new_object *obj, int *fd)
{
	closep(fd);
	unlinkat(dirfd, name, S_ISDIR(obj->mode) ? AT_REMOVEDIR : 0);
}

/* Builds the object in the work dir, then swaps it with the whiteout (or puts it in place). */
static int make_over_whiteout(struct unionfs *fs, int upper, const char *name,
			      const struct new_object *obj, const struct creds *creds,
			      bool overlay_whiteout, bool opaque, int *fd)
{
	char tmp[64];
	int r;

	workdir_temp_name(fs, tmp, sizeof(tmp));
	r = make_at(fs->work_fd, tmp, obj, fd);
	if (r < 0)
		return r;
	r = set_owner(fs, upper, fs->work_fd, tmp, obj, creds);
	if (r == 0 && opaque) {
		_cleanup_close_ int dfd =
		    openat(fs->work_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		r = dfd < 0 ? -errno : whiteout_set_opaque(fs, dfd);
	}
	if (r == 0)
		r = RET_NERRNO(renameat2(fs->work_fd, tmp, upper, name,
					 overlay_whiteout ? RENAME_EXCHANGE : RENAME_NOREPLACE));
	if (r < 0) {
		undo_make(fs->work_fd, tmp, obj, fd);
		return r;
	}
	if (overlay_whiteout)
		unlinkat(fs->work_fd, tmp, 0); /* the whiteout, swapped out */
	else
		r = whiteout_clear(upper, name);
	return r;
}

int dir_make(struct unionfs *fs, struct node *dir, const char *name, const struct new_object *obj,
	     const struct creds *creds, struct node **out, struct stat *st, int *fd)
{
	int upper = dir_upper_fd(fs, dir), wh, r;
	struct stat cur;
	bool lower, overlay_whiteout, made_here = false;

	*fd = -EBADF;
	if (upper < 0)
		return upper;
	if (whiteout_is_meta_name(name))
		return -EINVAL;
	lower = dir_name_in_lower(dir, name);
	/* The usual case first: no aufs whiteout, and O_EXCL tells if anything else is there. */
	if (S_ISREG(obj->mode) && !lower && !whiteout_aufs_present(upper, name)) {
		r = make_at(upper, name, obj, fd);
		if (r == 0) {
			r = set_file_owner(fs, upper, *fd, obj, creds, st);
			if (r < 0)
				undo_make(upper, name, obj, fd);
		}
		made_here = r == 0;
		if (r != -EEXIST)
			goto made;
	}
	wh = whiteout_present(upper, name);
	if (!wh && lower)
		return -EEXIST; /* visible below: the kernel would not have asked */
	overlay_whiteout = wh && fstatat(upper, name, &cur, AT_SYMLINK_NOFOLLOW) == 0;
	if (wh) {
		r = make_over_whiteout(fs, upper, name, obj, creds, overlay_whiteout,
				       S_ISDIR(obj->mode), fd);
	} else {
		r = make_at(upper, name, obj, fd);
		if (r == 0) {
			r = set_owner(fs, upper, upper, name, obj, creds);
			if (r < 0)
				undo_make(upper, name, obj, fd);
		}
	}
made:
	if (r < 0)
		return r;
	dir_listing_invalidate(dir);
	/* Made here, *st already holds its attributes. */
	r = made_here ? namei_lookup_made(fs, dir, name, st, out, st)
		      : namei_lookup(fs, dir, name, out, st);
	if (r < 0)
		closep(fd);
	return r;
}

/* A new name in upper for node's upper object (which may be kept by handle). */
static int link_upper_object(struct node *node, int upper, const char *name)
{
	char proc[PATH_FD_PROC_SIZE];
	_cleanup_close_ int own = -EBADF;
	int fd = node_use_fd(node, &own);

	if (fd < 0)
		return fd;
	return RET_NERRNO(
	    linkat(AT_FDCWD, path_fd_proc(fd, proc, sizeof(proc)), upper, name, AT_SYMLINK_FOLLOW));
}

int dir_link(struct unionfs *fs, struct node *node, struct node *dir, const char *name,
	     struct node **out, struct stat *st)
{
	int upper, r;

	r = copyup(fs, node, true);
	if (r < 0)
		return r;
	upper = dir_upper_fd(fs, dir);
	if (upper < 0)
		return upper;
	if (whiteout_present(upper, name)) {
		r = whiteout_clear(upper, name);
		if (r < 0)
			return r;
	}
	r = link_upper_object(node, upper, name);
	if (r < 0)
		return r;
	dir_listing_invalidate(dir);
	return namei_lookup(fs, dir, name, out, st);
}

/* Removes an upper object from view at once (one rename), then its contents at leisure. */
static int discard(struct unionfs *fs, int upper, const char *name)
{
	char tmp[64];

	workdir_temp_name(fs, tmp, sizeof(tmp));
	if (renameat(upper, name, fs->work_fd, tmp) < 0)
		return -errno;
	return path_remove_tree(fs->work_fd, tmp);
}

int dir_name_upper_link(struct unionfs *fs, struct node *node, int upper, const char *name)
{
	struct stat st;
	int r;

	if (S_ISDIR(node->type) || fstatat(upper, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 0;
	r = link_upper_object(node, upper, name);
	return r < 0 ? r : nlink_upper_link_added(fs, node);
}

/* dir_prepare_group_name() for a node known to be a tracked group. */
static int give_group_name(struct unionfs *fs, struct node *node, int upper, const char *name)
{
	int r = copyup(fs, node, true);

	return r < 0 ? r : dir_name_upper_link(fs, node, upper, name);
}

int dir_prepare_group_name(struct unionfs *fs, struct node *node, int upper, const char *name)
{
	return nlink_tracked(fs, node) ? give_group_name(fs, node, upper, name) : 0;
}

/* found: the branch where the lookup of name found its object. */
static int remove_name(struct unionfs *fs, struct node *dir, const char *name, struct node *child,
		       uint16_t found)
{
	int upper = dir_upper_fd(fs, dir), r;
	bool child_upper, group;
	struct stat st;

	if (upper < 0)
		return upper;
	group = !S_ISDIR(child->type) && nlink_tracked(fs, child);
	/*
	 * Found below by this very name (so none in the upper dir), and no hard-link
	 * group to give an upper name first: a whiteout is all it takes.
	 */
	if (found != 0 && !fs->udba_reval && !group) {
		r = whiteout_put(fs, upper, name, false);
		dir_listing_invalidate(dir);
		return r;
	}
	r = group ? give_group_name(fs, child, upper, name) : 0;
	if (r < 0)
		return r;
	/* A hard link's node may live under another name: ask the branch, not the node. */
	child_upper =
	    fstatat(upper, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && !whiteout_is_overlay(&st);
	if (dir_name_in_lower(dir, name))
		r = whiteout_put(fs, upper, name, child_upper);
	else if (S_ISDIR(child->type))
		r = discard(fs, upper, name);
	else
		r = RET_NERRNO(unlinkat(upper, name, 0));
	dir_listing_invalidate(dir);
	return r;
}

/* Looks name up and removes it if may_remove (0 or -errno) lets it go. */
static int remove_if(struct unionfs *fs, struct node *dir, const char *name,
		     int (*may_remove)(struct node *child, const struct stat *st))
{
	struct node *child;
	struct stat st;
	uint16_t found;
	int r = namei_lookup_where(fs, dir, name, &child, &st, &found);

	if (r < 0)
		return r;
	r = may_remove(child, &st);
	if (r == 0)
		r = remove_name(fs, dir, name, child, found);
	node_forget(&fs->nodes, child, 1);
	return r;
}

static int may_unlink(struct node *child, const struct stat *st)
{
	return S_ISDIR(st->st_mode) ? -EISDIR : 0;
}

int dir_unlink(struct unionfs *fs, struct node *dir, const char *name)
{
	return remove_if(fs, dir, name, may_unlink);
}

int dir_is_empty(struct node *dir)
{
	struct dir_listing *l;
	int r;

	dir_listing_invalidate(dir);
	r = dir_listing_get(dir, 0, &l);
	if (r < 0)
		return r;
	r = l->nvisible == 0 ? 0 : -ENOTEMPTY;
	dir_listing_unref(l);
	return r;
}

static int may_rmdir(struct node *child, const struct stat *st)
{
	return S_ISDIR(st->st_mode) ? dir_is_empty(child) : -ENOTDIR;
}

int dir_rmdir(struct unionfs *fs, struct node *dir, const char *name)
{
	return remove_if(fs, dir, name, may_rmdir);
}
