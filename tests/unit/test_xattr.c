/* Unit tests of lib/xattr: ordinary, O_PATH and symlink fds, allocation, copying. */
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/xattr.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static char tmp[64];

static void setup(void)
{
	int fd;

	snprintf(tmp, sizeof(tmp), "/tmp/test_xattr.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	ck_assert_int_eq(chdir(tmp), 0);
	fd = open("file", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(symlink("file", "link"), 0);
	ck_assert_int_eq(mkdir("dir", 0755), 0);
}

static void teardown(void)
{
	int parent = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);

	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(path_remove_tree(parent, tmp + strlen("/tmp/")), 0);
	close(parent);
}

static int open_checked(const char *name, int flags)
{
	int fd = open(name, flags | O_CLOEXEC);

	ck_assert_int_ge(fd, 0);
	return fd;
}

/* True when list (as from listxattr) holds name. */
static bool list_has(const char *list, ssize_t len, const char *name)
{
	for (const char *p = list; p < list + len; p += strlen(p) + 1)
		if (strcmp(p, name) == 0)
			return true;
	return false;
}

static void check_roundtrip(int fd, const char *path)
{
	char value[32] = "", list[256];
	ssize_t len;

	ck_assert_int_eq(xattr_set_fd(fd, "user.a", "hello", 5, 0), 0);
	ck_assert_int_eq(xattr_set_fd(fd, "user.a", "x", 1, XATTR_CREATE), -EEXIST);
	ck_assert_int_eq(xattr_set_fd(fd, "user.b", "", 0, XATTR_CREATE), 0);
	/* Seen by plain path calls: the fd addressed the file itself. */
	ck_assert_int_eq(getxattr(path, "user.a", value, sizeof(value)), 5);
	ck_assert_str_eq(value, "hello");
	memset(value, 0, sizeof(value));
	ck_assert_int_eq(xattr_get_fd(fd, "user.a", value, sizeof(value)), 5);
	ck_assert_str_eq(value, "hello");
	ck_assert_int_eq(xattr_get_fd(fd, "user.a", NULL, 0), 5);
	ck_assert_int_eq(xattr_get_fd(fd, "user.a", value, 2), -ERANGE);
	ck_assert_int_eq(xattr_get_fd(fd, "user.missing", value, sizeof(value)), -ENODATA);
	len = xattr_list_fd(fd, list, sizeof(list));
	ck_assert_int_gt(len, 0);
	ck_assert(list_has(list, len, "user.a"));
	ck_assert(list_has(list, len, "user.b"));
	ck_assert_int_eq(xattr_remove_fd(fd, "user.a"), 0);
	ck_assert_int_eq(xattr_remove_fd(fd, "user.a"), -ENODATA);
	ck_assert_int_eq(getxattr(path, "user.a", NULL, 0), -1);
}

START_TEST(test_ordinary_fd)
{
	int fd = open_checked("file", O_RDONLY);

	check_roundtrip(fd, "file");
	close(fd);
}
END_TEST

START_TEST(test_opath_fd)
{
	int fd = open_checked("file", O_PATH);

	check_roundtrip(fd, "file");
	close(fd);
	fd = open_checked("dir", O_PATH | O_DIRECTORY);
	check_roundtrip(fd, "dir");
	close(fd);
}
END_TEST

START_TEST(test_bad_fd)
{
	char buf[8];

	ck_assert_int_eq(xattr_get_fd(-1, "user.a", buf, sizeof(buf)), -EBADF);
	ck_assert_int_eq(xattr_set_fd(9999, "user.a", "1", 1, 0), -EBADF);
	ck_assert_int_eq(xattr_list_fd(9999, buf, sizeof(buf)), -EBADF);
}
END_TEST

START_TEST(test_alloc)
{
	int fd = open_checked("file", O_PATH);
	char big[3000], *untouched = (char *)"sentinel";
	_cleanup_free_ char *value = NULL, *empty = NULL, *list = NULL;
	ssize_t len;

	memset(big, 'v', sizeof(big));
	ck_assert_int_eq(xattr_set_fd(fd, "user.big", big, sizeof(big), 0), 0);
	ck_assert_int_eq(xattr_set_fd(fd, "user.empty", "", 0, 0), 0);
	ck_assert_int_eq(xattr_get_alloc(fd, "user.big", &value), (ssize_t)sizeof(big));
	ck_assert(memcmp(value, big, sizeof(big)) == 0);
	ck_assert_int_eq(value[sizeof(big)], '\0');
	ck_assert_int_eq(xattr_get_alloc(fd, "user.empty", &empty), 0);
	ck_assert_str_eq(empty, "");
	len = xattr_list_alloc(fd, &list);
	ck_assert_int_gt(len, 0);
	ck_assert(list_has(list, len, "user.big"));
	ck_assert(list_has(list, len, "user.empty"));
	ck_assert_int_eq(xattr_get_alloc(fd, "user.none", &untouched), -ENODATA);
	ck_assert_str_eq(untouched, "sentinel");
	close(fd);
}
END_TEST

/*
 * A symlink's O_PATH fd addresses the link, not its target. The kernel allows
 * no user.* xattrs on a symlink; trusted.* (root only) works.
 */
START_TEST(test_symlink_fd)
{
	int fd = open_checked("link", O_PATH | O_NOFOLLOW);
	char value[8] = "", list[256];
	ssize_t len;

	ck_assert_int_eq(xattr_set_fd(fd, "user.a", "1", 1, 0), -EPERM);
	ck_assert_int_eq(getxattr("file", "user.a", NULL, 0), -1);
	ck_assert_int_eq(xattr_get_fd(fd, "user.a", value, sizeof(value)), -ENODATA);
	if (geteuid() != 0) {
		close(fd);
		return;
	}
	ck_assert_int_eq(xattr_set_fd(fd, "trusted.t", "link", 4, 0), 0);
	ck_assert_int_eq(lgetxattr("link", "trusted.t", value, sizeof(value)), 4);
	ck_assert_str_eq(value, "link");
	ck_assert_int_eq(getxattr("file", "trusted.t", NULL, 0), -1);
	ck_assert_int_eq(errno, ENODATA);
	/* A same-named xattr on the target must not be what the link fd sees. */
	ck_assert_int_eq(setxattr("file", "trusted.t", "target", 6, 0), 0);
	memset(value, 0, sizeof(value));
	ck_assert_int_eq(xattr_get_fd(fd, "trusted.t", value, sizeof(value)), 4);
	ck_assert_str_eq(value, "link");
	len = xattr_list_fd(fd, list, sizeof(list));
	ck_assert(list_has(list, len, "trusted.t"));
	ck_assert_int_eq(xattr_remove_fd(fd, "trusted.t"), 0);
	ck_assert_int_eq(lgetxattr("link", "trusted.t", NULL, 0), -1);
	ck_assert_int_eq(getxattr("file", "trusted.t", NULL, 0), 6);
	close(fd);
}
END_TEST

static bool skip_user_skip(const char *name)
{
	return strcmp(name, "user.skip") == 0;
}

START_TEST(test_copy_all)
{
	int src = open_checked("file", O_RDONLY);
	int dst_fd = open("copy", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	int dst = open_checked("copy", O_PATH);
	char value[16] = "";

	close(dst_fd);
	ck_assert_int_eq(fsetxattr(src, "user.one", "1", 1, 0), 0);
	ck_assert_int_eq(fsetxattr(src, "user.skip", "s", 1, 0), 0);
	ck_assert_int_eq(fsetxattr(src, "user.empty", "", 0, 0), 0);
	if (geteuid() == 0)
		ck_assert_int_eq(fsetxattr(src, "trusted.overlay.opaque", "y", 1, 0), 0);
	ck_assert_int_eq(xattr_copy_all(src, dst, skip_user_skip), 0);
	ck_assert_int_eq(getxattr("copy", "user.one", value, sizeof(value)), 1);
	ck_assert_str_eq(value, "1");
	ck_assert_int_eq(getxattr("copy", "user.empty", NULL, 0), 0);
	ck_assert_int_eq(getxattr("copy", "user.skip", NULL, 0), -1);
	if (geteuid() == 0)
		ck_assert_int_eq(getxattr("copy", "trusted.overlay.opaque", NULL, 0), 1);
	/* Copying again over existing names replaces them. */
	ck_assert_int_eq(fsetxattr(src, "user.one", "22", 2, 0), 0);
	ck_assert_int_eq(xattr_copy_all(src, dst, NULL), 0);
	ck_assert_int_eq(getxattr("copy", "user.one", NULL, 0), 2);
	close(src);
	close(dst);
}
END_TEST

static int count_user(int fd, const char *name, void *arg)
{
	int *n = arg;

	if (strcmp(name, "user.stop") == 0)
		return -ECANCELED;
	*n += strncmp(name, "user.", 5) == 0;
	return 0;
}

START_TEST(test_for_each)
{
	int fd = open_checked("file", O_PATH), n = 0;

	ck_assert_int_eq(xattr_for_each(fd, count_user, &n), 0);
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(xattr_set_fd(fd, "user.a", "1", 1, 0), 0);
	ck_assert_int_eq(xattr_set_fd(fd, "user.b", "2", 1, 0), 0);
	ck_assert_int_eq(xattr_for_each(fd, count_user, &n), 0);
	ck_assert_int_eq(n, 2);
	/* The first error ends the walk and is returned. */
	ck_assert_int_eq(xattr_set_fd(fd, "user.stop", "", 0, 0), 0);
	ck_assert_int_eq(xattr_for_each(fd, count_user, &n), -ECANCELED);
	ck_assert_int_eq(xattr_for_each(-1, count_user, &n), -EBADF);
	close(fd);
}
END_TEST

/* Symlink to symlink, both O_PATH: what copy-up of a link does (trusted.* needs root). */
START_TEST(test_copy_all_symlinks)
{
	int src = open_checked("link", O_PATH | O_NOFOLLOW), dst;

	ck_assert_int_eq(symlink("file", "link2"), 0);
	dst = open_checked("link2", O_PATH | O_NOFOLLOW);
	ck_assert_int_eq(xattr_copy_all(src, dst, NULL), 0);
	if (geteuid() == 0) {
		ck_assert_int_eq(lsetxattr("link", "trusted.l", "1", 1, 0), 0);
		ck_assert_int_eq(xattr_copy_all(src, dst, NULL), 0);
		ck_assert_int_eq(lgetxattr("link2", "trusted.l", NULL, 0), 1);
		ck_assert_int_eq(getxattr("file", "trusted.l", NULL, 0), -1);
	}
	close(src);
	close(dst);
}
END_TEST

/* A special file cannot take user.*: that is an error worth reporting, not skipping. */
START_TEST(test_copy_all_reports_failure)
{
	int src = open_checked("file", O_RDONLY), dst;

	ck_assert_int_eq(mkfifo("fifo", 0644), 0);
	dst = open_checked("fifo", O_PATH);
	ck_assert_int_eq(fsetxattr(src, "user.x", "1", 1, 0), 0);
	ck_assert_int_eq(xattr_copy_all(src, dst, NULL), -EPERM);
	close(src);
	close(dst);
}
END_TEST

static Suite *xattr_suite(void)
{
	Suite *s = suite_create("xattr");
	TCase *tc = tcase_create("xattr");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_ordinary_fd);
	tcase_add_test(tc, test_opath_fd);
	tcase_add_test(tc, test_bad_fd);
	tcase_add_test(tc, test_alloc);
	tcase_add_test(tc, test_symlink_fd);
	tcase_add_test(tc, test_copy_all);
	tcase_add_test(tc, test_for_each);
	tcase_add_test(tc, test_copy_all_symlinks);
	tcase_add_test(tc, test_copy_all_reports_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(xattr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
