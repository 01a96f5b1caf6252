/* Extended attributes on fds of any kind, including O_PATH fds and symlinks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * The *_fd functions accept any fd: regular O_RDONLY fds use f*xattr, O_PATH
 * fds go through /proc/self/fd/N (getxattr & co, which stop at the fd's own
 * file: for a symlink fd this addresses the symlink itself, never its target).
 * The kernel allows no user.* xattrs on symlinks and special files (EPERM on
 * set); trusted.* and security.* work on them. Return a size/0 or -errno.
 */
ssize_t xattr_get_fd(int fd, const char *name, void *value, size_t size);
int xattr_set_fd(int fd, const char *name, const void *value, size_t size, int flags);
int xattr_remove_fd(int fd, const char *name);
ssize_t xattr_list_fd(int fd, char *list, size_t size);

/* Allocating helpers: *out is malloc'd (NUL-terminated for convenience); length or -errno. */
ssize_t xattr_get_alloc(int fd, const char *name, char **out);
ssize_t xattr_list_alloc(int fd, char **out);

/*
 * Calls fn(fd, name, arg) for each xattr name fd has, in listing order, until
 * one returns < 0 (returned). A file system without xattrs (EOPNOTSUPP) has none.
 */
int xattr_for_each(int fd, int (*fn)(int fd, const char *name, void *arg), void *arg);

/* Copies every xattr src_fd has and the process may set on dst_fd (skipping those for which
 * skip(name) is true when skip is non-NULL). EPERM/EACCES/ENOTSUP on one name is not fatal
 * for trusted.* and security.* names (they need privileges, an LSM's consent or file system
 * support the process may lack), whoever runs it: such a name is skipped (logged at debug
 * level). Returns 0 or -errno.
 * security.capability is copied too; chown the destination before, not after (chown
 * drops it). A source whose file system has no xattrs (EOPNOTSUPP) copies nothing. */
int xattr_copy_all(int src_fd, int dst_fd, bool (*skip)(const char *name));
