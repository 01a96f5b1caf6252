/* Extended attributes through the union: read from the top-most object, internal names hidden. */
#include "unionfs/xattr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "lib/macro.h"
#include "lib/xattr.h"
#include "unionfs/copyup.h"
#include "unionfs/inode.h"
#include "unionfs/unionfs.h"

static const char *const internal_prefixes[] = {
    "trusted.overlay.",
    "user.overlay.",
    "trusted.unionfs.",
    "user.unionfs.",
};

bool unionfs_xattr_is_internal(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(internal_prefixes); i++)
		if (strncmp(name, internal_prefixes[i], strlen(internal_prefixes[i])) == 0)
			return true;
	return false;
}

/*
 * The kernel asks for security.capability before the first write to each
 * inode it has (re)read the attributes of (for a file just created, one round
 * trip per file), and ls -l asks each file for security.selinux and its ACLs.
 * What is absent is remembered in node->xattr_state, unless the branches may
 * change behind our back (udba=reval): only a change through us (setxattr, a
 * copy-up) can add a name.
 */
#define XATTR_NO_CAPS 1u
#define XATTR_NONE 2u	/* no name a caller may see */
#define XATTR_LISTED 4u /* listed since the last change: XATTR_NONE is up to date */
#define XATTR_CHANGE 8u
static const char caps_name[] = "security.capability";

void unionfs_xattr_made(struct node *node)
{
	/* Not XATTR_NONE: a default ACL or a security module may have given it some. */
	__atomic_fetch_or(&node->xattr_state, XATTR_NO_CAPS, __ATOMIC_RELEASE);
}

void unionfs_xattr_changed(struct node *node)
{
	uint32_t s = __atomic_load_n(&node->xattr_state, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(&node->xattr_state, &s,
					    (s + XATTR_CHANGE) & ~(XATTR_CHANGE - 1), true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

/* Removes internal names from a NUL-separated list in place; returns the new length. */
static size_t filter_list(char *list, size_t len)
{
	size_t out = 0;

	for (size_t in = 0; in < len;) {
		size_t n = strnlen(list + in, len - in) + 1;
		if (!unionfs_xattr_is_internal(list + in)) {
			memmove(list + out, list + in, n);
			out += n;
		}
		in += n;
	}
	return out;
}

/* Whether fd's object has no xattr a caller may see; false when unsure. */
static bool shows_no_xattrs(int fd)
{
	char list[256];
	ssize_t len = xattr_list_fd(fd, list, sizeof(list));

	return len == 0 || len == -EOPNOTSUPP || (len > 0 && filter_list(list, (size_t)len) == 0);
}

/* What an ENODATA for name on fd tells about the object, in state s: one listing a change. */
static uint32_t absent_after(int fd, const char *name, uint32_t s)
{
	uint32_t known = strcmp(name, caps_name) == 0 ? XATTR_NO_CAPS : 0;

	if (!(s & XATTR_LISTED))
		known |= XATTR_LISTED | (shows_no_xattrs(fd) ? XATTR_NONE : 0);
	return known;
}

ssize_t unionfs_xattr_get(struct unionfs *fs, struct node *node, const char *name, void *value,
			  size_t size)
{
	_cleanup_close_ int fd = -EBADF;
	uint32_t s = fs->udba_reval ? 0 : __atomic_load_n(&node->xattr_state, __ATOMIC_ACQUIRE);
	ssize_t r;

	if (unionfs_xattr_is_internal(name) || (s & XATTR_NONE) ||
	    ((s & XATTR_NO_CAPS) && strcmp(name, caps_name) == 0))
		return -ENODATA;
	fd = node_open(node, O_PATH);
	r = fd < 0 ? fd : xattr_get_fd(fd, name, value, size);
	/* Unless a change came in between: then the answer may be older than it. */
	if (r == -ENODATA && !fs->udba_reval)
		__atomic_compare_exchange_n(&node->xattr_state, &s, s | absent_after(fd, name, s),
					    false, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
	return r;
}

ssize_t unionfs_xattr_list(struct node *node, char *list, size_t size)
{
	_cleanup_close_ int fd = node_open(node, O_PATH);
	_cleanup_free_ char *all = NULL;
	ssize_t len = fd < 0 ? fd : xattr_list_alloc(fd, &all);
	size_t shown;

	if (len < 0)
		return len;
	shown = filter_list(all, (size_t)len);
	if (size == 0)
		return (ssize_t)shown;
	if (shown > size)
		return -ERANGE;
	memcpy(list, all, shown);
	return (ssize_t)shown;
}

int unionfs_xattr_set(struct unionfs *fs, struct node *node, const char *name, const void *value,
		      size_t size, int flags)
{
	_cleanup_close_ int own = -EBADF;
	int fd, r;

	if (unionfs_xattr_is_internal(name))
		return -EOPNOTSUPP;
	r = copyup_meta(fs, node);
	if (r < 0)
		return r;
	fd = node_use_fd(node, &own);
	r = fd < 0 ? fd : xattr_set_fd(fd, name, value, size, flags);
	unionfs_xattr_changed(node);
	return r;
}

int unionfs_xattr_remove(struct unionfs *fs, struct node *node, const char *name)
{
	_cleanup_close_ int own = -EBADF;
	int fd, r;

	if (unionfs_xattr_is_internal(name))
		return -EOPNOTSUPP;
	/* Removing what is not there must not copy anything up (as overlayfs). */
	if (!copyup_done(fs, node)) {
		ssize_t n = unionfs_xattr_get(fs, node, name, NULL, 0);
		if (n < 0)
			return (int)n;
	}
	r = copyup_meta(fs, node);
	if (r < 0)
		return r;
	fd = node_use_fd(node, &own);
	return fd < 0 ? fd : xattr_remove_fd(fd, name);
}
