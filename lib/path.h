/* Path helpers that never leave the directory fd they start from. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * openat2() with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS (and RESOLVE_NO_SYMLINKS
 * when follow_symlinks is false): relative path inside dirfd, never escaping it.
 * Returns an fd (O_CLOEXEC is always added) or -errno.
 */
int path_open_beneath(int dirfd, const char *path, int flags, mode_t mode, bool follow_symlinks);

/* True when name is one path component: not empty, not "." or "..", no '/'. */
bool path_is_component(const char *name);

/*
 * Creates every missing directory of a relative path beneath dirfd (mode 0755 unless given,
 * i.e. when mode is 0). Symlinks are not followed (-ELOOP), ".." is refused (-EINVAL).
 */
int path_mkdir_beneath(int dirfd, const char *path, mode_t mode);

/*
 * Removes a tree beneath dirfd (like rm -rf on dirfd/name), never following symlinks.
 * name may be a relative path (its parents are resolved beneath dirfd without
 * symlinks); a missing name is success. Holds a constant number of fds at any
 * depth, refuses (-EBUSY) to enter another mount, stops at the first error.
 */
int path_remove_tree(int dirfd, const char *name);

/* Removes everything inside the directory dirfd (which stays), never following symlinks. */
int path_empty_dir(int dirfd);

/* Joins a and b with one '/' into a new string; NULL when out of memory. */
char *path_join(const char *a, const char *b);

/* "/proc/self/fd/N" for fd into buf (at least 32 bytes); returns buf. */
#define PATH_FD_PROC_SIZE 32
char *path_fd_proc(int fd, char *buf, size_t size);

/* chmod of fd's file, also for an O_PATH fd (fchmodat2, or /proc/self/fd before Linux 6.6). */
int path_fd_chmod(int fd, mode_t mode);

/* 1 when fd was opened with O_PATH (so f*() calls refuse it), 0 when not, or -errno. */
int path_fd_is_opath(int fd);
