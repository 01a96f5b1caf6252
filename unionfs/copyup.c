/*
 * Copy-up. Each node has a copyup_lock held for the whole copy, so two
 * writers of one file copy it once and a rename waits for it; other nodes
 * and all reads go on meanwhile. The new object is built under a temporary
 * name in the work dir and renamed into place only when complete, so a
 * crash at any moment leaves either the lower object showing or the whole
 * copy, never a partial one.
 */
#include "unionfs/copyup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/copy.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/xattr.h"
#include "unionfs/inode.h"
#include "unionfs/nlink.h"
#include "unionfs/readdir.h"
#include "unionfs/unionfs.h"
#include "unionfs/workdir.h"
#include "unionfs/xattr.h"

static int publish(struct node *node, const struct layer_set *old, int upper_fd, bool indexed,
		   bool metacopy);

bool copyup_done(const struct unionfs *fs, const struct node *node)
{
	const struct layer_set *set = node_layers(node);

	return !fs->read_only && set->v[0].branch == 0 && !set->unnamed;
}

static bool data_done(const struct unionfs *fs, const struct node *node)
{
	return copyup_done(fs, node) && !node_layers(node)->metacopy;
}

static const char *metacopy_xattr(const struct unionfs *fs)
{
	return fs->privileged ? "trusted.overlay.metacopy" : "user.overlay.metacopy";
}

void copyup_index_name(uint64_t ino, char *buf, size_t size)
{
	snprintf(buf, size, "%016llx", (unsigned long long)ino);
}

/* Another name of this hard-link group was copied up already: link that inode here. */
static int link_from_index(struct unionfs *fs, struct node *node, int parent_fd)
{
	char index_name[32];
	int r;

	copyup_index_name(node->ino, index_name, sizeof(index_name));
	r = RET_NERRNO(linkat(fs->index_fd, index_name, parent_fd, node->name, 0));
	if (r < 0)
		return r;
	r = RET_NERRNO(openat(parent_fd, node->name, O_PATH | O_NOFOLLOW | O_CLOEXEC));
	r = r < 0 ? r : publish(node, node_layers(node), r, true, false);
	/* This name showed before: the union's count stays while the real one grows. */
	return r < 0 ? r : nlink_upper_link_added_locked(fs, node);
}

const char *copyup_origin_xattr(const struct unionfs *fs)
{
	return fs->privileged ? "trusted.unionfs.origin" : "user.unionfs.origin";
}

static bool skip_internal_xattr(const char *name)
{
	/* A lower object's markers (opaque, redirect, origin) describe the lower layer, not the
	 * copy. */
	return unionfs_xattr_is_internal(name);
}

/* Creates the copy's first form at work_fd/tmp; returns an fd on it. */
static int create_copy(int src_fd, const struct stat *st, int work_fd, const char *tmp,
		       bool with_data)
{
	char proc[32], target[PATH_MAX];
	_cleanup_close_ int src = -EBADF;
	int dst, r;
	ssize_t n;

	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		dst = RET_NERRNO(openat(work_fd, tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
		if (dst < 0 || !with_data)
			return dst;
		src = RET_NERRNO(
		    open(path_fd_proc(src_fd, proc, sizeof(proc)), O_RDONLY | O_CLOEXEC));
		r = src < 0 ? src : copy_data(src, dst);
		if (r < 0) {
			close(dst);
			return r;
		}
		return dst;
	case S_IFDIR:
		if (mkdirat(work_fd, tmp, 0700) < 0)
			return -errno;
		return RET_NERRNO(
		    openat(work_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	case S_IFLNK:
		n = readlinkat(src_fd, "", target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		if (symlinkat(target, work_fd, tmp) < 0)
			return -errno;
		break;
	default:
		if (mknodat(work_fd, tmp, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
			return -errno;
		break;
	}
	return RET_NERRNO(openat(work_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC));
}

static int finish_copy(struct unionfs *fs, struct node *node, int src_fd, const struct stat *st,
		       int dst)
{
	int r;

	/* One call: it orders chown before security.capability, which chown would drop. */
	r = copy_metadata_skip(src_fd, dst, st, COPY_META_ALL, skip_internal_xattr);
	if (r < 0)
		return r;
	/* Without it st_ino would change at copy-up; symlinks may refuse user.* names. */
	r = xattr_set_fd(dst, copyup_origin_xattr(fs), &node->ino, sizeof(node->ino), 0);
	if (r < 0 && !S_ISLNK(st->st_mode))
		return r;
	/* File data, as overlayfs: a directory's entries are ordered by the file system's journal.
	 */
	if (!fs->volatile_mode && S_ISREG(st->st_mode) && fsync(dst) < 0)
		return -errno;
	return 0;
}

/* The new layer set: the upper object, and for a directory the lower ones still merged. */
/* Of a metadata-only copy, the new set keeps where the data is: the old set's lower file. */
static int keep_data_source(struct layer_set *set, const struct layer_set *old)
{
	set->metacopy = true;
	set->data_branch = old->v[0].branch;
	set->parent_fd = old->parent_fd;
	set->size = old->size;
	set->name = strdup(old->name);
	return set->name ? 0 : -ENOMEM;
}

static int publish(struct node *node, const struct layer_set *old, int upper_fd, bool indexed,
		   bool metacopy)
{
	uint16_t n = S_ISDIR(node->type) ? old->n + 1 : 1;
	struct layer_set *set = layer_set_new(n);

	if (!set)
		return -ENOMEM;
	set->indexed = indexed;
	if (metacopy && keep_data_source(set, old) < 0) {
		layer_set_free(set);
		return -ENOMEM;
	}
	set->v[set->n++] = (struct node_layer){.fd = upper_fd, .branch = 0};
	for (uint16_t i = 0; set->n < n; i++) {
		int fd = fcntl(old->v[i].fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			layer_set_free(set);
			return -errno;
		}
		set->v[set->n++] = old->v[i];
		set->v[set->n - 1].fd = fd;
	}
	pthread_mutex_lock(&node->lock);
	node_replace_layers(node, set);
	pthread_mutex_unlock(&node->lock);
	return 0;
}

/* The upper object's fd to keep: never a writable one (it would make exec fail with ETXTBSY). */
static int keepable_fd(int dst, mode_t type)
{
	char proc[32];

	if (!S_ISREG(type))
		return RET_NERRNO(fcntl(dst, F_DUPFD_CLOEXEC, 3));
	return RET_NERRNO(open(path_fd_proc(dst, proc, sizeof(proc)), O_PATH | O_CLOEXEC));
}

/* Puts the copy in place; a copy-up is not a change of its parent, so its times stay (as
 * overlayfs). */
static int rename_keeping_parent_times(int work_fd, const char *tmp, int parent_fd,
				       const char *name, bool replace)
{
	struct stat parent;
	struct timespec times[2];

	if (fstat(parent_fd, &parent) < 0)
		return -errno;
	if (renameat2(work_fd, tmp, parent_fd, name, replace ? 0 : RENAME_NOREPLACE) < 0)
		return -errno;
	times[0] = parent.st_atim;
	times[1] = parent.st_mtim;
	return RET_NERRNO(futimens(parent_fd, times));
}

/* A metadata-only copy: a sparse file of the same size, marked as overlayfs marks it. */
static int create_meta_copy(struct unionfs *fs, const struct stat *st, const char *tmp)
{
	int dst = RET_NERRNO(
	    openat(fs->work_fd, tmp, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
	int r;

	if (dst < 0)
		return dst;
	r = RET_NERRNO(ftruncate(dst, st->st_size));
	if (r == 0)
		r = xattr_set_fd(dst, metacopy_xattr(fs), "", 0, 0);
	if (r < 0) {
		close(dst);
		return r;
	}
	return dst;
}

/*
 * Copies node up: its data too unless meta_only. src_fd is the object whose
 * metadata the copy takes (the upper one of a metadata-only copy), data_fd
 * the one whose data it takes.
 */
static int copy_object(struct unionfs *fs, struct node *node, bool with_data, bool meta_only)
{
	const struct layer_set *old = node_layers(node);
	int parent_fd = node_layers(node->parent)->v[0].fd;
	_cleanup_close_ int src_fd = node_open(node, O_PATH), dst = -EBADF, data_fd = -EBADF;
	int keep = -EBADF, r;
	char tmp[64];
	struct stat st;

	if (src_fd < 0)
		return src_fd;
	if (fstatat(src_fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (S_ISREG(st.st_mode) && st.st_nlink > 1 && !old->metacopy) {
		r = link_from_index(fs, node, parent_fd);
		if (r != -ENOENT)
			return r < 0 ? r : (dir_listing_invalidate(node->parent), 0);
		with_data = true; /* other names will see this copy: it must be whole */
		meta_only = false;
	}
	/* Only a file reached by name in its lower dir can leave its data there. */
	if (!old->name || old->v[0].fd >= 0)
		meta_only = false;
	data_fd = old->metacopy ? node_open(node, O_RDONLY)
				: RET_NERRNO(fcntl(src_fd, F_DUPFD_CLOEXEC, 3));
	if (data_fd < 0)
		return data_fd;
	workdir_temp_name(fs, tmp, sizeof(tmp));
	dst = meta_only ? create_meta_copy(fs, &st, tmp)
			: create_copy(data_fd, &st, fs->work_fd, tmp, with_data);
	if (dst < 0) {
		/* A half-made copy (ENOSPC, say) must not keep the space it took. */
		path_remove_tree(fs->work_fd, tmp);
		return dst;
	}
	r = finish_copy(fs, node, src_fd, &st, dst);
	if (r == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1) {
		char index_name[32];
		copyup_index_name(node->ino, index_name, sizeof(index_name));
		r = nlink_init_index(fs, dst, st.st_nlink);
		if (r == 0)
			r = RET_NERRNO(linkat(fs->work_fd, tmp, fs->index_fd, index_name, 0));
	}
	if (r == 0)
		r = rename_keeping_parent_times(fs->work_fd, tmp, parent_fd, node->name,
						old->metacopy);
	if (r < 0) {
		path_remove_tree(fs->work_fd, tmp);
		return r;
	}
	keep = keepable_fd(dst, st.st_mode);
	r = keep < 0 ? keep
		     : publish(node, old, keep, S_ISREG(st.st_mode) && st.st_nlink > 1, meta_only);
	if (r < 0) {
		closep(&keep);
		return r;
	}
	dir_listing_invalidate(node->parent);
	return 0;
}

/* Copies node up unless done says it is (meta_only: done when the metadata is up). */
static int copy_unless_done(struct unionfs *fs, struct node *node, bool with_data, bool meta_only)
{
	bool (*done)(const struct unionfs *, const struct node *) =
	    meta_only ? copyup_done : data_done;
	int r;

	if (fs->read_only)
		return -EROFS;
	if (done(fs, node))
		return 0;
	r = copyup(fs, node->parent, true);
	if (r < 0)
		return r;
	pthread_mutex_lock(&node->copyup_lock);
	if (!done(fs, node))
		r = copy_object(fs, node, with_data, meta_only);
	pthread_mutex_unlock(&node->copyup_lock);
	return r;
}

int copyup(struct unionfs *fs, struct node *node, bool with_data)
{
	return copy_unless_done(fs, node, with_data, false);
}

int copyup_meta(struct unionfs *fs, struct node *node)
{
	if (!fs->metacopy || !S_ISREG(node->type))
		return copyup(fs, node, true);
	return copy_unless_done(fs, node, true, true);
}
