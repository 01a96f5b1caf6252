/* Lookup through the branches: whiteouts, opaque directories, merged directories. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct unionfs;
struct node;

/*
 * Resolves name in dir. On success *out is the child node with one more
 * lookup and *st its attributes as the union reports them. -ENOENT when the
 * name is absent, hidden by a whiteout or internal.
 */
int namei_lookup(struct unionfs *fs, struct node *dir, const char *name, struct node **out,
		 struct stat *st);
/* namei_lookup(), and the branch where name's top-most object is (a hard link's node may
 * have been copied up under another name). */
int namei_lookup_where(struct unionfs *fs, struct node *dir, const char *name, struct node **out,
		       struct stat *st, uint16_t *branch);

/*
 * namei_lookup() of a non-directory the caller has just made in dir's upper
 * dir, whose attributes are *made (st may be made): no look through the
 * branches, no origin to read.
 */
int namei_lookup_made(struct unionfs *fs, struct node *dir, const char *name,
		      const struct stat *made, struct node **out, struct stat *st);

/* Attributes of a node as the union reports them (st_ino packed, merged dirs nlink 1). */
int namei_getattr(struct unionfs *fs, struct node *node, struct stat *st);

/* Reads a directory's redirect into buf: 1 when it has one, 0 when not, -errno. */
int namei_redirect(struct unionfs *fs, int dirfd, char *buf, size_t size);
int namei_set_redirect(struct unionfs *fs, int dirfd, const char *path);

/* Creates the root node from the top of every branch. */
int namei_make_root(struct unionfs *fs);
