/* The source tree of a pack: one walk of SRC into memory (names, metadata, xattrs, holes). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct tree_xattr {
	char *name;
	void *value;
	size_t len;
};

/* A byte range of a regular file that holds data (everything else is a hole). */
struct tree_segment {
	uint64_t offset;
	uint64_t len;
};

struct tree_node {
	char *name; /* one component; "" for the root */
	struct tree_node *parent;
	struct tree_node **children; /* directories: sorted bytewise */
	size_t nchildren;

	mode_t mode;
	uid_t uid;
	gid_t gid;
	dev_t rdev;
	uint64_t size;
	struct timespec atime, mtime, ctime;

	char *link_target; /* symlinks */
	struct tree_xattr *xattrs;
	size_t nxattrs;
	struct tree_segment *segments; /* sparse regular files only; NULL means one full segment */
	size_t nsegments;

	/* Non-NULL when an earlier node is the same source inode (a hard link). */
	struct tree_node *link_first;
	uint32_t nlink; /* on the first node: links inside the tree */
	uint32_t subdirs;
	uint32_t ino; /* inode number in the image, set by the writer */
	uint64_t aux; /* for the writer's own bookkeeping */
};

struct tree_owner_map {
	bool is_gid;
	uint32_t from, to;
};

struct tree_options {
	bool root_owned;
	const struct tree_owner_map *owner_map;
	size_t nowner_map;
	bool reproducible; /* atime, ctime = mtime; times clamped to clamp_time */
	bool clamp;	   /* clamp every time to clamp_time (SOURCE_DATE_EPOCH) */
	int64_t clamp_time;
};

struct tree {
	char *src; /* path as given, for messages */
	struct tree_node *root;
	size_t nnodes, ndirs, nregular, nsymlinks, nxattr_nodes;
	uint64_t data_bytes; /* bytes in data segments of distinct regular inodes */
	int64_t max_mtime;
	uint64_t digest[2]; /* xxh3-128 of names and metadata, for a reproducible hash seed */
};

/* Walks src (never following symlinks) into a new tree. Logs the failing path. */
int tree_scan(const char *src, const struct tree_options *opts, struct tree **out);
void tree_free(struct tree *t);

/* "SRC/a/b" for a node, malloc'd (NULL when out of memory). */
char *tree_node_path(const struct tree *t, const struct tree_node *n);

/* Calls fn for each node in depth-first pre-order (parents before children). */
int tree_walk(struct tree *t, int (*fn)(struct tree_node *n, void *opaque), void *opaque);
