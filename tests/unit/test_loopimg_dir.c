/* Unit tests: loopimg's directory block builder (linear and htree) and pack's option parsers. */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ext2fs/ext2_fs.h>
#include <ext2fs/ext2fs.h>

#include "loopimg/ext4_dir.h"
#include "loopimg/pack.h"

static const struct ext4_dir_geometry geo = {
    .block_size = 4096,
    .csum = true,
    .dir_index = true,
    .hash_version = EXT2_HASH_HALF_MD4,
    .hash_unsigned = true,
    .hash_seed = {1, 2, 3, 4},
};

static struct ext4_dirent *make_entries(size_t n, char ***names)
{
	struct ext4_dirent *e = calloc(n, sizeof(*e));

	*names = calloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		ck_assert_int_ge(asprintf(&(*names)[i], "entry-%zu", i), 0);
		e[i] = (struct ext4_dirent){(*names)[i], strlen((*names)[i]), EXT2_FT_REG_FILE,
					    100 + i};
	}
	return e;
}

static void free_entries(struct ext4_dirent *e, char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(e);
}

static uint16_t le16_at(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return le16toh(v);
}

static uint32_t le32_at(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32toh(v);
}

/* Walks one leaf block: rec_lens must chain to the tail; returns the live entries. */
static unsigned count_leaf(const uint8_t *blk, uint32_t min_hash, uint32_t max_hash, bool hashed)
{
	unsigned off = 0, n = 0;

	while (off < 4096 - 12) {
		unsigned rec = le16_at(blk + off + 4), len = blk[off + 6];

		ck_assert_uint_ge(rec, 8);
		if (le32_at(blk + off) && !(len == 1 && blk[off + 8] == '.') &&
		    !(len == 2 && !memcmp(blk + off + 8, "..", 2))) {
			n++;
			if (hashed) {
				ext2_dirhash_t h, minor;

				ext2fs_dirhash2(EXT2_HASH_HALF_MD4_UNSIGNED, (char *)blk + off + 8,
						len, NULL, 0, geo.hash_seed, &h, &minor);
				ck_assert_uint_ge(h & ~1u, min_hash & ~1u);
				ck_assert_uint_lt(h & ~1u, max_hash);
			}
		}
		off += rec;
	}
	ck_assert_uint_eq(off, 4096 - 12);
	ck_assert_uint_eq(le16_at(blk + off + 4), 12);
	ck_assert_uint_eq(le16_at(blk + off + 6), 0xDE00);
	return n;
}

START_TEST(test_linear)
{
	char **names;
	struct ext4_dirent *e = make_entries(10, &names);
	struct ext4_dir_blocks b;

	ck_assert_int_eq(ext4_dir_build(e, 10, 50, 2, &geo, &b), 0);
	ck_assert_uint_eq(b.nblocks, 1);
	ck_assert(!b.indexed);
	ck_assert_uint_eq(le32_at(b.data), 50);	    /* "." */
	ck_assert_uint_eq(le32_at(b.data + 12), 2); /* ".." */
	ck_assert_uint_eq(count_leaf(b.data, 0, 0, false), 10);
	/* Entries keep the order given (bytewise sorted by the caller). */
	ck_assert(!memcmp(b.data + 24 + 8, "entry-0", 7));
	free(b.data);
	free_entries(e, names, 10);
}
END_TEST

/* Checks every index entry and leaf of an htree; returns the entries found. */
static size_t check_index(const struct ext4_dir_blocks *b, const uint8_t *counts, unsigned levels,
			  uint32_t lo, uint32_t hi)
{
	unsigned count = le16_at(counts + 2);
	size_t total = 0;

	for (unsigned i = 0; i < count; i++) {
		uint32_t blk = le32_at(counts + 8 * i + 4);
		uint32_t h0 = i ? le32_at(counts + 8 * i) : lo;
		uint32_t h1 = i + 1 < count ? le32_at(counts + 8 * (i + 1)) : hi;

		ck_assert_uint_lt(blk, b->nblocks);
		if (i > 1) /* entry 0's hash slot holds limit and count */
			ck_assert_uint_ge(h0, le32_at(counts + 8 * (i - 1)));
		if (levels)
			total +=
			    check_index(b, b->data + (size_t)blk * 4096 + 8, levels - 1, h0, h1);
		else
			total += count_leaf(b->data + (size_t)blk * 4096, h0, h1, true);
	}
	return total;
}

static void htree_case(size_t n, unsigned want_levels)
{
	char **names;
	struct ext4_dirent *e = make_entries(n, &names);
	struct ext4_dir_blocks b;
	const uint8_t *root;

	ck_assert_int_eq(ext4_dir_build(e, n, 50, 2, &geo, &b), 0);
	ck_assert(b.indexed);
	root = b.data;
	ck_assert_uint_eq(le16_at(root + 4), 12);
	ck_assert_uint_eq(le16_at(root + 16), 4096 - 12);
	ck_assert_uint_eq(root[24 + 4], EXT2_HASH_HALF_MD4);
	ck_assert_uint_eq(root[24 + 5], 8);
	ck_assert_uint_eq(root[24 + 6], want_levels);
	ck_assert_uint_eq(le16_at(root + 32), (4096 - 32) / 8 - 1); /* limit, room for the tail */
	ck_assert_uint_eq(check_index(&b, root + 32, want_levels, 0, UINT32_MAX), n);
	free(b.data);
	free_entries(e, names, n);
}

START_TEST(test_htree_one_level)
{
	htree_case(20000, 0);
}
END_TEST

START_TEST(test_htree_two_levels)
{
	htree_case(150000, 1);
}
END_TEST

START_TEST(test_parse_size)
{
	uint64_t v;

	ck_assert_int_eq(pack_parse_size("2G", &v), 0);
	ck_assert_uint_eq(v, 2ULL << 30);
	ck_assert_int_eq(pack_parse_size("512MiB", &v), 0);
	ck_assert_uint_eq(v, 512ULL << 20);
	ck_assert_int_eq(pack_parse_size("1.5k", &v), 0);
	ck_assert_uint_eq(v, 1536);
	ck_assert_int_eq(pack_parse_size("4096", &v), 0);
	ck_assert_uint_eq(v, 4096);
	ck_assert_int_eq(pack_parse_size("12Q", &v), -EINVAL);
	ck_assert_int_eq(pack_parse_size("", &v), -EINVAL);
	ck_assert_int_eq(pack_parse_size("-1", &v), -EINVAL);
	ck_assert_int_eq(pack_parse_size("1GX", &v), -EINVAL);
}
END_TEST

START_TEST(test_parse_percent_and_owner_map)
{
	struct tree_owner_map *m;
	unsigned p;
	size_t n;

	ck_assert_int_eq(pack_parse_percent("20%", &p), 0);
	ck_assert_uint_eq(p, 20);
	ck_assert_int_eq(pack_parse_percent("x", &p), -EINVAL);
	ck_assert_int_eq(pack_parse_owner_map("u:1000:0,g:100:5", &m, &n), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(!m[0].is_gid && m[0].from == 1000 && m[0].to == 0);
	ck_assert(m[1].is_gid && m[1].from == 100 && m[1].to == 5);
	free(m);
	ck_assert_int_eq(pack_parse_owner_map("x:1:2", &m, &n), -EINVAL);
	ck_assert_int_eq(pack_parse_owner_map("u:1", &m, &n), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("loopimg_dir");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_linear);
	tcase_add_test(tc, test_htree_one_level);
	tcase_add_test(tc, test_htree_two_levels);
	tcase_add_test(tc, test_parse_size);
	tcase_add_test(tc, test_parse_percent_and_owner_map);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
