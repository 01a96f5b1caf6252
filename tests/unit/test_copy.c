/* Unit tests of lib/copy: sparse data copies and metadata on any kind of fd. */
#include "lib/copy.h"
#include "lib/macro.h"
#include "lib/path.h"
#include "lib/xattr.h"

#include <check.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MiB (1024 * 1024)

static char tmp[64];
static int tmp_fd = -EBADF;

static void setup(void)
{
	umask(022);
	snprintf(tmp, sizeof(tmp), "/tmp/test_copy.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	ck_assert_int_eq(chdir(tmp), 0);
	tmp_fd = open(tmp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(tmp_fd, 0);
}

static void teardown(void)
{
	int parent = open("/tmp", O_PATH | O_DIRECTORY | O_CLOEXEC);

	close(tmp_fd);
	ck_assert_int_eq(chdir("/"), 0);
	ck_assert_int_eq(path_remove_tree(parent, tmp + strlen("/tmp/")), 0);
	close(parent);
}

static void fill_pattern(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((i * 131 + seed + (i >> 12)) & 0xff);
}

/* Writes len pattern bytes at off. */
static void write_at(int fd, off_t off, size_t len, unsigned seed)
{
	char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	fill_pattern(buf, len, seed);
	ck_assert_int_eq(pwrite(fd, buf, len, off), (ssize_t)len);
	free(buf);
}

static int create(const char *name)
{
	int fd = open(name, O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0644);

	ck_assert_int_ge(fd, 0);
	return fd;
}

static void assert_same_content(int a, int b)
{
	struct stat sa, sb;
	char *ba, *bb;

	ck_assert_int_eq(fstat(a, &sa), 0);
	ck_assert_int_eq(fstat(b, &sb), 0);
	ck_assert_int_eq(sa.st_size, sb.st_size);
	ba = malloc(MiB);
	bb = malloc(MiB);
	for (off_t off = 0; off < sa.st_size; off += MiB) {
		ssize_t na = pread(a, ba, MiB, off), nb = pread(b, bb, MiB, off);

		ck_assert_int_gt(na, 0);
		ck_assert_int_eq(na, nb);
		ck_assert(memcmp(ba, bb, (size_t)na) == 0);
	}
	free(ba);
	free(bb);
}

/* 20 MiB apparent, 192 KiB of data in three extents, a hole at the start and at the end. */
static int make_sparse(const char *name)
{
	int fd = create(name);

	write_at(fd, 1 * MiB, 64 * 1024, 1);
	write_at(fd, 8 * MiB + 4096, 64 * 1024, 2);
	write_at(fd, 12 * MiB, 64 * 1024, 3);
	ck_assert_int_eq(ftruncate(fd, 20 * MiB), 0);
	ck_assert_int_eq(fsync(fd), 0);
	return fd;
}

static void check_sparse_copy(int (*copy)(int, int))
{
	int src = make_sparse("sparse"), dst = create("copy");
	struct stat ss, ds;

	ck_assert_int_eq(copy(src, dst), 0);
	ck_assert_int_eq(fsync(dst), 0);
	assert_same_content(src, dst);
	ck_assert_int_eq(fstat(src, &ss), 0);
	ck_assert_int_eq(fstat(dst, &ds), 0);
	ck_assert_int_eq(ds.st_size, 20 * MiB);
	/* Holes kept: about the 192 KiB of data allocated (+ slack for metadata), not 20 MiB. */
	ck_assert_int_le(ds.st_blocks, ss.st_blocks + 64);
	ck_assert_int_lt(ds.st_blocks * 512, 1 * MiB);
	/* The leading hole is still a hole. */
	ck_assert_int_eq(lseek(dst, 0, SEEK_DATA), 1 * MiB);
	close(src);
	close(dst);
}

START_TEST(test_sparse)
{
	check_sparse_copy(copy_data);
}
END_TEST

START_TEST(test_sparse_no_reflink)
{
	check_sparse_copy(copy_data_no_reflink);
}
END_TEST

/* Dense data bigger than the 1 MiB bounce buffer, odd size, file offsets left alone. */
static void check_dense_copy(int (*copy)(int, int))
{
	int src = create("dense"), dst = create("copy");

	write_at(src, 0, 3 * MiB + 4097, 7);
	ck_assert_int_eq(lseek(src, 123, SEEK_SET), 123);
	ck_assert_int_eq(copy(src, dst), 0);
	assert_same_content(src, dst);
	ck_assert_int_eq(lseek(src, 0, SEEK_CUR), 123);
	close(src);
	close(dst);
}

START_TEST(test_dense)
{
	check_dense_copy(copy_data);
	check_dense_copy(copy_data_no_reflink);
}
END_TEST

START_TEST(test_empty_and_all_hole)
{
	int src = create("empty"), dst = create("copy");
	struct stat st;

	ck_assert_int_eq(copy_data(src, dst), 0);
	ck_assert_int_eq(fstat(dst, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(ftruncate(src, 5 * MiB), 0);
	ck_assert_int_eq(copy_data(src, dst), 0);
	ck_assert_int_eq(fstat(dst, &st), 0);
	ck_assert_int_eq(st.st_size, 5 * MiB);
	ck_assert_int_eq(st.st_blocks, 0);
	close(src);
	close(dst);
}
END_TEST

/* tmpfs to this file system: copy_file_range says EXDEV, the read/write path takes over. */
START_TEST(test_cross_fs)
{
	char shm[] = "/dev/shm/test_copy.XXXXXX";
	int src = mkostemp(shm, O_CLOEXEC), dst = create("copy");

	if (src < 0)
		return; /* no /dev/shm here */
	unlink(shm);
	write_at(src, 0, 2 * MiB + 1, 9);
	write_at(src, 6 * MiB, 4096, 10);
	ck_assert_int_eq(copy_data(src, dst), 0);
	assert_same_content(src, dst);
	close(src);
	close(dst);
}
END_TEST

START_TEST(test_not_regular)
{
	int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), dst = create("copy");

	ck_assert_int_eq(copy_data(dir, dst), -EINVAL);
	close(dir);
	close(dst);
}
END_TEST

static void set_times(const char *name, time_t sec, long nsec)
{
	struct timespec ts[2] = {{sec - 100, nsec / 2}, {sec, nsec}};

	ck_assert_int_eq(utimensat(AT_FDCWD, name, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void assert_times(const struct stat *st, time_t sec, long nsec)
{
	ck_assert_int_eq(st->st_mtim.tv_sec, sec);
	ck_assert_int_eq(st->st_mtim.tv_nsec, nsec);
	ck_assert_int_eq(st->st_atim.tv_sec, sec - 100);
	ck_assert_int_eq(st->st_atim.tv_nsec, nsec / 2);
}

/*
 * Root gives the source someone else's owner, so chown clears setuid/setgid
 * and capabilities on the way; unprivileged it keeps our own.
 */
static void owner_for_test(uid_t *uid, gid_t *gid)
{
	*uid = geteuid() == 0 ? 1234 : geteuid();
	*gid = geteuid() == 0 ? 5678 : getegid();
}

START_TEST(test_metadata_regular)
{
	int src = create("src"), dst_rw = create("dst"), dst;
	char value[16] = "";
	uid_t uid;
	gid_t gid;
	struct stat st;

	owner_for_test(&uid, &gid);
	close(dst_rw);
	ck_assert_int_eq(fchown(src, uid, gid), 0);
	ck_assert_int_eq(fchmod(src, 06751), 0);
	ck_assert_int_eq(fsetxattr(src, "user.test", "value", 5, 0), 0);
	set_times("src", 1500000000, 123456789);
	ck_assert_int_eq(fstat(src, &st), 0);

	/* The destination only as O_PATH, as copy-up holds it. */
	dst = open("dst", O_PATH | O_CLOEXEC);
	ck_assert_int_ge(dst, 0);
	ck_assert_int_eq(copy_metadata(src, dst, &st, COPY_META_ALL), 0);
	ck_assert_int_eq(stat("dst", &st), 0);
	ck_assert_int_eq(st.st_uid, uid);
	ck_assert_int_eq(st.st_gid, gid);
	ck_assert_int_eq(st.st_mode & 07777, 06751);
	assert_times(&st, 1500000000, 123456789);
	ck_assert_int_eq(getxattr("dst", "user.test", value, sizeof(value)), 5);
	ck_assert_str_eq(value, "value");
	close(src);
	close(dst);
}
END_TEST

START_TEST(test_metadata_flags_and_null_stat)
{
	int src = create("src"), dst = create("dst");
	struct stat st;

	ck_assert_int_eq(fchmod(src, 0600), 0);
	ck_assert_int_eq(fsetxattr(src, "user.only", "1", 1, 0), 0);
	set_times("src", 1400000000, 5);
	ck_assert_int_eq(copy_metadata(src, dst, NULL, COPY_META_MODE | COPY_META_TIMES), 0);
	ck_assert_int_eq(fstat(dst, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	assert_times(&st, 1400000000, 5);
	/* Not asked for: no xattrs. */
	ck_assert_int_eq(fgetxattr(dst, "user.only", NULL, 0), -1);
	ck_assert_int_eq(errno, ENODATA);
	close(src);
	close(dst);
}
END_TEST

START_TEST(test_metadata_symlink)
{
	uid_t uid;
	gid_t gid;
	int src, dst;
	struct stat st, target_before, target_after;

	owner_for_test(&uid, &gid);
	close(create("target"));
	ck_assert_int_eq(symlink("target", "src"), 0);
	ck_assert_int_eq(symlink("target", "dst"), 0);
	ck_assert_int_eq(lchown("src", uid, gid), 0);
	set_times("src", 1300000000, 999999999);
	if (geteuid() == 0)
		ck_assert_int_eq(lsetxattr("src", "trusted.test", "t", 1, 0), 0);
	ck_assert_int_eq(stat("target", &target_before), 0);
	src = open("src", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	dst = open("dst", O_PATH | O_NOFOLLOW | O_CLOEXEC);
	ck_assert_int_ge(src, 0);
	ck_assert_int_ge(dst, 0);
	ck_assert_int_eq(fstatat(src, "", &st, AT_EMPTY_PATH), 0);

	ck_assert_int_eq(copy_metadata(src, dst, &st, COPY_META_ALL), 0);
	ck_assert_int_eq(lstat("dst", &st), 0);
	ck_assert_int_eq(st.st_uid, uid);
	ck_assert_int_eq(st.st_gid, gid);
	assert_times(&st, 1300000000, 999999999);
	if (geteuid() == 0)
		ck_assert_int_eq(lgetxattr("dst", "trusted.test", NULL, 0), 1);
	/* The link's target is untouched. */
	ck_assert_int_eq(stat("target", &target_after), 0);
	ck_assert_int_eq(target_after.st_mtim.tv_sec, target_before.st_mtim.tv_sec);
	ck_assert_int_eq(target_after.st_mtim.tv_nsec, target_before.st_mtim.tv_nsec);
	ck_assert_int_eq(target_after.st_uid, target_before.st_uid);
	ck_assert_int_eq(getxattr("target", "trusted.test", NULL, 0), -1);
	close(src);
	close(dst);
}
END_TEST

START_TEST(test_metadata_directory)
{
	int src, dst;
	struct stat st;

	ck_assert_int_eq(mkdir("srcdir", 0755), 0);
	ck_assert_int_eq(mkdir("dstdir", 0755), 0);
	ck_assert_int_eq(chmod("srcdir", 01775), 0);
	ck_assert_int_eq(setxattr("srcdir", "user.dir", "d", 1, 0), 0);
	set_times("srcdir", 1200000000, 42);
	src = open("srcdir", O_PATH | O_DIRECTORY | O_CLOEXEC);
	dst = open("dstdir", O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_eq(copy_metadata(src, dst, NULL, COPY_META_ALL), 0);
	ck_assert_int_eq(stat("dstdir", &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 01775);
	assert_times(&st, 1200000000, 42);
	ck_assert_int_eq(getxattr("dstdir", "user.dir", NULL, 0), 1);
	close(src);
	close(dst);
}
END_TEST

/* A file capability survives the copy even though chown (done first) would drop it. */
START_TEST(test_metadata_capability)
{
	struct vfs_cap_data cap = {
	    .magic_etc = VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE,
	    .data = {{.permitted = 1u << CAP_NET_BIND_SERVICE}},
	};
	struct vfs_cap_data got;
	int src, dst;

	if (geteuid() != 0)
		return;
	src = create("src");
	dst = create("dst");
	ck_assert_int_eq(fchown(src, 1234, 1234), 0);
	ck_assert_int_eq(fchmod(src, 0755), 0);
	ck_assert_int_eq(fsetxattr(src, "security.capability", &cap, XATTR_CAPS_SZ_2, 0), 0);
	ck_assert_int_eq(copy_metadata(src, dst, NULL, COPY_META_ALL), 0);
	ck_assert_int_eq(fgetxattr(dst, "security.capability", &got, sizeof(got)), XATTR_CAPS_SZ_2);
	ck_assert_int_eq(got.data[0].permitted, 1u << CAP_NET_BIND_SERVICE);
	close(src);
	close(dst);
}
END_TEST

static bool skip_private(const char *name)
{
	return strncmp(name, "user.private.", 13) == 0;
}

START_TEST(test_metadata_skip)
{
	int src = create("src"), dst = create("dst");
	struct stat st;

	ck_assert_int_eq(fchmod(src, 04755), 0);
	ck_assert_int_eq(fsetxattr(src, "user.private.origin", "x", 1, 0), 0);
	ck_assert_int_eq(fsetxattr(src, "user.public", "y", 1, 0), 0);
	ck_assert_int_eq(copy_metadata_skip(src, dst, NULL, COPY_META_ALL, skip_private), 0);
	ck_assert_int_eq(fgetxattr(dst, "user.public", NULL, 0), 1);
	ck_assert_int_eq(fgetxattr(dst, "user.private.origin", NULL, 0), -1);
	ck_assert_int_eq(errno, ENODATA);
	ck_assert_int_eq(fstat(dst, &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 04755);
	close(src);
	close(dst);
}
END_TEST

static Suite *copy_suite(void)
{
	Suite *s = suite_create("copy");
	TCase *data = tcase_create("data");
	TCase *meta = tcase_create("metadata");

	/* Real file system work: generous for a loaded machine or ASan. */
	tcase_set_timeout(data, 120);
	tcase_set_timeout(meta, 120);
	tcase_add_checked_fixture(data, setup, teardown);
	tcase_add_test(data, test_sparse);
	tcase_add_test(data, test_sparse_no_reflink);
	tcase_add_test(data, test_dense);
	tcase_add_test(data, test_empty_and_all_hole);
	tcase_add_test(data, test_cross_fs);
	tcase_add_test(data, test_not_regular);
	suite_add_tcase(s, data);

	tcase_add_checked_fixture(meta, setup, teardown);
	tcase_add_test(meta, test_metadata_regular);
	tcase_add_test(meta, test_metadata_flags_and_null_stat);
	tcase_add_test(meta, test_metadata_symlink);
	tcase_add_test(meta, test_metadata_directory);
	tcase_add_test(meta, test_metadata_capability);
	tcase_add_test(meta, test_metadata_skip);
	suite_add_tcase(s, meta);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(copy_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
