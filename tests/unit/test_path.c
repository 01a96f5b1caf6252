/* Unit tests of lib/path: resolution beneath a dir fd, mkdir -p, rm -rf, joins. */
#include "lib/macro.h"
#include "lib/path.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp[64];
static int root_fd = -EBADF; /* O_PATH fd of tmp/root */

/*
 * tmp/root/{file, dir/inner, rel -> file, abs -> /etc, up -> ../outside, dirlink -> dir}
 * and tmp/outside/secret: every escape target is a real file that must survive.
 */
static void setup(void)
{
	int fd;

	umask(022);
	snprintf(tmp, sizeof(tmp), "/tmp/test_path.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	ck_assert_int_eq(chdir(tmp), 0);
	ck_assert_int_eq(mkdir("root", 0755), 0);
	ck_assert_int_eq(mkdir("outside", 0755), 0);
	fd = open("outside/secret", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	fd = open("root/file", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(mkdir("root/dir", 0755), 0);
	ck_assert_int_eq(mkdir("root/dir/inner", 0755), 0);
	ck_assert_int_eq(symlink("file", "root/rel"), 0);
	ck_assert_int_eq(symlink("/etc", "root/abs"), 0);
	ck_assert_int_eq(symlink("../outside", "root/up"), 0);
	ck_assert_int_eq(symlink("dir", "root/dirlink"), 0);
	root_fd = open("root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root_fd, 0);
}

static void teardown(void)
{
	int tmp_parent = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);

	close(root_fd);
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(path_remove_tree(tmp_parent, tmp + strlen("/tmp/")), 0);
	close(tmp_parent);
	ck_assert_int_eq(access(tmp, F_OK), -1);
}

static ino_t ino_of_fd(int fd)
{
	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	return st.st_ino;
}

static ino_t ino_of_path(const char *path)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_ino;
}

static int count_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

START_TEST(test_is_component)
{
	ck_assert(path_is_component("a"));
	ck_assert(path_is_component("..."));
	ck_assert(path_is_component(".hidden"));
	ck_assert(!path_is_component(""));
	ck_assert(!path_is_component("."));
	ck_assert(!path_is_component(".."));
	ck_assert(!path_is_component("a/b"));
	ck_assert(!path_is_component("/"));
	ck_assert(!path_is_component(NULL));
}
END_TEST

START_TEST(test_join)
{
	static const char *const cases[][3] = {
	    {"a", "b", "a/b"}, {"a/", "b", "a/b"}, {"a//", "/b", "a/b"},	{"/", "b", "/b"},
	    {"", "b", "b"},    {"a", "", "a"},	   {"/x/y", "z/w", "/x/y/z/w"},
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *s = path_join(cases[i][0], cases[i][1]);

		ck_assert_str_eq(s, cases[i][2]);
	}
}
END_TEST

START_TEST(test_fd_proc)
{
	char buf[PATH_FD_PROC_SIZE];
	int fd = open("/", O_PATH | O_CLOEXEC);

	ck_assert_str_eq(path_fd_proc(7, buf, sizeof(buf)), "/proc/self/fd/7");
	ck_assert_int_eq(path_fd_is_opath(fd), 1);
	close(fd);
	fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(path_fd_is_opath(fd), 0);
	close(fd);
	ck_assert_int_eq(path_fd_is_opath(fd), -EBADF);
}
END_TEST

START_TEST(test_open_inside)
{
	int fd = path_open_beneath(root_fd, "file", O_RDONLY, 0, false);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ino_of_fd(fd), ino_of_path("root/file"));
	ck_assert_int_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);

	fd = path_open_beneath(root_fd, "dir/../dir/inner", O_PATH | O_DIRECTORY, 0, false);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ino_of_fd(fd), ino_of_path("root/dir/inner"));
	close(fd);
}
END_TEST

START_TEST(test_open_refuses_escapes)
{
	ck_assert_int_eq(path_open_beneath(root_fd, "../outside/secret", O_RDONLY, 0, true),
			 -EXDEV);
	ck_assert_int_eq(path_open_beneath(root_fd, "dir/../../outside/secret", O_RDONLY, 0, true),
			 -EXDEV);
	ck_assert_int_eq(path_open_beneath(root_fd, "/etc/passwd", O_RDONLY, 0, true), -EXDEV);
	/* Symlinks inside that point out: absolute, and relative climbing up. */
	ck_assert_int_eq(path_open_beneath(root_fd, "abs/passwd", O_RDONLY, 0, true), -EXDEV);
	ck_assert_int_eq(path_open_beneath(root_fd, "up/secret", O_RDONLY, 0, true), -EXDEV);
	ck_assert_int_eq(path_open_beneath(root_fd, "up", O_PATH, 0, true), -EXDEV);
}
END_TEST

START_TEST(test_open_symlinks)
{
	int fd = path_open_beneath(root_fd, "rel", O_RDONLY, 0, true);
	struct stat st;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ino_of_fd(fd), ino_of_path("root/file"));
	close(fd);
	fd = path_open_beneath(root_fd, "dirlink/inner", O_PATH, 0, true);
	ck_assert_int_ge(fd, 0);
	close(fd);

	/* Without follow_symlinks no symlink is crossed, even a harmless one... */
	ck_assert_int_eq(path_open_beneath(root_fd, "rel", O_RDONLY, 0, false), -ELOOP);
	ck_assert_int_eq(path_open_beneath(root_fd, "dirlink/inner", O_PATH, 0, false), -ELOOP);
	/* ...but O_PATH | O_NOFOLLOW opens the link itself. */
	fd = path_open_beneath(root_fd, "abs", O_PATH | O_NOFOLLOW, 0, false);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	close(fd);
}
END_TEST

START_TEST(test_open_no_magic_links)
{
	int proc_self = open("/proc/self", O_PATH | O_DIRECTORY | O_CLOEXEC);

	ck_assert_int_ge(proc_self, 0);
	ck_assert_int_eq(path_open_beneath(proc_self, "cwd", O_PATH, 0, true), -ELOOP);
	close(proc_self);
}
END_TEST

START_TEST(test_open_create)
{
	int fd = path_open_beneath(root_fd, "dir/new", O_CREAT | O_EXCL | O_WRONLY, 0600, false);
	struct stat st;

	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(stat("root/dir/new", &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	ck_assert_int_eq(
	    path_open_beneath(root_fd, "dir/new", O_CREAT | O_EXCL | O_WRONLY, 0600, false),
	    -EEXIST);
	/* O_CREAT through a symlink pointing out must not create anything outside. */
	ck_assert_int_eq(path_open_beneath(root_fd, "up/created", O_CREAT | O_WRONLY, 0600, true),
			 -EXDEV);
	ck_assert_int_eq(access("outside/created", F_OK), -1);
}
END_TEST

START_TEST(test_mkdir)
{
	struct stat st;

	ck_assert_int_eq(path_mkdir_beneath(root_fd, "a/b/c", 0), 0);
	ck_assert_int_eq(stat("root/a/b/c", &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0755);
	/* Existing parts are fine, as are repeated and trailing slashes and ".". */
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "a//b/./c/d/", 0700), 0);
	ck_assert_int_eq(stat("root/a/b/c/d", &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0700);
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "a/b/c", 0), 0);
}
END_TEST

START_TEST(test_mkdir_refuses)
{
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "file/x", 0), -ENOTDIR);
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "x/../y", 0), -EINVAL);
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "/abs", 0), -EXDEV);
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "up/evil", 0), -ELOOP);
	ck_assert_int_eq(access("outside/evil", F_OK), -1);
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "dirlink/x", 0), -ELOOP);
}
END_TEST

START_TEST(test_remove_tree)
{
	int fd;

	ck_assert_int_eq(path_mkdir_beneath(root_fd, "dir/a/b/c", 0), 0);
	ck_assert_int_eq(symlink("../../../../outside", "root/dir/a/b/out"), 0);
	ck_assert_int_eq(symlink("/tmp", "root/dir/a/abs"), 0);
	ck_assert_int_eq(mkfifo("root/dir/a/b/c/fifo", 0600), 0);
	fd = open("root/dir/a/b/c/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	close(fd);
	/* A directory we may not read or write: root and the owner can still empty it. */
	ck_assert_int_eq(chmod("root/dir/a/b", 0700), 0);

	ck_assert_int_eq(path_remove_tree(root_fd, "dir"), 0);
	ck_assert_int_eq(access("root/dir", F_OK), -1);
	ck_assert_int_eq(access("outside/secret", F_OK), 0);
	ck_assert_int_eq(access("root/file", F_OK), 0);
	/* Missing is fine (rm -rf); a plain file and a symlink go by unlink, target kept. */
	ck_assert_int_eq(path_remove_tree(root_fd, "dir"), 0);
	ck_assert_int_eq(path_remove_tree(root_fd, "up"), 0);
	ck_assert_int_eq(access("outside/secret", F_OK), 0);
	ck_assert_int_eq(path_remove_tree(root_fd, "file"), 0);
	ck_assert_int_eq(access("root/file", F_OK), -1);
}
END_TEST

/* Emptying keeps the directory, follows no symlink, and gets entries a single pass may skip. */
START_TEST(test_empty_dir)
{
	char name[128];
	struct stat st;
	int fd;

	for (int i = 0; i < 2000; i++) {
		snprintf(name, sizeof(name), "root/dir/a-rather-long-name-to-fill-dirent-buffers-%04d", i);
		fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	ck_assert_int_eq(path_empty_dir(root_fd), 0);
	ck_assert_int_eq(stat("root", &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(rmdir("root"), 0); /* only an empty directory goes by rmdir */
	ck_assert_int_eq(access("outside/secret", F_OK), 0);
}
END_TEST

START_TEST(test_remove_tree_paths)
{
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "x/y/z", 0), 0);
	ck_assert_int_eq(path_remove_tree(root_fd, "x/y/"), 0);
	ck_assert_int_eq(access("root/x/y", F_OK), -1);
	ck_assert_int_eq(access("root/x", F_OK), 0);
	ck_assert_int_eq(path_remove_tree(root_fd, ".."), -EINVAL);
	ck_assert_int_eq(path_remove_tree(root_fd, "x/."), -EINVAL);
	ck_assert_int_eq(path_remove_tree(root_fd, "../outside"), -EXDEV);
	ck_assert_int_eq(path_remove_tree(root_fd, "up/secret"), -ELOOP);
	ck_assert_int_eq(path_remove_tree(root_fd, "/tmp"), -EXDEV);
	ck_assert_int_eq(access("outside/secret", F_OK), 0);
}
END_TEST

/* 500 levels deep with at most 32 fds: recursion holding one fd per level would fail. */
START_TEST(test_remove_deep_tree)
{
	struct rlimit rl = {32, 32};
	int fd = open("root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int before;

	ck_assert_int_eq(mkdirat(fd, "deep", 0755), 0);
	for (int i = 0; i < 500; i++) {
		int next;
		char name[16];

		next = openat(fd, i ? "d" : "deep", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ck_assert_int_ge(next, 0);
		close(fd);
		fd = next;
		ck_assert_int_eq(mkdirat(fd, "d", 0755), 0);
		snprintf(name, sizeof(name), "f%d", i % 3);
		close(openat(fd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	}
	close(fd);
	before = count_open_fds();
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_int_eq(path_remove_tree(root_fd, "deep"), 0);
	ck_assert_int_eq(access("root/deep", F_OK), -1);
	ck_assert_int_eq(count_open_fds(), before);
}
END_TEST

/* Creates n files f0.. in dir_fd. */
static void make_files(int dir_fd, int n)
{
	for (int i = 0; i < n; i++) {
		char name[16];
		int fd;

		snprintf(name, sizeof(name), "f%d", i);
		fd = openat(dir_fd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
		ck_assert_int_ge(fd, 0);
		close(fd);
	}
}

/*
 * 40 levels, each with files before and after several subdirectories: past
 * the levels whose streams stay open, parents are reread from the start.
 */
START_TEST(test_remove_wide_deep_tree)
{
	struct rlimit rl = {32, 32};
	int fd = open("root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	ck_assert_int_eq(mkdirat(fd, "wide", 0755), 0);
	for (int level = 0; level < 40; level++) {
		int next = openat(fd, level ? "s0" : "wide", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		ck_assert_int_ge(next, 0);
		close(fd);
		fd = next;
		make_files(fd, 5);
		for (int i = 0; i < 4; i++) {
			char name[16];
			int sub;

			snprintf(name, sizeof(name), "s%d", i);
			ck_assert_int_eq(mkdirat(fd, name, 0755), 0);
			sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			ck_assert_int_ge(sub, 0);
			if (i)
				make_files(sub, 3);
			close(sub);
		}
	}
	close(fd);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
	ck_assert_int_eq(path_remove_tree(root_fd, "wide"), 0);
	ck_assert_int_eq(access("root/wide", F_OK), -1);
}
END_TEST

/* Never empties a file system mounted inside the tree (root only: needs mount). */
START_TEST(test_remove_tree_stops_at_mounts)
{
	int fd, r_top, r_mnt, kept;

	if (geteuid() != 0)
		return;
	ck_assert_int_eq(path_mkdir_beneath(root_fd, "m/mnt", 0), 0);
	/*
	 * Our own mount namespace where we can have one, so nothing is seen outside. An fd
	 * opened before unshare() walks the old namespace's mounts, so root_fd is reopened.
	 */
	(void)unshare(CLONE_NEWNS);
	if (mount("tmpfs", "root/m/mnt", "tmpfs", 0, NULL) < 0)
		return; /* a container without CAP_SYS_ADMIN */
	close(root_fd);
	root_fd = open("root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root_fd, 0);
	fd = open("root/m/mnt/keep", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	close(fd);
	r_top = path_remove_tree(root_fd, "m");
	r_mnt = path_remove_tree(root_fd, "m/mnt");
	kept = access("root/m/mnt/keep", F_OK);
	/* Unmount before asserting so a failure cannot leave the mount behind. */
	ck_assert_int_eq(umount2("root/m/mnt", MNT_DETACH), 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(r_top, -EBUSY);
	ck_assert_int_eq(r_mnt, -EBUSY);
	ck_assert_int_eq(kept, 0);
	ck_assert_int_eq(path_remove_tree(root_fd, "m"), 0);
}
END_TEST

static Suite *path_suite(void)
{
	Suite *s = suite_create("path");
	TCase *pure = tcase_create("pure");
	TCase *fs = tcase_create("fs");

	tcase_add_test(pure, test_is_component);
	tcase_add_test(pure, test_join);
	tcase_add_test(pure, test_fd_proc);
	suite_add_tcase(s, pure);

	/* Real file system work: generous for a loaded machine or ASan. */
	tcase_set_timeout(fs, 120);
	tcase_add_checked_fixture(fs, setup, teardown);
	tcase_add_test(fs, test_open_inside);
	tcase_add_test(fs, test_open_refuses_escapes);
	tcase_add_test(fs, test_open_symlinks);
	tcase_add_test(fs, test_open_no_magic_links);
	tcase_add_test(fs, test_open_create);
	tcase_add_test(fs, test_mkdir);
	tcase_add_test(fs, test_mkdir_refuses);
	tcase_add_test(fs, test_remove_tree);
	tcase_add_test(fs, test_remove_tree_paths);
	tcase_add_test(fs, test_empty_dir);
	tcase_add_test(fs, test_remove_deep_tree);
	tcase_add_test(fs, test_remove_wide_deep_tree);
	tcase_add_test(fs, test_remove_tree_stops_at_mounts);
	suite_add_tcase(s, fs);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(path_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
