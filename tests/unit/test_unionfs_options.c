/* Unit tests: unionfs option parsing in the aufs, unionfs-fuse and overlayfs styles. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "unionfs/options.h"

static int parse(struct unionfs_options *o, const char *const *argv)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	return options_parse(argc, (char **)argv, o);
}

START_TEST(aufs_style_default_modes)
{
	const char *argv[] = {"unionfs", "-o", "br=/tmp/rw:/usr:/opt=ro", "/mnt", NULL};
	struct unionfs_options o;
	struct branch_spec *b;
	int n;

	ck_assert_int_eq(parse(&o, argv), 0);
	n = options_branches(&o, &b);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(b[0].path, "/tmp/rw");
	ck_assert(b[0].writable);
	ck_assert_str_eq(b[1].path, "/usr");
	ck_assert(!b[1].writable);
	ck_assert(!b[2].writable);
	ck_assert_str_eq(options_mountpoint(&o), "/mnt");
	ck_assert_str_eq(options_fsname(&o), "unionfs");
	branch_specs_free(b, n);
	options_free(&o);
}
END_TEST

START_TEST(aufs_style_explicit_modes)
{
	const char *argv[] = {"unionfs", "-o", "br=/tmp/rw=rw:/home/user=ro", "/mnt", NULL};
	struct unionfs_options o;
	struct branch_spec *b;
	int n;

	ck_assert_int_eq(parse(&o, argv), 0);
	n = options_branches(&o, &b);
	ck_assert_int_eq(n, 2);
	ck_assert(b[0].writable);
	ck_assert_str_eq(b[1].path, "/home/user");
	ck_assert(!b[1].writable);
	branch_specs_free(b, n);
	options_free(&o);
}
END_TEST

START_TEST(unionfs_fuse_style_defaults_ro)
{
	const char *argv[] = {
	    "unionfs",	"-o",	"cow,hide_meta_files,max_files=4096,statfs_omit_ro,file_fds=0",
	    "/a=RW:/b", "/mnt", NULL};
	struct unionfs_options o;
	struct branch_spec *b;
	int n;

	ck_assert_int_eq(parse(&o, argv), 0);
	n = options_branches(&o, &b);
	ck_assert_int_eq(n, 2);
	ck_assert(b[0].writable);
	ck_assert(!b[1].writable);
	ck_assert_int_eq(o.max_files, 4096);
	ck_assert(o.file_fds_set);
	ck_assert_int_eq(o.file_fds, 0);
	ck_assert_str_eq(options_fsname(&o), "unionfs");
	branch_specs_free(b, n);
	options_free(&o);
}
END_TEST

START_TEST(overlay_style_order_and_escape)
{
	/* libfuse's -o splitter takes one level of backslashes: "\\\\:" reaches us as "\\:". */
	const char *argv[] = {
	    "unionfs", "-o",
	    "lowerdir=/l1:/l\\\\:2,upperdir=/u,workdir=/w,redirect_dir=on,index=on,"
	    "xino=auto,metacopy=off,volatile",
	    "/mnt", NULL};
	struct unionfs_options o;
	struct branch_spec *b;
	int n;

	ck_assert_int_eq(parse(&o, argv), 0);
	n = options_branches(&o, &b);
	ck_assert_int_eq(n, 3);
	ck_assert_str_eq(b[0].path, "/u");
	ck_assert(b[0].writable);
	ck_assert_str_eq(b[1].path, "/l1");
	ck_assert_str_eq(b[2].path, "/l:2");
	ck_assert(!b[2].writable);
	ck_assert_int_eq(o.volatile_mode, 1);
	ck_assert(!o.file_fds_set);
	branch_specs_free(b, n);
	options_free(&o);
}
END_TEST

START_TEST(mount_helper_source_is_fsname)
{
	/* mount.fuse3 calls: unionfs SOURCE MNT -o rw,lowerdir=...,dev,suid */
	const char *argv[] = {"unionfs", "mystack", "/mnt", "-o", "rw,lowerdir=/l,dev,suid,noauto",
			      NULL};
	struct unionfs_options o;
	struct branch_spec *b;
	int n;

	ck_assert_int_eq(parse(&o, argv), 0);
	n = options_branches(&o, &b);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(options_fsname(&o), "mystack");
	ck_assert_str_eq(options_mountpoint(&o), "/mnt");
	branch_specs_free(b, n);
	options_free(&o);
}
END_TEST

static void expect_error(const char *const *argv, const char *needle)
{
	struct unionfs_options o;
	struct branch_spec *b = NULL;
	int r = parse(&o, argv);

	if (r == 0)
		r = options_branches(&o, &b);
	ck_assert_int_lt(r, 0);
	ck_assert_msg(strstr(o.error, needle), "error '%s' lacks '%s'", o.error, needle);
	options_free(&o);
}

START_TEST(bad_inputs)
{
	const char *unknown[] = {"unionfs", "-o", "br=/a,frobnicate", "/mnt", NULL};
	const char *bad_value[] = {"unionfs", "-o", "lowerdir=/a,udba=sometimes", "/mnt", NULL};
	const char *no_branches[] = {"unionfs", "/mnt", NULL};
	const char *nothing[] = {"unionfs", NULL};
	const char *empty[] = {"unionfs", "-o", "br=::", "/mnt", NULL};
	const char *bad_mode[] = {"unionfs", "-o", "br=/a=rx", "/mnt", NULL};
	const char *both[] = {"unionfs", "-o", "br=/a,lowerdir=/b", "/mnt", NULL};
	const char *no_work[] = {"unionfs", "-o", "lowerdir=/a,upperdir=/u", "/mnt", NULL};
	const char *extra[] = {"unionfs", "/a", "/b", "/c", "/mnt", NULL};
	const char *negative_count[] = {"unionfs", "-o", "br=/a,file_fds=-1", "/mnt", NULL};
	const char *empty_count[] = {"unionfs", "-o", "br=/a,file_fds=", "/mnt", NULL};

	expect_error(unknown, "unknown mount option 'frobnicate'");
	expect_error(bad_value, "invalid value 'sometimes' for option 'udba'");
	expect_error(no_branches, "no branches given");
	expect_error(nothing, "no branches and no mount point");
	expect_error(empty, "empty branch list");
	expect_error(bad_mode, "unknown branch mode");
	expect_error(both, "not both");
	expect_error(no_work, "needs workdir");
	expect_error(extra, "too many arguments");
	expect_error(negative_count, "invalid value '-1' for option 'file_fds'");
	expect_error(empty_count, "invalid value '' for option 'file_fds'");
}
END_TEST

START_TEST(libfuse_options_pass_through)
{
	const char *argv[] = {
	    "unionfs", "-f", "-s", "-o", "br=/a,allow_other,fsname=x,nodev,nosuid,ro,noatime",
	    "/mnt",    NULL};
	struct unionfs_options o;
	bool saw_allow_other = false;

	ck_assert_int_eq(parse(&o, argv), 0);
	ck_assert_int_eq(o.nodev, 1);
	ck_assert_int_eq(o.nosuid, 1);
	ck_assert_int_eq(o.read_only, 1);
	for (int i = 0; i < o.fuse_args.argc; i++)
		if (strstr(o.fuse_args.argv[i], "allow_other"))
			saw_allow_other = true;
	ck_assert(saw_allow_other);
	options_free(&o);
}
END_TEST

static Suite *options_suite(void)
{
	Suite *s = suite_create("unionfs_options");
	TCase *tc = tcase_create("parse");

	tcase_add_test(tc, aufs_style_default_modes);
	tcase_add_test(tc, aufs_style_explicit_modes);
	tcase_add_test(tc, unionfs_fuse_style_defaults_ro);
	tcase_add_test(tc, overlay_style_order_and_escape);
	tcase_add_test(tc, mount_helper_source_is_fsname);
	tcase_add_test(tc, bad_inputs);
	tcase_add_test(tc, libfuse_options_pass_through);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(options_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
