/*
 * The union's link count of a hard-link group found in a read-only branch,
 * as overlayfs with index=on keeps it. Once one name of such a group is
 * copied up, the copy lives in the hard-link index; its own link count then
 * counts the index entry and the names linked into the upper dirs, not the
 * names still only below. The difference (union minus real) is kept in an
 * xattr on the copy, so it survives a remount; it changes only when a name
 * that already showed gets its upper link (the union count stays, the real
 * one grows). Removing or renaming a name of the group first gives it its
 * upper link, so those change both counts alike.
 */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>

struct unionfs;
struct node;
struct layer_set;

/* A fresh index copy (fd) of a lower group with lower_nlink names, now linked twice. */
int nlink_init_index(struct unionfs *fs, int fd, nlink_t lower_nlink);

/* A name of node's group that already showed got its link in the upper dir. */
int nlink_upper_link_added(struct unionfs *fs, struct node *node);
/* The same, for a caller holding node->copyup_lock. */
int nlink_upper_link_added_locked(struct unionfs *fs, struct node *node);

/* st (of layers' top object) gets the union's link count. */
void nlink_report(const struct unionfs *fs, const struct layer_set *layers, struct stat *st);

/*
 * Whether removing or replacing name, a name of node, must first give it its
 * upper link: a regular file of a hard-link group that has lower names.
 */
bool nlink_tracked(const struct unionfs *fs, const struct node *node);
