/*
 * Extended attributes on fds of any kind. Ordinary fds use f*xattr(). O_PATH
 * fds are refused by f*xattr() (EBADF), and on Linux 6.18 also by the
 * *xattrat(fd, "", AT_EMPTY_PATH) calls, so they go through /proc/self/fd/N
 * with the *following* variants (getxattr, not lgetxattr): resolving the magic
 * link jumps to the fd's own file and the walk stops there, even when that
 * file is a symlink. So for a symlink's O_PATH fd these calls address the
 * symlink itself, never its target; lgetxattr would address the /proc link.
 * The kernel refuses user.* xattrs on symlinks and special files (EPERM on
 * set, ENODATA on get); trusted.* (CAP_SYS_ADMIN) and security.* work there.
 */
#include "lib/xattr.h"
#include "lib/log.h"
#include "lib/macro.h"
#include "lib/path.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define XATTR_FIRST_GUESS 256

/*
 * An O_PATH fd fails the f*xattr() calls at once with EBADF: then the call goes by
 * /proc/self/fd/N. Cheaper than asking fcntl() about every fd first.
 */
static bool retry_via_proc(int fd, ssize_t r, char proc[static PATH_FD_PROC_SIZE])
{
	if (r >= 0 || errno != EBADF || fd < 0)
		return false;
	path_fd_proc(fd, proc, PATH_FD_PROC_SIZE);
	return true;
}

/* r as -errno; /proc/self/fd/N of an fd that is not open says ENOENT, which is EBADF. */
static ssize_t result(ssize_t r, bool via_proc)
{
	if (r >= 0)
		return r;
	return via_proc && errno == ENOENT ? -EBADF : -errno;
}

ssize_t xattr_get_fd(int fd, const char *name, void *value, size_t size)
{
	char proc[PATH_FD_PROC_SIZE];
	ssize_t r = fgetxattr(fd, name, value, size);
	bool via_proc = retry_via_proc(fd, r, proc);

	if (via_proc)
		r = getxattr(proc, name, value, size);
	return result(r, via_proc);
}

int xattr_set_fd(int fd, const char *name, const void *value, size_t size, int flags)
{
	char proc[PATH_FD_PROC_SIZE];
	int r = fsetxattr(fd, name, value, size, flags);
	bool via_proc = retry_via_proc(fd, r, proc);

	if (via_proc)
		r = setxattr(proc, name, value, size, flags);
	return (int)result(r, via_proc);
}

int xattr_remove_fd(int fd, const char *name)
{
	char proc[PATH_FD_PROC_SIZE];
	int r = fremovexattr(fd, name);
	bool via_proc = retry_via_proc(fd, r, proc);

	if (via_proc)
		r = removexattr(proc, name);
	return (int)result(r, via_proc);
}

ssize_t xattr_list_fd(int fd, char *list, size_t size)
{
	char proc[PATH_FD_PROC_SIZE];
	ssize_t r = flistxattr(fd, list, size);
	bool via_proc = retry_via_proc(fd, r, proc);

	if (via_proc)
		r = listxattr(proc, list, size);
	return result(r, via_proc);
}

static ssize_t fetch(int fd, const char *name, char *buf, size_t size)
{
	return name ? xattr_get_fd(fd, name, buf, size) : xattr_list_fd(fd, buf, size);
}

/*
 * Fetches into a first guess of a buffer, which most lists and values fit (one call); when
 * it is too small (ERANGE), asks for the size and tries again, a few times, for the value may
 * grow in between.
 */
static ssize_t fetch_alloc(int fd, const char *name, char **out)
{
	size_t size = XATTR_FIRST_GUESS;

	for (int attempt = 0; attempt < 8; attempt++) {
		_cleanup_free_ char *buf = malloc(size + 1);
		ssize_t n;

		if (!buf)
			return -ENOMEM;
		n = fetch(fd, name, buf, size);
		if (n == -ERANGE) {
			n = fetch(fd, name, NULL, 0);
			if (n < 0)
				return n;
			size = n > 0 ? (size_t)n : 1; /* size 0 would ask for the size again */
			continue;
		}
		if (n < 0)
			return n;
		buf[n] = '\0';
		*out = TAKE_PTR(buf);
		return n;
	}
	return -ERANGE;
}

ssize_t xattr_get_alloc(int fd, const char *name, char **out)
{
	return fetch_alloc(fd, name, out);
}

ssize_t xattr_list_alloc(int fd, char **out)
{
	return fetch_alloc(fd, NULL, out);
}

/* trusted.* needs CAP_SYS_ADMIN and security.* may be refused by an LSM or the file system. */
static bool may_skip_failure(const char *name, int err)
{
	if (err != -EPERM && err != -EOPNOTSUPP && err != -EACCES)
		return false;
	return strncmp(name, "trusted.", 8) == 0 || strncmp(name, "security.", 9) == 0;
}

static int copy_one(int src_fd, int dst_fd, const char *name)
{
	_cleanup_free_ char *value = NULL;
	ssize_t len = xattr_get_alloc(src_fd, name, &value);
	int r;

	/* Removed since it was listed, or listed but not readable by us. */
	if (len == -ENODATA)
		return 0;
	if (len < 0)
		return may_skip_failure(name, (int)len) ? 0 : (int)len;
	r = xattr_set_fd(dst_fd, name, value, (size_t)len, 0);
	if (r < 0 && may_skip_failure(name, r)) {
		log_debug("xattr: not copying %s: %s", name, strerror(-r));
		return 0;
	}
	return r;
}

int xattr_for_each(int fd, int (*fn)(int fd, const char *name, void *arg), void *arg)
{
	_cleanup_free_ char *list = NULL;
	ssize_t len = xattr_list_alloc(fd, &list);

	/* A file system without xattrs has none to walk. */
	if (len == -EOPNOTSUPP)
		return 0;
	if (len < 0)
		return (int)len;
	for (const char *name = list; name < list + len; name += strlen(name) + 1) {
		int r = fn(fd, name, arg);
		if (r < 0)
			return r;
	}
	return 0;
}

struct copy_all {
	int dst_fd;
	bool (*skip)(const char *name);
};

static int copy_listed(int src_fd, const char *name, void *arg)
{
	const struct copy_all *c = arg;

	return c->skip && c->skip(name) ? 0 : copy_one(src_fd, c->dst_fd, name);
}

int xattr_copy_all(int src_fd, int dst_fd, bool (*skip)(const char *name))
{
	struct copy_all c = {.dst_fd = dst_fd, .skip = skip};

	return xattr_for_each(src_fd, copy_listed, &c);
}
