/* Reading ext4 images through libext2fs (no mount): summaries for info, trees for unpack. */
#pragma once

#include <stdint.h>

struct ext4_summary {
	uint64_t blocks, free_blocks;
	uint64_t inodes, free_inodes;
	unsigned block_size;
};

int ext4_read_summary(const char *path, struct ext4_summary *out);
