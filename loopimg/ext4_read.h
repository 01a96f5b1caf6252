/* Reading ext4 images through libext2fs (no mount): summaries for info, trees for unpack. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct ext4_summary {
	uint64_t blocks, free_blocks;
	uint64_t inodes, free_inodes;
	unsigned block_size;
};

int ext4_read_summary(const char *path, struct ext4_summary *out);

struct ext4_reader;

struct ext4_inode_attr {
	mode_t mode;
	uint32_t uid, gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
	dev_t rdev;
	uint32_t links;
	uint64_t alloc_bytes; /* blocks it holds in the image (data, extent tree, xattr block) */
};

typedef int (*ext4_dirent_fn)(const char *name, size_t len, uint32_t ino, void *opaque);
typedef int (*ext4_xattr_fn)(const char *name, const void *value, size_t len, void *opaque);

/* Opens an image read-only; -EUCLEAN (and a logged reason) when it is not a sane ext2/3/4. */
int ext4_read_open(const char *path, struct ext4_reader **out);
void ext4_read_close(struct ext4_reader *r);
uint32_t ext4_read_inode_count(const struct ext4_reader *r);
/* Bytes of the image in use, by the superblock's count (for progress). */
uint64_t ext4_read_used_bytes(const struct ext4_reader *r);
int ext4_read_inode(struct ext4_reader *r, uint32_t ino, struct ext4_inode_attr *out);
/* Calls fn for each entry of a directory except "." and "..". */
int ext4_read_dir(struct ext4_reader *r, uint32_t ino, ext4_dirent_fn fn, void *opaque);
/* The target of a symlink, NUL-terminated; -ENAMETOOLONG when it does not fit. */
int ext4_read_symlink(struct ext4_reader *r, uint32_t ino, char *buf, size_t size);
/* Writes a regular file's data to fd, holes left as holes, and sets its size. */
int ext4_read_data(struct ext4_reader *r, uint32_t ino, int fd);
int ext4_read_xattrs(struct ext4_reader *r, uint32_t ino, ext4_xattr_fn fn, void *opaque);
