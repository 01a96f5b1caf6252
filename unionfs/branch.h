/* The branch table: one directory fd per branch, top branch first. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BRANCH_MAX 255 /* the branch index must fit the top 8 bits of st_ino */

struct branch {
	char *path;    /* canonical absolute path, for messages */
	int fd;	       /* O_RDONLY|O_DIRECTORY on the branch root */
	bool writable; /* only the top branch may be */
	dev_t dev;
	ino_t ino;
};

struct branch_table {
	struct branch *v;
	size_t count;
};

/*
 * Appends a branch. Errors: -ENOENT/-EACCES (cannot open), -ENOTDIR (not a
 * directory), -EEXIST (the same directory is already a branch), -E2BIG (too
 * many branches), -EINVAL (writable below the top).
 */
int branch_table_add(struct branch_table *t, const char *path, bool writable);
void branch_table_free(struct branch_table *t);

/* True when the top branch is writable. */
bool branch_table_has_upper(const struct branch_table *t);

/* Index of a branch whose tree contains mountpoint (or is it), or -1. */
int branch_table_find_containing(const struct branch_table *t, const char *mountpoint);

/*
 * The st_ino the union reports for inode ino of branch index layer: the
 * branch index in the top 8 bits, the branch's own inode below. Stable for a
 * given branch list, unlike st_dev which changes with every loop attach.
 */
static inline uint64_t branch_pack_ino(unsigned layer, uint64_t ino)
{
	const uint64_t mask = (1ULL << 56) - 1;

	/* Inode numbers above 2^56 are folded; collisions need two such inodes. */
	if (ino & ~mask)
		ino = (ino ^ (ino >> 56)) & mask;
	return ((uint64_t)layer << 56) | ino;
}
