/* Unit tests: whiteout and opaque detection, and the merged listing built from them. */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "unionfs/inode.h"
#include "unionfs/readdir.h"
#include "unionfs/whiteout.h"

static char tmp[] = "/tmp/unit-whiteout.XXXXXX";

static void setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	ck_assert_int_eq(system(cmd), 0);
	strcpy(tmp, "/tmp/unit-whiteout.XXXXXX");
}

static int open_dir(const char *rel)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	mkdir(path, 0755);
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void touch(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	close(fd);
}

START_TEST(aufs_names)
{
	ck_assert(whiteout_is_meta_name(".wh.foo"));
	ck_assert(!whiteout_is_meta_name(".whfoo"));
	ck_assert_str_eq(whiteout_aufs_target(".wh.foo"), "foo");
	ck_assert_ptr_null(whiteout_aufs_target(".wh..wh..opq"));
	ck_assert_ptr_null(whiteout_aufs_target(".wh."));
	ck_assert_ptr_null(whiteout_aufs_target("foo"));
}
END_TEST

START_TEST(overlay_whiteout_is_0_0_chardev)
{
	struct stat st = {.st_mode = S_IFCHR | 0600, .st_rdev = makedev(0, 0)};

	ck_assert(whiteout_is_overlay(&st));
	st.st_rdev = makedev(1, 3);
	ck_assert(!whiteout_is_overlay(&st));
	st = (struct stat){.st_mode = S_IFREG};
	ck_assert(!whiteout_is_overlay(&st));
}
END_TEST

START_TEST(opaque_markers)
{
	int plain = open_dir("plain"), user = open_dir("user"), aufs = open_dir("aufs");
	int no = open_dir("no");

	ck_assert_int_ge(plain, 0);
	ck_assert_int_eq(whiteout_dir_is_opaque(plain), 0);
	ck_assert_int_eq(fsetxattr(user, "user.overlay.opaque", "y", 1, 0), 0);
	ck_assert_int_eq(whiteout_dir_is_opaque(user), 1);
	/* "x" marks a dir holding xattr whiteouts, not an opaque one. */
	ck_assert_int_eq(fsetxattr(no, "user.overlay.opaque", "x", 1, 0), 0);
	ck_assert_int_eq(whiteout_dir_is_opaque(no), 0);
	touch(aufs, WHITEOUT_AUFS_OPAQUE);
	ck_assert_int_eq(whiteout_dir_is_opaque(aufs), 1);
	if (geteuid() == 0) {
		int trusted = open_dir("trusted");
		ck_assert_int_eq(fsetxattr(trusted, "trusted.overlay.opaque", "y", 1, 0), 0);
		ck_assert_int_eq(whiteout_dir_is_opaque(trusted), 1);
		close(trusted);
	}
	close(plain);
	close(user);
	close(aufs);
	close(no);
}
END_TEST

START_TEST(whiteout_presence)
{
	int dir = open_dir("wh");

	ck_assert_int_ge(dir, 0);
	touch(dir, "plain");
	touch(dir, ".wh.gone");
	ck_assert(whiteout_aufs_present(dir, "gone"));
	ck_assert(!whiteout_aufs_present(dir, "plain"));
	ck_assert(!whiteout_aufs_present(dir, "absent"));
	ck_assert_int_eq(whiteout_present(dir, "gone"), 1);
	ck_assert_int_eq(whiteout_present(dir, "plain"), 0);
	ck_assert_int_eq(whiteout_present(dir, "absent"), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(mknodat(dir, "chr", S_IFCHR | 0600, makedev(0, 0)), 0);
		ck_assert_int_eq(whiteout_present(dir, "chr"), 1);
		ck_assert(!whiteout_aufs_present(dir, "chr"));
	}
	close(dir);
}
END_TEST

/* Three layers: top hides "b" (overlay whiteout) and "c" (aufs), merges "d", stops "e". */
START_TEST(merged_listing)
{
	int top = open_dir("top"), mid = open_dir("mid"), low = open_dir("low");
	struct layer_set *layers = layer_set_new(3);
	struct node dir = {.layers = layers};
	struct dir_listing *l;
	const struct dir_entry *e;

	layers->v[0] = (struct node_layer){top, 0};
	layers->v[1] = (struct node_layer){mid, 1};
	layers->v[2] = (struct node_layer){low, 2};
	layers->n = 3;
	touch(top, "a");
	touch(mid, "a");
	touch(low, "b");
	touch(low, "c");
	touch(mid, ".wh.c");
	mkdirat(top, "d", 0755);
	mkdirat(mid, "d", 0755);
	mkdirat(low, "d", 0755);
	mkdirat(top, "e", 0755);
	touch(mid, "e");
	mkdirat(low, "e", 0755);
	if (geteuid() == 0)
		ck_assert_int_eq(mknodat(top, "b", S_IFCHR | 0600, makedev(0, 0)), 0);
	else
		touch(top, ".wh.b");

	ck_assert_int_eq(dir_listing_build(&dir, &l), 0);
	ck_assert_uint_eq(l->nvisible, 3); /* a, d, e */
	e = dir_listing_find(l, "a");
	ck_assert_ptr_nonnull(e);
	ck_assert_uint_eq(e->pos, 0);
	ck_assert(dir_listing_find(l, "b")->whiteout);
	ck_assert(dir_listing_find(l, "c")->whiteout);
	e = dir_listing_find(l, "d");
	ck_assert_uint_eq(e->d_type, DT_DIR);
	ck_assert_uint_eq(e->nlower, 2);
	e = dir_listing_find(l, "e");
	ck_assert_uint_eq(e->nlower, 0);
	ck_assert(e->sealed);
	ck_assert_ptr_null(dir_listing_find(l, ".wh.c"));
	ck_assert_ptr_null(dir_listing_find(l, "zzz"));
	dir_listing_unref(l);
	layer_set_free(layers);
}
END_TEST

START_TEST(big_listing_no_duplicates)
{
	int top = open_dir("bigtop"), low = open_dir("biglow");
	struct layer_set *layers = layer_set_new(2);
	struct node dir = {.layers = layers};
	struct dir_listing *l;
	char name[32];

	layers->v[0] = (struct node_layer){top, 0};
	layers->v[1] = (struct node_layer){low, 1};
	layers->n = 2;
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		touch(i % 2 ? top : low, name);
		if (i % 3 == 0)
			touch(i % 2 ? low : top, name);
	}
	ck_assert_int_eq(dir_listing_build(&dir, &l), 0);
	ck_assert_uint_eq(l->nvisible, 3000);
	for (int i = 0; i < 3000; i++) {
		snprintf(name, sizeof(name), "f%05d", i);
		ck_assert_ptr_nonnull(dir_listing_find(l, name));
	}
	dir_listing_unref(l);
	layer_set_free(layers);
}
END_TEST

static Suite *whiteout_suite(void)
{
	Suite *s = suite_create("unionfs_whiteout");
	TCase *tc = tcase_create("whiteout");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, aufs_names);
	tcase_add_test(tc, overlay_whiteout_is_0_0_chardev);
	tcase_add_test(tc, opaque_markers);
	tcase_add_test(tc, whiteout_presence);
	tcase_add_test(tc, merged_listing);
	tcase_add_test(tc, big_listing_no_duplicates);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(whiteout_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
