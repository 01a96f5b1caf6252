/*
 * Reading ext4 images through libext2fs, never mounting them. libext2fs
 * error codes stop at this file: callers see -errno (and a logged message).
 */
#include "loopimg/ext4_read.h"

#include <errno.h>

#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "lib/log.h"

static int ext2_error(errcode_t e, const char *path)
{
	if (e > 0 && e < 4096) {
		log_error("%s: %s", path, error_message(e));
		return -(int)e;
	}
	log_error("%s: %s", path, error_message(e));
	return e == EXT2_ET_NO_MEMORY ? -ENOMEM : -EUCLEAN;
}

int ext4_read_summary(const char *path, struct ext4_summary *out)
{
	ext2_filsys fs;
	errcode_t e = ext2fs_open(path, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);

	if (e)
		return ext2_error(e, path);
	out->blocks = ext2fs_blocks_count(fs->super);
	out->free_blocks = ext2fs_free_blocks_count(fs->super);
	out->inodes = fs->super->s_inodes_count;
	out->free_inodes = fs->super->s_free_inodes_count;
	out->block_size = fs->blocksize;
	ext2fs_close_free(&fs);
	return 0;
}
