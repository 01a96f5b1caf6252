/*
 * The ext4 image writer: the one place (with ext4_dir.c and ext4_read.c)
 * that talks to libext2fs; errcode_t never leaves it. libext2fs creates the
 * geometry, bitmaps and group descriptors; everything per inode is laid out
 * here, because doing it through the library is what makes mke2fs -d slow:
 *   - inode numbers are assigned up front, so every directory is built whole
 *     (ext4_dir.c) and written with one I/O, indexed when it spans blocks;
 *   - blocks come from a cursor that only moves forward, so a file is one
 *     contiguous run split only at 32768-block extents and busy blocks;
 *   - file data goes from the source to the image with copy_file_range();
 *   - inodes live in memory and go out as whole inode tables at the end,
 *     with nanoseconds and post-2038 epochs in the extra fields.
 * Only xattrs go through libext2fs per inode (few files have them).
 */
#include "loopimg/ext4_write.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <et/com_err.h>
#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "lib/log.h"
#include "lib/macro.h"
#include "loopimg/bwriter.h"
#include "loopimg/ext4_dir.h"

#define INODE_SIZE 256
#define EXTRA_ISIZE (sizeof(struct ext2_inode_large) - EXT2_GOOD_OLD_INODE_SIZE)
#define LOST_FOUND_INO 11
#define FIRST_INO 12
#define MAX_EXTENT_LEN 32768u
#define ROOT_EXTENTS 4
#define FAST_SYMLINK_MAX (EXT2_N_BLOCKS * 4)

struct extent {
	uint32_t lblk;
	uint32_t len;
	uint64_t pblk;
};

struct extent_list {
	struct extent *e;
	size_t n, cap;
	uint64_t blocks;
};

struct block_range {
	uint64_t first, count;
};

struct ext4_writer {
	ext2_filsys fs;
	int img_fd;
	struct bwriter *data;
	char *path;
	const char *name; /* IMG, for messages (path is the temp file) */
	struct tree *tree;
	struct ext4_write_params params;
	unsigned bs;
	struct ext4_dir_geometry geo;
	struct ext2_inode_large *inodes; /* indexed by inode number */
	struct tree_node **by_ino;
	uint32_t max_ino;
	struct ext4_dir_blocks *dirs; /* indexed by a directory node's aux */
	size_t ndirs;
	struct tree_node *lost_found; /* ours when SRC has none */
	uint64_t need_blocks;
	blk64_t cursor;
};

/* The border where libext2fs error codes become -errno (and a logged message). */
static int ext2_error(errcode_t e, const char *what)
{
	int r = -EIO;

	if (e > 0 && e < 4096)
		r = -(int)e;
	else if (e == EXT2_ET_BLOCK_ALLOC_FAIL || e == EXT2_ET_INODE_ALLOC_FAIL ||
		 e == EXT2_ET_EA_NO_SPACE)
		r = -ENOSPC;
	else if (e == EXT2_ET_NO_MEMORY)
		r = -ENOMEM;
	log_error("pack: %s: %s", what, error_message(e));
	return r;
}

static void encode_time(struct timespec ts, uint32_t *lo, uint32_t *extra)
{
	const int64_t min = INT32_MIN, max = 0x37fffffffLL; /* the 34-bit range ext4 stores */
	int64_t sec = ts.tv_sec;
	long nsec = ts.tv_nsec;

	if (sec < min || sec > max) {
		sec = sec < min ? min : max;
		nsec = 0;
	}
	*lo = (uint32_t)sec;
	*extra = ((uint32_t)((sec - (int32_t)(uint32_t)sec) >> 32) & 3) | ((uint32_t)nsec << 2);
}

static uint8_t file_type(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return EXT2_FT_REG_FILE;
	case S_IFDIR:
		return EXT2_FT_DIR;
	case S_IFCHR:
		return EXT2_FT_CHRDEV;
	case S_IFBLK:
		return EXT2_FT_BLKDEV;
	case S_IFIFO:
		return EXT2_FT_FIFO;
	case S_IFSOCK:
		return EXT2_FT_SOCK;
	case S_IFLNK:
		return EXT2_FT_SYMLINK;
	}
	return EXT2_FT_UNKNOWN;
}

static uint32_t node_ino(const struct tree_node *n)
{
	return n->link_first ? n->link_first->ino : n->ino;
}

/* ---- inode numbers and directories ---- */

static int add_lost_found(struct ext4_writer *w)
{
	struct tree_node *root = w->tree->root, *lf, **c;
	size_t pos = 0;

	while (pos < root->nchildren && strcmp(root->children[pos]->name, "lost+found") < 0)
		pos++;
	if (pos < root->nchildren && !strcmp(root->children[pos]->name, "lost+found"))
		return 0;
	lf = calloc(1, sizeof(*lf));
	c = realloc(root->children, (root->nchildren + 1) * sizeof(*c));
	if (!lf || !c) {
		free(lf);
		if (c)
			root->children = c;
		return -ENOMEM;
	}
	root->children = c;
	lf->name = strdup("lost+found");
	if (!lf->name) {
		free(lf);
		return -ENOMEM;
	}
	lf->parent = root;
	lf->mode = S_IFDIR | 0700;
	lf->nlink = 1;
	lf->atime.tv_sec = lf->mtime.tv_sec = lf->ctime.tv_sec = w->params.fs_time;
	memmove(c + pos + 1, c + pos, (root->nchildren - pos) * sizeof(*c));
	c[pos] = lf;
	root->nchildren++;
	root->subdirs++;
	w->tree->ndirs++;
	w->lost_found = lf;
	return 0;
}

static bool is_lost_found(const struct tree_node *dir, const struct tree_node *c)
{
	return !dir->parent && S_ISDIR(c->mode) && !strcmp(c->name, "lost+found");
}

/* A directory's entries get consecutive numbers, so stat() over a listing stays local. */
static void assign_children(struct ext4_writer *w, struct tree_node *dir, uint32_t *next)
{
	for (size_t i = 0; i < dir->nchildren; i++) {
		struct tree_node *c = dir->children[i];

		if (c->link_first)
			continue;
		if (is_lost_found(dir, c))
			c->ino = LOST_FOUND_INO;
		else
			c->ino = (*next)++;
	}
	for (size_t i = 0; i < dir->nchildren; i++)
		if (S_ISDIR(dir->children[i]->mode))
			assign_children(w, dir->children[i], next);
}

static int assign_inodes(struct ext4_writer *w)
{
	struct tree_node *root = w->tree->root;
	uint32_t next = LOST_FOUND_INO;
	int r = w->params.no_lost_found ? 0 : add_lost_found(w);

	if (r < 0)
		return r;
	/* Inode 11 is lost+found's when there is one, else the first ordinary inode, as in mke2fs.
	 */
	for (size_t i = 0; i < root->nchildren; i++)
		if (is_lost_found(root, root->children[i]))
			next = FIRST_INO;
	w->tree->root->ino = EXT2_ROOT_INO;
	assign_children(w, w->tree->root, &next);
	w->max_ino = next - 1;
	w->inodes = calloc(w->max_ino + 1, sizeof(*w->inodes));
	w->by_ino = calloc(w->max_ino + 1, sizeof(*w->by_ino));
	if (!w->inodes || !w->by_ino)
		return -ENOMEM;
	return 0;
}

static int index_node(struct tree_node *n, void *opaque)
{
	struct ext4_writer *w = opaque;

	if (!n->link_first)
		w->by_ino[n->ino] = n;
	return 0;
}

static int build_dir(struct ext4_writer *w, struct tree_node *d)
{
	_cleanup_free_ struct ext4_dirent *e = calloc(d->nchildren ? d->nchildren : 1, sizeof(*e));
	uint32_t parent = d->parent ? d->parent->ino : EXT2_ROOT_INO;
	int r;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < d->nchildren; i++) {
		const struct tree_node *c = d->children[i];
		size_t len = strlen(c->name);

		if (len > EXT2_NAME_LEN) {
			_cleanup_free_ char *p = tree_node_path(w->tree, c);

			return log_errno(-ENAMETOOLONG, "pack: %s", p ? p : c->name);
		}
		e[i] = (struct ext4_dirent){c->name, len, file_type(c->mode), node_ino(c)};
	}
	d->aux = w->ndirs;
	r = ext4_dir_build(e, d->nchildren, d->ino, parent, &w->geo, &w->dirs[w->ndirs]);
	if (r < 0) {
		_cleanup_free_ char *p = tree_node_path(w->tree, d);

		return log_errno(r, "pack: %s: building directory", p ? p : d->name);
	}
	w->need_blocks += w->dirs[w->ndirs++].nblocks;
	return 0;
}

static int build_dir_cb(struct tree_node *n, void *opaque)
{
	return S_ISDIR(n->mode) ? build_dir(opaque, n) : 0;
}

/* ---- sizing ---- */

static size_t file_ranges(const struct tree_node *n, unsigned bs, struct block_range *out)
{
	size_t count = 0;

	if (!n->segments) {
		if (n->size == 0)
			return 0;
		out[0] = (struct block_range){0, (n->size + bs - 1) / bs};
		return 1;
	}
	for (size_t i = 0; i < n->nsegments; i++) {
		const struct tree_segment *s = &n->segments[i];
		uint64_t first = s->offset / bs, end = (s->offset + s->len + bs - 1) / bs;

		if (s->len == 0)
			continue;
		/* Segments that share a block (source blocks smaller than ours) merge. */
		if (count && out[count - 1].first + out[count - 1].count >= first) {
			uint64_t old_end = out[count - 1].first + out[count - 1].count;

			if (end > old_end)
				out[count - 1].count = end - out[count - 1].first;
			continue;
		}
		out[count++] = (struct block_range){first, end - first};
	}
	return count;
}

static uint64_t extent_tree_blocks(uint64_t nextents, unsigned bs)
{
	uint64_t per_block = (bs - sizeof(struct ext3_extent_header)) / sizeof(struct ext3_extent);
	uint64_t total = 0;

	while (nextents > ROOT_EXTENTS) {
		nextents = (nextents + per_block - 1) / per_block;
		total += nextents;
	}
	return total;
}

static int count_file_blocks(struct tree_node *n, void *opaque)
{
	struct ext4_writer *w = opaque;
	_cleanup_free_ struct block_range *r = NULL;
	uint64_t extents = 0;
	size_t nr;

	if (n->link_first)
		return 0;
	if (S_ISLNK(n->mode) && n->size >= FAST_SYMLINK_MAX)
		w->need_blocks++;
	if (n->nxattrs)
		w->need_blocks++;
	if (!S_ISREG(n->mode))
		return 0;
	r = calloc(n->nsegments ? n->nsegments : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	nr = file_ranges(n, w->bs, r);
	for (size_t i = 0; i < nr; i++) {
		w->need_blocks += r[i].count;
		/* One more extent per range for a split at a busy block or group end. */
		extents += (r[i].count + MAX_EXTENT_LEN - 1) / MAX_EXTENT_LEN + 1;
	}
	w->need_blocks += extent_tree_blocks(extents, w->bs);
	return 0;
}

static uint64_t count_free_blocks(ext2_filsys fs)
{
	blk64_t start = fs->super->s_first_data_block, last = ext2fs_blocks_count(fs->super) - 1;
	uint64_t free_blocks = 0;

	while (start <= last) {
		blk64_t zero, set;

		if (ext2fs_find_first_zero_block_bitmap2(fs->block_map, start, last, &zero))
			break;
		if (ext2fs_find_first_set_block_bitmap2(fs->block_map, zero, last, &set))
			set = last + 1;
		free_blocks += set - zero;
		start = set;
	}
	return free_blocks;
}

/* ---- file system creation ---- */

static void params_for(const struct ext4_writer *w, uint64_t blocks, uint64_t inodes,
		       struct ext2_super_block *p)
{
	memset(p, 0, sizeof(*p));
	ext2fs_blocks_count_set(p, blocks);
	p->s_inodes_count = inodes;
	p->s_log_block_size = __builtin_ctz(w->bs) - EXT2_MIN_BLOCK_LOG_SIZE;
	p->s_rev_level = EXT2_DYNAMIC_REV;
	p->s_inode_size = INODE_SIZE;
	p->s_desc_size = EXT2_MIN_DESC_SIZE_64BIT;
	p->s_log_groups_per_flex = 4;
	p->s_feature_compat = EXT2_FEATURE_COMPAT_EXT_ATTR | EXT2_FEATURE_COMPAT_DIR_INDEX;
	p->s_feature_incompat = EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_EXTENTS |
				EXT4_FEATURE_INCOMPAT_64BIT | EXT4_FEATURE_INCOMPAT_FLEX_BG;
	if (w->params.reproducible)
		p->s_feature_incompat |= EXT4_FEATURE_INCOMPAT_CSUM_SEED;
	p->s_feature_ro_compat =
	    EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER | EXT2_FEATURE_RO_COMPAT_LARGE_FILE |
	    EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_DIR_NLINK |
	    EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE | EXT4_FEATURE_RO_COMPAT_METADATA_CSUM;
}

static int fs_init(struct ext4_writer *w, uint64_t blocks, uint64_t inodes, ext2_filsys *out)
{
	struct ext2_super_block param;
	ext2_filsys fs;
	errcode_t e;

	params_for(w, blocks, inodes, &param);
	e = ext2fs_initialize(w->path, EXT2_FLAG_64BITS, &param, unix_io_manager, &fs);
	if (e)
		return ext2_error(e, w->name);
	e = ext2fs_allocate_tables(fs);
	if (e) {
		ext2fs_free(fs);
		return ext2_error(e, w->name);
	}
	*out = fs;
	return 0;
}

static uint64_t inodes_wanted(const struct ext4_writer *w)
{
	uint64_t used = w->max_ino;

	if (w->params.inodes)
		return w->params.inodes;
	return used + used * w->params.extra_percent / 100 + used / 16 + 32;
}

static int fs_create(struct ext4_writer *w)
{
	uint64_t need = w->need_blocks + w->need_blocks * w->params.extra_percent / 100;
	uint64_t inodes = inodes_wanted(w), blocks;

	if (inodes < w->max_ino || inodes > UINT32_MAX)
		return log_errno(-EINVAL, "pack: %s: %llu inodes cannot hold %u", w->name,
				 (unsigned long long)inodes, w->max_ino);
	blocks = w->params.size ? w->params.size / w->bs
				: need + need / 256 + inodes * INODE_SIZE / w->bs + 256;
	if (w->params.size && blocks < need + inodes * INODE_SIZE / w->bs + 64) {
		log_error("pack: %s: size %llu too small, needs at least %llu bytes", w->name,
			  (unsigned long long)w->params.size,
			  (unsigned long long)(need + inodes * INODE_SIZE / w->bs + 64) * w->bs);
		return -ENOSPC;
	}
	for (int attempt = 0; attempt < 16; attempt++) {
		ext2_filsys fs;
		uint64_t free_blocks;
		int r = fs_init(w, blocks, inodes, &fs);

		if (r < 0)
			return r;
		free_blocks = count_free_blocks(fs);
		if (free_blocks >= need + 16) {
			w->fs = fs;
			return 0;
		}
		ext2fs_free(fs);
		if (w->params.size)
			return log_errno(
			    -ENOSPC, "pack: %s: size too small, needs at least %llu bytes", w->name,
			    (unsigned long long)(blocks + need + 16 - free_blocks) * w->bs);
		blocks += need + 16 - free_blocks + blocks / 128;
	}
	return log_errno(-ENOSPC, "pack: %s: cannot size the file system", w->name);
}

static void fill_random(void *buf, size_t len)
{
	if (getrandom(buf, len, 0) != (ssize_t)len) {
		/* Never fatal: a weak seed only costs htree balance. */
		uint64_t x = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

		for (size_t i = 0; i < len; i++, x = x * 6364136223846793005ULL + 1)
			((uint8_t *)buf)[i] ^= x >> 56;
	}
}

static void make_uuid_v4(uint8_t uuid[16])
{
	uuid[6] = (uuid[6] & 0x0f) | 0x40;
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
}

/* Identity of the file system: UUID, hash seed, label, times. */
static void setup_super(struct ext4_writer *w)
{
	struct ext2_super_block *sb = w->fs->super;
	int64_t t = w->params.fs_time;

	if (w->params.set_uuid) {
		memcpy(sb->s_uuid, w->params.uuid, 16);
	} else if (w->params.reproducible) {
		/* A placeholder; pack replaces it by a digest of the finished image. */
		memcpy(sb->s_uuid, w->tree->digest, 16);
		make_uuid_v4(sb->s_uuid);
	} else {
		fill_random(sb->s_uuid, 16);
		make_uuid_v4(sb->s_uuid);
	}
	if (w->params.reproducible)
		sb->s_checksum_seed = (uint32_t)(w->tree->digest[0] ^ (w->tree->digest[0] >> 32));
	memcpy(sb->s_hash_seed, w->geo.hash_seed, sizeof(sb->s_hash_seed));
	sb->s_checksum_type = EXT2_CRC32C_CHKSUM;
	sb->s_def_hash_version = w->geo.hash_version;
	sb->s_flags |= EXT2_FLAGS_UNSIGNED_HASH;
	memset(sb->s_volume_name, 0, sizeof(sb->s_volume_name));
	if (w->params.label)
		strncpy((char *)sb->s_volume_name, w->params.label, sizeof(sb->s_volume_name));
	sb->s_min_extra_isize = sb->s_want_extra_isize = EXTRA_ISIZE;
	sb->s_mkfs_time = sb->s_lastcheck = sb->s_wtime = (uint32_t)t;
	sb->s_max_mnt_count = (uint16_t)-1;
	sb->s_checkinterval = 0;
	w->fs->now = t;
	ext2fs_init_csum_seed(w->fs);
	/* The image file starts as a hole: every inode table already reads as zeros. */
	for (dgrp_t g = 0; g < w->fs->group_desc_count; g++)
		ext2fs_bg_flags_set(w->fs, g, EXT2_BG_INODE_ZEROED);
	ext2fs_mark_super_dirty(w->fs);
}

static void mark_inodes(struct ext4_writer *w)
{
	for (uint32_t ino = 1; ino <= w->max_ino; ino++) {
		const struct tree_node *n = w->by_ino[ino];

		if (ino < LOST_FOUND_INO && ino != EXT2_ROOT_INO && !n) /* reserved inodes */
			ext2fs_inode_alloc_stats2(w->fs, ino, +1, 0);
		else if (n)
			ext2fs_inode_alloc_stats2(w->fs, ino, +1, S_ISDIR(n->mode));
	}
}

/* ---- blocks and extents ---- */

static int alloc_run(struct ext4_writer *w, uint64_t want, blk64_t *start, uint64_t *len)
{
	ext2_filsys fs = w->fs;
	blk64_t last = ext2fs_blocks_count(fs->super) - 1, first, end;

	if (w->cursor > last ||
	    ext2fs_find_first_zero_block_bitmap2(fs->block_map, w->cursor, last, &first))
		return log_errno(-ENOSPC, "pack: %s: out of space in the image", w->name);
	want = MIN(want, (uint64_t)MAX_EXTENT_LEN);
	if (ext2fs_find_first_set_block_bitmap2(fs->block_map, first, MIN(first + want - 1, last),
						&end))
		end = MIN(first + want, last + 1);
	ext2fs_block_alloc_stats_range(fs, first, end - first, +1);
	w->cursor = end;
	*start = first;
	*len = end - first;
	return 0;
}

static int extent_add(struct extent_list *el, uint32_t lblk, blk64_t pblk, uint32_t len)
{
	struct extent *last = el->n ? &el->e[el->n - 1] : NULL;

	el->blocks += len;
	if (last && last->lblk + last->len == lblk && last->pblk + last->len == pblk &&
	    last->len + len <= MAX_EXTENT_LEN) {
		last->len += len;
		return 0;
	}
	if (el->n == el->cap) {
		size_t cap = el->cap ? el->cap * 2 : 4;
		struct extent *e = realloc(el->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		el->e = e;
		el->cap = cap;
	}
	el->e[el->n++] = (struct extent){lblk, len, pblk};
	return 0;
}

/* Allocates count blocks for logical blocks [lblk, lblk+count), appending extents. */
static int alloc_blocks(struct ext4_writer *w, uint64_t lblk, uint64_t count,
			struct extent_list *el)
{
	while (count) {
		blk64_t start;
		uint64_t len;
		int r = alloc_run(w, count, &start, &len);

		if (r < 0)
			return r;
		if (lblk + len > UINT32_MAX)
			return -EFBIG;
		r = extent_add(el, lblk, start, len);
		if (r < 0)
			return r;
		lblk += len;
		count -= len;
	}
	return 0;
}

static void put_header(void *p, unsigned entries, unsigned max, unsigned depth)
{
	struct ext3_extent_header h = {
	    .eh_magic = htole16(EXT3_EXT_MAGIC),
	    .eh_entries = htole16(entries),
	    .eh_max = htole16(max),
	    .eh_depth = htole16(depth),
	};

	memcpy(p, &h, sizeof(h));
}

/* Entries of one tree level: extents at depth 0, (first lblk, child block) above. */
static void put_entries(void *p, const struct extent *e, size_t n, unsigned depth)
{
	uint8_t *out = (uint8_t *)p + sizeof(struct ext3_extent_header);

	for (size_t i = 0; i < n; i++, out += 12) {
		if (depth == 0) {
			struct ext3_extent x = {
			    .ee_block = htole32(e[i].lblk),
			    .ee_len = htole16(e[i].len),
			    .ee_start_hi = htole16(e[i].pblk >> 32),
			    .ee_start = htole32((uint32_t)e[i].pblk),
			};

			memcpy(out, &x, 12);
		} else {
			struct ext3_extent_idx x = {
			    .ei_block = htole32(e[i].lblk),
			    .ei_leaf = htole32((uint32_t)e[i].pblk),
			    .ei_leaf_hi = htole16(e[i].pblk >> 32),
			};

			memcpy(out, &x, 12);
		}
	}
}

/* Writes one level of tree blocks for e[0..n); replaces e by the index entries above them. */
static int write_tree_level(struct ext4_writer *w, uint32_t ino, struct extent *e, size_t *n,
			    unsigned depth, uint64_t *tree_blocks)
{
	size_t per_block = (w->bs - sizeof(struct ext3_extent_header)) / 12, out = 0;
	_cleanup_free_ uint8_t *buf = malloc(w->bs);

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i += per_block, out++) {
		size_t cnt = MIN(per_block, *n - i);
		uint32_t first_lblk = e[i].lblk;
		blk64_t blk;
		uint64_t got;
		errcode_t err;
		int r = alloc_run(w, 1, &blk, &got);

		if (r < 0)
			return r;
		memset(buf, 0, w->bs);
		put_header(buf, cnt, per_block, depth);
		put_entries(buf, e + i, cnt, depth);
		err = ext2fs_extent_block_csum_set(w->fs, ino, (struct ext3_extent_header *)buf);
		if (!err)
			err = io_channel_write_blk64(w->fs->io, blk, 1, buf);
		if (err)
			return ext2_error(err, w->name);
		e[out] = (struct extent){.lblk = first_lblk, .pblk = blk};
		(*tree_blocks)++;
	}
	*n = out;
	return 0;
}

static void set_blocks(struct ext2_inode_large *in, uint64_t blocks, unsigned bs)
{
	uint64_t sectors = blocks * (bs / 512);

	in->i_blocks = (uint32_t)sectors;
	in->osd2.linux2.l_i_blocks_hi = (uint16_t)(sectors >> 32);
}

static void set_size(struct ext2_inode_large *in, uint64_t size)
{
	in->i_size = (uint32_t)size;
	in->i_size_high = (uint32_t)(size >> 32);
}

/* Puts the extent list into the inode, with tree blocks below it when it has more than 4. */
static int write_extents(struct ext4_writer *w, uint32_t ino, struct extent_list *el)
{
	struct ext2_inode_large *in = &w->inodes[ino];
	uint64_t tree_blocks = 0;
	unsigned depth = 0;
	size_t n = el->n;

	in->i_flags |= EXT4_EXTENTS_FL;
	while (n > ROOT_EXTENTS) {
		int r = write_tree_level(w, ino, el->e, &n, depth, &tree_blocks);

		if (r < 0)
			return r;
		depth++;
	}
	memset(in->i_block, 0, sizeof(in->i_block));
	put_header(in->i_block, n, ROOT_EXTENTS, depth);
	put_entries(in->i_block, el->e, n, depth);
	set_blocks(in, el->blocks + tree_blocks, w->bs);
	return 0;
}

/* ---- inodes ---- */

static void inode_fill(struct ext4_writer *w, const struct tree_node *n)
{
	struct ext2_inode_large *in = &w->inodes[n->ino];
	uint32_t links = n->nlink;

	if (S_ISDIR(n->mode)) {
		links = 2 + n->subdirs;
		if (links > EXT2_LINK_MAX)
			links = 1; /* dir_nlink: "many" */
	}
	in->i_mode = n->mode;
	in->i_uid = n->uid & 0xffff;
	in->osd2.linux2.l_i_uid_high = n->uid >> 16;
	in->i_gid = n->gid & 0xffff;
	in->osd2.linux2.l_i_gid_high = n->gid >> 16;
	in->i_links_count = links;
	in->i_extra_isize = EXTRA_ISIZE;
	encode_time(n->atime, &in->i_atime, &in->i_atime_extra);
	encode_time(n->mtime, &in->i_mtime, &in->i_mtime_extra);
	encode_time(n->ctime, &in->i_ctime, &in->i_ctime_extra);
	encode_time(n->ctime, &in->i_crtime, &in->i_crtime_extra);
}

static void inode_fill_device(struct ext2_inode_large *in, dev_t rdev)
{
	unsigned maj = major(rdev), min = minor(rdev);

	if (maj < 256 && min < 256)
		in->i_block[0] = htole32(maj << 8 | min);
	else
		in->i_block[1] = htole32((min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12));
}

static int write_block_data(struct ext4_writer *w, const struct extent_list *el, const void *data)
{
	for (size_t i = 0; i < el->n; i++) {
		const struct extent *x = &el->e[i];
		errcode_t e = io_channel_write_blk64(
		    w->fs->io, x->pblk, x->len, (const uint8_t *)data + (size_t)x->lblk * w->bs);

		if (e)
			return ext2_error(e, w->name);
	}
	return 0;
}

static int write_symlink(struct ext4_writer *w, const struct tree_node *n)
{
	struct ext2_inode_large *in = &w->inodes[n->ino];
	struct extent_list el = {0};
	_cleanup_free_ uint8_t *block = NULL;
	int r;

	set_size(in, n->size);
	if (n->size < FAST_SYMLINK_MAX) {
		memcpy(in->i_block, n->link_target, n->size);
		return 0;
	}
	block = calloc(1, w->bs);
	if (!block)
		return -ENOMEM;
	memcpy(block, n->link_target, n->size);
	r = alloc_blocks(w, 0, 1, &el);
	if (r >= 0)
		r = write_block_data(w, &el, block);
	if (r >= 0)
		r = write_extents(w, n->ino, &el);
	free(el.e);
	return r;
}

static int write_dir(struct ext4_writer *w, const struct tree_node *d)
{
	struct ext4_dir_blocks *b = &w->dirs[d->aux];
	struct ext2_inode_large *in = &w->inodes[d->ino];
	struct extent_list el = {0};
	int r;

	for (uint32_t i = 0; i < b->nblocks; i++) {
		errcode_t e = ext2fs_dir_block_csum_set(
		    w->fs, d->ino, (struct ext2_dir_entry *)(b->data + (size_t)i * w->bs));

		if (e)
			return ext2_error(e, w->name);
	}
	r = alloc_blocks(w, 0, b->nblocks, &el);
	if (r >= 0)
		r = write_block_data(w, &el, b->data);
	if (r >= 0)
		r = write_extents(w, d->ino, &el);
	free(el.e);
	set_size(in, (uint64_t)b->nblocks * w->bs);
	if (b->indexed)
		in->i_flags |= EXT2_INDEX_FL;
	free(b->data);
	b->data = NULL;
	return r;
}

static int write_metadata_node(struct tree_node *n, void *opaque)
{
	struct ext4_writer *w = opaque;
	struct ext2_inode_large *in;

	if (n->link_first)
		return 0;
	inode_fill(w, n);
	in = &w->inodes[n->ino];
	switch (n->mode & S_IFMT) {
	case S_IFDIR:
		return write_dir(w, n);
	case S_IFLNK:
		return write_symlink(w, n);
	case S_IFREG:
		/* Data comes later; an empty extent tree until then. */
		in->i_flags |= EXT4_EXTENTS_FL;
		put_header(in->i_block, 0, ROOT_EXTENTS, 0);
		set_size(in, n->size);
		return 0;
	case S_IFCHR:
	case S_IFBLK:
		inode_fill_device(in, n->rdev);
		return 0;
	}
	return 0;
}

/* ---- regular file data ---- */

static int copy_range(struct ext4_writer *w, int fd, const struct tree_node *n,
		      const struct extent_list *el, size_t from)
{
	for (size_t i = from; i < el->n; i++) {
		const struct extent *x = &el->e[i];
		uint64_t off = (uint64_t)x->lblk * w->bs;
		uint64_t len = MIN((uint64_t)x->len * w->bs, n->size - off);
		int r = bwriter_copy(w->data, fd, off, x->pblk, len);

		if (r < 0)
			return r;
	}
	return 0;
}

int ext4_write_file(struct ext4_writer *w, struct tree_node *n, int fd)
{
	_cleanup_free_ struct block_range *ranges = calloc(MAX(n->nsegments, 1), sizeof(*ranges));
	struct extent_list el = {0};
	size_t nr;
	int r = 0;

	if (!ranges)
		return -ENOMEM;
	nr = file_ranges(n, w->bs, ranges);
	for (size_t i = 0; i < nr && r >= 0; i++) {
		/* Ranges are separated by holes, so their extents never merge with earlier ones. */
		size_t from = el.n;

		r = alloc_blocks(w, ranges[i].first, ranges[i].count, &el);
		if (r >= 0)
			r = copy_range(w, fd, n, &el, from);
	}
	if (r >= 0)
		r = write_extents(w, n->ino, &el);
	free(el.e);
	if (r < 0) {
		_cleanup_free_ char *p = tree_node_path(w->tree, n);

		if (r == -ENODATA)
			return log_errno(-EAGAIN, "pack: %s: file changed while packing", p);
		return log_errno(r, "pack: %s", p ? p : n->name);
	}
	return 0;
}

uint64_t ext4_write_data_total(const struct ext4_writer *w)
{
	return w->tree->data_bytes;
}

/* ---- begin / finish ---- */

static void geometry_init(struct ext4_writer *w)
{
	w->geo = (struct ext4_dir_geometry){
	    .block_size = w->bs,
	    .csum = true,
	    .dir_index = true,
	    .hash_version = EXT2_HASH_HALF_MD4,
	    .hash_unsigned = true,
	};
	if (w->params.reproducible)
		memcpy(w->geo.hash_seed, w->tree->digest, sizeof(w->geo.hash_seed));
	else
		fill_random(w->geo.hash_seed, sizeof(w->geo.hash_seed));
}

static int layout(struct ext4_writer *w)
{
	int r = assign_inodes(w);

	if (r < 0)
		return r;
	tree_walk(w->tree, index_node, w);
	w->dirs = calloc(w->tree->ndirs + 1, sizeof(*w->dirs));
	if (!w->dirs)
		return -ENOMEM;
	geometry_init(w);
	r = tree_walk(w->tree, build_dir_cb, w);
	if (r < 0)
		return r;
	return tree_walk(w->tree, count_file_blocks, w);
}

static int check_params(struct ext4_writer *w)
{
	if (!w->bs)
		w->bs = 4096;
	if (w->bs != 1024 && w->bs != 2048 && w->bs != 4096)
		return log_errno(-EINVAL, "pack: block size %u: must be 1024, 2048 or 4096", w->bs);
	if (w->params.label && strlen(w->params.label) > EXT2_LABEL_LEN)
		return log_errno(-EINVAL, "pack: label '%s': longer than %d bytes", w->params.label,
				 EXT2_LABEL_LEN);
	if (!w->params.fs_time)
		w->params.fs_time = time(NULL);
	return 0;
}

int ext4_write_begin(const char *path, struct tree *tree, const struct ext4_write_params *params,
		     struct ext4_writer **out)
{
	struct ext4_writer *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->img_fd = -EBADF;
	w->tree = tree;
	w->params = *params;
	w->bs = params->block_size;
	w->path = strdup(path);
	w->name = params->name ? params->name : path;
	r = w->path ? check_params(w) : -ENOMEM;
	if (r >= 0)
		r = layout(w);
	if (r >= 0)
		r = fs_create(w);
	if (r >= 0) {
		w->img_fd = open(path, O_RDWR | O_CLOEXEC);
		if (w->img_fd < 0)
			r = log_errno(-errno, "pack: %s", path);
	}
	if (r >= 0 && ftruncate(w->img_fd, ext2fs_blocks_count(w->fs->super) * w->bs) < 0)
		r = log_errno(-errno, "pack: %s", path);
	if (r >= 0 && (r = bwriter_open(path, w->bs, &w->data)) < 0)
		log_errno(r, "pack: %s", path);
	if (r >= 0) {
		setup_super(w);
		mark_inodes(w);
		w->cursor = w->fs->super->s_first_data_block;
		r = tree_walk(tree, write_metadata_node, w);
	}
	if (r < 0) {
		ext4_write_abort(w);
		return r;
	}
	*out = w;
	return 0;
}

/* Writes the used part of each group's inode table in one I/O, checksummed. */
static int write_inode_tables(struct ext4_writer *w)
{
	ext2_filsys fs = w->fs;
	uint32_t ipg = fs->super->s_inodes_per_group;
	_cleanup_free_ uint8_t *buf = malloc((size_t)ipg * INODE_SIZE);

	if (!buf)
		return -ENOMEM;
	for (dgrp_t g = 0; g < fs->group_desc_count; g++) {
		uint32_t first = g * ipg + 1, count;
		size_t bytes;
		errcode_t e;

		if (first > w->max_ino)
			break;
		count = MIN(ipg, w->max_ino - first + 1);
		bytes = (size_t)count * INODE_SIZE;
		bytes = (bytes + w->bs - 1) / w->bs * w->bs;
		memset(buf, 0, bytes);
		for (uint32_t i = 0; i < count; i++) {
			struct ext2_inode_large *slot = (void *)(buf + (size_t)i * INODE_SIZE);

			if (!w->by_ino[first + i])
				continue;
			memcpy(slot, &w->inodes[first + i], sizeof(*slot));
			e = ext2fs_inode_csum_set(fs, first + i, slot);
			if (e)
				return ext2_error(e, w->name);
		}
		log_debug("itable g=%u at %llu: %zu bytes", g,
			  (unsigned long long)ext2fs_inode_table_loc(fs, g), bytes);
		e = io_channel_write_blk64(fs->io, ext2fs_inode_table_loc(fs, g), bytes / w->bs,
					   buf);
		if (e)
			return ext2_error(e, w->name);
	}
	return 0;
}

static int write_xattrs(struct ext4_writer *w, const struct tree_node *n)
{
	struct ext2_xattr_handle *h;
	errcode_t e = ext2fs_xattrs_open(w->fs, n->ino, &h);

	if (e)
		return ext2_error(e, w->name);
	e = ext2fs_xattrs_read(h);
	for (size_t i = 0; !e && i < n->nxattrs; i++)
		e = ext2fs_xattr_set(h, n->xattrs[i].name, n->xattrs[i].value, n->xattrs[i].len);
	if (!e)
		e = ext2fs_xattrs_close(&h);
	else
		ext2fs_xattrs_close(&h);
	if (e) {
		_cleanup_free_ char *p = tree_node_path(w->tree, n);
		char what[4096];

		snprintf(what, sizeof(what), "%s: xattrs", p ? p : n->name);
		return ext2_error(e, what);
	}
	return 0;
}

static int write_all_xattrs(struct ext4_writer *w)
{
	for (uint32_t ino = 1; ino <= w->max_ino; ino++) {
		const struct tree_node *n = w->by_ino[ino];

		if (n && n->nxattrs) {
			int r = write_xattrs(w, n);

			if (r < 0)
				return r;
		}
	}
	return 0;
}

int ext4_write_finish(struct ext4_writer *w)
{
	errcode_t e;
	int r = bwriter_close(TAKE_PTR(w->data));

	if (r < 0)
		log_errno(r, "pack: %s: writing file data", w->name);
	if (r >= 0)
		r = write_inode_tables(w);
	/*
	 * Checksumming dir and extent blocks read the (still empty) inodes into
	 * libext2fs's inode cache and its I/O cache: drop both, or the xattr
	 * pass writes stale inode table blocks back over ours.
	 */
	if (r >= 0) {
		ext2fs_free_inode_cache(w->fs->icache);
		w->fs->icache = NULL;
		/* A block size change is the only public way to make unix_io drop its cache. */
		e = io_channel_set_blksize(w->fs->io, w->fs->blocksize == 1024 ? 2048 : 1024);
		if (!e)
			e = io_channel_set_blksize(w->fs->io, w->fs->blocksize);
		if (e)
			r = ext2_error(e, w->name);
	}
	if (r >= 0)
		r = write_all_xattrs(w);
	if (r < 0) {
		ext4_write_abort(w);
		return r;
	}
	e = ext2fs_set_gdt_csum(w->fs);
	w->fs->super->s_wtime = (uint32_t)w->params.fs_time;
	if (!e)
		e = ext2fs_close_free(&w->fs);
	if (e)
		r = ext2_error(e, w->name);
	if (r >= 0 && close(TAKE_FD(w->img_fd)) < 0)
		r = log_errno(-errno, "pack: %s", w->name);
	ext4_write_abort(w);
	return r;
}

void ext4_write_abort(struct ext4_writer *w)
{
	if (!w)
		return;
	if (w->data)
		bwriter_close(w->data);
	if (w->fs)
		ext2fs_free(w->fs);
	if (w->img_fd >= 0)
		close(w->img_fd);
	for (size_t i = 0; i < w->ndirs; i++)
		free(w->dirs[i].data);
	free(w->dirs);
	free(w->inodes);
	free(w->by_ino);
	free(w->path);
	free(w);
}

int ext4_write_set_uuid(const char *path, const uint8_t uuid[16], int64_t fs_time)
{
	ext2_filsys fs;
	errcode_t e = ext2fs_open(path, EXT2_FLAG_RW | EXT2_FLAG_64BITS | EXT2_FLAG_SUPER_ONLY, 0,
				  0, unix_io_manager, &fs);

	if (e)
		return ext2_error(e, path);
	memcpy(fs->super->s_uuid, uuid, 16);
	fs->now = fs_time;
	fs->super->s_wtime = (uint32_t)fs_time;
	ext2fs_mark_super_dirty(fs);
	e = ext2fs_close_free(&fs);
	if (e)
		return ext2_error(e, path);
	return 0;
}
