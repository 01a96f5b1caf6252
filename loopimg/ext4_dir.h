/* Directory blocks built whole: packed linear blocks, or an htree index over hash-sorted leaves. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ext4_dirent {
	const char *name;
	uint8_t name_len;
	uint8_t file_type; /* EXT2_FT_* */
	uint32_t ino;
};

struct ext4_dir_geometry {
	unsigned block_size;  /* 1024, 2048 or 4096 */
	bool csum;	      /* metadata_csum: room for a tail in every block */
	bool dir_index;	      /* index directories larger than one block */
	uint8_t hash_version; /* EXT2_HASH_* as stored in the superblock */
	bool hash_unsigned;   /* EXT2_FLAGS_UNSIGNED_HASH */
	uint32_t hash_seed[4];
};

struct ext4_dir_blocks {
	uint8_t *data; /* nblocks * block_size bytes; checksums left for the writer */
	uint32_t nblocks;
	bool indexed; /* block 0 is a dx_root: the inode needs EXT2_INDEX_FL */
};

/*
 * Lays out the entries of one directory (without "." and "..", which are
 * added) into blocks. Entries go in the order given for linear directories.
 * Returns 0 or -errno (-EFBIG when the index would need more than two levels).
 */
int ext4_dir_build(const struct ext4_dirent *entries, size_t n, uint32_t self_ino,
		   uint32_t parent_ino, const struct ext4_dir_geometry *g,
		   struct ext4_dir_blocks *out);
