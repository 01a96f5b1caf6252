/* Copy-up: bringing an object from a read-only branch into the writable one. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct unionfs;
struct node;

/*
 * Makes sure node's top object lives in the writable branch, copying it up
 * with its parent directories when it does not: data (reflink, then
 * copy_file_range; holes kept), mode, owner, ns times and xattrs, built in
 * the work dir, fsynced unless volatile, then renamed into place. Without
 * with_data a regular file is copied empty (it is about to be truncated).
 * -EROFS on a mount without a writable branch.
 */
int copyup(struct unionfs *fs, struct node *node, bool with_data);

/*
 * For a change of metadata only (chmod, chown, utimes, xattrs): with
 * -o metacopy=on a regular file's copy gets its metadata and a size, not its
 * data (a sparse file marked trusted.overlay.metacopy, as overlayfs does);
 * the data is copied when the file is first written. Else as copyup().
 */
int copyup_meta(struct unionfs *fs, struct node *node);

/* The hard-link index entry's name for a node: its st_ino in hex. */
void copyup_index_name(uint64_t ino, char *buf, size_t size);

/* True when the node's top object is already in the writable branch. */
bool copyup_done(const struct unionfs *fs, const struct node *node);

/* The xattr holding a copied-up object's original st_ino (ours, never overlayfs's). */
const char *copyup_origin_xattr(const struct unionfs *fs);
