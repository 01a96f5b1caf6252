/*
 * Reading ext4 images through libext2fs, never mounting them. libext2fs
 * error codes stop at this file: callers see -errno (and a logged message).
 * The image may be hostile: every block number is checked against the file
 * system before it is read, and data beyond i_size is ignored.
 */
#include "loopimg/ext4_read.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "lib/log.h"
#include "lib/macro.h"

#define RUN_BYTES (1u << 20)

struct ext4_reader {
	ext2_filsys fs;
	char *path;
};

static int ext2_error(errcode_t e, const char *path)
{
	log_error("%s: %s", path, error_message(e));
	if (e > 0 && e < 4096)
		return -(int)e;
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

int ext4_read_open(const char *path, struct ext4_reader **out)
{
	struct ext4_reader *r = calloc(1, sizeof(*r));
	errcode_t e;

	if (!r || !(r->path = strdup(path))) {
		free(r);
		return -ENOMEM;
	}
	e = ext2fs_open(path, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &r->fs);
	if (e) {
		int err = ext2_error(e, path);

		free(r->path);
		free(r);
		return err;
	}
	*out = r;
	return 0;
}

void ext4_read_close(struct ext4_reader *r)
{
	if (!r)
		return;
	ext2fs_close_free(&r->fs);
	free(r->path);
	free(r);
}

uint32_t ext4_read_inode_count(const struct ext4_reader *r)
{
	return r->fs->super->s_inodes_count;
}

uint64_t ext4_read_used_bytes(const struct ext4_reader *r)
{
	blk64_t blocks = ext2fs_blocks_count(r->fs->super);
	blk64_t free = ext2fs_free_blocks_count(r->fs->super);

	return free < blocks ? (uint64_t)(blocks - free) * r->fs->blocksize : 0;
}

static struct timespec decode_time(uint32_t lo, uint32_t extra, bool has_extra)
{
	struct timespec ts = {.tv_sec = (int32_t)lo};

	if (has_extra) {
		ts.tv_sec += (int64_t)(extra & 3) << 32;
		ts.tv_nsec = extra >> 2;
		if (ts.tv_nsec >= 1000000000L)
			ts.tv_nsec = 0;
	}
	return ts;
}

static int read_large_inode(struct ext4_reader *r, uint32_t ino, struct ext2_inode_large *in)
{
	errcode_t e;

	if (ino < 1 || ino > r->fs->super->s_inodes_count)
		return log_errno(-EUCLEAN, "%s: inode %u out of range", r->path, ino);
	memset(in, 0, sizeof(*in));
	e = ext2fs_read_inode_full(r->fs, ino, (struct ext2_inode *)in, sizeof(*in));
	return e ? ext2_error(e, r->path) : 0;
}

int ext4_read_inode(struct ext4_reader *r, uint32_t ino, struct ext4_inode_attr *out)
{
	struct ext2_inode_large in;
	bool extra;
	int ret = read_large_inode(r, ino, &in);

	if (ret < 0)
		return ret;
	extra = EXT2_INODE_SIZE(r->fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
		in.i_extra_isize >= 16 && in.i_extra_isize <= EXT2_INODE_SIZE(r->fs->super) - 128;
	out->mode = in.i_mode;
	out->uid = inode_uid(in);
	out->gid = inode_gid(in);
	out->size = EXT2_I_SIZE(&in);
	out->links = in.i_links_count;
	out->alloc_bytes = ext2fs_get_stat_i_blocks(r->fs, (struct ext2_inode *)&in) * 512;
	out->atime = decode_time(in.i_atime, in.i_atime_extra, extra);
	out->mtime = decode_time(in.i_mtime, in.i_mtime_extra, extra);
	out->ctime = decode_time(in.i_ctime, in.i_ctime_extra, extra);
	out->rdev = 0;
	if (S_ISCHR(in.i_mode) || S_ISBLK(in.i_mode)) {
		uint32_t old = in.i_block[0], new = in.i_block[1];

		if (old)
			out->rdev = makedev((old >> 8) & 0xff, old & 0xff);
		else
			out->rdev =
			    makedev((new & 0xfff00) >> 8, (new & 0xff) | ((new >> 12) & 0xfff00));
	}
	return 0;
}

struct dir_walk {
	ext4_dirent_fn fn;
	void *opaque;
	int error;
};

static int dir_entry(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset, int blocksize,
		     char *buf, void *priv)
{
	struct dir_walk *w = priv;

	if (entry == DIRENT_DOT_FILE || entry == DIRENT_DOT_DOT_FILE || !d->inode)
		return 0;
	w->error = w->fn(d->name, ext2fs_dirent_name_len(d), d->inode, w->opaque);
	return w->error < 0 ? DIRENT_ABORT : 0;
}

int ext4_read_dir(struct ext4_reader *r, uint32_t ino, ext4_dirent_fn fn, void *opaque)
{
	struct dir_walk w = {.fn = fn, .opaque = opaque};
	errcode_t e = ext2fs_dir_iterate2(r->fs, ino, 0, NULL, dir_entry, &w);

	if (w.error < 0)
		return w.error;
	return e ? ext2_error(e, r->path) : 0;
}

static int read_via_file(struct ext4_reader *r, uint32_t ino, void *buf, size_t len, unsigned *got)
{
	ext2_file_t f;
	errcode_t e = ext2fs_file_open(r->fs, ino, 0, &f);

	if (!e) {
		e = ext2fs_file_read(f, buf, len, got);
		ext2fs_file_close(f);
	}
	return e ? ext2_error(e, r->path) : 0;
}

int ext4_read_symlink(struct ext4_reader *r, uint32_t ino, char *buf, size_t size)
{
	struct ext2_inode_large in;
	uint64_t len;
	unsigned got = 0;
	int ret = read_large_inode(r, ino, &in);

	if (ret < 0)
		return ret;
	len = EXT2_I_SIZE(&in);
	if (len == 0 || len >= size)
		return log_errno(-ENAMETOOLONG, "%s: inode %u: bad symlink size %llu", r->path, ino,
				 (unsigned long long)len);
	if (ext2fs_is_fast_symlink((struct ext2_inode *)&in)) {
		if (len >= sizeof(in.i_block))
			return -EUCLEAN;
		memcpy(buf, in.i_block, len);
	} else {
		ret = read_via_file(r, ino, buf, len, &got);
		if (ret < 0)
			return ret;
		if (got != len)
			return log_errno(-EUCLEAN, "%s: inode %u: short symlink", r->path, ino);
	}
	buf[len] = '\0';
	if (strlen(buf) != len)
		return log_errno(-EUCLEAN, "%s: inode %u: NUL in symlink target", r->path, ino);
	return 0;
}

struct data_walk {
	struct ext4_reader *r;
	int fd;
	uint64_t size;
	uint8_t *buf;
	blk64_t run_pblk;
	e2_blkcnt_t run_lblk;
	unsigned run_len;
	int error;
};

static int flush_run(struct data_walk *d)
{
	unsigned bs = d->r->fs->blocksize;
	uint64_t off = (uint64_t)d->run_lblk * bs, len = (uint64_t)d->run_len * bs;
	errcode_t e;

	if (!d->run_len)
		return 0;
	d->run_len = 0;
	if (off >= d->size)
		return 0;
	e = io_channel_read_blk64(d->r->fs->io, d->run_pblk, len / bs, d->buf);
	if (e)
		return ext2_error(e, d->r->path);
	len = MIN(len, d->size - off);
	if (pwrite(d->fd, d->buf, len, off) != (ssize_t)len)
		return errno ? -errno : -EIO;
	return 0;
}

static int data_block(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt, blk64_t ref_blk,
		      int ref_offset, void *priv)
{
	struct data_walk *d = priv;
	blk64_t pblk = *blocknr;

	if (blockcnt < 0)
		return 0;
	if (pblk < fs->super->s_first_data_block || pblk >= ext2fs_blocks_count(fs->super)) {
		d->error = log_errno(-EUCLEAN, "%s: block %llu out of range", d->r->path,
				     (unsigned long long)pblk);
		return BLOCK_ABORT;
	}
	if (d->run_len && pblk == d->run_pblk + d->run_len &&
	    blockcnt == d->run_lblk + d->run_len && (d->run_len + 1) * fs->blocksize <= RUN_BYTES) {
		d->run_len++;
		return 0;
	}
	d->error = flush_run(d);
	if (d->error < 0)
		return BLOCK_ABORT;
	d->run_pblk = pblk;
	d->run_lblk = blockcnt;
	d->run_len = 1;
	return 0;
}

static int read_inline(struct ext4_reader *r, uint32_t ino, int fd, uint64_t size)
{
	_cleanup_free_ uint8_t *buf = malloc(size ? size : 1);
	unsigned got = 0;
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = read_via_file(r, ino, buf, size, &got);
	if (ret < 0)
		return ret;
	return pwrite(fd, buf, got, 0) == (ssize_t)got ? 0 : -errno;
}

int ext4_read_data(struct ext4_reader *r, uint32_t ino, int fd)
{
	struct ext2_inode_large in;
	struct data_walk d = {.r = r, .fd = fd};
	errcode_t e;
	int ret = read_large_inode(r, ino, &in);

	if (ret < 0)
		return ret;
	d.size = EXT2_I_SIZE(&in);
	if (in.i_flags & EXT4_INLINE_DATA_FL) {
		if (d.size > 4096)
			return -EUCLEAN;
		ret = read_inline(r, ino, fd, d.size);
	} else {
		d.buf = malloc(RUN_BYTES);
		if (!d.buf)
			return -ENOMEM;
		e = ext2fs_block_iterate3(r->fs, ino, BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY,
					  NULL, data_block, &d);
		ret = d.error;
		if (ret >= 0 && e)
			ret = ext2_error(e, r->path);
		if (ret >= 0)
			ret = flush_run(&d);
		free(d.buf);
	}
	if (ret >= 0 && ftruncate(fd, d.size) < 0)
		ret = -errno;
	return ret;
}

struct xattr_walk {
	ext4_xattr_fn fn;
	void *opaque;
	int error;
};

static int xattr_entry(char *name, char *value, size_t len, void *priv)
{
	struct xattr_walk *w = priv;

	w->error = w->fn(name, value, len, w->opaque);
	return w->error < 0 ? XATTR_ABORT : 0;
}

int ext4_read_xattrs(struct ext4_reader *r, uint32_t ino, ext4_xattr_fn fn, void *opaque)
{
	struct xattr_walk w = {.fn = fn, .opaque = opaque};
	struct ext2_xattr_handle *h;
	errcode_t e;

	if (!ext2fs_has_feature_xattr(r->fs->super))
		return 0;
	e = ext2fs_xattrs_open(r->fs, ino, &h);
	if (e)
		return ext2_error(e, r->path);
	e = ext2fs_xattrs_read(h);
	if (!e)
		e = ext2fs_xattrs_iterate(h, xattr_entry, &w);
	ext2fs_xattrs_close(&h);
	if (w.error < 0)
		return w.error;
	return e ? ext2_error(e, r->path) : 0;
}
