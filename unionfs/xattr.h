/* Extended attributes seen through the union, with internal names hidden and refused. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct node;
struct unionfs;

/* True for names the union keeps for itself (trusted/user .overlay.* and .unionfs.*). */
bool unionfs_xattr_is_internal(const char *name);

/* As getxattr(2): size 0 asks for the length. Internal names: -ENODATA, as overlayfs. */
ssize_t unionfs_xattr_get(struct unionfs *fs, struct node *node, const char *name, void *value,
			  size_t size);

/* node's object was just made by us, so it has no security.capability. */
void unionfs_xattr_made(struct node *node);
/* node's object changed in a way that may have given it xattrs (a copy-up). */
void unionfs_xattr_changed(struct node *node);

/* As listxattr(2), without internal names. */
ssize_t unionfs_xattr_list(struct node *node, char *list, size_t size);

/* setxattr/removexattr: copy up first; internal names: -EOPNOTSUPP. */
int unionfs_xattr_set(struct unionfs *fs, struct node *node, const char *name, const void *value,
		      size_t size, int flags);
int unionfs_xattr_remove(struct unionfs *fs, struct node *node, const char *name);
