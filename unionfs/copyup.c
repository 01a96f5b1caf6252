/*
 * Copy-up. Each node has a copyup_lock held for the whole copy, so two
 * writers of one file copy it once and a rename waits for it; other nodes
 * and all reads go on meanwhile. The new object is built in the work dir,
 * unnamed (O_TMPFILE) or under a temporary name, and linked or renamed into
 * place only when complete, so a crash at any moment leaves either the lower
 * object showing or the whole copy, never a partial one.
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
#include "unionfs/handle.h"
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

/*
 * Creates the copy's first form in the work dir, named tmp (a regular file may get no name:
 * tmp is "" then); returns an fd on it. src_fd: open for reading if a regular file's data
 * is to be copied, else any fd (O_PATH) on the object.
 */
static int create_copy(struct unionfs *fs, int src_fd, const struct stat *st, char *tmp,
		       size_t tmp_size, bool with_data)
{
	char target[PATH_MAX];
	int dst, r;
	ssize_t n;

	if (S_ISREG(st->st_mode)) {
		dst = workdir_temp_file(fs, tmp, tmp_size);
		if (dst < 0 || !with_data)
			return dst;
		r = copy_data(src_fd, dst);
		if (r < 0) {
			close(dst);
			return r;
		}
		return dst;
	}
	workdir_temp_name(fs, tmp, tmp_size);
	switch (st->st_mode & S_IFMT) {
	case S_IFDIR:
		if (mkdirat(fs->work_fd, tmp, 0700) < 0)
			return -errno;
		return RET_NERRNO(
		    openat(fs->work_fd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	case S_IFLNK:
		n = readlinkat(src_fd, "", target, sizeof(target) - 1);
		if (n < 0)
			return -errno;
		target[n] = '\0';
		if (symlinkat(target, fs->work_fd, tmp) < 0)
			return -errno;
		break;
	default:
		if (mknodat(fs->work_fd, tmp, (st->st_mode & S_IFMT) | 0600, st->st_rdev) < 0)
			return -errno;
		break;
	}
	return RET_NERRNO(openat(fs->work_fd, tmp, O_PATH | O_NOFOLLOW | O_CLOEXEC));
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

/* A copied-up directory still merges the lower ones its old set had: n in all. */
static int keep_lower_dirs(struct layer_set *set, const struct layer_set *old, uint16_t n)
{
	for (uint16_t i = 0; set->n < n; i++) {
		int fd = fcntl(old->v[i].fd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return -errno;
		set->v[set->n] = old->v[i];
		set->v[set->n++].fd = fd;
	}
	return 0;
}

/* Takes upper_fd in every case. */
static int publish(struct node *node, const struct layer_set *old, int upper_fd, bool indexed,
		   bool metacopy)
{
	_cleanup_close_ int upper = upper_fd;
	uint16_t n = S_ISDIR(node->type) ? old->n + 1 : 1;
	struct layer_set *set = layer_set_new(n);
	int r = -ENOMEM;

	if (!set)
		return r;
	set->indexed = indexed;
	if (metacopy && keep_data_source(set, old) < 0)
		goto fail;
	if (S_ISDIR(node->type)) {
		set->v[set->n++] = (struct node_layer){.fd = TAKE_FD(upper), .branch = 0};
		r = keep_lower_dirs(set, old, n);
	} else {
		r = handle_keep(set, TAKE_FD(upper));
	}
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&node->lock);
	node_replace_layers(node, set);
	pthread_mutex_unlock(&node->lock);
	/* The copy may have got xattrs of its own: a security label, a default ACL. */
	unionfs_xattr_changed(node);
	return 0;
fail:
	layer_set_free(set);
	return r;
}

/* The upper object's fd to keep: never a writable one (it would make exec fail with ETXTBSY). */
static int keepable_fd(int dst, mode_t type)
{
	char proc[32];

	if (!S_ISREG(type))
		return RET_NERRNO(fcntl(dst, F_DUPFD_CLOEXEC, 3));
	return RET_NERRNO(open(path_fd_proc(dst, proc, sizeof(proc)), O_PATH | O_CLOEXEC));
}

/* Gives the copy dst (named tmp in the work dir, or unnamed: tmp "") the name dirfd/name. */
static int link_copy(struct unionfs *fs, int dst, const char *tmp, int dirfd, const char *name)
{
	char proc[PATH_FD_PROC_SIZE];

	if (tmp[0])
		return RET_NERRNO(linkat(fs->work_fd, tmp, dirfd, name, 0));
	return RET_NERRNO(linkat(AT_FDCWD, path_fd_proc(dst, proc, sizeof(proc)), dirfd, name,
				 AT_SYMLINK_FOLLOW));
}

/*
 * Puts the copy in place, replacing what is there if replace; a copy-up is not a change of its
 * parent, so its times stay (as overlayfs).
 */
static int place_copy(struct unionfs *fs, int dst, char *tmp, size_t tmp_size, int parent_fd,
		      const char *name, bool replace)
{
	struct stat parent;
	struct timespec times[2];
	int r;

	if (fstat(parent_fd, &parent) < 0)
		return -errno;
	if (!tmp[0] && replace) {
		/* linkat(2) never replaces: the copy gets a name to rename. */
		workdir_temp_name(fs, tmp, tmp_size);
		r = link_copy(fs, dst, "", fs->work_fd, tmp);
		if (r < 0) {
			tmp[0] = '\0';
			return r;
		}
	}
	if (tmp[0])
		r = RET_NERRNO(
		    renameat2(fs->work_fd, tmp, parent_fd, name, replace ? 0 : RENAME_NOREPLACE));
	else
		r = link_copy(fs, dst, tmp, parent_fd, name);
	if (r < 0)
		return r;
	times[0] = parent.st_atim;
	times[1] = parent.st_mtim;
	return RET_NERRNO(futimens(parent_fd, times));
}

/* Removes what is left of a copy that failed: an unnamed one goes with its fd. */
static void remove_temp(struct unionfs *fs, const char *tmp)
{
	if (tmp[0])
		path_remove_tree(fs->work_fd, tmp);
}

/* A metadata-only copy: a sparse file of the same size, marked as overlayfs marks it. */
static int create_meta_copy(struct unionfs *fs, const struct stat *st, char *tmp, size_t tmp_size)
{
	int dst = workdir_temp_file(fs, tmp, tmp_size);
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
 * The object to copy, open for reading where it is a regular file with its data here: one
 * fd then serves the data and the metadata. *readable says which it is.
 */
static int open_source(struct node *node, bool *readable)
{
	int fd;

	*readable = false;
	if (S_ISREG(node->type) && !node_layers(node)->metacopy) {
		fd = node_open(node, O_RDONLY);
		/* Not readable by us (a daemon without root): the metadata can still be copied. */
		if (fd != -EACCES && fd != -EPERM) {
			*readable = fd >= 0;
			return fd;
		}
	}
	return node_open(node, O_PATH);
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
	bool readable;
	_cleanup_close_ int src_fd = open_source(node, &readable), dst = -EBADF, data_fd = -EBADF;
	int keep = -EBADF, r;
	char tmp[64] = "";
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
	if (!old->name || !layer_set_by_name(old))
		meta_only = false;
	if (S_ISREG(st.st_mode) && with_data && !meta_only && (old->metacopy || !readable)) {
		data_fd = node_open(node, O_RDONLY);
		if (data_fd < 0)
			return data_fd;
	}
	dst = meta_only ? create_meta_copy(fs, &st, tmp, sizeof(tmp))
			: create_copy(fs, data_fd >= 0 ? data_fd : src_fd, &st, tmp, sizeof(tmp),
				      with_data);
	if (dst < 0) {
		/* A half-made copy (ENOSPC, say) must not keep the space it took. */
		remove_temp(fs, tmp);
		return dst;
	}
	r = finish_copy(fs, node, src_fd, &st, dst);
	if (r == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1) {
		char index_name[32];
		copyup_index_name(node->ino, index_name, sizeof(index_name));
		r = nlink_init_index(fs, dst, st.st_nlink);
		if (r == 0)
			r = link_copy(fs, dst, tmp, fs->index_fd, index_name);
	}
	if (r == 0)
		r = place_copy(fs, dst, tmp, sizeof(tmp), parent_fd, node->name, old->metacopy);
	if (r < 0) {
		remove_temp(fs, tmp);
		return r;
	}
	keep = keepable_fd(dst, st.st_mode);
	r = keep < 0 ? keep
		     : publish(node, old, keep, S_ISREG(st.st_mode) && st.st_nlink > 1, meta_only);
	if (r < 0)
		return r;
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
