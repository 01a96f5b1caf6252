/*
 * Path helpers that never leave the directory fd they start from: openat2()
 * with RESOLVE_BENEATH for lookups, per-component mkdir, and a tree removal
 * that holds a constant number of fds however deep the tree is.
 */
#include "lib/path.h"
#include "lib/macro.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

/* openat2() returns EAGAIN when a concurrent rename may have moved us; retry a few times. */
#define OPENAT2_RETRIES 32

int path_open_beneath(int dirfd, const char *path, int flags, mode_t mode, bool follow_symlinks)
{
	struct open_how how = {
	    .flags = (unsigned)flags | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};
	int fd = -EAGAIN;

	/* openat2() insists on mode 0 unless the call can create a file. */
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		how.mode = mode;
	if (!follow_symlinks)
		how.resolve |= RESOLVE_NO_SYMLINKS;

	for (int i = 0; i < OPENAT2_RETRIES && fd == -EAGAIN; i++)
		fd = RET_NERRNO((int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
	return fd;
}

bool path_is_component(const char *name)
{
	return name && name[0] && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	       !strchr(name, '/');
}

int path_fd_chmod(int fd, mode_t mode)
{
	char proc[PATH_FD_PROC_SIZE];
	int r = RET_NERRNO((int)syscall(SYS_fchmodat2, fd, "", mode, AT_EMPTY_PATH));

	/*
	 * fchmodat2 is Linux 6.6+; before it (or under a seccomp filter saying EPERM
	 * for unknown calls), O_PATH fds need the /proc magic link.
	 */
	if (r != -ENOSYS && r != -EPERM)
		return r;
	r = path_fd_is_opath(fd);
	if (r < 0)
		return r;
	if (r == 0)
		return RET_NERRNO(fchmod(fd, mode));
	return RET_NERRNO(chmod(path_fd_proc(fd, proc, sizeof(proc)), mode));
}

int path_fd_is_opath(int fd)
{
	int fl = RET_NERRNO(fcntl(fd, F_GETFL));

	if (fl < 0)
		return fl;
	return (fl & O_PATH) ? 1 : 0;
}

/* Copies the next component of *p into comp and advances *p; 0 at the end, 1 on one, -errno. */
static int next_component(const char **p, char comp[static NAME_MAX + 1])
{
	const char *s = *p;
	size_t len;

	s += strspn(s, "/");
	len = strcspn(s, "/");
	if (len == 0)
		return 0;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(comp, s, len);
	comp[len] = '\0';
	*p = s + len;
	return 1;
}

/* Opens (creating when missing) the directory name in parent_fd, without following symlinks. */
static int mkdir_open_one(int parent_fd, const char *name, mode_t mode)
{
	int r = RET_NERRNO(mkdirat(parent_fd, name, mode));

	if (r < 0 && r != -EEXIST)
		return r;
	return path_open_beneath(parent_fd, name, O_PATH | O_DIRECTORY, 0, false);
}

int path_mkdir_beneath(int dirfd, const char *path, mode_t mode)
{
	_cleanup_close_ int cur = -EBADF;
	char comp[NAME_MAX + 1];
	int r;

	if (path[0] == '/')
		return -EXDEV;
	if (mode == 0)
		mode = 0755;
	while ((r = next_component(&path, comp)) > 0) {
		int next;

		if (strcmp(comp, ".") == 0)
			continue;
		/* Callers pass normalised paths; ".." would only be a way to escape. */
		if (strcmp(comp, "..") == 0)
			return -EINVAL;
		next = mkdir_open_one(cur >= 0 ? cur : dirfd, comp, mode);
		if (next < 0)
			return next;
		closep(&cur);
		cur = next;
	}
	return r;
}

/*
 * Tree removal holds the directory streams of the first RM_HELD_DIRS levels
 * open while descending, like rm -rf. Below that it keeps only the current
 * one and a stack of names with each directory's (dev, ino), so a tree
 * thousands of levels deep cannot exhaust RLIMIT_NOFILE: going up there
 * opens "..", checked against the recorded identity so a directory moved
 * meanwhile cannot send us deleting somewhere else, and rereads it from the
 * start. Other mounts are never entered.
 */
#define RM_HELD_DIRS 16

struct rm_level {
	char *name; /* name of this directory in its parent */
	DIR *dir;   /* NULL while a deeper level is current and this one was let go */
	dev_t dev;
	ino_t ino;
	uint64_t mnt_id;
};

struct rm_walk {
	struct rm_level *levels;
	size_t depth; /* levels[depth - 1] is the current directory */
	size_t capacity;
	int top_parent_fd;
	uint64_t top_mnt_id; /* mount of top_parent_fd */
};

static int dir_identity(int fd, struct rm_level *level)
{
	struct statx stx;
	int r = RET_NERRNO(statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &stx));

	if (r < 0)
		return r;
	level->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	level->ino = stx.stx_ino;
	level->mnt_id = (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
	return 0;
}

/* fdopendir() taking ownership of fd even when it fails. */
static int open_stream(int fd, DIR **out)
{
	*out = fdopendir(fd);
	if (!*out) {
		int r = -errno;

		close(fd);
		return r;
	}
	return 0;
}

static int rm_grow(struct rm_walk *w)
{
	size_t cap = w->capacity ? w->capacity * 2 : 16;
	struct rm_level *v;

	if (w->depth < w->capacity)
		return 0;
	v = reallocarray(w->levels, cap, sizeof(*v));
	if (!v)
		return -ENOMEM;
	w->levels = v;
	w->capacity = cap;
	return 0;
}

/* Makes the directory name in parent_fd the current level. */
static int rm_push(struct rm_walk *w, int parent_fd, const char *name)
{
	struct rm_level level = {};
	_cleanup_close_ int fd = -EBADF;
	int r;

	fd = RET_NERRNO(openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
	if (fd < 0)
		return fd;
	r = dir_identity(fd, &level);
	if (r < 0)
		return r;
	if (level.mnt_id != (w->depth ? w->levels[w->depth - 1].mnt_id : w->top_mnt_id))
		return -EBUSY;
	r = rm_grow(w);
	if (r < 0)
		return r;
	level.name = strdup(name);
	if (!level.name)
		return -ENOMEM;
	r = open_stream(TAKE_FD(fd), &level.dir);
	if (r < 0) {
		free(level.name);
		return r;
	}
	if (w->depth >= RM_HELD_DIRS) {
		closedir(w->levels[w->depth - 1].dir);
		w->levels[w->depth - 1].dir = NULL;
	}
	w->levels[w->depth++] = level;
	return 0;
}

/* Reopens the let-go parent of the current level through "..", making sure it is the same. */
static int rm_reopen_parent(struct rm_walk *w)
{
	struct rm_level *parent = &w->levels[w->depth - 2], seen;
	_cleanup_close_ int fd = -EBADF;
	int r;

	fd = RET_NERRNO(
	    openat(dirfd(w->levels[w->depth - 1].dir), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (fd < 0)
		return fd;
	r = dir_identity(fd, &seen);
	if (r < 0)
		return r;
	if (seen.dev != parent->dev || seen.ino != parent->ino)
		return -ESTALE;
	return open_stream(TAKE_FD(fd), &parent->dir);
}

/* Leaves the (now empty) current directory for its parent and removes it. */
static int rm_pop(struct rm_walk *w)
{
	struct rm_level *current = &w->levels[w->depth - 1];
	_cleanup_free_ char *name = current->name;
	int r = 0;

	if (w->depth > 1 && !w->levels[w->depth - 2].dir)
		r = rm_reopen_parent(w);
	closedir(current->dir);
	w->depth--;
	if (r < 0)
		return r;
	return RET_NERRNO(unlinkat(w->depth ? dirfd(w->levels[w->depth - 1].dir) : w->top_parent_fd,
				   name, AT_REMOVEDIR));
}

/*
 * Unlinks the non-directories of the current directory. Returns 1 after
 * descending into a subdirectory, 0 when the directory is empty, or -errno.
 */
static int rm_scan(struct rm_walk *w)
{
	DIR *dir = w->levels[w->depth - 1].dir;
	struct dirent *de;
	int r;

	for (errno = 0; (de = readdir(dir)); errno = 0) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type != DT_DIR) {
			/* Linux says EISDIR for a directory, sparing a stat on DT_UNKNOWN. */
			r = RET_NERRNO(unlinkat(dirfd(dir), de->d_name, 0));
			if (r == 0 || r == -ENOENT)
				continue;
			if (r != -EISDIR)
				return r;
		}
		r = rm_push(w, dirfd(dir), de->d_name);
		return r < 0 ? r : 1;
	}
	return -errno;
}

static int rm_walk(struct rm_walk *w, const char *name)
{
	int r = rm_push(w, w->top_parent_fd, name);

	while (r >= 0 && w->depth > 0) {
		r = rm_scan(w);
		if (r == 0)
			r = rm_pop(w);
	}
	return r < 0 ? r : 0;
}

static int remove_entry(int parent_fd, const char *name)
{
	struct rm_walk w = {.top_parent_fd = parent_fd};
	struct rm_level top;
	int r = RET_NERRNO(unlinkat(parent_fd, name, 0));

	if (r != -EISDIR)
		return r == -ENOENT ? 0 : r;
	r = dir_identity(parent_fd, &top);
	if (r < 0)
		return r;
	w.top_mnt_id = top.mnt_id;
	r = rm_walk(&w, name);
	for (size_t i = 0; i < w.depth; i++) {
		if (w.levels[i].dir)
			closedir(w.levels[i].dir);
		free(w.levels[i].name);
	}
	free(w.levels);
	return r;
}

int path_remove_tree(int dirfd, const char *name)
{
	_cleanup_free_ char *copy = strdup(name);
	_cleanup_close_ int parent_fd = -EBADF;
	char *slash, *last;

	if (!copy)
		return -ENOMEM;
	/* Trailing slashes name the same directory: "a/b/" is "a/b". */
	for (size_t len = strlen(copy); len > 1 && copy[len - 1] == '/'; len--)
		copy[len - 1] = '\0';
	slash = strrchr(copy, '/');
	last = slash ? slash + 1 : copy;
	if (!path_is_component(last))
		return -EINVAL;
	if (!slash)
		return remove_entry(dirfd, last);
	*slash = '\0';
	parent_fd = path_open_beneath(dirfd, copy[0] ? copy : "/", O_PATH | O_DIRECTORY, 0, false);
	if (parent_fd < 0)
		return parent_fd == -ENOENT ? 0 : parent_fd;
	return remove_entry(parent_fd, last);
}

char *path_join(const char *a, const char *b)
{
	size_t alen = strlen(a);
	char *out;

	while (alen > 1 && a[alen - 1] == '/')
		alen--;
	b += strspn(b, "/");
	if (alen == 0)
		return strdup(b);
	if (!b[0])
		return strndup(a, alen);
	if (asprintf(&out, "%.*s%s%s", (int)alen, a, a[alen - 1] == '/' ? "" : "/", b) < 0)
		return NULL;
	return out;
}

char *path_fd_proc(int fd, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
	return buf;
}

int path_empty_dir(int dirfd)
{
	_cleanup_close_ int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[8192] __attribute__((aligned(8)));
	bool removed;
	ssize_t n;
	int r;

	if (fd < 0)
		return -errno;
	do {
		/* Entries removed while reading may be skipped: read again until a pass removes none. */
		removed = false;
		if (lseek(fd, 0, SEEK_SET) < 0)
			return -errno;
		while ((n = getdents64(fd, buf, sizeof(buf))) > 0) {
			for (ssize_t off = 0; off < n;) {
				struct dirent64 *d = (struct dirent64 *)(buf + off);
				off += d->d_reclen;
				if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
					continue;
				r = path_remove_tree(fd, d->d_name);
				if (r < 0)
					return r;
				removed = true;
			}
		}
		if (n < 0)
			return -errno;
	} while (removed);
	return 0;
}
