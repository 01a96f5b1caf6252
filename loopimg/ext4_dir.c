/*
 * Directory blocks, built whole rather than inserted one entry at a time (the
 * O(n^2) part of mke2fs -d). A directory that fits one block is a linear
 * block; a larger one gets an htree: hash-sorted, fully packed leaves under a
 * dx_root (and one level of dx_nodes when the root overflows), the layout the
 * kernel's ext4 and e2fsck expect. Checksums are left to the writer, which
 * knows the file system's seed. libext2fs is used here only for its dirhash.
 */
#include "loopimg/ext4_dir.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "lib/macro.h"

#define DIRENT_HEADER 8
#define TAIL_LEN 12
#define DX_ROOT_ENTRIES_OFFSET 32 /* ".", "..", dx_root_info */
#define DX_NODE_ENTRIES_OFFSET 8  /* a fake empty dirent spanning the block */

struct builder {
	const struct ext4_dir_geometry *g;
	uint8_t *data;
	uint32_t cap;	  /* blocks allocated in data */
	uint32_t nblocks; /* blocks in use */
	uint32_t pos;	  /* next free byte in the current block */
	int32_t last;	  /* offset of the last entry in the current block, -1 if none */
};

struct hashed {
	uint32_t hash, minor;
	uint32_t index;
};

struct dx_entry {
	uint32_t hash, block;
};

static unsigned rec_len_for(unsigned name_len)
{
	return (DIRENT_HEADER + name_len + 3) & ~3u;
}

static unsigned usable_len(const struct ext4_dir_geometry *g)
{
	return g->block_size - (g->csum ? TAIL_LEN : 0);
}

static uint8_t *block_at(struct builder *b, uint32_t blk)
{
	return b->data + (size_t)blk * b->g->block_size;
}

static void put_dirent(uint8_t *p, uint32_t ino, unsigned rec_len, const char *name,
		       unsigned name_len, uint8_t type)
{
	uint32_t ino_le = htole32(ino);
	uint16_t rec_le = htole16(rec_len);

	memcpy(p, &ino_le, 4);
	memcpy(p + 4, &rec_le, 2);
	p[6] = name_len;
	p[7] = type;
	memcpy(p + DIRENT_HEADER, name, name_len);
}

static void set_rec_len(uint8_t *p, unsigned rec_len)
{
	uint16_t rec_le = htole16(rec_len);

	memcpy(p + 4, &rec_le, 2);
}

static int block_new(struct builder *b)
{
	if (b->nblocks == b->cap) {
		uint32_t cap = b->cap ? b->cap * 2 : 1;
		uint8_t *d = realloc(b->data, (size_t)cap * b->g->block_size);

		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memset(block_at(b, b->nblocks), 0, b->g->block_size);
	b->nblocks++;
	b->pos = 0;
	b->last = -1;
	return 0;
}

/* Stretches the last entry to the end of the usable space and adds the checksum tail. */
static void block_close(struct builder *b)
{
	uint8_t *blk = block_at(b, b->nblocks - 1);
	unsigned usable = usable_len(b->g);

	if (b->last < 0)
		put_dirent(blk, 0, usable, "", 0, 0);
	else
		set_rec_len(blk + b->last, usable - b->last);
	if (b->g->csum) {
		struct ext2_dir_entry_tail tail = {
		    .det_rec_len = htole16(TAIL_LEN),
		    .det_reserved_name_len = htole16(EXT2_DIR_NAME_LEN_CSUM),
		};

		memcpy(blk + usable, &tail, sizeof(tail));
	}
}

/* Appends one entry; returns 1 when it opened a new block for it. */
static int put_entry(struct builder *b, uint32_t ino, const char *name, unsigned name_len,
		     uint8_t type)
{
	unsigned need = rec_len_for(name_len);
	int opened = 0;

	if (b->nblocks == 0 || b->pos + need > usable_len(b->g)) {
		int r;

		if (b->nblocks)
			block_close(b);
		r = block_new(b);
		if (r < 0)
			return r;
		opened = 1;
	}
	put_dirent(block_at(b, b->nblocks - 1) + b->pos, ino, need, name, name_len, type);
	b->last = b->pos;
	b->pos += need;
	return opened;
}

static int build_linear(const struct ext4_dirent *e, size_t n, uint32_t self, uint32_t parent,
			struct builder *b)
{
	int r = put_entry(b, self, ".", 1, EXT2_FT_DIR);

	if (r >= 0)
		r = put_entry(b, parent, "..", 2, EXT2_FT_DIR);
	for (size_t i = 0; r >= 0 && i < n; i++)
		r = put_entry(b, e[i].ino, e[i].name, e[i].name_len, e[i].file_type);
	if (r < 0)
		return r;
	block_close(b);
	return 0;
}

static size_t linear_bytes(const struct ext4_dirent *e, size_t n)
{
	size_t sum = rec_len_for(1) + rec_len_for(2);

	for (size_t i = 0; i < n; i++)
		sum += rec_len_for(e[i].name_len);
	return sum;
}

static int hashed_cmp(const void *a, const void *b)
{
	const struct hashed *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	if (x->minor != y->minor)
		return x->minor < y->minor ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static int hash_entries(const struct ext4_dirent *e, size_t n, const struct ext4_dir_geometry *g,
			struct hashed *out)
{
	int alg = g->hash_version;

	if (g->hash_unsigned && alg <= EXT2_HASH_TEA)
		alg += 3;
	for (size_t i = 0; i < n; i++) {
		ext2_dirhash_t hash, minor;

		if (ext2fs_dirhash2(alg, e[i].name, e[i].name_len, NULL, 0, g->hash_seed, &hash,
				    &minor))
			return -EINVAL;
		out[i] = (struct hashed){.hash = hash & ~1u, .minor = minor, .index = i};
	}
	qsort(out, n, sizeof(*out), hashed_cmp);
	return 0;
}

/*
 * Fills leaves from block 1 on in hash order. A leaf that starts in the
 * middle of a run of equal hashes gets the collision bit in its index hash.
 */
static int build_leaves(const struct ext4_dirent *e, const struct hashed *h, size_t n,
			struct builder *b, struct dx_entry **leaves, uint32_t *nleaves)
{
	struct dx_entry *l = NULL;
	uint32_t count = 0;

	for (size_t i = 0; i < n; i++) {
		const struct ext4_dirent *d = &e[h[i].index];
		int r = put_entry(b, d->ino, d->name, d->name_len, d->file_type);

		if (r < 0) {
			free(l);
			return r;
		}
		if (r == 1) {
			struct dx_entry *nl = realloc(l, (count + 1) * sizeof(*l));

			if (!nl) {
				free(l);
				return -ENOMEM;
			}
			l = nl;
			l[count].block = b->nblocks - 1;
			l[count].hash = h[i].hash | (i > 0 && h[i - 1].hash == h[i].hash);
			count++;
		}
	}
	block_close(b);
	*leaves = l;
	*nleaves = count;
	return 0;
}

/* Writes count/limit and the entries of one index block; entry 0's hash is implied. */
static void put_dx_entries(uint8_t *p, unsigned limit, const struct dx_entry *ents, unsigned n)
{
	struct ext2_dx_countlimit cl = {.limit = htole16(limit), .count = htole16(n)};
	uint32_t blk0 = htole32(ents[0].block);

	memcpy(p, &cl, sizeof(cl));
	memcpy(p + 4, &blk0, 4);
	for (unsigned i = 1; i < n; i++) {
		uint32_t v[2] = {htole32(ents[i].hash), htole32(ents[i].block)};

		memcpy(p + 8 * i, v, 8);
	}
}

static void put_dx_root(struct builder *b, uint32_t self, uint32_t parent, uint8_t levels,
			const struct dx_entry *ents, unsigned n, unsigned limit)
{
	uint8_t *blk = block_at(b, 0);
	struct ext2_dx_root_info info = {
	    .hash_version = b->g->hash_version,
	    .info_length = sizeof(info),
	    .indirect_levels = levels,
	};

	memset(blk, 0, b->g->block_size);
	put_dirent(blk, self, 12, ".", 1, EXT2_FT_DIR);
	put_dirent(blk + 12, parent, b->g->block_size - 12, "..", 2, EXT2_FT_DIR);
	memcpy(blk + 24, &info, sizeof(info));
	put_dx_entries(blk + DX_ROOT_ENTRIES_OFFSET, limit, ents, n);
}

static int put_dx_node(struct builder *b, const struct dx_entry *ents, unsigned n, unsigned limit)
{
	int r = block_new(b);

	if (r < 0)
		return r;
	put_dirent(block_at(b, b->nblocks - 1), 0, b->g->block_size, "", 0, 0);
	put_dx_entries(block_at(b, b->nblocks - 1) + DX_NODE_ENTRIES_OFFSET, limit, ents, n);
	return 0;
}

/* Root over the leaves directly, or over dx_nodes of up to node_limit leaves each. */
static int build_index(struct builder *b, uint32_t self, uint32_t parent,
		       const struct dx_entry *leaves, uint32_t nleaves)
{
	unsigned bs = b->g->block_size, tail = b->g->csum ? 1 : 0;
	unsigned root_limit = (bs - DX_ROOT_ENTRIES_OFFSET) / 8 - tail;
	unsigned node_limit = (bs - DX_NODE_ENTRIES_OFFSET) / 8 - tail;
	_cleanup_free_ struct dx_entry *nodes = NULL;
	uint32_t nnodes;

	if (nleaves <= root_limit) {
		put_dx_root(b, self, parent, 0, leaves, nleaves, root_limit);
		return 0;
	}
	nnodes = (nleaves + node_limit - 1) / node_limit;
	if (nnodes > root_limit)
		return -EFBIG;
	nodes = calloc(nnodes, sizeof(*nodes));
	if (!nodes)
		return -ENOMEM;
	for (uint32_t i = 0; i < nnodes; i++) {
		uint32_t first = i * node_limit, n = MIN(node_limit, nleaves - first);
		int r;

		nodes[i] = (struct dx_entry){.hash = leaves[first].hash, .block = b->nblocks};
		r = put_dx_node(b, leaves + first, n, node_limit);
		if (r < 0)
			return r;
	}
	put_dx_root(b, self, parent, 1, nodes, nnodes, root_limit);
	return 0;
}

static int build_htree(const struct ext4_dirent *e, size_t n, uint32_t self, uint32_t parent,
		       struct builder *b)
{
	_cleanup_free_ struct hashed *h = calloc(n ? n : 1, sizeof(*h));
	_cleanup_free_ struct dx_entry *leaves = NULL;
	uint32_t nleaves;
	int r;

	if (!h)
		return -ENOMEM;
	r = hash_entries(e, n, b->g, h);
	if (r < 0)
		return r;
	r = block_new(b); /* block 0: the dx_root, written last */
	if (r < 0)
		return r;
	b->pos = usable_len(b->g); /* forces the first entry into a new block */
	r = build_leaves(e, h, n, b, &leaves, &nleaves);
	if (r < 0)
		return r;
	return build_index(b, self, parent, leaves, nleaves);
}

int ext4_dir_build(const struct ext4_dirent *entries, size_t n, uint32_t self_ino,
		   uint32_t parent_ino, const struct ext4_dir_geometry *g,
		   struct ext4_dir_blocks *out)
{
	struct builder b = {.g = g, .last = -1};
	bool indexed = g->dir_index && linear_bytes(entries, n) > usable_len(g);
	int r;

	if (g->block_size < 1024 || g->block_size > 4096)
		return -EINVAL;
	if (indexed)
		r = build_htree(entries, n, self_ino, parent_ino, &b);
	else
		r = build_linear(entries, n, self_ino, parent_ino, &b);
	if (r < 0) {
		free(b.data);
		return r;
	}
	*out = (struct ext4_dir_blocks){.data = b.data, .nblocks = b.nblocks, .indexed = indexed};
	return 0;
}
