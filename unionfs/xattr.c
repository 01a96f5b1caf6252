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
 * inode it has (re)read the attributes of: for a file just created, one
 * round trip per file. Its absence is remembered, unless the branches may
 * change behind our back (udba=reval): only a setxattr through us can add it.
 */
static const char caps_name[] = "security.capability";

static bool caps_cached(const struct unionfs *fs, const char *name)
{
	return !fs->udba_reval && strcmp(name, caps_name) == 0;
}

void unionfs_xattr_made(struct node *node)
{
	__atomic_fetch_or(&node->caps_state, 1u, __ATOMIC_RELEASE);
}

/* After a change of node's xattrs: a count up, the absence no longer known. */
static void caps_changed(struct node *node)
{
	uint32_t s = __atomic_load_n(&node->caps_state, __ATOMIC_RELAXED);

	while (!__atomic_compare_exchange_n(&node->caps_state, &s, (s + 2) & ~1u, true,
					    __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
}

ssize_t unionfs_xattr_get(struct unionfs *fs, struct node *node, const char *name, void *value,
			  size_t size)
{
	_cleanup_close_ int fd = -EBADF;
	bool caps = caps_cached(fs, name);
	uint32_t s = caps ? __atomic_load_n(&node->caps_state, __ATOMIC_ACQUIRE) : 0;
	ssize_t r;

	if (unionfs_xattr_is_internal(name) || (s & 1))
		return -ENODATA;
	fd = node_open(node, O_PATH);
	r = fd < 0 ? fd : xattr_get_fd(fd, name, value, size);
	/* Unless a change came in between: then the answer may be older than it. */
	if (caps && r == -ENODATA)
		__atomic_compare_exchange_n(&node->caps_state, &s, s | 1, false, __ATOMIC_RELEASE,
					    __ATOMIC_RELAXED);
	return r;
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
	caps_changed(node);
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
