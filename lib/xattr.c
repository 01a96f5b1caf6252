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

#include <string.h>
#include <sys/xattr.h>

/* Fills proc with the /proc path when fd is O_PATH: 1 if so, 0 if fd is ordinary, -errno. */
static int opath_proc(int fd, char proc[static PATH_FD_PROC_SIZE])
{
	int r = path_fd_is_opath(fd);

	if (r > 0)
		path_fd_proc(fd, proc, PATH_FD_PROC_SIZE);
	return r;
}

ssize_t xattr_get_fd(int fd, const char *name, void *value, size_t size)
{
	char proc[PATH_FD_PROC_SIZE];
	int r = opath_proc(fd, proc);

	if (r < 0)
		return r;
	if (r)
		return RET_NERRNO(getxattr(proc, name, value, size));
	return RET_NERRNO(fgetxattr(fd, name, value, size));
}

int xattr_set_fd(int fd, const char *name, const void *value, size_t size, int flags)
{
	char proc[PATH_FD_PROC_SIZE];
	int r = opath_proc(fd, proc);

	if (r < 0)
		return r;
	if (r)
		return RET_NERRNO(setxattr(proc, name, value, size, flags));
	return RET_NERRNO(fsetxattr(fd, name, value, size, flags));
}

int xattr_remove_fd(int fd, const char *name)
{
	char proc[PATH_FD_PROC_SIZE];
	int r = opath_proc(fd, proc);

	if (r < 0)
		return r;
	if (r)
		return RET_NERRNO(removexattr(proc, name));
	return RET_NERRNO(fremovexattr(fd, name));
}

ssize_t xattr_list_fd(int fd, char *list, size_t size)
{
	char proc[PATH_FD_PROC_SIZE];
	int r = opath_proc(fd, proc);

	if (r < 0)
		return r;
	if (r)
		return RET_NERRNO(listxattr(proc, list, size));
	return RET_NERRNO(flistxattr(fd, list, size));
}

/*
 * Asks for the size, allocates, fetches; the value may grow in between
 * (ERANGE), so that is retried a few times.
 */
static ssize_t fetch_alloc(int fd, const char *name, char **out)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		ssize_t size = name ? xattr_get_fd(fd, name, NULL, 0) : xattr_list_fd(fd, NULL, 0);
		_cleanup_free_ char *buf = NULL;
		ssize_t n;

		if (size < 0)
			return size;
		buf = malloc((size_t)size + 1);
		if (!buf)
			return -ENOMEM;
		n = name ? xattr_get_fd(fd, name, buf, (size_t)size)
			 : xattr_list_fd(fd, buf, (size_t)size);
		if (n == -ERANGE)
			continue;
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

int xattr_copy_all(int src_fd, int dst_fd, bool (*skip)(const char *name))
{
	_cleanup_free_ char *list = NULL;
	ssize_t len = xattr_list_alloc(src_fd, &list);

	/* A file system without xattrs has nothing to copy. */
	if (len == -EOPNOTSUPP)
		return 0;
	if (len < 0)
		return (int)len;
	for (const char *name = list; name < list + len; name += strlen(name) + 1) {
		int r;

		if (skip && skip(name))
			continue;
		r = copy_one(src_fd, dst_fd, name);
		if (r < 0)
			return r;
	}
	return 0;
}
