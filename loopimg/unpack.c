/*
 * loopimg unpack: an image back into a directory, read through libext2fs.
 * The image is untrusted. Everything is created by us beneath DIR through
 * dir fds and *at() calls with O_EXCL/O_NOFOLLOW, and each name is checked
 * to be a single component, so no name, symlink or ".." in the image can
 * lead a write outside DIR. A directory inode met twice (a loop) or a tree
 * deeper than MAX_DEPTH is an error, so a hostile image cannot hang us.
 */
#include "loopimg/unpack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/progress.h"
#include "loopimg/ext4_read.h"

#define MAX_DEPTH 2048
#define ROOT_INO 2

struct entry {
	char name[NAME_MAX + 1];
	uint32_t ino;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

struct unpack {
	struct ext4_reader *r;
	const char *img;
	int root_fd;
	uint8_t *visited;  /* one bit per inode: directories entered, first links made */
	char **link_paths; /* inode -> path (relative to DIR) of its first link */
	uint32_t ninodes;
	bool privileged;
	struct progress progress; /* bytes of the image: each object's blocks once made */
	uint64_t done;
};

static bool bit_test_and_set(uint8_t *map, uint32_t ino)
{
	bool was = map[ino / 8] & (1u << (ino % 8));

	map[ino / 8] |= 1u << (ino % 8);
	return was;
}

static int collect_entry(const char *name, size_t len, uint32_t ino, void *opaque)
{
	struct entries *e = opaque;

	if (len == 0 || len > NAME_MAX || memchr(name, '\0', len) || memchr(name, '/', len) ||
	    (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return log_errno(-EUCLEAN, "unpack: bad name '%.*s' in the image", (int)len, name);
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 32;
		struct entry *v = realloc(e->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	memcpy(e->v[e->n].name, name, len);
	e->v[e->n].name[len] = '\0';
	e->v[e->n].ino = ino;
	e->n++;
	return 0;
}

/* ---- metadata ---- */

struct xattr_target {
	int fd;		  /* an open fd, or -1 to go by path */
	const char *path; /* /proc/self/fd/DIRFD/NAME */
	bool privileged;
};

static int set_xattr(const char *name, const void *value, size_t len, void *opaque)
{
	const struct xattr_target *t = opaque;
	int r = t->fd >= 0 ? fsetxattr(t->fd, name, value, len, 0)
			   : lsetxattr(t->path, name, value, len, 0);

	if (r == 0)
		return 0;
	/* Unprivileged, trusted.* and security.* cannot be set: not worth failing for. */
	if (!t->privileged && (errno == EPERM || errno == ENOTSUP))
		return 0;
	return log_errno(-errno, "unpack: %s: xattr %s", t->path, name);
}

static void proc_path(char *buf, size_t size, int dirfd, const char *name)
{
	snprintf(buf, size, "/proc/self/fd/%d/%s", dirfd, name);
}

/* Owner, mode, xattrs, times, in that order (chown clears setuid; times last). */
static int apply_meta(struct unpack *u, int dirfd, const char *name, int fd, uint32_t ino,
		      const struct ext4_inode_attr *a)
{
	char path[PATH_MAX];
	struct xattr_target t = {.fd = fd, .path = path, .privileged = u->privileged};
	struct timespec times[2] = {a->atime, a->mtime};
	int r;

	proc_path(path, sizeof(path), dirfd, name);
	if (u->privileged && fchownat(dirfd, name, a->uid, a->gid,
				      AT_SYMLINK_NOFOLLOW | (name[0] ? 0 : AT_EMPTY_PATH)) < 0)
		return log_errno(-errno, "unpack: %s: chown", name);
	if (!S_ISLNK(a->mode)) {
		r = fd >= 0 ? fchmod(fd, a->mode & 07777)
			    : fchmodat(dirfd, name, a->mode & 07777, 0);
		if (r < 0)
			return log_errno(-errno, "unpack: %s: chmod", name);
	}
	r = ext4_read_xattrs(u->r, ino, set_xattr, &t);
	if (r < 0)
		return r;
	r = fd >= 0 ? futimens(fd, times) : utimensat(dirfd, name, times, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? log_errno(-errno, "unpack: %s: times", name) : 0;
}

/* ---- objects ---- */

static void advance(struct unpack *u, const struct ext4_inode_attr *a)
{
	u->done += a->alloc_bytes;
	progress_update(&u->progress, u->done);
}

static int make_file(struct unpack *u, int dirfd, const struct entry *e,
		     const struct ext4_inode_attr *a)
{
	_cleanup_close_ int fd =
	    openat(dirfd, e->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	int r;

	if (fd < 0)
		return log_errno(-errno, "unpack: %s", e->name);
	r = ext4_read_data(u->r, e->ino, fd);
	if (r < 0)
		return log_errno(r, "unpack: %s: data", e->name);
	advance(u, a);
	return apply_meta(u, dirfd, e->name, fd, e->ino, a);
}

static int make_special(struct unpack *u, int dirfd, const struct entry *e,
			const struct ext4_inode_attr *a)
{
	int r;

	if (S_ISLNK(a->mode)) {
		char target[PATH_MAX];

		r = ext4_read_symlink(u->r, e->ino, target, sizeof(target));
		if (r < 0)
			return r;
		r = symlinkat(target, dirfd, e->name);
	} else {
		r = mknodat(dirfd, e->name, a->mode & S_IFMT, a->rdev);
	}
	if (r < 0)
		return log_errno(-errno, "unpack: %s", e->name);
	advance(u, a);
	return apply_meta(u, dirfd, e->name, -1, e->ino, a);
}

static char *join(const char *dir, const char *name)
{
	char *p;

	if (asprintf(&p, "%s%s%s", dir, dir[0] ? "/" : "", name) < 0)
		return NULL;
	return p;
}

/* Later links of an inode become hard links to the first; their paths are ours, beneath DIR. */
static int make_link_or_object(struct unpack *u, int dirfd, const char *rel, const struct entry *e,
			       const struct ext4_inode_attr *a)
{
	int r;

	if (a->links > 1 && u->link_paths[e->ino]) {
		if (linkat(u->root_fd, u->link_paths[e->ino], dirfd, e->name, 0) < 0)
			return log_errno(-errno, "unpack: %s: link", e->name);
		return 0;
	}
	if (S_ISREG(a->mode))
		r = make_file(u, dirfd, e, a);
	else if (S_ISLNK(a->mode) || S_ISCHR(a->mode) || S_ISBLK(a->mode) || S_ISFIFO(a->mode) ||
		 S_ISSOCK(a->mode))
		r = make_special(u, dirfd, e, a);
	else
		return log_errno(-EUCLEAN, "unpack: %s: unknown file type %o", e->name, a->mode);
	if (r >= 0 && a->links > 1) {
		u->link_paths[e->ino] = join(rel, e->name);
		if (!u->link_paths[e->ino])
			return -ENOMEM;
	}
	return r;
}

static int unpack_dir(struct unpack *u, uint32_t ino, int dirfd, const char *rel, int depth);

static int make_dir(struct unpack *u, int dirfd, const char *rel, const struct entry *e,
		    const struct ext4_inode_attr *a, int depth)
{
	_cleanup_free_ char *sub = join(rel, e->name);
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (!sub)
		return -ENOMEM;
	if (bit_test_and_set(u->visited, e->ino))
		return log_errno(-ELOOP, "unpack: %s: directory loop in the image", sub);
	if (mkdirat(dirfd, e->name, 0700) < 0)
		return log_errno(-errno, "unpack: %s", sub);
	fd = openat(dirfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "unpack: %s", sub);
	advance(u, a);
	r = unpack_dir(u, e->ino, fd, sub, depth + 1);
	if (r < 0)
		return r;
	return apply_meta(u, dirfd, e->name, fd, e->ino, a);
}

static bool is_empty_lost_found(struct unpack *u, uint32_t parent, const struct entry *e)
{
	struct entries sub = {0};
	bool empty;

	if (parent != ROOT_INO || strcmp(e->name, "lost+found"))
		return false;
	empty = ext4_read_dir(u->r, e->ino, collect_entry, &sub) == 0 && sub.n == 0;
	free(sub.v);
	return empty;
}

static int unpack_entry(struct unpack *u, uint32_t parent, int dirfd, const char *rel,
			const struct entry *e, int depth)
{
	struct ext4_inode_attr a;
	int r = ext4_read_inode(u->r, e->ino, &a);

	if (r < 0)
		return r;
	if (S_ISDIR(a.mode)) {
		/* mke2fs and pack make it; an empty one is not part of the tree. */
		if (is_empty_lost_found(u, parent, e)) {
			advance(u, &a);
			return 0;
		}
		return make_dir(u, dirfd, rel, e, &a, depth);
	}
	return make_link_or_object(u, dirfd, rel, e, &a);
}

static int unpack_dir(struct unpack *u, uint32_t ino, int dirfd, const char *rel, int depth)
{
	struct entries list = {0};
	int r;

	if (depth > MAX_DEPTH)
		return log_errno(-ELOOP, "unpack: %s: tree deeper than %d", rel, MAX_DEPTH);
	r = ext4_read_dir(u->r, ino, collect_entry, &list);
	for (size_t i = 0; r >= 0 && i < list.n; i++)
		r = unpack_entry(u, ino, dirfd, rel, &list.v[i], depth);
	free(list.v);
	return r;
}

/* ---- the target directory ---- */

static int open_target(const char *dir)
{
	_cleanup_close_ int fd = -EBADF;
	DIR *d;
	struct dirent *de;
	int count = 0;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return log_errno(-errno, "unpack: %s", dir);
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return log_errno(-errno, "unpack: %s", dir);
	d = fdopendir(dup(fd));
	if (!d)
		return log_errno(-errno, "unpack: %s", dir);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			count++;
	closedir(d);
	if (count) {
		log_error("unpack: %s: directory not empty", dir);
		return -ENOTEMPTY;
	}
	return TAKE_FD(fd);
}

static int unpack_root(struct unpack *u)
{
	struct ext4_inode_attr a;
	int r = ext4_read_inode(u->r, ROOT_INO, &a);

	if (r < 0)
		return r;
	if (!S_ISDIR(a.mode))
		return log_errno(-EUCLEAN, "unpack: %s: root is not a directory", u->img);
	bit_test_and_set(u->visited, ROOT_INO);
	advance(u, &a);
	r = unpack_dir(u, ROOT_INO, u->root_fd, "", 0);
	if (r < 0)
		return r;
	return apply_meta(u, u->root_fd, "", u->root_fd, ROOT_INO, &a);
}

int unpack_run(const char *img, const char *dir, bool progress)
{
	struct unpack u = {.img = img, .root_fd = -EBADF, .privileged = geteuid() == 0};
	int r = ext4_read_open(img, &u.r);

	if (r < 0)
		return r;
	u.ninodes = ext4_read_inode_count(u.r);
	u.visited = calloc(u.ninodes / 8 + 1, 1);
	u.link_paths = calloc((size_t)u.ninodes + 1, sizeof(*u.link_paths));
	if (!u.visited || !u.link_paths)
		r = -ENOMEM;
	if (r >= 0)
		r = u.root_fd = open_target(dir);
	if (r >= 0 && progress)
		progress_init(&u.progress, "unpack", ext4_read_used_bytes(u.r), true, false);
	if (r >= 0)
		r = unpack_root(&u);
	/* What the objects' blocks leave out (inode tables, bitmaps, a journal) was read on the
	 * way. */
	if (r >= 0)
		progress_update(&u.progress, MAX(u.done, u.progress.total));
	progress_finish(&u.progress);
	if (u.link_paths)
		for (uint32_t i = 0; i <= u.ninodes; i++)
			free(u.link_paths[i]);
	free(u.link_paths);
	free(u.visited);
	if (u.root_fd >= 0)
		close(u.root_fd);
	ext4_read_close(u.r);
	return r < 0 ? r : 0;
}
