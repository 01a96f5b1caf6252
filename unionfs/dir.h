/* Changes to the namespace: create, mkdir, mknod, symlink, link, unlink, rmdir, rename. */
#pragma once

#include <stdbool.h>
#include <sys/stat.h>
#include <sys/types.h>

struct unionfs;
struct node;

/* Who asks: new objects belong to them, not to the daemon. */
struct creds {
	uid_t uid;
	gid_t gid;
};

/* A new object's description for dir_make(). */
struct new_object {
	mode_t mode;	    /* type and permissions (umask already applied by the kernel) */
	dev_t rdev;	    /* for device nodes */
	const char *target; /* for symlinks */
	int open_flags;	    /* for regular files: the flags of the create */
};

/*
 * Creates name in dir (any type), over a whiteout if there is one (a new
 * directory there is opaque). *out and *st describe the new node; for regular
 * files *fd is the open file.
 */
int dir_make(struct unionfs *fs, struct node *dir, const char *name, const struct new_object *obj,
	     const struct creds *creds, struct node **out, struct stat *st, int *fd);

int dir_link(struct unionfs *fs, struct node *node, struct node *dir, const char *name,
	     struct node **out, struct stat *st);
int dir_unlink(struct unionfs *fs, struct node *dir, const char *name);
int dir_rmdir(struct unionfs *fs, struct node *dir, const char *name);
/* The writable branch's fd of dir, copying it up first if needed. */
int dir_upper_fd(struct unionfs *fs, struct node *dir);
/* True when name in dir is visible from the branches below the writable one. */
bool dir_name_in_lower(const struct node *dir, const char *name);

/*
 * A hard-link group shares one node, copied up under whichever name was
 * written first: gives name (a name of node in the dir upper) its own link
 * in the upper dir too, when it has none.
 */
int dir_name_upper_link(struct unionfs *fs, struct node *node, int upper, const char *name);

/*
 * Before name, a name of node in the dir upper, is removed or replaced: when
 * node is a hard-link group from below (nlink.h), copies it up and gives
 * name its upper link, so the removal changes the union's count and the
 * real one alike.
 */
int dir_prepare_group_name(struct unionfs *fs, struct node *node, int upper, const char *name);
/* 0 when the merged directory shows no entries, -ENOTEMPTY otherwise. */
int dir_is_empty(struct node *dir);

/* rename(2) with RENAME_NOREPLACE and RENAME_EXCHANGE; lives in rename.c. */
int dir_rename(struct unionfs *fs, struct node *dir, const char *name, struct node *newdir,
	       const char *newname, unsigned flags);
