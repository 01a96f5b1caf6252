/* loopimg pack: SRC directory -> ext4 image file, atomically (temp file beside IMG, then rename).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "loopimg/ext4_write.h"
#include "loopimg/tree.h"

struct pack_options {
	struct ext4_write_params image;
	struct tree_options tree;
	bool force;
	bool progress; /* a progress bar when stderr is a TTY */
};

int pack_run(const char *src, const char *img, struct pack_options *opts);

/* "2G", "512M", "4096", "1.5T" -> bytes (binary units). Returns 0 or -EINVAL/-ERANGE. */
int pack_parse_size(const char *s, uint64_t *out);
/* "20%" or "20" -> 20. */
int pack_parse_percent(const char *s, unsigned *out);
/* "u:1000:0,g:1000:0" -> map entries (malloc'd). */
int pack_parse_owner_map(const char *s, struct tree_owner_map **map, size_t *n);
/* The temp file of a pack in progress, so a signal handler can remove it (NULL if none). */
const char *pack_temp_path(void);
