/*
 * Tarball extraction with libarchive's reader, but none of its writer: each
 * entry is created by us with *at() calls relative to a parent dir fd that
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) handed out, so an entry can
 * only ever land inside the target. Directory times are set last, since
 * creating their children changes them.
 */
#include "layerctl/extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/xattr.h"

#define WHITEOUT_PREFIX ".wh."
#define WHITEOUT_OPAQUE ".wh..wh..opq"
#define WHITEOUT_META ".wh..wh."

struct dir_time {
	char *path;
	struct timespec mtime;
};

struct extract {
	struct archive *a;
	int root_fd;
	struct dir_time *dirs;
	size_t ndirs;
	struct timespec root_mtime; /* the epoch unless the archive has a "./" entry */
};

int extract_clean_name(const char *name, char *out, size_t size)
{
	size_t len = 0;

	while (*name) {
		const char *end = strchrnul(name, '/');
		size_t n = (size_t)(end - name);

		if (n == 2 && !strncmp(name, "..", 2))
			return -EXDEV;
		if (n && !(n == 1 && name[0] == '.')) {
			if (len + n + 2 > size)
				return -ENAMETOOLONG;
			if (len)
				out[len++] = '/';
			memcpy(out + len, name, n);
			len += n;
		}
		name = *end ? end + 1 : end;
	}
	out[len] = '\0';
	return 0;
}

/* A dir whose time set_dir_times() sets at the end, once its children are in. */
static int remember_dir(struct extract *x, const char *path, struct timespec mtime)
{
	struct dir_time *grown = realloc(x->dirs, (x->ndirs + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	x->dirs = grown;
	grown[x->ndirs].path = strdup(path);
	if (!grown[x->ndirs].path)
		return -ENOMEM;
	grown[x->ndirs++].mtime = mtime;
	return 0;
}

/*
 * Makes the missing dirs of path ("a/b"), which the archive has no entry
 * for: 0755, root's, and the epoch as their time, so that the same archive
 * gives the same layer (an entry for one of them later sets its own).
 */
static int make_parents(struct extract *x, char *path)
{
	for (char *end = path;; end++) {
		char c = *end;
		int fd, r = 0;

		if (c != '/' && c != '\0')
			continue;
		*end = '\0';
		fd = path_open_beneath(x->root_fd, path, O_PATH | O_DIRECTORY, 0, false);
		if (fd == -ENOENT) {
			r = path_mkdir_beneath(x->root_fd, path, 0755);
			if (r == 0)
				r = remember_dir(x, path, (struct timespec){0, 0});
		} else if (fd < 0) {
			r = fd;
		} else {
			close(fd);
		}
		*end = c;
		if (r < 0 || !c)
			return r;
	}
}

/* Splits "a/b/c" into a parent dir fd for "a/b" (created when missing) and "c". */
static int open_parent(struct extract *x, char *path, const char **base)
{
	char *slash = strrchr(path, '/');
	int r;

	if (!slash) {
		*base = path;
		return RET_NERRNO(fcntl(x->root_fd, F_DUPFD_CLOEXEC, 3));
	}
	*slash = '\0';
	*base = slash + 1;
	r = path_open_beneath(x->root_fd, path, O_RDONLY | O_DIRECTORY, 0, false);
	if (r == -ENOENT) {
		r = make_parents(x, path);
		if (r == 0)
			r = path_open_beneath(x->root_fd, path, O_RDONLY | O_DIRECTORY, 0, false);
	}
	*slash = '/';
	return r;
}

/* A later entry replaces an earlier one of the same name, unless both are dirs. */
static int clear_name(int parent_fd, const char *base, mode_t type)
{
	struct stat st;

	if (fstatat(parent_fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (S_ISDIR(st.st_mode) && type == S_IFDIR)
		return 0;
	return path_remove_tree(parent_fd, base);
}

static int copy_data(struct extract *x, int fd, int64_t size)
{
	const void *buf;
	size_t len;
	la_int64_t offset;
	int r;

	while ((r = archive_read_data_block(x->a, &buf, &len, &offset)) == ARCHIVE_OK) {
		const char *p = buf;

		while (len) {
			ssize_t n = pwrite(fd, p, len, offset);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return -errno;
			p += n;
			len -= (size_t)n;
			offset += n;
		}
	}
	if (r != ARCHIVE_EOF)
		return -EIO;
	/* Sparse entries may end in a hole. */
	return RET_NERRNO(ftruncate(fd, size));
}

static int create_file(struct extract *x, int parent_fd, const char *base, struct archive_entry *e)
{
	_cleanup_close_ int fd = -EBADF;

	fd = RET_NERRNO(
	    openat(parent_fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
	if (fd < 0)
		return fd;
	return copy_data(x, fd, archive_entry_size(e));
}

static int create_hardlink(struct extract *x, int parent_fd, const char *base, const char *target)
{
	char clean[PATH_MAX];
	const char *tbase;
	_cleanup_close_ int tparent_fd = -EBADF;
	int r = extract_clean_name(target, clean, sizeof(clean));

	if (r < 0)
		return r;
	if (!clean[0])
		return -EINVAL;
	tparent_fd = open_parent(x, clean, &tbase);
	if (tparent_fd < 0)
		return tparent_fd;
	/* No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink, never its target. */
	return RET_NERRNO(linkat(tparent_fd, tbase, parent_fd, base, 0));
}

static int create_node(struct extract *x, int parent_fd, const char *base, struct archive_entry *e)
{
	mode_t type = archive_entry_filetype(e);
	const char *hardlink = archive_entry_hardlink(e);

	if (hardlink)
		return create_hardlink(x, parent_fd, base, hardlink);
	switch (type) {
	case AE_IFDIR:
		return mkdirat(parent_fd, base, 0700) < 0 && errno != EEXIST ? -errno : 0;
	case AE_IFREG:
		return create_file(x, parent_fd, base, e);
	case AE_IFLNK:
		/* The target is data: it is only ever followed inside the container's root. */
		return RET_NERRNO(symlinkat(archive_entry_symlink(e) ?: "", parent_fd, base));
	case AE_IFCHR:
	case AE_IFBLK:
	case AE_IFIFO:
	case AE_IFSOCK:
		return RET_NERRNO(mknodat(parent_fd, base, type | 0600, archive_entry_rdev(e)));
	default:
		return -EOPNOTSUPP;
	}
}

static int set_xattrs(int parent_fd, const char *base, struct archive_entry *e)
{
	_cleanup_close_ int fd = -EBADF;
	const char *name;
	const void *value;
	size_t len;

	if (archive_entry_xattr_reset(e) == 0)
		return 0;
	fd = RET_NERRNO(openat(parent_fd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC));
	if (fd < 0)
		return fd;
	while (archive_entry_xattr_next(e, &name, &value, &len) == ARCHIVE_OK) {
		int r = xattr_set_fd(fd, name, value, len, 0);

		if (r < 0)
			return r;
	}
	return 0;
}

static int set_metadata(int parent_fd, const char *base, struct archive_entry *e)
{
	mode_t type = archive_entry_filetype(e);
	struct timespec times[2] = {
	    {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
	    {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
	};
	int r;

	/* Owner, then mode (chown clears setuid), then xattrs (chown drops capabilities). */
	if (fchownat(parent_fd, base, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e),
		     AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	if (type != AE_IFLNK && fchmodat(parent_fd, base, archive_entry_perm(e), 0) < 0)
		return -errno;
	r = set_xattrs(parent_fd, base, e);
	if (r < 0)
		return r;
	if (type == AE_IFDIR)
		return 0;
	return RET_NERRNO(utimensat(parent_fd, base, times, AT_SYMLINK_NOFOLLOW));
}

/* The root entry ("./"): mode, owner and time, so the same archive gives the same layer. */
static int set_root_metadata(struct extract *x, struct archive_entry *e)
{
	if (archive_entry_filetype(e) != AE_IFDIR)
		return -EINVAL;
	if (fchown(x->root_fd, (uid_t)archive_entry_uid(e), (gid_t)archive_entry_gid(e)) < 0 ||
	    fchmod(x->root_fd, archive_entry_perm(e)) < 0)
		return -errno;
	x->root_mtime = (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)};
	return set_xattrs(x->root_fd, ".", e);
}

static int apply_whiteout(int parent_fd, const char *base, struct archive_entry *e)
{
	const char *hidden = base + strlen(WHITEOUT_PREFIX);
	/* The marker's own time, not now: the same archive must give the same layer. */
	struct timespec times[2] = {
	    {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
	    {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
	};

	if (!strcmp(base, WHITEOUT_OPAQUE))
		return xattr_set_fd(parent_fd, "trusted.overlay.opaque", "y", 1, 0);
	if (!strncmp(base, WHITEOUT_META, strlen(WHITEOUT_META)))
		return 0; /* aufs's own bookkeeping (.wh..wh.plnk and the like) */
	if (!path_is_component(hidden))
		return -EINVAL;
	if (clear_name(parent_fd, hidden, 0) < 0)
		return -EEXIST;
	if (mknodat(parent_fd, hidden, S_IFCHR | 0, makedev(0, 0)) < 0)
		return -errno;
	return RET_NERRNO(utimensat(parent_fd, hidden, times, AT_SYMLINK_NOFOLLOW));
}

static int extract_entry(struct extract *x, struct archive_entry *e)
{
	char path[PATH_MAX];
	const char *base;
	_cleanup_close_ int parent_fd = -EBADF;
	int r = extract_clean_name(archive_entry_pathname(e), path, sizeof(path));

	if (r < 0)
		return r;
	if (!path[0])
		return set_root_metadata(x, e);
	parent_fd = open_parent(x, path, &base);
	if (parent_fd < 0)
		return parent_fd;
	if (!strncmp(base, WHITEOUT_PREFIX, strlen(WHITEOUT_PREFIX)))
		return apply_whiteout(parent_fd, base, e);
	r = clear_name(parent_fd, base, archive_entry_filetype(e));
	if (r == 0)
		r = create_node(x, parent_fd, base, e);
	if (r == 0 && !archive_entry_hardlink(e))
		r = set_metadata(parent_fd, base, e);
	if (r == 0 && archive_entry_filetype(e) == AE_IFDIR)
		r = remember_dir(
		    x, path,
		    (struct timespec){archive_entry_mtime(e), archive_entry_mtime_nsec(e)});
	return r;
}

static void set_dir_times(struct extract *x)
{
	/* All children are in, so no order is needed, but for a dir listed twice the later wins. */
	for (size_t i = 0; i < x->ndirs; i++) {
		_cleanup_close_ int fd =
		    path_open_beneath(x->root_fd, x->dirs[i].path, O_PATH | O_DIRECTORY, 0, false);
		struct timespec times[2] = {x->dirs[i].mtime, x->dirs[i].mtime};
		char proc[PATH_FD_PROC_SIZE];

		if (fd >= 0)
			utimensat(AT_FDCWD, path_fd_proc(fd, proc, sizeof(proc)), times, 0);
		free(x->dirs[i].path);
	}
	free(x->dirs);
	futimens(x->root_fd, (struct timespec[2]){x->root_mtime, x->root_mtime});
}

static int extract_all(struct extract *x, const char *tarball)
{
	struct archive_entry *e;
	int r;

	while ((r = archive_read_next_header(x->a, &e)) == ARCHIVE_OK) {
		const char *name = archive_entry_pathname(e);

		r = extract_entry(x, e);
		if (r == -EXDEV || r == -ELOOP) {
			log_error("import: %s: entry '%s' %s: refused", tarball, name,
				  r == -EXDEV ? "leaves the layer through '..'"
					      : "goes through a symlink");
			return r;
		}
		if (r < 0)
			return log_errno(r, "import: %s: entry '%s'", tarball, name);
	}
	if (r != ARCHIVE_EOF) {
		log_error("import: %s: %s", tarball, archive_error_string(x->a) ?: "bad archive");
		return -EINVAL;
	}
	return 0;
}

int extract_tar_fd(int fd, const char *label, const char *dir)
{
	struct extract x = {.root_fd = -EBADF};
	int r;

	x.root_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.root_fd < 0)
		return log_errno(-errno, "import: %s", dir);
	x.a = archive_read_new();
	if (!x.a || fchmod(x.root_fd, 0755) < 0) {
		r = x.a ? log_errno(-errno, "import: %s", dir) : -ENOMEM;
		archive_read_free(x.a);
		close(x.root_fd);
		return r;
	}
	archive_read_support_filter_all(x.a);
	archive_read_support_format_tar(x.a);
	archive_read_support_format_gnutar(x.a);
	if (archive_read_open_fd(x.a, fd, 1 << 20) != ARCHIVE_OK) {
		log_error("import: %s: %s", label, archive_error_string(x.a) ?: "cannot open");
		r = -EINVAL;
	} else {
		r = extract_all(&x, label);
	}
	archive_read_free(x.a);
	set_dir_times(&x);
	close(x.root_fd);
	return r;
}

int extract_tar(const char *tarball, const char *dir)
{
	_cleanup_close_ int fd = open(tarball, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return log_errno(-errno, "import: %s", tarball);
	return extract_tar_fd(fd, tarball, dir);
}
