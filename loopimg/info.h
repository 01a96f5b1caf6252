/* loopimg info: what an image or device holds (libblkid), with ext4 counts when it is ext*. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "loopimg/ext4_read.h"

struct imginfo {
	char type[32]; /* "" when libblkid finds nothing */
	char label[256];
	char uuid[64];
	uint64_t size; /* bytes of the file or device */
	bool is_ext;
	bool truncated; /* shorter than its file system says */
	struct ext4_summary ext;
};

int imginfo_probe(const char *path, struct imginfo *out);
