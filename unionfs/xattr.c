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

ssize_t unionfs_xattr_get(struct node *node, const char *name, void *value, size_t size)
{
	_cleanup_close_ int fd = -EBADF;

	if (unionfs_xattr_is_internal(name))
		return -ENODATA;
	fd = node_open(node, O_PATH);
	return fd < 0 ? fd : xattr_get_fd(fd, name, value, size);
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
	int r;

	if (unionfs_xattr_is_internal(name))
		return -EOPNOTSUPP;
	r = copyup_meta(fs, node);
	return r < 0 ? r : xattr_set_fd(node_fd(node), name, value, size, flags);
}

int unionfs_xattr_remove(struct unionfs *fs, struct node *node, const char *name)
{
	int r;

	if (unionfs_xattr_is_internal(name))
		return -EOPNOTSUPP;
	/* Removing what is not there must not copy anything up (as overlayfs). */
	if (!copyup_done(fs, node)) {
		ssize_t n = unionfs_xattr_get(node, name, NULL, 0);
		if (n < 0)
			return (int)n;
	}
	r = copyup_meta(fs, node);
	return r < 0 ? r : xattr_remove_fd(node_fd(node), name);
}
