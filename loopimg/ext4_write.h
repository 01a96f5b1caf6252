/* Writing an ext4 image of a scanned tree with libext2fs: no mount, no loop device. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "loopimg/tree.h"

struct ext4_write_params {
	uint64_t size;		/* bytes; 0 computes it from the tree */
	unsigned extra_percent; /* free room on top of the computed size */
	unsigned block_size;	/* 0 means 4096 */
	uint64_t inodes;	/* 0 computes it from the tree */
	const char *label;
	bool set_uuid;
	uint8_t uuid[16];
	bool reproducible;  /* seeds from the tree, checksum seed kept apart from the UUID */
	bool no_lost_found; /* add no lost+found to the root (a lost+found in the tree stays) */
	int64_t fs_time;    /* superblock and lost+found times; 0 means now */
	const char *name;   /* the image's name in messages */
};

struct ext4_writer;

/*
 * Creates the file system in the (new, empty) file at path: sizes it, writes
 * every directory, symlink and special file. Regular files' data follow with
 * ext4_write_file(); ext4_write_finish() writes inodes and closes.
 */
int ext4_write_begin(const char *path, struct tree *tree, const struct ext4_write_params *params,
		     struct ext4_writer **out);
/* Copies the data of one regular file (the first node of its inode) from fd. */
int ext4_write_file(struct ext4_writer *w, struct tree_node *n, int fd);
/* Writes the inode tables and xattrs, closes the file system; frees w either way. */
int ext4_write_finish(struct ext4_writer *w);
/* Frees a writer after a failure, without finishing the image. */
void ext4_write_abort(struct ext4_writer *w);

/* Bytes of image the data copies will write (for progress). */
uint64_t ext4_write_data_total(const struct ext4_writer *w);

/* Rewrites the UUID in every superblock of a finished image (needs the csum_seed feature). */
int ext4_write_set_uuid(const char *path, const uint8_t uuid[16], int64_t fs_time);
