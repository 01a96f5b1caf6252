/*
 * Unit tests of lib/digest. Expected values come from the xxh128sum CLI
 * (xxhash 0.8.1), e.g. `printf abc | xxh128sum`; the pattern file's from
 * running it on the bytes pattern() generates.
 */
#include "lib/digest.h"
#include "lib/macro.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EMPTY_XXH128 "99aa06d3014798d86001c324468d497f"
#define ABC_XXH128 "06b05ab6733a618578af5f94892f3950"
#define FOX "The quick brown fox jumps over the lazy dog"
#define FOX_XXH128 "ddd650205ca3e7fa24a1cc2e3a8a7651"
/* 3 MiB + 17 bytes: crosses digest_fd's 1 MiB reads and ends with a partial one. */
#define PATTERN_LEN (3 * 1024 * 1024 + 17)
#define PATTERN_XXH128 "e485730e6c2eca27dfe718a37836b58d"

static char *pattern(void)
{
	char *buf = malloc(PATTERN_LEN);

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < PATTERN_LEN; i++)
		buf[i] = (char)((i * 31 + (i >> 8)) & 0xff);
	return buf;
}

/* An unlinked temp file holding the pattern. */
static int pattern_file(void)
{
	char name[] = "/tmp/test_digest.XXXXXX";
	_cleanup_free_ char *buf = pattern();
	int fd = mkostemp(name, O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(unlink(name), 0);
	ck_assert_int_eq(write(fd, buf, PATTERN_LEN), PATTERN_LEN);
	return fd;
}

START_TEST(test_buffer_vectors)
{
	char hex[DIGEST_HEX_LEN + 1];
	_cleanup_free_ char *buf = pattern();

	digest_buffer("", 0, hex);
	ck_assert_str_eq(hex, EMPTY_XXH128);
	digest_buffer("abc", 3, hex);
	ck_assert_str_eq(hex, ABC_XXH128);
	digest_buffer(FOX, strlen(FOX), hex);
	ck_assert_str_eq(hex, FOX_XXH128);
	digest_buffer(buf, PATTERN_LEN, hex);
	ck_assert_str_eq(hex, PATTERN_XXH128);
}
END_TEST

/* Feeding in odd pieces gives the one-shot result. */
START_TEST(test_streaming)
{
	char hex[DIGEST_HEX_LEN + 1];
	_cleanup_free_ char *buf = pattern();
	struct digest_ctx *ctx = digest_new();
	size_t off = 0, piece = 1;

	ck_assert_ptr_nonnull(ctx);
	while (off < PATTERN_LEN) {
		size_t n = MIN(piece, (size_t)PATTERN_LEN - off);

		digest_update(ctx, buf + off, n);
		off += n;
		piece = piece * 3 + 7;
	}
	digest_final_hex(ctx, hex);
	ck_assert_str_eq(hex, PATTERN_XXH128);
	digest_free(ctx);

	ctx = digest_new();
	digest_final_hex(ctx, hex);
	ck_assert_str_eq(hex, EMPTY_XXH128);
	digest_free(ctx);
	digest_free(NULL);
}
END_TEST

struct progress_seen {
	unsigned calls;
	uint64_t last_done, last_total;
};

static void record_progress(uint64_t done, uint64_t total, void *opaque)
{
	struct progress_seen *seen = opaque;

	ck_assert_uint_ge(done, seen->last_done);
	seen->calls++;
	seen->last_done = done;
	seen->last_total = total;
}

START_TEST(test_fd)
{
	char hex[DIGEST_HEX_LEN + 1];
	struct progress_seen seen = {};
	int fd = pattern_file();

	/* From offset 0 whatever the fd's offset, which is left where it was. */
	ck_assert_int_eq(lseek(fd, 1000, SEEK_SET), 1000);
	ck_assert_int_eq(digest_fd(fd, hex, record_progress, &seen), 0);
	ck_assert_str_eq(hex, PATTERN_XXH128);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 1000);
	ck_assert_uint_ge(seen.calls, 4);
	ck_assert_uint_eq(seen.last_done, PATTERN_LEN);
	ck_assert_uint_eq(seen.last_total, PATTERN_LEN);
	ck_assert_int_eq(digest_fd(fd, hex, NULL, NULL), 0);
	ck_assert_str_eq(hex, PATTERN_XXH128);
	close(fd);
}
END_TEST

START_TEST(test_pipe)
{
	char hex[DIGEST_HEX_LEN + 1];
	struct progress_seen seen = {};
	int p[2];

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(write(p[1], FOX, strlen(FOX)), (ssize_t)strlen(FOX));
	close(p[1]);
	ck_assert_int_eq(digest_fd(p[0], hex, record_progress, &seen), 0);
	ck_assert_str_eq(hex, FOX_XXH128);
	ck_assert_uint_eq(seen.last_done, strlen(FOX));
	ck_assert_uint_eq(seen.last_total, 0);
	close(p[0]);
}
END_TEST

START_TEST(test_file)
{
	char hex[DIGEST_HEX_LEN + 1];
	char name[] = "/tmp/test_digest.XXXXXX";
	int fd = mkostemp(name, O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "abc", 3), 3);
	close(fd);
	ck_assert_int_eq(digest_file(name, hex, NULL, NULL), 0);
	ck_assert_str_eq(hex, ABC_XXH128);
	ck_assert_int_eq(unlink(name), 0);
	ck_assert_int_eq(digest_file(name, hex, NULL, NULL), -ENOENT);
	ck_assert_int_eq(digest_file("/", hex, NULL, NULL), -EISDIR);
}
END_TEST

START_TEST(test_parse)
{
	char hex[DIGEST_HEX_LEN + 1];

	ck_assert(digest_parse(ABC_XXH128, hex));
	ck_assert_str_eq(hex, ABC_XXH128);
	ck_assert(digest_parse("06B05AB6733A618578AF5F94892F3950", hex));
	ck_assert_str_eq(hex, ABC_XXH128);
	ck_assert(digest_parse("xxh3-128:06b05ab6733a618578af5f94892f3950", hex));
	ck_assert_str_eq(hex, ABC_XXH128);
	ck_assert(digest_parse("xxh128:06b05ab6733a618578af5f94892F3950", hex));
	ck_assert_str_eq(hex, ABC_XXH128);
	ck_assert(digest_parse(ABC_XXH128, NULL));
	ck_assert(!digest_parse("", hex));
	ck_assert(!digest_parse("06b05ab6733a618578af5f94892f395", hex));
	ck_assert(!digest_parse("06b05ab6733a618578af5f94892f39500", hex));
	ck_assert(!digest_parse("06b05ab6733a618578af5f94892f395g", hex));
	ck_assert(!digest_parse("sha256:06b05ab6733a618578af5f94892f3950", hex));
	ck_assert(!digest_parse("xxh128:", hex));
}
END_TEST

static Suite *digest_suite(void)
{
	Suite *s = suite_create("digest");
	TCase *tc = tcase_create("digest");

	tcase_add_test(tc, test_buffer_vectors);
	tcase_add_test(tc, test_streaming);
	tcase_add_test(tc, test_fd);
	tcase_add_test(tc, test_pipe);
	tcase_add_test(tc, test_file);
	tcase_add_test(tc, test_parse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(digest_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
